/*
 * The disk components inside a runtime, without IPC: blk_file on an image
 * sfdisk partitioned (both engines: O_DIRECT on a disk-backed directory,
 * buffered on tmpfs or when asked), part_mbr and part_gpt adding the
 * children, partitions forwarding with their offset and bounds, read-only
 * mode, discard and write-zeroes, and blk_mem.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rump/rumpkern.h"

#define M (1u << 20)

struct fixture {
	char dir[256];
	char img[300];
	struct rk_runtime *rt;
};

static bool
have_sfdisk(void)
{
	return system("sfdisk --version >/dev/null 2>&1") == 0;
}

/* An image of size bytes in a fresh directory under base, partitioned by
 * sfdisk from script, filled with a pattern first. */
static void
make_image(struct fixture *f, const char *base, size_t size,
           const char *script)
{
	char cmd[600];
	uint8_t *fill;
	FILE *p;
	int fd;

	snprintf(f->dir, sizeof(f->dir), "%s/rumpd-comp-XXXXXX", base);
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->img, sizeof(f->img), "%s/disk.img", f->dir);
	fd = open(f->img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fill = malloc(size);
	assert_non_null(fill);
	for (size_t i = 0; i < size; i++)
		fill[i] = (uint8_t)(i * 7 + (i >> 9));
	assert_int_equal(pwrite(fd, fill, size, 0), (ssize_t)size);
	free(fill);
	close(fd);
	snprintf(cmd, sizeof(cmd),
	         "sfdisk -q --wipe never '%s' >/dev/null 2>&1", f->img);
	p = popen(cmd, "w");
	assert_non_null(p);
	fputs(script, p);
	assert_int_equal(pclose(p), 0);
}

static void
fixture_free(struct fixture *f)
{
	if (f->rt != NULL)
		rk_runtime_destroy(f->rt);
	unlink(f->img);
	rmdir(f->dir);
	free(f);
}

static struct fixture *
fixture_new(const char *base, const char *script, const char *opts)
{
	struct rk_runtime_opts o = { .name = "test-disk" };
	struct fixture *f = calloc(1, sizeof(*f));
	char args[400];

	assert_non_null(f);
	make_image(f, base, 32 * M, script);
	assert_int_equal(rk_runtime_create(&o, &f->rt), 0);
	snprintf(args, sizeof(args), "%s%s", f->img, opts);
	assert_int_equal(rk_component_create(f->rt, "blk_file", "wd0", args),
	                 0);
	return f;
}

/* The bytes of the image file at off, read behind the runtime's back. */
static void
file_read(const struct fixture *f, void *buf, size_t len, off_t off)
{
	int fd = open(f->img, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static struct rk_device *
lookup(struct fixture *f, const char *name)
{
	struct rk_device *dev = rk_device_lookup(f->rt, name);

	assert_non_null(dev);
	return dev;
}

static const char mbr_script[] =
	"label: dos\n,4MiB,83\n,4MiB,83\n,,5\n,4MiB,83\n,,83\n";

/*
 * Writes through wd0s2 and wd0s5 land at their place in the file and
 * nowhere else; requests outside a partition are refused.  aligned picks
 * a buffer O_DIRECT takes (4096) or one it does not (+512).
 */
static void
check_partitions(struct fixture *f, bool aligned)
{
	struct rk_device *s2 = lookup(f, "wd0s2"), *s5 = lookup(f, "wd0s5");
	const struct rk_partinfo *pi = rk_device_partinfo(s2);
	uint8_t *mem, *buf, *back, *before;
	void *p;

	assert_non_null(pi);
	assert_int_equal(pi->scheme, RK_PART_MBR);
	assert_int_equal(pi->index, 2);
	assert_int_equal(pi->start, 5 * M);
	assert_int_equal(rk_device_size(s2), 4 * M);
	assert_string_equal(rk_device_class(s2), "partition");
	assert_ptr_equal(rk_device_parent(s2), lookup(f, "wd0"));
	rk_device_release(rk_device_parent(s2));

	assert_int_equal(rumpuser_malloc(M + 4096, 4096, &p), 0);
	mem = p;
	buf = aligned ? mem : mem + 512;
	back = malloc(M);
	before = malloc(M);
	assert_non_null(back);
	assert_non_null(before);

	/* the neighbour's last MiB, to see it untouched */
	file_read(f, before, M, (off_t)(pi->start - M));
	for (unsigned i = 0; i < M; i++)
		buf[i] = (uint8_t)(i ^ 0x5a);
	assert_int_equal(rk_io_sync(s2, RK_IO_WRITE, buf, M, 0), M);
	file_read(f, back, M, (off_t)pi->start);
	assert_memory_equal(back, buf, M);
	file_read(f, back, M, (off_t)(pi->start - M));
	assert_memory_equal(back, before, M);
	memset(buf, 0, M);
	assert_int_equal(rk_io_sync(s2, RK_IO_READ, buf, M, 0), M);
	file_read(f, back, M, (off_t)pi->start);
	assert_memory_equal(back, buf, M);

	/* the last sector of wd0s2, and one past it */
	assert_int_equal(rk_io_sync(s2, RK_IO_WRITE, buf, 512, 4 * M - 512),
	                 512);
	assert_int_equal(rk_io_sync(s2, RK_IO_WRITE, buf, 1024, 4 * M - 512),
	                 -ENOSPC);
	assert_int_equal(rk_io_sync(s2, RK_IO_READ, buf, 512, 4 * M),
	                 -EINVAL);
	assert_int_equal(rk_io_sync(s2, RK_IO_READ, buf, 512, 100), -EINVAL);

	/* a logical partition */
	pi = rk_device_partinfo(s5);
	assert_non_null(pi);
	assert_int_equal(pi->index, 5);
	for (unsigned i = 0; i < 4096; i++)
		buf[i] = (uint8_t)(i * 3);
	assert_int_equal(rk_io_sync(s5, RK_IO_WRITE, buf, 4096, 8192), 4096);
	file_read(f, back, 4096, (off_t)(pi->start + 8192));
	assert_memory_equal(back, buf, 4096);

	/* discard and write-zeroes read back as zeroes */
	assert_int_equal(rk_io_sync(s2, RK_IO_DISCARD, NULL, M, M), 0);
	assert_int_equal(rk_io_sync(s2, RK_IO_WRITE_ZEROES, NULL, 8192,
	                            3 * M), 0);
	memset(before, 0, M);
	assert_int_equal(rk_io_sync(s2, RK_IO_READ, buf, M, M), M);
	assert_memory_equal(buf, before, M);
	assert_int_equal(rk_io_sync(s2, RK_IO_READ, buf, 8192, 3 * M), 8192);
	assert_memory_equal(buf, before, 8192);
	assert_int_equal(rk_io_sync(s2, RK_IO_FLUSH, NULL, 0, 0), 0);

	free(back);
	free(before);
	rumpuser_free(mem, M + 4096);
	rk_device_release(s2);
	rk_device_release(s5);
}

static void
test_mbr_direct(void **state)
{
	struct fixture *f;

	(void)state;
	if (!have_sfdisk())
		skip();
	/* the build directory is on a disk file system: O_DIRECT works */
	f = fixture_new(".", mbr_script, "");
	check_partitions(f, true);
	check_partitions(f, false);
	fixture_free(f);
}

static void
test_mbr_buffered(void **state)
{
	struct fixture *f;
	struct stat st;

	(void)state;
	if (!have_sfdisk())
		skip();
	f = fixture_new(".", mbr_script, ",buffered");
	check_partitions(f, true);
	fixture_free(f);
	/* tmpfs cannot do O_DIRECT: the buffered engine alone */
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)) {
		f = fixture_new("/dev/shm", mbr_script, "");
		check_partitions(f, true);
		fixture_free(f);
	}
}

static void
test_gpt_children(void **state)
{
	static const char script[] =
		"label: gpt\n"
		"size=4MiB, type=L, name=\"alpha\"\n"
		"size=4MiB, type=S, name=\"beta\"\n";
	struct rk_device *dev;
	const struct rk_partinfo *pi;
	struct fixture *f;

	(void)state;
	if (!have_sfdisk())
		skip();
	f = fixture_new(".", script, ",ro");
	dev = lookup(f, "wd0s2");
	pi = rk_device_partinfo(dev);
	assert_non_null(pi);
	assert_int_equal(pi->scheme, RK_PART_GPT);
	assert_int_equal(pi->start, 5 * M);
	assert_int_equal(pi->length, 4 * M);
	assert_string_equal(pi->label, "beta");
	assert_true(rk_device_read_only(dev));
	assert_null(rk_device_lookup(f->rt, "wd0s3"));
	{
		uint8_t buf[512] = { 0 };

		assert_int_equal(rk_io_sync(dev, RK_IO_WRITE, buf, 512, 0),
		                 -EROFS);
		assert_int_equal(rk_io_sync(dev, RK_IO_READ, buf, 512, 0),
		                 512);
	}
	rk_device_release(dev);
	fixture_free(f);
}

static void
test_blk_file_refuses(void **state)
{
	struct rk_runtime_opts o = { .name = "test-disk" };
	struct rk_runtime *rt;

	(void)state;
	assert_int_equal(rk_runtime_create(&o, &rt), 0);
	assert_int_equal(rk_component_create(rt, "blk_file", "wd0",
	                                     "/nonexistent/disk.img"), ENOENT);
	assert_int_equal(rk_component_create(rt, "blk_file", "wd0", ",ro"),
	                 EINVAL);
	assert_int_equal(rk_component_create(rt, "blk_file", "wd0",
	                                     "/dev/null"),
	                 EINVAL);
	assert_null(rk_device_lookup(rt, "wd0"));
	rk_runtime_destroy(rt);
}

static void
test_blk_mem(void **state)
{
	struct rk_runtime_opts o = { .name = "test-disk" };
	struct rk_runtime *rt;
	struct rk_device *md;
	uint8_t buf[4096], zero[4096] = { 0 };

	(void)state;
	assert_int_equal(rk_runtime_create(&o, &rt), 0);
	assert_int_equal(rk_component_create(rt, "blk_mem", "md0", "12Q"),
	                 EINVAL);
	assert_int_equal(rk_component_create(rt, "blk_mem", "md0", "1000"),
	                 EINVAL);
	assert_int_equal(rk_component_create(rt, "blk_mem", "md0", "2M"), 0);
	md = rk_device_lookup(rt, "md0");
	assert_non_null(md);
	assert_int_equal(rk_device_size(md), 2 * M);
	assert_string_equal(rk_device_class(md), "disk");

	assert_int_equal(rk_io_sync(md, RK_IO_READ, buf, 4096, M), 4096);
	assert_memory_equal(buf, zero, 4096);
	memset(buf, 0xab, sizeof(buf));
	assert_int_equal(rk_io_sync(md, RK_IO_WRITE, buf, 4096, M), 4096);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(rk_io_sync(md, RK_IO_READ, buf, 4096, M), 4096);
	assert_int_equal(buf[0], 0xab);
	assert_int_equal(buf[4095], 0xab);
	assert_int_equal(rk_io_sync(md, RK_IO_DISCARD, NULL, 4096, M), 0);
	assert_int_equal(rk_io_sync(md, RK_IO_READ, buf, 4096, M), 4096);
	assert_memory_equal(buf, zero, 4096);
	assert_int_equal(rk_io_sync(md, RK_IO_READ, buf, 4096, 2 * M),
	                 -EINVAL);
	rk_device_release(md);
	rk_runtime_destroy(rt);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mbr_direct),
		cmocka_unit_test(test_mbr_buffered),
		cmocka_unit_test(test_gpt_children),
		cmocka_unit_test(test_blk_file_refuses),
		cmocka_unit_test(test_blk_mem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
