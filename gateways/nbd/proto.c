/*
 * The NBD protocol engine (see nbd_proto.h): option haggling of the fixed
 * newstyle handshake, request validation and reply encoding.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "nbd_proto.h"

/* ---- byte order over unaligned buffers -------------------------------- */

static void
put16(uint8_t *p, uint16_t v)
{
	v = htobe16(v);
	memcpy(p, &v, sizeof(v));
}

static void
put32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, sizeof(v));
}

static void
put64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, sizeof(v));
}

static uint16_t
get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return be16toh(v);
}

static uint32_t
get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return be32toh(v);
}

static uint64_t
get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return be64toh(v);
}

/* ---- output buffer ---------------------------------------------------- */

static uint8_t *
obuf_take(struct nbd_obuf *out, size_t n)
{
	uint8_t *p;

	if (out->overflow || out->cap - out->len < n) {
		out->overflow = true;
		return NULL;
	}
	p = out->p + out->len;
	out->len += n;
	return p;
}

/* Appends an option reply header and reserves len bytes of its data. */
static uint8_t *
opt_reply(struct nbd_obuf *out, uint32_t opt, uint32_t type, uint32_t len)
{
	uint8_t *p = obuf_take(out, 20 + (size_t)len);

	if (p == NULL)
		return NULL;
	put64(p, NBD_REP_MAGIC);
	put32(p + 8, opt);
	put32(p + 12, type);
	put32(p + 16, len);
	return p + 20;
}

static void
opt_ack(struct nbd_obuf *out, uint32_t opt)
{
	opt_reply(out, opt, NBD_REP_ACK, 0);
}

/* An error reply; the message is for the human behind the client. */
static void
opt_error(struct nbd_obuf *out, uint32_t opt, uint32_t type, const char *msg)
{
	size_t n = strnlen(msg, 200);
	uint8_t *p = opt_reply(out, opt, type, (uint32_t)n);

	if (p != NULL)
		memcpy(p, msg, n);
}

static uint32_t
lookup_error(int err)
{
	return err == ENOENT ? NBD_REP_ERR_UNKNOWN : NBD_REP_ERR_SHUTDOWN;
}

/* ---- handshake -------------------------------------------------------- */

void
nbd_greeting(uint8_t out[NBD_GREETING_LEN])
{
	put64(out, NBD_MAGIC);
	put64(out + 8, NBD_OPTS_MAGIC);
	put16(out + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
}

int
nbd_client_flags(struct nbd_neg *neg, const uint8_t in[4])
{
	uint32_t flags = get32(in);

	/*
	 * Plain newstyle clients cannot take the option replies we send;
	 * oldstyle ones never get here (they choke on our greeting).
	 */
	if (!(flags & NBD_FLAG_C_FIXED_NEWSTYLE))
		return EPROTO;
	if (flags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
		return EPROTO;
	memset(neg, 0, sizeof(*neg));
	neg->client_flags = flags;
	return 0;
}

int
nbd_option_header(const uint8_t in[NBD_OPT_HDR_LEN], uint32_t *opt,
                  uint32_t *len)
{
	if (get64(in) != NBD_OPTS_MAGIC)
		return EPROTO;
	*opt = get32(in + 8);
	*len = get32(in + 12);
	return 0;
}

uint16_t
nbd_tx_flags(const struct nbd_neg *neg, const struct nbd_export_desc *d)
{
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
	             NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |
	             NBD_FLAG_SEND_WRITE_ZEROES;

	if (d->read_only)
		f |= NBD_FLAG_READ_ONLY;
	if (d->multi_conn)
		f |= NBD_FLAG_CAN_MULTI_CONN;
	/* A read is always one chunk, so DF costs nothing to honour. */
	if (neg->structured)
		f |= NBD_FLAG_SEND_DF;
	return f;
}

/*
 * A length-prefixed string at *pos in data: checks it fits, holds no NUL
 * and is at most max bytes; copies it NUL-terminated when dst is given
 * (dst has room for max + 1).  Returns false on malformed input.
 */
static bool
take_string(const uint8_t *data, uint32_t len, uint32_t *pos, uint32_t slen,
            uint32_t max, char *dst)
{
	if (slen > len - *pos || slen > max)
		return false;
	if (memchr(data + *pos, '\0', slen) != NULL)
		return false;
	if (dst != NULL) {
		memcpy(dst, data + *pos, slen);
		dst[slen] = '\0';
	}
	*pos += slen;
	return true;
}

/*
 * Reads a name that must be an export: too long to be one of ours means
 * unknown, not malformed.  Returns 0, EINVAL (malformed) or ENOENT.
 */
static int
take_export_name(const uint8_t *data, uint32_t len, uint32_t *pos,
                 char name[NBD_EXPORT_NAME_MAX])
{
	uint32_t slen;

	if (len - *pos < 4)
		return EINVAL;
	slen = get32(data + *pos);
	*pos += 4;
	if (slen >= NBD_EXPORT_NAME_MAX) {
		if (!take_string(data, len, pos, slen, NBD_STRING_MAX, NULL))
			return EINVAL;
		return ENOENT;
	}
	if (!take_string(data, len, pos, slen, NBD_EXPORT_NAME_MAX - 1, name))
		return EINVAL;
	return 0;
}

static void
info_export(struct nbd_obuf *out, uint32_t opt, uint64_t size,
            uint16_t flags)
{
	uint8_t *p = opt_reply(out, opt, NBD_REP_INFO, 12);

	if (p == NULL)
		return;
	put16(p, NBD_INFO_EXPORT);
	put64(p + 2, size);
	put16(p + 10, flags);
}

static void
info_block_size(struct nbd_obuf *out, uint32_t opt, uint32_t min)
{
	uint8_t *p = opt_reply(out, opt, NBD_REP_INFO, 14);

	if (p == NULL)
		return;
	put16(p, NBD_INFO_BLOCK_SIZE);
	put32(p + 2, min);
	put32(p + 6, min > NBD_PREF_BLOCK ? min : NBD_PREF_BLOCK);
	put32(p + 10, NBD_MAX_PAYLOAD);
}

static void
info_string(struct nbd_obuf *out, uint32_t opt, uint16_t type,
            const char *s)
{
	size_t n = strlen(s);
	uint8_t *p = opt_reply(out, opt, NBD_REP_INFO, (uint32_t)(2 + n));

	if (p == NULL)
		return;
	put16(p, type);
	memcpy(p + 2, s, n);
}

static bool
block_size_ok(uint32_t bs)
{
	/* Power of two, and within what NBD_INFO_BLOCK_SIZE may say. */
	return bs >= 1 && bs <= 65536 && (bs & (bs - 1)) == 0;
}

/* NBD_OPT_INFO and NBD_OPT_GO share their request and replies. */
static enum nbd_neg_action
opt_info_go(struct nbd_neg *neg, const struct nbd_export_ops *ops, void *ctx,
            uint32_t opt, const uint8_t *data, uint32_t len,
            struct nbd_obuf *out)
{
	char name[NBD_EXPORT_NAME_MAX] = "";
	struct nbd_export_desc d;
	bool want_name = false, want_desc = false;
	uint32_t pos = 0;
	uint16_t nreq, i;
	int err;

	err = take_export_name(data, len, &pos, name);
	if (err == EINVAL || len - pos < 2)
		goto invalid;
	nreq = get16(data + pos);
	pos += 2;
	if ((uint32_t)nreq * 2 != len - pos)
		goto invalid;
	for (i = 0; i < nreq; i++) {
		uint16_t type = get16(data + pos + 2u * i);

		if (type == NBD_INFO_NAME)
			want_name = true;
		else if (type == NBD_INFO_DESCRIPTION)
			want_desc = true;
		/* EXPORT and BLOCK_SIZE are always sent; others unknown. */
	}
	if (err == ENOENT) {
		opt_error(out, opt, NBD_REP_ERR_UNKNOWN,
		          "no export by that name");
		return NBD_NEG_CONTINUE;
	}

	memset(&d, 0, sizeof(d));
	err = opt == NBD_OPT_GO ? ops->open(ctx, name, &d)
	                        : ops->lookup(ctx, name, &d);
	if (err == 0 && !block_size_ok(d.block_size))
		err = EIO;
	if (err != 0) {
		char msg[128];

		snprintf(msg, sizeof(msg), "export '%s': %s", name,
		         strerror(err));
		opt_error(out, opt, lookup_error(err), msg);
		return NBD_NEG_CONTINUE;
	}

	info_export(out, opt, d.size, nbd_tx_flags(neg, &d));
	info_block_size(out, opt, d.block_size);
	if (want_name)
		info_string(out, opt, NBD_INFO_NAME, d.name);
	if (want_desc)
		info_string(out, opt, NBD_INFO_DESCRIPTION, d.name);
	opt_ack(out, opt);
	if (opt != NBD_OPT_GO)
		return NBD_NEG_CONTINUE;

	/* Contexts chosen for another export do not carry over. */
	if (neg->meta_base_allocation && strcmp(neg->meta_export, d.name) != 0)
		neg->meta_base_allocation = false;
	neg->export = d;
	neg->tx_flags = nbd_tx_flags(neg, &d);
	return NBD_NEG_TRANSMIT;

invalid:
	opt_error(out, opt, NBD_REP_ERR_INVALID, "malformed option data");
	return NBD_NEG_CONTINUE;
}

/* NBD_OPT_EXPORT_NAME: no way to report an error but hanging up. */
static enum nbd_neg_action
opt_export_name(struct nbd_neg *neg, const struct nbd_export_ops *ops,
                void *ctx, const uint8_t *data, uint32_t len,
                struct nbd_obuf *out)
{
	char name[NBD_EXPORT_NAME_MAX];
	struct nbd_export_desc d;
	uint8_t *p;
	size_t n;

	if (len >= NBD_EXPORT_NAME_MAX || memchr(data, '\0', len) != NULL)
		return NBD_NEG_CLOSE;
	memcpy(name, data, len);
	name[len] = '\0';
	memset(&d, 0, sizeof(d));
	if (ops->open(ctx, name, &d) != 0 || !block_size_ok(d.block_size))
		return NBD_NEG_CLOSE;
	if (neg->meta_base_allocation && strcmp(neg->meta_export, d.name) != 0)
		neg->meta_base_allocation = false;
	neg->export = d;
	neg->tx_flags = nbd_tx_flags(neg, &d);

	n = neg->client_flags & NBD_FLAG_C_NO_ZEROES ? 10 : 10 + 124;
	p = obuf_take(out, n);
	if (p == NULL)
		return NBD_NEG_CLOSE;
	memset(p, 0, n);
	put64(p, d.size);
	put16(p + 8, neg->tx_flags);
	return NBD_NEG_TRANSMIT;
}

struct list_state {
	struct nbd_obuf *out;
};

static int
list_one(void *arg, const char *name)
{
	struct list_state *ls = arg;
	size_t n = strnlen(name, NBD_EXPORT_NAME_MAX);
	uint8_t *p = opt_reply(ls->out, NBD_OPT_LIST, NBD_REP_SERVER,
	                       (uint32_t)(4 + n));

	if (p == NULL)
		return ENOSPC;
	put32(p, (uint32_t)n);
	memcpy(p + 4, name, n);
	return 0;
}

static enum nbd_neg_action
opt_list(const struct nbd_export_ops *ops, void *ctx, uint32_t len,
         struct nbd_obuf *out)
{
	struct list_state ls = { .out = out };
	char msg[128];
	int err;

	if (len != 0) {
		opt_error(out, NBD_OPT_LIST, NBD_REP_ERR_INVALID,
		          "LIST takes no data");
		return NBD_NEG_CONTINUE;
	}
	err = ops->list(ctx, list_one, &ls);
	if (out->overflow)
		return NBD_NEG_CONTINUE;  /* the caller hangs up */
	if (err != 0) {
		snprintf(msg, sizeof(msg), "cannot list exports: %s",
		         strerror(err));
		opt_error(out, NBD_OPT_LIST, NBD_REP_ERR_SHUTDOWN, msg);
		return NBD_NEG_CONTINUE;
	}
	opt_ack(out, NBD_OPT_LIST);
	return NBD_NEG_CONTINUE;
}

static void
meta_context(struct nbd_obuf *out, uint32_t opt, uint32_t id,
             const char *name)
{
	size_t n = strlen(name);
	uint8_t *p = opt_reply(out, opt, NBD_REP_META_CONTEXT,
	                       (uint32_t)(4 + n));

	if (p == NULL)
		return;
	put32(p, id);
	memcpy(p + 4, name, n);
}

/*
 * NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT: we know one
 * context, base:allocation.  A LIST query may name just its namespace.
 */
static enum nbd_neg_action
opt_meta(struct nbd_neg *neg, const struct nbd_export_ops *ops, void *ctx,
         uint32_t opt, const uint8_t *data, uint32_t len,
         struct nbd_obuf *out)
{
	static const char base_alloc[] = "base:allocation";
	char name[NBD_EXPORT_NAME_MAX] = "";
	char query[NBD_STRING_MAX + 1];
	struct nbd_export_desc d;
	bool set = opt == NBD_OPT_SET_META_CONTEXT, match = false;
	uint32_t pos = 0, nq, i;
	char msg[128];
	int err;

	if (set)
		neg->meta_base_allocation = false;
	if (!neg->structured) {
		opt_error(out, opt, NBD_REP_ERR_INVALID,
		          "structured replies not negotiated");
		return NBD_NEG_CONTINUE;
	}
	err = take_export_name(data, len, &pos, name);
	if (err == EINVAL || len - pos < 4)
		goto invalid;
	nq = get32(data + pos);
	pos += 4;
	for (i = 0; i < nq; i++) {
		uint32_t qlen;

		if (len - pos < 4)
			goto invalid;
		qlen = get32(data + pos);
		pos += 4;
		if (!take_string(data, len, &pos, qlen, NBD_STRING_MAX, query))
			goto invalid;
		if (strcmp(query, base_alloc) == 0 ||
		    (!set && strcmp(query, "base:") == 0))
			match = true;
	}
	if (pos != len)
		goto invalid;
	if (!set && nq == 0)
		match = true;
	if (err == ENOENT) {
		opt_error(out, opt, NBD_REP_ERR_UNKNOWN,
		          "no export by that name");
		return NBD_NEG_CONTINUE;
	}
	memset(&d, 0, sizeof(d));
	err = ops->lookup(ctx, name, &d);
	if (err != 0) {
		snprintf(msg, sizeof(msg), "export '%s': %s", name,
		         strerror(err));
		opt_error(out, opt, lookup_error(err), msg);
		return NBD_NEG_CONTINUE;
	}
	if (match)
		meta_context(out, opt,
		             set ? NBD_META_ID_BASE_ALLOCATION : 0, base_alloc);
	opt_ack(out, opt);
	if (set && match) {
		neg->meta_base_allocation = true;
		memcpy(neg->meta_export, d.name, sizeof(neg->meta_export));
	}
	return NBD_NEG_CONTINUE;

invalid:
	opt_error(out, opt, NBD_REP_ERR_INVALID, "malformed option data");
	return NBD_NEG_CONTINUE;
}

enum nbd_neg_action
nbd_option(struct nbd_neg *neg, const struct nbd_export_ops *ops, void *ctx,
           uint32_t opt, const uint8_t *data, uint32_t len,
           struct nbd_obuf *out)
{
	switch (opt) {
	case NBD_OPT_EXPORT_NAME:
		return opt_export_name(neg, ops, ctx, data, len, out);
	case NBD_OPT_ABORT:
		opt_ack(out, opt);
		return NBD_NEG_CLOSE;
	case NBD_OPT_LIST:
		return opt_list(ops, ctx, len, out);
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		return opt_info_go(neg, ops, ctx, opt, data, len, out);
	case NBD_OPT_STRUCTURED_REPLY:
		if (len != 0) {
			opt_error(out, opt, NBD_REP_ERR_INVALID,
			          "STRUCTURED_REPLY takes no data");
			return NBD_NEG_CONTINUE;
		}
		neg->structured = true;
		opt_ack(out, opt);
		return NBD_NEG_CONTINUE;
	case NBD_OPT_LIST_META_CONTEXT:
	case NBD_OPT_SET_META_CONTEXT:
		return opt_meta(neg, ops, ctx, opt, data, len, out);
	default:
		/* STARTTLS and EXTENDED_HEADERS included: we speak neither. */
		opt_error(out, opt, NBD_REP_ERR_UNSUP, "unsupported option");
		return NBD_NEG_CONTINUE;
	}
}

void
nbd_option_too_big(uint32_t opt, struct nbd_obuf *out)
{
	opt_error(out, opt, NBD_REP_ERR_TOO_BIG, "option data too long");
}

/* ---- transmission ----------------------------------------------------- */

int
nbd_request_decode(const uint8_t in[NBD_REQUEST_LEN], struct nbd_request *rq)
{
	if (get32(in) != NBD_REQUEST_MAGIC)
		return EPROTO;
	rq->flags = get16(in + 4);
	rq->type = get16(in + 6);
	rq->cookie = get64(in + 8);
	rq->offset = get64(in + 16);
	rq->len = get32(in + 24);
	return 0;
}

int
nbd_request_check(const struct nbd_tx_params *p,
                  const struct nbd_request *rq, uint32_t *payload)
{
	uint16_t allowed;
	bool writes = false;

	*payload = rq->type == NBD_CMD_WRITE ? rq->len : 0;
	/* Swallowing a huge payload only to refuse it is not worth it. */
	if (rq->type == NBD_CMD_WRITE && rq->len > NBD_MAX_PAYLOAD)
		return NBD_CHECK_FATAL;

	switch (rq->type) {
	case NBD_CMD_READ:
		allowed = p->structured ? NBD_CMD_FLAG_DF : 0;
		break;
	case NBD_CMD_WRITE:
	case NBD_CMD_TRIM:
		allowed = NBD_CMD_FLAG_FUA;
		writes = true;
		break;
	case NBD_CMD_WRITE_ZEROES:
		allowed = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE;
		writes = true;
		break;
	case NBD_CMD_BLOCK_STATUS:
		allowed = NBD_CMD_FLAG_REQ_ONE;
		break;
	case NBD_CMD_FLUSH:
	case NBD_CMD_DISC:
		allowed = 0;
		break;
	default:
		return NBD_EINVAL;
	}
	if (rq->flags & ~allowed)
		return NBD_EINVAL;
	if (rq->type == NBD_CMD_FLUSH || rq->type == NBD_CMD_DISC)
		return 0;
	if (rq->type == NBD_CMD_BLOCK_STATUS && !(p->structured && p->meta))
		return NBD_EINVAL;
	if (rq->type == NBD_CMD_READ && rq->len > NBD_MAX_PAYLOAD)
		return p->structured ? NBD_EOVERFLOW : NBD_EINVAL;
	if (writes && p->read_only)
		return NBD_EPERM;
	if (rq->len == 0)
		return NBD_EINVAL;
	if (rq->offset > p->size || rq->len > p->size - rq->offset)
		return writes ? NBD_ENOSPC : NBD_EINVAL;
	if (rq->offset % p->block_size != 0 || rq->len % p->block_size != 0)
		return NBD_EINVAL;
	return 0;
}

uint32_t
nbd_errno(int err)
{
	switch (err) {
	case 0:
		return 0;
	case EPERM:
	case EACCES:
	case EROFS:
		return NBD_EPERM;
	case ENOMEM:
		return NBD_ENOMEM;
	case EINVAL:
		return NBD_EINVAL;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return NBD_ENOSPC;
	case EOVERFLOW:
		return NBD_EOVERFLOW;
	case ENOTSUP:
		return NBD_ENOTSUP;
	case ESHUTDOWN:
		return NBD_ESHUTDOWN;
	default:
		return NBD_EIO;
	}
}

size_t
nbd_simple_reply(uint8_t out[NBD_SIMPLE_REPLY_LEN], uint64_t cookie,
                 uint32_t error)
{
	put32(out, NBD_SIMPLE_REPLY_MAGIC);
	put32(out + 4, error);
	put64(out + 8, cookie);
	return NBD_SIMPLE_REPLY_LEN;
}

size_t
nbd_chunk_header(uint8_t out[NBD_CHUNK_HDR_LEN], uint16_t flags,
                 uint16_t type, uint64_t cookie, uint32_t len)
{
	put32(out, NBD_STRUCTURED_REPLY_MAGIC);
	put16(out + 4, flags);
	put16(out + 6, type);
	put64(out + 8, cookie);
	put32(out + 16, len);
	return NBD_CHUNK_HDR_LEN;
}

size_t
nbd_read_chunk(uint8_t out[NBD_READ_CHUNK_LEN], uint64_t cookie,
               uint64_t offset, uint32_t len)
{
	nbd_chunk_header(out, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA,
	                 cookie, 8 + len);
	put64(out + NBD_CHUNK_HDR_LEN, offset);
	return NBD_READ_CHUNK_LEN;
}

size_t
nbd_error_chunk(uint8_t out[NBD_ERROR_CHUNK_LEN], uint64_t cookie,
                uint32_t error)
{
	nbd_chunk_header(out, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR,
	                 cookie, 6);
	put32(out + NBD_CHUNK_HDR_LEN, error);
	put16(out + NBD_CHUNK_HDR_LEN + 4, 0);
	return NBD_ERROR_CHUNK_LEN;
}

size_t
nbd_block_status_chunk(uint8_t out[NBD_BS_CHUNK_LEN], uint64_t cookie,
                       uint32_t ndesc)
{
	nbd_chunk_header(out, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS,
	                 cookie, 4 + 8 * ndesc);
	put32(out + NBD_CHUNK_HDR_LEN, NBD_META_ID_BASE_ALLOCATION);
	return NBD_BS_CHUNK_LEN;
}

uint32_t
nbd_extents_encode(void *buf, uint32_t n, uint32_t len, bool one_only)
{
	uint8_t *b = buf;
	uint32_t nd = 0, cur_len = 0, cur_flags = 0, total = 0, i;
	bool have = false;

	/*
	 * Descriptor k goes to b + 8k, extent i comes from b + 16i, and
	 * k <= i: each extent is copied out before anything overwrites it.
	 */
	for (i = 0; i < n && total < len; i++) {
		struct nbd_extent e;
		uint32_t flags, l;

		memcpy(&e, b + (size_t)i * sizeof(e), sizeof(e));
		flags = e.flags & (NBD_STATE_HOLE | NBD_STATE_ZERO);
		l = e.length < (uint64_t)(len - total) ? (uint32_t)e.length
		                                        : len - total;
		if (l == 0)
			continue;
		total += l;
		if (have && flags == cur_flags) {
			cur_len += l;
			continue;
		}
		if (have) {
			put32(b + 8 * nd, cur_len);
			put32(b + 8 * nd + 4, cur_flags);
			nd++;
			if (one_only)
				return nd;
		}
		cur_len = l;
		cur_flags = flags;
		have = true;
	}
	if (!have) {
		cur_len = len;
		cur_flags = 0;
	}
	put32(b + 8 * nd, cur_len);
	put32(b + 8 * nd + 4, cur_flags);
	return nd + 1;
}
