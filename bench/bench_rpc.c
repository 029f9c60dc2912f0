// SPDX-License-Identifier: MIT
//
// dtx bench rpc: the ceiling of the RPC layer. An echo server on the proto
// helpers answers PING with PONG over real sockets; C caller threads send
// PINGs back to back for S seconds; every round trip encodes and decodes a
// full message on both sides. Prints round trips per second and latency.

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "proto.h"

// Latency samples kept per caller; beyond this a reservoir keeps a uniform
// sample so that long runs use bounded memory.
#define MAX_SAMPLES (1u << 20)

typedef struct rpc_cfg {
	int64_t clients;
	int64_t seconds;
	int64_t conns;
	int64_t workers;
	char *transport;
	bool json;
} rpc_cfg;

static const dtx_cfg_opt rpc_opts[] = {
	{ "clients", DTX_CFG_INT, offsetof(rpc_cfg, clients), 1, 1024, "8",
	    "concurrent callers (threads)" },
	{ "seconds", DTX_CFG_INT, offsetof(rpc_cfg, seconds), 1, 3600, "5",
	    "how long to measure" },
	{ "conns", DTX_CFG_INT, offsetof(rpc_cfg, conns), 0, 1024, "0",
	    "connections the callers share (0: one per caller)" },
	{ "workers", DTX_CFG_INT, offsetof(rpc_cfg, workers), 0, 1024, "0",
	    "server worker contexts (0: one per caller)" },
	{ "transport", DTX_CFG_STR, offsetof(rpc_cfg, transport), 0, 0, "tcp",
	    "tcp or ipc" },
	{ "json", DTX_CFG_BOOL, offsetof(rpc_cfg, json), 0, 0, "false",
	    "print one JSON object" },
};
#define NRPC_OPTS (sizeof(rpc_opts) / sizeof(rpc_opts[0]))

typedef struct rpc_caller {
	proto_client *client;
	pthread_t th;
	uint64_t seed;
	uint64_t calls, errors, seen;
	uint64_t *lat_ns;
	size_t n_lat, cap_lat;
	bool lat_oom;
	dtx_err first_err;
} rpc_caller;

typedef struct rpc_run {
	atomic_int ready;
	atomic_bool go;
	_Atomic uint64_t deadline_ns;
	int n;
} rpc_run;

typedef struct rpc_arg {
	rpc_run *run;
	rpc_caller *caller;
} rpc_arg;

static dtx_err
pong(void *arg, const proto_msg *req, proto_msg *rep, proto_call *call)
{
	(void)arg;
	(void)call;
	if (req->hdr.type != PROTO_PING)
		return DTX_EINVAL;
	rep->hdr.type = PROTO_PONG;
	return DTX_OK;
}

static void
record(rpc_caller *k, uint64_t ns)
{
	k->seen++;
	if (k->cap_lat < MAX_SAMPLES &&
	    DTX_GROW(k->lat_ns, k->n_lat, k->cap_lat, 4096) != DTX_OK) {
		k->lat_oom = true;
		return;
	}
	if (k->n_lat < k->cap_lat) {
		k->lat_ns[k->n_lat++] = ns;
		return;
	}
	uint64_t j = dtx_rand_below(&k->seed, k->seen);
	if (j < k->n_lat)
		k->lat_ns[j] = ns;
}

static void *
caller_main(void *arg)
{
	rpc_arg *a = arg;
	rpc_caller *k = a->caller;
	rpc_run *run = a->run;
	atomic_fetch_add(&run->ready, 1);
	while (!atomic_load(&run->go))
		sched_yield();
	proto_call_opts opts = { .timeout_ms = 5000 };
	while (dtx_mono_ns() < atomic_load(&run->deadline_ns)) {
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_PING);
		uint64_t t0 = dtx_mono_ns();
		dtx_err err = proto_client_call(k->client, &req, &rep, &opts);
		uint64_t t1 = dtx_mono_ns();
		if (err == DTX_OK && rep.hdr.type == PROTO_PONG) {
			k->calls++;
			record(k, t1 - t0);
		} else {
			k->errors++;
			if (k->first_err == DTX_OK)
				k->first_err = err == DTX_OK ? DTX_EPROTO : err;
		}
		if (err == DTX_OK || err == DTX_EREFUSED)
			proto_msg_free(&rep);
	}
	return NULL;
}

static void
report(const rpc_cfg *cfg, const bench_rpc_result *r)
{
	if (cfg->json) {
		hx_json j;
		hx_json_begin(&j, stdout);
		hx_json_str(&j, "bench", "rpc");
		hx_json_str(&j, "transport", cfg->transport);
		hx_json_int(&j, "clients", cfg->clients);
		hx_json_int(&j, "conns", r->conns);
		hx_json_int(&j, "workers", r->workers);
		hx_json_num(&j, "seconds", r->secs);
		hx_json_int(&j, "calls", (int64_t)r->calls);
		hx_json_int(&j, "errors", (int64_t)r->errors);
		hx_json_num(&j, "rpc_per_s", r->rpc_per_s);
		hx_json_num(&j, "p50_us", r->p50_us);
		hx_json_num(&j, "p90_us", r->p90_us);
		hx_json_num(&j, "p99_us", r->p99_us);
		hx_json_num(&j, "max_us", r->max_us);
		hx_json_end(&j);
		return;
	}
	printf("rpc over %s: %" PRId64 " clients on %d connection(s), %d "
	       "server workers, %.2f s\n",
	    cfg->transport, cfg->clients, r->conns, r->workers, r->secs);
	printf("  %" PRIu64 " round trips, %" PRIu64 " errors, %.0f rpc/s\n",
	    r->calls, r->errors, r->rpc_per_s);
	printf("  latency us: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n",
	    r->p50_us, r->p90_us, r->p99_us, r->max_us);
}

// Dials conns connections to srv and warms each up with one PING, so that
// dialing is not measured. Says what failed on stderr.
static dtx_err
dial(proto_server *srv, proto_client **clients, int conns)
{
	dtx_err err;
	for (int i = 0; i < conns; i++) {
		proto_client_cfg ccfg = { .url = proto_server_url(srv),
			.node_id = 1,
			.timeout_ms = 5000,
			.connect_wait_ms = 2000 };
		err = proto_client_open(&ccfg, &clients[i]);
		if (err != DTX_OK) {
			fprintf(stderr, "rpc ceiling: cannot dial %s: %s\n",
			    proto_server_url(srv), dtx_strerror(err));
			return err;
		}
	}
	for (int i = 0; i < conns; i++) {
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_PING);
		err = proto_client_call(clients[i], &req, &rep, NULL);
		if (err != DTX_OK) {
			fprintf(stderr,
			    "rpc ceiling: warm-up call failed: %s\n",
			    dtx_strerror(err));
			if (err == DTX_EREFUSED)
				proto_msg_free(&rep);
			return err;
		}
		proto_msg_free(&rep);
	}
	return DTX_OK;
}

// Starts n caller threads, lets them call for seconds and joins them;
// *secs gets how long they ran. On a thread that cannot start (out of
// resources), returns DTX_ENOMEM with *started the threads to stop and
// join.
static dtx_err
call_for(rpc_run *run, rpc_caller *callers, rpc_arg *args, int n,
    int64_t seconds, int *started, double *secs)
{
	run->deadline_ns = UINT64_MAX;
	for (; *started < n; (*started)++) {
		if (pthread_create(&callers[*started].th, NULL, caller_main,
		        &args[*started]) != 0) {
			fprintf(stderr, "rpc ceiling: cannot start thread %d\n",
			    *started);
			run->deadline_ns = 0;
			atomic_store(&run->go, true);
			return DTX_ENOMEM;
		}
	}
	while (atomic_load(&run->ready) < n)
		sched_yield();
	uint64_t t0 = dtx_mono_ns();
	run->deadline_ns = t0 + (uint64_t)seconds * 1000000000ull;
	atomic_store(&run->go, true);
	for (int i = 0; i < *started; i++)
		pthread_join(callers[i].th, NULL);
	*started = 0;
	*secs = (double)(dtx_mono_ns() - t0) / 1e9;
	return DTX_OK;
}

// Sums the callers' counts and latencies into *res. DTX_ENOMEM.
static dtx_err
summarize(const rpc_caller *callers, int n, int conns, int workers, double secs,
    bench_rpc_result *res)
{
	uint64_t calls = 0, errors = 0;
	size_t total = 0;
	dtx_err first = DTX_OK;
	for (int i = 0; i < n; i++) {
		if (callers[i].lat_oom)
			return DTX_ENOMEM;
		calls += callers[i].calls;
		errors += callers[i].errors;
		total += callers[i].n_lat;
		if (first == DTX_OK)
			first = callers[i].first_err;
	}
	uint64_t *all = malloc((total ? total : 1) * sizeof(uint64_t));
	if (all == NULL)
		return DTX_ENOMEM;
	size_t at = 0;
	for (int i = 0; i < n; i++) {
		memcpy(all + at, callers[i].lat_ns,
		    callers[i].n_lat * sizeof(uint64_t));
		at += callers[i].n_lat;
	}
	dtx_sort_u64(all, total);
	*res = (bench_rpc_result) { .conns = conns,
		.workers = workers,
		.secs = secs,
		.calls = calls,
		.errors = errors,
		.first_err = first,
		.rpc_per_s = secs > 0 ? (double)calls / secs : 0,
		.p50_us = (double)hx_quantile(all, total, 0.50) / 1000.0,
		.p90_us = (double)hx_quantile(all, total, 0.90) / 1000.0,
		.p99_us = (double)hx_quantile(all, total, 0.99) / 1000.0,
		.max_us = total ? (double)all[total - 1] / 1000.0 : 0 };
	free(all);
	return DTX_OK;
}

dtx_err
bench_rpc_measure(int n, int conns, int workers, int64_t seconds, bool tcp,
    bench_rpc_result *res)
{
	if (conns == 0 || conns > n)
		conns = n;
	if (workers == 0)
		workers = n;
	char url[128];
	if (tcp)
		snprintf(url, sizeof(url), "tcp://127.0.0.1:0");
	else
		snprintf(url, sizeof(url), "ipc:///tmp/dtx-bench-rpc-%d.sock",
		    (int)getpid());
	dtx_err ret = DTX_ENOMEM;
	proto_server *srv = NULL;
	proto_client **clients = NULL;
	rpc_caller *callers = NULL;
	rpc_arg *args = NULL;
	int started = 0;
	rpc_run run = { .n = n };
	double secs = 0;

	proto_server_cfg scfg = { .url = url,
		.workers = (uint32_t)workers,
		.node_id = 0,
		.handler = pong };
	dtx_err err = proto_server_open(&scfg, &srv);
	if (err != DTX_OK) {
		fprintf(stderr,
		    "rpc ceiling: cannot start the server on %s: %s\n", url,
		    dtx_strerror(err));
		ret = err;
		goto out;
	}
	clients = calloc((size_t)conns, sizeof(*clients));
	callers = calloc((size_t)n, sizeof(*callers));
	args = calloc((size_t)n, sizeof(*args));
	if (clients == NULL || callers == NULL || args == NULL)
		goto out;
	if ((ret = dial(srv, clients, conns)) != DTX_OK)
		goto out;
	for (int i = 0; i < n; i++) {
		callers[i].client = clients[i % conns];
		callers[i].seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
		args[i] = (rpc_arg) { &run, &callers[i] };
	}
	if ((ret = call_for(
	         &run, callers, args, n, seconds, &started, &secs)) != DTX_OK)
		goto out;
	ret = summarize(callers, n, conns, workers, secs, res);
out:
	if (started > 0) {
		run.deadline_ns = 0;
		atomic_store(&run.go, true);
		for (int i = 0; i < started; i++)
			pthread_join(callers[i].th, NULL);
	}
	if (clients != NULL)
		for (int i = 0; i < conns; i++)
			proto_client_close(clients[i]);
	proto_server_close(srv);
	if (!tcp)
		unlink(url + strlen("ipc://"));
	if (callers != NULL)
		for (int i = 0; i < n; i++)
			dtx_free(callers[i].lat_ns);
	free(args);
	free(callers);
	free(clients);
	return ret;
}

// Runs the measurement once the flags are valid; returns an exit code.
static int
run_bench(const rpc_cfg *cfg)
{
	bench_rpc_result r;
	dtx_err rv = bench_rpc_measure((int)cfg->clients, (int)cfg->conns,
	    (int)cfg->workers, cfg->seconds, strcmp(cfg->transport, "tcp") == 0,
	    &r);
	if (rv != DTX_OK) {
		fprintf(stderr, "dtx bench rpc: %s\n", dtx_strerror(rv));
		return HX_EXIT_FAILURE;
	}
	report(cfg, &r);
	bench_say_errors("dtx bench rpc", r.errors, r.first_err);
	return r.calls > 0 ? HX_EXIT_OK : HX_EXIT_FAILURE;
}

int
bench_rpc(int argc, char **argv)
{
	rpc_cfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	char *pos[1];
	int npos = 0;
	int rc = hx_parse_flags("dtx bench rpc", rpc_opts, NRPC_OPTS, &cfg,
	    argc, argv, pos, 1, &npos);
	if (rc != 0) {
		dtx_cfg_fini(rpc_opts, NRPC_OPTS, &cfg);
		return rc < 0 ? HX_EXIT_OK : rc;
	}
	if (npos > 0) {
		fprintf(stderr,
		    "dtx bench rpc: unexpected argument '%s' (see: dtx bench "
		    "rpc --help)\n",
		    pos[0]);
		rc = HX_EXIT_USAGE;
	} else if (cfg.transport == NULL ||
	    (strcmp(cfg.transport, "tcp") != 0 &&
	        strcmp(cfg.transport, "ipc") != 0)) {
		fprintf(stderr,
		    "dtx bench rpc: --transport must be tcp or ipc, not '%s'\n",
		    cfg.transport ? cfg.transport : "");
		rc = HX_EXIT_USAGE;
	} else {
		rc = run_bench(&cfg);
	}
	dtx_cfg_fini(rpc_opts, NRPC_OPTS, &cfg);
	return rc;
}
