#!/usr/bin/env bash
# rsync into the mount while rumpfs is killed (SIGKILL) and restarted every
# few hundred milliseconds: rsync writes each file under a temporary name,
# sets its mode and renames it, so a replay that loses track of a file
# created since the last COMMIT leaves a final name with no data behind.
# Every round must finish, every copy must equal its source, no logged
# change may be dropped, and the image must be clean.
RUMPD_TEST_TIMEOUT=300
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
source "$here/fuse-lib.sh"
requires which rsync

kills=${FUSE_KILLS:-16}
src=${FUSE_TREE:-/usr/include/linux}
[ -d "$src" ] || fail "no source tree $src (set FUSE_TREE)"

make_fs 512M
start_rumpfs
mount_fuse

rounds()
{
	local n=0
	while [ ! -e stop ] || [ "$n" = 0 ]; do
		n=$((n + 1))
		rsync -a "$src/" "$MNT/copy$n/" 2> "rsync.$n" ||
			{ cat "rsync.$n"; echo "rsync round $n failed"; return 1; }
	done
	echo "$n" > rounds.n
}
rounds > rounds.log 2>&1 &
rsync_pid=$!
kill_at_exit "$rsync_pid"

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

# Each kill lets a few thousand changes pile up in the log; every other
# one is followed by a second while rumpfuse replays them, which must
# leave no trace of the pass it cuts short.
RANDOM=7
for (( i = 0; i < kills; i++ )); do
	kill -0 "$rsync_pid" 2>/dev/null || { cat rounds.log; fail "rsync ended"; }
	sleep "0.$(printf '%03d' $((300 + RANDOM % 400)))"
	kill_and_restart
	if (( i % 2 )); then
		sleep "0.0$((RANDOM % 6))"
		kill_and_restart
	fi
done
touch stop
wait "$rsync_pid" || { cat rounds.log; fail "rsync failed"; }
for (( n = 1; n <= $(cat rounds.n); n++ )); do
	diff -rq --no-dereference "$src" "$MNT/copy$n" > diff.out ||
		{ head -n 20 diff.out; fail "copy $n differs from $src"; }
done
grep -q "replayed" fuse.log ||
	fail "rumpfuse replayed nothing (was rumpfs killed mid-copy?)"
grep -q "replay cut short" fuse.log ||
	fail "no kill fell in a replay: the test missed its point"
if grep -E "change is lost|giving up" fuse.log; then
	fail "rumpfuse dropped logged changes"
fi
umount_fuse
fsck_clean
echo "fuse-rsync-kill: $kills kills over $(cat rounds.n) rsync rounds: ok"
