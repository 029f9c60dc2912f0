// SPDX-License-Identifier: MIT
//
// The log checker (Jepsen's log-file-pattern): every record a daemon logged
// at level error, and every line with one of an agreed list of anomaly
// message ids, is an anomaly naming the node, the file and the line. A
// daemon that says it contradicted a decision ("COMMIT_ABORTED ... aborted
// here") has found a bug even when the history looks fine.

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "harness_int.h"

// Message ids that are anomalies at any level: a participant told to
// commit what it aborted, or to abort what it committed.
static const char *const anomaly_ids[] = {
	"COMMIT_ABORTED", "ABORT_COMMITTED",
	"HEURHAZARD", // a decision by hand the coordinator contradicted
};

// Whether a log line is an anomaly: level error, or an anomaly message
// id. A line is a logfmt or JSON record (common.h: level= and msg=); a line
// of the older "<time> <LEVEL> <name> <MSGID> text" layout (runs stored
// before records) is read by position.
static bool
flagged(const char *line)
{
	char level[16] = "", msgid[64] = "", scratch[2048];
	dtx_log_kv kv[32];
	int n = dtx_log_parse(
	    line, strcspn(line, "\r\n"), kv, 32, scratch, sizeof(scratch));
	if (n > 0) {
		const char *lv = dtx_log_get(kv, n, "level");
		const char *id = dtx_log_get(kv, n, "msg");
		snprintf(level, sizeof(level), "%s", lv != NULL ? lv : "");
		snprintf(msgid, sizeof(msgid), "%s", id != NULL ? id : "");
	} else if (sscanf(line, "%*s %15s %*s %63s", level, msgid) != 2) {
		return false;
	}
	if (strcasecmp(level, "error") == 0)
		return true;
	for (size_t i = 0; i < sizeof(anomaly_ids) / sizeof(anomaly_ids[0]);
	     i++)
		if (strcmp(msgid, anomaly_ids[i]) == 0)
			return true;
	return false;
}

// The txid= or gid= a record names, if any.
static void
line_ref(const char *line, uint64_t *txid, char *gid, size_t len)
{
	char scratch[2048];
	dtx_log_kv kv[32];
	int n = dtx_log_parse(
	    line, strcspn(line, "\r\n"), kv, 32, scratch, sizeof(scratch));
	const char *t = n > 0 ? dtx_log_get(kv, n, "txid") : NULL;
	const char *g = n > 0 ? dtx_log_get(kv, n, "gid") : NULL;
	if (t != NULL)
		*txid = strtoull(t, NULL, 10);
	if (g != NULL && *g != '\0')
		snprintf(gid, len, "%s", g);
}

static char *
line_detail(const hx_node_log *l, size_t lineno, const char *line)
{
	hx_sb d = { 0 };
	size_t n = strcspn(line, "\r\n");
	char *text = dtx_alloc(n + 1);
	if (text == NULL)
		return NULL;
	memcpy(text, line, n);
	text[n] = '\0';
	hx_sb_printf(&d, "{\"node\":%u,\"file\":", l->node);
	hx_sb_json_str(&d, l->path);
	hx_sb_printf(&d, ",\"line\":%zu,\"text\":", lineno);
	hx_sb_json_str(&d, text);
	hx_sb_printf(&d, "}");
	dtx_free(text);
	return hx_sb_take(&d);
}

// Scans one file; a file that cannot be opened is counted, not an error.
static dtx_err
scan(hx_logs_result *r, const hx_node_log *l)
{
	FILE *f = fopen(l->path, "r");
	if (f == NULL) {
		r->unreadable++;
		return DTX_OK;
	}
	r->files++;
	char line[2048];
	size_t lineno = 0;
	dtx_err rv = DTX_OK;
	long at = ftell(f);
	while (rv == DTX_OK && fgets(line, sizeof(line), f) != NULL) {
		uint64_t off = at < 0 ? 0 : (uint64_t)at;
		at = ftell(f);
		lineno++;
		r->lines++;
		if (!flagged(line))
			continue;
		bool expected = false;
		for (size_t i = 0; i < l->nexpected && !expected; i++)
			expected = off >= l->expected[i].from &&
			    off < l->expected[i].to;
		if (expected) {
			r->expected++;
			continue;
		}
		r->flagged++;
		uint64_t txid = 0;
		char gid[PROTO_MAX_STR + 1] = "";
		line_ref(line, &txid, gid, sizeof(gid));
		rv = hx__check_anomaly(&r->c, "log-anomaly", NULL, txid != 0,
		    txid, gid[0] ? gid : NULL, line_detail(l, lineno, line));
		// A long line continues in the next buffer: skip the rest.
		while (rv == DTX_OK && strchr(line, '\n') == NULL &&
		    fgets(line, sizeof(line), f) != NULL)
			at = ftell(f);
	}
	fclose(f);
	return rv;
}

dtx_err
hx_check_logs(const hx_node_log *logs, size_t n, hx_logs_result *out)
{
	if (out == NULL || (n > 0 && logs == NULL))
		return DTX_EINVAL;
	hx_logs_result r;
	memset(&r, 0, sizeof(r));
	hx__check_init(&r.c, "logs");
	dtx_err rv = DTX_OK;
	for (size_t i = 0; rv == DTX_OK && i < n; i++)
		rv = scan(&r, &logs[i]);
	if (rv != DTX_OK)
		goto fail;
	hx_valid valid = r.flagged > 0 ? HX_VALID_FALSE
	    : r.files == 0             ? HX_VALID_UNKNOWN
	                               : HX_VALID_TRUE;
	hx_sb s = { 0 }, j = { 0 };
	hx_sb_printf(&s,
	    "%zu node logs (%zu lines): %zu lines at ERROR or with an "
	    "anomaly id (",
	    r.files, r.lines, r.flagged);
	for (size_t i = 0; i < sizeof(anomaly_ids) / sizeof(anomaly_ids[0]);
	     i++)
		hx_sb_printf(&s, "%s%s", i ? ", " : "", anomaly_ids[i]);
	hx_sb_printf(&s, ")");
	if (r.expected > 0)
		hx_sb_printf(&s,
		    "; %zu more were expected (daemons refusing to start on "
		    "data a corrupt fault damaged)",
		    r.expected);
	if (r.unreadable > 0)
		hx_sb_printf(&s, "; %zu could not be read", r.unreadable);
	hx_sb_printf(&j,
	    "{\"valid\":%s,\"files\":%zu,\"lines\":%zu,\"flagged\":%zu,"
	    "\"expected\":%zu,\"unreadable\":%zu}",
	    hx_valid_json(valid), r.files, r.lines, r.flagged, r.expected,
	    r.unreadable);
	if ((rv = hx__check_set(&r.c, valid, &s, &j)) != DTX_OK)
		goto fail;
	*out = r;
	return DTX_OK;
fail:
	hx_check_fini(&r.c);
	return rv;
}

// A "daemon-died" anomaly for node id, found dead at at_ns (op: the
// history op that found it, or NULL).
static dtx_err
died(hx_logs_result *r, const hx_op *op, unsigned long id, int64_t at_ns)
{
	hx_sb d = { 0 };
	hx_sb_printf(&d, "{\"node\":%lu,\"found_dead_at_ns\":%lld}", id,
	    (long long)at_ns);
	dtx_err rv = hx__check_anomaly(
	    &r->c, "daemon-died", op, false, 0, NULL, hx_sb_take(&d));
	if (rv == DTX_OK)
		r->died++;
	return rv;
}

dtx_err
hx_check_logs_deaths(
    const hx_history *h, uint32_t dead_after, hx_logs_result *r)
{
	size_t n = hx_history_len(h), before = r->died;
	for (size_t i = 0; i < n; i++) {
		const hx_op *op = hx_history_get(h, i);
		const char *at;
		if (op->process != HX_PROC_NEMESIS || op->value == NULL ||
		    (at = strstr(op->value, "\"died_unexpectedly\":[")) == NULL)
			continue;
		// Each id of the list (the value is valid JSON: digits and
		// commas up to the bracket).
		for (at = strchr(at, '[') + 1; *at >= '0' && *at <= '9';) {
			char *end;
			unsigned long id = strtoul(at, &end, 10);
			dtx_err rv = died(r, op, id, op->time_ns);
			if (rv != DTX_OK)
				return rv;
			at = *end == ',' ? end + 1 : end;
		}
	}
	int64_t end_ns =
	    n > 0 ? hx_history_get(h, n - 1)->time_ns : 0; // after the run
	for (unsigned long id = 0; id < 32; id++) {
		dtx_err rv = dead_after & (1u << id) ? died(r, NULL, id, end_ns)
		                                     : DTX_OK;
		if (rv != DTX_OK)
			return rv;
	}
	if (r->died == before)
		return DTX_OK;
	hx_sb s = { 0 }, j = { 0 };
	hx_sb_printf(&s,
	    "%s; %zu daemon(s) died though no fault killed them, or were "
	    "found dead after recovery (a crash or a refused start: see "
	    "their logs and the system log)",
	    r->c.summary ? r->c.summary : "", r->died);
	// The same object with "valid" false and the count added (its
	// "valid" member comes first, as hx_check_logs writes it).
	const char *rest = r->c.json ? strchr(r->c.json, ',') : NULL;
	size_t rl = rest ? strlen(rest) : 0;
	if (rl > 1)
		hx_sb_printf(&j, "{\"valid\":false%.*s,\"died\":%zu}",
		    (int)(rl - 1), rest, r->died);
	else
		hx_sb_printf(&j, "{\"valid\":false,\"died\":%zu}", r->died);
	return hx__check_set(&r->c, HX_VALID_FALSE, &s, &j);
}

void
hx_node_logs_free(hx_node_log *logs, size_t n)
{
	if (logs == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		dtx_free((char *)logs[i].path);
		dtx_free(logs[i].expected);
	}
	dtx_free(logs);
}

// A corrupt fault's refused start: its node and the log bytes it wrote.
static bool
refusal(const hx_op *op, uint32_t *node, hx_byte_range *r)
{
	hx_jdoc *doc = NULL;
	bool yes = false;
	uint64_t id, from, to;
	if (op->process != HX_PROC_NEMESIS || strcmp(op->f, "corrupt") != 0 ||
	    op->value == NULL ||
	    hx_json_parse(op->value, strlen(op->value), &doc, NULL, 0) !=
	        DTX_OK)
		return false;
	const hx_jv *root = hx_jdoc_root(doc);
	const hx_jv *out = hx_jv_get(root, "outcome");
	const hx_jv *tg = hx_jv_get(root, "targets");
	if (out != NULL && out->type == HX_JV_STR &&
	    strcmp(out->s, "refused") == 0 && tg != NULL &&
	    tg->type == HX_JV_ARR && hx_jv_u64(tg->first, &id) == DTX_OK &&
	    hx_jv_u64(hx_jv_get(root, "log_from"), &from) == DTX_OK &&
	    hx_jv_u64(hx_jv_get(root, "log_to"), &to) == DTX_OK) {
		*node = (uint32_t)id;
		r->from = from;
		r->to = to;
		yes = true;
	}
	hx_jdoc_free(doc);
	return yes;
}

dtx_err
hx_node_logs_expect(const hx_history *h, hx_node_log *logs, size_t n)
{
	size_t len = hx_history_len(h);
	for (size_t i = 0; i < len; i++) {
		uint32_t node;
		hx_byte_range r;
		if (!refusal(hx_history_get(h, i), &node, &r))
			continue;
		for (size_t k = 0; k < n; k++) {
			hx_node_log *l = &logs[k];
			if (l->node != node)
				continue;
			hx_byte_range *v = dtx_realloc(
			    l->expected, (l->nexpected + 1) * sizeof(*v));
			if (v == NULL)
				return DTX_ENOMEM;
			v[l->nexpected++] = r;
			l->expected = v;
		}
	}
	return DTX_OK;
}

// The node id of a report's log file name "<role>-<id>.log"; false for
// other names.
static bool
log_name_id(const char *name, uint32_t *id)
{
	size_t n = strlen(name);
	if (n < 6 || strcmp(name + n - 4, ".log") != 0)
		return false;
	const char *dash = strrchr(name, '-');
	if (dash == NULL || dash[1] < '0' || dash[1] > '9')
		return false;
	char *end;
	unsigned long v = strtoul(dash + 1, &end, 10);
	if (strcmp(end, ".log") != 0 || v > UINT32_MAX)
		return false;
	*id = (uint32_t)v;
	return true;
}

dtx_err
hx_node_logs_in_dir(const char *dir, hx_node_log **out, size_t *n)
{
	char ld[PATH_MAX];
	snprintf(ld, sizeof(ld), "%s/logs", dir);
	DIR *d = opendir(ld);
	hx_node_log *logs = NULL;
	size_t k = 0, cap = 0;
	dtx_err rv = DTX_OK;
	if (d == NULL) {
		*out = NULL;
		*n = 0;
		return DTX_OK;
	}
	for (struct dirent *e; rv == DTX_OK && (e = readdir(d)) != NULL;) {
		uint32_t id;
		char path[PATH_MAX + 256];
		if (!log_name_id(e->d_name, &id))
			continue;
		snprintf(path, sizeof(path), "%s/%s", ld, e->d_name);
		if ((rv = DTX_GROW(logs, k, cap, 8)) != DTX_OK)
			break;
		memset(&logs[k], 0, sizeof(logs[k]));
		logs[k].node = id;
		if ((logs[k].path = dtx_strdup(path)) == NULL)
			rv = DTX_ENOMEM;
		else
			k++;
	}
	closedir(d);
	if (rv != DTX_OK) {
		hx_node_logs_free(logs, k);
		return rv;
	}
	*out = logs;
	*n = k;
	return DTX_OK;
}
