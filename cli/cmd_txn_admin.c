// SPDX-License-Identifier: MIT
//
// dtx txn list: the transactions a running cluster's participants hold in
// doubt, with their age, coordinator, peers, locked keys and what they
// wait for, the decisions made by hand (heuristic decisions), and each
// coordinator's count of decisions not yet acknowledged; and the dtx txn
// group itself. dtx txn status (with the formatting helpers both use) is
// in cmd_txn_status.c, dtx txn resolve in cmd_txn_resolve.c.

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define OFF(f) offsetof(cli_txn_cfg, f)
static const dtx_cfg_opt list_opts[] = {
	{ "in-doubt", DTX_CFG_BOOL, OFF(in_doubt), 0, 0, "false",
	    "only the transactions in doubt (not the decisions by hand)" },
	CLI_TXN_COMMON_OPTS
};
static const dtx_cfg_opt status_opts[] = { CLI_TXN_COMMON_OPTS };
#define N(t) (sizeof(t) / sizeof(t[0]))

int
cli_txn_conn(const char *what, const cli_txn_cfg *cfg, hx_conn **out)
{
	hx_cluster *cl;
	int rc = cli_cluster_open(what, cfg->dir, &cl);
	if (rc != 0)
		return rc;
	char err[256] = "";
	dtx_err rv;
	if (cfg->from < 0)
		rv = hx_cluster_conn(cl, false, out, err, sizeof(err));
	else if (hx_cluster_is_tls(cl)) {
		dtx_errf(err, sizeof(err),
		    "--from needs an --insecure cluster (over TLS the "
		    "certificate names the sender)");
		rv = DTX_EINVAL;
	} else
		rv = hx_conn_open_from(
		    hx_cluster_topo(cl), cfg->from, NULL, NULL, out);
	hx_cluster_free(cl);
	if (rv != DTX_OK) {
		fprintf(stderr, "%s: %s\n", what,
		    err[0] != '\0' ? err : dtx_strerror(rv));
		return cli_exit_for(rv);
	}
	return 0;
}

static const char *
mode_name(proto_mode m)
{
	return m == PROTO_MODE_3PC ? "3pc" : m == PROTO_MODE_PC ? "pc" : "2pc";
}

void
cli_indoubt_json(hx_json *j, uint32_t node, const proto_indoubt *x)
{
	char k[4 * PROTO_MAX_KEY + 1];
	hx_json_obj_begin(j, NULL);
	hx_json_int(j, "node", node);
	hx_json_u64(j, "txid", x->txid);
	hx_json_str(j, "state", cli_state_name(x->state));
	hx_json_u64(j, "age_ms", x->age_ms);
	hx_json_str(j, "mode", mode_name(x->mode));
	hx_json_int(j, "coordinator", x->coord);
	hx_json_arr_begin(j, "peers");
	for (uint32_t i = 0; i < x->n_peers; i++)
		hx_json_int(j, NULL, x->peers[i]);
	hx_json_arr_end(j);
	hx_json_arr_begin(j, "keys");
	for (uint32_t i = 0; i < x->n_keys; i++) {
		cli_key_fmt(&x->keys[i], k, sizeof(k));
		hx_json_str(j, NULL, k);
	}
	hx_json_arr_end(j);
	hx_json_u64(j, "keys_total", x->keys_total);
	hx_json_u64(j, "prepare_ts", x->prepare_ts);
	if (x->commit_ts != 0)
		hx_json_u64(j, "commit_ts", x->commit_ts);
	hx_json_str(j, "waiting_for", x->wait);
	hx_json_obj_end(j);
}

void
cli_heur_json(hx_json *j, uint32_t node, const proto_heur *h)
{
	char at[40];
	hx_json_obj_begin(j, NULL);
	hx_json_int(j, "node", node);
	hx_json_u64(j, "txid", h->txid);
	hx_json_str(j, "outcome", cli_state_name(h->outcome));
	if (h->commit_ts != 0)
		hx_json_u64(j, "commit_ts", h->commit_ts);
	cli_utc_ms(h->at_ms, at, sizeof(at));
	hx_json_str(j, "at", at);
	hx_json_u64(j, "at_ms", h->at_ms);
	hx_json_str(j, "by", h->who);
	hx_json_str(j, "reason", h->why);
	hx_json_int(j, "coordinator", h->coord);
	hx_json_str(j, "mode", mode_name(h->mode));
	hx_json_str(j, "verdict", hx_heur_verdict_name(h->verdict));
	hx_json_bool(j, "hazard", h->verdict == PROTO_HEUR_HAZARD);
	if (h->verdict != PROTO_HEUR_UNCONFIRMED)
		hx_json_str(
		    j, "coordinator_outcome", cli_state_name(h->coord_outcome));
	hx_json_obj_end(j);
}

void
cli_heur_print(uint32_t node, const proto_heur *h)
{
	char at[40];
	cli_utc_ms(h->at_ms, at, sizeof(at));
	printf("  node %-3u tx %-20" PRIu64 " %s by hand by %s at %s (%s): %s",
	    node, h->txid, cli_state_name(h->outcome), h->who, at,
	    h->why[0] ? h->why : "no reason given",
	    h->verdict == PROTO_HEUR_HAZARD ? "HEURISTIC HAZARD"
	                                    : hx_heur_verdict_name(h->verdict));
	if (h->verdict != PROTO_HEUR_UNCONFIRMED)
		printf(", coordinator %u decided %s", h->coord,
		    cli_state_name(h->coord_outcome));
	printf("\n");
}

static void
print_indoubt(uint32_t node, const proto_indoubt *x)
{
	char k[4 * PROTO_MAX_KEY + 1];
	printf("  node %-3u tx %-20" PRIu64 " %-12s age %7.1fs %-3s coord %u "
	       "peers",
	    node, x->txid, cli_state_name(x->state), (double)x->age_ms / 1e3,
	    mode_name(x->mode), x->coord);
	for (uint32_t i = 0; i < x->n_peers; i++)
		printf("%s%u", i ? "," : " ", x->peers[i]);
	printf(" keys");
	for (uint32_t i = 0; i < x->n_keys; i++) {
		cli_key_fmt(&x->keys[i], k, sizeof(k));
		printf("%s%s", i ? "," : " ", k);
	}
	if (x->keys_total > x->n_keys)
		printf(",... (%" PRIu64 ")", x->keys_total);
	printf("\n           waiting for: %s\n", x->wait);
}

// A coordinator's HEALTH: its in_doubt is the decisions it logged that
// not every participant has acknowledged yet (it re-sends them).
typedef struct coord_health {
	uint32_t node;
	dtx_err err;
	uint64_t pending;
	char state[32];
} coord_health;

static size_t
coords_health(hx_conn *conn, uint32_t timeout_ms, coord_health *out, size_t max)
{
	const dtx_topo *t = hx_conn_topo(conn);
	size_t n = 0;
	for (uint32_t i = 0; i < t->n && n < max; i++) {
		if (t->nodes[i].role != DTX_ROLE_COORDINATOR)
			continue;
		coord_health *c = &out[n++];
		proto_msg rep;
		*c = (coord_health) { .node = t->nodes[i].id };
		c->err = hx_health(conn, c->node, timeout_ms, &rep);
		if (c->err != DTX_OK)
			continue;
		c->pending = rep.u.health_reply.in_doubt;
		snprintf(c->state, sizeof(c->state), "%s",
		    rep.u.health_reply.state ? rep.u.health_reply.state : "?");
		proto_msg_free(&rep);
	}
	return n;
}

static void
coords_out(hx_json *j, const coord_health *c, size_t n)
{
	if (j != NULL)
		hx_json_arr_begin(j, "coordinators");
	for (size_t i = 0; i < n; i++) {
		if (j == NULL && c[i].err != DTX_OK)
			printf("coordinator %u: not answering: %s\n", c[i].node,
			    dtx_strerror(c[i].err));
		else if (j == NULL)
			printf("coordinator %u: %s, %" PRIu64 " decisions not "
			       "yet acknowledged by every participant\n",
			    c[i].node, c[i].state, c[i].pending);
		if (j == NULL)
			continue;
		hx_json_obj_begin(j, NULL);
		hx_json_int(j, "node", c[i].node);
		if (c[i].err != DTX_OK) {
			hx_json_str(j, "error", dtx_errname(c[i].err));
		} else {
			hx_json_str(j, "state", c[i].state);
			hx_json_u64(j, "pending_decisions", c[i].pending);
		}
		hx_json_obj_end(j);
	}
	if (j != NULL)
		hx_json_arr_end(j);
}

static void
list_json(const cli_txn_cfg *cfg, const hx_txn_node *l, size_t n,
    const coord_health *c, size_t nc)
{
	hx_json j;
	hx_json_begin(&j, stdout);
	coords_out(&j, c, nc);
	hx_json_arr_begin(&j, "in_doubt");
	for (size_t i = 0; i < n; i++)
		for (uint32_t k = 0;
		     l[i].err == DTX_OK && k < l[i].rep.u.txn_list_reply.n_txs;
		     k++)
			cli_indoubt_json(
			    &j, l[i].node, &l[i].rep.u.txn_list_reply.txs[k]);
	hx_json_arr_end(&j);
	if (!cfg->in_doubt) {
		hx_json_arr_begin(&j, "heuristic");
		for (size_t i = 0; i < n; i++)
			for (uint32_t k = 0; l[i].err == DTX_OK &&
			     k < l[i].rep.u.txn_list_reply.n_heur;
			     k++)
				cli_heur_json(&j, l[i].node,
				    &l[i].rep.u.txn_list_reply.heur[k]);
		hx_json_arr_end(&j);
	}
	hx_json_arr_begin(&j, "unreachable");
	for (size_t i = 0; i < n; i++) {
		if (l[i].err == DTX_OK)
			continue;
		hx_json_obj_begin(&j, NULL);
		hx_json_int(&j, "node", l[i].node);
		hx_json_str(&j, "error", dtx_errname(l[i].err));
		if (l[i].why[0])
			hx_json_str(&j, "reason", l[i].why);
		hx_json_obj_end(&j);
	}
	hx_json_arr_end(&j);
	hx_json_end(&j);
}

static void
list_text(const cli_txn_cfg *cfg, const hx_txn_node *l, size_t n,
    const coord_health *c, size_t nc)
{
	coords_out(NULL, c, nc);
	size_t nd = 0, nh = 0;
	for (size_t i = 0; i < n; i++) {
		if (l[i].err != DTX_OK)
			continue;
		nd += l[i].rep.u.txn_list_reply.n_txs;
		nh += l[i].rep.u.txn_list_reply.n_heur;
	}
	printf("in doubt: %zu\n", nd);
	for (size_t i = 0; i < n; i++)
		for (uint32_t k = 0;
		     l[i].err == DTX_OK && k < l[i].rep.u.txn_list_reply.n_txs;
		     k++)
			print_indoubt(
			    l[i].node, &l[i].rep.u.txn_list_reply.txs[k]);
	if (!cfg->in_doubt) {
		printf("decided by hand (heuristic): %zu\n", nh);
		for (size_t i = 0; i < n; i++)
			for (uint32_t k = 0; l[i].err == DTX_OK &&
			     k < l[i].rep.u.txn_list_reply.n_heur;
			     k++)
				cli_heur_print(l[i].node,
				    &l[i].rep.u.txn_list_reply.heur[k]);
	}
	for (size_t i = 0; i < n; i++)
		if (l[i].err != DTX_OK)
			printf("node %u: not asked: %s%s%s\n", l[i].node,
			    dtx_strerror(l[i].err), l[i].why[0] ? ": " : "",
			    l[i].why);
}

// Parses flags into cfg and the positional arguments into pos (at most
// maxpos, *npos of them). 0 to go on, else the exit code.
int
cli_txn_flags(const char *what, const dtx_cfg_opt *opts, size_t nopts,
    cli_txn_cfg *cfg, int argc, char **argv, char **pos, int maxpos, int *npos)
{
	cfg->from = -1;
	int rc = hx_parse_flags(
	    what, opts, nopts, cfg, argc, argv, pos, maxpos, npos);
	return rc < 0 ? -1 : rc;
}

static int
cmd_list(int argc, char **argv)
{
	cli_txn_cfg cfg = { 0 };
	hx_conn *conn = NULL;
	hx_txn_node *l = NULL;
	size_t n = 0;
	int rc = cli_txn_flags("dtx txn list", list_opts, N(list_opts), &cfg,
	    argc, argv, NULL, 0, NULL);
	if (rc != 0)
		goto out;
	if ((rc = cli_txn_conn("dtx txn list", &cfg, &conn)) != 0)
		goto out;
	dtx_err rv = hx_txn_list_all(conn, 0, (uint32_t)cfg.timeout_ms, &l, &n);
	if (rv != DTX_OK) {
		fprintf(stderr, "dtx txn list: %s\n", dtx_strerror(rv));
		rc = cli_exit_for(rv);
		goto out;
	}
	coord_health ch[DTX_TOPO_MAX];
	size_t nc = coords_health(conn, 2000, ch, DTX_TOPO_MAX);
	if (cfg.json)
		list_json(&cfg, l, n, ch, nc);
	else
		list_text(&cfg, l, n, ch, nc);
	size_t bad = 0, refused = 0;
	for (size_t i = 0; i < n; i++) {
		bad += l[i].err != DTX_OK;
		refused += l[i].err == DTX_EREFUSED;
	}
	// Every participant refused (not an admin) or none answered: the
	// list is not there at all; some missing: it is incomplete.
	rc = bad == 0      ? HX_EXIT_OK
	    : refused == n ? HX_EXIT_INVALID
	    : bad == n     ? HX_EXIT_UNAVAILABLE
	                   : HX_EXIT_INVALID;
out:
	hx_txn_nodes_free(l, n);
	hx_conn_close(conn);
	dtx_cfg_fini(list_opts, N(list_opts), &cfg);
	return rc < 0 ? HX_EXIT_OK : rc;
}

static int
cmd_status(int argc, char **argv)
{
	cli_txn_cfg cfg = { 0 };
	hx_conn *conn = NULL;
	char *pos[2];
	int npos = 0;
	uint64_t txid = 0;
	int rc = cli_txn_flags("dtx txn status", status_opts, N(status_opts),
	    &cfg, argc, argv, pos, 2, &npos);
	if (rc != 0)
		goto out;
	if (npos != 1 || cli_txid_arg(pos[0], &txid) != DTX_OK) {
		fprintf(stderr,
		    "dtx txn status: want one TXID (a transaction "
		    "id, a decimal integer >= 1)\n");
		rc = HX_EXIT_USAGE;
		goto out;
	}
	if ((rc = cli_txn_conn("dtx txn status", &cfg, &conn)) != 0)
		goto out;
	rc = cli_txn_status_run(&cfg, conn, txid);
out:
	hx_conn_close(conn);
	dtx_cfg_fini(status_opts, N(status_opts), &cfg);
	return rc < 0 ? HX_EXIT_OK : rc;
}

int
cli_cmd_txn(int argc, char **argv)
{
	static const hx_cmd cmds[] = {
		{ "list", cmd_list,
		    "transactions in doubt, decisions by hand" },
		{ "status", cmd_status, "what every node knows of one" },
		{ "resolve", cli_txn_resolve, "decide one by hand" },
	};
	return hx_dispatch("dtx txn", cmds, N(cmds), argc, argv);
}
