// SPDX-License-Identifier: MIT
//
// dtx certs init DIR: a cluster CA and one key and certificate per node
// (from a topology file, or from counts laid out as `dtx cluster start`
// numbers its nodes), plus the client, admin and harness certificates,
// made by harness/certs.c with mbedTLS. Also how a node's certificate is
// reissued (--keep-ca --only ROLE-ID) and a CA replaced (--force).

#include <string.h>
#include <unistd.h>

#include "cli.h"

typedef struct certs_cfg {
	char *topology;
	int64_t coordinators, participants, sagas;
	int64_t client_id;
	int64_t days, ca_days;
	bool force, keep_ca, if_missing;
	char *only;
	bool json;
} certs_cfg;

#define OFF(f) offsetof(certs_cfg, f)
static const dtx_cfg_opt init_opts[] = {
	{ "topology", DTX_CFG_STR, OFF(topology), 0, 0, NULL,
	    "the nodes of this topology file (instead of the counts)" },
	{ "coordinators", DTX_CFG_INT, OFF(coordinators), 0, 8, "1",
	    "coordinators (ids from 0)" },
	{ "participants", DTX_CFG_INT, OFF(participants), 0, 16, "3",
	    "participants (after the coordinators)" },
	{ "sagas", DTX_CFG_INT, OFF(sagas), 0, 4, "1",
	    "saga orchestrators (after the participants)" },
	{ "client-id", DTX_CFG_INT, OFF(client_id), -1, DTX_TOPO_MAX - 1, "-1",
	    "id of the client, admin and harness certificates (-1: the "
	    "topology's client, or the id after the last node)" },
	{ "days", DTX_CFG_INT, OFF(days), 1, 36500, "825",
	    "validity of each node's certificate" },
	{ "ca-days", DTX_CFG_INT, OFF(ca_days), 1, 36500, "3650",
	    "validity of a new CA" },
	{ "force", DTX_CFG_BOOL, OFF(force), 0, 0, "false",
	    "replace a CA already in DIR (every certificate is reissued)" },
	{ "keep-ca", DTX_CFG_BOOL, OFF(keep_ca), 0, 0, "false",
	    "reissue the certificates with the CA already in DIR" },
	{ "if-missing", DTX_CFG_BOOL, OFF(if_missing), 0, 0, "false",
	    "keep what is there: make the CA when there is none and only the "
	    "certificates that are missing (for scripts run at every start)" },
	{ "only", DTX_CFG_STR, OFF(only), 0, 0, NULL,
	    "reissue only this one, ROLE-ID (participant-2), with DIR's CA" },
	{ "json", DTX_CFG_BOOL, OFF(json), 0, 0, "false",
	    "JSON output (the files written)" },
};
#define N(t) (sizeof(t) / sizeof(t[0]))

// The node list of the counts: coordinators, participants, sagas in that
// order from id 0, then client, admin and harness at the next id (or
// client_id). DTX_ERANGE when they do not fit.
static dtx_err
nodes_of_counts(const certs_cfg *cfg, hx_cert_node *out, size_t *n)
{
	const struct {
		int64_t count;
		proto_role role;
	} groups[] = {
		{ cfg->coordinators, PROTO_ROLE_COORDINATOR },
		{ cfg->participants, PROTO_ROLE_PARTICIPANT },
		{ cfg->sagas, PROTO_ROLE_SAGA },
	};
	uint32_t id = 0;
	size_t k = 0;
	for (size_t g = 0; g < N(groups); g++)
		for (int64_t i = 0; i < groups[g].count; i++)
			out[k++] = (hx_cert_node) { .id = id++,
				.role = groups[g].role };
	if (id >= DTX_TOPO_MAX)
		return DTX_ERANGE;
	uint32_t client = cfg->client_id >= 0 ? (uint32_t)cfg->client_id : id;
	const proto_role ext[] = { PROTO_ROLE_CLIENT, PROTO_ROLE_ADMIN,
		PROTO_ROLE_HARNESS };
	for (size_t i = 0; i < N(ext); i++)
		out[k++] = (hx_cert_node) { .id = client, .role = ext[i] };
	*n = k;
	return DTX_OK;
}

// The node list of the topology file cfg->topology; a client id given
// on the command line replaces the topology's for client, admin and
// harness.
static int
nodes_of_topology(const certs_cfg *cfg, hx_cert_node *out, size_t *n)
{
	char err[256];
	dtx_topo t;
	if (dtx_topo_load(cfg->topology, &t, err, sizeof(err)) != DTX_OK) {
		fprintf(stderr, "dtx certs init: %s: %s\n", cfg->topology, err);
		return HX_EXIT_USAGE;
	}
	*n = hx_certs_nodes_of(&t, out, DTX_TOPO_MAX + 3);
	for (size_t i = 0; i < *n && cfg->client_id >= 0; i++)
		if (out[i].role == PROTO_ROLE_CLIENT ||
		    out[i].role == PROTO_ROLE_ADMIN ||
		    out[i].role == PROTO_ROLE_HARNESS)
			out[i].id = (uint32_t)cfg->client_id;
	return 0;
}

// Checks the flags against each other; 0 when they make sense.
static int
check_flags(const certs_cfg *cfg, int npos)
{
	const char *why = NULL;
	hx_cert_node one;
	if (npos != 1)
		why = "want one directory: dtx certs init DIR";
	else if (cfg->force &&
	    (cfg->keep_ca || cfg->only != NULL || cfg->if_missing))
		why =
		    "--force makes a new CA: it excludes --keep-ca, --only and "
		    "--if-missing";
	else if (cfg->only != NULL &&
	    hx_cert_name_parse(cfg->only, &one) != DTX_OK)
		why = "--only wants ROLE-ID, e.g. participant-2 or admin-5";
	else if (cfg->coordinators + cfg->participants + cfg->sagas == 0 &&
	    cfg->topology == NULL)
		why = "no nodes: give --topology or some --participants";
	if (why == NULL)
		return 0;
	fprintf(
	    stderr, "dtx certs init: %s (see: dtx certs init --help)\n", why);
	return HX_EXIT_USAGE;
}

static int
init_body(certs_cfg *cfg, const char *dir)
{
	hx_cert_node nodes[DTX_TOPO_MAX + 3];
	size_t n = 0;
	char err[512];
	int rc = 0;
	if (cfg->topology != NULL)
		rc = nodes_of_topology(cfg, nodes, &n);
	else if (nodes_of_counts(cfg, nodes, &n) != DTX_OK) {
		fprintf(stderr,
		    "dtx certs init: more than %d nodes (ids 0..%d)\n",
		    DTX_TOPO_MAX - 1, DTX_TOPO_MAX - 1);
		rc = HX_EXIT_USAGE;
	}
	if (rc != 0)
		return rc;
	char crt[PATH_MAX + 16], key[PATH_MAX + 16];
	hx_certs_paths(dir, PROTO_ROLE_NONE, 0, crt, key, sizeof(crt));
	bool have_ca = access(crt, F_OK) == 0 || access(key, F_OK) == 0;
	hx_certs_opts o = { .dir = dir,
		.nodes = nodes,
		.n = n,
		.force = cfg->force,
		.keep_ca = cfg->keep_ca || (cfg->if_missing && have_ca),
		.missing_only = cfg->if_missing,
		.only = cfg->only,
		.days = (uint32_t)cfg->days,
		.ca_days = (uint32_t)cfg->ca_days };
	FILE *out = cfg->json ? tmpfile() : stdout;
	if (out == NULL) {
		fprintf(
		    stderr, "dtx certs init: cannot make a temporary file\n");
		return HX_EXIT_INTERNAL;
	}
	dtx_err rv = hx_certs_init(&o, out, err, sizeof(err));
	if (rv != DTX_OK) {
		fprintf(stderr, "dtx certs init: %s\n", err);
		rc = rv == DTX_EEXIST                      ? HX_EXIT_CONFLICT
		    : rv == DTX_ENOENT || rv == DTX_EINVAL ? HX_EXIT_USAGE
		                                           : HX_EXIT_INTERNAL;
	}
	if (cfg->json) {
		char line[PATH_MAX + 32];
		hx_json j;
		rewind(out);
		hx_json_begin(&j, stdout);
		hx_json_str(&j, "dir", dir);
		hx_json_bool(&j, "ok", rv == DTX_OK);
		hx_json_arr_begin(&j, "written");
		while (fgets(line, sizeof(line), out) != NULL) {
			line[strcspn(line, "\n")] = '\0';
			hx_json_str(&j, NULL, line);
		}
		hx_json_arr_end(&j);
		hx_json_end(&j);
		fclose(out);
	}
	return rc;
}

static int
cmd_init(int argc, char **argv)
{
	certs_cfg cfg = { 0 };
	char *pos[2];
	int npos = 0;
	int rc = hx_parse_flags("dtx certs init", init_opts, N(init_opts), &cfg,
	    argc, argv, pos, 2, &npos);
	if (rc == 0)
		rc = check_flags(&cfg, npos);
	if (rc == 0)
		rc = init_body(&cfg, pos[0]);
	dtx_cfg_fini(init_opts, N(init_opts), &cfg);
	return rc < 0 ? HX_EXIT_OK : rc;
}

int
cli_cmd_certs(int argc, char **argv)
{
	static const hx_cmd cmds[] = {
		{ "init", cmd_init,
		    "make a cluster CA and every node's key and certificate" },
	};
	return hx_dispatch("dtx certs", cmds, N(cmds), argc, argv);
}
