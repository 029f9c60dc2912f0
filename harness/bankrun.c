// SPDX-License-Identifier: MIT
//
// A bank run's phases: set up the cluster and the run, run the workload,
// heal, settle, final reads, check, store. Each phase is one call; the
// command that drives them (dtx bank) only parses flags and prints. A
// signal taken on the run's own thread cuts the phases short but never
// skips the cleanup or the storing of what was seen.

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness_int.h"

#define FAIL_MSG(e, ...) snprintf((e)->msg, sizeof((e)->msg), __VA_ARGS__)

void
hx_bankrun_schedule(const char *mode, unsigned kinds, const char *shapes,
    double interval_s, hx_bankrun_sched *out)
{
	// 3PC's flaw shows only when a partition cuts a participant that
	// voted YES off from the coordinator before PRE_COMMIT reaches it,
	// the coordinator (taking silence for a crash) commits, and the cut
	// lasts until the participant's termination protocol, finding nobody
	// who pre-committed, aborts: so the shapes default to ones that cut
	// participants off from the coordinator, and partitions are held
	// past the daemons' default timeouts (1 s PRE_COMMIT ack, 2 s
	// in-doubt, 0.5 s per resolver call) with short gaps, so that many
	// partitions start while transactions are in flight. Explicit flags
	// override each.
	bool three = mode != NULL && strcmp(mode, "3pc") == 0 &&
	    (kinds & HX_NEM_PARTITION);
	bool auto_shapes = strcmp(shapes, "auto") == 0;
	memset(out, 0, sizeof(*out));
	out->shapes = auto_shapes
	    ? (three ? "one,halves" : "halves,one,bridge,ring")
	    : shapes;
	out->defaults_3pc = three && (auto_shapes || interval_s == 0);
	if (interval_s != 0) {
		out->interval_ms = (uint64_t)(interval_s * 1000);
	} else if (three) {
		out->interval_ms = 2000;
		out->hold_min_ms = 4000;
		out->gap_ms = 1500;
	} else {
		out->interval_ms = 5000;
	}
}

void
hx_bankrun_ranges(const hx_bankrun_sched *s, uint64_t *lo, uint64_t *hi,
    uint64_t *glo, uint64_t *ghi)
{
	uint64_t iv = s->interval_ms, gv = s->gap_ms ? s->gap_ms : iv;
	*lo = iv / 2 > s->hold_min_ms ? iv / 2 : s->hold_min_ms;
	*hi = *lo + iv;
	*glo = gv / 2;
	*ghi = gv + gv / 2;
}

dtx_err
hx_bankrun_new(const hx_bankrun_conf *conf, hx_bankrun **out)
{
	hx_bankrun *r = dtx_calloc(1, sizeof(*r));
	if (r == NULL)
		return DTX_ENOMEM;
	r->conf = conf;
	r->saga = strcmp(conf->mode, "saga") == 0;
	r->mode = strcmp(conf->mode, "3pc") == 0 ? PROTO_MODE_3PC
	    : strcmp(conf->mode, "pc") == 0      ? PROTO_MODE_PC
	                                         : PROTO_MODE_2PC;
	pthread_mutex_init(&r->mtx, NULL);
	r->list = conf->workload != NULL &&
	    strcmp(conf->workload, "list-append") == 0;
	if (r->list && hx__la_new(r) != DTX_OK) {
		pthread_mutex_destroy(&r->mtx);
		dtx_free(r);
		return DTX_ENOMEM;
	}
	atomic_init(&r->interrupted, 0);
	atomic_init(&r->sig_quit, false);
	r->dir_lock = -1;
	*out = r;
	return DTX_OK;
}

// Takes SIGINT and SIGTERM for the run (see hx_bankrun_catch_signals).
static void *
signal_main(void *arg)
{
	hx_bankrun *r = arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (atomic_load(&r->sig_quit))
			return NULL;
		int none = 0;
		const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
		if (atomic_compare_exchange_strong(&r->interrupted, &none, sig))
			fprintf(stderr,
			    "\ndtx bank: %s: stopping; healing the faults, "
			    "stopping the cluster and storing the partial run "
			    "(then exit %d)\n",
			    name, HX_EXIT_SIGNAL(sig));
		else
			fprintf(stderr,
			    "dtx bank: %s ignored: still cleaning up (SIGKILL "
			    "would leave daemons and namespaces behind)\n",
			    name);
	}
}

dtx_err
hx_bankrun_catch_signals(hx_bankrun *r)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (r->catching)
		return DTX_OK;
	if (pthread_sigmask(SIG_BLOCK, &set, &r->sig_old) != 0)
		return DTX_EIO;
	if (pthread_create(&r->sig_th, NULL, signal_main, r) != 0) {
		pthread_sigmask(SIG_SETMASK, &r->sig_old, NULL);
		return DTX_EIO;
	}
	r->catching = true;
	return DTX_OK;
}

int
hx_bankrun_interrupted(const hx_bankrun *r)
{
	return atomic_load(&((hx_bankrun *)r)->interrupted);
}

// Ends the signal thread and gives the caller its signal mask back.
static void
stop_catching(hx_bankrun *r)
{
	if (!r->catching)
		return;
	atomic_store(&r->sig_quit, true);
	pthread_kill(r->sig_th, SIGTERM);
	pthread_join(r->sig_th, NULL);
	pthread_sigmask(SIG_SETMASK, &r->sig_old, NULL);
	r->catching = false;
}

// Locks the cluster directory for this run: conf->dir, or when another
// run holds that, "<conf->dir>-<pid>". The lock is DIR/bank.lock, held
// (flock) until hx_bankrun_free, so it goes with the process however that
// ends.
static dtx_err
lock_cluster_dir(hx_bankrun *r, hx_bankrun_err *e)
{
	char *dir = r->out.dir, path[sizeof(r->out.dir) + 16];
	for (int i = 0; i < 2; i++) {
		if (i == 0)
			snprintf(dir, sizeof(r->out.dir), "%s", r->conf->dir);
		else
			snprintf(dir, sizeof(r->out.dir), "%s-%ld",
			    r->conf->dir, (long)getpid());
		dtx_err rv = dtx_mkdir_p(dir);
		if (rv != DTX_OK) {
			FAIL_MSG(
			    e, "cannot create %s: %s", dir, dtx_strerror(rv));
			return rv;
		}
		snprintf(path, sizeof(path), "%s/bank.lock", dir);
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0) {
			FAIL_MSG(e, "cannot open %s: %s", path,
			    dtx_strerror(dtx_from_errno(errno)));
			return DTX_EIO;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			r->dir_lock = fd;
			if (i > 0)
				fprintf(stderr,
				    "dtx bank: %s is in use by another run; "
				    "this run's cluster is in %s\n",
				    r->conf->dir, dir);
			return DTX_OK;
		}
		close(fd);
	}
	FAIL_MSG(e, "%s is in use by another run", dir);
	return DTX_EBUSY;
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

// Starts a fresh cluster of the run's own in conf->dir, or opens the
// running one in conf->connect.
static dtx_err
open_cluster(hx_bankrun *r, hx_bankrun_err *e)
{
	const hx_bankrun_conf *cfg = r->conf;
	char err[512];
	dtx_err rv;
	if (cfg->connect != NULL) {
		rv = hx_cluster_open(cfg->connect, &r->cl, err, sizeof(err));
		if (rv != DTX_OK)
			FAIL_MSG(e, "%s", err);
		return rv;
	}
	if ((rv = lock_cluster_dir(r, e)) != DTX_OK)
		return rv;
	hx_cluster_opts co = {
		.dir = r->out.dir,
		.participants = (uint32_t)cfg->participants,
		.saga = r->saga,
		.coordinators = r->saga ? 1 : (uint32_t)cfg->coordinators,
		.sagas = r->saga ? (uint32_t)cfg->coordinators : 0,
		.netns = cfg->netns,
		.enable_faults = true, // the nemesis sends FAULT
		.insecure = cfg->insecure,
		.subnet = cfg->subnet,
		.log_level = cfg->log_level,
	};
	hx_cluster_stop_dir(r->out.dir, false);
	wipe_cluster_dir(r->out.dir);
	if ((rv = hx_cluster_create(&co, &r->cl, err, sizeof(err))) != DTX_OK) {
		FAIL_MSG(e, "%s", err);
		e->usage = rv == DTX_EPERM;
		return rv;
	}
	// The daemons run with the max offset the clock faults are sized
	// for (a daemon refuses a clock fault beyond 2 x its max offset + 1).
	char mo[48];
	snprintf(mo, sizeof(mo), "DTX_MAX_OFFSET_MS=%lld",
	    (long long)cfg->max_offset_ms);
	if ((rv = hx__unsynced_env(r->cl, cfg->kinds,
	         cfg->max_offset_ms > 0 ? mo : NULL, e->msg, sizeof(e->msg))) !=
	    DTX_OK)
		return rv;
	if ((rv = hx_cluster_start_all(r->cl, 20000)) != DTX_OK)
		FAIL_MSG(e, "cluster did not start: %s (logs in %s/logs)",
		    dtx_strerror(rv), hx_cluster_dir(r->cl));
	return rv;
}

// Accounts: created when none exist. The bank the checkers hold the run
// to is what a bank setup writes (accounts 0..n-1, each with the
// configured balance), never what the system under test reads back: a
// first read that disagrees is an anomaly the checkers report
// (hx_bankrun_setup_run records it as the history's first read).
static dtx_err
open_accounts(hx_bankrun *r, hx_bankrun_err *e)
{
	char err[512];
	dtx_err rv = hx_bank_init(r->conn, (uint32_t)r->conf->accounts,
	    r->conf->balance, &r->out.created, err, sizeof(err));
	if (rv != DTX_OK) {
		FAIL_MSG(e, "%s", err);
		return rv;
	}
	size_t n = (size_t)r->conf->accounts;
	if ((r->accts = dtx_alloc(n * sizeof(int64_t))) == NULL)
		return DTX_ENOMEM;
	for (size_t i = 0; i < n; i++)
		r->accts[i] = (int64_t)i;
	r->out.nacct = n;
	r->out.total = r->conf->accounts * r->conf->balance;
	return DTX_OK;
}

dtx_err
hx_bankrun_setup_cluster(hx_bankrun *r, hx_bankrun_err *e)
{
	const hx_bankrun_conf *cfg = r->conf;
	char err[512];
	dtx_err rv = open_cluster(r, e);
	if (rv != DTX_OK)
		return rv;
	if (cfg->compose &&
	    (rv = hx_compose_open(cfg->compose_project, hx_cluster_topo(r->cl),
	         &r->cc, err, sizeof(err))) != DTX_OK) {
		FAIL_MSG(e, "--target compose: %s", err);
		return rv;
	}
	// The workload speaks as the client; FAULT and STATUS as the
	// harness.
	if ((rv = hx_cluster_conn(r->cl, true, &r->conn, err, sizeof(err))) !=
	    DTX_OK) {
		FAIL_MSG(e, "%s", err);
		return rv;
	}
	// A fresh TLS cluster: every handshake and hello done before the
	// accounts are read.
	if ((rv = hx_conn_wait_ready(r->conn, 20000)) != DTX_OK) {
		FAIL_MSG(
		    e, "the cluster does not answer: %s", dtx_strerror(rv));
		return rv;
	}
	if (r->saga && hx_conn_saga_id(r->conn) == UINT32_MAX) {
		FAIL_MSG(e, "the cluster has no saga orchestrator");
		return DTX_EINVAL;
	}
	r->out.simulated = !hx_cluster_is_netns(r->cl) && r->cc == NULL;
	return open_accounts(r, e);
}

// The run's parameters as the JSON object the results file keeps.
static char *
params_json(const hx_bankrun *r)
{
	const hx_bankrun_conf *cfg = r->conf;
	const hx_bankrun_sched *s = &cfg->sched;
	hx_sb params = { 0 };
	hx_sb_printf(&params, "{\"accounts\":[");
	for (size_t i = 0; i < r->out.nacct; i++)
		hx_sb_printf(&params, "%s%" PRId64, i ? "," : "", r->accts[i]);
	hx_sb_printf(&params,
	    "],\"total\":%" PRId64 ",\"balance\":%" PRId64
	    ",\"clients\":%" PRId64 ",\"rate\":%g,"
	    "\"duration\":%g,\"nemesis_interval\":%g,\"nemesis_hold_min\":%g,"
	    "\"nemesis_gap\":%g,\"partition_onset_ms\":%" PRId64
	    ",\"targets\":\"%s\","
	    "\"shapes\":\"%s\",\"netns\":%s,\"participants\":%u,"
	    "\"coordinators\":%u,\"created\":%s",
	    r->out.total, cfg->balance, cfg->clients, cfg->rate, cfg->duration,
	    (double)s->interval_ms / 1e3, (double)s->hold_min_ms / 1e3,
	    (double)(s->gap_ms ? s->gap_ms : s->interval_ms) / 1e3,
	    cfg->onset_ms, cfg->targets, s->shapes,
	    hx_cluster_is_netns(r->cl) ? "true" : "false",
	    hx_cluster_topo(r->cl)->nparts, hx_conn_ncoords(r->conn),
	    r->out.created ? "true" : "false");
	if (r->list)
		hx_sb_printf(&params, ",\"workload\":\"list-append\"");
	// Names checked against the table: letters, digits, dots, commas
	// and underscores only.
	if (cfg->crashpoints != NULL && *cfg->crashpoints != '\0')
		hx_sb_printf(
		    &params, ",\"crashpoints\":\"%s\"", cfg->crashpoints);
	// The netns run's own subnet (digits, dots and a slash only).
	if (hx_cluster_netns_subnet(r->cl)[0] != '\0')
		hx_sb_printf(&params, ",\"subnet\":\"%s\"",
		    hx_cluster_netns_subnet(r->cl));
	hx_sb_printf(&params, "}");
	return hx_sb_take(&params);
}

dtx_err
hx_bankrun_setup_run(hx_bankrun *r, hx_bankrun_err *e)
{
	const hx_bankrun_conf *cfg = r->conf;
	char err[512];
	dtx_err rv =
	    hx_results_open(cfg->results, true, &r->db, err, sizeof(err));
	if (rv != DTX_OK) {
		FAIL_MSG(e, "%s: %s", cfg->results, err);
		return rv;
	}
	char *ptxt = params_json(r);
	hx_run_info ri = { .mode = cfg->mode,
		.nemesis = cfg->kinds ? cfg->nemesis : "none",
		.seed = cfg->seed,
		.params = ptxt };
	rv = ptxt ? hx_results_run_begin(r->db, &ri, &r->out.run_id)
	          : DTX_ENOMEM;
	dtx_free(ptxt);
	if (rv != DTX_OK) {
		FAIL_MSG(
		    e, "cannot record the run: %s", hx_results_errmsg(r->db));
		return rv;
	}
	if ((r->h = hx_history_new()) == NULL)
		return DTX_ENOMEM;
	if ((rv = hx__bank_setup_read(r)) != DTX_OK) {
		FAIL_MSG(e, "cannot read the accounts back");
		return rv;
	}
	hx_nem_cfg nc = { .kinds = cfg->kinds,
		.shapes = cfg->shapes,
		.target = cfg->target,
		.seed = cfg->seed,
		.interval_ms = cfg->sched.interval_ms,
		.hold_min_ms = cfg->sched.hold_min_ms,
		.gap_ms = cfg->sched.gap_ms,
		.onset_max_ms = (uint32_t)cfg->onset_ms,
		.duration_ms = (uint64_t)(cfg->duration * 1000),
		.max_offset_ms = cfg->max_offset_ms,
		.topo = hx_cluster_topo(r->cl),
		.max_concurrent = (uint32_t)cfg->max_concurrent,
		.mode = cfg->mode,
		.crashpoints = cfg->crashpoints };
	if (cfg->kinds != 0 &&
	    (rv = hx_nemesis_plan_ex(&nc, &r->plan, &r->nplan,
	         &r->out.plan_interval_ms, &r->out.plan_gap_ms)) != DTX_OK) {
		FAIL_MSG(e,
		    "no fault schedule: --nemesis-targets "
		    "%s selects no node of this cluster",
		    cfg->targets);
		e->usage = true;
		return rv;
	}
	return DTX_OK;
}

dtx_err
hx_bankrun_workload(hx_bankrun *r, hx_bankrun_err *e)
{
	(void)e;
	dtx_err rv = hx__bank_clients(r);
	if (rv != DTX_OK)
		return rv;
	r->out.secs = (double)(r->t_end - r->t0) / 1e9;
	r->out.ok_transfers = atomic_load(&r->ok_xfer);
	return DTX_OK;
}

void
hx_bankrun_heal(hx_bankrun *r)
{
	hx_nemesis_stop(r->nm);
	// Interrupted: nothing more is asked of the cluster, so it goes now
	// (daemons, then namespaces, veths, bridge and firewall rules).
	if (atomic_load(&r->interrupted) && r->conf->connect == NULL &&
	    r->cl != NULL)
		hx_cluster_stop_all(r->cl, 3000);
}

dtx_err
hx_bankrun_settle(hx_bankrun *r, hx_bankrun_err *e)
{
	if (atomic_load(&r->interrupted))
		return DTX_OK;
	r->deadline =
	    dtx_mono_ns() + (uint64_t)r->conf->recovery_s * 1000000000u;
	r->out.in_doubt = hx__bank_await_recovery(r, r->deadline);
	// Sagas still running (a restarted orchestrator resumes them) must
	// finish before the final reads can show the final state.
	if (r->saga)
		return hx__bank_saga_obs(r, r->deadline, e);
	return DTX_OK;
}

// How long the final reads may take in all: a minute, or more when one
// read's timeout is long.
static uint64_t
final_read_budget_ns(const hx_bankrun *r)
{
	uint64_t ms = 60000;
	if ((uint64_t)r->conf->timeout_ms * 4 > ms)
		ms = (uint64_t)r->conf->timeout_ms * 4;
	return ms * 1000000u;
}

// The list-append workload asks about every transaction first, so that
// its final reads can be taken at or above every commit ts learnt.
static dtx_err
list_final_reads(hx_bankrun *r, hx_bankrun_err *e)
{
	dtx_err rv = hx__bank_txn_obs(r, e);
	if (rv == DTX_OK && !atomic_load(&r->interrupted))
		rv = hx__la_final_reads(r);
	if (rv == DTX_OK && atomic_load(&r->interrupted)) {
		dtx_free(r->obs);
		r->obs = NULL;
		r->nobs = 0;
	}
	return rv;
}

dtx_err
hx_bankrun_final_reads(hx_bankrun *r, hx_bankrun_err *e)
{
	(void)e;
	if (atomic_load(&r->interrupted))
		return DTX_OK;
	if (r->list)
		return list_final_reads(r, e);
	int64_t fproc = atomic_fetch_add(&r->next_proc, 1);
	// A signal taken meanwhile ends the reads; the observations are then
	// left out, as they are for a run interrupted earlier.
	// With a node killed for good, a read may wait on its in-doubt
	// transactions for ever: a few tries say so. The tries end at a
	// deadline too: each may wait out two read timeouts.
	int most = hx_nemesis_gone(r->nm) != 0 ? 5 : 50;
	uint64_t t0 = dtx_mono_ns();
	uint64_t end = t0 + final_read_budget_ns(r);
	int got = 0, tries = 0;
	for (; got < 2 && tries < most && !atomic_load(&r->interrupted) &&
	     dtx_mono_ns() < end;
	     tries++) {
		if (hx__bank_read(r, fproc, "final-read") >= 0)
			got++;
		else if (tries == 4)
			// Five failed reads: dial every node afresh once, in
			// case a link is one nng keeps though it is dead.
			(void)hx_conn_redial(r->conn, UINT32_MAX);
		else
			dtx_sleep_ms(200);
	}
	if (got < 2 && !atomic_load(&r->interrupted))
		fprintf(stderr,
		    "dtx bank: final reads: %d of 2 succeeded in %d tries "
		    "over %.1f s (the failures are in the history)\n",
		    got, tries, (double)(dtx_mono_ns() - t0) / 1e9);
	if (r->saga || atomic_load(&r->interrupted))
		return DTX_OK;
	dtx_err rv = hx__bank_txn_obs(r, e);
	if (rv == DTX_OK && atomic_load(&r->interrupted)) {
		// Cut short: a partial set would show unobserved transfers.
		dtx_free(r->obs);
		r->obs = NULL;
		r->nobs = 0;
	}
	return rv;
}

// The nodes the final sweeps gave up on whose daemon is not running
// (in a cluster this run started; a connected one's are not ours to see).
static uint32_t
dead_after(const hx_bankrun *r)
{
	uint32_t dead = 0;
	if (r->conf->connect != NULL || r->cc != NULL || r->cl == NULL)
		return 0;
	for (uint32_t i = 0; i < 32; i++)
		if ((r->out.unanswered & (1u << i)) &&
		    hx_cluster_pid(r->cl, i) == 0)
			dead |= 1u << i;
	return dead;
}

dtx_err
hx_bankrun_check(hx_bankrun *r, hx_bankrun_err *e)
{
	hx_run_cfg rcfg = { .mode = r->conf->mode,
		.bank = { .accounts = r->accts,
		    .naccounts = r->out.nacct,
		    .total = r->out.total,
		    .saga = r->saga } };
	hx_run_extra x = { .replay = !r->list,
		.adopted = !r->out.created,
		.cts = r->cts,
		.ncts = r->ncts,
		.workload = r->list ? "list-append" : NULL };
	hx_node_log *logs = NULL;
	dtx_err rv = r->cc == NULL ? hx__bank_logs(r, &logs, &x.nlogs) : DTX_OK;
	x.dead_after = dead_after(r);
	x.logs = logs;
	if (rv == DTX_OK)
		rv = hx_check_run_ex(r->h, &rcfg, &x, r->obs, r->nobs, r->sobs,
		    r->nsobs, &r->out.verdict);
	hx_node_logs_free(logs, x.nlogs);
	if (rv != DTX_OK) {
		FAIL_MSG(e, "the checkers failed");
		return rv;
	}
	r->out.have_verdict = true;
	hx_nemesis_counts(r->nm, r->out.started, &r->out.nem_errors);
	r->out.gone = hx_nemesis_gone(r->nm);
	r->out.not_run = hx_nemesis_not_run(r->nm, r->conf->kinds,
	    r->out.not_run_why, sizeof(r->out.not_run_why));
	return hx_faults_from_history(r->h, &r->faults, &r->nfaults);
}

dtx_err
hx_bankrun_store(hx_bankrun *r, hx_bankrun_err *e)
{
	hx_results *db = r->db;
	int64_t id = r->out.run_id;
	double secs = r->out.secs;
	r->out.interrupted = atomic_load(&r->interrupted);
	if (hx_results_add_ops(db, id, r->h) != DTX_OK ||
	    hx_results_add_faults(db, id, r->faults, r->nfaults) != DTX_OK ||
	    hx_results_add_txn_obs(db, id, r->obs, r->nobs) != DTX_OK ||
	    hx_results_add_saga_obs(db, id, r->sobs, r->nsobs) != DTX_OK ||
	    hx_results_add_metric(db, id, "ok_transfers_per_s",
	        secs > 0 ? (double)r->out.ok_transfers / secs : 0) != DTX_OK ||
	    hx_results_add_metric(db, id, "in_doubt_after_recovery",
	        (double)r->out.in_doubt) != DTX_OK ||
	    hx_results_run_finish(db, id, &r->out.verdict) != DTX_OK ||
	    (r->out.interrupted &&
	        hx_results_run_interrupted(db, id) != DTX_OK)) {
		FAIL_MSG(e, "cannot store the run: %s", hx_results_errmsg(db));
		return DTX_EIO;
	}
	char *dir = r->out.report_dir;
	if (hx_results_report_dir(r->conf->results, id, dir,
	        sizeof(r->out.report_dir)) != DTX_OK ||
	    hx_mkdirs(dir) != DTX_OK) {
		FAIL_MSG(e, "cannot create the report directory");
		return DTX_EIO;
	}
	copy_logs(r->cl, dir);
	char *ptxt = params_json(r);
	hx_run_info ri = { .mode = r->conf->mode,
		.nemesis = r->conf->kinds ? r->conf->nemesis : "none",
		.seed = r->conf->seed,
		.params = ptxt };
	r->out.report_incomplete =
	    hx_report_write_run(dir, id, &ri, r->h, r->faults, r->nfaults,
	        &r->out.verdict) != DTX_OK;
	dtx_free(ptxt);
	return DTX_OK;
}

const hx_bankrun_out *
hx_bankrun_result(const hx_bankrun *r)
{
	return &r->out;
}

void
hx_bankrun_free(hx_bankrun *r)
{
	if (r == NULL)
		return;
	if (r->nm != NULL) {
		hx_nemesis_stop(r->nm);
		hx_nemesis_free(r->nm);
	}
	if (r->conf->connect == NULL && r->cl != NULL)
		hx_cluster_stop_all(r->cl, 3000);
	if (r->out.have_verdict)
		hx_verdict_fini(&r->out.verdict);
	hx_faults_free(r->faults, r->nfaults);
	dtx_free(r->obs);
	dtx_free(r->cts);
	dtx_free(r->sobs);
	dtx_free(r->plan);
	dtx_free(r->recs);
	dtx_free(r->accts);
	hx__la_free(r->la);
	hx_history_free(r->h);
	hx_results_close(r->db);
	hx_conn_close(r->conn);
	hx_compose_free(r->cc);
	hx_cluster_free(r->cl);
	if (r->dir_lock >= 0)
		close(r->dir_lock);
	// Last: a signal during the cleanup above is still taken and noted.
	stop_catching(r);
	pthread_mutex_destroy(&r->mtx);
	dtx_free(r);
}
