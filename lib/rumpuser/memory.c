/* Memory hypercalls: malloc, or posix_memalign when an alignment is asked. */
#include <errno.h>
#include <stdlib.h>

#include "rumpuser_int.h"

int
rumpuser_malloc(size_t len, size_t alignment, void **memp)
{
	void *mem;
	int error;

	if (alignment != 0 && (alignment & (alignment - 1)) != 0)
		return EINVAL;
	/* A zero-byte request still gets a unique pointer the caller can
	 * free, rather than a NULL that looks like a failure. */
	if (len == 0)
		len = 1;
	if (alignment == 0) {
		mem = malloc(len);
		if (mem == NULL)
			return ru_errno();
	} else {
		/* posix_memalign wants a multiple of sizeof(void *). */
		if (alignment < sizeof(void *))
			alignment = sizeof(void *);
		error = posix_memalign(&mem, alignment, len);
		if (error != 0)
			return ru_error(error);
	}
	*memp = mem;
	return 0;
}

void
rumpuser_free(void *mem, size_t len)
{
	(void)len; /* the host allocator tracks sizes itself */
	free(mem);
}
