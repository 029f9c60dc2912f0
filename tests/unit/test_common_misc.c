// SPDX-License-Identifier: MIT
//
// CRC32C against published check values, the PRNG's determinism and range,
// error names, and the allocation failure hook.

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common.h"

static void
test_crc32c_vectors(void **state)
{
	(void)state;
	// RFC 3720 B.4 and the common "123456789" check value.
	assert_int_equal(dtx_crc32c(0, "123456789", 9), 0xE3069283u);
	unsigned char zeros[32] = { 0 };
	assert_int_equal(dtx_crc32c(0, zeros, 32), 0x8A9136AAu);
	unsigned char ones[32];
	memset(ones, 0xff, sizeof(ones));
	assert_int_equal(dtx_crc32c(0, ones, 32), 0x62A8AB43u);
	unsigned char inc[32];
	for (int i = 0; i < 32; i++)
		inc[i] = (unsigned char)i;
	assert_int_equal(dtx_crc32c(0, inc, 32), 0x46DD794Eu);
}

static void
test_crc32c_incremental(void **state)
{
	(void)state;
	unsigned char buf[1000];
	uint64_t s = 7;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)dtx_rand_next(&s);
	uint32_t whole = dtx_crc32c(0, buf, sizeof(buf));
	for (size_t cut = 0; cut <= sizeof(buf); cut += 37) {
		uint32_t c = dtx_crc32c(0, buf, cut);
		c = dtx_crc32c(c, buf + cut, sizeof(buf) - cut);
		assert_int_equal(c, whole);
	}
	buf[500] ^= 1;
	assert_int_not_equal(dtx_crc32c(0, buf, sizeof(buf)), whole);
}

static void
test_rand(void **state)
{
	(void)state;
	uint64_t a = 42, b = 42;
	for (int i = 0; i < 100; i++)
		assert_int_equal(dtx_rand_next(&a), dtx_rand_next(&b));
	int seen[7] = { 0 };
	for (int i = 0; i < 7000; i++) {
		uint64_t r = dtx_rand_below(&a, 7);
		assert_true(r < 7);
		seen[r]++;
	}
	for (int i = 0; i < 7; i++)
		assert_true(seen[i] > 800 && seen[i] < 1200);
}

static void
test_errors(void **state)
{
	(void)state;
	for (int e = 0; e < DTX_ERR_COUNT; e++) {
		assert_non_null(dtx_strerror((dtx_err)e));
		assert_true(strncmp(dtx_errname((dtx_err)e), "DTX_", 4) == 0);
	}
	assert_string_equal(dtx_strerror(DTX_ERR_COUNT), "unknown error");
	assert_int_equal(dtx_from_errno(ENOSPC), DTX_ENOSPC);
	assert_int_equal(dtx_from_errno(ENOENT), DTX_ENOENT);
	assert_int_equal(dtx_from_errno(EIO), DTX_EIO);
	dtx_log_level lv;
	assert_int_equal(dtx_log_level_parse("WARN", &lv), DTX_OK);
	assert_int_equal(lv, DTX_LOG_WARN);
	assert_int_equal(dtx_log_level_parse("loud", &lv), DTX_EINVAL);
}

static void
test_alloc_hook(void **state)
{
	(void)state;
	dtx_alloc_fail_after(2);
	void *a = dtx_alloc(8), *b = dtx_alloc(8), *c = dtx_alloc(8);
	assert_non_null(a);
	assert_non_null(b);
	assert_null(c);
	assert_true(dtx_alloc_failed());
	dtx_alloc_fail_after(-1);
	c = dtx_strdup("abc");
	assert_string_equal(c, "abc");
	assert_false(dtx_alloc_failed());
	dtx_free(a);
	dtx_free(b);
	dtx_free(c);
	dtx_free(NULL);
}

// dtx_grow makes room for element n, doubling from first, and leaves the
// array as it was when the allocation fails.
static void
test_grow(void **state)
{
	(void)state;
	uint32_t *a = NULL;
	size_t n = 0, cap = 0;
	for (; n < 100; n++) {
		assert_int_equal(DTX_GROW(a, n, cap, 4), DTX_OK);
		assert_true(n < cap);
		a[n] = (uint32_t)n;
	}
	assert_int_equal(cap, 128);
	dtx_alloc_fail_after(0);
	size_t full = cap;
	for (; n < full; n++)
		assert_int_equal(DTX_GROW(a, n, cap, 4), DTX_OK);
	assert_int_equal(DTX_GROW(a, n, cap, 4), DTX_ENOMEM);
	dtx_alloc_fail_after(-1);
	assert_int_equal(cap, full);
	for (size_t i = 0; i < 100; i++)
		assert_int_equal(a[i], i);
	dtx_free(a);
}

// dtx_rmtree removes a whole tree without following a link out of it, and
// a missing path is not an error.
static void
test_rmtree(void **state)
{
	(void)state;
	char base[64], d[128], f[160], keep[96], ln[160];
	snprintf(base, sizeof(base), "/tmp/dtx-rmtree-XXXXXX");
	assert_non_null(mkdtemp(base));
	snprintf(d, sizeof(d), "%s/tree/a/b", base);
	assert_int_equal(dtx_mkdir_p(d), DTX_OK);
	snprintf(f, sizeof(f), "%s/file", d);
	FILE *fp = fopen(f, "w");
	assert_non_null(fp);
	fputs("x", fp);
	fclose(fp);
	snprintf(keep, sizeof(keep), "%s/keep", base);
	assert_int_equal(dtx_mkdir_p(keep), DTX_OK);
	snprintf(f, sizeof(f), "%s/kept", keep);
	fp = fopen(f, "w");
	assert_non_null(fp);
	fclose(fp);
	snprintf(ln, sizeof(ln), "%s/tree/link", base);
	assert_int_equal(symlink(keep, ln), 0);

	snprintf(d, sizeof(d), "%s/tree", base);
	assert_int_equal(dtx_rmtree(d), DTX_OK);
	struct stat st;
	assert_int_not_equal(lstat(d, &st), 0);
	assert_int_equal(stat(f, &st), 0);
	assert_int_equal(dtx_rmtree(d), DTX_OK);
	assert_int_equal(dtx_rmtree(base), DTX_OK);
	assert_int_not_equal(lstat(base, &st), 0);
}

static bool
stop_after_two(void *arg)
{
	return ++*(int *)arg > 2;
}

// dtx_nap_ms sleeps its whole time unless stop says otherwise; it asks stop
// between slices of at most 20 ms.
static void
test_nap_and_sort(void **state)
{
	(void)state;
	int asked = 0;
	uint64_t t0 = dtx_mono_ns();
	dtx_nap_ms(10000, stop_after_two, &asked);
	uint64_t t1 = dtx_mono_ns();
	assert_int_equal(asked, 3);
	assert_true(t1 - t0 < 1000000000u);
	asked = -1000;
	dtx_nap_ms(30, stop_after_two, &asked);
	assert_true(dtx_mono_ns() - t1 >= 30000000u);
	assert_true(asked > -1000);

	uint64_t v[] = { 5, UINT64_MAX, 0, 5, 3 };
	dtx_sort_u64(v, 5);
	uint64_t want[] = { 0, 3, 5, 5, UINT64_MAX };
	assert_memory_equal(v, want, sizeof(v));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_vectors),
		cmocka_unit_test(test_crc32c_incremental),
		cmocka_unit_test(test_rand),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_alloc_hook),
		cmocka_unit_test(test_grow),
		cmocka_unit_test(test_rmtree),
		cmocka_unit_test(test_nap_and_sort),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
