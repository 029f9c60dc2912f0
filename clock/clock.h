// SPDX-License-Identifier: MIT
//
// clock: hybrid logical clocks (Kulkarni et al. 2014), vector clocks, and
// the clock source through which every daemon reads physical time, so that
// tests and the clock nemesis can skew one process without touching the
// system clock.

#ifndef DTX_CLOCK_H
#define DTX_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "common.h"

// ---------------------------------------------------------------- timestamps

// An HLC timestamp packed into 64 bits: the high 48 bits are l, physical
// milliseconds since the Unix epoch (enough until the year 10889), the low
// 16 bits are c, the logical counter. Comparing two clk_ts as unsigned
// integers is exactly the lexicographic (l, c) order. Zero means "none".
// On the wire and on disk a clk_ts travels as this one uint64; DESIGN's
// "hlc":[l,c] pair is its two halves (proto packs it as [l, c]).
typedef uint64_t clk_ts;

#define CLK_LOGICAL_BITS 16
#define CLK_LOGICAL_MAX 0xFFFFu
#define CLK_TS_MAX UINT64_MAX

static inline clk_ts
clk_ts_make(uint64_t l_ms, uint32_t c)
{
	return (l_ms << CLK_LOGICAL_BITS) | (c & CLK_LOGICAL_MAX);
}

static inline uint64_t
clk_ts_l(clk_ts ts)
{
	return ts >> CLK_LOGICAL_BITS;
}

static inline uint32_t
clk_ts_c(clk_ts ts)
{
	return (uint32_t)(ts & CLK_LOGICAL_MAX);
}

// ---------------------------------------------------------------- vector
// clocks

// Vector clocks over node ids 0 .. n-1 (n configured per cluster, at most
// CLK_VC_MAX). A plain value type: copy it freely; not thread-safe by
// itself (clk_node below guards a daemon's own clock).
#define CLK_VC_MAX 32

typedef struct clk_vc {
	uint32_t n; // number of nodes
	uint64_t c[CLK_VC_MAX]; // c[i]: events of node i known here
} clk_vc;

typedef enum clk_vc_order {
	CLK_VC_EQUAL,
	CLK_VC_BEFORE, // a happened before b
	CLK_VC_AFTER, // b happened before a
	CLK_VC_CONCURRENT,
} clk_vc_order;

#endif // DTX_CLOCK_H
