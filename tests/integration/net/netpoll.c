/*
 * netpoll: POLL requests with short timeouts must all complete.
 *
 *   netpoll SERVICE COUNT
 *
 * Makes one UDP socket (nothing ever arrives on it) and sends COUNT POLL
 * requests for POLLIN on it, with timeouts of 1 ns, 1 us and 100 us in
 * turn, one at a time; each must complete (with 0 ready) within a second.
 * A timeout that fires before the server starts waiting must still end
 * the wait.  Exit status 0 only if every one did.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "rump/client.h"
#include "rump/proto_net.h"

struct wait {
	bool done;
	int64_t result;
};

static void
poll_done(struct rump_request *req, int64_t result, uint64_t aux)
{
	struct wait *w = req->arg;

	(void)aux;
	w->done = true;
	w->result = result;
}

int
main(int argc, char **argv)
{
	static const uint64_t timeouts[] = { 1, 1000, 100000 };
	struct rump_client_opts o = {
		.version = RUMP_CLIENT_OPTS_VERSION,
		.service_kind = RUMP_SERVICE_NET,
		.client_name = "netpoll",
	};
	struct rump_sqe sqe = { 0 };
	struct rump_net_pollfd *pf;
	struct rump_client *c;
	struct rump_request req;
	struct wait w;
	uint64_t handle;
	long count, i;
	int64_t r;
	int error;

	if (argc != 3 || (count = strtol(argv[2], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: netpoll SERVICE COUNT\n");
		return 2;
	}
	if ((error = rump_client_connect(argv[1], &o, &c)) != 0) {
		fprintf(stderr, "netpoll: %s: %s\n", argv[1], strerror(error));
		return 1;
	}
	sqe.opcode = RUMP_NET_OP_SOCKET;
	sqe.arg[0] = AF_INET;
	sqe.arg[1] = SOCK_DGRAM;
	if ((r = rump_client_exec(c, &sqe, NULL)) < 0) {
		fprintf(stderr, "netpoll: socket: %s\n", strerror((int)-r));
		return 1;
	}
	handle = (uint64_t)r;
	if ((pf = rump_client_buf_alloc(c, sizeof(*pf))) == NULL) {
		fprintf(stderr, "netpoll: no room in the shared area\n");
		return 1;
	}
	for (i = 0; i < count; i++) {
		uint64_t t = timeouts[i % 3];

		*pf = (struct rump_net_pollfd){ .handle = handle,
		                                .events = POLLIN };
		memset(&req, 0, sizeof(req));
		req.sqe.opcode = RUMP_NET_OP_POLL;
		req.sqe.buf = rump_client_buf_offset(c, pf);
		req.sqe.len = sizeof(*pf);
		req.sqe.arg[0] = t;
		req.done = poll_done;
		req.arg = &w;
		w.done = false;
		if ((error = rump_client_submit(c, &req)) != 0) {
			fprintf(stderr, "netpoll: submit: %s\n",
			        strerror(error));
			return 1;
		}
		while (!w.done)
			if (rump_client_reap(c, 1000000000u) <= 0)
				break;
		if (!w.done) {
			fprintf(stderr, "netpoll: POLL %ld with a timeout of "
			        "%" PRIu64 " ns did not complete in 1 s\n", i,
			        t);
			return 1;
		}
		if (w.result != 0) {
			fprintf(stderr, "netpoll: POLL %ld: result %" PRId64
			        " on a socket nothing reaches\n", i, w.result);
			return 1;
		}
	}
	rump_client_buf_free(c, pf);
	sqe = (struct rump_sqe){ .opcode = RUMP_NET_OP_CLOSE,
	                         .handle = handle };
	(void)rump_client_exec(c, &sqe, NULL);
	rump_client_close(c);
	printf("netpoll: %ld polls completed\n", count);
	return 0;
}
