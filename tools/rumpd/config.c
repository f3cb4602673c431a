/*
 * The configuration file.  inih splits it into (section, key, value); we
 * keep every line with its number and judge the whole file afterwards,
 * because a key's meaning depends on the section's "driver =", which may
 * come last, and a reference may name a section further down.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"

const struct rumpd_kind_info rumpd_kinds[KIND_COUNT] = {
	[KIND_NULL] = { "null", "rumpnull", "servers/null", true, NULL, 0 },
	[KIND_DISK] = { "disk", "rumpdisk", "servers/rumpdisk", true, NULL,
	                0 },
	[KIND_FS] = { "fs", "rumpfs", "servers/rumpfs", true, "disk",
	              KIND_DISK },
	[KIND_NET] = { "net", "rumpnet", "servers/rumpnet", true, NULL, 0 },
	[KIND_NBD] = { "nbd", "rumpnbd", "gateways/nbd", false, "disk",
	               KIND_DISK },
	[KIND_FUSE] = { "fuse", "rumpfuse", "gateways/fuse", false, "fs",
	                KIND_FS },
};

#define DEFAULT_TRIES 5
#define DEFAULT_BACKOFF_MS 100
#define DEFAULT_BACKOFF_MAX_MS 5000
#define DEFAULT_HEALTHY_MS 1000
#define DEFAULT_HEARTBEAT_MS 1000
#define DEFAULT_HEARTBEAT_TIMEOUT_MS 3000
#define DEFAULT_MAX_FILES 4096
#define GLOBAL_SECTION "rumpd"

struct entry {
	char key[32];
	char *value;
	int line;
};

struct section {
	char name[RUMP_NAME_MAX];
	int line;
	struct entry *entries;
	unsigned nentries;
};

/* The state of one parse. */
struct parser {
	FILE *f;
	const char *file;
	int line;                 /* of the line inih is looking at */
	struct section *sections;
	unsigned nsections;
	struct section *current;  /* NULL before the first header */
	bool in_bad_section;      /* its header was reported: skip its keys */
	unsigned errors;
	int oom;
};

static void __attribute__((format(printf, 3, 4)))
conf_error(struct parser *p, int line, const char *fmt, ...)
{
	va_list ap;

	if (line > 0)
		fprintf(stderr, "rumpd: %s:%d: ", p->file, line);
	else
		fprintf(stderr, "rumpd: %s: ", p->file);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	p->errors++;
}

static bool
valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= RUMP_NAME_MAX || !islower((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) &&
		    !isdigit((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '_')
			return false;
	return true;
}

static char *
trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static struct section *
find_section(struct parser *p, const char *name)
{
	for (unsigned i = 0; i < p->nsections; i++)
		if (strcmp(p->sections[i].name, name) == 0)
			return &p->sections[i];
	return NULL;
}

/* A "[name]" line, seen by our reader before inih: the only place that
 * knows the header's line number. */
static void
saw_header(struct parser *p, char *line)
{
	char *close = strchr(line, ']'), *name;
	struct section *s, *grown;

	p->current = NULL;
	p->in_bad_section = true;
	if (close == NULL)
		return;               /* inih reports it */
	*close = '\0';
	name = trim(line + 1);
	if ((s = find_section(p, name)) != NULL) {
		conf_error(p, p->line, "section [%s] again (first at line "
		           "%d); one section per driver", name, s->line);
		return;
	}
	if (strcmp(name, GLOBAL_SECTION) != 0 && !valid_name(name)) {
		conf_error(p, p->line, "bad driver name [%s]: lower-case "
		           "letters, digits, '-' and '_', starting with a "
		           "letter, at most %d characters", name,
		           RUMP_NAME_MAX - 1);
		return;
	}
	grown = realloc(p->sections, (p->nsections + 1) * sizeof(*grown));
	if (grown == NULL) {
		p->oom = 1;
		return;
	}
	p->sections = grown;
	s = &p->sections[p->nsections++];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->line = p->line;
	p->current = s;
	p->in_bad_section = false;
}

static char *
read_line(char *buf, int cap, void *stream)
{
	struct parser *p = stream;
	char copy[64], *t;
	size_t n;

	if (fgets(buf, cap, p->f) == NULL)
		return NULL;
	p->line++;
	n = strlen(buf);
	if (n == (size_t)cap - 1 && buf[n - 1] != '\n' && !feof(p->f)) {
		int c;

		conf_error(p, p->line, "line longer than %d characters",
		           cap - 2);
		/* The rest of it is not a line of its own. */
		while ((c = fgetc(p->f)) != EOF && c != '\n')
			;
		buf[0] = '\0';
		return buf;
	}
	snprintf(copy, sizeof(copy), "%s", buf);
	t = trim(copy);
	if (*t == '[') {
		char full[512];

		snprintf(full, sizeof(full), "%s", buf);
		saw_header(p, trim(full));
	}
	return buf;
}

static int
on_key(void *user, const char *section, const char *key, const char *value)
{
	struct parser *p = user;
	struct section *s = p->current;
	struct entry *grown, *e;

	(void)section;
	if (p->in_bad_section)
		return 1;
	if (s == NULL) {
		conf_error(p, p->line, "'%s' outside a section: put it under "
		           "[rumpd] or a driver's [name]", key);
		return 1;
	}
	if (strlen(key) >= sizeof(e->key)) {
		conf_error(p, p->line, "unknown key '%.40s'", key);
		return 1;
	}
	grown = realloc(s->entries, (s->nentries + 1) * sizeof(*grown));
	if (grown == NULL) {
		p->oom = 1;
		return 0;
	}
	s->entries = grown;
	e = &s->entries[s->nentries];
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->value = strdup(value);
	if (e->value == NULL) {
		p->oom = 1;
		return 0;
	}
	e->line = p->line;
	s->nentries++;
	return 1;
}

int
rumpd_parse_duration(const char *s, unsigned *ms)
{
	unsigned long long v, scale;
	char *end;

	if (!isdigit((unsigned char)*s))
		return EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return EINVAL;
	if (strcmp(end, "ms") == 0)
		scale = 1;
	else if (strcmp(end, "s") == 0)
		scale = 1000;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		scale = 60000;
	else
		return EINVAL;
	if (v > UINT32_MAX / scale)
		return EINVAL;
	*ms = (unsigned)(v * scale);
	return 0;
}

static int
parse_bool(const char *s, bool *out)
{
	if (strcmp(s, "yes") == 0 || strcmp(s, "true") == 0 ||
	    strcmp(s, "1") == 0)
		*out = true;
	else if (strcmp(s, "no") == 0 || strcmp(s, "false") == 0 ||
	         strcmp(s, "0") == 0)
		*out = false;
	else
		return EINVAL;
	return 0;
}

static int
parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* Keys every driver and [rumpd] take: the restart policy.  true if e was
 * one of them (judged, maybe with an error). */
static bool
policy_key(struct parser *p, const struct entry *e, struct rumpd_policy *pol)
{
	unsigned *dst = NULL;

	if (strcmp(e->key, "restart_tries") == 0) {
		if (parse_uint(e->value, 1, 1000, &pol->tries) != 0)
			conf_error(p, e->line, "restart_tries: want a number "
			           "from 1 to 1000, not '%s'", e->value);
		return true;
	}
	if (strcmp(e->key, "restart_backoff") == 0)
		dst = &pol->backoff_ms;
	else if (strcmp(e->key, "restart_backoff_max") == 0)
		dst = &pol->backoff_max_ms;
	else if (strcmp(e->key, "healthy_after") == 0)
		dst = &pol->healthy_ms;
	else
		return false;
	if (rumpd_parse_duration(e->value, dst) != 0)
		conf_error(p, e->line, "%s: want a duration such as 200ms or "
		           "2s, not '%s'", e->key, e->value);
	return true;
}

static void
global_section(struct parser *p, const struct section *s,
               struct rumpd_config *cfg, struct rumpd_policy *pol)
{
	for (unsigned i = 0; i < s->nentries; i++) {
		const struct entry *e = &s->entries[i];

		if (policy_key(p, e, pol))
			continue;
		if (strcmp(e->key, "user") == 0) {
			if (strlen(e->value) >= sizeof(cfg->user) ||
			    e->value[0] == '\0')
				conf_error(p, e->line, "user: bad name '%s'",
				           e->value);
			else
				snprintf(cfg->user, sizeof(cfg->user), "%s",
				         e->value);
		} else if (strcmp(e->key, "heartbeat_interval") == 0) {
			if (strcmp(e->value, "off") == 0)
				cfg->heartbeat_ms = 0;
			else if (rumpd_parse_duration(e->value,
			                              &cfg->heartbeat_ms) != 0)
				conf_error(p, e->line, "heartbeat_interval: "
				           "want a duration or 'off', not '%s'",
				           e->value);
		} else if (strcmp(e->key, "heartbeat_timeout") == 0) {
			if (rumpd_parse_duration(e->value,
			                   &cfg->heartbeat_timeout_ms) != 0 ||
			    cfg->heartbeat_timeout_ms == 0)
				conf_error(p, e->line, "heartbeat_timeout: want "
				           "a duration, not '%s'", e->value);
		} else {
			conf_error(p, e->line, "unknown key '%s' in [%s] "
			           "(known: user, heartbeat_interval, "
			           "heartbeat_timeout, restart_tries, "
			           "restart_backoff, restart_backoff_max, "
			           "healthy_after)", e->key, GLOBAL_SECTION);
		}
	}
	if (cfg->heartbeat_ms != 0 &&
	    cfg->heartbeat_timeout_ms <= cfg->heartbeat_ms)
		conf_error(p, s->line, "heartbeat_timeout must be longer than "
		           "heartbeat_interval");
}

/*
 * A disk device's options after its path: "ro", "cache=none",
 * "cache=writeback", in any order.  False (after saying why) on anything
 * else.
 */
static bool
disk_options(struct parser *p, const struct entry *e, const char *name,
             char **save, bool *read_only, enum rumpd_cache *cache)
{
	char *opt;

	while ((opt = strtok_r(NULL, " \t", save)) != NULL) {
		if (strcmp(opt, "ro") == 0) {
			*read_only = true;
		} else if (strcmp(opt, "cache=none") == 0) {
			*cache = RUMPD_CACHE_NONE;
		} else if (strcmp(opt, "cache=writeback") == 0) {
			*cache = RUMPD_CACHE_WRITEBACK;
		} else {
			conf_error(p, e->line, "%s %s: unknown option '%s' "
			           "(ro, cache=none, cache=writeback)", e->key,
			           name, opt);
			return false;
		}
	}
	return true;
}

/*
 * A NIC's source: "shm:BUSFILE" (made if missing), "tap:IFNAME" (made if
 * missing), or "packet:IFNAME" for a host interface that must exist now,
 * since rumpd opens its socket before anything starts.
 */
static bool
nic_source_ok(struct parser *p, const struct entry *e, const char *name,
              const char *source)
{
	const char *arg = strchr(source, ':');
	size_t n;

	if (arg == NULL || (strncmp(source, "shm:", 4) != 0 &&
	                    strncmp(source, "tap:", 4) != 0 &&
	                    strncmp(source, "packet:", 7) != 0)) {
		conf_error(p, e->line, "nic %s: want shm:BUSFILE, tap:IFNAME "
		           "or packet:IFNAME, not '%s'", name, source);
		return false;
	}
	arg++;
	n = strlen(arg);
	if (n == 0) {
		conf_error(p, e->line, "nic %s: '%s' names nothing", name,
		           source);
		return false;
	}
	if (source[0] == 's')
		return true;
	if (n >= IFNAMSIZ || strchr(arg, '/') != NULL ||
	    strchr(arg, ',') != NULL) {
		conf_error(p, e->line, "nic %s: bad interface name '%s' (at "
		           "most %d characters, no '/' or ',')", name, arg,
		           IFNAMSIZ - 1);
		return false;
	}
	if (source[0] == 'p' && if_nametoindex(arg) == 0) {
		conf_error(p, e->line, "nic %s: host interface %s: %s", name,
		           arg, strerror(errno));
		return false;
	}
	return true;
}

/*
 * "wd0 /path/to/image [ro] [cache=none|writeback]" or, for net,
 * "eth0 shm:/path/to/bus".
 */
static void
device_entry(struct parser *p, const struct entry *e,
             struct rumpd_driver_conf *d, bool want_file)
{
	char buf[PATH_MAX + 64], *name, *source, *extra, *save = NULL;
	enum rumpd_cache cache = RUMPD_CACHE_DEFAULT;
	struct rumpd_device *dev;
	bool read_only = false;
	struct stat st;

	snprintf(buf, sizeof(buf), "%s", e->value);
	name = strtok_r(buf, " \t", &save);
	source = strtok_r(NULL, " \t", &save);
	if (name == NULL || source == NULL) {
		conf_error(p, e->line, "%s: want '%s', not '%s'", e->key,
		           want_file ? "NAME PATH [ro] [cache=none|writeback]" :
		           "NAME shm:BUSFILE|tap:IFNAME|packet:IFNAME",
		           e->value);
		return;
	}
	if (!valid_name(name)) {
		conf_error(p, e->line, "%s: bad device name '%s'", e->key,
		           name);
		return;
	}
	for (unsigned i = 0; i < d->ndevices; i++)
		if (strcmp(d->devices[i].name, name) == 0) {
			conf_error(p, e->line, "device %s again (first at "
			           "line %d)", name, d->devices[i].line);
			return;
		}
	if (d->ndevices == RUMPD_MAX_DEVICES) {
		conf_error(p, e->line, "at most %d devices per driver",
		           RUMPD_MAX_DEVICES);
		return;
	}
	if (want_file) {
		if (!disk_options(p, e, name, &save, &read_only, &cache))
			return;
	} else if ((extra = strtok_r(NULL, " \t", &save)) != NULL) {
		conf_error(p, e->line, "%s %s: unknown option '%s'", e->key,
		           name, extra);
		return;
	}
	if (want_file) {
		if (stat(source, &st) != 0) {
			conf_error(p, e->line, "device %s: image %s: %s", name,
			           source, strerror(errno));
			return;
		}
		if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
			conf_error(p, e->line, "device %s: %s is neither a "
			           "file nor a block device", name, source);
			return;
		}
	} else if (!nic_source_ok(p, e, name, source)) {
		return;
	}
	dev = &d->devices[d->ndevices++];
	snprintf(dev->name, sizeof(dev->name), "%s", name);
	snprintf(dev->source, sizeof(dev->source), "%s", source);
	dev->read_only = read_only;
	dev->cache = cache;
	dev->line = e->line;
}

/* ---- a net driver's addresses and routes -------------------------------- */

struct ip_prefix {
	int family;                /* AF_INET or AF_INET6 */
	unsigned char a[16];
	unsigned len;              /* prefix length in bits */
};

static bool
parse_ip(const char *s, struct ip_prefix *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (inet_pton(AF_INET, s, ip->a) == 1) {
		ip->family = AF_INET;
		ip->len = 32;
	} else if (inet_pton(AF_INET6, s, ip->a) == 1) {
		ip->family = AF_INET6;
		ip->len = 128;
	} else {
		return false;
	}
	return true;
}

/* "ADDR/LEN"; with min_len 1 an interface address, 0 a route's prefix. */
static bool
parse_prefix(const char *s, unsigned min_len, struct ip_prefix *ip)
{
	char buf[RUMPD_NET_TEXT];
	const char *slash = strchr(s, '/');
	unsigned max;

	if (slash == NULL || (size_t)(slash - s) >= sizeof(buf))
		return false;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	if (!parse_ip(buf, ip))
		return false;
	max = ip->len;
	return parse_uint(slash + 1, min_len, max, &ip->len) == 0;
}

/* Whether the first len bits of a and b agree. */
static bool
same_bits(const unsigned char *a, const unsigned char *b, unsigned len)
{
	unsigned bytes = len / 8, rest = len % 8;
	unsigned char mask = (unsigned char)(0xff00u >> rest);

	if (memcmp(a, b, bytes) != 0)
		return false;
	return rest == 0 || ((a[bytes] ^ b[bytes]) & mask) == 0;
}

static bool
has_host_bits(const struct ip_prefix *ip)
{
	unsigned max = ip->family == AF_INET ? 32 : 128;

	for (unsigned bit = ip->len; bit < max; bit++)
		if (ip->a[bit / 8] & (0x80u >> (bit % 8)))
			return true;
	return false;
}

static bool
link_local6(const struct ip_prefix *ip)
{
	return ip->family == AF_INET6 && ip->a[0] == 0xfe &&
	       (ip->a[1] & 0xc0) == 0x80;
}

/* Splits "A B" into two words; false if there are not exactly two. */
static bool
two_words(const char *value, char *buf, size_t cap, char **first,
          char **second)
{
	char *save = NULL;

	if (snprintf(buf, cap, "%s", value) >= (int)cap)
		return false;
	*first = strtok_r(buf, " \t", &save);
	*second = strtok_r(NULL, " \t", &save);
	return *first != NULL && *second != NULL &&
	       strtok_r(NULL, " \t", &save) == NULL;
}

/* "addr = eth0 10.0.0.2/24": one address of one interface. */
static void
net_addr_entry(struct parser *p, const struct entry *e,
               struct rumpd_driver_conf *d)
{
	char buf[256], *ifname, *text;
	struct rumpd_net_addr *a;
	struct ip_prefix ip;

	if (!two_words(e->value, buf, sizeof(buf), &ifname, &text)) {
		conf_error(p, e->line, "addr: want 'NIC ADDRESS/PREFIX' (e.g. "
		           "eth0 10.0.0.2/24), not '%s'", e->value);
		return;
	}
	if (!valid_name(ifname)) {
		conf_error(p, e->line, "addr: bad nic name '%s'", ifname);
		return;
	}
	if (!parse_prefix(text, 1, &ip) || strlen(text) >= sizeof(a->addr)) {
		conf_error(p, e->line, "addr %s: bad address '%s' (want "
		           "10.0.0.2/24 or fd00::2/64)", ifname, text);
		return;
	}
	for (unsigned i = 0; i < d->naddrs; i++)
		if (strcmp(d->addrs[i].addr, text) == 0) {
			conf_error(p, e->line, "addr %s again (first at line "
			           "%d)", text, d->addrs[i].line);
			return;
		}
	if (d->naddrs == RUMPD_MAX_NET_ADDRS) {
		conf_error(p, e->line, "at most %d addresses per driver",
		           RUMPD_MAX_NET_ADDRS);
		return;
	}
	a = &d->addrs[d->naddrs++];
	/* Checked against the NICs once all of them are known. */
	snprintf(a->ifname, sizeof(a->ifname), "%s", ifname);
	snprintf(a->addr, sizeof(a->addr), "%s", text);
	a->line = e->line;
}

/* A route's destination as rumpnet sees it: "default" is the default of
 * its gateway's family.  False if it is not one. */
static bool
route_dest(const char *dest, const char *gw, struct ip_prefix *out)
{
	memset(out, 0, sizeof(*out));
	if (strcmp(dest, "default") == 0)
		out->family = strchr(gw, ':') != NULL ? AF_INET6 : AF_INET;
	else if (strcmp(dest, "default4") == 0)
		out->family = AF_INET;
	else if (strcmp(dest, "default6") == 0)
		out->family = AF_INET6;
	else
		return parse_prefix(dest, 0, out);
	return true;
}

/* "route = DEST GW": DEST default, default4, default6 or a prefix. */
static void
net_route_entry(struct parser *p, const struct entry *e,
                struct rumpd_driver_conf *d)
{
	char buf[256], gwaddr[RUMPD_NET_TEXT], *dest, *gw, *scope;
	struct ip_prefix dst, via, other;
	struct rumpd_net_route *r;
	int want_family = 0;

	if (!two_words(e->value, buf, sizeof(buf), &dest, &gw)) {
		conf_error(p, e->line, "route: want 'DEST GATEWAY' (e.g. "
		           "default 10.0.0.1), not '%s'", e->value);
		return;
	}
	if (strcmp(dest, "default4") == 0) {
		want_family = AF_INET;
	} else if (strcmp(dest, "default6") == 0) {
		want_family = AF_INET6;
	} else if (strcmp(dest, "default") != 0) {
		if (!parse_prefix(dest, 0, &dst) ||
		    strlen(dest) >= sizeof(r->dest)) {
			conf_error(p, e->line, "route: bad destination '%s' "
			           "(want default, default4, default6 or a "
			           "prefix such as 10.1.0.0/16)", dest);
			return;
		}
		if (has_host_bits(&dst)) {
			conf_error(p, e->line, "route: %s has bits set after "
			           "its prefix length", dest);
			return;
		}
		want_family = dst.family;
	}
	scope = strchr(gw, '%');
	if (snprintf(gwaddr, sizeof(gwaddr), "%.*s", scope != NULL ?
	             (int)(scope - gw) : (int)strlen(gw), gw) >=
	    (int)sizeof(gwaddr) || !parse_ip(gwaddr, &via) ||
	    strlen(gw) >= sizeof(r->gw)) {
		conf_error(p, e->line, "route %s: bad gateway '%s' (want an "
		           "address; fe80::1%%eth0 for a link-local one)", dest,
		           gw);
		return;
	}
	if (want_family != 0 && via.family != want_family) {
		conf_error(p, e->line, "route %s: gateway %s is IPv%d, the "
		           "destination IPv%d", dest, gw,
		           via.family == AF_INET ? 4 : 6,
		           want_family == AF_INET ? 4 : 6);
		return;
	}
	if (link_local6(&via) != (scope != NULL)) {
		conf_error(p, e->line, "route %s: %s", dest, scope != NULL ?
		           "only a link-local gateway (fe80::/10) takes "
		           "%NIC" : "a link-local gateway needs its NIC: "
		           "fe80::1%eth0");
		return;
	}
	route_dest(dest, gw, &dst);
	for (unsigned i = 0; i < d->nroutes; i++)
		if (route_dest(d->routes[i].dest, d->routes[i].gw, &other) &&
		    other.family == dst.family && other.len == dst.len &&
		    memcmp(other.a, dst.a, sizeof(dst.a)) == 0) {
			conf_error(p, e->line, "route %s again (first at line "
			           "%d)", dest, d->routes[i].line);
			return;
		}
	if (d->nroutes == RUMPD_MAX_NET_ROUTES) {
		conf_error(p, e->line, "at most %d routes per driver",
		           RUMPD_MAX_NET_ROUTES);
		return;
	}
	r = &d->routes[d->nroutes++];
	snprintf(r->dest, sizeof(r->dest), "%s", dest);
	snprintf(r->gw, sizeof(r->gw), "%s", gw);
	r->line = e->line;
}

static bool
has_nic(const struct rumpd_driver_conf *d, const char *name)
{
	for (unsigned i = 0; i < d->ndevices; i++)
		if (strcmp(d->devices[i].name, name) == 0)
			return true;
	return false;
}

/*
 * What needs all of a net driver's keys: addresses on its own NICs, a
 * gateway on one of its subnets (rumpnet would refuse it at every start,
 * and rumpd would restart it into a crash loop).
 */
static void
check_net(struct parser *p, const struct rumpd_driver_conf *d)
{
	for (unsigned i = 0; i < d->naddrs; i++)
		if (!has_nic(d, d->addrs[i].ifname))
			conf_error(p, d->addrs[i].line, "addr: [%s] has no nic "
			           "'%s'", d->name, d->addrs[i].ifname);
	for (unsigned i = 0; i < d->nroutes; i++) {
		const struct rumpd_net_route *r = &d->routes[i];
		const char *scope = strchr(r->gw, '%');
		char gwaddr[RUMPD_NET_TEXT];
		struct ip_prefix via, net;
		bool reachable = false;

		if (scope != NULL) {
			if (!has_nic(d, scope + 1))
				conf_error(p, r->line, "route %s: [%s] has no "
				           "nic '%s'", r->dest, d->name,
				           scope + 1);
			continue;
		}
		snprintf(gwaddr, sizeof(gwaddr), "%s", r->gw);
		if (!parse_ip(gwaddr, &via))
			continue;     /* reported when read */
		for (unsigned j = 0; j < d->naddrs && !reachable; j++)
			reachable = parse_prefix(d->addrs[j].addr, 1, &net) &&
			            net.family == via.family &&
			            same_bits(net.a, via.a, net.len);
		if (!reachable)
			conf_error(p, r->line, "route %s: gateway %s is on no "
			           "subnet of [%s]'s addresses", r->dest, r->gw,
			           d->name);
	}
}

static void
copy_value(struct parser *p, const struct entry *e, char *dst, size_t cap,
           int *linep)
{
	if (*linep != 0) {
		conf_error(p, e->line, "%s given twice (first at line %d)",
		           e->key, *linep);
		return;
	}
	if (strlen(e->value) >= cap || e->value[0] == '\0') {
		conf_error(p, e->line, "%s: bad value '%s'", e->key,
		           e->value);
		return;
	}
	snprintf(dst, cap, "%s", e->value);
	*linep = e->line;
}

static void
driver_section(struct parser *p, const struct section *s,
               const struct rumpd_policy *pol, struct rumpd_driver_conf *d)
{
	const char *ref_key;
	int kind_line = 0;

	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", s->name);
	d->line = s->line;
	d->policy = *pol;
	d->confine = true;
	d->namespaces = true;
	d->max_files = DEFAULT_MAX_FILES;
	/* First the kind: it says what the other keys mean. */
	for (unsigned i = 0; i < s->nentries; i++) {
		const struct entry *e = &s->entries[i];

		if (strcmp(e->key, "driver") != 0)
			continue;
		if (kind_line != 0) {
			conf_error(p, e->line, "driver given twice (first at "
			           "line %d)", kind_line);
			continue;
		}
		kind_line = e->line;
		for (unsigned k = 0; k < KIND_COUNT; k++)
			if (strcmp(e->value, rumpd_kinds[k].name) == 0) {
				d->kind = (enum rumpd_kind)k;
				d->has_kind = true;
			}
		if (!d->has_kind)
			conf_error(p, e->line, "unknown driver '%s' (known: "
			           "null, disk, fs, net, nbd, fuse)", e->value);
	}
	if (kind_line == 0) {
		conf_error(p, s->line, "[%s] says no 'driver =' (null, disk, "
		           "fs, net, nbd or fuse)", s->name);
		return;
	}
	if (!d->has_kind)
		return;
	ref_key = rumpd_kinds[d->kind].refers_to;
	for (unsigned i = 0; i < s->nentries; i++) {
		const struct entry *e = &s->entries[i];
		const char *k = e->key;

		if (strcmp(k, "driver") == 0 || policy_key(p, e, &d->policy))
			continue;
		if (strcmp(k, "program") == 0) {
			copy_value(p, e, d->program, sizeof(d->program),
			           &d->program_line);
		} else if (strcmp(k, "after") == 0) {
			char buf[512], *w, *save = NULL;

			snprintf(buf, sizeof(buf), "%s", e->value);
			for (w = strtok_r(buf, " \t,", &save); w != NULL;
			     w = strtok_r(NULL, " \t,", &save)) {
				if (d->nafter == RUMPD_MAX_AFTER) {
					conf_error(p, e->line, "after: at "
					           "most %d names",
					           RUMPD_MAX_AFTER);
					break;
				}
				snprintf(d->after[d->nafter],
				         sizeof(d->after[0]), "%s", w);
				d->after_line[d->nafter++] = e->line;
			}
		} else if (strcmp(k, "confine") == 0) {
			if (parse_bool(e->value, &d->confine) != 0)
				conf_error(p, e->line, "confine: yes or no, "
				           "not '%s'", e->value);
		} else if (strcmp(k, "namespaces") == 0) {
			if (parse_bool(e->value, &d->namespaces) != 0)
				conf_error(p, e->line, "namespaces: yes or no, "
				           "not '%s'", e->value);
		} else if (strcmp(k, "max_files") == 0) {
			if (parse_uint(e->value, 64, 1 << 20,
			               &d->max_files) != 0)
				conf_error(p, e->line, "max_files: want 64 to "
				           "1048576, not '%s'", e->value);
		} else if (d->kind == KIND_DISK && strcmp(k, "device") == 0) {
			device_entry(p, e, d, true);
		} else if (d->kind == KIND_NET && strcmp(k, "nic") == 0) {
			device_entry(p, e, d, false);
		} else if (d->kind == KIND_NET && strcmp(k, "addr") == 0) {
			net_addr_entry(p, e, d);
		} else if (d->kind == KIND_NET && strcmp(k, "route") == 0) {
			net_route_entry(p, e, d);
		} else if (ref_key != NULL && strcmp(k, ref_key) == 0) {
			copy_value(p, e, d->ref, sizeof(d->ref), &d->ref_line);
		} else if (d->kind == KIND_FS && strcmp(k, "device") == 0) {
			copy_value(p, e, d->device, sizeof(d->device),
			           &d->device_line);
		} else if (d->kind == KIND_NBD && strcmp(k, "listen") == 0) {
			copy_value(p, e, d->listen, sizeof(d->listen),
			           &d->listen_line);
		} else if (d->kind == KIND_FUSE && strcmp(k, "mount") == 0) {
			copy_value(p, e, d->mount, sizeof(d->mount),
			           &d->mount_line);
		} else {
			conf_error(p, e->line, "unknown key '%s' for a %s "
			           "driver in [%s]", k,
			           rumpd_kinds[d->kind].name, s->name);
		}
	}
}

/* A device name a disk driver serves: one of its devices, or a partition
 * of one (wd0s1). */
static bool
disk_has_device(const struct rumpd_driver_conf *disk, const char *name)
{
	for (unsigned i = 0; i < disk->ndevices; i++) {
		const char *dn = disk->devices[i].name;
		size_t n = strlen(dn);
		const char *rest = name + n;

		if (strncmp(name, dn, n) != 0)
			continue;
		if (*rest == '\0')
			return true;
		if (rest[0] == 's' && isdigit((unsigned char)rest[1]) &&
		    strspn(rest + 1, "0123456789") == strlen(rest + 1))
			return true;
	}
	return false;
}

/* What one driver says about the others, once all are known. */
static void
check_references(struct parser *p, struct rumpd_config *cfg,
                 struct rumpd_driver_conf *d)
{
	const struct rumpd_kind_info *ki = &rumpd_kinds[d->kind];
	const struct rumpd_driver_conf *ref;

	if (ki->refers_to != NULL) {
		if (d->ref_line == 0) {
			conf_error(p, d->line, "[%s]: a %s driver needs '%s = "
			           "NAME' (the %s driver it uses)", d->name,
			           ki->name, ki->refers_to, ki->refers_to);
		} else if ((ref = rumpd_config_find(cfg, d->ref)) == NULL) {
			conf_error(p, d->ref_line, "%s = %s: there is no "
			           "driver [%s]", ki->refers_to, d->ref,
			           d->ref);
		} else if (!ref->has_kind) {
			/* Its own error was reported. */
		} else if (ref->kind != ki->ref_kind) {
			conf_error(p, d->ref_line, "%s = %s: [%s] is a %s "
			           "driver, not a %s driver", ki->refers_to,
			           d->ref, d->ref, rumpd_kinds[ref->kind].name,
			           ki->refers_to);
		} else if (d->kind == KIND_FS) {
			if (d->device_line == 0)
				conf_error(p, d->line, "[%s]: an fs driver "
				           "needs 'device = NAME' (e.g. wd0s1)",
				           d->name);
			else if (!disk_has_device(ref, d->device))
				conf_error(p, d->device_line, "device = %s: "
				           "no such device in [%s] (it has %s%s)",
				           d->device, ref->name,
				           ref->ndevices ? ref->devices[0].name :
				           "none", ref->ndevices > 1 ?
				           " and more" : "");
		}
	}
	if (d->kind == KIND_NET)
		check_net(p, d);
	if (d->kind == KIND_DISK && d->ndevices == 0)
		conf_error(p, d->line, "[%s]: a disk driver needs at least one "
		           "'device = NAME PATH'", d->name);
	if (d->kind == KIND_FUSE) {
		struct stat st;

		if (d->mount_line == 0)
			conf_error(p, d->line, "[%s]: a fuse driver needs "
			           "'mount = DIR'", d->name);
		else if (stat(d->mount, &st) != 0)
			conf_error(p, d->mount_line, "mount point %s: %s",
			           d->mount, strerror(errno));
		else if (!S_ISDIR(st.st_mode))
			conf_error(p, d->mount_line, "mount point %s is not a "
			           "directory", d->mount);
	}
	if (d->kind == KIND_NBD && d->listen_line != 0 &&
	    strncmp(d->listen, "unix:", 5) != 0 &&
	    strncmp(d->listen, "tcp:", 4) != 0)
		conf_error(p, d->listen_line, "listen: want unix:PATH or "
		           "tcp:HOST:PORT, not '%s'", d->listen);
	for (unsigned i = 0; i < d->nafter; i++)
		if (rumpd_config_find(cfg, d->after[i]) == NULL)
			conf_error(p, d->after_line[i], "after: there is no "
			           "driver [%s]", d->after[i]);
}

/* A TAP opens once (without multiqueue), and two stations on one packet
 * socket's interface would each see the other's frames as foreign: each
 * belongs to one NIC.  A bus is meant to be shared. */
static void
check_nic_owners(struct parser *p, const struct rumpd_config *cfg,
                 unsigned di)
{
	const struct rumpd_driver_conf *a = &cfg->drivers[di];

	for (unsigned i = 0; i < a->ndevices; i++) {
		const struct rumpd_device *x = &a->devices[i];

		if (strncmp(x->source, "shm:", 4) == 0)
			continue;
		for (unsigned dj = 0; dj <= di; dj++) {
			const struct rumpd_driver_conf *b = &cfg->drivers[dj];
			unsigned n = dj == di ? i : b->ndevices;

			if (b->kind != KIND_NET)
				continue;
			for (unsigned j = 0; j < n; j++)
				if (strcmp(b->devices[j].source,
				           x->source) == 0) {
					conf_error(p, x->line, "nic %s: %s is "
					           "already [%s]'s nic %s (line "
					           "%d)", x->name, x->source,
					           b->name, b->devices[j].name,
					           b->devices[j].line);
					return;
				}
		}
	}
}

/* Two fuse gateways on one directory, or two NBD gateways on one address,
 * would fight over it. */
static void
check_duplicates(struct parser *p, struct rumpd_config *cfg)
{
	for (unsigned i = 0; i < cfg->ndrivers; i++) {
		struct rumpd_driver_conf *a = &cfg->drivers[i];

		for (unsigned j = 0; j < i; j++) {
			struct rumpd_driver_conf *b = &cfg->drivers[j];
			char ra[PATH_MAX], rb[PATH_MAX];

			if (a->mount_line && b->mount_line &&
			    realpath(a->mount, ra) != NULL &&
			    realpath(b->mount, rb) != NULL &&
			    strcmp(ra, rb) == 0)
				conf_error(p, a->mount_line, "mount point %s "
				           "is already [%s]'s (line %d)",
				           a->mount, b->name, b->mount_line);
			if (a->listen_line && b->listen_line &&
			    strcmp(a->listen, b->listen) == 0)
				conf_error(p, a->listen_line, "listen %s is "
				           "already [%s]'s (line %d)", a->listen,
				           b->name, b->listen_line);
		}
		if (a->kind == KIND_NET)
			check_nic_owners(p, cfg, i);
	}
}

/* Dependencies first (what a driver is a client of, and "after"); a
 * cycle is an error. */
static void
order_drivers(struct parser *p, struct rumpd_config *cfg)
{
	unsigned n = cfg->ndrivers, placed = 0;
	bool *done = calloc(n ? n : 1, sizeof(*done));

	cfg->order = calloc(n ? n : 1, sizeof(*cfg->order));
	if (done == NULL || cfg->order == NULL) {
		p->oom = 1;
		free(done);
		return;
	}
	while (placed < n) {
		bool progress = false;

		for (unsigned i = 0; i < n; i++) {
			const struct rumpd_driver_conf *d = &cfg->drivers[i];
			bool ready = true;

			if (done[i])
				continue;
			for (unsigned j = 0; j < n; j++) {
				const char *o = cfg->drivers[j].name;
				bool needs = d->ref_line && !strcmp(d->ref, o);

				for (unsigned a = 0; a < d->nafter; a++)
					needs |= strcmp(d->after[a], o) == 0;
				if (needs && !done[j])
					ready = false;
			}
			if (ready) {
				done[i] = true;
				cfg->order[placed++] = i;
				progress = true;
			}
		}
		if (!progress) {
			for (unsigned i = 0; i < n; i++)
				if (!done[i]) {
					conf_error(p, cfg->drivers[i].line,
					           "[%s] waits for itself through "
					           "'after' or its %s", cfg->
					           drivers[i].name, "references");
					break;
				}
			break;
		}
	}
	free(done);
}

static void
init_config(struct rumpd_config *cfg, const char *source)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->source, sizeof(cfg->source), "%s", source);
	cfg->heartbeat_ms = DEFAULT_HEARTBEAT_MS;
	cfg->heartbeat_timeout_ms = DEFAULT_HEARTBEAT_TIMEOUT_MS;
}

static const struct rumpd_policy default_policy = {
	.tries = DEFAULT_TRIES,
	.backoff_ms = DEFAULT_BACKOFF_MS,
	.backoff_max_ms = DEFAULT_BACKOFF_MAX_MS,
	.healthy_ms = DEFAULT_HEALTHY_MS,
};

/* Judges the sections into cfg. */
static void
build(struct parser *p, struct rumpd_config *cfg)
{
	struct rumpd_policy pol = default_policy;
	const struct section *global = find_section(p, GLOBAL_SECTION);

	if (global != NULL)
		global_section(p, global, cfg, &pol);
	cfg->drivers = calloc(p->nsections ? p->nsections : 1,
	                      sizeof(*cfg->drivers));
	if (cfg->drivers == NULL) {
		p->oom = 1;
		return;
	}
	for (unsigned i = 0; i < p->nsections; i++)
		if (&p->sections[i] != global)
			driver_section(p, &p->sections[i], &pol,
			               &cfg->drivers[cfg->ndrivers++]);
	if (cfg->ndrivers == 0)
		conf_error(p, 0, "no drivers: add a section such as [null] "
		           "with driver = null");
	for (unsigned i = 0; i < cfg->ndrivers; i++) {
		struct rumpd_driver_conf *d = &cfg->drivers[i];

		if (d->policy.backoff_max_ms < d->policy.backoff_ms)
			conf_error(p, d->line, "[%s]: restart_backoff_max is "
			           "below restart_backoff", d->name);
		if (d->has_kind)
			check_references(p, cfg, d);
	}
	check_duplicates(p, cfg);
	if (p->errors == 0)
		order_drivers(p, cfg);
}

static void
free_sections(struct parser *p)
{
	for (unsigned i = 0; i < p->nsections; i++) {
		for (unsigned j = 0; j < p->sections[i].nentries; j++)
			free(p->sections[i].entries[j].value);
		free(p->sections[i].entries);
	}
	free(p->sections);
}

int
rumpd_config_load(const char *path, struct rumpd_config *cfg)
{
	struct parser p = { .file = path };
	int rc, error = 0;

	init_config(cfg, path);
	p.f = fopen(path, "re");
	if (p.f == NULL)
		return errno;
	rc = ini_parse_stream(read_line, &p, on_key, &p);
	fclose(p.f);
	if (rc > 0)
		conf_error(&p, rc, "not 'key = value', '[section]' or a "
		           "comment");
	else if (rc < 0)
		p.oom = 1;
	if (!p.oom)
		build(&p, cfg);
	if (p.oom)
		error = ENOMEM;
	else if (p.errors)
		error = EINVAL;
	cfg->errors = p.errors;
	free_sections(&p);
	return error;
}

struct rumpd_driver_conf *
rumpd_config_find(const struct rumpd_config *cfg, const char *name)
{
	for (unsigned i = 0; i < cfg->ndrivers; i++)
		if (strcmp(cfg->drivers[i].name, name) == 0)
			return &cfg->drivers[i];
	return NULL;
}

void
rumpd_config_free(struct rumpd_config *cfg)
{
	free(cfg->drivers);
	free(cfg->order);
	cfg->drivers = NULL;
	cfg->order = NULL;
	cfg->ndrivers = 0;
}

/* ---- the built-in default ---------------------------------------------- */

struct rumpd_driver_conf *
rumpd_config_add(struct rumpd_config *cfg, const char *name,
                 enum rumpd_kind kind)
{
	struct rumpd_driver_conf *grown, *d;

	grown = realloc(cfg->drivers, (cfg->ndrivers + 1) * sizeof(*grown));
	if (grown == NULL)
		return NULL;
	cfg->drivers = grown;
	d = &cfg->drivers[cfg->ndrivers++];
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->kind = kind;
	d->has_kind = true;
	d->line = 0;
	d->policy = default_policy;
	d->confine = true;
	d->namespaces = true;
	d->max_files = DEFAULT_MAX_FILES;
	return d;
}

int
rumpd_config_finish(struct rumpd_config *cfg)
{
	struct parser p = { .file = cfg->source };

	for (unsigned i = 0; i < cfg->ndrivers; i++)
		check_references(&p, cfg, &cfg->drivers[i]);
	if (p.errors == 0)
		order_drivers(&p, cfg);
	if (p.oom)
		return ENOMEM;
	return p.errors ? EINVAL : 0;
}

void
rumpd_config_init(struct rumpd_config *cfg, const char *source)
{
	init_config(cfg, source);
}
