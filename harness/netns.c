// SPDX-License-Identifier: MIT
//
// Network namespaces for local clusters: one namespace per daemon, joined
// by veth pairs to a bridge in the root namespace, so that partitions can
// be made with real packet drops (iptables inside the namespaces), and
// everything named with the run's own prefix on the run's own subnet
// (subnet.c) so it can always be found and removed again without touching
// another run's.

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness_int.h"

static void
seterr(char *err, size_t errlen, const char *msg, const char *arg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, msg, arg);
}

int
hx_run(const char *const argv[], char *out, size_t outlen, bool quiet)
{
	int pfd[2] = { -1, -1 };
	if (out != NULL && outlen > 0) {
		out[0] = '\0';
		if (pipe2(pfd, O_CLOEXEC) != 0)
			return -1;
	}
	// Everything the child needs is prepared before fork: other threads
	// may hold locks the child would otherwise wait on forever.
	char p1[PATH_MAX], p2[PATH_MAX];
	snprintf(p1, sizeof(p1), "/usr/sbin/%s", argv[0]);
	snprintf(p2, sizeof(p2), "/sbin/%s", argv[0]);
	pid_t pid = fork();
	if (pid < 0) {
		if (pfd[0] >= 0) {
			close(pfd[0]);
			close(pfd[1]);
		}
		return -1;
	}
	if (pid == 0) {
		// Its own process group, so a Ctrl-C meant for dtx does not
		// cut a network change in half; and none of the signals a
		// caller may have blocked for its own handling.
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setpgid(0, 0);
		int nullfd = open("/dev/null", O_RDWR);
		if (nullfd >= 0) {
			dup2(nullfd, 0);
			if (pfd[1] < 0)
				dup2(nullfd, 1);
			if (quiet)
				dup2(nullfd, 2);
		}
		if (pfd[1] >= 0)
			dup2(pfd[1], 1);
		execvp(argv[0], (char *const *)argv);
		execv(p1, (char *const *)argv);
		execv(p2, (char *const *)argv);
		_exit(127);
	}
	if (pfd[1] >= 0) {
		close(pfd[1]);
		size_t len = 0;
		for (;;) {
			char tmp[4096];
			ssize_t r = read(pfd[0], tmp, sizeof(tmp));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			size_t take = (size_t)r;
			if (len + take >= outlen)
				take = outlen - 1 - len;
			memcpy(out + len, tmp, take);
			len += take;
		}
		out[len] = '\0';
		close(pfd[0]);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st) == 127 ? -1 : WEXITSTATUS(st);
}

void
hx_netns_prefix(const char *dir, char *buf, size_t len)
{
	char abs[PATH_MAX];
	if (realpath(dir, abs) == NULL) {
		// Gone already: the absolute form of the path as given.
		char cwd[PATH_MAX];
		if (dir[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
			snprintf(abs, sizeof(abs), "%s", dir);
		else
			snprintf(abs, sizeof(abs), "%s/%s", cwd, dir);
	}
	uint32_t crc = dtx_crc32c(0, abs, strlen(abs));
	snprintf(buf, len, "dx%06x", (unsigned)(crc & 0xffffffu));
}

void
hx_netns_prefix_new(const char *dir, char *buf, size_t len)
{
	char abs[PATH_MAX];
	hx_netns_prefix(dir, abs, sizeof(abs)); // only to fold dir in
	uint64_t salt[2] = { (uint64_t)getpid(), dtx_wall_ns() };
	uint32_t crc = dtx_crc32c(0, abs, strlen(abs));
	crc = dtx_crc32c(crc, salt, sizeof(salt));
	snprintf(buf, len, "dx%06x", (unsigned)(crc & 0xffffffu));
}

static void
ns_name(const char *prefix, uint32_t id, char *buf, size_t len)
{
	snprintf(buf, len, "%s-%u", prefix, id);
}

// The address of node id: the host of its topology URL ("tcp://A:port"),
// which hx_cluster_create put in the run's subnet. "" when it has none.
static void
node_addr(const dtx_topo *topo, uint32_t id, char *buf, size_t len)
{
	const dtx_node *nd = dtx_topo_find(topo, id);
	buf[0] = '\0';
	if (nd == NULL || strncmp(nd->url, "tcp://", 6) != 0)
		return;
	const char *host = nd->url + 6, *colon = strrchr(host, ':');
	if (colon != NULL && (size_t)(colon - host) < len)
		snprintf(buf, len, "%.*s", (int)(colon - host), host);
}

dtx_err
hx_netns_check(char *err, size_t errlen)
{
	if (geteuid() != 0) {
		seterr(err, errlen,
		    "--netns needs root (network namespaces, veths and "
		    "iptables rules)%s",
		    "");
		return DTX_EPERM;
	}
	const char *ipv[] = { "ip", "netns", "list", NULL };
	if (hx_run(ipv, NULL, 0, true) != 0) {
		seterr(
		    err, errlen, "--netns needs \"ip netns\" (iproute2)%s", "");
		return DTX_ENOENT;
	}
	const char *ipt[] = { "iptables", "--version", NULL };
	if (hx_run(ipt, NULL, 0, true) != 0) {
		seterr(err, errlen, "--netns needs iptables%s", "");
		return DTX_ENOENT;
	}
	return DTX_OK;
}

// Runs a command built from a NULL-terminated list of words; a failure
// is reported in err with the command's first words.
static dtx_err
step(char *err, size_t errlen, const char *const argv[])
{
	if (hx_run(argv, NULL, 0, true) == 0)
		return DTX_OK;
	char what[256] = "";
	size_t len = 0;
	for (int i = 0; argv[i] != NULL && len < sizeof(what) - 2; i++)
		len += (size_t)snprintf(what + len, sizeof(what) - len, "%s%s",
		    i ? " " : "", argv[i]);
	seterr(err, errlen, "netns setup failed at: %s", what);
	return DTX_EIO;
}

static void
fwd_rule(const char *prefix, char *br, size_t brlen, char *tag, size_t taglen)
{
	snprintf(br, brlen, "%sbr", prefix);
	snprintf(tag, taglen, "dtx:%s", prefix);
}

dtx_err
hx_netns_setup(const char *prefix, const hx_subnet *sn, const dtx_topo *topo,
    char *err, size_t errlen)
{
	char br[32], tag[32], braddr[40];
	dtx_err rv;
	fwd_rule(prefix, br, sizeof(br), tag, sizeof(tag));
	hx_subnet_host(sn, 1, braddr, sizeof(braddr));
	snprintf(braddr + strlen(braddr), sizeof(braddr) - strlen(braddr),
	    "/%u", sn->len);

	const char *mkbr[] = { "ip", "link", "add", br, "type", "bridge",
		NULL };
	const char *addbr[] = { "ip", "addr", "add", braddr, "dev", br, NULL };
	const char *upbr[] = { "ip", "link", "set", br, "up", NULL };
	// With br_netfilter loaded, bridged packets cross the root
	// namespace's FORWARD chain, whose policy may be DROP (Docker).
	const char *fwd[] = { "iptables", "-I", "FORWARD", "-i", br, "-o", br,
		"-m", "comment", "--comment", tag, "-j", "ACCEPT", NULL };
	if ((rv = step(err, errlen, mkbr)) != DTX_OK ||
	    (rv = step(err, errlen, addbr)) != DTX_OK ||
	    (rv = step(err, errlen, upbr)) != DTX_OK ||
	    (rv = step(err, errlen, fwd)) != DTX_OK)
		return rv;
	for (uint32_t i = 0; i < topo->n; i++) {
		const dtx_node *nd = &topo->nodes[i];
		if (nd->role == DTX_ROLE_CLIENT)
			continue;
		char ns[32], h[32], c[32], addr[32], cidr[40];
		ns_name(prefix, nd->id, ns, sizeof(ns));
		snprintf(h, sizeof(h), "%sh%u", prefix, nd->id);
		snprintf(c, sizeof(c), "%sc%u", prefix, nd->id);
		node_addr(topo, nd->id, addr, sizeof(addr));
		snprintf(cidr, sizeof(cidr), "%s/%u", addr, sn->len);
		const char *a1[] = { "ip", "netns", "add", ns, NULL };
		const char *a2[] = { "ip", "link", "add", h, "type", "veth",
			"peer", "name", c, NULL };
		const char *a3[] = { "ip", "link", "set", c, "netns", ns,
			NULL };
		const char *a4[] = { "ip", "link", "set", h, "master", br, "up",
			NULL };
		const char *a5[] = { "ip", "-n", ns, "addr", "add", cidr, "dev",
			c, NULL };
		const char *a6[] = { "ip", "-n", ns, "link", "set", c, "up",
			NULL };
		const char *a7[] = { "ip", "-n", ns, "link", "set", "lo", "up",
			NULL };
		const char *const *steps[] = { a1, a2, a3, a4, a5, a6, a7 };
		for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++)
			if ((rv = step(err, errlen, steps[s])) != DTX_OK)
				return rv;
	}
	return DTX_OK;
}

int
hx_netns_teardown(const char *prefix)
{
	static char out[65536];
	static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
	char br[32], tag[32], lead[32];
	int removed = 0;
	fwd_rule(prefix, br, sizeof(br), tag, sizeof(tag));
	snprintf(lead, sizeof(lead), "%s-", prefix);

	pthread_mutex_lock(&mtx);
	const char *list[] = { "ip", "netns", "list", NULL };
	if (hx_run(list, out, sizeof(out), true) == 0) {
		char *save = NULL;
		for (char *line = strtok_r(out, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			char ns[64];
			if (sscanf(line, "%63s", ns) != 1 ||
			    strncmp(ns, lead, strlen(lead)) != 0)
				continue;
			char pids[4096];
			const char *pv[] = { "ip", "netns", "pids", ns, NULL };
			if (hx_run(pv, pids, sizeof(pids), true) == 0) {
				char *s2 = NULL;
				for (char *p = strtok_r(pids, "\n", &s2);
				     p != NULL; p = strtok_r(NULL, "\n", &s2)) {
					long pid = strtol(p, NULL, 10);
					if (pid > 1 && pid != (long)getpid()) {
						kill((pid_t)pid, SIGCONT);
						kill((pid_t)pid, SIGKILL);
					}
				}
			}
			const char *del[] = { "ip", "netns", "del", ns, NULL };
			if (hx_run(del, NULL, 0, true) == 0)
				removed++;
		}
	}
	// Host-side veth ends normally vanish with their namespace; remove
	// any left, then the bridge.
	const char *links[] = { "ip", "-o", "link", "show", NULL };
	if (hx_run(links, out, sizeof(out), true) == 0) {
		char *save = NULL;
		for (char *line = strtok_r(out, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			char name[64];
			// "12: dx123456h1@if11: <...>"
			if (sscanf(line, "%*d: %63[^:@ ]", name) != 1 ||
			    strncmp(name, prefix, strlen(prefix)) != 0 ||
			    strcmp(name, br) == 0)
				continue;
			const char *del[] = { "ip", "link", "del", name, NULL };
			if (hx_run(del, NULL, 0, true) == 0)
				removed++;
		}
	}
	const char *delbr[] = { "ip", "link", "del", br, NULL };
	if (hx_run(delbr, NULL, 0, true) == 0)
		removed++;
	const char *unfwd[] = { "iptables", "-D", "FORWARD", "-i", br, "-o", br,
		"-m", "comment", "--comment", tag, "-j", "ACCEPT", NULL };
	for (int i = 0; i < 16 && hx_run(unfwd, NULL, 0, true) == 0; i++)
		removed++;
	hx_netns_release(prefix, NULL);
	pthread_mutex_unlock(&mtx);
	return removed;
}

// Adds DROP rules for g inside the namespaces of topo's nodes: for each
// pair a -> b, a's OUTPUT to b, and with inputs also a's INPUT from b.
// DTX_EIO when a rule could not be added (after trying every pair).
static dtx_err
drop_rules(
    const char *prefix, const dtx_topo *topo, const hx_grudge *g, bool inputs)
{
	dtx_err rv = DTX_OK;
	for (uint32_t a = 0; a < DTX_TOPO_MAX; a++) {
		if (g->drop[a] == 0 || dtx_topo_find(topo, a) == NULL)
			continue;
		char ns[32];
		ns_name(prefix, a, ns, sizeof(ns));
		for (uint32_t b = 0; b < DTX_TOPO_MAX; b++) {
			if (!(g->drop[a] & (1u << b)))
				continue;
			char addr[32];
			node_addr(topo, b, addr, sizeof(addr));
			if (addr[0] == '\0') {
				rv = DTX_EINVAL;
				continue;
			}
			const char *in[] = { "ip", "netns", "exec", ns,
				"iptables", "-A", "INPUT", "-s", addr, "-j",
				"DROP", NULL };
			const char *outr[] = { "ip", "netns", "exec", ns,
				"iptables", "-A", "OUTPUT", "-d", addr, "-j",
				"DROP", NULL };
			if ((inputs && hx_run(in, NULL, 0, true) != 0) ||
			    hx_run(outr, NULL, 0, true) != 0)
				rv = DTX_EIO;
		}
	}
	return rv;
}

dtx_err
hx_netns_partition(const char *prefix, const dtx_topo *topo, const hx_grudge *g)
{
	return drop_rules(prefix, topo, g, true);
}

dtx_err
hx_netns_cut_sends(const char *prefix, const dtx_topo *topo, const hx_grudge *g)
{
	return drop_rules(prefix, topo, g, false);
}

dtx_err
hx_netns_heal(const char *prefix, const dtx_topo *topo)
{
	dtx_err rv = DTX_OK;
	for (uint32_t i = 0; i < topo->n; i++) {
		const dtx_node *nd = &topo->nodes[i];
		if (nd->role == DTX_ROLE_CLIENT)
			continue;
		char ns[32];
		ns_name(prefix, nd->id, ns, sizeof(ns));
		const char *fl[] = { "ip", "netns", "exec", ns, "iptables",
			"-F", NULL };
		if (hx_run(fl, NULL, 0, true) != 0)
			rv = DTX_EIO;
	}
	return rv;
}

// ---------------------------------------------------------------- packets

// Runs iptables or tc (argv from its third word on) inside node id's
// namespace; 0 when it succeeded.
static int
in_ns(const char *prefix, uint32_t id, const char *const *args, char *out,
    size_t outlen)
{
	char ns[32];
	const char *argv[24] = { "ip", "netns", "exec", ns };
	size_t k = 4;
	ns_name(prefix, id, ns, sizeof(ns));
	for (size_t i = 0; args[i] != NULL && k < 23; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	return hx_run(argv, out, outlen, true);
}

dtx_err
hx_netns_packet(const char *prefix, const dtx_topo *topo, uint32_t id,
    uint32_t loss_pct, uint32_t dup_pct)
{
	char dev[32], lp[16], dp[16];
	dtx_err rv = DTX_OK;
	snprintf(dev, sizeof(dev), "%sc%u", prefix, id);
	snprintf(lp, sizeof(lp), "%.4f", loss_pct / 100.0);
	snprintf(dp, sizeof(dp), "%.4f", dup_pct / 100.0);
	// Loss both ways on the node's link (the mangle table: a partition's
	// rules live in the filter table and heal on their own).
	const char *out[] = { "iptables", "-t", "mangle", "-A", "OUTPUT", "-o",
		dev, "-m", "statistic", "--mode", "random", "--probability", lp,
		"-j", "DROP", NULL };
	const char *in[] = { "iptables", "-t", "mangle", "-A", "PREROUTING",
		"-i", dev, "-m", "statistic", "--mode", "random",
		"--probability", lp, "-j", "DROP", NULL };
	if (loss_pct > 0 &&
	    (in_ns(prefix, id, out, NULL, 0) != 0 ||
	        in_ns(prefix, id, in, NULL, 0) != 0))
		rv = DTX_EIO;
	// Duplication: a copy of what survived, sent to the same daemon
	// (TEE clones the packet towards the gateway, here its destination).
	for (uint32_t i = 0; i < topo->n && dup_pct > 0; i++) {
		const dtx_node *nd = &topo->nodes[i];
		char addr[32];
		if (nd->role == DTX_ROLE_CLIENT || nd->id == id)
			continue;
		node_addr(topo, nd->id, addr, sizeof(addr));
		if (addr[0] == '\0')
			continue;
		const char *tee[] = { "iptables", "-t", "mangle", "-A",
			"POSTROUTING", "-o", dev, "-d", addr, "-m", "statistic",
			"--mode", "random", "--probability", dp, "-j", "TEE",
			"--gateway", addr, NULL };
		if (in_ns(prefix, id, tee, NULL, 0) != 0)
			rv = DTX_EIO;
	}
	return rv;
}

dtx_err
hx_netns_netem(const char *prefix, uint32_t id, uint32_t delay_ms,
    uint32_t jitter_ms, uint32_t reorder_pct)
{
	char dev[32], d[16], j[16], r[16];
	snprintf(dev, sizeof(dev), "%sc%u", prefix, id);
	snprintf(d, sizeof(d), "%ums", delay_ms);
	snprintf(j, sizeof(j), "%ums", jitter_ms);
	snprintf(r, sizeof(r), "%u%%", reorder_pct);
	const char *add[] = { "tc", "qdisc", "add", "dev", dev, "root", "netem",
		"delay", d, j, "reorder", r, "50%", NULL };
	// No sch_netem in the kernel: "Specified qdisc kind is unknown".
	return in_ns(prefix, id, add, NULL, 0) == 0 ? DTX_OK : DTX_ENOENT;
}

// Sums the packet counters of the mangle table's DROP and TEE rules in
// node id's namespace ("iptables -L -v -x -n": pkts bytes target ...).
static void
packet_counts(
    const char *prefix, uint32_t id, uint64_t *dropped, uint64_t *duplicated)
{
	static char out[16384];
	static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
	const char *ls[] = { "iptables", "-t", "mangle", "-L", "-v", "-x", "-n",
		NULL };
	*dropped = *duplicated = 0;
	pthread_mutex_lock(&mtx);
	if (in_ns(prefix, id, ls, out, sizeof(out)) == 0) {
		char *save = NULL;
		for (char *line = strtok_r(out, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			unsigned long long pk, by;
			char target[32];
			if (sscanf(line, "%llu %llu %31s", &pk, &by, target) !=
			    3)
				continue;
			if (strcmp(target, "DROP") == 0)
				*dropped += pk;
			else if (strcmp(target, "TEE") == 0)
				*duplicated += pk;
		}
	}
	pthread_mutex_unlock(&mtx);
}

dtx_err
hx_netns_packet_clear(const char *prefix, uint32_t id, bool netem,
    uint64_t *dropped, uint64_t *duplicated)
{
	char dev[32];
	dtx_err rv = DTX_OK;
	snprintf(dev, sizeof(dev), "%sc%u", prefix, id);
	packet_counts(prefix, id, dropped, duplicated);
	const char *fl[] = { "iptables", "-t", "mangle", "-F", NULL };
	if (in_ns(prefix, id, fl, NULL, 0) != 0)
		rv = DTX_EIO;
	const char *del[] = { "tc", "qdisc", "del", "dev", dev, "root", NULL };
	if (netem && in_ns(prefix, id, del, NULL, 0) != 0)
		rv = DTX_EIO;
	return rv;
}
