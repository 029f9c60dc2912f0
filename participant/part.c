// SPDX-License-Identifier: MIT
//
// The participant's lifecycle: its config table, opening the store (which
// reloads in-doubt transactions with their locks), the hooks it plugs into
// the daemon runtime, and small helpers the other files share.

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "participant_int.h"

const dtx_cfg_opt part_cfg_table[] = {
	{ "indoubt-timeout-ms", DTX_CFG_INT,
	    offsetof(part_cfg, indoubt_timeout_ms), 1, 3600000, "2000",
	    "ask about a PREPARED transaction after this long without an "
	    "outcome" },
	{ "blocked-ms", DTX_CFG_INT, offsetof(part_cfg, blocked_ms), 0, 3600000,
	    "2000",
	    "report an in-doubt transaction as blocked after this long "
	    "unresolved" },
	{ "read-wait-ms", DTX_CFG_INT, offsetof(part_cfg, read_wait_ms), 0,
	    60000, "50",
	    "how long a snapshot read waits for a prepared intent before "
	    "answering retry" },
	{ "resolve-timeout-ms", DTX_CFG_INT,
	    offsetof(part_cfg, resolve_timeout_ms), 10, 600000, "500",
	    "timeout of each call the in-doubt resolver makes" },
	{ "resolve-backoff-max-ms", DTX_CFG_INT,
	    offsetof(part_cfg, resolve_backoff_max_ms), 10, 3600000, "5000",
	    "cap of the resolver's exponential backoff" },
	{ "indoubt-log-ms", DTX_CFG_INT, offsetof(part_cfg, indoubt_log_ms),
	    100, 3600000, "5000",
	    "period of the INDOUBT log line of a blocked transaction" },
	{ "gc-retain-ms", DTX_CFG_INT, offsetof(part_cfg, gc_retain_ms), 1000,
	    INT64_C(86400000) * 365, "300000",
	    "keep versions a snapshot this old can see" },
	{ "lock-wait-ms", DTX_CFG_INT, offsetof(part_cfg, lock_wait_ms), 0,
	    60000, "50",
	    "how long a PREPARE that meets a key locked by a prepared "
	    "transaction waits for its decision before voting no (0: "
	    "never)" },
};

const size_t part_cfg_count =
    sizeof(part_cfg_table) / sizeof(part_cfg_table[0]);

const char *const part__ctr_names[PART_CTR_COUNT] = {
	[PART_CTR_PREPARED] = "prepared",
	[PART_CTR_VOTES_NO] = "votes_no",
	[PART_CTR_CONFLICTS] = "conflicts",
	[PART_CTR_COMMITTED] = "committed",
	[PART_CTR_ABORTED] = "aborted",
	[PART_CTR_PRECOMMITTED] = "precommitted",
	[PART_CTR_STATUS_NEVER_VOTED] = "status_never_voted",
	[PART_CTR_READS] = "reads",
	[PART_CTR_READ_RETRIES] = "read_retries",
	[PART_CTR_READ_WAITS] = "read_waits",
	[PART_CTR_RESOLVED_BY_COORDINATOR] = "resolved_by_coordinator",
	[PART_CTR_RESOLVED_BY_PEERS] = "resolved_by_peers",
	[PART_CTR_RESOLVED_BY_TERMINATION] = "resolved_by_termination",
	[PART_CTR_RESOLVE_ATTEMPTS] = "resolve_attempts",
	[PART_CTR_SYNC_FAULTS] = "sync_faults",
	[PART_CTR_REFUSED_PREPARE] = "refused_prepare",
	[PART_CTR_REFUSED_DECISION] = "refused_decision",
	[PART_CTR_COMMIT_UNKNOWN] = "commit_unknown",
	[PART_CTR_REFUSED_STATUS] = "refused_status",
	[PART_CTR_REFUSED_STALE_STEP] = "refused_stale_step",
	[PART_CTR_LOCK_WAITS] = "lock_waits",
	[PART_CTR_LOCK_WAIT_TIMEOUTS] = "lock_wait_timeouts",
};

dtx_err
part_open(proto_daemon *d, const part_cfg *cfg, part **out)
{
	char dir[4096 + 16];
	stor_kv_opts ko;
	dtx_err rv;

	if (d == NULL || cfg == NULL || out == NULL)
		return DTX_EINVAL;
	part *p = dtx_calloc(1, sizeof(*p));
	if (p == NULL)
		return DTX_ENOMEM;
	p->d = d;
	p->cfg = cfg;
	p->clock = proto_daemon_clock(d);
	p->self = proto_daemon_id(d);
	// Writers first: a steady stream of prepares must not starve reads.
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(
	    &ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&p->ts_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&p->out_mu, NULL);
	pthread_mutex_init(&p->res_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->res_cv, &ca);
	pthread_cond_init(&p->out_cv, &ca);
	pthread_condattr_destroy(&ca);

	if ((rv = part__txtab_new(&p->txtab)) != DTX_OK) {
		part_close(p);
		return rv;
	}
	stor_kv_opts_init(&ko);
	ko.wal.sync_fn = part__sync_hook;
	ko.wal.hook_arg = p;
	snprintf(dir, sizeof(dir), "%s/store", proto_daemon_config(d)->data);
	uint64_t t0 = dtx_mono_ns();
	// A data directory of another node or cluster stops the daemon.
	rv = stor_ident_check(proto_daemon_config(d)->data, p->self,
	    stor_cluster_id(proto_daemon_topo(d)));
	if (rv == DTX_OK)
		rv = stor_kv_open(dir, &ko, &p->kv);
	if (rv != DTX_OK) {
		DTX_LOG(DTX_LOG_ERROR, "STORE_OPEN", "cannot open %s: %s", dir,
		    dtx_strerror(rv));
		part_close(p);
		return rv;
	}
	stor_indoubt *list = NULL;
	size_t n = 0;
	if ((rv = stor_kv_indoubt(p->kv, &list, &n)) != DTX_OK) {
		part_close(p);
		return rv;
	}
	if (n > 0 && (p->recovered = dtx_calloc(n, sizeof(uint64_t))) == NULL) {
		dtx_free(list);
		part_close(p);
		return DTX_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		p->recovered[i] = list[i].txid;
		part__txmeta m = { .txid = list[i].txid, .meta = list[i].meta };
		if ((rv = part__txtab_put(p->txtab, &m)) != DTX_OK) {
			dtx_free(list);
			part_close(p);
			return rv;
		}
		proto_daemon_trace(
		    p->d, PROTO_EV_RECOVER, list[i].txid, NULL, "RELOADED", 0);
		DTX_LOGF(DTX_LOG_INFO, "RELOADED",
		    DTX_FIELDS(DTX_LF_TXID(list[i].txid),
		        DTX_LF_S("state", stor_tx_state_name(list[i].state)),
		        DTX_LF_U("coordinator", list[i].meta.coordinator),
		        DTX_LF_U("peers", list[i].meta.npeers),
		        DTX_LF_U("mode", list[i].meta.mode),
		        DTX_LF_U("writes", list[i].nwrites)),
		    "prepared transaction reloaded with its locks");
	}
	p->nrecovered = n;
	dtx_free(list);
	// Reloaded transactions hold locks: waiting for them works from
	// the first request on.
	if ((rv = part__lw_start(p)) != DTX_OK) {
		part_close(p);
		return rv;
	}
	stor_kv_stats st;
	stor_kv_stats_get(p->kv, &st);
	DTX_LOG(DTX_LOG_INFO, "STORE_OPEN",
	    "%s: %llu keys, %llu in doubt reloaded with their locks, %llu "
	    "records replayed in %.1f ms",
	    dir, (unsigned long long)st.keys, (unsigned long long)st.indoubt,
	    (unsigned long long)st.wal.replayed,
	    (double)(dtx_mono_ns() - t0) / 1e6);
	*out = p;
	return DTX_OK;
}

void
part_hooks(part *p, proto_daemon_hooks *out)
{
	*out = (proto_daemon_hooks) {
		.role = DTX_ROLE_PARTICIPANT,
		.handler = part__handle,
		.whole_batches = true,
		.health = part__health,
		.fault = part__fault,
		.arg = p,
	};
}

dtx_err
part_start(part *p)
{
	return part__resolver_start(p);
}

void
part_stop(part *p)
{
	if (p == NULL)
		return;
	part__resolver_stop(p);
	part__lw_stop(p);
}

void
part_close(part *p)
{
	if (p == NULL)
		return;
	part__resolver_stop(p);
	part__lw_stop(p);
	part__lw_fini(p);
	stor_kv_close(p->kv);
	dtx_free(p->doubts);
	dtx_free(p->recovered);
	part__txtab_free(p->txtab);
	pthread_rwlock_destroy(&p->ts_lock);
	pthread_mutex_destroy(&p->out_mu);
	pthread_cond_destroy(&p->out_cv);
	pthread_mutex_destroy(&p->res_mu);
	pthread_cond_destroy(&p->res_cv);
	dtx_free(p);
}

void
part__outcome_signal(part *p)
{
	pthread_mutex_lock(&p->out_mu);
	pthread_cond_broadcast(&p->out_cv);
	pthread_mutex_unlock(&p->out_mu);
	part__lw_kick(p);
}

void
part__outcome_wait(part *p, uint64_t deadline_ns)
{
	uint64_t now = dtx_mono_ns();
	if (now >= deadline_ns)
		return;
	// Wake at least every 5 ms: an outcome applied by the WAL's flusher
	// (an async commit becoming durable) is not broadcast.
	uint64_t until =
	    deadline_ns - now > 5000000u ? now + 5000000u : deadline_ns;
	struct timespec ts = dtx_time_after(CLOCK_MONOTONIC, until - now);
	pthread_mutex_lock(&p->out_mu);
	pthread_cond_timedwait(&p->out_cv, &p->out_mu, &ts);
	pthread_mutex_unlock(&p->out_mu);
}

void
part__key_fmt(const void *key, size_t klen, char *out, size_t n)
{
	const unsigned char *k = key;
	size_t o = 0;
	if (n == 0)
		return;
	for (size_t i = 0; i < klen; i++) {
		char tmp[5];
		int w = k[i] >= 0x20 && k[i] < 0x7f && k[i] != '\\'
		    ? snprintf(tmp, sizeof(tmp), "%c", k[i])
		    : snprintf(tmp, sizeof(tmp), "\\x%02x", k[i]);
		if (o + (size_t)w + 4 > n) {
			snprintf(out + o, n - o, "...");
			return;
		}
		memcpy(out + o, tmp, (size_t)w);
		o += (size_t)w;
	}
	out[o] = '\0';
}
