// SPDX-License-Identifier: MIT
//
// The per-run report directory: latency and throughput plots drawn by
// gnuplot with fault windows shaded (as Jepsen draws nemesis activity), a
// self-contained HTML timeline with one column per process and one box per
// operation, and an index page with the verdict.

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness_int.h"

extern char **environ;

// Jepsen's colours for op types; fault kinds have fixed colours
// (hx__fault_color), the same as in the timeline.
static const char *const type_color[] = { "#888888", "#81BFFC", "#FF1E90",
	"#FFA400" };
// The anomalies of one report that get a trace page (each reads every
// node log of the run).
#define HX_REPORT_TRACES 20

typedef struct report {
	const char *dir;
	const hx_history *h;
	const hx_fault *faults;
	size_t nfaults;
	int64_t *pairs;
	size_t n;
	int64_t end_ns;
	const hx_run_info *info; // NULL when not known
	const hx_jv *params; // info's parameters, parsed; NULL when none
} report;

static FILE *
open_in(const report *r, const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", r->dir, name);
	return fopen(path, "w");
}

static dtx_err
close_file(FILE *f)
{
	bool bad = ferror(f) != 0;
	if (fclose(f) != 0)
		bad = true;
	return bad ? DTX_EIO : DTX_OK;
}

static bool
have_gnuplot(void)
{
	const char *path = getenv("PATH");
	if (path == NULL)
		path = "/usr/bin:/bin";
	const char *p = path;
	while (*p) {
		const char *c = strchr(p, ':');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		char buf[4096];
		if (len > 0 && len < sizeof(buf) - 16) {
			memcpy(buf, p, len);
			strcpy(buf + len, "/gnuplot");
			if (access(buf, X_OK) == 0)
				return true;
		}
		if (c == NULL)
			break;
		p = c + 1;
	}
	return false;
}

// Runs "gnuplot script" inside the report directory, its output going to
// gnuplot.log there.
static dtx_err
run_gnuplot(const report *r, const char *script)
{
	posix_spawn_file_actions_t fa;
	char log[4096];
	snprintf(log, sizeof(log), "%s/gnuplot.log", r->dir);
	if (posix_spawn_file_actions_init(&fa) != 0)
		return DTX_ENOMEM;
	posix_spawn_file_actions_addopen(
	    &fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addchdir_np(&fa, r->dir);
	char *argv[] = { "gnuplot", (char *)script, NULL };
	pid_t pid;
	int rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return dtx_from_errno(rc);
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return dtx_from_errno(errno);
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? DTX_OK : DTX_EIO;
}

// Writes a gnuplot string literal: single quotes, with quotes doubled.
static void
gp_str(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; s && *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		if (*s != '\n' && *s != '\r')
			fputc(*s, f);
	}
	fputc('\'', f);
}

// Shaded rectangles for the fault windows and a key entry per kind.
static void
gp_faults(FILE *f, const report *r, hx_sb *keys)
{
	for (size_t i = 0; i < r->nfaults; i++) {
		const hx_fault *w = &r->faults[i];
		double x0 = (double)w->start_ns / 1e9;
		double x1 =
		    (double)(w->end_ns < 0 ? r->end_ns : w->end_ns) / 1e9;
		if (x1 - x0 < 0.01)
			x1 = x0 + 0.01;
		fprintf(f,
		    "set object %zu rect from %.6f, graph 0 to %.6f, graph 1 "
		    "fc rgb '%s' fs transparent solid 0.35 noborder behind\n",
		    i + 1, x0, x1, hx__fault_color(w->kind));
		bool first = true;
		for (size_t k = 0; k < i; k++)
			if (strcmp(r->faults[k].kind, w->kind) == 0)
				first = false;
		if (first) {
			hx_sb_printf(keys,
			    ", keyentry with boxes fc rgb '%s' fs solid 0.35 "
			    "noborder title '",
			    hx__fault_color(w->kind));
			for (const char *p = w->kind; *p; p++)
				hx_sb_printf(
				    keys, *p == '\'' ? "''" : "%c", *p);
			hx_sb_printf(keys, "'");
		}
	}
}

// Starts the gnuplot script <base>.gp that draws <base>.png: the
// terminal, the title, the time axis, the y axis commands in yaxis and
// the fault windows, whose key entries it leaves in keys for gp_finish to
// append to the plot command. NULL when the script cannot be created.
static FILE *
gp_start(const report *r, const char *base, const char *title,
    const char *yaxis, hx_sb *keys)
{
	char name[64];
	snprintf(name, sizeof(name), "%s.gp", base);
	FILE *f = open_in(r, name);
	if (f == NULL)
		return NULL;
	snprintf(name, sizeof(name), "%s.png", base);
	fprintf(f, "set terminal pngcairo size 1000,500 noenhanced\n");
	fprintf(f, "set output ");
	gp_str(f, name);
	fprintf(f, "\nset title ");
	gp_str(f, title);
	fprintf(f,
	    "\nset xlabel 'time (s)'\nset grid\n"
	    "set key outside right top\n");
	fprintf(f, "set xrange [0:%.6f]\n",
	    r->end_ns > 0 ? (double)r->end_ns / 1e9 : 1.0);
	fputs(yaxis, f);
	gp_faults(f, r, keys);
	return f;
}

// Ends the plot command with the fault windows' key entries and closes
// the script.
static dtx_err
gp_finish(FILE *f, hx_sb *keys)
{
	char *k = hx_sb_take(keys);
	fprintf(f, "%s\n", k ? k : "");
	dtx_free(k);
	return close_file(f);
}

static dtx_err
write_latency(const report *r, size_t *points)
{
	FILE *d[4] = { NULL, NULL, NULL, NULL };
	static const char *const names[4] = { NULL, "latency-ok.dat",
		"latency-fail.dat", "latency-info.dat" };
	size_t count[4] = { 0 };
	dtx_err rv = DTX_OK;
	for (int t = HX_OP_OK; t <= HX_OP_INFO; t++)
		if ((d[t] = open_in(r, names[t])) == NULL)
			rv = DTX_EIO;
	for (size_t i = 0; rv == DTX_OK && i < r->n; i++) {
		const hx_op *op = hx_history_get(r->h, i);
		if (op->type != HX_OP_INVOKE ||
		    op->process == HX_PROC_NEMESIS || r->pairs[i] < 0)
			continue;
		const hx_op *c = hx_history_get(r->h, (size_t)r->pairs[i]);
		double ms = (double)(c->time_ns - op->time_ns) / 1e6;
		if (ms < 0.001)
			ms = 0.001; // log scale
		fprintf(d[c->type], "%.6f %.6f %s\n", (double)op->time_ns / 1e9,
		    ms, op->f);
		count[c->type]++;
	}
	for (int t = HX_OP_OK; t <= HX_OP_INFO; t++)
		if (d[t] != NULL && close_file(d[t]) != DTX_OK)
			rv = DTX_EIO;
	if (rv != DTX_OK)
		return rv;
	hx_sb keys = { 0 };
	FILE *f = gp_start(r, "latency", "latency (one point per operation)",
	    "set ylabel 'latency (ms)'\nset logscale y\n", &keys);
	if (f == NULL)
		return DTX_EIO;
	// gnuplot refuses a plot without any point; with no completed op
	// the axes are drawn with a fixed range and an out-of-range curve.
	if (count[1] + count[2] + count[3] == 0)
		fprintf(f, "set yrange [0.1:1000]\nplot 1e30 notitle");
	else
		fprintf(f, "plot NaN notitle");
	for (int t = HX_OP_OK; t <= HX_OP_INFO; t++) {
		if (count[t] == 0)
			continue;
		fprintf(f,
		    ", '%s' using 1:2 with points pt 7 ps 0.5 lc rgb '%s' "
		    "title '%s'",
		    names[t], type_color[t], hx_op_type_name((hx_op_type)t));
	}
	*points = count[1] + count[2] + count[3];
	return gp_finish(f, &keys);
}

static dtx_err
write_rate(const report *r)
{
	size_t nsec = (size_t)(r->end_ns / 1000000000) + 1;
	size_t(*rate)[4] = dtx_calloc(nsec, sizeof(*rate));
	if (rate == NULL)
		return DTX_ENOMEM;
	for (size_t i = 0; i < r->n; i++) {
		const hx_op *op = hx_history_get(r->h, i);
		if (op->type == HX_OP_INVOKE || op->process == HX_PROC_NEMESIS)
			continue;
		size_t s = (size_t)(op->time_ns / 1000000000);
		if (s < nsec)
			rate[s][op->type]++;
	}
	FILE *d = open_in(r, "rate.dat");
	if (d == NULL) {
		dtx_free(rate);
		return DTX_EIO;
	}
	fprintf(d, "# second ok fail info (completions per second)\n");
	for (size_t s = 0; s < nsec; s++)
		fprintf(d, "%.1f %zu %zu %zu\n", (double)s + 0.5, rate[s][1],
		    rate[s][2], rate[s][3]);
	dtx_free(rate);
	if (close_file(d) != DTX_OK)
		return DTX_EIO;
	hx_sb keys = { 0 };
	FILE *f = gp_start(r, "rate", "throughput (completions per second)",
	    "set ylabel 'ops/s'\nset yrange [0:*]\n", &keys);
	if (f == NULL)
		return DTX_EIO;
	fprintf(f, "plot NaN notitle");
	for (int t = HX_OP_OK; t <= HX_OP_INFO; t++)
		fprintf(f,
		    ", 'rate.dat' using 1:%d with linespoints pt 7 ps 0.4 lw 2 "
		    "lc rgb '%s' title '%s'",
		    t + 1, type_color[t], hx_op_type_name((hx_op_type)t));
	return gp_finish(f, &keys);
}

static void
html_esc(FILE *f, const char *s)
{
	// The characters HTML text and attribute values cannot hold as they
	// are, each with the entity that stands for it.
	static const char *const ent[256] = {
		['&'] = "&amp;",
		['<'] = "&lt;",
		['>'] = "&gt;",
		['"'] = "&quot;",
		['\''] = "&#39;",
	};
	for (; s && *s; s++) {
		const char *e = ent[(unsigned char)*s];
		if (e != NULL)
			fputs(e, f);
		else
			fputc(*s, f);
	}
}

static bool
generated(const char *name)
{
	static const char *const mine[] = { "index.html", "timeline.html",
		"timeline-data.js", "latency.png", "rate.png", "latency.gp",
		"rate.gp", "latency-ok.dat", "latency-fail.dat",
		"latency-info.dat", "rate.dat", "gnuplot.log", ".", ".." };
	for (size_t i = 0; i < sizeof(mine) / sizeof(mine[0]); i++)
		if (strcmp(name, mine[i]) == 0)
			return true;
	return false;
}

// Appends s as one POSIX shell word: as it is when it holds only
// characters a shell leaves alone, else single-quoted.
static void
sh_word(hx_sb *sb, const char *s)
{
	bool plain = *s != '\0';
	for (const char *p = s; *p; p++)
		if (!strchr(
		        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		        "0123456789,._-+:/=",
		        *p))
			plain = false;
	if (plain) {
		hx_sb_printf(sb, " %s", s);
		return;
	}
	hx_sb_printf(sb, " '");
	for (const char *p = s; *p; p++)
		hx_sb_printf(sb, *p == '\'' ? "'\\''" : "%c", *p);
	hx_sb_printf(sb, "'");
}

static double
param_num(const hx_jv *params, const char *key, double dflt)
{
	const hx_jv *v = hx_jv_get(params, key);
	return v && v->type == HX_JV_NUM ? v->d : dflt;
}

static const char *
param_str(const hx_jv *params, const char *key)
{
	const hx_jv *v = hx_jv_get(params, key);
	return v && v->type == HX_JV_STR ? v->s : NULL;
}

static void
flag_num(hx_sb *sb, const char *flag, double v)
{
	hx_sb_printf(sb, " --%s %.15g", flag, v);
}

// The flags of the nemesis schedule. The stored interval is the resolved
// one: it is left out when it is what no flag gives (5 s; in 3pc with
// partitions, the held 4-6 s faults the stored hold says were in force).
static void
nemesis_flags(hx_sb *sb, const hx_run_info *info, const hx_jv *params)
{
	const char *s;
	hx_sb_printf(sb, " --nemesis");
	sh_word(sb, info->nemesis);
	bool three = strcmp(info->mode, "3pc") == 0 &&
	    strstr(info->nemesis, "partition") != NULL;
	double iv = param_num(params, "nemesis_interval", 5);
	if (param_num(params, "nemesis_hold_min", 0) == 0 && (iv != 5 || three))
		flag_num(sb, "nemesis-interval", iv);
	if ((s = param_str(params, "targets")) != NULL) {
		hx_sb_printf(sb, " --nemesis-targets");
		sh_word(sb, s);
	}
	if ((s = param_str(params, "shapes")) != NULL) {
		hx_sb_printf(sb, " --partition-shapes");
		sh_word(sb, s);
	}
	if ((s = param_str(params, "crashpoints")) != NULL) {
		hx_sb_printf(sb, " --crashpoints");
		sh_word(sb, s);
	}
	if (hx_jv_get(params, "partition_onset_ms") != NULL)
		flag_num(sb, "partition-onset-ms",
		    param_num(params, "partition_onset_ms", 400));
}

char *
hx_report_command(const hx_run_info *info)
{
	if (info == NULL || info->mode == NULL)
		return NULL;
	hx_jdoc *doc = NULL;
	const hx_jv *p = NULL;
	if (info->params != NULL &&
	    hx_json_parse(info->params, strlen(info->params), &doc, NULL, 0) ==
	        DTX_OK)
		p = hx_jdoc_root(doc);
	hx_sb sb = { 0 };
	hx_sb_printf(&sb, "dtx bank --mode");
	sh_word(&sb, info->mode);
	const hx_jv *acc = hx_jv_get(p, "accounts");
	double naccts = acc && acc->type == HX_JV_ARR ? (double)acc->len
	    : acc && acc->type == HX_JV_NUM           ? acc->d
	                                              : 0;
	if (naccts > 0) {
		flag_num(&sb, "accounts", naccts);
		double total = param_num(p, "total", -1);
		if (total >= 0)
			flag_num(&sb, "balance", total / naccts);
	}
	static const char *const nums[][2] = { { "clients", "clients" },
		{ "rate", "rate" }, { "duration", "duration" },
		{ "participants", "participants" } };
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		if (hx_jv_get(p, nums[i][0]) != NULL)
			flag_num(&sb, nums[i][1], param_num(p, nums[i][0], 0));
	if (info->nemesis != NULL && strcmp(info->nemesis, "none") != 0)
		nemesis_flags(&sb, info, p);
	const hx_jv *ns = hx_jv_get(p, "netns");
	if (ns && ns->type == HX_JV_BOOL && ns->b)
		hx_sb_printf(&sb, " --netns");
	hx_sb_printf(&sb, " --seed %llu", (unsigned long long)info->seed);
	hx_jdoc_free(doc);
	return hx_sb_take(&sb);
}

// The run's mode, nemesis, seed and parameters, and the command that
// reproduces it.
static void
write_run_params(FILE *f, const report *r)
{
	const hx_run_info *info = r->info;
	if (info == NULL)
		return;
	fputs("<h2>run</h2>\n<table>\n<tr><th>mode</th><td>", f);
	html_esc(f, info->mode);
	fputs("</td></tr>\n<tr><th>nemesis</th><td>", f);
	html_esc(f, info->nemesis ? info->nemesis : "none");
	fprintf(f, "</td></tr>\n<tr><th>seed</th><td>%llu</td></tr>\n",
	    (unsigned long long)info->seed);
	for (const hx_jv *m = r->params && r->params->type == HX_JV_OBJ
	         ? r->params->first
	         : NULL;
	     m; m = m->next) {
		fputs("<tr><th>", f);
		html_esc(f, m->key);
		fputs("</th><td>", f);
		if (m->type == HX_JV_STR)
			html_esc(f, m->s);
		else if (m->type == HX_JV_BOOL)
			fputs(m->b ? "true" : "false", f);
		else if (m->type == HX_JV_NUM && m->is_int)
			fprintf(f, "%s%llu", m->neg ? "-" : "",
			    (unsigned long long)m->mag);
		else if (m->type == HX_JV_NUM)
			fprintf(f, "%.15g", m->d);
		else if (m->type == HX_JV_ARR)
			fprintf(f, "%zu values", m->len);
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n", f);
	char *cmd = hx_report_command(info);
	if (cmd != NULL) {
		fputs(
		    "<p>Reproduce it (the same seed draws the same faults and "
		    "operations):</p>\n<pre id=\"command\">",
		    f);
		html_esc(f, cmd);
		fputs("</pre>\n", f);
	}
	dtx_free(cmd);
}

// The anomalies (the first 200), each linked to its op on the timeline
// and, when it names a transaction or saga, to its trace page.
static void
write_anomalies(FILE *f, const report *r, int64_t run_id, const hx_verdict *v)
{
	fputs("<h2>anomalies</h2>\n<ul>\n", f);
	size_t shown = 0, traced = 0;
	for (size_t i = 0; i < hx_verdict_count(v); i++) {
		const hx_check *c = hx_verdict_check(v, i);
		for (size_t k = 0; k < c->nanoms && shown < 200; k++, shown++) {
			const hx_anomaly *a = &c->anoms[k];
			fprintf(f, "<li>%s %s", c->name, a->kind);
			if (a->op_index >= 0)
				fprintf(f,
				    " <a "
				    "href=\"timeline.html#op-%lld\">"
				    "op %lld</a>",
				    (long long)a->op_index,
				    (long long)a->op_index);
			if (a->has_txid)
				fprintf(f, " txid %llu",
				    (unsigned long long)a->txid);
			if (a->gid) {
				fputs(" gid ", f);
				html_esc(f, a->gid);
			}
			char tp[64];
			if (traced < HX_REPORT_TRACES &&
			    hx__report_trace(
			        r->dir, run_id, a, tp, sizeof(tp))) {
				fprintf(f, " <a href=\"%s\">trace</a>", tp);
				traced++;
			}
			fputs(": <code>", f);
			html_esc(f, a->detail);
			fputs("</code></li>\n", f);
		}
	}
	if (shown == 0)
		fputs("<li>none</li>\n", f);
	fputs("</ul>\n", f);
}

static dtx_err
write_index(const report *r, int64_t run_id, const hx_verdict *v, bool pngs)
{
	FILE *f = open_in(r, "index.html");
	if (f == NULL)
		return DTX_EIO;
	const char *word = v == NULL     ? "not checked"
	    : v->valid == HX_VALID_TRUE  ? "valid"
	    : v->valid == HX_VALID_FALSE ? "INVALID"
	                                 : "unknown";
	fprintf(f,
	    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
	    "<title>dtx run %lld</title>\n<style>body{font-family:sans-serif}"
	    "td,th{padding:2px 8px;text-align:left;vertical-align:top}"
	    ".true{color:#060}.false{color:#b00;font-weight:bold}"
	    ".unknown{color:#a60}pre{white-space:pre-wrap}</style>"
	    "</head><body>\n"
	    "<h1>dtx run %lld: <span class=\"%s\">%s</span></h1>\n",
	    (long long)run_id, (long long)run_id,
	    v ? hx_valid_name(v->valid) : "unknown", word);
	write_run_params(f, r);
	if (v != NULL) {
		fputs("<h2>checkers</h2>\n<table>\n", f);
		for (size_t i = 0; i < hx_verdict_count(v); i++) {
			const hx_check *c = hx_verdict_check(v, i);
			fprintf(f,
			    "<tr><th>%s</th><td class=\"%s\">%s</td><td>",
			    c->name, hx_valid_name(c->valid),
			    hx_valid_name(c->valid));
			html_esc(f, c->summary);
			fputs("</td></tr>\n", f);
		}
		fputs("</table>\n", f);
		write_anomalies(f, r, run_id, v);
	}
	fputs("<h2>faults</h2>\n<table><tr><th>kind</th><th>from (s)</th>"
	      "<th>to (s)</th><th>targets</th><th>detail (shape, "
	      "grudge)</th></tr>\n",
	    f);
	for (size_t i = 0; i < r->nfaults; i++) {
		const hx_fault *w = &r->faults[i];
		fprintf(f,
		    "<tr><td><span style=\"background:%s\">&nbsp;&nbsp;"
		    "</span> ",
		    hx__fault_color(w->kind));
		html_esc(f, w->kind);
		fprintf(f, "</td><td>%.3f</td><td>", (double)w->start_ns / 1e9);
		if (w->end_ns < 0)
			fputs("not healed", f);
		else
			fprintf(f, "%.3f", (double)w->end_ns / 1e9);
		fputs("</td><td>", f);
		html_esc(f, w->targets);
		fputs("</td><td><code>", f);
		html_esc(f, w->detail);
		fputs("</code></td></tr>\n", f);
	}
	fputs("</table>\n<h2>plots</h2>\n", f);
	if (pngs)
		fputs("<p><a href=\"latency.png\"><img src=\"latency.png\" "
		      "alt=\"latency\" width=\"1000\"></a></p>\n"
		      "<p><a href=\"rate.png\"><img src=\"rate.png\" "
		      "alt=\"throughput\" width=\"1000\"></a></p>\n",
		    f);
	else
		fputs("<p>gnuplot was not available: no plots "
		      "(the data files and scripts are here).</p>\n",
		    f);
	fputs("<p><a href=\"timeline.html\">timeline</a> (time axis, one "
	      "lane per node and per client; zoom, filter)</p>\n",
	    f);
	DIR *d = opendir(r->dir);
	if (d != NULL) {
		fputs("<h2>other files</h2>\n<ul>\n", f);
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (generated(e->d_name))
				continue;
			fputs("<li><a href=\"", f);
			html_esc(f, e->d_name);
			fputs("\">", f);
			html_esc(f, e->d_name);
			fputs("</a></li>\n", f);
		}
		closedir(d);
		fputs("</ul>\n", f);
	}
	fputs("</body></html>\n", f);
	return close_file(f);
}

dtx_err
hx_report_write(const char *dir, int64_t run_id, const hx_history *h,
    const hx_fault *faults, size_t nfaults, const hx_verdict *v)
{
	return hx_report_write_run(dir, run_id, NULL, h, faults, nfaults, v);
}

// The plots through gnuplot; *pngs says whether both were drawn.
static dtx_err
write_plots(const report *r, bool *pngs)
{
	size_t points = 0;
	dtx_err rv = write_latency(r, &points);
	if (rv == DTX_OK)
		rv = write_rate(r);
	if (rv == DTX_OK && !have_gnuplot()) {
		fprintf(stderr,
		    "dtx: gnuplot not found: skipping latency.png and "
		    "rate.png (install gnuplot-nox)\n");
	} else if (rv == DTX_OK) {
		dtx_err g1 = run_gnuplot(r, "latency.gp");
		dtx_err g2 = run_gnuplot(r, "rate.gp");
		*pngs = g1 == DTX_OK && g2 == DTX_OK;
		if (!*pngs)
			fprintf(stderr,
			    "dtx: gnuplot failed (see %s/gnuplot.log); the "
			    "report has no plots\n",
			    r->dir);
	}
	return rv;
}

dtx_err
hx_report_write_run(const char *dir, int64_t run_id, const hx_run_info *info,
    const hx_history *h, const hx_fault *faults, size_t nfaults,
    const hx_verdict *v)
{
	if (dir == NULL || h == NULL || (nfaults > 0 && faults == NULL))
		return DTX_EINVAL;
	char path[4096];
	snprintf(path, sizeof(path), "%s", dir);
	dtx_err rv = hx_mkdirs(path);
	if (rv != DTX_OK)
		return rv;
	report r = { .dir = dir,
		.h = h,
		.faults = faults,
		.nfaults = nfaults,
		.info = info };
	hx_jdoc *doc = NULL;
	if (info != NULL && info->params != NULL &&
	    hx_json_parse(info->params, strlen(info->params), &doc, NULL, 0) ==
	        DTX_OK)
		r.params = hx_jdoc_root(doc);
	r.n = hx_history_len(h);
	if ((rv = hx_history_pairs(h, &r.pairs)) != DTX_OK) {
		hx_jdoc_free(doc);
		return rv;
	}
	if (r.n > 0)
		r.end_ns = hx_history_get(h, r.n - 1)->time_ns;
	for (size_t i = 0; i < nfaults; i++)
		if (faults[i].end_ns > r.end_ns)
			r.end_ns = faults[i].end_ns;
	bool pngs = false;
	rv = write_plots(&r, &pngs);
	double parts = param_num(r.params, "participants", 0);
	hx__tl_in tl = { .run_id = run_id,
		.h = h,
		.pairs = r.pairs,
		.faults = faults,
		.nfaults = nfaults,
		.v = v,
		.end_ns = r.end_ns,
		.participants = parts > 0 && parts < 1000 ? (uint32_t)parts : 0,
		.saga = info != NULL && info->mode != NULL &&
		    strcmp(info->mode, "saga") == 0 };
	if (rv == DTX_OK)
		rv = hx__timeline_write(&tl, dir);
	if (rv == DTX_OK)
		rv = write_index(&r, run_id, v, pngs);
	dtx_free(r.pairs);
	hx_jdoc_free(doc);
	return rv;
}
