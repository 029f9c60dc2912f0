// SPDX-License-Identifier: MIT
//
// dtx transfer and dtx balances: one bank transfer (2PC, 3PC or a saga)
// and one consistent snapshot of every account, against a running
// cluster.

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

typedef struct txn_cfg {
	char *mode;
	char *dir;
	char *at;
	bool json;
	int64_t timeout_ms;
} txn_cfg;

#define OFF(f) offsetof(txn_cfg, f)
static const dtx_cfg_opt transfer_opts[] = {
	{ "mode", DTX_CFG_STR, OFF(mode), 0, 0, "2pc", "2pc, 3pc, pc or saga" },
	{ "dir", DTX_CFG_STR, OFF(dir), 0, 0, HX_CLUSTER_DIR_DEFAULT,
	    "cluster directory" },
	{ "json", DTX_CFG_BOOL, OFF(json), 0, 0, "false", "JSON output" },
	{ "timeout-ms", DTX_CFG_INT, OFF(timeout_ms), 100, 600000, "10000",
	    "call timeout" },
};
static const dtx_cfg_opt balances_opts[] = {
	{ "at", DTX_CFG_STR, OFF(at), 0, 0, NULL,
	    "HLC timestamp to read at (uint64, or L.C); default: now" },
	{ "dir", DTX_CFG_STR, OFF(dir), 0, 0, HX_CLUSTER_DIR_DEFAULT,
	    "cluster directory" },
	{ "json", DTX_CFG_BOOL, OFF(json), 0, 0, "false", "JSON output" },
	{ "timeout-ms", DTX_CFG_INT, OFF(timeout_ms), 100, 600000, "10000",
	    "how long to retry blocked reads" },
};
#define N(t) (sizeof(t) / sizeof(t[0]))

static bool
parse_i64(const char *s, int64_t min, int64_t *out)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < min)
		return false;
	*out = v;
	return true;
}

// Connects to the cluster in dir (DTX_ENOENT when there is none). When
// no_saga is given, a cluster without an orchestrator sets it and dials
// nothing (*conn stays NULL).
static dtx_err
open_conn(const char *what, const char *dir, bool *no_saga, hx_conn **conn)
{
	hx_cluster *cl;
	if (cli_cluster_open(what, dir, &cl) != 0)
		return DTX_ENOENT;
	dtx_err rv = DTX_OK;
	const dtx_topo *t = hx_cluster_topo(cl);
	if (no_saga != NULL)
		*no_saga = dtx_topo_first(t, DTX_ROLE_SAGA) == NULL;
	char err[512];
	if ((no_saga == NULL || !*no_saga) &&
	    (rv = hx_cluster_conn(cl, false, conn, err, sizeof(err))) != DTX_OK)
		fprintf(stderr, "%s: %s\n", what, err);
	hx_cluster_free(cl);
	return rv;
}

int
cli_cmd_transfer(int argc, char **argv)
{
	txn_cfg cfg = { 0 };
	char *pos[4];
	int npos = 0, rc;
	int64_t from, to, amount;
	hx_conn *conn = NULL;
	rc = hx_parse_flags("dtx transfer", transfer_opts, N(transfer_opts),
	    &cfg, argc, argv, pos, 4, &npos);
	if (rc != 0)
		goto out;
	rc = HX_EXIT_USAGE;
	if (npos != 3 || !parse_i64(pos[0], 0, &from) ||
	    !parse_i64(pos[1], 0, &to) || !parse_i64(pos[2], 1, &amount) ||
	    from == to) {
		fprintf(stderr,
		    "dtx transfer: want FROM TO AMOUNT (two "
		    "distinct account numbers and an amount >= 1)\n");
		goto out;
	}
	bool saga = strcmp(cfg.mode, "saga") == 0;
	if (!saga && strcmp(cfg.mode, "2pc") && strcmp(cfg.mode, "3pc") &&
	    strcmp(cfg.mode, "pc")) {
		fprintf(stderr,
		    "dtx transfer: --mode must be 2pc, 3pc, pc or "
		    "saga\n");
		goto out;
	}
	bool no_saga = false;
	dtx_err rv =
	    open_conn("dtx transfer", cfg.dir, saga ? &no_saga : NULL, &conn);
	if (rv != DTX_OK) {
		rc = rv == DTX_ENOENT ? HX_EXIT_UNAVAILABLE : cli_exit_for(rv);
		goto out;
	}
	// Without an orchestrator nothing can be sent, so the outcome is
	// not unknown: nothing happened.
	if (no_saga) {
		fprintf(stderr,
		    "dtx transfer: --mode saga needs a saga orchestrator and "
		    "the cluster in %s has none (start one with dtx cluster "
		    "start --saga); nothing was sent\n",
		    cfg.dir);
		rc = HX_EXIT_UNAVAILABLE;
		goto out;
	}
	hx_xfer x;
	char gid[HX_GID_MAX];
	snprintf(
	    gid, sizeof(gid), "cli-%d-%" PRIu64, (int)getpid(), dtx_wall_ns());
	if (saga)
		hx_saga_transfer(
		    conn, gid, from, to, amount, (uint32_t)cfg.timeout_ms, &x);
	else
		hx_transfer(conn,
		    strcmp(cfg.mode, "3pc") == 0      ? PROTO_MODE_3PC
		        : strcmp(cfg.mode, "pc") == 0 ? PROTO_MODE_PC
		                                      : PROTO_MODE_2PC,
		    from, to, amount, (uint32_t)cfg.timeout_ms, &x);
	// Exit 0 committed, 1 certainly not done, 2 unknown; 69 certainly
	// not done because the coordinator (or orchestrator) could not be
	// reached, so that a script knows to wait for the cluster.
	const char *outcome;
	if (x.err == DTX_OK) {
		outcome = hx_outcome_name(x.outcome);
		rc = x.outcome == PROTO_COMMITTED ? HX_EXIT_OK
		    : x.outcome == PROTO_ABORTED  ? HX_EXIT_INVALID
		                                  : HX_EXIT_UNKNOWN;
	} else if (x.err == DTX_EUNREACH || x.err == DTX_EREFUSED) {
		outcome = "aborted";
		rc = x.err == DTX_EUNREACH ? HX_EXIT_UNAVAILABLE
		                           : HX_EXIT_INVALID;
	} else {
		outcome = "unknown";
		rc = HX_EXIT_UNKNOWN;
	}
	if (cfg.json) {
		hx_json j;
		hx_json_begin(&j, stdout);
		hx_json_str(&j, "outcome", outcome);
		hx_json_str(&j, "mode", cfg.mode);
		if (x.reason[0] != '\0')
			hx_json_str(&j, "reason", x.reason);
		if (x.err != DTX_OK)
			hx_json_str(&j, "error", dtx_errname(x.err));
		if (saga)
			hx_json_str(&j, "gid", gid);
		else if (x.txid != 0) // 0: no transaction was begun
			hx_json_u64(&j, "txid", x.txid);
		if (x.cts != 0) {
			char lc[48];
			snprintf(lc, sizeof(lc), "%" PRIu64 ".%u",
			    clk_ts_l(x.cts), clk_ts_c(x.cts));
			hx_json_u64(&j, "commit_ts", x.cts);
			hx_json_str(&j, "commit_hlc", lc);
		}
		hx_json_end(&j);
	} else {
		printf("%s", outcome);
		if (x.err != DTX_OK)
			printf(" (%s)", dtx_errname(x.err));
		if (x.reason[0] != '\0')
			printf(": %s", x.reason);
		if (saga)
			printf("\ngid %s", gid);
		else if (x.txid != 0)
			printf("\ntxid %" PRIu64, x.txid);
		if (x.cts != 0)
			printf("\ncommit ts %" PRIu64 " (%" PRIu64 ".%u)",
			    x.cts, clk_ts_l(x.cts), clk_ts_c(x.cts));
		printf("\n");
	}
out:
	hx_conn_close(conn);
	dtx_cfg_fini(transfer_opts, N(transfer_opts), &cfg);
	return rc < 0 ? HX_EXIT_OK : rc;
}

// "123456" (a packed clk_ts) or "L.C".
static bool
parse_hlc(const char *s, clk_ts *out)
{
	char *end;
	unsigned long long l = strtoull(s, &end, 10);
	if (end == s)
		return false;
	if (*end == '\0') {
		*out = l;
		return true;
	}
	if (*end != '.')
		return false;
	const char *cs = end + 1;
	unsigned long long c = strtoull(cs, &end, 10);
	if (end == cs || *end != '\0' || c > CLK_LOGICAL_MAX || l > CLK_L_MAX)
		return false;
	*out = clk_ts_make(l, (uint32_t)c);
	return true;
}

int
cli_cmd_balances(int argc, char **argv)
{
	txn_cfg cfg = { 0 };
	hx_conn *conn = NULL;
	clk_ts at = 0;
	int rc = hx_parse_flags("dtx balances", balances_opts, N(balances_opts),
	    &cfg, argc, argv, NULL, 0, NULL);
	if (rc != 0)
		goto out;
	if (cfg.at != NULL && !parse_hlc(cfg.at, &at)) {
		fprintf(stderr,
		    "dtx balances: --at wants an HLC timestamp "
		    "(a uint64, or L.C)\n");
		rc = HX_EXIT_USAGE;
		goto out;
	}
	dtx_err rv = open_conn("dtx balances", cfg.dir, NULL, &conn);
	if (rv != DTX_OK) {
		rc = rv == DTX_ENOENT ? HX_EXIT_UNAVAILABLE : cli_exit_for(rv);
		goto out;
	}
	hx_snapshot s;
	rv = hx_snapshot_read(conn, at, (uint32_t)cfg.timeout_ms, &s);
	if (rv != DTX_OK) {
		fprintf(stderr, "dtx balances: %s\n", dtx_strerror(rv));
		rc = cli_exit_for(rv);
		goto out;
	}
	if (cfg.json) {
		hx_json j;
		hx_json_begin(&j, stdout);
		hx_json_u64(&j, "ts", s.ts);
		hx_json_u64(&j, "ts_l", clk_ts_l(s.ts));
		hx_json_int(&j, "ts_c", clk_ts_c(s.ts));
		hx_json_obj_begin(&j, "balances");
		for (size_t i = 0; i < s.n; i++) {
			char k[24];
			snprintf(k, sizeof(k), "%" PRId64, s.ids[i]);
			hx_json_int(&j, k, s.bal[i]);
		}
		hx_json_obj_end(&j);
		hx_json_int(&j, "accounts", (int64_t)s.n);
		hx_json_int(&j, "total", s.total);
		hx_json_end(&j);
	} else {
		printf("snapshot at %" PRIu64 " (%" PRIu64 ".%u)\n", s.ts,
		    clk_ts_l(s.ts), clk_ts_c(s.ts));
		for (size_t i = 0; i < s.n; i++)
			printf("  acct:%-6" PRId64 " %" PRId64 "\n", s.ids[i],
			    s.bal[i]);
		printf("total %" PRId64 " over %zu accounts\n", s.total, s.n);
	}
	hx_snapshot_fini(&s);
	rc = HX_EXIT_OK;
out:
	hx_conn_close(conn);
	dtx_cfg_fini(balances_opts, N(balances_opts), &cfg);
	return rc < 0 ? HX_EXIT_OK : rc;
}
