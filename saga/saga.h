// SPDX-License-Identifier: MIT
//
// saga: the dtx-saga orchestrator. It accepts SAGA_SUBMIT requests (a
// client-chosen global id and an ordered list of steps), runs each step's
// action on its participant, and on a definite failure compensates every
// completed step in reverse order (DESIGN rule 12). Every saga and every
// step's state is written to a durable saga log before the step runs, so
// that after a crash each unfinished saga resumes in the right direction.
// main.c opens it between the daemon runtime (proto_daemon_*) and the
// serve loop.

#ifndef DTX_SAGA_H
#define DTX_SAGA_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "proto.h"

typedef struct saga saga;

// The orchestrator's own settings (flags --name, environment DTX_NAME),
// loaded by proto_daemon_open through saga_cfg_table.
typedef struct saga_cfg {
	// How long an action is retried (timeouts, unreachable participant,
	// transient refusals) before the saga turns to compensation.
	int64_t action_budget_ms;
	// Timeout of each STEP call to a participant.
	int64_t step_timeout_ms;
	// First and largest pause between retries of a step (capped
	// exponential backoff with jitter).
	int64_t backoff_base_ms;
	int64_t backoff_max_ms;
	// How long SAGA_SUBMIT waits for a saga's outcome before answering
	// "unknown" (the saga goes on in the background).
	int64_t reply_wait_ms;
	// A saga compensating for longer than this is reported as stuck in
	// HEALTH.
	int64_t stuck_ms;
	// Delay between a saga's end and the SAGA_FORGET sent to its
	// participants, so that a late duplicate still meets its barrier.
	int64_t forget_delay_ms;
	// Finished sagas are remembered (for idempotent resubmission) for
	// this long, and at most retain_max of them.
	int64_t retain_ms;
	int64_t retain_max;
	// The saga log is checkpointed once it grew by this many bytes.
	int64_t checkpoint_bytes;
	// Threads that continue sagas after a pause (a step's retry after
	// its backoff); a saga holds none while it waits.
	int64_t resumers;
	// Threads for resubmissions waiting for their saga's outcome (each
	// holds one while it waits).
	int64_t submitters;
	// STEPs per BATCH to one participant at most.
	int64_t step_batch;
	// STEP batches on the wire to one participant at once.
	int64_t step_inflight;
	// "full" (fdatasync, the default) or "none" (benchmarks only).
	char *sync;
} saga_cfg;

// The config table for saga_cfg (pass it to proto_daemon_open).
extern const dtx_cfg_opt saga_cfg_table[];
extern const size_t saga_cfg_count;

// Opens the saga log in <data>/log and replays it: every unfinished saga
// is loaded with its steps' states, to be resumed by saga_start. d and cfg
// are borrowed and must outlive the orchestrator. On success *out is owned
// (close with saga_close). Errors of stor_wal_open (DTX_ECORRUPT for a
// damaged log), DTX_EINVAL for a bad setting, DTX_ENOMEM.
dtx_err saga_open(proto_daemon *d, const saga_cfg *cfg, saga **out);

// Fills the hooks to pass to proto_daemon_serve.
void saga_hooks(saga *s, proto_daemon_hooks *out);

// Resumes every saga the log left unfinished and starts the background
// threads: the resumers (which continue sagas after a pause), the barrier
// collector (SAGA_FORGET) and the checkpointer. DTX_ENOMEM.
dtx_err saga_start(saga *s);

// Stops the background threads and waits for every running saga to stop
// at its next step boundary (an unfinished one stays so in the log, and
// its client is answered unknown). Call before proto_daemon_close. NULL
// does nothing.
void saga_stop(saga *s);

// Closes the log and frees s. The server must be closed already.
// saga_close(NULL) does nothing.
void saga_close(saga *s);

#endif // DTX_SAGA_H
