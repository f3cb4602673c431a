/*
 * librumpclient against an in-process rump_server running the test
 * service: calls, ring requests, buffers, back-pressure, restart, and a
 * misbehaving session that must not disturb the others.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "rump/client.h"
#include "rump/ipc.h"
#include "rump/server.h"
#include "testsvc.h"

struct fixture {
	char *dir;
	char path[108];
	struct testsrv srv;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	f->dir = testsvc_tmpdir();
	assert_non_null(f->dir);
	snprintf(f->path, sizeof f->path, "%s/t.sock", f->dir);
	assert_int_equal(testsrv_start(&f->srv, f->path, 0x1111), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->srv.server != NULL)
		testsrv_stop(&f->srv);
	unlink(f->path);
	rmdir(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static struct rump_client *connect_small(struct fixture *f, unsigned sq,
                                         unsigned cq, size_t buf)
{
	struct rump_client_opts o = {
		.version = RUMP_CLIENT_OPTS_VERSION,
		.service_kind = RUMP_SERVICE_NULL,
		.client_name = "test",
		.sq_entries = sq, .cq_entries = cq, .buf_size = buf,
	};
	struct rump_client *c = NULL;

	assert_int_equal(rump_client_connect(f->path, &o, &c), 0);
	return c;
}

static void test_control_calls(void **state)
{
	struct fixture *f = *state;
	struct rump_client *c = connect_small(f, 0, 0, 0);
	char big[RUMP_MSG_MAX - sizeof(struct rump_msg_hdr)];
	char reply[sizeof big];
	size_t len = 1;

	assert_int_equal(rump_client_boot_id(c), 0x1111);
	assert_int_equal(rump_client_service_kind(c), RUMP_SERVICE_NULL);
	assert_string_equal(rump_client_service_name(c), "testsvc");

	assert_int_equal(rump_client_call(c, RUMP_NULL_MSG_NULL, NULL, 0,
	                                  NULL, 0, &len), 0);
	assert_int_equal(len, 0);
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (char)(i * 7);
	assert_int_equal(rump_client_call(c, RUMP_NULL_MSG_ECHO, big,
	                                  sizeof big, reply, sizeof reply,
	                                  &len), 0);
	assert_int_equal(len, sizeof big);
	assert_memory_equal(big, reply, sizeof big);
	/* A short reply buffer gets a prefix. */
	assert_int_equal(rump_client_call(c, RUMP_NULL_MSG_ECHO, "abcdef", 6,
	                                  reply, 3, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(reply, "abc", 3);
	/* A status is a reply, not a failure of the session. */
	assert_int_equal(rump_client_call(c, RUMP_MSG_SERVICE + 0x50, NULL, 0,
	                                  NULL, 0, NULL), ENOSYS);
	assert_int_equal(rump_client_call(c, RUMP_NULL_MSG_NULL, NULL, 0,
	                                  NULL, 0, NULL), 0);
	/* Too big to send, or a transport type: refused locally. */
	assert_int_equal(rump_client_call(c, RUMP_NULL_MSG_ECHO, big,
	                                  sizeof big + 1, NULL, 0, NULL),
	                 EMSGSIZE);
	assert_int_equal(rump_client_call(c, RUMP_MSG_BYE, NULL, 0, NULL, 0,
	                                  NULL), EINVAL);
	rump_client_close(c);
}

static void test_wrong_kind(void **state)
{
	struct fixture *f = *state;
	struct rump_client_opts o = {
		.version = RUMP_CLIENT_OPTS_VERSION,
		.service_kind = RUMP_SERVICE_DISK,
	};
	struct rump_client *c = NULL;

	assert_int_equal(rump_client_connect(f->path, &o, &c), EPROTOTYPE);
	assert_null(c);
	o.service_kind = RUMP_SERVICE_ANY;
	o.no_rings = 1;
	assert_int_equal(rump_client_connect(f->path, &o, &c), 0);
	assert_int_equal(rump_client_service_kind(c), RUMP_SERVICE_NULL);
	assert_null(rump_client_buf_alloc(c, 64));
	rump_client_close(c);
}

static void test_exec(void **state)
{
	struct fixture *f = *state;
	struct rump_client *c = connect_small(f, 0, 0, 0);
	unsigned char *src, *dst;
	struct rump_sqe sqe;
	uint64_t aux = 0;

	memset(&sqe, 0, sizeof sqe);
	sqe.opcode = RUMP_NULL_OP_NULL;
	for (int i = 0; i < 1000; i++)
		assert_int_equal(rump_client_exec(c, &sqe, NULL), 0);

	src = rump_client_buf_alloc(c, 5000);
	dst = rump_client_buf_alloc(c, 5000);
	assert_non_null(src);
	assert_non_null(dst);
	for (int i = 0; i < 5000; i++)
		src[i] = (unsigned char)(i ^ 0x5a);
	sqe.opcode = RUMP_NULL_OP_ECHO;
	sqe.len = 5000;
	sqe.buf = rump_client_buf_offset(c, src);
	sqe.arg[0] = rump_client_buf_offset(c, dst);
	assert_int_equal(rump_client_exec(c, &sqe, &aux), 5000);
	assert_memory_equal(src, dst, 5000);
	assert_int_equal(aux, testsvc_fnv1a(src, 5000));

	/* The server checks buffers against the area. */
	sqe.buf = 8u << 20;
	assert_int_equal(rump_client_exec(c, &sqe, NULL), -EFAULT);
	sqe.opcode = 999;
	assert_int_equal(rump_client_exec(c, &sqe, NULL), -ENOSYS);
	assert_int_equal(rump_client_in_flight(c), 0);
	rump_client_buf_free(c, src);
	rump_client_buf_free(c, dst);
	rump_client_close(c);
}

struct done_log {
	int order[64];
	int64_t result[64];
	int n;
};

struct tagged {
	struct rump_request req;
	struct done_log *log;
	int tag;
};

static void log_done(struct rump_request *req, int64_t result, uint64_t aux)
{
	struct tagged *t = (struct tagged *)req;

	(void)aux;
	t->log->order[t->log->n] = t->tag;
	t->log->result[t->log->n] = result;
	t->log->n++;
}

static void reap_until(struct rump_client *c, struct done_log *log, int n)
{
	while (log->n < n)
		assert_true(rump_client_reap(c, 2000000000ull) >= 0);
}

static void test_out_of_order(void **state)
{
	struct fixture *f = *state;
	struct rump_client *c = connect_small(f, 0, 0, 0);
	struct done_log log = { .n = 0 };
	struct tagged t[5];

	for (int i = 0; i < 5; i++) {
		memset(&t[i], 0, sizeof t[i]);
		t[i].req.sqe.opcode = i < 4 ? TESTSVC_OP_HOLD
		                            : TESTSVC_OP_RELEASE;
		t[i].req.done = log_done;
		t[i].log = &log;
		t[i].tag = i;
		assert_int_equal(rump_client_submit(c, &t[i].req), 0);
	}
	reap_until(c, &log, 5);
	/* Held ones come back newest first, each with its hold index. */
	assert_int_equal(log.order[0], 3);
	assert_int_equal(log.order[1], 2);
	assert_int_equal(log.order[2], 1);
	assert_int_equal(log.order[3], 0);
	assert_int_equal(log.order[4], 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(log.result[i], 3 - i);
	assert_int_equal(rump_client_in_flight(c), 0);
	assert_int_equal(rump_client_reap(c, 0), 0);
	rump_client_close(c);
}

static void test_full(void **state)
{
	struct fixture *f = *state;
	struct rump_client *c = connect_small(f, 4, 8, 4096);
	struct done_log log = { .n = 0 };
	struct tagged t[9];
	struct rump_sqe sqe = { .opcode = RUMP_NULL_OP_NULL };
	int submitted = 0, err;

	for (int i = 0; i < 9; i++) {
		memset(&t[i], 0, sizeof t[i]);
		t[i].req.sqe.opcode = TESTSVC_OP_HOLD;
		t[i].req.done = log_done;
		t[i].log = &log;
		t[i].tag = i;
	}
	/* The submission ring (4) may fill before the server drains it;
	 * the in-flight bound is the completion ring (8). */
	while (submitted < 8) {
		err = rump_client_submit(c, &t[submitted].req);
		if (err == EAGAIN) {
			assert_true(submitted >= 4);
			usleep(1000);
			continue;
		}
		assert_int_equal(err, 0);
		submitted++;
	}
	assert_int_equal(rump_client_in_flight(c), 8);
	assert_int_equal(rump_client_submit(c, &t[8].req), EAGAIN);
	assert_int_equal(rump_client_reap(c, 0), 0);
	/* The control message may overtake requests still in the
	 * submission ring, so release until all are back. */
	while (log.n < 8) {
		assert_int_equal(rump_client_call(c, TESTSVC_MSG_RELEASE, NULL,
		                                  0, NULL, 0, NULL), 0);
		assert_true(rump_client_reap(c, 10000000) >= 0);
	}
	assert_int_equal(rump_client_in_flight(c), 0);
	assert_int_equal(rump_client_exec(c, &sqe, NULL), 0);
	rump_client_close(c);
}

static void test_bufalloc(void **state)
{
	struct fixture *f = *state;
	struct rump_client *c = connect_small(f, 2, 2, 64 * 1024);
	void *p[1025];        /* room for the final NULL */
	int n = 0;

	/* Alignment: 64, or a page from a page up. */
	p[0] = rump_client_buf_alloc(c, 1);
	p[1] = rump_client_buf_alloc(c, 4096);
	p[2] = rump_client_buf_alloc(c, 100);
	assert_non_null(p[0]);
	assert_non_null(p[1]);
	assert_non_null(p[2]);
	assert_int_equal(rump_client_buf_offset(c, p[0]) % 64, 0);
	assert_int_equal(rump_client_buf_offset(c, p[1]) % 4096, 0);
	assert_int_equal(rump_client_buf_offset(c, p[2]) % 64, 0);
	assert_null(rump_client_buf_alloc(c, 64 * 1024));
	for (int i = 0; i < 3; i++)
		rump_client_buf_free(c, p[i]);

	/* The whole area in one piece, then in 64-byte pieces. */
	p[0] = rump_client_buf_alloc(c, 64 * 1024);
	assert_non_null(p[0]);
	assert_int_equal(rump_client_buf_offset(c, p[0]), 0);
	assert_null(rump_client_buf_alloc(c, 1));
	rump_client_buf_free(c, p[0]);
	while ((p[n] = rump_client_buf_alloc(c, 64)) != NULL) {
		memset(p[n], n & 0xff, 64);
		n++;
	}
	assert_int_equal(n, 1024);
	for (int i = 0; i < n; i++)
		assert_int_equal(((unsigned char *)p[i])[63], i & 0xff);
	/* Free every other one: nothing page sized fits... */
	for (int i = 0; i < n; i += 2)
		rump_client_buf_free(c, p[i]);
	assert_null(rump_client_buf_alloc(c, 128));
	/* ...until the neighbours go too and everything coalesces. */
	for (int i = 1; i < n; i += 2)
		rump_client_buf_free(c, p[i]);
	p[0] = rump_client_buf_alloc(c, 64 * 1024);
	assert_non_null(p[0]);
	rump_client_buf_free(c, p[0]);
	rump_client_close(c);
}

static void test_reconnect(void **state)
{
	struct fixture *f = *state;
	struct rump_client *c = connect_small(f, 0, 0, 0);
	struct rump_sqe sqe = { .opcode = RUMP_NULL_OP_NULL };
	struct done_log log = { .n = 0 };
	struct tagged t = { .req.sqe.opcode = TESTSVC_OP_HOLD,
	                    .req.done = log_done, .log = &log };
	unsigned char *buf = rump_client_buf_alloc(c, 64);

	assert_non_null(buf);
	memcpy(buf, "keep", 5);
	assert_int_equal(rump_client_submit(c, &t.req), 0);
	testsrv_stop(&f->srv);
	f->srv.server = NULL;

	/* The held request fails, and so does everything after. */
	reap_until(c, &log, 1);
	assert_int_equal(log.result[0], -ECONNRESET);
	assert_int_equal(rump_client_exec(c, &sqe, NULL), -ECONNRESET);
	assert_int_equal(rump_client_call(c, RUMP_NULL_MSG_NULL, NULL, 0,
	                                  NULL, 0, NULL), ECONNRESET);
	assert_int_equal(rump_client_reconnect(c, 50), ETIMEDOUT);

	assert_int_equal(testsrv_start(&f->srv, f->path, 0x2222), 0);
	assert_int_equal(rump_client_reconnect(c, 5000), 0);
	assert_int_equal(rump_client_boot_id(c), 0x2222);
	assert_string_equal((char *)buf, "keep");
	assert_int_equal(rump_client_exec(c, &sqe, NULL), 0);
	assert_int_equal(rump_client_call(c, RUMP_NULL_MSG_NULL, NULL, 0,
	                                  NULL, 0, NULL), 0);
	/* Reconnecting to a live server also works (same boot id). */
	assert_int_equal(rump_client_reconnect(c, 1000), 0);
	assert_int_equal(rump_client_boot_id(c), 0x2222);
	for (int i = 0; i < 100; i++)
		assert_int_equal(rump_client_exec(c, &sqe, NULL), 0);
	rump_client_buf_free(c, buf);
	rump_client_close(c);
}

/* A raw session: connect and HELLO by hand. */
static int raw_session(const char *path)
{
	struct rump_msg_hdr h;
	struct rump_hello hello;
	unsigned char buf[RUMP_MSG_MAX];
	size_t len;
	int fd;

	assert_int_equal(rump_connect_unix(path, &fd), 0);
	rump_hello_encode(&hello, RUMP_SERVICE_ANY, "raw");
	rump_msg_init(&h, RUMP_MSG_HELLO, 0, 1, 0, sizeof hello);
	assert_int_equal(rump_msg_send(fd, &h, &hello, NULL, 0), 0);
	assert_int_equal(rump_msg_recv(fd, buf, sizeof buf, &len, NULL, 0,
	                               NULL, false), 0);
	memcpy(&h, buf, sizeof h);
	assert_int_equal(h.status, 0);
	return fd;
}

/* The server ends a session by shutting it down: we read EOF. */
static void assert_session_ended(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char b[64];

	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(recv(fd, b, sizeof b, 0), 0);
}

static void test_bad_session_alone(void **state)
{
	struct fixture *f = *state;
	struct rump_client *c = connect_small(f, 0, 0, 0);
	struct rump_sqe sqe = { .opcode = RUMP_NULL_OP_NULL };
	struct rump_server_stats st;
	struct rump_msg_hdr h;
	unsigned char junk[40];
	int fd;

	/* Garbage on the control socket. */
	fd = raw_session(f->path);
	memset(junk, 0xee, sizeof junk);
	assert_int_equal(send(fd, junk, sizeof junk, 0), (ssize_t)sizeof junk);
	assert_session_ended(fd);
	close(fd);

	/* A second HELLO. */
	fd = raw_session(f->path);
	rump_msg_init(&h, RUMP_MSG_HELLO, 0, 2, 0, 0);
	assert_int_equal(rump_msg_send(fd, &h, NULL, NULL, 0), 0);
	assert_session_ended(fd);
	close(fd);

	/* The service itself calls it a protocol error. */
	fd = raw_session(f->path);
	rump_msg_init(&h, TESTSVC_MSG_PROTO, 0, 2, 0, 0);
	assert_int_equal(rump_msg_send(fd, &h, NULL, NULL, 0), 0);
	assert_session_ended(fd);
	close(fd);

	/* Nothing but a connection: the HELLO timeout is long, so just see
	 * that the good client is served meanwhile. */
	fd = raw_session(f->path);
	for (int i = 0; i < 100; i++)
		assert_int_equal(rump_client_exec(c, &sqe, NULL), 0);
	assert_int_equal(rump_client_call(c, RUMP_NULL_MSG_NULL, NULL, 0,
	                                  NULL, 0, NULL), 0);
	close(fd);

	rump_server_stats(f->srv.server, &st);
	assert_int_equal(st.protocol_errors, 3);
	assert_true(st.requests >= 100);
	assert_true(st.sessions_total >= 5);
	rump_client_close(c);
}

/* A client that sets rings up by hand and then lies about its tail. */
static void test_hostile_ring(void **state)
{
	struct fixture *f = *state;
	struct rump_ring_setup setup = { .sq_entries = 4, .cq_entries = 4,
	                                 .buf_size = 4096 };
	struct rump_area_layout l;
	struct rump_area_hdr *hdr;
	struct rump_msg_hdr h;
	unsigned char buf[RUMP_MSG_MAX];
	struct rump_client *c = connect_small(f, 0, 0, 0);
	struct rump_sqe sqe = { .opcode = RUMP_NULL_OP_NULL };
	int fds[3], fd;
	size_t len;
	uint64_t one = 1;

	assert_int_equal(rump_area_layout(&setup, &l), 0);
	fd = raw_session(f->path);
	fds[0] = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_true(fds[0] >= 0);
	assert_int_equal(ftruncate(fds[0], (off_t)l.total), 0);
	fds[1] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fds[2] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	/* Without a seal against shrinking the server refuses to map. */
	rump_msg_init(&h, RUMP_MSG_RING_SETUP, 0, 2, 0, sizeof setup);
	assert_int_equal(rump_msg_send(fd, &h, &setup, fds, 3), 0);
	assert_int_equal(rump_msg_recv(fd, buf, sizeof buf, &len, NULL, 0,
	                               NULL, false), 0);
	memcpy(&h, buf, sizeof h);
	assert_int_equal(h.status, EPERM);

	assert_int_equal(fcntl(fds[0], F_ADD_SEALS, F_SEAL_SHRINK), 0);
	rump_msg_init(&h, RUMP_MSG_RING_SETUP, 0, 3, 0, sizeof setup);
	assert_int_equal(rump_msg_send(fd, &h, &setup, fds, 3), 0);
	assert_int_equal(rump_msg_recv(fd, buf, sizeof buf, &len, NULL, 0,
	                               NULL, false), 0);
	memcpy(&h, buf, sizeof h);
	assert_int_equal(h.status, 0);

	hdr = mmap(NULL, l.total, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0],
	           0);
	assert_true(hdr != MAP_FAILED);
	hdr->sq.tail = 1000;
	assert_int_equal(write(fds[1], &one, sizeof one), 8);
	assert_session_ended(fd);
	munmap(hdr, l.total);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	close(fd);

	assert_int_equal(rump_client_exec(c, &sqe, NULL), 0);
	rump_client_close(c);
}

struct hammer {
	struct rump_client *c;
	int iters;
	int failures;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	struct rump_sqe sqe = { .opcode = RUMP_NULL_OP_NULL };

	for (int i = 0; i < h->iters; i++)
		if (rump_client_exec(h->c, &sqe, NULL) != 0)
			h->failures++;
	return NULL;
}

/* exec from several threads: one reaps, the others wait their turn. */
static void test_exec_threads(void **state)
{
	struct fixture *f = *state;
	struct rump_client *c = connect_small(f, 4, 8, 0);
	struct hammer h[4];
	pthread_t tid[4];

	for (int i = 0; i < 4; i++) {
		h[i] = (struct hammer){ .c = c, .iters = 2000 };
		assert_int_equal(pthread_create(&tid[i], NULL, hammer_thread,
		                                &h[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(tid[i], NULL);
		assert_int_equal(h[i].failures, 0);
	}
	assert_int_equal(rump_client_in_flight(c), 0);
	rump_client_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_control_calls, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_wrong_kind, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_exec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_order, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bufalloc, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_reconnect, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_bad_session_alone, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_hostile_ring, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_exec_threads, setup,
		                                teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
