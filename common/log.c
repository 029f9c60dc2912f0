// SPDX-License-Identifier: MIT
//
// One-line logging to stderr. The name and level are set once by main();
// each line is formatted into a local buffer and written with one write(2)
// so lines from different threads never interleave. Warnings that can come
// in floods go through a rate limiter (dtx_log_write_rl).

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static _Atomic int log_min = DTX_LOG_INFO;
static char log_name[32] = "dtx";
// The limiter of dtx_log_write_rl: process-wide, like the log it guards.
static dtx_rl log_rl = { .mu = PTHREAD_MUTEX_INITIALIZER,
	.interval_ns = DTX_RL_INTERVAL_NS };

void
dtx_log_init(const char *name, dtx_log_level min)
{
	if (name != NULL)
		snprintf(log_name, sizeof(log_name), "%s", name);
	atomic_store(&log_min, (int)min);
}

dtx_err
dtx_log_level_parse(const char *s, dtx_log_level *out)
{
	static const char *names[] = { "debug", "info", "warn", "error",
		"off" };
	for (int i = 0; i < 5; i++) {
		if (s != NULL && strcasecmp(s, names[i]) == 0) {
			*out = (dtx_log_level)i;
			return DTX_OK;
		}
	}
	return DTX_EINVAL;
}

bool
dtx_log_enabled(dtx_log_level level)
{
	return (int)level >=
	    atomic_load_explicit(&log_min, memory_order_relaxed);
}

// Formats and writes one line; suffix (may be NULL) is appended to the
// text before the newline.
static void
log_vwrite(dtx_log_level level, const char *msgid, const char *suffix,
    const char *fmt, va_list ap)
{
	static const char *lv[] = { "DEBUG", "INFO", "WARN", "ERROR", "OFF" };
	char line[1024];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s %s ",
	    ts.tv_nsec / 1000000, lv[level <= DTX_LOG_OFF ? level : 4],
	    log_name, msgid);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n ? (size_t)r : 0;
	r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n - 1 ? (size_t)r
		                                      : sizeof(line) - n - 2;
	if (suffix != NULL) {
		r = snprintf(line + n, sizeof(line) - n - 1, "%s", suffix);
		if (r > 0)
			n += (size_t)r < sizeof(line) - n - 1
			    ? (size_t)r
			    : sizeof(line) - n - 2;
	}
	// Keep one record on one line whatever the text held.
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

void
dtx_log_write(dtx_log_level level, const char *msgid, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, msgid, NULL, fmt, ap);
	va_end(ap);
}

void
dtx_log_write_rl(
    dtx_log_level level, const char *msgid, uint64_t key, const char *fmt, ...)
{
	uint64_t sup = 0, others = 0;
	if (!dtx_rl_pass(&log_rl, msgid, key, dtx_mono_ns(), &sup, &others))
		return;
	char suffix[96] = "";
	size_t n = 0;
	if (sup > 0)
		n = (size_t)snprintf(suffix, sizeof(suffix), " suppressed=%llu",
		    (unsigned long long)sup);
	if (others > 0 && n < sizeof(suffix))
		snprintf(suffix + n, sizeof(suffix) - n,
		    " suppressed_other=%llu", (unsigned long long)others);
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, msgid, suffix, fmt, ap);
	va_end(ap);
}
