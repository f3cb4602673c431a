# Helpers shared by the FUSE gateway tests; sourced after ../lib.sh.
# RUMPFS and RUMPFUSE name the programs under test (meson sets them).
#
# The picture: an ext4 image made by the kernel's mkfs.ext4, served by
# rumpfs --image, mounted by one or more rumpfuse.  After a workload the
# tests unmount, stop rumpfs and run e2fsck -fn on the image.

for _var in RUMPFS RUMPFUSE; do
	[ -x "${!_var:-}" ] || fail "\$$_var does not name a program" \
	                            "(run the tests through meson test)"
done
unset _var

requires test -c /dev/fuse
requires test "$(id -u)" = 0
requires mkfs.ext4 -V
requires e2fsck -V
requires mountpoint --version

IMG=$RUMPD_DIR/fs.img
FS_SOCK=$RUMPD_DIR/fs.sock
FS_LOG=$RUMPD_DIR/rumpfs.log
MNT=$RUMPD_DIR/mnt

# make_fs SIZE [MKFS_ARGS...]: a fresh ext4 image.
make_fs()
{
	local size=$1
	shift
	rm -f "$IMG"
	truncate -s "$size" "$IMG"
	mkfs.ext4 -q -F "$@" "$IMG" || fail "mkfs.ext4 failed"
}

# start_rumpfs: rumpfs on $IMG, its log in $FS_LOG; RUMPFS_ARGS (from the
# environment) adds options, e.g. --cache-mb N.
start_rumpfs()
{
	start_server "$RUMPD_DIR/rumpfs.pid" \
		bash -c 'log=$0; exec "$@" 2>>"$log"' "$FS_LOG" \
		"$RUMPFS" --image "$IMG" --socket "$FS_SOCK" \
		--pidfile "$RUMPD_DIR/rumpfs.pid" ${RUMPFS_ARGS:-}
}

stop_rumpfs()
{
	stop_server "$RUMPD_DIR/rumpfs.pid" || fail "rumpfs did not stop cleanly"
}

# mount_fuse [DIR [NAME [OPTIONS...]]]: rumpfuse on DIR (default $MNT);
# NAME (default "fuse") names its pid and log files.
mount_fuse()
{
	local dir=${1:-$MNT} name=${2:-fuse}
	shift $(( $# > 2 ? 2 : $# ))
	mkdir -p "$dir"
	start_server "$RUMPD_DIR/$name.pid" \
		bash -c 'log=$0; exec "$@" 2>>"$log"' "$RUMPD_DIR/$name.log" \
		"$RUMPFUSE" --fs-service "$FS_SOCK" \
		--pidfile "$RUMPD_DIR/$name.pid" -f "$@" "$dir"
	wait_for 10 "$dir mounted" mountpoint -q "$dir"
	cleanup_fn _umount_quietly "$dir"
}

# umount_fuse [NAME]: SIGTERM; rumpfuse must unmount and exit 0.
umount_fuse()
{
	local name=${1:-fuse}
	stop_server "$RUMPD_DIR/$name.pid" ||
		fail "rumpfuse ($name) did not stop cleanly"
}

# A mount left behind by a failed test must not outlive it.
_umount_quietly()
{
	if mountpoint -q "$1"; then
		umount -l "$1" 2>/dev/null || :
	fi
}

# fsck_clean: stops rumpfs; the image must be clean.
fsck_clean()
{
	local out
	stop_rumpfs
	if ! out=$(e2fsck -fn "$IMG" 2>&1); then
		echo "$out" >&2
		fail "e2fsck found errors"
	fi
}

# remount: unmount, stop rumpfs, check the image, and serve it again.
remount()
{
	umount_fuse
	fsck_clean
	start_rumpfs
	mount_fuse
}

# On failure, the servers' logs tell what happened.  (Cleanup commands
# run inside lib.sh's _run_cleanup, where $status is the test's.)
_dump_logs()
{
	local f
	[ "${status:-0}" != 0 ] || return 0
	for f in "$RUMPD_DIR"/*.log; do
		[ -s "$f" ] || continue
		echo "--- $f (last 40 lines)" >&2
		tail -n 40 "$f" >&2
	done
}
cleanup_fn _dump_logs
