#!/usr/bin/env bash
# bench/fs/meta.sh: the metadata workload of bench/fs alone, fuse2fs and
# rumpfs side by side, RUNS times each (alternating, so that a noisy
# neighbour hurts both alike), with the median of each phase.  For quick
# measurements while working on the metadata path; run.sh is the
# benchmark of record.
#
#   bench/fs/meta.sh [BUILDDIR]     env: DIR=/var/tmp, FILES=10000, RUNS=3
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${1:-$top/build}
files=${FILES:-10000}
runs=${RUNS:-3}

die() { echo "bench-fs-meta: $*" >&2; exit 1; }

[[ $files =~ ^[1-9][0-9]*$ ]] || die "FILES must be a positive number"
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number"
[ "$(id -u)" = 0 ] || die "needs root (mounts)"
for tool in fuse2fs mkfs.ext4 e2fsck mountpoint; do
	command -v "$tool" >/dev/null || die "needs $tool"
done
[ -d "$build" ] || meson setup "$build" "$top" --buildtype=release
build=$(cd "$build" && pwd)
ninja -C "$build" servers/rumpdisk/rumpdisk servers/rumpfs/rumpfs \
	gateways/fuse/rumpfuse bench/fs/metabench >/dev/null

work=$(mktemp -d "${DIR:-/var/tmp}/rumpd-bench-meta.XXXXXX")
export RUMPD_DIR=$work
declare -A pid=()

cleanup() {
	local m name
	for m in "$work"/mnt-*; do
		if mountpoint -q "$m" 2>/dev/null; then umount -l "$m" || true; fi
	done
	for name in rumpfuse fuse2fs rumpfs rumpdisk; do
		[ -n "${pid[$name]:-}" ] || continue
		kill "${pid[$name]}" 2>/dev/null || true
		wait "${pid[$name]}" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

wait_for() {   # TEST ARG: up to 10 s
	for _ in $(seq 200); do test "$1" "$2" && return 0; sleep 0.05; done
	die "$2 did not appear (logs in $work/*.log)"
}

wait_mounted() {
	for _ in $(seq 200); do mountpoint -q "$1" && return 0; sleep 0.05; done
	die "$1 was not mounted (logs in $work/*.log)"
}

stop() {
	kill -TERM "${pid[$1]}" 2>/dev/null || true
	wait "${pid[$1]}" || die "$1 exited with status $? (log: $work/$1.log)"
	unset "pid[$1]"
}

mount_peer() {
	local mnt=$work/mnt-$1
	case $1 in
	fuse2fs)
		fuse2fs -f "$work/$1.img" "$mnt" >>"$work/fuse2fs.log" 2>&1 &
		pid[fuse2fs]=$! ;;
	rumpfs)
		rm -f "$work"/*.pid
		"$build/servers/rumpdisk/rumpdisk" --disk "wd0=$work/rumpfs.img" \
			--socket "$work/disk.sock" --pidfile "$work/rumpdisk.pid" \
			2>>"$work/rumpdisk.log" &
		pid[rumpdisk]=$!
		wait_for -s "$work/rumpdisk.pid"
		"$build/servers/rumpfs/rumpfs" --device wd0 \
			--disk-service "$work/disk.sock" --socket "$work/fs.sock" \
			--pidfile "$work/rumpfs.pid" 2>>"$work/rumpfs.log" &
		pid[rumpfs]=$!
		wait_for -s "$work/rumpfs.pid"
		"$build/gateways/fuse/rumpfuse" --fs-service "$work/fs.sock" \
			-f "$mnt" 2>>"$work/rumpfuse.log" &
		pid[rumpfuse]=$! ;;
	esac
	wait_mounted "$mnt"
}

umount_peer() {
	case $1 in
	fuse2fs)
		umount "$work/mnt-$1"
		wait "${pid[fuse2fs]}" || die "fuse2fs exited with status $?"
		unset "pid[fuse2fs]" ;;
	rumpfs)
		stop rumpfuse
		stop rumpfs
		stop rumpdisk ;;
	esac
}

declare -A res=()   # "peer,phase" -> space-separated times
truncate -s 1G "$work/pristine.img"
mkfs.ext4 -q -F "$work/pristine.img"
for run in $(seq "$runs"); do
	for peer in fuse2fs rumpfs; do
		cp --sparse=always "$work/pristine.img" "$work/$peer.img"
		mkdir -p "$work/mnt-$peer"
		mount_peer "$peer"
		mkdir "$work/mnt-$peer/meta"
		line=$("$build/bench/fs/metabench" -n "$files" \
			"$work/mnt-$peer/meta")
		echo "run $run $peer: $line"
		for f in create stat unlink total; do
			v=${line#* "$f"=}
			res[$peer,$f]+="${v%% *} "
		done
		rmdir "$work/mnt-$peer/meta"
		umount_peer "$peer"
		if [ "$peer" = rumpfs ]; then
			e2fsck -fn "$work/rumpfs.img" >"$work/fsck.log" 2>&1 || {
				cat "$work/fsck.log" >&2
				die "e2fsck: the rumpfs image is not clean"
			}
		fi
	done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 }
	END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
printf '%-12s %10s %10s %8s   (medians of %d runs, %d files)\n' phase \
	fuse2fs rumpfs speedup "$runs" "$files"
for f in create stat unlink total; do
	a=$(median <<<"${res[fuse2fs,$f]}")
	b=$(median <<<"${res[rumpfs,$f]}")
	printf '%-12s %10s %10s %8s\n' "meta-$f" "$a" "$b" \
		"$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2fx", a / b }')"
done
echo "e2fsck -fn after every rumpfs run: clean"
