// SPDX-License-Identifier: MIT
//
// The subnet of a netns cluster: parsed from --subnet, or chosen per run
// from the pool dtx keeps for itself (HX_NETNS_POOL), skipping every
// subnet an interface address, a route or another run's lease already
// uses. A lease file per subnet, written under an exclusive lock on the
// lease directory, keeps two runs that start at once apart.

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness_int.h"

#define LEASE_EXT ".lease"
#define MAX_USED 512

static uint32_t
mask_of(uint32_t len)
{
	return len == 0 ? 0 : ~UINT32_C(0) << (32 - len);
}

// Parses "a.b.c.d" or "a.b.c.d/len" (a bare address is a /32).
static bool
parse_cidr(const char *text, hx_subnet *out)
{
	char buf[48];
	if (text == NULL || strlen(text) >= sizeof(buf))
		return false;
	snprintf(buf, sizeof(buf), "%s", text);
	uint32_t len = 32;
	char *slash = strchr(buf, '/');
	if (slash != NULL) {
		char *end;
		*slash = '\0';
		errno = 0;
		long l = strtol(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end != '\0' || errno != 0 || l < 0 ||
		    l > 32)
			return false;
		len = (uint32_t)l;
	}
	struct in_addr a;
	if (inet_pton(AF_INET, buf, &a) != 1)
		return false;
	out->net = ntohl(a.s_addr);
	out->len = len;
	return true;
}

bool
hx_subnet_overlaps(const hx_subnet *a, const hx_subnet *b)
{
	uint32_t m = mask_of(a->len < b->len ? a->len : b->len);
	return ((a->net ^ b->net) & m) == 0;
}

dtx_err
hx_subnet_parse(const char *cidr, hx_subnet *out, char *err, size_t errlen)
{
	hx_subnet s;
	if (cidr == NULL || strchr(cidr, '/') == NULL ||
	    !parse_cidr(cidr, &s)) {
		dtx_errf(err, errlen,
		    "--subnet '%s' is not an IPv4 CIDR such as 10.77.9.0/24",
		    cidr ? cidr : "");
		return DTX_EINVAL;
	}
	if (s.len < 16 || s.len > HX_SUBNET_LEN_MAX) {
		dtx_errf(err, errlen,
		    "--subnet '%s': the prefix length must be 16 to %d (room "
		    "for the bridge and %d daemons)",
		    cidr, HX_SUBNET_LEN_MAX, DTX_TOPO_MAX - 1);
		return DTX_EINVAL;
	}
	if ((s.net & ~mask_of(s.len)) != 0) {
		dtx_errf(err, errlen,
		    "--subnet '%s' has host bits set: give the network address",
		    cidr);
		return DTX_EINVAL;
	}
	// Private ranges only (RFC 1918): the run adds a route for it.
	static const hx_subnet priv[] = { { 0x0a000000u, 8 },
		{ 0xac100000u, 12 }, { 0xc0a80000u, 16 } };
	bool ok = false;
	for (size_t i = 0; i < 3; i++)
		ok |= s.len >= priv[i].len && hx_subnet_overlaps(&s, &priv[i]);
	if (!ok) {
		dtx_errf(err, errlen,
		    "--subnet '%s' is not inside a private range (10.0.0.0/8, "
		    "172.16.0.0/12, 192.168.0.0/16)",
		    cidr);
		return DTX_EINVAL;
	}
	*out = s;
	return DTX_OK;
}

void
hx_subnet_host(const hx_subnet *s, uint32_t host, char *buf, size_t len)
{
	struct in_addr a = { .s_addr = htonl(s->net + host) };
	char txt[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &a, txt, sizeof(txt));
	snprintf(buf, len, "%s", txt);
}

void
hx_subnet_format(const hx_subnet *s, char *buf, size_t len)
{
	char host[INET_ADDRSTRLEN];
	hx_subnet_host(s, 0, host, sizeof(host));
	snprintf(buf, len, "%s/%u", host, s->len);
}

bool
hx_subnet_pick(const hx_subnet *used, size_t nused, hx_subnet *out)
{
	hx_subnet pool;
	parse_cidr(HX_NETNS_POOL, &pool);
	uint32_t n = UINT32_C(1) << (HX_NETNS_POOL_LEN - pool.len);
	for (uint32_t i = 0; i < n; i++) {
		hx_subnet c = { pool.net + (i << (32 - HX_NETNS_POOL_LEN)),
			HX_NETNS_POOL_LEN };
		bool busy = false;
		for (size_t k = 0; k < nused && !busy; k++)
			busy = hx_subnet_overlaps(&c, &used[k]);
		if (!busy) {
			*out = c;
			return true;
		}
	}
	return false;
}

// Adds the subnets of every IPv4 address ("inet A/L") and route ("A/L dev
// ...", "A dev ...") that `ip` prints to used.
static void
used_from_ip(hx_subnet *used, size_t *n)
{
	static const char *const addr[] = { "ip", "-o", "-4", "addr", "show",
		NULL };
	static const char *const route[] = { "ip", "-4", "route", "show",
		"table", "all", NULL };
	char *out = dtx_alloc(65536);
	if (out == NULL)
		return;
	for (int pass = 0; pass < 2; pass++) {
		if (hx_run(pass ? route : addr, out, 65536, true) != 0)
			continue;
		char *save = NULL;
		for (char *line = strtok_r(out, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			char tok[64] = "";
			if (pass == 0) {
				char *in = strstr(line, " inet ");
				if (in == NULL ||
				    sscanf(in + 6, "%63s", tok) != 1)
					continue;
			} else if (sscanf(line, "%63s", tok) != 1) {
				continue;
			}
			hx_subnet s;
			if (*n < MAX_USED && parse_cidr(tok, &s)) {
				s.net &= mask_of(s.len);
				used[(*n)++] = s;
			}
		}
	}
	dtx_free(out);
}

static const char *
lease_dir(const char *dir)
{
	if (dir != NULL)
		return dir;
	const char *env = getenv("DTX_NETNS_LEASE_DIR");
	return env != NULL && env[0] != '\0' ? env : HX_NETNS_LEASE_DIR;
}

// Opens and exclusively locks DIR/lock (DIR created if missing); returns
// the descriptor, or -1 with *rv set.
static int
lock_dir(const char *dir, dtx_err *rv)
{
	char path[PATH_MAX];
	if ((*rv = dtx_mkdir_p(dir)) != DTX_OK)
		return -1;
	snprintf(path, sizeof(path), "%s/lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		*rv = dtx_from_errno(errno);
		return -1;
	}
	while (flock(fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			*rv = dtx_from_errno(errno);
			close(fd);
			return -1;
		}
	}
	return fd;
}

// Reads lease file path: its owner's prefix and pid. false when it is not
// a lease.
static bool
read_lease(const char *path, char *prefix, size_t plen, long *pid)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return false;
	char pre[64];
	bool ok = fscanf(f, "%63s %ld", pre, pid) == 2;
	fclose(f);
	if (ok)
		snprintf(prefix, plen, "%s", pre);
	return ok;
}

// A lease is live while its run's bridge exists (the cluster outlives the
// process that made it) or the process that took it is still alive (it
// has not made the bridge yet).
static bool
lease_live(const char *links, const char *prefix, long pid)
{
	char needle[HX_NETNS_PREFIX_MAX + 8];
	snprintf(needle, sizeof(needle), ": %sbr:", prefix);
	if (links != NULL && strstr(links, needle) != NULL)
		return true;
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

// Adds the subnet of every live lease in dir to used; removes dead ones
// and, when release is not NULL, those of that prefix.
static void
scan_leases(const char *dir, const char *release, hx_subnet *used, size_t *n)
{
	static const char *const lv[] = { "ip", "-o", "link", "show", NULL };
	char *links = release == NULL ? dtx_alloc(65536) : NULL;
	if (links != NULL && hx_run(lv, links, 65536, true) != 0) {
		dtx_free(links);
		links = NULL;
	}
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		size_t nl = strlen(e->d_name), el = strlen(LEASE_EXT);
		if (nl <= el || strcmp(e->d_name + nl - el, LEASE_EXT) != 0)
			continue;
		char path[PATH_MAX + 256], prefix[64], name[64];
		long pid = 0;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		snprintf(name, sizeof(name), "%.*s", (int)(nl - el), e->d_name);
		for (char *p = name; *p; p++)
			if (*p == '_')
				*p = '/';
		hx_subnet s;
		if (!read_lease(path, prefix, sizeof(prefix), &pid) ||
		    !parse_cidr(name, &s)) {
			continue;
		}
		if (release != NULL) {
			if (strcmp(prefix, release) == 0)
				unlink(path);
		} else if (!lease_live(links, prefix, pid)) {
			unlink(path);
		} else if (*n < MAX_USED) {
			used[(*n)++] = s;
		}
	}
	if (d != NULL)
		closedir(d);
	dtx_free(links);
}

static dtx_err
write_lease(const char *dir, const hx_subnet *s, const char *prefix)
{
	char cidr[32], path[PATH_MAX + 64];
	hx_subnet_format(s, cidr, sizeof(cidr));
	*strchr(cidr, '/') = '_';
	snprintf(path, sizeof(path), "%s/%s" LEASE_EXT, dir, cidr);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return dtx_from_errno(errno);
	int w = fprintf(f, "%s %ld\n", prefix, (long)getpid());
	if (fclose(f) != 0 || w < 0)
		return DTX_EIO;
	return DTX_OK;
}

dtx_err
hx_netns_claim(const char *prefix, const hx_subnet *want, const char *dir,
    hx_subnet *out, char *err, size_t errlen)
{
	dtx_err rv = DTX_OK;
	size_t n = 0;
	dir = lease_dir(dir);
	hx_subnet *used = dtx_calloc(MAX_USED, sizeof(*used));
	if (used == NULL)
		return DTX_ENOMEM;
	int fd = lock_dir(dir, &rv);
	if (fd < 0) {
		dtx_errf(err, errlen, "cannot lock %s/lock: %s", dir,
		    dtx_strerror(rv));
		goto fail;
	}
	used_from_ip(used, &n);
	size_t nip = n; // used[0..nip): this machine's interfaces and routes
	scan_leases(dir, NULL, used, &n);
	hx_subnet got;
	if (want != NULL) {
		got = *want;
		for (size_t k = 0; k < n; k++) {
			if (!hx_subnet_overlaps(want, &used[k]))
				continue;
			char a[32], b[32];
			hx_subnet_format(want, a, sizeof(a));
			hx_subnet_format(&used[k], b, sizeof(b));
			dtx_errf(err, errlen,
			    "subnet %s overlaps %s, which is in use (%s)", a, b,
			    k < nip ? HX_SUBNET_BY_MACHINE
			            : "leased by another netns run");
			rv = DTX_EBUSY;
			goto fail;
		}
	} else if (!hx_subnet_pick(used, n, &got)) {
		dtx_errf(err, errlen,
		    "every /%d of " HX_NETNS_POOL " is in use: pass --subnet",
		    HX_NETNS_POOL_LEN);
		rv = DTX_EBUSY;
		goto fail;
	}
	if ((rv = write_lease(dir, &got, prefix)) != DTX_OK) {
		dtx_errf(err, errlen, "cannot write a lease in %s: %s", dir,
		    dtx_strerror(rv));
		goto fail;
	}
	*out = got;
fail:
	if (fd >= 0)
		close(fd);
	dtx_free(used);
	return rv;
}

void
hx_netns_release(const char *prefix, const char *dir)
{
	dtx_err rv;
	dir = lease_dir(dir);
	struct stat st;
	if (stat(dir, &st) != 0)
		return;
	int fd = lock_dir(dir, &rv);
	if (fd < 0)
		return;
	scan_leases(dir, prefix, NULL, NULL);
	close(fd);
}
