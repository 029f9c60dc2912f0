// SPDX-License-Identifier: MIT
//
// The WAL: append and replay, group commit sharing fsyncs, segment
// rotation and checkpoint truncation (rule 19), recovery of a small WAL
// truncated at every byte and with every bit flipped (rule 17), the
// exported layout (segment names, framing, stor_wal_scan) and fault hooks
// (torn tail, flipped bit), an injected fsync failure (rule 18), and the
// out-of-memory loop over open, append, recovery and checkpoint.

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_storage_util.h"

typedef struct got {
	uint64_t n; // records seen
	uint64_t first, last;
	bool bad; // a record that was never written
	uint64_t ckpt_lsn;
	size_t ckpt_len;
	unsigned char ckpt[64];
} got;

static dtx_err
on_rec(void *arg, uint64_t lsn, uint8_t type, const void *p, size_t len)
{
	got *g = arg;
	if (!st_payload_ok(lsn, type, p, len) ||
	    (g->n > 0 && lsn != g->last + 1))
		g->bad = true;
	if (g->n == 0)
		g->first = lsn;
	g->last = lsn;
	g->n++;
	return DTX_OK;
}

static dtx_err
on_ckpt(void *arg, uint64_t lsn, const void *blob, size_t len)
{
	got *g = arg;
	g->ckpt_lsn = lsn;
	g->ckpt_len = len < sizeof(g->ckpt) ? len : sizeof(g->ckpt);
	memcpy(g->ckpt, blob, g->ckpt_len);
	return DTX_OK;
}

static void
append_n(stor_wal *w, uint64_t from, uint64_t n, bool force)
{
	for (uint64_t l = from; l < from + n; l++) {
		unsigned char p[64];
		size_t len = st_payload(l, p);
		uint64_t lsn = 0;
		assert_int_equal(
		    stor_wal_append(w, st_type(l), p, len, force, &lsn),
		    DTX_OK);
		assert_int_equal(lsn, l);
	}
}

static void
test_append_replay(void **state)
{
	(void)state;
	char dir[256];
	st_tmpdir(dir, sizeof(dir), "wal");
	stor_wal *w;
	got g = { 0 };
	assert_int_equal(
	    stor_wal_open(dir, NULL, on_ckpt, on_rec, &g, &w), DTX_OK);
	assert_int_equal(g.n, 0);
	append_n(w, 1, 100, true);
	assert_true(stor_wal_durable_lsn(w) >= 100);
	append_n(w, 101, 50, false);
	// Bad arguments are refused, not written.
	assert_int_equal(stor_wal_append(w, 0, "x", 1, true, NULL), DTX_EINVAL);
	assert_int_equal(
	    stor_wal_append(w, 1, NULL, STOR_WAL_MAX_RECORD + 1, true, NULL),
	    DTX_EINVAL);
	assert_int_equal(stor_wal_sync(w, 150), DTX_OK);
	assert_int_equal(stor_wal_sync(w, 151), DTX_EINVAL);
	stor_wal_close(w);

	memset(&g, 0, sizeof(g));
	assert_int_equal(
	    stor_wal_open(dir, NULL, on_ckpt, on_rec, &g, &w), DTX_OK);
	assert_false(g.bad);
	assert_int_equal(g.n, 150);
	assert_int_equal(g.first, 1);
	assert_int_equal(stor_wal_last_lsn(w), 150);
	append_n(w, 151, 1, true);
	stor_wal_close(w);
	stor_wal_close(NULL);
	(void)dtx_rmtree(dir);
}

typedef struct gc_arg {
	stor_wal *w;
	int n;
	int id;
} gc_arg;

static void *
gc_writer(void *p)
{
	gc_arg *a = p;
	unsigned char buf[32];
	for (int i = 0; i < a->n; i++) {
		memset(buf, a->id, sizeof(buf));
		if (stor_wal_append(a->w, 1, buf, sizeof(buf), true, NULL) !=
		    DTX_OK)
			return (void *)1;
	}
	return NULL;
}

static void
test_group_commit(void **state)
{
	(void)state;
	char dir[256];
	st_tmpdir(dir, sizeof(dir), "walgc");
	stor_wal *w = st_wal_open(dir, NULL);
	enum { T = 16, N = 100 };
	gc_arg a[T];
	for (int i = 0; i < T; i++)
		a[i] = (gc_arg) { .w = w, .n = N, .id = i };
	assert_true(st_run_threads(T, gc_writer, a, sizeof(a[0])));
	stor_wal_stats st;
	stor_wal_stats_get(w, &st);
	assert_int_equal(st.appends, T * N);
	// Concurrent forced appends share fsyncs: far fewer syncs than
	// records.
	assert_true(st.syncs < (uint64_t)T * N / 2);
	print_message("group commit: %d appends, %llu syncs\n", T * N,
	    (unsigned long long)st.syncs);
	stor_wal_close(w);
	assert_int_equal(stor_wal_open(dir, NULL, NULL, NULL, NULL, &w), 0);
	stor_wal_stats_get(w, &st);
	assert_int_equal(st.replayed, T * N);
	stor_wal_close(w);
	(void)dtx_rmtree(dir);
}

static int
count_segments(const char *dir)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "ls %s | grep -c '^wal-'", dir);
	FILE *p = popen(cmd, "r");
	int n = 0;
	if (fscanf(p, "%d", &n) != 1)
		n = -1;
	pclose(p);
	return n;
}

static void
test_rotation_checkpoint(void **state)
{
	(void)state;
	char dir[256];
	st_tmpdir(dir, sizeof(dir), "walrot");
	stor_wal_opts o;
	stor_wal_opts_init(&o);
	o.segment_bytes = 4096;
	stor_wal *w;
	got g = { 0 };
	assert_int_equal(stor_wal_open(dir, &o, on_ckpt, on_rec, &g, &w), 0);
	// Segments rotate between batches: forced appends make small ones.
	append_n(w, 1, 1000, true);
	int before = count_segments(dir);
	assert_true(before > 5);
	// keep_lsn 300 (an in-doubt PREPARED record) holds segments back.
	assert_int_equal(stor_wal_checkpoint(w, 800, 300, "state-800", 9), 0);
	int mid = count_segments(dir);
	assert_true(mid < before);
	stor_wal_close(w);

	memset(&g, 0, sizeof(g));
	assert_int_equal(stor_wal_open(dir, &o, on_ckpt, on_rec, &g, &w), 0);
	assert_false(g.bad);
	assert_int_equal(g.ckpt_lsn, 800);
	assert_memory_equal(g.ckpt, "state-800", 9);
	// Only records after the checkpoint are replayed.
	assert_int_equal(g.n, 200);
	assert_int_equal(g.first, 801);
	// LSN 300 is still on disk: the segment holding it was kept.
	char name[512];
	bool kept = false;
	for (int i = 0; i < 1000 && !kept; i++) {
		snprintf(name, sizeof(name), "%s/wal-%016x.log", dir, i);
		kept = access(name, F_OK) == 0 && i <= 300;
	}
	assert_true(kept);
	append_n(w, 1001, 10, true);
	assert_int_equal(stor_wal_checkpoint(w, 1010, 0, "s", 1), 0);
	assert_true(count_segments(dir) < mid);
	assert_int_equal(stor_wal_checkpoint(w, 2000, 0, "s", 1), DTX_EINVAL);
	stor_wal_close(w);

	memset(&g, 0, sizeof(g));
	assert_int_equal(stor_wal_open(dir, &o, on_ckpt, on_rec, &g, &w), 0);
	assert_int_equal(g.ckpt_lsn, 1010);
	assert_int_equal(g.n, 0);
	assert_int_equal(stor_wal_last_lsn(w), 1010);
	stor_wal_close(w);
	(void)dtx_rmtree(dir);
}

// Writes a small WAL and returns its only segment's path and bytes.
enum { SMALL_N = 8 };

// The torn and flipped copies are of the records only: no zero-filled
// rest.
static stor_wal_opts
no_prealloc(void)
{
	stor_wal_opts o;
	stor_wal_opts_init(&o);
	o.preallocate = false;
	return o;
}

static unsigned char *
small_wal(const char *dir, char *seg, size_t segn, size_t *len)
{
	stor_wal *w;
	stor_wal_opts o = no_prealloc();
	w = st_wal_open(dir, &o);
	append_n(w, 1, SMALL_N, true);
	stor_wal_close(w);
	snprintf(seg, segn, "%s/wal-%016x.log", dir, 1);
	unsigned char *p = st_read_file(seg, len);
	assert_non_null(p);
	return p;
}

// Record boundaries of the small WAL: ends[i] is the end offset of record
// i + 1.
static void
small_bounds(size_t *ends)
{
	size_t off = 32;
	for (uint64_t l = 1; l <= SMALL_N; l++) {
		unsigned char p[64];
		off += 20 + st_payload(l, p);
		ends[l - 1] = off;
	}
}

// A small WAL to damage: its directory, its only segment, and that
// segment's bytes and record ends as written.
typedef struct small {
	char dir[256], seg[512];
	unsigned char *orig;
	size_t len;
	size_t ends[SMALL_N];
} small;

static void
small_init(small *s, const char *tag)
{
	st_tmpdir(s->dir, sizeof(s->dir), tag);
	s->orig = small_wal(s->dir, s->seg, sizeof(s->seg), &s->len);
	small_bounds(s->ends);
}

// Replaces the segment with the n bytes at p and opens the WAL again,
// counting its records into *g.
static dtx_err
small_reopen(const small *s, const void *p, size_t n, got *g, stor_wal **w)
{
	st_write_file(s->seg, p, n);
	*g = (got) { 0 };
	stor_wal_opts o = no_prealloc();
	return stor_wal_open(s->dir, &o, NULL, on_rec, g, w);
}

static void
test_truncate_every_byte(void **state)
{
	(void)state;
	small s;
	small_init(&s, "waltrunc");
	assert_int_equal(s.ends[SMALL_N - 1], s.len);
	for (size_t cut = 0; cut <= s.len; cut++) {
		got g;
		stor_wal *w;
		dtx_err err = small_reopen(&s, s.orig, cut, &g, &w);
		if (cut < s.ends[0]) {
			// No record left: the segment is cut to its header or
			// within it. It is the newest segment the manifest
			// names, and the manifest records that it held durable
			// records (they were acknowledged): this is lost data,
			// not a creation that a crash cut short, so open
			// refuses and leaves the file as it is. (A segment
			// that never held a record is repaired instead:
			// test_storage_manifest's test_newest_cut_to_header.)
			assert_int_equal(err, DTX_ECORRUPT);
			size_t flen = 0;
			free(st_read_file(s.seg, &flen));
			assert_int_equal(flen, cut);
			continue;
		}
		assert_int_equal(err, DTX_OK);
		assert_false(g.bad);
		uint64_t want = 0;
		while (want < SMALL_N && s.ends[want] <= cut)
			want++;
		assert_int_equal(g.n, want);
		// The store takes writes again right after the prefix.
		append_n(w, want + 1, 1, true);
		stor_wal_close(w);
	}
	free(s.orig);
	(void)dtx_rmtree(s.dir);
}

static void
test_flip_every_bit(void **state)
{
	(void)state;
	small s;
	small_init(&s, "walflip");
	unsigned char *buf = malloc(s.len);
	int corrupt = 0, prefix = 0;
	for (size_t bit = 0; bit < s.len * 8; bit++) {
		memcpy(buf, s.orig, s.len);
		buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
		got g;
		stor_wal *w;
		dtx_err err = small_reopen(&s, buf, s.len, &g, &w);
		size_t at = bit / 8;
		if (at < s.ends[SMALL_N - 2]) {
			// Damage before the last record is never skipped.
			assert_int_equal(err, DTX_ECORRUPT);
			corrupt++;
		} else {
			// Damage in the last record: it is the torn tail.
			assert_int_equal(err, DTX_OK);
			assert_false(g.bad);
			assert_int_equal(g.n, SMALL_N - 1);
			append_n(w, SMALL_N, 1, true);
			stor_wal_close(w);
			prefix++;
		}
	}
	print_message("bit flips: %d corrupt, %d tail\n", corrupt, prefix);
	// With a zero-filled rest: zeros are the end of the log, and a
	// flipped bit among them is a damaged tail, cut off.
	(void)dtx_rmtree(s.dir);
	assert_int_equal(mkdir(s.dir, 0755), 0);
	stor_wal *w = st_wal_open(s.dir, NULL);
	append_n(w, 1, SMALL_N, true);
	stor_wal_close(w);
	size_t plen = 0;
	unsigned char *pre = st_read_file(s.seg, &plen);
	assert_true(plen > s.len + 4096);
	assert_memory_equal(pre, s.orig, s.len);
	for (int round = 0; round < 2; round++) {
		got g = { 0 };
		assert_int_equal(
		    stor_wal_open(s.dir, NULL, NULL, on_rec, &g, &w), DTX_OK);
		assert_false(g.bad);
		assert_int_equal(g.n, SMALL_N + round);
		append_n(w, SMALL_N + 1 + round, 1, true);
		stor_wal_close(w);
		if (round == 0) {
			unsigned char *cur = st_read_file(s.seg, &plen);
			cur[plen - 100] ^= 0x10;
			st_write_file(s.seg, cur, plen);
			free(cur);
		}
	}
	free(pre);
	free(buf);
	free(s.orig);
	(void)dtx_rmtree(s.dir);
}

// ---------------------------------------------------------------- WAL files

enum { SCAN_N = 300 }; // records of about 32 bytes: three segments

// What stor_wal_scan reported.
typedef struct seen {
	uint64_t n;
	stor_wal_rec_info rec[SCAN_N];
} seen;

static dtx_err
on_scan(void *arg, const stor_wal_rec_info *info)
{
	seen *s = arg;
	if (s->n < SCAN_N)
		s->rec[s->n] = *info;
	s->n++;
	return DTX_OK;
}

static dtx_err
stop_scan(void *arg, const stor_wal_rec_info *info)
{
	(void)info;
	return ++*(int *)arg == 3 ? DTX_ECANCELED : DTX_OK;
}

// Segment names, record framing and stor_wal_scan over a WAL of several
// preallocated segments: every record where it lies, byte for byte.
static void
test_scan(void **state)
{
	(void)state;
	char name[STOR_WAL_SEG_NAME_LEN + 1];
	uint64_t first = 0;
	stor_wal_seg_name(name, sizeof(name), 0x1234abcdULL);
	assert_string_equal(name, "wal-000000001234abcd.log");
	assert_true(stor_wal_seg_parse(name, &first));
	assert_int_equal(first, 0x1234abcdULL);
	assert_true(stor_wal_seg_parse("wal-ffffffffffffffff.log", NULL));
	const char *bad[] = { "wal-0000000000000000.log",
		"wal-000000000000000A.log", "wal-00000000000000g1.log",
		"wal-00000000000001.log", "wal-0000000000000001.lo",
		"xal-0000000000000001.log", "checkpoint", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(stor_wal_seg_parse(bad[i], &first));
	assert_false(stor_wal_seg_parse(NULL, &first));

	char dir[256];
	st_tmpdir(dir, sizeof(dir), "walscan");
	stor_wal_end end;
	seen sn = { 0 };
	assert_int_equal(stor_wal_scan(dir, on_scan, &sn, &end), DTX_OK);
	assert_int_equal(sn.n, 0);
	assert_string_equal(end.segment, "");
	stor_wal_opts o;
	stor_wal_opts_init(&o);
	o.segment_bytes = 4096; // the smallest
	stor_wal *w = st_wal_open(dir, &o);
	append_n(w, 1, SCAN_N, true);
	stor_wal_stats ws;
	stor_wal_stats_get(w, &ws);
	stor_wal_close(w);
	assert_true(ws.segments >= 2);
	assert_int_equal(stor_wal_scan(dir, on_scan, &sn, &end), DTX_OK);
	assert_int_equal(sn.n, SCAN_N);
	uint64_t segs = 0;
	for (uint64_t i = 0; i < SCAN_N; i++) {
		const stor_wal_rec_info *r = &sn.rec[i];
		unsigned char p[64], want[128];
		size_t len = st_payload(i + 1, p);
		assert_int_equal(r->lsn, i + 1);
		assert_int_equal(r->type, st_type(i + 1));
		assert_int_equal(r->payload_len, len);
		assert_int_equal(r->length, STOR_WAL_REC_OVERHEAD + len);
		assert_true(stor_wal_seg_parse(r->segment, &first));
		assert_int_equal(first, r->seg_first);
		if (r->offset == STOR_WAL_SEG_HDR) {
			assert_int_equal(r->seg_first, r->lsn);
			segs++;
		} else {
			assert_int_equal(r->offset,
			    sn.rec[i - 1].offset + sn.rec[i - 1].length);
		}
		// The bytes on disk are the record as stor_wal_rec_frame
		// frames it.
		char path[512];
		size_t flen = 0;
		snprintf(path, sizeof(path), "%s/%s", dir, r->segment);
		unsigned char *f = st_read_file(path, &flen);
		stor_wal_rec_frame(want, r->type, r->lsn, p, len);
		assert_true(r->offset + r->length <= flen);
		assert_memory_equal(f + r->offset, want, r->length);
		free(f);
	}
	assert_int_equal(segs, ws.segments);
	// The end: just past the last record of the newest segment, whose
	// zero-filled rest makes the file longer.
	const stor_wal_rec_info *last = &sn.rec[SCAN_N - 1];
	assert_string_equal(end.segment, last->segment);
	assert_int_equal(end.offset, last->offset + last->length);
	assert_int_equal(end.next_lsn, SCAN_N + 1);
	assert_true(end.size > end.offset);
	// fn's error stops the scan.
	int calls = 0;
	assert_int_equal(
	    stor_wal_scan(dir, stop_scan, &calls, NULL), DTX_ECANCELED);
	assert_int_equal(calls, 3);
	// A damaged segment header is corruption.
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, sn.rec[0].segment);
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 9, SEEK_SET), 0); // in the first LSN
	int c = fgetc(fp);
	assert_int_equal(fseek(fp, 9, SEEK_SET), 0);
	assert_int_equal(fputc(c ^ 1, fp), c ^ 1);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(stor_wal_scan(dir, NULL, NULL, NULL), DTX_ECORRUPT);
	assert_int_equal(stor_wal_scan(NULL, NULL, NULL, NULL), DTX_EINVAL);
	(void)dtx_rmtree(dir);
	assert_int_not_equal(stor_wal_scan(dir, NULL, NULL, NULL), DTX_OK);
}

// stor_wal_tear_tail: for every way of cutting a torn record, with and
// without a zero-filled rest, recovery keeps every record and cuts off
// the torn one, and the log goes on after it.
static void
test_tear_tail(void **state)
{
	(void)state;
	char dir[256];
	st_tmpdir(dir, sizeof(dir), "waltear");
	stor_wal_tear how = { .payload_len = 40, .seed = 7 };
	assert_int_equal(stor_wal_tear_tail(dir, &how, NULL), DTX_ENOENT);
	uint64_t n = 0;
	const uint32_t keeps[] = { 0, 1, 4, 16, 19, 20, 59, 60, 1000 };
	for (int pre = 0; pre < 2; pre++) {
		for (size_t i = 0; i < sizeof(keeps) / sizeof(keeps[0]); i++) {
			for (int cut = 0; cut < 2; cut++) {
				stor_wal_opts o = no_prealloc();
				o.preallocate = pre;
				got g = { 0 };
				stor_wal *w;
				assert_int_equal(stor_wal_open(dir, &o, NULL,
				                     on_rec, &g, &w),
				    DTX_OK);
				assert_false(g.bad);
				assert_int_equal(g.n, n);
				append_n(w, n + 1, 3, true);
				n += 3;
				stor_wal_close(w);
				stor_wal_end before, where;
				assert_int_equal(
				    stor_wal_scan(dir, NULL, NULL, &before),
				    DTX_OK);
				how.keep = keeps[i];
				how.truncate = cut;
				how.seed++;
				assert_int_equal(
				    stor_wal_tear_tail(dir, &how, &where),
				    DTX_OK);
				assert_string_equal(
				    where.segment, before.segment);
				assert_int_equal(where.offset, before.offset);
				assert_int_equal(where.size, before.size);
				assert_int_equal(where.next_lsn, n + 1);
				char path[512];
				size_t flen = 0;
				snprintf(path, sizeof(path), "%s/%s", dir,
				    where.segment);
				unsigned char *f = st_read_file(path, &flen);
				uint32_t kept = keeps[i] < 60 ? keeps[i] : 59;
				if (cut)
					assert_int_equal(
					    flen, where.offset + kept);
				else
					assert_true(
					    flen >= where.offset + kept);
				if (kept >= 16) {
					const unsigned char *r =
					    f + where.offset;
					assert_int_equal(dtx_get_le32(r), 40);
					assert_true(r[4] != 0);
					assert_int_equal(
					    dtx_get_le64(r + 8), n + 1);
				}
				free(f);
				// Only bytes past the good records changed.
				stor_wal_end after;
				assert_int_equal(
				    stor_wal_scan(dir, NULL, NULL, &after),
				    DTX_OK);
				assert_int_equal(after.offset, before.offset);
				assert_int_equal(after.next_lsn, n + 1);
			}
		}
	}
	got g = { 0 };
	stor_wal *w;
	assert_int_equal(stor_wal_open(dir, NULL, NULL, on_rec, &g, &w), 0);
	assert_int_equal(g.n, n);
	assert_false(g.bad);
	stor_wal_close(w);
	how.payload_len = STOR_WAL_MAX_RECORD + 1;
	assert_int_equal(stor_wal_tear_tail(dir, &how, NULL), DTX_EINVAL);
	assert_int_equal(stor_wal_tear_tail(dir, NULL, NULL), DTX_EINVAL);
	(void)dtx_rmtree(dir);
}

// stor_wal_flip_bit: a flipped bit in an acknowledged record before the
// last is corruption, in the last one a torn tail.
static void
test_flip_bit(void **state)
{
	(void)state;
	small s;
	small_init(&s, "walflipapi");
	stor_wal_rec_info info;
	assert_int_equal(stor_wal_flip_bit(s.dir, 3, 13, &info), DTX_OK);
	assert_int_equal(info.lsn, 3);
	assert_int_equal(info.offset, s.ends[1]);
	assert_int_equal(info.length, s.ends[2] - s.ends[1]);
	assert_string_equal(info.segment, "wal-0000000000000001.log");
	size_t flen = 0;
	unsigned char *f = st_read_file(s.seg, &flen);
	assert_int_equal(flen, s.len);
	for (size_t i = 0; i < flen; i++)
		assert_int_equal(
		    f[i], s.orig[i] ^ (i == s.ends[1] + 1 ? 1u << 5 : 0u));
	free(f);
	// No longer a good record: it cannot be found again.
	assert_int_equal(stor_wal_flip_bit(s.dir, 3, 13, NULL), DTX_ENOENT);
	got g = { 0 };
	stor_wal *w;
	stor_wal_opts o = no_prealloc();
	assert_int_equal(
	    stor_wal_open(s.dir, &o, NULL, on_rec, &g, &w), DTX_ECORRUPT);
	// The last record damaged: a torn tail, cut off.
	st_write_file(s.seg, s.orig, s.len);
	uint64_t len = s.ends[SMALL_N - 1] - s.ends[SMALL_N - 2];
	assert_int_equal(
	    stor_wal_flip_bit(s.dir, SMALL_N, 8 * len, NULL), DTX_ERANGE);
	assert_int_equal(
	    stor_wal_flip_bit(s.dir, SMALL_N, 8 * len - 1, NULL), DTX_OK);
	assert_int_equal(
	    stor_wal_flip_bit(s.dir, SMALL_N + 1, 0, NULL), DTX_ENOENT);
	assert_int_equal(stor_wal_flip_bit(s.dir, 0, 0, NULL), DTX_EINVAL);
	g = (got) { 0 };
	assert_int_equal(stor_wal_open(s.dir, &o, NULL, on_rec, &g, &w), 0);
	assert_false(g.bad);
	assert_int_equal(g.n, SMALL_N - 1);
	stor_wal_close(w);
	free(s.orig);
	(void)dtx_rmtree(s.dir);
}

static void
test_middle_segment_damage(void **state)
{
	(void)state;
	char dir[256];
	st_tmpdir(dir, sizeof(dir), "walmid");
	stor_wal_opts o;
	stor_wal_opts_init(&o);
	o.segment_bytes = 4096;
	stor_wal *w = st_wal_open(dir, &o);
	append_n(w, 1, 400, true);
	stor_wal_close(w);
	// Cutting the tail off the first (complete, older) segment is
	// corruption, not a tail.
	char seg[512];
	snprintf(seg, sizeof(seg), "%s/wal-%016x.log", dir, 1);
	size_t len = 0;
	unsigned char *p = st_read_file(seg, &len);
	st_write_file(seg, p, len - 3);
	got g = { 0 };
	assert_int_equal(
	    stor_wal_open(dir, &o, NULL, on_rec, &g, &w), DTX_ECORRUPT);
	// A missing segment is corruption too.
	st_write_file(seg, p, len);
	free(p);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm $(ls %s/wal-*.log | sed -n 2p)", dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(
	    stor_wal_open(dir, &o, NULL, on_rec, &g, &w), DTX_ECORRUPT);
	// A damaged checkpoint is corruption.
	char ck[512];
	snprintf(ck, sizeof(ck), "%s/checkpoint", dir);
	st_write_file(ck, "DTXCKPT1garbage-garbage-garbage-garbage", 39);
	assert_int_equal(
	    stor_wal_open(dir, &o, NULL, on_rec, &g, &w), DTX_ECORRUPT);
	(void)dtx_rmtree(dir);
}

// Opens a WAL in dir whose syncs go through hook h.
static stor_wal *
open_hooked(const char *dir, st_sync_hook *h)
{
	stor_wal_opts o;
	stor_wal_opts_init(&o);
	st_hook_syncs(&o, h);
	return st_wal_open(dir, &o);
}

static void
test_fsync_failure(void **state)
{
	(void)state;
	char dir[256];
	st_tmpdir(dir, sizeof(dir), "walfsync");
	st_sync_hook h;
	stor_wal *w = open_hooked(dir, &h);
	append_n(w, 1, 5, true);
	st_fail_next_sync(&h);
	unsigned char p[64];
	size_t n = st_payload(6, p);
	assert_int_equal(
	    stor_wal_append(w, st_type(6), p, n, true, NULL), DTX_EIO);
	assert_int_equal(stor_wal_status(w), DTX_EFAILED);
	assert_int_equal(stor_wal_append(w, 1, p, n, true, NULL), DTX_EFAILED);
	assert_int_equal(stor_wal_append(w, 1, p, n, false, NULL), DTX_EFAILED);
	assert_int_equal(stor_wal_checkpoint(w, 5, 0, "x", 1), DTX_EFAILED);
	stor_wal_close(w);
	// fsync was never retried on that fd.
	assert_int_equal(h.after_fail, 0);
	// After a restart the acknowledged records are there.
	got g = { 0 };
	assert_int_equal(stor_wal_open(dir, NULL, NULL, on_rec, &g, &w), 0);
	assert_false(g.bad);
	assert_true(g.n >= 5);
	stor_wal_close(w);
	(void)dtx_rmtree(dir);
}

typedef struct fc_req {
	stor_force f; // first: done gets it back
	stor_wal *w;
	pthread_t caller;
	_Atomic int calls;
	bool durable; // the LSN was durable when done ran
	bool inline_run; // done ran on the thread that queued it
	dtx_err rv;
} fc_req;

static void
fc_done(stor_force *f, dtx_err rv)
{
	fc_req *r = (fc_req *)f;
	r->rv = rv;
	r->durable = stor_wal_durable_lsn(r->w) >= f->lsn;
	r->inline_run = pthread_equal(pthread_self(), r->caller);
	atomic_fetch_add(&r->calls, 1);
}

// The group hook's view: how many groups began and ended, whether one is
// open now, and whether some done ran outside a group.
static _Atomic int gh_begins, gh_ends, gh_outside;
static _Atomic bool gh_open;

static void
gh_hook(void *arg, bool begin)
{
	assert_ptr_equal(arg, &gh_begins);
	if (begin) {
		assert_false(atomic_exchange(&gh_open, true));
		atomic_fetch_add(&gh_begins, 1);
	} else {
		assert_true(atomic_exchange(&gh_open, false));
		atomic_fetch_add(&gh_ends, 1);
	}
}

static void
gh_done(stor_force *f, dtx_err rv)
{
	if (!atomic_load(&gh_open))
		atomic_fetch_add(&gh_outside, 1);
	fc_done(f, rv);
}

static void
fc_wait(fc_req *r, int n)
{
	for (int i = 0; i < 5000; i++) {
		bool all = true;
		for (int k = 0; k < n; k++)
			all = all && atomic_load(&r[k].calls) > 0;
		if (all)
			return;
		dtx_sleep_ms(1);
	}
}

// The group hook runs before and after the done hooks of every sync's
// group, so each done runs inside a group, and there are fewer groups
// than forces.
static void
test_forcer_group_hook(void **state)
{
	(void)state;
	char dir[256];
	st_tmpdir(dir, sizeof(dir), "walgroup");
	st_sync_hook h;
	stor_wal *w = open_hooked(dir, &h);
	stor_forcer *fc;
	assert_int_equal(stor_forcer_open(w, &fc), 0);
	stor_forcer_group_hook(fc, gh_hook, &gh_begins);
	enum { N = 200 };
	static fc_req r[N];
	unsigned char p[64];
	for (int i = 0; i < N; i++) {
		size_t n = st_payload(i, p);
		r[i] = (fc_req) { .w = w, .caller = pthread_self() };
		r[i].f.done = gh_done;
		assert_int_equal(
		    stor_wal_append(w, st_type(i), p, n, false, &r[i].f.lsn),
		    0);
		stor_forcer_force(fc, &r[i].f);
	}
	fc_wait(r, N);
	// The last done returned before its group ended: stop joins it.
	stor_forcer_stop(fc);
	for (int i = 0; i < N; i++)
		assert_true(r[i].durable);
	assert_int_equal(atomic_load(&gh_outside), 0);
	assert_false(atomic_load(&gh_open));
	int g = atomic_load(&gh_begins);
	assert_int_equal(atomic_load(&gh_ends), g);
	assert_true(g >= 1 && g < N);
	stor_forcer_close(fc);
	stor_wal_close(w);
	(void)dtx_rmtree(dir);
}

// The forcer makes each queued record durable before its done runs, on
// its own thread, with fewer syncs than records; a failed sync reaches
// every waiting done; after stop a force runs on the caller's thread.
static void
test_forcer(void **state)
{
	(void)state;
	char dir[256];
	st_tmpdir(dir, sizeof(dir), "walforce");
	st_sync_hook h;
	stor_wal *w = open_hooked(dir, &h);
	stor_forcer *fc;
	assert_int_equal(stor_forcer_open(NULL, &fc), DTX_EINVAL);
	assert_int_equal(stor_forcer_open(w, &fc), 0);
	enum { N = 200 };
	static fc_req r[N];
	unsigned char p[64];
	for (int i = 0; i < N; i++) {
		size_t n = st_payload(i, p);
		r[i] = (fc_req) { .w = w, .caller = pthread_self() };
		r[i].f.done = fc_done;
		assert_int_equal(
		    stor_wal_append(w, st_type(i), p, n, false, &r[i].f.lsn),
		    0);
		stor_forcer_force(fc, &r[i].f);
	}
	fc_wait(r, N);
	stor_wal_stats st;
	stor_wal_stats_get(w, &st);
	for (int i = 0; i < N; i++) {
		assert_int_equal(atomic_load(&r[i].calls), 1);
		assert_int_equal(r[i].rv, DTX_OK);
		assert_true(r[i].durable);
		assert_false(r[i].inline_run);
	}
	assert_true(st.syncs < N / 2);
	// A failed sync: the waiting records hear it.
	st_fail_next_sync(&h);
	fc_req bad = { .w = w, .caller = pthread_self() };
	bad.f.done = fc_done;
	assert_int_equal(stor_wal_append(w, 1, p, 8, false, &bad.f.lsn), 0);
	stor_forcer_force(fc, &bad.f);
	fc_wait(&bad, 1);
	assert_int_equal(atomic_load(&bad.calls), 1);
	assert_int_equal(bad.rv, DTX_EIO);
	// Stopped: the force runs here, at once.
	stor_forcer_stop(fc);
	stor_forcer_stop(fc);
	fc_req late = { .w = w, .caller = pthread_self() };
	late.f.done = fc_done;
	late.f.lsn = bad.f.lsn;
	stor_forcer_force(fc, &late.f);
	assert_int_equal(atomic_load(&late.calls), 1);
	assert_true(late.inline_run);
	assert_true(late.rv == DTX_EIO || late.rv == DTX_EFAILED);
	stor_forcer_close(fc);
	stor_forcer_close(NULL);
	stor_wal_close(w);
	(void)dtx_rmtree(dir);
}

static int
failing_write(void *arg, int fd, const void *buf, size_t len)
{
	(void)fd;
	(void)buf;
	(void)len;
	(void)arg;
	return ENOSPC;
}

static void
test_write_failure(void **state)
{
	(void)state;
	char dir[256];
	st_tmpdir(dir, sizeof(dir), "walwrite");
	stor_wal *w = st_wal_open(dir, NULL);
	stor_wal_close(w);
	stor_wal_opts o;
	stor_wal_opts_init(&o);
	o.write_fn = failing_write;
	w = st_wal_open(dir, &o);
	assert_int_equal(
	    stor_wal_append(w, 1, "abc", 3, true, NULL), DTX_ENOSPC);
	assert_int_equal(
	    stor_wal_append(w, 1, "abc", 3, true, NULL), DTX_EFAILED);
	stor_wal_close(w);
	(void)dtx_rmtree(dir);
}

// Runs op with the n-th allocation failing for n = 0, 1, ... until it
// succeeds without the hook firing; every failure must be DTX_ENOMEM.
static void
oom_loop(const char *dir, int phase)
{
	int n = 0;
	for (;; n++) {
		got g = { 0 };
		stor_wal *w = NULL;
		dtx_err err = DTX_OK;
		if (phase == 0) {
			dtx_alloc_fail_after(n);
			err = stor_wal_open(dir, NULL, on_ckpt, on_rec, &g, &w);
			dtx_alloc_fail_after(-1);
		} else {
			assert_int_equal(
			    stor_wal_open(dir, NULL, on_ckpt, on_rec, &g, &w),
			    0);
			uint64_t l = stor_wal_last_lsn(w);
			dtx_alloc_fail_after(n);
			if (phase == 1) {
				unsigned char p[64];
				size_t len = st_payload(l + 1, p);
				err = stor_wal_append(
				    w, st_type(l + 1), p, len, true, NULL);
			} else {
				err = stor_wal_checkpoint(w, l, 0, "ck", 2);
			}
			dtx_alloc_fail_after(-1);
		}
		bool failed = dtx_alloc_failed();
		if (err == DTX_OK) {
			assert_false(g.bad);
			stor_wal_close(w);
			if (!failed)
				break;
			continue;
		}
		assert_int_equal(err, DTX_ENOMEM);
		stor_wal_close(w);
	}
	print_message("oom phase %d: %d allocation points\n", phase, n);
}

static void
test_oom(void **state)
{
	(void)state;
	char dir[256];
	st_tmpdir(dir, sizeof(dir), "waloom");
	oom_loop(dir, 0); // open of an empty directory
	stor_wal_opts o;
	stor_wal_opts_init(&o);
	o.segment_bytes = 4096;
	stor_wal *w = st_wal_open(dir, &o);
	append_n(w, 1, 300, false);
	assert_int_equal(stor_wal_sync(w, 300), 0);
	assert_int_equal(stor_wal_checkpoint(w, 100, 0, "c", 1), 0);
	stor_wal_close(w);
	oom_loop(dir, 0); // recovery: checkpoint, segments, records
	oom_loop(dir, 1); // append
	oom_loop(dir, 2); // checkpoint
	// A torn tail makes recovery allocate for the tail check too.
	char cmd[600];
	snprintf(cmd, sizeof(cmd),
	    "f=$(ls %s/wal-*.log | tail -1); truncate -s -5 $f", dir);
	assert_int_equal(system(cmd), 0);
	oom_loop(dir, 0);
	(void)dtx_rmtree(dir);
}

// The out-of-memory loop over stor_wal_scan, stor_wal_tear_tail and
// stor_wal_flip_bit: each either succeeds or returns DTX_ENOMEM having
// changed nothing.
static void
test_file_oom(void **state)
{
	(void)state;
	char dir[256];
	st_tmpdir(dir, sizeof(dir), "walfileoom");
	stor_wal_opts o;
	stor_wal_opts_init(&o);
	o.segment_bytes = 4096;
	stor_wal *w = st_wal_open(dir, &o);
	append_n(w, 1, 300, true);
	stor_wal_close(w);
	stor_wal_end want;
	assert_int_equal(stor_wal_scan(dir, NULL, NULL, &want), DTX_OK);
	for (int op = 0; op < 3; op++) {
		int n = 0;
		for (;; n++) {
			static seen sn;
			stor_wal_end end = { .offset = 0 };
			stor_wal_tear how = { .payload_len = 30,
				.keep = 25,
				.seed = 5,
				.truncate = true };
			sn.n = 0;
			dtx_alloc_fail_after(n);
			dtx_err err = op == 0
			    ? stor_wal_scan(dir, on_scan, &sn, &end)
			    : op == 1 ? stor_wal_tear_tail(dir, &how, &end)
			              : stor_wal_flip_bit(dir, 150, 77, NULL);
			dtx_alloc_fail_after(-1);
			bool failed = dtx_alloc_failed();
			if (err == DTX_OK) {
				if (op == 0)
					assert_int_equal(sn.n, 300);
				if (op < 2)
					assert_int_equal(
					    end.offset, want.offset);
				if (!failed)
					break;
				continue;
			}
			assert_int_equal(err, DTX_ENOMEM);
			// Nothing changed: the tail and record 150 are as
			// they were.
			stor_wal_end now;
			sn.n = 0;
			assert_int_equal(
			    stor_wal_scan(dir, on_scan, &sn, &now), DTX_OK);
			assert_int_equal(sn.n, 300);
			assert_int_equal(now.offset, want.offset);
			assert_int_equal(
			    now.size, op < 2 ? want.size : want.offset + 25);
		}
		print_message("file oom op %d: %d allocation points\n", op, n);
	}
	// The flip took: record 150 is no longer good, so the scan stops
	// in its segment; recovery reports the damage.
	assert_int_equal(stor_wal_flip_bit(dir, 150, 77, NULL), DTX_ENOENT);
	got g = { 0 };
	assert_int_equal(
	    stor_wal_open(dir, NULL, NULL, on_rec, &g, &w), DTX_ECORRUPT);
	(void)dtx_rmtree(dir);
}

int
main(void)
{
	dtx_log_init("test", DTX_LOG_OFF);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_replay),
		cmocka_unit_test(test_group_commit),
		cmocka_unit_test(test_rotation_checkpoint),
		cmocka_unit_test(test_truncate_every_byte),
		cmocka_unit_test(test_flip_every_bit),
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_tear_tail),
		cmocka_unit_test(test_flip_bit),
		cmocka_unit_test(test_middle_segment_damage),
		cmocka_unit_test(test_fsync_failure),
		cmocka_unit_test(test_forcer),
		cmocka_unit_test(test_forcer_group_hook),
		cmocka_unit_test(test_write_failure),
		cmocka_unit_test(test_oom),
		cmocka_unit_test(test_file_oom),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
