/* Timers: order, cancel, re-arm, and where callbacks run. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rump/rumpkern.h"

#define MS 1000000ULL
#define NTIMERS 1000

/* What the callbacks saw; filled on the timer thread, read here. */
struct log {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	unsigned fired;
	unsigned order[NTIMERS];
	uint64_t deadline[NTIMERS];
	uint64_t late[NTIMERS];         /* when it ran, minus its deadline */
	bool early;                     /* ran before its deadline */
	pthread_t thread;
	bool threads_differ;
};

struct item {
	struct rk_timer timer;
	struct log *log;
	unsigned id;
	unsigned rearm_left;
	uint64_t rearm_ns;
	unsigned runs;
};

static void
log_init(struct log *l)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cv, NULL);
}

static void
log_fini(struct log *l)
{
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->lock);
}

static void
fired(struct rk_timer *t, void *arg)
{
	struct item *it = arg;
	struct log *l = it->log;
	uint64_t now = rk_now_ns();

	pthread_mutex_lock(&l->lock);
	if (t != &it->timer)
		l->early = true; /* wrong timer handed in: flag it */
	if (now < t->deadline_ns)
		l->early = true;
	if (l->fired == 0)
		l->thread = pthread_self();
	else if (!pthread_equal(l->thread, pthread_self()))
		l->threads_differ = true;
	if (l->fired < NTIMERS) {
		l->order[l->fired] = it->id;
		l->deadline[l->fired] = t->deadline_ns;
	}
	l->fired++;
	it->runs++;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->lock);

	/* Re-arming itself from its callback (a periodic timer). */
	if (it->rearm_left > 0) {
		it->rearm_left--;
		rk_timer_arm(t, it->rearm_ns);
	}
}

/* Waits until n callbacks ran, at most about two seconds. */
static bool
wait_fired(struct log *l, unsigned n)
{
	unsigned i;
	bool ok;

	for (i = 0; i < 2000; i++) {
		pthread_mutex_lock(&l->lock);
		ok = l->fired >= n;
		pthread_mutex_unlock(&l->lock);
		if (ok)
			return true;
		(void)rumpuser_clock_sleep(MS);
	}
	return false;
}

static struct rk_runtime *
new_runtime(void)
{
	struct rk_runtime_opts opts = { .name = "test-timer" };
	struct rk_runtime *rt;

	assert_int_equal(rk_runtime_create(&opts, &rt), 0);
	return rt;
}

/* Many timers armed out of order, half of them cancelled, run in
 * deadline order on one thread that is not ours. */
static void
test_order_and_cancel(void **state)
{
	struct rk_runtime *rt = new_runtime();
	static struct item items[NTIMERS];
	static struct log l;
	unsigned i, live = 0;

	(void)state;
	log_init(&l);
	for (i = 0; i < NTIMERS; i++) {
		items[i] = (struct item){ .log = &l, .id = i };
		rk_timer_init(rt, &items[i].timer, fired, &items[i]);
	}
	/* A scrambled arming order: 7919 is prime to NTIMERS. */
	for (i = 0; i < NTIMERS; i++) {
		unsigned k = (i * 7919u) % NTIMERS;
		rk_timer_arm(&items[k].timer, 50 * MS + (uint64_t)k * 50000);
	}
	/* Cancel every third, so holes appear all over the heap. */
	for (i = 0; i < NTIMERS; i += 3)
		assert_true(rk_timer_cancel(&items[i].timer));
	for (i = 0; i < NTIMERS; i++)
		live += i % 3 != 0;

	assert_true(wait_fired(&l, live));
	(void)rumpuser_clock_sleep(20 * MS); /* nothing else may come */
	pthread_mutex_lock(&l.lock);
	assert_int_equal(l.fired, live);
	assert_false(l.early);
	assert_false(l.threads_differ);
	assert_false(pthread_equal(l.thread, pthread_self()));
	for (i = 1; i < live; i++)
		assert_true(l.deadline[i - 1] <= l.deadline[i]);
	for (i = 0; i < live; i++)
		assert_true(l.order[i] % 3 != 0);
	pthread_mutex_unlock(&l.lock);
	for (i = 0; i < NTIMERS; i++) {
		assert_int_equal(items[i].runs, i % 3 != 0);
		/* Fired or cancelled: nothing left to cancel. */
		assert_false(rk_timer_cancel(&items[i].timer));
	}
	rk_runtime_destroy(rt);
	log_fini(&l);
}

static void
test_rearm_moves(void **state)
{
	struct rk_runtime *rt = new_runtime();
	struct item a, b;
	struct log l;

	(void)state;
	log_init(&l);
	a = (struct item){ .log = &l, .id = 1 };
	b = (struct item){ .log = &l, .id = 2 };
	rk_timer_init(rt, &a.timer, fired, &a);
	rk_timer_init(rt, &b.timer, fired, &b);
	assert_false(rk_timer_cancel(&a.timer)); /* never armed */

	/* Earlier: a ten-second timer moved to now-ish fires once, soon. */
	rk_timer_arm(&a.timer, 10000 * MS);
	rk_timer_arm(&a.timer, 1 * MS);
	/* Later: a timer moved from 1 ms to 10 s does not fire. */
	rk_timer_arm(&b.timer, 1 * MS);
	rk_timer_arm(&b.timer, 10000 * MS);
	assert_true(wait_fired(&l, 1));
	(void)rumpuser_clock_sleep(30 * MS);
	assert_int_equal(a.runs, 1);
	assert_int_equal(b.runs, 0);
	assert_true(rk_timer_cancel(&b.timer));

	/* Armed again after firing: fires again. */
	rk_timer_arm(&a.timer, 0);
	assert_true(wait_fired(&l, 2));
	assert_int_equal(a.runs, 2);
	rk_runtime_destroy(rt);
	log_fini(&l);
}

static void
test_periodic_from_callback(void **state)
{
	struct rk_runtime *rt = new_runtime();
	struct item it;
	struct log l;

	(void)state;
	log_init(&l);
	it = (struct item){ .log = &l, .rearm_left = 4, .rearm_ns = 2 * MS };
	rk_timer_init(rt, &it.timer, fired, &it);
	rk_timer_arm(&it.timer, 1 * MS);
	assert_true(wait_fired(&l, 5));
	(void)rumpuser_clock_sleep(20 * MS);
	assert_int_equal(it.runs, 5);
	assert_false(l.threads_differ);
	rk_runtime_destroy(rt);
	log_fini(&l);
}

/* A callback that cancels another timer and re-arms a third. */
struct pair {
	struct rk_timer first, victim, later;
	bool cancelled;
	unsigned victim_runs, later_runs;
	pthread_mutex_t lock;
};

static void
victim_fn(struct rk_timer *t, void *arg)
{
	struct pair *p = arg;

	(void)t;
	pthread_mutex_lock(&p->lock);
	p->victim_runs++;
	pthread_mutex_unlock(&p->lock);
}

static void
later_fn(struct rk_timer *t, void *arg)
{
	struct pair *p = arg;

	(void)t;
	pthread_mutex_lock(&p->lock);
	p->later_runs++;
	pthread_mutex_unlock(&p->lock);
}

static void
first_fn(struct rk_timer *t, void *arg)
{
	struct pair *p = arg;
	bool c;

	(void)t;
	c = rk_timer_cancel(&p->victim);
	rk_timer_arm(&p->later, 1 * MS);
	pthread_mutex_lock(&p->lock);
	p->cancelled = c;
	pthread_mutex_unlock(&p->lock);
}

static void
test_cancel_from_callback(void **state)
{
	struct rk_runtime *rt = new_runtime();
	static struct pair p;
	unsigned i, later;

	(void)state;
	memset(&p, 0, sizeof(p));
	pthread_mutex_init(&p.lock, NULL);
	rk_timer_init(rt, &p.first, first_fn, &p);
	rk_timer_init(rt, &p.victim, victim_fn, &p);
	rk_timer_init(rt, &p.later, later_fn, &p);
	rk_timer_arm(&p.first, 5 * MS);
	rk_timer_arm(&p.victim, 100 * MS);
	for (i = 0, later = 0; i < 2000 && later == 0; i++) {
		(void)rumpuser_clock_sleep(MS);
		pthread_mutex_lock(&p.lock);
		later = p.later_runs;
		pthread_mutex_unlock(&p.lock);
	}
	(void)rumpuser_clock_sleep(150 * MS);
	pthread_mutex_lock(&p.lock);
	assert_true(p.cancelled);
	assert_int_equal(p.victim_runs, 0);
	assert_int_equal(p.later_runs, 1);
	pthread_mutex_unlock(&p.lock);
	rk_runtime_destroy(rt);
	pthread_mutex_destroy(&p.lock);
}

/* Destroying a runtime with timers pending: they never fire. */
static void
test_destroy_with_pending(void **state)
{
	struct rk_runtime *rt = new_runtime();
	struct item it;
	struct log l;

	(void)state;
	log_init(&l);
	it = (struct item){ .log = &l };
	rk_timer_init(rt, &it.timer, fired, &it);
	rk_timer_arm(&it.timer, 20 * MS);
	rk_runtime_destroy(rt);
	(void)rumpuser_clock_sleep(40 * MS);
	assert_int_equal(it.runs, 0);
	log_fini(&l);
}

/* Two runtimes: each timer fires on its own runtime's thread. */
static void
test_two_runtimes(void **state)
{
	struct rk_runtime *a = new_runtime(), *b = new_runtime();
	struct item ia, ib;
	struct log la, lb;

	(void)state;
	log_init(&la);
	log_init(&lb);
	ia = (struct item){ .log = &la };
	ib = (struct item){ .log = &lb };
	rk_timer_init(a, &ia.timer, fired, &ia);
	rk_timer_init(b, &ib.timer, fired, &ib);
	rk_timer_arm(&ia.timer, 1 * MS);
	rk_timer_arm(&ib.timer, 1 * MS);
	assert_true(wait_fired(&la, 1));
	assert_true(wait_fired(&lb, 1));
	assert_false(pthread_equal(la.thread, lb.thread));
	rk_runtime_destroy(a);
	rk_runtime_destroy(b);
	log_fini(&la);
	log_fini(&lb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_cancel),
		cmocka_unit_test(test_rearm_moves),
		cmocka_unit_test(test_periodic_from_callback),
		cmocka_unit_test(test_cancel_from_callback),
		cmocka_unit_test(test_destroy_with_pending),
		cmocka_unit_test(test_two_runtimes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
