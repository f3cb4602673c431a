#!/usr/bin/env bash
# Damaged images: each mutation (superblock, group descriptors, inode
# table, directory block, extent tree) is refused at mount with a clear
# line, or shows as EIO on the damaged object; rumpfs never crashes and
# the undamaged files still read back.
RUMPD_TEST_TIMEOUT=230
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lib.sh"
source "$HERE/fslib.sh"

BASE=$RUMPD_DIR/base.img
mkdir -p seed/dir
head -c 300000 /dev/urandom > seed/keep.bin
head -c 100000 /dev/urandom > seed/victim.bin
for i in $(seq 1 300); do : > "seed/dir/file-with-a-long-name-$i"; done
# Data chunks between holes: more extents than the inode holds, so the
# tree gets a block of its own.
for i in $(seq 0 9); do
	printf 'chunk %d' "$i" | dd of=seed/fragmented bs=1 \
		seek=$((i * 1048576)) conv=notrunc status=none
done
mkimage "$BASE" 64M -d seed
fsck_clean "$BASE"

BS=4096
block_of() { debugfs -R "$1" "$BASE" 2>/dev/null; }

# poke IMAGE OFFSET COUNT BYTE: COUNT bytes of BYTE (hex) at OFFSET.
poke()
{
	printf "%*s" "$3" "" | tr ' ' "\\$(printf '%03o' "0x$4")" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# try_image NAME ARGS...: serves $RUMPD_DIR/NAME.img; a refused mount
# must exit 1 with a "cannot mount" line, a served one must survive a walk,
# still serve keep.bin intact, and stop cleanly.
try_image()
{
	local img=$RUMPD_DIR/$1.img log=$RUMPD_DIR/$1.log pid status=0 i
	shift
	rm -f "$SOCK" "$PIDFILE"
	"$RUMPFS" --image "$img" --socket "$SOCK" --pidfile "$PIDFILE" "$@" \
		2>"$log" &
	pid=$!
	kill_at_exit "$pid"
	for (( i = 0; i < 200; i++ )); do
		[ -S "$SOCK" ] && [ -s "$PIDFILE" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if ! kill -0 "$pid" 2>/dev/null || ! [ -S "$SOCK" ]; then
		wait "$pid" || status=$?
		[ "$status" = 1 ] || { cat "$log" >&2;
			fail "$img: refused mount exited $status, want 1"; }
		grep -q 'cannot mount' "$log" ||
			fail "$img: no reason given for refusing"
		echo "$img: refused: $(grep 'cannot mount' "$log")"
		return 0
	fi
	"$FSCLIENT" "$SOCK" <<<"walk" || true
	kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "$img: rumpfs died"; }
	if "$FSCLIENT" "$SOCK" <<<"get /keep.bin keep.out"; then
		cmp seed/keep.bin keep.out || fail "$img: keep.bin changed"
	fi
	kill -TERM "$pid"
	wait "$pid" || status=$?
	[ "$status" = 0 ] || { cat "$log" >&2; fail "$img: exit $status"; }
	echo "$img: served"
}

mutate() { cp --sparse=always "$BASE" "$RUMPD_DIR/$1.img"; }

# ssv IMAGE FIELD VALUE: a superblock field, checksum kept valid (so the
# damage gets past the checksum to the code that must judge it).
ssv() { debugfs -w -R "ssv $2 $3" "$1" >/dev/null 2>&1 || fail "ssv $2"; }

# Superblock: bad magic; checksum wrong; absurd geometry.
mutate sb-magic; poke "$RUMPD_DIR/sb-magic.img" $((1024 + 56)) 2 00
try_image sb-magic --ro
mutate sb-csum; poke "$RUMPD_DIR/sb-csum.img" $((1024 + 24)) 4 ff
try_image sb-csum
mutate sb-geometry; ssv "$RUMPD_DIR/sb-geometry.img" blocks_count 0xfffffffff
try_image sb-geometry --ro
mutate sb-ipg; ssv "$RUMPD_DIR/sb-ipg.img" inodes_per_group 0
try_image sb-ipg --ro
mutate sb-logbs; ssv "$RUMPD_DIR/sb-logbs.img" log_block_size 20
try_image sb-logbs --ro
# Unknown incompatible feature bits.
mutate sb-feature
incompat=$(od -An -tu4 -j $((1024 + 96)) -N4 "$RUMPD_DIR/sb-feature.img")
ssv "$RUMPD_DIR/sb-feature.img" feature_incompat $(( incompat | 0x8000000 ))
try_image sb-feature
grep -q 'unsupported feature' "$RUMPD_DIR/sb-feature.log" ||
	fail "unknown features not named"
# Known to libext2fs but not safe here: encryption.
mutate sb-encrypt
ssv "$RUMPD_DIR/sb-encrypt.img" feature_incompat $(( incompat | 0x10000 ))
try_image sb-encrypt --ro
grep -q 'unsupported incompatible features 0x10000' \
	"$RUMPD_DIR/sb-encrypt.log" || fail "encryption not refused by name"
# The journal.  needs_recovery over an empty log: served, and cleared by
# a clean unmount.
mutate recover
debugfs -w -R "feature needs_recovery" "$RUMPD_DIR/recover.img" >/dev/null 2>&1
try_image recover
fsck_clean "$RUMPD_DIR/recover.img"
# A damaged journal superblock: read-write refused, read-only served
# (without the journal).
jsb=$(( $(block_of "bmap <8> 0") * BS ))
mutate jsb-magic
debugfs -w -R "feature needs_recovery" "$RUMPD_DIR/jsb-magic.img" >/dev/null 2>&1
poke "$RUMPD_DIR/jsb-magic.img" "$jsb" 4 00
try_image jsb-magic
grep -q 'journal superblock is damaged' "$RUMPD_DIR/jsb-magic.log" ||
	fail "a damaged journal superblock not explained"
try_image jsb-magic --ro
# A log start pointing at nothing valid (zeroes): no transaction replays.
mutate jsb-start
debugfs -w -R "feature needs_recovery" "$RUMPD_DIR/jsb-start.img" >/dev/null 2>&1
poke "$RUMPD_DIR/jsb-start.img" $(( jsb + 0x1f )) 1 01
try_image jsb-start --ro
try_image jsb-start
fsck_clean "$RUMPD_DIR/jsb-start.img"
# Absurd geometry: the log's first block past its end.
mutate jsb-first
poke "$RUMPD_DIR/jsb-first.img" $(( jsb + 0x14 )) 4 7f
try_image jsb-first
grep -q 'journal superblock is damaged' "$RUMPD_DIR/jsb-first.log" ||
	fail "a journal's bad geometry not explained"

# Group descriptors (block 1 with 4 KiB blocks).
mutate gdt-ff; poke "$RUMPD_DIR/gdt-ff.img" $((BS)) 256 ff
try_image gdt-ff --ro
mutate gdt-00; poke "$RUMPD_DIR/gdt-00.img" $((BS)) 64 00
try_image gdt-00

# The victim's inode in the inode table.
read -r blk off < <(block_of "imap /victim.bin" |
	sed -n 's/.*located at block \([0-9]*\), offset \(0x[0-9a-f]*\).*/\1 \2/p')
[ -n "$blk" ] || fail "imap"
mutate inode; poke "$RUMPD_DIR/inode.img" $((blk * BS + off + 40)) 60 a5
try_image inode
mutate inode-ro; poke "$RUMPD_DIR/inode-ro.img" $((blk * BS + off)) 128 ff
try_image inode-ro --ro

# A block of the big directory.
dblk=$(block_of "blocks /dir" | awk '{print $2}')
[ -n "$dblk" ] || fail "dir blocks"
mutate dirblock; poke "$RUMPD_DIR/dirblock.img" $((dblk * BS + 200)) 300 5a
try_image dirblock
mutate dirblock-len; poke "$RUMPD_DIR/dirblock-len.img" $((dblk * BS + 4)) 2 00
try_image dirblock-len

# The extent tree block of the fragmented file.
eblk=$(block_of "stat /fragmented" | sed -n 's/.*(ETB0):\([0-9]*\).*/\1/p')
[ -n "$eblk" ] || fail "no extent tree block"
mutate extents; poke "$RUMPD_DIR/extents.img" $((eblk * BS + 12)) 48 ee
try_image extents
mutate extents-hdr; poke "$RUMPD_DIR/extents-hdr.img" $((eblk * BS)) 4 00
try_image extents-hdr --ro

# A damaged file reads as EIO, not as garbage.
start_rumpfs --image "$RUMPD_DIR/extents.img"
fsc <<'S'
expect EIO get /fragmented frag.out
S
stop_rumpfs
echo "fs-damaged: ok"
