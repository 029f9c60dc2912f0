// SPDX-License-Identifier: MIT
//
// The checkers on synthetic histories with planted anomalies: each kind is
// found with the right counts and examples, uncertain operations are never
// taken for failures, sagas' transient totals are not violations, and the
// statistics are exact on a small known history.

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

#include "harness_int.h"

static const int64_t accounts[] = { 0, 1, 2, 3 };
static const hx_bank_cfg bank = { accounts, 4, 40, false };

#define MS 1000000LL

// Appends an op at time t ms; fails the test on error.
static int64_t
add(hx_history *h, int64_t t_ms, int64_t p, hx_op_type type, const char *f,
    const char *value)
{
	size_t n = hx_history_len(h);
	dtx_err rv = hx_history_append(h, t_ms * MS, p, type, f, value, NULL);
	if (rv != DTX_OK)
		fail_msg(
		    "append %s: %s", value ? value : "null", dtx_errname(rv));
	return (int64_t)n;
}

// A read by process p at t ms returning the four balances.
static int64_t
read_op(hx_history *h, int64_t t, int64_t p, const char *balances)
{
	char v[256];
	add(h, t, p, HX_OP_INVOKE, "read", NULL);
	snprintf(v, sizeof(v), "{\"ts\":%lld,\"balances\":%s}",
	    (long long)t * 1000, balances);
	return add(h, t + 1, p, HX_OP_OK, "read", v);
}

static void
transfer(hx_history *h, int64_t t, int64_t p, uint64_t txid, hx_op_type outcome)
{
	char v[256];
	snprintf(v, sizeof(v),
	    "{\"from\":0,\"to\":1,\"amount\":1,\"mode\":\"2pc\"}");
	add(h, t, p, HX_OP_INVOKE, "transfer", v);
	snprintf(v, sizeof(v),
	    "{\"from\":0,\"to\":1,\"amount\":1,\"mode\":\"2pc\","
	    "\"txid\":%llu,\"gid\":\"g%llu\"}",
	    (unsigned long long)txid, (unsigned long long)txid);
	if (outcome != HX_OP_INVOKE)
		add(h, t + 2, p, outcome, "transfer", v);
}

static size_t
count_anoms(const hx_check *c, const char *kind)
{
	size_t n = 0;
	for (size_t i = 0; i < c->nanoms; i++)
		if (strcmp(c->anoms[i].kind, kind) == 0)
			n++;
	return n;
}

// Runs the bank checker on h into *r and asserts that its verdict is
// valid.
static void
check_bank(hx_history *h, hx_valid valid, hx_bank_result *r)
{
	assert_int_equal(hx_check_bank(h, &bank, r), DTX_OK);
	assert_int_equal(r->c.valid, valid);
}

// Asserts that r found kind k count times, its first example at op
// first with badness first_bad and its worst at op worst with badness
// worst_bad.
static void
expect_kind(const hx_bank_result *r, hx_bank_kind k, size_t count,
    int64_t first, int64_t first_bad, int64_t worst, int64_t worst_bad)
{
	const hx_bank_stat *s = &r->kinds[k];
	assert_int_equal(s->count, count);
	assert_int_equal(s->first.op_index, first);
	assert_int_equal(s->first.badness, first_bad);
	assert_int_equal(s->worst.op_index, worst);
	assert_int_equal(s->worst.badness, worst_bad);
}

// Runs the atomicity checker on h and the n observations obs into *r
// and asserts that its verdict is valid.
static void
check_atomicity(hx_history *h, const hx_txn_obs *obs, size_t n, hx_valid valid,
    hx_atom_result *r)
{
	assert_int_equal(hx_check_atomicity(h, obs, n, r), DTX_OK);
	assert_int_equal(r->c.valid, valid);
}

static void
test_bank_clean_history_valid(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	transfer(h, 0, 0, 1, HX_OP_OK);
	read_op(h, 5, 1, "{\"0\":9,\"1\":11,\"2\":10,\"3\":10}");
	transfer(h, 10, 0, 2, HX_OP_FAIL);
	read_op(h, 15, 1, "{\"3\":10,\"2\":10,\"1\":11,\"0\":9}");
	add(h, 20, 2, HX_OP_INVOKE, "read", NULL);
	add(h, 21, 2, HX_OP_FAIL, "read", NULL); // failed reads are ignored
	hx_bank_result r;
	check_bank(h, HX_VALID_TRUE, &r);
	assert_int_equal(r.reads, 2);
	assert_int_equal(r.bad_reads, 0);
	for (int k = 0; k < HX_BANK_NKINDS; k++) {
		assert_int_equal(r.kinds[k].count, 0);
		assert_int_equal(r.kinds[k].first.op_index, -1);
	}
	assert_int_equal(r.c.nanoms, 0);
	assert_non_null(strstr(r.c.summary, "2 ok reads"));
	assert_true(hx_json_valid(r.c.json, strlen(r.c.json)));
	hx_check_fini(&r.c);
	hx_history_free(h);
}

static void
test_bank_wrong_total(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	read_op(h, 0, 0, "{\"0\":10,\"1\":10,\"2\":10,\"3\":10}");
	int64_t a = read_op(h, 10, 0, "{\"0\":9,\"1\":10,\"2\":10,\"3\":10}");
	int64_t b = read_op(h, 20, 1, "{\"0\":5,\"1\":10,\"2\":10,\"3\":10}");
	read_op(h, 30, 1, "{\"0\":10,\"1\":10,\"2\":10,\"3\":10}");
	int64_t c = read_op(h, 40, 0, "{\"0\":12,\"1\":10,\"2\":10,\"3\":10}");
	hx_bank_result r;
	check_bank(h, HX_VALID_FALSE, &r);
	assert_int_equal(r.reads, 5);
	assert_int_equal(r.bad_reads, 3);
	const hx_bank_stat *s = &r.kinds[HX_BANK_WRONG_TOTAL];
	assert_int_equal(s->count, 3);
	assert_int_equal(s->first.op_index, a);
	assert_int_equal(s->first.total, 39);
	assert_int_equal(s->first.time_ns, 11 * MS);
	assert_int_equal(s->worst.op_index, b);
	assert_int_equal(s->worst.total, 35);
	assert_int_equal(s->worst.badness, 5);
	assert_int_equal(s->worst.process, 1);
	assert_int_equal(s->last.op_index, c);
	assert_int_equal(s->last.total, 42);
	assert_int_equal(r.lowest_total, 35);
	assert_int_equal(r.highest_total, 42);
	assert_int_equal(r.kinds[HX_BANK_NEGATIVE].count, 0);
	// first, worst and last are three distinct example anomalies.
	assert_int_equal(count_anoms(&r.c, "wrong-total"), 3);
	assert_int_equal(r.c.anoms[1].op_index, b);
	assert_non_null(strstr(r.c.anoms[1].detail, "\"total\":35"));
	assert_non_null(strstr(r.c.summary, "wrong-total 3"));
	hx_check_fini(&r.c);
	hx_history_free(h);
}

static void
test_bank_negative_balance(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	int64_t a = read_op(h, 0, 0, "{\"0\":-5,\"1\":15,\"2\":20,\"3\":10}");
	int64_t b = read_op(h, 10, 0, "{\"0\":-5,\"1\":-2,\"2\":37,\"3\":10}");
	hx_bank_result r;
	check_bank(h, HX_VALID_FALSE, &r);
	expect_kind(&r, HX_BANK_NEGATIVE, 2, a, 5, b, 7);
	assert_int_equal(r.kinds[HX_BANK_WRONG_TOTAL].count, 0);
	assert_int_equal(count_anoms(&r.c, "negative-balance"), 2);
	hx_check_fini(&r.c);
	hx_history_free(h);
}

static void
test_bank_unexpected_key(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	int64_t a =
	    read_op(h, 0, 0, "{\"0\":10,\"1\":10,\"2\":10,\"3\":10,\"9\":1}");
	int64_t b = read_op(
	    h, 10, 0, "{\"0\":10,\"1\":10,\"2\":10,\"3\":10,\"x\":0,\"01\":3}");
	hx_bank_result r;
	check_bank(h, HX_VALID_FALSE, &r);
	expect_kind(&r, HX_BANK_UNEXPECTED_KEY, 2, a, 1, b, 2);
	// The total is not judged when the keys are wrong.
	assert_int_equal(r.kinds[HX_BANK_WRONG_TOTAL].count, 0);
	hx_check_fini(&r.c);
	hx_history_free(h);
}

static void
test_bank_missing_balance(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	int64_t a = read_op(h, 0, 0, "{\"0\":10,\"1\":10,\"2\":20}");
	int64_t b =
	    read_op(h, 10, 0, "{\"0\":40,\"1\":null,\"2\":\"x\",\"3\":0}");
	read_op(h, 20, 0, "{\"0\":10,\"1\":10,\"2\":10,\"3\":10}");
	add(h, 30, 0, HX_OP_INVOKE, "read", NULL);
	int64_t c = add(h, 31, 0, HX_OP_OK, "read", "{\"ts\":1}");
	hx_bank_result r;
	check_bank(h, HX_VALID_FALSE, &r);
	expect_kind(&r, HX_BANK_MISSING_BALANCE, 2, a, 1, b, 2);
	assert_int_equal(r.kinds[HX_BANK_MISSING_BALANCE].last.op_index, b);
	assert_int_equal(r.kinds[HX_BANK_WRONG_TOTAL].count, 0);
	assert_int_equal(r.kinds[HX_BANK_MALFORMED].count, 1);
	assert_int_equal(r.kinds[HX_BANK_MALFORMED].first.op_index, c);
	assert_int_equal(r.reads, 4);
	assert_int_equal(r.bad_reads, 3);
	hx_check_fini(&r.c);
	hx_history_free(h);
}

static void
test_bank_no_reads_unknown(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	hx_bank_result r;
	check_bank(h, HX_VALID_UNKNOWN, &r);
	hx_check_fini(&r.c);
	transfer(h, 0, 0, 1, HX_OP_OK);
	add(h, 5, 1, HX_OP_INVOKE, "read", NULL);
	add(h, 6, 1, HX_OP_INFO, "read", NULL);
	check_bank(h, HX_VALID_UNKNOWN, &r);
	assert_int_equal(r.reads, 0);
	hx_check_fini(&r.c);
	// A duplicate account id in the configuration is a caller error.
	int64_t dup[] = { 1, 1 };
	hx_bank_cfg bad = { dup, 2, 2, false };
	assert_int_equal(hx_check_bank(h, &bad, &r), DTX_EINVAL);
	hx_history_free(h);
}

static void
test_atomicity_uncertain_transfers(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	transfer(h, 0, 0, 1, HX_OP_INFO); // uncertain: committed is fine
	transfer(h, 10, 1, 2, HX_OP_INVOKE); // never completed: aborted fine
	transfer(h, 20, 2, 3, HX_OP_INFO); // uncertain: aborted is fine
	transfer(h, 30, 3, 4, HX_OP_OK);
	transfer(h, 40, 4, 5, HX_OP_FAIL);
	hx_txn_obs obs[] = {
		{ 1, 1, HX_TXN_COMMITTED },
		{ 1, 2, HX_TXN_COMMITTED },
		{ 2, 1, HX_TXN_ABORTED },
		{ 2, 2, HX_TXN_ABORTED },
		{ 3, 1, HX_TXN_ABORTED },
		{ 4, 1, HX_TXN_COMMITTED },
		{ 4, 3, HX_TXN_UNKNOWN },
		{ 5, 2, HX_TXN_ABORTED },
	};
	hx_atom_result r;
	check_atomicity(h, obs, 8, HX_VALID_TRUE, &r);
	assert_int_equal(r.txns, 5);
	assert_int_equal(r.split + r.ok_not_committed + r.fail_committed, 0);
	assert_int_equal(r.c.nanoms, 0);
	hx_check_fini(&r.c);
	// Without observations nothing can be said.
	check_atomicity(h, NULL, 0, HX_VALID_UNKNOWN, &r);
	hx_check_fini(&r.c);
	hx_history_free(h);
}

// A transfer whose client timed out still has the txid the client chose
// (in its invocation): its outcome is resolved from the participants and
// the coordinator, and a split decision on it is a violation. The
// coordinator's presumed abort (no record) never contradicts a commit;
// its commit against a participant's abort is a split decision.
static void
test_atomicity_info_resolved(void **state)
{
	(void)state;
	const char *inv = "{\"from\":0,\"to\":1,\"amount\":1,"
	                  "\"mode\":\"2pc\",\"txid\":%d}";
	hx_history *h = hx_history_new();
	char v[128];
	for (int t = 1; t <= 4; t++) {
		snprintf(v, sizeof(v), inv, t);
		add(h, t * 10, t, HX_OP_INVOKE, "transfer", v);
		if (t != 4) // 4 never completes
			add(h, t * 10 + 5, t, HX_OP_INFO, "transfer",
			    "{\"from\":0,\"to\":1,\"amount\":1,"
			    "\"mode\":\"2pc\"}");
	}
	hx_txn_obs good[] = {
		{ 1, 1, HX_TXN_COMMITTED },
		{ 1, 2, HX_TXN_COMMITTED },
		{ 1, 0, HX_TXN_PRESUMED_ABORTED }, // ended and forgotten
		{ 2, 1, HX_TXN_ABORTED },
		{ 2, 2, HX_TXN_ABORTED },
		{ 2, 0, HX_TXN_PRESUMED_ABORTED },
		{ 3, 1, HX_TXN_IN_DOUBT },
		{ 3, 0, HX_TXN_COMMITTED },
	};
	hx_atom_result r;
	check_atomicity(h, good, 8, HX_VALID_TRUE, &r);
	assert_int_equal(r.info, 4);
	assert_int_equal(r.info_committed, 2);
	assert_int_equal(r.info_aborted, 1);
	assert_int_equal(r.info_unresolved, 0);
	assert_int_equal(r.info_unobserved, 1);
	assert_non_null(strstr(r.c.summary, "2 resolved committed"));
	assert_true(hx_json_valid(r.c.json, strlen(r.c.json)));
	hx_check_fini(&r.c);

	// Participants split on a timed-out transfer: a violation.
	hx_txn_obs split[] = {
		{ 1, 1, HX_TXN_COMMITTED },
		{ 1, 2, HX_TXN_ABORTED },
	};
	check_atomicity(h, split, 2, HX_VALID_FALSE, &r);
	assert_int_equal(r.split, 1);
	assert_int_equal(count_anoms(&r.c, "split-decision"), 1);
	assert_true(r.c.anoms[0].has_txid);
	assert_int_equal(r.c.anoms[0].txid, 1);
	assert_int_equal(r.c.anoms[0].op_index, 0);
	hx_check_fini(&r.c);

	// The coordinator decided commit, a participant aborted.
	hx_txn_obs coord[] = {
		{ 2, 0, HX_TXN_COMMITTED },
		{ 2, 1, HX_TXN_ABORTED },
		{ 2, 2, HX_TXN_COMMITTED },
	};
	check_atomicity(h, coord, 3, HX_VALID_FALSE, &r);
	assert_int_equal(r.split, 1);
	hx_check_fini(&r.c);
	hx_history_free(h);

	hx_txn_outcome o;
	assert_int_equal(hx_txn_outcome_parse("presumed-aborted", &o), DTX_OK);
	assert_int_equal(o, HX_TXN_PRESUMED_ABORTED);
	assert_string_equal(hx_txn_outcome_name(o), "presumed-aborted");
}

static void
test_atomicity_split_decision(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	transfer(h, 0, 0, 7, HX_OP_INFO);
	transfer(h, 10, 1, 8, HX_OP_OK);
	hx_txn_obs obs[] = {
		{ 7, 1, HX_TXN_COMMITTED },
		{ 7, 3, HX_TXN_ABORTED },
		{ 7, 2, HX_TXN_COMMITTED },
		{ 8, 1, HX_TXN_COMMITTED },
		{ 8, 2, HX_TXN_COMMITTED },
		{ 9, 1, HX_TXN_IN_DOUBT }, // blocked, not split
		{ 9, 2, HX_TXN_IN_DOUBT },
	};
	hx_atom_result r;
	check_atomicity(h, obs, 7, HX_VALID_FALSE, &r);
	assert_int_equal(r.split, 1);
	assert_int_equal(r.in_doubt, 1);
	assert_int_equal(r.ok_not_committed, 0);
	assert_int_equal(count_anoms(&r.c, "split-decision"), 1);
	const hx_anomaly *a = &r.c.anoms[0];
	assert_string_equal(a->kind, "split-decision");
	assert_true(a->has_txid);
	assert_int_equal(a->txid, 7);
	assert_int_equal(a->op_index, 0); // the transfer's invocation
	assert_non_null(strstr(a->detail, "\"committed\":[1,2]"));
	assert_non_null(strstr(a->detail, "\"aborted\":[3]"));
	assert_int_equal(count_anoms(&r.c, "in-doubt"), 1);
	assert_int_equal(r.c.anoms[1].txid, 9);
	hx_check_fini(&r.c);
	// In doubt alone does not make a run invalid.
	check_atomicity(h, obs + 3, 4, HX_VALID_TRUE, &r);
	assert_int_equal(r.in_doubt, 1);
	hx_check_fini(&r.c);
	hx_history_free(h);
}

// Decisions by hand: one the others agree with is valid (and counted);
// one the others contradict is a heuristic hazard, not a split; one the
// node itself found contradicted (heuristic-hazard) is a hazard even
// with nothing else observed; an ok transfer aborted by hand is caught
// as ok-not-committed.
static void
test_atomicity_heuristic(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	transfer(h, 0, 0, 7, HX_OP_INFO);
	transfer(h, 10, 1, 8, HX_OP_OK);
	hx_txn_obs agreed[] = {
		{ 7, 1, HX_TXN_HEUR_ABORTED },
		{ 7, 2, HX_TXN_ABORTED },
		{ 7, 0, HX_TXN_PRESUMED_ABORTED },
	};
	hx_atom_result r;
	check_atomicity(h, agreed, 3, HX_VALID_TRUE, &r);
	assert_int_equal(r.heuristic, 1);
	assert_int_equal(r.heur_hazards, 0);
	assert_int_equal(r.info_aborted, 1);
	hx_check_fini(&r.c);
	hx_txn_obs hazard[] = {
		{ 7, 1, HX_TXN_HEUR_ABORTED },
		{ 7, 2, HX_TXN_COMMITTED },
		{ 7, 0, HX_TXN_COMMITTED },
	};
	check_atomicity(h, hazard, 3, HX_VALID_FALSE, &r);
	assert_int_equal(r.heur_hazards, 1);
	assert_int_equal(r.split, 0);
	assert_int_equal(count_anoms(&r.c, "heuristic-hazard"), 1);
	assert_int_equal(count_anoms(&r.c, "split-decision"), 0);
	assert_non_null(
	    strstr(r.c.anoms[0].detail, "\"heuristic_aborted\":[1]"));
	assert_non_null(strstr(r.c.summary, "1 heuristic hazards"));
	hx_check_fini(&r.c);
	hx_txn_obs own[] = {
		{ 9, 1, HX_TXN_HEUR_COMMITTED },
		{ 9, 1, HX_TXN_HEUR_HAZARD },
	};
	check_atomicity(h, own, 2, HX_VALID_FALSE, &r);
	assert_int_equal(r.heur_hazards, 1);
	hx_check_fini(&r.c);
	hx_txn_obs ok_aborted[] = {
		{ 8, 1, HX_TXN_HEUR_ABORTED },
		{ 8, 2, HX_TXN_HEUR_ABORTED },
	};
	check_atomicity(h, ok_aborted, 2, HX_VALID_FALSE, &r);
	assert_int_equal(r.ok_not_committed, 1);
	hx_check_fini(&r.c);
	// The names round-trip (the results file stores them).
	for (int o = HX_TXN_COMMITTED; o <= HX_TXN_HEUR_HAZARD; o++) {
		hx_txn_outcome back;
		assert_int_equal(
		    hx_txn_outcome_parse(
		        hx_txn_outcome_name((hx_txn_outcome)o), &back),
		    DTX_OK);
		assert_int_equal(back, o);
	}
	hx_history_free(h);
}

static void
test_atomicity_history_cross_check(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	transfer(h, 0, 0, 11, HX_OP_OK); // aborted at node 2: lost
	transfer(h, 10, 1, 12, HX_OP_FAIL); // committed at node 1
	transfer(h, 20, 2, 13, HX_OP_OK); // nobody knows it
	hx_txn_obs obs[] = {
		{ 11, 1, HX_TXN_IN_DOUBT },
		{ 11, 2, HX_TXN_ABORTED },
		{ 12, 1, HX_TXN_COMMITTED },
	};
	hx_atom_result r;
	check_atomicity(h, obs, 3, HX_VALID_FALSE, &r);
	assert_int_equal(r.ok_not_committed, 1);
	assert_int_equal(r.fail_committed, 1);
	assert_int_equal(r.split, 0);
	assert_int_equal(r.unobserved, 1);
	assert_int_equal(count_anoms(&r.c, "ok-not-committed"), 1);
	assert_int_equal(count_anoms(&r.c, "fail-committed"), 1);
	for (size_t i = 0; i < r.c.nanoms; i++) {
		const hx_anomaly *a = &r.c.anoms[i];
		if (strcmp(a->kind, "ok-not-committed") == 0) {
			assert_int_equal(a->txid, 11);
			assert_int_equal(a->op_index, 0);
			assert_non_null(strstr(a->detail, "\"aborted\":[2]"));
		} else if (strcmp(a->kind, "fail-committed") == 0) {
			assert_int_equal(a->txid, 12);
			assert_int_equal(a->op_index, 2);
		}
	}
	hx_check_fini(&r.c);
	hx_history_free(h);
}

static void
saga_transfer(
    hx_history *h, int64_t t, int64_t p, const char *gid, hx_op_type outcome)
{
	char v[128];
	snprintf(v, sizeof(v),
	    "{\"from\":0,\"to\":1,\"amount\":3,\"mode\":\"saga\","
	    "\"gid\":\"%s\"}",
	    gid);
	add(h, t, p, HX_OP_INVOKE, "transfer", v);
	if (outcome != HX_OP_INVOKE)
		add(h, t + 5, p, outcome, "transfer", v);
}

static hx_saga_obs
saga(const char *gid, hx_saga_state st, int32_t failed)
{
	hx_saga_obs s;
	memset(&s, 0, sizeof(s));
	snprintf(s.gid, sizeof(s.gid), "%s", gid);
	s.state = st;
	s.failed_step = failed;
	return s;
}

// Runs the saga checker on h and the n saga states s into *r and
// asserts that its verdict is valid.
static void
check_saga(hx_history *h, const hx_saga_obs *s, size_t n, hx_valid valid,
    hx_saga_result *r)
{
	assert_int_equal(hx_check_saga(h, &bank, s, n, r), DTX_OK);
	assert_int_equal(r->c.valid, valid);
}

// Sagas g1 and g2 (client outcomes a and b), then a final read of
// balances (a JSON object).
static hx_history *
two_sagas(hx_op_type a, hx_op_type b, const char *balances)
{
	char v[128];
	hx_history *h = hx_history_new();
	saga_transfer(h, 0, 0, "g1", a);
	saga_transfer(h, 10, 1, "g2", b);
	add(h, 100, 2, HX_OP_INVOKE, "final-read", NULL);
	snprintf(v, sizeof(v), "{\"ts\":9,\"balances\":%s}", balances);
	add(h, 101, 2, HX_OP_OK, "final-read", v);
	return h;
}

static void
test_saga_left_compensating_invalid(void **state)
{
	(void)state;
	hx_history *h = two_sagas(
	    HX_OP_OK, HX_OP_INFO, "{\"0\":7,\"1\":13,\"2\":10,\"3\":10}");
	hx_saga_obs s[] = { saga("g1", HX_SAGA_COMMITTED, -1),
		saga("g2", HX_SAGA_COMPENSATING, 1) };
	hx_saga_result r;
	check_saga(h, s, 2, HX_VALID_FALSE, &r);
	assert_int_equal(r.stuck, 1);
	assert_int_equal(r.committed, 1);
	assert_true(r.final_ok);
	assert_int_equal(count_anoms(&r.c, "saga-unfinished"), 1);
	assert_string_equal(r.c.anoms[0].gid, "g2");
	assert_non_null(strstr(r.c.anoms[0].detail, "compensating"));
	assert_non_null(strstr(r.c.anoms[0].detail, "\"failed_step\":1"));
	hx_check_fini(&r.c);
	// Fully compensated, it is valid.
	s[1].state = HX_SAGA_ABORTED;
	check_saga(h, s, 2, HX_VALID_TRUE, &r);
	hx_check_fini(&r.c);
	// A client told ok about a compensated saga, or fail about a
	// committed one, is a violation.
	s[0].state = HX_SAGA_ABORTED;
	check_saga(h, s, 2, HX_VALID_FALSE, &r);
	assert_int_equal(r.ok_not_committed, 1);
	hx_check_fini(&r.c);
	hx_history_free(h);
}

// Rule 12's order from the compensation stamps: a later step's
// compensation is answered (stamped) before an earlier one's. Stamps in
// forward order are a violation; unknown stamps (0) are skipped.
static void
test_saga_compensation_order(void **state)
{
	(void)state;
	hx_history *h = two_sagas(
	    HX_OP_FAIL, HX_OP_FAIL, "{\"0\":10,\"1\":10,\"2\":10,\"3\":10}");
	hx_saga_obs s[] = { saga("g1", HX_SAGA_ABORTED, -1),
		saga("g2", HX_SAGA_ABORTED, -1) };
	s[0].comp_ts[0] = 500; // step 1 first (400), then step 0: reverse
	s[0].comp_ts[1] = 400;
	s[1].comp_ts[1] = 300; // only one stamp known: nothing to order
	hx_saga_result r;
	check_saga(h, s, 2, HX_VALID_TRUE, &r);
	assert_int_equal(r.comp_ordered, 1);
	assert_int_equal(r.misordered, 0);
	assert_non_null(strstr(r.c.summary, "1 sagas compensated more"));
	hx_check_fini(&r.c);
	// Step 0 compensated first: out of order, even with an unknown
	// stamp between them.
	s[1].comp_ts[0] = 200;
	s[1].comp_ts[1] = 0;
	s[1].comp_ts[2] = 300;
	check_saga(h, s, 2, HX_VALID_FALSE, &r);
	assert_int_equal(r.comp_ordered, 2);
	assert_int_equal(r.misordered, 1);
	assert_int_equal(count_anoms(&r.c, "compensation-order"), 1);
	assert_string_equal(r.c.anoms[0].gid, "g2");
	assert_non_null(strstr(r.c.anoms[0].detail, "\"later_step\":2"));
	assert_non_null(strstr(r.c.summary, "OUT OF ORDER"));
	assert_non_null(
	    strstr(r.c.json, "\"compensation_order_violations\":1"));
	hx_check_fini(&r.c);
	// Equal stamps cannot come from the protocol either.
	s[1].comp_ts[2] = 200;
	check_saga(h, s, 2, HX_VALID_FALSE, &r);
	assert_int_equal(r.misordered, 1);
	hx_check_fini(&r.c);
	hx_history_free(h);
}

// Reads during a saga run see half-done transfers; a final read after
// quiescence shows the total again.
static hx_history *
saga_history(const char *final_balances)
{
	hx_history *h = hx_history_new();
	saga_transfer(h, 0, 0, "g1", HX_OP_OK);
	read_op(h, 2, 1, "{\"0\":7,\"1\":10,\"2\":10,\"3\":10}");
	read_op(h, 4, 1, "{\"0\":7,\"1\":13,\"2\":10,\"3\":10}");
	saga_transfer(h, 10, 0, "g2", HX_OP_FAIL);
	read_op(h, 11, 1, "{\"0\":4,\"1\":13,\"2\":10,\"3\":10}");
	read_op(h, 13, 2, "{\"0\":7,\"1\":13,\"2\":10,\"3\":10}");
	add(h, 100, 3, HX_OP_INVOKE, "final-read", NULL);
	char v[128];
	snprintf(v, sizeof(v), "{\"ts\":9,\"balances\":%s}", final_balances);
	add(h, 101, 3, HX_OP_OK, "final-read", v);
	return h;
}

static void
test_saga_transient_totals_not_violations(void **state)
{
	(void)state;
	hx_history *h = saga_history("{\"0\":7,\"1\":13,\"2\":10,\"3\":10}");
	hx_saga_obs s[] = { saga("g1", HX_SAGA_COMMITTED, -1),
		saga("g2", HX_SAGA_ABORTED, 2) };
	hx_saga_result r;
	check_saga(h, s, 2, HX_VALID_TRUE, &r);
	assert_int_equal(r.transient, 2);
	assert_int_equal(r.final_reads, 1);
	assert_true(r.final_ok);
	assert_int_equal(r.final_total, 40);
	assert_non_null(
	    strstr(r.c.summary, "2 reads saw a total below the bank"));
	assert_non_null(strstr(r.c.summary, "transient"));
	hx_check_fini(&r.c);

	// The whole run in saga mode: valid, the bank checker reports the
	// same reads as transient.
	hx_run_cfg cfg = { "saga", bank };
	hx_verdict v;
	assert_int_equal(hx_check_run(h, &cfg, NULL, 0, s, 2, &v), DTX_OK);
	assert_int_equal(v.valid, HX_VALID_TRUE);
	assert_true(v.has_saga);
	assert_false(v.has_atom);
	assert_int_equal(v.bank.c.valid, HX_VALID_TRUE);
	assert_int_equal(v.bank.kinds[HX_BANK_TRANSIENT_TOTAL].count, 2);
	assert_int_equal(v.bank.kinds[HX_BANK_WRONG_TOTAL].count, 0);
	assert_int_equal(v.saga.transient, 2);
	hx_verdict_fini(&v);

	// The same reads in 2pc mode are violations.
	cfg.mode = "2pc";
	hx_txn_obs obs[] = { { 1, 1, HX_TXN_COMMITTED } };
	assert_int_equal(hx_check_run(h, &cfg, obs, 1, NULL, 0, &v), DTX_OK);
	assert_int_equal(v.valid, HX_VALID_FALSE);
	assert_int_equal(v.bank.kinds[HX_BANK_WRONG_TOTAL].count, 2);
	assert_int_equal(v.bank.kinds[HX_BANK_TRANSIENT_TOTAL].count, 0);
	hx_verdict_fini(&v);
	cfg.mode = "4pc";
	assert_int_equal(
	    hx_check_run(h, &cfg, NULL, 0, NULL, 0, &v), DTX_EINVAL);
	hx_history_free(h);
}

// The setup read (before any transfer is invoked) is held to the bank the
// harness wrote: in saga mode too a wrong total there is a violation, not
// a transient view, while the same total later in the run is transient.
static void
test_bank_setup_read_never_transient(void **state)
{
	(void)state;
	static const hx_bank_cfg sagabank = { accounts, 4, 40, true };
	hx_history *h = hx_history_new();
	read_op(h, 0, 4, "{\"0\":10,\"1\":10,\"2\":10,\"3\":10}");
	saga_transfer(h, 2, 0, "g1", HX_OP_OK);
	read_op(h, 3, 1, "{\"0\":7,\"1\":10,\"2\":10,\"3\":10}");
	hx_bank_result r;
	assert_int_equal(hx_check_bank(h, &sagabank, &r), DTX_OK);
	assert_int_equal(r.c.valid, HX_VALID_TRUE);
	assert_int_equal(r.kinds[HX_BANK_TRANSIENT_TOTAL].count, 1);
	hx_check_fini(&r.c);
	hx_history_free(h);

	h = hx_history_new();
	read_op(h, 0, 4, "{\"0\":7,\"1\":10,\"2\":10,\"3\":10}");
	saga_transfer(h, 2, 0, "g1", HX_OP_OK);
	read_op(h, 3, 1, "{\"0\":7,\"1\":10,\"2\":10,\"3\":10}");
	assert_int_equal(hx_check_bank(h, &sagabank, &r), DTX_OK);
	assert_int_equal(r.c.valid, HX_VALID_FALSE);
	assert_int_equal(r.kinds[HX_BANK_WRONG_TOTAL].count, 1);
	assert_int_equal(r.kinds[HX_BANK_WRONG_TOTAL].first.op_index, 1);
	assert_int_equal(r.kinds[HX_BANK_TRANSIENT_TOTAL].count, 1);
	hx_check_fini(&r.c);
	hx_history_free(h);
}

// A saga debits before it credits and compensates in reverse, so no read
// during the run may hold more money than the bank: both the saga and the
// bank checker call that a violation (compensation in forward order shows
// it), while totals below the bank stay transient.
static void
test_saga_total_above_bank(void **state)
{
	(void)state;
	hx_history *h = saga_history("{\"0\":7,\"1\":13,\"2\":10,\"3\":10}");
	read_op(h, 20, 2, "{\"0\":10,\"1\":13,\"2\":10,\"3\":10}");
	hx_saga_obs s[] = { saga("g1", HX_SAGA_COMMITTED, -1),
		saga("g2", HX_SAGA_ABORTED, 2) };
	hx_saga_result r;
	check_saga(h, s, 2, HX_VALID_FALSE, &r);
	assert_int_equal(r.above, 1);
	assert_int_equal(r.transient, 2);
	assert_int_equal(count_anoms(&r.c, "total-above-bank"), 1);
	assert_non_null(strstr(r.c.summary, "MORE money than the bank"));
	hx_check_fini(&r.c);
	hx_bank_cfg sb = bank;
	sb.saga = true;
	hx_bank_result b;
	assert_int_equal(hx_check_bank(h, &sb, &b), DTX_OK);
	assert_int_equal(b.c.valid, HX_VALID_FALSE);
	assert_int_equal(b.kinds[HX_BANK_WRONG_TOTAL].count, 1);
	assert_int_equal(b.kinds[HX_BANK_WRONG_TOTAL].first.total, 43);
	assert_int_equal(b.kinds[HX_BANK_TRANSIENT_TOTAL].count, 2);
	hx_check_fini(&b.c);
	hx_history_free(h);
}

// A final read taken without a participant that is down for good names it
// ("unreadable_nodes"): its missing accounts are reported as unreadable,
// not as a violation, and its total is not held to the bank; the saga
// checker leaves conservation unknown. A read during the run that lacks
// accounts is still a violation.
static void
test_final_read_unreadable(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	read_op(h, 0, 1, "{\"0\":10,\"1\":10,\"2\":10,\"3\":10}");
	add(h, 100, 3, HX_OP_INVOKE, "final-read", NULL);
	add(h, 101, 3, HX_OP_OK, "final-read",
	    "{\"unreadable_nodes\":[2],\"ts\":9,"
	    "\"balances\":{\"0\":10,\"1\":12}}");
	hx_bank_result b;
	assert_int_equal(hx_check_bank(h, &bank, &b), DTX_OK);
	assert_int_equal(b.c.valid, HX_VALID_TRUE);
	assert_int_equal(b.kinds[HX_BANK_UNREADABLE].count, 1);
	assert_int_equal(b.kinds[HX_BANK_UNREADABLE].first.badness, 2);
	assert_int_equal(b.kinds[HX_BANK_MISSING_BALANCE].count, 0);
	assert_int_equal(b.kinds[HX_BANK_WRONG_TOTAL].count, 0);
	assert_non_null(strstr(b.c.summary, "down for good"));
	hx_check_fini(&b.c);
	hx_saga_result r;
	check_saga(h, NULL, 0, HX_VALID_UNKNOWN, &r);
	assert_true(r.final_partial);
	assert_non_null(strstr(r.c.summary, "conservation unchecked"));
	hx_check_fini(&r.c);
	// The same shape in a read during the run is missing data.
	read_op(h, 200, 1, "{\"0\":10,\"1\":12}");
	assert_int_equal(hx_check_bank(h, &bank, &b), DTX_OK);
	assert_int_equal(b.c.valid, HX_VALID_FALSE);
	assert_int_equal(b.kinds[HX_BANK_MISSING_BALANCE].count, 1);
	hx_check_fini(&b.c);
	hx_history_free(h);
}

static void
test_saga_final_total_wrong(void **state)
{
	(void)state;
	hx_history *h = saga_history("{\"0\":4,\"1\":13,\"2\":10,\"3\":10}");
	hx_saga_obs s[] = { saga("g1", HX_SAGA_COMMITTED, -1),
		saga("g2", HX_SAGA_ABORTED, 2) };
	hx_saga_result r;
	check_saga(h, s, 2, HX_VALID_FALSE, &r);
	assert_false(r.final_ok);
	assert_int_equal(r.final_total, 37);
	assert_int_equal(count_anoms(&r.c, "final-total"), 1);
	hx_check_fini(&r.c);
	// The bank checker also flags a wrong final read in saga mode.
	hx_bank_cfg sb = bank;
	sb.saga = true;
	hx_bank_result b;
	assert_int_equal(hx_check_bank(h, &sb, &b), DTX_OK);
	assert_int_equal(b.c.valid, HX_VALID_FALSE);
	assert_int_equal(b.kinds[HX_BANK_WRONG_TOTAL].count, 1);
	assert_int_equal(b.kinds[HX_BANK_TRANSIENT_TOTAL].count, 2);
	hx_check_fini(&b.c);
	// No final read and no saga states: unknown.
	hx_history *e = hx_history_new();
	check_saga(e, NULL, 0, HX_VALID_UNKNOWN, &r);
	hx_check_fini(&r.c);
	hx_history_free(e);
	hx_history_free(h);
}

// A 2pc transfer by process p at t ms: invocation with txid, completion
// of type outcome with the commit timestamp cts (0: none); amount 1 from
// account `from` to account `to`.
static void
xfer_ts(hx_history *h, int64_t t, int64_t p, uint64_t txid, int from, int to,
    hx_op_type outcome, uint64_t cts)
{
	char v[256];
	snprintf(v, sizeof(v),
	    "{\"from\":%d,\"to\":%d,\"amount\":1,\"mode\":\"2pc\","
	    "\"txid\":%llu}",
	    from, to, (unsigned long long)txid);
	add(h, t, p, HX_OP_INVOKE, "transfer", v);
	if (outcome == HX_OP_INVOKE)
		return;
	if (cts != 0)
		snprintf(v, sizeof(v),
		    "{\"from\":%d,\"to\":%d,\"amount\":1,\"mode\":\"2pc\","
		    "\"txid\":%llu,\"cts\":%llu}",
		    from, to, (unsigned long long)txid,
		    (unsigned long long)cts);
	add(h, t + 1, p, outcome, "transfer", v);
}

// A read at HLC timestamp ts by process p at t ms.
static int64_t
read_ts(hx_history *h, int64_t t, int64_t p, uint64_t ts, const char *bal)
{
	char v[256];
	add(h, t, p, HX_OP_INVOKE, "read", NULL);
	snprintf(v, sizeof(v), "{\"ts\":%llu,\"balances\":%s}",
	    (unsigned long long)ts, bal);
	return add(h, t + 1, p, HX_OP_OK, "read", v);
}

// Runs the replay checker on h (the bank of 4 accounts; adopt: the setup
// read is the initial state) with the nobs observations obs and ncts
// commit timestamps cts into *r and asserts that its verdict is valid.
static void
check_replay(hx_history *h, bool adopt, const hx_txn_obs *obs, size_t nobs,
    const hx_txn_cts *cts, size_t ncts, hx_valid valid, hx_replay_result *r)
{
	assert_int_equal(
	    hx_check_replay(h, &bank, adopt, obs, nobs, cts, ncts, r), DTX_OK);
	assert_int_equal(r->c.valid, valid);
}

// Runs the session checker on h into *r and asserts that its verdict is
// valid.
static void
check_session(hx_history *h, bool saga, hx_valid valid, hx_session_result *r)
{
	assert_int_equal(hx_check_session(h, saga, r), DTX_OK);
	assert_int_equal(r->c.valid, valid);
}

// Replay: each read equals the initial balances (10 each) plus exactly
// the commits at or below its timestamp. A read that keeps the total but
// misses a commit below its timestamp (or shows one above it) is wrong,
// though the bank checker sees nothing.
static void
test_replay(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	read_ts(h, 0, 5, 50, "{\"0\":10,\"1\":10,\"2\":10,\"3\":10}");
	xfer_ts(h, 2, 0, 11, 0, 1, HX_OP_OK, 100);
	xfer_ts(h, 4, 1, 12, 2, 3, HX_OP_OK, 200);
	xfer_ts(h, 6, 2, 13, 1, 2, HX_OP_FAIL, 0);
	read_ts(h, 8, 3, 150, "{\"0\":9,\"1\":11,\"2\":10,\"3\":10}");
	read_ts(h, 10, 3, 250, "{\"0\":9,\"1\":11,\"2\":9,\"3\":11}");
	hx_replay_result r;
	check_replay(h, false, NULL, 0, NULL, 0, HX_VALID_TRUE, &r);
	assert_int_equal(r.reads, 3);
	assert_int_equal(r.matched, 3);
	assert_int_equal(r.committed, 2);
	hx_check_fini(&r.c);

	// Same total, wrong accounts: the commit at 100 is missing at 150
	// while the one at 200 shows already.
	int64_t bad =
	    read_ts(h, 12, 3, 150, "{\"0\":10,\"1\":10,\"2\":9,\"3\":11}");
	hx_bank_result br;
	check_bank(h, HX_VALID_TRUE, &br);
	hx_check_fini(&br.c);
	check_replay(h, false, NULL, 0, NULL, 0, HX_VALID_FALSE, &r);
	assert_int_equal(r.wrong, 1);
	assert_int_equal(count_anoms(&r.c, "replay-mismatch"), 1);
	assert_int_equal(r.c.anoms[0].op_index, bad);
	assert_non_null(strstr(r.c.anoms[0].detail, "\"expected\":9"));
	hx_check_fini(&r.c);
	hx_history_free(h);

	// A wrong setup read (the right total, the wrong accounts) is
	// reported, not adopted: the initial state is what setup wrote.
	h = hx_history_new();
	int64_t first =
	    read_ts(h, 0, 5, 50, "{\"0\":12,\"1\":8,\"2\":10,\"3\":10}");
	xfer_ts(h, 2, 0, 11, 0, 1, HX_OP_OK, 100);
	check_replay(h, false, NULL, 0, NULL, 0, HX_VALID_FALSE, &r);
	assert_int_equal(r.wrong, 1);
	assert_int_equal(r.c.anoms[0].op_index, first);
	hx_check_fini(&r.c);
	// A bank the run found existing (dtx bank --connect to a used
	// cluster): the setup read is its initial state, and later reads
	// are replayed from it.
	read_ts(h, 4, 5, 150, "{\"0\":11,\"1\":9,\"2\":10,\"3\":10}");
	check_replay(h, true, NULL, 0, NULL, 0, HX_VALID_TRUE, &r);
	assert_int_equal(r.matched, 2);
	hx_check_fini(&r.c);
	read_ts(h, 6, 5, 160, "{\"0\":12,\"1\":8,\"2\":10,\"3\":10}");
	check_replay(h, true, NULL, 0, NULL, 0, HX_VALID_FALSE, &r);
	hx_check_fini(&r.c);
	hx_history_free(h);
	assert_true(hx_params_adopted("{\"total\":1,\"created\":false}"));
	assert_false(hx_params_adopted("{\"total\":1,\"created\":true}"));
	assert_false(hx_params_adopted("{\"total\":1}"));
	assert_false(hx_params_adopted(NULL));

	// Saga mode: skipped, and the result says so.
	static const hx_bank_cfg sagabank = { accounts, 4, 40, true };
	h = hx_history_new();
	read_ts(h, 0, 5, 50, "{\"0\":7,\"1\":10,\"2\":10,\"3\":10}");
	assert_int_equal(
	    hx_check_replay(h, &sagabank, false, NULL, 0, NULL, 0, &r), DTX_OK);
	assert_int_equal(r.c.valid, HX_VALID_TRUE);
	assert_true(r.skipped);
	assert_non_null(strstr(r.c.summary, "skipped: sagas"));
	assert_non_null(strstr(r.c.json, "\"skipped\":\"sagas"));
	hx_check_fini(&r.c);
	hx_history_free(h);

	// A history whose ok transfers carry no commit timestamp (recorded
	// before they did) is skipped, and says so; one with them is not.
	h = hx_history_new();
	transfer(h, 0, 0, 1, HX_OP_OK);
	read_ts(h, 4, 1, 50, "{\"0\":9,\"1\":11,\"2\":10,\"3\":10}");
	check_replay(h, false, NULL, 0, NULL, 0, HX_VALID_TRUE, &r);
	assert_true(r.skipped);
	assert_non_null(strstr(r.c.summary, "commit timestamp"));
	hx_check_fini(&r.c);
	xfer_ts(h, 6, 0, 2, 0, 1, HX_OP_OK, 100);
	assert_int_equal(
	    hx_check_replay(h, &bank, false, NULL, 0, NULL, 0, &r), DTX_OK);
	assert_false(r.skipped);
	hx_check_fini(&r.c);
	hx_history_free(h);
}

// Timed-out transfers: resolved committed from the observations (with
// the commit timestamp a STATUS answer gave) they are replayed; still
// uncertain, a read that one of them explains is fine, one that none
// explains is wrong, and resolved aborted they explain nothing.
static void
test_replay_indeterminate(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	xfer_ts(h, 0, 0, 21, 0, 1, HX_OP_INFO, 0);
	xfer_ts(h, 2, 1, 22, 2, 3, HX_OP_INFO, 0);
	read_ts(h, 4, 3, 500, "{\"0\":9,\"1\":11,\"2\":9,\"3\":11}");
	hx_txn_obs obs[] = {
		{ 21, 1, HX_TXN_COMMITTED },
		{ 21, 0, HX_TXN_COMMITTED },
		{ 22, 2, HX_TXN_IN_DOUBT },
	};
	hx_txn_cts cts[] = { { 21, 1, 300 } };
	hx_replay_result r;
	check_replay(h, false, obs, 3, cts, 1, HX_VALID_TRUE, &r);
	assert_int_equal(r.committed, 1);
	assert_int_equal(r.uncertain, 1);
	assert_int_equal(r.explained, 1);
	hx_check_fini(&r.c);

	// 22 resolved aborted: the read shows a transfer that never was.
	obs[2].outcome = HX_TXN_ABORTED;
	check_replay(h, false, obs, 3, cts, 1, HX_VALID_FALSE, &r);
	assert_int_equal(r.wrong, 1);
	hx_check_fini(&r.c);

	// Every node must report the commit timestamp the client was told,
	// and all the same one.
	hx_history *h2 = hx_history_new();
	xfer_ts(h2, 0, 0, 61, 0, 1, HX_OP_OK, 100);
	read_ts(h2, 4, 1, 500, "{\"0\":9,\"1\":11,\"2\":10,\"3\":10}");
	hx_txn_cts agree[] = { { 61, 1, 100 }, { 61, 2, 100 }, { 61, 0, 100 } };
	check_replay(h2, false, NULL, 0, agree, 3, HX_VALID_TRUE, &r);
	assert_int_equal(r.cts_mismatch, 0);
	hx_check_fini(&r.c);
	agree[1].cts = 130;
	check_replay(h2, false, NULL, 0, agree, 3, HX_VALID_FALSE, &r);
	assert_int_equal(r.cts_mismatch, 1);
	assert_int_equal(count_anoms(&r.c, "commit-ts-mismatch"), 1);
	assert_non_null(strstr(r.c.anoms[0].detail, "\"node\":2"));
	hx_check_fini(&r.c);
	hx_history_free(h2);

	// 21 committed at 600, after the read: the read must not show it.
	cts[0].cts = 600;
	obs[2].outcome = HX_TXN_IN_DOUBT;
	check_replay(h, false, obs, 3, cts, 1, HX_VALID_FALSE, &r);
	hx_check_fini(&r.c);
	hx_history_free(h);
}

// Read-your-writes: a process's read after its own ok transfer must be
// at or after that transfer's commit timestamp; other processes' reads
// are not held to it.
static void
test_session_read_your_writes(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	xfer_ts(h, 0, 0, 31, 0, 1, HX_OP_OK, 1000);
	read_ts(h, 2, 1, 900, "{\"0\":10,\"1\":10,\"2\":10,\"3\":10}");
	read_ts(h, 4, 0, 1000, "{\"0\":9,\"1\":11,\"2\":10,\"3\":10}");
	hx_session_result r;
	check_session(h, false, HX_VALID_TRUE, &r);
	assert_int_equal(r.reads, 1);
	assert_int_equal(r.stale, 0);
	hx_check_fini(&r.c);

	xfer_ts(h, 6, 0, 32, 0, 1, HX_OP_OK, (uint64_t)9 << 16);
	int64_t stale = read_ts(
	    h, 8, 0, (uint64_t)5 << 16, "{\"0\":8,\"1\":12,\"2\":10,\"3\":10}");
	check_session(h, false, HX_VALID_FALSE, &r);
	assert_int_equal(r.stale, 1);
	assert_int_equal(count_anoms(&r.c, "stale-read"), 1);
	assert_int_equal(r.c.anoms[0].op_index, stale);
	assert_int_equal(r.max_behind_ms, 4);
	assert_non_null(strstr(r.c.anoms[0].detail, "\"behind_ms\":4"));
	hx_check_fini(&r.c);

	// Sagas promise nothing.
	check_session(h, true, HX_VALID_TRUE, &r);
	assert_non_null(strstr(r.c.summary, "no session guarantee"));
	hx_check_fini(&r.c);
	hx_history_free(h);
}

// A read by process p invoked at t ms and completed at t + len ms, whose
// timestamp (HLC physical ms) participant `by` chose.
static int64_t
read_by(hx_history *h, int64_t t, int64_t len, int64_t p, int by, uint64_t ms)
{
	char v[160];
	add(h, t, p, HX_OP_INVOKE, "read", NULL);
	snprintf(v, sizeof(v),
	    "{\"by\":%d,\"ts\":%llu,\"balances\":{\"0\":10,\"1\":10,"
	    "\"2\":10,\"3\":10}}",
	    by, (unsigned long long)(ms << 16));
	return add(h, t + len, p, HX_OP_OK, "read", v);
}

// Node timestamp order (rule 14): a read invoked after another read that
// the same participant timed has completed gets a larger timestamp, in
// every mode. Overlapping reads, reads of two nodes and reads whose
// timestamp the client gave ("by" absent) are not compared.
static void
test_session_node_order(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	read_by(h, 0, 2, 0, 1, 500);
	read_by(h, 1, 5, 1, 1, 400); // overlaps the first: any order
	read_by(h, 3, 1, 2, 2, 100); // another node
	read_ts(h, 4, 3, (uint64_t)100 << 16,
	    "{\"0\":10,\"1\":10,\"2\":10,\"3\":10}");
	read_by(h, 10, 1, 0, 1, 600);
	hx_session_result r;
	check_session(h, true, HX_VALID_TRUE, &r);
	assert_int_equal(r.node_reads, 4);
	assert_int_equal(r.regressions, 0);
	hx_check_fini(&r.c);
	// Node 1 restarted and forgot its clock: 450 < 600 seen before.
	int64_t back = read_by(h, 20, 1, 2, 1, 450);
	check_session(h, true, HX_VALID_FALSE, &r);
	assert_int_equal(r.regressions, 1);
	assert_int_equal(r.max_back_ms, 150);
	assert_int_equal(count_anoms(&r.c, "ts-regression"), 1);
	assert_int_equal(r.c.anoms[0].op_index, back);
	assert_non_null(strstr(r.c.anoms[0].detail, "\"node\":1"));
	assert_non_null(strstr(r.c.summary, "1 went back"));
	hx_check_fini(&r.c);
	hx_history_free(h);
}

// Rule 14 at restarts: the nemesis reads a node's clock before it kills
// it and after the restart; a clock that starts below what it stamped
// before is a ts-regression, whatever the reads show.
static void
test_session_restart_clock(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	read_by(h, 0, 2, 0, 1, 500);
	add(h, 3, HX_PROC_NEMESIS, HX_OP_INFO, "kill", "{\"targets\":[2]}");
	add(h, 5, HX_PROC_NEMESIS, HX_OP_INFO, "restart",
	    "{\"targets\":[2],\"hlc\":[{\"node\":2,\"before\":"
	    "39321600,\"after\":39387136}]}"); // 600 ms, then 601 ms
	hx_session_result r;
	check_session(h, false, HX_VALID_TRUE, &r);
	assert_int_equal(r.restarts, 1);
	assert_int_equal(r.regressions, 0);
	hx_check_fini(&r.c);
	int64_t at = add(h, 9, HX_PROC_NEMESIS, HX_OP_INFO, "restart",
	    "{\"targets\":[2,3],\"hlc\":[{\"node\":3,\"before\":"
	    "39321600,\"after\":39321600},{\"node\":2,\"before\":"
	    "39387136,\"after\":26214400}]}"); // 600 = 600; 601 > 400
	check_session(h, false, HX_VALID_FALSE, &r);
	assert_int_equal(r.restarts, 3);
	assert_int_equal(r.regressions, 2);
	assert_int_equal(r.max_back_ms, 201);
	assert_int_equal(count_anoms(&r.c, "ts-regression"), 2);
	assert_int_equal(r.c.anoms[0].op_index, at);
	assert_non_null(strstr(r.c.anoms[1].detail, "\"restart\":true"));
	assert_non_null(strstr(r.c.summary, "3 restarts' clocks, 2 went back"));
	hx_check_fini(&r.c);
	hx_history_free(h);
}

// Writes text into a temporary file; returns its path (static buffer
// per slot).
static const char *
temp_log(int slot, const char *text)
{
	static char paths[2][64];
	snprintf(paths[slot], sizeof(paths[slot]), "/tmp/dtx-logs-XXXXXX");
	int fd = mkstemp(paths[slot]);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return paths[slot];
}

// A corrupt fault's refused start writes ERROR lines on purpose: the
// bytes its op names ("log_from".."log_to" on its target) are expected,
// counted apart and not flagged; the same line outside them, on another
// node, or after a start that was not refused is still an anomaly.
static void
test_logs_expected_refusal(void **state)
{
	(void)state;
	const char *first =
	    "2026-01-01T00:00:00.000Z INFO part-1 PART_READY up\n";
	const char *refusal =
	    "2026-01-01T00:00:01.000Z ERROR part-1 WALCORRUPT damaged record\n"
	    "2026-01-01T00:00:01.000Z ERROR part-1 STORE_OPEN cannot open\n";
	char text[512];
	snprintf(text, sizeof(text), "%s%s%s", first, refusal, refusal);
	size_t from = strlen(first), to = from + strlen(refusal);
	hx_node_log logs[] = { { 1, temp_log(0, text), NULL, 0 },
		{ 2, temp_log(1, text), NULL, 0 } };
	hx_history *h = hx_history_new();
	char v[256];
	snprintf(v, sizeof(v),
	    "{\"targets\":[1],\"fault\":3,\"outcome\":\"refused\","
	    "\"log_from\":%zu,\"log_to\":%zu}",
	    from, to);
	add(h, 5, HX_PROC_NEMESIS, HX_OP_INFO, "corrupt", v);
	snprintf(v, sizeof(v),
	    "{\"targets\":[1],\"fault\":4,\"outcome\":\"started\","
	    "\"log_from\":%zu,\"log_to\":%zu}",
	    to, 2 * to);
	add(h, 6, HX_PROC_NEMESIS, HX_OP_INFO, "corrupt", v);
	assert_int_equal(hx_node_logs_expect(h, logs, 2), DTX_OK);
	assert_int_equal(logs[0].nexpected, 1);
	assert_int_equal(logs[1].nexpected, 0);
	hx_logs_result r;
	assert_int_equal(hx_check_logs(logs, 1, &r), DTX_OK);
	// The second refusal is outside the range: flagged.
	assert_int_equal(r.c.valid, HX_VALID_FALSE);
	assert_int_equal(r.expected, 2);
	assert_int_equal(r.flagged, 2);
	assert_non_null(strstr(r.c.summary, "2 more were expected"));
	hx_check_fini(&r.c);
	logs[0].expected[0].to = 2 * to - from;
	assert_int_equal(hx_check_logs(logs, 1, &r), DTX_OK);
	assert_int_equal(r.c.valid, HX_VALID_TRUE);
	assert_int_equal(r.expected, 4);
	hx_check_fini(&r.c);
	// Node 2 had no refusal: its lines are anomalies.
	assert_int_equal(hx_check_logs(&logs[1], 1, &r), DTX_OK);
	assert_int_equal(r.flagged, 4);
	hx_check_fini(&r.c);
	// A daemon the nemesis found dead though no fault killed it (a
	// segfault leaves nothing in its log) is an anomaly of its own.
	logs[0].expected[0].to = 2 * to - from;
	assert_int_equal(hx_check_logs(logs, 1, &r), DTX_OK);
	assert_int_equal(hx_check_logs_deaths(h, 0, &r), DTX_OK);
	assert_int_equal(r.c.valid, HX_VALID_TRUE);
	assert_int_equal(r.died, 0);
	add(h, 9, HX_PROC_NEMESIS, HX_OP_INFO, "restart",
	    "{\"targets\":[2,4],\"faults\":[],"
	    "\"died_unexpectedly\":[4,2]}");
	assert_int_equal(hx_check_logs_deaths(h, 0, &r), DTX_OK);
	assert_int_equal(r.c.valid, HX_VALID_FALSE);
	assert_int_equal(r.died, 2);
	assert_int_equal(count_anoms(&r.c, "daemon-died"), 2);
	assert_non_null(strstr(r.c.summary, "2 daemon(s) died"));
	assert_true(hx_json_valid(r.c.json, strlen(r.c.json)));
	assert_non_null(strstr(r.c.json, "\"died\":2"));
	assert_non_null(strstr(r.c.json, "{\"valid\":false,\"files\":1,"));
	hx_check_fini(&r.c);
	// A node found dead after recovery (restarted by the nemesis, then
	// gone) is one too.
	assert_int_equal(hx_check_logs(logs, 1, &r), DTX_OK);
	assert_int_equal(hx_check_logs_deaths(h, 1u << 3, &r), DTX_OK);
	assert_int_equal(r.c.valid, HX_VALID_FALSE);
	assert_int_equal(r.died, 3);
	assert_int_equal(count_anoms(&r.c, "daemon-died"), 3);
	assert_non_null(strstr(r.c.summary, "3 daemon(s) died"));
	hx_check_fini(&r.c);
	unlink(logs[0].path);
	unlink(logs[1].path);
	dtx_free(logs[0].expected);
	hx_history_free(h);
}

// The log checker: ERROR lines and the agreed anomaly ids are anomalies
// with node, file and line; INFO and WARN lines are not.
static void
test_logs(void **state)
{
	(void)state;
	const char *clean =
	    "ts=2026-01-01T00:00:00.000Z level=info node=part-1 msg=READY "
	    "text=\"level=error msg=COMMIT_ABORTED\"\n"
	    "{\"ts\":\"2026-01-01T00:00:01.000Z\",\"level\":\"warn\","
	    "\"node\":\"part-1\",\"msg\":\"INDOUBT\",\"txid\":3}\n";
	const char *bad =
	    "ts=2026-01-01T00:00:00.000Z level=info node=part-2 msg=READY\n"
	    "ts=2026-01-01T00:00:02.000Z level=error node=part-2 "
	    "msg=COMMIT_ABORTED txid=7 type=commit text=\"told to commit but "
	    "it was aborted here\"\n";
	hx_node_log logs[] = { { 1, temp_log(0, clean), NULL, 0 },
		{ 2, temp_log(1, bad), NULL, 0 } };
	hx_logs_result r;
	assert_int_equal(hx_check_logs(logs, 1, &r), DTX_OK);
	assert_int_equal(r.c.valid, HX_VALID_TRUE);
	assert_int_equal(r.lines, 2);
	hx_check_fini(&r.c);
	assert_int_equal(hx_check_logs(logs, 2, &r), DTX_OK);
	assert_int_equal(r.c.valid, HX_VALID_FALSE);
	assert_int_equal(r.flagged, 1);
	assert_int_equal(count_anoms(&r.c, "log-anomaly"), 1);
	assert_non_null(strstr(r.c.anoms[0].detail, "\"node\":2"));
	assert_non_null(strstr(r.c.anoms[0].detail, "\"line\":2"));
	assert_non_null(strstr(r.c.anoms[0].detail, "COMMIT_ABORTED"));
	assert_true(
	    hx_json_valid(r.c.anoms[0].detail, strlen(r.c.anoms[0].detail)));
	hx_check_fini(&r.c);
	// An anomaly id is flagged at any level.
	unlink(logs[1].path);
	logs[1].path = temp_log(1,
	    "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"level\":\"warn\","
	    "\"node\":\"part-2\",\"msg\":\"ABORT_COMMITTED\"}\n");
	assert_int_equal(hx_check_logs(logs, 2, &r), DTX_OK);
	assert_int_equal(r.c.valid, HX_VALID_FALSE);
	hx_check_fini(&r.c);
	// The layout of runs stored before log records is still read.
	unlink(logs[1].path);
	logs[1].path = temp_log(1,
	    "2026-01-01T00:00:00.000Z WARN participant-2 ABORT_COMMITTED x\n"
	    "2026-01-01T00:00:00.000Z ERROR participant-2 WALFAIL x\n");
	assert_int_equal(hx_check_logs(logs, 2, &r), DTX_OK);
	assert_int_equal(r.flagged, 2);
	hx_check_fini(&r.c);
	// No file readable: unknown.
	hx_node_log none[] = { { 3, "/nonexistent/dtx.log", NULL, 0 } };
	assert_int_equal(hx_check_logs(none, 1, &r), DTX_OK);
	assert_int_equal(r.c.valid, HX_VALID_UNKNOWN);
	assert_int_equal(r.unreadable, 1);
	hx_check_fini(&r.c);

	// Through the verdict: the new checkers are listed, and the logs'
	// anomaly makes the run invalid.
	hx_history *h = hx_history_new();
	xfer_ts(h, 0, 0, 41, 0, 1, HX_OP_OK, 100);
	read_ts(h, 2, 1, 150, "{\"0\":9,\"1\":11,\"2\":10,\"3\":10}");
	hx_txn_obs obs[] = { { 41, 1, HX_TXN_COMMITTED } };
	hx_run_cfg cfg = { "2pc", bank };
	hx_run_extra x = { .replay = true, .logs = logs, .nlogs = 1 };
	hx_verdict v;
	assert_int_equal(
	    hx_check_run_ex(h, &cfg, &x, obs, 1, NULL, 0, &v), DTX_OK);
	assert_int_equal(v.valid, HX_VALID_TRUE);
	assert_int_equal(hx_verdict_count(&v), 6);
	assert_string_equal(hx_verdict_check(&v, 3)->name, "replay");
	assert_string_equal(hx_verdict_check(&v, 4)->name, "session");
	assert_string_equal(hx_verdict_check(&v, 5)->name, "logs");
	assert_null(hx_verdict_check(&v, 6));
	hx_verdict_fini(&v);
	x.nlogs = 2;
	assert_int_equal(
	    hx_check_run_ex(h, &cfg, &x, obs, 1, NULL, 0, &v), DTX_OK);
	assert_int_equal(v.valid, HX_VALID_FALSE);
	hx_verdict_fini(&v);
	hx_history_free(h);
	unlink(logs[0].path);
	unlink(logs[1].path);

	// A report directory's logs: <role>-<id>.log files only.
	char dir[] = "/tmp/dtx-rlogs-XXXXXX", sub[64], f1[96], f2[96];
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/logs", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(f1, sizeof(f1), "%s/participant-2.log", sub);
	snprintf(f2, sizeof(f2), "%s/notes.txt", sub);
	FILE *f = fopen(f1, "w");
	fputs(bad, f);
	fclose(f);
	f = fopen(f2, "w");
	fclose(f);
	hx_node_log *found = NULL;
	size_t nfound = 9;
	assert_int_equal(hx_node_logs_in_dir(dir, &found, &nfound), DTX_OK);
	assert_int_equal(nfound, 1);
	assert_int_equal(found[0].node, 2);
	assert_string_equal(found[0].path, f1);
	assert_int_equal(hx_check_logs(found, nfound, &r), DTX_OK);
	assert_int_equal(r.c.valid, HX_VALID_FALSE);
	hx_check_fini(&r.c);
	hx_node_logs_free(found, nfound);
	unlink(f1);
	unlink(f2);
	rmdir(sub);
	rmdir(dir);
	assert_int_equal(hx_node_logs_in_dir(dir, &found, &nfound), DTX_OK);
	assert_int_equal(nfound, 0);
}

static void
test_stats_exact(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	// Ten transfers with latencies 1..10 ms, each in its own process,
	// invoked at 0, 200, ..., 1800 ms.
	for (int i = 0; i < 10; i++) {
		int64_t t = i * 200;
		add(h, t, i, HX_OP_INVOKE, "transfer", NULL);
		add(h, t + i + 1, i,
		    i < 7       ? HX_OP_OK
		        : i < 9 ? HX_OP_FAIL
		                : HX_OP_INFO,
		    "transfer", NULL);
	}
	// Two reads of 100 ms, one read never completed, nemesis ops.
	add(h, 2000, 20, HX_OP_INVOKE, "read", NULL);
	add(h, 2100, 20, HX_OP_OK, "read", NULL);
	add(h, 2200, 21, HX_OP_INVOKE, "read", NULL);
	add(h, 2300, 21, HX_OP_OK, "read", NULL);
	add(h, 2400, HX_PROC_NEMESIS, HX_OP_INFO, "kill", NULL);
	add(h, 2450, HX_PROC_NEMESIS, HX_OP_INFO, "kill", NULL);
	add(h, 2500, 22, HX_OP_INVOKE, "read", NULL);
	hx_stats_result r;
	assert_int_equal(hx_check_stats(h, &r), DTX_OK);
	assert_int_equal(r.c.valid, HX_VALID_TRUE);
	assert_int_equal(r.total_ops, 27);
	assert_int_equal(r.client_ops, 25);
	assert_int_equal(r.nemesis_ops, 2);
	assert_int_equal(r.open, 1);
	assert_int_equal(r.duration_ns, 2500 * MS);
	assert_int_equal(r.nfs, 2);
	const hx_stats_f *rd = &r.fs[0], *tr = &r.fs[1];
	assert_string_equal(rd->f, "read");
	assert_string_equal(tr->f, "transfer");
	assert_int_equal(tr->counts[HX_OP_INVOKE], 10);
	assert_int_equal(tr->counts[HX_OP_OK], 7);
	assert_int_equal(tr->counts[HX_OP_FAIL], 2);
	assert_int_equal(tr->counts[HX_OP_INFO], 1);
	assert_int_equal(tr->nlat, 10);
	assert_int_equal(tr->p50, 5 * MS);
	assert_int_equal(tr->p90, 9 * MS);
	assert_int_equal(tr->p99, 10 * MS);
	assert_int_equal(tr->max, 10 * MS);
	assert_int_equal(rd->counts[HX_OP_INVOKE], 3);
	assert_int_equal(rd->nlat, 2);
	assert_int_equal(rd->p50, 100 * MS);
	assert_int_equal(rd->max, 100 * MS);
	// Completions per second: [ok, fail, info].
	assert_int_equal(r.nsec, 3);
	assert_int_equal(r.rate[0][0], 5); // transfers 0..4
	assert_int_equal(r.rate[0][1], 0);
	assert_int_equal(r.rate[1][0], 2); // transfers 5, 6
	assert_int_equal(r.rate[1][1], 2); // transfers 7, 8
	assert_int_equal(r.rate[1][2], 1); // transfer 9
	assert_int_equal(r.rate[2][0], 2); // the reads
	assert_true(hx_json_valid(r.c.json, strlen(r.c.json)));
	hx_stats_fini(&r);
	// An f that never completed ok leaves the stats unknown.
	add(h, 2600, 23, HX_OP_INVOKE, "scan", NULL);
	add(h, 2700, 23, HX_OP_FAIL, "scan", NULL);
	assert_int_equal(hx_check_stats(h, &r), DTX_OK);
	assert_int_equal(r.c.valid, HX_VALID_UNKNOWN);
	hx_stats_fini(&r);
	hx_history_free(h);
}

static void
test_verdict_merge_and_print(void **state)
{
	(void)state;
	assert_int_equal(
	    hx_valid_merge(HX_VALID_TRUE, HX_VALID_TRUE), HX_VALID_TRUE);
	assert_int_equal(
	    hx_valid_merge(HX_VALID_TRUE, HX_VALID_UNKNOWN), HX_VALID_UNKNOWN);
	assert_int_equal(
	    hx_valid_merge(HX_VALID_UNKNOWN, HX_VALID_FALSE), HX_VALID_FALSE);
	hx_history *h = hx_history_new();
	transfer(h, 0, 0, 1, HX_OP_OK);
	read_op(h, 5, 1, "{\"0\":9,\"1\":11,\"2\":10,\"3\":10}");
	hx_run_cfg cfg = { "3pc", bank };
	hx_verdict v;
	// No observations: atomicity unknown, so the run is unknown.
	assert_int_equal(hx_check_run(h, &cfg, NULL, 0, NULL, 0, &v), DTX_OK);
	assert_int_equal(v.valid, HX_VALID_UNKNOWN);
	hx_verdict_fini(&v);
	hx_txn_obs obs[] = { { 1, 1, HX_TXN_COMMITTED },
		{ 1, 2, HX_TXN_COMMITTED } };
	assert_int_equal(hx_check_run(h, &cfg, obs, 2, NULL, 0, &v), DTX_OK);
	assert_int_equal(v.valid, HX_VALID_TRUE);
	assert_int_equal(hx_verdict_count(&v), 3);
	assert_string_equal(hx_verdict_check(&v, 2)->name, "atomicity");
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	hx_verdict_print(f, &v);
	hx_json j;
	hx_json_begin(&j, f);
	hx_verdict_json(&j, "verdict", &v);
	hx_json_end(&j);
	fclose(f);
	assert_non_null(strstr(buf, "verdict: valid"));
	assert_non_null(strstr(buf, "atomicity"));
	char *js = strchr(buf, '{');
	assert_true(hx_json_valid(js, strlen(js)));
	free(buf);
	hx_verdict_fini(&v);
	hx_history_free(h);
}

// Runs hx_check_run_ex on its arguments with the n-th allocation
// failing, for n = 0, 1, ... below 5000: every failure must be
// DTX_ENOMEM, and a run must succeed; *v gets that first success
// (hx_verdict_fini).
static void
run_under_oom(hx_history *h, const hx_run_cfg *cfg, const hx_run_extra *x,
    const hx_txn_obs *obs, size_t nobs, const hx_saga_obs *s, size_t ns,
    hx_verdict *v)
{
	bool done = false;
	for (long n = 0; !done && n < 5000; n++) {
		dtx_alloc_fail_after(n);
		dtx_err rv = hx_check_run_ex(h, cfg, x, obs, nobs, s, ns, v);
		dtx_alloc_fail_after(-1);
		if (rv == DTX_OK)
			done = true;
		else
			assert_int_equal(rv, DTX_ENOMEM);
	}
	assert_true(done);
}

static void
test_checkers_out_of_memory(void **state)
{
	(void)state;
	hx_history *h = saga_history("{\"0\":4,\"1\":13,\"2\":10,\"3\":10}");
	transfer(h, 200, 5, 1, HX_OP_OK);
	hx_txn_obs obs[] = { { 1, 1, HX_TXN_COMMITTED },
		{ 1, 2, HX_TXN_ABORTED } };
	hx_saga_obs s[] = { saga("g1", HX_SAGA_RUNNING, 0) };
	const char *modes[] = { "2pc", "saga" };
	for (int m = 0; m < 2; m++) {
		hx_run_cfg cfg = { modes[m], bank };
		hx_verdict v;
		run_under_oom(h, &cfg, NULL, obs, 2, s, 1, &v);
		assert_int_equal(v.valid, HX_VALID_FALSE);
		hx_verdict_fini(&v);
	}
	hx_history_free(h);
}

// The replay and session checkers under allocation failure: every
// failure is DTX_ENOMEM, and the first success finds the planted
// replay mismatch and stale read.
static void
test_new_checkers_out_of_memory(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	xfer_ts(h, 0, 0, 51, 0, 1, HX_OP_OK, 100);
	xfer_ts(h, 2, 1, 52, 2, 3, HX_OP_INFO, 0);
	read_ts(h, 4, 0, 90, "{\"0\":10,\"1\":10,\"2\":10,\"3\":10}");
	hx_txn_obs obs[] = { { 51, 1, HX_TXN_COMMITTED },
		{ 52, 2, HX_TXN_COMMITTED } };
	hx_txn_cts cts[] = { { 52, 2, 300 } };
	hx_run_cfg cfg = { "2pc", bank };
	hx_run_extra x = { .replay = true, .cts = cts, .ncts = 1 };
	hx_verdict v;
	run_under_oom(h, &cfg, &x, obs, 2, NULL, 0, &v);
	assert_int_equal(v.valid, HX_VALID_FALSE);
	assert_true(v.has_replay);
	assert_int_equal(v.session.stale, 1);
	hx_verdict_fini(&v);
	hx_history_free(h);
}

// Writes text into dir/logs/name.
static void
put_log(const char *dir, const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/logs", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/logs/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *
slurp(const char *dir, const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	char *buf = calloc(1, 1 << 20);
	assert_non_null(buf);
	fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	return buf;
}

// The run report links a log anomaly naming txid 7 to its trace page,
// drawn from the run's node logs (their debug trace records).
static void
test_report_links_trace(void **state)
{
	(void)state;
	char dir[] = "/tmp/dtx-rtrace-XXXXXX";
	assert_non_null(mkdtemp(dir));
	put_log(dir, "coordinator-0.log",
	    "ts=2026-01-01T00:00:00.000Z level=debug node=coord-0 "
	    "msg=TXN_START txid=7 ev=begin hlc=100.0 vc=0:10\n"
	    "ts=2026-01-01T00:00:00.001Z level=debug node=coord-0 "
	    "msg=MSG_SEND txid=7 ev=send type=prepare peer=0 pc=0 hlc=100.1 "
	    "vc=0:11\n");
	put_log(dir, "participant-2.log",
	    "ts=2026-01-01T00:00:00.002Z level=debug node=part-2 "
	    "msg=MSG_RECV txid=7 ev=recv type=prepare peer=0 pc=11 "
	    "hlc=100.2 vc=0:11,2:5\n"
	    "ts=2026-01-01T00:00:02.000Z level=error node=part-2 "
	    "msg=COMMIT_ABORTED txid=7 type=commit\n");
	hx_node_log *logs = NULL;
	size_t nlogs = 0;
	assert_int_equal(hx_node_logs_in_dir(dir, &logs, &nlogs), DTX_OK);
	assert_int_equal(nlogs, 2);
	hx_history *h = hx_history_new();
	xfer_ts(h, 0, 0, 41, 0, 1, HX_OP_OK, 100);
	read_ts(h, 2, 1, 150, "{\"0\":9,\"1\":11,\"2\":10,\"3\":10}");
	hx_txn_obs obs[] = { { 41, 1, HX_TXN_COMMITTED } };
	hx_run_cfg cfg = { "2pc", bank };
	hx_run_extra x = { .replay = true, .logs = logs, .nlogs = nlogs };
	hx_verdict v;
	assert_int_equal(
	    hx_check_run_ex(h, &cfg, &x, obs, 1, NULL, 0, &v), DTX_OK);
	assert_int_equal(v.valid, HX_VALID_FALSE);
	const hx_check *lc = hx_verdict_check(&v, 5);
	assert_int_equal(lc->nanoms, 1);
	assert_true(lc->anoms[0].has_txid && lc->anoms[0].txid == 7);
	assert_int_equal(hx_report_write(dir, 3, h, NULL, 0, &v), DTX_OK);
	char *index = slurp(dir, "index.html");
	assert_non_null(index);
	assert_non_null(strstr(index, "<a href=\"trace-tx7.html\">trace</a>"));
	char *page = slurp(dir, "trace-tx7.html");
	assert_non_null(page);
	assert_non_null(strstr(page, "Transaction 7"));
	assert_non_null(strstr(page, "3 events on 2 nodes"));
	assert_non_null(strstr(page, "marker-end")); // the PREPARE's arrow
	free(index);
	free(page);
	hx_verdict_fini(&v);
	hx_history_free(h);
	hx_node_logs_free(logs, nlogs);
	assert_int_equal(dtx_rmtree(dir), DTX_OK);
}

// A saga's trace from logs in both formats: the participants name it by
// the orchestrator's barrier id (learnt from the orchestrator's records
// whatever the file order), one event read twice is kept once, and two
// participants' applies with no message between them are one step.
static void
test_trace_saga_logs(void **state)
{
	(void)state;
	char dir[] = "/tmp/dtx-tsaga-XXXXXX";
	assert_non_null(mkdtemp(dir));
	const char *part =
	    "{\"ts\":\"2026-01-01T00:00:00.010Z\",\"level\":\"debug\","
	    "\"node\":\"part-1\",\"msg\":\"MSG_RECV\",\"txid\":0,"
	    "\"gid\":\"b-1\",\"ev\":\"recv\",\"type\":\"step\","
	    "\"peer\":3,\"pc\":21,\"hlc\":\"10.1\","
	    "\"vc\":\"1:4,3:21\"}\n"
	    "ts=2026-01-01T00:00:00.011Z level=debug node=part-1 "
	    "msg=STEP_APPLIED txid=0 gid=b-1 ev=apply hlc=10.2 vc=1:5,3:21\n"
	    "ts=2026-01-01T00:00:00.011Z level=debug node=part-1 "
	    "msg=STEP_APPLIED txid=0 gid=other ev=apply hlc=10.2 vc=1:6\n";
	const char *part2 = "ts=2026-01-01T00:00:00.011Z level=debug "
	                    "node=part-2 msg=STEP_APPLIED txid=0 gid=b-1 "
	                    "ev=apply hlc=10.3 vc=2:9,3:21\n";
	const char *saga =
	    "ts=2026-01-01T00:00:00.000Z level=debug node=saga-3 "
	    "msg=SAGA_BEGIN txid=0 gid=\"g 1\" alias=b-1 ev=force hlc=9.0 "
	    "vc=3:20\n"
	    "ts=2026-01-01T00:00:00.001Z level=debug node=saga-3 "
	    "msg=MSG_SEND txid=0 gid=b-1 ev=send type=step peer=0 pc=0 "
	    "hlc=9.1 vc=3:21\n"
	    "ts=2026-01-01T00:00:00.001Z level=info node=saga-3 msg=X\n";
	put_log(dir, "participant-1.log", part);
	put_log(dir, "participant-2.log", part2);
	put_log(dir, "saga-3.log", saga);
	char p1[128], p2[128], p3[128];
	snprintf(p1, sizeof(p1), "%s/logs/participant-1.log", dir);
	snprintf(p2, sizeof(p2), "%s/logs/participant-2.log", dir);
	snprintf(p3, sizeof(p3), "%s/logs/saga-3.log", dir);
	const char *paths[] = { p1, p2, p3, p1, "/nonexistent/x.log" };
	hx_trace t;
	hx_trace_init(&t, 0, "g 1");
	assert_int_equal(hx_trace_add_logs(&t, paths, 5), DTX_OK);
	assert_int_equal(t.n, 5);
	assert_int_equal(hx_trace_order(&t), DTX_OK);
	assert_string_equal(t.ev[0].what, "SAGA_BEGIN");
	assert_int_equal(t.ev[1].kind, PROTO_EV_SEND);
	assert_int_equal(t.ev[2].kind, PROTO_EV_RECV);
	assert_int_equal(t.ev[2].send, 1);
	assert_true(hx_trace_before(&t, 0, 4));
	// part-1's apply and part-2's: concurrent, one step.
	size_t a = t.ev[3].node == 1 ? 3 : 4, b = 7 - a;
	assert_int_equal(t.ev[a].node, 1);
	assert_int_equal(t.ev[b].node, 2);
	assert_false(hx_trace_before(&t, a, b) || hx_trace_before(&t, b, a));
	assert_int_equal(t.ev[3].step, t.ev[4].step);
	assert_int_equal(t.steps, 4);
	char *out = NULL;
	size_t outlen = 0;
	FILE *mf = open_memstream(&out, &outlen);
	assert_int_equal(hx_trace_text(&t, mf), DTX_OK);
	fclose(mf);
	assert_non_null(strstr(out, "trace of saga g 1: 5 events, 4 steps"));
	assert_non_null(strstr(out, "step <- saga-3 (step 2)"));
	assert_non_null(strstr(out, "   4 || part-"));
	free(out);
	hx_trace_fini(&t);
	assert_int_equal(dtx_rmtree(dir), DTX_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bank_clean_history_valid),
		cmocka_unit_test(test_bank_wrong_total),
		cmocka_unit_test(test_bank_negative_balance),
		cmocka_unit_test(test_bank_unexpected_key),
		cmocka_unit_test(test_bank_missing_balance),
		cmocka_unit_test(test_bank_no_reads_unknown),
		cmocka_unit_test(test_atomicity_uncertain_transfers),
		cmocka_unit_test(test_atomicity_info_resolved),
		cmocka_unit_test(test_atomicity_split_decision),
		cmocka_unit_test(test_atomicity_heuristic),
		cmocka_unit_test(test_atomicity_history_cross_check),
		cmocka_unit_test(test_saga_left_compensating_invalid),
		cmocka_unit_test(test_saga_compensation_order),
		cmocka_unit_test(test_saga_transient_totals_not_violations),
		cmocka_unit_test(test_saga_final_total_wrong),
		cmocka_unit_test(test_saga_total_above_bank),
		cmocka_unit_test(test_final_read_unreadable),
		cmocka_unit_test(test_bank_setup_read_never_transient),
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_replay_indeterminate),
		cmocka_unit_test(test_session_read_your_writes),
		cmocka_unit_test(test_session_node_order),
		cmocka_unit_test(test_session_restart_clock),
		cmocka_unit_test(test_logs_expected_refusal),
		cmocka_unit_test(test_logs),
		cmocka_unit_test(test_report_links_trace),
		cmocka_unit_test(test_trace_saga_logs),
		cmocka_unit_test(test_stats_exact),
		cmocka_unit_test(test_verdict_merge_and_print),
		cmocka_unit_test(test_checkers_out_of_memory),
		cmocka_unit_test(test_new_checkers_out_of_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
