// SPDX-License-Identifier: MIT
//
// The session checker: dtx bank promises read-your-writes to 2PC/3PC
// clients (a client reads at or after the commit timestamp of its own
// last ok transfer; bank_workload.c re-reads at that timestamp when the
// cluster's answer was older). Every ok read of a process is held to the
// largest commit timestamp of the ok transfers that process completed
// before it.

#include <stdlib.h>
#include <string.h>

#include "harness_int.h"

// An op of interest: an ok transfer with its commit timestamp or an ok
// read with its snapshot timestamp.
typedef struct sop {
	int64_t process;
	size_t index;
	bool read;
	clk_ts ts;
} sop;

static int
cmp_sop(const void *a, const void *b)
{
	const sop *x = a, *y = b;
	if (x->process != y->process)
		return x->process < y->process ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

// The uint64 field key of op's value; DTX_EINVAL when it has none.
static dtx_err
value_u64(const hx_op *op, const char *key, uint64_t *out)
{
	hx_jdoc *doc;
	if (op->value == NULL)
		return DTX_EINVAL;
	dtx_err rv = hx_json_parse(op->value, strlen(op->value), &doc, NULL, 0);
	if (rv != DTX_OK)
		return rv;
	rv = hx_jv_u64(hx_jv_get(hx_jdoc_root(doc), key), out);
	hx_jdoc_free(doc);
	return rv;
}

static dtx_err
collect(const hx_history *h, sop *ops, size_t *nout)
{
	size_t n = hx_history_len(h), k = 0;
	for (size_t i = 0; i < n; i++) {
		const hx_op *op = hx_history_get(h, i);
		if (op->type != HX_OP_OK || op->process == HX_PROC_NEMESIS)
			continue;
		bool read = strcmp(op->f, "read") == 0;
		if (!read && strcmp(op->f, "transfer") != 0)
			continue;
		uint64_t ts;
		dtx_err rv = value_u64(op, read ? "ts" : "cts", &ts);
		if (rv == DTX_ENOMEM)
			return rv;
		if (rv == DTX_OK && ts != 0)
			ops[k++] = (sop) { op->process, i, read, ts };
	}
	*nout = k;
	return DTX_OK;
}

static char *
stale_detail(const sop *rd, clk_ts floor, size_t xfer)
{
	hx_sb d = { 0 };
	hx_sb_printf(&d,
	    "{\"read_ts\":%llu,\"own_commit_ts\":%llu,\"transfer_op\":%zu,"
	    "\"behind_ms\":%lld}",
	    (unsigned long long)rd->ts, (unsigned long long)floor, xfer,
	    (long long)(clk_ts_l(floor) - clk_ts_l(rd->ts)));
	return hx_sb_take(&d);
}

// ---------------------------------------------------- node timestamp order

// An ok read whose ts a participant chose: node, real-time interval, ts.
typedef struct nread {
	int64_t node, inv_ns, done_ns;
	size_t index;
	clk_ts ts;
} nread;

static int
cmp_inv(const void *a, const void *b)
{
	const nread *x = a, *y = b;
	if (x->node != y->node)
		return x->node < y->node ? -1 : 1;
	return x->inv_ns < y->inv_ns ? -1 : x->inv_ns > y->inv_ns;
}

static int
cmp_done(const void *a, const void *b)
{
	const nread *x = a, *y = b;
	if (x->node != y->node)
		return x->node < y->node ? -1 : 1;
	return x->done_ns < y->done_ns ? -1 : x->done_ns > y->done_ns;
}

static dtx_err
collect_nodes(const hx_history *h, const int64_t *pairs, nread *v, size_t *k)
{
	size_t n = hx_history_len(h);
	*k = 0;
	for (size_t i = 0; i < n; i++) {
		const hx_op *op = hx_history_get(h, i);
		uint64_t by, ts;
		if (op->type != HX_OP_OK || op->process == HX_PROC_NEMESIS ||
		    pairs[i] < 0 || (size_t)pairs[i] > i ||
		    (strcmp(op->f, "read") != 0 &&
		        strcmp(op->f, "final-read") != 0))
			continue;
		dtx_err rv = value_u64(op, "by", &by);
		if (rv == DTX_ENOMEM)
			return rv;
		if (rv != DTX_OK || value_u64(op, "ts", &ts) != DTX_OK)
			continue;
		v[(*k)++] = (nread) { (int64_t)by,
			hx_history_get(h, (size_t)pairs[i])->time_ns,
			op->time_ns, i, ts };
	}
	return DTX_OK;
}

// Every read of a node is held to the largest ts of the reads of that
// node that completed before it was invoked.
static dtx_err
node_order(const hx_history *h, hx_session_result *r)
{
	int64_t *pairs = NULL;
	size_t n = hx_history_len(h), k = 0;
	nread *inv = dtx_alloc((n ? n : 1) * sizeof(*inv));
	nread *done = dtx_alloc((n ? n : 1) * sizeof(*done));
	dtx_err rv = inv && done ? hx_history_pairs(h, &pairs) : DTX_ENOMEM;
	if (rv == DTX_OK)
		rv = collect_nodes(h, pairs, inv, &k);
	if (rv != DTX_OK)
		goto out;
	memcpy(done, inv, k * sizeof(*inv));
	qsort(inv, k, sizeof(*inv), cmp_inv);
	qsort(done, k, sizeof(*done), cmp_done);
	r->node_reads = k;
	clk_ts best = 0;
	size_t best_at = 0;
	for (size_t i = 0, d = 0; i < k && rv == DTX_OK; i++) {
		if (i == 0 || inv[i].node != inv[i - 1].node)
			best = 0;
		while (d < k &&
		    (done[d].node < inv[i].node ||
		        (done[d].node == inv[i].node &&
		            done[d].done_ns < inv[i].inv_ns))) {
			if (done[d].node == inv[i].node && done[d].ts > best) {
				best = done[d].ts;
				best_at = done[d].index;
			}
			d++;
		}
		if (inv[i].ts >= best)
			continue;
		r->regressions++;
		int64_t back = (int64_t)(clk_ts_l(best) - clk_ts_l(inv[i].ts));
		if (back > r->max_back_ms)
			r->max_back_ms = back;
		if (r->regressions > 20)
			continue; // counted; the first 20 are examples enough
		hx_sb dd = { 0 };
		hx_sb_printf(&dd,
		    "{\"node\":%lld,\"read_ts\":%llu,\"earlier_ts\":%llu,"
		    "\"earlier_op\":%zu,\"back_ms\":%lld}",
		    (long long)inv[i].node, (unsigned long long)inv[i].ts,
		    (unsigned long long)best, best_at, (long long)back);
		rv = hx__check_anomaly(&r->c, "ts-regression",
		    hx_history_get(h, inv[i].index), false, 0, NULL,
		    hx_sb_take(&dd));
	}
out:
	dtx_free(pairs);
	dtx_free(inv);
	dtx_free(done);
	return rv;
}

// One restart's clock (a member of a restart op's "hlc" list): below what
// the node stamped before its kill is a ts-regression.
static dtx_err
restart_clock(const hx_op *op, const hx_jv *m, hx_session_result *r)
{
	int64_t node = 0;
	uint64_t before = 0, after = 0;
	if (hx_jv_int(hx_jv_get(m, "node"), &node) != DTX_OK ||
	    hx_jv_u64(hx_jv_get(m, "before"), &before) != DTX_OK ||
	    hx_jv_u64(hx_jv_get(m, "after"), &after) != DTX_OK)
		return DTX_OK; // not ours to judge
	r->restarts++;
	if (after > before)
		return DTX_OK;
	r->regressions++;
	int64_t back = (int64_t)(clk_ts_l(before) - clk_ts_l(after));
	if (back > r->max_back_ms)
		r->max_back_ms = back;
	hx_sb d = { 0 };
	hx_sb_printf(&d,
	    "{\"node\":%lld,\"restart\":true,\"after_restart_ts\":%llu,"
	    "\"before_kill_ts\":%llu,\"back_ms\":%lld}",
	    (long long)node, (unsigned long long)after,
	    (unsigned long long)before, (long long)back);
	return hx__check_anomaly(
	    &r->c, "ts-regression", op, false, 0, NULL, hx_sb_take(&d));
}

// The clocks the nemesis read before each kill and after the restart
// (its restart ops' "hlc" lists): rule 14, a restarted daemon's clock
// starts above every timestamp it stamped before.
static dtx_err
restart_clocks(const hx_history *h, hx_session_result *r)
{
	size_t n = hx_history_len(h);
	dtx_err rv = DTX_OK;
	for (size_t i = 0; i < n && rv == DTX_OK; i++) {
		const hx_op *op = hx_history_get(h, i);
		if (op->process != HX_PROC_NEMESIS || op->value == NULL ||
		    strcmp(op->f, "restart") != 0 ||
		    strstr(op->value, "\"hlc\":[") == NULL)
			continue;
		hx_jdoc *d = NULL;
		char err[64];
		if (hx_json_parse(op->value, strlen(op->value), &d, err,
		        sizeof(err)) != DTX_OK)
			continue;
		const hx_jv *l = hx_jv_get(hx_jdoc_root(d), "hlc");
		for (const hx_jv *m = l != NULL ? l->first : NULL;
		     m != NULL && rv == DTX_OK; m = m->next)
			rv = restart_clock(op, m, r);
		hx_jdoc_free(d);
	}
	return rv;
}

static dtx_err
describe(hx_session_result *r, bool saga)
{
	hx_sb s = { 0 }, j = { 0 };
	hx_valid valid =
	    r->stale + r->regressions > 0 ? HX_VALID_FALSE : HX_VALID_TRUE;
	if (saga)
		hx_sb_printf(&s,
		    "sagas promise no session guarantee (no commit "
		    "timestamp reaches the client): nothing to check");
	else
		hx_sb_printf(&s,
		    "read-your-writes: %zu reads after an own ok transfer, "
		    "%zu stale (largest gap %lld ms)",
		    r->reads, r->stale, (long long)r->max_behind_ms);
	hx_sb_printf(&s,
	    "; node timestamps: %zu reads a participant timed and %zu "
	    "restarts' clocks, %zu went back (largest %lld ms)",
	    r->node_reads, r->restarts, r->regressions,
	    (long long)r->max_back_ms);
	hx_sb_printf(&j,
	    "{\"valid\":%s,\"guarantee\":\"%s\",\"reads\":%zu,"
	    "\"stale\":%zu,\"max_behind_ms\":%lld,\"node_reads\":%zu,"
	    "\"restarts\":%zu,\"ts_regressions\":%zu,\"max_back_ms\":%lld}",
	    hx_valid_json(valid), saga ? "none" : "read-your-writes", r->reads,
	    r->stale, (long long)r->max_behind_ms, r->node_reads, r->restarts,
	    r->regressions, (long long)r->max_back_ms);
	return hx__check_set(&r->c, valid, &s, &j);
}

dtx_err
hx_check_session(const hx_history *h, bool saga, hx_session_result *out)
{
	if (h == NULL || out == NULL)
		return DTX_EINVAL;
	hx_session_result r;
	memset(&r, 0, sizeof(r));
	hx__check_init(&r.c, "session");
	size_t n = hx_history_len(h), k = 0;
	sop *ops = dtx_alloc((n ? n : 1) * sizeof(*ops));
	dtx_err rv = ops == NULL ? DTX_ENOMEM : DTX_OK;
	if (rv == DTX_OK && !saga)
		rv = collect(h, ops, &k);
	if (rv != DTX_OK)
		goto done;
	qsort(ops, k, sizeof(*ops), cmp_sop);
	clk_ts floor = 0;
	size_t from = 0;
	for (size_t i = 0; rv == DTX_OK && i < k; i++) {
		if (i == 0 || ops[i].process != ops[i - 1].process)
			floor = 0;
		if (!ops[i].read) {
			if (ops[i].ts > floor) {
				floor = ops[i].ts;
				from = ops[i].index;
			}
			continue;
		}
		if (floor == 0)
			continue;
		r.reads++;
		if (ops[i].ts >= floor)
			continue;
		r.stale++;
		int64_t gap = (int64_t)(clk_ts_l(floor) - clk_ts_l(ops[i].ts));
		if (gap > r.max_behind_ms)
			r.max_behind_ms = gap;
		rv = hx__check_anomaly(&r.c, "stale-read",
		    hx_history_get(h, ops[i].index), false, 0, NULL,
		    stale_detail(&ops[i], floor, from));
	}
	if (rv == DTX_OK)
		rv = node_order(h, &r);
	if (rv == DTX_OK)
		rv = restart_clocks(h, &r);
	if (rv == DTX_OK)
		rv = describe(&r, saga);
done:
	dtx_free(ops);
	if (rv == DTX_OK)
		*out = r;
	else
		hx_check_fini(&r.c);
	return rv;
}
