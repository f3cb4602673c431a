/*
 * The server side of the IPC: accepts sessions on a listening socket and
 * runs each in a thread of its own, which reads control messages and
 * serves the session's rings.  A service (null, disk, fs, net) is a table
 * of callbacks.
 *
 * A session ends when its client leaves, sends a malformed message, or
 * breaks the ring protocol; that never affects another session.  Requests
 * still in flight when a session ends are completed into the void; the
 * session's memory is freed after the last of them.
 *
 * Ownership: the service owns its sess_ctx (made by session_open, freed by
 * session_close).  A request's SQE is a copy the service may keep; buffer
 * pointers from rump_session_buf() stay valid until the request completes.
 */
#ifndef RUMP_SERVER_H
#define RUMP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rump/proto.h"

struct rump_server;
struct rump_session;

#define RUMP_SERVICE_VERSION 1

struct rump_service {
	unsigned version;            /* RUMP_SERVICE_VERSION */
	uint32_t kind;               /* RUMP_SERVICE_* */
	const char *name;            /* shown in HELLO replies */
	void *ctx;                   /* the service's, see rump_session_service_ctx */

	/* After a good HELLO.  An error refuses the session. */
	int (*session_open)(struct rump_session *s, void **sess_ctx);
	/* After the last in-flight request of an ended session completed. */
	void (*session_close)(struct rump_session *s, void *sess_ctx);

	/*
	 * A control message of a service type (>= RUMP_MSG_SERVICE).  Writes
	 * at most *reply_len bytes of reply body and sets *reply_len.  Returns
	 * 0 or a positive errno sent as the reply's status; EPROTO ends the
	 * session.  Runs on the session's thread.
	 */
	int (*control)(struct rump_session *s, uint16_t type, const void *body,
	               size_t len, void *reply, size_t *reply_len);

	/*
	 * A ring request.  Must end in rump_session_complete() for
	 * sqe->user_data exactly once, now or later, from any thread.  Runs on
	 * the session's thread; must not block for long.
	 */
	void (*submit)(struct rump_session *s, const struct rump_sqe *sqe);

	/*
	 * Optional.  The session ended (client gone, protocol error, server
	 * destroyed): requests it still holds should be completed soon (their
	 * completions are dropped); session_close follows after the last.
	 * Runs on the session's thread, once, if session_open succeeded.
	 */
	void (*session_ended)(struct rump_session *s, void *sess_ctx);

	/*
	 * Optional.  Called on the session's thread while it polls its ring
	 * (between requests, and after each batch of them): completes what
	 * the service's driver has finished, on this thread, instead of
	 * handing each completion to another one.  Returns how many it
	 * completed; while that is not zero, or requests of the session are
	 * in flight, the thread keeps polling.  Before the thread sleeps,
	 * and once when the session ends, it is called with sleeping set:
	 * the service must then complete what finishes later some other way
	 * until the next call.  In between, control and submit run on this
	 * thread too and must not wait for what only poll would complete.
	 */
	unsigned (*poll)(struct rump_session *s, void *sess_ctx,
	                 bool sleeping);
};

struct rump_server_opts {
	int listen_fd;               /* a listening SEQPACKET socket, or -1 */
	const char *path;            /* else: listen here */
	uint64_t boot_id;
	uint64_t spin_ns;            /* polling before sleeping; 0: default */
	unsigned max_sessions;       /* 0: default (256) */
};

int rump_server_create(const struct rump_server_opts *opts,
                       const struct rump_service *service,
                       struct rump_server **serverp);
/* Accepts and serves until rump_server_stop(); returns 0 or an errno. */
int rump_server_run(struct rump_server *server);
/* Async-signal-safe: makes rump_server_run() return. */
void rump_server_stop(struct rump_server *server);
/* Ends every session, waits for them, frees the server. */
void rump_server_destroy(struct rump_server *server);

struct rump_server_stats {
	uint64_t sessions_total;
	uint32_t sessions_now;
	uint64_t requests, control_msgs, protocol_errors;
};
void rump_server_stats(struct rump_server *server,
                       struct rump_server_stats *out);

/* Pointer to [off, off+len) of the session's buffer area, NULL if that is
 * not inside it (or the session has no rings). */
void *rump_session_buf(struct rump_session *s, uint64_t off, uint64_t len);
void rump_session_complete(struct rump_session *s, uint64_t user_data,
                           int64_t result, uint64_t aux);
void *rump_session_ctx(struct rump_session *s);
void *rump_session_service_ctx(struct rump_session *s);
/* The client's credentials (SO_PEERCRED). */
void rump_session_peer(struct rump_session *s, int *pid, unsigned *uid,
                       unsigned *gid);

#endif /* RUMP_SERVER_H */
