#!/usr/bin/env bash
# Partitions as sfdisk made them: MBR with logical partitions, GPT with
# names, and a GPT whose primary header is damaged (the backup is used).
RUMPD_TEST_TIMEOUT=60
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/disklib.sh"

make_image mbr.img 64M 'label: dos\n,8MiB,83\n,8MiB,83\n,,5
,4MiB,83\n,4MiB,82\n,,83\n'
make_image gpt.img 32M 'label: gpt
size=4MiB, type=L, name="boot"
size=8MiB, type=S, name="sw\\xc3\\xa4p"
type=L, name="root"\n'
cp --sparse=always gpt.img bad.img
# A byte of the primary header (its disk GUID): its CRC fails.
printf '\xff' | dd of=bad.img bs=1 seek=$(( 512 + 60 )) conv=notrunc status=none

start_rumpdisk --disk wd0=mbr.img --disk wd1=gpt.img --disk wd2=bad.img,ro \
	--mem md0=8M

for pair in wd0:mbr.img wd1:gpt.img wd2:bad.img; do
	disk=${pair%%:*} img=${pair#*:}
	want=$(sfdisk_parts "$img" | sort -n)
	got=$(rumpdisk_parts "$disk" | sort -n)
	[ -n "$want" ] || fail "sfdisk found no partitions on $img"
	[ "$got" = "$want" ] ||
		fail "$disk: rumpdisk lists
$got
sfdisk says
$want"
done

# The MBR disk: primaries 1-2, the extended one as 3, logical from 5.
got=$(dc list | awk '$2 == "parent=wd0" {
	sub("wd0s", "", $1); printf "%s%s", sep, $1; sep = " " }')
[ "$got" = "1 2 3 5 6 7" ] || fail "wd0's partitions are $got"
dc info wd0s3 | grep -q 'scheme=mbr mbr_type=0x5 ' ||
	fail "wd0s3 is not extended"
dc info wd0s5 | grep -q 'mbr_type=0x83 ' || fail "wd0s5 type"
dc info wd0s6 | grep -q 'mbr_type=0x82 ' || fail "wd0s6 type"

# GPT names, UTF-8 included.
dc info wd1s1 | grep -q 'scheme=gpt .* label=boot$' || fail "wd1s1 label"
dc info wd1s2 | grep -q $'label=sw\xc3\xa4p$' || fail "wd1s2 label"

# The damaged disk still has its partitions, from the backup, said loudly.
grep -q 'wd2: GPT: using the backup GPT header' "$LOG" ||
	fail "no warning about the backup header in the log"
dc info wd2s3 | grep -q 'ro=1' || fail "wd2s3 is not read-only"

# Whole disks and the RAM disk.
dc info wd0 | grep -q 'size=67108864 sector=512 ' || fail "wd0 size"
dc info md0 | grep -q 'size=8388608 ' || fail "md0 size"
expect ENOENT dc info wd9
stop_rumpdisk
echo "$0: PASS"
