// SPDX-License-Identifier: MIT
//
// dtx-compose-nemesis: applies one container fault to a running compose
// project through harness/compose.c, so that the compose test (and a person
// at a shell) can kill, restart, pause, cut off and heal nodes while a
// workload runs inside the network.

#include <stdlib.h>
#include <string.h>

#include "harness.h"

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: dtx-compose-nemesis [--project P] [--topology FILE] "
	    "ACTION [ARG]\n"
	    "  kill ID | start ID | pause ID | unpause ID\n"
	    "  partition ID[,ID...]   cut these nodes off from every other "
	    "daemon\n"
	    "  heal                   remove every partition rule\n"
	    "  status                 one line per service\n"
	    "  wait-healthy SECONDS   wait until every service is healthy\n"
	    "P defaults to $COMPOSE_PROJECT_NAME or \"dtx\"; FILE to "
	    "compose/topology.\n");
}

static bool
parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (s[0] == '\0' || *end != '\0' || v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

// Isolates the ids in list ("2" or "1,3") from every other daemon node.
static dtx_err
isolate(hx_compose *c, const dtx_topo *topo, const char *list)
{
	uint32_t side = 0;
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", list);
	char *save = NULL;
	for (char *w = strtok_r(buf, ",", &save); w != NULL;
	     w = strtok_r(NULL, ",", &save)) {
		uint32_t id;
		if (!parse_u32(w, DTX_TOPO_MAX - 1, &id) ||
		    hx_compose_service(c, id) == NULL)
			return DTX_EINVAL;
		side |= UINT32_C(1) << id;
	}
	hx_grudge g;
	memset(&g, 0, sizeof(g));
	for (uint32_t i = 0; i < topo->n; i++) {
		uint32_t a = topo->nodes[i].id;
		if (!(side & (UINT32_C(1) << a)))
			continue;
		for (uint32_t j = 0; j < topo->n; j++) {
			uint32_t b = topo->nodes[j].id;
			if (!(side & (UINT32_C(1) << b)) &&
			    hx_compose_service(c, b) != NULL)
				g.drop[a] |= UINT32_C(1) << b;
		}
	}
	return hx_compose_partition(c, &g);
}

static int
status(hx_compose *c, const dtx_topo *topo)
{
	int rc = 0;
	for (uint32_t i = 0; i < topo->n; i++) {
		uint32_t id = topo->nodes[i].id;
		hx_compose_state st;
		if (hx_compose_service(c, id) == NULL)
			continue;
		dtx_err rv = hx_compose_status(c, id, &st);
		if (rv != DTX_OK) {
			printf("%-14s %2u  %s\n", hx_compose_service(c, id),
			    (unsigned)id, dtx_strerror(rv));
			rc = 1;
			continue;
		}
		printf("%-14s %2u  %-12s %-9s %-9s %s\n", st.service,
		    (unsigned)id, st.container, st.state, st.health, st.ip);
	}
	return rc;
}

int
main(int argc, char **argv)
{
	const char *project = NULL, *topo_path = "compose/topology";
	int i = 1;
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (strcmp(argv[i], "--project") == 0)
			project = argv[i + 1];
		else if (strcmp(argv[i], "--topology") == 0)
			topo_path = argv[i + 1];
		else
			break;
	}
	if (i >= argc || strncmp(argv[i], "-", 1) == 0) {
		usage(i < argc && strcmp(argv[i], "--help") == 0 ? stdout
		                                                 : stderr);
		return i < argc && strcmp(argv[i], "--help") == 0 ? 0 : 64;
	}
	const char *action = argv[i], *arg = i + 1 < argc ? argv[i + 1] : NULL;
	dtx_log_init("compose-nemesis", DTX_LOG_WARN);

	static dtx_topo topo;
	char err[512];
	if (dtx_topo_load(topo_path, &topo, err, sizeof(err)) != DTX_OK) {
		fprintf(stderr, "dtx-compose-nemesis: %s: %s\n", topo_path,
		    err[0] ? err : "cannot read");
		return 1;
	}
	hx_compose *c = NULL;
	if (hx_compose_open(project, &topo, &c, err, sizeof(err)) != DTX_OK) {
		fprintf(stderr, "dtx-compose-nemesis: %s\n", err);
		return 1;
	}
	dtx_err rv = DTX_EINVAL;
	uint32_t id = 0;
	bool need_id = strcmp(action, "kill") == 0 ||
	    strcmp(action, "start") == 0 || strcmp(action, "pause") == 0 ||
	    strcmp(action, "unpause") == 0;
	int rc = 0;
	if (need_id &&
	    (arg == NULL || !parse_u32(arg, DTX_TOPO_MAX - 1, &id) ||
	        hx_compose_service(c, id) == NULL)) {
		fprintf(stderr,
		    "dtx-compose-nemesis: %s needs the id of a daemon node\n",
		    action);
		rc = 64;
	} else if (strcmp(action, "kill") == 0) {
		rv = hx_compose_kill(c, id);
	} else if (strcmp(action, "start") == 0) {
		rv = hx_compose_start(c, id);
	} else if (strcmp(action, "pause") == 0) {
		rv = hx_compose_pause(c, id);
	} else if (strcmp(action, "unpause") == 0) {
		rv = hx_compose_unpause(c, id);
	} else if (strcmp(action, "partition") == 0 && arg != NULL) {
		rv = isolate(c, &topo, arg);
	} else if (strcmp(action, "heal") == 0) {
		rv = hx_compose_heal(c);
	} else if (strcmp(action, "status") == 0) {
		rc = status(c, &topo);
		rv = DTX_OK;
	} else if (strcmp(action, "wait-healthy") == 0 && arg != NULL) {
		uint32_t secs;
		rv = parse_u32(arg, 86400, &secs)
		    ? hx_compose_wait_healthy(c, (uint64_t)secs * 1000)
		    : DTX_EINVAL;
	} else {
		usage(stderr);
		rc = 64;
	}
	if (rc == 0 && rv != DTX_OK) {
		fprintf(stderr, "dtx-compose-nemesis: %s %s: %s\n", action,
		    arg ? arg : "", dtx_strerror(rv));
		rc = 1;
	}
	hx_compose_free(c);
	return rc;
}
