// SPDX-License-Identifier: MIT
//
// The list-append checker on hand-made histories: one per anomaly class
// (G0, G1a, G1b, G1c, G-single, G2) with the shortest cycle and its edges
// as evidence, a valid history that has all three edge kinds, indeterminate
// transactions resolved by the observations, incompatible orders, lost
// appends, duplicates and malformed ops, and the run verdict of the
// list-append workload (no bank checker; saga refused).

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "harness_int.h"

// One transaction by process p: mops is the JSON array text the ok
// completion carries (reads with their lists); the invocation carries the
// same with every read's list replaced by null (inv_mops). type is the
// completion (HX_OP_INVOKE: none).
static void
txn(hx_history *h, int64_t p, const char *inv_mops, const char *mops,
    hx_op_type type, const char *extra)
{
	char v[1024];
	snprintf(v, sizeof(v), "{\"mops\":%s%s}", inv_mops, extra ? extra : "");
	assert_int_equal(
	    hx_history_add(h, p, HX_OP_INVOKE, "txn", v, NULL), DTX_OK);
	if (type == HX_OP_INVOKE)
		return;
	snprintf(v, sizeof(v), "{\"mops\":%s%s}", mops, extra ? extra : "");
	assert_int_equal(hx_history_add(h, p, type, "txn", v, NULL), DTX_OK);
}

// An ok transaction of appends only (the invocation is the same).
static void
app(hx_history *h, int64_t p, const char *mops)
{
	txn(h, p, mops, mops, HX_OP_OK, NULL);
}

static void
rd(hx_history *h, int64_t p, const char *inv, const char *mops)
{
	txn(h, p, inv, mops, HX_OP_OK, NULL);
}

static hx_elle_result
check(hx_history *h, const hx_txn_obs *obs, size_t nobs)
{
	hx_elle_result r;
	assert_int_equal(hx_check_elle(h, obs, nobs, &r), DTX_OK);
	for (size_t i = 0; i < r.c.nanoms; i++) {
		const char *d = r.c.anoms[i].detail;
		if (!hx_json_valid(d, strlen(d)))
			fail_msg("detail is not JSON: %s", d);
	}
	return r;
}

// The first anomaly of kind, or fails.
static const hx_anomaly *
anomaly(const hx_elle_result *r, const char *kind)
{
	for (size_t i = 0; i < r->c.nanoms; i++)
		if (strcmp(r->c.anoms[i].kind, kind) == 0)
			return &r->c.anoms[i];
	fail_msg("no %s anomaly (summary: %s)", kind, r->c.summary);
	return NULL;
}

static void
has(const hx_anomaly *a, const char *text)
{
	if (strstr(a->detail, text) == NULL)
		fail_msg("%s detail lacks '%s': %s", a->kind, text, a->detail);
}

// Only kind k was found (count n), and the verdict is invalid.
static void
only(const hx_elle_result *r, hx_elle_kind k, size_t n)
{
	for (int i = 0; i < HX_ELLE_NKINDS; i++)
		if ((size_t)r->counts[i] != (i == (int)k ? n : 0))
			fail_msg("%s: %zu (summary: %s)",
			    hx_elle_kind_name((hx_elle_kind)i), r->counts[i],
			    r->c.summary);
	assert_int_equal(r->c.valid, HX_VALID_FALSE);
}

static void
test_valid(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	app(h, 0, "[[\"append\",1,1],[\"append\",2,1]]");
	rd(h, 1, "[[\"r\",1,null]]", "[[\"r\",1,[1]]]");
	app(h, 0, "[[\"append\",1,2]]");
	rd(h, 1, "[[\"r\",1,null],[\"r\",2,null]]",
	    "[[\"r\",1,[1,2]],[\"r\",2,[1]]]");
	rd(h, 2, "[[\"r\",2,null]]", "[[\"r\",2,[]]]");
	hx_elle_result r = check(h, NULL, 0);
	assert_int_equal(r.c.valid, HX_VALID_TRUE);
	assert_int_equal(r.txns, 5);
	assert_int_equal(r.committed, 5);
	assert_int_equal(r.reads, 4);
	assert_int_equal(r.keys, 2);
	assert_int_equal(r.edges[0], 1); // ww: T1 -> T3 on key 1
	assert_int_equal(r.edges[2], 2); // rw: [1] -> T3, [] -> T1
	assert_int_equal(r.c.nanoms, 0);
	assert_non_null(strstr(r.c.summary, "no anomaly"));
	assert_true(hx_json_valid(r.c.json, strlen(r.c.json)));
	assert_non_null(strstr(r.c.json, "\"valid\":true,"));
	hx_check_fini(&r.c);
	hx_history_free(h);
}

static void
test_g0(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	app(h, 0, "[[\"append\",1,1],[\"append\",2,1]]");
	app(h, 1, "[[\"append\",1,2],[\"append\",2,2]]");
	rd(h, 2, "[[\"r\",1,null]]", "[[\"r\",1,[1,2]]]");
	rd(h, 2, "[[\"r\",2,null]]", "[[\"r\",2,[2,1]]]");
	hx_elle_result r = check(h, NULL, 0);
	assert_int_equal(r.counts[HX_ELLE_G0], 1);
	const hx_anomaly *a = anomaly(&r, "G0");
	has(a, "\"length\":2");
	has(a, "\"type\":\"ww\",\"key\":1");
	has(a, "\"type\":\"ww\",\"key\":2");
	assert_int_equal(r.c.valid, HX_VALID_FALSE);
	assert_non_null(strstr(r.c.json, "\"valid\":false,"));
	hx_check_fini(&r.c);
	hx_history_free(h);
}

static void
test_g1a(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	txn(h, 0, "[[\"append\",1,5]]", "[[\"append\",1,5]]", HX_OP_FAIL, NULL);
	rd(h, 1, "[[\"r\",1,null]]", "[[\"r\",1,[5]]]");
	hx_elle_result r = check(h, NULL, 0);
	only(&r, HX_ELLE_G1A, 1);
	const hx_anomaly *a = anomaly(&r, "G1a");
	has(a, "\"element\":5");
	has(a, "\"writer-op\":0");
	assert_int_equal(a->op_index, 2);
	hx_check_fini(&r.c);
	hx_history_free(h);
}

static void
test_g1b(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	app(h, 0, "[[\"append\",1,1],[\"append\",1,2]]");
	rd(h, 1, "[[\"r\",1,null]]", "[[\"r\",1,[1]]]");
	rd(h, 1, "[[\"r\",1,null]]", "[[\"r\",1,[1,2]]]");
	hx_elle_result r = check(h, NULL, 0);
	assert_int_equal(r.counts[HX_ELLE_G1B], 1);
	has(anomaly(&r, "G1b"), "\"element\":1,\"read\":[1]");
	// The read also depends both ways on the writer (wr for 1, rw for
	// 2): a G-single, as Elle reports it too.
	assert_int_equal(r.counts[HX_ELLE_GSINGLE], 1);
	assert_int_equal(r.c.valid, HX_VALID_FALSE);
	hx_check_fini(&r.c);
	hx_history_free(h);
}

static void
test_g1c(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	// Each reads the other's append: wr both ways.
	txn(h, 0, "[[\"append\",1,1],[\"r\",2,null]]",
	    "[[\"append\",1,1],[\"r\",2,[1]]]", HX_OP_OK, NULL);
	txn(h, 1, "[[\"append\",2,1],[\"r\",1,null]]",
	    "[[\"append\",2,1],[\"r\",1,[1]]]", HX_OP_OK, NULL);
	hx_elle_result r = check(h, NULL, 0);
	only(&r, HX_ELLE_G1C, 1);
	const hx_anomaly *a = anomaly(&r, "G1c");
	has(a, "\"type\":\"wr\",\"key\":2");
	has(a, "\"type\":\"wr\",\"key\":1");
	hx_check_fini(&r.c);
	hx_history_free(h);
}

static void
test_g_single(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	// Read skew: R sees T1's append to 1 but not its append to 2.
	app(h, 0, "[[\"append\",1,1],[\"append\",2,1]]");
	rd(h, 1, "[[\"r\",1,null],[\"r\",2,null]]",
	    "[[\"r\",1,[1]],[\"r\",2,[]]]");
	rd(h, 2, "[[\"r\",2,null]]", "[[\"r\",2,[1]]]");
	hx_elle_result r = check(h, NULL, 0);
	only(&r, HX_ELLE_GSINGLE, 1);
	const hx_anomaly *a = anomaly(&r, "G-single");
	has(a, "\"length\":2");
	has(a, "\"type\":\"rw\",\"key\":2");
	has(a, "\"type\":\"wr\",\"key\":1");
	has(a, "read key 2 empty");
	hx_check_fini(&r.c);
	hx_history_free(h);
}

static void
test_g2(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	// Write skew: each reads the key the other appends to, empty.
	txn(h, 0, "[[\"r\",1,null],[\"append\",2,1]]",
	    "[[\"r\",1,[]],[\"append\",2,1]]", HX_OP_OK, NULL);
	txn(h, 1, "[[\"r\",2,null],[\"append\",1,1]]",
	    "[[\"r\",2,[]],[\"append\",1,1]]", HX_OP_OK, NULL);
	rd(h, 2, "[[\"r\",1,null],[\"r\",2,null]]",
	    "[[\"r\",1,[1]],[\"r\",2,[1]]]");
	hx_elle_result r = check(h, NULL, 0);
	only(&r, HX_ELLE_G2, 1);
	const hx_anomaly *a = anomaly(&r, "G2");
	has(a, "\"length\":2");
	has(a, "\"type\":\"rw\",\"key\":1");
	has(a, "\"type\":\"rw\",\"key\":2");
	hx_check_fini(&r.c);
	hx_history_free(h);
}

// The shortest cycle is reported: a three-transaction ww cycle beside a
// two-transaction one in the same component gives length 2.
static void
test_shortest_cycle(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	// 1: T1 T2; 2: T2 T1 (a 2-cycle); 3: T2 T3; 4: T3 T1 (a 3-cycle).
	app(h, 0, "[[\"append\",1,1],[\"append\",2,1],[\"append\",4,1]]");
	app(h, 1, "[[\"append\",1,2],[\"append\",2,2],[\"append\",3,2]]");
	app(h, 2, "[[\"append\",3,3],[\"append\",4,3]]");
	rd(h, 3, "[[\"r\",1,null]]", "[[\"r\",1,[1,2]]]");
	rd(h, 3, "[[\"r\",2,null]]", "[[\"r\",2,[2,1]]]");
	rd(h, 3, "[[\"r\",3,null]]", "[[\"r\",3,[2,3]]]");
	rd(h, 3, "[[\"r\",4,null]]", "[[\"r\",4,[3,1]]]");
	hx_elle_result r = check(h, NULL, 0);
	assert_int_equal(r.counts[HX_ELLE_G0], 1);
	has(anomaly(&r, "G0"), "\"length\":2");
	hx_check_fini(&r.c);
	hx_history_free(h);
}

static void
test_indeterminate(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	// txid 7 timed out and aborted everywhere: reading it is G1a.
	txn(h, 0, "[[\"append\",1,1]]", "[[\"append\",1,1]]", HX_OP_INFO,
	    ",\"txid\":7");
	// txid 8 timed out, unresolved: it may have committed.
	txn(h, 1, "[[\"append\",2,1]]", NULL, HX_OP_INVOKE, ",\"txid\":8");
	rd(h, 2, "[[\"r\",1,null],[\"r\",2,null]]",
	    "[[\"r\",1,[1]],[\"r\",2,[1]]]");
	hx_txn_obs obs[] = { { 7, 1, HX_TXN_ABORTED },
		{ 7, 0, HX_TXN_PRESUMED_ABORTED }, { 8, 2, HX_TXN_IN_DOUBT } };
	hx_elle_result r = check(h, obs, 3);
	only(&r, HX_ELLE_G1A, 1);
	assert_int_equal(r.aborted, 1);
	assert_int_equal(r.indeterminate, 1);
	has(anomaly(&r, "G1a"), "\"key\":1");
	hx_check_fini(&r.c);

	// Committed at a participant: txid 7's element may be read.
	obs[0].outcome = HX_TXN_COMMITTED;
	r = check(h, obs, 3);
	assert_int_equal(r.c.valid, HX_VALID_TRUE);
	assert_int_equal(r.committed, 2);
	hx_check_fini(&r.c);
	hx_history_free(h);
}

static void
test_incompatible_and_unknown(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	app(h, 0, "[[\"append\",1,1]]");
	app(h, 0, "[[\"append\",1,2]]");
	rd(h, 1, "[[\"r\",1,null]]", "[[\"r\",1,[1,2]]]");
	rd(h, 1, "[[\"r\",1,null]]", "[[\"r\",1,[2,1]]]");
	rd(h, 1, "[[\"r\",1,null]]", "[[\"r\",1,[1,9]]]");
	rd(h, 1, "[[\"r\",1,null]]", "[[\"r\",1,[1,1]]]");
	hx_elle_result r = check(h, NULL, 0);
	assert_int_equal(r.counts[HX_ELLE_INCOMPATIBLE], 1);
	assert_int_equal(r.counts[HX_ELLE_UNKNOWN_ELEMENT], 1);
	assert_int_equal(r.counts[HX_ELLE_DUP_ELEMENTS], 1);
	has(anomaly(&r, "incompatible-order"), "not-a-prefix-of");
	has(anomaly(&r, "unknown-element"), "\"element\":9");
	assert_int_equal(r.c.valid, HX_VALID_FALSE);
	hx_check_fini(&r.c);
	hx_history_free(h);
}

static void
test_lost_append(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	app(h, 0, "[[\"append\",1,1]]");
	app(h, 0, "[[\"append\",1,2]]");
	txn(h, 1, "[[\"r\",1,null]]", "[[\"r\",1,[1]]]", HX_OP_OK,
	    ",\"final\":true");
	hx_elle_result r = check(h, NULL, 0);
	only(&r, HX_ELLE_LOST_APPEND, 1);
	has(anomaly(&r, "lost-append"), "\"element\":2");
	hx_check_fini(&r.c);
	hx_history_free(h);
}

static void
test_unknown_results(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	// No read at all: nothing to judge.
	app(h, 0, "[[\"append\",1,1]]");
	hx_elle_result r = check(h, NULL, 0);
	assert_int_equal(r.c.valid, HX_VALID_UNKNOWN);
	hx_check_fini(&r.c);
	// The same element twice, and an op that is not a transaction.
	app(h, 0, "[[\"append\",1,1]]");
	rd(h, 1, "[[\"r\",1,null]]", "[[\"r\",1,[1]]]");
	txn(h, 2, "[[\"incr\",1,1]]", "[[\"incr\",1,1]]", HX_OP_OK, NULL);
	assert_int_equal(hx_history_add(h, 3, HX_OP_INVOKE, "txn",
	                     "{\"mops\":[[\"r\",\"k\",null]]}", NULL),
	    DTX_OK);
	r = check(h, NULL, 0);
	assert_int_equal(r.counts[HX_ELLE_DUP_APPEND], 1);
	assert_int_equal(r.counts[HX_ELLE_MALFORMED], 2);
	assert_int_equal(r.c.valid, HX_VALID_UNKNOWN);
	hx_check_fini(&r.c);
	hx_history_free(h);
}

// hx_check_run_ex with workload list-append: stats, atomicity and elle,
// no bank checker; saga mode and unknown workloads are refused.
static void
test_run_verdict(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	txn(h, 0, "[[\"append\",1,1]]", "[[\"append\",1,1]]", HX_OP_OK,
	    ",\"txid\":5");
	rd(h, 1, "[[\"r\",1,null]]", "[[\"r\",1,[1]]]");
	hx_txn_obs obs[] = { { 5, 1, HX_TXN_COMMITTED } };
	hx_run_cfg cfg = { .mode = "2pc" };
	hx_run_extra x = { .workload = "list-append" };
	hx_verdict v;
	assert_int_equal(
	    hx_check_run_ex(h, &cfg, &x, obs, 1, NULL, 0, &v), DTX_OK);
	assert_int_equal(v.valid, HX_VALID_TRUE);
	assert_int_equal(hx_verdict_count(&v), 3);
	assert_string_equal(hx_verdict_check(&v, 0)->name, "stats");
	assert_string_equal(hx_verdict_check(&v, 1)->name, "atomicity");
	assert_string_equal(hx_verdict_check(&v, 2)->name, "elle");
	assert_int_equal(v.atom.txns, 1);
	hx_verdict_fini(&v);

	// The participant aborted what the client saw committed.
	obs[0].outcome = HX_TXN_ABORTED;
	assert_int_equal(
	    hx_check_run_ex(h, &cfg, &x, obs, 1, NULL, 0, &v), DTX_OK);
	assert_int_equal(v.valid, HX_VALID_FALSE);
	assert_int_equal(v.atom.ok_not_committed, 1);
	hx_verdict_fini(&v);

	cfg.mode = "saga";
	assert_int_equal(
	    hx_check_run_ex(h, &cfg, &x, obs, 1, NULL, 0, &v), DTX_EINVAL);
	cfg.mode = "2pc";
	x.workload = "register";
	assert_int_equal(
	    hx_check_run_ex(h, &cfg, &x, obs, 1, NULL, 0, &v), DTX_EINVAL);
	hx_history_free(h);
}

// A long chain of transactions (no cycle) and a long cycle: neither the
// component search nor the cycle search recurses or runs away.
static void
test_long_chain(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	char mops[64];
	hx_sb sb = { 0 };
	hx_sb_printf(&sb, "[[\"r\",1,[");
	for (int i = 1; i <= 3000; i++) {
		snprintf(mops, sizeof(mops), "[[\"append\",1,%d]]", i);
		app(h, 0, mops);
		hx_sb_printf(&sb, "%s%d", i > 1 ? "," : "", i);
	}
	hx_sb_printf(&sb, "]]]");
	char *list = hx_sb_take(&sb);
	assert_int_equal(hx_history_add(h, 1, HX_OP_INVOKE, "txn",
	                     "{\"mops\":[[\"r\",1,null]]}", NULL),
	    DTX_OK);
	char *v = malloc(strlen(list) + 16);
	sprintf(v, "{\"mops\":%s}", list);
	assert_int_equal(
	    hx_history_add(h, 1, HX_OP_OK, "txn", v, NULL), DTX_OK);
	hx_elle_result r = check(h, NULL, 0);
	assert_int_equal(r.c.valid, HX_VALID_TRUE);
	assert_int_equal(r.edges[0], 2999);
	hx_check_fini(&r.c);
	free(v);
	dtx_free(list);
	hx_history_free(h);
}

// Every allocation the checker makes may fail: it then returns ENOMEM
// (or a result, where it only cost a txid lookup that the checker then
// does without), never crashes or leaks (ASan), and with memory back it
// finds the same anomalies.
static void
test_out_of_memory(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	app(h, 0, "[[\"append\",1,1],[\"append\",2,1]]");
	rd(h, 1, "[[\"r\",1,null],[\"r\",2,null]]",
	    "[[\"r\",1,[1]],[\"r\",2,[]]]");
	rd(h, 2, "[[\"r\",2,null]]", "[[\"r\",2,[1]]]");
	txn(h, 3, "[[\"append\",3,5]]", "[[\"append\",3,5]]", HX_OP_FAIL, NULL);
	rd(h, 4, "[[\"r\",3,null]]", "[[\"r\",3,[5]]]");
	hx_elle_result r;
	for (long n = 0;; n++) {
		dtx_alloc_fail_after(n);
		dtx_err rv = hx_check_elle(h, NULL, 0, &r);
		bool failed = dtx_alloc_failed();
		dtx_alloc_fail_after(-1);
		if (rv == DTX_OK)
			hx_check_fini(&r.c);
		else
			assert_int_equal(rv, DTX_ENOMEM);
		if (!failed) {
			assert_int_equal(rv, DTX_OK);
			break;
		}
		assert_true(n < 100000);
	}
	r = check(h, NULL, 0);
	assert_int_equal(r.counts[HX_ELLE_GSINGLE], 1);
	assert_int_equal(r.counts[HX_ELLE_G1A], 1);
	hx_check_fini(&r.c);
	hx_history_free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_g0),
		cmocka_unit_test(test_g1a),
		cmocka_unit_test(test_g1b),
		cmocka_unit_test(test_g1c),
		cmocka_unit_test(test_g_single),
		cmocka_unit_test(test_g2),
		cmocka_unit_test(test_shortest_cycle),
		cmocka_unit_test(test_indeterminate),
		cmocka_unit_test(test_incompatible_and_unknown),
		cmocka_unit_test(test_lost_append),
		cmocka_unit_test(test_unknown_results),
		cmocka_unit_test(test_run_verdict),
		cmocka_unit_test(test_long_chain),
		cmocka_unit_test(test_out_of_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
