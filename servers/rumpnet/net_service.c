/*
 * The network service.  Every request is checked here, at the edge; the
 * inet stack and the NICs only ever see well-formed calls.
 *
 * Locks, in the order they may nest:
 *   inet's core lock  (held while inet runs our done callbacks)
 *   sess->lock        (a session's handle table and pending polls)
 *   nif->raw_lock     (an interface's raw clients and their queues)
 * A session's socket is closed only on the session's own thread, so a
 * socket pointer looked up there stays valid until that thread closes it.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "rump/proto_net.h"

#include "bpf.h"
#include "inet.h"
#include "net_service.h"

#define RAW_RXQ_MAX 1024u         /* FRAME_RECVs waiting per raw handle */
#define HANDLE_MAX 65536u         /* per session */

struct raw_rx {
	uint64_t user_data;
	uint8_t *buf;
	uint32_t len;
};

struct net_if;
struct net_sess;

/* An interface opened for raw frames by a session. */
struct net_raw {
	struct net_if *nif;
	struct net_sess *sess;
	struct net_raw *next;         /* nif->raws, by priority, highest first */
	int32_t priority;
	uint32_t flags;               /* RUMP_NET_FILTER_* */
	struct rump_net_bpf_insn *prog;
	uint32_t nprog;
	struct raw_rx *rxq;           /* ring of RAW_RXQ_MAX */
	unsigned rx_head, rx_n;
	uint64_t dropped;             /* accepted, but no FRAME_RECV waited */
};

struct net_if {
	char name[RUMP_NAME_MAX];
	struct net_service *ns;
	struct rk_nic *nic;
	struct inet_if *iif;          /* NULL: not under the stack */
	struct rumpuser_mtx *raw_lock;
	struct net_raw *raws;
	unsigned nraws;               /* read without the lock as a hint */
};

struct net_service {
	struct rump_service desc;
	struct rk_runtime *rt;
	struct inet *stack;
	struct rk_pool *ops;          /* struct net_op */
	struct net_if ifs[RUMP_NET_MAX_IFS];
	unsigned nifs;
};

enum handle_kind { H_FREE, H_RESERVED, H_SOCK, H_RAW };

struct net_handle {
	uint32_t gen;
	uint8_t kind;
	void *obj;
};

struct net_pollreq;

struct net_sess {
	struct net_service *ns;
	struct rump_session *s;
	struct rumpuser_mtx *lock;
	struct net_handle *tab;
	unsigned cap;
	struct net_pollreq *polls;    /* pending */
};

/* One socket operation in flight: a pool object. */
struct net_op {
	struct inet_op iop;
	struct net_sess *sess;
	uint64_t user_data;
	unsigned slot;                /* ACCEPT: the reserved handle */
	uint8_t *addr_out;            /* RECV, ACCEPT: client's room */
	uint32_t addr_room;
};

struct net_pollreq {
	struct inet_poll p;
	struct net_sess *sess;
	struct inet *stack;           /* the timer's: it may outlive sess */
	uint64_t user_data;
	struct rump_net_pollfd *out;  /* the client's array */
	struct rk_timer timer;
	unsigned refs;                /* completion, set-up, the timer's */
	struct net_pollreq *next, **prevp;
	struct inet_poll_ent ents[];
};

/* ---- handles ------------------------------------------------------------- */

static uint64_t
handle_make(const struct net_sess *ss, unsigned slot)
{
	return (uint64_t)ss->tab[slot].gen << 32 | (slot + 1);
}

/* Finds a free slot and marks it kind; with ss->lock held. */
static int
handle_alloc_locked(struct net_sess *ss, uint8_t kind, void *obj,
                    unsigned *slotp)
{
	struct net_handle *nt;
	unsigned i, ncap;

	for (i = 0; i < ss->cap; i++)
		if (ss->tab[i].kind == H_FREE)
			goto found;
	if (ss->cap >= HANDLE_MAX)
		return EMFILE;
	ncap = ss->cap ? ss->cap * 2 : 64;
	if (rumpuser_malloc(ncap * sizeof(*nt), 0, (void **)&nt) != 0)
		return ENOMEM;
	memset(nt, 0, ncap * sizeof(*nt));
	if (ss->cap)
		memcpy(nt, ss->tab, ss->cap * sizeof(*nt));
	rumpuser_free(ss->tab, ss->cap * sizeof(*nt));
	ss->tab = nt;
	i = ss->cap;
	ss->cap = ncap;
found:
	ss->tab[i].gen++;
	ss->tab[i].kind = kind;
	ss->tab[i].obj = obj;
	*slotp = i;
	return 0;
}

static int
handle_alloc(struct net_sess *ss, uint8_t kind, void *obj, unsigned *slotp)
{
	int e;

	rumpuser_mutex_enter(ss->lock);
	e = handle_alloc_locked(ss, kind, obj, slotp);
	rumpuser_mutex_exit(ss->lock);
	return e;
}

static void
handle_free(struct net_sess *ss, unsigned slot)
{
	rumpuser_mutex_enter(ss->lock);
	ss->tab[slot].kind = H_FREE;
	ss->tab[slot].obj = NULL;
	rumpuser_mutex_exit(ss->lock);
}

/* The object behind handle h of kind, or NULL; *slotp its slot. */
static void *
handle_get(struct net_sess *ss, uint64_t h, uint8_t kind, unsigned *slotp)
{
	uint64_t slot = (h & 0xffffffffu);
	void *obj = NULL;

	if (slot == 0)
		return NULL;
	slot--;
	rumpuser_mutex_enter(ss->lock);
	if (slot < ss->cap && ss->tab[slot].kind == kind &&
	    ss->tab[slot].gen == (uint32_t)(h >> 32)) {
		obj = ss->tab[slot].obj;
		if (slotp != NULL)
			*slotp = (unsigned)slot;
	}
	rumpuser_mutex_exit(ss->lock);
	return obj;
}

/* ---- interfaces and raw frames -------------------------------------------- */

static struct net_if *
if_find(struct net_service *ns, const char *name)
{
	unsigned i;

	for (i = 0; i < ns->nifs; i++)
		if (strcmp(ns->ifs[i].name, name) == 0)
			return &ns->ifs[i];
	return NULL;
}

/* Copies the frame in iov (len bytes) to a waiting FRAME_RECV of raw, or
 * counts a drop.  With nif->raw_lock held. */
static void
raw_deliver(struct net_raw *raw, const struct rumpuser_iov *iov, unsigned n,
            size_t len, uint32_t snap)
{
	struct raw_rx rx;
	size_t want, off = 0, c;
	unsigned i;
	uint64_t now = 0;

	if (raw->rx_n == 0) {
		raw->dropped++;
		return;
	}
	rx = raw->rxq[raw->rx_head];
	raw->rx_head = (raw->rx_head + 1) % RAW_RXQ_MAX;
	raw->rx_n--;
	want = len < snap ? len : snap;
	if (want > rx.len)
		want = rx.len;
	for (i = 0; i < n && off < want; i++) {
		c = iov[i].len < want - off ? iov[i].len : want - off;
		memcpy(rx.buf + off, iov[i].base, c);
		off += c;
	}
	(void)rumpuser_clock_gettime(RUMPUSER_CLOCK_WALL, &now);
	rump_session_complete(raw->sess->s, rx.user_data, (int64_t)len, now);
}

/* Offers a frame to the raw clients of nif; true if one took it for
 * itself (RUMP_NET_FILTER_EXCLUSIVE). */
static bool
if_offer(struct net_if *nif, const struct rumpuser_iov *iov, unsigned n,
         size_t len, bool outbound)
{
	struct net_raw *raw;
	const uint8_t *flat = iov[0].base;
	uint32_t snap;
	bool taken = false;

	rumpuser_mutex_enter(nif->raw_lock);
	for (raw = nif->raws; raw != NULL && !taken; raw = raw->next) {
		if (outbound && !(raw->flags & RUMP_NET_FILTER_OUTBOUND))
			continue;
		/* Filters read a flat frame; inet's frames in several
		 * pieces are offered only to filters that accept all. */
		if (n > 1 && raw->nprog > 0)
			continue;
		snap = bpf_run(raw->prog, raw->nprog, flat,
		               n > 1 ? iov[0].len : len);
		if (n > 1)
			snap = UINT32_MAX;
		if (snap == 0)
			continue;
		raw_deliver(raw, iov, n, len, snap);
		taken = !outbound && (raw->flags & RUMP_NET_FILTER_EXCLUSIVE);
	}
	rumpuser_mutex_exit(nif->raw_lock);
	return taken;
}

static void
if_input(void *arg, const void *frame, size_t len)
{
	struct net_if *nif = arg;
	struct rumpuser_iov iov = { frame, len };

	if (__atomic_load_n(&nif->nraws, __ATOMIC_RELAXED) > 0 &&
	    if_offer(nif, &iov, 1, len, false))
		return;
	if (nif->iif != NULL)
		inet_if_input(nif->iif, frame, len);
}

static void
if_outbound(void *arg, const struct rumpuser_iov *iov, unsigned n, size_t len)
{
	struct net_if *nif = arg;

	if (__atomic_load_n(&nif->nraws, __ATOMIC_RELAXED) > 0)
		(void)if_offer(nif, iov, n, len, true);
}

int
net_service_add_if(struct net_service *ns, const char *dev, bool with_inet)
{
	struct rk_device *d;
	struct rk_nic *nic;
	struct net_if *nif;
	int error;

	if (ns->nifs == RUMP_NET_MAX_IFS)
		return ENOSPC;
	if (strlen(dev) >= RUMP_NAME_MAX)
		return ENAMETOOLONG;
	if (if_find(ns, dev) != NULL)
		return EEXIST;
	d = rk_device_lookup(ns->rt, dev);
	if (d == NULL)
		return ENOENT;
	nic = rk_nic_of(d);
	rk_device_release(d); /* the device lives as long as the runtime */
	if (nic == NULL)
		return ENODEV;
	nif = &ns->ifs[ns->nifs];
	memset(nif, 0, sizeof(*nif));
	strcpy(nif->name, dev);
	nif->ns = ns;
	nif->nic = nic;
	if ((error = rumpuser_mutex_init(&nif->raw_lock)) != 0)
		return error;
	if (with_inet && ns->stack != NULL &&
	    (error = inet_if_attach(ns->stack, nic, &nif->iif)) != 0)
		goto fail;
	nic->input = if_input;
	nic->input_arg = nif;
	nic->outbound = if_outbound;
	nic->outbound_arg = nif;
	if ((error = nic->ops->start(nic)) != 0)
		goto fail;
	ns->nifs++;
	return 0;
fail:
	nic->input = NULL;
	nic->outbound = NULL;
	rumpuser_mutex_destroy(nif->raw_lock);
	return error;
}

int
net_service_add_addr(struct net_service *ns, const char *ifname,
                     const char *cidr)
{
	struct net_if *nif = if_find(ns, ifname);

	if (nif == NULL)
		return ENOENT;
	if (nif->iif == NULL)
		return ENOTSUP;
	return inet_if_add_addr(nif->iif, cidr);
}

static void
if_info(struct net_if *nif, struct rump_net_if_info *info)
{
	struct inet_addr_info addrs[RUMP_NET_MAX_ADDRS];
	struct rk_nic_stats st;
	unsigned i, n = 0;

	memset(info, 0, sizeof(*info));
	memcpy(info->name, nif->name, sizeof(info->name));
	memcpy(info->kind, nif->nic->kind, sizeof(info->kind));
	memcpy(info->backing, nif->nic->backing, sizeof(info->backing));
	memcpy(info->mac, nif->nic->mac, 6);
	info->mtu = nif->nic->mtu;
	info->flags = RUMP_NET_IF_UP | (nif->iif ? RUMP_NET_IF_INET : 0);
	info->raw_clients = __atomic_load_n(&nif->nraws, __ATOMIC_RELAXED);
	rk_nic_stats(nif->nic, &st);
	info->rx_packets = st.rx_packets;
	info->rx_bytes = st.rx_bytes;
	info->rx_dropped = st.rx_dropped;
	info->rx_errors = st.rx_errors;
	info->tx_packets = st.tx_packets;
	info->tx_bytes = st.tx_bytes;
	info->tx_dropped = st.tx_dropped;
	info->tx_errors = st.tx_errors;
	if (nif->iif != NULL)
		n = inet_if_addrs(nif->iif, addrs, RUMP_NET_MAX_ADDRS);
	for (i = 0; i < n; i++) {
		info->addrs[i].family = addrs[i].family == AF_INET ? 4 : 6;
		info->addrs[i].prefix_len = addrs[i].prefix_len;
		memcpy(info->addrs[i].addr, addrs[i].addr, 16);
	}
	info->naddrs = (uint16_t)n;
}

static void
raw_unlink_and_free(struct net_raw *raw)
{
	struct net_if *nif = raw->nif;
	struct net_raw **pp;
	struct raw_rx rx;

	rumpuser_mutex_enter(nif->raw_lock);
	for (pp = &nif->raws; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == raw) {
			*pp = raw->next;
			break;
		}
	}
	__atomic_fetch_sub(&nif->nraws, 1, __ATOMIC_RELAXED);
	while (raw->rx_n > 0) {
		rx = raw->rxq[raw->rx_head];
		raw->rx_head = (raw->rx_head + 1) % RAW_RXQ_MAX;
		raw->rx_n--;
		rump_session_complete(raw->sess->s, rx.user_data, -EBADF, 0);
	}
	rumpuser_mutex_exit(nif->raw_lock);
	rumpuser_free(raw->prog, raw->nprog * sizeof(*raw->prog));
	rumpuser_free(raw->rxq, RAW_RXQ_MAX * sizeof(*raw->rxq));
	rumpuser_free(raw, sizeof(*raw));
}

/* Inserts raw by priority; with nif->raw_lock held. */
static void
raw_insert_locked(struct net_if *nif, struct net_raw *raw)
{
	struct net_raw **pp;

	for (pp = &nif->raws; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->priority < raw->priority)
			break;
	raw->next = *pp;
	*pp = raw;
}

/* ---- control messages ------------------------------------------------------ */

static int
name_from(const char *src, char *dst)
{
	/* Names arrive NUL-padded; one that fills the field is refused. */
	if (memchr(src, '\0', RUMP_NAME_MAX) == NULL)
		return EINVAL;
	memcpy(dst, src, RUMP_NAME_MAX);
	return 0;
}

static int
ctl_open(struct net_sess *ss, const void *body, size_t len, void *reply,
         size_t *reply_len)
{
	struct rump_net_open req;
	struct rump_net_open_reply r;
	struct net_raw *raw = NULL;
	struct net_if *nif;
	char name[RUMP_NAME_MAX];
	unsigned slot;
	int error;

	if (len != sizeof(req))
		return EINVAL;
	memcpy(&req, body, sizeof(req));
	if (req.flags != 0 || req.reserved != 0)
		return EINVAL;
	if ((error = name_from(req.name, name)) != 0)
		return error;
	if ((nif = if_find(ss->ns, name)) == NULL)
		return ENXIO;
	if ((error = rumpuser_malloc(sizeof(*raw), 0, (void **)&raw)) != 0)
		return error;
	memset(raw, 0, sizeof(*raw));
	raw->nif = nif;
	raw->sess = ss;
	error = rumpuser_malloc(RAW_RXQ_MAX * sizeof(*raw->rxq), 0,
	                        (void **)&raw->rxq);
	if (error) {
		rumpuser_free(raw, sizeof(*raw));
		return error;
	}
	if ((error = handle_alloc(ss, H_RAW, raw, &slot)) != 0) {
		rumpuser_free(raw->rxq, RAW_RXQ_MAX * sizeof(*raw->rxq));
		rumpuser_free(raw, sizeof(*raw));
		return error;
	}
	rumpuser_mutex_enter(nif->raw_lock);
	raw_insert_locked(nif, raw);
	__atomic_fetch_add(&nif->nraws, 1, __ATOMIC_RELAXED);
	rumpuser_mutex_exit(nif->raw_lock);
	/* Built here: the framework's reply buffer is only 4-byte aligned. */
	memset(&r, 0, sizeof(r));
	r.handle = handle_make(ss, slot);
	if_info(nif, &r.info);
	memcpy(reply, &r, sizeof(r));
	*reply_len = sizeof(r);
	return 0;
}

static int
ctl_set_filter(struct net_sess *ss, const void *body, size_t len)
{
	struct rump_net_filter f;
	struct rump_net_bpf_insn *prog = NULL, *old;
	struct net_raw *raw;
	uint32_t oldn;
	int error;

	if (len < sizeof(f))
		return EINVAL;
	memcpy(&f, body, sizeof(f));
	if (f.reserved != 0 || f.ninsns > RUMP_NET_BPF_MAX ||
	    (f.flags & ~(uint32_t)(RUMP_NET_FILTER_EXCLUSIVE |
	                           RUMP_NET_FILTER_OUTBOUND)) ||
	    len != sizeof(f) + f.ninsns * sizeof(*prog))
		return EINVAL;
	if ((raw = handle_get(ss, f.handle, H_RAW, NULL)) == NULL)
		return EBADF;
	if (f.ninsns > 0) {
		error = rumpuser_malloc(f.ninsns * sizeof(*prog), 0,
		                        (void **)&prog);
		if (error)
			return error;
		memcpy(prog, (const uint8_t *)body + sizeof(f),
		       f.ninsns * sizeof(*prog));
		if ((error = bpf_validate(prog, f.ninsns)) != 0) {
			rumpuser_free(prog, f.ninsns * sizeof(*prog));
			return error;
		}
	}
	rumpuser_mutex_enter(raw->nif->raw_lock);
	old = raw->prog;
	oldn = raw->nprog;
	raw->prog = prog;
	raw->nprog = f.ninsns;
	raw->flags = f.flags;
	if (raw->priority != f.priority) {
		struct net_raw **pp;

		for (pp = &raw->nif->raws; *pp != raw; pp = &(*pp)->next)
			;
		*pp = raw->next;
		raw->priority = f.priority;
		raw_insert_locked(raw->nif, raw);
	}
	rumpuser_mutex_exit(raw->nif->raw_lock);
	rumpuser_free(old, oldn * sizeof(*old));
	return 0;
}

static int
net_control(struct rump_session *s, uint16_t type, const void *body,
            size_t len, void *reply, size_t *reply_len)
{
	struct net_sess *ss = rump_session_ctx(s);
	struct net_service *ns = ss->ns;
	struct rump_net_if_info info;
	struct net_raw *raw;
	char name[RUMP_NAME_MAX];
	struct net_if *nif;
	uint64_t h;
	unsigned i, slot;
	size_t cap = *reply_len;
	int error;

	*reply_len = 0;
	switch (type) {
	case RUMP_NET_MSG_LIST:
		if (len != 0)
			return EINVAL;
		if (cap < ns->nifs * sizeof(info))
			return EOVERFLOW;
		/* Built aside: the reply buffer is only 4-byte aligned. */
		for (i = 0; i < ns->nifs; i++) {
			if_info(&ns->ifs[i], &info);
			memcpy((uint8_t *)reply + i * sizeof(info), &info,
			       sizeof(info));
		}
		*reply_len = ns->nifs * sizeof(info);
		return 0;
	case RUMP_NET_MSG_STATUS:
		if (len != RUMP_NAME_MAX)
			return EINVAL;
		if ((error = name_from(body, name)) != 0)
			return error;
		if ((nif = if_find(ns, name)) == NULL)
			return ENXIO;
		if_info(nif, &info);
		memcpy(reply, &info, sizeof(info));
		*reply_len = sizeof(info);
		return 0;
	case RUMP_NET_MSG_OPEN:
		return ctl_open(ss, body, len, reply, reply_len);
	case RUMP_NET_MSG_CLOSE:
		if (len != sizeof(h))
			return EINVAL;
		memcpy(&h, body, sizeof(h));
		if ((raw = handle_get(ss, h, H_RAW, &slot)) == NULL)
			return EBADF;
		handle_free(ss, slot);
		raw_unlink_and_free(raw);
		return 0;
	case RUMP_NET_MSG_SET_FILTER:
		return ctl_set_filter(ss, body, len);
	default:
		return EOPNOTSUPP;
	}
}

/* ---- ring requests ----------------------------------------------------------- */

static void
op_done(struct inet_op *iop, int64_t result, uint64_t aux)
{
	struct net_op *op = (struct net_op *)iop;
	struct net_sess *ss = op->sess;
	socklen_t n;

	if (iop->kind == INET_OP_ACCEPT) {
		rumpuser_mutex_enter(ss->lock);
		if (result == 0) {
			ss->tab[op->slot].kind = H_SOCK;
			ss->tab[op->slot].obj = iop->accepted;
			result = (int64_t)handle_make(ss, op->slot);
		} else {
			ss->tab[op->slot].kind = H_FREE;
		}
		rumpuser_mutex_exit(ss->lock);
	}
	if (result >= 0 && op->addr_out != NULL) {
		n = iop->addr_len;
		memcpy(op->addr_out, &iop->addr,
		       n < op->addr_room ? n : op->addr_room);
		aux = (aux & INET_AUX_TRUNC ? RUMP_NET_AUX_TRUNC : 0) | n;
	} else if (iop->kind == INET_OP_RECV) {
		aux = aux & INET_AUX_TRUNC ? RUMP_NET_AUX_TRUNC : 0;
	}
	rump_session_complete(ss->s, op->user_data, result, aux);
	rk_pool_put(ss->ns->ops, op);
}

static void
poll_put(struct net_pollreq *pr)
{
	if (__atomic_sub_fetch(&pr->refs, 1, __ATOMIC_ACQ_REL) == 0)
		rumpuser_free(pr, sizeof(*pr) + pr->p.n * sizeof(pr->ents[0]));
}

static void
poll_done(struct inet_poll *p, int64_t result)
{
	struct net_pollreq *pr = p->arg;
	struct net_sess *ss = pr->sess;
	unsigned i;

	for (i = 0; i < p->n; i++)
		pr->out[i].revents = pr->ents[i].revents;
	rumpuser_mutex_enter(ss->lock);
	*pr->prevp = pr->next;
	if (pr->next != NULL)
		pr->next->prevp = pr->prevp;
	pr->prevp = NULL;             /* done: ring_poll arms no timer */
	rumpuser_mutex_exit(ss->lock);
	rump_session_complete(ss->s, pr->user_data, result, 0);
	if (rk_timer_cancel(&pr->timer))
		poll_put(pr);
	poll_put(pr);
}

static void
poll_timeout(struct rk_timer *t, void *arg)
{
	struct net_pollreq *pr = arg;

	(void)t;
	(void)inet_poll_cancel(pr->stack, &pr->p);
	poll_put(pr);
}

static int64_t
ring_poll(struct net_sess *ss, const struct rump_sqe *sqe)
{
	struct net_service *ns = ss->ns;
	struct rump_net_pollfd *out, pf;
	struct net_pollreq *pr;
	unsigned n, i;
	int error;

	if (sqe->len % sizeof(pf) != 0 || sqe->len / sizeof(pf) >
	    RUMP_NET_POLL_MAX || sqe->handle != 0)
		return -EINVAL;
	n = sqe->len / sizeof(pf);
	out = n ? rump_session_buf(ss->s, sqe->buf, sqe->len) : NULL;
	if (n > 0 && out == NULL)
		return -EFAULT;
	error = rumpuser_malloc(sizeof(*pr) + n * sizeof(pr->ents[0]), 0,
	                        (void **)&pr);
	if (error)
		return -error;
	memset(pr, 0, sizeof(*pr) + n * sizeof(pr->ents[0]));
	for (i = 0; i < n; i++) {
		memcpy(&pf, &out[i], sizeof(pf));
		pr->ents[i].sock = handle_get(ss, pf.handle, H_SOCK, NULL);
		pr->ents[i].events = pf.events;
	}
	pr->p.ents = pr->ents;
	pr->p.n = n;
	pr->p.done = poll_done;
	pr->p.arg = pr;
	pr->sess = ss;
	pr->stack = ns->stack;
	pr->user_data = sqe->user_data;
	pr->out = out;
	/* The completion's, and ours until set-up is over: the request may
	 * complete (and drop its reference) inside inet_poll_start. */
	pr->refs = 2;
	rk_timer_init(ns->rt, &pr->timer, poll_timeout, pr);
	rumpuser_mutex_enter(ss->lock);
	pr->next = ss->polls;
	if (pr->next != NULL)
		pr->next->prevp = &pr->next;
	pr->prevp = &ss->polls;
	ss->polls = pr;
	rumpuser_mutex_exit(ss->lock);
	inet_poll_start(ns->stack, &pr->p);
	if (sqe->arg[0] == 0) {
		(void)inet_poll_cancel(ns->stack, &pr->p);
	} else if (sqe->arg[0] != UINT64_MAX) {
		/*
		 * Armed only now that the poll waits: a timer that fired
		 * before (a short timeout, a preempted thread) would cancel
		 * nothing and leave the poll waiting forever.  Under the
		 * session's lock, so that a poll_done either comes after
		 * and cancels the timer, or came before and there is none.
		 */
		rumpuser_mutex_enter(ss->lock);
		if (pr->prevp != NULL) {
			__atomic_add_fetch(&pr->refs, 1, __ATOMIC_ACQ_REL);
			rk_timer_arm(&pr->timer, sqe->arg[0]);
		}
		rumpuser_mutex_exit(ss->lock);
	}
	poll_put(pr);
	return INT64_MIN; /* completes by itself */
}

static int64_t
ring_frame(struct net_sess *ss, const struct rump_sqe *sqe, void *buf)
{
	struct net_raw *raw = handle_get(ss, sqe->handle, H_RAW, NULL);
	struct rumpuser_iov iov = { buf, sqe->len };
	struct rk_nic *nic;
	int error;

	if (raw == NULL)
		return -EBADF;
	nic = raw->nif->nic;
	if (sqe->opcode == RUMP_NET_OP_FRAME_SEND) {
		if (sqe->len < RK_NIC_HDR_LEN ||
		    sqe->len > RK_NIC_HDR_LEN + 4 + nic->mtu)
			return -EMSGSIZE;
		error = nic->ops->output(nic, &iov, 1);
		return error ? -error : (int64_t)sqe->len;
	}
	rumpuser_mutex_enter(raw->nif->raw_lock);
	if (raw->rx_n == RAW_RXQ_MAX) {
		rumpuser_mutex_exit(raw->nif->raw_lock);
		return -EAGAIN;
	}
	raw->rxq[(raw->rx_head + raw->rx_n) % RAW_RXQ_MAX] = (struct raw_rx){
		.user_data = sqe->user_data, .buf = buf, .len = sqe->len,
	};
	raw->rx_n++;
	rumpuser_mutex_exit(raw->nif->raw_lock);
	return INT64_MIN;
}

static unsigned
inet_flags(uint16_t f)
{
	return (f & RUMP_NET_F_NONBLOCK ? INET_F_NONBLOCK : 0) |
	    (f & RUMP_NET_F_PEEK ? INET_F_PEEK : 0) |
	    (f & RUMP_NET_F_WAITALL ? INET_F_WAITALL : 0) |
	    (f & RUMP_NET_F_MORE ? INET_F_MORE : 0);
}

/* Starts an operation that may wait; INT64_MIN when it is under way. */
static int64_t
ring_async(struct net_sess *ss, const struct rump_sqe *sqe,
           struct inet_sock *sock, void *buf)
{
	struct net_op *op;
	uint8_t *a;
	int error;

	op = rk_pool_get(ss->ns->ops);
	if (op == NULL)
		return -ENOBUFS;
	memset(op, 0, sizeof(*op));
	op->sess = ss;
	op->user_data = sqe->user_data;
	op->iop.flags = inet_flags(sqe->flags);
	op->iop.buf = buf;
	op->iop.len = sqe->len;
	op->iop.done = op_done;
	switch (sqe->opcode) {
	case RUMP_NET_OP_CONNECT:
		op->iop.kind = INET_OP_CONNECT;
		memcpy(&op->iop.addr, buf, sqe->len);
		op->iop.addr_len = sqe->len;
		op->iop.buf = NULL;
		op->iop.len = 0;
		break;
	case RUMP_NET_OP_ACCEPT:
		op->iop.kind = INET_OP_ACCEPT;
		op->addr_out = buf;
		op->addr_room = sqe->len;
		op->iop.buf = NULL;
		op->iop.len = 0;
		if ((error = handle_alloc(ss, H_RESERVED, NULL,
		                          &op->slot)) != 0) {
			rk_pool_put(ss->ns->ops, op);
			return -error;
		}
		break;
	case RUMP_NET_OP_SEND:
		op->iop.kind = INET_OP_SEND;
		if (sqe->arg[1] > 0) {
			a = rump_session_buf(ss->s, sqe->arg[0], sqe->arg[1]);
			if (a == NULL) {
				rk_pool_put(ss->ns->ops, op);
				return -EFAULT;
			}
			memcpy(&op->iop.addr, a, sqe->arg[1]);
			op->iop.addr_len = (socklen_t)sqe->arg[1];
		}
		break;
	case RUMP_NET_OP_RECV:
		op->iop.kind = INET_OP_RECV;
		if (sqe->arg[1] > 0) {
			a = rump_session_buf(ss->s, sqe->arg[0], sqe->arg[1]);
			if (a == NULL) {
				rk_pool_put(ss->ns->ops, op);
				return -EFAULT;
			}
			op->addr_out = a;
			op->addr_room = (uint32_t)sqe->arg[1];
		}
		break;
	}
	inet_op_start(sock, &op->iop);
	return INT64_MIN;
}

static void
net_submit(struct rump_session *s, const struct rump_sqe *sqe)
{
	struct net_sess *ss = rump_session_ctx(s);
	struct net_service *ns = ss->ns;
	struct inet_sock *sock = NULL;
	uint8_t opt[NET_OPT_MAX];
	struct sockaddr_storage sa;
	socklen_t sl;
	unsigned slot;
	void *buf = NULL;
	int64_t result;
	int e;

	if ((result = net_check_sqe(sqe)) != 0)
		goto out;
	if (sqe->len > 0) {
		buf = rump_session_buf(s, sqe->buf, sqe->len);
		if (buf == NULL) {
			result = -EFAULT;
			goto out;
		}
	}
	if (sqe->opcode == RUMP_NET_OP_FRAME_SEND ||
	    sqe->opcode == RUMP_NET_OP_FRAME_RECV) {
		result = ring_frame(ss, sqe, buf);
		goto out;
	}
	if (ns->stack == NULL) {
		result = -ENETDOWN;
		goto out;
	}
	if (sqe->opcode == RUMP_NET_OP_POLL) {
		result = ring_poll(ss, sqe);
		goto out;
	}
	if (sqe->opcode == RUMP_NET_OP_SOCKET) {
		if (sqe->arg[0] > INT32_MAX || sqe->arg[1] > INT32_MAX) {
			result = -EINVAL;
			goto out;
		}
		if ((e = handle_alloc(ss, H_RESERVED, NULL, &slot)) != 0) {
			result = -e;
			goto out;
		}
		e = inet_socket(ns->stack, (int)sqe->arg[0], (int)sqe->arg[1],
		                &sock);
		if (e) {
			handle_free(ss, slot);
			result = -e;
			goto out;
		}
		rumpuser_mutex_enter(ss->lock);
		ss->tab[slot].kind = H_SOCK;
		ss->tab[slot].obj = sock;
		result = (int64_t)handle_make(ss, slot);
		rumpuser_mutex_exit(ss->lock);
		goto out;
	}
	sock = handle_get(ss, sqe->handle, H_SOCK, &slot);
	if (sock == NULL) {
		result = -EBADF;
		goto out;
	}
	switch (sqe->opcode) {
	case RUMP_NET_OP_CLOSE:
		handle_free(ss, slot);
		inet_close(sock);
		result = 0;
		break;
	case RUMP_NET_OP_BIND:
		memcpy(&sa, buf, sqe->len);
		result = -inet_bind(sock, (struct sockaddr *)&sa,
		                    (socklen_t)sqe->len);
		break;
	case RUMP_NET_OP_LISTEN:
		result = -inet_listen(sock, sqe->arg[0] > 4096 ? 4096 :
		                      (int)sqe->arg[0]);
		break;
	case RUMP_NET_OP_SHUTDOWN:
		result = sqe->arg[0] > 2 ? -EINVAL :
		    -inet_shutdown(sock, (int)sqe->arg[0]);
		break;
	case RUMP_NET_OP_SETSOCKOPT:
		memcpy(opt, buf, sqe->len);
		result = -inet_setsockopt(sock, (int)sqe->arg[0],
		                          (int)sqe->arg[1], opt,
		                          (socklen_t)sqe->len);
		break;
	case RUMP_NET_OP_GETSOCKOPT:
		sl = (socklen_t)sqe->len;
		memset(opt, 0, sizeof(opt));
		e = inet_getsockopt(sock, (int)sqe->arg[0], (int)sqe->arg[1],
		                    opt, &sl);
		if (e == 0 && sl > 0)
			memcpy(buf, opt, sl);
		result = e ? -e : (int64_t)sl;
		break;
	case RUMP_NET_OP_GETNAME:
		sl = sizeof(sa);
		e = inet_sockname(sock, sqe->arg[0] != 0,
		                  (struct sockaddr *)&sa, &sl);
		if (e == 0 && sqe->len > 0)
			memcpy(buf, &sa, sl < sqe->len ? sl : sqe->len);
		result = e ? -e : (int64_t)sl;
		break;
	default:
		result = ring_async(ss, sqe, sock, buf);
		break;
	}
out:
	if (result != INT64_MIN)
		rump_session_complete(s, sqe->user_data, result, 0);
}

/* ---- sessions ------------------------------------------------------------------ */

static int
net_session_open(struct rump_session *s, void **ctxp)
{
	struct net_service *ns = rump_session_service_ctx(s);
	struct net_sess *ss;
	int error;

	if ((error = rumpuser_malloc(sizeof(*ss), 0, (void **)&ss)) != 0)
		return error;
	memset(ss, 0, sizeof(*ss));
	ss->ns = ns;
	ss->s = s;
	if ((error = rumpuser_mutex_init(&ss->lock)) != 0) {
		rumpuser_free(ss, sizeof(*ss));
		return error;
	}
	*ctxp = ss;
	return 0;
}

/* The client is gone: its sockets are closed (their pending operations
 * complete into the void), its polls cancelled, its interfaces released. */
static void
net_session_ended(struct rump_session *s, void *ctx)
{
	struct net_sess *ss = ctx;
	struct net_pollreq *pr;
	uint8_t kind;
	void *obj;
	unsigned i;

	(void)s;
	for (;;) {
		obj = NULL;
		kind = H_FREE;
		rumpuser_mutex_enter(ss->lock);
		for (i = 0; i < ss->cap && obj == NULL; i++) {
			if (ss->tab[i].kind == H_SOCK ||
			    ss->tab[i].kind == H_RAW) {
				obj = ss->tab[i].obj;
				kind = ss->tab[i].kind;
				ss->tab[i].kind = H_FREE;
				ss->tab[i].obj = NULL;
			}
		}
		pr = obj == NULL ? ss->polls : NULL;
		rumpuser_mutex_exit(ss->lock);
		if (kind == H_SOCK)
			inet_close(obj);
		else if (kind == H_RAW)
			raw_unlink_and_free(obj);
		else if (pr != NULL)
			(void)inet_poll_cancel(ss->ns->stack, &pr->p);
		else
			break;
	}
}

static void
net_session_close(struct rump_session *s, void *ctx)
{
	struct net_sess *ss = ctx;

	(void)s;
	rumpuser_free(ss->tab, ss->cap * sizeof(*ss->tab));
	rumpuser_mutex_destroy(ss->lock);
	rumpuser_free(ss, sizeof(*ss));
}

int
net_service_create(struct rk_runtime *rt, struct inet *stack,
                   struct net_service **nsp)
{
	struct net_service *ns;
	int error;

	if ((error = rumpuser_malloc(sizeof(*ns), 0, (void **)&ns)) != 0)
		return error;
	memset(ns, 0, sizeof(*ns));
	ns->rt = rt;
	ns->stack = stack;
	error = rk_pool_create(rt, "net-ops", sizeof(struct net_op), 0, 64,
	                       0, &ns->ops);
	if (error) {
		rumpuser_free(ns, sizeof(*ns));
		return error;
	}
	ns->desc = (struct rump_service){
		.version = RUMP_SERVICE_VERSION,
		.kind = RUMP_SERVICE_NET,
		.name = "net",
		.ctx = ns,
		.session_open = net_session_open,
		.session_close = net_session_close,
		.control = net_control,
		.submit = net_submit,
		.session_ended = net_session_ended,
	};
	*nsp = ns;
	return 0;
}

const struct rump_service *
net_service_desc(struct net_service *ns)
{
	return &ns->desc;
}

void
net_service_destroy(struct net_service *ns)
{
	unsigned i;

	if (ns == NULL)
		return;
	for (i = 0; i < ns->nifs; i++) {
		ns->ifs[i].nic->ops->stop(ns->ifs[i].nic);
		ns->ifs[i].nic->input = NULL;
		ns->ifs[i].nic->outbound = NULL;
		rumpuser_mutex_destroy(ns->ifs[i].raw_lock);
	}
	rk_pool_destroy(ns->ops);
	rumpuser_free(ns, sizeof(*ns));
}
