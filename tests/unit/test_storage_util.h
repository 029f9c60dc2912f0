// SPDX-License-Identifier: MIT
//
// Helpers shared by the storage tests: temporary directories, file copies
// the deterministic record payloads the WAL tests write and check, and
// small drivers (threads, local puts). Include it after <cmocka.h>.

#ifndef TEST_STORAGE_UTIL_H
#define TEST_STORAGE_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage.h"

static int
st_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

// Removes dir and everything below it.
static inline void
st_rmrf(const char *dir)
{
	nftw(dir, st_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

// Makes a fresh temporary directory under $TMPDIR (or /tmp) into buf.
static inline void
st_tmpdir(char *buf, size_t n, const char *tag)
{
	const char *base = getenv("TMPDIR");
	snprintf(
	    buf, n, "%s/dtx-%s-XXXXXX", base && *base ? base : "/tmp", tag);
	if (mkdtemp(buf) == NULL) {
		perror("mkdtemp");
		abort();
	}
}

// Reads a whole file into a malloc'd buffer.
static inline unsigned char *
st_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *p = malloc(n > 0 ? (size_t)n : 1);
	if (p != NULL && n > 0 && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return p;
}

static inline void
st_write_file(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (f == NULL || (len > 0 && fwrite(p, 1, len, f) != len)) {
		perror(path);
		abort();
	}
	fclose(f);
}

// The payload of test record lsn: its length and bytes follow from lsn.
static inline size_t
st_payload(uint64_t lsn, unsigned char *out)
{
	size_t n = 1 + (size_t)((lsn * 7) % 23);
	for (size_t i = 0; i < n; i++)
		out[i] = (unsigned char)(lsn * 31 + i * 13);
	return n;
}

static inline uint8_t
st_type(uint64_t lsn)
{
	return (uint8_t)(1 + lsn % 5);
}

// True when (type, payload) is exactly what test record lsn was.
static inline bool
st_payload_ok(uint64_t lsn, uint8_t type, const void *p, size_t len)
{
	unsigned char want[64];
	size_t n = st_payload(lsn, want);
	return type == st_type(lsn) && len == n && memcmp(p, want, n) == 0;
}

// Runs fn on n threads, the i-th with argument (char *)args + i * size,
// and joins them all. True when every thread returned NULL.
static inline bool
st_run_threads(int n, void *(*fn)(void *), void *args, size_t size)
{
	pthread_t *th = calloc((size_t)n, sizeof(*th));
	bool ok = th != NULL;
	for (int i = 0; ok && i < n; i++)
		pthread_create(
		    &th[i], NULL, fn, (char *)args + (size_t)i * size);
	for (int i = 0; ok && i < n; i++) {
		void *r;
		pthread_join(th[i], &r);
		if (r != NULL)
			ok = false;
	}
	free(th);
	return ok;
}

// Opens the WAL in dir with options o (NULL: defaults), without replay
// callbacks.
static inline stor_wal *
st_wal_open(const char *dir, const stor_wal_opts *o)
{
	stor_wal *w;
	assert_int_equal(stor_wal_open(dir, o, NULL, NULL, NULL, &w), DTX_OK);
	return w;
}

// A WAL sync hook that fails one chosen sync call with EIO.
typedef struct st_sync_hook {
	int syncs; // sync calls so far
	int fail_at; // the sync call number that fails (1-based)
	int after_fail; // sync calls made after the failure
} st_sync_hook;

static int
st_failing_sync(void *arg, int fd)
{
	st_sync_hook *h = arg;
	h->syncs++;
	if (h->syncs > h->fail_at)
		h->after_fail++;
	if (h->syncs == h->fail_at)
		return EIO;
	return fdatasync(fd) == 0 ? 0 : errno;
}

// Points the WAL options o at hook h, which fails no call until
// st_fail_next_sync.
static inline void
st_hook_syncs(stor_wal_opts *o, st_sync_hook *h)
{
	*h = (st_sync_hook) { .fail_at = INT_MAX };
	o->sync_fn = st_failing_sync;
	o->hook_arg = h;
}

static inline void
st_fail_next_sync(st_sync_hook *h)
{
	h->fail_at = h->syncs + 1;
}

// Writes key = v in a local transaction (no prepare) committed at ts.
static inline void
st_put_local(stor_kv *kv, const char *key, int64_t v, clk_ts ts)
{
	stor_txn *t;
	assert_int_equal(stor_txn_begin(kv, CLK_TS_MAX, &t), DTX_OK);
	assert_int_equal(stor_txn_put_i64(t, key, strlen(key), v), DTX_OK);
	assert_int_equal(stor_txn_commit(t, ts), DTX_OK);
}

#endif // TEST_STORAGE_UTIL_H
