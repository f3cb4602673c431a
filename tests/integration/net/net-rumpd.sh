#!/usr/bin/env bash
# rumpnet under rumpd on a TAP that rumpd opens: the descriptor comes with
# the virtio-net header rumpnet would have asked for (so TCP segmentation
# offload is on), rumpnet is confined in a network namespace of its own
# and still answers ping on the TAP and serves a capture client; killed,
# it comes back on the same TAP, answering again.  And a confined rumpnet
# on an AF_PACKET socket moves traffic.
RUMPD_TEST_TIMEOUT=90
source "$(dirname "$0")/netlib.sh"
requires tshark --version

make_ns
printf '%s\n' '[net]' 'driver = net' 'nic = eth0 tap:rump0' > rumpd.conf
# rumpd makes the TAP in the namespace it runs in.
ip netns exec "$NS" "$RUMPD" -c rumpd.conf > rumpd.out 2>&1 &
rumpd_pid=$!
kill_at_exit $rumpd_pid
_up() {
	kill -0 $rumpd_pid 2>/dev/null || { cat rumpd.out; fail "rumpd died"; }
	grep -q supervising rumpd.out
}
wait_for 20 "rumpd to supervise" _up
in_ns ip link set rump0 mtu 9000
in_ns ip link set rump0 up

status_field()
{
	"$RUMPCTL" status -p | awk -v k="$1" '$1 == "net" {
		for (i = 2; i <= NF; i++) { split($i, kv, "=");
			if (kv[1] == k) print kv[2] } }'
}

# ping_rumpnet: rumpnet's link-local address (it has no other: rumpd's
# configuration gives none) answers from the namespace.
ping_rumpnet()
{
	local ll
	_serving() { "$RUMPCTL" -s "$RUMPD_DIR/net.sock" net list > list; }
	wait_for 10 "rumpnet to serve" _serving
	ll=$(awk '$1 == "inet6" && $2 ~ /^fe80:/ { sub("/.*", "", $2);
		print $2 }' list)
	[ -n "$ll" ] || fail "no link-local address: $(cat list)"
	wait_for 10 "rumpnet to answer ping" \
		in_ns ping -6 -c 1 -W 1 "$ll%rump0"
	in_ns ping -6 -c 3 -i 0.2 -W 2 "$ll%rump0" > /dev/null ||
		fail "ping $ll"
}

[ "$(status_field state)" = running ] || fail "rumpnet is not running"
[ "$(status_field confined)" = 1 ] || fail "rumpnet is not confined"
[ "$(status_field heartbeat)" = 1 ] || fail "rumpnet has no heartbeat"
grep -q 'eth0: tap rump0, mtu 1500, .*TCP segmentation offload' rumpd.out ||
	fail "rumpd's TAP has no virtio-net header: $(grep eth0 rumpd.out)"
pid=$(status_field pid)
[ "$(readlink "/proc/$pid/ns/net")" != "$(readlink /proc/$rumpd_pid/ns/net)" ] ||
	fail "rumpnet shares rumpd's network namespace"
# A raw-frame client of the confined rumpnet: the capture's frames come
# through a session's rings.
"$RUMPCTL" -s "$RUMPD_DIR/net.sock" net pcap -t 10 eth0 > cap.pcap &
pcap_pid=$!
kill_at_exit $pcap_pid
sleep 0.5
ping_rumpnet
kill -TERM $pcap_pid 2>/dev/null || :
wait $pcap_pid 2>/dev/null || :
tshark -r cap.pcap -Y "icmpv6.type == 129" 2>/dev/null | grep -q reply ||
	fail "the capture of the confined rumpnet has no echo reply"

kill -KILL "$pid"
_restarted() { [ "$(status_field restarts)" = 1 ] &&
	[ "$(status_field state)" = running ]; }
wait_for 20 "rumpd to restart rumpnet" _restarted
# The TAP is rumpd's, kept across the restart, and now 9000 bytes wide.
grep -q 'eth0: tap rump0, mtu 9000, .*TCP segmentation offload' rumpd.out ||
	fail "the restarted rumpnet: $(grep eth0 rumpd.out)"
ping_rumpnet
in_ns ping -6 -c 2 -W 2 -s 8900 -M do \
	"$(awk '$1 == "inet6" { sub("/.*", "", $2); print $2 }' list)%rump0" \
	> /dev/null || fail "a 9000-byte ping"

kill -TERM $rumpd_pid
wait $rumpd_pid || { cat rumpd.out; fail "rumpd exited $?"; }

# AF_PACKET, confined: rumpd's configuration names no packet sockets, so a
# wrapper program swaps the interface rumpd gives for one on a veth end
# and adds addresses; without namespaces (the veth must be reachable) the
# rest of the confinement holds.  Ping and a hijacked HTTP download go
# through reads and writes on the packet socket after confinement.
requires curl --version
in_ns ip link add vh type veth peer name vr
in_ns ip addr add $HOST4/24 dev vh
in_ns ethtool -K vh tx off tso off gso off > /dev/null
in_ns ip link set vh up
in_ns ip link set vr up
cat > packet-rumpnet.sh <<EOS
#!/bin/sh
# rumpd runs: packet-rumpnet.sh --socket PATH --if eth0=shm:BUS
exec "$RUMPNET" --socket "\$2" --if eth0=packet:vr --addr eth0=$RUMP4/24
EOS
chmod 755 packet-rumpnet.sh
printf '%s\n' '[net]' 'driver = net' "program = $RUMPD_DIR/packet-rumpnet.sh" \
	'namespaces = no' "nic = eth0 shm:$RUMPD_DIR/unused" > rumpd2.conf
ip netns exec "$NS" "$RUMPD" -c rumpd2.conf > rumpd2.out 2>&1 &
rumpd_pid=$!
kill_at_exit $rumpd_pid
_up2() {
	kill -0 $rumpd_pid 2>/dev/null || { cat rumpd2.out; fail "rumpd died"; }
	grep -q supervising rumpd2.out
}
wait_for 20 "rumpd to supervise rumpnet on a packet socket" _up2
grep -q 'net is confined: .*seccomp allow-list "net"' rumpd2.out ||
	fail "rumpnet on a packet socket is not confined: $(cat rumpd2.out)"
wait_for 10 "the confined rumpnet to answer ping on the veth" \
	in_ns ping -c 1 -W 1 $RUMP4
in_ns ping -c 3 -i 0.2 -W 2 $RUMP4 > /dev/null || fail "ping over AF_PACKET"
make_blob 2000000
(cd www && exec ip netns exec "$NS" python3 -m http.server --bind $HOST4 \
	8000 > ../http.log 2>&1) &
kill_at_exit $!
wait_listen_ns 8000
hijacked curl -sS -o got "http://$HOST4:8000/blob" ||
	fail "hijacked curl through the confined rumpnet"
check_sum got "a download through a confined AF_PACKET rumpnet"
kill -TERM $rumpd_pid
wait $rumpd_pid || { cat rumpd2.out; fail "rumpd exited $?"; }
echo "net-rumpd: ok"
