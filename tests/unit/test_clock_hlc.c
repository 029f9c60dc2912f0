// SPDX-License-Identifier: MIT
//
// The hybrid logical clock: the send and receive cases of Kulkarni et al.
// 2014, monotonicity with the physical clock set back, rejection of remote
// timestamps too far ahead, overflow of the logical counter, the persisted
// bound across restarts and its corruption, concurrency, and the node
// clock that pairs the HLC with a vector clock.

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "clock.h"
#include "test_util.h"

#define T0 1700000000000ull // a physical time in ms

static clk_ts
now(clk_hlc *h)
{
	clk_ts ts = 0;
	assert_int_equal(clk_hlc_now(h, &ts), DTX_OK);
	return ts;
}

static clk_ts
update(clk_hlc *h, uint64_t l, uint32_t c)
{
	clk_ts ts = 0;
	assert_int_equal(clk_hlc_update(h, clk_ts_make(l, c), &ts), DTX_OK);
	return ts;
}

static void
assert_ts(clk_ts ts, uint64_t l, uint32_t c)
{
	assert_int_equal(clk_ts_l(ts), l);
	assert_int_equal(clk_ts_c(ts), c);
}

// A clock over a manual source at T0, with max_offset and an optional
// bound file.
static clk_hlc *
open_manual(clk_source **s, uint64_t max_offset, const char *bound_path)
{
	clk_hlc *h;
	assert_int_equal(clk_source_new_manual(s, T0), DTX_OK);
	assert_int_equal(clk_hlc_open(&h, *s, max_offset, bound_path), DTX_OK);
	return h;
}

static void
close_clock(clk_hlc *h, clk_source *s)
{
	clk_hlc_close(h);
	clk_source_free(s);
}

static clk_hlc_counters
counters(clk_hlc *h)
{
	clk_hlc_counters st;
	clk_hlc_stats(h, &st);
	return st;
}

// Takes n timestamps, the manual source moving on one ms before every
// every-th of them (never when every is 0), and checks that each is above
// the one before, the first above floor, and, when in_bound, that none is
// above the persisted bound. Returns the last.
static clk_ts
events(clk_hlc *h, clk_source *s, uint32_t n, uint32_t every, clk_ts floor,
    bool in_bound)
{
	clk_ts prev = floor;
	for (uint32_t i = 0; i < n; i++) {
		if (every != 0 && i % every == 0)
			assert_int_equal(clk_source_advance(s, 1), DTX_OK);
		clk_ts ts = now(h);
		assert_true(ts > prev);
		prev = ts;
		if (in_bound)
			assert_true(clk_ts_l(ts) <= counters(h).bound);
	}
	return prev;
}

static void
test_ts_layout(void **state)
{
	(void)state;
	clk_ts a = clk_ts_make(5, 0xFFFF), b = clk_ts_make(6, 0);
	assert_true(a < b);
	assert_ts(a, 5, 0xFFFF);
	assert_true(clk_ts_make(CLK_L_MAX, 0) > clk_ts_make(CLK_L_MAX - 1, 7));
}

// Send/local events: l' = max(l, pt); c = c+1 when l is unchanged, else 0.
static void
test_send_cases(void **state)
{
	(void)state;
	clk_source *s;
	clk_hlc *h = open_manual(&s, 0, NULL);
	assert_int_equal(clk_hlc_last(h), 0);
	assert_ts(now(h), T0, 0); // pt > l: l = pt, c = 0
	assert_ts(now(h), T0, 1); // pt == l: c + 1
	assert_ts(now(h), T0, 2);
	assert_int_equal(clk_source_advance(s, 3), DTX_OK);
	assert_ts(clk_hlc_peek(h), T0 + 3, 0); // a peek is not an event
	assert_ts(now(h), T0 + 3, 0);
	assert_ts(clk_hlc_last(h), T0 + 3, 0);
	// l ahead of pt (after a receive): l stays, c counts.
	assert_ts(update(h, T0 + 50, 4), T0 + 50, 5);
	assert_ts(now(h), T0 + 50, 6);
	assert_ts(clk_hlc_peek(h), T0 + 50, 6);
	assert_int_equal(clk_source_advance(s, 47), DTX_OK);
	assert_ts(now(h), T0 + 50, 7); // pt == l
	assert_int_equal(clk_source_advance(s, 1), DTX_OK);
	assert_ts(now(h), T0 + 51, 0);
	assert_true(clk_hlc_source(h) == s);
	clk_hlc_close(h);
	clk_hlc_close(NULL);
	clk_source_free(s);
}

// Receive: l' = max(l, l_m, pt) and the four cases for c.
static void
test_receive_cases(void **state)
{
	(void)state;
	clk_source *s;
	clk_hlc *h = open_manual(&s, 0, NULL);
	assert_ts(now(h), T0, 0);
	assert_ts(now(h), T0, 1); // state (T0, 1)

	// l' == l == l_m: c = max(c, c_m) + 1.
	assert_ts(update(h, T0, 7), T0, 8);
	assert_ts(update(h, T0, 2), T0, 9);
	// l' == l > l_m (remote behind): c = c + 1.
	assert_ts(update(h, T0 - 100, 60000), T0, 10);
	// l' == l_m > l (remote ahead): c = c_m + 1.
	assert_ts(update(h, T0 + 20, 3), T0 + 20, 4);
	// pt beyond both: l = pt, c = 0.
	assert_int_equal(clk_source_advance(s, 30), DTX_OK);
	assert_ts(update(h, T0 + 25, 9), T0 + 30, 0);
	// l_m == pt > l: the remote case applies (c_m + 1).
	assert_int_equal(clk_source_advance(s, 5), DTX_OK);
	assert_ts(update(h, T0 + 35, 2), T0 + 35, 3);
	// l == pt > l_m: c + 1.
	assert_ts(update(h, T0 + 1, 0), T0 + 35, 4);

	clk_hlc_counters st = counters(h);
	assert_int_equal(st.rejected, 0);
	assert_int_equal(st.overflows, 0);
	assert_int_equal(st.max_drift_ms, 20);
	close_clock(h, s);
}

// The physical clock set back by 10 s: timestamps keep increasing and l
// stays where it was until pt catches up.
static void
test_clock_set_back(void **state)
{
	(void)state;
	clk_source *s;
	clk_hlc *h = open_manual(&s, 0, NULL);
	clk_ts prev = now(h);
	assert_int_equal(clk_source_set(s, -10000, 1.0), DTX_OK);
	prev = events(h, s, 20000, 10, prev, false);
	// 2000 ms passed, 8000 to go: l has not moved, c counts events.
	assert_ts(prev, T0, 20000);
	assert_int_equal(clk_source_advance(s, 8001), DTX_OK);
	assert_ts(now(h), T0 + 1, 0);
	close_clock(h, s);
}

static void
test_max_offset(void **state)
{
	(void)state;
	clk_source *s;
	clk_hlc *h = open_manual(&s, 500, NULL);
	assert_ts(now(h), T0, 0);
	clk_ts out = 12345;
	// One ms past the limit: refused, counted, clock and *out unchanged.
	assert_int_equal(
	    clk_hlc_update(h, clk_ts_make(T0 + 501, 0), &out), DTX_ECLOCK);
	assert_int_equal(
	    clk_hlc_update(h, clk_ts_make(CLK_L_MAX, 0), &out), DTX_ECLOCK);
	assert_int_equal(out, 12345);
	clk_hlc_counters st = counters(h);
	assert_int_equal(st.rejected, 2);
	assert_ts(clk_hlc_last(h), T0, 0);
	assert_ts(now(h), T0, 1);
	// Exactly at the limit: accepted.
	assert_ts(update(h, T0 + 500, 0), T0 + 500, 1);
	// The limit is against physical time, not our l: pt moving on
	// lets a remote further ahead in.
	assert_int_equal(clk_source_advance(s, 100), DTX_OK);
	assert_ts(update(h, T0 + 600, 0), T0 + 600, 1);
	st = counters(h);
	assert_int_equal(st.rejected, 2);
	clk_hlc_close(h);

	// 0 disables the check.
	assert_int_equal(clk_hlc_open(&h, s, 0, NULL), DTX_OK);
	assert_ts(update(h, T0 + 100000000, 0), T0 + 100000000, 1);
	close_clock(h, s);
}

// c would pass CLK_LOGICAL_MAX: l advances by one ms and c restarts.
static void
test_overflow(void **state)
{
	(void)state;
	clk_source *s;
	clk_hlc *h = open_manual(&s, 0, NULL);
	clk_ts prev = events(h, s, CLK_LOGICAL_MAX, 0, now(h), false);
	assert_ts(prev, T0, CLK_LOGICAL_MAX);
	assert_ts(now(h), T0 + 1, 0);
	clk_hlc_counters st = counters(h);
	assert_int_equal(st.overflows, 1);
	// pt reaching the advanced l continues normally.
	assert_int_equal(clk_source_advance(s, 1), DTX_OK);
	assert_ts(now(h), T0 + 1, 1);
	// On receive: a remote at our l with c = MAX.
	assert_ts(update(h, T0 + 1, CLK_LOGICAL_MAX), T0 + 2, 0);
	// A remote ahead with c = MAX.
	assert_ts(update(h, T0 + 9, CLK_LOGICAL_MAX), T0 + 10, 0);
	st = counters(h);
	assert_int_equal(st.overflows, 3);
	clk_hlc_close(h);

	// At the very top of the range there is nowhere to go.
	assert_int_equal(clk_hlc_open(&h, s, 0, NULL), DTX_OK);
	clk_ts out = 1;
	assert_int_equal(
	    clk_hlc_update(h, clk_ts_make(CLK_L_MAX, CLK_LOGICAL_MAX), &out),
	    DTX_ERANGE);
	assert_int_equal(out, 1);
	assert_int_equal(clk_hlc_last(h), 0);
	close_clock(h, s);
}

// ---------------------------------------------------------------- bound

static char tmpdir[64];

static int
setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_clock_hlc.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown_dir(void **state)
{
	(void)state;
	return dtx_rmtree(tmpdir) == DTX_OK ? 0 : -1;
}

static void
path_in_dir(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

// An ordinary restart of a real clock: the persisted bound is up to a
// window ahead of physical time, and the reopened clock waits it out
// instead of starting ahead of its peers (who would refuse its messages).
static void
test_bound_restart_waits(void **state)
{
	(void)state;
	char path[128];
	path_in_dir(path, sizeof(path), "real.bound");
	clk_source *ahead, *real;
	clk_hlc *h;
	assert_int_equal(clk_source_new(&ahead, 300, 1.0), DTX_OK);
	assert_int_equal(clk_hlc_open(&h, ahead, 0, path), DTX_OK);
	clk_ts old = now(h);
	clk_hlc_close(h);
	clk_source_free(ahead);

	assert_int_equal(clk_source_new(&real, 0, 1.0), DTX_OK);
	uint64_t t0 = dtx_mono_ns();
	assert_int_equal(clk_hlc_open(&h, real, 0, path), DTX_OK);
	uint64_t waited_ms = (dtx_mono_ns() - t0) / 1000000u;
	clk_ts ts = now(h);
	uint64_t pt = clk_source_now_ms(real);
	// The bound was about 1300 ms ahead: open waited for it.
	assert_true(waited_ms >= 1200);
	assert_true(ts > old);
	// And the clock is not ahead of physical time.
	assert_true(clk_ts_l(ts) <= pt + 5);
	clk_hlc_close(h);
	clk_source_free(real);
}

static void
test_bound_restart(void **state)
{
	(void)state;
	char path[128];
	path_in_dir(path, sizeof(path), "hlc.bound");
	clk_source *s;
	clk_hlc *h = open_manual(&s, 0, path);
	clk_hlc_counters st = counters(h);
	assert_int_equal(st.bound, 0);
	// 5000 events over 2.5 s of physical time: l passes the bound a few
	// times, and no timestamp is issued above the persisted bound.
	clk_ts max_old = events(h, s, 5000, 2, 0, true);
	// One write per window of l at least (2.5 s of l, 1 s windows), and
	// the writer moves the bound on early, at half a window, so that
	// events seldom wait: at most one write per half window.
	st = counters(h);
	assert_true(st.bound_writes >= 3 && st.bound_writes <= 6);
	assert_int_equal(st.bound_errors, 0);
	clk_hlc_close(h);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, 20);

	// Restart with the physical clock 10 s behind: every new timestamp
	// is above every old one.
	assert_int_equal(clk_source_set(s, -10000, 1.0), DTX_OK);
	assert_int_equal(clk_hlc_open(&h, s, 0, path), DTX_OK);
	// Each one above the one before, the first above every old one.
	clk_ts prev = events(h, s, 5000, 2, max_old, false);
	clk_hlc_close(h);

	// And again, with a receive as the first event.
	assert_int_equal(clk_source_set(s, -20000, 1.0), DTX_OK);
	assert_int_equal(clk_hlc_open(&h, s, 0, path), DTX_OK);
	clk_ts ts;
	assert_int_equal(
	    clk_hlc_update(h, clk_ts_make(T0 - 30000, 0), &ts), DTX_OK);
	assert_true(ts > prev);
	close_clock(h, s);
}

static void
test_bound_corrupt(void **state)
{
	(void)state;
	char path[128];
	path_in_dir(path, sizeof(path), "corrupt.bound");
	clk_source *s;
	clk_hlc *h = open_manual(&s, 0, path);
	now(h);
	clk_hlc_close(h);
	unsigned char good[20];
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(good, 1, sizeof(good), f), sizeof(good));
	assert_int_equal(fgetc(f), EOF);
	fclose(f);
	assert_memory_equal(good, "DTXHLCB1", 8);

	// Every single-bit flip is caught (the CRC covers magic and bound).
	for (size_t i = 0; i < sizeof(good); i++) {
		for (int bit = 0; bit < 8; bit++) {
			unsigned char bad[20];
			memcpy(bad, good, sizeof(bad));
			bad[i] ^= (unsigned char)(1 << bit);
			st_write_file(path, bad, sizeof(bad));
			h = NULL;
			assert_int_equal(
			    clk_hlc_open(&h, s, 0, path), DTX_ECORRUPT);
			assert_null(h);
		}
	}
	// Every truncation, and a longer file.
	for (size_t n = 0; n < sizeof(good); n++) {
		st_write_file(path, good, n);
		assert_int_equal(clk_hlc_open(&h, s, 0, path), DTX_ECORRUPT);
	}
	unsigned char longer[21];
	memcpy(longer, good, 20);
	longer[20] = 0;
	st_write_file(path, longer, sizeof(longer));
	assert_int_equal(clk_hlc_open(&h, s, 0, path), DTX_ECORRUPT);
	// A bound above the 48-bit range with a valid CRC.
	unsigned char big[20];
	memcpy(big, "DTXHLCB1", 8);
	for (int i = 0; i < 8; i++)
		big[8 + i] = 0xff;
	uint32_t crc = dtx_crc32c(0, big, 16);
	for (int i = 0; i < 4; i++)
		big[16 + i] = (unsigned char)(crc >> (8 * i));
	st_write_file(path, big, sizeof(big));
	assert_int_equal(clk_hlc_open(&h, s, 0, path), DTX_ECORRUPT);

	// The good file opens again.
	st_write_file(path, good, sizeof(good));
	assert_int_equal(clk_hlc_open(&h, s, 0, path), DTX_OK);
	clk_hlc_close(h);
	// A directory where the file should be is an error, not a crash.
	assert_int_not_equal(clk_hlc_open(&h, s, 0, tmpdir), DTX_OK);
	assert_int_equal(clk_hlc_open(&h, s, 0, ""), DTX_EINVAL);
	clk_source_free(s);
}

// A bound that cannot be written fails the event and changes nothing.
static void
test_bound_write_error(void **state)
{
	(void)state;
	char path[160];
	path_in_dir(path, sizeof(path), "missing-dir/hlc.bound");
	clk_source *s;
	clk_hlc *h = open_manual(&s, 0, path);
	clk_ts ts = 99;
	assert_int_equal(clk_hlc_now(h, &ts), DTX_ENOENT);
	assert_int_equal(
	    clk_hlc_update(h, clk_ts_make(T0, 5), &ts), DTX_ENOENT);
	assert_int_equal(ts, 99);
	assert_int_equal(clk_hlc_last(h), 0);
	clk_hlc_counters st = counters(h);
	assert_int_equal(st.bound_errors, 2);
	assert_int_equal(st.bound_writes, 0);
	// Once the directory exists the clock works again.
	char dir[160];
	path_in_dir(dir, sizeof(dir), "missing-dir");
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_ts(now(h), T0, 0);
	close_clock(h, s);
}

static void
test_open_oom(void **state)
{
	(void)state;
	char path[128];
	path_in_dir(path, sizeof(path), "oom.bound");
	clk_source *s;
	assert_int_equal(clk_source_new_manual(&s, T0), DTX_OK);
	bool done = false;
	for (long n = 0; !done; n++) {
		clk_hlc *h = NULL;
		clk_node *nd = NULL;
		dtx_alloc_fail_after(n);
		dtx_err e1 = clk_hlc_open(&h, s, 0, path);
		dtx_alloc_fail_after(n);
		dtx_err e2 = clk_node_open(&nd, s, 0, 3, 0, path);
		dtx_alloc_fail_after(-1);
		assert_true(e1 == DTX_OK || e1 == DTX_ENOMEM);
		assert_true(e2 == DTX_OK || e2 == DTX_ENOMEM);
		if (e1 == DTX_OK)
			clk_hlc_close(h);
		else
			assert_null(h);
		if (e2 == DTX_OK)
			clk_node_close(nd);
		else
			assert_null(nd);
		done = e1 == DTX_OK && e2 == DTX_OK;
		assert_true(n < 20);
	}
	clk_source_free(s);
}

// ---------------------------------------------------------------- threads

#define THREADS 4
#define PER_THREAD 50000

typedef struct worker {
	clk_hlc *h;
	clk_ts *out;
	int errors;
} worker;

static void *
work(void *arg)
{
	worker *w = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		if (clk_hlc_now(w->h, &w->out[i]) != DTX_OK)
			w->errors++;
		// Mix in receives of our own older timestamps.
		if (i % 16 == 15) {
			clk_ts t;
			if (clk_hlc_update(w->h, w->out[i - 8], &t) != DTX_OK)
				w->errors++;
		}
	}
	return NULL;
}

static int
cmp_ts(const void *a, const void *b)
{
	clk_ts x = *(const clk_ts *)a, y = *(const clk_ts *)b;
	return x < y ? -1 : x > y;
}

static void
test_concurrent(void **state)
{
	(void)state;
	char path[128];
	path_in_dir(path, sizeof(path), "threads.bound");
	clk_source *s;
	clk_hlc *h;
	assert_int_equal(clk_source_new(&s, 0, 1.0), DTX_OK);
	assert_int_equal(clk_hlc_open(&h, s, 1000, path), DTX_OK);
	clk_ts *all = calloc(THREADS * PER_THREAD, sizeof(clk_ts));
	assert_non_null(all);
	worker w[THREADS];
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (worker) { .h = h, .out = all + i * PER_THREAD };
		assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].errors, 0);
		for (int k = 1; k < PER_THREAD; k++)
			assert_true(w[i].out[k] > w[i].out[k - 1]);
	}
	qsort(all, THREADS * PER_THREAD, sizeof(clk_ts), cmp_ts);
	for (int k = 1; k < THREADS * PER_THREAD; k++)
		assert_true(all[k] != all[k - 1]);
	free(all);
	close_clock(h, s);
}

// ---------------------------------------------------------------- node

static void
test_node(void **state)
{
	(void)state;
	clk_source *s;
	clk_node *a, *b;
	assert_int_equal(clk_source_new_manual(&s, T0), DTX_OK);
	assert_int_equal(clk_node_open(&a, s, 0, 0, 0, NULL), DTX_EINVAL);
	assert_int_equal(clk_node_open(&a, s, 3, 3, 0, NULL), DTX_EINVAL);
	assert_int_equal(
	    clk_node_open(&a, s, 0, CLK_VC_MAX + 1, 0, NULL), DTX_EINVAL);
	assert_int_equal(clk_node_open(&a, s, 0, 3, 100, NULL), DTX_OK);
	assert_int_equal(clk_node_open(&b, s, 2, 3, 100, NULL), DTX_OK);
	assert_int_equal(clk_node_self(b), 2);
	assert_int_equal(clk_node_size(b), 3);
	assert_true(clk_node_source(a) == s);

	clk_ts ts, rts;
	clk_vc vc, bvc;
	assert_int_equal(clk_node_local(a, &ts), DTX_OK);
	assert_int_equal(clk_node_send(a, &ts, &vc), DTX_OK);
	assert_ts(ts, T0, 1);
	assert_int_equal(vc.n, 3);
	assert_int_equal(vc.c[0], 2);
	assert_int_equal(clk_node_recv(b, ts, &vc, &rts), DTX_OK);
	assert_true(rts > ts);
	clk_node_vc(b, &bvc);
	assert_int_equal(bvc.c[0], 2);
	assert_int_equal(bvc.c[2], 1);
	assert_int_equal(clk_vc_compare(&vc, &bvc), CLK_VC_BEFORE);
	// A receive without a vector clock still counts as an event.
	assert_int_equal(clk_node_recv(b, ts, NULL, NULL), DTX_OK);
	clk_node_vc(b, &bvc);
	assert_int_equal(bvc.c[2], 2);
	assert_true(clk_node_now(b) > rts);

	// Too far ahead: both clocks untouched.
	clk_ts before_ts = clk_hlc_last(clk_node_hlc(b));
	clk_vc before_vc = bvc;
	clk_vc far = vc;
	far.c[1] = 1000;
	assert_int_equal(
	    clk_node_recv(b, clk_ts_make(T0 + 101, 0), &far, &rts), DTX_ECLOCK);
	assert_int_equal(clk_hlc_last(clk_node_hlc(b)), before_ts);
	clk_node_vc(b, &bvc);
	assert_memory_equal(&bvc, &before_vc, sizeof(bvc));
	clk_hlc_counters st = counters(clk_node_hlc(b));
	assert_int_equal(st.rejected, 1);
	// A vector clock larger than the cluster is refused up front.
	clk_vc big;
	assert_int_equal(clk_vc_init(&big, 4), DTX_OK);
	assert_int_equal(clk_node_recv(b, ts, &big, &rts), DTX_EINVAL);
	assert_int_equal(clk_hlc_last(clk_node_hlc(b)), before_ts);
	clk_node_vc(b, &bvc);
	assert_memory_equal(&bvc, &before_vc, sizeof(bvc));

	clk_node_close(a);
	clk_node_close(b);
	clk_node_close(NULL);
	clk_source_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ts_layout),
		cmocka_unit_test(test_send_cases),
		cmocka_unit_test(test_receive_cases),
		cmocka_unit_test(test_clock_set_back),
		cmocka_unit_test(test_max_offset),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_bound_restart),
		cmocka_unit_test(test_bound_restart_waits),
		cmocka_unit_test(test_bound_corrupt),
		cmocka_unit_test(test_bound_write_error),
		cmocka_unit_test(test_open_oom),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_node),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
