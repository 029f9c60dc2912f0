// SPDX-License-Identifier: MIT
//
// The daemon runtime: what every dtx daemon does the same way (flags,
// topology, clocks on every message, the server, PING/HEALTH/FAULT, peer
// clients with injectable partitions and delays, signals), so that each
// daemon's own files hold only its protocol.

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "proto_int.h"

struct proto_daemon {
	proto_daemon_cfg cfg;
	const dtx_cfg_opt *extra;
	size_t nextra;
	void *extra_cfg;
	dtx_role role;
	dtx_topo topo;
	clk_source *src;
	clk_node *clock;
	// Set once proto_daemon_serve's server is open; its workers may
	// serve a HEALTH before that, so readers load it atomically.
	proto_server *_Atomic server;
	proto_daemon_hooks hooks;
	uint32_t max_conns; // the cap in force (conn_cap)
	sigset_t sigs;
	uint64_t started_ns;

	pthread_mutex_t mtx; // guards clients[], cut[], delay_ms[]
	proto_client *clients[DTX_TOPO_MAX];
	bool cut[DTX_TOPO_MAX];
	uint32_t delay_ms[DTX_TOPO_MAX];

	atomic_bool stopping;
	// A crash point was armed (DTX_CRASH_AT at start or a "crash_at"
	// FAULT since): sticky, read by proto_daemon_crash_armed.
	atomic_bool crash_armed;
	_Atomic uint64_t clock_rejected;
	_Atomic uint64_t faults;
	_Atomic uint64_t calls_cut;

	proto_tls *tls; // NULL with --insecure
	_Atomic uint64_t refused[PROTO_REFUSED_COUNT];

	proto__trace *trace; // --trace-events, or NULL
	uint64_t boot_l; // the HLC's l when the daemon started

	proto__metrics metrics; // what /metrics adds to HEALTH
	proto__http *http; // --http, or NULL
	atomic_bool waiting; // main reached proto_daemon_wait
};

#define CFG(f) offsetof(proto_daemon_cfg, f)

static const dtx_cfg_opt common_opts[] = {
	{ "node-id", DTX_CFG_INT, CFG(node_id), 0, DTX_TOPO_MAX - 1, NULL,
	    "this node's id in the topology (required)" },
	{ "topology", DTX_CFG_STR, CFG(topology), 0, 0, NULL,
	    "topology file (required)" },
	{ "data", DTX_CFG_STR, CFG(data), 0, 0, NULL,
	    "data directory (required; created if missing)" },
	{ "listen", DTX_CFG_STR, CFG(listen), 0, 0, NULL,
	    "listen URL (default: this node's URL in the topology)" },
	{ "workers", DTX_CFG_INT, CFG(workers), 1, 1024, "64",
	    "server worker threads" },
	{ "log-level", DTX_CFG_STR, CFG(log_level), 0, 0, "info",
	    "debug, info, warn or error" },
	{ "max-offset-ms", DTX_CFG_INT, CFG(max_offset_ms), 1, 3600000, "500",
	    "refuse messages whose clock is this far ahead" },
	{ "timeout-ms", DTX_CFG_INT, CFG(timeout_ms), 1, 600000, "1000",
	    "default timeout of calls to peers" },
	{ "tls-ca", DTX_CFG_STR, CFG(tls_ca), 0, 0, NULL,
	    "the cluster CA certificate (PEM)" },
	{ "tls-cert", DTX_CFG_STR, CFG(tls_cert), 0, 0, NULL,
	    "this node's certificate (PEM; CN=<role>-<id>)" },
	{ "tls-key", DTX_CFG_STR, CFG(tls_key), 0, 0, NULL,
	    "this node's private key (PEM)" },
	{ "insecure", DTX_CFG_BOOL, CFG(insecure), 0, 0, "false",
	    "plaintext tcp:// and ipc:// links, no authentication (a single "
	    "trusted host only)" },
	{ "enable-faults", DTX_CFG_BOOL, CFG(enable_faults), 0, 0, "false",
	    "serve FAULT requests from harness certificates" },
	{ "max-conns", DTX_CFG_INT, CFG(max_conns), 1, 1000000, "512",
	    "connections at once; more are closed" },
	{ "http", DTX_CFG_STR, CFG(http), 0, 0, NULL,
	    "HOST:PORT for GET /metrics, /livez and /readyz (off unless "
	    "given; port 0 picks one, written to DATA/http.addr)" },
	{ "log-format", DTX_CFG_STR, CFG(log_format), 0, 0, "logfmt",
	    "log records as logfmt or json lines" },
	{ "trace-events", DTX_CFG_INT, CFG(trace_events), 0, 65536, "2048",
	    "transaction events kept for TRACE (dtx trace); 0 keeps none" },
};
#define NCOMMON (sizeof(common_opts) / sizeof(common_opts[0]))

static const dtx_cfg_opt *
find_flag(const dtx_cfg_opt *t, size_t n, const char *arg)
{
	const char *name = arg + 2;
	const char *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	for (size_t i = 0; i < n; i++)
		if (strlen(t[i].name) == len &&
		    strncmp(t[i].name, name, len) == 0)
			return &t[i];
	return NULL;
}

static void
usage(const char *prog, const dtx_cfg_opt *extra, size_t nextra)
{
	printf("usage: %s --node-id N --topology FILE --data DIR [FLAGS]\n"
	       "       %s --help | --man (this, or the manual page in roff)\n",
	    prog, prog);
	dtx_cfg_usage(stdout, common_opts, NCOMMON);
	dtx_cfg_usage(stdout, extra, nextra);
}

// Splits argv between the common table and the daemon's own, then loads
// each (defaults, DTX_* environment, flags). On --help prints the usage,
// sets *help and loads nothing.
static dtx_err
parse_flags(
    proto_daemon *d, const char *prog, int argc, char **argv, bool *help)
{
	char **mine = NULL, **theirs = NULL, err[512];
	int nm = 0, nt = 0;
	dtx_err rv = DTX_ENOMEM;

	mine = dtx_calloc((size_t)argc + 1, sizeof(char *));
	theirs = dtx_calloc((size_t)argc + 1, sizeof(char *));
	if (mine == NULL || theirs == NULL)
		goto done;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(prog, d->extra, d->nextra);
			*help = true;
			rv = DTX_OK;
			goto done;
		}
		if (strcmp(a, "--man") == 0) {
			proto__daemon_man(stdout, d->role, common_opts, NCOMMON,
			    d->extra, d->nextra);
			*help = true;
			rv = DTX_OK;
			goto done;
		}
		const dtx_cfg_opt *o = NULL;
		char ***dst = NULL;
		int *dn = NULL;
		if (strncmp(a, "--", 2) == 0) {
			if ((o = find_flag(common_opts, NCOMMON, a)) != NULL) {
				dst = &mine;
				dn = &nm;
			} else if ((o = find_flag(d->extra, d->nextra, a)) !=
			    NULL) {
				dst = &theirs;
				dn = &nt;
			}
		}
		if (o == NULL) {
			fprintf(stderr,
			    "%s: unknown flag or argument '%s' (see %s "
			    "--help)\n",
			    prog, a, prog);
			rv = DTX_EINVAL;
			goto done;
		}
		(*dst)[(*dn)++] = argv[i];
		if (strchr(a, '=') == NULL && o->type != DTX_CFG_BOOL &&
		    i + 1 < argc)
			(*dst)[(*dn)++] = argv[++i];
	}
	rv = dtx_cfg_load(common_opts, NCOMMON, &d->cfg, "DTX_", nm, mine, NULL,
	    0, NULL, err, sizeof(err));
	if (rv == DTX_OK && d->nextra > 0)
		rv = dtx_cfg_load(d->extra, d->nextra, d->extra_cfg, "DTX_", nt,
		    theirs, NULL, 0, NULL, err, sizeof(err));
	if (rv == DTX_EINVAL)
		fprintf(stderr, "%s: %s (see %s --help)\n", prog, err, prog);
	if (rv == DTX_OK && (d->cfg.topology == NULL || d->cfg.data == NULL)) {
		fprintf(stderr,
		    "%s: --topology and --data are required (see %s "
		    "--help)\n",
		    prog, prog);
		rv = DTX_EINVAL;
	}
done:
	dtx_free(mine);
	dtx_free(theirs);
	return rv;
}

static proto_role
topo_role(dtx_role r)
{
	switch (r) {
	case DTX_ROLE_COORDINATOR:
		return PROTO_ROLE_COORDINATOR;
	case DTX_ROLE_PARTICIPANT:
		return PROTO_ROLE_PARTICIPANT;
	case DTX_ROLE_SAGA:
		return PROTO_ROLE_SAGA;
	default:
		return PROTO_ROLE_CLIENT;
	}
}

// Checks that every url this daemon listens on or dials suits the mode:
// tls+tcp:// with certificates, anything else only with --insecure.
static dtx_err
check_urls(proto_daemon *d, const char *prog)
{
	bool tls = d->tls != NULL;
	for (uint32_t i = 0; i <= d->topo.n; i++) {
		const char *u =
		    i < d->topo.n ? d->topo.nodes[i].url : d->cfg.listen;
		if (u[0] == '\0' || proto__url_tls(u) == tls)
			continue;
		fprintf(stderr,
		    tls ? "%s: %s is not tls+tcp://: with certificates every "
		          "link is TLS (plaintext needs --insecure and no "
		          "--tls-* flags)\n"
		        : "%s: %s needs --tls-ca, --tls-cert and --tls-key\n",
		    prog, u);
		return DTX_EINVAL;
	}
	return DTX_OK;
}

// Opens the TLS material, or accepts plaintext only with --insecure.
static dtx_err
open_links(proto_daemon *d, const char *prog)
{
	const proto_daemon_cfg *c = &d->cfg;
	char why[300];
	bool any = c->tls_ca || c->tls_cert || c->tls_key;
	if (!any && !c->insecure) {
		fprintf(stderr,
		    "%s: give --tls-ca, --tls-cert and --tls-key (mutual TLS), "
		    "or --insecure for plaintext links on a trusted host\n",
		    prog);
		return DTX_EINVAL;
	}
	if (any && c->insecure) {
		fprintf(stderr,
		    "%s: --insecure and --tls-* exclude each other\n", prog);
		return DTX_EINVAL;
	}
	if (any) {
		dtx_err rv = proto_tls_open(c->tls_ca, c->tls_cert, c->tls_key,
		    why, sizeof(why), &d->tls);
		if (rv != DTX_OK) {
			fprintf(stderr, "%s: TLS: %s\n", prog, why);
			return rv;
		}
		uint32_t node;
		proto_role role;
		proto_tls_self(d->tls, &node, &role);
		if (node != (uint32_t)c->node_id ||
		    role != topo_role(d->role)) {
			fprintf(stderr,
			    "%s: %s names %s %u, but this is %s %lld\n", prog,
			    c->tls_cert, proto_role_name(role), node,
			    dtx_role_name(d->role), (long long)c->node_id);
			return DTX_EINVAL;
		}
	}
	return check_urls(d, prog);
}

dtx_err
proto_daemon_open(const char *prog, dtx_role role, int argc, char **argv,
    const dtx_cfg_opt *extra, size_t nextra, void *extra_cfg,
    proto_daemon **out)
{
	proto_daemon *d;
	dtx_err rv;
	char err[512], path[4096 + 16];

	// Signals first, so every thread started later inherits the mask.
	struct sigaction ign = { .sa_handler = SIG_IGN };
	sigaction(SIGPIPE, &ign, NULL);
	d = dtx_calloc(1, sizeof(*d));
	if (d == NULL)
		return DTX_ENOMEM;
	sigemptyset(&d->sigs);
	sigaddset(&d->sigs, SIGTERM);
	sigaddset(&d->sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &d->sigs, NULL);
	pthread_mutex_init(&d->mtx, NULL);
	d->role = role;
	d->metrics.role = role;
	d->extra = extra;
	d->nextra = nextra;
	d->extra_cfg = extra_cfg;
	d->started_ns = dtx_mono_ns();
	const char *crash = getenv("DTX_CRASH_AT");
	atomic_store(&d->crash_armed, crash != NULL && *crash != '\0');

	bool help = false;
	if ((rv = parse_flags(d, prog, argc - 1, argv + 1, &help)) != DTX_OK)
		goto fail;
	if (help) {
		// Nothing to run: main() ends with success.
		proto_daemon_close(d);
		*out = NULL;
		return DTX_OK;
	}
	dtx_log_level lv;
	if (dtx_log_level_parse(d->cfg.log_level, &lv) != DTX_OK) {
		fprintf(stderr,
		    "%s: --log-level '%s' is not debug, info, warn or error\n",
		    prog, d->cfg.log_level);
		rv = DTX_EINVAL;
		goto fail;
	}
	dtx_log_format lf;
	if (dtx_log_format_parse(d->cfg.log_format, &lf) != DTX_OK) {
		fprintf(stderr, "%s: --log-format '%s' is not logfmt or json\n",
		    prog, d->cfg.log_format);
		rv = DTX_EINVAL;
		goto fail;
	}
	dtx_log_set_format(lf);
	char name[32];
	snprintf(name, sizeof(name), "%s-%lld",
	    role == DTX_ROLE_COORDINATOR       ? "coord"
	        : role == DTX_ROLE_PARTICIPANT ? "part"
	                                       : dtx_role_name(role),
	    (long long)d->cfg.node_id);
	dtx_log_init(name, lv);

	rv = dtx_topo_load(d->cfg.topology, &d->topo, err, sizeof(err));
	if (rv != DTX_OK) {
		fprintf(stderr, "%s: topology: %s\n", prog, err);
		goto fail;
	}
	const dtx_node *self =
	    dtx_topo_find(&d->topo, (uint32_t)d->cfg.node_id);
	if (self == NULL || self->role != role) {
		fprintf(stderr, "%s: node %lld is %s%s in %s, not a %s\n", prog,
		    (long long)d->cfg.node_id, self ? "a " : "not",
		    self ? dtx_role_name(self->role) : "", d->cfg.topology,
		    dtx_role_name(role));
		rv = DTX_EINVAL;
		goto fail;
	}
	if (d->cfg.listen == NULL &&
	    (d->cfg.listen = dtx_strdup(self->url)) == NULL) {
		rv = DTX_ENOMEM;
		goto fail;
	}
	if ((rv = open_links(d, prog)) != DTX_OK)
		goto fail;
	if ((rv = dtx_mkdir_p(d->cfg.data)) != DTX_OK) {
		fprintf(stderr, "%s: cannot create %s: %s\n", prog, d->cfg.data,
		    dtx_strerror(rv));
		goto fail;
	}
	if ((rv = clk_source_new_env(&d->src)) != DTX_OK) {
		fprintf(
		    stderr, "%s: clock source: %s\n", prog, dtx_strerror(rv));
		goto fail;
	}
	// No clock fault moves it further than the HLC recovers from in
	// max_offset + 1 ms after the reset (clock.h).
	clk_source_limit(d->src, CLK_FAULT_MAX_MS(d->cfg.max_offset_ms));
	snprintf(path, sizeof(path), "%s/clock.bound", d->cfg.data);
	rv = clk_node_open(&d->clock, d->src, (uint32_t)d->cfg.node_id,
	    d->topo.max_id, (uint64_t)d->cfg.max_offset_ms, path);
	if (rv != DTX_OK) {
		fprintf(stderr, "%s: clock bound %s: %s\n", prog, path,
		    dtx_strerror(rv));
		goto fail;
	}
	// Our vector clock entry starts above any an earlier incarnation of
	// this node issued: the HLC's l never goes back (its bound is
	// persisted), and no daemon records 2^20 events per millisecond.
	d->boot_l = clk_ts_l(clk_node_now(d->clock));
	clk_node_vc_floor(d->clock, (d->boot_l + 1) << 20);
	if ((rv = proto__trace_new((size_t)d->cfg.trace_events, &d->trace)) !=
	    DTX_OK)
		goto fail;
	*out = d;
	return DTX_OK;
fail:
	proto_daemon_close(d);
	return rv;
}

// Records a send or receive event of m (one that names a transaction or
// saga) in the trace ring and, at debug level, the log.
static void
trace_msg(proto_daemon *d, proto_ev_kind kind, const proto_msg *m, clk_ts hlc,
    const clk_vc *vc)
{
	proto_trace_ev e = { .kind = kind, .type = m->hdr.type, .hlc = hlc };
	const char *gid;
	if ((d->trace == NULL && !dtx_log_enabled(DTX_LOG_DEBUG)) ||
	    !proto_msg_ref(m, &e.txid, &gid))
		return;
	e.gid = (char *)gid;
	e.vc = *vc;
	if (kind == PROTO_EV_RECV) {
		e.peer = m->hdr.from;
		e.peer_c = m->hdr.from < m->hdr.vc.n && m->hdr.from < CLK_VC_MAX
		    ? m->hdr.vc.c[m->hdr.from]
		    : 0;
	}
	proto__trace_add(d->trace, &e);
	if (!dtx_log_enabled(DTX_LOG_DEBUG))
		return;
	char h[32], v[CLK_VC_MAX * 24];
	proto__fmt_hlc(h, sizeof(h), hlc);
	proto__fmt_vc(v, sizeof(v), vc);
	DTX_LOGF(DTX_LOG_DEBUG, kind == PROTO_EV_SEND ? "MSG_SEND" : "MSG_RECV",
	    DTX_FIELDS(DTX_LF_U("txid", e.txid), DTX_LF_GID(gid),
	        DTX_LF_S("ev", proto_ev_name(kind)),
	        DTX_LF_S("type", proto_type_name(m->hdr.type)),
	        DTX_LF_U("peer", e.peer), DTX_LF_U("pc", e.peer_c),
	        DTX_LF_S("hlc", h), DTX_LF_S("vc", v)),
	    NULL);
}

// The hooks' hdr is always the header of a whole message, its first
// member (rpc.h), so the message is reached from it.
static const proto_msg *
msg_of(const proto_hdr *hdr)
{
	return (const proto_msg *)(const void *)hdr;
}

static void
stamp(void *arg, proto_hdr *hdr)
{
	proto_daemon *d = arg;
	if (clk_node_send(d->clock, &hdr->hlc, &hdr->vc) == DTX_OK)
		trace_msg(d, PROTO_EV_SEND, msg_of(hdr), hdr->hlc, &hdr->vc);
}

// Merges an incoming header into our clocks; DTX_ECLOCK (counted, clocks
// untouched) when the sender's clock is too far ahead.
static dtx_err
observe_hdr(proto_daemon *d, const proto_hdr *hdr)
{
	clk_ts now;
	clk_vc vc;
	dtx_err rv = clk_node_recv_vc(d->clock, hdr->hlc, &hdr->vc, &now, &vc);
	if (rv == DTX_OK)
		trace_msg(d, PROTO_EV_RECV, msg_of(hdr), now, &vc);
	if (rv == DTX_ECLOCK) {
		atomic_fetch_add(&d->clock_rejected, 1);
		DTX_LOGF_RL(DTX_LOG_WARN, "CLOCK_REJECT", hdr->from,
		    DTX_FIELDS(DTX_LF_PEER(hdr->from),
		        DTX_LF_S("type", proto_type_name(hdr->type)),
		        DTX_LF_U("peer_ms", clk_ts_l(hdr->hlc)),
		        DTX_LF_I("max_offset_ms", d->cfg.max_offset_ms)),
		    "the sender's clock is too far ahead of ours");
	}
	return rv;
}

// A reply whose sender's clock is too far ahead is dropped (rpc.h): a
// step or vote it carries would otherwise be acted on with our clock left
// behind the sender's, and whatever we send next could be stamped, and
// committed, before what the reply reports (a saga's credit before its
// debit).
static dtx_err
observe_reply(void *arg, const proto_hdr *hdr)
{
	return observe_hdr(arg, hdr);
}

dtx_err
proto_health_counter(proto_health_reply *rep, const char *name, int64_t value)
{
	if (rep->n_counters >= PROTO_MAX_COUNTERS)
		return DTX_EINVAL;
	proto_counter *c =
	    dtx_realloc(rep->counters, (rep->n_counters + 1) * sizeof(*c));
	if (c == NULL)
		return DTX_ENOMEM;
	rep->counters = c;
	c[rep->n_counters].name = NULL;
	c[rep->n_counters].value = value;
	dtx_err rv = proto_str_set(&c[rep->n_counters].name, name);
	if (rv != DTX_OK)
		return rv;
	rep->n_counters++;
	return DTX_OK;
}

dtx_err
proto_health_counters(
    proto_health_reply *rep, const proto_named_value *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dtx_err rv = proto_health_counter(rep, c[i].name, c[i].value);
		if (rv != DTX_OK)
			return rv;
	}
	return DTX_OK;
}

dtx_err
proto_health_counter_array(proto_health_reply *rep, const char *const *names,
    _Atomic uint64_t *ctr, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dtx_err rv = proto_health_counter(
		    rep, names[i], (int64_t)atomic_load(&ctr[i]));
		if (rv != DTX_OK)
			return rv;
	}
	return DTX_OK;
}

dtx_err
proto_fault_wal_sync(
    const proto_fault *f, _Atomic int64_t *left, const char *what)
{
	if (strcmp(f->kind, "wal_sync") != 0)
		return DTX_ENOENT;
	int64_t n = f->n_args > 0 ? f->args[0] : 1;
	if (n < 0 || n > 1000000)
		return DTX_EINVAL;
	atomic_store(left, n);
	DTX_LOG(DTX_LOG_WARN, "FAULT_WAL_SYNC",
	    "the next %lld fsyncs of the %s will fail", (long long)n, what);
	return DTX_OK;
}

bool
proto_fault_sync_due(_Atomic int64_t *left)
{
	int64_t n = atomic_load(left);
	while (n > 0)
		if (atomic_compare_exchange_weak(left, &n, n - 1))
			return true;
	return false;
}

static dtx_err
serve_health(proto_daemon *d, proto_msg *rep)
{
	proto_health_reply *h = &rep->u.health_reply;
	proto_server_stats ss;
	clk_hlc_counters hc;
	int64_t off;
	double rate;
	dtx_err rv;

	rep->hdr.type = PROTO_HEALTH_REPLY;
	h->node = (uint32_t)d->cfg.node_id;
	if ((rv = proto_str_set(&h->role, dtx_role_name(d->role))) != DTX_OK ||
	    (rv = proto_str_set(&h->state, "ok")) != DTX_OK)
		return rv;
	if (d->hooks.health != NULL &&
	    (rv = d->hooks.health(d->hooks.arg, h)) != DTX_OK)
		return rv;
	proto_server *srv = atomic_load(&d->server);
	memset(&ss, 0, sizeof(ss));
	if (srv != NULL)
		proto_server_stats_get(srv, &ss);
	clk_hlc_stats(clk_node_hlc(d->clock), &hc);
	clk_source_get(d->src, &off, &rate);
	proto_named_value ctr[] = {
		{ "uptime_ms",
		    (int64_t)((dtx_mono_ns() - d->started_ns) / 1000000) },
		{ "requests", (int64_t)ss.requests },
		{ "decode_errors", (int64_t)ss.decode_errors },
		{ "handler_errors", (int64_t)ss.handler_errors },
		{ "clock_rejected", (int64_t)atomic_load(&d->clock_rejected) },
		{ "clock_offset_ms", off },
		{ "clock_rate_permille", (int64_t)(rate * 1000.0 + 0.5) },
		{ "hlc_max_drift_ms", (int64_t)hc.max_drift_ms },
		{ "faults", (int64_t)atomic_load(&d->faults) },
		{ "calls_cut", (int64_t)atomic_load(&d->calls_cut) },
		{ "insecure", d->tls == NULL },
		{ "faults_enabled", d->cfg.enable_faults },
		{ "conns", (int64_t)ss.conns },
		{ "max_conns", (int64_t)d->max_conns },
		{ "conns_refused", (int64_t)ss.conns_refused },
		{ "hellos", (int64_t)ss.hellos },
		{ "refused_hello", (int64_t)ss.hello_failed },
		{ "refused_unauthenticated", (int64_t)ss.unauthenticated },
		{ "refused_from", (int64_t)ss.from_mismatch },
	};
	rv = proto_health_counters(h, ctr, sizeof(ctr) / sizeof(ctr[0]));
	for (int r = PROTO_REFUSED_NONE + 1;
	     r < PROTO_REFUSED_COUNT && rv == DTX_OK; r++)
		rv = proto_health_counter(h,
		    proto_refusal_name((proto_refusal)r),
		    (int64_t)atomic_load(&d->refused[r]));
	return rv;
}

static dtx_err
serve_fault(proto_daemon *d, const proto_fault *f, proto_msg *rep)
{
	dtx_err rv = DTX_OK;

	atomic_fetch_add(&d->faults, 1);
	if (strcmp(f->kind, "clock") == 0) {
		int64_t off = f->n_args > 0 ? f->args[0] : 0;
		int64_t permille = f->n_args > 1 ? f->args[1] : 1000;
		uint64_t max = CLK_FAULT_MAX_MS(d->cfg.max_offset_ms);
		if (off > (int64_t)max || off < -(int64_t)max)
			return proto_msg_set_error(rep, DTX_EINVAL,
			    "a clock fault moves the clock at most 2 x "
			    "max_offset + 1 = %llu ms (asked %lld ms): after "
			    "the reset a larger one would leave this node's "
			    "HLC ahead of its clock for that long",
			    (unsigned long long)max, (long long)off);
		if (off == 0 && permille == 1000)
			clk_source_restore(d->src);
		else
			rv = clk_source_set(
			    d->src, off, (double)permille / 1000.0);
		if (rv == DTX_OK)
			DTX_LOG(DTX_LOG_WARN, "FAULT_CLOCK",
			    "clock offset %lld ms, rate %lld/1000",
			    (long long)off, (long long)permille);
	} else if (strcmp(f->kind, "partition") == 0) {
		bool cut[DTX_TOPO_MAX] = { false };
		for (uint32_t i = 0; i < f->n_args; i++) {
			if (f->args[i] < 0 || f->args[i] >= DTX_TOPO_MAX)
				return DTX_EINVAL;
			cut[f->args[i]] = true;
		}
		pthread_mutex_lock(&d->mtx);
		memcpy(d->cut, cut, sizeof(cut));
		pthread_mutex_unlock(&d->mtx);
		DTX_LOG(DTX_LOG_WARN, "FAULT_PARTITION",
		    "%s (%u nodes cut off)",
		    f->n_args ? "partitioned" : "healed", f->n_args);
	} else if (strcmp(f->kind, "delay") == 0) {
		if (f->n_args != 2 || f->args[0] < 0 ||
		    f->args[0] >= DTX_TOPO_MAX || f->args[1] < 0 ||
		    f->args[1] > 600000)
			return DTX_EINVAL;
		pthread_mutex_lock(&d->mtx);
		d->delay_ms[f->args[0]] = (uint32_t)f->args[1];
		pthread_mutex_unlock(&d->mtx);
		DTX_LOG(DTX_LOG_WARN, "FAULT_DELAY",
		    "calls to node %lld delayed by %lld ms",
		    (long long)f->args[0], (long long)f->args[1]);
	} else if (strcmp(f->kind, "crash_at") == 0) {
		if (f->arg == NULL)
			return DTX_EINVAL;
		dtx_crashpoint_arm(f->arg, f->n_args > 0 ? f->args[0] : 1);
		atomic_store(&d->crash_armed, true);
		DTX_LOG(DTX_LOG_WARN, "FAULT_CRASH_AT", "armed crash point %s",
		    f->arg);
	} else if (d->hooks.fault != NULL) {
		rv = d->hooks.fault(d->hooks.arg, f);
	} else {
		rv = DTX_ENOENT;
	}
	if (rv != DTX_OK)
		return rv;
	rep->hdr.type = PROTO_ACK;
	return DTX_OK;
}

// The roles (bits) of a request's sender, or PROTO_REFUSED_IDENTITY when
// its certificate names a role the topology does not give its node id.
static proto_refusal
sender_roles(proto_daemon *d, const proto_peer *p, uint32_t *roles)
{
	const dtx_node *nd = dtx_topo_find(&d->topo, p->node);
	uint32_t ext = proto_authz_external();
	if (!p->authenticated) {
		// --insecure: the topology's word for the claimed id; an id
		// outside it is not constrained (anyone may claim any id
		// over plaintext anyway).
		*roles = nd == NULL               ? proto_authz_any()
		    : nd->role == DTX_ROLE_CLIENT ? ext
		                                  : 1u << topo_role(nd->role);
		return PROTO_REFUSED_NONE;
	}
	uint32_t mine = 1u << p->role;
	bool fits = nd == NULL || nd->role == DTX_ROLE_CLIENT
	    ? (mine & ext) != 0
	    : p->role == topo_role(nd->role);
	*roles = fits ? mine : 0;
	return fits ? PROTO_REFUSED_NONE : PROTO_REFUSED_IDENTITY;
}

// The authorisation table for req (each element of a BATCH too); a
// refusal is counted, logged (rate-limited) and returned as an ERROR.
static dtx_err
authorise(proto_daemon *d, const proto_msg *req, proto_msg *rep,
    const proto_peer *peer)
{
	proto_peer none = { .node = req->hdr.from };
	if (peer == NULL)
		peer = &none;
	uint32_t roles = 0;
	proto_refusal why = sender_roles(d, peer, &roles);
	proto_type bad = req->hdr.type;
	if (why == PROTO_REFUSED_NONE)
		why = proto_authz_check(bad, roles, d->cfg.enable_faults);
	if (why == PROTO_REFUSED_NONE && req->hdr.type == PROTO_BATCH)
		for (uint32_t i = 0; i < req->u.batch.n; i++) {
			bad = req->u.batch.msgs[i].hdr.type;
			why =
			    proto_authz_check(bad, roles, d->cfg.enable_faults);
			if (why != PROTO_REFUSED_NONE || bad == PROTO_BATCH)
				break;
		}
	if (why == PROTO_REFUSED_NONE)
		return DTX_OK;
	atomic_fetch_add(&d->refused[why], 1);
	const char *what = proto_refusal_name(why);
	const char *role =
	    peer->authenticated ? proto_role_name(peer->role) : "plaintext";
	DTX_LOGF_RL(DTX_LOG_WARN, "REFUSED", dtx_log_rl_key(peer->node, what),
	    DTX_FIELDS(DTX_LF_PEER(peer->node),
	        DTX_LF_S("type", proto_type_name(bad)), DTX_LF_S("role", role),
	        DTX_LF_S("why", what)),
	    "%s from node %u refused", proto_type_name(bad), peer->node);
	return proto_msg_set_error(rep, DTX_EPERM, "%s from %s %u: %s",
	    proto_type_name(bad), role, peer->node, what);
}

// The server's handler: who may send this, clocks, then the runtime's
// own messages, then the daemon's handler.
static dtx_err
handle(void *arg, const proto_msg *req, proto_msg *rep, proto_call *call)
{
	proto_daemon *d = arg;
	dtx_err rv;

	if ((rv = authorise(d, req, rep, proto_call_peer(call))) != DTX_OK ||
	    rep->hdr.type == PROTO_ERROR)
		return rv;

	if (req->hdr.type == PROTO_BATCH) {
		for (uint32_t i = 0; i < req->u.batch.n; i++)
			if ((rv = observe_hdr(d, &req->u.batch.msgs[i].hdr)) !=
			    DTX_OK)
				return rv;
	}
	if ((rv = observe_hdr(d, &req->hdr)) != DTX_OK)
		return rv;
	switch (req->hdr.type) {
	case PROTO_PING:
		rep->hdr.type = PROTO_PONG;
		return DTX_OK;
	case PROTO_HEALTH:
		return serve_health(d, rep);
	case PROTO_FAULT:
		return serve_fault(d, &req->u.fault, rep);
	case PROTO_TRACE:
		rep->hdr.type = PROTO_TRACE_REPLY;
		rep->u.trace_reply.node = proto_daemon_id(d);
		rep->u.trace_reply.boot = d->boot_l;
		return proto__trace_collect(d->trace, req->u.trace.txid,
		    req->u.trace.gid, &rep->u.trace_reply);
	default:
		return d->hooks.handler(d->hooks.arg, req, rep, call);
	}
}

static void
batch_hook(void *arg, bool begin)
{
	proto_daemon *d = arg;
	d->hooks.batch(d->hooks.arg, begin);
}

static void
replied(void *arg, const proto_msg *req, const proto_msg *rep, uint64_t ns)
{
	proto_daemon *d = arg;
	proto__metrics_account(&d->metrics, req, rep, ns);
}

// HEALTH as the daemon would answer it, into *m (free with
// proto_msg_free, also on error).
static dtx_err
health_now(proto_daemon *d, proto_msg *m)
{
	proto_msg_init(m, PROTO_NONE);
	return serve_health(d, m);
}

// Whether the daemon is ready (see proto_daemon_wait); why says what it
// is waiting for when not.
static bool
daemon_ready(proto_daemon *d, char *why, size_t len)
{
	proto_msg m;
	if (!atomic_load(&d->waiting)) {
		snprintf(why, len, "starting");
		return false;
	}
	if (atomic_load(&d->stopping)) {
		snprintf(why, len, "stopping");
		return false;
	}
	dtx_err rv = health_now(d, &m);
	const proto_health_reply *h = &m.u.health_reply;
	bool ok = false;
	if (rv != DTX_OK)
		snprintf(why, len, "health: %s", dtx_strerror(rv));
	else if (h->state == NULL || strcmp(h->state, "ok") != 0)
		snprintf(why, len, "%s%s (in doubt %llu, blocked %u)",
		    h->state ? h->state : "unknown",
		    h->state && strcmp(h->state, "blocked") == 0
		        ? ": in-doubt transactions nobody reachable can resolve"
		        : "",
		    (unsigned long long)h->in_doubt, h->n_blocked);
	else
		ok = true;
	if (ok)
		snprintf(why, len, "ready");
	proto_msg_free(&m);
	return ok;
}

static bool
http_ready(void *arg, char *why, size_t len)
{
	return daemon_ready(arg, why, len);
}

static dtx_err
http_metrics(void *arg, proto__buf *out)
{
	proto_daemon *d = arg;
	proto_msg m;
	char why[256];
	proto__gauges g;
	g.ready = daemon_ready(d, why, sizeof(why));
	uint64_t l = clk_ts_l(clk_node_now(d->clock));
	uint64_t pt = clk_source_now_ms(d->src);
	g.hlc_offset_s = ((double)l - (double)pt) / 1000.0;
	dtx_err rv = health_now(d, &m);
	if (rv == DTX_OK)
		proto__metrics_render(&d->metrics, &m.u.health_reply, &g, out);
	proto_msg_free(&m);
	return rv;
}

// Starts --http once the daemon's hooks are in place.
static dtx_err
open_http(proto_daemon *d)
{
	char file[4096 + 16], err[512];
	snprintf(file, sizeof(file), "%s/http.addr", d->cfg.data);
	proto__http_cfg hc = {
		.addr = d->cfg.http,
		.addr_file = file,
		.metrics = http_metrics,
		.ready = http_ready,
		.arg = d,
	};
	dtx_err rv = proto__http_open(&hc, &d->http, err, sizeof(err));
	if (rv != DTX_OK) {
		DTX_LOG(DTX_LOG_ERROR, "HTTP", "%s", err);
		return rv;
	}
	DTX_LOG(DTX_LOG_INFO, "HTTP", "metrics and health on http://%s",
	    proto__http_addr(d->http));
	return DTX_OK;
}

// File descriptors the connection cap leaves free: the WAL's (a segment,
// its directory, a manifest or checkpoint being written), the clock
// bound's (its temp file and directory), the log, the metrics listener,
// nng's own, and a dialed connection to every possible peer.
#define FD_RESERVE (64 + DTX_TOPO_MAX)

// The connection cap: --max-conns, lowered (and said so, once) when the
// file descriptor limit, raised to its hard limit first, cannot hold that
// many connections and still keep FD_RESERVE free. So a flood of
// connections is refused before it can starve the WAL or the clock bound.
static uint32_t
conn_cap(const proto_daemon *d)
{
	uint32_t want = (uint32_t)d->cfg.max_conns;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return want;
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit up = { rl.rlim_max, rl.rlim_max };
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl.rlim_cur = rl.rlim_max;
	}
	if (rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= (rlim_t)want + FD_RESERVE)
		return want;
	uint32_t cap = rl.rlim_cur > FD_RESERVE + 1
	    ? (uint32_t)(rl.rlim_cur - FD_RESERVE)
	    : 1;
	DTX_LOG(DTX_LOG_WARN, "MAXCONNS",
	    "--max-conns %u lowered to %u: the file descriptor limit is %llu "
	    "and %d are kept for the WAL, the clock bound, peers and the log",
	    want, cap, (unsigned long long)rl.rlim_cur, FD_RESERVE);
	return cap;
}

dtx_err
proto_daemon_serve(proto_daemon *d, const proto_daemon_hooks *hooks)
{
	if (hooks == NULL || hooks->handler == NULL)
		return DTX_EINVAL;
	d->hooks = *hooks;
	d->max_conns = conn_cap(d);
	proto_server_cfg sc = {
		.url = d->cfg.listen,
		.workers = (uint32_t)d->cfg.workers,
		.vc_nodes = d->topo.max_id,
		.node_id = (uint32_t)d->cfg.node_id,
		.whole_batches = hooks->whole_batches,
		.handler = handle,
		.stamp = stamp,
		.arg = d,
		.tls = d->tls,
		.max_conns = d->max_conns,
		.replied = replied,
		.batch = hooks->batch != NULL ? batch_hook : NULL,
	};
	if (d->tls == NULL)
		DTX_LOG(DTX_LOG_WARN, "INSECURE",
		    "--insecure: plaintext links, no authentication; anyone "
		    "who can reach %s may act as any node",
		    d->cfg.listen);
	proto_server *srv = NULL;
	dtx_err rv = proto_server_open(&sc, &srv);
	if (rv != DTX_OK) {
		DTX_LOG(DTX_LOG_ERROR, "LISTEN", "cannot listen on %s: %s",
		    d->cfg.listen, dtx_strerror(rv));
		return rv;
	}
	atomic_store(&d->server, srv);
	DTX_LOG(DTX_LOG_INFO, "LISTEN", "%s %lld serving on %s",
	    dtx_role_name(d->role), (long long)d->cfg.node_id,
	    proto_server_url(srv));
	return d->cfg.http != NULL ? open_http(d) : DTX_OK;
}

void
proto_daemon_wait(proto_daemon *d)
{
	struct timespec tick = { .tv_sec = 0, .tv_nsec = 100 * 1000000L };
	bool notified = false;
	char why[256], told[256] = "";
	atomic_store(&d->waiting, true);
	while (!atomic_load(&d->stopping)) {
		// Until the first time the daemon is ready: tell systemd
		// why not, then READY=1 (the same test as /readyz).
		if (!notified && daemon_ready(d, why, sizeof(why))) {
			sd_notify(0, "READY=1\nSTATUS=ready");
			DTX_LOG(DTX_LOG_INFO, "READY", "ready");
			notified = true;
		} else if (!notified && strcmp(why, told) != 0) {
			sd_notifyf(0, "STATUS=%s", why);
			snprintf(told, sizeof(told), "%s", why);
		}
		int sig = sigtimedwait(&d->sigs, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT) {
			DTX_LOG(
			    DTX_LOG_INFO, "STOP", "signal %d: stopping", sig);
			break;
		}
	}
	atomic_store(&d->stopping, true);
	sd_notify(0, "STOPPING=1");
	// No scrape reads the daemon's state while it tears it down.
	proto__http_close(d->http);
	d->http = NULL;
}

void
proto_daemon_trace(proto_daemon *d, proto_ev_kind kind, uint64_t txid,
    const char *gid, const char *what, clk_ts ts)
{
	proto_daemon_trace_saga(d, kind, txid, gid, NULL, what, ts);
}

void
proto_daemon_trace_saga(proto_daemon *d, proto_ev_kind kind, uint64_t txid,
    const char *gid, const char *alias, const char *what, clk_ts ts)
{
	proto_trace_ev e = { .kind = kind,
		.txid = txid,
		.gid = (char *)gid,
		.what = (char *)what,
		.alias = (char *)alias };
	if (d == NULL || (d->trace == NULL && !dtx_log_enabled(DTX_LOG_DEBUG)))
		return;
	if (clk_node_send(d->clock, &e.hlc, &e.vc) != DTX_OK)
		return;
	proto__trace_add(d->trace, &e);
	if (!dtx_log_enabled(DTX_LOG_DEBUG))
		return;
	char h[32], t[32] = "", v[CLK_VC_MAX * 24];
	proto__fmt_hlc(h, sizeof(h), e.hlc);
	if (ts != 0)
		proto__fmt_hlc(t, sizeof(t), ts);
	proto__fmt_vc(v, sizeof(v), &e.vc);
	DTX_LOGF(DTX_LOG_DEBUG, what,
	    DTX_FIELDS(DTX_LF_U("txid", txid), DTX_LF_GID(gid),
	        DTX_LF_S("alias", alias), DTX_LF_S("ev", proto_ev_name(kind)),
	        DTX_LF_S("ts", ts != 0 ? t : NULL), DTX_LF_S("hlc", h),
	        DTX_LF_S("vc", v)),
	    NULL);
}

void
proto_daemon_observe_fsync(proto_daemon *d, uint64_t ns)
{
	atomic_store(&d->metrics.fsync_timed, true);
	proto__hist_observe(&d->metrics.fsync, ns);
}

void
proto_daemon_stop(proto_daemon *d)
{
	atomic_store(&d->stopping, true);
}

bool
proto_daemon_stopping(proto_daemon *d)
{
	return atomic_load(&d->stopping);
}

bool
proto_daemon_crash_armed(proto_daemon *d)
{
	return atomic_load(&d->crash_armed);
}

void
proto_daemon_close(proto_daemon *d)
{
	if (d == NULL)
		return;
	atomic_store(&d->stopping, true);
	proto__http_close(d->http);
	proto_server_close(atomic_load(&d->server));
	for (int i = 0; i < DTX_TOPO_MAX; i++)
		proto_client_close(d->clients[i]);
	clk_node_close(d->clock);
	clk_source_free(d->src);
	proto__trace_free(d->trace);
	proto_tls_close(d->tls);
	if (d->nextra > 0 && d->extra_cfg != NULL)
		dtx_cfg_fini(d->extra, d->nextra, d->extra_cfg);
	dtx_cfg_fini(common_opts, NCOMMON, &d->cfg);
	pthread_mutex_destroy(&d->mtx);
	dtx_free(d);
}

const proto_daemon_cfg *
proto_daemon_config(const proto_daemon *d)
{
	return &d->cfg;
}

const dtx_topo *
proto_daemon_topo(const proto_daemon *d)
{
	return &d->topo;
}

clk_node *
proto_daemon_clock(proto_daemon *d)
{
	return d->clock;
}

uint32_t
proto_daemon_id(const proto_daemon *d)
{
	return (uint32_t)d->cfg.node_id;
}

static bool
stopping(void *d)
{
	return proto_daemon_stopping(d);
}

// Sleeps ms, waking early when the daemon stops.
static void
nap(proto_daemon *d, uint64_t ms)
{
	dtx_nap_ms(ms, stopping, d);
}

// Where a call to a peer goes: its shared client and the faults that
// apply to the call now.
typedef struct peer_route {
	proto_client *c;
	bool cut; // a partition drops the call
	uint32_t delay; // ms to hold the call back first
} peer_route;

// The route to peer, its client created on first use.
static dtx_err
peer_client(proto_daemon *d, uint32_t peer, peer_route *out)
{
	const dtx_node *nd =
	    peer < DTX_TOPO_MAX ? dtx_topo_find(&d->topo, peer) : NULL;
	proto_client *c;
	dtx_err rv = DTX_OK;

	if (nd == NULL || nd->role == DTX_ROLE_CLIENT)
		return DTX_EINVAL;
	pthread_mutex_lock(&d->mtx);
	bool cut = d->cut[peer];
	uint32_t delay = d->delay_ms[peer];
	c = d->clients[peer];
	if (c == NULL) {
		proto_client_cfg cc = {
			.url = nd->url,
			.vc_nodes = d->topo.max_id,
			.node_id = (uint32_t)d->cfg.node_id,
			.timeout_ms = (uint32_t)d->cfg.timeout_ms,
			.stamp = stamp,
			.observe = observe_reply,
			.arg = d,
			.tls = d->tls,
			.check_server = true,
			.server_node = peer,
		};
		rv = proto_client_open(&cc, &d->clients[peer]);
		c = d->clients[peer];
	}
	pthread_mutex_unlock(&d->mtx);
	if (rv == DTX_OK)
		*out = (peer_route) { .c = c, .cut = cut, .delay = delay };
	return rv;
}

// Whether a partition cuts peer off now.
static bool
peer_cut(proto_daemon *d, uint32_t peer)
{
	pthread_mutex_lock(&d->mtx);
	bool cut = d->cut[peer];
	pthread_mutex_unlock(&d->mtx);
	return cut;
}

static uint32_t
call_timeout_ms(proto_daemon *d, const proto_call_opts *opts)
{
	return opts && opts->timeout_ms ? opts->timeout_ms
	                                : (uint32_t)d->cfg.timeout_ms;
}

dtx_err
proto_daemon_call(proto_daemon *d, uint32_t peer, proto_msg *req,
    proto_msg *rep, const proto_call_opts *opts)
{
	peer_route rt;
	dtx_err rv = peer_client(d, peer, &rt);
	if (rv != DTX_OK)
		return rv;
	if (rt.delay > 0) {
		nap(d, rt.delay);
		// A partition that began during the delay drops the call too.
		rt.cut = peer_cut(d, peer);
	}
	if (rt.cut) {
		// A partition drops the request: the caller learns nothing
		// until its timeout, exactly as with lost packets.
		atomic_fetch_add(&d->calls_cut, 1);
		nap(d, call_timeout_ms(d, opts));
		return DTX_ETIMEDOUT;
	}
	return proto_client_call(rt.c, req, rep, opts);
}

// An asynchronous call held back by a fault: a delay first, then either
// the call or (when cut off) the caller's timeout, then ETIMEDOUT.
typedef enum dcall_state { DC_DELAY, DC_CUT } dcall_state;

// The call owns a deep copy of the request and of the retry policy: the
// caller's (a batcher's BATCH on its stack, a retry policy on the
// caller's stack) may be gone by the time the delay ends.
typedef struct dcall {
	proto_daemon *d;
	proto_client *c;
	uint32_t peer;
	dcall_state state;
	proto_msg req; // owned; empty when the call is cut off at once
	proto_call_opts opts;
	proto_retry retry; // opts.retry points here when the caller gave one
	bool have_opts;
	proto_done_fn done;
	void *arg;
	nng_aio *aio;
} dcall;

// *out returns an owned deep copy of req (through the codec, so that
// every body kind is covered), for proto_msg_free.
static dtx_err
msg_copy(const proto_msg *req, proto_msg *out)
{
	proto_msg top = *req; // shallow: only the header is changed
	top.hdr.version = PROTO_VERSION;
	uint8_t *buf;
	size_t len;
	dtx_err rv = proto_encode_buf(&top, &buf, &len);
	if (rv != DTX_OK)
		return rv;
	proto_limits lim = { .max_msg = len };
	rv = proto_decode(buf, len, &lim, out, NULL, 0);
	dtx_free(buf);
	return rv == DTX_EPROTO ? DTX_EINVAL : rv;
}

// Ends a held-back call: frees it (its aio once the callback returns),
// then reports err unless the call was handed on.
static void
dcall_end(dcall *dc, bool report, dtx_err err)
{
	proto_done_fn done = dc->done;
	void *arg = dc->arg;
	nng_aio_reap(dc->aio);
	proto_msg_free(&dc->req);
	dtx_free(dc);
	if (report)
		done(arg, err, NULL);
}

static void
dcall_cut(dcall *dc)
{
	// A partition drops the request: the caller learns nothing until
	// its timeout, exactly as with lost packets.
	atomic_fetch_add(&dc->d->calls_cut, 1);
	dc->state = DC_CUT;
	nng_sleep_aio((nng_duration)call_timeout_ms(
	                  dc->d, dc->have_opts ? &dc->opts : NULL),
	    dc->aio);
}

static void
dcall_cb(void *arg)
{
	dcall *dc = arg;
	if (dc->state == DC_CUT) {
		dcall_end(dc, true, DTX_ETIMEDOUT);
		return;
	}
	// A partition that began during the delay drops the call too.
	if (peer_cut(dc->d, dc->peer)) {
		dcall_cut(dc);
		return;
	}
	// The client encodes the copy before this returns.
	dtx_err rv = proto_client_call_async(dc->c, &dc->req,
	    dc->have_opts ? &dc->opts : NULL, dc->done, dc->arg);
	dcall_end(dc, rv != DTX_OK, rv);
}

dtx_err
proto_daemon_call_async(proto_daemon *d, uint32_t peer, proto_msg *req,
    const proto_call_opts *opts, proto_done_fn done, void *arg)
{
	if (req == NULL || done == NULL)
		return DTX_EINVAL;
	peer_route rt;
	dtx_err rv = peer_client(d, peer, &rt);
	if (rv != DTX_OK)
		return rv;
	if (!rt.cut && rt.delay == 0)
		return proto_client_call_async(rt.c, req, opts, done, arg);
	dcall *dc = dtx_calloc(1, sizeof(*dc));
	if (dc == NULL)
		return DTX_ENOMEM;
	*dc = (dcall) { .d = d,
		.c = rt.c,
		.peer = peer,
		.have_opts = opts != NULL,
		.done = done,
		.arg = arg };
	if (opts != NULL) {
		dc->opts = *opts;
		dc->opts.why = NULL; // not used by asynchronous calls
		dc->opts.why_len = 0;
		if (opts->retry != NULL) {
			dc->retry = *opts->retry;
			dc->opts.retry = &dc->retry;
		}
	}
	if (!rt.cut && (rv = msg_copy(req, &dc->req)) != DTX_OK) {
		dtx_free(dc);
		return rv;
	}
	int r = nng_aio_alloc(&dc->aio, dcall_cb, dc);
	if (r != 0) {
		proto_msg_free(&dc->req);
		dtx_free(dc);
		return proto_from_nng(r);
	}
	if (rt.cut) {
		dcall_cut(dc);
	} else {
		dc->state = DC_DELAY;
		nng_sleep_aio((nng_duration)rt.delay, dc->aio);
	}
	return DTX_OK;
}
