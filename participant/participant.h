// SPDX-License-Identifier: MIT
//
// participant: the dtx-participant daemon's state, a shard of keys in a
// WAL + MVCC store that votes in 2PC/3PC (DESIGN rules 6-11), serves
// snapshot reads and resolves its in-doubt transactions. main.c opens it
// between the daemon runtime (proto_daemon_*) and the serve loop.

#ifndef DTX_PARTICIPANT_H
#define DTX_PARTICIPANT_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "proto.h"

typedef struct part part;

// The participant's own settings (flags --name, environment DTX_NAME),
// loaded by proto_daemon_open through part_cfg_table.
typedef struct part_cfg {
	// A PREPARED transaction without an outcome for this long is asked
	// about (coordinator, then peers); reloaded ones are asked at once.
	int64_t indoubt_timeout_ms;
	// An in-doubt transaction the resolver could not resolve for this
	// long is reported as blocked (HEALTH "blocked", INDOUBT log lines).
	int64_t blocked_ms;
	// How long a snapshot read waits for a prepared intent below its
	// timestamp before it answers RETRY.
	int64_t read_wait_ms;
	// Timeout of each STATUS/decision call the resolver makes.
	int64_t resolve_timeout_ms;
	// Cap of the resolver's exponential backoff between attempts.
	int64_t resolve_backoff_max_ms;
	// Period of the INDOUBT log line of each blocked transaction.
	int64_t indoubt_log_ms;
	// Versions older than this (HLC milliseconds) are garbage collected.
	int64_t gc_retain_ms;
	// How long a PREPARE that meets a key locked by a prepared
	// transaction waits for its decision before voting NO (0: never).
	int64_t lock_wait_ms;
} part_cfg;

// The config table for part_cfg (pass it to proto_daemon_open).
extern const dtx_cfg_opt part_cfg_table[];
extern const size_t part_cfg_count;

// Opens the store in <data>/store: replays the WAL and reloads every
// in-doubt transaction with its intents before returning, so nothing is
// served before the locks are back (rule 8). d and cfg are borrowed and
// must outlive the participant. On success *out is owned (close with
// part_close). Errors of stor_kv_open, DTX_ENOMEM.
dtx_err part_open(proto_daemon *d, const part_cfg *cfg, part **out);

// Fills the hooks to pass to proto_daemon_serve (whole batches).
void part_hooks(part *p, proto_daemon_hooks *out);

// Starts the in-doubt resolver thread (call once serving). DTX_ENOMEM.
dtx_err part_start(part *p);

// Stops the resolver thread (it may be calling peers: returns once its
// current call ends). Call before proto_daemon_close. NULL does nothing.
void part_stop(part *p);

// Closes the store and frees p. The server must be closed already.
// part_close(NULL) does nothing.
void part_close(part *p);

#endif // DTX_PARTICIPANT_H
