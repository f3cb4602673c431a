/*
 * The device registry.
 *
 * Devices sit in a list in the order they were added (what foreach and
 * rk_runtime_destroy walk), under the runtime's dev_lock.  The list is
 * short (disks, partitions, NICs), and lookups happen at open, not per I/O,
 * so a list beats a hash table here.
 *
 * Lifetime: the registry holds one reference, every lookup one more.  The
 * last release calls ops->destroy and frees the device.  A child holds a
 * reference on its parent, so a parent outlives its children.
 *
 * Attaching runs without dev_lock: attach functions add child devices.
 */
#include <errno.h>
#include <string.h>

#include "rk_int.h"

/* Fits the NUL-padded 32-byte names of the wire protocol. */
#define RK_DEVICE_NAME_MAX 31

static bool
name_ok(const char *name)
{
	size_t len;

	if (name == NULL)
		return false;
	len = strnlen(name, RK_DEVICE_NAME_MAX + 1);
	return len > 0 && len <= RK_DEVICE_NAME_MAX;
}

/* Under dev_lock. */
static struct rk_device *
find_locked(struct rk_runtime *rt, const char *name)
{
	struct rk_device *dev;

	for (dev = rt->dev_first; dev != NULL; dev = dev->next)
		if (strcmp(dev->name, name) == 0)
			return dev;
	return NULL;
}

static void
device_free(struct rk_device *dev)
{
	struct rk_device *parent = dev->parent;

	if (dev->ops->destroy != NULL)
		dev->ops->destroy(dev);
	rk_strfree(dev->name);
	rk_strfree(dev->class);
	rumpuser_free(dev, sizeof(*dev));
	if (parent != NULL)
		rk_device_release(parent);
}

void
rk_device_hold(struct rk_device *dev)
{
	atomic_fetch_add_explicit(&dev->refs, 1, memory_order_relaxed);
}

void
rk_device_release(struct rk_device *dev)
{
	unsigned old;

	if (dev == NULL)
		return;
	/* acq_rel: whoever frees must see every other holder's writes. */
	old = atomic_fetch_sub_explicit(&dev->refs, 1, memory_order_acq_rel);
	if (old == 1)
		device_free(dev);
}

struct attach_arg {
	struct rk_runtime *rt;
	struct rk_device *dev;
};

static int
attach_cb(const struct rk_component *c, void *arg)
{
	struct attach_arg *aa = arg;
	int error;

	if (c->attach == NULL || c->attach_class == NULL ||
	    strcmp(c->attach_class, aa->dev->class) != 0)
		return 0;
	error = c->attach(aa->rt, aa->dev);
	if (error == 0)
		return 1; /* taken: stop looking */
	if (error != ENODEV)
		rk_warn(aa->rt, "%s: attaching %s failed: %s", c->name,
		        aa->dev->name, strerror(error));
	return 0;
}

static int
check_args(struct rk_runtime *rt, const struct rk_device_args *args)
{
	if (args == NULL || !name_ok(args->name) || args->class == NULL ||
	    args->ops == NULL)
		return EINVAL;
	if (args->ops->version != RK_DEVOPS_VERSION) {
		rk_err(rt, "%s: device ops version %u, want %u", args->name,
		       args->ops->version, RK_DEVOPS_VERSION);
		return EINVAL;
	}
	if (args->block_size != 0 &&
	    (args->block_size & (args->block_size - 1)) != 0)
		return EINVAL;
	if (args->parent != NULL && args->parent->rt != rt)
		return EINVAL;
	return 0;
}

int
rk_device_add(struct rk_runtime *rt, const struct rk_device_args *args,
              struct rk_device **devp)
{
	struct attach_arg aa;
	struct rk_device *dev;
	int error;

	error = check_args(rt, args);
	if (error != 0)
		return error;
	error = rumpuser_malloc(sizeof(*dev), 0, (void **)&dev);
	if (error != 0)
		return error;
	memset(dev, 0, sizeof(*dev));
	dev->rt = rt;
	dev->ops = args->ops;
	dev->softc = args->softc;
	dev->size = args->size;
	dev->block_size = args->block_size;
	dev->read_only = args->read_only;
	if (args->part != NULL) {
		dev->is_partition = true;
		dev->part = *args->part;
		dev->part.label[sizeof(dev->part.label) - 1] = '\0';
	}
	atomic_init(&dev->refs, 1);
	atomic_init(&dev->registered, false);
	error = rk_strdup(args->name, &dev->name);
	if (error != 0)
		goto fail;
	error = rk_strdup(args->class, &dev->class);
	if (error != 0)
		goto fail;

	rumpuser_mutex_enter(rt->dev_lock);
	if (find_locked(rt, dev->name) != NULL) {
		error = EEXIST;
		goto fail_locked;
	}
	if (args->parent != NULL) {
		/* A parent on its way out takes no new children: they would
		 * outlive its removal in the registry. */
		if (!atomic_load(&args->parent->registered) ||
		    args->parent->removing) {
			error = ENOENT;
			goto fail_locked;
		}
		rk_device_hold(args->parent);
		dev->parent = args->parent;
	}
	dev->prev = rt->dev_last;
	if (rt->dev_last != NULL)
		rt->dev_last->next = dev;
	else
		rt->dev_first = dev;
	rt->dev_last = dev;
	atomic_store(&dev->registered, true);
	/* Our own reference for the attach phase: another thread may remove
	 * the device the moment the lock is dropped. */
	rk_device_hold(dev);
	rumpuser_mutex_exit(rt->dev_lock);

	rk_debug(rt, "device %s (%s) added", dev->name, dev->class);
	aa.rt = rt;
	aa.dev = dev;
	(void)rk_component_foreach(attach_cb, &aa);
	rk_device_release(dev);

	if (devp != NULL)
		*devp = dev;
	return 0;

fail_locked:
	rumpuser_mutex_exit(rt->dev_lock);
fail:
	rk_strfree(dev->name);
	rk_strfree(dev->class);
	rumpuser_free(dev, sizeof(*dev));
	return error;
}

/* The newest registered child of dev, held, or NULL.  Under dev_lock. */
static struct rk_device *
last_child_locked(struct rk_runtime *rt, struct rk_device *dev)
{
	struct rk_device *d;

	for (d = rt->dev_last; d != NULL; d = d->prev)
		if (d->parent == dev) {
			rk_device_hold(d);
			return d;
		}
	return NULL;
}

void
rk_device_remove(struct rk_device *dev)
{
	struct rk_runtime *rt = dev->rt;
	struct rk_device *child;

	rumpuser_mutex_enter(rt->dev_lock);
	if (!atomic_load(&dev->registered) || dev->removing) {
		rumpuser_mutex_exit(rt->dev_lock);
		return;
	}
	dev->removing = true;
	/* Children first, newest first: the mirror of how they came. */
	while ((child = last_child_locked(rt, dev)) != NULL) {
		rumpuser_mutex_exit(rt->dev_lock);
		rk_device_remove(child);
		rk_device_release(child);
		rumpuser_mutex_enter(rt->dev_lock);
	}
	if (dev->prev != NULL)
		dev->prev->next = dev->next;
	else
		rt->dev_first = dev->next;
	if (dev->next != NULL)
		dev->next->prev = dev->prev;
	else
		rt->dev_last = dev->prev;
	dev->prev = dev->next = NULL;
	atomic_store(&dev->registered, false);
	rumpuser_mutex_exit(rt->dev_lock);

	rk_debug(rt, "device %s removed", dev->name);
	rk_device_release(dev); /* the registry's reference */
}

void
rk_devices_remove_all(struct rk_runtime *rt)
{
	struct rk_device *dev;

	for (;;) {
		rumpuser_mutex_enter(rt->dev_lock);
		dev = rt->dev_last;
		if (dev != NULL)
			rk_device_hold(dev);
		rumpuser_mutex_exit(rt->dev_lock);
		if (dev == NULL)
			break;
		rk_device_remove(dev);
		rk_device_release(dev);
	}
}

struct rk_device *
rk_device_lookup(struct rk_runtime *rt, const char *name)
{
	struct rk_device *dev;

	if (name == NULL)
		return NULL;
	rumpuser_mutex_enter(rt->dev_lock);
	dev = find_locked(rt, name);
	if (dev != NULL)
		rk_device_hold(dev);
	rumpuser_mutex_exit(rt->dev_lock);
	return dev;
}

int
rk_device_foreach(struct rk_runtime *rt,
                  int (*fn)(struct rk_device *dev, void *arg), void *arg)
{
	struct rk_device **snap, *dev;
	size_t n = 0, i;
	int error, r = 0;

	/*
	 * fn runs on a snapshot of held devices, not under dev_lock: it may
	 * then look devices up, open them or log without deadlocking.
	 */
	rumpuser_mutex_enter(rt->dev_lock);
	for (dev = rt->dev_first; dev != NULL; dev = dev->next)
		n++;
	if (n == 0) {
		rumpuser_mutex_exit(rt->dev_lock);
		return 0;
	}
	error = rumpuser_malloc(n * sizeof(*snap), 0, (void **)&snap);
	if (error != 0) {
		rumpuser_mutex_exit(rt->dev_lock);
		return error;
	}
	for (dev = rt->dev_first, i = 0; dev != NULL; dev = dev->next, i++) {
		rk_device_hold(dev);
		snap[i] = dev;
	}
	rumpuser_mutex_exit(rt->dev_lock);

	for (i = 0; i < n; i++) {
		/* Removed since the snapshot: no longer in the registry. */
		if (r == 0 && atomic_load(&snap[i]->registered))
			r = fn(snap[i], arg);
		rk_device_release(snap[i]);
	}
	rumpuser_free(snap, n * sizeof(*snap));
	return r;
}

const char *
rk_device_name(const struct rk_device *dev)
{
	return dev->name;
}

const char *
rk_device_class(const struct rk_device *dev)
{
	return dev->class;
}

void *
rk_device_softc(const struct rk_device *dev)
{
	return dev->softc;
}

struct rk_device *
rk_device_parent(const struct rk_device *dev)
{
	return dev->parent;
}

struct rk_runtime *
rk_device_runtime(const struct rk_device *dev)
{
	return dev->rt;
}

uint64_t
rk_device_size(const struct rk_device *dev)
{
	return dev->size;
}

uint32_t
rk_device_block_size(const struct rk_device *dev)
{
	return dev->block_size;
}

bool
rk_device_read_only(const struct rk_device *dev)
{
	return dev->read_only;
}

const struct rk_partinfo *
rk_device_partinfo(const struct rk_device *dev)
{
	return dev->is_partition ? &dev->part : NULL;
}

int
rk_device_open(struct rk_device *dev, unsigned mode)
{
	int error;

	if (mode == 0 || (mode & ~(RK_OPEN_READ | RK_OPEN_WRITE)) != 0)
		return EINVAL;
	if ((mode & RK_OPEN_WRITE) && dev->read_only)
		return EROFS;
	if (!atomic_load(&dev->registered))
		return ENXIO;
	if (dev->ops->open != NULL) {
		error = dev->ops->open(dev, mode);
		if (error != 0)
			return error;
	}
	if (mode & RK_OPEN_READ)
		atomic_fetch_add(&dev->opens_read, 1);
	if (mode & RK_OPEN_WRITE)
		atomic_fetch_add(&dev->opens_write, 1);
	return 0;
}

/* Takes one open of counter away; false if there was none. */
static bool
drop_open(atomic_uint *counter)
{
	unsigned old = atomic_load(counter);

	do {
		if (old == 0)
			return false;
	} while (!atomic_compare_exchange_weak(counter, &old, old - 1));
	return true;
}

void
rk_device_close(struct rk_device *dev, unsigned mode)
{
	bool balanced = true;

	/* An unbalanced close is a caller bug; the driver must not see a
	 * close it never saw an open for. */
	if ((mode & RK_OPEN_READ) && !drop_open(&dev->opens_read))
		balanced = false;
	else if ((mode & RK_OPEN_WRITE) && !drop_open(&dev->opens_write)) {
		if (mode & RK_OPEN_READ)
			atomic_fetch_add(&dev->opens_read, 1);
		balanced = false;
	}
	if (!balanced || mode == 0) {
		rk_err(dev->rt, "%s: close (mode %#x) without open", dev->name,
		       mode);
		return;
	}
	if (dev->ops->close != NULL)
		dev->ops->close(dev, mode);
}
