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
	# file systems: libext2fs, FUSE, and the tools the tests compare with
	libext2fs-dev libfuse3-dev fuse3 attr rsync
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done

# Drivers confined by rumpd run as this user (not nobody: nobody's other
# processes must not reach the drivers' sockets).
ensure_user() {
	if ! getent passwd rumpd >/dev/null && [ "$(id -u)" -eq 0 ]; then
		useradd --system --no-create-home --shell /usr/sbin/nologin rumpd
		echo "install: created the system user rumpd"
	fi
}

if [ ${#missing[@]} -eq 0 ]; then
	echo "install: all ${#packages[@]} packages present"
	ensure_user
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
ensure_user
