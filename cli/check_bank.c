// SPDX-License-Identifier: MIT
//
// The bank checker, after Jepsen's bank test: every ok read must show
// exactly the configured accounts, none negative, summing to the configured
// total. Each kind of error is counted with its first, worst and last
// example.

#include <stdlib.h>
#include <string.h>

#include "cli_int.h"

static const char *const kind_names[CLI_BANK_NKINDS] = {
	"wrong-total",
	"negative-balance",
	"unexpected-key",
	"missing-balance",
	"transient-total",
	"malformed-read",
};

const char *
cli_bank_kind_name(cli_bank_kind k)
{
	if ((unsigned)k >= CLI_BANK_NKINDS)
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
note(cli_bank_result *r, cli_bank_kind k, const cli_op *op, int64_t total,
    int64_t badness)
{
	cli_bank_stat *st = &r->kinds[k];
	cli_bank_example ex = { op->index, op->time_ns, op->process, total,
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

// Examines one ok read. Returns true when it had a violation.
static bool
check_read(cli_bank_result *r, const cli_bank_cfg *cfg, const int64_t *sorted,
    bool *seen, const cli_op *op)
{
	size_t before[CLI_BANK_NKINDS];
	for (int k = 0; k < CLI_BANK_NKINDS; k++)
		before[k] = r->kinds[k].count;
	cli_jdoc *doc = NULL;
	const cli_jv *bal = NULL;
	if (op->value != NULL &&
	    cli_json_parse(op->value, strlen(op->value), &doc, NULL, 0) ==
	        DTX_OK)
		bal = cli_jv_get(cli_jdoc_root(doc), "balances");
	if (bal == NULL || bal->type != CLI_JV_OBJ) {
		note(r, CLI_BANK_MALFORMED, op, 0, 1);
		cli_jdoc_free(doc);
		return true;
	}
	memset(seen, 0, cfg->naccounts * sizeof(*seen));
	int64_t unexpected = 0, missing = 0, negsum = 0, total = 0;
	bool overflow = false;
	for (const cli_jv *m = bal->first; m; m = m->next) {
		int64_t id, v;
		const int64_t *hit = NULL;
		if (parse_key(m->key, &id))
			hit = bsearch(&id, sorted, cfg->naccounts,
			    sizeof(*sorted), cmp_i64);
		if (hit == NULL) {
			unexpected++;
			continue;
		}
		if (cli_jv_int(m, &v) != DTX_OK)
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
	cli_jdoc_free(doc);
	if (overflow) {
		note(r, CLI_BANK_MALFORMED, op, 0, 1);
		return true;
	}
	if (unexpected > 0)
		note(r, CLI_BANK_UNEXPECTED_KEY, op, total, unexpected);
	if (missing > 0)
		note(r, CLI_BANK_MISSING_BALANCE, op, total, missing);
	if (unexpected == 0 && missing == 0 && total != cfg->total) {
		int64_t dev = total > cfg->total ? total - cfg->total
		                                 : cfg->total - total;
		bool transient = cfg->saga && strcmp(op->f, "read") == 0;
		note(r,
		    transient ? CLI_BANK_TRANSIENT_TOTAL : CLI_BANK_WRONG_TOTAL,
		    op, total, dev);
		if (total < r->lowest_total)
			r->lowest_total = total;
		if (total > r->highest_total)
			r->highest_total = total;
	}
	if (negsum > 0)
		note(r, CLI_BANK_NEGATIVE, op, total, negsum);
	for (int k = 0; k < CLI_BANK_NKINDS; k++)
		if (k != CLI_BANK_TRANSIENT_TOTAL &&
		    r->kinds[k].count != before[k])
			return true;
	return false;
}

static void
example_json(cli_sb *sb, const char *name, const cli_bank_example *ex)
{
	cli_sb_printf(sb,
	    "\"%s\":{\"index\":%lld,\"time_ns\":%lld,\"process\":%lld,"
	    "\"total\":%lld,\"badness\":%lld}",
	    name, (long long)ex->op_index, (long long)ex->time_ns,
	    (long long)ex->process, (long long)ex->total,
	    (long long)ex->badness);
}

static dtx_err
add_examples(cli_bank_result *r, const cli_history *h, int64_t expected)
{
	for (int k = 0; k < CLI_BANK_NKINDS; k++) {
		const cli_bank_stat *st = &r->kinds[k];
		if (st->count == 0)
			continue;
		const cli_bank_example *ex[3] = { &st->first, &st->worst,
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
			cli_sb d = { 0 };
			cli_sb_printf(&d,
			    "{\"example\":\"%s\",\"count\":%zu,\"total\":%lld,"
			    "\"expected\":%lld,\"badness\":%lld,\"value\":%s}",
			    which[i], st->count, (long long)ex[i]->total,
			    (long long)expected, (long long)ex[i]->badness,
			    k == CLI_BANK_MALFORMED
			        ? "null"
			        : cli_history_get(h, (size_t)ex[i]->op_index)
			              ->value);
			dtx_err rv = cli__check_anomaly(&r->c, kind_names[k],
			    cli_history_get(h, (size_t)ex[i]->op_index), false,
			    0, NULL, cli_sb_take(&d));
			if (rv != DTX_OK)
				return rv;
		}
	}
	return DTX_OK;
}

static dtx_err
finish(cli_bank_result *r, const cli_history *h, const cli_bank_cfg *cfg)
{
	size_t violations = 0;
	for (int k = 0; k < CLI_BANK_NKINDS; k++)
		if (k != CLI_BANK_TRANSIENT_TOTAL)
			violations += r->kinds[k].count;
	cli_valid valid = r->reads == 0 ? CLI_VALID_UNKNOWN
	    : violations > 0            ? CLI_VALID_FALSE
	                                : CLI_VALID_TRUE;
	dtx_err rv = add_examples(r, h, cfg->total);
	if (rv != DTX_OK)
		return rv;

	cli_sb s = { 0 }, j = { 0 };
	if (r->reads == 0)
		cli_sb_printf(&s, "no ok reads: nothing to check");
	else if (r->bad_reads == 0)
		cli_sb_printf(&s, "%zu ok reads, every one sums to %lld",
		    r->reads, (long long)cfg->total);
	else
		cli_sb_printf(&s, "%zu ok reads, %zu with errors", r->reads,
		    r->bad_reads);
	for (int k = 0; k < CLI_BANK_NKINDS; k++) {
		const cli_bank_stat *st = &r->kinds[k];
		if (st->count == 0)
			continue;
		cli_sb_printf(&s, "; %s %zu (worst: op %lld", kind_names[k],
		    st->count, (long long)st->worst.op_index);
		if (k == CLI_BANK_WRONG_TOTAL || k == CLI_BANK_TRANSIENT_TOTAL)
			cli_sb_printf(&s, ", total %lld, expected %lld",
			    (long long)st->worst.total, (long long)cfg->total);
		else if (k != CLI_BANK_MALFORMED)
			cli_sb_printf(
			    &s, ", badness %lld", (long long)st->worst.badness);
		cli_sb_printf(&s, ")%s",
		    k == CLI_BANK_TRANSIENT_TOTAL ? " transient, expected for "
		                                    "sagas"
		                                  : "");
	}
	cli_sb_printf(&j,
	    "{\"valid\":\"%s\",\"reads\":%zu,\"bad_reads\":%zu,"
	    "\"expected_total\":%lld,\"errors\":{",
	    cli_valid_name(valid), r->reads, r->bad_reads,
	    (long long)cfg->total);
	bool comma = false;
	for (int k = 0; k < CLI_BANK_NKINDS; k++) {
		const cli_bank_stat *st = &r->kinds[k];
		if (st->count == 0)
			continue;
		cli_sb_printf(&j, "%s\"%s\":{\"count\":%zu,", comma ? "," : "",
		    kind_names[k], st->count);
		example_json(&j, "first", &st->first);
		cli_sb_printf(&j, ",");
		example_json(&j, "worst", &st->worst);
		cli_sb_printf(&j, ",");
		example_json(&j, "last", &st->last);
		cli_sb_printf(&j, "}");
		comma = true;
	}
	cli_sb_printf(&j, "}");
	if (r->kinds[CLI_BANK_WRONG_TOTAL].count +
	        r->kinds[CLI_BANK_TRANSIENT_TOTAL].count >
	    0)
		cli_sb_printf(&j,
		    ",\"lowest_total\":%lld,\"highest_total\":%lld",
		    (long long)r->lowest_total, (long long)r->highest_total);
	cli_sb_printf(&j, "}");
	return cli__check_set(&r->c, valid, &s, &j);
}

dtx_err
cli_check_bank(
    const cli_history *h, const cli_bank_cfg *cfg, cli_bank_result *out)
{
	if (h == NULL || cfg == NULL || out == NULL ||
	    (cfg->naccounts > 0 && cfg->accounts == NULL))
		return DTX_EINVAL;
	cli_bank_result r;
	memset(&r, 0, sizeof(r));
	cli__check_init(&r.c, "bank");
	r.lowest_total = INT64_MAX;
	r.highest_total = INT64_MIN;
	for (int k = 0; k < CLI_BANK_NKINDS; k++) {
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
	size_t n = cli_history_len(h);
	for (size_t i = 0; i < n; i++) {
		const cli_op *op = cli_history_get(h, i);
		if (op->type != CLI_OP_OK || op->process == CLI_PROC_NEMESIS ||
		    (strcmp(op->f, "read") != 0 &&
		        strcmp(op->f, "final-read") != 0))
			continue;
		r.reads++;
		if (check_read(&r, cfg, sorted, seen, op))
			r.bad_reads++;
	}
	rv = finish(&r, h, cfg);
done:
	dtx_free(sorted);
	dtx_free(seen);
	if (rv == DTX_OK)
		*out = r;
	else
		cli_check_fini(&r.c);
	return rv;
}
