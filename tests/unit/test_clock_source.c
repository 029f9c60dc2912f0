// SPDX-License-Identifier: MIT
//
// The clock source: offset and rate arithmetic on a manual source, time
// staying continuous across rate changes, settings from the environment,
// refused settings, and readers racing a writer that changes the rate.

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "clock.h"

static void
test_manual_offset_rate(void **state)
{
	(void)state;
	clk_source *s;
	assert_int_equal(clk_source_new_manual(&s, 1000), DTX_OK);
	assert_true(clk_source_is_manual(s));
	assert_int_equal(clk_source_now_ms(s), 1000);
	assert_int_equal(clk_source_advance(s, 5), DTX_OK);
	assert_int_equal(clk_source_now_ms(s), 1005);

	// A rate change alone never moves the time.
	assert_int_equal(clk_source_set(s, 0, 2.0), DTX_OK);
	assert_int_equal(clk_source_now_ms(s), 1005);
	assert_int_equal(clk_source_advance(s, 10), DTX_OK);
	assert_int_equal(clk_source_now_ms(s), 1025);

	// An offset change is a jump by exactly the difference.
	assert_int_equal(clk_source_set(s, 100, 2.0), DTX_OK);
	assert_int_equal(clk_source_now_ms(s), 1125);
	assert_int_equal(clk_source_set(s, 40, 0.5), DTX_OK);
	assert_int_equal(clk_source_now_ms(s), 1065);
	assert_int_equal(clk_source_advance(s, 10), DTX_OK);
	assert_int_equal(clk_source_now_ms(s), 1070);
	int64_t off;
	double rate;
	clk_source_get(s, &off, &rate);
	assert_int_equal(off, 40);
	assert_true(rate == 0.5);

	// Fractions of a millisecond add up across steps.
	assert_int_equal(clk_source_set(s, 40, 0.25), DTX_OK);
	for (int i = 0; i < 8; i++)
		assert_int_equal(clk_source_advance(s, 1), DTX_OK);
	assert_int_equal(clk_source_now_ms(s), 1072);

	// A bump backwards; rate 0 stops the clock.
	assert_int_equal(clk_source_set(s, -1000, 0.0), DTX_OK);
	assert_int_equal(clk_source_now_ms(s), 32);
	assert_int_equal(clk_source_advance(s, 500), DTX_OK);
	assert_int_equal(clk_source_now_ms(s), 32);

	// Reset: back on the base time (1000 + 5 + 10 + 10 + 8 + 500).
	clk_source_reset(s);
	assert_int_equal(clk_source_now_ms(s), 1533);
	clk_source_get(s, &off, &rate);
	assert_int_equal(off, 0);
	assert_true(rate == 1.0);

	// Time below zero reads as zero; the base cannot go below zero.
	assert_int_equal(clk_source_set(s, -5000, 1.0), DTX_OK);
	assert_int_equal(clk_source_now_ms(s), 0);
	assert_int_equal(clk_source_advance(s, -1534), DTX_EINVAL);
	assert_int_equal(clk_source_advance(s, -1533), DTX_OK);
	assert_int_equal(clk_source_advance(s, INT64_MAX), DTX_EINVAL);
	assert_int_equal(clk_source_advance(s, INT64_MIN), DTX_EINVAL);
	clk_source_free(s);
	clk_source_free(NULL);
}

static void
test_bad_settings(void **state)
{
	(void)state;
	clk_source *s = NULL;
	assert_int_equal(clk_source_new(&s, 0, -1.0), DTX_EINVAL);
	assert_int_equal(clk_source_new(&s, 0, NAN), DTX_EINVAL);
	assert_int_equal(
	    clk_source_new(&s, 0, CLK_SOURCE_RATE_MAX * 2), DTX_EINVAL);
	assert_int_equal(
	    clk_source_new(&s, CLK_SOURCE_OFFSET_MAX_MS + 1, 1.0), DTX_EINVAL);
	assert_null(s);
	assert_int_equal(clk_source_new_manual(&s, CLK_L_MAX + 1), DTX_EINVAL);
	assert_int_equal(clk_source_new_manual(&s, 50), DTX_OK);
	assert_int_equal(clk_source_set(s, 7, INFINITY), DTX_EINVAL);
	assert_int_equal(clk_source_set(s, INT64_MIN, 1.0), DTX_EINVAL);
	int64_t off;
	double rate;
	clk_source_get(s, &off, &rate);
	assert_int_equal(off, 0);
	assert_true(rate == 1.0);
	assert_int_equal(clk_source_now_ms(s), 50);
	// Extreme but valid settings saturate instead of overflowing.
	assert_int_equal(
	    clk_source_set(s, CLK_SOURCE_OFFSET_MAX_MS, CLK_SOURCE_RATE_MAX),
	    DTX_OK);
	assert_int_equal(
	    clk_source_advance(s, (int64_t)CLK_L_MAX - 50), DTX_OK);
	assert_int_equal(clk_source_now_ms(s), CLK_L_MAX);
	clk_source_free(s);

	dtx_alloc_fail_after(0);
	assert_int_equal(clk_source_new(&s, 0, 1.0), DTX_ENOMEM);
	assert_int_equal(clk_source_new_manual(&s, 0), DTX_ENOMEM);
	dtx_alloc_fail_after(-1);
}

static void
test_real_source(void **state)
{
	(void)state;
	clk_source *s;
	assert_int_equal(clk_source_new(&s, 5000, 1.0), DTX_OK);
	assert_false(clk_source_is_manual(s));
	assert_int_equal(clk_source_advance(s, 1), DTX_EINVAL);
	uint64_t wall = dtx_wall_ns() / 1000000;
	uint64_t pt = clk_source_now_ms(s);
	assert_true(pt >= wall + 4999 && pt <= wall + 5100);

	// Rate 10: continuous at the change, then ten times as fast.
	uint64_t a = clk_source_now_ms(s);
	assert_int_equal(clk_source_set(s, 5000, 10.0), DTX_OK);
	uint64_t b = clk_source_now_ms(s);
	assert_true(b >= a && b - a < 100);
	uint64_t m0 = dtx_mono_ns();
	uint64_t p0 = clk_source_now_ms(s);
	while (dtx_mono_ns() - m0 < 30 * 1000000ull)
		;
	uint64_t p1 = clk_source_now_ms(s);
	uint64_t el_ms = (dtx_mono_ns() - m0) / 1000000;
	assert_true(p1 - p0 >= 10 * 30 - 2);
	assert_true(p1 - p0 <= 10 * (el_ms + 20));
	clk_source_free(s);
}

static void
test_env(void **state)
{
	(void)state;
	clk_source *s;
	unsetenv("DTX_CLOCK_OFFSET_MS");
	unsetenv("DTX_CLOCK_RATE");
	assert_int_equal(clk_source_new_env(&s), DTX_OK);
	int64_t off;
	double rate;
	clk_source_get(s, &off, &rate);
	assert_int_equal(off, 0);
	assert_true(rate == 1.0);
	clk_source_free(s);

	setenv("DTX_CLOCK_OFFSET_MS", "-3000", 1);
	setenv("DTX_CLOCK_RATE", "1.5", 1);
	assert_int_equal(clk_source_new_env(&s), DTX_OK);
	clk_source_get(s, &off, &rate);
	assert_int_equal(off, -3000);
	assert_true(rate == 1.5);
	uint64_t wall = dtx_wall_ns() / 1000000;
	uint64_t pt = clk_source_now_ms(s);
	assert_true(pt + 3000 >= wall - 1 && pt + 3000 <= wall + 100);
	clk_source_free(s);

	static const char *bad_off[] = { "abc", "12x", "", "1.5",
		"99999999999999999999", "-1000000000001" };
	static const char *bad_rate[] = { "fast", "-1", "nan", "1e400", "1001",
		"1.0x" };
	setenv("DTX_CLOCK_RATE", "1", 1);
	for (size_t i = 0; i < sizeof(bad_off) / sizeof(bad_off[0]); i++) {
		setenv("DTX_CLOCK_OFFSET_MS", bad_off[i], 1);
		s = NULL;
		dtx_err err = clk_source_new_env(&s);
		// An empty variable means "not set".
		if (bad_off[i][0] == '\0') {
			assert_int_equal(err, DTX_OK);
			clk_source_free(s);
		} else {
			assert_int_equal(err, DTX_EINVAL);
			assert_null(s);
		}
	}
	setenv("DTX_CLOCK_OFFSET_MS", "0", 1);
	for (size_t i = 0; i < sizeof(bad_rate) / sizeof(bad_rate[0]); i++) {
		setenv("DTX_CLOCK_RATE", bad_rate[i], 1);
		s = NULL;
		assert_int_equal(clk_source_new_env(&s), DTX_EINVAL);
		assert_null(s);
	}
	unsetenv("DTX_CLOCK_OFFSET_MS");
	unsetenv("DTX_CLOCK_RATE");
}

// Readers see a manual source that only moves forward while a writer keeps
// changing its rate (offset unchanged): time must never go back.
typedef struct race {
	clk_source *s;
	atomic_bool stop;
	atomic_int backwards;
} race;

static void *
reader(void *arg)
{
	race *r = arg;
	uint64_t last = 0;
	while (!atomic_load(&r->stop)) {
		uint64_t t = clk_source_now_ms(r->s);
		if (t < last)
			atomic_fetch_add(&r->backwards, 1);
		last = t;
	}
	return NULL;
}

static void
test_rate_race(void **state)
{
	(void)state;
	race r = { 0 };
	assert_int_equal(clk_source_new_manual(&r.s, 1000000), DTX_OK);
	atomic_init(&r.stop, false);
	atomic_init(&r.backwards, 0);
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, &r), 0);
	uint64_t rng = 3;
	for (int i = 0; i < 100000; i++) {
		double rate = 0.5 + (double)dtx_rand_below(&rng, 100) / 50.0;
		assert_int_equal(clk_source_set(r.s, 0, rate), DTX_OK);
		assert_int_equal(clk_source_advance(r.s, 1), DTX_OK);
	}
	atomic_store(&r.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&r.backwards), 0);
	assert_true(clk_source_now_ms(r.s) > 1000000 + 50000);
	clk_source_free(r.s);
}

// clk_source_limit holds readings within max of what the creation
// settings give, whatever offset or rate is set; clk_source_restore puts
// the source back on those settings, drift undone; no limit (0) lets
// both through as before.
static void
test_limit_restore(void **state)
{
	(void)state;
	const uint64_t T = 1700000000000ull;
	clk_source *s;
	assert_int_equal(clk_source_new_manual(&s, T), DTX_OK);
	clk_source_limit(s, 1001);
	// A bump within the limit moves it all the way.
	assert_int_equal(clk_source_set(s, 1001, 1.0), DTX_OK);
	assert_int_equal(clk_source_now_ms(s), T + 1001);
	// Beyond it, it reads the limit, both ways.
	assert_int_equal(clk_source_set(s, 5000, 1.0), DTX_OK);
	assert_int_equal(clk_source_now_ms(s), T + 1001);
	assert_int_equal(clk_source_set(s, -5000, 1.0), DTX_OK);
	assert_int_equal(clk_source_now_ms(s), T - 1001);
	// A rate drifts up to the limit and no further.
	assert_int_equal(clk_source_set(s, 0, 3.0), DTX_OK);
	assert_int_equal(clk_source_advance(s, 200), DTX_OK);
	assert_int_equal(clk_source_now_ms(s), T + 600);
	assert_int_equal(clk_source_advance(s, 10000), DTX_OK);
	assert_int_equal(clk_source_now_ms(s), T + 10200 + 1001);
	// Restored: the base time again, offset 0, rate 1.
	clk_source_restore(s);
	assert_int_equal(clk_source_now_ms(s), T + 10200);
	int64_t off;
	double rate;
	clk_source_get(s, &off, &rate);
	assert_int_equal(off, 0);
	assert_true(rate == 1.0);
	assert_int_equal(clk_source_advance(s, 100), DTX_OK);
	assert_int_equal(clk_source_now_ms(s), T + 10300);
	// Without a limit a bump goes through whole.
	clk_source_limit(s, 0);
	assert_int_equal(clk_source_set(s, 5000, 1.0), DTX_OK);
	assert_int_equal(clk_source_now_ms(s), T + 15300);
	clk_source_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manual_offset_rate),
		cmocka_unit_test(test_bad_settings),
		cmocka_unit_test(test_real_source),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_rate_race),
		cmocka_unit_test(test_limit_restore),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
