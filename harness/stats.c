// SPDX-License-Identifier: MIT
//
// Performance statistics over a history, after Jepsen's stats and perf
// checkers: how many ops of each f ended how, completions per second, and
// latency quantiles from each invocation to its completion.

#include <stdlib.h>
#include <string.h>

#include "harness_int.h"

typedef struct f_acc {
	hx_stats_f s;
	uint64_t *lat;
	size_t nlat, cap;
} f_acc;

static int
cmp_f(const void *a, const void *b)
{
	return strcmp(((const hx_stats_f *)a)->f, ((const hx_stats_f *)b)->f);
}

static f_acc *
find_f(f_acc **accs, size_t *n, size_t *cap, const char *f)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*accs)[i].s.f, f) == 0)
			return &(*accs)[i];
	if (DTX_GROW(*accs, *n, *cap, 8) != DTX_OK)
		return NULL;
	f_acc *a = &(*accs)[*n];
	memset(a, 0, sizeof(*a));
	if ((a->s.f = dtx_strdup(f)) == NULL)
		return NULL;
	(*n)++;
	return a;
}

void
hx_stats_fini(hx_stats_result *r)
{
	if (r == NULL)
		return;
	hx_check_fini(&r->c);
	for (size_t i = 0; i < r->nfs; i++)
		dtx_free(r->fs[i].f);
	dtx_free(r->fs);
	dtx_free(r->rate);
	r->fs = NULL;
	r->nfs = 0;
	r->rate = NULL;
	r->nsec = 0;
}

static dtx_err
describe(hx_stats_result *r)
{
	bool missing_ok = false;
	hx_sb s = { 0 }, j = { 0 };
	double secs = (double)r->duration_ns / 1e9;
	hx_sb_printf(&s, "%zu client ops over %.1f s, %zu open at the end",
	    r->client_ops, secs, r->open);
	hx_sb_printf(&j,
	    "{\"total_ops\":%zu,\"client_ops\":%zu,\"nemesis_ops\":%zu,"
	    "\"open\":%zu,\"duration_ns\":%lld,\"by_f\":{",
	    r->total_ops, r->client_ops, r->nemesis_ops, r->open,
	    (long long)r->duration_ns);
	for (size_t i = 0; i < r->nfs; i++) {
		const hx_stats_f *f = &r->fs[i];
		if (f->counts[HX_OP_OK] == 0)
			missing_ok = true;
		hx_sb_printf(&s,
		    "; %s: %zu ok %zu fail %zu info, p50 %.1f p99 %.1f max "
		    "%.1f ms",
		    f->f, f->counts[HX_OP_OK], f->counts[HX_OP_FAIL],
		    f->counts[HX_OP_INFO], (double)f->p50 / 1e6,
		    (double)f->p99 / 1e6, (double)f->max / 1e6);
		hx_sb_printf(&j,
		    "%s\"%s\":{\"invoke\":%zu,\"ok\":%zu,\"fail\":%zu,"
		    "\"info\":%zu,\"completed\":%zu,\"latency_ns\":{\"p50\":%"
		    "llu,"
		    "\"p90\":%llu,\"p99\":%llu,\"max\":%llu}}",
		    i ? "," : "", f->f, f->counts[HX_OP_INVOKE],
		    f->counts[HX_OP_OK], f->counts[HX_OP_FAIL],
		    f->counts[HX_OP_INFO], f->nlat, (unsigned long long)f->p50,
		    (unsigned long long)f->p90, (unsigned long long)f->p99,
		    (unsigned long long)f->max);
	}
	hx_sb_printf(&j, "},\"rate_per_s\":[");
	for (size_t i = 0; i < r->nsec; i++)
		hx_sb_printf(&j, "%s[%zu,%zu,%zu]", i ? "," : "", r->rate[i][0],
		    r->rate[i][1], r->rate[i][2]);
	hx_valid valid = missing_ok ? HX_VALID_UNKNOWN : HX_VALID_TRUE;
	hx_sb_printf(&j, "],\"valid\":%s}", hx_valid_json(valid));
	if (missing_ok)
		hx_sb_printf(&s, "; some f never completed ok");
	return hx__check_set(&r->c, valid, &s, &j);
}

dtx_err
hx_check_stats(const hx_history *h, hx_stats_result *out)
{
	if (h == NULL || out == NULL)
		return DTX_EINVAL;
	hx_stats_result r;
	memset(&r, 0, sizeof(r));
	hx__check_init(&r.c, "stats");
	f_acc *accs = NULL;
	size_t nacc = 0, cap = 0;
	int64_t *pairs = NULL;
	dtx_err rv = hx_history_pairs(h, &pairs);
	if (rv != DTX_OK)
		goto fail;
	rv = DTX_ENOMEM;
	size_t n = hx_history_len(h);
	r.total_ops = n;
	if (n > 0)
		r.duration_ns = hx_history_get(h, n - 1)->time_ns;
	r.nsec = (size_t)(r.duration_ns / 1000000000) + 1;
	r.rate = dtx_calloc(r.nsec, sizeof(*r.rate));
	if (r.rate == NULL)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const hx_op *op = hx_history_get(h, i);
		if (op->process == HX_PROC_NEMESIS) {
			r.nemesis_ops++;
			continue;
		}
		r.client_ops++;
		f_acc *a = find_f(&accs, &nacc, &cap, op->f);
		if (a == NULL)
			goto fail;
		a->s.counts[op->type]++;
		if (op->type != HX_OP_INVOKE) {
			size_t sec = (size_t)(op->time_ns / 1000000000);
			if (sec < r.nsec)
				r.rate[sec][op->type - 1]++;
			continue;
		}
		if (pairs[i] < 0) {
			r.open++;
			continue;
		}
		const hx_op *c = hx_history_get(h, (size_t)pairs[i]);
		if (DTX_GROW(a->lat, a->nlat, a->cap, 64) != DTX_OK)
			goto fail;
		a->lat[a->nlat++] = c->time_ns > op->time_ns
		    ? (uint64_t)(c->time_ns - op->time_ns)
		    : 0;
	}
	r.fs = dtx_calloc(nacc ? nacc : 1, sizeof(*r.fs));
	if (r.fs == NULL)
		goto fail;
	for (size_t i = 0; i < nacc; i++) {
		f_acc *a = &accs[i];
		dtx_sort_u64(a->lat, a->nlat);
		a->s.nlat = a->nlat;
		a->s.p50 = hx_quantile(a->lat, a->nlat, 0.50);
		a->s.p90 = hx_quantile(a->lat, a->nlat, 0.90);
		a->s.p99 = hx_quantile(a->lat, a->nlat, 0.99);
		a->s.max = a->nlat ? a->lat[a->nlat - 1] : 0;
		r.fs[i] = a->s;
		a->s.f = NULL;
		dtx_free(a->lat);
		a->lat = NULL;
	}
	r.nfs = nacc;
	nacc = 0;
	qsort(r.fs, r.nfs, sizeof(*r.fs), cmp_f);
	if ((rv = describe(&r)) != DTX_OK)
		goto fail;
	dtx_free(accs);
	dtx_free(pairs);
	*out = r;
	return DTX_OK;
fail:
	for (size_t i = 0; i < nacc; i++) {
		dtx_free(accs[i].s.f);
		dtx_free(accs[i].lat);
	}
	dtx_free(accs);
	dtx_free(pairs);
	hx_stats_fini(&r);
	return rv;
}
