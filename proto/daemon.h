// SPDX-License-Identifier: MIT
//
// proto's daemon layer: the runtime the three dtx daemons share (flags,
// topology, clocks on every message, PING/HEALTH/FAULT, peer calls with
// injectable faults, signals). Errors go back to main(); it never exits.

#ifndef DTX_PROTO_DAEMON_H
#define DTX_PROTO_DAEMON_H

#include "rpc.h"

// ================================================================ daemons
//
// The runtime every dtx daemon shares (proto/daemon.c), so that a daemon's
// main() reads as: open the runtime, open its own state, serve, wait for
// a signal, close. It owns:
// - the configuration: the common flags below (also read from DTX_<NAME>
//   environment variables), plus the daemon's own table;
// - the topology (--topology) and this node's place in it (--node-id);
// - the node's clocks: a clk_source (DTX_CLOCK_OFFSET_MS/DTX_CLOCK_RATE at
//   start, the "clock" FAULT at run time) and a clk_node whose persisted
//   bound lives in <data>/clock.bound; every message in and out goes
//   through it (an incoming message more than --max-offset-ms ahead is
//   answered with ERROR DTX_ECLOCK and counted);
// - the server on --listen (default: this node's url in the topology);
// - PING (answered here), HEALTH (role, node and counters filled here, the
//   rest by the daemon's health hook) and the generic FAULT kinds:
//     "clock"     args [offset_ms, rate_permille]: skew this node's clock
//                 (rate 1000 = real speed; [0, 1000] resets);
//     "partition" args [id...]: calls from this node to those ids fail
//                 as lost packets would (after the call's timeout, with
//                 DTX_ETIMEDOUT; DTX_EUNREACH if never connected); no
//                 args heals;
//     "delay"     args [id, ms]: calls to id wait ms first (ms 0 clears);
//                 the call's timeout starts when it leaves, as with a
//                 stalled send queue (the packet nemesis without
//                 sch_netem, and the slow-link nemesis, one link);
//     "crash_at"  s NAME, args [nth]: arm crash point NAME (dtx_crashpoint);
//   other kinds go to the daemon's fault hook;
// - clients to every peer, created on first use and shared by all threads;
// - SIGTERM/SIGINT (a clean stop) and SIGPIPE (ignored);
// - the trust boundary: every link is mutual TLS with the --tls-* files
//   (the topology's urls are then tls+tcp://), each connection bound to
//   the node its certificate names (rpc.h); plaintext tcp:// and ipc://
//   only with --insecure, which the log and HEALTH ("insecure" 1) say.
//   Every request is checked against the authorisation table below by
//   the sender's role before the daemon sees it; refusals are answered
//   with ERROR DTX_EPERM, counted in HEALTH by reason and logged at most
//   once a second per (peer, reason) with a count of what was left out.

typedef struct proto_daemon proto_daemon;

// The common flags. Strings are owned by the runtime.
typedef struct proto_daemon_cfg {
	int64_t node_id; // --node-id (required)
	char *topology; // --topology FILE (required)
	char *data; // --data DIR (required; created if missing)
	char *listen; // --listen URL (default: from the topology)
	int64_t workers; // --workers: server worker threads (64)
	char *log_level; // --log-level debug|info|warn|error (info)
	int64_t max_offset_ms; // --max-offset-ms: HLC max_offset (500)
	int64_t timeout_ms; // --timeout-ms: default peer call timeout (1000)
	char *tls_ca; // --tls-ca FILE: the cluster CA (PEM)
	char *tls_cert; // --tls-cert FILE: this node's certificate (PEM)
	char *tls_key; // --tls-key FILE: its private key (PEM, unencrypted)
	bool insecure; // --insecure: plaintext tcp:// and ipc:// links
	bool enable_faults; // --enable-faults: serve FAULT (harness only)
	int64_t max_conns; // --max-conns: connections at once (512; lowered
	                   // to keep descriptors for the store, daemon.c)
	char *http; // --http HOST:PORT: /metrics, /livez, /readyz (off)
	char *log_format; // --log-format logfmt|json (logfmt)
	int64_t trace_events; // --trace-events: the trace ring's size (2048)
} proto_daemon_cfg;

// What a daemon plugs into the runtime. All hooks run on server worker
// threads and must be thread-safe; arg is passed to each.
typedef struct proto_daemon_hooks {
	dtx_role role; // the role this daemon must have in the topology
	// Serves every request the runtime does not (see above). With
	// whole_batches a BATCH arrives whole (its elements' clocks already
	// observed) and must be answered with a BATCH of replies in order.
	proto_handler_fn handler;
	bool whole_batches;
	// Optional, without whole_batches: runs with true before the handler
	// calls for one BATCH's elements and with false after them (on the
	// same thread), so the daemon can treat what they start as a group.
	void (*batch)(void *arg, bool begin);
	// Fills the daemon's part of a HEALTH reply: state, in_doubt,
	// blocked, and any counters it adds with proto_health_counter.
	// Optional.
	dtx_err (*health)(void *arg, proto_health_reply *rep);
	// FAULT kinds the runtime does not know; DTX_ENOENT for an unknown
	// kind (answered as an ERROR). Optional.
	dtx_err (*fault)(void *arg, const proto_fault *f);
	void *arg;
} proto_daemon_hooks;

// Blocks SIGTERM/SIGINT in the calling thread (call it first in main,
// before any thread starts), parses argv[1..argc) against the common
// flags and the daemon's own table extra[0..nextra) into extra_cfg (may
// be NULL when nextra is 0; its strings are freed by proto_daemon_close),
// sets up logging as "<role>-<id>", loads the topology and opens the
// clocks. On a bad flag or file prints one line saying what is wrong and
// returns DTX_EINVAL. *out returns owned (close with proto_daemon_close).
// On --help (or -h) prints the usage, and on --man the manual page (roff,
// section 8, from the same flag tables), and returns DTX_OK with *out
// NULL: main() then has nothing to run and ends with success. Never
// exits.
dtx_err proto_daemon_open(const char *prog, dtx_role role, int argc,
    char **argv, const dtx_cfg_opt *extra, size_t nextra, void *extra_cfg,
    proto_daemon **out);

// Starts the server with hooks (copied). DTX_EEXIST when the address is in
// use, DTX_EINVAL for a bad URL.
dtx_err proto_daemon_serve(proto_daemon *d, const proto_daemon_hooks *hooks);

// Waits for SIGTERM or SIGINT (or proto_daemon_stop), then returns. A
// daemon calls it once its start is complete (recovery started): from
// then on it may be ready. Meanwhile it tells systemd (sd_notify, a
// no-op without NOTIFY_SOCKET) READY=1 the first time the daemon is
// ready, STATUS= with the reason while it is not, and STOPPING=1 when
// it returns.
//
// Ready (what /readyz answers 200 for and dtx_ready says): the daemon
// reached proto_daemon_wait, is not stopping, and its HEALTH state is
// "ok": recovery is done (no reloaded transaction or saga still being
// resolved), no in-doubt transaction is blocked (a participant whose
// coordinator and peers cannot tell an outcome is not ready: it holds
// locks it cannot release, and says so in the reason and in HEALTH),
// and the store takes writes. Otherwise /readyz answers 503 with the
// state as its one-line reason.
//
// --http HOST:PORT serves GET /metrics (Prometheus text format 0.0.4),
// /livez and /readyz on nng's HTTP server from proto_daemon_serve until
// proto_daemon_wait returns; port 0 picks a free port, and the bound
// HOST:PORT is written to DATA/http.addr either way.
void proto_daemon_wait(proto_daemon *d);

// Records a state change of transaction txid (0: none) or saga gid (NULL:
// none) as a trace event of kind, named what (a message id, borrowed; the
// event's "w" and its log line's msg), with ts (0: none) the timestamp it
// carries (a prepare or commit ts). It is a local event of the node's
// clocks (both tick) and goes into the trace ring (--trace-events) and, at
// debug level, the log as msg=WHAT ev=KIND txid= gid= ts= hlc= vc=.
//
// The runtime itself records a send and a receive event for each message
// that names a transaction or saga (proto_msg_ref): ev=send/recv with its
// type, and for a receive the sender (peer=) and the sender's own vector
// clock entry (pc=), which names the send event; at debug level they are
// logged as msg=MSG_SEND / MSG_RECV. TRACE (admin and harness roles)
// returns the ring's events about one transaction or saga; the ring
// keeps the last --trace-events of them. The node's own vector clock
// entry starts at (HLC l at start + 1) * 2^20, so that an incarnation's
// events follow its predecessor's. Thread-safe; NULL d does nothing.
void proto_daemon_trace(proto_daemon *d, proto_ev_kind kind, uint64_t txid,
    const char *gid, const char *what, clk_ts ts);

// As proto_daemon_trace, also naming alias (borrowed; NULL: none): the
// other name the saga gid goes by (the orchestrator's barrier id, which
// is what the participants' events name it), logged as alias=.
void proto_daemon_trace_saga(proto_daemon *d, proto_ev_kind kind, uint64_t txid,
    const char *gid, const char *alias, const char *what, clk_ts ts);

// Counts one fsync of the daemon's WAL that took ns nanoseconds in the
// dtx_wal_fsync_duration_seconds histogram. Thread-safe.
void proto_daemon_observe_fsync(proto_daemon *d, uint64_t ns);

// Makes proto_daemon_wait return (e.g. from a daemon's own thread after
// a fatal error). Thread-safe.
void proto_daemon_stop(proto_daemon *d);

// True once a stop was asked for. Thread-safe.
bool proto_daemon_stopping(proto_daemon *d);

// True once a crash point was armed in this process (DTX_CRASH_AT at
// start, or a "crash_at" FAULT since; it stays true). A daemon may then
// keep an order of events that a crash point's test relies on but that
// costs time otherwise. Thread-safe.
bool proto_daemon_crash_armed(proto_daemon *d);

// Stops the server (handlers in progress finish), closes the peer clients
// and the clocks, frees d and extra_cfg's strings. NULL does nothing. The
// daemon closes its own state after this.
void proto_daemon_close(proto_daemon *d);

// Accessors (borrowed, valid until close; thread-safe).
const proto_daemon_cfg *proto_daemon_config(const proto_daemon *d);
const dtx_topo *proto_daemon_topo(const proto_daemon *d);
clk_node *proto_daemon_clock(proto_daemon *d);
uint32_t proto_daemon_id(const proto_daemon *d);

// Calls peer (a node id in the topology) through the shared client,
// applying the partition and delay faults. Same contract as
// proto_client_call (opts may be NULL: the --timeout-ms default, not
// idempotent). DTX_EINVAL for an unknown peer. Thread-safe.
dtx_err proto_daemon_call(proto_daemon *d, uint32_t peer, proto_msg *req,
    proto_msg *rep, const proto_call_opts *opts);

// The asynchronous twin of proto_daemon_call: the contract of
// proto_client_call_async, with the partition and delay faults applied
// (a delayed call waits on an nng timer, not on a thread). As there, req,
// what it points to and opts (with opts->retry) are borrowed only during
// this call: a delayed call keeps its own deep copy until its delay ends
// (a batcher's BATCH lives on the batcher's stack). DTX_EINVAL for an
// unknown peer or a request that cannot be encoded. Every started call
// must have completed before proto_daemon_close. Thread-safe.
dtx_err proto_daemon_call_async(proto_daemon *d, uint32_t peer, proto_msg *req,
    const proto_call_opts *opts, proto_done_fn done, void *arg);

// ================================================================
// authorisation
//
// Roles are bits (1u << proto_role) so that a sender may hold several:
// over TLS exactly its certificate's; over plaintext (--insecure) the
// topology's role for its claimed node id, proto_authz_external()
// (client, admin and harness) for a client's id, and every role for an
// id outside the topology (over plaintext anyone may claim any id). Over TLS a
// certificate for a node id of the topology must name that node's role (a
// client line accepts client, admin and harness certificates), and one for an
// id outside it an external role.

typedef enum proto_refusal {
	PROTO_REFUSED_NONE = 0,
	PROTO_REFUSED_ROLE, // the sender's role may not send this type
	PROTO_REFUSED_FAULTS_OFF, // FAULT without --enable-faults
	PROTO_REFUSED_IDENTITY, // certificate and topology disagree
	PROTO_REFUSED_COUNT
} proto_refusal;

// The roles (bits) that may send type as a request to a daemon.
uint32_t proto_authz_roles(proto_type type);

// The roles of a sender outside the cluster's own daemons.
uint32_t proto_authz_external(void);

// Every role.
uint32_t proto_authz_any(void);

// Whether a sender holding roles may send type, FAULT also needing
// faults_enabled. PROTO_REFUSED_NONE when it may.
proto_refusal proto_authz_check(
    proto_type type, uint32_t roles, bool faults_enabled);

// "refused_role", ... (the HEALTH counter names); "?" out of range.
const char *proto_refusal_name(proto_refusal r);

// Appends a counter to a HEALTH reply being built (name copied).
// DTX_ENOMEM, DTX_EINVAL when the reply already holds PROTO_MAX_COUNTERS.
dtx_err proto_health_counter(
    proto_health_reply *rep, const char *name, int64_t value);

// A counter's name (borrowed) and value, for proto_health_counters.
typedef struct proto_named_value {
	const char *name;
	int64_t value;
} proto_named_value;

// Appends the n counters of c (names copied) to a HEALTH reply being
// built, in order, stopping at the first error of proto_health_counter.
dtx_err proto_health_counters(
    proto_health_reply *rep, const proto_named_value *c, size_t n);

// Appends one counter per name, names[i] (copied) with the value of
// ctr[i], as proto_health_counters does. Thread-safe against concurrent
// increments of ctr.
dtx_err proto_health_counter_array(proto_health_reply *rep,
    const char *const *names, _Atomic uint64_t *ctr, size_t n);

// The "wal_sync" FAULT of a daemon with a log on disk: args [n] make the
// next n fsyncs of that log fail (default 1; 0 disarms), as a failing
// disk would. Stores n in *left and logs it, calling the log what
// (borrowed). DTX_ENOENT for any other kind of FAULT, DTX_EINVAL for n
// outside 0..1000000. Thread-safe.
dtx_err proto_fault_wal_sync(
    const proto_fault *f, _Atomic int64_t *left, const char *what);

// For the log's fsync hook: true when a "wal_sync" FAULT still asks for
// a failed fsync, taking one from *left. Thread-safe.
bool proto_fault_sync_due(_Atomic int64_t *left);

#endif // DTX_PROTO_DAEMON_H
