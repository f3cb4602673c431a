/*
 * Commands for the null service: ping, echo, info.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "null_service.h"
#include "probe.h"
#include "rumpctl.h"

#define PING_DEFAULT_COUNT 1000u
#define PING_MAX_COUNT 10000000ul

/* Parses "[-n COUNT] SERVICE" style arguments: one operand, -n if allowed. */
static int
parse_service_args(const char *cmd, int argc, char **argv, int noperands,
                   unsigned *countp, char ***operandsp)
{
	const char *optstring = countp ? "n:" : "";
	unsigned long v;
	char *end;
	int c;

	while ((c = getopt(argc, argv, optstring)) != -1) {
		switch (c) {
		case 'n':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end != '\0' || optarg[0] == '-' ||
			    v == 0 || v > PING_MAX_COUNT)
				return rumpctl_usage(cmd, "bad count '%s' "
				                     "(1 .. %lu)", optarg,
				                     PING_MAX_COUNT);
			*countp = (unsigned)v;
			break;
		default:
			return rumpctl_usage(cmd, "bad option");
		}
	}
	if (argc - optind != noperands)
		return rumpctl_usage(cmd, "expected %d argument%s, got %d",
		                     noperands, noperands == 1 ? "" : "s",
		                     argc - optind);
	*operandsp = argv + optind;
	return RUMPCTL_OK;
}

int
rumpctl_cmd_ping(struct rumpctl *ctl, int argc, char **argv)
{
	struct rump_client *c;
	struct probe_ping ping;
	unsigned count = PING_DEFAULT_COUNT;
	char **operands;
	int error, status;

	status = parse_service_args("ping", argc, argv, 1, &count, &operands);
	if (status != RUMPCTL_OK)
		return status;
	status = rumpctl_connect(ctl, operands[0], RUMP_SERVICE_NULL, true,
	                         &c);
	if (status != RUMPCTL_OK)
		return status;
	printf("service %s (kind %s), boot id %016" PRIx64 "\n",
	       rump_client_service_name(c),
	       probe_kind_name(rump_client_service_kind(c)),
	       rump_client_boot_id(c));
	error = probe_null_ping(c, count, &ping);
	rump_client_close(c);
	if (error)
		return rumpctl_fail("ping %s: %s", operands[0],
		                    strerror(error));
	printf("control NULL: %u round trips, p50 %.1f us, p99 %.1f us\n",
	       ping.control.count, ping.control.p50_us, ping.control.p99_us);
	printf("ring NULL:    %u round trips, p50 %.1f us, p99 %.1f us\n",
	       ping.ring.count, ping.ring.p50_us, ping.ring.p99_us);
	return RUMPCTL_OK;
}

/* Sends text through the ring as well: the control path alone would not
 * show a broken shared area. */
static int
ring_echo(struct rump_client *c, const char *text, size_t len)
{
	struct rump_sqe sqe = { .opcode = RUMP_NULL_OP_ECHO };
	unsigned char *src, *dst;
	uint64_t aux;
	int64_t r;
	int error = 0;

	src = rump_client_buf_alloc(c, len);
	dst = rump_client_buf_alloc(c, len);
	if (src == NULL || dst == NULL) {
		error = ENOBUFS;
		goto out;
	}
	memcpy(src, text, len);
	memset(dst, 0, len);
	sqe.len = (uint32_t)len;
	sqe.buf = rump_client_buf_offset(c, src);
	sqe.arg[0] = rump_client_buf_offset(c, dst);
	r = rump_client_exec(c, &sqe, &aux);
	if (r < 0)
		error = (int)-r;
	else if ((uint64_t)r != len || aux != null_fnv1a64(text, len) ||
	         memcmp(dst, text, len) != 0)
		error = EBADMSG;
out:
	if (dst != NULL)
		rump_client_buf_free(c, dst);
	if (src != NULL)
		rump_client_buf_free(c, src);
	return error;
}

int
rumpctl_cmd_echo(struct rumpctl *ctl, int argc, char **argv)
{
	struct rump_client *c;
	char **operands;
	char *reply = NULL;
	size_t len, reply_len;
	int error, status;

	status = parse_service_args("echo", argc, argv, 2, NULL, &operands);
	if (status != RUMPCTL_OK)
		return status;
	len = strlen(operands[1]);
	if (len > RUMP_MSG_MAX - sizeof(struct rump_msg_hdr))
		return rumpctl_usage("echo", "text too long (%zu bytes, at "
		                     "most %zu)", len, RUMP_MSG_MAX -
		                     sizeof(struct rump_msg_hdr));
	status = rumpctl_connect(ctl, operands[0], RUMP_SERVICE_NULL, true,
	                         &c);
	if (status != RUMPCTL_OK)
		return status;
	reply = malloc(len + 1);
	if (reply == NULL) {
		status = rumpctl_fail("echo: %s", strerror(ENOMEM));
		goto out;
	}
	error = rump_client_call(c, RUMP_NULL_MSG_ECHO, operands[1], len,
	                         reply, len + 1, &reply_len);
	if (error) {
		status = rumpctl_fail("echo %s: %s", operands[0],
		                      strerror(error));
		goto out;
	}
	if (reply_len != len || memcmp(reply, operands[1], len) != 0) {
		status = rumpctl_fail("echo %s: the reply differs from the "
		                      "text sent (%zu bytes back for %zu)",
		                      operands[0], reply_len, len);
		goto out;
	}
	if (len > 0 && (error = ring_echo(c, operands[1], len)) != 0) {
		status = rumpctl_fail("echo %s through the ring: %s",
		                      operands[0], strerror(error));
		goto out;
	}
	printf("%.*s\n", (int)len, reply);
out:
	free(reply);
	rump_client_close(c);
	return status;
}

int
rumpctl_cmd_info(struct rumpctl *ctl, int argc, char **argv)
{
	struct rump_client *c;
	char **operands;
	char target[4096];
	int status;

	status = parse_service_args("info", argc, argv, 1, NULL, &operands);
	if (status != RUMPCTL_OK)
		return status;
	status = rumpctl_connect(ctl, operands[0], RUMP_SERVICE_ANY, false,
	                         &c);
	if (status != RUMPCTL_OK)
		return status;
	printf("service: %s\n", rump_client_service_name(c));
	printf("kind:    %s\n", probe_kind_name(rump_client_service_kind(c)));
	printf("socket:  %s\n",
	       rumpctl_target(ctl, operands[0], target, sizeof(target)));
	printf("boot id: %016" PRIx64 "\n", rump_client_boot_id(c));
	rump_client_close(c);
	return RUMPCTL_OK;
}
