/*
 * The disk service's check of one ring request, as a pure function: what
 * a client's SQE may ask of a handle, decided from the SQE and what the
 * service knows of the handle, before anything runs.  Kept apart so that
 * a fuzzer can drive it (tests/fuzz/disk/fuzz_disk_req.c).
 *
 * Left to others: finding the handle (the session's table), mapping the
 * buffer (rump_session_buf: is [buf, buf + buf_len) inside the session's
 * area), and the device's own alignment and bounds (rk_io_submit).
 */
#ifndef RUMPDISK_DISK_CHECK_H
#define RUMPDISK_DISK_CHECK_H

#include <stdint.h>

#include "rump/proto.h"
#include "rump/rumpkern.h"

/* Largest READ or WRITE: bounds what one request pins. */
#define DISK_IO_MAX (32u << 20)
/* Extents one BLOCK_STATUS returns at most: bounds the time one request
 * spends on a finely fragmented file (the client asks again from where
 * the answer ended). */
#define DISK_EXTENTS_MAX 1024u

enum disk_req_kind {
	DISK_REQ_IO,             /* an rk_io: op, io_flags, offset, len */
	DISK_REQ_BLOCK_STATUS,   /* extents of [offset, end) into buf */
};

struct disk_req_plan {
	enum disk_req_kind kind;
	enum rk_io_op op;        /* DISK_REQ_IO */
	unsigned io_flags;       /* DISK_REQ_IO: RK_IO_* */
	uint64_t offset;
	uint64_t len;            /* DISK_REQ_IO: bytes of the device */
	uint64_t end;            /* DISK_REQ_BLOCK_STATUS: offset < end <= size,
	                          * or end == offset for an empty range */
	uint32_t max_extents;    /* DISK_REQ_BLOCK_STATUS: 1..DISK_EXTENTS_MAX */
	uint64_t buf, buf_len;   /* the client's buffer to map; buf_len 0:
	                          * none */
};

/*
 * 0 and *plan, or the negative errno the request completes with: EBADF
 * (the handle's mode does not allow it), EOPNOTSUPP (unknown opcode),
 * EINVAL (flags, range, BLOCK_STATUS without room for one extent),
 * EOVERFLOW (longer than DISK_IO_MAX).  mode is the handle's
 * RUMP_DISK_OPEN_* bits, dev_size the device's size in bytes.
 */
int disk_check_sqe(const struct rump_sqe *sqe, unsigned mode,
                   uint64_t dev_size, struct disk_req_plan *plan);

#endif /* RUMPDISK_DISK_CHECK_H */
