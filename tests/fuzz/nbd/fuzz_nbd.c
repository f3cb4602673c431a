/*
 * libFuzzer harness for the NBD gateway's protocol engine: the input is
 * what a client sends (client flags, options, then requests), fed to the
 * same functions rumpnbd runs, with a few fake exports.
 *
 * Each option and request is preceded by a control byte: with its top bit
 * clear the harness supplies the magic number (so the fuzzer need not
 * find it to get past it), and with bit 6 set the option's length is cut
 * to what the input holds.  With the top bit set the header is taken raw.
 *
 * Besides memory
 * errors it checks what the engine promises: option replies are well
 * framed and fit their buffer, a request that passes the checks lies
 * inside the export, and block status replies cover (part of) the range
 * asked for.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nbd_proto.h"

struct fake_export {
	const char *name;
	uint64_t size;
	uint32_t block_size;
	bool read_only;
};

static const struct fake_export exports[] = {
	{ "wd0", 1ull << 30, 512, false },
	{ "wd0s1", 1ull << 20, 4096, true },
	{ "wd1", (1ull << 62) + 512, 512, false },
};

#define BS_EXTENTS 64 /* extents per simulated BLOCK_STATUS */

static void
die(void)
{
	abort();
}

static int
fake_list(void *ctx, int (*fn)(void *arg, const char *name), void *arg)
{
	size_t i;
	int err;

	(void)ctx;
	for (i = 0; i < sizeof(exports) / sizeof(exports[0]); i++)
		if ((err = fn(arg, exports[i].name)) != 0)
			return err;
	return 0;
}

static int
fake_lookup(void *ctx, const char *name, struct nbd_export_desc *d)
{
	size_t i;

	(void)ctx;
	if (strcmp(name, "broken") == 0)
		return EIO;
	if (name[0] == '\0')
		name = exports[0].name;
	for (i = 0; i < sizeof(exports) / sizeof(exports[0]); i++) {
		if (strcmp(name, exports[i].name) == 0) {
			memset(d, 0, sizeof(*d));
			strcpy(d->name, exports[i].name);
			d->size = exports[i].size;
			d->block_size = exports[i].block_size;
			d->read_only = exports[i].read_only;
			d->multi_conn = true;
			return 0;
		}
	}
	return ENOENT;
}

static const struct nbd_export_ops fake_ops = {
	.list = fake_list,
	.lookup = fake_lookup,
	.open = fake_lookup,
};

static uint32_t
be32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

/* Every reply in out is a whole, framed option reply. */
static void
check_replies(const struct nbd_obuf *out, bool export_name)
{
	size_t pos = 0;

	if (out->overflow)
		return;
	if (export_name && out->len > 0 && out->len != 10 &&
	    out->len != 134)
		die();
	if (export_name)
		return;
	while (pos < out->len) {
		uint64_t magic;

		if (out->len - pos < 20)
			die();
		memcpy(&magic, out->p + pos, 8);
		if (be64toh(magic) != NBD_REP_MAGIC)
			die();
		if (be32(out->p + pos + 16) > out->len - pos - 20)
			die();
		pos += 20 + be32(out->p + pos + 16);
	}
}

/*
 * A header of len bytes after a control byte: raw from the input, or the
 * magic (magic_len bytes, big-endian) followed by the rest from the input.
 */
static bool
take_header(const uint8_t **data, size_t *size, uint8_t *hdr, size_t len,
            uint64_t magic, size_t magic_len, uint8_t *ctl)
{
	size_t from_input = len;

	if (*size < 1)
		return false;
	*ctl = **data;
	(*data)++;
	(*size)--;
	if (!(*ctl & 0x80)) {
		uint64_t be = htobe64(magic);

		memcpy(hdr, (uint8_t *)&be + 8 - magic_len, magic_len);
		from_input = len - magic_len;
	}
	if (*size < from_input)
		return false;
	memcpy(hdr + (len - from_input), *data, from_input);
	*data += from_input;
	*size -= from_input;
	return true;
}

static void
run_requests(const struct nbd_neg *neg, const uint8_t *data, size_t size)
{
	struct nbd_tx_params p = {
		.size = neg->export.size,
		.block_size = neg->export.block_size,
		.read_only = neg->export.read_only,
		.structured = neg->structured,
		.meta = neg->meta_base_allocation,
	};
	uint8_t ext[BS_EXTENTS * sizeof(struct nbd_extent)];
	uint8_t hdr[32];

	for (;;) {
		uint8_t raw[NBD_REQUEST_LEN], ctl;
		struct nbd_request rq;
		uint32_t payload, n, nd, i;
		uint64_t total = 0;
		int v;

		if (!take_header(&data, &size, raw, NBD_REQUEST_LEN,
		                 NBD_REQUEST_MAGIC, 4, &ctl) ||
		    nbd_request_decode(raw, &rq) != 0)
			return;
		v = nbd_request_check(&p, &rq, &payload);
		if (v == NBD_CHECK_FATAL)
			return;
		if (rq.type == NBD_CMD_WRITE && payload != rq.len)
			die();
		if (payload > size)
			return;
		data += payload;
		size -= payload;
		if (v != 0) {
			nbd_simple_reply(hdr, rq.cookie, (uint32_t)v);
			nbd_error_chunk(hdr, rq.cookie, (uint32_t)v);
			continue;
		}
		if (rq.type == NBD_CMD_DISC || rq.type == NBD_CMD_FLUSH)
			continue;
		/* Passed: inside the export, aligned, within limits. */
		if (rq.len == 0 || rq.offset > p.size ||
		    rq.len > p.size - rq.offset ||
		    rq.offset % p.block_size || rq.len % p.block_size)
			die();
		if ((rq.type == NBD_CMD_READ || rq.type == NBD_CMD_WRITE) &&
		    rq.len > NBD_MAX_PAYLOAD)
			die();
		if (rq.type != NBD_CMD_BLOCK_STATUS)
			continue;
		/* Extents as a backend could report them, from the input. */
		n = size / sizeof(struct nbd_extent);
		if (n > BS_EXTENTS)
			n = BS_EXTENTS;
		memcpy(ext, data, n * sizeof(struct nbd_extent));
		data += n * sizeof(struct nbd_extent);
		size -= n * sizeof(struct nbd_extent);
		nd = nbd_extents_encode(ext, n, rq.len,
		                        rq.flags & NBD_CMD_FLAG_REQ_ONE);
		if (nd == 0 || nd > (n > 0 ? n : 1))
			die();
		if ((rq.flags & NBD_CMD_FLAG_REQ_ONE) && nd != 1)
			die();
		for (i = 0; i < nd; i++) {
			uint32_t l = be32(ext + 8 * i);

			if (l == 0 || be32(ext + 8 * i + 4) & ~3u)
				die();
			total += l;
		}
		if (total > rq.len)
			die();
		nbd_block_status_chunk(hdr, rq.cookie, nd);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t reply[NBD_OPT_DATA_MAX];
	struct nbd_neg neg;
	unsigned nopt;

	if (size < 4 || nbd_client_flags(&neg, data) != 0)
		return 0;
	data += 4;
	size -= 4;
	for (nopt = 0; nopt < 64; nopt++) {
		struct nbd_obuf out = { .p = reply, .cap = sizeof(reply) };
		enum nbd_neg_action act;
		uint8_t hdr[NBD_OPT_HDR_LEN], ctl;
		uint32_t opt, len;

		if (!take_header(&data, &size, hdr, NBD_OPT_HDR_LEN,
		                 NBD_OPTS_MAGIC, 8, &ctl) ||
		    nbd_option_header(hdr, &opt, &len) != 0)
			return 0;
		if ((ctl & 0x40) && len > size)
			len = (uint32_t)size;
		if (len > NBD_OPT_DATA_MAX) {
			nbd_option_too_big(opt, &out);
			check_replies(&out, false);
			continue;
		}
		if (len > size)
			return 0;
		act = nbd_option(&neg, &fake_ops, NULL, opt, data, len, &out);
		check_replies(&out, opt == NBD_OPT_EXPORT_NAME &&
		                    act == NBD_NEG_TRANSMIT);
		data += len;
		size -= len;
		if (act == NBD_NEG_CLOSE)
			return 0;
		if (act == NBD_NEG_TRANSMIT) {
			if (neg.tx_flags != nbd_tx_flags(&neg, &neg.export))
				die();
			run_requests(&neg, data, size);
			return 0;
		}
	}
	return 0;
}
