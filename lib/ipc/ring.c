/*
 * Single-producer single-consumer rings in memory shared with a peer that
 * may be hostile.  Each side trusts only its own copy of the index it owns;
 * the peer's index is loaded once, checked, and then used.  Entries are
 * copied in and out whole, so a peer rewriting an entry under us can give
 * us garbage but never a torn read we act on twice.
 *
 * Ordering: the producer fills entries, then stores tail with release; the
 * consumer loads tail with acquire, then reads entries, then stores head
 * with release; the producer loads head with acquire before reusing slots.
 *
 * Sleeping: the consumer sets WAITING, full fence, re-reads tail; the
 * producer stores tail, full fence, reads flags.  With both fences at least
 * one side sees the other's store, so either the consumer finds the new
 * entry and does not sleep, or the producer finds WAITING and rings.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "rump/ipc.h"

static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t) &&
              _Alignof(_Atomic uint32_t) == _Alignof(uint32_t),
              "shared indices are accessed as atomics in place");

static inline _Atomic uint32_t *at(uint32_t *p)
{
	return (_Atomic uint32_t *)p;
}

static void ring_init(struct rump_ring *r, struct rump_ring_idx *idx,
                      void *entries, uint32_t nentries, uint32_t entry_size)
{
	r->idx = idx;
	r->entries = entries;
	r->mask = nentries - 1;
	r->entry_size = entry_size;
}

void rump_ring_init_producer(struct rump_ring *r, struct rump_ring_idx *idx,
                             void *entries, uint32_t nentries,
                             uint32_t entry_size)
{
	ring_init(r, idx, entries, nentries, entry_size);
	r->own = atomic_load_explicit(at(&idx->tail), memory_order_relaxed);
	r->peer_cache = atomic_load_explicit(at(&idx->head),
	                                     memory_order_acquire);
}

void rump_ring_init_consumer(struct rump_ring *r, struct rump_ring_idx *idx,
                             void *entries, uint32_t nentries,
                             uint32_t entry_size)
{
	ring_init(r, idx, entries, nentries, entry_size);
	r->own = atomic_load_explicit(at(&idx->head), memory_order_relaxed);
	r->peer_cache = r->own;
}

static inline unsigned char *slot(const struct rump_ring *r, uint32_t i)
{
	return r->entries + (size_t)(i & r->mask) * r->entry_size;
}

int64_t rump_ring_space(struct rump_ring *r)
{
	uint32_t head = atomic_load_explicit(at(&r->idx->head),
	                                     memory_order_acquire);
	uint32_t used = r->own - head;

	if (used > r->mask + 1)
		return -EPROTO;
	r->peer_cache = head;
	return (int64_t)(r->mask + 1 - used);
}

int rump_ring_push(struct rump_ring *r, const void *entry)
{
	if (r->own - r->peer_cache > r->mask) {
		int64_t space = rump_ring_space(r);

		if (space < 0)
			return EPROTO;
		if (space == 0)
			return EAGAIN;
	}
	memcpy(slot(r, r->own), entry, r->entry_size);
	r->own++;
	return 0;
}

bool rump_ring_publish(struct rump_ring *r)
{
	atomic_store_explicit(at(&r->idx->tail), r->own, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
	return atomic_load_explicit(at(&r->idx->flags), memory_order_relaxed) &
	       RUMP_RINGF_WAITING;
}

int64_t rump_ring_ready(struct rump_ring *r)
{
	uint32_t tail = atomic_load_explicit(at(&r->idx->tail),
	                                     memory_order_acquire);
	uint32_t n = tail - r->own;

	if (n > r->mask + 1)
		return -EPROTO;
	r->peer_cache = tail;
	return n;
}

int rump_ring_pop(struct rump_ring *r, void *entry)
{
	if (r->peer_cache == r->own) {
		int64_t n = rump_ring_ready(r);

		if (n < 0)
			return EPROTO;
		if (n == 0)
			return EAGAIN;
	}
	memcpy(entry, slot(r, r->own), r->entry_size);
	r->own++;
	return 0;
}

void rump_ring_release(struct rump_ring *r)
{
	atomic_store_explicit(at(&r->idx->head), r->own, memory_order_release);
}

bool rump_ring_prepare_wait(struct rump_ring *r)
{
	uint32_t tail;

	atomic_store_explicit(at(&r->idx->flags), RUMP_RINGF_WAITING,
	                      memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	tail = atomic_load_explicit(at(&r->idx->tail), memory_order_acquire);
	if (tail != r->own) {
		/* New entries, or a bogus tail the next ready() reports. */
		rump_ring_end_wait(r);
		return true;
	}
	return false;
}

void rump_ring_end_wait(struct rump_ring *r)
{
	atomic_store_explicit(at(&r->idx->flags), 0, memory_order_relaxed);
}
