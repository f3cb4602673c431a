/*
 * blk_file's argument syntax, "PATH[,ro][,cache=none|,cache=writeback]"
 * ("direct" and "buffered" are older names of the two), shared with
 * the servers that build it from their command line.
 */
#ifndef COMPONENTS_BLK_FILE_H
#define COMPONENTS_BLK_FILE_H

#include <stdbool.h>

enum blk_file_cache {
	BLK_FILE_CACHE_AUTO,     /* O_DIRECT when the file allows it */
	BLK_FILE_CACHE_DIRECT,   /* O_DIRECT or fail */
	BLK_FILE_CACHE_BUFFERED, /* the host's page cache, never O_DIRECT */
};

struct blk_file_opts {
	bool read_only;
	enum blk_file_cache cache;
};

/*
 * Splits "PATH[,opt]..." in place, leaving the path in buf.  Options are
 * taken from the end while they are known ones, so a path may itself
 * contain commas.  EINVAL for an empty path or an unknown cache mode.
 */
int blk_file_parse_args(char *buf, struct blk_file_opts *opts);

#endif /* COMPONENTS_BLK_FILE_H */
