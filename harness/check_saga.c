// SPDX-License-Identifier: MIT
//
// The saga checker: once the system is quiet every saga must have finished,
// committed or fully compensated, and money must be conserved. Reads during
// the run may see a transfer half done; those wrong totals are expected for
// sagas and are counted as transient, not as violations.

#include <stdlib.h>
#include <string.h>

#include "harness_int.h"

static const char *const state_names[] = { "committed", "aborted",
	"compensating", "running" };

const char *
hx_saga_state_name(hx_saga_state s)
{
	return (unsigned)s <= HX_SAGA_RUNNING ? state_names[s] : "?";
}

dtx_err
hx_saga_state_parse(const char *s, hx_saga_state *out)
{
	int i = hx__name_index(state_names, HX_SAGA_RUNNING + 1, s);
	if (i < 0)
		return DTX_EINVAL;
	*out = (hx_saga_state)i;
	return DTX_OK;
}

static int
cmp_saga(const void *a, const void *b)
{
	return strcmp(
	    ((const hx_saga_obs *)a)->gid, ((const hx_saga_obs *)b)->gid);
}

// The total of a read that shows naccounts integer balances; false for any
// other read (the bank checker reports those).
static bool
read_total(const hx_op *op, size_t naccounts, int64_t *total)
{
	hx_jdoc *doc = NULL;
	if (op->value == NULL ||
	    hx_json_parse(op->value, strlen(op->value), &doc, NULL, 0) !=
	        DTX_OK)
		return false;
	const hx_jv *bal = hx_jv_get(hx_jdoc_root(doc), "balances");
	bool ok =
	    bal != NULL && bal->type == HX_JV_OBJ && bal->len == naccounts;
	int64_t t = 0;
	for (const hx_jv *m = ok ? bal->first : NULL; m && ok; m = m->next) {
		int64_t v;
		if (hx_jv_int(m, &v) != DTX_OK ||
		    __builtin_add_overflow(t, v, &t))
			ok = false;
	}
	hx_jdoc_free(doc);
	if (ok)
		*total = t;
	return ok;
}

// Counts the sagas by final state; every saga not committed or compensated
// is an anomaly.
static dtx_err
check_states(hx_saga_result *r, const hx_saga_obs *sorted, size_t nsagas)
{
	for (size_t i = 0; i < nsagas; i++) {
		const hx_saga_obs *s = &sorted[i];
		if (s->state == HX_SAGA_COMMITTED) {
			r->committed++;
			continue;
		}
		if (s->state == HX_SAGA_ABORTED) {
			r->aborted++;
			continue;
		}
		r->stuck++;
		hx_sb d = { 0 };
		hx_sb_printf(&d, "{\"state\":\"%s\",\"failed_step\":%d}",
		    hx_saga_state_name(s->state), (int)s->failed_step);
		dtx_err rv = hx__check_anomaly(&r->c, "saga-unfinished", NULL,
		    false, 0, s->gid, hx_sb_take(&d));
		if (rv != DTX_OK)
			return rv;
	}
	return DTX_OK;
}

// Rule 12: a saga compensates its steps in reverse order, each only after
// the later one's compensation was answered. That answer carries the
// later participant's HLC, which the orchestrator's next request carries
// on, so the known stamps (0: not known) fall strictly from each step to
// the next; the first pair that does not is reported.
static dtx_err
check_comp_order(hx_saga_result *r, const hx_saga_obs *sorted, size_t nsagas)
{
	for (size_t k = 0; k < nsagas; k++) {
		const clk_ts *ts = sorted[k].comp_ts;
		uint32_t nstamps = 0, prev = 0, bad = 0;
		bool found = false;
		for (uint32_t i = 0; i < HX_SAGA_COMP_STEPS; i++) {
			if (ts[i] == 0)
				continue;
			if (nstamps++ > 0 && !found && ts[i] >= ts[prev]) {
				found = true;
				bad = i;
			}
			if (!found)
				prev = i;
		}
		if (nstamps < 2)
			continue;
		r->comp_ordered++;
		if (!found || r->misordered++ >= 3)
			continue; // in order, or counted (three are shown)
		hx_sb d = { 0 };
		hx_sb_printf(&d,
		    "{\"step\":%u,\"comp_ts\":%llu,"
		    "\"later_step\":%u,\"later_comp_ts\":%llu}",
		    prev, (unsigned long long)ts[prev], bad,
		    (unsigned long long)ts[bad]);
		dtx_err rv = hx__check_anomaly(&r->c, "compensation-order",
		    NULL, false, 0, sorted[k].gid, hx_sb_take(&d));
		if (rv != DTX_OK)
			return rv;
	}
	return DTX_OK;
}

// Compares a completed transfer (invocation op, completion comp) with
// what became of its saga.
static dtx_err
check_transfer(hx_saga_result *r, const hx_op *op, const hx_op *comp,
    const hx_saga_obs *sorted, size_t nsagas)
{
	hx_saga_obs key;
	memset(&key, 0, sizeof(key));
	if (!hx__op_gid(op, comp, key.gid, sizeof(key.gid)))
		return DTX_OK;
	const hx_saga_obs *s =
	    bsearch(&key, sorted, nsagas, sizeof(*sorted), cmp_saga);
	if (s == NULL)
		return DTX_OK;
	const char *kind = NULL;
	if (comp->type == HX_OP_OK && s->state == HX_SAGA_ABORTED) {
		r->ok_not_committed++;
		kind = "ok-not-committed";
	} else if (comp->type == HX_OP_FAIL && s->state == HX_SAGA_COMMITTED) {
		r->fail_committed++;
		kind = "fail-committed";
	}
	if (kind == NULL)
		return DTX_OK;
	hx_sb d = { 0 };
	hx_sb_printf(&d, "{\"client\":\"%s\",\"state\":\"%s\"}",
	    hx_op_type_name(comp->type), hx_saga_state_name(s->state));
	return hx__check_anomaly(
	    &r->c, kind, op, false, 0, s->gid, hx_sb_take(&d));
}

// Walks the history: counts transient wrong totals, finds the last ok
// final-read (*final), and checks every completed transfer.
static dtx_err
check_history(hx_saga_result *r, const hx_history *h, const hx_bank_cfg *cfg,
    const int64_t *pairs, const hx_saga_obs *sorted, size_t nsagas,
    const hx_op **final)
{
	size_t n = hx_history_len(h);
	for (size_t i = 0; i < n; i++) {
		const hx_op *op = hx_history_get(h, i);
		if (op->process == HX_PROC_NEMESIS)
			continue;
		int64_t t;
		if (op->type == HX_OP_OK && strcmp(op->f, "read") == 0) {
			if (!read_total(op, cfg->naccounts, &t) ||
			    t == cfg->total)
				continue;
			if (t < cfg->total) {
				r->transient++;
				continue;
			}
			// More money than the bank: no saga order shows that.
			if (r->above++ < 3) {
				hx_sb d = { 0 };
				hx_sb_printf(&d,
				    "{\"total\":%lld,\"expected\":%lld,"
				    "\"value\":%s}",
				    (long long)t, (long long)cfg->total,
				    op->value);
				dtx_err rv =
				    hx__check_anomaly(&r->c, "total-above-bank",
				        op, false, 0, NULL, hx_sb_take(&d));
				if (rv != DTX_OK)
					return rv;
			}
			continue;
		}
		if (op->type == HX_OP_OK && strcmp(op->f, "final-read") == 0) {
			r->final_reads++;
			*final = op;
			continue;
		}
		if (op->type != HX_OP_INVOKE || strcmp(op->f, "transfer") != 0)
			continue;
		const hx_op *comp =
		    pairs[i] >= 0 ? hx_history_get(h, (size_t)pairs[i]) : NULL;
		// info or no completion: the saga may or may not have run.
		if (comp == NULL ||
		    (comp->type != HX_OP_OK && comp->type != HX_OP_FAIL))
			continue;
		dtx_err rv = check_transfer(r, op, comp, sorted, nsagas);
		if (rv != DTX_OK)
			return rv;
	}
	return DTX_OK;
}

// Checks that the final read shows the total; sets *bad when it does not.
static dtx_err
check_final(
    hx_saga_result *r, const hx_bank_cfg *cfg, const hx_op *final, bool *bad)
{
	*bad = false;
	if (final == NULL)
		return DTX_OK;
	if (final->value != NULL &&
	    strstr(final->value, "\"unreadable_nodes\"") != NULL) {
		r->final_partial = true;
		return DTX_OK;
	}
	int64_t t = 0;
	r->final_ok = read_total(final, cfg->naccounts, &t) && t == cfg->total;
	r->final_total = t;
	if (r->final_ok)
		return DTX_OK;
	*bad = true;
	hx_sb d = { 0 };
	hx_sb_printf(&d, "{\"total\":%lld,\"expected\":%lld,\"value\":%s}",
	    (long long)t, (long long)cfg->total, final->value);
	return hx__check_anomaly(
	    &r->c, "final-total", final, false, 0, NULL, hx_sb_take(&d));
}

// Writes the verdict's summary line and JSON into r.
static dtx_err
describe(hx_saga_result *r, const hx_bank_cfg *cfg, const hx_op *final,
    hx_valid valid)
{
	hx_sb s = { 0 }, j = { 0 };
	hx_sb_printf(&s,
	    "%zu sagas: %zu committed, %zu compensated, %zu unfinished; ",
	    r->sagas, r->committed, r->aborted, r->stuck);
	if (final == NULL)
		hx_sb_printf(&s, "no final read, conservation unchecked");
	else if (r->final_partial)
		hx_sb_printf(&s,
		    "the final read lacks participants down for good "
		    "(kill-forever), conservation unchecked");
	else if (r->final_ok)
		hx_sb_printf(&s, "final total %lld conserved",
		    (long long)r->final_total);
	else
		hx_sb_printf(&s, "final total %lld, expected %lld",
		    (long long)r->final_total, (long long)cfg->total);
	if (r->ok_not_committed + r->fail_committed > 0)
		hx_sb_printf(&s,
		    "; %zu ok but compensated, %zu failed but "
		    "committed",
		    r->ok_not_committed, r->fail_committed);
	hx_sb_printf(&s,
	    "; %zu reads saw a total below the bank during the run "
	    "(transient, expected for sagas)",
	    r->transient);
	if (r->above > 0)
		hx_sb_printf(&s,
		    "; %zu reads saw MORE money than the bank (no saga "
		    "order allows that)",
		    r->above);
	hx_sb_printf(
	    &s, "; %zu sagas compensated more than one step", r->comp_ordered);
	if (r->misordered > 0)
		hx_sb_printf(&s,
		    ", %zu of them OUT OF ORDER (an earlier step's "
		    "compensation before a later one's)",
		    r->misordered);
	hx_sb_printf(&j,
	    "{\"valid\":%s,\"sagas\":%zu,\"committed\":%zu,"
	    "\"aborted\":%zu,\"unfinished\":%zu,\"transient_wrong_totals\":%zu,"
	    "\"final_reads\":%zu,\"final_total\":%lld,\"final_ok\":%s,"
	    "\"ok_not_committed\":%zu,\"fail_committed\":%zu,"
	    "\"above_bank\":%zu,\"final_partial\":%s,"
	    "\"multi_step_compensations\":%zu,"
	    "\"compensation_order_violations\":%zu}",
	    hx_valid_json(valid), r->sagas, r->committed, r->aborted, r->stuck,
	    r->transient, r->final_reads, (long long)r->final_total,
	    r->final_ok ? "true" : "false", r->ok_not_committed,
	    r->fail_committed, r->above, r->final_partial ? "true" : "false",
	    r->comp_ordered, r->misordered);
	return hx__check_set(&r->c, valid, &s, &j);
}

dtx_err
hx_check_saga(const hx_history *h, const hx_bank_cfg *cfg,
    const hx_saga_obs *sagas, size_t nsagas, hx_saga_result *out)
{
	if (h == NULL || cfg == NULL || out == NULL ||
	    (nsagas > 0 && sagas == NULL))
		return DTX_EINVAL;
	hx_saga_result r;
	memset(&r, 0, sizeof(r));
	hx__check_init(&r.c, "saga");
	dtx_err rv = DTX_ENOMEM;
	int64_t *pairs = NULL;
	const hx_op *final = NULL;
	bool final_bad;
	hx_saga_obs *sorted =
	    dtx_alloc((nsagas ? nsagas : 1) * sizeof(*sorted));
	if (sorted == NULL)
		goto done;
	if (nsagas)
		memcpy(sorted, sagas, nsagas * sizeof(*sagas));
	qsort(sorted, nsagas, sizeof(*sorted), cmp_saga);
	r.sagas = nsagas;
	if ((rv = check_states(&r, sorted, nsagas)) != DTX_OK ||
	    (rv = check_comp_order(&r, sorted, nsagas)) != DTX_OK ||
	    (rv = hx_history_pairs(h, &pairs)) != DTX_OK ||
	    (rv = check_history(&r, h, cfg, pairs, sorted, nsagas, &final)) !=
	        DTX_OK ||
	    (rv = check_final(&r, cfg, final, &final_bad)) != DTX_OK)
		goto done;
	size_t bad = r.stuck + r.ok_not_committed + r.fail_committed + r.above +
	    r.misordered + (final_bad ? 1 : 0);
	hx_valid valid = bad > 0               ? HX_VALID_FALSE
	    : final == NULL || r.final_partial ? HX_VALID_UNKNOWN
	                                       : HX_VALID_TRUE;
	rv = describe(&r, cfg, final, valid);
done:
	dtx_free(pairs);
	dtx_free(sorted);
	if (rv == DTX_OK)
		*out = r;
	else
		hx_check_fini(&r.c);
	return rv;
}
