// SPDX-License-Identifier: MIT
//
// The run report's timeline: the history as compact JSON data
// (timeline-data.js) and the static page that draws it (timeline.html,
// harness/web/timeline.html compiled in), with a time axis, one lane per
// node for fault windows and one lane per client for operations.
//
// timeline-data.js is the line "window.DTX_TIMELINE =", then one JSON
// object, then ";". Times are milliseconds since the history began, with
// one decimal. The object's members:
//
//   run          the run id
//   end_ms       the end of the time axis
//   f            the op names ("transfer", "read", ...), indexed by ops
//   procs        [[process, lane], ...]: each client process and its lane
//   lanes        [[process, ...], ...]: the processes each client lane
//                shows (a lane is a client thread: a process that saw an
//                uncertain outcome is followed by a fresh one, which is
//                packed into a lane whose previous process has finished)
//   nodes        [[id, label], ...]: one lane per node (id -1: faults
//                without a node target)
//   fault_kinds  the fault kinds, indexed by faults
//   fault_colors {kind: "#rrggbb"}: the fixed colour of each kind
//   faults       [[kind, start, end, [node lane, ...], targets, detail],
//                ...]: end -1 when never healed; targets the free text;
//                detail the nemesis value's JSON text (a partition's shape
//                and grudge) or null
//   ops          [[di, proc, f, type, dt, dur, dd(, err)], ...], one per
//                client operation in invocation order: di is the history
//                index minus the previous row's and dt the start minus the
//                previous row's start (the first row's are its index and
//                start: summing gives each, exactly in tenths of a ms);
//                proc indexes procs; type 0 never completed, 1 ok, 2 fail,
//                3 info; dur -1 when never completed; dd the completion's
//                index minus the invocation's (0: none); err indexes errors
//   errors       the distinct error texts, with numbers of four or more
//                digits shown as "#" (txids and keys would make every text
//                distinct)
//   values       {"index": [invocation value, completion value, error],
//                ...}: the whole values and error of anomalous ops only
//   anomalies    [[op index, checker, kind, detail], ...]: the first 1000
//   anomalies_total  how many anomalies the checkers found

#include <stdlib.h>
#include <string.h>

#include "harness_int.h"
#include "timeline_page.h"

// The fixed colour of each fault kind: the same in every run, in the
// page and in the gnuplot plots.
static const struct {
	const char *kind;
	const char *color;
} kind_colors[] = {
	{ "kill", "#E41A1C" },
	{ "disk", "#A65628" },
	{ "pause", "#FF7F00" },
	{ "partition", "#984EA3" },
	{ "netem", "#1B9E77" },
	{ "clock-bump", "#377EB8" },
	{ "clock-strobe", "#4DAFEA" },
	{ "packet", "#66A61E" },
	{ "corrupt", "#E7298A" },
	{ "kill-forever", "#1A1A1A" },
	{ "slow-link", "#D95F02" },
};
#define NKINDS (sizeof(kind_colors) / sizeof(kind_colors[0]))

const char *
hx__fault_color(const char *kind)
{
	for (size_t i = 0; i < NKINDS; i++)
		if (kind != NULL && strcmp(kind, kind_colors[i].kind) == 0)
			return kind_colors[i].color;
	return "#999999";
}

// One client process: its id, lifetime and lane.
typedef struct proc {
	int64_t id;
	int64_t first_ns, last_ns;
	size_t lane;
} proc;

// A table of distinct strings, each written once and referred to by its
// position.
typedef struct strtab {
	const char **s;
	size_t n, cap;
} strtab;

typedef struct tl {
	const hx__tl_in *in;
	FILE *out;
	proc *procs;
	size_t nprocs;
	size_t nlanes;
	int64_t *nodes; // node ids, sorted; -1 for "no node"
	size_t nnodes, nodes_cap;
	strtab f, errs, kinds;
} tl;

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int
cmp_proc_id(const void *a, const void *b)
{
	return cmp_i64(&((const proc *)a)->id, &((const proc *)b)->id);
}

static int
cmp_proc_first(const void *a, const void *b)
{
	const proc *x = a, *y = b;
	if (x->first_ns != y->first_ns)
		return x->first_ns < y->first_ns ? -1 : 1;
	return cmp_i64(&x->id, &y->id);
}

// The position of s in t, added when new; -1 when out of memory.
static long
intern(strtab *t, const char *s)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->s[i], s) == 0)
			return (long)i;
	if (DTX_GROW(t->s, t->n, t->cap, 16) != DTX_OK)
		return -1;
	t->s[t->n] = s;
	return (long)t->n++;
}

static const hx_op *
op_at(const tl *t, size_t i)
{
	return hx_history_get(t->in->h, i);
}

static bool
is_client(const hx_op *op)
{
	return op->process != HX_PROC_NEMESIS;
}

// The completion of op i (NULL when it never completed; op itself when it
// is a completion that completes nothing).
static const hx_op *
done_of(const tl *t, size_t i)
{
	int64_t p = t->in->pairs[i];
	const hx_op *op = op_at(t, i);
	if (p >= 0)
		return op_at(t, (size_t)p);
	return op->type == HX_OP_INVOKE ? NULL : op;
}

// Finds the client processes and their lifetimes, then packs them into
// lanes: in order of first op, each goes to the lowest lane whose last
// process ended before it began.
static dtx_err
pack_lanes(tl *t)
{
	size_t n = hx_history_len(t->in->h);
	t->procs = dtx_calloc(n ? n : 1, sizeof(*t->procs));
	int64_t *lane_end = dtx_calloc(n ? n : 1, sizeof(*lane_end));
	if (t->procs == NULL || lane_end == NULL) {
		dtx_free(lane_end);
		return DTX_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const hx_op *op = op_at(t, i);
		if (is_client(op))
			t->procs[t->nprocs++].id = op->process;
	}
	qsort(t->procs, t->nprocs, sizeof(*t->procs), cmp_proc_id);
	size_t u = 0;
	for (size_t i = 0; i < t->nprocs; i++)
		if (u == 0 || t->procs[u - 1].id != t->procs[i].id)
			t->procs[u++] = (proc) { t->procs[i].id, -1, -1, 0 };
	t->nprocs = u;
	for (size_t i = 0; i < n; i++) {
		const hx_op *op = op_at(t, i);
		if (!is_client(op))
			continue;
		proc key = { .id = op->process };
		proc *p =
		    bsearch(&key, t->procs, t->nprocs, sizeof(*p), cmp_proc_id);
		if (p->first_ns < 0)
			p->first_ns = op->time_ns;
		const hx_op *d = done_of(t, i);
		int64_t end = d ? d->time_ns : t->in->end_ns;
		if (end > p->last_ns)
			p->last_ns = end;
	}
	qsort(t->procs, t->nprocs, sizeof(*t->procs), cmp_proc_first);
	for (size_t i = 0; i < t->nprocs; i++) {
		size_t l = 0;
		while (l < t->nlanes && lane_end[l] > t->procs[i].first_ns)
			l++;
		if (l == t->nlanes)
			t->nlanes++;
		lane_end[l] = t->procs[i].last_ns;
		t->procs[i].lane = l;
	}
	dtx_free(lane_end);
	// Back in id order, for lookups by process.
	qsort(t->procs, t->nprocs, sizeof(*t->procs), cmp_proc_id);
	return DTX_OK;
}

static dtx_err
add_node(tl *t, int64_t id)
{
	for (size_t i = 0; i < t->nnodes; i++)
		if (t->nodes[i] == id)
			return DTX_OK;
	if (DTX_GROW(t->nodes, t->nnodes, t->nodes_cap, 8) != DTX_OK)
		return DTX_ENOMEM;
	t->nodes[t->nnodes++] = id;
	return DTX_OK;
}

// Calls fn for each node id in a fault's targets text ("1,2"); a text
// without any number stands for the cluster as a whole (-1).
static dtx_err
each_target(tl *t, const hx_fault *w,
    dtx_err (*fn)(tl *t, int64_t id, void *arg), void *arg)
{
	const char *p = w->targets ? w->targets : "";
	bool any = false;
	while (*p) {
		char *end;
		long long v = strtoll(p, &end, 10);
		if (end != p && v >= 0 && v < 1000000) {
			dtx_err rv = fn(t, (int64_t)v, arg);
			if (rv != DTX_OK)
				return rv;
			any = true;
			p = end;
		} else {
			p++;
		}
	}
	return any ? DTX_OK : fn(t, -1, arg);
}

static dtx_err
note_node(tl *t, int64_t id, void *arg)
{
	(void)arg;
	return add_node(t, id);
}

// The node lanes: every node of the cluster (when the run's parameters
// say how many participants it had) and every node a fault targeted.
static dtx_err
find_nodes(tl *t)
{
	const hx__tl_in *in = t->in;
	if (in->participants > 0) {
		uint32_t last = in->participants + (in->saga ? 1 : 0);
		for (uint32_t id = 0; id <= last; id++)
			if (add_node(t, id) != DTX_OK)
				return DTX_ENOMEM;
	}
	for (size_t i = 0; i < in->nfaults; i++) {
		dtx_err rv = each_target(t, &in->faults[i], note_node, NULL);
		if (rv != DTX_OK)
			return rv;
		if (intern(&t->kinds, in->faults[i].kind) < 0)
			return DTX_ENOMEM;
	}
	if (t->nnodes > 1) // qsort takes no NULL array, even of length 0
		qsort(t->nodes, t->nnodes, sizeof(*t->nodes), cmp_i64);
	return DTX_OK;
}

// Writes v tenths of a millisecond as milliseconds with one decimal,
// without ".0" for a whole number.
static void
write_tenths(FILE *f, int64_t v)
{
	if (v < 0) {
		fputc('-', f);
		v = -v;
	}
	if (v % 10 == 0)
		fprintf(f, "%lld", (long long)(v / 10));
	else
		fprintf(f, "%lld.%d", (long long)(v / 10), (int)(v % 10));
}

static int64_t
tenths_of(int64_t ns)
{
	return ns < 0 ? -((-ns + 50000) / 100000) : (ns + 50000) / 100000;
}

static void
write_ms(FILE *f, int64_t ns)
{
	write_tenths(f, tenths_of(ns));
}

static void
write_head(tl *t)
{
	FILE *f = t->out;
	const hx__tl_in *in = t->in;
	fprintf(f, "{\"run\":%lld,\"end_ms\":", (long long)in->run_id);
	write_ms(f, in->end_ns);
	fputs(",\n\"procs\":[", f);
	for (size_t i = 0; i < t->nprocs; i++)
		fprintf(f, "%s[%lld,%zu]", i ? "," : "",
		    (long long)t->procs[i].id, t->procs[i].lane);
	fputs("],\n\"lanes\":[", f);
	for (size_t l = 0; l < t->nlanes; l++) {
		fprintf(f, "%s[", l ? "," : "");
		bool first = true;
		for (size_t i = 0; i < t->nprocs; i++)
			if (t->procs[i].lane == l) {
				fprintf(f, "%s%lld", first ? "" : ",",
				    (long long)t->procs[i].id);
				first = false;
			}
		fputc(']', f);
	}
	fputs("],\n\"nodes\":[", f);
	for (size_t i = 0; i < t->nnodes; i++) {
		int64_t id = t->nodes[i];
		const char *role = id < 0 ? ""
		    : id == 0             ? " coordinator"
		    : in->saga && in->participants > 0 &&
		        id == (int64_t)in->participants + 1
		    ? " saga"
		    : in->participants > 0 && id <= (int64_t)in->participants
		    ? " participant"
		    : "";
		if (id < 0)
			fprintf(f, "%s[-1,\"cluster\"]", i ? "," : "");
		else
			fprintf(f, "%s[%lld,\"n%lld%s\"]", i ? "," : "",
			    (long long)id, (long long)id, role);
	}
	fputs("],\n\"fault_colors\":{", f);
	for (size_t i = 0; i < NKINDS; i++)
		fprintf(f, "%s\"%s\":\"%s\"", i ? "," : "", kind_colors[i].kind,
		    kind_colors[i].color);
	for (size_t i = 0; i < t->kinds.n; i++)
		if (strcmp(hx__fault_color(t->kinds.s[i]), "#999999") == 0) {
			fputc(',', f);
			hx_json_escape(f, t->kinds.s[i]);
			fputs(":\"#999999\"", f);
		}
	fputs("},\n\"fault_kinds\":[", f);
	for (size_t i = 0; i < t->kinds.n; i++) {
		if (i)
			fputc(',', f);
		hx_json_escape(f, t->kinds.s[i]);
	}
	fputc(']', f);
}

static dtx_err
write_node_lane(tl *t, int64_t id, void *arg)
{
	bool *first = arg;
	int64_t *at = bsearch(&id, t->nodes, t->nnodes, sizeof(id), cmp_i64);
	if (at == NULL)
		return DTX_OK;
	fprintf(t->out, "%s%zu", *first ? "" : ",", (size_t)(at - t->nodes));
	*first = false;
	return DTX_OK;
}

static dtx_err
write_faults(tl *t)
{
	FILE *f = t->out;
	fputs(",\n\"faults\":[", f);
	for (size_t i = 0; i < t->in->nfaults; i++) {
		const hx_fault *w = &t->in->faults[i];
		fprintf(
		    f, "%s\n[%ld,", i ? "," : "", intern(&t->kinds, w->kind));
		write_ms(f, w->start_ns);
		fputc(',', f);
		if (w->end_ns < 0)
			fputs("-1", f);
		else
			write_ms(f, w->end_ns);
		fputs(",[", f);
		bool first = true;
		dtx_err rv = each_target(t, w, write_node_lane, &first);
		if (rv != DTX_OK)
			return rv;
		fputs("],", f);
		hx_json_escape(f, w->targets ? w->targets : "");
		fputc(',', f);
		if (w->detail)
			hx_json_escape(f, w->detail);
		else
			fputs("null", f);
		fputc(']', f);
	}
	fputs("]", f);
	return DTX_OK;
}

// The error text as the ops table keeps it: runs of four or more digits
// (txids, keys) become "#" and the text stops at 80 bytes, so that the
// distinct texts stay few; the values table keeps anomalous ops' errors
// whole. Returns owned (dtx_free); NULL when out of memory.
static char *
error_class(const char *err)
{
	size_t n = strlen(err);
	char *out = dtx_alloc(n + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n && o < 80;) {
		size_t d = 0;
		while (i + d < n && err[i + d] >= '0' && err[i + d] <= '9')
			d++;
		if (d >= 4) {
			out[o++] = '#';
			i += d;
		} else if (d > 0) {
			memcpy(out + o, err + i, d);
			o += d;
			i += d;
		} else {
			out[o++] = err[i++];
		}
	}
	out[o > 80 ? 80 : o] = '\0';
	return out;
}

// Writes one op row; *prev is the previous row's index and *prev_t its
// start in tenths of a millisecond.
static dtx_err
write_op(tl *t, size_t i, int64_t *prev, int64_t *prev_t)
{
	const hx_op *op = op_at(t, i);
	const hx_op *d = done_of(t, i);
	proc key = { .id = op->process };
	proc *p = bsearch(&key, t->procs, t->nprocs, sizeof(*p), cmp_proc_id);
	long fi = intern(&t->f, op->f);
	const char *err = d && d->error ? d->error : op->error;
	long ei = 0;
	if (err != NULL) {
		char *cls = error_class(err);
		if (cls == NULL)
			return DTX_ENOMEM;
		size_t had = t->errs.n;
		ei = intern(&t->errs, cls);
		if (t->errs.n == had)
			dtx_free(cls); // already there, or no room
	}
	if (fi < 0 || ei < 0)
		return DTX_ENOMEM;
	// Start and duration in tenths of a millisecond, rounded once, so
	// that the deltas add up to the exact start.
	int64_t t0 = tenths_of(op->time_ns);
	FILE *f = t->out;
	fprintf(f, "%s[%lld,%zu,%ld,%d,", *prev < 0 ? "" : ",",
	    (long long)(op->index - (*prev < 0 ? 0 : *prev)),
	    (size_t)(p - t->procs), fi, d ? (int)d->type : 0);
	write_tenths(f, t0 - *prev_t);
	fputc(',', f);
	if (d == NULL)
		fputs("-1", f);
	else
		write_ms(f, d->time_ns - op->time_ns);
	fprintf(f, ",%lld", d ? (long long)(d->index - op->index) : 0LL);
	if (err)
		fprintf(f, ",%ld", ei);
	fputc(']', f);
	*prev = op->index;
	*prev_t = t0;
	return DTX_OK;
}

static dtx_err
write_ops(tl *t)
{
	FILE *f = t->out;
	size_t n = hx_history_len(t->in->h);
	int64_t prev = -1, prev_t = 0;
	fputs(",\n\"ops\":[", f);
	for (size_t i = 0; i < n; i++) {
		const hx_op *op = op_at(t, i);
		int64_t p = t->in->pairs[i];
		if (!is_client(op) || (p >= 0 && (size_t)p < i))
			continue; // the nemesis, or drawn with its invocation
		dtx_err rv = write_op(t, i, &prev, &prev_t);
		if (rv != DTX_OK)
			return rv;
	}
	fputs("],\n\"f\":[", f);
	for (size_t i = 0; i < t->f.n; i++) {
		if (i)
			fputc(',', f);
		hx_json_escape(f, t->f.s[i]);
	}
	fputs("],\n\"errors\":[", f);
	for (size_t i = 0; i < t->errs.n; i++) {
		if (i)
			fputc(',', f);
		hx_json_escape(f, t->errs.s[i]);
	}
	fputc(']', f);
	return DTX_OK;
}

static void
json_or_null(FILE *f, const char *s)
{
	if (s)
		hx_json_escape(f, s);
	else
		fputs("null", f);
}

// At most this many anomalies go into the data (atomicity reports every
// one, and a broken run can have thousands); anomalies_total says how
// many there were.
#define MAX_ANOMS 1000

// The values of the anomalous ops: one entry per distinct op index, in
// order, as JSON object keys must be distinct.
static dtx_err
write_values(tl *t)
{
	FILE *f = t->out;
	const hx_verdict *v = t->in->v;
	size_t n = hx_history_len(t->in->h), m = 0, cap = 0;
	int64_t *idx = NULL;
	for (size_t c = 0; v != NULL && c < hx_verdict_count(v); c++) {
		const hx_check *ck = hx_verdict_check(v, c);
		for (size_t k = 0; k < ck->nanoms && m < MAX_ANOMS; k++) {
			int64_t i = ck->anoms[k].op_index;
			if (i < 0 || (size_t)i >= n)
				continue;
			if (DTX_GROW(idx, m, cap, 16) != DTX_OK) {
				dtx_free(idx);
				return DTX_ENOMEM;
			}
			idx[m++] = i;
		}
	}
	if (m > 0)
		qsort(idx, m, sizeof(*idx), cmp_i64);
	fputs(",\n\"values\":{", f);
	for (size_t k = 0; k < m; k++) {
		int64_t i = idx[k];
		if (k > 0 && idx[k - 1] == i)
			continue;
		int64_t p = t->in->pairs[i];
		const hx_op *inv =
		    p >= 0 && p < i ? op_at(t, (size_t)p) : op_at(t, (size_t)i);
		const hx_op *d = done_of(t, (size_t)inv->index);
		fprintf(f, "%s\n\"%lld\":[", k ? "," : "", (long long)i);
		json_or_null(f, inv->value);
		fputc(',', f);
		json_or_null(f, d && d != inv ? d->value : NULL);
		fputc(',', f);
		json_or_null(f, d && d->error ? d->error : inv->error);
		fputc(']', f);
	}
	fputc('}', f);
	dtx_free(idx);
	return DTX_OK;
}

// The anomalies, the first MAX_ANOMS of them.
static void
write_anomalies(tl *t)
{
	FILE *f = t->out;
	const hx_verdict *v = t->in->v;
	size_t shown = 0, total = 0;
	fputs(",\n\"anomalies\":[", f);
	for (size_t c = 0; v != NULL && c < hx_verdict_count(v); c++) {
		const hx_check *ck = hx_verdict_check(v, c);
		total += ck->nanoms;
		for (size_t k = 0; k < ck->nanoms && shown < MAX_ANOMS; k++) {
			const hx_anomaly *a = &ck->anoms[k];
			fprintf(f, "%s\n[%lld,", shown ? "," : "",
			    (long long)a->op_index);
			hx_json_escape(f, ck->name);
			fputc(',', f);
			hx_json_escape(f, a->kind);
			fputc(',', f);
			hx_json_escape(f, a->detail ? a->detail : "");
			fputc(']', f);
			shown++;
		}
	}
	fprintf(f, "],\n\"anomalies_total\":%zu}\n", total);
}

dtx_err
hx__timeline_json(const hx__tl_in *in, FILE *out)
{
	tl t = { .in = in, .out = out };
	dtx_err rv = pack_lanes(&t);
	if (rv == DTX_OK)
		rv = find_nodes(&t);
	if (rv == DTX_OK) {
		write_head(&t);
		rv = write_faults(&t);
	}
	if (rv == DTX_OK)
		rv = write_ops(&t);
	if (rv == DTX_OK)
		rv = write_values(&t);
	if (rv == DTX_OK)
		write_anomalies(&t);
	dtx_free(t.procs);
	dtx_free(t.nodes);
	dtx_free(t.f.s);
	for (size_t i = 0; i < t.errs.n; i++)
		dtx_free((char *)t.errs.s[i]);
	dtx_free(t.errs.s);
	dtx_free(t.kinds.s);
	return rv;
}

static dtx_err
write_file(const char *dir, const char *name, FILE **out)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	*out = fopen(path, "w");
	return *out ? DTX_OK : DTX_EIO;
}

static dtx_err
finish(FILE *f, dtx_err rv)
{
	bool bad = ferror(f) != 0;
	if (fclose(f) != 0)
		bad = true;
	return rv != DTX_OK ? rv : bad ? DTX_EIO : DTX_OK;
}

dtx_err
hx__timeline_write(const hx__tl_in *in, const char *dir)
{
	FILE *f;
	dtx_err rv = write_file(dir, "timeline.html", &f);
	if (rv != DTX_OK)
		return rv;
	fputs(hx__timeline_page, f);
	if ((rv = finish(f, DTX_OK)) != DTX_OK)
		return rv;
	if ((rv = write_file(dir, "timeline-data.js", &f)) != DTX_OK)
		return rv;
	fputs("window.DTX_TIMELINE =\n", f);
	rv = hx__timeline_json(in, f);
	fputs(";\n", f);
	return finish(f, rv);
}
