/* Random bytes from the kernel's generator. */
#include <errno.h>
#include <sys/random.h>

#include "rumpuser_int.h"

int
rumpuser_getrandom(void *buf, size_t len)
{
	unsigned char *p = buf;
	ssize_t n;

	/* getrandom may return fewer bytes than asked (signals, requests
	 * over 32 MiB): keep asking until all of buf is filled. */
	while (len > 0) {
		n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ru_errno();
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
