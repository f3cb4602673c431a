/*
 * inet: lwIP driven through its raw API.  Interfaces and the stack's
 * clock live here; sockets are in inet_sock.c.
 *
 * One lock (in->core) covers everything lwIP touches: received frames,
 * timers and socket calls each take it, so lwIP runs as if single-threaded
 * (NO_SYS) while any thread may enter.  A frame is copied into pool
 * buffers and fed to the stack on the NIC's receive thread, with no hand-
 * off to another thread on the way.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inet_int.h"
#include "inet_hooks.h"

#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/init.h"
#include "lwip/ip4.h"
#include "lwip/ip6.h"
#include "lwip/prot/ethernet.h"
#include "lwip/mld6.h"
#include "lwip/netif.h"
#include "lwip/ip4_frag.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/prot/ip4.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"

/* lwIP's state is global: one stack per process.  This flag is the one
 * piece of process state of ours, and it only guards lwIP's. */
static int inet_claimed;

#define INET_MTU_MAX (0xffff - SIZEOF_ETH_HDR)

struct inet_if {
	struct netif netif;         /* lwIP's; first, see netif_to_if */
	struct inet *in;
	struct rk_nic *nic;
	uint16_t link_mtu;          /* the NIC's; netif.mtu is larger with
	                             * TSO4, see inet_if_output4 */
	uint8_t prefix6[LWIP_IPV6_NUM_ADDRESSES];
	uint8_t *flat;              /* gathers long pbuf chains for output */
	struct inet_if *next;
};

static struct inet_if *
netif_to_if(struct netif *n)
{
	return (struct inet_if *)n;
}

/* ---- the stack's clock --------------------------------------------------- */

static void *
inet_timer_main(void *arg)
{
	struct inet *in = arg;
	uint32_t ms;

	rumpuser_mutex_enter(in->core);
	while (!in->stopping) {
		sys_check_timeouts();
		ms = sys_timeouts_sleeptime();
		if (ms == 0)
			continue;
		if (ms > 1000)
			ms = 1000;
		(void)rumpuser_cv_timedwait(in->timer_cv, in->core,
		                            (uint64_t)ms * 1000000u);
	}
	rumpuser_mutex_exit(in->core);
	return NULL;
}

int
inet_create(struct rk_runtime *rt, struct inet **inetp)
{
	struct inet *in = NULL;
	int error;

	if (__atomic_exchange_n(&inet_claimed, 1, __ATOMIC_ACQ_REL) != 0)
		return EBUSY;
	if ((error = rumpuser_malloc(sizeof(*in), 0, (void **)&in)) != 0)
		goto fail;
	memset(in, 0, sizeof(*in));
	in->rt = rt;
	if ((error = rumpuser_mutex_init(&in->core)) != 0)
		goto fail_free;
	if ((error = rumpuser_cv_init(&in->timer_cv)) != 0)
		goto fail_mutex;
	lwip_init();
	error = rumpuser_thread_create(inet_timer_main, in, "inet-timer",
	                               &in->timer_thread);
	if (error)
		goto fail_cv;
	*inetp = in;
	return 0;
fail_cv:
	rumpuser_cv_destroy(in->timer_cv);
fail_mutex:
	rumpuser_mutex_destroy(in->core);
fail_free:
	rumpuser_free(in, sizeof(*in));
fail:
	__atomic_store_n(&inet_claimed, 0, __ATOMIC_RELEASE);
	return error;
}

void
inet_destroy(struct inet *in)
{
	struct inet_if *ifp;

	if (in == NULL)
		return;
	rumpuser_mutex_enter(in->core);
	while (in->socks != NULL) {
		rumpuser_mutex_exit(in->core);
		inet_close(in->socks);
		rumpuser_mutex_enter(in->core);
	}
	in->stopping = true;
	rumpuser_cv_signal(in->timer_cv);
	rumpuser_mutex_exit(in->core);
	(void)rumpuser_thread_join(in->timer_thread, NULL);

	while ((ifp = in->ifs) != NULL) {
		in->ifs = ifp->next;
		rumpuser_mutex_enter(in->core);
		netif_remove(&ifp->netif);
		rumpuser_mutex_exit(in->core);
		rumpuser_free(ifp->flat, RK_NIC_FRAME_MAX);
		rumpuser_free(ifp, sizeof(*ifp));
	}
	rumpuser_cv_destroy(in->timer_cv);
	rumpuser_mutex_destroy(in->core);
	rumpuser_free(in, sizeof(*in));
	/* lwIP cannot be shut down; a later stack in this process would
	 * inherit its pools, so the claim stays. */
}

/* ---- interfaces ---------------------------------------------------------- */

static err_t
inet_if_linkoutput(struct netif *netif, struct pbuf *p)
{
	struct inet_if *ifp = netif_to_if(netif);
	struct rumpuser_iov iov[64];
	struct pbuf *q;
	unsigned n = 0;
	int error;

	for (q = p; q != NULL && n < 64; q = q->next) {
		if (q->len == 0)
			continue;
		iov[n].base = q->payload;
		iov[n].len = q->len;
		n++;
	}
	if (q != NULL) {
		/* A chain too long to gather: flatten it. */
		iov[0].base = ifp->flat;
		iov[0].len = pbuf_copy_partial(p, ifp->flat, p->tot_len, 0);
		n = 1;
	}
	error = ifp->nic->ops->output(ifp->nic, iov, n);
	/* A full link drops the frame, as a wire would: TCP resends. */
	return error == 0 || error == EAGAIN ? ERR_OK : ERR_IF;
}

/*
 * IPv4 output on a NIC that splits TCP segments (RK_NIC_OFF_TSO4): the
 * netif's MTU is the largest packet, so that lwIP neither fragments large
 * TCP segments nor caps the MSS of connections that may send them (see
 * inet_tcp_offload); every other packet longer than the link's MTU is
 * fragmented here, at the link's MTU.
 */
/*
 * lwIP offers the peer an MSS from the netif's MTU, which inet_if_output4
 * raises: a SYN's MSS option comes down to the link's, as a router clamps
 * it, with the checksum patched (RFC 1624).
 */
static void
clamp_syn_mss(struct inet_if *ifp, struct pbuf *p, size_t ihl)
{
	uint8_t *th = (uint8_t *)p->payload + ihl, *o;
	size_t thl, i;
	uint32_t sum;
	uint16_t mss, max = (uint16_t)(ifp->link_mtu - IP_HLEN - TCP_HLEN);

	if (p->len < ihl + TCP_HLEN || !(th[13] & TCP_SYN))
		return;
	thl = (size_t)(th[12] >> 4) * 4;
	if (thl < TCP_HLEN || p->len < ihl + thl)
		return;
	for (i = TCP_HLEN; i < thl; ) {
		o = th + i;
		if (o[0] == 0)          /* the end of the options */
			return;
		if (o[0] == 1) {        /* a one-byte no-op */
			i++;
			continue;
		}
		if (i + 1 >= thl || o[1] < 2 || i + o[1] > thl)
			return;
		i += o[1];
		if (o[0] != 2 || o[1] != 4)
			continue;
		mss = (uint16_t)(o[2] << 8 | o[3]);
		if (mss <= max)
			return;
		sum = (uint16_t)~(th[16] << 8 | th[17]);
		sum += (uint16_t)~mss;
		sum += max;
		sum = (sum >> 16) + (sum & 0xffff);
		sum = (sum >> 16) + (sum & 0xffff);
		sum = (uint16_t)~sum;
		o[2] = (uint8_t)(max >> 8);
		o[3] = (uint8_t)max;
		th[16] = (uint8_t)(sum >> 8);
		th[17] = (uint8_t)sum;
		return;
	}
}

static err_t
inet_if_output4(struct netif *netif, struct pbuf *p, const ip4_addr_t *dst)
{
	struct inet_if *ifp = netif_to_if(netif);
	const struct ip_hdr *ih = p->payload;
	err_t err;

	if (p->len >= IP_HLEN && IPH_PROTO(ih) == IP_PROTO_TCP) {
		clamp_syn_mss(ifp, p, (size_t)IPH_HL_BYTES(ih));
		return etharp_output(netif, p, dst);
	}
	if (p->tot_len <= ifp->link_mtu)
		return etharp_output(netif, p, dst);
	/* ip4_frag cuts at netif->mtu; lwIP runs under the core lock, so
	 * nothing else sees the link's value meanwhile. */
	netif->mtu = ifp->link_mtu;
	err = ip4_frag(p, netif, dst);
	netif->mtu = INET_MTU_MAX;
	return err;
}

uint16_t
inet_tcp_offload(struct tcp_pcb *pcb)
{
	struct netif *netif;
	struct inet_if *ifp;
	uint16_t link_mss;

	if (!IP_IS_V4_VAL(pcb->remote_ip))
		return 0;
	netif = ip_route(&pcb->local_ip, &pcb->remote_ip);
	if (netif == NULL || netif->output != inet_if_output4)
		return 0;
	ifp = netif_to_if(netif);
	/* The NIC cuts at the link's MTU: a peer that asked for smaller
	 * segments keeps getting what it asked for. */
	link_mss = (uint16_t)(ifp->link_mtu - IP_HLEN - TCP_HLEN);
	if (pcb->mss < link_mss)
		return 0;
	pcb->mss = tcp_eff_send_mss_netif(TCP_MSS, netif, &pcb->remote_ip);
	/* lwIP sends whole segments only: a window smaller than one would
	 * stall the connection.  Slow start grows it from there. */
	if (pcb->cwnd < pcb->mss)
		pcb->cwnd = pcb->mss;
	return link_mss;
}

void
inet_tcp_fit(struct tcp_pcb *pcb, uint16_t link_mss)
{
	struct tcp_seg *seg = pcb->unsent;
	uint32_t inflight, room, split;

	if (seg == NULL || link_mss == 0)
		return;
	/* Only the receiver's window: the congestion window grows in
	 * whole segments of the raised MSS and takes them as they are. */
	inflight = pcb->snd_nxt - pcb->lastack;
	room = pcb->snd_wnd > inflight ? pcb->snd_wnd - inflight : 0;
	if (seg->len <= room || (room < link_mss && inflight != 0))
		return; /* it goes now, or the next ACK calls again */
	/* What fits in whole link segments, or one link segment for the
	 * next window update to let through. */
	split = room >= link_mss ? room - room % link_mss : link_mss;
	if (split < seg->len)
		(void)tcp_split_unsent_seg(pcb, (u16_t)split);
}

static err_t
inet_if_init(struct netif *netif)
{
	struct inet_if *ifp = netif_to_if(netif);

	netif->name[0] = 'e';
	netif->name[1] = 'n';
	netif->hwaddr_len = ETH_HWADDR_LEN;
	memcpy(netif->hwaddr, ifp->nic->mac, ETH_HWADDR_LEN);
	/* lwIP builds a frame in one pbuf chain whose length is 16 bits:
	 * an IP packet plus its Ethernet header must fit. */
	ifp->link_mtu = (u16_t)(ifp->nic->mtu > INET_MTU_MAX ? INET_MTU_MAX :
	                        ifp->nic->mtu);
	netif->mtu = ifp->link_mtu;
	netif->mtu6 = ifp->link_mtu;
	netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP |
	    NETIF_FLAG_ETHERNET | NETIF_FLAG_MLD6;
	netif->output = etharp_output;
	if ((ifp->nic->offloads & RK_NIC_OFF_TSO4) &&
	    ifp->link_mtu < INET_MTU_MAX) {
		netif->mtu = INET_MTU_MAX;
		netif->output = inet_if_output4;
	}
	netif->output_ip6 = ethip6_output;
	netif->linkoutput = inet_if_linkoutput;
	return ERR_OK;
}

int
inet_if_attach(struct inet *in, struct rk_nic *nic, struct inet_if **ifpp)
{
	struct inet_if *ifp;
	int error;

	if ((error = rumpuser_malloc(sizeof(*ifp), 0, (void **)&ifp)) != 0)
		return error;
	memset(ifp, 0, sizeof(*ifp));
	ifp->in = in;
	ifp->nic = nic;
	if ((error = rumpuser_malloc(RK_NIC_FRAME_MAX, 64,
	                             (void **)&ifp->flat)) != 0) {
		rumpuser_free(ifp, sizeof(*ifp));
		return error;
	}
	rumpuser_mutex_enter(in->core);
	if (netif_add(&ifp->netif, NULL, NULL, NULL, ifp, inet_if_init,
	              ethernet_input) == NULL) {
		rumpuser_mutex_exit(in->core);
		rumpuser_free(ifp->flat, RK_NIC_FRAME_MAX);
		rumpuser_free(ifp, sizeof(*ifp));
		return ENOMEM;
	}
	netif_create_ip6_linklocal_address(&ifp->netif, 1);
	netif_ip6_addr_set_state(&ifp->netif, 0, IP6_ADDR_PREFERRED);
	ifp->prefix6[0] = 64;
	netif_set_up(&ifp->netif);
	netif_set_link_up(&ifp->netif);
	if (in->ifs == NULL)
		netif_set_default(&ifp->netif);
	ifp->next = in->ifs;
	in->ifs = ifp;
	rumpuser_mutex_exit(in->core);
	*ifpp = ifp;
	return 0;
}

/*
 * A frame longer than 64 KiB (an IP packet of up to 65535 bytes from a
 * host whose MTU is that large) does not fit lwIP's 16-bit pbuf length:
 * its IP packet is handed to the IP layer without the Ethernet header,
 * which is what ethernet_input would do for a unicast IP frame.
 */
static void
input_jumbo(struct inet_if *ifp, const uint8_t *frame, size_t len)
{
	uint16_t type = (uint16_t)(frame[12] << 8 | frame[13]);
	struct pbuf *p;
	err_t err;

	if (memcmp(frame, ifp->netif.hwaddr, ETH_HWADDR_LEN) != 0 ||
	    (type != ETHTYPE_IP && type != ETHTYPE_IPV6) ||
	    len - SIZEOF_ETH_HDR > 0xffff) {
		rk_nic_count(&ifp->nic->stats.rx_dropped, 1);
		return;
	}
	p = pbuf_alloc(PBUF_RAW, (u16_t)(len - SIZEOF_ETH_HDR), PBUF_POOL);
	if (p == NULL) {
		rk_nic_count(&ifp->nic->stats.rx_dropped, 1);
		return;
	}
	(void)pbuf_take(p, frame + SIZEOF_ETH_HDR,
	                (u16_t)(len - SIZEOF_ETH_HDR));
	err = type == ETHTYPE_IP ? ip4_input(p, &ifp->netif) :
	    ip6_input(p, &ifp->netif);
	if (err != ERR_OK)
		pbuf_free(p);
}

void
inet_if_input(struct inet_if *ifp, const void *frame, size_t len)
{
	struct inet *in = ifp->in;
	struct pbuf *p;

	if (len > RK_NIC_FRAME_MAX || len < SIZEOF_ETH_HDR) {
		rk_nic_count(&ifp->nic->stats.rx_errors, 1);
		return;
	}
	rumpuser_mutex_enter(in->core);
	if (len > 0xffff) {
		input_jumbo(ifp, frame, len);
		rumpuser_mutex_exit(in->core);
		return;
	}
	p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL);
	if (p == NULL) {
		rumpuser_mutex_exit(in->core);
		rk_nic_count(&ifp->nic->stats.rx_dropped, 1);
		return;
	}
	(void)pbuf_take(p, frame, (u16_t)len);
	if (ifp->netif.input(p, &ifp->netif) != ERR_OK)
		pbuf_free(p);
	rumpuser_mutex_exit(in->core);
}

/* "a.b.c.d/n" or "x:y::z/n" into an address and a prefix length. */
static int
parse_cidr(const char *cidr, int *familyp, uint8_t addr[16], unsigned *lenp)
{
	char buf[64], *slash, *end;
	unsigned long n;
	int family;

	if (strlen(cidr) >= sizeof(buf))
		return EINVAL;
	strcpy(buf, cidr);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, addr) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, buf, addr) == 1)
		family = AF_INET6;
	else
		return EINVAL;
	n = family == AF_INET ? 32 : 128;
	if (slash != NULL) {
		unsigned long max = n;

		errno = 0;
		n = strtoul(slash, &end, 10);
		if (errno || *end || *slash == '\0' || n > max)
			return EINVAL;
	}
	*familyp = family;
	*lenp = (unsigned)n;
	return 0;
}

int
inet_if_add_addr(struct inet_if *ifp, const char *cidr)
{
	struct inet *in = ifp->in;
	uint8_t a[16];
	unsigned plen;
	int family, error;
	s8_t idx;

	if ((error = parse_cidr(cidr, &family, a, &plen)) != 0)
		return error;
	rumpuser_mutex_enter(in->core);
	if (family == AF_INET) {
		ip4_addr_t ip, mask;
		uint32_t m = plen ? htonl(0xffffffffu << (32 - plen)) : 0;

		if (!ip4_addr_isany_val(*netif_ip4_addr(&ifp->netif))) {
			/* lwIP keeps one IPv4 address per interface. */
			error = EEXIST;
			goto out;
		}
		memcpy(&ip.addr, a, 4);
		mask.addr = m;
		netif_set_addr(&ifp->netif, &ip, &mask,
		               netif_ip4_gw(&ifp->netif));
	} else {
		ip6_addr_t ip;

		memcpy(ip.addr, a, 16);
		ip6_addr_clear_zone(&ip);
		if (ip6_addr_islinklocal(&ip))
			ip6_addr_assign_zone(&ip, IP6_UNICAST, &ifp->netif);
		if (netif_add_ip6_address(&ifp->netif, &ip, &idx) != ERR_OK) {
			error = ENOSPC;
			goto out;
		}
		ifp->prefix6[idx] = (uint8_t)plen;
		netif_ip6_addr_set_state(&ifp->netif, idx, IP6_ADDR_PREFERRED);
	}
out:
	rumpuser_mutex_exit(in->core);
	return error;
}

/* Whether the first len bits of a and b agree. */
static bool
prefix_match(const uint8_t *a, const uint8_t *b, unsigned len)
{
	unsigned bytes = len / 8, bits = len % 8;
	uint8_t mask = (uint8_t)(0xff00u >> bits);

	if (memcmp(a, b, bytes) != 0)
		return false;
	return bits == 0 || ((a[bytes] ^ b[bytes]) & mask) == 0;
}

/* The interface that reaches gateway gw directly; with the stack's lock. */
static struct inet_if *
gw_interface(struct inet *in, int family, const uint8_t *gw,
             const char *ifname)
{
	struct inet_if *ifp, *only = NULL;
	unsigned n = 0, i;

	for (ifp = in->ifs; ifp != NULL; ifp = ifp->next, n++) {
		only = ifp;
		if (ifname != NULL) {
			if (ifp->nic->dev != NULL &&
			    strcmp(rk_device_name(ifp->nic->dev), ifname) == 0)
				return ifp;
			continue;
		}
		if (family == AF_INET) {
			uint32_t a, m, g;

			memcpy(&g, gw, 4);
			a = ip4_addr_get_u32(netif_ip4_addr(&ifp->netif));
			m = ip4_addr_get_u32(netif_ip4_netmask(&ifp->netif));
			if (a != 0 && ((a ^ g) & m) == 0)
				return ifp;
			continue;
		}
		for (i = 0; i < LWIP_IPV6_NUM_ADDRESSES; i++)
			if (ip6_addr_isvalid(netif_ip6_addr_state(&ifp->netif,
			                                          i)) &&
			    prefix_match((const uint8_t *)
			                 netif_ip6_addr(&ifp->netif, i)->addr,
			                 gw, ifp->prefix6[i]))
				return ifp;
	}
	/* A link-local gateway is on every link: with one, it is that. */
	if (ifname == NULL && family == AF_INET6 && n == 1 &&
	    gw[0] == 0xfe && (gw[1] & 0xc0) == 0x80)
		return only;
	return NULL;
}

int
inet_add_route(struct inet *in, const char *dest, const char *gwstr)
{
	char gwbuf[64];
	const char *ifname = NULL;
	uint8_t gw[16], pfx[16];
	struct inet_route *r;
	struct inet_if *ifp;
	unsigned plen, i;
	int family, gwfamily, error = 0;
	char *pct;

	/* "fe80::1%eth0": a link-local gateway on interface eth0. */
	if (strlen(gwstr) >= sizeof(gwbuf))
		return EINVAL;
	strcpy(gwbuf, gwstr);
	if ((pct = strchr(gwbuf, '%')) != NULL) {
		*pct = '\0';
		ifname = pct + 1;
	}
	if (inet_pton(AF_INET, gwbuf, gw) == 1)
		gwfamily = AF_INET;
	else if (inet_pton(AF_INET6, gwbuf, gw) == 1)
		gwfamily = AF_INET6;
	else
		return EINVAL;
	if (ifname != NULL && (gwfamily != AF_INET6 || gw[0] != 0xfe ||
	                       (gw[1] & 0xc0) != 0x80 || *ifname == '\0'))
		return EINVAL;
	memset(pfx, 0, sizeof(pfx));
	if (strcmp(dest, "default") == 0) {
		family = gwfamily;
		plen = 0;
	} else if (strcmp(dest, "default4") == 0 ||
	           strcmp(dest, "default6") == 0) {
		family = dest[7] == '4' ? AF_INET : AF_INET6;
		plen = 0;
	} else {
		if ((error = parse_cidr(dest, &family, pfx, &plen)) != 0)
			return error;
		/* Host bits in a prefix are a typing error, not a wish. */
		for (i = plen; i < (family == AF_INET ? 32u : 128u); i++)
			if (pfx[i / 8] & (0x80 >> (i % 8)))
				return EINVAL;
	}
	if (family != gwfamily)
		return EAFNOSUPPORT;

	rumpuser_mutex_enter(in->core);
	if ((ifp = gw_interface(in, family, gw, ifname)) == NULL) {
		error = ENETUNREACH;
		goto out;
	}
	if (family == AF_INET && plen == 0) {
		ip4_addr_t g;

		if (netif_default != NULL &&
		    !ip4_addr_isany_val(*netif_ip4_gw(netif_default))) {
			error = EEXIST;
			goto out;
		}
		memcpy(&g.addr, gw, 4);
		netif_set_gw(&ifp->netif, &g);
		netif_set_default(&ifp->netif);
		goto out;
	}
	for (i = 0; i < in->nroutes; i++)
		if (in->routes[i].family == family &&
		    in->routes[i].prefix_len == plen &&
		    memcmp(in->routes[i].prefix, pfx, 16) == 0) {
			error = EEXIST;
			goto out;
		}
	if (in->nroutes == INET_ROUTES_MAX) {
		error = ENOSPC;
		goto out;
	}
	r = &in->routes[in->nroutes];
	memset(r, 0, sizeof(*r));
	r->family = family;
	r->prefix_len = plen;
	memcpy(r->prefix, pfx, 16);
	r->ifp = ifp;
	if (family == AF_INET) {
		memcpy(&r->gw4.addr, gw, 4);
	} else {
		memcpy(r->gw6.addr, gw, 16);
		ip6_addr_clear_zone(&r->gw6);
		if (ip6_addr_islinklocal(&r->gw6))
			ip6_addr_assign_zone(&r->gw6, IP6_UNICAST,
			                     &ifp->netif);
	}
	in->nroutes++;
out:
	rumpuser_mutex_exit(in->core);
	return error;
}

/* ---- lwIP's routing hooks (inet_hooks.h), with the stack's lock --------- */

/* The stack lwIP runs for: the one inet_create made, found through
 * lwIP's own list of interfaces. */
static struct inet *
hooked_stack(void)
{
	return netif_list != NULL ? netif_to_if(netif_list)->in : NULL;
}

/* The longest route to addr whose interface is up, or NULL. */
static struct inet_route *
route_lookup(int family, const void *addr)
{
	struct inet *in = hooked_stack();
	struct inet_route *r, *best = NULL;
	unsigned i;

	if (in == NULL)
		return NULL;
	for (i = 0; i < in->nroutes; i++) {
		r = &in->routes[i];
		if (r->family != family || !netif_is_up(&r->ifp->netif) ||
		    (best != NULL && best->prefix_len >= r->prefix_len) ||
		    !prefix_match(addr, r->prefix, r->prefix_len))
			continue;
		best = r;
	}
	return best;
}

struct netif *
inet_hook_route4(const struct ip4_addr *dest)
{
	struct inet_route *r = route_lookup(AF_INET, &dest->addr);

	return r != NULL ? &r->ifp->netif : NULL;
}

const struct ip4_addr *
inet_hook_gw4(struct netif *netif, const struct ip4_addr *dest)
{
	struct inet_route *r = route_lookup(AF_INET, &dest->addr);

	return r != NULL && &r->ifp->netif == netif ? &r->gw4 : NULL;
}

struct netif *
inet_hook_route6(const struct ip6_addr *dest)
{
	struct inet_route *r = route_lookup(AF_INET6, dest->addr);

	return r != NULL ? &r->ifp->netif : NULL;
}

const struct ip6_addr *
inet_hook_gw6(struct netif *netif, const struct ip6_addr *dest)
{
	struct inet_route *r = route_lookup(AF_INET6, dest->addr);

	return r != NULL && &r->ifp->netif == netif ? &r->gw6 : NULL;
}

unsigned
inet_if_addrs(struct inet_if *ifp, struct inet_addr_info *out, unsigned max)
{
	struct inet *in = ifp->in;
	unsigned n = 0, i;
	uint32_t m;

	rumpuser_mutex_enter(in->core);
	if (n < max && !ip4_addr_isany_val(*netif_ip4_addr(&ifp->netif))) {
		out[n].family = AF_INET;
		memcpy(out[n].addr, &netif_ip4_addr(&ifp->netif)->addr, 4);
		m = ntohl(ip4_addr_get_u32(netif_ip4_netmask(&ifp->netif)));
		out[n].prefix_len = (uint8_t)__builtin_popcount(m);
		n++;
	}
	for (i = 0; i < LWIP_IPV6_NUM_ADDRESSES && n < max; i++) {
		if (!ip6_addr_isvalid(netif_ip6_addr_state(&ifp->netif, i)))
			continue;
		out[n].family = AF_INET6;
		memcpy(out[n].addr, netif_ip6_addr(&ifp->netif, i)->addr, 16);
		out[n].prefix_len = ifp->prefix6[i];
		n++;
	}
	rumpuser_mutex_exit(in->core);
	return n;
}
