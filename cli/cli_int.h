// SPDX-License-Identifier: MIT
//
// Shared between the dtx CLI's own files: the subcommand table type, flag
// parsing with one-line errors, and a small JSON writer for --json output.

#ifndef CLI_INT_H
#define CLI_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common.h"

// Exit codes shared by every subcommand. A bank run exits 0 when the
// history is valid, 1 when invalid, 2 when unknown.
#define CLI_EXIT_OK 0
#define CLI_EXIT_INVALID 1
#define CLI_EXIT_UNKNOWN 2
#define CLI_EXIT_USAGE 64 // bad flags or arguments (sysexits EX_USAGE)
#define CLI_EXIT_FAILURE 70 // could not run (EX_SOFTWARE)

// A subcommand: argv holds what follows its name.
typedef int (*cli_cmd_fn)(int argc, char **argv);

typedef struct cli_cmd {
	const char *name;
	cli_cmd_fn fn;
	const char *summary;
} cli_cmd;

// Runs the command named argv[0] from cmds; prints a one-line error naming
// the known commands when it is missing or unknown (exit CLI_EXIT_USAGE).
// what is the command path for messages ("dtx", "dtx bench").
int cli_dispatch(
    const char *what, const cli_cmd *cmds, size_t n, int argc, char **argv);

// Parses flags for a subcommand through the common config table (no
// environment). On a bad flag prints "dtx <what>: <error>" and a hint to
// stderr and returns CLI_EXIT_USAGE; "--help" prints usage and returns -1
// (the caller exits 0). Returns 0 on success.
int cli_parse_flags(const char *what, const dtx_cfg_opt *table, size_t n,
    void *cfg, int argc, char **argv, char **pos, int max_pos, int *npos);

// The index of s among names[0..n), for parsing an enum by the names it
// prints with; -1 when s is none of them or NULL.
int cli__name_index(const char *const *names, size_t n, const char *s);

// Latency quantile over a sorted array of n samples (q in [0, 1]; sort
// with dtx_sort_u64).
uint64_t cli_quantile(const uint64_t *sorted, size_t n, double q);

// A streaming JSON writer: cli_json_begin(out), then fields, then end.
// Keys and string values are escaped. Not thread-safe.
typedef struct cli_json {
	FILE *out;
	int depth;
	bool need_comma[16];
} cli_json;

void cli_json_begin(cli_json *j, FILE *out); // writes "{"
void cli_json_end(cli_json *j); // writes "}\n"
void cli_json_key(cli_json *j, const char *key);
void cli_json_str(cli_json *j, const char *key, const char *val);
void cli_json_int(cli_json *j, const char *key, int64_t val);
void cli_json_num(cli_json *j, const char *key, double val);
void cli_json_bool(cli_json *j, const char *key, bool val);
void cli_json_obj_begin(cli_json *j, const char *key); // key NULL in arrays
void cli_json_obj_end(cli_json *j);
void cli_json_arr_begin(cli_json *j, const char *key);
void cli_json_arr_end(cli_json *j);
// Writes s as a JSON string literal (with quotes) to out.
void cli_json_escape(FILE *out, const char *s);

// Subcommands, one file each.
int cli_cmd_bench(int argc, char **argv); // bench.c
int cli_bench_rpc(int argc, char **argv); // bench_rpc.c
// The RPC ceiling (bench_rpc.c): n caller threads send PINGs back to back
// for seconds to an in-process echo server with workers worker contexts,
// over conns connections (0: one per caller; workers 0: one per caller),
// on loopback tcp or ipc. Errors: DTX_ENOMEM, or why the server or a
// connection could not be set up (also said on stderr).
typedef struct cli_rpc_result {
	int conns, workers;
	double secs;
	uint64_t calls, errors;
	dtx_err first_err; // of the first failed call
	double rpc_per_s, p50_us, p90_us, p99_us, max_us;
} cli_rpc_result;
dtx_err cli_rpc_measure(int n, int conns, int workers, int64_t seconds,
    bool tcp, cli_rpc_result *res);
int cli_bench_storage(int argc, char **argv); // bench_storage.c
int cli_bench_2pc(int argc, char **argv); // bench_2pc.c
int cli_bench_saga(int argc, char **argv); // bench_saga.c
int cli_cmd_results(int argc, char **argv); // results.c
int cli_cmd_check(int argc, char **argv); // check.c

// Local clusters (cluster.c): a directory holding the topology file, one
// data dir and one log file per node, and a state file with the pids of the
// running daemons, so that "dtx cluster stop" from another process finds
// them. Daemons are found in $DTX_BIN_DIR, next to the dtx executable, or
// in the build tree's <component>/ folders beside it.
//
//     DIR/topology          the topology (common.h) every daemon reads
//     DIR/cluster.state     "id pid" lines of the running daemons
//     DIR/data/<id>/        each daemon's --data
//     DIR/logs/<id>.log     each daemon's stderr, appended across restarts
typedef struct cli_cluster cli_cluster;

typedef struct cli_cluster_opts {
	const char *dir; // created if missing
	uint32_t participants; // 1 .. 16
	bool saga; // also run dtx-saga
	const char *host; // listen address, default "127.0.0.1"
	const char *log_level; // passed to the daemons, default "info"
	// Each daemon in its own network namespace (netns.c), reached over
	// a bridge at CLI_NETNS_NET.1; needs root (DTX_EPERM otherwise).
	// host is then ignored.
	bool netns;
} cli_cluster_opts;

// Creates the directory layout and a topology with free TCP ports
// (coordinator id 0, participants 1..N, saga N+1, the CLI as client).
// Returns owned (free with cli_cluster_free). err gets a one-line reason.
dtx_err cli_cluster_create(
    const cli_cluster_opts *opts, cli_cluster **out, char *err, size_t errlen);

// Opens an existing cluster directory (topology + state file).
dtx_err cli_cluster_open(
    const char *dir, cli_cluster **out, char *err, size_t errlen);

// Frees the handle; running daemons keep running. NULL does nothing.
void cli_cluster_free(cli_cluster *c);

// The cluster's topology and directory (borrowed).
const dtx_topo *cli_cluster_topo(const cli_cluster *c);
const char *cli_cluster_dir(const cli_cluster *c);

// Starts node id's daemon (detached into its own process group) with
// extra environment entries "KEY=VALUE" (env may be NULL; the list ends
// with NULL). Refuses with DTX_EEXIST when it is already running.
dtx_err cli_cluster_start(cli_cluster *c, uint32_t id, char *const env[]);

// Waits until node id accepts connections on its URL, or its process has
// exited (DTX_ECLOSED), or timeout_ms passed (DTX_ETIMEDOUT).
dtx_err cli_cluster_wait_ready(
    cli_cluster *c, uint32_t id, uint64_t timeout_ms);

// Starts every node that is not running and waits until all are ready.
dtx_err cli_cluster_start_all(cli_cluster *c, uint64_t timeout_ms);

// Sends sig to node id's daemon (SIGKILL, SIGSTOP, SIGCONT, SIGTERM).
// After SIGKILL the process is reaped and forgotten.
dtx_err cli_cluster_signal(cli_cluster *c, uint32_t id, int sig);

// Waits for node id's daemon to exit (e.g. at a crash point) and reaps it.
// *status gets the waitpid status when status is non-NULL.
dtx_err cli_cluster_wait_exit(
    cli_cluster *c, uint32_t id, uint64_t timeout_ms, int *status);

// The pid of node id's daemon, or 0 when it is not running.
int cli_cluster_pid(cli_cluster *c, uint32_t id);

// Stops every daemon: SIGCONT (in case it is paused), SIGTERM, then
// SIGKILL after grace_ms; removes the state file.
dtx_err cli_cluster_stop_all(cli_cluster *c, uint64_t grace_ms);

// Path of node id's log file (borrowed until the next call).
const char *cli_cluster_log(cli_cluster *c, uint32_t id);

// History, checkers, results and reports.
//
// A run is recorded as a Jepsen-style history: a list of operations
// {index, time_ns, process, type, f, value, error}. Client processes are
// numbered from 0; the nemesis is the process CLI_PROC_NEMESIS, printed
// "nemesis". A client that sees an uncertain outcome records `info` and
// continues under a new process id. Values are JSON text (RFC 8259):
//
//   transfer  {"from":3,"to":7,"amount":5,"mode":"2pc","txid":123,"gid":"g1"}
//             (txid/gid may appear only in the completion's value; the
//             checkers look at the completion first, then the invocation)
//   read      invoke: null; ok: {"ts":<hlc uint64>,"balances":{"0":100,...}}
//   final-read  the same shape as read, issued after heal, restart and
//             recovery; the saga checker takes the last ok final-read as the
//             final state
//   nemesis   f is kill, restart, pause, resume, partition, heal, clock-bump,
//             clock-reset, clock-strobe, or disk (a kill whose WAL tail is
//             torn before the restart); the value is a JSON description:
//             {"targets":[1,2],"shape":"halves",...}
//
// Nemesis ops are `info` (or `invoke` then `info`): the first op of an f
// opens it and the next op with the same f completes it.

#include <stdarg.h>

#define CLI_PROC_NEMESIS ((int64_t)-1)

typedef enum cli_op_type {
	CLI_OP_INVOKE = 0,
	CLI_OP_OK = 1,
	CLI_OP_FAIL = 2,
	CLI_OP_INFO = 3,
} cli_op_type;

// "invoke", "ok", "fail", "info".
const char *cli_op_type_name(cli_op_type t);
// Parses the names above; DTX_EINVAL otherwise.
dtx_err cli_op_type_parse(const char *s, cli_op_type *out);

// One operation. Strings are owned by the history; value is JSON text or
// NULL (JSON null), error is free text or NULL.
typedef struct cli_op {
	int64_t index; // position in the history, from 0
	int64_t time_ns; // monotonic nanoseconds since the history began
	int64_t process;
	cli_op_type type;
	char *f;
	char *value;
	char *error;
} cli_op;

typedef struct cli_history cli_history;

// Returns a new, empty history whose clock starts now, or NULL when out of
// memory (free with cli_history_free).
cli_history *cli_history_new(void);
void cli_history_free(cli_history *h);

// Appends an op stamped with the next index and the monotonic time since
// the history began. f must be non-empty; value_json must be valid JSON or
// NULL; error may be NULL. All strings are copied (borrowed). Thread-safe:
// many client threads may add concurrently; indices and times increase
// together. DTX_EINVAL for a bad argument, DTX_ENOMEM.
dtx_err cli_history_add(cli_history *h, int64_t process, cli_op_type type,
    const char *f, const char *value_json, const char *error);

// As cli_history_add with an explicit time (reloading a stored history and
// synthetic histories in tests). Thread-safe.
dtx_err cli_history_append(cli_history *h, int64_t time_ns, int64_t process,
    cli_op_type type, const char *f, const char *value_json, const char *error);

// Number of ops. Thread-safe.
size_t cli_history_len(const cli_history *h);
// Op i (< len), borrowed: stays valid until cli_history_free, even while
// other threads append. Thread-safe.
const cli_op *cli_history_get(const cli_history *h, size_t i);

// Pairs invocations with completions by process (Jepsen's rule: a
// process's next op after an invoke is its completion). Returns an owned
// array of len entries (free with dtx_free): for an invocation the index of
// its completion or -1 when it never completed, for a completion the index
// of its invocation or -1 when it completes nothing. Call when no thread is
// appending. DTX_ENOMEM.
dtx_err cli_history_pairs(const cli_history *h, int64_t **out);

// Writes "nemesis" or the decimal process id into buf (size >= 24).
const char *cli_process_name(int64_t process, char *buf, size_t len);

// ---------------------------------------------------------------- JSON

// A strict JSON reader (RFC 8259): no comments, no trailing commas, no
// leading zeros, valid escapes and UTF-8 only, no duplicate object keys,
// nesting at most CLI_JV_MAX_DEPTH deep, nothing after the value.
#define CLI_JV_MAX_DEPTH 64

typedef enum cli_jv_type {
	CLI_JV_NULL,
	CLI_JV_BOOL,
	CLI_JV_NUM,
	CLI_JV_STR,
	CLI_JV_ARR,
	CLI_JV_OBJ,
} cli_jv_type;

// A parsed value. Numbers keep their exact integer value when they are
// integers that fit in 64 bits (is_int; neg says the sign; mag is the
// magnitude) and always a double approximation. Arrays and objects keep
// their members as a list (first, next; key set for object members).
typedef struct cli_jv cli_jv;
struct cli_jv {
	cli_jv_type type;
	bool b;
	bool is_int;
	bool neg;
	uint64_t mag;
	double d;
	char *s; // CLI_JV_STR: UTF-8, NUL-terminated (len excludes NUL)
	size_t len; // string length, or member count of an array/object
	char *key; // set on object members
	cli_jv *first; // first member
	cli_jv *next; // next sibling
};

typedef struct cli_jdoc cli_jdoc;

// Parses text[0..len). On success *out is an owned document (free with
// cli_jdoc_free). On bad input returns DTX_EINVAL and writes "offset N:
// what is wrong" into err (size errlen); DTX_ENOMEM.
dtx_err cli_json_parse(
    const char *text, size_t len, cli_jdoc **out, char *err, size_t errlen);
void cli_jdoc_free(cli_jdoc *d);
// The document's root value, borrowed from d.
const cli_jv *cli_jdoc_root(const cli_jdoc *d);
// Member key of object v, or NULL when v is not an object or has none.
const cli_jv *cli_jv_get(const cli_jv *v, const char *key);
// The value as int64 / uint64: DTX_EINVAL when not an integer,
// DTX_ERANGE when it does not fit.
dtx_err cli_jv_int(const cli_jv *v, int64_t *out);
dtx_err cli_jv_u64(const cli_jv *v, uint64_t *out);
// True when text[0..len) is valid JSON.
bool cli_json_valid(const char *text, size_t len);

// ---------------------------------------------------------------- checkers

typedef enum cli_valid {
	CLI_VALID_TRUE = 0,
	CLI_VALID_FALSE = 1,
	CLI_VALID_UNKNOWN = 2,
} cli_valid;

// "true", "false", "unknown".
const char *cli_valid_name(cli_valid v);
// Jepsen's merge: false if any is false, else unknown if any is unknown.
cli_valid cli_valid_merge(cli_valid a, cli_valid b);

// One anomaly a checker found (stored in the results' anomalies table).
typedef struct cli_anomaly {
	const char *checker; // static: "bank", "atomicity", "saga"
	const char *kind; // static: "wrong-total", "split-decision", ...
	int64_t op_index; // -1 when not tied to an op
	int64_t time_ns; // -1 when not tied to an op
	bool has_txid;
	uint64_t txid;
	char *gid; // owned, NULL when none
	char *detail; // owned JSON object text
} cli_anomaly;

// What every checker returns: a verdict, a one-line summary, the full
// result as a JSON object, and anomalies (every one for atomicity and
// saga, the first/worst/last example per kind for bank). Release with
// cli_check_fini.
typedef struct cli_check {
	const char *name; // static
	cli_valid valid;
	char *summary; // owned
	char *json; // owned JSON object text
	cli_anomaly *anoms; // owned
	size_t nanoms;
	size_t anoms_cap;
} cli_check;

void cli_check_fini(cli_check *c);

// Bank checker configuration. Accounts are the integer ids accounts[0..n);
// balances keys are their decimal text. In saga mode wrong totals in `read`
// ops are transient (reported, not violations); in every mode wrong totals
// in `final-read` ops are violations.
typedef struct cli_bank_cfg {
	const int64_t *accounts; // borrowed
	size_t naccounts;
	int64_t total;
	bool saga;
} cli_bank_cfg;

typedef enum cli_bank_kind {
	CLI_BANK_WRONG_TOTAL = 0,
	CLI_BANK_NEGATIVE = 1,
	CLI_BANK_UNEXPECTED_KEY = 2,
	CLI_BANK_MISSING_BALANCE = 3,
	CLI_BANK_TRANSIENT_TOTAL = 4, // saga mode only: not a violation
	CLI_BANK_MALFORMED = 5, // an ok read whose value has no balances
	CLI_BANK_NKINDS = 6,
} cli_bank_kind;

// "wrong-total", "negative-balance", "unexpected-key", "missing-balance",
// "transient-total", "malformed-read".
const char *cli_bank_kind_name(cli_bank_kind k);

typedef struct cli_bank_example {
	int64_t op_index; // -1 when the kind never occurred
	int64_t time_ns;
	int64_t process;
	int64_t total; // sum of the balances the read saw
	int64_t badness; // |total - expected|, sum of negatives, key count
} cli_bank_example;

typedef struct cli_bank_stat {
	size_t count;
	cli_bank_example first, worst, last;
} cli_bank_stat;

// A balance that is null or not an integer counts as missing. A read with
// an unexpected key or a missing balance is not also checked
// for its total (the sum is meaningless then), as in Jepsen's bank test;
// negative balances are checked on every read.
typedef struct cli_bank_result {
	cli_check c;
	size_t reads; // ok reads and final-reads
	size_t bad_reads; // reads with at least one violation
	cli_bank_stat kinds[CLI_BANK_NKINDS];
	int64_t lowest_total, highest_total; // over wrong and transient totals
} cli_bank_result;

// Checks every ok read/final-read of h. Valid when no violation, unknown
// when there is no ok read. Call when no thread is appending. DTX_ENOMEM,
// DTX_EINVAL (bad cfg); *out is filled only on success (cli_check_fini
// releases out->c).
dtx_err cli_check_bank(
    const cli_history *h, const cli_bank_cfg *cfg, cli_bank_result *out);

// A participant's view of one transaction, gathered after the run.
typedef enum cli_txn_outcome {
	CLI_TXN_COMMITTED = 0,
	CLI_TXN_ABORTED = 1,
	CLI_TXN_IN_DOUBT = 2,
	CLI_TXN_UNKNOWN = 3, // participant could not be asked
} cli_txn_outcome;

// "committed", "aborted", "in-doubt", "unknown".
const char *cli_txn_outcome_name(cli_txn_outcome o);
dtx_err cli_txn_outcome_parse(const char *s, cli_txn_outcome *out);

typedef struct cli_txn_obs {
	uint64_t txid;
	int32_t node;
	cli_txn_outcome outcome;
} cli_txn_obs;

// Split decision (committed at one participant, aborted at another) and
// history cross-checks (an ok transfer aborted at a participant, a failed
// transfer committed at one) are violations. Transactions still in doubt
// are reported as blocked and do not change the verdict. No observations:
// unknown.
typedef struct cli_atom_result {
	cli_check c;
	size_t txns; // distinct txids observed
	size_t split; // split decisions
	size_t ok_not_committed; // ok transfers aborted at some participant
	size_t fail_committed; // failed transfers committed somewhere
	size_t in_doubt; // txids in doubt at some participant
	size_t unobserved; // ok/fail transfers with a txid nobody reported
} cli_atom_result;

dtx_err cli_check_atomicity(const cli_history *h, const cli_txn_obs *obs,
    size_t nobs, cli_atom_result *out);

typedef enum cli_saga_state {
	CLI_SAGA_COMMITTED = 0,
	CLI_SAGA_ABORTED = 1, // fully compensated
	CLI_SAGA_COMPENSATING = 2,
	CLI_SAGA_RUNNING = 3,
} cli_saga_state;

// "committed", "aborted", "compensating", "running".
const char *cli_saga_state_name(cli_saga_state s);
dtx_err cli_saga_state_parse(const char *s, cli_saga_state *out);

#define CLI_GID_MAX 64 // including the NUL

typedef struct cli_saga_obs {
	char gid[CLI_GID_MAX];
	cli_saga_state state;
	int32_t failed_step; // -1 when no step failed
} cli_saga_obs;

// At quiescence every saga must be committed or aborted; the last ok
// final-read must show the configured total; a transfer the client saw ok
// must belong to a committed saga and a failed one to an aborted saga.
// Wrong totals in `read` ops during the run are counted as transient.
// Unknown when there are neither saga states nor a final read.
typedef struct cli_saga_result {
	cli_check c;
	size_t sagas, committed, aborted, stuck;
	size_t transient; // reads during the run with a wrong total
	size_t final_reads; // ok final-reads
	bool final_ok; // last ok final-read shows the total
	int64_t final_total;
	size_t ok_not_committed, fail_committed;
} cli_saga_result;

dtx_err cli_check_saga(const cli_history *h, const cli_bank_cfg *cfg,
    const cli_saga_obs *sagas, size_t nsagas, cli_saga_result *out);

// Latency and throughput (Jepsen's stats and perf checkers) over client
// ops: counts by f and type; completions per second per type; latency
// quantiles per f from invoke->completion pairs; ops still open at the
// end. Valid unless a client f never completed ok (then unknown).
typedef struct cli_stats_f {
	char *f; // owned
	size_t counts[4]; // by cli_op_type
	size_t nlat; // completed pairs
	uint64_t p50, p90, p99, max; // latency ns over completed pairs
} cli_stats_f;

typedef struct cli_stats_result {
	cli_check c;
	cli_stats_f *fs; // sorted by f
	size_t nfs;
	size_t total_ops, client_ops, nemesis_ops, open; // open: no completion
	size_t nsec; // length of rate[]: one bucket per second of the run
	size_t (*rate)[3]; // completions per second: [ok, fail, info]
	int64_t duration_ns;
} cli_stats_result;

// out is filled only on success; release with cli_stats_fini.
dtx_err cli_check_stats(const cli_history *h, cli_stats_result *out);
void cli_stats_fini(cli_stats_result *r);

// What a run checks. mode is "2pc", "3pc" or "saga" (borrowed).
typedef struct cli_run_cfg {
	const char *mode;
	cli_bank_cfg bank;
} cli_run_cfg;

// Every checker's result and the combined verdict. Release with
// cli_verdict_fini.
typedef struct cli_verdict {
	cli_valid valid;
	cli_bank_result bank;
	cli_stats_result stats;
	bool has_atom; // 2pc/3pc
	cli_atom_result atom;
	bool has_saga; // saga
	cli_saga_result saga;
} cli_verdict;

// Runs bank + stats, atomicity (2pc/3pc) or saga (saga mode) and merges
// their verdicts. DTX_EINVAL for an unknown mode, DTX_ENOMEM.
dtx_err cli_check_run(const cli_history *h, const cli_run_cfg *cfg,
    const cli_txn_obs *obs, size_t nobs, const cli_saga_obs *sagas,
    size_t nsagas, cli_verdict *out);
void cli_verdict_fini(cli_verdict *v);
// Number of cli_check results in v and the i-th (bank, stats, then
// atomicity or saga).
size_t cli_verdict_count(const cli_verdict *v);
const cli_check *cli_verdict_check(const cli_verdict *v, size_t i);
// Prints the verdict and each checker's summary and examples.
void cli_verdict_print(FILE *out, const cli_verdict *v);
// Writes {"valid":...,"checkers":{name:{...}}} under key.
void cli_verdict_json(cli_json *j, const char *key, const cli_verdict *v);

// Parses the checker settings from a run's params JSON: "accounts" is a
// count n (ids 0..n-1) or an array of integer ids, "total" an integer.
// *accounts is owned (free with dtx_free). DTX_EINVAL with a message.
dtx_err cli_bank_cfg_from_params(const char *params, int64_t **accounts,
    size_t *naccounts, int64_t *total, char *err, size_t errlen);

// ---------------------------------------------------------------- faults

// A fault window: when a fault started and ended (end_ns == -1 while it
// was never healed) on which targets. Strings owned.
typedef struct cli_fault {
	int64_t start_ns, end_ns;
	char *kind; // "kill", "pause", "partition", ...
	char *targets; // free text, e.g. "1,2"
	char *detail; // JSON text of the starting op's value, or NULL
} cli_fault;

// Derives fault windows from the nemesis ops of h: kill..restart,
// pause..resume, partition..heal, netem..heal, clock-bump or
// clock-strobe..clock-reset; any other nemesis f is an instant window. A
// closing op ends every open window of its kinds. Returns an owned array
// (free with cli_faults_free). DTX_ENOMEM.
dtx_err cli_faults_from_history(
    const cli_history *h, cli_fault **out, size_t *n);
void cli_faults_free(cli_fault *f, size_t n);

// ---------------------------------------------------------------- results

// The results file: one sqlite3 database (schema in results.c) shared by
// every dtx process: runs, ops, faults, anomalies, metrics, checker
// summaries and atomicity/saga observations; WAL mode, busy timeout, a
// schema version in PRAGMA user_version and the application id 'dtx1'.
#define CLI_RESULTS_DEFAULT "results/dtx.sqlite"

typedef struct cli_results cli_results;

// Opens path, creating the directory and the schema when create is true
// and the file is new. A file that is not SQLite, corrupt, or not a dtx
// results database gives DTX_ECORRUPT / DTX_EINVAL and one line in err;
// a missing file without create gives DTX_ENOENT. *out is owned (close
// with cli_results_close). A handle is used by one thread at a time.
dtx_err cli_results_open(
    const char *path, bool create, cli_results **out, char *err, size_t errlen);
void cli_results_close(cli_results *db);
// The last error message on db (borrowed, never NULL).
const char *cli_results_errmsg(const cli_results *db);

typedef struct cli_run_info {
	const char *mode; // "2pc", "3pc", "saga"
	const char *nemesis; // e.g. "kill,partition" or "none"
	uint64_t seed;
	const char *params; // JSON object text (accounts, total, ...)
} cli_run_info;

// Inserts the run with finished NULL (a crash leaves it unfinished).
dtx_err cli_results_run_begin(
    cli_results *db, const cli_run_info *info, int64_t *run_id);
// Inserts h's ops in transactions of a few thousand rows. Call when no
// thread is appending.
dtx_err cli_results_add_ops(
    cli_results *db, int64_t run_id, const cli_history *h);
dtx_err cli_results_add_faults(
    cli_results *db, int64_t run_id, const cli_fault *f, size_t n);
dtx_err cli_results_add_txn_obs(
    cli_results *db, int64_t run_id, const cli_txn_obs *o, size_t n);
dtx_err cli_results_add_saga_obs(
    cli_results *db, int64_t run_id, const cli_saga_obs *s, size_t n);
dtx_err cli_results_add_metric(
    cli_results *db, int64_t run_id, const char *name, double value);
// Stores the verdict (valid, summary, checker results, anomalies, stats
// metrics) and sets finished, in one transaction. Replaces any earlier
// checker results of the run.
dtx_err cli_results_run_finish(
    cli_results *db, int64_t run_id, const cli_verdict *v);

// A stored run, as loaded back. Strings owned; free with
// cli_run_record_fini.
typedef struct cli_run_record {
	int64_t id;
	char *started, *finished; // UTC "YYYY-MM-DDTHH:MM:SSZ"; finished NULL
	char *mode, *nemesis, *params, *summary;
	uint64_t seed;
	cli_valid valid; // UNKNOWN also when unfinished
	int64_t nops;
} cli_run_record;

void cli_run_record_fini(cli_run_record *r);
// DTX_ENOENT when there is no run id.
dtx_err cli_results_load_run(cli_results *db, int64_t id, cli_run_record *out);
// Returns an owned history rebuilt from the stored ops (free with
// cli_history_free).
dtx_err cli_results_load_history(
    cli_results *db, int64_t id, cli_history **out);
dtx_err cli_results_load_faults(
    cli_results *db, int64_t id, cli_fault **out, size_t *n);
// Owned arrays (free with dtx_free).
dtx_err cli_results_load_obs(cli_results *db, int64_t id, cli_txn_obs **txns,
    size_t *ntxns, cli_saga_obs **sagas, size_t *nsagas);

// Writes "<dir of results file>/<results file name>-run-<id>" into buf,
// so that results files sharing a directory keep their reports apart.
dtx_err cli_results_report_dir(
    const char *results_path, int64_t id, char *buf, size_t len);

// ---------------------------------------------------------------- reports

// Writes the run report into dir (created if needed): latency.png and
// rate.png through gnuplot (with .gp scripts and .dat files; fault windows
// shaded), timeline.html and index.html. When gnuplot is missing it says so
// once on stderr and skips the PNGs. v may be NULL (no verdict yet).
// DTX_EIO when a file cannot be written, DTX_ENOMEM.
dtx_err cli_report_write(const char *dir, int64_t run_id, const cli_history *h,
    const cli_fault *faults, size_t nfaults, const cli_verdict *v);

// ---------------------------------------------------------------- internal

// A growing text buffer for summaries and JSON (json.c). Out of memory
// sets oom and later calls do nothing; cli_sb_take then returns NULL.
typedef struct cli_sb {
	char *buf;
	size_t len, cap;
	bool oom;
} cli_sb;

void cli_sb_printf(cli_sb *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cli_sb_vprintf(cli_sb *sb, const char *fmt, va_list ap);
// Appends s as a JSON string literal.
void cli_sb_json_str(cli_sb *sb, const char *s);
// Returns the text, owned (free with dtx_free), and empties sb; NULL when
// out of memory.
char *cli_sb_take(cli_sb *sb);
void cli_sb_fini(cli_sb *sb);

// Checker plumbing (check.c): starts a result, adds an anomaly (detail is
// JSON text, taken on success and on failure), and sets the summary and
// JSON from builders (taken).
void cli__check_init(cli_check *c, const char *name);
dtx_err cli__check_anomaly(cli_check *c, const char *kind, const cli_op *op,
    bool has_txid, uint64_t txid, const char *gid, char *detail);
dtx_err cli__check_set(
    cli_check *c, cli_valid valid, cli_sb *summary, cli_sb *json);
// The txid / gid of a transfer from its completion's value, else its
// invocation's (either may be NULL). false when neither has one.
bool cli__op_txid(const cli_op *inv, const cli_op *comp, uint64_t *txid);
bool cli__op_gid(const cli_op *inv, const cli_op *comp, char *gid, size_t len);
// Reads the run id a command takes as its only positional argument (a
// positive decimal integer) from pos[0..npos). When it is missing or bad,
// says so on stderr with the usage "<what> ID <flags>" and returns
// DTX_EINVAL.
dtx_err cli__run_id_arg(const char *what, const char *flags, char *const *pos,
    int npos, int64_t *out);
// Creates directory path and its parents (path is modified in place and
// restored). Returns a translated errno.
dtx_err cli__mkdirs(char *path);

// Clusters, clients, nemeses and the bank workload.
//
// cluster.c (above) runs the daemons; netns.c gives each its own network
// namespace; client.c talks to a running cluster; nemesis.c plans and
// applies faults; progress.c draws the live status line; bank.c runs the
// bank workload; cmd_cluster.c and cmd_txn.c are the small commands.

#include <pthread.h>
#include <stdatomic.h>

#include "proto.h"

#define CLI_CLUSTER_DIR_DEFAULT ".dtx/cluster"

// More cluster control (cluster.c).

// Path of node id's data directory, DIR/data/<id> (borrowed until the
// next call).
const char *cli_cluster_data(cli_cluster *c, uint32_t id);

// True when the cluster's daemons run in network namespaces; the prefix
// of its namespaces, veths and bridge (borrowed, "" without netns).
bool cli_cluster_is_netns(const cli_cluster *c);
const char *cli_cluster_netns_prefix(const cli_cluster *c);

// Stops whatever runs for cluster directory dir even when its topology or
// state file is gone: every process whose command line names dir and a
// dtx daemon, and (as root) the namespaces, veths, bridge and firewall
// rule named after dir. Never fails; says on stderr what it removed when
// verbose.
void cli_cluster_stop_dir(const char *dir, bool verbose);

// Network namespaces (netns.c). Every daemon node id gets namespace
// "<prefix>-<id>" holding veth "<prefix>c<id>" with address
// CLI_NETNS_NET.<10+id>/24, whose peer "<prefix>h<id>" is a port of
// bridge "<prefix>br" in the root namespace; the bridge holds
// CLI_NETNS_NET.1 so the CLI reaches every daemon. The prefix is "dx"
// and six hex digits of CRC32C of the cluster directory's absolute path,
// so a later stop finds what an earlier start made.
#define CLI_NETNS_NET "10.77.0"
#define CLI_NETNS_PORT 7000
#define CLI_NETNS_PREFIX_MAX 16

// A grudge (Jepsen's): drop[a] has bit b set when node a refuses traffic
// with node b. Applied in both directions for every pair.
typedef struct cli_grudge {
	uint32_t drop[DTX_TOPO_MAX];
} cli_grudge;

// Writes the prefix for cluster directory dir (need not exist) into buf
// (size >= CLI_NETNS_PREFIX_MAX).
void cli_netns_prefix(const char *dir, char *buf, size_t len);
// DTX_EPERM when not root, DTX_ENOENT when "ip netns" or iptables cannot
// be run; err says which.
dtx_err cli_netns_check(char *err, size_t errlen);
// Creates the bridge, the forward rule, and one namespace per daemon node
// of topo. DTX_EBUSY when CLI_NETNS_NET.0/24 is already in use.
dtx_err cli_netns_setup(
    const char *prefix, const dtx_topo *topo, char *err, size_t errlen);
// Kills every process inside the prefix's namespaces and removes the
// namespaces, veths, bridge and forward rule. Idempotent; returns the
// number of objects removed.
int cli_netns_teardown(const char *prefix);
// Applies g with iptables DROP rules (INPUT from and OUTPUT to each
// refused peer) inside the namespaces; heal flushes them all.
// cli_netns_cut_sends drops only what node a sends to each node b of
// g->drop[a] (OUTPUT rules): a one-way cut.
dtx_err cli_netns_partition(
    const char *prefix, const dtx_topo *topo, const cli_grudge *g);
dtx_err cli_netns_cut_sends(
    const char *prefix, const dtx_topo *topo, const cli_grudge *g);
dtx_err cli_netns_heal(const char *prefix, const dtx_topo *topo);
// Runs argv (argv[0] looked up in PATH, then /usr/sbin and /sbin) and
// returns its exit status (-1 when it could not run). Its stdout goes
// into out (may be NULL) and stderr is discarded when quiet.
int cli_run(const char *const argv[], char *out, size_t outlen, bool quiet);

// Talking to a cluster (client.c). A cli_conn holds one proto client per
// daemon of a topology; every function is thread-safe.
typedef struct cli_conn cli_conn;

// Accounts are keys "acct:<n>" whose values are int64 balances (written
// by PUT as 8 bytes little-endian).
#define CLI_ACCT_PREFIX "acct:"
#define CLI_ACCOUNTS_MAX PROTO_MAX_OPS

// Opens clients to every daemon of topo (copied). *out is owned (close
// with cli_conn_close). DTX_ENOMEM, DTX_EINVAL.
dtx_err cli_conn_open(const dtx_topo *topo, cli_conn **out);
void cli_conn_close(cli_conn *c);
const dtx_topo *cli_conn_topo(const cli_conn *c);
// One call to node id (timeout_ms 0: 5 s). Contract of proto_client_call.
dtx_err cli_conn_call(cli_conn *c, uint32_t id, proto_msg *req, proto_msg *rep,
    uint32_t timeout_ms, bool idempotent);

// What a transfer came to. err is DTX_OK when the coordinator or the
// orchestrator answered (outcome says what), else the call's error:
// DTX_EUNREACH and DTX_EREFUSED mean it certainly did not happen, the
// others that the outcome is unknown.
typedef struct cli_xfer {
	dtx_err err;
	proto_outcome outcome;
	uint64_t txid;
	clk_ts cts;
	int32_t failed_step;
	char reason[PROTO_MAX_STR + 1];
} cli_xfer;

// Moves amount from account `from` to `to` in one TXN (mode 2PC or 3PC)
// of two ADD ops that keep both balances >= 0. Always fills *out.
void cli_transfer(cli_conn *c, proto_mode mode, int64_t from, int64_t to,
    int64_t amount, uint32_t timeout_ms, cli_xfer *out);
// The same as a saga (gid borrowed): debit `from`, then credit `to`, each
// with its compensation, submitted to the saga orchestrator.
void cli_saga_transfer(cli_conn *c, const char *gid, int64_t from, int64_t to,
    int64_t amount, uint32_t timeout_ms, cli_xfer *out);

// A consistent snapshot of every account: every participant read at one
// HLC timestamp. ids ascending; owned (release with cli_snapshot_fini).
typedef struct cli_snapshot {
	clk_ts ts;
	size_t n;
	int64_t *ids;
	int64_t *bal;
	int64_t total;
	size_t other_keys; // keys that are not accounts
} cli_snapshot;

// Reads every participant at `at` (0: the timestamp the first
// participant answers with), retrying RETRY answers until timeout_ms has
// passed (DTX_ETIMEDOUT). Errors of the calls otherwise.
dtx_err cli_snapshot_read(
    cli_conn *c, clk_ts at, uint32_t timeout_ms, cli_snapshot *out);
void cli_snapshot_fini(cli_snapshot *s);
// Appends {"ts":T,"balances":{"<id>":<balance>,...}} to sb.
void cli_snapshot_json(const cli_snapshot *s, cli_sb *sb);

// Creates accounts 0..n-1 with balance each in one 2PC TXN of PUTs, but
// only when a snapshot shows no account at all (idempotent). *created
// says whether it did. DTX_EEXIST when some but not all of the accounts
// exist, errors of the calls otherwise.
dtx_err cli_bank_init(cli_conn *c, uint32_t n, int64_t balance, bool *created,
    char *err, size_t errlen);

// HEALTH of node id: *rep owned on success (proto_msg_free).
dtx_err cli_health(
    cli_conn *c, uint32_t id, uint32_t timeout_ms, proto_msg *rep);
// Sends FAULT kind (args[0..nargs), optional string s) to node id.
dtx_err cli_send_fault(cli_conn *c, uint32_t id, const char *kind,
    const int64_t *args, uint32_t nargs, const char *s);
// STATUS of txid at participant id.
dtx_err cli_txn_status(
    cli_conn *c, uint32_t id, uint64_t txid, proto_txn_state *out);
// SAGA_STATUS of gid at the orchestrator; failed_step -1 when none.
dtx_err cli_saga_status(
    cli_conn *c, const char *gid, proto_saga_state *st, int32_t *failed_step);
// Node id of the saga orchestrator, or UINT32_MAX when there is none.
uint32_t cli_conn_saga_id(const cli_conn *c);
// "committed", "aborted", "unknown".
const char *cli_outcome_name(proto_outcome o);
// The value of counter name in rep, a HEALTH reply (borrowed); -1 when
// rep is not one or has no such counter.
int64_t cli_health_counter(const proto_msg *rep, const char *name);
// The int64 value of a found READ entry: an integer, or 8 bytes
// little-endian (a balance written by PUT). False otherwise.
bool cli_entry_i64(const proto_entry *e, int64_t *out);

// Bench clusters (bench_cluster.c): the parts the cluster benchmarks
// (bench_saga.c, bench_2pc.c) share. None keeps state; all are
// thread-safe where the proto client they borrow is.

// Writes the key "acct:<acct>" of account acct into buf.
void cli_acct_key(char *buf, size_t len, int64_t acct);

// Fills *op (zeroed first) as an ADD of delta to key (borrowed) that must
// leave it at least min.
void cli_op_add(proto_op *op, const char *key, int64_t delta, int64_t min);
// Opens a client to url as node id (30 s calls, 2 s connect wait).
// *out returns owned (proto_client_close) on success.
dtx_err cli_bench_open_client(const char *url, uint32_t id, proto_client **out);
// One call with a timeout; *rep owned on success (proto_msg_free), and
// freed here on DTX_EREFUSED. Borrows cl and req.
dtx_err cli_bench_call(
    proto_client *cl, proto_msg *req, proto_msg *rep, uint32_t timeout_ms);
// The HEALTH counter name of the node behind cl, or -1. Borrows cl.
int64_t cli_bench_counter(proto_client *cl, const char *name);
// What one bench worker counted: outcomes, its first error and the
// latencies of what finished (ns). Start from { 0 }; lat is owned
// (dtx_free).
typedef struct cli_bench_tally {
	uint64_t committed, aborted, unknown, errors;
	uint64_t *lat;
	size_t nlat, cap;
	bool oom; // a latency could not be recorded
	dtx_err first_err;
} cli_bench_tally;
// Records latency ns in t; out of memory sets t->oom.
void cli_bench_tally_lat(cli_bench_tally *t, uint64_t ns);

// A benchmark client: on a thread of its own (cli_bench_sync_run) or
// without one, keeping one request in flight on a shared batcher and
// sending the next from the previous one's completion (cli_bench_async_
// send), until the deadline. next(owner) builds the next request (kept
// by the owner until its answer); count(owner, ...) takes an answer (rv,
// and *rep when rv is DTX_OK: consumed) and how long it took.
typedef struct cli_bench_async {
	void *owner;
	proto_batcher *b;
	_Atomic uint64_t *deadline_ns;
	atomic_int *finished; // incremented once the client stops
	uint32_t timeout_ms;
	proto_msg *(*next)(void *owner);
	void (*count)(void *owner, dtx_err rv, proto_msg *rep, uint64_t ns);
	uint64_t t0; // when the request in flight was sent
} cli_bench_async;

// Sends a's next request, or (past the deadline, or when the batcher
// refuses it) stops a. A failed call stops a too, after counting it.
void cli_bench_async_send(cli_bench_async *a);

// Runs a's requests one at a time on cl, on the calling thread (a->b is
// not used): counts itself in *ready, waits for *go, then sends until the
// deadline.
void cli_bench_sync_run(
    cli_bench_async *a, proto_client *cl, atomic_int *ready, atomic_bool *go);

// CPU time (user + system, ms) used so far by the first node of role
// head in topo, by its participants together and by this process (all
// its threads); -1 where it cannot be read. Taken before and after a run
// and reported per operation, it is what a change to the hot path costs
// or saves, whatever else shares the cores.
typedef struct cli_bench_cpu {
	double head, parts, self;
} cli_bench_cpu;
void cli_bench_cpu_read(
    cli_cluster *cl, const dtx_topo *topo, dtx_role head, cli_bench_cpu *out);
// Prints "  CPU us per <unit>: <head_name> …, participants …, bench
// clients …": the CPU microseconds from a to b per one of n operations.
void cli_bench_cpu_print(const char *unit, const char *head_name,
    const cli_bench_cpu *a, const cli_bench_cpu *b, uint64_t n);
// Writes cpu_us_per_<unit>_<head_name>, _participants and _client: the
// CPU microseconds from a to b per one of n operations.
void cli_bench_cpu_json(cli_json *j, const char *unit, const char *head_name,
    const cli_bench_cpu *a, const cli_bench_cpu *b, uint64_t n);
// The clients of a cluster bench. Each is a worker struct of the bench's
// own whose first member is a cli_bench_client; the fleet runs them for
// a number of seconds, either as callbacks sharing one connection through
// a batcher (client batch above 1) or as one thread and one connection
// each.
typedef struct cli_bench_fleet cli_bench_fleet;
typedef struct cli_bench_client {
	cli_bench_tally t; // first: see cli_bench_tally_merge
	cli_bench_async as; // as.owner is the worker
	uint64_t seed; // a PRNG state of its own
	proto_client *cl; // its own connection, or NULL (shared batcher)
	pthread_t th;
	cli_bench_fleet *fleet;
	void *ctx; // the bench's run, shared by its clients
	int id; // 0 .. n - 1
} cli_bench_client;
struct cli_bench_fleet {
	void *workers; // owned: n structs of stride bytes
	size_t stride;
	int n, started;
	proto_batcher *batcher; // owned; NULL: a thread per client
	atomic_int ready, finished;
	atomic_bool go;
	_Atomic uint64_t deadline_ns;
};
// Sets up f with n zeroed workers (f->workers) of stride bytes: numbers
// and seeds each client, gives it ctx, opens a batcher of
// batch requests per message (inflight messages at once) over shared
// when batch > 1, or else a connection of each client's own to url as
// client_id. next and count are the clients' hooks (cli_bench_async);
// each call gets timeout_ms. Close f with cli_bench_fleet_close even on
// error. DTX_ENOMEM, errors of proto_batcher_open and
// cli_bench_open_client.
dtx_err cli_bench_fleet_open(cli_bench_fleet *f, size_t stride, int n,
    void *ctx, proto_client *shared, const char *url, uint32_t client_id,
    int64_t batch, int64_t inflight, uint32_t timeout_ms,
    proto_msg *(*next)(void *owner),
    void (*count)(void *owner, dtx_err rv, proto_msg *rep, uint64_t ns));
// Runs the clients for seconds, each until its first answer after that,
// and returns how long it took (s); -1 when a thread cannot start (said
// on stderr, prefixed by what). The
// CPU of cl's first node of role head, its participants and this process
// is read just before (*cpu0) and after (*cpu1).
double cli_bench_fleet_run(cli_bench_fleet *f, const char *what,
    int64_t seconds, cli_cluster *cl, dtx_role head, cli_bench_cpu *cpu0,
    cli_bench_cpu *cpu1);
// Stops and joins the client threads, closes their connections and the
// batcher and frees the workers with their latencies (after
// cli_bench_tally_merge). Safe on a fleet that was never opened (zeroed)
// or failed to open.
void cli_bench_fleet_close(cli_bench_fleet *f);

// For a bench's count hook: true (the call counted as an error, *rep
// freed) when rv is not DTX_OK or the answer is not of type want.
bool cli_bench_tally_bad(
    cli_bench_tally *t, dtx_err rv, proto_msg *rep, proto_type want);

// Counts an answer's outcome; its latency ns goes into the committed
// latencies, and into them for an aborted one too when with_aborted.
void cli_bench_tally_outcome(
    cli_bench_tally *t, proto_outcome o, uint64_t ns, bool with_aborted);
// Sums the tallies of n workers into *sum (its lat NULL, nlat the total)
// and returns all their latencies sorted in *all (owned: dtx_free). Each
// worker is a struct of stride bytes whose first member is its tally,
// the first at workers (borrowed). DTX_ENOMEM, also when a tally has oom.
dtx_err cli_bench_tally_merge(const void *workers, size_t stride, int n,
    cli_bench_tally *sum, uint64_t **all);
// A cluster bench's cluster, ready to measure: its own directory under
// the bench's --dir, the nodes started, a client to the node the bench
// drives (the coordinator or the saga orchestrator) and one to every
// participant, and the accounts split among the participants by routing
// their keys.
typedef struct cli_bench_env {
	char dir[4096]; // the cluster's directory
	cli_cluster *cl;
	const dtx_topo *topo;
	uint32_t client_id; // the topology's client node
	const char *head_url; // the first node of role head's URL
	proto_client *head; // to it
	proto_client *parts[DTX_TOPO_MAX]; // in topo's participant order
	int64_t **owned; // owned[k]: the accounts of the k-th participant
	size_t *nowned;
	uint32_t nparts;
} cli_bench_env;
// Sets *e up: refuses a dir in memory (fsync timings on tmpfs say nothing
// about a disk), creates a cluster of `participants` participants and a
// head of role head (DTX_ROLE_COORDINATOR, or DTX_ROLE_SAGA: then only
// the participants and the orchestrator run) with the daemons' log_level,
// starts it, opens the clients and splits `accounts` accounts. On failure
// prints why on stderr, prefixed by what, and returns CLI_EXIT_USAGE (a
// bad setting) or CLI_EXIT_FAILURE; CLI_EXIT_OK on success. Call
// cli_bench_env_close either way.
int cli_bench_env_open(cli_bench_env *e, const char *what, const char *dir,
    int64_t participants, dtx_role head, const char *log_level,
    int64_t accounts);
// Picks a transfer between two of e's participants with the PRNG at
// seed: their indexes *p != *q (e->nparts >= 2) and the keys of an
// account of the p-th into kf and of the q-th into kt (klen bytes each).
void cli_bench_pick_keys(const cli_bench_env *e, uint64_t *seed, uint32_t *p,
    uint32_t *q, char *kf, char *kt, size_t klen);
// Writes the fields every cluster bench reports, participants through
// errors, with the aborted count under aborted_key.
void cli_bench_json_counts(cli_json *j, int64_t participants, int64_t clients,
    int64_t accounts, double secs, const cli_bench_tally *sum,
    const char *aborted_key);
// Closes the clients, stops the cluster and removes its directory (or,
// with keep, says on stderr where it was kept). Safe on a zeroed e.
void cli_bench_env_close(cli_bench_env *e, const char *what, bool keep);
// One run of a cluster bench: its cluster, its clients and, once they have
// run (cli_bench_run_clients), what they counted.
typedef struct cli_bench_run {
	const char *what; // the command, prefixed to its messages
	dtx_role head; // the role of the node the clients drive
	cli_bench_env env;
	cli_bench_fleet fleet; // the workers stay readable until close
	cli_bench_tally sum; // the workers' tallies summed (lat NULL)
	uint64_t *all; // every latency (ns), sorted; owned
	double secs; // how long the clients ran
	double p50_ms, p99_ms;
	cli_bench_cpu cpu0, cpu1; // just before and after the clients ran
} cli_bench_run;
// Sets up *br for the command what: opens its cluster as
// cli_bench_env_open does (dir through accounts), then creates the
// accounts with init(ctx), which may read br->env. On failure prints why
// on stderr and returns CLI_EXIT_USAGE or CLI_EXIT_FAILURE; CLI_EXIT_OK
// on success. Call cli_bench_run_close either way. Borrows what and ctx.
int cli_bench_run_open(cli_bench_run *br, const char *what, const char *dir,
    int64_t participants, dtx_role head, const char *log_level,
    int64_t accounts, dtx_err (*init)(void *ctx), void *ctx);
// Runs n clients for seconds against br's head (a cli_bench_fleet of
// workers of stride bytes, with ctx, batch, inflight, timeout_ms, next and
// count as cli_bench_fleet_open takes them), then fills br->secs, the
// CPU readings, br->sum, br->all and the latency quantiles. On failure
// prints why on stderr and returns CLI_EXIT_FAILURE; CLI_EXIT_OK on
// success.
int cli_bench_run_clients(cli_bench_run *br, size_t stride, int n, void *ctx,
    int64_t seconds, int64_t batch, int64_t inflight, uint32_t timeout_ms,
    proto_msg *(*next)(void *owner),
    void (*count)(void *owner, dtx_err rv, proto_msg *rep, uint64_t ns));
// Closes br's clients and its cluster (cli_bench_env_close with keep) and
// frees its latencies. Safe on a br that failed to open.
void cli_bench_run_close(cli_bench_run *br, bool keep);
// Prints "<what>: N calls failed (first: <first>)" on stderr when errors
// is not 0.
void cli_bench_say_errors(const char *what, uint64_t errors, dtx_err first);
// The body of a cluster bench command: parses argv into cfg (size bytes,
// zeroed here) by table (n options), refuses positional arguments, runs
// run(cfg) and frees cfg. Returns a CLI_EXIT_* code.
int cli_bench_main(const char *what, const dtx_cfg_opt *table, size_t n,
    void *cfg, size_t size, int argc, char **argv, int (*run)(const void *cfg));

// Nemeses (nemesis.c). A schedule is a pure function of the seed and the
// settings (cli_nemesis_plan); a cli_nemesis applies it to a running
// cluster, recording each action in the history as an `info` op of
// process CLI_PROC_NEMESIS.
typedef enum cli_nem_kind {
	CLI_NEM_KILL = 1u << 0,
	CLI_NEM_PAUSE = 1u << 1,
	CLI_NEM_PARTITION = 1u << 2,
	CLI_NEM_CLOCK = 1u << 3,
	CLI_NEM_DISK = 1u << 4,
} cli_nem_kind;
#define CLI_NEM_NKINDS 5

typedef enum cli_nem_target {
	CLI_TARGET_ANY = 0,
	CLI_TARGET_COORDINATOR,
	CLI_TARGET_PARTICIPANTS,
	CLI_TARGET_SAGA,
} cli_nem_target;

typedef enum cli_part_shape {
	CLI_SHAPE_HALVES = 0, // two halves, the smaller first (bisect)
	CLI_SHAPE_ONE = 1, // one node isolated
	CLI_SHAPE_BRIDGE = 2, // halves sharing one node that sees both
	CLI_SHAPE_RING = 3, // each node sees its own majority
	CLI_SHAPE_COUNT
} cli_part_shape;

typedef enum cli_nem_action {
	CLI_NA_KILL = 0,
	CLI_NA_RESTART,
	CLI_NA_PAUSE,
	CLI_NA_RESUME,
	CLI_NA_PARTITION,
	CLI_NA_HEAL,
	CLI_NA_CLOCK_BUMP,
	CLI_NA_CLOCK_STROBE,
	CLI_NA_CLOCK_RESET,
	// Disk: SIGKILL the target, then tear its WAL's tail as a crash in
	// the middle of writing the next batch would; RESTART ends it.
	CLI_NA_DISK,
	CLI_NA_COUNT
} cli_nem_action;

// How a disk fault leaves the record it tears (it is written after the
// last complete record of the newest WAL segment, so it was never
// acknowledged and no acknowledged record is touched): followed by
// whatever the segment holds there (its zero-filled preallocation), or
// with the file cut off inside it.
typedef enum cli_disk_form {
	CLI_DISK_TORN = 0,
	CLI_DISK_TRUNCATED = 1,
} cli_disk_form;

// One planned action at at_ms after the workload started.
typedef struct cli_nem_event {
	uint64_t at_ms;
	cli_nem_action action;
	uint32_t ntargets;
	uint32_t targets[DTX_TOPO_MAX];
	cli_part_shape shape; // PARTITION
	cli_grudge grudge; // PARTITION
	// PARTITION: for onset_ms the cut holds one way only, dropping what
	// a node sends to a node after it in targets[] (onset_later) or
	// before it; then both ways. 0: both ways at once.
	uint32_t onset_ms;
	bool onset_later;
	int64_t offset_ms[DTX_TOPO_MAX]; // CLOCK_BUMP: per target index
	int64_t strobe_delta_ms; // CLOCK_STROBE: flip between 0 and this
	uint32_t strobe_period_ms; // time at each of the two offsets
	uint32_t strobe_ms; // how long to strobe
	cli_disk_form disk_form; // DISK
	uint32_t disk_len; // DISK: payload length of the torn record
	uint32_t disk_keep; // DISK: bytes of it written, < 20 + len + 4
	uint64_t disk_seed; // DISK: seed of the torn record's bytes
} cli_nem_event;

typedef struct cli_nem_cfg {
	unsigned kinds; // cli_nem_kind bits
	unsigned shapes; // 1 << cli_part_shape bits; 0 means all
	cli_nem_target target;
	uint64_t seed;
	uint64_t interval_ms; // mean time between and during faults
	// A fault is held for [max(interval / 2, hold_min_ms), that +
	// interval); 0 keeps interval * [0.5, 1.5).
	uint64_t hold_min_ms;
	// Mean quiet time before and between faults, drawn from
	// [gap / 2, gap * 1.5); 0 means interval.
	uint64_t gap_ms;
	// Partitions come on one way first for [onset_max / 4, onset_max)
	// ms, in a seeded direction, as a failing link or a rule set that
	// goes in on one side first does; 0: both ways at once.
	uint32_t onset_max_ms;
	uint64_t duration_ms; // no fault starts after this
	int64_t max_offset_ms; // the daemons' HLC max offset
	const dtx_topo *topo; // borrowed
} cli_nem_cfg;

// Parses "kill,pause,partition,clock,disk" (or "none", "") into kind bits;
// shapes "halves,one,bridge,ring"; a target name. DTX_EINVAL with the
// bad word in err.
dtx_err cli_nem_kinds_parse(
    const char *s, unsigned *out, char *err, size_t errlen);
dtx_err cli_nem_shapes_parse(
    const char *s, unsigned *out, char *err, size_t errlen);
dtx_err cli_nem_target_parse(const char *s, cli_nem_target *out);
const char *cli_nem_action_name(cli_nem_action a); // "kill", "clock-bump"
const char *cli_part_shape_name(cli_part_shape s); // "halves", ...
const char *cli_nem_target_name(cli_nem_target t);
// The fault kind an action starts or ends ("kill", "pause", "partition",
// "clock", "disk"; a disk fault's RESTART is the kill kind's).
const char *cli_nem_action_kind(cli_nem_action a);
// True for actions that start a fault.
bool cli_nem_action_starts(cli_nem_action a);

// The daemon ids of topo a target selects, in topology order. Any: all
// daemons. DTX_ENOENT when the selection is empty (no saga node).
dtx_err cli_nem_targets(const dtx_topo *topo, cli_nem_target t,
    uint32_t ids[DTX_TOPO_MAX], uint32_t *n);

// The grudge of a partition shape over nodes[0..n) (in that order: the
// caller shuffles), as Jepsen's nemesis builds it: halves = complete
// grudge of bisect; one = nodes[0] alone; bridge = halves where the first
// node of the second half keeps talking to everyone; ring = node i sees
// the majority nodes[i .. i+n/2] (cyclic). Pure.
void cli_partition_grudge(
    cli_part_shape shape, const uint32_t *nodes, uint32_t n, cli_grudge *out);

// Plans the whole schedule. One fault at a time: kinds are taken in a
// seeded shuffle of the enabled ones (reshuffled every round), each held
// and followed by a quiet time as cli_nem_cfg says; every fault that
// starts is ended before duration_ms. A disk fault strikes a participant
// of the targets (any target when they include none). *out owned (free
// with dtx_free); *n may be 0. DTX_EINVAL, DTX_ENOMEM.
dtx_err cli_nemesis_plan(
    const cli_nem_cfg *cfg, cli_nem_event **out, size_t *n);
// Appends the JSON value of an event ({"targets":[...],...}) to sb.
void cli_nem_event_json(const cli_nem_event *e, cli_sb *sb);

// The disk fault on a node that is not running (e a CLI_NA_DISK event):
// finds the newest WAL segment (wal-<hex>.log) in data or one folder
// below it, walks its records while they are complete and their CRCs
// hold, and writes there the first e->disk_keep bytes of the record that
// would have come next (seeded bytes, the right LSN and CRC), cutting
// the file off after them for CLI_DISK_TRUNCATED. No byte of a complete
// record changes, so no acknowledged write is lost. extra (size len) gets
// the details as JSON members ("segment", "offset", "lsn",
// "segment_bytes"). DTX_ENOENT when there is no segment, DTX_ECORRUPT
// when its header is not a WAL's, file errors, DTX_ENOMEM.
dtx_err cli_nem_tear_wal(
    const char *data, const cli_nem_event *e, char *extra, size_t len);

typedef struct cli_nemesis cli_nemesis;

// Starts a thread that applies ev[0..n) (copied) at their times to the
// cluster through cl (used only by this thread until cli_nemesis_stop)
// and conn, recording each in h. Partitions use iptables when the
// cluster runs in namespaces, the daemons' FAULT "partition" otherwise.
// A disk fault's op value says what was torn: {"targets":[2],"form":
// "torn","segment":"wal-….log","offset":N,"record_bytes":R,
// "written_bytes":W,"lsn":L} (L: the LSN the torn record would have had).
//
// With cc non-NULL the nodes are the containers of a compose project:
// kill/start, pause/unpause and partitions act on the containers (see
// compose.c) and disk faults are refused (DTX_EPERM, a failed action).
// own says the cluster was started for this run: then every daemon found
// dead at the end is restarted; otherwise only those the nemesis killed.
typedef struct cli_compose cli_compose; // compose.c, below
dtx_err cli_nemesis_start(cli_cluster *cl, cli_compose *cc, bool own,
    cli_conn *conn, cli_history *h, const cli_nem_event *ev, size_t n,
    cli_nemesis **out);
// Stops the thread and heals everything: resumes paused daemons,
// restarts dead ones, heals partitions, resets clocks (recording the
// ends of open faults), then frees nothing: counts stay readable until
// cli_nemesis_free. Safe to call twice.
void cli_nemesis_stop(cli_nemesis *nm);
void cli_nemesis_free(cli_nemesis *nm);
// Faults started so far, by cli_nem_kind bit index (kill, pause,
// partition, clock, disk), and how many actions failed. Thread-safe.
void cli_nemesis_counts(
    const cli_nemesis *nm, size_t started[CLI_NEM_NKINDS], size_t *errors);
// The fault in force now ("partition one [2]" or "none"). Thread-safe.
void cli_nemesis_current(cli_nemesis *nm, char *buf, size_t len);

// Progress (progress.c): a thread that draws one updating line on a
// terminal (every 250 ms) or prints a plain line every 5 s otherwise.
typedef struct cli_progress_sample {
	uint64_t ok, fail, info; // completed client ops so far
	char fault[96]; // the fault in force
} cli_progress_sample;

typedef void (*cli_progress_fn)(void *arg, cli_progress_sample *s);

typedef struct cli_progress cli_progress;

// Starts drawing to out (borrowed) for a run of total_ms. sample is
// called from the progress thread. DTX_ENOMEM.
dtx_err cli_progress_start(FILE *out, uint64_t total_ms, cli_progress_fn fn,
    void *arg, cli_progress **res);
// Stops the thread, ends the line. NULL does nothing.
void cli_progress_stop(cli_progress *p);

// Subcommands.
int cli_cmd_cluster(int argc, char **argv); // cmd_cluster.c
int cli_cmd_transfer(int argc, char **argv); // cmd_txn.c
int cli_cmd_balances(int argc, char **argv); // cmd_txn.c
int cli_cmd_bank(int argc, char **argv); // bank.c

// dtx health (cmd_health.c) and container nemeses (compose.c).
int cli_cmd_health(int argc, char **argv);

// The docker-compose topology (compose/): node ids map to services by role
// ("coordinator", "participant<k>" for the k-th participant in topology
// order, "saga"); containers are found by their compose labels, so both
// docker-compose 1.x and `docker compose` v2 projects work. Each call runs
// the docker command (a few hundred ms); errors: DTX_ENOENT (no container
// for the service, or no docker command), DTX_EUNREACH (no Docker daemon
// answers), DTX_EIO (docker refused), DTX_EINVAL (id is no service).
#define CLI_COMPOSE_PROJECT_DEFAULT "dtx"
#define CLI_COMPOSE_NAME_MAX 64

typedef struct cli_compose cli_compose;

typedef struct cli_compose_state {
	char service[CLI_COMPOSE_NAME_MAX];
	char container[16]; // short id
	char state[16]; // "running", "paused", "exited", ...
	char health[16]; // "healthy", "starting", "unhealthy", "none"
	char ip[16]; // on the project network; "" when not running
} cli_compose_state;

// Opens the project (NULL: $COMPOSE_PROJECT_NAME, else "dtx") for the
// nodes of topo (copied) after checking that a Docker daemon answers. *out
// is owned (free with cli_compose_free); err gets a one-line reason.
dtx_err cli_compose_open(const char *project, const dtx_topo *topo,
    cli_compose **out, char *err, size_t errlen);
void cli_compose_free(cli_compose *c);
const char *cli_compose_project(const cli_compose *c); // borrowed
// The service of node id, or NULL (clients, unknown ids). Borrowed.
const char *cli_compose_service(const cli_compose *c, uint32_t id);
// The full id of service's container into buf.
dtx_err cli_compose_container(
    const cli_compose *c, const char *service, char *buf, size_t len);
// docker kill -s KILL / start / pause / unpause the container of node id.
dtx_err cli_compose_kill(cli_compose *c, uint32_t id);
dtx_err cli_compose_start(cli_compose *c, uint32_t id);
dtx_err cli_compose_pause(cli_compose *c, uint32_t id);
dtx_err cli_compose_unpause(cli_compose *c, uint32_t id);
// State, health and address of the container of node id.
dtx_err cli_compose_status(cli_compose *c, uint32_t id, cli_compose_state *out);
// Applies g (both directions of every pair) with iptables DROP rules
// inside the running containers; containers that are not running are
// skipped. Returns the first error after trying every container.
dtx_err cli_compose_partition(cli_compose *c, const cli_grudge *g);
// Flushes the partition rules in every running container.
dtx_err cli_compose_heal(cli_compose *c);
// Waits until every service's container runs and is healthy.
dtx_err cli_compose_wait_healthy(cli_compose *c, uint64_t timeout_ms);

#endif // CLI_INT_H
