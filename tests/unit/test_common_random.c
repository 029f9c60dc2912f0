// SPDX-License-Identifier: MIT
//
// The CSPRNG helpers: they fill what they are asked to (including requests
// larger than one getrandom call returns), two draws differ, the bits look
// uniform, and bad arguments and a failing call are errors, not crashes.

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common.h"

static void
test_random_bytes(void **state)
{
	(void)state;
	// 1 MiB: more than one getrandom call need return (256 bytes is all
	// it promises in one piece), so the loop must carry on to the end.
	// Pre-filled with zeros, every 64-byte block must then hold a
	// non-zero byte (64 random zero bytes: probability 2^-512).
	size_t n = 1 << 20;
	unsigned char *buf = calloc(1, n);
	assert_non_null(buf);
	assert_int_equal(dtx_random_bytes(buf, n), DTX_OK);
	unsigned long ones = 0;
	for (size_t off = 0; off + 64 <= n; off += 64) {
		bool all_zero = true;
		for (size_t i = 0; i < 64; i++)
			all_zero &= buf[off + i] == 0;
		assert_false(all_zero);
	}
	for (size_t i = 0; i < n; i++)
		ones += (unsigned long)__builtin_popcount(buf[i]);
	// Half the 8 Mi bits, within 1 %: about 70 standard deviations.
	double frac = (double)ones / (8.0 * (double)n);
	assert_true(frac > 0.495 && frac < 0.505);
	free(buf);

	// Nothing asked, nothing done, and a NULL buffer is fine then.
	assert_int_equal(dtx_random_bytes(NULL, 0), DTX_OK);
	unsigned char one[1];
	assert_int_equal(dtx_random_bytes(one, 0), DTX_OK);
}

static void
test_random_u64(void **state)
{
	(void)state;
	uint64_t a = 0, b = 0, seen_or = 0, seen_and = UINT64_MAX;
	assert_int_equal(dtx_random_u64(&a), DTX_OK);
	assert_int_equal(dtx_random_u64(&b), DTX_OK);
	assert_true(a != b);
	// Every bit takes both values within 200 draws.
	for (int i = 0; i < 200; i++) {
		uint64_t v;
		assert_int_equal(dtx_random_u64(&v), DTX_OK);
		seen_or |= v;
		seen_and &= v;
	}
	assert_int_equal(seen_or, UINT64_MAX);
	assert_int_equal(seen_and, 0);
}

static void
test_random_errors(void **state)
{
	(void)state;
	assert_int_equal(dtx_random_bytes(NULL, 8), DTX_EINVAL);
	assert_int_equal(dtx_random_u64(NULL), DTX_EINVAL);
	// A buffer the kernel cannot write: getrandom fails with EFAULT,
	// which comes back as an error (DTX_EIO), not a crash.
	dtx_err err = dtx_random_bytes((void *)(uintptr_t)8, 16);
	assert_int_equal(err, DTX_EIO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_random_u64),
		cmocka_unit_test(test_random_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
