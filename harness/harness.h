// SPDX-License-Identifier: MIT
//
// The harness: a Jepsen-style library for testing dtx clusters. It starts
// and stops clusters (local processes, network namespaces, docker compose),
// drives them with clients and the bank workload, injects faults (nemeses),
// records the history, checks it (bank, atomicity, saga, stats), stores every
// run in the results database and writes reports. It also holds the small
// pieces every `dtx` command shares: exit codes, the subcommand table and
// flag parsing, and a JSON writer and reader.
//
// Public names take the prefix hx_ (macros HX_). This is the only header
// other folders include; harness_int.h is the harness's own. Besides
// proto and clock, the harness uses storage for its WAL file API only
// (storage.h, "WAL files"): the disk nemesis damages a WAL through it and
// keeps no copy of the on-disk layout.

#ifndef HARNESS_H
#define HARNESS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "clock.h"
#include "common.h"
#include "proto.h"

// ---------------------------------------------------------------- commands

// What every dtx command shares (util.c). Exit codes: a bank run exits 0
// when the history is valid, 1 when invalid, 2 when unknown.
#define HX_EXIT_OK 0
#define HX_EXIT_INVALID 1
#define HX_EXIT_UNKNOWN 2
#define HX_EXIT_USAGE 64 // bad flags or arguments (sysexits EX_USAGE)
#define HX_EXIT_FAILURE 70 // could not run (EX_SOFTWARE)
// A bank run cut short by signal sig (SIGINT 130, SIGTERM 143), after it
// healed, stopped its cluster and stored its partial history.
#define HX_EXIT_SIGNAL(sig) (128 + (sig))

// A subcommand: argv holds what follows its name.
typedef int (*hx_cmd_fn)(int argc, char **argv);

typedef struct hx_cmd {
	const char *name;
	hx_cmd_fn fn;
	const char *summary;
} hx_cmd;

// Runs the command named argv[0] from cmds; prints a one-line error naming
// the known commands when it is missing or unknown (exit HX_EXIT_USAGE),
// and the list of commands for "--help" or "-h" (exit HX_EXIT_OK).
// what is the command path for messages ("dtx", "dtx bench").
int hx_dispatch(
    const char *what, const hx_cmd *cmds, size_t n, int argc, char **argv);

// Parses flags for a subcommand through the common config table (no
// environment). On a bad flag prints "dtx <what>: <error>" and a hint to
// stderr and returns HX_EXIT_USAGE; "--help" prints the flags and returns
// -1 (the caller exits 0). Returns 0 on success.
int hx_parse_flags(const char *what, const dtx_cfg_opt *table, size_t n,
    void *cfg, int argc, char **argv, char **pos, int max_pos, int *npos);

// Latency quantile over a sorted array of n samples (q in [0, 1]; sort
// with dtx_sort_u64).
uint64_t hx_quantile(const uint64_t *sorted, size_t n, double q);

// A streaming JSON writer (json.c): hx_json_begin(out), then fields, then
// end. Keys and string values are escaped; integers are written exactly
// (hx_json_int, hx_json_u64: never pass an integer through hx_json_num),
// doubles with the digits that read back as the same value. Not
// thread-safe.
typedef struct hx_json {
	FILE *out;
	int depth;
	bool need_comma[16];
} hx_json;

void hx_json_begin(hx_json *j, FILE *out); // writes "{"
void hx_json_end(hx_json *j); // writes "}\n"
void hx_json_key(hx_json *j, const char *key);
void hx_json_str(hx_json *j, const char *key, const char *val);
void hx_json_int(hx_json *j, const char *key, int64_t val);
void hx_json_num(hx_json *j, const char *key, double val);
void hx_json_bool(hx_json *j, const char *key, bool val);
void hx_json_obj_begin(hx_json *j, const char *key); // key NULL in arrays
void hx_json_obj_end(hx_json *j);
void hx_json_arr_begin(hx_json *j, const char *key);
void hx_json_arr_end(hx_json *j);
// Writes text as raw JSON when it is valid JSON, as a string otherwise (a
// damaged stored row must not make the output invalid).
void hx_json_raw(hx_json *j, const char *key, const char *text);
// Writes s as a JSON string literal (with quotes) to out.
void hx_json_escape(FILE *out, const char *s);

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
//     DIR/certs/            the CA and every node's key and certificate
//                           (certs.c; not with --insecure)
typedef struct hx_cluster hx_cluster;

typedef struct hx_subnet hx_subnet; // netns.c, below

typedef struct hx_cluster_opts {
	const char *dir; // created if missing
	uint32_t participants; // 1 .. 16
	bool saga; // also run dtx-saga
	// Coordinators and saga orchestrators (0: one). Node ids: the first
	// coordinator 0, participants 1..N, orchestrators N+1.. (with saga),
	// then the further coordinators; each daemon has its own data dir,
	// so each coordinator keeps its own log and its own transactions.
	uint32_t coordinators; // 0 .. HX_COORDINATORS_MAX
	uint32_t sagas; // 0 .. HX_COORDINATORS_MAX, only with saga
	const char *host; // listen address, default "127.0.0.1"
	const char *log_level; // passed to the daemons, default "info"
	// Each daemon in its own network namespace (netns.c), reached over
	// a bridge at the subnet's .1; needs root (DTX_EPERM otherwise).
	// host is then ignored.
	bool netns;
	// The daemons take FAULT requests (--enable-faults) from the harness
	// role; a cluster for a nemesis run needs it, any other should not.
	bool enable_faults;
	// With netns: the subnet to use (borrowed; NULL: a free one of
	// HX_NETNS_POOL). DTX_EBUSY when it is in use.
	const hx_subnet *subnet;
	// Plaintext tcp:// links and daemons started with --insecure (for a
	// single trusted host). false (the default): every link is mutual
	// TLS (tls+tcp://) with the certificates in DIR/certs, made there by
	// hx_certs_ensure (a CA already there is kept).
	bool insecure;
} hx_cluster_opts;

#define HX_COORDINATORS_MAX 8

// Creates the directory layout and a topology with free TCP ports
// (coordinator id 0, participants 1..N, saga N+1, the harness as client;
// further coordinators and orchestrators as hx_cluster_opts says).
// Returns owned (free with hx_cluster_free). err gets a one-line reason.
dtx_err hx_cluster_create(
    const hx_cluster_opts *opts, hx_cluster **out, char *err, size_t errlen);

// Opens an existing cluster directory (topology + state file).
dtx_err hx_cluster_open(
    const char *dir, hx_cluster **out, char *err, size_t errlen);

// Frees the handle; running daemons keep running. NULL does nothing.
void hx_cluster_free(hx_cluster *c);

// The cluster's topology and directory (borrowed).
const dtx_topo *hx_cluster_topo(const hx_cluster *c);
const char *hx_cluster_dir(const hx_cluster *c);

// Starts node id's daemon (detached into its own process group) with
// extra environment entries "KEY=VALUE" (env may be NULL; the list ends
// with NULL). Refuses with DTX_EEXIST when it is already running.
dtx_err hx_cluster_start(hx_cluster *c, uint32_t id, char *const env[]);

// Node id's daemon command line as hx_cluster_start runs it (without the
// netns wrapper): the executable, --node-id, --topology, --data, --http,
// the trust flags, --enable-faults and --log-level as the cluster has
// them. argv[0] is the executable's path, argv[argc] is NULL; every
// string lives in *a. DTX_EINVAL (no such node, or a client),
// DTX_ENOENT (no daemon executable found).
#define HX_DAEMON_ARGV_MAX 24
typedef struct hx_daemon_args {
	int argc;
	char *argv[HX_DAEMON_ARGV_MAX];
	char bin[4096], data[4096 + 32], topo[4096 + 32], http[320];
	char ca[4096 + 16], cakey[4096 + 16], crt[4096 + 16], key[4096 + 16];
	char id[16], level[16];
} hx_daemon_args;
dtx_err hx_cluster_daemon_args(hx_cluster *c, uint32_t id, hx_daemon_args *a);

// Adds env (copied; "KEY=VALUE" entries, at most HX_CLUSTER_ENV_MAX, the
// list ends with NULL) to the environment of every daemon started from
// now on through c, after hx_cluster_start's own entries (which win).
// Replaces the previous set; NULL clears it. DTX_ERANGE when too many or
// too long.
#define HX_CLUSTER_ENV_MAX 4
dtx_err hx_cluster_set_env(hx_cluster *c, const char *const env[]);

// Waits until node id accepts connections on its URL, or its process has
// exited (DTX_ECLOSED), or timeout_ms passed (DTX_ETIMEDOUT).
dtx_err hx_cluster_wait_ready(hx_cluster *c, uint32_t id, uint64_t timeout_ms);

// Starts every node that is not running and waits until all are ready.
dtx_err hx_cluster_start_all(hx_cluster *c, uint64_t timeout_ms);

// Sends sig to node id's daemon (SIGKILL, SIGSTOP, SIGCONT, SIGTERM).
// After SIGKILL the process is reaped and forgotten.
dtx_err hx_cluster_signal(hx_cluster *c, uint32_t id, int sig);

// Waits for node id's daemon to exit (e.g. at a crash point) and reaps it.
// *status gets the waitpid status when status is non-NULL.
dtx_err hx_cluster_wait_exit(
    hx_cluster *c, uint32_t id, uint64_t timeout_ms, int *status);

// The pid of node id's daemon, or 0 when it is not running.
int hx_cluster_pid(hx_cluster *c, uint32_t id);

// Stops every daemon: SIGCONT (in case it is paused), SIGTERM, then
// SIGKILL after grace_ms; removes the state file.
dtx_err hx_cluster_stop_all(hx_cluster *c, uint64_t grace_ms);

// Path of node id's log file (borrowed until the next call).
const char *hx_cluster_log(hx_cluster *c, uint32_t id);

// True when the cluster's links are mutual TLS (its topology's URLs are
// tls+tcp://); false for an --insecure one.
bool hx_cluster_is_tls(const hx_cluster *c);

// ---------------------------------------------------------------- certificates
//
// A cluster's TLS material (certs.c), made with mbedTLS's x509write API:
// DIR/ca.crt and DIR/ca.key (the cluster CA, EC P-256, self-signed), and
// per node DIR/<role>-<id>.crt and .key, the subject CN=<role>-<id>,
// OU=<role>, O=dtx (proto_subject_identity). Keys are 0600. The client,
// admin and harness certificates carry the topology's client id.
#define HX_CA_DAYS 3650 // a CA's validity
#define HX_CERT_DAYS 825 // a node certificate's

typedef struct hx_cert_node {
	uint32_t id;
	proto_role role;
} hx_cert_node;

typedef struct hx_certs_opts {
	const char *dir; // created if missing (borrowed)
	const hx_cert_node *nodes; // whose certificates to issue (borrowed)
	size_t n;
	bool force; // replace a CA that is there (and reissue every cert)
	bool keep_ca; // sign with the CA that is there (it must be)
	bool missing_only; // issue only the certificates that are not there
	const char *only; // issue only "<role>-<id>" (with the CA there)
	uint32_t days, ca_days; // 0: HX_CERT_DAYS, HX_CA_DAYS
} hx_certs_opts;

// Issues the certificates o asks for: a new CA unless keep_ca or only,
// refused with DTX_EEXIST when one is there and not force. Names each file
// written on out (may be NULL). err gets a one-line reason: DTX_EEXIST,
// DTX_EINVAL (a CA that cannot be read), DTX_ENOENT (only names no node),
// DTX_EIO and errno codes. Not thread-safe for one dir.
dtx_err hx_certs_init(
    const hx_certs_opts *o, FILE *out, char *err, size_t errlen);

// Makes what a cluster of topology t needs in dir: the CA when there is
// none (one there is kept), and every missing certificate.
dtx_err hx_certs_ensure(
    const char *dir, const dtx_topo *t, char *err, size_t errlen);

// The nodes of t (coordinators, participants, sagas) then client, admin
// and harness at t's client id (max_id when it has no client line), up to
// max; returns how many.
size_t hx_certs_nodes_of(const dtx_topo *t, hx_cert_node *out, size_t max);

// "<role>-<id>" into *out; DTX_EINVAL when s is not one.
dtx_err hx_cert_name_parse(const char *s, hx_cert_node *out);

// The paths of (role, id)'s certificate and key in dir; PROTO_ROLE_NONE:
// the CA's. Each buffer holds len bytes.
void hx_certs_paths(const char *dir, proto_role role, uint32_t id, char *cert,
    char *key, size_t len);

// Opens the CA of dir with (role, id)'s certificate and key: *out owned
// (proto_tls_close). err says which file is wrong.
dtx_err hx_certs_open(const char *dir, proto_role role, uint32_t id,
    proto_tls **out, char *err, size_t errlen);

// The certificate role of a topology role.
proto_role hx_proto_role(dtx_role r);

// "host:port" of a tcp:// or tls+tcp:// URL (borrowed from url), or NULL.
const char *hx_url_hostport(const char *url);

// History, checkers, results and reports.
//
// A run is recorded as a Jepsen-style history: a list of operations
// {index, time_ns, process, type, f, value, error}. Client processes are
// numbered from 0; the nemesis is the process HX_PROC_NEMESIS, printed
// "nemesis". A client that sees an uncertain outcome records `info` and
// continues under a new process id. Values are JSON text (RFC 8259):
//
//   transfer  {"from":3,"to":7,"amount":5,"mode":"2pc","txid":123,"gid":"g1"}
//             (txid/gid may appear only in the completion's value; the
//             checkers look at the completion first, then the invocation;
//             dtx bank puts the txid it chose in the invocation, so an
//             info completion still names it); an ok 2PC/3PC completion
//             adds "cts":<hlc uint64>, the commit timestamp
//   read      invoke: null; ok: {"ts":<hlc uint64>,"balances":{"0":100,...}}
//             (the first op of a dtx bank history is a read by process
//             <clients>, taken right after setup, before any transfer)
//   final-read  the same shape as read, issued after heal, restart and
//             recovery; the saga checker takes the last ok final-read as the
//             final state
//   txn       the list-append workload (--workload list-append): invoke
//             {"mops":[["append",K,V],...],"txid":N,"mode":"2pc"} or
//             {"mops":[["r",K,null],...]}; ok: the same with each read's
//             list ([V,...], oldest first), "cts" for appends, "ts" (the
//             snapshot) for reads; the final reads after recovery add
//             "final":true (see hx_check_elle)
//   nemesis   f is kill, restart, pause, resume, partition, heal, clock-bump,
//             clock-reset, clock-strobe, disk (a kill whose WAL tail is
//             torn before the restart), lose-unsynced, crashpoint,
//             crashpoint-end, crashpoint-hit, packet, packet-end, corrupt,
//             kill-forever, slow-link or slow-link-end; the value is a JSON
//             description:
//             {"targets":[1,2],"fault":7,"shape":"halves",...} ("fault":
//             the id the start and the end of one fault share; an end
//             recorded by the final heal names "faults":[...])
//
// Nemesis ops are `info` (or `invoke` then `info`): the first op of an f
// opens it and the next op with the same f completes it.

#define HX_PROC_NEMESIS ((int64_t)-1)

typedef enum hx_op_type {
	HX_OP_INVOKE = 0,
	HX_OP_OK = 1,
	HX_OP_FAIL = 2,
	HX_OP_INFO = 3,
} hx_op_type;

// "invoke", "ok", "fail", "info".
const char *hx_op_type_name(hx_op_type t);
// Parses the names above; DTX_EINVAL otherwise.
dtx_err hx_op_type_parse(const char *s, hx_op_type *out);

// One operation. Strings are owned by the history; value is JSON text or
// NULL (JSON null), error is free text or NULL.
typedef struct hx_op {
	int64_t index; // position in the history, from 0
	int64_t time_ns; // monotonic nanoseconds since the history began
	int64_t process;
	hx_op_type type;
	char *f;
	char *value;
	char *error;
} hx_op;

typedef struct hx_history hx_history;

// Returns a new, empty history whose clock starts now, or NULL when out of
// memory (free with hx_history_free).
hx_history *hx_history_new(void);
void hx_history_free(hx_history *h);

// Appends an op stamped with the next index and the monotonic time since
// the history began. f must be non-empty; value_json must be valid JSON or
// NULL; error may be NULL. All strings are copied (borrowed). Thread-safe:
// many client threads may add concurrently; indices and times increase
// together. DTX_EINVAL for a bad argument, DTX_ENOMEM.
dtx_err hx_history_add(hx_history *h, int64_t process, hx_op_type type,
    const char *f, const char *value_json, const char *error);

// As hx_history_add with an explicit time (reloading a stored history and
// synthetic histories in tests). Thread-safe.
dtx_err hx_history_append(hx_history *h, int64_t time_ns, int64_t process,
    hx_op_type type, const char *f, const char *value_json, const char *error);

// Number of ops. Thread-safe.
size_t hx_history_len(const hx_history *h);
// Op i (< len), borrowed: stays valid until hx_history_free, even while
// other threads append. Thread-safe.
const hx_op *hx_history_get(const hx_history *h, size_t i);

// Pairs invocations with completions by process (Jepsen's rule: a
// process's next op after an invoke is its completion). Returns an owned
// array of len entries (free with dtx_free): for an invocation the index of
// its completion or -1 when it never completed, for a completion the index
// of its invocation or -1 when it completes nothing. Call when no thread is
// appending. DTX_ENOMEM.
dtx_err hx_history_pairs(const hx_history *h, int64_t **out);

// Writes "nemesis" or the decimal process id into buf (size >= 24).
const char *hx_process_name(int64_t process, char *buf, size_t len);

// ---------------------------------------------------------------- JSON

// A strict JSON reader (RFC 8259): no comments, no trailing commas, no
// leading zeros, valid escapes and UTF-8 only, no duplicate object keys,
// nesting at most HX_JV_MAX_DEPTH deep, nothing after the value.
#define HX_JV_MAX_DEPTH 64

typedef enum hx_jv_type {
	HX_JV_NULL,
	HX_JV_BOOL,
	HX_JV_NUM,
	HX_JV_STR,
	HX_JV_ARR,
	HX_JV_OBJ,
} hx_jv_type;

// A parsed value. Numbers keep their exact integer value when they are
// integers that fit in 64 bits (is_int; neg says the sign; mag is the
// magnitude) and always a double approximation. Arrays and objects keep
// their members as a list (first, next; key set for object members).
typedef struct hx_jv hx_jv;
struct hx_jv {
	hx_jv_type type;
	bool b;
	bool is_int;
	bool neg;
	uint64_t mag;
	double d;
	char *s; // HX_JV_STR: UTF-8, NUL-terminated (len excludes NUL)
	size_t len; // string length, or member count of an array/object
	char *key; // set on object members
	hx_jv *first; // first member
	hx_jv *next; // next sibling
};

typedef struct hx_jdoc hx_jdoc;

// Parses text[0..len). On success *out is an owned document (free with
// hx_jdoc_free). On bad input returns DTX_EINVAL and writes "offset N:
// what is wrong" into err (size errlen); DTX_ENOMEM.
dtx_err hx_json_parse(
    const char *text, size_t len, hx_jdoc **out, char *err, size_t errlen);
void hx_jdoc_free(hx_jdoc *d);
// The document's root value, borrowed from d.
const hx_jv *hx_jdoc_root(const hx_jdoc *d);
// Member key of object v, or NULL when v is not an object or has none.
const hx_jv *hx_jv_get(const hx_jv *v, const char *key);
// The value as int64 / uint64: DTX_EINVAL when not an integer,
// DTX_ERANGE when it does not fit.
dtx_err hx_jv_int(const hx_jv *v, int64_t *out);
dtx_err hx_jv_u64(const hx_jv *v, uint64_t *out);
// True when text[0..len) is valid JSON.
bool hx_json_valid(const char *text, size_t len);

// ---------------------------------------------------------------- checkers

typedef enum hx_valid {
	HX_VALID_TRUE = 0,
	HX_VALID_FALSE = 1,
	HX_VALID_UNKNOWN = 2,
} hx_valid;

// "true", "false", "unknown".
const char *hx_valid_name(hx_valid v);
// Jepsen's merge: false if any is false, else unknown if any is unknown.
hx_valid hx_valid_merge(hx_valid a, hx_valid b);

// One anomaly a checker found (stored in the results' anomalies table).
typedef struct hx_anomaly {
	const char *checker; // static: "bank", "atomicity", "saga"
	const char *kind; // static: "wrong-total", "split-decision", ...
	int64_t op_index; // -1 when not tied to an op
	int64_t time_ns; // -1 when not tied to an op
	bool has_txid;
	uint64_t txid;
	char *gid; // owned, NULL when none
	char *detail; // owned JSON object text
} hx_anomaly;

// What every checker returns: a verdict, a one-line summary, the full
// result as a JSON object, and anomalies (every one for atomicity and
// saga, the first/worst/last example per kind for bank). Release with
// hx_check_fini.
typedef struct hx_check {
	const char *name; // static
	hx_valid valid;
	char *summary; // owned
	char *json; // owned JSON object text
	hx_anomaly *anoms; // owned
	size_t nanoms;
	size_t anoms_cap;
} hx_check;

void hx_check_fini(hx_check *c);

// Bank checker configuration. Accounts are the integer ids accounts[0..n);
// balances keys are their decimal text. In saga mode wrong totals in `read`
// ops are transient (reported, not violations), except in reads that
// completed before the first transfer was invoked (the setup read: no saga
// was in flight); in every mode wrong totals in `final-read` ops are
// violations. A bank run takes accounts and total from what its setup
// wrote (accounts 0..n-1, each with --balance), never from a read.
typedef struct hx_bank_cfg {
	const int64_t *accounts; // borrowed
	size_t naccounts;
	int64_t total;
	bool saga;
} hx_bank_cfg;

typedef enum hx_bank_kind {
	HX_BANK_WRONG_TOTAL = 0,
	HX_BANK_NEGATIVE = 1,
	HX_BANK_UNEXPECTED_KEY = 2,
	HX_BANK_MISSING_BALANCE = 3,
	HX_BANK_TRANSIENT_TOTAL = 4, // saga mode only: not a violation
	HX_BANK_MALFORMED = 5, // an ok read whose value has no balances
	// Accounts a final read could not show because the participant that
	// holds them is down for good ("unreadable_nodes" in the value, a
	// kill-forever run): not a violation, and that read's total is not
	// checked; the summary says how many.
	HX_BANK_UNREADABLE = 6,
	HX_BANK_NKINDS = 7,
} hx_bank_kind;

// "wrong-total", "negative-balance", "unexpected-key", "missing-balance",
// "transient-total", "malformed-read".
const char *hx_bank_kind_name(hx_bank_kind k);

typedef struct hx_bank_example {
	int64_t op_index; // -1 when the kind never occurred
	int64_t time_ns;
	int64_t process;
	int64_t total; // sum of the balances the read saw
	int64_t badness; // |total - expected|, sum of negatives, key count
} hx_bank_example;

typedef struct hx_bank_stat {
	size_t count;
	hx_bank_example first, worst, last;
} hx_bank_stat;

// A balance that is null or not an integer counts as missing. A read with
// an unexpected key or a missing balance is not also checked
// for its total (the sum is meaningless then), as in Jepsen's bank test;
// negative balances are checked on every read.
typedef struct hx_bank_result {
	hx_check c;
	size_t reads; // ok reads and final-reads
	size_t bad_reads; // reads with at least one violation
	hx_bank_stat kinds[HX_BANK_NKINDS];
	int64_t lowest_total, highest_total; // over wrong and transient totals
} hx_bank_result;

// Checks every ok read/final-read of h. Valid when no violation, unknown
// when there is no ok read. Call when no thread is appending. DTX_ENOMEM,
// DTX_EINVAL (bad cfg); *out is filled only on success (hx_check_fini
// releases out->c).
dtx_err hx_check_bank(
    const hx_history *h, const hx_bank_cfg *cfg, hx_bank_result *out);

// A participant's view of one transaction, gathered after the run.
// The coordinator is asked too (STATUS): its COMMITTED is a decision;
// its ABORTED is only the absence of a record (presumed abort: aborted,
// never seen, or committed, ended and forgotten), so it is recorded as
// HX_TXN_PRESUMED_ABORTED and never contradicts a commit.
typedef enum hx_txn_outcome {
	HX_TXN_COMMITTED = 0,
	HX_TXN_ABORTED = 1,
	HX_TXN_IN_DOUBT = 2,
	HX_TXN_UNKNOWN = 3, // participant could not be asked
	HX_TXN_PRESUMED_ABORTED = 4, // the coordinator holds no record
	// Decided by hand at the node (a heuristic decision, storage.h);
	// they count as committed / aborted, and a disagreement that
	// involves one is a heuristic hazard rather than a split decision.
	HX_TXN_HEUR_COMMITTED = 5,
	HX_TXN_HEUR_ABORTED = 6,
	// The node found its heuristic decision contradicted by the
	// coordinator's (an extra observation beside the one above).
	HX_TXN_HEUR_HAZARD = 7,
} hx_txn_outcome;

// "committed", "aborted", "in-doubt", "unknown", "presumed-aborted",
// "heuristic-committed", "heuristic-aborted", "heuristic-hazard".
const char *hx_txn_outcome_name(hx_txn_outcome o);
dtx_err hx_txn_outcome_parse(const char *s, hx_txn_outcome *out);

typedef struct hx_txn_obs {
	uint64_t txid;
	int32_t node;
	hx_txn_outcome outcome;
} hx_txn_obs;

// A commit timestamp a node reported for txid in its STATUS answer
// (committed or pre-committed), for the replay checker. Not kept in the
// results file.
typedef struct hx_txn_cts {
	uint64_t txid;
	int32_t node;
	clk_ts cts;
} hx_txn_cts;

// Split decision (committed at one participant, aborted at another) and
// history cross-checks (an ok transfer aborted at a participant, a failed
// transfer committed at one) are violations. Transactions still in doubt
// are reported as blocked and do not change the verdict. No observations:
// unknown.
typedef struct hx_atom_result {
	hx_check c;
	size_t txns; // distinct txids observed
	size_t split; // split decisions
	size_t ok_not_committed; // ok transfers aborted at some participant
	size_t fail_committed; // failed transfers committed somewhere
	size_t in_doubt; // txids in doubt at some participant
	size_t unobserved; // ok/fail transfers with a txid nobody reported
	// Indeterminate (info or never completed) transfers, resolved from
	// the observations: committed somewhere; aborted everywhere asked;
	// in doubt or unanswered somewhere; not observed at all; no txid.
	size_t info, info_committed, info_aborted, info_unresolved;
	size_t info_unobserved, info_no_txid;
	// Txids decided by hand somewhere, and those whose hand decision
	// the others' (or the coordinator's) contradicts: heuristic hazards,
	// violations like split decisions.
	size_t heuristic, heur_hazards;
} hx_atom_result;

dtx_err hx_check_atomicity(const hx_history *h, const hx_txn_obs *obs,
    size_t nobs, hx_atom_result *out);

typedef enum hx_saga_state {
	HX_SAGA_COMMITTED = 0,
	HX_SAGA_ABORTED = 1, // fully compensated
	HX_SAGA_COMPENSATING = 2,
	HX_SAGA_RUNNING = 3,
} hx_saga_state;

// "committed", "aborted", "compensating", "running".
const char *hx_saga_state_name(hx_saga_state s);
dtx_err hx_saga_state_parse(const char *s, hx_saga_state *out);

#define HX_GID_MAX 64 // including the NUL

// Compensation stamps kept per saga: its first HX_SAGA_COMP_STEPS steps.
#define HX_SAGA_COMP_STEPS 16

typedef struct hx_saga_obs {
	char gid[HX_GID_MAX];
	hx_saga_state state;
	int32_t failed_step; // -1 when no step failed
	// The HLC the participant stamped on the answer that completed each
	// step's compensation, as the orchestrator reported it (0: not known).
	clk_ts comp_ts[HX_SAGA_COMP_STEPS];
} hx_saga_obs;

// At quiescence every saga must be committed or aborted; the last ok
// final-read must show the configured total; a transfer the client saw ok
// must belong to a committed saga and a failed one to an aborted saga.
// Totals below the bank in `read` ops during the run are counted as
// transient; totals above it are violations ("total-above-bank"). A final
// read that names "unreadable_nodes" leaves conservation unchecked
// (unknown unless something else is wrong).
// Unknown when there are neither saga states nor a final read.
typedef struct hx_saga_result {
	hx_check c;
	size_t sagas, committed, aborted, stuck;
	size_t transient; // reads during the run with a total below the bank
	// Reads during the run with a total above the configured bank: a
	// violation (a saga debits before it credits and compensates in
	// reverse, so no transient view holds more money than the bank).
	size_t above;
	// Sagas with two or more compensation stamps (rule 12's order is
	// checked on them), and those whose stamps show an earlier step
	// compensated before a later one: a violation.
	size_t comp_ordered, misordered;
	bool final_partial; // the final read lacks a node down for good
	size_t final_reads; // ok final-reads
	bool final_ok; // last ok final-read shows the total
	int64_t final_total;
	size_t ok_not_committed, fail_committed;
} hx_saga_result;

dtx_err hx_check_saga(const hx_history *h, const hx_bank_cfg *cfg,
    const hx_saga_obs *sagas, size_t nsagas, hx_saga_result *out);

// Latency and throughput (Jepsen's stats and perf checkers) over client
// ops: counts by f and type; completions per second per type; latency
// quantiles per f from invoke->completion pairs; ops still open at the
// end. Valid unless a client f never completed ok (then unknown).
typedef struct hx_stats_f {
	char *f; // owned
	size_t counts[4]; // by hx_op_type
	size_t nlat; // completed pairs
	uint64_t p50, p90, p99, max; // latency ns over completed pairs
} hx_stats_f;

typedef struct hx_stats_result {
	hx_check c;
	hx_stats_f *fs; // sorted by f
	size_t nfs;
	size_t total_ops, client_ops, nemesis_ops, open; // open: no completion
	size_t nsec; // length of rate[]: one bucket per second of the run
	size_t (*rate)[3]; // completions per second: [ok, fail, info]
	int64_t duration_ns;
} hx_stats_result;

// out is filled only on success; release with hx_stats_fini.
dtx_err hx_check_stats(const hx_history *h, hx_stats_result *out);
void hx_stats_fini(hx_stats_result *r);

// ------------------------------------------ replay, session and log checkers

// The replay checker: every ok read or final-read at HLC timestamp T must
// equal the initial balances plus every committed transfer with commit
// timestamp <= T. Ok transfers carry their commit timestamp ("cts" in the
// completion); indeterminate ones are resolved from the observations and
// take their timestamp from the nodes' STATUS answers (hx_txn_cts), which
// must all equal each other and the client's reply. A read
// that differs is explained when some choice among the transfers that are
// still uncertain (unresolved, or committed at an unknown timestamp, and
// invoked before the read completed) accounts for the difference exactly;
// it is a violation when none does, unknown when there are too many
// uncertain transfers to try. In saga mode the replay is skipped and the
// result says so: a saga's debit and credit commit as separate local
// transactions whose timestamps the client never learns, so no commit
// timestamp exists to replay against (the bank and saga checkers judge
// its transient and final totals).
typedef struct hx_replay_result {
	hx_check c;
	bool skipped; // saga mode
	size_t reads; // ok reads and final-reads replayed
	size_t matched, explained, wrong, unknown;
	size_t committed, uncertain; // transfers: applied, uncertain
	// Nodes' STATUS commit timestamps that differ from the client's
	// reply or from each other (each a "commit-ts-mismatch").
	size_t cts_mismatch;
} hx_replay_result;

// The session checker. dtx bank promises read-your-writes for 2PC/3PC
// clients: a client reads at or after the commit timestamp of its own
// last ok transfer. Every ok read of a process must have ts >= the cts of
// every ok transfer that process completed before it; a read below is a
// "stale-read" violation. Sagas promise nothing (no commit timestamp
// reaches the client): their result says so.
//
// In every mode it also holds each node's timestamps to real time (rule
// 14: a node never issues a timestamp at or below one it issued before,
// restarts included): of two ok reads whose ts the same participant chose
// ("by" in the value), the one invoked after the other completed must
// have the larger ts; a smaller one is a "ts-regression" violation.
typedef struct hx_session_result {
	hx_check c;
	size_t reads; // ok reads that followed an own ok transfer
	size_t stale;
	int64_t max_behind_ms; // largest HLC physical gap (cts - read ts)
	size_t node_reads; // ok reads whose ts a participant chose
	// Restarts whose clock the nemesis read before the kill and after.
	size_t restarts;
	// Of those reads and restarts, below an earlier one of that node.
	size_t regressions;
	int64_t max_back_ms; // largest HLC physical step back
} hx_session_result;

// A node's log file, for the log checker (path borrowed).
typedef struct hx_byte_range {
	uint64_t from, to; // [from, to) bytes of a file
} hx_byte_range;

typedef struct hx_node_log {
	uint32_t node;
	const char *path;
	// Parts of the file a fault provoked on purpose (a corrupt fault's
	// refused start): their lines are counted as expected, not flagged.
	hx_byte_range *expected;
	size_t nexpected;
} hx_node_log;

typedef struct hx_logs_result {
	hx_check c;
	size_t files, unreadable, lines, flagged;
	size_t expected; // lines that would be flagged but were expected
	size_t died; // daemons found dead that no fault had killed
} hx_logs_result;

// Every line of logs[0..n) at level ERROR or with an anomaly message id
// (COMMIT_ABORTED, ABORT_COMMITTED) is a "log-anomaly" naming node, file,
// line and text; any makes the check invalid. Unknown when no file could
// be read. out is filled only on success (hx_check_fini releases out->c).
dtx_err hx_check_logs(const hx_node_log *logs, size_t n, hx_logs_result *out);
// Adds to a log result what the nemesis found at the end: every daemon
// that was dead though no fault had killed it (a crash of its own, e.g. a
// segfault, which its log cannot say; "died_unexpectedly" in the final
// restart op) is a "daemon-died" anomaly and makes the check invalid; so
// is every node of dead_after (a bit each, ids < 32): daemons found dead
// after the run's recovery, though the nemesis had restarted them (one
// that refused its data directory as it came back, say).
dtx_err hx_check_logs_deaths(
    const hx_history *h, uint32_t dead_after, hx_logs_result *r);
// The node logs a run's report directory holds (dir/logs/<role>-<id>.log,
// as dtx bank copies them); none when there is no such folder. *out owned
// (free with hx_node_logs_free, which also frees each path). DTX_ENOMEM.
dtx_err hx_node_logs_in_dir(const char *dir, hx_node_log **out, size_t *n);
void hx_node_logs_free(hx_node_log *logs, size_t n);
// Marks the log bytes of every refused start a corrupt fault of h
// provoked (its op's "log_from".."log_to" on its target) as expected in
// the matching entries of logs[0..n) (expected arrays owned, freed by
// hx_node_logs_free). DTX_ENOMEM.
dtx_err hx_node_logs_expect(const hx_history *h, hx_node_log *logs, size_t n);

// What else a run gives its checkers (all optional, borrowed).
typedef struct hx_run_extra {
	bool replay; // run the replay and session checkers
	bool adopted; // the bank existed before the run (hx_check_replay)
	const hx_txn_cts *cts; // commit timestamps from STATUS answers
	size_t ncts;
	const hx_node_log *logs; // run the log checker when nlogs > 0
	size_t nlogs;
	// NULL or "bank": the bank checkers; "list-append": stats,
	// atomicity, the list-append checker (hx_check_elle) and the logs
	// instead (not in saga mode: DTX_EINVAL).
	const char *workload;
	// Nodes found dead after recovery (hx_check_logs_deaths), a bit
	// each; only with logs.
	uint32_t dead_after;
} hx_run_extra;

// The initial balances are the total's equal share per account (what a
// bank setup writes); with from_first, for a bank the run found existing
// rather than created, they are those of the history's first ok read (the
// setup read, whose total the bank checker holds to the expected one).
dtx_err hx_check_replay(const hx_history *h, const hx_bank_cfg *cfg,
    bool from_first, const hx_txn_obs *obs, size_t nobs, const hx_txn_cts *cts,
    size_t ncts, hx_replay_result *out);
// True when a run's params say its bank existed before it ("created":
// false), so the replay starts from its first read. params may be NULL.
bool hx_params_adopted(const char *params);
// True when a run's params name the list-append workload ("workload":
// "list-append"). params may be NULL.
bool hx_params_list_append(const char *params);
dtx_err hx_check_session(
    const hx_history *h, bool saga, hx_session_result *out);

// The list-append checker (Elle's method, check_elle.c). Its history
// ops have f "txn" and a value
//   {"mops":[["append",K,V],["r",K,L],...],"txid":N,"final":true}
// K and V integers, L the list read (an array of integers, null in an
// invocation); "txid" (the client's) and "final" (a read taken after
// recovery) are optional. Every V is unique per K. Status: ok is
// committed, fail aborted; info or no completion is resolved from the
// observations like the atomicity checker does (committed anywhere:
// committed; aborted everywhere asked: aborted), else indeterminate
// (Elle's :info: in the graph, constrained only by what reads show).
// Version orders come from reads: each ok read of K is a prefix of the
// longest one (else incompatible-order); a key never read non-empty but
// appended once has that one element. Edges: ww between neighbours of a
// version order, wr from the writer of a read's last element, rw from a
// read to the writer of the element after its last. Reported: G0, G1c,
// G-single, G2 (the shortest cycle per strongly connected component,
// with its transactions and edges), G1a (a read saw an aborted append),
// G1b (a read ended at an append its transaction followed with another
// to the same key), duplicate-elements, unknown-element (never
// appended), lost-append (a committed append missing from a final read
// that began after it completed... see check_elle.c), and, making the
// result unknown, duplicate-append and malformed-txn.
typedef enum hx_elle_kind {
	HX_ELLE_G0 = 0,
	HX_ELLE_G1A,
	HX_ELLE_G1B,
	HX_ELLE_G1C,
	HX_ELLE_GSINGLE,
	HX_ELLE_G2,
	HX_ELLE_INCOMPATIBLE,
	HX_ELLE_DUP_ELEMENTS,
	HX_ELLE_UNKNOWN_ELEMENT,
	HX_ELLE_LOST_APPEND,
	HX_ELLE_DUP_APPEND, // unknown, not invalid
	HX_ELLE_MALFORMED, // unknown, not invalid
	HX_ELLE_NKINDS,
} hx_elle_kind;

// "G0", "G1a", "G1b", "G1c", "G-single", "G2", "incompatible-order",
// "duplicate-elements", "unknown-element", "lost-append",
// "duplicate-append", "malformed-txn".
const char *hx_elle_kind_name(hx_elle_kind k);

typedef struct hx_elle_result {
	hx_check c;
	size_t txns, committed, indeterminate, aborted;
	size_t reads, appends, keys; // ok read micro-ops, appends, keys read
	size_t edges[3]; // ww, wr, rw (distinct transaction pairs)
	size_t counts[HX_ELLE_NKINDS]; // cycles: components holding one
} hx_elle_result;

// Checks h's "txn" ops. obs (may be NULL) resolves indeterminate ones by
// txid. Valid when nothing is found, unknown when no transaction
// committed a read, or for duplicate-append / malformed-txn. Call when no
// thread is appending. DTX_ENOMEM; *out filled only on success
// (hx_check_fini releases out->c).
dtx_err hx_check_elle(const hx_history *h, const hx_txn_obs *obs, size_t nobs,
    hx_elle_result *out);

// What a run checks. mode is "2pc", "3pc" or "saga" (borrowed).
typedef struct hx_run_cfg {
	const char *mode;
	hx_bank_cfg bank;
} hx_run_cfg;

// Every checker's result and the combined verdict. Release with
// hx_verdict_fini.
typedef struct hx_verdict {
	hx_valid valid;
	hx_bank_result bank;
	hx_stats_result stats;
	bool has_atom; // 2pc/3pc
	hx_atom_result atom;
	bool has_saga; // saga
	hx_saga_result saga;
	bool has_replay; // hx_run_extra.replay: replay and session
	hx_replay_result replay;
	hx_session_result session;
	bool has_logs; // hx_run_extra.nlogs > 0
	hx_logs_result logs;
	bool list_append; // workload list-append: elle, and no bank result
	hx_elle_result elle;
} hx_verdict;

// Runs bank + stats, atomicity (2pc/3pc) or saga (saga mode) and merges
// their verdicts. DTX_EINVAL for an unknown mode, DTX_ENOMEM.
dtx_err hx_check_run(const hx_history *h, const hx_run_cfg *cfg,
    const hx_txn_obs *obs, size_t nobs, const hx_saga_obs *sagas, size_t nsagas,
    hx_verdict *out);
// As hx_check_run, with the checkers extra asks for (extra may be NULL:
// then exactly hx_check_run). dtx bank and dtx check run this.
dtx_err hx_check_run_ex(const hx_history *h, const hx_run_cfg *cfg,
    const hx_run_extra *extra, const hx_txn_obs *obs, size_t nobs,
    const hx_saga_obs *sagas, size_t nsagas, hx_verdict *out);
void hx_verdict_fini(hx_verdict *v);
// Number of hx_check results in v and the i-th (bank, stats, then
// atomicity or saga, then replay and session, then logs).
size_t hx_verdict_count(const hx_verdict *v);
const hx_check *hx_verdict_check(const hx_verdict *v, size_t i);
// Prints the verdict and each checker's summary and examples.
void hx_verdict_print(FILE *out, const hx_verdict *v);
// Writes {"valid":...,"checkers":{name:{...}}} under key.
void hx_verdict_json(hx_json *j, const char *key, const hx_verdict *v);

// Parses the checker settings from a run's params JSON: "accounts" is a
// count n (ids 0..n-1) or an array of integer ids, "total" an integer.
// *accounts is owned (free with dtx_free). DTX_EINVAL with a message.
dtx_err hx_bank_cfg_from_params(const char *params, int64_t **accounts,
    size_t *naccounts, int64_t *total, char *err, size_t errlen);

// ---------------------------------------------------------------- faults

// A fault window: when a fault started and ended (end_ns == -1 while it
// was never healed) on which targets. Strings owned.
typedef struct hx_fault {
	int64_t start_ns, end_ns;
	char *kind; // "kill", "pause", "partition", ...
	char *targets; // free text, e.g. "1,2"
	char *detail; // JSON text of the starting op's value, or NULL
} hx_fault;

// Derives fault windows from the nemesis ops of h: kill, disk,
// lose-unsynced or corrupt..restart, pause..resume, partition..heal,
// netem..heal, packet..packet-end, slow-link..slow-link-end,
// crashpoint..crashpoint-end or crashpoint-hit, clock-bump or
// clock-strobe..clock-reset; kill-forever never ends (end_ns -1); any other
// nemesis f is an instant window. A window whose opening op names its fault
// ("fault":N in the value) is closed only by a closing op that names the same
// id ("fault":N or "faults":[...]), so overlapping faults of one kind get their
// own windows; without ids (histories written before them) a closing op ends
// every open window of its kinds. Returns an owned array (free with
// hx_faults_free). DTX_ENOMEM.
dtx_err hx_faults_from_history(const hx_history *h, hx_fault **out, size_t *n);
void hx_faults_free(hx_fault *f, size_t n);

// ---------------------------------------------------------------- results

// The results file: one sqlite3 database (schema in results.c) shared by
// every dtx process: runs, ops, faults, anomalies, metrics, checker
// summaries and atomicity/saga observations; WAL mode, busy timeout, a
// schema version in PRAGMA user_version and the application id 'dtx1'.
#define HX_RESULTS_DEFAULT "results/dtx.sqlite"

typedef struct hx_results hx_results;

// Opens path, creating the directory and the schema when create is true
// and the file is new. A file that is not SQLite, corrupt, or not a dtx
// results database gives DTX_ECORRUPT / DTX_EINVAL and one line in err;
// a missing file without create gives DTX_ENOENT. *out is owned (close
// with hx_results_close). A handle is used by one thread at a time.
dtx_err hx_results_open(
    const char *path, bool create, hx_results **out, char *err, size_t errlen);
void hx_results_close(hx_results *db);
// The last error message on db (borrowed, never NULL).
const char *hx_results_errmsg(const hx_results *db);

typedef struct hx_run_info {
	const char *mode; // "2pc", "3pc", "saga"
	const char *nemesis; // e.g. "kill,partition" or "none"
	uint64_t seed;
	const char *params; // JSON object text (accounts, total, ...)
} hx_run_info;

// Inserts the run with finished NULL (a crash leaves it unfinished).
dtx_err hx_results_run_begin(
    hx_results *db, const hx_run_info *info, int64_t *run_id);
// Inserts h's ops in transactions of a few thousand rows. Call when no
// thread is appending.
dtx_err hx_results_add_ops(hx_results *db, int64_t run_id, const hx_history *h);
dtx_err hx_results_add_faults(
    hx_results *db, int64_t run_id, const hx_fault *f, size_t n);
dtx_err hx_results_add_txn_obs(
    hx_results *db, int64_t run_id, const hx_txn_obs *o, size_t n);
dtx_err hx_results_add_saga_obs(
    hx_results *db, int64_t run_id, const hx_saga_obs *s, size_t n);
dtx_err hx_results_add_metric(
    hx_results *db, int64_t run_id, const char *name, double value);
// Marks run run_id interrupted (runs.interrupted = 1): a signal cut it
// short and its history is partial. DTX_ENOENT when there is no such run.
dtx_err hx_results_run_interrupted(hx_results *db, int64_t run_id);
// Stores the verdict (valid, summary, checker results, anomalies, stats
// metrics) and sets finished, in one transaction. Replaces any earlier
// checker results of the run.
dtx_err hx_results_run_finish(
    hx_results *db, int64_t run_id, const hx_verdict *v);

// A stored run, as loaded back. Strings owned; free with
// hx_run_record_fini.
typedef struct hx_run_record {
	int64_t id;
	char *started, *finished; // UTC "YYYY-MM-DDTHH:MM:SSZ"; finished NULL
	char *mode, *nemesis, *params, *summary;
	uint64_t seed;
	hx_valid valid; // UNKNOWN also when unfinished
	int64_t nops;
	bool interrupted; // a signal cut the run short
} hx_run_record;

void hx_run_record_fini(hx_run_record *r);
// DTX_ENOENT when there is no run id.
dtx_err hx_results_load_run(hx_results *db, int64_t id, hx_run_record *out);
// Returns an owned history rebuilt from the stored ops (free with
// hx_history_free).
dtx_err hx_results_load_history(hx_results *db, int64_t id, hx_history **out);
dtx_err hx_results_load_faults(
    hx_results *db, int64_t id, hx_fault **out, size_t *n);
// Owned arrays (free with dtx_free).
dtx_err hx_results_load_obs(hx_results *db, int64_t id, hx_txn_obs **txns,
    size_t *ntxns, hx_saga_obs **sagas, size_t *nsagas);

// A cursor over every run in id order: open it, call next until *done,
// close it. next fills *r (owned: free with hx_run_record_fini) when it
// returns DTX_OK with *done false. Errors: DTX_EIO (hx_results_errmsg says
// why), DTX_ENOMEM. The cursor borrows db; close(NULL) does nothing.
typedef struct hx_run_cursor hx_run_cursor;
dtx_err hx_results_runs_open(hx_results *db, hx_run_cursor **out);
dtx_err hx_results_runs_next(hx_run_cursor *cur, hx_run_record *r, bool *done);
void hx_results_runs_close(hx_run_cursor *cur);

// Prints run id's checks, anomalies, faults and metrics to stdout: as four
// arrays of the open JSON object j when json, as indented text otherwise.
// Errors as hx_results_load_run.
dtx_err hx_results_print_details(
    hx_results *db, int64_t id, bool json, hx_json *j);

// Writes "<dir of results file>/<results file name>-run-<id>" into buf,
// so that results files sharing a directory keep their reports apart.
dtx_err hx_results_report_dir(
    const char *results_path, int64_t id, char *buf, size_t len);

// ---------------------------------------------------------------- reports

// Writes the run report into dir (created if needed): latency.png and
// rate.png through gnuplot (with .gp scripts and .dat files; fault windows
// shaded), timeline.html and index.html. When gnuplot is missing it says so
// once on stderr and skips the PNGs. v may be NULL (no verdict yet).
// DTX_EIO when a file cannot be written, DTX_ENOMEM.
dtx_err hx_report_write(const char *dir, int64_t run_id, const hx_history *h,
    const hx_fault *faults, size_t nfaults, const hx_verdict *v);

// As hx_report_write for a run described by info (borrowed; NULL: not
// known): index.html then also shows the mode, nemesis, seed and stored
// parameters and the command that reproduces the run, and the timeline
// has a lane for every node of the cluster. timeline.html draws
// timeline-data.js (format in report_timeline.c) on a time axis, offline.
dtx_err hx_report_write_run(const char *dir, int64_t run_id,
    const hx_run_info *info, const hx_history *h, const hx_fault *faults,
    size_t nfaults, const hx_verdict *v);

// The "dtx bank" command line that reproduces a run from its mode,
// nemesis, seed and stored parameters (info borrowed). Returns owned
// (free with dtx_free); NULL when info has no mode or out of memory.
char *hx_report_command(const hx_run_info *info);

// ---------------------------------------------------------------- internal

// Creates directory path and its parents (path is modified in place and
// restored). Returns a translated errno.
dtx_err hx_mkdirs(char *path);

// A growing text buffer for summaries and JSON (json.c). Out of memory
// sets oom and later calls do nothing; hx_sb_take then returns NULL.
typedef struct hx_sb {
	char *buf;
	size_t len, cap;
	bool oom;
} hx_sb;

void hx_sb_printf(hx_sb *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void hx_sb_vprintf(hx_sb *sb, const char *fmt, va_list ap);
// Appends s as a JSON string literal.
void hx_sb_json_str(hx_sb *sb, const char *s);
// Returns the text, owned (free with dtx_free), and empties sb; NULL when
// out of memory.
char *hx_sb_take(hx_sb *sb);
void hx_sb_fini(hx_sb *sb);

// Clusters, clients, nemeses and the bank workload.
//
// cluster.c (above) runs the daemons; netns.c gives each its own network
// namespace; client.c talks to a running cluster; nemesis.c plans and
// applies faults; progress.c draws the live status line; bank_workload.c
// and bankrun.c run the bank workload (below).

#define HX_CLUSTER_DIR_DEFAULT ".dtx/cluster"

// More cluster control (cluster.c).

// Path of node id's data directory, DIR/data/<id> (borrowed until the
// next call).
const char *hx_cluster_data(hx_cluster *c, uint32_t id);

// True when the cluster's daemons run in network namespaces; the prefix
// of its namespaces, veths and bridge (borrowed, "" without netns).
bool hx_cluster_is_netns(const hx_cluster *c);
const char *hx_cluster_netns_prefix(const hx_cluster *c);
// The subnet of a netns cluster, "a.b.c.d/len" (borrowed; "" without
// netns, or for a cluster an older dtx made).
const char *hx_cluster_netns_subnet(const hx_cluster *c);

// Stops whatever runs for cluster directory dir even when its topology or
// state file is gone: every process whose command line names dir and a
// dtx daemon, and (as root) the namespaces, veths, bridge and firewall
// rule named after dir. Never fails; says on stderr what it removed when
// verbose.
void hx_cluster_stop_dir(const char *dir, bool verbose);

// Network namespaces (netns.c). Every daemon node id gets namespace
// "<prefix>-<id>" holding veth "<prefix>c<id>" with address <subnet>+10+id,
// whose peer "<prefix>h<id>" is a port of bridge "<prefix>br" in the root
// namespace; the bridge holds <subnet>+1 so the CLI reaches every daemon.
// The prefix is "dx" and six hex digits drawn per cluster (hx_cluster
// create), so each run's names are its own and tearing one run down never
// touches another's; DIR/netns keeps "<prefix> <subnet>" for later stops.
#define HX_NETNS_PORT 7000
#define HX_NETNS_PREFIX_MAX 16

// The subnet of a netns cluster (subnet.c): chosen per run from
// HX_NETNS_POOL, one /HX_NETNS_POOL_LEN each, or forced with --subnet.
// A lease file per subnet in HX_NETNS_LEASE_DIR (or $DTX_NETNS_LEASE_DIR),
// written under an exclusive lock on DIR/lock, keeps runs that start at
// the same time on different subnets; a lease lives while its bridge
// exists or the process that took it runs.
#define HX_NETNS_POOL "10.77.0.0/16"
#define HX_NETNS_POOL_LEN 24
#define HX_NETNS_LEASE_DIR "/run/dtx-netns"
#define HX_SUBNET_LEN_MAX 27 // .1 bridge, .10 .. .27 daemons, broadcast

struct hx_subnet {
	uint32_t net; // network address, host byte order
	uint32_t len; // prefix length
};

// Parses a --subnet CIDR "a.b.c.d/len": a network address (no host bits)
// inside 10/8, 172.16/12 or 192.168/16, len 16 .. HX_SUBNET_LEN_MAX.
// DTX_EINVAL with a one-line reason in err. Pure.
dtx_err hx_subnet_parse(
    const char *cidr, hx_subnet *out, char *err, size_t errlen);
// True when a and b share an address. Pure.
bool hx_subnet_overlaps(const hx_subnet *a, const hx_subnet *b);
// Writes the address net+host ("a.b.c.d"), or "a.b.c.d/len", into buf.
void hx_subnet_host(const hx_subnet *s, uint32_t host, char *buf, size_t len);
void hx_subnet_format(const hx_subnet *s, char *buf, size_t len);
// The first /HX_NETNS_POOL_LEN of HX_NETNS_POOL that overlaps none of
// used[0..nused) (borrowed); false when there is none. Pure.
bool hx_subnet_pick(const hx_subnet *used, size_t nused, hx_subnet *out);
// Takes a lease on a subnet for prefix in lease directory dir (NULL: the
// default): want (may be NULL) when it overlaps nothing in use, else the
// first free one of the pool. In use: every IPv4 address and route of the
// root namespace and every live lease. DTX_EBUSY when want is taken or
// the pool is full, DTX_EIO/DTX_EPERM when dir cannot be locked; err says
// which, and for a taken want whether an interface or route of this
// machine (HX_SUBNET_BY_MACHINE in err) or a lease holds it. Thread- and
// process-safe.
#define HX_SUBNET_BY_MACHINE "an address or route of this machine"
dtx_err hx_netns_claim(const char *prefix, const hx_subnet *want,
    const char *dir, hx_subnet *out, char *err, size_t errlen);
// Drops prefix's leases in dir (NULL: the default). Idempotent.
void hx_netns_release(const char *prefix, const char *dir);

// A grudge (Jepsen's): drop[a] has bit b set when node a refuses traffic
// with node b. Applied in both directions for every pair.
typedef struct hx_grudge {
	uint32_t drop[DTX_TOPO_MAX];
} hx_grudge;

// Writes the prefix clusters of directory dir (need not exist) had before
// prefixes were drawn per run into buf (size >= HX_NETNS_PREFIX_MAX), so
// that a stop still finds what an older dtx made.
void hx_netns_prefix(const char *dir, char *buf, size_t len);
// Writes a fresh prefix for a cluster in dir: "dx" and six hex digits of
// CRC32C over dir, this process's id and the time.
void hx_netns_prefix_new(const char *dir, char *buf, size_t len);
// DTX_EPERM when not root, DTX_ENOENT when "ip netns" or iptables cannot
// be run; err says which.
dtx_err hx_netns_check(char *err, size_t errlen);
// Creates the bridge (holding sn+1), the forward rule, and one namespace
// per daemon node of topo, each with the address of its topology URL
// (sn+10+id, see hx_cluster_create). The subnet must be claimed first
// (hx_netns_claim). DTX_EIO names the step that failed.
dtx_err hx_netns_setup(const char *prefix, const hx_subnet *sn,
    const dtx_topo *topo, char *err, size_t errlen);
// Kills every process inside the prefix's namespaces and removes the
// namespaces, veths, bridge and forward rule, and drops the prefix's
// subnet lease. Idempotent; returns the number of objects removed.
int hx_netns_teardown(const char *prefix);
// Applies g with iptables DROP rules (INPUT from and OUTPUT to each
// refused peer) inside the namespaces; heal flushes them all.
// hx_netns_cut_sends drops only what node a sends to each node b of
// g->drop[a] (OUTPUT rules): a one-way cut.
dtx_err hx_netns_partition(
    const char *prefix, const dtx_topo *topo, const hx_grudge *g);
dtx_err hx_netns_cut_sends(
    const char *prefix, const dtx_topo *topo, const hx_grudge *g);
dtx_err hx_netns_heal(const char *prefix, const dtx_topo *topo);
// Packet faults on node id's link (its veth inside its namespace), in
// the mangle table so that a partition's heal (the filter table) leaves
// them alone: loss_pct % of what it sends and receives dropped
// (statistic match), dup_pct % of what it sends to each other daemon
// duplicated (TEE towards that daemon). DTX_EIO when a rule failed.
dtx_err hx_netns_packet(const char *prefix, const dtx_topo *topo, uint32_t id,
    uint32_t loss_pct, uint32_t dup_pct);
// tc netem on node id's link: delay_ms +- jitter_ms, reorder_pct %
// reordered. DTX_ENOENT when tc refuses (no sch_netem in the kernel).
dtx_err hx_netns_netem(const char *prefix, uint32_t id, uint32_t delay_ms,
    uint32_t jitter_ms, uint32_t reorder_pct);
// Removes node id's packet rules (and its netem qdisc with netem);
// *dropped and *duplicated get how many packets the rules dropped and
// duplicated. DTX_EIO when a removal failed.
dtx_err hx_netns_packet_clear(const char *prefix, uint32_t id, bool netem,
    uint64_t *dropped, uint64_t *duplicated);
// Runs argv (argv[0] looked up in PATH, then /usr/sbin and /sbin) and
// returns its exit status (-1 when it could not run). Its stdout goes
// into out (may be NULL) and stderr is discarded when quiet.
int hx_run(const char *const argv[], char *out, size_t outlen, bool quiet);

// Talking to a cluster (client.c). A hx_conn holds one proto client per
// daemon of a topology; every function is thread-safe.
typedef struct hx_conn hx_conn;

// Accounts are keys "acct:<n>" whose values are int64 balances (written
// by PUT as 8 bytes little-endian).
#define HX_ACCT_PREFIX "acct:"
#define HX_ACCOUNTS_MAX PROTO_MAX_OPS

// Opens clients to every daemon of topo (copied). *out is owned (close
// with hx_conn_close). DTX_ENOMEM, DTX_EINVAL.
dtx_err hx_conn_open(const dtx_topo *topo, hx_conn **out);
// The same over mutual TLS: every call goes out with tls's identity
// except STATUS and FAULT, which go with priv's (an admin or harness
// certificate) when priv is not NULL. Takes tls and priv (closed by
// hx_conn_close, or here when it fails). tls NULL: hx_conn_open.
dtx_err hx_conn_open_as(
    const dtx_topo *topo, proto_tls *tls, proto_tls *priv, hx_conn **out);
// Opens clients to cluster c as its client node: over TLS with the
// client certificate of DIR/certs, STATUS and FAULT with the harness's
// (harness) or the admin's certificate. err says why it failed.
dtx_err hx_cluster_conn(
    hx_cluster *c, bool harness, hx_conn **out, char *err, size_t errlen);
// hx_conn_open_as sending as node id self (>= 0; -1: the topology's
// client id). With --insecure that id's role in the topology is the
// sender's. DTX_EINVAL for self >= DTX_TOPO_MAX.
dtx_err hx_conn_open_from(const dtx_topo *topo, int64_t self, proto_tls *tls,
    proto_tls *priv, hx_conn **out);
void hx_conn_close(hx_conn *c);
// Replaces the connections to node id (UINT32_MAX: every node) with new
// ones, whose new sockets dial afresh: for a link that nng 1.5.2 no
// longer redials (README, "Known limit"). Only while no other thread uses
// c. DTX_ENOMEM, DTX_EINVAL.
dtx_err hx_conn_redial(hx_conn *c, uint32_t id);
const dtx_topo *hx_conn_topo(const hx_conn *c);
// Waits until every daemon of c's topology answers HEALTH (over TLS its
// first answer also means the handshake and the hello are done), at most
// timeout_ms: DTX_OK, or the last error (DTX_EUNREACH, DTX_ETIMEDOUT...).
dtx_err hx_conn_wait_ready(hx_conn *c, uint64_t timeout_ms);
// One call to node id (timeout_ms 0: 5 s). Contract of proto_client_call.
dtx_err hx_conn_call(hx_conn *c, uint32_t id, proto_msg *req, proto_msg *rep,
    uint32_t timeout_ms, bool idempotent);

// What a transfer came to. err is DTX_OK when the coordinator or the
// orchestrator answered (outcome says what), else the call's error:
// DTX_EUNREACH and DTX_EREFUSED mean it certainly did not happen, the
// others that the outcome is unknown.
typedef struct hx_xfer {
	dtx_err err;
	proto_outcome outcome;
	uint64_t txid;
	clk_ts cts;
	int32_t failed_step;
	// The coordinator (or orchestrator) that answered, or the last one
	// tried; UINT32_MAX when there is none.
	uint32_t coord;
	char reason[PROTO_MAX_STR + 1];
} hx_xfer;

// Moves amount from account `from` to `to` in one TXN (mode 2PC, 3PC or
// pc) of two ADD ops that keep both balances >= 0. Always fills *out.
// With several coordinators the TXN goes to hx_conn_coord_for(txid), and
// on to the next in topology order while one is certainly not reached
// (DTX_EUNREACH); out->coord names the one that answered.
void hx_transfer(hx_conn *c, proto_mode mode, int64_t from, int64_t to,
    int64_t amount, uint32_t timeout_ms, hx_xfer *out);
// The same with the transaction id chosen by the caller (non-zero; sent
// in the TXN, so out->txid is known even when the call times out); 0
// lets the coordinator choose, as hx_transfer does.
void hx_transfer_as(hx_conn *c, proto_mode mode, uint64_t txid, int64_t from,
    int64_t to, int64_t amount, uint32_t timeout_ms, hx_xfer *out);
// The same as a saga (gid borrowed): debit `from`, then credit `to`, each
// with its compensation, submitted to the saga orchestrator.
void hx_saga_transfer(hx_conn *c, const char *gid, int64_t from, int64_t to,
    int64_t amount, uint32_t timeout_ms, hx_xfer *out);

// A consistent snapshot of every account: every participant read at one
// HLC timestamp. ids ascending; owned (release with hx_snapshot_fini).
typedef struct hx_snapshot {
	clk_ts ts;
	size_t n;
	int64_t *ids;
	int64_t *bal;
	int64_t total;
	size_t other_keys; // keys that are not accounts
	// The participant that chose ts (a read at 0), or -1 (ts was given).
	int64_t picked_by;
} hx_snapshot;

// Reads every participant at `at` (0: the timestamp the first
// participant answers with), retrying RETRY answers until timeout_ms has
// passed (DTX_ETIMEDOUT). Errors of the calls otherwise. Each participant
// is read in pages of PROTO_READ_PAGE_DEFAULT bytes, all at that one
// timestamp, so any bank size is read as one consistent snapshot; when a
// participant collected the snapshot between two pages (DTX_ERANGE) a
// read "now" (at 0) starts over at a new timestamp.
dtx_err hx_snapshot_read(
    hx_conn *c, clk_ts at, uint32_t timeout_ms, hx_snapshot *out);
// hx_snapshot_read of the participants whose id bit is not in skip (the
// accounts they hold are then missing from the snapshot).
dtx_err hx_snapshot_read_skip(hx_conn *c, clk_ts at, uint32_t timeout_ms,
    uint32_t skip, hx_snapshot *out);
void hx_snapshot_fini(hx_snapshot *s);
// Appends {"ts":T,"balances":{"<id>":<balance>,...}} to sb.
void hx_snapshot_json(const hx_snapshot *s, hx_sb *sb);

// Creates accounts 0..n-1 with balance each in one 2PC TXN of PUTs, but
// only when a snapshot shows no account at all (idempotent). *created
// says whether it did. DTX_EEXIST when some but not all of the accounts
// exist, errors of the calls otherwise.
dtx_err hx_bank_init(hx_conn *c, uint32_t n, int64_t balance, bool *created,
    char *err, size_t errlen);

// HEALTH of node id: *rep owned on success (proto_msg_free).
dtx_err hx_health(hx_conn *c, uint32_t id, uint32_t timeout_ms, proto_msg *rep);
// Sends FAULT kind (args[0..nargs), optional string s) to node id.
dtx_err hx_send_fault(hx_conn *c, uint32_t id, const char *kind,
    const int64_t *args, uint32_t nargs, const char *s);
// STATUS of txid at participant id.
dtx_err hx_txn_status(
    hx_conn *c, uint32_t id, uint64_t txid, proto_txn_state *out);
// SAGA_STATUS of gid at the orchestrator; failed_step -1 when none;
// comp_ts (ncomp entries, may be NULL) gets each step's compensation
// stamp, 0 where the orchestrator does not know one.
dtx_err hx_saga_status(hx_conn *c, const char *gid, proto_saga_state *st,
    int32_t *failed_step, clk_ts *comp_ts, uint32_t ncomp);
// Node id of the saga orchestrator, or UINT32_MAX when there is none.
uint32_t hx_conn_saga_id(const hx_conn *c);

// ---------------------------------------------------------------- trace

// The causal history of one transaction or saga across every node
// (trace.c): the events the daemons recorded (proto_daemon_trace), from
// their TRACE rings and from the debug records in their logs, ordered by
// happened-before over their vector clocks.
#define HX_TRACE_ALIASES 4

typedef struct hx_trace_ev {
	uint32_t node;
	char name[32]; // the node's log name ("coord-0")
	proto_ev_kind kind;
	char type[24]; // send/recv: the message's type ("prepare")
	uint32_t peer; // recv: the sender
	uint64_t peer_c; // recv: the sender's own vector clock entry
	uint64_t txid;
	char gid[PROTO_MAX_STR + 1];
	clk_ts hlc;
	clk_vc vc;
	char what[32]; // the event's message id ("PREPARED")
	char alias[PROTO_MAX_STR + 1]; // the saga's other name, or ""
	// Set by hx_trace_order:
	size_t step; // 1-based; the events of one step are concurrent
	long send; // recv: the index of its send event, or -1
} hx_trace_ev;

typedef struct hx_trace {
	uint64_t txid; // what is traced: txid, or gid when txid is 0
	char gid[PROTO_MAX_STR + 1];
	// The saga's other names, learnt from events that carry an alias
	// (the orchestrator's barrier id, which the participants know).
	char alias[HX_TRACE_ALIASES][PROTO_MAX_STR + 1];
	size_t naliases;
	hx_trace_ev *ev; // owned
	size_t n, cap;
	size_t steps; // after hx_trace_order
	uint64_t lost; // events the rings asked no longer held
	uint64_t *reach; // after hx_trace_order: n bitsets of n bits
} hx_trace;

// Starts an empty trace of txid (non-zero) or gid (txid 0).
void hx_trace_init(hx_trace *t, uint64_t txid, const char *gid);
void hx_trace_fini(hx_trace *t);

// Adds e (copied) unless it is about something else or already there
// (one event per node and own vector clock entry: the same event read
// from a ring and from a log). DTX_ENOMEM.
dtx_err hx_trace_add(hx_trace *t, const hx_trace_ev *e);

// Adds the events of a TRACE_REPLY, naming its node name (borrowed).
dtx_err hx_trace_add_reply(
    hx_trace *t, const proto_trace_reply *r, const char *name);

// Adds the trace events among the records of the log file at path
// (records with ev=, written at debug level; other lines are skipped).
// DTX_ENOENT when it cannot be read, DTX_ENOMEM.
dtx_err hx_trace_add_log(hx_trace *t, const char *path);

// Adds the trace events of the n log files at paths, having first learnt
// from all of them the saga's other names (so that a participant's
// events, which name the barrier id, are kept whatever the file order).
// Files that cannot be read are skipped. DTX_ENOMEM.
dtx_err hx_trace_add_logs(hx_trace *t, const char *const *paths, size_t n);

// Asks every daemon of c's topology for its events (TRACE) and adds
// them; *answered (may be NULL) gets how many answered. DTX_ENOMEM.
dtx_err hx_trace_fetch(
    hx_conn *c, hx_trace *t, uint32_t timeout_ms, size_t *answered);

// Orders the events by happened-before, matches each receive with its
// send, and groups them into steps: consecutive events none of which
// happened before another. Happened-before here is the transitive
// closure of the vector clocks' order and each node's program order,
// which a restart does not break: a restarted daemon's vector clock has
// forgotten what its predecessor knew, but its own entry starts above
// the predecessor's (proto_daemon_trace) and its log carries what the
// predecessor decided. The order is a linear extension of it: no event
// comes after one that happened after it. DTX_ENOMEM.
dtx_err hx_trace_order(hx_trace *t);

// After hx_trace_order: whether event i happened before event j.
bool hx_trace_before(const hx_trace *t, size_t i, size_t j);

// Writes an ordered trace as text (one line per event: step, node, HLC,
// event, what, vector clock) or as a self-contained HTML page (one lane
// per node, an arrow per message, no script or network). DTX_EIO.
dtx_err hx_trace_text(const hx_trace *t, FILE *out);
dtx_err hx_trace_html(const hx_trace *t, FILE *out);

// The coordinators of the topology and the one a transaction starts at:
// txid modulo their number for a chosen txid (so anyone can find it
// again), round robin for 0. UINT32_MAX when there is none.
uint32_t hx_conn_ncoords(const hx_conn *c);
uint32_t hx_conn_coord_for(hx_conn *c, uint64_t txid);
// The saga orchestrator of gid: the CRC-32C of gid modulo their number
// (submit and SAGA_STATUS go to the same one). UINT32_MAX when none.
uint32_t hx_conn_saga_for(const hx_conn *c, const char *gid);
// "committed", "aborted", "unknown".
const char *hx_outcome_name(proto_outcome o);
// The value of counter name in rep, a HEALTH reply (borrowed); -1 when
// rep is not one or has no such counter.
int64_t hx_health_counter(const proto_msg *rep, const char *name);
// The int64 value of a found READ entry: an integer, or 8 bytes
// little-endian (a balance written by PUT). False otherwise.
bool hx_entry_i64(const proto_entry *e, int64_t *out);

// Bank accounts.

// Writes the key "acct:<acct>" of account acct into buf.
void hx_acct_key(char *buf, size_t len, int64_t acct);

// Fills *op (zeroed first) as an ADD of delta to key (borrowed) that must
// leave it at least min.
void hx_op_add(proto_op *op, const char *key, int64_t delta, int64_t min);

// Nemeses (nemesis.c). A schedule is a pure function of the seed and the
// settings (hx_nemesis_plan); a hx_nemesis applies it to a running
// cluster, recording each action in the history as an `info` op of
// process HX_PROC_NEMESIS.
typedef enum hx_nem_kind {
	HX_NEM_KILL = 1u << 0,
	HX_NEM_PAUSE = 1u << 1,
	HX_NEM_PARTITION = 1u << 2,
	HX_NEM_CLOCK = 1u << 3,
	HX_NEM_DISK = 1u << 4,
	// A kill of a daemon run under libdtx-unsynced.so: what it wrote
	// since its last fsync of each file is lost. Requesting it runs every
	// daemon of the cluster under the shim, so every kill (and crash
	// point) of the run loses unsynced writes too.
	HX_NEM_LOSE_UNSYNCED = 1u << 5,
	// A named crash point (dtx_crashpoint) armed in a running daemon
	// through FAULT "crash_at"; when the daemon dies there the hit is
	// recorded ("crashpoint-hit") and it is restarted unarmed.
	HX_NEM_CRASHPOINT = 1u << 6,
	// Packet loss and duplication (iptables' statistic match inside the
	// namespaces; needs --netns) and delay with reordering (tc netem
	// where the kernel has sch_netem, else the daemons' FAULT "delay")
	// on the links of one node; the op says which mechanism ran.
	HX_NEM_PACKET = 1u << 7,
	// A stopped node's acknowledged WAL records or checkpoint damaged
	// (a bit flipped, or a file cut short); the restart must refuse with
	// a clear error. The data dir is copied first and restored after the
	// refusal, so the run continues (corrupt.c).
	HX_NEM_CORRUPT = 1u << 8,
	// One node of the targets killed and never restarted (not even at
	// the end of the run).
	HX_NEM_KILL_FOREVER = 1u << 9,
	// One link slowed: the calls one daemon makes to one node of the
	// targets are held 2-5 s before they leave (the sender's FAULT
	// "delay"), so they arrive after the daemons' 1 s call and 2 s
	// in-doubt timeouts while the node stays reachable by everyone else.
	HX_NEM_SLOW_LINK = 1u << 10,
} hx_nem_kind;
#define HX_NEM_NKINDS 11

typedef enum hx_nem_target {
	HX_TARGET_ANY = 0,
	HX_TARGET_COORDINATOR,
	HX_TARGET_PARTICIPANTS,
	HX_TARGET_SAGA,
} hx_nem_target;

typedef enum hx_part_shape {
	HX_SHAPE_HALVES = 0, // two halves, the smaller first (bisect)
	HX_SHAPE_ONE = 1, // one node isolated
	HX_SHAPE_BRIDGE = 2, // halves sharing one node that sees both
	HX_SHAPE_RING = 3, // each node sees its own majority
	HX_SHAPE_COUNT
} hx_part_shape;

typedef enum hx_nem_action {
	HX_NA_KILL = 0,
	HX_NA_RESTART,
	HX_NA_PAUSE,
	HX_NA_RESUME,
	HX_NA_PARTITION,
	HX_NA_HEAL,
	HX_NA_CLOCK_BUMP,
	HX_NA_CLOCK_STROBE,
	HX_NA_CLOCK_RESET,
	// Disk: SIGKILL the target, then tear its WAL's tail as a crash in
	// the middle of writing the next batch would; RESTART ends it.
	HX_NA_DISK,
	// Lose-unsynced: SIGKILL the target, roll back its unsynced writes;
	// RESTART ends it.
	HX_NA_LOSE,
	// Crash point: arm point in the target; CRASH_END at the end of the
	// window disarms it if it was not reached. CRASH_HIT is recorded, not
	// planned: the daemon died at the point (and was restarted).
	HX_NA_CRASH_ARM,
	HX_NA_CRASH_END,
	HX_NA_CRASH_HIT,
	// Packet faults on the target's links; PACKET_END removes them.
	HX_NA_PACKET,
	HX_NA_PACKET_END,
	// Corrupt: SIGKILL the target, copy its data dir, damage an
	// acknowledged record or the checkpoint, try to start it (a refusal
	// is the expected outcome); RESTART restores the copy and starts it.
	HX_NA_CORRUPT,
	// SIGKILL the target for the rest of the run: nothing restarts it.
	HX_NA_KILL_FOREVER,
	// Slow link: link_from's calls to the target wait delay_ms before
	// they leave; SLOW_LINK_END clears the delay.
	HX_NA_SLOW_LINK,
	HX_NA_SLOW_LINK_END,
	HX_NA_COUNT
} hx_nem_action;

// How a disk fault leaves the record it tears (it is written after the
// last complete record of the newest WAL segment, so it was never
// acknowledged and no acknowledged record is touched): followed by
// whatever the segment holds there (its zero-filled preallocation), or
// with the file cut off inside it.
typedef enum hx_disk_form {
	HX_DISK_TORN = 0,
	HX_DISK_TRUNCATED = 1,
} hx_disk_form;

// One planned action at at_ms after the workload started.
typedef struct hx_nem_event {
	uint64_t at_ms;
	hx_nem_action action;
	uint32_t ntargets;
	uint32_t targets[DTX_TOPO_MAX];
	hx_part_shape shape; // PARTITION
	hx_grudge grudge; // PARTITION
	// PARTITION: for onset_ms the cut holds one way only, dropping what
	// a node sends to a node after it in targets[] (onset_later) or
	// before it; then both ways. 0: both ways at once.
	uint32_t onset_ms;
	bool onset_later;
	int64_t offset_ms[DTX_TOPO_MAX]; // CLOCK_BUMP: per target index
	int64_t strobe_delta_ms; // CLOCK_STROBE: flip between 0 and this
	uint32_t strobe_period_ms; // time at each of the two offsets
	uint32_t strobe_ms; // how long to strobe
	hx_disk_form disk_form; // DISK
	uint32_t disk_len; // DISK: payload length of the torn record
	uint32_t disk_keep; // DISK: bytes of it written, < 20 + len + 4
	uint64_t disk_seed; // DISK: seed of the torn record's bytes
	char point[48]; // CRASH_*: the crash point's name
	// PACKET: percent of packets dropped and duplicated, delay and its
	// jitter (ms) and percent reordered (netem only). SLOW_LINK*: the
	// delay too.
	uint32_t loss_pct, dup_pct, delay_ms, jitter_ms, reorder_pct;
	uint32_t link_from; // SLOW_LINK*: the sender of the slowed link
	// CORRUPT: truncate (else flip a bit) and the seed that picks the
	// file, the record and the bit or the cut.
	bool corrupt_truncate;
	uint64_t corrupt_seed;
	// The fault this event starts or ends: the start and the end of one
	// fault share it (from 1, unique within a plan; 0: none). Recorded
	// as "fault" in the op's value so that a window closes by its id.
	uint32_t fault_id;
} hx_nem_event;

typedef struct hx_nem_cfg {
	unsigned kinds; // hx_nem_kind bits
	unsigned shapes; // 1 << hx_part_shape bits; 0 means all
	hx_nem_target target;
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
	// Faults in force at once, at most (0 or 1: one at a time, each
	// fault's end followed by a gap). Above 1 a fault starts every
	// [gap / 2, gap * 1.5) / N ms without waiting for the last one's end
	// while fewer than N are in force, never two on one node at once
	// (clock included) and never two partitions.
	uint32_t max_concurrent;
	// "2pc", "3pc" or "saga": which crash points can be reached (NULL:
	// every point of the targets' roles).
	const char *mode;
	// Comma-separated crash point names the rotation is limited to
	// (aimed crash points); NULL or "": every point.
	const char *crashpoints;
} hx_nem_cfg;

// Parses "kill,pause,partition,clock,disk,lose-unsynced,crashpoint,packet,
// corrupt,kill-forever,slow-link" (or "none", "") into kind bits;
// shapes "halves,one,bridge,ring"; a target name. DTX_EINVAL with the
// bad word in err.
dtx_err hx_nem_kinds_parse(
    const char *s, unsigned *out, char *err, size_t errlen);
dtx_err hx_nem_shapes_parse(
    const char *s, unsigned *out, char *err, size_t errlen);
dtx_err hx_nem_target_parse(const char *s, hx_nem_target *out);
const char *hx_nem_action_name(hx_nem_action a); // "kill", "clock-bump"
const char *hx_part_shape_name(hx_part_shape s); // "halves", ...
const char *hx_nem_target_name(hx_nem_target t);
// The fault kind an action starts or ends ("kill", "pause", "partition",
// "clock", "disk"; a disk fault's RESTART is the kill kind's).
const char *hx_nem_action_kind(hx_nem_action a);
// True for actions that start a fault.
bool hx_nem_action_starts(hx_nem_action a);

// The daemon ids of topo a target selects, in topology order. Any: all
// daemons. DTX_ENOENT when the selection is empty (no saga node).
dtx_err hx_nem_targets(const dtx_topo *topo, hx_nem_target t,
    uint32_t ids[DTX_TOPO_MAX], uint32_t *n);

// The grudge of a partition shape over nodes[0..n) (in that order: the
// caller shuffles), as Jepsen's nemesis builds it: halves = complete
// grudge of bisect; one = nodes[0] alone; bridge = halves where the first
// node of the second half keeps talking to everyone; ring = node i sees
// the majority nodes[i .. i+n/2] (cyclic). Pure.
void hx_partition_grudge(
    hx_part_shape shape, const uint32_t *nodes, uint32_t n, hx_grudge *out);

// Plans the whole schedule. Kinds are taken in a seeded shuffle of the
// enabled ones (reshuffled every round), each held and followed by a quiet
// time as hx_nem_cfg says, one at a time or up to max_concurrent at once;
// every fault that starts is ended before duration_ms, and the events are
// in time order. When the run is too short for every enabled kind at the
// configured interval, interval and gap are shortened (by a third at a
// time, down to 200 and 100 ms) until each kind is planned at least once;
// hx_nemesis_unplanned names any that still is not. A disk fault strikes
// a participant of the targets (any target when they include none); a
// crash point arms the next point of a seeded rotation over the points
// the targets reach in cfg->mode, for at most 3 s. *out owned (free with
// dtx_free); *n may be 0. DTX_EINVAL, DTX_ENOMEM.
dtx_err hx_nemesis_plan(const hx_nem_cfg *cfg, hx_nem_event **out, size_t *n);
// hx_nemesis_plan that also says the interval and gap it used (shorter
// than cfg's when it compressed the schedule); either may be NULL.
dtx_err hx_nemesis_plan_ex(const hx_nem_cfg *cfg, hx_nem_event **out, size_t *n,
    uint64_t *interval_ms, uint64_t *gap_ms);
// Kinds of cfg->kinds that the plan ev[0..n) never starts (the run is too
// short to hold them even after the schedule is compressed, or no target
// can take them: crash points of a role the targets lack). Pure.
unsigned hx_nemesis_unplanned(
    const hx_nem_cfg *cfg, const hx_nem_event *ev, size_t n);

// The crash points a plan for mode (NULL: all) may arm on role, in a
// fixed order: writes up to max names (static strings) into out and
// returns how many there are. Every dtx_crashpoint of the daemons is in
// the table.
size_t hx_nem_crashpoints(
    const char *mode, dtx_role role, const char **out, size_t max);
// Checks a comma-separated list of crash point names (hx_nem_cfg's
// crashpoints): DTX_EINVAL, with the unknown or empty name in err.
dtx_err hx_nem_crashpoints_check(const char *list, char *err, size_t errlen);

// Appends the JSON value of an event ({"targets":[...],...}) to sb.
void hx_nem_event_json(const hx_nem_event *e, hx_sb *sb);

// The disk fault on a node that is not running (e a HX_NA_DISK event):
// finds the folder (data or one folder below it) that holds the newest
// WAL segment and tears that WAL's tail with stor_wal_tear_tail: the
// first e->disk_keep bytes of the record that would have come next
// (e->disk_len payload bytes drawn from e->disk_seed, the right LSN and
// CRC) after the newest segment's last good record, the file cut off
// after them for HX_DISK_TRUNCATED. No byte of a complete record
// changes, so no acknowledged write is lost. On success extra (size len)
// gets the details as JSON members ("segment", "offset", "lsn": the LSN
// the torn record would have had, "segment_bytes": the file's size
// before); with no segment it gets "segment":null. DTX_ENOENT when there
// is no segment, DTX_ECORRUPT when a segment's header is not a WAL's,
// file errors, DTX_ENOMEM. data is borrowed.
dtx_err hx_nem_tear_wal(
    const char *data, const hx_nem_event *e, char *extra, size_t len);

// The corrupt fault on a node that is not running (corrupt.c): damages
// acknowledged data in data's WAL directories (data and the folders right
// below it), chosen by seed among the places recovery must refuse: every
// good record above its WAL's checkpoint except the newest segment's last
// one (damage there is a torn tail by design, rule 17), and the
// checkpoint. A flip inverts one bit (of a record, or of a checkpoint
// outside its unchecked reserved bytes); truncate cuts a checkpoint, or
// an older segment inside a record (a cut of the newest segment would be
// a torn tail); with neither to cut it flips instead. extra (len bytes)
// gets what was done as JSON members ("done", "file", "damaged", and
// "lsn"/"bit"/"offset"/"cut_at"). DTX_ENOENT when there is nothing to
// damage, file errors, DTX_ENOMEM.
dtx_err hx_corrupt_store(
    const char *data, bool truncate, uint64_t seed, char *extra, size_t len);
// cp -a from to (to removed first); DTX_EIO when it failed.
dtx_err hx_dir_copy(const char *from, const char *to);
// Replaces data by saved (rm -rf data, rename saved to data).
dtx_err hx_dir_restore(const char *saved, const char *data);

typedef struct hx_nemesis hx_nemesis;

// Starts a thread that applies ev[0..n) (copied) at their times to the
// cluster through cl (used only by this thread until hx_nemesis_stop)
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
typedef struct hx_compose hx_compose; // compose.c, below
dtx_err hx_nemesis_start(hx_cluster *cl, hx_compose *cc, bool own,
    hx_conn *conn, hx_history *h, const hx_nem_event *ev, size_t n,
    hx_nemesis **out);
// Stops the thread and heals everything: resumes paused daemons,
// restarts dead ones, heals partitions, resets clocks (recording the
// ends of open faults), then frees nothing: counts stay readable until
// hx_nemesis_free. Safe to call twice.
void hx_nemesis_stop(hx_nemesis *nm);
void hx_nemesis_free(hx_nemesis *nm);
// Faults started so far, by hx_nem_kind bit index (kill, pause,
// partition, clock, disk), and how many actions failed. Thread-safe.
void hx_nemesis_counts(
    const hx_nemesis *nm, size_t started[HX_NEM_NKINDS], size_t *errors);
// The nodes killed for good (kill-forever), a bit per node id.
// Thread-safe; 0 for NULL.
uint32_t hx_nemesis_gone(const hx_nemesis *nm);
// The fault in force now ("partition one [2]" or "none"). Thread-safe.
void hx_nemesis_current(hx_nemesis *nm, char *buf, size_t len);
// The kinds of kinds that did not run: never planned, or every start
// failed. why (size len) gets "kind: reason; ..." ("" when all ran).
// Thread-safe.
unsigned hx_nemesis_not_run(
    hx_nemesis *nm, unsigned kinds, char *why, size_t len);
// The name of kind bit index k ("kill" ... "crashpoint").
const char *hx_nem_kind_name(int k);

// Lost unsynced writes (unsynced/): libdtx-unsynced.so, an LD_PRELOAD shim
// that journals the bytes every write to a daemon's data dir overwrites
// until that file is fsynced, so that a SIGKILL loses the unsynced writes
// (the next start under the shim, or hx_unsynced_rollback, undoes them).
// unsynced/unsynced.c documents the model.

// Finds libdtx-unsynced.so ($DTX_BIN_DIR, beside the running program or
// in ../lib, or the build tree's harness/unsynced/) and writes its path
// into buf. DTX_ENOENT when it is nowhere.
dtx_err hx_unsynced_shim_path(char *buf, size_t len);

// Undoes the unsynced writes a killed daemon left in data (borrowed; its
// journal is <data>.unsynced) and empties the journal; *undone (may be
// NULL) gets how many writes were undone. No journal is not an error.
// Only while no daemon runs on data.
dtx_err hx_unsynced_rollback(const char *data, size_t *undone);

// Progress (progress.c): a thread that draws one updating line on a
// terminal (every 250 ms) or prints a plain line every 5 s otherwise.
typedef struct hx_progress_sample {
	uint64_t ok, fail, info; // completed client ops so far
	char fault[96]; // the fault in force
} hx_progress_sample;

typedef void (*hx_progress_fn)(void *arg, hx_progress_sample *s);

typedef struct hx_progress hx_progress;

// Starts drawing to out (borrowed) for a run of total_ms. sample is
// called from the progress thread. DTX_ENOMEM.
dtx_err hx_progress_start(FILE *out, uint64_t total_ms, hx_progress_fn fn,
    void *arg, hx_progress **res);
// Stops the thread, ends the line. NULL does nothing.
void hx_progress_stop(hx_progress *p);

// dtx health (cmd_health.c) and container nemeses (compose.c).
// ---------------------------------------------------------------- bank runs

// A bank run (bankrun.c, bank_workload.c): Jepsen's bank workload against a
// dtx cluster. Client threads make random transfers (as 2PC/3PC TXNs or as
// sagas) and whole-bank snapshot reads while a nemesis injects faults; then
// everything is healed, recovery is awaited, final reads and atomicity
// observations are gathered, the checkers run, and the run is stored in the
// results file with its report. A command runs the phases in order:
//
//   hx_bankrun_new, setup_cluster, setup_run, workload, heal, settle,
//   final_reads, check, store, then reads hx_bankrun_out and frees.
//
// A phase that fails returns an error and writes a one-line reason into
// e->msg (empty when there is nothing to add, e.g. out of memory); e->usage
// says the failure is the caller's (exit 64 rather than 70). Stop at the
// first failed phase; hx_bankrun_free cleans up after any of them.

// The fault schedule's timing, resolved from the flags by
// hx_bankrun_schedule: partition shapes "auto" and interval 0 mean the 3pc
// partition defaults when the mode is 3pc and partitions are enabled, else
// all shapes and 5 s.
typedef struct hx_bankrun_sched {
	const char *shapes; // partition shapes text (static or borrowed)
	uint64_t interval_ms, hold_min_ms, gap_ms;
	bool defaults_3pc; // the 3pc partition defaults are in force
} hx_bankrun_sched;

// Resolves the schedule for mode (may be NULL), the nemesis kinds, the
// --partition-shapes text (borrowed; "auto" or a list) and the
// --nemesis-interval seconds (0: default). Pure.
void hx_bankrun_schedule(const char *mode, unsigned kinds, const char *shapes,
    double interval_s, hx_bankrun_sched *out);

// How long faults are held and how long the gaps are (ms), as
// hx_nemesis_plan draws them for s.
void hx_bankrun_ranges(const hx_bankrun_sched *s, uint64_t *lo, uint64_t *hi,
    uint64_t *glo, uint64_t *ghi);

// A validated bank run configuration. Strings are borrowed for the run's
// lifetime.
typedef struct hx_bankrun_conf {
	const char *mode; // "2pc", "3pc" or "saga"
	int64_t accounts, balance, clients;
	double rate, duration; // ops/s (0: unthrottled), seconds
	const char *nemesis; // the --nemesis text
	unsigned kinds; // hx_nem_kind bits
	unsigned shapes; // partition shape bits
	hx_nem_target target;
	const char *targets; // the --nemesis-targets text
	const char *crashpoints; // --crashpoints, or NULL: every point
	hx_bankrun_sched sched;
	int64_t onset_ms;
	uint64_t seed; // non-zero
	const char *results; // results file
	bool netns;
	bool insecure; // the cluster it starts: plaintext, no certificates
	const char *connect; // a running cluster's dir, or NULL: start one
	bool compose; // the cluster is a compose project's containers
	const char *compose_project; // NULL: the default
	const char *dir; // the cluster this run starts
	const hx_subnet *subnet; // with netns: forced subnet, NULL: a free one
	int64_t participants;
	int64_t coordinators; // 0, 1: one; saga mode: orchestrators
	int64_t recovery_s, max_offset_ms, timeout_ms;
	int64_t max_concurrent; // --max-concurrent-faults (0, 1: one)
	// NULL or "bank": transfers and whole-bank reads; "list-append":
	// appends to lists and snapshot reads of them, checked by the
	// list-append checker (2pc, 3pc and pc modes only).
	const char *workload;
	const char *log_level; // the started daemons' --log-level, or NULL
} hx_bankrun_conf;

// Why a phase failed.
typedef struct hx_bankrun_err {
	char msg[1024]; // "" when there is nothing to say
	bool usage; // the configuration's fault
} hx_bankrun_err;

// What a run found, for the command's report. Valid as far as the phases
// that produced each field have run.
typedef struct hx_bankrun_out {
	// setup_cluster
	bool created; // the accounts were created by this run
	size_t nacct;
	int64_t total; // the bank's total, to be kept
	bool simulated; // partitions are the daemons' in-process FAULT
	// setup_run
	int64_t run_id;
	// The schedule's interval and gap after any compression (equal to
	// the configured ones when every kind fitted).
	uint64_t plan_interval_ms, plan_gap_ms;
	// workload
	double secs; // how long the clients ran
	uint64_t ok_transfers;
	// settle
	uint64_t in_doubt; // transactions still in doubt at the deadline
	// check
	bool have_verdict;
	hx_verdict verdict;
	size_t started[HX_NEM_NKINDS]; // faults started by kind
	size_t nem_errors;
	unsigned not_run; // requested kinds that did not run (bits)
	uint32_t gone; // nodes killed for good (kill-forever), a bit each
	// Nodes the final sweeps gave up on (no answer after recovery: their
	// answers are unknown), a bit each.
	uint32_t unanswered;
	char not_run_why[512]; // hx_nemesis_not_run's text
	// store
	char report_dir[4096];
	bool report_incomplete; // the report could not be written in full
	int interrupted; // the signal that cut the run short, 0 when none
	// setup_cluster: the cluster directory in use; conf->dir, or
	// "<conf->dir>-<pid>" when another run holds conf->dir
	char dir[4096];
} hx_bankrun_out;

typedef struct hx_bankrun hx_bankrun;

// Returns a new run for conf (borrowed until hx_bankrun_free) in *out
// (owned: free with hx_bankrun_free). DTX_ENOMEM.
dtx_err hx_bankrun_new(const hx_bankrun_conf *conf, hx_bankrun **out);
// Starts a fresh cluster in conf->dir (or opens conf->connect), opens the
// clients, and creates the accounts (or adopts the existing ones). The run
// holds a lock on the directory (DIR/bank.lock) until hx_bankrun_free;
// when another run holds it, the cluster goes to "<dir>-<pid>" instead
// (said on stderr), so two runs never stop each other's daemons.
dtx_err hx_bankrun_setup_cluster(hx_bankrun *r, hx_bankrun_err *e);
// Records the run in the results file, starts its history and plans the
// fault schedule.
dtx_err hx_bankrun_setup_run(hx_bankrun *r, hx_bankrun_err *e);
// Runs the clients for conf->duration seconds under the nemesis, drawing
// the progress line on stderr.
dtx_err hx_bankrun_workload(hx_bankrun *r, hx_bankrun_err *e);
// Ends every fault and heals the cluster.
void hx_bankrun_heal(hx_bankrun *r);
// Waits (up to conf->recovery_s) until no participant is in doubt and, in
// saga mode, every saga has finished.
dtx_err hx_bankrun_settle(hx_bankrun *r, hx_bankrun_err *e);
// Reads the whole bank (final-read) and asks the participants what became
// of every transaction.
dtx_err hx_bankrun_final_reads(hx_bankrun *r, hx_bankrun_err *e);
// Runs the checkers over the history and the observations.
dtx_err hx_bankrun_check(hx_bankrun *r, hx_bankrun_err *e);
// Stores the history, faults, observations, metrics and verdict, and
// writes the report directory (with the nodes' logs).
dtx_err hx_bankrun_store(hx_bankrun *r, hx_bankrun_err *e);
// What the run found so far (borrowed from r).
const hx_bankrun_out *hx_bankrun_result(const hx_bankrun *r);
// Ctrl-C and kill: blocks SIGINT and SIGTERM in the calling thread (so in
// every thread started after it: call it before any other thread exists)
// and takes them on a thread of the run's own. The first one ends the
// workload at once and marks the run interrupted: heal stops every fault
// and the cluster the run started (daemons, namespaces, veths, bridge,
// firewall rules), settle and final_reads do nothing, check and store
// judge and keep the partial history with runs.interrupted = 1 and write
// the report, and the command exits HX_EXIT_SIGNAL(sig). Later signals
// are ignored with a note on stderr while the run cleans up (SIGKILL
// alone would leave things behind). hx_bankrun_free ends the thread and
// restores the signal mask. DTX_EIO when the thread cannot start.
dtx_err hx_bankrun_catch_signals(hx_bankrun *r);
// The first signal taken (SIGINT or SIGTERM), 0 when none. Thread-safe.
int hx_bankrun_interrupted(const hx_bankrun *r);
// Stops the nemesis and a cluster the run started, frees everything. NULL
// does nothing.
void hx_bankrun_free(hx_bankrun *r);

// The docker-compose topology (compose/): node ids map to services by role
// ("coordinator", "participant<k>" for the k-th participant in topology
// order, "saga"); containers are found by their compose labels, so both
// docker-compose 1.x and `docker compose` v2 projects work. Each call runs
// the docker command (a few hundred ms); errors: DTX_ENOENT (no container
// for the service, or no docker command), DTX_EUNREACH (no Docker daemon
// answers), DTX_EIO (docker refused), DTX_EINVAL (id is no service).
#define HX_COMPOSE_PROJECT_DEFAULT "dtx"
#define HX_COMPOSE_NAME_MAX 64

typedef struct hx_compose hx_compose;

typedef struct hx_compose_state {
	char service[HX_COMPOSE_NAME_MAX];
	char container[16]; // short id
	char state[16]; // "running", "paused", "exited", ...
	char health[16]; // "healthy", "starting", "unhealthy", "none"
	char ip[16]; // on the project network; "" when not running
} hx_compose_state;

// Opens the project (NULL: $COMPOSE_PROJECT_NAME, else "dtx") for the
// nodes of topo (copied) after checking that a Docker daemon answers. *out
// is owned (free with hx_compose_free); err gets a one-line reason.
dtx_err hx_compose_open(const char *project, const dtx_topo *topo,
    hx_compose **out, char *err, size_t errlen);
void hx_compose_free(hx_compose *c);
const char *hx_compose_project(const hx_compose *c); // borrowed
// The service of node id, or NULL (clients, unknown ids). Borrowed.
const char *hx_compose_service(const hx_compose *c, uint32_t id);
// The full id of service's container into buf.
dtx_err hx_compose_container(
    const hx_compose *c, const char *service, char *buf, size_t len);
// docker kill -s KILL / start / pause / unpause the container of node id.
dtx_err hx_compose_kill(hx_compose *c, uint32_t id);
dtx_err hx_compose_start(hx_compose *c, uint32_t id);
dtx_err hx_compose_pause(hx_compose *c, uint32_t id);
dtx_err hx_compose_unpause(hx_compose *c, uint32_t id);
// State, health and address of the container of node id.
dtx_err hx_compose_status(hx_compose *c, uint32_t id, hx_compose_state *out);
// Applies g (both directions of every pair) with iptables DROP rules
// inside the running containers; containers that are not running are
// skipped. Returns the first error after trying every container.
dtx_err hx_compose_partition(hx_compose *c, const hx_grudge *g);
// Flushes the partition rules in every running container.
dtx_err hx_compose_heal(hx_compose *c);
// Waits until every service's container runs and is healthy.
dtx_err hx_compose_wait_healthy(hx_compose *c, uint64_t timeout_ms);

// ---------------------------------------------------------------- CLI
// conventions: exit codes, exact JSON, results housekeeping.

// Exit codes beyond the five above; cli/help.c holds the one table that
// says what each means (`dtx help exit-codes`, every --help, the README).
#define HX_EXIT_CONFLICT 65 // existing data contradicts the request
#define HX_EXIT_NOT_FOUND 66 // no node knows the transaction named
#define HX_EXIT_UNAVAILABLE 69 // the cluster or a node it needs is not up
#define HX_EXIT_INTERNAL HX_EXIT_FAILURE // could not run (70)

// Writes val exactly (never through a double).
void hx_json_u64(hx_json *j, const char *key, uint64_t val);
// A verdict: true, false or "unknown" (Jepsen's :valid? true, false or
// :unknown). Every --json output writes a verdict this way.
void hx_json_verdict(hx_json *j, const char *key, hx_valid v);
// The same as JSON text: "true", "false" or "\"unknown\"" (static).
const char *hx_valid_json(hx_valid v);
// Formats a double with the fewest of 15-17 significant digits that read
// back as the same value ("null" when not finite) into buf (>= 32 bytes).
void hx_json_fmt_double(char *buf, size_t len, double val);

// Removes runs from the results file at path: with keep > 0 every run but
// the keep newest (by id); with before (a UTC date "YYYY-MM-DD" or time
// "YYYY-MM-DDTHH:MM:SSZ") every run started before it; both may be given
// (a run goes when either says so). Deletes each run's rows in every
// table that has a run_id column, in one transaction, then each run's
// report directory, then VACUUMs. The result is owned (free with
// hx_prune_result_fini). DTX_EINVAL (bad before; err says why),
// DTX_ENOENT (no such file), errors of hx_results_open, DTX_EIO.
typedef struct hx_prune_result {
	int64_t *ids; // removed run ids, ascending
	size_t nids;
	int64_t rows; // rows deleted, over every table
	size_t dirs; // report directories removed
	int64_t bytes_before, bytes_after; // size of the file
} hx_prune_result;

// True when s is "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ" (digits where
// the letters are; the range of each field is not checked).
bool hx_utc_date_ok(const char *s);
dtx_err hx_results_prune(const char *path, int64_t keep, const char *before,
    hx_prune_result *out, char *err, size_t errlen);
void hx_prune_result_fini(hx_prune_result *r);

// ---------------------------------------------------------------- in-doubt
// transactions and heuristic decisions (txn_admin.c): what dtx txn list,
// status and resolve, dtx check --live and the atomicity observations ask
// the nodes. Every call is idempotent except hx_txn_resolve; none records
// anything at a participant (TXN_LIST reads; STATUS goes only to
// coordinators, since a participant's STATUS of an unknown txid fences it).

// What one participant answered to TXN_LIST: err DTX_OK and rep its
// TXN_LIST_REPLY (owned), or the call's error (why: the node's reason for
// a refusal, else "").
typedef struct hx_txn_node {
	uint32_t node;
	dtx_err err;
	char why[PROTO_MAX_STR + 1];
	proto_msg rep;
} hx_txn_node;

// TXN_LIST{txid} (0: everything) to every participant of c's topology, in
// topology order. *out is owned (hx_txn_nodes_free), *n its length (the
// participants). DTX_ENOMEM; the calls' errors are in the entries.
dtx_err hx_txn_list_all(hx_conn *c, uint64_t txid, uint32_t timeout_ms,
    hx_txn_node **out, size_t *n);
void hx_txn_nodes_free(hx_txn_node *l, size_t n);

// STATUS of txid at coordinator id, as the protocol answers it (no record:
// ABORTED, presumed abort). *st and *cts on DTX_OK; DTX_EREFUSED with the
// reason in why (n bytes); the call's errors.
dtx_err hx_txn_coord_status(hx_conn *c, uint32_t id, uint64_t txid,
    uint32_t timeout_ms, proto_txn_state *st, clk_ts *cts, char *why, size_t n);

// TXN_RESOLVE{txid, commit, reason (may be NULL)} to participant id. On
// DTX_OK *rep is its TXN_RESOLVE_REPLY (owned: proto_msg_free). On
// DTX_EREFUSED *code is the node's error code (DTX_ENOENT: not in doubt
// there, no record; DTX_EEXIST: decided there; DTX_EAGAIN: the
// coordinator is still deciding; DTX_EPERM: not an admin) and why its
// reason. Other errors: the call's.
dtx_err hx_txn_resolve(hx_conn *c, uint32_t id, uint64_t txid, bool commit,
    const char *reason, uint32_t timeout_ms, proto_msg *rep, dtx_err *code,
    char *why, size_t n);

// "unconfirmed", "agreed", "hazard".
const char *hx_heur_verdict_name(proto_heur_verdict v);

// Adds what the participants know of heuristic decisions to atomicity
// observations (*obs, *n: owned, grown with dtx_realloc): for each
// decision, the deciding node's observation of its txid becomes
// HX_TXN_HEUR_COMMITTED or HX_TXN_HEUR_ABORTED (added when missing), and
// a decision the node found contradicted adds HX_TXN_HEUR_HAZARD. With
// only_known, decisions of txids not already in *obs are left out.
// DTX_ENOMEM; a node that cannot be asked is skipped.
dtx_err hx_txn_heur_obs(
    hx_conn *c, bool only_known, hx_txn_obs **obs, size_t *n);

// Observations of every transaction in doubt or decided by hand anywhere
// in the cluster, for dtx check --live: each participant's state of the
// txid (TXN_LIST, read only), the coordinator's (STATUS), and the
// heuristic outcomes as hx_txn_heur_obs adds them. *obs owned (dtx_free).
// *unreachable gets the participants that could not be asked.
dtx_err hx_txn_live_obs(hx_conn *c, uint32_t timeout_ms, hx_txn_obs **obs,
    size_t *n, size_t *unreachable);

#endif // HARNESS_H
