// SPDX-License-Identifier: MIT
//
// Small process-wide utilities: interval clocks, the seeded PRNG and the
// crash points that fault tests arm through DTX_CRASH_AT, and making and
// removing directory trees.

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

uint64_t
dtx_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
dtx_wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
dtx_sleep_ms(uint64_t ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
		.tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void
dtx_nap_ms(uint64_t ms, bool (*stop)(void *arg), void *arg)
{
	uint64_t end = dtx_mono_ns() + ms * 1000000u;
	while (!stop(arg)) {
		uint64_t now = dtx_mono_ns();
		if (now >= end)
			return;
		uint64_t left = (end - now) / 1000000u;
		dtx_sleep_ms(left > 20 ? 20 : (left ? left : 1));
	}
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

void
dtx_sort_u64(uint64_t *v, size_t n)
{
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_u64);
}

struct timespec
dtx_time_after(clockid_t clk, uint64_t ns)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	ns += (uint64_t)ts.tv_nsec;
	ts.tv_sec += (time_t)(ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	return ts;
}

void
dtx_threads_stop(pthread_mutex_t *mu, pthread_cond_t *cv, bool *stop,
    const pthread_t *th, size_t n)
{
	pthread_mutex_lock(mu);
	*stop = true;
	pthread_cond_broadcast(cv);
	pthread_mutex_unlock(mu);
	for (size_t i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

uint64_t
dtx_rand_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

uint64_t
dtx_rand_below(uint64_t *state, uint64_t n)
{
	// Rejection sampling keeps the result exactly uniform.
	uint64_t lim = UINT64_MAX - UINT64_MAX % n;
	uint64_t r;
	do
		r = dtx_rand_next(state);
	while (r >= lim);
	return r % n;
}

// The armed crash point, parsed once from DTX_CRASH_AT.
static pthread_once_t crash_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t crash_mtx = PTHREAD_MUTEX_INITIALIZER;
static char crash_name[128];
static long crash_nth = 1;
static long crash_hits;
static atomic_bool crash_armed;

static void
crash_init(void)
{
	const char *s = getenv("DTX_CRASH_AT");
	if (s == NULL || *s == '\0')
		return;
	snprintf(crash_name, sizeof(crash_name), "%s", s);
	char *colon = strchr(crash_name, ':');
	if (colon != NULL) {
		*colon = '\0';
		crash_nth = strtol(colon + 1, NULL, 10);
		if (crash_nth < 1)
			crash_nth = 1;
	}
	atomic_store(&crash_armed, true);
}

void
dtx_crashpoint_arm(const char *name, long nth)
{
	pthread_once(&crash_once, crash_init);
	pthread_mutex_lock(&crash_mtx);
	snprintf(crash_name, sizeof(crash_name), "%s", name ? name : "");
	crash_nth = nth < 1 ? 1 : nth;
	crash_hits = 0;
	atomic_store(&crash_armed, name != NULL && *name != '\0');
	pthread_mutex_unlock(&crash_mtx);
}

// True when this reach of name is the armed point's nth.
static bool
crash_hit(const char *name)
{
	pthread_once(&crash_once, crash_init);
	if (!atomic_load_explicit(&crash_armed, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&crash_mtx);
	bool hit = strcmp(name, crash_name) == 0 && ++crash_hits == crash_nth;
	pthread_mutex_unlock(&crash_mtx);
	return hit;
}

void
dtx_crashpoint(const char *name)
{
	if (!crash_hit(name))
		return;
	DTX_LOG(DTX_LOG_WARN, "CRASHPOINT", "crash point %s reached: SIGKILL",
	    name);
	kill(getpid(), SIGKILL);
	_exit(137);
}

bool
dtx_crashpoint_armed(void)
{
	pthread_once(&crash_once, crash_init);
	return atomic_load_explicit(&crash_armed, memory_order_relaxed);
}

static atomic_bool crash_doomed;

static void *
crash_later(void *arg)
{
	dtx_sleep_ms((uint32_t)(uintptr_t)arg);
	kill(getpid(), SIGKILL);
	_exit(137);
}

void
dtx_crashpoint_soon(const char *name, uint32_t after_ms)
{
	if (!crash_hit(name))
		return;
	atomic_store(&crash_doomed, true);
	DTX_LOG(DTX_LOG_WARN, "CRASHPOINT",
	    "crash point %s reached: SIGKILL in %u ms, no fsync before it",
	    name, after_ms);
	pthread_t th;
	pthread_attr_t at;
	if (pthread_attr_init(&at) == 0) {
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		int rc = pthread_create(
		    &th, &at, crash_later, (void *)(uintptr_t)after_ms);
		pthread_attr_destroy(&at);
		if (rc == 0)
			return;
	}
	kill(getpid(), SIGKILL); // no thread for the delay: die now
	_exit(137);
}

void
dtx_crash_gate(void)
{
	while (atomic_load_explicit(&crash_doomed, memory_order_relaxed))
		pause(); // until the SIGKILL of dtx_crashpoint_soon
}

dtx_err
dtx_mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return DTX_EINVAL;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return dtx_from_errno(errno);
		*p = '/';
	}
	if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
		return dtx_from_errno(errno);
	return DTX_OK;
}

// nftw takes no argument for its callback: the first failure of a walk goes
// here, one walk at a time per thread.
static _Thread_local int rm_errno;

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	if (remove(p) != 0 && errno != ENOENT && rm_errno == 0)
		rm_errno = errno;
	return 0;
}

dtx_err
dtx_rmtree(const char *path)
{
	rm_errno = 0;
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0 &&
	    errno != ENOENT && rm_errno == 0)
		rm_errno = errno;
	return rm_errno == 0 ? DTX_OK : dtx_from_errno(rm_errno);
}
