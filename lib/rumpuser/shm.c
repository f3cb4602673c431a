/* Shared memory (memfd) and doorbells (eventfd). */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "rumpuser_int.h"

#define NS_PER_SEC 1000000000ULL

int
rumpuser_shm_create(const char *name, size_t size, int *fdp)
{
	int fd, error;

	if (size == 0 || size > (size_t)INT64_MAX)
		return EINVAL;
	fd = memfd_create(name != NULL ? name : "rump-shm", MFD_CLOEXEC);
	if (fd < 0)
		return ru_errno();
	if (ftruncate(fd, (off_t)size) != 0) {
		error = ru_errno();
		(void)close(fd);
		return error;
	}
	*fdp = fd;
	return 0;
}

int
rumpuser_shm_map(int fd, size_t size, int writable, void **addrp)
{
	void *addr;
	int prot = PROT_READ | (writable ? PROT_WRITE : 0);

	if (size == 0)
		return EINVAL;
	addr = mmap(NULL, size, prot, MAP_SHARED, fd, 0);
	if (addr == MAP_FAILED)
		return ru_errno();
	*addrp = addr;
	return 0;
}

int
rumpuser_shm_unmap(void *addr, size_t size)
{
	if (munmap(addr, size) != 0)
		return ru_errno();
	return 0;
}

int
rumpuser_doorbell_create(int *fdp)
{
	int fd;

	/*
	 * Non-blocking, so a waiter that lost the count to another waiter
	 * between poll and read goes back to poll instead of hanging in read.
	 */
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return ru_errno();
	*fdp = fd;
	return 0;
}

int
rumpuser_doorbell_ring(int fd)
{
	uint64_t one = 1;
	ssize_t n;

	do {
		n = write(fd, &one, sizeof(one));
	} while (n < 0 && errno == EINTR);
	/* EAGAIN: the counter is saturated, so the bell is rung already. */
	if (n < 0 && errno != EAGAIN)
		return ru_errno();
	return 0;
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

int
rumpuser_doorbell_wait(int fd, uint64_t timeout_ns)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct timespec ts, *tsp;
	uint64_t deadline = 0, now, left, count;
	bool forever = timeout_ns == UINT64_MAX;
	ssize_t n;
	int r;

	if (!forever) {
		now = mono_ns();
		deadline = timeout_ns > UINT64_MAX - now ? UINT64_MAX :
		           now + timeout_ns;
	}
	for (;;) {
		tsp = NULL;
		if (!forever) {
			now = mono_ns();
			left = deadline > now ? deadline - now : 0;
			ts.tv_sec = (time_t)(left / NS_PER_SEC);
			ts.tv_nsec = (long)(left % NS_PER_SEC);
			tsp = &ts;
		}
		r = ppoll(&pfd, 1, tsp, NULL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return ru_errno();
		}
		if (r == 0)
			return ETIMEDOUT;
		if (pfd.revents & POLLNVAL)
			return EBADF;
		/* Reading resets the counter: rings since the last wait
		 * coalesce into this one wake-up. */
		n = read(fd, &count, sizeof(count));
		if (n == (ssize_t)sizeof(count))
			return 0;
		if (n >= 0)
			return EINVAL; /* not an eventfd */
		if (errno != EAGAIN && errno != EINTR)
			return ru_errno();
		/* Another waiter took the count: wait again. */
		if (!forever && mono_ns() >= deadline)
			return ETIMEDOUT;
	}
}
