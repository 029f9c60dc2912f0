// SPDX-License-Identifier: MIT
//
// Checking a run: the plumbing every checker shares, the combined verdict
// (Jepsen's merge of valid/invalid/unknown), printing it, and `dtx check ID`,
// which reloads a stored history with its observations and checks it again.

#include <stdlib.h>
#include <string.h>

#include "cli_int.h"

const char *
cli_valid_name(cli_valid v)
{
	switch (v) {
	case CLI_VALID_TRUE:
		return "true";
	case CLI_VALID_FALSE:
		return "false";
	default:
		return "unknown";
	}
}

cli_valid
cli_valid_merge(cli_valid a, cli_valid b)
{
	if (a == CLI_VALID_FALSE || b == CLI_VALID_FALSE)
		return CLI_VALID_FALSE;
	if (a == CLI_VALID_UNKNOWN || b == CLI_VALID_UNKNOWN)
		return CLI_VALID_UNKNOWN;
	return CLI_VALID_TRUE;
}

void
cli__check_init(cli_check *c, const char *name)
{
	memset(c, 0, sizeof(*c));
	c->name = name;
	c->valid = CLI_VALID_UNKNOWN;
}

void
cli_check_fini(cli_check *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nanoms; i++) {
		dtx_free(c->anoms[i].gid);
		dtx_free(c->anoms[i].detail);
	}
	dtx_free(c->anoms);
	dtx_free(c->summary);
	dtx_free(c->json);
	const char *name = c->name;
	memset(c, 0, sizeof(*c));
	c->name = name;
}

dtx_err
cli__check_anomaly(cli_check *c, const char *kind, const cli_op *op,
    bool has_txid, uint64_t txid, const char *gid, char *detail)
{
	if (detail == NULL)
		return DTX_ENOMEM;
	if (DTX_GROW(c->anoms, c->nanoms, c->anoms_cap, 8) != DTX_OK) {
		dtx_free(detail);
		return DTX_ENOMEM;
	}
	cli_anomaly a = { .checker = c->name,
		.kind = kind,
		.op_index = op ? op->index : -1,
		.time_ns = op ? op->time_ns : -1,
		.has_txid = has_txid,
		.txid = txid,
		.detail = detail };
	if (gid != NULL && (a.gid = dtx_strdup(gid)) == NULL) {
		dtx_free(detail);
		return DTX_ENOMEM;
	}
	c->anoms[c->nanoms++] = a;
	return DTX_OK;
}

dtx_err
cli__check_set(cli_check *c, cli_valid valid, cli_sb *summary, cli_sb *json)
{
	char *s = cli_sb_take(summary);
	char *j = cli_sb_take(json);
	if (s == NULL || j == NULL) {
		dtx_free(s);
		dtx_free(j);
		return DTX_ENOMEM;
	}
	dtx_free(c->summary);
	dtx_free(c->json);
	c->summary = s;
	c->json = j;
	c->valid = valid;
	return DTX_OK;
}

static const cli_jv *
field_of(const cli_op *op, const char *key, cli_jdoc **doc)
{
	*doc = NULL;
	if (op == NULL || op->value == NULL)
		return NULL;
	if (cli_json_parse(op->value, strlen(op->value), doc, NULL, 0) !=
	    DTX_OK)
		return NULL;
	return cli_jv_get(cli_jdoc_root(*doc), key);
}

bool
cli__op_txid(const cli_op *inv, const cli_op *comp, uint64_t *txid)
{
	const cli_op *ops[2] = { comp, inv };
	for (int i = 0; i < 2; i++) {
		cli_jdoc *doc;
		const cli_jv *v = field_of(ops[i], "txid", &doc);
		uint64_t t;
		bool ok = v != NULL && cli_jv_u64(v, &t) == DTX_OK;
		cli_jdoc_free(doc);
		if (ok) {
			*txid = t;
			return true;
		}
	}
	return false;
}

bool
cli__op_gid(const cli_op *inv, const cli_op *comp, char *gid, size_t len)
{
	const cli_op *ops[2] = { comp, inv };
	for (int i = 0; i < 2; i++) {
		cli_jdoc *doc;
		const cli_jv *v = field_of(ops[i], "gid", &doc);
		bool ok = v != NULL && v->type == CLI_JV_STR && v->len > 0 &&
		    v->len < len;
		if (ok)
			memcpy(gid, v->s, v->len + 1);
		cli_jdoc_free(doc);
		if (ok)
			return true;
	}
	return false;
}

dtx_err
cli_bank_cfg_from_params(const char *params, int64_t **accounts,
    size_t *naccounts, int64_t *total, char *err, size_t errlen)
{
	cli_jdoc *doc = NULL;
	char perr[128];
	int64_t *acc = NULL;
	size_t n = 0;
	int64_t t;
	if (params == NULL) {
		snprintf(err, errlen, "run has no params");
		return DTX_EINVAL;
	}
	dtx_err rv =
	    cli_json_parse(params, strlen(params), &doc, perr, sizeof(perr));
	if (rv != DTX_OK) {
		snprintf(err, errlen, "params are not valid JSON (%s)",
		    rv == DTX_ENOMEM ? "out of memory" : perr);
		return rv;
	}
	const cli_jv *root = cli_jdoc_root(doc);
	const cli_jv *a = cli_jv_get(root, "accounts");
	int64_t count;
	rv = DTX_EINVAL;
	if (cli_jv_int(cli_jv_get(root, "total"), &t) != DTX_OK) {
		snprintf(err, errlen, "params need an integer \"total\"");
		goto fail;
	}
	if (a != NULL && cli_jv_int(a, &count) == DTX_OK && count > 0 &&
	    count <= 1000000) {
		n = (size_t)count;
		if ((acc = dtx_alloc(n * sizeof(*acc))) == NULL)
			goto nomem;
		for (size_t i = 0; i < n; i++)
			acc[i] = (int64_t)i;
	} else if (a != NULL && a->type == CLI_JV_ARR && a->len > 0) {
		if ((acc = dtx_alloc(a->len * sizeof(*acc))) == NULL)
			goto nomem;
		for (const cli_jv *m = a->first; m; m = m->next) {
			if (cli_jv_int(m, &acc[n]) != DTX_OK) {
				snprintf(err, errlen,
				    "params \"accounts\" must hold integers");
				goto fail;
			}
			n++;
		}
	} else {
		snprintf(err, errlen,
		    "params need \"accounts\": a count (1..1000000) or an "
		    "array of integer ids");
		goto fail;
	}
	cli_jdoc_free(doc);
	*accounts = acc;
	*naccounts = n;
	*total = t;
	return DTX_OK;
nomem:
	rv = DTX_ENOMEM;
	snprintf(err, errlen, "out of memory");
fail:
	dtx_free(acc);
	cli_jdoc_free(doc);
	return rv;
}

// ---------------------------------------------------------------- verdict

dtx_err
cli_check_run(const cli_history *h, const cli_run_cfg *cfg,
    const cli_txn_obs *obs, size_t nobs, const cli_saga_obs *sagas,
    size_t nsagas, cli_verdict *out)
{
	if (h == NULL || cfg == NULL || cfg->mode == NULL || out == NULL)
		return DTX_EINVAL;
	bool saga = strcmp(cfg->mode, "saga") == 0;
	if (!saga && strcmp(cfg->mode, "2pc") != 0 &&
	    strcmp(cfg->mode, "3pc") != 0)
		return DTX_EINVAL;
	cli_verdict v;
	memset(&v, 0, sizeof(v));
	cli_bank_cfg bank = cfg->bank;
	bank.saga = saga;
	dtx_err rv = cli_check_bank(h, &bank, &v.bank);
	if (rv != DTX_OK)
		return rv;
	rv = cli_check_stats(h, &v.stats);
	if (rv != DTX_OK)
		goto fail;
	if (saga) {
		rv = cli_check_saga(h, &bank, sagas, nsagas, &v.saga);
		v.has_saga = rv == DTX_OK;
	} else {
		rv = cli_check_atomicity(h, obs, nobs, &v.atom);
		v.has_atom = rv == DTX_OK;
	}
	if (rv != DTX_OK)
		goto fail;
	v.valid = CLI_VALID_TRUE;
	for (size_t i = 0; i < cli_verdict_count(&v); i++)
		v.valid =
		    cli_valid_merge(v.valid, cli_verdict_check(&v, i)->valid);
	*out = v;
	return DTX_OK;
fail:
	cli_verdict_fini(&v);
	return rv;
}

void
cli_verdict_fini(cli_verdict *v)
{
	if (v == NULL)
		return;
	cli_check_fini(&v->bank.c);
	cli_stats_fini(&v->stats);
	if (v->has_atom)
		cli_check_fini(&v->atom.c);
	if (v->has_saga)
		cli_check_fini(&v->saga.c);
	memset(v, 0, sizeof(*v));
}

size_t
cli_verdict_count(const cli_verdict *v)
{
	return 2 + (v->has_atom ? 1 : 0) + (v->has_saga ? 1 : 0);
}

const cli_check *
cli_verdict_check(const cli_verdict *v, size_t i)
{
	if (i == 0)
		return &v->bank.c;
	if (i == 1)
		return &v->stats.c;
	if (i == 2 && v->has_atom)
		return &v->atom.c;
	if (i == 2 && v->has_saga)
		return &v->saga.c;
	return NULL;
}

void
cli_verdict_print(FILE *out, const cli_verdict *v)
{
	fprintf(out, "verdict: %s\n",
	    v->valid == CLI_VALID_TRUE        ? "valid"
	        : v->valid == CLI_VALID_FALSE ? "INVALID"
	                                      : "unknown");
	for (size_t i = 0; i < cli_verdict_count(v); i++) {
		const cli_check *c = cli_verdict_check(v, i);
		fprintf(out, "  %-10s %-7s %s\n", c->name,
		    cli_valid_name(c->valid), c->summary ? c->summary : "");
		size_t shown = 0;
		for (size_t k = 0; k < c->nanoms && shown < 10; k++, shown++) {
			const cli_anomaly *a = &c->anoms[k];
			fprintf(out, "    %s", a->kind);
			if (a->op_index >= 0)
				fprintf(out, " op %lld at %.3f s",
				    (long long)a->op_index,
				    (double)a->time_ns / 1e9);
			if (a->has_txid)
				fprintf(out, " txid %llu",
				    (unsigned long long)a->txid);
			if (a->gid)
				fprintf(out, " gid %s", a->gid);
			fprintf(out, ": %s\n", a->detail);
		}
		if (c->nanoms > shown)
			fprintf(out, "    ... %zu more\n", c->nanoms - shown);
	}
}

void
cli_verdict_json(cli_json *j, const char *key, const cli_verdict *v)
{
	cli_json_obj_begin(j, key);
	cli_json_str(j, "valid", cli_valid_name(v->valid));
	cli_json_obj_begin(j, "checkers");
	for (size_t i = 0; i < cli_verdict_count(v); i++) {
		const cli_check *c = cli_verdict_check(v, i);
		cli_json_key(j, c->name);
		fputs(c->json ? c->json : "null", j->out);
	}
	cli_json_obj_end(j);
	cli_json_obj_end(j);
}

// ---------------------------------------------------------------- dtx check

typedef struct check_cfg {
	char *results;
	bool json;
	bool report;
} check_cfg;

static const dtx_cfg_opt check_opts[] = {
	{ "results", DTX_CFG_STR, offsetof(check_cfg, results), 0, 0,
	    CLI_RESULTS_DEFAULT, "results database file" },
	{ "json", DTX_CFG_BOOL, offsetof(check_cfg, json), 0, 0, "false",
	    "print the verdict as one JSON object" },
	{ "report", DTX_CFG_BOOL, offsetof(check_cfg, report), 0, 0, "false",
	    "also rewrite the run's report directory" },
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
cli__run_id_arg(const char *what, const char *flags, char *const *pos, int npos,
    int64_t *out)
{
	if (npos == 1 && parse_run_id(pos[0], out) == DTX_OK)
		return DTX_OK;
	fprintf(stderr, "%s: %s (usage: %s ID %s)\n", what,
	    npos != 1 ? "missing run ID" : "run ID must be a positive integer",
	    what, flags);
	return DTX_EINVAL;
}

int
cli_cmd_check(int argc, char **argv)
{
	check_cfg cfg = { 0 };
	char *pos[1];
	int npos = 0, rc;
	int64_t id = 0;
	char err[512];
	cli_results *db = NULL;
	cli_run_record run = { 0 };
	cli_history *h = NULL;
	cli_txn_obs *txns = NULL;
	cli_saga_obs *sagas = NULL;
	size_t ntxns = 0, nsagas = 0;
	int64_t *accounts = NULL;
	cli_verdict v = { 0 };
	bool have_v = false;

	rc = cli_parse_flags("dtx check", check_opts, NCHECK_OPTS, &cfg, argc,
	    argv, pos, 1, &npos);
	if (rc != 0) {
		dtx_cfg_fini(check_opts, NCHECK_OPTS, &cfg);
		return rc < 0 ? CLI_EXIT_OK : rc;
	}
	if (cli__run_id_arg("dtx check", "[--results FILE] [--json] [--report]",
	        pos, npos, &id) != DTX_OK) {
		dtx_cfg_fini(check_opts, NCHECK_OPTS, &cfg);
		return CLI_EXIT_USAGE;
	}
	rc = CLI_EXIT_FAILURE;
	if (cli_results_open(cfg.results, false, &db, err, sizeof(err)) !=
	    DTX_OK) {
		fprintf(stderr, "dtx check: %s\n", err);
		goto out;
	}
	dtx_err e = cli_results_load_run(db, id, &run);
	if (e == DTX_ENOENT) {
		fprintf(stderr, "dtx check: no run %lld in %s\n", (long long)id,
		    cfg.results);
		goto out;
	}
	if (e == DTX_OK)
		e = cli_results_load_history(db, id, &h);
	if (e == DTX_OK)
		e = cli_results_load_obs(
		    db, id, &txns, &ntxns, &sagas, &nsagas);
	if (e != DTX_OK) {
		fprintf(stderr, "dtx check: run %lld: %s\n", (long long)id,
		    cli_results_errmsg(db));
		goto out;
	}
	cli_run_cfg rcfg = { .mode = run.mode };
	if (cli_bank_cfg_from_params(run.params, &accounts,
	        &rcfg.bank.naccounts, &rcfg.bank.total, err,
	        sizeof(err)) != DTX_OK) {
		fprintf(
		    stderr, "dtx check: run %lld: %s\n", (long long)id, err);
		goto out;
	}
	rcfg.bank.accounts = accounts;
	e = cli_check_run(h, &rcfg, txns, ntxns, sagas, nsagas, &v);
	if (e != DTX_OK) {
		fprintf(stderr, "dtx check: run %lld: %s\n", (long long)id,
		    e == DTX_EINVAL ? "unknown mode (expected 2pc, 3pc or saga)"
		                    : dtx_strerror(e));
		goto out;
	}
	have_v = true;
	if (cfg.report) {
		char dir[4096];
		cli_fault *faults = NULL;
		size_t nfaults = 0;
		e = cli_results_report_dir(cfg.results, id, dir, sizeof(dir));
		if (e == DTX_OK)
			e = cli_results_load_faults(db, id, &faults, &nfaults);
		if (e == DTX_OK)
			e = cli_report_write(dir, id, h, faults, nfaults, &v);
		cli_faults_free(faults, nfaults);
		if (e != DTX_OK) {
			fprintf(stderr, "dtx check: writing the report: %s\n",
			    dtx_strerror(e));
			goto out;
		}
	}
	if (cfg.json) {
		cli_json j;
		cli_json_begin(&j, stdout);
		cli_json_int(&j, "run", id);
		cli_json_str(&j, "mode", run.mode);
		cli_json_bool(&j, "finished", run.finished != NULL);
		cli_json_int(&j, "ops", (int64_t)cli_history_len(h));
		cli_verdict_json(&j, "verdict", &v);
		cli_json_end(&j);
	} else {
		printf("run %lld (%s, nemesis %s, %zu ops%s)\n", (long long)id,
		    run.mode, run.nemesis ? run.nemesis : "none",
		    cli_history_len(h), run.finished ? "" : ", UNFINISHED");
		cli_verdict_print(stdout, &v);
	}
	rc = v.valid == CLI_VALID_TRUE   ? CLI_EXIT_OK
	    : v.valid == CLI_VALID_FALSE ? CLI_EXIT_INVALID
	                                 : CLI_EXIT_UNKNOWN;
out:
	if (have_v)
		cli_verdict_fini(&v);
	dtx_free(accounts);
	dtx_free(txns);
	dtx_free(sagas);
	cli_history_free(h);
	cli_run_record_fini(&run);
	cli_results_close(db);
	dtx_cfg_fini(check_opts, NCHECK_OPTS, &cfg);
	return rc;
}
