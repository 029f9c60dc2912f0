// SPDX-License-Identifier: MIT
//
// The bank checker, after Jepsen's bank test: every ok read must show
// exactly the configured accounts, none negative, summing to the configured
// total. Each kind of error is counted with its first, worst and last
// example.

#include <stdlib.h>
#include <string.h>

#include "harness_int.h"

static const char *const kind_names[HX_BANK_NKINDS] = {
	"wrong-total",
	"negative-balance",
	"unexpected-key",
	"missing-balance",
	"transient-total",
	"malformed-read",
	"unreadable",
};

const char *
hx_bank_kind_name(hx_bank_kind k)
{
	if ((unsigned)k >= HX_BANK_NKINDS)
		return "?";
	return kind_names[k];
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

// Parses a balances key: canonical decimal text of an int64 only ("7",
// "-2"; not "07", "+7", " 7").
static bool
parse_key(const char *s, int64_t *out)
{
	const char *p = s;
	bool neg = *p == '-';
	if (neg)
		p++;
	if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] != '\0'))
		return false;
	uint64_t v = 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v > (uint64_t)INT64_MAX)
		return false;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return true;
}

static void
note(hx_bank_result *r, hx_bank_kind k, const hx_op *op, int64_t total,
    int64_t badness)
{
	hx_bank_stat *st = &r->kinds[k];
	hx_bank_example ex = { op->index, op->time_ns, op->process, total,
		badness };
	if (st->count == 0) {
		st->first = ex;
		st->worst = ex;
	} else if (badness > st->worst.badness) {
		st->worst = ex;
	}
	st->last = ex;
	st->count++;
}

// Kinds that are reported but are not violations.
static bool
benign(int k)
{
	return k == HX_BANK_TRANSIENT_TOTAL || k == HX_BANK_UNREADABLE;
}

// Examines one ok read. Returns true when it had a violation.
static bool
check_read(hx_bank_result *r, const hx_bank_cfg *cfg, const int64_t *sorted,
    bool *seen, const hx_op *op, bool quiet)
{
	size_t before[HX_BANK_NKINDS];
	for (int k = 0; k < HX_BANK_NKINDS; k++)
		before[k] = r->kinds[k].count;
	hx_jdoc *doc = NULL;
	const hx_jv *bal = NULL;
	if (op->value != NULL &&
	    hx_json_parse(op->value, strlen(op->value), &doc, NULL, 0) ==
	        DTX_OK)
		bal = hx_jv_get(hx_jdoc_root(doc), "balances");
	if (bal == NULL || bal->type != HX_JV_OBJ) {
		note(r, HX_BANK_MALFORMED, op, 0, 1);
		hx_jdoc_free(doc);
		return true;
	}
	// A final read without the nodes killed for good: their accounts
	// are unreadable, not missing, and the total cannot be checked.
	const hx_jv *gone = hx_jv_get(hx_jdoc_root(doc), "unreadable_nodes");
	bool partial = gone != NULL && gone->type == HX_JV_ARR &&
	    gone->first != NULL && strcmp(op->f, "final-read") == 0;
	memset(seen, 0, cfg->naccounts * sizeof(*seen));
	int64_t unexpected = 0, missing = 0, negsum = 0, total = 0;
	bool overflow = false;
	for (const hx_jv *m = bal->first; m; m = m->next) {
		int64_t id, v;
		const int64_t *hit = NULL;
		if (parse_key(m->key, &id))
			hit = bsearch(&id, sorted, cfg->naccounts,
			    sizeof(*sorted), cmp_i64);
		if (hit == NULL) {
			unexpected++;
			continue;
		}
		if (hx_jv_int(m, &v) != DTX_OK)
			continue; // a null or non-integer balance is missing
		seen[hit - sorted] = true;
		if (__builtin_add_overflow(total, v, &total))
			overflow = true;
		if (v < 0 && __builtin_sub_overflow(negsum, v, &negsum))
			overflow = true;
	}
	for (size_t i = 0; i < cfg->naccounts; i++)
		if (!seen[i])
			missing++;
	hx_jdoc_free(doc);
	if (overflow) {
		note(r, HX_BANK_MALFORMED, op, 0, 1);
		return true;
	}
	if (unexpected > 0)
		note(r, HX_BANK_UNEXPECTED_KEY, op, total, unexpected);
	if (missing > 0)
		note(r, partial ? HX_BANK_UNREADABLE : HX_BANK_MISSING_BALANCE,
		    op, total, missing);
	if (unexpected == 0 && !partial && missing == 0 &&
	    total != cfg->total) {
		int64_t dev = total > cfg->total ? total - cfg->total
		                                 : cfg->total - total;
		// A saga's transient view holds less money than the bank,
		// never more: it debits first and compensates in reverse.
		bool transient = cfg->saga && !quiet &&
		    strcmp(op->f, "read") == 0 && total < cfg->total;
		note(r,
		    transient ? HX_BANK_TRANSIENT_TOTAL : HX_BANK_WRONG_TOTAL,
		    op, total, dev);
		if (total < r->lowest_total)
			r->lowest_total = total;
		if (total > r->highest_total)
			r->highest_total = total;
	}
	if (negsum > 0)
		note(r, HX_BANK_NEGATIVE, op, total, negsum);
	for (int k = 0; k < HX_BANK_NKINDS; k++)
		if (!benign(k) && r->kinds[k].count != before[k])
			return true;
	return false;
}

static void
example_json(hx_sb *sb, const char *name, const hx_bank_example *ex)
{
	hx_sb_printf(sb,
	    "\"%s\":{\"index\":%lld,\"time_ns\":%lld,\"process\":%lld,"
	    "\"total\":%lld,\"badness\":%lld}",
	    name, (long long)ex->op_index, (long long)ex->time_ns,
	    (long long)ex->process, (long long)ex->total,
	    (long long)ex->badness);
}

static dtx_err
add_examples(hx_bank_result *r, const hx_history *h, int64_t expected)
{
	for (int k = 0; k < HX_BANK_NKINDS; k++) {
		const hx_bank_stat *st = &r->kinds[k];
		if (st->count == 0)
			continue;
		const hx_bank_example *ex[3] = { &st->first, &st->worst,
			&st->last };
		static const char *const which[3] = { "first", "worst",
			"last" };
		for (int i = 0; i < 3; i++) {
			bool dup = false;
			for (int j = 0; j < i; j++)
				if (ex[j]->op_index == ex[i]->op_index)
					dup = true;
			if (dup)
				continue;
			hx_sb d = { 0 };
			hx_sb_printf(&d,
			    "{\"example\":\"%s\",\"count\":%zu,\"total\":%lld,"
			    "\"expected\":%lld,\"badness\":%lld,\"value\":%s}",
			    which[i], st->count, (long long)ex[i]->total,
			    (long long)expected, (long long)ex[i]->badness,
			    k == HX_BANK_MALFORMED
			        ? "null"
			        : hx_history_get(h, (size_t)ex[i]->op_index)
			              ->value);
			dtx_err rv = hx__check_anomaly(&r->c, kind_names[k],
			    hx_history_get(h, (size_t)ex[i]->op_index), false,
			    0, NULL, hx_sb_take(&d));
			if (rv != DTX_OK)
				return rv;
		}
	}
	return DTX_OK;
}

static dtx_err
finish(hx_bank_result *r, const hx_history *h, const hx_bank_cfg *cfg)
{
	size_t violations = 0;
	for (int k = 0; k < HX_BANK_NKINDS; k++)
		if (!benign(k))
			violations += r->kinds[k].count;
	hx_valid valid = r->reads == 0 ? HX_VALID_UNKNOWN
	    : violations > 0           ? HX_VALID_FALSE
	                               : HX_VALID_TRUE;
	dtx_err rv = add_examples(r, h, cfg->total);
	if (rv != DTX_OK)
		return rv;

	hx_sb s = { 0 }, j = { 0 };
	if (r->reads == 0)
		hx_sb_printf(&s, "no ok reads: nothing to check");
	else if (r->bad_reads == 0)
		hx_sb_printf(&s, "%zu ok reads, every one sums to %lld",
		    r->reads, (long long)cfg->total);
	else
		hx_sb_printf(&s, "%zu ok reads, %zu with errors", r->reads,
		    r->bad_reads);
	for (int k = 0; k < HX_BANK_NKINDS; k++) {
		const hx_bank_stat *st = &r->kinds[k];
		if (st->count == 0)
			continue;
		hx_sb_printf(&s, "; %s %zu (worst: op %lld", kind_names[k],
		    st->count, (long long)st->worst.op_index);
		if (k == HX_BANK_WRONG_TOTAL || k == HX_BANK_TRANSIENT_TOTAL)
			hx_sb_printf(&s, ", total %lld, expected %lld",
			    (long long)st->worst.total, (long long)cfg->total);
		else if (k != HX_BANK_MALFORMED)
			hx_sb_printf(
			    &s, ", badness %lld", (long long)st->worst.badness);
		hx_sb_printf(&s, ")%s",
		    k == HX_BANK_TRANSIENT_TOTAL ? " transient, expected for "
		                                   "sagas"
		        : k == HX_BANK_UNREADABLE
		        ? " accounts on nodes down for good: their balances "
		          "and the total of that final read are unchecked"
		        : "");
	}
	hx_sb_printf(&j,
	    "{\"valid\":%s,\"reads\":%zu,\"bad_reads\":%zu,"
	    "\"expected_total\":%lld,\"errors\":{",
	    hx_valid_json(valid), r->reads, r->bad_reads,
	    (long long)cfg->total);
	bool comma = false;
	for (int k = 0; k < HX_BANK_NKINDS; k++) {
		const hx_bank_stat *st = &r->kinds[k];
		if (st->count == 0)
			continue;
		hx_sb_printf(&j, "%s\"%s\":{\"count\":%zu,", comma ? "," : "",
		    kind_names[k], st->count);
		example_json(&j, "first", &st->first);
		hx_sb_printf(&j, ",");
		example_json(&j, "worst", &st->worst);
		hx_sb_printf(&j, ",");
		example_json(&j, "last", &st->last);
		hx_sb_printf(&j, "}");
		comma = true;
	}
	hx_sb_printf(&j, "}");
	if (r->kinds[HX_BANK_WRONG_TOTAL].count +
	        r->kinds[HX_BANK_TRANSIENT_TOTAL].count >
	    0)
		hx_sb_printf(&j,
		    ",\"lowest_total\":%lld,\"highest_total\":%lld",
		    (long long)r->lowest_total, (long long)r->highest_total);
	hx_sb_printf(&j, "}");
	return hx__check_set(&r->c, valid, &s, &j);
}

dtx_err
hx_check_bank(const hx_history *h, const hx_bank_cfg *cfg, hx_bank_result *out)
{
	if (h == NULL || cfg == NULL || out == NULL ||
	    (cfg->naccounts > 0 && cfg->accounts == NULL))
		return DTX_EINVAL;
	hx_bank_result r;
	memset(&r, 0, sizeof(r));
	hx__check_init(&r.c, "bank");
	r.lowest_total = INT64_MAX;
	r.highest_total = INT64_MIN;
	for (int k = 0; k < HX_BANK_NKINDS; k++) {
		r.kinds[k].first.op_index = -1;
		r.kinds[k].worst.op_index = -1;
		r.kinds[k].last.op_index = -1;
	}
	size_t na = cfg->naccounts;
	int64_t *sorted = dtx_alloc((na ? na : 1) * sizeof(*sorted));
	bool *seen = dtx_alloc((na ? na : 1) * sizeof(*seen));
	dtx_err rv = DTX_ENOMEM;
	if (sorted == NULL || seen == NULL)
		goto done;
	if (na)
		memcpy(sorted, cfg->accounts, na * sizeof(*sorted));
	qsort(sorted, na, sizeof(*sorted), cmp_i64);
	rv = DTX_EINVAL;
	for (size_t i = 1; i < na; i++)
		if (sorted[i] == sorted[i - 1])
			goto done; // duplicate account id
	// A read that completed before any transfer was invoked (the setup
	// read) saw no saga in flight: its total is never transient.
	size_t n = hx_history_len(h), first_xfer = n;
	for (size_t i = 0; i < n && first_xfer == n; i++)
		if (strcmp(hx_history_get(h, i)->f, "transfer") == 0)
			first_xfer = i;
	for (size_t i = 0; i < n; i++) {
		const hx_op *op = hx_history_get(h, i);
		if (op->type != HX_OP_OK || op->process == HX_PROC_NEMESIS ||
		    (strcmp(op->f, "read") != 0 &&
		        strcmp(op->f, "final-read") != 0))
			continue;
		r.reads++;
		if (check_read(&r, cfg, sorted, seen, op, i < first_xfer))
			r.bad_reads++;
	}
	rv = finish(&r, h, cfg);
done:
	dtx_free(sorted);
	dtx_free(seen);
	if (rv == DTX_OK)
		*out = r;
	else
		hx_check_fini(&r.c);
	return rv;
}
