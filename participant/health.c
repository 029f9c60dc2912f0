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
	int64_t n = atomic_load(&p->sync_fail);
	while (n > 0) {
		if (atomic_compare_exchange_weak(&p->sync_fail, &n, n - 1)) {
			part__count(p, PART_CTR_SYNC_FAULTS);
			DTX_LOG(DTX_LOG_WARN, "FAULT_SYNC",
			    "failing an fsync of the WAL on purpose");
			return EIO;
		}
	}
	return fdatasync(fd) == 0 ? 0 : errno;
}

dtx_err
part__fault(void *arg, const proto_fault *f)
{
	part *p = arg;
	if (strcmp(f->kind, "wal_sync") == 0) {
		// args [n]: fail the next n fsyncs (default 1; 0 disarms).
		int64_t n = f->n_args > 0 ? f->args[0] : 1;
		if (n < 0 || n > 1000000)
			return DTX_EINVAL;
		atomic_store(&p->sync_fail, n);
		DTX_LOG(DTX_LOG_WARN, "FAULT_WAL_SYNC",
		    "the next %lld fsyncs of the WAL will fail", (long long)n);
		return DTX_OK;
	}
	return DTX_ENOENT;
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
	for (int i = 0; i < PART_CTR_COUNT; i++)
		if ((rv = proto_health_counter(rep, part__ctr_names[i],
		         (int64_t)atomic_load(&p->ctr[i]))) != DTX_OK)
			return rv;
	struct {
		const char *name;
		uint64_t v;
	} more[] = {
		{ "blocked", nb },
		{ "in_doubt", st.indoubt },
		{ "keys", st.keys },
		{ "versions", st.versions },
		{ "intents", st.intents },
		{ "outcomes", st.outcomes },
		{ "barriers", st.barriers },
		{ "wal_appends", st.wal.appends },
		{ "wal_syncs", st.wal.syncs },
		{ "wal_batches", st.wal.batches },
		{ "wal_replayed", st.wal.replayed },
	};
	for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
		if ((rv = proto_health_counter(
		         rep, more[i].name, (int64_t)more[i].v)) != DTX_OK)
			return rv;
	return DTX_OK;
}
