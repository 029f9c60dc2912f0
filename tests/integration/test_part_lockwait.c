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
		b->err = proto_client_call(cl, &req, &b->rep, NULL);
		proto_client_close(cl);
	}
	b->ms = (dtx_mono_ns() - t0) / 1000000u;
	atomic_store(&b->done, true);
	return NULL;
}

static void
bg_start(bg_prep *b, harness *h, uint64_t txid, proto_op op)
{
	memset(b, 0, sizeof(*b));
	b->h = h;
	b->txid = txid;
	b->op = op;
	proto_msg_init(&b->rep, PROTO_NONE);
	assert_int_equal(pthread_create(&b->th, NULL, bg_main, b), 0);
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
		    test_stop_answers_waiters, setup_long, h_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
