#!/usr/bin/env bash
# Journals written by another implementation: debugfs (e2fsprogs) writes
# transactions with data blocks, a revoke record and an escaped block,
# with and without checksums (v3); rumpfs must replay them as e2fsck does,
# block for block, and stop at a transaction whose checksum is wrong.
RUMPD_TEST_TIMEOUT=120
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lib.sh"
source "$HERE/fslib.sh"

IMG=$RUMPD_DIR/fs.img
BS=4096
X=10000 Y=10001 Z=10002

head -c $BS /dev/urandom > A.bin
head -c $BS /dev/urandom > B.bin
# Starts with the jbd2 magic: debugfs writes it escaped.
{ printf '\xc0\x3b\x39\x98'; head -c $((BS - 4)) /dev/urandom; } > C.bin

# blk IMAGE N: block N of the image.
blk() { dd if="$1" bs=$BS skip="$2" count=1 status=none; }

# journal IMAGE OPEN-ARGS: T1 writes X, T2 revokes X, T3 writes Y and Z.
journal()
{
	printf '%s\n' "jo $2" "jw -b $X A.bin" "jc" \
		"jo $2" "jw -r $X" "jc" \
		"jo $2" "jw -b $Y B.bin" "jw -b $Z C.bin" "jc" > cmds
	debugfs -w -f cmds "$1" > debugfs.out 2>&1 ||
		{ cat debugfs.out; fail "debugfs could not write the journal"; }
	debugfs -R logdump "$1" 2>&1 | grep -q 'sequence 3, type 2 (commit' ||
		fail "debugfs wrote no third transaction"
}

# replay_by_rumpfs IMAGE: a read-write mount replays, then unmounts.
replay_by_rumpfs()
{
	: > "$LOG"
	start_rumpfs --image "$1"
	printf 'stat /\n' | fsc > /dev/null
	stop_rumpfs
	grep -q 'journal replayed' "$LOG" || { cat "$LOG"; fail "no replay"; }
	fsck_clean "$1"
}

for open_args in "" "-c -v 3"; do
	mkimage "$IMG" 64M
	journal "$IMG" "$open_args"
	cp --sparse=always "$IMG" kernel.img
	e2fsck -fy kernel.img > fsck.out 2>&1 || :
	grep -q 'recovering journal' fsck.out || { cat fsck.out; fail "e2fsck did not recover"; }
	replay_by_rumpfs "$IMG"
	for b in $X $Y $Z; do
		cmp -s <(blk "$IMG" $b) <(blk kernel.img $b) ||
			fail "journal '$open_args': block $b differs from e2fsck's replay"
	done
	cmp -s <(blk "$IMG" $X) <(head -c $BS /dev/zero) ||
		fail "journal '$open_args': the revoked block was replayed"
	cmp -s <(blk "$IMG" $Y) B.bin || fail "journal '$open_args': Y not replayed"
	cmp -s <(blk "$IMG" $Z) C.bin ||
		fail "journal '$open_args': the escaped block came back wrong"
done

# A data block of T3 damaged in the log: its tag's checksum (v3) fails,
# and rumpfs replays T1 and T2 only.
mkimage "$IMG" 64M
journal "$IMG" "-c -v 3"
at=$(debugfs -R logdump "$IMG" 2>&1 |
     sed -n 's/.*sequence 3, type 1 (descriptor block) at block \([0-9]*\).*/\1/p')
[ -n "$at" ] || fail "no descriptor of T3 in the log"
phys=$(debugfs -R "bmap <8> $((at + 1))" "$IMG" 2>/dev/null)
printf '\x55' | dd of="$IMG" bs=1 seek=$((phys * BS + 100)) conv=notrunc status=none
replay_by_rumpfs "$IMG"
grep -q 'journal replayed: 2 transactions' "$LOG" ||
	{ cat "$LOG"; fail "a transaction with a bad checksum was replayed"; }
cmp -s <(blk "$IMG" $Y) <(head -c $BS /dev/zero) ||
	fail "a block of the damaged transaction was replayed"
echo "fs-replay: ok"
