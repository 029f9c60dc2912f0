// SPDX-License-Identifier: MIT
//
// Checking a run: the plumbing every checker shares, the combined verdict
// (Jepsen's merge of valid/invalid/unknown), and printing it. `dtx check ID`
// (cli/cmd_check.c) reloads a stored run and checks it again through these.

#include <stdlib.h>
#include <string.h>

#include "harness_int.h"

const char *
hx_valid_name(hx_valid v)
{
	switch (v) {
	case HX_VALID_TRUE:
		return "true";
	case HX_VALID_FALSE:
		return "false";
	default:
		return "unknown";
	}
}

hx_valid
hx_valid_merge(hx_valid a, hx_valid b)
{
	if (a == HX_VALID_FALSE || b == HX_VALID_FALSE)
		return HX_VALID_FALSE;
	if (a == HX_VALID_UNKNOWN || b == HX_VALID_UNKNOWN)
		return HX_VALID_UNKNOWN;
	return HX_VALID_TRUE;
}

void
hx__check_init(hx_check *c, const char *name)
{
	memset(c, 0, sizeof(*c));
	c->name = name;
	c->valid = HX_VALID_UNKNOWN;
}

void
hx_check_fini(hx_check *c)
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
hx__check_anomaly(hx_check *c, const char *kind, const hx_op *op, bool has_txid,
    uint64_t txid, const char *gid, char *detail)
{
	if (detail == NULL)
		return DTX_ENOMEM;
	if (DTX_GROW(c->anoms, c->nanoms, c->anoms_cap, 8) != DTX_OK) {
		dtx_free(detail);
		return DTX_ENOMEM;
	}
	hx_anomaly a = { .checker = c->name,
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
hx__check_set(hx_check *c, hx_valid valid, hx_sb *summary, hx_sb *json)
{
	char *s = hx_sb_take(summary);
	char *j = hx_sb_take(json);
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

static const hx_jv *
field_of(const hx_op *op, const char *key, hx_jdoc **doc)
{
	*doc = NULL;
	if (op == NULL || op->value == NULL)
		return NULL;
	if (hx_json_parse(op->value, strlen(op->value), doc, NULL, 0) != DTX_OK)
		return NULL;
	return hx_jv_get(hx_jdoc_root(*doc), key);
}

bool
hx__op_txid(const hx_op *inv, const hx_op *comp, uint64_t *txid)
{
	const hx_op *ops[2] = { comp, inv };
	for (int i = 0; i < 2; i++) {
		hx_jdoc *doc;
		const hx_jv *v = field_of(ops[i], "txid", &doc);
		uint64_t t;
		bool ok = v != NULL && hx_jv_u64(v, &t) == DTX_OK;
		hx_jdoc_free(doc);
		if (ok) {
			*txid = t;
			return true;
		}
	}
	return false;
}

bool
hx__op_gid(const hx_op *inv, const hx_op *comp, char *gid, size_t len)
{
	const hx_op *ops[2] = { comp, inv };
	for (int i = 0; i < 2; i++) {
		hx_jdoc *doc;
		const hx_jv *v = field_of(ops[i], "gid", &doc);
		bool ok = v != NULL && v->type == HX_JV_STR && v->len > 0 &&
		    v->len < len;
		if (ok)
			memcpy(gid, v->s, v->len + 1);
		hx_jdoc_free(doc);
		if (ok)
			return true;
	}
	return false;
}

dtx_err
hx_bank_cfg_from_params(const char *params, int64_t **accounts,
    size_t *naccounts, int64_t *total, char *err, size_t errlen)
{
	hx_jdoc *doc = NULL;
	char perr[128];
	int64_t *acc = NULL;
	size_t n = 0;
	int64_t t;
	if (params == NULL) {
		snprintf(err, errlen, "run has no params");
		return DTX_EINVAL;
	}
	dtx_err rv =
	    hx_json_parse(params, strlen(params), &doc, perr, sizeof(perr));
	if (rv != DTX_OK) {
		snprintf(err, errlen, "params are not valid JSON (%s)",
		    rv == DTX_ENOMEM ? "out of memory" : perr);
		return rv;
	}
	const hx_jv *root = hx_jdoc_root(doc);
	const hx_jv *a = hx_jv_get(root, "accounts");
	int64_t count;
	rv = DTX_EINVAL;
	if (hx_jv_int(hx_jv_get(root, "total"), &t) != DTX_OK) {
		snprintf(err, errlen, "params need an integer \"total\"");
		goto fail;
	}
	if (a != NULL && hx_jv_int(a, &count) == DTX_OK && count > 0 &&
	    count <= 1000000) {
		n = (size_t)count;
		if ((acc = dtx_alloc(n * sizeof(*acc))) == NULL)
			goto nomem;
		for (size_t i = 0; i < n; i++)
			acc[i] = (int64_t)i;
	} else if (a != NULL && a->type == HX_JV_ARR && a->len > 0) {
		if ((acc = dtx_alloc(a->len * sizeof(*acc))) == NULL)
			goto nomem;
		for (const hx_jv *m = a->first; m; m = m->next) {
			if (hx_jv_int(m, &acc[n]) != DTX_OK) {
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
	hx_jdoc_free(doc);
	*accounts = acc;
	*naccounts = n;
	*total = t;
	return DTX_OK;
nomem:
	rv = DTX_ENOMEM;
	snprintf(err, errlen, "out of memory");
fail:
	dtx_free(acc);
	hx_jdoc_free(doc);
	return rv;
}

bool
hx_params_adopted(const char *params)
{
	hx_jdoc *doc;
	if (params == NULL ||
	    hx_json_parse(params, strlen(params), &doc, NULL, 0) != DTX_OK)
		return false;
	const hx_jv *v = hx_jv_get(hx_jdoc_root(doc), "created");
	bool adopted = v != NULL && v->type == HX_JV_BOOL && !v->b;
	hx_jdoc_free(doc);
	return adopted;
}

bool
hx_params_list_append(const char *params)
{
	hx_jdoc *doc;
	if (params == NULL ||
	    hx_json_parse(params, strlen(params), &doc, NULL, 0) != DTX_OK)
		return false;
	const hx_jv *v = hx_jv_get(hx_jdoc_root(doc), "workload");
	bool la = v != NULL && v->type == HX_JV_STR &&
	    strcmp(v->s, "list-append") == 0;
	hx_jdoc_free(doc);
	return la;
}

// ---------------------------------------------------------------- verdict

dtx_err
hx_check_run(const hx_history *h, const hx_run_cfg *cfg, const hx_txn_obs *obs,
    size_t nobs, const hx_saga_obs *sagas, size_t nsagas, hx_verdict *out)
{
	return hx_check_run_ex(h, cfg, NULL, obs, nobs, sagas, nsagas, out);
}

// The checkers hx_run_extra adds: replay and session, then the logs.
static dtx_err
run_extra(const hx_history *h, const hx_bank_cfg *bank, const hx_run_extra *x,
    const hx_txn_obs *obs, size_t nobs, hx_verdict *v)
{
	dtx_err rv;
	if (x == NULL)
		return DTX_OK;
	if (x->replay) {
		rv = hx_check_replay(h, bank, x->adopted, obs, nobs, x->cts,
		    x->ncts, &v->replay);
		if (rv != DTX_OK)
			return rv;
		rv = hx_check_session(h, bank->saga, &v->session);
		if (rv != DTX_OK) {
			hx_check_fini(&v->replay.c);
			return rv;
		}
		v->has_replay = true;
	}
	if (x->nlogs > 0) {
		rv = hx_check_logs(x->logs, x->nlogs, &v->logs);
		if (rv != DTX_OK)
			return rv;
		if ((rv = hx_check_logs_deaths(h, x->dead_after, &v->logs)) !=
		    DTX_OK) {
			hx_check_fini(&v->logs.c);
			return rv;
		}
		v->has_logs = true;
	}
	return DTX_OK;
}

// The list-append workload's checkers: stats, atomicity (its "txn" ops
// carry client txids), the list-append checker, and the logs. The bank,
// replay and session checkers look at balances, which it has none of.
static dtx_err
check_list_append(const hx_history *h, const hx_run_extra *extra,
    const hx_txn_obs *obs, size_t nobs, hx_verdict *out)
{
	hx_verdict v;
	memset(&v, 0, sizeof(v));
	v.list_append = true;
	dtx_err rv = hx_check_stats(h, &v.stats);
	if (rv != DTX_OK)
		return rv;
	if ((rv = hx_check_atomicity(h, obs, nobs, &v.atom)) != DTX_OK)
		goto fail;
	v.has_atom = true;
	if ((rv = hx_check_elle(h, obs, nobs, &v.elle)) != DTX_OK)
		goto fail;
	if (extra != NULL && extra->nlogs > 0) {
		if ((rv = hx_check_logs(extra->logs, extra->nlogs, &v.logs)) !=
		    DTX_OK)
			goto fail;
		v.has_logs = true;
		if ((rv = hx_check_logs_deaths(
		         h, extra->dead_after, &v.logs)) != DTX_OK)
			goto fail;
	}
	v.valid = HX_VALID_TRUE;
	for (size_t i = 0; i < hx_verdict_count(&v); i++)
		v.valid =
		    hx_valid_merge(v.valid, hx_verdict_check(&v, i)->valid);
	*out = v;
	return DTX_OK;
fail:
	hx_verdict_fini(&v);
	return rv;
}

dtx_err
hx_check_run_ex(const hx_history *h, const hx_run_cfg *cfg,
    const hx_run_extra *extra, const hx_txn_obs *obs, size_t nobs,
    const hx_saga_obs *sagas, size_t nsagas, hx_verdict *out)
{
	if (h == NULL || cfg == NULL || cfg->mode == NULL || out == NULL)
		return DTX_EINVAL;
	bool saga = strcmp(cfg->mode, "saga") == 0;
	if (!saga && strcmp(cfg->mode, "2pc") != 0 &&
	    strcmp(cfg->mode, "3pc") != 0 && strcmp(cfg->mode, "pc") != 0)
		return DTX_EINVAL;
	hx_verdict v;
	memset(&v, 0, sizeof(v));
	hx_bank_cfg bank = cfg->bank;
	bank.saga = saga;
	const char *wl = extra != NULL ? extra->workload : NULL;
	bool la = wl != NULL && strcmp(wl, "bank") != 0;
	if (la && (strcmp(wl, "list-append") != 0 || saga))
		return DTX_EINVAL;
	if (la)
		return check_list_append(h, extra, obs, nobs, out);
	dtx_err rv = hx_check_bank(h, &bank, &v.bank);
	if (rv != DTX_OK)
		return rv;
	rv = hx_check_stats(h, &v.stats);
	if (rv != DTX_OK)
		goto fail;
	if (saga) {
		rv = hx_check_saga(h, &bank, sagas, nsagas, &v.saga);
		v.has_saga = rv == DTX_OK;
	} else {
		rv = hx_check_atomicity(h, obs, nobs, &v.atom);
		v.has_atom = rv == DTX_OK;
	}
	if (rv != DTX_OK ||
	    (rv = run_extra(h, &bank, extra, obs, nobs, &v)) != DTX_OK)
		goto fail;
	v.valid = HX_VALID_TRUE;
	for (size_t i = 0; i < hx_verdict_count(&v); i++)
		v.valid =
		    hx_valid_merge(v.valid, hx_verdict_check(&v, i)->valid);
	*out = v;
	return DTX_OK;
fail:
	hx_verdict_fini(&v);
	return rv;
}

void
hx_verdict_fini(hx_verdict *v)
{
	if (v == NULL)
		return;
	hx_check_fini(&v->bank.c);
	hx_stats_fini(&v->stats);
	if (v->has_atom)
		hx_check_fini(&v->atom.c);
	if (v->has_saga)
		hx_check_fini(&v->saga.c);
	if (v->has_replay) {
		hx_check_fini(&v->replay.c);
		hx_check_fini(&v->session.c);
	}
	if (v->has_logs)
		hx_check_fini(&v->logs.c);
	if (v->list_append)
		hx_check_fini(&v->elle.c);
	memset(v, 0, sizeof(v[0]));
}

// The checker table: each result in the order the verdict lists them,
// present or not.
static const hx_check *
slot(const hx_verdict *v, size_t k)
{
	switch (k) {
	case 0:
		return v->list_append ? NULL : &v->bank.c;
	case 1:
		return &v->stats.c;
	case 2:
		return v->has_atom ? &v->atom.c : NULL;
	case 3:
		return v->has_saga   ? &v->saga.c
		    : v->list_append ? &v->elle.c
		                     : NULL;
	case 4:
		return v->has_replay ? &v->replay.c : NULL;
	case 5:
		return v->has_replay ? &v->session.c : NULL;
	case 6:
		return v->has_logs ? &v->logs.c : NULL;
	default:
		return NULL;
	}
}

#define NSLOTS 7

size_t
hx_verdict_count(const hx_verdict *v)
{
	size_t n = 0;
	for (size_t k = 0; k < NSLOTS; k++)
		if (slot(v, k) != NULL)
			n++;
	return n;
}

const hx_check *
hx_verdict_check(const hx_verdict *v, size_t i)
{
	for (size_t k = 0; k < NSLOTS; k++) {
		const hx_check *c = slot(v, k);
		if (c != NULL && i-- == 0)
			return c;
	}
	return NULL;
}

void
hx_verdict_print(FILE *out, const hx_verdict *v)
{
	fprintf(out, "verdict: %s\n",
	    v->valid == HX_VALID_TRUE        ? "valid"
	        : v->valid == HX_VALID_FALSE ? "INVALID"
	                                     : "unknown");
	for (size_t i = 0; i < hx_verdict_count(v); i++) {
		const hx_check *c = hx_verdict_check(v, i);
		fprintf(out, "  %-10s %-7s %s\n", c->name,
		    hx_valid_name(c->valid), c->summary ? c->summary : "");
		size_t shown = 0;
		for (size_t k = 0; k < c->nanoms && shown < 10; k++, shown++) {
			const hx_anomaly *a = &c->anoms[k];
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
hx_verdict_json(hx_json *j, const char *key, const hx_verdict *v)
{
	hx_json_obj_begin(j, key);
	hx_json_verdict(j, "valid", v->valid);
	hx_json_obj_begin(j, "checkers");
	for (size_t i = 0; i < hx_verdict_count(v); i++) {
		const hx_check *c = hx_verdict_check(v, i);
		hx_json_key(j, c->name);
		fputs(c->json ? c->json : "null", j->out);
	}
	hx_json_obj_end(j);
	hx_json_obj_end(j);
}
