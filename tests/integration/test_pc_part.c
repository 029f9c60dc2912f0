// SPDX-License-Identifier: MIT
//
// Parallel commit (pc) at the participants, with real dtx-participant
// processes and the harness as the coordinator that PREPAREs and then
// vanishes (it never sends a decision): rules 25 and 26. Every
// participant resolves its in-doubt pc transaction by asking its peers:
// all YES -> committed at the largest prepare ts, the same at each, and
// a read below that ts does not see it; a peer that never prepared is
// fenced (its abort recorded before it answers) so a late PREPARE is
// refused; a peer that cannot be reached keeps the others in doubt; a
// repeated PREPARE is the same vote, not a second one.

#include <signal.h>
#include <stdbool.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_part_harness.h"

#define NP 3u

static const uint32_t peers[NP] = { 1, 2, 3 };

static int
setup3(void **state)
{
	return h_setup(state, NP, NP, NULL);
}

// "pc:<txid>:<id>": a key of its own per transaction and participant.
static void
pkey(char *buf, size_t n, uint64_t txid, uint32_t id)
{
	snprintf(buf, n, "pc:%llu:%u", (unsigned long long)txid, id);
}

// An ADD of 1 to key (which must exist), for a pc PREPARE.
static proto_op
add1(const char *key)
{
	return (proto_op) { .kind = PROTO_OP_ADD,
		.key = { (uint8_t *)(uintptr_t)key, (uint32_t)strlen(key) },
		.delta = 1,
		.min = 0 };
}

// PREPAREs txid in pc mode at participant id naming all three; returns
// the prepare ts of its YES (fails the test on anything else).
static clk_ts
pc_prepare(harness *h, uint32_t id, uint64_t txid, const char *key)
{
	proto_op op = add1(key);
	clk_ts pts =
	    h_prepare_yes(h, id, txid, PROTO_MODE_PC, peers, NP, &op, 1);
	assert_true(pts != 0);
	return pts;
}

// STATUS of txid at id with the pc prepare ts it reports.
static int
status_pts(harness *h, uint32_t id, uint64_t txid, clk_ts *pts)
{
	proto_msg rep;
	proto_msg_init(&rep, PROTO_NONE);
	int st = 100;
	if (h_txid(h, id, PROTO_STATUS, txid, 0, &rep) == PROTO_STATUS_REPLY) {
		st = (int)rep.u.status_reply.state;
		*pts = rep.u.status_reply.prepare_ts;
	}
	proto_msg_free(&rep);
	return st;
}

// Each participant gets its key at 10 (committed by a 2PC PUT).
static void
seed_keys(harness *h, uint64_t txid, char keys[NP][48])
{
	for (uint32_t i = 0; i < NP; i++) {
		pkey(keys[i], sizeof(keys[i]), txid, peers[i]);
		assert_true(
		    h_put(h, peers[i], txid * 10 + 1000000 + i, keys[i], 10));
	}
}

// Every participant votes YES on txid (pc_prepare): pts[i] gets
// peers[i]'s prepare ts; returns the largest.
static clk_ts
pc_prepare_all(harness *h, uint64_t txid, char keys[NP][48], clk_ts *pts)
{
	clk_ts max = 0;
	for (uint32_t i = 0; i < NP; i++) {
		pts[i] = pc_prepare(h, peers[i], txid, keys[i]);
		if (pts[i] > max)
			max = pts[i];
	}
	return max;
}

// Asserts that every participant reaches state st for txid within ms.
static void
await_all(harness *h, uint64_t txid, int st, uint64_t ms)
{
	for (uint32_t i = 0; i < NP; i++)
		assert_true(h_await_status(h, peers[i], txid, st, ms));
}

// Rule 25: every YES -> committed at the largest prepare ts, derived
// alike by each participant on its own (no COMMIT is ever sent), and a
// read below that ts at a participant whose own prepare ts is lower does
// not see the write.
static void
test_pc_derived_ts(void **state)
{
	harness *h = *state;
	uint64_t txid = 7001;
	char keys[NP][48];
	seed_keys(h, txid, keys);
	clk_ts pts[NP];
	clk_ts max = pc_prepare_all(h, txid, keys, pts);
	// A PREPARED pc participant reports its durable prepare ts.
	clk_ts got = 0;
	int st = status_pts(h, peers[0], txid, &got);
	if (st == PROTO_TS_PREPARED)
		assert_true(got == pts[0]);
	await_all(h, txid, PROTO_TS_COMMITTED, 10000);
	for (uint32_t i = 0; i < NP; i++) {
		h_expect_committed(h, peers[i], txid, max);
		h_expect(h, peers[i], 0, keys[i], 11);
		h_expect(h, peers[i], max, keys[i], 11);
		h_expect(h, peers[i], max - 1, keys[i], 10);
	}
	assert_true(h_health_counter(h, 1, "resolved_by_peers") >= 1);
}

// Rule 26: a peer that never prepared is asked, records the abort fence
// and answers NEVER_VOTED: every participant aborts, and the PREPARE
// that arrives there afterwards is refused.
static void
test_pc_fence_before_late_prepare(void **state)
{
	harness *h = *state;
	uint64_t txid = 7002;
	char keys[NP][48];
	seed_keys(h, txid, keys);
	(void)pc_prepare(h, 1, txid, keys[0]);
	(void)pc_prepare(h, 2, txid, keys[1]);
	assert_true(h_await_status(h, 1, txid, PROTO_TS_ABORTED, 10000));
	assert_true(h_await_status(h, 2, txid, PROTO_TS_ABORTED, 10000));
	assert_int_equal(h_status(h, 3, txid, NULL), PROTO_TS_ABORTED);
	// The late PREPARE: refused, the fence holds.
	proto_op op = add1(keys[2]);
	proto_msg rep;
	assert_int_equal(
	    h_prepare(h, 3, txid, PROTO_MODE_PC, peers, NP, &op, 1, &rep),
	    DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_VOTE);
	assert_false(rep.u.vote.yes);
	proto_msg_free(&rep);
	assert_int_equal(h_status(h, 3, txid, NULL), PROTO_TS_ABORTED);
	for (uint32_t i = 0; i < NP; i++)
		h_expect(h, peers[i], 0, keys[i], 10);
}

// Asked about many transactions it never saw (as when the coordinator's
// batches to it were refused and its peers resolve every transfer), a
// participant fences each one, counts each, and logs about one line a
// second for the asker, not one per transaction.
static void
test_pc_never_voted_not_flooding(void **state)
{
	harness *h = *state;
	const int n = 200;
	int64_t c0 = h_health_counter(h, 3, "status_never_voted");
	int l0 = h_log_count(h, 3, "msg=NEVER_VOTED");
	uint64_t t0 = dtx_mono_ns();
	for (int i = 0; i < n; i++)
		assert_int_equal(h_status(h, 3, 9100000 + (uint64_t)i, NULL),
		    PROTO_TS_NEVER_VOTED);
	uint64_t secs = (dtx_mono_ns() - t0) / 1000000000u;
	assert_int_equal(h_health_counter(h, 3, "status_never_voted") - c0, n);
	int lines = h_log_count(h, 3, "msg=NEVER_VOTED") - l0;
	assert_true(lines >= 1);
	assert_true(lines <= (int)secs + 2);
}

// Rule 26: a peer that cannot be reached keeps the transaction in doubt
// (its vote could be either); once it is back it is fenced, and the
// others abort.
static void
test_pc_unreachable_keeps_doubt(void **state)
{
	harness *h = *state;
	uint64_t txid = 7003;
	char keys[NP][48];
	seed_keys(h, txid, keys);
	assert_int_equal(hx_cluster_signal(h->c, 3, SIGKILL), DTX_OK);
	// (reaped by hx_cluster_signal)
	(void)pc_prepare(h, 1, txid, keys[0]);
	(void)pc_prepare(h, 2, txid, keys[1]);
	dtx_sleep_ms(2000); // several resolver rounds (300 ms in doubt)
	assert_int_equal(h_status(h, 1, txid, NULL), PROTO_TS_PREPARED);
	assert_int_equal(h_status(h, 2, txid, NULL), PROTO_TS_PREPARED);
	assert_int_equal(h_start(h, 3, NULL), DTX_OK);
	assert_true(h_await_status(h, 1, txid, PROTO_TS_ABORTED, 15000));
	assert_true(h_await_status(h, 2, txid, PROTO_TS_ABORTED, 15000));
	h_expect(h, 1, 0, keys[0], 10);
	h_expect(h, 2, 0, keys[1], 10);
}

// A repeated PREPARE is the same vote: the same prepare ts, one record
// (the prepared counter moves once), and the outcome derived from the
// votes is the one a single PREPARE gives.
static void
test_pc_vote_once(void **state)
{
	harness *h = *state;
	uint64_t txid = 7004;
	char keys[NP][48];
	seed_keys(h, txid, keys);
	int64_t before = h_health_counter(h, 2, "prepared");
	clk_ts pts[NP];
	clk_ts max = pc_prepare_all(h, txid, keys, pts);
	assert_true(pc_prepare(h, 2, txid, keys[1]) == pts[1]);
	assert_int_equal(h_health_counter(h, 2, "prepared"), before + 1);
	await_all(h, txid, PROTO_TS_COMMITTED, 10000);
	for (uint32_t i = 0; i < NP; i++) {
		h_expect_committed(h, peers[i], txid, max);
		h_expect(h, peers[i], 0, keys[i], 11);
	}
}

// Rule 25: a pc NO is a decision, so it leaves only once its abort is
// durable. With the next fsync failing, the participant sends no vote at
// all (an ERROR: the coordinator counts nothing and the peers decide). A
// 2PC NO needs no fsync (presumed abort) and would be a VOTE here.
static void
test_pc_no_is_durable(void **state)
{
	harness *h = *state;
	uint64_t txid = 7005;
	char key[48];
	pkey(key, sizeof(key), txid, 1);
	assert_true(h_put(h, 1, txid * 10 + 1000000, key, 10));
	assert_int_equal(h_fault(h, 1, "wal_sync", 1), PROTO_ACK);
	proto_op op = add1(key);
	op.delta = -100; // insufficient funds: NO
	proto_msg rep;
	assert_int_equal(
	    h_prepare(h, 1, txid, PROTO_MODE_PC, peers, NP, &op, 1, &rep),
	    DTX_EREFUSED);
	assert_int_equal(rep.hdr.type, PROTO_ERROR);
	proto_msg_free(&rep);
	// The store stopped taking writes (rule 18): start it afresh.
	assert_int_equal(hx_cluster_signal(h->c, 1, SIGKILL), DTX_OK);
	assert_int_equal(h_start(h, 1, NULL), DTX_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pc_derived_ts),
		cmocka_unit_test(test_pc_fence_before_late_prepare),
		cmocka_unit_test(test_pc_never_voted_not_flooding),
		cmocka_unit_test(test_pc_vote_once),
		cmocka_unit_test(test_pc_unreachable_keeps_doubt),
		cmocka_unit_test(test_pc_no_is_durable),
	};
	return cmocka_run_group_tests(tests, setup3, h_teardown);
}
