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

// Jepsen's colours for op types and a palette for fault kinds.
static const char *const type_color[] = { "#888888", "#81BFFC", "#FF1E90",
	"#FFA400" };
static const char *const fault_palette[] = { "#C0C0C0", "#F2C0C0", "#C0D8F2",
	"#C8F2C0", "#F2E4C0", "#E0C0F2" };
#define NPALETTE (sizeof(fault_palette) / sizeof(fault_palette[0]))

typedef struct report {
	const char *dir;
	const hx_history *h;
	const hx_fault *faults;
	size_t nfaults;
	int64_t *pairs;
	size_t n;
	int64_t end_ns;
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

static size_t
kind_color(const hx_fault *faults, size_t i)
{
	// The colour of a kind is that of its first window.
	for (size_t k = 0; k <= i; k++)
		if (strcmp(faults[k].kind ? faults[k].kind : "",
		        faults[i].kind ? faults[i].kind : "") == 0)
			return k % NPALETTE;
	return 0;
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
		    "fc rgb '%s' fs transparent solid 0.6 noborder behind\n",
		    i + 1, x0, x1, fault_palette[kind_color(r->faults, i)]);
		bool first = true;
		for (size_t k = 0; k < i; k++)
			if (strcmp(r->faults[k].kind, w->kind) == 0)
				first = false;
		if (first) {
			hx_sb_printf(keys,
			    ", keyentry with boxes fc rgb '%s' fs solid 0.6 "
			    "noborder title '",
			    fault_palette[kind_color(r->faults, i)]);
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

static int
cmp_proc(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

#define ROW_PX 16
#define COL_PX 150

static void
op_title(FILE *f, const hx_op *inv, const hx_op *done)
{
	char pb[24];
	fprintf(f, "process %s %s\n",
	    hx_process_name(inv->process, pb, sizeof(pb)), inv->f);
	fprintf(f, "op %lld %s at %.6f s", (long long)inv->index,
	    hx_op_type_name(inv->type), (double)inv->time_ns / 1e9);
	if (done != NULL && done != inv)
		fprintf(f, " -> op %lld %s at %.6f s (%.3f ms)",
		    (long long)done->index, hx_op_type_name(done->type),
		    (double)done->time_ns / 1e9,
		    (double)(done->time_ns - inv->time_ns) / 1e6);
	else if (done == NULL)
		fprintf(f, ", never completed");
	fputc('\n', f);
	if (inv->value) {
		fputs("value: ", f);
		html_esc(f, inv->value);
		fputc('\n', f);
	}
	if (done && done != inv && done->value) {
		fputs("result: ", f);
		html_esc(f, done->value);
		fputc('\n', f);
	}
	const char *err = done && done->error ? done->error : inv->error;
	if (err) {
		fputs("error: ", f);
		html_esc(f, err);
	}
}

static dtx_err
write_timeline(const report *r, int64_t run_id)
{
	int64_t *procs = dtx_alloc((r->n ? r->n : 1) * sizeof(*procs));
	if (procs == NULL)
		return DTX_ENOMEM;
	size_t np = 0;
	for (size_t i = 0; i < r->n; i++)
		procs[np++] = hx_history_get(r->h, i)->process;
	qsort(procs, np, sizeof(*procs), cmp_proc);
	size_t u = 0;
	for (size_t i = 0; i < np; i++)
		if (u == 0 || procs[u - 1] != procs[i])
			procs[u++] = procs[i];
	np = u;
	FILE *f = open_in(r, "timeline.html");
	if (f == NULL) {
		dtx_free(procs);
		return DTX_EIO;
	}
	fprintf(f,
	    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
	    "<title>dtx run %lld timeline</title>\n<style>\n"
	    "body{font-family:sans-serif;font-size:12px;margin:8px}\n"
	    ".tl{position:relative;height:%zupx;width:%zupx}\n"
	    ".hd{position:absolute;top:0;height:%dpx;font-weight:bold}\n"
	    ".op{position:absolute;box-sizing:border-box;overflow:hidden;"
	    "white-space:nowrap;border:1px solid #555;border-radius:2px;"
	    "padding:0 2px;font-size:11px;line-height:%dpx}\n"
	    ".ok{background:%s}.fail{background:%s}.info{background:%s}"
	    ".open{background:#ddd;border-style:dashed}"
	    ".nemesis{background:#ccc}\n"
	    "</style></head><body>\n<h1>run %lld timeline</h1>\n"
	    "<p>One column per process, one box per operation from its "
	    "invocation to its completion (rows are history indices). "
	    "Blue ok, pink fail, orange info (uncertain), grey dashed "
	    "never completed. Hover for the value and error.</p>\n"
	    "<div class=\"tl\">\n",
	    (long long)run_id, (r->n + 2) * ROW_PX, (np + 1) * COL_PX, ROW_PX,
	    ROW_PX - 2, type_color[1], type_color[2], type_color[3],
	    (long long)run_id);
	for (size_t c = 0; c < np; c++) {
		char pb[24];
		fprintf(f, "<div class=\"hd\" style=\"left:%zupx\">%s</div>\n",
		    c * COL_PX, hx_process_name(procs[c], pb, sizeof(pb)));
	}
	for (size_t i = 0; i < r->n; i++) {
		const hx_op *op = hx_history_get(r->h, i);
		int64_t p = r->pairs[i];
		if (p >= 0 && (size_t)p < i)
			continue; // drawn with its invocation
		const hx_op *done = p >= 0     ? hx_history_get(r->h, (size_t)p)
		    : op->type == HX_OP_INVOKE ? NULL
		                               : op;
		size_t last = done ? (size_t)done->index : r->n;
		const int64_t *col =
		    bsearch(&op->process, procs, np, sizeof(*procs), cmp_proc);
		const char *cls = done == NULL ? "open"
		    : op->process == HX_PROC_NEMESIS
		    ? "nemesis"
		    : hx_op_type_name(done->type);
		fprintf(f,
		    "<div class=\"op %s\" id=\"op-%lld\" data-done=\"%lld\" "
		    "style=\"left:%zupx;top:%zupx;width:%dpx;height:%zupx\" "
		    "title=\"",
		    cls, (long long)op->index,
		    done ? (long long)done->index : -1LL,
		    (size_t)(col - procs) * COL_PX + 2, (i + 1) * ROW_PX,
		    COL_PX - 6, (last - i + 1) * ROW_PX - 2);
		op_title(f, op, done);
		fputs("\">", f);
		html_esc(f, op->f);
		if (done && done != op && done->type != HX_OP_OK)
			fprintf(f, " %s", hx_op_type_name(done->type));
		fputs("</div>\n", f);
	}
	fputs("</div>\n</body></html>\n", f);
	dtx_free(procs);
	return close_file(f);
}

static bool
generated(const char *name)
{
	static const char *const mine[] = { "index.html", "timeline.html",
		"latency.png", "rate.png", "latency.gp", "rate.gp",
		"latency-ok.dat", "latency-fail.dat", "latency-info.dat",
		"rate.dat", "gnuplot.log", ".", ".." };
	for (size_t i = 0; i < sizeof(mine) / sizeof(mine[0]); i++)
		if (strcmp(name, mine[i]) == 0)
			return true;
	return false;
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
	    ".unknown{color:#a60}</style></head><body>\n"
	    "<h1>dtx run %lld: <span class=\"%s\">%s</span></h1>\n",
	    (long long)run_id, (long long)run_id,
	    v ? hx_valid_name(v->valid) : "unknown", word);
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
		fputs("<h2>anomalies</h2>\n<ul>\n", f);
		size_t shown = 0;
		for (size_t i = 0; i < hx_verdict_count(v); i++) {
			const hx_check *c = hx_verdict_check(v, i);
			for (size_t k = 0; k < c->nanoms && shown < 200;
			     k++, shown++) {
				const hx_anomaly *a = &c->anoms[k];
				fprintf(f, "<li>%s %s", c->name, a->kind);
				if (a->op_index >= 0)
					fprintf(f,
					    " <a href=\"timeline.html\">op "
					    "%lld</a>",
					    (long long)a->op_index);
				if (a->has_txid)
					fprintf(f, " txid %llu",
					    (unsigned long long)a->txid);
				if (a->gid) {
					fputs(" gid ", f);
					html_esc(f, a->gid);
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
	fputs("<h2>faults</h2>\n<table><tr><th>kind</th><th>from (s)</th>"
	      "<th>to (s)</th><th>targets</th></tr>\n",
	    f);
	for (size_t i = 0; i < r->nfaults; i++) {
		const hx_fault *w = &r->faults[i];
		fputs("<tr><td>", f);
		html_esc(f, w->kind);
		fprintf(f, "</td><td>%.3f</td><td>", (double)w->start_ns / 1e9);
		if (w->end_ns < 0)
			fputs("not healed", f);
		else
			fprintf(f, "%.3f", (double)w->end_ns / 1e9);
		fputs("</td><td>", f);
		html_esc(f, w->targets);
		fputs("</td></tr>\n", f);
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
	fputs("<p><a href=\"timeline.html\">timeline</a></p>\n", f);
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
	if (dir == NULL || h == NULL || (nfaults > 0 && faults == NULL))
		return DTX_EINVAL;
	char path[4096];
	snprintf(path, sizeof(path), "%s", dir);
	dtx_err rv = hx_mkdirs(path);
	if (rv != DTX_OK)
		return rv;
	report r = { .dir = dir, .h = h, .faults = faults, .nfaults = nfaults };
	r.n = hx_history_len(h);
	if ((rv = hx_history_pairs(h, &r.pairs)) != DTX_OK)
		return rv;
	if (r.n > 0)
		r.end_ns = hx_history_get(h, r.n - 1)->time_ns;
	for (size_t i = 0; i < nfaults; i++)
		if (faults[i].end_ns > r.end_ns)
			r.end_ns = faults[i].end_ns;
	size_t points = 0;
	bool pngs = false;
	rv = write_latency(&r, &points);
	if (rv == DTX_OK)
		rv = write_rate(&r);
	if (rv == DTX_OK && !have_gnuplot()) {
		fprintf(stderr,
		    "dtx: gnuplot not found: skipping latency.png and "
		    "rate.png (install gnuplot-nox)\n");
	} else if (rv == DTX_OK) {
		dtx_err g1 = run_gnuplot(&r, "latency.gp");
		dtx_err g2 = run_gnuplot(&r, "rate.gp");
		pngs = g1 == DTX_OK && g2 == DTX_OK;
		if (!pngs)
			fprintf(stderr,
			    "dtx: gnuplot failed (see %s/gnuplot.log); the "
			    "report has no plots\n",
			    dir);
	}
	if (rv == DTX_OK)
		rv = write_timeline(&r, run_id);
	if (rv == DTX_OK)
		rv = write_index(&r, run_id, v, pngs);
	dtx_free(r.pairs);
	return rv;
}
