#!/usr/bin/env bash
# rumpfs --device: the file system's blocks come from a partition served
# by rumpdisk, over IPC.  A restart of rumpdisk shows as a delay only.
RUMPD_TEST_TIMEOUT=170
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lib.sh"
source "$HERE/fslib.sh"
[ -x "${RUMPDISK:-}" ] || fail "\$RUMPDISK does not name a program"
requires sfdisk --version

IMG=$RUMPD_DIR/disk.img
DSOCK=$RUMPD_DIR/disk.sock
DPID=$RUMPD_DIR/rumpdisk.pid

truncate -s 512M "$IMG"
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q "$IMG" >/dev/null
# The partition starts at 1 MiB and fills the rest of the disk.
mkfs.ext4 -q -F -O metadata_csum,64bit -b 4096 -E offset=1048576 \
	"$IMG" $(( (512 - 1) * 1024 ))k || fail "mkfs"

start_disk()
{
	start_server "$DPID" \
		bash -c 'log=$0; exec "$@" 2>>"$log"' "$RUMPD_DIR/rumpdisk.log" \
		"$RUMPDISK" --socket "$DSOCK" --pidfile "$DPID" \
		--disk "wd0=$IMG"
}
start_disk
start_rumpfs --device wd0s1 --disk-service "$DSOCK"

head -c 9000000 /dev/urandom > data.bin
fsc <<'S'
mountinfo
mkdir /dir
put data.bin /dir/data
get /dir/data back.bin
fill /dir 500
count /dir 501
S
cmp data.bin back.bin || fail "data read back differently"

# rumpdisk goes away and comes back: rumpfs reconnects and carries on.
stop_server "$DPID" || fail "rumpdisk did not stop cleanly"
start_disk
fsc <<'S'
write /dir/after 0 restarted
commit
cat /dir/after
S
stop_rumpfs
stop_server "$DPID" || fail "rumpdisk did not stop cleanly"

# The partition, checked where it lies in the image.
dd if="$IMG" of=part.img bs=1M skip=1 status=none
fsck_clean part.img
cmp data.bin <(dcat part.img /dir/data) || fail "debugfs reads another file"
[ "$(dcat part.img /dir/after)" = restarted ] || fail "write after restart"
echo "fs-device: ok"
