#!/usr/bin/env bash
# kill -9 rumpdisk under an nbdcopy and under a fio verify run, and start
# it again: the gateway reconnects, reopens, re-issues what was in flight,
# and both runs complete and verify.
RUMPD_TEST_TIMEOUT=240
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
source "$here/nbd-lib.sh"
requires nbdcopy --version
requires sh -c 'fio --enghelp | grep -qw nbd'

truncate -s 512M disk.img
start_disk --disk wd0="$PWD/disk.img"
sock=$RUMPD_DIR/nbd.sock
start_gateway "$sock" --disk-service "$RUMPD_DIR/disk.sock"
uri=$(nbd_uri "$sock")

# crash_disk DELAY CLIENT: kill -9 rumpdisk after DELAY seconds, while
# the CLIENT process still runs, then restart it.
crash_disk()
{
	local pid
	sleep "$1"
	kill -0 "$2" 2>/dev/null ||
		fail "the client finished before the crash: make it longer"
	pid=$(server_pid "$RUMPD_DIR/disk.pid")
	kill -KILL "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	sleep 0.3
	start_disk --disk wd0="$PWD/disk.img"
}

# Small requests over two connections: slow enough to be crashed twice.
head -c 256M /dev/urandom > src.img
nbdcopy --flush --connections=2 --requests=2 --request-size=16384 \
	src.img "$uri" &
copy=$!
kill_at_exit "$copy"
crash_disk 0.3 "$copy"
crash_disk 0.3 "$copy"
wait "$copy" || fail "nbdcopy failed across the rumpdisk crashes"
nbdcopy "$uri" back.img
[ "$(head -c 256M back.img | sha256sum)" = "$(sha256sum < src.img)" ] ||
	fail "data differs after the crashes"
[ "$(grep -c 'disk service back' "$RUMPD_DIR/nbd.log")" -ge 2 ] ||
	fail "the gateway did not notice both crashes"

# Rate-limited so that both crashes land inside the run.
cat > verify.fio <<FIO
[global]
ioengine=nbd
uri=$uri
size=64m
rate=32m
verify=crc32c
verify_fatal=1
do_verify=1
iodepth=32
[rand4k]
rw=randwrite
bs=4k
offset=0
[seq]
rw=write
bs=256k
offset=64m
[mixed]
rw=randwrite
bsrange=4k-1m
offset=128m
FIO
fio --output=fio.out verify.fio &
fio=$!
kill_at_exit "$fio"
crash_disk 1 "$fio"
crash_disk 0.5 "$fio"
wait "$fio" || { cat fio.out; fail "fio failed across the crashes"; }
grep -q 'verify: bad' fio.out && fail "fio found corruption"
[ "$(grep -c 'err= 0' fio.out)" = 3 ] || { cat fio.out; fail "a fio job failed"; }
[ "$(grep -c 'disk service back' "$RUMPD_DIR/nbd.log")" -ge 4 ] ||
	fail "the gateway did not notice the crashes under fio"

gateway_alive "$sock"
stop_gateway
echo "$0: PASS"
