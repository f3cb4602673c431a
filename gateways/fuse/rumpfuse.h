/*
 * rumpfuse: the FUSE gateway to rumpfs.  Shared declarations of its three
 * parts: the session with rumpfs (rpc.c: calls that ride over a restart,
 * the log of uncommitted writes), the node table (nodes.c: FUSE node ids
 * <-> rumpfs handles) and the FUSE operations (ops.c).
 */
#ifndef RUMPFUSE_H
#define RUMPFUSE_H

#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "rump/client.h"
#include "rump/proto_fs.h"

/* ---- node table ------------------------------------------------------- */

/*
 * A node is what the kernel holds a FUSE node id for: one rumpfs handle,
 * with the number of lookups the kernel has not forgotten yet.  The node
 * id is the inode number when that is free (so it reads well in traces),
 * else one from a private range: an inode number reused under a new
 * generation while the kernel still holds the old one must get an id of
 * its own.  The root is FUSE_ROOT_ID and never forgotten.
 */
struct node {
	struct node *id_next, *fh_next;  /* hash chains */
	uint64_t nodeid;
	struct rump_fh fh;
	uint64_t nlookup;
	/* Last known mode and gid, for set-group-ID directories. */
	uint32_t mode, gid;
	/* Monotonic ns until which the object is known to have no
	 * security.capability (0: not known). */
	uint64_t nocaps_until;
};

struct nodetab {
	pthread_mutex_t lock;
	struct node **by_id, **by_fh;
	size_t nbuckets, count;
	uint64_t next_private;
};

int nodes_init(struct nodetab *t, const struct rump_fh *root);
void nodes_fini(struct nodetab *t);
/* The handle of nodeid; ESTALE if the kernel names no node we know. */
int nodes_fh(struct nodetab *t, uint64_t nodeid, struct rump_fh *fh);
/* The handle and the last known mode and gid of nodeid. */
int nodes_fh_attr(struct nodetab *t, uint64_t nodeid, struct rump_fh *fh,
                  uint32_t *mode, uint32_t *gid);
/*
 * One more lookup of the object attr names (its handle): returns its node
 * id in *nodeid, creating the node if needed, and records its mode/gid.
 */
int nodes_ref(struct nodetab *t, const struct rump_fattr *attr,
              uint64_t *nodeid);
/* Refreshes the mode/gid a node remembers, if the node exists. */
void nodes_note_attr(struct nodetab *t, uint64_t nodeid,
                     const struct rump_fattr *attr);
/*
 * The kernel asks for security.capability before every write (to drop
 * it, as a write must): the answer "none" is remembered for a node for
 * as long as attributes are cached, from its creation here or from a
 * GETXATTR that found none, and forgotten by any xattr change through
 * this gateway.  until 0 forgets.
 */
void nodes_set_nocaps(struct nodetab *t, uint64_t nodeid, uint64_t until);
bool nodes_nocaps(struct nodetab *t, uint64_t nodeid, uint64_t now);

/* The kernel forgets n lookups of nodeid. */
void nodes_forget(struct nodetab *t, uint64_t nodeid, uint64_t n);

/* After a replay: objects that came back under another handle. */
struct remap;
void nodes_remap(struct nodetab *t, const struct remap *m, size_t n);

/* ---- the gateway ------------------------------------------------------ */

struct log_entry;

struct gw_opts {
	const char *service;
	int reconnect_timeout_ms;
	double attr_timeout, entry_timeout;
	uint64_t max_uncommitted;     /* bytes of unstable writes kept */
};

struct gw {
	struct rump_client *client;
	struct gw_opts opts;
	struct rump_fs_mountinfo info;    /* root, verifier: under gate */
	struct fuse_session *se;

	/*
	 * Read-held by every request from its submission to its completion
	 * (and, for a WRITE, until it is in the log); write-held by a
	 * recovery, which therefore runs alone: nothing is in flight, and
	 * nothing new starts until the uncommitted writes went again.
	 */
	pthread_rwlock_t gate;
	pthread_mutex_t recover_lock;
	uint64_t epoch;                   /* sessions so far; under gate */
	bool dead;                        /* gave up on the service */

	/* Waiting for room in the shared area. */
	pthread_mutex_t buf_lock;
	pthread_cond_t buf_cond;

	/* Changes not covered by a COMMIT yet, oldest first (rpc.c). */
	pthread_mutex_t log_lock;
	struct log_entry *log_head, *log_tail;
	uint64_t log_bytes, log_seq;
	size_t log_count;
	pthread_mutex_t commit_lock;      /* one COMMIT round at a time */

	/* Handles that replays changed; under the gate. */
	struct remap *remaps;
	size_t nremaps, capremaps;
	uint64_t remap_pass;

	struct nodetab nodes;
};

int gw_open(struct gw *gw, const struct gw_opts *opts);
void gw_close(struct gw *gw);

/* A buffer in the shared area, waiting for room; NULL if len is absurd. */
void *gw_buf_alloc(struct gw *gw, size_t len);
void gw_buf_free(struct gw *gw, void *buf);

/*
 * A request of the buffer form: req (req_len bytes, private memory) is
 * copied to a shared buffer of max(req_len, reply_cap) bytes and sent;
 * the reply, at most reply_cap bytes, is copied to reply and its length
 * stored in *reply_len (may be NULL).  *replayed (may be NULL) is set when
 * the request had to be sent again after a restart, so that a caller can
 * read EEXIST or ENOENT as its own earlier success.  Returns 0 or an
 * errno.
 */
int gw_call(struct gw *gw, uint16_t op, const void *req, size_t req_len,
            void *reply, size_t reply_cap, size_t *reply_len,
            uint64_t *aux, bool *replayed);

/* READ of len bytes at off into buf (from gw_buf_alloc); *n gets bytes. */
int gw_read(struct gw *gw, const struct rump_fh *fh, uint64_t off,
            void *buf, size_t len, size_t *n);
/*
 * WRITE of len bytes at off from buf (from gw_buf_alloc), which the call
 * takes over: an unstable write keeps it in the log until a COMMIT covers
 * it, anything else frees it.  stable asks for a committed write.
 */
int gw_write(struct gw *gw, const struct rump_fh *fh, uint64_t off,
             void *buf, size_t len, bool stable, size_t *n);
/* COMMIT of the whole file system: every change so far is durable,
 * even across restarts. */
int gw_commit(struct gw *gw);

void gw_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- operations ------------------------------------------------------- */

extern const struct fuse_lowlevel_ops rumpfuse_ops;

/*
 * Raises the read-ahead of the FUSE mount at mountpoint (just mounted,
 * before the session loop runs) from the kernel's 128 KiB to one READ's
 * worth; quietly leaves it when that is not allowed.
 */
void gw_tune_readahead(const char *mountpoint);

#endif /* RUMPFUSE_H */
