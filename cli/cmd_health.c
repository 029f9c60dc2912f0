// SPDX-License-Identifier: MIT
//
// dtx health: asks one daemon for its HEALTH and turns the answer into an
// exit code, so that a container healthcheck (and a script) can tell a
// serving node from one that is down, blocked or failed.

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "proto.h"

typedef struct health_cfg {
	int64_t timeout_ms;
	int64_t from;
	bool json;
	bool counters;
	char *tls_ca, *tls_cert, *tls_key;
	char *dir;
} health_cfg;

static const dtx_cfg_opt health_opts[] = {
	{ "timeout-ms", DTX_CFG_INT, offsetof(health_cfg, timeout_ms), 1,
	    600000, "2000", "how long to wait for the answer" },
	{ "from", DTX_CFG_INT, offsetof(health_cfg, from), 0, DTX_TOPO_MAX - 1,
	    "0", "node id to send as (only names the sender)" },
	{ "json", DTX_CFG_BOOL, offsetof(health_cfg, json), 0, 0, "false",
	    "print one JSON object" },
	{ "counters", DTX_CFG_BOOL, offsetof(health_cfg, counters), 0, 0,
	    "false", "also print the node's counters" },
	{ "tls-ca", DTX_CFG_STR, offsetof(health_cfg, tls_ca), 0, 0, NULL,
	    "for a tls+tcp:// URL: the cluster CA (default $DTX_TLS_CA, else "
	    "--dir's)" },
	{ "tls-cert", DTX_CFG_STR, offsetof(health_cfg, tls_cert), 0, 0, NULL,
	    "our certificate (default $DTX_TLS_CERT, else --dir's admin)" },
	{ "tls-key", DTX_CFG_STR, offsetof(health_cfg, tls_key), 0, 0, NULL,
	    "its key (default $DTX_TLS_KEY)" },
	{ "dir", DTX_CFG_STR, offsetof(health_cfg, dir), 0, 0,
	    HX_CLUSTER_DIR_DEFAULT,
	    "cluster directory whose certs/ has the admin certificate" },
};
#define NHEALTH_OPTS (sizeof(health_opts) / sizeof(health_opts[0]))

// Turns a listen URL into one that can be dialed: a wildcard host
// ("0.0.0.0", "*", "[::]" or none) becomes the loopback address, so that
// a container can check the daemon it runs from $DTX_LISTEN.
static dtx_err
dial_url(const char *listen, char *buf, size_t len)
{
	static const char *const wild[] = { "0.0.0.0", "*", "[::]", "" };
	const char *hostp = strstr(listen, "://");
	if (hostp == NULL)
		return DTX_EINVAL;
	hostp += 3;
	const char *colon = strrchr(hostp, ':');
	if (hx_url_hostport(listen) == NULL || colon == NULL) {
		if ((size_t)snprintf(buf, len, "%s", listen) >= len)
			return DTX_EINVAL;
		return DTX_OK;
	}
	size_t hlen = (size_t)(colon - hostp);
	for (size_t i = 0; i < sizeof(wild) / sizeof(wild[0]); i++) {
		if (strlen(wild[i]) == hlen &&
		    strncmp(hostp, wild[i], hlen) == 0) {
			int n = snprintf(buf, len, "%.*s127.0.0.1%s",
			    (int)(hostp - listen), listen, colon);
			return n >= 0 && (size_t)n < len ? DTX_OK : DTX_EINVAL;
		}
	}
	if ((size_t)snprintf(buf, len, "%s", listen) >= len)
		return DTX_EINVAL;
	return DTX_OK;
}

// True for the states in which a node serves requests.
static bool
state_healthy(const char *state)
{
	return state != NULL &&
	    (strcmp(state, "ok") == 0 || strcmp(state, "recovering") == 0);
}

static void
print_reply(const health_cfg *cfg, const char *url, const proto_health_reply *h,
    bool healthy)
{
	if (cfg->json) {
		hx_json j;
		hx_json_begin(&j, stdout);
		hx_json_str(&j, "url", url);
		hx_json_bool(&j, "healthy", healthy);
		hx_json_str(&j, "role", h->role ? h->role : "");
		hx_json_int(&j, "node", h->node);
		hx_json_str(&j, "state", h->state ? h->state : "");
		hx_json_u64(&j, "in_doubt", h->in_doubt);
		hx_json_arr_begin(&j, "blocked");
		for (uint32_t i = 0; i < h->n_blocked; i++)
			hx_json_u64(&j, NULL, h->blocked[i]);
		hx_json_arr_end(&j);
		hx_json_obj_begin(&j, "counters");
		for (uint32_t i = 0; i < h->n_counters; i++)
			hx_json_int(
			    &j, h->counters[i].name, h->counters[i].value);
		hx_json_obj_end(&j);
		hx_json_end(&j);
		return;
	}
	printf("%s %" PRIu32 " %s in-doubt %" PRIu64, h->role ? h->role : "?",
	    h->node, h->state ? h->state : "?", h->in_doubt);
	if (h->n_blocked > 0) {
		printf(" blocked");
		for (uint32_t i = 0; i < h->n_blocked && i < 8; i++)
			printf("%s%" PRIu64, i ? "," : " ", h->blocked[i]);
		if (h->n_blocked > 8)
			printf(",...");
	}
	printf("\n");
	if (cfg->counters)
		for (uint32_t i = 0; i < h->n_counters; i++)
			printf("  %s %" PRId64 "\n", h->counters[i].name,
			    h->counters[i].value);
}

static void
print_failure(const health_cfg *cfg, const char *url, const char *why)
{
	if (cfg->json) {
		hx_json j;
		hx_json_begin(&j, stdout);
		hx_json_str(&j, "url", url);
		hx_json_bool(&j, "healthy", false);
		hx_json_str(&j, "error", why);
		hx_json_end(&j);
		return;
	}
	printf("%s: %s\n", url, why);
}

// The identity to say hello with to a tls+tcp:// URL: the --tls-*
// flags, else $DTX_TLS_CA, $DTX_TLS_CERT and $DTX_TLS_KEY (a daemon's own,
// in its container), else the admin certificate of the cluster in --dir.
static dtx_err
open_tls(const health_cfg *cfg, proto_tls **out)
{
	const char *ca = cfg->tls_ca ? cfg->tls_ca : getenv("DTX_TLS_CA");
	const char *crt =
	    cfg->tls_cert ? cfg->tls_cert : getenv("DTX_TLS_CERT");
	const char *key = cfg->tls_key ? cfg->tls_key : getenv("DTX_TLS_KEY");
	char why[512];
	dtx_err rv;
	if (ca != NULL || crt != NULL || key != NULL) {
		rv = proto_tls_open(ca, crt, key, why, sizeof(why), out);
	} else {
		hx_cluster *cl = NULL;
		rv = hx_cluster_open(cfg->dir, &cl, why, sizeof(why));
		if (rv == DTX_OK) {
			char dir[PATH_MAX + 8];
			const dtx_topo *t = hx_cluster_topo(cl);
			const dtx_node *me = dtx_topo_first(t, DTX_ROLE_CLIENT);
			snprintf(
			    dir, sizeof(dir), "%s/certs", hx_cluster_dir(cl));
			rv = hx_certs_open(dir, PROTO_ROLE_ADMIN,
			    me != NULL ? me->id : t->max_id, out, why,
			    sizeof(why));
		}
		hx_cluster_free(cl);
	}
	if (rv != DTX_OK)
		fprintf(stderr,
		    "dtx health: a tls+tcp:// URL needs a certificate "
		    "(--tls-ca, --tls-cert, --tls-key, or --dir of a cluster "
		    "with certs/): %s\n",
		    why);
	return rv;
}

// Sends one HEALTH to url; returns the exit code.
static int
check(const health_cfg *cfg, const char *url)
{
	proto_client_cfg ccfg = {
		.url = url,
		.node_id = (uint32_t)cfg->from,
		.timeout_ms = (uint32_t)cfg->timeout_ms,
		.connect_wait_ms = (uint32_t)cfg->timeout_ms,
	};
	proto_tls *tls = NULL;
	if (strncmp(url, "tls+tcp://", 10) == 0 &&
	    open_tls(cfg, &tls) != DTX_OK)
		return HX_EXIT_USAGE;
	ccfg.tls = tls;
	proto_client *client = NULL;
	dtx_err err = proto_client_open(&ccfg, &client);
	if (err != DTX_OK) {
		fprintf(stderr, "dtx health: cannot use '%s': %s\n", url,
		    dtx_strerror(err));
		proto_tls_close(tls);
		return err == DTX_EINVAL ? HX_EXIT_USAGE : HX_EXIT_FAILURE;
	}
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_HEALTH);
	proto_call_opts opts = { .timeout_ms = (uint32_t)cfg->timeout_ms,
		.idempotent = true };
	err = proto_client_call(client, &req, &rep, &opts);
	int rc;
	if (err == DTX_OK && rep.hdr.type == PROTO_HEALTH_REPLY) {
		const proto_health_reply *h = &rep.u.health_reply;
		bool healthy = state_healthy(h->state);
		print_reply(cfg, url, h, healthy);
		rc = healthy ? HX_EXIT_OK : 1;
	} else if (err == DTX_OK || err == DTX_EREFUSED) {
		char why[PROTO_MAX_STR + 64];
		if (err == DTX_EREFUSED)
			snprintf(why, sizeof(why), "refused: %s (%s)",
			    dtx_errname(rep.u.error.code),
			    rep.u.error.reason ? rep.u.error.reason : "");
		else
			snprintf(why, sizeof(why),
			    "answered %s, not "
			    "health_reply",
			    proto_type_name(rep.hdr.type));
		print_failure(cfg, url, why);
		rc = 1;
	} else {
		print_failure(cfg, url, dtx_strerror(err));
		rc = 1;
	}
	if (err == DTX_OK || err == DTX_EREFUSED)
		proto_msg_free(&rep);
	proto_client_close(client);
	proto_tls_close(tls);
	return rc;
}

int
cli_cmd_health(int argc, char **argv)
{
	health_cfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	char *pos[2];
	int npos = 0;
	int rc = hx_parse_flags("dtx health", health_opts, NHEALTH_OPTS, &cfg,
	    argc, argv, pos, 2, &npos);
	if (rc != 0) {
		// Its usage, arguments and exit codes are in cli/help.c.
		dtx_cfg_fini(health_opts, NHEALTH_OPTS, &cfg);
		return rc < 0 ? HX_EXIT_OK : rc;
	}
	const char *listen = npos > 0 ? pos[0] : getenv("DTX_LISTEN");
	char url[DTX_URL_MAX];
	if (npos > 1) {
		fprintf(stderr,
		    "dtx health: unexpected argument '%s' (see: dtx health "
		    "--help)\n",
		    pos[1]);
		rc = HX_EXIT_USAGE;
	} else if (listen == NULL || listen[0] == '\0') {
		fprintf(stderr,
		    "dtx health: give the daemon's URL "
		    "(tcp://host:port) or set DTX_LISTEN\n");
		rc = HX_EXIT_USAGE;
	} else if (dial_url(listen, url, sizeof(url)) != DTX_OK) {
		fprintf(stderr,
		    "dtx health: '%s' is not a URL like tcp://host:port\n",
		    listen);
		rc = HX_EXIT_USAGE;
	} else {
		rc = check(&cfg, url);
	}
	dtx_cfg_fini(health_opts, NHEALTH_OPTS, &cfg);
	return rc;
}
