// SPDX-License-Identifier: MIT
//
// Container nemeses for the docker-compose topology (compose/): the node
// ids of a topology are mapped to compose services, whose containers are
// killed and started, paused and unpaused, and cut off from each other
// with iptables DROP rules inside the containers (they run with
// NET_ADMIN), all through the docker command.

#include <stdlib.h>
#include <string.h>

#include "harness_int.h"

struct hx_compose {
	char project[HX_COMPOSE_NAME_MAX];
	dtx_topo topo;
	char service[DTX_TOPO_MAX][HX_COMPOSE_NAME_MAX]; // "" for clients
};

// Runs docker with args[0..] (NULL-terminated, at most 15) and returns its
// exit status, -1 when it could not run. Output goes into out (may be
// NULL); stderr is shown only when loud.
static int
docker(char *out, size_t outlen, bool loud, const char *const args[])
{
	const char *argv[16] = { "docker" };
	size_t n = 1;
	for (; args[n - 1] != NULL && n < 15; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	return hx_run(argv, out, outlen, !loud);
}

// Cuts s at its first line end.
static void
first_line(char *s)
{
	s[strcspn(s, "\r\n")] = '\0';
}

static bool
name_ok(const char *s)
{
	if (s == NULL || s[0] == '\0' || strlen(s) >= HX_COMPOSE_NAME_MAX)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		        *p == '_' || *p == '-' || *p == '.'))
			return false;
	return true;
}

dtx_err
hx_compose_open(const char *project, const dtx_topo *topo, hx_compose **out,
    char *err, size_t errlen)
{
	if (project == NULL || project[0] == '\0')
		project = getenv("COMPOSE_PROJECT_NAME");
	if (project == NULL || project[0] == '\0')
		project = HX_COMPOSE_PROJECT_DEFAULT;
	if (!name_ok(project) || topo == NULL) {
		snprintf(err, errlen,
		    "compose project name '%s' must be lower-case letters, "
		    "digits, '_', '-' or '.'",
		    project);
		return DTX_EINVAL;
	}
	char ver[64];
	const char *const args[] = { "version", "--format",
		"{{.Server.Version}}", NULL };
	int rc = docker(ver, sizeof(ver), false, args);
	if (rc != 0) {
		snprintf(err, errlen,
		    rc < 0 ? "cannot run the docker command"
		           : "no Docker daemon answers (docker version "
		             "failed)");
		return rc < 0 ? DTX_ENOENT : DTX_EUNREACH;
	}
	hx_compose *c = dtx_calloc(1, sizeof(*c));
	if (c == NULL)
		return DTX_ENOMEM;
	snprintf(c->project, sizeof(c->project), "%s", project);
	c->topo = *topo;
	uint32_t part = 0, coords = 0;
	for (uint32_t i = 0; i < topo->n; i++) {
		const dtx_node *nd = &topo->nodes[i];
		char *s = c->service[nd->id];
		switch (nd->role) {
		case DTX_ROLE_COORDINATOR:
			// coordinator, coordinator2, ... (compose/).
			if (coords++ == 0)
				snprintf(s, HX_COMPOSE_NAME_MAX, "coordinator");
			else
				snprintf(s, HX_COMPOSE_NAME_MAX,
				    "coordinator%u", (unsigned)coords);
			break;
		case DTX_ROLE_PARTICIPANT:
			snprintf(s, HX_COMPOSE_NAME_MAX, "participant%u",
			    (unsigned)++part);
			break;
		case DTX_ROLE_SAGA:
			snprintf(s, HX_COMPOSE_NAME_MAX, "saga");
			break;
		case DTX_ROLE_CLIENT:
			break;
		}
	}
	*out = c;
	return DTX_OK;
}

void
hx_compose_free(hx_compose *c)
{
	dtx_free(c);
}

const char *
hx_compose_project(const hx_compose *c)
{
	return c->project;
}

const char *
hx_compose_service(const hx_compose *c, uint32_t id)
{
	if (id >= DTX_TOPO_MAX || c->service[id][0] == '\0')
		return NULL;
	return c->service[id];
}

dtx_err
hx_compose_container(
    const hx_compose *c, const char *service, char *buf, size_t len)
{
	if (!name_ok(service) || len < 2)
		return DTX_EINVAL;
	char fp[HX_COMPOSE_NAME_MAX + 48], fs[HX_COMPOSE_NAME_MAX + 48];
	snprintf(
	    fp, sizeof(fp), "label=com.docker.compose.project=%s", c->project);
	snprintf(
	    fs, sizeof(fs), "label=com.docker.compose.service=%s", service);
	char out[1024];
	const char *const args[] = { "ps", "-a", "-q", "--no-trunc", "--filter",
		fp, "--filter", fs, NULL };
	if (docker(out, sizeof(out), false, args) != 0)
		return DTX_EUNREACH;
	first_line(out);
	if (out[0] == '\0')
		return DTX_ENOENT;
	if (strlen(out) >= len)
		return DTX_EINVAL;
	memcpy(buf, out, strlen(out) + 1);
	return DTX_OK;
}

// The container of node id: DTX_EINVAL for an id that is no service.
static dtx_err
container_of(const hx_compose *c, uint32_t id, char *buf, size_t len)
{
	const char *svc = hx_compose_service(c, id);
	if (svc == NULL)
		return DTX_EINVAL;
	return hx_compose_container(c, svc, buf, len);
}

// Runs "docker VERB <container of id>".
static dtx_err
simple(hx_compose *c, uint32_t id, const char *verb, const char *opt)
{
	char cid[128];
	dtx_err rv = container_of(c, id, cid, sizeof(cid));
	if (rv != DTX_OK)
		return rv;
	const char *const with[] = { verb, opt, cid, NULL };
	const char *const without[] = { verb, cid, NULL };
	if (docker(NULL, 0, false, opt != NULL ? with : without) != 0) {
		DTX_LOG(DTX_LOG_WARN, "COMPOSE_FAIL",
		    "docker %s %s (%s) failed", verb, c->service[id],
		    c->project);
		return DTX_EIO;
	}
	return DTX_OK;
}

dtx_err
hx_compose_kill(hx_compose *c, uint32_t id)
{
	return simple(c, id, "kill", "--signal=KILL");
}

dtx_err
hx_compose_start(hx_compose *c, uint32_t id)
{
	return simple(c, id, "start", NULL);
}

dtx_err
hx_compose_pause(hx_compose *c, uint32_t id)
{
	return simple(c, id, "pause", NULL);
}

dtx_err
hx_compose_unpause(hx_compose *c, uint32_t id)
{
	return simple(c, id, "unpause", NULL);
}

dtx_err
hx_compose_status(hx_compose *c, uint32_t id, hx_compose_state *out)
{
	char cid[128];
	dtx_err rv = container_of(c, id, cid, sizeof(cid));
	if (rv != DTX_OK)
		return rv;
	char line[256];
	const char *const args[] = { "inspect", "-f",
		"{{.State.Status}} {{if .State.Health}}"
		"{{.State.Health.Status}}{{else}}none{{end}} "
		"{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
		cid, NULL };
	if (docker(line, sizeof(line), false, args) != 0)
		return DTX_EUNREACH;
	first_line(line);
	hx_compose_state st;
	memset(&st, 0, sizeof(st));
	snprintf(st.service, sizeof(st.service), "%s", c->service[id]);
	snprintf(st.container, sizeof(st.container), "%.12s", cid);
	char *save = NULL;
	char *w = strtok_r(line, " ", &save);
	snprintf(st.state, sizeof(st.state), "%s", w ? w : "unknown");
	w = strtok_r(NULL, " ", &save);
	snprintf(st.health, sizeof(st.health), "%s", w ? w : "none");
	w = strtok_r(NULL, " ", &save);
	snprintf(st.ip, sizeof(st.ip), "%s", w ? w : "");
	*out = st;
	return DTX_OK;
}

// True when ip is a dotted IPv4 address (so it is safe in a shell line).
static bool
ip_ok(const char *ip)
{
	if (ip[0] == '\0' || strlen(ip) > 15)
		return false;
	for (const char *p = ip; *p; p++)
		if (!((*p >= '0' && *p <= '9') || *p == '.'))
			return false;
	return true;
}

// Runs a shell line as root inside the container of id.
static dtx_err
exec_root(hx_compose *c, uint32_t id, const char *line)
{
	char cid[128];
	dtx_err rv = container_of(c, id, cid, sizeof(cid));
	if (rv != DTX_OK)
		return rv;
	const char *const args[] = { "exec", "-u", "0", cid, "sh", "-c", line,
		NULL };
	if (docker(NULL, 0, true, args) != 0) {
		DTX_LOG(DTX_LOG_WARN, "COMPOSE_FAIL", "in %s (%s): '%s' failed",
		    c->service[id], c->project, line);
		return DTX_EIO;
	}
	return DTX_OK;
}

dtx_err
hx_compose_partition(hx_compose *c, const hx_grudge *g)
{
	// Both directions of every pair: a refuses b when either names the
	// other in the grudge.
	uint32_t drop[DTX_TOPO_MAX];
	for (uint32_t a = 0; a < DTX_TOPO_MAX; a++) {
		drop[a] = g->drop[a];
		for (uint32_t b = 0; b < DTX_TOPO_MAX; b++)
			if (g->drop[b] & (UINT32_C(1) << a))
				drop[a] |= UINT32_C(1) << b;
	}
	hx_compose_state st[DTX_TOPO_MAX];
	bool have[DTX_TOPO_MAX] = { false };
	for (uint32_t id = 0; id < DTX_TOPO_MAX; id++)
		if (hx_compose_service(c, id) != NULL &&
		    hx_compose_status(c, id, &st[id]) == DTX_OK &&
		    ip_ok(st[id].ip))
			have[id] = true;
	dtx_err first = DTX_OK;
	for (uint32_t a = 0; a < DTX_TOPO_MAX; a++) {
		if (drop[a] == 0 || hx_compose_service(c, a) == NULL)
			continue;
		if (!have[a]) {
			// Not running: nothing to cut off now.
			DTX_LOG(DTX_LOG_WARN, "COMPOSE_SKIP",
			    "%s is not running: no partition rules for it",
			    c->service[a]);
			continue;
		}
		char line[4096];
		size_t len = 0;
		line[0] = '\0';
		for (uint32_t b = 0; b < DTX_TOPO_MAX; b++) {
			if (!(drop[a] & (UINT32_C(1) << b)) || !have[b])
				continue;
			int n = snprintf(line + len, sizeof(line) - len,
			    "%siptables -w 5 -A INPUT -s %s -j DROP && "
			    "iptables -w 5 -A OUTPUT -d %s -j DROP",
			    len ? " && " : "", st[b].ip, st[b].ip);
			if (n < 0 || (size_t)n >= sizeof(line) - len)
				return DTX_EINVAL;
			len += (size_t)n;
		}
		if (len == 0)
			continue;
		dtx_err rv = exec_root(c, a, line);
		if (rv != DTX_OK && first == DTX_OK)
			first = rv;
	}
	return first;
}

dtx_err
hx_compose_heal(hx_compose *c)
{
	dtx_err first = DTX_OK;
	for (uint32_t id = 0; id < DTX_TOPO_MAX; id++) {
		hx_compose_state st;
		if (hx_compose_service(c, id) == NULL ||
		    hx_compose_status(c, id, &st) != DTX_OK ||
		    strcmp(st.state, "running") != 0)
			continue; // a restarted container starts with no rules
		dtx_err rv = exec_root(
		    c, id, "iptables -w 5 -F INPUT && iptables -w 5 -F OUTPUT");
		if (rv != DTX_OK && first == DTX_OK)
			first = rv;
	}
	return first;
}

dtx_err
hx_compose_wait_healthy(hx_compose *c, uint64_t timeout_ms)
{
	uint64_t deadline = dtx_mono_ns() + timeout_ms * 1000000u;
	for (;;) {
		bool all = true;
		for (uint32_t id = 0; id < DTX_TOPO_MAX && all; id++) {
			hx_compose_state st;
			if (hx_compose_service(c, id) == NULL)
				continue;
			dtx_err rv = hx_compose_status(c, id, &st);
			if (rv == DTX_EINVAL || rv == DTX_ENOMEM)
				return rv;
			all = rv == DTX_OK &&
			    strcmp(st.state, "running") == 0 &&
			    (strcmp(st.health, "healthy") == 0 ||
			        strcmp(st.health, "none") == 0);
		}
		if (all)
			return DTX_OK;
		if (dtx_mono_ns() >= deadline)
			return DTX_ETIMEDOUT;
		dtx_sleep_ms(500);
	}
}
