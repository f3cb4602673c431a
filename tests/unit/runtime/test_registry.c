/*
 * Components, devices and I/O validation, with fake components declared
 * here: "fake_disk" makes disks, "fake_part" gives disks two partitions,
 * "fake_raw" and "fake_raw2" compete for disks named raw*.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rump/rumpkern.h"

/* ---- fake devices ----------------------------------------------------- */

/* What a fake device reports to the test that made it. */
struct tracker {
	unsigned destroyed;
	char destroy_order[16][32];
	unsigned strategies;
	struct rk_io *held;     /* with hold_io: not completed yet */
	bool hold_io;
	unsigned opens, closes;
	int open_error;
};

struct fake_softc {
	struct tracker *tr;     /* NULL for component-made disks */
	char name[32];
	unsigned attached;      /* how many components took this disk */
};

static void
fake_strategy(struct rk_device *dev, struct rk_io *io)
{
	struct fake_softc *sc = rk_device_softc(dev);

	if (sc->tr != NULL) {
		sc->tr->strategies++;
		if (sc->tr->hold_io) {
			sc->tr->held = io;
			return;
		}
	}
	if (io->op == RK_IO_READ)
		memset(io->data, 0x5a, io->len);
	rk_io_done(io, io->op == RK_IO_READ || io->op == RK_IO_WRITE ?
	           (int64_t)io->len : 0);
}

static int
fake_open(struct rk_device *dev, unsigned mode)
{
	struct fake_softc *sc = rk_device_softc(dev);

	(void)mode;
	if (sc->tr == NULL)
		return 0;
	if (sc->tr->open_error != 0)
		return sc->tr->open_error;
	sc->tr->opens++;
	return 0;
}

static void
fake_close(struct rk_device *dev, unsigned mode)
{
	struct fake_softc *sc = rk_device_softc(dev);

	(void)mode;
	if (sc->tr != NULL)
		sc->tr->closes++;
}

static void
fake_destroy(struct rk_device *dev)
{
	struct fake_softc *sc = rk_device_softc(dev);

	if (sc->tr != NULL && sc->tr->destroyed < 16)
		snprintf(sc->tr->destroy_order[sc->tr->destroyed], 32, "%s",
		         rk_device_name(dev));
	if (sc->tr != NULL)
		sc->tr->destroyed++;
	free(sc);
}

static const struct rk_devops fake_ops = {
	.version = RK_DEVOPS_VERSION,
	.open = fake_open,
	.close = fake_close,
	.strategy = fake_strategy,
	.destroy = fake_destroy,
};

static int
add_fake(struct rk_runtime *rt, const char *name, const char *class,
         struct rk_device *parent, uint64_t size, uint32_t bs, bool ro,
         struct tracker *tr, struct rk_device **devp)
{
	struct fake_softc *sc = calloc(1, sizeof(*sc));
	struct rk_device_args args = {
		.name = name, .class = class, .ops = &fake_ops, .softc = sc,
		.parent = parent, .size = size, .block_size = bs,
		.read_only = ro,
	};
	int error;

	assert_non_null(sc);
	sc->tr = tr;
	snprintf(sc->name, sizeof(sc->name), "%s", name);
	error = rk_device_add(rt, &args, devp);
	if (error != 0)
		free(sc); /* not added: still ours */
	return error;
}

/* ---- fake components -------------------------------------------------- */

static int
fake_disk_create(struct rk_runtime *rt, const char *instance,
                 const char *args)
{
	uint64_t size = args != NULL ? strtoull(args, NULL, 0) : 0;

	return add_fake(rt, instance, "disk", NULL, size, 512, false, NULL,
	                NULL);
}

static const struct rk_component fake_disk = {
	.version = RK_COMPONENT_VERSION,
	.name = "fake_disk",
	.create = fake_disk_create,
};
RK_COMPONENT(fake_disk);

static int
fake_part_attach(struct rk_runtime *rt, struct rk_device *parent)
{
	const char *name = rk_device_name(parent);
	struct fake_softc *sc = rk_device_softc(parent);
	uint64_t half = rk_device_size(parent) / 2;
	char child[32];
	int i, error;

	if (strncmp(name, "raw", 3) == 0)
		return ENODEV;
	if (strncmp(name, "bad", 3) == 0)
		return EIO;
	sc->attached++;
	/* Children are added from inside attach: the registry must not be
	 * locked here. */
	for (i = 1; i <= 2; i++) {
		snprintf(child, sizeof(child), "%ss%d", name, i);
		error = add_fake(rt, child, "partition", parent, half, 512,
		                 rk_device_read_only(parent), sc->tr, NULL);
		if (error != 0)
			return error;
	}
	return 0;
}

static const struct rk_component fake_part = {
	.version = RK_COMPONENT_VERSION,
	.name = "fake_part",
	.attach_class = "disk",
	.attach = fake_part_attach,
};
RK_COMPONENT(fake_part);

static int
fake_raw_attach(struct rk_runtime *rt, struct rk_device *parent)
{
	struct fake_softc *sc = rk_device_softc(parent);

	(void)rt;
	if (strncmp(rk_device_name(parent), "raw", 3) != 0)
		return ENODEV;
	sc->attached++;
	return 0;
}

/* Two components that both want raw* disks: only one may get each. */
static const struct rk_component fake_raw = {
	.version = RK_COMPONENT_VERSION,
	.name = "fake_raw",
	.attach_class = "disk",
	.attach = fake_raw_attach,
};
RK_COMPONENT(fake_raw);
static const struct rk_component fake_raw2 = {
	.version = RK_COMPONENT_VERSION,
	.name = "fake_raw2",
	.attach_class = "disk",
	.attach = fake_raw_attach,
};
RK_COMPONENT(fake_raw2);

/* Of another age: must be invisible. */
static const struct rk_component fake_old = {
	.version = RK_COMPONENT_VERSION + 1,
	.name = "fake_old",
	.create = fake_disk_create,
};
RK_COMPONENT(fake_old);

/* ---- helpers ---------------------------------------------------------- */

static struct rk_runtime *
new_runtime(const char *name)
{
	struct rk_runtime_opts opts = { .name = name };
	struct rk_runtime *rt;

	assert_int_equal(rk_runtime_create(&opts, &rt), 0);
	return rt;
}

struct names {
	char list[16][32];
	unsigned n, stop_at;
};

static int
collect(struct rk_device *dev, void *arg)
{
	struct names *nm = arg;

	if (nm->n < 16)
		snprintf(nm->list[nm->n], 32, "%s", rk_device_name(dev));
	nm->n++;
	return nm->stop_at != 0 && nm->n == nm->stop_at ? 42 : 0;
}

static int
count_component(const struct rk_component *c, void *arg)
{
	(void)c;
	(*(unsigned *)arg)++;
	return 0;
}

/* ---- tests ------------------------------------------------------------ */

static void
test_components(void **state)
{
	const struct rk_component *c;
	struct rk_runtime *rt = new_runtime("test-comp");
	unsigned n = 0;

	(void)state;
	c = rk_component_find("fake_part");
	assert_non_null(c);
	assert_string_equal(c->attach_class, "disk");
	assert_null(rk_component_find("nonesuch"));
	assert_null(rk_component_find("fake_old"));
	assert_int_equal(rk_component_foreach(count_component, &n), 0);
	assert_int_equal(n, 4);

	assert_int_equal(rk_component_create(rt, "nonesuch", "x", NULL),
	                 ENOENT);
	assert_int_equal(rk_component_create(rt, "fake_part", "x", NULL),
	                 EOPNOTSUPP);
	assert_int_equal(rk_component_create(rt, "fake_old", "x", NULL),
	                 ENOENT);
	rk_runtime_destroy(rt);
}

static void
test_attach_and_lookup(void **state)
{
	struct rk_runtime *rt = new_runtime("test-attach");
	struct rk_device *wd0, *s1, *s2, *raw, *bad;
	struct fake_softc *sc;
	struct names nm = { 0 };

	(void)state;
	assert_int_equal(rk_component_create(rt, "fake_disk", "wd0", "1048576"),
	                 0);
	assert_int_equal(rk_component_create(rt, "fake_disk", "wd0", "4096"),
	                 EEXIST);
	wd0 = rk_device_lookup(rt, "wd0");
	assert_non_null(wd0);
	assert_string_equal(rk_device_class(wd0), "disk");
	assert_int_equal(rk_device_size(wd0), 1048576);
	assert_int_equal(rk_device_block_size(wd0), 512);
	assert_ptr_equal(rk_device_runtime(wd0), rt);
	assert_null(rk_device_parent(wd0));
	sc = rk_device_softc(wd0);
	assert_int_equal(sc->attached, 1);

	s1 = rk_device_lookup(rt, "wd0s1");
	s2 = rk_device_lookup(rt, "wd0s2");
	assert_non_null(s1);
	assert_non_null(s2);
	assert_ptr_equal(rk_device_parent(s1), wd0);
	assert_string_equal(rk_device_class(s2), "partition");
	assert_int_equal(rk_device_size(s2), 524288);

	/* fake_part declines (ENODEV): exactly one of the raw components
	 * takes it, the other never sees it. */
	assert_int_equal(rk_component_create(rt, "fake_disk", "raw0", "4096"),
	                 0);
	raw = rk_device_lookup(rt, "raw0");
	assert_int_equal(((struct fake_softc *)rk_device_softc(raw))->attached,
	                 1);
	assert_null(rk_device_lookup(rt, "raw0s1"));

	/* An attach that fails is logged; the device stays. */
	assert_int_equal(rk_component_create(rt, "fake_disk", "bad0", "4096"),
	                 0);
	bad = rk_device_lookup(rt, "bad0");
	assert_non_null(bad);

	assert_int_equal(rk_device_foreach(rt, collect, &nm), 0);
	assert_int_equal(nm.n, 5);
	assert_string_equal(nm.list[0], "wd0");
	assert_string_equal(nm.list[1], "wd0s1");
	assert_string_equal(nm.list[2], "wd0s2");
	assert_string_equal(nm.list[3], "raw0");
	assert_string_equal(nm.list[4], "bad0");
	memset(&nm, 0, sizeof(nm));
	nm.stop_at = 2;
	assert_int_equal(rk_device_foreach(rt, collect, &nm), 42);
	assert_int_equal(nm.n, 2);

	assert_null(rk_device_lookup(rt, "wd1"));
	assert_null(rk_device_lookup(rt, NULL));
	rk_device_release(s1);
	rk_device_release(s2);
	rk_device_release(raw);
	rk_device_release(bad);
	rk_device_release(wd0);
	rk_runtime_destroy(rt);
}

static void
test_remove_and_refs(void **state)
{
	struct rk_runtime *rt = new_runtime("test-remove");
	struct tracker tr = { 0 };
	struct rk_device *disk, *child, *held, *orphan;
	struct names nm = { 0 };

	(void)state;
	assert_int_equal(add_fake(rt, "sd0", "disk", NULL, 8192, 512, false,
	                          &tr, &disk), 0);
	child = rk_device_lookup(rt, "sd0s2");
	assert_non_null(child);

	/* Removing the parent takes the children with it, newest first, but
	 * a held child lives on until released. */
	held = rk_device_lookup(rt, "sd0");
	rk_device_remove(disk);
	assert_null(rk_device_lookup(rt, "sd0"));
	assert_null(rk_device_lookup(rt, "sd0s1"));
	assert_null(rk_device_lookup(rt, "sd0s2"));
	assert_int_equal(tr.destroyed, 1); /* sd0s1: nobody held it */
	assert_string_equal(tr.destroy_order[0], "sd0s1");
	assert_int_equal(rk_device_foreach(rt, collect, &nm), 0);
	assert_int_equal(nm.n, 0);

	/* Gone from the registry: open says so, names still readable. */
	assert_string_equal(rk_device_name(child), "sd0s2");
	assert_int_equal(rk_device_open(child, RK_OPEN_READ), ENXIO);
	/* No new children for a removed parent. */
	assert_int_equal(add_fake(rt, "sd0s9", "partition", held, 512, 512,
	                          false, &tr, &orphan), ENOENT);
	/* The name is free again. */
	assert_int_equal(add_fake(rt, "sd0", "other", NULL, 0, 0, false, &tr,
	                          NULL), 0);

	rk_device_release(child);
	assert_int_equal(tr.destroyed, 2);
	/* The child held its parent: the parent goes last. */
	rk_device_release(held);
	assert_int_equal(tr.destroyed, 3);
	assert_string_equal(tr.destroy_order[2], "sd0");
	rk_runtime_destroy(rt);
	assert_int_equal(tr.destroyed, 4);
}

static void
test_bad_args(void **state)
{
	struct rk_runtime *rt = new_runtime("test-args");
	struct rk_runtime *rt2 = new_runtime("test-args2");
	static const struct rk_devops old_ops = { .version = 99 };
	struct rk_device_args args = { .name = "x", .class = "c",
	                               .ops = &old_ops };
	struct rk_device *other;
	struct tracker tr = { 0 };

	(void)state;
	assert_int_equal(rk_device_add(rt, &args, NULL), EINVAL);
	args.ops = NULL;
	assert_int_equal(rk_device_add(rt, &args, NULL), EINVAL);
	args.ops = &fake_ops;
	args.name = "";
	assert_int_equal(rk_device_add(rt, &args, NULL), EINVAL);
	args.name = "a-name-of-thirty-two-characters!";
	assert_int_equal(rk_device_add(rt, &args, NULL), EINVAL);
	args.name = "x";
	args.block_size = 768;
	assert_int_equal(rk_device_add(rt, &args, NULL), EINVAL);
	args.block_size = 0;
	args.class = NULL;
	assert_int_equal(rk_device_add(rt, &args, NULL), EINVAL);

	/* A parent from another runtime. */
	assert_int_equal(add_fake(rt2, "p", "thing", NULL, 0, 0, false, &tr,
	                          &other), 0);
	assert_int_equal(add_fake(rt, "c", "thing", other, 0, 0, false, &tr,
	                          NULL), EINVAL);
	rk_runtime_destroy(rt2);
	assert_int_equal(tr.destroyed, 1);
	rk_runtime_destroy(rt);
}

/* Same names in two runtimes of one process: no crosstalk. */
static void
test_two_runtimes(void **state)
{
	struct rk_runtime *a = new_runtime("test-a");
	struct rk_runtime *b = new_runtime("test-b");
	struct rk_device *da, *db;
	struct names na = { 0 }, nb = { 0 };

	(void)state;
	assert_string_equal(rk_runtime_name(a), "test-a");
	assert_string_equal(rk_runtime_name(b), "test-b");
	assert_true(rk_runtime_boot_id(a) != rk_runtime_boot_id(b));

	assert_int_equal(rk_component_create(a, "fake_disk", "wd0", "1048576"),
	                 0);
	assert_int_equal(rk_component_create(b, "fake_disk", "wd0", "2097152"),
	                 0);
	da = rk_device_lookup(a, "wd0");
	db = rk_device_lookup(b, "wd0");
	assert_non_null(da);
	assert_non_null(db);
	assert_ptr_not_equal(da, db);
	assert_int_equal(rk_device_size(da), 1048576);
	assert_int_equal(rk_device_size(db), 2097152);
	assert_ptr_equal(rk_device_runtime(db), b);

	rk_device_remove(da);
	assert_null(rk_device_lookup(a, "wd0s1"));
	rk_device_release(da);
	assert_int_equal(rk_device_foreach(a, collect, &na), 0);
	assert_int_equal(na.n, 0);
	assert_int_equal(rk_device_foreach(b, collect, &nb), 0);
	assert_int_equal(nb.n, 3);
	rk_device_release(db);
	rk_runtime_destroy(a);
	rk_runtime_destroy(b);
}

static void
test_destroy_order(void **state)
{
	struct rk_runtime *rt = new_runtime("test-order");
	struct tracker tr = { 0 };

	(void)state;
	assert_int_equal(add_fake(rt, "d1", "disk", NULL, 4096, 512, false, &tr,
	                          NULL), 0);
	assert_int_equal(add_fake(rt, "n0", "nic", NULL, 0, 0, false, &tr,
	                          NULL), 0);
	rk_runtime_destroy(rt);
	assert_int_equal(tr.destroyed, 4);
	assert_string_equal(tr.destroy_order[0], "n0");
	assert_string_equal(tr.destroy_order[1], "d1s2");
	assert_string_equal(tr.destroy_order[2], "d1s1");
	assert_string_equal(tr.destroy_order[3], "d1");
}

static void
test_open_close(void **state)
{
	struct rk_runtime *rt = new_runtime("test-open");
	struct tracker tr = { 0 };
	struct rk_device *ro, *rw;

	(void)state;
	assert_int_equal(add_fake(rt, "ro", "nic", NULL, 0, 0, true, &tr, &ro),
	                 0);
	assert_int_equal(add_fake(rt, "rw", "nic", NULL, 0, 0, false, &tr,
	                          &rw), 0);
	assert_true(rk_device_read_only(ro));
	assert_int_equal(rk_device_open(ro, RK_OPEN_WRITE), EROFS);
	assert_int_equal(rk_device_open(ro, RK_OPEN_READ | RK_OPEN_WRITE),
	                 EROFS);
	assert_int_equal(rk_device_open(ro, 0), EINVAL);
	assert_int_equal(rk_device_open(ro, 0x10), EINVAL);
	assert_int_equal(tr.opens, 0);
	assert_int_equal(rk_device_open(ro, RK_OPEN_READ), 0);
	assert_int_equal(rk_device_open(rw, RK_OPEN_READ | RK_OPEN_WRITE), 0);
	assert_int_equal(tr.opens, 2);

	tr.open_error = EBUSY;
	assert_int_equal(rk_device_open(rw, RK_OPEN_WRITE), EBUSY);
	tr.open_error = 0;

	rk_device_close(ro, RK_OPEN_READ);
	/* Not open for writing: refused, the driver never hears of it. */
	rk_device_close(ro, RK_OPEN_WRITE);
	assert_int_equal(tr.closes, 1);
	rk_device_close(rw, RK_OPEN_READ | RK_OPEN_WRITE);
	rk_device_close(rw, RK_OPEN_READ | RK_OPEN_WRITE);
	assert_int_equal(tr.closes, 2);
	rk_runtime_destroy(rt);
}

struct io_result {
	unsigned calls;
	int64_t result;
};

static void
io_done(struct rk_io *io)
{
	struct io_result *r = io->arg;

	r->calls++;
	r->result = io->result;
}

/* Submits and returns the result; done must have run exactly once. */
static int64_t
do_io(struct rk_device *dev, enum rk_io_op op, uint64_t off, uint64_t len,
      void *data)
{
	struct io_result r = { 0 };
	struct rk_io io = {
		.op = op, .offset = off, .len = len, .data = data,
		.done = io_done, .arg = &r,
	};

	rk_io_submit(dev, &io);
	assert_int_equal(r.calls, 1);
	assert_int_equal(io.result, r.result);
	assert_ptr_equal(io.dev, dev);
	return r.result;
}

static void
test_io_validation(void **state)
{
	struct rk_runtime *rt = new_runtime("test-io");
	struct tracker tr = { 0 }, trro = { 0 };
	struct rk_device *dev, *ro;
	static unsigned char buf[8192];
	struct rk_counters c;
	unsigned before;

	(void)state;
	assert_int_equal(add_fake(rt, "v0", "blk", NULL, 1 << 20, 512, false,
	                          &tr, &dev), 0);
	assert_int_equal(add_fake(rt, "v1", "blk", NULL, 1 << 20, 512, true,
	                          &trro, &ro), 0);

	assert_int_equal(do_io(dev, RK_IO_READ, 0, 4096, buf), 4096);
	assert_int_equal(buf[4095], 0x5a);
	assert_int_equal(do_io(dev, RK_IO_WRITE, (1 << 20) - 512, 512, buf),
	                 512);
	assert_int_equal(do_io(dev, RK_IO_FLUSH, 12345, 7, NULL), 0);
	assert_int_equal(do_io(dev, RK_IO_DISCARD, 0, 1 << 20, NULL), 0);
	assert_int_equal(do_io(dev, RK_IO_WRITE_ZEROES, 512, 1024, NULL), 0);
	assert_int_equal(tr.strategies, 5);

	before = tr.strategies;
	/* Misaligned offset or length. */
	assert_int_equal(do_io(dev, RK_IO_READ, 100, 512, buf), -EINVAL);
	assert_int_equal(do_io(dev, RK_IO_WRITE, 512, 100, buf), -EINVAL);
	assert_int_equal(do_io(dev, RK_IO_DISCARD, 256, 512, NULL), -EINVAL);
	/* Past the end: reads are invalid, writes find no room. */
	assert_int_equal(do_io(dev, RK_IO_READ, 1 << 20, 512, buf), -EINVAL);
	assert_int_equal(do_io(dev, RK_IO_READ, (1 << 20) - 512, 1024, buf),
	                 -EINVAL);
	assert_int_equal(do_io(dev, RK_IO_WRITE, (1 << 20) - 512, 1024, buf),
	                 -ENOSPC);
	assert_int_equal(do_io(dev, RK_IO_WRITE_ZEROES, 2 << 20, 512, NULL),
	                 -ENOSPC);
	/* offset + len wraps around 2^64: still out of range. */
	assert_int_equal(do_io(dev, RK_IO_WRITE, UINT64_MAX - 511, 1024, buf),
	                 -ENOSPC);
	assert_int_equal(do_io(dev, RK_IO_READ, 512, UINT64_MAX - 511, buf),
	                 -EINVAL);
	/* No buffer, unknown op. */
	assert_int_equal(do_io(dev, RK_IO_READ, 0, 512, NULL), -EINVAL);
	assert_int_equal(do_io(dev, (enum rk_io_op)77, 0, 512, buf), -EINVAL);
	/* Length 0: done at once, the driver is not bothered. */
	assert_int_equal(do_io(dev, RK_IO_READ, 0, 0, NULL), 0);
	assert_int_equal(do_io(dev, RK_IO_WRITE, 1 << 20, 0, buf), 0);
	assert_int_equal(tr.strategies, before);

	/* Read-only: reads and flushes pass, anything that writes not. */
	assert_int_equal(do_io(ro, RK_IO_READ, 0, 512, buf), 512);
	assert_int_equal(do_io(ro, RK_IO_FLUSH, 0, 0, NULL), 0);
	assert_int_equal(do_io(ro, RK_IO_WRITE, 0, 512, buf), -EROFS);
	assert_int_equal(do_io(ro, RK_IO_DISCARD, 0, 512, NULL), -EROFS);
	assert_int_equal(do_io(ro, RK_IO_WRITE_ZEROES, 0, 512, NULL), -EROFS);
	assert_int_equal(trro.strategies, 2);

	rk_device_counters(dev, &c);
	assert_int_equal(c.reads, 1 + 2 + 2 + 1 + 1);
	assert_int_equal(c.bytes_read, 4096);
	assert_int_equal(c.writes, 1 + 2 + 1 + 1);
	assert_int_equal(c.bytes_written, 512);
	assert_int_equal(c.flushes, 1);
	assert_int_equal(c.discards, 2);
	assert_int_equal(c.write_zeroes, 2);
	assert_int_equal(c.errors, 11);
	assert_int_equal(c.in_flight, 0);

	rk_device_counters(ro, &c);
	assert_int_equal(c.reads, 1);
	assert_int_equal(c.writes, 1);
	assert_int_equal(c.errors, 3);
	rk_runtime_destroy(rt);
}

/* A driver that completes later: in flight until then, busy time counted. */
static void
test_io_async_counters(void **state)
{
	struct rk_runtime *rt = new_runtime("test-ctr");
	struct tracker tr = { .hold_io = true };
	struct io_result r = { 0 };
	unsigned char buf[512];
	struct rk_counters c;
	struct rk_device *dev;
	struct rk_io io = {
		.op = RK_IO_READ, .offset = 0, .len = 512, .data = buf,
		.done = io_done, .arg = &r,
	};

	(void)state;
	/* Size 0: no range to check (a NIC, say). */
	assert_int_equal(add_fake(rt, "late", "nic", NULL, 0, 0, false, &tr,
	                          &dev), 0);
	rk_io_submit(dev, &io);
	assert_int_equal(r.calls, 0);
	assert_ptr_equal(tr.held, &io);
	rk_device_counters(dev, &c);
	assert_int_equal(c.in_flight, 1);
	assert_int_equal(c.reads, 0);

	assert_int_equal(rumpuser_clock_sleep(2000000), 0);
	rk_io_done(&io, -EIO);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.result, -EIO);
	rk_device_counters(dev, &c);
	assert_int_equal(c.in_flight, 0);
	assert_int_equal(c.reads, 1);
	assert_int_equal(c.bytes_read, 0);
	assert_int_equal(c.errors, 1);
	assert_true(c.busy_ns >= 2000000);
	rk_runtime_destroy(rt);
}

/* A driver that completes from another thread: the timer's. */
static void
complete_held(struct rk_timer *timer, void *arg)
{
	struct tracker *tr = arg;

	(void)timer;
	memset(tr->held->data, 0x33, tr->held->len);
	rk_io_done(tr->held, (int64_t)tr->held->len);
}

static void
test_io_sync_and_partinfo(void **state)
{
	struct rk_runtime *rt = new_runtime("test-sync");
	struct tracker tr = { .hold_io = true };
	struct rk_partinfo pi = {
		.scheme = RK_PART_GPT, .index = 3, .start = 1 << 20,
		.length = 4096, .label = "boot",
	};
	struct fake_softc *sc = calloc(1, sizeof(*sc));
	struct rk_device_args args = {
		.name = "sd0s3", .class = "partition", .ops = &fake_ops,
		.softc = sc, .size = 4096, .block_size = 512, .part = &pi,
	};
	unsigned char buf[1024];
	struct rk_timer timer;
	struct rk_device *dev, *disk;

	(void)state;
	assert_non_null(sc);
	sc->tr = &tr;
	assert_int_equal(rk_device_add(rt, &args, &dev), 0);
	pi.index = 99; /* the device keeps its own copy */
	assert_non_null(rk_device_partinfo(dev));
	assert_int_equal(rk_device_partinfo(dev)->index, 3);
	assert_int_equal(rk_device_partinfo(dev)->start, 1 << 20);
	assert_string_equal(rk_device_partinfo(dev)->label, "boot");

	rk_timer_init(rt, &timer, complete_held, &tr);
	rk_timer_arm(&timer, 5000000);
	assert_int_equal(rk_io_sync(dev, RK_IO_READ, buf, sizeof(buf), 0),
	                 (int64_t)sizeof(buf));
	assert_int_equal(buf[0], 0x33);
	assert_int_equal(buf[sizeof(buf) - 1], 0x33);
	/* Rejected before the driver sees it: past the end. */
	assert_int_equal(rk_io_sync(dev, RK_IO_READ, buf, 1024, 4096),
	                 -EINVAL);

	assert_int_equal(add_fake(rt, "whole", "disk0", NULL, 8192, 512,
	                          false, NULL, &disk), 0);
	assert_null(rk_device_partinfo(disk));
	rk_runtime_destroy(rt);
}

static void
test_runtime_bio(void **state)
{
	struct rk_runtime_opts opts = { .name = "test-bio", .bio_depth = 8 };
	struct rumpuser_bio *b1, *b2;
	struct rk_runtime *rt;

	(void)state;
	assert_int_equal(rk_runtime_create(&opts, &rt), 0);
	assert_int_equal(rk_runtime_bio(rt, &b1), 0);
	assert_int_equal(rk_runtime_bio(rt, &b2), 0);
	assert_ptr_equal(b1, b2);
	assert_true(rk_now_ns() > 0);
	rk_info(rt, "runtime %s logs with its name", rk_runtime_name(rt));
	rk_runtime_destroy(rt);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_components),
		cmocka_unit_test(test_attach_and_lookup),
		cmocka_unit_test(test_remove_and_refs),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_two_runtimes),
		cmocka_unit_test(test_destroy_order),
		cmocka_unit_test(test_open_close),
		cmocka_unit_test(test_io_validation),
		cmocka_unit_test(test_io_async_counters),
		cmocka_unit_test(test_io_sync_and_partinfo),
		cmocka_unit_test(test_runtime_bio),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
