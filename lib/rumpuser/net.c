/* Packet I/O on the host: TAP devices, AF_PACKET sockets; shared futexes. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "rumpuser_int.h"

#define NS_PER_SEC 1000000000ULL

static int
copy_ifname(char *dst, const char *src)
{
	size_t n = strlen(src);

	if (n >= IFNAMSIZ)
		return ENAMETOOLONG;
	memcpy(dst, src, n + 1);
	return 0;
}

int
rumpuser_nic_tap_open(const char *ifname, char *name, int *fdp)
{
	struct ifreq ifr;
	int fd, error;

	memset(&ifr, 0, sizeof(ifr));
	if ((error = copy_ifname(ifr.ifr_name, ifname)) != 0)
		return error;
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return ru_errno();
	/* The virtio-net header lets us write TCP segments larger than the
	 * MTU for the host to split (or take whole, if they are its own);
	 * offloads stay off the other way, so every frame we read is
	 * finished. */
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) != 0 ||
	    ioctl(fd, TUNSETOFFLOAD, 0) != 0) {
		error = ru_errno();
		(void)close(fd);
		return error;
	}
	memcpy(name, ifr.ifr_name, IFNAMSIZ);
	name[IFNAMSIZ - 1] = '\0';
	*fdp = fd;
	return 0;
}

int
rumpuser_nic_packet_open(const char *ifname, int *fdp)
{
	struct sockaddr_ll sll;
	unsigned idx;
	int fd, one = 1, error;

	idx = if_nametoindex(ifname);
	if (idx == 0)
		return ru_errno();
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            htons(ETH_P_ALL));
	if (fd < 0)
		return ru_errno();
	/* Our own transmissions would otherwise come straight back. */
	if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one,
	               sizeof(one)) != 0)
		goto fail;
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = (int)idx;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) != 0)
		goto fail;
	*fdp = fd;
	return 0;
fail:
	error = ru_errno();
	(void)close(fd);
	return error;
}

int
rumpuser_nic_adopt(int fd, char *name)
{
	struct ifreq ifr;
	struct sockaddr_ll sll;
	socklen_t slen = sizeof(sll);
	struct stat st;
	int flags;

	if (fstat(fd, &st) != 0)
		return ru_errno();
	memset(&ifr, 0, sizeof(ifr));
	if (S_ISCHR(st.st_mode)) {
		if (ioctl(fd, TUNGETIFF, &ifr) != 0)
			return ru_errno();
		if ((ifr.ifr_flags & (IFF_TAP | IFF_NO_PI)) !=
		    (IFF_TAP | IFF_NO_PI))
			return EPROTOTYPE;
	} else if (S_ISSOCK(st.st_mode)) {
		if (getsockname(fd, (struct sockaddr *)&sll, &slen) != 0)
			return ru_errno();
		if (sll.sll_family != AF_PACKET || sll.sll_ifindex <= 0)
			return EPROTOTYPE;
		/* Handed in from another network namespace (rumpd's, to
		 * a confined rumpnet), the index names nothing here: the
		 * name is only for people then. */
		if (if_indextoname((unsigned)sll.sll_ifindex,
		                   ifr.ifr_name) == NULL)
			snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "if%d",
			         sll.sll_ifindex);
	} else {
		return ENODEV;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
		return ru_errno();
	memcpy(name, ifr.ifr_name, IFNAMSIZ);
	name[IFNAMSIZ - 1] = '\0';
	return 0;
}

int
rumpuser_nic_vnet_hdr_len(int fd, unsigned *lenp)
{
	struct ifreq ifr;
	struct stat st;
	int len;

	*lenp = 0;
	if (fstat(fd, &st) != 0)
		return ru_errno();
	if (!S_ISCHR(st.st_mode))
		return 0;
	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(fd, TUNGETIFF, &ifr) != 0)
		return ru_errno();
	if (!(ifr.ifr_flags & IFF_VNET_HDR))
		return 0;
	if (ioctl(fd, TUNGETVNETHDRSZ, &len) != 0)
		return ru_errno();
	if (len < (int)sizeof(struct virtio_net_hdr) || len > 256)
		return EPROTO;
	/* A descriptor handed in may have offloads on: frames with
	 * checksums to finish would look corrupt to us. */
	if (ioctl(fd, TUNSETOFFLOAD, 0) != 0)
		return ru_errno();
	*lenp = (unsigned)len;
	return 0;
}

int
rumpuser_nic_host_info(const char *ifname, unsigned *mtup, uint8_t mac[6])
{
	struct ifreq ifr;
	int s, error = 0;

	memset(&ifr, 0, sizeof(ifr));
	if ((error = copy_ifname(ifr.ifr_name, ifname)) != 0)
		return error;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return ru_errno();
	if (ioctl(s, SIOCGIFMTU, &ifr) != 0) {
		error = ru_errno();
		goto out;
	}
	*mtup = (unsigned)ifr.ifr_mtu;
	if (ioctl(s, SIOCGIFHWADDR, &ifr) != 0) {
		error = ru_errno();
		goto out;
	}
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
out:
	(void)close(s);
	return error;
}

int
rumpuser_nic_recv(int fd, void *buf, size_t cap, size_t *lenp)
{
	ssize_t n;

	/*
	 * A TAP device truncates a frame longer than the buffer without a
	 * word, so a frame that fills all of cap counts as too long: the
	 * caller's buffer is one byte larger than any frame it accepts.
	 */
	do
		n = read(fd, buf, cap);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? EAGAIN : ru_errno();
	if ((size_t)n >= cap)
		return EMSGSIZE;
	*lenp = (size_t)n;
	return 0;
}

int
rumpuser_nic_send(int fd, const struct rumpuser_iov *iov, unsigned n)
{
	/* nic.h's 64 pieces, and a NIC's own header and copied headers. */
	struct iovec v[66];
	unsigned i;
	ssize_t r;

	if (n == 0 || n > 66)
		return EINVAL;
	for (i = 0; i < n; i++) {
		v[i].iov_base = (void *)(uintptr_t)iov[i].base;
		v[i].iov_len = iov[i].len;
	}
	do
		r = writev(fd, v, (int)n);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EWOULDBLOCK ? EAGAIN : ru_errno();
	return 0;
}

int
rumpuser_nic_wait(int fd, int stop_fd, uint64_t timeout_ns, int *readyp)
{
	struct pollfd p[2] = {
		{ .fd = fd, .events = POLLIN },
		{ .fd = stop_fd, .events = POLLIN },
	};
	struct timespec ts, *tsp = NULL;
	uint64_t v;
	int n;

	if (timeout_ns != UINT64_MAX) {
		ts.tv_sec = (time_t)(timeout_ns / NS_PER_SEC);
		ts.tv_nsec = (long)(timeout_ns % NS_PER_SEC);
		tsp = &ts;
	}
	*readyp = 0;
	n = ppoll(p, stop_fd >= 0 ? 2 : 1, tsp, NULL);
	if (n < 0)
		return errno == EINTR ? 0 : ru_errno();
	if (n > 0 && stop_fd >= 0 && (p[1].revents & POLLIN))
		(void)!read(stop_fd, &v, sizeof(v));
	if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL))
		return EIO;
	*readyp = (p[0].revents & POLLIN) != 0;
	return 0;
}

int
rumpuser_file_resize(int fd, uint64_t size)
{
	if (size > (uint64_t)INT64_MAX)
		return EFBIG;
	if (ftruncate(fd, (off_t)size) != 0)
		return ru_errno();
	return 0;
}

static void
byte_lock(struct flock *fl, short type, uint64_t off)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = (off_t)off;
	fl->l_len = 1;
}

int
rumpuser_file_trylock(int fd, uint64_t off)
{
	struct flock fl;

	if (off > INT64_MAX)
		return EINVAL;
	byte_lock(&fl, F_WRLCK, off);
	if (fcntl(fd, F_OFD_SETLK, &fl) != 0)
		return errno == EACCES ? EAGAIN : ru_errno();
	return 0;
}

int
rumpuser_file_unlock(int fd, uint64_t off)
{
	struct flock fl;

	if (off > INT64_MAX)
		return EINVAL;
	byte_lock(&fl, F_UNLCK, off);
	if (fcntl(fd, F_OFD_SETLK, &fl) != 0)
		return ru_errno();
	return 0;
}

int
rumpuser_file_locked(int fd, uint64_t off, int *heldp)
{
	struct flock fl;

	if (off > INT64_MAX)
		return EINVAL;
	/* Our own lock never conflicts with itself: GETLK answers for the
	 * other opens of the file only. */
	byte_lock(&fl, F_WRLCK, off);
	if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
		return ru_errno();
	*heldp = fl.l_type != F_UNLCK;
	return 0;
}

int
rumpuser_futex_wait(uint32_t *word, uint32_t expected, uint64_t timeout_ns)
{
	struct timespec ts, *tsp = NULL;
	long r;

	if (timeout_ns != UINT64_MAX) {
		ts.tv_sec = (time_t)(timeout_ns / NS_PER_SEC);
		ts.tv_nsec = (long)(timeout_ns % NS_PER_SEC);
		tsp = &ts;
	}
	/* Not FUTEX_PRIVATE: the word may live in a file other processes
	 * map. */
	r = syscall(SYS_futex, word, FUTEX_WAIT, expected, tsp, NULL, 0);
	if (r == 0 || errno == EINTR)
		return 0;
	if (errno == EAGAIN || errno == ETIMEDOUT)
		return errno;
	return ru_errno();
}

int
rumpuser_futex_wake(uint32_t *word, int n)
{
	if (syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0) < 0)
		return ru_errno();
	return 0;
}

uint32_t
rumpuser_proc_self(void)
{
	return (uint32_t)getpid();
}

int
rumpuser_proc_alive(uint32_t pid)
{
	/* EPERM: it exists, as another user's. */
	return pid != 0 && pid <= INT_MAX &&
	    (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}
