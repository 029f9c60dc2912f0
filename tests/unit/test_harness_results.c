// SPDX-License-Identifier: MIT
//
// The results database and run reports: a stored run reads back exactly,
// `dtx results list|show` and `dtx check` round-trip with the right exit
// codes, unfinished runs show as such, damaged or foreign files give a
// clear error, two processes share one file safely, and the report
// directory holds the plots and a timeline naming every op.

#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "../capture.h"
#include "cli.h"
#include "harness.h"
#include "test_util.h"

#define MS 1000000LL

static char tmpdir[256];
static char dbpath[512];

static int
setup(void **state)
{
	(void)state;
	return st_setup_tmp(tmpdir, sizeof(tmpdir), "results", dbpath,
	    sizeof(dbpath), "nested/dir/dtx.sqlite");
}

static int
teardown(void **state)
{
	(void)state;
	return st_teardown_tmp(tmpdir);
}

// A 2pc run: transfers, reads, a kill window; balances over 2 accounts.
static hx_history *
make_history(bool planted)
{
	hx_history *h = hx_history_new();
	int64_t N = HX_PROC_NEMESIS;
	for (int i = 0; i < 20; i++) {
		int64_t t = i * 100 * MS;
		char v[160];
		snprintf(v, sizeof(v),
		    "{\"from\":0,\"to\":1,\"amount\":1,\"mode\":\"2pc\","
		    "\"txid\":%d}",
		    i + 1);
		hx_history_append(h, t, 0, HX_OP_INVOKE, "transfer", v, NULL);
		hx_history_append(h, t + (i + 1) * MS, 0,
		    i == 5 ? HX_OP_INFO : HX_OP_OK, "transfer", v,
		    i == 5 ? "timeout <&>\"'" : NULL);
		hx_history_append(
		    h, t + 50 * MS, 1, HX_OP_INVOKE, "read", NULL, NULL);
		snprintf(v, sizeof(v),
		    "{\"ts\":%d,\"balances\":{\"0\":%d,\"1\":%d}}", i,
		    planted && i == 7 ? 40 : 50 - i, 50 + i);
		hx_history_append(h, t + 60 * MS, 1, HX_OP_OK, "read", v, NULL);
		if (i == 3)
			hx_history_append(h, t + 70 * MS, N, HX_OP_INFO, "kill",
			    "{\"targets\":[2]}", NULL);
		if (i == 9)
			hx_history_append(h, t + 70 * MS, N, HX_OP_INFO,
			    "restart", "{\"targets\":[2]}", NULL);
	}
	hx_history_append(h, 2100 * MS, 2, HX_OP_INVOKE, "transfer",
	    "{\"from\":1,\"to\":0,\"amount\":2,\"value\":\"<script>x</"
	    "script>\"}",
	    NULL);
	return h;
}

// Opens the results database at path (created when create); the open
// must work.
static hx_results *
open_db(const char *path, bool create)
{
	hx_results *db;
	char err[512];
	dtx_err rv = hx_results_open(path, create, &db, err, sizeof(err));
	if (rv != DTX_OK)
		fail_msg("open %s: %s: %s", path, dtx_errname(rv), err);
	return db;
}

// Begins a run described by info in db and stores h's operations in it;
// returns the run's id.
static int64_t
begin_run_with_ops(hx_results *db, const hx_run_info *info, hx_history *h)
{
	int64_t id;
	assert_int_equal(hx_results_run_begin(db, info, &id), DTX_OK);
	assert_int_equal(hx_results_add_ops(db, id, h), DTX_OK);
	return id;
}

// Stores a finished (or not) run and returns its id.
static int64_t
store_run(const char *path, bool planted, bool finish)
{
	hx_results *db = open_db(path, true);
	hx_run_info info = { "2pc", "kill", 42,
		"{\"accounts\":2,\"total\":100,\"clients\":2}" };
	hx_history *h = make_history(planted);
	int64_t id = begin_run_with_ops(db, &info, h);
	hx_fault *f;
	size_t nf;
	assert_int_equal(hx_faults_from_history(h, &f, &nf), DTX_OK);
	assert_int_equal(hx_results_add_faults(db, id, f, nf), DTX_OK);
	hx_txn_obs obs[40];
	for (int i = 0; i < 20; i++) {
		obs[2 * i] =
		    (hx_txn_obs) { (uint64_t)i + 1, 1, HX_TXN_COMMITTED };
		obs[2 * i + 1] =
		    (hx_txn_obs) { (uint64_t)i + 1, 2, HX_TXN_COMMITTED };
	}
	assert_int_equal(hx_results_add_txn_obs(db, id, obs, 40), DTX_OK);
	if (finish) {
		const int64_t acc[] = { 0, 1 };
		hx_run_cfg cfg = { "2pc", { acc, 2, 100, false } };
		hx_verdict v;
		assert_int_equal(
		    hx_check_run(h, &cfg, obs, 40, NULL, 0, &v), DTX_OK);
		assert_int_equal(
		    v.valid, planted ? HX_VALID_FALSE : HX_VALID_TRUE);
		assert_int_equal(
		    hx_results_add_metric(db, id, "setup_s", 1.5), DTX_OK);
		assert_int_equal(hx_results_run_finish(db, id, &v), DTX_OK);
		hx_verdict_fini(&v);
	}
	hx_faults_free(f, nf);
	hx_history_free(h);
	hx_results_close(db);
	return id;
}

// Runs a command with stdout captured into a malloc'd string.
static int
capture(int (*fn)(int, char **), char **argv, int argc, char **out)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/out.txt", tmpdir);
	int rc = tc_capture(path, false, fn, argc, argv, out);
	assert_non_null(*out);
	return rc;
}

static void
test_store_and_reload(void **state)
{
	(void)state;
	int64_t id = store_run(dbpath, false, true);
	hx_results *db = open_db(dbpath, false);
	hx_run_record r;
	assert_int_equal(hx_results_load_run(db, id, &r), DTX_OK);
	assert_string_equal(r.mode, "2pc");
	assert_string_equal(r.nemesis, "kill");
	assert_int_equal(r.seed, 42);
	assert_non_null(r.finished);
	assert_int_equal(r.valid, HX_VALID_TRUE);
	assert_int_equal(r.nops, 83);
	assert_non_null(strstr(r.summary, "bank true"));
	hx_run_record_fini(&r);
	hx_history *h, *orig = make_history(false);
	assert_int_equal(hx_results_load_history(db, id, &h), DTX_OK);
	assert_int_equal(hx_history_len(h), hx_history_len(orig));
	for (size_t i = 0; i < hx_history_len(h); i++) {
		const hx_op *a = hx_history_get(h, i);
		const hx_op *b = hx_history_get(orig, i);
		assert_int_equal(a->time_ns, b->time_ns);
		assert_int_equal(a->process, b->process);
		assert_int_equal(a->type, b->type);
		assert_string_equal(a->f, b->f);
		if (b->value)
			assert_string_equal(a->value, b->value);
		else
			assert_null(a->value);
		if (b->error)
			assert_string_equal(a->error, b->error);
	}
	hx_history_free(h);
	hx_history_free(orig);
	hx_fault *f;
	size_t nf;
	assert_int_equal(hx_results_load_faults(db, id, &f, &nf), DTX_OK);
	assert_int_equal(nf, 1);
	assert_string_equal(f[0].kind, "kill");
	assert_int_equal(f[0].start_ns, 370 * MS);
	assert_int_equal(f[0].end_ns, 970 * MS);
	assert_string_equal(f[0].targets, "2");
	hx_faults_free(f, nf);
	hx_txn_obs *t;
	hx_saga_obs *s;
	size_t nt, ns;
	assert_int_equal(hx_results_load_obs(db, id, &t, &nt, &s, &ns), DTX_OK);
	assert_int_equal(nt, 40);
	assert_int_equal(ns, 0);
	assert_int_equal(t[39].txid, 20);
	assert_int_equal(t[39].node, 2);
	dtx_free(t);
	dtx_free(s);
	assert_int_equal(hx_results_load_run(db, 999, &r), DTX_ENOENT);
	hx_results_close(db);
}

static void
test_commands_round_trip(void **state)
{
	(void)state;
	int64_t good = store_run(dbpath, false, true);
	int64_t bad = store_run(dbpath, true, true);
	int64_t open_run = store_run(dbpath, false, false);
	char ids[3][24];
	snprintf(ids[0], 24, "%lld", (long long)good);
	snprintf(ids[1], 24, "%lld", (long long)bad);
	snprintf(ids[2], 24, "%lld", (long long)open_run);
	char *out;

	char *list[] = { "list", "--results", dbpath };
	assert_int_equal(capture(cli_cmd_results, list, 3, &out), 0);
	assert_non_null(strstr(out, "INVALID"));
	assert_non_null(strstr(out, "unfinished"));
	assert_non_null(strstr(out, "valid"));
	free(out);
	char *listj[] = { "list", "--results", dbpath, "--json" };
	assert_int_equal(capture(cli_cmd_results, listj, 4, &out), 0);
	assert_true(hx_json_valid(out, strlen(out)));
	// One form of a verdict in every --json: true, false or "unknown";
	// an unfinished run is "unknown" with finished null.
	assert_non_null(strstr(out, "\"finished\":null"));
	assert_non_null(strstr(out, "\"valid\":\"unknown\""));
	assert_non_null(strstr(out, "\"valid\":false"));
	assert_non_null(strstr(out, "\"valid\":true"));
	assert_null(strstr(out, "\"valid\":\"false\""));
	free(out);

	char *show[] = { "show", ids[1], "--results", dbpath };
	assert_int_equal(capture(cli_cmd_results, show, 4, &out), 0);
	assert_non_null(strstr(out, "INVALID"));
	assert_non_null(strstr(out, "wrong-total"));
	assert_non_null(strstr(out, "kill"));
	assert_non_null(strstr(out, "setup_s"));
	assert_non_null(strstr(out, "transfer.latency_ms.p99"));
	free(out);
	char *showj[] = { "show", ids[1], "--results", dbpath, "--json" };
	assert_int_equal(capture(cli_cmd_results, showj, 5, &out), 0);
	assert_true(hx_json_valid(out, strlen(out)));
	hx_jdoc *d;
	assert_int_equal(hx_json_parse(out, strlen(out), &d, NULL, 0), DTX_OK);
	const hx_jv *an = hx_jv_get(hx_jdoc_root(d), "anomalies");
	assert_non_null(an);
	assert_int_equal(an->len, 1); // one wrong read: first=worst=last
	assert_string_equal(hx_jv_get(an->first, "kind")->s, "wrong-total");
	int64_t op;
	assert_int_equal(hx_jv_int(hx_jv_get(an->first, "op"), &op), DTX_OK);
	assert_int_equal(op, 7 * 4 + 3 + 1); // read completion of i = 7
	hx_jdoc_free(d);
	free(out);
	char *showo[] = { "show", ids[2], "--results", dbpath };
	assert_int_equal(capture(cli_cmd_results, showo, 4, &out), 0);
	assert_non_null(strstr(out, "unfinished"));
	free(out);

	char *c1[] = { ids[0], "--results", dbpath };
	assert_int_equal(capture(cli_cmd_check, c1, 3, &out), HX_EXIT_OK);
	assert_non_null(strstr(out, "verdict: valid"));
	free(out);
	char *c2[] = { ids[1], "--results", dbpath, "--json" };
	assert_int_equal(capture(cli_cmd_check, c2, 4, &out), HX_EXIT_INVALID);
	assert_true(hx_json_valid(out, strlen(out)));
	assert_non_null(strstr(out, "\"valid\":false"));
	assert_null(strstr(out, "\"valid\":\"false\""));
	free(out);
	// The unfinished run still has its history and observations.
	char *c3[] = { ids[2], "--results", dbpath, "--report" };
	assert_int_equal(capture(cli_cmd_check, c3, 4, &out), HX_EXIT_OK);
	assert_non_null(strstr(out, "UNFINISHED"));
	free(out);
	char idx[600];
	snprintf(idx, sizeof(idx), "%s/nested/dir/dtx.sqlite-run-%s/index.html",
	    tmpdir, ids[2]);
	assert_int_equal(access(idx, R_OK), 0);

	// A stored run without observations is unknown (exit 2).
	hx_results *db = open_db(dbpath, false);
	hx_run_info info = { "2pc", "none", 1,
		"{\"accounts\":2,\"total\":100}" };
	hx_history *h = make_history(false);
	int64_t id = begin_run_with_ops(db, &info, h);
	hx_history_free(h);
	hx_results_close(db);
	char ub[24];
	snprintf(ub, sizeof(ub), "%lld", (long long)id);
	char *c4[] = { ub, "--results", dbpath };
	assert_int_equal(capture(cli_cmd_check, c4, 3, &out), HX_EXIT_UNKNOWN);
	free(out);
}

static void
test_bad_usage(void **state)
{
	(void)state;
	char *out;
	char *a1[] = { "list", "--bogus" };
	assert_int_equal(capture(cli_cmd_results, a1, 2, &out), HX_EXIT_USAGE);
	free(out);
	char *a2[] = { "show", "--results", dbpath };
	assert_int_equal(capture(cli_cmd_results, a2, 3, &out), HX_EXIT_USAGE);
	free(out);
	char *a3[] = { "abc", "--results", dbpath };
	assert_int_equal(capture(cli_cmd_check, a3, 3, &out), HX_EXIT_USAGE);
	free(out);
	assert_int_equal(capture(cli_cmd_check, a3, 0, &out), HX_EXIT_USAGE);
	free(out);
	char *a4[] = { "frobnicate" };
	assert_int_equal(capture(cli_cmd_results, a4, 1, &out), HX_EXIT_USAGE);
	free(out);
	char *a5[] = { "1", "2" };
	assert_int_equal(capture(cli_cmd_check, a5, 2, &out), HX_EXIT_USAGE);
	free(out);
	char *a6[] = { "--help" };
	assert_int_equal(capture(cli_cmd_check, a6, 1, &out), HX_EXIT_OK);
	assert_non_null(strstr(out, "--results"));
	free(out);
	// A missing file or run is a failure to run, not a usage error.
	char missing[600];
	snprintf(missing, sizeof(missing), "%s/none.sqlite", tmpdir);
	char *a7[] = { "1", "--results", missing };
	assert_int_equal(capture(cli_cmd_check, a7, 3, &out), HX_EXIT_FAILURE);
	free(out);
	assert_int_equal(access(missing, F_OK), -1); // not created
	store_run(dbpath, false, true);
	char *a8[] = { "show", "777", "--results", dbpath };
	assert_int_equal(
	    capture(cli_cmd_results, a8, 4, &out), HX_EXIT_FAILURE);
	free(out);
}

static void
test_foreign_and_corrupt_files(void **state)
{
	(void)state;
	char path[600], err[512];
	hx_results *db = NULL;
	snprintf(path, sizeof(path), "%s/garbage.sqlite", tmpdir);
	char junk[8192];
	uint64_t rng = 7;
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)dtx_rand_below(&rng, 256);
	st_write_file(path, junk, sizeof(junk));
	assert_int_equal(
	    hx_results_open(path, true, &db, err, sizeof(err)), DTX_ECORRUPT);
	assert_null(db);
	assert_non_null(strstr(err, "not an SQLite database"));
	st_write_file(path, "hello\n", 6);
	assert_int_equal(
	    hx_results_open(path, false, &db, err, sizeof(err)), DTX_ECORRUPT);

	// Another program's SQLite database.
	snprintf(path, sizeof(path), "%s/other.sqlite", tmpdir);
	sqlite3 *o;
	assert_int_equal(sqlite3_open(path, &o), SQLITE_OK);
	assert_int_equal(sqlite3_exec(o,
	                     "CREATE TABLE t(x); INSERT INTO t "
	                     "VALUES(1)",
	                     NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(o);
	assert_int_equal(
	    hx_results_open(path, true, &db, err, sizeof(err)), DTX_EINVAL);
	assert_non_null(strstr(err, "not a dtx results database"));
	char *out;
	char *a[] = { "list", "--results", path };
	assert_int_equal(capture(cli_cmd_results, a, 3, &out), HX_EXIT_FAILURE);
	free(out);

	// A dtx file damaged after its first page: every page after the
	// schema is overwritten with junk. Reading it fails cleanly.
	snprintf(path, sizeof(path), "%s/damaged/dtx.sqlite", tmpdir);
	int64_t id = store_run(path, false, true);
	assert_int_equal(
	    hx_results_open(path, false, &db, err, sizeof(err)), DTX_OK);
	hx_results_close(db); // checkpoints the WAL into the file
	FILE *f = fopen(path, "r+b");
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	for (long off = 4096; off + (long)sizeof(junk) <= size;
	     off += (long)sizeof(junk)) {
		fseek(f, off, SEEK_SET);
		fwrite(junk, 1, sizeof(junk), f);
	}
	fclose(f);
	dtx_err rv = hx_results_open(path, false, &db, err, sizeof(err));
	if (rv == DTX_OK) {
		hx_history *h = NULL;
		hx_run_record r = { 0 };
		rv = hx_results_load_run(db, id, &r);
		if (rv == DTX_OK)
			rv = hx_results_load_history(db, id, &h);
		assert_int_not_equal(rv, DTX_OK);
		assert_non_null(strstr(hx_results_errmsg(db), "corrupt"));
		hx_run_record_fini(&r);
		hx_results_close(db);
	} else {
		assert_non_null(strstr(err, "corrupt"));
	}
	char idb[24];
	snprintf(idb, sizeof(idb), "%lld", (long long)id);
	char *c[] = { idb, "--results", path };
	assert_int_equal(capture(cli_cmd_check, c, 3, &out), HX_EXIT_FAILURE);
	free(out);
}

#define WRITERS 2
#define RUNS_EACH 15

// Asserts that the query sql on db answers a row whose first column is
// the text want.
static void
expect_text(sqlite3 *db, const char *sql, const char *want)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), want);
	sqlite3_finalize(st);
}

static void
test_two_writers(void **state)
{
	(void)state;
	char path[600];
	snprintf(path, sizeof(path), "%s/shared/dtx.sqlite", tmpdir);
	pid_t pids[WRITERS];
	for (int w = 0; w < WRITERS; w++) {
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0) {
			int bad = 0;
			for (int i = 0; i < RUNS_EACH && !bad; i++) {
				hx_results *db;
				char err[512];
				if (hx_results_open(path, true, &db, err,
				        sizeof(err)) != DTX_OK) {
					fprintf(stderr, "writer: %s\n", err);
					_exit(1);
				}
				hx_run_info info = { "2pc", "none", (uint64_t)w,
					"{\"accounts\":2,"
					"\"total\":100}" };
				int64_t id;
				hx_history *h = make_history(false);
				bad |= hx_results_run_begin(db, &info, &id) !=
				    DTX_OK;
				bad |= !bad &&
				    hx_results_add_ops(db, id, h) != DTX_OK;
				bad |= !bad &&
				    hx_results_add_metric(db, id, "w", w) !=
				        DTX_OK;
				if (bad)
					fprintf(stderr, "writer: %s\n",
					    hx_results_errmsg(db));
				hx_history_free(h);
				hx_results_close(db);
			}
			_exit(bad);
		}
	}
	for (int w = 0; w < WRITERS; w++) {
		int status;
		assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	sqlite3 *o;
	assert_int_equal(sqlite3_open(path, &o), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(o,
	                     "SELECT (SELECT count(*) FROM runs),"
	                     " (SELECT count(*) FROM ops),"
	                     " (SELECT count(DISTINCT run_id) FROM ops)",
	                     -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), WRITERS * RUNS_EACH);
	assert_int_equal(sqlite3_column_int(st, 1), WRITERS * RUNS_EACH * 83);
	assert_int_equal(sqlite3_column_int(st, 2), WRITERS * RUNS_EACH);
	sqlite3_finalize(st);
	expect_text(o, "PRAGMA integrity_check", "ok");
	expect_text(o, "PRAGMA journal_mode", "wal");
	sqlite3_close(o);
}

static bool
gnuplot_present(void)
{
	return system("command -v gnuplot >/dev/null 2>&1") == 0;
}

static void
check_report(const char *dir, const hx_history *h, bool want_png)
{
	char path[700];
	size_t len = 0;
	static const char *const pngs[] = { "latency.png", "rate.png" };
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, pngs[i]);
		char *b = (char *)st_read_file(path, &len);
		if (!want_png) {
			assert_null(b);
			continue;
		}
		assert_non_null(b);
		assert_true(len > 1000);
		assert_memory_equal(b, "\x89PNG", 4);
		free(b);
	}
	// The timeline is a fixed page drawing timeline-data.js: no run's
	// text is ever in its markup, and the data is JSON the page shows as
	// text (report_timeline.c has the format).
	snprintf(path, sizeof(path), "%s/timeline.html", dir);
	char *t = (char *)st_read_file(path, &len);
	assert_non_null(t);
	assert_non_null(strstr(t, "<script src=\"timeline-data.js\">"));
	assert_null(strstr(t, "timeout"));
	assert_null(strstr(t, "x</script>"));
	free(t);
	snprintf(path, sizeof(path), "%s/timeline-data.js", dir);
	t = (char *)st_read_file(path, &len);
	assert_non_null(t);
	const char *pre = "window.DTX_TIMELINE =\n";
	assert_memory_equal(t, pre, strlen(pre));
	hx_jdoc *doc;
	assert_int_equal(hx_json_parse(t + strlen(pre), len - strlen(pre) - 2,
	                     &doc, NULL, 0),
	    DTX_OK);
	const hx_jv *root = hx_jdoc_root(doc);
	// Every client op is in the timeline: as a row's invocation or as
	// its completion (rows: index delta first, completion delta 7th).
	size_t n = hx_history_len(h);
	bool *seen = calloc(n + 1, sizeof(*seen));
	int64_t idx = 0, v;
	for (const hx_jv *r = hx_jv_get(root, "ops")->first; r; r = r->next) {
		const hx_jv *dd = r->first;
		for (int k = 0; k < 6; k++)
			dd = dd->next;
		assert_int_equal(hx_jv_int(r->first, &v), DTX_OK);
		idx += v;
		assert_int_equal(hx_jv_int(dd, &v), DTX_OK);
		seen[idx] = true;
		seen[idx + v] = true;
	}
	for (size_t i = 0; i < n; i++)
		if (hx_history_get(h, i)->process != HX_PROC_NEMESIS &&
		    !seen[i])
			fail_msg("op %zu missing from the timeline", i);
	free(seen);
	// The nemesis's kill is a fault window; the error text is kept as
	// it is (the page writes it as text, never as markup).
	const hx_jv *kinds = hx_jv_get(root, "fault_kinds");
	assert_string_equal(kinds->first->s, "kill");
	bool err = false;
	for (const hx_jv *e = hx_jv_get(root, "errors")->first; e; e = e->next)
		err |= strcmp(e->s, "timeout <&>\"'") == 0;
	assert_true(err);
	hx_jdoc_free(doc);
	free(t);
	snprintf(path, sizeof(path), "%s/index.html", dir);
	t = (char *)st_read_file(path, &len);
	assert_non_null(t);
	assert_non_null(strstr(t, "timeline.html"));
	assert_non_null(strstr(t, "node-1.log"));
	if (want_png)
		assert_non_null(strstr(t, "latency.png"));
	free(t);
}

static void
test_report_files(void **state)
{
	(void)state;
	char dir[600];
	assert_int_equal(
	    hx_results_report_dir(dbpath, 5, dir, sizeof(dir)), DTX_OK);
	char want[600];
	snprintf(want, sizeof(want), "%s/nested/dir/dtx.sqlite-run-5", tmpdir);
	assert_string_equal(dir, want);
	assert_int_equal(hx_results_report_dir("x.sqlite", 5, dir, 64), DTX_OK);
	assert_string_equal(dir, "x.sqlite-run-5");
	assert_int_equal(hx_results_report_dir(dbpath, 5, dir, 8), DTX_ERANGE);

	snprintf(dir, sizeof(dir), "%s/report", tmpdir);
	assert_int_equal(mkdir(dir, 0777), 0);
	char logp[700];
	snprintf(logp, sizeof(logp), "%s/node-1.log", dir);
	st_write_file(logp, "log\n", 4);
	hx_history *h = make_history(true);
	hx_fault *f;
	size_t nf;
	assert_int_equal(hx_faults_from_history(h, &f, &nf), DTX_OK);
	const int64_t acc[] = { 0, 1 };
	hx_run_cfg cfg = { "2pc", { acc, 2, 100, false } };
	hx_verdict v;
	assert_int_equal(hx_check_run(h, &cfg, NULL, 0, NULL, 0, &v), DTX_OK);
	assert_int_equal(hx_report_write(dir, 5, h, f, nf, &v), DTX_OK);
	bool gp = gnuplot_present();
	check_report(dir, h, gp);

	// Without gnuplot the report is still written, without plots.
	snprintf(dir, sizeof(dir), "%s/report-nogp", tmpdir);
	assert_int_equal(mkdir(dir, 0777), 0);
	snprintf(logp, sizeof(logp), "%s/node-1.log", dir);
	st_write_file(logp, "log\n", 4);
	char *old = st_path_to(tmpdir);
	assert_int_equal(hx_report_write(dir, 5, h, f, nf, NULL), DTX_OK);
	st_path_back(old);
	check_report(dir, h, false);
	// An empty history still gives a report.
	hx_history *e = hx_history_new();
	snprintf(dir, sizeof(dir), "%s/report-empty", tmpdir);
	assert_int_equal(hx_report_write(dir, 6, e, NULL, 0, NULL), DTX_OK);
	hx_history_free(e);
	hx_verdict_fini(&v);
	hx_faults_free(f, nf);
	hx_history_free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_store_and_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_commands_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_bad_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_foreign_and_corrupt_files, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_two_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_report_files, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
