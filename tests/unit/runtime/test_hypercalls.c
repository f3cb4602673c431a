/* The small hypercalls: init, memory, threads, locks, clock, random, log,
 * files, shared memory and doorbells. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "rump/rumpuser.h"

static void
test_init_version(void **state)
{
	(void)state;
	assert_int_equal(rumpuser_init(RUMPUSER_VERSION), 0);
	assert_int_equal(rumpuser_init(RUMPUSER_VERSION + 1), ENOTSUP);
}

static void
test_malloc_align(void **state)
{
	size_t aligns[] = { 0, 1, 8, 64, 4096 };
	void *p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
		assert_int_equal(rumpuser_malloc(1000, aligns[i], &p), 0);
		if (aligns[i] != 0)
			assert_int_equal((uintptr_t)p % aligns[i], 0);
		memset(p, 0xee, 1000);
		rumpuser_free(p, 1000);
	}
	assert_int_equal(rumpuser_malloc(16, 48, &p), EINVAL);
	assert_int_equal(rumpuser_malloc(0, 0, &p), 0);
	assert_non_null(p);
	rumpuser_free(p, 0);
}

struct shared {
	struct rumpuser_mtx *mtx;
	struct rumpuser_cv *cv;
	int stage;
	unsigned long counter;
};

static void *
worker(void *arg)
{
	struct shared *s = arg;
	int i;

	for (i = 0; i < 100000; i++) {
		rumpuser_mutex_enter(s->mtx);
		s->counter++;
		rumpuser_mutex_exit(s->mtx);
	}
	rumpuser_mutex_enter(s->mtx);
	s->stage++;
	rumpuser_cv_broadcast(s->cv);
	rumpuser_mutex_exit(s->mtx);
	return s;
}

static void *
own_name(void *arg)
{
	/* Named before fn runs, not some time after. */
	if (pthread_getname_np(pthread_self(), arg, 16) != 0)
		strcpy(arg, "getname failed");
	return NULL;
}

static void
test_threads_locks(void **state)
{
	struct rumpuser_thread *t[2];
	struct shared s = { 0 };
	char name[16];
	void *ret;
	int i;

	(void)state;
	assert_int_equal(rumpuser_mutex_init(&s.mtx), 0);
	assert_int_equal(rumpuser_cv_init(&s.cv), 0);
	for (i = 0; i < 2; i++)
		assert_int_equal(rumpuser_thread_create(worker, &s,
		    "a-name-longer-than-fifteen", &t[i]), 0);
	rumpuser_mutex_enter(s.mtx);
	while (s.stage < 2)
		rumpuser_cv_wait(s.cv, s.mtx);
	rumpuser_mutex_exit(s.mtx);
	for (i = 0; i < 2; i++) {
		assert_int_equal(rumpuser_thread_join(t[i], &ret), 0);
		assert_ptr_equal(ret, &s);
	}
	assert_int_equal(s.counter, 200000);

	/* A long name is cut to what the kernel keeps, not refused. */
	memset(name, 0, sizeof(name));
	assert_int_equal(rumpuser_thread_create(own_name, name,
	    "a-name-longer-than-fifteen", &t[0]), 0);
	assert_int_equal(rumpuser_thread_join(t[0], NULL), 0);
	assert_string_equal(name, "a-name-longer-t");

	assert_int_equal(rumpuser_mutex_tryenter(s.mtx), 0);
	rumpuser_mutex_exit(s.mtx);
	rumpuser_cv_destroy(s.cv);
	rumpuser_mutex_destroy(s.mtx);
}

static void
test_rwlock(void **state)
{
	struct rumpuser_rw *rw;

	(void)state;
	assert_int_equal(rumpuser_rw_init(&rw), 0);
	rumpuser_rw_enter(rw, RUMPUSER_RW_READER);
	/* Readers share, a writer waits. */
	assert_int_equal(rumpuser_rw_tryenter(rw, RUMPUSER_RW_READER), 0);
	assert_int_equal(rumpuser_rw_tryenter(rw, RUMPUSER_RW_WRITER), EBUSY);
	rumpuser_rw_exit(rw);
	rumpuser_rw_exit(rw);
	rumpuser_rw_enter(rw, RUMPUSER_RW_WRITER);
	assert_int_equal(rumpuser_rw_tryenter(rw, RUMPUSER_RW_READER), EBUSY);
	rumpuser_rw_exit(rw);
	rumpuser_rw_destroy(rw);
}

static void
test_clock_sleep_timedwait(void **state)
{
	struct rumpuser_mtx *mtx;
	struct rumpuser_cv *cv;
	uint64_t t0, t1, wall;

	(void)state;
	assert_int_equal(rumpuser_clock_gettime(RUMPUSER_CLOCK_WALL, &wall), 0);
	assert_true(wall > 1600000000ULL * 1000000000ULL);
	assert_int_equal(rumpuser_clock_gettime((enum rumpuser_clock)7, &t0),
	                 EINVAL);

	assert_int_equal(rumpuser_clock_gettime(RUMPUSER_CLOCK_MONO, &t0), 0);
	assert_int_equal(rumpuser_clock_sleep(20000000), 0);
	assert_int_equal(rumpuser_clock_gettime(RUMPUSER_CLOCK_MONO, &t1), 0);
	assert_true(t1 - t0 >= 20000000);

	assert_int_equal(rumpuser_mutex_init(&mtx), 0);
	assert_int_equal(rumpuser_cv_init(&cv), 0);
	rumpuser_mutex_enter(mtx);
	assert_int_equal(rumpuser_clock_gettime(RUMPUSER_CLOCK_MONO, &t0), 0);
	assert_int_equal(rumpuser_cv_timedwait(cv, mtx, 15000000), ETIMEDOUT);
	assert_int_equal(rumpuser_clock_gettime(RUMPUSER_CLOCK_MONO, &t1), 0);
	assert_true(t1 - t0 >= 15000000);
	rumpuser_mutex_exit(mtx);
	rumpuser_cv_destroy(cv);
	rumpuser_mutex_destroy(mtx);
}

static void
test_random(void **state)
{
	static unsigned char buf[1 << 20];
	unsigned long zeros = 0;
	size_t i;

	(void)state;
	memset(buf, 0, sizeof(buf));
	assert_int_equal(rumpuser_getrandom(buf, sizeof(buf)), 0);
	/* All of it filled: a run of untouched zeros would show. */
	for (i = 0; i < sizeof(buf); i++)
		zeros += buf[i] == 0;
	assert_true(zeros < sizeof(buf) / 128);
	assert_int_equal(rumpuser_getrandom(buf, 0), 0);
}

static void
test_log(void **state)
{
	char big[3000];

	(void)state;
	/* Must neither crash nor overflow on a long line. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	setenv("RUMP_LOG", "debug", 1);
	rumpuser_log(RUMPUSER_LOG_DEBUG, "test", "long: %s", big);
	rumpuser_log(RUMPUSER_LOG_INFO, "test", "with newline %d\n", 1);
	unsetenv("RUMP_LOG");
}

static void
test_files(void **state)
{
	const char *dir = getenv("TMPDIR");
	struct rumpuser_fileinfo info;
	char path[4096];
	int fd, fd2;

	(void)state;
	snprintf(path, sizeof(path), "%s/rt-files-%d",
	         dir != NULL && *dir != '\0' ? dir : "/tmp", (int)getpid());
	(void)unlink(path);
	assert_int_equal(rumpuser_open(path, RUMPUSER_OPEN_RDWR, &fd), ENOENT);
	assert_int_equal(rumpuser_open(path, RUMPUSER_OPEN_RDWR |
	    RUMPUSER_OPEN_RDONLY | RUMPUSER_OPEN_CREATE, &fd), EINVAL);
	assert_int_equal(rumpuser_open(path, RUMPUSER_OPEN_CREATE, &fd),
	                 EINVAL);
	assert_int_equal(rumpuser_open(path, 0x1000 | RUMPUSER_OPEN_RDWR, &fd),
	                 EINVAL);
	assert_int_equal(rumpuser_open(path, RUMPUSER_OPEN_RDWR |
	    RUMPUSER_OPEN_CREATE | RUMPUSER_OPEN_EXCL, &fd), 0);
	assert_int_equal(rumpuser_open(path, RUMPUSER_OPEN_RDWR |
	    RUMPUSER_OPEN_CREATE | RUMPUSER_OPEN_EXCL, &fd2), EEXIST);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(ftruncate(fd, 123456), 0);

	assert_int_equal(rumpuser_getfileinfo(fd, &info), 0);
	assert_int_equal(info.type, RUMPUSER_FT_REG);
	assert_int_equal(info.size, 123456);
	assert_int_equal(info.logical_block, 512);
	assert_false(info.read_only);

	assert_int_equal(rumpuser_open(path, RUMPUSER_OPEN_RDONLY, &fd2), 0);
	assert_int_equal(rumpuser_getfileinfo(fd2, &info), 0);
	assert_true(info.read_only);
	assert_int_equal(rumpuser_close(fd2), 0);
	assert_int_equal(rumpuser_getfileinfo(fd2, &info), EBADF);
	assert_int_equal(rumpuser_close(fd), 0);
	assert_int_equal(unlink(path), 0);
}

static void
test_shm(void **state)
{
	unsigned char *a, *b;
	int fd;

	(void)state;
	assert_int_equal(rumpuser_shm_create("rt-test", 0, &fd), EINVAL);
	assert_int_equal(rumpuser_shm_create("rt-test", 65536, &fd), 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(rumpuser_shm_map(fd, 65536, 1, (void **)&a), 0);
	assert_int_equal(rumpuser_shm_map(fd, 65536, 0, (void **)&b), 0);
	a[65535] = 0x42;
	a[0] = 0x24;
	/* One object, two views: the read-only view sees the writes. */
	assert_int_equal(b[65535], 0x42);
	assert_int_equal(b[0], 0x24);
	assert_int_equal(rumpuser_shm_unmap(b, 65536), 0);
	assert_int_equal(rumpuser_shm_unmap(a, 65536), 0);
	close(fd);
}

static void
test_doorbell(void **state)
{
	uint64_t t0, t1;
	int fd, pfd[2];

	(void)state;
	assert_int_equal(rumpuser_doorbell_create(&fd), 0);
	assert_int_equal(rumpuser_doorbell_wait(fd, 0), ETIMEDOUT);
	assert_int_equal(rumpuser_clock_gettime(RUMPUSER_CLOCK_MONO, &t0), 0);
	assert_int_equal(rumpuser_doorbell_wait(fd, 10000000), ETIMEDOUT);
	assert_int_equal(rumpuser_clock_gettime(RUMPUSER_CLOCK_MONO, &t1), 0);
	assert_true(t1 - t0 >= 10000000);

	/* Three rings coalesce into one wake-up. */
	assert_int_equal(rumpuser_doorbell_ring(fd), 0);
	assert_int_equal(rumpuser_doorbell_ring(fd), 0);
	assert_int_equal(rumpuser_doorbell_ring(fd), 0);
	assert_int_equal(rumpuser_doorbell_wait(fd, UINT64_MAX), 0);
	assert_int_equal(rumpuser_doorbell_wait(fd, 1000000), ETIMEDOUT);
	close(fd);

	/* Not an eventfd: an error, not a hang or a spin. */
	assert_int_equal(pipe(pfd), 0);
	assert_int_equal(write(pfd[1], "abc", 3), 3);
	assert_int_equal(rumpuser_doorbell_wait(pfd[0], 1000000000), EINVAL);
	close(pfd[0]);
	close(pfd[1]);
}

static void
test_seek(void **state)
{
	const char *dir = getenv("TMPDIR");
	char path[4096], block[4096];
	uint64_t found;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/rt-seek-XXXXXX",
	         dir != NULL && *dir != '\0' ? dir : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(unlink(path), 0);
	/* data [0, 4K), a hole up to 1 MiB, data [1 MiB, 1 MiB + 4K). */
	memset(block, 1, sizeof(block));
	assert_int_equal(pwrite(fd, block, sizeof(block), 0), 4096);
	assert_int_equal(pwrite(fd, block, sizeof(block), 1 << 20), 4096);

	assert_int_equal(rumpuser_seek(fd, RUMPUSER_SEEK_DATA, 0, &found), 0);
	assert_int_equal(found, 0);
	assert_int_equal(rumpuser_seek(fd, RUMPUSER_SEEK_HOLE, 0, &found), 0);
	/* A file system without a map says "all data": hole at the end. */
	assert_true(found == 4096 || found == (1 << 20) + 4096);
	if (found == 4096) {
		assert_int_equal(rumpuser_seek(fd, RUMPUSER_SEEK_DATA, 8192,
		                               &found), 0);
		assert_int_equal(found, 1 << 20);
	}
	assert_int_equal(rumpuser_seek(fd, RUMPUSER_SEEK_DATA,
	                               (1 << 20) + 4096, &found), ENXIO);
	assert_int_equal(rumpuser_seek(fd, (enum rumpuser_seek)9, 0, &found),
	                 EINVAL);
	assert_int_equal(rumpuser_seek(fd, RUMPUSER_SEEK_DATA, UINT64_MAX,
	                               &found), EINVAL);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_version),
		cmocka_unit_test(test_malloc_align),
		cmocka_unit_test(test_threads_locks),
		cmocka_unit_test(test_rwlock),
		cmocka_unit_test(test_clock_sleep_timedwait),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_log),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_shm),
		cmocka_unit_test(test_doorbell),
		cmocka_unit_test(test_seek),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
