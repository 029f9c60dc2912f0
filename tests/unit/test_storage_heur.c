// SPDX-License-Identifier: MIT
//
// Heuristic decisions in the store: an in-doubt transaction aborted or
// committed by hand is force-logged as heuristic (who, when, why), kept
// across restarts and checkpoints and beyond outcome collection, refused
// for a txid not in doubt, and its later verdict (agreed, or a hazard
// when the coordinator decided the other way) is kept the same way. A
// checkpoint of the older format (version 1, without heuristic
// decisions) still loads.

#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "storage_int.h"
#include "test_storage_util.h"

static clk_ts
T(uint64_t ms)
{
	return clk_ts_make(ms, 0);
}

static void
prepare(stor_kv *kv, uint64_t txid, const char *key, int64_t v, clk_ts pts)
{
	stor_txn *t;
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), DTX_OK);
	assert_int_equal(stor_txn_put_i64(t, key, strlen(key), v), DTX_OK);
	stor_prep_meta m = { .coordinator = 9,
		.mode = STOR_MODE_2PC,
		.prepare_ts = pts,
		.npeers = 1,
		.peers = { 2 } };
	assert_int_equal(stor_txn_prepare(t, txid, &m), DTX_OK);
}

static dtx_err
count_key(void *arg, const void *key, size_t klen)
{
	(void)key;
	(void)klen;
	(*(int *)arg)++;
	return DTX_OK;
}

static void
check_abort_entry(stor_kv *kv, stor_heur_verdict want)
{
	stor_heur h;
	assert_int_equal(stor_kv_heur_get(kv, 7, &h), DTX_OK);
	assert_int_equal(h.outcome, STOR_TX_ABORTED);
	assert_int_equal(h.commit_ts, 0);
	assert_int_equal(h.by_node, 5);
	assert_string_equal(h.who, "admin 5");
	assert_string_equal(h.why, "coordinator lost");
	assert_int_equal(h.meta.coordinator, 9);
	assert_true(h.wall_ms > 0);
	assert_int_equal(h.verdict, want);
	stor_tx_state st;
	assert_int_equal(stor_kv_tx_state(kv, 7, &st, NULL), DTX_OK);
	assert_int_equal(st, STOR_TX_ABORTED);
	// The key is free and holds its old value.
	assert_int_equal(st_must_get(kv, "a", T(1000)), 1);
}

static void
test_heuristic_abort_kept(void **state)
{
	(void)state;
	char dir[256];
	stor_kv_opts o;
	stor_kv_opts_init(&o);
	o.outcome_ttl_ms = 0; // outcomes go at once; heuristics stay
	stor_kv *kv = st_kv_fresh(dir, sizeof(dir), "heurabort", &o);
	st_put_local(kv, "a", 1, T(10));
	prepare(kv, 7, "a", 2, T(20));
	int nk = 0;
	assert_int_equal(stor_kv_indoubt_keys(kv, 7, count_key, &nk), DTX_OK);
	assert_int_equal(nk, 1);
	stor_heur h;
	assert_int_equal(stor_kv_heuristic(kv, 7, false, 0, 5, "admin 5",
	                     "coordinator lost", &h),
	    DTX_OK);
	assert_int_equal(h.verdict, STOR_HEUR_UNCONFIRMED);
	assert_int_equal(
	    stor_kv_indoubt_keys(kv, 7, count_key, &nk), DTX_ENOENT);
	// Not in doubt any more: a second decision is refused.
	assert_int_equal(
	    stor_kv_heuristic(kv, 7, true, T(30), 5, "x", "y", NULL),
	    DTX_ENOENT);
	check_abort_entry(kv, STOR_HEUR_UNCONFIRMED);
	// Replayed from the WAL.
	stor_kv_close(kv);
	kv = st_kv_open(dir, &o);
	check_abort_entry(kv, STOR_HEUR_UNCONFIRMED);
	// Outcome collection forgets the outcome, never the decision; a
	// COMMIT now still conflicts and an ABORT is still fine.
	stor_kv_outcome_gc(kv, 0);
	check_abort_entry(kv, STOR_HEUR_UNCONFIRMED);
	assert_int_equal(stor_kv_commit(kv, 7, T(40)), DTX_ECONFLICT);
	assert_int_equal(stor_kv_abort(kv, 7), DTX_OK);
	// The coordinator had committed: a hazard, kept once.
	stor_heur_verdict v;
	assert_int_equal(
	    stor_kv_heur_verdict(kv, 7, STOR_TX_COMMITTED, &v), DTX_OK);
	assert_int_equal(v, STOR_HEUR_HAZARD);
	assert_int_equal(
	    stor_kv_heur_verdict(kv, 7, STOR_TX_ABORTED, &v), DTX_OK);
	assert_int_equal(v, STOR_HEUR_HAZARD);
	stor_kv_close(kv);
	kv = st_kv_open(dir, &o);
	check_abort_entry(kv, STOR_HEUR_HAZARD);
	// Through a checkpoint that drops every segment.
	assert_int_equal(stor_kv_checkpoint(kv), DTX_OK);
	stor_kv_close(kv);
	kv = st_kv_open(dir, &o);
	check_abort_entry(kv, STOR_HEUR_HAZARD);
	stor_kv_stats s;
	stor_kv_stats_get(kv, &s);
	assert_int_equal(s.heur_aborts, 1);
	assert_int_equal(s.heur_commits, 0);
	assert_int_equal(s.heur_hazards, 1);
	assert_int_equal(s.heur_unconfirmed, 0);
	st_kv_done(kv, dir);
}

static void
test_heuristic_commit_agreed(void **state)
{
	(void)state;
	char dir[256];
	stor_kv *kv = st_kv_fresh(dir, sizeof(dir), "heurcommit", NULL);
	st_put_local(kv, "b", 1, T(10));
	prepare(kv, 8, "b", 5, T(20));
	// Below the prepare ts: refused, still in doubt.
	assert_int_equal(
	    stor_kv_heuristic(kv, 8, true, T(19), 1, "admin 1", "", NULL),
	    DTX_EINVAL);
	assert_int_equal(
	    stor_kv_heuristic(kv, 8, true, T(25), 1, "admin 1", "", NULL),
	    DTX_OK);
	assert_int_equal(st_must_get(kv, "b", T(24)), 1);
	assert_int_equal(st_must_get(kv, "b", T(25)), 5);
	assert_int_equal(stor_kv_commit(kv, 8, T(25)), DTX_OK);
	assert_int_equal(stor_kv_abort(kv, 8), DTX_ECONFLICT);
	assert_int_equal(stor_kv_checkpoint(kv), DTX_OK);
	stor_heur_verdict v;
	assert_int_equal(
	    stor_kv_heur_verdict(kv, 8, STOR_TX_COMMITTED, &v), DTX_OK);
	assert_int_equal(v, STOR_HEUR_AGREED);
	stor_kv_close(kv);
	kv = st_kv_open(dir, NULL);
	assert_int_equal(st_must_get(kv, "b", T(25)), 5);
	stor_heur *list;
	size_t n;
	assert_int_equal(stor_kv_heur_list(kv, &list, &n), DTX_OK);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].txid, 8);
	assert_int_equal(list[0].outcome, STOR_TX_COMMITTED);
	assert_int_equal(list[0].commit_ts, T(25));
	assert_int_equal(list[0].verdict, STOR_HEUR_AGREED);
	assert_int_equal(list[0].coord_outcome, STOR_TX_COMMITTED);
	assert_string_equal(list[0].why, "");
	dtx_free(list);
	// Unknown txids.
	stor_heur h;
	assert_int_equal(stor_kv_heur_get(kv, 99, &h), DTX_ENOENT);
	assert_int_equal(
	    stor_kv_heuristic(kv, 99, false, 0, 1, "a", "b", NULL), DTX_ENOENT);
	assert_int_equal(
	    stor_kv_heur_verdict(kv, 99, STOR_TX_ABORTED, NULL), DTX_ENOENT);
	assert_int_equal(
	    stor_kv_heur_verdict(kv, 8, STOR_TX_PREPARED, NULL), DTX_EINVAL);
	st_kv_done(kv, dir);
}

// A checkpoint blob of version v with nothing in it, plus extra bytes.
static size_t
empty_blob(uint8_t *b, uint32_t v, const uint8_t *extra, size_t nextra)
{
	size_t n = 0;
	memcpy(b, "KVC1", 4);
	n += 4;
	dtx_put_le32(b + n, v);
	n += 4;
	memset(b + n, 0, 8 + 8 + 8 + 4 + 8 + 8); // horizon .. nbar
	n += 44;
	if (nextra > 0)
		memcpy(b + n, extra, nextra);
	return n + nextra;
}

static void
test_old_checkpoint_loads(void **state)
{
	(void)state;
	char dir[256];
	stor_kv *kv = st_kv_fresh(dir, sizeof(dir), "heurv1", NULL);
	uint8_t b[128];
	static const uint8_t zero4[4] = { 0 };
	size_t n = empty_blob(b, 1, NULL, 0);
	assert_int_equal(stor__load_ckpt(kv, 1, b, n), DTX_OK);
	// Version 1 has no heuristic section: bytes after it are damage.
	n = empty_blob(b, 1, zero4, 4);
	assert_int_equal(stor__load_ckpt(kv, 1, b, n), DTX_ECORRUPT);
	n = empty_blob(b, 2, zero4, 4);
	assert_int_equal(stor__load_ckpt(kv, 1, b, n), DTX_OK);
	n = empty_blob(b, 3, zero4, 4);
	assert_int_equal(stor__load_ckpt(kv, 1, b, n), DTX_ECORRUPT);
	st_kv_done(kv, dir);
}

int
main(void)
{
	dtx_log_init("test", DTX_LOG_OFF);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_heuristic_abort_kept),
		cmocka_unit_test(test_heuristic_commit_agreed),
		cmocka_unit_test(test_old_checkpoint_loads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
