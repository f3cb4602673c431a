/*
 * bench-disk: drives a rumpdisk device through librumpclient, the way fio
 * drives a file, and prints one line of results.  bench/disk/run.sh puts
 * it beside fio, nbdkit and qemu-nbd.
 *
 *   bench-disk [-s SERVICE] -d DEVICE -w randread|read|randwrite|write
 *              [-b BLOCKSIZE] [-q DEPTH] [-t SECONDS] [-S SPAN]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rump/client.h"
#include "rump/proto.h"

struct job {
	struct rump_client *client;
	uint64_t handle;
	uint64_t span;            /* bytes of the device the job covers */
	uint32_t block;
	bool random, write;
	uint64_t next_offset;     /* sequential jobs */
	uint64_t rng;
	uint64_t done_ios, done_bytes, errors;
	bool stopping;
	unsigned in_flight;
	struct slot **deferred;   /* refused with EAGAIN: retried after a reap */
	unsigned ndeferred;
};

struct slot {
	struct rump_request req;
	struct job *job;
	void *buf;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: cheap, and good enough to scatter offsets. */
static uint64_t next_random(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t pick_offset(struct job *job)
{
	uint64_t blocks = job->span / job->block;
	uint64_t off;

	if (job->random)
		return (next_random(&job->rng) % blocks) * job->block;
	off = job->next_offset;
	job->next_offset += job->block;
	if (job->next_offset + job->block > job->span)
		job->next_offset = 0;
	return off;
}

static void start_io(struct slot *slot);

static void io_done(struct rump_request *req, int64_t result, uint64_t aux)
{
	struct slot *slot = req->arg;
	struct job *job = slot->job;

	(void)aux;
	job->in_flight--;
	if (result != (int64_t)job->block) {
		job->errors++;
		if (result < 0)
			fprintf(stderr, "bench-disk: request failed: %s\n",
			        strerror((int)-result));
	} else {
		job->done_ios++;
		job->done_bytes += job->block;
	}
	if (!job->stopping)
		start_io(slot);
}

static void start_io(struct slot *slot)
{
	struct job *job = slot->job;
	struct rump_sqe *sqe = &slot->req.sqe;
	int err;

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = job->write ? RUMP_DISK_OP_WRITE : RUMP_DISK_OP_READ;
	sqe->handle = job->handle;
	sqe->offset = pick_offset(job);
	sqe->len = job->block;
	sqe->buf = rump_client_buf_offset(job->client, slot->buf);
	err = rump_client_submit(job->client, &slot->req);
	if (err == EAGAIN) {
		job->deferred[job->ndeferred++] = slot;
		return;
	}
	if (err) {
		fprintf(stderr, "bench-disk: submit: %s\n", strerror(err));
		job->errors++;
		job->stopping = true;
		return;
	}
	job->in_flight++;
}

static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);

	switch (*end) {
	case 'k': case 'K': v <<= 10; break;
	case 'm': case 'M': v <<= 20; break;
	case 'g': case 'G': v <<= 30; break;
	case '\0': break;
	default:
		fprintf(stderr, "bench-disk: bad size '%s'\n", s);
		exit(2);
	}
	return v;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: bench-disk [-s SERVICE] -d DEVICE "
	        "-w randread|read|randwrite|write\n"
	        "                  [-b BLOCKSIZE] [-q DEPTH] [-t SECONDS] "
	        "[-S SPAN]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *service = "disk", *device = NULL, *workload = NULL;
	uint64_t block = 4096, span = 0;
	unsigned depth = 1, seconds = 5;
	struct rump_client_opts opts = { .version = RUMP_CLIENT_OPTS_VERSION,
	                                  .service_kind = RUMP_SERVICE_DISK,
	                                  .client_name = "bench-disk" };
	struct rump_disk_open open_req = { 0 };
	struct rump_disk_open_reply open_reply;
	struct job job = { .rng = 0x9E3779B97F4A7C15ULL };
	struct slot *slots = NULL;
	uint64_t start, elapsed;
	size_t reply_len;
	int opt, err, status = 1;

	while ((opt = getopt(argc, argv, "s:d:w:b:q:t:S:")) != -1) {
		switch (opt) {
		case 's': service = optarg; break;
		case 'd': device = optarg; break;
		case 'w': workload = optarg; break;
		case 'b': block = parse_size(optarg); break;
		case 'q': depth = (unsigned)strtoul(optarg, NULL, 0); break;
		case 't': seconds = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'S': span = parse_size(optarg); break;
		default: usage();
		}
	}
	if (!device || !workload || depth == 0 || depth > 1024 || block == 0 ||
	    block > (64u << 20))
		usage();
	if (!strcmp(workload, "randread"))
		job.random = true;
	else if (!strcmp(workload, "randwrite"))
		job.random = job.write = true;
	else if (!strcmp(workload, "write"))
		job.write = true;
	else if (strcmp(workload, "read"))
		usage();

	/* Room for a full queue of resubmissions while the server has not yet
	 * handed back the slots of the requests it just completed. */
	opts.sq_entries = 2;
	while (opts.sq_entries < 2 * depth)
		opts.sq_entries <<= 1;
	opts.buf_size = ((size_t)depth * block + (1u << 20) + 4095) & ~4095ul;
	err = rump_client_connect(service, &opts, &job.client);
	if (err) {
		fprintf(stderr, "bench-disk: connect to %s: %s\n", service,
		        strerror(err));
		return 1;
	}

	snprintf(open_req.name, sizeof(open_req.name), "%s", device);
	open_req.mode = RUMP_DISK_OPEN_READ | (job.write ? RUMP_DISK_OPEN_WRITE : 0);
	err = rump_client_call(job.client, RUMP_DISK_MSG_OPEN, &open_req,
	                       sizeof(open_req), &open_reply, sizeof(open_reply),
	                       &reply_len);
	if (!err && reply_len != sizeof(open_reply))
		err = EPROTO;
	if (err) {
		fprintf(stderr, "bench-disk: open %s: %s\n", device, strerror(err));
		goto out;
	}
	job.handle = open_reply.handle;
	job.block = (uint32_t)block;
	job.span = span && span < open_reply.info.size ? span : open_reply.info.size;
	if (job.span < block) {
		fprintf(stderr, "bench-disk: %s is smaller than one block\n", device);
		goto out;
	}

	slots = calloc(depth, sizeof(*slots));
	job.deferred = calloc(depth, sizeof(*job.deferred));
	if (!slots || !job.deferred)
		goto out;
	for (unsigned i = 0; i < depth; i++) {
		slots[i].job = &job;
		slots[i].req.done = io_done;
		slots[i].req.arg = &slots[i];
		slots[i].buf = rump_client_buf_alloc(job.client, block);
		if (!slots[i].buf) {
			fprintf(stderr, "bench-disk: no room for buffers\n");
			goto out;
		}
		memset(slots[i].buf, 0xA5 ^ (int)i, block);
	}

	start = now_ns();
	for (unsigned i = 0; i < depth; i++)
		start_io(&slots[i]);
	while (job.in_flight > 0 || job.ndeferred > 0) {
		int n = rump_client_reap(job.client,
		                         job.ndeferred ? 0 : 100000000u);

		if (n < 0) {
			fprintf(stderr, "bench-disk: reap: %s\n", strerror(-n));
			goto out;
		}
		while (job.ndeferred > 0 && !job.stopping) {
			struct slot *slot = job.deferred[--job.ndeferred];
			unsigned before = job.ndeferred;

			start_io(slot);
			if (job.ndeferred > before)
				break; /* refused again: reap first */
		}
		if (job.stopping)
			job.ndeferred = 0;
		if (!job.stopping && now_ns() - start >= seconds * 1000000000ull)
			job.stopping = true;
	}
	elapsed = now_ns() - start;

	printf("%s bs=%" PRIu64 " qd=%u: %.0f IOPS %.1f MiB/s (%" PRIu64
	       " errors)\n", workload, block, depth,
	       (double)job.done_ios * 1e9 / (double)elapsed,
	       (double)job.done_bytes * 1e9 / (double)elapsed / (1 << 20),
	       job.errors);
	status = job.errors ? 1 : 0;
out:
	if (slots) {
		for (unsigned i = 0; i < depth; i++)
			if (slots[i].buf)
				rump_client_buf_free(job.client, slots[i].buf);
		free(slots);
	}
	free(job.deferred);
	rump_client_close(job.client);
	return status;
}
