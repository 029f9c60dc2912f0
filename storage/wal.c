// SPDX-License-Identifier: MIT
//
// The write-ahead log: record framing, recovery with tail truncation,
// segment rotation, group commit, and atomic checkpoint files. The
// on-disk format is documented in storage.h.
//
// Group commit: a thread that needs a record durable and finds nobody
// writing takes every pending record as one batch and writes and syncs it
// itself (it leads the batch), so a lone forced append pays no hand-off
// to another thread. Records appended while a batch is being synced wait
// for the next batch, which the flusher thread writes as soon as the
// current one is done, and keeps writing batches back to back while
// anyone waits. Waiters sleep on the condition variable of the batch that
// covers their record, so finishing a batch wakes only the threads it
// made durable. Records nobody waits for (appended without force) are
// written by the flusher after a short grace period in which a forced
// append or a sync may take them along.

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage_int.h"

// Short names for the layout storage.h exports.
#define SEG_HDR STOR_WAL_SEG_HDR
#define REC_HDR STOR_WAL_REC_HDR
#define REC_OVERHEAD STOR_WAL_REC_OVERHEAD
#define SEG_MAGIC STOR_WAL_SEG_MAGIC
#define CKPT_MAGIC STOR_WAL_CKPT_MAGIC
#define CKPT_NAME STOR_WAL_CKPT_NAME
#define CKPT_TMP "checkpoint.tmp"
#define READ_CHUNK (4u << 20)
#define PREALLOC_STEP (1u << 20)
// How long pending records that nobody waits for stay in the batch buffer
// before the flusher writes them: long enough for a caller that appends
// several records and then syncs to lead the batch itself, even on a
// loaded machine (a shorter grace lets the flusher take half of such a
// batch, and the caller then needs a second fsync for the rest).
#define FLUSH_GRACE_NS 5000000u

struct stor_wal {
	char *dir;
	int dirfd;
	stor_wal_opts opts;
	stor__durable_fn on_durable;
	void *durable_arg;

	pthread_mutex_t mu;
	pthread_cond_t work_cv; // the flusher waits for records
	// Threads waiting for batch number g sleep on batch_cv[g & 1]: the
	// batch being written, or the one after it. nwait counts them (an
	// upper bound: a finished batch zeroes its count).
	pthread_cond_t batch_cv[2];
	uint32_t nwait[2];
	pthread_mutex_t ckpt_mu; // serializes checkpoints
	pthread_t flusher;
	bool started;
	bool closing;
	bool crashing;
	bool flusher_idle; // the flusher sleeps until signalled
	// A batch is being written and synced (by a leader or the flusher);
	// its number is gen and its last LSN inflight_last. The segment
	// fields below belong to that thread while it is set.
	bool flushing;
	uint64_t gen;
	uint64_t inflight_last;

	// The batch being filled (guarded by mu) and the spare the next
	// batch is written from.
	uint8_t *buf;
	size_t len, cap;
	uint8_t *spare;
	size_t spare_cap;
	uint64_t next_lsn;
	uint64_t durable_lsn;
	dtx_err fail; // DTX_OK, or the error that failed a batch

	// The current segment (owned by the thread writing a batch).
	int seg_fd;
	uint64_t seg_first;
	uint64_t seg_size;
	uint64_t seg_synced;
	uint64_t seg_zeroed; // the file is zero-filled up to here

	// First LSNs of the segments on disk, ascending (guarded by mu).
	uint64_t *segs;
	size_t nsegs, segcap;
	uint64_t ckpt_lsn;

	// The manifest (storage.h): man_mu serializes its writes (rotation,
	// checkpoint) and guards the checkpoint it names. Taken before mu.
	pthread_mutex_t man_mu;
	bool man_has;
	uint64_t man_lsn;
	uint32_t man_crc;
	bool man_dirty; // open changed the files: rewrite it
	// The newest segment has held a durable record (the manifest's
	// flag, set before the first record in it is acknowledged).
	bool man_used;

	stor_wal_stats st;
};

// ---------------------------------------------------------------- helpers

static int
default_write(void *arg, int fd, const void *buf, size_t len)
{
	(void)arg;
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
default_sync(void *arg, int fd)
{
	(void)arg;
	return fdatasync(fd) == 0 ? 0 : errno;
}

static dtx_err
do_write(stor_wal *w, int fd, const void *buf, size_t len)
{
	int e = w->opts.write_fn
	    ? w->opts.write_fn(w->opts.hook_arg, fd, buf, len)
	    : default_write(NULL, fd, buf, len);
	return e == 0 ? DTX_OK : dtx_from_errno(e);
}

// Syncs fd unless the WAL runs with STOR_SYNC_NONE; directories are synced
// with fsync through the same hook.
static dtx_err
do_sync(stor_wal *w, int fd)
{
	if (w->opts.sync == STOR_SYNC_NONE)
		return DTX_OK;
	dtx_crash_gate();
	int e = w->opts.sync_fn ? w->opts.sync_fn(w->opts.hook_arg, fd)
	                        : default_sync(NULL, fd);
	return e == 0 ? DTX_OK : dtx_from_errno(e);
}

static dtx_err
segs_add(stor_wal *w, uint64_t first)
{
	if (DTX_GROW(w->segs, w->nsegs, w->segcap, 8) != DTX_OK)
		return DTX_ENOMEM;
	w->segs[w->nsegs++] = first;
	return DTX_OK;
}

// Writes the manifest: the segments from keep_from on and the checkpoint
// (has, lsn, crc). man_mu held.
static dtx_err
man_save(stor_wal *w, uint64_t keep_from, bool has, uint64_t lsn, uint32_t crc)
{
	stor__man m = { .has_ckpt = has,
		.ckpt_lsn = lsn,
		.ckpt_crc = crc,
		.newest_used = w->man_used };
	pthread_mutex_lock(&w->mu);
	m.segs = dtx_alloc(8u * (w->nsegs > 0 ? w->nsegs : 1));
	for (size_t i = 0; m.segs != NULL && i < w->nsegs; i++)
		if (w->segs[i] >= keep_from)
			m.segs[m.nsegs++] = w->segs[i];
	pthread_mutex_unlock(&w->mu);
	if (m.segs == NULL)
		return DTX_ENOMEM;
	dtx_err err = stor__man_write(w->dirfd, &w->opts, &m);
	stor__man_fini(&m);
	if (err != DTX_OK)
		DTX_LOG(DTX_LOG_ERROR, "WALMANIFEST", "%s/%s: cannot write: %s",
		    w->dir, STOR_WAL_MAN_NAME, dtx_strerror(err));
	return err;
}

// man_save with the checkpoint the manifest names now.
static dtx_err
man_update(stor_wal *w)
{
	pthread_mutex_lock(&w->man_mu);
	dtx_err err = man_save(w, 0, w->man_has, w->man_lsn, w->man_crc);
	pthread_mutex_unlock(&w->man_mu);
	return err;
}

// Writes the manifest with the newest segment's flag "used" (it has held
// a durable record): for a new segment (used false) always, for its
// first durable records (used true) only when the flag was clear. On
// failure the flag stays as it was.
static dtx_err
man_set_used(stor_wal *w, bool used)
{
	pthread_mutex_lock(&w->man_mu);
	dtx_err err = DTX_OK;
	bool was = w->man_used;
	if (was != used || !used) {
		w->man_used = used;
		err = man_save(w, 0, w->man_has, w->man_lsn, w->man_crc);
		if (err != DTX_OK)
			w->man_used = was;
	}
	pthread_mutex_unlock(&w->man_mu);
	return err;
}

// Creates segment first (header written and synced, directory synced) and
// makes it the current one.
static dtx_err
seg_create(stor_wal *w, uint64_t first)
{
	char name[64];
	stor_wal_seg_name(name, sizeof(name), first);
	int fd = openat(
	    w->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return dtx_from_errno(errno);
	uint8_t h[SEG_HDR] = { 0 };
	memcpy(h, SEG_MAGIC, 8);
	dtx_put_le64(h + 8, first);
	dtx_put_le32(h + 24, dtx_crc32c(0, h, 24));
	dtx_err err = do_write(w, fd, h, sizeof(h));
	if (err == DTX_OK)
		err = do_sync(w, fd);
	if (err == DTX_OK)
		err = do_sync(w, w->dirfd);
	if (err != DTX_OK) {
		close(fd);
		return err;
	}
	pthread_mutex_lock(&w->mu);
	err = segs_add(w, first);
	pthread_mutex_unlock(&w->mu);
	// Named in the manifest only once its header is durable: a crash
	// before leaves a segment of no more than a header, which open
	// removes.
	if (err == DTX_OK && (err = man_set_used(w, false)) != DTX_OK) {
		pthread_mutex_lock(&w->mu);
		w->nsegs--;
		pthread_mutex_unlock(&w->mu);
	}
	if (err != DTX_OK) {
		close(fd);
		return err;
	}
	if (w->seg_fd >= 0)
		close(w->seg_fd);
	w->seg_fd = fd;
	w->seg_first = first;
	w->seg_size = SEG_HDR;
	w->seg_synced = SEG_HDR;
	w->seg_zeroed = SEG_HDR;
	w->st.segments++;
	return DTX_OK;
}

// ---------------------------------------------------------------- recovery

typedef struct scan {
	stor_wal *w;
	stor_wal_rec_fn on_rec;
	void *arg;
	uint64_t expect; // next LSN expected
	uint8_t *buf; // read buffer
	size_t bcap;
} scan;

static dtx_err
read_at(int fd, void *p, size_t n, uint64_t off)
{
	uint8_t *q = p;
	while (n > 0) {
		ssize_t r = pread(fd, q, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return dtx_from_errno(errno);
		}
		if (r == 0)
			return DTX_EIO;
		q += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return DTX_OK;
}

// Checks whether a valid record with an LSN above lsn starts anywhere in
// fd's bytes [from, size): if one does, the bad record before it is not
// the tail but damage in the middle of the log.
static dtx_err
later_valid(int fd, uint64_t from, uint64_t size, uint64_t lsn, bool *found)
{
	*found = false;
	if (from >= size || size - from < REC_OVERHEAD)
		return DTX_OK;
	size_t n = (size_t)(size - from);
	uint8_t *p = dtx_alloc(n);
	if (p == NULL)
		return DTX_ENOMEM;
	dtx_err err = read_at(fd, p, n, from);
	if (err != DTX_OK)
		goto fail;
	for (size_t i = 0; i + REC_OVERHEAD <= n; i++) {
		uint64_t l = dtx_get_le64(p + i + 8);
		uint32_t len = dtx_get_le32(p + i);
		if (l <= lsn || l - lsn > n / REC_OVERHEAD + 1 || p[i + 4] == 0)
			continue;
		if (len > n - i - REC_OVERHEAD)
			continue;
		uint32_t crc = dtx_crc32c(0, p + i, REC_HDR + len);
		if (crc == dtx_get_le32(p + i + REC_HDR + len)) {
			*found = true;
			break;
		}
	}
fail:
	dtx_free(p);
	return err;
}

// True when fd's bytes [from, size) are all zero: the unused, preallocated
// rest of a segment.
static dtx_err
zero_rest(int fd, uint64_t from, uint64_t size, bool *zero)
{
	uint8_t buf[16384];
	size_t cap = sizeof(buf);
	*zero = true;
	while (from < size && *zero) {
		size_t n = cap;
		if (n > size - from)
			n = (size_t)(size - from);
		dtx_err err = read_at(fd, buf, n, from);
		if (err != DTX_OK)
			return err;
		for (size_t i = 0; i < n; i++) {
			if (buf[i] != 0) {
				*zero = false;
				break;
			}
		}
		from += n;
	}
	return DTX_OK;
}

// Replays one segment. *torn_at gets the offset where a bad tail starts
// (UINT64_MAX when the segment is whole); *end the offset after the last
// record.
static dtx_err
scan_segment(
    scan *s, int fd, uint64_t size, bool last, uint64_t *torn_at, uint64_t *end)
{
	stor_wal *w = s->w;
	*torn_at = UINT64_MAX;
	*end = size;
	uint64_t off = SEG_HDR; // file offset of buf[0]
	size_t have = 0, pos = 0;
	for (;;) {
		uint64_t at = off + pos;
		if (at == size)
			return DTX_OK;
		// Make sure the header and then the whole record are in buf.
		size_t need = REC_OVERHEAD;
		bool bad = false;
		for (int pass = 0; pass < 2 && !bad; pass++) {
			if (size - at < need) {
				bad = true;
				break;
			}
			if (have - pos < need) {
				if (need > s->bcap) {
					uint8_t *nb = dtx_realloc(s->buf, need);
					if (nb == NULL)
						return DTX_ENOMEM;
					s->buf = nb;
					s->bcap = need;
				}
				memmove(s->buf, s->buf + pos, have - pos);
				have -= pos;
				off += pos;
				pos = 0;
				size_t want = s->bcap - have;
				if (want > size - (off + have))
					want = (size_t)(size - (off + have));
				dtx_err err = read_at(
				    fd, s->buf + have, want, off + have);
				if (err != DTX_OK)
					return err;
				have += want;
			}
			if (pass == 0) {
				uint32_t len = dtx_get_le32(s->buf + pos);
				if (len > STOR_WAL_MAX_RECORD)
					bad = true;
				need = REC_OVERHEAD + (size_t)len;
			}
		}
		const uint8_t *r = s->buf + pos;
		uint32_t len = bad ? 0 : dtx_get_le32(r);
		if (!bad) {
			uint32_t crc = dtx_crc32c(0, r, REC_HDR + len);
			bad = crc != dtx_get_le32(r + REC_HDR + len) ||
			    r[4] == 0 || r[5] || r[6] || r[7];
		}
		if (bad) {
			// An all-zero rest is the preallocated end, not damage.
			bool zero;
			dtx_err err = zero_rest(fd, at, size, &zero);
			if (err != DTX_OK)
				return err;
			if (zero) {
				*end = at;
				return DTX_OK;
			}
		}
		if (bad) {
			if (!last)
				goto corrupt;
			bool found;
			dtx_err err = later_valid(fd, at + 1, size,
			    s->expect > 0 ? s->expect - 1 : 0, &found);
			if (err != DTX_OK)
				return err;
			if (found)
				goto corrupt;
			*torn_at = at;
			return DTX_OK;
		}
		uint64_t lsn = dtx_get_le64(r + 8);
		if (lsn != s->expect) {
			DTX_LOG(DTX_LOG_ERROR, "WALCORRUPT",
			    "%s: record at offset %" PRIu64 " has LSN %" PRIu64
			    ", expected %" PRIu64,
			    w->dir, at, lsn, s->expect);
			return DTX_ECORRUPT;
		}
		if (lsn > w->ckpt_lsn) {
			dtx_err err = s->on_rec == NULL
			    ? DTX_OK
			    : s->on_rec(s->arg, lsn, r[4], r + REC_HDR, len);
			if (err != DTX_OK)
				return err;
			w->st.replayed++;
		}
		s->expect++;
		pos += REC_OVERHEAD + len;
	}
corrupt:
	DTX_LOG(DTX_LOG_ERROR, "WALCORRUPT",
	    "%s: damaged record before the tail (segment %016" PRIx64
	    ", offset %" PRIu64 ", LSN %" PRIu64 ")",
	    w->dir, w->seg_first, off + pos, s->expect);
	return DTX_ECORRUPT;
}

static dtx_err
load_checkpoint(stor_wal *w, stor_wal_ckpt_fn on_ckpt, void *arg)
{
	int fd = openat(w->dirfd, CKPT_NAME, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? DTX_OK : dtx_from_errno(errno);
	dtx_err err = DTX_OK;
	uint8_t *blob = NULL;
	struct stat sb;
	if (fstat(fd, &sb) != 0) {
		err = dtx_from_errno(errno);
		goto fail;
	}
	uint8_t h[32];
	if ((uint64_t)sb.st_size < sizeof(h) ||
	    read_at(fd, h, sizeof(h), 0) != DTX_OK ||
	    memcmp(h, CKPT_MAGIC, 8) != 0 || dtx_get_le32(h + 28) != 0 ||
	    dtx_get_le64(h + 16) != (uint64_t)sb.st_size - sizeof(h)) {
		err = DTX_ECORRUPT;
		goto fail;
	}
	size_t n = (size_t)dtx_get_le64(h + 16);
	blob = dtx_alloc(n);
	if (blob == NULL) {
		err = DTX_ENOMEM;
		goto fail;
	}
	err = read_at(fd, blob, n, sizeof(h));
	if (err != DTX_OK)
		goto fail;
	uint32_t crc = dtx_crc32c(dtx_crc32c(0, h, 24), blob, n);
	if (crc != dtx_get_le32(h + 24)) {
		err = DTX_ECORRUPT;
		goto fail;
	}
	w->ckpt_lsn = dtx_get_le64(h + 8);
	w->st.checkpoint_lsn = w->ckpt_lsn;
	w->man_has = true;
	w->man_lsn = w->ckpt_lsn;
	w->man_crc = crc;
	if (on_ckpt != NULL)
		err = on_ckpt(arg, w->ckpt_lsn, blob, n);
fail:
	if (err == DTX_ECORRUPT)
		DTX_LOG(DTX_LOG_ERROR, "WALCORRUPT", "%s: bad checkpoint file",
		    w->dir);
	dtx_free(blob);
	close(fd);
	return err;
}

static dtx_err
list_segments(stor_wal *w)
{
	int fd = dup(w->dirfd);
	if (fd < 0)
		return dtx_from_errno(errno);
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return dtx_from_errno(errno);
	}
	rewinddir(d);
	dtx_err err = DTX_OK;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		uint64_t v;
		if (!stor_wal_seg_parse(de->d_name, &v))
			continue;
		err = segs_add(w, v);
		if (err != DTX_OK)
			break;
	}
	closedir(d);
	if (err == DTX_OK && w->nsegs > 1)
		dtx_sort_u64(w->segs, w->nsegs);
	return err;
}

// Removes segs[i] from the list.
static void
segs_remove(stor_wal *w, size_t i)
{
	memmove(w->segs + i, w->segs + i + 1,
	    (w->nsegs - i - 1) * sizeof(uint64_t));
	w->nsegs--;
}

// A newest segment found with no record (cut to its header or within
// it) that must have held some: DTX_ECORRUPT, logged naming the file.
// held: the manifest's flag says it held durable records. A checkpoint
// at or past its first LSN proves it too (those records were synced into
// it before the checkpoint was written).
static dtx_err
newest_empty(stor_wal *w, const char *name, uint64_t first, bool held)
{
	if (held) {
		DTX_LOG(DTX_LOG_ERROR, "WALCORRUPT",
		    "%s/%s: holds no record, but the manifest records that it "
		    "held durable (acknowledged) records from LSN %" PRIu64
		    ": the file was cut; restore it or the data directory",
		    w->dir, name, first);
		return DTX_ECORRUPT;
	}
	if (w->ckpt_lsn >= first) {
		DTX_LOG(DTX_LOG_ERROR, "WALCORRUPT",
		    "%s/%s: holds no record, but the checkpoint at LSN %" PRIu64
		    " covers records from LSN %" PRIu64
		    " that were in it: the file was cut; restore it or the "
		    "data directory",
		    w->dir, name, w->ckpt_lsn, first);
		return DTX_ECORRUPT;
	}
	return DTX_OK;
}

// Checks the header of segment segs[i] (open as fd, size bytes). A last
// segment whose creation was cut short (no more than a header's bytes) is
// removed and *gone set, unless it held records (held, newest_empty);
// any other bad header is DTX_ECORRUPT.
static dtx_err
seg_header(stor_wal *w, int fd, size_t i, uint64_t size, const char *name,
    bool held, bool *gone)
{
	*gone = false;
	bool last = i + 1 == w->nsegs;
	uint8_t h[SEG_HDR];
	bool hdr_ok = size >= SEG_HDR && read_at(fd, h, SEG_HDR, 0) == DTX_OK &&
	    memcmp(h, SEG_MAGIC, 8) == 0 &&
	    dtx_get_le32(h + 24) == dtx_crc32c(0, h, 24) &&
	    dtx_get_le32(h + 28) == 0 && dtx_get_le64(h + 8) == w->segs[i];
	if (hdr_ok)
		return DTX_OK;
	if (last && size <= SEG_HDR) {
		dtx_err err = newest_empty(w, name, w->segs[i], held);
		if (err != DTX_OK)
			return err;
		// A segment whose creation was cut short: it holds no record.
		DTX_LOG(DTX_LOG_WARN, "WALTAIL",
		    "%s: removing unfinished segment %s", w->dir, name);
		if (unlinkat(w->dirfd, name, 0) != 0)
			return dtx_from_errno(errno);
		segs_remove(w, i);
		w->st.segments--;
		w->man_dirty = true;
		*gone = true;
		return DTX_OK;
	}
	DTX_LOG(DTX_LOG_ERROR, "WALCORRUPT",
	    "%s: segment %s has a damaged header", w->dir, name);
	return DTX_ECORRUPT;
}

// The index of the segment that holds LSN checkpoint + 1 (the last one
// starting at or below it) into *i0, with *have set; *have false when
// there are no segments. DTX_ECORRUPT when every segment starts above it.
static dtx_err
start_segment(stor_wal *w, size_t *i0, bool *have)
{
	uint64_t start_lsn = w->ckpt_lsn + 1;
	*i0 = 0;
	*have = false;
	for (size_t i = 0; i < w->nsegs; i++) {
		if (w->segs[i] <= start_lsn) {
			*i0 = i;
			*have = true;
		}
	}
	if (w->nsegs > 0 && !*have) {
		DTX_LOG(DTX_LOG_ERROR, "WALCORRUPT",
		    "%s: no segment holds LSN %" PRIu64
		    " (first segment starts at %" PRIu64 ")",
		    w->dir, start_lsn, w->segs[0]);
		return DTX_ECORRUPT;
	}
	return DTX_OK;
}

// After the scan: continues the log at next_lsn, in the last segment when
// it is still open as seg_fd (synced first), else in a new one.
static dtx_err
resume(stor_wal *w)
{
	if (w->seg_fd >= 0 && w->next_lsn <= w->ckpt_lsn) {
		// The log ends below the checkpoint (its tail was lost); the
		// checkpoint holds that state, so continue in a new segment.
		DTX_LOG(DTX_LOG_WARN, "WALTAIL",
		    "%s: log ends at LSN %" PRIu64 " below checkpoint %" PRIu64
		    "; starting a new segment",
		    w->dir, w->next_lsn - 1, w->ckpt_lsn);
		close(w->seg_fd);
		w->seg_fd = -1;
	}
	if (w->next_lsn <= w->ckpt_lsn)
		w->next_lsn = w->ckpt_lsn + 1;
	dtx_err err = DTX_OK;
	if (w->seg_fd >= 0) {
		if (lseek(w->seg_fd, (off_t)w->seg_size, SEEK_SET) < 0)
			return dtx_from_errno(errno);
		// Records a killed process left unsynced in the page cache
		// were replayed: make them durable before building on them.
		err = do_sync(w, w->seg_fd);
		if (err != DTX_OK)
			return err;
		w->seg_synced = w->seg_size;
	} else {
		err = seg_create(w, w->next_lsn);
		if (err != DTX_OK)
			return err;
	}
	w->durable_lsn = w->next_lsn - 1;
	return DTX_OK;
}

// Checks the segments on disk against the manifest m (found: there is
// one); without one, adopts what is there (a log of an older version).
static dtx_err
check_segments(stor_wal *w, const stor__man *m, bool found)
{
	if (found)
		return stor__man_check_segs(
		    w->dirfd, w->dir, m, w->segs, &w->nsegs, &w->man_dirty);
	if (w->nsegs > 0 || w->man_has)
		DTX_LOG(DTX_LOG_WARN, "WALMANIFEST",
		    "%s: no %s; adopting the %zu segments and %s found on disk "
		    "(a log written before manifests)",
		    w->dir, STOR_WAL_MAN_NAME, w->nsegs,
		    w->man_has ? "the checkpoint" : "no checkpoint");
	return DTX_OK;
}

// After the scan of the newest segment: with no record in it, it must be
// one that never held any (newest_empty); with records, the manifest is
// to say so (rewritten at the end of open when it does not yet).
static dtx_err
newest_scanned(stor_wal *w, const char *name, bool has_recs, bool held)
{
	if (!has_recs)
		return newest_empty(w, name, w->seg_first, held);
	w->man_used = true;
	if (!held)
		w->man_dirty = true;
	return DTX_OK;
}

static dtx_err
recover(stor_wal *w, stor_wal_rec_fn on_rec, void *arg, const stor__man *m,
    bool found)
{
	// What the manifest says of its newest segment.
	bool held = found && m->newest_used;
	dtx_err err = list_segments(w);
	if (err == DTX_OK)
		err = check_segments(w, m, found);
	if (err != DTX_OK)
		return err;
	w->st.segments = w->nsegs;
	size_t i0;
	bool have_start;
	err = start_segment(w, &i0, &have_start);
	if (err != DTX_OK)
		return err;
	scan s = { .w = w, .on_rec = on_rec, .arg = arg };
	s.bcap = READ_CHUNK;
	s.buf = dtx_alloc(s.bcap);
	if (s.buf == NULL)
		return DTX_ENOMEM;
	s.expect = have_start ? w->segs[i0] : w->ckpt_lsn + 1;
	int fd = -1;
	for (size_t i = i0; i < w->nsegs; i++) {
		bool last = i + 1 == w->nsegs;
		char name[64];
		stor_wal_seg_name(name, sizeof(name), w->segs[i]);
		if (w->segs[i] != s.expect) {
			DTX_LOG(DTX_LOG_ERROR, "WALCORRUPT",
			    "%s: segment %s starts at LSN %" PRIu64
			    ", expected %" PRIu64,
			    w->dir, name, w->segs[i], s.expect);
			err = DTX_ECORRUPT;
			goto fail;
		}
		fd = openat(w->dirfd, name, O_RDWR | O_CLOEXEC);
		struct stat sb;
		if (fd < 0 || fstat(fd, &sb) != 0) {
			err = dtx_from_errno(errno);
			goto fail;
		}
		uint64_t size = (uint64_t)sb.st_size;
		bool gone;
		err = seg_header(w, fd, i, size, name, held, &gone);
		if (err != DTX_OK)
			goto fail;
		if (gone) {
			close(fd);
			fd = -1;
			break;
		}
		w->seg_first = w->segs[i];
		uint64_t torn, end;
		err = scan_segment(&s, fd, size, last, &torn, &end);
		if (err == DTX_OK && last)
			err = newest_scanned(
			    w, name, s.expect > w->segs[i], held);
		if (err != DTX_OK)
			goto fail;
		if (torn != UINT64_MAX) {
			DTX_LOG(DTX_LOG_WARN, "WALTAIL",
			    "%s: cutting torn or damaged tail of %s at offset "
			    "%" PRIu64 " (%" PRIu64 " bytes, LSN %" PRIu64 ")",
			    w->dir, name, torn, size - torn, s.expect);
			if (ftruncate(fd, (off_t)torn) != 0) {
				err = dtx_from_errno(errno);
				goto fail;
			}
			w->st.tail_truncated += size - torn;
			size = torn;
			end = torn;
		}
		if (last) {
			w->seg_fd = fd;
			w->seg_size = end;
			w->seg_zeroed = size;
		} else {
			close(fd);
		}
		fd = -1;
	}
	w->next_lsn = s.expect;
	err = resume(w);
fail:
	if (fd >= 0)
		close(fd);
	dtx_free(s.buf);
	return err;
}

// ---------------------------------------------------------------- flusher

// Keeps the current segment zero-filled at least 1 MiB past what the next
// n bytes need, so that most batches overwrite allocated blocks and their
// fdatasync need not log a new file size.
static dtx_err
prealloc(stor_wal *w, size_t n)
{
	if (!w->opts.preallocate || w->seg_size + n <= w->seg_zeroed)
		return DTX_OK;
	static const uint8_t zeros[65536];
	// Rotation follows once segment_bytes is passed: no need to go on.
	uint64_t want = w->seg_size + n + PREALLOC_STEP;
	if (want > w->opts.segment_bytes)
		want = w->opts.segment_bytes;
	if (want < w->seg_size + n)
		return DTX_OK;
	while (w->seg_zeroed < want) {
		size_t k = sizeof(zeros);
		if (k > want - w->seg_zeroed)
			k = (size_t)(want - w->seg_zeroed);
		ssize_t r = pwrite(w->seg_fd, zeros, k, (off_t)w->seg_zeroed);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return dtx_from_errno(errno);
		}
		w->seg_zeroed += (uint64_t)r;
	}
	return DTX_OK;
}

// Writes and syncs every pending record as one batch. Called with mu held,
// a non-empty batch buffer, no batch in flight and the WAL not failed;
// drops mu during the I/O and returns with it held. by_flusher tells
// whether the flusher thread (rather than a leading caller) runs it.
static void
flush_batch(stor_wal *w, bool by_flusher)
{
	DTX_ASSERT(w->len > 0 && !w->flushing);
	uint8_t *b = w->buf;
	size_t bcap = w->cap, n = w->len;
	uint64_t last = w->next_lsn - 1;
	uint64_t g = ++w->gen;
	w->flushing = true;
	w->inflight_last = last;
	w->buf = w->spare;
	w->cap = w->spare_cap;
	w->spare = NULL;
	w->spare_cap = 0;
	w->len = 0;
	pthread_mutex_unlock(&w->mu);

	dtx_err err = prealloc(w, n), rot = DTX_OK;
	if (err == DTX_OK)
		err = do_write(w, w->seg_fd, b, n);
	if (err == DTX_OK) {
		w->seg_size += n;
		err = do_sync(w, w->seg_fd);
	}
	// The first durable records of a segment: the manifest says so
	// before any of them is acknowledged (once per segment).
	if (err == DTX_OK)
		err = man_set_used(w, true);
	if (err == DTX_OK) {
		w->seg_synced = w->seg_size;
		if (w->on_durable != NULL)
			w->on_durable(w->durable_arg, last);
		if (w->seg_size >= w->opts.segment_bytes)
			rot = seg_create(w, last + 1);
	}
	if (err != DTX_OK || rot != DTX_OK) {
		DTX_LOG(DTX_LOG_ERROR, "WALFAIL",
		    "%s: %s up to LSN %" PRIu64
		    " failed (%s); the log takes no more writes",
		    w->dir, err != DTX_OK ? "batch" : "rotation after", last,
		    dtx_strerror(err != DTX_OK ? err : rot));
	}

	pthread_mutex_lock(&w->mu);
	w->spare = b;
	w->spare_cap = bcap;
	w->st.batches++;
	w->st.bytes += n;
	if (w->opts.sync == STOR_SYNC_FULL)
		w->st.syncs++;
	// A failed rotation after a good sync keeps this batch durable but
	// fails everything after it.
	if (err == DTX_OK)
		w->durable_lsn = last;
	w->flushing = false;
	if (err != DTX_OK || rot != DTX_OK) {
		if (w->fail == DTX_OK)
			w->fail = err != DTX_OK ? err : rot;
		w->len = 0;
		// Everyone waiting learns of the failure.
		w->nwait[0] = w->nwait[1] = 0;
		pthread_cond_broadcast(&w->batch_cv[0]);
		pthread_cond_broadcast(&w->batch_cv[1]);
		return;
	}
	w->nwait[g & 1] = 0;
	pthread_cond_broadcast(&w->batch_cv[g & 1]);
	if (w->len == 0) {
		if (w->closing && w->flusher_idle)
			pthread_cond_signal(&w->work_cv);
		return;
	}
	// Records were appended meanwhile. While threads wait for them the
	// flusher writes batch after batch without sleeping in between (a
	// leading caller returns to its work and wakes the flusher); records
	// nobody waits for get the flusher's grace period.
	if (!by_flusher && (w->flusher_idle || w->nwait[(g + 1) & 1] > 0))
		pthread_cond_signal(&w->work_cv);
}

// Waits on work_cv for at most ns. mu held.
static void
work_wait(stor_wal *w, uint64_t ns)
{
	struct timespec ts = dtx_time_after(CLOCK_MONOTONIC, ns);
	pthread_cond_timedwait(&w->work_cv, &w->mu, &ts);
}

// The flusher writes the records that nobody waits for (appended without
// force), once they have been pending for FLUSH_GRACE_NS without a
// forced append or a sync taking them along, and everything left when
// the WAL closes.
static void *
flusher_main(void *arg)
{
	stor_wal *w = arg;
	bool armed = false;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		if (w->crashing)
			break;
		if (w->fail != DTX_OK)
			w->len = 0;
		if (w->flushing || (w->len == 0 && !w->closing)) {
			armed = false;
			w->flusher_idle = true;
			pthread_cond_wait(&w->work_cv, &w->mu);
			w->flusher_idle = false;
			continue;
		}
		if (w->len == 0)
			break; // closing and everything written
		bool waited_for = w->nwait[(w->gen + 1) & 1] > 0;
		if (!armed && !w->closing && !waited_for) {
			armed = true;
			work_wait(w, FLUSH_GRACE_NS);
			continue;
		}
		armed = false;
		flush_batch(w, true);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

// ---------------------------------------------------------------- public

void
stor_wal_opts_init(stor_wal_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->sync = STOR_SYNC_FULL;
	o->segment_bytes = 64u << 20;
	o->preallocate = true;
}

// Checks the manifest against the files, loads the checkpoint, replays the
// segments and writes the manifest when open changed the files or there
// was none.
static dtx_err
open_files(
    stor_wal *w, stor_wal_ckpt_fn on_ckpt, stor_wal_rec_fn on_rec, void *arg)
{
	stor__man m;
	bool found;
	dtx_err err = stor__man_read(w->dirfd, w->dir, &m, &found);
	if (err != DTX_OK)
		return err;
	if (found)
		err = stor__man_check_ckpt(w->dirfd, w->dir, &w->opts, &m);
	if (err == DTX_OK) {
		(void)unlinkat(w->dirfd, CKPT_TMP, 0);
		err = load_checkpoint(w, on_ckpt, arg);
	}
	if (err == DTX_OK)
		err = recover(w, on_rec, arg, &m, found);
	if (err == DTX_OK && (!found || w->man_dirty))
		err = man_update(w);
	stor__man_fini(&m);
	return err;
}

dtx_err
stor__wal_open(const char *dir, const stor_wal_opts *opts,
    stor_wal_ckpt_fn on_ckpt, stor_wal_rec_fn on_rec, void *arg,
    stor__durable_fn on_durable, void *durable_arg, stor_wal **out)
{
	if (dir == NULL || out == NULL || dir[0] == '\0')
		return DTX_EINVAL;
	stor_wal *w = dtx_calloc(1, sizeof(*w));
	if (w == NULL)
		return DTX_ENOMEM;
	dtx_err err = DTX_OK;
	w->dirfd = -1;
	w->seg_fd = -1;
	if (opts != NULL)
		w->opts = *opts;
	else
		stor_wal_opts_init(&w->opts);
	if (w->opts.segment_bytes < 4096)
		w->opts.segment_bytes = 4096;
	w->on_durable = on_durable;
	w->durable_arg = durable_arg;
	pthread_mutex_init(&w->mu, NULL);
	pthread_mutex_init(&w->ckpt_mu, NULL);
	pthread_mutex_init(&w->man_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->work_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&w->batch_cv[0], NULL);
	pthread_cond_init(&w->batch_cv[1], NULL);
	w->dir = dtx_strdup(dir);
	if (w->dir == NULL) {
		err = DTX_ENOMEM;
		goto fail;
	}
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		err = dtx_from_errno(errno);
		DTX_LOG(DTX_LOG_ERROR, "WALOPEN", "%s: cannot create: %s", dir,
		    dtx_strerror(err));
		goto fail;
	}
	w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0) {
		err = dtx_from_errno(errno);
		DTX_LOG(DTX_LOG_ERROR, "WALOPEN", "%s: cannot open: %s", dir,
		    dtx_strerror(err));
		goto fail;
	}
	err = open_files(w, on_ckpt, on_rec, arg);
	if (err != DTX_OK)
		goto fail;
	if (pthread_create(&w->flusher, NULL, flusher_main, w) != 0) {
		err = DTX_ENOMEM;
		goto fail;
	}
	w->started = true;
	*out = w;
	return DTX_OK;
fail:
	stor_wal_close(w);
	return err;
}

dtx_err
stor_wal_open(const char *dir, const stor_wal_opts *opts,
    stor_wal_ckpt_fn on_ckpt, stor_wal_rec_fn on_rec, void *arg, stor_wal **out)
{
	return stor__wal_open(dir, opts, on_ckpt, on_rec, arg, NULL, NULL, out);
}

static void
wal_free(stor_wal *w)
{
	if (w->seg_fd >= 0)
		close(w->seg_fd);
	if (w->dirfd >= 0)
		close(w->dirfd);
	pthread_mutex_destroy(&w->mu);
	pthread_mutex_destroy(&w->ckpt_mu);
	pthread_mutex_destroy(&w->man_mu);
	pthread_cond_destroy(&w->work_cv);
	pthread_cond_destroy(&w->batch_cv[0]);
	pthread_cond_destroy(&w->batch_cv[1]);
	dtx_free(w->buf);
	dtx_free(w->spare);
	dtx_free(w->segs);
	dtx_free(w->dir);
	dtx_free(w);
}

void
stor_wal_close(stor_wal *w)
{
	if (w == NULL)
		return;
	if (w->started)
		dtx_threads_stop(
		    &w->mu, &w->work_cv, &w->closing, &w->flusher, 1);
	wal_free(w);
}

void
stor_wal_crash(stor_wal *w)
{
	if (w == NULL)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		w->crashing = true;
		w->len = 0;
		pthread_cond_broadcast(&w->work_cv);
		pthread_cond_broadcast(&w->batch_cv[0]);
		pthread_cond_broadcast(&w->batch_cv[1]);
		// A batch being written finishes first (its leader still uses
		// the segment); what it wrote but did not sync is cut below.
		while (w->flushing)
			pthread_cond_wait(&w->batch_cv[w->gen & 1], &w->mu);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->flusher, NULL);
	}
	if (w->seg_fd >= 0 && w->seg_size > w->seg_synced)
		(void)ftruncate(w->seg_fd, (off_t)w->seg_synced);
	wal_free(w);
}

// Grows the batch buffer to hold need more bytes. mu held.
static dtx_err
reserve(stor_wal *w, size_t need)
{
	if (w->cap - w->len >= need)
		return DTX_OK;
	size_t nc = w->cap ? w->cap : 64u << 10;
	while (nc - w->len < need)
		nc *= 2;
	uint8_t *p = dtx_realloc(w->buf, nc);
	if (p == NULL)
		return DTX_ENOMEM;
	w->buf = p;
	w->cap = nc;
	return DTX_OK;
}

// Returns once lsn is durable: leads a batch itself when nobody is
// writing one, else sleeps until the batch that covers lsn is done. mu
// held (dropped while leading or sleeping).
static dtx_err
wait_durable(stor_wal *w, uint64_t lsn)
{
	while (w->durable_lsn < lsn && w->fail == DTX_OK && !w->crashing) {
		if (!w->flushing) {
			// lsn is pending in the batch buffer.
			flush_batch(w, false);
			continue;
		}
		uint64_t g = lsn <= w->inflight_last ? w->gen : w->gen + 1;
		w->nwait[g & 1]++;
		pthread_cond_wait(&w->batch_cv[g & 1], &w->mu);
	}
	if (w->durable_lsn >= lsn)
		return DTX_OK;
	return w->crashing ? DTX_ECLOSED : w->fail;
}

dtx_err
stor_wal_append(stor_wal *w, uint8_t type, const void *payload, size_t len,
    bool force, uint64_t *lsn)
{
	if (w == NULL || type == 0 || len > STOR_WAL_MAX_RECORD ||
	    (payload == NULL && len > 0))
		return DTX_EINVAL;
	pthread_mutex_lock(&w->mu);
	dtx_err err = DTX_OK;
	if (w->fail != DTX_OK) {
		err = DTX_EFAILED;
		goto out;
	}
	if (w->closing || w->crashing) {
		err = DTX_ECLOSED;
		goto out;
	}
	err = reserve(w, REC_OVERHEAD + len);
	if (err != DTX_OK)
		goto out;
	uint64_t l = w->next_lsn++;
	stor_wal_rec_frame(w->buf + w->len, type, l, payload, len);
	bool was_empty = w->len == 0;
	w->len += REC_OVERHEAD + len;
	w->st.appends++;
	// A forced append writes its batch itself; otherwise the flusher
	// learns that records are pending (it keeps watching while they are).
	if (!force && was_empty && w->flusher_idle && !w->flushing)
		pthread_cond_signal(&w->work_cv);
	if (force)
		err = wait_durable(w, l);
	if (err == DTX_OK && lsn != NULL)
		*lsn = l;
out:
	pthread_mutex_unlock(&w->mu);
	return err;
}

dtx_err
stor_wal_sync(stor_wal *w, uint64_t lsn)
{
	if (w == NULL)
		return DTX_EINVAL;
	pthread_mutex_lock(&w->mu);
	dtx_err err = lsn >= w->next_lsn ? DTX_EINVAL : wait_durable(w, lsn);
	pthread_mutex_unlock(&w->mu);
	return err;
}

dtx_err
stor_wal_status(const stor_wal *w)
{
	stor_wal *m = (stor_wal *)w;
	pthread_mutex_lock(&m->mu);
	dtx_err err = m->fail == DTX_OK ? DTX_OK : DTX_EFAILED;
	pthread_mutex_unlock(&m->mu);
	return err;
}

uint64_t
stor_wal_last_lsn(stor_wal *w)
{
	pthread_mutex_lock(&w->mu);
	uint64_t l = w->next_lsn - 1;
	pthread_mutex_unlock(&w->mu);
	return l;
}

uint64_t
stor_wal_durable_lsn(stor_wal *w)
{
	pthread_mutex_lock(&w->mu);
	uint64_t l = w->durable_lsn;
	pthread_mutex_unlock(&w->mu);
	return l;
}

void
stor_wal_stats_get(stor_wal *w, stor_wal_stats *out)
{
	pthread_mutex_lock(&w->mu);
	*out = w->st;
	out->segments = w->nsegs;
	out->checkpoint_lsn = w->ckpt_lsn;
	pthread_mutex_unlock(&w->mu);
}

// Writes blob as the checkpoint for lsn into the temp file and syncs it;
// *crc gets its header CRC. The rename into place comes after the
// manifest names it.
static dtx_err
write_checkpoint(
    stor_wal *w, uint64_t lsn, const void *blob, size_t len, uint32_t *crc)
{
	uint8_t h[32] = { 0 };
	memcpy(h, CKPT_MAGIC, 8);
	dtx_put_le64(h + 8, lsn);
	dtx_put_le64(h + 16, len);
	*crc = dtx_crc32c(dtx_crc32c(0, h, 24), blob, len);
	dtx_put_le32(h + 24, *crc);
	int fd = openat(
	    w->dirfd, CKPT_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return dtx_from_errno(errno);
	dtx_err err = do_write(w, fd, h, sizeof(h));
	if (err == DTX_OK && len > 0)
		err = do_write(w, fd, blob, len);
	if (err == DTX_OK)
		err = do_sync(w, fd);
	close(fd);
	if (err != DTX_OK)
		(void)unlinkat(w->dirfd, CKPT_TMP, 0);
	return err;
}

// Names the checkpoint (lsn, crc) written to the temp file and the
// segments that stay in the manifest, then renames the checkpoint into
// place. *keep_from gets the first segment that stays: segment i holds
// LSNs [segs[i], segs[i+1]) and goes when all of them lie below limit;
// the current segment always stays. A failure after the manifest was
// written fails the WAL (open finishes the rename).
static dtx_err
publish_checkpoint(stor_wal *w, uint64_t lsn, uint32_t crc, uint64_t limit,
    uint64_t *keep_from)
{
	pthread_mutex_lock(&w->man_mu);
	pthread_mutex_lock(&w->mu);
	size_t k = 0;
	while (k + 1 < w->nsegs && w->segs[k + 1] <= limit)
		k++;
	*keep_from = w->nsegs > 0 ? w->segs[k] : 0;
	pthread_mutex_unlock(&w->mu);
	dtx_err err = man_save(w, *keep_from, true, lsn, crc);
	if (err != DTX_OK) {
		pthread_mutex_unlock(&w->man_mu);
		(void)unlinkat(w->dirfd, CKPT_TMP, 0);
		return err;
	}
	w->man_has = true;
	w->man_lsn = lsn;
	w->man_crc = crc;
	pthread_mutex_unlock(&w->man_mu);
	if (renameat(w->dirfd, CKPT_TMP, w->dirfd, CKPT_NAME) != 0)
		err = dtx_from_errno(errno);
	if (err == DTX_OK)
		err = do_sync(w, w->dirfd);
	if (err != DTX_OK) {
		pthread_mutex_lock(&w->mu);
		if (w->fail == DTX_OK)
			w->fail = err;
		pthread_mutex_unlock(&w->mu);
	}
	return err;
}

dtx_err
stor_wal_checkpoint(
    stor_wal *w, uint64_t lsn, uint64_t keep_lsn, const void *blob, size_t len)
{
	if (w == NULL || (blob == NULL && len > 0))
		return DTX_EINVAL;
	pthread_mutex_lock(&w->ckpt_mu);
	uint64_t limit = lsn + 1, keep_from = 0;
	if (keep_lsn > 0 && keep_lsn < limit)
		limit = keep_lsn;
	uint32_t crc = 0;
	dtx_err err = stor_wal_status(w);
	if (err == DTX_OK && lsn > stor_wal_last_lsn(w))
		err = DTX_EINVAL;
	if (err == DTX_OK && lsn > 0)
		err = stor_wal_sync(w, lsn);
	if (err == DTX_OK)
		err = write_checkpoint(w, lsn, blob, len, &crc);
	if (err == DTX_OK)
		err = publish_checkpoint(w, lsn, crc, limit, &keep_from);
	if (err != DTX_OK) {
		DTX_LOG(DTX_LOG_ERROR, "CKPTFAIL",
		    "%s: checkpoint at LSN %" PRIu64 " failed: %s", w->dir, lsn,
		    dtx_strerror(err));
		goto out;
	}
	// The manifest no longer names the segments below keep_from: remove
	// them (a crash first leaves them to open, which removes them).
	for (;;) {
		pthread_mutex_lock(&w->mu);
		w->ckpt_lsn = lsn;
		uint64_t victim = 0;
		if (w->nsegs >= 2 && w->segs[0] < keep_from) {
			victim = w->segs[0];
			segs_remove(w, 0);
		}
		pthread_mutex_unlock(&w->mu);
		if (victim == 0)
			break;
		char name[64];
		stor_wal_seg_name(name, sizeof(name), victim);
		if (unlinkat(w->dirfd, name, 0) != 0 && errno != ENOENT) {
			DTX_LOG(DTX_LOG_WARN, "WALTRUNC",
			    "%s: cannot remove %s: %s", w->dir, name,
			    strerror(errno));
		}
	}
out:
	pthread_mutex_unlock(&w->ckpt_mu);
	return err;
}
