/*
 * A small service for the IPC tests: the null service's operations plus
 * requests that are held back and completed later, in reverse order, to
 * exercise out-of-order completion.
 */
#ifndef RUMP_TEST_TESTSVC_H
#define RUMP_TEST_TESTSVC_H

#include <pthread.h>
#include <stdint.h>

#include "rump/server.h"

enum {
	TESTSVC_OP_HOLD = 10,         /* completes at the next RELEASE */
	TESTSVC_OP_RELEASE = 11,      /* completes the held, newest first */
	TESTSVC_MSG_RELEASE = RUMP_MSG_SERVICE + 10,
	TESTSVC_MSG_PROTO = RUMP_MSG_SERVICE + 11, /* control returns EPROTO */
};

/* A server on its own thread; path is where it listens. */
struct testsrv {
	struct rump_server *server;
	pthread_t thread;
	int run_result;
};

int testsrv_start(struct testsrv *t, const char *path, uint64_t boot_id);
void testsrv_stop(struct testsrv *t);

extern const struct rump_service testsvc;

uint64_t testsvc_fnv1a(const void *p, size_t len);

/* A fresh temporary directory for sockets; *dir owned by the caller. */
char *testsvc_tmpdir(void);

#endif
