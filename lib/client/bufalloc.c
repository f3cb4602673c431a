/*
 * First fit over a sorted array of free extents, coalescing on free.
 * Buffers are few and long-lived compared with requests (a gateway
 * allocates one per request slot), so linear scans over short arrays beat
 * anything cleverer.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bufalloc.h"

#define ALIGN_SMALL 64u
#define ALIGN_PAGE 4096u

static int reserve(struct buf_extent **v, size_t *cap, size_t need)
{
	struct buf_extent *nv;
	size_t ncap;

	if (need <= *cap)
		return 0;
	ncap = *cap != 0 ? *cap * 2 : 16;
	while (ncap < need)
		ncap *= 2;
	nv = realloc(*v, ncap * sizeof *nv);
	if (nv == NULL)
		return ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

static void insert_at(struct buf_extent *v, size_t *n, size_t i,
                      struct buf_extent e)
{
	memmove(&v[i + 1], &v[i], (*n - i) * sizeof *v);
	v[i] = e;
	(*n)++;
}

static void remove_at(struct buf_extent *v, size_t *n, size_t i)
{
	memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof *v);
	(*n)--;
}

/* First index whose offset is >= off. */
static size_t lower_bound(const struct buf_extent *v, size_t n, uint64_t off)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int bufalloc_init(struct bufalloc *a, uint64_t size)
{
	memset(a, 0, sizeof *a);
	a->size = size;
	if (size > 0) {
		if (reserve(&a->free, &a->capfree, 1) != 0)
			return ENOMEM;
		a->free[0] = (struct buf_extent){ .off = 0, .len = size };
		a->nfree = 1;
	}
	pthread_mutex_init(&a->lock, NULL);
	return 0;
}

void bufalloc_fini(struct bufalloc *a)
{
	pthread_mutex_destroy(&a->lock);
	free(a->free);
	free(a->used);
}

int bufalloc_alloc(struct bufalloc *a, uint64_t len, uint64_t *offp)
{
	uint64_t align = len >= ALIGN_PAGE ? ALIGN_PAGE : ALIGN_SMALL;
	int err = ENOMEM;

	if (len == 0)
		len = 1;
	if (len > a->size)
		return ENOMEM;
	len = (len + ALIGN_SMALL - 1) & ~(uint64_t)(ALIGN_SMALL - 1);

	pthread_mutex_lock(&a->lock);
	/*
	 * Free extents never touch, so there are at most nused + 1 of them.
	 * Reserving for one more block now means neither the split below
	 * nor any later bufalloc_free() ever needs memory.
	 */
	if (reserve(&a->free, &a->capfree, a->nused + 2) != 0 ||
	    reserve(&a->used, &a->capused, a->nused + 1) != 0)
		goto out;
	for (size_t i = 0; i < a->nfree; i++) {
		struct buf_extent f = a->free[i];
		uint64_t start = (f.off + align - 1) & ~(align - 1);
		uint64_t gap = start - f.off;
		struct buf_extent u = { .off = start, .len = len };
		size_t j;

		if (gap > f.len || f.len - gap < len)
			continue;
		/* Replace f by what is left before and after the block. */
		remove_at(a->free, &a->nfree, i);
		j = i;
		if (gap > 0)
			insert_at(a->free, &a->nfree, j++,
			          (struct buf_extent){ f.off, gap });
		if (f.len - gap > len)
			insert_at(a->free, &a->nfree, j,
			          (struct buf_extent){ start + len,
			                               f.len - gap - len });
		insert_at(a->used, &a->nused,
		          lower_bound(a->used, a->nused, start), u);
		*offp = start;
		err = 0;
		break;
	}
out:
	pthread_mutex_unlock(&a->lock);
	return err;
}

int bufalloc_free(struct bufalloc *a, uint64_t off)
{
	struct buf_extent e;
	size_t i;
	bool merge_prev, merge_next;

	pthread_mutex_lock(&a->lock);
	i = lower_bound(a->used, a->nused, off);
	if (i == a->nused || a->used[i].off != off) {
		pthread_mutex_unlock(&a->lock);
		return EINVAL;
	}
	e = a->used[i];
	remove_at(a->used, &a->nused, i);

	i = lower_bound(a->free, a->nfree, e.off);
	merge_prev = i > 0 && a->free[i - 1].off + a->free[i - 1].len == e.off;
	merge_next = i < a->nfree && e.off + e.len == a->free[i].off;
	if (merge_prev && merge_next) {
		a->free[i - 1].len += e.len + a->free[i].len;
		remove_at(a->free, &a->nfree, i);
	} else if (merge_prev) {
		a->free[i - 1].len += e.len;
	} else if (merge_next) {
		a->free[i].off = e.off;
		a->free[i].len += e.len;
	} else {
		/* Room reserved by bufalloc_alloc(). */
		insert_at(a->free, &a->nfree, i, e);
	}
	pthread_mutex_unlock(&a->lock);
	return 0;
}

uint64_t bufalloc_avail(struct bufalloc *a)
{
	uint64_t sum = 0;

	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->nfree; i++)
		sum += a->free[i].len;
	pthread_mutex_unlock(&a->lock);
	return sum;
}
