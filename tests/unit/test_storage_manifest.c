// SPDX-License-Identifier: MIT
//
// Rule 24, a data directory knows its data: the WAL's manifest refuses a
// deleted middle or newest segment, a foreign segment, a damaged manifest
// and a checkpoint that is missing or not the one it names, each with a
// WALCORRUPT line naming the file; a clean restart after rotation and
// checkpoint opens; the files a crash leaves between the steps of a
// rotation or checkpoint are repaired; a log without a manifest (an older
// version's) is adopted once; appends do not rewrite the manifest. And the
// data directory identity: another node's or cluster's directory, or a
// damaged identity file, is refused with a DATAID line naming both.

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_storage_util.h"

#define SEG_BYTES 4096u

static dtx_err
count_rec(void *arg, uint64_t lsn, uint8_t type, const void *p, size_t len)
{
	uint64_t *n = arg;
	if (!st_payload_ok(lsn, type, p, len))
		return DTX_EINVAL;
	(*n)++;
	return DTX_OK;
}

static stor_wal_opts
small_segs(void)
{
	stor_wal_opts o;
	stor_wal_opts_init(&o);
	o.segment_bytes = SEG_BYTES;
	return o;
}

static void
append_range(stor_wal *w, uint64_t from, uint64_t to)
{
	for (uint64_t l = from; l <= to; l++) {
		unsigned char p[64];
		size_t n = st_payload(l, p);
		uint64_t got = 0;
		assert_int_equal(
		    stor_wal_append(w, st_type(l), p, n, true, &got), DTX_OK);
		assert_int_equal(got, l);
	}
}

// A WAL in a fresh dir with records 1..n in segments of SEG_BYTES (each
// record forced: a batch rotates only once written).
static void
make_wal(char *dir, size_t dn, const char *tag, uint64_t n)
{
	st_tmpdir(dir, dn, tag);
	stor_wal_opts o = small_segs();
	stor_wal *w = st_wal_open(dir, &o);
	append_range(w, 1, n);
	stor_wal_close(w);
}

// The first LSNs of dir's segments, ascending, into v (at most max); the
// count.
static size_t
segs_of(const char *dir, uint64_t *v, size_t max)
{
	size_t n = 0;
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		uint64_t f;
		if (stor_wal_seg_parse(de->d_name, &f) && n < max)
			v[n++] = f;
	}
	closedir(d);
	dtx_sort_u64(v, n);
	return n;
}

static void
path_of(char *out, size_t n, const char *dir, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static void
seg_path(char *out, size_t n, const char *dir, uint64_t first)
{
	char name[64];
	stor_wal_seg_name(name, sizeof(name), first);
	path_of(out, n, dir, name);
}

// Opens dir's WAL with stderr captured; returns the result, the log text
// in *log (free with free()) and the records replayed in *nrec. The WAL,
// when opened, is closed again.
static dtx_err
open_logged(const char *dir, char **log, uint64_t *nrec)
{
	char cap[512];
	snprintf(cap, sizeof(cap), "%s.stderr", dir);
	int saved = st_stderr_to(cap);
	assert_true(saved >= 0);
	stor_wal_opts o = small_segs();
	stor_wal *w = NULL;
	uint64_t n = 0;
	dtx_err err = stor_wal_open(dir, &o, NULL, count_rec, &n, &w);
	stor_wal_close(w);
	*log = st_stderr_back(saved, cap);
	assert_non_null(*log);
	unlink(cap);
	if (nrec != NULL)
		*nrec = n;
	return err;
}

// Asserts that opening dir fails with DTX_ECORRUPT and a WALCORRUPT line
// that contains both want and want2 (may be NULL).
static void
refuses(const char *dir, const char *want, const char *want2)
{
	char *log = NULL;
	assert_int_equal(open_logged(dir, &log, NULL), DTX_ECORRUPT);
	if (st_count(log, "WALCORRUPT") == 0 || strstr(log, want) == NULL ||
	    (want2 != NULL && strstr(log, want2) == NULL))
		fail_msg("expected \"%s\" / \"%s\" in:\n%s", want,
		    want2 ? want2 : "", log);
	free(log);
}

static void
test_delete_middle_segment(void **state)
{
	(void)state;
	char dir[256], p[512];
	make_wal(dir, sizeof(dir), "manmid", 400);
	uint64_t v[64];
	size_t n = segs_of(dir, v, 64);
	assert_true(n >= 3);
	seg_path(p, sizeof(p), dir, v[1]);
	assert_int_equal(unlink(p), 0);
	char name[64];
	stor_wal_seg_name(name, sizeof(name), v[1]);
	refuses(dir, name, "missing");
	(void)dtx_rmtree(dir);
}

static void
test_delete_newest_segment(void **state)
{
	(void)state;
	char dir[256], p[512];
	make_wal(dir, sizeof(dir), "mannew", 400);
	uint64_t v[64];
	size_t n = segs_of(dir, v, 64);
	seg_path(p, sizeof(p), dir, v[n - 1]);
	assert_int_equal(unlink(p), 0);
	char name[64];
	stor_wal_seg_name(name, sizeof(name), v[n - 1]);
	refuses(dir, name, "missing");
	// Even the only segment: never an empty restart.
	char one[256];
	make_wal(one, sizeof(one), "manone", 10);
	seg_path(p, sizeof(p), one, 1);
	assert_int_equal(unlink(p), 0);
	refuses(one, "wal-0000000000000001.log", "missing");
	(void)dtx_rmtree(dir);
	(void)dtx_rmtree(one);
}

static void
test_foreign_segment(void **state)
{
	(void)state;
	char dir[256], other[256], p[512], q[512];
	make_wal(dir, sizeof(dir), "manfrn", 400);
	// Another log's segment, with records, past this log's end.
	make_wal(other, sizeof(other), "manother", 1200);
	uint64_t v[64], ov[64];
	size_t n = segs_of(dir, v, 64), on = segs_of(other, ov, 64);
	assert_true(ov[on - 1] > v[n - 1]);
	seg_path(p, sizeof(p), other, ov[on - 1]);
	seg_path(q, sizeof(q), dir, ov[on - 1]);
	size_t len = 0;
	unsigned char *b = st_read_file(p, &len);
	st_write_file(q, b, len);
	char name[64];
	stor_wal_seg_name(name, sizeof(name), ov[on - 1]);
	refuses(dir, name, "(foreign segment)");
	// One inside the log's range (between two of its segments).
	assert_int_equal(unlink(q), 0);
	seg_path(q, sizeof(q), dir, v[1] + 1);
	st_write_file(q, b, len);
	stor_wal_seg_name(name, sizeof(name), v[1] + 1);
	refuses(dir, name, "(foreign segment)");
	free(b);
	(void)dtx_rmtree(dir);
	(void)dtx_rmtree(other);
}

static void
test_corrupt_manifest(void **state)
{
	(void)state;
	char dir[256], p[512];
	make_wal(dir, sizeof(dir), "mancorrupt", 400);
	path_of(p, sizeof(p), dir, STOR_WAL_MAN_NAME);
	size_t len = 0;
	unsigned char *b = st_read_file(p, &len);
	assert_non_null(b);
	assert_int_equal(len, 36 + 8 * segs_of(dir, (uint64_t[64]) { 0 }, 64));
	assert_memory_equal(b, STOR_WAL_MAN_MAGIC, 8);
	for (size_t at = 0; at < len; at += 7) {
		b[at] ^= 0x10;
		st_write_file(p, b, len);
		refuses(dir, STOR_WAL_MAN_NAME, "damaged manifest");
		b[at] ^= 0x10;
	}
	st_write_file(p, b, len - 1);
	refuses(dir, STOR_WAL_MAN_NAME, "damaged manifest");
	st_write_file(p, "", 0);
	refuses(dir, STOR_WAL_MAN_NAME, "damaged manifest");
	// Put back, it opens.
	st_write_file(p, b, len);
	char *log;
	uint64_t nrec = 0;
	assert_int_equal(open_logged(dir, &log, &nrec), DTX_OK);
	assert_int_equal(nrec, 400);
	free(log);
	free(b);
	(void)dtx_rmtree(dir);
}

// Records 1..400, a checkpoint at 300 that retires the older segments,
// then records 401..500.
static void
make_checkpointed(char *dir, size_t dn, const char *tag)
{
	st_tmpdir(dir, dn, tag);
	stor_wal_opts o = small_segs();
	stor_wal *w = st_wal_open(dir, &o);
	append_range(w, 1, 400);
	assert_int_equal(stor_wal_checkpoint(w, 300, 0, "ck-300", 6), DTX_OK);
	append_range(w, 401, 500);
	stor_wal_close(w);
}

static void
test_checkpoint_disagrees(void **state)
{
	(void)state;
	char dir[256], p[512], keep[512];
	make_checkpointed(dir, sizeof(dir), "manckpt");
	path_of(p, sizeof(p), dir, STOR_WAL_CKPT_NAME);
	snprintf(keep, sizeof(keep), "%s.keep", dir);
	size_t len = 0;
	unsigned char *b = st_read_file(p, &len);
	// Missing.
	assert_int_equal(unlink(p), 0);
	refuses(dir, "checkpoint", "missing");
	// Another checkpoint (another LSN) in its place.
	unsigned char *o = malloc(len);
	memcpy(o, b, len);
	dtx_put_le64(o + 8, 250);
	st_write_file(p, o, len);
	refuses(dir, "checkpoint", "the manifest names LSN 300");
	// The same LSN, other contents (and a CRC of its own).
	memcpy(o, b, len);
	o[len - 1] ^= 1;
	dtx_put_le32(
	    o + 24, dtx_crc32c(dtx_crc32c(0, o, 24), o + 32, len - 32));
	st_write_file(p, o, len);
	refuses(dir, "checkpoint", "the manifest names LSN 300");
	free(o);
	// A checkpoint in a log whose manifest names none.
	char fresh[256], fp[512];
	make_wal(fresh, sizeof(fresh), "manckpt2", 10);
	path_of(fp, sizeof(fp), fresh, STOR_WAL_CKPT_NAME);
	st_write_file(fp, b, len);
	refuses(fresh, "checkpoint", "does not name");
	free(b);
	(void)dtx_rmtree(dir);
	(void)dtx_rmtree(fresh);
}

static void
test_clean_restart(void **state)
{
	(void)state;
	char dir[256];
	make_checkpointed(dir, sizeof(dir), "manclean");
	uint64_t v[64];
	size_t n = segs_of(dir, v, 64);
	assert_true(v[0] > 1); // the checkpoint retired segments
	for (int round = 0; round < 2; round++) {
		char *log;
		uint64_t nrec = 0;
		assert_int_equal(open_logged(dir, &log, &nrec), DTX_OK);
		assert_int_equal(nrec, 200); // 301..500
		// Nothing to repair or adopt on a clean restart.
		assert_int_equal(st_count(log, "WALMANIFEST"), 0);
		assert_int_equal(st_count(log, "WALCORRUPT"), 0);
		free(log);
		assert_int_equal(segs_of(dir, (uint64_t[64]) { 0 }, 64), n);
	}
	(void)dtx_rmtree(dir);
}

// The files a crash leaves between the steps of a rotation or a
// checkpoint are repaired, not refused.
static void
test_crash_leftovers(void **state)
{
	(void)state;
	char dir[256], p[512], q[512];
	st_tmpdir(dir, sizeof(dir), "manleft");
	stor_wal_opts o = small_segs();
	stor_wal *w = st_wal_open(dir, &o);
	append_range(w, 1, 400);
	seg_path(p, sizeof(p), dir, 1);
	size_t len = 0;
	unsigned char *seg1 = st_read_file(p, &len);
	assert_int_equal(stor_wal_checkpoint(w, 400, 0, "ck", 2), DTX_OK);
	stor_wal_close(w);
	// 1. A retired segment the checkpoint did not get to remove.
	st_write_file(p, seg1, len);
	char *log;
	uint64_t nrec = 0;
	assert_int_equal(open_logged(dir, &log, &nrec), DTX_OK);
	assert_int_equal(st_count(log, "retired by the last checkpoint"), 1);
	assert_int_equal(access(p, F_OK), -1);
	free(log);
	// 2. A new segment whose header is durable but that the manifest
	// does not name yet.
	uint64_t v[64];
	size_t n = segs_of(dir, v, 64);
	seg_path(q, sizeof(q), dir, v[n - 1] + 1000);
	unsigned char hdr[32] = { 0 };
	memcpy(hdr, STOR_WAL_SEG_MAGIC, 8);
	dtx_put_le64(hdr + 8, v[n - 1] + 1000);
	dtx_put_le32(hdr + 24, dtx_crc32c(0, hdr, 24));
	st_write_file(q, hdr, sizeof(hdr));
	assert_int_equal(open_logged(dir, &log, &nrec), DTX_OK);
	assert_int_equal(st_count(log, "removing unfinished segment"), 1);
	assert_int_equal(access(q, F_OK), -1);
	free(log);
	// 3. A checkpoint the manifest names, still in its temp file.
	char ck[512], tmp[512];
	path_of(ck, sizeof(ck), dir, STOR_WAL_CKPT_NAME);
	path_of(tmp, sizeof(tmp), dir, "checkpoint.tmp");
	assert_int_equal(rename(ck, tmp), 0);
	assert_int_equal(open_logged(dir, &log, &nrec), DTX_OK);
	assert_int_equal(st_count(log, "finishing checkpoint"), 1);
	assert_int_equal(access(ck, F_OK), 0);
	free(log);
	// A temp file the manifest does not name is only a leftover.
	st_write_file(tmp, "junk", 4);
	assert_int_equal(open_logged(dir, &log, &nrec), DTX_OK);
	assert_int_equal(access(tmp, F_OK), -1);
	free(log);
	free(seg1);
	(void)dtx_rmtree(dir);
}

// A log written before manifests: adopted once, then held to it.
static void
test_adopt_old_log(void **state)
{
	(void)state;
	char dir[256], p[512];
	make_checkpointed(dir, sizeof(dir), "manadopt");
	path_of(p, sizeof(p), dir, STOR_WAL_MAN_NAME);
	assert_int_equal(unlink(p), 0);
	char *log;
	uint64_t nrec = 0;
	assert_int_equal(open_logged(dir, &log, &nrec), DTX_OK);
	assert_int_equal(nrec, 200);
	assert_int_equal(st_count(log, "WALMANIFEST"), 1);
	assert_non_null(strstr(log, "adopting"));
	free(log);
	assert_int_equal(access(p, F_OK), 0);
	// Adopted once: the next open is a clean one.
	assert_int_equal(open_logged(dir, &log, &nrec), DTX_OK);
	assert_int_equal(st_count(log, "WALMANIFEST"), 0);
	free(log);
	// From now on the manifest holds: a deleted segment is refused.
	uint64_t v[64];
	size_t n = segs_of(dir, v, 64);
	char sp[512], name[64];
	seg_path(sp, sizeof(sp), dir, v[n - 1]);
	assert_int_equal(unlink(sp), 0);
	stor_wal_seg_name(name, sizeof(name), v[n - 1]);
	refuses(dir, name, "missing");
	// An empty directory is a fresh start, without a warning.
	char fresh[256];
	st_tmpdir(fresh, sizeof(fresh), "manfresh");
	assert_int_equal(open_logged(fresh, &log, &nrec), DTX_OK);
	assert_int_equal(st_count(log, "WALMANIFEST"), 0);
	assert_int_equal(nrec, 0);
	free(log);
	path_of(p, sizeof(p), fresh, STOR_WAL_MAN_NAME);
	assert_int_equal(access(p, F_OK), 0);
	(void)dtx_rmtree(dir);
	(void)dtx_rmtree(fresh);
}

// The links of the file open as fd.
static int
links(int fd)
{
	struct stat sb;
	assert_int_equal(fstat(fd, &sb), 0);
	return (int)sb.st_nlink;
}

// The manifest changes on rotation and checkpoint, never per append.
static void
test_manifest_not_per_append(void **state)
{
	(void)state;
	char dir[256], p[512];
	st_tmpdir(dir, sizeof(dir), "manappend");
	stor_wal_opts o;
	stor_wal_opts_init(&o); // 64 MiB segments: no rotation below
	stor_wal *w = st_wal_open(dir, &o);
	path_of(p, sizeof(p), dir, STOR_WAL_MAN_NAME);
	// An open descriptor on the manifest as it is: replaced by a rename,
	// its file is unlinked (inode numbers may be reused; links are not).
	// The first durable record of a segment rewrites it once (the
	// segment has held records); later appends never do.
	append_range(w, 1, 1);
	int fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	append_range(w, 2, 300);
	assert_int_equal(links(fd), 1); // never replaced
	assert_int_equal(stor_wal_checkpoint(w, 300, 0, "c", 1), DTX_OK);
	assert_int_equal(links(fd), 0); // a checkpoint rewrites it
	close(fd);
	stor_wal_close(w);
	// Rotation rewrites it too, naming the new segment.
	o.segment_bytes = SEG_BYTES;
	w = st_wal_open(dir, &o);
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	append_range(w, 301, 700);
	stor_wal_close(w);
	assert_int_equal(links(fd), 0);
	close(fd);
	size_t len = 0;
	unsigned char *m = st_read_file(p, &len);
	uint64_t v[64];
	size_t n = segs_of(dir, v, 64);
	assert_true(n >= 2);
	assert_int_equal(len, 36 + 8 * n);
	assert_int_equal(dtx_get_le32(m + 24), n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(dtx_get_le64(m + 32 + 8 * i), v[i]);
	assert_int_equal(dtx_get_le64(m + 8), 300);
	// Bit 0: a checkpoint; bit 1: the newest segment has held a record.
	char newest[512];
	seg_path(newest, sizeof(newest), dir, v[n - 1]);
	struct stat sb;
	assert_int_equal(stat(newest, &sb), 0);
	assert_int_equal(m[20], sb.st_size > 32 ? 3 : 1);
	free(m);
	(void)dtx_rmtree(dir);
}

// Clears the manifest's "newest segment held records" flag (as a
// manifest written before the flag existed has it), CRC fixed.
static void
clear_used_flag(const char *dir)
{
	char p[512];
	path_of(p, sizeof(p), dir, STOR_WAL_MAN_NAME);
	size_t len = 0;
	unsigned char *m = st_read_file(p, &len);
	assert_true((m[20] & 2) != 0);
	m[20] &= (unsigned char)~2u;
	dtx_put_le32(m + len - 4, dtx_crc32c(0, m, len - 4));
	st_write_file(p, m, len);
	free(m);
}

// Cuts file p to n bytes.
static void
cut_to(const char *p, size_t n)
{
	assert_int_equal(truncate(p, (off_t)n), 0);
}

static uint8_t
man_flags(const char *dir)
{
	char p[512];
	path_of(p, sizeof(p), dir, STOR_WAL_MAN_NAME);
	size_t len = 0;
	unsigned char *m = st_read_file(p, &len);
	uint8_t f = m[20];
	free(m);
	return f;
}

// A newest segment the manifest names, found with no record (cut to its
// header, within it, or to nothing), is refused naming the file when it
// provably held durable records: the manifest's flag says so (written
// before the first record in it was acknowledged), or a checkpoint lies
// at or past its first LSN. One that provably never held a record (the
// flag clear, the checkpoint below it) is a creation a crash cut short:
// kept, or removed when even its header is short.
static void
test_newest_cut_to_header(void **state)
{
	(void)state;
	char dir[256], p[512];
	char *log;
	uint64_t nrec;
	stor_wal_opts o;
	stor_wal_opts_init(&o);
	// Held records: cut to the header, inside the header, to nothing,
	// inside the first record. Each is refused, the file left alone.
	st_tmpdir(dir, sizeof(dir), "mancut");
	stor_wal *w = st_wal_open(dir, &o);
	append_range(w, 1, 10);
	stor_wal_close(w);
	assert_int_equal(man_flags(dir), 2);
	seg_path(p, sizeof(p), dir, 1);
	const size_t cuts[] = { 40, STOR_WAL_SEG_HDR, 20, 0 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		cut_to(p, cuts[i]);
		refuses(dir, "wal-0000000000000001.log",
		    "the manifest records that it held durable");
		struct stat sb;
		assert_int_equal(stat(p, &sb), 0);
		assert_int_equal(sb.st_size, cuts[i]);
	}
	(void)dtx_rmtree(dir);

	// Never held a record: a fresh log opened and closed, twice, then
	// its header cut short (removed, a new one made).
	st_tmpdir(dir, sizeof(dir), "manfresh");
	w = st_wal_open(dir, &o);
	stor_wal_close(w);
	assert_int_equal(man_flags(dir), 0);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(open_logged(dir, &log, &nrec), DTX_OK);
		assert_int_equal(nrec, 0);
		assert_int_equal(st_count(log, "WALCORRUPT"), 0);
		free(log);
	}
	seg_path(p, sizeof(p), dir, 1);
	cut_to(p, 10);
	assert_int_equal(open_logged(dir, &log, &nrec), DTX_OK);
	assert_int_equal(st_count(log, "removing unfinished segment"), 1);
	free(log);
	(void)dtx_rmtree(dir);

	// A rotation whose new segment got no record before the stop: the
	// manifest names it with the flag clear, and it opens. One record
	// in it sets the flag; cut to its header it is then refused.
	st_tmpdir(dir, sizeof(dir), "manrot");
	stor_wal_opts so = small_segs();
	w = st_wal_open(dir, &so);
	uint64_t l = 0, v[64];
	while (segs_of(dir, v, 64) < 2)
		append_range(w, l + 1, l + 1), l++;
	stor_wal_close(w);
	assert_int_equal(man_flags(dir), 0);
	assert_int_equal(open_logged(dir, &log, &nrec), DTX_OK);
	assert_int_equal(nrec, l);
	assert_int_equal(st_count(log, "WALCORRUPT"), 0);
	free(log);
	w = st_wal_open(dir, &so);
	append_range(w, l + 1, l + 1);
	stor_wal_close(w);
	assert_int_equal(man_flags(dir), 2);
	seg_path(p, sizeof(p), dir, v[1]);
	cut_to(p, STOR_WAL_SEG_HDR);
	char name[64];
	stor_wal_seg_name(name, sizeof(name), v[1]);
	refuses(dir, name, "held durable");
	(void)dtx_rmtree(dir);

	// A manifest without the flag (written before it existed): records
	// found in the newest segment set it on open; and a checkpoint at
	// or past the segment's first LSN proves it held records.
	st_tmpdir(dir, sizeof(dir), "manold");
	w = st_wal_open(dir, &o);
	append_range(w, 1, 10);
	assert_int_equal(stor_wal_checkpoint(w, 10, 0, "ck", 2), DTX_OK);
	stor_wal_close(w);
	clear_used_flag(dir);
	assert_int_equal(open_logged(dir, &log, &nrec), DTX_OK);
	free(log);
	assert_int_equal(man_flags(dir), 3);
	clear_used_flag(dir);
	seg_path(p, sizeof(p), dir, 1);
	cut_to(p, STOR_WAL_SEG_HDR);
	refuses(dir, "wal-0000000000000001.log", "the checkpoint at LSN 10");
	(void)dtx_rmtree(dir);
}

// ---------------------------------------------------------------- identity

static dtx_err
ident_logged(const char *dir, uint32_t node, uint64_t cluster, char **log)
{
	char cap[512];
	snprintf(cap, sizeof(cap), "%s.stderr", dir);
	int saved = st_stderr_to(cap);
	assert_true(saved >= 0);
	dtx_err err = stor_ident_check(dir, node, cluster);
	*log = st_stderr_back(saved, cap);
	assert_non_null(*log);
	unlink(cap);
	return err;
}

static void
test_identity(void **state)
{
	(void)state;
	char dir[256], p[512];
	st_tmpdir(dir, sizeof(dir), "ident");
	char *log;
	uint64_t c = UINT64_C(0x1122334455667788);
	assert_int_equal(ident_logged(dir, 3, c, &log), DTX_OK);
	free(log);
	path_of(p, sizeof(p), dir, STOR_IDENT_NAME);
	size_t len = 0;
	unsigned char *b = st_read_file(p, &len);
	assert_int_equal(len, 32);
	assert_memory_equal(b, STOR_IDENT_MAGIC, 8);
	assert_int_equal(dtx_get_le32(b + 8), 3);
	assert_int_equal(dtx_get_le64(b + 16), c);
	// The same node and cluster again: fine.
	assert_int_equal(ident_logged(dir, 3, c, &log), DTX_OK);
	free(log);
	// Another node.
	assert_int_equal(ident_logged(dir, 4, c, &log), DTX_ECORRUPT);
	assert_non_null(strstr(log, "DATAID"));
	assert_non_null(strstr(log, STOR_IDENT_NAME));
	assert_non_null(
	    strstr(log, "belongs to node 3 of cluster 1122334455667788"));
	assert_non_null(
	    strstr(log, "not to node 4 of cluster 1122334455667788"));
	free(log);
	// Another cluster.
	assert_int_equal(ident_logged(dir, 3, c + 1, &log), DTX_ECORRUPT);
	assert_non_null(
	    strstr(log, "not to node 3 of cluster 1122334455667789"));
	free(log);
	// Damaged.
	b[9] ^= 1;
	st_write_file(p, b, len);
	assert_int_equal(ident_logged(dir, 3, c, &log), DTX_ECORRUPT);
	assert_non_null(strstr(log, "damaged identity file"));
	free(log);
	st_write_file(p, b, 5);
	assert_int_equal(ident_logged(dir, 3, c, &log), DTX_ECORRUPT);
	free(log);
	free(b);
	(void)dtx_rmtree(dir);
}

static void
test_cluster_id(void **state)
{
	(void)state;
	const char *t1 = "coordinator 0 tcp://127.0.0.1:7100\n"
	                 "participant 1 tcp://127.0.0.1:7101\n"
	                 "participant 2 tcp://127.0.0.1:7102\n"
	                 "client 3\n";
	// Other ports, another client id: the same cluster.
	const char *t2 = "participant 2 tcp://127.0.0.1:9102\n"
	                 "coordinator 0 tcp://127.0.0.1:9100\n"
	                 "participant 1 tcp://127.0.0.1:9101\n"
	                 "client 5\n";
	// A node with another role, one more node: other clusters.
	const char *t3 = "coordinator 0 tcp://127.0.0.1:7100\n"
	                 "participant 1 tcp://127.0.0.1:7101\n"
	                 "saga 2 tcp://127.0.0.1:7102\n";
	const char *t4 = "coordinator 0 tcp://127.0.0.1:7100\n"
	                 "participant 1 tcp://127.0.0.1:7101\n"
	                 "participant 2 tcp://127.0.0.1:7102\n"
	                 "participant 4 tcp://127.0.0.1:7104\n";
	static dtx_topo a, b, c, d;
	char err[128];
	assert_int_equal(dtx_topo_parse(t1, &a, err, sizeof(err)), DTX_OK);
	assert_int_equal(dtx_topo_parse(t2, &b, err, sizeof(err)), DTX_OK);
	assert_int_equal(dtx_topo_parse(t3, &c, err, sizeof(err)), DTX_OK);
	assert_int_equal(dtx_topo_parse(t4, &d, err, sizeof(err)), DTX_OK);
	assert_int_equal(stor_cluster_id(&a), stor_cluster_id(&b));
	assert_int_not_equal(stor_cluster_id(&a), stor_cluster_id(&c));
	assert_int_not_equal(stor_cluster_id(&a), stor_cluster_id(&d));
}

int
main(void)
{
	dtx_log_init("test", DTX_LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delete_middle_segment),
		cmocka_unit_test(test_delete_newest_segment),
		cmocka_unit_test(test_foreign_segment),
		cmocka_unit_test(test_corrupt_manifest),
		cmocka_unit_test(test_checkpoint_disagrees),
		cmocka_unit_test(test_clean_restart),
		cmocka_unit_test(test_crash_leftovers),
		cmocka_unit_test(test_adopt_old_log),
		cmocka_unit_test(test_manifest_not_per_append),
		cmocka_unit_test(test_newest_cut_to_header),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_cluster_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
