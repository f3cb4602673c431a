#!/usr/bin/env bash
# Static IPv6 routes from rumpnet's command line.  A second namespace
# ("far", 2001:db8:1::1) sits behind the TAP's namespace, which routes
# between them; rumpnet reaches it only through a route to the TAP side's
# link-local address fe80::1.  Without the route, far's ping goes
# unanswered; with --route 2001:db8::/32=fe80::1 or default6=fe80::1, it
# is answered and a hijacked curl fetches from far.  Bad routes are
# refused with a message.
RUMPD_TEST_TIMEOUT=120
source "$(dirname "$0")/netlib.sh"
requires curl --version
requires python3 --version

FAR=$NS-far
FAR6=2001:db8:1::1
_del_far() { ip netns del "$FAR" 2>/dev/null || :; }

tap_setup 1500
in_ns ip addr add fe80::1/64 dev rump0 nodad
in_ns sysctl -qw net.ipv6.conf.all.forwarding=1
ip netns add "$FAR" || fail "cannot make namespace $FAR"
cleanup_fn _del_far
in_ns ip link add vnear type veth peer name vfar
in_ns ip link set vfar netns "$FAR"
in_ns ip addr add 2001:db8:1::ff/64 dev vnear nodad
in_ns ip link set vnear up
ip netns exec "$FAR" ip link set lo up
ip netns exec "$FAR" ip addr add $FAR6/64 dev vfar nodad
ip netns exec "$FAR" ip link set vfar up
ip netns exec "$FAR" ip -6 route add default via 2001:db8:1::ff

far_ping() { ip netns exec "$FAR" ping -6 -c 1 -W 1 $RUMP6 > /dev/null; }

# Without a route, rumpnet's answers have nowhere to go.
wait_for 10 "far to reach the TAP's namespace" \
	ip netns exec "$FAR" ping -6 -c 1 -W 1 fd00::1
start_rumpnet tap:rump0
! far_ping && ! far_ping || fail "rumpnet answered far without a route"
stop_server rumpnet.pid

# by_route ROUTE: with --route ROUTE, far's ping and a hijacked curl to
# far work.
make_blob 200000
(cd www && exec ip netns exec "$FAR" python3 -m http.server --bind $FAR6 \
	8000 > ../http-far.log 2>&1) &
kill_at_exit $!
wait_for 10 "far's http server" ip netns exec "$FAR" \
	bash -c "ss -ltn | grep -q ':8000 '"
by_route()
{
	start_rumpnet tap:rump0 --route "$1"
	wait_for 10 "far's ping answered with --route $1" far_ping
	ip netns exec "$FAR" ping -6 -c 3 -i 0.2 -W 2 $RUMP6 > /dev/null ||
		fail "ping from far with --route $1"
	hijacked curl -sS -o got "http://[$FAR6]:8000/blob" ||
		fail "hijacked curl to far with --route $1"
	check_sum got "curl from far with --route $1"
	stop_server rumpnet.pid
	echo "--route $1: ok"
}
by_route 2001:db8::/32=fe80::1
by_route default6=fe80::1%eth0
by_route ::/0=fd00::1

# refused ROUTE TEXT: rumpnet will not start with --route ROUTE and says
# TEXT.
refused()
{
	local status=0
	ip netns exec "$NS" "$RUMPNET" --if eth0=tap:rump0 \
		--addr eth0=$RUMP6/64 --socket "$RUMPD_DIR/bad.sock" \
		--route "$1" > bad.log 2>&1 || status=$?
	[ "$status" = 1 ] || fail "--route $1: exit status $status"
	grep -q -- "$2" bad.log || fail "--route $1: $(cat bad.log)"
}
refused 2001:db8::1/32=fe80::1 'prefix without host bits'
refused 2001:db8::/32=10.0.0.1 'different families'
refused 2001:db8::/32=2001:db9::1 'on no interface'
refused 2001:db8::/32=fe80::1%eth9 'on no interface'
refused 2001:db8::/129=fe80::1 'want DEST=GW'
echo "net-route6: ok"
