// SPDX-License-Identifier: MIT
//
// dtx bank: Jepsen's bank workload against a dtx cluster. Client threads
// make random transfers (as 2PC/3PC TXNs or as sagas) and whole-bank
// snapshot reads while a nemesis injects faults; then everything is
// healed, recovery is awaited, final reads and atomicity observations are
// gathered, the checkers run, and the run is stored in the results file
// with its report.

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

typedef struct bank_cfg {
	char *mode;
	int64_t accounts;
	int64_t balance;
	int64_t clients;
	double rate;
	double duration;
	char *nemesis;
	double interval;
	char *targets;
	char *shapes;
	int64_t onset_ms;
	int64_t seed;
	char *results;
	bool netns;
	char *connect;
	char *target;
	char *compose_project;
	char *dir;
	int64_t participants;
	bool json;
	int64_t recovery_s;
	int64_t max_offset_ms;
	int64_t timeout_ms;
} bank_cfg;

#define OFF(f) offsetof(bank_cfg, f)
static const dtx_cfg_opt bank_opts[] = {
	{ "mode", DTX_CFG_STR, OFF(mode), 0, 0, NULL, "2pc, 3pc or saga" },
	{ "accounts", DTX_CFG_INT, OFF(accounts), 2, HX_ACCOUNTS_MAX, "10",
	    "number of accounts" },
	{ "balance", DTX_CFG_INT, OFF(balance), 0, 1000000000, "100",
	    "initial balance of each account" },
	{ "clients", DTX_CFG_INT, OFF(clients), 1, 256, "8", "client threads" },
	{ "rate", DTX_CFG_DOUBLE, OFF(rate), 0, 1000000, "0",
	    "total ops per second (0: as fast as possible)" },
	{ "duration", DTX_CFG_DOUBLE, OFF(duration), 1, 86400, "60",
	    "seconds of workload" },
	{ "nemesis", DTX_CFG_STR, OFF(nemesis), 0, 0, "none",
	    "faults: kill,pause,partition,clock,disk (or none); disk kills a "
	    "participant and tears its WAL's tail as a crash mid-write does" },
	{ "nemesis-interval", DTX_CFG_DOUBLE, OFF(interval), 0, 3600, "0",
	    "mean seconds a fault lasts and between faults; 0: 5, except in "
	    "3pc mode with partitions, where faults are held 4-6 s (past the "
	    "participants' 2 s in-doubt timeout and their two 0.5 s resolver "
	    "calls, and the coordinator's 1 s PRE_COMMIT ack timeout) with "
	    "0.75-2.25 s between" },
	{ "nemesis-targets", DTX_CFG_STR, OFF(targets), 0, 0, "any",
	    "coordinator, participants, saga or any" },
	{ "partition-shapes", DTX_CFG_STR, OFF(shapes), 0, 0, "auto",
	    "partition shapes to draw from: halves,one,bridge,ring, or auto: "
	    "in 3pc mode one,halves (each cuts some participant off from the "
	    "coordinator), otherwise all four" },
	{ "partition-onset-ms", DTX_CFG_INT, OFF(onset_ms), 0, 60000, "400",
	    "with --netns a partition first cuts one direction (seeded) for "
	    "a quarter of this to this many ms, as a failing link does; 0: "
	    "both directions at once" },
	{ "seed", DTX_CFG_INT, OFF(seed), 0, INT64_MAX, "0",
	    "seed of the fault schedule and the workload (0: from the clock)" },
	{ "results", DTX_CFG_STR, OFF(results), 0, 0, HX_RESULTS_DEFAULT,
	    "sqlite results file" },
	{ "netns", DTX_CFG_BOOL, OFF(netns), 0, 0, "false",
	    "run each daemon in its own network namespace (root)" },
	{ "connect", DTX_CFG_STR, OFF(connect), 0, 0, NULL,
	    "use the running cluster in DIR instead of starting one" },
	{ "target", DTX_CFG_STR, OFF(target), 0, 0, "local",
	    "local (processes) or compose (the containers of a compose "
	    "project; needs --connect DIR with the host-side topology, e.g. "
	    ".dtx/compose written by compose/up)" },
	{ "compose-project", DTX_CFG_STR, OFF(compose_project), 0, 0, NULL,
	    "compose project of --target compose (default: "
	    "$COMPOSE_PROJECT_NAME, else dtx)" },
	{ "dir", DTX_CFG_STR, OFF(dir), 0, 0, ".dtx/bank",
	    "directory of the cluster this run starts" },
	{ "participants", DTX_CFG_INT, OFF(participants), 1, 16, "3",
	    "participants of the cluster this run starts" },
	{ "json", DTX_CFG_BOOL, OFF(json), 0, 0, "false",
	    "print the verdict as one JSON object" },
	{ "recovery-timeout", DTX_CFG_INT, OFF(recovery_s), 1, 3600, "30",
	    "seconds to wait for recovery after healing" },
	{ "max-offset-ms", DTX_CFG_INT, OFF(max_offset_ms), 1, 60000, "500",
	    "the daemons' HLC max offset (sizes clock bumps)" },
	{ "timeout-ms", DTX_CFG_INT, OFF(timeout_ms), 100, 600000, "5000",
	    "client call timeout" },
};
#define NOPTS (sizeof(bank_opts) / sizeof(bank_opts[0]))

// A transfer whose txid or gid is known, for the STATUS sweep.
typedef struct xrec {
	uint64_t txid;
	int64_t from, to;
	char gid[HX_GID_MAX];
} xrec;

typedef struct bank {
	bank_cfg cfg;
	bool saga;
	proto_mode mode;
	hx_conn *conn;
	hx_history *h;
	int64_t *accts;
	size_t nacct;
	int64_t total;
	uint64_t seed;
	int64_t run_id;
	// The fault schedule's settings as resolved from the flags.
	const char *shapes; // partition shapes
	uint64_t interval_ms, hold_min_ms, gap_ms;
	bool sched_3pc; // the 3pc partition defaults are in force
	hx_nemesis *nm;
	atomic_bool stop;
	atomic_uint_fast64_t ok, fail, info, ok_xfer;
	atomic_int_fast64_t next_proc;
	pthread_mutex_t mtx; // guards recs
	xrec *recs;
	size_t nrec, cap;
	uint64_t t0, t_end;
} bank;

typedef struct worker {
	bank *b;
	int idx;
	pthread_t th;
} worker;

static void
add_rec(bank *b, const xrec *r)
{
	pthread_mutex_lock(&b->mtx);
	if (DTX_GROW(b->recs, b->nrec, b->cap, 1024) != DTX_OK) {
		pthread_mutex_unlock(&b->mtx);
		return;
	}
	b->recs[b->nrec++] = *r;
	pthread_mutex_unlock(&b->mtx);
}

static void
hist(bank *b, int64_t proc, hx_op_type t, const char *f, hx_sb *sb,
    const char *err)
{
	char *v = sb ? hx_sb_take(sb) : NULL;
	hx_history_add(b->h, proc, t, f, v, err);
	dtx_free(v);
}

static int64_t
do_read(bank *b, int64_t proc, const char *f)
{
	hx_snapshot s;
	hist(b, proc, HX_OP_INVOKE, f, NULL, NULL);
	dtx_err rv =
	    hx_snapshot_read(b->conn, 0, (uint32_t)b->cfg.timeout_ms, &s);
	if (rv != DTX_OK) {
		// A read changes nothing: it certainly did not happen.
		hist(b, proc, HX_OP_FAIL, f, NULL, dtx_errname(rv));
		atomic_fetch_add(&b->fail, 1);
		return -1;
	}
	hx_sb sb = { 0 };
	hx_snapshot_json(&s, &sb);
	hist(b, proc, HX_OP_OK, f, &sb, NULL);
	atomic_fetch_add(&b->ok, 1);
	int64_t total = s.total;
	hx_snapshot_fini(&s);
	return total;
}

// One transfer; returns the process to continue as.
static int64_t
do_transfer(bank *b, int64_t proc, uint64_t *rng, uint64_t *seq, int idx)
{
	size_t fi = dtx_rand_below(rng, b->nacct);
	size_t ti = dtx_rand_below(rng, b->nacct - 1);
	if (ti >= fi)
		ti++;
	int64_t from = b->accts[fi], to = b->accts[ti];
	int64_t amount = 1 + (int64_t)dtx_rand_below(rng, 5);
	xrec r = { .from = from, .to = to };
	hx_sb sb = { 0 };
	hx_xfer x;

	if (b->saga)
		snprintf(r.gid, sizeof(r.gid), "r%" PRId64 "-c%d-%" PRIu64,
		    b->run_id, idx, (*seq)++);
	hx_sb_printf(&sb,
	    "{\"from\":%" PRId64 ",\"to\":%" PRId64 ",\"amount\":%" PRId64
	    ",\"mode\":\"%s\"",
	    from, to, amount, b->cfg.mode);
	if (b->saga)
		hx_sb_printf(&sb, ",\"gid\":\"%s\"}", r.gid);
	else
		hx_sb_printf(&sb, "}");
	hist(b, proc, HX_OP_INVOKE, "transfer", &sb, NULL);

	if (b->saga)
		hx_saga_transfer(b->conn, r.gid, from, to, amount,
		    (uint32_t)b->cfg.timeout_ms, &x);
	else
		hx_transfer(b->conn, b->mode, from, to, amount,
		    (uint32_t)b->cfg.timeout_ms, &x);

	hx_op_type t;
	if (x.err == DTX_OK)
		t = x.outcome == PROTO_COMMITTED ? HX_OP_OK
		    : x.outcome == PROTO_ABORTED ? HX_OP_FAIL
		                                 : HX_OP_INFO;
	else if (x.err == DTX_EUNREACH || x.err == DTX_EREFUSED)
		t = HX_OP_FAIL; // never delivered, or refused outright
	else
		t = HX_OP_INFO;
	hx_sb_printf(&sb,
	    "{\"from\":%" PRId64 ",\"to\":%" PRId64 ",\"amount\":%" PRId64
	    ",\"mode\":\"%s\"",
	    from, to, amount, b->cfg.mode);
	if (b->saga)
		hx_sb_printf(&sb, ",\"gid\":\"%s\"", r.gid);
	if (x.txid != 0)
		hx_sb_printf(&sb, ",\"txid\":%" PRIu64, x.txid);
	if (x.cts != 0)
		hx_sb_printf(&sb, ",\"cts\":%" PRIu64, x.cts);
	hx_sb_printf(&sb, "}");
	char err[PROTO_MAX_STR + 48];
	if (x.err != DTX_OK)
		snprintf(
		    err, sizeof(err), "%s: %s", dtx_errname(x.err), x.reason);
	else
		snprintf(err, sizeof(err), "%s%s%s", hx_outcome_name(x.outcome),
		    x.reason[0] ? ": " : "", x.reason);
	hist(b, proc, t, "transfer", &sb, t == HX_OP_OK ? NULL : err);
	r.txid = x.txid;
	if (r.txid != 0 || b->saga)
		add_rec(b, &r);
	if (t == HX_OP_OK) {
		atomic_fetch_add(&b->ok, 1);
		atomic_fetch_add(&b->ok_xfer, 1);
	} else if (t == HX_OP_FAIL) {
		atomic_fetch_add(&b->fail, 1);
	} else {
		atomic_fetch_add(&b->info, 1);
		// Jepsen: a process whose op is indeterminate never runs
		// another; the thread continues as a fresh process.
		return atomic_fetch_add(&b->next_proc, 1);
	}
	return proc;
}

static void *
client(void *arg)
{
	worker *w = arg;
	bank *b = w->b;
	uint64_t rng =
	    b->seed * UINT64_C(0x9e3779b97f4a7c15) + (uint64_t)w->idx;
	uint64_t seq = 0;
	int64_t proc = w->idx;
	uint64_t period_ns = b->cfg.rate > 0
	    ? (uint64_t)((double)b->cfg.clients / b->cfg.rate * 1e9)
	    : 0;
	uint64_t next = dtx_mono_ns();
	while (!atomic_load(&b->stop)) {
		if (period_ns > 0) {
			next += period_ns;
			while (!atomic_load(&b->stop) && dtx_mono_ns() < next)
				dtx_sleep_ms(1);
			if (atomic_load(&b->stop))
				break;
		}
		if (dtx_rand_below(&rng, 5) == 0)
			do_read(b, proc, "read");
		else
			proc = do_transfer(b, proc, &rng, &seq, w->idx);
	}
	return NULL;
}

static void
sample(void *arg, hx_progress_sample *s)
{
	bank *b = arg;
	s->ok = atomic_load(&b->ok);
	s->fail = atomic_load(&b->fail);
	s->info = atomic_load(&b->info);
	if (b->nm != NULL)
		hx_nemesis_current(b->nm, s->fault, sizeof(s->fault));
}

// Waits until every participant answers HEALTH with in_doubt 0 (and, in
// saga mode, the orchestrator answers at all). Returns the in-doubt count
// left at the deadline.
static uint64_t
await_recovery(bank *b, uint64_t deadline)
{
	const dtx_topo *topo = hx_conn_topo(b->conn);
	uint64_t left = 0;
	for (;;) {
		bool all = true;
		left = 0;
		for (uint32_t i = 0; i < topo->n; i++) {
			const dtx_node *nd = &topo->nodes[i];
			if (nd->role == DTX_ROLE_CLIENT)
				continue;
			proto_msg rep;
			if (hx_health(b->conn, nd->id, 1000, &rep) != DTX_OK) {
				all = false;
				continue;
			}
			if (nd->role == DTX_ROLE_PARTICIPANT &&
			    rep.u.health_reply.in_doubt > 0) {
				all = false;
				left += rep.u.health_reply.in_doubt;
			}
			proto_msg_free(&rep);
		}
		if (all || dtx_mono_ns() > deadline)
			return left;
		dtx_sleep_ms(200);
	}
}

static hx_txn_outcome
map_state(proto_txn_state st)
{
	switch (st) {
	case PROTO_TS_COMMITTED:
		return HX_TXN_COMMITTED;
	case PROTO_TS_PREPARED:
	case PROTO_TS_PRECOMMITTED:
		return HX_TXN_IN_DOUBT;
	default:
		// Aborted, never voted, or no record: a participant with no
		// record never prepared the transaction (or voted no and
		// forgot it), so it never applied it.
		return HX_TXN_ABORTED;
	}
}

static dtx_err
gather_txn_obs(bank *b, hx_txn_obs **out, size_t *nout)
{
	const dtx_topo *topo = hx_conn_topo(b->conn);
	hx_txn_obs *o = dtx_calloc(b->nrec * 2 + 1, sizeof(*o));
	size_t n = 0;
	if (o == NULL)
		return DTX_ENOMEM;
	for (size_t i = 0; i < b->nrec; i++) {
		const xrec *r = &b->recs[i];
		char kf[48], kt[48];
		if (r->txid == 0)
			continue;
		snprintf(kf, sizeof(kf), HX_ACCT_PREFIX "%" PRId64, r->from);
		snprintf(kt, sizeof(kt), HX_ACCT_PREFIX "%" PRId64, r->to);
		uint32_t p[2] = { dtx_topo_route(topo, kf, strlen(kf)),
			dtx_topo_route(topo, kt, strlen(kt)) };
		for (int k = 0; k < 2; k++) {
			if (k == 1 && p[1] == p[0])
				break;
			proto_txn_state st;
			o[n].txid = r->txid;
			o[n].node = (int32_t)p[k];
			o[n].outcome =
			    hx_txn_status(b->conn, p[k], r->txid, &st) == DTX_OK
			    ? map_state(st)
			    : HX_TXN_UNKNOWN;
			n++;
		}
	}
	*out = o;
	*nout = n;
	return DTX_OK;
}

static hx_saga_state
map_saga(proto_saga_state st)
{
	switch (st) {
	case PROTO_SAGA_COMMITTED:
		return HX_SAGA_COMMITTED;
	case PROTO_SAGA_RUNNING:
		return HX_SAGA_RUNNING;
	case PROTO_SAGA_COMPENSATING:
		return HX_SAGA_COMPENSATING;
	default:
		// Compensated, or never recorded (so no step ever ran).
		return HX_SAGA_ABORTED;
	}
}

static dtx_err
gather_saga_obs(bank *b, uint64_t deadline, hx_saga_obs **out, size_t *nout)
{
	hx_saga_obs *o = dtx_calloc(b->nrec + 1, sizeof(*o));
	size_t n = 0;
	if (o == NULL)
		return DTX_ENOMEM;
	for (size_t i = 0; i < b->nrec; i++) {
		const xrec *r = &b->recs[i];
		proto_saga_state st = PROTO_SAGA_UNKNOWN;
		int32_t fs = -1;
		dtx_err rv;
		// Sagas still running are given until the deadline to finish.
		for (;;) {
			rv = hx_saga_status(b->conn, r->gid, &st, &fs);
			bool done = rv == DTX_OK && st != PROTO_SAGA_RUNNING &&
			    st != PROTO_SAGA_COMPENSATING;
			if (done || dtx_mono_ns() > deadline)
				break;
			dtx_sleep_ms(100);
		}
		if (rv != DTX_OK)
			continue;
		snprintf(o[n].gid, sizeof(o[n].gid), "%s", r->gid);
		o[n].state = map_saga(st);
		o[n].failed_step = fs;
		n++;
	}
	*out = o;
	*nout = n;
	return DTX_OK;
}

static void
copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb");
	if (in == NULL)
		return;
	FILE *out = fopen(to, "wb");
	if (out != NULL) {
		char buf[65536];
		size_t r;
		while ((r = fread(buf, 1, sizeof(buf), in)) > 0)
			if (fwrite(buf, 1, r, out) != r)
				break;
		fclose(out);
	}
	fclose(in);
}

static void
copy_logs(hx_cluster *cl, const char *dir)
{
	char ld[PATH_MAX], to[PATH_MAX + 64];
	snprintf(ld, sizeof(ld), "%s/logs", dir);
	if (hx_mkdirs(ld) != DTX_OK)
		return;
	const dtx_topo *topo = hx_cluster_topo(cl);
	for (uint32_t i = 0; i < topo->n; i++) {
		const dtx_node *nd = &topo->nodes[i];
		if (nd->role == DTX_ROLE_CLIENT)
			continue;
		snprintf(to, sizeof(to), "%s/%s-%u.log", ld,
		    dtx_role_name(nd->role), nd->id);
		copy_file(hx_cluster_log(cl, nd->id), to);
	}
}

// Removes DIR/data and DIR/logs of a cluster directory this command owns,
// so each run starts from empty stores.
static void
wipe_cluster_dir(const char *dir)
{
	char path[PATH_MAX + 16];
	const char *subs[] = { "data", "logs" };
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subs[i]);
		struct stat st;
		if (stat(path, &st) != 0)
			continue;
		const char *rm[] = { "rm", "-rf", "--", path, NULL };
		hx_run(rm, NULL, 0, true);
	}
}

static void
print_anomalies(hx_json *j, const hx_verdict *v, size_t *count)
{
	hx_json_arr_begin(j, "anomalies");
	*count = 0;
	for (size_t i = 0; i < hx_verdict_count(v); i++) {
		const hx_check *c = hx_verdict_check(v, i);
		for (size_t k = 0; k < c->nanoms; k++) {
			const hx_anomaly *a = &c->anoms[k];
			hx_json_obj_begin(j, NULL);
			hx_json_str(j, "checker", a->checker);
			hx_json_str(j, "kind", a->kind);
			if (a->has_txid)
				hx_json_int(j, "txid", (int64_t)a->txid);
			if (a->gid != NULL)
				hx_json_str(j, "gid", a->gid);
			hx_json_int(j, "op_index", a->op_index);
			if (a->detail != NULL) {
				hx_json_key(j, "detail");
				fputs(a->detail, j->out);
			}
			hx_json_obj_end(j);
			(*count)++;
		}
	}
	hx_json_arr_end(j);
}

// Resolves the schedule's defaults into b from the flags: partition shapes
// "auto" and nemesis interval 0 mean the 3pc partition defaults when the
// mode is 3pc and partitions are enabled, else all shapes and 5 s. 3PC's
// flaw shows only when a partition cuts a participant that voted YES off
// from the coordinator before PRE_COMMIT reaches it, the coordinator
// (taking silence for a crash) commits, and the cut lasts until the
// participant's termination protocol, finding nobody who pre-committed,
// aborts: so the shapes default to ones that cut participants off from
// the coordinator, and partitions are held past the daemons' default
// timeouts (1 s PRE_COMMIT ack, 2 s in-doubt, 0.5 s per resolver call)
// with short gaps, so that many partitions start while transactions are
// in flight. Explicit flags override each. Returns the shapes text.
static const char *
schedule_defaults(bank *b, unsigned kinds)
{
	const bank_cfg *cfg = &b->cfg;
	bool three = cfg->mode != NULL && strcmp(cfg->mode, "3pc") == 0 &&
	    (kinds & HX_NEM_PARTITION);
	bool auto_shapes = strcmp(cfg->shapes, "auto") == 0;
	b->shapes = auto_shapes
	    ? (three ? "one,halves" : "halves,one,bridge,ring")
	    : cfg->shapes;
	b->sched_3pc = three && (auto_shapes || cfg->interval == 0);
	if (cfg->interval != 0) {
		b->interval_ms = (uint64_t)(cfg->interval * 1000);
	} else if (three) {
		b->interval_ms = 2000;
		b->hold_min_ms = 4000;
		b->gap_ms = 1500;
	} else {
		b->interval_ms = 5000;
	}
	return b->shapes;
}

// How long faults are held and how long the gaps are (ms), as
// hx_nemesis_plan draws them.
static void
schedule_ranges(
    const bank *b, uint64_t *lo, uint64_t *hi, uint64_t *glo, uint64_t *ghi)
{
	uint64_t iv = b->interval_ms, gv = b->gap_ms ? b->gap_ms : iv;
	*lo = iv / 2 > b->hold_min_ms ? iv / 2 : b->hold_min_ms;
	*hi = *lo + iv;
	*glo = gv / 2;
	*ghi = gv + gv / 2;
}

static void
print_schedule(const bank *b, unsigned kinds)
{
	uint64_t lo, hi, glo, ghi;
	schedule_ranges(b, &lo, &hi, &glo, &ghi);
	printf("dtx bank: nemesis schedule:");
	if (kinds & HX_NEM_PARTITION)
		printf(" partition shapes %s (one-way onset up to %" PRId64
		       " ms),",
		    b->shapes, b->cfg.onset_ms);
	printf(" faults held %.2f-%.2f s, %.2f-%.2f s apart%s\n",
	    (double)lo / 1e3, (double)hi / 1e3, (double)glo / 1e3,
	    (double)ghi / 1e3,
	    b->sched_3pc ? " (3pc partition defaults; --partition-shapes and "
	                   "--nemesis-interval override them)"
	                 : "");
}

static const hx_stats_f *
stats_f(const hx_verdict *v, const char *f)
{
	for (size_t i = 0; i < v->stats.nfs; i++)
		if (strcmp(v->stats.fs[i].f, f) == 0)
			return &v->stats.fs[i];
	return NULL;
}

static void
report(bank *b, const hx_verdict *v, const size_t started[HX_NEM_NKINDS],
    unsigned nem_kinds, size_t nem_errors, bool simulated,
    const char *report_dir, uint64_t in_doubt_left)
{
	static const char *const kinds[] = { "kill", "pause", "partition",
		"clock", "disk" };
	const hx_stats_f *tf = stats_f(v, "transfer");
	double secs = (double)(b->t_end - b->t0) / 1e9;
	uint64_t okx = atomic_load(&b->ok_xfer);
	size_t xfail = tf ? tf->counts[HX_OP_FAIL] : 0;
	size_t xinfo = tf ? tf->counts[HX_OP_INFO] : 0;
	if (b->cfg.json) {
		hx_json j;
		size_t na;
		hx_json_begin(&j, stdout);
		if (v->valid == HX_VALID_UNKNOWN)
			hx_json_str(&j, "valid", "unknown");
		else
			hx_json_bool(&j, "valid", v->valid == HX_VALID_TRUE);
		hx_json_int(&j, "run_id", b->run_id);
		hx_json_str(&j, "mode", b->cfg.mode);
		hx_json_int(&j, "seed", (int64_t)b->seed);
		hx_json_int(&j, "ops", (int64_t)v->stats.client_ops);
		hx_json_int(&j, "ok_transfers", (int64_t)okx);
		hx_json_int(&j, "fail_transfers", (int64_t)xfail);
		hx_json_int(&j, "info_transfers", (int64_t)xinfo);
		hx_json_num(
		    &j, "throughput", secs > 0 ? (double)okx / secs : 0);
		if (tf != NULL) {
			hx_json_obj_begin(&j, "latency_ms");
			hx_json_num(&j, "p50", (double)tf->p50 / 1e6);
			hx_json_num(&j, "p90", (double)tf->p90 / 1e6);
			hx_json_num(&j, "p99", (double)tf->p99 / 1e6);
			hx_json_num(&j, "max", (double)tf->max / 1e6);
			hx_json_obj_end(&j);
		}
		if (nem_kinds != 0) {
			uint64_t lo, hi, glo, ghi;
			schedule_ranges(b, &lo, &hi, &glo, &ghi);
			hx_json_obj_begin(&j, "nemesis_schedule");
			if (nem_kinds & HX_NEM_PARTITION) {
				hx_json_str(&j, "partition_shapes", b->shapes);
				hx_json_int(&j, "partition_onset_max_ms",
				    b->cfg.onset_ms);
			}
			hx_json_int(&j, "hold_min_ms", (int64_t)lo);
			hx_json_int(&j, "hold_max_ms", (int64_t)hi);
			hx_json_int(&j, "gap_min_ms", (int64_t)glo);
			hx_json_int(&j, "gap_max_ms", (int64_t)ghi);
			hx_json_str(&j, "defaults",
			    b->sched_3pc ? "3pc partition" : "plain");
			hx_json_obj_end(&j);
		}
		hx_json_obj_begin(&j, "faults");
		for (int k = 0; k < HX_NEM_NKINDS; k++)
			hx_json_int(&j, kinds[k], (int64_t)started[k]);
		hx_json_obj_end(&j);
		hx_json_int(&j, "fault_errors", (int64_t)nem_errors);
		hx_json_bool(&j, "partitions_simulated", simulated);
		hx_json_int(
		    &j, "in_doubt_after_recovery", (int64_t)in_doubt_left);
		print_anomalies(&j, v, &na);
		hx_json_str(&j, "results", b->cfg.results);
		hx_json_str(&j, "report_dir", report_dir);
		hx_verdict_json(&j, "verdict", v);
		hx_json_end(&j);
		return;
	}
	printf("dtx bank: run %" PRId64 ", mode %s, seed %" PRIu64
	       ", %zu accounts, total %" PRId64 "\n",
	    b->run_id, b->cfg.mode, b->seed, b->nacct, b->total);
	printf("ops: %zu client ops in %.1f s; transfers ok %" PRIu64
	       ", fail %zu, info %zu; %.1f ok transfers/s\n",
	    v->stats.client_ops, secs, okx, xfail, xinfo,
	    secs > 0 ? (double)okx / secs : 0);
	if (tf != NULL)
		printf("transfer latency: p50 %.1f ms, p90 %.1f ms, p99 %.1f "
		       "ms, max %.1f ms\n",
		    (double)tf->p50 / 1e6, (double)tf->p90 / 1e6,
		    (double)tf->p99 / 1e6, (double)tf->max / 1e6);
	printf("faults:");
	for (int k = 0; k < HX_NEM_NKINDS; k++)
		printf(" %s %zu", kinds[k], started[k]);
	printf(" (%zu failed actions)\n", nem_errors);
	if (simulated && started[2] > 0)
		printf("note: partitions were simulated in-process (the "
		       "daemons' FAULT \"partition\"); use --netns for real "
		       "packet drops\n");
	if (in_doubt_left > 0)
		printf("recovery: %" PRIu64
		       " transaction(s) still in doubt at the deadline\n",
		    in_doubt_left);
	hx_verdict_print(stdout, v);
	printf("results: %s (run %" PRId64 ")\nreport: %s/index.html\n",
	    b->cfg.results, b->run_id, report_dir);
}

static int
usage_err(const char *msg)
{
	fprintf(stderr, "dtx bank: %s (see: dtx bank --help)\n", msg);
	return HX_EXIT_USAGE;
}

int
cli_cmd_bank(int argc, char **argv)
{
	bank b;
	memset(&b, 0, sizeof(b));
	int rc = hx_parse_flags(
	    "dtx bank", bank_opts, NOPTS, &b.cfg, argc, argv, NULL, 0, NULL);
	if (rc != 0) {
		dtx_cfg_fini(bank_opts, NOPTS, &b.cfg);
		return rc < 0 ? HX_EXIT_OK : rc;
	}
	bank_cfg *cfg = &b.cfg;
	hx_cluster *cl = NULL;
	hx_results *db = NULL;
	hx_nem_event *plan = NULL;
	size_t nplan = 0;
	worker *ws = NULL;
	hx_txn_obs *obs = NULL;
	hx_saga_obs *sobs = NULL;
	size_t nobs = 0, nsobs = 0;
	hx_fault *faults = NULL;
	size_t nfaults = 0;
	hx_verdict v;
	bool have_v = false, own = cfg->connect == NULL;
	hx_compose *cc = NULL;
	unsigned kinds = 0, shapes = 0;
	hx_nem_target target;
	char err[512], report_dir[PATH_MAX];
	rc = HX_EXIT_FAILURE;
	pthread_mutex_init(&b.mtx, NULL);

	if (cfg->mode == NULL)
		rc = usage_err("--mode is required (2pc, 3pc or saga)");
	else if (strcmp(cfg->mode, "2pc") && strcmp(cfg->mode, "3pc") &&
	    strcmp(cfg->mode, "saga"))
		rc = usage_err("--mode must be 2pc, 3pc or saga");
	else if (hx_nem_kinds_parse(cfg->nemesis, &kinds, err, sizeof(err)) !=
	        DTX_OK ||
	    hx_nem_shapes_parse(schedule_defaults(&b, kinds), &shapes, err,
	        sizeof(err)) != DTX_OK)
		rc = usage_err(err);
	else if (hx_nem_target_parse(cfg->targets, &target) != DTX_OK)
		rc = usage_err("--nemesis-targets must be coordinator, "
		               "participants, saga or any");
	else if (cfg->interval != 0 && cfg->interval < 0.1)
		rc = usage_err("--nemesis-interval must be at least 0.1 s");
	else if (strcmp(cfg->target, "local") != 0 &&
	    strcmp(cfg->target, "compose") != 0)
		rc = usage_err("--target must be local or compose");
	else if (strcmp(cfg->target, "compose") == 0 &&
	    (cfg->connect == NULL || cfg->netns || (kinds & HX_NEM_DISK)))
		rc = usage_err("--target compose needs --connect DIR (the "
		               "host-side topology of the project) and takes "
		               "neither --netns nor the disk nemesis");
	else
		rc = 0;
	if (rc != 0)
		goto out;
	rc = HX_EXIT_FAILURE;
	b.saga = strcmp(cfg->mode, "saga") == 0;
	b.mode =
	    strcmp(cfg->mode, "3pc") == 0 ? PROTO_MODE_3PC : PROTO_MODE_2PC;
	b.seed =
	    cfg->seed ? (uint64_t)cfg->seed : (dtx_wall_ns() % 1000000000u) + 1;

	// The cluster: our own, fresh, or a running one.
	if (own) {
		hx_cluster_opts co = {
			.dir = cfg->dir,
			.participants = (uint32_t)cfg->participants,
			.saga = b.saga,
			.netns = cfg->netns,
		};
		hx_cluster_stop_dir(cfg->dir, false);
		wipe_cluster_dir(cfg->dir);
		dtx_err rv = hx_cluster_create(&co, &cl, err, sizeof(err));
		if (rv != DTX_OK) {
			fprintf(stderr, "dtx bank: %s\n", err);
			rc = rv == DTX_EPERM ? HX_EXIT_USAGE : HX_EXIT_FAILURE;
			goto out;
		}
		if ((rv = hx_cluster_start_all(cl, 20000)) != DTX_OK) {
			fprintf(stderr,
			    "dtx bank: cluster did not start: %s (logs in "
			    "%s/logs)\n",
			    dtx_strerror(rv), hx_cluster_dir(cl));
			goto out;
		}
	} else if (hx_cluster_open(cfg->connect, &cl, err, sizeof(err)) !=
	    DTX_OK) {
		fprintf(stderr, "dtx bank: %s\n", err);
		goto out;
	}
	if (strcmp(cfg->target, "compose") == 0 &&
	    hx_compose_open(cfg->compose_project, hx_cluster_topo(cl), &cc, err,
	        sizeof(err)) != DTX_OK) {
		fprintf(stderr, "dtx bank: --target compose: %s\n", err);
		goto out;
	}
	if (hx_conn_open(hx_cluster_topo(cl), &b.conn) != DTX_OK) {
		fprintf(stderr, "dtx bank: cannot open clients\n");
		goto out;
	}
	if (b.saga && hx_conn_saga_id(b.conn) == UINT32_MAX) {
		fprintf(stderr,
		    "dtx bank: the cluster has no saga "
		    "orchestrator\n");
		goto out;
	}

	// Accounts: created when none exist; else the existing ones are
	// the bank and their snapshot total is what must be kept.
	bool created;
	if (hx_bank_init(b.conn, (uint32_t)cfg->accounts, cfg->balance,
	        &created, err, sizeof(err)) != DTX_OK) {
		fprintf(stderr, "dtx bank: %s\n", err);
		goto out;
	}
	hx_snapshot snap;
	memset(&snap, 0, sizeof(snap));
	if (hx_snapshot_read(b.conn, 0, 10000, &snap) != DTX_OK || snap.n < 2) {
		fprintf(stderr, "dtx bank: cannot read the accounts back\n");
		if (snap.ids != NULL)
			hx_snapshot_fini(&snap);
		goto out;
	}
	b.nacct = snap.n;
	b.accts = dtx_memdup(snap.ids, snap.n * sizeof(int64_t));
	b.total = snap.total;
	hx_snapshot_fini(&snap);
	if (b.accts == NULL)
		goto out;
	if (!created && !cfg->json)
		printf(
		    "dtx bank: using the %zu existing accounts (total %" PRId64
		    ")\n",
		    b.nacct, b.total);

	// The run row, the history, the fault schedule.
	if (hx_results_open(cfg->results, true, &db, err, sizeof(err)) !=
	    DTX_OK) {
		fprintf(stderr, "dtx bank: %s: %s\n", cfg->results, err);
		goto out;
	}
	hx_sb params = { 0 };
	hx_sb_printf(&params, "{\"accounts\":[");
	for (size_t i = 0; i < b.nacct; i++)
		hx_sb_printf(&params, "%s%" PRId64, i ? "," : "", b.accts[i]);
	hx_sb_printf(&params,
	    "],\"total\":%" PRId64 ",\"clients\":%" PRId64 ",\"rate\":%g,"
	    "\"duration\":%g,\"nemesis_interval\":%g,\"nemesis_hold_min\":%g,"
	    "\"nemesis_gap\":%g,\"partition_onset_ms\":%" PRId64
	    ",\"targets\":\"%s\","
	    "\"shapes\":\"%s\",\"netns\":%s,\"participants\":%u}",
	    b.total, cfg->clients, cfg->rate, cfg->duration,
	    (double)b.interval_ms / 1e3, (double)b.hold_min_ms / 1e3,
	    (double)(b.gap_ms ? b.gap_ms : b.interval_ms) / 1e3, cfg->onset_ms,
	    cfg->targets, b.shapes, hx_cluster_is_netns(cl) ? "true" : "false",
	    hx_cluster_topo(cl)->nparts);
	char *ptxt = hx_sb_take(&params);
	hx_run_info ri = { .mode = cfg->mode,
		.nemesis = kinds ? cfg->nemesis : "none",
		.seed = b.seed,
		.params = ptxt };
	dtx_err rv =
	    ptxt ? hx_results_run_begin(db, &ri, &b.run_id) : DTX_ENOMEM;
	dtx_free(ptxt);
	if (rv != DTX_OK) {
		fprintf(stderr, "dtx bank: cannot record the run: %s\n",
		    hx_results_errmsg(db));
		goto out;
	}
	b.h = hx_history_new();
	if (b.h == NULL)
		goto out;
	hx_nem_cfg nc = { .kinds = kinds,
		.shapes = shapes,
		.target = target,
		.seed = b.seed,
		.interval_ms = b.interval_ms,
		.hold_min_ms = b.hold_min_ms,
		.gap_ms = b.gap_ms,
		.onset_max_ms = (uint32_t)cfg->onset_ms,
		.duration_ms = (uint64_t)(cfg->duration * 1000),
		.max_offset_ms = cfg->max_offset_ms,
		.topo = hx_cluster_topo(cl) };
	if (kinds != 0 && hx_nemesis_plan(&nc, &plan, &nplan) != DTX_OK) {
		fprintf(stderr,
		    "dtx bank: no fault schedule: --nemesis-targets "
		    "%s selects no node of this cluster\n",
		    cfg->targets);
		rc = HX_EXIT_USAGE;
		goto out;
	}

	// The workload.
	if (!cfg->json)
		printf("dtx bank: run %" PRId64 ", %s, %" PRId64
		       " clients, %.0f s, nemesis %s, seed %" PRIu64 "%s\n",
		    b.run_id, cfg->mode, cfg->clients, cfg->duration,
		    kinds ? cfg->nemesis : "none", b.seed,
		    kinds & HX_NEM_PARTITION && !hx_cluster_is_netns(cl) &&
		            cc == NULL
		        ? " (partitions simulated in-process)"
		        : "");
	if (!cfg->json && kinds != 0)
		print_schedule(&b, kinds);
	atomic_init(&b.stop, false);
	atomic_init(&b.next_proc, cfg->clients);
	ws = dtx_calloc((size_t)cfg->clients, sizeof(*ws));
	if (ws == NULL)
		goto out;
	b.t0 = dtx_mono_ns();
	if (hx_nemesis_start(cl, cc, own, b.conn, b.h, plan, nplan, &b.nm) !=
	    DTX_OK)
		goto out;
	hx_progress *prog = NULL;
	hx_progress_start(
	    stderr, (uint64_t)(cfg->duration * 1000), sample, &b, &prog);
	int started = 0;
	for (; started < cfg->clients; started++) {
		ws[started].b = &b;
		ws[started].idx = started;
		if (pthread_create(
		        &ws[started].th, NULL, client, &ws[started]) != 0)
			break;
	}
	uint64_t end = b.t0 + (uint64_t)(cfg->duration * 1e9);
	while (dtx_mono_ns() < end)
		dtx_sleep_ms(50);
	atomic_store(&b.stop, true);
	for (int i = 0; i < started; i++)
		pthread_join(ws[i].th, NULL);
	b.t_end = dtx_mono_ns();
	hx_progress_stop(prog);

	// Heal, recover, final reads, observations.
	hx_nemesis_stop(b.nm);
	uint64_t deadline =
	    dtx_mono_ns() + (uint64_t)cfg->recovery_s * 1000000000u;
	uint64_t in_doubt = await_recovery(&b, deadline);
	// Sagas still running (a restarted orchestrator resumes them) must
	// finish before the final reads can show the final state.
	if (b.saga && gather_saga_obs(&b, deadline, &sobs, &nsobs) != DTX_OK)
		goto out;
	int64_t fproc = atomic_fetch_add(&b.next_proc, 1);
	for (int got = 0, tries = 0; got < 2 && tries < 50; tries++) {
		if (do_read(&b, fproc, "final-read") >= 0)
			got++;
		else
			dtx_sleep_ms(200);
	}
	if (!b.saga && gather_txn_obs(&b, &obs, &nobs) != DTX_OK)
		goto out;

	// Check, store, report.
	hx_run_cfg rcfg = { .mode = cfg->mode,
		.bank = { .accounts = b.accts,
		    .naccounts = b.nacct,
		    .total = b.total,
		    .saga = b.saga } };
	if (hx_check_run(b.h, &rcfg, obs, nobs, sobs, nsobs, &v) != DTX_OK) {
		fprintf(stderr, "dtx bank: the checkers failed\n");
		goto out;
	}
	have_v = true;
	size_t startedk[HX_NEM_NKINDS], nem_errors;
	hx_nemesis_counts(b.nm, startedk, &nem_errors);
	if (hx_faults_from_history(b.h, &faults, &nfaults) != DTX_OK)
		goto out;
	double secs = (double)(b.t_end - b.t0) / 1e9;
	if (hx_results_add_ops(db, b.run_id, b.h) != DTX_OK ||
	    hx_results_add_faults(db, b.run_id, faults, nfaults) != DTX_OK ||
	    hx_results_add_txn_obs(db, b.run_id, obs, nobs) != DTX_OK ||
	    hx_results_add_saga_obs(db, b.run_id, sobs, nsobs) != DTX_OK ||
	    hx_results_add_metric(db, b.run_id, "ok_transfers_per_s",
	        secs > 0 ? (double)atomic_load(&b.ok_xfer) / secs : 0) !=
	        DTX_OK ||
	    hx_results_add_metric(db, b.run_id, "in_doubt_after_recovery",
	        (double)in_doubt) != DTX_OK ||
	    hx_results_run_finish(db, b.run_id, &v) != DTX_OK) {
		fprintf(stderr, "dtx bank: cannot store the run: %s\n",
		    hx_results_errmsg(db));
		goto out;
	}
	if (hx_results_report_dir(cfg->results, b.run_id, report_dir,
	        sizeof(report_dir)) != DTX_OK ||
	    hx_mkdirs(report_dir) != DTX_OK) {
		fprintf(
		    stderr, "dtx bank: cannot create the report directory\n");
		goto out;
	}
	copy_logs(cl, report_dir);
	if (hx_report_write(report_dir, b.run_id, b.h, faults, nfaults, &v) !=
	    DTX_OK)
		fprintf(stderr, "dtx bank: the report in %s is incomplete\n",
		    report_dir);
	report(&b, &v, startedk, kinds, nem_errors,
	    !hx_cluster_is_netns(cl) && cc == NULL, report_dir, in_doubt);
	rc = v.valid == HX_VALID_TRUE   ? HX_EXIT_OK
	    : v.valid == HX_VALID_FALSE ? HX_EXIT_INVALID
	                                : HX_EXIT_UNKNOWN;
out:
	if (b.nm != NULL) {
		hx_nemesis_stop(b.nm);
		hx_nemesis_free(b.nm);
	}
	if (own && cl != NULL)
		hx_cluster_stop_all(cl, 3000);
	if (have_v)
		hx_verdict_fini(&v);
	hx_faults_free(faults, nfaults);
	dtx_free(obs);
	dtx_free(sobs);
	dtx_free(ws);
	dtx_free(plan);
	dtx_free(b.recs);
	dtx_free(b.accts);
	hx_history_free(b.h);
	hx_results_close(db);
	hx_conn_close(b.conn);
	hx_compose_free(cc);
	hx_cluster_free(cl);
	pthread_mutex_destroy(&b.mtx);
	dtx_cfg_fini(bank_opts, NOPTS, &b.cfg);
	return rc;
}
