#!/usr/bin/env bash
# rumpctl ping, echo, info against rumpnull, and its usage errors.
RUMPD_TEST_TIMEOUT=60
source "$(dirname "$0")/lib.sh"

sock=$RUMPD_DIR/null.sock
start_server null.pid "$RUMPNULL" --pidfile null.pid
[ -S "$sock" ] || fail "rumpnull did not listen on \$RUMPD_DIR/null.sock"

# expect STATUS CMD...: runs CMD, output in out/err, checks the status.
expect()
{
	local want=$1 got=0
	shift
	"$@" > out 2> err || got=$?
	[ "$got" = "$want" ] ||
		{ cat out err; fail "$* exited $got, expected $want"; }
}

expect 0 "$RUMPCTL" ping null -n 200
cat out
grep -Eq '^service null \(kind null\), boot id [0-9a-f]{16}$' out ||
	fail "ping: no service line"
latency='200 round trips, p50 [0-9.]+ us, p99 [0-9.]+ us$'
grep -Eq "^control NULL: $latency" out || fail "ping: no control line"
grep -Eq "^ring NULL: +$latency" out || fail "ping: no ring line"
boot=$(sed -n 's/.*boot id \([0-9a-f]*\)$/\1/p' out)

expect 0 "$RUMPCTL" -s "$sock" echo null "hello, rump world"
[ "$(cat out)" = "hello, rump world" ] || fail "echo: got '$(cat out)'"
expect 0 "$RUMPCTL" echo "$sock" ""
[ "$(cat out)" = "" ] || fail "echo of nothing: got '$(cat out)'"
long=$(head -c 30000 /dev/zero | tr '\0' x)
expect 0 "$RUMPCTL" echo null "$long"
[ "$(cat out)" = "$long" ] || fail "echo of 30000 bytes came back wrong"

expect 0 "$RUMPCTL" info null
cat out
grep -qx "service: null" out || fail "info: no service"
grep -qx "kind:    null" out || fail "info: no kind"
grep -qx "socket:  $sock" out || fail "info: wrong socket"
grep -qx "boot id: $boot" out || fail "info: boot id differs from ping's"

# -s with a bare file name means a file here, not a service name.
expect 0 "$RUMPCTL" -s null.sock info null
grep -qx "socket:  ./null.sock" out || fail "info -s: wrong socket"

# Usage errors exit 2, failures 1, each with a message.
expect 2 "$RUMPCTL"
expect 2 "$RUMPCTL" frobnicate
grep -q "unknown command 'frobnicate'" err || fail "no message for bad command"
expect 2 "$RUMPCTL" ping
expect 2 "$RUMPCTL" ping null extra
expect 2 "$RUMPCTL" ping null -n 0
expect 2 "$RUMPCTL" ping null -n lots
expect 2 "$RUMPCTL" echo null
expect 1 "$RUMPCTL" ping nosuch
grep -q "cannot reach service 'nosuch' at $RUMPD_DIR/nosuch.sock: " err ||
	{ cat err; fail "no clear message for a missing service"; }
expect 1 "$RUMPCTL" -s "$RUMPD_DIR/none.sock" info null
stop_server null.pid
echo "rumpctl: ok"
