// SPDX-License-Identifier: MIT
//
// DESIGN rule 19 at the store level, where the WAL tests leave a mutation
// alive: a checkpoint of the MVCC store keeps every WAL segment from the
// oldest in-doubt PREPARED record on, and lets them go once that
// transaction has an outcome.

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

static uint64_t
segments(stor_kv *kv)
{
	stor_kv_stats s;
	stor_kv_stats_get(kv, &s);
	return s.wal.segments;
}

static void
test_checkpoint_keeps_indoubt_segments(void **state)
{
	(void)state;
	char dir[256];
	stor_kv_opts o;
	stor_kv_opts_init(&o);
	o.wal.segment_bytes = 4096;
	stor_kv *kv = st_kv_fresh(dir, sizeof(dir), "rules19", &o);
	st_put_local(kv, "early", 1, T(10));
	// The in-doubt PREPARED record sits in an early segment.
	stor_txn *t;
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), DTX_OK);
	assert_int_equal(stor_txn_put_i64(t, "held", 4, 1), DTX_OK);
	stor_prep_meta m = { .coordinator = 9,
		.mode = STOR_MODE_2PC,
		.prepare_ts = T(20),
		.npeers = 1,
		.peers = { 1 } };
	assert_int_equal(stor_txn_prepare(t, 77, &m), DTX_OK);
	st_put_keys(kv, 0, 400, 40);
	uint64_t before = segments(kv);
	assert_true(before > 4);

	// The checkpoint covers everything, but the PREPARED record is
	// still in doubt: every segment from its one on stays.
	assert_int_equal(stor_kv_checkpoint(kv), DTX_OK);
	uint64_t held = segments(kv);
	print_message("segments: %llu before, %llu while in doubt\n",
	    (unsigned long long)before, (unsigned long long)held);
	assert_true(held + 1 >= before);
	stor_kv_close(kv);
	kv = st_kv_open(dir, &o);
	assert_true(segments(kv) + 1 >= before);
	stor_indoubt *list;
	size_t n;
	assert_int_equal(stor_kv_indoubt(kv, &list, &n), DTX_OK);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].txid, 77);
	dtx_free(list);

	// Decided: the next checkpoint may truncate up to itself.
	assert_int_equal(stor_kv_commit(kv, 77, T(1000)), DTX_OK);
	assert_int_equal(stor_kv_checkpoint(kv), DTX_OK);
	uint64_t after = segments(kv);
	print_message(
	    "segments: %llu after the outcome\n", (unsigned long long)after);
	assert_true(after <= 2);
	stor_kv_close(kv);
	kv = st_kv_open(dir, &o);
	assert_int_equal(st_must_get(kv, "held", T(1000)), 1);
	assert_int_equal(st_must_get(kv, "key9", T(10000)), 369);
	st_kv_done(kv, dir);
}

int
main(void)
{
	dtx_log_init("test", DTX_LOG_OFF);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checkpoint_keeps_indoubt_segments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
