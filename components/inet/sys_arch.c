/*
 * lwIP's system layer on the rump runtime.  lwIP runs without threads of
 * its own (NO_SYS): it needs a millisecond clock, random numbers for
 * initial sequence numbers and ports, and somewhere to report.  All of it
 * goes through rumpuser.
 */
#include <stdarg.h>

#include "lwip/arch.h"
#include "lwip/sys.h"

#include "rump/rumpuser.h"

u32_t
sys_now(void)
{
	uint64_t ns = 0;

	rumpuser_clock_gettime(RUMPUSER_CLOCK_MONO, &ns);
	return (u32_t)(ns / 1000000u);
}

uint32_t
inet_sys_random(void)
{
	uint32_t v = 0;

	/* The host's generator does not fail on Linux; a zero would only
	 * make a port or sequence number predictable, never break lwIP. */
	(void)rumpuser_getrandom(&v, sizeof(v));
	return v;
}

void
inet_sys_diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rumpuser_vlog(RUMPUSER_LOG_DEBUG, "lwip", fmt, ap);
	va_end(ap);
}

void
inet_sys_assert(const char *msg, const char *file, int line)
{
	rumpuser_log(RUMPUSER_LOG_ERROR, "lwip", "assertion failed: %s (%s:%d)",
	             msg, file, line);
	__builtin_trap();
}
