# Helpers for the NBD gateway tests, sourced after lib.sh.
#
#   start_gateway SOCK ARGS...   rumpnbd on the Unix socket SOCK
#   nbd_uri SOCK [EXPORT]        the NBD URI of an export (default wd0)

[ -x "${RUMPNBD:-}" ] || fail "\$RUMPNBD does not name a program"
_nbd_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RAWNBD="$_nbd_dir/rawnbd.py"

start_gateway()
{
	local sock=$1
	shift
	start_server "$RUMPD_DIR/nbd.pid" "$RUMPNBD" --unix "$sock" \
		--pidfile "$RUMPD_DIR/nbd.pid" "$@" 2>>"$RUMPD_DIR/nbd.log"
	wait_for 10 "the gateway's socket" test -S "$sock"
}

nbd_uri()
{
	echo "nbd+unix:///${2:-wd0}?socket=$1"
}

# gateway_alive: the gateway is still running and answering.
gateway_alive()
{
	server_pid "$RUMPD_DIR/nbd.pid" >/dev/null
	nbdinfo --size "$(nbd_uri "$1")" >/dev/null ||
		fail "the gateway stopped answering"
}

# stop_gateway: SIGTERM, wait for a clean exit, and fail on anything a
# sanitizer said in the gateway's log.
stop_gateway()
{
	local pid i
	pid=$(server_pid "$RUMPD_DIR/nbd.pid")
	kill -TERM "$pid"
	for (( i = 0; i < 200; i++ )); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && fail "the gateway ignored SIGTERM"
	if grep -Eq 'Sanitizer|runtime error' "$RUMPD_DIR/nbd.log"; then
		cat "$RUMPD_DIR/nbd.log" >&2
		fail "sanitizer report from the gateway"
	fi
	[ ! -e "$RUMPD_DIR/nbd.pid" ] || fail "pidfile left behind"
}

# start_disk ARGS...: rumpdisk on $RUMPD_DIR/disk.sock (again after a
# crash: the same command finds the same disks).
start_disk()
{
	[ -x "${RUMPDISK:-}" ] || fail "\$RUMPDISK does not name a program"
	start_server "$RUMPD_DIR/disk.pid" "$RUMPDISK" \
		--socket "$RUMPD_DIR/disk.sock" \
		--pidfile "$RUMPD_DIR/disk.pid" "$@" 2>>"$RUMPD_DIR/disk.log"
}
