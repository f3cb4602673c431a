#!/usr/bin/env bash
# iperf3 under the hijack against a host iperf3 over a TAP: as client and
# as server, TCP both ways, and UDP.  Every run must move data; speed is
# bench/net's business.
RUMPD_TEST_TIMEOUT=120
source "$(dirname "$0")/netlib.sh"
requires iperf3 --version

tap_setup 1500
start_rumpnet tap:rump0

# received_bytes JSON: bytes the receiving side counted.
received_bytes()
{
	python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
e = d["end"]
s = e.get("sum_received") or e.get("sum")
print(int(s["bytes"]))' "$1"
}

check_run()
{
	local n
	n=$(received_bytes "$1") || fail "$2: no result ($(head -c 300 "$1"))"
	[ "$n" -gt 1000000 ] || fail "$2: only $n bytes"
	echo "$2: $n bytes"
}

port=5300
host_server()
{
	port=$((port + 1))
	ip netns exec "$NS" iperf3 -s -1 -p $port > "srv-$port.log" 2>&1 &
	kill_at_exit $!
	wait_listen_ns $port
}

host_server
hijacked iperf3 -c $HOST4 -p $port -t 2 -J > c-tcp.json || fail "client TCP"
check_run c-tcp.json "hijacked client, TCP upload"

host_server
hijacked iperf3 -c $HOST4 -p $port -t 2 -R -J > c-tcp-r.json ||
	fail "client TCP -R"
check_run c-tcp-r.json "hijacked client, TCP download"

# iperf3's client waits on its control socket with select() timeouts of
# about a millisecond while it sends; a POLL whose timer ran out before
# rumpnet started waiting used to wait forever (netpoll checks that
# alone).  A hang is a failure: KILL after a time limit, as iperf3's
# SIGTERM handler writes to its control socket from inside the
# interrupted call, which the hijack does not make signal-safe.
host_server
timeout -s KILL 30 "${HIJACK[@]}" iperf3 -c $HOST4 -p $port -t 2 -u \
	-b 100M -J > c-udp.json || fail "client UDP: status $?"
check_run c-udp.json "hijacked client, UDP"

# host_client OUT ARGS...: a host iperf3 client, retried while the
# hijacked server is still starting.
host_client()
{
	local out=$1 i
	shift
	for (( i = 0; i < 50; i++ )); do
		# iperf3 -J exits 0 even when it could not connect.
		in_ns iperf3 "$@" -J > "$out" 2>/dev/null
		grep -q '"sum' "$out" && ! grep -q '"error"' "$out" &&
			return 0
		sleep 0.2
	done
	fail "host iperf3 $*: $(head -c 300 "$out")"
}

port=$((port + 1))
"${HIJACK[@]}" iperf3 -s -1 -p $port > s-rump.log 2>&1 &
kill_at_exit $!
host_client s-tcp.json -c $RUMP4 -p $port -t 2
check_run s-tcp.json "hijacked server, TCP"

port=$((port + 1))
"${HIJACK[@]}" iperf3 -s -1 -p $port > s-rump2.log 2>&1 &
kill_at_exit $!
host_client s-udp.json -c $RUMP6 -p $port -t 2 -u -b 100M
check_run s-udp.json "hijacked server, UDP over IPv6"
for f in c-udp.json s-udp.json; do
	python3 -c 'import json,sys
s = json.load(open(sys.argv[1]))["end"]["sum"]
print("%s: %d of %d datagrams lost" % (sys.argv[1], s["lost_packets"], s["packets"]))' "$f"
done
echo "net-iperf: ok"
