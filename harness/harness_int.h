// SPDX-License-Identifier: MIT
//
// Shared between the harness's own files (and its unit tests) only: the
// checker plumbing and small helpers that are not part of harness.h.

#ifndef HARNESS_INT_H
#define HARNESS_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "harness.h"

// Checker plumbing (check.c): starts a result, adds an anomaly (detail is
// JSON text, taken on success and on failure), and sets the summary and
// JSON from builders (taken).
void hx__check_init(hx_check *c, const char *name);
dtx_err hx__check_anomaly(hx_check *c, const char *kind, const hx_op *op,
    bool has_txid, uint64_t txid, const char *gid, char *detail);
dtx_err hx__check_set(hx_check *c, hx_valid valid, hx_sb *summary, hx_sb *json);
// The txid / gid of a transfer from its completion's value, else its
// invocation's (either may be NULL). false when neither has one.
bool hx__op_txid(const hx_op *inv, const hx_op *comp, uint64_t *txid);
bool hx__op_gid(const hx_op *inv, const hx_op *comp, char *gid, size_t len);
// The index of s among names[0..n), for parsing an enum by the names it
// prints with; -1 when s is none of them or NULL.
int hx__name_index(const char *const *names, size_t n, const char *s);
// A bank run's state (bankrun.c runs the phases, bank_workload.c the
// clients and the observations).

// A transfer whose txid or gid is known, for the STATUS sweep. A
// list-append transaction names its participants instead (nparts > 0:
// parts[0..nparts) are asked, from and to are not used).
#define HX__XREC_PARTS 4
typedef struct hx__xrec {
	uint64_t txid;
	int64_t from, to;
	uint32_t coord; // the coordinator that ran it (hx_xfer.coord)
	char gid[HX_GID_MAX];
	uint8_t nparts;
	uint32_t parts[HX__XREC_PARTS];
} hx__xrec;

// The list-append workload's shared state (listappend_workload.c).
typedef struct hx__la hx__la;

struct hx_bankrun {
	const hx_bankrun_conf *conf; // borrowed
	hx_bankrun_out out;
	bool saga;
	proto_mode mode;
	hx_cluster *cl;
	hx_compose *cc;
	hx_conn *conn;
	hx_results *db;
	hx_history *h;
	int64_t *accts;
	hx_nem_event *plan;
	size_t nplan;
	hx_nemesis *nm;
	hx_txn_obs *obs;
	size_t nobs;
	hx_saga_obs *sobs;
	size_t nsobs;
	hx_txn_cts *cts; // commit timestamps the STATUS answers gave
	size_t ncts;
	hx_fault *faults;
	size_t nfaults;
	uint64_t deadline; // of recovery (settle)
	atomic_bool stop;
	atomic_uint_fast64_t ok, fail, info, ok_xfer;
	atomic_int_fast64_t next_proc;
	pthread_mutex_t mtx; // guards recs
	hx__xrec *recs;
	size_t nrec, cap;
	uint64_t t0, t_end;
	// Signals and the cluster directory's lock (bankrun.c).
	atomic_int interrupted; // the first SIGINT/SIGTERM taken, 0: none
	atomic_bool sig_quit; // tells the signal thread to end
	bool catching; // the signal thread runs
	pthread_t sig_th;
	sigset_t sig_old; // the caller's mask, restored by free
	int dir_lock; // descriptor holding DIR/bank.lock, -1: none
	// The list-append workload (conf->workload "list-append").
	bool list;
	hx__la *la;
};

// Runs conf->clients client threads until conf->duration has passed, with
// the progress line on stderr. DTX_ENOMEM.
dtx_err hx__bank_clients(hx_bankrun *r);
// One snapshot read recorded as op f by process proc; returns the total
// read, or -1 when the read failed.
int64_t hx__bank_read(hx_bankrun *r, int64_t proc, const char *f);
// The first read after setup, recorded in the history (retried while it
// fails); DTX_EIO when no read succeeds.
dtx_err hx__bank_setup_read(hx_bankrun *r);
// The log file of every daemon of the run's cluster, for the log checker
// (*out owned: free with hx_node_logs_free).
dtx_err hx__bank_logs(hx_bankrun *r, hx_node_log **out, size_t *n);
// Waits until every participant answers HEALTH with in_doubt 0 (and, in
// saga mode, the orchestrator answers at all). Returns the in-doubt count
// left at the deadline.
uint64_t hx__bank_await_recovery(hx_bankrun *r, uint64_t deadline);
// Asks the participants about every transfer with a txid (r->obs), in a
// bounded sweep (below). A node the sweep gives up on is asked nothing
// more: its answers stay unknown, it is named on stderr and in
// r->out.unanswered, and the run goes on to its verdict (a daemon that
// refused to restart says why at level error, which the log checker
// reports). DTX_ETIMEDOUT, with why in e->msg, when the sweep as a whole
// runs past its deadline.
dtx_err hx__bank_txn_obs(hx_bankrun *r, hx_bankrun_err *e);

// A bounded sweep (sweep.c): calls one after another to the cluster's
// nodes. It gives up on a node once the node has failed every call (no
// connection, no answer) for HX__SWEEP_NODE_WAIT_MS and at least
// HX__SWEEP_NODE_TRIES calls in a row, and calls it no more (lost; why
// names the first such node and how long it was waited for); it ends as a
// whole at its deadline (err DTX_ETIMEDOUT, why says so).
#define HX__SWEEP_NODE_WAIT_MS 10000u
#define HX__SWEEP_NODE_TRIES 3u
typedef struct hx__sweep_node {
	uint32_t fails; // calls in a row without an answer
	uint64_t since; // when the first of them started (mono ns)
	dtx_err last;
	bool redialed; // its connection was replaced once already
	bool lost; // given up: no more calls to it
} hx__sweep_node;
typedef struct hx__sweep {
	char what[64]; // "STATUS sweep"
	uint64_t t0, deadline; // mono ns
	hx__sweep_node nodes[DTX_TOPO_MAX];
	dtx_err err; // DTX_OK until the deadline has passed
	uint32_t lost; // the nodes given up on (ids < 32), a bit each
	char why[512]; // the first node given up on, or the deadline
} hx__sweep;
// Starts a sweep that may last budget_ms.
void hx__sweep_init(hx__sweep *s, const char *what, uint64_t budget_ms);
// True once the sweep's deadline has passed.
bool hx__sweep_over(const hx__sweep *s);
// True when node id was given up on.
bool hx__sweep_lost(const hx__sweep *s, uint32_t id);
// Records the result rv of a call to node id (UINT32_MAX: none) that
// started at started (mono ns). False when the sweep is over or node id
// is given up on.
bool hx__sweep_note(hx__sweep *s, uint32_t id, uint64_t started, dtx_err rv);
// An idempotent hx_conn_call within the sweep (its timeout cut to what is
// left of the deadline), noted. Once the sweep is over: s->err, no call;
// to a node given up on: DTX_EUNREACH, no call.
dtx_err hx__sweep_call(hx__sweep *s, hx_conn *c, uint32_t id, proto_msg *req,
    proto_msg *rep, uint32_t timeout_ms);
// The list-append workload (listappend_workload.c): its state, one
// client step (a transaction of appends or a snapshot read of lists;
// returns the process to continue as), the final reads of every key it
// used (after the STATUS sweep, at or above every commit ts seen), and
// its cleanup. Keys are "la:<n>"; elements are unique over the run.
dtx_err hx__la_new(hx_bankrun *r);
int64_t hx__la_step(hx_bankrun *r, int64_t proc, uint64_t *rng, clk_ts *last);
dtx_err hx__la_final_reads(hx_bankrun *r);
void hx__la_free(hx__la *la);
// Records xrec r for the STATUS sweep (bank_workload.c).
void hx__bank_add_rec(hx_bankrun *b, const hx__xrec *r);

// Asks the orchestrator about every saga, giving running ones until
// deadline to finish (r->sobs).
dtx_err hx__bank_saga_obs(hx_bankrun *r, uint64_t deadline, hx_bankrun_err *e);

// The report's timeline (report_timeline.c): what it is drawn from, all
// borrowed. participants is the cluster's (from the run's parameters; 0
// when unknown), saga whether it had an orchestrator (node
// participants + 1); v may be NULL.
typedef struct hx__tl_in {
	int64_t run_id;
	const hx_history *h;
	const int64_t *pairs; // hx_history_pairs of h
	const hx_fault *faults;
	size_t nfaults;
	const hx_verdict *v;
	int64_t end_ns; // the end of the time axis
	uint32_t participants;
	bool saga;
} hx__tl_in;
// Writes the timeline's JSON object (format in report_timeline.c) to out.
// DTX_ENOMEM.
dtx_err hx__timeline_json(const hx__tl_in *in, FILE *out);
// Writes timeline.html and timeline-data.js into dir. DTX_EIO, DTX_ENOMEM.
dtx_err hx__timeline_write(const hx__tl_in *in, const char *dir);
// The fixed colour ("#rrggbb") of a fault kind; grey for unknown kinds.
const char *hx__fault_color(const char *kind);

// Writes the trace page of anomaly a (one naming a txid or gid) into
// dir from the node logs in dir/logs, unless it is there already, and
// puts its file name into name. false when a names neither or the page
// cannot be written (report_trace.c).
bool hx__report_trace(const char *dir, int64_t run_id, const hx_anomaly *a,
    char *name, size_t len);
// unsynced/preload.c: sets the environment of every daemon cl starts from
// now on: extra ("KEY=VALUE", may be NULL) and, with HX_NEM_LOSE_UNSYNCED
// in kinds, libdtx-unsynced.so (LD_PRELOAD; the shim guards the daemon's
// --data). DTX_ENOENT with a reason in err when the shim cannot be found.
dtx_err hx__unsynced_env(hx_cluster *cl, unsigned kinds, const char *extra,
    char *err, size_t errlen);

// Counts a finished op of type t (commit ts cts) in b's totals and moves
// *last up to cts when it is ok; returns the process that runs next:
// proc, or a fresh one after an indeterminate op (bank_workload.c).
int64_t hx__bank_tally(
    hx_bankrun *b, hx_op_type t, clk_ts cts, clk_ts *last, int64_t proc);
// What a STATUS answer's state says of a transaction's outcome at a
// participant, or at its coordinator (coordinator: no record is presumed
// abort) (bank_workload.c).
hx_txn_outcome hx__txn_outcome_of(proto_txn_state st, bool coordinator);

#endif // HARNESS_INT_H
