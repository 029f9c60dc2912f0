// SPDX-License-Identifier: MIT
//
// The dtx command's conventions, run in-process through cli_main: --help
// at every level exits 0 and lists positional arguments and exit codes;
// the exit code table is the README's; --json writes integers exactly and
// a verdict in one form; `dtx results prune` removes a run's rows from
// every table and its report directory; `dtx results export` writes a
// history as JSON and as Jepsen's EDN.

#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static char tmpdir[256];
static char dbpath[512];

static int
setup(void **state)
{
	(void)state;
	return st_setup_tmp(tmpdir, sizeof(tmpdir), "cli", dbpath,
	    sizeof(dbpath), "res/dtx.sqlite");
}

static int
teardown(void **state)
{
	(void)state;
	return st_teardown_tmp(tmpdir);
}

// Runs `dtx ARGS...` (args NULL-terminated) with stdout and stderr
// captured into *out (malloc'd); returns the exit code.
static int
run_dtx(char **out, const char *const *args)
{
	char *argv[32];
	int argc = tc_argv(argv, 32, "dtx", args);
	char path[600];
	snprintf(path, sizeof(path), "%s/out.txt", tmpdir);
	int rc = tc_capture(path, true, cli_main, argc, argv, out);
	assert_non_null(*out);
	return rc;
}

#define RUN(out, ...) run_dtx(out, (const char *const[]) { __VA_ARGS__, NULL })

// The three groups that answered "unknown command '--help'" with exit 64,
// every other group, and every command: exit 0, a usage line naming the
// command and its positional arguments, and its exit codes.
static void
test_help_every_level(void **state)
{
	(void)state;
	static const char *const pages[][5] = {
		{ "--help", "usage: dtx COMMAND", NULL },
		{ "cluster", "--help", "usage: dtx cluster COMMAND", NULL },
		{ "results", "--help", "usage: dtx results COMMAND", NULL },
		{ "bench", "--help", "usage: dtx bench COMMAND", NULL },
		{ "accounts", "-h", "usage: dtx accounts COMMAND", NULL },
		{ "cluster", "start", "--help", "usage: dtx cluster start" },
		{ "cluster", "stop", "--help", "usage: dtx cluster stop" },
		{ "cluster", "status", "--help", "usage: dtx cluster status" },
		{ "accounts", "init", "--help", "usage: dtx accounts init N" },
		{ "transfer", "--help", "usage: dtx transfer FROM TO AMOUNT" },
		{ "balances", "--help", "usage: dtx balances" },
		{ "bank", "--help", "usage: dtx bank" },
		{ "check", "--help", "usage: dtx check ID" },
		{ "results", "list", "--help", "usage: dtx results list" },
		{ "results", "show", "--help", "usage: dtx results show ID" },
		{ "results", "prune", "--help", "usage: dtx results prune" },
		{ "results", "export", "--help",
		    "usage: dtx results export ID" },
		{ "health", "--help", "usage: dtx health [URL]" },
		{ "bench", "rpc", "--help", "usage: dtx bench rpc" },
		{ "bench", "storage", "--help", "usage: dtx bench storage" },
		{ "bench", "2pc", "--help", "usage: dtx bench 2pc" },
		{ "bench", "saga", "--help", "usage: dtx bench saga" },
		{ "version", "--help", "usage: dtx version" },
		{ "help", "--help", "usage: dtx help" },
		{ "help", "cluster", "start", "usage: dtx cluster start" },
		// --help after arguments still shows the page.
		{ "transfer", "1", "2", "--help", "usage: dtx transfer" },
	};
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		const char *args[6] = { NULL };
		const char *want = NULL;
		for (int k = 0; k < 5 && pages[i][k] != NULL; k++) {
			if (strncmp(pages[i][k], "usage:", 6) == 0)
				want = pages[i][k];
			else
				args[k] = pages[i][k];
		}
		char *out;
		int rc = run_dtx(&out, args);
		if (rc != 0 || strstr(out, want) == NULL ||
		    strstr(out, "exit codes") == NULL)
			print_error(
			    "page %zu (%s): rc %d\n%s\n", i, want, rc, out);
		assert_int_equal(rc, HX_EXIT_OK);
		assert_non_null(strstr(out, want));
		assert_non_null(strstr(out, "exit codes"));
		assert_non_null(strstr(out, "  0   ok"));
		free(out);
	}
	char *out;
	// A command's page lists its arguments, flags and its own codes.
	assert_int_equal(RUN(&out, "transfer", "--help"), 0);
	assert_non_null(strstr(out, "arguments:\n  FROM"));
	assert_non_null(strstr(out, "  --mode TEXT"));
	assert_non_null(strstr(out, "  2   unknown"));
	assert_non_null(strstr(out, "  69  unavailable"));
	free(out);
	assert_int_equal(RUN(&out, "cluster", "status", "--help"), 0);
	assert_non_null(strstr(out, "  1   no          a node is down"));
	free(out);
	// A group called directly (as the unit tests and bench do) answers
	// --help itself.
	char help[] = "--help";
	char *hargv[] = { help, NULL };
	fflush(stdout);
	assert_int_equal(cli_cmd_cluster(1, hargv), HX_EXIT_OK);
	assert_int_equal(cli_cmd_results(1, hargv), HX_EXIT_OK);
	// A bank run against a cluster that is not there did nothing: 69.
	char none[400];
	snprintf(none, sizeof(none), "%s/no-cluster", tmpdir);
	assert_int_equal(RUN(&out, "bank", "--mode", "2pc", "--connect", none,
	                     "--duration", "1", "--results", dbpath),
	    HX_EXIT_UNAVAILABLE);
	free(out);
	// The list-append workload refuses sagas, and a workload must be
	// one dtx bank knows: usage errors, before anything starts.
	assert_int_equal(
	    RUN(&out, "bank", "--workload", "list-append", "--mode", "saga",
	        "--connect", none, "--results", dbpath),
	    HX_EXIT_USAGE);
	free(out);
	assert_int_equal(RUN(&out, "bank", "--workload", "register", "--mode",
	                     "2pc", "--connect", none, "--results", dbpath),
	    HX_EXIT_USAGE);
	free(out);
	// No subcommand, or an unknown one, is still a usage error.
	assert_int_equal(RUN(&out, "cluster"), HX_EXIT_USAGE);
	free(out);
	assert_int_equal(RUN(&out, "results", "frob"), HX_EXIT_USAGE);
	free(out);
	assert_int_equal(RUN(&out, "help", "--bogus", "x"), HX_EXIT_USAGE);
	free(out);
}

// `dtx help exit-codes` prints every row of the one table, and the
// README's exit code table has the same codes and names.
static void
test_exit_codes_documented(void **state)
{
	(void)state;
	char *out;
	assert_int_equal(RUN(&out, "help", "exit-codes"), 0);
	size_t len;
	char *readme = (char *)st_read_file(DTX_SOURCE_ROOT "/README.md", &len);
	assert_non_null(readme);
	assert_true(cli_nexit_codes >= 7);
	for (size_t i = 0; i < cli_nexit_codes; i++) {
		const cli_exit_code *c = &cli_exit_codes[i];
		char row[64];
		snprintf(row, sizeof(row), "  %-3d %-12s", c->code, c->name);
		assert_non_null(strstr(out, row));
		snprintf(row, sizeof(row), "| %d | %s |", c->code, c->name);
		if (strstr(readme, row) == NULL)
			print_error("README lacks the row '%s'\n", row);
		assert_non_null(strstr(readme, row));
		assert_string_equal(cli_exit_name(c->code), c->name);
	}
	free(readme);
	free(out);
}

// dtx(1) comes from the same pages and flag tables as --help: every
// command, its flags and every exit code are in it.
static void
test_man_page(void **state)
{
	(void)state;
	char *out;
	assert_int_equal(RUN(&out, "help", "--man"), 0);
	assert_int_equal(strncmp(out, ".TH DTX 1 ", 10), 0);
	size_t leaves = 0;
	for (size_t i = 0; cli_help_at(i) != NULL; i++) {
		const cli_help *h = cli_help_at(i);
		if (h->args == NULL)
			continue;
		leaves++;
		char want[200];
		snprintf(want, sizeof(want), ".SS \"%s", h->path);
		if (strstr(out, want) == NULL)
			print_error("no section %s\n", want);
		assert_non_null(strstr(out, want));
	}
	assert_true(leaves >= 18);
	assert_non_null(
	    strstr(out, ".SS \"dtx transfer FROM TO AMOUNT [FLAGS]\""));
	assert_non_null(strstr(out, "  --mode TEXT\n"));
	assert_non_null(strstr(out, "  --keep N\n"));
	assert_non_null(strstr(out, ".SH EXIT STATUS"));
	for (size_t i = 0; i < cli_nexit_codes; i++) {
		char want[64];
		snprintf(want, sizeof(want), ".B %d\n(%s)",
		    cli_exit_codes[i].code, cli_exit_codes[i].name);
		assert_non_null(strstr(out, want));
	}
	free(out);
}

// The writer prints integers exactly and doubles so that they read back
// unchanged; 176577581 was written as 1.76578e+08.
static void
test_json_exact(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	hx_json j;
	hx_json_begin(&j, f);
	hx_json_u64(&j, "big", (UINT64_C(1) << 53) + 1);
	hx_json_u64(&j, "max", UINT64_MAX);
	hx_json_int(&j, "min", INT64_MIN);
	hx_json_num(&j, "seed", 176577581.0);
	hx_json_num(&j, "tenth", 0.1);
	hx_json_num(&j, "third", 1.0 / 3.0);
	hx_json_num(&j, "nan", NAN);
	hx_json_verdict(&j, "v1", HX_VALID_TRUE);
	hx_json_verdict(&j, "v2", HX_VALID_FALSE);
	hx_json_verdict(&j, "v3", HX_VALID_UNKNOWN);
	hx_json_end(&j);
	fclose(f);
	assert_non_null(strstr(buf, "\"big\":9007199254740993"));
	assert_non_null(strstr(buf, "\"max\":18446744073709551615"));
	assert_non_null(strstr(buf, "\"min\":-9223372036854775808"));
	assert_non_null(strstr(buf, "\"seed\":176577581,"));
	assert_non_null(strstr(buf, "\"tenth\":0.1,"));
	assert_non_null(strstr(buf, "\"nan\":null"));
	assert_non_null(
	    strstr(buf, "\"v1\":true,\"v2\":false,\"v3\":\"unknown\""));
	hx_jdoc *d;
	assert_int_equal(hx_json_parse(buf, strlen(buf), &d, NULL, 0), DTX_OK);
	const hx_jv *root = hx_jdoc_root(d);
	uint64_t u;
	int64_t i;
	assert_int_equal(hx_jv_u64(hx_jv_get(root, "big"), &u), DTX_OK);
	assert_true(u == (UINT64_C(1) << 53) + 1);
	assert_int_equal(hx_jv_u64(hx_jv_get(root, "max"), &u), DTX_OK);
	assert_true(u == UINT64_MAX);
	assert_int_equal(hx_jv_int(hx_jv_get(root, "min"), &i), DTX_OK);
	assert_true(i == INT64_MIN);
	assert_true(hx_jv_get(root, "third")->d == 1.0 / 3.0);
	hx_jdoc_free(d);
	free(buf);
}

// A history of a few ops: a transfer, a read with balances, a nemesis
// kill, a failed op with an error and a float in its value.
static hx_history *
small_history(void)
{
	hx_history *h = hx_history_new();
	assert_non_null(h);
	assert_int_equal(hx_history_append(h, 10, 0, HX_OP_INVOKE, "transfer",
	                     "{\"from\":0,\"to\":1,\"amount\":5}", NULL),
	    DTX_OK);
	assert_int_equal(hx_history_append(h, 20, 0, HX_OP_OK, "transfer",
	                     "{\"from\":0,\"to\":1,\"amount\":5,\"txid\":"
	                     "18446744073709551615}",
	                     NULL),
	    DTX_OK);
	assert_int_equal(
	    hx_history_append(h, 30, 1, HX_OP_OK, "read",
	        "{\"ts\":7,\"balances\":{\"0\":45,\"1\":55}}", NULL),
	    DTX_OK);
	assert_int_equal(hx_history_append(h, 40, HX_PROC_NEMESIS, HX_OP_INFO,
	                     "kill", "{\"targets\":[2]}", NULL),
	    DTX_OK);
	assert_int_equal(hx_history_append(h, 50, 1, HX_OP_FAIL, "read",
	                     "{\"lat\":1.5,\"big\":1e999,\"w\":2e0,\"ok\":"
	                     "false,\"x\":null,\"my "
	                     "key\":\"a\\\"b\"}",
	                     "timeout \"x\"\n"),
	    DTX_OK);
	return h;
}

// Stores an unfinished run with seed, the small history, its faults, an
// observation and a metric; returns its id.
static int64_t
store(uint64_t seed)
{
	char err[512];
	hx_results *db = NULL;
	assert_int_equal(
	    hx_results_open(dbpath, true, &db, err, sizeof(err)), DTX_OK);
	hx_run_info info = { "2pc", "kill", seed, "{\"accounts\":2}" };
	int64_t id;
	assert_int_equal(hx_results_run_begin(db, &info, &id), DTX_OK);
	hx_history *h = small_history();
	assert_int_equal(hx_results_add_ops(db, id, h), DTX_OK);
	hx_fault *f;
	size_t nf;
	assert_int_equal(hx_faults_from_history(h, &f, &nf), DTX_OK);
	assert_int_equal(hx_results_add_faults(db, id, f, nf), DTX_OK);
	hx_faults_free(f, nf);
	hx_txn_obs o = { 1, 1, HX_TXN_COMMITTED };
	assert_int_equal(hx_results_add_txn_obs(db, id, &o, 1), DTX_OK);
	assert_int_equal(hx_results_add_metric(db, id, "setup_s", 1.5), DTX_OK);
	hx_history_free(h);
	hx_results_close(db);
	return id;
}

// A seed above 2^53 (and one above 2^63) comes back exactly from every
// command that prints it.
static void
test_seed_round_trip(void **state)
{
	(void)state;
	const uint64_t seeds[] = { (UINT64_C(1) << 53) + 1,
		(UINT64_C(1) << 63) + 7, 176577581 };
	for (size_t k = 0; k < 3; k++) {
		int64_t id = store(seeds[k]);
		char ids[24];
		snprintf(ids, sizeof(ids), "%lld", (long long)id);
		char *out;
		uint64_t got;
		hx_jdoc *d;
		assert_int_equal(RUN(&out, "results", "show", ids, "--results",
		                     dbpath, "--json"),
		    0);
		assert_int_equal(
		    hx_json_parse(out, strlen(out), &d, NULL, 0), DTX_OK);
		assert_int_equal(
		    hx_jv_u64(hx_jv_get(hx_jdoc_root(d), "seed"), &got),
		    DTX_OK);
		assert_true(got == seeds[k]);
		hx_jdoc_free(d);
		free(out);
		assert_int_equal(
		    RUN(&out, "results", "export", ids, "--results", dbpath),
		    0);
		assert_int_equal(
		    hx_json_parse(out, strlen(out), &d, NULL, 0), DTX_OK);
		const hx_jv *r = hx_jv_get(hx_jdoc_root(d), "run");
		assert_int_equal(hx_jv_u64(hx_jv_get(r, "seed"), &got), DTX_OK);
		assert_true(got == seeds[k]);
		hx_jdoc_free(d);
		free(out);
	}
	char *out;
	assert_int_equal(
	    RUN(&out, "results", "list", "--results", dbpath, "--json"), 0);
	assert_non_null(strstr(out, "\"seed\":9007199254740993,"));
	assert_non_null(strstr(out, "\"seed\":9223372036854775815,"));
	assert_non_null(strstr(out, "\"seed\":176577581,"));
	free(out);
}

// Rows of run id in table t.
static int64_t
rows(sqlite3 *db, const char *t, int64_t id)
{
	char sql[128];
	sqlite3_stmt *st;
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE %s = %lld", t,
	    strcmp(t, "runs") == 0 ? "id" : "run_id", (long long)id);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static bool
report_dir_exists(int64_t id)
{
	char dir[700];
	struct stat sb;
	assert_int_equal(
	    hx_results_report_dir(dbpath, id, dir, sizeof(dir)), DTX_OK);
	return stat(dir, &sb) == 0;
}

static void
test_prune(void **state)
{
	(void)state;
	int64_t ids[5];
	for (int i = 0; i < 5; i++) {
		ids[i] = store(100 + (uint64_t)i);
		char dir[700];
		assert_int_equal(
		    hx_results_report_dir(dbpath, ids[i], dir, sizeof(dir)),
		    DTX_OK);
		assert_int_equal(hx_mkdirs(dir), DTX_OK);
		char file[800];
		snprintf(file, sizeof(file), "%s/index.html", dir);
		st_write_file(file, "x", 1);
	}
	char *out;
	assert_int_equal(
	    RUN(&out, "results", "prune", "--results", dbpath), HX_EXIT_USAGE);
	free(out);
	assert_int_equal(RUN(&out, "results", "prune", "--results", dbpath,
	                     "--before", "yesterday"),
	    HX_EXIT_USAGE);
	free(out);
	assert_int_equal(RUN(&out, "results", "prune", "--results", dbpath,
	                     "--before", "2000-01-01"),
	    0);
	assert_non_null(strstr(out, "nothing to remove"));
	free(out);

	assert_int_equal(
	    RUN(&out, "results", "prune", "--results", dbpath, "--keep", "2"),
	    0);
	char want[64];
	snprintf(want, sizeof(want), "removed 3 run(s): %lld %lld %lld",
	    (long long)ids[0], (long long)ids[1], (long long)ids[2]);
	assert_non_null(strstr(out, want));
	free(out);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	static const char *const tables[] = { "runs", "ops", "faults",
		"metrics", "txn_obs" };
	for (int i = 0; i < 5; i++) {
		for (size_t t = 0; t < 5; t++) {
			int64_t n = rows(db, tables[t], ids[i]);
			if (i < 3)
				assert_int_equal(n, 0);
			else
				assert_true(n > 0);
		}
		assert_true(report_dir_exists(ids[i]) == (i >= 3));
	}
	sqlite3_close(db);
	assert_int_equal(
	    RUN(&out, "results", "prune", "--results", dbpath, "--keep", "2"),
	    0);
	assert_non_null(strstr(out, "nothing to remove"));
	free(out);
	// The rest: everything started before a date far ahead.
	assert_int_equal(RUN(&out, "results", "prune", "--results", dbpath,
	                     "--before", "2999-01-01T00:00:00Z", "--json"),
	    0);
	hx_jdoc *d;
	assert_int_equal(hx_json_parse(out, strlen(out), &d, NULL, 0), DTX_OK);
	const hx_jv *rm = hx_jv_get(hx_jdoc_root(d), "removed");
	assert_int_equal(rm->len, 2);
	int64_t before, after;
	assert_int_equal(
	    hx_jv_int(hx_jv_get(hx_jdoc_root(d), "bytes_before"), &before),
	    DTX_OK);
	assert_int_equal(
	    hx_jv_int(hx_jv_get(hx_jdoc_root(d), "bytes_after"), &after),
	    DTX_OK);
	assert_true(after <= before);
	hx_jdoc_free(d);
	free(out);
	assert_int_equal(RUN(&out, "results", "list", "--results", dbpath), 0);
	assert_non_null(strstr(out, "(no runs"));
	free(out);
	// A missing file is not created.
	char missing[600];
	snprintf(missing, sizeof(missing), "%s/none.sqlite", tmpdir);
	assert_int_equal(
	    RUN(&out, "results", "prune", "--results", missing, "--keep", "1"),
	    HX_EXIT_INTERNAL);
	free(out);
	assert_int_equal(access(missing, F_OK), -1);
}

static void
test_export(void **state)
{
	(void)state;
	int64_t id = store(42);
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	char *out;
	assert_int_equal(RUN(&out, "results", "export", ids, "--results",
	                     dbpath, "--format", "edn"),
	    0);
	static const char *const lines[] = {
		"{:index 0, :time 10, :process 0, :type :invoke, :f :transfer, "
		":value {:from 0, :to 1, :amount 5}}\n",
		"{:index 1, :time 20, :process 0, :type :ok, :f :transfer, "
		":value {:from 0, :to 1, :amount 5, :txid "
		"18446744073709551615N}}\n",
		"{:index 2, :time 30, :process 1, :type :ok, :f :read, :value "
		"{:ts 7, :balances {0 45, 1 55}}}\n",
		"{:index 3, :time 40, :process :nemesis, :type :info, :f "
		":kill, "
		":value {:targets [2]}}\n",
		"{:index 4, :time 50, :process 1, :type :fail, :f :read, "
		":value "
		"{:lat 1.5, :big ##Inf, :w 2.0, :ok false, :x nil, \"my key\" "
		"\"a\\\"b\"}, :error "
		"\"timeout \\\"x\\\"\\n\"}\n",
	};
	char *p = out;
	for (size_t i = 0; i < 5; i++) {
		if (strncmp(p, lines[i], strlen(lines[i])) != 0)
			print_error(
			    "line %zu:\n%s\nwant:\n%s\n", i, p, lines[i]);
		assert_int_equal(strncmp(p, lines[i], strlen(lines[i])), 0);
		p += strlen(lines[i]);
	}
	assert_string_equal(p, "");
	free(out);

	assert_int_equal(RUN(&out, "results", "export", ids, "--results",
	                     dbpath, "--format", "json"),
	    0);
	hx_jdoc *d;
	assert_int_equal(hx_json_parse(out, strlen(out), &d, NULL, 0), DTX_OK);
	const hx_jv *h = hx_jv_get(hx_jdoc_root(d), "history");
	assert_int_equal(h->len, 5);
	const hx_jv *op = h->first->next;
	assert_string_equal(hx_jv_get(op, "type")->s, "ok");
	assert_string_equal(hx_jv_get(op, "f")->s, "transfer");
	uint64_t txid;
	assert_int_equal(
	    hx_jv_u64(hx_jv_get(hx_jv_get(op, "value"), "txid"), &txid),
	    DTX_OK);
	assert_true(txid == UINT64_MAX);
	const hx_jv *run = hx_jv_get(hx_jdoc_root(d), "run");
	assert_string_equal(hx_jv_get(run, "valid")->s, "unknown");
	hx_jdoc_free(d);
	free(out);

	assert_int_equal(RUN(&out, "results", "export", ids, "--results",
	                     dbpath, "--format", "xml"),
	    HX_EXIT_USAGE);
	free(out);
	assert_int_equal(
	    RUN(&out, "results", "export", "--results", dbpath), HX_EXIT_USAGE);
	free(out);
	assert_int_equal(
	    RUN(&out, "results", "export", "9999", "--results", dbpath),
	    HX_EXIT_INTERNAL);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_help_every_level, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_exit_codes_documented, setup, teardown),
		cmocka_unit_test_setup_teardown(test_man_page, setup, teardown),
		cmocka_unit_test(test_json_exact),
		cmocka_unit_test_setup_teardown(
		    test_seed_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_export, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
