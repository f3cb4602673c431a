/* Shared by the files of the inet component only. */
#ifndef RUMP_INET_INT_H
#define RUMP_INET_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "inet.h"

#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "lwip/udp.h"

#define INET_ROUTES_MAX 64

/* A static route to a prefix (the default IPv4 route is lwIP's own
 * default interface and gateway instead). */
struct inet_route {
	int family;                     /* AF_INET, AF_INET6 */
	unsigned prefix_len;
	uint8_t prefix[16];             /* host bits zero */
	ip4_addr_t gw4;
	ip6_addr_t gw6;                 /* zoned if link-local */
	struct inet_if *ifp;
};

struct inet {
	struct rk_runtime *rt;
	struct rumpuser_mtx *core;      /* lwIP and everything below */
	struct rumpuser_cv *timer_cv;
	struct rumpuser_thread *timer_thread;
	bool stopping;
	struct inet_if *ifs;
	struct inet_sock *socks;        /* every open socket */
	struct inet_route routes[INET_ROUTES_MAX];
	unsigned nroutes;
};

/*
 * A connection just established: if its packets leave through a NIC that
 * splits TCP segments, its MSS becomes the largest packet's, so that lwIP
 * hands the NIC one segment where it would have built dozens.  Returns
 * the MSS of the link then, else 0.
 */
uint16_t inet_tcp_offload(struct tcp_pcb *pcb);
/*
 * lwIP waits for a window that takes the whole first unsent segment (or
 * for its persist timer, seconds): with segments raised by
 * inet_tcp_offload, a receiver that reads slowly would never offer one.
 * This cuts the segment to what the window takes, in link segments.
 */
void inet_tcp_fit(struct tcp_pcb *pcb, uint16_t link_mss);

#endif /* RUMP_INET_INT_H */
