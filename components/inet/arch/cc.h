/*
 * lwIP's port to the rump runtime: compiler and platform glue.  Diagnostics
 * go to the runtime's log; a failed lwIP assertion stops the process, as
 * the stack's state can no longer be trusted.
 */
#ifndef RUMP_INET_ARCH_CC_H
#define RUMP_INET_ARCH_CC_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define LWIP_ERRNO_STDINCLUDE 1
#define LWIP_PROVIDE_ERRNO 0
#define LWIP_TIMEVAL_PRIVATE 0
#define LWIP_NO_CTYPE_H 0

#ifndef BYTE_ORDER
#define BYTE_ORDER __BYTE_ORDER__
#endif
#ifndef LITTLE_ENDIAN
#define LITTLE_ENDIAN __ORDER_LITTLE_ENDIAN__
#endif
#ifndef BIG_ENDIAN
#define BIG_ENDIAN __ORDER_BIG_ENDIAN__
#endif

void inet_sys_diag(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
_Noreturn void inet_sys_assert(const char *msg, const char *file, int line);
uint32_t inet_sys_random(void);
uint16_t inet_sys_chksum(const void *data, int len);

#define LWIP_PLATFORM_DIAG(x) do { inet_sys_diag x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) inet_sys_assert((x), __FILE__, __LINE__)

#endif /* RUMP_INET_ARCH_CC_H */
