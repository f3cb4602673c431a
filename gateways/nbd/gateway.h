/*
 * rumpnbd internals shared by main.c and conn.c.
 */
#ifndef NBD_GATEWAY_H
#define NBD_GATEWAY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"

struct conn;

/* The gateway: a backend and the connections it serves. */
struct gateway {
	struct nbd_backend *backend;
	unsigned max_conns;
	int handshake_timeout_s;

	pthread_mutex_t lock;        /* the fields below */
	pthread_cond_t idle;         /* signalled as connections end */
	struct conn *conns;
	unsigned nconns;
	bool stopping;

	/* Work done, for the supervisor's heartbeat (atomics, no lock):
	 * requests answered, and bytes read or written by those that
	 * succeeded. */
	uint64_t requests;
	uint64_t bytes;
};

int gateway_init(struct gateway *gw, struct nbd_backend *backend);
/* Hangs up every connection and waits for their threads to end. */
void gateway_shutdown(struct gateway *gw);

/*
 * Serves an accepted socket in threads of its own; takes fd in every case.
 * peer names the client in log lines.
 */
int conn_start(struct gateway *gw, int fd, const char *peer);

/* The backends' completion function (ctx is the gateway). */
void conn_complete(void *ctx, struct nbd_io **ios, unsigned n);

void nbd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* NBD_GATEWAY_H */
