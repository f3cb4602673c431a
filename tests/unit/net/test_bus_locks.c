/*
 * The file locks nic_shm tells live bus members by (rumpuser_file_trylock
 * and friends): one open of a file holds a byte, another open sees it held
 * and cannot take it, the holder does not see its own lock, and the lock
 * goes with an unlock, with the holder's descriptor, and with the holder's
 * process.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "rump/rumpuser.h"

static char path[4096];

static int
open_bus(void)
{
	int fd = -1;

	assert_int_equal(rumpuser_open(path, RUMPUSER_OPEN_RDWR, &fd), 0);
	return fd;
}

static int
held(int fd, uint64_t off)
{
	int h = -1;

	assert_int_equal(rumpuser_file_locked(fd, off, &h), 0);
	return h;
}

static void
test_two_opens(void **state)
{
	int a = open_bus(), b = open_bus();

	(void)state;
	assert_int_equal(rumpuser_file_trylock(a, 64), 0);
	assert_int_equal(rumpuser_file_trylock(b, 64), EAGAIN);
	assert_int_equal(held(b, 64), 1);
	assert_int_equal(held(a, 64), 0);        /* its own */
	/* Bytes are separate: the next member's entry is free. */
	assert_int_equal(held(b, 128), 0);
	assert_int_equal(rumpuser_file_trylock(b, 128), 0);
	assert_int_equal(rumpuser_file_unlock(a, 64), 0);
	assert_int_equal(held(b, 64), 0);
	assert_int_equal(rumpuser_file_trylock(b, 64), 0);
	/* Closing the holder's descriptor drops its locks. */
	assert_int_equal(held(a, 128), 1);
	assert_int_equal(rumpuser_close(b), 0);
	assert_int_equal(held(a, 64), 0);
	assert_int_equal(held(a, 128), 0);
	assert_int_equal(rumpuser_close(a), 0);
}

static void
test_dead_holder(void **state)
{
	int a = open_bus(), go[2], status;
	char c = 0;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int b = open_bus();

		if (rumpuser_file_trylock(b, 0) != 0)
			_exit(1);
		(void)!write(go[1], "x", 1);
		pause();
		_exit(0);
	}
	assert_int_equal(read(go[0], &c, 1), 1);
	assert_int_equal(held(a, 0), 1);
	assert_int_equal(rumpuser_file_trylock(a, 0), EAGAIN);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(held(a, 0), 0);
	assert_int_equal(rumpuser_file_trylock(a, 0), 0);
	assert_int_equal(rumpuser_close(a), 0);
	close(go[0]);
	close(go[1]);
}

static void
test_bad_offset(void **state)
{
	int a = open_bus(), h;

	(void)state;
	assert_int_equal(rumpuser_file_trylock(a, UINT64_MAX), EINVAL);
	assert_int_equal(rumpuser_file_unlock(a, UINT64_MAX), EINVAL);
	assert_int_equal(rumpuser_file_locked(a, UINT64_MAX, &h), EINVAL);
	assert_int_equal(rumpuser_file_trylock(-1, 0), EBADF);
	assert_int_equal(rumpuser_close(a), 0);
}

static int
make_file(void **state)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/test-bus-locks.XXXXXX",
	         dir != NULL && *dir != '\0' ? dir : "/tmp");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int
remove_file(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_opens),
		cmocka_unit_test(test_dead_holder),
		cmocka_unit_test(test_bad_offset),
	};

	return cmocka_run_group_tests(tests, make_file, remove_file);
}
