// SPDX-License-Identifier: MIT
//
// TRACE and TRACE_REPLY on the wire (wire.h): the body functions of their
// rows in the descriptor table, the event kinds' names, and which
// transaction or saga a message names (what the daemon's trace ring files
// its send and receive events under).

#include <string.h>

#include "wire_int.h"

typedef proto__rd rd;
typedef proto__flds flds;

static const char *const ev_names[PROTO_EV_COUNT] = {
	[PROTO_EV_SEND] = "send",
	[PROTO_EV_RECV] = "recv",
	[PROTO_EV_BEGIN] = "begin",
	[PROTO_EV_FORCE] = "force",
	[PROTO_EV_DECIDE] = "decide",
	[PROTO_EV_APPLY] = "apply",
	[PROTO_EV_RETRY] = "retry",
	[PROTO_EV_RECOVER] = "recover",
};

const char *
proto_ev_name(proto_ev_kind k)
{
	return (unsigned)k < PROTO_EV_COUNT ? ev_names[k] : "?";
}

bool
proto_msg_ref(const proto_msg *m, uint64_t *txid, const char **gid)
{
	*txid = 0;
	*gid = NULL;
	switch (m->hdr.type) {
	case PROTO_TXN:
		*txid = m->u.txn.txid;
		break;
	case PROTO_TXN_REPLY:
		*txid = m->u.txn_reply.txid;
		break;
	case PROTO_PREPARE:
	case PROTO_CAN_COMMIT:
		*txid = m->u.prepare.txid;
		break;
	case PROTO_VOTE:
		*txid = m->u.vote.txid;
		break;
	case PROTO_COMMIT:
	case PROTO_ABORT:
	case PROTO_PRE_COMMIT:
	case PROTO_DO_COMMIT:
	case PROTO_ACK:
	case PROTO_STATUS:
		*txid = m->u.txid.txid;
		break;
	case PROTO_STATUS_REPLY:
		*txid = m->u.status_reply.txid;
		break;
	case PROTO_SAGA_SUBMIT:
		*gid = m->u.saga_submit.gid;
		break;
	case PROTO_SAGA_REPLY:
		*gid = m->u.saga_reply.gid;
		break;
	case PROTO_STEP:
		*gid = m->u.step.gid;
		break;
	case PROTO_STEP_REPLY:
		*gid = m->u.step_reply.gid;
		break;
	case PROTO_SAGA_STATUS:
	case PROTO_SAGA_FORGET:
		*gid = m->u.gid.gid;
		break;
	default:
		break;
	}
	return *txid != 0 || *gid != NULL;
}

// ---------------------------------------------------------------- TRACE

int
proto__keys_trace(const proto_msg *m)
{
	if (m->u.trace.gid == NULL)
		return 1;
	return proto__check_str(m->u.trace.gid, 1) == DTX_OK ? 2 : -1;
}

dtx_err
proto__enc_trace(msgpack_packer *pk, const proto_msg *m)
{
	PROTO__TRY(proto__kv_uint(pk, "tx", m->u.trace.txid));
	if (m->u.trace.gid != NULL)
		PROTO__TRY(proto__kv_str(pk, "gid", m->u.trace.gid));
	return DTX_OK;
}

dtx_err
proto__dec_trace(rd *r, flds *fs, int depth, proto_msg *m)
{
	(void)depth;
	PROTO__TRY(proto__f_uint(r, fs, "tx", UINT64_MAX, &m->u.trace.txid));
	return proto__f_str(r, fs, "gid", false, 1, &m->u.trace.gid);
}

void
proto__free_trace(proto_msg *m)
{
	dtx_free(m->u.trace.gid);
}

// ---------------------------------------------------------------- TRACE_REPLY

static int
ev_keys(const proto_trace_ev *e)
{
	if ((unsigned)e->kind >= PROTO_EV_COUNT ||
	    (unsigned)e->type >= PROTO_TYPE_COUNT || e->vc.n > CLK_VC_MAX)
		return -1;
	if ((e->gid != NULL && proto__check_str(e->gid, 1) != DTX_OK) ||
	    (e->what != NULL && proto__check_str(e->what, 0) != DTX_OK) ||
	    (e->alias != NULL && proto__check_str(e->alias, 1) != DTX_OK))
		return -1;
	return 8 + (e->gid != NULL) + (e->what != NULL) + (e->alias != NULL);
}

int
proto__keys_trace_reply(const proto_msg *m)
{
	const proto_trace_reply *t = &m->u.trace_reply;
	if (t->n_events > PROTO_MAX_TRACE ||
	    (t->n_events > 0 && t->events == NULL))
		return -1;
	for (uint32_t i = 0; i < t->n_events; i++)
		if (ev_keys(&t->events[i]) < 0)
			return -1;
	return 4;
}

static dtx_err
enc_ev(msgpack_packer *pk, const proto_trace_ev *e)
{
	PROTO__PACK(msgpack_pack_map(pk, (size_t)ev_keys(e)));
	PROTO__TRY(proto__kv_uint(pk, "seq", e->seq));
	PROTO__TRY(proto__kv_uint(pk, "k", (uint64_t)e->kind));
	PROTO__TRY(proto__kv_uint(pk, "ty", (uint64_t)e->type));
	PROTO__TRY(proto__kv_uint(pk, "p", e->peer));
	PROTO__TRY(proto__kv_uint(pk, "pc", e->peer_c));
	PROTO__TRY(proto__kv_uint(pk, "tx", e->txid));
	if (e->gid != NULL)
		PROTO__TRY(proto__kv_str(pk, "gid", e->gid));
	PROTO__TRY(proto__kv_ts(pk, "hlc", e->hlc));
	PROTO__TRY(proto__key(pk, "vc"));
	PROTO__TRY(clk_vc_pack(pk, &e->vc));
	if (e->what != NULL)
		PROTO__TRY(proto__kv_str(pk, "w", e->what));
	if (e->alias != NULL)
		PROTO__TRY(proto__kv_str(pk, "al", e->alias));
	return DTX_OK;
}

dtx_err
proto__enc_trace_reply(msgpack_packer *pk, const proto_msg *m)
{
	const proto_trace_reply *t = &m->u.trace_reply;
	PROTO__TRY(proto__kv_uint(pk, "node", t->node));
	PROTO__TRY(proto__kv_uint(pk, "boot", t->boot));
	PROTO__TRY(proto__kv_uint(pk, "lost", t->lost));
	PROTO__TRY(proto__key(pk, "evs"));
	PROTO__PACK(msgpack_pack_array(pk, t->n_events));
	for (uint32_t i = 0; i < t->n_events; i++)
		PROTO__TRY(enc_ev(pk, &t->events[i]));
	return DTX_OK;
}

static dtx_err
rd_ev(rd *r, int depth, proto_trace_ev *e)
{
	flds fs;
	const char *ctx = r->ctx;
	uint64_t v;
	r->ctx = "trace event";
	PROTO__TRY(proto__rd_fields(r, "evs", depth, &fs));
	PROTO__TRY(proto__f_uint(r, &fs, "seq", UINT64_MAX, &e->seq));
	PROTO__TRY(proto__f_uint(r, &fs, "k", PROTO_EV_COUNT - 1, &v));
	e->kind = (proto_ev_kind)v;
	PROTO__TRY(proto__f_uint(r, &fs, "ty", PROTO_TYPE_COUNT - 1, &v));
	e->type = (proto_type)v;
	PROTO__TRY(proto__f_u32(r, &fs, "p", UINT32_MAX, &e->peer));
	PROTO__TRY(proto__f_uint(r, &fs, "pc", UINT64_MAX, &e->peer_c));
	PROTO__TRY(proto__f_uint(r, &fs, "tx", UINT64_MAX, &e->txid));
	PROTO__TRY(proto__f_str(r, &fs, "gid", false, 1, &e->gid));
	PROTO__TRY(proto__f_ts(r, &fs, "hlc", &e->hlc));
	rd s;
	PROTO__TRY(proto__need(r, &fs, "vc", &s));
	s.ctx = r->ctx;
	PROTO__TRY(proto__rd_vc(&s, &e->vc));
	PROTO__TRY(proto__f_str(r, &fs, "w", false, 0, &e->what));
	PROTO__TRY(proto__f_str(r, &fs, "al", false, 1, &e->alias));
	PROTO__TRY(proto__done(r, &fs));
	r->ctx = ctx;
	return DTX_OK;
}

dtx_err
proto__dec_trace_reply(rd *r, flds *fs, int depth, proto_msg *m)
{
	proto_trace_reply *t = &m->u.trace_reply;
	PROTO__TRY(proto__f_u32(r, fs, "node", UINT32_MAX, &t->node));
	PROTO__TRY(proto__f_uint(r, fs, "boot", UINT64_MAX, &t->boot));
	PROTO__TRY(proto__f_uint(r, fs, "lost", UINT64_MAX, &t->lost));
	rd s;
	PROTO__TRY(PROTO__F_ARRAY_NEW(
	    r, fs, "evs", 0, PROTO_MAX_TRACE, &s, t->events, t->n_events));
	for (uint32_t i = 0; i < t->n_events; i++)
		PROTO__TRY(rd_ev(&s, depth + 2, &t->events[i]));
	return DTX_OK;
}

void
proto__free_trace_reply(proto_msg *m)
{
	proto_trace_reply *t = &m->u.trace_reply;
	if (t->events == NULL)
		return;
	for (uint32_t i = 0; i < t->n_events; i++) {
		dtx_free(t->events[i].gid);
		dtx_free(t->events[i].what);
		dtx_free(t->events[i].alias);
	}
	dtx_free(t->events);
}
