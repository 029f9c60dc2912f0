// SPDX-License-Identifier: MIT
//
// dtx results list|show|prune|export: reads runs back from the results
// file, and removes old ones (export is in cmd_export.c).

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

typedef struct results_cfg {
	char *results;
	bool json;
} results_cfg;

static const dtx_cfg_opt results_opts[] = {
	{ "results", DTX_CFG_STR, offsetof(results_cfg, results), 0, 0,
	    HX_RESULTS_DEFAULT, "results database file" },
	{ "json", DTX_CFG_BOOL, offsetof(results_cfg, json), 0, 0, "false",
	    "print one JSON object" },
};
#define NRESULTS_OPTS (sizeof(results_opts) / sizeof(results_opts[0]))

static const char *
verdict_word(const hx_run_record *r)
{
	if (r->finished == NULL)
		return "unfinished";
	return r->valid == HX_VALID_TRUE ? "valid"
	    : r->valid == HX_VALID_FALSE ? "INVALID"
	                                 : "unknown";
}

// Writes a run's fields into the open object, its params when with_params.
static void
json_run_fields(hx_json *j, const hx_run_record *r, bool with_params)
{
	hx_json_int(j, "id", r->id);
	hx_json_str(j, "started", r->started);
	hx_json_str(j, "finished", r->finished);
	hx_json_str(j, "mode", r->mode);
	hx_json_str(j, "nemesis", r->nemesis);
	hx_json_u64(j, "seed", r->seed);
	if (with_params)
		hx_json_raw(j, "params", r->params);
	// An unfinished run has no verdict: "unknown", with finished null.
	hx_json_verdict(j, "valid", r->finished ? r->valid : HX_VALID_UNKNOWN);
	hx_json_int(j, "ops", r->nops);
	hx_json_bool(j, "interrupted", r->interrupted);
	hx_json_str(j, "summary", r->summary);
}

static int
open_for_cmd(const char *what, const char *path, hx_results **db)
{
	char err[600];
	if (hx_results_open(path, false, db, err, sizeof(err)) != DTX_OK) {
		fprintf(stderr, "%s: %s\n", what, err);
		return HX_EXIT_FAILURE;
	}
	return 0;
}

static int
results_list(int argc, char **argv)
{
	results_cfg cfg = { 0 };
	hx_results *db = NULL;
	hx_run_cursor *cur = NULL;
	int rc = hx_parse_flags("dtx results list", results_opts, NRESULTS_OPTS,
	    &cfg, argc, argv, NULL, 0, NULL);
	if (rc != 0)
		goto out;
	if ((rc = open_for_cmd("dtx results list", cfg.results, &db)) != 0)
		goto out;
	rc = HX_EXIT_FAILURE;
	if (hx_results_runs_open(db, &cur) != DTX_OK) {
		fprintf(
		    stderr, "dtx results list: %s\n", hx_results_errmsg(db));
		goto out;
	}
	hx_json j;
	if (cfg.json) {
		hx_json_begin(&j, stdout);
		hx_json_str(&j, "results", cfg.results);
		hx_json_arr_begin(&j, "runs");
	} else {
		printf("%-5s %-20s %-5s %-16s %-20s %-10s %8s  %s\n", "ID",
		    "STARTED", "MODE", "NEMESIS", "SEED", "VALID", "OPS",
		    "SUMMARY");
	}
	size_t nruns = 0;
	for (;;) {
		hx_run_record r;
		bool done;
		if (hx_results_runs_next(cur, &r, &done) != DTX_OK) {
			if (cfg.json)
				fputs("]}\n", stdout);
			fprintf(stderr, "dtx results list: %s\n",
			    hx_results_errmsg(db));
			goto out;
		}
		if (done)
			break;
		nruns++;
		if (cfg.json) {
			hx_json_obj_begin(&j, NULL);
			json_run_fields(&j, &r, false);
			hx_json_obj_end(&j);
		} else {
			printf("%-5lld %-20s %-5s %-16s %-20llu %-10s %8lld  "
			       "%.70s\n",
			    (long long)r.id, r.started, r.mode,
			    r.nemesis ? r.nemesis : "",
			    (unsigned long long)r.seed, verdict_word(&r),
			    (long long)r.nops, r.summary ? r.summary : "");
		}
		hx_run_record_fini(&r);
	}
	if (cfg.json) {
		hx_json_arr_end(&j);
		hx_json_end(&j);
	} else if (nruns == 0) {
		printf("(no runs in %s)\n", cfg.results);
	}
	rc = HX_EXIT_OK;
out:
	hx_results_runs_close(cur);
	hx_results_close(db);
	dtx_cfg_fini(results_opts, NRESULTS_OPTS, &cfg);
	return rc < 0 ? HX_EXIT_OK : rc;
}

static int
results_show(int argc, char **argv)
{
	results_cfg cfg = { 0 };
	hx_results *db = NULL;
	hx_run_record r = { 0 };
	char *pos[1];
	int npos = 0;
	int64_t id;
	int rc = hx_parse_flags("dtx results show", results_opts, NRESULTS_OPTS,
	    &cfg, argc, argv, pos, 1, &npos);
	if (rc != 0)
		goto out;
	if (cli_run_id_arg("dtx results show", "[--results FILE] [--json]", pos,
	        npos, &id) != DTX_OK) {
		rc = HX_EXIT_USAGE;
		goto out;
	}
	if ((rc = open_for_cmd("dtx results show", cfg.results, &db)) != 0)
		goto out;
	rc = HX_EXIT_FAILURE;
	dtx_err e = hx_results_load_run(db, id, &r);
	if (e != DTX_OK) {
		fprintf(
		    stderr, "dtx results show: %s\n", hx_results_errmsg(db));
		goto out;
	}
	char dir[1100];
	struct stat sb;
	bool have_dir = hx_results_report_dir(
	                    cfg.results, id, dir, sizeof(dir)) == DTX_OK &&
	    stat(dir, &sb) == 0;
	hx_json j;
	if (cfg.json) {
		hx_json_begin(&j, stdout);
		json_run_fields(&j, &r, true);
		hx_json_str(&j, "report", have_dir ? dir : NULL);
	} else {
		printf("run %lld: %s\n", (long long)r.id, verdict_word(&r));
		printf("  started   %s\n  finished  %s\n", r.started,
		    r.finished ? r.finished
		               : "(unfinished: the run did not "
		                 "complete)");
		printf("  mode      %s\n  nemesis   %s\n  seed      %llu\n",
		    r.mode, r.nemesis ? r.nemesis : "",
		    (unsigned long long)r.seed);
		printf("  params    %s\n  ops       %lld\n",
		    r.params ? r.params : "", (long long)r.nops);
		if (r.interrupted)
			printf("  interrupted (a signal cut the run short; "
			       "the history is partial)\n");
		if (r.summary)
			printf("  summary   %s\n", r.summary);
		if (have_dir)
			printf("  report    %s/index.html\n", dir);
	}
	e = hx_results_print_details(db, id, cfg.json, &j);
	if (cfg.json)
		hx_json_end(&j);
	if (e != DTX_OK) {
		fprintf(
		    stderr, "dtx results show: %s\n", hx_results_errmsg(db));
		goto out;
	}
	rc = HX_EXIT_OK;
out:
	hx_run_record_fini(&r);
	hx_results_close(db);
	dtx_cfg_fini(results_opts, NRESULTS_OPTS, &cfg);
	return rc < 0 ? HX_EXIT_OK : rc;
}

typedef struct prune_cfg {
	char *results;
	int64_t keep;
	char *before;
	bool json;
} prune_cfg;

static const dtx_cfg_opt prune_opts[] = {
	{ "results", DTX_CFG_STR, offsetof(prune_cfg, results), 0, 0,
	    HX_RESULTS_DEFAULT, "results database file" },
	{ "keep", DTX_CFG_INT, offsetof(prune_cfg, keep), 0, INT64_MAX, "0",
	    "keep the N newest runs, delete the rest" },
	{ "before", DTX_CFG_STR, offsetof(prune_cfg, before), 0, 0, NULL,
	    "delete the runs started before DATE (UTC YYYY-MM-DD or "
	    "YYYY-MM-DDTHH:MM:SSZ)" },
	{ "json", DTX_CFG_BOOL, offsetof(prune_cfg, json), 0, 0, "false",
	    "print one JSON object" },
};
#define NPRUNE (sizeof(prune_opts) / sizeof(prune_opts[0]))

static void
print_pruned(const prune_cfg *cfg, const hx_prune_result *p)
{
	if (cfg->json) {
		hx_json j;
		hx_json_begin(&j, stdout);
		hx_json_str(&j, "results", cfg->results);
		hx_json_arr_begin(&j, "removed");
		for (size_t i = 0; i < p->nids; i++)
			hx_json_int(&j, NULL, p->ids[i]);
		hx_json_arr_end(&j);
		hx_json_int(&j, "rows", p->rows);
		hx_json_int(&j, "report_dirs", (int64_t)p->dirs);
		hx_json_int(&j, "bytes_before", p->bytes_before);
		hx_json_int(&j, "bytes_after", p->bytes_after);
		hx_json_end(&j);
		return;
	}
	if (p->nids == 0) {
		printf("nothing to remove from %s\n", cfg->results);
		return;
	}
	printf("removed %zu run(s):", p->nids);
	for (size_t i = 0; i < p->nids; i++)
		printf(" %lld", (long long)p->ids[i]);
	printf("\n%lld rows, %zu report directories; %s: %.1f MB -> %.1f "
	       "MB\n",
	    (long long)p->rows, p->dirs, cfg->results,
	    (double)p->bytes_before / 1e6, (double)p->bytes_after / 1e6);
}

static int
results_prune(int argc, char **argv)
{
	prune_cfg cfg = { 0 };
	hx_prune_result p = { 0 };
	char err[600];
	int rc = hx_parse_flags("dtx results prune", prune_opts, NPRUNE, &cfg,
	    argc, argv, NULL, 0, NULL);
	if (rc != 0)
		goto out;
	if (cfg.keep == 0 && cfg.before == NULL) {
		fprintf(stderr,
		    "dtx results prune: give --keep N (N >= 1) or --before "
		    "DATE (see: dtx results prune --help)\n");
		rc = HX_EXIT_USAGE;
		goto out;
	}
	if (cfg.before != NULL && !hx_utc_date_ok(cfg.before)) {
		fprintf(stderr,
		    "dtx results prune: --before wants a UTC date YYYY-MM-DD "
		    "or time YYYY-MM-DDTHH:MM:SSZ, not '%s'\n",
		    cfg.before);
		rc = HX_EXIT_USAGE;
		goto out;
	}
	dtx_err e = hx_results_prune(
	    cfg.results, cfg.keep, cfg.before, &p, err, sizeof(err));
	if (e != DTX_OK) {
		fprintf(stderr, "dtx results prune: %s\n", err);
		rc = HX_EXIT_INTERNAL;
		goto out;
	}
	print_pruned(&cfg, &p);
	rc = HX_EXIT_OK;
out:
	hx_prune_result_fini(&p);
	dtx_cfg_fini(prune_opts, NPRUNE, &cfg);
	return rc < 0 ? HX_EXIT_OK : rc;
}

static const hx_cmd results_cmds[] = {
	{ "list", results_list, "list recorded runs" },
	{ "show", results_show, "show one run" },
	{ "prune", results_prune, "delete old runs" },
	{ "export", cli_results_export,
	    "write a run's history as JSON or EDN" },
};

int
cli_cmd_results(int argc, char **argv)
{
	return hx_dispatch("dtx results", results_cmds,
	    sizeof(results_cmds) / sizeof(results_cmds[0]), argc, argv);
}
