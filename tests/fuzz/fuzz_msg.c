/*
 * Control messages as a hostile peer sends them: the header check, then
 * every body decoder the type leads to.  Whatever passes must satisfy the
 * invariants the handlers rely on.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rump/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define require(c) do { if (!(c)) __builtin_trap(); } while (0)

static void check_layout(const void *body, size_t len)
{
	struct rump_ring_setup setup;
	struct rump_area_layout l;

	if (len != sizeof setup)
		return;
	memcpy(&setup, body, sizeof setup);
	if (rump_area_layout(&setup, &l) != 0)
		return;
	require(l.sq_off >= sizeof(struct rump_area_hdr));
	require(l.sq_off % 64 == 0 && l.cq_off % 64 == 0);
	require(l.buf_off % 4096 == 0);
	require(l.cq_off >= l.sq_off + (uint64_t)l.sq_entries * 64);
	require(l.buf_off >= l.cq_off + (uint64_t)l.cq_entries * 32);
	require(l.total == l.buf_off + l.buf_size);
	require(l.total <= RUMP_AREA_MAX_SIZE);
	require(rump_area_buf_ok(&l, 0, l.buf_size));
	require(!rump_area_buf_ok(&l, l.buf_size, 1));
	require(!rump_area_buf_ok(&l, setup.buf_size | 1, UINT64_MAX));
}

static void decode_all(const unsigned char *body, size_t len)
{
	struct rump_hello h;
	struct rump_hello_reply r;

	if (rump_hello_decode(body, len, &h) == 0) {
		require(len == sizeof h);
		require(memchr(h.client_name, '\0', RUMP_NAME_MAX) != NULL);
		require(h.flags == 0 && h.reserved == 0);
	}
	if (rump_hello_reply_decode(body, len, &r) == 0) {
		require(len == sizeof r);
		require(memchr(r.service_name, '\0', RUMP_NAME_MAX) != NULL);
		require(r.max_msg <= RUMP_MSG_MAX);
	}
	check_layout(body, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rump_msg_hdr h;

	/* The decoders must hold up on any bytes, valid header or not. */
	decode_all(data, size);
	if (rump_msg_check(data, size) != 0)
		return 0;
	memcpy(&h, data, sizeof h);
	require(h.length == size && size >= sizeof h && size <= RUMP_MSG_MAX);
	require(h.version == RUMP_PROTO_VERSION && h.reserved == 0);
	require(h.type != 0 && h.type <= RUMP_MSG_TYPE_MAX);
	require((h.flags & RUMP_MSGF_REPLY) || h.status == 0);
	decode_all(data + sizeof h, size - sizeof h);
	return 0;
}
