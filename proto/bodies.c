// SPDX-License-Identifier: MIT
//
// The message bodies, one group of functions per type (how many keys it has
// after its checks, encode, decode, free) and the table that names them, so
// that the encoder, the decoder and proto_msg_free dispatch through one
// descriptor per type. A new message type is one row plus its functions.

#include <string.h>

#include "wire_int.h"

typedef proto__rd rd;
typedef proto__flds flds;

// A body's key count n plus its optional string s (a reason), or -1 when s
// is too long.
static int
opt_str(int n, const char *s)
{
	if (s == NULL)
		return n;
	return proto__check_str(s, 0) == DTX_OK ? n + 1 : -1;
}

// ---------------------------------------------------------------- ops

static dtx_err
enc_op(msgpack_packer *pk, const proto_op *op)
{
	PROTO__TRY(proto__check_key(&op->key));
	switch (op->kind) {
	case PROTO_OP_ADD:
		PROTO__PACK(msgpack_pack_map(pk, 4));
		break;
	case PROTO_OP_PUT:
		if (op->value.n > PROTO_MAX_VALUE)
			return DTX_EINVAL;
		PROTO__PACK(msgpack_pack_map(pk, 3));
		break;
	case PROTO_OP_GET:
		PROTO__PACK(msgpack_pack_map(pk, 2));
		break;
	case PROTO_OP_APPEND:
		PROTO__PACK(msgpack_pack_map(pk, 3));
		break;
	default:
		return DTX_EINVAL;
	}
	PROTO__TRY(proto__kv_uint(pk, "o", (uint64_t)op->kind));
	PROTO__TRY(proto__key(pk, "k"));
	PROTO__TRY(proto__pack_bin(pk, &op->key));
	if (op->kind == PROTO_OP_ADD) {
		PROTO__TRY(proto__kv_int(pk, "d", op->delta));
		PROTO__TRY(proto__kv_int(pk, "m", op->min));
	} else if (op->kind == PROTO_OP_PUT) {
		PROTO__TRY(proto__key(pk, "b"));
		PROTO__TRY(proto__pack_bin(pk, &op->value));
	} else if (op->kind == PROTO_OP_APPEND) {
		PROTO__TRY(proto__kv_int(pk, "d", op->delta));
	}
	return DTX_OK;
}

static dtx_err
kv_ops(msgpack_packer *pk, const char *k, const proto_op *ops, uint32_t n)
{
	if (n < 1 || n > PROTO_MAX_OPS || ops == NULL)
		return DTX_EINVAL;
	PROTO__TRY(proto__key(pk, k));
	PROTO__PACK(msgpack_pack_array(pk, n));
	for (uint32_t i = 0; i < n; i++)
		PROTO__TRY(enc_op(pk, &ops[i]));
	return DTX_OK;
}

static dtx_err
rd_op(rd *r, const char *k, int depth, proto_op *op)
{
	flds fs;
	const char *ctx = r->ctx;
	r->ctx = "op";
	PROTO__TRY(proto__rd_fields(r, k, depth, &fs));
	uint64_t kind;
	PROTO__TRY(proto__f_uint(r, &fs, "o", PROTO_OP_APPEND, &kind));
	op->kind = (proto_op_kind)kind;
	PROTO__TRY(proto__f_bytes(r, &fs, "k", 1, PROTO_MAX_KEY, &op->key));
	if (op->kind == PROTO_OP_ADD) {
		PROTO__TRY(proto__f_int(r, &fs, "d", &op->delta));
		PROTO__TRY(proto__f_int(r, &fs, "m", &op->min));
	} else if (op->kind == PROTO_OP_PUT) {
		PROTO__TRY(proto__f_bytes(
		    r, &fs, "b", 0, PROTO_MAX_VALUE, &op->value));
	} else if (op->kind == PROTO_OP_APPEND) {
		PROTO__TRY(proto__f_int(r, &fs, "d", &op->delta));
	}
	PROTO__TRY(proto__done(r, &fs));
	r->ctx = ctx;
	return DTX_OK;
}

static dtx_err
f_ops(rd *r, flds *fs, int depth, uint32_t *n_out, proto_op **out)
{
	rd s;
	PROTO__TRY(PROTO__F_ARRAY_NEW(
	    r, fs, "ops", 1, PROTO_MAX_OPS, &s, *out, *n_out));
	for (uint32_t i = 0; i < *n_out; i++)
		PROTO__TRY(rd_op(&s, "ops", depth + 2, &(*out)[i]));
	return DTX_OK;
}

static void
free_op(proto_op *op)
{
	dtx_free(op->key.p);
	dtx_free(op->value.p);
}

static void
free_ops(proto_op *ops, uint32_t n)
{
	if (ops == NULL)
		return;
	for (uint32_t i = 0; i < n; i++)
		free_op(&ops[i]);
	dtx_free(ops);
}

// ---------------------------------------------------------------- no body
// PING, PONG, HEALTH.

static int
keys_none(const proto_msg *m)
{
	(void)m;
	return 0;
}

// ---------------------------------------------------------------- ERROR

static int
keys_error(const proto_msg *m)
{
	if (m->u.error.code <= DTX_OK || m->u.error.code >= DTX_ERR_COUNT)
		return -1;
	return opt_str(1, m->u.error.reason);
}

static dtx_err
enc_error(msgpack_packer *pk, const proto_msg *m)
{
	PROTO__TRY(proto__kv_uint(pk, "code", (uint64_t)m->u.error.code));
	if (m->u.error.reason != NULL)
		PROTO__TRY(proto__kv_str(pk, "why", m->u.error.reason));
	return DTX_OK;
}

static dtx_err
dec_error(rd *r, flds *fs, int depth, proto_msg *m)
{
	uint64_t v = 0;
	(void)depth;
	PROTO__TRY(proto__f_uint(r, fs, "code", DTX_ERR_COUNT - 1, &v));
	if (v == DTX_OK)
		return PROTO__BAD(r, "error: key 'code': 0 is not an error");
	m->u.error.code = (dtx_err)v;
	return proto__f_str(r, fs, "why", false, 0, &m->u.error.reason);
}

static void
free_error(proto_msg *m)
{
	dtx_free(m->u.error.reason);
}

// ---------------------------------------------------------------- BATCH

static int
keys_batch(const proto_msg *m)
{
	const proto_batch *b = &m->u.batch;
	return b->n < 1 || b->n > PROTO_MAX_BATCH || b->msgs == NULL ? -1 : 1;
}

static dtx_err
enc_batch(msgpack_packer *pk, const proto_msg *m)
{
	PROTO__TRY(proto__key(pk, "msgs"));
	PROTO__PACK(msgpack_pack_array(pk, m->u.batch.n));
	for (uint32_t i = 0; i < m->u.batch.n; i++)
		PROTO__TRY(proto__enc_msg(pk, &m->u.batch.msgs[i], true));
	return DTX_OK;
}

static dtx_err
dec_batch(rd *r, flds *fs, int depth, proto_msg *m)
{
	rd s;
	proto_batch *b = &m->u.batch;
	PROTO__TRY(PROTO__F_ARRAY_NEW(
	    r, fs, "msgs", 1, PROTO_MAX_BATCH, &s, b->msgs, b->n));
	for (uint32_t i = 0; i < b->n; i++)
		PROTO__TRY(proto__dec_msg(&s, depth + 2, true, &b->msgs[i]));
	return DTX_OK;
}

static void
free_batch(proto_msg *m)
{
	if (m->u.batch.msgs == NULL)
		return;
	for (uint32_t i = 0; i < m->u.batch.n; i++)
		proto_msg_free(&m->u.batch.msgs[i]);
	dtx_free(m->u.batch.msgs);
}

// ---------------------------------------------------------------- HEALTH_REPLY

static int
keys_health_reply(const proto_msg *m)
{
	const proto_health_reply *h = &m->u.health_reply;
	if (proto__check_str(h->role, 0) != DTX_OK ||
	    proto__check_str(h->state, 0) != DTX_OK ||
	    h->n_blocked > PROTO_MAX_BLOCKED ||
	    (h->n_blocked > 0 && h->blocked == NULL) ||
	    h->n_counters > PROTO_MAX_COUNTERS ||
	    (h->n_counters > 0 && h->counters == NULL))
		return -1;
	for (uint32_t i = 0; i < h->n_counters; i++) {
		if (proto__check_str(h->counters[i].name, 1) != DTX_OK)
			return -1;
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(h->counters[i].name, h->counters[j].name) ==
			    0)
				return -1;
	}
	return 6;
}

static dtx_err
enc_health_reply(msgpack_packer *pk, const proto_msg *m)
{
	const proto_health_reply *h = &m->u.health_reply;
	PROTO__TRY(proto__kv_str(pk, "role", h->role));
	PROTO__TRY(proto__kv_uint(pk, "node", h->node));
	PROTO__TRY(proto__kv_str(pk, "st", h->state));
	PROTO__TRY(proto__kv_uint(pk, "indoubt", h->in_doubt));
	PROTO__TRY(proto__key(pk, "blocked"));
	PROTO__PACK(msgpack_pack_array(pk, h->n_blocked));
	for (uint32_t i = 0; i < h->n_blocked; i++)
		PROTO__PACK(msgpack_pack_uint64(pk, h->blocked[i]));
	PROTO__TRY(proto__key(pk, "ctr"));
	PROTO__PACK(msgpack_pack_map(pk, h->n_counters));
	for (uint32_t i = 0; i < h->n_counters; i++)
		PROTO__TRY(proto__kv_int(
		    pk, h->counters[i].name, h->counters[i].value));
	return DTX_OK;
}

static dtx_err
rd_u64_array(rd *r, flds *fs, const char *k, uint32_t max, uint64_t vmax,
    uint32_t *n_out, uint64_t **out)
{
	rd s;
	PROTO__TRY(PROTO__F_ARRAY_NEW(r, fs, k, 0, max, &s, *out, *n_out));
	for (uint32_t i = 0; i < *n_out; i++)
		PROTO__TRY(proto__rd_uint(&s, k, vmax, &(*out)[i]));
	return DTX_OK;
}

static dtx_err
dec_health_reply(rd *r, flds *fs, int depth, proto_msg *m)
{
	proto_health_reply *h = &m->u.health_reply;
	(void)depth;
	PROTO__TRY(proto__f_str(r, fs, "role", true, 0, &h->role));
	PROTO__TRY(proto__f_u32(r, fs, "node", UINT32_MAX, &h->node));
	PROTO__TRY(proto__f_str(r, fs, "st", true, 0, &h->state));
	PROTO__TRY(proto__f_uint(r, fs, "indoubt", UINT64_MAX, &h->in_doubt));
	PROTO__TRY(rd_u64_array(r, fs, "blocked", PROTO_MAX_BLOCKED, UINT64_MAX,
	    &h->n_blocked, &h->blocked));
	rd s;
	uint32_t n;
	PROTO__TRY(proto__need(r, fs, "ctr", &s));
	PROTO__TRY(proto__rd_container(&s, "ctr", true, &n));
	if (n > PROTO_MAX_COUNTERS)
		return PROTO__BAD(r, "%s: key 'ctr': %u counters, more than %d",
		    r->ctx, n, PROTO_MAX_COUNTERS);
	h->counters = dtx_calloc(n, sizeof(*h->counters));
	if (h->counters == NULL)
		return PROTO__OOM(r);
	h->n_counters = n;
	for (uint32_t i = 0; i < n; i++) {
		proto_counter *c = &h->counters[i];
		PROTO__TRY(proto__rd_cstr(&s, "ctr", 1, &c->name));
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(h->counters[j].name, c->name) == 0)
				return PROTO__BAD(r,
				    "%s: key 'ctr': duplicate "
				    "counter '%s'",
				    r->ctx, c->name);
		PROTO__TRY(
		    proto__rd_int(&s, "ctr", INT64_MIN, INT64_MAX, &c->value));
	}
	return DTX_OK;
}

static void
free_health_reply(proto_msg *m)
{
	proto_health_reply *h = &m->u.health_reply;
	dtx_free(h->role);
	dtx_free(h->state);
	dtx_free(h->blocked);
	if (h->counters != NULL) {
		for (uint32_t i = 0; i < h->n_counters; i++)
			dtx_free(h->counters[i].name);
		dtx_free(h->counters);
	}
}

// ---------------------------------------------------------------- FAULT

static int
keys_fault(const proto_msg *m)
{
	if (proto__check_str(m->u.fault.kind, 1) != DTX_OK ||
	    m->u.fault.n_args > PROTO_MAX_FAULT_ARGS)
		return -1;
	return opt_str(2, m->u.fault.arg);
}

static dtx_err
enc_fault(msgpack_packer *pk, const proto_msg *m)
{
	PROTO__TRY(proto__kv_str(pk, "kind", m->u.fault.kind));
	PROTO__TRY(proto__key(pk, "args"));
	PROTO__PACK(msgpack_pack_array(pk, m->u.fault.n_args));
	for (uint32_t i = 0; i < m->u.fault.n_args; i++)
		PROTO__PACK(msgpack_pack_int64(pk, m->u.fault.args[i]));
	if (m->u.fault.arg != NULL)
		PROTO__TRY(proto__kv_str(pk, "s", m->u.fault.arg));
	return DTX_OK;
}

static dtx_err
dec_fault(rd *r, flds *fs, int depth, proto_msg *m)
{
	proto_fault *f = &m->u.fault;
	(void)depth;
	PROTO__TRY(proto__f_str(r, fs, "kind", true, 1, &f->kind));
	rd s;
	uint32_t n;
	PROTO__TRY(
	    proto__f_array(r, fs, "args", 0, PROTO_MAX_FAULT_ARGS, &s, &n));
	f->n_args = n;
	for (uint32_t i = 0; i < n; i++)
		PROTO__TRY(proto__rd_int(
		    &s, "args", INT64_MIN, INT64_MAX, &f->args[i]));
	return proto__f_str(r, fs, "s", false, 0, &f->arg);
}

static void
free_fault(proto_msg *m)
{
	dtx_free(m->u.fault.kind);
	dtx_free(m->u.fault.arg);
}

// ---------------------------------------------------------------- TXN

static int
keys_txn(const proto_msg *m)
{
	if ((unsigned)m->u.txn.mode > PROTO_MODE_PC)
		return -1;
	return m->u.txn.txid != 0 ? 3 : 2;
}

static dtx_err
enc_txn(msgpack_packer *pk, const proto_msg *m)
{
	PROTO__TRY(proto__kv_uint(pk, "m", (uint64_t)m->u.txn.mode));
	PROTO__TRY(kv_ops(pk, "ops", m->u.txn.ops, m->u.txn.n_ops));
	if (m->u.txn.txid != 0)
		PROTO__TRY(proto__kv_uint(pk, "tx", m->u.txn.txid));
	return DTX_OK;
}

static dtx_err
dec_txn(rd *r, flds *fs, int depth, proto_msg *m)
{
	uint64_t v = 0;
	PROTO__TRY(proto__f_uint(r, fs, "m", PROTO_MODE_PC, &v));
	m->u.txn.mode = (proto_mode)v;
	PROTO__TRY(f_ops(r, fs, depth, &m->u.txn.n_ops, &m->u.txn.ops));
	rd s;
	if (!proto__take(r, fs, "tx", &s))
		return DTX_OK;
	PROTO__TRY(proto__rd_uint(&s, "tx", UINT64_MAX, &m->u.txn.txid));
	if (m->u.txn.txid == 0)
		return PROTO__BAD(
		    r, "%s: key 'tx': 0 is no transaction id", r->ctx);
	return DTX_OK;
}

static void
free_txn(proto_msg *m)
{
	free_ops(m->u.txn.ops, m->u.txn.n_ops);
}

// ---------------------------------------------------------------- TXN_REPLY

static int
keys_txn_reply(const proto_msg *m)
{
	const proto_txn_reply *r = &m->u.txn_reply;
	if ((unsigned)r->outcome > PROTO_UNKNOWN ||
	    r->n_results > PROTO_MAX_OPS ||
	    (r->n_results > 0 && r->results == NULL))
		return -1;
	return opt_str(4, r->reason);
}

static dtx_err
enc_txn_reply(msgpack_packer *pk, const proto_msg *m)
{
	const proto_txn_reply *r = &m->u.txn_reply;
	PROTO__TRY(proto__kv_uint(pk, "out", (uint64_t)r->outcome));
	if (r->reason != NULL)
		PROTO__TRY(proto__kv_str(pk, "why", r->reason));
	PROTO__TRY(proto__kv_uint(pk, "tx", r->txid));
	PROTO__TRY(proto__kv_ts(pk, "cts", r->commit_ts));
	PROTO__TRY(proto__key(pk, "res"));
	PROTO__PACK(msgpack_pack_array(pk, r->n_results));
	for (uint32_t i = 0; i < r->n_results; i++)
		PROTO__PACK(msgpack_pack_int64(pk, r->results[i]));
	return DTX_OK;
}

static dtx_err
dec_txn_reply(rd *r, flds *fs, int depth, proto_msg *m)
{
	proto_txn_reply *t = &m->u.txn_reply;
	uint64_t v = 0;
	(void)depth;
	PROTO__TRY(proto__f_uint(r, fs, "out", PROTO_UNKNOWN, &v));
	t->outcome = (proto_outcome)v;
	PROTO__TRY(proto__f_str(r, fs, "why", false, 0, &t->reason));
	PROTO__TRY(proto__f_uint(r, fs, "tx", UINT64_MAX, &t->txid));
	PROTO__TRY(proto__f_ts(r, fs, "cts", &t->commit_ts));
	rd s;
	PROTO__TRY(PROTO__F_ARRAY_NEW(
	    r, fs, "res", 0, PROTO_MAX_OPS, &s, t->results, t->n_results));
	for (uint32_t i = 0; i < t->n_results; i++)
		PROTO__TRY(proto__rd_int(
		    &s, "res", INT64_MIN, INT64_MAX, &t->results[i]));
	return DTX_OK;
}

static void
free_txn_reply(proto_msg *m)
{
	dtx_free(m->u.txn_reply.reason);
	dtx_free(m->u.txn_reply.results);
}

// ---------------------------------------------------------------- PREPARE
// Also CAN_COMMIT.

static int
keys_prepare(const proto_msg *m)
{
	const proto_prepare *p = &m->u.prepare;
	if ((unsigned)p->mode > PROTO_MODE_PC || p->n_peers > PROTO_MAX_PEERS ||
	    (p->n_peers > 0 && p->peers == NULL))
		return -1;
	return 5;
}

static dtx_err
enc_prepare(msgpack_packer *pk, const proto_msg *m)
{
	const proto_prepare *p = &m->u.prepare;
	PROTO__TRY(proto__kv_uint(pk, "tx", p->txid));
	PROTO__TRY(proto__kv_uint(pk, "m", (uint64_t)p->mode));
	PROTO__TRY(proto__kv_uint(pk, "co", p->coord));
	PROTO__TRY(proto__key(pk, "peers"));
	PROTO__PACK(msgpack_pack_array(pk, p->n_peers));
	for (uint32_t i = 0; i < p->n_peers; i++)
		PROTO__PACK(msgpack_pack_uint32(pk, p->peers[i]));
	return kv_ops(pk, "ops", p->ops, p->n_ops);
}

static dtx_err
dec_prepare(rd *r, flds *fs, int depth, proto_msg *m)
{
	proto_prepare *p = &m->u.prepare;
	uint64_t v = 0;
	PROTO__TRY(proto__f_uint(r, fs, "tx", UINT64_MAX, &p->txid));
	PROTO__TRY(proto__f_uint(r, fs, "m", PROTO_MODE_PC, &v));
	p->mode = (proto_mode)v;
	PROTO__TRY(proto__f_u32(r, fs, "co", UINT32_MAX, &p->coord));
	rd s;
	PROTO__TRY(PROTO__F_ARRAY_NEW(
	    r, fs, "peers", 0, PROTO_MAX_PEERS, &s, p->peers, p->n_peers));
	for (uint32_t i = 0; i < p->n_peers; i++) {
		PROTO__TRY(proto__rd_uint(&s, "peers", UINT32_MAX, &v));
		p->peers[i] = (uint32_t)v;
	}
	return f_ops(r, fs, depth, &p->n_ops, &p->ops);
}

static void
free_prepare(proto_msg *m)
{
	dtx_free(m->u.prepare.peers);
	free_ops(m->u.prepare.ops, m->u.prepare.n_ops);
}

// ---------------------------------------------------------------- VOTE

static int
keys_vote(const proto_msg *m)
{
	return opt_str(3, m->u.vote.reason);
}

static dtx_err
enc_vote(msgpack_packer *pk, const proto_msg *m)
{
	PROTO__TRY(proto__kv_uint(pk, "tx", m->u.vote.txid));
	PROTO__TRY(proto__kv_bool(pk, "yes", m->u.vote.yes));
	if (m->u.vote.reason != NULL)
		PROTO__TRY(proto__kv_str(pk, "why", m->u.vote.reason));
	return proto__kv_ts(pk, "pts", m->u.vote.prepare_ts);
}

static dtx_err
dec_vote(rd *r, flds *fs, int depth, proto_msg *m)
{
	(void)depth;
	PROTO__TRY(proto__f_uint(r, fs, "tx", UINT64_MAX, &m->u.vote.txid));
	PROTO__TRY(proto__f_bool(r, fs, "yes", &m->u.vote.yes));
	PROTO__TRY(proto__f_str(r, fs, "why", false, 0, &m->u.vote.reason));
	return proto__f_ts(r, fs, "pts", &m->u.vote.prepare_ts);
}

static void
free_vote(proto_msg *m)
{
	dtx_free(m->u.vote.reason);
}

// ---------------------------------------------------------------- txid
// COMMIT and PRE_COMMIT carry {tx, cts}; ABORT, DO_COMMIT, ACK and STATUS
// {tx}.

static int
keys_txid_cts(const proto_msg *m)
{
	(void)m;
	return 2;
}

static dtx_err
enc_txid_cts(msgpack_packer *pk, const proto_msg *m)
{
	PROTO__TRY(proto__kv_uint(pk, "tx", m->u.txid.txid));
	return proto__kv_ts(pk, "cts", m->u.txid.commit_ts);
}

static dtx_err
dec_txid_cts(rd *r, flds *fs, int depth, proto_msg *m)
{
	(void)depth;
	PROTO__TRY(proto__f_uint(r, fs, "tx", UINT64_MAX, &m->u.txid.txid));
	return proto__f_ts(r, fs, "cts", &m->u.txid.commit_ts);
}

static int
keys_txid(const proto_msg *m)
{
	(void)m;
	return 1;
}

static dtx_err
enc_txid(msgpack_packer *pk, const proto_msg *m)
{
	return proto__kv_uint(pk, "tx", m->u.txid.txid);
}

static dtx_err
dec_txid(rd *r, flds *fs, int depth, proto_msg *m)
{
	(void)depth;
	return proto__f_uint(r, fs, "tx", UINT64_MAX, &m->u.txid.txid);
}

// ---------------------------------------------------------------- STATUS_REPLY

static int
keys_status_reply(const proto_msg *m)
{
	if ((unsigned)m->u.status_reply.state > PROTO_TS_NEVER_VOTED)
		return -1;
	return m->u.status_reply.prepare_ts != 0 ? 4 : 3;
}

static dtx_err
enc_status_reply(msgpack_packer *pk, const proto_msg *m)
{
	PROTO__TRY(proto__kv_uint(pk, "tx", m->u.status_reply.txid));
	PROTO__TRY(proto__kv_uint(pk, "st", (uint64_t)m->u.status_reply.state));
	PROTO__TRY(proto__kv_ts(pk, "cts", m->u.status_reply.commit_ts));
	if (m->u.status_reply.prepare_ts != 0)
		PROTO__TRY(
		    proto__kv_ts(pk, "pts", m->u.status_reply.prepare_ts));
	return DTX_OK;
}

// Whether fs holds key k (an optional key, not yet taken).
static bool
has_key(const flds *fs, const char *k)
{
	size_t kn = strlen(k);
	for (uint32_t i = 0; i < fs->n; i++)
		if (fs->f[i].kn == kn && memcmp(fs->f[i].k, k, kn) == 0)
			return true;
	return false;
}

static dtx_err
dec_status_reply(rd *r, flds *fs, int depth, proto_msg *m)
{
	uint64_t v = 0;
	(void)depth;
	PROTO__TRY(
	    proto__f_uint(r, fs, "tx", UINT64_MAX, &m->u.status_reply.txid));
	PROTO__TRY(proto__f_uint(r, fs, "st", PROTO_TS_NEVER_VOTED, &v));
	m->u.status_reply.state = (proto_txn_state)v;
	PROTO__TRY(proto__f_ts(r, fs, "cts", &m->u.status_reply.commit_ts));
	m->u.status_reply.prepare_ts = 0;
	if (!has_key(fs, "pts"))
		return DTX_OK;
	return proto__f_ts(r, fs, "pts", &m->u.status_reply.prepare_ts);
}

// ---------------------------------------------------------------- READ

static int
keys_read(const proto_msg *m)
{
	const proto_read *q = &m->u.read;
	if (q->n_keys > PROTO_MAX_KEYS || (q->n_keys > 0 && q->keys == NULL))
		return -1;
	return 2 + (q->page != 0) + (q->after.n > 0);
}

static dtx_err
enc_read(msgpack_packer *pk, const proto_msg *m)
{
	PROTO__TRY(proto__kv_ts(pk, "ts", m->u.read.ts));
	PROTO__TRY(proto__key(pk, "keys"));
	PROTO__PACK(msgpack_pack_array(pk, m->u.read.n_keys));
	for (uint32_t i = 0; i < m->u.read.n_keys; i++) {
		PROTO__TRY(proto__check_key(&m->u.read.keys[i]));
		PROTO__TRY(proto__pack_bin(pk, &m->u.read.keys[i]));
	}
	if (m->u.read.page != 0)
		PROTO__TRY(proto__kv_uint(pk, "pg", m->u.read.page));
	if (m->u.read.after.n > 0) {
		PROTO__TRY(proto__check_key(&m->u.read.after));
		PROTO__TRY(proto__key(pk, "aft"));
		PROTO__TRY(proto__pack_bin(pk, &m->u.read.after));
	}
	return DTX_OK;
}

static dtx_err
dec_read(rd *r, flds *fs, int depth, proto_msg *m)
{
	proto_read *q = &m->u.read;
	(void)depth;
	PROTO__TRY(proto__f_ts(r, fs, "ts", &q->ts));
	rd s;
	PROTO__TRY(PROTO__F_ARRAY_NEW(
	    r, fs, "keys", 0, PROTO_MAX_KEYS, &s, q->keys, q->n_keys));
	for (uint32_t i = 0; i < q->n_keys; i++)
		PROTO__TRY(
		    proto__rd_bytes(&s, "keys", 1, PROTO_MAX_KEY, &q->keys[i]));
	if (has_key(fs, "pg")) {
		uint64_t v = 0;
		PROTO__TRY(proto__f_uint(r, fs, "pg", UINT32_MAX, &v));
		q->page = (uint32_t)v;
	}
	if (has_key(fs, "aft"))
		PROTO__TRY(
		    proto__f_bytes(r, fs, "aft", 1, PROTO_MAX_KEY, &q->after));
	return DTX_OK;
}

static void
free_read(proto_msg *m)
{
	dtx_free(m->u.read.after.p);
	if (m->u.read.keys == NULL)
		return;
	for (uint32_t i = 0; i < m->u.read.n_keys; i++)
		dtx_free(m->u.read.keys[i].p);
	dtx_free(m->u.read.keys);
}

// ---------------------------------------------------------------- READ_REPLY

static int
keys_read_reply(const proto_msg *m)
{
	const proto_read_reply *r = &m->u.read_reply;
	if ((unsigned)r->status > PROTO_READ_RETRY ||
	    r->n_entries > PROTO_MAX_KEYS ||
	    (r->n_entries > 0 && r->entries == NULL))
		return -1;
	return 4 + (r->next.n > 0);
}

static dtx_err
enc_entry(msgpack_packer *pk, const proto_entry *e)
{
	PROTO__TRY(proto__check_key(&e->key));
	if (e->found && e->is_bytes && e->bval.n > PROTO_MAX_VALUE)
		return DTX_EINVAL;
	PROTO__PACK(msgpack_pack_map(pk, e->found ? 3 : 2));
	PROTO__TRY(proto__key(pk, "k"));
	PROTO__TRY(proto__pack_bin(pk, &e->key));
	PROTO__TRY(proto__kv_bool(pk, "f", e->found));
	if (e->found && e->is_bytes) {
		PROTO__TRY(proto__key(pk, "b"));
		PROTO__TRY(proto__pack_bin(pk, &e->bval));
	} else if (e->found) {
		PROTO__TRY(proto__kv_int(pk, "i", e->ival));
	}
	return DTX_OK;
}

static dtx_err
enc_read_reply(msgpack_packer *pk, const proto_msg *m)
{
	const proto_read_reply *r = &m->u.read_reply;
	PROTO__TRY(proto__kv_ts(pk, "ts", r->ts));
	PROTO__TRY(proto__kv_uint(pk, "st", (uint64_t)r->status));
	PROTO__TRY(proto__kv_uint(pk, "btx", r->blocked_txid));
	PROTO__TRY(proto__key(pk, "ents"));
	PROTO__PACK(msgpack_pack_array(pk, r->n_entries));
	for (uint32_t i = 0; i < r->n_entries; i++)
		PROTO__TRY(enc_entry(pk, &r->entries[i]));
	if (r->next.n > 0) {
		PROTO__TRY(proto__check_key(&r->next));
		PROTO__TRY(proto__key(pk, "nxt"));
		PROTO__TRY(proto__pack_bin(pk, &r->next));
	}
	return DTX_OK;
}

static dtx_err
rd_entry(rd *r, int depth, proto_entry *e)
{
	flds fs;
	const char *ctx = r->ctx;
	r->ctx = "entry";
	PROTO__TRY(proto__rd_fields(r, "ents", depth, &fs));
	PROTO__TRY(proto__f_bytes(r, &fs, "k", 1, PROTO_MAX_KEY, &e->key));
	PROTO__TRY(proto__f_bool(r, &fs, "f", &e->found));
	if (e->found) {
		rd s;
		if (proto__take(r, &fs, "i", &s)) {
			PROTO__TRY(proto__rd_int(
			    &s, "i", INT64_MIN, INT64_MAX, &e->ival));
		} else if (proto__take(r, &fs, "b", &s)) {
			e->is_bytes = true;
			PROTO__TRY(proto__rd_bytes(
			    &s, "b", 0, PROTO_MAX_VALUE, &e->bval));
		} else {
			return PROTO__BAD(
			    r, "entry: found but neither 'i' nor 'b'");
		}
	}
	PROTO__TRY(proto__done(r, &fs));
	r->ctx = ctx;
	return DTX_OK;
}

static dtx_err
dec_read_reply(rd *r, flds *fs, int depth, proto_msg *m)
{
	proto_read_reply *q = &m->u.read_reply;
	uint64_t v = 0;
	PROTO__TRY(proto__f_ts(r, fs, "ts", &q->ts));
	PROTO__TRY(proto__f_uint(r, fs, "st", PROTO_READ_RETRY, &v));
	q->status = (proto_read_status)v;
	PROTO__TRY(proto__f_uint(r, fs, "btx", UINT64_MAX, &q->blocked_txid));
	rd s;
	PROTO__TRY(PROTO__F_ARRAY_NEW(
	    r, fs, "ents", 0, PROTO_MAX_KEYS, &s, q->entries, q->n_entries));
	for (uint32_t i = 0; i < q->n_entries; i++)
		PROTO__TRY(rd_entry(&s, depth + 2, &q->entries[i]));
	if (has_key(fs, "nxt"))
		PROTO__TRY(
		    proto__f_bytes(r, fs, "nxt", 1, PROTO_MAX_KEY, &q->next));
	return DTX_OK;
}

static void
free_read_reply(proto_msg *m)
{
	proto_read_reply *r = &m->u.read_reply;
	dtx_free(r->next.p);
	if (r->entries == NULL)
		return;
	for (uint32_t i = 0; i < r->n_entries; i++) {
		dtx_free(r->entries[i].key.p);
		dtx_free(r->entries[i].bval.p);
	}
	dtx_free(r->entries);
}

// ---------------------------------------------------------------- SAGA_SUBMIT

static int
keys_saga_submit(const proto_msg *m)
{
	const proto_saga_submit *s = &m->u.saga_submit;
	if (proto__check_str(s->gid, 1) != DTX_OK || s->n_steps < 1 ||
	    s->n_steps > PROTO_MAX_STEPS || s->steps == NULL)
		return -1;
	return 2;
}

static dtx_err
enc_saga_submit(msgpack_packer *pk, const proto_msg *m)
{
	const proto_saga_submit *s = &m->u.saga_submit;
	PROTO__TRY(proto__kv_str(pk, "gid", s->gid));
	PROTO__TRY(proto__key(pk, "steps"));
	PROTO__PACK(msgpack_pack_array(pk, s->n_steps));
	for (uint32_t i = 0; i < s->n_steps; i++) {
		PROTO__PACK(msgpack_pack_map(pk, 3));
		PROTO__TRY(proto__kv_uint(pk, "p", s->steps[i].participant));
		PROTO__TRY(proto__key(pk, "a"));
		PROTO__TRY(enc_op(pk, &s->steps[i].action));
		PROTO__TRY(proto__key(pk, "c"));
		PROTO__TRY(enc_op(pk, &s->steps[i].compensate));
	}
	return DTX_OK;
}

static dtx_err
rd_saga_step(rd *s, int depth, proto_saga_step *st)
{
	flds sf;
	const char *ctx = s->ctx;
	s->ctx = "step";
	PROTO__TRY(proto__rd_fields(s, "steps", depth, &sf));
	PROTO__TRY(proto__f_u32(s, &sf, "p", UINT32_MAX, &st->participant));
	rd o;
	PROTO__TRY(proto__need(s, &sf, "a", &o));
	PROTO__TRY(rd_op(&o, "a", depth + 1, &st->action));
	PROTO__TRY(proto__need(s, &sf, "c", &o));
	PROTO__TRY(rd_op(&o, "c", depth + 1, &st->compensate));
	PROTO__TRY(proto__done(s, &sf));
	s->ctx = ctx;
	return DTX_OK;
}

static dtx_err
dec_saga_submit(rd *r, flds *fs, int depth, proto_msg *m)
{
	proto_saga_submit *q = &m->u.saga_submit;
	PROTO__TRY(proto__f_str(r, fs, "gid", true, 1, &q->gid));
	rd s;
	PROTO__TRY(PROTO__F_ARRAY_NEW(
	    r, fs, "steps", 1, PROTO_MAX_STEPS, &s, q->steps, q->n_steps));
	for (uint32_t i = 0; i < q->n_steps; i++)
		PROTO__TRY(rd_saga_step(&s, depth + 2, &q->steps[i]));
	return DTX_OK;
}

static void
free_saga_submit(proto_msg *m)
{
	proto_saga_submit *s = &m->u.saga_submit;
	dtx_free(s->gid);
	if (s->steps == NULL)
		return;
	for (uint32_t i = 0; i < s->n_steps; i++) {
		free_op(&s->steps[i].action);
		free_op(&s->steps[i].compensate);
	}
	dtx_free(s->steps);
}

// ---------------------------------------------------------------- SAGA_REPLY

static int
keys_saga_reply(const proto_msg *m)
{
	const proto_saga_reply *r = &m->u.saga_reply;
	if (proto__check_str(r->gid, 1) != DTX_OK ||
	    (unsigned)r->outcome > PROTO_UNKNOWN || r->failed_step < -1)
		return -1;
	return opt_str(3, r->reason);
}

static dtx_err
enc_saga_reply(msgpack_packer *pk, const proto_msg *m)
{
	const proto_saga_reply *r = &m->u.saga_reply;
	PROTO__TRY(proto__kv_str(pk, "gid", r->gid));
	PROTO__TRY(proto__kv_uint(pk, "out", (uint64_t)r->outcome));
	PROTO__TRY(proto__kv_int(pk, "fs", r->failed_step));
	if (r->reason != NULL)
		PROTO__TRY(proto__kv_str(pk, "why", r->reason));
	return DTX_OK;
}

static dtx_err
dec_saga_reply(rd *r, flds *fs, int depth, proto_msg *m)
{
	proto_saga_reply *q = &m->u.saga_reply;
	uint64_t v = 0;
	int64_t fsx;
	(void)depth;
	PROTO__TRY(proto__f_str(r, fs, "gid", true, 1, &q->gid));
	PROTO__TRY(proto__f_uint(r, fs, "out", PROTO_UNKNOWN, &v));
	q->outcome = (proto_outcome)v;
	rd s;
	PROTO__TRY(proto__need(r, fs, "fs", &s));
	PROTO__TRY(proto__rd_int(&s, "fs", -1, INT32_MAX, &fsx));
	q->failed_step = (int32_t)fsx;
	return proto__f_str(r, fs, "why", false, 0, &q->reason);
}

static void
free_saga_reply(proto_msg *m)
{
	dtx_free(m->u.saga_reply.gid);
	dtx_free(m->u.saga_reply.reason);
}

// ---------------------------------------------------------------- STEP

static int
keys_step(const proto_msg *m)
{
	const proto_step *s = &m->u.step;
	if (proto__check_str(s->gid, 1) != DTX_OK ||
	    (unsigned)s->phase > PROTO_PHASE_COMPENSATE)
		return -1;
	return 4;
}

static dtx_err
enc_step(msgpack_packer *pk, const proto_msg *m)
{
	const proto_step *s = &m->u.step;
	PROTO__TRY(proto__kv_str(pk, "gid", s->gid));
	PROTO__TRY(proto__kv_uint(pk, "br", s->branch));
	PROTO__TRY(proto__kv_uint(pk, "ph", (uint64_t)s->phase));
	return kv_ops(pk, "ops", s->ops, s->n_ops);
}

static dtx_err
dec_step(rd *r, flds *fs, int depth, proto_msg *m)
{
	proto_step *q = &m->u.step;
	uint64_t v = 0;
	PROTO__TRY(proto__f_str(r, fs, "gid", true, 1, &q->gid));
	PROTO__TRY(proto__f_u32(r, fs, "br", UINT32_MAX, &q->branch));
	PROTO__TRY(proto__f_uint(r, fs, "ph", PROTO_PHASE_COMPENSATE, &v));
	q->phase = (proto_phase)v;
	return f_ops(r, fs, depth, &q->n_ops, &q->ops);
}

static void
free_step(proto_msg *m)
{
	dtx_free(m->u.step.gid);
	free_ops(m->u.step.ops, m->u.step.n_ops);
}

// ---------------------------------------------------------------- STEP_REPLY

static int
keys_step_reply(const proto_msg *m)
{
	const proto_step_reply *r = &m->u.step_reply;
	if (proto__check_str(r->gid, 1) != DTX_OK ||
	    (unsigned)r->phase > PROTO_PHASE_COMPENSATE ||
	    (unsigned)r->result > PROTO_STEP_FAILED)
		return -1;
	return opt_str(5, r->reason);
}

static dtx_err
enc_step_reply(msgpack_packer *pk, const proto_msg *m)
{
	const proto_step_reply *r = &m->u.step_reply;
	PROTO__TRY(proto__kv_str(pk, "gid", r->gid));
	PROTO__TRY(proto__kv_uint(pk, "br", r->branch));
	PROTO__TRY(proto__kv_uint(pk, "ph", (uint64_t)r->phase));
	PROTO__TRY(proto__kv_uint(pk, "res", (uint64_t)r->result));
	PROTO__TRY(proto__kv_bool(pk, "dup", r->duplicate));
	if (r->reason != NULL)
		PROTO__TRY(proto__kv_str(pk, "why", r->reason));
	return DTX_OK;
}

static dtx_err
dec_step_reply(rd *r, flds *fs, int depth, proto_msg *m)
{
	proto_step_reply *q = &m->u.step_reply;
	uint64_t v = 0;
	(void)depth;
	PROTO__TRY(proto__f_str(r, fs, "gid", true, 1, &q->gid));
	PROTO__TRY(proto__f_u32(r, fs, "br", UINT32_MAX, &q->branch));
	PROTO__TRY(proto__f_uint(r, fs, "ph", PROTO_PHASE_COMPENSATE, &v));
	q->phase = (proto_phase)v;
	PROTO__TRY(proto__f_uint(r, fs, "res", PROTO_STEP_FAILED, &v));
	q->result = (proto_step_result)v;
	PROTO__TRY(proto__f_bool(r, fs, "dup", &q->duplicate));
	return proto__f_str(r, fs, "why", false, 0, &q->reason);
}

static void
free_step_reply(proto_msg *m)
{
	dtx_free(m->u.step_reply.gid);
	dtx_free(m->u.step_reply.reason);
}

// ---------------------------------------------------------------- gid
// SAGA_STATUS and SAGA_FORGET.

static int
keys_gid(const proto_msg *m)
{
	return proto__check_str(m->u.gid.gid, 1) == DTX_OK ? 1 : -1;
}

static dtx_err
enc_gid(msgpack_packer *pk, const proto_msg *m)
{
	return proto__kv_str(pk, "gid", m->u.gid.gid);
}

static dtx_err
dec_gid(rd *r, flds *fs, int depth, proto_msg *m)
{
	(void)depth;
	return proto__f_str(r, fs, "gid", true, 1, &m->u.gid.gid);
}

static void
free_gid(proto_msg *m)
{
	dtx_free(m->u.gid.gid);
}

// ----------------------------------------------------------------
// SAGA_STATUS_REPLY

static int
keys_saga_status_reply(const proto_msg *m)
{
	const proto_saga_status_reply *r = &m->u.saga_status_reply;
	if (proto__check_str(r->gid, 1) != DTX_OK ||
	    (unsigned)r->state > PROTO_SAGA_ABORTED ||
	    r->n_steps > PROTO_MAX_STEPS ||
	    (r->n_steps > 0 && r->step_states == NULL))
		return -1;
	for (uint32_t i = 0; i < r->n_steps; i++)
		if (r->step_states[i] > PROTO_SS_COMPENSATED)
			return -1;
	return opt_str(
	    r->comp_ts != NULL && r->n_steps > 0 ? 5 : 4, r->last_error);
}

static dtx_err
enc_saga_status_reply(msgpack_packer *pk, const proto_msg *m)
{
	const proto_saga_status_reply *r = &m->u.saga_status_reply;
	PROTO__TRY(proto__kv_str(pk, "gid", r->gid));
	PROTO__TRY(proto__kv_uint(pk, "st", (uint64_t)r->state));
	PROTO__TRY(proto__key(pk, "steps"));
	PROTO__PACK(msgpack_pack_array(pk, r->n_steps));
	for (uint32_t i = 0; i < r->n_steps; i++)
		PROTO__PACK(msgpack_pack_uint8(pk, r->step_states[i]));
	PROTO__TRY(proto__kv_uint(pk, "age", r->age_ms));
	if (r->last_error != NULL)
		PROTO__TRY(proto__kv_str(pk, "err", r->last_error));
	if (r->comp_ts == NULL || r->n_steps == 0)
		return DTX_OK;
	PROTO__TRY(proto__key(pk, "cts"));
	PROTO__PACK(msgpack_pack_array(pk, r->n_steps));
	for (uint32_t i = 0; i < r->n_steps; i++)
		PROTO__TRY(clk_ts_pack(pk, r->comp_ts[i]));
	return DTX_OK;
}

static dtx_err
dec_saga_status_reply(rd *r, flds *fs, int depth, proto_msg *m)
{
	proto_saga_status_reply *q = &m->u.saga_status_reply;
	uint64_t v = 0;
	(void)depth;
	PROTO__TRY(proto__f_str(r, fs, "gid", true, 1, &q->gid));
	PROTO__TRY(proto__f_uint(r, fs, "st", PROTO_SAGA_ABORTED, &v));
	q->state = (proto_saga_state)v;
	rd s;
	uint32_t n;
	PROTO__TRY(proto__f_array(r, fs, "steps", 0, PROTO_MAX_STEPS, &s, &n));
	q->step_states = dtx_calloc(n, 1);
	if (q->step_states == NULL)
		return PROTO__OOM(r);
	q->n_steps = n;
	for (uint32_t i = 0; i < n; i++) {
		PROTO__TRY(
		    proto__rd_uint(&s, "steps", PROTO_SS_COMPENSATED, &v));
		q->step_states[i] = (uint8_t)v;
	}
	PROTO__TRY(proto__f_uint(r, fs, "age", UINT64_MAX, &q->age_ms));
	PROTO__TRY(proto__f_str(r, fs, "err", false, 0, &q->last_error));
	if (!has_key(fs, "cts"))
		return DTX_OK;
	PROTO__TRY(proto__f_array(r, fs, "cts", n, n, &s, &n));
	if (n == 0)
		return PROTO__BAD(r, "%s: key 'cts': no steps", r->ctx);
	q->comp_ts = dtx_calloc(n, sizeof(*q->comp_ts));
	if (q->comp_ts == NULL)
		return PROTO__OOM(r);
	for (uint32_t i = 0; i < n; i++)
		PROTO__TRY(proto__rd_ts(&s, "cts", &q->comp_ts[i]));
	return DTX_OK;
}

static void
free_saga_status_reply(proto_msg *m)
{
	dtx_free(m->u.saga_status_reply.gid);
	dtx_free(m->u.saga_status_reply.step_states);
	dtx_free(m->u.saga_status_reply.last_error);
	dtx_free(m->u.saga_status_reply.comp_ts);
}

// ---------------------------------------------------------------- auth
// CHALLENGE and AUTH: the hello that binds a connection to a certificate.

static int
keys_challenge(const proto_msg *m)
{
	return m->u.auth.nonce.n == PROTO_NONCE_LEN ? 1 : -1;
}

static dtx_err
enc_challenge(msgpack_packer *pk, const proto_msg *m)
{
	PROTO__TRY(proto__key(pk, "n"));
	return proto__pack_bin(pk, &m->u.auth.nonce);
}

static dtx_err
dec_challenge(rd *r, flds *fs, int depth, proto_msg *m)
{
	(void)depth;
	return proto__f_bytes(
	    r, fs, "n", PROTO_NONCE_LEN, PROTO_NONCE_LEN, &m->u.auth.nonce);
}

static int
keys_auth(const proto_msg *m)
{
	const proto_auth *a = &m->u.auth;
	bool ok = a->cert.n >= 1 && a->cert.n <= PROTO_MAX_CERT &&
	    a->sig.n >= 1 && a->sig.n <= PROTO_MAX_SIG;
	return ok ? 2 : -1;
}

static dtx_err
enc_auth(msgpack_packer *pk, const proto_msg *m)
{
	PROTO__TRY(proto__key(pk, "c"));
	PROTO__TRY(proto__pack_bin(pk, &m->u.auth.cert));
	PROTO__TRY(proto__key(pk, "s"));
	return proto__pack_bin(pk, &m->u.auth.sig);
}

static dtx_err
dec_auth(rd *r, flds *fs, int depth, proto_msg *m)
{
	(void)depth;
	PROTO__TRY(
	    proto__f_bytes(r, fs, "c", 1, PROTO_MAX_CERT, &m->u.auth.cert));
	return proto__f_bytes(r, fs, "s", 1, PROTO_MAX_SIG, &m->u.auth.sig);
}

static void
free_auth(proto_msg *m)
{
	dtx_free(m->u.auth.nonce.p);
	dtx_free(m->u.auth.cert.p);
	dtx_free(m->u.auth.sig.p);
}

static void
free_challenge(proto_msg *m)
{
	free_auth(m);
}

// ---------------------------------------------------------------- the table

#define BODY(name, f)                                                          \
	{                                                                      \
		name, keys_##f, enc_##f, dec_##f, free_##f                     \
	}
#define BODY_NOFREE(name, f)                                                   \
	{                                                                      \
		name, keys_##f, enc_##f, dec_##f, NULL                         \
	}

// A body whose functions live in bodies_txn.c.
#define BODY_EXT(name, f)                                                      \
	{                                                                      \
		name, proto__keys_##f, proto__enc_##f, proto__dec_##f,         \
		    proto__free_##f                                            \
	}

static const proto__body bodies[PROTO_TYPE_COUNT] = {
	[PROTO_ERROR] = BODY("error", error),
	[PROTO_BATCH] = BODY("batch", batch),
	[PROTO_PING] = { "ping", keys_none, NULL, NULL, NULL },
	[PROTO_PONG] = { "pong", keys_none, NULL, NULL, NULL },
	[PROTO_HEALTH] = { "health", keys_none, NULL, NULL, NULL },
	[PROTO_HEALTH_REPLY] = BODY("health_reply", health_reply),
	[PROTO_FAULT] = BODY("fault", fault),
	[PROTO_TXN] = BODY("txn", txn),
	[PROTO_TXN_REPLY] = BODY("txn_reply", txn_reply),
	[PROTO_PREPARE] = BODY("prepare", prepare),
	[PROTO_CAN_COMMIT] = BODY("can_commit", prepare),
	[PROTO_VOTE] = BODY("vote", vote),
	[PROTO_COMMIT] = BODY_NOFREE("commit", txid_cts),
	[PROTO_ABORT] = BODY_NOFREE("abort", txid),
	[PROTO_PRE_COMMIT] = BODY_NOFREE("pre_commit", txid_cts),
	[PROTO_DO_COMMIT] = BODY_NOFREE("do_commit", txid),
	[PROTO_ACK] = BODY_NOFREE("ack", txid),
	[PROTO_STATUS] = BODY_NOFREE("status", txid),
	[PROTO_STATUS_REPLY] = BODY_NOFREE("status_reply", status_reply),
	[PROTO_READ] = BODY("read", read),
	[PROTO_READ_REPLY] = BODY("read_reply", read_reply),
	[PROTO_SAGA_SUBMIT] = BODY("saga_submit", saga_submit),
	[PROTO_SAGA_REPLY] = BODY("saga_reply", saga_reply),
	[PROTO_STEP] = BODY("step", step),
	[PROTO_STEP_REPLY] = BODY("step_reply", step_reply),
	[PROTO_SAGA_STATUS] = BODY("saga_status", gid),
	[PROTO_SAGA_STATUS_REPLY] =
	    BODY("saga_status_reply", saga_status_reply),
	[PROTO_SAGA_FORGET] = BODY("saga_forget", gid),
	[PROTO_HELLO] = { "hello", keys_none, NULL, NULL, NULL },
	[PROTO_CHALLENGE] = BODY("challenge", challenge),
	[PROTO_AUTH] = BODY("auth", auth),
	[PROTO_TXN_LIST] = BODY_NOFREE("txn_list", txid),
	[PROTO_TXN_LIST_REPLY] = BODY_EXT("txn_list_reply", txn_list_reply),
	[PROTO_TXN_RESOLVE] = BODY_EXT("txn_resolve", txn_resolve),
	[PROTO_TXN_RESOLVE_REPLY] =
	    BODY_EXT("txn_resolve_reply", txn_resolve_reply),
	[PROTO_TRACE] = { "trace", proto__keys_trace, proto__enc_trace,
	    proto__dec_trace, proto__free_trace },
	[PROTO_TRACE_REPLY] = { "trace_reply", proto__keys_trace_reply,
	    proto__enc_trace_reply, proto__dec_trace_reply,
	    proto__free_trace_reply },
};

const proto__body *
proto__body_of(proto_type type)
{
	if ((unsigned)type >= PROTO_TYPE_COUNT || type == PROTO_NONE)
		return NULL;
	return &bodies[type];
}
