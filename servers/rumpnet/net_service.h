/*
 * The network service: interfaces (NIC devices of the runtime, each maybe
 * under the inet stack), raw-frame clients with their filters, and the
 * socket protocol (include/rump/proto_net.h) on the inet stack.
 */
#ifndef RUMPNET_NET_SERVICE_H
#define RUMPNET_NET_SERVICE_H

#include "rump/nic.h"
#include "rump/rumpkern.h"
#include "rump/server.h"

struct net_service;

/* stack may be NULL (raw frames only). */
struct inet;
int net_service_create(struct rk_runtime *rt, struct inet *stack,
                       struct net_service **nsp);
/*
 * Adds the NIC device named dev (made by a nic_* component) as interface
 * dev; with_inet puts it under the stack.  Starts its receive thread.
 */
int net_service_add_if(struct net_service *ns, const char *dev,
                       bool with_inet);
/* --addr NAME=CIDR */
int net_service_add_addr(struct net_service *ns, const char *ifname,
                         const char *cidr);
const struct rump_service *net_service_desc(struct net_service *ns);
/* Stops every interface's receive thread; the server must be gone. */
void net_service_destroy(struct net_service *ns);

/* The largest socket option value a request may carry. */
#define NET_OPT_MAX 256u

/* net_check.c: the first check of every ring request (opcode, flags,
 * sizes), on its own so the fuzzer runs it; 0 or the -errno the request
 * completes with. */
int net_check_sqe(const struct rump_sqe *sqe);

#endif /* RUMPNET_NET_SERVICE_H */
