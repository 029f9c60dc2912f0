// SPDX-License-Identifier: MIT
//
// The daemon's trace ring: the last events of its transactions and sagas
// (sends, receives, forces, decisions...) with the HLC and vector clock of
// each, in a fixed array that overwrites its oldest entry, so that a
// cluster can be asked after the fact how one transaction went
// (TRACE, `dtx trace`) at a bounded memory cost.

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "proto_int.h"

// A reply stops short of the message size limit by this much, counting
// each event's encoded size from above.
#define REPLY_BUDGET (PROTO_MAX_MSG_DEFAULT - 65536)

typedef struct slot {
	proto_trace_ev e; // gid and what point into the arrays below
	char gid[PROTO_MAX_STR + 1];
	char what[32];
	char alias[PROTO_MAX_STR + 1];
} slot;

struct proto__trace {
	pthread_mutex_t mu;
	slot *ring;
	size_t cap, n, head; // head: the next slot written
	uint64_t seq, overwritten;
};

dtx_err
proto__trace_new(size_t cap, proto__trace **out)
{
	*out = NULL;
	if (cap == 0)
		return DTX_OK;
	proto__trace *t = dtx_calloc(1, sizeof(*t));
	if (t == NULL)
		return DTX_ENOMEM;
	if ((t->ring = dtx_calloc(cap, sizeof(*t->ring))) == NULL) {
		dtx_free(t);
		return DTX_ENOMEM;
	}
	pthread_mutex_init(&t->mu, NULL);
	t->cap = cap;
	*out = t;
	return DTX_OK;
}

void
proto__trace_free(proto__trace *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->mu);
	dtx_free(t->ring);
	dtx_free(t);
}

void
proto__trace_add(proto__trace *t, const proto_trace_ev *e)
{
	if (t == NULL)
		return;
	pthread_mutex_lock(&t->mu);
	slot *s = &t->ring[t->head];
	s->e = *e;
	s->e.seq = ++t->seq;
	snprintf(s->gid, sizeof(s->gid), "%s", e->gid != NULL ? e->gid : "");
	snprintf(
	    s->what, sizeof(s->what), "%s", e->what != NULL ? e->what : "");
	snprintf(
	    s->alias, sizeof(s->alias), "%s", e->alias != NULL ? e->alias : "");
	s->e.gid = NULL;
	s->e.what = NULL;
	s->e.alias = NULL;
	t->head = (t->head + 1) % t->cap;
	if (t->n < t->cap)
		t->n++;
	else
		t->overwritten++;
	pthread_mutex_unlock(&t->mu);
}

static bool
matches(const slot *s, uint64_t txid, const char *gid)
{
	if (txid == 0 && gid == NULL)
		return true;
	return (txid != 0 && s->e.txid == txid) ||
	    (gid != NULL &&
	        (strcmp(s->gid, gid) == 0 || strcmp(s->alias, gid) == 0));
}

// An event's encoded size, from above.
static size_t
ev_size(const slot *s)
{
	return 96 + strlen(s->gid) + strlen(s->what) + strlen(s->alias) +
	    20u * s->e.vc.n;
}

// Copies slot s into e with owned strings. DTX_ENOMEM.
static dtx_err
copy_out(const slot *s, proto_trace_ev *e)
{
	*e = s->e;
	e->gid = NULL;
	e->what = NULL;
	e->alias = NULL;
	if (s->gid[0] != '\0' && (e->gid = dtx_strdup(s->gid)) == NULL)
		return DTX_ENOMEM;
	if (s->alias[0] != '\0' && (e->alias = dtx_strdup(s->alias)) == NULL)
		return DTX_ENOMEM;
	if (s->what[0] != '\0' && (e->what = dtx_strdup(s->what)) == NULL)
		return DTX_ENOMEM;
	return DTX_OK;
}

dtx_err
proto__trace_collect(
    proto__trace *t, uint64_t txid, const char *gid, proto_trace_reply *out)
{
	out->n_events = 0;
	out->events = NULL;
	out->lost = 0;
	if (t == NULL)
		return DTX_OK;
	pthread_mutex_lock(&t->mu);
	size_t first = (t->head + t->cap - t->n) % t->cap;
	// The newest matching events that fit: count back from the end.
	size_t take = 0, bytes = 0, skipped = 0, start = t->n;
	for (size_t i = t->n; i-- > 0;) {
		const slot *s = &t->ring[(first + i) % t->cap];
		if (!matches(s, txid, gid))
			continue;
		if (skipped > 0 || take == PROTO_MAX_TRACE ||
		    bytes + ev_size(s) > REPLY_BUDGET) {
			skipped++;
			continue;
		}
		bytes += ev_size(s);
		take++;
		start = i;
	}
	dtx_err rv = DTX_OK;
	if (take > 0 &&
	    (out->events = dtx_calloc(take, sizeof(*out->events))) == NULL)
		rv = DTX_ENOMEM;
	for (size_t i = start; rv == DTX_OK && i < t->n; i++) {
		const slot *s = &t->ring[(first + i) % t->cap];
		if (!matches(s, txid, gid) || out->n_events == take)
			continue;
		rv = copy_out(s, &out->events[out->n_events++]);
	}
	out->lost = t->overwritten + skipped;
	pthread_mutex_unlock(&t->mu);
	return rv;
}

void
proto__fmt_hlc(char *buf, size_t len, clk_ts ts)
{
	snprintf(buf, len, "%" PRIu64 ".%u", clk_ts_l(ts), clk_ts_c(ts));
}

void
proto__fmt_vc(char *buf, size_t len, const clk_vc *vc)
{
	size_t n = 0;
	buf[0] = '\0';
	for (uint32_t i = 0; i < vc->n && i < CLK_VC_MAX; i++) {
		if (vc->c[i] == 0)
			continue;
		int r = snprintf(buf + n, len - n, "%s%u:%" PRIu64,
		    n > 0 ? "," : "", i, vc->c[i]);
		if (r < 0 || (size_t)r >= len - n)
			break;
		n += (size_t)r;
	}
}
