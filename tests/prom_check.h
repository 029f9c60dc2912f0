// SPDX-License-Identifier: MIT
//
// A checker of Prometheus's text exposition format (version 0.0.4) and of
// the naming rules dtx follows, for the tests of /metrics: every line a
// HELP, TYPE or sample line with valid names, label syntax and values;
// TYPE once per family before its samples, families contiguous, no series
// twice; names start with dtx_, counters end in _total, no millisecond
// units; histograms have _bucket series with increasing le ending in
// +Inf and cumulative counts, a _sum and a _count equal to the +Inf
// bucket. Header-only (test code): pc_check is the one entry point.

#ifndef DTX_TEST_PROM_CHECK_H
#define DTX_TEST_PROM_CHECK_H

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PC_MAX 2048
#define PC_NAME 160
#define PC_LABELS 512

typedef struct pc_family {
	char name[PC_NAME];
	char type[16];
	bool help;
	bool closed; // another family's lines came after its own
} pc_family;

// One histogram series: a family and its labels other than le.
typedef struct pc_hist {
	char key[PC_NAME + PC_LABELS];
	double last_le;
	double last_count;
	int nbuckets;
	bool inf, sum, count;
	double inf_count, count_value;
} pc_hist;

typedef struct pc_state {
	pc_family fam[PC_MAX];
	int nfam;
	int cur; // index of the family of the last line, or -1
	char *series[PC_MAX * 4];
	int nseries;
	pc_hist hist[PC_MAX];
	int nhist;
	char *err;
	size_t errlen;
	int line;
} pc_state;

static __attribute__((unused, format(printf, 2, 3))) bool
pc_fail(pc_state *s, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(s->err, s->errlen, "line %d: ", s->line);
	va_start(ap, fmt);
	vsnprintf(s->err + n, s->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

static __attribute__((unused)) bool
pc_name_ok(const char *n, size_t len, bool label)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = n[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '_' || (!label && c == ':');
		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return !(label && len >= 2 && n[0] == '_' && n[1] == '_');
}

static __attribute__((unused)) bool
pc_value(const char *v, double *out)
{
	if (strcmp(v, "+Inf") == 0) {
		*out = INFINITY;
		return true;
	}
	if (strcmp(v, "-Inf") == 0) {
		*out = -INFINITY;
		return true;
	}
	if (strcmp(v, "NaN") == 0) {
		*out = NAN;
		return true;
	}
	char *end = NULL;
	*out = strtod(v, &end);
	return end != v && *end == '\0';
}

static __attribute__((unused)) int
pc_family_find(pc_state *s, const char *name)
{
	for (int i = 0; i < s->nfam; i++)
		if (strcmp(s->fam[i].name, name) == 0)
			return i;
	return -1;
}

// Makes family name the current one (declared by HELP or TYPE).
static __attribute__((unused)) int
pc_family_enter(pc_state *s, const char *name)
{
	int i = pc_family_find(s, name);
	if (i >= 0 && i != s->cur && s->fam[i].closed)
		return -1;
	if (i < 0) {
		if (s->nfam == PC_MAX)
			return -1;
		i = s->nfam++;
		memset(&s->fam[i], 0, sizeof(s->fam[i]));
		snprintf(s->fam[i].name, PC_NAME, "%s", name);
	}
	if (s->cur >= 0 && s->cur != i)
		s->fam[s->cur].closed = true;
	s->cur = i;
	return i;
}

static __attribute__((unused)) bool
pc_comment(pc_state *s, char *l)
{
	char kw[8], name[PC_NAME];
	int n = 0;
	if (sscanf(l, "# %7s %159s %n", kw, name, &n) < 2 ||
	    (strcmp(kw, "HELP") != 0 && strcmp(kw, "TYPE") != 0))
		return true; // any other comment
	if (!pc_name_ok(name, strlen(name), false))
		return pc_fail(s, "bad metric name '%s'", name);
	int f = pc_family_enter(s, name);
	if (f < 0)
		return pc_fail(s, "family %s is not contiguous", name);
	pc_family *fm = &s->fam[f];
	if (strcmp(kw, "HELP") == 0) {
		if (fm->help)
			return pc_fail(s, "second HELP for %s", name);
		fm->help = true;
		if (l[n] == '\0')
			return pc_fail(s, "empty HELP for %s", name);
		return true;
	}
	if (fm->type[0] != '\0')
		return pc_fail(s, "second TYPE for %s", name);
	const char *t = l + n;
	if (strcmp(t, "counter") != 0 && strcmp(t, "gauge") != 0 &&
	    strcmp(t, "histogram") != 0 && strcmp(t, "summary") != 0 &&
	    strcmp(t, "untyped") != 0)
		return pc_fail(s, "bad TYPE '%s'", t);
	snprintf(fm->type, sizeof(fm->type), "%s", t);
	// dtx's naming rules.
	if (strncmp(name, "dtx_", 4) != 0)
		return pc_fail(s, "%s lacks the dtx_ prefix", name);
	size_t len = strlen(name);
	bool total = len > 6 && strcmp(name + len - 6, "_total") == 0;
	if (strcmp(t, "counter") == 0 && !total)
		return pc_fail(s, "counter %s does not end in _total", name);
	if (strcmp(t, "counter") != 0 && total)
		return pc_fail(s, "%s %s ends in _total", t, name);
	if (strstr(name, "_ms") || strstr(name, "millisecond") ||
	    strstr(name, "_permille") || strstr(name, "_kb"))
		return pc_fail(s, "%s is not in base units", name);
	return true;
}

// Parses {k="v",...} at *p into the canonical form without le (into
// key) and the le value; advances *p past it.
static __attribute__((unused)) bool
pc_labels(
    pc_state *s, const char **p, char *key, size_t klen, char *le, size_t lelen)
{
	const char *q = *p;
	size_t kn = 0;
	key[0] = le[0] = '\0';
	if (*q != '{')
		return true;
	q++;
	while (*q != '}') {
		const char *n0 = q;
		while (*q && *q != '=')
			q++;
		if (*q != '=' || !pc_name_ok(n0, (size_t)(q - n0), true))
			return pc_fail(s, "bad label name");
		size_t nl = (size_t)(q - n0);
		if (*++q != '"')
			return pc_fail(s, "label value not quoted");
		char val[PC_LABELS];
		size_t vn = 0;
		for (q++; *q != '"'; q++) {
			if (*q == '\0')
				return pc_fail(s, "unterminated label value");
			if (*q == '\\') {
				q++;
				if (*q != '\\' && *q != '"' && *q != 'n')
					return pc_fail(s, "bad escape");
			}
			if (vn + 1 < sizeof(val))
				val[vn++] = *q;
		}
		val[vn] = '\0';
		q++;
		if (nl == 2 && strncmp(n0, "le", 2) == 0)
			snprintf(le, lelen, "%s", val);
		else
			kn += (size_t)snprintf(
			    key + kn, klen - kn, "%.*s=%s,", (int)nl, n0, val);
		if (kn >= klen)
			return pc_fail(s, "labels too long");
		if (*q == ',')
			q++;
		else if (*q != '}')
			return pc_fail(s, "expected , or }");
	}
	*p = q + 1;
	return true;
}

static __attribute__((unused)) pc_hist *
pc_hist_get(pc_state *s, const char *key)
{
	for (int i = 0; i < s->nhist; i++)
		if (strcmp(s->hist[i].key, key) == 0)
			return &s->hist[i];
	if (s->nhist == PC_MAX)
		return NULL;
	pc_hist *h = &s->hist[s->nhist++];
	memset(h, 0, sizeof(*h));
	snprintf(h->key, sizeof(h->key), "%s", key);
	h->last_le = -INFINITY;
	return h;
}

// One _bucket, _sum or _count sample of histogram family fam.
static __attribute__((unused)) bool
pc_hist_sample(pc_state *s, const char *fam, const char *suffix,
    const char *key, const char *le, double v)
{
	char hk[PC_NAME + PC_LABELS];
	snprintf(hk, sizeof(hk), "%s|%s", fam, key);
	pc_hist *h = pc_hist_get(s, hk);
	if (h == NULL)
		return pc_fail(s, "too many histograms");
	if (strcmp(suffix, "_bucket") == 0) {
		double b;
		if (le[0] == '\0' || !pc_value(le, &b) || isnan(b))
			return pc_fail(s, "bucket without a valid le");
		if (h->inf || b <= h->last_le)
			return pc_fail(s, "le %s not increasing", le);
		if (v < h->last_count)
			return pc_fail(s, "bucket le=%s not cumulative", le);
		h->last_le = b;
		h->last_count = v;
		h->nbuckets++;
		if (isinf(b)) {
			h->inf = true;
			h->inf_count = v;
		}
		return true;
	}
	if (le[0] != '\0')
		return pc_fail(s, "le on %s%s", fam, suffix);
	if (strcmp(suffix, "_sum") == 0)
		h->sum = true;
	else {
		h->count = true;
		h->count_value = v;
	}
	return true;
}

static __attribute__((unused)) bool
pc_sample(pc_state *s, char *l)
{
	const char *p = l;
	while (*p && *p != '{' && *p != ' ')
		p++;
	char name[PC_NAME], key[PC_LABELS], le[64];
	snprintf(name, sizeof(name), "%.*s", (int)(p - l), l);
	if (!pc_name_ok(name, strlen(name), false))
		return pc_fail(s, "bad metric name '%s'", name);
	if (!pc_labels(s, &p, key, sizeof(key), le, sizeof(le)))
		return false;
	if (*p != ' ')
		return pc_fail(s, "no value");
	char val[64] = "", ts[64] = "";
	if (sscanf(p, " %63s %63s", val, ts) < 1)
		return pc_fail(s, "no value");
	double v;
	if (!pc_value(val, &v))
		return pc_fail(s, "bad value '%s'", val);
	// Which family: the name itself, or a histogram's base name.
	char fam[PC_NAME];
	const char *suffix = "";
	snprintf(fam, sizeof(fam), "%s", name);
	int f = pc_family_find(s, fam);
	static const char *const hs[] = { "_bucket", "_sum", "_count" };
	for (int i = 0; f < 0 && i < 3; i++) {
		size_t nl = strlen(name), sl = strlen(hs[i]);
		if (nl > sl && strcmp(name + nl - sl, hs[i]) == 0) {
			snprintf(
			    fam, sizeof(fam), "%.*s", (int)(nl - sl), name);
			f = pc_family_find(s, fam);
			suffix = hs[i];
		}
	}
	if (f < 0 || s->fam[f].type[0] == '\0')
		return pc_fail(s, "%s has no TYPE line before it", name);
	if (f != s->cur)
		return pc_fail(s, "%s outside its family's block", name);
	bool hist = strcmp(s->fam[f].type, "histogram") == 0;
	if (hist != (suffix[0] != '\0'))
		return pc_fail(
		    s, "%s does not fit TYPE %s", name, s->fam[f].type);
	if (!hist && le[0] != '\0')
		return pc_fail(s, "le label outside a histogram");
	if (strcmp(s->fam[f].type, "counter") == 0 && (v < 0 || isnan(v)))
		return pc_fail(s, "negative counter %s", name);
	char series[PC_NAME + PC_LABELS + 64];
	snprintf(series, sizeof(series), "%s{%sle=%s}", name, key, le);
	for (int i = 0; i < s->nseries; i++)
		if (strcmp(s->series[i], series) == 0)
			return pc_fail(s, "series %s twice", series);
	if (s->nseries == PC_MAX * 4)
		return pc_fail(s, "too many series");
	s->series[s->nseries++] = strdup(series);
	return hist ? pc_hist_sample(s, fam, suffix, key, le, v) : true;
}

// Checks text (NUL-terminated). True when it follows every rule; else
// false with the first broken rule in err.
static __attribute__((unused)) bool
pc_check(const char *text, char *err, size_t errlen)
{
	pc_state *s = calloc(1, sizeof(*s));
	char *copy = strdup(text);
	bool ok = s != NULL && copy != NULL;
	if (!ok) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	s->cur = -1;
	s->err = err;
	s->errlen = errlen;
	err[0] = '\0';
	size_t tl = strlen(copy);
	if (tl == 0 || copy[tl - 1] != '\n') {
		ok = pc_fail(s, "text does not end in a newline");
		goto done;
	}
	for (char *l = copy, *nl; ok && *l; l = nl + 1) {
		nl = strchr(l, '\n');
		*nl = '\0';
		s->line++;
		if (*l == '\0')
			continue;
		ok = *l == '#' ? pc_comment(s, l) : pc_sample(s, l);
	}
	for (int i = 0; ok && i < s->nhist; i++) {
		pc_hist *h = &s->hist[i];
		if (!h->inf || !h->sum || !h->count)
			ok = pc_fail(s,
			    "histogram %s lacks +Inf, _sum or _count", h->key);
		else if (h->count_value != h->inf_count)
			ok = pc_fail(s,
			    "histogram %s: _count is not the +Inf "
			    "bucket",
			    h->key);
	}
	for (int i = 0; ok && i < s->nfam; i++)
		if (!s->fam[i].help)
			ok = pc_fail(s, "%s has no HELP", s->fam[i].name);
done:
	if (s != NULL)
		for (int i = 0; i < s->nseries; i++)
			free(s->series[i]);
	free(s);
	free(copy);
	return ok;
}

#endif // DTX_TEST_PROM_CHECK_H
