/*
 * Showing that the gateways work, the way a person would: through the
 * fuse mount (a file written and read back) and over NBD (the start of a
 * disk read with the protocol's fixed newstyle handshake, option GO and
 * one READ).  rumpd --once does this and exits; every start shows it.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "rumpd.h"

/* A gateway that does not answer in this time fails the demo; rumpd goes
 * on supervising (or --once exits 1). */
#define DEMO_TIMEOUT_S 10

#define NBD_MAGIC            0x4e42444d41474943ull  /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC       0x49484156454f5054ull  /* "IHAVEOPT" */
#define NBD_REP_MAGIC        0x0003e889045565a9ull
#define NBD_REQUEST_MAGIC    0x25609513u
#define NBD_SIMPLE_REPLY     0x67446698u
#define NBD_FLAG_FIXED       0x1u
#define NBD_FLAG_NO_ZEROES   0x2u
#define NBD_OPT_GO           7u
#define NBD_REP_ACK          1u
#define NBD_REP_INFO         3u
#define NBD_REP_ERR_BIT      0x80000000u
#define NBD_INFO_EXPORT      0u
#define NBD_CMD_READ         0u
#define NBD_CMD_DISC         2u
#define DEMO_READ_BYTES      1024u

static int
read_full(int fd, void *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? ETIMEDOUT : errno;
		if (n == 0)
			return ECONNRESET;
		got += (size_t)n;
	}
	return 0;
}

static int
write_full(int fd, const void *buf, size_t len)
{
	for (size_t put = 0; put < len;) {
		ssize_t n = send(fd, (const char *)buf + put, len - put,
		                 MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? ETIMEDOUT : errno;
		put += (size_t)n;
	}
	return 0;
}

/* "unix PATH" or "tcp:HOST:PORT", as rumpd opened it. */
static int
nbd_connect(const char *endpoint, int *fdp)
{
	struct timeval tv = { .tv_sec = DEMO_TIMEOUT_S };
	int fd, error;

	if (strncmp(endpoint, "tcp:", 4) == 0) {
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
		const char *colon = strrchr(endpoint + 4, ':');
		char host[256];
		struct addrinfo *ai;
		size_t hl;

		if (colon == NULL ||
		    (hl = (size_t)(colon - endpoint - 4)) >= sizeof(host))
			return EINVAL;
		memcpy(host, endpoint + 4, hl);
		host[hl] = '\0';
		if (getaddrinfo(hl ? host : "localhost", colon + 1, &hints,
		                &ai) != 0)
			return EADDRNOTAVAIL;
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		error = fd < 0 ? errno : 0;
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
			error = errno;
		freeaddrinfo(ai);
	} else {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };

		if (strlen(endpoint) >= sizeof(sun.sun_path))
			return ENAMETOOLONG;
		strcpy(sun.sun_path, endpoint);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		error = fd < 0 ? errno : 0;
		if (fd >= 0 &&
		    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
			error = errno;
	}
	if (error == 0 &&
	    (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	     setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0))
		error = errno;
	if (error) {
		if (fd >= 0)
			close(fd);
		return error;
	}
	*fdp = fd;
	return 0;
}

/* Handshake and GO for export; the export's size to *sizep. */
static int
nbd_go(int fd, const char *export, uint64_t *sizep, char *why, size_t cap)
{
	unsigned char greet[18], opt[16 + 4 + 64 + 2], rep[20], info[12];
	uint32_t cflags = htobe32(NBD_FLAG_FIXED | NBD_FLAG_NO_ZEROES);
	uint32_t namelen = (uint32_t)strlen(export), type, len;
	uint64_t v;
	uint16_t hflags;
	bool have_size = false;
	int error;

	if (namelen > 64)
		return ENAMETOOLONG;
	if ((error = read_full(fd, greet, sizeof(greet))) != 0)
		return error;
	memcpy(&v, greet, 8);
	memcpy(&hflags, greet + 16, 2);
	if (be64toh(v) != NBD_MAGIC || !(be16toh(hflags) & NBD_FLAG_FIXED)) {
		snprintf(why, cap, "not a fixed newstyle NBD server");
		return EPROTO;
	}
	v = htobe64(NBD_OPTS_MAGIC);
	memcpy(opt, &v, 8);
	type = htobe32(NBD_OPT_GO);
	memcpy(opt + 8, &type, 4);
	len = htobe32(4 + namelen + 2);
	memcpy(opt + 12, &len, 4);
	len = htobe32(namelen);
	memcpy(opt + 16, &len, 4);
	memcpy(opt + 20, export, namelen);
	memset(opt + 20 + namelen, 0, 2);     /* no info requests */
	if ((error = write_full(fd, &cflags, sizeof(cflags))) != 0 ||
	    (error = write_full(fd, opt, 22 + namelen)) != 0)
		return error;
	for (;;) {
		if ((error = read_full(fd, rep, sizeof(rep))) != 0)
			return error;
		memcpy(&v, rep, 8);
		memcpy(&type, rep + 12, 4);
		memcpy(&len, rep + 16, 4);
		type = be32toh(type);
		len = be32toh(len);
		if (be64toh(v) != NBD_REP_MAGIC || len > 65536) {
			snprintf(why, cap, "bad option reply");
			return EPROTO;
		}
		if (type == NBD_REP_ACK)
			break;
		if (type & NBD_REP_ERR_BIT) {
			char msg[128] = "";
			size_t keep = len < sizeof(msg) - 1 ? len :
			              sizeof(msg) - 1;

			if ((error = read_full(fd, msg, keep)) != 0)
				return error;
			snprintf(why, cap, "export '%s' refused: %s", export,
			         msg);
			return ENOENT;
		}
		if (type == NBD_REP_INFO && len == sizeof(info)) {
			uint16_t it;

			if ((error = read_full(fd, info, len)) != 0)
				return error;
			memcpy(&it, info, 2);
			if (be16toh(it) == NBD_INFO_EXPORT) {
				memcpy(&v, info + 2, 8);
				*sizep = be64toh(v);
				have_size = true;
			}
			continue;
		}
		/* Other information: skip it. */
		while (len > 0) {
			unsigned char skip[256];
			uint32_t n = len < sizeof(skip) ? len : sizeof(skip);

			if ((error = read_full(fd, skip, n)) != 0)
				return error;
			len -= n;
		}
	}
	if (!have_size) {
		snprintf(why, cap, "no export size in the GO reply");
		return EPROTO;
	}
	return 0;
}

static int
nbd_request(int fd, uint16_t type, uint64_t handle, uint64_t off,
            uint32_t len)
{
	unsigned char req[28];
	uint32_t u32 = htobe32(NBD_REQUEST_MAGIC);
	uint16_t u16 = 0;
	uint64_t u64;

	memcpy(req, &u32, 4);
	memcpy(req + 4, &u16, 2);
	u16 = htobe16(type);
	memcpy(req + 6, &u16, 2);
	u64 = htobe64(handle);
	memcpy(req + 8, &u64, 8);
	u64 = htobe64(off);
	memcpy(req + 16, &u64, 8);
	u32 = htobe32(len);
	memcpy(req + 24, &u32, 4);
	return write_full(fd, req, sizeof(req));
}

int
rumpd_demo_nbd(const struct rumpd_driver *d, const char *export)
{
	unsigned char rep[16], data[DEMO_READ_BYTES];
	char why[200] = "";
	uint64_t size = 0, handle;
	uint32_t magic, err;
	int fd = -1, error;

	if ((error = nbd_connect(d->endpoint, &fd)) != 0 ||
	    (error = nbd_go(fd, export, &size, why, sizeof(why))) != 0)
		goto out;
	if (size < sizeof(data)) {
		snprintf(why, sizeof(why), "export '%s' has only %" PRIu64
		         " bytes", export, size);
		error = EPROTO;
		goto out;
	}
	if ((error = nbd_request(fd, NBD_CMD_READ, 1, 0, sizeof(data))) != 0 ||
	    (error = read_full(fd, rep, sizeof(rep))) != 0)
		goto out;
	memcpy(&magic, rep, 4);
	memcpy(&err, rep + 4, 4);
	memcpy(&handle, rep + 8, 8);
	if (be32toh(magic) != NBD_SIMPLE_REPLY || be64toh(handle) != 1) {
		snprintf(why, sizeof(why), "bad reply to READ");
		error = EPROTO;
		goto out;
	}
	if (err != 0) {
		snprintf(why, sizeof(why), "READ failed: error %u",
		         be32toh(err));
		error = EIO;
		goto out;
	}
	if ((error = read_full(fd, data, sizeof(data))) != 0)
		goto out;
	/* Polite, not needed: the gateway copes with a hang-up. */
	nbd_request(fd, NBD_CMD_DISC, 2, 0, 0);
	rumpd_log("read %u bytes of %s (%" PRIu64 " MiB) over NBD: %s",
	          DEMO_READ_BYTES, export, size >> 20,
	          memcmp(data + 512, "EFI PART", 8) == 0 ? "a GPT" :
	          data[510] == 0x55 && data[511] == 0xaa ? "an MBR" :
	          "no partition table");
out:
	if (fd >= 0)
		close(fd);
	if (error)
		rumpd_error("NBD %s at %s: %s", export, d->endpoint,
		            why[0] ? why : strerror(error));
	return error;
}

/* A pattern that a misplaced block cannot match. */
static void
fill(unsigned char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)((i * 31 + seed) ^ (i >> 9));
}

int
rumpd_demo_fuse(const struct rumpd_driver *d, bool write_test)
{
	enum { LEN = 256 * 1024 };
	const char *mount = d->conf->mount;
	unsigned char *want = NULL, *got = NULL;
	char path[PATH_MAX];
	struct statvfs vfs;
	int fd = -1, error = 0;
	bool made = false;

	if (statvfs(mount, &vfs) != 0) {
		error = errno;
		rumpd_error("%s: %s", mount, strerror(error));
		return error;
	}
	rumpd_log("%s: %llu of %llu MiB free", mount,
	          (unsigned long long)vfs.f_bavail * vfs.f_frsize >> 20,
	          (unsigned long long)vfs.f_blocks * vfs.f_frsize >> 20);
	if (!write_test)
		return 0;
	if (snprintf(path, sizeof(path), "%s/.rumpd-check-%ld", mount,
	             (long)getpid()) >= (int)sizeof(path))
		return ENAMETOOLONG;
	want = malloc(LEN);
	got = malloc(LEN);
	if (want == NULL || got == NULL) {
		error = ENOMEM;
		goto out;
	}
	fill(want, LEN, (unsigned)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		error = errno;
		goto out;
	}
	made = true;
	errno = 0;
	if (write(fd, want, LEN) != LEN || fsync(fd) != 0) {
		error = errno ? errno : EIO;
		goto out;
	}
	close(fd);
	/* Read back through a new open: the data come from rumpfs. */
	errno = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pread(fd, got, LEN, 0) != LEN) {
		error = fd < 0 || errno ? errno : EIO;
		goto out;
	}
	if (memcmp(want, got, LEN) != 0)
		error = EILSEQ;
out:
	if (fd >= 0)
		close(fd);
	if (made && unlink(path) != 0 && error == 0)
		error = errno;
	free(want);
	free(got);
	if (error)
		rumpd_error("writing and reading back %s: %s", path,
		            error == EILSEQ ? "the data differ" :
		            strerror(error));
	else
		rumpd_log("wrote, fsynced and read back %u KiB in %s", LEN /
		          1024, mount);
	return error;
}

/* ---- the network: what to type to reach it ------------------------------ */

/*
 * A free neighbour of addr ("10.77.0.1/24" -> "10.77.0.2/24") for a peer
 * to take: the next address up, or down at the top of the subnet.  False
 * when the subnet has no room (/31, /32, /127, /128).
 */
static bool
neighbour(const char *addr, char *buf, size_t cap)
{
	unsigned char a[16], b[16];
	char text[INET6_ADDRSTRLEN], host[INET6_ADDRSTRLEN];
	const char *slash = strchr(addr, '/');
	int family = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;
	unsigned bytes = family == AF_INET ? 4 : 16, len, hostbits;

	if (slash == NULL || (size_t)(slash - addr) >= sizeof(text))
		return false;
	snprintf(text, sizeof(text), "%.*s", (int)(slash - addr), addr);
	len = (unsigned)atoi(slash + 1);
	hostbits = bytes * 8 - len;
	if (inet_pton(family, text, a) != 1 || hostbits < 2)
		return false;
	for (int step = 1; step >= -1; step -= 2) {
		unsigned top = 0, bottom = 0;
		int i;

		memcpy(b, a, bytes);
		for (i = (int)bytes - 1; i >= 0; i--) {
			b[i] = (unsigned char)(b[i] + step);
			if (b[i] != (step > 0 ? 0 : 0xff))
				break;
		}
		/* Still in the subnet, and not its first or (IPv4) last. */
		for (unsigned bit = len; bit < bytes * 8; bit++) {
			unsigned v = (b[bit / 8] >> (7 - bit % 8)) & 1;

			top += v;
			bottom += !v;
		}
		if (i < 0 || memcmp(a, b, len / 8) != 0 ||
		    (len % 8 != 0 && (a[len / 8] ^ b[len / 8]) &
		     (0xff00u >> (len % 8))) || bottom == hostbits ||
		    (family == AF_INET && top == hostbits))
			continue;
		if (inet_ntop(family, b, host, sizeof(host)) == NULL)
			return false;
		return snprintf(buf, cap, "%s/%u", host, len) < (int)cap;
	}
	return false;
}

void
rumpd_demo_net_reach(const struct rumpd_driver *d)
{
	const struct rumpd_driver_conf *c = d->conf;
	char peer[512], host[1024], them[256], nb[RUMPD_NET_TEXT];

	rumpd_log("reach %s with: rumpctl -s %s net list", c->name,
	          d->endpoint);
	for (unsigned i = 0; i < c->ndevices; i++) {
		const char *nic = c->devices[i].name;
		const char *src = c->devices[i].source;
		size_t np = 0, nh = 0, nt = 0;

		peer[0] = host[0] = them[0] = '\0';
		for (unsigned j = 0; j < c->naddrs; j++) {
			const char *addr = c->addrs[j].addr;
			int slash = (int)strcspn(addr, "/");

			if (strcmp(c->addrs[j].ifname, nic) != 0)
				continue;
			nt += (size_t)snprintf(them + nt, nt < sizeof(them) ?
			                       sizeof(them) - nt : 0, " %.*s",
			                       slash, addr);
			if (!neighbour(addr, nb, sizeof(nb)))
				continue;
			np += (size_t)snprintf(peer + np, np < sizeof(peer) ?
			                       sizeof(peer) - np : 0,
			                       " --addr eth0=%s", nb);
			nh += (size_t)snprintf(host + nh, nh < sizeof(host) ?
			                       sizeof(host) - nh : 0,
			                       "ip addr add %s dev %s; ", nb,
			                       src + 4);
		}
		if (nt >= sizeof(them) || np >= sizeof(peer) ||
		    nh >= sizeof(host))
			continue;
		if (strncmp(src, "shm:", 4) == 0)
			rumpd_log("%s %s is on bus %s (%s): join it with: "
			          "rumpnet --if eth0=%s%s --socket PEER.sock; "
			          "then run programs there with "
			          "RUMP_SERVER=PEER.sock "
			          "LD_PRELOAD=librumphijack.so", c->name, nic,
			          src + 4, them[0] ? them + 1 : "no address",
			          src, peer);
		else if (strncmp(src, "tap:", 4) == 0)
			rumpd_log("%s %s is on TAP %s (%s): reach it from "
			          "the host with: ip link set %s up; %sping "
			          "%.*s", c->name, nic, src + 4,
			          them[0] ? them + 1 : "no address", src + 4,
			          host, them[0] ? (int)strcspn(them + 1, " ") :
			          0, them + 1);
		else
			rumpd_log("%s %s is on host interface %s (%s)",
			          c->name, nic, src + 7,
			          them[0] ? them + 1 : "no address");
	}
}
