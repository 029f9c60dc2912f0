// SPDX-License-Identifier: MIT
//
// The MVCC store: snapshot visibility, intents against readers and
// writers (rule 10), first-committer-wins, GC never removing a version a
// pinned snapshot needs (rule 20), prepared transactions and outcomes
// surviving restarts (rules 6-8), the look-up of one in-doubt
// transaction, checkpoints, saga barriers (rule 13),
// an injected fsync failure, 64 concurrent PREPAREs sharing fsyncs, and
// the out-of-memory loop over open, commit, prepare and checkpoint.

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_storage_util.h"

static clk_ts
T(uint64_t ms)
{
	return clk_ts_make(ms, 0);
}

static dtx_err
get(stor_kv *kv, const char *key, clk_ts at, int64_t *v)
{
	return stor_kv_get_i64(kv, key, strlen(key), at, v, NULL, NULL);
}

static dtx_err
sum_fn(void *arg, const void *key, size_t klen, const void *val, size_t vlen,
    clk_ts vts)
{
	(void)key;
	(void)klen;
	(void)vts;
	if (vlen == 8) {
		int64_t v;
		memcpy(&v, val, 8);
		*(int64_t *)arg += v;
	}
	return DTX_OK;
}

static void
test_snapshot_visibility(void **state)
{
	(void)state;
	char dir[256];
	stor_kv *kv = st_kv_fresh(dir, sizeof(dir), "kvsnap", NULL);
	st_put_local(kv, "a", 1, T(10));
	st_put_local(kv, "a", 2, T(20));
	st_put_local(kv, "b", 100, T(15));
	int64_t v;
	assert_int_equal(get(kv, "a", T(5), &v), DTX_ENOENT);
	assert_int_equal(st_must_get(kv, "a", T(10)), 1);
	assert_int_equal(st_must_get(kv, "a", T(19)), 1);
	assert_int_equal(st_must_get(kv, "a", T(20)), 2);
	// Deletion is a version too.
	stor_txn *t;
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), 0);
	assert_int_equal(stor_txn_del(t, "a", 1), 0);
	assert_int_equal(stor_txn_commit(t, T(30)), 0);
	assert_int_equal(get(kv, "a", T(30), &v), DTX_ENOENT);
	assert_int_equal(st_must_get(kv, "a", T(29)), 2);
	// A whole-store scan is one snapshot.
	int64_t sum = 0;
	assert_int_equal(stor_kv_scan(kv, T(16), sum_fn, &sum, NULL), 0);
	assert_int_equal(sum, 101);
	sum = 0;
	assert_int_equal(stor_kv_scan(kv, T(40), sum_fn, &sum, NULL), 0);
	assert_int_equal(sum, 100);
	// A transaction reads at its snapshot and sees its own writes.
	assert_int_equal(stor_txn_begin(kv, T(12), &t), 0);
	assert_int_equal(stor_txn_get_i64(t, "a", 1, &v, NULL), 0);
	assert_int_equal(v, 1);
	assert_int_equal(stor_txn_get_i64(t, "b", 1, &v, NULL), DTX_ENOENT);
	assert_int_equal(stor_txn_put_i64(t, "c", 1, 7), 0);
	assert_int_equal(stor_txn_get_i64(t, "c", 1, &v, NULL), 0);
	assert_int_equal(v, 7);
	stor_txn_abort(t);
	assert_int_equal(get(kv, "c", CLK_TS_MAX - 1, &v), DTX_ENOENT);
	// Byte-string values.
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), 0);
	assert_int_equal(stor_txn_put(t, "s", 1, "hello", 5), 0);
	assert_int_equal(stor_txn_commit(t, T(50)), 0);
	void *val;
	size_t vlen;
	clk_ts vts;
	assert_int_equal(
	    stor_kv_get(kv, "s", 1, T(60), &val, &vlen, &vts, NULL), 0);
	assert_int_equal(vlen, 5);
	assert_memory_equal(val, "hello", 5);
	assert_int_equal(vts, T(50));
	dtx_free(val);
	stor_kv_close(kv);
	// Everything is still there after a restart (replay).
	kv = st_kv_open(dir, NULL);
	assert_int_equal(st_must_get(kv, "a", T(29)), 2);
	assert_int_equal(get(kv, "a", T(30), &v), DTX_ENOENT);
	assert_int_equal(st_must_get(kv, "b", T(30)), 100);
	st_kv_done(kv, dir);
}

static stor_prep_meta
meta(clk_ts pts)
{
	stor_prep_meta m = { .coordinator = 9,
		.mode = STOR_MODE_2PC,
		.prepare_ts = pts,
		.npeers = 2,
		.peers = { 1, 2 } };
	return m;
}

static dtx_err
prepare(stor_kv *kv, uint64_t txid, const char *key, int64_t v, clk_ts pts)
{
	stor_txn *t;
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), 0);
	assert_int_equal(stor_txn_put_i64(t, key, strlen(key), v), 0);
	stor_prep_meta m = meta(pts);
	return stor_txn_prepare(t, txid, &m);
}

static void
test_intents(void **state)
{
	(void)state;
	char dir[256];
	stor_kv *kv = st_kv_fresh(dir, sizeof(dir), "kvint", NULL);
	st_put_local(kv, "k", 10, T(10));
	assert_int_equal(prepare(kv, 7, "k", 11, T(50)), DTX_OK);
	assert_int_equal(prepare(kv, 7, "z", 1, T(50)), DTX_EEXIST);
	// A read below the prepare ts is not blocked.
	assert_int_equal(st_must_get(kv, "k", T(49)), 10);
	// At or above it the intent is reported.
	int64_t v;
	stor_blocker blk = { 0 };
	assert_int_equal(
	    stor_kv_get_i64(kv, "k", 1, T(50), &v, NULL, &blk), DTX_EAGAIN);
	assert_int_equal(blk.txid, 7);
	assert_int_equal(blk.prepare_ts, T(50));
	int64_t sum = 0;
	assert_int_equal(
	    stor_kv_scan(kv, T(60), sum_fn, &sum, &blk), DTX_EAGAIN);
	assert_int_equal(sum, 0);
	// Conflicting prepare and local write are refused at once.
	assert_int_equal(prepare(kv, 8, "k", 12, T(51)), DTX_ECONFLICT);
	stor_txn *t;
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), 0);
	assert_int_equal(stor_txn_put_i64(t, "k", 1, 99), 0);
	assert_int_equal(stor_txn_commit(t, T(52)), DTX_ECONFLICT);
	stor_tx_state st;
	clk_ts cts;
	assert_int_equal(stor_kv_tx_state(kv, 7, &st, &cts), 0);
	assert_int_equal(st, STOR_TX_PREPARED);
	assert_int_equal(stor_kv_tx_state(kv, 8, &st, &cts), DTX_ENOENT);
	// Commit makes the intent a version at the commit ts.
	assert_int_equal(stor_kv_commit(kv, 7, T(40)), DTX_EINVAL);
	assert_int_equal(stor_kv_commit(kv, 7, T(55)), DTX_OK);
	assert_int_equal(st_must_get(kv, "k", T(54)), 10);
	assert_int_equal(st_must_get(kv, "k", T(55)), 11);
	assert_int_equal(stor_kv_commit(kv, 7, T(55)), DTX_OK);
	assert_int_equal(stor_kv_abort(kv, 7), DTX_ECONFLICT);
	assert_int_equal(stor_kv_tx_state(kv, 7, &st, &cts), 0);
	assert_int_equal(st, STOR_TX_COMMITTED);
	assert_int_equal(cts, T(55));
	// Abort drops the intents.
	assert_int_equal(prepare(kv, 9, "k", 500, T(60)), DTX_OK);
	assert_int_equal(stor_kv_abort(kv, 9), DTX_OK);
	assert_int_equal(stor_kv_abort(kv, 9), DTX_OK);
	assert_int_equal(stor_kv_commit(kv, 9, T(70)), DTX_ECONFLICT);
	assert_int_equal(st_must_get(kv, "k", T(100)), 11);
	assert_int_equal(stor_kv_commit(kv, 12345, T(70)), DTX_ENOENT);
	// A txid aborted before it ever prepared cannot prepare later.
	assert_int_equal(stor_kv_abort(kv, 10), DTX_OK);
	assert_int_equal(prepare(kv, 10, "q", 1, T(80)), DTX_EEXIST);
	st_kv_done(kv, dir);
}

static void
test_first_committer_wins(void **state)
{
	(void)state;
	char dir[256];
	stor_kv *kv = st_kv_fresh(dir, sizeof(dir), "kvfcw", NULL);
	st_put_local(kv, "x", 1, T(100));
	stor_txn *t1, *t2;
	assert_int_equal(stor_txn_begin(kv, T(100), &t1), 0);
	assert_int_equal(stor_txn_begin(kv, T(100), &t2), 0);
	assert_int_equal(stor_txn_put_i64(t1, "x", 1, 2), 0);
	assert_int_equal(stor_txn_put_i64(t2, "x", 1, 3), 0);
	assert_int_equal(stor_txn_commit(t1, T(110)), DTX_OK);
	assert_int_equal(stor_txn_commit(t2, T(111)), DTX_ECONFLICT);
	assert_int_equal(st_must_get(kv, "x", T(200)), 2);
	// A snapshot older than the newest version cannot write the key.
	stor_txn *t3;
	assert_int_equal(stor_txn_begin(kv, T(105), &t3), 0);
	int64_t v;
	assert_int_equal(stor_txn_get_i64(t3, "x", 1, &v, NULL), 0);
	assert_int_equal(v, 1);
	assert_int_equal(stor_txn_put_i64(t3, "x", 1, v + 1), 0);
	assert_int_equal(stor_txn_commit(t3, T(120)), DTX_ECONFLICT);
	// Read-modify-write at the latest version: a change in between is a
	// conflict.
	stor_txn *t4;
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t4), 0);
	assert_int_equal(stor_txn_get_i64(t4, "x", 1, &v, NULL), 0);
	st_put_local(kv, "x", 50, T(130));
	assert_int_equal(stor_txn_put_i64(t4, "x", 1, v + 1), 0);
	assert_int_equal(stor_txn_commit(t4, T(140)), DTX_ECONFLICT);
	// Disjoint keys both commit.
	assert_int_equal(stor_txn_begin(kv, T(130), &t1), 0);
	assert_int_equal(stor_txn_begin(kv, T(130), &t2), 0);
	assert_int_equal(stor_txn_put_i64(t1, "p", 1, 1), 0);
	assert_int_equal(stor_txn_put_i64(t2, "q", 1, 1), 0);
	assert_int_equal(stor_txn_commit(t1, T(150)), DTX_OK);
	assert_int_equal(stor_txn_commit(t2, T(151)), DTX_OK);
	st_kv_done(kv, dir);
}

static void
test_gc(void **state)
{
	(void)state;
	char dir[256];
	stor_kv *kv = st_kv_fresh(dir, sizeof(dir), "kvgc", NULL);
	st_put_local(kv, "g", 10, T(10));
	st_put_local(kv, "g", 20, T(20));
	st_put_local(kv, "g", 30, T(30));
	st_put_local(kv, "d", 1, T(10));
	stor_txn *t;
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), 0);
	assert_int_equal(stor_txn_del(t, "d", 1), 0);
	assert_int_equal(stor_txn_commit(t, T(12)), 0);
	uint64_t pin;
	assert_int_equal(stor_kv_snap_pin(kv, T(15), &pin), 0);
	stor_txn *reader;
	assert_int_equal(stor_txn_begin(kv, T(25), &reader), 0);
	size_t removed = 0;
	assert_int_equal(stor_kv_gc(kv, T(100), &removed), 0);
	// The pinned snapshot at 15 still sees 10; the open transaction at
	// 25 still sees 20.
	assert_int_equal(st_must_get(kv, "g", T(15)), 10);
	int64_t v;
	assert_int_equal(stor_txn_get_i64(reader, "g", 1, &v, NULL), 0);
	assert_int_equal(v, 20);
	// Only "d"'s version 10 (hidden by its deletion at 12) and the key
	// itself could go.
	assert_int_equal(removed, 2);
	stor_txn_abort(reader);
	stor_kv_snap_unpin(kv, pin);
	assert_int_equal(stor_kv_gc(kv, T(100), &removed), 0);
	// Versions 10 and 20 of "g" are gone now.
	assert_int_equal(removed, 2);
	assert_int_equal(get(kv, "g", T(15), &v), DTX_ERANGE);
	assert_int_equal(st_must_get(kv, "g", T(100)), 30);
	assert_int_equal(get(kv, "d", T(100), &v), DTX_ENOENT);
	stor_kv_stats s;
	stor_kv_stats_get(kv, &s);
	assert_int_equal(s.keys, 1);
	assert_int_equal(s.versions, 1);
	assert_int_equal(stor_kv_snap_pin(kv, T(50), &pin), DTX_ERANGE);
	// The horizon survives a checkpoint and restart.
	assert_int_equal(stor_kv_checkpoint(kv), 0);
	stor_kv_close(kv);
	kv = st_kv_open(dir, NULL);
	assert_int_equal(get(kv, "g", T(15), &v), DTX_ERANGE);
	assert_int_equal(st_must_get(kv, "g", T(100)), 30);
	st_kv_done(kv, dir);
}

static void
test_prepared_survive_restart(void **state)
{
	(void)state;
	char dir[256];
	stor_kv *kv = st_kv_fresh(dir, sizeof(dir), "kvprep", NULL);
	st_put_local(kv, "acct1", 100, T(10));
	st_put_local(kv, "acct2", 100, T(10));
	// Participant style: read the latest balance and prepare the new
	// one atomically.
	stor_txn *t;
	int64_t bal;
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), 0);
	assert_int_equal(stor_txn_get_i64(t, "acct1", 5, &bal, NULL), 0);
	assert_int_equal(stor_txn_put_i64(t, "acct1", 5, bal - 30), 0);
	stor_prep_meta m = meta(T(20));
	assert_int_equal(stor_txn_prepare(t, 1001, &m), DTX_OK);
	m = meta(T(21));
	m.mode = STOR_MODE_3PC;
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), 0);
	assert_int_equal(stor_txn_put_i64(t, "acct2", 5, 130), 0);
	assert_int_equal(stor_txn_prepare(t, 1002, &m), DTX_OK);
	assert_int_equal(stor_kv_precommit(kv, 1002, T(25)), DTX_OK);
	assert_int_equal(stor_kv_precommit(kv, 999, T(25)), DTX_ENOENT);
	stor_kv_close(kv);

	for (int pass = 0; pass < 2; pass++) {
		kv = st_kv_open(dir, NULL);
		stor_indoubt *list;
		size_t n;
		assert_int_equal(stor_kv_indoubt(kv, &list, &n), 0);
		assert_int_equal(n, 2);
		assert_int_equal(list[0].txid, 1001);
		assert_int_equal(list[0].state, STOR_TX_PREPARED);
		assert_int_equal(list[0].meta.coordinator, 9);
		assert_int_equal(list[0].meta.npeers, 2);
		assert_int_equal(list[0].meta.peers[1], 2);
		assert_int_equal(list[0].meta.prepare_ts, T(20));
		assert_int_equal(list[0].nwrites, 1);
		assert_int_equal(list[1].txid, 1002);
		assert_int_equal(list[1].state, STOR_TX_PRECOMMITTED);
		assert_int_equal(list[1].commit_ts, T(25));
		assert_int_equal(list[1].meta.mode, STOR_MODE_3PC);
		dtx_free(list);
		// The intents are back before anything is served.
		assert_int_equal(
		    prepare(kv, 2000, "acct1", 1, T(30)), DTX_ECONFLICT);
		int64_t v;
		assert_int_equal(get(kv, "acct1", T(22), &v), DTX_EAGAIN);
		// The second pass runs from a checkpoint.
		if (pass == 0)
			assert_int_equal(stor_kv_checkpoint(kv), 0);
		stor_kv_close(kv);
	}
	kv = st_kv_open(dir, NULL);
	assert_int_equal(stor_kv_commit(kv, 1001, T(40)), 0);
	assert_int_equal(stor_kv_abort(kv, 1002), 0);
	stor_kv_close(kv);
	kv = st_kv_open(dir, NULL);
	assert_int_equal(st_must_get(kv, "acct1", T(40)), 70);
	assert_int_equal(st_must_get(kv, "acct2", T(40)), 100);
	stor_tx_state st;
	clk_ts cts;
	assert_int_equal(stor_kv_tx_state(kv, 1001, &st, &cts), 0);
	assert_int_equal(st, STOR_TX_COMMITTED);
	assert_int_equal(cts, T(40));
	assert_int_equal(stor_kv_tx_state(kv, 1002, &st, &cts), 0);
	assert_int_equal(st, STOR_TX_ABORTED);
	stor_indoubt *list;
	size_t n;
	assert_int_equal(stor_kv_indoubt(kv, &list, &n), 0);
	assert_int_equal(n, 0);
	assert_null(list);
	// Outcomes are collected by age.
	stor_kv_outcome_gc(kv, 0);
	dtx_sleep_ms(2);
	stor_kv_outcome_gc(kv, 0);
	assert_int_equal(stor_kv_tx_state(kv, 1001, &st, &cts), DTX_ENOENT);
	st_kv_done(kv, dir);
}

// Field by field (the structures' padding is not theirs to compare).
static void
indoubt_same(const stor_indoubt *a, const stor_indoubt *b)
{
	assert_int_equal(a->txid, b->txid);
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->commit_ts, b->commit_ts);
	assert_int_equal(a->lsn, b->lsn);
	assert_int_equal(a->nwrites, b->nwrites);
	assert_int_equal(a->meta.coordinator, b->meta.coordinator);
	assert_int_equal(a->meta.mode, b->meta.mode);
	assert_int_equal(a->meta.prepare_ts, b->meta.prepare_ts);
	assert_int_equal(a->meta.npeers, b->meta.npeers);
	assert_memory_equal(a->meta.peers, b->meta.peers,
	    a->meta.npeers * sizeof(a->meta.peers[0]));
}

// stor_kv_indoubt_find answers for one txid exactly what stor_kv_indoubt
// lists for it, before and after a restart, and DTX_ENOENT once it is
// decided, while its COMMIT is queued, and for a txid never prepared.
static void
test_indoubt_find(void **state)
{
	(void)state;
	char dir[256];
	stor_kv *kv = st_kv_fresh(dir, sizeof(dir), "kvfind", NULL);
	for (uint64_t id = 1; id <= 40; id++) {
		char key[16];
		snprintf(key, sizeof(key), "k%u", (unsigned)id);
		assert_int_equal(
		    prepare(kv, 5000 + id * 7, key, (int64_t)id, T(100 + id)),
		    DTX_OK);
	}
	assert_int_equal(stor_kv_precommit(kv, 5000 + 3 * 7, T(300)), 0);
	for (int pass = 0; pass < 2; pass++) {
		stor_indoubt *list;
		size_t n;
		assert_int_equal(stor_kv_indoubt(kv, &list, &n), 0);
		assert_int_equal(n, 40);
		for (size_t i = 0; i < n; i++) {
			stor_indoubt x;
			assert_int_equal(
			    stor_kv_indoubt_find(kv, list[i].txid, &x), 0);
			indoubt_same(&x, &list[i]);
		}
		assert_int_equal(list[2].state, STOR_TX_PRECOMMITTED);
		assert_int_equal(list[2].commit_ts, T(300));
		dtx_free(list);
		stor_kv_close(kv);
		kv = st_kv_open(dir, NULL);
	}
	stor_indoubt x = { .txid = 77 };
	assert_int_equal(stor_kv_indoubt_find(kv, 5001, &x), DTX_ENOENT);
	assert_int_equal(x.txid, 77); // untouched on an error
	assert_int_equal(stor_kv_indoubt_find(kv, 0, &x), DTX_EINVAL);
	assert_int_equal(stor_kv_indoubt_find(NULL, 5007, &x), DTX_EINVAL);
	assert_int_equal(stor_kv_indoubt_find(kv, 5007, NULL), DTX_EINVAL);
	// Decided: aborted, or committed (the COMMIT queued, then applied).
	assert_int_equal(stor_kv_abort(kv, 5007), 0);
	assert_int_equal(stor_kv_indoubt_find(kv, 5007, &x), DTX_ENOENT);
	uint64_t lsn;
	assert_int_equal(stor_kv_commit_async(kv, 5014, T(400), &lsn), 0);
	assert_int_equal(stor_kv_indoubt_find(kv, 5014, &x), DTX_ENOENT);
	assert_int_equal(stor_kv_sync(kv, lsn), 0);
	assert_int_equal(stor_kv_indoubt_find(kv, 5014, &x), DTX_ENOENT);
	assert_int_equal(stor_kv_indoubt_find(kv, 5021, &x), DTX_OK);
	assert_int_equal(x.txid, 5021);
	assert_int_equal(x.state, STOR_TX_PRECOMMITTED);
	assert_int_equal(x.meta.prepare_ts, T(103));
	assert_int_equal(x.nwrites, 1);
	st_kv_done(kv, dir);
}

static void
test_checkpoint_bounds_replay(void **state)
{
	(void)state;
	char dir[256];
	stor_kv_opts o;
	stor_kv_opts_init(&o);
	o.wal.segment_bytes = 8192;
	stor_kv *kv = st_kv_fresh(dir, sizeof(dir), "kvckpt", &o);
	st_put_keys(kv, 0, 500, 50);
	assert_int_equal(prepare(kv, 77, "held", 1, T(700)), 0);
	assert_int_equal(stor_kv_checkpoint(kv), 0);
	st_put_keys(kv, 500, 510, 50);
	stor_kv_close(kv);
	kv = st_kv_open(dir, &o);
	stor_kv_stats s;
	stor_kv_stats_get(kv, &s);
	// Only what came after the checkpoint was replayed.
	assert_int_equal(s.wal.replayed, 10);
	assert_int_equal(s.indoubt, 1);
	assert_int_equal(st_must_get(kv, "key9", T(10000)), 509);
	assert_int_equal(st_must_get(kv, "key9", T(100 + 459)), 459);
	assert_int_equal(stor_kv_commit(kv, 77, T(800)), 0);
	assert_int_equal(stor_kv_checkpoint(kv), 0);
	stor_kv_stats_get(kv, &s);
	assert_true(s.wal.segments <= 2);
	stor_kv_close(kv);
	kv = st_kv_open(dir, &o);
	assert_int_equal(st_must_get(kv, "held", T(800)), 1);
	st_kv_done(kv, dir);
}

// A saga action: run once, refuse after its compensation (no hanging).
static dtx_err
saga_action(stor_kv *kv, const char *gid, int64_t amount, clk_ts ts)
{
	stor_txn *t;
	dtx_err err = stor_txn_begin(kv, CLK_TS_MAX, &t);
	if (err != DTX_OK)
		return err;
	bool done, comp;
	assert_int_equal(
	    stor_txn_barrier_get(t, gid, 1, STOR_BARRIER_ACTION, &done), 0);
	assert_int_equal(
	    stor_txn_barrier_get(t, gid, 1, STOR_BARRIER_COMPENSATE, &comp), 0);
	if (done || comp) {
		stor_txn_abort(t);
		return done ? DTX_EEXIST : DTX_EPERM;
	}
	int64_t v = 0;
	(void)stor_txn_get_i64(t, "bal", 3, &v, NULL);
	assert_int_equal(stor_txn_put_i64(t, "bal", 3, v + amount), 0);
	assert_int_equal(
	    stor_txn_barrier_put(t, gid, 1, STOR_BARRIER_ACTION), 0);
	return stor_txn_commit(t, ts);
}

static void
test_barriers(void **state)
{
	(void)state;
	char dir[256];
	stor_kv *kv = st_kv_fresh(dir, sizeof(dir), "kvbar", NULL);
	assert_int_equal(saga_action(kv, "g1", 10, T(10)), DTX_OK);
	assert_int_equal(saga_action(kv, "g1", 10, T(11)), DTX_EEXIST);
	assert_int_equal(st_must_get(kv, "bal", T(20)), 10);
	// Null compensation for g2 (its action never ran), then the late
	// action is refused.
	stor_txn *t;
	bool ex;
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), 0);
	assert_int_equal(
	    stor_txn_barrier_get(t, "g2", 1, STOR_BARRIER_ACTION, &ex), 0);
	assert_false(ex);
	assert_int_equal(
	    stor_txn_barrier_put(t, "g2", 1, STOR_BARRIER_COMPENSATE), 0);
	assert_int_equal(stor_txn_commit(t, T(12)), 0);
	assert_int_equal(saga_action(kv, "g2", 5, T(13)), DTX_EPERM);
	assert_int_equal(st_must_get(kv, "bal", T(20)), 10);
	// Two racing duplicates: both see no barrier, only one commits.
	stor_txn *a, *b;
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &a), 0);
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &b), 0);
	assert_int_equal(
	    stor_txn_barrier_get(a, "g3", 1, STOR_BARRIER_ACTION, &ex), 0);
	assert_false(ex);
	assert_int_equal(
	    stor_txn_barrier_get(b, "g3", 1, STOR_BARRIER_ACTION, &ex), 0);
	assert_false(ex);
	assert_int_equal(stor_txn_put_i64(a, "other", 5, 1), 0);
	assert_int_equal(stor_txn_put_i64(b, "other2", 6, 1), 0);
	assert_int_equal(
	    stor_txn_barrier_put(a, "g3", 1, STOR_BARRIER_ACTION), 0);
	assert_int_equal(
	    stor_txn_barrier_put(b, "g3", 1, STOR_BARRIER_ACTION), 0);
	assert_int_equal(stor_txn_commit(a, T(14)), DTX_OK);
	assert_int_equal(stor_txn_commit(b, T(15)), DTX_ECONFLICT);
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), 0);
	assert_int_equal(
	    stor_txn_barrier_put(t, "g3", 1, STOR_BARRIER_ACTION), DTX_EEXIST);
	assert_int_equal(
	    stor_txn_barrier_put(t, "", 1, STOR_BARRIER_ACTION), DTX_EINVAL);
	stor_txn_abort(t);
	stor_kv_close(kv);
	// Barriers survive a restart, and GC by gid and by age is logged.
	kv = st_kv_open(dir, NULL);
	assert_int_equal(saga_action(kv, "g1", 10, T(30)), DTX_EEXIST);
	size_t n;
	assert_int_equal(stor_kv_barrier_gc(kv, "g1", 0, &n), 0);
	assert_int_equal(n, 1);
	stor_kv_stats s;
	stor_kv_stats_get(kv, &s);
	assert_int_equal(s.barriers, 2);
	stor_kv_close(kv);
	kv = st_kv_open(dir, NULL);
	stor_kv_stats_get(kv, &s);
	assert_int_equal(s.barriers, 2);
	assert_int_equal(stor_kv_barrier_gc(kv, NULL, 3600000, &n), 0);
	assert_int_equal(n, 0);
	dtx_sleep_ms(2);
	assert_int_equal(stor_kv_barrier_gc(kv, NULL, 0, &n), 0);
	assert_int_equal(n, 2);
	st_kv_done(kv, dir);
}

// Regression: forgetting one saga's barriers used to scan the whole
// barrier table (twice per barrier removed), so SAGA_FORGET batches
// slowed down with the table's size. Barriers are now chained by gid; this
// checks that the chains stay right while barriers of many sagas come and
// go in any order, across a restart, and that collection by age runs at
// most once per period.
static void
test_barrier_index(void **state)
{
	(void)state;
	char dir[256];
	stor_kv *kv = st_kv_fresh(dir, sizeof(dir), "kvbarix", NULL);
	enum { G = 300 };
	char gid[32];
	for (int g = 0; g < G; g++) {
		stor_txn *t;
		snprintf(gid, sizeof(gid), "saga-%d", g);
		assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), 0);
		for (int br = 0; br < 1 + g % 3; br++) {
			assert_int_equal(stor_txn_barrier_put(
			                     t, gid, br, STOR_BARRIER_ACTION),
			    0);
			if (g % 2 == 0)
				assert_int_equal(
				    stor_txn_barrier_put(
				        t, gid, -1 - br, STOR_BARRIER_ACTION),
				    0);
		}
		assert_int_equal(stor_txn_commit(t, T(100 + g)), 0);
	}
	size_t want = 0;
	for (int g = 0; g < G; g++)
		want += (size_t)(1 + g % 3) * (g % 2 == 0 ? 2 : 1);
	stor_kv_stats s;
	stor_kv_stats_get(kv, &s);
	assert_int_equal(s.barriers, want);
	// Forget every third saga, from the end, so that removals move
	// barriers of other sagas around in the table.
	for (int g = G - 1; g >= 0; g -= 3) {
		size_t n = 0;
		snprintf(gid, sizeof(gid), "saga-%d", g);
		assert_int_equal(stor_kv_barrier_gc(kv, gid, 0, &n), 0);
		assert_int_equal(n, (size_t)(1 + g % 3) * (g % 2 == 0 ? 2 : 1));
		want -= n;
		assert_int_equal(stor_kv_barrier_gc(kv, gid, 0, &n), 0);
		assert_int_equal(n, 0);
	}
	for (int pass = 0; pass < 2; pass++) {
		stor_kv_stats_get(kv, &s);
		assert_int_equal(s.barriers, want);
		for (int g = 0; g < G; g++) {
			stor_txn *t;
			bool ex;
			snprintf(gid, sizeof(gid), "saga-%d", g);
			assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), 0);
			assert_int_equal(stor_txn_barrier_get(t, gid, g % 3,
			                     STOR_BARRIER_ACTION, &ex),
			    0);
			assert_int_equal(ex, (G - 1 - g) % 3 != 0);
			assert_int_equal(stor_txn_barrier_get(t, gid, 0,
			                     STOR_BARRIER_COMPENSATE, &ex),
			    0);
			assert_false(ex);
			stor_txn_abort(t);
		}
		// The same after a restart (replay of the barrier records).
		stor_kv_close(kv);
		kv = st_kv_open(dir, NULL);
	}
	// By age, at most once per period: the first call collects.
	size_t n = 0;
	dtx_sleep_ms(2);
	assert_int_equal(stor_kv_barrier_gc_every(kv, 0, 3600000, &n), 0);
	assert_int_equal(n, want);
	assert_int_equal(stor_kv_barrier_gc_every(kv, 0, 3600000, &n), 0);
	assert_int_equal(n, 0);
	stor_kv_stats_get(kv, &s);
	assert_int_equal(s.barriers, 0);
	st_kv_done(kv, dir);
}

// stor_txn_commit_async: the commit is an intent (reads at or above its
// timestamp wait) until stor_kv_sync says it is durable; then it is a
// version, and it survives a restart.
static void
test_commit_async(void **state)
{
	(void)state;
	char dir[256];
	stor_kv *kv = st_kv_fresh(dir, sizeof(dir), "kvasync", NULL);
	stor_txn *t;
	uint64_t lsn = 0;
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), 0);
	assert_int_equal(stor_txn_put_i64(t, "a", 1, 7), 0);
	assert_int_equal(
	    stor_txn_barrier_put(t, "ga", 1, STOR_BARRIER_ACTION), 0);
	assert_int_equal(stor_txn_commit_async(t, T(10), &lsn), 0);
	assert_true(lsn > 0);
	int64_t v;
	stor_blocker blk;
	dtx_err err = stor_kv_get_i64(kv, "a", 1, T(20), &v, NULL, &blk);
	// Either still an intent (a local commit: txid 0) or already
	// durable through the flusher.
	if (err == DTX_EAGAIN)
		assert_int_equal(blk.txid, 0);
	else
		assert_int_equal(err, DTX_OK);
	// Below its timestamp the key does not exist yet.
	assert_int_equal(get(kv, "a", T(9), &v), DTX_ENOENT);
	assert_int_equal(stor_kv_sync(kv, lsn), 0);
	assert_int_equal(st_must_get(kv, "a", T(20)), 7);
	// A transaction without writes has nothing to wait for.
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), 0);
	lsn = 1;
	assert_int_equal(stor_txn_commit_async(t, T(11), &lsn), 0);
	assert_int_equal(lsn, 0);
	assert_int_equal(stor_kv_sync(kv, lsn), 0);
	// A conflict is reported at once and ends the transaction.
	stor_txn *a, *b;
	assert_int_equal(stor_txn_begin(kv, T(20), &a), 0);
	assert_int_equal(stor_txn_begin(kv, T(20), &b), 0);
	assert_int_equal(stor_txn_put_i64(a, "a", 1, 8), 0);
	assert_int_equal(stor_txn_put_i64(b, "a", 1, 9), 0);
	assert_int_equal(stor_txn_commit_async(a, T(21), &lsn), 0);
	assert_int_equal(stor_txn_commit_async(b, T(22), NULL), DTX_ECONFLICT);
	assert_int_equal(stor_kv_sync(kv, lsn), 0);
	stor_kv_close(kv);
	kv = st_kv_open(dir, NULL);
	assert_int_equal(st_must_get(kv, "a", T(30)), 8);
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), 0);
	bool ex;
	assert_int_equal(
	    stor_txn_barrier_get(t, "ga", 1, STOR_BARRIER_ACTION, &ex), 0);
	assert_true(ex);
	stor_txn_abort(t);
	st_kv_done(kv, dir);
}

static void
test_fsync_failure(void **state)
{
	(void)state;
	char dir[256];
	st_sync_hook h;
	stor_kv_opts o;
	stor_kv_opts_init(&o);
	st_hook_syncs(&o.wal, &h);
	stor_kv *kv = st_kv_fresh(dir, sizeof(dir), "kvfsync", &o);
	st_put_local(kv, "a", 1, T(10));
	st_fail_next_sync(&h);
	stor_txn *t;
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), 0);
	assert_int_equal(stor_txn_put_i64(t, "a", 1, 2), 0);
	assert_int_equal(stor_txn_commit(t, T(20)), DTX_EIO);
	assert_int_equal(stor_kv_status(kv), DTX_EFAILED);
	assert_int_equal(prepare(kv, 5, "b", 1, T(30)), DTX_EFAILED);
	assert_int_equal(stor_kv_checkpoint(kv), DTX_EFAILED);
	// The unacknowledged write never became visible.
	assert_int_equal(get(kv, "a", T(25), &(int64_t) { 0 }), DTX_EAGAIN);
	// One sync failed, and none was tried after it.
	assert_int_equal(h.syncs, h.fail_at);
	assert_int_equal(h.after_fail, 0);
	st_kv_done(kv, dir);
}

typedef struct par {
	stor_kv *kv;
	int id;
	int n;
} par;

static void *
prep_worker(void *p)
{
	par *a = p;
	for (int i = 0; i < a->n; i++) {
		char key[32];
		snprintf(key, sizeof(key), "w%d-%d", a->id, i);
		stor_txn *t;
		if (stor_txn_begin(a->kv, CLK_TS_MAX, &t) != DTX_OK)
			return (void *)1;
		stor_txn_put_i64(t, key, strlen(key), i);
		stor_prep_meta m = meta(T(1000));
		uint64_t txid = (uint64_t)a->id * 1000 + (uint64_t)i + 1;
		if (stor_txn_prepare(t, txid, &m) != DTX_OK ||
		    stor_kv_commit(a->kv, txid, T(1001)) != DTX_OK)
			return (void *)1;
	}
	return NULL;
}

static void
test_group_commit_prepares(void **state)
{
	(void)state;
	char dir[256];
	stor_kv *kv = st_kv_fresh(dir, sizeof(dir), "kvgc64", NULL);
	enum { W = 64, N = 20 };
	par a[W];
	for (int i = 0; i < W; i++)
		a[i] = (par) { .kv = kv, .id = i, .n = N };
	assert_true(st_run_threads(W, prep_worker, a, sizeof(a[0])));
	stor_kv_stats s;
	stor_kv_stats_get(kv, &s);
	print_message("%d prepares + commits, %llu fsyncs\n", W * N * 2,
	    (unsigned long long)s.wal.syncs);
	assert_true(s.wal.syncs < (uint64_t)W * N / 4);
	assert_int_equal(s.intents, 0);
	assert_int_equal(st_must_get(kv, "w63-19", T(1001)), 19);
	st_kv_done(kv, dir);
}

// Runs one phase with the n-th allocation failing, for every n.
static void
kv_oom_loop(const char *dir, int phase)
{
	int n = 0;
	for (;; n++) {
		stor_kv *kv = NULL;
		dtx_err err;
		if (phase == 0) {
			dtx_alloc_fail_after(n);
			err = stor_kv_open(dir, NULL, &kv);
			dtx_alloc_fail_after(-1);
		} else {
			assert_int_equal(stor_kv_open(dir, NULL, &kv), 0);
			stor_txn *t = NULL;
			dtx_alloc_fail_after(n);
			err = stor_txn_begin(kv, CLK_TS_MAX, &t);
			if (err == DTX_OK && phase != 3)
				err = stor_txn_put_i64(t, "oom", 3, n);
			if (err == DTX_OK && phase == 1) {
				err = stor_txn_commit(t, T(5000 + (uint64_t)n));
				t = NULL;
			} else if (err == DTX_OK && phase == 2) {
				stor_prep_meta m = meta(T(6000));
				err = stor_txn_prepare(
				    t, 90000 + (uint64_t)n, &m);
				t = NULL;
				if (err == DTX_OK)
					err = stor_kv_abort(
					    kv, 90000 + (uint64_t)n);
			} else if (err == DTX_OK && phase == 3) {
				err = stor_kv_checkpoint(kv);
			}
			stor_txn_abort(t);
			dtx_alloc_fail_after(-1);
		}
		bool failed = dtx_alloc_failed();
		if (err != DTX_OK)
			assert_int_equal(err, DTX_ENOMEM);
		if (kv != NULL && phase == 2) {
			// Finish what the failed step left prepared.
			assert_int_equal(
			    stor_kv_abort(kv, 90000 + (uint64_t)n), DTX_OK);
		}
		if (kv != NULL) {
			// Whatever failed, the store still reads correctly.
			assert_int_equal(st_must_get(kv, "acct1", T(4000)), 70);
			stor_kv_close(kv);
		}
		if (err == DTX_OK && !failed)
			break;
	}
	print_message("kv oom phase %d: %d allocation points\n", phase, n);
}

static void
test_oom(void **state)
{
	(void)state;
	char dir[256];
	stor_kv *kv = st_kv_fresh(dir, sizeof(dir), "kvoom", NULL);
	st_put_local(kv, "acct1", 100, T(10));
	assert_int_equal(prepare(kv, 1, "acct1", 70, T(20)), 0);
	assert_int_equal(stor_kv_commit(kv, 1, T(30)), 0);
	assert_int_equal(prepare(kv, 2, "held", 1, T(40)), 0);
	stor_txn *t;
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), 0);
	assert_int_equal(
	    stor_txn_barrier_put(t, "gid", 1, STOR_BARRIER_ACTION), 0);
	assert_int_equal(stor_txn_put_i64(t, "x", 1, 1), 0);
	assert_int_equal(stor_txn_commit(t, T(50)), 0);
	assert_int_equal(stor_kv_checkpoint(kv), 0);
	st_put_local(kv, "after", 1, T(60));
	assert_int_equal(prepare(kv, 3, "held3", 1, T(70)), 0);
	stor_kv_close(kv);
	kv_oom_loop(dir, 0); // open: checkpoint, replay, prepared reload
	kv_oom_loop(dir, 1); // local commit
	kv_oom_loop(dir, 2); // prepare + abort
	kv_oom_loop(dir, 3); // checkpoint
	kv_oom_loop(dir, 0); // open from the new checkpoint
	(void)dtx_rmtree(dir);
}

static void
test_bad_args(void **state)
{
	(void)state;
	char dir[256];
	stor_kv *kv = st_kv_fresh(dir, sizeof(dir), "kvargs", NULL);
	stor_txn *t;
	assert_int_equal(stor_txn_begin(kv, 0, &t), DTX_EINVAL);
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), 0);
	static char big[STOR_KEY_MAX + 1];
	assert_int_equal(stor_txn_put(t, big, sizeof(big), "v", 1), DTX_EINVAL);
	stor_prep_meta m = meta(0);
	assert_int_equal(stor_txn_prepare(t, 1, &m), DTX_EINVAL);
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), 0);
	assert_int_equal(stor_txn_put(t, "k", 1, "v", 1), 0);
	assert_int_equal(stor_txn_commit(t, 0), DTX_EINVAL);
	void *v;
	size_t n;
	assert_int_equal(
	    stor_kv_get(kv, "k", 1, CLK_TS_MAX, &v, &n, NULL, NULL),
	    DTX_ENOENT);
	assert_int_equal(stor_kv_commit(kv, 0, T(1)), DTX_EINVAL);
	assert_int_equal(stor_kv_open(NULL, NULL, &kv), DTX_EINVAL);
	stor_kv_close(kv);
	stor_kv_close(NULL);
	// A store whose log holds a record it cannot decode refuses to
	// open.
	stor_wal *w = st_wal_open(dir, NULL);
	assert_int_equal(stor_wal_append(w, 4, "\1\2\3", 3, true, NULL), 0);
	stor_wal_close(w);
	assert_int_equal(stor_kv_open(dir, NULL, &kv), DTX_ECORRUPT);
	(void)dtx_rmtree(dir);
}

int
main(void)
{
	dtx_log_init("test", DTX_LOG_OFF);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_visibility),
		cmocka_unit_test(test_intents),
		cmocka_unit_test(test_first_committer_wins),
		cmocka_unit_test(test_gc),
		cmocka_unit_test(test_prepared_survive_restart),
		cmocka_unit_test(test_indoubt_find),
		cmocka_unit_test(test_checkpoint_bounds_replay),
		cmocka_unit_test(test_barriers),
		cmocka_unit_test(test_barrier_index),
		cmocka_unit_test(test_commit_async),
		cmocka_unit_test(test_fsync_failure),
		cmocka_unit_test(test_group_commit_prepares),
		cmocka_unit_test(test_oom),
		cmocka_unit_test(test_bad_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
