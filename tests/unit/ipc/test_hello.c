/*
 * The HELLO codec, and real handshakes with a rump_server: kinds, boot
 * id, refusals.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "rump/ipc.h"
#include "rump/client.h"
#include "testsvc.h"

static void test_hello_codec(void **state)
{
	struct rump_hello h, out;
	char name[64];

	(void)state;
	rump_hello_encode(&h, RUMP_SERVICE_DISK, "nbd");
	assert_int_equal(rump_hello_decode(&h, sizeof h, &out), 0);
	assert_int_equal(out.proto_version, RUMP_PROTO_VERSION);
	assert_int_equal(out.service_kind, RUMP_SERVICE_DISK);
	assert_string_equal(out.client_name, "nbd");
	/* Exact size only. */
	assert_int_equal(rump_hello_decode(&h, sizeof h - 1, &out), EPROTO);
	assert_int_equal(rump_hello_decode(&h, sizeof h + 1, &out), EPROTO);
	/* Long names are cut to fit with their NUL. */
	memset(name, 'a', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	rump_hello_encode(&h, 0, name);
	assert_int_equal(rump_hello_decode(&h, sizeof h, &out), 0);
	assert_int_equal(strlen(out.client_name), RUMP_NAME_MAX - 1);
	rump_hello_encode(&h, 0, NULL);
	assert_int_equal(rump_hello_decode(&h, sizeof h, &out), 0);
	assert_string_equal(out.client_name, "");
	/* A name without its NUL, nonzero flags or reserved. */
	memset(h.client_name, 'x', RUMP_NAME_MAX);
	assert_int_equal(rump_hello_decode(&h, sizeof h, &out), EPROTO);
	rump_hello_encode(&h, 0, "x");
	h.flags = 1;
	assert_int_equal(rump_hello_decode(&h, sizeof h, &out), EPROTO);
	rump_hello_encode(&h, 0, "x");
	h.reserved = 1;
	assert_int_equal(rump_hello_decode(&h, sizeof h, &out), EPROTO);
	/* Another version is its own error. */
	rump_hello_encode(&h, 0, "x");
	h.proto_version = RUMP_PROTO_VERSION + 1;
	assert_int_equal(rump_hello_decode(&h, sizeof h, &out),
	                 EPROTONOSUPPORT);
}

static void test_reply_codec(void **state)
{
	struct rump_hello_reply r, out;

	(void)state;
	rump_hello_reply_encode(&r, RUMP_SERVICE_NET, 0x0123456789abcdefull,
	                        "rumpnet");
	assert_int_equal(rump_hello_reply_decode(&r, sizeof r, &out), 0);
	assert_int_equal(out.service_kind, RUMP_SERVICE_NET);
	assert_int_equal(out.boot_id, 0x0123456789abcdefull);
	assert_int_equal(out.max_msg, RUMP_MSG_MAX);
	assert_int_equal(out.max_ring_entries, RUMP_RING_MAX_ENTRIES);
	assert_int_equal(out.max_area_size, RUMP_AREA_MAX_SIZE);
	assert_string_equal(out.service_name, "rumpnet");
	assert_int_equal(rump_hello_reply_decode(&r, sizeof r - 8, &out),
	                 EPROTO);
	r.max_msg = 8;
	assert_int_equal(rump_hello_reply_decode(&r, sizeof r, &out), EPROTO);
	rump_hello_reply_encode(&r, 0, 0, "x");
	memset(r.service_name, 'y', RUMP_NAME_MAX);
	assert_int_equal(rump_hello_reply_decode(&r, sizeof r, &out), EPROTO);
	rump_hello_reply_encode(&r, 0, 0, "x");
	r.proto_version = 0;
	assert_int_equal(rump_hello_reply_decode(&r, sizeof r, &out),
	                 EPROTONOSUPPORT);
}

/* ---- against a server ------------------------------------------------- */

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
	snprintf(f->path, sizeof f->path, "%s/h.sock", f->dir);
	assert_int_equal(testsrv_start(&f->srv, f->path, 0xb007), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	testsrv_stop(&f->srv);
	rmdir(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* Sends a HELLO body; returns the reply's status and decodes it. */
static int handshake(int fd, const void *body, size_t len,
                     struct rump_hello_reply *reply, int *decode_err)
{
	unsigned char buf[RUMP_MSG_MAX];
	struct rump_msg_hdr h;
	size_t rlen;

	rump_msg_init(&h, RUMP_MSG_HELLO, 0, 77, 0, len);
	assert_int_equal(rump_msg_send(fd, &h, body, NULL, 0), 0);
	assert_int_equal(rump_msg_recv(fd, buf, sizeof buf, &rlen, NULL, 0,
	                               NULL, false), 0);
	memcpy(&h, buf, sizeof h);
	assert_int_equal(h.type, RUMP_MSG_HELLO);
	assert_int_equal(h.flags, RUMP_MSGF_REPLY);
	assert_int_equal(h.reqid, 77);
	*decode_err = rump_hello_reply_decode(buf + sizeof h,
	                                      rlen - sizeof h, reply);
	return h.status;
}

static bool ended(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char b[8];

	return poll(&pfd, 1, 5000) == 1 && recv(fd, b, sizeof b, 0) == 0;
}

static void test_handshake_kinds(void **state)
{
	struct fixture *f = *state;
	struct rump_hello_reply r;
	struct rump_hello h;
	int fd, derr;

	for (unsigned kind = RUMP_SERVICE_ANY; kind <= RUMP_SERVICE_NET;
	     kind++) {
		assert_int_equal(rump_connect_unix(f->path, &fd), 0);
		rump_hello_encode(&h, kind, "kinds");
		if (kind == RUMP_SERVICE_ANY || kind == RUMP_SERVICE_NULL) {
			assert_int_equal(handshake(fd, &h, sizeof h, &r,
			                           &derr), 0);
			assert_int_equal(derr, 0);
			assert_int_equal(r.boot_id, 0xb007);
			assert_int_equal(r.service_kind, RUMP_SERVICE_NULL);
			assert_string_equal(r.service_name, "testsvc");
		} else {
			assert_int_equal(handshake(fd, &h, sizeof h, &r,
			                           &derr), EPROTOTYPE);
			assert_true(ended(fd));
		}
		close(fd);
	}
}

static void test_handshake_refused(void **state)
{
	struct fixture *f = *state;
	struct rump_hello_reply r;
	struct rump_hello h;
	struct rump_msg_hdr m;
	int fd, derr;

	/* Another version: refused, and told ours. */
	assert_int_equal(rump_connect_unix(f->path, &fd), 0);
	rump_hello_encode(&h, RUMP_SERVICE_ANY, "old");
	h.proto_version = RUMP_PROTO_VERSION + 1;
	assert_int_equal(handshake(fd, &h, sizeof h, &r, &derr),
	                 EPROTONOSUPPORT);
	assert_int_equal(derr, 0);
	assert_int_equal(r.proto_version, RUMP_PROTO_VERSION);
	assert_true(ended(fd));
	close(fd);

	/* A malformed HELLO gets no answer at all. */
	assert_int_equal(rump_connect_unix(f->path, &fd), 0);
	rump_hello_encode(&h, RUMP_SERVICE_ANY, "short");
	rump_msg_init(&m, RUMP_MSG_HELLO, 0, 1, 0, sizeof h - 4);
	assert_int_equal(rump_msg_send(fd, &m, &h, NULL, 0), 0);
	assert_true(ended(fd));
	close(fd);

	/* Anything but HELLO first. */
	assert_int_equal(rump_connect_unix(f->path, &fd), 0);
	rump_msg_init(&m, RUMP_NULL_MSG_NULL, 0, 1, 0, 0);
	assert_int_equal(rump_msg_send(fd, &m, NULL, NULL, 0), 0);
	assert_true(ended(fd));
	close(fd);

	/* The client library reports the version refusal as such. */
	{
		struct rump_client_opts o = {
			.version = RUMP_CLIENT_OPTS_VERSION,
			.service_kind = RUMP_SERVICE_FS,
		};
		struct rump_client *c = NULL;

		assert_int_equal(rump_client_connect(f->path, &o, &c),
		                 EPROTOTYPE);
		o.version = 99;
		assert_int_equal(rump_client_connect(f->path, &o, &c), EINVAL);
		assert_int_equal(rump_client_connect("/nonexistent/x.sock",
		                                     NULL, &c), ENOENT);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_codec),
		cmocka_unit_test(test_reply_codec),
		cmocka_unit_test_setup_teardown(test_handshake_kinds, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_handshake_refused, setup,
		                                teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
