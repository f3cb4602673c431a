/*
 * The disk service's check of one ring request; see disk_check.h.
 */
#include <errno.h>
#include <string.h>

#include "disk_check.h"

static int
check_block_status(const struct rump_sqe *sqe, uint64_t dev_size,
                   struct disk_req_plan *plan)
{
	uint64_t max = sqe->len / sizeof(struct rump_disk_extent);

	/* arg[0]: the length asked, 0 for "to the end". */
	if (sqe->flags != 0 || sqe->offset > dev_size ||
	    sqe->arg[0] > dev_size - sqe->offset)
		return -EINVAL;
	if (max == 0)
		return -EINVAL;
	if (max > DISK_EXTENTS_MAX)
		max = DISK_EXTENTS_MAX;
	plan->kind = DISK_REQ_BLOCK_STATUS;
	plan->offset = sqe->offset;
	plan->end = sqe->arg[0] != 0 ? sqe->offset + sqe->arg[0] : dev_size;
	plan->max_extents = (uint32_t)max;
	plan->buf = sqe->buf;
	plan->buf_len = max * sizeof(struct rump_disk_extent);
	return 0;
}

int
disk_check_sqe(const struct rump_sqe *sqe, unsigned mode, uint64_t dev_size,
               struct disk_req_plan *plan)
{
	unsigned need = RUMP_DISK_OPEN_WRITE, allowed_flags = 0;

	memset(plan, 0, sizeof(*plan));
	switch (sqe->opcode) {
	case RUMP_DISK_OP_READ:
		plan->op = RK_IO_READ;
		need = RUMP_DISK_OPEN_READ;
		break;
	case RUMP_DISK_OP_WRITE:
		plan->op = RK_IO_WRITE;
		allowed_flags = RUMP_DISK_F_FUA;
		break;
	case RUMP_DISK_OP_FLUSH:
		plan->op = RK_IO_FLUSH;
		need = 0;
		break;
	case RUMP_DISK_OP_DISCARD:
		plan->op = RK_IO_DISCARD;
		break;
	case RUMP_DISK_OP_WRITE_ZEROES:
		plan->op = RK_IO_WRITE_ZEROES;
		break;
	case RUMP_DISK_OP_BLOCK_STATUS:
		/* Any open handle may ask where the data is. */
		return check_block_status(sqe, dev_size, plan);
	default:
		return -EOPNOTSUPP;
	}
	if ((mode & need) != need)
		return -EBADF;
	if ((sqe->flags & ~allowed_flags) != 0)
		return -EINVAL;
	plan->kind = DISK_REQ_IO;
	plan->io_flags = (sqe->flags & RUMP_DISK_F_FUA) ? RK_IO_FUA : 0;
	plan->offset = sqe->offset;
	plan->len = sqe->len;
	if (plan->op == RK_IO_READ || plan->op == RK_IO_WRITE) {
		if (sqe->len > DISK_IO_MAX)
			return -EOVERFLOW;
		plan->buf = sqe->buf;
		plan->buf_len = sqe->len;
	}
	return 0;
}
