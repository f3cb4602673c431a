/*
 * libFuzzer harness for the disk service's ring request check
 * (servers/rumpdisk/disk_check.c).  The input is an SQE as a client
 * writes it into shared memory, then the handle's open mode and the
 * device's size.  Whatever the bytes, the check must return, and what it
 * lets through must be what the protocol allows: the operation the opcode
 * names, only what the handle's mode permits, only known flags, no
 * transfer longer than DISK_IO_MAX, a BLOCK_STATUS range inside the
 * device and a buffer the client's len covers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "disk_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_io(const struct rump_sqe *sqe, unsigned mode,
         const struct disk_req_plan *p)
{
	static const enum rk_io_op ops[] = {
		[RUMP_DISK_OP_READ] = RK_IO_READ,
		[RUMP_DISK_OP_WRITE] = RK_IO_WRITE,
		[RUMP_DISK_OP_FLUSH] = RK_IO_FLUSH,
		[RUMP_DISK_OP_DISCARD] = RK_IO_DISCARD,
		[RUMP_DISK_OP_WRITE_ZEROES] = RK_IO_WRITE_ZEROES,
	};
	bool rw;

	if (sqe->opcode < RUMP_DISK_OP_READ ||
	    sqe->opcode > RUMP_DISK_OP_WRITE_ZEROES ||
	    p->op != ops[sqe->opcode])
		abort();
	if (p->op == RK_IO_READ && !(mode & RUMP_DISK_OPEN_READ))
		abort();
	if ((p->op == RK_IO_WRITE || p->op == RK_IO_DISCARD ||
	     p->op == RK_IO_WRITE_ZEROES) && !(mode & RUMP_DISK_OPEN_WRITE))
		abort();
	if (sqe->flags != 0 &&
	    (p->op != RK_IO_WRITE || sqe->flags != RUMP_DISK_F_FUA))
		abort();
	if (p->io_flags != ((sqe->flags & RUMP_DISK_F_FUA) ? RK_IO_FUA : 0u))
		abort();
	if (p->offset != sqe->offset || p->len != sqe->len)
		abort();
	rw = p->op == RK_IO_READ || p->op == RK_IO_WRITE;
	if (rw && (p->len > DISK_IO_MAX || p->buf != sqe->buf ||
	           p->buf_len != p->len))
		abort();
	if (!rw && p->buf_len != 0)
		abort();
}

static void
check_block_status(const struct rump_sqe *sqe, uint64_t size,
                   const struct disk_req_plan *p)
{
	if (sqe->opcode != RUMP_DISK_OP_BLOCK_STATUS || sqe->flags != 0)
		abort();
	if (p->offset != sqe->offset || p->offset > size ||
	    p->end < p->offset || p->end > size)
		abort();
	if (sqe->arg[0] != 0 && p->end - p->offset != sqe->arg[0])
		abort();
	if (p->max_extents == 0 || p->max_extents > DISK_EXTENTS_MAX ||
	    p->buf != sqe->buf ||
	    p->buf_len != p->max_extents * sizeof(struct rump_disk_extent) ||
	    p->buf_len > sqe->len)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rump_sqe sqe;
	struct disk_req_plan plan;
	uint64_t dev_size;
	unsigned mode;
	int r;

	if (size < sizeof(sqe) + 1 + sizeof(dev_size))
		return 0;
	memcpy(&sqe, data, sizeof(sqe));
	mode = data[sizeof(sqe)] & (RUMP_DISK_OPEN_READ | RUMP_DISK_OPEN_WRITE);
	memcpy(&dev_size, data + sizeof(sqe) + 1, sizeof(dev_size));

	r = disk_check_sqe(&sqe, mode, dev_size, &plan);
	switch (r) {
	case 0:
		if (plan.kind == DISK_REQ_IO)
			check_io(&sqe, mode, &plan);
		else if (plan.kind == DISK_REQ_BLOCK_STATUS)
			check_block_status(&sqe, dev_size, &plan);
		else
			abort();
		break;
	case -EBADF:
	case -EOPNOTSUPP:
	case -EINVAL:
	case -EOVERFLOW:
		break;
	default:
		abort();
	}
	return 0;
}
