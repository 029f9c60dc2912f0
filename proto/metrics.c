// SPDX-License-Identifier: MIT
//
// What a daemon's /metrics page says, in Prometheus's text exposition
// format (version 0.0.4): the runtime's own counts and latency histograms
// of the requests it served (kept here, fed by the server's reply hook)
// and every HEALTH counter under a Prometheus name, in base units
// (seconds, bytes), counters ending in _total, no per-transaction labels.

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "proto_int.h"

// Upper bounds of the histogram buckets, in seconds (then +Inf).
static const double bucket_le[PROTO__HIST_BUCKETS] = { 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
	10 };

void
proto__hist_observe(proto__hist *h, uint64_t ns)
{
	double s = (double)ns / 1e9;
	size_t i = 0;
	while (i < PROTO__HIST_BUCKETS && s > bucket_le[i])
		i++;
	atomic_fetch_add(&h->bucket[i], 1);
	atomic_fetch_add(&h->sum_ns, ns);
	atomic_fetch_add(&h->count, 1);
}

void
proto__buf_printf(proto__buf *b, const char *fmt, ...)
{
	va_list ap;
	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *p = dtx_realloc(b->p, cap);
		if (p == NULL) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

void
proto__buf_fini(proto__buf *b)
{
	dtx_free(b->p);
	memset(b, 0, sizeof(*b));
}

static const char *const mode_name[2] = { "2pc", "3pc" };
static const char *const outcome_name[3] = { "committed", "aborted",
	"unknown" };
static const char *const phase_name[2] = { "action", "compensate" };
static const char *const step_name[3] = { "ok", "refused", "failed" };

// One request and its reply (both single messages, not BATCHes).
static void
account_one(
    proto__metrics *m, const proto_msg *req, const proto_msg *rep, uint64_t ns)
{
	proto_type t = req->hdr.type;
	if ((unsigned)t < PROTO_TYPE_COUNT)
		proto__hist_observe(&m->req[t], ns);
	switch (t) {
	case PROTO_TXN: {
		unsigned md = req->u.txn.mode == PROTO_MODE_3PC;
		unsigned oc = PROTO_UNKNOWN;
		if (rep->hdr.type == PROTO_TXN_REPLY &&
		    (unsigned)rep->u.txn_reply.outcome <= PROTO_UNKNOWN)
			oc = (unsigned)rep->u.txn_reply.outcome;
		atomic_fetch_add(&m->txns[md][oc], 1);
		proto__hist_observe(&m->txn[md], ns);
		break;
	}
	case PROTO_PREPARE:
	case PROTO_CAN_COMMIT: {
		unsigned md = t == PROTO_CAN_COMMIT;
		atomic_fetch_add(&m->prepares[md], 1);
		if (rep->hdr.type == PROTO_VOTE)
			atomic_fetch_add(&m->votes[md][rep->u.vote.yes], 1);
		break;
	}
	case PROTO_STEP:
		if (rep->hdr.type == PROTO_STEP_REPLY &&
		    (unsigned)rep->u.step_reply.phase <= 1 &&
		    (unsigned)rep->u.step_reply.result <= 2)
			atomic_fetch_add(&m->steps[rep->u.step_reply.phase]
			                          [rep->u.step_reply.result],
			    1);
		break;
	case PROTO_SAGA_SUBMIT:
		if (rep->hdr.type == PROTO_SAGA_REPLY &&
		    (unsigned)rep->u.saga_reply.outcome <= PROTO_UNKNOWN)
			atomic_fetch_add(
			    &m->sagas[rep->u.saga_reply.outcome], 1);
		break;
	default:
		break;
	}
}

void
proto__metrics_account(
    proto__metrics *m, const proto_msg *req, const proto_msg *rep, uint64_t ns)
{
	if (req->hdr.type != PROTO_BATCH) {
		account_one(m, req, rep, ns);
		return;
	}
	// A BATCH answered whole: its elements pair up with the reply's.
	bool paired = rep->hdr.type == PROTO_BATCH &&
	    rep->u.batch.n == req->u.batch.n && rep->u.batch.msgs != NULL;
	proto_msg none;
	proto_msg_init(&none, PROTO_NONE);
	for (uint32_t i = 0; i < req->u.batch.n; i++)
		account_one(m, &req->u.batch.msgs[i],
		    paired ? &rep->u.batch.msgs[i] : &none, ns);
}

// # HELP and # TYPE of one family.
static void
family(proto__buf *b, const char *name, const char *type, const char *help)
{
	proto__buf_printf(
	    b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

// A histogram's samples (its family already announced); labels is
// "" or `key="value",`.
static void
hist_samples(
    proto__buf *b, const char *name, const char *labels, const proto__hist *h)
{
	uint64_t cum = 0;
	for (size_t i = 0; i < PROTO__HIST_BUCKETS; i++) {
		cum += atomic_load(&h->bucket[i]);
		proto__buf_printf(b, "%s_bucket{%sle=\"%g\"} %llu\n", name,
		    labels, bucket_le[i], (unsigned long long)cum);
	}
	cum += atomic_load(&h->bucket[PROTO__HIST_BUCKETS]);
	// The count is the +Inf bucket by definition, so both are read once.
	proto__buf_printf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels,
	    (unsigned long long)cum);
	size_t ll = strlen(labels);
	char braces[128] = "";
	if (ll > 0)
		snprintf(
		    braces, sizeof(braces), "{%.*s}", (int)(ll - 1), labels);
	proto__buf_printf(b, "%s_sum%s %.9f\n", name, braces,
	    (double)atomic_load(&h->sum_ns) / 1e9);
	proto__buf_printf(
	    b, "%s_count%s %llu\n", name, braces, (unsigned long long)cum);
}

// The protocol families of the daemon's role.
static void
render_protocol(const proto__metrics *m, proto__buf *b)
{
	char lb[96];
	if (m->role == DTX_ROLE_COORDINATOR) {
		family(b, "dtx_transactions_total", "counter",
		    "Transactions answered to clients, by mode and outcome.");
		for (int md = 0; md < 2; md++)
			for (int oc = 0; oc < 3; oc++)
				proto__buf_printf(b,
				    "dtx_transactions_total{mode=\"%s\","
				    "outcome=\"%s\"} %llu\n",
				    mode_name[md], outcome_name[oc],
				    (unsigned long long)atomic_load(
				        &m->txns[md][oc]));
		family(b, "dtx_transaction_duration_seconds", "histogram",
		    "Time from a client's TXN to its reply, by mode.");
		for (int md = 0; md < 2; md++) {
			snprintf(lb, sizeof(lb), "mode=\"%s\",", mode_name[md]);
			hist_samples(b, "dtx_transaction_duration_seconds", lb,
			    &m->txn[md]);
		}
	}
	if (m->role == DTX_ROLE_PARTICIPANT) {
		family(b, "dtx_prepares_total", "counter",
		    "PREPARE (2pc) and CAN_COMMIT (3pc) requests served.");
		for (int md = 0; md < 2; md++)
			proto__buf_printf(b,
			    "dtx_prepares_total{mode=\"%s\"} %llu\n",
			    mode_name[md],
			    (unsigned long long)atomic_load(&m->prepares[md]));
		family(b, "dtx_votes_total", "counter",
		    "Votes sent, by mode and vote.");
		for (int md = 0; md < 2; md++)
			for (int y = 0; y < 2; y++)
				proto__buf_printf(b,
				    "dtx_votes_total{mode=\"%s\",vote=\"%s\"} "
				    "%llu\n",
				    mode_name[md], y ? "yes" : "no",
				    (unsigned long long)atomic_load(
				        &m->votes[md][y]));
		family(b, "dtx_saga_steps_total", "counter",
		    "Saga STEP requests answered, by phase and result.");
		for (int ph = 0; ph < 2; ph++)
			for (int r = 0; r < 3; r++)
				proto__buf_printf(b,
				    "dtx_saga_steps_total{phase=\"%s\","
				    "result=\"%s\"} %llu\n",
				    phase_name[ph], step_name[r],
				    (unsigned long long)atomic_load(
				        &m->steps[ph][r]));
	}
	if (m->role == DTX_ROLE_SAGA) {
		family(b, "dtx_sagas_total", "counter",
		    "Sagas answered to clients, by outcome.");
		for (int oc = 0; oc < 3; oc++)
			proto__buf_printf(b,
			    "dtx_sagas_total{outcome=\"%s\"} %llu\n",
			    outcome_name[oc],
			    (unsigned long long)atomic_load(&m->sagas[oc]));
	}
}

// The latency histograms every daemon keeps.
static void
render_latency(const proto__metrics *m, proto__buf *b)
{
	char lb[96];
	family(b, "dtx_request_duration_seconds", "histogram",
	    "Time from a request's arrival to its reply, by message type.");
	for (int t = 0; t < PROTO_TYPE_COUNT; t++) {
		if (atomic_load(&m->req[t].count) == 0)
			continue;
		snprintf(lb, sizeof(lb), "type=\"%s\",",
		    proto_type_name((proto_type)t));
		hist_samples(b, "dtx_request_duration_seconds", lb, &m->req[t]);
	}
	if (atomic_load(&m->fsync_timed)) {
		family(b, "dtx_wal_fsync_duration_seconds", "histogram",
		    "Time one fsync of the write-ahead log took.");
		hist_samples(
		    b, "dtx_wal_fsync_duration_seconds", "", &m->fsync);
	}
}

// How a HEALTH counter is exported: under metric (the dtx_ prefix and, for
// a counter, _total are added), as a counter ('c'), a gauge ('g'), one
// reason of dtx_refusals_total ('r') or not at all ('s'), multiplied by
// scale (milliseconds to seconds).
typedef struct hmap {
	const char *health;
	const char *metric;
	char kind;
	double scale;
	const char *help;
} hmap;

static const hmap hmaps[] = {
	{ "uptime_ms", "uptime_seconds", 'g', 1e-3, "Time since start." },
	{ "clock_offset_ms", "clock_fault_offset_seconds", 'g', 1e-3,
	    "Offset the clock fault adds to physical time." },
	{ "clock_rate_permille", "clock_fault_rate_ratio", 'g', 1e-3,
	    "Speed of this node's clock set by the clock fault (1 = real)." },
	{ "hlc_max_drift_ms", "hlc_max_drift_seconds", 'g', 1e-3,
	    "Largest lead of the HLC over physical time seen." },
	{ "insecure", "insecure", 'g', 1, "1 with plaintext links." },
	{ "faults_enabled", "faults_enabled", 'g', 1,
	    "1 when FAULT requests are served." },
	{ "conns", "connections", 'g', 1, "Connections open now." },
	{ "conns_refused", "connections_refused", 'c', 1,
	    "Connections closed at once: over --max-conns." },
	{ "blocked", "blocked_transactions", 'g', 1,
	    "In-doubt transactions nobody reachable can resolve." },
	{ "in_doubt", NULL, 's', 1, NULL }, // the reply's in_doubt field
	{ "oldest_in_doubt_ms", "oldest_in_doubt_seconds", 'g', 1e-3,
	    "Age of the oldest transaction the resolver has in doubt." },
	{ "heuristic_commits", "heuristic_commits", 'c', 1,
	    "Transactions in doubt committed by hand (kept for good)." },
	{ "heuristic_aborts", "heuristic_aborts", 'c', 1,
	    "Transactions in doubt aborted by hand (kept for good)." },
	{ "heuristic_hazards", "heuristic_hazards", 'c', 1,
	    "Heuristic decisions the coordinator's contradicted." },
	{ "heuristic_unconfirmed", "heuristic_unconfirmed", 'g', 1,
	    "Heuristic decisions whose coordinator has not answered yet." },
	{ "keys", "keys", 'g', 1, "Keys in the store." },
	{ "versions", "versions", 'g', 1, "MVCC versions in the store." },
	{ "intents", "intents", 'g', 1, "Keys held by prepared transactions." },
	{ "outcomes", "outcomes", 'g', 1, "Remembered transaction outcomes." },
	{ "barriers", "barriers", 'g', 1, "Saga barriers in the store." },
	{ "wal_appends", "wal_appends", 'c', 1, "WAL records appended." },
	{ "log_appends", "wal_appends", 'c', 1, "WAL records appended." },
	{ "wal_syncs", "wal_fsyncs", 'c', 1, "fsyncs of the WAL." },
	{ "log_syncs", "wal_fsyncs", 'c', 1, "fsyncs of the WAL." },
	{ "wal_batches", "wal_batches", 'c', 1,
	    "WAL batches written (appends / batches is the batch size)." },
	{ "wal_bytes", "wal_written_bytes", 'c', 1,
	    "Bytes written to the WAL." },
	{ "log_bytes", "wal_written_bytes", 'c', 1,
	    "Bytes written to the WAL." },
	{ "wal_replayed", "wal_replayed_records", 'c', 1,
	    "WAL records replayed at start." },
	{ "avg_batch_x100", NULL, 's', 1, NULL }, // batch_items / batches_sent
	{ "in_flight", "sagas_in_flight", 'g', 1, "Unfinished sagas." },
	{ "compensating", "sagas_compensating", 'g', 1,
	    "Sagas being compensated." },
	{ "stuck", "sagas_stuck", 'g', 1, "Sagas stuck compensating." },
	{ "oldest_compensating_ms", "oldest_compensating_seconds", 'g', 1e-3,
	    "Age of the oldest compensating saga." },
	{ "remembered", "sagas_remembered", 'g', 1, "Sagas in memory." },
	{ "forgets_pending", "forgets_pending", 'g', 1,
	    "SAGA_FORGET messages waiting to go out." },
};

static const hmap *
hmap_find(const char *name)
{
	for (size_t i = 0; i < sizeof(hmaps) / sizeof(hmaps[0]); i++)
		if (strcmp(hmaps[i].health, name) == 0)
			return &hmaps[i];
	return NULL;
}

// A HEALTH name fit for a metric name: [a-z0-9_] only.
static bool
plain_name(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		        *s == '_'))
			return false;
	return true;
}

// Every HEALTH counter, then the refusals as one family by reason.
static void
render_health(const proto_health_reply *h, proto__buf *b)
{
	char name[PROTO_MAX_STR + 32];
	for (uint32_t i = 0; i < h->n_counters; i++) {
		const proto_counter *c = &h->counters[i];
		if (!plain_name(c->name) ||
		    strncmp(c->name, "refused_", 8) == 0)
			continue;
		const hmap *m = hmap_find(c->name);
		if (m != NULL && m->kind == 's')
			continue;
		bool counter = m == NULL || m->kind == 'c';
		snprintf(name, sizeof(name), "dtx_%s%s",
		    m != NULL ? m->metric : c->name, counter ? "_total" : "");
		char help[PROTO_MAX_STR + 32];
		if (m == NULL)
			snprintf(
			    help, sizeof(help), "HEALTH counter %s.", c->name);
		family(b, name, counter ? "counter" : "gauge",
		    m != NULL ? m->help : help);
		if (m != NULL && m->scale != 1)
			proto__buf_printf(
			    b, "%s %.6f\n", name, (double)c->value * m->scale);
		else
			proto__buf_printf(
			    b, "%s %lld\n", name, (long long)c->value);
	}
	family(b, "dtx_refusals_total", "counter",
	    "Requests and connections refused, by reason.");
	for (uint32_t i = 0; i < h->n_counters; i++) {
		const proto_counter *c = &h->counters[i];
		if (plain_name(c->name) && strncmp(c->name, "refused_", 8) == 0)
			proto__buf_printf(b,
			    "dtx_refusals_total{reason=\"%s\"} %lld\n",
			    c->name + 8, (long long)c->value);
	}
}

void
proto__metrics_render(const proto__metrics *m, const proto_health_reply *h,
    const proto__gauges *g, proto__buf *b)
{
	family(b, "dtx_node_info", "gauge", "This daemon's role and node id.");
	proto__buf_printf(b, "dtx_node_info{role=\"%s\",node=\"%u\"} 1\n",
	    dtx_role_name(m->role), h->node);
	family(b, "dtx_ready", "gauge",
	    "1 when /readyz answers 200 (recovery done, store healthy).");
	proto__buf_printf(b, "dtx_ready %d\n", g->ready ? 1 : 0);
	family(b, "dtx_in_doubt_transactions", "gauge",
	    "Transactions in doubt here (participant: prepared without "
	    "outcome; coordinator: logged commits not yet acknowledged; "
	    "saga: compensating sagas).");
	proto__buf_printf(b, "dtx_in_doubt_transactions %llu\n",
	    (unsigned long long)h->in_doubt);
	family(b, "dtx_hlc_offset_seconds", "gauge",
	    "This node's hybrid logical clock minus physical time.");
	proto__buf_printf(b, "dtx_hlc_offset_seconds %.3f\n", g->hlc_offset_s);
	render_protocol(m, b);
	render_latency(m, b);
	render_health(h, b);
}
