// SPDX-License-Identifier: MIT
//
// dtx check: re-checks a recorded run from the results file.

#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct check_cfg {
	char *results;
	bool json;
	bool report;
	bool live;
	char *dir;
} check_cfg;

static const dtx_cfg_opt check_opts[] = {
	{ "results", DTX_CFG_STR, offsetof(check_cfg, results), 0, 0,
	    HX_RESULTS_DEFAULT, "results database file" },
	{ "json", DTX_CFG_BOOL, offsetof(check_cfg, json), 0, 0, "false",
	    "print the verdict as one JSON object" },
	{ "report", DTX_CFG_BOOL, offsetof(check_cfg, report), 0, 0, "false",
	    "also rewrite the run's report directory" },
	{ "live", DTX_CFG_BOOL, offsetof(check_cfg, live), 0, 0, "false",
	    "instead of a recorded run (no ID), check atomicity of every "
	    "transaction in doubt or decided by hand on the running cluster "
	    "in --dir (heuristic hazards included)" },
	{ "dir", DTX_CFG_STR, offsetof(check_cfg, dir), 0, 0,
	    HX_CLUSTER_DIR_DEFAULT, "cluster directory (with --live)" },
};
#define NCHECK_OPTS (sizeof(check_opts) / sizeof(check_opts[0]))

// Parses a run id: a positive decimal integer.
static dtx_err
parse_run_id(const char *s, int64_t *out)
{
	char *end;
	if (s == NULL || *s < '1' || *s > '9')
		return DTX_EINVAL;
	long long v = strtoll(s, &end, 10);
	if (*end != '\0' || v <= 0)
		return DTX_EINVAL;
	*out = v;
	return DTX_OK;
}

dtx_err
cli_run_id_arg(const char *what, const char *flags, char *const *pos, int npos,
    int64_t *out)
{
	if (npos == 1 && parse_run_id(pos[0], out) == DTX_OK)
		return DTX_OK;
	fprintf(stderr, "%s: %s (usage: %s ID %s)\n", what,
	    npos != 1 ? "missing run ID" : "run ID must be a positive integer",
	    what, flags);
	return DTX_EINVAL;
}

// Writes run id's report again beside the results file, with the
// verdict just computed (dtx check --report).
static dtx_err
rewrite_report(hx_results *db, const char *results, int64_t id,
    const hx_run_record *run, const hx_history *h, const hx_verdict *v)
{
	char dir[4096];
	hx_fault *faults = NULL;
	size_t nfaults = 0;
	dtx_err e = hx_results_report_dir(results, id, dir, sizeof(dir));
	if (e == DTX_OK)
		e = hx_results_load_faults(db, id, &faults, &nfaults);
	if (e == DTX_OK)
		e = hx_report_write_run(dir, id,
		    &(hx_run_info) { .mode = run->mode,
		        .nemesis = run->nemesis,
		        .seed = run->seed,
		        .params = run->params },
		    h, faults, nfaults, v);
	hx_faults_free(faults, nfaults);
	return e;
}

// dtx check --live: the atomicity checker over what the running cluster's
// nodes know of every transaction in doubt or decided by hand.
static int
check_live(const check_cfg *cfg)
{
	hx_cluster *cl;
	hx_conn *conn = NULL;
	int rc = cli_cluster_open("dtx check", cfg->dir, &cl);
	if (rc != 0)
		return rc;
	dtx_err e = hx_conn_open(hx_cluster_topo(cl), &conn);
	hx_cluster_free(cl);
	hx_txn_obs *obs = NULL;
	size_t n = 0, unreach = 0;
	hx_history *h = hx_history_new();
	hx_atom_result r;
	if (e == DTX_OK)
		e = h == NULL ? DTX_ENOMEM
		              : hx_txn_live_obs(conn, 5000, &obs, &n, &unreach);
	if (e == DTX_OK)
		e = hx_check_atomicity(h, obs, n, &r);
	hx_conn_close(conn);
	dtx_free(obs);
	hx_history_free(h);
	if (e != DTX_OK) {
		fprintf(stderr, "dtx check --live: %s\n", dtx_strerror(e));
		return cli_exit_for(e);
	}
	// Nothing in doubt nor decided by hand, every node asked: nothing
	// can be wrong.
	hx_valid v = n == 0 && unreach == 0 ? HX_VALID_TRUE : r.c.valid;
	if (v == HX_VALID_TRUE && unreach > 0)
		v = HX_VALID_UNKNOWN;
	if (cfg->json) {
		hx_json j;
		hx_json_begin(&j, stdout);
		hx_json_str(&j, "cluster", cfg->dir);
		hx_json_verdict(&j, "valid", v);
		hx_json_int(&j, "unreachable", (int64_t)unreach);
		hx_json_raw(&j, "atomicity", r.c.json);
		hx_json_arr_begin(&j, "anomalies");
		for (size_t i = 0; i < r.c.nanoms; i++) {
			hx_json_obj_begin(&j, NULL);
			hx_json_str(&j, "kind", r.c.anoms[i].kind);
			hx_json_u64(&j, "txid", r.c.anoms[i].txid);
			hx_json_raw(&j, "detail", r.c.anoms[i].detail);
			hx_json_obj_end(&j);
		}
		hx_json_arr_end(&j);
		hx_json_end(&j);
	} else {
		printf("live cluster %s: %s (%zu participants not asked)\n",
		    cfg->dir, hx_valid_name(v), unreach);
		printf("atomicity: %s\n", r.c.summary);
		for (size_t i = 0; i < r.c.nanoms; i++)
			printf("  %s tx %llu: %s\n", r.c.anoms[i].kind,
			    (unsigned long long)r.c.anoms[i].txid,
			    r.c.anoms[i].detail);
	}
	hx_check_fini(&r.c);
	return v == HX_VALID_TRUE ? HX_EXIT_OK
	    : v == HX_VALID_FALSE ? HX_EXIT_INVALID
	                          : HX_EXIT_UNKNOWN;
}

int
cli_cmd_check(int argc, char **argv)
{
	check_cfg cfg = { 0 };
	char *pos[1];
	int npos = 0, rc;
	int64_t id = 0;
	char err[512];
	hx_results *db = NULL;
	hx_run_record run = { 0 };
	hx_history *h = NULL;
	hx_txn_obs *txns = NULL;
	hx_saga_obs *sagas = NULL;
	size_t ntxns = 0, nsagas = 0;
	int64_t *accounts = NULL;
	hx_verdict v = { 0 };
	bool have_v = false;

	rc = hx_parse_flags("dtx check", check_opts, NCHECK_OPTS, &cfg, argc,
	    argv, pos, 1, &npos);
	if (rc != 0) {
		dtx_cfg_fini(check_opts, NCHECK_OPTS, &cfg);
		return rc < 0 ? HX_EXIT_OK : rc;
	}
	if (cfg.live) {
		rc = npos == 0 ? check_live(&cfg) : HX_EXIT_USAGE;
		if (npos != 0)
			fprintf(stderr, "dtx check: --live takes no run ID\n");
		dtx_cfg_fini(check_opts, NCHECK_OPTS, &cfg);
		return rc;
	}
	if (cli_run_id_arg("dtx check", "[--results FILE] [--json] [--report]",
	        pos, npos, &id) != DTX_OK) {
		dtx_cfg_fini(check_opts, NCHECK_OPTS, &cfg);
		return HX_EXIT_USAGE;
	}
	rc = HX_EXIT_FAILURE;
	if (hx_results_open(cfg.results, false, &db, err, sizeof(err)) !=
	    DTX_OK) {
		fprintf(stderr, "dtx check: %s\n", err);
		goto out;
	}
	dtx_err e = hx_results_load_run(db, id, &run);
	if (e == DTX_ENOENT) {
		fprintf(stderr, "dtx check: no run %lld in %s\n", (long long)id,
		    cfg.results);
		goto out;
	}
	if (e == DTX_OK)
		e = hx_results_load_history(db, id, &h);
	if (e == DTX_OK)
		e = hx_results_load_obs(db, id, &txns, &ntxns, &sagas, &nsagas);
	if (e != DTX_OK) {
		fprintf(stderr, "dtx check: run %lld: %s\n", (long long)id,
		    hx_results_errmsg(db));
		goto out;
	}
	hx_run_cfg rcfg = { .mode = run.mode };
	if (hx_bank_cfg_from_params(run.params, &accounts, &rcfg.bank.naccounts,
	        &rcfg.bank.total, err, sizeof(err)) != DTX_OK) {
		fprintf(
		    stderr, "dtx check: run %lld: %s\n", (long long)id, err);
		goto out;
	}
	rcfg.bank.accounts = accounts;
	bool la = hx_params_list_append(run.params);
	hx_run_extra x = { .replay = !la,
		.adopted = hx_params_adopted(run.params),
		.workload = la ? "list-append" : NULL };
	hx_node_log *logs = NULL;
	char rdir[4096];
	if (hx_results_report_dir(cfg.results, id, rdir, sizeof(rdir)) ==
	    DTX_OK)
		(void)hx_node_logs_in_dir(rdir, &logs, &x.nlogs);
	(void)hx_node_logs_expect(h, logs, x.nlogs);
	x.logs = logs;
	e = hx_check_run_ex(h, &rcfg, &x, txns, ntxns, sagas, nsagas, &v);
	hx_node_logs_free(logs, x.nlogs);
	if (e != DTX_OK) {
		fprintf(stderr, "dtx check: run %lld: %s\n", (long long)id,
		    e == DTX_EINVAL ? "unknown mode (want 2pc, 3pc, pc or saga)"
		                    : dtx_strerror(e));
		goto out;
	}
	have_v = true;
	if (cfg.report &&
	    (e = rewrite_report(db, cfg.results, id, &run, h, &v)) != DTX_OK) {
		fprintf(stderr, "dtx check: writing the report: %s\n",
		    dtx_strerror(e));
		goto out;
	}
	if (cfg.json) {
		hx_json j;
		hx_json_begin(&j, stdout);
		hx_json_int(&j, "run", id);
		hx_json_str(&j, "mode", run.mode);
		hx_json_bool(&j, "finished", run.finished != NULL);
		hx_json_int(&j, "ops", (int64_t)hx_history_len(h));
		hx_verdict_json(&j, "verdict", &v);
		hx_json_end(&j);
	} else {
		printf("run %lld (%s, nemesis %s, %zu ops%s)\n", (long long)id,
		    run.mode, run.nemesis ? run.nemesis : "none",
		    hx_history_len(h), run.finished ? "" : ", UNFINISHED");
		hx_verdict_print(stdout, &v);
	}
	rc = v.valid == HX_VALID_TRUE   ? HX_EXIT_OK
	    : v.valid == HX_VALID_FALSE ? HX_EXIT_INVALID
	                                : HX_EXIT_UNKNOWN;
out:
	if (have_v)
		hx_verdict_fini(&v);
	dtx_free(accounts);
	dtx_free(txns);
	dtx_free(sagas);
	hx_history_free(h);
	hx_run_record_fini(&run);
	hx_results_close(db);
	dtx_cfg_fini(check_opts, NCHECK_OPTS, &cfg);
	return rc;
}
