// SPDX-License-Identifier: MIT
//
// dtx trace TXID|GID: the causal history of one transaction or saga on
// every node, from a running cluster (the daemons' TRACE rings and their
// logs) or from a stored run's logs (--run ID), ordered by happened-
// before; as text, and with --html FILE as a page with a lane per node.

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct trace_cfg {
	char *dir;
	char *results;
	char *html;
	int64_t run;
	int64_t timeout_ms;
} trace_cfg;

#define OFF(f) offsetof(trace_cfg, f)
static const dtx_cfg_opt trace_opts[] = {
	{ "dir", DTX_CFG_STR, OFF(dir), 0, 0, HX_CLUSTER_DIR_DEFAULT,
	    "cluster directory (a running cluster)" },
	{ "run", DTX_CFG_INT, OFF(run), 0, INT64_MAX, "0",
	    "trace from stored run ID's logs instead of a cluster" },
	{ "results", DTX_CFG_STR, OFF(results), 0, 0, HX_RESULTS_DEFAULT,
	    "results database file (with --run)" },
	{ "html", DTX_CFG_STR, OFF(html), 0, 0, NULL,
	    "also write the trace as an HTML page to this file" },
	{ "timeout-ms", DTX_CFG_INT, OFF(timeout_ms), 100, 600000, "3000",
	    "how long each daemon has to answer TRACE" },
};
#define NOPTS (sizeof(trace_opts) / sizeof(trace_opts[0]))

// A running cluster: every daemon's ring, then every daemon's log in
// DIR/logs (which also holds what a restarted daemon's ring lost).
static int
from_cluster(const trace_cfg *cfg, hx_trace *t)
{
	hx_cluster *cl;
	int rc = cli_cluster_open("dtx trace", cfg->dir, &cl);
	if (rc != 0)
		return rc;
	const dtx_topo *topo = hx_cluster_topo(cl);
	hx_conn *conn = NULL;
	dtx_err rv = hx_conn_open(topo, &conn);
	size_t answered = 0;
	if (rv == DTX_OK)
		rv = hx_trace_fetch(
		    conn, t, (uint32_t)cfg->timeout_ms, &answered);
	char paths[DTX_TOPO_MAX][4096];
	const char *pp[DTX_TOPO_MAX];
	size_t np = 0;
	for (uint32_t i = 0; i < topo->n; i++)
		if (topo->nodes[i].role != DTX_ROLE_CLIENT) {
			snprintf(paths[np], sizeof(paths[np]), "%s",
			    hx_cluster_log(cl, topo->nodes[i].id));
			pp[np] = paths[np];
			np++;
		}
	if (rv == DTX_OK)
		rv = hx_trace_add_logs(t, pp, np);
	if (rv == DTX_OK && answered == 0)
		fprintf(stderr,
		    "dtx trace: no daemon in %s answered TRACE; the events "
		    "below come from their logs only\n",
		    cfg->dir);
	hx_conn_close(conn);
	hx_cluster_free(cl);
	if (rv != DTX_OK) {
		fprintf(stderr, "dtx trace: %s\n", dtx_strerror(rv));
		return cli_exit_for(rv);
	}
	return HX_EXIT_OK;
}

// A stored run: the node logs its report directory holds.
static int
from_run(const trace_cfg *cfg, hx_trace *t)
{
	char dir[4096];
	hx_node_log *logs = NULL;
	size_t n = 0;
	dtx_err rv =
	    hx_results_report_dir(cfg->results, cfg->run, dir, sizeof(dir));
	if (rv == DTX_OK)
		rv = hx_node_logs_in_dir(dir, &logs, &n);
	if (rv == DTX_OK && n == 0) {
		fprintf(stderr,
		    "dtx trace: run %" PRId64 " has no node logs in %s/logs\n",
		    cfg->run, dir);
		return HX_EXIT_UNKNOWN;
	}
	const char **pp = n > 0 ? dtx_calloc(n, sizeof(*pp)) : NULL;
	if (rv == DTX_OK && pp == NULL)
		rv = DTX_ENOMEM;
	for (size_t i = 0; rv == DTX_OK && i < n; i++)
		pp[i] = logs[i].path;
	if (rv == DTX_OK)
		rv = hx_trace_add_logs(t, pp, n);
	dtx_free(pp);
	hx_node_logs_free(logs, n);
	if (rv != DTX_OK) {
		fprintf(stderr, "dtx trace: %s\n", dtx_strerror(rv));
		return HX_EXIT_FAILURE;
	}
	return HX_EXIT_OK;
}

static int
write_html(const char *path, const hx_trace *t)
{
	FILE *f = fopen(path, "w");
	dtx_err rv = f != NULL ? hx_trace_html(t, f) : DTX_EIO;
	if (f != NULL && fclose(f) != 0)
		rv = DTX_EIO;
	if (rv != DTX_OK) {
		fprintf(stderr, "dtx trace: cannot write %s\n", path);
		return HX_EXIT_FAILURE;
	}
	return HX_EXIT_OK;
}

// TXID (decimal) or GID (anything else that is a saga id).
static bool
parse_target(const char *s, uint64_t *txid, const char **gid)
{
	char *end;
	*txid = 0;
	*gid = NULL;
	if (*s >= '1' && *s <= '9') {
		unsigned long long v = strtoull(s, &end, 10);
		if (*end == '\0') {
			*txid = v;
			return true;
		}
	}
	if (*s == '\0' || strlen(s) > PROTO_MAX_STR || *s == '-')
		return false;
	*gid = s;
	return true;
}

int
cli_cmd_trace(int argc, char **argv)
{
	trace_cfg cfg = { 0 };
	char *pos[2];
	int npos = 0;
	int rc = hx_parse_flags(
	    "dtx trace", trace_opts, NOPTS, &cfg, argc, argv, pos, 2, &npos);
	if (rc != 0) {
		rc = rc < 0 ? HX_EXIT_OK : rc;
		goto out;
	}
	uint64_t txid;
	const char *gid;
	if (npos != 1 || !parse_target(pos[0], &txid, &gid)) {
		fprintf(stderr,
		    "dtx trace: want one TXID (a positive integer) or saga "
		    "GID (usage: dtx trace TXID|GID [--run ID] [--html "
		    "FILE])\n");
		rc = HX_EXIT_USAGE;
		goto out;
	}
	hx_trace t;
	hx_trace_init(&t, txid, gid);
	rc = cfg.run > 0 ? from_run(&cfg, &t) : from_cluster(&cfg, &t);
	if (rc == HX_EXIT_OK) {
		if (hx_trace_order(&t) != DTX_OK ||
		    hx_trace_text(&t, stdout) != DTX_OK)
			rc = HX_EXIT_FAILURE;
		if (rc == HX_EXIT_OK && cfg.html != NULL)
			rc = write_html(cfg.html, &t);
		// Nothing recorded about it (or the daemons logged at info
		// and their rings moved on): nothing to show.
		if (rc == HX_EXIT_OK && t.n == 0) {
			fprintf(stderr,
			    "dtx trace: no events of %s%s found (the rings "
			    "keep the last --trace-events; logs hold them at "
			    "--log-level debug)\n",
			    txid != 0 ? "txid " : "saga ", pos[0]);
			rc = HX_EXIT_UNKNOWN;
		}
	}
	hx_trace_fini(&t);
out:
	dtx_cfg_fini(trace_opts, NOPTS, &cfg);
	return rc;
}
