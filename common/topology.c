// SPDX-License-Identifier: MIT
//
// The topology file: the nodes of a cluster, their roles and addresses, and
// the rule that maps a key to the participant that owns it.

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static const char *role_names[] = { "coordinator", "participant", "saga",
	"client" };

const char *
dtx_role_name(dtx_role role)
{
	return (unsigned)role < 4 ? role_names[role] : "unknown";
}

static dtx_err bad(char *err, size_t errlen, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static dtx_err
bad(char *err, size_t errlen, int line, const char *fmt, ...)
{
	va_list ap;
	if (err != NULL && errlen > 0) {
		int n = snprintf(err, errlen, "line %d: ", line);
		va_start(ap, fmt);
		if (n >= 0 && (size_t)n < errlen)
			vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return DTX_EINVAL;
}

dtx_err
dtx_topo_parse(const char *text, dtx_topo *out, char *err, size_t errlen)
{
	dtx_topo t;
	int lineno = 0;
	const char *p = text;

	memset(&t, 0, sizeof(t));
	while (*p != '\0') {
		char line[512], role[32], url[DTX_URL_MAX + 1], extra[8];
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		lineno++;
		if (len >= sizeof(line))
			return bad(err, errlen, lineno, "line too long");
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (nl ? 1 : 0);
		char *hash = strchr(line, '#');
		if (hash != NULL)
			*hash = '\0';
		unsigned long id;
		char idtxt[32];
		url[0] = '\0';
		int k = sscanf(
		    line, "%31s %31s %256s %7s", role, idtxt, url, extra);
		if (k <= 0)
			continue;
		if (k == 4)
			return bad(err, errlen, lineno,
			    "too many fields (want: role id url)");
		int r;
		for (r = 0; r < 4; r++)
			if (strcmp(role, role_names[r]) == 0)
				break;
		if (r == 4)
			return bad(err, errlen, lineno,
			    "unknown role '%s' (coordinator, participant, "
			    "saga or client)",
			    role);
		if (k < 2)
			return bad(err, errlen, lineno, "missing node id");
		char *end;
		errno = 0;
		id = strtoul(idtxt, &end, 10);
		if (errno != 0 || *end != '\0' || idtxt[0] == '-' ||
		    id >= DTX_TOPO_MAX)
			return bad(err, errlen, lineno,
			    "node id '%s' is not in 0..%d", idtxt,
			    DTX_TOPO_MAX - 1);
		if (r != DTX_ROLE_CLIENT && k < 3)
			return bad(err, errlen, lineno, "%s %lu needs a url",
			    role, id);
		if (strlen(url) >= DTX_URL_MAX)
			return bad(err, errlen, lineno, "url too long");
		if (r != DTX_ROLE_CLIENT && strncmp(url, "tcp://", 6) != 0 &&
		    strncmp(url, "ipc://", 6) != 0 &&
		    strncmp(url, "tls+tcp://", 10) != 0)
			return bad(err, errlen, lineno,
			    "url '%s' is not tcp://, ipc:// or tls+tcp://",
			    url);
		if (dtx_topo_find(&t, (uint32_t)id) != NULL)
			return bad(err, errlen, lineno,
			    "node id %lu appears twice", id);
		dtx_node *nd = &t.nodes[t.n++];
		nd->id = (uint32_t)id;
		nd->role = (dtx_role)r;
		snprintf(nd->url, sizeof(nd->url), "%s",
		    r == DTX_ROLE_CLIENT ? "" : url);
		if (r == DTX_ROLE_PARTICIPANT)
			t.parts[t.nparts++] = (uint32_t)id;
		if (id + 1 > t.max_id)
			t.max_id = (uint32_t)id + 1;
	}
	if (t.n == 0)
		return bad(err, errlen, lineno, "no nodes in topology");
	*out = t;
	return DTX_OK;
}

dtx_err
dtx_topo_load(const char *path, dtx_topo *out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		dtx_err rv = dtx_from_errno(errno);
		if (err != NULL)
			snprintf(err, errlen, "%s: %s", path, dtx_strerror(rv));
		return rv;
	}
	char *buf = dtx_alloc(64 * 1024);
	if (buf == NULL) {
		fclose(f);
		return DTX_ENOMEM;
	}
	size_t n = fread(buf, 1, 64 * 1024 - 1, f);
	bool big = !feof(f);
	fclose(f);
	buf[n] = '\0';
	dtx_err rv;
	if (big) {
		if (err != NULL)
			snprintf(err, errlen, "%s: larger than 64 KiB", path);
		rv = DTX_EINVAL;
	} else {
		rv = dtx_topo_parse(buf, out, err, errlen);
	}
	dtx_free(buf);
	return rv;
}

dtx_err
dtx_topo_save(const dtx_topo *topo, const char *path)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return DTX_EINVAL;
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		return dtx_from_errno(errno);
	fprintf(f, "# role id url\n");
	for (uint32_t i = 0; i < topo->n; i++) {
		const dtx_node *nd = &topo->nodes[i];
		fprintf(f, "%-12s %2u %s\n", dtx_role_name(nd->role), nd->id,
		    nd->url);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		dtx_err rv = dtx_from_errno(errno);
		fclose(f);
		unlink(tmp);
		return rv;
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		dtx_err rv = dtx_from_errno(errno);
		unlink(tmp);
		return rv;
	}
	return DTX_OK;
}

const dtx_node *
dtx_topo_find(const dtx_topo *topo, uint32_t id)
{
	for (uint32_t i = 0; i < topo->n; i++)
		if (topo->nodes[i].id == id)
			return &topo->nodes[i];
	return NULL;
}

const dtx_node *
dtx_topo_first(const dtx_topo *topo, dtx_role role)
{
	for (uint32_t i = 0; i < topo->n; i++)
		if (topo->nodes[i].role == role)
			return &topo->nodes[i];
	return NULL;
}

uint32_t
dtx_topo_route(const dtx_topo *topo, const void *key, size_t len)
{
	DTX_ASSERT(topo->nparts > 0);
	return topo->parts[dtx_crc32c(0, key, len) % topo->nparts];
}
