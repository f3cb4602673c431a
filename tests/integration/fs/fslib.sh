# Helpers shared by the fs integration tests; sourced after ../lib.sh.
# RUMPFS, RUMPDISK and FSCLIENT name the programs under test.

for _var in RUMPFS FSCLIENT; do
	[ -x "${!_var:-}" ] || fail "\$$_var does not name a program" \
	                            "(run the tests through meson test)"
done
unset _var

requires mkfs.ext4 -V
requires debugfs -V
requires e2fsck -V

SOCK=$RUMPD_DIR/fs.sock
LOG=$RUMPD_DIR/rumpfs.log
PIDFILE=$RUMPD_DIR/rumpfs.pid

# mkimage PATH SIZE [mkfs args]: a sparse ext4 image, checksums and 64bit.
mkimage()
{
	local img=$1 size=$2
	shift 2
	rm -f "$img"
	truncate -s "$size" "$img"
	mkfs.ext4 -q -F -O metadata_csum,64bit -b 4096 "$@" "$img" ||
		fail "mkfs.ext4 $img"
}

# start_rumpfs ARGS...: rumpfs on $SOCK, log in $LOG.
start_rumpfs()
{
	start_server "$PIDFILE" \
		bash -c 'log=$0; exec "$@" 2>>"$log"' "$LOG" \
		"$RUMPFS" --socket "$SOCK" --pidfile "$PIDFILE" "$@"
}

stop_rumpfs()
{
	stop_server "$PIDFILE" || { cat "$LOG" >&2; fail "rumpfs did not stop cleanly"; }
}

# fsc: runs the fsclient script on stdin.
fsc()
{
	"$FSCLIENT" "$SOCK" || { cat "$LOG" >&2; fail "fsclient script failed"; }
}

# fsck_clean IMAGE: e2fsck -fn must find nothing.
fsck_clean()
{
	local out
	out=$(e2fsck -fn "$1" 2>&1) || { echo "$out" >&2; fail "e2fsck: $1 is not clean"; }
}

# dcat IMAGE PATH: the file as debugfs reads it.
dcat()
{
	debugfs -R "cat $2" "$1" 2>/dev/null
}
