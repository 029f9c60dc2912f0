// SPDX-License-Identifier: MIT
//
// dtx bank: Jepsen's bank workload against a dtx cluster, as a sequence of
// harness phases (see hx_bankrun in harness.h): parse and check the flags,
// set up, run, heal, settle, final reads, check, store, report.

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_bank.h"

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
	char *crashpoints;
	char *shapes;
	int64_t onset_ms;
	int64_t seed;
	char *results;
	bool netns;
	bool insecure;
	char *subnet;
	char *connect;
	char *target;
	char *compose_project;
	char *dir;
	int64_t participants;
	int64_t coordinators;
	bool json;
	int64_t recovery_s;
	int64_t max_offset_ms;
	int64_t timeout_ms;
	int64_t max_concurrent;
	char *workload;
	char *log_level;
} bank_cfg;

#define OFF(f) offsetof(bank_cfg, f)
static const dtx_cfg_opt bank_opts[] = {
	{ "mode", DTX_CFG_STR, OFF(mode), 0, 0, NULL, "2pc, 3pc, pc or saga" },
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
	    "faults: kill,pause,partition,clock,disk,lose-unsynced,crashpoint,"
	    "packet,corrupt,kill-forever,slow-link (or none); disk kills a "
	    "participant and tears its WAL's tail as a crash mid-write does; "
	    "lose-unsynced runs the daemons under libdtx-unsynced.so so that "
	    "a kill loses what was not fsynced; crashpoint arms the daemons' "
	    "named crash points in turn; packet drops, duplicates and delays "
	    "a node's packets; corrupt damages a stopped node's acknowledged "
	    "WAL records or checkpoint (the restart must refuse); "
	    "kill-forever stops one target for the rest of the run; "
	    "slow-link holds one daemon's calls to one target 2-5 s before "
	    "they leave (another role's daemon when there is one), the "
	    "target staying reachable by the others" },
	{ "max-concurrent-faults", DTX_CFG_INT, OFF(max_concurrent), 1, 16, "1",
	    "faults in force at once, at most; above 1 faults start N times "
	    "as often and overlap (never two on one node, never two "
	    "partitions)" },
	{ "nemesis-interval", DTX_CFG_DOUBLE, OFF(interval), 0, 3600, "0",
	    "mean seconds a fault lasts and between faults; 0: 5, except in "
	    "3pc mode with partitions, where faults are held 4-6 s (past the "
	    "participants' 2 s in-doubt timeout and their two 0.5 s resolver "
	    "calls, and the coordinator's 1 s PRE_COMMIT ack timeout) with "
	    "0.75-2.25 s between" },
	{ "nemesis-targets", DTX_CFG_STR, OFF(targets), 0, 0, "any",
	    "coordinator, participants, saga or any" },
	{ "crashpoints", DTX_CFG_STR, OFF(crashpoints), 0, 0, NULL,
	    "with crashpoint: arm only these crash points (comma-separated, "
	    "e.g. rpc.after_reply.commit); default: every point of the mode "
	    "and the targets" },
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
	{ "subnet", DTX_CFG_STR, OFF(subnet), 0, 0, NULL,
	    "with --netns: the subnet (CIDR, e.g. 10.77.9.0/24) of the "
	    "run's namespaces; default: a free /24 of " HX_NETNS_POOL },
	{ "insecure", DTX_CFG_BOOL, OFF(insecure), 0, 0, "false",
	    "the cluster it starts: plaintext links, no certificates (a "
	    "single trusted host; default: mutual TLS)" },
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
	{ "coordinators", DTX_CFG_INT, OFF(coordinators), 1,
	    HX_COORDINATORS_MAX, "1",
	    "coordinators (saga orchestrators with --mode saga) of the "
	    "cluster this run starts; the clients spread the transfers "
	    "across them" },
	{ "log-level", DTX_CFG_STR, OFF(log_level), 0, 0, NULL,
	    "the started daemons' log level (debug keeps every transaction "
	    "event for dtx trace --run; default: theirs, info)" },
	{ "json", DTX_CFG_BOOL, OFF(json), 0, 0, "false",
	    "print the verdict as one JSON object" },
	{ "recovery-timeout", DTX_CFG_INT, OFF(recovery_s), 1, 3600, "30",
	    "seconds to wait for recovery after healing" },
	{ "max-offset-ms", DTX_CFG_INT, OFF(max_offset_ms), 1, 60000, "500",
	    "the daemons' HLC max offset (sizes clock bumps)" },
	{ "timeout-ms", DTX_CFG_INT, OFF(timeout_ms), 100, 600000, "5000",
	    "client call timeout" },
	{ "workload", DTX_CFG_STR, OFF(workload), 0, 0, "bank",
	    "bank (transfers, checked by the bank, replay and session "
	    "checkers) or list-append (appends to lists and snapshot reads, "
	    "checked for Elle's G0, G1a-c, G-single and G2; not in saga "
	    "mode)" },
};
#define NOPTS (sizeof(bank_opts) / sizeof(bank_opts[0]))

static int
usage_err(const char *msg)
{
	fprintf(stderr, "dtx bank: %s (see: dtx bank --help)\n", msg);
	return HX_EXIT_USAGE;
}

// Checks the flags and resolves them into *conf without changing cfg.
// Returns 0, or HX_EXIT_USAGE after saying what is wrong.
static int
validate(const bank_cfg *cfg, hx_bankrun_conf *conf, hx_subnet *sn)
{
	char err[1024];
	unsigned kinds = 0, shapes = 0;
	hx_nem_target target;
	hx_bankrun_sched sched;
	if (cfg->mode == NULL)
		return usage_err("--mode is required (2pc, 3pc, pc or saga)");
	if (strcmp(cfg->mode, "2pc") && strcmp(cfg->mode, "3pc") &&
	    strcmp(cfg->mode, "pc") && strcmp(cfg->mode, "saga"))
		return usage_err("--mode must be 2pc, 3pc, pc or saga");
	bool list = strcmp(cfg->workload, "list-append") == 0;
	if (!list && strcmp(cfg->workload, "bank") != 0)
		return usage_err("--workload must be bank or list-append");
	if (list && strcmp(cfg->mode, "saga") == 0)
		return usage_err(
		    "--workload list-append needs --mode 2pc, 3pc or pc: a "
		    "saga commits its steps one at a time with no isolation, "
		    "and an append has no compensation");
	if (hx_nem_kinds_parse(cfg->nemesis, &kinds, err, sizeof(err)) !=
	    DTX_OK)
		return usage_err(err);
	hx_bankrun_schedule(
	    cfg->mode, kinds, cfg->shapes, cfg->interval, &sched);
	if (hx_nem_shapes_parse(sched.shapes, &shapes, err, sizeof(err)) !=
	    DTX_OK)
		return usage_err(err);
	if (hx_nem_target_parse(cfg->targets, &target) != DTX_OK)
		return usage_err("--nemesis-targets must be coordinator, "
		                 "participants, saga or any");
	if (cfg->crashpoints != NULL &&
	    (!(kinds & HX_NEM_CRASHPOINT) ||
	        hx_nem_crashpoints_check(cfg->crashpoints, err, sizeof(err)) !=
	            DTX_OK))
		return usage_err(kinds & HX_NEM_CRASHPOINT
		        ? err
		        : "--crashpoints needs --nemesis crashpoint");
	if (cfg->interval != 0 && cfg->interval < 0.1)
		return usage_err("--nemesis-interval must be at least 0.1 s");
	if (cfg->subnet != NULL &&
	    (!cfg->netns ||
	        hx_subnet_parse(cfg->subnet, sn, err, sizeof(err)) != DTX_OK))
		return usage_err(cfg->netns ? err : "--subnet needs --netns");
	bool compose = strcmp(cfg->target, "compose") == 0;
	if (strcmp(cfg->target, "local") != 0 && !compose)
		return usage_err("--target must be local or compose");
	if (compose &&
	    (cfg->connect == NULL || cfg->netns ||
	        (kinds &
	            (HX_NEM_DISK | HX_NEM_LOSE_UNSYNCED | HX_NEM_CRASHPOINT |
	                HX_NEM_CORRUPT))))
		return usage_err("--target compose needs --connect DIR (the "
		                 "host-side topology of the project) and takes "
		                 "neither --netns nor the disk, lose-unsynced, "
		                 "crashpoint or corrupt nemesis");
	*conf = (hx_bankrun_conf) {
		.mode = cfg->mode,
		.accounts = cfg->accounts,
		.balance = cfg->balance,
		.clients = cfg->clients,
		.rate = cfg->rate,
		.duration = cfg->duration,
		.nemesis = cfg->nemesis,
		.kinds = kinds,
		.shapes = shapes,
		.target = target,
		.targets = cfg->targets,
		.crashpoints = cfg->crashpoints,
		.sched = sched,
		.onset_ms = cfg->onset_ms,
		.seed = cfg->seed ? (uint64_t)cfg->seed
		                  : (dtx_wall_ns() % 1000000000u) + 1,
		.results = cfg->results,
		.netns = cfg->netns,
		.insecure = cfg->insecure,
		.connect = cfg->connect,
		.compose = compose,
		.compose_project = cfg->compose_project,
		.dir = cfg->dir,
		.subnet = cfg->subnet != NULL ? sn : NULL,
		.participants = cfg->participants,
		.coordinators = cfg->coordinators,
		.recovery_s = cfg->recovery_s,
		.max_offset_ms = cfg->max_offset_ms,
		.timeout_ms = cfg->timeout_ms,
		.max_concurrent = cfg->max_concurrent,
		.workload = list ? "list-append" : NULL,
		.log_level = cfg->log_level,
	};
	return 0;
}

// Says why a phase failed and returns the exit code: a cluster named by
// --connect that is not there or cannot be reached is unavailable (69).
static int
phase_failed(const hx_bankrun_err *e, bool connect_failed)
{
	if (e->msg[0] != '\0')
		fprintf(stderr, "dtx bank: %s\n", e->msg);
	return e->usage      ? HX_EXIT_USAGE
	    : connect_failed ? HX_EXIT_UNAVAILABLE
	                     : HX_EXIT_FAILURE;
}

static void
say_run(const hx_bankrun_conf *c, const hx_bankrun_out *o, bool json)
{
	if (json)
		return;
	printf("dtx bank: run %" PRId64 ", %s%s, %" PRId64
	       " clients, %.0f s, nemesis %s, seed %" PRIu64 "%s\n",
	    o->run_id, c->mode, c->workload ? " list-append" : "", c->clients,
	    c->duration, c->kinds ? c->nemesis : "none", c->seed,
	    c->kinds & HX_NEM_PARTITION && o->simulated
	        ? " (partitions simulated in-process)"
	        : "");
	if (c->kinds != 0)
		bank_print_schedule(c);
	if (c->kinds != 0 && o->plan_interval_ms < c->sched.interval_ms)
		printf("dtx bank: schedule compressed to a %.2f s interval and "
		       "%.2f s gap so that every requested kind fits\n",
		    (double)o->plan_interval_ms / 1e3,
		    (double)o->plan_gap_ms / 1e3);
}

// The run, phase by phase: set up, run, heal, settle, final reads, check,
// store, report. Stops at the first phase that fails.
static dtx_err
run_phases(hx_bankrun *r, const hx_bankrun_conf *conf, bool json,
    hx_bankrun_err *e, bool *connect_failed)
{
	const hx_bankrun_out *o = hx_bankrun_result(r);
	dtx_err rv;
	if ((rv = hx_bankrun_setup_cluster(r, e)) != DTX_OK) {
		*connect_failed = conf->connect != NULL && rv != DTX_ENOMEM;
		return rv;
	}
	if (!o->created && !json)
		printf(
		    "dtx bank: using the %zu existing accounts (total %" PRId64
		    ")\n",
		    o->nacct, o->total);
	if ((rv = hx_bankrun_setup_run(r, e)) != DTX_OK)
		return rv;
	say_run(conf, o, json);
	if ((rv = hx_bankrun_workload(r, e)) != DTX_OK)
		return rv;
	hx_bankrun_heal(r);
	if ((rv = hx_bankrun_settle(r, e)) != DTX_OK ||
	    (rv = hx_bankrun_final_reads(r, e)) != DTX_OK ||
	    (rv = hx_bankrun_check(r, e)) != DTX_OK ||
	    (rv = hx_bankrun_store(r, e)) != DTX_OK)
		return rv;
	if (o->report_incomplete)
		fprintf(stderr, "dtx bank: the report in %s is incomplete\n",
		    o->report_dir);
	bank_report(conf, o, json);
	return DTX_OK;
}

int
cli_cmd_bank(int argc, char **argv)
{
	bank_cfg cfg = { 0 };
	hx_bankrun_conf conf;
	hx_subnet sn;
	hx_bankrun *r = NULL;
	hx_bankrun_err e = { .usage = false };
	int rc = hx_parse_flags(
	    "dtx bank", bank_opts, NOPTS, &cfg, argc, argv, NULL, 0, NULL);
	if (rc != 0 || (rc = validate(&cfg, &conf, &sn)) != 0)
		goto out;
	// Signals are taken on the run's own thread from here on.
	if (hx_bankrun_new(&conf, &r) != DTX_OK ||
	    hx_bankrun_catch_signals(r) != DTX_OK) {
		rc = HX_EXIT_FAILURE;
		goto out;
	}
	bool connect_failed = false;
	if (run_phases(r, &conf, cfg.json, &e, &connect_failed) != DTX_OK) {
		rc = phase_failed(&e, connect_failed);
		goto out;
	}
	hx_valid v = hx_bankrun_result(r)->verdict.valid;
	rc = v == HX_VALID_TRUE   ? HX_EXIT_OK
	    : v == HX_VALID_FALSE ? HX_EXIT_INVALID
	                          : HX_EXIT_UNKNOWN;
out:
	if (r != NULL && hx_bankrun_interrupted(r) != 0)
		rc = HX_EXIT_SIGNAL(hx_bankrun_interrupted(r));
	hx_bankrun_free(r);
	dtx_cfg_fini(bank_opts, NOPTS, &cfg);
	return rc < 0 ? HX_EXIT_OK : rc;
}
