/*
 * The SPSC ring: indices that wrap past 2^32, full and empty, a two-thread
 * stress with checksums, a hostile peer's indices on both sides, and the
 * WAITING handshake.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rump/ipc.h"

#define N 8u

struct shared {
	struct rump_ring_idx idx;
	uint64_t entries[N];
};

static void init_pair(struct shared *sh, uint32_t start, struct rump_ring *p,
                      struct rump_ring *c)
{
	memset(sh, 0, sizeof *sh);
	sh->idx.head = start;
	sh->idx.tail = start;
	rump_ring_init_producer(p, &sh->idx, sh->entries, N, sizeof(uint64_t));
	rump_ring_init_consumer(c, &sh->idx, sh->entries, N, sizeof(uint64_t));
}

static void test_wrap(void **state)
{
	struct shared sh;
	struct rump_ring p, c;
	uint64_t v, next_in = 0, next_out = 0;

	(void)state;
	init_pair(&sh, UINT32_MAX - 20, &p, &c);
	/* Many laps across the 2^32 boundary, in uneven batches. */
	for (int round = 0; round < 50; round++) {
		int k = 1 + round % (int)N;

		for (int i = 0; i < k; i++) {
			v = next_in++;
			assert_int_equal(rump_ring_push(&p, &v), 0);
		}
		rump_ring_publish(&p);
		assert_int_equal(rump_ring_ready(&c), k);
		for (int i = 0; i < k; i++) {
			assert_int_equal(rump_ring_pop(&c, &v), 0);
			assert_int_equal(v, next_out++);
		}
		rump_ring_release(&c);
	}
	assert_true(sh.idx.tail < 1000);
	assert_int_equal(sh.idx.head, sh.idx.tail);
}

static void test_full_empty(void **state)
{
	struct shared sh;
	struct rump_ring p, c;
	uint64_t v = 7;

	(void)state;
	init_pair(&sh, UINT32_MAX - 3, &p, &c);
	assert_int_equal(rump_ring_ready(&c), 0);
	assert_int_equal(rump_ring_pop(&c, &v), EAGAIN);
	assert_int_equal(rump_ring_space(&p), N);
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(rump_ring_push(&p, &v), 0);
	assert_int_equal(rump_ring_push(&p, &v), EAGAIN);
	assert_int_equal(rump_ring_space(&p), 0);
	/* Not visible before publish. */
	assert_int_equal(rump_ring_ready(&c), 0);
	rump_ring_publish(&p);
	assert_int_equal(rump_ring_ready(&c), N);
	assert_int_equal(rump_ring_pop(&c, &v), 0);
	/* Popped but not released: still full for the producer. */
	assert_int_equal(rump_ring_push(&p, &v), EAGAIN);
	rump_ring_release(&c);
	assert_int_equal(rump_ring_space(&p), 1);
	assert_int_equal(rump_ring_push(&p, &v), 0);
	assert_int_equal(rump_ring_push(&p, &v), EAGAIN);
}

static void test_hostile_consumer_side(void **state)
{
	struct shared sh;
	struct rump_ring p, c;
	uint64_t v;

	(void)state;
	/* A producer claiming more entries than the ring holds. */
	init_pair(&sh, 100, &p, &c);
	sh.idx.tail = 100 + N + 1;
	assert_int_equal(rump_ring_ready(&c), -EPROTO);
	assert_int_equal(rump_ring_pop(&c, &v), EPROTO);
	/* Exactly full is fine. */
	sh.idx.tail = 100 + N;
	assert_int_equal(rump_ring_ready(&c), N);
	/* A tail that moved backwards looks like 2^32 - 1 entries. */
	init_pair(&sh, 100, &p, &c);
	sh.idx.tail = 99;
	assert_int_equal(rump_ring_ready(&c), -EPROTO);
	/* prepare_wait must not sleep on a bogus tail. */
	assert_true(rump_ring_prepare_wait(&c));
	assert_int_equal(sh.idx.flags, 0);
}

static void test_hostile_producer_side(void **state)
{
	struct shared sh;
	struct rump_ring p, c;
	uint64_t v = 1;

	(void)state;
	init_pair(&sh, 5, &p, &c);
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(rump_ring_push(&p, &v), 0);
	rump_ring_publish(&p);
	/* A consumer whose head ran past our tail. */
	sh.idx.head = 5 + N + 1;
	assert_int_equal(rump_ring_space(&p), -EPROTO);
	assert_int_equal(rump_ring_push(&p, &v), EPROTO);
	/* A head far behind. */
	sh.idx.head = 5 - 1;
	assert_int_equal(rump_ring_space(&p), -EPROTO);
	/* A head in range is believed. */
	sh.idx.head = 5 + 3;
	assert_int_equal(rump_ring_space(&p), 3);
	/* The producer never reads its own tail back. */
	sh.idx.tail = 0xdead;
	assert_int_equal(rump_ring_push(&p, &v), 0);
	rump_ring_publish(&p);
	assert_int_equal(sh.idx.tail, 5 + N + 1);
}

static void test_waiting(void **state)
{
	struct shared sh;
	struct rump_ring p, c;
	uint64_t v = 3;

	(void)state;
	init_pair(&sh, 0, &p, &c);
	/* Nobody waiting: no doorbell. */
	assert_int_equal(rump_ring_push(&p, &v), 0);
	assert_false(rump_ring_publish(&p));
	/* Entries pending: prepare_wait declines to sleep. */
	assert_true(rump_ring_prepare_wait(&c));
	assert_int_equal(sh.idx.flags, 0);
	assert_int_equal(rump_ring_pop(&c, &v), 0);
	rump_ring_release(&c);
	/* Empty: the flag goes up, the next publish asks for the bell. */
	assert_false(rump_ring_prepare_wait(&c));
	assert_int_equal(sh.idx.flags, RUMP_RINGF_WAITING);
	assert_int_equal(rump_ring_push(&p, &v), 0);
	assert_true(rump_ring_publish(&p));
	rump_ring_end_wait(&c);
	assert_int_equal(sh.idx.flags, 0);
	assert_int_equal(rump_ring_push(&p, &v), 0);
	assert_false(rump_ring_publish(&p));
}

/* ---- two threads ------------------------------------------------------ */

#define STRESS_COUNT 10000000ull
#define STRESS_N 64u

struct entry {
	uint64_t seq;
	uint64_t check;
};

struct stress {
	struct rump_ring_idx idx;
	struct entry entries[STRESS_N];
	uint64_t sum_in, sum_out;
	unsigned missed_wakeups;
	/* A doorbell standing in for the eventfd. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned bells;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static void *stress_producer(void *arg)
{
	struct stress *st = arg;
	struct rump_ring p;
	struct entry e;

	rump_ring_init_producer(&p, &st->idx, st->entries, STRESS_N,
	                        sizeof e);
	for (uint64_t i = 0; i < STRESS_COUNT;) {
		e.seq = i;
		e.check = mix(i);
		if (rump_ring_push(&p, &e) != 0) {
			if (rump_ring_publish(&p)) {
				pthread_mutex_lock(&st->lock);
				st->bells++;
				pthread_cond_signal(&st->cond);
				pthread_mutex_unlock(&st->lock);
			}
			continue;
		}
		st->sum_in += e.check;
		i++;
		if ((i & 7) == 0 && rump_ring_publish(&p)) {
			pthread_mutex_lock(&st->lock);
			st->bells++;
			pthread_cond_signal(&st->cond);
			pthread_mutex_unlock(&st->lock);
		}
	}
	if (rump_ring_publish(&p)) {
		pthread_mutex_lock(&st->lock);
		st->bells++;
		pthread_cond_signal(&st->cond);
		pthread_mutex_unlock(&st->lock);
	}
	return NULL;
}

static void test_two_threads(void **state)
{
	struct stress *st = calloc(1, sizeof *st);
	struct rump_ring c;
	struct entry e;
	pthread_t tid;
	uint64_t expect = 0;
	int bad = 0;

	(void)state;
	assert_non_null(st);
	st->idx.head = st->idx.tail = UINT32_MAX - 1000;
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->cond, NULL);
	rump_ring_init_consumer(&c, &st->idx, st->entries, STRESS_N, sizeof e);
	assert_int_equal(pthread_create(&tid, NULL, stress_producer, st), 0);
	while (expect < STRESS_COUNT) {
		int err = rump_ring_pop(&c, &e);

		if (err == EAGAIN) {
			rump_ring_release(&c);
			if (rump_ring_prepare_wait(&c))
				continue;
			/* Sleep until rung: a lost wakeup hangs the test. */
			pthread_mutex_lock(&st->lock);
			while (st->bells == 0)
				pthread_cond_wait(&st->cond, &st->lock);
			st->bells = 0;
			pthread_mutex_unlock(&st->lock);
			rump_ring_end_wait(&c);
			continue;
		}
		assert_int_equal(err, 0);
		if (e.seq != expect || e.check != mix(expect))
			bad++;
		st->sum_out += e.check;
		expect++;
		if ((expect & 15) == 0)
			rump_ring_release(&c);
	}
	rump_ring_release(&c);
	pthread_join(tid, NULL);
	assert_int_equal(bad, 0);
	assert_int_equal(st->sum_in, st->sum_out);
	assert_int_equal(rump_ring_ready(&c), 0);
	pthread_mutex_destroy(&st->lock);
	pthread_cond_destroy(&st->cond);
	free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wrap),
		cmocka_unit_test(test_full_empty),
		cmocka_unit_test(test_hostile_consumer_side),
		cmocka_unit_test(test_hostile_producer_side),
		cmocka_unit_test(test_waiting),
		cmocka_unit_test(test_two_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
