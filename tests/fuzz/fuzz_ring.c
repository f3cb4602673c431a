/*
 * The server's view of a session's rings with the client as the enemy.
 * The input is a script: the hostile side writes indices, flags and entry
 * bytes in the shared area at will, between the honest side's operations;
 * the honest side pops and checks requests (their buffers against the
 * layout, then touches them) and pushes completions.  ASan catches any
 * access outside the area; the checks below catch broken promises.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rump/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define require(c) do { if (!(c)) __builtin_trap(); } while (0)

struct input {
	const uint8_t *p;
	size_t left;
};

static uint8_t take8(struct input *in)
{
	if (in->left == 0)
		return 0;
	in->left--;
	return *in->p++;
}

static uint32_t take32(struct input *in)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v |= (uint32_t)take8(in) << (8 * i);
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct rump_ring_setup setup;
	struct rump_area_layout l;
	struct rump_area_hdr *hdr;
	struct rump_ring sq, cq;
	unsigned char *area;
	bool sq_broken = false, cq_broken = false;
	uint32_t ops = 0;

	setup.sq_entries = 2u << (take8(&in) % 4);
	setup.cq_entries = setup.sq_entries << (take8(&in) % 2);
	setup.buf_size = 4096u * (1 + take8(&in) % 2);
	require(rump_area_layout(&setup, &l) == 0);
	/* Exactly the area, so that ASan sees any step outside it. */
	area = malloc(l.total);
	require(area != NULL);
	memset(area, 0, l.total);
	hdr = (struct rump_area_hdr *)area;
	hdr->sq.head = hdr->sq.tail = take32(&in);
	hdr->cq.head = hdr->cq.tail = take32(&in);
	rump_ring_init_consumer(&sq, &hdr->sq, area + l.sq_off, l.sq_entries,
	                        sizeof(struct rump_sqe));
	rump_ring_init_producer(&cq, &hdr->cq, area + l.cq_off, l.cq_entries,
	                        sizeof(struct rump_cqe));

	while (in.left > 0 && ops++ < 4096) {
		uint8_t op = take8(&in);
		struct rump_sqe sqe;
		struct rump_cqe cqe;
		int64_t n;

		switch (op % 10) {
		case 0:         /* the client moves its tail */
			hdr->sq.tail = take32(&in);
			break;
		case 1:         /* ... or nudges it */
			hdr->sq.tail += take8(&in) % 8;
			break;
		case 2:         /* ... or scribbles on the server's head */
			hdr->sq.head = take32(&in);
			break;
		case 3: {       /* ... or rewrites an entry in place */
			uint32_t i = take8(&in) & (l.sq_entries - 1);
			unsigned char *e = area + l.sq_off +
			                   (size_t)i * sizeof sqe;

			for (size_t k = 0; k < sizeof sqe && in.left > 0; k++)
				e[k] = take8(&in);
			break;
		}
		case 4:         /* the server serves what it finds */
			if (sq_broken)
				break;
			n = rump_ring_ready(&sq);
			if (n < 0) {
				sq_broken = true;
				break;
			}
			require(n <= l.sq_entries);
			for (int64_t k = 0; k < n; k++) {
				int err = rump_ring_pop(&sq, &sqe);
				volatile unsigned char sink;

				require(err == 0);
				if (!rump_area_buf_ok(&l, sqe.buf, sqe.len))
					continue;
				if (sqe.len > 0) {
					unsigned char *b = area + l.buf_off +
					                   sqe.buf;

					sink = b[0];
					sink = b[sqe.len - 1];
					(void)sink;
				}
			}
			rump_ring_release(&sq);
			break;
		case 5:         /* the client moves the completion head */
			hdr->cq.head = take32(&in);
			break;
		case 6:         /* the server completes a request */
			if (cq_broken)
				break;
			memset(&cqe, 0, sizeof cqe);
			cqe.user_data = take32(&in);
			n = rump_ring_space(&cq);
			if (n < 0) {
				cq_broken = true;
				break;
			}
			require(n <= l.cq_entries);
			if (rump_ring_push(&cq, &cqe) == EPROTO)
				cq_broken = true;
			rump_ring_publish(&cq);
			break;
		case 7:         /* the client flips flags */
			hdr->sq.flags = take32(&in);
			hdr->cq.flags = take32(&in);
			break;
		case 8:         /* the server goes to sleep and wakes */
			if (!sq_broken && !rump_ring_prepare_wait(&sq)) {
				require(hdr->sq.flags == RUMP_RINGF_WAITING);
				rump_ring_end_wait(&sq);
			}
			break;
		case 9:         /* garbage over the whole index block */
			for (size_t k = 0; k < sizeof *hdr && in.left > 0;
			     k += 4)
				memset(area + k, take8(&in), 4);
			break;
		}
	}
	free(area);
	return 0;
}
