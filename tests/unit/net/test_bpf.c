/*
 * rumpnet's classic BPF: the checker refuses what could fault or loop, and
 * the interpreter gives the answers of programs as tcpdump -dd compiles
 * them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bpf.h"

#define I(c, t, f, kk) { .code = (c), .jt = (t), .jf = (f), .k = (kk) }
#define N(p) (sizeof(p) / sizeof((p)[0]))

/* tcpdump -dd "ip and tcp and port 80" (IPv4 only), as Linux prints it. */
static const struct rump_net_bpf_insn tcp80[] = {
	I(0x28, 0, 0, 0x0000000c), I(0x15, 0, 10, 0x00000800),
	I(0x30, 0, 0, 0x00000017), I(0x15, 0, 8, 0x00000006),
	I(0x28, 0, 0, 0x00000014), I(0x45, 6, 0, 0x00001fff),
	I(0xb1, 0, 0, 0x0000000e), I(0x48, 0, 0, 0x0000000e),
	I(0x15, 2, 0, 0x00000050), I(0x48, 0, 0, 0x00000010),
	I(0x15, 0, 1, 0x00000050), I(0x06, 0, 0, 0x00040000),
	I(0x06, 0, 0, 0x00000000),
};

static void
frame_tcp(uint8_t *f, uint16_t sport, uint16_t dport, uint8_t proto)
{
	memset(f, 0, 64);
	f[12] = 0x08;                  /* IPv4 */
	f[14] = 0x45;                  /* version 4, 20-byte header */
	f[23] = proto;
	f[34] = (uint8_t)(sport >> 8);
	f[35] = (uint8_t)sport;
	f[36] = (uint8_t)(dport >> 8);
	f[37] = (uint8_t)dport;
}

static void
test_tcpdump_program(void **state)
{
	uint8_t f[64];

	(void)state;
	assert_int_equal(bpf_validate(tcp80, N(tcp80)), 0);
	frame_tcp(f, 40000, 80, 6);
	assert_int_equal(bpf_run(tcp80, N(tcp80), f, sizeof(f)), 0x40000);
	frame_tcp(f, 80, 40000, 6);
	assert_int_equal(bpf_run(tcp80, N(tcp80), f, sizeof(f)), 0x40000);
	frame_tcp(f, 40000, 81, 6);
	assert_int_equal(bpf_run(tcp80, N(tcp80), f, sizeof(f)), 0);
	frame_tcp(f, 40000, 80, 17);   /* UDP */
	assert_int_equal(bpf_run(tcp80, N(tcp80), f, sizeof(f)), 0);
	/* Cut before the ports: the load fails, the frame is not taken. */
	frame_tcp(f, 40000, 80, 6);
	assert_int_equal(bpf_run(tcp80, N(tcp80), f, 36), 0);
}

static void
test_empty_accepts_all(void **state)
{
	uint8_t f[60] = { 0 };

	(void)state;
	assert_int_equal(bpf_validate(NULL, 0), 0);
	assert_int_equal(bpf_run(NULL, 0, f, sizeof(f)), sizeof(f));
}

static void
test_checker_refuses(void **state)
{
	const struct rump_net_bpf_insn jump_out[] = {
		I(0x15, 5, 0, 1), I(0x06, 0, 0, 1),
	};
	const struct rump_net_bpf_insn ja_out[] = {
		I(0x05, 0, 0, 1), I(0x06, 0, 0, 1),
	};
	const struct rump_net_bpf_insn no_ret[] = { I(0x28, 0, 0, 12) };
	const struct rump_net_bpf_insn div0[] = {
		I(0x34, 0, 0, 0), I(0x06, 0, 0, 1),
	};
	const struct rump_net_bpf_insn mem_out[] = {
		I(0x60, 0, 0, 16), I(0x06, 0, 0, 1),
	};
	const struct rump_net_bpf_insn st_out[] = {
		I(0x02, 0, 0, 99), I(0x06, 0, 0, 1),
	};
	const struct rump_net_bpf_insn bad_op[] = {
		I(0xff, 0, 0, 0), I(0x06, 0, 0, 1),
	};
	const struct rump_net_bpf_insn wide[] = {
		I(0x106, 0, 0, 1),
	};
	static struct rump_net_bpf_insn too_long[RUMP_NET_BPF_MAX + 1];

	(void)state;
	assert_int_equal(bpf_validate(jump_out, N(jump_out)), EINVAL);
	assert_int_equal(bpf_validate(ja_out, N(ja_out)), EINVAL);
	assert_int_equal(bpf_validate(no_ret, N(no_ret)), EINVAL);
	assert_int_equal(bpf_validate(div0, N(div0)), EINVAL);
	assert_int_equal(bpf_validate(mem_out, N(mem_out)), EINVAL);
	assert_int_equal(bpf_validate(st_out, N(st_out)), EINVAL);
	assert_int_equal(bpf_validate(bad_op, N(bad_op)), EINVAL);
	assert_int_equal(bpf_validate(wide, N(wide)), EINVAL);
	too_long[RUMP_NET_BPF_MAX].code = 0x06;
	assert_int_equal(bpf_validate(too_long, N(too_long)), EINVAL);
}

static void
test_division_by_x_zero_drops(void **state)
{
	/* A = 10; X = 0; A /= X -> the frame is dropped, not a fault. */
	const struct rump_net_bpf_insn p[] = {
		I(0x00, 0, 0, 10), I(0x01, 0, 0, 0), I(0x3c, 0, 0, 0),
		I(0x16, 0, 0, 0),
	};
	uint8_t f[20] = { 0 };

	(void)state;
	assert_int_equal(bpf_validate(p, N(p)), 0);
	assert_int_equal(bpf_run(p, N(p), f, sizeof(f)), 0);
}

static void
test_scratch_and_msh(void **state)
{
	/* X = 4 * (f[14] & 0xf); M[3] = X; A = M[3]; return A. */
	const struct rump_net_bpf_insn p[] = {
		I(0xb1, 0, 0, 14), I(0x03, 0, 0, 3), I(0x60, 0, 0, 3),
		I(0x16, 0, 0, 0),
	};
	uint8_t f[20] = { 0 };

	(void)state;
	f[14] = 0x46;
	assert_int_equal(bpf_validate(p, N(p)), 0);
	assert_int_equal(bpf_run(p, N(p), f, sizeof(f)), 24);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcpdump_program),
		cmocka_unit_test(test_empty_accepts_all),
		cmocka_unit_test(test_checker_refuses),
		cmocka_unit_test(test_division_by_x_zero_drops),
		cmocka_unit_test(test_scratch_and_msh),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
