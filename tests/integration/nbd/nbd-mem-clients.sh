#!/usr/bin/env bash
# Real NBD clients against the gateway's RAM backend: qemu-img info,
# convert in and out, compare; nbdinfo --list and --map; nbdcopy round
# trip with checksums.
RUMPD_TEST_TIMEOUT=100
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
source "$here/nbd-lib.sh"
requires qemu-img --version
requires nbdinfo --version
requires nbdcopy --version

sock=$RUMPD_DIR/nbd.sock
start_gateway "$sock" --backend mem:64M
uri=$(nbd_uri "$sock")

qemu-img info --output=json "$uri" > info.json
grep -q '"virtual-size": 67108864' info.json ||
	fail "qemu-img info: wrong size: $(cat info.json)"

nbdinfo --list "nbd+unix:///?socket=$sock" > list.txt
grep -q 'export="wd0"' list.txt || fail "nbdinfo --list: no wd0"
grep -q 'base:allocation' list.txt || fail "no base:allocation context"
grep -q 'block_size_maximum: 33554432' list.txt ||
	fail "no 32 MiB maximum block size"

# A fresh export is all holes.
nbdinfo --map "$uri" > map0.txt
[ "$(awk '{print $1, $2, $3}' map0.txt)" = "0 67108864 3" ] ||
	fail "fresh export not one hole: $(cat map0.txt)"

# 40 MiB of data, then 24 MiB of zeroes.
head -c 40M /dev/urandom > src.img
truncate -s 64M src.img
qemu-img convert -n -f raw -O raw src.img "$uri"
qemu-img compare -f raw -F raw src.img "$uri" ||
	fail "qemu-img compare: export differs from what was written"
qemu-img convert -f raw -O raw "$uri" out.img
cmp src.img out.img || fail "qemu-img convert out of the export differs"

nbdinfo --map "$uri" > map1.txt
awk '$3 == 0 { data += $2 } END { exit !(data >= 41943040) }' map1.txt ||
	fail "nbdinfo --map: data not mapped: $(cat map1.txt)"

# nbdcopy both ways, multi-conn and many requests in flight.
head -c 64M /dev/urandom > src2.img
nbdcopy --flush --connections=4 --requests=32 src2.img "$uri"
nbdcopy --connections=4 --requests=32 "$uri" back.img
[ "$(sha256sum < src2.img)" = "$(sha256sum < back.img)" ] ||
	fail "nbdcopy round trip: checksums differ"

stop_gateway
echo "$0: PASS"
