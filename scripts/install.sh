#!/usr/bin/env bash
# Installs everything rumpd needs to build, test, fuzz and benchmark, from
# Debian's packages.  Run as root; safe to run again (it installs only what
# is missing).
set -euo pipefail

packages=(
	# build
	build-essential meson ninja-build pkg-config
	liburing-dev libseccomp-dev libinih-dev libsystemd-dev
	# tests and fuzzing
	libcmocka-dev clang libclang-rt-14-dev python3 procps psmisc util-linux
	# disks: partitioning tools and real NBD peers
	fdisk jq qemu-utils libnbd-bin nbdkit fio e2fsprogs
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install: all ${#packages[@]} packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install: missing packages: ${missing[*]}; run this script as root" >&2
	exit 1
fi

echo "install: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
