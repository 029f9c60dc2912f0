// SPDX-License-Identifier: MIT
//
// Orders a trace's events by happened-before and writes it: as text for a
// terminal, and as one self-contained HTML page (inline SVG, one lane per
// node, an arrow per message; no script, nothing fetched).

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "harness_int.h"

// The sum of a vector clock: if a happened before b, every entry of a is
// at most b's and one is smaller, so a's sum is smaller. Sorting by it
// is a linear extension of happened-before.
static unsigned __int128
vc_sum(const clk_vc *vc)
{
	unsigned __int128 s = 0;
	for (uint32_t i = 0; i < CLK_VC_MAX; i++)
		s += vc->c[i];
	return s;
}

static int
cmp_ev(const void *pa, const void *pb)
{
	const hx_trace_ev *a = pa, *b = pb;
	unsigned __int128 sa = vc_sum(&a->vc), sb = vc_sum(&b->vc);
	if (sa != sb)
		return sa < sb ? -1 : 1;
	if (a->hlc != b->hlc)
		return a->hlc < b->hlc ? -1 : 1;
	return a->node < b->node ? -1 : a->node > b->node;
}

static clk_vc
full(const clk_vc *v)
{
	clk_vc x = *v;
	x.n = CLK_VC_MAX;
	return x;
}

// The direct order of two events: a's vector clock before b's, or both
// on one node with a's own entry smaller (program order, kept across
// restarts by the daemons' seeded entries).
static bool
direct(const hx_trace_ev *a, const hx_trace_ev *b)
{
	if (a->node == b->node && a->node < CLK_VC_MAX)
		return a->vc.c[a->node] < b->vc.c[b->node];
	clk_vc x = full(&a->vc), y = full(&b->vc);
	return clk_vc_compare(&x, &y) == CLK_VC_BEFORE;
}

#define WORDS(n) (((n) + 63) / 64)
#define BIT(r, i, j, w) (((r)[(i) * (w) + (j) / 64] >> ((j) % 64)) & 1u)

// Kahn's topological sort of the sorted events under `direct`, taking
// among the ready events the first in (clock sum, hlc, node) order; then
// each event's reach (what it happened before) as bitsets.
static dtx_err
toposort(hx_trace *t)
{
	size_t n = t->n, w = WORDS(n);
	size_t *indeg = dtx_calloc(n + 1, sizeof(size_t));
	size_t *order = dtx_calloc(n + 1, sizeof(size_t));
	bool *done = dtx_calloc(n + 1, sizeof(bool));
	hx_trace_ev *ev = dtx_calloc(n + 1, sizeof(*ev));
	uint64_t *reach = dtx_calloc(n * w + 1, sizeof(uint64_t));
	dtx_err rv = DTX_ENOMEM;
	if (indeg == NULL || order == NULL || done == NULL || ev == NULL ||
	    reach == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			indeg[j] += i != j && direct(&t->ev[i], &t->ev[j]);
	for (size_t k = 0; k < n; k++) {
		size_t pick = 0;
		while (pick < n && (done[pick] || indeg[pick] != 0))
			pick++;
		if (pick == n)
			pick = 0; // a cycle (clocks that cannot be): keep going
		while (done[pick])
			pick++;
		done[pick] = true;
		order[k] = pick;
		for (size_t j = 0; j < n; j++)
			if (!done[j] && direct(&t->ev[pick], &t->ev[j]))
				indeg[j]--;
	}
	for (size_t k = 0; k < n; k++)
		ev[k] = t->ev[order[k]];
	if (n > 0)
		memcpy(t->ev, ev, n * sizeof(*ev));
	// Reach, from the last event back: a direct successor and all it
	// reaches.
	for (size_t i = n; i-- > 0;)
		for (size_t j = i + 1; j < n; j++)
			if (direct(&t->ev[i], &t->ev[j])) {
				reach[i * w + j / 64] |= UINT64_C(1)
				    << (j % 64);
				for (size_t x = 0; x < w; x++)
					reach[i * w + x] |= reach[j * w + x];
			}
	dtx_free(t->reach);
	t->reach = reach;
	reach = NULL;
	rv = DTX_OK;
out:
	dtx_free(indeg);
	dtx_free(order);
	dtx_free(done);
	dtx_free(ev);
	dtx_free(reach);
	return rv;
}

bool
hx_trace_before(const hx_trace *t, size_t i, size_t j)
{
	if (t->reach == NULL || i >= t->n || j >= t->n)
		return false;
	return BIT(t->reach, i, j, WORDS(t->n));
}

dtx_err
hx_trace_order(hx_trace *t)
{
	if (t->n > 1)
		qsort(t->ev, t->n, sizeof(t->ev[0]), cmp_ev);
	dtx_err rv = toposort(t);
	if (rv != DTX_OK)
		return rv;
	// Receives and their sends: the sender's own entry names its send.
	for (size_t i = 0; i < t->n; i++) {
		hx_trace_ev *r = &t->ev[i];
		r->send = -1;
		if (r->kind != PROTO_EV_RECV)
			continue;
		for (size_t j = 0; j < t->n; j++)
			if (t->ev[j].kind == PROTO_EV_SEND &&
			    t->ev[j].node == r->peer && r->peer < CLK_VC_MAX &&
			    t->ev[j].vc.c[r->peer] == r->peer_c)
				r->send = (long)j;
	}
	// Steps: a new one starts when an event of the current step
	// happened before this one.
	size_t step = 0, first = 0;
	for (size_t i = 0; i < t->n; i++) {
		bool after = i == 0;
		for (size_t j = first; j < i && !after; j++)
			after = hx_trace_before(t, j, i);
		if (after) {
			step++;
			first = i;
		}
		t->ev[i].step = step;
	}
	t->steps = step;
	return DTX_OK;
}

// The smallest non-zero value of each vector clock entry in the trace:
// entries start near (boot time << 20), so they are shown from these.
static void
vc_base(const hx_trace *t, uint64_t base[CLK_VC_MAX], bool used[CLK_VC_MAX])
{
	for (uint32_t k = 0; k < CLK_VC_MAX; k++) {
		base[k] = UINT64_MAX;
		used[k] = false;
	}
	for (size_t i = 0; i < t->n; i++)
		for (uint32_t k = 0; k < CLK_VC_MAX; k++)
			if (t->ev[i].vc.c[k] != 0 && t->ev[i].vc.c[k] < base[k])
				base[k] = t->ev[i].vc.c[k];
	for (size_t i = 0; i < t->n; i++)
		used[t->ev[i].node < CLK_VC_MAX ? t->ev[i].node : 0] = true;
}

static void
vc_text(const hx_trace_ev *e, const uint64_t *base, const bool *used, char *buf,
    size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
	for (uint32_t k = 0; k < CLK_VC_MAX && n + 1 < len; k++) {
		if (!used[k])
			continue;
		int r = e->vc.c[k] == 0
		    ? snprintf(buf + n, len - n, "%s%u:-", n ? " " : "", k)
		    : snprintf(buf + n, len - n, "%s%u:%" PRIu64, n ? " " : "",
		          k, e->vc.c[k] - base[k]);
		if (r < 0)
			break;
		n += (size_t)r < len - n ? (size_t)r : len - n - 1;
	}
}

// What an event did, in words: its message id, or a message's direction.
static void
ev_label(const hx_trace *t, const hx_trace_ev *e, char *buf, size_t len)
{
	if (e->kind == PROTO_EV_SEND)
		snprintf(buf, len, "%s", e->type);
	else if (e->kind == PROTO_EV_RECV && e->send >= 0)
		snprintf(buf, len, "%s <- %s (step %zu)", e->type,
		    t->ev[e->send].name, t->ev[e->send].step);
	else if (e->kind == PROTO_EV_RECV)
		snprintf(buf, len, "%s <- node %u", e->type, e->peer);
	else
		snprintf(buf, len, "%s", e->what);
}

static size_t
step_size(const hx_trace *t, size_t step)
{
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++)
		n += t->ev[i].step == step;
	return n;
}

dtx_err
hx_trace_text(const hx_trace *t, FILE *out)
{
	uint64_t base[CLK_VC_MAX];
	bool used[CLK_VC_MAX];
	vc_base(t, base, used);
	if (t->txid != 0)
		fprintf(out, "trace of txid %" PRIu64, t->txid);
	else
		fprintf(out, "trace of saga %s", t->gid);
	fprintf(out,
	    ": %zu events, %zu steps (|| marks events of one step: "
	    "concurrent, none happened before another)\n",
	    t->n, t->steps);
	if (t->lost > 0)
		fprintf(out,
		    "(the rings had dropped %" PRIu64 " older events)\n",
		    t->lost);
	fprintf(out, "%-7s %-10s %-18s %-8s %-34s %s\n", "step", "node", "hlc",
	    "event", "what", "vector clock (from each entry's lowest here)");
	for (size_t i = 0; i < t->n; i++) {
		const hx_trace_ev *e = &t->ev[i];
		char hlc[32], what[96], vc[512], step[16];
		snprintf(hlc, sizeof(hlc), "%" PRIu64 ".%u", clk_ts_l(e->hlc),
		    clk_ts_c(e->hlc));
		ev_label(t, e, what, sizeof(what));
		vc_text(e, base, used, vc, sizeof(vc));
		snprintf(step, sizeof(step), "%4zu%s", e->step,
		    step_size(t, e->step) > 1 ? " ||" : "");
		fprintf(out, "%-7s %-10s %-18s %-8s %-34s [%s]\n", step,
		    e->name, hlc, proto_ev_name(e->kind), what, vc);
	}
	return ferror(out) ? DTX_EIO : DTX_OK;
}

// Text escaped for HTML.
static void
esc(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			fputs("&lt;", out);
		else if (*s == '>')
			fputs("&gt;", out);
		else if (*s == '&')
			fputs("&amp;", out);
		else if (*s == '"')
			fputs("&quot;", out);
		else
			fputc(*s, out);
	}
}

static const char *const kind_colour[PROTO_EV_COUNT] = { "#4a7bd0", "#2aa198",
	"#6c71c4", "#b58900", "#d33682", "#859900", "#cb4b16", "#dc322f" };

#define LANE_W 230
#define STEP_H 44
#define TOP 70

// The lanes: the nodes of the trace in id order; lane_of[node] its index.
static size_t
lanes(const hx_trace *t, uint32_t *ids, int *lane_of)
{
	size_t n = 0;
	for (uint32_t k = 0; k < CLK_VC_MAX; k++)
		lane_of[k] = -1;
	for (uint32_t k = 0; k < CLK_VC_MAX; k++)
		for (size_t i = 0; i < t->n; i++)
			if (t->ev[i].node == k && lane_of[k] < 0) {
				lane_of[k] = (int)n;
				ids[n++] = k;
			}
	return n;
}

static void
html_event(const hx_trace *t, const hx_trace_ev *e, const int *lane_of,
    const uint64_t *base, const bool *used, FILE *out)
{
	int x = 40 + lane_of[e->node] * LANE_W + LANE_W / 2;
	int y = TOP + (int)e->step * STEP_H;
	char what[96], vc[512];
	ev_label(t, e, what, sizeof(what));
	vc_text(e, base, used, vc, sizeof(vc));
	fprintf(out, "<g><title>%s %s step %zu hlc %" PRIu64 ".%u vc [%s] ",
	    e->name, proto_ev_name(e->kind), e->step, clk_ts_l(e->hlc),
	    clk_ts_c(e->hlc), vc);
	esc(out, what);
	fprintf(out,
	    "</title><circle cx=\"%d\" cy=\"%d\" r=\"7\" fill=\"%s\"/>"
	    "<text x=\"%d\" y=\"%d\" font-size=\"12\">%s ",
	    x, y, kind_colour[e->kind], x + 11, y + 4, proto_ev_name(e->kind));
	esc(out, e->kind == PROTO_EV_RECV ? e->type : what);
	fprintf(out, "</text></g>\n");
}

dtx_err
hx_trace_html(const hx_trace *t, FILE *out)
{
	uint32_t ids[CLK_VC_MAX];
	int lane_of[CLK_VC_MAX];
	uint64_t base[CLK_VC_MAX];
	bool used[CLK_VC_MAX];
	size_t nl = lanes(t, ids, lane_of);
	vc_base(t, base, used);
	int w = 80 + (int)nl * LANE_W, h = TOP + (int)(t->steps + 1) * STEP_H;
	fprintf(out,
	    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
	    "<title>dtx trace</title><style>body{font-family:sans-"
	    "serif;margin:1em}</style></head><body>\n<h1>");
	if (t->txid != 0)
		fprintf(out, "Transaction %" PRIu64, t->txid);
	else {
		fputs("Saga ", out);
		esc(out, t->gid);
	}
	fprintf(out,
	    "</h1>\n<p>%zu events on %zu nodes in %zu steps, top to bottom "
	    "in happened-before order (vector clocks); events side by side "
	    "in one row are concurrent. An arrow is a message.</p>\n"
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
	    "height=\"%d\"><defs><marker id=\"a\" viewBox=\"0 0 10 10\" "
	    "refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" "
	    "orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" fill=\"#555\"/>"
	    "</marker></defs>\n",
	    t->n, nl, t->steps, w, h);
	if (t->n == 0)
		fputs("<p>No event of it was recorded. Daemons log their trace "
		      "events at <code>--log-level debug</code> (dtx bank "
		      "--log-level debug); on a running cluster <code>dtx "
		      "trace</code> also asks each daemon's ring.</p>\n",
		    out);
	for (size_t l = 0; l < nl; l++) {
		int x = 40 + (int)l * LANE_W + LANE_W / 2;
		const char *name = "node";
		for (size_t i = 0; i < t->n; i++)
			if (t->ev[i].node == ids[l])
				name = t->ev[i].name;
		fprintf(out,
		    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
		    "stroke=\"#ccc\" stroke-width=\"2\"/><text x=\"%d\" "
		    "y=\"40\" font-weight=\"bold\" text-anchor=\"middle\">",
		    x, TOP - 10, x, h, x);
		esc(out, name);
		fputs("</text>\n", out);
	}
	for (size_t i = 0; i < t->n; i++) {
		const hx_trace_ev *e = &t->ev[i];
		if (e->send < 0)
			continue;
		const hx_trace_ev *s = &t->ev[e->send];
		fprintf(out,
		    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
		    "stroke=\"#555\" marker-end=\"url(#a)\"/>\n",
		    40 + lane_of[s->node] * LANE_W + LANE_W / 2,
		    TOP + (int)s->step * STEP_H,
		    40 + lane_of[e->node] * LANE_W + LANE_W / 2,
		    TOP + (int)e->step * STEP_H - 8);
	}
	for (size_t i = 0; i < t->n; i++)
		html_event(t, &t->ev[i], lane_of, base, used, out);
	fputs("</svg>\n</body></html>\n", out);
	return ferror(out) ? DTX_EIO : DTX_OK;
}
