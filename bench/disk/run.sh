#!/usr/bin/env bash
# bench/disk: one run, peers side by side, ratios printed.
#
# Two matched sets, because a server that reads through the host's page
# cache and one that goes around it (O_DIRECT) are not doing the same
# work: the first copies from memory and gets the kernel's readahead and
# write-behind for free (nbdkit 1.32's file plugin has no O_DIRECT at all,
# and its 1 MiB reads beat the device), the second moves every byte to
# and from the device.  So each server is measured against its own kind:
#
#   direct (the device)          page cache
#   limit    fio, O_DIRECT       limit    fio, buffered psync (QD jobs)
#   native   bench-disk
#   rumpnbd  over cache=none     rumpnbd  over cache=writeback
#   qemu-nbd --cache=none        nbdkit   file plugin
#                                qemu-nbd --cache=writeback
#
# rumpnbd, nbdkit and qemu-nbd are driven by fio's nbd engine (libnbd) on
# a Unix socket; bench-disk is our client library straight to rumpdisk.
# Each set has its own 1 GiB image (on a disk-backed directory, so that
# O_DIRECT works); the page-cache image is read once before each read
# workload so that every contender starts warm, and synced after each
# write run so that none inherits another's dirty pages.  Four workloads:
# 4 KiB random read at queue depth 1 and 32, 1 MiB sequential read and
# write at depth 4.  The direct limit is the best of fio's io_uring and
# psync engines (psync has no queue: left out at depth 32).  About
# 36 runs of SECONDS_PER_RUN + 1 s (ramp): under 3 minutes by default.
#
# Huge pages decide large direct transfers here: a 1 MiB O_DIRECT read
# into 4 KiB pages is 256 segments, more than the virtio disk takes in one
# request, and measured, fio itself then reads at about half the speed it
# reaches from huge pages.  Our shared areas ask for huge pages
# (MADV_HUGEPAGE), granted when transparent_hugepage/shmem_enabled allows
# it (scripts/install.sh sets "advise"); fio's, qemu-nbd's and nbdkit's
# buffers get them only when transparent_hugepage/enabled is "always".  So
# that every contender and the limit have them alike, the run sets
# enabled=always and shmem_enabled=advise and restores both at the end;
# HUGEPAGES=0 measures the machine as it is.  The run prints the settings.
#
#   bench/disk/run.sh [BUILDDIR]
#   env: SIZE=1G SECONDS_PER_RUN=3 DIR=/var/tmp HUGEPAGES=1
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
size=${SIZE:-1G}
seconds=${SECONDS_PER_RUN:-3}
work=$(mktemp -d "${DIR:-/var/tmp}/rumpd-bench-disk.XXXXXX")
pids=()

thp=/sys/kernel/mm/transparent_hugepage
thp_saved=()

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
	if [ "${#thp_saved[@]}" = 2 ]; then
		echo "${thp_saved[0]}" >"$thp/enabled"
		echo "${thp_saved[1]}" >"$thp/shmem_enabled"
	fi
}
trap cleanup EXIT

# The bracketed word of a sysfs choice list.
thp_setting() { sed 's/.*\[\(.*\)\].*/\1/' "$thp/$1"; }

if [ "${HUGEPAGES:-1}" = 1 ]; then
	thp_saved=("$(thp_setting enabled)" "$(thp_setting shmem_enabled)")
	echo always >"$thp/enabled"
	echo advise >"$thp/shmem_enabled"
fi
echo "bench-disk: transparent huge pages: enabled=$(thp_setting enabled)" \
     "shmem_enabled=$(thp_setting shmem_enabled)"

for tool in fio nbdkit qemu-nbd python3; do
	command -v "$tool" >/dev/null || { echo "bench-disk: needs $tool" >&2; exit 1; }
done
fio --enghelp 2>/dev/null | grep -qw nbd ||
	{ echo "bench-disk: fio lacks its nbd engine" >&2; exit 1; }

wait_for_socket() {
	for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done
	echo "bench-disk: $1 did not appear" >&2
	exit 1
}

direct=$work/direct.img
cached=$work/cached.img
echo "bench-disk: filling two $size images in $work"
for img in "$direct" "$cached"; do
	fio --name=fill --filename="$img" --size="$size" --rw=write --bs=1M \
	    --direct=1 --ioengine=psync --refill_buffers --output=/dev/null
done

export RUMPD_DIR=$work
"$build/servers/rumpdisk/rumpdisk" --socket "$work/disk.sock" \
    --disk "wd0=$direct,cache=none" --disk "wd1=$cached,cache=writeback" \
    2>"$work/rumpdisk.log" & pids+=($!)
wait_for_socket "$work/disk.sock"
"$build/gateways/nbd/rumpnbd" --disk-service "$work/disk.sock" \
    --unix "$work/rumpnbd.sock" 2>"$work/rumpnbd.log" & pids+=($!)
nbdkit -f -U "$work/nbdkit.sock" file "$cached" cache=none \
    2>"$work/nbdkit.log" & pids+=($!)
qemu-nbd -f raw --cache=none --aio=io_uring -t -e 8 -k "$work/qemu.sock" \
    "$direct" 2>"$work/qemu-nbd.log" & pids+=($!)
qemu-nbd -f raw --cache=writeback --aio=threads -t -e 8 \
    -k "$work/qemu-wb.sock" "$cached" 2>"$work/qemu-nbd-wb.log" & pids+=($!)
for s in rumpnbd nbdkit qemu qemu-wb; do wait_for_socket "$work/$s.sock"; done

# fio_run RW BS QD EXTRA... -> prints "iops bytes_per_second"
fio_run() {
	local rw=$1 bs=$2 qd=$3
	shift 3
	fio --name=b --rw="$rw" --bs="$bs" --iodepth="$qd" --size="$size" \
	    --runtime="$seconds" --time_based --ramp_time=1 --norandommap \
	    --group_reporting --output-format=json "$@" 2>/dev/null |
	python3 -c '
import json, sys
out = sys.stdin.read()            # the nbd engine prints a line first
j = json.loads(out[out.index("{"):])["jobs"][0]
d = j["write"] if j["write"]["io_bytes"] else j["read"]
print(int(d["iops"]), int(d["bw_bytes"]))'
}

best_of() { sort -n -k1 | tail -n 1; }

native_run() {
	local rw=$1 bs=$2 qd=$3
	"$build/bench/disk/bench-disk" -s "$work/disk.sock" -d wd0 -w "$rw" \
	    -b "$bs" -q "$qd" -t "$seconds" | python3 -c '
import re, sys
m = re.search(r"([0-9.]+) IOPS ([0-9.]+) MiB/s", sys.stdin.read())
print(int(float(m.group(1))), int(float(m.group(2)) * 1048576))'
}

nbd_run() {
	local uri=$1
	shift
	fio_run "$@" --ioengine=nbd --uri="$uri"
}

# Before a cached run: warm for reads, clean for writes.
cached_prep() {
	case $1 in
	*read) cat "$cached" > /dev/null ;;
	*) sync "$cached" ;;
	esac
}

workloads=("randread 4k 1" "randread 4k 32" "read 1m 4" "write 1m 4")
declare -A r
for w in "${workloads[@]}"; do
	set -- $w
	echo "bench-disk: $1 bs=$2 qd=$3"
	# Buffers on a 2 MiB boundary, so that "always" gives fio whole
	# huge pages as our shared areas have.
	r[$w,dlimit]=$( {
		fio_run "$@" --filename="$direct" --direct=1 --ioengine=io_uring \
		    --iomem_align=2m
		[ "$3" -gt 4 ] ||
		fio_run "$@" --filename="$direct" --direct=1 --ioengine=psync \
		    --iomem_align=2m
	} | best_of)
	r[$w,native]=$(native_run "$@")
	r[$w,drumpnbd]=$(nbd_run "nbd+unix:///wd0?socket=$work/rumpnbd.sock" "$@")
	r[$w,dqemu]=$(nbd_run "nbd+unix:///?socket=$work/qemu.sock" "$@")

	cached_prep "$1"
	# invalidate=0: fio drops the file's pages before a run by default
	r[$w,climit]=$(fio_run "$1" "$2" 1 --filename="$cached" --direct=0 \
	               --invalidate=0 --ioengine=psync --numjobs="$3")
	cached_prep "$1"
	r[$w,crumpnbd]=$(nbd_run "nbd+unix:///wd1?socket=$work/rumpnbd.sock" "$@")
	cached_prep "$1"
	r[$w,nbdkit]=$(nbd_run "nbd+unix:///?socket=$work/nbdkit.sock" "$@")
	cached_prep "$1"
	r[$w,cqemu]=$(nbd_run "nbd+unix:///?socket=$work/qemu-wb.sock" "$@")
	cached_prep "$1"
done

ratio() { python3 -c "a,b=$1,$2; print(f'{a/b:.2f}' if b else 'n/a')"; }
iops() { set -- $1; echo "$1"; }
mib() { set -- $1; echo $(( $2 / 1048576 )); }
unit_of() { [ "$1" = 4k ] && echo iops || echo mib; }

# table TITLE KEY:HEADER...
table() {
	local title=$1 w f c
	shift
	local cols=("$@")
	echo
	printf '%-18s' "$title"
	for c in "${cols[@]}"; do printf ' %12s' "${c#*:}"; done
	echo
	for w in "${workloads[@]}"; do
		set -- $w
		f=$(unit_of "$2")
		printf '%-18s' "$1 $2 qd$3"
		for c in "${cols[@]}"; do
			printf ' %12s' "$($f "${r[$w,${c%%:*}]}")"
		done
		[ "$f" = iops ] && echo "  IOPS" || echo "  MiB/s"
	done
}

table direct dlimit:limit native:native drumpnbd:rumpnbd dqemu:qemu-nbd
table "page cache" climit:limit crumpnbd:rumpnbd nbdkit:nbdkit cqemu:qemu-nbd
echo
echo "ratios (throughput; higher is better for us):"
printf '  %-18s %13s %17s %17s %17s\n' "" native/limit \
    "rumpnbd/qemu-nbd" "rumpnbd/nbdkit" "rumpnbd/qemu-nbd"
printf '  %-18s %13s %17s %17s %17s\n' "" "(direct)" "(direct)" \
    "(page cache)" "(page cache)"
for w in "${workloads[@]}"; do
	set -- $w
	printf '  %-18s %13s %17s %17s %17s\n' "$1 $2 qd$3" \
	    "$(ratio "$(iops "${r[$w,native]}")" "$(iops "${r[$w,dlimit]}")")" \
	    "$(ratio "$(iops "${r[$w,drumpnbd]}")" "$(iops "${r[$w,dqemu]}")")" \
	    "$(ratio "$(iops "${r[$w,crumpnbd]}")" "$(iops "${r[$w,nbdkit]}")")" \
	    "$(ratio "$(iops "${r[$w,crumpnbd]}")" "$(iops "${r[$w,cqemu]}")")"
done
echo "targets: native/limit >= 0.90 for 1m sequential, >= 0.70 for 4k qd32;"
echo "         rumpnbd ahead of qemu-nbd and nbdkit in its set (ratios > 1)"
