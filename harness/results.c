// SPDX-License-Identifier: MIT
//
// The results file: every run's parameters, history, faults, checker
// results, anomalies and metrics in one sqlite3 database that several dtx
// processes share, and the reading side (a cursor over runs, a run's
// details) that `dtx results list|show` (cli/cmd_results.c) prints.
//
// Schema (version 3, PRAGMA user_version = 3, PRAGMA application_id =
// 0x64747831, "dtx1"; journal_mode WAL; every write in a transaction).
// A new file is created at version 1 and brought up to date by the same
// migrations an older file gets (see migrations[] below), so there is one
// path to the current schema:
//
//   runs(id INTEGER PRIMARY KEY AUTOINCREMENT,
//        started TEXT NOT NULL,     -- UTC "YYYY-MM-DDTHH:MM:SSZ"
//        finished TEXT,             -- NULL until the verdict is stored; a
//                                   -- run left NULL is unfinished
//        mode TEXT NOT NULL,        -- "2pc", "3pc", "saga"
//        nemesis TEXT NOT NULL,     -- e.g. "kill,partition" or "none"
//        seed INTEGER NOT NULL,     -- uint64 stored as its int64 bits
//        params TEXT NOT NULL,      -- JSON object: accounts, total, ...
//        valid INTEGER,             -- 1 valid, 0 invalid, NULL unknown
//        summary TEXT,              -- one line per checker verdict
//        interrupted INTEGER NOT NULL DEFAULT 0) -- v2: 1 when a signal
//                                   -- cut the run short (partial history)
//   ops(run_id, idx, time_ns, process, type, f, value, error, txid)
//        -- the history; process -1 is the nemesis; type is invoke, ok,
//        -- fail or info; value JSON text or NULL; key (run_id, idx);
//        -- txid (v2) the transaction id in the op's value, else NULL
//        -- (every txid column holds the id's 64 bits as SQLite's
//        -- signed integer: ids of 2^63 and above read back negative in
//        -- SQL, and exactly as unsigned through this file's readers)
//   faults(run_id, idx, start_ns, end_ns, kind, targets, detail)
//        -- fault windows; end_ns NULL when never healed; detail JSON;
//        -- kind is free text, so a new fault kind needs no migration
//   anomalies(run_id, checker, kind, txid, gid, op_idx, time_ns, detail)
//        -- txid/gid/op_idx NULL when not known; detail JSON object
//   metrics(run_id, name, value REAL)       -- key (run_id, name)
//   checks(run_id, checker, valid, summary, result)
//        -- one row per checker: valid as in runs, result JSON
//   txn_obs(run_id, txid, node, outcome)    -- atomicity observations:
//        -- outcome committed, aborted, in-doubt or unknown
//   saga_obs(run_id, gid, state, failed_step, comp_ts) -- final saga
//        -- states; comp_ts (v3) a JSON array of each step's compensation
//        -- stamp (HLC, 0 unknown; trailing zeros left out), or NULL

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness_int.h"

#define APP_ID 0x64747831
#define SCHEMA_VERSION 3
#define BATCH_ROWS 2000
#define BUSY_TIMEOUT_MS 30000

struct hx_results {
	sqlite3 *db;
	char path[1024];
	char err[512];
};

static const char schema_sql[] =
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
    "PRAGMA application_id = 1685354545;" // APP_ID in decimal
    "PRAGMA user_version = 1;";

// Migrations: migrations[i] takes a file from version i + 1 to i + 2.
// Append only; never edit one that has shipped. Each runs inside the same
// transaction as the user_version update that records it.
static const char *const migrations[] = {
	// 1 -> 2: interrupted runs; the txid of each op, for queries.
	"ALTER TABLE runs ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE ops ADD COLUMN txid INTEGER;",
	// 2 -> 3: the stamps that order each saga's compensations.
	"ALTER TABLE saga_obs ADD COLUMN comp_ts TEXT;",
};
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) + 1 == SCHEMA_VERSION,
    "one migration per schema version after the first");

// Translates an sqlite result code once, where it enters our code, and
// records a message naming the file and what was being done.
static dtx_err
db_fail(hx_results *r, int rc, const char *what)
{
	dtx_err e;
	const char *why;
	switch (rc & 0xff) {
	case SQLITE_NOTADB:
		e = DTX_ECORRUPT;
		why = "not an SQLite database";
		break;
	case SQLITE_CORRUPT:
		e = DTX_ECORRUPT;
		why = "the database file is corrupt";
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		e = DTX_EBUSY;
		why = "the database is locked by another process";
		break;
	case SQLITE_NOMEM:
		e = DTX_ENOMEM;
		why = "out of memory";
		break;
	case SQLITE_FULL:
		e = DTX_ENOSPC;
		why = "disk full";
		break;
	case SQLITE_CANTOPEN:
		e = DTX_EIO;
		why = "cannot open the file";
		break;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		e = DTX_EPERM;
		why = "not permitted";
		break;
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_RANGE:
		e = DTX_EINVAL;
		why = "invalid data";
		break;
	default:
		e = DTX_EIO;
		why = "I/O error";
	}
	snprintf(r->err, sizeof(r->err), "%s: %s: %s (%s)", r->path, what, why,
	    r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
	return e;
}

const char *
hx_results_errmsg(const hx_results *db)
{
	return db ? db->err : "no results database";
}

static dtx_err
exec(hx_results *r, const char *sql, const char *what)
{
	int rc = sqlite3_exec(r->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? DTX_OK : db_fail(r, rc, what);
}

static dtx_err
prepare(hx_results *r, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(r->db, sql, -1, st, NULL);
	return rc == SQLITE_OK ? DTX_OK : db_fail(r, rc, "preparing a query");
}

// Prepares a query whose only parameter is a run id, and binds it.
static dtx_err
prepare_run(hx_results *r, const char *sql, int64_t run_id, sqlite3_stmt **st)
{
	dtx_err e = prepare(r, sql, st);
	if (e == DTX_OK)
		sqlite3_bind_int64(*st, 1, run_id);
	return e;
}

static void
rollback(hx_results *r)
{
	if (!sqlite3_get_autocommit(r->db))
		sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
}

// Reads one integer from a single-row query.
static dtx_err
query_int(hx_results *r, const char *sql, int64_t *out, const char *what)
{
	sqlite3_stmt *st;
	dtx_err e = prepare(r, sql, &st);
	if (e != DTX_OK)
		return db_fail(r, sqlite3_errcode(r->db), what);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? DTX_OK : db_fail(r, rc, what);
}

dtx_err
hx_mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int rc = mkdir(path, 0777);
		int e = errno;
		*p = '/';
		if (rc != 0 && e != EEXIST)
			return dtx_from_errno(e);
	}
	if (mkdir(path, 0777) != 0 && errno != EEXIST)
		return dtx_from_errno(errno);
	return DTX_OK;
}

static dtx_err
make_parent(const char *path)
{
	char dir[1024];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return DTX_OK;
	*slash = '\0';
	return hx_mkdirs(dir);
}

// Creates the schema unless another process did it first.
static dtx_err
create_schema(hx_results *r)
{
	// WAL mode is a property of the file; a concurrent creator may hold
	// the lock, in which case it sets the mode.
	sqlite3_exec(r->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
	dtx_err e = exec(r, "BEGIN IMMEDIATE", "creating the schema");
	int64_t ntables = 0;
	if (e == DTX_OK)
		e = query_int(r, "SELECT count(*) FROM sqlite_master", &ntables,
		    "creating the schema");
	if (e == DTX_OK && ntables == 0)
		e = exec(r, schema_sql, "creating the schema");
	if (e == DTX_OK)
		e = exec(r, "COMMIT", "creating the schema");
	if (e != DTX_OK)
		rollback(r);
	return e;
}

// Brings the file up to SCHEMA_VERSION: every migration from its version
// on, and the new version, in one write transaction, so a failure leaves
// the file as it was and two processes opening it at once migrate it
// once (the second finds the new version inside its own transaction).
static dtx_err
migrate(hx_results *r)
{
	int64_t ver = 0;
	dtx_err e = exec(r, "BEGIN IMMEDIATE", "migrating the schema");
	if (e == DTX_OK)
		e = query_int(
		    r, "PRAGMA user_version", &ver, "migrating the schema");
	for (; e == DTX_OK && ver >= 1 && ver < SCHEMA_VERSION; ver++)
		e = exec(r, migrations[ver - 1], "migrating the schema");
	if (e == DTX_OK && ver != SCHEMA_VERSION) {
		snprintf(r->err, sizeof(r->err),
		    "%s: results schema version %lld cannot be migrated",
		    r->path, (long long)ver);
		e = DTX_EINVAL;
	}
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
	if (e == DTX_OK)
		e = exec(r, sql, "migrating the schema");
	if (e == DTX_OK)
		e = exec(r, "COMMIT", "migrating the schema");
	if (e != DTX_OK)
		rollback(r);
	return e;
}

static dtx_err
check_format(hx_results *r, bool create)
{
	int64_t app = 0, ver = 0, ntables = 0;
	// Both in one read transaction: another process may be creating
	// the schema (and setting the id) between two separate reads.
	dtx_err e = exec(r, "BEGIN", "reading");
	if (e == DTX_OK)
		e = query_int(r, "PRAGMA application_id", &app, "reading");
	if (e == DTX_OK)
		e = query_int(r, "SELECT count(*) FROM sqlite_master", &ntables,
		    "reading");
	if (e == DTX_OK)
		e = exec(r, "COMMIT", "reading");
	if (e != DTX_OK) {
		rollback(r);
		return e;
	}
	if (app == 0 && ntables == 0) {
		if (!create) {
			snprintf(r->err, sizeof(r->err),
			    "%s: empty database, not a dtx results file",
			    r->path);
			return DTX_EINVAL;
		}
		if ((e = create_schema(r)) != DTX_OK)
			return e;
		if ((e = query_int(r, "PRAGMA application_id", &app,
		         "reading")) != DTX_OK)
			return e;
	}
	if (app != APP_ID) {
		snprintf(r->err, sizeof(r->err),
		    "%s: not a dtx results database (application id %lld)",
		    r->path, (long long)app);
		return DTX_EINVAL;
	}
	if ((e = query_int(r, "PRAGMA user_version", &ver, "reading")) !=
	    DTX_OK)
		return e;
	if (ver < SCHEMA_VERSION && ver >= 1)
		return migrate(r);
	if (ver != SCHEMA_VERSION) {
		snprintf(r->err, sizeof(r->err),
		    "%s: results schema version %lld, this dtx reads versions "
		    "1 to %d",
		    r->path, (long long)ver, SCHEMA_VERSION);
		return DTX_EINVAL;
	}
	return DTX_OK;
}

dtx_err
hx_results_open(
    const char *path, bool create, hx_results **out, char *err, size_t errlen)
{
	if (path == NULL || path[0] == '\0' || out == NULL) {
		snprintf(err, errlen, "no results file named");
		return DTX_EINVAL;
	}
	if (strlen(path) >= sizeof(((hx_results *)0)->path)) {
		snprintf(err, errlen, "results path too long");
		return DTX_EINVAL;
	}
	struct stat sb;
	if (!create && stat(path, &sb) != 0) {
		snprintf(err, errlen, "%s: no such results file", path);
		return DTX_ENOENT;
	}
	hx_results *r = dtx_calloc(1, sizeof(*r));
	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return DTX_ENOMEM;
	}
	snprintf(r->path, sizeof(r->path), "%s", path);
	dtx_err e;
	if (create && (e = make_parent(path)) != DTX_OK) {
		snprintf(err, errlen, "%s: cannot create its directory: %s",
		    path, dtx_strerror(e));
		dtx_free(r);
		return e;
	}
	int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
	int rc = sqlite3_open_v2(path, &r->db, flags, NULL);
	if (rc != SQLITE_OK) {
		e = db_fail(r, rc, "opening");
		goto fail;
	}
	sqlite3_extended_result_codes(r->db, 0);
	sqlite3_busy_timeout(r->db, BUSY_TIMEOUT_MS);
	if ((e = check_format(r, create)) != DTX_OK)
		goto fail;
	if ((e = exec(r, "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL",
	         "opening")) != DTX_OK)
		goto fail;
	*out = r;
	return DTX_OK;
fail:
	snprintf(err, errlen, "%s", r->err);
	hx_results_close(r);
	return e;
}

void
hx_results_close(hx_results *db)
{
	if (db == NULL)
		return;
	sqlite3_close_v2(db->db);
	dtx_free(db);
}

static void
utc_now(char *buf, size_t len)
{
	time_t t = (time_t)(dtx_wall_ns() / 1000000000ull);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static dtx_err
step_done(hx_results *r, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? DTX_OK : db_fail(r, rc, what);
}

dtx_err
hx_results_run_begin(hx_results *db, const hx_run_info *info, int64_t *run_id)
{
	if (db == NULL || info == NULL || run_id == NULL || info->mode == NULL)
		return DTX_EINVAL;
	const char *params = info->params ? info->params : "{}";
	if (!hx_json_valid(params, strlen(params))) {
		snprintf(db->err, sizeof(db->err), "run params are not JSON");
		return DTX_EINVAL;
	}
	char now[32];
	utc_now(now, sizeof(now));
	sqlite3_stmt *st;
	dtx_err e = prepare(db,
	    "INSERT INTO runs(started, mode, nemesis, seed, params)"
	    " VALUES(?,?,?,?,?)",
	    &st);
	if (e != DTX_OK)
		return e;
	bind_text(st, 1, now);
	bind_text(st, 2, info->mode);
	bind_text(st, 3, info->nemesis ? info->nemesis : "none");
	sqlite3_bind_int64(st, 4, (sqlite3_int64)info->seed);
	bind_text(st, 5, params);
	e = step_done(db, st, "recording the run");
	sqlite3_finalize(st);
	if (e == DTX_OK)
		*run_id = sqlite3_last_insert_rowid(db->db);
	return e;
}

dtx_err
hx_results_run_interrupted(hx_results *db, int64_t run_id)
{
	if (db == NULL)
		return DTX_EINVAL;
	sqlite3_stmt *st;
	dtx_err e =
	    prepare(db, "UPDATE runs SET interrupted = 1 WHERE id = ?", &st);
	if (e != DTX_OK)
		return e;
	sqlite3_bind_int64(st, 1, run_id);
	e = step_done(db, st, "marking the run interrupted");
	if (e == DTX_OK && sqlite3_changes(db->db) != 1) {
		snprintf(
		    db->err, sizeof(db->err), "no run %lld", (long long)run_id);
		e = DTX_ENOENT;
	}
	sqlite3_finalize(st);
	return e;
}

// Runs one multi-row insert: fill(i) binds row i; a transaction commits
// every BATCH_ROWS rows so that readers see progress and the WAL stays
// small.
typedef void (*bind_row_fn)(sqlite3_stmt *st, const void *ctx, size_t i);

static dtx_err
insert_rows(hx_results *r, const char *sql, size_t n, bind_row_fn bind,
    const void *ctx, const char *what)
{
	sqlite3_stmt *st;
	dtx_err e = prepare(r, sql, &st);
	if (e != DTX_OK)
		return e;
	for (size_t i = 0; i < n && e == DTX_OK; i++) {
		if (i % BATCH_ROWS == 0) {
			if (i > 0)
				e = exec(r, "COMMIT", what);
			if (e == DTX_OK)
				e = exec(r, "BEGIN IMMEDIATE", what);
			if (e != DTX_OK)
				break;
		}
		bind(st, ctx, i);
		e = step_done(r, st, what);
	}
	if (e == DTX_OK && n > 0)
		e = exec(r, "COMMIT", what);
	if (e != DTX_OK)
		rollback(r);
	sqlite3_finalize(st);
	return e;
}

typedef struct ops_ctx {
	int64_t run;
	const hx_history *h;
} ops_ctx;

static void
bind_op(sqlite3_stmt *st, const void *ctx, size_t i)
{
	const ops_ctx *c = ctx;
	const hx_op *op = hx_history_get(c->h, i);
	sqlite3_bind_int64(st, 1, c->run);
	sqlite3_bind_int64(st, 2, op->index);
	sqlite3_bind_int64(st, 3, op->time_ns);
	sqlite3_bind_int64(st, 4, op->process);
	bind_text(st, 5, hx_op_type_name(op->type));
	bind_text(st, 6, op->f);
	bind_text(st, 7, op->value);
	bind_text(st, 8, op->error);
	uint64_t txid;
	if (op->value != NULL && hx__op_txid(op, NULL, &txid))
		sqlite3_bind_int64(st, 9, (sqlite3_int64)txid);
	else
		sqlite3_bind_null(st, 9);
}

dtx_err
hx_results_add_ops(hx_results *db, int64_t run_id, const hx_history *h)
{
	if (db == NULL || h == NULL)
		return DTX_EINVAL;
	ops_ctx c = { run_id, h };
	return insert_rows(db,
	    "INSERT INTO ops(run_id, idx, time_ns, process, type, f, value,"
	    " error, txid) VALUES(?,?,?,?,?,?,?,?,?)",
	    hx_history_len(h), bind_op, &c, "storing the history");
}

typedef struct arr_ctx {
	int64_t run;
	const void *arr;
} arr_ctx;

// Inserts the n elements of arr (may be NULL when n is 0) as rows of run
// run_id; bind reads them through an arr_ctx.
static dtx_err
insert_arr(hx_results *db, int64_t run_id, const char *sql, const void *arr,
    size_t n, bind_row_fn bind, const char *what)
{
	if (db == NULL || (n > 0 && arr == NULL))
		return DTX_EINVAL;
	arr_ctx c = { run_id, arr };
	return insert_rows(db, sql, n, bind, &c, what);
}

static void
bind_fault(sqlite3_stmt *st, const void *ctx, size_t i)
{
	const arr_ctx *c = ctx;
	const hx_fault *f = (const hx_fault *)c->arr + i;
	sqlite3_bind_int64(st, 1, c->run);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
	sqlite3_bind_int64(st, 3, f->start_ns);
	if (f->end_ns < 0)
		sqlite3_bind_null(st, 4);
	else
		sqlite3_bind_int64(st, 4, f->end_ns);
	bind_text(st, 5, f->kind ? f->kind : "?");
	bind_text(st, 6, f->targets);
	bind_text(st, 7, f->detail);
}

dtx_err
hx_results_add_faults(
    hx_results *db, int64_t run_id, const hx_fault *f, size_t n)
{
	if (db == NULL || (n > 0 && f == NULL))
		return DTX_EINVAL;
	int64_t base = 0;
	char sql[160];
	// Faults added in several calls keep numbering after earlier ones.
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM faults WHERE run_id = %lld",
	    (long long)run_id);
	dtx_err e = query_int(db, sql, &base, "storing faults");
	if (e != DTX_OK)
		return e;
	snprintf(sql, sizeof(sql),
	    "INSERT INTO faults(run_id, idx, start_ns, end_ns, kind, targets,"
	    " detail) VALUES(?,?+%lld,?,?,?,?,?)",
	    (long long)base);
	return insert_arr(db, run_id, sql, f, n, bind_fault, "storing faults");
}

static void
bind_txn(sqlite3_stmt *st, const void *ctx, size_t i)
{
	const arr_ctx *c = ctx;
	const hx_txn_obs *o = (const hx_txn_obs *)c->arr + i;
	sqlite3_bind_int64(st, 1, c->run);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)o->txid);
	sqlite3_bind_int64(st, 3, o->node);
	bind_text(st, 4, hx_txn_outcome_name(o->outcome));
}

dtx_err
hx_results_add_txn_obs(
    hx_results *db, int64_t run_id, const hx_txn_obs *o, size_t n)
{
	return insert_arr(db, run_id,
	    "INSERT INTO txn_obs(run_id, txid, node, outcome) VALUES(?,?,?,?)",
	    o, n, bind_txn, "storing observations");
}

// The comp_ts column of s: a JSON array up to its last known stamp, or
// NULL when it has none.
static void
bind_comp_ts(sqlite3_stmt *st, int col, const hx_saga_obs *s)
{
	char text[HX_SAGA_COMP_STEPS * 21 + 3];
	size_t n = HX_SAGA_COMP_STEPS, at = 0;
	while (n > 0 && s->comp_ts[n - 1] == 0)
		n--;
	if (n == 0) {
		sqlite3_bind_null(st, col);
		return;
	}
	text[at++] = '[';
	for (size_t i = 0; i < n; i++)
		at += (size_t)snprintf(text + at, sizeof(text) - at,
		    "%s%" PRIu64, i > 0 ? "," : "", (uint64_t)s->comp_ts[i]);
	text[at++] = ']';
	sqlite3_bind_text(st, col, text, (int)at, SQLITE_TRANSIENT);
}

// Parses a comp_ts column (NULL: none) into s->comp_ts.
static dtx_err
parse_comp_ts(const char *text, hx_saga_obs *s)
{
	if (text == NULL)
		return DTX_OK;
	hx_jdoc *doc = NULL;
	if (hx_json_parse(text, strlen(text), &doc, NULL, 0) != DTX_OK)
		return DTX_ECORRUPT;
	const hx_jv *a = hx_jdoc_root(doc);
	dtx_err e = a->type == HX_JV_ARR && a->len <= HX_SAGA_COMP_STEPS
	    ? DTX_OK
	    : DTX_ECORRUPT;
	size_t i = 0;
	for (const hx_jv *v = a->first; v != NULL && e == DTX_OK; v = v->next) {
		uint64_t ts;
		if (hx_jv_u64(v, &ts) != DTX_OK)
			e = DTX_ECORRUPT;
		else
			s->comp_ts[i++] = (clk_ts)ts;
	}
	hx_jdoc_free(doc);
	return e;
}

static void
bind_saga(sqlite3_stmt *st, const void *ctx, size_t i)
{
	const arr_ctx *c = ctx;
	const hx_saga_obs *s = (const hx_saga_obs *)c->arr + i;
	sqlite3_bind_int64(st, 1, c->run);
	sqlite3_bind_text(
	    st, 2, s->gid, (int)strnlen(s->gid, HX_GID_MAX - 1), SQLITE_STATIC);
	bind_text(st, 3, hx_saga_state_name(s->state));
	sqlite3_bind_int64(st, 4, s->failed_step);
	bind_comp_ts(st, 5, s);
}

dtx_err
hx_results_add_saga_obs(
    hx_results *db, int64_t run_id, const hx_saga_obs *s, size_t n)
{
	return insert_arr(db, run_id,
	    "INSERT INTO saga_obs(run_id, gid, state, failed_step, comp_ts)"
	    " VALUES(?,?,?,?,?)",
	    s, n, bind_saga, "storing saga states");
}

static dtx_err
put_metric(hx_results *db, sqlite3_stmt *st, int64_t run_id, const char *name,
    double value)
{
	sqlite3_bind_int64(st, 1, run_id);
	bind_text(st, 2, name);
	sqlite3_bind_double(st, 3, value);
	return step_done(db, st, "storing a metric");
}

static const char metric_sql[] =
    "INSERT OR REPLACE INTO metrics(run_id, name, value) VALUES(?,?,?)";

dtx_err
hx_results_add_metric(
    hx_results *db, int64_t run_id, const char *name, double value)
{
	if (db == NULL || name == NULL)
		return DTX_EINVAL;
	sqlite3_stmt *st;
	dtx_err e = prepare(db, metric_sql, &st);
	if (e == DTX_OK)
		e = put_metric(db, st, run_id, name, value);
	sqlite3_finalize(st);
	return e;
}

static void
bind_valid(sqlite3_stmt *st, int i, hx_valid v)
{
	if (v == HX_VALID_UNKNOWN)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int(st, i, v == HX_VALID_TRUE ? 1 : 0);
}

static dtx_err
store_checks(hx_results *db, int64_t run_id, const hx_verdict *v)
{
	sqlite3_stmt *chk = NULL, *an = NULL, *met = NULL;
	dtx_err e = prepare(db,
	    "INSERT INTO checks(run_id, checker, valid, summary, result)"
	    " VALUES(?,?,?,?,?)",
	    &chk);
	if (e == DTX_OK)
		e = prepare(db,
		    "INSERT INTO anomalies(run_id, checker, kind, txid, gid,"
		    " op_idx, time_ns, detail) VALUES(?,?,?,?,?,?,?,?)",
		    &an);
	if (e == DTX_OK)
		e = prepare(db, metric_sql, &met);
	for (size_t i = 0; e == DTX_OK && i < hx_verdict_count(v); i++) {
		const hx_check *c = hx_verdict_check(v, i);
		sqlite3_bind_int64(chk, 1, run_id);
		bind_text(chk, 2, c->name);
		bind_valid(chk, 3, c->valid);
		bind_text(chk, 4, c->summary ? c->summary : "");
		bind_text(chk, 5, c->json ? c->json : "{}");
		e = step_done(db, chk, "storing checker results");
		for (size_t k = 0; e == DTX_OK && k < c->nanoms; k++) {
			const hx_anomaly *a = &c->anoms[k];
			sqlite3_bind_int64(an, 1, run_id);
			bind_text(an, 2, a->checker);
			bind_text(an, 3, a->kind);
			if (a->has_txid)
				sqlite3_bind_int64(
				    an, 4, (sqlite3_int64)a->txid);
			bind_text(an, 5, a->gid);
			if (a->op_index >= 0) {
				sqlite3_bind_int64(an, 6, a->op_index);
				sqlite3_bind_int64(an, 7, a->time_ns);
			}
			bind_text(an, 8, a->detail);
			e = step_done(db, an, "storing anomalies");
		}
	}
	const hx_stats_result *s = &v->stats;
	if (e == DTX_OK)
		e = put_metric(
		    db, met, run_id, "ops.total", (double)s->total_ops);
	if (e == DTX_OK)
		e = put_metric(
		    db, met, run_id, "ops.client", (double)s->client_ops);
	if (e == DTX_OK)
		e = put_metric(db, met, run_id, "ops.open", (double)s->open);
	if (e == DTX_OK)
		e = put_metric(db, met, run_id, "duration_s",
		    (double)s->duration_ns / 1e9);
	for (size_t i = 0; e == DTX_OK && i < s->nfs; i++) {
		const hx_stats_f *f = &s->fs[i];
		static const char *const qn[] = { "p50", "p90", "p99", "max" };
		uint64_t qv[] = { f->p50, f->p90, f->p99, f->max };
		char name[160];
		for (int t = HX_OP_OK; e == DTX_OK && t <= HX_OP_INFO; t++) {
			snprintf(name, sizeof(name), "%s.%s", f->f,
			    hx_op_type_name((hx_op_type)t));
			e = put_metric(
			    db, met, run_id, name, (double)f->counts[t]);
		}
		for (int q = 0; e == DTX_OK && q < 4 && f->nlat > 0; q++) {
			snprintf(name, sizeof(name), "%s.latency_ms.%s", f->f,
			    qn[q]);
			e = put_metric(
			    db, met, run_id, name, (double)qv[q] / 1e6);
		}
	}
	sqlite3_finalize(chk);
	sqlite3_finalize(an);
	sqlite3_finalize(met);
	return e;
}

dtx_err
hx_results_run_finish(hx_results *db, int64_t run_id, const hx_verdict *v)
{
	if (db == NULL || v == NULL)
		return DTX_EINVAL;
	char sql[256];
	dtx_err e = exec(db, "BEGIN IMMEDIATE", "storing the verdict");
	if (e != DTX_OK)
		return e;
	snprintf(sql, sizeof(sql),
	    "DELETE FROM checks WHERE run_id = %lld;"
	    "DELETE FROM anomalies WHERE run_id = %lld",
	    (long long)run_id, (long long)run_id);
	e = exec(db, sql, "storing the verdict");
	if (e == DTX_OK)
		e = store_checks(db, run_id, v);
	hx_sb s = { 0 };
	for (size_t i = 0; i < hx_verdict_count(v); i++) {
		const hx_check *c = hx_verdict_check(v, i);
		hx_sb_printf(&s, "%s%s %s", i ? "; " : "", c->name,
		    hx_valid_name(c->valid));
		if (c->valid == HX_VALID_FALSE && c->summary)
			hx_sb_printf(&s, " (%s)", c->summary);
	}
	char *summary = hx_sb_take(&s);
	if (e == DTX_OK && summary == NULL)
		e = DTX_ENOMEM;
	sqlite3_stmt *st = NULL;
	if (e == DTX_OK)
		e = prepare(db,
		    "UPDATE runs SET finished = ?, valid = ?, summary = ?"
		    " WHERE id = ?",
		    &st);
	if (e == DTX_OK) {
		char now[32];
		utc_now(now, sizeof(now));
		bind_text(st, 1, now);
		bind_valid(st, 2, v->valid);
		bind_text(st, 3, summary);
		sqlite3_bind_int64(st, 4, run_id);
		e = step_done(db, st, "storing the verdict");
	}
	if (e == DTX_OK && sqlite3_changes(db->db) != 1) {
		snprintf(
		    db->err, sizeof(db->err), "no run %lld", (long long)run_id);
		e = DTX_ENOENT;
	}
	sqlite3_finalize(st);
	dtx_free(summary);
	if (e == DTX_OK)
		e = exec(db, "COMMIT", "storing the verdict");
	if (e != DTX_OK)
		rollback(db);
	return e;
}

// ---------------------------------------------------------------- loading

void
hx_run_record_fini(hx_run_record *r)
{
	if (r == NULL)
		return;
	dtx_free(r->started);
	dtx_free(r->finished);
	dtx_free(r->mode);
	dtx_free(r->nemesis);
	dtx_free(r->params);
	dtx_free(r->summary);
	memset(r, 0, sizeof(*r));
}

// A text column as the statement holds it, until the next step.
static const char *
col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

// A column as an owned string (NULL stays NULL). *oom is set on failure.
static char *
col_str(sqlite3_stmt *st, int i, bool *oom)
{
	const char *t = col_text(st, i);
	if (t == NULL)
		return NULL;
	char *s = dtx_strdup(t);
	if (s == NULL)
		*oom = true;
	return s;
}

static hx_valid
col_valid(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return HX_VALID_UNKNOWN;
	return sqlite3_column_int(st, i) ? HX_VALID_TRUE : HX_VALID_FALSE;
}

static const char run_cols[] =
    "SELECT id, started, finished, mode, nemesis, seed, params, valid,"
    " summary, (SELECT count(*) FROM ops WHERE ops.run_id = runs.id),"
    " interrupted FROM runs";

static dtx_err
row_to_run(hx_results *db, sqlite3_stmt *st, hx_run_record *out)
{
	hx_run_record r = { 0 };
	bool oom = false;
	r.id = sqlite3_column_int64(st, 0);
	r.started = col_str(st, 1, &oom);
	r.finished = col_str(st, 2, &oom);
	r.mode = col_str(st, 3, &oom);
	r.nemesis = col_str(st, 4, &oom);
	r.seed = (uint64_t)sqlite3_column_int64(st, 5);
	r.params = col_str(st, 6, &oom);
	r.valid = col_valid(st, 7);
	r.summary = col_str(st, 8, &oom);
	r.nops = sqlite3_column_int64(st, 9);
	r.interrupted = sqlite3_column_int(st, 10) != 0;
	if (!oom && (r.mode == NULL || r.started == NULL)) {
		snprintf(db->err, sizeof(db->err),
		    "%s: run %lld has no mode or start time", db->path,
		    (long long)r.id);
		hx_run_record_fini(&r);
		return DTX_ECORRUPT;
	}
	if (oom) {
		hx_run_record_fini(&r);
		snprintf(db->err, sizeof(db->err), "out of memory");
		return DTX_ENOMEM;
	}
	*out = r;
	return DTX_OK;
}

dtx_err
hx_results_load_run(hx_results *db, int64_t id, hx_run_record *out)
{
	char sql[512];
	snprintf(sql, sizeof(sql), "%s WHERE id = ?", run_cols);
	sqlite3_stmt *st;
	dtx_err e = prepare_run(db, sql, id, &st);
	if (e != DTX_OK)
		return e;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		e = row_to_run(db, st, out);
	} else if (rc == SQLITE_DONE) {
		snprintf(
		    db->err, sizeof(db->err), "no run %lld", (long long)id);
		e = DTX_ENOENT;
	} else {
		e = db_fail(db, rc, "reading the run");
	}
	sqlite3_finalize(st);
	return e;
}

dtx_err
hx_results_load_history(hx_results *db, int64_t id, hx_history **out)
{
	sqlite3_stmt *st;
	dtx_err e = prepare_run(db,
	    "SELECT idx, time_ns, process, type, f, value, error FROM ops"
	    " WHERE run_id = ? ORDER BY idx",
	    id, &st);
	if (e != DTX_OK)
		return e;
	hx_history *h = hx_history_new();
	if (h == NULL) {
		sqlite3_finalize(st);
		return DTX_ENOMEM;
	}
	int rc = SQLITE_DONE;
	int64_t expect = 0;
	while (e == DTX_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		hx_op_type type;
		const char *f = col_text(st, 4);
		if (sqlite3_column_int64(st, 0) != expect ||
		    hx_op_type_parse(col_text(st, 3), &type) != DTX_OK ||
		    f == NULL) {
			e = DTX_ECORRUPT;
			break;
		}
		e = hx_history_append(h, sqlite3_column_int64(st, 1),
		    sqlite3_column_int64(st, 2), type, f, col_text(st, 5),
		    col_text(st, 6));
		if (e == DTX_EINVAL)
			e = DTX_ECORRUPT;
		expect++;
	}
	if (e == DTX_OK && rc != SQLITE_DONE)
		e = db_fail(db, rc, "reading the history");
	else if (e == DTX_ECORRUPT)
		snprintf(db->err, sizeof(db->err),
		    "%s: run %lld op %lld is damaged (bad index, type, f, "
		    "time or value JSON)",
		    db->path, (long long)id, (long long)expect);
	else if (e == DTX_ENOMEM)
		snprintf(db->err, sizeof(db->err), "out of memory");
	sqlite3_finalize(st);
	if (e != DTX_OK) {
		hx_history_free(h);
		return e;
	}
	*out = h;
	return DTX_OK;
}

dtx_err
hx_results_load_faults(hx_results *db, int64_t id, hx_fault **out, size_t *n)
{
	sqlite3_stmt *st;
	dtx_err e = prepare_run(db,
	    "SELECT start_ns, end_ns, kind, targets, detail FROM faults"
	    " WHERE run_id = ? ORDER BY idx",
	    id, &st);
	if (e != DTX_OK)
		return e;
	hx_fault *f = NULL;
	size_t cnt = 0, cap = 0;
	int rc = SQLITE_DONE;
	bool oom = false;
	while (!oom && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (DTX_GROW(f, cnt, cap, 16) != DTX_OK) {
			oom = true;
			break;
		}
		hx_fault *w = &f[cnt++];
		memset(w, 0, sizeof(*w));
		w->start_ns = sqlite3_column_int64(st, 0);
		w->end_ns = sqlite3_column_type(st, 1) == SQLITE_NULL
		    ? -1
		    : sqlite3_column_int64(st, 1);
		w->kind = col_str(st, 2, &oom);
		w->targets = col_str(st, 3, &oom);
		w->detail = col_str(st, 4, &oom);
	}
	if (oom) {
		e = DTX_ENOMEM;
		snprintf(db->err, sizeof(db->err), "out of memory");
	} else if (rc != SQLITE_DONE) {
		e = db_fail(db, rc, "reading faults");
	}
	sqlite3_finalize(st);
	if (e != DTX_OK) {
		hx_faults_free(f, cnt);
		return e;
	}
	*out = f;
	*n = cnt;
	return DTX_OK;
}

dtx_err
hx_results_load_obs(hx_results *db, int64_t id, hx_txn_obs **txns,
    size_t *ntxns, hx_saga_obs **sagas, size_t *nsagas)
{
	sqlite3_stmt *st = NULL;
	hx_txn_obs *t = NULL;
	hx_saga_obs *s = NULL;
	size_t nt = 0, ns = 0, cap = 0;
	int rc = SQLITE_DONE;
	dtx_err e = prepare_run(db,
	    "SELECT txid, node, outcome FROM txn_obs WHERE run_id = ?"
	    " ORDER BY rowid",
	    id, &st);
	if (e != DTX_OK)
		return e;
	while (e == DTX_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((e = DTX_GROW(t, nt, cap, 64)) != DTX_OK)
			break;
		hx_txn_obs *o = &t[nt++];
		o->txid = (uint64_t)sqlite3_column_int64(st, 0);
		o->node = (int32_t)sqlite3_column_int64(st, 1);
		if (hx_txn_outcome_parse(col_text(st, 2), &o->outcome) !=
		    DTX_OK)
			e = DTX_ECORRUPT;
	}
	if (e == DTX_OK && rc != SQLITE_DONE)
		e = db_fail(db, rc, "reading observations");
	sqlite3_finalize(st);
	st = NULL;
	cap = 0;
	if (e == DTX_OK)
		e = prepare_run(db,
		    "SELECT gid, state, failed_step, comp_ts FROM saga_obs"
		    " WHERE run_id = ? ORDER BY rowid",
		    id, &st);
	while (e == DTX_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((e = DTX_GROW(s, ns, cap, 64)) != DTX_OK)
			break;
		hx_saga_obs *o = &s[ns++];
		memset(o, 0, sizeof(*o));
		const char *gid = col_text(st, 0);
		if (gid == NULL || strlen(gid) >= HX_GID_MAX ||
		    hx_saga_state_parse(col_text(st, 1), &o->state) != DTX_OK) {
			e = DTX_ECORRUPT;
			break;
		}
		memcpy(o->gid, gid, strlen(gid) + 1);
		o->failed_step = (int32_t)sqlite3_column_int64(st, 2);
		if ((e = parse_comp_ts(col_text(st, 3), o)) != DTX_OK)
			break;
	}
	if (e == DTX_OK && st != NULL && rc != SQLITE_DONE)
		e = db_fail(db, rc, "reading saga states");
	sqlite3_finalize(st);
	if (e == DTX_ECORRUPT)
		snprintf(db->err, sizeof(db->err),
		    "%s: run %lld has a damaged observation", db->path,
		    (long long)id);
	else if (e == DTX_ENOMEM)
		snprintf(db->err, sizeof(db->err), "out of memory");
	if (e != DTX_OK) {
		dtx_free(t);
		dtx_free(s);
		return e;
	}
	*txns = t;
	*ntxns = nt;
	*sagas = s;
	*nsagas = ns;
	return DTX_OK;
}

dtx_err
hx_results_report_dir(
    const char *results_path, int64_t id, char *buf, size_t len)
{
	if (results_path == NULL || buf == NULL)
		return DTX_EINVAL;
	const char *slash = strrchr(results_path, '/');
	int n;
	if (slash == NULL)
		n = snprintf(
		    buf, len, "%s-run-%lld", results_path, (long long)id);
	else
		n = snprintf(buf, len, "%.*s/%s-run-%lld",
		    (int)(slash - results_path), results_path, slash + 1,
		    (long long)id);
	return n < 0 || (size_t)n >= len ? DTX_ERANGE : DTX_OK;
}

// ---------------------------------------------------------------- reading

struct hx_run_cursor {
	hx_results *db;
	sqlite3_stmt *st;
};

dtx_err
hx_results_runs_open(hx_results *db, hx_run_cursor **out)
{
	char sql[512];
	snprintf(sql, sizeof(sql), "%s ORDER BY id", run_cols);
	hx_run_cursor *cur = dtx_alloc(sizeof(*cur));
	if (cur == NULL)
		return DTX_ENOMEM;
	cur->db = db;
	dtx_err rv = prepare(db, sql, &cur->st);
	if (rv != DTX_OK) {
		dtx_free(cur);
		return rv;
	}
	*out = cur;
	return DTX_OK;
}

dtx_err
hx_results_runs_next(hx_run_cursor *cur, hx_run_record *r, bool *done)
{
	int step = sqlite3_step(cur->st);
	if (step == SQLITE_ROW) {
		dtx_err rv = row_to_run(cur->db, cur->st, r);
		if (rv == DTX_OK)
			*done = false;
		return rv;
	}
	if (step != SQLITE_DONE)
		return db_fail(cur->db, step, "listing runs");
	*done = true;
	return DTX_OK;
}

void
hx_results_runs_close(hx_run_cursor *cur)
{
	if (cur == NULL)
		return;
	sqlite3_finalize(cur->st);
	dtx_free(cur);
}

// Prints the checks, anomalies, faults and metrics of run id.
dtx_err
hx_results_print_details(hx_results *db, int64_t id, bool json, hx_json *j)
{
	static const char *const queries[] = {
		"SELECT checker, valid, summary, result FROM checks"
		" WHERE run_id = ? ORDER BY rowid",
		"SELECT checker, kind, txid, gid, op_idx, time_ns, detail"
		" FROM anomalies WHERE run_id = ? ORDER BY rowid",
		"SELECT idx, start_ns, end_ns, kind, targets, detail FROM "
		"faults"
		" WHERE run_id = ? ORDER BY idx",
		"SELECT name, value FROM metrics WHERE run_id = ? ORDER BY "
		"name",
	};
	static const char *const titles[] = { "checkers", "anomalies", "faults",
		"metrics" };
	for (int q = 0; q < 4; q++) {
		sqlite3_stmt *st;
		dtx_err e = prepare_run(db, queries[q], id, &st);
		if (e != DTX_OK)
			return e;
		if (json)
			hx_json_arr_begin(j, titles[q]);
		else
			printf("%s:\n", titles[q]);
		int rc;
		size_t rows = 0;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *c0 = col_text(st, 0);
			rows++;
			if (q == 0 && json) {
				hx_json_obj_begin(j, NULL);
				hx_json_str(j, "checker", c0);
				hx_json_verdict(j, "valid", col_valid(st, 1));
				hx_json_str(j, "summary", col_text(st, 2));
				hx_json_raw(j, "result", col_text(st, 3));
				hx_json_obj_end(j);
			} else if (q == 0) {
				printf("  %-10s %-7s %s\n", c0,
				    hx_valid_name(col_valid(st, 1)),
				    col_text(st, 2));
			} else if (q == 1 && json) {
				hx_json_obj_begin(j, NULL);
				hx_json_str(j, "checker", c0);
				hx_json_str(j, "kind", col_text(st, 1));
				if (sqlite3_column_type(st, 2) != SQLITE_NULL)
					hx_json_u64(j, "txid",
					    (uint64_t)sqlite3_column_int64(
					        st, 2));
				if (sqlite3_column_type(st, 3) != SQLITE_NULL)
					hx_json_str(j, "gid", col_text(st, 3));
				if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
					hx_json_int(j, "op",
					    sqlite3_column_int64(st, 4));
					hx_json_int(j, "time_ns",
					    sqlite3_column_int64(st, 5));
				}
				hx_json_raw(j, "detail", col_text(st, 6));
				hx_json_obj_end(j);
			} else if (q == 1) {
				printf("  %s %s", c0, col_text(st, 1));
				if (sqlite3_column_type(st, 2) != SQLITE_NULL)
					printf(" txid %llu",
					    (unsigned long long)
					        sqlite3_column_int64(st, 2));
				if (sqlite3_column_type(st, 3) != SQLITE_NULL)
					printf(" gid %s", col_text(st, 3));
				if (sqlite3_column_type(st, 4) != SQLITE_NULL)
					printf(" op %lld at %.3f s",
					    (long long)sqlite3_column_int64(
					        st, 4),
					    (double)sqlite3_column_int64(
					        st, 5) /
					        1e9);
				printf(": %s\n", col_text(st, 6));
			} else if (q == 2 && json) {
				hx_json_obj_begin(j, NULL);
				hx_json_str(j, "kind", col_text(st, 3));
				hx_json_int(
				    j, "start_ns", sqlite3_column_int64(st, 1));
				if (sqlite3_column_type(st, 2) != SQLITE_NULL)
					hx_json_int(j, "end_ns",
					    sqlite3_column_int64(st, 2));
				hx_json_str(j, "targets", col_text(st, 4));
				hx_json_raw(j, "detail", col_text(st, 5));
				hx_json_obj_end(j);
			} else if (q == 2) {
				printf("  %-12s %9.3f s .. ", col_text(st, 3),
				    (double)sqlite3_column_int64(st, 1) / 1e9);
				if (sqlite3_column_type(st, 2) == SQLITE_NULL)
					printf("%-11s", "(not healed)");
				else
					printf("%9.3f s",
					    (double)sqlite3_column_int64(
					        st, 2) /
					        1e9);
				const char *t = col_text(st, 4);
				printf("  %s\n", t ? t : "");
			} else if (json) {
				hx_json_obj_begin(j, NULL);
				hx_json_str(j, "name", c0);
				hx_json_num(
				    j, "value", sqlite3_column_double(st, 1));
				hx_json_obj_end(j);
			} else {
				printf("  %-32s %g\n", c0,
				    sqlite3_column_double(st, 1));
			}
		}
		sqlite3_finalize(st);
		if (json)
			hx_json_arr_end(j);
		else if (rows == 0)
			printf("  (none)\n");
		if (rc != SQLITE_DONE)
			return db_fail(db, rc, "reading the run");
	}
	return DTX_OK;
}
