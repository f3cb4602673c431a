#!/usr/bin/env bash
# Runs each libFuzzer harness under tests/fuzz for SECONDS (default 30).
# The transport's harnesses start from seeds this script writes; any
# harness may add seeds in tests/fuzz/seeds/<harness>/.  Builds in
# build-fuzz/ with clang (CC=clang, -Dfuzz=true).
#
#   bash scripts/fuzz.sh 60
set -euo pipefail

seconds=${1:-30}
case $seconds in
''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
cd "$root"

if ! command -v clang >/dev/null; then
	echo "fuzz.sh: clang is needed (apt-get install clang)" >&2
	exit 1
fi
if [ ! -d "$build" ]; then
	CC=clang meson setup "$build" -Dfuzz=true
fi
# Every harness under tests/fuzz (the transport's and the services').
mapfile -t harnesses < <(ninja -C "$build" -t targets all |
	sed -n 's|^\(tests/fuzz/\(.*/\)\{0,1\}fuzz_[a-z0-9_]*\): .*|\1|p')
if [ ${#harnesses[@]} -eq 0 ]; then
	echo "fuzz.sh: no harnesses configured" >&2
	exit 1
fi
ninja -C "$build" "${harnesses[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Seeds: a valid header + HELLO, a HELLO reply, a RING_SETUP, and a short
# ring script.  Written with printf so no binary files are committed.
hdr() { # type flags length
	printf "\\x01\\x$(printf %02x "$2")"
	printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $(($1 >> 8)))"
	printf "\\x$(printf %02x $(($3 & 255)))\\x$(printf %02x $(($3 >> 8)))\\x00\\x00"
	printf '\x07\x00\x00\x00\x00\x00\x00\x00'   # reqid
	printf '\x00\x00\x00\x00\x00\x00\x00\x00'   # status, reserved
}
mkdir -p "$work/msg" "$work/ring"
{ hdr 1 0 72; printf '\x01\x00\x00\x00\x01\x00\x00\x00'
  printf '\x00%.0s' $(seq 8); printf 'seed'; printf '\x00%.0s' $(seq 28); } \
	> "$work/msg/hello"
{ hdr 1 1 88; printf '\x01\x00\x00\x00\x01\x00\x00\x00'
  printf '\x2a\x00\x00\x00\x00\x00\x00\x00'
  printf '\x00\x00\x01\x00\x00\x10\x00\x00'
  printf '\x00\x00\x00\x40\x00\x00\x00\x00'
  printf 'null'; printf '\x00%.0s' $(seq 28); } > "$work/msg/hello_reply"
{ hdr 2 0 40; printf '\x04\x00\x00\x00\x08\x00\x00\x00'
  printf '\x00\x10\x00\x00\x00\x00\x00\x00'; } > "$work/msg/ring_setup"
{ hdr 3 0 24; } > "$work/msg/bye"
printf '\x01\x01\x00\xfe\xff\xff\xff\x00\x00\x00\x00\x01\x03\x04\x06\x01\x08\x04' \
	> "$work/ring/seed"

# fuzz_journal: an image that needs recovery, one transaction in its
# journal written by debugfs (checksums v3); its input is the journal's
# first 64 blocks, which must lie in one run on the disk (no flex_bg: it
# would place the bitmaps inside).
journal_image() {
	local img=$work/journal.img first last
	truncate -s 4M "$img"
	mkfs.ext4 -q -F -b 1024 -N 64 -J size=1 -O ^flex_bg "$img"
	head -c 1024 /dev/urandom > "$work/block"
	printf '%s\n' "jo -c" "jw -b 3000 $work/block" "jc" > "$work/cmds"
	debugfs -w -f "$work/cmds" "$img" > /dev/null 2>&1
	first=$(debugfs -R "bmap <8> 0" "$img" 2>/dev/null)
	last=$(debugfs -R "bmap <8> 63" "$img" 2>/dev/null)
	if [ "$((last - first))" != 63 ]; then
		echo "fuzz.sh: the journal's first 64 blocks are not in one run" >&2
		exit 1
	fi
	export FUZZ_JOURNAL_IMAGE=$img FUZZ_JOURNAL_OFFSET=$((first * 1024))
	export FUZZ_JOURNAL_LENGTH=$((64 * 1024))
	mkdir -p "$work/journal"
	dd if="$img" of="$work/journal/seed" bs=1024 skip="$first" count=64 \
	   status=none
}
journal_image

status=0
for target in "${harnesses[@]}"; do
	name=$(basename "$target")
	corpus=$work/corpus-$name
	mkdir -p "$corpus" "$work/art-$name"
	case $name in
	fuzz_msg) cp "$work"/msg/* "$corpus/" ;;
	fuzz_ring) cp "$work"/ring/* "$corpus/" ;;
	fuzz_journal) cp "$work"/journal/* "$corpus/" ;;
	esac
	if [ -d "tests/fuzz/seeds/$name" ]; then
		cp "tests/fuzz/seeds/$name"/* "$corpus/" 2>/dev/null || true
	fi
	echo "== $name for ${seconds}s"
	if ! "$build/$target" -max_total_time="$seconds" -max_len=70000 \
		-print_final_stats=1 -artifact_prefix="$work/art-$name/" \
		"$corpus"; then
		mkdir -p "$root/fuzz-crashes"
		cp "$work/art-$name"/* "$root/fuzz-crashes/" 2>/dev/null || true
		echo "$name: FAILED (inputs in fuzz-crashes/)" >&2
		status=1
	fi
done
exit $status
