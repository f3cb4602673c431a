#!/usr/bin/env bash
# Fetches and unpacks Debian's lwip source package, which the inet component
# compiles at build time with the project's own lwipopts.h and sys_arch.
# lwIP's code never enters the repository: it is unpacked into a git-ignored
# folder, third_party/lwip-src/ by default (meson's option lwip_src points
# there), or into the folder given as the first argument.
#
# Debian's compiled liblwip is not used: its build options differ from its
# installed headers, and its TAP receive path overflows the heap.
#
# Source entries are turned on by copying the machine's existing apt
# sources with their type changed to deb-src, so no host is named here.
# Safe to run again: it does nothing when the source is already there.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${1:-$here/third_party/lwip-src}

if [ -f "$dest/src/core/tcp.c" ] && [ -f "$dest/src/include/lwip/tcp.h" ]; then
	echo "lwip: source present in $dest"
	exit 0
fi

if ! command -v dpkg-source >/dev/null; then
	echo "lwip: dpkg-source missing (apt-get install dpkg-dev)" >&2
	exit 1
fi

# Is any source entry enabled already (one-line or deb822 format)?
have_deb_src() {
	grep -rqsE '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list \
		/etc/apt/sources.list.d/*.list 2>/dev/null && return 0
	grep -rqsE '^Types:.*\bdeb-src\b' /etc/apt/sources.list.d/*.sources \
		2>/dev/null
}

if ! have_deb_src; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "lwip: no deb-src entries in apt's sources; run as root" >&2
		exit 1
	fi
	out=/etc/apt/sources.list.d/rumpd-deb-src.sources
	tmp=$(mktemp)
	# deb822 files: each stanza with "Types: deb" copied as deb-src.
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && [ "$f" != "$out" ] || continue
		awk 'BEGIN { RS = ""; ORS = "\n\n" }
		     /(^|\n)Types:([^\n]*[ \t])?deb([ \t\n]|$)/ {
			sub(/(^|\n)Types:[^\n]*/, "\nTypes: deb-src"); sub(/^\n/, "")
			print }' "$f" >>"$tmp"
	done
	# One-line files: "deb ..." lines copied as "deb-src ...".
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		sed -nE 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f"
	done >"$tmp.list"
	if [ -s "$tmp" ]; then
		install -m 0644 "$tmp" "$out"
	fi
	if [ -s "$tmp.list" ]; then
		install -m 0644 "$tmp.list" /etc/apt/sources.list.d/rumpd-deb-src.list
	fi
	rm -f "$tmp" "$tmp.list"
	apt-get update -qq
fi

work=$(mktemp -d)
# apt downloads as its own user when it can write there.
if [ "$(id -u)" -eq 0 ] && getent passwd _apt >/dev/null; then
	chown _apt "$work"
fi
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get source -qq lwip >/dev/null)
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'lwip-*' | head -n1)
if [ -z "$src" ] || [ ! -f "$src/src/core/tcp.c" ]; then
	echo "lwip: apt-get source lwip gave no usable tree" >&2
	exit 1
fi
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$src" "$dest"
echo "lwip: unpacked $(basename "$src") into $dest"
