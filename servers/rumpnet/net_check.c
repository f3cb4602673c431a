/*
 * The first check of a ring request, before any handle or buffer is looked
 * at: opcode, flags and sizes.  On its own so that the fuzzer runs it.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rump/nic.h"
#include "rump/proto_net.h"

#include "net_service.h"


int
net_check_sqe(const struct rump_sqe *sqe)
{
	if (sqe->flags & ~RUMP_NET_F_ALL)
		return -EINVAL;
	switch (sqe->opcode) {
	case RUMP_NET_OP_FRAME_SEND:
	case RUMP_NET_OP_FRAME_RECV:
		if (sqe->len == 0 || sqe->len > RK_NIC_FRAME_MAX)
			return -EINVAL;
		return 0;
	case RUMP_NET_OP_SEND:
	case RUMP_NET_OP_RECV:
		if (sqe->len > RUMP_NET_IO_MAX ||
		    sqe->arg[1] > sizeof(struct sockaddr_storage))
			return -EINVAL;
		return 0;
	case RUMP_NET_OP_BIND:
	case RUMP_NET_OP_CONNECT:
	case RUMP_NET_OP_ACCEPT:
	case RUMP_NET_OP_GETNAME:
		if (sqe->len > sizeof(struct sockaddr_storage))
			return -EINVAL;
		return 0;
	case RUMP_NET_OP_SETSOCKOPT:
	case RUMP_NET_OP_GETSOCKOPT:
		if (sqe->len > NET_OPT_MAX || sqe->arg[0] > INT32_MAX ||
		    sqe->arg[1] > INT32_MAX)
			return -EINVAL;
		return 0;
	case RUMP_NET_OP_SOCKET:
	case RUMP_NET_OP_CLOSE:
	case RUMP_NET_OP_LISTEN:
	case RUMP_NET_OP_SHUTDOWN:
	case RUMP_NET_OP_POLL:
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}

