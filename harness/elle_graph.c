// SPDX-License-Identifier: MIT
//
// The list-append checker's dependency graph: edges collected and merged,
// strongly connected components (Tarjan, without recursion), and in each
// component the shortest cycle of each class (G0, G1c, G-single, G2)
// found by breadth-first search from the edges that can start one, named
// with its transactions and edges as evidence.

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "elle_int.h"

static const char *const dep_names[LA_NDEPS] = { "ww", "wr", "rw" };
static const char *const cycle_names[LA_NCYCLES] = { "G0", "G1c", "G-single",
	"G2" };

const char *
la_cycle_name(la_cycle c)
{
	return (unsigned)c < LA_NCYCLES ? cycle_names[c] : "?";
}

dtx_err
la_graph_add(
    la_graph *g, uint32_t from, uint32_t to, la_dep d, const la_why *why)
{
	if (from == to)
		return DTX_OK;
	if (DTX_GROW(g->e, g->ne, g->cap, 256) != DTX_OK)
		return DTX_ENOMEM;
	la_edge *e = &g->e[g->ne++];
	memset(e, 0, sizeof(*e));
	e->from = from;
	e->to = to;
	e->types = (uint8_t)(1u << d);
	e->why[d] = *why;
	return DTX_OK;
}

static int
cmp_edge(const void *a, const void *b)
{
	const la_edge *x = a, *y = b;
	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	return x->to < y->to ? -1 : x->to > y->to;
}

dtx_err
la_graph_finish(la_graph *g)
{
	if (g->ne > 1)
		qsort(g->e, g->ne, sizeof(*g->e), cmp_edge);
	size_t k = 0;
	for (size_t i = 0; i < g->ne; i++) {
		if (k > 0 && g->e[k - 1].from == g->e[i].from &&
		    g->e[k - 1].to == g->e[i].to) {
			la_edge *m = &g->e[k - 1];
			for (int d = 0; d < LA_NDEPS; d++)
				if ((g->e[i].types & (1u << d)) &&
				    !(m->types & (1u << d))) {
					m->types |= (uint8_t)(1u << d);
					m->why[d] = g->e[i].why[d];
				}
			continue;
		}
		g->e[k++] = g->e[i];
	}
	g->ne = k;
	if ((g->off = dtx_calloc(g->n + 1, sizeof(*g->off))) == NULL)
		return DTX_ENOMEM;
	for (size_t i = 0; i < g->ne; i++) {
		g->off[g->e[i].from + 1]++;
		for (int d = 0; d < LA_NDEPS; d++)
			if (g->e[i].types & (1u << d))
				g->counts[d]++;
	}
	for (size_t i = 0; i < g->n; i++)
		g->off[i + 1] += g->off[i];
	return DTX_OK;
}

void
la_graph_fini(la_graph *g)
{
	dtx_free(g->e);
	dtx_free(g->off);
	memset(g, 0, sizeof(*g));
}

// ---------------------------------------------------------------- SCC

// Tarjan's algorithm with an explicit stack: comp[v] gets v's component,
// size[c] its size. Returns the number of components.
typedef struct scc {
	uint32_t *comp, *size;
	uint32_t *index, *low, *stack, *call, *next_edge;
	bool *on;
} scc;

static void
scc_fini(scc *s)
{
	dtx_free(s->comp);
	dtx_free(s->size);
	dtx_free(s->index);
	dtx_free(s->low);
	dtx_free(s->stack);
	dtx_free(s->call);
	dtx_free(s->next_edge);
	dtx_free(s->on);
}

static dtx_err
scc_run(const la_graph *g, scc *s)
{
	size_t n = g->n ? g->n : 1;
	memset(s, 0, sizeof(*s));
	s->comp = dtx_calloc(n, sizeof(uint32_t));
	s->size = dtx_calloc(n, sizeof(uint32_t));
	s->index = dtx_calloc(n, sizeof(uint32_t)); // 0: unvisited
	s->low = dtx_calloc(n, sizeof(uint32_t));
	s->stack = dtx_calloc(n, sizeof(uint32_t));
	s->call = dtx_calloc(n, sizeof(uint32_t));
	s->next_edge = dtx_calloc(n, sizeof(uint32_t));
	s->on = dtx_calloc(n, sizeof(bool));
	if (!s->comp || !s->size || !s->index || !s->low || !s->stack ||
	    !s->call || !s->next_edge || !s->on)
		return DTX_ENOMEM;
	uint32_t counter = 0, sp = 0, ncomp = 0;
	for (uint32_t root = 0; root < g->n; root++) {
		if (s->index[root])
			continue;
		uint32_t depth = 0;
		s->call[depth++] = root;
		s->index[root] = s->low[root] = ++counter;
		s->next_edge[root] = (uint32_t)g->off[root];
		s->stack[sp++] = root;
		s->on[root] = true;
		while (depth > 0) {
			uint32_t v = s->call[depth - 1];
			if (s->next_edge[v] < g->off[v + 1]) {
				uint32_t w = g->e[s->next_edge[v]++].to;
				if (!s->index[w]) {
					s->index[w] = s->low[w] = ++counter;
					s->next_edge[w] = (uint32_t)g->off[w];
					s->stack[sp++] = w;
					s->on[w] = true;
					s->call[depth++] = w;
				} else if (s->on[w] &&
				    s->index[w] < s->low[v]) {
					s->low[v] = s->index[w];
				}
				continue;
			}
			depth--;
			if (depth > 0) {
				uint32_t u = s->call[depth - 1];
				if (s->low[v] < s->low[u])
					s->low[u] = s->low[v];
			}
			if (s->low[v] != s->index[v])
				continue;
			uint32_t w;
			do {
				w = s->stack[--sp];
				s->on[w] = false;
				s->comp[w] = ncomp;
				s->size[ncomp]++;
			} while (w != v);
			ncomp++;
		}
	}
	return DTX_OK;
}

// ---------------------------------------------------------------- search

// Breadth-first search state, per node: visited in search number stamp,
// the previous node, the dependency kind that reached it.
typedef struct bfs {
	uint32_t *stamp;
	uint32_t *parent;
	uint8_t *via;
	uint32_t *queue;
	uint32_t cur;
} bfs;

// The kinds a path may use for class c (after its first edge).
static uint8_t
path_mask(la_cycle c)
{
	switch (c) {
	case LA_G0:
		return 1u << LA_WW;
	case LA_G1C:
	case LA_GSINGLE:
		return (1u << LA_WW) | (1u << LA_WR);
	default:
		return 0x7;
	}
}

// The kind that starts a cycle of class c.
static la_dep
start_dep(la_cycle c)
{
	return c == LA_G0 ? LA_WW : c == LA_G1C ? LA_WR : LA_RW;
}

// Shortest path from b back to a inside component comp for class c, so a
// simple cycle a -> b -> ... -> a. Writes the cycle's nodes (a first) and
// the kind of the edge leaving each into nodes/deps (at most cap) and
// returns its length, 0 if none. An edge of several kinds is taken as the
// first allowed of ww, wr, rw: the cycle is named by its mildest reading.
// For G2 the path may use every kind and the cycle counts only when it
// holds at least two rw edges (a path without another rw is a G-single,
// found by that search).
static size_t
shortest(const la_graph *g, const scc *s, bfs *q, la_cycle c, uint32_t a,
    uint32_t b, uint32_t *nodes, uint8_t *deps, size_t cap)
{
	uint8_t mask = path_mask(c);
	size_t head = 0, tail = 0;
	uint32_t comp = s->comp[a];
	q->cur++;
	q->stamp[b] = q->cur;
	q->parent[b] = UINT32_MAX;
	q->queue[tail++] = b;
	bool found = false;
	while (head < tail && !found) {
		uint32_t v = q->queue[head++];
		for (size_t i = g->off[v]; i < g->off[v + 1] && !found; i++) {
			const la_edge *e = &g->e[i];
			uint32_t w = e->to;
			if (s->comp[w] != comp || !(e->types & mask) ||
			    q->stamp[w] == q->cur)
				continue;
			int d = 0;
			while (!(e->types & mask & (1u << d)))
				d++;
			q->stamp[w] = q->cur;
			q->parent[w] = v;
			q->via[w] = (uint8_t)d;
			q->queue[tail++] = w;
			found = w == a;
		}
	}
	if (!found)
		return 0;
	size_t len = 1, rws = start_dep(c) == LA_RW;
	for (uint32_t v = a; v != b; v = q->parent[v]) {
		len++;
		rws += q->via[v] == LA_RW;
	}
	if (len > cap || (c == LA_G2 && rws < 2))
		return 0;
	// Walk back from a: node k is the parent of node k + 1.
	nodes[0] = a;
	deps[0] = (uint8_t)start_dep(c);
	size_t k = len - 1;
	for (uint32_t v = a; v != b; v = q->parent[v]) {
		nodes[k] = q->parent[v];
		deps[k] = q->via[v];
		k--;
	}
	return len;
}

// ---------------------------------------------------------------- evidence

static const la_edge *
find_edge(const la_graph *g, uint32_t from, uint32_t to)
{
	size_t lo = g->off[from], hi = g->off[from + 1];
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (g->e[mid].to == to)
			return &g->e[mid];
		if (g->e[mid].to < to)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void
txn_json(hx_sb *sb, const la_txn *t, const hx_history *h)
{
	const hx_op *op = hx_history_get(h, (size_t)t->inv);
	const hx_op *cop =
	    t->comp >= 0 ? hx_history_get(h, (size_t)t->comp) : NULL;
	hx_sb_printf(sb, "{\"op\":%" PRId64 ",\"process\":%" PRId64, t->inv,
	    op->process);
	if (t->has_txid)
		hx_sb_printf(sb, ",\"txid\":%" PRIu64, t->txid);
	hx_sb_printf(sb, ",\"type\":\"%s\",\"value\":%s}",
	    cop ? hx_op_type_name(cop->type) : "info",
	    cop && cop->value ? cop->value
	        : op->value   ? op->value
	                      : "null");
}

static void
why_json(hx_sb *sb, la_dep d, const la_why *w)
{
	hx_sb_printf(sb, "\"key\":%" PRId64 ",\"why\":", w->key);
	char txt[200];
	switch (d) {
	case LA_WW:
		snprintf(txt, sizeof(txt),
		    "on key %" PRId64 " element %" PRId64
		    " (from) comes just before %" PRId64 " (to)",
		    w->key, w->a, w->b);
		break;
	case LA_WR:
		snprintf(txt, sizeof(txt),
		    "to read key %" PRId64 " up to element %" PRId64
		    ", appended by from",
		    w->key, w->a);
		break;
	default:
		if (w->empty)
			snprintf(txt, sizeof(txt),
			    "from read key %" PRId64
			    " empty; to appended its first element %" PRId64,
			    w->key, w->b);
		else
			snprintf(txt, sizeof(txt),
			    "from read key %" PRId64 " up to element %" PRId64
			    "; to appended the next one, %" PRId64,
			    w->key, w->a, w->b);
	}
	hx_sb_json_str(sb, txt);
}

// The anomaly detail of one cycle: its transactions in order and the
// edge from each to the next.
static char *
cycle_json(const la_graph *g, const la_txn *txns, const hx_history *h,
    la_cycle c, const uint32_t *nodes, const uint8_t *deps, size_t len)
{
	hx_sb sb = { 0 };
	hx_sb_printf(&sb, "{\"class\":\"%s\",\"length\":%zu,\"txns\":[",
	    la_cycle_name(c), len);
	for (size_t i = 0; i < len; i++) {
		hx_sb_printf(&sb, "%s", i ? "," : "");
		txn_json(&sb, &txns[nodes[i]], h);
	}
	hx_sb_printf(&sb, "],\"edges\":[");
	for (size_t i = 0; i < len; i++) {
		uint32_t from = nodes[i], to = nodes[(i + 1) % len];
		const la_edge *e = find_edge(g, from, to);
		hx_sb_printf(&sb,
		    "%s{\"from\":%" PRId64 ",\"to\":%" PRId64
		    ",\"type\":\"%s\",",
		    i ? "," : "", txns[from].inv, txns[to].inv,
		    dep_names[deps[i]]);
		if (e != NULL)
			why_json(&sb, (la_dep)deps[i], &e->why[deps[i]]);
		else
			hx_sb_printf(&sb, "\"key\":null");
		hx_sb_printf(&sb, "}");
	}
	hx_sb_printf(&sb, "]}");
	return hx_sb_take(&sb);
}

// The shortest cycle of class c in component comp (through at most
// LA_MAX_STARTS of its start edges), into best/bdeps; its length or 0.
static size_t
best_in(const la_graph *g, const scc *s, bfs *q, la_cycle c, uint32_t comp,
    const uint32_t *members, size_t nm, uint32_t *best, uint8_t *bdeps,
    uint32_t *tmp, uint8_t *tdeps)
{
	size_t blen = 0, starts = 0;
	uint8_t want = (uint8_t)(1u << start_dep(c));
	for (size_t m = 0; m < nm && starts < LA_MAX_STARTS; m++) {
		uint32_t a = members[m];
		for (size_t i = g->off[a];
		     i < g->off[a + 1] && starts < LA_MAX_STARTS; i++) {
			const la_edge *e = &g->e[i];
			if (!(e->types & want) || s->comp[e->to] != comp)
				continue;
			starts++;
			size_t len =
			    shortest(g, s, q, c, a, e->to, tmp, tdeps, nm + 1);
			if (len == 0 || (blen != 0 && len >= blen))
				continue;
			blen = len;
			memcpy(best, tmp, len * sizeof(*tmp));
			memcpy(bdeps, tdeps, len);
			if (blen == 2)
				return blen;
		}
	}
	return blen;
}

// Members of every component, grouped: start[c]..start[c+1] in order.
static dtx_err
group_members(const la_graph *g, const scc *s, uint32_t **members,
    size_t **start, size_t *ncomp)
{
	size_t nc = 0;
	for (size_t v = 0; v < g->n; v++)
		if (s->comp[v] + 1 > nc)
			nc = s->comp[v] + 1;
	*ncomp = nc;
	*members = dtx_calloc(g->n ? g->n : 1, sizeof(uint32_t));
	*start = dtx_calloc(nc + 1, sizeof(size_t));
	if (*members == NULL || *start == NULL)
		return DTX_ENOMEM;
	for (size_t v = 0; v < g->n; v++)
		(*start)[s->comp[v] + 1]++;
	for (size_t c = 0; c < nc; c++)
		(*start)[c + 1] += (*start)[c];
	size_t *fill = dtx_calloc(nc + 1, sizeof(size_t));
	if (fill == NULL)
		return DTX_ENOMEM;
	for (size_t v = 0; v < g->n; v++) {
		uint32_t c = s->comp[v];
		(*members)[(*start)[c] + fill[c]++] = (uint32_t)v;
	}
	dtx_free(fill);
	return DTX_OK;
}

dtx_err
la_find_cycles(const la_graph *g, const la_txn *txns, const hx_history *h,
    hx_check *c, size_t found[LA_NCYCLES])
{
	scc s;
	bfs q = { 0 };
	uint32_t *members = NULL, *best = NULL, *tmp = NULL;
	uint8_t *bdeps = NULL, *tdeps = NULL;
	size_t *start = NULL, ncomp = 0, n2 = g->n + 2;
	size_t reported[LA_NCYCLES] = { 0 };
	memset(found, 0, LA_NCYCLES * sizeof(found[0]));
	dtx_err rv = scc_run(g, &s);
	if (rv == DTX_OK)
		rv = group_members(g, &s, &members, &start, &ncomp);
	q.stamp = dtx_calloc(n2, sizeof(uint32_t));
	q.parent = dtx_calloc(n2, sizeof(uint32_t));
	q.via = dtx_calloc(n2, 1);
	q.queue = dtx_calloc(n2, sizeof(uint32_t));
	best = dtx_calloc(n2, sizeof(uint32_t));
	tmp = dtx_calloc(n2, sizeof(uint32_t));
	bdeps = dtx_calloc(n2, 1);
	tdeps = dtx_calloc(n2, 1);
	if (rv == DTX_OK &&
	    (!q.stamp || !q.parent || !q.via || !q.queue || !best || !tmp ||
	        !bdeps || !tdeps))
		rv = DTX_ENOMEM;
	for (size_t k = 0; k < ncomp && rv == DTX_OK; k++) {
		size_t nm = start[k + 1] - start[k];
		if (nm < 2)
			continue;
		for (int cl = 0; cl < LA_NCYCLES && rv == DTX_OK; cl++) {
			size_t len = best_in(g, &s, &q, (la_cycle)cl,
			    (uint32_t)k, members + start[k], nm, best, bdeps,
			    tmp, tdeps);
			if (len == 0)
				continue;
			found[cl]++;
			if (reported[cl]++ >= LA_MAX_EXAMPLES)
				continue;
			const la_txn *t0 = &txns[best[0]];
			rv = hx__check_anomaly(c, la_cycle_name((la_cycle)cl),
			    hx_history_get(h, (size_t)t0->inv), t0->has_txid,
			    t0->txid, NULL,
			    cycle_json(
			        g, txns, h, (la_cycle)cl, best, bdeps, len));
		}
	}
	scc_fini(&s);
	dtx_free(members);
	dtx_free(start);
	dtx_free(q.stamp);
	dtx_free(q.parent);
	dtx_free(q.via);
	dtx_free(q.queue);
	dtx_free(best);
	dtx_free(tmp);
	dtx_free(bdeps);
	dtx_free(tdeps);
	return rv;
}
