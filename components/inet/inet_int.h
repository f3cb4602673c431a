/* Shared by the files of the inet component only. */
#ifndef RUMP_INET_INT_H
#define RUMP_INET_INT_H

#include <stdbool.h>

#include "inet.h"

#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "lwip/udp.h"

struct inet {
	struct rk_runtime *rt;
	struct rumpuser_mtx *core;      /* lwIP and everything below */
	struct rumpuser_cv *timer_cv;
	struct rumpuser_thread *timer_thread;
	bool stopping;
	struct inet_if *ifs;
	struct inet_sock *socks;        /* every open socket */
};

#endif /* RUMP_INET_INT_H */
