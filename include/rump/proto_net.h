/*
 * The network service (rumpnet): wire structures.  docs/protocol-net.md is
 * the prose reference.
 *
 * Two protocols share one session:
 *  - the device protocol for raw frames, after Mach's device interface:
 *    interfaces are listed and opened by name (eth0), an open interface is
 *    a handle; frames are written and read through the rings, and each
 *    client's classic BPF filter (with a priority) picks the frames it
 *    receives, so several clients get what each asked for;
 *  - the socket protocol: TCP and UDP over IPv4 and IPv6, every call a
 *    ring request on a socket handle.  Requests are non-blocking when
 *    RUMP_NET_F_NONBLOCK is set (-EAGAIN, -EINPROGRESS), else they
 *    complete when done; POLL waits for readiness of many sockets at once.
 *
 * Set-up and status go through control messages; everything else through
 * the rings, with data in the shared buffer area.  Socket addresses are
 * Linux's struct sockaddr_in and sockaddr_in6 (peers share one host);
 * option levels and names are Linux's too.  A CQE's result is >= 0 on
 * success, -errno on failure.  Handles belong to the session: when it
 * ends, its sockets are closed and its interfaces released.
 */
#ifndef RUMP_PROTO_NET_H
#define RUMP_PROTO_NET_H

#include <assert.h>
#include <stdint.h>

#include "rump/proto.h"

#define RUMP_NET_MAX_IFS 32
#define RUMP_NET_MAX_ADDRS 8       /* per interface, in rump_net_if_info */
#define RUMP_NET_BPF_MAX 512       /* instructions in a filter */
#define RUMP_NET_POLL_MAX 1024     /* sockets in one POLL */

/* ---- control messages ------------------------------------------------- */

enum rump_net_msg {
	RUMP_NET_MSG_LIST = RUMP_MSG_SERVICE, /* -> rump_net_if_info[] */
	RUMP_NET_MSG_STATUS,      /* name[RUMP_NAME_MAX] -> rump_net_if_info */
	RUMP_NET_MSG_OPEN,        /* rump_net_open -> rump_net_open_reply */
	RUMP_NET_MSG_CLOSE,       /* uint64_t handle -> empty */
	RUMP_NET_MSG_SET_FILTER,  /* rump_net_filter + insns -> empty */
};

struct rump_net_addr_info {
	uint8_t family;           /* 4 or 6 */
	uint8_t prefix_len;
	uint16_t reserved;
	uint8_t addr[16];         /* 4 bytes used for IPv4 */
};
static_assert(sizeof(struct rump_net_addr_info) == 20, "wire size");

#define RUMP_NET_IF_UP    0x1
#define RUMP_NET_IF_INET  0x2     /* the TCP/IP stack runs on it */

struct rump_net_if_info {
	char name[RUMP_NAME_MAX];
	char kind[8];             /* "tap", "packet", "shm" */
	char backing[64];         /* host interface or bus file */
	uint8_t mac[6];
	uint16_t naddrs;
	uint32_t mtu;             /* largest IP packet */
	uint32_t flags;           /* RUMP_NET_IF_* */
	uint32_t raw_clients;     /* raw-frame handles open on it */
	uint32_t reserved;        /* 0 */
	uint64_t rx_packets, rx_bytes, rx_dropped, rx_errors;
	uint64_t tx_packets, tx_bytes, tx_dropped, tx_errors;
	struct rump_net_addr_info addrs[RUMP_NET_MAX_ADDRS];
};
static_assert(sizeof(struct rump_net_if_info) == 352, "wire size");

struct rump_net_open {
	char name[RUMP_NAME_MAX];
	uint32_t flags;           /* 0 */
	uint32_t reserved;        /* 0 */
};

struct rump_net_open_reply {
	uint64_t handle;
	struct rump_net_if_info info;
};

/*
 * Filters, after BSD's BPF (classic, as Linux's struct sock_filter): the
 * program sees the Ethernet frame and returns how many bytes to deliver
 * (0: not this client's).  No instructions means every frame.  Higher
 * priorities are asked first; a client whose filter has
 * RUMP_NET_FILTER_EXCLUSIVE and accepts a frame keeps it from lower
 * priorities and from the stack.  The filter applies to received frames;
 * with RUMP_NET_FILTER_OUTBOUND, frames sent on the interface as well.
 */
#define RUMP_NET_FILTER_EXCLUSIVE 0x1
#define RUMP_NET_FILTER_OUTBOUND  0x2

struct rump_net_bpf_insn {
	uint16_t code;
	uint8_t jt, jf;
	uint32_t k;
};
static_assert(sizeof(struct rump_net_bpf_insn) == 8, "wire size");

struct rump_net_filter {
	uint64_t handle;
	int32_t priority;
	uint32_t flags;           /* RUMP_NET_FILTER_* */
	uint32_t ninsns;          /* insns follow, 0 .. RUMP_NET_BPF_MAX */
	uint32_t reserved;        /* 0 */
	/* struct rump_net_bpf_insn insns[ninsns]; */
};
static_assert(sizeof(struct rump_net_filter) == 24, "wire size");

/* ---- ring operations --------------------------------------------------- */

enum rump_net_op {
	/* raw frames, on an interface handle from OPEN */
	RUMP_NET_OP_FRAME_SEND = 1,  /* buf/len: one frame; result len */
	RUMP_NET_OP_FRAME_RECV = 2,  /* buf/len: room; completes with the
	                              * next frame the filter accepts: result
	                              * its length (bytes beyond len are cut),
	                              * aux the wall-clock time in ns */

	/* sockets */
	RUMP_NET_OP_SOCKET = 16,     /* arg[0] domain (AF_INET, AF_INET6),
	                              * arg[1] type (SOCK_STREAM, SOCK_DGRAM);
	                              * result: the new handle */
	RUMP_NET_OP_CLOSE = 17,      /* handle */
	RUMP_NET_OP_BIND = 18,       /* buf/len: the address */
	RUMP_NET_OP_LISTEN = 19,     /* arg[0] backlog */
	RUMP_NET_OP_CONNECT = 20,    /* buf/len: the address */
	RUMP_NET_OP_ACCEPT = 21,     /* buf/len: room for the peer's address;
	                              * result the new handle, aux the
	                              * address's length */
	RUMP_NET_OP_SEND = 22,       /* buf/len: data; arg[0]/arg[1]: offset
	                              * and length of a destination address
	                              * in the buffer area (len 0: none);
	                              * result bytes sent */
	RUMP_NET_OP_RECV = 23,       /* buf/len: room; arg[0]/arg[1]: room
	                              * for the source address (len 0: none);
	                              * result bytes, aux RUMP_NET_AUX_* */
	RUMP_NET_OP_SHUTDOWN = 24,   /* arg[0] how (SHUT_RD, _WR, _RDWR) */
	RUMP_NET_OP_SETSOCKOPT = 25, /* arg[0] level, arg[1] name, buf/len */
	RUMP_NET_OP_GETSOCKOPT = 26, /* the same; result the value's length */
	RUMP_NET_OP_GETNAME = 27,    /* arg[0] 0: local, 1: peer; buf/len:
	                              * room; result the address's length */
	RUMP_NET_OP_POLL = 28,       /* buf/len: rump_net_pollfd[], handle
	                              * unused; arg[0] timeout in ns
	                              * (UINT64_MAX: none); result the count
	                              * of entries with revents */
};

/* sqe.flags */
#define RUMP_NET_F_NONBLOCK 0x1
#define RUMP_NET_F_PEEK     0x2      /* RECV */
#define RUMP_NET_F_WAITALL  0x4      /* RECV on a stream */
#define RUMP_NET_F_MORE     0x8      /* SEND: more follows */
#define RUMP_NET_F_ALL      0xf

/* RECV's aux: the source address's length in the low 32 bits, and: */
#define RUMP_NET_AUX_TRUNC  (1ull << 32) /* datagram longer than len */

/* POLL entries; events as poll(2)'s (POLLIN, POLLOUT, POLLERR, ...). */
struct rump_net_pollfd {
	uint64_t handle;
	uint32_t events;
	uint32_t revents;         /* written by the server */
};
static_assert(sizeof(struct rump_net_pollfd) == 16, "wire size");

#define RUMP_NET_IO_MAX (4u << 20) /* largest SEND or RECV */

#endif /* RUMP_PROTO_NET_H */
