// SPDX-License-Identifier: MIT
//
// 2PC end to end against real daemons: commit and abort paths, a
// client-chosen txid (and a duplicate refused), an
// insufficient-funds NO vote, two transfers racing for one account (one
// commits, the other aborts with "conflict", nothing deadlocks), bank
// conservation after 200 random transfers from 8 threads, and bad input
// to the coordinator (malformed, truncated, oversized, wrong type).

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_2pc_util.h"

#define NACCT 20
#define BAL 1000

static int
setup(void **state)
{
	static tu_fx fx;
	static char *const coord_env[] = { "DTX_LOG_LEVEL=debug",
		"DTX_CHECKPOINT_MS=300", NULL };
	static char *const *const env[] = { coord_env, NULL, NULL };
	return tu_setup_bank(state, &fx, 2, env, NACCT, BAL);
}

// Asserts that txid ended as want says (1 committed, 0 aborted): at the
// coordinator now, and at both participants once nothing is in doubt.
static void
expect_settled(tu_fx *fx, uint64_t txid, int want)
{
	tu_expect_status(
	    fx, 0, txid, want ? PROTO_TS_COMMITTED : PROTO_TS_ABORTED);
	assert_true(tu_wait_resolved(fx, true, 10000));
	uint32_t ids[] = { 1, 2 };
	tu_expect_outcome(fx, txid, ids, 2, want);
}

static void
test_commit(void **state)
{
	tu_fx *fx = *state;
	tu_pair p = tu_pair_of(fx, 0, 10000);
	proto_msg rep;
	assert_int_equal(
	    tu_transfer(fx, NULL, PROTO_MODE_2PC, p.a, p.b, 7, &rep, 5000),
	    DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_TXN_REPLY);
	assert_int_equal(rep.u.txn_reply.outcome, PROTO_COMMITTED);
	uint64_t txid = rep.u.txn_reply.txid;
	assert_true(txid != 0);
	assert_true(rep.u.txn_reply.commit_ts != 0);
	proto_msg_free(&rep);
	// The coordinator's STATUS and every participant agree.
	expect_settled(fx, txid, 1);
	tu_pair_moved(fx, &p, 7, 10000);
}

// A client may choose the txid (TXN "tx"): the coordinator runs the
// transaction under it, STATUS knows it by it, and a second TXN with an
// id the coordinator still holds is refused without touching anything.
static void
test_client_txid(void **state)
{
	tu_fx *fx = *state;
	tu_pair p = tu_pair_of(fx, 1, 10000);
	const uint64_t txid = UINT64_C(0x9d2c5680f00dcafe);
	char kf[32], kt[32];
	proto_op ops[2];
	proto_msg req, rep;
	proto_call_opts o;
	memset(&o, 0, sizeof(o));
	o.timeout_ms = 5000;
	tu_transfer_ops(p.a, p.b, 3, kf, kt, ops);
	proto_msg_init(&req, PROTO_TXN);
	req.u.txn.mode = PROTO_MODE_2PC;
	req.u.txn.n_ops = 2;
	req.u.txn.ops = ops;
	req.u.txn.txid = txid;
	assert_int_equal(proto_client_call(fx->cli[0], &req, &rep, &o), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_TXN_REPLY);
	assert_int_equal(rep.u.txn_reply.outcome, PROTO_COMMITTED);
	assert_true(rep.u.txn_reply.txid == txid);
	proto_msg_free(&rep);
	expect_settled(fx, txid, 1);
	tu_pair_moved(fx, &p, 3, 10000);

	// The same id again: refused, nothing moves.
	assert_int_equal(
	    proto_client_call(fx->cli[0], &req, &rep, &o), DTX_EREFUSED);
	assert_int_equal(rep.hdr.type, PROTO_ERROR);
	assert_int_equal(rep.u.error.code, DTX_EEXIST);
	proto_msg_free(&rep);
	tu_pair_moved(fx, &p, 3, 10000);

	// The reserved UINT64_MAX: refused, nothing moves (0 never reaches
	// the coordinator: the codec refuses "tx" 0).
	req.u.txn.txid = UINT64_MAX;
	assert_int_equal(
	    proto_client_call(fx->cli[0], &req, &rep, &o), DTX_EREFUSED);
	assert_int_equal(rep.u.error.code, DTX_EINVAL);
	proto_msg_free(&rep);
	// Nor does STATUS know either id.
	for (int i = 0; i < 2; i++) {
		proto_msg st;
		proto_msg_init(&st, PROTO_STATUS);
		st.u.txid.txid = i ? UINT64_MAX : 0;
		assert_int_equal(
		    proto_client_call(fx->cli[0], &st, &rep, &o), DTX_EREFUSED);
		assert_int_equal(rep.u.error.code, DTX_EINVAL);
		proto_msg_free(&rep);
	}
	tu_pair_moved(fx, &p, 3, 10000);
}

// A client's transfer whose debit carries a floor no balance can have
// (INT64_MIN: "overdraw as far as you like") or an amount of INT64_MIN is
// not committed, in 2PC and 3PC, and moves nothing.
static void
test_absurd_floor_refused(void **state)
{
	tu_fx *fx = *state;
	tu_pair p = tu_pair_of(fx, 2, 10000);
	for (int mode = 0; mode < 2; mode++) {
		for (int kind = 0; kind < 2; kind++) {
			char kf[32], kt[32];
			proto_op ops[2];
			tu_transfer_ops(p.a, p.b, p.ba + 500, kf, kt, ops);
			if (kind == 0)
				ops[0].min = INT64_MIN;
			else
				ops[0].delta = INT64_MIN;
			proto_msg rep;
			dtx_err rv = tu_txn(fx, NULL,
			    mode ? PROTO_MODE_3PC : PROTO_MODE_2PC, ops, 2,
			    &rep, 10000);
			assert_true(rv == DTX_OK || rv == DTX_EREFUSED);
			if (rv == DTX_OK)
				assert_int_equal(
				    rep.u.txn_reply.outcome, PROTO_ABORTED);
			proto_msg_free(&rep);
			tu_pair_moved(fx, &p, 0, 10000);
		}
	}
}

static void
test_insufficient_funds(void **state)
{
	tu_fx *fx = *state;
	tu_pair p = tu_pair_of(fx, 1, 10000);
	proto_msg rep;
	assert_int_equal(tu_transfer(fx, NULL, PROTO_MODE_2PC, p.a, p.b,
	                     p.ba + 1, &rep, 5000),
	    DTX_OK);
	assert_int_equal(rep.u.txn_reply.outcome, PROTO_ABORTED);
	assert_non_null(rep.u.txn_reply.reason);
	assert_non_null(strstr(rep.u.txn_reply.reason, "insufficient"));
	uint64_t txid = rep.u.txn_reply.txid;
	proto_msg_free(&rep);
	// Presumed abort: the coordinator keeps no record of it.
	expect_settled(fx, txid, 0);
	tu_pair_moved(fx, &p, 0, 10000);
}

typedef struct racer {
	tu_fx *fx;
	int64_t from, to;
	proto_msg rep;
	dtx_err rv;
	proto_client *cl;
} racer;

static void *
race_main(void *arg)
{
	racer *r = arg;
	r->rv = tu_transfer(
	    r->fx, r->cl, PROTO_MODE_2PC, r->from, r->to, 1, &r->rep, 10000);
	return NULL;
}

static void
test_conflict(void **state)
{
	tu_fx *fx = *state;
	int64_t a = tu_acct_on(fx, 1, 2);
	int64_t b = tu_acct_on(fx, 2, 2), c = tu_acct_on(fx, 2, 3);
	// Hold the first transfer's lock on a: the coordinator's messages
	// to participant 2 wait 600 ms, so its PREPARE at 1 (which locks a)
	// is in place when the second transfer's PREPARE arrives there.
	int64_t delay[] = { 2, 600 };
	assert_int_equal(tu_fault(fx, 0, "delay", NULL, delay, 2), DTX_OK);
	racer r1 = { .fx = fx, .from = a, .to = b, .cl = fx->cli[0] };
	racer r2 = { .fx = fx, .from = a, .to = c, .cl = fx->cli[0] };
	pthread_t t1, t2;
	uint64_t t0 = dtx_mono_ns();
	assert_int_equal(pthread_create(&t1, NULL, race_main, &r1), 0);
	dtx_sleep_ms(200);
	assert_int_equal(pthread_create(&t2, NULL, race_main, &r2), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	uint64_t took_ms = (dtx_mono_ns() - t0) / 1000000u;
	int64_t clear[] = { 2, 0 };
	assert_int_equal(tu_fault(fx, 0, "delay", NULL, clear, 2), DTX_OK);
	assert_int_equal(r1.rv, DTX_OK);
	assert_int_equal(r2.rv, DTX_OK);
	assert_int_equal(r1.rep.u.txn_reply.outcome, PROTO_COMMITTED);
	assert_int_equal(r2.rep.u.txn_reply.outcome, PROTO_ABORTED);
	assert_non_null(r2.rep.u.txn_reply.reason);
	assert_non_null(strstr(r2.rep.u.txn_reply.reason, "conflict"));
	// No waiting on locks: both finished within a few delays.
	assert_true(took_ms < 5000);
	proto_msg_free(&r1.rep);
	proto_msg_free(&r2.rep);
}

typedef struct worker {
	tu_fx *fx;
	uint64_t seed;
	int n;
	proto_batcher *b; // NULL: a client of the worker's own
	proto_mode mode;
	int committed, aborted, other;
} worker;

// One transfer through w's batcher: the TXN shares BATCH messages with
// the other workers'.
static dtx_err
batched_transfer(
    worker *w, int64_t from, int64_t to, int64_t amt, proto_msg *rep)
{
	char kf[32], kt[32];
	proto_op ops[2];
	tu_transfer_ops(from, to, amt, kf, kt, ops);
	proto_msg req;
	proto_msg_init(&req, PROTO_TXN);
	req.u.txn.mode = w->mode;
	req.u.txn.n_ops = 2;
	req.u.txn.ops = ops;
	dtx_err rv = proto_batcher_call(w->b, &req, rep, 10000);
	if (rv == DTX_EREFUSED)
		proto_msg_free(rep);
	return rv;
}

static void *
worker_main(void *arg)
{
	worker *w = arg;
	proto_client *cl = NULL;
	if (w->b == NULL && tu_coord_client(w->fx, 10000, &cl) != DTX_OK) {
		w->other = w->n;
		return NULL;
	}
	for (int i = 0; i < w->n; i++) {
		int64_t from = (int64_t)dtx_rand_below(&w->seed, NACCT);
		int64_t to = (int64_t)dtx_rand_below(&w->seed, NACCT - 1);
		if (to >= from)
			to++;
		int64_t amt = 1 + (int64_t)dtx_rand_below(&w->seed, 50);
		proto_msg rep;
		dtx_err rv = w->b != NULL
		    ? batched_transfer(w, from, to, amt, &rep)
		    : tu_transfer(w->fx, cl, PROTO_MODE_2PC, from, to, amt,
		          &rep, 10000);
		if (rv != DTX_OK) {
			w->other++;
			continue;
		}
		if (rep.u.txn_reply.outcome == PROTO_COMMITTED)
			w->committed++;
		else if (rep.u.txn_reply.outcome == PROTO_ABORTED)
			w->aborted++;
		else
			w->other++;
		proto_msg_free(&rep);
	}
	proto_client_close(cl);
	return NULL;
}

// Runs the n workers of w at once and adds up their outcomes.
static void
run_workers(worker *w, int n, int *committed, int *aborted, int *other)
{
	pthread_t th[16];
	assert_true(n <= 16);
	for (int i = 0; i < n; i++)
		assert_int_equal(
		    pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		*committed += w[i].committed;
		*aborted += w[i].aborted;
		*other += w[i].other;
	}
}

static void
test_conservation(void **state)
{
	tu_fx *fx = *state;
	int64_t before, after;
	size_t n;
	assert_int_equal(tu_total(fx, &before, &n), DTX_OK);
	assert_int_equal(n, NACCT);
	assert_int_equal(before, NACCT * BAL);
	worker w[8];
	for (int i = 0; i < 8; i++)
		w[i] =
		    (worker) { .fx = fx, .seed = 1000 + (uint64_t)i, .n = 25 };
	int committed = 0, aborted = 0, other = 0;
	run_workers(w, 8, &committed, &aborted, &other);
	print_message("200 transfers: %d committed, %d aborted, %d other\n",
	    committed, aborted, other);
	assert_int_equal(committed + aborted + other, 200);
	assert_int_equal(other, 0);
	assert_true(committed > 0);
	assert_true(tu_wait_resolved(fx, true, 20000));
	assert_int_equal(tu_total(fx, &after, &n), DTX_OK);
	assert_int_equal(n, NACCT);
	assert_int_equal(after, before);
	assert_int_equal(tu_counter(fx, 0, "committed") >= committed, 1);
	// The decision log was checkpointed (restarts replay only the tail).
	uint64_t end = dtx_mono_ns() + 10000000000u;
	while (tu_counter(fx, 0, "checkpoints") < 1 && dtx_mono_ns() < end)
		dtx_sleep_ms(50);
	assert_true(tu_counter(fx, 0, "checkpoints") >= 1);
}

// Sends raw bytes on a fresh REQ socket; returns the reply's decode result
// (the reply must be an ERROR) or the nng failure as a dtx_err.
static dtx_err
raw_call(tu_fx *fx, const void *buf, size_t len, proto_msg *rep)
{
	nng_socket s;
	nng_msg *m = NULL;
	dtx_err rv = DTX_OK;
	memset(rep, 0, sizeof(*rep));
	assert_int_equal(nng_req0_open(&s), 0);
	nng_setopt_ms(s, NNG_OPT_RECVTIMEO, 3000);
	nng_setopt_ms(s, NNG_OPT_SENDTIMEO, 3000);
	int e = nng_dial(s, dtx_topo_find(fx->topo, 0)->url, NULL, 0);
	if (e == 0)
		e = nng_msg_alloc(&m, 0);
	if (e == 0)
		e = nng_msg_append(m, buf, len);
	if (e == 0 && (e = nng_sendmsg(s, m, 0)) != 0)
		nng_msg_free(m);
	m = NULL;
	if (e == 0)
		e = nng_recvmsg(s, &m, 0);
	if (e != 0)
		rv = proto_from_nng(e);
	else
		rv = proto_decode_nng(m, NULL, rep, NULL, 0);
	if (m != NULL)
		nng_msg_free(m);
	nng_close(s);
	return rv;
}

static void
expect_error_reply(tu_fx *fx, const void *buf, size_t len)
{
	proto_msg rep;
	assert_int_equal(raw_call(fx, buf, len, &rep), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_ERROR);
	proto_msg_free(&rep);
}

static void
expect_ping(tu_fx *fx)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_PING);
	assert_int_equal(tu_call(fx, 0, &req, &rep, 3000), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_PONG);
	proto_msg_free(&rep);
}

// Connects to the coordinator over plain TCP, speaks the SP handshake as
// a REQ peer and sends a frame header announcing 4 MiB followed by some of
// the body. True when the daemon closes the connection (within 5 s).
static bool
oversized_dropped(tu_fx *fx)
{
	const char *url = dtx_topo_find(fx->topo, 0)->url;
	const char *hp = strstr(url, "://");
	char host[64];
	int port;
	if (hp == NULL || sscanf(hp + 3, "%63[^:]:%d", host, &port) != 2)
		return false;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, host, &sa.sin_addr);
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	bool dropped = false;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		const uint8_t hello[8] = { 0, 'S', 'P', 0, 0, 0x30, 0, 0 };
		uint8_t frame[8 + 4096];
		uint64_t len = 4u << 20;
		memset(frame, 0x90, sizeof(frame));
		for (int i = 0; i < 8; i++)
			frame[i] = (uint8_t)(len >> (56 - 8 * i));
		uint8_t peer[8];
		if (send(fd, hello, 8, MSG_NOSIGNAL) == 8 &&
		    recv(fd, peer, 8, MSG_WAITALL) == 8) {
			(void)send(fd, frame, sizeof(frame), MSG_NOSIGNAL);
			uint8_t buf[64];
			ssize_t n;
			while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
				;
			dropped = n == 0 || errno == ECONNRESET;
		}
	}
	close(fd);
	return dropped;
}

// Clients that share BATCH messages (proto_batcher), 2PC and 3PC mixed:
// the coordinator answers every element on its own (2PC asynchronously,
// 3PC on runner threads), and the total is conserved.
static void
test_batched_clients(void **state)
{
	tu_fx *fx = *state;
	int64_t before = tu_sum(fx);
	proto_client *cl = NULL;
	assert_int_equal(tu_coord_client(fx, 10000, &cl), DTX_OK);
	proto_batcher *b = NULL;
	assert_int_equal(proto_batcher_open(cl, 16, 1, &b), DTX_OK);
	enum { NW = 8 };
	worker w[NW];
	for (int i = 0; i < NW; i++)
		w[i] = (worker) { .fx = fx,
			.seed = 2000 + (uint64_t)i,
			.n = 25,
			.b = b,
			.mode = i % 2 ? PROTO_MODE_3PC : PROTO_MODE_2PC };
	int committed = 0, aborted = 0, other = 0;
	run_workers(w, NW, &committed, &aborted, &other);
	uint64_t msgs = 0, items = 0;
	proto_batcher_stats(b, &msgs, &items);
	print_message("%d committed, %d other; %llu TXNs in %llu messages\n",
	    committed, other, (unsigned long long)items,
	    (unsigned long long)msgs);
	proto_batcher_close(b);
	proto_client_close(cl);
	assert_int_equal(other, 0);
	assert_true(committed > 0);
	assert_true(items == NW * 25);
	assert_true(msgs < items);
	assert_true(tu_wait_resolved(fx, true, 20000));
	assert_int_equal(tu_sum(fx), before);
}

static void
test_bad_input(void **state)
{
	tu_fx *fx = *state;
	// Garbage, and an empty body.
	const uint8_t junk[] = { 0xc1, 0xff, 0x00, 0x13, 0x37 };
	expect_error_reply(fx, junk, sizeof(junk));
	expect_error_reply(fx, "", 0);
	expect_ping(fx);

	// Every truncation of a valid TXN.
	proto_msg m;
	proto_op op;
	memset(&op, 0, sizeof(op));
	op.kind = PROTO_OP_ADD;
	op.key.p = (uint8_t *)"acct:1";
	op.key.n = 6;
	op.delta = 1;
	proto_msg_init(&m, PROTO_TXN);
	m.hdr.version = PROTO_VERSION;
	m.hdr.id = 77;
	m.hdr.from = fx->client_id;
	m.hdr.vc.n = fx->topo->max_id;
	m.u.txn.n_ops = 1;
	m.u.txn.ops = &op;
	uint8_t *buf;
	size_t len;
	assert_int_equal(proto_encode_buf(&m, &buf, &len), DTX_OK);
	for (size_t cut = 1; cut < len; cut += 3)
		expect_error_reply(fx, buf, cut);
	// Trailing bytes after the map.
	uint8_t *longer = dtx_alloc(len + 1);
	memcpy(longer, buf, len);
	longer[len] = 0xc0;
	expect_error_reply(fx, longer, len + 1);
	dtx_free(longer);
	dtx_free(buf);
	expect_ping(fx);

	// A participant's message sent to the coordinator.
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_PREPARE);
	req.u.prepare.txid = 5;
	req.u.prepare.n_ops = 1;
	req.u.prepare.ops = &op;
	assert_int_equal(tu_call(fx, 0, &req, &rep, 3000), DTX_EREFUSED);
	assert_int_equal(rep.hdr.type, PROTO_ERROR);
	proto_msg_free(&rep);

	// Oversized: a frame announcing more than the size limit on a raw
	// TCP connection (SP handshake as a REQ peer, then an 8-byte length)
	// makes the daemon drop that connection.
	assert_true(oversized_dropped(fx));
	expect_ping(fx);
	// And it still runs transactions.
	int64_t a = tu_acct_on(fx, 1, 0), b = tu_acct_on(fx, 2, 0);
	assert_int_equal(
	    tu_transfer(fx, NULL, PROTO_MODE_2PC, a, b, 1, &rep, 5000), DTX_OK);
	assert_int_equal(rep.u.txn_reply.outcome, PROTO_COMMITTED);
	proto_msg_free(&rep);
}

// The decision log's fsync fails while forcing a COMMIT: the coordinator
// cannot tell whether the decision is durable, so it answers "unknown",
// reports "failed" and refuses new transactions. After a restart the log
// tells, and every participant ends with the same outcome.
static void
test_log_failure(void **state)
{
	tu_fx *fx = *state;
	assert_true(tu_wait_resolved(fx, true, 20000));
	int64_t total0 = tu_sum(fx);
	int64_t a = tu_acct_on(fx, 1, 4), b = tu_acct_on(fx, 2, 4);
	uint64_t txid = tu_transfer_unforced(fx, a, b);
	char st[32];
	assert_int_equal(
	    tu_health(fx, 0, st, sizeof(st), NULL, 0, NULL), DTX_OK);
	assert_string_equal(st, "failed");
	// Undecided as far as anyone can tell: "prepared" (wait and ask
	// again), never a guess.
	tu_expect_status(fx, 0, txid, PROTO_TS_PREPARED);
	// No new decisions on a failed log.
	proto_msg rep;
	assert_int_equal(
	    tu_transfer(fx, NULL, PROTO_MODE_2PC, a, b, 3, &rep, 5000),
	    DTX_EREFUSED);
	assert_int_equal(rep.u.error.code, DTX_EFAILED);
	proto_msg_free(&rep);

	assert_int_equal(hx_cluster_signal(fx->cl, 0, SIGKILL), DTX_OK);
	assert_int_equal(tu_restart(fx, 0), DTX_OK);
	tu_settle(fx, true, 60000, "still in doubt after the restart");
	uint32_t ids[] = { 1, 2 };
	int got = tu_outcome(fx, txid, ids, 2);
	assert_true(got == 0 || got == 1);
	tu_expect_status(
	    fx, 0, txid, got ? PROTO_TS_COMMITTED : PROTO_TS_ABORTED);
	assert_int_equal(tu_sum(fx), total0);
	assert_int_equal(
	    tu_health(fx, 0, st, sizeof(st), NULL, 0, NULL), DTX_OK);
	assert_string_not_equal(st, "failed");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commit),
		cmocka_unit_test(test_client_txid),
		cmocka_unit_test(test_insufficient_funds),
		cmocka_unit_test(test_absurd_floor_refused),
		cmocka_unit_test(test_conflict),
		cmocka_unit_test(test_conservation),
		cmocka_unit_test(test_batched_clients),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_log_failure),
	};
	return cmocka_run_group_tests(tests, setup, tu_group_teardown);
}
