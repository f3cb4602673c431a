/*
 * lwIP's system layer on the rump runtime.  lwIP runs without threads of
 * its own (NO_SYS): it needs a millisecond clock, random numbers for
 * initial sequence numbers and ports, and somewhere to report.  All of it
 * goes through rumpuser.
 */
#include <stdarg.h>
#include <string.h>

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

/*
 * The Internet checksum, 8 bytes per add instead of lwIP's 2: the sum of
 * the data read as native 16-bit words from its start, folded, not
 * inverted (what LWIP_CHKSUM returns).  Loads may be unaligned: the
 * one's complement sum pairs bytes from the start whatever the address,
 * and memcpy makes the wide loads well defined.
 */
u16_t
inet_sys_chksum(const void *data, int len)
{
	const uint8_t *p = data;
	uint64_t sum = 0, w, s2 = 0, w2;

	while (len >= 16) {
		memcpy(&w, p, 8);
		memcpy(&w2, p + 8, 8);
		/* Two carry chains the processor can overlap. */
		sum += w;
		sum += sum < w;
		s2 += w2;
		s2 += s2 < w2;
		p += 16;
		len -= 16;
	}
	sum += s2;
	sum += sum < s2;
	if (len >= 8) {
		memcpy(&w, p, 8);
		sum += w;
		sum += sum < w;
		p += 8;
		len -= 8;
	}
	/* The tail: at most 7 bytes, each pairing as it would in place. */
	w = 0;
	memcpy(&w, p, (size_t)len);
	sum += w;
	sum += sum < w;
	sum = (sum >> 32) + (sum & 0xffffffffu);
	sum = (sum >> 32) + (sum & 0xffffffffu);
	sum = (sum >> 16) + (sum & 0xffffu);
	sum = (sum >> 16) + (sum & 0xffffu);
	return (u16_t)sum;
}
