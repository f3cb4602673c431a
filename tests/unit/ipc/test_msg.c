/*
 * Framing: every way a header can be wrong, descriptor passing, and
 * records that do not fit.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rump/ipc.h"

static unsigned char buf[RUMP_MSG_MAX + 64];

static struct rump_msg_hdr good(void)
{
	struct rump_msg_hdr h;

	rump_msg_init(&h, RUMP_MSG_SERVICE, 0, 42, 0, 8);
	return h;
}

static int check_hdr(const struct rump_msg_hdr *h, size_t len)
{
	memset(buf, 0, sizeof buf);
	memcpy(buf, h, sizeof *h);
	return rump_msg_check(buf, len);
}

static void test_check(void **state)
{
	struct rump_msg_hdr h = good();

	(void)state;
	assert_int_equal(check_hdr(&h, 32), 0);
	/* Too short for a header, or than it says. */
	assert_int_equal(rump_msg_check(buf, 0), EPROTO);
	assert_int_equal(rump_msg_check(buf, sizeof h - 1), EPROTO);
	assert_int_equal(check_hdr(&h, 31), EPROTO);
	assert_int_equal(check_hdr(&h, 33), EPROTO);
	/* Over the cap, even if consistent. */
	h.length = RUMP_MSG_MAX + 1;
	assert_int_equal(check_hdr(&h, RUMP_MSG_MAX + 1), EPROTO);
	h.length = RUMP_MSG_MAX;
	assert_int_equal(check_hdr(&h, RUMP_MSG_MAX), 0);

	h = good();
	h.version = RUMP_PROTO_VERSION + 1;
	assert_int_equal(check_hdr(&h, 32), EPROTO);
	h.version = 0;
	assert_int_equal(check_hdr(&h, 32), EPROTO);

	h = good();
	h.flags = 0x02;
	assert_int_equal(check_hdr(&h, 32), EPROTO);
	h.flags = 0x80 | RUMP_MSGF_REPLY;
	assert_int_equal(check_hdr(&h, 32), EPROTO);

	h = good();
	h.reserved = 1;
	assert_int_equal(check_hdr(&h, 32), EPROTO);

	h = good();
	h.type = 0;
	assert_int_equal(check_hdr(&h, 32), EPROTO);
	h.type = RUMP_MSG_TYPE_MAX + 1;
	assert_int_equal(check_hdr(&h, 32), EPROTO);
	h.type = 0xffff;
	assert_int_equal(check_hdr(&h, 32), EPROTO);
	h.type = RUMP_MSG_BYE + 1;           /* unassigned transport type */
	assert_int_equal(check_hdr(&h, 32), EPROTO);
	h.type = RUMP_MSG_SERVICE - 1;
	assert_int_equal(check_hdr(&h, 32), EPROTO);
	for (unsigned t = RUMP_MSG_HELLO; t <= RUMP_MSG_BYE; t++) {
		h.type = (uint16_t)t;
		assert_int_equal(check_hdr(&h, 32), 0);
	}
	h.type = RUMP_MSG_TYPE_MAX;
	assert_int_equal(check_hdr(&h, 32), 0);

	/* A status only in replies, and never negative. */
	h = good();
	h.status = EIO;
	assert_int_equal(check_hdr(&h, 32), EPROTO);
	h.flags = RUMP_MSGF_REPLY;
	assert_int_equal(check_hdr(&h, 32), 0);
	h.status = -1;
	assert_int_equal(check_hdr(&h, 32), EPROTO);
}

static void test_init(void **state)
{
	struct rump_msg_hdr h;

	(void)state;
	memset(&h, 0xff, sizeof h);
	rump_msg_init(&h, RUMP_MSG_HELLO, RUMP_MSGF_REPLY, 7, ENOENT, 48);
	assert_int_equal(h.version, RUMP_PROTO_VERSION);
	assert_int_equal(h.flags, RUMP_MSGF_REPLY);
	assert_int_equal(h.type, RUMP_MSG_HELLO);
	assert_int_equal(h.length, 72);
	assert_int_equal(h.reqid, 7);
	assert_int_equal(h.status, ENOENT);
	assert_int_equal(h.reserved, 0);
}

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	                            sv), 0);
}

static int fd_count(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

static void test_roundtrip_fds(void **state)
{
	struct rump_msg_hdr h;
	int sv[2], p[2], fds[4];
	unsigned nfds = 99;
	size_t len;
	char c = 0;

	(void)state;
	pair(sv);
	assert_int_equal(pipe(p), 0);
	rump_msg_init(&h, RUMP_MSG_SERVICE, 0, 9, 0, 5);
	assert_int_equal(rump_msg_send(sv[0], &h, "hello", p, 2), 0);
	assert_int_equal(rump_msg_recv(sv[1], buf, sizeof buf, &len, fds, 4,
	                               &nfds, false), 0);
	assert_int_equal(len, 29);
	assert_int_equal(nfds, 2);
	assert_memory_equal(buf + sizeof h, "hello", 5);
	/* The received descriptors are the pipe, close-on-exec. */
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(read(fds[0], &c, 1), 1);
	assert_int_equal(c, 'x');
	assert_true(fcntl(fds[0], F_GETFD) & FD_CLOEXEC);
	for (int i = 0; i < 2; i++) {
		close(fds[i]);
		close(p[i]);
	}

	/* Nonblocking with nothing there. */
	assert_int_equal(rump_msg_recv(sv[1], buf, sizeof buf, &len, NULL, 0,
	                               NULL, true), EAGAIN);
	/* The peer leaves. */
	close(sv[0]);
	assert_int_equal(rump_msg_recv(sv[1], buf, sizeof buf, &len, NULL, 0,
	                               NULL, false), ECONNRESET);
	rump_msg_init(&h, RUMP_MSG_SERVICE, 0, 9, 0, 0);
	assert_int_equal(rump_msg_send(sv[1], &h, NULL, NULL, 0), EPIPE);
	close(sv[1]);
}

static void test_bad_records(void **state)
{
	struct rump_msg_hdr h;
	int sv[2], fds[4], p[2];
	unsigned nfds;
	size_t len;
	int before;

	(void)state;
	pair(sv);
	/* A record larger than the buffer: truncated, refused. */
	rump_msg_init(&h, RUMP_MSG_SERVICE, 0, 1, 0, 100);
	memset(buf, 0, sizeof buf);
	assert_int_equal(rump_msg_send(sv[0], &h, buf + 200, NULL, 0), 0);
	assert_int_equal(rump_msg_recv(sv[1], buf, 64, &len, NULL, 0, NULL,
	                               false), EPROTO);
	/* An invalid header arrives as a record and is refused. */
	memset(buf, 0x55, 40);
	assert_int_equal(send(sv[0], buf, 40, 0), 40);
	assert_int_equal(rump_msg_recv(sv[1], buf, sizeof buf, &len, NULL, 0,
	                               NULL, false), EPROTO);
	/* An empty record is no message. */
	assert_int_equal(send(sv[0], buf, 0, 0), 0);
	assert_int_equal(rump_msg_recv(sv[1], buf, sizeof buf, &len, NULL, 0,
	                               NULL, false), ECONNRESET);

	/* More descriptors than wanted: refused, and none leak. */
	assert_int_equal(pipe(p), 0);
	before = fd_count();
	fds[0] = p[0];
	fds[1] = p[1];
	fds[2] = p[0];
	rump_msg_init(&h, RUMP_MSG_SERVICE, 0, 1, 0, 0);
	assert_int_equal(rump_msg_send(sv[0], &h, NULL, fds, 3), 0);
	assert_int_equal(rump_msg_recv(sv[1], buf, sizeof buf, &len, fds, 2,
	                               &nfds, false), EPROTO);
	assert_int_equal(nfds, 0);
	assert_int_equal(fd_count(), before);
	/* Descriptors with a malformed header: closed too. */
	rump_msg_init(&h, RUMP_MSG_SERVICE, 0, 1, 0, 0);
	h.reserved = 1;
	assert_int_equal(rump_msg_send(sv[0], &h, NULL, fds, 1), 0);
	assert_int_equal(rump_msg_recv(sv[1], buf, sizeof buf, &len, fds, 4,
	                               &nfds, false), EPROTO);
	assert_int_equal(fd_count(), before);
	/* More than any record may carry: the kernel truncates the list,
	 * and what did arrive is closed. */
	{
		union {
			struct cmsghdr align;
			char b[CMSG_SPACE(sizeof(int) * 64)];
		} ctl;
		int many[64];
		struct iovec iov;
		struct msghdr mh = { 0 };
		struct cmsghdr *cm;

		rump_msg_init(&h, RUMP_MSG_SERVICE, 0, 1, 0, 0);
		for (int i = 0; i < 64; i++)
			many[i] = p[i & 1];
		iov.iov_base = &h;
		iov.iov_len = sizeof h;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof ctl.b;
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof many);
		memcpy(CMSG_DATA(cm), many, sizeof many);
		assert_int_equal(sendmsg(sv[0], &mh, 0), (ssize_t)sizeof h);
		assert_int_equal(rump_msg_recv(sv[1], buf, sizeof buf, &len,
		                               fds, 4, &nfds, false), EPROTO);
		assert_int_equal(fd_count(), before);
	}
	/* A body too large to send at all. */
	rump_msg_init(&h, RUMP_MSG_SERVICE, 0, 1, 0, RUMP_MSG_MAX);
	assert_int_equal(rump_msg_send(sv[0], &h, buf, NULL, 0), EINVAL);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_roundtrip_fds),
		cmocka_unit_test(test_bad_records),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
