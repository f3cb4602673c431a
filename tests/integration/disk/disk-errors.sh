#!/usr/bin/env bash
# Bad input gets a clear error and the server keeps serving: requests out
# of range, misaligned, oversized, on bad handles, with bad opcodes or
# flags; conflicting opens; a client leaving with requests in flight; an
# image truncated before and while it is served; bad command lines.
RUMPD_TEST_TIMEOUT=90
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/disklib.sh"

M=1048576
script='label: dos\n,8MiB,83\n,8MiB,83\n,,83\n'
make_image a.img 64M "$script"
make_image short.img 64M "$script"
truncate -s 12M short.img          # wd1s1 fits, wd1s2 and wd1s3 do not
make_image shrink.img 64M "$script"
head -c 4096 /dev/urandom > garbage.img
truncate -s 8M garbage.img         # no table at all

start_rumpdisk --disk wd0=a.img --disk wd1=short.img \
	--disk wd2=shrink.img --disk wd3=garbage.img --disk ro0=a.img,ro

# Requests the runtime refuses: past the end, straddling it, misaligned.
expect "ok 512"    dc try wd0s1 read 0 512
expect "EINVAL"    dc try wd0s1 read $((8 * M)) 512
expect "EINVAL"    dc try wd0s1 read $((8 * M - 512)) 1024
expect "EINVAL"    dc try wd0s1 read 100 512
expect "EINVAL"    dc try wd0s1 read 0 100
expect "ENOSPC"    dc try wd0s1 write $((8 * M)) 512
expect "ENOSPC"    dc try wd0s1 discard $((8 * M - 512)) 1024
expect "EINVAL"    dc try wd0 read 18446744073709551104 512
# Requests the service refuses: too large, buffer outside the area,
# unknown opcode, flags that do not apply, a handle never opened.
expect "EOVERFLOW" dc try wd0 read 0 $((64 * M))
expect "EFAULT"    dc try wd0 read 0 $((20 * M))
expect "EOPNOTSUPP" dc try wd0 raw:99:0 0 512
expect "EINVAL"    dc try wd0 raw:1:1 0 512
expect "EBADF"     dc try wd0 raw:1:0:12345 0 512
expect "EBADF"     dc try wd0 raw:1:0:0 0 512
# Read-only: no writers, and a reader's handle cannot write.
expect "EROFS ok"  dc opens ro0 w r
expect "EBADF"     dc try ro0 write 0 512

# One writer or many readers, per device.
expect "ok ok EBUSY" dc opens wd0s2 r r w
expect_soon "ok EBUSY EBUSY" dc opens wd0s2 rw r w
# Handles went with their session: free again.
expect_soon "ok" dc opens wd0s2 w

# A client that leaves with 64 requests in flight, several times.
for i in 1 2 3 4 5; do
	dc flood wd0 64
done
expect "ok 4096" dc try wd0 read 0 4096
expect_soon "ok" dc opens wd0 w

# The image that was truncated before: what fits is served, the rest is
# left out with a warning.
[ "$(rumpdisk_parts wd1 | cut -d' ' -f1)" = 1 ] ||
	fail "wd1 has partitions $(rumpdisk_parts wd1 | cut -d' ' -f1)"
grep -q 'wd1: MBR: partition 2 .* outside the disk' "$LOG" ||
	fail "no warning about wd1s2"
expect "ok 512" dc try wd1s1 read $((8 * M - 512)) 512

# The image truncated while served: reads past its new end fail with
# EIO, the rest works.
truncate -s 4M shrink.img
expect "EIO"    dc try wd2s1 read $((6 * M)) 4096
expect "EIO"    dc try wd2s1 read $((6 * M)) 512
expect "ok 512" dc try wd2s1 read 0 512

# No table: the disk is served whole, with no partitions.
dc info wd3 | grep -q 'size=8388608 ' || fail "wd3"
expect ENOENT dc info wd3s1

# Everyone else is still served.
dc list | grep -q '^wd0s2 ' || fail "the server lost wd0s2"
server_pid "$RUMPD_DIR/rumpdisk.pid" >/dev/null

# Command lines rumpdisk refuses, with a reason.
set +e
"$RUMPDISK" --socket x.sock 2>err; st=$?
[ $st = 2 ] && grep -q 'no disk' err || fail "no disks: status $st"
"$RUMPDISK" --socket x.sock --disk wd0 2>err; st=$?
[ $st = 2 ] && grep -q 'want NAME=PATH' err || fail "--disk wd0: status $st"
"$RUMPDISK" --socket x.sock --disk wd0=missing.img 2>err; st=$?
[ $st = 1 ] && grep -q 'missing.img: No such file' err ||
	fail "missing image: status $st: $(cat err)"
"$RUMPDISK" --socket x.sock --mem md0=12Q 2>err; st=$?
[ $st = 1 ] && grep -q 'blk_mem wants a size' err ||
	fail "bad size: status $st: $(cat err)"
set -e
stop_rumpdisk
echo "$0: PASS"
