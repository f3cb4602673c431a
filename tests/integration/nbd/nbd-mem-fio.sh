#!/usr/bin/env bash
# fio's nbd engine with crc32c verification, several jobs at once, over
# the gateway's RAM backend.
RUMPD_TEST_TIMEOUT=150
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
source "$here/nbd-lib.sh"
requires sh -c 'fio --enghelp | grep -qw nbd'

sock=$RUMPD_DIR/nbd.sock
start_gateway "$sock" --backend mem:128M

cat > verify.fio <<FIO
[global]
ioengine=nbd
uri=$(nbd_uri "$sock")
size=32m
verify=crc32c
verify_fatal=1
do_verify=1
iodepth=16
[rand4k]
rw=randwrite
bs=4k
offset=0
[seq1m]
rw=write
bs=1m
offset=32m
[mixed]
rw=randwrite
bsrange=4k-256k
offset=64m
[small]
rw=randwrite
bs=512
size=4m
offset=96m
FIO
fio --output=fio.out verify.fio || { cat fio.out; fail "fio failed"; }
grep -q 'verify: bad' fio.out && fail "fio found corruption"
[ "$(grep -c 'err= 0' fio.out)" = 4 ] || { cat fio.out; fail "a fio job failed"; }
gateway_alive "$sock"
stop_gateway
echo "$0: PASS"
