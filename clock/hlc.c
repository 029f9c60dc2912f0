// SPDX-License-Identifier: MIT
//
// The hybrid logical clock of Kulkarni et al. 2014, with a rejection of
// remote timestamps too far ahead of physical time (headers and witnessed
// commit timestamps alike) and a durable upper bound that keeps timestamps
// increasing across restarts and is itself checked against the clock.

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"

#define BOUND_MAGIC "DTXHLCB1"
#define BOUND_SIZE 20
// What an operator can do about a bound file that cannot be used.
#define BOUND_FIX                                                              \
	"; if this machine's clock is right, remove the file to start a "      \
	"fresh clock"

struct clk_hlc {
	pthread_mutex_t mu;
	clk_source *src; // borrowed
	uint64_t max_offset_ms; // 0: no check
	char *bound_path; // NULL: no persisted bound
	char *tmp_path; // bound_path + ".tmp"
	char *dir_path; // directory holding bound_path
	uint64_t l; // the clock's state (l, c)
	uint32_t c;
	clk_ts last; // last timestamp issued
	clk_hlc_counters stats; // stats.bound: l of the persisted bound

	// The bound writer thread: it persists bounds while events go on,
	// so an event waits only if its l would pass the persisted bound.
	pthread_cond_t cv; // bound, want or werr changed
	pthread_t writer;
	bool writer_started;
	bool stop;
	uint64_t want; // bound the writer should persist next
	dtx_err werr; // the writer's last failure (DTX_OK: none)
};

// Reads the bound file into *bound. A missing file is bound 0.
static dtx_err
bound_read(const char *path, uint64_t *bound)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			*bound = 0;
			return DTX_OK;
		}
		dtx_err err = dtx_from_errno(errno);
		DTX_LOG(DTX_LOG_ERROR, "CLK_BOUND_OPEN", "%s: %s", path,
		    strerror(errno));
		return err;
	}
	// One byte more than the format so that a longer file is noticed.
	unsigned char buf[BOUND_SIZE + 1];
	size_t got = 0;
	for (;;) {
		ssize_t r = read(fd, buf + got, sizeof(buf) - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			dtx_err err = dtx_from_errno(errno);
			DTX_LOG(DTX_LOG_ERROR, "CLK_BOUND_READ", "%s: %s", path,
			    strerror(errno));
			close(fd);
			return err;
		}
		if (r == 0 || (got += (size_t)r) == sizeof(buf))
			break;
	}
	close(fd);
	if (got != BOUND_SIZE) {
		DTX_LOG(DTX_LOG_ERROR, "CLK_BOUND_CORRUPT",
		    "%s: HLC bound file is %s, expected %d bytes" BOUND_FIX,
		    path, got > BOUND_SIZE ? "too long" : "too short",
		    BOUND_SIZE);
		return DTX_ECORRUPT;
	}
	if (memcmp(buf, BOUND_MAGIC, 8) != 0) {
		DTX_LOG(DTX_LOG_ERROR, "CLK_BOUND_CORRUPT",
		    "%s: not an HLC bound file (bad magic)" BOUND_FIX, path);
		return DTX_ECORRUPT;
	}
	if (dtx_crc32c(0, buf, 16) != dtx_get_le32(buf + 16)) {
		DTX_LOG(DTX_LOG_ERROR, "CLK_BOUND_CORRUPT",
		    "%s: HLC bound file fails its CRC check" BOUND_FIX, path);
		return DTX_ECORRUPT;
	}
	uint64_t b = dtx_get_le64(buf + 8);
	if (b > CLK_L_MAX) {
		DTX_LOG(DTX_LOG_ERROR, "CLK_BOUND_CORRUPT",
		    "%s: HLC bound %llu is above the 48-bit limit" BOUND_FIX,
		    path, (unsigned long long)b);
		return DTX_ECORRUPT;
	}
	*bound = b;
	return DTX_OK;
}

static dtx_err
write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return dtx_from_errno(errno);
		p += w;
		n -= (size_t)w;
	}
	return DTX_OK;
}

// Durably replaces the bound file with bound: tmp file, fsync, rename,
// fsync of the directory. Called by the writer thread without mu.
static dtx_err
bound_write(clk_hlc *h, uint64_t bound)
{
	unsigned char buf[BOUND_SIZE];
	memcpy(buf, BOUND_MAGIC, 8);
	dtx_put_le64(buf + 8, bound);
	dtx_put_le32(buf + 16, dtx_crc32c(0, buf, 16));

	const char *what = "open";
	dtx_err err;
	int fd =
	    open(h->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		goto fail_errno;
	what = "write";
	if ((err = write_all(fd, buf, sizeof(buf))) != DTX_OK) {
		close(fd);
		goto fail;
	}
	what = "fsync";
	if (fsync(fd) != 0) {
		err = dtx_from_errno(errno);
		close(fd);
		goto fail;
	}
	what = "close";
	if (close(fd) != 0)
		goto fail_errno;
	dtx_crashpoint("clk.bound.before_rename");
	what = "rename";
	if (rename(h->tmp_path, h->bound_path) != 0)
		goto fail_errno;
	what = "fsync dir";
	int dfd = open(h->dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		goto fail_errno;
	if (fsync(dfd) != 0) {
		err = dtx_from_errno(errno);
		close(dfd);
		goto fail;
	}
	close(dfd);
	return DTX_OK;

fail_errno:
	err = dtx_from_errno(errno);
fail:
	// Every event asks for the bound again while it fails (out of file
	// descriptors, say): one line a second is enough.
	DTX_LOG_RL(DTX_LOG_ERROR, "CLK_BOUND_WRITE", 0, "%s: %s failed: %s",
	    h->bound_path, what, dtx_strerror(err));
	return err;
}

static void *
writer_main(void *arg)
{
	clk_hlc *h = arg;
	pthread_mutex_lock(&h->mu);
	while (!h->stop) {
		if (h->want <= h->stats.bound) {
			pthread_cond_wait(&h->cv, &h->mu);
			continue;
		}
		uint64_t b = h->want;
		pthread_mutex_unlock(&h->mu);
		dtx_err err = bound_write(h, b);
		pthread_mutex_lock(&h->mu);
		if (err == DTX_OK) {
			if (b > h->stats.bound)
				h->stats.bound = b;
			h->stats.bound_writes++;
		} else {
			// Waiters get the error; the next event asks again.
			h->stats.bound_errors++;
			h->werr = err;
			h->want = h->stats.bound;
		}
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

// Makes sure l is covered by the persisted bound before it is issued.
// Once l is within half a window of the bound, the writer thread is asked
// to move it on, so that events rarely wait for its fsyncs. Called with mu
// held; may wait on cv.
static dtx_err
bound_cover(clk_hlc *h, uint64_t l)
{
	if (h->bound_path == NULL)
		return DTX_OK;
	uint64_t target = l + CLK_HLC_BOUND_WINDOW_MS;
	if (target > CLK_L_MAX)
		target = CLK_L_MAX;
	if (l + CLK_HLC_BOUND_WINDOW_MS / 2 > h->stats.bound &&
	    h->want < target && l <= h->stats.bound) {
		h->want = target;
		pthread_cond_broadcast(&h->cv);
	}
	if (l <= h->stats.bound)
		return DTX_OK;
	// The wait releases mu, so other events may move the clock on
	// meanwhile: DTX_EAGAIN tells the caller to compute its candidate
	// (l, c) again from the clock's new state.
	while (l > h->stats.bound) {
		if (h->want < target) {
			h->want = target;
			h->werr = DTX_OK;
			pthread_cond_broadcast(&h->cv);
		}
		pthread_cond_wait(&h->cv, &h->mu);
		if (l > h->stats.bound && h->werr != DTX_OK)
			return h->werr;
	}
	return DTX_EAGAIN;
}

// Applies a candidate (l, c) computed by a rule: handles overflow of c,
// the 48-bit limit and the bound, then commits it. Called with mu held.
static dtx_err
commit(clk_hlc *h, uint64_t l, uint64_t c, uint64_t pt, clk_ts *out)
{
	if (c > CLK_LOGICAL_MAX) {
		// Out of logical values in this millisecond: move l on by one
		// instead. Still above everything issued or received.
		l++;
		c = 0;
		h->stats.overflows++;
	}
	if (l > CLK_L_MAX)
		return DTX_ERANGE;
	dtx_err err = bound_cover(h, l);
	if (err != DTX_OK)
		return err;
	h->l = l;
	h->c = (uint32_t)c;
	if (l > pt && l - pt > h->stats.max_drift_ms)
		h->stats.max_drift_ms = l - pt;
	h->last = clk_ts_make(l, (uint32_t)c);
	*out = h->last;
	return DTX_OK;
}

// A bound read at open must be one this machine's clock could have
// produced: at most CLK_HLC_BOUND_AHEAD_MS(max_offset) ahead of physical
// time now (clock.h says why), and below the reserved top of the range.
// Anything else is a clock poisoned before (a timestamp from a message
// that was not checked) or this clock set far back, and is refused with
// the fix rather than adopted: a node that started there would stay ahead
// of every peer, who refuse its messages, for as long as it is ahead.
static dtx_err
bound_check(const clk_hlc *h, uint64_t bound, uint64_t pt)
{
	uint64_t limit = CLK_HLC_BOUND_AHEAD_MS(h->max_offset_ms);
	if (bound > CLK_L_MAX - CLK_HLC_TOP_MS) {
		DTX_LOG(DTX_LOG_ERROR, "CLK_BOUND_AHEAD",
		    "clock bound file %s holds l=%llu, in the reserved top of "
		    "the HLC range" BOUND_FIX,
		    h->bound_path, (unsigned long long)bound);
		return DTX_ERANGE;
	}
	if (bound <= pt || bound - pt <= limit)
		return DTX_OK;
	DTX_LOG(DTX_LOG_ERROR, "CLK_BOUND_AHEAD",
	    "clock bound file %s holds l=%llu, %llu s ahead of this "
	    "machine's clock, more than the %llu s it can be after a restart "
	    "(3 x max offset + %d s); either the clock was set back or the "
	    "bound was poisoned; if this machine's clock is right, remove %s "
	    "to start a fresh clock",
	    h->bound_path, (unsigned long long)bound,
	    (unsigned long long)((bound - pt) / 1000),
	    (unsigned long long)(limit / 1000), CLK_HLC_BOUND_SLACK_MS / 1000,
	    h->bound_path);
	return DTX_ECLOCK;
}

dtx_err
clk_hlc_open(clk_hlc **out, clk_source *src, uint64_t max_offset_ms,
    const char *bound_path)
{
	dtx_err err = DTX_ENOMEM;
	clk_hlc *h = dtx_calloc(1, sizeof(*h));
	if (h == NULL)
		return DTX_ENOMEM;
	if (pthread_mutex_init(&h->mu, NULL) != 0) {
		dtx_free(h);
		return DTX_ENOMEM;
	}
	if (pthread_cond_init(&h->cv, NULL) != 0) {
		pthread_mutex_destroy(&h->mu);
		dtx_free(h);
		return DTX_ENOMEM;
	}
	h->src = src;
	h->max_offset_ms = max_offset_ms;
	if (bound_path != NULL) {
		size_t len = strlen(bound_path);
		if (len == 0) {
			err = DTX_EINVAL;
			goto fail;
		}
		h->bound_path = dtx_strdup(bound_path);
		h->tmp_path = dtx_alloc(len + 5);
		h->dir_path = dtx_strdup(bound_path);
		if (h->bound_path == NULL || h->tmp_path == NULL ||
		    h->dir_path == NULL)
			goto fail;
		memcpy(h->tmp_path, bound_path, len);
		memcpy(h->tmp_path + len, ".tmp", 5);
		char *slash = strrchr(h->dir_path, '/');
		if (slash == NULL)
			strcpy(h->dir_path, ".");
		else if (slash == h->dir_path)
			slash[1] = '\0';
		else
			*slash = '\0';
		uint64_t bound = 0;
		if ((err = bound_read(bound_path, &bound)) != DTX_OK)
			goto fail;
		h->stats.bound = bound;
		if (bound > 0) {
			// Every earlier timestamp had l <= bound: start
			// above all of them. The first one issued will be at
			// least (bound + 1, 1), and it moves the bound on.
			uint64_t pt = clk_source_now_ms(src);
			if ((err = bound_check(h, bound, pt)) != DTX_OK)
				goto fail;
			// After an ordinary restart the bound is at most a
			// window or two ahead of physical time: wait it out
			// rather than start ahead of every peer (which would
			// refuse our messages past their max_offset). A clock
			// set back further is not waited for.
			if (!clk_source_is_manual(src) && bound >= pt &&
			    bound - pt <= 2 * CLK_HLC_BOUND_WINDOW_MS)
				dtx_sleep_ms(bound - pt + 1);
			h->l = bound + 1;
			h->c = 0;
		}
		if (pthread_create(&h->writer, NULL, writer_main, h) != 0) {
			err = DTX_ENOMEM;
			goto fail;
		}
		h->writer_started = true;
	}
	*out = h;
	return DTX_OK;

fail:
	clk_hlc_close(h);
	return err;
}

void
clk_hlc_close(clk_hlc *h)
{
	if (h == NULL)
		return;
	if (h->writer_started)
		dtx_threads_stop(&h->mu, &h->cv, &h->stop, &h->writer, 1);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	dtx_free(h->bound_path);
	dtx_free(h->tmp_path);
	dtx_free(h->dir_path);
	dtx_free(h);
}

dtx_err
clk_hlc_now(clk_hlc *h, clk_ts *out)
{
	dtx_err err;
	pthread_mutex_lock(&h->mu);
	do {
		uint64_t pt = clk_source_now_ms(h->src);
		uint64_t l, c;
		if (pt > h->l) {
			l = pt;
			c = 0;
		} else {
			l = h->l;
			c = (uint64_t)h->c + 1;
		}
		err = commit(h, l, c, pt, out);
	} while (err == DTX_EAGAIN);
	pthread_mutex_unlock(&h->mu);
	return err;
}

// Refuses a remote l that would move the clock too far: more than
// max_offset ahead of physical time (DTX_ECLOCK), or into the reserved top
// of the range (DTX_ERANGE). Counts and logs the refusal (rate-limited: a
// flood of them is one line a second). what names the kind of timestamp;
// kind is the rate limiter's key. Called with mu held.
static dtx_err
remote_check(clk_hlc *h, uint64_t lm, uint64_t pt, const char *what, int kind)
{
	dtx_err err = DTX_OK;
	if (h->max_offset_ms != 0 && lm > pt && lm - pt > h->max_offset_ms)
		err = DTX_ECLOCK;
	else if (lm > CLK_L_MAX - CLK_HLC_TOP_MS)
		err = DTX_ERANGE;
	if (err == DTX_OK)
		return DTX_OK;
	h->stats.rejected++;
	if (kind == 1)
		h->stats.witness_rejected++;
	if (err == DTX_ECLOCK)
		DTX_LOG_RL(DTX_LOG_WARN, "CLK_REJECT", (uint64_t)kind,
		    "%s l=%llu is %llu ms ahead of physical time (limit %llu "
		    "ms)",
		    what, (unsigned long long)lm, (unsigned long long)(lm - pt),
		    (unsigned long long)h->max_offset_ms);
	else
		DTX_LOG_RL(DTX_LOG_WARN, "CLK_REJECT", (uint64_t)kind,
		    "%s l=%llu is in the reserved top %llu ms of the HLC range",
		    what, (unsigned long long)lm,
		    (unsigned long long)CLK_HLC_TOP_MS);
	return err;
}

// The receive rule, for a header's timestamp (kind 0) or a witnessed one
// (kind 1): both are checked, and a refused one changes nothing.
static dtx_err
receive(clk_hlc *h, clk_ts remote, int kind, clk_ts *out)
{
	uint64_t lm = clk_ts_l(remote);
	uint64_t cm = clk_ts_c(remote);
	dtx_err err;
	pthread_mutex_lock(&h->mu);
again:;
	uint64_t pt = clk_source_now_ms(h->src);
	err = remote_check(
	    h, lm, pt, kind == 0 ? "remote HLC" : "witnessed timestamp", kind);
	if (err != DTX_OK) {
		pthread_mutex_unlock(&h->mu);
		return err;
	}
	uint64_t l = h->l;
	if (lm > l)
		l = lm;
	if (pt > l)
		l = pt;
	uint64_t c;
	if (l == h->l && l == lm)
		c = (h->c > cm ? h->c : cm) + 1;
	else if (l == h->l)
		c = (uint64_t)h->c + 1;
	else if (l == lm)
		c = cm + 1;
	else
		c = 0;
	err = commit(h, l, c, pt, out);
	if (err == DTX_EAGAIN)
		goto again;
	pthread_mutex_unlock(&h->mu);
	return err;
}

dtx_err
clk_hlc_update(clk_hlc *h, clk_ts remote, clk_ts *out)
{
	return receive(h, remote, 0, out);
}

dtx_err
clk_hlc_witness(clk_hlc *h, clk_ts ts, clk_ts *out)
{
	return receive(h, ts, 1, out);
}

clk_ts
clk_hlc_peek(clk_hlc *h)
{
	pthread_mutex_lock(&h->mu);
	uint64_t pt = clk_source_now_ms(h->src);
	clk_ts ts = pt > h->l ? clk_ts_make(pt, 0) : clk_ts_make(h->l, h->c);
	pthread_mutex_unlock(&h->mu);
	return ts;
}

clk_ts
clk_hlc_last(clk_hlc *h)
{
	pthread_mutex_lock(&h->mu);
	clk_ts ts = h->last;
	pthread_mutex_unlock(&h->mu);
	return ts;
}

clk_source *
clk_hlc_source(clk_hlc *h)
{
	return h->src;
}

void
clk_hlc_stats(clk_hlc *h, clk_hlc_counters *out)
{
	pthread_mutex_lock(&h->mu);
	*out = h->stats;
	pthread_mutex_unlock(&h->mu);
}
