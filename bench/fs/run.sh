#!/usr/bin/env bash
# bench/fs: one run, peers side by side, ratios printed.
#
#   bench/fs/run.sh [BUILDDIR]     env: DIR=/var/tmp (disk-backed), FILES=10000
#
# Peers, each on its own copy of one freshly made 1 GiB ext4 image
# (mkfs.ext4 with its default features):
#   kernel    the kernel's ext4 on a loop mount (the limit)
#   passthru  libfuse's passthrough_ll example over a tmpfs (the cost of
#             FUSE itself), compiled here from the libfuse3-dev examples,
#             with -o writeback as rumpfuse has the writeback cache
#   fuse2fs   fuse2fs on the image (the peer to beat: libext2fs, one
#             process; like rumpfs it does not write the journal)
#   rumpfs    rumpfuse -> rumpfs --device wd0 -> rumpdisk --disk wd0=IMAGE
#
# Workloads, each from a fresh mount (the mount's caches in the kernel and
# the daemon's start empty; seqread also drops the host's page cache, which
# otherwise may hold image blocks for kernel and fuse2fs, whose image I/O is
# buffered, where rumpdisk's is direct):
#   seqwrite  512 MiB written with dd bs=1M, then fsync (conv=fsync)
#   seqread   the same file read back with dd bs=1M, after drop_caches
#   meta      metabench: create + stat + unlink of FILES 100-byte files
#   untar     tar -x of a tar of /usr/include; "untar+unmount" adds the
#             unmount, which writes everything back to the image
#   make      make -j2 of a generated C project of 40 files
# After each workload on rumpfs the image is checked with e2fsck -fn.
#
# Needs root, /dev/fuse, fuse2fs, libfuse3-dev (its examples and pkg-config
# file), a C compiler, make, tar.  Every peer runs each workload before the
# next workload starts, so that a noisy neighbour hurts all peers alike.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${1:-$top/build}
files=${FILES:-10000}
examples=/usr/share/doc/libfuse3-dev/examples

die() { echo "bench-fs: $*" >&2; exit 1; }

[[ $files =~ ^[1-9][0-9]*$ ]] || die "FILES must be a positive number"
[ "$(id -u)" = 0 ] || die "needs root (mounts, drop_caches)"
[ -c /dev/fuse ] || die "needs /dev/fuse"
for tool in fuse2fs mkfs.ext4 e2fsck cc make tar pkg-config mountpoint; do
	command -v "$tool" >/dev/null || die "needs $tool"
done
[ -f "$examples/passthrough_ll.c" ] ||
	die "needs libfuse's passthrough_ll.c in $examples (apt-get install libfuse3-dev)"

[ -d "$build" ] || meson setup "$build" "$top" --buildtype=release
build=$(cd "$build" && pwd)
ninja -C "$build" servers/rumpdisk/rumpdisk servers/rumpfs/rumpfs \
	gateways/fuse/rumpfuse bench/fs/metabench

work=$(mktemp -d "${DIR:-/var/tmp}/rumpd-bench-fs.XXXXXX")
export RUMPD_DIR=$work
peers=(kernel passthru fuse2fs rumpfs)
declare -A pid=()          # peer's daemons, "name" -> pid
fsck_failures=()

cleanup() {
	local m name
	for m in "$work"/mnt-* "$work/tmpfs"; do
		if mountpoint -q "$m" 2>/dev/null; then umount -l "$m" || true; fi
	done
	# The gateway first: with rumpfs gone it would wait for it to return.
	for name in rumpfuse passthru fuse2fs rumpfs rumpdisk; do
		[ -n "${pid[$name]:-}" ] || continue
		kill "${pid[$name]}" 2>/dev/null || true
		wait "${pid[$name]}" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

# --- set-up, not timed ----------------------------------------------------

echo "bench-fs: preparing in $work"
cc -O2 -Wall -o "$work/passthrough_ll" "$examples/passthrough_ll.c" \
	$(pkg-config --cflags --libs fuse3) || die "cannot build passthrough_ll"
mkdir "$work/tmpfs"
mount -t tmpfs -o size=1G tmpfs "$work/tmpfs"

truncate -s 1G "$work/pristine.img"
mkfs.ext4 -q -F "$work/pristine.img"
for p in kernel fuse2fs rumpfs; do
	cp --sparse=always "$work/pristine.img" "$work/$p.img"
done
for p in "${peers[@]}"; do mkdir "$work/mnt-$p"; done

tar -cf "$work/src.tar" -C /usr include
untar_files=$(tar -tf "$work/src.tar" | wc -l)
untar_mib=$(( $(stat -c %s "$work/src.tar") >> 20 ))

# The make project: 40 units with some arithmetic each, a shared header,
# and a program that links them all.
proj=$work/proj
mkdir "$proj"
{
	for i in $(seq 0 39); do echo "long unit$i(long x);"; done
} > "$proj/units.h"
for i in $(seq 0 39); do
	cat > "$proj/unit$i.c" <<-EOF
	#include <stdio.h>
	#include <string.h>
	#include "units.h"
	static long table$i[64];
	static long mix$i(long a, long b) { return (a * 2654435761L) ^ (b >> 3); }
	long unit$i(long x)
	{
		char buf[64];
		for (int k = 0; k < 64; k++)
			table$i[k] = mix$i(x + k, k * $i);
		snprintf(buf, sizeof(buf), "%ld", table$i[x & 63]);
		return (long)strlen(buf) + table$i[(x + $i) & 63];
	}
	EOF
done
{
	echo '#include <stdio.h>'
	echo '#include "units.h"'
	echo 'int main(void) { long s = 0;'
	for i in $(seq 0 39); do echo "  s += unit$i(s);"; done
	echo '  printf("%ld\n", s); return 0; }'
} > "$proj/main.c"
cat > "$proj/Makefile" <<'EOF'
OBJS := main.o $(patsubst %.c,%.o,$(wildcard unit*.c))
CFLAGS := -O2 -g -Wall
prog: $(OBJS)
	$(CC) -o $@ $(OBJS)
%.o: %.c units.h
	$(CC) $(CFLAGS) -c -o $@ $<
EOF

# --- mounting the peers ---------------------------------------------------

# wait_file PATH: daemons write their pid file once they serve.
wait_file() {
	for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done
	die "$1 did not appear (logs in $work/*.log)"
}

wait_mounted() {
	for _ in $(seq 200); do mountpoint -q "$1" && return 0; sleep 0.05; done
	die "$1 was not mounted (logs in $work/*.log)"
}

# stop NAME: SIGTERM a daemon and wait for it; it must exit 0.
stop() {
	local p=${pid[$1]}
	kill -TERM "$p" 2>/dev/null || true
	wait "$p" || die "$1 exited with status $? (log: $work/$1.log)"
	unset "pid[$1]"
}

# wait_exit NAME: a FUSE daemon ends by itself once unmounted.
wait_exit() {
	wait "${pid[$1]}" || die "$1 exited with status $? (log: $work/$1.log)"
	unset "pid[$1]"
}

mount_peer() {
	local peer=$1 mnt=$work/mnt-$1
	case $peer in
	kernel)
		mount -o loop "$work/kernel.img" "$mnt" ;;
	passthru)
		"$work/passthrough_ll" -f -o source="$work/tmpfs" -o writeback \
			"$mnt" 2>>"$work/passthru.log" &
		pid[passthru]=$!
		wait_mounted "$mnt" ;;
	fuse2fs)
		fuse2fs -f "$work/fuse2fs.img" "$mnt" >>"$work/fuse2fs.log" 2>&1 &
		pid[fuse2fs]=$!
		wait_mounted "$mnt" ;;
	rumpfs)
		rm -f "$work"/*.pid
		"$build/servers/rumpdisk/rumpdisk" --disk "wd0=$work/rumpfs.img" \
			--socket "$work/disk.sock" --pidfile "$work/rumpdisk.pid" \
			2>>"$work/rumpdisk.log" &
		pid[rumpdisk]=$!
		wait_file "$work/rumpdisk.pid"
		"$build/servers/rumpfs/rumpfs" --device wd0 \
			--disk-service "$work/disk.sock" --socket "$work/fs.sock" \
			--pidfile "$work/rumpfs.pid" 2>>"$work/rumpfs.log" &
		pid[rumpfs]=$!
		wait_file "$work/rumpfs.pid"
		"$build/gateways/fuse/rumpfuse" --fs-service "$work/fs.sock" \
			--pidfile "$work/rumpfuse.pid" -f "$mnt" \
			2>>"$work/rumpfuse.log" &
		pid[rumpfuse]=$!
		wait_mounted "$mnt" ;;
	esac
}

# umount_peer PEER: everything written back and the daemons gone.
umount_peer() {
	local peer=$1 mnt=$work/mnt-$1
	case $peer in
	kernel)
		umount "$mnt" ;;
	passthru | fuse2fs)
		umount "$mnt"
		wait_exit "$peer" ;;
	rumpfs)
		stop rumpfuse       # it unmounts itself and commits
		stop rumpfs
		stop rumpdisk ;;
	esac
}

# check_peer PEER WORKLOAD: rumpfs's image must be clean after each one.
check_peer() {
	local out
	[ "$1" = rumpfs ] || return 0
	if ! out=$(e2fsck -fn "$work/rumpfs.img" 2>&1); then
		echo "$out" >&2
		fsck_failures+=("$2")
		echo "bench-fs: e2fsck: rumpfs image NOT clean after $2" >&2
	fi
}

# finish PEER WORKLOAD
finish() {
	umount_peer "$1"
	check_peer "$1" "$2"
}

drop_caches() {
	sync
	echo 3 > /proc/sys/vm/drop_caches
}

# --- timing ---------------------------------------------------------------

declare -A t=()            # "workload,peer" -> seconds

# timed KEY CMD...: runs CMD, its wall time into t[KEY].
timed() {
	local key=$1 t0 t1
	shift
	t0=$EPOCHREALTIME
	"$@"
	t1=$EPOCHREALTIME
	t[$key]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
}

seq_mib=512
for peer in "${peers[@]}"; do
	echo "bench-fs: seqwrite $peer"
	mount_peer "$peer"
	timed "seqwrite,$peer" dd if=/dev/zero of="$work/mnt-$peer/big" bs=1M \
		count=$seq_mib conv=fsync status=none
	finish "$peer" seqwrite
done

for peer in "${peers[@]}"; do
	echo "bench-fs: seqread $peer"
	drop_caches
	mount_peer "$peer"
	timed "seqread,$peer" dd if="$work/mnt-$peer/big" of=/dev/null bs=1M \
		status=none
	rm "$work/mnt-$peer/big"
	finish "$peer" seqread
done

for peer in "${peers[@]}"; do
	echo "bench-fs: meta $peer"
	mount_peer "$peer"
	mkdir "$work/mnt-$peer/meta"
	line=$("$build/bench/fs/metabench" -n "$files" "$work/mnt-$peer/meta")
	for f in create stat unlink total; do
		v=${line#* "$f"=}
		t[meta-$f,$peer]=${v%% *}
	done
	rmdir "$work/mnt-$peer/meta"
	finish "$peer" meta
done

for peer in "${peers[@]}"; do
	echo "bench-fs: untar $peer"
	mount_peer "$peer"
	mkdir "$work/mnt-$peer/untar"
	timed "untar,$peer" tar -xf "$work/src.tar" -C "$work/mnt-$peer/untar"
	timed "unmount,$peer" umount_peer "$peer"
	check_peer "$peer" untar
	t[untar+unmount,$peer]=$(awk -v a="${t[untar,$peer]}" \
		-v b="${t[unmount,$peer]}" 'BEGIN { printf "%.4f", a + b }')
done

for peer in "${peers[@]}"; do
	echo "bench-fs: make $peer"
	mount_peer "$peer"
	cp -r "$proj" "$work/mnt-$peer/proj"
	timed "make,$peer" make -s -C "$work/mnt-$peer/proj" -j2
	"$work/mnt-$peer/proj/prog" >/dev/null ||
		die "make on $peer built a broken program"
	finish "$peer" make
done

# --- report ---------------------------------------------------------------

rows=(seqwrite seqread meta-create meta-stat meta-unlink meta-total
      untar untar+unmount make)

# cell ROW PEER: MiB/s for sequential I/O, seconds otherwise.
cell() {
	case $1 in
	seq*) awk -v s="${t[$1,$2]}" -v m=$seq_mib 'BEGIN { printf "%.0f", m / s }' ;;
	*)    echo "${t[$1,$2]}" ;;
	esac
}

echo
echo "bench-fs: image 1 GiB ext4 (mkfs.ext4 defaults); $files files for meta;"
echo "          untar: $untar_files entries, $untar_mib MiB; make: 40 units, -j2"
printf '%-15s %10s %10s %10s %10s  %s\n' workload "${peers[@]}" unit
for r in "${rows[@]}"; do
	case $r in seq*) unit=MiB/s ;; *) unit=s ;; esac
	printf '%-15s %10s %10s %10s %10s  %s\n' "$r" \
		"$(cell "$r" kernel)" "$(cell "$r" passthru)" \
		"$(cell "$r" fuse2fs)" "$(cell "$r" rumpfs)" "$unit"
done

# Ratios are speed-ups: the other peer's time over rumpfs's (so > 1 means
# rumpfs is faster, and for sequential I/O it is the throughput ratio).
ratio() {
	awk -v a="${t[$1,$2]}" -v b="${t[$1,rumpfs]}" \
		'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
}
echo
echo "rumpfs speed relative to each peer (> 1: rumpfs faster):"
printf '%-15s %16s %16s %16s\n' workload rumpfs/fuse2fs rumpfs/passthru \
	rumpfs/kernel
for r in "${rows[@]}"; do
	printf '%-15s %16s %16s %16s\n' "$r" "$(ratio "$r" fuse2fs)" \
		"$(ratio "$r" passthru)" "$(ratio "$r" kernel)"
done
echo "targets: rumpfs/fuse2fs >= 2 on meta-total; >= 1 on seqwrite and seqread"

if [ ${#fsck_failures[@]} -eq 0 ]; then
	echo "e2fsck -fn after every rumpfs workload: clean"
else
	echo "e2fsck -fn found errors after: ${fsck_failures[*]}"
	exit 1
fi
