#!/usr/bin/env bash
# Writes drop file capabilities, as on any Linux file system: the kernel
# asks for security.capability before each write, and the gateway answers
# "none" itself for files it knows have none (created with O_EXCL, or
# found without).  A capability set afterwards, through this mount or
# another, must still be seen, and dropped by the next write.  Then a
# big directory through the mount (the name index behind create, lookup,
# rename and unlink), checked after a remount and by e2fsck.
RUMPD_TEST_TIMEOUT=300
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
source "$here/fuse-lib.sh"

requires setfattr --version
requires getfattr --version

CAP=0x0100000200000000000000000000000000000000   # VFS_CAP v2, no bits set

has_caps() { getfattr --absolute-names -n security.capability "$1" >/dev/null 2>&1; }

make_fs 256M
start_rumpfs
mount_fuse
# A second mount of the same rumpfs: changes it makes are not seen
# through the first gateway's own bookkeeping.
mount_fuse "$RUMPD_DIR/mnt2" fuse2 -o attr_timeout=30

# Created here with O_EXCL, written at once (the "none" answer is ours).
f=$MNT/prog
( set -o noclobber; echo one > "$f" ) || fail "O_EXCL create failed"
echo two >> "$f"
has_caps "$f" && fail "a new file has capabilities"

# Set through this mount: the next write must drop them.
setfattr -n security.capability -v "$CAP" "$f"
has_caps "$f" || fail "security.capability was not set"
echo three >> "$f"
sync "$f"
has_caps "$f" && fail "a write through the mount kept security.capability"

# The other mount remembers "none" for its file (long attr_timeout) ...
g=$RUMPD_DIR/mnt2/other
( set -o noclobber; echo one > "$g" ) || fail "O_EXCL create failed"
echo two >> "$g"
# ... a SETXATTR through it forgets that.
setfattr -n security.capability -v "$CAP" "$g"
echo three >> "$g"
sync "$g"
has_caps "$g" && fail "a write kept security.capability (second mount)"
[ "$(cat "$g")" = "$(printf 'one\ntwo\nthree')" ] || fail "contents differ"

# Found without capabilities by a GETXATTR, then given some: still seen.
h=$MNT/found
echo one > "$h"
has_caps "$h" && fail "unexpected capabilities"
setfattr -n security.capability -v "$CAP" "$h"
has_caps "$h" || fail "capabilities set after a negative answer not seen"
echo two >> "$h"
sync "$h"
has_caps "$h" && fail "a write kept security.capability (after a lookup)"

# --- a big directory -------------------------------------------------------
d=$MNT/big
mkdir "$d"
for i in $(seq 1 3000); do : > "$d/file-$i-$(printf '%0*d' $((i % 60)) 0)"; done
for i in $(seq 1 3000 | shuf -n 1000 --random-source=<(yes)); do
	name=file-$i-$(printf '%0*d' $((i % 60)) 0)
	if (( i % 2 )); then
		rm "$d/$name"
	else
		mv "$d/$name" "$d/moved-$i"
	fi
done
ls "$d" | sort > "$RUMPD_DIR/before.txt"
[ "$(wc -l < "$RUMPD_DIR/before.txt")" -gt 2400 ] || fail "too few names left"

umount_fuse fuse2
umount_fuse
fsck_clean

start_rumpfs
mount_fuse
ls "$d" | sort > "$RUMPD_DIR/after.txt"
cmp -s "$RUMPD_DIR/before.txt" "$RUMPD_DIR/after.txt" ||
	fail "the big directory differs after a remount"
while read -r name; do
	[ -e "$d/$name" ] || fail "$name is listed but cannot be looked up"
done < "$RUMPD_DIR/after.txt"
has_caps "$f" && fail "capabilities came back after a remount"
umount_fuse
fsck_clean
echo "fuse-caps: ok"
