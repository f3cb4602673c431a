/* The shared area's layout and the buffer range check at its edges. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rump/ipc.h"

static int layout(uint32_t sq, uint32_t cq, uint64_t buf,
                  struct rump_area_layout *l)
{
	struct rump_ring_setup s = {
		.sq_entries = sq, .cq_entries = cq, .buf_size = buf,
	};

	return rump_area_layout(&s, l);
}

static void test_layout(void **state)
{
	struct rump_area_layout l;

	(void)state;
	assert_int_equal(layout(256, 512, 8u << 20, &l), 0);
	assert_int_equal(l.sq_entries, 256);
	assert_int_equal(l.cq_entries, 512);
	assert_int_equal(l.sq_off, 384);
	assert_int_equal(l.cq_off, 384 + 256 * 64);
	assert_int_equal(l.buf_off, 36864);     /* 33152 rounded to a page */
	assert_int_equal(l.buf_size, 8u << 20);
	assert_int_equal(l.total, 36864 + (8u << 20));

	assert_int_equal(layout(2, 2, 0, &l), 0);
	assert_int_equal(l.sq_off, 384);
	assert_int_equal(l.cq_off, 512);
	assert_int_equal(l.buf_off, 4096);
	assert_int_equal(l.total, 4096);

	/* Entries start 64-byte aligned, buffers page aligned, always. */
	for (uint32_t sq = 2; sq <= RUMP_RING_MAX_ENTRIES; sq *= 2) {
		assert_int_equal(layout(sq, sq, 4096, &l), 0);
		assert_int_equal(l.sq_off % 64, 0);
		assert_int_equal(l.cq_off % 64, 0);
		assert_int_equal(l.buf_off % 4096, 0);
		assert_true(l.cq_off >= l.sq_off + (uint64_t)sq * 64);
		assert_true(l.buf_off >= l.cq_off + (uint64_t)sq * 32);
	}
}

static void test_layout_refused(void **state)
{
	struct rump_area_layout l;

	(void)state;
	assert_int_equal(layout(0, 2, 0, &l), EINVAL);
	assert_int_equal(layout(1, 2, 0, &l), EINVAL);
	assert_int_equal(layout(3, 4, 0, &l), EINVAL);
	assert_int_equal(layout(4, 6, 0, &l), EINVAL);
	assert_int_equal(layout(8, 4, 0, &l), EINVAL);        /* cq < sq */
	assert_int_equal(layout(RUMP_RING_MAX_ENTRIES * 2,
	                        RUMP_RING_MAX_ENTRIES * 2, 0, &l), EINVAL);
	assert_int_equal(layout(2, RUMP_RING_MAX_ENTRIES * 2, 0, &l), EINVAL);
	assert_int_equal(layout(2, 0x80000000u, 0, &l), EINVAL);
	assert_int_equal(layout(2, 2, 4095, &l), EINVAL);
	assert_int_equal(layout(2, 2, 4097, &l), EINVAL);
	/* The whole area must fit the cap, header and rings included. */
	assert_int_equal(layout(2, 2, RUMP_AREA_MAX_SIZE, &l), EINVAL);
	assert_int_equal(layout(2, 2, RUMP_AREA_MAX_SIZE - 4096, &l), 0);
	assert_int_equal(l.total, RUMP_AREA_MAX_SIZE);
	assert_int_equal(layout(2, 2, UINT64_MAX & ~4095ull, &l), EINVAL);
	assert_int_equal(layout(RUMP_RING_MAX_ENTRIES, RUMP_RING_MAX_ENTRIES,
	                        RUMP_AREA_MAX_SIZE - 4096, &l), EINVAL);
}

static void test_buf_ok(void **state)
{
	struct rump_area_layout l;

	(void)state;
	assert_int_equal(layout(2, 2, 8192, &l), 0);
	assert_true(rump_area_buf_ok(&l, 0, 0));
	assert_true(rump_area_buf_ok(&l, 0, 8192));
	assert_true(rump_area_buf_ok(&l, 8191, 1));
	assert_true(rump_area_buf_ok(&l, 8192, 0));
	assert_false(rump_area_buf_ok(&l, 8192, 1));
	assert_false(rump_area_buf_ok(&l, 0, 8193));
	assert_false(rump_area_buf_ok(&l, 8193, 0));
	assert_false(rump_area_buf_ok(&l, 1, 8192));
	/* Sums that wrap around 2^64 must not pass. */
	assert_false(rump_area_buf_ok(&l, UINT64_MAX, 1));
	assert_false(rump_area_buf_ok(&l, 1, UINT64_MAX));
	assert_false(rump_area_buf_ok(&l, UINT64_MAX, UINT64_MAX));
	assert_false(rump_area_buf_ok(&l, 4096, UINT64_MAX - 4095));

	assert_int_equal(layout(2, 2, 0, &l), 0);
	assert_true(rump_area_buf_ok(&l, 0, 0));
	assert_false(rump_area_buf_ok(&l, 0, 1));
	assert_false(rump_area_buf_ok(&l, 1, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_layout_refused),
		cmocka_unit_test(test_buf_ok),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
