#!/usr/bin/env bash
# Bad input: hostile frames into the TAP (random, truncated, lying
# headers, endless fragments, frames beyond rumpnet's MTU), clients that
# die with connections open, and a raw-frame client that dies with
# receives queued.  rumpnet must keep serving through all of it.
RUMPD_TEST_TIMEOUT=140
source "$(dirname "$0")/netlib.sh"
requires curl --version
requires python3 --version

# The host side may send 9000-byte frames; rumpnet takes only 1500.
tap_setup 9000
start_rumpnet tap:rump0,mtu=1500
mac=$("$RUMPCTL" -s "$RUMPD_DIR/net.sock" net list |
	awk '/^eth0:/ { for (i = 1; i < NF; i++) if ($i == "mac") print $(i+1) }')
[ -n "$mac" ] || fail "no MAC address in rumpctl net list"

alive()
{
	in_ns ping -c 1 -W 2 $RUMP4 > /dev/null || fail "$1: IPv4 ping"
	in_ns ping -6 -c 1 -W 2 $RUMP6 > /dev/null || fail "$1: IPv6 ping"
	server_pid rumpnet.pid > /dev/null
}

inject=$(cd "$(dirname "$0")" && pwd)/inject.py
for seed in 1 2 3; do
	in_ns python3 "$inject" rump0 "$mac" 3000 $seed ||
		fail "injecting frames (seed $seed)"
	alive "after hostile frames, seed $seed"
done
"$RUMPCTL" -s "$RUMPD_DIR/net.sock" net list > list.txt
grep -q "RX packets" list.txt || fail "net list after hostile frames"
rx_err=$(awk '/RX packets/ { print $9 }' list.txt)
echo "frames refused as too long: $rx_err"
[ "${rx_err:-0}" -gt 0 ] || fail "no oversized frame was counted"

# A hijacked server killed mid-transfer, with host clients connected.
make_blob 20000000
(cd www && exec "${HIJACK[@]}" python3 -m http.server --bind $RUMP4 8080 \
	> ../http.log 2>&1) &
srv=$!
kill_at_exit $srv
wait_http "http://$RUMP4:8080/"
for i in 1 2 3; do
	ip netns exec "$NS" curl -s --limit-rate 200k -o /dev/null \
		"http://$RUMP4:8080/blob" &
	kill_at_exit $!
done
sleep 1
kill -KILL $srv
wait $srv 2>/dev/null || :
alive "after a hijacked server died"

# A hijacked client killed mid-download from a host server.
(cd www && exec ip netns exec "$NS" python3 -m http.server --bind $HOST4 \
	8000 > ../http-host.log 2>&1) &
kill_at_exit $!
wait_listen_ns 8000
"${HIJACK[@]}" curl -s --limit-rate 100k -o /dev/null \
	"http://$HOST4:8000/blob" &
cl=$!
kill_at_exit $cl
sleep 1
kill -KILL $cl
wait $cl 2>/dev/null || :
alive "after a hijacked client died"

# A capture killed with receives queued.
"$RUMPCTL" -s "$RUMPD_DIR/net.sock" net pcap eth0 > /dev/null &
cap=$!
kill_at_exit $cap
sleep 0.5
kill -KILL $cap
wait $cap 2>/dev/null || :
alive "after a capture died"

# And it still carries new connections.
hijacked curl -sS -o got "http://$HOST4:8000/blob" || fail "fresh curl"
check_sum got "a transfer after all of the above"
"$RUMPCTL" -s "$RUMPD_DIR/net.sock" net list | grep -q "raw clients 0" ||
	fail "a dead capture is still a raw client"
echo "net-bad: ok"
