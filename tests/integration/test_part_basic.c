// SPDX-License-Identifier: MIT
//
// dtx-participant's direct paths against a real process: prepare, commit
// and abort; NO votes with their reasons; conflicts refused (after the
// lock wait, 50 ms by default);
// idempotent duplicates; STATUS of a txid never seen; snapshot reads at a
// timestamp and around prepared intents; batches sharing fsyncs; the
// wal_sync fault; and malformed, truncated and oversized requests.

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "test_part_harness.h"

#define P1 1u

static int
setup(void **state)
{
	char *env[] = { "DTX_READ_WAIT_MS=1000", NULL };
	return h_setup(state, 1, 1, env);
}

static void
test_prepare_commit_abort(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 1, "acct:1", 100));
	h_expect(h, P1, 0, "acct:1", 100);

	proto_op op = op_add("acct:1", -30, 0);
	clk_ts pts = h_prepare1(h, P1, 2, &op);
	assert_int_equal(h_status(h, P1, 2, NULL), PROTO_TS_PREPARED);
	clk_ts cts = ts_plus_ms(pts, 1);
	assert_int_equal(h_txid(h, P1, PROTO_COMMIT, 2, cts, NULL), PROTO_ACK);
	h_expect_committed(h, P1, 2, cts);
	h_expect(h, P1, 0, "acct:1", 70);

	op = op_add("acct:1", 5, 0);
	h_prepare1(h, P1, 3, &op);
	assert_int_equal(h_txid(h, P1, PROTO_ABORT, 3, 0, NULL), PROTO_ACK);
	assert_int_equal(h_status(h, P1, 3, NULL), PROTO_TS_ABORTED);
	h_expect(h, P1, 0, "acct:1", 70);
	// The lock went with the abort.
	op = op_add("acct:1", 1, 0);
	h_prepare1(h, P1, 4, &op);
	assert_int_equal(h_txid(h, P1, PROTO_ABORT, 4, 0, NULL), PROTO_ACK);
}

static void
test_vote_no_reasons(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 10, "acct:3", 5));
	proto_op op = op_add("acct:3", -10, 0);
	h_vote_no(h, P1, 11, &op, 1,
	    "insufficient funds: acct:3 has 5, needs >= 0 after -10");
	// NO means aborted and forgotten: the txid cannot prepare later.
	assert_int_equal(h_status(h, P1, 11, NULL), PROTO_TS_ABORTED);
	op = op_add("acct:3", 1, 0);
	h_vote_no(h, P1, 11, &op, 1, "already decided");
	op = op_add("acct:7", 1, 0);
	h_vote_no(h, P1, 12, &op, 1, "no such key acct:7");
	// A NO leaves nothing locked.
	op = op_add("acct:3", -5, 0);
	h_commit1(h, P1, 13, &op);
	h_expect(h, P1, 0, "acct:3", 0);
}

static void
test_conflict_is_immediate(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 20, "acct:4", 50));
	proto_op op = op_add("acct:4", -1, 0);
	clk_ts pts = h_prepare1(h, P1, 21, &op);
	uint64_t t0 = dtx_mono_ns();
	h_vote_no(h, P1, 22, &op, 1, "conflict: acct:4 locked by tx 21");
	assert_true(dtx_mono_ns() - t0 < 1000000000ull);
	uint8_t buf[8];
	proto_op put = op_put("acct:4", 9, buf);
	h_vote_no(h, P1, 23, &put, 1, "conflict: acct:4 locked by tx 21");
	assert_int_equal(h_txid(h, P1, PROTO_COMMIT, 21, pts, NULL), PROTO_ACK);
	h_prepare1(h, P1, 24, &op);
	assert_int_equal(h_txid(h, P1, PROTO_ABORT, 24, 0, NULL), PROTO_ACK);
	assert_true(h_health_counter(h, P1, "conflicts") >= 2);
}

static void
test_duplicates_idempotent(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 30, "acct:5", 10));
	proto_op op = op_add("acct:5", 3, 0);
	clk_ts a = h_prepare1(h, P1, 31, &op);
	clk_ts b = h_prepare1(h, P1, 31, &op);
	assert_true(a == b);
	clk_ts cts = ts_plus_ms(a, 2);
	assert_int_equal(h_txid(h, P1, PROTO_COMMIT, 31, cts, NULL), PROTO_ACK);
	assert_int_equal(h_txid(h, P1, PROTO_COMMIT, 31, cts, NULL), PROTO_ACK);
	h_expect(h, P1, 0, "acct:5", 13); // applied once
	h_vote_no(h, P1, 31, &op, 1, "already decided");
	// A COMMIT for a txid never seen is acknowledged (collected).
	assert_int_equal(
	    h_txid(h, P1, PROTO_COMMIT, 777, cts, NULL), PROTO_ACK);
	// An ABORT of a committed txn is refused, not applied.
	assert_int_equal(h_txid(h, P1, PROTO_ABORT, 31, 0, NULL), PROTO_ERROR);
	h_expect(h, P1, 0, "acct:5", 13);
}

static void
test_status_never_voted(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 40, "acct:6", 1));
	assert_int_equal(h_status(h, P1, 41, NULL), PROTO_TS_NEVER_VOTED);
	// ... and it refuses a later PREPARE of that txid.
	proto_op op = op_add("acct:6", 1, 0);
	h_vote_no(h, P1, 41, &op, 1, "already decided");
	assert_int_equal(h_status(h, P1, 41, NULL), PROTO_TS_ABORTED);
}

static void
test_snapshot_read(void **state)
{
	harness *h = *state;
	uint8_t buf[8];
	proto_op op = op_put("acct:8", 500, buf);
	clk_ts pts = h_prepare1(h, P1, 50, &op);
	clk_ts cts = ts_plus_ms(pts, 20);
	assert_int_equal(h_txid(h, P1, PROTO_COMMIT, 50, cts, NULL), PROTO_ACK);
	int64_t v = 0;
	assert_false(h_get(h, P1, cts - 1, "acct:8", &v));
	h_expect(h, P1, cts, "acct:8", 500);

	op = op_put("acct:8", 600, buf);
	clk_ts p2 = h_prepare_yes(h, P1, 51, PROTO_MODE_2PC, NULL, 0, &op, 1);
	assert_true(p2 > cts);
	clk_ts c2 = ts_plus_ms(p2, 5);
	assert_int_equal(h_txid(h, P1, PROTO_COMMIT, 51, c2, NULL), PROTO_ACK);
	h_expect(h, P1, c2 - 1, "acct:8", 500);
	h_expect(h, P1, c2, "acct:8", 600);

	// keys empty: all keys, as of T.
	proto_msg rep;
	assert_int_equal(h_read(h, P1, c2 - 1, NULL, &rep), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_READ_REPLY);
	assert_int_equal(rep.u.read_reply.status, PROTO_READ_OK);
	assert_true(rep.u.read_reply.ts == c2 - 1);
	bool seen = false;
	for (uint32_t i = 0; i < rep.u.read_reply.n_entries; i++) {
		const proto_entry *e = &rep.u.read_reply.entries[i];
		if (e->key.n == 6 && memcmp(e->key.p, "acct:8", 6) == 0) {
			seen = true;
			assert_int_equal(e->ival, 500);
		}
	}
	assert_true(seen);
	proto_msg_free(&rep);
}

typedef struct commit_later {
	harness *h;
	uint64_t txid;
	clk_ts cts;
	proto_client *cl;
} commit_later;

static void *
commit_after_200ms(void *arg)
{
	commit_later *cl = arg;
	dtx_sleep_ms(200);
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_COMMIT);
	req.u.txid.txid = cl->txid;
	req.u.txid.commit_ts = cl->cts;
	if (proto_client_call(cl->cl, &req, &rep, NULL) == DTX_OK)
		proto_msg_free(&rep);
	return NULL;
}

static void
test_read_waits_then_retry(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 60, "acct:9", 1));
	proto_op op = op_add("acct:9", 1, 0);
	clk_ts pts = h_prepare1(h, P1, 61, &op);
	// An intent at or below T: the read waits; the commit lands within
	// the bound (1 s here), and the read then sees the new value.
	commit_later cl = { h, 61, ts_plus_ms(pts, 1), NULL };
	proto_client_cfg cc = { .url = h_url(h, P1),
		.vc_nodes = hx_cluster_topo(h->c)->max_id,
		.node_id = 0, // the coordinator the PREPARE names
		.seed = 7 };
	assert_int_equal(proto_client_open(&cc, &cl.cl), DTX_OK);
	pthread_t th;
	clk_ts T = ts_plus_ms(pts, 2);
	uint64_t t0 = dtx_mono_ns();
	assert_int_equal(pthread_create(&th, NULL, commit_after_200ms, &cl), 0);
	int64_t v = 0;
	assert_true(h_get(h, P1, T, "acct:9", &v));
	uint64_t waited = dtx_mono_ns() - t0;
	pthread_join(th, NULL);
	proto_client_close(cl.cl);
	assert_int_equal(v, 2);
	assert_true(waited >= 150000000ull);

	// No outcome within the bound: RETRY naming the blocking txn.
	clk_ts p2 = h_prepare1(h, P1, 62, &op);
	proto_msg rep;
	assert_int_equal(
	    h_read(h, P1, ts_plus_ms(p2, 1), "acct:9", &rep), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_READ_REPLY);
	assert_int_equal(rep.u.read_reply.status, PROTO_READ_RETRY);
	assert_int_equal(rep.u.read_reply.blocked_txid, 62);
	proto_msg_free(&rep);
	// A read below the intent's prepare ts is not blocked.
	h_expect(h, P1, p2 - 1, "acct:9", 2);
	assert_int_equal(h_txid(h, P1, PROTO_ABORT, 62, 0, NULL), PROTO_ACK);
	h_expect(h, P1, 0, "acct:9", 2);
}

#define NBATCH 32

// NBATCH one-op messages, message i a PUT of key <prefix><i> = i; the
// caller gives each message its type and body around ops[i].
typedef struct put_batch {
	char keys[NBATCH][16];
	uint8_t bufs[NBATCH][8];
	proto_op ops[NBATCH];
	proto_msg msgs[NBATCH];
} put_batch;

static void
put_batch_init(put_batch *b, const char *prefix)
{
	for (int i = 0; i < NBATCH; i++) {
		snprintf(b->keys[i], sizeof(b->keys[i]), "%s%d", prefix, i);
		b->ops[i] = op_put(b->keys[i], i, b->bufs[i]);
	}
}

// Sends the messages of b to P1 as one BATCH; *rep gets the reply
// (owned), which must be a BATCH of NBATCH answers.
static void
put_batch_send(harness *h, put_batch *b, proto_msg *rep)
{
	proto_msg req;
	proto_msg_init(&req, PROTO_BATCH);
	req.u.batch = (proto_batch) { NBATCH, b->msgs };
	assert_int_equal(h_call(h, P1, &req, rep), DTX_OK);
	assert_int_equal(rep->hdr.type, PROTO_BATCH);
	assert_int_equal(rep->u.batch.n, NBATCH);
}

static void
test_batch_shares_fsync(void **state)
{
	harness *h = *state;
	put_batch b;
	put_batch_init(&b, "acct:b");
	for (int i = 0; i < NBATCH; i++) {
		proto_msg_init(&b.msgs[i], PROTO_PREPARE);
		b.msgs[i].u.prepare = (proto_prepare) {
			.txid = 100 + i, .n_ops = 1, .ops = &b.ops[i]
		};
	}
	int64_t syncs0 = h_health_counter(h, P1, "wal_syncs");

	proto_msg rep;
	put_batch_send(h, &b, &rep);
	for (int i = 0; i < NBATCH; i++) {
		const proto_msg *m = &rep.u.batch.msgs[i];
		assert_int_equal(m->hdr.type, PROTO_VOTE);
		assert_true(m->u.vote.yes);
		assert_int_equal(m->u.vote.txid, 100 + i);
		b.msgs[i].hdr.type = PROTO_COMMIT;
		b.msgs[i].u.txid = (proto_txid) { 100 + i,
			ts_plus_ms(m->u.vote.prepare_ts, 1) };
	}
	proto_msg_free(&rep);
	int64_t syncs1 = h_health_counter(h, P1, "wal_syncs");
	// One stor_kv_sync for the batch: far fewer fsyncs than PREPAREs.
	assert_true(syncs1 - syncs0 < NBATCH / 4);

	put_batch_send(h, &b, &rep);
	for (int i = 0; i < NBATCH; i++)
		assert_int_equal(rep.u.batch.msgs[i].hdr.type, PROTO_ACK);
	proto_msg_free(&rep);
	h_expect(h, P1, 0, "acct:b31", 31);
}

// Sends a BATCH of NBATCH STEP actions (each a PUT of its own key) and
// returns the reply in *rep.
static void
step_batch(harness *h, const char *gid, proto_msg *rep)
{
	put_batch b;
	put_batch_init(&b, "acct:s");
	for (int i = 0; i < NBATCH; i++) {
		proto_msg_init(&b.msgs[i], PROTO_STEP);
		b.msgs[i].u.step = (proto_step) { .gid = (char *)gid,
			.branch = (uint32_t)i,
			.phase = PROTO_PHASE_ACTION,
			.n_ops = 1,
			.ops = &b.ops[i] };
	}
	put_batch_send(h, &b, rep);
}

// Saga STEPs in one BATCH share an fsync too, and none is answered
// before its commit is durable (rule 13): with a failing fsync every
// STEP of the batch gets an ERROR, not a result.
static void
test_step_batch_shares_fsync(void **state)
{
	harness *h = *state;
	proto_msg rep;
	int64_t syncs0 = h_health_counter(h, P1, "wal_syncs");
	step_batch(h, "g1", &rep);
	for (int i = 0; i < NBATCH; i++) {
		const proto_msg *m = &rep.u.batch.msgs[i];
		assert_int_equal(m->hdr.type, PROTO_STEP_REPLY);
		assert_int_equal(m->u.step_reply.result, PROTO_STEP_OK);
		assert_int_equal(m->u.step_reply.branch, i);
	}
	proto_msg_free(&rep);
	int64_t syncs1 = h_health_counter(h, P1, "wal_syncs");
	assert_true(syncs1 - syncs0 < NBATCH / 4);
	h_expect(h, P1, 0, "acct:s31", 31);

	h_fault(h, P1, "wal_sync", 1);
	step_batch(h, "g2", &rep);
	for (int i = 0; i < NBATCH; i++)
		assert_int_equal(rep.u.batch.msgs[i].hdr.type, PROTO_ERROR);
	proto_msg_free(&rep);
}

static void
test_wal_sync_fault(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 199, "acct:g", 7));
	assert_true(h_put(h, P1, 200, "acct:f", 5));
	assert_int_equal(h_fault(h, P1, "wal_sync", 1), PROTO_ACK);
	proto_msg req, rep;

	proto_op op = op_add("acct:f", 1, 0);
	assert_int_equal(
	    h_prepare(h, P1, 201, PROTO_MODE_2PC, NULL, 0, &op, 1, &rep),
	    DTX_OK);
	assert_true(rep.hdr.type == PROTO_ERROR ||
	    (rep.hdr.type == PROTO_VOTE && !rep.u.vote.yes));
	proto_msg_free(&rep);
	assert_true(h_await_state(h, P1, "failed", 2000));
	// Rule 18: no more writes, even once fsync would work again.
	assert_int_equal(
	    h_prepare(h, P1, 202, PROTO_MODE_2PC, NULL, 0, &op, 1, &rep),
	    DTX_OK);
	assert_false(rep.hdr.type == PROTO_VOTE && rep.u.vote.yes);
	proto_msg_free(&rep);
	proto_msg_init(&req, PROTO_PING);
	assert_int_equal(h_call(h, P1, &req, &rep), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_PONG);
	proto_msg_free(&rep);
	// Reads of what is in memory still work (acct:f keeps the intent
	// of the PREPARE whose record never became durable: the store can
	// log nothing, not even its abort, until it is restarted).
	h_expect(h, P1, 0, "acct:g", 7);
	// Unknown fault kinds are refused.
	proto_msg_init(&req, PROTO_FAULT);
	req.u.fault.kind = "no_such_fault";
	assert_int_equal(h_call(h, P1, &req, &rep), DTX_EREFUSED);
	assert_int_equal(rep.u.error.code, DTX_ENOENT);
	proto_msg_free(&rep);
}

// Sends raw bytes on a REQ socket; returns the decoded reply's type, or
// PROTO_NONE when no reply came within ms. A connection that never became
// ready to send is tried again (up to three times).
static proto_type
raw_call(
    const char *url, const void *buf, size_t len, uint32_t ms, dtx_err *code)
{
	proto_type t = PROTO_NONE;
	for (int attempt = 0; attempt < 3; attempt++) {
		nng_socket s;
		nng_msg *m = NULL;
		bool sent = false;
		if (nng_req0_open(&s) != 0)
			return PROTO_NONE;
		nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, (nng_duration)ms);
		nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 2000);
		nng_socket_set_ms(
		    s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
		if (nng_dial(s, url, NULL, 0) == 0 &&
		    nng_msg_alloc(&m, 0) == 0 &&
		    nng_msg_append(m, buf, len) == 0 &&
		    nng_sendmsg(s, m, 0) == 0) {
			m = NULL;
			sent = true;
			nng_msg *r;
			if (nng_recvmsg(s, &r, 0) == 0) {
				proto_msg rep;
				if (proto_decode_nng(r, NULL, &rep, NULL, 0) ==
				    DTX_OK) {
					t = rep.hdr.type;
					if (t == PROTO_ERROR && code != NULL)
						*code = rep.u.error.code;
					proto_msg_free(&rep);
				}
				nng_msg_free(r);
			}
		}
		if (m != NULL)
			nng_msg_free(m);
		nng_close(s);
		if (sent)
			break;
	}
	return t;
}

static void
assert_alive(harness *h)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_PING);
	assert_int_equal(h_call(h, P1, &req, &rep), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_PONG);
	proto_msg_free(&rep);
	assert_true(hx_cluster_pid(h->c, P1) > 0);
}

static void
test_malformed_requests(void **state)
{
	harness *h = *state;
	const char *url = h_url(h, P1);
	dtx_err code = DTX_OK;
	uint64_t seed = 12345;

	// Garbage.
	uint8_t junk[64];
	for (int round = 0; round < 20; round++) {
		size_t n = 1 + dtx_rand_below(&seed, sizeof(junk));
		for (size_t i = 0; i < n; i++)
			junk[i] = (uint8_t)dtx_rand_next(&seed);
		code = DTX_OK;
		assert_int_equal(
		    raw_call(url, junk, n, 3000, &code), PROTO_ERROR);
		assert_int_equal(code, DTX_EPROTO);
	}
	// Every truncation of a valid PREPARE.
	proto_op op = op_add("acct:1", 1, 0);
	proto_msg req;
	proto_msg_init(&req, PROTO_PREPARE);
	req.u.prepare = (proto_prepare) { .txid = 300, .n_ops = 1, .ops = &op };
	uint8_t *buf;
	size_t len;
	assert_int_equal(proto_encode_buf(&req, &buf, &len), DTX_OK);
	for (size_t cut = 1; cut < len; cut++) {
		code = DTX_OK;
		assert_int_equal(
		    raw_call(url, buf, cut, 3000, &code), PROTO_ERROR);
		assert_int_equal(code, DTX_EPROTO);
	}
	dtx_free(buf);
	assert_alive(h);
	// Over the size limit: the connection is dropped, nothing answers.
	size_t big = PROTO_MAX_MSG_DEFAULT + 4096;
	uint8_t *huge = calloc(1, big);
	assert_non_null(huge);
	assert_int_equal(raw_call(url, huge, big, 1000, NULL), PROTO_NONE);
	free(huge);
	assert_alive(h);
	// Well-formed but not for a participant.
	proto_msg rep;
	proto_msg_init(&req, PROTO_TXN);
	req.u.txn = (proto_txn) { .n_ops = 1, .ops = &op };
	assert_int_equal(h_call(h, P1, &req, &rep), DTX_EREFUSED);
	proto_msg_free(&rep);
	// txid 0 is refused.
	proto_msg_init(&req, PROTO_STATUS);
	assert_int_equal(h_call(h, P1, &req, &rep), DTX_EREFUSED);
	assert_int_equal(rep.u.error.code, DTX_EINVAL);
	proto_msg_free(&rep);
	// So are 0 and the reserved UINT64_MAX in every message that names
	// a transaction, from its coordinator too; nothing is prepared or
	// locked by them.
	const uint64_t reserved[] = { 0, UINT64_MAX };
	const proto_type decisions[] = { PROTO_COMMIT, PROTO_ABORT,
		PROTO_PRE_COMMIT, PROTO_DO_COMMIT, PROTO_STATUS };
	for (size_t i = 0; i < 2; i++) {
		for (int mode = 0; mode < 2; mode++) {
			assert_int_equal(
			    h_prepare(h, P1, reserved[i],
			        mode ? PROTO_MODE_3PC : PROTO_MODE_2PC, NULL, 0,
			        &op, 1, &rep),
			    DTX_EREFUSED);
			assert_int_equal(rep.u.error.code, DTX_EINVAL);
			proto_msg_free(&rep);
		}
		for (size_t d = 0; d < sizeof(decisions) / sizeof(*decisions);
		     d++) {
			assert_int_equal(
			    h_txid(h, P1, decisions[d], reserved[i], 5, &rep),
			    PROTO_ERROR);
			assert_int_equal(rep.u.error.code, DTX_EINVAL);
			proto_msg_free(&rep);
		}
	}
	// The key the refused PREPAREs named is free.
	assert_true(h_put(h, P1, 4242, "acct:1", 5));
	h_expect(h, P1, 0, "acct:1", 5);
	assert_alive(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_prepare_commit_abort, setup, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_vote_no_reasons, setup, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_conflict_is_immediate, setup, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_duplicates_idempotent, setup, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_status_never_voted, setup, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_snapshot_read, setup, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_read_waits_then_retry, setup, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_batch_shares_fsync, setup, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_step_batch_shares_fsync, setup, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_wal_sync_fault, setup, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_malformed_requests, setup, h_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
