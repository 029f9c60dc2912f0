// SPDX-License-Identifier: MIT
//
// dtx bench storage: durable WAL appends per second with 1, 8 and 64
// writers against the same single-record transactions in SQLite (WAL mode,
// synchronous=FULL), recovery replay speed of a WAL of 1M records, and the
// resident memory of an MVCC store holding 1M keys.

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "storage.h"

#define TMPFS_MAGIC_NUM 0x01021994L

typedef struct bench_cfg {
	bool json;
	char *dir;
	double seconds;
	int64_t records;
	int64_t keys;
	char *sync;
} bench_cfg;

static const dtx_cfg_opt opts[] = {
	{ "json", DTX_CFG_BOOL, offsetof(bench_cfg, json), 0, 0, "false",
	    "print one JSON object" },
	{ "dir", DTX_CFG_STR, offsetof(bench_cfg, dir), 0, 0, NULL,
	    "parent directory for the files (default: ./.dtx, on disk)" },
	{ "seconds", DTX_CFG_DOUBLE, offsetof(bench_cfg, seconds), 0, 600, "2",
	    "seconds per throughput measurement" },
	{ "records", DTX_CFG_INT, offsetof(bench_cfg, records), 1000, 100000000,
	    "1000000", "records in the replay WAL" },
	{ "keys", DTX_CFG_INT, offsetof(bench_cfg, keys), 1000, 100000000,
	    "1000000", "keys in the memory measurement" },
	{ "sync", DTX_CFG_STR, offsetof(bench_cfg, sync), 0, 0, "full",
	    "full (default) or none: none skips fdatasync and is reported" },
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))
#define PAYLOAD 100

typedef struct writer {
	stor_wal *wal;
	sqlite3 *db;
	uint64_t deadline;
	pthread_barrier_t *start;
	uint64_t done;
	dtx_err err;
	int rc;
} writer;

// ---------------------------------------------------------------- WAL

static void *
wal_writer(void *p)
{
	writer *w = p;
	uint8_t buf[PAYLOAD];
	memset(buf, 'w', sizeof(buf));
	pthread_barrier_wait(w->start);
	while (dtx_mono_ns() < w->deadline) {
		w->err =
		    stor_wal_append(w->wal, 1, buf, sizeof(buf), true, NULL);
		if (w->err != DTX_OK)
			break;
		w->done++;
	}
	return NULL;
}

static void *
sqlite_writer(void *p)
{
	writer *w = p;
	uint8_t buf[PAYLOAD];
	memset(buf, 's', sizeof(buf));
	sqlite3_stmt *st = NULL;
	w->rc = sqlite3_prepare_v2(
	    w->db, "INSERT INTO t(v) VALUES (?1)", -1, &st, NULL);
	pthread_barrier_wait(w->start);
	while (w->rc == SQLITE_OK && dtx_mono_ns() < w->deadline) {
		sqlite3_bind_blob(st, 1, buf, sizeof(buf), SQLITE_STATIC);
		int rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			w->done++;
		else if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
			w->rc = rc;
	}
	sqlite3_finalize(st);
	return NULL;
}

// Runs n writer threads until the deadline; returns operations per second
// or a negative value on error.
static double
run_writers(writer *ws, int n, void *(*fn)(void *), double seconds)
{
	pthread_t th[64];
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, (unsigned)n + 1);
	uint64_t deadline = 0;
	for (int i = 0; i < n; i++) {
		ws[i].start = &start;
		ws[i].done = 0;
		pthread_create(&th[i], NULL, fn, &ws[i]);
	}
	uint64_t t0 = dtx_mono_ns();
	deadline = t0 + (uint64_t)(seconds * 1e9);
	for (int i = 0; i < n; i++)
		ws[i].deadline = deadline;
	pthread_barrier_wait(&start);
	uint64_t total = 0;
	bool bad = false;
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		total += ws[i].done;
		bad |= ws[i].err != DTX_OK || ws[i].rc != SQLITE_OK;
	}
	uint64_t t1 = dtx_mono_ns();
	pthread_barrier_destroy(&start);
	return bad ? -1.0 : (double)total / ((double)(t1 - t0) / 1e9);
}

static void
rmrf(const char *dir)
{
	if (dtx_rmtree(dir) != DTX_OK)
		fprintf(stderr, "dtx bench storage: cannot remove %s\n", dir);
}

static double
bench_wal(const char *base, int n, const stor_wal_opts *o, double seconds)
{
	char dir[1100];
	snprintf(dir, sizeof(dir), "%s/wal-%dw", base, n);
	stor_wal *w;
	dtx_err err = stor_wal_open(dir, o, NULL, NULL, NULL, &w);
	if (err != DTX_OK) {
		fprintf(stderr, "dtx bench storage: %s: %s\n", dir,
		    dtx_strerror(err));
		return -1;
	}
	writer ws[64];
	memset(ws, 0, sizeof(ws));
	for (int i = 0; i < n; i++)
		ws[i].wal = w;
	double r = run_writers(ws, n, wal_writer, seconds);
	stor_wal_close(w);
	rmrf(dir);
	return r;
}

static double
bench_sqlite(const char *base, int n, bool full, double seconds)
{
	char path[1100];
	snprintf(path, sizeof(path), "%s/sqlite-%dw.db", base, n);
	writer ws[64];
	memset(ws, 0, sizeof(ws));
	double r = -1;
	int opened = 0;
	for (int i = 0; i < n; i++, opened++) {
		if (sqlite3_open_v2(path, &ws[i].db,
		        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
		            SQLITE_OPEN_NOMUTEX,
		        NULL) != SQLITE_OK)
			goto out;
		sqlite3_busy_timeout(ws[i].db, 60000);
		char sql[200];
		snprintf(sql, sizeof(sql),
		    "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;%s",
		    full ? "FULL" : "OFF",
		    i == 0 ? " CREATE TABLE IF NOT EXISTS t(id INTEGER "
		             "PRIMARY KEY, v BLOB);"
		           : "");
		if (sqlite3_exec(ws[i].db, sql, NULL, NULL, NULL) != SQLITE_OK)
			goto out;
	}
	r = run_writers(ws, n, sqlite_writer, seconds);
out:
	if (r < 0 && opened > 0)
		fprintf(stderr, "dtx bench storage: sqlite: %s\n",
		    sqlite3_errmsg(ws[opened < n ? opened : n - 1].db));
	for (int i = 0; i <= opened && i < n; i++)
		sqlite3_close(ws[i].db);
	char f[1200];
	snprintf(f, sizeof(f), "%s-wal", path);
	unlink(f);
	snprintf(f, sizeof(f), "%s-shm", path);
	unlink(f);
	unlink(path);
	return r;
}

// ---------------------------------------------------------------- replay

// Drops the WAL's files from the page cache so replay reads the disk.
static void
drop_cache(const char *dir)
{
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "ls '%s'", dir);
	FILE *p = popen(cmd, "r");
	if (p == NULL)
		return;
	char name[256];
	while (fgets(name, sizeof(name), p) != NULL) {
		name[strcspn(name, "\n")] = '\0';
		char path[1500];
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		(void)fdatasync(fd);
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
	pclose(p);
}

static double
bench_replay(
    const char *base, uint64_t nrec, const stor_wal_opts *o, uint64_t *replayed)
{
	char dir[1100];
	snprintf(dir, sizeof(dir), "%s/replay", base);
	stor_wal *w;
	if (stor_wal_open(dir, o, NULL, NULL, NULL, &w) != DTX_OK)
		return -1;
	uint8_t buf[32];
	memset(buf, 'r', sizeof(buf));
	uint64_t lsn = 0;
	for (uint64_t i = 0; i < nrec; i++)
		if (stor_wal_append(w, 1, buf, sizeof(buf), false, &lsn) !=
		    DTX_OK)
			break;
	dtx_err err = stor_wal_sync(w, lsn);
	stor_wal_close(w);
	if (err != DTX_OK)
		return -1;
	drop_cache(dir);
	stor_wal_stats st = { 0 };
	uint64_t t0 = dtx_mono_ns();
	err = stor_wal_open(dir, o, NULL, NULL, NULL, &w);
	uint64_t t1 = dtx_mono_ns();
	if (err == DTX_OK)
		stor_wal_stats_get(w, &st);
	stor_wal_close(w);
	rmrf(dir);
	uint64_t n = st.replayed;
	if (err != DTX_OK || n != nrec)
		return -1;
	*replayed = n;
	return (double)n / ((double)(t1 - t0) / 1e9);
}

// ---------------------------------------------------------------- memory

static double
rss_mb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (f == NULL)
		return -1;
	char line[256];
	double kb = -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %lf", &kb) == 1)
			break;
	fclose(f);
	return kb / 1024.0;
}

// In a child process (so nothing else in this process counts): builds a
// store of nkeys int64 keys in batches, reports its RSS, checkpoints; a
// second child reopens it from the checkpoint and reports its RSS.
static double
child_rss(const char *dir, uint64_t nkeys, const stor_kv_opts *o, bool load)
{
	int p[2];
	if (pipe(p) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		double r = -1;
		stor_kv *kv;
		if (stor_kv_open(dir, o, &kv) == DTX_OK) {
			bool ok = true;
			for (uint64_t i = 0; load && ok && i < nkeys;) {
				stor_txn *t;
				ok = stor_txn_begin(kv, CLK_TS_MAX, &t) ==
				    DTX_OK;
				for (int j = 0; ok && j < 10000 && i < nkeys;
				     j++, i++) {
					char key[32];
					int kl = snprintf(key, sizeof(key),
					    "acct-%07" PRIu64, i);
					ok = stor_txn_put_i64(t, key,
					         (size_t)kl, 1000) == DTX_OK;
				}
				ok = ok &&
				    stor_txn_commit(
				        t, clk_ts_make(1000 + i, 0)) == DTX_OK;
			}
			stor_kv_stats s;
			stor_kv_stats_get(kv, &s);
			if (ok && s.keys == nkeys)
				r = rss_mb();
			if (load && stor_kv_checkpoint(kv) != DTX_OK)
				r = -1;
			stor_kv_close(kv);
		}
		ssize_t wn = write(p[1], &r, sizeof(r));
		_exit(wn == (ssize_t)sizeof(r) ? 0 : 1);
	}
	close(p[1]);
	double r = -1;
	if (read(p[0], &r, sizeof(r)) != (ssize_t)sizeof(r))
		r = -1;
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
	return r;
}

// ---------------------------------------------------------------- command

static const char *
fs_name(const char *dir)
{
	struct statfs sf;
	if (statfs(dir, &sf) != 0)
		return "unknown";
	if ((long)sf.f_type == TMPFS_MAGIC_NUM)
		return "tmpfs";
	switch ((unsigned long)sf.f_type) {
	case 0xEF53:
		return "ext4";
	case 0x58465342:
		return "xfs";
	case 0x9123683E:
		return "btrfs";
	case 0x794c7630:
		return "overlayfs";
	default:
		return "other";
	}
}

int
bench_storage(int argc, char **argv)
{
	bench_cfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	int rc = hx_parse_flags(
	    "dtx bench storage", opts, NOPTS, &cfg, argc, argv, NULL, 0, NULL);
	if (rc != 0) {
		dtx_cfg_fini(opts, NOPTS, &cfg);
		return rc < 0 ? HX_EXIT_OK : rc;
	}
	stor_wal_opts wo;
	stor_wal_opts_init(&wo);
	if (strcmp(cfg.sync, "none") == 0) {
		wo.sync = STOR_SYNC_NONE;
	} else if (strcmp(cfg.sync, "full") != 0) {
		fprintf(stderr,
		    "dtx bench storage: --sync must be full or none, not "
		    "'%s'\n",
		    cfg.sync);
		dtx_cfg_fini(opts, NOPTS, &cfg);
		return HX_EXIT_USAGE;
	}
	bool full = wo.sync == STOR_SYNC_FULL;
	const char *parent = cfg.dir != NULL ? cfg.dir : ".dtx";
	if (mkdir(parent, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "dtx bench storage: cannot create %s: %s\n",
		    parent, strerror(errno));
		dtx_cfg_fini(opts, NOPTS, &cfg);
		return HX_EXIT_FAILURE;
	}
	char base[1024];
	snprintf(base, sizeof(base), "%s/bench-storage-XXXXXX", parent);
	if (mkdtemp(base) == NULL) {
		fprintf(stderr,
		    "dtx bench storage: cannot create a directory "
		    "in %s: %s\n",
		    parent, strerror(errno));
		dtx_cfg_fini(opts, NOPTS, &cfg);
		return HX_EXIT_FAILURE;
	}
	const char *fs = fs_name(base);
	if (!cfg.json)
		printf("storage bench in %s (%s), sync=%s%s\n", base, fs,
		    full ? "full" : "none",
		    full ? "" : " (NOT DURABLE: benchmark only)");

	static const int nw[3] = { 1, 8, 64 };
	double wal_r[3], sql_r[3];
	bool ok = true;
	for (int i = 0; i < 3; i++) {
		wal_r[i] = bench_wal(base, nw[i], &wo, cfg.seconds);
		sql_r[i] = bench_sqlite(base, nw[i], full, cfg.seconds);
		ok &= wal_r[i] > 0 && sql_r[i] > 0;
		if (!cfg.json)
			printf("  %2d writers: WAL %10.0f appends/s   SQLite "
			       "%8.0f txn/s   ratio %.1f\n",
			    nw[i], wal_r[i], sql_r[i],
			    sql_r[i] > 0 ? wal_r[i] / sql_r[i] : 0.0);
	}
	uint64_t replayed = 0;
	double replay =
	    bench_replay(base, (uint64_t)cfg.records, &wo, &replayed);
	ok &= replay > 0;
	if (!cfg.json)
		printf("  replay: %" PRIu64 " records at %.0f records/s "
		       "(page cache dropped first)\n",
		    replayed, replay);
	char kvdir[1100];
	snprintf(kvdir, sizeof(kvdir), "%s/kv", base);
	stor_kv_opts ko;
	stor_kv_opts_init(&ko);
	ko.wal = wo;
	double rss = child_rss(kvdir, (uint64_t)cfg.keys, &ko, true);
	double rss_re = child_rss(kvdir, (uint64_t)cfg.keys, &ko, false);
	ok &= rss > 0 && rss_re > 0;
	if (!cfg.json)
		printf("  memory: %" PRId64 " keys: %.1f MB RSS after loading, "
		       "%.1f MB after reopening from the checkpoint\n",
		    cfg.keys, rss, rss_re);
	rmrf(base);

	if (cfg.json) {
		hx_json j;
		hx_json_begin(&j, stdout);
		hx_json_str(&j, "bench", "storage");
		hx_json_str(&j, "sync", full ? "full" : "none");
		hx_json_bool(&j, "durable", full);
		hx_json_str(&j, "fs", fs);
		hx_json_num(&j, "seconds", cfg.seconds);
		hx_json_num(&j, "appends_per_s_1w", wal_r[0]);
		hx_json_num(&j, "appends_per_s_8w", wal_r[1]);
		hx_json_num(&j, "appends_per_s_64w", wal_r[2]);
		hx_json_num(&j, "sqlite_txn_per_s_1w", sql_r[0]);
		hx_json_num(&j, "sqlite_txn_per_s_8w", sql_r[1]);
		hx_json_num(&j, "sqlite_txn_per_s_64w", sql_r[2]);
		hx_json_num(&j, "ratio_vs_sqlite_1w",
		    sql_r[0] > 0 ? wal_r[0] / sql_r[0] : 0);
		hx_json_num(&j, "ratio_vs_sqlite_64w",
		    sql_r[2] > 0 ? wal_r[2] / sql_r[2] : 0);
		hx_json_int(&j, "replay_records", (int64_t)replayed);
		hx_json_num(&j, "replay_records_per_s", replay);
		hx_json_int(&j, "keys", cfg.keys);
		hx_json_num(&j, "rss_mb_1m_keys", rss);
		hx_json_num(&j, "rss_mb_1m_keys_reopen", rss_re);
		hx_json_bool(&j, "ok", ok);
		hx_json_end(&j);
	}
	dtx_cfg_fini(opts, NOPTS, &cfg);
	if (!ok) {
		fprintf(stderr, "dtx bench storage: a measurement failed\n");
		return HX_EXIT_FAILURE;
	}
	return HX_EXIT_OK;
}
