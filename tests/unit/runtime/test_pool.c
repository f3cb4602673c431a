/* Object pools: preallocation, the limit, reuse, stats, two threads. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rump/rumpkern.h"

static struct rk_runtime *
new_runtime(void)
{
	struct rk_runtime_opts opts = { .name = "test-pool" };
	struct rk_runtime *rt;

	assert_int_equal(rk_runtime_create(&opts, &rt), 0);
	return rt;
}

static void
test_limits_and_reuse(void **state)
{
	struct rk_runtime *rt = new_runtime();
	struct rk_pool *pool;
	struct rk_pool_stats st;
	void *objs[8], *again;
	unsigned i, j;

	(void)state;
	assert_int_equal(rk_pool_create(rt, "bufs", 4096, 4096, 4, 8, &pool),
	                 0);
	rk_pool_stats(pool, &st);
	assert_int_equal(st.allocated, 4);
	assert_int_equal(st.free, 4);
	assert_int_equal(st.gets, 0);

	for (i = 0; i < 8; i++) {
		objs[i] = rk_pool_get(pool);
		assert_non_null(objs[i]);
		assert_int_equal((uintptr_t)objs[i] % 4096, 0);
		memset(objs[i], (int)i, 4096); /* all of it is ours */
		for (j = 0; j < i; j++)
			assert_ptr_not_equal(objs[i], objs[j]);
	}
	assert_null(rk_pool_get(pool)); /* at max, all out */
	rk_pool_stats(pool, &st);
	assert_int_equal(st.allocated, 8);
	assert_int_equal(st.free, 0);
	assert_int_equal(st.gets, 9);
	assert_int_equal(st.misses, 1);

	/* What goes back comes out again; nothing new is allocated. */
	rk_pool_put(pool, objs[5]);
	again = rk_pool_get(pool);
	assert_ptr_equal(again, objs[5]);
	for (i = 0; i < 8; i++)
		rk_pool_put(pool, objs[i]);
	rk_pool_stats(pool, &st);
	assert_int_equal(st.allocated, 8);
	assert_int_equal(st.free, 8);
	assert_int_equal(st.puts, 9);
	assert_int_equal(st.gets, 10);
	rk_pool_destroy(pool);
	rk_runtime_destroy(rt);
}

static void
test_defaults_and_bad_args(void **state)
{
	struct rk_runtime *rt = new_runtime();
	struct rk_pool *pool;
	struct rk_pool_stats st;
	void *objs[100];
	unsigned i;

	(void)state;
	assert_int_equal(rk_pool_create(rt, "x", 0, 0, 0, 0, &pool), EINVAL);
	assert_int_equal(rk_pool_create(rt, "x", 16, 48, 0, 0, &pool), EINVAL);
	assert_int_equal(rk_pool_create(rt, "x", 16, 0, 5, 4, &pool), EINVAL);

	/* Smaller than a pointer, default alignment (64), no limit. */
	assert_int_equal(rk_pool_create(rt, "tiny", 1, 0, 0, 0, &pool), 0);
	for (i = 0; i < 100; i++) {
		objs[i] = rk_pool_get(pool);
		assert_non_null(objs[i]);
		assert_int_equal((uintptr_t)objs[i] % 64, 0);
		*(unsigned char *)objs[i] = (unsigned char)i;
	}
	rk_pool_stats(pool, &st);
	assert_int_equal(st.allocated, 100);
	assert_int_equal(st.misses, 0);
	for (i = 0; i < 100; i++) {
		assert_int_equal(*(unsigned char *)objs[i], (unsigned char)i);
		rk_pool_put(pool, objs[i]);
	}
	rk_pool_put(pool, NULL);
	rk_pool_destroy(pool);
	rk_runtime_destroy(rt);
}

struct hammer {
	struct rk_pool *pool;
	unsigned char id;
	unsigned long got, missed;
	bool clobbered;
};

static void *
hammer(void *arg)
{
	struct hammer *h = arg;
	unsigned char *obj;
	size_t k;
	int i;

	for (i = 0; i < 100000; i++) {
		obj = rk_pool_get(h->pool);
		if (obj == NULL) {
			h->missed++;
			continue;
		}
		h->got++;
		/* Owned by this thread alone until put back. */
		memset(obj, h->id, 128);
		for (k = 0; k < 128; k++)
			if (obj[k] != h->id)
				h->clobbered = true;
		rk_pool_put(h->pool, obj);
	}
	return NULL;
}

static void
test_two_threads(void **state)
{
	struct rk_runtime *rt = new_runtime();
	struct hammer h[2];
	struct rk_pool_stats st;
	pthread_t tid[2];
	int t;

	(void)state;
	/* One object for two threads: gets collide, misses must appear as
	 * NULL and be counted, never as a shared object. */
	assert_int_equal(rk_pool_create(rt, "contended", 128, 0, 0, 1,
	                                &h[0].pool), 0);
	h[1].pool = h[0].pool;
	for (t = 0; t < 2; t++) {
		h[t].id = (unsigned char)(t + 1);
		h[t].got = h[t].missed = 0;
		h[t].clobbered = false;
		assert_int_equal(pthread_create(&tid[t], NULL, hammer, &h[t]),
		                 0);
	}
	for (t = 0; t < 2; t++)
		assert_int_equal(pthread_join(tid[t], NULL), 0);
	rk_pool_stats(h[0].pool, &st);
	assert_false(h[0].clobbered);
	assert_false(h[1].clobbered);
	assert_int_equal(st.gets, 200000);
	assert_int_equal(st.puts, h[0].got + h[1].got);
	assert_int_equal(st.misses, h[0].missed + h[1].missed);
	assert_int_equal(st.allocated, 1);
	assert_int_equal(st.free, 1);
	rk_pool_destroy(h[0].pool);
	rk_runtime_destroy(rt);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limits_and_reuse),
		cmocka_unit_test(test_defaults_and_bad_args),
		cmocka_unit_test(test_two_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
