// SPDX-License-Identifier: MIT
//
// A PREPARE that meets a key locked by a transaction prepared at the
// participant waits (--lock-wait-ms) for that transaction's decision
// instead of voting NO at once: it commits once the holder's COMMIT
// arrives, checked anew against the committed balance; it proceeds
// once the holder aborts; waiters for a key are served in arrival order;
// and one whose holder stays undecided past the bound votes NO as
// before.

#include <pthread.h>
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

#define P1 1u

static int
setup_long(void **state)
{
	char *env[] = { "DTX_LOCK_WAIT_MS=5000", NULL };
	return h_setup(state, 1, 1, env);
}

static int
setup_short(void **state)
{
	char *env[] = { "DTX_LOCK_WAIT_MS=300", NULL };
	return h_setup(state, 1, 1, env);
}

// A PREPARE sent from a thread of its own (on its own connection, as
// the coordinator, node 0): its reply and how long it took.
typedef struct bg_prep {
	harness *h;
	uint64_t txid;
	proto_op op;
	proto_msg *req; // sent instead of a PREPARE of op when set
	pthread_t th;
	dtx_err err;
	proto_msg rep;
	uint64_t ms;
	_Atomic bool done;
} bg_prep;

static void *
bg_main(void *arg)
{
	bg_prep *b = arg;
	proto_client *cl = NULL;
	proto_client_cfg cc = { .url = h_url(b->h, P1),
		.vc_nodes = hx_cluster_topo(b->h->c)->max_id,
		.node_id = 0,
		.timeout_ms = 20000,
		.seed = b->txid };
	uint64_t t0 = dtx_mono_ns();
	b->err = proto_client_open(&cc, &cl);
	if (b->err == DTX_OK) {
		proto_msg req;
		proto_msg_init(&req, PROTO_PREPARE);
		req.u.prepare = (proto_prepare) { .txid = b->txid,
			.mode = PROTO_MODE_2PC,
			.n_ops = 1,
			.ops = &b->op };
		b->err = proto_client_call(
		    cl, b->req ? b->req : &req, &b->rep, NULL);
		proto_client_close(cl);
	}
	b->ms = (dtx_mono_ns() - t0) / 1000000u;
	atomic_store(&b->done, true);
	return NULL;
}

static void
bg_start_msg(bg_prep *b, harness *h, uint64_t txid, proto_op op, proto_msg *req)
{
	memset(b, 0, sizeof(*b));
	b->h = h;
	b->txid = txid;
	b->op = op;
	b->req = req;
	proto_msg_init(&b->rep, PROTO_NONE);
	assert_int_equal(pthread_create(&b->th, NULL, bg_main, b), 0);
}

static void
bg_start(bg_prep *b, harness *h, uint64_t txid, proto_op op)
{
	bg_start_msg(b, h, txid, op, NULL);
}

// Joins b; returns its prepare ts when it voted YES, 0 on NO (with the
// reason containing why, unless why is NULL).
static clk_ts
bg_join(bg_prep *b, const char *why)
{
	pthread_join(b->th, NULL);
	assert_int_equal(b->err, DTX_OK);
	assert_int_equal(b->rep.hdr.type, PROTO_VOTE);
	assert_int_equal(b->rep.u.vote.txid, b->txid);
	clk_ts pts = b->rep.u.vote.yes ? b->rep.u.vote.prepare_ts : 0;
	if (!b->rep.u.vote.yes && why != NULL &&
	    (b->rep.u.vote.reason == NULL ||
	        strstr(b->rep.u.vote.reason, why) == NULL))
		fail_msg("tx %llu: reason '%s' lacks '%s'",
		    (unsigned long long)b->txid,
		    b->rep.u.vote.reason ? b->rep.u.vote.reason : "", why);
	proto_msg_free(&b->rep);
	return pts;
}

// B's PREPARE meets A's prepared lock, waits, and votes YES once A's
// COMMIT arrives; then B commits on top of A.
static void
test_waits_for_commit(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 1, "acct:1", 100));
	proto_op a = op_add("acct:1", -30, 0);
	clk_ts apts = h_prepare1(h, P1, 2, &a);
	bg_prep b;
	bg_start(&b, h, 3, op_add("acct:1", -50, 0));
	dtx_sleep_ms(300);
	assert_false(atomic_load(&b.done)); // still waiting, not refused
	assert_int_equal(
	    h_txid(h, P1, PROTO_COMMIT, 2, ts_plus_ms(apts, 1), NULL),
	    PROTO_ACK);
	clk_ts bpts = bg_join(&b, NULL);
	assert_true(bpts != 0);
	assert_true(b.ms >= 250);
	assert_true(bpts > ts_plus_ms(apts, 1)); // after A's commit ts
	assert_int_equal(
	    h_txid(h, P1, PROTO_COMMIT, 3, ts_plus_ms(bpts, 1), NULL),
	    PROTO_ACK);
	h_expect(h, P1, 0, "acct:1", 20);
	assert_true(h_health_counter(h, P1, "lock_waits") >= 1);
	assert_int_equal(h_health_counter(h, P1, "lock_wait_timeouts"), 0);
}

// A woken PREPARE is checked anew: B's floor held against the balance
// before A, not after A's commit, so B now votes NO.
static void
test_woken_rechecks_floor(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 10, "acct:2", 100));
	proto_op a = op_add("acct:2", -30, 0);
	clk_ts apts = h_prepare1(h, P1, 11, &a);
	bg_prep b;
	bg_start(&b, h, 12, op_add("acct:2", -80, 0));
	dtx_sleep_ms(200);
	assert_int_equal(
	    h_txid(h, P1, PROTO_COMMIT, 11, ts_plus_ms(apts, 1), NULL),
	    PROTO_ACK);
	assert_true(bg_join(&b, "insufficient funds: acct:2 has 70") == 0);
	h_expect(h, P1, 0, "acct:2", 70);
}

// A aborts: the waiting B proceeds on the old balance.
static void
test_waits_for_abort(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 20, "acct:3", 100));
	proto_op a = op_add("acct:3", -30, 0);
	h_prepare1(h, P1, 21, &a);
	bg_prep b;
	bg_start(&b, h, 22, op_add("acct:3", -90, 0));
	dtx_sleep_ms(300);
	assert_false(atomic_load(&b.done));
	assert_int_equal(h_txid(h, P1, PROTO_ABORT, 21, 0, NULL), PROTO_ACK);
	clk_ts bpts = bg_join(&b, NULL);
	assert_true(bpts != 0);
	assert_int_equal(
	    h_txid(h, P1, PROTO_COMMIT, 22, ts_plus_ms(bpts, 1), NULL),
	    PROTO_ACK);
	h_expect(h, P1, 0, "acct:3", 10);
}

// Two waiters for one key get it in the order they came: B first (C
// waits on, now for B), then C once B commits.
static void
test_waiters_in_order(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 30, "acct:4", 100));
	proto_op a = op_add("acct:4", -1, 0);
	clk_ts apts = h_prepare1(h, P1, 31, &a);
	bg_prep b, c;
	bg_start(&b, h, 32, op_add("acct:4", -2, 0));
	dtx_sleep_ms(150);
	bg_start(&c, h, 33, op_add("acct:4", -4, 0));
	dtx_sleep_ms(150);
	assert_int_equal(
	    h_txid(h, P1, PROTO_COMMIT, 31, ts_plus_ms(apts, 1), NULL),
	    PROTO_ACK);
	clk_ts bpts = bg_join(&b, NULL);
	assert_true(bpts != 0);
	dtx_sleep_ms(200);
	assert_false(atomic_load(&c.done)); // behind B, which holds it now
	assert_int_equal(
	    h_txid(h, P1, PROTO_COMMIT, 32, ts_plus_ms(bpts, 1), NULL),
	    PROTO_ACK);
	clk_ts cpts = bg_join(&c, NULL);
	assert_true(cpts > ts_plus_ms(bpts, 1));
	assert_int_equal(
	    h_txid(h, P1, PROTO_COMMIT, 33, ts_plus_ms(cpts, 1), NULL),
	    PROTO_ACK);
	h_expect(h, P1, 0, "acct:4", 93);
}

// With no decision within --lock-wait-ms (300 ms here), B votes NO as a
// PREPARE that could not wait would; the key stays A's.
static void
test_wait_times_out(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 40, "acct:5", 100));
	proto_op a = op_add("acct:5", -30, 0);
	clk_ts apts = h_prepare1(h, P1, 41, &a);
	bg_prep b;
	bg_start(&b, h, 42, op_add("acct:5", -10, 0));
	assert_true(bg_join(&b, "conflict: acct:5 locked by tx 41") == 0);
	assert_true(b.ms >= 250 && b.ms < 3000);
	assert_int_equal(h_status(h, P1, 42, NULL), PROTO_TS_ABORTED);
	assert_int_equal(h_health_counter(h, P1, "lock_wait_timeouts"), 1);
	assert_int_equal(
	    h_txid(h, P1, PROTO_COMMIT, 41, ts_plus_ms(apts, 1), NULL),
	    PROTO_ACK);
	h_expect(h, P1, 0, "acct:5", 70);
}

static void
prepare_msg(proto_msg *m, uint64_t txid, proto_op *op)
{
	proto_msg_init(m, PROTO_PREPARE);
	m->u.prepare = (proto_prepare) {
		.txid = txid, .mode = PROTO_MODE_2PC, .n_ops = 1, .ops = op
	};
}

// A BATCH whose one vote waits is answered whole once it is decided:
// the COMMIT beside it is acknowledged in the same reply, after the wait.
static void
test_batch_lone_vote_waits(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 60, "acct:7", 100));
	assert_true(h_put(h, P1, 61, "acct:8", 100));
	proto_op a = op_add("acct:7", -30, 0), c = op_add("acct:8", -1, 0);
	clk_ts apts = h_prepare1(h, P1, 62, &a);
	clk_ts cpts = h_prepare1(h, P1, 63, &c);
	proto_op bop = op_add("acct:7", -50, 0);
	proto_msg msgs[2], batch;
	proto_msg_init(&msgs[0], PROTO_COMMIT);
	msgs[0].u.txid.txid = 63;
	msgs[0].u.txid.commit_ts = ts_plus_ms(cpts, 1);
	prepare_msg(&msgs[1], 64, &bop);
	proto_msg_init(&batch, PROTO_BATCH);
	batch.u.batch.n = 2;
	batch.u.batch.msgs = msgs;
	bg_prep b;
	bg_start_msg(&b, h, 64, bop, &batch);
	dtx_sleep_ms(300);
	assert_false(atomic_load(&b.done));
	assert_int_equal(
	    h_txid(h, P1, PROTO_COMMIT, 62, ts_plus_ms(apts, 1), NULL),
	    PROTO_ACK);
	pthread_join(b.th, NULL);
	assert_int_equal(b.err, DTX_OK);
	assert_int_equal(b.rep.hdr.type, PROTO_BATCH);
	assert_int_equal(b.rep.u.batch.n, 2);
	assert_int_equal(b.rep.u.batch.msgs[0].hdr.type, PROTO_ACK);
	const proto_msg *v = &b.rep.u.batch.msgs[1];
	assert_int_equal(v->hdr.type, PROTO_VOTE);
	assert_true(v->u.vote.yes);
	clk_ts bpts = v->u.vote.prepare_ts;
	proto_msg_free(&b.rep);
	assert_int_equal(
	    h_txid(h, P1, PROTO_COMMIT, 64, ts_plus_ms(bpts, 1), NULL),
	    PROTO_ACK);
	h_expect(h, P1, 0, "acct:7", 20);
	h_expect(h, P1, 0, "acct:8", 99);
}

// A PREPARE in a BATCH with other votes does not wait (its wait would
// hold them all): it is refused at once, the others are answered.
static void
test_batch_of_votes_no_wait(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 70, "acct:10", 100));
	assert_true(h_put(h, P1, 71, "acct:11", 100));
	proto_op a = op_add("acct:10", -30, 0);
	clk_ts apts = h_prepare1(h, P1, 72, &a);
	proto_op bop = op_add("acct:10", -1, 0), dop = op_add("acct:11", -1, 0);
	proto_msg msgs[2], batch, rep;
	prepare_msg(&msgs[0], 73, &bop);
	prepare_msg(&msgs[1], 74, &dop);
	proto_msg_init(&batch, PROTO_BATCH);
	batch.u.batch.n = 2;
	batch.u.batch.msgs = msgs;
	uint64_t t0 = dtx_mono_ns();
	assert_int_equal(h_call(h, P1, &batch, &rep), DTX_OK);
	assert_true(dtx_mono_ns() - t0 < 2000000000ull); // not 5 s
	assert_int_equal(rep.hdr.type, PROTO_BATCH);
	assert_int_equal(rep.u.batch.n, 2);
	assert_false(rep.u.batch.msgs[0].u.vote.yes);
	assert_true(rep.u.batch.msgs[1].u.vote.yes);
	proto_msg_free(&rep);
	assert_int_equal(h_health_counter(h, P1, "lock_waits"), 0);
	assert_int_equal(
	    h_txid(h, P1, PROTO_COMMIT, 72, ts_plus_ms(apts, 1), NULL),
	    PROTO_ACK);
	assert_int_equal(h_txid(h, P1, PROTO_ABORT, 74, 0, NULL), PROTO_ACK);
}

// A participant stopped while a PREPARE waits answers it (NO: it cannot
// wait any more) and exits cleanly.
static void
test_stop_answers_waiters(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 50, "acct:6", 100));
	proto_op a = op_add("acct:6", -30, 0);
	h_prepare1(h, P1, 51, &a);
	bg_prep b;
	bg_start(&b, h, 52, op_add("acct:6", -10, 0));
	dtx_sleep_ms(300);
	assert_false(atomic_load(&b.done));
	int st = -1;
	assert_int_equal(hx_cluster_signal(h->c, P1, SIGTERM), DTX_OK);
	assert_int_equal(hx_cluster_wait_exit(h->c, P1, 10000, &st), DTX_OK);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	pthread_join(b.th, NULL);
	// Answered before the server closed: a NO naming the lock.
	assert_int_equal(b.err, DTX_OK);
	assert_int_equal(b.rep.hdr.type, PROTO_VOTE);
	assert_false(b.rep.u.vote.yes);
	assert_true(b.ms < 5000);
	proto_msg_free(&b.rep);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_waits_for_commit, setup_long, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_woken_rechecks_floor, setup_long, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_waits_for_abort, setup_long, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_waiters_in_order, setup_long, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_wait_times_out, setup_short, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_batch_lone_vote_waits, setup_long, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_batch_of_votes_no_wait, setup_long, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_stop_answers_waiters, setup_long, h_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
