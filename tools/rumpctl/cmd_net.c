/*
 * rumpctl net: the network service.
 *
 *   net list [SERVICE]                       interfaces, addresses, counters
 *   net pcap [-c COUNT] [-t SECONDS] [-S SERVICE] IFNAME
 *                                            a pcap stream on stdout
 *
 * The capture opens the interface through the raw-frame protocol with an
 * empty filter (every frame) that also sees outbound frames, keeps a batch
 * of FRAME_RECV requests in flight and writes each completed frame as a
 * pcap record (nanosecond timestamps), flushed at once so that a reader
 * on a pipe (tshark -r -) sees frames as they come.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rump/proto_net.h"
#include "rumpctl.h"

#define PCAP_BATCH 64
#define NET_DEFAULT_SERVICE "net"

static int
net_usage(const char *fmt, const char *arg)
{
	return rumpctl_usage("net", fmt, arg);
}

static void
print_if(const struct rump_net_if_info *in)
{
	char a[INET6_ADDRSTRLEN];
	unsigned i;

	printf("%s: %s %s mtu %u mac %02x:%02x:%02x:%02x:%02x:%02x%s\n",
	       in->name, in->kind, in->backing, in->mtu, in->mac[0],
	       in->mac[1], in->mac[2], in->mac[3], in->mac[4], in->mac[5],
	       in->flags & RUMP_NET_IF_INET ? " inet" : "");
	for (i = 0; i < in->naddrs && i < RUMP_NET_MAX_ADDRS; i++) {
		inet_ntop(in->addrs[i].family == 4 ? AF_INET : AF_INET6,
		          in->addrs[i].addr, a, sizeof(a));
		printf("\t%s %s/%u\n", in->addrs[i].family == 4 ? "inet" :
		       "inet6", a, in->addrs[i].prefix_len);
	}
	printf("\tRX packets %" PRIu64 " bytes %" PRIu64 " dropped %" PRIu64
	       " errors %" PRIu64 "\n", in->rx_packets, in->rx_bytes,
	       in->rx_dropped, in->rx_errors);
	printf("\tTX packets %" PRIu64 " bytes %" PRIu64 " dropped %" PRIu64
	       " errors %" PRIu64 "\n", in->tx_packets, in->tx_bytes,
	       in->tx_dropped, in->tx_errors);
	printf("\traw clients %u\n", in->raw_clients);
}

static int
cmd_list(struct rumpctl *ctl, int argc, char **argv)
{
	struct rump_net_if_info *ifs;
	struct rump_client *c;
	size_t len = 0, i;
	int st, e;

	if (argc > 2)
		return net_usage("net list: unexpected '%s'", argv[2]);
	st = rumpctl_connect(ctl, argc == 2 ? argv[1] : NET_DEFAULT_SERVICE,
	                     RUMP_SERVICE_NET, false, &c);
	if (st != RUMPCTL_OK)
		return st;
	ifs = calloc(RUMP_NET_MAX_IFS, sizeof(*ifs));
	if (ifs == NULL) {
		rump_client_close(c);
		return rumpctl_fail("out of memory");
	}
	e = rump_client_call(c, RUMP_NET_MSG_LIST, NULL, 0, ifs,
	                     RUMP_NET_MAX_IFS * sizeof(*ifs), &len);
	if (e == 0)
		for (i = 0; i < len / sizeof(*ifs); i++)
			print_if(&ifs[i]);
	free(ifs);
	rump_client_close(c);
	return e ? rumpctl_fail("net list: %s", strerror(e)) : RUMPCTL_OK;
}

struct capture {
	struct rump_client *client;
	uint64_t handle;
	uint32_t snap;
	uint64_t want, got;      /* frames; want 0: no limit */
	int error;               /* a write failed */
	struct rump_request reqs[PCAP_BATCH];
	void *bufs[PCAP_BATCH];
	int pending[PCAP_BATCH];
};

static int
pcap_header(uint32_t snap)
{
	struct {
		uint32_t magic;
		uint16_t major, minor;
		int32_t zone;
		uint32_t sigfigs, snaplen, linktype;
	} h = { 0xa1b23c4d /* nanosecond timestamps */, 2, 4, 0, 0, snap,
	        1 /* Ethernet */ };

	if (fwrite(&h, sizeof(h), 1, stdout) != 1 || fflush(stdout) != 0)
		return errno ? errno : EIO;
	return 0;
}

static void
frame_done(struct rump_request *req, int64_t result, uint64_t aux)
{
	struct capture *cap = req->arg;
	unsigned i = (unsigned)(req - cap->reqs);
	struct {
		uint32_t sec, nsec, incl, orig;
	} rec;

	cap->pending[i] = 0;
	if (result < 0) {
		if (cap->error == 0)
			cap->error = (int)-result;
		return;
	}
	if (cap->want != 0 && cap->got >= cap->want)
		return;
	rec.sec = (uint32_t)(aux / 1000000000u);
	rec.nsec = (uint32_t)(aux % 1000000000u);
	rec.orig = (uint32_t)result;
	rec.incl = rec.orig < cap->snap ? rec.orig : cap->snap;
	if (fwrite(&rec, sizeof(rec), 1, stdout) != 1 ||
	    fwrite(cap->bufs[i], rec.incl, 1, stdout) != 1 ||
	    fflush(stdout) != 0) {
		cap->error = errno ? errno : EIO;
		return;
	}
	cap->got++;
}

static int
submit_frame(struct capture *cap, unsigned i)
{
	struct rump_request *r = &cap->reqs[i];
	int e;

	memset(r, 0, sizeof(*r));
	r->sqe.opcode = RUMP_NET_OP_FRAME_RECV;
	r->sqe.handle = cap->handle;
	r->sqe.buf = rump_client_buf_offset(cap->client, cap->bufs[i]);
	r->sqe.len = cap->snap;
	r->done = frame_done;
	r->arg = cap;
	if ((e = rump_client_submit(cap->client, r)) == 0)
		cap->pending[i] = 1;
	return e;
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
cmd_pcap(struct rumpctl *ctl, int argc, char **argv)
{
	struct rump_client_opts o = {
		.version = RUMP_CLIENT_OPTS_VERSION,
		.service_kind = RUMP_SERVICE_NET,
		.client_name = "rumpctl-pcap",
		.sq_entries = PCAP_BATCH * 2,
		.buf_size = 16u << 20,
	};
	const char *service = NET_DEFAULT_SERVICE;
	struct rump_net_open req = { 0 };
	struct rump_net_open_reply rep;
	struct rump_net_filter f = { 0 };
	struct capture *cap;
	uint64_t deadline = UINT64_MAX;
	char target[256], *end;
	unsigned i;
	int c, e, st = RUMPCTL_FAIL;
	double secs;

	optind = 1;
	cap = calloc(1, sizeof(*cap));
	if (cap == NULL)
		return rumpctl_fail("out of memory");
	while ((c = getopt(argc, argv, "c:t:S:")) != -1) {
		switch (c) {
		case 'c':
			cap->want = strtoull(optarg, &end, 10);
			if (*end != '\0' || *optarg == '\0') {
				free(cap);
				return net_usage("net pcap: bad count '%s'",
				                 optarg);
			}
			break;
		case 't':
			secs = strtod(optarg, &end);
			if (*end != '\0' || !(secs > 0) || secs > 1e6) {
				free(cap);
				return net_usage("net pcap: bad time '%s'",
				                 optarg);
			}
			deadline = mono_ns() + (uint64_t)(secs * 1e9);
			break;
		case 'S':
			service = optarg;
			break;
		default:
			free(cap);
			return net_usage("net pcap: bad option%s", "");
		}
	}
	if (optind != argc - 1 || strlen(argv[optind]) >= RUMP_NAME_MAX) {
		free(cap);
		return net_usage("net pcap: want one interface name%s", "");
	}
	strcpy(req.name, argv[optind]);
	e = rump_client_connect(ctl->socket ? ctl->socket : service, &o,
	                        &cap->client);
	if (e) {
		free(cap);
		return rumpctl_fail("cannot reach %s: %s",
		                    rumpctl_target(ctl, service, target,
		                                   sizeof(target)),
		                    strerror(e));
	}
	e = rump_client_call(cap->client, RUMP_NET_MSG_OPEN, &req,
	                     sizeof(req), &rep, sizeof(rep), NULL);
	if (e) {
		rumpctl_fail("net pcap: cannot open %s: %s", req.name,
		             strerror(e));
		goto out;
	}
	cap->handle = rep.handle;
	cap->snap = rep.info.mtu + 18;
	f.handle = rep.handle;
	f.flags = RUMP_NET_FILTER_OUTBOUND;
	e = rump_client_call(cap->client, RUMP_NET_MSG_SET_FILTER, &f,
	                     sizeof(f), NULL, 0, NULL);
	if (e) {
		rumpctl_fail("net pcap: cannot set the filter: %s",
		             strerror(e));
		goto out;
	}
	if ((e = pcap_header(cap->snap)) != 0) {
		rumpctl_fail("net pcap: cannot write: %s", strerror(e));
		goto out;
	}
	for (i = 0; i < PCAP_BATCH; i++) {
		cap->bufs[i] = rump_client_buf_alloc(cap->client, cap->snap);
		if (cap->bufs[i] == NULL || submit_frame(cap, i) != 0) {
			rumpctl_fail("net pcap: cannot queue receives");
			goto out;
		}
	}
	while (cap->error == 0 &&
	       (cap->want == 0 || cap->got < cap->want) &&
	       mono_ns() < deadline) {
		e = rump_client_reap(cap->client, 100000000u);
		if (e < 0) {
			cap->error = -e;
			break;
		}
		for (i = 0; i < PCAP_BATCH; i++)
			if (!cap->pending[i] && cap->error == 0 &&
			    submit_frame(cap, i) != 0)
				cap->error = EIO;
	}
	if (cap->error != 0 && cap->error != EPIPE) {
		rumpctl_fail("net pcap: %s", strerror(cap->error));
		goto out;
	}
	st = RUMPCTL_OK;
out:
	/* Closing the session ends the handle and its requests. */
	rump_client_close(cap->client);
	free(cap);
	return st;
}

int
rumpctl_cmd_net(struct rumpctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return cmd_list(ctl, 1, argv);
	if (strcmp(argv[1], "list") == 0)
		return cmd_list(ctl, argc - 1, argv + 1);
	if (strcmp(argv[1], "pcap") == 0)
		return cmd_pcap(ctl, argc - 1, argv + 1);
	return net_usage("net: unknown subcommand '%s'", argv[1]);
}
