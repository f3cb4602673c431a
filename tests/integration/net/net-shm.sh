#!/usr/bin/env bash
# Two rumpnet processes on one nic_shm bus, without privileges and without
# TAP: TCP (iperf3 and an HTTP download, checksummed) and UDP between
# hijacked programs, over IPv4 and IPv6.  A third member that dies does
# not stop the other two.
RUMPD_TEST_TIMEOUT=120
source "$(dirname "$0")/../lib.sh"
: "${RUMPNET:?}" "${RUMPHIJACK:?}"
requires iperf3 --version
requires curl --version
requires python3 --version

# Everything runs as nobody when we are root: the bus needs no privilege.
as_user=()
if [ "$(id -u)" = 0 ]; then
	requires setpriv --version
	as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	chmod 0777 "$RUMPD_DIR"
fi
bus=$RUMPD_DIR/bus
# The system's interpreter: a per-user one (pyenv) is not nobody's.
PY=$(PATH=/usr/bin:/bin command -v python3 || command -v python3)

# The library is never built with sanitizers (see gateways/hijack), so the
# programs it goes into run as they are.
on() # on a|b CMD...: a hijacked program on member a or b
{
	local m=$1
	shift
	RUMP_SERVER="$RUMPD_DIR/$m.sock" LD_PRELOAD="$RUMPHIJACK" \
		"${as_user[@]}" "$@"
}

start_server a.pid "${as_user[@]}" "$RUMPNET" --if eth0=shm:$bus \
	--addr eth0=10.1.0.1/24 --addr eth0=fd01::1/64 \
	--socket "$RUMPD_DIR/a.sock" --pidfile "$RUMPD_DIR/a.pid"
start_server b.pid "${as_user[@]}" "$RUMPNET" --if eth0=shm:$bus \
	--addr eth0=10.1.0.2/24 --addr eth0=fd01::2/64 \
	--socket "$RUMPD_DIR/b.sock" --pidfile "$RUMPD_DIR/b.pid"

# A member that joins and is killed: its entry must not hold the bus.
"${as_user[@]}" "$RUMPNET" --if eth0=shm:$bus --addr eth0=10.1.0.3/24 \
	--socket "$RUMPD_DIR/c.sock" > c.log 2>&1 &
c_pid=$!
kill_at_exit $c_pid
wait_for 10 "third member" test -S "$RUMPD_DIR/c.sock"
kill -KILL $c_pid
wait $c_pid 2>/dev/null || :

on b iperf3 -s -1 -p 5400 > srv.log 2>&1 &
kill_at_exit $!
for (( i = 0; i < 50; i++ )); do
	# iperf3 -J exits 0 even when it could not connect.
	on a iperf3 -c 10.1.0.2 -p 5400 -t 2 -J > tcp.json 2>/dev/null
	grep -q '"sum_received"' tcp.json && break
	sleep 0.2
done
n=$(python3 -c 'import json,sys
print(json.load(open(sys.argv[1]))["end"]["sum_received"]["bytes"])' \
	tcp.json) || fail "iperf3 over the bus: $(head -c 300 tcp.json)"
[ "$n" -gt 1000000 ] || fail "iperf3 over the bus moved only $n bytes"
echo "iperf3 TCP over the bus: $n bytes"

mkdir -p www
head -c 2000000 /dev/urandom > www/blob
chmod -R a+rX www
(cd www && on b "$PY" -m http.server --bind :: 8000 > ../http.log 2>&1) &
kill_at_exit $!
for (( i = 0; i < 50; i++ )); do
	on a curl -s -o got6 "http://[fd01::2]:8000/blob" && break
	sleep 0.2
done
cmp -s got6 www/blob || fail "HTTP over IPv6 on the bus: files differ"
on a curl -sS -o got4 "http://10.1.0.2:8000/blob" || fail "HTTP over IPv4"
cmp -s got4 www/blob || fail "HTTP over IPv4 on the bus: files differ"

# UDP: iperf3 waits forever when its set-up datagram is lost; each try has
# a time limit (KILL: its SIGTERM handler talks to a hijacked socket from
# inside the interrupted call) and a fresh server.
for try in 1 2 3; do
	on b iperf3 -s -1 -p $((5400 + try)) > srv-u$try.log 2>&1 &
	kill_at_exit $!
	for (( i = 0; i < 50; i++ )); do
		timeout -s KILL 20 env RUMP_SERVER="$RUMPD_DIR/a.sock" \
			LD_PRELOAD="$RUMPHIJACK" "${as_user[@]}" iperf3 \
			-c 10.1.0.2 -p $((5400 + try)) -t 1 -u -b 50M -J \
			> udp.json 2>/dev/null || :
		grep -q '"sum"' udp.json && break
		grep -q 'Connection refused' udp.json || break
		sleep 0.2
	done
	grep -q '"sum"' udp.json && ! grep -q '"error"' udp.json && break
	echo "UDP try $try did not finish; again"
done
grep -q '"sum"' udp.json || fail "UDP over the bus"
echo "net-shm: ok"
