// SPDX-License-Identifier: MIT
//
// The rate limiter for repeated log lines: one line per interval for each
// (reason, key), the held-back count reported with the next line, a fixed
// table that survives a flood of distinct keys without losing counts,
// thread safety, and DTX_LOG_RL's lines on stderr with their suppressed
// counts.

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

#include "common.h"
#include "test_util.h"

#define SEC UINT64_C(1000000000)

static bool
pass(dtx_rl *rl, const char *reason, uint64_t key, uint64_t now, uint64_t *sup,
    uint64_t *oth)
{
	uint64_t s = 777, o = 777;
	bool p = dtx_rl_pass(rl, reason, key, now, &s, &o);
	if (!p) {
		// Nothing is written for a line held back.
		assert_int_equal(s, 777);
		assert_int_equal(o, 777);
	}
	if (sup != NULL)
		*sup = s;
	if (oth != NULL)
		*oth = o;
	return p;
}

static void
test_rl_window(void **state)
{
	(void)state;
	dtx_rl rl;
	uint64_t sup, oth;
	assert_int_equal(dtx_rl_init(&rl, SEC), DTX_OK);
	uint64_t t = 5 * SEC;
	// The first line passes with nothing held back.
	assert_true(pass(&rl, "CLK_REJECT", 1, t, &sup, &oth));
	assert_int_equal(sup, 0);
	assert_int_equal(oth, 0);
	// Within the second: held back, counted.
	for (int i = 0; i < 10; i++)
		assert_false(
		    pass(&rl, "CLK_REJECT", 1, t + SEC - 1, NULL, NULL));
	// Another key and another reason have their own windows.
	assert_true(pass(&rl, "CLK_REJECT", 2, t + 1, &sup, NULL));
	assert_int_equal(sup, 0);
	assert_true(pass(&rl, "COMMIT_UNKNOWN", 1, t + 1, &sup, NULL));
	assert_int_equal(sup, 0);
	// A second on: passes and reports the ten held back, then counts
	// start again from zero.
	assert_true(pass(&rl, "CLK_REJECT", 1, t + SEC, &sup, &oth));
	assert_int_equal(sup, 10);
	assert_int_equal(oth, 0);
	assert_false(pass(&rl, "CLK_REJECT", 1, t + SEC + 5, NULL, NULL));
	assert_true(pass(&rl, "CLK_REJECT", 1, t + 3 * SEC, &sup, NULL));
	assert_int_equal(sup, 1);
	// A time before the last line (cannot happen with a monotonic clock)
	// is held back, not let through.
	assert_false(pass(&rl, "CLK_REJECT", 1, t, NULL, NULL));
	// Reasons are compared on their first 31 bytes.
	assert_true(pass(
	    &rl, "A_VERY_LONG_REASON_THAT_GOES_ON_AND_ON", 3, t, NULL, NULL));
	assert_false(pass(
	    &rl, "A_VERY_LONG_REASON_THAT_GOES_ON_AND_ON", 3, t, NULL, NULL));
	assert_true(pass(&rl, NULL, 3, t, NULL, NULL));
	assert_false(pass(&rl, "", 3, t, NULL, NULL));
	dtx_rl_fini(&rl);
	dtx_rl_fini(NULL);
}

// More keys than slots: memory stays the table, every new key's first line
// passes, and the counts of keys pushed out are reported, not lost.
static void
test_rl_bounded(void **state)
{
	(void)state;
	dtx_rl rl;
	uint64_t sup, oth, total_oth = 0;
	assert_int_equal(dtx_rl_init(&rl, SEC), DTX_OK);
	uint64_t t = SEC;
	// Fill every slot, holding back 3 lines of each key.
	for (uint64_t k = 0; k < DTX_RL_SLOTS; k++) {
		assert_true(pass(&rl, "FLOOD", k, t + k, NULL, &oth));
		total_oth += oth;
		for (int i = 0; i < 3; i++)
			assert_false(pass(&rl, "FLOOD", k, t + k, NULL, NULL));
	}
	assert_int_equal(total_oth, 0);
	// Ten new keys push out the ten oldest: each new line reports the
	// three lines held back for the key it pushed out.
	for (uint64_t k = DTX_RL_SLOTS; k < DTX_RL_SLOTS + 10; k++) {
		assert_true(pass(&rl, "FLOOD", k, t + k, &sup, &oth));
		assert_int_equal(sup, 0);
		assert_int_equal(oth, 3);
		total_oth += oth;
	}
	assert_int_equal(total_oth, 30);
	// Key 0 was pushed out: its next line passes as a first one.
	assert_true(pass(&rl, "FLOOD", 0, t + 100, &sup, NULL));
	assert_int_equal(sup, 0);
	// The newest keys are still limited.
	assert_false(pass(&rl, "FLOOD", DTX_RL_SLOTS + 9, t + 200, NULL, NULL));
	dtx_rl_fini(&rl);
}

#define THREADS 4
#define PER_THREAD 20000

typedef struct rl_worker {
	dtx_rl *rl;
	uint64_t passed, reported;
} rl_worker;

static void *
rl_work(void *arg)
{
	rl_worker *w = arg;
	for (uint64_t i = 0; i < PER_THREAD; i++) {
		uint64_t sup, oth;
		// Ten windows over the run, shared by every thread.
		uint64_t now = (i * 10 / PER_THREAD) * SEC;
		if (dtx_rl_pass(w->rl, "SPRAY", 42, now, &sup, &oth)) {
			w->passed++;
			w->reported += sup + oth;
		}
	}
	return NULL;
}

// Threads hammering one key: at most one line per window passes, and every
// line held back is reported exactly once.
static void
test_rl_threads(void **state)
{
	(void)state;
	dtx_rl rl;
	assert_int_equal(dtx_rl_init(&rl, SEC), DTX_OK);
	rl_worker w[THREADS];
	for (int i = 0; i < THREADS; i++)
		w[i] = (rl_worker) { .rl = &rl };
	assert_true(st_run_threads(THREADS, rl_work, w, sizeof(w[0])));
	uint64_t passed = 0, reported = 0;
	for (int i = 0; i < THREADS; i++) {
		passed += w[i].passed;
		reported += w[i].reported;
	}
	assert_true(passed >= 1 && passed <= 10);
	// Whatever is still pending shows up with the next line.
	uint64_t sup, oth;
	assert_true(dtx_rl_pass(&rl, "SPRAY", 42, 100 * SEC, &sup, &oth));
	reported += sup + oth;
	assert_int_equal(passed + reported, THREADS * PER_THREAD);
	dtx_rl_fini(&rl);
}

// The lines DTX_LOG_RL writes to stderr (fd 2 pointed at a file).
static char *
capture(void (*fn)(void))
{
	char dir[128], path[160];
	st_tmpdir(dir, sizeof(dir), "log");
	snprintf(path, sizeof(path), "%s/stderr", dir);
	int saved = st_stderr_to(path);
	assert_true(saved >= 0);
	fn();
	char *text = st_stderr_back(saved, path);
	assert_non_null(text);
	assert_int_equal(dtx_rmtree(dir), DTX_OK);
	return text;
}

static void
spray(void)
{
	dtx_log_init("test", DTX_LOG_INFO);
	for (int i = 0; i < 500; i++)
		DTX_LOG_RL(DTX_LOG_WARN, "TEST_SPRAY", 7, "COMMIT tx=%d", i);
	DTX_LOG_RL(DTX_LOG_WARN, "TEST_SPRAY", 8, "from another peer");
	// Below the level: neither written nor counted.
	DTX_LOG_RL(DTX_LOG_DEBUG, "TEST_SPRAY", 7, "debug");
	dtx_sleep_ms(1100);
	DTX_LOG_RL(DTX_LOG_WARN, "TEST_SPRAY", 7, "COMMIT tx=%d", 500);
	DTX_LOG(DTX_LOG_WARN, "TEST_PLAIN", "not limited");
	DTX_LOG(DTX_LOG_WARN, "TEST_PLAIN", "not limited");
}

static void
test_log_rl(void **state)
{
	(void)state;
	char *text = capture(spray);
	// Three limited lines of 501 and both plain ones, one per line.
	assert_int_equal(st_count(text, "TEST_SPRAY"), 3);
	assert_int_equal(st_count(text, "TEST_PLAIN"), 2);
	assert_int_equal(st_count(text, "\n"), 5);
	assert_non_null(strstr(text,
	    " level=warn node=test msg=TEST_SPRAY text=\"COMMIT tx=0\"\n"));
	assert_non_null(
	    strstr(text, "msg=TEST_SPRAY text=\"from another peer\"\n"));
	// The line after the second reports the 499 held back.
	assert_non_null(
	    strstr(text, "text=\"COMMIT tx=500\" suppressed=499\n"));
	assert_null(strstr(text, "debug"));
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rl_window),
		cmocka_unit_test(test_rl_bounded),
		cmocka_unit_test(test_rl_threads),
		cmocka_unit_test(test_log_rl),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
