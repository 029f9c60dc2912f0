// SPDX-License-Identifier: MIT
//
// The proto codec: every message type survives a round trip with all its
// fields; truncations, bit flips and allocation failures never crash or
// leak; hand-made invalid maps are each rejected with DTX_EPROTO and a
// reason naming the problem.

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <msgpack.h>

#include "proto.h"

// ---------------------------------------------------------------- samples

static void
ok(dtx_err err)
{
	assert_int_equal(err, DTX_OK);
}

static void
key(proto_bytes *b, const char *s)
{
	ok(proto_bytes_set(b, s, strlen(s)));
}

static void
op_add(proto_op *op, const char *k, int64_t delta, int64_t min)
{
	op->kind = PROTO_OP_ADD;
	key(&op->key, k);
	op->delta = delta;
	op->min = min;
}

static proto_op *
sample_ops(uint32_t n)
{
	proto_op *ops = dtx_calloc(n, sizeof(*ops));
	assert_non_null(ops);
	for (uint32_t i = 0; i < n; i++) {
		char k[32];
		snprintf(k, sizeof(k), "acct-%u", i);
		switch (i % 4) {
		case 0:
			op_add(&ops[i], k, -(int64_t)i - 5, INT64_MIN + i);
			break;
		case 3:
			ops[i].kind = PROTO_OP_APPEND;
			key(&ops[i].key, k);
			ops[i].delta = INT64_MAX - i;
			break;
		case 1:
			ops[i].kind = PROTO_OP_PUT;
			key(&ops[i].key, k);
			ok(proto_bytes_set(&ops[i].value, "\x00\xff\x10", 3));
			break;
		default:
			ops[i].kind = PROTO_OP_GET;
			key(&ops[i].key, k);
			break;
		}
	}
	return ops;
}

// Fills every field of a message of type t with non-default values.
static void sample(proto_type t, proto_msg *m);

// The body of a sample message of type t: ERROR, BATCH, PING, PONG, HEALTH,
// HEALTH_REPLY, FAULT.
static void
sample_admin(proto_type t, proto_msg *m)
{
	switch (t) {
	case PROTO_ERROR:
		m->u.error.code = DTX_ECONFLICT;
		ok(proto_str_set(&m->u.error.reason, "key locked"));
		break;
	case PROTO_BATCH:
		m->u.batch.n = 3;
		m->u.batch.msgs = dtx_calloc(3, sizeof(proto_msg));
		assert_non_null(m->u.batch.msgs);
		sample(PROTO_PREPARE, &m->u.batch.msgs[0]);
		sample(PROTO_PING, &m->u.batch.msgs[1]);
		sample(PROTO_SAGA_SUBMIT, &m->u.batch.msgs[2]);
		break;
	case PROTO_PING:
	case PROTO_PONG:
	case PROTO_HEALTH:
		break;
	case PROTO_HEALTH_REPLY: {
		proto_health_reply *h = &m->u.health_reply;
		ok(proto_str_set(&h->role, "participant"));
		h->node = 3;
		ok(proto_str_set(&h->state, "blocked"));
		h->in_doubt = 2;
		h->n_blocked = 2;
		h->blocked = dtx_calloc(2, sizeof(uint64_t));
		assert_non_null(h->blocked);
		h->blocked[0] = 99;
		h->blocked[1] = UINT64_MAX;
		h->n_counters = 2;
		h->counters = dtx_calloc(2, sizeof(proto_counter));
		assert_non_null(h->counters);
		ok(proto_str_set(&h->counters[0].name, "commits"));
		h->counters[0].value = 1000;
		ok(proto_str_set(&h->counters[1].name, "skew_ms"));
		h->counters[1].value = -17;
		break;
	}
	case PROTO_FAULT:
		ok(proto_str_set(&m->u.fault.kind, "clock"));
		m->u.fault.n_args = 2;
		m->u.fault.args[0] = -250;
		m->u.fault.args[1] = 1;
		ok(proto_str_set(&m->u.fault.arg, "strobe"));
		break;
	default:
		fail_msg("no sample for type %d", (int)t);
	}
}

// The body of a sample message of type t: TXN .. STATUS_REPLY.
static void
sample_txn(proto_type t, proto_msg *m)
{
	switch (t) {
	case PROTO_TXN:
		m->u.txn.mode = PROTO_MODE_3PC;
		m->u.txn.n_ops = 4;
		m->u.txn.ops = sample_ops(4);
		break;
	case PROTO_TXN_REPLY: {
		proto_txn_reply *r = &m->u.txn_reply;
		r->outcome = PROTO_UNKNOWN;
		ok(proto_str_set(&r->reason, "coordinator timed out"));
		r->txid = 77;
		r->commit_ts = clk_ts_make(1700000000999ULL, 3);
		r->n_results = 3;
		r->results = dtx_calloc(3, sizeof(int64_t));
		assert_non_null(r->results);
		r->results[0] = -1;
		r->results[1] = INT64_MAX;
		r->results[2] = INT64_MIN;
		break;
	}
	case PROTO_PREPARE:
	case PROTO_CAN_COMMIT: {
		proto_prepare *p = &m->u.prepare;
		p->txid = 1ULL << 50;
		p->mode =
		    t == PROTO_CAN_COMMIT ? PROTO_MODE_3PC : PROTO_MODE_2PC;
		p->coord = 1;
		p->n_peers = 3;
		p->peers = dtx_calloc(3, sizeof(uint32_t));
		assert_non_null(p->peers);
		p->peers[0] = 2;
		p->peers[1] = 3;
		p->peers[2] = 31;
		p->n_ops = 2;
		p->ops = sample_ops(2);
		break;
	}
	case PROTO_VOTE:
		m->u.vote.txid = 5;
		m->u.vote.yes = true;
		ok(proto_str_set(&m->u.vote.reason, ""));
		m->u.vote.prepare_ts = clk_ts_make(1700000000500ULL, 9);
		break;
	case PROTO_COMMIT:
	case PROTO_PRE_COMMIT:
		m->u.txid.txid = 6;
		m->u.txid.commit_ts = clk_ts_make(1700000000501ULL, 1);
		break;
	case PROTO_ABORT:
	case PROTO_DO_COMMIT:
	case PROTO_ACK:
	case PROTO_STATUS:
		m->u.txid.txid = 8 + (uint64_t)t;
		break;
	case PROTO_STATUS_REPLY:
		m->u.status_reply.txid = 9;
		m->u.status_reply.state = PROTO_TS_NEVER_VOTED;
		m->u.status_reply.commit_ts = clk_ts_make(1, 2);
		break;
	default:
		fail_msg("no sample for type %d", (int)t);
	}
}

// The body of a sample message of type t: READ .. SAGA_FORGET.
static void
sample_data(proto_type t, proto_msg *m)
{
	switch (t) {
	case PROTO_READ:
		m->u.read.ts = clk_ts_make(1700000000777ULL, 0);
		m->u.read.n_keys = 2;
		m->u.read.keys = dtx_calloc(2, sizeof(proto_bytes));
		assert_non_null(m->u.read.keys);
		key(&m->u.read.keys[0], "a");
		key(&m->u.read.keys[1], "bb");
		m->u.read.page = 70000;
		key(&m->u.read.after, "acct:7");
		break;
	case PROTO_READ_REPLY: {
		proto_read_reply *r = &m->u.read_reply;
		r->ts = clk_ts_make(1700000000778ULL, 4);
		r->status = PROTO_READ_RETRY;
		r->blocked_txid = 1234;
		r->n_entries = 3;
		r->entries = dtx_calloc(3, sizeof(proto_entry));
		assert_non_null(r->entries);
		key(&r->entries[0].key, "a");
		r->entries[0].found = true;
		r->entries[0].ival = -900;
		key(&r->entries[1].key, "bb");
		r->entries[1].found = true;
		r->entries[1].is_bytes = true;
		ok(proto_bytes_set(&r->entries[1].bval, "xyz", 3));
		key(&r->entries[2].key, "ccc");
		key(&r->next, "ccc");
		break;
	}
	case PROTO_SAGA_SUBMIT: {
		proto_saga_submit *s = &m->u.saga_submit;
		ok(proto_str_set(&s->gid, "transfer-42"));
		s->n_steps = 2;
		s->steps = dtx_calloc(2, sizeof(proto_saga_step));
		assert_non_null(s->steps);
		s->steps[0].participant = 2;
		op_add(&s->steps[0].action, "alice", -10, 0);
		op_add(&s->steps[0].compensate, "alice", 10, INT64_MIN);
		s->steps[1].participant = 3;
		op_add(&s->steps[1].action, "bob", 10, INT64_MIN);
		op_add(&s->steps[1].compensate, "bob", -10, INT64_MIN);
		break;
	}
	case PROTO_SAGA_REPLY:
		ok(proto_str_set(&m->u.saga_reply.gid, "transfer-42"));
		m->u.saga_reply.outcome = PROTO_ABORTED;
		m->u.saga_reply.failed_step = 1;
		ok(proto_str_set(&m->u.saga_reply.reason, "balance below 0"));
		break;
	case PROTO_STEP:
		ok(proto_str_set(&m->u.step.gid, "g"));
		m->u.step.branch = 4;
		m->u.step.phase = PROTO_PHASE_COMPENSATE;
		m->u.step.n_ops = 1;
		m->u.step.ops = sample_ops(1);
		break;
	case PROTO_STEP_REPLY:
		ok(proto_str_set(&m->u.step_reply.gid, "g"));
		m->u.step_reply.branch = 4;
		m->u.step_reply.phase = PROTO_PHASE_COMPENSATE;
		m->u.step_reply.result = PROTO_STEP_REFUSED;
		m->u.step_reply.duplicate = true;
		ok(proto_str_set(&m->u.step_reply.reason, "hanging"));
		break;
	case PROTO_SAGA_STATUS:
	case PROTO_SAGA_FORGET:
		ok(proto_str_set(&m->u.gid.gid, "some-gid"));
		break;
	case PROTO_SAGA_STATUS_REPLY: {
		proto_saga_status_reply *r = &m->u.saga_status_reply;
		ok(proto_str_set(&r->gid, "some-gid"));
		r->state = PROTO_SAGA_COMPENSATING;
		r->n_steps = 3;
		r->step_states = dtx_calloc(3, 1);
		assert_non_null(r->step_states);
		r->step_states[0] = PROTO_SS_COMPENSATED;
		r->step_states[1] = PROTO_SS_FAILED;
		r->step_states[2] = PROTO_SS_PENDING;
		r->age_ms = 12345;
		ok(proto_str_set(&r->last_error, "participant 3 unreachable"));
		r->comp_ts = dtx_calloc(3, sizeof(*r->comp_ts));
		assert_non_null(r->comp_ts);
		r->comp_ts[0] = ((clk_ts)1700000000000 << 16) | 3;
		break;
	}
	case PROTO_HELLO:
		break;
	case PROTO_CHALLENGE: {
		uint8_t n[PROTO_NONCE_LEN];
		for (size_t i = 0; i < sizeof(n); i++)
			n[i] = (uint8_t)(i * 7 + 1);
		ok(proto_bytes_set(&m->u.auth.nonce, n, sizeof(n)));
		break;
	}
	case PROTO_AUTH:
		ok(proto_bytes_set(&m->u.auth.cert, "-----BEGIN", 10));
		ok(proto_bytes_set(&m->u.auth.sig, "\x30\x45\x02", 3));
		break;
	default:
		fail_msg("no sample for type %d", (int)t);
	}
}

static void sample_oper(proto_type t, proto_msg *m);
// The body of a sample TRACE or TRACE_REPLY.
static void
sample_trace(proto_type t, proto_msg *m)
{
	if (t == PROTO_TRACE) {
		m->u.trace.txid = 77;
		ok(proto_str_set(&m->u.trace.gid, "g-1"));
		return;
	}
	proto_trace_reply *r = &m->u.trace_reply;
	r->node = 3;
	r->boot = 1700000000000ULL;
	r->lost = 9;
	r->n_events = 2;
	r->events = dtx_calloc(2, sizeof(*r->events));
	assert_non_null(r->events);
	for (uint32_t i = 0; i < 2; i++) {
		proto_trace_ev *e = &r->events[i];
		e->seq = 10 + i;
		e->kind = i == 0 ? PROTO_EV_RECV : PROTO_EV_FORCE;
		e->type = i == 0 ? PROTO_PREPARE : PROTO_NONE;
		e->peer = i == 0 ? 1 : 0;
		e->peer_c = i == 0 ? (1ULL << 61) + 5 : 0;
		e->txid = 77;
		e->hlc = clk_ts_make(1700000000123ULL, i);
		e->vc.n = CLK_VC_MAX;
		e->vc.c[1] = (1ULL << 61) + 5;
		e->vc.c[3] = 12 + i;
		if (i == 1) {
			e->gid = dtx_strdup("g-1");
			e->what = dtx_strdup("PREPARED");
			e->alias = dtx_strdup("s0123-abcd");
		}
	}
}

static void
sample(proto_type t, proto_msg *m)
{
	proto_msg_init(m, t);
	m->hdr.id = 0x123456789aULL + (uint64_t)t;
	m->hdr.from = 7;
	m->hdr.hlc = clk_ts_make(1700000000123ULL, 42);
	m->hdr.vc.n = CLK_VC_MAX;
	m->hdr.vc.c[0] = 5;
	m->hdr.vc.c[7] = 1ULL << 40;
	m->hdr.vc.c[CLK_VC_MAX - 1] = 3;
	if (t <= PROTO_FAULT)
		sample_admin(t, m);
	else if (t == PROTO_TRACE || t == PROTO_TRACE_REPLY)
		sample_trace(t, m);
	else if (t >= PROTO_TXN_LIST)
		sample_oper(t, m);
	else if (t <= PROTO_STATUS_REPLY)
		sample_txn(t, m);
	else
		sample_data(t, m);
}

// ---------------------------------------------------------------- equality

static void
bytes_eq(const proto_bytes *a, const proto_bytes *b)
{
	assert_int_equal(a->n, b->n);
	if (a->n > 0)
		assert_memory_equal(a->p, b->p, a->n);
}

static void
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL) {
		assert_ptr_equal(a, b);
		return;
	}
	assert_string_equal(a, b);
}

// Two arrays of scalars, nx and ny long, with the same elements.
#define SCALARS_EQ(x, nx, y, ny)                                               \
	do {                                                                   \
		assert_int_equal((nx), (ny));                                  \
		for (uint32_t i_ = 0; i_ < (nx); i_++)                         \
			assert_true((x)[i_] == (y)[i_]);                       \
	} while (0)

static void
op_eq(const proto_op *a, const proto_op *b)
{
	assert_int_equal(a->kind, b->kind);
	bytes_eq(&a->key, &b->key);
	assert_true(a->delta == b->delta);
	assert_true(a->min == b->min);
	bytes_eq(&a->value, &b->value);
}

static void
ops_eq(const proto_op *a, uint32_t na, const proto_op *b, uint32_t nb)
{
	assert_int_equal(na, nb);
	for (uint32_t i = 0; i < na; i++)
		op_eq(&a[i], &b[i]);
}

static void msg_eq(const proto_msg *a, const proto_msg *b);

// body_eq for ERROR .. FAULT.
static void
eq_admin(const proto_msg *a, const proto_msg *b)
{
	switch (a->hdr.type) {
	case PROTO_ERROR:
		assert_int_equal(a->u.error.code, b->u.error.code);
		str_eq(a->u.error.reason, b->u.error.reason);
		break;
	case PROTO_BATCH:
		assert_int_equal(a->u.batch.n, b->u.batch.n);
		for (uint32_t i = 0; i < a->u.batch.n; i++)
			msg_eq(&a->u.batch.msgs[i], &b->u.batch.msgs[i]);
		break;
	case PROTO_HEALTH_REPLY: {
		const proto_health_reply *x = &a->u.health_reply;
		const proto_health_reply *y = &b->u.health_reply;
		str_eq(x->role, y->role);
		assert_int_equal(x->node, y->node);
		str_eq(x->state, y->state);
		assert_true(x->in_doubt == y->in_doubt);
		SCALARS_EQ(x->blocked, x->n_blocked, y->blocked, y->n_blocked);
		assert_int_equal(x->n_counters, y->n_counters);
		for (uint32_t i = 0; i < x->n_counters; i++) {
			str_eq(x->counters[i].name, y->counters[i].name);
			assert_true(
			    x->counters[i].value == y->counters[i].value);
		}
		break;
	}
	case PROTO_FAULT:
		str_eq(a->u.fault.kind, b->u.fault.kind);
		SCALARS_EQ(a->u.fault.args, a->u.fault.n_args, b->u.fault.args,
		    b->u.fault.n_args);
		str_eq(a->u.fault.arg, b->u.fault.arg);
		break;
	default:
		break;
	}
}

// body_eq for TXN .. STATUS_REPLY.
static void
eq_txn(const proto_msg *a, const proto_msg *b)
{
	switch (a->hdr.type) {
	case PROTO_TXN:
		assert_int_equal(a->u.txn.mode, b->u.txn.mode);
		assert_true(a->u.txn.txid == b->u.txn.txid);
		ops_eq(
		    a->u.txn.ops, a->u.txn.n_ops, b->u.txn.ops, b->u.txn.n_ops);
		break;
	case PROTO_TXN_REPLY: {
		const proto_txn_reply *x = &a->u.txn_reply;
		const proto_txn_reply *y = &b->u.txn_reply;
		assert_int_equal(x->outcome, y->outcome);
		str_eq(x->reason, y->reason);
		assert_true(x->txid == y->txid);
		assert_true(x->commit_ts == y->commit_ts);
		SCALARS_EQ(x->results, x->n_results, y->results, y->n_results);
		break;
	}
	case PROTO_PREPARE:
	case PROTO_CAN_COMMIT: {
		const proto_prepare *x = &a->u.prepare;
		const proto_prepare *y = &b->u.prepare;
		assert_true(x->txid == y->txid);
		assert_int_equal(x->mode, y->mode);
		assert_int_equal(x->coord, y->coord);
		SCALARS_EQ(x->peers, x->n_peers, y->peers, y->n_peers);
		ops_eq(x->ops, x->n_ops, y->ops, y->n_ops);
		break;
	}
	case PROTO_VOTE:
		assert_true(a->u.vote.txid == b->u.vote.txid);
		assert_int_equal(a->u.vote.yes, b->u.vote.yes);
		str_eq(a->u.vote.reason, b->u.vote.reason);
		assert_true(a->u.vote.prepare_ts == b->u.vote.prepare_ts);
		break;
	case PROTO_COMMIT:
	case PROTO_PRE_COMMIT:
	case PROTO_ABORT:
	case PROTO_DO_COMMIT:
	case PROTO_ACK:
	case PROTO_STATUS:
		assert_true(a->u.txid.txid == b->u.txid.txid);
		assert_true(a->u.txid.commit_ts == b->u.txid.commit_ts);
		break;
	case PROTO_STATUS_REPLY:
		assert_true(a->u.status_reply.txid == b->u.status_reply.txid);
		assert_int_equal(
		    a->u.status_reply.state, b->u.status_reply.state);
		assert_true(
		    a->u.status_reply.commit_ts == b->u.status_reply.commit_ts);
		break;
	default:
		break;
	}
}

// body_eq for READ .. SAGA_FORGET.
static void
eq_data(const proto_msg *a, const proto_msg *b)
{
	switch (a->hdr.type) {
	case PROTO_READ:
		assert_true(a->u.read.ts == b->u.read.ts);
		assert_int_equal(a->u.read.n_keys, b->u.read.n_keys);
		for (uint32_t i = 0; i < a->u.read.n_keys; i++)
			bytes_eq(&a->u.read.keys[i], &b->u.read.keys[i]);
		assert_int_equal(a->u.read.page, b->u.read.page);
		bytes_eq(&a->u.read.after, &b->u.read.after);
		break;
	case PROTO_READ_REPLY: {
		const proto_read_reply *x = &a->u.read_reply;
		const proto_read_reply *y = &b->u.read_reply;
		assert_true(x->ts == y->ts);
		assert_int_equal(x->status, y->status);
		assert_true(x->blocked_txid == y->blocked_txid);
		assert_int_equal(x->n_entries, y->n_entries);
		for (uint32_t i = 0; i < x->n_entries; i++) {
			const proto_entry *e = &x->entries[i];
			const proto_entry *f = &y->entries[i];
			bytes_eq(&e->key, &f->key);
			assert_int_equal(e->found, f->found);
			assert_int_equal(e->is_bytes, f->is_bytes);
			assert_true(e->ival == f->ival);
			bytes_eq(&e->bval, &f->bval);
		}
		bytes_eq(&x->next, &y->next);
		break;
	}
	case PROTO_SAGA_SUBMIT: {
		const proto_saga_submit *x = &a->u.saga_submit;
		const proto_saga_submit *y = &b->u.saga_submit;
		str_eq(x->gid, y->gid);
		assert_int_equal(x->n_steps, y->n_steps);
		for (uint32_t i = 0; i < x->n_steps; i++) {
			assert_int_equal(
			    x->steps[i].participant, y->steps[i].participant);
			op_eq(&x->steps[i].action, &y->steps[i].action);
			op_eq(&x->steps[i].compensate, &y->steps[i].compensate);
		}
		break;
	}
	case PROTO_SAGA_REPLY:
		str_eq(a->u.saga_reply.gid, b->u.saga_reply.gid);
		assert_int_equal(
		    a->u.saga_reply.outcome, b->u.saga_reply.outcome);
		assert_int_equal(
		    a->u.saga_reply.failed_step, b->u.saga_reply.failed_step);
		str_eq(a->u.saga_reply.reason, b->u.saga_reply.reason);
		break;
	case PROTO_STEP:
		str_eq(a->u.step.gid, b->u.step.gid);
		assert_int_equal(a->u.step.branch, b->u.step.branch);
		assert_int_equal(a->u.step.phase, b->u.step.phase);
		ops_eq(a->u.step.ops, a->u.step.n_ops, b->u.step.ops,
		    b->u.step.n_ops);
		break;
	case PROTO_STEP_REPLY: {
		const proto_step_reply *x = &a->u.step_reply;
		const proto_step_reply *y = &b->u.step_reply;
		str_eq(x->gid, y->gid);
		assert_int_equal(x->branch, y->branch);
		assert_int_equal(x->phase, y->phase);
		assert_int_equal(x->result, y->result);
		assert_int_equal(x->duplicate, y->duplicate);
		str_eq(x->reason, y->reason);
		break;
	}
	case PROTO_SAGA_STATUS:
	case PROTO_SAGA_FORGET:
		str_eq(a->u.gid.gid, b->u.gid.gid);
		break;
	case PROTO_CHALLENGE:
	case PROTO_AUTH: {
		const proto_auth *x = &a->u.auth, *y = &b->u.auth;
		assert_int_equal(x->nonce.n, y->nonce.n);
		assert_int_equal(x->cert.n, y->cert.n);
		assert_int_equal(x->sig.n, y->sig.n);
		if (x->nonce.n > 0)
			assert_memory_equal(x->nonce.p, y->nonce.p, x->nonce.n);
		if (x->cert.n > 0)
			assert_memory_equal(x->cert.p, y->cert.p, x->cert.n);
		if (x->sig.n > 0)
			assert_memory_equal(x->sig.p, y->sig.p, x->sig.n);
		break;
	}
	case PROTO_SAGA_STATUS_REPLY: {
		const proto_saga_status_reply *x = &a->u.saga_status_reply;
		const proto_saga_status_reply *y = &b->u.saga_status_reply;
		str_eq(x->gid, y->gid);
		assert_int_equal(x->state, y->state);
		assert_int_equal(x->n_steps, y->n_steps);
		if (x->n_steps > 0)
			assert_memory_equal(
			    x->step_states, y->step_states, x->n_steps);
		assert_true(x->age_ms == y->age_ms);
		str_eq(x->last_error, y->last_error);
		assert_int_equal(x->comp_ts == NULL, y->comp_ts == NULL);
		if (x->comp_ts != NULL)
			assert_memory_equal(x->comp_ts, y->comp_ts,
			    x->n_steps * sizeof(*x->comp_ts));
		break;
	}
	default:
		break;
	}
}

#include "proto_codec_oper.h"

static void
eq_trace(const proto_msg *a, const proto_msg *b)
{
	if (a->hdr.type == PROTO_TRACE) {
		assert_true(a->u.trace.txid == b->u.trace.txid);
		str_eq(a->u.trace.gid, b->u.trace.gid);
		return;
	}
	const proto_trace_reply *x = &a->u.trace_reply, *y = &b->u.trace_reply;
	assert_int_equal(x->node, y->node);
	assert_true(x->boot == y->boot && x->lost == y->lost);
	assert_int_equal(x->n_events, y->n_events);
	for (uint32_t i = 0; i < x->n_events; i++) {
		const proto_trace_ev *e = &x->events[i], *f = &y->events[i];
		assert_true(e->seq == f->seq && e->peer_c == f->peer_c &&
		    e->txid == f->txid && e->hlc == f->hlc);
		assert_int_equal(e->kind, f->kind);
		assert_int_equal(e->type, f->type);
		assert_int_equal(e->peer, f->peer);
		assert_int_equal(e->vc.n, f->vc.n);
		SCALARS_EQ(e->vc.c, CLK_VC_MAX, f->vc.c, CLK_VC_MAX);
		str_eq(e->gid, f->gid);
		str_eq(e->what, f->what);
		str_eq(e->alias, f->alias);
	}
}

static void
body_eq(const proto_msg *a, const proto_msg *b)
{
	if (a->hdr.type == PROTO_TRACE || a->hdr.type == PROTO_TRACE_REPLY)
		eq_trace(a, b);
	else if (a->hdr.type <= PROTO_FAULT)
		eq_admin(a, b);
	else if (a->hdr.type >= PROTO_TXN_LIST)
		eq_oper(a, b);
	else if (a->hdr.type <= PROTO_STATUS_REPLY)
		eq_txn(a, b);
	else
		eq_data(a, b);
}

static void
msg_eq(const proto_msg *a, const proto_msg *b)
{
	assert_int_equal(a->hdr.version, b->hdr.version);
	assert_int_equal(a->hdr.type, b->hdr.type);
	assert_true(a->hdr.id == b->hdr.id);
	assert_int_equal(a->hdr.from, b->hdr.from);
	assert_true(a->hdr.hlc == b->hdr.hlc);
	assert_int_equal(a->hdr.vc.n, b->hdr.vc.n);
	SCALARS_EQ(a->hdr.vc.c, CLK_VC_MAX, b->hdr.vc.c, CLK_VC_MAX);
	body_eq(a, b);
}

// A sample message (as sample) and its encoding.
typedef struct encoded {
	proto_msg m;
	uint8_t *buf;
	size_t len;
} encoded;

static void
encoded_init(encoded *e, proto_type t)
{
	sample(t, &e->m);
	ok(proto_encode_buf(&e->m, &e->buf, &e->len));
}

static void
encoded_fini(encoded *e)
{
	proto_msg_free(&e->m);
	dtx_free(e->buf);
}

// Decodes len bytes that may be damaged: the outcome is a message or
// DTX_EPROTO, nothing else. A message is freed, after encoding it again
// when reencode. Returns whether it was a message.
static bool
decode_damaged(const uint8_t *p, size_t len, bool reencode)
{
	proto_msg d;
	dtx_err err = proto_decode(p, len, NULL, &d, NULL, 0);
	if (err != DTX_OK) {
		assert_int_equal(err, DTX_EPROTO);
		return false;
	}
	if (reencode) {
		uint8_t *again;
		size_t alen;
		ok(proto_encode_buf(&d, &again, &alen));
		dtx_free(again);
	}
	proto_msg_free(&d);
	return true;
}

// ---------------------------------------------------------------- tests

static void
test_round_trip_every_type(void **state)
{
	(void)state;
	for (int t = PROTO_NONE + 1; t < PROTO_TYPE_COUNT; t++) {
		encoded s;
		encoded_init(&s, (proto_type)t);
		proto_msg d;
		char why[256];
		dtx_err err =
		    proto_decode(s.buf, s.len, NULL, &d, why, sizeof(why));
		if (err != DTX_OK)
			fail_msg("%s: %s", proto_type_name((proto_type)t), why);
		msg_eq(&s.m, &d);

		// The nng path produces the same bytes.
		nng_msg *nm;
		assert_int_equal(nng_msg_alloc(&nm, 0), 0);
		ok(proto_encode(&d, nm));
		assert_int_equal(nng_msg_len(nm), s.len);
		assert_memory_equal(nng_msg_body(nm), s.buf, s.len);
		proto_msg e;
		ok(proto_decode_nng(nm, NULL, &e, NULL, 0));
		msg_eq(&s.m, &e);
		nng_msg_free(nm);

		proto_msg_free(&e);
		proto_msg_free(&d);
		encoded_fini(&s);
	}
}

static void
test_type_names(void **state)
{
	(void)state;
	assert_string_equal(proto_type_name(PROTO_PREPARE), "prepare");
	assert_string_equal(proto_type_name(PROTO_ERROR), "error");
	assert_string_equal(proto_type_name(PROTO_TYPE_COUNT), "?");
	for (int t = PROTO_NONE + 1; t < PROTO_TYPE_COUNT; t++)
		for (int u = t + 1; u < PROTO_TYPE_COUNT; u++)
			assert_string_not_equal(proto_type_name((proto_type)t),
			    proto_type_name((proto_type)u));
}

// Every proper prefix is an error; every single-bit flip is an error or a
// message that can itself be encoded again.
static void
test_truncate_and_flip(void **state)
{
	(void)state;
	size_t decoded_ok = 0, rejected = 0;
	for (int t = PROTO_NONE + 1; t < PROTO_TYPE_COUNT; t++) {
		encoded s;
		encoded_init(&s, (proto_type)t);
		for (size_t cut = 0; cut < s.len; cut++) {
			// A fresh exact-size copy so ASan sees any overread.
			uint8_t *p = malloc(cut ? cut : 1);
			memcpy(p, s.buf, cut);
			proto_msg d;
			dtx_err err = proto_decode(p, cut, NULL, &d, NULL, 0);
			assert_int_equal(err, DTX_EPROTO);
			free(p);
		}
		uint8_t *p = malloc(s.len);
		for (size_t bit = 0; bit < s.len * 8; bit++) {
			memcpy(p, s.buf, s.len);
			p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			if (decode_damaged(p, s.len, true))
				decoded_ok++;
			else
				rejected++;
		}
		free(p);
		encoded_fini(&s);
	}
	// Both outcomes occur: flips inside values keep messages valid,
	// flips in structure break them.
	assert_true(decoded_ok > 0);
	assert_true(rejected > 0);
}

static void
test_decode_out_of_memory(void **state)
{
	(void)state;
	for (int t = PROTO_NONE + 1; t < PROTO_TYPE_COUNT; t++) {
		encoded s;
		encoded_init(&s, (proto_type)t);
		long n;
		for (n = 0;; n++) {
			proto_msg d;
			dtx_alloc_fail_after(n);
			dtx_err err =
			    proto_decode(s.buf, s.len, NULL, &d, NULL, 0);
			bool failed = dtx_alloc_failed();
			dtx_alloc_fail_after(-1);
			if (!failed) {
				ok(err);
				msg_eq(&s.m, &d);
				proto_msg_free(&d);
				break;
			}
			assert_int_equal(err, DTX_ENOMEM);
		}
		// Types with a body that owns memory need allocations.
		if (t == PROTO_BATCH)
			assert_true(n > 10);
		encoded_fini(&s);
	}
}

static void
test_encode_out_of_memory(void **state)
{
	(void)state;
	proto_msg m;
	sample(PROTO_BATCH, &m);
	for (long n = 0;; n++) {
		uint8_t *buf = NULL;
		size_t len = 0;
		dtx_alloc_fail_after(n);
		dtx_err err = proto_encode_buf(&m, &buf, &len);
		bool failed = dtx_alloc_failed();
		dtx_alloc_fail_after(-1);
		if (!failed) {
			ok(err);
			dtx_free(buf);
			break;
		}
		assert_int_equal(err, DTX_ENOMEM);
	}
	proto_msg_free(&m);
}

// ---------------------------------------------------------------- invalid

// A hand-made message: the caller packs the map.
typedef struct raw {
	msgpack_sbuffer sb;
	msgpack_packer pk;
} raw;

static void
raw_init(raw *r)
{
	msgpack_sbuffer_init(&r->sb);
	msgpack_packer_init(&r->pk, &r->sb, msgpack_sbuffer_write);
}

static void
pk_str(raw *r, const char *s)
{
	msgpack_pack_str_with_body(&r->pk, s, strlen(s));
}

static void
pk_kv_u(raw *r, const char *k, uint64_t v)
{
	pk_str(r, k);
	msgpack_pack_uint64(&r->pk, v);
}

// Packs key k with a timestamp [l, c].
static void
pk_kv_ts(raw *r, const char *k, uint64_t l, uint64_t c)
{
	pk_str(r, k);
	msgpack_pack_array(&r->pk, 2);
	msgpack_pack_uint64(&r->pk, l);
	msgpack_pack_uint64(&r->pk, c);
}

// Packs the header keys except the one named skip (NULL: none).
static void
pk_header(raw *r, uint64_t version, const char *type, const char *skip)
{
	if (skip == NULL || strcmp(skip, "v") != 0)
		pk_kv_u(r, "v", version);
	if (skip == NULL || strcmp(skip, "t") != 0) {
		pk_str(r, "t");
		pk_str(r, type);
	}
	if (skip == NULL || strcmp(skip, "id") != 0)
		pk_kv_u(r, "id", 1);
	if (skip == NULL || strcmp(skip, "from") != 0)
		pk_kv_u(r, "from", 2);
	if (skip == NULL || strcmp(skip, "hlc") != 0)
		pk_kv_ts(r, "hlc", 100, 1);
	if (skip == NULL || strcmp(skip, "vc") != 0) {
		pk_str(r, "vc");
		msgpack_pack_map(&r->pk, 1);
		msgpack_pack_uint32(&r->pk, 2);
		msgpack_pack_uint64(&r->pk, 9);
	}
}

// Starts a message map of nfields fields (the header's included) of
// the given type name and version in a fresh r, without the header key
// skip (NULL: none).
static void
pk_msg_hdr(raw *r, uint32_t nfields, uint64_t version, const char *type,
    const char *skip)
{
	raw_init(r);
	msgpack_pack_map(&r->pk, nfields);
	pk_header(r, version, type, skip);
}

// The same for a version 1 message with the whole header.
static void
pk_msg(raw *r, uint32_t nfields, const char *type)
{
	pk_msg_hdr(r, nfields, 1, type, NULL);
}

// Decodes r and expects DTX_EPROTO with a reason containing want.
static void
expect_reject(raw *r, const proto_limits *lim, const char *want)
{
	proto_msg m;
	char why[256];
	dtx_err err =
	    proto_decode(r->sb.data, r->sb.size, lim, &m, why, sizeof(why));
	if (err != DTX_EPROTO)
		fail_msg("expected DTX_EPROTO for '%s', got %s", want,
		    dtx_errname(err));
	if (strstr(why, want) == NULL)
		fail_msg("reason '%s' does not name '%s'", why, want);
	msgpack_sbuffer_destroy(&r->sb);
}

static void
expect_accept(raw *r)
{
	proto_msg m;
	char why[256];
	dtx_err err =
	    proto_decode(r->sb.data, r->sb.size, NULL, &m, why, sizeof(why));
	if (err != DTX_OK)
		fail_msg("valid message rejected: %s", why);
	proto_msg_free(&m);
	msgpack_sbuffer_destroy(&r->sb);
}

static void
test_invalid_header(void **state)
{
	(void)state;
	raw r;

	// The control: a valid hand-made ACK is accepted.
	pk_msg(&r, 7, "ack");
	pk_kv_u(&r, "tx", 5);
	expect_accept(&r);

	pk_msg_hdr(&r, 7, 2, "ack", NULL); // wrong version
	pk_kv_u(&r, "tx", 5);
	expect_reject(&r, NULL, "version 2");

	pk_msg(&r, 6, "bogus"); // unknown type
	expect_reject(&r, NULL, "unknown type 'bogus'");

	pk_msg_hdr(&r, 6, 1, "ack", "hlc"); // missing header field
	pk_kv_u(&r, "tx", 5);
	expect_reject(&r, NULL, "missing key 'hlc'");

	pk_msg(&r, 6, "ack"); // missing body field
	expect_reject(&r, NULL, "missing key 'tx'");

	pk_msg(&r, 7, "ack"); // wrong type
	pk_str(&r, "tx");
	pk_str(&r, "five");
	expect_reject(&r, NULL, "'tx': expected int, got str");

	pk_msg(&r, 7, "ack"); // negative where unsigned
	pk_str(&r, "tx");
	msgpack_pack_int64(&r.pk, -3);
	expect_reject(&r, NULL, "'tx': value -3 is negative");

	pk_msg(&r, 7, "ack"); // nil is never valid
	pk_str(&r, "tx");
	msgpack_pack_nil(&r.pk);
	expect_reject(&r, NULL, "got nil");

	pk_msg(&r, 9, "status_reply"); // out of range enum
	pk_kv_u(&r, "tx", 5);
	pk_kv_u(&r, "st", 6);
	pk_kv_ts(&r, "cts", 1, 1);
	expect_reject(&r, NULL, "'st': value 6 out of range");

	pk_msg_hdr(&r, 7, 1, "ack", "from"); // from over uint32
	pk_kv_u(&r, "from", 1ULL << 32);
	pk_kv_u(&r, "tx", 5);
	expect_reject(&r, NULL, "'from': value 4294967296 out of range");

	pk_msg(&r, 7, "ping"); // unknown key
	pk_kv_u(&r, "zz", 1);
	expect_reject(&r, NULL, "unknown key 'zz'");

	pk_msg(&r, 8, "abort"); // a key of another type is unknown here
	pk_kv_u(&r, "tx", 5);
	pk_kv_ts(&r, "cts", 1, 1);
	expect_reject(&r, NULL, "unknown key 'cts'");

	pk_msg(&r, 8, "ack"); // duplicate key
	pk_kv_u(&r, "tx", 5);
	pk_kv_u(&r, "id", 6);
	expect_reject(&r, NULL, "duplicate key 'id'");

	pk_msg(&r, 7, "ack"); // trailing bytes
	pk_kv_u(&r, "tx", 5);
	msgpack_pack_uint8(&r.pk, 0);
	msgpack_pack_uint8(&r.pk, 0);
	expect_reject(&r, NULL, "2 trailing bytes");

	pk_msg(&r, 7, "ack"); // oversized for the configured limit
	pk_kv_u(&r, "tx", 5);
	proto_limits small = { .max_msg = 16 };
	expect_reject(&r, &small, "over the limit of 16");

	raw_init(&r); // not a map at all
	msgpack_pack_array(&r.pk, 1);
	msgpack_pack_uint8(&r.pk, 1);
	expect_reject(&r, NULL, "expected map, got array");

	pk_msg(&r, 7, "ack"); // a map key that is not a str
	msgpack_pack_uint8(&r.pk, 1);
	msgpack_pack_uint8(&r.pk, 1);
	expect_reject(&r, NULL, "map key is int");

	// vc with a node id beyond the cluster
	pk_msg_hdr(&r, 7, 1, "ack", "vc");
	pk_str(&r, "vc");
	msgpack_pack_map(&r.pk, 1);
	msgpack_pack_uint32(&r.pk, 5);
	msgpack_pack_uint64(&r.pk, 1);
	pk_kv_u(&r, "tx", 5);
	proto_limits four = { .vc_nodes = 4 };
	expect_reject(&r, &four, "'vc': node id not below 4");

	pk_msg_hdr(&r, 7, 1, "ack", "hlc"); // hlc is not a pair
	pk_str(&r, "hlc");
	msgpack_pack_array(&r.pk, 3);
	for (int i = 0; i < 3; i++)
		msgpack_pack_uint8(&r.pk, 1);
	pk_kv_u(&r, "tx", 5);
	expect_reject(&r, NULL, "must be [l, c], got 3");

	pk_msg(&r, PROTO_MAX_FIELDS + 1, "ping"); // too many keys in one map
	for (int i = 0; i < PROTO_MAX_FIELDS + 1 - 6; i++) {
		char k[8];
		snprintf(k, sizeof(k), "k%d", i);
		pk_kv_u(&r, k, 1);
	}
	expect_reject(&r, NULL, "more than the limit");

	pk_msg(&r, 7, "ping"); // nesting deeper than the limit
	pk_str(&r, "deep");
	for (int i = 0; i < PROTO_MAX_DEPTH + 2; i++)
		msgpack_pack_array(&r.pk, 1);
	msgpack_pack_uint8(&r.pk, 1);
	expect_reject(&r, NULL, "nested deeper");
}

// A TXN whose ops array claims n_ops elements; fn writes the first
// n_written of them.
static void
pk_txn_n(
    raw *r, uint32_t n_ops, uint32_t n_written, void (*fn)(raw *, uint32_t))
{
	pk_msg(r, 8, "txn");
	pk_kv_u(r, "m", 0);
	pk_str(r, "ops");
	msgpack_pack_array(&r->pk, n_ops);
	for (uint32_t i = 0; i < n_written; i++)
		fn(r, i);
}

static void
pk_txn(raw *r, uint32_t n_ops, void (*fn)(raw *, uint32_t))
{
	pk_txn_n(r, n_ops, n_ops, fn);
}

// Starts an op map of nfields fields with kind "o", key "k" (bytes "k")
// and delta "d".
static void
pk_op_kd(raw *r, uint32_t nfields, uint64_t kind, int64_t d)
{
	msgpack_pack_map(&r->pk, nfields);
	pk_kv_u(r, "o", kind);
	pk_str(r, "k");
	msgpack_pack_bin_with_body(&r->pk, "k", 1);
	pk_str(r, "d");
	msgpack_pack_int64(&r->pk, d);
}

static void
good_op(raw *r, uint32_t i)
{
	(void)i;
	pk_op_kd(r, 4, PROTO_OP_ADD, -1);
	pk_str(r, "m");
	msgpack_pack_int64(&r->pk, 0);
}

static void
long_key_op(raw *r, uint32_t i)
{
	(void)i;
	char k[PROTO_MAX_KEY + 1];
	memset(k, 'x', sizeof(k));
	msgpack_pack_map(&r->pk, 2);
	pk_kv_u(r, "o", PROTO_OP_GET);
	pk_str(r, "k");
	msgpack_pack_bin_with_body(&r->pk, k, sizeof(k));
}

static void
get_with_delta_op(raw *r, uint32_t i)
{
	(void)i;
	pk_op_kd(r, 3, PROTO_OP_GET, 1);
}

static void
add_without_min_op(raw *r, uint32_t i)
{
	(void)i;
	pk_op_kd(r, 3, PROTO_OP_ADD, 1);
}

static void
append_op(raw *r, uint32_t i)
{
	(void)i;
	pk_op_kd(r, 3, PROTO_OP_APPEND, 42);
}

static void
append_without_elem_op(raw *r, uint32_t i)
{
	(void)i;
	msgpack_pack_map(&r->pk, 2);
	pk_kv_u(r, "o", PROTO_OP_APPEND);
	pk_str(r, "k");
	msgpack_pack_bin_with_body(&r->pk, "k", 1);
}

static void
append_with_min_op(raw *r, uint32_t i)
{
	(void)i;
	pk_op_kd(r, 4, PROTO_OP_APPEND, 1);
	pk_str(r, "m");
	msgpack_pack_int64(&r->pk, 0);
}

static void
kind_past_append_op(raw *r, uint32_t i)
{
	(void)i;
	msgpack_pack_map(&r->pk, 2);
	pk_kv_u(r, "o", PROTO_OP_APPEND + 1);
	pk_str(r, "k");
	msgpack_pack_bin_with_body(&r->pk, "k", 1);
}

static void
str_key_op(raw *r, uint32_t i)
{
	(void)i;
	msgpack_pack_map(&r->pk, 2);
	pk_kv_u(r, "o", PROTO_OP_GET);
	pk_str(r, "k");
	pk_str(r, "k");
}

static void
test_invalid_body(void **state)
{
	(void)state;
	raw r;
	pk_txn(&r, 2, good_op);
	expect_accept(&r);
	pk_txn(&r, PROTO_MAX_OPS, good_op);
	expect_accept(&r);
	pk_txn(&r, PROTO_MAX_OPS + 1, good_op);
	expect_reject(&r, NULL, "'ops': 65 elements, allowed 1..64");
	pk_txn(&r, 0, good_op);
	expect_reject(&r, NULL, "'ops': 0 elements");
	pk_txn(&r, 1, long_key_op);
	expect_reject(&r, NULL, "'k': bin of 257 bytes");
	pk_txn(&r, 1, get_with_delta_op);
	expect_reject(&r, NULL, "op: unknown key 'd'");
	pk_txn(&r, 1, add_without_min_op);
	expect_reject(&r, NULL, "op: missing key 'm'");
	pk_txn(&r, 1, str_key_op);
	expect_reject(&r, NULL, "'k': expected bin, got str");
	// APPEND: "o" 3 with the element in "d", nothing else.
	pk_txn(&r, 3, append_op);
	expect_accept(&r);
	pk_txn(&r, 1, append_without_elem_op);
	expect_reject(&r, NULL, "op: missing key 'd'");
	pk_txn(&r, 1, append_with_min_op);
	expect_reject(&r, NULL, "op: unknown key 'm'");
	pk_txn(&r, 1, kind_past_append_op);
	expect_reject(&r, NULL, "'o'");

	// A count larger than the bytes that follow.
	pk_txn_n(&r, 60000, 10, good_op);
	expect_reject(&r, NULL, "truncated");

	// A batch inside a batch.
	pk_msg(&r, 7, "batch");
	pk_str(&r, "msgs");
	msgpack_pack_array(&r.pk, 1);
	msgpack_pack_map(&r.pk, 7);
	pk_header(&r, 1, "batch", NULL);
	pk_str(&r, "msgs");
	msgpack_pack_array(&r.pk, 0);
	expect_reject(&r, NULL, "batch inside a batch");

	// A string with a NUL inside.
	pk_msg(&r, 7, "saga_forget");
	pk_str(&r, "gid");
	msgpack_pack_str_with_body(&r.pk, "a\0b", 3);
	expect_reject(&r, NULL, "NUL");

	// An empty gid.
	pk_msg(&r, 7, "saga_forget");
	pk_str(&r, "gid");
	pk_str(&r, "");
	expect_reject(&r, NULL, "'gid': str of 0 bytes");

	// An error code that is not an error.
	pk_msg(&r, 7, "error");
	pk_kv_u(&r, "code", 0);
	expect_reject(&r, NULL, "0 is not an error");

	// A found entry without a value.
	pk_msg(&r, 10, "read_reply");
	pk_kv_ts(&r, "ts", 1, 1);
	pk_kv_u(&r, "st", 0);
	pk_kv_u(&r, "btx", 0);
	pk_str(&r, "ents");
	msgpack_pack_array(&r.pk, 1);
	msgpack_pack_map(&r.pk, 2);
	pk_str(&r, "k");
	msgpack_pack_bin_with_body(&r.pk, "k", 1);
	pk_str(&r, "f");
	msgpack_pack_true(&r.pk);
	expect_reject(&r, NULL, "found but neither");
}

// A READ's page size and cursor and a READ_REPLY's next cursor are
// optional: without them both encode as before paging existed (the keys
// are simply absent) and decode to 0 / empty; present they round-trip
// (test_round_trip_every_type); out of range they are refused by both
// sides.
static void
test_read_paging_fields(void **state)
{
	(void)state;
	proto_msg m, d;
	uint8_t *buf;
	size_t len;
	proto_msg_init(&m, PROTO_READ);
	ok(proto_encode_buf(&m, &buf, &len));
	// 6 header keys + "ts" + "keys": no "pg", no "aft".
	assert_int_equal(buf[0], 0x80 | 8);
	ok(proto_decode(buf, len, NULL, &d, NULL, 0));
	assert_int_equal(d.u.read.page, 0);
	assert_int_equal(d.u.read.after.n, 0);
	assert_null(d.u.read.after.p);
	proto_msg_free(&d);
	dtx_free(buf);
	proto_msg_init(&m, PROTO_READ_REPLY);
	ok(proto_encode_buf(&m, &buf, &len));
	assert_int_equal(buf[0], 0x80 | 10);
	ok(proto_decode(buf, len, NULL, &d, NULL, 0));
	assert_int_equal(d.u.read_reply.next.n, 0);
	proto_msg_free(&d);
	dtx_free(buf);

	// A page bound of UINT32_MAX is the largest the wire takes.
	raw r;
	pk_msg(&r, 9, "read");
	pk_kv_ts(&r, "ts", 1, 0);
	pk_str(&r, "keys");
	msgpack_pack_array(&r.pk, 0);
	pk_kv_u(&r, "pg", UINT32_MAX);
	expect_accept(&r);
	pk_msg(&r, 9, "read");
	pk_kv_ts(&r, "ts", 1, 0);
	pk_str(&r, "keys");
	msgpack_pack_array(&r.pk, 0);
	pk_kv_u(&r, "pg", (uint64_t)UINT32_MAX + 1);
	expect_reject(&r, NULL, "'pg'");
	pk_msg(&r, 9, "read");
	pk_kv_ts(&r, "ts", 1, 0);
	pk_str(&r, "keys");
	msgpack_pack_array(&r.pk, 0);
	pk_str(&r, "aft");
	msgpack_pack_bin_with_body(&r.pk, "", 0);
	expect_reject(&r, NULL, "'aft': bin of 0 bytes");
	char big[PROTO_MAX_KEY + 1];
	memset(big, 'k', sizeof(big));
	pk_msg(&r, 11, "read_reply");
	pk_kv_ts(&r, "ts", 1, 1);
	pk_kv_u(&r, "st", 0);
	pk_kv_u(&r, "btx", 0);
	pk_str(&r, "ents");
	msgpack_pack_array(&r.pk, 0);
	pk_str(&r, "nxt");
	msgpack_pack_bin_with_body(&r.pk, big, sizeof(big));
	expect_reject(&r, NULL, "'nxt': bin of 257 bytes");
	pk_msg(&r, 11, "read_reply");
	pk_kv_ts(&r, "ts", 1, 1);
	pk_kv_u(&r, "st", 0);
	pk_kv_u(&r, "btx", 0);
	pk_str(&r, "ents");
	msgpack_pack_array(&r.pk, 0);
	pk_str(&r, "nxt");
	msgpack_pack_bin_with_body(&r.pk, big, PROTO_MAX_KEY);
	expect_accept(&r);

	// The encoder refuses a cursor the decoder would.
	proto_msg_init(&m, PROTO_READ);
	m.u.read.page = 1;
	m.u.read.after = (proto_bytes) { (uint8_t *)big, sizeof(big) };
	assert_int_equal(proto_encode_buf(&m, &buf, &len), DTX_EINVAL);
	proto_msg_init(&m, PROTO_READ_REPLY);
	m.u.read_reply.next = (proto_bytes) { (uint8_t *)big, sizeof(big) };
	assert_int_equal(proto_encode_buf(&m, &buf, &len), DTX_EINVAL);
}

// The encoder refuses what the decoder would reject.
// A TXN may carry the client's transaction id ("tx", optional, never 0):
// it round-trips when present, is absent (0) otherwise, and 0 on the wire
// is refused.
static void
test_txn_client_txid(void **state)
{
	(void)state;
	for (int with = 0; with < 2; with++) {
		encoded s;
		encoded_init(&s, PROTO_TXN);
		if (with) {
			dtx_free(s.buf);
			s.m.u.txn.txid = UINT64_C(0xfedcba9876543210);
			ok(proto_encode_buf(&s.m, &s.buf, &s.len));
		}
		proto_msg d;
		ok(proto_decode(s.buf, s.len, NULL, &d, NULL, 0));
		assert_true(
		    d.u.txn.txid == (with ? UINT64_C(0xfedcba9876543210) : 0));
		msg_eq(&s.m, &d);
		proto_msg_free(&d);
		encoded_fini(&s);
	}
	raw r;
	pk_msg(&r, 9, "txn");
	pk_kv_u(&r, "m", 0);
	pk_str(&r, "ops");
	msgpack_pack_array(&r.pk, 1);
	good_op(&r, 0);
	pk_kv_u(&r, "tx", 42);
	expect_accept(&r);
	pk_msg(&r, 9, "txn");
	pk_kv_u(&r, "m", 0);
	pk_str(&r, "ops");
	msgpack_pack_array(&r.pk, 1);
	good_op(&r, 0);
	pk_kv_u(&r, "tx", 0);
	expect_reject(&r, NULL, "0 is no transaction id");
}

static void
test_encoder_checks(void **state)
{
	(void)state;
	uint8_t *buf;
	size_t len;
	proto_msg m;

	sample(PROTO_TXN, &m);
	m.u.txn.ops[0].kind = (proto_op_kind)7;
	assert_int_equal(proto_encode_buf(&m, &buf, &len), DTX_EINVAL);
	m.u.txn.ops[0].kind = PROTO_OP_GET;
	m.u.txn.ops[0].key.n = PROTO_MAX_KEY + 1;
	assert_int_equal(proto_encode_buf(&m, &buf, &len), DTX_EINVAL);
	m.u.txn.ops[0].key.n = 1;
	uint32_t n = m.u.txn.n_ops;
	m.u.txn.n_ops = 0;
	assert_int_equal(proto_encode_buf(&m, &buf, &len), DTX_EINVAL);
	m.u.txn.n_ops = n;
	ok(proto_encode_buf(&m, &buf, &len));
	dtx_free(buf);
	proto_msg_free(&m);

	sample(PROTO_ERROR, &m);
	m.u.error.code = DTX_OK;
	assert_int_equal(proto_encode_buf(&m, &buf, &len), DTX_EINVAL);
	proto_msg_free(&m);

	sample(PROTO_BATCH, &m);
	proto_msg inner;
	sample(PROTO_BATCH, &inner);
	proto_msg_free(&m.u.batch.msgs[1]);
	m.u.batch.msgs[1] = inner;
	assert_int_equal(proto_encode_buf(&m, &buf, &len), DTX_EINVAL);
	proto_msg_free(&m);

	// The nng path leaves the message as it was after a failure.
	sample(PROTO_SAGA_FORGET, &m);
	char gid[PROTO_MAX_STR + 2];
	memset(gid, 'g', sizeof(gid) - 1);
	gid[sizeof(gid) - 1] = '\0';
	dtx_free(m.u.gid.gid);
	m.u.gid.gid = dtx_strdup(gid);
	nng_msg *nm;
	assert_int_equal(nng_msg_alloc(&nm, 0), 0);
	assert_int_equal(nng_msg_append(nm, "ab", 2), 0);
	assert_int_equal(proto_encode(&m, nm), DTX_EINVAL);
	assert_int_equal(nng_msg_len(nm), 2);
	nng_msg_free(nm);
	proto_msg_free(&m);
}

// Seeded random byte strings and random mutations of valid messages.
static void
test_random_garbage(void **state)
{
	(void)state;
	uint64_t seed = 20240611;
	uint8_t buf[512];
	for (int i = 0; i < 20000; i++) {
		size_t len = 1 + dtx_rand_below(&seed, sizeof(buf));
		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)dtx_rand_next(&seed);
		// Make most of them start like a message map.
		if (i % 2 == 0)
			buf[0] = (uint8_t)(0x80 | (6 + i % 4));
		decode_damaged(buf, len, false);
	}
	for (int t = PROTO_NONE + 1; t < PROTO_TYPE_COUNT; t++) {
		encoded s;
		encoded_init(&s, (proto_type)t);
		uint8_t *p = malloc(s.len);
		for (int k = 0; k < 500; k++) {
			memcpy(p, s.buf, s.len);
			for (int f = 0; f < 4; f++)
				p[dtx_rand_below(&seed, s.len)] =
				    (uint8_t)dtx_rand_next(&seed);
			decode_damaged(p, s.len, false);
		}
		free(p);
		encoded_fini(&s);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_every_type),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_truncate_and_flip),
		cmocka_unit_test(test_decode_out_of_memory),
		cmocka_unit_test(test_encode_out_of_memory),
		cmocka_unit_test(test_invalid_header),
		cmocka_unit_test(test_invalid_body),
		cmocka_unit_test(test_encoder_checks),
		cmocka_unit_test(test_txn_client_txid),
		cmocka_unit_test(test_read_paging_fields),
		cmocka_unit_test(test_random_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
