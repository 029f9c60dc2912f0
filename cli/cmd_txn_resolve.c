// SPDX-License-Identifier: MIT
//
// dtx txn resolve TXID --commit|--abort: decides a transaction in doubt by
// hand at every participant that holds it, each of which asks its
// coordinator first and applies the operator's decision only when that
// cannot be reached (participant/heuristic.c, rule 27).

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
			x = r[i].code == DTX_EPERM    ? HX_EXIT_INVALID
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
resolve_print(const cli_txn_cfg *cfg, uint64_t txid, const res_one *r, size_t n,
    const char *none)
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
	int rc = cli_txn_flags("dtx txn resolve", resolve_opts, N(resolve_opts),
	    &cfg, argc, argv, pos, 2, &npos);
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
	dtx_err rv =
	    hx_txn_list_all(conn, txid, (uint32_t)cfg.timeout_ms, &l, &n);
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
			if (l[i].err == DTX_OK &&
			    l[i].rep.u.txn_list_reply.state != PROTO_TS_UNKNOWN)
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
