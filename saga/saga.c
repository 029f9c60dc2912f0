// SPDX-License-Identifier: MIT
//
// The orchestrator's lifecycle: its config table, opening the saga log
// (which reloads every unfinished saga), the hooks it plugs into the
// daemon runtime, and starting and stopping its background threads.

#include <string.h>
#include <time.h>

#include "saga_int.h"

const dtx_cfg_opt saga_cfg_table[] = {
	{ "action-budget-ms", DTX_CFG_INT, offsetof(saga_cfg, action_budget_ms),
	    1, 3600000, "2000",
	    "retry an action this long before compensating" },
	{ "step-timeout-ms", DTX_CFG_INT, offsetof(saga_cfg, step_timeout_ms),
	    1, 600000, "1000", "timeout of each STEP call to a participant" },
	{ "backoff-base-ms", DTX_CFG_INT, offsetof(saga_cfg, backoff_base_ms),
	    1, 60000, "5", "first pause between retries of a step" },
	{ "backoff-max-ms", DTX_CFG_INT, offsetof(saga_cfg, backoff_max_ms), 1,
	    600000, "500", "largest pause between retries of a step" },
	{ "reply-wait-ms", DTX_CFG_INT, offsetof(saga_cfg, reply_wait_ms), 1,
	    3600000, "10000",
	    "answer unknown after this long (the saga goes on)" },
	{ "stuck-ms", DTX_CFG_INT, offsetof(saga_cfg, stuck_ms), 0, 3600000,
	    "5000", "report a saga compensating this long as stuck" },
	{ "forget-delay-ms", DTX_CFG_INT, offsetof(saga_cfg, forget_delay_ms),
	    0, 86400000, "10000",
	    "tell participants to drop a finished saga's barriers after this "
	    "long" },
	{ "retain-ms", DTX_CFG_INT, offsetof(saga_cfg, retain_ms), 0,
	    INT64_C(86400000) * 30, "600000",
	    "remember a finished saga's outcome this long" },
	{ "retain-max", DTX_CFG_INT, offsetof(saga_cfg, retain_max), 0,
	    100000000, "1000000", "remember at most this many outcomes" },
	{ "checkpoint-bytes", DTX_CFG_INT, offsetof(saga_cfg, checkpoint_bytes),
	    4096, INT64_C(1) << 40, "67108864",
	    "checkpoint the saga log once it grew this much" },
	{ "resumers", DTX_CFG_INT, offsetof(saga_cfg, resumers), 1, 256, "8",
	    "threads continuing sagas after a pause (a retry's backoff)" },
	{ "step-batch", DTX_CFG_INT, offsetof(saga_cfg, step_batch), 1,
	    PROTO_MAX_BATCH, "64",
	    "STEPs per message to a participant at most (the STEPs of "
	    "concurrent sagas share messages and fsyncs)" },
	{ "step-inflight", DTX_CFG_INT, offsetof(saga_cfg, step_inflight), 1,
	    16, "1",
	    "STEP batches on the wire to one participant at once (STEPs "
	    "queue meanwhile and leave together as the next)" },
	{ "submitters", DTX_CFG_INT, offsetof(saga_cfg, submitters), 1, 1024,
	    "64",
	    "threads for resubmissions waiting for their saga's outcome" },
	{ "sync", DTX_CFG_STR, offsetof(saga_cfg, sync), 0, 0, "full",
	    "saga log durability: full (fdatasync) or none (benchmarks only)" },
};

const size_t saga_cfg_count =
    sizeof(saga_cfg_table) / sizeof(saga_cfg_table[0]);

const char *const saga__ctr_names[SAGA_CTR_COUNT] = {
	[SAGA_CTR_SUBMITTED] = "submitted",
	[SAGA_CTR_RESUBMITTED] = "resubmitted",
	[SAGA_CTR_COMMITTED] = "committed",
	[SAGA_CTR_ABORTED] = "aborted",
	[SAGA_CTR_REPLIED_UNKNOWN] = "replied_unknown",
	[SAGA_CTR_STEP_CALLS] = "step_calls",
	[SAGA_CTR_STEP_RETRIES] = "step_retries",
	[SAGA_CTR_STEP_FAILED] = "steps_failed",
	[SAGA_CTR_GAVE_UP] = "steps_gave_up",
	[SAGA_CTR_COMPENSATIONS] = "compensations",
	[SAGA_CTR_RECOVERED] = "recovered",
	[SAGA_CTR_HANDED_OFF] = "handed_off",
	[SAGA_CTR_TO_THREAD] = "to_thread",
	[SAGA_CTR_FORGETS_SENT] = "forgets_sent",
	[SAGA_CTR_FORGET_ERRORS] = "forget_errors",
	[SAGA_CTR_CHECKPOINTS] = "checkpoints",
	[SAGA_CTR_EVICTED] = "evicted",
};

static dtx_err
peer_send(void *arg, proto_msg *req, const proto_call_opts *opts,
    proto_done_fn done, void *done_arg)
{
	const struct saga__peer *p = arg;
	return proto_daemon_call_async(
	    p->s->d, p->id, req, opts, done, done_arg);
}

// One STEP batcher per participant of the topology.
static dtx_err
open_step_batchers(saga *s)
{
	const dtx_topo *topo = proto_daemon_topo(s->d);
	for (uint32_t i = 0; i < topo->nparts; i++) {
		uint32_t id = topo->parts[i];
		s->peers[id] = (struct saga__peer) { s, id };
		dtx_err rv = proto_batcher_open_send(peer_send, &s->peers[id],
		    (uint32_t)s->cfg->step_batch,
		    (uint32_t)s->cfg->step_inflight, &s->steps[id]);
		if (rv != DTX_OK)
			return rv;
	}
	return DTX_OK;
}

dtx_err
saga_open(proto_daemon *d, const saga_cfg *cfg, saga **out)
{
	if (d == NULL || cfg == NULL || out == NULL)
		return DTX_EINVAL;
	stor_sync sync;
	if (cfg->sync != NULL && strcmp(cfg->sync, "full") == 0)
		sync = STOR_SYNC_FULL;
	else if (cfg->sync != NULL && strcmp(cfg->sync, "none") == 0)
		sync = STOR_SYNC_NONE;
	else {
		DTX_LOG(DTX_LOG_ERROR, "CONFIG",
		    "--sync must be full or none, not %s",
		    cfg->sync ? cfg->sync : "(null)");
		return DTX_EINVAL;
	}
	saga *s = dtx_calloc(1, sizeof(*s));
	if (s == NULL)
		return DTX_ENOMEM;
	s->d = d;
	s->cfg = cfg;
	s->self = proto_daemon_id(d);
	s->sync = sync;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->done_cv, &ca);
	pthread_cond_init(&s->q_cv, &ca);
	pthread_condattr_destroy(&ca);
	if (sync == STOR_SYNC_NONE)
		DTX_LOG(DTX_LOG_WARN, "NO_SYNC",
		    "the saga log is not fsynced: a crash may lose sagas");
	// A data directory of another node or cluster stops the daemon.
	dtx_err rv = stor_ident_check(proto_daemon_config(d)->data, s->self,
	    stor_cluster_id(proto_daemon_topo(d)));
	if (rv == DTX_OK)
		rv = saga__log_open(s);
	if (rv == DTX_OK)
		rv = proto_pool_open(
		    (uint32_t)cfg->submitters, saga__handle, s, &s->submitters);
	if (rv == DTX_OK)
		rv = stor_forcer_open(s->wal, &s->forcer);
	if (rv == DTX_OK)
		rv = open_step_batchers(s);
	if (rv != DTX_OK) {
		saga_close(s);
		return rv;
	}
	*out = s;
	return DTX_OK;
}

void
saga_hooks(saga *s, proto_daemon_hooks *out)
{
	*out = (proto_daemon_hooks) {
		.role = DTX_ROLE_SAGA,
		.handler = saga__handle,
		.health = saga__health,
		.arg = s,
	};
}

dtx_err
saga_start(saga *s)
{
	return saga__threads_start(s);
}

void
saga_stop(saga *s)
{
	if (s != NULL)
		saga__threads_stop(s);
}

void
saga_close(saga *s)
{
	if (s == NULL)
		return;
	saga__threads_stop(s);
	// The server is closed and saga__threads_stop waited for every job:
	// what the server deferred has been answered.
	proto_pool_close(s->submitters);
	stor_forcer_close(s->forcer);
	for (uint32_t i = 0; i < DTX_TOPO_MAX; i++)
		proto_batcher_close(s->steps[i]);
	stor_wal_close(s->wal);
	for (size_t b = 0; b < s->nbuckets; b++) {
		saga__rec *r = s->buckets[b];
		while (r != NULL) {
			saga__rec *next = r->hnext;
			saga__rec_free(r);
			r = next;
		}
	}
	dtx_free(s->buckets);
	for (size_t i = 0; i < s->fq_len; i++)
		dtx_free(s->fq[(s->fq_head + i) % s->fq_cap].gid);
	dtx_free(s->fq);
	dtx_free(s->resumers);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->done_cv);
	pthread_cond_destroy(&s->q_cv);
	dtx_free(s);
}
