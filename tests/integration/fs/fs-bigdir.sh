#!/usr/bin/env bash
# Large directories: 5,000 subdirectories and 10,000 files in one
# directory each (directories grow past their first blocks), the other
# entry kinds added to a full directory, and operations that fail for
# lack of space: whatever fails must leave nothing behind.  e2fsck -fn
# after each part.
RUMPD_TEST_TIMEOUT=120
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lib.sh"
source "$HERE/fslib.sh"

IMG=$RUMPD_DIR/fs.img

mkimage "$IMG" 1G
start_rumpfs --image "$IMG"
{
	echo "mkdir /dirs"
	for i in $(seq -w 5000); do echo "mkdir /dirs/d$i"; done
	echo "mkdir /files"
	echo "fill /files 10000"
	# Every way of adding a name, into directories that are full.
	echo "symlink /somewhere /dirs/link"
	echo "mknod /dirs/fifo p"
	echo "create /dirs/file"
	echo "ln /files/entry-000007 /dirs/hard"
	echo "mv /files/entry-000008 /dirs/moved"
	echo "mv /dirs/d0001 /files/d0001"
	echo "rmdir /dirs/d0002"
	echo "count /dirs 5003"
	echo "count /files 10000"
	echo "stat /dirs/d5000"
} | fsc > /dev/null
stop_rumpfs
fsck_clean "$IMG"
debugfs -R "ls -l /dirs" "$IMG" 2>/dev/null | grep -qw d4999 ||
	fail "debugfs does not find /dirs/d4999"
[ "$(debugfs -R 'stat /dirs' "$IMG" 2>/dev/null |
     sed -n 's/.*Links: \([0-9]*\).*/\1/p')" = 5000 ] ||
	fail "/dirs has the wrong link count (4998 subdirectories)"

# Out of space: a small file system nearly filled with one file, then
# directories, files and symlinks until the space runs out.  The
# operation that fails must take back what it allocated.
SMALL=$RUMPD_DIR/small.img
mkimage "$SMALL" 16M -N 2048 -O ^has_journal
free=$(dumpe2fs -h "$SMALL" 2>/dev/null | sed -n 's/^Free blocks: *//p')
head -c $(( (free - 64) * 4096 )) /dev/zero > filler
start_rumpfs --image "$SMALL"
printf 'put filler /filler\nmkdir /d\n' | fsc
for kind in mkdir create symlink; do
	{
		for i in $(seq 3000); do
			case $kind in
			mkdir)   echo "mkdir /d/$kind-$i" ;;
			create)  echo "create /d/$kind-$i-with-a-longer-name" ;;
			symlink) echo "symlink $(printf 't%.0s' {1..100}) /d/$kind-$i" ;;
			esac
		done
	} > script
	"$FSCLIENT" "$SOCK" < script > /dev/null 2> err && fail "$kind never ran out of space"
	grep -q "No space left on device" err || { cat err >&2; fail "$kind: wrong error"; }
done
stop_rumpfs
fsck_clean "$SMALL"
! grep -q "half way" "$LOG" || { cat "$LOG" >&2; fail "an operation was not undone"; }
echo "fs-bigdir: ok"
