// SPDX-License-Identifier: MIT
//
// What the participant reports and the faults it can be asked to inject:
// the HEALTH hook (state ok / recovering / blocked / failed, in-doubt
// transactions, counters), the FAULT hook ("wal_sync") and the fsync hook
// the store's WAL calls, through which that fault makes an fsync fail.

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "participant_int.h"

int
part__sync_hook(void *arg, int fd)
{
	part *p = arg;
	if (proto_fault_sync_due(&p->sync_fail)) {
		part__count(p, PART_CTR_SYNC_FAULTS);
		DTX_LOG(DTX_LOG_WARN, "FAULT_SYNC",
		    "failing an fsync of the WAL on purpose");
		return EIO;
	}
	uint64_t t0 = dtx_mono_ns();
	int rv = fdatasync(fd) == 0 ? 0 : errno;
	proto_daemon_observe_fsync(p->d, dtx_mono_ns() - t0);
	return rv;
}

// How long the oldest transaction the resolver tracks has been in doubt.
static uint64_t
oldest_doubt_ms(part *p)
{
	uint64_t now = dtx_mono_ns(), oldest = now;
	pthread_mutex_lock(&p->res_mu);
	for (size_t i = 0; i < p->ndoubts; i++)
		if (p->doubts[i].seen_ns < oldest)
			oldest = p->doubts[i].seen_ns;
	pthread_mutex_unlock(&p->res_mu);
	return (now - oldest) / 1000000u;
}

dtx_err
part__fault(void *arg, const proto_fault *f)
{
	part *p = arg;
	return proto_fault_wal_sync(f, &p->sync_fail, "WAL");
}

dtx_err
part__health(void *arg, proto_health_reply *rep)
{
	part *p = arg;
	stor_kv_stats st;
	bool recovering = false;
	dtx_err rv;

	stor_kv_stats_get(p->kv, &st);
	uint64_t *blocked = dtx_calloc(PROTO_MAX_BLOCKED, sizeof(uint64_t));
	if (blocked == NULL)
		return DTX_ENOMEM;
	size_t nb =
	    part__resolver_blocked(p, blocked, PROTO_MAX_BLOCKED, &recovering);
	const char *state = stor_kv_status(p->kv) != DTX_OK ? "failed"
	    : nb > 0                                        ? "blocked"
	    : recovering                                    ? "recovering"
	                                                    : "ok";
	if ((rv = proto_str_set(&rep->state, state)) != DTX_OK) {
		dtx_free(blocked);
		return rv;
	}
	rep->in_doubt = st.indoubt;
	dtx_free(rep->blocked);
	rep->n_blocked =
	    (uint32_t)(nb < PROTO_MAX_BLOCKED ? nb : PROTO_MAX_BLOCKED);
	if (rep->n_blocked == 0) {
		dtx_free(blocked);
		blocked = NULL;
	}
	rep->blocked = blocked;
	if ((rv = proto_health_counter_array(
	         rep, part__ctr_names, p->ctr, PART_CTR_COUNT)) != DTX_OK)
		return rv;
	proto_named_value more[] = {
		{ "blocked", (int64_t)nb },
		{ "in_doubt", (int64_t)st.indoubt },
		{ "keys", (int64_t)st.keys },
		{ "versions", (int64_t)st.versions },
		{ "intents", (int64_t)st.intents },
		{ "outcomes", (int64_t)st.outcomes },
		{ "barriers", (int64_t)st.barriers },
		{ "wal_appends", (int64_t)st.wal.appends },
		{ "wal_syncs", (int64_t)st.wal.syncs },
		{ "wal_batches", (int64_t)st.wal.batches },
		{ "wal_replayed", (int64_t)st.wal.replayed },
		{ "wal_bytes", (int64_t)st.wal.bytes },
		{ "oldest_in_doubt_ms", (int64_t)oldest_doubt_ms(p) },
		// Heuristic decisions (heuristic.c) are kept for good, so
		// these never go down: a hazard stays reported.
		{ "heuristic_commits", (int64_t)st.heur_commits },
		{ "heuristic_aborts", (int64_t)st.heur_aborts },
		{ "heuristic_hazards", (int64_t)st.heur_hazards },
		{ "heuristic_unconfirmed", (int64_t)st.heur_unconfirmed },
	};
	return proto_health_counters(rep, more, sizeof(more) / sizeof(more[0]));
}
