// SPDX-License-Identifier: MIT
//
// Housekeeping of the results file (`dtx results prune`): removes old runs
// with every row that names them and their report directories, then gives
// the space back with VACUUM. It finds the tables to clean by their run_id
// column rather than by a list, so a table a later schema version adds is
// cleaned too.

#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>

#include "harness_int.h"

#define BUSY_TIMEOUT_MS 30000

// "YYYY-MM-DD" and "YYYY-MM-DDTHH:MM:SSZ" are the two prefixes of the
// runs table's started column that compare as text the way they do as
// times.
bool
hx_utc_date_ok(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
	size_t n = strlen(s);
	if (n != 10 && n != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool digit = s[i] >= '0' && s[i] <= '9';
		if (shape[i] == 'd' ? !digit : s[i] != shape[i])
			return false;
	}
	return true;
}

static int64_t
file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

static dtx_err
sql_fail(sqlite3 *db, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s", what, sqlite3_errmsg(db));
	return DTX_EIO;
}

// Fills temp.prune with the ids to remove and copies them into out.
static dtx_err
select_runs(sqlite3 *db, int64_t keep, const char *before, hx_prune_result *out,
    char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	dtx_err rv = DTX_OK;
	if (sqlite3_exec(db, "CREATE TEMP TABLE prune(id INTEGER PRIMARY KEY)",
	        NULL, NULL, NULL) != SQLITE_OK)
		return sql_fail(db, "prune", err, errlen);
	if (sqlite3_prepare_v2(db,
	        "INSERT INTO temp.prune SELECT id FROM runs WHERE (?1 > 0 AND "
	        "id NOT IN (SELECT id FROM runs ORDER BY id DESC LIMIT ?1)) "
	        "OR (?2 IS NOT NULL AND started < ?2)",
	        -1, &st, NULL) != SQLITE_OK)
		return sql_fail(db, "prune", err, errlen);
	sqlite3_bind_int64(st, 1, keep);
	if (before != NULL)
		sqlite3_bind_text(st, 2, before, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rv = sql_fail(db, "prune", err, errlen);
	sqlite3_finalize(st);
	st = NULL;
	if (rv != DTX_OK)
		return rv;
	int n = sqlite3_changes(db);
	out->ids = dtx_calloc(n > 0 ? (size_t)n : 1, sizeof(*out->ids));
	if (out->ids == NULL)
		return DTX_ENOMEM;
	if (sqlite3_prepare_v2(db, "SELECT id FROM temp.prune ORDER BY id", -1,
	        &st, NULL) != SQLITE_OK)
		return sql_fail(db, "prune", err, errlen);
	while (sqlite3_step(st) == SQLITE_ROW && out->nids < (size_t)n)
		out->ids[out->nids++] = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return DTX_OK;
}

// Deletes the selected runs' rows from every table with a run_id column,
// then the runs themselves.
static dtx_err
delete_rows(sqlite3 *db, hx_prune_result *out, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	dtx_err rv = DTX_OK;
	if (sqlite3_prepare_v2(db,
	        "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) "
	        "p WHERE m.type = 'table' AND p.name = 'run_id' ORDER BY "
	        "m.name",
	        -1, &st, NULL) != SQLITE_OK)
		return sql_fail(db, "listing the tables", err, errlen);
	while (rv == DTX_OK && sqlite3_step(st) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		char *sql = sqlite3_mprintf("DELETE FROM \"%w\" WHERE run_id "
		                            "IN (SELECT id FROM temp.prune)",
		    t);
		if (sql == NULL)
			rv = DTX_ENOMEM;
		else if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
			rv = sql_fail(db, t, err, errlen);
		else
			out->rows += sqlite3_changes(db);
		sqlite3_free(sql);
	}
	sqlite3_finalize(st);
	if (rv != DTX_OK)
		return rv;
	if (sqlite3_exec(db,
	        "DELETE FROM runs WHERE id IN (SELECT id FROM temp.prune)",
	        NULL, NULL, NULL) != SQLITE_OK)
		return sql_fail(db, "runs", err, errlen);
	out->rows += sqlite3_changes(db);
	return DTX_OK;
}

static void
remove_dirs(const char *path, hx_prune_result *out)
{
	for (size_t i = 0; i < out->nids; i++) {
		char dir[4200];
		struct stat sb;
		if (hx_results_report_dir(
		        path, out->ids[i], dir, sizeof(dir)) == DTX_OK &&
		    stat(dir, &sb) == 0 && dtx_rmtree(dir) == DTX_OK)
			out->dirs++;
	}
}

dtx_err
hx_results_prune(const char *path, int64_t keep, const char *before,
    hx_prune_result *out, char *err, size_t errlen)
{
	hx_results *check = NULL;
	sqlite3 *db = NULL;
	hx_prune_result r = { 0 };
	dtx_err rv;
	if (path == NULL || out == NULL || keep < 0 ||
	    (keep == 0 && before == NULL)) {
		snprintf(
		    err, errlen, "give --keep N (N >= 1) or --before DATE");
		return DTX_EINVAL;
	}
	if (before != NULL && !hx_utc_date_ok(before)) {
		snprintf(err, errlen,
		    "--before wants a UTC date YYYY-MM-DD or time "
		    "YYYY-MM-DDTHH:MM:SSZ, not '%s'",
		    before);
		return DTX_EINVAL;
	}
	// Opening it the usual way checks that it is a dtx results file
	// (and brings its schema up to date) before anything is deleted.
	if ((rv = hx_results_open(path, false, &check, err, errlen)) != DTX_OK)
		return rv;
	hx_results_close(check);
	r.bytes_before = file_size(path);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK) {
		rv = sql_fail(db, path, err, errlen);
		goto fail;
	}
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		rv = sql_fail(db, path, err, errlen);
		goto fail;
	}
	if ((rv = select_runs(db, keep, before, &r, err, errlen)) != DTX_OK ||
	    (rv = delete_rows(db, &r, err, errlen)) != DTX_OK) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rv = sql_fail(db, "commit", err, errlen);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	remove_dirs(path, &r);
	// VACUUM rewrites the file through the WAL; the checkpoint moves it
	// back so that the file itself shrinks.
	if (sqlite3_exec(db, "VACUUM; PRAGMA wal_checkpoint(TRUNCATE)", NULL,
	        NULL, NULL) != SQLITE_OK) {
		rv = sql_fail(db, "vacuum", err, errlen);
		goto fail;
	}
	sqlite3_close(db);
	r.bytes_after = file_size(path);
	*out = r;
	return DTX_OK;
fail:
	sqlite3_close(db);
	hx_prune_result_fini(&r);
	return rv;
}

void
hx_prune_result_fini(hx_prune_result *r)
{
	if (r == NULL)
		return;
	dtx_free(r->ids);
	memset(r, 0, sizeof(*r));
}
