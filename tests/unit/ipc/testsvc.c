#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rump/ipc.h"
#include "testsvc.h"

#define HOLD_MAX 4096

struct held {
	pthread_mutex_t lock;
	uint64_t ud[HOLD_MAX];
	unsigned n;
};

uint64_t testsvc_fnv1a(const void *p, size_t len)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static int open_session(struct rump_session *s, void **ctx)
{
	struct held *h = calloc(1, sizeof *h);

	(void)s;
	if (h == NULL)
		return ENOMEM;
	pthread_mutex_init(&h->lock, NULL);
	*ctx = h;
	return 0;
}

static void close_session(struct rump_session *s, void *ctx)
{
	struct held *h = ctx;

	(void)s;
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static void release_held(struct rump_session *s)
{
	struct held *h = rump_session_ctx(s);
	uint64_t ud[HOLD_MAX];
	unsigned n;

	pthread_mutex_lock(&h->lock);
	n = h->n;
	memcpy(ud, h->ud, n * sizeof ud[0]);
	h->n = 0;
	pthread_mutex_unlock(&h->lock);
	while (n > 0) {
		n--;
		rump_session_complete(s, ud[n], (int64_t)n, 0);
	}
}

static void session_ended(struct rump_session *s, void *ctx)
{
	(void)ctx;
	release_held(s);
}

static int control(struct rump_session *s, uint16_t type, const void *body,
                   size_t len, void *reply, size_t *reply_len)
{
	switch (type) {
	case RUMP_NULL_MSG_NULL:
		*reply_len = 0;
		return 0;
	case RUMP_NULL_MSG_ECHO:
		memcpy(reply, body, len);
		*reply_len = len;
		return 0;
	case TESTSVC_MSG_RELEASE:
		release_held(s);
		*reply_len = 0;
		return 0;
	case TESTSVC_MSG_PROTO:
		return EPROTO;
	default:
		return ENOSYS;
	}
}

static void submit(struct rump_session *s, const struct rump_sqe *sqe)
{
	struct held *h = rump_session_ctx(s);
	unsigned char *src, *dst;

	switch (sqe->opcode) {
	case RUMP_NULL_OP_NULL:
		rump_session_complete(s, sqe->user_data, 0, 0);
		return;
	case RUMP_NULL_OP_ECHO:
		src = rump_session_buf(s, sqe->buf, sqe->len);
		dst = rump_session_buf(s, sqe->arg[0], sqe->len);
		if (src == NULL || dst == NULL) {
			rump_session_complete(s, sqe->user_data, -EFAULT, 0);
			return;
		}
		memmove(dst, src, sqe->len);
		rump_session_complete(s, sqe->user_data, sqe->len,
		                      testsvc_fnv1a(dst, sqe->len));
		return;
	case TESTSVC_OP_HOLD:
		pthread_mutex_lock(&h->lock);
		if (h->n < HOLD_MAX) {
			h->ud[h->n++] = sqe->user_data;
			pthread_mutex_unlock(&h->lock);
			return;
		}
		pthread_mutex_unlock(&h->lock);
		rump_session_complete(s, sqe->user_data, -ENOSPC, 0);
		return;
	case TESTSVC_OP_RELEASE:
		release_held(s);
		rump_session_complete(s, sqe->user_data, 0, 0);
		return;
	default:
		rump_session_complete(s, sqe->user_data, -ENOSYS, 0);
	}
}

const struct rump_service testsvc = {
	.version = RUMP_SERVICE_VERSION,
	.kind = RUMP_SERVICE_NULL,
	.name = "testsvc",
	.session_open = open_session,
	.session_close = close_session,
	.control = control,
	.submit = submit,
	.session_ended = session_ended,
};

static void *run(void *arg)
{
	struct testsrv *t = arg;

	t->run_result = rump_server_run(t->server);
	return NULL;
}

int testsrv_start(struct testsrv *t, const char *path, uint64_t boot_id)
{
	struct rump_server_opts o = {
		.listen_fd = -1, .path = path, .boot_id = boot_id,
	};
	int err;

	err = rump_server_create(&o, &testsvc, &t->server);
	if (err != 0)
		return err;
	err = pthread_create(&t->thread, NULL, run, t);
	if (err != 0)
		rump_server_destroy(t->server);
	return err;
}

void testsrv_stop(struct testsrv *t)
{
	rump_server_stop(t->server);
	pthread_join(t->thread, NULL);
	rump_server_destroy(t->server);
}

char *testsvc_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[256];

	snprintf(tmpl, sizeof tmpl, "%s/rumpipc-test-XXXXXX",
	         base != NULL && base[0] != '\0' ? base : "/tmp");
	return mkdtemp(tmpl) != NULL ? strdup(tmpl) : NULL;
}
