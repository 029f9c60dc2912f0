// SPDX-License-Identifier: MIT
//
// The config table: every daemon and CLI command describes its settings as
// rows (name, type, range, default, help) and fills one struct from the
// defaults, then the environment, then the command line, checked once.

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"

static bool
parse_bool(const char *s, bool *out)
{
	static const char *yes[] = { "1", "true", "yes", "on" };
	static const char *no[] = { "0", "false", "no", "off" };
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

// Stores text into the option's field; src names where it came from.
static dtx_err
set_opt(const dtx_cfg_opt *o, void *cfg, const char *text, const char *src,
    char *err, size_t errlen)
{
	char *field = (char *)cfg + o->offset;
	char *end;

	switch (o->type) {
	case DTX_CFG_INT: {
		errno = 0;
		long long v = strtoll(text, &end, 10);
		if (errno != 0 || end == text || *end != '\0') {
			dtx_errf(err, errlen,
			    "%s --%s: '%s' is not a whole number", src, o->name,
			    text);
			return DTX_EINVAL;
		}
		if (v < o->min || v > o->max) {
			dtx_errf(err, errlen,
			    "%s --%s: %lld is out of range (%lld to %lld)", src,
			    o->name, v, (long long)o->min, (long long)o->max);
			return DTX_EINVAL;
		}
		*(int64_t *)(void *)field = v;
		return DTX_OK;
	}
	case DTX_CFG_DOUBLE: {
		errno = 0;
		double v = strtod(text, &end);
		if (errno != 0 || end == text || *end != '\0' || v != v) {
			dtx_errf(err, errlen, "%s --%s: '%s' is not a number",
			    src, o->name, text);
			return DTX_EINVAL;
		}
		if (v < (double)o->min || v > (double)o->max) {
			dtx_errf(err, errlen,
			    "%s --%s: %g is out of range (%lld to %lld)", src,
			    o->name, v, (long long)o->min, (long long)o->max);
			return DTX_EINVAL;
		}
		*(double *)(void *)field = v;
		return DTX_OK;
	}
	case DTX_CFG_BOOL: {
		bool b;
		if (!parse_bool(text, &b)) {
			dtx_errf(err, errlen,
			    "%s --%s: '%s' is not true/false/yes/no/1/0", src,
			    o->name, text);
			return DTX_EINVAL;
		}
		*(bool *)(void *)field = b;
		return DTX_OK;
	}
	case DTX_CFG_STR: {
		char *copy = dtx_strdup(text);
		if (copy == NULL)
			return DTX_ENOMEM;
		char **slot = (char **)(void *)field;
		dtx_free(*slot);
		*slot = copy;
		return DTX_OK;
	}
	}
	return DTX_EINVAL;
}

static const dtx_cfg_opt *
find_opt(const dtx_cfg_opt *table, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(table[i].name) == len &&
		    strncmp(table[i].name, name, len) == 0)
			return &table[i];
	return NULL;
}

static void
known_flags(const dtx_cfg_opt *table, size_t n, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && off + 4 < len; i++) {
		int r = snprintf(buf + off, len - off, "%s--%s",
		    i == 0 ? "" : ", ", table[i].name);
		if (r < 0 || (size_t)r >= len - off)
			break;
		off += (size_t)r;
	}
}

dtx_err
dtx_cfg_load(const dtx_cfg_opt *table, size_t n, void *cfg,
    const char *env_prefix, int argc, char **argv, char **positional,
    int max_pos, int *npos, char *err, size_t errlen)
{
	dtx_err rv;
	int np = 0;

	for (size_t i = 0; i < n; i++) {
		if (table[i].def == NULL)
			continue;
		rv = set_opt(
		    &table[i], cfg, table[i].def, "default", err, errlen);
		if (rv != DTX_OK)
			return rv;
	}

	if (env_prefix != NULL) {
		for (size_t i = 0; i < n; i++) {
			char var[128];
			size_t k = (size_t)snprintf(
			    var, sizeof(var), "%s", env_prefix);
			for (const char *p = table[i].name;
			     *p && k + 1 < sizeof(var); p++)
				var[k++] = *p == '-'
				    ? '_'
				    : (char)toupper((unsigned char)*p);
			var[k] = '\0';
			const char *v = getenv(var);
			if (v == NULL)
				continue;
			rv = set_opt(&table[i], cfg, v, var, err, errlen);
			if (rv != DTX_OK)
				return rv;
		}
	}

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
			if (a[0] == '-' && a[1] != '\0' &&
			    !(a[1] >= '0' && a[1] <= '9') &&
			    strcmp(a, "--") != 0) {
				dtx_errf(err, errlen,
				    "unknown flag '%s' (flags start with --)",
				    a);
				return DTX_EINVAL;
			}
			if (positional == NULL || np >= max_pos) {
				dtx_errf(
				    err, errlen, "unexpected argument '%s'", a);
				return DTX_EINVAL;
			}
			positional[np++] = argv[i];
			continue;
		}
		const char *name = a + 2;
		const char *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const dtx_cfg_opt *o = find_opt(table, n, name, len);
		if (o == NULL) {
			char kb[512];
			known_flags(table, n, kb, sizeof(kb));
			dtx_errf(err, errlen,
			    "unknown flag '--%.*s' (known: %s)", (int)len, name,
			    n ? kb : "none");
			return DTX_EINVAL;
		}
		const char *val = eq ? eq + 1 : NULL;
		if (val == NULL && o->type == DTX_CFG_BOOL)
			val = "true";
		if (val == NULL) {
			if (i + 1 >= argc) {
				dtx_errf(err, errlen, "flag --%s needs a value",
				    o->name);
				return DTX_EINVAL;
			}
			val = argv[++i];
		}
		rv = set_opt(o, cfg, val, "flag", err, errlen);
		if (rv != DTX_OK)
			return rv;
	}
	if (npos != NULL)
		*npos = np;
	return DTX_OK;
}

void
dtx_cfg_fini(const dtx_cfg_opt *table, size_t n, void *cfg)
{
	for (size_t i = 0; i < n; i++) {
		if (table[i].type != DTX_CFG_STR)
			continue;
		char **slot = (char **)(void *)((char *)cfg + table[i].offset);
		dtx_free(*slot);
		*slot = NULL;
	}
}

void
dtx_cfg_usage(FILE *out, const dtx_cfg_opt *table, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const dtx_cfg_opt *o = &table[i];
		const char *meta = o->type == DTX_CFG_BOOL ? ""
		    : o->type == DTX_CFG_STR               ? " TEXT"
		                                           : " N";
		fprintf(out, "  --%s%s\n      %s", o->name, meta,
		    o->help ? o->help : "");
		if (o->def != NULL)
			fprintf(out, " (default: %s)", o->def);
		fputc('\n', out);
	}
}
