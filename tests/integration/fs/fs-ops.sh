#!/usr/bin/env bash
# rumpfs on an image: every operation, cross-checked with debugfs and
# e2fsck after a clean stop.
RUMPD_TEST_TIMEOUT=220
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lib.sh"
source "$HERE/fslib.sh"

IMG=$RUMPD_DIR/fs.img

# Files made by mkfs.ext4 -d read back identically.
mkdir -p seed/sub
head -c 1234567 /dev/urandom > seed/random.bin
printf 'small\n' > seed/sub/small.txt
ln -s random.bin seed/fastlink
ln -s "$(printf 'x%.0s' {1..200})" seed/slowlink
ln seed/sub/small.txt seed/hardlink
mkimage "$IMG" 3G -d seed

start_rumpfs --image "$IMG"
fsc <<'S'
get /random.bin got.bin
get /sub/small.txt got.txt
readlink /fastlink
stat /hardlink
S
cmp seed/random.bin got.bin || fail "mkfs -d file reads back differently"
cmp seed/sub/small.txt got.txt || fail "small file differs"
[ "$(printf 'readlink /slowlink\n' | fsc)" = "$(readlink seed/slowlink)" ] ||
	fail "slow symlink target differs"
printf 'stat /hardlink\n' | fsc | grep -q 'nlink=2' || fail "hard link count"

head -c 5000000 /dev/urandom > data.bin
fsc <<'S'
mkdir /a
mkdir /a/b
put data.bin /a/b/data
write /a/note 0 hello
write /a/note 5 _world
symlink /a/b/data /a/fast
mknod /a/chr c 250 70000
mknod /a/blk b 8 1
mknod /a/fifo p
mknod /a/sock s
ln /a/note /note-link
setxattr /a/note user.colour blue
setxattr /a/note trusted.t xyz
setxattr /a/note security.s 1
expect EEXIST setxattr /a/note user.colour red create
expect ENODATA setxattr /a/note user.none red replace
setxattr /a/note user.gone x
rmxattr /a/note user.gone
expect ENODATA getxattr /a/note user.gone
chmod /a/note 0600
chown /a/note 1234 70000
utime /a/note 1700000000 123456789
expect EEXIST create /a/note
expect EEXIST mkdir /a
expect ENOTEMPTY rmdir /a
expect ENOTDIR rmdir /a/note
expect EISDIR rm /a/b
expect EINVAL rmdir /a/.
expect ENOENT rm /a/none
expect EINVAL mv /a /a/b/inside
mkdir /m1
mkdir /m2
mkdir /m1/sub
write /m1/sub/f 0 moved
mv /m1/sub /m2/sub
mv /m2/sub/f /m2/g
write /m2/h 0 other
mv /m2/g /m2/h
expect EEXIST mv /m2/h /a/note noreplace
write /x1 0 one
write /x2 0 two
mv /x1 /x2 exchange
mkdir /big
fill /big 10000
count /big 10000
write /a/stale 0 s
stale /a/stale
write /sparse 2147483647 Z
truncate /a/b/data 1000000
write /t 0 0123456789
truncate /t 4
write /fa 0 abc
falloc /fa 0 1048576
falloc /fa 4096 8192 punch
commit
S
cmp <(head -c 1000000 data.bin) <(dcat "$IMG" /a/b/data) ||
	fail "truncated file differs (read by debugfs)"
[ "$(printf 'cat /a/note\n' | fsc)" = hello_world ] || fail "note"
[ "$(printf 'cat /x2\n' | fsc)" = one ] || fail "exchange"
[ "$(printf 'cat /m2/h\n' | fsc)" = moved ] || fail "rename over"
[ "$(printf 'cat /t\n' | fsc)" = 0123 ] || fail "truncate"
printf 'stat /sparse\n' | fsc | grep -q 'size=2147483648 blocks=8 ' ||
	fail "sparse file: $(printf 'stat /sparse\n' | fsc)"
printf 'stat /a/chr\n' | fsc | grep -q 'rdev=250:70000' || fail "rdev"
printf 'getxattr /a/note user.colour\n' | fsc | grep -qx blue || fail xattr
stop_rumpfs
fsck_clean "$IMG"

# What rumpfs wrote, debugfs reads.
[ "$(dcat "$IMG" /a/note)" = hello_world ] || fail "debugfs: /a/note"
[ "$(dcat "$IMG" /m2/h)" = moved ] || fail "debugfs: /m2/h"
debugfs -R "stat /a/note" "$IMG" 2>/dev/null | grep -q 'User:  1234' ||
	fail "debugfs: owner"
debugfs -R "stat /a/note" "$IMG" 2>/dev/null | grep -q 'Group: 70000' ||
	fail "debugfs: group (high 16 bits)"
debugfs -R "stat /a/note" "$IMG" 2>/dev/null |
	grep -q 'mtime: 0x6553f100:1d6f3454' || fail "debugfs: mtime"
debugfs -R "ea_get /a/note user.colour" "$IMG" 2>/dev/null | grep -q blue ||
	fail "debugfs: xattr"
[ "$(debugfs -R 'ls -l /big' "$IMG" 2>/dev/null | grep -c entry-)" = 10000 ] ||
	fail "debugfs: 10000 entries"

# Written by debugfs, read through rumpfs; read-only mounts refuse writes.
printf 'from debugfs\n' > dbg.txt
debugfs -w -R "write dbg.txt /dbg" "$IMG" >/dev/null 2>&1
start_rumpfs --image "$IMG" --ro
[ "$(printf 'cat /dbg\n' | fsc)" = "from debugfs" ] || fail "debugfs file"
fsc <<'S'
expect EROFS mkdir /ro
expect EROFS write /a/note 0 x
walk
S
stop_rumpfs
fsck_clean "$IMG"
echo "fs-ops: ok"
