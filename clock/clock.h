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

// ---------------------------------------------------------------- timestamp
// wire form

// Largest l a timestamp can carry: l has 48 bits.
#define CLK_L_MAX ((UINT64_C(1) << 48) - 1)

// Packs ts as its wire form: a msgpack array of two uints [l, c].
// Returns DTX_ENOMEM when the packer's buffer cannot grow. Borrows pk.
dtx_err clk_ts_pack(msgpack_packer *pk, clk_ts ts);

// Decodes the wire form [l, c] from obj into *out. Strict: obj must be an
// array of exactly two unsigned integers with l <= CLK_L_MAX and
// c <= CLK_LOGICAL_MAX; anything else is DTX_EPROTO and leaves *out alone.
// Borrows obj.
dtx_err clk_ts_unpack(const msgpack_object *obj, clk_ts *out);

// ---------------------------------------------------------------- vector
// clock operations
//
// A vector clock's entries at index >= n are always zero, so two clocks of
// different sizes compare and merge as if the shorter one were padded with
// zeros. These functions are pure value operations: not thread-safe on a
// shared clk_vc, safe on distinct ones.

// Sets vc to n zero entries. DTX_EINVAL when n is 0 or above CLK_VC_MAX.
dtx_err clk_vc_init(clk_vc *vc, uint32_t n);

// Records one event of node self: increments vc->c[self]. DTX_EINVAL (vc
// unchanged) when self >= vc->n or vc->n > CLK_VC_MAX.
dtx_err clk_vc_tick(clk_vc *vc, uint32_t self);

// dst = element-wise max(dst, src); dst->n becomes max(dst->n, src->n).
// DTX_EINVAL (dst unchanged) when either n is above CLK_VC_MAX.
dtx_err clk_vc_merge(clk_vc *dst, const clk_vc *src);

// The receive rule: merge remote into vc, then tick self. DTX_EINVAL (vc
// unchanged) for the reasons of clk_vc_merge and clk_vc_tick.
dtx_err clk_vc_receive(clk_vc *vc, uint32_t self, const clk_vc *remote);

// How a relates to b: CLK_VC_EQUAL, CLK_VC_BEFORE (a happened before b:
// a <= b everywhere and a != b), CLK_VC_AFTER, or CLK_VC_CONCURRENT.
// Both must have n <= CLK_VC_MAX (entries past CLK_VC_MAX are ignored).
clk_vc_order clk_vc_compare(const clk_vc *a, const clk_vc *b);

// Name of an order ("before", "after", "equal", "concurrent"). Never NULL.
const char *clk_vc_order_name(clk_vc_order o);

// Packs vc as a msgpack map {node_id (uint): counter (uint)} holding only
// its non-zero entries, in increasing node order (an all-zero clock is the
// empty map). DTX_EINVAL when vc->n > CLK_VC_MAX, DTX_ENOMEM when the
// packer's buffer cannot grow. Borrows pk and vc.
dtx_err clk_vc_pack(msgpack_packer *pk, const clk_vc *vc);

// Decodes a map written by clk_vc_pack into *out with out->n = n_nodes.
// Strict: obj must be a map of at most n_nodes entries whose keys are
// distinct unsigned integers below n_nodes and whose values are unsigned
// integers; anything else is DTX_EPROTO. DTX_EINVAL when n_nodes is 0 or
// above CLK_VC_MAX. *out is written only on success. Borrows obj.
dtx_err clk_vc_unpack(const msgpack_object *obj, uint32_t n_nodes, clk_vc *out);

// ---------------------------------------------------------------- clock
// source

// Where a daemon reads physical time. A real source reads the system wall
// clock and passes it through an offset and a rate:
//
//     pt = anchor_pt + rate * (wall - anchor_wall)
//
// where the anchor is re-set on every change, so that changing only the
// rate never makes time jump, and changing the offset by d makes it jump by
// exactly d (a deliberate bump). A manual source (for tests) works the same
// way over a base time that only clk_source_advance moves, so a test can
// give each simulated node its own offset and drifting rate. Every
// function is thread-safe; clk_source_now_ms takes one short mutex.
typedef struct clk_source clk_source;

// Limits on the settings: |offset| <= CLK_SOURCE_OFFSET_MAX_MS (about 31
// years) and 0 <= rate <= CLK_SOURCE_RATE_MAX. A rate of 0 stops the clock.
#define CLK_SOURCE_OFFSET_MAX_MS INT64_C(1000000000000)
#define CLK_SOURCE_RATE_MAX 1000.0

// Creates a real source with the given offset and rate. DTX_EINVAL when a
// setting is out of range (rate NaN included), DTX_ENOMEM. On success
// *out is owned (free with clk_source_free).
dtx_err clk_source_new(clk_source **out, int64_t offset_ms, double rate);

// Creates a real source whose settings come from the environment:
// DTX_CLOCK_OFFSET_MS (signed integer, default 0) and DTX_CLOCK_RATE
// (decimal, default 1.0). A malformed or out-of-range value is DTX_EINVAL
// and is logged naming the variable. Ownership as clk_source_new.
dtx_err clk_source_new_env(clk_source **out);

// Creates a manual source whose base time starts at start_ms and moves
// only through clk_source_advance; offset 0, rate 1. DTX_EINVAL when
// start_ms > CLK_L_MAX, DTX_ENOMEM. Ownership as clk_source_new.
dtx_err clk_source_new_manual(clk_source **out, uint64_t start_ms);

// Frees src. NULL does nothing. No other thread may be using it.
void clk_source_free(clk_source *src);

// True for a source made by clk_source_new_manual.
bool clk_source_is_manual(const clk_source *src);

// The current physical time in milliseconds since the epoch, clamped to
// [0, CLK_L_MAX]. Monotonic only if the underlying wall clock is and no
// backward bump was made: the HLC copes with both.
uint64_t clk_source_now_ms(clk_source *src);

// Changes the settings at run time. The new rate applies from now on with
// time continuous; offset_ms minus the previous offset is added at once.
// DTX_EINVAL (nothing changed) when a setting is out of range.
dtx_err clk_source_set(clk_source *src, int64_t offset_ms, double rate);

// Reads the current settings (either pointer may be NULL). The offset is
// the sum of the bumps made, not the drift the rate has built up.
void clk_source_get(clk_source *src, int64_t *offset_ms, double *rate);

// Puts the source back on the undisturbed base time: offset 0, rate 1 and
// no drift, so pt == wall (or the manual base) again. A jump, in general.
void clk_source_reset(clk_source *src);

// Puts the source back on the settings it was created with (the offset
// and rate of clk_source_new or the environment), the drift any other
// rate built up since undone: it reads what it would have read had it
// never been changed.
void clk_source_restore(clk_source *src);

// Holds every later reading within max_ms of what the settings the source
// was created with give (0: no limit, the default), whatever offset or
// rate clk_source_set applies: a clock fault moves physical time at most
// this far, so that its effect on the HLC is bounded (see clk_hlc).
void clk_source_limit(clk_source *src, uint64_t max_ms);

// Moves a manual source's base time by delta_ms (negative moves it back);
// its physical time moves by rate * delta_ms. DTX_EINVAL for a real source
// or when the base would leave [0, CLK_L_MAX].
dtx_err clk_source_advance(clk_source *src, int64_t delta_ms);

// ---------------------------------------------------------------- HLC

// A hybrid logical clock (Kulkarni et al. 2014) reading physical time from
// a clk_source. Thread-safe: one mutex guards the state.
//
// Overflow of the logical counter: if c would pass CLK_LOGICAL_MAX, l is
// advanced by one millisecond and c restarts at 0 instead. The result is
// still greater than every timestamp issued or received, so causality is
// kept; l then runs at most 1 ms ahead of the paper's value per 65536
// events in one millisecond, which bounded-skew tests show never happens.
//
// Persisted bound (optional): the file at bound_path holds an l that no
// issued timestamp exceeds. A writer thread durably moves it on to
// l + CLK_HLC_BOUND_WINDOW_MS once l comes within half a window of it, and
// a timestamp whose l would pass it waits until it is persisted. After a
// restart the clock issues only timestamps above the stored bound, so a
// node never repeats or goes below a timestamp it issued before, even with
// its physical clock set back. Opening a real clock source waits until
// physical time passes a bound at most two windows ahead (an ordinary
// restart), so a restarted node does not start ahead of its peers. File format,
// 20 bytes, integers little-endian:
//
//     offset 0   8 bytes  magic "DTXHLCB1"
//     offset 8   8 bytes  bound l (uint64, <= CLK_L_MAX)
//     offset 16  4 bytes  CRC32C of bytes 0..15
//
// It is replaced atomically: written to "<bound_path>.tmp", fsynced,
// renamed over bound_path, then the directory is fsynced.
//
// What no message can do (DESIGN rule 23): move the clock more than
// max_offset past physical time. Every timestamp taken from a message, a
// header's (clk_hlc_update) or one the node must cover such as a commit
// or pre-commit timestamp (clk_hlc_witness), is checked against
// pt + max_offset, and anything in the top CLK_HLC_TOP_MS of the range is
// refused whatever max_offset says, so that no message can bring the
// clock to where it runs out of values. The bound read at open is checked
// too (CLK_HLC_BOUND_AHEAD_MS).
//
// After a clock fault: the clock source's offset moves pt, and l follows
// it up but never down (timestamps issued here must keep increasing: the
// versions and ids they stamp are ordered by them). So after a bump of
// +d ms is reset, this node's l stays where it got to, issuing c + 1,
// until pt catches up: l - pt falls back within max_offset d - max_offset
// ms after the reset. Its peers are not dragged along: they witness none
// of its timestamps more than max_offset ahead of their own pt, so their l
// stays within max_offset of their pt throughout. The persisted bound is
// at most one window above l, so it adds nothing while the daemon runs; a
// restart while l is ahead waits for a bound up to two windows ahead,
// starts ahead (converging as above) for one up to
// CLK_HLC_BOUND_AHEAD_MS, and refuses to start, naming the file, beyond.
// The nemesis's bumps are at most 2 x max_offset + 1 ms, so a node
// converges within max_offset + 1 ms of the reset. A daemon holds every
// clock fault to that size (CLK_FAULT_MAX_MS): a FAULT "clock" with a
// larger offset is refused, and its clock source is limited
// (clk_source_limit) so that no rate drifts it further either; the reset
// (offset 0, rate 1000/1000) restores the configured clock, drift undone
// (clk_source_restore). So after any clock fault is reset, every clock is
// back within max_offset of its physical time within max_offset + 1 ms.
typedef struct clk_hlc clk_hlc;

#define CLK_HLC_BOUND_WINDOW_MS 1000

// The largest clock fault a daemon takes, in ms of physical time away
// from its configured clock: the nemesis's largest bump.
#define CLK_FAULT_MAX_MS(max_offset_ms) (2 * (uint64_t)(max_offset_ms) + 1)

// The top of the l range no remote timestamp may reach (one day short of
// CLK_L_MAX): a clock there would soon have no value left to issue.
#define CLK_HLC_TOP_MS UINT64_C(86400000)

// How far ahead of physical time a persisted bound may be at open: a
// remote timestamp witnessed at max_offset, a clock fault of up to twice
// max_offset (the nemesis's largest), the bound's window and a clock set
// back by up to a minute all fit in 3 x max_offset + CLK_HLC_BOUND_SLACK_MS.
#define CLK_HLC_BOUND_SLACK_MS 60000
#define CLK_HLC_BOUND_AHEAD_MS(max_offset_ms)                                  \
	(3 * (uint64_t)(max_offset_ms) + CLK_HLC_BOUND_SLACK_MS)

// Opens a clock over src (borrowed; must outlive the clock). A remote
// timestamp whose l is more than max_offset_ms ahead of physical time is
// rejected (0 disables the check). bound_path may be NULL (no persisted
// bound; "" is DTX_EINVAL) and is copied. The bound is written by the
// clock's own thread; an event waits for it only when its l would pass
// the persisted bound (a clock running a whole half window of l in less
// time than two fsyncs take). A missing
// bound file starts a fresh clock; a file of the wrong size, magic or CRC, or a
// bound above CLK_L_MAX, is DTX_ECORRUPT (logged with the path and the
// fix); a bound more than CLK_HLC_BOUND_AHEAD_MS(max_offset_ms) ahead of
// physical time is DTX_ECLOCK and one in the top CLK_HLC_TOP_MS of the
// range DTX_ERANGE (both logged as CLK_BOUND_AHEAD, naming the file, how
// far ahead it is and that removing it starts a fresh clock if this
// machine's clock is right); other read errors are translated from errno.
// On success *out is owned (close with clk_hlc_close).
dtx_err clk_hlc_open(clk_hlc **out, clk_source *src, uint64_t max_offset_ms,
    const char *bound_path);

// Frees the clock. NULL does nothing. The bound file stays.
void clk_hlc_close(clk_hlc *h);

// Send or local event: l' = max(l, pt); c' = c + 1 if l' == l, else 0.
// Writes the new timestamp to *out. Errors: the bound file could not be
// written (DTX_EIO, DTX_ENOSPC, ... from errno) or l would pass CLK_L_MAX
// (DTX_ERANGE); the clock is then unchanged.
dtx_err clk_hlc_now(clk_hlc *h, clk_ts *out);

// Receive event for a message stamped remote: l' = max(l, l_m, pt) and
//   c' = max(c, c_m) + 1  if l' == l == l_m,
//        c + 1            if l' == l only,
//        c_m + 1          if l' == l_m only,
//        0                otherwise (l' == pt).
// DTX_ECLOCK when l_m > pt + max_offset_ms, DTX_ERANGE when l_m is in the
// top CLK_HLC_TOP_MS of the range: counted in rejected, logged as
// CLK_REJECT (at most once a second), clock unchanged. Other errors as
// clk_hlc_now. *out is written only on success.
dtx_err clk_hlc_update(clk_hlc *h, clk_ts remote, clk_ts *out);

// The receive rule for a timestamp carried in a message's body that the
// node must cover before it acts on it (a commit or pre-commit timestamp:
// see clk_node_witness), with the same checks as clk_hlc_update: one
// within max_offset of physical time is witnessed, one beyond it is
// DTX_ECLOCK and one in the reserved top DTX_ERANGE, the clock unchanged.
// The caller must then not act on it. Other errors as clk_hlc_now.
dtx_err clk_hlc_witness(clk_hlc *h, clk_ts ts, clk_ts *out);

// The clock's current value without an event: the last timestamp issued
// or received, or (pt, 0) when physical time has passed it.
clk_ts clk_hlc_peek(clk_hlc *h);

// The last timestamp issued (0 before the first).
clk_ts clk_hlc_last(clk_hlc *h);

// The clock source (borrowed from the caller of clk_hlc_open).
clk_source *clk_hlc_source(clk_hlc *h);

typedef struct clk_hlc_counters {
	uint64_t rejected; // remote timestamps refused (DTX_ECLOCK, DTX_ERANGE)
	uint64_t witness_rejected; // of which witnessed (commit) timestamps
	uint64_t overflows; // times c passed CLK_LOGICAL_MAX and l advanced
	uint64_t bound_writes; // bound files written
	uint64_t bound_errors; // bound writes that failed
	uint64_t bound; // l of the persisted bound (0: none)
	uint64_t max_drift_ms; // largest l - pt seen at an event
} clk_hlc_counters;

// Copies the counters into *out. Thread-safe.
void clk_hlc_stats(clk_hlc *h, clk_hlc_counters *out);

// ---------------------------------------------------------------- node
// clock

// The one clock object a daemon holds: its HLC and its vector clock under
// one mutex, so every event gets both stamps atomically. Thread-safe.
typedef struct clk_node clk_node;

// Opens the clock of node self_id in a cluster of n_nodes over src
// (borrowed; must outlive the node). max_offset_ms and bound_path as
// clk_hlc_open. DTX_EINVAL when n_nodes is 0 or above CLK_VC_MAX or
// self_id >= n_nodes; errors of clk_hlc_open otherwise. On success *out is
// owned (close with clk_node_close).
dtx_err clk_node_open(clk_node **out, clk_source *src, uint32_t self_id,
    uint32_t n_nodes, uint64_t max_offset_ms, const char *bound_path);

// Frees the node. NULL does nothing.
void clk_node_close(clk_node *n);

// Send event: ticks the vector clock, takes an HLC timestamp, and copies
// both out (vc may be NULL). Errors as clk_hlc_now; on error neither clock
// changes.
dtx_err clk_node_send(clk_node *n, clk_ts *ts, clk_vc *vc);

// Receive event for a message stamped remote_ts and remote_vc (NULL when
// the message carried none): updates the HLC, merges remote_vc and ticks
// our entry. DTX_ECLOCK (remote too far ahead), DTX_ERANGE (in the
// reserved top of the range) or any other error leaves
// both clocks untouched; DTX_EINVAL when remote_vc has more than n_nodes
// entries. *out (may be NULL) gets the new HLC timestamp.
dtx_err clk_node_recv(
    clk_node *n, clk_ts remote_ts, const clk_vc *remote_vc, clk_ts *out);

// As clk_node_recv, also copying the vector clock as it is after the
// receive into *vc (may be NULL), in the same step.
dtx_err clk_node_recv_vc(clk_node *n, clk_ts remote_ts, const clk_vc *remote_vc,
    clk_ts *out, clk_vc *vc);

// Raises this node's own vector clock entry to at least floor (no event).
// A daemon calls it at start with a value above any its earlier
// incarnations issued, so that its events after a restart come after
// those before it in happened-before order (a vector clock that began at
// zero again would order them before).
void clk_node_vc_floor(clk_node *n, uint64_t floor);

// Witness event: moves the HLC past ts as a receive does, for a timestamp
// this node must cover before it applies data stamped with it: a commit
// or pre-commit timestamp. (Applied but not covered, a later local
// timestamp could fall below a version the node already holds and order
// a newer write before an older one.) Checked as clk_hlc_witness: one
// more than max_offset ahead of physical time is DTX_ECLOCK, one in the
// reserved top DTX_ERANGE, and then neither clock changes and the caller
// must not apply the data (a participant keeps the transaction prepared,
// in doubt, until a commit timestamp it can cover arrives). Ticks our
// vector clock entry on success.
dtx_err clk_node_witness(clk_node *n, clk_ts ts);

// Local event: ticks the vector clock and takes an HLC timestamp.
dtx_err clk_node_local(clk_node *n, clk_ts *ts);

// Peeks at the HLC (clk_hlc_peek) without recording an event.
clk_ts clk_node_now(clk_node *n);

// Copies the current vector clock into *out without an event.
void clk_node_vc(clk_node *n, clk_vc *out);

// This node's id and the cluster size given at open.
uint32_t clk_node_self(const clk_node *n);
uint32_t clk_node_size(const clk_node *n);

// The node's HLC (borrowed; for clk_hlc_stats) and clock source.
clk_hlc *clk_node_hlc(clk_node *n);
clk_source *clk_node_source(clk_node *n);

#endif // DTX_CLOCK_H
