#!/usr/bin/env bash
# Crash transparency: rumpfs is killed (SIGKILL) in the middle of a large
# copy into the mount and started again on the same image.  The copy must
# finish without an error, the tree must equal the source, and the image
# must be clean.  Then a second kill while a program holds unsynced data,
# and fsync across a restart.
RUMPD_TEST_TIMEOUT=600
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
source "$here/fuse-lib.sh"

make_fs 2G
start_rumpfs
mount_fuse

# kill_and_restart: SIGKILL rumpfs and start it again at once.
kill_and_restart()
{
	local pid
	pid=$(server_pid "$RUMPD_DIR/rumpfs.pid")
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || :
	rm -f "$FS_SOCK"
	start_rumpfs
}

# A source tree with big and small files.
src=$RUMPD_DIR/src
mkdir -p "$src"
cp -a /usr/include/linux "$src/"
for i in 1 2 3; do head -c 40000000 /dev/urandom > "$src/big$i"; done

cp -a "$src" "$MNT/copy" 2> "$RUMPD_DIR/cp.err" &
cp_pid=$!
kill_at_exit "$cp_pid"
# Let the copy get going, then kill rumpfs twice while it runs.
wait_for 30 "the copy to start" test -e "$MNT/copy/big1"
sleep 1
kill_and_restart
sleep 2
kill_and_restart
wait "$cp_pid" || { cat "$RUMPD_DIR/cp.err" >&2; fail "cp failed"; }
diff -r --no-dereference "$src" "$MNT/copy" || fail "the copy differs from its source"
grep -q "replayed" "$RUMPD_DIR/fuse.log" ||
	fail "rumpfuse did not replay anything (was rumpfs killed mid-copy?)"

# Data written but not committed survives a kill; fsync then commits it.
exec 7> "$MNT/unsynced"
head -c 5000000 "$src/big1" >&7
kill_and_restart
head -c 5000000 "$src/big2" >&7
sync "$MNT/unsynced"      # fsync(2) on the file: a COMMIT
exec 7>&-
cmp "$MNT/unsynced" <(head -c 5000000 "$src/big1"; head -c 5000000 "$src/big2") ||
	fail "unsynced data lost across a kill"
kill_and_restart
cmp "$MNT/unsynced" <(head -c 5000000 "$src/big1"; head -c 5000000 "$src/big2") ||
	fail "fsynced data lost across a kill"

umount_fuse
fsck_clean
start_rumpfs
mount_fuse
diff -r --no-dereference "$src" "$MNT/copy" || fail "the copy differs after a remount"
umount_fuse
fsck_clean
echo "fuse-crash: ok"
