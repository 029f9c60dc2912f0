// SPDX-License-Identifier: MIT
//
// The WAL's manifest: the list of live segments and the checkpoint the
// log directory must hold, read and checked against the files on open and
// rewritten atomically (temp file, fsync, rename, fsync of the directory)
// when a segment is created or removed and when a checkpoint is taken.
// The format and the rules are documented in storage.h.

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage_int.h"

#define MAN_HDR 32u
#define MAN_TMP STOR_WAL_MAN_NAME ".tmp"
#define CKPT_TMP "checkpoint.tmp"

void
stor__man_fini(stor__man *m)
{
	dtx_free(m->segs);
	memset(m, 0, sizeof(*m));
}

// Reads all of fd (at most max bytes) into *out (owned). DTX_ECORRUPT when
// the file is larger than max.
static dtx_err
slurp(int fd, size_t max, uint8_t **out, size_t *n)
{
	struct stat sb;
	if (fstat(fd, &sb) != 0)
		return dtx_from_errno(errno);
	if ((uint64_t)sb.st_size > max)
		return DTX_ECORRUPT;
	size_t len = (size_t)sb.st_size;
	uint8_t *p = dtx_alloc(len > 0 ? len : 1);
	if (p == NULL)
		return DTX_ENOMEM;
	size_t got = 0;
	while (got < len) {
		ssize_t r = pread(fd, p + got, len - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			dtx_free(p);
			return r < 0 ? dtx_from_errno(errno) : DTX_EIO;
		}
		got += (size_t)r;
	}
	*out = p;
	*n = len;
	return DTX_OK;
}

dtx_err
stor__man_read(int dirfd, const char *dir, stor__man *m, bool *found)
{
	memset(m, 0, sizeof(*m));
	*found = false;
	int fd = openat(dirfd, STOR_WAL_MAN_NAME, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? DTX_OK : dtx_from_errno(errno);
	uint8_t *p = NULL;
	size_t n = 0;
	dtx_err err = slurp(fd, MAN_HDR + 8u * STOR_WAL_MAN_MAX + 4, &p, &n);
	close(fd);
	if (err == DTX_ENOMEM)
		return err;
	const char *why = NULL;
	if (err != DTX_OK)
		why = err == DTX_ECORRUPT ? "too large" : "unreadable";
	else if (n < MAN_HDR + 4 || memcmp(p, STOR_WAL_MAN_MAGIC, 8) != 0)
		why = "bad magic or too short";
	else if (dtx_get_le32(p + n - 4) != dtx_crc32c(0, p, n - 4))
		why = "CRC32C mismatch";
	else if (dtx_get_le32(p + 24) > STOR_WAL_MAN_MAX ||
	    n != MAN_HDR + 8u * dtx_get_le32(p + 24) + 4 || (p[20] & ~3u) ||
	    p[21] || p[22] || p[23] || dtx_get_le32(p + 28) != 0)
		why = "bad length, flags or reserved bytes";
	if (why == NULL) {
		m->has_ckpt = (p[20] & 1u) != 0;
		m->newest_used = (p[20] & 2u) != 0;
		m->ckpt_lsn = dtx_get_le64(p + 8);
		m->ckpt_crc = dtx_get_le32(p + 16);
		m->nsegs = dtx_get_le32(p + 24);
		m->segs = dtx_alloc(8u * (m->nsegs > 0 ? m->nsegs : 1));
		if (m->segs == NULL) {
			dtx_free(p);
			return DTX_ENOMEM;
		}
		for (size_t i = 0; i < m->nsegs && why == NULL; i++) {
			m->segs[i] = dtx_get_le64(p + MAN_HDR + 8 * i);
			if (m->segs[i] == 0 ||
			    (i > 0 && m->segs[i] <= m->segs[i - 1]))
				why = "segments out of order";
		}
	}
	dtx_free(p);
	if (why != NULL) {
		stor__man_fini(m);
		DTX_LOG(DTX_LOG_ERROR, "WALCORRUPT",
		    "%s/%s: damaged manifest (%s)", dir, STOR_WAL_MAN_NAME,
		    why);
		return DTX_ECORRUPT;
	}
	*found = true;
	return DTX_OK;
}

// Writes len bytes and syncs through the WAL's hooks (the sync is skipped
// with STOR_SYNC_NONE, as for the log itself).
static dtx_err
put_synced(const stor_wal_opts *o, int fd, const void *buf, size_t len)
{
	int e = 0;
	if (o->write_fn != NULL) {
		e = o->write_fn(o->hook_arg, fd, buf, len);
	} else {
		const uint8_t *q = buf;
		while (len > 0 && e == 0) {
			ssize_t r = write(fd, q, len);
			if (r < 0 && errno != EINTR)
				e = errno;
			if (r > 0) {
				q += r;
				len -= (size_t)r;
			}
		}
	}
	if (e == 0)
		return stor__sync_fd(o, fd);
	return dtx_from_errno(e);
}

dtx_err
stor__sync_fd(const stor_wal_opts *o, int fd)
{
	if (o->sync == STOR_SYNC_NONE)
		return DTX_OK;
	int e = o->sync_fn != NULL ? o->sync_fn(o->hook_arg, fd)
	                           : (fdatasync(fd) == 0 ? 0 : errno);
	return e == 0 ? DTX_OK : dtx_from_errno(e);
}

dtx_err
stor__man_write(int dirfd, const stor_wal_opts *o, const stor__man *m)
{
	if (m->nsegs > STOR_WAL_MAN_MAX)
		return DTX_ERANGE;
	size_t n = MAN_HDR + 8u * m->nsegs + 4;
	uint8_t *p = dtx_calloc(1, n);
	if (p == NULL)
		return DTX_ENOMEM;
	memcpy(p, STOR_WAL_MAN_MAGIC, 8);
	dtx_put_le64(p + 8, m->has_ckpt ? m->ckpt_lsn : 0);
	dtx_put_le32(p + 16, m->has_ckpt ? m->ckpt_crc : 0);
	p[20] = (uint8_t)((m->has_ckpt ? 1 : 0) | (m->newest_used ? 2 : 0));
	dtx_put_le32(p + 24, (uint32_t)m->nsegs);
	for (size_t i = 0; i < m->nsegs; i++)
		dtx_put_le64(p + MAN_HDR + 8 * i, m->segs[i]);
	dtx_put_le32(p + n - 4, dtx_crc32c(0, p, n - 4));
	dtx_err err = DTX_OK;
	int fd = openat(
	    dirfd, MAN_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		err = dtx_from_errno(errno);
	else
		err = put_synced(o, fd, p, n);
	if (fd >= 0)
		close(fd);
	dtx_free(p);
	if (err == DTX_OK &&
	    renameat(dirfd, MAN_TMP, dirfd, STOR_WAL_MAN_NAME) != 0)
		err = dtx_from_errno(errno);
	if (err != DTX_OK) {
		(void)unlinkat(dirfd, MAN_TMP, 0);
		return err;
	}
	return stor__sync_fd(o, dirfd);
}

// ---------------------------------------------------------------- checks

// The LSN and CRC32C in the header of checkpoint file name. DTX_ENOENT
// when it is missing, DTX_ECORRUPT when its header is not one.
static dtx_err
ckpt_peek(int dirfd, const char *name, uint64_t *lsn, uint32_t *crc)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? DTX_ENOENT : dtx_from_errno(errno);
	uint8_t h[32];
	ssize_t r = pread(fd, h, sizeof(h), 0);
	close(fd);
	if (r != (ssize_t)sizeof(h) || memcmp(h, STOR_WAL_CKPT_MAGIC, 8) != 0)
		return DTX_ECORRUPT;
	*lsn = dtx_get_le64(h + 8);
	*crc = dtx_get_le32(h + 24);
	return DTX_OK;
}

dtx_err
stor__man_check_ckpt(
    int dirfd, const char *dir, const stor_wal_opts *o, const stor__man *m)
{
	uint64_t lsn = 0;
	uint32_t crc = 0;
	dtx_err err = ckpt_peek(dirfd, STOR_WAL_CKPT_NAME, &lsn, &crc);
	if (err != DTX_OK && err != DTX_ENOENT && err != DTX_ECORRUPT)
		return err;
	bool have = err != DTX_ENOENT;
	if (!m->has_ckpt) {
		if (!have)
			return DTX_OK;
		DTX_LOG(DTX_LOG_ERROR, "WALCORRUPT",
		    "%s/%s: a checkpoint the manifest does not name (foreign "
		    "file)",
		    dir, STOR_WAL_CKPT_NAME);
		return DTX_ECORRUPT;
	}
	if (err == DTX_OK && lsn == m->ckpt_lsn && crc == m->ckpt_crc)
		return DTX_OK;
	// A crash between writing the manifest and renaming the new
	// checkpoint into place leaves it complete in the temp file.
	uint64_t tl = 0;
	uint32_t tc = 0;
	if (ckpt_peek(dirfd, CKPT_TMP, &tl, &tc) == DTX_OK &&
	    tl == m->ckpt_lsn && tc == m->ckpt_crc) {
		DTX_LOG(DTX_LOG_WARN, "WALCKPT",
		    "%s: finishing checkpoint at LSN %" PRIu64
		    " interrupted before its rename",
		    dir, tl);
		if (renameat(dirfd, CKPT_TMP, dirfd, STOR_WAL_CKPT_NAME) != 0)
			return dtx_from_errno(errno);
		return stor__sync_fd(o, dirfd);
	}
	if (!have)
		DTX_LOG(DTX_LOG_ERROR, "WALCORRUPT",
		    "%s/%s: missing; the manifest names a checkpoint at LSN "
		    "%" PRIu64,
		    dir, STOR_WAL_CKPT_NAME, m->ckpt_lsn);
	else
		DTX_LOG(DTX_LOG_ERROR, "WALCORRUPT",
		    "%s/%s: holds LSN %" PRIu64 " CRC %08" PRIx32
		    " (or a bad header); the manifest names LSN %" PRIu64
		    " CRC %08" PRIx32,
		    dir, STOR_WAL_CKPT_NAME, lsn, crc, m->ckpt_lsn,
		    m->ckpt_crc);
	return DTX_ECORRUPT;
}

static bool
man_has(const stor__man *m, uint64_t first)
{
	for (size_t i = 0; i < m->nsegs; i++)
		if (m->segs[i] == first)
			return true;
	return false;
}

static bool
list_has(const uint64_t *v, size_t n, uint64_t first)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == first)
			return true;
	return false;
}

// Removes the segment file first and drops it from v (index i).
static dtx_err
drop_file(int dirfd, uint64_t *v, size_t *n, size_t i)
{
	char name[STOR_WAL_SEG_NAME_LEN + 1];
	stor_wal_seg_name(name, sizeof(name), v[i]);
	if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
		return dtx_from_errno(errno);
	memmove(v + i, v + i + 1, (*n - i - 1) * sizeof(*v));
	(*n)--;
	return DTX_OK;
}

dtx_err
stor__man_check_segs(int dirfd, const char *dir, const stor__man *m,
    uint64_t *segs, size_t *nsegs, bool *changed)
{
	char name[STOR_WAL_SEG_NAME_LEN + 1];
	for (size_t i = 0; i < m->nsegs; i++) {
		if (list_has(segs, *nsegs, m->segs[i]))
			continue;
		stor_wal_seg_name(name, sizeof(name), m->segs[i]);
		DTX_LOG(DTX_LOG_ERROR, "WALCORRUPT",
		    "%s/%s: missing; the manifest names it as a live segment",
		    dir, name);
		return DTX_ECORRUPT;
	}
	uint64_t first = m->nsegs > 0 ? m->segs[0] : UINT64_MAX;
	uint64_t last = m->nsegs > 0 ? m->segs[m->nsegs - 1] : 0;
	for (size_t i = 0; i < *nsegs;) {
		uint64_t s = segs[i];
		if (man_has(m, s)) {
			i++;
			continue;
		}
		stor_wal_seg_name(name, sizeof(name), s);
		struct stat sb;
		bool newest = i + 1 == *nsegs && s > last;
		bool empty = fstatat(dirfd, name, &sb, 0) == 0 &&
		    (uint64_t)sb.st_size <= STOR_WAL_SEG_HDR;
		dtx_err err;
		if (s < first && m->nsegs > 0) {
			// A checkpoint retired it; the crash came before
			// its removal.
			DTX_LOG(DTX_LOG_WARN, "WALTRUNC",
			    "%s: removing %s, retired by the last checkpoint",
			    dir, name);
		} else if (newest && empty) {
			// Created, but the crash came before the manifest
			// named it: it holds no record.
			DTX_LOG(DTX_LOG_WARN, "WALTAIL",
			    "%s: removing unfinished segment %s", dir, name);
		} else {
			DTX_LOG(DTX_LOG_ERROR, "WALCORRUPT",
			    "%s/%s: not in the manifest (foreign segment)", dir,
			    name);
			return DTX_ECORRUPT;
		}
		if ((err = drop_file(dirfd, segs, nsegs, i)) != DTX_OK)
			return err;
		*changed = true;
	}
	return DTX_OK;
}
