/*
 * A first-fit allocator over a range of offsets (the client's buffer
 * area).  Its bookkeeping lives in private memory: the range itself is
 * shared with the server, which must not be able to corrupt it.
 * Thread-safe.
 */
#ifndef RUMP_CLIENT_BUFALLOC_H
#define RUMP_CLIENT_BUFALLOC_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct buf_extent {
	uint64_t off, len;
};

struct bufalloc {
	pthread_mutex_t lock;
	uint64_t size;
	/* Both sorted by offset; free extents never touch each other. */
	struct buf_extent *free, *used;
	size_t nfree, nused, capfree, capused;
};

int bufalloc_init(struct bufalloc *a, uint64_t size);
void bufalloc_fini(struct bufalloc *a);
/* Returns 0 and the offset in *offp, or ENOMEM.  Alignment 64, or 4096
 * when len >= 4096. */
int bufalloc_alloc(struct bufalloc *a, uint64_t len, uint64_t *offp);
/* EINVAL if off is not the start of an allocated block. */
int bufalloc_free(struct bufalloc *a, uint64_t off);
/* Bytes free (for tests and statistics). */
uint64_t bufalloc_avail(struct bufalloc *a);

#endif /* RUMP_CLIENT_BUFALLOC_H */
