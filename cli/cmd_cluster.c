// SPDX-License-Identifier: MIT
//
// dtx cluster start|stop|status: a local cluster of daemons as processes
// (optionally each in its own network namespace) that outlives the
// command, so transfers, balances and bank runs can be pointed at it.

#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

typedef struct cl_cfg {
	int64_t participants;
	int64_t coordinators, sagas;
	char *dir;
	bool netns;
	bool saga;
	bool json;
	bool enable_faults;
	bool insecure;
	char *log_level;
	char *subnet;
} cl_cfg;

#define OFF(f) offsetof(cl_cfg, f)
static const dtx_cfg_opt start_opts[] = {
	{ "participants", DTX_CFG_INT, OFF(participants), 1, 16, "3",
	    "number of participants" },
	{ "coordinators", DTX_CFG_INT, OFF(coordinators), 1,
	    HX_COORDINATORS_MAX, "1",
	    "number of coordinators (each with its own log); transfers are "
	    "spread across them" },
	{ "sagas", DTX_CFG_INT, OFF(sagas), 1, HX_COORDINATORS_MAX, "1",
	    "with --saga: number of saga orchestrators" },
	{ "dir", DTX_CFG_STR, OFF(dir), 0, 0, HX_CLUSTER_DIR_DEFAULT,
	    "cluster directory" },
	{ "netns", DTX_CFG_BOOL, OFF(netns), 0, 0, "false",
	    "each daemon in its own network namespace (root)" },
	{ "saga", DTX_CFG_BOOL, OFF(saga), 0, 0, "false",
	    "also run the saga orchestrator" },
	{ "json", DTX_CFG_BOOL, OFF(json), 0, 0, "false", "JSON output" },
	{ "log-level", DTX_CFG_STR, OFF(log_level), 0, 0, "info",
	    "daemons' log level" },
	{ "enable-faults", DTX_CFG_BOOL, OFF(enable_faults), 0, 0, "false",
	    "let the harness send FAULT requests (off: every FAULT is "
	    "refused)" },
	{ "insecure", DTX_CFG_BOOL, OFF(insecure), 0, 0, "false",
	    "plaintext tcp:// links, no certificates: only for a single "
	    "trusted host (default: mutual TLS with DIR/certs)" },
	{ "subnet", DTX_CFG_STR, OFF(subnet), 0, 0, NULL,
	    "with --netns: the subnet (CIDR) of the namespaces; default: a "
	    "free /24 of " HX_NETNS_POOL },
};
static const dtx_cfg_opt dir_opts[] = {
	{ "dir", DTX_CFG_STR, OFF(dir), 0, 0, HX_CLUSTER_DIR_DEFAULT,
	    "cluster directory" },
	{ "json", DTX_CFG_BOOL, OFF(json), 0, 0, "false", "JSON output" },
};
#define N(t) (sizeof(t) / sizeof(t[0]))

// Prints each node: role, id, url, pid, and what HEALTH says. Returns
// true when every node answers with state "ok" (or "recovering", as `dtx
// health` counts it) and no blocked transaction.
static bool
show(hx_cluster *cl, bool json)
{
	bool all_ok = true;
	const dtx_topo *topo = hx_cluster_topo(cl);
	hx_conn *conn = NULL;
	hx_json j;
	char err[512];
	if (hx_cluster_conn(cl, false, &conn, err, sizeof(err)) != DTX_OK)
		fprintf(stderr, "dtx cluster: %s\n", err);
	if (json) {
		hx_json_begin(&j, stdout);
		hx_json_str(&j, "dir", hx_cluster_dir(cl));
		hx_json_bool(&j, "netns", hx_cluster_is_netns(cl));
		hx_json_bool(&j, "tls", hx_cluster_is_tls(cl));
		hx_json_arr_begin(&j, "nodes");
	} else {
		printf("cluster %s%s%s\n", hx_cluster_dir(cl),
		    hx_cluster_is_tls(cl) ? " (mutual TLS)"
		                          : " (insecure: plaintext)",
		    hx_cluster_is_netns(cl) ? " (network namespaces)" : "");
		printf("%-4s %-12s %-26s %-8s %-10s %s\n", "id", "role", "url",
		    "pid", "health", "in-doubt");
	}
	for (uint32_t i = 0; i < topo->n; i++) {
		const dtx_node *nd = &topo->nodes[i];
		if (nd->role == DTX_ROLE_CLIENT)
			continue;
		int pid = hx_cluster_pid(cl, nd->id);
		proto_msg rep;
		bool h = conn != NULL && pid > 0 &&
		    hx_health(conn, nd->id, 1000, &rep) == DTX_OK;
		const char *state = h ? rep.u.health_reply.state
		    : pid > 0         ? "no answer"
		                      : "down";
		int64_t indoubt = h ? (int64_t)rep.u.health_reply.in_doubt : -1;
		bool ok = h && rep.u.health_reply.n_blocked == 0 &&
		    (strcmp(state, "ok") == 0 ||
		        strcmp(state, "recovering") == 0);
		all_ok &= ok;
		if (json) {
			hx_json_obj_begin(&j, NULL);
			hx_json_int(&j, "id", nd->id);
			hx_json_str(&j, "role", dtx_role_name(nd->role));
			hx_json_str(&j, "url", nd->url);
			hx_json_int(&j, "pid", pid);
			hx_json_str(&j, "health", state);
			hx_json_bool(&j, "ok", ok);
			if (indoubt >= 0)
				hx_json_int(&j, "in_doubt", indoubt);
			if (h)
				hx_json_int(&j, "blocked",
				    rep.u.health_reply.n_blocked);
			hx_json_obj_end(&j);
		} else {
			char idt[24] = "-";
			if (indoubt >= 0)
				snprintf(idt, sizeof(idt), "%" PRId64, indoubt);
			printf("%-4u %-12s %-26s %-8d %-10s %s\n", nd->id,
			    dtx_role_name(nd->role), nd->url, pid, state, idt);
		}
		if (h)
			proto_msg_free(&rep);
	}
	if (json) {
		hx_json_arr_end(&j);
		hx_json_bool(&j, "ok", all_ok);
		hx_json_end(&j);
	}
	hx_conn_close(conn);
	return all_ok;
}

// Waits until every daemon answers HEALTH.
static dtx_err
wait_healthy(hx_cluster *cl, uint64_t timeout_ms)
{
	hx_conn *conn;
	const dtx_topo *topo = hx_cluster_topo(cl);
	char err[512];
	dtx_err rv = hx_cluster_conn(cl, false, &conn, err, sizeof(err));
	if (rv != DTX_OK) {
		fprintf(stderr, "dtx cluster start: %s\n", err);
		return rv;
	}
	uint64_t deadline = dtx_mono_ns() + timeout_ms * 1000000u;
	for (uint32_t i = 0; i < topo->n; i++) {
		const dtx_node *nd = &topo->nodes[i];
		if (nd->role == DTX_ROLE_CLIENT)
			continue;
		for (;;) {
			proto_msg rep;
			rv = hx_health(conn, nd->id, 1000, &rep);
			if (rv == DTX_OK) {
				proto_msg_free(&rep);
				break;
			}
			if (dtx_mono_ns() > deadline)
				goto done;
			dtx_sleep_ms(50);
		}
	}
done:
	hx_conn_close(conn);
	return rv;
}

int
cli_cluster_open(const char *what, const char *dir, hx_cluster **out)
{
	char err[512];
	dtx_err rv = hx_cluster_open(dir, out, err, sizeof(err));
	if (rv == DTX_OK)
		return 0;
	if (rv == DTX_ENOENT)
		fprintf(stderr,
		    "%s: no cluster in %s (start one with dtx cluster start "
		    "--dir %s)\n",
		    what, dir, dir);
	else
		fprintf(stderr, "%s: %s\n", what, err);
	return HX_EXIT_UNAVAILABLE;
}

// The body of a subcommand: runs it with the parsed flags and returns
// its exit code. A cluster it leaves in *cl is freed after it.
typedef int (*cl_body)(cl_cfg *cfg, hx_cluster **cl);

// Parses a subcommand's flags, runs its body unless they were bad or
// help was shown (then the exit is HX_EXIT_USAGE or HX_EXIT_OK), and
// frees what the body left.
static int
run_sub(const char *what, const dtx_cfg_opt *opts, size_t nopts, cl_body body,
    int argc, char **argv)
{
	cl_cfg cfg = { 0 };
	hx_cluster *cl = NULL;
	int rc =
	    hx_parse_flags(what, opts, nopts, &cfg, argc, argv, NULL, 0, NULL);
	if (rc == 0)
		rc = body(&cfg, &cl);
	hx_cluster_free(cl);
	dtx_cfg_fini(opts, nopts, &cfg);
	return rc < 0 ? HX_EXIT_OK : rc;
}

static int
start_body(cl_cfg *cfg, hx_cluster **cl)
{
	char err[512];
	// A cluster already running in this directory is left alone.
	if (hx_cluster_open(cfg->dir, cl, NULL, 0) == DTX_OK) {
		bool up = false;
		const dtx_topo *t = hx_cluster_topo(*cl);
		for (uint32_t i = 0; i < t->n; i++)
			up |= hx_cluster_pid(*cl, t->nodes[i].id) > 0;
		if (up) {
			fprintf(stderr,
			    "dtx cluster start: a cluster is already running "
			    "in %s (dtx cluster stop --dir %s)\n",
			    cfg->dir, cfg->dir);
			return HX_EXIT_CONFLICT;
		}
		hx_cluster_free(*cl);
		*cl = NULL;
	}
	hx_subnet sn;
	if (cfg->subnet != NULL &&
	    (!cfg->netns ||
	        hx_subnet_parse(cfg->subnet, &sn, err, sizeof(err)) !=
	            DTX_OK)) {
		fprintf(stderr, "dtx cluster start: %s\n",
		    cfg->netns ? err : "--subnet needs --netns");
		return HX_EXIT_USAGE;
	}
	hx_cluster_stop_dir(cfg->dir, false);
	hx_cluster_opts o = { .dir = cfg->dir,
		.participants = (uint32_t)cfg->participants,
		.coordinators = (uint32_t)cfg->coordinators,
		.saga = cfg->saga,
		.sagas = cfg->saga ? (uint32_t)cfg->sagas : 0,
		.log_level = cfg->log_level,
		.netns = cfg->netns,
		.enable_faults = cfg->enable_faults,
		.insecure = cfg->insecure,
		.subnet = cfg->subnet != NULL ? &sn : NULL };
	dtx_err rv = hx_cluster_create(&o, cl, err, sizeof(err));
	if (rv != DTX_OK) {
		fprintf(stderr, "dtx cluster start: %s\n", err);
		return rv == DTX_EPERM || rv == DTX_EINVAL ? HX_EXIT_USAGE
		                                           : HX_EXIT_FAILURE;
	}
	if ((rv = hx_cluster_start_all(*cl, 20000)) != DTX_OK ||
	    (rv = wait_healthy(*cl, 20000)) != DTX_OK) {
		fprintf(stderr,
		    "dtx cluster start: not all daemons came up (%s); logs "
		    "in %s/logs\n",
		    dtx_strerror(rv), hx_cluster_dir(*cl));
		hx_cluster_stop_all(*cl, 2000);
		return HX_EXIT_FAILURE;
	}
	show(*cl, cfg->json);
	return HX_EXIT_OK;
}

// True when some daemon of the cluster in cl's state file runs.
static bool
any_running(hx_cluster *cl)
{
	const dtx_topo *t = hx_cluster_topo(cl);
	for (uint32_t i = 0; i < t->n; i++)
		if (hx_cluster_pid(cl, t->nodes[i].id) > 0)
			return true;
	return false;
}

static int
stop_body(cl_cfg *cfg, hx_cluster **cl)
{
	bool running = false;
	if (hx_cluster_open(cfg->dir, cl, NULL, 0) == DTX_OK) {
		running = any_running(*cl);
		hx_cluster_stop_all(*cl, 5000);
	}
	// Whatever the state file forgot: stray daemons, namespaces.
	hx_cluster_stop_dir(cfg->dir, true);
	if (cfg->json) {
		hx_json j;
		hx_json_begin(&j, stdout);
		hx_json_str(&j, "dir", cfg->dir);
		hx_json_bool(&j, "stopped", running);
		hx_json_end(&j);
	} else if (running) {
		printf("stopped %s\n", cfg->dir);
	} else {
		printf(
		    "nothing to stop: no cluster is running in %s\n", cfg->dir);
	}
	// Stopping nothing is not an error to retry, but a script that
	// expected a cluster should hear that there was none.
	return running ? HX_EXIT_OK : HX_EXIT_INVALID;
}

static int
status_body(cl_cfg *cfg, hx_cluster **cl)
{
	int rc = cli_cluster_open("dtx cluster status", cfg->dir, cl);
	if (rc != 0)
		return rc;
	// 1 when a node is down, does not answer, is not ok or is blocked,
	// as `dtx health` exits for one node.
	return show(*cl, cfg->json) ? HX_EXIT_OK : HX_EXIT_INVALID;
}

static int
cmd_start(int argc, char **argv)
{
	return run_sub("dtx cluster start", start_opts, N(start_opts),
	    start_body, argc, argv);
}

static int
cmd_stop(int argc, char **argv)
{
	return run_sub(
	    "dtx cluster stop", dir_opts, N(dir_opts), stop_body, argc, argv);
}

static int
cmd_status(int argc, char **argv)
{
	return run_sub("dtx cluster status", dir_opts, N(dir_opts), status_body,
	    argc, argv);
}

int
cli_cmd_cluster(int argc, char **argv)
{
	static const hx_cmd cmds[] = {
		{ "start", cmd_start, "start a local cluster" },
		{ "stop", cmd_stop, "stop it and remove its namespaces" },
		{ "status", cmd_status, "show each node and its health" },
	};
	return hx_dispatch("dtx cluster", cmds, N(cmds), argc, argv);
}
