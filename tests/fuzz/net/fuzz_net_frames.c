/*
 * libFuzzer: Ethernet frames into the NIC-to-stack path (inet_if_input and
 * all of lwIP behind it), with a TCP listener and a UDP socket open so
 * that segments and datagrams reach the socket layer.  An input is a
 * sequence of frames, each a 16-bit length (little-endian) and the bytes;
 * the stack's replies go to a NIC that drops them.
 *
 * lwIP keeps its state in globals, so the stack is made once and every
 * input runs on it, as frames from a hostile wire would.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inet.h"
#include "rump/nic.h"
#include "rump/rumpkern.h"

static int
drop_output(struct rk_nic *nic, const struct rumpuser_iov *iov, unsigned n)
{
	(void)nic;
	(void)iov;
	(void)n;
	return 0;
}

static int
nop_start(struct rk_nic *nic)
{
	(void)nic;
	return 0;
}

static void
nop_stop(struct rk_nic *nic)
{
	(void)nic;
}

static const struct rk_nic_ops fuzz_nic_ops = {
	.output = drop_output, .start = nop_start, .stop = nop_stop,
};

static struct rk_nic fuzz_nic = {
	.ops = &fuzz_nic_ops,
	.kind = "fuzz",
	.mac = { 0x02, 0, 0, 0, 0, 2 },
	.mtu = 65535,
};
static struct inet_if *fuzz_if;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
discard_done(struct inet_op *op, int64_t result, uint64_t aux)
{
	(void)op;
	(void)result;
	(void)aux;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct rk_runtime_opts o = { .name = "fuzz-net" };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	static struct inet_op accept_op;
	struct rk_runtime *rt;
	struct inet *in;
	struct inet_sock *l, *u;

	(void)argc;
	(void)argv;
	if (rk_runtime_create(&o, &rt) != 0 || inet_create(rt, &in) != 0 ||
	    inet_if_attach(in, &fuzz_nic, &fuzz_if) != 0 ||
	    inet_if_add_addr(fuzz_if, "10.0.0.2/24") != 0 ||
	    inet_if_add_addr(fuzz_if, "fd00::2/64") != 0)
		abort();
	/* Replies to far senders go through the routing hooks. */
	if (inet_add_route(in, "10.1.0.0/16", "10.0.0.1") != 0 ||
	    inet_add_route(in, "2001:db8::/32", "fe80::1") != 0 ||
	    inet_add_route(in, "default6", "fd00::1") != 0 ||
	    inet_add_route(in, "default", "10.0.0.1") != 0)
		abort();
	sin6.sin6_port = htons(80);
	if (inet_socket(in, AF_INET6, SOCK_STREAM, &l) != 0 ||
	    inet_bind(l, (struct sockaddr *)&sin6, sizeof(sin6)) != 0 ||
	    inet_listen(l, 16) != 0)
		abort();
	/* An accept that never completes keeps the listener's queue busy
	 * the way a slow server would. */
	accept_op.kind = INET_OP_ACCEPT;
	accept_op.done = discard_done;
	inet_op_start(l, &accept_op);
	sin.sin_port = htons(53);
	if (inet_socket(in, AF_INET, SOCK_DGRAM, &u) != 0 ||
	    inet_bind(u, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t frame[RK_NIC_FRAME_MAX];
	size_t len;

	while (size >= 2) {
		len = (size_t)data[0] | (size_t)data[1] << 8;
		data += 2;
		size -= 2;
		if (len > size)
			len = size;
		/* Copied, as a NIC's receive buffer would hold it. */
		memcpy(frame, data, len);
		inet_if_input(fuzz_if, frame, len);
		data += len;
		size -= len;
	}
	return 0;
}
