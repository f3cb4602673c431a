#!/usr/bin/env bash
# rumpctl disk list, info, read and write against rumpdisk: what list and
# info say matches sfdisk, reads at any alignment give the image's bytes,
# writes at any alignment land exactly where asked (checked on the image
# file against a copy patched by dd), and bad input fails with one clear
# line and the right status.
RUMPD_TEST_TIMEOUT=90
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/disklib.sh"

M=1048576
# Random everywhere, so that a stray write or a misplaced read shows.
dd if=/dev/urandom of=mbr.img bs=1M count=64 status=none
printf 'label: dos\n,8MiB,83\n,8MiB,83\n,,5\n,8MiB,83\n,,82\n' |
	sfdisk -q --wipe never mbr.img >/dev/null
make_image gpt.img 32M 'label: gpt
size=4MiB, type=L, name="boot"
size=8MiB, type=S, name="sw\\xc3\\xa4p"
type=L, name="root"\n'

start_rumpdisk --disk wd0=mbr.img --disk wd1=gpt.img,ro --mem md0=3M

# run STATUS CMD...: CMD must exit with STATUS; its output is in out and
# err.  A failure must say why on exactly one line, naming the device.
run()
{
	local want=$1 got=0
	shift
	"$@" > out 2> err || got=$?
	[ "$got" = "$want" ] ||
		{ cat err >&2; fail "'$*' exited $got, want $want"; }
	if [ "$want" = 1 ]; then
		[ "$(wc -l < err)" = 1 ] ||
			{ cat err >&2; fail "'$*': not one line of error"; }
	fi
}

# ---- list: every partition as sfdisk sees it, and the whole disks.
run 0 "$RUMPCTL" disk list
head -1 out | grep -Eq '^NAME +SIZE +BYTES +SECTOR +RO +SCHEME +INDEX +START +TYPE +LABEL$' ||
	fail "list: header is '$(head -1 out)'"
cp out list
for pair in wd0:mbr.img wd1:gpt.img; do
	disk=${pair%%:*} img=${pair#*:}
	want=$(sfdisk_parts "$img" | sort -n)
	got=$(awk -v d="$disk" '$1 ~ "^" d "s[0-9]+$" { print $7, $8, $3 }' \
	      list | sort -n)
	[ -n "$want" ] || fail "sfdisk found no partitions on $img"
	[ "$got" = "$want" ] || fail "$disk: rumpctl disk list says
$got
sfdisk says
$want"
	awk -v d="$disk" -v s="$(stat -c %s "$img")" '
		$1 == d { found = 1; exit !($3 == s && $7 == "-") }
		END { exit !found }' list || fail "$disk's row: $(grep "^$disk " list)"
done
grep -Eq '^wd0s2 +8MiB +8388608 +512 +no +mbr +2 +9437184 +0x83 +-$' list ||
	fail "wd0s2's row: $(grep '^wd0s2 ' list)"
grep -Eq '^wd0s3 .* 0x05 +-$' list || fail "wd0s3 is not extended"
grep -Eq '^wd1s1 +4MiB +4194304 +512 +yes +gpt +1 +1048576 +linux +boot$' list ||
	fail "wd1s1's row: $(grep '^wd1s1 ' list)"
grep -Eq $'^wd1s2 .* linux-swap +sw\xc3\xa4p$' list ||
	fail "wd1s2's row: $(grep '^wd1s2 ' list)"
grep -Eq '^md0 +3MiB +3145728 +512 +no ' list || fail "md0's row"
[ "$(awk 'NR > 1 { print $1 }' list | tr '\n' ' ')" = \
  "wd0 wd0s1 wd0s2 wd0s3 wd0s5 wd0s6 wd1 wd1s1 wd1s2 wd1s3 md0 " ] ||
	fail "list has devices $(awk 'NR > 1 { print $1 }' list)"

# The same through -s, and a socket with nothing behind it.
run 0 "$RUMPCTL" -s "$SOCK" disk list
cmp -s out list || fail "list through -s differs"
run 1 "$RUMPCTL" -s "$RUMPD_DIR/none.sock" disk list
grep -q "cannot reach the disk service at $RUMPD_DIR/none.sock: " err ||
	fail "no socket: $(cat err)"

# A socket of another kind of service.
start_server null.pid "$RUMPNULL" --pidfile null.pid
run 1 "$RUMPCTL" -s "$RUMPD_DIR/null.sock" disk list
grep -q 'serves a null service, not disk$' err || fail "null: $(cat err)"

# ---- info: every field, as sfdisk has them.
json=$(sfdisk --json gpt.img)
run 0 "$RUMPCTL" disk info wd1s2
cat > want <<EOF
name: wd1s2
parent: wd1
size: 8388608 (8MiB)
sector_size: 512
read_only: yes
partition: yes
flags: 0x3
scheme: gpt
part_index: 2
part_start: 5242880
mbr_type: 0x00
gpt_type: $(jq -r '.partitiontable.partitions[1].type' <<< "$json") (linux-swap)
gpt_guid: $(jq -r '.partitiontable.partitions[1].uuid' <<< "$json")
label: sw$(printf '\xc3\xa4')p
EOF
diff want out >&2 || fail "info wd1s2 differs from sfdisk's"
run 0 "$RUMPCTL" disk info wd0s6
grep -qx 'mbr_type: 0x82' out || fail "wd0s6: $(cat out)"
grep -qx 'gpt_type: -' out || fail "wd0s6 has a GPT type"
run 0 "$RUMPCTL" disk info wd0
grep -qx 'parent: -' out && grep -qx 'partition: no' out &&
	grep -qx 'size: 67108864 (64MiB)' out && grep -qx 'scheme: -' out ||
	fail "info wd0: $(cat out)"

# ---- read: any offset and length gives the image's bytes.
# image_bytes IMAGE OFFSET LEN
image_bytes()
{
	dd if="$1" bs=1M iflag=skip_bytes,count_bytes skip="$2" count="$3" \
		status=none
}

s2=9437184                        # wd0s2's start
for r in "0 1" "1 1" "511 2" "512 512" "100 3000000" "1048575 1048578" \
         "4095 5242881" "8388607 1"; do
	set -- $r
	run 0 "$RUMPCTL" disk read wd0s2 "$1" "$2"
	image_bytes mbr.img $(( s2 + $1 )) "$2" | cmp -s - out ||
		fail "read wd0s2 $1 $2 differs from the image"
done
# Suffixes, a whole disk, the last byte, nothing at the end.
run 0 "$RUMPCTL" disk read wd0 1K 3M
image_bytes mbr.img 1024 $(( 3 * M )) | cmp -s - out || fail "read 1K 3M"
run 0 "$RUMPCTL" disk read wd0 $(( 64 * M - 1 )) 1
image_bytes mbr.img $(( 64 * M - 1 )) 1 | cmp -s - out || fail "last byte"
run 0 "$RUMPCTL" disk read wd0s2 8M 0
[ ! -s out ] || fail "a read of nothing gave bytes"
# A large one, streamed (more chunks than in flight at once).
"$RUMPCTL" disk read wd0 7 $(( 64 * M - 7 )) | cmp -s - <(tail -c +8 mbr.img) ||
	fail "read of all of wd0 from byte 7"

# ---- write: unaligned ranges land exactly there and nowhere else.
cp mbr.img ref.img
# check_write DEV DEVSTART OFFSET LEN [pipe]
check_write()
{
	head -c "$4" /dev/urandom > data
	if [ "${5:-}" = pipe ]; then
		cat data | "$RUMPCTL" disk write -v "$1" "$3" 2> err ||
			{ cat err >&2; fail "write $*"; }
	else
		"$RUMPCTL" disk write -v "$1" "$3" < data 2> err ||
			{ cat err >&2; fail "write $*"; }
	fi
	grep -qx "$1: $4 bytes written at offset $3" err ||
		fail "write $*: -v said '$(cat err)'"
	dd if=data of=ref.img bs=1M oflag=seek_bytes seek=$(( $2 + $3 )) \
		conv=notrunc status=none
	cmp mbr.img ref.img >&2 || fail "write $*: the image is not as dd has it"
}
check_write wd0s2 $s2 0 1
check_write wd0s2 $s2 1 1
check_write wd0s2 $s2 511 2
check_write wd0s2 $s2 300 200
check_write wd0s2 $s2 1000 3000000 pipe
check_write wd0s2 $s2 1048575 5242881
check_write wd0s2 $s2 4096 4096
check_write wd0s2 $s2 $(( 8 * M - 1 )) 1 pipe
check_write wd0s2 $s2 0 $(( 8 * M ))
check_write wd0s2 $s2 12345 0
check_write wd0 0 $(( 17 * M - 100 )) 300 pipe   # across wd0s2's end
# What was written reads back through the service too.
run 0 "$RUMPCTL" disk read wd0 $(( 17 * M - 100 )) 300
cmp -s data out || fail "wd0 reads back wrong"
head -c 5000 /dev/urandom > data
"$RUMPCTL" disk write md0 $(( 3 * M - 5003 )) < data
run 0 "$RUMPCTL" disk read md0 $(( 3 * M - 5003 )) 5000
cmp -s data out || fail "md0 reads back wrong"

# ---- errors: one line with the device and why, status 1; nothing moved.
run 1 "$RUMPCTL" disk info wd9
grep -q '^rumpctl: wd9: no such device' err || fail "info wd9: $(cat err)"
run 1 "$RUMPCTL" disk read wd0s4 0 1
grep -q '^rumpctl: wd0s4: no such device' err || fail "read wd0s4: $(cat err)"
run 1 "$RUMPCTL" disk read wd0s2 1 8M
grep -q '^rumpctl: wd0s2: 8388608 bytes at offset 1 reach past the end' err ||
	fail "read past the end: $(cat err)"
[ ! -s out ] || fail "a refused read gave bytes"
run 1 "$RUMPCTL" disk read wd0s2 8M 1
head -c 2 /dev/zero > two
run 1 "$RUMPCTL" disk write wd0s2 $(( 8 * M - 1 )) < two
grep -q '^rumpctl: wd0s2: 2 bytes at offset 8388607 reach past the end' err ||
	fail "write past the end: $(cat err)"
run 1 "$RUMPCTL" disk write wd0s2 $(( 8 * M + 1 )) < /dev/null
grep -q 'offset 8388609 is past the end' err || fail "write offset: $(cat err)"
# From a pipe the length is only found out at the end: what fits lands.
printf '\1\2' | run 1 "$RUMPCTL" disk write wd0s2 $(( 8 * M - 1 ))
grep -q 'the input goes past the end of the device' err ||
	fail "pipe past the end: $(cat err)"
printf '\1' | dd of=ref.img bs=1 seek=$(( s2 + 8 * M - 1 )) conv=notrunc \
	status=none
cmp mbr.img ref.img >&2 || fail "refused writes changed the image"
run 1 "$RUMPCTL" disk write wd1s1 0 < two
grep -q '^rumpctl: wd1s1: open: Read-only file system$' err ||
	fail "write to read-only: $(cat err)"

# Usage errors: status 2.
run 2 "$RUMPCTL" disk
run 2 "$RUMPCTL" disk frob
run 2 "$RUMPCTL" disk list extra
run 2 "$RUMPCTL" disk info
run 2 "$RUMPCTL" disk read wd0 -1 5
run 2 "$RUMPCTL" disk read wd0 0 1X
run 2 "$RUMPCTL" disk read wd0 0 99999999999999999999
run 2 "$RUMPCTL" disk read wd0 0 16777216T
run 2 "$RUMPCTL" disk read wd0 0
run 2 "$RUMPCTL" disk write -x wd0 0
run 2 "$RUMPCTL" disk info "$(printf '%040d' 0)"
grep -q 'too long' err || fail "long name: $(cat err)"

# The server went through all of it.
run 0 "$RUMPCTL" disk info wd0s2
stop_rumpdisk
echo "$0: PASS"
