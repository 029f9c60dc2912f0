// SPDX-License-Identifier: MIT
//
// dtx bench saga: transfer sagas per second on a local cluster (the
// participants and dtx-saga) with fsync on. Each saga debits an account on
// one participant (kept >= 0) and credits one on another; a debit refused
// for insufficient funds makes the saga compensate, so the run also
// reports how often that happened, and it checks at the end that the
// total is conserved.

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "proto.h"

typedef struct bs_cfg {
	int64_t participants;
	int64_t clients;
	int64_t seconds;
	int64_t accounts;
	int64_t balance;
	int64_t max_amount;
	char *dir;
	bool json;
	bool insecure;
	int64_t client_batch;
	int64_t client_inflight;
	int64_t orchestrators;
} bs_cfg;

static const dtx_cfg_opt bs_opts[] = {
	{ "participants", DTX_CFG_INT, offsetof(bs_cfg, participants), 2, 16,
	    "3", "participant daemons" },
	{ "clients", DTX_CFG_INT, offsetof(bs_cfg, clients), 1, 1024, "64",
	    "concurrent client threads, each waiting for its saga" },
	{ "client-batch", DTX_CFG_INT, offsetof(bs_cfg, client_batch), 1,
	    PROTO_MAX_BATCH, "64",
	    "the clients share one connection whose messages carry up to "
	    "this many submissions (proto_batcher); 1: each client its own "
	    "connection, one message per saga" },
	{ "client-inflight", DTX_CFG_INT, offsetof(bs_cfg, client_inflight), 1,
	    64, "2",
	    "with --client-batch above 1: messages on the wire at once "
	    "(requests queue meanwhile and leave together as the next)" },
	{ "seconds", DTX_CFG_INT, offsetof(bs_cfg, seconds), 1, 3600, "10",
	    "how long to run sagas" },
	{ "orchestrators", DTX_CFG_INT, offsetof(bs_cfg, orchestrators), 1,
	    HX_COORDINATORS_MAX, "1",
	    "saga orchestrators, each with its own log; client i submits to "
	    "orchestrator i mod N (the CPU reported is theirs summed)" },
	{ "accounts", DTX_CFG_INT, offsetof(bs_cfg, accounts), 4, 1000000,
	    "1000", "bank accounts" },
	{ "balance", DTX_CFG_INT, offsetof(bs_cfg, balance), 0,
	    INT64_C(1000000000000), "100",
	    "initial balance of each account (small: some debits fail and "
	    "compensate)" },
	{ "max-amount", DTX_CFG_INT, offsetof(bs_cfg, max_amount), 1,
	    INT64_C(1000000000), "10", "transfer amounts are 1..this" },
	{ "dir", DTX_CFG_STR, offsetof(bs_cfg, dir), 0, 0, ".",
	    "where to create the cluster (a real disk, not tmpfs)" },
	{ "json", DTX_CFG_BOOL, offsetof(bs_cfg, json), 0, 0, "false",
	    "print one JSON object" },
	{ "insecure", DTX_CFG_BOOL, offsetof(bs_cfg, insecure), 0, 0, "false",
	    "plaintext links, no certificates (default: mutual TLS)" },
};
#define NBS_OPTS (sizeof(bs_opts) / sizeof(bs_opts[0]))

typedef struct bs_run {
	const bs_cfg *cfg;
	const bench_env *env; // the cluster, its clients and accounts
	uint64_t nonce; // makes gids unique across runs
} bs_run;

typedef struct bs_worker {
	bench_client c; // first: see bench_fleet
	// The saga being built or in flight.
	uint64_t seq;
	char kf[32], kt[32], gid[64];
	proto_saga_step st[2];
	proto_msg req;
} bs_worker;

// Creates the k-th participant's accounts with STEP actions of PUT ops,
// sent over cl (which speaks as the orchestrator).
static dtx_err
init_owned(bs_run *r, uint32_t k, proto_client *cl)
{
	char keys[PROTO_MAX_OPS][32];
	uint8_t vals[8];
	proto_op ops[PROTO_MAX_OPS];
	for (int i = 0; i < 8; i++)
		vals[i] = (uint8_t)((uint64_t)r->cfg->balance >> (8 * i));
	for (size_t a = 0, b = 0; a < r->env->nowned[k]; b++) {
		uint32_t n = 0;
		memset(ops, 0, sizeof(ops));
		for (; n < PROTO_MAX_OPS && a < r->env->nowned[k]; n++, a++) {
			hx_acct_key(
			    keys[n], sizeof(keys[n]), r->env->owned[k][a]);
			ops[n].kind = PROTO_OP_PUT;
			ops[n].key.p = (uint8_t *)keys[n];
			ops[n].key.n = (uint32_t)strlen(keys[n]);
			ops[n].value.p = vals;
			ops[n].value.n = 8;
		}
		char gid[64];
		snprintf(gid, sizeof(gid), "init-%" PRIx64 "-%u-%zu", r->nonce,
		    k, b);
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_STEP);
		req.u.step.gid = gid;
		req.u.step.phase = PROTO_PHASE_ACTION;
		req.u.step.n_ops = n;
		req.u.step.ops = ops;
		dtx_err rv = bench_call(cl, &req, &rep, 20000);
		if (rv != DTX_OK)
			return rv;
		bool ok = rep.hdr.type == PROTO_STEP_REPLY &&
		    rep.u.step_reply.result == PROTO_STEP_OK;
		proto_msg_free(&rep);
		if (!ok)
			return DTX_EIO;
	}
	return DTX_OK;
}

// Creates the accounts on their owners (the coordinator is not part of a
// saga cluster). Participants take STEP only from the orchestrator, so
// these connections speak as its node id (over TLS with its certificate
// from the cluster's certs/: the bench owns the cluster).
static dtx_err
init_accounts(void *ctx)
{
	bs_run *r = ctx;
	const dtx_node *sn = dtx_topo_first(r->env->topo, DTX_ROLE_SAGA);
	if (sn == NULL)
		return DTX_EINVAL;
	dtx_err rv = DTX_OK;
	proto_tls *tls = NULL;
	if (r->env->tls != NULL) {
		char dir[sizeof(r->env->dir) + 8], err[512];
		snprintf(dir, sizeof(dir), "%s/certs", r->env->dir);
		rv = hx_certs_open(
		    dir, PROTO_ROLE_SAGA, sn->id, &tls, err, sizeof(err));
		if (rv != DTX_OK)
			fprintf(stderr, "dtx bench saga: %s\n", err);
	}
	for (uint32_t k = 0; k < r->env->nparts && rv == DTX_OK; k++) {
		const dtx_node *nd =
		    dtx_topo_find(r->env->topo, r->env->topo->parts[k]);
		proto_client *cl = NULL;
		rv = bench_open_client(nd->url, sn->id, tls, &cl);
		if (rv == DTX_OK)
			rv = init_owned(r, k, cl);
		proto_client_close(cl);
	}
	proto_tls_close(tls);
	return rv;
}

// Sums the accounts over every participant at one snapshot timestamp: the
// latest of their clocks, so that every finished write is in it.
static dtx_err
read_total(bs_run *r, proto_client **parts, int64_t *total)
{
	clk_ts ts = 0;
	int64_t sum = 0;
	for (uint32_t k = 0; k < r->env->nparts; k++) {
		proto_msg req, rep;
		proto_bytes none = { (uint8_t *)"-", 1 };
		proto_msg_init(&req, PROTO_READ);
		req.u.read.n_keys = 1;
		req.u.read.keys = &none;
		dtx_err rv = bench_call(parts[k], &req, &rep, 20000);
		if (rv != DTX_OK)
			return rv;
		if (rep.hdr.type == PROTO_READ_REPLY &&
		    rep.u.read_reply.ts > ts)
			ts = rep.u.read_reply.ts;
		proto_msg_free(&rep);
	}
	for (uint32_t k = 0; k < r->env->nparts; k++) {
		proto_msg req, rep;
		bool ok = false;
		for (int tries = 0; tries < 500 && !ok; tries++) {
			proto_msg_init(&req, PROTO_READ);
			req.u.read.ts = ts;
			dtx_err rv = bench_call(parts[k], &req, &rep, 20000);
			if (rv != DTX_OK)
				return rv;
			ok = rep.hdr.type == PROTO_READ_REPLY &&
			    rep.u.read_reply.status == PROTO_READ_OK;
			if (!ok) {
				proto_msg_free(&rep);
				dtx_sleep_ms(10);
			}
		}
		if (!ok)
			return DTX_EAGAIN;
		for (uint32_t i = 0; i < rep.u.read_reply.n_entries; i++) {
			const proto_entry *e = &rep.u.read_reply.entries[i];
			if (e->found && !e->is_bytes && e->key.n > 5 &&
			    memcmp(e->key.p, "acct:", 5) == 0)
				sum += e->ival;
		}
		proto_msg_free(&rep);
	}
	*total = sum;
	return DTX_OK;
}

// Builds w's next transfer saga in w->req.
static proto_msg *
next_saga(void *owner)
{
	bs_worker *w = owner;
	bs_run *r = w->c.ctx;
	uint32_t p, q;
	bench_pick_keys(
	    r->env, &w->c.seed, &p, &q, w->kf, w->kt, sizeof(w->kf));
	int64_t amount = 1 +
	    (int64_t)dtx_rand_below(&w->c.seed, (uint64_t)r->cfg->max_amount);
	memset(w->st, 0, sizeof(w->st));
	w->st[0].participant = r->env->topo->parts[p];
	hx_op_add(&w->st[0].action, w->kf, -amount, 0);
	hx_op_add(&w->st[0].compensate, w->kf, amount, INT64_MIN);
	w->st[1].participant = r->env->topo->parts[q];
	hx_op_add(&w->st[1].action, w->kt, amount, INT64_MIN);
	hx_op_add(&w->st[1].compensate, w->kt, -amount, INT64_MIN);
	snprintf(w->gid, sizeof(w->gid), "b%" PRIx64 "-%d-%" PRIu64, r->nonce,
	    w->c.id, w->seq++);
	proto_msg_init(&w->req, PROTO_SAGA_SUBMIT);
	w->req.u.saga_submit.gid = w->gid;
	w->req.u.saga_submit.n_steps = 2;
	w->req.u.saga_submit.steps = w->st;
	return &w->req;
}

// Counts the answer (rv, and *rep when rv is DTX_OK: consumed) of a
// saga that took ns.
static void
count_reply(void *owner, dtx_err rv, proto_msg *rep, uint64_t ns)
{
	bs_worker *w = owner;
	if (bench_tally_bad(&w->c.t, rv, rep, PROTO_SAGA_REPLY))
		return;
	// A compensated saga is a finished one: its latency counts too.
	bench_tally_outcome(&w->c.t, rep->u.saga_reply.outcome, ns, true);
	proto_msg_free(rep);
}

static int
run_bench(const void *arg)
{
	const bs_cfg *cfg = arg;
	int n = (int)cfg->clients;
	bench_run br;
	bs_run run;
	memset(&run, 0, sizeof(run));
	run.cfg = cfg;
	run.env = &br.env;
	run.nonce = dtx_wall_ns();

	int rc = bench_run_open_heads(&br, "dtx bench saga", cfg->dir,
	    cfg->participants, DTX_ROLE_SAGA, (uint32_t)cfg->orchestrators,
	    "warn", cfg->accounts, cfg->insecure, false, init_accounts, &run);
	if (rc != HX_EXIT_OK)
		goto out;
	proto_client **parts = br.env.parts;
	uint32_t nparts = br.env.nparts;
	int64_t calls0 = bench_heads_counter(&br.env, "step_calls");
	int64_t logsync0 = bench_heads_counter(&br.env, "log_syncs");
	int64_t partsync0 = 0;
	for (uint32_t k = 0; k < nparts; k++)
		partsync0 += bench_counter(parts[k], "wal_syncs");

	rc = bench_run_clients(&br, sizeof(bs_worker), n, &run, cfg->seconds,
	    cfg->client_batch, cfg->client_inflight, 30000, next_saga,
	    count_reply);
	if (rc != HX_EXIT_OK)
		goto out;
	uint64_t committed = br.sum.committed, aborted = br.sum.aborted;
	int64_t calls = bench_heads_counter(&br.env, "step_calls") - calls0;
	// fsyncs per saga show how well group commit batches: the saga log
	// forces 3 records per saga and each step's commit one.
	int64_t logsyncs = bench_heads_counter(&br.env, "log_syncs") - logsync0;
	int64_t partsyncs = -partsync0;
	for (uint32_t k = 0; k < nparts; k++)
		partsyncs += bench_counter(parts[k], "wal_syncs");

	// Every saga answered has ended; unknown ones may still run: wait
	// for the orchestrators to drain before checking conservation.
	for (int i = 0;
	     i < 300 && bench_heads_counter(&br.env, "in_flight") > 0; i++)
		dtx_sleep_ms(100);
	int64_t want = cfg->accounts * cfg->balance, have = 0;
	dtx_err rv = read_total(&run, parts, &have);
	bool conserved = rv == DTX_OK && have == want;

	uint64_t finished = committed + aborted;
	double sps = br.secs > 0 ? (double)finished / br.secs : 0;
	double cps = br.secs > 0 ? (double)committed / br.secs : 0;
	double comp_rate = finished ? (double)aborted / (double)finished : 0;
	if (cfg->json) {
		hx_json j;
		hx_json_begin(&j, stdout);
		hx_json_str(&j, "bench", "saga");
		hx_json_bool(&j, "tls", !cfg->insecure);
		hx_json_int(&j, "orchestrators", cfg->orchestrators);
		// What each orchestrator counts committed since it started.
		hx_json_arr_begin(&j, "committed_by_orchestrator");
		for (uint32_t k = 0; k < br.env.nheads; k++)
			hx_json_int(&j, NULL,
			    bench_counter(br.env.heads[k], "committed"));
		hx_json_arr_end(&j);
		bench_json_counts(&j, cfg->participants, cfg->clients,
		    cfg->accounts, br.secs, &br.sum, "compensated");
		hx_json_num(&j, "saga_per_s", sps);
		hx_json_num(&j, "committed_per_s", cps);
		hx_json_num(&j, "p50_ms", br.p50_ms);
		hx_json_num(&j, "p99_ms", br.p99_ms);
		hx_json_num(&j, "compensated_rate", comp_rate);
		hx_json_num(&j, "client_batch", (double)cfg->client_batch);
		hx_json_num(
		    &j, "client_inflight", (double)cfg->client_inflight);
		hx_json_num(&j, "step_calls_per_saga",
		    finished ? (double)calls / (double)finished : 0);
		hx_json_num(&j, "saga_log_fsyncs_per_saga",
		    finished ? (double)logsyncs / (double)finished : 0);
		hx_json_num(&j, "participant_fsyncs_per_saga",
		    finished ? (double)partsyncs / (double)finished : 0);
		bench_cpu_json(
		    &j, "saga", "orchestrator", &br.cpu0, &br.cpu1, finished);
		hx_json_bool(&j, "conserved", conserved);
		hx_json_end(&j);
	} else {
		printf("dtx bench saga: %" PRId64 " participants, %" PRId64
		       " orchestrators, %d clients, %" PRId64
		       " accounts, fsync on, %s, %.1f s\n",
		    cfg->participants, cfg->orchestrators, n, cfg->accounts,
		    cfg->insecure ? "plaintext (--insecure)" : "mutual TLS",
		    br.secs);
		printf("  %" PRIu64 " committed, %" PRIu64
		       " compensated (%.2f%%), %" PRIu64 " unknown, %" PRIu64
		       " errors\n",
		    committed, aborted, comp_rate * 100, br.sum.unknown,
		    br.sum.errors);
		printf("  %.0f sagas/s (%.0f committed/s); latency ms p50 %.2f "
		       "p99 %.2f\n",
		    sps, cps, br.p50_ms, br.p99_ms);
		printf("  fsyncs per saga: saga log %.2f, participants %.2f\n",
		    finished ? (double)logsyncs / (double)finished : 0,
		    finished ? (double)partsyncs / (double)finished : 0);
		bench_cpu_print(
		    "saga", "orchestrator", &br.cpu0, &br.cpu1, finished);
		printf("  total %s (%" PRId64 " of %" PRId64 ")\n",
		    conserved ? "conserved" : "NOT CONSERVED", have, want);
	}
	bench_say_errors(br.what, br.sum.errors, br.sum.first_err);
	rc = finished > 0 && conserved ? HX_EXIT_OK : HX_EXIT_FAILURE;
out:
	bench_run_close(&br, false);
	return rc;
}

int
bench_saga(int argc, char **argv)
{
	bs_cfg cfg;
	return bench_main("dtx bench saga", bs_opts, NBS_OPTS, &cfg,
	    sizeof(cfg), argc, argv, run_bench);
}
