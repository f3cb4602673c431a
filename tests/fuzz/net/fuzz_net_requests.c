/*
 * libFuzzer: what a hostile client can hand rumpnet besides frames: ring
 * requests through the first check every request meets (net_check_sqe),
 * and BPF filters through the checker, then the interpreter on a frame
 * from the same input (a program the checker accepts must run without a
 * fault on any frame).
 *
 * Input: one struct rump_sqe, then a byte n, then n filter instructions,
 * then the frame.
 */
#include <stdint.h>
#include <string.h>

#include "bpf.h"
#include "net_service.h"
#include "rump/proto_net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rump_net_bpf_insn prog[256];
	struct rump_sqe sqe;
	size_t n;

	if (size < sizeof(sqe) + 1)
		return 0;
	memcpy(&sqe, data, sizeof(sqe));
	(void)net_check_sqe(&sqe);
	data += sizeof(sqe);
	size -= sizeof(sqe);
	n = data[0];
	data++;
	size--;
	if (n * sizeof(prog[0]) > size)
		n = size / sizeof(prog[0]);
	memcpy(prog, data, n * sizeof(prog[0]));
	data += n * sizeof(prog[0]);
	size -= n * sizeof(prog[0]);
	if (bpf_validate(prog, n) == 0)
		(void)bpf_run(prog, n, data, size);
	return 0;
}
