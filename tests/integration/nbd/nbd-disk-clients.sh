#!/usr/bin/env bash
# The gateway over rumpdisk: a partitioned image (sfdisk, MBR) and a
# read-only one, exported by device name to qemu-img, nbdinfo, nbdcopy,
# fio and the raw client.
RUMPD_TEST_TIMEOUT=200
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
source "$here/nbd-lib.sh"
requires qemu-img --version
requires nbdinfo --version
requires nbdcopy --version
requires sfdisk --version
requires python3 --version
requires sh -c 'fio --enghelp | grep -qw nbd'

truncate -s 256M disk.img
printf 'label: dos\n2048,131072,83\n,131072,83\n' | sfdisk -q disk.img
head -c 16M /dev/urandom > ro.img
start_disk --disk wd0="$PWD/disk.img" --disk wd1="$PWD/ro.img,ro"
sock=$RUMPD_DIR/nbd.sock
start_gateway "$sock" --disk-service "$RUMPD_DIR/disk.sock"

# Exports are the devices, with the sizes sfdisk gave them.
nbdinfo --list "nbd+unix:///?socket=$sock" > list.txt
for dev in wd0 wd0s1 wd0s2 wd1; do
	grep -q "export=\"$dev\"" list.txt || fail "nbdinfo --list: no $dev"
done
[ "$(nbdinfo --size "$(nbd_uri "$sock" wd0s1)")" = 67108864 ] ||
	fail "wd0s1 size"
[ "$(nbdinfo --size "nbd+unix:///?socket=$sock")" = 268435456 ] ||
	fail "the default export is not wd0"
nbdinfo "$(nbd_uri "$sock" wd1)" | grep -q 'is_read_only: true' ||
	fail "wd1 not read-only"

# qemu-img into and out of a partition; its neighbour stays untouched.
head -c 64M /dev/urandom > p1.img
nbdcopy --flush p1.img "$(nbd_uri "$sock" wd0s1)"
head -c 64M /dev/urandom > p2.img
qemu-img info "$(nbd_uri "$sock" wd0s2)" | grep -q 'virtual size: 64 MiB' ||
	fail "qemu-img info wd0s2"
qemu-img convert -n -f raw -O raw p2.img "$(nbd_uri "$sock" wd0s2)"
qemu-img compare -f raw -F raw p2.img "$(nbd_uri "$sock" wd0s2)" ||
	fail "qemu-img compare wd0s2"
qemu-img convert -f raw -O raw "$(nbd_uri "$sock" wd0s2)" p2-out.img
cmp p2.img p2-out.img || fail "qemu-img convert out of wd0s2 differs"
nbdcopy "$(nbd_uri "$sock" wd0s1)" p1-out.img
[ "$(sha256sum < p1.img)" = "$(sha256sum < p1-out.img)" ] ||
	fail "wd0s1 changed under writes to wd0s2"
# The image itself holds the partition at sfdisk's offset.
cmp <(tail -c +$((2048 * 512 + 1)) disk.img | head -c 64M) p1.img ||
	fail "wd0s1 is not at its MBR offset in the image"

# Block status maps the unwritten tail of the sparse image as a hole.
nbdinfo --map "$(nbd_uri "$sock")" > map.txt
grep -q 'hole' map.txt || fail "nbdinfo --map: no hole: $(cat map.txt)"

# fio verify, several jobs, over the whole disk.
cat > verify.fio <<FIO
[global]
ioengine=nbd
uri=$(nbd_uri "$sock")
size=32m
verify=crc32c
verify_fatal=1
do_verify=1
iodepth=32
[rand4k]
rw=randwrite
bs=4k
offset=136m
[seq1m]
rw=write
bs=1m
offset=168m
[mixed]
rw=randwrite
bsrange=4k-1m
offset=200m
FIO
fio --output=fio.out verify.fio || { cat fio.out; fail "fio failed"; }
[ "$(grep -c 'err= 0' fio.out)" = 3 ] || { cat fio.out; fail "a fio job failed"; }

for case in options bounds bounds-simple readwrite inflight; do
	python3 "$RAWNBD" "$sock" "$case" wd0 || fail "case $case on wd0"
done
python3 "$RAWNBD" "$sock" bounds wd1 || fail "case bounds on read-only wd1"

gateway_alive "$sock"
stop_gateway
echo "$0: PASS"
