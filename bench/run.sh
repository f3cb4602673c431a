#!/usr/bin/env bash
# Builds and runs the benchmarks.  Usage: bench/run.sh [BUILDDIR] [ARGS...]
# ARGS go to bench-ipc (e.g. --pin diff).  Numbers are only comparable
# within one run: every row is measured there, between the same processes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[ $# -gt 0 ] && shift
[ -d "$build" ] || meson setup "$build" "$root" --buildtype=release
ninja -C "$build" bench/ipc/bench-ipc
"$build/bench/ipc/bench-ipc" "$@"
