#!/usr/bin/env bash
# A net driver from the configuration file: a packet NIC on a veth end,
# whose socket rumpd opens and hands to a rumpnet confined in a network
# namespace of its own, with IPv4 and IPv6 addresses and default routes
# (the IPv6 one through a link-local gateway).  The routes are proven by
# downloads from addresses only the gateway has; restarted, rumpnet gets
# the same socket, addresses and routes back.
RUMPD_TEST_TIMEOUT=${RUMPD_TEST_TIMEOUT:-90}
source "$(dirname "$0")/sup.sh"
: "${RUMPNET:?}" "${RUMPHIJACK:?}"
[ "$(id -u)" = 0 ] || { echo "$0: SKIP: needs root" >&2; exit 77; }
requires ip -V
requires curl --version
requires python3 --version

NS=rnc-$$-$RANDOM
ip netns add "$NS" || fail "cannot make namespace $NS"
_del_ns() { ip netns del "$NS" 2>/dev/null || :; }
cleanup_fn _del_ns
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
in_ns ip link add vh type veth peer name vr
# The gateway's side; the far addresses live on its loopback, reachable
# from rumpnet only through its routes.
in_ns ip addr add 10.5.0.1/24 dev vh
in_ns ip -6 addr add fe80::1/64 dev vh nodad
in_ns ip -6 addr add fd05::1/64 dev vh nodad
in_ns ip addr add 10.6.0.1/32 dev lo
in_ns ip -6 addr add fd06::1/128 dev lo
# Our frames reach rumpnet with checksums done, not left to an offload.
in_ns ethtool -K vh tx off tso off gso off > /dev/null
in_ns ip link set vh up
in_ns ip link set vr up

cat > rumpd.conf <<'EOF'
[net]
driver = net
nic = eth0 packet:vr
addr = eth0 10.5.0.2/24
addr = eth0 fd05::2/64
route = default 10.5.0.1
route = default6 fe80::1%eth0
EOF
ip netns exec "$NS" "$RUMPD" -c rumpd.conf > rumpd.out 2>&1 &
RUMPD_PID=$!
kill_at_exit "$RUMPD_PID"
_up() {
	kill -0 "$RUMPD_PID" 2>/dev/null ||
		{ cat rumpd.out; fail "rumpd exited while starting"; }
	grep -q 'supervising' rumpd.out
}
wait_for 20 "rumpd to supervise" _up
[ "$(sup_field net confined)" = 1 ] || fail "rumpnet is not confined"
pid=$(sup_field net pid)
[ "$(readlink "/proc/$pid/ns/net")" != \
  "$(readlink "/proc/$RUMPD_PID/ns/net")" ] ||
	fail "rumpnet shares rumpd's network namespace"
grep -q 'eth0 is on host interface vr (10.5.0.2 fd05::2)' rumpd.out ||
	fail "rumpd does not say where eth0 is"

mkdir www
head -c 500000 /dev/urandom > www/blob
(cd www && exec ip netns exec "$NS" python3 -m http.server --bind :: 8000 \
	> ../http.log 2>&1) &
kill_at_exit $!
fetch() # fetch URL: through rumpd's rumpnet, checked
{
	local i
	rm -f got
	for (( i = 0; i < 50; i++ )); do
		RUMP_SERVER=$RUMPD_DIR/net.sock LD_PRELOAD=$RUMPHIJACK \
			curl -s -m 10 -o got "$1" && break
		sleep 0.2
	done
	cmp -s got www/blob || fail "download of $1 through rumpnet"
}
check_all()
{
	wait_for 10 "rumpnet to answer ping on the veth" \
		in_ns ping -c 1 -W 1 10.5.0.2
	fetch "http://10.6.0.1:8000/blob"
	fetch "http://[fd06::1]:8000/blob"
}
check_all

kill -KILL "$pid"
wait_field 20 net restarts 1
wait_field 10 net state running
check_all
stop_rumpd
echo "netconf: ok"
