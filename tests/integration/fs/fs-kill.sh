#!/usr/bin/env bash
# Crash consistency: rumpfs is killed (SIGKILL) with changes it has not
# committed.  With a small cache it has committed implicitly many times
# on the way; the image must hold one whole committed state: e2fsck -fn
# finds nothing, without any help from a restart.
RUMPD_TEST_TIMEOUT=120
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lib.sh"
source "$HERE/fslib.sh"

IMG=$RUMPD_DIR/fs.img

kill_rumpfs()
{
	local pid
	pid=$(server_pid "$PIDFILE")
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || :
	rm -f "$SOCK"
}

mkimage "$IMG" 512M
head -c 3000000 /dev/urandom > data.bin
for round in 1 2; do
	start_rumpfs --image "$IMG" --cache-mb 1
	{
		for i in $(seq 1500); do
			echo "mkdir /r$round-d$i"
			echo "create /r$round-d$i/f"
			(( i % 250 )) || echo "put data.bin /r$round-d$i/data"
			(( i % 3 )) || echo "rm /r$round-d$i/f"
		done
		# A reply to this read means the worker is between
		# operations: no flush is under way when the kill comes.
		echo "stat /"
	} | fsc > /dev/null
	kill_rumpfs
	fsck_clean "$IMG"
done
# And what was committed is there after a restart.
start_rumpfs --image "$IMG"
printf 'stat /r1-d1000\nget /r1-d500/data got.bin\n' | fsc > /dev/null
cmp data.bin got.bin || fail "committed data differs after the kill"
stop_rumpfs
fsck_clean "$IMG"
echo "fs-kill: ok"
