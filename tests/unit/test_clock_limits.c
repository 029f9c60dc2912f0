// SPDX-License-Identifier: MIT
//
// What no message can do to a clock (DESIGN rule 23): move it more than
// max_offset past physical time, through a header (clk_hlc_update) or a
// commit timestamp (clk_hlc_witness, clk_node_witness), or into the top of
// the range; what a persisted bound may hold at open (ok, ahead, absurd,
// corrupt, each reported with the fix); that refusals are logged at most
// once a second; and that clocks converge back after a clock fault.

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "clock.h"
#include "test_util.h"

#define T0 UINT64_C(1700000000000) // a physical time in ms
#define MO 500 // max offset in ms

static char tmpdir[128];

static int
setup_dir(void **state)
{
	(void)state;
	st_tmpdir(tmpdir, sizeof(tmpdir), "clock-limits");
	return 0;
}

static int
teardown_dir(void **state)
{
	(void)state;
	return dtx_rmtree(tmpdir) == DTX_OK ? 0 : -1;
}

static clk_hlc_counters
counters(clk_hlc *h)
{
	clk_hlc_counters st;
	clk_hlc_stats(h, &st);
	return st;
}

// ------------------------------------------------------------ stderr

static int saved_fd = -1;
static char cap_path[192];

// Points stderr at a fresh file until capture_end.
static void
capture_begin(void)
{
	snprintf(cap_path, sizeof(cap_path), "%s/stderr", tmpdir);
	saved_fd = st_stderr_to(cap_path);
	assert_true(saved_fd >= 0);
}

// Restores stderr and returns what was written (free with free()).
static char *
capture_end(void)
{
	char *text = st_stderr_back(saved_fd, cap_path);
	saved_fd = -1;
	assert_non_null(text);
	unlink(cap_path);
	return text;
}

// ------------------------------------------------------------ witness

// A commit timestamp within max_offset of physical time is witnessed (the
// clock covers it, so later local timestamps sort above the version it
// stamps); one past it is refused and changes nothing.
static void
test_witness_max_offset(void **state)
{
	(void)state;
	clk_source *s;
	clk_hlc *h;
	clk_ts out = 0, ts;
	assert_int_equal(clk_source_new_manual(&s, T0), DTX_OK);
	assert_int_equal(clk_hlc_open(&h, s, MO, NULL), DTX_OK);
	assert_int_equal(clk_hlc_now(h, &ts), DTX_OK);

	// Exactly at the limit: witnessed, and the next event is above it.
	assert_int_equal(
	    clk_hlc_witness(h, clk_ts_make(T0 + MO, 3), &out), DTX_OK);
	assert_int_equal(out, clk_ts_make(T0 + MO, 4));
	assert_int_equal(clk_hlc_now(h, &ts), DTX_OK);
	assert_true(ts > clk_ts_make(T0 + MO, 3));

	// One ms past it, ten years past it, the HLC maximum: refused,
	// counted, *out and the clock unchanged.
	clk_ts last = clk_hlc_last(h);
	clk_ts bad[] = { clk_ts_make(T0 + MO + 1, 0),
		clk_ts_make(T0 + UINT64_C(10) * 365 * 86400000, 0),
		clk_ts_make(CLK_L_MAX, 0),
		clk_ts_make(CLK_L_MAX, CLK_LOGICAL_MAX) };
	out = 12345;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(clk_hlc_witness(h, bad[i], &out), DTX_ECLOCK);
	assert_int_equal(out, 12345);
	assert_int_equal(clk_hlc_last(h), last);
	assert_int_equal(counters(h).rejected, 4);
	assert_int_equal(counters(h).witness_rejected, 4);
	assert_true(clk_ts_l(clk_hlc_peek(h)) <= T0 + MO);
	assert_true(counters(h).max_drift_ms <= MO);

	// The limit is against physical time: once pt moves on, a timestamp
	// refused before is witnessed (a coordinator retrying its COMMIT).
	assert_int_equal(clk_source_advance(s, 1), DTX_OK);
	assert_int_equal(
	    clk_hlc_witness(h, clk_ts_make(T0 + MO + 1, 0), &out), DTX_OK);
	assert_int_equal(clk_ts_l(out), T0 + MO + 1);
	clk_hlc_close(h);
	clk_source_free(s);
}

// The top of the range is out of reach of any message even with the
// max-offset check off: a clock there could issue nothing more, refuse
// every PREPARE and leave a bound no restart could pass.
static void
test_hlc_max_refused(void **state)
{
	(void)state;
	clk_source *s;
	clk_hlc *h;
	clk_ts out = 7, ts;
	assert_int_equal(clk_source_new_manual(&s, T0), DTX_OK);
	assert_int_equal(clk_hlc_open(&h, s, 0, NULL), DTX_OK);
	uint64_t top = CLK_L_MAX - CLK_HLC_TOP_MS;
	clk_ts bad[] = { clk_ts_make(CLK_L_MAX, 0),
		clk_ts_make(CLK_L_MAX, CLK_LOGICAL_MAX),
		clk_ts_make(top + 1, 0) };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(clk_hlc_update(h, bad[i], &out), DTX_ERANGE);
		assert_int_equal(clk_hlc_witness(h, bad[i], &out), DTX_ERANGE);
	}
	assert_int_equal(out, 7);
	assert_int_equal(clk_hlc_last(h), 0);
	assert_int_equal(counters(h).rejected, 6);
	assert_int_equal(counters(h).witness_rejected, 3);
	// The clock still works.
	assert_int_equal(clk_hlc_now(h, &ts), DTX_OK);
	assert_int_equal(ts, clk_ts_make(T0, 0));
	// Just below the reserved top is a timestamp like any other when
	// the max-offset check is off, and leaves room to go on.
	assert_int_equal(clk_hlc_witness(h, clk_ts_make(top, 0), &out), DTX_OK);
	assert_int_equal(clk_hlc_now(h, &ts), DTX_OK);
	assert_int_equal(ts, clk_ts_make(top, 2));
	clk_hlc_close(h);
	clk_source_free(s);
}

// The node clock's commit-timestamp path: within max_offset the HLC moves
// and our vector clock entry ticks; beyond it, neither clock changes.
static void
test_node_witness(void **state)
{
	(void)state;
	clk_source *s;
	clk_node *n;
	clk_vc before, after;
	assert_int_equal(clk_source_new_manual(&s, T0), DTX_OK);
	assert_int_equal(clk_node_open(&n, s, 1, 3, MO, NULL), DTX_OK);

	clk_node_vc(n, &before);
	assert_int_equal(clk_node_witness(n, clk_ts_make(T0 + 400, 0)), DTX_OK);
	assert_int_equal(clk_ts_l(clk_node_now(n)), T0 + 400);
	clk_node_vc(n, &after);
	assert_int_equal(after.c[1], before.c[1] + 1);

	clk_ts last = clk_hlc_last(clk_node_hlc(n));
	assert_int_equal(
	    clk_node_witness(n, clk_ts_make(T0 + 3600000, 0)), DTX_ECLOCK);
	assert_int_equal(
	    clk_node_witness(n, clk_ts_make(CLK_L_MAX, 0)), DTX_ECLOCK);
	assert_int_equal(clk_hlc_last(clk_node_hlc(n)), last);
	clk_node_vc(n, &before);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(counters(clk_node_hlc(n)).rejected, 2);
	clk_node_close(n);
	clk_source_free(s);
}

// A flood of refused timestamps is one CLK_REJECT line a second, with the
// count of the rest on the next line.
static void
test_reject_rate_limited(void **state)
{
	(void)state;
	clk_source *s;
	clk_hlc *h;
	clk_ts out;
	assert_int_equal(clk_source_new_manual(&s, T0), DTX_OK);
	assert_int_equal(clk_hlc_open(&h, s, MO, NULL), DTX_OK);
	dtx_log_init("clk", DTX_LOG_WARN);
	// The limiter is the process's: let the earlier tests' window pass.
	dtx_sleep_ms(1050);
	capture_begin();
	for (int i = 0; i < 1000; i++) {
		clk_hlc_update(
		    h, clk_ts_make(T0 + 10000 + (uint64_t)i, 0), &out);
		clk_hlc_witness(h, clk_ts_make(T0 + 10000, 0), &out);
	}
	dtx_sleep_ms(1050);
	clk_hlc_update(h, clk_ts_make(T0 + 20000, 0), &out);
	char *text = capture_end();
	assert_int_equal(counters(h).rejected, 2001);
	assert_int_equal(counters(h).witness_rejected, 1000);
	// One line for headers, one for witnesses, then the header's next.
	assert_int_equal(st_count(text, "CLK_REJECT"), 3);
	assert_int_equal(st_count(text, "witnessed timestamp"), 1);
	assert_int_equal(st_count(text, "suppressed=999"), 1);
	free(text);
	clk_hlc_close(h);
	clk_source_free(s);
}

// A bound that cannot be written (out of file descriptors, a missing
// directory) fails every event that needs it, each one counted, with one
// CLK_BOUND_WRITE line a second rather than one per event.
static void
test_bound_write_error_rate_limited(void **state)
{
	(void)state;
	char path[192];
	snprintf(path, sizeof(path), "%s/missing/hlc.bound", tmpdir);
	clk_source *s;
	clk_hlc *h;
	clk_ts ts;
	assert_int_equal(clk_source_new_manual(&s, T0), DTX_OK);
	assert_int_equal(clk_hlc_open(&h, s, MO, path), DTX_OK);
	dtx_log_init("clk", DTX_LOG_INFO);
	capture_begin();
	for (int i = 0; i < 50; i++)
		assert_int_equal(clk_hlc_now(h, &ts), DTX_ENOENT);
	char *text = capture_end();
	assert_int_equal(counters(h).bound_errors, 50);
	assert_int_equal(st_count(text, "CLK_BOUND_WRITE"), 1);
	free(text);
	clk_hlc_close(h);
	clk_source_free(s);
}

// ------------------------------------------------------------ bound file

// Writes a well-formed bound file holding bound.
static void
write_bound(const char *path, uint64_t bound)
{
	uint8_t b[20];
	memcpy(b, "DTXHLCB1", 8);
	dtx_put_le64(b + 8, bound);
	dtx_put_le32(b + 16, dtx_crc32c(0, b, 16));
	st_write_file(path, b, sizeof(b));
}

static void
test_bound_ok(void **state)
{
	(void)state;
	char path[192];
	snprintf(path, sizeof(path), "%s/ok.bound", tmpdir);
	clk_source *s;
	clk_hlc *h;
	clk_ts ts;
	assert_int_equal(clk_source_new_manual(&s, T0), DTX_OK);
	// Behind physical time, and ahead right up to the limit: both open,
	// and the first timestamp is above the bound.
	uint64_t limit = CLK_HLC_BOUND_AHEAD_MS(MO);
	assert_int_equal(limit, 3 * MO + 60000);
	uint64_t fine[] = { T0 - 5000, T0 + 1000, T0 + limit };
	for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
		write_bound(path, fine[i]);
		assert_int_equal(clk_hlc_open(&h, s, MO, path), DTX_OK);
		assert_int_equal(clk_hlc_now(h, &ts), DTX_OK);
		assert_true(clk_ts_l(ts) > fine[i] || clk_ts_l(ts) == T0);
		assert_true(clk_ts_l(ts) >= T0);
		clk_hlc_close(h);
	}
	// A clock that witnessed all it may (max_offset ahead) leaves a
	// bound any restart accepts: what a message can do to the bound is
	// bounded by what it can do to the clock.
	unlink(path);
	assert_int_equal(clk_hlc_open(&h, s, MO, path), DTX_OK);
	assert_int_equal(
	    clk_hlc_witness(h, clk_ts_make(T0 + MO, 0), &ts), DTX_OK);
	clk_hlc_counters st = counters(h);
	assert_true(st.bound <= T0 + MO + CLK_HLC_BOUND_WINDOW_MS);
	clk_hlc_close(h);
	assert_int_equal(clk_hlc_open(&h, s, MO, path), DTX_OK);
	clk_hlc_close(h);
	clk_source_free(s);
}

// A bound this machine's clock cannot have produced stops the open with
// DTX_ECLOCK (DTX_ERANGE in the reserved top), a line naming the file,
// how far ahead it is and the fix, and no clock: never adopted.
static void
test_bound_absurd(void **state)
{
	(void)state;
	char path[192];
	snprintf(path, sizeof(path), "%s/absurd.bound", tmpdir);
	clk_source *s;
	clk_hlc *h;
	assert_int_equal(clk_source_new_manual(&s, T0), DTX_OK);
	dtx_log_init("clk", DTX_LOG_INFO);
	uint64_t limit = CLK_HLC_BOUND_AHEAD_MS(MO);
	struct {
		uint64_t bound;
		dtx_err want;
	} bad[] = {
		{ T0 + limit + 1, DTX_ECLOCK },
		{ T0 + 3600000, DTX_ECLOCK }, // FAULT clock +1h, then restart
		{ T0 + UINT64_C(10) * 365 * 86400000, DTX_ECLOCK },
		{ CLK_L_MAX - CLK_HLC_TOP_MS + 1, DTX_ERANGE },
		{ CLK_L_MAX, DTX_ERANGE },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_bound(path, bad[i].bound);
		h = NULL;
		capture_begin();
		dtx_err err = clk_hlc_open(&h, s, MO, path);
		char *text = capture_end();
		assert_int_equal(err, bad[i].want);
		assert_null(h);
		assert_int_equal(st_count(text, "CLK_BOUND_AHEAD"), 1);
		assert_non_null(strstr(text, path));
		assert_non_null(strstr(text, "remove"));
		if (bad[i].want == DTX_ECLOCK) {
			char ahead[64];
			snprintf(ahead, sizeof(ahead), "%llu s ahead",
			    (unsigned long long)((bad[i].bound - T0) / 1000));
			assert_non_null(strstr(text, ahead));
		}
		free(text);
	}
	// The same file opens once the machine's clock has caught up (it
	// was this clock set back, after all), or once it is removed.
	write_bound(path, T0 + 3600000);
	assert_int_equal(clk_source_advance(s, 3600000 - 1000), DTX_OK);
	assert_int_equal(clk_hlc_open(&h, s, MO, path), DTX_OK);
	clk_hlc_close(h);
	write_bound(path, T0 + UINT64_C(10) * 365 * 86400000);
	assert_int_equal(clk_hlc_open(&h, s, MO, path), DTX_ECLOCK);
	unlink(path);
	assert_int_equal(clk_hlc_open(&h, s, MO, path), DTX_OK);
	clk_hlc_close(h);
	clk_source_free(s);
}

// A corrupt bound is reported with the path and the fix.
static void
test_bound_corrupt_message(void **state)
{
	(void)state;
	char path[192];
	snprintf(path, sizeof(path), "%s/corrupt.bound", tmpdir);
	clk_source *s;
	clk_hlc *h = NULL;
	assert_int_equal(clk_source_new_manual(&s, T0), DTX_OK);
	dtx_log_init("clk", DTX_LOG_INFO);
	st_write_file(path, "DTXHLCB1 garbage, not a bound", 29);
	capture_begin();
	dtx_err err = clk_hlc_open(&h, s, MO, path);
	char *text = capture_end();
	assert_int_equal(err, DTX_ECORRUPT);
	assert_null(h);
	assert_non_null(strstr(text, path));
	assert_non_null(strstr(text, "remove the file"));
	free(text);
	clk_source_free(s);
}

// ------------------------------------------------------------ convergence

#define NODES 3

typedef struct cluster {
	clk_source *src[NODES];
	clk_node *node[NODES];
} cluster;

static void
cluster_open(cluster *c)
{
	for (uint32_t i = 0; i < NODES; i++) {
		assert_int_equal(clk_source_new_manual(&c->src[i], T0), DTX_OK);
		assert_int_equal(
		    clk_node_open(&c->node[i], c->src[i], i, NODES, MO, NULL),
		    DTX_OK);
	}
}

static void
cluster_close(cluster *c)
{
	for (uint32_t i = 0; i < NODES; i++) {
		clk_node_close(c->node[i]);
		clk_source_free(c->src[i]);
	}
}

// How far node i's HLC is ahead of its physical time (0 when behind).
static uint64_t
ahead(cluster *c, uint32_t i)
{
	uint64_t l = clk_ts_l(clk_node_now(c->node[i]));
	uint64_t pt = clk_source_now_ms(c->src[i]);
	return l > pt ? l - pt : 0;
}

// ms of true time: every node's clock moves on by one ms, and each node
// sends a message to every other and commits at its own send timestamp
// (as a coordinator would), all of it checked as the daemons check it.
static void
run(cluster *c, uint32_t ms, uint64_t *max_ahead_others, uint32_t faulty)
{
	for (uint32_t t = 0; t < ms; t++) {
		for (uint32_t i = 0; i < NODES; i++)
			assert_int_equal(
			    clk_source_advance(c->src[i], 1), DTX_OK);
		for (uint32_t i = 0; i < NODES; i++) {
			clk_ts ts;
			clk_vc vc;
			assert_int_equal(
			    clk_node_send(c->node[i], &ts, &vc), DTX_OK);
			for (uint32_t j = 0; j < NODES; j++) {
				if (j == i)
					continue;
				dtx_err e1 =
				    clk_node_recv(c->node[j], ts, &vc, NULL);
				dtx_err e2 = clk_node_witness(c->node[j], ts);
				assert_true(e1 == DTX_OK || e1 == DTX_ECLOCK);
				assert_true(e2 == DTX_OK || e2 == DTX_ECLOCK);
			}
		}
		for (uint32_t i = 0; i < NODES; i++)
			if (i != faulty && ahead(c, i) > *max_ahead_others)
				*max_ahead_others = ahead(c, i);
	}
}

// A clock fault on node 0 of d ms, held for a while and reset: the other
// nodes never run more than max_offset ahead of their physical time, and
// node 0 is back within max_offset d - max_offset ms after the reset (its
// HLC never goes back: see clock.h). With the nemesis's largest bump,
// 2 x max_offset + 1, that is max_offset + 1 ms.
static void
converge(int64_t d)
{
	cluster c;
	uint64_t max_others = 0;
	cluster_open(&c);
	run(&c, 50, &max_others, 0);
	assert_int_equal(clk_source_set(c.src[0], d, 1.0), DTX_OK);
	run(&c, 300, &max_others, 0);
	clk_source_reset(c.src[0]);
	run(&c, 1, &max_others, 0);
	if (d > MO)
		assert_true(ahead(&c, 0) > MO);
	run(&c, (uint32_t)(d > MO ? d - MO : 0), &max_others, 0);
	assert_true(ahead(&c, 0) <= MO);
	assert_true(max_others <= MO);
	for (uint32_t i = 1; i < NODES; i++)
		assert_true(ahead(&c, i) <= MO);
	cluster_close(&c);
}

static void
test_converge_after_fault(void **state)
{
	(void)state;
	dtx_log_init("clk", DTX_LOG_ERROR);
	converge(2 * MO + 1); // the nemesis's largest bump
	converge(MO / 2);
	converge(-(2 * MO + 1)); // set back: nothing to converge
	converge(5000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_witness_max_offset),
		cmocka_unit_test(test_hlc_max_refused),
		cmocka_unit_test(test_node_witness),
		cmocka_unit_test(test_reject_rate_limited),
		cmocka_unit_test(test_bound_write_error_rate_limited),
		cmocka_unit_test(test_bound_ok),
		cmocka_unit_test(test_bound_absurd),
		cmocka_unit_test(test_bound_corrupt_message),
		cmocka_unit_test(test_converge_after_fault),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
