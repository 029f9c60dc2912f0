// SPDX-License-Identifier: MIT
//
// The atomicity checker: after a 2PC/3PC run every participant and the
// coordinator report what they know of each transaction, timed-out ones
// included (the client chose their txids). All must agree (no split
// decision; the coordinator's presumed abort is no decision), and they
// must agree with what clients were told: an ok transfer is committed
// wherever it is known, a failed one nowhere; an indeterminate one is
// resolved from what they say.

#include <stdlib.h>
#include <string.h>

#include "harness_int.h"

static const char *const outcome_names[] = { "committed", "aborted", "in-doubt",
	"unknown", "presumed-aborted", "heuristic-committed",
	"heuristic-aborted", "heuristic-hazard" };

const char *
hx_txn_outcome_name(hx_txn_outcome o)
{
	return (unsigned)o <= HX_TXN_HEUR_HAZARD ? outcome_names[o] : "?";
}

dtx_err
hx_txn_outcome_parse(const char *s, hx_txn_outcome *out)
{
	int i = hx__name_index(outcome_names, HX_TXN_HEUR_HAZARD + 1, s);
	if (i < 0)
		return DTX_EINVAL;
	*out = (hx_txn_outcome)i;
	return DTX_OK;
}

typedef struct group {
	uint64_t txid;
	size_t start, n; // range in the sorted observations
	int64_t op; // the transfer's invocation, -1 when not in the history
} group;

static int
cmp_obs(const void *a, const void *b)
{
	const hx_txn_obs *x = a, *y = b;
	if (x->txid != y->txid)
		return x->txid < y->txid ? -1 : 1;
	if (x->node != y->node)
		return x->node < y->node ? -1 : 1;
	return (int)x->outcome - (int)y->outcome;
}

static int
cmp_group(const void *key, const void *elem)
{
	uint64_t k = *(const uint64_t *)key;
	const group *g = elem;
	return k < g->txid ? -1 : k > g->txid;
}

// Appends "[n1,n2]" of the nodes in g with outcome o.
static void
nodes_json(
    hx_sb *sb, const hx_txn_obs *sorted, const group *g, hx_txn_outcome o)
{
	bool comma = false;
	hx_sb_printf(sb, "[");
	for (size_t i = g->start; i < g->start + g->n; i++) {
		if (sorted[i].outcome != o)
			continue;
		hx_sb_printf(sb, "%s%d", comma ? "," : "", (int)sorted[i].node);
		comma = true;
	}
	hx_sb_printf(sb, "]");
}

static size_t
count_outcome(const hx_txn_obs *sorted, const group *g, hx_txn_outcome o)
{
	size_t n = 0;
	for (size_t i = g->start; i < g->start + g->n; i++)
		if (sorted[i].outcome == o)
			n++;
	return n;
}

// Committed (aborted) anywhere, by the protocol or by hand.
static size_t
count_committed(const hx_txn_obs *sorted, const group *g)
{
	return count_outcome(sorted, g, HX_TXN_COMMITTED) +
	    count_outcome(sorted, g, HX_TXN_HEUR_COMMITTED);
}

static size_t
count_aborted(const hx_txn_obs *sorted, const group *g)
{
	return count_outcome(sorted, g, HX_TXN_ABORTED) +
	    count_outcome(sorted, g, HX_TXN_HEUR_ABORTED);
}

static char *
sides_detail(const hx_txn_obs *sorted, const group *g, const char *client)
{
	hx_sb d = { 0 };
	hx_sb_printf(&d, "{");
	if (client)
		hx_sb_printf(&d, "\"client\":\"%s\",", client);
	hx_sb_printf(&d, "\"committed\":");
	nodes_json(&d, sorted, g, HX_TXN_COMMITTED);
	hx_sb_printf(&d, ",\"aborted\":");
	nodes_json(&d, sorted, g, HX_TXN_ABORTED);
	hx_sb_printf(&d, ",\"in_doubt\":");
	nodes_json(&d, sorted, g, HX_TXN_IN_DOUBT);
	if (count_outcome(sorted, g, HX_TXN_HEUR_COMMITTED) +
	        count_outcome(sorted, g, HX_TXN_HEUR_ABORTED) >
	    0) {
		hx_sb_printf(&d, ",\"heuristic_committed\":");
		nodes_json(&d, sorted, g, HX_TXN_HEUR_COMMITTED);
		hx_sb_printf(&d, ",\"heuristic_aborted\":");
		nodes_json(&d, sorted, g, HX_TXN_HEUR_ABORTED);
		hx_sb_printf(&d, ",\"heuristic_hazard\":");
		nodes_json(&d, sorted, g, HX_TXN_HEUR_HAZARD);
	}
	hx_sb_printf(&d, "}");
	return hx_sb_take(&d);
}

// An indeterminate transfer is resolved by the nodes: committed when any
// committed it, aborted when every node answered and none committed or is
// in doubt, unresolved otherwise.
static void
resolve_info(hx_atom_result *r, const hx_txn_obs *sorted, const group *g)
{
	r->info++;
	if (g == NULL)
		r->info_unobserved++;
	else if (count_committed(sorted, g) > 0)
		r->info_committed++;
	else if (count_outcome(sorted, g, HX_TXN_IN_DOUBT) +
	        count_outcome(sorted, g, HX_TXN_UNKNOWN) >
	    0)
		r->info_unresolved++;
	else
		r->info_aborted++;
}

// What clients saw: a transfer that completed ok must not have aborted
// anywhere, one that failed must not have committed anywhere. Records in
// each group the first op that names its txid.
static dtx_err
check_clients(hx_atom_result *r, const hx_history *h, const int64_t *pairs,
    const hx_txn_obs *sorted, group *groups, size_t ngroups)
{
	dtx_err rv = DTX_OK;
	size_t n = hx_history_len(h);
	for (size_t i = 0; i < n; i++) {
		const hx_op *inv = hx_history_get(h, i);
		if (inv->type != HX_OP_INVOKE ||
		    inv->process == HX_PROC_NEMESIS ||
		    (strcmp(inv->f, "transfer") != 0 &&
		        strcmp(inv->f, "txn") != 0))
			continue;
		const hx_op *comp =
		    pairs[i] >= 0 ? hx_history_get(h, (size_t)pairs[i]) : NULL;
		uint64_t txid;
		if (!hx__op_txid(inv, comp, &txid)) {
			// A list-append read-only "txn" has no txid: it
			// changes nothing, so it has no outcome to resolve.
			if ((comp == NULL || comp->type == HX_OP_INFO) &&
			    strcmp(inv->f, "transfer") == 0)
				r->info_no_txid++;
			continue;
		}
		group *g =
		    bsearch(&txid, groups, ngroups, sizeof(*groups), cmp_group);
		if (g != NULL && g->op < 0)
			g->op = (int64_t)i;
		// An info completion or none at all: it may or may not have
		// happened, so any outcome is allowed; what the nodes say
		// resolves it (and their split decisions are checked below).
		if (comp == NULL ||
		    (comp->type != HX_OP_OK && comp->type != HX_OP_FAIL)) {
			resolve_info(r, sorted, g);
			continue;
		}
		if (g == NULL) {
			r->unobserved++;
			continue;
		}
		bool ok = comp->type == HX_OP_OK;
		if (ok && count_aborted(sorted, g) > 0) {
			r->ok_not_committed++;
			rv = hx__check_anomaly(&r->c, "ok-not-committed", inv,
			    true, txid, NULL, sides_detail(sorted, g, "ok"));
		} else if (!ok && count_committed(sorted, g) > 0) {
			r->fail_committed++;
			rv = hx__check_anomaly(&r->c, "fail-committed", inv,
			    true, txid, NULL, sides_detail(sorted, g, "fail"));
		}
		if (rv != DTX_OK)
			return rv;
	}
	return DTX_OK;
}

// What participants decided: no transaction committed at one and aborted
// at another; none left in doubt.
static dtx_err
check_decisions(hx_atom_result *r, const hx_history *h,
    const hx_txn_obs *sorted, const group *groups, size_t ngroups)
{
	dtx_err rv;
	for (size_t k = 0; k < ngroups; k++) {
		const group *g = &groups[k];
		const hx_op *op =
		    g->op >= 0 ? hx_history_get(h, (size_t)g->op) : NULL;
		size_t c = count_committed(sorted, g);
		size_t a = count_aborted(sorted, g);
		size_t d = count_outcome(sorted, g, HX_TXN_IN_DOUBT);
		size_t hand = count_outcome(sorted, g, HX_TXN_HEUR_COMMITTED) +
		    count_outcome(sorted, g, HX_TXN_HEUR_ABORTED);
		size_t hz = count_outcome(sorted, g, HX_TXN_HEUR_HAZARD);
		r->heuristic += hand > 0;
		// A disagreement a decision by hand made, or one the node
		// found itself: a heuristic hazard, never hidden.
		if ((c > 0 && a > 0 && hand > 0) || hz > 0) {
			r->heur_hazards++;
			rv = hx__check_anomaly(&r->c, "heuristic-hazard", op,
			    true, g->txid, NULL, sides_detail(sorted, g, NULL));
			if (rv != DTX_OK)
				return rv;
		} else if (c > 0 && a > 0) {
			r->split++;
			rv = hx__check_anomaly(&r->c, "split-decision", op,
			    true, g->txid, NULL, sides_detail(sorted, g, NULL));
			if (rv != DTX_OK)
				return rv;
		}
		if (d > 0) {
			r->in_doubt++;
			rv = hx__check_anomaly(&r->c, "in-doubt", op, true,
			    g->txid, NULL, sides_detail(sorted, g, NULL));
			if (rv != DTX_OK)
				return rv;
		}
	}
	return DTX_OK;
}

// Writes the verdict's summary line and JSON into r.
static dtx_err
describe(hx_atom_result *r, size_t nobs, hx_valid valid)
{
	hx_sb s = { 0 }, j = { 0 };
	if (nobs == 0)
		hx_sb_printf(&s,
		    "no participant observations: nothing to "
		    "check");
	else
		hx_sb_printf(&s,
		    "%zu transactions observed: %zu split decisions, %zu ok "
		    "but aborted, %zu failed but committed, %zu blocked in "
		    "doubt, %zu completed transfers unobserved; %zu "
		    "indeterminate: %zu resolved committed, %zu aborted, %zu "
		    "unresolved, %zu unobserved, %zu without txid; %zu "
		    "decided by hand, %zu heuristic hazards",
		    r->txns, r->split, r->ok_not_committed, r->fail_committed,
		    r->in_doubt, r->unobserved, r->info, r->info_committed,
		    r->info_aborted, r->info_unresolved, r->info_unobserved,
		    r->info_no_txid, r->heuristic, r->heur_hazards);
	hx_sb_printf(&j,
	    "{\"valid\":%s,\"observations\":%zu,\"txns\":%zu,"
	    "\"split_decisions\":%zu,\"ok_not_committed\":%zu,"
	    "\"fail_committed\":%zu,\"in_doubt\":%zu,\"unobserved\":%zu,"
	    "\"info\":{\"total\":%zu,\"committed\":%zu,\"aborted\":%zu,"
	    "\"unresolved\":%zu,\"unobserved\":%zu,\"no_txid\":%zu},"
	    "\"heuristic\":%zu,\"heuristic_hazards\":%zu}",
	    hx_valid_json(valid), nobs, r->txns, r->split, r->ok_not_committed,
	    r->fail_committed, r->in_doubt, r->unobserved, r->info,
	    r->info_committed, r->info_aborted, r->info_unresolved,
	    r->info_unobserved, r->info_no_txid, r->heuristic, r->heur_hazards);
	return hx__check_set(&r->c, valid, &s, &j);
}

dtx_err
hx_check_atomicity(const hx_history *h, const hx_txn_obs *obs, size_t nobs,
    hx_atom_result *out)
{
	if (h == NULL || out == NULL || (nobs > 0 && obs == NULL))
		return DTX_EINVAL;
	hx_atom_result r;
	memset(&r, 0, sizeof(r));
	hx__check_init(&r.c, "atomicity");
	dtx_err rv = DTX_ENOMEM;
	int64_t *pairs = NULL;
	group *groups = NULL;
	size_t ngroups = 0;
	hx_txn_obs *sorted = dtx_alloc((nobs ? nobs : 1) * sizeof(*sorted));
	if (sorted == NULL)
		goto done;
	if (nobs)
		memcpy(sorted, obs, nobs * sizeof(*obs));
	qsort(sorted, nobs, sizeof(*sorted), cmp_obs);
	groups = dtx_alloc((nobs ? nobs : 1) * sizeof(*groups));
	if (groups == NULL)
		goto done;
	for (size_t i = 0; i < nobs; i++) {
		if (ngroups == 0 || groups[ngroups - 1].txid != sorted[i].txid)
			groups[ngroups++] =
			    (group) { sorted[i].txid, i, 0, -1 };
		groups[ngroups - 1].n++;
	}
	r.txns = ngroups;
	if ((rv = hx_history_pairs(h, &pairs)) != DTX_OK ||
	    (rv = check_clients(&r, h, pairs, sorted, groups, ngroups)) !=
	        DTX_OK ||
	    (rv = check_decisions(&r, h, sorted, groups, ngroups)) != DTX_OK)
		goto done;
	size_t bad =
	    r.split + r.ok_not_committed + r.fail_committed + r.heur_hazards;
	hx_valid valid = bad > 0 ? HX_VALID_FALSE
	    : nobs == 0          ? HX_VALID_UNKNOWN
	                         : HX_VALID_TRUE;
	rv = describe(&r, nobs, valid);
done:
	dtx_free(pairs);
	dtx_free(groups);
	dtx_free(sorted);
	if (rv == DTX_OK)
		*out = r;
	else
		hx_check_fini(&r.c);
	return rv;
}
