// SPDX-License-Identifier: MIT
//
// Helpers shared by the saga integration tests: a local cluster of real
// participants and a real dtx-saga in a temp dir, a client speaking to
// them, bank accounts written through STEP actions, snapshot reads of every
// shard, and transfer sagas. Included by one test file each (static
// functions only).

#ifndef TEST_SAGA_UTIL_H
#define TEST_SAGA_UTIL_H

#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "proto.h"

typedef struct tsaga {
	char dir[256];
	hx_cluster *c;
	const dtx_topo *topo;
	uint32_t nparts;
	uint32_t saga_id;
	uint32_t client_id;
	proto_client *cl[DTX_TOPO_MAX]; // one client per daemon
	// STEP and SAGA_FORGET go to participants as the orchestrator,
	// whom the daemons' role check expects to send them.
	proto_client *scl[DTX_TOPO_MAX];
	uint64_t gidseq;
} tsaga;

static inline proto_client *
ts_client_as(tsaga *t, uint32_t id, bool as_saga)
{
	proto_client **cl = as_saga ? &t->scl[id] : &t->cl[id];
	if (*cl == NULL) {
		const dtx_node *nd = dtx_topo_find(t->topo, id);
		if (nd == NULL)
			return NULL;
		proto_client_cfg cc = {
			.url = nd->url,
			.vc_nodes = t->topo->max_id,
			.node_id = as_saga ? t->saga_id : t->client_id,
			.timeout_ms = 15000,
			.connect_wait_ms = 2000,
		};
		if (proto_client_open(&cc, cl) != DTX_OK)
			return NULL;
	}
	return *cl;
}

static inline proto_client *
ts_client(tsaga *t, uint32_t id)
{
	return ts_client_as(t, id, false);
}

// Creates a cluster of nparts participants and a saga orchestrator (not
// started). Returns 0 or -1.
static inline int
ts_create(tsaga *t, uint32_t nparts)
{
	char err[256];
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/dtx-test-saga-XXXXXX");
	if (mkdtemp(t->dir) == NULL)
		return -1;
	// Plaintext links on this host (the daemons' --insecure) and the
	// FAULT requests these tests send (--enable-faults).
	setenv("DTX_INSECURE", "1", 1);
	setenv("DTX_ENABLE_FAULTS", "1", 1);
	hx_cluster_opts o = {
		.dir = t->dir,
		.participants = nparts,
		.saga = true,
		.log_level = "info",
		.insecure = true,
	};
	if (hx_cluster_create(&o, &t->c, err, sizeof(err)) != DTX_OK) {
		fprintf(stderr, "cluster: %s\n", err);
		return -1;
	}
	t->topo = hx_cluster_topo(t->c);
	t->nparts = nparts;
	t->saga_id = nparts + 1;
	const dtx_node *cn = dtx_topo_first(t->topo, DTX_ROLE_CLIENT);
	t->client_id = cn != NULL ? cn->id : t->topo->max_id - 1;
	return 0;
}

static inline int
ts_start(tsaga *t, uint32_t id, char *const env[])
{
	if (hx_cluster_start(t->c, id, env) != DTX_OK)
		return -1;
	return hx_cluster_wait_ready(t->c, id, 20000) == DTX_OK ? 0 : -1;
}

// Starts every participant and the orchestrator.
static inline int
ts_start_all(tsaga *t)
{
	for (uint32_t i = 1; i <= t->nparts; i++)
		if (ts_start(t, i, NULL) != 0)
			return -1;
	return ts_start(t, t->saga_id, NULL);
}

// Closes the client of node id (after it was killed, so that the next
// call dials afresh).
static inline void
ts_drop_client(tsaga *t, uint32_t id)
{
	proto_client_close(t->cl[id]);
	t->cl[id] = NULL;
	proto_client_close(t->scl[id]);
	t->scl[id] = NULL;
}

static inline void
ts_destroy(tsaga *t)
{
	char cmd[512];
	for (uint32_t i = 0; i < DTX_TOPO_MAX; i++)
		ts_drop_client(t, i);
	if (t->c != NULL) {
		hx_cluster_stop_all(t->c, 3000);
		hx_cluster_free(t->c);
	}
	if (getenv("DTX_KEEP_TEST_DIR") == NULL && t->dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", t->dir);
	} else {
		fprintf(stderr, "kept %s\n", t->dir);
	}
}

static inline dtx_err
ts_call(tsaga *t, uint32_t id, proto_msg *req, proto_msg *rep)
{
	const proto_msg *m = req;
	if (m->hdr.type == PROTO_BATCH && m->u.batch.n > 0)
		m = &m->u.batch.msgs[0];
	proto_client *c = ts_client_as(t, id,
	    m->hdr.type == PROTO_STEP || m->hdr.type == PROTO_SAGA_FORGET);
	if (c == NULL)
		return DTX_EUNREACH;
	proto_retry r = { .attempts = 20, .base_ms = 50, .cap_ms = 500 };
	proto_call_opts o = { .idempotent = true, .retry = &r };
	return proto_client_call(c, req, rep, &o);
}

static inline void
ts_key(char *buf, size_t n, int acct)
{
	snprintf(buf, n, "acct-%d", acct);
}

static inline uint32_t
ts_owner(tsaga *t, int acct)
{
	char k[32];
	ts_key(k, sizeof(k), acct);
	return dtx_topo_route(t->topo, k, strlen(k));
}

static inline void
ts_op_add(proto_op *op, char *key, int64_t delta, int64_t min)
{
	*op = (proto_op) { .kind = PROTO_OP_ADD,
		.key = { (uint8_t *)key, (uint32_t)strlen(key) },
		.delta = delta,
		.min = min };
}

// Sends one STEP straight to participant id. Returns the STEP_REPLY's
// result (0..2), or -1 on an error (printed).
static inline int
ts_step(tsaga *t, uint32_t id, const char *gid, uint32_t br, proto_phase ph,
    proto_op *ops, uint32_t nops, bool *dup)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_STEP);
	proto_msg_init(&rep, PROTO_NONE);
	req.u.step = (proto_step) { .gid = (char *)gid,
		.branch = br,
		.phase = ph,
		.n_ops = nops,
		.ops = ops };
	dtx_err rv = ts_call(t, id, &req, &rep);
	int res = -1;
	if (rv == DTX_OK && rep.hdr.type == PROTO_STEP_REPLY) {
		res = (int)rep.u.step_reply.result;
		if (dup != NULL)
			*dup = rep.u.step_reply.duplicate;
	} else {
		fprintf(stderr, "step %s/%u: %s %s\n", gid, br, dtx_errname(rv),
		    rv == DTX_EREFUSED && rep.u.error.reason
		        ? rep.u.error.reason
		        : "");
	}
	proto_msg_free(&rep);
	return res;
}

// Writes accounts 0..n-1 with balance bal each (a PUT action per account,
// sent to its owner). Returns 0 or -1.
static inline int
ts_init_accounts(tsaga *t, int n, int64_t bal)
{
	for (int i = 0; i < n; i++) {
		char k[32], gid[64];
		uint8_t v[8];
		for (int b = 0; b < 8; b++)
			v[b] = (uint8_t)((uint64_t)bal >> (8 * b));
		ts_key(k, sizeof(k), i);
		snprintf(gid, sizeof(gid), "init-%d", i);
		proto_op op = { .kind = PROTO_OP_PUT,
			.key = { (uint8_t *)k, (uint32_t)strlen(k) },
			.value = { v, 8 } };
		if (ts_step(t, ts_owner(t, i), gid, 0, PROTO_PHASE_ACTION, &op,
		        1, NULL) != PROTO_STEP_OK)
			return -1;
	}
	return 0;
}

// The latest "now" over the participants' clocks: a snapshot at this
// timestamp sees every write any of them finished before the call (their
// HLCs may run ahead of physical time, e.g. after a peer's restart, so one
// participant's now may be below a write another one already made).
static inline clk_ts
ts_now(tsaga *t)
{
	clk_ts T = 0;
	for (uint32_t p = 1; p <= t->nparts; p++) {
		proto_msg req, rep;
		proto_bytes none = { (uint8_t *)"-", 1 };
		proto_msg_init(&req, PROTO_READ);
		proto_msg_init(&rep, PROTO_NONE);
		req.u.read.n_keys = 1;
		req.u.read.keys = &none;
		if (ts_call(t, p, &req, &rep) == DTX_OK &&
		    rep.hdr.type == PROTO_READ_REPLY && rep.u.read_reply.ts > T)
			T = rep.u.read_reply.ts;
		proto_msg_free(&rep);
	}
	return T;
}

// Reads every shard at one snapshot timestamp (*at, or when at is NULL
// or *at is 0 the latest now of ts_now) and fills bal[0..n) (missing
// accounts: INT64_MIN). Returns the total, or INT64_MIN when a read
// failed.
static inline int64_t
ts_read(tsaga *t, int n, int64_t *bal, clk_ts *at)
{
	clk_ts ts = at != NULL && *at != 0 ? *at : ts_now(t);
	int64_t total = 0;
	for (int i = 0; i < n; i++)
		bal[i] = INT64_MIN;
	for (uint32_t p = 1; p <= t->nparts; p++) {
		proto_msg req, rep;
		for (int tries = 0;; tries++) {
			proto_msg_init(&req, PROTO_READ);
			proto_msg_init(&rep, PROTO_NONE);
			req.u.read.ts = ts;
			dtx_err rv = ts_call(t, p, &req, &rep);
			// A participant just restarted resumes its clock up to
			// CLK_HLC_BOUND_WINDOW_MS ahead of physical time; the
			// others refuse that T (DTX_ECLOCK) until their
			// physical time is within --max-offset-ms of it.
			if (rv == DTX_EREFUSED &&
			    rep.u.error.code == DTX_ECLOCK && tries < 200) {
				proto_msg_free(&rep);
				dtx_sleep_ms(20);
				continue;
			}
			if (rv != DTX_OK || rep.hdr.type != PROTO_READ_REPLY) {
				proto_msg_free(&rep);
				return INT64_MIN;
			}
			if (rep.u.read_reply.status == PROTO_READ_OK)
				break;
			proto_msg_free(&rep);
			if (tries > 200)
				return INT64_MIN;
			dtx_sleep_ms(10);
		}
		for (uint32_t e = 0; e < rep.u.read_reply.n_entries; e++) {
			const proto_entry *en = &rep.u.read_reply.entries[e];
			int acct;
			char k[40];
			size_t kl = en->key.n < sizeof(k) - 1 ? en->key.n
			                                      : sizeof(k) - 1;
			memcpy(k, en->key.p, kl);
			k[kl] = '\0';
			if (!en->found || en->is_bytes ||
			    sscanf(k, "acct-%d", &acct) != 1 || acct < 0 ||
			    acct >= n)
				continue;
			bal[acct] = en->ival;
			total += en->ival;
		}
		proto_msg_free(&rep);
	}
	if (at != NULL)
		*at = ts;
	return total;
}

// Submits saga gid with steps st[0..n). Returns the outcome
// (proto_outcome) or -1; *failed gets the failed step, why the reason.
// ts_read for a test: the reads must work. Include after <cmocka.h>.
static inline int64_t
ts_total(tsaga *t, int n, int64_t *bal)
{
	int64_t total = ts_read(t, n, bal, NULL);
	assert_true(total != INT64_MIN);
	return total;
}

// Asserts that the n accounts still hold n * init in all and that none
// is negative; bal (n entries) gets the balances. Include after
// <cmocka.h>.
static inline void
ts_expect_conserved(tsaga *t, int n, int64_t init, int64_t *bal)
{
	assert_int_equal(ts_total(t, n, bal), n * init);
	for (int i = 0; i < n; i++)
		assert_true(bal[i] >= 0);
}

// Two different accounts below n, drawn with the random state *seed.
static inline void
ts_pick_pair(uint64_t *seed, int n, int *from, int *to)
{
	*from = (int)dtx_rand_below(seed, (uint64_t)n);
	*to = (int)dtx_rand_below(seed, (uint64_t)n - 1);
	if (*to >= *from)
		(*to)++;
}

// A cmocka group teardown for a group whose setup put its tsaga in
// *state.
static inline int
ts_group_teardown(void **state)
{
	ts_destroy(*state);
	return 0;
}

static inline int
ts_submit(tsaga *t, const char *gid, proto_saga_step *st, uint32_t n,
    int32_t *failed, char *why, size_t wlen)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_SAGA_SUBMIT);
	proto_msg_init(&rep, PROTO_NONE);
	req.u.saga_submit = (proto_saga_submit) {
		.gid = (char *)gid, .n_steps = n, .steps = st
	};
	dtx_err rv = ts_call(t, t->saga_id, &req, &rep);
	int out = -1;
	if (rv == DTX_OK && rep.hdr.type == PROTO_SAGA_REPLY) {
		out = (int)rep.u.saga_reply.outcome;
		if (failed != NULL)
			*failed = rep.u.saga_reply.failed_step;
		if (why != NULL)
			snprintf(why, wlen, "%s",
			    rep.u.saga_reply.reason ? rep.u.saga_reply.reason
			                            : "");
	} else {
		fprintf(stderr, "submit %s: %s\n", gid, dtx_errname(rv));
	}
	proto_msg_free(&rep);
	return out;
}

// Fills step st: ADD delta (balance kept >= min) on acct, compensated by
// ADD -delta. kbuf (>= 32 bytes) holds the key and must outlive st.
static inline void
ts_add_step(tsaga *t, proto_saga_step *st, char *kbuf, int acct, int64_t delta,
    int64_t min)
{
	ts_key(kbuf, 32, acct);
	memset(st, 0, sizeof(*st));
	st->participant = ts_owner(t, acct);
	ts_op_add(&st->action, kbuf, delta, min);
	ts_op_add(&st->compensate, kbuf, -delta, INT64_MIN);
}

// Submits a transfer saga gid: debit(from) (balance stays >= 0) then
// credit(to).
static inline int
ts_transfer(tsaga *t, const char *gid, int from, int to, int64_t amount,
    int32_t *failed, char *why, size_t wlen)
{
	char kf[32], kt[32];
	proto_saga_step st[2];
	ts_add_step(t, &st[0], kf, from, -amount, 0);
	ts_add_step(t, &st[1], kt, to, amount, INT64_MIN);
	return ts_submit(t, gid, st, 2, failed, why, wlen);
}

// SAGA_STATUS of gid: true when *rep is its SAGA_STATUS_REPLY (free it
// with proto_msg_free either way).
static inline bool
ts_status_reply(tsaga *t, const char *gid, proto_msg *rep)
{
	proto_msg req;
	proto_msg_init(&req, PROTO_SAGA_STATUS);
	proto_msg_init(rep, PROTO_NONE);
	req.u.gid.gid = (char *)gid;
	return ts_call(t, t->saga_id, &req, rep) == DTX_OK &&
	    rep->hdr.type == PROTO_SAGA_STATUS_REPLY;
}

// SAGA_STATUS of gid: the state (proto_saga_state) or -1; step states and
// last error copied out when non-NULL.
static inline int
ts_status(tsaga *t, const char *gid, uint8_t *steps, uint32_t *nsteps,
    uint64_t *age, char *err, size_t elen)
{
	proto_msg rep;
	int st = -1;
	if (ts_status_reply(t, gid, &rep)) {
		const proto_saga_status_reply *sr = &rep.u.saga_status_reply;
		st = (int)sr->state;
		if (steps != NULL)
			memcpy(steps, sr->step_states, sr->n_steps);
		if (nsteps != NULL)
			*nsteps = sr->n_steps;
		if (age != NULL)
			*age = sr->age_ms;
		if (err != NULL)
			snprintf(err, elen, "%s",
			    sr->last_error ? sr->last_error : "");
	}
	proto_msg_free(&rep);
	return st;
}

// SAGA_STATUS of gid: its compensation stamps copied into out[0..max)
// (0 where none is known); the number of steps, 0 when the reply has no
// stamps, -1 when the call failed.
static inline int
ts_comp_ts(tsaga *t, const char *gid, clk_ts *out, uint32_t max)
{
	proto_msg rep;
	int n = -1;
	if (ts_status_reply(t, gid, &rep)) {
		const proto_saga_status_reply *sr = &rep.u.saga_status_reply;
		n = sr->comp_ts != NULL ? (int)sr->n_steps : 0;
		for (uint32_t i = 0; i < max; i++)
			out[i] = i < (uint32_t)n ? sr->comp_ts[i] : 0;
	}
	proto_msg_free(&rep);
	return n;
}

// Waits until gid is committed or aborted; returns its state or -1.
static inline int
ts_wait_final(tsaga *t, const char *gid, uint64_t timeout_ms)
{
	uint64_t end = dtx_mono_ns() + timeout_ms * 1000000u;
	while (dtx_mono_ns() < end) {
		int st = ts_status(t, gid, NULL, NULL, NULL, NULL, 0);
		if (st == PROTO_SAGA_COMMITTED || st == PROTO_SAGA_ABORTED)
			return st;
		dtx_sleep_ms(50);
	}
	return -1;
}

// HEALTH of node id: the state string (copied) and counter name (or
// NULL) value. Returns 0 or -1.
static inline int
ts_health(tsaga *t, uint32_t id, char *state, size_t slen, const char *ctr,
    int64_t *val)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_HEALTH);
	proto_msg_init(&rep, PROTO_NONE);
	dtx_err rv = ts_call(t, id, &req, &rep);
	int ok = -1;
	if (rv == DTX_OK && rep.hdr.type == PROTO_HEALTH_REPLY) {
		const proto_health_reply *h = &rep.u.health_reply;
		ok = 0;
		if (state != NULL)
			snprintf(state, slen, "%s", h->state ? h->state : "");
		for (uint32_t i = 0; ctr != NULL && i < h->n_counters; i++)
			if (strcmp(h->counters[i].name, ctr) == 0)
				*val = h->counters[i].value;
	}
	proto_msg_free(&rep);
	return ok;
}

// Sends FAULT kind (args, s) to node id. Returns 0 or -1.
static inline int
ts_fault(tsaga *t, uint32_t id, const char *kind, const int64_t *args,
    uint32_t nargs, const char *s)
{
	proto_msg req, rep;
	proto_msg_init(&rep, PROTO_NONE);
	if (proto_fault_init(&req, kind, args, nargs, s) != DTX_OK)
		return -1;
	dtx_err rv = ts_call(t, id, &req, &rep);
	int ok = rv == DTX_OK && rep.hdr.type == PROTO_ACK ? 0 : -1;
	proto_msg_free(&rep);
	return ok;
}

#endif // TEST_SAGA_UTIL_H
