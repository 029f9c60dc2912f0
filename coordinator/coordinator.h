// SPDX-License-Identifier: MIT
//
// coordinator: the dtx-coordinator's engine. It runs 2PC (presumed abort)
// and 3PC transactions for clients, force-logs every commit decision in its
// own WAL before anyone hears it, batches the messages it sends to each
// participant, and after a restart re-drives every logged commit that was
// not yet acknowledged by all participants.

#ifndef DTX_COORDINATOR_H
#define DTX_COORDINATOR_H

#include <stdint.h>

#include "proto.h"

// Settings of the coordinator beyond the runtime's common flags. Filled by
// the config table coord_cfg_table (flags --vote-timeout-ms ... or the
// environment DTX_VOTE_TIMEOUT_MS ...).
typedef struct coord_cfg {
	int64_t vote_timeout_ms; // wait for PREPARE / CAN_COMMIT votes
	int64_t ack_timeout_ms; // wait for COMMIT / PRE_COMMIT acks
	int64_t senders; // batches in flight per participant channel
	int64_t max_batch; // messages per BATCH at most
	int64_t checkpoint_ms; // checkpoint period of the decision log
	int64_t ended_keep; // ended transactions remembered for STATUS
	int64_t redrive_cap_ms; // cap of the re-drive backoff
	int64_t threepc_threads; // ignored (3PC holds no threads)
	bool votes_overtake; // votes need not wait behind decisions
	bool pc_votes_overtake; // the same for pc transactions only
	bool pc_lazy_commit; // pc COMMITs ride the next batch
} coord_cfg;

extern const dtx_cfg_opt coord_cfg_table[];
extern const size_t coord_cfg_count;

typedef struct coord coord;

// Opens the coordinator over the daemon runtime d (borrowed; must outlive
// it until coord_close): opens and replays the decision log in
// <data>/log, starts the per-participant channels and the upkeep thread
// (re-drive and checkpoints). cfg is copied. Errors: those of
// stor_wal_open (DTX_ECORRUPT, DTX_EIO, ...), DTX_ENOMEM. On success *out
// is owned: stop it with coord_stop, then close it with coord_close.
dtx_err coord_open(proto_daemon *d, const coord_cfg *cfg, coord **out);

// Fills hooks (handler, health) for proto_daemon_serve. Borrows c.
void coord_hooks(coord *c, proto_daemon_hooks *hooks);

// A transaction from an in-process client, bypassing the network (a pc
// coordinator embedded in the application: it holds no state that must
// outlive the process, see pc.c). req (a PROTO_TXN) is borrowed until the
// answer. coord_txn waits for it: *rep gets the TXN_REPLY (owned:
// proto_msg_free). coord_txn_async returns at once and calls
// done(arg, DTX_OK, rep) once with the TXN_REPLY, which done takes over
// (proto_msg_free): from a thread of the coordinator, or from the calling
// thread before it returns when no vote could even be sent. done may
// start the next transaction. Both refuse at once,
// without calling done: DTX_EINVAL (no operation, no participant, a
// reserved txid), DTX_EEXIST (a txid still known), DTX_ECLOSED (stopped),
// DTX_EFAILED (the decision log failed), DTX_ENOMEM.
typedef void (*coord_txn_done)(void *arg, dtx_err rv, proto_msg *rep);
dtx_err coord_txn(coord *c, const proto_msg *req, proto_msg *rep);
dtx_err coord_txn_async(
    coord *c, const proto_msg *req, coord_txn_done done, void *arg);

// Stops the background threads (calls into the runtime end here):
// call it before proto_daemon_close. Requests still being served then
// fail fast. Idempotent; NULL does nothing.
void coord_stop(coord *c);

// Closes the decision log and frees c; call it after proto_daemon_close.
// NULL does nothing.
void coord_close(coord *c);

#endif // DTX_COORDINATOR_H
