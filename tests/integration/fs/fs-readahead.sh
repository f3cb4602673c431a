#!/usr/bin/env bash
# Read-ahead seen from outside: large files read back through rumpfs from
# a rumpdisk device (cache=none), several readers at once, then one with
# rumpdisk killed and restarted under it.  Every byte must be the one
# written.  (fs_readahead checks the backend itself, writes into the
# window included.)
RUMPD_TEST_TIMEOUT=170
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lib.sh"
source "$HERE/fslib.sh"
[ -x "${RUMPDISK:-}" ] || fail "\$RUMPDISK does not name a program"

IMG=$RUMPD_DIR/disk.img
DSOCK=$RUMPD_DIR/disk.sock
DPID=$RUMPD_DIR/rumpdisk.pid

mkimage "$IMG" 256M

start_disk()
{
	start_server "$DPID" \
		bash -c 'log=$0; exec "$@" 2>>"$log"' "$RUMPD_DIR/rumpdisk.log" \
		"$RUMPDISK" --socket "$DSOCK" --pidfile "$DPID" \
		--disk "wd0=$IMG"
}

# get_bg PATH OUT: fsclient reading PATH in the background.
get_bg()
{
	printf 'get %s %s\n' "$1" "$2" | "$FSCLIENT" "$SOCK" > /dev/null &
}

start_disk
start_rumpfs --device wd0 --disk-service "$DSOCK"
for i in 1 2 3; do head -c $(( 24 << 20 )) /dev/urandom > "data$i.bin"; done
head -c $(( 128 << 20 )) /dev/urandom > big.bin
fsc > /dev/null <<'S'
put big.bin /big
put data1.bin /f1
put data2.bin /f2
put data3.bin /f3
S
# A new rumpfs: nothing of the files left in its cache.
stop_rumpfs
start_rumpfs --device wd0 --disk-service "$DSOCK"

pids=()
for i in 1 2 3; do get_bg "/f$i" "got$i.bin"; pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || fail "a reader failed"; done
for i in 1 2 3; do
	cmp "data$i.bin" "got$i.bin" || fail "reader $i got other bytes"
done

# rumpdisk dies while a reader is under way: the reader is held once it
# has some of the file (read-ahead then is in flight or waiting to be
# used), rumpdisk is killed and restarted, and the reader goes on.
stop_rumpfs
start_rumpfs --device wd0 --disk-service "$DSOCK"
get_bg /big got.bin
reader=$!
kill_at_exit "$reader"
for (( i = 0; i < 2000; i++ )); do
	[ "$(stat -c %s got.bin 2>/dev/null || echo 0)" -ge $(( 8 << 20 )) ] &&
		break
	sleep 0.005
done
kill -STOP "$reader"
[ "$(stat -c %s got.bin)" -lt $(( 128 << 20 )) ] ||
	fail "the reader was done before rumpdisk could be killed"
kill -KILL "$(server_pid "$DPID")"
rm -f "$DSOCK"
start_disk
kill -CONT "$reader"
wait "$reader" || fail "the reader failed across the rumpdisk restart"
cmp big.bin got.bin || fail "bytes differ across the rumpdisk restart"

stop_rumpfs
stop_server "$DPID" || fail "rumpdisk did not stop cleanly"
fsck_clean "$IMG"
echo "fs-readahead: ok"
