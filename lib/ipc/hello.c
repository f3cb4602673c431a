/*
 * HELLO bodies.  The decoders are the only place a peer's HELLO is looked
 * at, so everything about them is checked here: exact size, zero reserved
 * fields, names terminated inside their field.
 *
 * A different protocol version is EPROTONOSUPPORT, distinct from EPROTO
 * (malformed), so that both sides can say which it was.
 */
#include <errno.h>
#include <string.h>

#include "rump/ipc.h"

static void name_copy(char dst[RUMP_NAME_MAX], const char *src)
{
	size_t n = src != NULL ? strnlen(src, RUMP_NAME_MAX - 1) : 0;

	memset(dst, 0, RUMP_NAME_MAX);
	if (n > 0)
		memcpy(dst, src, n);
}

static bool name_ok(const char name[RUMP_NAME_MAX])
{
	return memchr(name, '\0', RUMP_NAME_MAX) != NULL;
}

void rump_hello_encode(struct rump_hello *h, uint32_t service_kind,
                       const char *client_name)
{
	memset(h, 0, sizeof *h);
	h->proto_version = RUMP_PROTO_VERSION;
	h->service_kind = service_kind;
	name_copy(h->client_name, client_name);
}

int rump_hello_decode(const void *body, size_t len, struct rump_hello *out)
{
	struct rump_hello h;

	if (len != sizeof h)
		return EPROTO;
	memcpy(&h, body, sizeof h);
	if (h.proto_version != RUMP_PROTO_VERSION)
		return EPROTONOSUPPORT;
	if (h.flags != 0 || h.reserved != 0 || !name_ok(h.client_name))
		return EPROTO;
	*out = h;
	return 0;
}

void rump_hello_reply_encode(struct rump_hello_reply *r, uint32_t kind,
                             uint64_t boot_id, const char *service_name)
{
	memset(r, 0, sizeof *r);
	r->proto_version = RUMP_PROTO_VERSION;
	r->service_kind = kind;
	r->boot_id = boot_id;
	r->max_msg = RUMP_MSG_MAX;
	r->max_ring_entries = RUMP_RING_MAX_ENTRIES;
	r->max_area_size = RUMP_AREA_MAX_SIZE;
	name_copy(r->service_name, service_name);
}

int rump_hello_reply_decode(const void *body, size_t len,
                            struct rump_hello_reply *out)
{
	struct rump_hello_reply r;

	if (len != sizeof r)
		return EPROTO;
	memcpy(&r, body, sizeof r);
	if (r.proto_version != RUMP_PROTO_VERSION)
		return EPROTONOSUPPORT;
	/* A server that cannot take a header-only message is broken. */
	if (r.max_msg < sizeof(struct rump_msg_hdr) ||
	    r.max_msg > RUMP_MSG_MAX || !name_ok(r.service_name))
		return EPROTO;
	*out = r;
	return 0;
}
