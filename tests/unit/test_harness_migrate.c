// SPDX-License-Identifier: MIT
//
// Results file migrations (harness/results.c): a file written with the
// version 1 schema (made here with that version's own CREATE statements)
// opens, is migrated to the current version in one transaction and keeps
// every run; a migration that fails leaves the file exactly as it was; a
// newer file is refused; processes opening an old file at once migrate it
// once; and the new columns (runs.interrupted, ops.txid) are written.

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "harness.h"
#include "test_util.h"

static char tmpdir[256];
static char dbpath[512];

// The version 1 schema exactly as dtx created it before migrations.
static const char v1_schema[] =
    "CREATE TABLE runs(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " started TEXT NOT NULL, finished TEXT, mode TEXT NOT NULL,"
    " nemesis TEXT NOT NULL, seed INTEGER NOT NULL, params TEXT NOT NULL,"
    " valid INTEGER, summary TEXT);"
    "CREATE TABLE ops(run_id INTEGER NOT NULL REFERENCES runs(id)"
    " ON DELETE CASCADE, idx INTEGER NOT NULL, time_ns INTEGER NOT NULL,"
    " process INTEGER NOT NULL, type TEXT NOT NULL CHECK(type IN"
    " ('invoke','ok','fail','info')), f TEXT NOT NULL, value TEXT,"
    " error TEXT, PRIMARY KEY(run_id, idx)) WITHOUT ROWID;"
    "CREATE TABLE faults(run_id INTEGER NOT NULL REFERENCES runs(id)"
    " ON DELETE CASCADE, idx INTEGER NOT NULL, start_ns INTEGER NOT NULL,"
    " end_ns INTEGER, kind TEXT NOT NULL, targets TEXT, detail TEXT,"
    " PRIMARY KEY(run_id, idx));"
    "CREATE TABLE anomalies(run_id INTEGER NOT NULL REFERENCES runs(id)"
    " ON DELETE CASCADE, checker TEXT NOT NULL, kind TEXT NOT NULL,"
    " txid INTEGER, gid TEXT, op_idx INTEGER, time_ns INTEGER,"
    " detail TEXT NOT NULL);"
    "CREATE INDEX anomalies_run ON anomalies(run_id);"
    "CREATE TABLE metrics(run_id INTEGER NOT NULL REFERENCES runs(id)"
    " ON DELETE CASCADE, name TEXT NOT NULL, value REAL NOT NULL,"
    " PRIMARY KEY(run_id, name));"
    "CREATE TABLE checks(run_id INTEGER NOT NULL REFERENCES runs(id)"
    " ON DELETE CASCADE, checker TEXT NOT NULL, valid INTEGER,"
    " summary TEXT NOT NULL, result TEXT NOT NULL,"
    " PRIMARY KEY(run_id, checker));"
    "CREATE TABLE txn_obs(run_id INTEGER NOT NULL REFERENCES runs(id)"
    " ON DELETE CASCADE, txid INTEGER NOT NULL, node INTEGER NOT NULL,"
    " outcome TEXT NOT NULL);"
    "CREATE INDEX txn_obs_run ON txn_obs(run_id);"
    "CREATE TABLE saga_obs(run_id INTEGER NOT NULL REFERENCES runs(id)"
    " ON DELETE CASCADE, gid TEXT NOT NULL, state TEXT NOT NULL,"
    " failed_step INTEGER NOT NULL);"
    "CREATE INDEX saga_obs_run ON saga_obs(run_id);"
    "PRAGMA application_id = 1685354545;"
    "PRAGMA user_version = 1;";

// One finished run with two ops and a fault, as version 1 stored it.
static const char v1_rows[] =
    "INSERT INTO runs(started, finished, mode, nemesis, seed, params,"
    " valid, summary) VALUES('2026-01-02T03:04:05Z',"
    " '2026-01-02T03:05:05Z', '2pc', 'kill', 77, '{\"total\":100}', 1,"
    " 'bank true');"
    "INSERT INTO ops VALUES(1, 0, 10, 0, 'invoke', 'transfer',"
    " '{\"from\":1,\"to\":2,\"amount\":3}', NULL);"
    "INSERT INTO ops VALUES(1, 1, 20, 0, 'ok', 'transfer',"
    " '{\"from\":1,\"to\":2,\"amount\":3,\"txid\":42}', NULL);"
    "INSERT INTO faults VALUES(1, 0, 5, 15, 'kill', '[1]', '{}');"
    "INSERT INTO saga_obs VALUES(1, 'g-old', 'aborted', 1);";

static int
setup(void **state)
{
	(void)state;
	return st_setup_tmp(tmpdir, sizeof(tmpdir), "migrate", dbpath,
	    sizeof(dbpath), "old.sqlite");
}

static int
teardown(void **state)
{
	(void)state;
	return st_teardown_tmp(tmpdir);
}

// Runs sql on the file directly, as another program (or an older dtx)
// would.
static void
raw_exec(const char *sql)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

// One integer from a query on the file.
static int64_t
raw_int(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_type(st, 0) == SQLITE_NULL
	    ? -1
	    : sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static bool
has_column(const char *table, const char *col)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s'",
	    table, col);
	return raw_int(sql) == 1;
}

static void
make_v1_file(void)
{
	raw_exec(v1_schema);
	raw_exec(v1_rows);
	assert_int_equal(raw_int("PRAGMA user_version"), 1);
	assert_false(has_column("runs", "interrupted"));
}

static void
test_v1_file_is_migrated(void **state)
{
	(void)state;
	make_v1_file();
	hx_results *db;
	char err[512];
	assert_int_equal(
	    hx_results_open(dbpath, false, &db, err, sizeof(err)), DTX_OK);
	// The old run reads back unchanged, not interrupted.
	hx_run_record r;
	assert_int_equal(hx_results_load_run(db, 1, &r), DTX_OK);
	assert_string_equal(r.mode, "2pc");
	assert_string_equal(r.nemesis, "kill");
	assert_string_equal(r.params, "{\"total\":100}");
	assert_string_equal(r.finished, "2026-01-02T03:05:05Z");
	assert_int_equal(r.seed, 77);
	assert_int_equal(r.valid, HX_VALID_TRUE);
	assert_int_equal(r.nops, 2);
	assert_false(r.interrupted);
	hx_run_record_fini(&r);
	hx_history *h;
	assert_int_equal(hx_results_load_history(db, 1, &h), DTX_OK);
	assert_int_equal(hx_history_len(h), 2);
	hx_history_free(h);
	hx_fault *f;
	size_t nf;
	assert_int_equal(hx_results_load_faults(db, 1, &f, &nf), DTX_OK);
	assert_int_equal(nf, 1);
	hx_faults_free(f, nf);
	// A saga observation of version 1 loads with no compensation stamps.
	hx_txn_obs *tx;
	hx_saga_obs *so;
	size_t ntx, nso;
	assert_int_equal(
	    hx_results_load_obs(db, 1, &tx, &ntx, &so, &nso), DTX_OK);
	assert_int_equal(ntx, 0);
	assert_int_equal(nso, 1);
	assert_string_equal(so[0].gid, "g-old");
	assert_int_equal(so[0].failed_step, 1);
	for (int i = 0; i < HX_SAGA_COMP_STEPS; i++)
		assert_true(so[0].comp_ts[i] == 0);
	dtx_free(tx);
	dtx_free(so);

	// The new column is written.
	assert_int_equal(hx_results_run_interrupted(db, 1), DTX_OK);
	assert_int_equal(hx_results_run_interrupted(db, 99), DTX_ENOENT);
	assert_int_equal(hx_results_load_run(db, 1, &r), DTX_OK);
	assert_true(r.interrupted);
	hx_run_record_fini(&r);
	hx_results_close(db);

	assert_int_equal(raw_int("PRAGMA user_version"), 3);
	assert_true(has_column("runs", "interrupted"));
	assert_true(has_column("ops", "txid"));
	assert_true(has_column("saga_obs", "comp_ts"));
	assert_int_equal(raw_int("SELECT interrupted FROM runs"), 1);
	// Old ops keep a NULL txid (-1 here).
	assert_int_equal(raw_int("SELECT txid FROM ops WHERE idx = 1"), -1);

	// Opening again changes nothing.
	assert_int_equal(
	    hx_results_open(dbpath, false, &db, err, sizeof(err)), DTX_OK);
	hx_results_close(db);
	assert_int_equal(raw_int("PRAGMA user_version"), 3);
	assert_int_equal(raw_int("SELECT count(*) FROM runs"), 1);
}

static void
test_new_file_and_txids(void **state)
{
	(void)state;
	hx_results *db;
	char err[512];
	assert_int_equal(
	    hx_results_open(dbpath, true, &db, err, sizeof(err)), DTX_OK);
	hx_run_info ri = { .mode = "2pc", .nemesis = "none", .seed = 1 };
	int64_t id;
	assert_int_equal(hx_results_run_begin(db, &ri, &id), DTX_OK);
	hx_history *h = hx_history_new();
	assert_non_null(h);
	assert_int_equal(hx_history_append(h, 1, 0, HX_OP_INVOKE, "transfer",
	                     "{\"from\":1,\"to\":2,\"amount\":3}", NULL),
	    DTX_OK);
	assert_int_equal(hx_history_append(h, 2, 0, HX_OP_OK, "transfer",
	                     "{\"from\":1,\"to\":2,\"amount\":3,"
	                     "\"txid\":18446744073709551615}",
	                     NULL),
	    DTX_OK);
	assert_int_equal(hx_results_add_ops(db, id, h), DTX_OK);
	hx_history_free(h);
	hx_run_record r;
	assert_int_equal(hx_results_load_run(db, id, &r), DTX_OK);
	assert_false(r.interrupted);
	hx_run_record_fini(&r);
	hx_results_close(db);
	assert_int_equal(raw_int("PRAGMA user_version"), 3);
	assert_int_equal(
	    raw_int("SELECT count(*) FROM ops WHERE txid IS NULL"), 1);
	// A uint64 txid is kept as its int64 bits.
	assert_int_equal(
	    raw_int("SELECT txid FROM ops WHERE txid IS NOT NULL"), -1);
	assert_int_equal(
	    raw_int("SELECT count(*) FROM ops WHERE txid IS NOT NULL"), 1);
}

// Compensation stamps (v3) round-trip through the file; a saga without
// any stores NULL, and a damaged column is refused, not misread.
static void
test_saga_comp_ts(void **state)
{
	(void)state;
	hx_results *db;
	char err[512];
	assert_int_equal(
	    hx_results_open(dbpath, true, &db, err, sizeof(err)), DTX_OK);
	hx_run_info ri = { .mode = "saga", .nemesis = "none", .seed = 1 };
	int64_t id;
	assert_int_equal(hx_results_run_begin(db, &ri, &id), DTX_OK);
	hx_saga_obs in[2];
	memset(in, 0, sizeof(in));
	snprintf(in[0].gid, sizeof(in[0].gid), "g1");
	in[0].state = HX_SAGA_ABORTED;
	in[0].failed_step = -1;
	in[0].comp_ts[0] = (clk_ts)1 << 60;
	in[0].comp_ts[2] = 7;
	snprintf(in[1].gid, sizeof(in[1].gid), "g2");
	in[1].state = HX_SAGA_COMMITTED;
	in[1].failed_step = -1;
	assert_int_equal(hx_results_add_saga_obs(db, id, in, 2), DTX_OK);
	hx_txn_obs *tx;
	hx_saga_obs *so;
	size_t ntx, nso;
	assert_int_equal(
	    hx_results_load_obs(db, id, &tx, &ntx, &so, &nso), DTX_OK);
	assert_int_equal(nso, 2);
	assert_memory_equal(
	    so[0].comp_ts, in[0].comp_ts, sizeof(in[0].comp_ts));
	assert_memory_equal(
	    so[1].comp_ts, in[1].comp_ts, sizeof(in[1].comp_ts));
	dtx_free(tx);
	dtx_free(so);
	hx_results_close(db);
	assert_int_equal(
	    raw_int("SELECT count(*) FROM saga_obs WHERE comp_ts IS NULL"), 1);
	raw_exec("UPDATE saga_obs SET comp_ts = '[1,\"x\"]' WHERE gid = 'g1'");
	assert_int_equal(
	    hx_results_open(dbpath, false, &db, err, sizeof(err)), DTX_OK);
	assert_int_equal(
	    hx_results_load_obs(db, id, &tx, &ntx, &so, &nso), DTX_ECORRUPT);
	hx_results_close(db);
}

static void
test_failed_migration_rolls_back(void **state)
{
	(void)state;
	make_v1_file();
	// A column in the way of the migration's second statement: its
	// first (runs.interrupted) must be undone with it.
	raw_exec("ALTER TABLE ops ADD COLUMN txid TEXT");
	hx_results *db = NULL;
	char err[512] = "";
	assert_int_not_equal(
	    hx_results_open(dbpath, false, &db, err, sizeof(err)), DTX_OK);
	assert_null(db);
	assert_true(err[0] != '\0');
	assert_int_equal(raw_int("PRAGMA user_version"), 1);
	assert_false(has_column("runs", "interrupted"));
	assert_int_equal(raw_int("SELECT count(*) FROM runs"), 1);
}

static void
test_newer_file_refused(void **state)
{
	(void)state;
	make_v1_file();
	raw_exec("PRAGMA user_version = 9");
	hx_results *db = NULL;
	char err[512] = "";
	assert_int_equal(
	    hx_results_open(dbpath, false, &db, err, sizeof(err)), DTX_EINVAL);
	assert_non_null(strstr(err, "version 9"));
	assert_int_equal(raw_int("PRAGMA user_version"), 9);
}

static void
test_concurrent_openers(void **state)
{
	(void)state;
	enum { N = 4 };
	make_v1_file();
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			hx_results *db;
			char err[512];
			dtx_err e = hx_results_open(
			    dbpath, false, &db, err, sizeof(err));
			if (e == DTX_OK)
				hx_results_close(db);
			_exit(e == DTX_OK ? 0 : 1);
		}
	}
	for (int i = 0; i < N; i++) {
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(raw_int("PRAGMA user_version"), 3);
	assert_true(has_column("runs", "interrupted"));
	assert_int_equal(raw_int("SELECT count(*) FROM runs"), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_v1_file_is_migrated, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_new_file_and_txids, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_saga_comp_ts, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_failed_migration_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_newer_file_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_concurrent_openers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
