#!/usr/bin/env bash
# Data lands where it should and nowhere else: writes to a partition stay
# inside it (checked on the image file itself), reads give back what was
# written, through the direct and the buffered engine, on a RAM disk too;
# discard and write-zeroes read back as zeroes; BLOCK_STATUS sees holes.
RUMPD_TEST_TIMEOUT=90
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/disklib.sh"

M=1048576
# Something everywhere, so that a stray write shows; then the table.
dd if=/dev/urandom of=mbr.img bs=1M count=64 status=none
printf 'label: dos\n,8MiB,83\n,8MiB,83\n,,5\n,8MiB,83\n,,83\n' |
	sfdisk -q --wipe never mbr.img >/dev/null
cp mbr.img buffered.img

start_rumpdisk --disk wd0=mbr.img --disk wd1=buffered.img,buffered \
	--mem md0=16M

# Where each partition lies, from the server itself.
declare -A start size
while read -r n s z; do
	start[$n]=$s size[$n]=$z
done < <(rumpdisk_parts wd0)
[ "${size[2]}" = $((8 * M)) ] || fail "wd0s2 is ${size[2]} bytes"

for disk in wd0 wd1; do
	img=mbr.img
	[ $disk = wd1 ] && img=buffered.img
	before_1=$(sha "$img" "${start[1]}" "${size[1]}")
	before_5=$(sha "$img" "${start[5]}" "${size[5]}")
	before_6=$(sha "$img" "${start[6]}" "${size[6]}")
	before_mbr=$(sha "$img" 0 $M)

	# All of wd0s2, in pieces of 1 MiB through the client.
	head -c $((8 * M)) /dev/urandom > data2
	dc write ${disk}s2 0 < data2 || fail "writing ${disk}s2"
	dc read ${disk}s2 0 $((8 * M)) | cmp -s - data2 ||
		fail "${disk}s2 reads back wrong"
	[ "$(sha "$img" "${start[2]}" "${size[2]}")" = \
	  "$(sha256sum < data2 | cut -d' ' -f1)" ] ||
		fail "$img does not hold the data at wd0s2's place"
	# A logical partition, at an unaligned-to-4K sector, with FUA.
	head -c 1536 /dev/urandom > data5
	dc write --fua ${disk}s5 512 < data5 || fail "writing ${disk}s5"
	dc read ${disk}s5 512 1536 | cmp -s - data5 ||
		fail "${disk}s5 reads back wrong"

	[ "$(sha "$img" "${start[1]}" "${size[1]}")" = "$before_1" ] ||
		fail "writing ${disk}s2 changed ${disk}s1"
	[ "$(sha "$img" "${start[6]}" "${size[6]}")" = "$before_6" ] ||
		fail "writing ${disk}s5 changed ${disk}s6"
	[ "$(sha "$img" 0 $M)" = "$before_mbr" ] ||
		fail "the partition table changed"
	[ "$(sha "$img" "${start[5]}" "${size[5]}")" != "$before_5" ] ||
		fail "${disk}s5 did not change"

	# Discard and write-zeroes: zeroes after.
	expect "ok 0" dc try ${disk}s2 discard $M $M
	expect "ok 0" dc try ${disk}s2 zero $((3 * M)) 4096
	head -c $M /dev/zero > zero1m
	dc read ${disk}s2 $M $M | cmp -s - zero1m ||
		fail "discarded range of ${disk}s2 is not zero"
	dc read ${disk}s2 $((3 * M)) 4096 | cmp -s - <(head -c 4096 zero1m) ||
		fail "zeroed range of ${disk}s2 is not zero"
	expect "ok 0" dc try ${disk}s2 flush 0 0
done

# BLOCK_STATUS: the hole punched into wd0s2 shows, offsets relative to it.
dc map wd0s2 > map
grep -qx "$M $M hole" map || fail "no hole at 1 MiB of wd0s2: $(cat map)"
awk '{ s += $2 } END { exit s != 8 * 1048576 }' map ||
	fail "wd0s2's extents do not add up to its size"

# The RAM disk.
head -c $((3 * M)) /dev/urandom > datam
dc write md0 $((5 * M)) < datam
dc read md0 $((5 * M)) $((3 * M)) | cmp -s - datam ||
	fail "md0 reads back wrong"
dc read md0 0 $M | cmp -s - zero1m || fail "md0 does not start zeroed"
expect "ok 0" dc try md0 discard $((5 * M)) $M
dc read md0 $((5 * M)) $M | cmp -s - zero1m || fail "md0 discard"
stop_rumpdisk
echo "$0: PASS"
