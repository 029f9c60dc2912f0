// SPDX-License-Identifier: MIT
//
// The encoder: writes a proto_msg as one msgpack map into a growing buffer
// (proto_encode in rpc.c appends it to an nng message), checking every
// limit the decoder will apply so that a sender sees its own mistakes as
// DTX_EINVAL.

#include <string.h>

#include <msgpack.h>

#include "wire_int.h"

#define PACK(x)                                                                \
	do {                                                                   \
		if ((x) != 0)                                                  \
			return DTX_ENOMEM;                                     \
	} while (0)

static dtx_err
key(msgpack_packer *pk, const char *k)
{
	PACK(msgpack_pack_str_with_body(pk, k, strlen(k)));
	return DTX_OK;
}

static dtx_err
kv_uint(msgpack_packer *pk, const char *k, uint64_t v)
{
	PROTO__TRY(key(pk, k));
	PACK(msgpack_pack_uint64(pk, v));
	return DTX_OK;
}

static dtx_err
kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
	PROTO__TRY(key(pk, k));
	PACK(msgpack_pack_int64(pk, v));
	return DTX_OK;
}

static dtx_err
kv_bool(msgpack_packer *pk, const char *k, bool v)
{
	PROTO__TRY(key(pk, k));
	PACK(v ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
	return DTX_OK;
}

static dtx_err
kv_ts(msgpack_packer *pk, const char *k, clk_ts ts)
{
	PROTO__TRY(key(pk, k));
	return clk_ts_pack(pk, ts);
}

// A string field; min is 0 or 1 (gid, kind and names may not be empty).
static dtx_err
check_str(const char *s, size_t min)
{
	if (s == NULL)
		return DTX_EINVAL;
	size_t n = strlen(s);
	return n < min || n > PROTO_MAX_STR ? DTX_EINVAL : DTX_OK;
}

static dtx_err
kv_str(msgpack_packer *pk, const char *k, const char *s)
{
	PROTO__TRY(key(pk, k));
	PACK(msgpack_pack_str_with_body(pk, s, strlen(s)));
	return DTX_OK;
}

static dtx_err
pack_bin(msgpack_packer *pk, const proto_bytes *b)
{
	if (b->n > 0 && b->p == NULL)
		return DTX_EINVAL;
	PACK(msgpack_pack_bin_with_body(pk, b->p, b->n));
	return DTX_OK;
}

static dtx_err
check_key(const proto_bytes *k)
{
	return k->n < 1 || k->n > PROTO_MAX_KEY || k->p == NULL ? DTX_EINVAL
	                                                        : DTX_OK;
}

static dtx_err
enc_op(msgpack_packer *pk, const proto_op *op)
{
	PROTO__TRY(check_key(&op->key));
	switch (op->kind) {
	case PROTO_OP_ADD:
		PACK(msgpack_pack_map(pk, 4));
		break;
	case PROTO_OP_PUT:
		if (op->value.n > PROTO_MAX_VALUE)
			return DTX_EINVAL;
		PACK(msgpack_pack_map(pk, 3));
		break;
	case PROTO_OP_GET:
		PACK(msgpack_pack_map(pk, 2));
		break;
	default:
		return DTX_EINVAL;
	}
	PROTO__TRY(kv_uint(pk, "o", (uint64_t)op->kind));
	PROTO__TRY(key(pk, "k"));
	PROTO__TRY(pack_bin(pk, &op->key));
	if (op->kind == PROTO_OP_ADD) {
		PROTO__TRY(kv_int(pk, "d", op->delta));
		PROTO__TRY(kv_int(pk, "m", op->min));
	} else if (op->kind == PROTO_OP_PUT) {
		PROTO__TRY(key(pk, "b"));
		PROTO__TRY(pack_bin(pk, &op->value));
	}
	return DTX_OK;
}

static dtx_err
kv_ops(msgpack_packer *pk, const char *k, const proto_op *ops, uint32_t n)
{
	if (n < 1 || n > PROTO_MAX_OPS || ops == NULL)
		return DTX_EINVAL;
	PROTO__TRY(key(pk, k));
	PACK(msgpack_pack_array(pk, n));
	for (uint32_t i = 0; i < n; i++)
		PROTO__TRY(enc_op(pk, &ops[i]));
	return DTX_OK;
}

// Number of body keys of m, after checking the body's counts, strings and
// enums. Returns -1 when m is not encodable.
static int
body_keys(const proto_msg *m)
{
	const char *reason = NULL;
	int n = 0;
	switch (m->hdr.type) {
	case PROTO_PING:
	case PROTO_PONG:
	case PROTO_HEALTH:
		return 0;
	case PROTO_ERROR:
		if (m->u.error.code <= DTX_OK ||
		    m->u.error.code >= DTX_ERR_COUNT)
			return -1;
		reason = m->u.error.reason;
		n = 1;
		break;
	case PROTO_BATCH:
		return m->u.batch.n < 1 || m->u.batch.n > PROTO_MAX_BATCH ||
		        m->u.batch.msgs == NULL
		    ? -1
		    : 1;
	case PROTO_HEALTH_REPLY: {
		const proto_health_reply *h = &m->u.health_reply;
		if (check_str(h->role, 0) != DTX_OK ||
		    check_str(h->state, 0) != DTX_OK ||
		    h->n_blocked > PROTO_MAX_BLOCKED ||
		    (h->n_blocked > 0 && h->blocked == NULL) ||
		    h->n_counters > PROTO_MAX_COUNTERS ||
		    (h->n_counters > 0 && h->counters == NULL))
			return -1;
		for (uint32_t i = 0; i < h->n_counters; i++) {
			if (check_str(h->counters[i].name, 1) != DTX_OK)
				return -1;
			for (uint32_t j = 0; j < i; j++)
				if (strcmp(h->counters[i].name,
				        h->counters[j].name) == 0)
					return -1;
		}
		return 6;
	}
	case PROTO_FAULT:
		if (check_str(m->u.fault.kind, 1) != DTX_OK ||
		    m->u.fault.n_args > PROTO_MAX_FAULT_ARGS)
			return -1;
		reason = m->u.fault.arg;
		n = 2;
		break;
	case PROTO_TXN:
		if ((unsigned)m->u.txn.mode > PROTO_MODE_3PC)
			return -1;
		return 2;
	case PROTO_TXN_REPLY: {
		const proto_txn_reply *r = &m->u.txn_reply;
		if ((unsigned)r->outcome > PROTO_UNKNOWN ||
		    r->n_results > PROTO_MAX_OPS ||
		    (r->n_results > 0 && r->results == NULL))
			return -1;
		reason = r->reason;
		n = 4;
		break;
	}
	case PROTO_PREPARE:
	case PROTO_CAN_COMMIT: {
		const proto_prepare *p = &m->u.prepare;
		if ((unsigned)p->mode > PROTO_MODE_3PC ||
		    p->n_peers > PROTO_MAX_PEERS ||
		    (p->n_peers > 0 && p->peers == NULL))
			return -1;
		return 5;
	}
	case PROTO_VOTE:
		reason = m->u.vote.reason;
		n = 3;
		break;
	case PROTO_COMMIT:
	case PROTO_PRE_COMMIT:
		return 2;
	case PROTO_ABORT:
	case PROTO_DO_COMMIT:
	case PROTO_ACK:
	case PROTO_STATUS:
		return 1;
	case PROTO_STATUS_REPLY:
		if ((unsigned)m->u.status_reply.state > PROTO_TS_NEVER_VOTED)
			return -1;
		return 3;
	case PROTO_READ:
		if (m->u.read.n_keys > PROTO_MAX_KEYS ||
		    (m->u.read.n_keys > 0 && m->u.read.keys == NULL))
			return -1;
		return 2;
	case PROTO_READ_REPLY: {
		const proto_read_reply *r = &m->u.read_reply;
		if ((unsigned)r->status > PROTO_READ_RETRY ||
		    r->n_entries > PROTO_MAX_KEYS ||
		    (r->n_entries > 0 && r->entries == NULL))
			return -1;
		return 4;
	}
	case PROTO_SAGA_SUBMIT: {
		const proto_saga_submit *s = &m->u.saga_submit;
		if (check_str(s->gid, 1) != DTX_OK || s->n_steps < 1 ||
		    s->n_steps > PROTO_MAX_STEPS || s->steps == NULL)
			return -1;
		return 2;
	}
	case PROTO_SAGA_REPLY: {
		const proto_saga_reply *r = &m->u.saga_reply;
		if (check_str(r->gid, 1) != DTX_OK ||
		    (unsigned)r->outcome > PROTO_UNKNOWN || r->failed_step < -1)
			return -1;
		reason = r->reason;
		n = 3;
		break;
	}
	case PROTO_STEP: {
		const proto_step *s = &m->u.step;
		if (check_str(s->gid, 1) != DTX_OK ||
		    (unsigned)s->phase > PROTO_PHASE_COMPENSATE)
			return -1;
		return 4;
	}
	case PROTO_STEP_REPLY: {
		const proto_step_reply *r = &m->u.step_reply;
		if (check_str(r->gid, 1) != DTX_OK ||
		    (unsigned)r->phase > PROTO_PHASE_COMPENSATE ||
		    (unsigned)r->result > PROTO_STEP_FAILED)
			return -1;
		reason = r->reason;
		n = 5;
		break;
	}
	case PROTO_SAGA_STATUS:
	case PROTO_SAGA_FORGET:
		return check_str(m->u.gid.gid, 1) == DTX_OK ? 1 : -1;
	case PROTO_SAGA_STATUS_REPLY: {
		const proto_saga_status_reply *r = &m->u.saga_status_reply;
		if (check_str(r->gid, 1) != DTX_OK ||
		    (unsigned)r->state > PROTO_SAGA_ABORTED ||
		    r->n_steps > PROTO_MAX_STEPS ||
		    (r->n_steps > 0 && r->step_states == NULL))
			return -1;
		for (uint32_t i = 0; i < r->n_steps; i++)
			if (r->step_states[i] > PROTO_SS_COMPENSATED)
				return -1;
		reason = r->last_error;
		n = 4;
		break;
	}
	default:
		return -1;
	}
	// The optional string of the types that have one.
	if (reason == NULL)
		return n;
	return check_str(reason, 0) == DTX_OK ? n + 1 : -1;
}

static dtx_err enc_msg(msgpack_packer *pk, const proto_msg *m, bool nested);

static dtx_err
enc_body(msgpack_packer *pk, const proto_msg *m)
{
	switch (m->hdr.type) {
	case PROTO_ERROR:
		PROTO__TRY(kv_uint(pk, "code", (uint64_t)m->u.error.code));
		if (m->u.error.reason != NULL)
			PROTO__TRY(kv_str(pk, "why", m->u.error.reason));
		break;
	case PROTO_BATCH:
		PROTO__TRY(key(pk, "msgs"));
		PACK(msgpack_pack_array(pk, m->u.batch.n));
		for (uint32_t i = 0; i < m->u.batch.n; i++)
			PROTO__TRY(enc_msg(pk, &m->u.batch.msgs[i], true));
		break;
	case PROTO_HEALTH_REPLY: {
		const proto_health_reply *h = &m->u.health_reply;
		PROTO__TRY(kv_str(pk, "role", h->role));
		PROTO__TRY(kv_uint(pk, "node", h->node));
		PROTO__TRY(kv_str(pk, "st", h->state));
		PROTO__TRY(kv_uint(pk, "indoubt", h->in_doubt));
		PROTO__TRY(key(pk, "blocked"));
		PACK(msgpack_pack_array(pk, h->n_blocked));
		for (uint32_t i = 0; i < h->n_blocked; i++)
			PACK(msgpack_pack_uint64(pk, h->blocked[i]));
		PROTO__TRY(key(pk, "ctr"));
		PACK(msgpack_pack_map(pk, h->n_counters));
		for (uint32_t i = 0; i < h->n_counters; i++)
			PROTO__TRY(kv_int(
			    pk, h->counters[i].name, h->counters[i].value));
		break;
	}
	case PROTO_FAULT:
		PROTO__TRY(kv_str(pk, "kind", m->u.fault.kind));
		PROTO__TRY(key(pk, "args"));
		PACK(msgpack_pack_array(pk, m->u.fault.n_args));
		for (uint32_t i = 0; i < m->u.fault.n_args; i++)
			PACK(msgpack_pack_int64(pk, m->u.fault.args[i]));
		if (m->u.fault.arg != NULL)
			PROTO__TRY(kv_str(pk, "s", m->u.fault.arg));
		break;
	case PROTO_TXN:
		PROTO__TRY(kv_uint(pk, "m", (uint64_t)m->u.txn.mode));
		PROTO__TRY(kv_ops(pk, "ops", m->u.txn.ops, m->u.txn.n_ops));
		break;
	case PROTO_TXN_REPLY: {
		const proto_txn_reply *r = &m->u.txn_reply;
		PROTO__TRY(kv_uint(pk, "out", (uint64_t)r->outcome));
		if (r->reason != NULL)
			PROTO__TRY(kv_str(pk, "why", r->reason));
		PROTO__TRY(kv_uint(pk, "tx", r->txid));
		PROTO__TRY(kv_ts(pk, "cts", r->commit_ts));
		PROTO__TRY(key(pk, "res"));
		PACK(msgpack_pack_array(pk, r->n_results));
		for (uint32_t i = 0; i < r->n_results; i++)
			PACK(msgpack_pack_int64(pk, r->results[i]));
		break;
	}
	case PROTO_PREPARE:
	case PROTO_CAN_COMMIT: {
		const proto_prepare *p = &m->u.prepare;
		PROTO__TRY(kv_uint(pk, "tx", p->txid));
		PROTO__TRY(kv_uint(pk, "m", (uint64_t)p->mode));
		PROTO__TRY(kv_uint(pk, "co", p->coord));
		PROTO__TRY(key(pk, "peers"));
		PACK(msgpack_pack_array(pk, p->n_peers));
		for (uint32_t i = 0; i < p->n_peers; i++)
			PACK(msgpack_pack_uint32(pk, p->peers[i]));
		PROTO__TRY(kv_ops(pk, "ops", p->ops, p->n_ops));
		break;
	}
	case PROTO_VOTE:
		PROTO__TRY(kv_uint(pk, "tx", m->u.vote.txid));
		PROTO__TRY(kv_bool(pk, "yes", m->u.vote.yes));
		if (m->u.vote.reason != NULL)
			PROTO__TRY(kv_str(pk, "why", m->u.vote.reason));
		PROTO__TRY(kv_ts(pk, "pts", m->u.vote.prepare_ts));
		break;
	case PROTO_COMMIT:
	case PROTO_PRE_COMMIT:
		PROTO__TRY(kv_uint(pk, "tx", m->u.txid.txid));
		PROTO__TRY(kv_ts(pk, "cts", m->u.txid.commit_ts));
		break;
	case PROTO_ABORT:
	case PROTO_DO_COMMIT:
	case PROTO_ACK:
	case PROTO_STATUS:
		PROTO__TRY(kv_uint(pk, "tx", m->u.txid.txid));
		break;
	case PROTO_STATUS_REPLY:
		PROTO__TRY(kv_uint(pk, "tx", m->u.status_reply.txid));
		PROTO__TRY(
		    kv_uint(pk, "st", (uint64_t)m->u.status_reply.state));
		PROTO__TRY(kv_ts(pk, "cts", m->u.status_reply.commit_ts));
		break;
	case PROTO_READ:
		PROTO__TRY(kv_ts(pk, "ts", m->u.read.ts));
		PROTO__TRY(key(pk, "keys"));
		PACK(msgpack_pack_array(pk, m->u.read.n_keys));
		for (uint32_t i = 0; i < m->u.read.n_keys; i++) {
			PROTO__TRY(check_key(&m->u.read.keys[i]));
			PROTO__TRY(pack_bin(pk, &m->u.read.keys[i]));
		}
		break;
	case PROTO_READ_REPLY: {
		const proto_read_reply *r = &m->u.read_reply;
		PROTO__TRY(kv_ts(pk, "ts", r->ts));
		PROTO__TRY(kv_uint(pk, "st", (uint64_t)r->status));
		PROTO__TRY(kv_uint(pk, "btx", r->blocked_txid));
		PROTO__TRY(key(pk, "ents"));
		PACK(msgpack_pack_array(pk, r->n_entries));
		for (uint32_t i = 0; i < r->n_entries; i++) {
			const proto_entry *e = &r->entries[i];
			PROTO__TRY(check_key(&e->key));
			if (e->found && e->is_bytes &&
			    e->bval.n > PROTO_MAX_VALUE)
				return DTX_EINVAL;
			PACK(msgpack_pack_map(pk, e->found ? 3 : 2));
			PROTO__TRY(key(pk, "k"));
			PROTO__TRY(pack_bin(pk, &e->key));
			PROTO__TRY(kv_bool(pk, "f", e->found));
			if (e->found && e->is_bytes) {
				PROTO__TRY(key(pk, "b"));
				PROTO__TRY(pack_bin(pk, &e->bval));
			} else if (e->found) {
				PROTO__TRY(kv_int(pk, "i", e->ival));
			}
		}
		break;
	}
	case PROTO_SAGA_SUBMIT: {
		const proto_saga_submit *s = &m->u.saga_submit;
		PROTO__TRY(kv_str(pk, "gid", s->gid));
		PROTO__TRY(key(pk, "steps"));
		PACK(msgpack_pack_array(pk, s->n_steps));
		for (uint32_t i = 0; i < s->n_steps; i++) {
			PACK(msgpack_pack_map(pk, 3));
			PROTO__TRY(kv_uint(pk, "p", s->steps[i].participant));
			PROTO__TRY(key(pk, "a"));
			PROTO__TRY(enc_op(pk, &s->steps[i].action));
			PROTO__TRY(key(pk, "c"));
			PROTO__TRY(enc_op(pk, &s->steps[i].compensate));
		}
		break;
	}
	case PROTO_SAGA_REPLY: {
		const proto_saga_reply *r = &m->u.saga_reply;
		PROTO__TRY(kv_str(pk, "gid", r->gid));
		PROTO__TRY(kv_uint(pk, "out", (uint64_t)r->outcome));
		PROTO__TRY(kv_int(pk, "fs", r->failed_step));
		if (r->reason != NULL)
			PROTO__TRY(kv_str(pk, "why", r->reason));
		break;
	}
	case PROTO_STEP: {
		const proto_step *s = &m->u.step;
		PROTO__TRY(kv_str(pk, "gid", s->gid));
		PROTO__TRY(kv_uint(pk, "br", s->branch));
		PROTO__TRY(kv_uint(pk, "ph", (uint64_t)s->phase));
		PROTO__TRY(kv_ops(pk, "ops", s->ops, s->n_ops));
		break;
	}
	case PROTO_STEP_REPLY: {
		const proto_step_reply *r = &m->u.step_reply;
		PROTO__TRY(kv_str(pk, "gid", r->gid));
		PROTO__TRY(kv_uint(pk, "br", r->branch));
		PROTO__TRY(kv_uint(pk, "ph", (uint64_t)r->phase));
		PROTO__TRY(kv_uint(pk, "res", (uint64_t)r->result));
		PROTO__TRY(kv_bool(pk, "dup", r->duplicate));
		if (r->reason != NULL)
			PROTO__TRY(kv_str(pk, "why", r->reason));
		break;
	}
	case PROTO_SAGA_STATUS:
	case PROTO_SAGA_FORGET:
		PROTO__TRY(kv_str(pk, "gid", m->u.gid.gid));
		break;
	case PROTO_SAGA_STATUS_REPLY: {
		const proto_saga_status_reply *r = &m->u.saga_status_reply;
		PROTO__TRY(kv_str(pk, "gid", r->gid));
		PROTO__TRY(kv_uint(pk, "st", (uint64_t)r->state));
		PROTO__TRY(key(pk, "steps"));
		PACK(msgpack_pack_array(pk, r->n_steps));
		for (uint32_t i = 0; i < r->n_steps; i++)
			PACK(msgpack_pack_uint8(pk, r->step_states[i]));
		PROTO__TRY(kv_uint(pk, "age", r->age_ms));
		if (r->last_error != NULL)
			PROTO__TRY(kv_str(pk, "err", r->last_error));
		break;
	}
	default:
		break;
	}
	return DTX_OK;
}

static dtx_err
enc_msg(msgpack_packer *pk, const proto_msg *m, bool nested)
{
	if (nested && m->hdr.type == PROTO_BATCH)
		return DTX_EINVAL;
	if (m->hdr.vc.n > CLK_VC_MAX)
		return DTX_EINVAL;
	int nb = body_keys(m);
	if (nb < 0)
		return DTX_EINVAL;
	PACK(msgpack_pack_map(pk, 6 + (size_t)nb));
	PROTO__TRY(kv_uint(pk, "v", PROTO_VERSION));
	PROTO__TRY(kv_str(pk, "t", proto_type_name(m->hdr.type)));
	PROTO__TRY(kv_uint(pk, "id", m->hdr.id));
	PROTO__TRY(kv_uint(pk, "from", m->hdr.from));
	PROTO__TRY(kv_ts(pk, "hlc", m->hdr.hlc));
	PROTO__TRY(key(pk, "vc"));
	PROTO__TRY(clk_vc_pack(pk, &m->hdr.vc));
	return enc_body(pk, m);
}

// A growing byte buffer. With own set, p starts as the caller's storage
// (of cap bytes) and moves to the heap only when it outgrows it.
typedef struct buf {
	uint8_t *p;
	size_t len, cap;
	bool own;
} buf;

static int
write_buf(void *data, const char *src, size_t len)
{
	buf *b = data;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + len)
			cap *= 2;
		uint8_t *p;
		if (b->own) {
			if ((p = dtx_alloc(cap)) == NULL)
				return -1;
			memcpy(p, b->p, b->len);
			b->own = false;
		} else if ((p = dtx_realloc(b->p, cap)) == NULL) {
			return -1;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, src, len);
	b->len += len;
	return 0;
}

dtx_err
proto__encode_scratch(const proto_msg *m, uint8_t *scratch, size_t cap,
    uint8_t **out, size_t *len)
{
	buf b = { scratch, 0, cap, true };
	msgpack_packer pk;
	msgpack_packer_init(&pk, &b, write_buf);
	dtx_err err = enc_msg(&pk, m, false);
	if (err != DTX_OK) {
		if (!b.own)
			dtx_free(b.p);
		return err;
	}
	*out = b.p;
	*len = b.len;
	return DTX_OK;
}

dtx_err
proto_encode_buf(const proto_msg *m, uint8_t **out, size_t *len)
{
	if (m == NULL || out == NULL || len == NULL)
		return DTX_EINVAL;
	buf b = { NULL, 0, 0, false };
	msgpack_packer pk;
	msgpack_packer_init(&pk, &b, write_buf);
	dtx_err err = enc_msg(&pk, m, false);
	if (err != DTX_OK) {
		dtx_free(b.p);
		return err;
	}
	if (b.p == NULL && (b.p = dtx_alloc(1)) == NULL)
		return DTX_ENOMEM;
	*out = b.p;
	*len = b.len;
	return DTX_OK;
}
