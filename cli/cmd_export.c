// SPDX-License-Identifier: MIT
//
// dtx results export ID --format json|edn: a stored run's history for
// other tools. JSON is one object, {"run":{...},"history":[op...]}, each
// op {"index","time","process","type","f","value","error"} with process
// -1 for the nemesis and value the op's JSON value (or null). EDN is
// Jepsen's history.edn: one map per line, {:index 0, :time 12, :process 0,
// :type :invoke, :f :transfer, :value {...}}, with :process :nemesis for
// the nemesis and keywords for :type, :f and map keys (account numbers
// become integers, as Jepsen's bank test writes them), so that Elle and
// Jepsen's checkers read it as their own.

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct export_cfg {
	char *results;
	char *format;
} export_cfg;

static const dtx_cfg_opt export_opts[] = {
	{ "results", DTX_CFG_STR, offsetof(export_cfg, results), 0, 0,
	    HX_RESULTS_DEFAULT, "results database file" },
	{ "format", DTX_CFG_STR, offsetof(export_cfg, format), 0, 0, "json",
	    "json or edn" },
};
#define NEXPORT (sizeof(export_opts) / sizeof(export_opts[0]))

static void
edn_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (*p == '\t')
			fputs("\\t", out);
		else if (*p == '\r')
			fputs("\\r", out);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

// True when s can be written as the keyword :s.
static bool
keyword_ok(const char *s)
{
	if (s[0] == '\0' || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || strchr("-_.?!*+<>=", c)))
			return false;
	}
	return true;
}

// True when s is a decimal integer that fits an int64 ("0", "17", "-3").
static bool
int_key(const char *s)
{
	const char *d = s[0] == '-' ? s + 1 : s;
	if (d[0] == '\0' || (d[0] == '0' && d[1] != '\0') || strlen(d) > 18)
		return false;
	for (const char *p = d; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

// A keyword when it can be one, else a string.
static void
edn_name(FILE *out, const char *s)
{
	if (keyword_ok(s))
		fprintf(out, ":%s", s);
	else
		edn_str(out, s);
}

static void
edn_num(FILE *out, const hx_jv *v)
{
	if (v->is_int) {
		// Beyond int64 EDN needs the N (arbitrary precision) suffix.
		bool big = v->neg ? v->mag > (uint64_t)INT64_MAX + 1
		                  : v->mag > (uint64_t)INT64_MAX;
		fprintf(out, "%s%" PRIu64 "%s", v->neg ? "-" : "", v->mag,
		    big ? "N" : "");
		return;
	}
	if (isinf(v->d)) { // a JSON number too large for a double
		fputs(v->d < 0 ? "##-Inf" : "##Inf", out);
		return;
	}
	char buf[40];
	hx_json_fmt_double(buf, sizeof(buf), v->d);
	// A float needs a '.' or an exponent, or EDN reads an integer.
	fprintf(out, "%s%s", buf, strpbrk(buf, ".eE") ? "" : ".0");
}

static void
edn_value(FILE *out, const hx_jv *v)
{
	switch (v->type) {
	case HX_JV_NULL:
		fputs("nil", out);
		break;
	case HX_JV_BOOL:
		fputs(v->b ? "true" : "false", out);
		break;
	case HX_JV_NUM:
		edn_num(out, v);
		break;
	case HX_JV_STR:
		edn_str(out, v->s);
		break;
	case HX_JV_ARR:
		fputc('[', out);
		for (const hx_jv *m = v->first; m; m = m->next) {
			if (m != v->first)
				fputc(' ', out);
			edn_value(out, m);
		}
		fputc(']', out);
		break;
	case HX_JV_OBJ:
		fputc('{', out);
		for (const hx_jv *m = v->first; m; m = m->next) {
			if (m != v->first)
				fputs(", ", out);
			if (int_key(m->key))
				fputs(m->key, out);
			else
				edn_name(out, m->key);
			fputc(' ', out);
			edn_value(out, m);
		}
		fputc('}', out);
		break;
	}
}

// One op as one EDN map on one line. A value that is not valid JSON (a
// damaged row) is written as a string rather than dropped.
void
cli_edn_op(FILE *out, const hx_op *op)
{
	fprintf(out, "{:index %" PRId64 ", :time %" PRId64 ", :process ",
	    op->index, op->time_ns);
	if (op->process == HX_PROC_NEMESIS)
		fputs(":nemesis", out);
	else
		fprintf(out, "%" PRId64, op->process);
	fprintf(out, ", :type :%s, :f ", hx_op_type_name(op->type));
	edn_name(out, op->f);
	if (op->value != NULL) {
		hx_jdoc *d = NULL;
		fputs(", :value ", out);
		if (hx_json_parse(op->value, strlen(op->value), &d, NULL, 0) ==
		    DTX_OK)
			edn_value(out, hx_jdoc_root(d));
		else
			edn_str(out, op->value);
		hx_jdoc_free(d);
	} else {
		fputs(", :value nil", out);
	}
	if (op->error != NULL) {
		fputs(", :error ", out);
		edn_str(out, op->error);
	}
	fputs("}\n", out);
}

static void
json_export(const hx_run_record *r, const hx_history *h)
{
	hx_json j;
	hx_json_begin(&j, stdout);
	hx_json_obj_begin(&j, "run");
	hx_json_int(&j, "id", r->id);
	hx_json_str(&j, "started", r->started);
	hx_json_str(&j, "finished", r->finished);
	hx_json_str(&j, "mode", r->mode);
	hx_json_str(&j, "nemesis", r->nemesis);
	hx_json_u64(&j, "seed", r->seed);
	hx_json_raw(&j, "params", r->params);
	hx_json_verdict(&j, "valid", r->finished ? r->valid : HX_VALID_UNKNOWN);
	hx_json_obj_end(&j);
	hx_json_arr_begin(&j, "history");
	for (size_t i = 0; i < hx_history_len(h); i++) {
		const hx_op *op = hx_history_get(h, i);
		hx_json_obj_begin(&j, NULL);
		hx_json_int(&j, "index", op->index);
		hx_json_int(&j, "time", op->time_ns);
		hx_json_int(&j, "process", op->process);
		hx_json_str(&j, "type", hx_op_type_name(op->type));
		hx_json_str(&j, "f", op->f);
		if (op->value != NULL)
			hx_json_raw(&j, "value", op->value);
		else
			hx_json_str(&j, "value", NULL);
		if (op->error != NULL)
			hx_json_str(&j, "error", op->error);
		hx_json_obj_end(&j);
	}
	hx_json_arr_end(&j);
	hx_json_end(&j);
}

int
cli_results_export(int argc, char **argv)
{
	export_cfg cfg = { 0 };
	hx_results *db = NULL;
	hx_run_record r = { 0 };
	hx_history *h = NULL;
	char *pos[1], err[600];
	int npos = 0;
	int64_t id;
	int rc = hx_parse_flags("dtx results export", export_opts, NEXPORT,
	    &cfg, argc, argv, pos, 1, &npos);
	if (rc != 0)
		goto out;
	rc = HX_EXIT_USAGE;
	if (cli_run_id_arg("dtx results export",
	        "[--format json|edn] [--results FILE]", pos, npos,
	        &id) != DTX_OK)
		goto out;
	bool edn = strcmp(cfg.format, "edn") == 0;
	if (!edn && strcmp(cfg.format, "json") != 0) {
		fprintf(stderr,
		    "dtx results export: --format must be json or edn\n");
		goto out;
	}
	rc = HX_EXIT_INTERNAL;
	if (hx_results_open(cfg.results, false, &db, err, sizeof(err)) !=
	    DTX_OK) {
		fprintf(stderr, "dtx results export: %s\n", err);
		goto out;
	}
	if (hx_results_load_run(db, id, &r) != DTX_OK ||
	    hx_results_load_history(db, id, &h) != DTX_OK) {
		fprintf(
		    stderr, "dtx results export: %s\n", hx_results_errmsg(db));
		goto out;
	}
	if (edn)
		for (size_t i = 0; i < hx_history_len(h); i++)
			cli_edn_op(stdout, hx_history_get(h, i));
	else
		json_export(&r, h);
	fflush(stdout);
	rc = HX_EXIT_OK;
out:
	hx_history_free(h);
	hx_run_record_fini(&r);
	hx_results_close(db);
	dtx_cfg_fini(export_opts, NEXPORT, &cfg);
	return rc < 0 ? HX_EXIT_OK : rc;
}
