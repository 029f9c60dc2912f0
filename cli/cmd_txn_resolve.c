// SPDX-License-Identifier: MIT
//
// dtx txn resolve TXID --commit|--abort: decides a transaction in doubt by
// hand at every participant that holds it, each of which asks its
// coordinator first and applies the operator's decision only when nobody
// can decide it (participant/heuristic.c); and the body of dtx txn status
// TXID, which puts what the coordinator (STATUS) and every participant
// (TXN_LIST, read only) know of it side by side.

#include <inttypes.h>
#include <string.h>

#include "cli.h"

#define OFF(f) offsetof(cli_txn_cfg, f)
static const dtx_cfg_opt resolve_opts[] = {
	{ "commit", DTX_CFG_BOOL, OFF(commit), 0, 0, "false",
	    "commit it (give exactly one of --commit, --abort)" },
	{ "abort", DTX_CFG_BOOL, OFF(abort), 0, 0, "false", "abort it" },
	{ "reason", DTX_CFG_STR, OFF(reason), 0, 0, NULL,
	    "why, recorded with the decision (up to 256 bytes)" },
	CLI_TXN_COMMON_OPTS
};
#define N(t) (sizeof(t) / sizeof(t[0]))

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
	t->in_doubt |= r->state == PROTO_TS_PREPARED ||
	    r->state == PROTO_TS_PRECOMMITTED;
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
	printf("%s\n", r->state == PROTO_TS_UNKNOWN ? "no record"
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
	int rc = !t.known && !t.hand ? HX_EXIT_NOT_FOUND
	    : t.hazard || split      ? HX_EXIT_INVALID
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

// ---------------------------------------------------------------- resolve

typedef struct res_one {
	uint32_t node;
	dtx_err err;
	dtx_err code; // the node's, for DTX_EREFUSED
	char why[PROTO_MAX_STR + 1];
	proto_txn_state out;
	clk_ts cts;
	bool heuristic;
} res_one;

// The exit code of the answers r[0..n) to a request for want.
static int
resolve_rc(const res_one *r, size_t n, proto_txn_state want)
{
	int rc = HX_EXIT_OK;
	for (size_t i = 0; i < n; i++) {
		int x = HX_EXIT_OK;
		if (r[i].err == DTX_EREFUSED)
			x = r[i].code == DTX_EPERM ? HX_EXIT_INVALID
			    : r[i].code == DTX_EAGAIN ? HX_EXIT_UNKNOWN
			    : r[i].code == DTX_ENOENT ? HX_EXIT_NOT_FOUND
			                              : HX_EXIT_CONFLICT;
		else if (r[i].err != DTX_OK)
			x = cli_exit_for(r[i].err);
		else if (r[i].out != want)
			x = HX_EXIT_CONFLICT;
		// The worst first: refused, unreachable, undecided, other.
		static const int order[] = { HX_EXIT_INVALID,
			HX_EXIT_UNAVAILABLE, HX_EXIT_INTERNAL, HX_EXIT_UNKNOWN,
			HX_EXIT_CONFLICT, HX_EXIT_NOT_FOUND, HX_EXIT_OK };
		for (size_t k = 0; k < N(order); k++) {
			if (order[k] == rc)
				break;
			if (order[k] == x) {
				rc = x;
				break;
			}
		}
	}
	return rc;
}

static void
resolve_print(const cli_txn_cfg *cfg, uint64_t txid, const res_one *r,
    size_t n, const char *none)
{
	if (!cfg->json) {
		if (none != NULL)
			printf("tx %" PRIu64 ": %s\n", txid, none);
		for (size_t i = 0; i < n; i++) {
			printf("participant %u: ", r[i].node);
			if (r[i].err == DTX_OK)
				printf("%s %s: %s\n", cli_state_name(r[i].out),
				    r[i].heuristic ? "by hand" : "as decided",
				    r[i].why);
			else
				printf("not resolved: %s%s%s\n",
				    r[i].err == DTX_EREFUSED
				        ? dtx_errname(r[i].code)
				        : dtx_strerror(r[i].err),
				    r[i].why[0] ? ": " : "", r[i].why);
		}
		return;
	}
	hx_json j;
	hx_json_begin(&j, stdout);
	hx_json_u64(&j, "txid", txid);
	hx_json_str(&j, "asked", cfg->commit ? "commit" : "abort");
	if (none != NULL)
		hx_json_str(&j, "note", none);
	hx_json_arr_begin(&j, "participants");
	for (size_t i = 0; i < n; i++) {
		hx_json_obj_begin(&j, NULL);
		hx_json_int(&j, "node", r[i].node);
		if (r[i].err == DTX_OK) {
			hx_json_str(&j, "outcome", cli_state_name(r[i].out));
			if (r[i].cts != 0)
				hx_json_u64(&j, "commit_ts", r[i].cts);
			hx_json_bool(&j, "heuristic", r[i].heuristic);
		} else {
			hx_json_str(&j, "error",
			    dtx_errname(r[i].err == DTX_EREFUSED ? r[i].code
			                                         : r[i].err));
		}
		hx_json_str(&j, "reason", r[i].why);
		hx_json_obj_end(&j);
	}
	hx_json_arr_end(&j);
	hx_json_end(&j);
}

// Sends the decision to every participant of l holding txid in doubt;
// r gets one answer each (*nr). A participant that refused the list
// (not an admin) or could not be asked is an answer too.
static void
resolve_all(const cli_txn_cfg *cfg, hx_conn *conn, uint64_t txid,
    const hx_txn_node *l, size_t n, res_one *r, size_t *nr)
{
	*nr = 0;
	for (size_t i = 0; i < n; i++) {
		res_one *o = &r[*nr];
		*o = (res_one) { .node = l[i].node, .err = l[i].err };
		if (l[i].err != DTX_OK) {
			if (l[i].err == DTX_EREFUSED)
				o->code = DTX_EPERM;
			snprintf(o->why, sizeof(o->why), "%s", l[i].why);
			(*nr)++;
			continue;
		}
		if (l[i].rep.u.txn_list_reply.n_txs == 0)
			continue;
		proto_msg rep;
		o->err = hx_txn_resolve(conn, l[i].node, txid, cfg->commit,
		    cfg->reason, (uint32_t)cfg->timeout_ms, &rep, &o->code,
		    o->why, sizeof(o->why));
		if (o->err == DTX_OK) {
			const proto_txn_resolve_reply *q =
			    &rep.u.txn_resolve_reply;
			o->out = q->outcome;
			o->cts = q->commit_ts;
			o->heuristic = q->heuristic;
			snprintf(o->why, sizeof(o->why), "%s", q->reason);
			proto_msg_free(&rep);
		}
		(*nr)++;
	}
}

int
cli_txn_resolve(int argc, char **argv)
{
	cli_txn_cfg cfg = { 0 };
	hx_conn *conn = NULL;
	hx_txn_node *l = NULL;
	size_t n = 0, nr = 0;
	char *pos[2];
	int npos = 0;
	uint64_t txid = 0;
	res_one r[DTX_TOPO_MAX];
	int rc = cli_txn_flags("dtx txn resolve", resolve_opts,
	    N(resolve_opts), &cfg, argc, argv, pos, 2, &npos);
	if (rc != 0)
		goto out;
	rc = HX_EXIT_USAGE;
	if (npos != 1 || cli_txid_arg(pos[0], &txid) != DTX_OK ||
	    cfg.commit == cfg.abort ||
	    (cfg.reason != NULL && strlen(cfg.reason) > PROTO_MAX_STR)) {
		fprintf(stderr,
		    "dtx txn resolve: want TXID (a decimal integer >= 1) and "
		    "exactly one of --commit, --abort (--reason: up to %d "
		    "bytes)\n",
		    PROTO_MAX_STR);
		goto out;
	}
	if ((rc = cli_txn_conn("dtx txn resolve", &cfg, &conn)) != 0)
		goto out;
	dtx_err rv = hx_txn_list_all(
	    conn, txid, (uint32_t)cfg.timeout_ms, &l, &n);
	if (rv != DTX_OK) {
		fprintf(stderr, "dtx txn resolve: %s\n", dtx_strerror(rv));
		rc = cli_exit_for(rv);
		goto out;
	}
	resolve_all(&cfg, conn, txid, l, n, r, &nr);
	proto_txn_state want =
	    cfg.commit ? PROTO_TS_COMMITTED : PROTO_TS_ABORTED;
	const char *none = NULL;
	char msg[160];
	rc = resolve_rc(r, nr, want);
	if (nr == 0) {
		// Nobody holds it in doubt: decided already, or unknown.
		proto_txn_state st = PROTO_TS_UNKNOWN;
		for (size_t i = 0; i < n; i++)
			if (l[i].rep.u.txn_list_reply.state != PROTO_TS_UNKNOWN)
				st = l[i].rep.u.txn_list_reply.state;
		snprintf(msg, sizeof(msg),
		    st == PROTO_TS_UNKNOWN ? "no node holds a record of it"
		                           : "not in doubt at any node: %s",
		    cli_state_name(st));
		none = msg;
		rc = st == PROTO_TS_UNKNOWN ? HX_EXIT_NOT_FOUND
		    : st == want            ? HX_EXIT_OK
		                            : HX_EXIT_CONFLICT;
	}
	resolve_print(&cfg, txid, r, nr, none);
	if (rc == HX_EXIT_NOT_FOUND)
		fprintf(stderr, "dtx txn resolve: tx %" PRIu64 ": %s\n", txid,
		    none ? none : "not in doubt there");
out:
	hx_txn_nodes_free(l, n);
	hx_conn_close(conn);
	dtx_cfg_fini(resolve_opts, N(resolve_opts), &cfg);
	return rc < 0 ? HX_EXIT_OK : rc;
}
