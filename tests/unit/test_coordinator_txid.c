// SPDX-License-Identifier: MIT
//
// The coordinator's transaction ids (coord__txid_draw): never a reserved
// id, distinct over many draws, not ordered, no wall clock in their top
// bits (the old ids were ms << 16 | counter), evenly spread, and two
// processes (two coordinators, or one before and after a restart) draw
// no common id.

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "coordinator_int.h"

#define N 200000
#define DAY_MS UINT64_C(86400000)

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void
draw(uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(coord__txid_draw(&ids[i]), DTX_OK);
}

static void
test_draws(void **state)
{
	(void)state;
	uint64_t *ids = calloc(N, sizeof(*ids));
	assert_non_null(ids);
	draw(ids, N);
	uint64_t now = dtx_wall_ns() / 1000000u;
	size_t ups = 0, clocked = 0, top[256] = { 0 };
	for (size_t i = 0; i < N; i++) {
		assert_true(ids[i] != 0 && ids[i] != UINT64_MAX);
		if (i > 0 && ids[i] > ids[i - 1])
			ups++;
		uint64_t hi = ids[i] >> 16;
		if (hi + DAY_MS > now && hi < now + DAY_MS)
			clocked++;
		top[ids[i] >> 56]++;
	}
	// In issue order a random id rises over the previous one half the
	// time (an ordered one every time): 0.5 +- 0.01 is 9 sigma.
	assert_true(ups > N / 2 - N / 100 && ups < N / 2 + N / 100);
	// A random id's top 48 bits fall within a day of the wall clock's ms
	// with odds 2^-20 each: 0.2 expected in N draws.
	assert_true(clocked <= 3);
	// The top byte is even: 781 expected per value, 600..980 is 6.5
	// sigma (a clock's top byte would be one value throughout).
	for (int b = 0; b < 256; b++)
		if (top[b] < 600 || top[b] > 980)
			fail_msg(
			    "top byte %d drawn %zu times of %d", b, top[b], N);
	qsort(ids, N, sizeof(*ids), cmp_u64);
	for (size_t i = 1; i < N; i++)
		if (ids[i] == ids[i - 1])
			fail_msg("txid %llu drawn twice",
			    (unsigned long long)ids[i]);
	free(ids);
}

// Another process draws as a second coordinator (or the same one after a
// restart) would: none of its ids is one of ours.
static void
test_two_processes(void **state)
{
	(void)state;
	size_t n = N / 2;
	uint64_t *mine = calloc(n, sizeof(*mine));
	uint64_t *theirs = calloc(n, sizeof(*theirs));
	assert_non_null(mine);
	assert_non_null(theirs);
	int fd[2];
	assert_int_equal(pipe(fd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fd[0]);
		int rc = 0;
		for (size_t i = 0; i < n && rc == 0; i++) {
			uint64_t x;
			if (coord__txid_draw(&x) != DTX_OK ||
			    write(fd[1], &x, sizeof(x)) != sizeof(x))
				rc = 1;
		}
		_exit(rc);
	}
	close(fd[1]);
	draw(mine, n);
	size_t got = 0;
	while (got < n * sizeof(uint64_t)) {
		ssize_t r = read(
		    fd[0], (char *)theirs + got, n * sizeof(uint64_t) - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd[0]);
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(got, n * sizeof(uint64_t));
	qsort(mine, n, sizeof(*mine), cmp_u64);
	qsort(theirs, n, sizeof(*theirs), cmp_u64);
	for (size_t i = 0, j = 0; i < n && j < n;) {
		if (mine[i] == theirs[j])
			fail_msg("both drew %llu", (unsigned long long)mine[i]);
		if (mine[i] < theirs[j])
			i++;
		else
			j++;
	}
	free(mine);
	free(theirs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_draws),
		cmocka_unit_test(test_two_processes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
