/*
 * rumpd's control socket: the supervisor service of rump/proto_sup.h, on
 * the common framing, served from the event loop (requests are answered
 * at once, except TRIGGER, answered when the driver has).  Anyone who can
 * open the socket (mode 0660) may look; starting and stopping takes root
 * or rumpd's own user.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rump/ipc.h"
#include "rump/proto_sup.h"
#include "rumpd.h"

int
ctl_open(struct supervisor *sv)
{
	int error;

	if ((error = rump_service_path(RUMP_SUP_SOCKET_NAME, sv->ctl_path,
	                               sizeof(sv->ctl_path))) != 0 ||
	    (error = rump_listen_unix(sv->ctl_path, &sv->ctl_fd)) != 0) {
		rumpd_error("cannot listen on %s: %s%s", sv->ctl_path,
		            strerror(error), error == EADDRINUSE ?
		            " (is another rumpd running there?)" : "");
		sv->ctl_path[0] = '\0';
		return error;
	}
	return 0;
}

static void
end_session(struct supervisor *sv, unsigned i)
{
	close(sv->sessions[i].fd);
	sv->sessions[i].fd = -1;
	/* A trigger answer has nowhere to go now. */
	for (unsigned k = 0; k < sv->ndrivers; k++)
		if (sv->drivers[k].trigger_session == (int)i)
			sv->drivers[k].trigger_session = -1;
}

void
ctl_close(struct supervisor *sv)
{
	for (unsigned i = 0; i < RUMPD_MAX_SESSIONS; i++)
		if (sv->sessions[i].fd >= 0)
			end_session(sv, i);
	if (sv->ctl_fd >= 0) {
		close(sv->ctl_fd);
		sv->ctl_fd = -1;
		unlink(sv->ctl_path);
	}
}

void
ctl_accept(struct supervisor *sv)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd;

	fd = accept4(sv->ctl_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	for (unsigned i = 0; i < RUMPD_MAX_SESSIONS; i++) {
		struct ctl_session *s = &sv->sessions[i];

		if (s->fd >= 0)
			continue;
		s->fd = fd;
		s->hello = false;
		s->may_change = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred,
		                           &len) == 0 &&
		                (cred.uid == 0 || cred.uid == geteuid());
		return;
	}
	/* Full: a rumpctl that comes back later gets in. */
	close(fd);
}

static int
reply(struct supervisor *sv, unsigned i, const struct rump_msg_hdr *req,
      int status, const void *body, size_t len)
{
	struct rump_msg_hdr hdr;

	rump_msg_init(&hdr, req->type, RUMP_MSGF_REPLY, req->reqid, status,
	              len);
	return rump_msg_send(sv->sessions[i].fd, &hdr, body, NULL, 0);
}

void
ctl_trigger_reply(struct supervisor *sv, int session, uint64_t reqid,
                  int status, const char *text)
{
	struct rump_msg_hdr req = { .type = RUMP_SUP_MSG_TRIGGER,
	                            .reqid = reqid };

	if (session < 0 || session >= RUMPD_MAX_SESSIONS ||
	    sv->sessions[session].fd < 0)
		return;
	if (reply(sv, (unsigned)session, &req, status, text,
	          text != NULL ? strlen(text) : 0) != 0)
		end_session(sv, (unsigned)session);
}

static void
copy_name(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	/* NUL-padded on the wire: no stack bytes go out. */
	memset(dst, 0, cap);
	memcpy(dst, src, n);
}

static size_t
build_status(struct supervisor *sv, unsigned char *buf, size_t cap)
{
	struct rump_sup_status st = { 0 };
	uint64_t now = rumpd_now_ms();
	size_t off = sizeof(st);
	unsigned n = 0;

	for (unsigned k = 0; k < sv->cfg.ndrivers; k++) {
		const struct rumpd_driver *d = &sv->drivers[sv->cfg.order[k]];
		struct rump_sup_driver r;

		if (off + sizeof(r) > cap)
			break;
		memset(&r, 0, sizeof(r));
		copy_name(r.name, sizeof(r.name), d->conf->name);
		copy_name(r.kind, sizeof(r.kind),
		          rumpd_kinds[d->conf->kind].name);
		r.pid = d->pid;
		r.state = d->state;
		r.flags = (d->heartbeat ? RUMP_SUP_F_HEARTBEAT : 0) |
		          (d->confined ? RUMP_SUP_F_CONFINED : 0) |
		          (d->counters ? RUMP_SUP_F_COUNTERS : 0);
		r.restarts = d->restarts;
		r.failures = d->failures;
		r.tries = d->conf->policy.tries;
		if (d->state == RUMP_SUP_RUNNING && d->ready_ms != 0)
			r.uptime_ms = now - d->ready_ms;
		if (d->state == RUMP_SUP_BACKOFF && d->restart_at_ms > now)
			r.restart_in_ms = d->restart_at_ms - now;
		r.boot_id = d->boot_id;
		r.requests = d->requests;
		r.bytes = d->bytes;
		if (d->nrecoveries > 0)
			r.recovery_last_us = d->recovery_us[(d->nrecoveries -
			    1) % RUMPD_RECOVERY_HISTORY];
		rumpd_driver_recovery_stats(d, &r.recovery_p50_us,
		                            &r.recovery_max_us);
		r.recoveries = d->nrecoveries;
		copy_name(r.last_exit, sizeof(r.last_exit), d->last_exit);
		copy_name(r.endpoint, sizeof(r.endpoint), d->endpoint);
		memcpy(buf + off, &r, sizeof(r));
		off += sizeof(r);
		n++;
	}
	st.ndrivers = n;
	st.pid = (int32_t)getpid();
	st.uptime_ms = now - sv->started_ms;
	copy_name(st.runtime_dir, sizeof(st.runtime_dir), sv->runtime_dir);
	memcpy(buf, &st, sizeof(st));
	return off;
}

static size_t
add_device(unsigned char *buf, size_t cap, size_t off, const char *name,
           const char *driver, const char *kind, uint32_t flags,
           const char *source)
{
	struct rump_sup_device dev;

	if (off + sizeof(dev) > cap)
		return off;
	memset(&dev, 0, sizeof(dev));
	copy_name(dev.name, sizeof(dev.name), name);
	copy_name(dev.driver, sizeof(dev.driver), driver);
	copy_name(dev.kind, sizeof(dev.kind), kind);
	dev.flags = flags;
	copy_name(dev.source, sizeof(dev.source), source);
	memcpy(buf + off, &dev, sizeof(dev));
	return off + sizeof(dev);
}

static size_t
build_devices(struct supervisor *sv, unsigned char *buf, size_t cap)
{
	size_t off = 0;
	char src[256];

	for (unsigned k = 0; k < sv->cfg.ndrivers; k++) {
		const struct rumpd_driver *d = &sv->drivers[sv->cfg.order[k]];
		const struct rumpd_driver_conf *c = d->conf;

		for (unsigned i = 0; i < c->ndevices; i++)
			off = add_device(buf, cap, off, c->devices[i].name,
			    c->name, c->kind == KIND_DISK ? "disk" : "nic",
			    c->devices[i].read_only ? RUMP_SUP_DEV_READ_ONLY :
			    0, c->devices[i].source);
		if (c->kind == KIND_FS) {
			snprintf(src, sizeof(src), "%s of [%s]", c->device,
			         c->ref);
			off = add_device(buf, cap, off, c->name, c->name,
			                 "file system", 0, src);
		} else if (c->kind == KIND_NBD) {
			snprintf(src, sizeof(src), "%.200s, devices of [%s]",
			         d->endpoint, c->ref);
			off = add_device(buf, cap, off, c->name, c->name,
			                 "nbd gateway", 0, src);
		} else if (c->kind == KIND_FUSE) {
			snprintf(src, sizeof(src), "%.200s, files of [%s]",
			         c->mount, c->ref);
			off = add_device(buf, cap, off, c->name, c->name,
			                 "fuse mount", 0, src);
		}
	}
	return off;
}

/* The driver a request names; NULL after replying ENOENT or EPROTO. */
static struct rumpd_driver *
named_driver(struct supervisor *sv, const void *body, size_t len,
             size_t want)
{
	char name[RUMP_NAME_MAX];

	if (len != want)
		return NULL;
	memcpy(name, body, sizeof(name));
	if (memchr(name, '\0', sizeof(name)) == NULL)
		return NULL;
	for (unsigned i = 0; i < sv->ndrivers; i++)
		if (strcmp(sv->drivers[i].conf->name, name) == 0)
			return &sv->drivers[i];
	return NULL;
}

static int
do_change(struct supervisor *sv, struct rumpd_driver *d, uint16_t type)
{
	bool running = d->pid > 0;

	switch (type) {
	case RUMP_SUP_MSG_STOP:
		if (!running && d->state != RUMP_SUP_BACKOFF)
			return EALREADY;
		rumpd_log("%s: stopped by rumpctl", d->conf->name);
		sup_stop(sv, d);
		sup_notify_status(sv);
		return 0;
	case RUMP_SUP_MSG_START:
		if (running)
			return EALREADY;
		break;
	case RUMP_SUP_MSG_RESTART:
		if (running)
			sup_stop(sv, d);
		d->restarts++;
		break;
	}
	d->failures = 0;
	d->death_ms = 0;
	rumpd_log("%s: %s by rumpctl", d->conf->name,
	          type == RUMP_SUP_MSG_START ? "started" : "restarted");
	return sup_start(sv, d);
}

static int
do_trigger(struct supervisor *sv, unsigned session, uint64_t reqid,
           const void *body, size_t len)
{
#ifdef RUMP_TEST_TRIGGERS
	struct rump_sup_trigger t;
	struct rumpd_driver *d;
	char line[RUMP_SUP_TRIGGER_MAX + 16];
	int n;

	if (len != sizeof(t))
		return EPROTO;
	memcpy(&t, body, sizeof(t));
	d = named_driver(sv, t.name, sizeof(t.name), sizeof(t.name));
	if (d == NULL)
		return ENOENT;
	if (memchr(t.action, '\0', sizeof(t.action)) == NULL ||
	    strchr(t.action, '\n') != NULL)
		return EINVAL;
	if (d->state != RUMP_SUP_RUNNING || d->control_fd < 0)
		return ESRCH;
	if (d->trigger_session >= 0)
		return EBUSY;
	n = snprintf(line, sizeof(line), "TRIGGER %s\n", t.action);
	if (send(d->control_fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT)
	    != n)
		return errno;
	d->trigger_session = (int)session;
	d->trigger_reqid = reqid;
	d->trigger_deadline_ms = rumpd_now_ms() + RUMPD_TRIGGER_TIMEOUT_MS;
	return EINPROGRESS;
#else
	(void)sv, (void)session, (void)reqid, (void)body, (void)len;
	return ENOTSUP;
#endif
}

/* One request of a session that said HELLO. */
static int
request(struct supervisor *sv, unsigned i, const struct rump_msg_hdr *hdr,
        const void *body, size_t len)
{
	static_assert(RUMP_MSG_MAX <= 65536, "buffer");
	unsigned char out[RUMP_MSG_MAX - sizeof(struct rump_msg_hdr)];
	struct rumpd_driver *d;
	size_t n;
	int status;

	switch (hdr->type) {
	case RUMP_SUP_MSG_STATUS:
		n = build_status(sv, out, sizeof(out));
		return reply(sv, i, hdr, 0, out, n);
	case RUMP_SUP_MSG_DEVICES:
		n = build_devices(sv, out, sizeof(out));
		return reply(sv, i, hdr, 0, out, n);
	case RUMP_SUP_MSG_LOGS:
		d = named_driver(sv, body, len, sizeof(struct rump_sup_name));
		if (d == NULL)
			return reply(sv, i, hdr, ENOENT, NULL, 0);
		n = rumpd_driver_log_tail(d, (char *)out, sizeof(out));
		return reply(sv, i, hdr, 0, out, n);
	case RUMP_SUP_MSG_START:
	case RUMP_SUP_MSG_STOP:
	case RUMP_SUP_MSG_RESTART:
		d = named_driver(sv, body, len, sizeof(struct rump_sup_name));
		if (d == NULL)
			status = ENOENT;
		else if (!sv->sessions[i].may_change)
			status = EPERM;
		else
			status = do_change(sv, d, hdr->type);
		return reply(sv, i, hdr, status, NULL, 0);
	case RUMP_SUP_MSG_TRIGGER:
		if (!sv->sessions[i].may_change)
			return reply(sv, i, hdr, EPERM, NULL, 0);
		status = do_trigger(sv, i, hdr->reqid, body, len);
		if (status == EINPROGRESS)
			return 0;
		return reply(sv, i, hdr, status, NULL, 0);
	default:
		return reply(sv, i, hdr, EOPNOTSUPP, NULL, 0);
	}
}

static int
hello(struct supervisor *sv, unsigned i, const struct rump_msg_hdr *hdr,
      const void *body, size_t len)
{
	struct rump_hello h;
	struct rump_hello_reply r;

	if (hdr->type != RUMP_MSG_HELLO ||
	    rump_hello_decode(body, len, &h) != 0)
		return EPROTO;
	if (h.service_kind != RUMP_SERVICE_ANY &&
	    h.service_kind != RUMP_SERVICE_SUPERVISOR) {
		reply(sv, i, hdr, EPROTONOSUPPORT, NULL, 0);
		return EPROTO;
	}
	rump_hello_reply_encode(&r, RUMP_SERVICE_SUPERVISOR, sv->boot_id,
	                        "rumpd");
	sv->sessions[i].hello = true;
	return reply(sv, i, hdr, 0, &r, sizeof(r));
}

void
ctl_input(struct supervisor *sv, unsigned i)
{
	static_assert(RUMP_MSG_MAX <= 65536, "buffer");
	unsigned char buf[RUMP_MSG_MAX];
	const struct rump_msg_hdr *hdr = (const void *)buf;
	size_t len;
	unsigned nfds;
	int error;

	error = rump_msg_recv(sv->sessions[i].fd, buf, sizeof(buf), &len,
	                      NULL, 0, &nfds, true);
	if (error == EAGAIN)
		return;
	/* A request is a request: replies, rings and fds are not ours. */
	if (error == 0 && (hdr->flags & RUMP_MSGF_REPLY))
		error = EPROTO;
	if (error == 0) {
		const void *body = buf + sizeof(*hdr);
		size_t blen = len - sizeof(*hdr);

		if (!sv->sessions[i].hello)
			error = hello(sv, i, hdr, body, blen);
		else if (hdr->type == RUMP_MSG_BYE)
			error = ECONNRESET;
		else if (hdr->type < RUMP_MSG_SERVICE)
			error = EPROTO;
		else
			error = request(sv, i, hdr, body, blen);
	}
	if (error)
		end_session(sv, i);
}
