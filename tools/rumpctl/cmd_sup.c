/*
 * The supervisor's commands: status, start, stop, restart, devices, logs
 * (and test-trigger in test builds of rumpd), over rumpd's control socket
 * ("rumpd" in the runtime directory, or -s SOCKET).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rump/ipc.h"
#include "rump/proto_sup.h"
#include "rumpctl.h"

#define BOX_WIDTH 66

static int
connect_rumpd(const struct rumpctl *ctl, struct rump_client **clientp)
{
	struct rump_client_opts opts = {
		.version = RUMP_CLIENT_OPTS_VERSION,
		.service_kind = RUMP_SERVICE_SUPERVISOR,
		.client_name = "rumpctl",
		.no_rings = 1,
	};
	char path[4096];
	int error;

	if (ctl->socket != NULL)
		snprintf(path, sizeof(path), "%s%s",
		         strchr(ctl->socket, '/') ? "" : "./", ctl->socket);
	else if ((error = rump_service_path(RUMP_SUP_SOCKET_NAME, path,
	                                    sizeof(path))) != 0)
		return rumpctl_fail("no runtime directory: %s",
		                    strerror(error));
	error = rump_client_connect(path, &opts, clientp);
	if (error)
		return rumpctl_fail("cannot reach rumpd at %s: %s%s", path,
		                    strerror(error), error == ENOENT ||
		                    error == ECONNREFUSED ? " (is it running? "
		                    "RUMPD_DIR or -s SOCKET say where)" : "");
	return RUMPCTL_OK;
}

static void
format_duration(uint64_t ms, char *buf, size_t cap)
{
	uint64_t s = ms / 1000;

	if (ms < 10000)
		snprintf(buf, cap, "%.1fs", (double)ms / 1000.0);
	else if (s < 3600)
		snprintf(buf, cap, "%" PRIu64 "m%02" PRIu64 "s", s / 60,
		         s % 60);
	else if (s < 86400)
		snprintf(buf, cap, "%" PRIu64 "h%02" PRIu64 "m", s / 3600,
		         s / 60 % 60);
	else
		snprintf(buf, cap, "%" PRIu64 "d%02" PRIu64 "h", s / 86400,
		         s / 3600 % 24);
}

static const char *
state_name(uint32_t state)
{
	static const char *const names[] = {
		[RUMP_SUP_STOPPED] = "stopped", [RUMP_SUP_STARTING] = "starting",
		[RUMP_SUP_RUNNING] = "running", [RUMP_SUP_BACKOFF] = "restarting",
		[RUMP_SUP_FAILED] = "FAILED", [RUMP_SUP_STOPPING] = "stopping",
	};

	return state < sizeof(names) / sizeof(names[0]) ? names[state] : "?";
}

/* A wire string: NUL-terminated within its field or cut there. */
static const char *
field(char *s, size_t cap)
{
	s[cap - 1] = '\0';
	return s;
}

/* One line inside a driver's box. */
static void __attribute__((format(printf, 2, 3)))
box_line(const char *lead, const char *fmt, ...)
{
	char text[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	printf("%s| %-*.*s |\n", lead, BOX_WIDTH - 4, BOX_WIDTH - 4, text);
}

static void
box_edge(const char *lead, const char *join)
{
	printf("%s%s", lead, join);
	for (int i = 0; i < BOX_WIDTH - 2; i++)
		putchar('-');
	puts("+");
}

/* One process per driver, each a box hanging off rumpd. */
static void
draw_driver(struct rump_sup_driver *r, bool last)
{
	const char *stem = last ? "    " : " |  ";
	char up[32], when[32], head[96];

	field(r->name, sizeof(r->name));
	field(r->kind, sizeof(r->kind));
	field(r->last_exit, sizeof(r->last_exit));
	field(r->endpoint, sizeof(r->endpoint));
	puts(" |");
	box_edge(" +--", "+");
	if (r->pid > 0)
		snprintf(head, sizeof(head), "%s (%s)   pid %d", r->name,
		         r->kind, r->pid);
	else
		snprintf(head, sizeof(head), "%s (%s)   no process", r->name,
		         r->kind);
	if (r->state == RUMP_SUP_RUNNING) {
		format_duration(r->uptime_ms, up, sizeof(up));
		box_line(stem, "%-40s running, up %s", head, up);
	} else if (r->state == RUMP_SUP_BACKOFF) {
		box_line(stem, "%-40s restarting in %" PRIu64 " ms", head,
		         r->restart_in_ms);
	} else if (r->state == RUMP_SUP_FAILED) {
		box_line(stem, "%-40s FAILED: crash loop", head);
	} else {
		box_line(stem, "%-40s %s", head, state_name(r->state));
	}
	if (r->flags & RUMP_SUP_F_COUNTERS)
		box_line(stem, "requests %-12" PRIu64 " bytes %-14" PRIu64
		         " restarts %u", r->requests, r->bytes, r->restarts);
	else
		box_line(stem, "requests ?            bytes ?              "
		         "restarts %u", r->restarts);
	if (r->pid > 0)
		box_line(stem, "%s, %s", r->flags & RUMP_SUP_F_CONFINED ?
		         "confined" : "NOT confined",
		         r->flags & RUMP_SUP_F_HEARTBEAT ? "heartbeat" :
		         "no heartbeat");
	if (r->failures > 0)
		box_line(stem, "died %u time%s in a row (gives up after %u)",
		         r->failures, r->failures == 1 ? "" : "s", r->tries);
	if (r->last_exit[0] != '\0')
		box_line(stem, "last exit: %s", r->last_exit);
	if (r->recoveries > 0) {
		snprintf(when, sizeof(when), "%.1f ms",
		         (double)r->recovery_last_us / 1000.0);
		box_line(stem, "back serving in %s; p50 %.1f ms, max %.1f ms "
		         "(%u)", when, (double)r->recovery_p50_us / 1000.0,
		         (double)r->recovery_max_us / 1000.0, r->recoveries);
	}
	if (r->endpoint[0] != '\0')
		box_line(stem, "%s", r->endpoint);
	box_edge(stem, "+");
}

/* -p: one line per driver, for scripts. */
static void
print_driver(struct rump_sup_driver *r)
{
	printf("%s kind=%s pid=%d state=%s restarts=%u failures=%u "
	       "uptime_ms=%" PRIu64 " requests=%" PRIu64 " bytes=%" PRIu64
	       " confined=%d heartbeat=%d recoveries=%u recovery_last_us=%"
	       PRIu64 " recovery_p50_us=%" PRIu64 " recovery_max_us=%" PRIu64
	       " last_exit=\"%s\"\n",
	       field(r->name, sizeof(r->name)), field(r->kind, sizeof(r->kind)),
	       r->pid, state_name(r->state), r->restarts, r->failures,
	       r->uptime_ms, r->requests, r->bytes,
	       !!(r->flags & RUMP_SUP_F_CONFINED),
	       !!(r->flags & RUMP_SUP_F_HEARTBEAT), r->recoveries,
	       r->recovery_last_us, r->recovery_p50_us, r->recovery_max_us,
	       field(r->last_exit, sizeof(r->last_exit)));
}

int
rumpctl_cmd_status(struct rumpctl *ctl, int argc, char **argv)
{
	static unsigned char buf[RUMP_MSG_MAX];
	struct rump_sup_status st;
	struct rump_client *c;
	bool parseable = false;
	size_t len;
	char up[32];
	int opt, rc;

	while ((opt = getopt(argc, argv, "p")) != -1) {
		if (opt != 'p')
			return rumpctl_usage("status", "bad option");
		parseable = true;
	}
	if (optind != argc)
		return rumpctl_usage("status", "unexpected '%s'", argv[optind]);
	if ((rc = connect_rumpd(ctl, &c)) != RUMPCTL_OK)
		return rc;
	rc = rump_client_call(c, RUMP_SUP_MSG_STATUS, NULL, 0, buf,
	                      sizeof(buf), &len);
	rump_client_close(c);
	if (rc != 0)
		return rumpctl_fail("status: %s", strerror(rc));
	memcpy(&st, buf, sizeof(st) <= len ? sizeof(st) : 0);
	if (len < sizeof(st) ||
	    (len - sizeof(st)) / sizeof(struct rump_sup_driver) < st.ndrivers)
		return rumpctl_fail("status: short reply from rumpd");
	if (!parseable) {
		format_duration(st.uptime_ms, up, sizeof(up));
		printf("rumpd (pid %d), up %s, %s: %u driver%s, one process "
		       "each\n", st.pid, up, field(st.runtime_dir,
		       sizeof(st.runtime_dir)), st.ndrivers,
		       st.ndrivers == 1 ? "" : "s");
	}
	for (uint32_t i = 0; i < st.ndrivers; i++) {
		struct rump_sup_driver r;

		memcpy(&r, buf + sizeof(st) + i * sizeof(r), sizeof(r));
		if (parseable)
			print_driver(&r);
		else
			draw_driver(&r, i + 1 == st.ndrivers);
	}
	return RUMPCTL_OK;
}

/* start, stop, restart: argv[0] says which. */
int
rumpctl_cmd_change(struct rumpctl *ctl, int argc, char **argv)
{
	struct rump_sup_name name;
	struct rump_client *c;
	uint16_t type;
	int rc;

	if (argc != 2)
		return rumpctl_usage(argv[0], "want one DRIVER");
	if (strlen(argv[1]) >= sizeof(name.name))
		return rumpctl_fail("no driver '%s'", argv[1]);
	type = strcmp(argv[0], "start") == 0 ? RUMP_SUP_MSG_START :
	       strcmp(argv[0], "stop") == 0 ? RUMP_SUP_MSG_STOP :
	       RUMP_SUP_MSG_RESTART;
	memset(&name, 0, sizeof(name));
	memcpy(name.name, argv[1], strlen(argv[1]));
	if ((rc = connect_rumpd(ctl, &c)) != RUMPCTL_OK)
		return rc;
	rc = rump_client_call(c, type, &name, sizeof(name), NULL, 0, NULL);
	rump_client_close(c);
	switch (rc) {
	case 0:
		printf("%s: %s\n", argv[1], type == RUMP_SUP_MSG_START ?
		       "started" : type == RUMP_SUP_MSG_STOP ? "stopped" :
		       "restarted");
		return RUMPCTL_OK;
	case ENOENT:
		return rumpctl_fail("no driver '%s'", argv[1]);
	case EALREADY:
		return rumpctl_fail("%s is already %s", argv[1],
		                    type == RUMP_SUP_MSG_START ? "running" :
		                    "stopped");
	case EPERM:
		return rumpctl_fail("%s %s: only root or rumpd's user may",
		                    argv[0], argv[1]);
	default:
		return rumpctl_fail("%s %s: %s", argv[0], argv[1],
		                    strerror(rc));
	}
}

int
rumpctl_cmd_devices(struct rumpctl *ctl, int argc, char **argv)
{
	static unsigned char buf[RUMP_MSG_MAX];
	struct rump_client *c;
	size_t len;
	int rc;

	if (argc != 1)
		return rumpctl_usage(argv[0], "unexpected '%s'", argv[1]);
	if ((rc = connect_rumpd(ctl, &c)) != RUMPCTL_OK)
		return rc;
	rc = rump_client_call(c, RUMP_SUP_MSG_DEVICES, NULL, 0, buf,
	                      sizeof(buf), &len);
	rump_client_close(c);
	if (rc != 0)
		return rumpctl_fail("devices: %s", strerror(rc));
	printf("%-12s %-12s %-12s %s\n", "DEVICE", "DRIVER", "KIND", "SOURCE");
	for (size_t off = 0; off + sizeof(struct rump_sup_device) <= len;
	     off += sizeof(struct rump_sup_device)) {
		struct rump_sup_device d;

		memcpy(&d, buf + off, sizeof(d));
		printf("%-12s %-12s %-12s %s%s\n",
		       field(d.name, sizeof(d.name)),
		       field(d.driver, sizeof(d.driver)),
		       field(d.kind, sizeof(d.kind)),
		       field(d.source, sizeof(d.source)),
		       d.flags & RUMP_SUP_DEV_READ_ONLY ? " (read-only)" : "");
	}
	return RUMPCTL_OK;
}

int
rumpctl_cmd_logs(struct rumpctl *ctl, int argc, char **argv)
{
	static unsigned char buf[RUMP_MSG_MAX];
	struct rump_sup_name name;
	struct rump_client *c;
	size_t len;
	int rc;

	if (argc != 2)
		return rumpctl_usage(argv[0], "want one DRIVER");
	if (strlen(argv[1]) >= sizeof(name.name))
		return rumpctl_fail("no driver '%s'", argv[1]);
	memset(&name, 0, sizeof(name));
	memcpy(name.name, argv[1], strlen(argv[1]));
	if ((rc = connect_rumpd(ctl, &c)) != RUMPCTL_OK)
		return rc;
	rc = rump_client_call(c, RUMP_SUP_MSG_LOGS, &name, sizeof(name), buf,
	                      sizeof(buf), &len);
	rump_client_close(c);
	if (rc == ENOENT)
		return rumpctl_fail("no driver '%s'", argv[1]);
	if (rc != 0)
		return rumpctl_fail("logs %s: %s", argv[1], strerror(rc));
	fwrite(buf, 1, len, stdout);
	return RUMPCTL_OK;
}

int
rumpctl_cmd_trigger(struct rumpctl *ctl, int argc, char **argv)
{
	static char out[RUMP_MSG_MAX];
	struct rump_sup_trigger t;
	struct rump_client *c;
	size_t len;
	int rc;

	if (argc != 3)
		return rumpctl_usage(argv[0], "want DRIVER ACTION");
	if (strlen(argv[1]) >= sizeof(t.name) ||
	    strlen(argv[2]) >= sizeof(t.action))
		return rumpctl_fail("name or action too long");
	memset(&t, 0, sizeof(t));
	memcpy(t.name, argv[1], strlen(argv[1]));
	memcpy(t.action, argv[2], strlen(argv[2]));
	if ((rc = connect_rumpd(ctl, &c)) != RUMPCTL_OK)
		return rc;
	rc = rump_client_call(c, RUMP_SUP_MSG_TRIGGER, &t, sizeof(t), out,
	                      sizeof(out) - 1, &len);
	rump_client_close(c);
	if (rc == ENOTSUP)
		return rumpctl_fail("rumpd was built without test triggers");
	if (rc != 0)
		return rumpctl_fail("test-trigger %s %s: %s", argv[1], argv[2],
		                    strerror(rc));
	out[len] = '\0';
	printf("%s\n", out);
	return RUMPCTL_OK;
}
