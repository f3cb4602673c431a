#!/usr/bin/env bash
# rumpnbd under rumpd reports its work in the heartbeat: after nbdcopy
# writes and reads back 4 MiB through it, `rumpctl status` shows the
# gateway's requests and at least those 8 MiB.
RUMPD_TEST_TIMEOUT=60
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/nbd-lib.sh"
requires nbdcopy --version

M=1048576
truncate -s 16M disk.img
cat > rumpd.conf <<EOF
[rumpd]
heartbeat_interval = 100ms
heartbeat_timeout = 2s

[disk]
driver = disk
device = wd0 $RUMPD_DIR/disk.img

[nbd]
driver = nbd
disk = disk
listen = unix:$RUMPD_DIR/gw.sock
EOF
"$RUMPD" -c rumpd.conf > rumpd.out 2>&1 &
rumpd_pid=$!
kill_at_exit "$rumpd_pid"
wait_for 20 "rumpd to supervise" grep -q supervising rumpd.out
wait_for 10 "the gateway's socket" test -S gw.sock

# field DRIVER KEY: a value from rumpctl's status.
field() {
	"$RUMPCTL" status -p | awk -v d="$1" -v k="$2" '
		$1 == d { for (i = 2; i <= NF; i++) {
			split($i, kv, "="); if (kv[1] == k) print kv[2] } }'
}
[ "$(field nbd requests)" = 0 ] ||
	fail "the gateway counted requests before any: $(field nbd requests)"

head -c $((4 * M)) /dev/urandom > data
uri=$(nbd_uri "$RUMPD_DIR/gw.sock")
nbdcopy data "$uri" || fail "nbdcopy into the gateway"
nbdcopy "$uri" back || fail "nbdcopy out of the gateway"
cmp -s <(head -c $((4 * M)) back) data ||
	fail "the gateway read back something else"

counted() {
	local r b
	r=$(field nbd requests) b=$(field nbd bytes)
	[ -n "$r" ] && [ "$r" -ge 2 ] && [ -n "$b" ] && [ "$b" -ge $((8 * M)) ]
}
wait_for 5 "the gateway's counters in rumpctl status" counted
# Bytes moved, not bytes asked: nothing beyond what the clients moved
# (4 MiB written, the 16 MiB device read once, and nbdcopy's probes).
[ "$(field nbd bytes)" -le $((21 * M)) ] ||
	fail "the gateway counted $(field nbd bytes) bytes"
kill -TERM "$rumpd_pid"
wait "$rumpd_pid" || { cat rumpd.out; fail "rumpd exited with status $?"; }
echo "$0: PASS"
