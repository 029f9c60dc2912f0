// SPDX-License-Identifier: MIT
//
// The dtx command against a real local cluster (started by the 2PC test
// helpers on free ports), run in-process through cli_main: `cluster
// status` exits 1 once a node is down, `cluster stop` on nothing says so
// and exits 1, `accounts init` creates the accounts once and then changes
// nothing, refusing other arguments, so that `transfer 1 2 10` works on a
// fresh cluster; `transfer --mode saga` without an orchestrator is
// "unavailable" (69), not "unknown".

#include <fcntl.h>
#include <nng/nng.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../capture.h"
#include "cli.h"
#include "test_2pc_util.h"

// Runs `dtx ARGS...` with stdout and stderr captured into *out
// (malloc'd); returns the exit code.
static int
run_dtx(tu_fx *fx, char **out, const char *const *args)
{
	char *argv[32];
	int argc = tc_argv(argv, 32, "dtx", args);
	char path[400];
	snprintf(path, sizeof(path), "%s/cli-out.txt", fx->dir);
	int rc = tc_capture(path, true, cli_main, argc, argv, out);
	assert_non_null(*out);
	printf("$ dtx");
	for (int i = 1; i < argc; i++)
		printf(" %s", argv[i]);
	printf("  -> %d\n%s", rc, *out);
	return rc;
}

#define DTX(fx, out, ...)                                                      \
	run_dtx(fx, out, (const char *const[]) { __VA_ARGS__, NULL })

static void
expect(tu_fx *fx, int want_rc, const char *want_text, const char *const *args)
{
	char *out;
	int rc = run_dtx(fx, &out, args);
	assert_int_equal(rc, want_rc);
	if (want_text != NULL)
		assert_non_null(strstr(out, want_text));
	free(out);
}

#define EXPECT(fx, rc, text, ...)                                              \
	expect(fx, rc, text, (const char *const[]) { __VA_ARGS__, NULL })

static void
test_accounts_and_transfer(void **state)
{
	tu_fx *fx = *state;
	const char *d = fx->dir;
	EXPECT(fx, HX_EXIT_OK, "coordinator", "cluster", "status", "--dir", d);
	EXPECT(fx, HX_EXIT_OK, "\"ok\":true", "cluster", "status", "--dir", d,
	    "--json");
	// The first run creates the accounts, the second changes nothing.
	EXPECT(fx, HX_EXIT_OK, "created 4 accounts", "accounts", "init", "4",
	    "--balance", "50", "--dir", d);
	EXPECT(fx, HX_EXIT_OK, "unchanged", "accounts", "init", "4",
	    "--balance", "50", "--dir", d);
	EXPECT(fx, HX_EXIT_OK, "committed", "transfer", "1", "2", "10", "--dir",
	    d);
	// Transfers keep the total, so the same arguments still match.
	EXPECT(fx, HX_EXIT_OK, "unchanged", "accounts", "init", "4",
	    "--balance", "50", "--dir", d);
	EXPECT(fx, HX_EXIT_CONFLICT, "nothing changed", "accounts", "init", "5",
	    "--balance", "50", "--dir", d);
	EXPECT(fx, HX_EXIT_CONFLICT, "nothing changed", "accounts", "init", "4",
	    "--balance", "60", "--dir", d);
	EXPECT(fx, HX_EXIT_USAGE, NULL, "accounts", "init", "1", "--dir", d);
	EXPECT(
	    fx, HX_EXIT_OK, "\"total\":200", "balances", "--dir", d, "--json");
	EXPECT(fx, HX_EXIT_OK, "acct:1      40", "balances", "--dir", d);
	// No saga orchestrator in this cluster: nothing was sent.
	EXPECT(fx, HX_EXIT_UNAVAILABLE, "saga orchestrator", "transfer", "1",
	    "2", "10", "--mode", "saga", "--dir", d);
	EXPECT(
	    fx, HX_EXIT_OK, "\"total\":200", "balances", "--dir", d, "--json");
}

static void
test_status_and_stop(void **state)
{
	tu_fx *fx = *state;
	const char *d = fx->dir;
	char none[300];
	snprintf(none, sizeof(none), "%s/no-cluster-here", d);
	EXPECT(
	    fx, HX_EXIT_UNAVAILABLE, NULL, "cluster", "status", "--dir", none);
	EXPECT(fx, HX_EXIT_UNAVAILABLE, NULL, "transfer", "1", "2", "10",
	    "--dir", none);
	EXPECT(fx, HX_EXIT_UNAVAILABLE, NULL, "accounts", "init", "4", "--dir",
	    none);
	EXPECT(fx, HX_EXIT_INVALID, "nothing to stop", "cluster", "stop",
	    "--dir", none);

	EXPECT(fx, HX_EXIT_OK, NULL, "cluster", "status", "--dir", d);
	assert_int_equal(hx_cluster_signal(fx->cl, 2, SIGKILL), DTX_OK);
	EXPECT(fx, HX_EXIT_INVALID, "down", "cluster", "status", "--dir", d);
	EXPECT(fx, HX_EXIT_INVALID, "\"ok\":false", "cluster", "status",
	    "--dir", d, "--json");
	EXPECT(fx, HX_EXIT_OK, "stopped", "cluster", "stop", "--dir", d);
	EXPECT(fx, HX_EXIT_INVALID, "nothing to stop", "cluster", "stop",
	    "--dir", d);
	// Every node down is not a healthy cluster either.
	EXPECT(fx, HX_EXIT_INVALID, "down", "cluster", "status", "--dir", d);
}

// A node blocked on an in-doubt transaction answers HEALTH but is not
// healthy: the coordinator dies right after forcing COMMIT, both
// participants stay blocked, and `cluster status` exits 1 naming them
// blocked until the coordinator returns.
static void
test_blocked_status(void **state)
{
	tu_fx *fx = *state;
	const char *d = fx->dir;
	assert_int_equal(tu_init_accounts(fx, 8, 1000), DTX_OK);
	int64_t a = tu_acct_on(fx, 1, 0), b = tu_acct_on(fx, 2, 0);
	tu_transfer_armed(fx, "coord.after_commit_log", a, b);
	assert_int_equal(hx_cluster_wait_exit(fx->cl, 0, 20000, NULL), DTX_OK);
	uint64_t end = dtx_mono_ns() + 60000000000u;
	bool both = false;
	while (!both && dtx_mono_ns() < end) {
		both = true;
		for (uint32_t id = 1; id <= 2; id++) {
			char st[32] = "";
			if (tu_health(fx, id, st, sizeof(st), NULL, 0, NULL) !=
			        DTX_OK ||
			    strcmp(st, "blocked") != 0)
				both = false;
		}
		if (!both)
			dtx_sleep_ms(50);
	}
	assert_true(both);
	char *out;
	assert_int_equal(
	    DTX(fx, &out, "cluster", "status", "--dir", d, "--json"),
	    HX_EXIT_INVALID);
	hx_jdoc *doc;
	assert_int_equal(
	    hx_json_parse(out, strlen(out), &doc, NULL, 0), DTX_OK);
	int seen = 0;
	for (const hx_jv *n = hx_jv_get(hx_jdoc_root(doc), "nodes")->first; n;
	     n = n->next) {
		int64_t id, blocked;
		assert_int_equal(hx_jv_int(hx_jv_get(n, "id"), &id), DTX_OK);
		if (id != 1 && id != 2)
			continue;
		seen++;
		assert_string_equal(hx_jv_get(n, "health")->s, "blocked");
		assert_false(hx_jv_get(n, "ok")->b);
		assert_int_equal(
		    hx_jv_int(hx_jv_get(n, "blocked"), &blocked), DTX_OK);
		assert_true(blocked >= 1);
	}
	assert_int_equal(seen, 2);
	hx_jdoc_free(doc);
	free(out);
	// With the coordinator down a transfer is not done, and says why.
	EXPECT(fx, HX_EXIT_UNAVAILABLE, "aborted", "transfer", "3", "4", "1",
	    "--dir", d, "--timeout-ms", "2000");
	// The coordinator returns with its logged COMMIT; once the
	// participants have resolved, the cluster is healthy again.
	assert_int_equal(tu_restart(fx, 0), DTX_OK);
	int rc = -1;
	end = dtx_mono_ns() + 60000000000u;
	while (rc != HX_EXIT_OK && dtx_mono_ns() < end) {
		rc = DTX(fx, &out, "cluster", "status", "--dir", d);
		free(out);
		if (rc != HX_EXIT_OK)
			dtx_sleep_ms(250);
	}
	assert_int_equal(rc, HX_EXIT_OK);
}

static int
setup(void **state)
{
	tu_fx *fx = calloc(1, sizeof(*fx));
	if (fx == NULL || tu_setup(fx, 2, NULL) != DTX_OK) {
		if (fx != NULL && fx->cl != NULL)
			tu_dump_logs(fx);
		if (fx != NULL)
			tu_teardown(fx);
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	tu_fx *fx = *state;
	int rc = tu_teardown(fx);
	free(fx);
	return rc;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_accounts_and_transfer, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_status_and_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_blocked_status, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	// The commands ran in this process: let nng reap the sockets they
	// closed (it does so on a thread of its own) before LeakSanitizer
	// looks at what is left.
	nng_fini();
	return rc;
}
