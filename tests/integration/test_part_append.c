// SPDX-License-Identifier: MIT
//
// The APPEND op at a real dtx-participant: a list grows one element per
// committed APPEND in order, several APPENDs of one transaction to one key
// land in op order, a snapshot read returns the list as of its timestamp,
// an aborted APPEND leaves nothing, a balance refuses an APPEND and a list
// refuses an ADD, a full list refuses with its key named, and lists and
// balances survive a restart (SIGKILL) of the participant.

#include <signal.h>
#include <stdbool.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_part_harness.h"

#define P1 1u

static int
setup(void **state)
{
	char *env[] = { "DTX_READ_WAIT_MS=300", NULL };
	return h_setup(state, 1, 1, env);
}

static proto_op
op_append(const char *key, int64_t elem)
{
	proto_op o = { .kind = PROTO_OP_APPEND,
		.key = { (uint8_t *)(uintptr_t)key, (uint32_t)strlen(key) },
		.delta = elem };
	return o;
}

// Reads key at T and checks that it is the list want[0..n) (n 0: not
// found).
static void
expect_list(
    harness *h, clk_ts T, const char *key, const int64_t *want, size_t n)
{
	proto_msg rep;
	assert_int_equal(h_read(h, P1, T, key, &rep), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_READ_REPLY);
	assert_int_equal(rep.u.read_reply.status, PROTO_READ_OK);
	assert_int_equal(rep.u.read_reply.n_entries, 1);
	const proto_entry *e = &rep.u.read_reply.entries[0];
	if (n == 0) {
		assert_false(e->found);
		proto_msg_free(&rep);
		return;
	}
	assert_true(e->found);
	assert_true(e->is_bytes);
	assert_int_equal(e->bval.n, PROTO_LIST_HDR + 8 * n);
	assert_memory_equal(e->bval.p, PROTO_LIST_MAGIC, PROTO_LIST_HDR);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(
		    (int64_t)dtx_get_le64(e->bval.p + PROTO_LIST_HDR + 8 * i),
		    want[i]);
	proto_msg_free(&rep);
}

// Prepares ops as txid and commits at the prepare ts; returns it.
static clk_ts
commit_ops(harness *h, uint64_t txid, proto_op *ops, uint32_t n)
{
	clk_ts pts =
	    h_prepare_yes(h, P1, txid, PROTO_MODE_2PC, NULL, 0, ops, n);
	assert_true(pts != 0);
	assert_int_equal(
	    h_txid(h, P1, PROTO_COMMIT, txid, pts, NULL), PROTO_ACK);
	return pts;
}

static void
test_append_order_and_snapshots(void **state)
{
	harness *h = *state;
	proto_op op = op_append("l:1", 7);
	clk_ts c1 = commit_ops(h, 1, &op, 1);
	proto_op two[2] = { op_append("l:1", -3), op_append("l:1", 9) };
	clk_ts c2 = commit_ops(h, 2, two, 2);
	assert_true(c2 > c1);

	int64_t all[] = { 7, -3, 9 };
	expect_list(h, c1 - 1, "l:1", NULL, 0);
	expect_list(h, c1, "l:1", all, 1);
	expect_list(h, c2 - 1, "l:1", all, 1);
	expect_list(h, c2, "l:1", all, 3);

	// An aborted APPEND leaves the list as it was.
	op = op_append("l:1", 100);
	assert_true(
	    h_prepare_yes(h, P1, 3, PROTO_MODE_2PC, NULL, 0, &op, 1) != 0);
	assert_int_equal(h_txid(h, P1, PROTO_ABORT, 3, 0, NULL), PROTO_ACK);
	expect_list(h, 0, "l:1", all, 3);

	// Survives a SIGKILL and restart (replayed from the WAL).
	assert_true(h_put(h, P1, 4, "acct:1", 50));
	assert_int_equal(hx_cluster_signal(h->c, P1, SIGKILL), DTX_OK);
	assert_int_equal(h_start(h, P1, NULL), DTX_OK);
	expect_list(h, 0, "l:1", all, 3);
	h_expect(h, P1, 0, "acct:1", 50);
}

static void
test_append_refusals(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 1, "acct:1", 50));
	proto_op op = op_append("acct:1", 1);
	h_vote_no(h, P1, 2, &op, 1, "not a list: acct:1");
	h_expect(h, P1, 0, "acct:1", 50);

	op = op_append("l:2", 1);
	commit_ops(h, 3, &op, 1);
	proto_op add = op_add("l:2", 1, 0);
	h_vote_no(h, P1, 4, &add, 1, "not an integer");

	// Fill the list to PART_MAX_LIST (4096) in transactions of 64.
	uint64_t txid = 10;
	size_t have = 1;
	proto_op ops[PROTO_MAX_OPS];
	while (have < 4096) {
		uint32_t n = 0;
		while (n < PROTO_MAX_OPS && have + n < 4096) {
			ops[n] = op_append("l:2", (int64_t)(have + n));
			n++;
		}
		commit_ops(h, txid++, ops, n);
		have += n;
	}
	op = op_append("l:2", -1);
	h_vote_no(h, P1, txid, &op, 1, "list full: l:2 holds 4096 elements");
	// The list is unchanged and still readable in one READ.
	proto_msg rep;
	assert_int_equal(h_read(h, P1, 0, "l:2", &rep), DTX_OK);
	assert_int_equal(
	    rep.u.read_reply.entries[0].bval.n, PROTO_LIST_HDR + 8 * 4096);
	proto_msg_free(&rep);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_append_order_and_snapshots, setup, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_append_refusals, setup, h_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
