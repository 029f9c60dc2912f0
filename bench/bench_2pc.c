// SPDX-License-Identifier: MIT
//
// dtx bench 2pc: distributed bank transfers per second on a local cluster
// with fsync on, against the RPC ceiling measured in the same run. Every
// transfer moves money between accounts on two different participants, so
// each is a real two-participant 2PC (or 3PC) transaction: PREPAREs
// forced at both participants, the COMMIT record forced at the
// coordinator, COMMITs forced at both participants.

#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "bench.h"
#include "proto.h"

typedef struct b2_cfg {
	char *mode;
	int64_t participants;
	int64_t clients;
	int64_t seconds;
	int64_t accounts;
	int64_t rpc_seconds;
	char *dir;
	bool json;
	bool keep;
	char *log_level;
	bool insecure;
	int64_t client_batch;
	int64_t client_inflight;
	int64_t coordinators;
	char *coordinator; // where: auto, daemon or embedded
} b2_cfg;

static const dtx_cfg_opt b2_opts[] = {
	{ "mode", DTX_CFG_STR, offsetof(b2_cfg, mode), 0, 0, "2pc",
	    "2pc, 3pc or pc" },
	{ "participants", DTX_CFG_INT, offsetof(b2_cfg, participants), 2, 16,
	    "3", "participant daemons" },
	{ "clients", DTX_CFG_INT, offsetof(b2_cfg, clients), 1, 1024, "64",
	    "concurrent client threads, each waiting for its transfer" },
	{ "client-batch", DTX_CFG_INT, offsetof(b2_cfg, client_batch), 1,
	    PROTO_MAX_BATCH, "64",
	    "the clients share one connection whose messages carry up to "
	    "this many transfers (proto_batcher); 1: each client its own "
	    "connection, one message per transfer" },
	{ "client-inflight", DTX_CFG_INT, offsetof(b2_cfg, client_inflight), 1,
	    64, "2",
	    "with --client-batch above 1: messages on the wire at once "
	    "(requests queue meanwhile and leave together as the next)" },
	{ "seconds", DTX_CFG_INT, offsetof(b2_cfg, seconds), 1, 3600, "10",
	    "how long to run transfers" },
	{ "coordinators", DTX_CFG_INT, offsetof(b2_cfg, coordinators), 1,
	    HX_COORDINATORS_MAX, "1",
	    "coordinator daemons, each with its own log; client i drives "
	    "coordinator i mod N (the CPU reported is theirs summed)" },
	{ "coordinator", DTX_CFG_STR, offsetof(b2_cfg, coordinator), 0, 0,
	    "auto",
	    "where the coordinator runs: daemon (its own process, the "
	    "clients reach it over the network), embedded (in the bench's "
	    "process, the clients call it directly: pc only, whose "
	    "coordinator holds nothing that must outlive it) or auto "
	    "(embedded for pc with one coordinator, else daemon)" },
	{ "accounts", DTX_CFG_INT, offsetof(b2_cfg, accounts), 4, 1000000,
	    "1000", "bank accounts" },
	{ "rpc-seconds", DTX_CFG_INT, offsetof(b2_cfg, rpc_seconds), 1, 3600,
	    "3", "how long to measure the RPC ceiling" },
	{ "dir", DTX_CFG_STR, offsetof(b2_cfg, dir), 0, 0, ".",
	    "where to create the cluster (a real disk, not tmpfs)" },
	{ "json", DTX_CFG_BOOL, offsetof(b2_cfg, json), 0, 0, "false",
	    "print one JSON object" },
	{ "keep", DTX_CFG_BOOL, offsetof(b2_cfg, keep), 0, 0, "false",
	    "leave the stopped cluster's directory (logs, data) in place" },
	{ "log-level", DTX_CFG_STR, offsetof(b2_cfg, log_level), 0, 0, "warn",
	    "the daemons' log level" },
	{ "insecure", DTX_CFG_BOOL, offsetof(b2_cfg, insecure), 0, 0, "false",
	    "plaintext links, no certificates (default: mutual TLS)" },
};
#define NB2_OPTS (sizeof(b2_opts) / sizeof(b2_opts[0]))

#define INIT_BALANCE INT64_C(1000000000)

typedef struct b2_run {
	const b2_cfg *cfg;
	const bench_env *env; // the cluster, its clients and accounts
	proto_mode mode;
} b2_run;

typedef struct b2_worker {
	bench_client c; // first: see bench_fleet
	char why[128]; // the first abort reason seen
	// The transfer being built or in flight.
	char kf[32], kt[32];
	proto_op ops[2];
	proto_msg req;
} b2_worker;

// Counts the "acct:" keys a participant holds (READ of all keys now,
// retried while blocked).
static dtx_err
count_accounts(proto_client *cl, size_t *n)
{
	for (int tries = 0; tries < 200; tries++) {
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_READ);
		dtx_err rv = bench_call(cl, &req, &rep, 10000);
		if (rv != DTX_OK)
			return rv;
		bool ok = rep.hdr.type == PROTO_READ_REPLY &&
		    rep.u.read_reply.status == PROTO_READ_OK;
		size_t k = 0;
		for (uint32_t i = 0; ok && i < rep.u.read_reply.n_entries;
		     i++) {
			const proto_entry *e = &rep.u.read_reply.entries[i];
			if (e->found && e->key.n > 5 &&
			    memcmp(e->key.p, "acct:", 5) == 0)
				k++;
		}
		proto_msg_free(&rep);
		if (ok) {
			*n = k;
			return DTX_OK;
		}
		dtx_sleep_ms(20);
	}
	return DTX_EAGAIN;
}

// Creates the accounts with PUT transactions unless some exist (so that
// running it twice is harmless).
static dtx_err
init_accounts(void *ctx)
{
	b2_run *r = ctx;
	size_t have = 0;
	for (uint32_t k = 0; k < r->env->nparts; k++) {
		size_t n;
		dtx_err rv = count_accounts(r->env->parts[k], &n);
		if (rv != DTX_OK)
			return rv;
		have += n;
	}
	if (have > 0)
		return DTX_OK;
	char keys[PROTO_MAX_OPS][32];
	uint8_t vals[PROTO_MAX_OPS][8];
	proto_op ops[PROTO_MAX_OPS];
	for (int64_t a = 0; a < r->cfg->accounts;) {
		uint32_t k = 0;
		memset(ops, 0, sizeof(ops));
		for (; k < PROTO_MAX_OPS && a < r->cfg->accounts; k++, a++) {
			hx_acct_key(keys[k], sizeof(keys[k]), a);
			for (int i = 0; i < 8; i++)
				vals[k][i] = (uint8_t)((uint64_t)INIT_BALANCE >>
				    (8 * i));
			ops[k].kind = PROTO_OP_PUT;
			ops[k].key.p = (uint8_t *)keys[k];
			ops[k].key.n = (uint32_t)strlen(keys[k]);
			ops[k].value.p = vals[k];
			ops[k].value.n = 8;
		}
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_TXN);
		req.u.txn.mode = PROTO_MODE_2PC;
		req.u.txn.n_ops = k;
		req.u.txn.ops = ops;
		dtx_err rv = bench_call(r->env->head, &req, &rep, 20000);
		if (rv != DTX_OK)
			return rv;
		bool ok = rep.hdr.type == PROTO_TXN_REPLY &&
		    rep.u.txn_reply.outcome == PROTO_COMMITTED;
		proto_msg_free(&rep);
		if (!ok)
			return DTX_EIO;
	}
	return DTX_OK;
}

// Builds w's next transfer in w->req.
static proto_msg *
next_transfer(void *owner)
{
	b2_worker *w = owner;
	b2_run *r = w->c.ctx;
	uint32_t p, q;
	bench_pick_keys(
	    r->env, &w->c.seed, &p, &q, w->kf, w->kt, sizeof(w->kf));
	int64_t amount = 1 + (int64_t)dtx_rand_below(&w->c.seed, 10);
	hx_op_add(&w->ops[0], w->kf, -amount, 0);
	hx_op_add(&w->ops[1], w->kt, amount, 0);
	proto_msg_init(&w->req, PROTO_TXN);
	w->req.u.txn.mode = r->mode;
	w->req.u.txn.n_ops = 2;
	w->req.u.txn.ops = w->ops;
	return &w->req;
}

// Counts the answer (rv, and *rep when rv is DTX_OK: consumed) of a
// transfer that took ns.
static void
count_reply(void *owner, dtx_err rv, proto_msg *rep, uint64_t ns)
{
	b2_worker *w = owner;
	if (bench_tally_bad(&w->c.t, rv, rep, PROTO_TXN_REPLY))
		return;
	const proto_txn_reply *tr = &rep->u.txn_reply;
	if (tr->outcome == PROTO_ABORTED && w->c.t.aborted == 0 &&
	    tr->reason != NULL)
		snprintf(w->why, sizeof(w->why), "%s", tr->reason);
	bench_tally_outcome(&w->c.t, tr->outcome, ns, false);
	proto_msg_free(rep);
}

// ---------------------------------------------------------------- run

// What one 2PC bench run measured, beyond br's tallies.
typedef struct b2_numbers {
	uint64_t committed, aborted;
	double tps, abort_rate, rps, eff, load1;
	double avg_cbatch; // transfers per client message
	double avg_batch; // coordinator messages per batch
	double per_sync; // commits per coordinator log fsync
} b2_numbers;

static void
print_json(const b2_cfg *cfg, const bench_run *br, const b2_numbers *m)
{
	hx_json j;
	hx_json_begin(&j, stdout);
	hx_json_str(&j, "bench", "2pc");
	hx_json_str(&j, "mode", cfg->mode);
	hx_json_bool(&j, "tls", !cfg->insecure);
	hx_json_int(&j, "coordinators", cfg->coordinators);
	hx_json_str(
	    &j, "coordinator", br->env.co != NULL ? "embedded" : "daemon");
	// What each coordinator counts committed since it started (the
	// first one's count includes the accounts' creation).
	hx_json_arr_begin(&j, "committed_by_coordinator");
	for (uint32_t k = 0; k < br->env.nheads; k++)
		hx_json_int(
		    &j, NULL, bench_counter(br->env.heads[k], "committed"));
	hx_json_arr_end(&j);
	bench_json_counts(&j, cfg->participants, cfg->clients, cfg->accounts,
	    br->secs, &br->sum, "aborted");
	hx_json_num(&j, "txn_per_s", m->tps);
	hx_json_num(&j, "p50_ms", br->p50_ms);
	hx_json_num(&j, "p99_ms", br->p99_ms);
	hx_json_num(&j, "abort_rate", m->abort_rate);
	hx_json_num(&j, "rpc_per_s", m->rps);
	hx_json_str(&j, "rpc_ceiling",
	    "PING round trips against an in-process proto_server echo");
	hx_json_num(&j, "efficiency", m->eff);
	hx_json_num(&j, "client_batch", (double)cfg->client_batch);
	hx_json_num(&j, "client_inflight", (double)cfg->client_inflight);
	hx_json_num(&j, "avg_client_batch", m->avg_cbatch);
	hx_json_num(&j, "avg_batch", m->avg_batch);
	hx_json_num(&j, "commits_per_coord_fsync", m->per_sync);
	bench_cpu_json(
	    &j, "txn", "coordinator", &br->cpu0, &br->cpu1, m->committed);
	hx_json_num(&j, "loadavg_1m", m->load1);
	hx_json_end(&j);
}

static void
print_text(const b2_cfg *cfg, const bench_run *br, const b2_numbers *m)
{
	int n = (int)cfg->clients;
	printf("dtx bench 2pc: %s, %" PRId64 " participants, %d "
	       "clients, %" PRId64 " accounts, fsync on, %s, %.1f s\n",
	    cfg->mode, cfg->participants, n, cfg->accounts,
	    cfg->insecure ? "plaintext (--insecure)" : "mutual TLS", br->secs);
	if (br->env.co != NULL)
		printf("  coordinator embedded: it runs in the clients' "
		       "process, which call it directly\n");
	printf("  %" PRIu64 " committed, %" PRIu64 " aborted (%.2f%%), "
	       "%" PRIu64 " unknown, %" PRIu64 " errors\n",
	    m->committed, m->aborted, m->abort_rate * 100, br->sum.unknown,
	    br->sum.errors);
	printf("  %.0f committed transfers/s; latency ms p50 %.2f "
	       "p99 %.2f\n",
	    m->tps, br->p50_ms, br->p99_ms);
	printf("  RPC ceiling %.0f round trips/s (PING echo, %d "
	       "clients): efficiency %.2f (txn/s over rpc/s / 5)\n",
	    m->rps, n, m->eff);
	printf("  clients: %.1f transfers per message (at most "
	       "%" PRId64 "); coordinator: %.1f messages per batch, "
	       "%.1f commits per decision-log fsync\n",
	    m->avg_cbatch, cfg->client_batch, m->avg_batch, m->per_sync);
	bench_cpu_print("committed transfer", "coordinator", &br->cpu0,
	    &br->cpu1, m->committed);
	printf("  load average (1 min) %.2f\n", m->load1);
	const b2_worker *w = br->fleet.workers;
	for (int i = 0; i < n && m->aborted > 0; i++)
		if (w[i].why[0] != '\0') {
			printf("  an abort reason: %s\n", w[i].why);
			break;
		}
}

static int
run_bench(const void *arg)
{
	const b2_cfg *cfg = arg;
	int n = (int)cfg->clients;
	bench_run br;
	b2_run run;
	memset(&run, 0, sizeof(run));
	run.cfg = cfg;
	run.env = &br.env;

	if (strcmp(cfg->mode, "2pc") == 0) {
		run.mode = PROTO_MODE_2PC;
	} else if (strcmp(cfg->mode, "3pc") == 0) {
		run.mode = PROTO_MODE_3PC;
	} else if (strcmp(cfg->mode, "pc") == 0) {
		run.mode = PROTO_MODE_PC;
	} else {
		fprintf(stderr,
		    "dtx bench 2pc: --mode must be 2pc, 3pc or pc, not "
		    "%s\n",
		    cfg->mode);
		return HX_EXIT_USAGE;
	}
	bool embed;
	if (strcmp(cfg->coordinator, "auto") == 0) {
		embed = run.mode == PROTO_MODE_PC && cfg->coordinators == 1;
	} else if (strcmp(cfg->coordinator, "daemon") == 0) {
		embed = false;
	} else if (strcmp(cfg->coordinator, "embedded") == 0) {
		embed = true;
	} else {
		fprintf(stderr,
		    "dtx bench 2pc: --coordinator must be auto, daemon or "
		    "embedded, not %s\n",
		    cfg->coordinator);
		return HX_EXIT_USAGE;
	}
	if (embed && run.mode != PROTO_MODE_PC) {
		// A 2PC or 3PC coordinator's log decides: in a client's
		// process, the client's end would leave its transactions in
		// doubt until that very process came back.
		fprintf(stderr,
		    "dtx bench 2pc: --coordinator embedded is for pc only: a "
		    "%s coordinator keeps a decision log that must outlive "
		    "its clients\n",
		    cfg->mode);
		return HX_EXIT_USAGE;
	}
	int rc = bench_run_open_heads(&br, "dtx bench 2pc", cfg->dir,
	    cfg->participants, DTX_ROLE_COORDINATOR,
	    (uint32_t)cfg->coordinators, cfg->log_level, cfg->accounts,
	    cfg->insecure, embed, init_accounts, &run);
	if (rc != HX_EXIT_OK)
		goto out;
	int64_t batches0 = bench_heads_counter(&br.env, "batches_sent");
	int64_t items0 = bench_heads_counter(&br.env, "batch_items");
	int64_t syncs0 = bench_heads_counter(&br.env, "log_syncs");

	rc = bench_run_clients(&br, sizeof(b2_worker), n, &run, cfg->seconds,
	    cfg->client_batch, cfg->client_inflight, 10000, next_transfer,
	    count_reply);
	if (rc != HX_EXIT_OK)
		goto out;
	rc = HX_EXIT_FAILURE;
	b2_numbers m = { .committed = br.sum.committed,
		.aborted = br.sum.aborted };
	uint64_t cmsgs = 0, ctxns = 0;
	for (uint32_t k = 0; k < br.fleet.nbatchers; k++) {
		uint64_t a = 0, b = 0;
		proto_batcher_stats(br.fleet.batchers[k], &a, &b);
		cmsgs += a;
		ctxns += b;
	}
	m.avg_cbatch = cmsgs > 0 ? (double)ctxns / (double)cmsgs : 1;
	int64_t batches =
	    bench_heads_counter(&br.env, "batches_sent") - batches0;
	int64_t items = bench_heads_counter(&br.env, "batch_items") - items0;
	int64_t syncs = bench_heads_counter(&br.env, "log_syncs") - syncs0;

	// The cluster is idle now: measure the RPC ceiling on this box.
	bench_rpc_result rr;
	dtx_err rv = bench_rpc_measure(n, 0, 0, cfg->rpc_seconds, true, &rr);
	if (rv != DTX_OK) {
		fprintf(stderr, "dtx bench 2pc: RPC ceiling: %s\n",
		    dtx_strerror(rv));
		goto out;
	}

	uint64_t attempts =
	    m.committed + m.aborted + br.sum.unknown + br.sum.errors;
	m.tps = br.secs > 0 ? (double)m.committed / br.secs : 0;
	m.abort_rate = attempts ? (double)m.aborted / (double)attempts : 0;
	m.rps = rr.rpc_per_s;
	m.eff = m.rps > 0 ? m.tps / (m.rps / 5.0) : 0;
	double loads[1] = { 0 };
	m.load1 = getloadavg(loads, 1) == 1 ? loads[0] : -1;
	m.avg_batch = batches > 0 ? (double)items / (double)batches : 0;
	m.per_sync = syncs > 0 ? (double)m.committed / (double)syncs : 0;
	if (cfg->json)
		print_json(cfg, &br, &m);
	else
		print_text(cfg, &br, &m);
	bench_say_errors(br.what, br.sum.errors, br.sum.first_err);
	rc = m.committed > 0 ? HX_EXIT_OK : HX_EXIT_FAILURE;
out:
	bench_run_close(&br, cfg->keep);
	return rc;
}

int
bench_2pc(int argc, char **argv)
{
	b2_cfg cfg;
	return bench_main("dtx bench 2pc", b2_opts, NB2_OPTS, &cfg, sizeof(cfg),
	    argc, argv, run_bench);
}
