// SPDX-License-Identifier: MIT
//
// Helpers shared by the storage tests: the deterministic record payloads
// the WAL tests write and check, WAL opening and sync hooks, and local
// puts; test_util.h's files and threads besides. Include it after
// <cmocka.h>.

#ifndef TEST_STORAGE_UTIL_H
#define TEST_STORAGE_UTIL_H

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "storage.h"
#include "test_util.h"

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

// Opens the store in dir with options o (NULL: defaults).
static inline stor_kv *
st_kv_open(const char *dir, const stor_kv_opts *o)
{
	stor_kv *kv;
	assert_int_equal(stor_kv_open(dir, o, &kv), DTX_OK);
	return kv;
}

// Makes a fresh temporary directory (tag in its name) into dir, of n
// bytes, and opens a store there with options o (NULL: defaults).
static inline stor_kv *
st_kv_fresh(char *dir, size_t n, const char *tag, const stor_kv_opts *o)
{
	st_tmpdir(dir, n, tag);
	return st_kv_open(dir, o);
}

// Closes kv and removes its directory dir.
static inline void
st_kv_done(stor_kv *kv, const char *dir)
{
	stor_kv_close(kv);
	(void)dtx_rmtree(dir);
}

// The int64 value of key at ts, which must be found.
static inline int64_t
st_must_get(stor_kv *kv, const char *key, clk_ts ts)
{
	int64_t v = 0;
	assert_int_equal(
	    stor_kv_get_i64(kv, key, strlen(key), ts, &v, NULL, NULL), DTX_OK);
	return v;
}

// Writes key<i % nkeys> = i at ms 100 + i, for i from `from` up to (not
// including) `to`, each in its own local transaction.
static inline void
st_put_keys(stor_kv *kv, int from, int to, int nkeys)
{
	char key[32];
	for (int i = from; i < to; i++) {
		snprintf(key, sizeof(key), "key%d", i % nkeys);
		st_put_local(kv, key, i, clk_ts_make(100 + (uint64_t)i, 0));
	}
}

#endif // TEST_STORAGE_UTIL_H
