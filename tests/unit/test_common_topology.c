// SPDX-License-Identifier: MIT
//
// The topology file: parsing, the errors a user sees for a bad line, saving
// and reloading, and the key-to-participant route every process shares.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common.h"

static const char *good = "# a cluster\n"
                          "coordinator 0 tcp://127.0.0.1:7100\n"
                          "participant 1 tcp://127.0.0.1:7101  # shard a\n"
                          "\n"
                          "participant 2 ipc:///tmp/p2.sock\n"
                          "saga 5 tcp://127.0.0.1:7105\n"
                          "client 6\n";

static void
test_parse(void **state)
{
	(void)state;
	dtx_topo t;
	char err[128];
	assert_int_equal(dtx_topo_parse(good, &t, err, sizeof(err)), DTX_OK);
	assert_int_equal(t.n, 5);
	assert_int_equal(t.nparts, 2);
	assert_int_equal(t.parts[0], 1);
	assert_int_equal(t.parts[1], 2);
	assert_int_equal(t.max_id, 7);
	assert_string_equal(dtx_topo_find(&t, 2)->url, "ipc:///tmp/p2.sock");
	assert_int_equal(dtx_topo_first(&t, DTX_ROLE_SAGA)->id, 5);
	assert_string_equal(dtx_topo_find(&t, 6)->url, "");
	assert_null(dtx_topo_find(&t, 3));
}

static void
expect_bad(const char *text, const char *needle)
{
	dtx_topo t;
	char err[256] = "";
	assert_int_equal(
	    dtx_topo_parse(text, &t, err, sizeof(err)), DTX_EINVAL);
	if (strstr(err, needle) == NULL)
		fail_msg("error '%s' lacks '%s'", err, needle);
}

static void
test_errors(void **state)
{
	(void)state;
	expect_bad("boss 0 tcp://x:1\n", "line 1: unknown role 'boss'");
	expect_bad("participant\n", "missing node id");
	expect_bad("participant 32 tcp://x:1\n", "not in 0..31");
	expect_bad("participant -1 tcp://x:1\n", "not in 0..31");
	expect_bad("participant 1\n", "needs a url");
	expect_bad("participant 1 http://x\n", "is not tcp://");
	expect_bad("participant 1 tcp://a:1\nsaga 1 tcp://b:2\n",
	    "line 2: node id 1 appears twice");
	expect_bad("participant 1 tcp://a:1 extra\n", "too many fields");
	expect_bad("# nothing\n", "no nodes");
}

static void
test_save_load(void **state)
{
	(void)state;
	dtx_topo t, u;
	char err[128];
	char path[] = "/tmp/dtx-topo-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(dtx_topo_parse(good, &t, err, sizeof(err)), DTX_OK);
	assert_int_equal(dtx_topo_save(&t, path), DTX_OK);
	assert_int_equal(dtx_topo_load(path, &u, err, sizeof(err)), DTX_OK);
	assert_memory_equal(&t, &u, sizeof(t));
	unlink(path);
	assert_int_equal(dtx_topo_load(path, &u, err, sizeof(err)), DTX_ENOENT);
}

static void
test_route(void **state)
{
	(void)state;
	dtx_topo t;
	char err[128];
	assert_int_equal(dtx_topo_parse(good, &t, err, sizeof(err)), DTX_OK);
	int count[3] = { 0 };
	for (int i = 0; i < 1000; i++) {
		char key[32];
		int n = snprintf(key, sizeof(key), "acct:%d", i);
		uint32_t p = dtx_topo_route(&t, key, (size_t)n);
		assert_true(p == 1 || p == 2);
		// Stable: the same key always routes to the same node.
		assert_int_equal(p, dtx_topo_route(&t, key, (size_t)n));
		count[p]++;
	}
	// CRC32C spreads keys roughly evenly.
	assert_true(count[1] > 400 && count[2] > 400);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_save_load),
		cmocka_unit_test(test_route),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
