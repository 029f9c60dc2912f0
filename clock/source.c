// SPDX-License-Identifier: MIT
//
// The clock source: physical time as a daemon sees it, the system wall
// clock (or a test's manual base time) passed through an offset and a rate
// that the clock nemesis can change while the daemon runs.

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

#define US_PER_MS INT64_C(1000)

struct clk_source {
	pthread_mutex_t mu;
	bool manual;
	int64_t manual_us; // base time of a manual source
	// pt = anchor_pt + rate * (base - anchor_base), all in microseconds
	// (int64 microseconds hold every l up to CLK_L_MAX).
	int64_t anchor_base_us;
	int64_t anchor_pt_us;
	int64_t offset_ms; // sum of the bumps made, as last set
	double rate;
	// The settings it was created with (clk_source_restore) and the
	// most a reading may stray from what they give (0: no limit).
	int64_t cfg_base_us;
	int64_t cfg_pt_us;
	int64_t cfg_offset_ms;
	double cfg_rate;
	int64_t limit_us;
};

static bool
settings_ok(int64_t offset_ms, double rate)
{
	// The negated comparison also refuses NaN.
	if (!(rate >= 0.0 && rate <= CLK_SOURCE_RATE_MAX))
		return false;
	return offset_ms >= -CLK_SOURCE_OFFSET_MAX_MS &&
	    offset_ms <= CLK_SOURCE_OFFSET_MAX_MS;
}

// The base time the source runs on. Called with mu held.
static int64_t
base_us(const clk_source *src)
{
	if (src->manual)
		return src->manual_us;
	return (int64_t)(dtx_wall_ns() / 1000);
}

// Far beyond CLK_L_MAX in microseconds, yet small enough that adding two
// such values cannot overflow an int64.
#define PT_LIMIT_US (INT64_C(1) << 61)

static int64_t
clamp_us(double v)
{
	if (v > (double)PT_LIMIT_US)
		return PT_LIMIT_US;
	if (v < -(double)PT_LIMIT_US)
		return -PT_LIMIT_US;
	return (int64_t)llround(v);
}

// a + b for values within PT_LIMIT_US, clamped back into that range.
static int64_t
add_us(int64_t a, int64_t b)
{
	int64_t r = a + b; // |a|, |b| <= 2^61: cannot overflow
	if (r > PT_LIMIT_US)
		return PT_LIMIT_US;
	if (r < -PT_LIMIT_US)
		return -PT_LIMIT_US;
	return r;
}

// Physical time in microseconds at base time b, clamped to PT_LIMIT_US so
// that a large rate or offset can never overflow. Called with mu held.
static int64_t
pt_us_at(const clk_source *src, int64_t b)
{
	double d = (double)(b - src->anchor_base_us) * src->rate;
	return add_us(src->anchor_pt_us, clamp_us(d));
}

// What the source reads at base time b: its settings, held within
// limit_us of what the settings it was created with give. mu held.
static int64_t
read_us(const clk_source *src, int64_t b)
{
	int64_t pt = pt_us_at(src, b);
	if (src->limit_us == 0)
		return pt;
	double d = (double)(b - src->cfg_base_us) * src->cfg_rate;
	int64_t ref = add_us(src->cfg_pt_us, clamp_us(d));
	if (pt > ref + src->limit_us)
		return ref + src->limit_us;
	if (pt < ref - src->limit_us)
		return ref - src->limit_us;
	return pt;
}

static dtx_err
source_new(clk_source **out, bool manual, int64_t start_us, int64_t offset_ms,
    double rate)
{
	if (!settings_ok(offset_ms, rate))
		return DTX_EINVAL;
	clk_source *src = dtx_calloc(1, sizeof(*src));
	if (src == NULL)
		return DTX_ENOMEM;
	if (pthread_mutex_init(&src->mu, NULL) != 0) {
		dtx_free(src);
		return DTX_ENOMEM;
	}
	src->manual = manual;
	src->manual_us = start_us;
	src->anchor_base_us = base_us(src);
	src->anchor_pt_us = src->anchor_base_us + offset_ms * US_PER_MS;
	src->offset_ms = offset_ms;
	src->rate = rate;
	src->cfg_base_us = src->anchor_base_us;
	src->cfg_pt_us = src->anchor_pt_us;
	src->cfg_offset_ms = offset_ms;
	src->cfg_rate = rate;
	*out = src;
	return DTX_OK;
}

dtx_err
clk_source_new(clk_source **out, int64_t offset_ms, double rate)
{
	return source_new(out, false, 0, offset_ms, rate);
}

dtx_err
clk_source_new_manual(clk_source **out, uint64_t start_ms)
{
	if (start_ms > CLK_L_MAX)
		return DTX_EINVAL;
	return source_new(out, true, (int64_t)start_ms * US_PER_MS, 0, 1.0);
}

dtx_err
clk_source_new_env(clk_source **out)
{
	int64_t offset = 0;
	double rate = 1.0;
	const char *s = getenv("DTX_CLOCK_OFFSET_MS");
	if (s != NULL && *s != '\0') {
		char *end;
		errno = 0;
		long long v = strtoll(s, &end, 10);
		if (errno != 0 || *end != '\0' ||
		    v < -CLK_SOURCE_OFFSET_MAX_MS ||
		    v > CLK_SOURCE_OFFSET_MAX_MS) {
			DTX_LOG(DTX_LOG_ERROR, "CLK_ENV",
			    "DTX_CLOCK_OFFSET_MS=\"%s\" is not an integer in "
			    "[-%lld, %lld]",
			    s, (long long)CLK_SOURCE_OFFSET_MAX_MS,
			    (long long)CLK_SOURCE_OFFSET_MAX_MS);
			return DTX_EINVAL;
		}
		offset = v;
	}
	s = getenv("DTX_CLOCK_RATE");
	if (s != NULL && *s != '\0') {
		char *end;
		errno = 0;
		double v = strtod(s, &end);
		if (errno != 0 || *end != '\0' || !settings_ok(0, v)) {
			DTX_LOG(DTX_LOG_ERROR, "CLK_ENV",
			    "DTX_CLOCK_RATE=\"%s\" is not a number in [0, %g]",
			    s, CLK_SOURCE_RATE_MAX);
			return DTX_EINVAL;
		}
		rate = v;
	}
	return clk_source_new(out, offset, rate);
}

void
clk_source_free(clk_source *src)
{
	if (src == NULL)
		return;
	pthread_mutex_destroy(&src->mu);
	dtx_free(src);
}

bool
clk_source_is_manual(const clk_source *src)
{
	return src->manual;
}

uint64_t
clk_source_now_ms(clk_source *src)
{
	pthread_mutex_lock(&src->mu);
	int64_t pt = read_us(src, base_us(src));
	pthread_mutex_unlock(&src->mu);
	if (pt <= 0)
		return 0;
	uint64_t ms = (uint64_t)(pt / US_PER_MS);
	return ms > CLK_L_MAX ? CLK_L_MAX : ms;
}

dtx_err
clk_source_set(clk_source *src, int64_t offset_ms, double rate)
{
	if (!settings_ok(offset_ms, rate))
		return DTX_EINVAL;
	pthread_mutex_lock(&src->mu);
	int64_t b = base_us(src);
	// From the settings' own reading, not the limited one: the offset
	// stays the sum of the bumps, and only readings are held.
	int64_t pt = pt_us_at(src, b);
	src->anchor_base_us = b;
	src->anchor_pt_us =
	    add_us(pt, (offset_ms - src->offset_ms) * US_PER_MS);
	src->offset_ms = offset_ms;
	src->rate = rate;
	pthread_mutex_unlock(&src->mu);
	return DTX_OK;
}

void
clk_source_get(clk_source *src, int64_t *offset_ms, double *rate)
{
	pthread_mutex_lock(&src->mu);
	if (offset_ms != NULL)
		*offset_ms = src->offset_ms;
	if (rate != NULL)
		*rate = src->rate;
	pthread_mutex_unlock(&src->mu);
}

void
clk_source_reset(clk_source *src)
{
	pthread_mutex_lock(&src->mu);
	int64_t b = base_us(src);
	src->anchor_base_us = b;
	src->anchor_pt_us = b;
	src->offset_ms = 0;
	src->rate = 1.0;
	pthread_mutex_unlock(&src->mu);
}

void
clk_source_restore(clk_source *src)
{
	pthread_mutex_lock(&src->mu);
	src->anchor_base_us = src->cfg_base_us;
	src->anchor_pt_us = src->cfg_pt_us;
	src->offset_ms = src->cfg_offset_ms;
	src->rate = src->cfg_rate;
	pthread_mutex_unlock(&src->mu);
}

void
clk_source_limit(clk_source *src, uint64_t max_ms)
{
	if (max_ms > (uint64_t)CLK_SOURCE_OFFSET_MAX_MS)
		max_ms = (uint64_t)CLK_SOURCE_OFFSET_MAX_MS;
	pthread_mutex_lock(&src->mu);
	src->limit_us = (int64_t)max_ms * US_PER_MS;
	pthread_mutex_unlock(&src->mu);
}

dtx_err
clk_source_advance(clk_source *src, int64_t delta_ms)
{
	if (!src->manual)
		return DTX_EINVAL;
	const int64_t max_us = (int64_t)CLK_L_MAX * US_PER_MS;
	// |delta| beyond the whole range can never be valid; checking it
	// first keeps the multiplication below from overflowing.
	if (delta_ms > (int64_t)CLK_L_MAX || delta_ms < -(int64_t)CLK_L_MAX)
		return DTX_EINVAL;
	dtx_err err = DTX_OK;
	pthread_mutex_lock(&src->mu);
	int64_t nb = src->manual_us + delta_ms * US_PER_MS;
	if (nb < 0 || nb > max_us)
		err = DTX_EINVAL;
	else
		src->manual_us = nb;
	pthread_mutex_unlock(&src->mu);
	return err;
}
