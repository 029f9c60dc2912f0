// SPDX-License-Identifier: MIT
//
// dtx trace across a coordinator kill: the coordinator dies right after
// forcing COMMIT (crash point coord.after_commit_log), is restarted and
// re-drives the commit. The trace of that transfer, from the daemons'
// TRACE rings and their logs, holds events of every node (the dead
// coordinator's from its log, its successor's from its ring), and its
// order is consistent with their vector clocks: no event comes after one
// that happened after it, each step's events are pairwise concurrent,
// each receive follows its send, and the restarted coordinator's
// recovery follows the forced COMMIT of the incarnation it replaced.
// `dtx trace` prints it and writes the HTML page.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"
#include "test_2pc_util.h"

#define NACCT 8
#define BAL 1000

static int
setup(void **state)
{
	static char *const debug_env[] = { "DTX_LOG_LEVEL=debug", NULL };
	static char *const *const env[] = { debug_env, debug_env, debug_env,
		NULL };
	static tu_fx fx;
	return tu_setup_bank(state, &fx, 2, env, NACCT, BAL);
}

static clk_vc
full(const clk_vc *v)
{
	clk_vc x = *v;
	x.n = CLK_VC_MAX;
	return x;
}

static bool
happened_before(const hx_trace_ev *a, const hx_trace_ev *b)
{
	clk_vc x = full(&a->vc), y = full(&b->vc);
	return clk_vc_compare(&x, &y) == CLK_VC_BEFORE;
}

// The index of the first event of node with message id what, or -1.
static long
find(const hx_trace *t, uint32_t node, const char *what)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->ev[i].node == node && strcmp(t->ev[i].what, what) == 0)
			return (long)i;
	return -1;
}

static void
dump(const hx_trace *t)
{
	hx_trace_text(t, stdout);
	fflush(stdout);
}

// The order against the vector clocks (and each node's own entry, its
// program order across restarts), pair by pair.
static void
check_order(const hx_trace *t)
{
	for (size_t i = 0; i < t->n; i++) {
		for (size_t j = i + 1; j < t->n; j++) {
			const hx_trace_ev *a = &t->ev[i], *b = &t->ev[j];
			if (happened_before(b, a) ||
			    (a->node == b->node &&
			        b->vc.c[b->node] <= a->vc.c[a->node])) {
				dump(t);
				fail_msg("event %zu happened before %zu but "
				         "comes after it",
				    j, i);
			}
			if (happened_before(a, b))
				assert_true(hx_trace_before(t, i, j));
			if (t->ev[i].step == t->ev[j].step &&
			    hx_trace_before(t, i, j)) {
				dump(t);
				fail_msg("events %zu and %zu share a step but "
				         "are not concurrent",
				    i, j);
			}
		}
		const hx_trace_ev *e = &t->ev[i];
		if (e->kind == PROTO_EV_RECV && e->send >= 0) {
			assert_true((size_t)e->send < i);
			assert_true(happened_before(&t->ev[e->send], e));
		}
		if (i > 0)
			assert_true(t->ev[i - 1].step <= e->step);
	}
}

static void
test_trace_across_coordinator_kill(void **state)
{
	tu_fx *fx = *state;
	tu_pair p = tu_pair_of(fx, 0, 20000);
	uint64_t before = tu_last_txid(fx);
	assert_int_equal(tu_arm(fx, 0, "coord.after_commit_log"), DTX_OK);
	proto_msg rep;
	if (tu_transfer(fx, NULL, PROTO_MODE_2PC, p.a, p.b, 10, &rep, 3000) ==
	    DTX_OK)
		proto_msg_free(&rep);
	uint64_t txid = tu_crashed_txid(fx, 0, before);
	assert_int_equal(tu_restart(fx, 0), DTX_OK);
	tu_settle(fx, true, 60000, "still in doubt after 60 s");
	uint32_t ids[] = { 1, 2 };
	tu_expect_outcome(fx, txid, ids, 2, 1);

	// The rings of the daemons now running, then every node's log.
	hx_trace t;
	hx_trace_init(&t, txid, NULL);
	hx_conn *conn = NULL;
	assert_int_equal(hx_conn_open(fx->topo, &conn), DTX_OK);
	size_t answered = 0;
	assert_int_equal(hx_trace_fetch(conn, &t, 3000, &answered), DTX_OK);
	hx_conn_close(conn);
	assert_int_equal(answered, 3);
	size_t from_rings = t.n;
	assert_true(from_rings > 0);
	char logs[3][512];
	const char *paths[3];
	for (uint32_t i = 0; i < 3; i++) {
		snprintf(
		    logs[i], sizeof(logs[i]), "%s", hx_cluster_log(fx->cl, i));
		paths[i] = logs[i];
	}
	assert_int_equal(hx_trace_add_logs(&t, paths, 3), DTX_OK);
	// The dead coordinator's events exist only in its log.
	assert_true(t.n > from_rings);
	assert_int_equal(hx_trace_order(&t), DTX_OK);

	// Events on every node.
	bool on[3] = { false, false, false };
	for (size_t i = 0; i < t.n; i++)
		if (t.ev[i].node < 3)
			on[t.ev[i].node] = true;
	assert_true(on[0] && on[1] && on[2]);
	check_order(&t);

	// The story: begin, both PREPARED, COMMIT forced, the crash, the
	// successor's recovery, both COMMITTED after it.
	long begin = find(&t, 0, "TXN_START");
	long forced = find(&t, 0, "COMMIT_LOGGED");
	long redrive = find(&t, 0, "REDRIVE");
	long prep1 = find(&t, 1, "PREPARED"), prep2 = find(&t, 2, "PREPARED");
	long com1 = find(&t, 1, "COMMITTED"), com2 = find(&t, 2, "COMMITTED");
	if (begin < 0 || forced < 0 || redrive < 0 || prep1 < 0 || prep2 < 0 ||
	    com1 < 0 || com2 < 0) {
		dump(&t);
		fail_msg("an event is missing");
	}
	assert_int_equal(t.ev[redrive].kind, PROTO_EV_RECOVER);
	assert_true(happened_before(&t.ev[begin], &t.ev[prep1]));
	assert_true(happened_before(&t.ev[prep1], &t.ev[forced]));
	assert_true(happened_before(&t.ev[prep2], &t.ev[forced]));
	// The successor's vector clock forgot its predecessor's (a crash
	// loses memory); its own entry, seeded above the predecessor's,
	// keeps the node's program order, and the trace's order with it.
	assert_true(t.ev[redrive].vc.c[0] > t.ev[forced].vc.c[0]);
	assert_true(hx_trace_before(&t, (size_t)forced, (size_t)redrive));
	assert_true(forced < redrive);
	assert_true(happened_before(&t.ev[redrive], &t.ev[com1]));
	assert_true(happened_before(&t.ev[redrive], &t.ev[com2]));
	hx_trace_fini(&t);

	// dtx trace itself: exit 0, the page written.
	char id[32], html[300];
	snprintf(id, sizeof(id), "%" PRIu64, txid);
	snprintf(html, sizeof(html), "%s/trace.html", fx->dir);
	char *argv[] = { "dtx", "trace", id, "--dir",
		(char *)hx_cluster_dir(fx->cl), "--html", html, NULL };
	assert_int_equal(cli_main(7, argv), HX_EXIT_OK);
	FILE *f = fopen(html, "r");
	assert_non_null(f);
	char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	assert_non_null(strstr(buf, "<svg"));
	assert_non_null(strstr(buf, "marker-end"));
	assert_non_null(strstr(buf, "coord-0"));
	assert_null(strstr(buf, "<script"));
	// An id nothing knows: unknown (2), and a bad one: usage.
	char *none[] = { "dtx", "trace", "12345", "--dir",
		(char *)hx_cluster_dir(fx->cl), NULL };
	assert_int_equal(cli_main(5, none), HX_EXIT_UNKNOWN);
	char *bad[] = { "dtx", "trace", "-x", NULL };
	assert_int_equal(cli_main(3, bad), HX_EXIT_USAGE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trace_across_coordinator_kill),
	};
	return cmocka_run_group_tests(tests, setup, tu_group_teardown);
}
