/*
 * Control message framing: one SOCK_SEQPACKET record per message, checked
 * in full before anyone looks at its body, with descriptors passed as
 * SCM_RIGHTS.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "rump/ipc.h"

/*
 * The most descriptors one record may carry.  The control buffer is sized
 * for this many so that a peer sending more than the caller wants still
 * hands them to us whole (and we close them) instead of the kernel
 * silently truncating the list.
 */
#define MSG_FDS_MAX 16

int rump_msg_check(const void *msg, size_t len)
{
	struct rump_msg_hdr h;

	if (len < sizeof h || len > RUMP_MSG_MAX)
		return EPROTO;
	memcpy(&h, msg, sizeof h);
	if (h.length != len)
		return EPROTO;
	if (h.version != RUMP_PROTO_VERSION)
		return EPROTO;
	if (h.flags & ~RUMP_MSGF_ALL)
		return EPROTO;
	if (h.reserved != 0)
		return EPROTO;
	/* Types between the transport's and the services' are unassigned. */
	if (h.type == 0 || h.type > RUMP_MSG_TYPE_MAX ||
	    (h.type > RUMP_MSG_BYE && h.type < RUMP_MSG_SERVICE))
		return EPROTO;
	if (h.flags & RUMP_MSGF_REPLY) {
		if (h.status < 0)
			return EPROTO;
	} else if (h.status != 0) {
		return EPROTO;
	}
	return 0;
}

void rump_msg_init(struct rump_msg_hdr *hdr, uint16_t type, uint8_t flags,
                   uint64_t reqid, int32_t status, size_t body_len)
{
	memset(hdr, 0, sizeof *hdr);
	hdr->version = RUMP_PROTO_VERSION;
	hdr->flags = flags;
	hdr->type = type;
	hdr->length = (uint32_t)(sizeof *hdr + body_len);
	hdr->reqid = reqid;
	hdr->status = status;
}

int rump_msg_send(int sock, const struct rump_msg_hdr *hdr, const void *body,
                  const int *fds, unsigned nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * MSG_FDS_MAX)];
	} control;
	struct iovec iov[2];
	struct msghdr mh;
	size_t body_len;
	ssize_t n;

	if (hdr->length < sizeof *hdr || hdr->length > RUMP_MSG_MAX ||
	    nfds > MSG_FDS_MAX)
		return EINVAL;
	body_len = hdr->length - sizeof *hdr;
	if (body_len > 0 && body == NULL)
		return EINVAL;

	iov[0].iov_base = (void *)hdr;
	iov[0].iov_len = sizeof *hdr;
	iov[1].iov_base = (void *)body;
	iov[1].iov_len = body_len;
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = iov;
	mh.msg_iovlen = body_len > 0 ? 2 : 1;
	if (nfds > 0) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof control);
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ECONNRESET ? EPIPE : errno;
	/* A SEQPACKET record goes whole or not at all. */
	if ((size_t)n != hdr->length)
		return EIO;
	return 0;
}

static void close_fds(const int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

int rump_msg_recv(int sock, void *buf, size_t cap, size_t *lenp, int *fds,
                  unsigned maxfds, unsigned *nfds, bool nonblock)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * MSG_FDS_MAX)];
	} control;
	int got[MSG_FDS_MAX];
	unsigned ngot = 0;
	struct iovec iov;
	struct msghdr mh;
	ssize_t n;
	int err;

	if (nfds != NULL)
		*nfds = 0;
	*lenp = 0;
	if (maxfds > 0 && (fds == NULL || nfds == NULL))
		return EINVAL;

	iov.iov_base = buf;
	iov.iov_len = cap;
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = control.buf;
	mh.msg_controllen = sizeof control.buf;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC |
		            (nonblock ? MSG_DONTWAIT : 0));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? EAGAIN : errno;

	/* Take every descriptor first so that no error path leaks one. */
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL;
	     cm = CMSG_NXTHDR(&mh, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && ngot < MSG_FDS_MAX; i++)
			memcpy(&got[ngot++], CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(int));
	}

	if (n == 0) {
		/* EOF, or an empty record, which no valid message is. */
		err = ECONNRESET;
		goto fail;
	}
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || ngot > maxfds) {
		err = EPROTO;
		goto fail;
	}
	err = rump_msg_check(buf, (size_t)n);
	if (err != 0)
		goto fail;
	*lenp = (size_t)n;
	if (ngot > 0) {
		memcpy(fds, got, sizeof(int) * ngot);
		*nfds = ngot;
	}
	return 0;

fail:
	close_fds(got, ngot);
	return err;
}
