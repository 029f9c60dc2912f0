// SPDX-License-Identifier: MIT
//
// The coordinator's lifecycle and its face to the daemon runtime: the
// config table, open (log replay, channels, upkeep thread), the request
// handler that dispatches TXN and STATUS, the HEALTH hook, stop and close.

#include <stddef.h>
#include <string.h>

#include "coordinator_int.h"

const dtx_cfg_opt coord_cfg_table[] = {
	{ "vote-timeout-ms", DTX_CFG_INT, offsetof(coord_cfg, vote_timeout_ms),
	    10, 600000, "1000",
	    "wait this long for PREPARE / CAN_COMMIT votes" },
	{ "ack-timeout-ms", DTX_CFG_INT, offsetof(coord_cfg, ack_timeout_ms),
	    10, 600000, "1000",
	    "wait this long for a COMMIT or PRE_COMMIT acknowledgement" },
	{ "senders", DTX_CFG_INT, offsetof(coord_cfg, senders), 1,
	    COORD_MAX_SENDERS, "1",
	    "batches in flight per participant; one makes the largest "
	    "batches, the least CPU per transaction" },
	{ "max-batch", DTX_CFG_INT, offsetof(coord_cfg, max_batch), 1,
	    PROTO_MAX_BATCH, "256", "messages per BATCH at most" },
	{ "checkpoint-ms", DTX_CFG_INT, offsetof(coord_cfg, checkpoint_ms), 100,
	    3600000, "5000", "checkpoint period of the decision log" },
	{ "ended-keep", DTX_CFG_INT, offsetof(coord_cfg, ended_keep), 1,
	    10000000, "65536",
	    "ended transactions remembered in memory for STATUS" },
	{ "redrive-cap-ms", DTX_CFG_INT, offsetof(coord_cfg, redrive_cap_ms),
	    10, 600000, "2000", "cap of the COMMIT re-drive backoff" },
	{ "threepc-threads", DTX_CFG_INT, offsetof(coord_cfg, threepc_threads),
	    1, 1024, "64",
	    "ignored: 3PC transactions no longer hold threads (accepted so "
	    "that older command lines still start)" },
	{ "votes-overtake", DTX_CFG_BOOL, offsetof(coord_cfg, votes_overtake),
	    0, 0, "false",
	    "a PREPARE, CAN_COMMIT or PRE_COMMIT of any mode leaves at once "
	    "while only batches of decisions (COMMIT, ABORT) are on the "
	    "wire: a client waits one round trip less; its next transaction "
	    "on the same keys may find them still locked, and the "
	    "participant then waits for the decision (--lock-wait-ms)" },
	{ "pc-votes-overtake", DTX_CFG_BOOL,
	    offsetof(coord_cfg, pc_votes_overtake), 0, 0, "true",
	    "the same for the PREPAREs of pc transactions only (false: they "
	    "wait behind decisions, unless --votes-overtake)" },
	{ "pc-lazy-commit", DTX_CFG_BOOL, offsetof(coord_cfg, pc_lazy_commit),
	    0, 0, "true",
	    "a pc COMMIT, which nobody waits for, rides the next batch to its "
	    "participant (or leaves after 1 ms on an idle channel) instead "
	    "of starting one" },
};
const size_t coord_cfg_count =
    sizeof(coord_cfg_table) / sizeof(coord_cfg_table[0]);

static dtx_err
handler(void *arg, const proto_msg *req, proto_msg *rep, proto_call *call)
{
	coord *c = arg;
	switch (req->hdr.type) {
	case PROTO_TXN:
		return coord__txn(c, req, rep, call);
	case PROTO_STATUS:
		return coord__status(c, req, rep);
	default:
		return proto_msg_set_error(rep, DTX_EPROTO,
		           "a coordinator does not serve %s",
		           proto_type_name(req->hdr.type)) == DTX_OK
		    ? DTX_OK
		    : DTX_ENOMEM;
	}
}

// FAULT kinds of the coordinator: "wal_sync" [n] makes the decision log's
// next n fsyncs fail (default 1), as a failing disk would.
static dtx_err
fault(void *arg, const proto_fault *f)
{
	coord *c = arg;
	return proto_fault_wal_sync(f, &c->fail_syncs, "decision log");
}

static dtx_err
health(void *arg, proto_health_reply *h)
{
	coord *c = arg;
	bool recovering = false;
	pthread_mutex_lock(&c->mu);
	uint64_t in_doubt = c->npending_commits;
	for (coord_tx *t = c->pending.pnext; t != &c->pending; t = t->pnext)
		if (t->recovered && t->state != COORD_VOTING) {
			recovering = true;
			break;
		}
	pthread_mutex_unlock(&c->mu);
	const char *st = atomic_load(&c->failed) ? "failed"
	    : recovering                         ? "recovering"
	                                         : "ok";
	dtx_err rv = proto_str_set(&h->state, st);
	if (rv != DTX_OK)
		return rv;
	h->in_doubt = in_doubt;
	uint64_t batches = atomic_load(&c->n_batches);
	uint64_t items = atomic_load(&c->n_batch_items);
	stor_wal_stats ws;
	stor_wal_stats_get(c->wal, &ws);
	proto_named_value ctr[] = {
		{ "txns", (int64_t)atomic_load(&c->n_txns) },
		{ "committed", (int64_t)atomic_load(&c->n_committed) },
		{ "aborted", (int64_t)atomic_load(&c->n_aborted) },
		{ "unknown", (int64_t)atomic_load(&c->n_unknown) },
		{ "batches_sent", (int64_t)batches },
		{ "batch_items", (int64_t)items },
		{ "avg_batch_x100",
		    batches ? (int64_t)(items * 100 / batches) : 0 },
		{ "redriven", (int64_t)atomic_load(&c->n_redriven) },
		{ "recovered", (int64_t)atomic_load(&c->n_recovered) },
		{ "status_queries", (int64_t)atomic_load(&c->n_status) },
		{ "refused_status",
		    (int64_t)atomic_load(&c->n_status_refused) },
		{ "checkpoints", (int64_t)atomic_load(&c->n_checkpoints) },
		{ "log_appends", (int64_t)ws.appends },
		{ "log_syncs", (int64_t)ws.syncs },
		{ "log_bytes", (int64_t)ws.bytes },
	};
	return proto_health_counters(h, ctr, sizeof(ctr) / sizeof(ctr[0]));
}

// The group hook of the forcer and of the server: the PRE_COMMITs and
// COMMITs that one group of durable decision records releases, and the
// votes of the transactions in one client BATCH, leave as one batch per
// participant (batch.c).
static void
group_hook(void *arg, bool begin)
{
	coord *c = arg;
	if (begin)
		coord__plug(c);
	else
		coord__unplug(c);
}

dtx_err
coord_open(proto_daemon *d, const coord_cfg *cfg, coord **out)
{
	coord *c = dtx_calloc(1, sizeof(*c));
	if (c == NULL)
		return DTX_ENOMEM;
	c->d = d;
	c->cfg = *cfg;
	c->self = proto_daemon_id(d);
	pthread_mutex_init(&c->mu, NULL);
	dtx_err rv = coord__table_init(c);
	if (rv != DTX_OK)
		goto fail;
	// A data directory of another node or cluster stops the daemon.
	if ((rv = stor_ident_check(proto_daemon_config(d)->data, c->self,
	         stor_cluster_id(proto_daemon_topo(d)))) != DTX_OK)
		goto fail;
	if ((rv = coord__log_open(c)) != DTX_OK)
		goto fail;
	if ((rv = coord__chans_open(c)) != DTX_OK)
		goto fail;
	if ((rv = stor_forcer_open(c->wal, &c->forcer)) != DTX_OK)
		goto fail;
	stor_forcer_group_hook(c->forcer, group_hook, c);
	if ((rv = coord__upkeep_start(c)) != DTX_OK)
		goto fail;
	*out = c;
	return DTX_OK;
fail:
	coord_stop(c);
	coord_close(c);
	return rv;
}

void
coord_hooks(coord *c, proto_daemon_hooks *hooks)
{
	memset(hooks, 0, sizeof(*hooks));
	hooks->role = DTX_ROLE_COORDINATOR;
	hooks->handler = handler;
	hooks->whole_batches = false;
	hooks->batch = group_hook;
	hooks->health = health;
	hooks->fault = fault;
	hooks->arg = c;
}

void
coord_stop(coord *c)
{
	if (c == NULL || atomic_exchange(&c->stopped, true))
		return;
	coord__upkeep_stop(c);
	// Votes still out fail or come back, then the forcer finishes the
	// decisions they queued (a 3PC transaction's later messages fail at
	// once on the stopped channels): every deferred TXN has its reply.
	coord__chans_stop(c);
	stor_forcer_stop(c->forcer);
}

void
coord_close(coord *c)
{
	if (c == NULL)
		return;
	coord_stop(c);
	coord__chans_fini(c);
	if (c->wal != NULL)
		coord__log_close(c);
	coord__table_fini(c);
	stor_forcer_close(c->forcer);
	pthread_mutex_destroy(&c->mu);
	dtx_free(c);
}
