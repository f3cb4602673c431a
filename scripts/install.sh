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
	fdisk jq qemu-utils libnbd-bin nbdkit fio e2fsprogs strace
	# file systems: libext2fs, FUSE, and the tools the tests compare with
	libext2fs-dev libfuse3-dev fuse3 attr rsync
	# bench/fs peers
	fuse2fs
	# network (rumpnet): dpkg-dev unpacks lwIP's source (fetch_lwip below);
	# the peers and tools of the network tests and bench/net
	dpkg-dev iproute2 iputils-ping curl iperf3 tshark ethtool bc
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

# Shared memory may use huge pages where a program asks (MADV_HUGEPAGE):
# the rings' shared areas do.  A 1 MiB direct transfer into 4 KiB pages is
# more segments than a virtio disk takes in one request; measured here,
# large disk reads run at half speed without.  "advise" changes nothing
# for programs that do not ask.  Set now, and at every boot through
# tmpfiles.d; left alone where /sys is read-only or the kernel lacks it.
allow_shmem_hugepages() {
	local knob=/sys/kernel/mm/transparent_hugepage/shmem_enabled
	[ "$(id -u)" -eq 0 ] && [ -w "$knob" ] || return 0
	grep -q '\[never\]' "$knob" || return 0
	if echo advise >"$knob" 2>/dev/null; then
		echo "install: shared memory may use huge pages ($knob: advise)"
	fi
	if [ -d /etc/tmpfiles.d ]; then
		echo "w $knob - - - - advise" >/etc/tmpfiles.d/rumpd-hugepages.conf
	fi
}

# ---- rumpnet: lwIP's source ---------------------------------------------
# The inet component compiles lwIP from Debian's source package with the
# project's own options (never Debian's liblwip .so).  scripts/lwip.sh
# turns on source entries (copies of the machine's apt sources, no host
# named) and unpacks it into third_party/lwip-src/ (git-ignored).
fetch_lwip() {
	bash "$(dirname "${BASH_SOURCE[0]}")/lwip.sh"
}
# ---- end rumpnet -------------------------------------------------------

if [ ${#missing[@]} -eq 0 ]; then
	echo "install: all ${#packages[@]} packages present"
	ensure_user
	allow_shmem_hugepages
	fetch_lwip
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
allow_shmem_hugepages
fetch_lwip
