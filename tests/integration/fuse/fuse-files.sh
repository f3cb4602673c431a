#!/usr/bin/env bash
# Real programs on a rumpfuse mount of an ext4 image: copies, rsync of
# /usr/include, links, xattrs, modes and owners, renames, a big directory,
# a sparse file, truncate, fallocate.  Everything is checked again after
# a remount (so it came from the image, not from a cache), and e2fsck must
# find the image clean after each round.
RUMPD_TEST_TIMEOUT=600
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
source "$here/fuse-lib.sh"

requires rsync --version
requires setfattr --version
requires getfattr --version
requires fallocate --version

make_fs 4G
start_rumpfs
mount_fuse

# --- plain files ---------------------------------------------------------
head -c 3000000 /dev/urandom > "$RUMPD_DIR/random.bin"
cp "$RUMPD_DIR/random.bin" "$MNT/random.bin"
cmp "$RUMPD_DIR/random.bin" "$MNT/random.bin" || fail "cp/cmp differ"
printf 'hello\n' > "$MNT/small"
[ "$(cat "$MNT/small")" = hello ] || fail "small file reads back wrong"
: > "$MNT/empty"
[ -f "$MNT/empty" ] && [ ! -s "$MNT/empty" ] || fail "empty file"
# Appends and overwrites in the middle.
printf 'abc' >> "$MNT/small"
printf 'XY' | dd of="$MNT/small" bs=1 seek=1 conv=notrunc status=none
[ "$(cat "$MNT/small")" = "hXYlo
abc" ] || fail "append/overwrite wrong: $(cat "$MNT/small")"

# --- trees: rsync -a /usr/include and /usr/share/doc --------------------
rsync -a /usr/include/ "$MNT/include/"
rsync -a /usr/share/doc/ "$MNT/doc/"
diff -r --no-dereference /usr/include "$MNT/include" || fail "rsync copy differs"
diff -r --no-dereference /usr/share/doc "$MNT/doc" || fail "rsync of doc differs"

# --- links ---------------------------------------------------------------
mkdir "$MNT/links"
echo target > "$MNT/links/file"
ln "$MNT/links/file" "$MNT/links/hard"
ln -s file "$MNT/links/soft"
long=$(printf 'x%.0s' {1..300})
ln -s "$long/$long" "$MNT/links/slow"  # a slow symlink (> 60 bytes)
[ "$(stat -c %h "$MNT/links/file")" = 2 ] || fail "link count not 2"
[ "$(stat -c %i "$MNT/links/file")" = "$(stat -c %i "$MNT/links/hard")" ] ||
	fail "hard link has another inode"
[ "$(readlink "$MNT/links/soft")" = file ] || fail "symlink target"
[ "$(cat "$MNT/links/soft")" = target ] || fail "reading through symlink"
[ "$(readlink "$MNT/links/slow")" = "$long/$long" ] || fail "slow symlink"

# --- xattrs --------------------------------------------------------------
setfattr -n user.color -v blue "$MNT/links/file"
setfattr -n user.big -v "0x$(head -c 3000 /dev/urandom | od -An -tx1 |
                             tr -d ' \n')" "$MNT/small"
setfattr -n user.gone -v x "$MNT/small"
setfattr -x user.gone "$MNT/small"
[ "$(getfattr --absolute-names --only-values -n user.color "$MNT/links/file")" = blue ] ||
	fail "xattr value"
getfattr --absolute-names -d "$MNT/small" > "$RUMPD_DIR/xattrs.before"
grep -q '^user.big=' "$RUMPD_DIR/xattrs.before" || fail "big xattr missing"
! grep -q user.gone "$RUMPD_DIR/xattrs.before" || fail "removed xattr shows"
! getfattr --absolute-names -n user.nothing "$MNT/small" 2>/dev/null ||
	fail "a missing xattr was found"

# --- modes and owners ----------------------------------------------------
mkdir "$MNT/own"
touch "$MNT/own/a" "$MNT/own/b"
chmod 4751 "$MNT/own/a"
chown 1234:5678 "$MNT/own/b"
chgrp 5678 "$MNT/own"
chmod 2775 "$MNT/own"
touch "$MNT/own/inherits"
mkdir "$MNT/own/subdir"
[ "$(stat -c %a "$MNT/own/a")" = 4751 ] || fail "mode 4751"
[ "$(stat -c %u:%g "$MNT/own/b")" = 1234:5678 ] || fail "chown"
[ "$(stat -c %g "$MNT/own/inherits")" = 5678 ] || fail "set-group-ID dir"
[ "$(stat -c %a "$MNT/own/subdir")" = 2755 ] || fail "set-group-ID subdir"
TZ=UTC touch -d '2001-02-03 04:05:06.789' "$MNT/own/a"
want=$(TZ=UTC date -d '2001-02-03 04:05:06' +%s).789000000
[ "$(stat -c %.9Y "$MNT/own/a")" = "$want" ] || fail "utimens (ns)"
stat -c '%n %a %u %g %.9Y' "$MNT"/own/* > "$RUMPD_DIR/own.before"

# --- renames across directories ------------------------------------------
mkdir -p "$MNT/r1/sub" "$MNT/r2"
echo moved > "$MNT/r1/sub/f"
mv "$MNT/r1/sub/f" "$MNT/r2/g"
mv "$MNT/r1/sub" "$MNT/r2/sub"
echo old > "$MNT/r2/victim"
echo new > "$MNT/r2/winner"
mv "$MNT/r2/winner" "$MNT/r2/victim"           # over an existing file
[ ! -e "$MNT/r1/sub" ] && [ "$(cat "$MNT/r2/g")" = moved ] &&
	[ "$(cat "$MNT/r2/victim")" = new ] || fail "renames"
# renameat2 flags, through mv's --exchange if coreutils has it.
if mv --help 2>/dev/null | grep -q -- --exchange; then
	echo one > "$MNT/r2/x1"; echo two > "$MNT/r2/x2"
	mv --exchange "$MNT/r2/x1" "$MNT/r2/x2"
	[ "$(cat "$MNT/r2/x1")" = two ] || fail "RENAME_EXCHANGE"
fi

# --- a 10,000-entry directory --------------------------------------------
mkdir "$MNT/many"
( cd "$MNT/many" && seq -f 'entry-%05g' 1 10000 | xargs touch )
[ "$(ls "$MNT/many" | wc -l)" = 10000 ] || fail "10000 entries listed"
[ "$(find "$MNT/many" -type f | wc -l)" = 10000 ] || fail "find"
rm "$MNT"/many/entry-0*5
[ "$(ls "$MNT/many" | wc -l)" = 9000 ] || fail "after removing 1000"

# --- a 2 GiB sparse file, truncate, fallocate ----------------------------
truncate -s 2G "$MNT/sparse"
printf 'tail' | dd of="$MNT/sparse" bs=1 seek=$((2 * 1024 * 1024 * 1024 - 4)) \
	conv=notrunc status=none
[ "$(stat -c %s "$MNT/sparse")" = 2147483648 ] || fail "sparse size"
[ "$(du -k "$MNT/sparse" | cut -f1)" -lt 1024 ] || fail "sparse is not sparse"
[ "$(tail -c 4 "$MNT/sparse")" = tail ] || fail "sparse tail"
cmp -n 1000000 "$MNT/sparse" /dev/zero || fail "sparse hole is not zeroes"
cp "$RUMPD_DIR/random.bin" "$MNT/cut"
truncate -s 1000 "$MNT/cut"
cmp "$MNT/cut" <(head -c 1000 "$RUMPD_DIR/random.bin") || fail "truncate down"
truncate -s 5000 "$MNT/cut"
cmp -i 1000 -n 4000 "$MNT/cut" /dev/zero || fail "truncate up is not zeroes"
fallocate -l 8M "$MNT/falloc"
[ "$(stat -c %s "$MNT/falloc")" = 8388608 ] || fail "fallocate size"
[ "$(du -k "$MNT/falloc" | cut -f1)" -ge 8192 ] || fail "fallocate blocks"
cp "$RUMPD_DIR/random.bin" "$MNT/holed"
fallocate -p -o 4096 -l 65536 "$MNT/holed"
cmp -i 4096 -n 65536 "$MNT/holed" /dev/zero || fail "punched hole"
cmp -n 4096 "$MNT/holed" "$RUMPD_DIR/random.bin" || fail "before the hole"

# --- statfs --------------------------------------------------------------
df -k "$MNT" | tail -1 | awk '{ exit !($2 > 3000000) }' || fail "df size"

# --- after a remount, everything is still there -------------------------
find "$MNT" -printf '%P %y %m %U %G %s %n %l\n' | sort > "$RUMPD_DIR/tree.before"
remount
find "$MNT" -printf '%P %y %m %U %G %s %n %l\n' | sort > "$RUMPD_DIR/tree.after"
diff "$RUMPD_DIR/tree.before" "$RUMPD_DIR/tree.after" ||
	fail "the tree changed across a remount"
diff -r --no-dereference /usr/include "$MNT/include" || fail "include differs after remount"
diff -r --no-dereference /usr/share/doc "$MNT/doc" || fail "doc differs after remount"
cmp "$RUMPD_DIR/random.bin" "$MNT/random.bin" || fail "random.bin after remount"
getfattr --absolute-names -d "$MNT/small" > "$RUMPD_DIR/xattrs.after"
diff "$RUMPD_DIR/xattrs.before" "$RUMPD_DIR/xattrs.after" || fail "xattrs"
stat -c '%n %a %u %g %.9Y' "$MNT"/own/* > "$RUMPD_DIR/own.after"
diff "$RUMPD_DIR/own.before" "$RUMPD_DIR/own.after" || fail "modes/owners"
[ "$(tail -c 4 "$MNT/sparse")" = tail ] || fail "sparse tail after remount"

# --- removing it all leaves a clean, empty file system -------------------
rm -rf "${MNT:?}"/*
[ -z "$(ls -A "$MNT" | grep -v '^lost+found$')" ] || fail "rm -rf left files"
umount_fuse
fsck_clean
echo "fuse-files: ok"
