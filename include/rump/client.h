/*
 * librumpclient: how a program reaches a rump process.
 *
 * A client is one session with one service: a control socket for calls
 * and, unless asked otherwise, a shared area with a submission ring, a
 * completion ring and a buffer area.  Data moves through buffers the
 * client allocates in that area (zero copy: a server reads into them
 * directly).
 *
 * Threads: every function may be called from any thread.  Completion
 * callbacks run on whichever thread is reaping (rump_client_reap, or a
 * thread waiting in rump_client_exec); they must not block.
 *
 * Restart: when the server goes away, calls fail with ECONNRESET and
 * requests in flight complete with -ECONNRESET.  rump_client_reconnect()
 * waits for the service to come back and sets the session up again on the
 * same shared area, so buffers stay valid; rump_client_boot_id() then tells
 * whether it is a new server (restarted) or the same one.
 *
 * Functions return 0 or a positive errno value unless they say otherwise.
 */
#ifndef RUMP_CLIENT_H
#define RUMP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "rump/proto.h"

struct rump_client;

#define RUMP_CLIENT_OPTS_VERSION 1

struct rump_client_opts {
	unsigned version;            /* RUMP_CLIENT_OPTS_VERSION */
	uint32_t service_kind;       /* expected kind, or RUMP_SERVICE_ANY */
	const char *client_name;     /* for the server's logs */
	unsigned sq_entries;         /* 0: 256; 1 (or less rings): control only */
	unsigned cq_entries;         /* 0: 2 * sq_entries */
	size_t buf_size;             /* 0: 8 MiB */
	uint64_t spin_ns;            /* polling before sleeping; 0: default */
	int no_rings;                /* control socket only */
};

/*
 * Connects to the service called name (a socket in the runtime directory,
 * see rump_runtime_dir()) or, if name contains a '/', to that socket path.
 * opts may be NULL for the defaults.
 */
int rump_client_connect(const char *name, const struct rump_client_opts *opts,
                        struct rump_client **clientp);
void rump_client_close(struct rump_client *client);

uint64_t rump_client_boot_id(const struct rump_client *client);
uint32_t rump_client_service_kind(const struct rump_client *client);
const char *rump_client_service_name(const struct rump_client *client);

/*
 * A control call: sends type with body req, waits for the reply, copies at
 * most reply_cap bytes of its body to reply and sets *reply_len (may be
 * NULL).  Returns the reply's status (0 or an errno), or a transport error.
 */
int rump_client_call(struct rump_client *client, uint16_t type,
                     const void *req, size_t req_len, void *reply,
                     size_t reply_cap, size_t *reply_len);

/* ---- buffers in the shared area --------------------------------------- */

/* len bytes, 64-byte aligned (4096 if len >= 4096); NULL when full. */
void *rump_client_buf_alloc(struct rump_client *client, size_t len);
void rump_client_buf_free(struct rump_client *client, void *buf);
/* The offset a request names buf by; buf must come from buf_alloc. */
uint64_t rump_client_buf_offset(const struct rump_client *client,
                                const void *buf);

/* ---- requests --------------------------------------------------------- */

struct rump_request;
typedef void (*rump_request_done_fn)(struct rump_request *req,
                                     int64_t result, uint64_t aux);

/* Owned by the caller; the library borrows it from submit until done. */
struct rump_request {
	struct rump_sqe sqe;         /* the caller fills all but user_data */
	rump_request_done_fn done;
	void *arg;
	uint32_t slot_;              /* the library's */
};

/*
 * Queues req on the submission ring and rings the server if it sleeps.
 * EAGAIN when as many requests are in flight as the completion ring holds
 * (reap, then retry); ECONNRESET when the session is gone.
 */
int rump_client_submit(struct rump_client *client, struct rump_request *req);

/*
 * Runs the callbacks of completed requests, waiting up to timeout_ns for
 * the first (0: don't wait; UINT64_MAX: forever).  Returns the number run
 * (>= 0) or a negative errno (-ECONNRESET when the session is gone).
 */
int rump_client_reap(struct rump_client *client, uint64_t timeout_ns);

/* Requests submitted and not yet completed. */
unsigned rump_client_in_flight(const struct rump_client *client);

/*
 * Submits one request and waits for it: returns its result (>= 0, or a
 * negative errno); *aux (may be NULL) gets its aux.
 */
int64_t rump_client_exec(struct rump_client *client, struct rump_sqe *sqe,
                         uint64_t *aux);

/*
 * After ECONNRESET: fails what is in flight, then connects again, waiting
 * up to timeout_ms for the service to come back (retrying with backoff),
 * and sets up the rings on the same shared area.  ETIMEDOUT if it did not
 * come back.
 */
int rump_client_reconnect(struct rump_client *client, int timeout_ms);

#endif /* RUMP_CLIENT_H */
