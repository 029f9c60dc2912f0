// SPDX-License-Identifier: MIT
//
// The WAL's files seen from outside a stor_wal: segment names, record
// framing, a read-only walk of the good records, and the fault hooks
// (a torn tail, a flipped bit) that the disk nemesis and the tests apply
// to a stopped WAL. The format itself is documented in storage.h.

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage_int.h"

void
stor_wal_seg_name(char *out, size_t n, uint64_t first)
{
	snprintf(out, n, "wal-%016" PRIx64 ".log", first);
}

bool
stor_wal_seg_parse(const char *name, uint64_t *first)
{
	if (name == NULL || strlen(name) != STOR_WAL_SEG_NAME_LEN ||
	    strncmp(name, "wal-", 4) != 0 || strcmp(name + 20, ".log") != 0)
		return false;
	uint64_t v = 0;
	for (int i = 4; i < 20; i++) {
		char c = name[i];
		int x = c >= '0' && c <= '9' ? c - '0'
		    : c >= 'a' && c <= 'f'   ? c - 'a' + 10
		                             : -1;
		if (x < 0)
			return false;
		v = (v << 4) | (uint64_t)x;
	}
	if (v == 0)
		return false;
	if (first != NULL)
		*first = v;
	return true;
}

void
stor_wal_rec_frame(
    uint8_t *out, uint8_t type, uint64_t lsn, const void *payload, size_t len)
{
	dtx_put_le32(out, (uint32_t)len);
	out[4] = type;
	out[5] = out[6] = out[7] = 0;
	dtx_put_le64(out + 8, lsn);
	if (len > 0)
		memcpy(out + STOR_WAL_REC_HDR, payload, len);
	dtx_put_le32(out + STOR_WAL_REC_HDR + len,
	    dtx_crc32c(0, out, STOR_WAL_REC_HDR + len));
}

// ---------------------------------------------------------------- scan

static dtx_err
pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;
	while (got < len) {
		ssize_t r = pread(
		    fd, (uint8_t *)buf + got, len - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return dtx_from_errno(errno);
		if (r == 0)
			return DTX_EIO;
		got += (size_t)r;
	}
	return DTX_OK;
}

// The first LSNs of dir's segments, ascending, into *out (owned, free with
// dtx_free; NULL when *n is 0).
static dtx_err
list_segs(const char *dir, uint64_t **out, size_t *n)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return dtx_from_errno(errno);
	uint64_t *v = NULL;
	size_t cnt = 0, cap = 0;
	dtx_err err = DTX_OK;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		uint64_t first;
		if (!stor_wal_seg_parse(de->d_name, &first))
			continue;
		if ((err = DTX_GROW(v, cnt, cap, 8)) != DTX_OK)
			break;
		v[cnt++] = first;
	}
	closedir(d);
	if (err != DTX_OK) {
		dtx_free(v);
		return err;
	}
	if (cnt > 1)
		dtx_sort_u64(v, cnt);
	*out = v;
	*n = cnt;
	return DTX_OK;
}

// One segment being walked.
typedef struct walk {
	int fd;
	uint64_t size;
	uint8_t *buf; // the current record
	size_t cap;
	stor_wal_rec_info info; // the current record; offset walks on
} walk;

// Opens segment first of dir (read-write when rw) and checks its header.
static dtx_err
walk_open(const char *dir, uint64_t first, bool rw, walk *k)
{
	char path[PATH_MAX];
	memset(&k->info, 0, sizeof(k->info));
	stor_wal_seg_name(k->info.segment, sizeof(k->info.segment), first);
	if (snprintf(path, sizeof(path), "%s/%s", dir, k->info.segment) >=
	    (int)sizeof(path))
		return DTX_EINVAL;
	k->fd = open(path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	struct stat sb;
	if (k->fd < 0 || fstat(k->fd, &sb) != 0)
		return dtx_from_errno(errno);
	k->size = (uint64_t)sb.st_size;
	uint8_t h[STOR_WAL_SEG_HDR];
	if (k->size < sizeof(h) ||
	    pread_all(k->fd, h, sizeof(h), 0) != DTX_OK ||
	    memcmp(h, STOR_WAL_SEG_MAGIC, 8) != 0 ||
	    dtx_get_le32(h + 24) != dtx_crc32c(0, h, 24) ||
	    dtx_get_le64(h + 8) != first)
		return DTX_ECORRUPT;
	k->info.seg_first = first;
	k->info.offset = STOR_WAL_SEG_HDR;
	k->info.lsn = first;
	return DTX_OK;
}

// Reads the record at k->info.offset into k->buf and fills k->info. *good
// is false when there is none there that is good (the end of the walk).
static dtx_err
walk_read(walk *k, bool *good)
{
	stor_wal_rec_info *in = &k->info;
	uint64_t off = in->offset, left = k->size - off;
	uint8_t h[STOR_WAL_REC_HDR];
	*good = false;
	if (left < STOR_WAL_REC_OVERHEAD)
		return DTX_OK;
	dtx_err err = pread_all(k->fd, h, sizeof(h), off);
	if (err != DTX_OK)
		return err;
	uint32_t len = dtx_get_le32(h);
	if (h[4] == 0 || h[5] || h[6] || h[7] || len > STOR_WAL_MAX_RECORD ||
	    left - STOR_WAL_REC_OVERHEAD < len ||
	    dtx_get_le64(h + 8) != in->lsn)
		return DTX_OK;
	size_t need = STOR_WAL_REC_OVERHEAD + (size_t)len;
	if (need > k->cap) {
		uint8_t *nb = dtx_realloc(k->buf, need);
		if (nb == NULL)
			return DTX_ENOMEM;
		k->buf = nb;
		k->cap = need;
	}
	if ((err = pread_all(k->fd, k->buf, need, off)) != DTX_OK)
		return err;
	if (dtx_crc32c(0, k->buf, STOR_WAL_REC_HDR + len) !=
	    dtx_get_le32(k->buf + STOR_WAL_REC_HDR + len))
		return DTX_OK;
	in->length = need;
	in->type = h[4];
	in->payload_len = len;
	*good = true;
	return DTX_OK;
}

// Walks every segment of dir in LSN order: calls fn for each good record
// and fills *end for the newest segment. With stop_lsn set, stops at the
// good record with that LSN instead, leaving its segment open in *hit
// (rw) with the record in hit->info and DTX_OK; DTX_ENOENT when there is
// none.
static dtx_err
walk_dir(const char *dir, stor_wal_scan_fn fn, void *arg, stor_wal_end *end,
    uint64_t stop_lsn, walk *hit)
{
	uint64_t *segs = NULL;
	size_t nsegs = 0;
	dtx_err err = list_segs(dir, &segs, &nsegs);
	if (err != DTX_OK)
		return err;
	walk k = { .fd = -1 };
	memset(end, 0, sizeof(*end));
	for (size_t i = 0; i < nsegs && err == DTX_OK; i++) {
		if (k.fd >= 0)
			close(k.fd);
		err = walk_open(dir, segs[i], stop_lsn != 0, &k);
		bool good = err == DTX_OK;
		while (err == DTX_OK && good) {
			err = walk_read(&k, &good);
			if (err != DTX_OK || !good)
				break;
			if (k.info.lsn == stop_lsn) {
				*hit = k;
				dtx_free(segs);
				return DTX_OK;
			}
			if (fn != NULL)
				err = fn(arg, &k.info);
			k.info.offset += k.info.length;
			k.info.lsn++;
		}
		if (err == DTX_OK && i + 1 == nsegs) {
			*end = (stor_wal_end) { .offset = k.info.offset,
				.size = k.size,
				.next_lsn = k.info.lsn };
			memcpy(
			    end->segment, k.info.segment, sizeof(end->segment));
		}
	}
	if (k.fd >= 0)
		close(k.fd);
	dtx_free(k.buf);
	dtx_free(segs);
	if (err == DTX_OK && stop_lsn != 0)
		err = DTX_ENOENT;
	return err;
}

dtx_err
stor_wal_scan(
    const char *dir, stor_wal_scan_fn fn, void *arg, stor_wal_end *end)
{
	if (dir == NULL)
		return DTX_EINVAL;
	stor_wal_end e;
	dtx_err err = walk_dir(dir, fn, arg, &e, 0, NULL);
	if (err == DTX_OK && end != NULL)
		*end = e;
	return err;
}

// ---------------------------------------------------------------- faults

// Writes n bytes at off of the file dir/seg (and with cut, truncates it
// there after them), then fsyncs it.
static dtx_err
patch(const char *dir, const char *seg, const void *p, size_t n, uint64_t off,
    bool cut)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, seg) >=
	    (int)sizeof(path))
		return DTX_EINVAL;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return dtx_from_errno(errno);
	dtx_err err = DTX_OK;
	ssize_t w = pwrite(fd, p, n, (off_t)off);
	if (w != (ssize_t)n)
		err = w < 0 ? dtx_from_errno(errno) : DTX_EIO;
	else if (cut && ftruncate(fd, (off_t)(off + n)) != 0)
		err = dtx_from_errno(errno);
	else if (fsync(fd) != 0)
		err = dtx_from_errno(errno);
	close(fd);
	return err;
}

dtx_err
stor_wal_tear_tail(
    const char *dir, const stor_wal_tear *how, stor_wal_end *where)
{
	if (dir == NULL || how == NULL ||
	    how->payload_len > STOR_WAL_MAX_RECORD)
		return DTX_EINVAL;
	stor_wal_end e;
	dtx_err err = stor_wal_scan(dir, NULL, NULL, &e);
	if (err != DTX_OK)
		return err;
	if (e.segment[0] == '\0')
		return DTX_ENOENT;
	size_t len = STOR_WAL_REC_OVERHEAD + (size_t)how->payload_len;
	uint8_t *rec = dtx_alloc(len);
	if (rec == NULL)
		return DTX_ENOMEM;
	// The type first, then the payload, from one generator: the disk
	// nemesis's torn records stay what its seeds made them.
	uint64_t rng = how->seed;
	uint8_t type = (uint8_t)(1 + dtx_rand_below(&rng, 255));
	uint8_t *pl = rec + STOR_WAL_REC_HDR;
	for (size_t i = 0; i < how->payload_len; i++)
		pl[i] = (uint8_t)dtx_rand_next(&rng);
	stor_wal_rec_frame(rec, type, e.next_lsn, pl, how->payload_len);
	size_t keep = how->keep < len ? how->keep : len - 1;
	err = patch(dir, e.segment, rec, keep, e.offset, how->truncate);
	dtx_free(rec);
	if (err == DTX_OK && where != NULL)
		*where = e;
	return err;
}

dtx_err
stor_wal_flip_bit(
    const char *dir, uint64_t lsn, uint64_t bit, stor_wal_rec_info *info)
{
	if (dir == NULL || lsn == 0)
		return DTX_EINVAL;
	stor_wal_end e;
	walk k = { .fd = -1 };
	dtx_err err = walk_dir(dir, NULL, NULL, &e, lsn, &k);
	if (err != DTX_OK)
		return err;
	if (bit >= 8 * k.info.length) {
		err = DTX_ERANGE;
	} else {
		uint8_t b = k.buf[bit / 8] ^ (uint8_t)(1u << (bit % 8));
		uint64_t at = k.info.offset + bit / 8;
		ssize_t w = pwrite(k.fd, &b, 1, (off_t)at);
		if (w != 1)
			err = w < 0 ? dtx_from_errno(errno) : DTX_EIO;
		else if (fsync(k.fd) != 0)
			err = dtx_from_errno(errno);
	}
	if (err == DTX_OK && info != NULL)
		*info = k.info;
	close(k.fd);
	dtx_free(k.buf);
	return err;
}
