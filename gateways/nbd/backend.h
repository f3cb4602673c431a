/*
 * What the NBD gateway serves exports from: an ops table over named
 * exports with asynchronous I/O.
 *
 * The connection code owns every struct nbd_io and its buffer (allocated
 * through buf_alloc); a backend borrows an io from submit() until it hands
 * it back through the completion function, exactly once, from any thread.
 * A backend that loses its server keeps the io and re-issues it: the
 * connection sees a delay, not an error.
 */
#ifndef NBD_BACKEND_H
#define NBD_BACKEND_H

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#include "nbd_proto.h"

struct nbd_backend;
struct nbd_export;

enum nbd_io_op {
	NBD_IO_READ,          /* len bytes at offset into buf */
	NBD_IO_WRITE,         /* len bytes from buf; fua: stable when done */
	NBD_IO_FLUSH,         /* earlier completed writes become stable */
	NBD_IO_TRIM,          /* the range may read back as anything */
	NBD_IO_ZERO,          /* reads back as zeroes; no_hole: stays
	                       * allocated */
	NBD_IO_BLOCK_STATUS,  /* buf (buf_len bytes) gets struct nbd_extent[]
	                       * describing [offset, offset+len); result: how
	                       * many */
};

struct nbd_io {
	struct nbd_io *next;          /* the owner's lists */
	void *owner;                  /* the connection */
	struct nbd_export *export;
	enum nbd_io_op op;
	bool fua, no_hole;
	uint64_t offset;
	uint32_t len;
	void *buf;                    /* from buf_alloc, or NULL */
	uint32_t buf_len;
	int64_t result;               /* set by the backend: >= 0 or -errno */
	/* the connection's reply state */
	uint64_t cookie;
	uint16_t nbd_type;
	uint16_t nbd_flags;
	uint32_t early_error;         /* NBD error found at the edge */
	uint32_t reply_len;           /* bytes of hdr in use */
	uint32_t reply_data;          /* bytes of buf that follow hdr */
	uint8_t hdr[32];
	/* backend_priv bytes (see nbd_backend_ops) follow */
	alignas(max_align_t) unsigned char priv[];
};

/* Runs completed ios (any mix of exports and owners), from any thread. */
typedef void (*nbd_complete_fn)(void *ctx, struct nbd_io **ios, unsigned n);

struct nbd_backend_ops {
	const char *name;
	size_t io_priv;               /* bytes at nbd_io.priv */

	/* The exports, default first; stops at fn's first non-zero. */
	int (*list)(struct nbd_backend *b,
	            int (*fn)(void *arg, const char *name), void *arg);
	/* Describes an export ("" is the default one); ENOENT if unknown. */
	int (*lookup)(struct nbd_backend *b, const char *name,
	              struct nbd_export_desc *d);
	/* Opens an export for I/O; fills d as lookup does. */
	int (*open)(struct nbd_backend *b, const char *name,
	            struct nbd_export_desc *d, struct nbd_export **ep);
	/* After every io of the export completed. */
	void (*close)(struct nbd_export *e);

	/* A buffer for I/O of len bytes, NULL while none is free. */
	void *(*buf_alloc)(struct nbd_export *e, size_t len);
	void (*buf_free)(struct nbd_export *e, void *buf);

	/* Starts io; it completes through the backend's nbd_complete_fn. */
	void (*submit)(struct nbd_export *e, struct nbd_io *io);

	/*
	 * Optional, all three or none: completion by polling.  A thread that
	 * spins anyway (a connection waiting for its next request) calls
	 * poll_enter, then poll often (every few microseconds to tens of
	 * them); poll runs the completions that are ready on the calling
	 * thread, without waiting, and returns how many.  While any thread
	 * polls, the backend's own completion thread may sleep, so a poller
	 * calls poll_leave before anything that may block: a completion
	 * must never wait for a poller that waits for it.
	 */
	void (*poll_enter)(struct nbd_backend *b);
	unsigned (*poll)(struct nbd_backend *b);
	void (*poll_leave)(struct nbd_backend *b);

	void (*destroy)(struct nbd_backend *b);
};

struct nbd_backend {
	const struct nbd_backend_ops *ops;
	nbd_complete_fn complete;
	void *complete_ctx;
};

/* "mem:SIZE": one RAM export called wd0, for tests without rumpdisk. */
int nbd_backend_mem_create(const char *spec, struct nbd_backend **bp);

/* rumpdisk through librumpclient; service is its socket name or path. */
struct nbd_disk_opts {
	const char *service;
	int reconnect_timeout_ms;     /* how long a restart may take */
};
int nbd_backend_disk_create(const struct nbd_disk_opts *opts,
                            struct nbd_backend **bp);

#endif /* NBD_BACKEND_H */
