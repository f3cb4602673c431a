/* The allocation map of a file: where its data and its holes are. */
#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "rumpuser_int.h"

int
rumpuser_seek(int fd, enum rumpuser_seek what, uint64_t offset,
              uint64_t *foundp)
{
	off_t r;

	if (offset > (uint64_t)INT64_MAX)
		return EINVAL;
	switch (what) {
	case RUMPUSER_SEEK_DATA:
		r = lseek(fd, (off_t)offset, SEEK_DATA);
		break;
	case RUMPUSER_SEEK_HOLE:
		r = lseek(fd, (off_t)offset, SEEK_HOLE);
		break;
	default:
		return EINVAL;
	}
	if (r < 0)
		return ru_errno();
	*foundp = (uint64_t)r;
	return 0;
}
