// SPDX-License-Identifier: MIT
//
// dtx accounts init N --balance B: the bank accounts a fresh cluster lacks,
// created with the same harness call the bank workload uses
// (hx_bank_init). Idempotent: over the accounts it made before it changes
// nothing and says so; over accounts of another count or total it refuses.

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct acct_cfg {
	int64_t balance;
	char *dir;
	bool json;
} acct_cfg;

#define OFF(f) offsetof(acct_cfg, f)
static const dtx_cfg_opt init_opts[] = {
	{ "balance", DTX_CFG_INT, OFF(balance), 0, 1000000000, "100",
	    "initial balance of each account" },
	{ "dir", DTX_CFG_STR, OFF(dir), 0, 0, HX_CLUSTER_DIR_DEFAULT,
	    "cluster directory" },
	{ "json", DTX_CFG_BOOL, OFF(json), 0, 0, "false", "JSON output" },
};
#define NINIT (sizeof(init_opts) / sizeof(init_opts[0]))

static void
say(const acct_cfg *cfg, const char *what, int64_t n, int64_t total)
{
	if (cfg->json) {
		hx_json j;
		hx_json_begin(&j, stdout);
		hx_json_str(&j, "result", what);
		hx_json_int(&j, "accounts", n);
		hx_json_int(&j, "balance", cfg->balance);
		hx_json_int(&j, "total", total);
		hx_json_end(&j);
		return;
	}
	if (strcmp(what, "created") == 0)
		printf("created %" PRId64 " accounts (0..%" PRId64
		       ") with balance %" PRId64 ", total %" PRId64 "\n",
		    n, n - 1, cfg->balance, total);
	else
		printf("unchanged: the %" PRId64
		       " accounts exist (total %" PRId64 "); nothing to do\n",
		    n, total);
}

// After hx_bank_init found accounts: the same ones (count and total, as
// transfers move money but keep the total) are success, others a
// conflict.
static int
check_existing(const acct_cfg *cfg, hx_conn *conn, int64_t n)
{
	hx_snapshot s;
	dtx_err rv = hx_snapshot_read(conn, 0, 10000, &s);
	if (rv != DTX_OK) {
		fprintf(stderr,
		    "dtx accounts init: cannot read the accounts: %s\n",
		    dtx_strerror(rv));
		return cli_exit_for(rv);
	}
	bool same = (int64_t)s.n == n && s.total == n * cfg->balance;
	for (size_t i = 0; same && i < s.n; i++)
		same = s.ids[i] == (int64_t)i;
	int rc = HX_EXIT_OK;
	if (same) {
		say(cfg, "unchanged", n, s.total);
	} else {
		fprintf(stderr,
		    "dtx accounts init: the cluster already has %zu accounts "
		    "with total %" PRId64 ", not %" PRId64
		    " with balance %" PRId64 " (total %" PRId64
		    "); nothing changed\n",
		    s.n, s.total, n, cfg->balance, n * cfg->balance);
		rc = HX_EXIT_CONFLICT;
	}
	hx_snapshot_fini(&s);
	return rc;
}

static int
init_body(const acct_cfg *cfg, int64_t n)
{
	hx_cluster *cl = NULL;
	hx_conn *conn = NULL;
	char err[512];
	int rc;
	if ((rc = cli_cluster_open("dtx accounts init", cfg->dir, &cl)) != 0)
		return rc;
	dtx_err rv = hx_cluster_conn(cl, false, &conn, err, sizeof(err));
	hx_cluster_free(cl);
	if (rv != DTX_OK) {
		fprintf(stderr, "dtx accounts init: %s\n", err);
		return cli_exit_for(rv);
	}
	bool created = false;
	rv = hx_bank_init(
	    conn, (uint32_t)n, cfg->balance, &created, err, sizeof(err));
	if (rv != DTX_OK) {
		fprintf(stderr, "dtx accounts init: %s\n", err);
		rc = rv == DTX_EEXIST ? HX_EXIT_CONFLICT : cli_exit_for(rv);
	} else if (created) {
		say(cfg, "created", n, n * cfg->balance);
		rc = HX_EXIT_OK;
	} else {
		rc = check_existing(cfg, conn, n);
	}
	hx_conn_close(conn);
	return rc;
}

static int
accounts_init(int argc, char **argv)
{
	acct_cfg cfg = { 0 };
	char *pos[2];
	int npos = 0;
	int64_t n = 0;
	int rc = hx_parse_flags("dtx accounts init", init_opts, NINIT, &cfg,
	    argc, argv, pos, 2, &npos);
	if (rc != 0)
		goto out;
	char *end = NULL;
	if (npos == 1)
		n = strtoll(pos[0], &end, 10);
	if (npos != 1 || end == pos[0] || *end != '\0' || n < 2 ||
	    n > HX_ACCOUNTS_MAX) {
		fprintf(stderr,
		    "dtx accounts init: want N, the number of accounts (2 to "
		    "%d) (usage: dtx accounts init N [--balance B])\n",
		    HX_ACCOUNTS_MAX);
		rc = HX_EXIT_USAGE;
		goto out;
	}
	rc = init_body(&cfg, n);
out:
	dtx_cfg_fini(init_opts, NINIT, &cfg);
	return rc < 0 ? HX_EXIT_OK : rc;
}

int
cli_cmd_accounts(int argc, char **argv)
{
	static const hx_cmd cmds[] = {
		{ "init", accounts_init, "create N accounts (idempotent)" },
	};
	return hx_dispatch(
	    "dtx accounts", cmds, sizeof(cmds) / sizeof(cmds[0]), argc, argv);
}
