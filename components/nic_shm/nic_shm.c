/*
 * nic_shm: a shared-memory Ethernet bus in a file.  Any number of rump
 * processes (up to SHM_MEMBERS) that can open the file join it, with no
 * privilege: each is a station with a MAC address of its own, and every
 * frame one sends reaches all the others (a hub; stations filter by MAC
 * in their stack).
 *
 *   create(rt, "eth0", "PATH[,mtu=N][,slots=N][,mac=xx:..]")
 *
 * Layout: a header, a member table, then one ring of slots shared by all.
 * Nothing on the bus is a lock:
 *  - a sender claims the next slot by compare-and-swap on the ring's tail,
 *    but only when every live member has read past that slot's previous
 *    frame: a slow reader holds senders back (no frame is lost) rather
 *    than being overrun;
 *  - the slot becomes visible when its sequence word is written (release),
 *    readers keep their own read position in the member table;
 *  - a member holds a lock on its entry in the member table (a kernel
 *    file lock, dropped when its process dies, whatever its user or PID
 *    namespace): one whose lock is gone is evicted by whoever finds the
 *    ring full, so it can hold nobody back; a frame whose sender died
 *    between claiming and publishing is skipped after SHM_STALL_NS.
 * Sleeping is on futex words in the file: readers on the bus's doorbell,
 * senders waiting for room on its space word.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rump/nic.h"
#include "rump/rumpkern.h"

#define SHM_MAGIC 0x72756d7073686d31ull  /* "rumpshm1" */
#define SHM_INIT_BUSY 1ull
/* 2: members are told alive by their entry's lock, not a process id */
#define SHM_VERSION 2
#define SHM_MEMBERS 16
#define SHM_SLOTS_DEFAULT 1024u
#define SHM_MTU_DEFAULT 9000u
#define SHM_STALL_NS 50000000ull         /* unpublished slot: skip after */
#define SHM_FULL_WAIT_NS 1000000000ull   /* a full ring: drop after */

struct shm_member {
	uint32_t owner;           /* 0: free; else the member's random token */
	uint32_t pad;
	uint64_t rpos;            /* next slot this member reads */
	uint8_t mac[6];
	uint8_t pad2[42];
};

struct shm_hdr {
	uint64_t magic;           /* 0, SHM_INIT_BUSY, SHM_MAGIC */
	uint32_t version;
	uint32_t nslots;          /* power of 2 */
	uint32_t slot_size;       /* bytes per slot, header included */
	uint32_t mtu;
	uint8_t pad0[40];
	uint64_t tail;            /* next slot to claim */
	uint8_t pad1[56];
	uint32_t doorbell;        /* bumped after each publish */
	uint32_t sleepers;        /* readers in futex_wait on doorbell */
	uint8_t pad2[56];
	uint32_t space;           /* bumped when a reader frees slots */
	uint32_t space_waiters;
	uint8_t pad3[56];
	struct shm_member members[SHM_MEMBERS];
};

struct shm_slot {
	uint64_t seq;             /* position + 1 once published */
	uint32_t len;
	uint32_t src;             /* member index of the sender */
	uint8_t data[];
};

struct nic_shm {
	struct rk_nic nic;        /* first: the device's softc */
	struct rk_runtime *rt;
	int fd;
	struct shm_hdr *hdr;
	size_t map_size;
	unsigned me;              /* our member index */
	uint32_t token;           /* in members[me].owner */
	bool running, stopping;
	struct rumpuser_thread *rx_thread;
	struct rumpuser_mtx *tx_lock; /* our senders, one claim at a time */
};

/* Where member i's lock is: the first byte of its entry. */
static uint64_t
member_lock(unsigned i)
{
	return offsetof(struct shm_hdr, members) +
	    (uint64_t)i * sizeof(struct shm_member);
}

/* A member whose lock nobody holds is gone; when in doubt, alive. */
static bool
member_alive(struct nic_shm *ns, unsigned i)
{
	int held = 1;

	(void)rumpuser_file_locked(ns->fd, member_lock(i), &held);
	return held != 0;
}

static size_t
shm_total(uint32_t nslots, uint32_t slot_size)
{
	return sizeof(struct shm_hdr) + (size_t)nslots * slot_size;
}

static struct shm_slot *
slot_at(struct nic_shm *ns, uint64_t pos)
{
	struct shm_hdr *h = ns->hdr;

	return (struct shm_slot *)((uint8_t *)h + sizeof(*h) +
	    (size_t)(pos & (h->nslots - 1)) * h->slot_size);
}

static uint64_t
now_ns(void)
{
	uint64_t t = 0;

	(void)rumpuser_clock_gettime(RUMPUSER_CLOCK_MONO, &t);
	return t;
}

/*
 * The read position of the slowest live member other than us; evicts dead
 * ones when asked to.  Our own reader does not hold our senders back: a
 * sender may hold the stack's lock that our reader waits for, and would
 * wait for it forever.  Should our reader fall a whole ring behind, it
 * skips ahead and counts the loss.
 */
static uint64_t
min_rpos(struct nic_shm *ns, uint64_t tail, bool evict)
{
	struct shm_hdr *h = ns->hdr;
	uint64_t min = tail, r;
	uint32_t owner;
	unsigned i;

	for (i = 0; i < SHM_MEMBERS; i++) {
		owner = __atomic_load_n(&h->members[i].owner,
		                        __ATOMIC_ACQUIRE);
		if (owner == 0 || i == ns->me)
			continue;
		/* Only the owner seen dead is cleared: a member that took
		 * the entry since has another token. */
		if (evict && !member_alive(ns, i)) {
			(void)__atomic_compare_exchange_n(&h->members[i].owner,
			    &owner, 0, false, __ATOMIC_ACQ_REL,
			    __ATOMIC_RELAXED);
			continue;
		}
		r = __atomic_load_n(&h->members[i].rpos, __ATOMIC_ACQUIRE);
		if ((int64_t)(r - min) < 0)
			min = r;
	}
	return min;
}

static int
shm_output(struct rk_nic *nic, const struct rumpuser_iov *iov, unsigned n)
{
	struct nic_shm *ns = (struct nic_shm *)nic;
	struct shm_hdr *h = ns->hdr;
	struct shm_slot *sl;
	uint64_t tail, deadline = 0;
	uint32_t space;
	size_t len = 0, off = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		len += iov[i].len;
	if (len < RK_NIC_HDR_LEN || len > h->slot_size - sizeof(*sl)) {
		rk_nic_count(&nic->stats.tx_errors, 1);
		return EMSGSIZE;
	}
	if (nic->outbound != NULL)
		nic->outbound(nic->outbound_arg, iov, n, len);
	rumpuser_mutex_enter(ns->tx_lock);
	for (;;) {
		tail = __atomic_load_n(&h->tail, __ATOMIC_ACQUIRE);
		if (tail - min_rpos(ns, tail, deadline != 0) < h->nslots) {
			if (__atomic_compare_exchange_n(&h->tail, &tail,
			    tail + 1, false, __ATOMIC_ACQ_REL,
			    __ATOMIC_ACQUIRE))
				break;
			continue;
		}
		/* Full: wait for a reader, evicting dead members. */
		if (deadline == 0)
			deadline = now_ns() + SHM_FULL_WAIT_NS;
		else if (now_ns() > deadline) {
			rumpuser_mutex_exit(ns->tx_lock);
			rk_nic_count(&nic->stats.tx_dropped, 1);
			return EAGAIN;
		}
		space = __atomic_load_n(&h->space, __ATOMIC_ACQUIRE);
		__atomic_fetch_add(&h->space_waiters, 1, __ATOMIC_ACQ_REL);
		tail = __atomic_load_n(&h->tail, __ATOMIC_ACQUIRE);
		if (tail - min_rpos(ns, tail, false) >= h->nslots)
			(void)rumpuser_futex_wait(&h->space, space, 10000000u);
		__atomic_fetch_sub(&h->space_waiters, 1, __ATOMIC_ACQ_REL);
	}
	rumpuser_mutex_exit(ns->tx_lock);
	sl = slot_at(ns, tail);
	for (i = 0; i < n; i++) {
		memcpy(sl->data + off, iov[i].base, iov[i].len);
		off += iov[i].len;
	}
	sl->len = (uint32_t)len;
	sl->src = ns->me;
	__atomic_store_n(&sl->seq, tail + 1, __ATOMIC_RELEASE);
	__atomic_fetch_add(&h->doorbell, 1, __ATOMIC_ACQ_REL);
	if (__atomic_load_n(&h->sleepers, __ATOMIC_ACQUIRE) > 0)
		(void)rumpuser_futex_wake(&h->doorbell, INT32_MAX);
	rk_nic_count(&nic->stats.tx_packets, 1);
	rk_nic_count(&nic->stats.tx_bytes, len);
	return 0;
}

static void *
shm_rx_main(void *arg)
{
	struct nic_shm *ns = arg;
	struct rk_nic *nic = &ns->nic;
	struct shm_hdr *h = ns->hdr;
	struct shm_member *me = &h->members[ns->me];
	size_t cap = h->slot_size - sizeof(struct shm_slot);
	uint8_t *frame = NULL;
	uint64_t rpos, stall_since = 0;
	struct shm_slot *sl;
	uint32_t bell, len, src;

	if (rumpuser_malloc(cap, 64, (void **)&frame) != 0)
		return NULL;
	rpos = __atomic_load_n(&me->rpos, __ATOMIC_ACQUIRE);
	while (!__atomic_load_n(&ns->stopping, __ATOMIC_ACQUIRE)) {
		uint64_t seq, tail;

		sl = slot_at(ns, rpos);
		seq = __atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE);
		if (seq > rpos + 1) {
			/* Overrun (see min_rpos): skip to the oldest slot
			 * still whole. */
			tail = __atomic_load_n(&h->tail, __ATOMIC_ACQUIRE);
			if (tail - h->nslots > rpos) {
				rk_nic_count(&nic->stats.rx_dropped,
				             tail - h->nslots - rpos);
				rpos = tail - h->nslots;
			} else {
				rpos++;
			}
			__atomic_store_n(&me->rpos, rpos, __ATOMIC_RELEASE);
			continue;
		}
		if (seq == rpos + 1) {
			/* Copied out before it is looked at: the slot is
			 * shared with members we do not trust. */
			len = __atomic_load_n(&sl->len, __ATOMIC_RELAXED);
			src = __atomic_load_n(&sl->src, __ATOMIC_RELAXED);
			if (len > cap)
				len = 0;
			memcpy(frame, sl->data, len);
			rpos++;
			__atomic_store_n(&me->rpos, rpos, __ATOMIC_RELEASE);
			__atomic_fetch_add(&h->space, 1, __ATOMIC_ACQ_REL);
			if (__atomic_load_n(&h->space_waiters,
			                    __ATOMIC_ACQUIRE) > 0)
				(void)rumpuser_futex_wake(&h->space,
				                          INT32_MAX);
			stall_since = 0;
			if (src == ns->me)
				continue;
			if (len < RK_NIC_HDR_LEN) {
				rk_nic_count(&nic->stats.rx_errors, 1);
				continue;
			}
			rk_nic_count(&nic->stats.rx_packets, 1);
			rk_nic_count(&nic->stats.rx_bytes, len);
			if (nic->input != NULL)
				nic->input(nic->input_arg, frame, len);
			continue;
		}
		if (__atomic_load_n(&h->tail, __ATOMIC_ACQUIRE) > rpos) {
			/* Claimed, not yet published: a sender is copying,
			 * or died doing so. */
			if (stall_since == 0)
				stall_since = now_ns();
			else if (now_ns() - stall_since > SHM_STALL_NS) {
				rk_nic_count(&nic->stats.rx_errors, 1);
				rpos++;
				__atomic_store_n(&me->rpos, rpos,
				                 __ATOMIC_RELEASE);
				stall_since = 0;
			}
			continue;
		}
		bell = __atomic_load_n(&h->doorbell, __ATOMIC_ACQUIRE);
		__atomic_fetch_add(&h->sleepers, 1, __ATOMIC_ACQ_REL);
		if (__atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE) != rpos + 1)
			(void)rumpuser_futex_wait(&h->doorbell, bell,
			                          100000000u);
		__atomic_fetch_sub(&h->sleepers, 1, __ATOMIC_ACQ_REL);
	}
	rumpuser_free(frame, cap);
	return NULL;
}

static int
shm_start(struct rk_nic *nic)
{
	struct nic_shm *ns = (struct nic_shm *)nic;
	int error;

	if (ns->running)
		return EBUSY;
	ns->stopping = false;
	error = rumpuser_thread_create(shm_rx_main, ns, "rx-shm",
	                               &ns->rx_thread);
	if (error == 0)
		ns->running = true;
	return error;
}

static void
shm_stop(struct rk_nic *nic)
{
	struct nic_shm *ns = (struct nic_shm *)nic;

	if (!ns->running)
		return;
	__atomic_store_n(&ns->stopping, true, __ATOMIC_RELEASE);
	__atomic_fetch_add(&ns->hdr->doorbell, 1, __ATOMIC_ACQ_REL);
	(void)rumpuser_futex_wake(&ns->hdr->doorbell, INT32_MAX);
	(void)rumpuser_thread_join(ns->rx_thread, NULL);
	ns->running = false;
}

static const struct rk_nic_ops shm_ops = {
	.output = shm_output,
	.start = shm_start,
	.stop = shm_stop,
};

static void
shm_leave(struct nic_shm *ns)
{
	uint32_t token = ns->token;

	(void)__atomic_compare_exchange_n(&ns->hdr->members[ns->me].owner,
	                                  &token, 0, false, __ATOMIC_ACQ_REL,
	                                  __ATOMIC_RELAXED);
	(void)rumpuser_file_unlock(ns->fd, member_lock(ns->me));
	/* Senders held back by us may go on. */
	__atomic_fetch_add(&ns->hdr->space, 1, __ATOMIC_ACQ_REL);
	(void)rumpuser_futex_wake(&ns->hdr->space, INT32_MAX);
}

static void
shm_destroy(struct rk_device *dev)
{
	struct nic_shm *ns = rk_device_softc(dev);

	shm_stop(&ns->nic);
	shm_leave(ns);
	(void)rumpuser_shm_unmap(ns->hdr, ns->map_size);
	(void)rumpuser_close(ns->fd);
	rumpuser_mutex_destroy(ns->tx_lock);
	rumpuser_free(ns, sizeof(*ns));
}

static const struct rk_devops shm_devops = {
	.version = RK_DEVOPS_VERSION,
	.destroy = shm_destroy,
};

struct shm_spec {
	char path[256];
	unsigned mtu, slots;
	bool have_mac;
	uint8_t mac[6];
};

static int
parse_spec(const char *args, struct shm_spec *sp)
{
	char buf[512], *tok, *save = NULL, *end;
	unsigned long v;
	unsigned m[6];
	bool first = true;
	int n, i;

	memset(sp, 0, sizeof(*sp));
	sp->mtu = SHM_MTU_DEFAULT;
	sp->slots = SHM_SLOTS_DEFAULT;
	if (args == NULL || strlen(args) >= sizeof(buf))
		return EINVAL;
	strcpy(buf, args);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save), first = false) {
		if (first) {
			if (strlen(tok) >= sizeof(sp->path))
				return ENAMETOOLONG;
			strcpy(sp->path, tok);
		} else if (strncmp(tok, "mtu=", 4) == 0) {
			errno = 0;
			v = strtoul(tok + 4, &end, 10);
			if (errno || *end || v < 576 || v > RK_NIC_MTU_MAX)
				return EINVAL;
			sp->mtu = (unsigned)v;
		} else if (strncmp(tok, "slots=", 6) == 0) {
			errno = 0;
			v = strtoul(tok + 6, &end, 10);
			if (errno || *end || v < 16 || v > 65536 ||
			    (v & (v - 1)))
				return EINVAL;
			sp->slots = (unsigned)v;
		} else if (strncmp(tok, "mac=", 4) == 0) {
			n = 0;
			if (sscanf(tok + 4, "%2x:%2x:%2x:%2x:%2x:%2x%n", &m[0],
			           &m[1], &m[2], &m[3], &m[4], &m[5], &n) != 6 ||
			    tok[4 + n] != '\0' || (m[0] & 1))
				return EINVAL;
			for (i = 0; i < 6; i++)
				sp->mac[i] = (uint8_t)m[i];
			sp->have_mac = true;
		} else {
			return EINVAL;
		}
	}
	return sp->path[0] ? 0 : EINVAL;
}

/* Maps the bus, initialising it if we are first; checks its geometry. */
static int
shm_map(struct nic_shm *ns, const struct shm_spec *sp)
{
	uint32_t slot_size = (uint32_t)((sizeof(struct shm_slot) + sp->mtu +
	                                 RK_NIC_HDR_LEN + 4 + 63) & ~63u);
	size_t total = shm_total(sp->slots, slot_size);
	struct rumpuser_fileinfo fi;
	struct shm_hdr *h;
	uint64_t magic = 0, deadline;
	int error;

	if ((error = rumpuser_getfileinfo(ns->fd, &fi)) != 0)
		return error;
	if (fi.type != RUMPUSER_FT_REG)
		return EINVAL;
	if (fi.size < total && (error = rumpuser_file_resize(ns->fd,
	                                                     total)) != 0)
		return error;
	if ((error = rumpuser_shm_map(ns->fd, total, 1, (void **)&h)) != 0)
		return error;
	ns->hdr = h;
	ns->map_size = total;
	if (__atomic_compare_exchange_n(&h->magic, &magic, SHM_INIT_BUSY,
	                                false, __ATOMIC_ACQ_REL,
	                                __ATOMIC_ACQUIRE)) {
		h->version = SHM_VERSION;
		h->nslots = sp->slots;
		h->slot_size = slot_size;
		h->mtu = sp->mtu;
		__atomic_store_n(&h->magic, SHM_MAGIC, __ATOMIC_RELEASE);
		return 0;
	}
	deadline = now_ns() + 2000000000ull;
	while (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) == SHM_INIT_BUSY) {
		if (now_ns() > deadline)
			return EBUSY;
		(void)rumpuser_clock_sleep(1000000);
	}
	if (h->magic != SHM_MAGIC || h->version != SHM_VERSION)
		return EPROTOTYPE;
	if (h->nslots != sp->slots || h->slot_size != slot_size ||
	    h->mtu != sp->mtu)
		return EDOM;
	return 0;
}

static int
nic_shm_create(struct rk_runtime *rt, const char *instance, const char *args)
{
	struct rk_device_args da = { 0 };
	struct nic_shm *ns;
	struct shm_spec sp;
	unsigned i;
	int error;

	if ((error = parse_spec(args, &sp)) != 0) {
		rk_err(rt, "%s: bad shm arguments '%s' (want PATH[,mtu=N]"
		       "[,slots=POWER_OF_2][,mac=..])", instance,
		       args ? args : "");
		return error;
	}
	if ((error = rumpuser_malloc(sizeof(*ns), 0, (void **)&ns)) != 0)
		return error;
	memset(ns, 0, sizeof(*ns));
	ns->rt = rt;
	do
		error = rumpuser_getrandom(&ns->token, sizeof(ns->token));
	while (error == 0 && ns->token == 0);
	if (error || (error = rumpuser_mutex_init(&ns->tx_lock)) != 0)
		goto fail_free;
	error = rumpuser_open(sp.path, RUMPUSER_OPEN_RDWR | RUMPUSER_OPEN_CREATE,
	                      &ns->fd);
	if (error) {
		rk_err(rt, "%s: cannot open bus %s: %s", instance, sp.path,
		       strerror(error));
		goto fail_mutex;
	}
	if ((error = shm_map(ns, &sp)) != 0) {
		rk_err(rt, "%s: bus %s: %s", instance, sp.path,
		       error == EDOM ? "it has another mtu or slot count" :
		       error == EBUSY ? "a member died setting it up; remove "
		       "the file" : strerror(error));
		goto fail_close;
	}
	/* Join: the entry whose lock we get is free, or its member died;
	 * the lock makes it ours alone. */
	for (i = 0; i < SHM_MEMBERS; i++) {
		error = rumpuser_file_trylock(ns->fd, member_lock(i));
		if (error == EAGAIN)
			continue;
		if (error) {
			rk_err(rt, "%s: bus %s: cannot lock a member entry: "
			       "%s", instance, sp.path, strerror(error));
			goto fail_unmap;
		}
		/* Start reading at the tail before becoming visible, so
		 * senders never wait on an old position of ours. */
		__atomic_store_n(&ns->hdr->members[i].rpos,
		                 __atomic_load_n(&ns->hdr->tail,
		                                 __ATOMIC_ACQUIRE),
		                 __ATOMIC_RELEASE);
		__atomic_store_n(&ns->hdr->members[i].owner, ns->token,
		                 __ATOMIC_RELEASE);
		break;
	}
	if (i == SHM_MEMBERS) {
		rk_err(rt, "%s: bus %s is full (%d members)", instance,
		       sp.path, SHM_MEMBERS);
		error = EUSERS;
		goto fail_unmap;
	}
	ns->me = i;
	__atomic_store_n(&ns->hdr->members[i].rpos,
	                 __atomic_load_n(&ns->hdr->tail, __ATOMIC_ACQUIRE),
	                 __ATOMIC_RELEASE);

	ns->nic.ops = &shm_ops;
	snprintf(ns->nic.kind, sizeof(ns->nic.kind), "shm");
	snprintf(ns->nic.backing, sizeof(ns->nic.backing), "%s", sp.path);
	ns->nic.mtu = sp.mtu;
	if (sp.have_mac)
		memcpy(ns->nic.mac, sp.mac, 6);
	else if ((error = rk_nic_random_mac(ns->nic.mac)) != 0)
		goto fail_leave;
	memcpy(ns->hdr->members[i].mac, ns->nic.mac, 6);

	da.name = instance;
	da.class = RK_NIC_CLASS;
	da.ops = &shm_devops;
	da.softc = ns;
	if ((error = rk_device_add(rt, &da, &ns->nic.dev)) != 0)
		goto fail_leave;
	rk_info(rt, "%s: shm bus %s, member %u, mtu %u, %u slots", instance,
	        sp.path, i, sp.mtu, sp.slots);
	return 0;
fail_leave:
	shm_leave(ns);
fail_unmap:
	(void)rumpuser_shm_unmap(ns->hdr, ns->map_size);
fail_close:
	(void)rumpuser_close(ns->fd);
fail_mutex:
	rumpuser_mutex_destroy(ns->tx_lock);
fail_free:
	rumpuser_free(ns, sizeof(*ns));
	return error;
}

static const struct rk_component nic_shm_component = {
	.version = RK_COMPONENT_VERSION,
	.name = "nic_shm",
	.create = nic_shm_create,
};
RK_COMPONENT(nic_shm_component);
