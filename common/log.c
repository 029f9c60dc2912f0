// SPDX-License-Identifier: MIT
//
// The process's log: one record per line to stderr, in logfmt or JSON
// (common.h; the formatter is logfmt.c). The name, level and format are
// set once by main(); each line is formatted into a local buffer and
// written with one write(2) so lines from different threads never
// interleave. Warnings that can come in floods go through the one rate
// limiter (dtx_log_emit_rl).

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static _Atomic int log_min = DTX_LOG_INFO;
static _Atomic int log_fmt = DTX_LOG_FMT_LOGFMT;
static char log_name[32] = "dtx";
// The limiter of dtx_log_emit_rl: process-wide, like the log it guards.
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

dtx_err
dtx_log_format_parse(const char *s, dtx_log_format *out)
{
	if (s != NULL && strcasecmp(s, "logfmt") == 0)
		*out = DTX_LOG_FMT_LOGFMT;
	else if (s != NULL && strcasecmp(s, "json") == 0)
		*out = DTX_LOG_FMT_JSON;
	else
		return DTX_EINVAL;
	return DTX_OK;
}

void
dtx_log_set_format(dtx_log_format f)
{
	atomic_store(&log_fmt, (int)f);
}

bool
dtx_log_enabled(dtx_log_level level)
{
	return (int)level >=
	    atomic_load_explicit(&log_min, memory_order_relaxed);
}

// Formats the text and the record, and writes the line.
static void
log_vwrite(dtx_log_level level, const char *msgid, const dtx_log_field *f,
    size_t nf, uint64_t sup, uint64_t others, const char *fmt, va_list ap)
{
	char text[1024] = "", line[2048];
	struct timespec ts;

	if (fmt != NULL)
		vsnprintf(text, sizeof(text), fmt, ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	dtx_log_record r = {
		.realtime_ns =
		    (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
		.level = level,
		.node = log_name,
		.msgid = msgid,
		.fields = f,
		.nfields = nf,
		.text = text,
		.suppressed = sup,
		.suppressed_other = others,
	};
	size_t n = dtx_log_format_record(line, sizeof(line),
	    (dtx_log_format)atomic_load_explicit(
	        &log_fmt, memory_order_relaxed),
	    &r);
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

void
dtx_log_emit(dtx_log_level level, const char *msgid, const dtx_log_field *f,
    size_t nf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, msgid, f, nf, 0, 0, fmt, ap);
	va_end(ap);
}

void
dtx_log_write(dtx_log_level level, const char *msgid, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, msgid, NULL, 0, 0, 0, fmt, ap);
	va_end(ap);
}

void
dtx_log_emit_rl(dtx_log_level level, const char *msgid, uint64_t key,
    const dtx_log_field *f, size_t nf, const char *fmt, ...)
{
	uint64_t sup = 0, others = 0;
	if (!dtx_rl_pass(&log_rl, msgid, key, dtx_mono_ns(), &sup, &others))
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, msgid, f, nf, sup, others, fmt, ap);
	va_end(ap);
}

uint64_t
dtx_log_rl_key(uint32_t peer, const char *what)
{
	const char *w = what != NULL ? what : "";
	return (uint64_t)peer << 32 | dtx_crc32c(0, w, strlen(w));
}
