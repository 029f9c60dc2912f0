// SPDX-License-Identifier: MIT
//
// Message lifecycle: type names, initialisation, and freeing everything a
// decoded (or handler-built) message owns.

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wire_int.h"

static const char *const type_names[PROTO_TYPE_COUNT] = {
	[PROTO_NONE] = "?",
	[PROTO_ERROR] = "error",
	[PROTO_BATCH] = "batch",
	[PROTO_PING] = "ping",
	[PROTO_PONG] = "pong",
	[PROTO_HEALTH] = "health",
	[PROTO_HEALTH_REPLY] = "health_reply",
	[PROTO_FAULT] = "fault",
	[PROTO_TXN] = "txn",
	[PROTO_TXN_REPLY] = "txn_reply",
	[PROTO_PREPARE] = "prepare",
	[PROTO_CAN_COMMIT] = "can_commit",
	[PROTO_VOTE] = "vote",
	[PROTO_COMMIT] = "commit",
	[PROTO_ABORT] = "abort",
	[PROTO_PRE_COMMIT] = "pre_commit",
	[PROTO_DO_COMMIT] = "do_commit",
	[PROTO_ACK] = "ack",
	[PROTO_STATUS] = "status",
	[PROTO_STATUS_REPLY] = "status_reply",
	[PROTO_READ] = "read",
	[PROTO_READ_REPLY] = "read_reply",
	[PROTO_SAGA_SUBMIT] = "saga_submit",
	[PROTO_SAGA_REPLY] = "saga_reply",
	[PROTO_STEP] = "step",
	[PROTO_STEP_REPLY] = "step_reply",
	[PROTO_SAGA_STATUS] = "saga_status",
	[PROTO_SAGA_STATUS_REPLY] = "saga_status_reply",
	[PROTO_SAGA_FORGET] = "saga_forget",
};

const char *
proto_type_name(proto_type type)
{
	if ((unsigned)type >= PROTO_TYPE_COUNT || type == PROTO_NONE)
		return "?";
	return type_names[type];
}

proto_type
proto__type_lookup(const char *name, size_t len)
{
	for (int t = PROTO_NONE + 1; t < PROTO_TYPE_COUNT; t++) {
		const char *n = type_names[t];
		if (strlen(n) == len && memcmp(n, name, len) == 0)
			return (proto_type)t;
	}
	return PROTO_NONE;
}

void
proto__limits(const proto_limits *in, proto_limits *out)
{
	out->max_msg = PROTO_MAX_MSG_DEFAULT;
	out->vc_nodes = CLK_VC_MAX;
	if (in == NULL)
		return;
	if (in->max_msg != 0)
		out->max_msg = in->max_msg;
	if (in->vc_nodes != 0 && in->vc_nodes <= CLK_VC_MAX)
		out->vc_nodes = in->vc_nodes;
}

void
proto_msg_init(proto_msg *m, proto_type type)
{
	memset(m, 0, sizeof(*m));
	m->hdr.version = PROTO_VERSION;
	m->hdr.type = type;
}

dtx_err
proto_fault_init(proto_msg *m, const char *kind, const int64_t *args,
    uint32_t nargs, const char *s)
{
	proto_msg_init(m, PROTO_FAULT);
	if (nargs > PROTO_MAX_FAULT_ARGS)
		return DTX_EINVAL;
	m->u.fault.kind = (char *)kind;
	m->u.fault.n_args = nargs;
	for (uint32_t i = 0; i < nargs; i++)
		m->u.fault.args[i] = args[i];
	m->u.fault.arg = (char *)s;
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

void
proto_msg_free(proto_msg *m)
{
	if (m == NULL)
		return;
	switch (m->hdr.type) {
	case PROTO_ERROR:
		dtx_free(m->u.error.reason);
		break;
	case PROTO_BATCH:
		if (m->u.batch.msgs != NULL) {
			for (uint32_t i = 0; i < m->u.batch.n; i++)
				proto_msg_free(&m->u.batch.msgs[i]);
			dtx_free(m->u.batch.msgs);
		}
		break;
	case PROTO_HEALTH_REPLY: {
		proto_health_reply *h = &m->u.health_reply;
		dtx_free(h->role);
		dtx_free(h->state);
		dtx_free(h->blocked);
		if (h->counters != NULL) {
			for (uint32_t i = 0; i < h->n_counters; i++)
				dtx_free(h->counters[i].name);
			dtx_free(h->counters);
		}
		break;
	}
	case PROTO_FAULT:
		dtx_free(m->u.fault.kind);
		dtx_free(m->u.fault.arg);
		break;
	case PROTO_TXN:
		free_ops(m->u.txn.ops, m->u.txn.n_ops);
		break;
	case PROTO_TXN_REPLY:
		dtx_free(m->u.txn_reply.reason);
		dtx_free(m->u.txn_reply.results);
		break;
	case PROTO_PREPARE:
	case PROTO_CAN_COMMIT:
		dtx_free(m->u.prepare.peers);
		free_ops(m->u.prepare.ops, m->u.prepare.n_ops);
		break;
	case PROTO_VOTE:
		dtx_free(m->u.vote.reason);
		break;
	case PROTO_READ:
		if (m->u.read.keys != NULL) {
			for (uint32_t i = 0; i < m->u.read.n_keys; i++)
				dtx_free(m->u.read.keys[i].p);
			dtx_free(m->u.read.keys);
		}
		break;
	case PROTO_READ_REPLY:
		if (m->u.read_reply.entries != NULL) {
			proto_read_reply *r = &m->u.read_reply;
			for (uint32_t i = 0; i < r->n_entries; i++) {
				dtx_free(r->entries[i].key.p);
				dtx_free(r->entries[i].bval.p);
			}
			dtx_free(r->entries);
		}
		break;
	case PROTO_SAGA_SUBMIT:
		dtx_free(m->u.saga_submit.gid);
		if (m->u.saga_submit.steps != NULL) {
			proto_saga_submit *s = &m->u.saga_submit;
			for (uint32_t i = 0; i < s->n_steps; i++) {
				free_op(&s->steps[i].action);
				free_op(&s->steps[i].compensate);
			}
			dtx_free(s->steps);
		}
		break;
	case PROTO_SAGA_REPLY:
		dtx_free(m->u.saga_reply.gid);
		dtx_free(m->u.saga_reply.reason);
		break;
	case PROTO_STEP:
		dtx_free(m->u.step.gid);
		free_ops(m->u.step.ops, m->u.step.n_ops);
		break;
	case PROTO_STEP_REPLY:
		dtx_free(m->u.step_reply.gid);
		dtx_free(m->u.step_reply.reason);
		break;
	case PROTO_SAGA_STATUS:
	case PROTO_SAGA_FORGET:
		dtx_free(m->u.gid.gid);
		break;
	case PROTO_SAGA_STATUS_REPLY:
		dtx_free(m->u.saga_status_reply.gid);
		dtx_free(m->u.saga_status_reply.step_states);
		dtx_free(m->u.saga_status_reply.last_error);
		break;
	default:
		break;
	}
	memset(m, 0, sizeof(*m));
}

dtx_err
proto_str_set(char **dst, const char *s)
{
	char *c = NULL;
	if (s != NULL) {
		if (strlen(s) > PROTO_MAX_STR)
			return DTX_EINVAL;
		if ((c = dtx_strdup(s)) == NULL)
			return DTX_ENOMEM;
	}
	dtx_free(*dst);
	*dst = c;
	return DTX_OK;
}

dtx_err
proto_bytes_set(proto_bytes *dst, const void *p, size_t n)
{
	if (n > UINT32_MAX)
		return DTX_EINVAL;
	uint8_t *c = dtx_alloc(n);
	if (c == NULL)
		return DTX_ENOMEM;
	if (n > 0)
		memcpy(c, p, n);
	dtx_free(dst->p);
	dst->p = c;
	dst->n = (uint32_t)n;
	return DTX_OK;
}

dtx_err
proto_msg_set_error(proto_msg *m, dtx_err code, const char *fmt, ...)
{
	char buf[PROTO_MAX_STR + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	char *reason = dtx_strdup(buf);
	if (reason == NULL)
		return DTX_ENOMEM;
	uint64_t id = m->hdr.id;
	proto_msg_free(m);
	proto_msg_init(m, PROTO_ERROR);
	m->hdr.id = id;
	m->u.error.code = code;
	m->u.error.reason = reason;
	return DTX_OK;
}
