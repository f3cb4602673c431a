#!/usr/bin/env bash
# rumpnet on a TAP device: ping over IPv4 and IPv6 from the host side;
# curl under the hijack fetches from a host http.server and a hijacked
# http.server serves host curl (IPv4 and IPv6, checksums equal); rumpctl
# net lists the interface; a pcap stream of the exchange decodes in tshark.
RUMPD_TEST_TIMEOUT=120
source "$(dirname "$0")/netlib.sh"
requires curl --version
requires python3 --version
requires tshark --version

tap_setup 1500
start_rumpnet tap:rump0

# The capture runs through everything below.
"$RUMPCTL" -s "$RUMPD_DIR/net.sock" net pcap -t 30 eth0 > cap.pcap &
pcap_pid=$!
kill_at_exit $pcap_pid
sleep 0.5

in_ns ping -c 3 -i 0.2 -W 2 $RUMP4 > ping4.log || fail "IPv4 ping"
in_ns ping -6 -c 3 -i 0.2 -W 2 $RUMP6 > ping6.log || fail "IPv6 ping"
in_ns ping -c 2 -i 0.2 -W 2 -s 1472 -M do $RUMP4 > /dev/null ||
	fail "a full-MTU ping"

make_blob 3000000
(cd www && exec ip netns exec "$NS" python3 -m http.server --bind $HOST4 \
	8000 > ../http-host.log 2>&1) &
kill_at_exit $!
wait_listen_ns 8000
hijacked curl -sS -o got1 "http://$HOST4:8000/blob" || fail "hijacked curl"
check_sum got1 "hijacked curl from the host server"

(cd www && exec "${HIJACK[@]}" python3 -m http.server --bind :: 8080 \
	> ../http-rump.log 2>&1) &
kill_at_exit $!
wait_http "http://$RUMP4:8080/"
in_ns curl -sS -o got2 "http://$RUMP4:8080/blob" || fail "host curl, IPv4"
check_sum got2 "host curl from the hijacked server over IPv4"
in_ns curl -sS -o got3 "http://[$RUMP6]:8080/blob" || fail "host curl, IPv6"
check_sum got3 "host curl from the hijacked server over IPv6"
grep -q '::ffff:10.0.0.1' http-rump.log ||
	fail "the IPv4 peer of an IPv6 socket is not ::ffff:10.0.0.1"

"$RUMPCTL" -s "$RUMPD_DIR/net.sock" net list > list.txt ||
	fail "rumpctl net list"
grep -q "^eth0: tap rump0 mtu 1500" list.txt || fail "net list: $(cat list.txt)"
grep -q "inet 10.0.0.2/24" list.txt || fail "net list: no IPv4 address"
grep -q "inet6 fd00::2/64" list.txt || fail "net list: no IPv6 address"

kill -TERM $pcap_pid 2>/dev/null
wait $pcap_pid 2>/dev/null || :
tshark -r cap.pcap -Y "icmp.type == 0 && ip.src == $RUMP4" 2>/dev/null \
	| grep -q "Echo (ping) reply" || fail "tshark: no ICMP echo reply"
tshark -r cap.pcap -Y "icmpv6.type == 129" 2>/dev/null | grep -q "reply" ||
	fail "tshark: no ICMPv6 echo reply"
tshark -r cap.pcap -Y "tcp.flags.syn == 1 && tcp.port == 8000" 2>/dev/null \
	| grep -q "SYN" || fail "tshark: no TCP handshake"
tshark -r cap.pcap -Y "http.request" 2>/dev/null | grep -q "GET /blob" ||
	fail "tshark: no HTTP request"
echo "net-tap: ok"
