// SPDX-License-Identifier: MIT
//
// Local clusters: lay out a cluster directory, start the daemons as
// detached processes, wait until they listen, signal them (kill, pause,
// resume), and stop them again, from this process or a later one. With
// netns, each daemon runs in its own network namespace (netns.c) and the
// file DIR/netns names the namespaces' prefix and subnet; DIR/log-level holds
// the daemons' --log-level, so a later process restarts them with it too.

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness_int.h"

extern char **environ;

struct hx_cluster {
	char dir[PATH_MAX];
	dtx_topo topo;
	int pid[DTX_TOPO_MAX];
	bool child[DTX_TOPO_MAX]; // started by this process (we reap it)
	char logbuf[PATH_MAX + 32];
	char databuf[PATH_MAX + 32];
	char log_level[16]; // "" leaves the daemons' default
	bool enable_faults; // the daemons run with --enable-faults
	bool tls; // tls+tcp:// links, certificates in DIR/certs
	bool netns;
	char prefix[HX_NETNS_PREFIX_MAX];
	char subnet[32]; // "a.b.c.d/len", "" when unknown
	// hx_cluster_set_env: entries added to every start's environment.
	char env[HX_CLUSTER_ENV_MAX][PATH_MAX + 32];
	char *envp[HX_CLUSTER_ENV_MAX + 1];
};

dtx_err
hx_cluster_set_env(hx_cluster *c, const char *const env[])
{
	size_t n = 0;
	while (env != NULL && env[n] != NULL)
		n++;
	if (n > HX_CLUSTER_ENV_MAX)
		return DTX_ERANGE;
	for (size_t i = 0; i < n; i++) {
		if (snprintf(c->env[i], sizeof(c->env[i]), "%s", env[i]) >=
		    (int)sizeof(c->env[i]))
			return DTX_ERANGE;
		c->envp[i] = c->env[i];
	}
	c->envp[n] = NULL;
	return DTX_OK;
}

static void
path_of(
    const hx_cluster *c, char *buf, size_t len, const char *fmt, uint32_t id)
{
	char rel[64];
	snprintf(rel, sizeof(rel), fmt, id);
	snprintf(buf, len, "%s/%s", c->dir, rel);
}

// Picks n distinct free TCP ports on host by binding port 0 for each and
// keeping all sockets open until every port is known.
static dtx_err
free_ports(const char *host, int *ports, uint32_t n)
{
	int fds[DTX_TOPO_MAX];
	dtx_err rv = DTX_OK;
	uint32_t i;
	for (i = 0; i < n; i++) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		socklen_t sl = sizeof(sa);
		if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
			rv = DTX_EINVAL;
			break;
		}
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[i] < 0 ||
		    bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
		    getsockname(fds[i], (struct sockaddr *)&sa, &sl) != 0) {
			rv = dtx_from_errno(errno);
			if (fds[i] >= 0)
				close(fds[i]);
			break;
		}
		ports[i] = ntohs(sa.sin_port);
	}
	while (i-- > 0)
		close(fds[i]);
	return rv;
}

static dtx_err
save_state(hx_cluster *c)
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/cluster.state", c->dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		return dtx_from_errno(errno);
	for (uint32_t i = 0; i < DTX_TOPO_MAX; i++)
		if (c->pid[i] > 0)
			fprintf(f, "%u %d\n", i, c->pid[i]);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return dtx_from_errno(errno);
	return DTX_OK;
}

// True when pid is alive and is a dtx daemon of this cluster (its command
// line names this cluster's directory), so a recycled pid is never killed.
static bool
pid_is_ours(const hx_cluster *c, int pid)
{
	char path[64], cmd[8192];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return false;
	for (ssize_t i = 0; i < n; i++)
		if (cmd[i] == '\0')
			cmd[i] = ' ';
	cmd[n] = '\0';
	// Only a daemon has "--topology DIR/topology" on its command line.
	char needle[PATH_MAX + 32];
	snprintf(needle, sizeof(needle), "--topology %s/topology", c->dir);
	return strstr(cmd, needle) != NULL && strstr(cmd, "dtx-") != NULL;
}

static void
load_state(hx_cluster *c)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/cluster.state", c->dir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	unsigned id;
	int pid;
	while (fscanf(f, "%u %d", &id, &pid) == 2)
		if (id < DTX_TOPO_MAX && pid > 0 && pid_is_ours(c, pid))
			c->pid[id] = pid;
	fclose(f);
}

// Returns a zeroed cluster for the canonical path of dir, or NULL with
// *rv set to why (never DTX_OK: a realpath failure that leaves errno 0
// still fails). Callers test the pointer, so it is set on every path.
static hx_cluster *
alloc_cluster(const char *dir, dtx_err *rv)
{
	hx_cluster *c = dtx_calloc(1, sizeof(*c));
	if (c == NULL) {
		*rv = DTX_ENOMEM;
		return NULL;
	}
	if (realpath(dir, c->dir) == NULL) {
		dtx_err e = dtx_from_errno(errno);
		*rv = e != DTX_OK ? e : DTX_EIO;
		dtx_free(c);
		return NULL;
	}
	return c;
}

// Writes text and a newline as the whole of file path: a setting of the
// cluster that each later open of its directory reads back.
static dtx_err
write_setting(const char *path, const char *text, char *err, size_t errlen)
{
	FILE *f = fopen(path, "w");
	if (f == NULL || fprintf(f, "%s\n", text) < 0 || fclose(f) != 0) {
		dtx_err rv = dtx_from_errno(errno);
		dtx_errf(err, errlen, "cannot write %s", path);
		return rv;
	}
	return DTX_OK;
}

// Records in DIR/enable-faults whether the daemons take FAULT requests,
// so that a cluster reopened by another command starts them the same way.
static dtx_err
save_faults(hx_cluster *c, bool on, char *err, size_t errlen)
{
	char path[PATH_MAX + 16];
	path_of(c, path, sizeof(path), "enable-faults", 0);
	c->enable_faults = on;
	if (on)
		return write_setting(path, "1", err, errlen);
	unlink(path);
	return DTX_OK;
}

// The prefix of the netns cluster that ran in absolute directory dir
// before, from DIR/netns; false when there is none.
static bool
read_netns_prefix(const char *dir, char *buf, size_t len)
{
	char path[PATH_MAX + 16], pre[HX_NETNS_PREFIX_MAX + 8];
	snprintf(path, sizeof(path), "%s/netns", dir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return false;
	bool ok = fscanf(f, "%23s", pre) == 1 && strlen(pre) < len &&
	    strncmp(pre, "dx", 2) == 0;
	fclose(f);
	if (ok)
		snprintf(buf, len, "%s", pre);
	return ok;
}

// Clears what an earlier netns cluster of c's directory left, draws this
// cluster's prefix and leases its subnet (opts->subnet, or a free one).
static dtx_err
netns_claim(hx_cluster *c, const hx_cluster_opts *opts, hx_subnet *sn,
    char *err, size_t errlen)
{
	char old[HX_NETNS_PREFIX_MAX];
	if (read_netns_prefix(c->dir, old, sizeof(old)))
		hx_netns_teardown(old);
	hx_netns_prefix_new(c->dir, c->prefix, sizeof(c->prefix));
	dtx_err rv =
	    hx_netns_claim(c->prefix, opts->subnet, NULL, sn, err, errlen);
	if (rv != DTX_OK)
		c->prefix[0] = '\0'; // nothing of ours to tear down
	return rv;
}

// Makes DIR/data/<id> for the n daemons, DIR/logs, DIR/topology and,
// for a TLS cluster, the certificates in DIR/certs.
static dtx_err
lay_out(hx_cluster *c, uint32_t n, char *err, size_t errlen)
{
	char path[PATH_MAX + 32];
	dtx_err rv = DTX_OK;
	for (uint32_t i = 0; i < n; i++) {
		path_of(c, path, sizeof(path), "data/%u", i);
		if ((rv = dtx_mkdir_p(path)) != DTX_OK)
			break;
	}
	path_of(c, path, sizeof(path), "logs", 0);
	if (rv == DTX_OK)
		rv = dtx_mkdir_p(path);
	path_of(c, path, sizeof(path), "topology", 0);
	if (rv == DTX_OK)
		rv = dtx_topo_save(&c->topo, path);
	if (rv != DTX_OK) {
		dtx_errf(err, errlen, "cannot lay out %s: %s", c->dir,
		    dtx_strerror(rv));
		return rv;
	}
	path_of(c, path, sizeof(path), "certs", 0);
	return c->tls ? hx_certs_ensure(path, &c->topo, err, errlen) : DTX_OK;
}

// The numbers of participants, coordinators and saga orchestrators of
// opts, checked: DTX_EINVAL with err set when out of range.
static dtx_err
node_counts(const hx_cluster_opts *opts, uint32_t *np, uint32_t *nco,
    uint32_t *nsg, char *err, size_t errlen)
{
	*np = opts->participants;
	*nco = opts->coordinators ? opts->coordinators : 1;
	*nsg = !opts->saga ? 0 : opts->sagas ? opts->sagas : 1;
	if (*np < 1 || *np > 16) {
		dtx_errf(
		    err, errlen, "participants must be 1 to 16, not %u", *np);
		return DTX_EINVAL;
	}
	if (*nco > HX_COORDINATORS_MAX || *nsg > HX_COORDINATORS_MAX) {
		dtx_errf(err, errlen,
		    "coordinators and saga orchestrators must be 1 to %d",
		    HX_COORDINATORS_MAX);
		return DTX_EINVAL;
	}
	if (*np + *nco + *nsg + 1 > DTX_TOPO_MAX) {
		dtx_errf(err, errlen, "%u nodes and a client exceed %d",
		    *np + *nco + *nsg, DTX_TOPO_MAX);
		return DTX_EINVAL;
	}
	return DTX_OK;
}

dtx_err
hx_cluster_create(
    const hx_cluster_opts *opts, hx_cluster **out, char *err, size_t errlen)
{
	const char *host = opts->host ? opts->host : "127.0.0.1";
	uint32_t np, nco, nsg;
	int ports[DTX_TOPO_MAX];
	hx_cluster *c;
	hx_subnet sn = { 0, 0 };
	dtx_err rv = node_counts(opts, &np, &nco, &nsg, err, errlen);
	if (rv != DTX_OK)
		return rv;
	uint32_t n = np + nco + nsg;
	if (opts->netns && (rv = hx_netns_check(err, errlen)) != DTX_OK)
		return rv;
	if ((rv = dtx_mkdir_p(opts->dir)) != DTX_OK) {
		dtx_errf(err, errlen, "cannot create %s: %s", opts->dir,
		    dtx_strerror(rv));
		return rv;
	}
	if ((c = alloc_cluster(opts->dir, &rv)) == NULL) {
		dtx_errf(err, errlen, "%s: %s", opts->dir, dtx_strerror(rv));
		return rv;
	}
	if (opts->netns) {
		if ((rv = netns_claim(c, opts, &sn, err, errlen)) != DTX_OK)
			goto fail;
		// Every daemon has its own address: one fixed port will do.
		for (uint32_t i = 0; i < n; i++)
			ports[i] = HX_NETNS_PORT;
	} else if ((rv = free_ports(host, ports, n)) != DTX_OK) {
		dtx_errf(err, errlen, "cannot find free ports on %s: %s", host,
		    dtx_strerror(rv));
		goto fail;
	}
	for (uint32_t i = 0; i < n; i++) {
		dtx_node *nd = &c->topo.nodes[i];
		nd->id = i;
		nd->role = i == 0   ? DTX_ROLE_COORDINATOR
		    : i <= np       ? DTX_ROLE_PARTICIPANT
		    : i <= np + nsg ? DTX_ROLE_SAGA
		                    : DTX_ROLE_COORDINATOR;
		const char *scheme = opts->insecure ? "tcp" : "tls+tcp";
		if (opts->netns) {
			char a[32];
			hx_subnet_host(&sn, 10 + i, a, sizeof(a));
			snprintf(nd->url, sizeof(nd->url), "%s://%s:%d", scheme,
			    a, ports[i]);
		} else
			snprintf(nd->url, sizeof(nd->url), "%s://%s:%d", scheme,
			    host, ports[i]);
		if (nd->role == DTX_ROLE_PARTICIPANT)
			c->topo.parts[c->topo.nparts++] = i;
	}
	c->topo.nodes[n].id = n;
	c->topo.nodes[n].role = DTX_ROLE_CLIENT;
	c->topo.n = n + 1;
	c->topo.max_id = n + 1;

	char path[PATH_MAX + 32];
	c->tls = !opts->insecure;
	if ((rv = lay_out(c, n, err, errlen)) != DTX_OK)
		goto fail;
	if ((rv = save_faults(c, opts->enable_faults, err, errlen)) != DTX_OK)
		goto fail;
	path_of(c, path, sizeof(path), "log-level", 0);
	if (opts->log_level != NULL) {
		dtx_log_level lv;
		if (dtx_log_level_parse(opts->log_level, &lv) != DTX_OK) {
			dtx_errf(err, errlen,
			    "log level '%s' is not debug, info, warn or error",
			    opts->log_level);
			rv = DTX_EINVAL;
			goto fail;
		}
		snprintf(
		    c->log_level, sizeof(c->log_level), "%s", opts->log_level);
		if ((rv = write_setting(path, c->log_level, err, errlen)) !=
		    DTX_OK)
			goto fail;
	} else {
		unlink(path);
	}
	path_of(c, path, sizeof(path), "netns", 0);
	if (opts->netns) {
		char line[HX_NETNS_PREFIX_MAX + 48], cidr[32];
		hx_subnet_format(&sn, cidr, sizeof(cidr));
		snprintf(line, sizeof(line), "%s %s", c->prefix, cidr);
		snprintf(c->subnet, sizeof(c->subnet), "%s", cidr);
		if ((rv = write_setting(path, line, err, errlen)) != DTX_OK ||
		    (rv = hx_netns_setup(
		         c->prefix, &sn, &c->topo, err, errlen)) != DTX_OK)
			goto fail;
		c->netns = true;
	} else {
		unlink(path);
	}
	*out = c;
	return DTX_OK;
fail:
	// Whatever part of the namespaces was made, and the subnet lease.
	if (c->prefix[0] != '\0')
		hx_netns_teardown(c->prefix);
	dtx_free(c);
	return rv;
}

dtx_err
hx_cluster_open(const char *dir, hx_cluster **out, char *err, size_t errlen)
{
	char path[PATH_MAX + 32], terr[256];
	dtx_err rv;
	hx_cluster *c = alloc_cluster(dir, &rv);
	if (c == NULL) {
		dtx_errf(err, errlen, "%s: %s", dir, dtx_strerror(rv));
		return rv;
	}
	path_of(c, path, sizeof(path), "topology", 0);
	rv = dtx_topo_load(path, &c->topo, terr, sizeof(terr));
	if (rv != DTX_OK) {
		dtx_errf(err, errlen, "%s is not a cluster directory (%s)", dir,
		    terr);
		dtx_free(c);
		return rv;
	}
	load_state(c);
	for (uint32_t i = 0; i < c->topo.n; i++)
		c->tls |= strncmp(c->topo.nodes[i].url, "tls+tcp://", 10) == 0;
	path_of(c, path, sizeof(path), "enable-faults", 0);
	c->enable_faults = access(path, F_OK) == 0;
	path_of(c, path, sizeof(path), "log-level", 0);
	FILE *f = fopen(path, "r");
	if (f != NULL) {
		char lv[sizeof(c->log_level)];
		dtx_log_level l;
		if (fscanf(f, "%15s", lv) == 1 &&
		    dtx_log_level_parse(lv, &l) == DTX_OK)
			snprintf(c->log_level, sizeof(c->log_level), "%s", lv);
		fclose(f);
	}
	path_of(c, path, sizeof(path), "netns", 0);
	f = fopen(path, "r");
	if (f != NULL) {
		char pre[HX_NETNS_PREFIX_MAX + 8], sub[32];
		int got = fscanf(f, "%23s %31s", pre, sub);
		if (got >= 1 && strlen(pre) < sizeof(c->prefix)) {
			snprintf(c->prefix, sizeof(c->prefix), "%s", pre);
			c->netns = true;
		}
		if (got == 2)
			snprintf(c->subnet, sizeof(c->subnet), "%s", sub);
		fclose(f);
	}
	*out = c;
	return DTX_OK;
}

bool
hx_cluster_is_tls(const hx_cluster *c)
{
	return c->tls;
}

bool
hx_cluster_is_netns(const hx_cluster *c)
{
	return c->netns;
}

const char *
hx_cluster_netns_prefix(const hx_cluster *c)
{
	return c->prefix;
}

const char *
hx_cluster_netns_subnet(const hx_cluster *c)
{
	return c->subnet;
}

void
hx_cluster_free(hx_cluster *c)
{
	dtx_free(c);
}

const dtx_topo *
hx_cluster_topo(const hx_cluster *c)
{
	return &c->topo;
}

const char *
hx_cluster_dir(const hx_cluster *c)
{
	return c->dir;
}

const char *
hx_cluster_log(hx_cluster *c, uint32_t id)
{
	path_of(c, c->logbuf, sizeof(c->logbuf), "logs/%u.log", id);
	return c->logbuf;
}

const char *
hx_cluster_data(hx_cluster *c, uint32_t id)
{
	path_of(c, c->databuf, sizeof(c->databuf), "data/%u", id);
	return c->databuf;
}

// Finds the daemon binary for a role (see harness.h for the search order).
static dtx_err
find_daemon(dtx_role role, char *buf, size_t len)
{
	const char *comp = role == DTX_ROLE_COORDINATOR ? "coordinator"
	    : role == DTX_ROLE_PARTICIPANT              ? "participant"
	                                                : "saga";
	char self[PATH_MAX];
	const char *env = getenv("DTX_BIN_DIR");
	if (env != NULL) {
		snprintf(buf, len, "%s/dtx-%s", env, comp);
		if (access(buf, X_OK) == 0)
			return DTX_OK;
	}
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return DTX_ENOENT;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash == NULL)
		return DTX_ENOENT;
	*slash = '\0';
	snprintf(buf, len, "%s/dtx-%s", self, comp);
	if (access(buf, X_OK) == 0)
		return DTX_OK;
	// In a build tree: <build>/<comp>/dtx-<comp>, the running program
	// being one to three folders below <build>.
	for (int up = 0; up < 3; up++) {
		snprintf(buf, len, "%s/%s/dtx-%s", self, comp, comp);
		if (access(buf, X_OK) == 0)
			return DTX_OK;
		slash = strrchr(self, '/');
		if (slash == NULL || slash == self)
			break;
		*slash = '\0';
	}
	return DTX_ENOENT;
}

// Reaps node id if it was our child and has exited; true if it is alive.
static bool
alive(hx_cluster *c, uint32_t id)
{
	int pid = c->pid[id];
	if (pid <= 0)
		return false;
	if (c->child[id]) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			c->pid[id] = 0;
			c->child[id] = false;
			return false;
		}
		return true;
	}
	if (kill(pid, 0) != 0 && errno == ESRCH) {
		c->pid[id] = 0;
		return false;
	}
	return true;
}

int
hx_cluster_pid(hx_cluster *c, uint32_t id)
{
	return id < DTX_TOPO_MAX && alive(c, id) ? c->pid[id] : 0;
}

// "HOST:0" for a node whose URL is tcp://HOST:PORT (its own address, so
// that a node in a network namespace serves where the host can reach
// it); "127.0.0.1:0" for any other URL.
static void
http_addr(const char *url, char *buf, size_t len)
{
	const char *h = hx_url_hostport(url);
	const char *colon = h != NULL ? strrchr(h, ':') : NULL;
	if (colon == NULL || colon == h)
		snprintf(buf, len, "127.0.0.1:0");
	else
		snprintf(buf, len, "%.*s:0", (int)(colon - h), h);
}

// Puts node nd's trust flags into out (pointing into a) and returns how
// many: mutual TLS with its certificate from DIR/certs, or --insecure
// (plaintext links, which the daemon announces in its log and HEALTH).
static size_t
tls_argv(hx_cluster *c, const dtx_node *nd, hx_daemon_args *a, char **out)
{
	static char insecure[] = "--insecure", ca[] = "--tls-ca",
	            crt[] = "--tls-cert", key[] = "--tls-key",
	            secure[] = "--insecure=false";
	char dir[PATH_MAX + 16];
	if (!c->tls) {
		out[0] = insecure;
		return 1;
	}
	path_of(c, dir, sizeof(dir), "certs", 0);
	hx_certs_paths(dir, PROTO_ROLE_NONE, 0, a->ca, a->cakey, sizeof(a->ca));
	hx_certs_paths(dir, hx_proto_role(nd->role), nd->id, a->crt, a->key,
	    sizeof(a->crt));
	// A TLS cluster's daemons take no --insecure from the environment
	// (the two exclude each other).
	char *v[] = { secure, ca, a->ca, crt, a->crt, key, a->key };
	memcpy(out, v, sizeof(v));
	return sizeof(v) / sizeof(v[0]);
}

dtx_err
hx_cluster_daemon_args(hx_cluster *c, uint32_t id, hx_daemon_args *a)
{
	static char nodeid[] = "--node-id", topo[] = "--topology",
	            data[] = "--data", http[] = "--http",
	            faults[] = "--enable-faults", level[] = "--log-level";
	const dtx_node *nd = dtx_topo_find(&c->topo, id);
	memset(a, 0, sizeof(*a));
	if (nd == NULL || nd->role == DTX_ROLE_CLIENT)
		return DTX_EINVAL;
	if (find_daemon(nd->role, a->bin, sizeof(a->bin)) != DTX_OK) {
		DTX_LOG(DTX_LOG_ERROR, "CLUSTER_NOBIN",
		    "cannot find dtx-%s (set DTX_BIN_DIR)",
		    dtx_role_name(nd->role));
		return DTX_ENOENT;
	}
	path_of(c, a->data, sizeof(a->data), "data/%u", id);
	path_of(c, a->topo, sizeof(a->topo), "topology", 0);
	snprintf(a->id, sizeof(a->id), "%u", id);
	snprintf(a->level, sizeof(a->level), "%s", c->log_level);
	// Each daemon serves /metrics, /livez and /readyz on a free port of
	// its own address (written to DATA/http.addr).
	http_addr(nd->url, a->http, sizeof(a->http));
	char *v[] = { a->bin, nodeid, a->id, topo, a->topo, data, a->data, http,
		a->http };
	size_t n = sizeof(v) / sizeof(v[0]);
	memcpy(a->argv, v, sizeof(v));
	n += tls_argv(c, nd, a, a->argv + n);
	if (c->enable_faults)
		a->argv[n++] = faults;
	if (a->level[0] != '\0') {
		a->argv[n++] = level;
		a->argv[n++] = a->level;
	}
	a->argv[n] = NULL;
	a->argc = (int)n;
	return DTX_OK;
}

// Starts node id's daemon with a's command line, its output appended to
// logp.
static dtx_err
spawn(hx_cluster *c, uint32_t id, char *const env[], hx_daemon_args *a,
    const char *logp)
{
	// The cluster's own entries (hx_cluster_set_env) come after the
	// call's, which override them.
	char *both[32];
	size_t nb = 0;
	for (size_t i = 0; env != NULL && env[i] != NULL && nb < 16; i++)
		both[nb++] = env[i];
	for (size_t i = 0; c->envp[i] != NULL; i++)
		both[nb++] = c->envp[i];
	both[nb] = NULL;
	env = both;
	// Build the environment before fork: the child only execs.
	size_t nenv = 0, nextra = 0;
	while (environ[nenv] != NULL)
		nenv++;
	while (env != NULL && env[nextra] != NULL)
		nextra++;
	char **envp = dtx_calloc(nenv + nextra + 1, sizeof(char *));
	if (envp == NULL)
		return DTX_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < nextra; i++)
		envp[k++] = env[i];
	for (size_t i = 0; i < nenv; i++) {
		// Extra entries override inherited ones of the same name.
		const char *eq = strchr(environ[i], '=');
		size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		bool dup = false;
		for (size_t j = 0; j < nextra && !dup; j++)
			dup = strncmp(env[j], environ[i], nl) == 0 &&
			    env[j][nl] == '=';
		if (!dup)
			envp[k++] = environ[i];
	}
	envp[k] = NULL;
	char nsname[HX_NETNS_PREFIX_MAX + 16],
	    ipbin[] = "ip", netnsw[] = "netns", execw[] = "exec";
	snprintf(nsname, sizeof(nsname), "%s-%u", c->prefix, id);
	char *argv[4 + HX_DAEMON_ARGV_MAX] = { ipbin, netnsw, execw, nsname };
	memcpy(argv + 4, a->argv, sizeof(a->argv));
	char **av = c->netns ? argv : argv + 4;
	const char *bin = a->bin;
	char ippath[3][32] = { "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip" };
	int logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (logfd < 0) {
		dtx_err rv = dtx_from_errno(errno);
		dtx_free(envp);
		return rv;
	}
	pid_t pid = fork();
	if (pid < 0) {
		dtx_err rv = dtx_from_errno(errno);
		close(logfd);
		dtx_free(envp);
		return rv;
	}
	if (pid == 0) {
		// A caller that takes its signals on a thread (dtx bank) has
		// them blocked; the daemon starts with none blocked.
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setsid();
		int nullfd = open("/dev/null", O_RDONLY);
		if (nullfd >= 0)
			dup2(nullfd, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		if (c->netns)
			for (int i = 0; i < 3; i++)
				execve(ippath[i], av, envp);
		else
			execve(bin, av, envp);
		_exit(127);
	}
	close(logfd);
	dtx_free(envp);
	c->pid[id] = pid;
	c->child[id] = true;
	return save_state(c);
}

dtx_err
hx_cluster_start(hx_cluster *c, uint32_t id, char *const env[])
{
	char logp[PATH_MAX + 32];
	hx_daemon_args *a = dtx_alloc(sizeof(*a));
	if (a == NULL)
		return DTX_ENOMEM;
	// The node's command line first: it refuses an id the topology
	// does not have, before alive() looks it up.
	dtx_err rv = hx_cluster_daemon_args(c, id, a);
	if (rv == DTX_OK && alive(c, id))
		rv = DTX_EEXIST;
	if (rv != DTX_OK) {
		dtx_free(a);
		return rv;
	}
	path_of(c, logp, sizeof(logp), "logs/%u.log", id);
	rv = spawn(c, id, env, a, logp);
	dtx_free(a);
	return rv;
}

static bool
can_connect(const char *url)
{
	int fd = -1;
	bool ok = false;
	const char *hp = hx_url_hostport(url);
	if (hp != NULL) {
		char host[256];
		const char *colon = strrchr(hp, ':');
		if (colon == NULL || (size_t)(colon - hp) >= sizeof(host))
			return false;
		memcpy(host, hp, (size_t)(colon - hp));
		host[colon - hp] = '\0';
		struct sockaddr_in sa = { .sin_family = AF_INET,
			.sin_port = htons((uint16_t)atoi(colon + 1)) };
		if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
			return false;
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ok = fd >= 0 &&
		    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	} else if (strncmp(url, "ipc://", 6) == 0) {
		struct sockaddr_un su = { .sun_family = AF_UNIX };
		if (strlen(url + 6) >= sizeof(su.sun_path))
			return false;
		strcpy(su.sun_path, url + 6);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ok = fd >= 0 &&
		    connect(fd, (struct sockaddr *)&su, sizeof(su)) == 0;
	}
	if (fd >= 0)
		close(fd);
	return ok;
}

dtx_err
hx_cluster_wait_ready(hx_cluster *c, uint32_t id, uint64_t timeout_ms)
{
	const dtx_node *nd = dtx_topo_find(&c->topo, id);
	if (nd == NULL)
		return DTX_EINVAL;
	uint64_t deadline = dtx_mono_ns() + timeout_ms * 1000000u;
	for (;;) {
		if (!alive(c, id))
			return DTX_ECLOSED;
		if (can_connect(nd->url))
			return DTX_OK;
		if (dtx_mono_ns() > deadline)
			return DTX_ETIMEDOUT;
		dtx_sleep_ms(10);
	}
}

dtx_err
hx_cluster_start_all(hx_cluster *c, uint64_t timeout_ms)
{
	dtx_err rv;
	for (uint32_t i = 0; i < c->topo.n; i++) {
		const dtx_node *nd = &c->topo.nodes[i];
		if (nd->role == DTX_ROLE_CLIENT || alive(c, nd->id))
			continue;
		if ((rv = hx_cluster_start(c, nd->id, NULL)) != DTX_OK)
			return rv;
	}
	for (uint32_t i = 0; i < c->topo.n; i++) {
		const dtx_node *nd = &c->topo.nodes[i];
		if (nd->role == DTX_ROLE_CLIENT)
			continue;
		rv = hx_cluster_wait_ready(c, nd->id, timeout_ms);
		if (rv != DTX_OK)
			return rv;
	}
	return DTX_OK;
}

dtx_err
hx_cluster_signal(hx_cluster *c, uint32_t id, int sig)
{
	if (id >= DTX_TOPO_MAX || !alive(c, id))
		return DTX_ENOENT;
	if (kill(c->pid[id], sig) != 0)
		return dtx_from_errno(errno);
	if (sig == SIGKILL) {
		if (c->child[id])
			waitpid(c->pid[id], NULL, 0);
		c->pid[id] = 0;
		c->child[id] = false;
		return save_state(c);
	}
	return DTX_OK;
}

dtx_err
hx_cluster_wait_exit(
    hx_cluster *c, uint32_t id, uint64_t timeout_ms, int *status)
{
	if (id >= DTX_TOPO_MAX || c->pid[id] <= 0)
		return DTX_ENOENT;
	uint64_t deadline = dtx_mono_ns() + timeout_ms * 1000000u;
	for (;;) {
		int st = 0;
		if (c->child[id]) {
			if (waitpid(c->pid[id], &st, WNOHANG) == c->pid[id]) {
				if (status != NULL)
					*status = st;
				break;
			}
		} else if (kill(c->pid[id], 0) != 0 && errno == ESRCH) {
			break;
		}
		if (dtx_mono_ns() > deadline)
			return DTX_ETIMEDOUT;
		dtx_sleep_ms(5);
	}
	c->pid[id] = 0;
	c->child[id] = false;
	return save_state(c);
}

// SIGKILLs every process whose command line names a dtx daemon and dir
// (a daemon whose state entry was lost); returns how many.
static int
kill_strays(const char *dir, bool verbose)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;
	hx_cluster probe;
	if (d == NULL)
		return 0;
	snprintf(probe.dir, sizeof(probe.dir), "%s", dir);
	while ((e = readdir(d)) != NULL) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end != '\0' || pid <= 1 || pid == (long)getpid())
			continue;
		if (!pid_is_ours(&probe, (int)pid))
			continue;
		kill((pid_t)pid, SIGCONT);
		if (kill((pid_t)pid, SIGKILL) == 0) {
			n++;
			if (verbose)
				fprintf(
				    stderr, "killed stray daemon %ld\n", pid);
		}
	}
	closedir(d);
	return n;
}

dtx_err
hx_cluster_stop_all(hx_cluster *c, uint64_t grace_ms)
{
	for (uint32_t i = 0; i < DTX_TOPO_MAX; i++) {
		if (!alive(c, i))
			continue;
		kill(c->pid[i], SIGCONT);
		kill(c->pid[i], SIGTERM);
	}
	uint64_t deadline = dtx_mono_ns() + grace_ms * 1000000u;
	for (;;) {
		bool any = false;
		for (uint32_t i = 0; i < DTX_TOPO_MAX; i++)
			any |= alive(c, i);
		if (!any || dtx_mono_ns() > deadline)
			break;
		dtx_sleep_ms(10);
	}
	for (uint32_t i = 0; i < DTX_TOPO_MAX; i++)
		if (alive(c, i))
			hx_cluster_signal(c, i, SIGKILL);
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/cluster.state", c->dir);
	unlink(path);
	kill_strays(c->dir, false);
	if (c->netns)
		hx_netns_teardown(c->prefix);
	return DTX_OK;
}

void
hx_cluster_stop_dir(const char *dir, bool verbose)
{
	char abs[PATH_MAX], prefix[HX_NETNS_PREFIX_MAX];
	if (realpath(dir, abs) == NULL)
		snprintf(abs, sizeof(abs), "%s", dir);
	int n = kill_strays(abs, verbose);
	if (verbose && n > 0)
		fprintf(stderr, "dtx cluster stop: killed %d daemon(s) of %s\n",
		    n, abs);
	// The prefix DIR/netns names, and the one an older dtx derived from
	// the directory alone.
	for (int i = 0; i < 2 && geteuid() == 0; i++) {
		if (i == 0 && !read_netns_prefix(abs, prefix, sizeof(prefix)))
			continue;
		if (i == 1)
			hx_netns_prefix(dir, prefix, sizeof(prefix));
		int r = hx_netns_teardown(prefix);
		if (verbose && r > 0)
			fprintf(stderr,
			    "dtx cluster stop: removed %d network object(s) "
			    "named %s*\n",
			    r, prefix);
	}
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/cluster.state", abs);
	unlink(path);
}
