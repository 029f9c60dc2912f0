// SPDX-License-Identifier: MIT
//
// The bank workload's clients and observations: client threads that make
// random transfers (2PC/3PC TXNs or sagas) and whole-bank snapshot reads,
// recording each as a history op, and the sweeps that ask the cluster
// afterwards what became of every transfer.

#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "harness_int.h"

typedef struct worker {
	hx_bankrun *b;
	int idx;
	pthread_t th;
} worker;

void
hx__bank_add_rec(hx_bankrun *b, const hx__xrec *r)
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
hist(hx_bankrun *b, int64_t proc, hx_op_type t, const char *f, hx_sb *sb,
    const char *err)
{
	char *v = sb ? hx_sb_take(sb) : NULL;
	hx_history_add(b->h, proc, t, f, v, err);
	dtx_free(v);
}

// A snapshot read recorded as op f by process proc, at or after floor
// (the commit timestamp of the client's own last ok transfer; 0: none).
// Read-your-writes: the cluster picks the timestamp (the first
// participant's now); when that is below floor, which happens when the
// participant's clock is behind the coordinator's, the read is taken
// again at floor. It costs a second round trip on those reads only.
//
// The value names the participant that chose the timestamp ("by"), when
// one did, so the session checker can hold each node's timestamps to
// real-time order; with participants in skip (down for good) they are
// not asked and the value lists them as "unreadable_nodes".
static int64_t
read_at(hx_bankrun *b, int64_t proc, const char *f, clk_ts floor, uint32_t skip)
{
	hx_snapshot s;
	uint32_t tmo = (uint32_t)b->conf->timeout_ms;
	hist(b, proc, HX_OP_INVOKE, f, NULL, NULL);
	dtx_err rv = hx_snapshot_read_skip(b->conn, 0, tmo, skip, &s);
	if (rv == DTX_OK && s.ts < floor) {
		hx_snapshot_fini(&s);
		rv = hx_snapshot_read_skip(b->conn, floor, tmo, skip, &s);
	}
	if (rv != DTX_OK) {
		// A read changes nothing: it certainly did not happen.
		hist(b, proc, HX_OP_FAIL, f, NULL, dtx_errname(rv));
		atomic_fetch_add(&b->fail, 1);
		return -1;
	}
	hx_sb sb = { 0 }, js = { 0 };
	hx_snapshot_json(&s, &js);
	char *snap = hx_sb_take(&js);
	hx_sb_printf(&sb, "{");
	if (s.picked_by >= 0)
		hx_sb_printf(&sb, "\"by\":%" PRId64 ",", s.picked_by);
	if (skip != 0) {
		hx_sb_printf(&sb, "\"unreadable_nodes\":[");
		for (uint32_t i = 0, first = 1; i < 32; i++)
			if (skip & (1u << i)) {
				hx_sb_printf(&sb, "%s%u", first ? "" : ",", i);
				first = 0;
			}
		hx_sb_printf(&sb, "],");
	}
	hx_sb_printf(&sb, "%s", snap ? snap + 1 : "}");
	dtx_free(snap);
	hist(b, proc, HX_OP_OK, f, &sb, NULL);
	atomic_fetch_add(&b->ok, 1);
	int64_t total = s.total;
	hx_snapshot_fini(&s);
	return total;
}

int64_t
hx__bank_read(hx_bankrun *b, int64_t proc, const char *f)
{
	// A participant killed for good cannot be read: the final reads
	// take the others and say which are missing.
	uint32_t skip =
	    strcmp(f, "final-read") == 0 ? hx_nemesis_gone(b->nm) : 0;
	return read_at(b, proc, f, 0, skip);
}

// The setup read: the first op of the history, by process conf->clients
// (the clients are 0..clients-1 and later processes come after it). It is
// checked like every other read, against the bank the harness wrote.
dtx_err
hx__bank_setup_read(hx_bankrun *b)
{
	for (int tries = 0; tries < 50; tries++) {
		if (hx__bank_read(b, b->conf->clients, "read") >= 0)
			return DTX_OK;
		dtx_sleep_ms(200);
	}
	return DTX_EIO;
}

// One transfer; returns the process to continue as.
static int64_t
do_transfer(hx_bankrun *b, int64_t proc, uint64_t *rng, uint64_t *seq, int idx,
    clk_ts *last)
{
	size_t fi = dtx_rand_below(rng, b->out.nacct);
	size_t ti = dtx_rand_below(rng, b->out.nacct - 1);
	if (ti >= fi)
		ti++;
	int64_t from = b->accts[fi], to = b->accts[ti];
	int64_t amount = 1 + (int64_t)dtx_rand_below(rng, 5);
	hx__xrec r = { .from = from, .to = to };
	hx_sb sb = { 0 };
	hx_xfer x;

	if (b->saga)
		snprintf(r.gid, sizeof(r.gid), "r%" PRId64 "-c%d-%" PRIu64,
		    b->out.run_id, idx, (*seq)++);
	// The client chooses the txid (64 random bits; the coordinator
	// refuses one it still holds), so a transfer that times out can be
	// resolved after the run. 0 (no randomness) lets the coordinator
	// choose, as before.
	else if (dtx_random_u64(&r.txid) != DTX_OK)
		r.txid = 0;
	hx_sb_printf(&sb,
	    "{\"from\":%" PRId64 ",\"to\":%" PRId64 ",\"amount\":%" PRId64
	    ",\"mode\":\"%s\"",
	    from, to, amount, b->conf->mode);
	if (b->saga)
		hx_sb_printf(&sb, ",\"gid\":\"%s\"}", r.gid);
	else if (r.txid != 0)
		hx_sb_printf(&sb, ",\"txid\":%" PRIu64 "}", r.txid);
	else
		hx_sb_printf(&sb, "}");
	hist(b, proc, HX_OP_INVOKE, "transfer", &sb, NULL);

	if (b->saga)
		hx_saga_transfer(b->conn, r.gid, from, to, amount,
		    (uint32_t)b->conf->timeout_ms, &x);
	else
		hx_transfer_as(b->conn, b->mode, r.txid, from, to, amount,
		    (uint32_t)b->conf->timeout_ms, &x);

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
	    from, to, amount, b->conf->mode);
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
	r.coord = x.coord;
	if (r.txid != 0 || b->saga)
		hx__bank_add_rec(b, &r);
	return hx__bank_tally(b, t, x.cts, last, proc);
}

int64_t
hx__bank_tally(
    hx_bankrun *b, hx_op_type t, clk_ts cts, clk_ts *last, int64_t proc)
{
	if (t == HX_OP_OK) {
		if (cts > *last)
			*last = cts;
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
	hx_bankrun *b = w->b;
	uint64_t rng =
	    b->conf->seed * UINT64_C(0x9e3779b97f4a7c15) + (uint64_t)w->idx;
	uint64_t seq = 0;
	int64_t proc = w->idx;
	clk_ts last = 0; // commit ts of this client's last ok transfer
	uint64_t period_ns = b->conf->rate > 0
	    ? (uint64_t)((double)b->conf->clients / b->conf->rate * 1e9)
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
		if (b->list)
			proc = hx__la_step(b, proc, &rng, &last);
		else if (dtx_rand_below(&rng, 5) == 0)
			read_at(b, proc, "read", last, 0);
		else
			proc = do_transfer(b, proc, &rng, &seq, w->idx, &last);
	}
	return NULL;
}

static void
sample(void *arg, hx_progress_sample *s)
{
	hx_bankrun *b = arg;
	s->ok = atomic_load(&b->ok);
	s->fail = atomic_load(&b->fail);
	s->info = atomic_load(&b->info);
	if (b->nm != NULL)
		hx_nemesis_current(b->nm, s->fault, sizeof(s->fault));
}

dtx_err
hx__bank_clients(hx_bankrun *b)
{
	const hx_bankrun_conf *cfg = b->conf;
	atomic_init(&b->stop, false);
	atomic_init(&b->next_proc, cfg->clients + 1);
	worker *ws = dtx_calloc((size_t)cfg->clients, sizeof(*ws));
	if (ws == NULL)
		return DTX_ENOMEM;
	b->t0 = dtx_mono_ns();
	dtx_err rv = hx_nemesis_start(b->cl, b->cc, cfg->connect == NULL,
	    b->conn, b->h, b->plan, b->nplan, &b->nm);
	if (rv != DTX_OK) {
		dtx_free(ws);
		return rv;
	}
	hx_progress *prog = NULL;
	hx_progress_start(
	    stderr, (uint64_t)(cfg->duration * 1000), sample, b, &prog);
	int started = 0;
	for (; started < cfg->clients; started++) {
		ws[started].b = b;
		ws[started].idx = started;
		if (pthread_create(
		        &ws[started].th, NULL, client, &ws[started]) != 0)
			break;
	}
	uint64_t end = b->t0 + (uint64_t)(cfg->duration * 1e9);
	while (dtx_mono_ns() < end && !atomic_load(&b->interrupted))
		dtx_sleep_ms(50);
	atomic_store(&b->stop, true);
	for (int i = 0; i < started; i++)
		pthread_join(ws[i].th, NULL);
	b->t_end = dtx_mono_ns();
	hx_progress_stop(prog);
	dtx_free(ws);
	return DTX_OK;
}

dtx_err
hx__bank_logs(hx_bankrun *b, hx_node_log **out, size_t *n)
{
	const dtx_topo *topo = hx_cluster_topo(b->cl);
	hx_node_log *l = dtx_calloc(topo->n + 1, sizeof(*l));
	size_t k = 0;
	if (l == NULL)
		return DTX_ENOMEM;
	for (uint32_t i = 0; i < topo->n; i++) {
		const dtx_node *nd = &topo->nodes[i];
		if (nd->role == DTX_ROLE_CLIENT)
			continue;
		l[k].node = nd->id;
		l[k].path = dtx_strdup(hx_cluster_log(b->cl, nd->id));
		if (l[k++].path == NULL) {
			hx_node_logs_free(l, k);
			return DTX_ENOMEM;
		}
	}
	// A cluster started on other hosts or in containers (--connect to
	// one that dtx did not start here) has no node log on this machine:
	// the logs checker then does not run, rather than judging nothing.
	// A log missing beside others that exist is still reported.
	bool any = false;
	for (size_t i = 0; i < k && !any; i++)
		any = access(l[i].path, F_OK) == 0;
	if (!any) {
		hx_node_logs_free(l, k);
		l = NULL;
		k = 0;
	}
	// The refusals a corrupt fault provoked are expected.
	if (hx_node_logs_expect(b->h, l, k) != DTX_OK) {
		hx_node_logs_free(l, k);
		return DTX_ENOMEM;
	}
	*out = l;
	*n = k;
	return DTX_OK;
}

uint64_t
hx__bank_await_recovery(hx_bankrun *b, uint64_t deadline)
{
	const dtx_topo *topo = hx_conn_topo(b->conn);
	uint64_t left = 0;
	for (;;) {
		bool all = true;
		left = 0;
		for (uint32_t i = 0; i < topo->n; i++) {
			const dtx_node *nd = &topo->nodes[i];
			// A node killed for good never answers.
			if (nd->role == DTX_ROLE_CLIENT ||
			    (hx_nemesis_gone(b->nm) & (1u << nd->id)))
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
		if (all || dtx_mono_ns() > deadline ||
		    atomic_load(&b->interrupted))
			return left;
		dtx_sleep_ms(200);
	}
}

hx_txn_outcome
hx__txn_outcome_of(proto_txn_state st, bool coordinator)
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
		// forgot it), so it never applied it. The coordinator's
		// ABORTED is presumed abort: it holds no record, which it
		// also says of a commit that ended and was forgotten.
		return coordinator ? HX_TXN_PRESUMED_ABORTED : HX_TXN_ABORTED;
	}
}

// STATUS of txid at node id into *o, within sweep sw; *cts gets the
// commit timestamp the node reported (0: none).
static void
observe(hx_bankrun *b, hx__sweep *sw, uint32_t id, bool coordinator,
    uint64_t txid, hx_txn_obs *o, clk_ts *cts)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_STATUS);
	req.u.txid.txid = txid;
	o->txid = txid;
	o->node = (int32_t)id;
	o->outcome = HX_TXN_UNKNOWN;
	*cts = 0;
	dtx_err rv = hx__sweep_call(sw, b->conn, id, &req, &rep, 2000);
	if (rv == DTX_EREFUSED)
		proto_msg_free(&rep);
	if (rv != DTX_OK)
		return;
	if (rep.hdr.type == PROTO_STATUS_REPLY) {
		o->outcome =
		    hx__txn_outcome_of(rep.u.status_reply.state, coordinator);
		*cts = rep.u.status_reply.commit_ts;
	}
	proto_msg_free(&rep);
}

// Names on stderr the nodes sweep sw gave up on, and adds them to
// b->out.unanswered.
static void
lost_nodes(hx_bankrun *b, const hx__sweep *sw)
{
	if (sw->lost == 0)
		return;
	b->out.unanswered |= sw->lost;
	fprintf(stderr, "dtx bank: %s\n", sw->why);
}

// The STATUS sweep's deadline: a healthy node answers a STATUS in about
// a millisecond, so 120 s plus 10 ms a call leaves ample room under load
// and sanitizers while still ending a sweep that crawls.
#define SWEEP_BASE_MS 120000u
#define SWEEP_PER_CALL_MS 10u

// Every transfer with a txid, timed-out ones included (their txid is the
// client's own), is asked about at both participants and at the
// coordinator that ran it.
dtx_err
hx__bank_txn_obs(hx_bankrun *b, hx_bankrun_err *e)
{
	const dtx_topo *topo = hx_conn_topo(b->conn);
	size_t per = HX__XREC_PARTS + 1;
	hx_txn_obs *o = dtx_calloc(b->nrec * per + 1, sizeof(*o));
	hx_txn_cts *ct = dtx_calloc(b->nrec * per + 1, sizeof(*ct));
	size_t n = 0, nct = 0;
	// A node killed for good is not asked (each call would wait out its
	// timeout): its observations stay unknown.
	uint32_t gone = hx_nemesis_gone(b->nm);
	if (o == NULL || ct == NULL) {
		dtx_free(o);
		dtx_free(ct);
		return DTX_ENOMEM;
	}
	hx__sweep sw;
	hx__sweep_init(&sw, "final STATUS sweep",
	    SWEEP_BASE_MS + (uint64_t)b->nrec * per * SWEEP_PER_CALL_MS);
	for (size_t i = 0; i < b->nrec && !atomic_load(&b->interrupted) &&
	     !hx__sweep_over(&sw);
	     i++) {
		const hx__xrec *r = &b->recs[i];
		char kf[48], kt[48];
		if (r->txid == 0)
			continue;
		hx_acct_key(kf, sizeof(kf), r->from);
		hx_acct_key(kt, sizeof(kt), r->to);
		uint32_t p[HX__XREC_PARTS + 1] = { dtx_topo_route(
			                               topo, kf, strlen(kf)),
			dtx_topo_route(topo, kt, strlen(kt)) };
		uint32_t np = p[1] == p[0] ? 1 : 2;
		if (r->nparts > 0) {
			np = r->nparts;
			memcpy(p, r->parts, np * sizeof(p[0]));
		}
		bool has_co = r->coord != UINT32_MAX;
		if (has_co)
			p[np++] = r->coord;
		for (uint32_t k = 0; k < np; k++) {
			bool is_co = has_co && k + 1 == np;
			clk_ts cts = 0;
			uint32_t id = p[k];
			if (id < 32 && (gone & (1u << id)))
				o[n++] = (hx_txn_obs) { .txid = r->txid,
					.node = (int32_t)id,
					.outcome = HX_TXN_UNKNOWN };
			else
				observe(
				    b, &sw, id, is_co, r->txid, &o[n++], &cts);
			if (cts != 0)
				ct[nct++] = (hx_txn_cts) { r->txid,
					o[n - 1].node, cts };
		}
	}
	if (hx__sweep_over(&sw)) {
		// The verdict would rest on observations never made.
		snprintf(e->msg, sizeof(e->msg), "%s", sw.why);
		dtx_free(o);
		dtx_free(ct);
		return sw.err;
	}
	lost_nodes(b, &sw);
	// Decisions by hand at any participant, so that a hazard is a
	// heuristic hazard in the verdict, not an unexplained split.
	dtx_err rv = hx_txn_heur_obs(b->conn, true, &o, &n);
	if (rv != DTX_OK) {
		dtx_free(o);
		dtx_free(ct);
		return rv;
	}
	b->obs = o;
	b->nobs = n;
	b->cts = ct;
	b->ncts = nct;
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

dtx_err
hx__bank_saga_obs(hx_bankrun *b, uint64_t deadline, hx_bankrun_err *e)
{
	hx_saga_obs *o = dtx_calloc(b->nrec + 1, sizeof(*o));
	size_t n = 0;
	if (o == NULL)
		return DTX_ENOMEM;
	hx__sweep sw;
	hx__sweep_init(&sw, "final SAGA_STATUS sweep",
	    SWEEP_BASE_MS + (uint64_t)b->nrec * SWEEP_PER_CALL_MS);
	for (size_t i = 0; i < b->nrec && !hx__sweep_over(&sw); i++) {
		const hx__xrec *r = &b->recs[i];
		proto_saga_state st = PROTO_SAGA_UNKNOWN;
		int32_t fs = -1;
		dtx_err rv;
		uint32_t sg = hx_conn_saga_for(b->conn, r->gid);
		if (hx__sweep_lost(&sw, sg))
			continue; // its orchestrator was given up on: unknown
		// Sagas still running are given until the deadline to finish.
		for (;;) {
			uint64_t t = dtx_mono_ns();
			rv = hx_saga_status(b->conn, r->gid, &st, &fs,
			    o[n].comp_ts, HX_SAGA_COMP_STEPS);
			bool done = rv == DTX_OK && st != PROTO_SAGA_RUNNING &&
			    st != PROTO_SAGA_COMPENSATING;
			if (!hx__sweep_note(&sw, sg, t, rv) || done ||
			    dtx_mono_ns() > deadline ||
			    atomic_load(&b->interrupted))
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
	if (hx__sweep_over(&sw)) {
		snprintf(e->msg, sizeof(e->msg), "%s", sw.why);
		dtx_free(o);
		return sw.err;
	}
	lost_nodes(b, &sw);
	b->sobs = o;
	b->nsobs = n;
	return DTX_OK;
}
