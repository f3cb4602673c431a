#!/usr/bin/env bash
# Builds rumpd with -Wall -Wextra -Werror and runs the whole test suite.
#
#   scripts/test.sh              build-test/, plain build
#   scripts/test.sh --sanitize   build-asan/, AddressSanitizer + UBSan
#   scripts/test.sh ... -- ARGS  arguments for `meson test` instead of the
#                                default (every suite), e.g.
#                                -- --suite unit, -- --suite chaos
set -euo pipefail
cd "$(dirname "$0")/.."

builddir=build-test
# Test builds carry the test-only fault triggers (see docs/rumpd.md).
setup_args=(-Dtests=enabled -Dwerror=true -Dtest_triggers=true)
case "${1:-}" in
--sanitize)
	builddir=build-asan
	setup_args+=(-Db_sanitize=address,undefined -Db_lundef=false)
	shift
	;;
esac
[ "${1:-}" = "--" ] && shift

if [ -d "$builddir/meson-private" ]; then
	meson configure "$builddir" "${setup_args[@]}" >/dev/null
else
	meson setup "$builddir" "${setup_args[@]}"
fi
ninja -C "$builddir"

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
status=0
meson test -C "$builddir" --print-errorlogs --num-processes 2 "$@" || status=$?

# One closing line any CI reads: "N passed, N failed, N skipped".
python3 - "$builddir/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif r == "SKIP":
        skipped += 1
    else:
        failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
