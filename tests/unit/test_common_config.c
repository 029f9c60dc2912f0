// SPDX-License-Identifier: MIT
//
// The config table: defaults, environment, flags, ranges, and the one-line
// errors a user sees for a bad flag.

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common.h"

typedef struct cfg {
	int64_t port;
	char *name;
	bool fast;
	double rate;
} cfg;

static const dtx_cfg_opt table[] = {
	{ "port", DTX_CFG_INT, offsetof(cfg, port), 1, 65535, "7000", "port" },
	{ "name", DTX_CFG_STR, offsetof(cfg, name), 0, 0, "node", "name" },
	{ "fast", DTX_CFG_BOOL, offsetof(cfg, fast), 0, 0, "false", "fast" },
	{ "rate", DTX_CFG_DOUBLE, offsetof(cfg, rate), 0, 1000, "1.5", "rate" },
};
#define NT (sizeof(table) / sizeof(table[0]))

static void
test_defaults(void **state)
{
	(void)state;
	cfg c = { 0 };
	char err[256];
	assert_int_equal(dtx_cfg_load(table, NT, &c, NULL, 0, NULL, NULL, 0,
	                     NULL, err, sizeof(err)),
	    DTX_OK);
	assert_int_equal(c.port, 7000);
	assert_string_equal(c.name, "node");
	assert_false(c.fast);
	assert_true(c.rate > 1.49 && c.rate < 1.51);
	dtx_cfg_fini(table, NT, &c);
	assert_null(c.name);
}

static void
test_env_then_flags(void **state)
{
	(void)state;
	cfg c = { 0 };
	char err[256];
	char *argv[] = { "--name=alpha", "pos1", "--fast", "--rate", "2" };
	char *pos[2];
	int np = 0;
	setenv("TDTX_PORT", "8000", 1);
	setenv("TDTX_NAME", "fromenv", 1);
	assert_int_equal(dtx_cfg_load(table, NT, &c, "TDTX_", 5, argv, pos, 2,
	                     &np, err, sizeof(err)),
	    DTX_OK);
	assert_int_equal(c.port, 8000); // environment beats default
	assert_string_equal(c.name, "alpha"); // flag beats environment
	assert_true(c.fast);
	assert_int_equal(np, 1);
	assert_string_equal(pos[0], "pos1");
	dtx_cfg_fini(table, NT, &c);
	unsetenv("TDTX_PORT");
	unsetenv("TDTX_NAME");
}

static void
expect_error(char **argv, int argc, const char *needle)
{
	cfg c = { 0 };
	char err[256] = "";
	assert_int_equal(dtx_cfg_load(table, NT, &c, NULL, argc, argv, NULL, 0,
	                     NULL, err, sizeof(err)),
	    DTX_EINVAL);
	if (strstr(err, needle) == NULL)
		fail_msg("error '%s' lacks '%s'", err, needle);
	dtx_cfg_fini(table, NT, &c);
}

static void
test_bad_flags(void **state)
{
	(void)state;
	char *a1[] = { "--prot", "1" };
	expect_error(a1, 2, "unknown flag '--prot' (known: --port");
	char *a2[] = { "--port", "70000" };
	expect_error(a2, 2, "out of range (1 to 65535)");
	char *a3[] = { "--port", "12x" };
	expect_error(a3, 2, "not a whole number");
	char *a4[] = { "--port" };
	expect_error(a4, 1, "needs a value");
	char *a5[] = { "--fast=maybe" };
	expect_error(a5, 1, "not true/false");
	char *a6[] = { "stray" };
	expect_error(a6, 1, "unexpected argument 'stray'");
	char *a7[] = { "-p" };
	expect_error(a7, 1, "unknown flag '-p'");
}

static void
test_oom(void **state)
{
	(void)state;
	char *argv[] = { "--name", "x" };
	for (long n = 0; n < 4; n++) {
		cfg c = { 0 };
		char err[256];
		dtx_alloc_fail_after(n);
		dtx_err rv = dtx_cfg_load(table, NT, &c, NULL, 2, argv, NULL, 0,
		    NULL, err, sizeof(err));
		bool failed = dtx_alloc_failed();
		dtx_alloc_fail_after(-1);
		assert_int_equal(rv, failed ? DTX_ENOMEM : DTX_OK);
		dtx_cfg_fini(table, NT, &c);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_env_then_flags),
		cmocka_unit_test(test_bad_flags),
		cmocka_unit_test(test_oom),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
