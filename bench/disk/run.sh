#!/usr/bin/env bash
# bench/disk: one run, peers side by side, ratios printed.
#
# On one image (1 GiB by default, on a disk-backed directory so O_DIRECT
# works), four workloads: 4 KiB random read at queue depth 1 and 32, 1 MiB
# sequential read and write.  Contenders:
#   limit     fio on the file, direct, best of io_uring and psync
#   native    bench-disk: our client library straight to rumpdisk
#   rumpnbd   fio's nbd engine -> rumpnbd -> rumpdisk
#   nbdkit    fio's nbd engine -> nbdkit file plugin
#   qemu-nbd  fio's nbd engine -> qemu-nbd --cache=none --aio=io_uring
#
#   bench/disk/run.sh [BUILDDIR]     env: SIZE=1G SECONDS=5 DIR=/var/tmp
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
size=${SIZE:-1G}
seconds=${SECONDS_PER_RUN:-5}
work=$(mktemp -d "${DIR:-/var/tmp}/rumpd-bench-disk.XXXXXX")
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

for tool in fio nbdkit qemu-nbd python3; do
	command -v "$tool" >/dev/null || { echo "bench-disk: needs $tool" >&2; exit 1; }
done

wait_for_socket() {
	for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done
	echo "bench-disk: $1 did not appear" >&2
	exit 1
}

img=$work/disk.img
echo "bench-disk: filling a $size image in $work"
fio --name=fill --filename="$img" --size="$size" --rw=write --bs=1M \
    --direct=1 --ioengine=psync --refill_buffers --output=/dev/null

export RUMPD_DIR=$work
"$build/servers/rumpdisk/rumpdisk" --disk "wd0=$img" --socket "$work/disk.sock" \
    2>"$work/rumpdisk.log" & pids+=($!)
wait_for_socket "$work/disk.sock"
"$build/gateways/nbd/rumpnbd" --disk-service "$work/disk.sock" \
    --unix "$work/rumpnbd.sock" 2>"$work/rumpnbd.log" & pids+=($!)
nbdkit -f -U "$work/nbdkit.sock" file "$img" cache=none 2>"$work/nbdkit.log" & pids+=($!)
qemu-nbd -f raw --cache=none --aio=io_uring -t -e 8 -k "$work/qemu.sock" "$img" \
    2>"$work/qemu-nbd.log" & pids+=($!)
for s in rumpnbd nbdkit qemu; do wait_for_socket "$work/$s.sock"; done

# fio_run NAME RW BS QD EXTRA... -> prints "iops bytes_per_second"
fio_run() {
	local rw=$2 bs=$3 qd=$4
	shift 4
	fio --name=b --rw="$rw" --bs="$bs" --iodepth="$qd" --size="$size" \
	    --runtime="$seconds" --time_based --ramp_time=1 --norandommap \
	    --output-format=json "$@" 2>/dev/null |
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

nbd_run() { fio_run "$@" --ioengine=nbd --uri="$URI"; }

workloads=("randread 4k 1" "randread 4k 32" "read 1m 4" "write 1m 4")
declare -A result
for w in "${workloads[@]}"; do
	set -- $w
	echo "bench-disk: $1 bs=$2 qd=$3"
	result[$w,limit]=$( { fio_run x "$1" "$2" "$3" --filename="$img" --direct=1 --ioengine=io_uring
	                     fio_run x "$1" "$2" "$3" --filename="$img" --direct=1 --ioengine=psync; } | best_of)
	result[$w,native]=$(native_run "$1" "$2" "$3")
	result[$w,rumpnbd]=$(URI="nbd+unix:///wd0?socket=$work/rumpnbd.sock" nbd_run x "$1" "$2" "$3")
	result[$w,nbdkit]=$(URI="nbd+unix:///?socket=$work/nbdkit.sock" nbd_run x "$1" "$2" "$3")
	result[$w,qemu]=$(URI="nbd+unix:///?socket=$work/qemu.sock" nbd_run x "$1" "$2" "$3")
done

ratio() { python3 -c "a,b=$1,$2; print(f'{a/b:.2f}' if b else 'n/a')"; }
col() { set -- $1; echo "$1"; }          # iops
mib() { set -- $1; echo $(( $2 / 1048576 )); }

echo
printf '%-18s %12s %12s %12s %12s %12s\n' workload limit native rumpnbd nbdkit qemu-nbd
for w in "${workloads[@]}"; do
	set -- $w
	if [ "$2" = 4k ]; then f=col; unit=IOPS; else f=mib; unit=MiB/s; fi
	printf '%-18s %12s %12s %12s %12s %12s  %s\n' "$1 $2 qd$3" \
	    "$($f "${result[$w,limit]}")" "$($f "${result[$w,native]}")" \
	    "$($f "${result[$w,rumpnbd]}")" "$($f "${result[$w,nbdkit]}")" \
	    "$($f "${result[$w,qemu]}")" "$unit"
done
echo
echo "ratios (throughput; higher is better for us):"
for w in "${workloads[@]}"; do
	set -- $w
	n=$(col "${result[$w,native]}"); l=$(col "${result[$w,limit]}")
	g=$(col "${result[$w,rumpnbd]}"); k=$(col "${result[$w,nbdkit]}"); q=$(col "${result[$w,qemu]}")
	printf '  %-18s native/limit %s   rumpnbd/nbdkit %s   rumpnbd/qemu-nbd %s\n' \
	    "$1 $2 qd$3" "$(ratio "$n" "$l")" "$(ratio "$g" "$k")" "$(ratio "$g" "$q")"
done
echo "targets: native/limit >= 0.90 for 1m sequential, >= 0.70 for 4k qd32;"
echo "         rumpnbd ahead of nbdkit and qemu-nbd (ratios > 1)"
