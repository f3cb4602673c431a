#!/usr/bin/env bash
# blk_file's cache modes.  cache=writeback goes through the host's page
# cache (the file's pages become resident, never an O_DIRECT descriptor),
# reads back what was written, and turns FLUSH and FUA writes into
# fdatasync; cache=none leaves the page cache alone; ro is honoured in
# both; a file that cannot do O_DIRECT and an unknown mode are refused;
# rumpd's configuration takes the mode and hands it to rumpdisk.
RUMPD_TEST_TIMEOUT=90
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/disklib.sh"

requires strace -V
requires fincore --version

M=1048576
dd if=/dev/urandom of=wb.img bs=1M count=16 status=none
cp wb.img none.img
cp wb.img ro.img
sync wb.img none.img ro.img

# resident FILE: bytes of FILE in the page cache.
resident() { fincore -b -n -o RES "$1" | tr -d ' '; }
# uncache FILE: drops FILE's clean pages from the page cache.
uncache() { dd if="$1" iflag=nocache count=0 status=none; }

# rumpdisk under strace: what it asks of the host is the point here
# (LeakSanitizer cannot run under ptrace: no leak check for this one).
start_server "$RUMPD_DIR/rumpdisk.pid" \
	bash -c 'log=$0; exec "$@" 2>>"$log"' "$LOG" \
	env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	strace -f -qq -o trace -e trace=openat,fdatasync,pwrite64 \
	"$RUMPDISK" --socket "$SOCK" --pidfile "$RUMPD_DIR/rumpdisk.pid" \
	--disk wd0=wb.img,cache=writeback --disk wd1=none.img,cache=none \
	--disk wd2=ro.img,ro,cache=writeback

grep -q 'openat(.*wb.img.*O_DIRECT' trace &&
	fail "cache=writeback opened its image with O_DIRECT"
grep -q 'openat(.*none.img.*O_DIRECT' trace ||
	fail "cache=none did not open its image with O_DIRECT"

# Reads: through the page cache for writeback only (compared with a copy:
# reading the images here would cache them).
cp wb.img orig.img
uncache wb.img
uncache none.img
dc read wd0 0 $((4 * M)) > out0
dc read wd1 0 $((4 * M)) > out1
[ "$(resident wb.img)" -ge $((4 * M)) ] ||
	fail "cache=writeback read around the page cache ($(resident wb.img) bytes resident)"
[ "$(resident none.img)" -lt $M ] ||
	fail "cache=none read through the page cache ($(resident none.img) bytes resident)"
cmp -s out0 <(head -c $((4 * M)) orig.img) || fail "wd0 (writeback) reads wrong"
cmp -s out1 <(head -c $((4 * M)) orig.img) || fail "wd1 (none) reads wrong"

# Writes land in the file, aligned or not.
for disk in wd0 wd1; do
	img=wb.img
	[ $disk = wd1 ] && img=none.img
	head -c $((3 * M)) /dev/urandom > data
	dc write $disk $((5 * M)) < data || fail "writing $disk"
	dc read $disk $((5 * M)) $((3 * M)) | cmp -s - data ||
		fail "$disk reads back wrong"
	cmp -s <(tail -c +$((5 * M + 1)) $img | head -c $((3 * M))) data ||
		fail "$img does not hold what $disk wrote"
	head -c 1536 /dev/urandom > small
	dc write $disk 512 < small || fail "writing 1536 bytes to $disk"
	cmp -s <(tail -c +513 $img | head -c 1536) small ||
		fail "$img does not hold the unaligned write to $disk"
done

# FLUSH and FUA on writeback are fdatasync, a plain write is not.
# strace writes its lines as the calls return: count them before and
# after each request.
syncs() { grep -c 'fdatasync(' trace || true; }
before=$(syncs)
expect "ok 4096" dc try wd0 write $((9 * M)) 4096
[ "$(syncs)" = "$before" ] || fail "a plain writeback write ran fdatasync"
expect "ok 0" dc try wd0 flush 0 0
wait_for 5 "fdatasync after FLUSH" test "$(syncs)" -gt "$before"
before=$(syncs)
expect "ok 4096" dc try wd0 raw:2:1 $((10 * M)) 4096   # WRITE, FUA
wait_for 5 "fdatasync after a FUA write" test "$(syncs)" -gt "$before"

# Read-only stays read-only with writeback.
sum=$(sha256sum < ro.img)
head -c 4096 /dev/urandom | dc write wd2 0 2>/dev/null &&
	fail "a write to read-only wd2 succeeded"
expect "EBADF" dc try wd2 zero 0 4096
[ "$(sha256sum < ro.img)" = "$sum" ] || fail "ro.img changed"
grep -q 'pwrite64([0-9]*, .*, 4096, 0)' trace &&
	fail "rumpdisk wrote to the read-only image"
dc read wd2 0 $M | cmp -s - <(head -c $M ro.img) || fail "wd2 reads wrong"
stop_rumpdisk

# Refusals, each with a message that says why.
try_start() {
	"$RUMPDISK" --socket "$RUMPD_DIR/refused.sock" "$@" 2>err && return 1
	return 0
}
try_start --disk wd0=wb.img,cache=sometimes ||
	fail "an unknown cache mode was taken"
grep -q 'cache=none|,cache=writeback' err ||
	fail "no usage hint for a bad cache mode: $(cat err)"
if findmnt -n -o FSTYPE -T /dev/shm 2>/dev/null | grep -qx tmpfs; then
	shm=$(mktemp /dev/shm/rumpd-cache.XXXXXX)
	cleanup_fn rm -f "$shm"
	truncate -s 1M "$shm"
	try_start --disk "wd0=$shm,cache=none" ||
		fail "cache=none took a file that cannot do O_DIRECT"
	grep -q 'cannot do direct I/O' err ||
		fail "no clear error for cache=none on tmpfs: $(cat err)"
	# Without a mode the same file is served through the page cache.
	start_rumpdisk --disk "wd0=$shm"
	expect "ok 4096" dc try wd0 read 0 4096
	stop_rumpdisk
fi

# rumpd's configuration: the mode is parsed, checked and handed down.
cat > cache.conf <<EOF
[disk]
driver = disk
device = wd0 $RUMPD_DIR/wb.img cache=writeback ro
device = wd1 $RUMPD_DIR/none.img cache=none
EOF
"$RUMPD" -c cache.conf --check || fail "rumpd refused the cache modes"
printf '%s\n' '[disk]' 'driver = disk' \
	"device = wd0 $RUMPD_DIR/wb.img cache=sometimes" > bad.conf
"$RUMPD" -c bad.conf --check 2>err && fail "rumpd took cache=sometimes"
grep -q "bad.conf:3: .*unknown option 'cache=sometimes'" err ||
	fail "no clear error for cache=sometimes: $(cat err)"
rm -f "$SOCK"
"$RUMPD" -c cache.conf > rumpd.out 2>&1 &
rumpd_pid=$!
kill_at_exit "$rumpd_pid"
wait_for 20 "rumpd to supervise" grep -q supervising rumpd.out
pid=$(pgrep -f "rumpdisk --socket $RUMPD_DIR/") ||
	fail "no rumpdisk under rumpd"
tr '\0' ' ' < "/proc/$pid/cmdline" > cmdline
grep -Eq 'wd0=/dev/fd/[0-9]+,ro,cache=writeback ' cmdline &&
	grep -Eq 'wd1=/dev/fd/[0-9]+,cache=none ' cmdline ||
	fail "rumpd did not pass the cache modes: $(cat cmdline)"
served() { [ "$(dc try wd0 read 0 4096 2>/dev/null)" = "ok 4096" ]; }
wait_for 10 "rumpd's rumpdisk to serve" served
kill -TERM "$rumpd_pid"
wait "$rumpd_pid" || fail "rumpd exited with status $?"
echo "$0: PASS"
