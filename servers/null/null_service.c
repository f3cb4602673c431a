/*
 * The null service.  Every request is checked here, at the edge: a client
 * may name any offsets and lengths, and gets an error result for bad ones.
 *
 * Ring SLEEP is served by a runtime timer, so it completes on the timer
 * thread, out of order with the requests around it.  Pending sleeps sit on
 * a list so that shutdown can cancel them instead of waiting them out.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "null_service.h"

/* One ring SLEEP in flight: a pool object. */
struct null_sleep {
	struct rk_timer timer;
	struct null_service *ns;
	struct rump_session *session;
	uint64_t user_data;
	struct null_sleep *prev, *next;  /* on ns->pending while linked */
	bool linked;
};

struct null_service {
	struct rump_service desc;
	struct rk_runtime *rt;
	struct rk_pool *sleeps;
	struct rumpuser_mtx *lock;       /* guards everything below */
	struct rumpuser_cv *idle;        /* npending dropped to 0 */
	struct null_sleep pending;       /* list head */
	unsigned npending;               /* objects out of the pool */
	bool stopping;
};

/*
 * Bounds the memory hostile clients can make us hold: the server already
 * caps each session's requests in flight at its ring size, this caps the
 * sum.  A SLEEP beyond it fails with -EAGAIN.
 */
#define NULL_SLEEPS_MAX 65536u
#define NULL_SLEEPS_PREALLOC 64u

static void
sleep_unlink(struct null_sleep *sl)
{
	sl->prev->next = sl->next;
	sl->next->prev = sl->prev;
	sl->linked = false;
}

/* Called with the lock held: gives sl back and wakes shutdown when idle. */
static void
sleep_put_locked(struct null_service *ns, struct null_sleep *sl)
{
	if (sl->linked)
		sleep_unlink(sl);
	rk_pool_put(ns->sleeps, sl);
	if (--ns->npending == 0)
		rumpuser_cv_broadcast(ns->idle);
}

static void
sleep_fired(struct rk_timer *timer, void *arg)
{
	struct null_sleep *sl = arg;
	struct null_service *ns = sl->ns;

	(void)timer;
	/* Complete before giving the object back: shutdown waits for npending
	 * to reach 0, and the server for this completion. */
	rump_session_complete(sl->session, sl->user_data, 0, 0);
	rumpuser_mutex_enter(ns->lock);
	sleep_put_locked(ns, sl);
	rumpuser_mutex_exit(ns->lock);
}

static void
ring_sleep(struct null_service *ns, struct rump_session *s,
           const struct rump_sqe *sqe)
{
	struct null_sleep *sl;
	int64_t error;

	if (sqe->arg[0] > NULL_SLEEP_MAX_NS) {
		error = -EINVAL;
		goto fail;
	}
	rumpuser_mutex_enter(ns->lock);
	if (ns->stopping) {
		rumpuser_mutex_exit(ns->lock);
		error = -ECANCELED;
		goto fail;
	}
	sl = rk_pool_get(ns->sleeps);
	if (sl == NULL) {
		rumpuser_mutex_exit(ns->lock);
		error = -EAGAIN;
		goto fail;
	}
	ns->npending++;
	sl->ns = ns;
	sl->session = s;
	sl->user_data = sqe->user_data;
	/* Linked before it is armed: a zero delay may fire at once. */
	sl->next = ns->pending.next;
	sl->prev = &ns->pending;
	sl->next->prev = sl;
	ns->pending.next = sl;
	sl->linked = true;
	rk_timer_init(ns->rt, &sl->timer, sleep_fired, sl);
	rk_timer_arm(&sl->timer, sqe->arg[0]);
	rumpuser_mutex_exit(ns->lock);
	return;
fail:
	rump_session_complete(s, sqe->user_data, error, 0);
}

static void
ring_echo(struct rump_session *s, const struct rump_sqe *sqe)
{
	unsigned char *src, *dst;
	uint64_t sum = NULL_FNV64_INIT;

	if (sqe->len > 0) {
		src = rump_session_buf(s, sqe->buf, sqe->len);
		dst = rump_session_buf(s, sqe->arg[0], sqe->len);
		if (src == NULL || dst == NULL) {
			rump_session_complete(s, sqe->user_data, -EFAULT, 0);
			return;
		}
		/* The client may scribble on the area meanwhile; it then gets
		 * garbage back, which is its own business: we only ever
		 * touch bytes inside its area. */
		memmove(dst, src, sqe->len);
		sum = null_fnv1a64(dst, sqe->len);
	}
	rump_session_complete(s, sqe->user_data, sqe->len, sum);
}

static void
null_submit(struct rump_session *s, const struct rump_sqe *sqe)
{
	struct null_service *ns = rump_session_service_ctx(s);

	if (sqe->flags != 0) {
		rump_session_complete(s, sqe->user_data, -EINVAL, 0);
		return;
	}
	switch (sqe->opcode) {
	case RUMP_NULL_OP_NULL:
		rump_session_complete(s, sqe->user_data, 0, 0);
		break;
	case RUMP_NULL_OP_ECHO:
		ring_echo(s, sqe);
		break;
	case RUMP_NULL_OP_SLEEP:
		ring_sleep(ns, s, sqe);
		break;
	default:
		rump_session_complete(s, sqe->user_data, -EOPNOTSUPP, 0);
		break;
	}
}

static int
null_control(struct rump_session *s, uint16_t type, const void *body,
             size_t len, void *reply, size_t *reply_len)
{
	uint64_t ns;

	(void)s;
	switch (type) {
	case RUMP_NULL_MSG_NULL:
		*reply_len = 0;
		return len == 0 ? 0 : EINVAL;
	case RUMP_NULL_MSG_ECHO:
		if (len > *reply_len)
			return EMSGSIZE;
		memcpy(reply, body, len);
		*reply_len = len;
		return 0;
	case RUMP_NULL_MSG_SLEEP:
		*reply_len = 0;
		if (len != sizeof(ns))
			return EINVAL;
		memcpy(&ns, body, sizeof(ns));
		if (ns > NULL_SLEEP_MAX_NS)
			return EINVAL;
		/* Blocks this session's thread only, which is the point. */
		return rumpuser_clock_sleep(ns);
	default:
		*reply_len = 0;
		return EOPNOTSUPP;
	}
}

static int
null_session_open(struct rump_session *s, void **sess_ctx)
{
	struct null_service *ns = rump_session_service_ctx(s);
	int pid;
	unsigned uid, gid;

	rump_session_peer(s, &pid, &uid, &gid);
	rk_debug(ns->rt, "session from pid %d uid %u", pid, uid);
	*sess_ctx = NULL;
	return 0;
}

static void
null_session_close(struct rump_session *s, void *sess_ctx)
{
	(void)s;
	(void)sess_ctx;
}

int
null_service_create(struct rk_runtime *rt, struct null_service **nsp)
{
	struct null_service *ns;
	int error;

	error = rumpuser_malloc(sizeof(*ns), 0, (void **)&ns);
	if (error)
		return error;
	memset(ns, 0, sizeof(*ns));
	ns->rt = rt;
	ns->pending.next = ns->pending.prev = &ns->pending;
	error = rumpuser_mutex_init(&ns->lock);
	if (error)
		goto fail_free;
	error = rumpuser_cv_init(&ns->idle);
	if (error)
		goto fail_mutex;
	error = rk_pool_create(rt, "null-sleep", sizeof(struct null_sleep), 0,
	                       NULL_SLEEPS_PREALLOC, NULL_SLEEPS_MAX,
	                       &ns->sleeps);
	if (error)
		goto fail_cv;
	ns->desc = (struct rump_service){
		.version = RUMP_SERVICE_VERSION,
		.kind = RUMP_SERVICE_NULL,
		.name = "null",
		.ctx = ns,
		.session_open = null_session_open,
		.session_close = null_session_close,
		.control = null_control,
		.submit = null_submit,
	};
	*nsp = ns;
	return 0;

fail_cv:
	rumpuser_cv_destroy(ns->idle);
fail_mutex:
	rumpuser_mutex_destroy(ns->lock);
fail_free:
	rumpuser_free(ns, sizeof(*ns));
	return error;
}

const struct rump_service *
null_service_desc(const struct null_service *ns)
{
	return &ns->desc;
}

void
null_service_shutdown(struct null_service *ns)
{
	struct null_sleep *sl;

	rumpuser_mutex_enter(ns->lock);
	ns->stopping = true;
	while ((sl = ns->pending.next) != &ns->pending) {
		sleep_unlink(sl);
		/* The timer thread may be inside sleep_fired() waiting for
		 * this lock; cancel outside it. */
		rumpuser_mutex_exit(ns->lock);
		if (rk_timer_cancel(&sl->timer)) {
			rump_session_complete(sl->session, sl->user_data,
			                      -ECANCELED, 0);
			rumpuser_mutex_enter(ns->lock);
			sleep_put_locked(ns, sl);
		} else {
			/* It fired: sleep_fired() completes and puts it. */
			rumpuser_mutex_enter(ns->lock);
		}
	}
	while (ns->npending > 0)
		rumpuser_cv_wait(ns->idle, ns->lock);
	rumpuser_mutex_exit(ns->lock);
}

void
null_service_destroy(struct null_service *ns)
{
	if (ns == NULL)
		return;
	rk_pool_destroy(ns->sleeps);
	rumpuser_cv_destroy(ns->idle);
	rumpuser_mutex_destroy(ns->lock);
	rumpuser_free(ns, sizeof(*ns));
}
