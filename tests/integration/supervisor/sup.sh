# Helpers for the supervisor tests, on top of lib.sh.
#
#   start_rumpd CONF         rumpd -c CONF in the background, output in
#                            rumpd.out, until it says it is supervising
#   stop_rumpd               SIGTERM; fails unless it exits 0
#   sup_field DRIVER KEY     a value from "rumpctl status -p"
#   wait_field SECS DRIVER KEY VALUE
source "$(dirname "$0")/../lib.sh"

RUMPD_PID=""

start_rumpd()
{
	"$RUMPD" -c "$1" > rumpd.out 2>&1 &
	RUMPD_PID=$!
	kill_at_exit "$RUMPD_PID"
	_rumpd_up() {
		kill -0 "$RUMPD_PID" 2>/dev/null ||
			{ cat rumpd.out; fail "rumpd exited while starting"; }
		grep -q 'supervising' rumpd.out
	}
	wait_for 20 "rumpd to supervise" _rumpd_up
}

stop_rumpd()
{
	local status=0
	kill -TERM "$RUMPD_PID"
	wait "$RUMPD_PID" || status=$?
	[ "$status" = 0 ] || { cat rumpd.out; fail "rumpd exited $status"; }
}

sup_field()
{
	"$RUMPCTL" status -p | awk -v d="$1" -v k="$2" '
		$1 == d { for (i = 2; i <= NF; i++) {
			split($i, kv, "="); if (kv[1] == k) print kv[2] } }'
}

wait_field()
{
	_field_is() { [ "$(sup_field "$2" "$3")" = "$4" ]; }
	wait_for "$1" "$2's $3 to be $4" _field_is "$@"
}
