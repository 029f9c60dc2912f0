// SPDX-License-Identifier: MIT
//
// The benchmarks (bench/): one `dtx bench` subcommand per file, and the
// cluster-bench plumbing they share (bench_cluster.c). The only header
// other folders include; it may use storage, which nothing else the dtx
// command links does. Names take the prefix bench_.

#ifndef BENCH_H
#define BENCH_H

#include <pthread.h>
#include <stdatomic.h>

#include "harness.h"
#include "proto.h"

struct coord; // coordinator.h: an embedded coordinator

// dtx bench: dispatches to the subcommands below (bench.c). Returns the
// process exit code (HX_EXIT_*).
int bench_cmd(int argc, char **argv);

int bench_rpc(int argc, char **argv); // bench_rpc.c
// The RPC ceiling (bench_rpc.c): n caller threads send PINGs back to back
// for seconds to an in-process echo server with workers worker contexts,
// over conns connections (0: one per caller; workers 0: one per caller),
// on loopback tcp or ipc. Errors: DTX_ENOMEM, or why the server or a
// connection could not be set up (also said on stderr).
typedef struct bench_rpc_result {
	int conns, workers;
	double secs;
	uint64_t calls, errors;
	dtx_err first_err; // of the first failed call
	double rpc_per_s, p50_us, p90_us, p99_us, max_us;
} bench_rpc_result;
dtx_err bench_rpc_measure(int n, int conns, int workers, int64_t seconds,
    bool tcp, bench_rpc_result *res);
int bench_storage(int argc, char **argv); // bench_storage.c
int bench_2pc(int argc, char **argv); // bench_2pc.c
int bench_saga(int argc, char **argv); // bench_saga.c
// Opens a client to url as node id (30 s calls, 2 s connect wait), over
// mutual TLS with tls's identity when tls is not NULL (borrowed: it must
// outlive the client). *out returns owned (proto_client_close) on
// success.
dtx_err bench_open_client(
    const char *url, uint32_t id, proto_tls *tls, proto_client **out);
// One call with a timeout; *rep owned on success (proto_msg_free), and
// freed here on DTX_EREFUSED. Borrows cl and req.
dtx_err bench_call(
    proto_client *cl, proto_msg *req, proto_msg *rep, uint32_t timeout_ms);
// The HEALTH counter name of the node behind cl, or -1. Borrows cl.
int64_t bench_counter(proto_client *cl, const char *name);
// What one bench worker counted: outcomes, its first error and the
// latencies of what finished (ns). Start from { 0 }; lat is owned
// (dtx_free).
typedef struct bench_tally {
	uint64_t committed, aborted, unknown, errors;
	uint64_t *lat;
	size_t nlat, cap;
	bool oom; // a latency could not be recorded
	dtx_err first_err;
} bench_tally;
// Records latency ns in t; out of memory sets t->oom.
void bench_tally_lat(bench_tally *t, uint64_t ns);

// A benchmark client: on a thread of its own (bench_sync_run) or
// without one, keeping one request in flight on a shared batcher and
// sending the next from the previous one's completion (bench_async_
// send), until the deadline. next(owner) builds the next request (kept
// by the owner until its answer); count(owner, ...) takes an answer (rv,
// and *rep when rv is DTX_OK: consumed) and how long it took.
typedef struct bench_async {
	void *owner;
	proto_batcher *b;
	// An embedded coordinator (bench_env's co) the requests go to
	// directly, instead of b or a connection; NULL otherwise.
	struct coord *co;
	_Atomic uint64_t *deadline_ns;
	atomic_int *finished; // incremented once the client stops
	uint32_t timeout_ms;
	proto_msg *(*next)(void *owner);
	void (*count)(void *owner, dtx_err rv, proto_msg *rep, uint64_t ns);
	uint64_t t0; // when the request in flight was sent
	atomic_int sends; // bench_async_send calls not yet served
} bench_async;

// Sends a's next request, or (past the deadline, or when the batcher
// refuses it) stops a. A failed call stops a too, after counting it.
void bench_async_send(bench_async *a);

// Runs a's requests one at a time on cl (or a->co), on the calling
// thread (a->b is not used): counts itself in *ready, waits for *go, then sends
// until the deadline.
void bench_sync_run(
    bench_async *a, proto_client *cl, atomic_int *ready, atomic_bool *go);

// CPU time (user + system, ms) used so far by the nodes of role head in
// topo, by its participants together and by this process (all its
// threads); -1 where it cannot be read. Taken before and after a run and
// reported per operation, it is what a change to the hot path costs or
// saves, whatever else shares the cores. The context switches of every
// thread of the same processes come with it (-1 where unknown): on a
// virtual machine, where a switch costs microseconds, they are most of
// what a message costs.
typedef struct bench_cpu {
	double head, parts, self;
	double head_cs, parts_cs, self_cs;
} bench_cpu;
void bench_cpu_read(
    hx_cluster *cl, const dtx_topo *topo, dtx_role head, bench_cpu *out);
// Prints "  CPU us per <unit>: <head_name> …, participants …, bench
// clients …": the CPU microseconds from a to b per one of n operations.
void bench_cpu_print(const char *unit, const char *head_name,
    const bench_cpu *a, const bench_cpu *b, uint64_t n);
// Writes cpu_us_per_<unit>_<head_name>, _participants and _client: the
// CPU microseconds from a to b per one of n operations; and the same
// for context switches (switches_per_<unit>_...).
void bench_cpu_json(hx_json *j, const char *unit, const char *head_name,
    const bench_cpu *a, const bench_cpu *b, uint64_t n);
// The clients of a cluster bench. Each is a worker struct of the bench's
// own whose first member is a bench_client; the fleet runs them for
// a number of seconds, either as callbacks sharing one connection through
// a batcher (client batch above 1) or as one thread and one connection
// each.
typedef struct bench_fleet bench_fleet;
typedef struct bench_client {
	bench_tally t; // first: see bench_tally_merge
	bench_async as; // as.owner is the worker
	uint64_t seed; // a PRNG state of its own
	proto_client *cl; // its own connection, or NULL (shared batcher)
	pthread_t th;
	bench_fleet *fleet;
	void *ctx; // the bench's run, shared by its clients
	int id; // 0 .. n - 1
} bench_client;
struct bench_fleet {
	void *workers; // owned: n structs of stride bytes
	size_t stride;
	int n, started;
	// false: a thread per client; true: the clients run from
	// completions (of batchers, or of an embedded coordinator).
	bool async;
	// Batchers (owned), one to each head; client i uses
	// batchers[i % nbatchers].
	proto_batcher *batchers[HX_COORDINATORS_MAX];
	uint32_t nbatchers;
	atomic_int ready, finished;
	atomic_bool go;
	_Atomic uint64_t deadline_ns;
};
// Sets up f with n zeroed workers (f->workers) of stride bytes: numbers
// and seeds each client, gives it ctx, opens a batcher of
// batch requests per message (inflight messages at once) over shared
// when batch > 1, or else a connection of each client's own to url as
// client_id (with tls, which may be NULL: bench_open_client). next and count
// are the clients' hooks (bench_async); each call gets timeout_ms. Close f with
// bench_fleet_close even on error. DTX_ENOMEM, errors of proto_batcher_open and
// bench_open_client.
dtx_err bench_fleet_open(bench_fleet *f, size_t stride, int n, void *ctx,
    proto_client *shared, const char *url, uint32_t client_id, proto_tls *tls,
    int64_t batch, int64_t inflight, uint32_t timeout_ms,
    proto_msg *(*next)(void *owner),
    void (*count)(void *owner, dtx_err rv, proto_msg *rep, uint64_t ns));
// The same against nheads heads (shared[k] at urls[k]): client i talks to
// head i % nheads, through a batcher of its own per head when batch > 1.
// With co (an embedded coordinator) the clients call it directly, as
// threads (batch 1) or from its completions (batch above 1); shared,
// urls and tls are then unused.
dtx_err bench_fleet_open_heads(bench_fleet *f, size_t stride, int n, void *ctx,
    proto_client *const *shared, const char *const *urls, uint32_t nheads,
    struct coord *co, uint32_t client_id, proto_tls *tls, int64_t batch,
    int64_t inflight, uint32_t timeout_ms, proto_msg *(*next)(void *owner),
    void (*count)(void *owner, dtx_err rv, proto_msg *rep, uint64_t ns));
// Runs the clients for seconds, each until its first answer after that,
// and returns how long it took (s); -1 when a thread cannot start (said
// on stderr, prefixed by what). The
// CPU of cl's first node of role head, its participants and this process
// is read just before (*cpu0) and after (*cpu1).
double bench_fleet_run(bench_fleet *f, const char *what, int64_t seconds,
    hx_cluster *cl, dtx_role head, bench_cpu *cpu0, bench_cpu *cpu1);
// Stops and joins the client threads, closes their connections and the
// batcher and frees the workers with their latencies (after
// bench_tally_merge). Safe on a fleet that was never opened (zeroed)
// or failed to open.
void bench_fleet_close(bench_fleet *f);

// For a bench's count hook: true (the call counted as an error, *rep
// freed) when rv is not DTX_OK or the answer is not of type want.
bool bench_tally_bad(
    bench_tally *t, dtx_err rv, proto_msg *rep, proto_type want);

// Counts an answer's outcome; its latency ns goes into the committed
// latencies, and into them for an aborted one too when with_aborted.
void bench_tally_outcome(
    bench_tally *t, proto_outcome o, uint64_t ns, bool with_aborted);
// Sums the tallies of n workers into *sum (its lat NULL, nlat the total)
// and returns all their latencies sorted in *all (owned: dtx_free). Each
// worker is a struct of stride bytes whose first member is its tally,
// the first at workers (borrowed). DTX_ENOMEM, also when a tally has oom.
dtx_err bench_tally_merge(const void *workers, size_t stride, int n,
    bench_tally *sum, uint64_t **all);
// A cluster bench's cluster, ready to measure: its own directory under
// the bench's --dir, the nodes started, a client to the node the bench
// drives (the coordinator or the saga orchestrator) and one to every
// participant, and the accounts split among the participants by routing
// their keys.
typedef struct bench_env {
	char dir[4096]; // the cluster's directory
	hx_cluster *cl;
	const dtx_topo *topo;
	uint32_t client_id; // the topology's client node
	const char *head_url; // the first node of role head's URL
	proto_client *head; // to it
	// Every node of role head (heads[0] is head), the clients spread
	// across them.
	uint32_t nheads;
	const char *head_urls[HX_COORDINATORS_MAX];
	proto_client *heads[HX_COORDINATORS_MAX];
	proto_client *parts[DTX_TOPO_MAX]; // in topo's participant order
	int64_t **owned; // owned[k]: the accounts of the k-th participant
	size_t *nowned;
	uint32_t nparts;
	// The client certificate of the cluster's certs/ every connection
	// above speaks with; NULL for an --insecure cluster. Owned.
	proto_tls *tls;
	// With embed (bench_env_open_heads): the first coordinator, run in
	// this process instead of as a daemon (it still serves its URL, for
	// HEALTH and the participants); the bench's clients call it
	// directly. NULL otherwise. Owned, as the runtime under it.
	struct coord *co;
	proto_daemon *co_d;
	void *co_cfg;
} bench_env;
// Sets *e up: refuses a dir in memory (fsync timings on tmpfs say nothing
// about a disk), creates a cluster of `participants` participants and
// nheads (1 .. HX_COORDINATORS_MAX) heads of role head
// (DTX_ROLE_COORDINATOR, or DTX_ROLE_SAGA: then only the participants and
// the orchestrators run) with the daemons' log_level,
// over mutual TLS unless insecure (plaintext, no certificates), starts it,
// opens the clients and splits `accounts` accounts. With embed (one
// coordinator head only) that coordinator runs in this process (e->co).
// On failure prints why on stderr, prefixed by what, and returns
// HX_EXIT_USAGE (a bad setting) or HX_EXIT_FAILURE; HX_EXIT_OK on
// success. Call bench_env_close either way.
int bench_env_open_heads(bench_env *e, const char *what, const char *dir,
    int64_t participants, dtx_role head, uint32_t nheads, const char *log_level,
    int64_t accounts, bool insecure, bool embed);
// Picks a transfer between two of e's participants with the PRNG at
// seed: their indexes *p != *q (e->nparts >= 2) and the keys of an
// account of the p-th into kf and of the q-th into kt (klen bytes each).
void bench_pick_keys(const bench_env *e, uint64_t *seed, uint32_t *p,
    uint32_t *q, char *kf, char *kt, size_t klen);
// Writes the fields every cluster bench reports, participants through
// errors, with the aborted count under aborted_key.
void bench_json_counts(hx_json *j, int64_t participants, int64_t clients,
    int64_t accounts, double secs, const bench_tally *sum,
    const char *aborted_key);
// A counter of HEALTH summed over every head of e (negative ones, the
// heads that did not answer, left out).
int64_t bench_heads_counter(const bench_env *e, const char *name);
// Closes the clients, stops the cluster and removes its directory (or,
// with keep, says on stderr where it was kept). Safe on a zeroed e.
void bench_env_close(bench_env *e, const char *what, bool keep);
// One run of a cluster bench: its cluster, its clients and, once they have
// run (bench_run_clients), what they counted.
typedef struct bench_run {
	const char *what; // the command, prefixed to its messages
	dtx_role head; // the role of the node the clients drive
	bench_env env;
	bench_fleet fleet; // the workers stay readable until close
	bench_tally sum; // the workers' tallies summed (lat NULL)
	uint64_t *all; // every latency (ns), sorted; owned
	double secs; // how long the clients ran
	double p50_ms, p99_ms;
	bench_cpu cpu0, cpu1; // just before and after the clients ran
} bench_run;
// Sets up *br for the command what: opens its cluster as
// bench_env_open_heads does (dir through accounts; the clients of
// bench_run_clients spread across the heads), then creates the
// accounts with init(ctx), which may read br->env. On failure prints why
// on stderr and returns HX_EXIT_USAGE or HX_EXIT_FAILURE; HX_EXIT_OK
// on success. Call bench_run_close either way. Borrows what and ctx.
int bench_run_open_heads(bench_run *br, const char *what, const char *dir,
    int64_t participants, dtx_role head, uint32_t nheads, const char *log_level,
    int64_t accounts, bool insecure, bool embed, dtx_err (*init)(void *ctx),
    void *ctx);
// Runs n clients for seconds against br's heads (a bench_fleet of
// workers of stride bytes, with ctx, batch, inflight, timeout_ms, next and
// count as bench_fleet_open takes them), then fills br->secs, the
// CPU readings, br->sum, br->all and the latency quantiles. On failure
// prints why on stderr and returns HX_EXIT_FAILURE; HX_EXIT_OK on
// success.
int bench_run_clients(bench_run *br, size_t stride, int n, void *ctx,
    int64_t seconds, int64_t batch, int64_t inflight, uint32_t timeout_ms,
    proto_msg *(*next)(void *owner),
    void (*count)(void *owner, dtx_err rv, proto_msg *rep, uint64_t ns));
// Closes br's clients and its cluster (bench_env_close with keep) and
// frees its latencies. Safe on a br that failed to open.
void bench_run_close(bench_run *br, bool keep);
// Prints "<what>: N calls failed (first: <first>)" on stderr when errors
// is not 0.
void bench_say_errors(const char *what, uint64_t errors, dtx_err first);
// The body of a cluster bench command: parses argv into cfg (size bytes,
// zeroed here) by table (n options), refuses positional arguments, runs
// run(cfg) and frees cfg. Returns a HX_EXIT_* code.
int bench_main(const char *what, const dtx_cfg_opt *table, size_t n, void *cfg,
    size_t size, int argc, char **argv, int (*run)(const void *cfg));

#endif // BENCH_H
