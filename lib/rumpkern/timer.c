/*
 * Timers: one thread per runtime, a binary min-heap of armed timers keyed
 * by deadline_ns, and timer->slot holding each timer's heap index so that
 * cancelling or moving a timer is O(log n) without a search.
 *
 * The thread sleeps on timer_cv until the earliest deadline (or until an
 * arm makes an earlier one), pops what is due and runs the callbacks with
 * timer_lock dropped, so a callback may arm or cancel timers, its own too.
 *
 * Cancel and running callbacks: a timer is taken off the heap (slot set to
 * SIZE_MAX) under the lock before its callback runs.  rk_timer_cancel
 * therefore returns true only when the callback will not run; false means
 * it ran, is running right now, or the timer was never armed.  Cancel does
 * not wait for a running callback: an owner that frees a timer whose
 * callback may be running must learn that it finished by itself (the
 * callback signalling, say).  Waiting inside cancel would deadlock a
 * callback that cancels its own timer or takes a lock the canceller holds.
 */
#include <errno.h>
#include <string.h>

#include "rk_int.h"

#define TIMER_HEAP_INITIAL 64

/* ---- heap, all under timer_lock --------------------------------------- */

static void
heap_place(struct rk_runtime *rt, struct rk_timer *t, size_t i)
{
	rt->timer_heap[i] = t;
	t->slot = i;
}

static void
heap_sift_up(struct rk_runtime *rt, size_t i)
{
	struct rk_timer *t = rt->timer_heap[i];
	size_t parent;

	while (i > 0) {
		parent = (i - 1) / 2;
		if (rt->timer_heap[parent]->deadline_ns <= t->deadline_ns)
			break;
		heap_place(rt, rt->timer_heap[parent], i);
		i = parent;
	}
	heap_place(rt, t, i);
}

static void
heap_sift_down(struct rk_runtime *rt, size_t i)
{
	struct rk_timer *t = rt->timer_heap[i];
	size_t n = rt->timer_count, child;

	for (;;) {
		child = 2 * i + 1;
		if (child >= n)
			break;
		if (child + 1 < n && rt->timer_heap[child + 1]->deadline_ns <
		    rt->timer_heap[child]->deadline_ns)
			child++;
		if (t->deadline_ns <= rt->timer_heap[child]->deadline_ns)
			break;
		heap_place(rt, rt->timer_heap[child], i);
		i = child;
	}
	heap_place(rt, t, i);
}

static void
heap_remove(struct rk_runtime *rt, struct rk_timer *t)
{
	size_t i = t->slot;
	struct rk_timer *last;

	t->slot = SIZE_MAX;
	last = rt->timer_heap[--rt->timer_count];
	if (i == rt->timer_count)
		return; /* t was the last one */
	/* The last element fills the hole; it may belong above or below. */
	heap_place(rt, last, i);
	if (i > 0 && rt->timer_heap[(i - 1) / 2]->deadline_ns >
	    last->deadline_ns)
		heap_sift_up(rt, i);
	else
		heap_sift_down(rt, i);
}

static int
heap_grow(struct rk_runtime *rt)
{
	struct rk_timer **heap;
	size_t cap = rt->timer_cap * 2;
	int error;

	error = rumpuser_malloc(cap * sizeof(*heap), 0, (void **)&heap);
	if (error != 0)
		return error;
	memcpy(heap, rt->timer_heap, rt->timer_count * sizeof(*heap));
	rumpuser_free(rt->timer_heap, rt->timer_cap * sizeof(*heap));
	rt->timer_heap = heap;
	rt->timer_cap = cap;
	return 0;
}

/* ---- the timer thread ------------------------------------------------- */

static void *
timer_thread(void *arg)
{
	struct rk_runtime *rt = arg;
	struct rk_timer *t;
	uint64_t now;

	rumpuser_mutex_enter(rt->timer_lock);
	while (!rt->timer_stop) {
		if (rt->timer_count == 0) {
			rumpuser_cv_wait(rt->timer_cv, rt->timer_lock);
			continue;
		}
		t = rt->timer_heap[0];
		now = rk_now_ns();
		if (t->deadline_ns > now) {
			(void)rumpuser_cv_timedwait(rt->timer_cv,
			                            rt->timer_lock,
			                            t->deadline_ns - now);
			continue;
		}
		heap_remove(rt, t);
		rumpuser_mutex_exit(rt->timer_lock);
		t->fn(t, t->arg);
		/* t may be freed by now: not touched again. */
		rumpuser_mutex_enter(rt->timer_lock);
	}
	rumpuser_mutex_exit(rt->timer_lock);
	return NULL;
}

int
rk_timers_start(struct rk_runtime *rt)
{
	int error;

	error = rumpuser_mutex_init(&rt->timer_lock);
	if (error != 0)
		return error;
	error = rumpuser_cv_init(&rt->timer_cv);
	if (error != 0)
		goto fail_lock;
	rt->timer_cap = TIMER_HEAP_INITIAL;
	error = rumpuser_malloc(rt->timer_cap * sizeof(*rt->timer_heap), 0,
	                        (void **)&rt->timer_heap);
	if (error != 0)
		goto fail_cv;
	rt->timer_count = 0;
	rt->timer_stop = false;
	error = rumpuser_thread_create(timer_thread, rt, "rk-timer",
	                               &rt->timer_thread);
	if (error != 0)
		goto fail_heap;
	return 0;

fail_heap:
	rumpuser_free(rt->timer_heap, rt->timer_cap * sizeof(*rt->timer_heap));
fail_cv:
	rumpuser_cv_destroy(rt->timer_cv);
fail_lock:
	rumpuser_mutex_destroy(rt->timer_lock);
	return error;
}

/* After it returns no callback runs or will run; armed timers stay in the
 * heap, so their owners can still cancel them while devices go away. */
void
rk_timers_stop(struct rk_runtime *rt)
{
	int error;

	rumpuser_mutex_enter(rt->timer_lock);
	rt->timer_stop = true;
	rumpuser_cv_signal(rt->timer_cv);
	rumpuser_mutex_exit(rt->timer_lock);
	error = rumpuser_thread_join(rt->timer_thread, NULL);
	if (error != 0)
		rk_err(rt, "joining the timer thread: %s", strerror(error));
	rt->timer_thread = NULL;
}

void
rk_timers_free(struct rk_runtime *rt)
{
	rumpuser_free(rt->timer_heap, rt->timer_cap * sizeof(*rt->timer_heap));
	rumpuser_cv_destroy(rt->timer_cv);
	rumpuser_mutex_destroy(rt->timer_lock);
}

/* ---- the interface ---------------------------------------------------- */

void
rk_timer_init(struct rk_runtime *rt, struct rk_timer *timer, rk_timer_fn fn,
              void *arg)
{
	timer->rt = rt;
	timer->fn = fn;
	timer->arg = arg;
	timer->deadline_ns = 0;
	timer->slot = SIZE_MAX;
}

void
rk_timer_arm(struct rk_timer *timer, uint64_t delay_ns)
{
	struct rk_runtime *rt = timer->rt;
	uint64_t now = rk_now_ns(), old;
	int error;

	rumpuser_mutex_enter(rt->timer_lock);
	old = timer->deadline_ns;
	timer->deadline_ns = delay_ns > UINT64_MAX - now ? UINT64_MAX :
	                     now + delay_ns;
	if (timer->slot != SIZE_MAX) {
		/* Pending: move it. */
		if (timer->deadline_ns < old)
			heap_sift_up(rt, timer->slot);
		else
			heap_sift_down(rt, timer->slot);
	} else {
		if (rt->timer_count == rt->timer_cap) {
			error = heap_grow(rt);
			if (error != 0) {
				/* arm cannot fail by contract; the heap
				 * doubles, so this is the host out of
				 * memory with thousands of timers armed. */
				rumpuser_mutex_exit(rt->timer_lock);
				rk_err(rt, "timer not armed: %s",
				       strerror(error));
				return;
			}
		}
		heap_place(rt, timer, rt->timer_count++);
		heap_sift_up(rt, timer->slot);
	}
	/* Only a new earliest deadline shortens the thread's sleep. */
	if (rt->timer_heap[0] == timer)
		rumpuser_cv_signal(rt->timer_cv);
	rumpuser_mutex_exit(rt->timer_lock);
}

bool
rk_timer_cancel(struct rk_timer *timer)
{
	struct rk_runtime *rt = timer->rt;
	bool pending;

	rumpuser_mutex_enter(rt->timer_lock);
	pending = timer->slot != SIZE_MAX;
	if (pending)
		heap_remove(rt, timer);
	rumpuser_mutex_exit(rt->timer_lock);
	return pending;
}
