#!/usr/bin/env bash
# The journal rumpfs writes is ext4's own (jbd2): stopped after a commit
# and before its checkpoint (test trigger), the image needs recovery;
# debugfs's logdump shows our transaction; e2fsck, the reference
# implementation, replays it and finds the file system clean with the
# files there; rumpfs replays it itself (read-write into the image,
# read-only into memory, leaving the image alone).
RUMPD_TEST_TIMEOUT=150
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lib.sh"
source "$HERE/fslib.sh"
requires dumpe2fs -V

IMG=$RUMPD_DIR/fs.img

kill_rumpfs()
{
	local pid
	pid=$(server_pid "$PIDFILE")
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || :
	rm -f "$SOCK"
}

# fsck_replays IMAGE: e2fsck -fy recovers the journal and has nothing
# else to fix; then -fn finds it clean.
fsck_replays()
{
	local out status=0
	out=$(e2fsck -fy "$1" 2>&1) || status=$?
	case $status in 0|1) ;; *) echo "$out" >&2; fail "e2fsck -fy $1 failed" ;; esac
	grep -q 'recovering journal' <<< "$out" ||
		{ echo "$out" >&2; fail "e2fsck found no journal to recover"; }
	if grep -q '? yes' <<< "$out"; then
		echo "$out" >&2
		fail "e2fsck had to repair more than the journal"
	fi
	fsck_clean "$1"
}

needs_recovery()
{
	dumpe2fs -h "$1" 2>/dev/null | grep -q '^Filesystem features:.*needs_recovery'
}

head -c 1500000 /dev/urandom > data.bin
head -c 5000 /dev/urandom > small.bin

# ---- stopped between a commit and its checkpoint ------------------------
for features in metadata_csum,64bit ^metadata_csum,^64bit; do
	mkimage "$IMG" 256M -O "$features"
	# The first commit carries mkdir and put (put commits); the second
	# the rest.
	: > "$LOG"
	RUMPFS_TEST_STOP_AFTER_COMMIT=2 start_rumpfs --image "$IMG"
	{
		echo "mkdir /d"
		echo "put data.bin /d/data"
		echo "symlink data /d/link"
		echo "mkdir /d/sub"
		echo "mv /d/data /d/sub/moved"
		echo "put small.bin /d/small"
	} | "$FSCLIENT" "$SOCK" > fsc.out 2>&1 &
	fsc_pid=$!
	for _ in $(seq 200); do
		grep -q 'test trigger: stopped' "$LOG" && break
		if ! kill -0 "$fsc_pid" 2>/dev/null; then
			wait "$fsc_pid" && {
				echo "$0: SKIP: rumpfs built without -Dtest_triggers=true"
				exit 77
			}
			cat fsc.out "$LOG" >&2
			fail "fsclient failed before the trigger"
		fi
		sleep 0.05
	done
	grep -q 'test trigger: stopped' "$LOG" || fail "the trigger did not fire"
	kill_rumpfs
	wait "$fsc_pid" 2>/dev/null || :

	needs_recovery "$IMG" || fail "the image does not say needs_recovery"
	dump=$(debugfs -R logdump "$IMG" 2>&1)
	grep -q 'Found expected sequence [0-9]*, type 1 (descriptor block)' \
		<<< "$dump" || { echo "$dump" >&2; fail "logdump: no descriptor"; }
	grep -q 'Found expected sequence [0-9]*, type 2 (commit block)' \
		<<< "$dump" || { echo "$dump" >&2; fail "logdump: no commit"; }
	case $features in
	metadata_csum*)
		dumpe2fs -h "$IMG" 2>/dev/null |
			grep -q '^Journal features:.*journal_checksum_v3' ||
			fail "no checksum v3 in the journal of a metadata_csum fs"
		;;
	esac

	# Not yet home: without the journal the second commit is missing.
	debugfs -R 'stat /d/small' "$IMG" 2>&1 | grep -q 'File not found' ||
		fail "the transaction was checkpointed before the stop"

	# e2fsck, the kernel's userland, recovers our journal.
	cp --sparse=always "$IMG" kernel.img
	fsck_replays kernel.img
	dcat kernel.img /d/sub/moved | cmp -s - data.bin ||
		fail "e2fsck's replay: /d/sub/moved differs"
	dcat kernel.img /d/small | cmp -s - small.bin ||
		fail "e2fsck's replay: /d/small differs"
	[ "$(debugfs -R 'stat /d/link' kernel.img 2>/dev/null |
	     grep -o 'Fast link dest: "[^"]*"')" = 'Fast link dest: "data"' ] ||
		fail "e2fsck's replay: /d/link is wrong"

	# Read-only, rumpfs replays into memory and leaves the image alone.
	cp --sparse=always "$IMG" ro.img
	before=$(md5sum < ro.img)
	start_rumpfs --image ro.img --ro
	printf 'get /d/small got.bin\nget /d/sub/moved got2.bin\n' | fsc > /dev/null
	stop_rumpfs
	cmp -s got.bin small.bin || fail "read-only replay: /d/small differs"
	cmp -s got2.bin data.bin || fail "read-only replay: /d/sub/moved differs"
	[ "$(md5sum < ro.img)" = "$before" ] ||
		fail "a read-only mount wrote to the image"
	grep -q 'journal replayed in memory' "$LOG" ||
		fail "no replay in memory in the log"

	# Read-write, rumpfs replays into the image.
	start_rumpfs --image "$IMG"
	printf 'get /d/small got.bin\nstat /d/link\n' | fsc > /dev/null
	stop_rumpfs
	cmp -s got.bin small.bin || fail "rumpfs's replay: /d/small differs"
	needs_recovery "$IMG" && fail "needs_recovery left after a clean unmount"
	fsck_clean "$IMG"
	dcat "$IMG" /d/sub/moved | cmp -s - data.bin ||
		fail "rumpfs's replay: /d/sub/moved differs"
done

# ---- killed at random moments during a copy ------------------------------
mkimage "$IMG" 256M
mkdir src
for i in $(seq 40); do
	head -c $((RANDOM * 7 % 200000)) /dev/urandom > "src/f$i"
done
rounds=${FS_JOURNAL_ROUNDS:-12}
replayed=0
for round in $(seq "$rounds"); do
	start_rumpfs --image "$IMG" --cache-mb 1
	# About 2 s of work: every put is a commit of its own.
	{
		echo "mkdir /r$round"
		for k in $(seq 15); do
			echo "mkdir /r$round/k$k"
			for i in $(seq 40); do
				d=/r$round/k$k
				echo "put src/f$i $d/f$i"
				if (( i % 5 == 0 )); then
					echo "mv $d/f$i $d/g$i"
				elif (( i % 7 == 0 )); then
					echo "rm $d/f$i"
				fi
			done
		done
		(( round == 1 )) || echo "rm /r$((round - 1))/k1/f1"
	} | "$FSCLIENT" "$SOCK" > /dev/null 2>&1 &
	fsc_pid=$!
	# Somewhere in the copy: 0.05 to 1.5 s in.
	ms=$(( RANDOM % 1450 + 50 ))
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	kill_rumpfs
	wait "$fsc_pid" 2>/dev/null || :
	# What e2fsck makes of the image as the kill left it...
	cp --sparse=always "$IMG" kernel.img
	if needs_recovery kernel.img &&
	   debugfs -R logdump kernel.img 2>&1 | grep -q 'type 2 (commit'; then
		fsck_replays kernel.img
		replayed=$((replayed + 1))
	else
		out=$(e2fsck -fy kernel.img 2>&1) || :
		grep -q '? yes' <<< "$out" && { echo "$out" >&2; fail "round $round: e2fsck repaired the killed image"; }
		fsck_clean kernel.img
	fi
	# ...and what rumpfs makes of it.
	start_rumpfs --image "$IMG"
	printf 'stat /\n' | fsc > /dev/null
	stop_rumpfs
	fsck_clean "$IMG"
done
echo "fs-journal: ok ($rounds kills, $replayed left a transaction to replay)"
