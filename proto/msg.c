// SPDX-License-Identifier: MIT
//
// Message lifecycle: type names, initialisation, and freeing everything a
// decoded (or handler-built) message owns (each body's part through its
// descriptor in bodies.c).

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wire_int.h"

const char *
proto_type_name(proto_type type)
{
	const proto__body *b = proto__body_of(type);
	return b != NULL ? b->name : "?";
}

proto_type
proto__type_lookup(const char *name, size_t len)
{
	for (int t = PROTO_NONE + 1; t < PROTO_TYPE_COUNT; t++) {
		const char *n = proto__body_of((proto_type)t)->name;
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

void
proto_msg_free(proto_msg *m)
{
	if (m == NULL)
		return;
	const proto__body *b = proto__body_of(m->hdr.type);
	if (b != NULL && b->free != NULL)
		b->free(m);
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
