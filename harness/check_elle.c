// SPDX-License-Identifier: MIT
//
// The list-append checker, after Elle (Kingsbury and Alvaro, "Elle:
// inferring isolation anomalies from experimental observations"): every
// appended element is unique per key, so a read of a list names the
// transaction that wrote each element and, by its order, the order of
// those writes. From the reads it infers each key's version order, then
// the ww, wr and rw dependencies between transactions, and hands the graph
// to elle_graph.c for its cycles. Anomalies that need no cycle (aborted
// and intermediate reads, orders that disagree, elements twice or from
// nowhere, committed appends a final read lacks) are found here.

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "elle_int.h"

static const char *const kind_names[HX_ELLE_NKINDS] = { "G0", "G1a", "G1b",
	"G1c", "G-single", "G2", "incompatible-order", "duplicate-elements",
	"unknown-element", "lost-append", "duplicate-append", "malformed-txn" };

const char *
hx_elle_kind_name(hx_elle_kind k)
{
	return (unsigned)k < HX_ELLE_NKINDS ? kind_names[k] : "?";
}

// Examples kept per kind that needs no cycle (all are counted).
#define MAX_EXAMPLES 8

// ---------------------------------------------------------------- writers

// (key, element) -> the append that wrote it: an open-addressing table.
typedef struct wslot {
	int64_t key, val;
	uint32_t txn; // UINT32_MAX: empty
	bool intermediate; // its txn appends to key again later
} wslot;

typedef struct writers {
	wslot *s;
	size_t mask;
} writers;

static size_t
whash(int64_t k, int64_t v)
{
	uint64_t x = (uint64_t)k * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)v;
	x ^= x >> 31;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	return (size_t)(x ^ (x >> 29));
}

static wslot *
wfind(const writers *w, int64_t k, int64_t v)
{
	for (size_t i = whash(k, v) & w->mask;; i = (i + 1) & w->mask) {
		wslot *s = &w->s[i];
		if (s->txn == UINT32_MAX || (s->key == k && s->val == v))
			return s;
	}
}

// ---------------------------------------------------------------- state

typedef struct rref {
	int64_t key;
	uint32_t txn, mop;
	size_t n;
} rref;

typedef struct ctx {
	hx_elle_result *r;
	const hx_history *h;
	la_txn *t;
	size_t nt;
	writers w;
	rref *reads;
	size_t nreads, rcap;
	la_graph g;
} ctx;

static bool
violation(hx_elle_kind k)
{
	return k != HX_ELLE_DUP_APPEND && k != HX_ELLE_MALFORMED;
}

// Counts an anomaly of kind k and keeps it as an example while fewer
// than MAX_EXAMPLES are kept (detail taken).
static dtx_err
note(ctx *x, hx_elle_kind k, const la_txn *t, char *detail)
{
	if (x->r->counts[k]++ >= MAX_EXAMPLES) {
		dtx_free(detail);
		return DTX_OK;
	}
	const hx_op *op = t ? hx_history_get(x->h, (size_t)t->inv) : NULL;
	return hx__check_anomaly(&x->r->c, kind_names[k], op, t && t->has_txid,
	    t ? t->txid : 0, NULL, detail);
}

static void
list_json(hx_sb *sb, const int64_t *l, size_t n)
{
	hx_sb_printf(sb, "[");
	for (size_t i = 0; i < n; i++)
		hx_sb_printf(sb, "%s%" PRId64, i ? "," : "", l[i]);
	hx_sb_printf(sb, "]");
}

// ---------------------------------------------------------------- parsing

// DTX_EINVAL when m is not a micro-op, DTX_ENOMEM.
static dtx_err
parse_mop(const hx_jv *m, bool comp_ok, la_mop *out)
{
	memset(out, 0, sizeof(*out));
	if (m->type != HX_JV_ARR || m->len != 3 ||
	    m->first->type != HX_JV_STR ||
	    hx_jv_int(m->first->next, &out->key) != DTX_OK)
		return DTX_EINVAL;
	const hx_jv *v = m->first->next->next;
	if (strcmp(m->first->s, "append") == 0) {
		out->append = true;
		return hx_jv_int(v, &out->val);
	}
	if (strcmp(m->first->s, "r") != 0)
		return DTX_EINVAL;
	if (v->type == HX_JV_NULL || !comp_ok)
		return DTX_OK; // not known: an invocation, or not ok
	if (v->type != HX_JV_ARR)
		return DTX_EINVAL;
	out->known = true;
	out->list = dtx_calloc(v->len ? v->len : 1, sizeof(int64_t));
	if (out->list == NULL)
		return DTX_ENOMEM;
	for (const hx_jv *e = v->first; e; e = e->next)
		if (hx_jv_int(e, &out->list[out->n++]) != DTX_OK)
			return DTX_EINVAL;
	return DTX_OK;
}

// Fills t's micro-ops and flags from the JSON text value.
static dtx_err
parse_value(const char *value, bool comp_ok, la_txn *t)
{
	hx_jdoc *doc = NULL;
	if (value == NULL)
		return DTX_EINVAL;
	dtx_err rv = hx_json_parse(value, strlen(value), &doc, NULL, 0);
	if (rv != DTX_OK)
		return rv;
	const hx_jv *root = hx_jdoc_root(doc);
	const hx_jv *m = hx_jv_get(root, "mops");
	const hx_jv *f = hx_jv_get(root, "final");
	t->final = f != NULL && f->type == HX_JV_BOOL && f->b;
	rv = DTX_EINVAL;
	if (m != NULL && m->type == HX_JV_ARR && m->len > 0 &&
	    (t->mops = dtx_calloc(m->len, sizeof(*t->mops))) != NULL) {
		rv = DTX_OK;
		for (const hx_jv *e = m->first; e && rv == DTX_OK; e = e->next)
			if ((rv = parse_mop(e, comp_ok,
			         &t->mops[t->nmops++])) == DTX_ERANGE)
				rv = DTX_EINVAL;
	} else if (m != NULL && m->type == HX_JV_ARR && m->len > 0) {
		rv = DTX_ENOMEM;
	}
	hx_jdoc_free(doc);
	return rv;
}

static int
cmp_obs(const void *a, const void *b)
{
	const hx_txn_obs *x = a, *y = b;
	return x->txid < y->txid ? -1 : x->txid > y->txid;
}

// An indeterminate transaction's status from the observations (sorted by
// txid): committed anywhere; else aborted when some node answered and
// none is in doubt or unknown (the coordinator's presumed abort alone
// decides nothing).
static la_status
resolve(const hx_txn_obs *o, size_t n, uint64_t txid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (o[mid].txid < txid)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t aborted = 0, open = 0;
	bool committed = false;
	for (size_t i = lo; i < n && o[i].txid == txid; i++) {
		committed |= o[i].outcome == HX_TXN_COMMITTED;
		aborted += o[i].outcome == HX_TXN_ABORTED;
		open += o[i].outcome == HX_TXN_IN_DOUBT ||
		    o[i].outcome == HX_TXN_UNKNOWN;
	}
	if (committed)
		return LA_COMMITTED;
	return aborted > 0 && open == 0 ? LA_ABORTED : LA_INDETERMINATE;
}

static dtx_err
add_txn(ctx *x, size_t i, const int64_t *pairs, const hx_txn_obs *obs,
    size_t nobs, size_t *cap)
{
	const hx_op *inv = hx_history_get(x->h, i);
	const hx_op *comp =
	    pairs[i] >= 0 ? hx_history_get(x->h, (size_t)pairs[i]) : NULL;
	if (DTX_GROW(x->t, x->nt, *cap, 256) != DTX_OK)
		return DTX_ENOMEM;
	la_txn *t = &x->t[x->nt++];
	memset(t, 0, sizeof(*t));
	t->inv = (int64_t)i;
	t->comp = pairs[i];
	t->has_txid = hx__op_txid(inv, comp, &t->txid);
	bool ok = comp != NULL && comp->type == HX_OP_OK;
	if (ok)
		t->st = LA_COMMITTED;
	else if (comp != NULL && comp->type == HX_OP_FAIL)
		t->st = LA_ABORTED;
	else
		t->st = t->has_txid ? resolve(obs, nobs, t->txid)
		                    : LA_INDETERMINATE;
	dtx_err rv = parse_value(ok ? comp->value : inv->value, ok, t);
	if (rv == DTX_ENOMEM)
		return rv;
	if (rv != DTX_OK) {
		hx_sb sb = { 0 };
		hx_sb_printf(&sb,
		    "{\"why\":\"the value is not a list-append "
		    "transaction\",\"value\":");
		const char *v = ok ? comp->value : inv->value;
		hx_sb_printf(&sb, "%s}", v ? v : "null");
		// Ignored from here on.
		for (size_t j = 0; j < t->nmops; j++)
			dtx_free(t->mops[j].list);
		dtx_free(t->mops);
		t->mops = NULL;
		t->nmops = 0;
		return note(x, HX_ELLE_MALFORMED, t, hx_sb_take(&sb));
	}
	x->r->committed += t->st == LA_COMMITTED;
	x->r->aborted += t->st == LA_ABORTED;
	x->r->indeterminate += t->st == LA_INDETERMINATE;
	return DTX_OK;
}

static dtx_err
read_txns(ctx *x, const hx_txn_obs *obs, size_t nobs)
{
	int64_t *pairs = NULL;
	hx_txn_obs *sorted = NULL;
	size_t cap = 0;
	dtx_err rv = hx_history_pairs(x->h, &pairs);
	if (rv != DTX_OK)
		return rv;
	if (nobs > 0) {
		if ((sorted = dtx_alloc(nobs * sizeof(*sorted))) == NULL) {
			dtx_free(pairs);
			return DTX_ENOMEM;
		}
		memcpy(sorted, obs, nobs * sizeof(*sorted));
		qsort(sorted, nobs, sizeof(*sorted), cmp_obs);
	}
	size_t n = hx_history_len(x->h);
	for (size_t i = 0; i < n && rv == DTX_OK; i++) {
		const hx_op *op = hx_history_get(x->h, i);
		if (op->type == HX_OP_INVOKE &&
		    op->process != HX_PROC_NEMESIS && strcmp(op->f, "txn") == 0)
			rv = add_txn(x, i, pairs, sorted, nobs, &cap);
	}
	x->r->txns = x->nt;
	dtx_free(pairs);
	dtx_free(sorted);
	return rv;
}

// ---------------------------------------------------------------- writers

static dtx_err
index_writers(ctx *x)
{
	size_t napp = 0;
	for (size_t i = 0; i < x->nt; i++)
		for (size_t j = 0; j < x->t[i].nmops; j++)
			napp += x->t[i].mops[j].append;
	x->r->appends = napp;
	size_t cap = 16;
	while (cap < napp * 2 + 16)
		cap *= 2;
	if ((x->w.s = dtx_alloc(cap * sizeof(*x->w.s))) == NULL)
		return DTX_ENOMEM;
	for (size_t i = 0; i < cap; i++)
		x->w.s[i].txn = UINT32_MAX;
	x->w.mask = cap - 1;
	for (size_t i = 0; i < x->nt; i++) {
		const la_txn *t = &x->t[i];
		for (size_t j = 0; j < t->nmops; j++) {
			const la_mop *m = &t->mops[j];
			if (!m->append)
				continue;
			wslot *s = wfind(&x->w, m->key, m->val);
			if (s->txn != UINT32_MAX) {
				hx_sb sb = { 0 };
				hx_sb_printf(&sb,
				    "{\"key\":%" PRId64 ",\"element\":%" PRId64
				    ",\"first-op\":%" PRId64 "}",
				    m->key, m->val, x->t[s->txn].inv);
				dtx_err rv = note(
				    x, HX_ELLE_DUP_APPEND, t, hx_sb_take(&sb));
				if (rv != DTX_OK)
					return rv;
				continue;
			}
			bool later = false;
			for (size_t k = j + 1; k < t->nmops && !later; k++)
				later = t->mops[k].append &&
				    t->mops[k].key == m->key;
			*s = (wslot) { .key = m->key,
				.val = m->val,
				.txn = (uint32_t)i,
				.intermediate = later };
		}
	}
	return DTX_OK;
}

// ---------------------------------------------------------------- reads

// The anomalies one ok read shows by itself: an element twice, one
// nobody appended, one a failed transaction appended (G1a), and a last
// element that its writer followed with another append to the key (G1b).
static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

// Whether l[0..n) holds some element twice (sorting a copy: lists may be
// long in a stored history). DTX_ENOMEM.
static dtx_err
has_dup(const int64_t *l, size_t n, bool *dup, int64_t *which)
{
	*dup = false;
	if (n < 2)
		return DTX_OK;
	int64_t *c = dtx_alloc(n * sizeof(*c));
	if (c == NULL)
		return DTX_ENOMEM;
	memcpy(c, l, n * sizeof(*c));
	qsort(c, n, sizeof(*c), cmp_i64);
	for (size_t i = 1; i < n && !*dup; i++)
		if (c[i] == c[i - 1]) {
			*dup = true;
			*which = c[i];
		}
	dtx_free(c);
	return DTX_OK;
}

static dtx_err
check_read(ctx *x, uint32_t ti, const la_mop *m)
{
	const la_txn *t = &x->t[ti];
	bool dups;
	int64_t twice = 0;
	dtx_err rv = has_dup(m->list, m->n, &dups, &twice);
	for (size_t i = 0; i < m->n && rv == DTX_OK; i++) {
		// The element's second occurrence is the one reported.
		bool dup = false;
		if (dups && m->list[i] == twice) {
			for (size_t j = 0; j < i && !dup; j++)
				dup = m->list[j] == twice;
		}
		const wslot *s = wfind(&x->w, m->key, m->list[i]);
		hx_elle_kind k = dup                ? HX_ELLE_DUP_ELEMENTS
		    : s->txn == UINT32_MAX          ? HX_ELLE_UNKNOWN_ELEMENT
		    : x->t[s->txn].st == LA_ABORTED ? HX_ELLE_G1A
		    : (i + 1 == m->n && s->intermediate && s->txn != ti)
		    ? HX_ELLE_G1B
		    : HX_ELLE_NKINDS;
		if (k == HX_ELLE_NKINDS)
			continue;
		hx_sb sb = { 0 };
		hx_sb_printf(&sb,
		    "{\"key\":%" PRId64 ",\"element\":%" PRId64 ",\"read\":",
		    m->key, m->list[i]);
		list_json(&sb, m->list, m->n);
		if (s->txn != UINT32_MAX)
			hx_sb_printf(
			    &sb, ",\"writer-op\":%" PRId64, x->t[s->txn].inv);
		hx_sb_printf(&sb, "}");
		rv = note(x, k, t, hx_sb_take(&sb));
	}
	return rv;
}

static int
cmp_rref(const void *a, const void *b)
{
	const rref *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->n != y->n)
		return x->n < y->n ? -1 : 1;
	return x->txn < y->txn ? -1 : x->txn > y->txn;
}

static dtx_err
collect_reads(ctx *x)
{
	for (size_t i = 0; i < x->nt; i++) {
		const la_txn *t = &x->t[i];
		if (t->st != LA_COMMITTED)
			continue;
		for (size_t j = 0; j < t->nmops; j++) {
			const la_mop *m = &t->mops[j];
			if (m->append || !m->known)
				continue;
			if (DTX_GROW(x->reads, x->nreads, x->rcap, 256) !=
			    DTX_OK)
				return DTX_ENOMEM;
			x->reads[x->nreads++] = (rref) { .key = m->key,
				.txn = (uint32_t)i,
				.mop = (uint32_t)j,
				.n = m->n };
			dtx_err rv = check_read(x, (uint32_t)i, m);
			if (rv != DTX_OK)
				return rv;
		}
	}
	x->r->reads = x->nreads;
	if (x->nreads > 1)
		qsort(x->reads, x->nreads, sizeof(*x->reads), cmp_rref);
	return DTX_OK;
}

// ---------------------------------------------------------------- edges

static const la_mop *
mop_of(const ctx *x, const rref *r)
{
	return &x->t[r->txn].mops[r->mop];
}

// The writer of key's element v when it may take part in the graph
// (committed or indeterminate), else UINT32_MAX.
static uint32_t
graph_writer(const ctx *x, int64_t key, int64_t v)
{
	const wslot *s = wfind(&x->w, key, v);
	if (s->txn == UINT32_MAX || x->t[s->txn].st == LA_ABORTED)
		return UINT32_MAX;
	return s->txn;
}

// A key never read non-empty whose only append is one element: its
// version order is that element (Elle does the same).
static bool
single_append(const ctx *x, int64_t key, int64_t *v)
{
	size_t n = 0;
	for (size_t i = 0; i < x->nt && n < 2; i++) {
		const la_txn *t = &x->t[i];
		for (size_t j = 0; j < t->nmops && n < 2; j++)
			if (t->mops[j].append && t->mops[j].key == key) {
				*v = t->mops[j].val;
				n++;
			}
	}
	return n == 1;
}

// Edges from the reads of one key, reads[lo..hi) (sorted by length).
static dtx_err
key_edges(ctx *x, size_t lo, size_t hi)
{
	const la_mop *longest = mop_of(x, &x->reads[hi - 1]);
	int64_t key = longest->key, one;
	const int64_t *L = longest->list;
	size_t nl = longest->n;
	for (size_t i = lo; i < hi; i++) {
		const la_mop *m = mop_of(x, &x->reads[i]);
		if (memcmp(m->list, L, m->n * sizeof(int64_t)) == 0)
			continue;
		hx_sb sb = { 0 };
		hx_sb_printf(&sb, "{\"key\":%" PRId64 ",\"read\":", key);
		list_json(&sb, m->list, m->n);
		hx_sb_printf(&sb, ",\"not-a-prefix-of\":");
		list_json(&sb, L, nl);
		hx_sb_printf(&sb, ",\"longest-op\":%" PRId64 "}",
		    x->t[x->reads[hi - 1].txn].inv);
		return note(x, HX_ELLE_INCOMPATIBLE, &x->t[x->reads[i].txn],
		    hx_sb_take(&sb));
	}
	if (nl == 0 && single_append(x, key, &one)) {
		L = &one;
		nl = 1;
	}
	dtx_err rv = DTX_OK;
	for (size_t i = 0; i + 1 < nl && rv == DTX_OK; i++) {
		la_why w = { .key = key, .a = L[i], .b = L[i + 1] };
		uint32_t a = graph_writer(x, key, L[i]);
		uint32_t b = graph_writer(x, key, L[i + 1]);
		if (a != UINT32_MAX && b != UINT32_MAX)
			rv = la_graph_add(&x->g, a, b, LA_WW, &w);
	}
	for (size_t i = lo; i < hi && rv == DTX_OK; i++) {
		uint32_t rd = x->reads[i].txn;
		size_t m = x->reads[i].n;
		la_why w = { .key = key, .a = m ? L[m - 1] : 0, .empty = !m };
		uint32_t wt = m ? graph_writer(x, key, L[m - 1]) : UINT32_MAX;
		if (wt != UINT32_MAX)
			rv = la_graph_add(&x->g, wt, rd, LA_WR, &w);
		if (rv != DTX_OK || m >= nl)
			continue;
		w.b = L[m];
		uint32_t nx = graph_writer(x, key, L[m]);
		if (nx != UINT32_MAX)
			rv = la_graph_add(&x->g, rd, nx, LA_RW, &w);
	}
	return rv;
}

// Committed appends invoked before a final read of their key began... and
// completed before it: the final read (taken after recovery, at a
// timestamp at or above every commit timestamp the run saw) must hold
// each; a missing one was acknowledged and then lost.
static dtx_err
lost_appends(ctx *x, size_t lo, size_t hi)
{
	const rref *fin = NULL;
	for (size_t i = lo; i < hi; i++)
		if (x->t[x->reads[i].txn].final)
			fin = &x->reads[i];
	if (fin == NULL)
		return DTX_OK;
	const la_mop *fm = mop_of(x, fin);
	const la_txn *ft = &x->t[fin->txn];
	dtx_err rv = DTX_OK;
	for (size_t i = 0; i < x->nt && rv == DTX_OK; i++) {
		const la_txn *t = &x->t[i];
		if (t->st != LA_COMMITTED || t->final || t->comp < 0 ||
		    t->comp > ft->inv)
			continue;
		for (size_t j = 0; j < t->nmops && rv == DTX_OK; j++) {
			const la_mop *m = &t->mops[j];
			if (!m->append || m->key != fm->key)
				continue;
			bool seen = false;
			for (size_t k = 0; k < fm->n && !seen; k++)
				seen = fm->list[k] == m->val;
			if (seen)
				continue;
			hx_sb sb = { 0 };
			hx_sb_printf(&sb,
			    "{\"key\":%" PRId64 ",\"element\":%" PRId64
			    ",\"final-read-op\":%" PRId64 ",\"final-read\":",
			    m->key, m->val, ft->inv);
			list_json(&sb, fm->list, fm->n);
			hx_sb_printf(&sb, "}");
			rv = note(x, HX_ELLE_LOST_APPEND, t, hx_sb_take(&sb));
		}
	}
	return rv;
}

static dtx_err
build_graph(ctx *x)
{
	x->g.n = x->nt;
	dtx_err rv = DTX_OK;
	for (size_t lo = 0; lo < x->nreads && rv == DTX_OK;) {
		size_t hi = lo + 1;
		while (hi < x->nreads && x->reads[hi].key == x->reads[lo].key)
			hi++;
		x->r->keys++;
		rv = key_edges(x, lo, hi);
		if (rv == DTX_OK)
			rv = lost_appends(x, lo, hi);
		lo = hi;
	}
	if (rv == DTX_OK)
		rv = la_graph_finish(&x->g);
	return rv;
}

// ---------------------------------------------------------------- result

static dtx_err
finish(ctx *x)
{
	hx_elle_result *r = x->r;
	hx_sb sum = { 0 }, js = { 0 };
	hx_valid valid = r->reads > 0 ? HX_VALID_TRUE : HX_VALID_UNKNOWN;
	size_t bad = 0;
	for (int k = 0; k < HX_ELLE_NKINDS; k++) {
		if (r->counts[k] == 0)
			continue;
		if (violation((hx_elle_kind)k))
			bad += r->counts[k];
		else if (valid == HX_VALID_TRUE)
			valid = HX_VALID_UNKNOWN;
	}
	if (bad > 0)
		valid = HX_VALID_FALSE;
	hx_sb_printf(&sum,
	    "%zu txns (%zu committed, %zu indeterminate, %zu aborted), "
	    "%zu reads of %zu keys; %zu ww, %zu wr, %zu rw edges",
	    r->txns, r->committed, r->indeterminate, r->aborted, r->reads,
	    r->keys, r->edges[0], r->edges[1], r->edges[2]);
	for (int k = 0; k < HX_ELLE_NKINDS; k++)
		if (r->counts[k] > 0)
			hx_sb_printf(
			    &sum, "; %zu %s", r->counts[k], kind_names[k]);
	if (bad == 0 && r->reads > 0)
		hx_sb_printf(&sum, "; no anomaly");
	hx_sb_printf(&js,
	    "{\"valid\":%s,\"txns\":%zu,\"committed\":%zu,"
	    "\"indeterminate\":%zu,\"aborted\":%zu,\"reads\":%zu,"
	    "\"appends\":%zu,\"keys\":%zu,\"edges\":{\"ww\":%zu,\"wr\":%zu,"
	    "\"rw\":%zu},\"anomalies\":{",
	    hx_valid_json(valid), r->txns, r->committed, r->indeterminate,
	    r->aborted, r->reads, r->appends, r->keys, r->edges[0], r->edges[1],
	    r->edges[2]);
	for (int k = 0; k < HX_ELLE_NKINDS; k++)
		hx_sb_printf(&js, "%s\"%s\":%zu", k ? "," : "", kind_names[k],
		    r->counts[k]);
	hx_sb_printf(&js, "}}");
	return hx__check_set(&r->c, valid, &sum, &js);
}

static const hx_elle_kind cycle_kind[LA_NCYCLES] = { HX_ELLE_G0, HX_ELLE_G1C,
	HX_ELLE_GSINGLE, HX_ELLE_G2 };

dtx_err
hx_check_elle(const hx_history *h, const hx_txn_obs *obs, size_t nobs,
    hx_elle_result *out)
{
	if (h == NULL || out == NULL || (obs == NULL && nobs > 0))
		return DTX_EINVAL;
	hx_elle_result r;
	memset(&r, 0, sizeof(r));
	hx__check_init(&r.c, "elle");
	ctx x = { .r = &r, .h = h };
	size_t found[LA_NCYCLES];
	dtx_err rv = read_txns(&x, obs, nobs);
	if (rv == DTX_OK)
		rv = index_writers(&x);
	if (rv == DTX_OK)
		rv = collect_reads(&x);
	if (rv == DTX_OK)
		rv = build_graph(&x);
	if (rv == DTX_OK)
		rv = la_find_cycles(&x.g, x.t, h, &r.c, found);
	if (rv == DTX_OK) {
		for (int c = 0; c < LA_NCYCLES; c++)
			r.counts[cycle_kind[c]] = found[c];
		for (int d = 0; d < LA_NDEPS; d++)
			r.edges[d] = x.g.counts[d];
		rv = finish(&x);
	}
	for (size_t i = 0; i < x.nt; i++) {
		for (size_t j = 0; j < x.t[i].nmops; j++)
			dtx_free(x.t[i].mops[j].list);
		dtx_free(x.t[i].mops);
	}
	dtx_free(x.t);
	dtx_free(x.w.s);
	dtx_free(x.reads);
	la_graph_fini(&x.g);
	if (rv != DTX_OK) {
		hx_check_fini(&r.c);
		return rv;
	}
	*out = r;
	return DTX_OK;
}
