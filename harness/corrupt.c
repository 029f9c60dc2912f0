// SPDX-License-Identifier: MIT
//
// The corrupt nemesis's file work, on a daemon that is not running: damage
// to acknowledged data in its WAL (a bit flipped inside a record, or a
// segment cut off inside one) or its checkpoint, aimed only where
// recovery can tell damage from a crash (storage.h, "WAL files", and
// rule 17): never the newest segment's last record, nor a cut of the
// newest segment, which are what a torn tail looks like and which the
// disk nemesis covers. So the expected outcome is always a refusal to
// start. The data dir is copied first, so the run can restore it.

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness_int.h"
#include "storage.h"

#define MAX_WAL_DIRS 8

// A place that can be damaged: a good record (not the newest segment's
// last one) or a checkpoint file, in WAL directory dir.
typedef struct spot {
	uint32_t dir;
	bool ckpt;
	bool older; // a record of a segment before the newest one
	stor_wal_rec_info rec;
	uint64_t ckpt_bytes;
} spot;

typedef struct spots {
	char dirs[MAX_WAL_DIRS][PATH_MAX];
	char rel[MAX_WAL_DIRS][64]; // dirs[i] relative to the data dir
	uint32_t ndirs;
	spot *v;
	size_t n, cap;
	uint32_t cur; // the dir being scanned
} spots;

static bool
is_wal_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool yes = false;
	if (d == NULL)
		return false;
	while (!yes && (e = readdir(d)) != NULL)
		yes = stor_wal_seg_parse(e->d_name, NULL) ||
		    strcmp(e->d_name, STOR_WAL_CKPT_NAME) == 0;
	closedir(d);
	return yes;
}

// The WAL directories: data itself and the folders right below it.
static void
find_dirs(const char *data, spots *s)
{
	if (is_wal_dir(data)) {
		snprintf(s->dirs[s->ndirs], PATH_MAX, "%s", data);
		snprintf(s->rel[s->ndirs++], 64, ".");
	}
	DIR *d = opendir(data);
	struct dirent *e;
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL && s->ndirs < MAX_WAL_DIRS) {
		char path[PATH_MAX];
		if (e->d_name[0] == '.' || e->d_type != DT_DIR ||
		    snprintf(path, sizeof(path), "%s/%s", data, e->d_name) >=
		        (int)sizeof(path) ||
		    !is_wal_dir(path))
			continue;
		snprintf(s->dirs[s->ndirs], PATH_MAX, "%s", path);
		snprintf(s->rel[s->ndirs++], 64, "%.63s", e->d_name);
	}
	closedir(d);
}

static dtx_err
add_rec(void *arg, const stor_wal_rec_info *info)
{
	spots *s = arg;
	if (DTX_GROW(s->v, s->n, s->cap, 256) != DTX_OK)
		return DTX_ENOMEM;
	spot *p = &s->v[s->n++];
	memset(p, 0, sizeof(*p));
	p->dir = s->cur;
	p->rec = *info;
	return DTX_OK;
}

// The LSN a checkpoint file covers (bytes 8..15); UINT64_MAX when it
// cannot be read (then no record of its WAL is aimed at).
static uint64_t
ckpt_lsn(const char *path)
{
	uint8_t b[16];
	uint64_t lsn = 0;
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return UINT64_MAX;
	size_t n = fread(b, 1, sizeof(b), f);
	fclose(f);
	if (n != sizeof(b))
		return UINT64_MAX;
	for (int i = 7; i >= 0; i--)
		lsn = lsn << 8 | b[8 + i];
	return lsn;
}

// Every place of dir i that recovery must refuse when damaged.
static dtx_err
scan_dir(spots *s, uint32_t i)
{
	stor_wal_end end;
	size_t first = s->n;
	s->cur = i;
	dtx_err rv = stor_wal_scan(s->dirs[i], add_rec, s, &end);
	if (rv != DTX_OK && rv != DTX_ENOENT)
		return rv;
	// Records the checkpoint covers are not needed any more; the newest
	// segment's last good record is left out too: damage there is a torn
	// tail by design.
	char path[PATH_MAX + 16];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", s->dirs[i], STOR_WAL_CKPT_NAME);
	bool have_ckpt = stat(path, &st) == 0 && st.st_size > 32;
	uint64_t covered = have_ckpt ? ckpt_lsn(path) : 0;
	size_t k2 = first;
	for (size_t k = first; k < s->n; k++)
		if (s->v[k].rec.lsn > covered)
			s->v[k2++] = s->v[k];
	s->n = k2;
	size_t last = s->n;
	for (size_t k = first; k < s->n; k++) {
		s->v[k].older = strcmp(s->v[k].rec.segment, end.segment) != 0;
		if (!s->v[k].older)
			last = k;
	}
	if (last < s->n) {
		memmove(&s->v[last], &s->v[last + 1],
		    (s->n - last - 1) * sizeof(spot));
		s->n--;
	}
	if (have_ckpt) {
		if (DTX_GROW(s->v, s->n, s->cap, 256) != DTX_OK)
			return DTX_ENOMEM;
		spot *p = &s->v[s->n++];
		memset(p, 0, sizeof(*p));
		p->dir = i;
		p->ckpt = true;
		p->ckpt_bytes = (uint64_t)st.st_size;
	}
	return DTX_OK;
}

// Flips bit `bit` of byte off of path, then fsyncs.
static dtx_err
flip_byte(const char *path, uint64_t off, unsigned bit)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	uint8_t b;
	dtx_err rv = DTX_OK;
	if (fd < 0)
		return dtx_from_errno(errno);
	if (pread(fd, &b, 1, (off_t)off) != 1)
		rv = DTX_EIO;
	b ^= (uint8_t)(1u << bit);
	if (rv == DTX_OK && (pwrite(fd, &b, 1, (off_t)off) != 1 || fsync(fd)))
		rv = DTX_EIO;
	close(fd);
	return rv;
}

static dtx_err
cut(const char *path, uint64_t at)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	dtx_err rv = DTX_OK;
	if (fd < 0)
		return dtx_from_errno(errno);
	if (ftruncate(fd, (off_t)at) != 0 || fsync(fd) != 0)
		rv = DTX_EIO;
	close(fd);
	return rv;
}

// Damages spot p as the form says; extra gets where, as JSON members.
static dtx_err
damage(const spots *s, const spot *p, bool truncate, uint64_t *rng, char *extra,
    size_t len)
{
	char path[PATH_MAX + 40];
	const char *file = p->ckpt ? STOR_WAL_CKPT_NAME : p->rec.segment;
	snprintf(path, sizeof(path), "%s/%s", s->dirs[p->dir], file);
	int at = snprintf(extra, len, "\"file\":\"%s/%s\",\"damaged\":\"%s\"",
	    s->rel[p->dir], file, p->ckpt ? "checkpoint" : "record");
	if (p->ckpt) {
		if (truncate) {
			uint64_t to = dtx_rand_below(rng, p->ckpt_bytes);
			snprintf(extra + at, len - (size_t)at,
			    ",\"cut_at\":%" PRIu64 ",\"file_bytes\":%" PRIu64,
			    to, p->ckpt_bytes);
			return cut(path, to);
		}
		// Bytes 28..31 are reserved and not covered by the CRC.
		uint64_t off = dtx_rand_below(rng, p->ckpt_bytes - 4);
		if (off >= 28)
			off += 4;
		unsigned bit = (unsigned)dtx_rand_below(rng, 8);
		snprintf(extra + at, len - (size_t)at,
		    ",\"offset\":%" PRIu64 ",\"bit\":%u", off, bit);
		return flip_byte(path, off, bit);
	}
	const stor_wal_rec_info *r = &p->rec;
	snprintf(extra + at, len - (size_t)at,
	    ",\"lsn\":%" PRIu64 ",\"record_offset\":%" PRIu64
	    ",\"record_bytes\":%" PRIu64,
	    r->lsn, r->offset, r->length);
	at += (int)strlen(extra + at);
	if (truncate) {
		uint64_t to =
		    r->offset + 1 + dtx_rand_below(rng, r->length - 1);
		snprintf(
		    extra + at, len - (size_t)at, ",\"cut_at\":%" PRIu64, to);
		return cut(path, to);
	}
	uint64_t bit = dtx_rand_below(rng, 8 * r->length);
	snprintf(extra + at, len - (size_t)at, ",\"bit\":%" PRIu64, bit);
	return stor_wal_flip_bit(s->dirs[p->dir], r->lsn, bit, NULL);
}

dtx_err
hx_corrupt_store(
    const char *data, bool truncate, uint64_t seed, char *extra, size_t len)
{
	spots *s = dtx_calloc(1, sizeof(*s));
	dtx_err rv = DTX_OK;
	uint64_t rng = seed ? seed : 1;
	extra[0] = '\0';
	if (s == NULL)
		return DTX_ENOMEM;
	find_dirs(data, s);
	for (uint32_t i = 0; i < s->ndirs && rv == DTX_OK; i++)
		rv = scan_dir(s, i);
	// A cut is aimed at a checkpoint or an older segment; with neither,
	// the fault is a flip instead (said in the op).
	size_t ncut = 0;
	for (size_t k = 0; k < s->n; k++)
		ncut += s->v[k].ckpt || s->v[k].older;
	bool as_cut = truncate && ncut > 0;
	if (rv == DTX_OK && s->n == 0)
		rv = DTX_ENOENT;
	if (rv == DTX_OK) {
		size_t pick = dtx_rand_below(&rng, as_cut ? ncut : s->n), k = 0;
		for (; k < s->n; k++)
			if (!as_cut || s->v[k].ckpt || s->v[k].older) {
				if (pick == 0)
					break;
				pick--;
			}
		int at = snprintf(extra, len, "\"done\":\"%s\",",
		    as_cut ? "truncate"
		        : truncate
		        ? "flip (nothing to cut: one segment, no checkpoint)"
		        : "flip");
		rv = damage(
		    s, &s->v[k], as_cut, &rng, extra + at, len - (size_t)at);
	}
	dtx_free(s->v);
	dtx_free(s);
	return rv;
}

dtx_err
hx_dir_copy(const char *from, const char *to)
{
	const char *rm[] = { "rm", "-rf", to, NULL };
	const char *cp[] = { "cp", "-a", from, to, NULL };
	if (hx_run(rm, NULL, 0, true) != 0 || hx_run(cp, NULL, 0, true) != 0)
		return DTX_EIO;
	return DTX_OK;
}

dtx_err
hx_dir_restore(const char *saved, const char *data)
{
	const char *rm[] = { "rm", "-rf", data, NULL };
	if (hx_run(rm, NULL, 0, true) != 0)
		return DTX_EIO;
	return rename(saved, data) == 0 ? DTX_OK : dtx_from_errno(errno);
}
