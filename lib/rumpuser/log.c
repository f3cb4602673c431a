/*
 * Logging to stderr.  Each message goes out in a single write(2), so lines
 * from several threads (or processes sharing the stderr of a supervisor)
 * never interleave inside a line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "rumpuser_int.h"

/* Longer messages are cut and marked; a log line is not a data channel. */
#define LOG_LINE_MAX 1024

static const char *const level_names[] = {
	[RUMPUSER_LOG_ERROR] = "error",
	[RUMPUSER_LOG_WARN] = "warn",
	[RUMPUSER_LOG_INFO] = "info",
	[RUMPUSER_LOG_DEBUG] = "debug",
};

/*
 * RUMP_LOG is read on each call rather than cached: a cache would be global
 * mutable state, and getenv costs little next to the write(2) that follows.
 */
static enum rumpuser_log_level
log_threshold(void)
{
	const char *env = getenv("RUMP_LOG");
	size_t i;

	if (env == NULL || *env == '\0')
		return RUMPUSER_LOG_INFO;
	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(env, level_names[i]) == 0)
			return (enum rumpuser_log_level)i;
	return RUMPUSER_LOG_INFO;
}

void
rumpuser_vlog(enum rumpuser_log_level level, const char *tag,
              const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t len, off;
	ssize_t n;
	int r, saved_errno = errno;

	if ((unsigned)level > RUMPUSER_LOG_DEBUG)
		level = RUMPUSER_LOG_DEBUG;
	if (level > log_threshold())
		return;

	r = snprintf(line, sizeof(line), "%s: %s: ",
	             tag != NULL ? tag : "rump", level_names[level]);
	len = r < 0 ? 0 : (size_t)r;
	if (len < sizeof(line)) {
		r = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
		if (r > 0)
			len += (size_t)r;
	}
	if (len >= sizeof(line) - 1) {
		/* Truncated: mark it, and leave room for the newline. */
		len = sizeof(line) - 5;
		memcpy(line + len, "...", 3);
		len += 3;
	}
	/* The caller's own trailing newline is not doubled. */
	while (len > 0 && line[len - 1] == '\n')
		len--;
	line[len++] = '\n';

	for (off = 0; off < len; off += (size_t)n) {
		n = write(STDERR_FILENO, line + off, len - off);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0)
			break; /* nowhere left to report a failing log */
	}
	/* Logging must not disturb a caller that is about to look at errno. */
	errno = saved_errno;
}

void
rumpuser_log(enum rumpuser_log_level level, const char *tag,
             const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rumpuser_vlog(level, tag, fmt, ap);
	va_end(ap);
}
