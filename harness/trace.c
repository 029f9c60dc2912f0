// SPDX-License-Identifier: MIT
//
// dtx trace's library: the events of one transaction or saga gathered
// from the daemons' trace rings (TRACE) and from the debug records of
// their logs, deduplicated, ordered by happened-before over their vector
// clocks, and written as text or as a page with one lane per node.

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "harness_int.h"

void
hx_trace_init(hx_trace *t, uint64_t txid, const char *gid)
{
	memset(t, 0, sizeof(*t));
	t->txid = txid;
	if (txid == 0 && gid != NULL)
		snprintf(t->gid, sizeof(t->gid), "%s", gid);
}

void
hx_trace_fini(hx_trace *t)
{
	if (t == NULL)
		return;
	dtx_free(t->ev);
	dtx_free(t->reach);
	memset(t, 0, sizeof(*t));
}

// Whether name is the traced saga's gid or one of its aliases.
static bool
is_ours(const hx_trace *t, const char *name)
{
	if (name[0] == '\0')
		return false;
	if (strcmp(name, t->gid) == 0)
		return true;
	for (size_t i = 0; i < t->naliases; i++)
		if (strcmp(name, t->alias[i]) == 0)
			return true;
	return false;
}

static void
learn(hx_trace *t, const char *name)
{
	if (name[0] == '\0' || is_ours(t, name) ||
	    t->naliases == HX_TRACE_ALIASES)
		return;
	snprintf(t->alias[t->naliases++], sizeof(t->alias[0]), "%s", name);
}

// Whether e is about the traced transaction or saga; an event naming
// the saga by both its names teaches the other one.
static bool
about(hx_trace *t, const hx_trace_ev *e)
{
	if (t->txid != 0)
		return e->txid == t->txid;
	if (t->gid[0] == '\0')
		return false;
	if (is_ours(t, e->gid)) {
		learn(t, e->alias);
		return true;
	}
	if (is_ours(t, e->alias)) {
		learn(t, e->gid);
		return true;
	}
	return false;
}

static uint64_t
own(const hx_trace_ev *e)
{
	return e->node < CLK_VC_MAX ? e->vc.c[e->node] : 0;
}

dtx_err
hx_trace_add(hx_trace *t, const hx_trace_ev *e)
{
	if (!about(t, e))
		return DTX_OK;
	for (size_t i = 0; i < t->n; i++)
		if (t->ev[i].node == e->node && own(&t->ev[i]) == own(e))
			return DTX_OK;
	if (DTX_GROW(t->ev, t->n, t->cap, 64) != DTX_OK)
		return DTX_ENOMEM;
	t->ev[t->n] = *e;
	t->ev[t->n].send = -1;
	t->ev[t->n].step = 0;
	t->n++;
	return DTX_OK;
}

dtx_err
hx_trace_add_reply(hx_trace *t, const proto_trace_reply *r, const char *name)
{
	t->lost += r->lost;
	for (uint32_t i = 0; i < r->n_events; i++) {
		const proto_trace_ev *p = &r->events[i];
		hx_trace_ev e = { .node = r->node,
			.kind = p->kind,
			.peer = p->peer,
			.peer_c = p->peer_c,
			.txid = p->txid,
			.hlc = p->hlc,
			.vc = p->vc };
		snprintf(e.name, sizeof(e.name), "%s", name);
		if (p->kind == PROTO_EV_SEND || p->kind == PROTO_EV_RECV)
			snprintf(e.type, sizeof(e.type), "%s",
			    proto_type_name(p->type));
		snprintf(e.gid, sizeof(e.gid), "%s", p->gid ? p->gid : "");
		snprintf(e.what, sizeof(e.what), "%s", p->what ? p->what : "");
		snprintf(
		    e.alias, sizeof(e.alias), "%s", p->alias ? p->alias : "");
		dtx_err rv = hx_trace_add(t, &e);
		if (rv != DTX_OK)
			return rv;
	}
	return DTX_OK;
}

// "L.C" into *out.
static bool
parse_hlc(const char *s, clk_ts *out)
{
	char *end;
	unsigned long long l = strtoull(s, &end, 10);
	if (end == s || *end != '.')
		return false;
	const char *c = end + 1;
	unsigned long long lc = strtoull(c, &end, 10);
	if (end == c || *end != '\0' || l > CLK_L_MAX || lc > CLK_LOGICAL_MAX)
		return false;
	*out = clk_ts_make(l, (uint32_t)lc);
	return true;
}

// "id:count,..." into *out (n = CLK_VC_MAX).
static bool
parse_vc(const char *s, clk_vc *out)
{
	clk_vc_init(out, CLK_VC_MAX);
	while (*s != '\0') {
		char *end;
		unsigned long id = strtoul(s, &end, 10);
		if (end == s || *end != ':' || id >= CLK_VC_MAX)
			return false;
		s = end + 1;
		unsigned long long c = strtoull(s, &end, 10);
		if (end == s || (*end != ',' && *end != '\0'))
			return false;
		out->c[id] = c;
		s = *end == ',' ? end + 1 : end;
	}
	return true;
}

// The node id at the end of a log name ("part-2" -> 2).
static bool
name_id(const char *name, uint32_t *id)
{
	const char *dash = strrchr(name, '-');
	char *end;
	if (dash == NULL || dash[1] == '\0')
		return false;
	unsigned long v = strtoul(dash + 1, &end, 10);
	if (*end != '\0' || v >= CLK_VC_MAX)
		return false;
	*id = (uint32_t)v;
	return true;
}

static uint64_t
u64_of(const dtx_log_kv *kv, int n, const char *key)
{
	const char *v = dtx_log_get(kv, n, key);
	return v != NULL ? strtoull(v, NULL, 10) : 0;
}

// One log line as an event; false when it is not a trace record.
static bool
line_event(const char *line, size_t len, hx_trace_ev *e)
{
	char scratch[4096];
	dtx_log_kv kv[32];
	int n = dtx_log_parse(line, len, kv, 32, scratch, sizeof(scratch));
	const char *ev = n > 0 ? dtx_log_get(kv, n, "ev") : NULL;
	const char *node = n > 0 ? dtx_log_get(kv, n, "node") : NULL;
	const char *hlc = n > 0 ? dtx_log_get(kv, n, "hlc") : NULL;
	const char *vc = n > 0 ? dtx_log_get(kv, n, "vc") : NULL;
	if (ev == NULL || node == NULL || hlc == NULL || vc == NULL)
		return false;
	memset(e, 0, sizeof(*e));
	int k = 0;
	while (k < PROTO_EV_COUNT && strcmp(proto_ev_name(k), ev) != 0)
		k++;
	if (k == PROTO_EV_COUNT || !name_id(node, &e->node) ||
	    !parse_hlc(hlc, &e->hlc) || !parse_vc(vc, &e->vc))
		return false;
	e->kind = (proto_ev_kind)k;
	snprintf(e->name, sizeof(e->name), "%s", node);
	const char *s = dtx_log_get(kv, n, "type");
	snprintf(e->type, sizeof(e->type), "%s", s != NULL ? s : "");
	s = dtx_log_get(kv, n, "gid");
	snprintf(e->gid, sizeof(e->gid), "%s", s != NULL ? s : "");
	s = dtx_log_get(kv, n, "alias");
	snprintf(e->alias, sizeof(e->alias), "%s", s != NULL ? s : "");
	s = dtx_log_get(kv, n, "msg");
	snprintf(e->what, sizeof(e->what), "%s", s != NULL ? s : "");
	e->txid = u64_of(kv, n, "txid");
	e->peer = (uint32_t)u64_of(kv, n, "peer");
	e->peer_c = u64_of(kv, n, "pc");
	return true;
}

// Reads the trace records of path: adds them, or (learn_only) only
// learns the saga's aliases from them.
static dtx_err
scan_log(hx_trace *t, const char *path, bool learn_only)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return DTX_ENOENT;
	char line[4096];
	dtx_err rv = DTX_OK;
	const char *mark = learn_only ? "alias" : "ev";
	while (rv == DTX_OK && fgets(line, sizeof(line), f) != NULL) {
		size_t len = strcspn(line, "\n");
		hx_trace_ev e;
		// A cheap test first: most lines of a busy log are not ours.
		char k1[16], k2[16];
		snprintf(k1, sizeof(k1), " %s=", mark);
		snprintf(k2, sizeof(k2), "\"%s\":", mark);
		if (strstr(line, k1) == NULL && strstr(line, k2) == NULL)
			continue;
		if (!line_event(line, len, &e))
			continue;
		if (learn_only)
			(void)about(t, &e);
		else
			rv = hx_trace_add(t, &e);
	}
	fclose(f);
	return rv;
}

dtx_err
hx_trace_add_log(hx_trace *t, const char *path)
{
	return scan_log(t, path, false);
}

dtx_err
hx_trace_add_logs(hx_trace *t, const char *const *paths, size_t n)
{
	dtx_err rv = DTX_OK;
	if (t->txid == 0)
		for (size_t i = 0; i < n; i++)
			(void)scan_log(t, paths[i], true);
	for (size_t i = 0; rv == DTX_OK && i < n; i++)
		if ((rv = scan_log(t, paths[i], false)) == DTX_ENOENT)
			rv = DTX_OK;
	return rv;
}

// The log name of a node of topo, as its daemon names itself.
static void
node_name(const dtx_topo *topo, uint32_t id, char *buf, size_t len)
{
	const dtx_node *nd = dtx_topo_find(topo, id);
	const char *role = nd == NULL          ? "node"
	    : nd->role == DTX_ROLE_COORDINATOR ? "coord"
	    : nd->role == DTX_ROLE_PARTICIPANT ? "part"
	                                       : dtx_role_name(nd->role);
	snprintf(buf, len, "%s-%u", role, id);
}

// Asks every daemon for the events of txid, or of the saga by name.
static dtx_err
fetch_one(hx_conn *c, hx_trace *t, const char *name, uint32_t timeout_ms,
    size_t *answered)
{
	const dtx_topo *topo = hx_conn_topo(c);
	size_t ok = 0;
	dtx_err rv = DTX_OK;
	for (size_t i = 0; rv == DTX_OK && i < topo->n; i++) {
		const dtx_node *nd = &topo->nodes[i];
		if (nd->role == DTX_ROLE_CLIENT)
			continue;
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_TRACE);
		req.u.trace.txid = t->txid;
		req.u.trace.gid = t->txid == 0 ? (char *)name : NULL;
		if (hx_conn_call(c, nd->id, &req, &rep, timeout_ms, true) !=
		    DTX_OK)
			continue;
		if (rep.hdr.type == PROTO_TRACE_REPLY) {
			char nm[32];
			node_name(topo, nd->id, nm, sizeof(nm));
			rv = hx_trace_add_reply(t, &rep.u.trace_reply, nm);
			ok++;
		}
		proto_msg_free(&rep);
	}
	if (answered != NULL)
		*answered = ok;
	return rv;
}

dtx_err
hx_trace_fetch(hx_conn *c, hx_trace *t, uint32_t timeout_ms, size_t *answered)
{
	dtx_err rv = fetch_one(c, t, t->gid, timeout_ms, answered);
	// Then the saga under each name its events taught us.
	for (size_t i = 0; rv == DTX_OK && t->txid == 0 && i < t->naliases; i++)
		rv = fetch_one(c, t, t->alias[i], timeout_ms, NULL);
	return rv;
}
