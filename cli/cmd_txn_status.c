// SPDX-License-Identifier: MIT
//
// The body of dtx txn status TXID: what the coordinator (STATUS) and every
// participant (TXN_LIST, read only) know of one transaction, side by side,
// and whether a decision by hand made its outcome differ (a heuristic
// hazard).

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

dtx_err
cli_txid_arg(const char *s, uint64_t *out)
{
	char *end;
	if (s == NULL || *s < '1' || *s > '9')
		return DTX_EINVAL;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end != '\0' || v == 0 || v == UINT64_MAX)
		return DTX_EINVAL;
	*out = v;
	return DTX_OK;
}

void
cli_key_fmt(const proto_bytes *k, char *out, size_t n)
{
	size_t o = 0;
	for (uint32_t i = 0; i < k->n && o + 5 < n; i++) {
		uint8_t c = k->p[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, n - o, "\\x%02x", c);
	}
	out[o] = '\0';
}

void
cli_utc_ms(uint64_t ms, char *out, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + k, n - k, ".%03uZ", (unsigned)(ms % 1000));
}

const char *
cli_state_name(proto_txn_state st)
{
	static const char *const names[] = { "unknown", "prepared",
		"precommitted", "committed", "aborted", "never-voted" };
	return (unsigned)st <= PROTO_TS_NEVER_VOTED ? names[st] : "?";
}

// ---------------------------------------------------------------- status

typedef struct tally {
	bool committed, aborted, in_doubt, unreachable, hazard, known, hand;
} tally;

static void
tally_node(tally *t, const hx_txn_node *x)
{
	if (x->err != DTX_OK) {
		t->unreachable = true;
		return;
	}
	const proto_txn_list_reply *r = &x->rep.u.txn_list_reply;
	t->known |= r->state != PROTO_TS_UNKNOWN;
	t->committed |= r->state == PROTO_TS_COMMITTED;
	t->aborted |= r->state == PROTO_TS_ABORTED;
	t->in_doubt |=
	    r->state == PROTO_TS_PREPARED || r->state == PROTO_TS_PRECOMMITTED;
	for (uint32_t k = 0; k < r->n_heur; k++) {
		t->hand = true;
		t->hazard |= r->heur[k].verdict == PROTO_HEUR_HAZARD;
	}
}

typedef struct coord_view {
	uint32_t node;
	dtx_err err;
	proto_txn_state st;
	clk_ts cts;
	char why[PROTO_MAX_STR + 1];
} coord_view;

static void
print_coord(const coord_view *c)
{
	printf("  coordinator %u: ", c->node);
	if (c->err != DTX_OK)
		printf("not asked: %s%s%s\n", dtx_strerror(c->err),
		    c->why[0] ? ": " : "", c->why);
	else if (c->st == PROTO_TS_COMMITTED)
		printf("committed at %" PRIu64 ".%u\n", clk_ts_l(c->cts),
		    clk_ts_c(c->cts));
	else if (c->st == PROTO_TS_ABORTED)
		printf("aborted, or no record (presumed abort)\n");
	else
		printf("%s (still deciding)\n", cli_state_name(c->st));
}

static void
print_part(const hx_txn_node *x)
{
	printf("  participant %u: ", x->node);
	if (x->err != DTX_OK) {
		printf("not asked: %s%s%s\n", dtx_strerror(x->err),
		    x->why[0] ? ": " : "", x->why);
		return;
	}
	const proto_txn_list_reply *r = &x->rep.u.txn_list_reply;
	printf("%s\n",
	    r->state == PROTO_TS_UNKNOWN ? "no record"
	                                 : cli_state_name(r->state));
	if (r->n_txs > 0)
		printf("    in doubt %.1fs, waiting for: %s\n",
		    (double)r->txs[0].age_ms / 1e3, r->txs[0].wait);
	for (uint32_t k = 0; k < r->n_heur; k++) {
		printf("  ");
		cli_heur_print(x->node, &r->heur[k]);
	}
}

static void
status_json(uint64_t txid, const char *outcome, bool hazard,
    const coord_view *cv, size_t nc, const hx_txn_node *l, size_t n)
{
	hx_json j;
	hx_json_begin(&j, stdout);
	hx_json_u64(&j, "txid", txid);
	hx_json_str(&j, "outcome", outcome);
	hx_json_bool(&j, "hazard", hazard);
	hx_json_arr_begin(&j, "coordinators");
	for (size_t i = 0; i < nc; i++) {
		hx_json_obj_begin(&j, NULL);
		hx_json_int(&j, "node", cv[i].node);
		if (cv[i].err != DTX_OK) {
			hx_json_str(&j, "error", dtx_errname(cv[i].err));
		} else {
			hx_json_str(&j, "state", cli_state_name(cv[i].st));
			if (cv[i].cts != 0)
				hx_json_u64(&j, "commit_ts", cv[i].cts);
		}
		hx_json_obj_end(&j);
	}
	hx_json_arr_end(&j);
	hx_json_arr_begin(&j, "participants");
	for (size_t i = 0; i < n; i++) {
		const proto_txn_list_reply *r = &l[i].rep.u.txn_list_reply;
		hx_json_obj_begin(&j, NULL);
		hx_json_int(&j, "node", l[i].node);
		if (l[i].err != DTX_OK) {
			hx_json_str(&j, "error", dtx_errname(l[i].err));
			hx_json_obj_end(&j);
			continue;
		}
		hx_json_str(&j, "state", cli_state_name(r->state));
		if (r->commit_ts != 0)
			hx_json_u64(&j, "commit_ts", r->commit_ts);
		hx_json_arr_begin(&j, "in_doubt");
		for (uint32_t k = 0; k < r->n_txs; k++)
			cli_indoubt_json(&j, l[i].node, &r->txs[k]);
		hx_json_arr_end(&j);
		hx_json_arr_begin(&j, "heuristic");
		for (uint32_t k = 0; k < r->n_heur; k++)
			cli_heur_json(&j, l[i].node, &r->heur[k]);
		hx_json_arr_end(&j);
		hx_json_obj_end(&j);
	}
	hx_json_arr_end(&j);
	hx_json_end(&j);
}

int
cli_txn_status_run(const cli_txn_cfg *cfg, hx_conn *conn, uint64_t txid)
{
	hx_txn_node *l = NULL;
	size_t n = 0, nc = 0;
	coord_view cv[DTX_TOPO_MAX];
	const dtx_topo *topo = hx_conn_topo(conn);
	uint32_t tmo = (uint32_t)cfg->timeout_ms;
	dtx_err rv = hx_txn_list_all(conn, txid, tmo, &l, &n);
	if (rv != DTX_OK) {
		fprintf(stderr, "dtx txn status: %s\n", dtx_strerror(rv));
		return cli_exit_for(rv);
	}
	tally t = { 0 };
	for (size_t i = 0; i < n; i++)
		tally_node(&t, &l[i]);
	for (uint32_t i = 0; i < topo->n; i++) {
		if (topo->nodes[i].role != DTX_ROLE_COORDINATOR)
			continue;
		coord_view *c = &cv[nc++];
		*c = (coord_view) { .node = topo->nodes[i].id };
		c->err = hx_txn_coord_status(conn, c->node, txid, tmo, &c->st,
		    &c->cts, c->why, sizeof(c->why));
		if (c->err != DTX_OK)
			continue;
		// Its ABORTED is presumed abort: no record, or an abort.
		t.known |= c->st != PROTO_TS_ABORTED;
		t.committed |= c->st == PROTO_TS_COMMITTED;
		t.in_doubt |= c->st == PROTO_TS_PREPARED ||
		    c->st == PROTO_TS_PRECOMMITTED;
	}
	bool split = t.committed && t.aborted;
	t.hazard |= split && t.hand;
	const char *outcome = t.hazard ? "heuristic-hazard"
	    : split                    ? "split"
	    : t.in_doubt               ? "in-doubt"
	    : t.committed              ? "committed"
	    : t.aborted                ? "aborted"
	                               : "unknown";
	int rc = !t.known && !t.hand      ? HX_EXIT_NOT_FOUND
	    : t.hazard || split           ? HX_EXIT_INVALID
	    : t.in_doubt || t.unreachable ? HX_EXIT_UNKNOWN
	                                  : HX_EXIT_OK;
	if (cfg->json) {
		status_json(txid, outcome, t.hazard, cv, nc, l, n);
	} else if (rc == HX_EXIT_NOT_FOUND) {
		printf("tx %" PRIu64 ": no node holds a record of it\n", txid);
	} else {
		printf("tx %" PRIu64 ": %s%s\n", txid, outcome,
		    t.hazard ? " (a decision by hand contradicts the "
		               "coordinator's: the outcome differs between "
		               "nodes)"
		             : "");
		for (size_t i = 0; i < nc; i++)
			print_coord(&cv[i]);
		for (size_t i = 0; i < n; i++)
			print_part(&l[i]);
	}
	hx_txn_nodes_free(l, n);
	return rc;
}
