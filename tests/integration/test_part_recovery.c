// SPDX-License-Identifier: MIT
//
// dtx-participant under crashes and with its coordinator gone: every crash
// point of the prepare and commit paths followed by a restart (rule 8:
// locks reloaded before serving), presumed abort and commit learned from a
// fake coordinator, cooperative termination through a peer, a participant
// that stays blocked rather than guess (rule 9), and the 3PC termination
// protocol (rule 11).

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_part_harness.h"

#define COORD 0u
#define P1 1u
#define P2 2u

static int
setup1(void **state)
{
	return h_setup(state, 1, 0, NULL);
}

static int
setup2(void **state)
{
	return h_setup(state, 2, 2, NULL);
}

// Starts P1 with DTX_CRASH_AT=point, puts acct:1 = 100 (before arming
// matters only for the prepare points, so the put runs on a clean start).
static void
start_with_crash(harness *h, const char *point)
{
	assert_int_equal(h_start(h, P1, NULL), DTX_OK);
	assert_true(h_put(h, P1, 1, "acct:1", 100));
	assert_int_equal(hx_cluster_signal(h->c, P1, SIGKILL), DTX_OK);
	char env[160];
	snprintf(env, sizeof(env), "DTX_CRASH_AT=%s", point);
	char *envp[] = { env, NULL };
	assert_int_equal(h_start(h, P1, envp), DTX_OK);
}

// Sends req expecting no answer, sees the process die, restarts it.
static void
die_and_restart(harness *h, proto_msg *req)
{
	proto_msg rep;
	proto_retry r = { .attempts = 1 };
	proto_call_opts o = { .timeout_ms = 3000, .retry = &r };
	dtx_err rv = proto_client_call(h_client(h, P1), req, &rep, &o);
	if (rv == DTX_OK || rv == DTX_EREFUSED) {
		proto_msg_free(&rep);
		fail_msg("the crash point answered");
	}
	int st = 0;
	assert_int_equal(hx_cluster_wait_exit(h->c, P1, 10000, &st), DTX_OK);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_int_equal(h_start(h, P1, NULL), DTX_OK);
}

static void
send_prepare(harness *h, uint64_t txid, proto_mode mode, proto_op *op)
{
	proto_msg req;
	proto_msg_init(
	    &req, mode == PROTO_MODE_3PC ? PROTO_CAN_COMMIT : PROTO_PREPARE);
	req.u.prepare = (proto_prepare) {
		.txid = txid, .mode = mode, .n_ops = 1, .ops = op
	};
	die_and_restart(h, &req);
}

static void
test_crash_before_prepare_log(void **state)
{
	harness *h = *state;
	start_with_crash(h, "part.before_prepare_log");
	proto_op op = op_add("acct:1", -10, 0);
	send_prepare(h, 5, PROTO_MODE_2PC, &op);
	// Never logged: never voted, and the key is free.
	int st = h_status(h, P1, 5, NULL);
	assert_true(st == PROTO_TS_NEVER_VOTED || st == PROTO_TS_ABORTED);
	h_commit1(h, P1, 6, &op);
	h_expect(h, P1, 0, "acct:1", 90);
}

static void
test_crash_after_prepare_log(void **state)
{
	harness *h = *state;
	start_with_crash(h, "part.after_prepare_log");
	proto_op op = op_add("acct:1", -10, 0);
	send_prepare(h, 5, PROTO_MODE_2PC, &op);
	// Durable before the vote: reloaded with its lock (rule 8).
	assert_int_equal(h_status(h, P1, 5, NULL), PROTO_TS_PREPARED);
	h_vote_no(h, P1, 6, &op, 1, "conflict: acct:1 locked by tx 5");
	// A duplicate PREPARE gets the same YES; COMMIT applies it.
	h_commit1(h, P1, 5, &op);
	h_expect(h, P1, 0, "acct:1", 90);
}

// Prepares tx 5 (acct:1 -= 10) in mode, then sends the decision type
// (COMMIT or PRE_COMMIT) at a commit ts into the crash point. Returns
// that commit ts.
static clk_ts
decide_into_crash(
    harness *h, const char *point, proto_mode mode, proto_type type)
{
	start_with_crash(h, point);
	proto_op op = op_add("acct:1", -10, 0);
	clk_ts pts = h_prepare_yes(h, P1, 5, mode, NULL, 0, &op, 1);
	assert_true(pts != 0);
	clk_ts cts = ts_plus_ms(pts, 3);
	proto_msg req;
	proto_msg_init(&req, type);
	req.u.txid = (proto_txid) { 5, cts };
	die_and_restart(h, &req);
	return cts;
}

static void
resend_commit_and_check(harness *h, clk_ts cts)
{
	assert_int_equal(h_txid(h, P1, PROTO_COMMIT, 5, cts, NULL), PROTO_ACK);
	h_expect_committed(h, P1, 5, cts);
	int64_t v = 0;
	h_expect(h, P1, 0, "acct:1", 90);
	assert_false(h_get(h, P1, cts - 1, "acct:1", &v) && v == 90);
}

static void
test_crash_before_commit_log(void **state)
{
	harness *h = *state;
	clk_ts cts = decide_into_crash(
	    h, "part.before_commit_log", PROTO_MODE_2PC, PROTO_COMMIT);
	assert_int_equal(h_status(h, P1, 5, NULL), PROTO_TS_PREPARED);
	proto_op op = op_add("acct:1", 1, 0);
	h_vote_no(h, P1, 6, &op, 1, "locked by tx 5");
	resend_commit_and_check(h, cts);
}

static void
test_crash_after_commit_log(void **state)
{
	harness *h = *state;
	clk_ts cts = decide_into_crash(
	    h, "part.after_commit_log", PROTO_MODE_2PC, PROTO_COMMIT);
	h_expect_committed(h, P1, 5, cts);
	resend_commit_and_check(h, cts);
}

// "rpc.after_reply.commit": the ACK reaches the coordinator, then the
// participant dies (no fsync after the ACK left); what it acknowledged is
// there after the restart (rule 7).
static void
test_crash_after_commit_ack(void **state)
{
	harness *h = *state;
	start_with_crash(h, "rpc.after_reply.commit");
	proto_op op = op_add("acct:1", -10, 0);
	clk_ts pts = h_prepare_yes(h, P1, 5, PROTO_MODE_2PC, NULL, 0, &op, 1);
	assert_true(pts != 0);
	clk_ts cts = ts_plus_ms(pts, 3);
	assert_int_equal(h_txid(h, P1, PROTO_COMMIT, 5, cts, NULL), PROTO_ACK);
	int st = 0;
	assert_int_equal(hx_cluster_wait_exit(h->c, P1, 10000, &st), DTX_OK);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_int_equal(h_start(h, P1, NULL), DTX_OK);
	h_expect_committed(h, P1, 5, cts);
	h_expect(h, P1, 0, "acct:1", 90);
}

static void
test_crash_after_precommit_log(void **state)
{
	harness *h = *state;
	clk_ts cts = decide_into_crash(
	    h, "part.after_precommit_log", PROTO_MODE_3PC, PROTO_PRE_COMMIT);
	// Reloaded pre-committed at cts (the termination protocol, alone
	// and with the coordinator gone, may already have committed it).
	clk_ts got = 0;
	int st = h_status(h, P1, 5, &got);
	assert_true(st == PROTO_TS_PRECOMMITTED || st == PROTO_TS_COMMITTED);
	assert_true(got == cts);
	assert_int_equal(h_txid(h, P1, PROTO_DO_COMMIT, 5, 0, NULL), PROTO_ACK);
	h_expect_committed(h, P1, 5, cts);
	h_expect(h, P1, 0, "acct:1", 90);
}

// ---------------------------------------------------------------- a fake
// coordinator

typedef struct fake_coord {
	_Atomic int state; // proto_txn_state to answer
	_Atomic clk_ts cts;
	_Atomic int calls;
	proto_server *srv;
} fake_coord;

static dtx_err
fake_handler(void *arg, const proto_msg *req, proto_msg *rep, proto_call *call)
{
	(void)call;
	fake_coord *f = arg;
	if (req->hdr.type != PROTO_STATUS)
		return DTX_EINVAL;
	atomic_fetch_add(&f->calls, 1);
	rep->hdr.type = PROTO_STATUS_REPLY;
	rep->u.status_reply.txid = req->u.txid.txid;
	rep->u.status_reply.state = (proto_txn_state)atomic_load(&f->state);
	rep->u.status_reply.commit_ts =
	    rep->u.status_reply.state == PROTO_TS_COMMITTED
	    ? atomic_load(&f->cts)
	    : 0;
	return DTX_OK;
}

static void
fake_open(harness *h, fake_coord *f, proto_txn_state st)
{
	atomic_store(&f->state, (int)st);
	atomic_store(&f->calls, 0);
	proto_server_cfg sc = { .url = h_url(h, COORD),
		.workers = 2,
		.vc_nodes = hx_cluster_topo(h->c)->max_id,
		.node_id = COORD,
		.handler = fake_handler,
		.arg = f };
	assert_int_equal(proto_server_open(&sc, &f->srv), DTX_OK);
}

static void
test_presumed_abort_from_coordinator(void **state)
{
	harness *h = *state;
	fake_coord f = { 0 };
	fake_open(h, &f, PROTO_TS_ABORTED);
	assert_int_equal(h_start(h, P1, NULL), DTX_OK);
	assert_true(h_put(h, P1, 1, "acct:1", 100));
	proto_op op = op_add("acct:1", -10, 0);
	h_prepare1(h, P1, 5, &op);
	// No outcome for a while: the participant asks and aborts.
	assert_true(h_await_status(h, P1, 5, PROTO_TS_ABORTED, 10000));
	assert_true(atomic_load(&f.calls) >= 1);
	h_expect(h, P1, 0, "acct:1", 100);
	h_prepare1(h, P1, 6, &op);
	assert_int_equal(h_txid(h, P1, PROTO_ABORT, 6, 0, NULL), PROTO_ACK);
	assert_int_equal(h_health_counter(h, P1, "resolved_by_coordinator"), 1);
	proto_server_close(f.srv);
}

static void
test_commit_learned_from_coordinator(void **state)
{
	harness *h = *state;
	fake_coord f = { 0 };
	// Answers "still deciding" until the test picks the commit ts.
	fake_open(h, &f, PROTO_TS_PREPARED);
	assert_int_equal(h_start(h, P1, NULL), DTX_OK);
	assert_true(h_put(h, P1, 1, "acct:1", 100));
	proto_op op = op_add("acct:1", -10, 0);
	clk_ts pts = h_prepare1(h, P1, 5, &op);
	clk_ts cts = ts_plus_ms(pts, 7);
	atomic_store(&f.cts, cts);
	atomic_store(&f.state, PROTO_TS_COMMITTED);
	assert_true(h_await_status(h, P1, 5, PROTO_TS_COMMITTED, 10000));
	h_expect_committed(h, P1, 5, cts);
	h_expect(h, P1, cts, "acct:1", 90);
	h_expect(h, P1, cts - 1, "acct:1", 100);
	proto_server_close(f.srv);
}

static void
test_no_coordinator_no_peers_stays_prepared(void **state)
{
	harness *h = *state;
	assert_int_equal(h_start(h, P1, NULL), DTX_OK);
	assert_true(h_put(h, P1, 1, "acct:1", 100));
	proto_op op = op_add("acct:1", -10, 0);
	h_prepare1(h, P1, 5, &op);
	assert_true(h_await_state(h, P1, "blocked", 10000));
	assert_int_equal(h_status(h, P1, 5, NULL), PROTO_TS_PREPARED);
	// A restart reloads it, locked, and it stays blocked.
	assert_int_equal(hx_cluster_signal(h->c, P1, SIGKILL), DTX_OK);
	assert_int_equal(h_start(h, P1, NULL), DTX_OK);
	assert_int_equal(h_status(h, P1, 5, NULL), PROTO_TS_PREPARED);
	h_vote_no(h, P1, 6, &op, 1, "locked by tx 5");
	assert_true(h_await_state(h, P1, "blocked", 10000));
	proto_msg hr;
	assert_int_equal(h_health(h, P1, &hr), DTX_OK);
	assert_int_equal(hr.u.health_reply.in_doubt, 1);
	assert_int_equal(hr.u.health_reply.n_blocked, 1);
	assert_int_equal(hr.u.health_reply.blocked[0], 5);
	proto_msg_free(&hr);
}

// ---------------------------------------------------------------- peers

static const uint32_t both[] = { P1, P2 };

static void
prepare_both(harness *h, uint64_t txid, proto_mode mode, clk_ts *pmax)
{
	assert_true(h_put(h, P1, txid + 1000, "acct:a", 10));
	assert_true(h_put(h, P2, txid + 2000, "acct:b", 10));
	proto_op a = op_add("acct:a", -1, 0);
	proto_op b = op_add("acct:b", 1, 0);
	clk_ts p1 = h_prepare_yes(h, P1, txid, mode, both, 2, &a, 1);
	clk_ts p2 = h_prepare_yes(h, P2, txid, mode, both, 2, &b, 1);
	assert_true(p1 != 0 && p2 != 0);
	*pmax = p1 > p2 ? p1 : p2;
}

static void
test_cooperative_commit_from_peer(void **state)
{
	harness *h = *state;
	clk_ts pts;
	prepare_both(h, 5, PROTO_MODE_2PC, &pts);
	clk_ts cts = ts_plus_ms(pts, 4);
	// The coordinator reached only P1, then died.
	assert_int_equal(h_txid(h, P1, PROTO_COMMIT, 5, cts, NULL), PROTO_ACK);
	assert_true(h_await_status(h, P2, 5, PROTO_TS_COMMITTED, 10000));
	h_expect_committed(h, P2, 5, cts);
	h_expect(h, P2, 0, "acct:b", 11);
	assert_int_equal(h_health_counter(h, P2, "resolved_by_peers"), 1);
}

static void
test_cooperative_abort_never_voted(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 1001, "acct:a", 10));
	proto_op a = op_add("acct:a", -1, 0);
	// Only P1 got the PREPARE; P2 never voted.
	assert_true(h_prepare_yes(h, P1, 5, PROTO_MODE_2PC, both, 2, &a, 1));
	assert_true(h_await_status(h, P1, 5, PROTO_TS_ABORTED, 10000));
	// P2 recorded the abort before saying so: it refuses the PREPARE.
	assert_int_equal(h_status(h, P2, 5, NULL), PROTO_TS_ABORTED);
	assert_true(h_put(h, P2, 1002, "acct:b", 10));
	proto_op b = op_add("acct:b", 1, 0);
	h_vote_no(h, P2, 5, &b, 1, "already decided");
	h_expect(h, P1, 0, "acct:a", 10);
}

static void
test_all_in_doubt_stays_blocked(void **state)
{
	harness *h = *state;
	clk_ts pts;
	prepare_both(h, 5, PROTO_MODE_2PC, &pts);
	assert_true(h_await_state(h, P2, "blocked", 10000));
	proto_msg hr;
	assert_int_equal(h_health(h, P2, &hr), DTX_OK);
	assert_string_equal(hr.u.health_reply.state, "blocked");
	assert_int_equal(hr.u.health_reply.n_blocked, 1);
	assert_int_equal(hr.u.health_reply.blocked[0], 5);
	assert_true(h_counter(&hr, "resolve_attempts") >= 2);
	proto_msg_free(&hr);
	// Never guessed: still prepared everywhere, keys still locked.
	dtx_sleep_ms(500);
	assert_int_equal(h_status(h, P1, 5, NULL), PROTO_TS_PREPARED);
	assert_int_equal(h_status(h, P2, 5, NULL), PROTO_TS_PREPARED);
	proto_op b = op_add("acct:b", 1, 0);
	h_vote_no(h, P2, 6, &b, 1, "conflict: acct:b locked by tx 5");
	// Once one learns the outcome, the other follows.
	assert_int_equal(h_txid(h, P1, PROTO_ABORT, 5, 0, NULL), PROTO_ACK);
	assert_true(h_await_status(h, P2, 5, PROTO_TS_ABORTED, 10000));
	assert_true(h_await_state(h, P2, "ok", 5000));
}

static void
test_3pc_termination(void **state)
{
	harness *h = *state;
	clk_ts pts;
	// Some participant pre-committed: the survivors commit.
	prepare_both(h, 5, PROTO_MODE_3PC, &pts);
	clk_ts cts = ts_plus_ms(pts, 4);
	assert_int_equal(
	    h_txid(h, P2, PROTO_PRE_COMMIT, 5, cts, NULL), PROTO_ACK);
	assert_true(h_await_status(h, P1, 5, PROTO_TS_COMMITTED, 10000));
	assert_true(h_await_status(h, P2, 5, PROTO_TS_COMMITTED, 10000));
	h_expect_committed(h, P1, 5, cts);
	h_expect_committed(h, P2, 5, cts);
	assert_int_equal(h_health_counter(h, P1, "resolved_by_termination"), 1);

	// Everyone only prepared: the survivors abort.
	proto_op a = op_add("acct:a", -1, 0);
	proto_op b = op_add("acct:b", 1, 0);
	assert_true(h_prepare_yes(h, P1, 8, PROTO_MODE_3PC, both, 2, &a, 1));
	assert_true(h_prepare_yes(h, P2, 8, PROTO_MODE_3PC, both, 2, &b, 1));
	assert_true(h_await_status(h, P1, 8, PROTO_TS_ABORTED, 10000));
	assert_true(h_await_status(h, P2, 8, PROTO_TS_ABORTED, 10000));
	h_expect(h, P1, 0, "acct:a", 9);
	h_expect(h, P2, 0, "acct:b", 11);
}

// Rule 11, recovery: a participant that restarts with a 3PC transaction
// PREPARED is a failed site, not a survivor. With the coordinator and its
// peer both gone it must not abort by "all reachable uncertain" (the
// coordinator may have presumed it crashed and committed the peer); once
// the peer answers, merely PREPARED too, both abort.
static void
test_3pc_recovered_waits_for_peers(void **state)
{
	harness *h = *state;
	clk_ts pts;
	prepare_both(h, 9, PROTO_MODE_3PC, &pts);
	// Both die before their 2 s in-doubt timeout; P1 comes back alone.
	assert_int_equal(hx_cluster_signal(h->c, P2, SIGKILL), DTX_OK);
	assert_int_equal(hx_cluster_signal(h->c, P1, SIGKILL), DTX_OK);
	assert_int_equal(h_start(h, P1, NULL), DTX_OK);
	assert_true(h_await_state(h, P1, "blocked", 10000));
	dtx_sleep_ms(1500); // a few more resolver rounds: never a guess
	assert_int_equal(h_status(h, P1, 9, NULL), PROTO_TS_PREPARED);
	assert_int_equal(h_health_counter(h, P1, "resolved_by_termination"), 0);
	// The peer is back, as uncertain: now everyone answered.
	assert_int_equal(h_start(h, P2, NULL), DTX_OK);
	assert_true(h_await_status(h, P1, 9, PROTO_TS_ABORTED, 15000));
	assert_true(h_await_status(h, P2, 9, PROTO_TS_ABORTED, 15000));
	h_expect(h, P1, 0, "acct:a", 10);
	h_expect(h, P2, 0, "acct:b", 10);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_crash_before_prepare_log, setup1, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_crash_after_prepare_log, setup1, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_crash_after_commit_ack, setup1, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_crash_before_commit_log, setup1, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_crash_after_commit_log, setup1, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_crash_after_precommit_log, setup1, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_presumed_abort_from_coordinator, setup1, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_commit_learned_from_coordinator, setup1, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_no_coordinator_no_peers_stays_prepared, setup1,
		    h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_cooperative_commit_from_peer, setup2, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_cooperative_abort_never_voted, setup2, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_all_in_doubt_stays_blocked, setup2, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_3pc_termination, setup2, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_3pc_recovered_waits_for_peers, setup2, h_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
