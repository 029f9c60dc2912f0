// SPDX-License-Identifier: MIT
//
// The atomicity checker: after a 2PC/3PC run every participant reports what
// it knows of each transaction. All participants must agree (no split
// decision), and they must agree with what clients were told: an ok
// transfer is committed wherever it is known, a failed one nowhere.

#include <stdlib.h>
#include <string.h>

#include "cli_int.h"

static const char *const outcome_names[] = { "committed", "aborted", "in-doubt",
	"unknown" };

const char *
cli_txn_outcome_name(cli_txn_outcome o)
{
	return (unsigned)o <= CLI_TXN_UNKNOWN ? outcome_names[o] : "?";
}

dtx_err
cli_txn_outcome_parse(const char *s, cli_txn_outcome *out)
{
	int i = cli__name_index(outcome_names, CLI_TXN_UNKNOWN + 1, s);
	if (i < 0)
		return DTX_EINVAL;
	*out = (cli_txn_outcome)i;
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
	const cli_txn_obs *x = a, *y = b;
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
    cli_sb *sb, const cli_txn_obs *sorted, const group *g, cli_txn_outcome o)
{
	bool comma = false;
	cli_sb_printf(sb, "[");
	for (size_t i = g->start; i < g->start + g->n; i++) {
		if (sorted[i].outcome != o)
			continue;
		cli_sb_printf(
		    sb, "%s%d", comma ? "," : "", (int)sorted[i].node);
		comma = true;
	}
	cli_sb_printf(sb, "]");
}

static size_t
count_outcome(const cli_txn_obs *sorted, const group *g, cli_txn_outcome o)
{
	size_t n = 0;
	for (size_t i = g->start; i < g->start + g->n; i++)
		if (sorted[i].outcome == o)
			n++;
	return n;
}

static char *
sides_detail(const cli_txn_obs *sorted, const group *g, const char *client)
{
	cli_sb d = { 0 };
	cli_sb_printf(&d, "{");
	if (client)
		cli_sb_printf(&d, "\"client\":\"%s\",", client);
	cli_sb_printf(&d, "\"committed\":");
	nodes_json(&d, sorted, g, CLI_TXN_COMMITTED);
	cli_sb_printf(&d, ",\"aborted\":");
	nodes_json(&d, sorted, g, CLI_TXN_ABORTED);
	cli_sb_printf(&d, ",\"in_doubt\":");
	nodes_json(&d, sorted, g, CLI_TXN_IN_DOUBT);
	cli_sb_printf(&d, "}");
	return cli_sb_take(&d);
}

dtx_err
cli_check_atomicity(const cli_history *h, const cli_txn_obs *obs, size_t nobs,
    cli_atom_result *out)
{
	if (h == NULL || out == NULL || (nobs > 0 && obs == NULL))
		return DTX_EINVAL;
	cli_atom_result r;
	memset(&r, 0, sizeof(r));
	cli__check_init(&r.c, "atomicity");
	dtx_err rv = DTX_ENOMEM;
	int64_t *pairs = NULL;
	group *groups = NULL;
	size_t ngroups = 0;
	cli_txn_obs *sorted = dtx_alloc((nobs ? nobs : 1) * sizeof(*sorted));
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

	// What clients saw.
	if ((rv = cli_history_pairs(h, &pairs)) != DTX_OK)
		goto done;
	size_t n = cli_history_len(h);
	for (size_t i = 0; i < n; i++) {
		const cli_op *inv = cli_history_get(h, i);
		if (inv->type != CLI_OP_INVOKE ||
		    inv->process == CLI_PROC_NEMESIS ||
		    strcmp(inv->f, "transfer") != 0)
			continue;
		const cli_op *comp =
		    pairs[i] >= 0 ? cli_history_get(h, (size_t)pairs[i]) : NULL;
		uint64_t txid;
		if (!cli__op_txid(inv, comp, &txid))
			continue;
		group *g =
		    bsearch(&txid, groups, ngroups, sizeof(*groups), cmp_group);
		if (g != NULL && g->op < 0)
			g->op = (int64_t)i;
		// An info completion or none at all: it may or may not have
		// happened, so any outcome is allowed.
		if (comp == NULL ||
		    (comp->type != CLI_OP_OK && comp->type != CLI_OP_FAIL))
			continue;
		if (g == NULL) {
			r.unobserved++;
			continue;
		}
		bool ok = comp->type == CLI_OP_OK;
		if (ok && count_outcome(sorted, g, CLI_TXN_ABORTED) > 0) {
			r.ok_not_committed++;
			rv = cli__check_anomaly(&r.c, "ok-not-committed", inv,
			    true, txid, NULL, sides_detail(sorted, g, "ok"));
		} else if (!ok &&
		    count_outcome(sorted, g, CLI_TXN_COMMITTED) > 0) {
			r.fail_committed++;
			rv = cli__check_anomaly(&r.c, "fail-committed", inv,
			    true, txid, NULL, sides_detail(sorted, g, "fail"));
		}
		if (rv != DTX_OK)
			goto done;
	}

	// What participants decided.
	for (size_t k = 0; k < ngroups; k++) {
		const group *g = &groups[k];
		const cli_op *op =
		    g->op >= 0 ? cli_history_get(h, (size_t)g->op) : NULL;
		size_t c = count_outcome(sorted, g, CLI_TXN_COMMITTED);
		size_t a = count_outcome(sorted, g, CLI_TXN_ABORTED);
		size_t d = count_outcome(sorted, g, CLI_TXN_IN_DOUBT);
		if (c > 0 && a > 0) {
			r.split++;
			rv = cli__check_anomaly(&r.c, "split-decision", op,
			    true, g->txid, NULL, sides_detail(sorted, g, NULL));
			if (rv != DTX_OK)
				goto done;
		}
		if (d > 0) {
			r.in_doubt++;
			rv = cli__check_anomaly(&r.c, "in-doubt", op, true,
			    g->txid, NULL, sides_detail(sorted, g, NULL));
			if (rv != DTX_OK)
				goto done;
		}
	}

	size_t bad = r.split + r.ok_not_committed + r.fail_committed;
	cli_valid valid = bad > 0 ? CLI_VALID_FALSE
	    : nobs == 0           ? CLI_VALID_UNKNOWN
	                          : CLI_VALID_TRUE;
	cli_sb s = { 0 }, j = { 0 };
	if (nobs == 0)
		cli_sb_printf(&s,
		    "no participant observations: nothing to "
		    "check");
	else
		cli_sb_printf(&s,
		    "%zu transactions observed: %zu split decisions, %zu ok "
		    "but aborted, %zu failed but committed, %zu blocked in "
		    "doubt, %zu completed transfers unobserved",
		    r.txns, r.split, r.ok_not_committed, r.fail_committed,
		    r.in_doubt, r.unobserved);
	cli_sb_printf(&j,
	    "{\"valid\":\"%s\",\"observations\":%zu,\"txns\":%zu,"
	    "\"split_decisions\":%zu,\"ok_not_committed\":%zu,"
	    "\"fail_committed\":%zu,\"in_doubt\":%zu,\"unobserved\":%zu}",
	    cli_valid_name(valid), nobs, r.txns, r.split, r.ok_not_committed,
	    r.fail_committed, r.in_doubt, r.unobserved);
	rv = cli__check_set(&r.c, valid, &s, &j);
done:
	dtx_free(pairs);
	dtx_free(groups);
	dtx_free(sorted);
	if (rv == DTX_OK)
		*out = r;
	else
		cli_check_fini(&r.c);
	return rv;
}
