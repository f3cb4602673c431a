#!/usr/bin/env bash
# rumpd with no configuration brings rumpnet up on a shared-memory bus in
# its state directory, with 10.77.0.1/24 and fd00:77::1/64, and says how to
# join it.  A second rumpnet started with exactly the command rumpd printed
# joins the bus: TCP (HTTP downloads, checksummed) over IPv4 and IPv6 and
# ICMP (a port unreachable, neighbour discovery) cross it; killed, rumpd's
# rumpnet comes back on the bus with its addresses.  As root rumpd runs in
# a network namespace of the test's, where it also makes TAP rump0 with
# 10.78.0.1: set up as rumpd says, the namespace's host side pings it.
RUMPD_TEST_TIMEOUT=${RUMPD_TEST_TIMEOUT:-120}
source "$(dirname "$0")/sup.sh"
: "${RUMPNET:?}" "${RUMPHIJACK:?}"
requires curl --version
requires tshark --version
requires python3 --version

# Only rumpnull and rumpnet: the default leaves out what it does not find.
mkdir libexec state
ln -s "$RUMPNULL" libexec/rumpnull
ln -s "$RUMPNET" libexec/rumpnet
export RUMPD_LIBEXEC=$RUMPD_DIR/libexec RUMPD_STATE_DIR=$RUMPD_DIR/state
PY=$(PATH=/usr/bin:/bin command -v python3 || command -v python3)

in_ns=()
if [ "$(id -u)" = 0 ] && [ -c /dev/net/tun ]; then
	requires ip -V
	NS=rnd-$$-$RANDOM
	ip netns add "$NS" || fail "cannot make namespace $NS"
	_del_ns() { ip netns del "$NS" 2>/dev/null || :; }
	cleanup_fn _del_ns
	in_ns=(ip netns exec "$NS")
	"${in_ns[@]}" ip link set lo up
fi

"${in_ns[@]}" "$RUMPD" > rumpd.out 2>&1 &
RUMPD_PID=$!
kill_at_exit "$RUMPD_PID"
_up() {
	kill -0 "$RUMPD_PID" 2>/dev/null ||
		{ cat rumpd.out; fail "rumpd exited while starting"; }
	grep -q 'supervising' rumpd.out
}
wait_for 20 "rumpd to supervise" _up
cat rumpd.out

[ "$(sup_field net state)" = running ] || fail "rumpnet is not running"
[ "$(sup_field net confined)" = 1 ] || fail "rumpnet is not confined"
"$RUMPCTL" status | grep -q '| net (net) *pid [0-9]* *running' ||
	fail "rumpctl status does not show the net driver"
bus=$RUMPD_DIR/state/net.bus
[ -f "$bus" ] || fail "no bus file $bus"
"$RUMPCTL" -s "$RUMPD_DIR/net.sock" net list > list
grep -q '^eth0: shm ' list || fail "net list: $(cat list)"
grep -q '10\.77\.0\.1/24' list || fail "no 10.77.0.1/24: $(cat list)"
grep -q 'fd00:77::1/64' list || fail "no fd00:77::1/64: $(cat list)"

# The peer: the command rumpd printed, with a socket of ours.
join=$(sed -n 's/.*join it with: \(rumpnet [^;]*\);.*/\1/p' rumpd.out)
[ -n "$join" ] || fail "rumpd did not say how to join the bus"
read -r -a peer_argv <<< "${join/PEER.sock/$RUMPD_DIR/peer.sock}"
[ "${peer_argv[2]}" = "eth0=shm:$bus" ] || fail "joins the wrong bus: $join"
start_server peer.pid "$RUMPNET" "${peer_argv[@]:1}" --pidfile peer.pid

# hijacked net|peer CMD...: CMD with its sockets in rumpd's rumpnet or in
# the peer.
hijacked()
{
	local sock=$RUMPD_DIR/$1.sock
	shift
	RUMP_SERVER=$sock LD_PRELOAD=$RUMPHIJACK "$@"
}

mkdir www
head -c 1000000 /dev/urandom > www/blob
(cd www && hijacked peer "$PY" -m http.server --bind :: 8000 \
	> ../http.log 2>&1) &
kill_at_exit $!
# fetch URL NAME: a download by rumpd's rumpnet from the peer, checked.
fetch()
{
	local i
	for (( i = 0; i < 50; i++ )); do
		hijacked net curl -s -o "$2" "$1" && break
		sleep 0.2
	done
	cmp -s "$2" www/blob || fail "HTTP over the bus from $1: files differ"
}

# ICMP: the peer's datagram to a port nobody listens on is answered by
# rumpd's rumpnet with a port unreachable; over IPv6 it looked for the
# peer by neighbour solicitation.  The peer's capture sees both.
"$RUMPCTL" -s "$RUMPD_DIR/peer.sock" net pcap -t 20 eth0 > cap.pcap &
pcap_pid=$!
kill_at_exit $pcap_pid
sleep 0.5
fetch "http://10.77.0.2:8000/blob" got4
fetch "http://[fd00:77::2]:8000/blob" got6
hijacked peer "$PY" -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3): s.sendto(b"x", ("10.77.0.1", 9))'
sleep 1
kill -TERM $pcap_pid 2>/dev/null || :
wait $pcap_pid 2>/dev/null || :
tshark -r cap.pcap -T fields -E occurrence=f -e ip.src -e ipv6.src \
	-e icmp.type -e icmp.code -e icmpv6.type -Y 'icmp || icmpv6' 2>/dev/null > icmp.txt
awk '$1 == "10.77.0.1" && $2 == 3 && $3 == 3 { ok = 1 } END { exit !ok }' \
	icmp.txt || fail "no port unreachable from 10.77.0.1: $(cat icmp.txt)"
awk '$1 == "fd00:77::1" && $2 == 135 { ok = 1 } END { exit !ok }' \
	icmp.txt || fail "no neighbour solicitation from fd00:77::1: \
$(cat icmp.txt)"

# Killed, it is back on the bus with its addresses.
old=$(sup_field net pid)
kill -KILL "$old"
wait_field 20 net restarts 1
wait_field 10 net state running
rm -f got4
fetch "http://10.77.0.2:8000/blob" got4

if [ ${#in_ns[@]} -gt 0 ]; then
	grep -q "eth1 is on TAP rump0 (10.78.0.1 fd00:78::1)" rumpd.out ||
		fail "rumpd says nothing of its TAP"
	# What rumpd says to type, but ping only a few times.
	setup=$(sed -n 's/.*reach it from the host with: \(.*\); ping .*/\1/p' \
		rumpd.out)
	[ -n "$setup" ] || fail "rumpd did not say how to reach its TAP"
	"${in_ns[@]}" sh -c "$setup"
	wait_for 10 "rumpnet to answer ping on its TAP" \
		"${in_ns[@]}" ping -c 1 -W 1 10.78.0.1
	"${in_ns[@]}" ping -c 3 -i 0.2 -W 2 10.78.0.1 > /dev/null ||
		fail "ping 10.78.0.1"
	wait_for 10 "rumpnet to answer ping6 on its TAP" \
		"${in_ns[@]}" ping -6 -c 1 -W 1 fd00:78::1
fi

kill -TERM "$RUMPD_PID"
status=0
wait "$RUMPD_PID" || status=$?
[ "$status" = 0 ] || { cat rumpd.out; fail "rumpd exited $status"; }
echo "netdefault: ok"
