/*
 * Fixed-size object pools.  Free objects form a singly linked list through
 * their own first bytes, under one mutex: get and put are a few
 * instructions inside the lock, far below what a contended allocator
 * costs, and a mutex needs no ABA argument.
 *
 * Objects are allocated one by one (aligned, through rumpuser_malloc) as
 * the pool grows, and all are freed at destroy.  Objects handed out are
 * never freed by the pool while out.
 */
#include <errno.h>
#include <string.h>

#include "rk_int.h"

#define POOL_ALIGN_DEFAULT 64

struct pool_free {
	struct pool_free *next;
};

struct rk_pool {
	struct rk_runtime *rt;
	char *name;
	size_t objsize;         /* rounded up to hold a free-list link */
	size_t align;
	unsigned max;           /* 0: no limit */
	struct rumpuser_mtx *lock;
	struct pool_free *free_list;
	unsigned allocated, nfree;
	uint64_t gets, puts, misses;
};

static int
obj_alloc(struct rk_pool *pool, void **objp)
{
	return rumpuser_malloc(pool->objsize, pool->align, objp);
}

static void
pool_free_all(struct rk_pool *pool)
{
	struct pool_free *f;

	while ((f = pool->free_list) != NULL) {
		pool->free_list = f->next;
		rumpuser_free(f, pool->objsize);
	}
}

int
rk_pool_create(struct rk_runtime *rt, const char *name, size_t objsize,
               size_t align, unsigned prealloc, unsigned max,
               struct rk_pool **poolp)
{
	struct rk_pool *pool;
	struct pool_free *f;
	unsigned i;
	int error;

	if (align == 0)
		align = POOL_ALIGN_DEFAULT;
	if (objsize == 0 || (align & (align - 1)) != 0 ||
	    (max != 0 && prealloc > max))
		return EINVAL;
	if (objsize < sizeof(struct pool_free))
		objsize = sizeof(struct pool_free);
	if (align < _Alignof(struct pool_free))
		align = _Alignof(struct pool_free);
	if (objsize > SIZE_MAX - align)
		return EINVAL;
	/* Whole multiples of align: neighbours never share a cache line
	 * when align is one. */
	objsize = (objsize + align - 1) & ~(align - 1);

	error = rumpuser_malloc(sizeof(*pool), 0, (void **)&pool);
	if (error != 0)
		return error;
	memset(pool, 0, sizeof(*pool));
	pool->rt = rt;
	pool->objsize = objsize;
	pool->align = align;
	pool->max = max;
	error = rk_strdup(name != NULL ? name : "pool", &pool->name);
	if (error != 0)
		goto fail_pool;
	error = rumpuser_mutex_init(&pool->lock);
	if (error != 0)
		goto fail_name;
	for (i = 0; i < prealloc; i++) {
		error = obj_alloc(pool, (void **)&f);
		if (error != 0)
			goto fail_objs;
		f->next = pool->free_list;
		pool->free_list = f;
		pool->allocated++;
		pool->nfree++;
	}
	*poolp = pool;
	return 0;

fail_objs:
	pool_free_all(pool);
	rumpuser_mutex_destroy(pool->lock);
fail_name:
	rk_strfree(pool->name);
fail_pool:
	rumpuser_free(pool, sizeof(*pool));
	return error;
}

void *
rk_pool_get(struct rk_pool *pool)
{
	struct pool_free *f;
	void *obj;
	int error;

	rumpuser_mutex_enter(pool->lock);
	pool->gets++;
	f = pool->free_list;
	if (f != NULL) {
		pool->free_list = f->next;
		pool->nfree--;
		rumpuser_mutex_exit(pool->lock);
		return f;
	}
	if (pool->max != 0 && pool->allocated >= pool->max) {
		pool->misses++;
		rumpuser_mutex_exit(pool->lock);
		return NULL;
	}
	/* Reserve the place, then allocate outside the lock. */
	pool->allocated++;
	rumpuser_mutex_exit(pool->lock);

	error = obj_alloc(pool, &obj);
	if (error != 0) {
		rumpuser_mutex_enter(pool->lock);
		pool->allocated--;
		rumpuser_mutex_exit(pool->lock);
		rk_warn(pool->rt, "pool %s: %s", pool->name, strerror(error));
		return NULL;
	}
	return obj;
}

void
rk_pool_put(struct rk_pool *pool, void *obj)
{
	struct pool_free *f = obj;

	if (obj == NULL)
		return;
	rumpuser_mutex_enter(pool->lock);
	f->next = pool->free_list;
	pool->free_list = f;
	pool->nfree++;
	pool->puts++;
	rumpuser_mutex_exit(pool->lock);
}

void
rk_pool_destroy(struct rk_pool *pool)
{
	if (pool == NULL)
		return;
	/* Objects still out stay allocated: freeing memory someone still
	 * uses is worse than a leak, which the log reports. */
	if (pool->nfree != pool->allocated)
		rk_err(pool->rt, "pool %s destroyed with %u of %u objects out",
		       pool->name, pool->allocated - pool->nfree,
		       pool->allocated);
	pool_free_all(pool);
	rumpuser_mutex_destroy(pool->lock);
	rk_strfree(pool->name);
	rumpuser_free(pool, sizeof(*pool));
}

void
rk_pool_stats(const struct rk_pool *pool, struct rk_pool_stats *out)
{
	rumpuser_mutex_enter(pool->lock);
	out->gets = pool->gets;
	out->puts = pool->puts;
	out->misses = pool->misses;
	out->allocated = pool->allocated;
	out->free = pool->nfree;
	rumpuser_mutex_exit(pool->lock);
}
