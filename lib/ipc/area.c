/*
 * The shared area: ring indices, submission entries, completion entries,
 * then the buffer area, each placed by a formula both sides compute from
 * the RING_SETUP numbers alone (nothing about the layout is ever read from
 * the shared memory itself).
 */
#include <errno.h>

#include "rump/ipc.h"

#define AREA_PAGE 4096u
#define AREA_ENTRY_ALIGN 64u

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static bool entries_ok(uint32_t n)
{
	return n >= 2 && n <= RUMP_RING_MAX_ENTRIES && (n & (n - 1)) == 0;
}

int rump_area_layout(const struct rump_ring_setup *setup,
                     struct rump_area_layout *out)
{
	struct rump_area_layout l;

	if (!entries_ok(setup->sq_entries) || !entries_ok(setup->cq_entries) ||
	    setup->cq_entries < setup->sq_entries)
		return EINVAL;
	/* Checked before any arithmetic so nothing below can overflow. */
	if (setup->buf_size % AREA_PAGE != 0 ||
	    setup->buf_size > RUMP_AREA_MAX_SIZE)
		return EINVAL;

	l.sq_entries = setup->sq_entries;
	l.cq_entries = setup->cq_entries;
	l.sq_off = align_up(sizeof(struct rump_area_hdr), AREA_ENTRY_ALIGN);
	l.cq_off = align_up(l.sq_off +
	                    (uint64_t)l.sq_entries * sizeof(struct rump_sqe),
	                    AREA_ENTRY_ALIGN);
	l.buf_off = align_up(l.cq_off +
	                     (uint64_t)l.cq_entries * sizeof(struct rump_cqe),
	                     AREA_PAGE);
	l.buf_size = setup->buf_size;
	l.total = l.buf_off + l.buf_size;
	if (l.total > RUMP_AREA_MAX_SIZE)
		return EINVAL;
	*out = l;
	return 0;
}

bool rump_area_buf_ok(const struct rump_area_layout *l, uint64_t off,
                      uint64_t len)
{
	return off <= l->buf_size && len <= l->buf_size - off;
}
