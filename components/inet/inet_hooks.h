/*
 * lwIP's routing hooks (LWIP_HOOK_FILENAME): the static routes of the
 * command line (inet_add_route), looked up inside lwIP with the stack's
 * lock held.  Only lwIP's sources and inet.c see this.
 */
#ifndef RUMP_INET_HOOKS_H
#define RUMP_INET_HOOKS_H

struct netif;
struct ip4_addr;
struct ip6_addr;

/* The interface of the longest matching route, or NULL. */
struct netif *inet_hook_route4(const struct ip4_addr *dest);
struct netif *inet_hook_route6(const struct ip6_addr *dest);
/* The gateway of the longest matching route out of netif, or NULL. */
const struct ip4_addr *inet_hook_gw4(struct netif *netif,
                                     const struct ip4_addr *dest);
const struct ip6_addr *inet_hook_gw6(struct netif *netif,
                                     const struct ip6_addr *dest);

#endif /* RUMP_INET_HOOKS_H */
