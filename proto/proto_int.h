// SPDX-License-Identifier: MIT
//
// Shared between proto's own files: the wire layer's internals and the
// socket set-up both RPC ends use.

#ifndef PROTO_INT_H
#define PROTO_INT_H

#include <stdatomic.h>

#include "proto.h"
#include "wire_int.h"

// Bytes nng's REQ/REP adds to a body on the wire (the request id and
// its backtrace), allowed on top of max_msg so that a body of exactly
// max_msg arrives and one just over it is answered by the decoder with an
// ERROR instead of a dropped connection.
#define PROTO__NNG_SLACK 256

// Sets NNG_OPT_RECVMAXSZ on sock to max_msg plus PROTO__NNG_SLACK.
// Returns a dtx_err.
dtx_err proto__sock_limits(nng_socket sock, size_t max_msg);

// True for a tls+tcp:// URL.
bool proto__url_tls(const char *url);

// A URL's transport against the TLS material: a tls+tcp URL needs tls, any
// other refuses it. DTX_EINVAL when they disagree.
dtx_err proto__url_check(const char *url, const proto_tls *tls);

// nng's configuration for a listener (server) or dialer of t. Borrowed.
struct nng_tls_config;
struct nng_tls_config *proto__tls_nng(const proto_tls *t, bool server);

// True at most once a second per *last (a rate limit for log lines of
// one kind). Thread-safe.
bool proto__once_a_second(_Atomic uint64_t *last);

// n bytes from the kernel's CSPRNG. DTX_EIO.
dtx_err proto__random(void *buf, size_t n);

// Writes the daemon's manual page (section 8, roff) for role from the
// flag tables its --help prints (manpage.c).
void proto__daemon_man(FILE *out, dtx_role role, const dtx_cfg_opt *common,
    size_t ncommon, const dtx_cfg_opt *extra, size_t nextra);

// ================================================================
// the trace ring (trace.c): the last events of a daemon's transactions
// and sagas, fixed memory, one mutex.

typedef struct proto__trace proto__trace;

// A ring of cap events (cap 0: *out NULL, tracing off). DTX_ENOMEM.
dtx_err proto__trace_new(size_t cap, proto__trace **out);
void proto__trace_free(proto__trace *t);

// Appends e (gid and what copied, truncated to fit), giving it the next
// sequence number; the oldest event is overwritten when the ring is full.
// NULL t does nothing. Thread-safe.
void proto__trace_add(proto__trace *t, const proto_trace_ev *e);

// The events about txid (0: any) and gid (NULL: any; both unset: all),
// oldest first, into out (events owned: free with the message), as many
// as fit a reply; lost counts the ring's overwritten events plus those
// left out. DTX_ENOMEM. Thread-safe.
dtx_err proto__trace_collect(
    proto__trace *t, uint64_t txid, const char *gid, proto_trace_reply *out);

// "L.C" for an HLC timestamp and "id:count,..." (non-zero entries) for a
// vector clock, as the log and dtx trace write them.
void proto__fmt_hlc(char *buf, size_t len, clk_ts ts);
void proto__fmt_vc(char *buf, size_t len, const clk_vc *vc);

// ================================================================
// metrics and HTTP (metrics.c, http.c): the daemon runtime's /metrics,
// /livez and /readyz.

// A growing text buffer; oom is set (and the text left as it was) when
// it cannot grow. Zero-initialise; proto__buf_fini frees it.
typedef struct proto__buf {
	char *p;
	size_t len, cap;
	bool oom;
} proto__buf;

void proto__buf_printf(proto__buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void proto__buf_fini(proto__buf *b);

// A latency histogram with fixed buckets from 100 us to 10 s (then +Inf),
// lock-free. Zero-initialise.
#define PROTO__HIST_BUCKETS 16
typedef struct proto__hist {
	_Atomic uint64_t bucket[PROTO__HIST_BUCKETS + 1]; // not cumulative
	_Atomic uint64_t sum_ns;
	_Atomic uint64_t count;
} proto__hist;

// Counts one observation of ns nanoseconds. Thread-safe.
void proto__hist_observe(proto__hist *h, uint64_t ns);

// What the runtime counts of the requests it served. Zero-initialise,
// then set role.
typedef struct proto__metrics {
	dtx_role role;
	proto__hist req[PROTO_TYPE_COUNT]; // by request type
	proto__hist txn[2]; // TXN to TXN_REPLY, by proto_mode
	proto__hist fsync; // the daemon's WAL fsyncs
	atomic_bool fsync_timed; // the daemon reports its fsyncs
	_Atomic uint64_t txns[2][3]; // [mode][proto_outcome]
	_Atomic uint64_t prepares[2]; // [mode]
	_Atomic uint64_t votes[2][2]; // [mode][yes]
	_Atomic uint64_t steps[2][3]; // [proto_phase][proto_step_result]
	_Atomic uint64_t sagas[3]; // [proto_outcome]
} proto__metrics;

// Counts a request and its reply (a BATCH element by element), served
// in ns nanoseconds. Borrows both. Thread-safe.
void proto__metrics_account(
    proto__metrics *m, const proto_msg *req, const proto_msg *rep, uint64_t ns);

// Values the runtime works out at scrape time.
typedef struct proto__gauges {
	bool ready; // what /readyz answers
	double hlc_offset_s; // HLC l minus physical time
} proto__gauges;

// Appends the whole exposition (m's families, g's, and every counter of
// the HEALTH reply h) to b. Borrows all.
void proto__metrics_render(const proto__metrics *m, const proto_health_reply *h,
    const proto__gauges *g, proto__buf *b);

// The HTTP listener (nng's HTTP server): GET /metrics, /livez, /readyz;
// nng answers other paths with 404 and other methods with 405.
typedef struct proto__http proto__http;

typedef struct proto__http_cfg {
	const char *addr; // "HOST:PORT" or "http://HOST:PORT"; port 0 picks
	const char *addr_file; // gets the bound HOST:PORT, or NULL
	// Fills out with the /metrics page; an error answers 500.
	dtx_err (*metrics)(void *arg, proto__buf *out);
	// Whether the daemon is ready; when not, why (one line).
	bool (*ready)(void *arg, char *why, size_t len);
	void *arg;
} proto__http_cfg;

// Binds and starts serving. *out returns owned (proto__http_close).
// DTX_EINVAL for a bad address, DTX_EEXIST when it is in use, DTX_EIO
// when the address file cannot be written; err says which.
dtx_err proto__http_open(
    const proto__http_cfg *cfg, proto__http **out, char *err, size_t errlen);

// The bound "HOST:PORT" (borrowed, valid until close).
const char *proto__http_addr(const proto__http *h);

// Stops serving (a request being answered finishes first) and frees h.
// NULL does nothing.
void proto__http_close(proto__http *h);

#endif // PROTO_INT_H
