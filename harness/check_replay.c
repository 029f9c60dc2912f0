// SPDX-License-Identifier: MIT
//
// The replay checker: replays the committed transfers in commit-timestamp
// order over the initial balances and holds every ok read at HLC
// timestamp T to the state after exactly the commits with ts <= T. Sums
// hide anomalies that keep the total (a read that misses one side of a
// transfer in one account and another elsewhere); a per-account replay
// does not.

#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "harness_int.h"

// Uncertain transfers tried per read: 2^16 choices at most.
#define MAX_UNCERTAIN 16

typedef enum xstate { X_NONE, X_APPLIED, X_UNCERTAIN } xstate;

typedef struct xfer {
	size_t from, to; // account indices
	int64_t amount;
	clk_ts cts;
	xstate st;
	size_t inv; // index of the invocation
} xfer;

typedef struct rread {
	const hx_op *op;
	clk_ts ts;
} rread;

typedef struct ctx {
	int64_t *ids; // sorted account ids
	size_t na;
	xfer *xs;
	size_t nx;
	hx_txn_obs *obs; // sorted by txid
	size_t nobs;
	hx_txn_cts *cts; // sorted by txid
	size_t ncts;
	size_t ok, ok_cts; // ok transfers, those with a commit timestamp
} ctx;

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int
cmp_u64_first(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int
cmp_xfer(const void *a, const void *b)
{
	const xfer *x = a, *y = b;
	return x->cts < y->cts ? -1 : x->cts > y->cts;
}

static int
cmp_read(const void *a, const void *b)
{
	const rread *x = a, *y = b;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x->op->index < y->op->index ? -1 : x->op->index > y->op->index;
}

// Index of account id, or -1.
static ssize_t
acct_index(const ctx *c, int64_t id)
{
	const int64_t *p =
	    bsearch(&id, c->ids, c->na, sizeof(int64_t), cmp_i64);
	return p ? p - c->ids : -1;
}

static bool
get_int(const hx_jv *root, const char *key, int64_t *out)
{
	return hx_jv_int(hx_jv_get(root, key), out) == DTX_OK;
}

// The resolved outcome of an indeterminate txid from the observations:
// X_APPLIED when any node committed it, X_NONE when every node answered
// aborted (or presumed aborted), X_UNCERTAIN otherwise.
static xstate
resolve(const ctx *c, uint64_t txid)
{
	hx_txn_obs *o =
	    bsearch(&txid, c->obs, c->nobs, sizeof(*c->obs), cmp_u64_first);
	if (o == NULL)
		return X_UNCERTAIN;
	while (o > c->obs && o[-1].txid == txid)
		o--;
	bool committed = false, open = false;
	for (; o < c->obs + c->nobs && o->txid == txid; o++) {
		committed |= o->outcome == HX_TXN_COMMITTED ||
		    o->outcome == HX_TXN_HEUR_COMMITTED;
		open |= o->outcome == HX_TXN_IN_DOUBT ||
		    o->outcome == HX_TXN_UNKNOWN;
	}
	return committed ? X_APPLIED : open ? X_UNCERTAIN : X_NONE;
}

// The commit timestamp the nodes reported for txid (0: none). Every node
// must report the one the client was told (want, 0: not told) and all the
// same one; a node that does not is a "commit-ts-mismatch".
static dtx_err
status_cts(hx_replay_result *r, const ctx *c, const hx_op *inv, uint64_t txid,
    clk_ts want, clk_ts *out)
{
	hx_txn_cts *t =
	    bsearch(&txid, c->cts, c->ncts, sizeof(*c->cts), cmp_u64_first);
	*out = 0;
	if (t == NULL)
		return DTX_OK;
	while (t > c->cts && t[-1].txid == txid)
		t--;
	clk_ts ref = want ? want : t->cts;
	*out = ref;
	for (; t < c->cts + c->ncts && t->txid == txid; t++) {
		if (t->cts == ref)
			continue;
		r->cts_mismatch++;
		hx_sb d = { 0 };
		hx_sb_printf(&d, "{\"node\":%d,\"node_cts\":%llu,\"%s\":%llu}",
		    (int)t->node, (unsigned long long)t->cts,
		    want ? "client_cts" : "other_cts", (unsigned long long)ref);
		dtx_err rv = hx__check_anomaly(&r->c, "commit-ts-mismatch", inv,
		    true, txid, NULL, hx_sb_take(&d));
		if (rv != DTX_OK)
			return rv;
	}
	return DTX_OK;
}

// Builds the transfer list: what each became and at which timestamp.
static dtx_err
collect(hx_replay_result *r, ctx *c, const hx_history *h, const int64_t *pairs)
{
	size_t n = hx_history_len(h);
	if ((c->xs = dtx_alloc((n ? n : 1) * sizeof(xfer))) == NULL)
		return DTX_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const hx_op *inv = hx_history_get(h, i);
		if (inv->type != HX_OP_INVOKE ||
		    inv->process == HX_PROC_NEMESIS ||
		    strcmp(inv->f, "transfer") != 0 || inv->value == NULL)
			continue;
		const hx_op *comp =
		    pairs[i] >= 0 ? hx_history_get(h, (size_t)pairs[i]) : NULL;
		if (comp != NULL && comp->type == HX_OP_FAIL)
			continue;
		hx_jdoc *doc;
		dtx_err prv = hx_json_parse(
		    inv->value, strlen(inv->value), &doc, NULL, 0);
		if (prv == DTX_ENOMEM)
			return prv;
		if (prv != DTX_OK)
			continue;
		const hx_jv *root = hx_jdoc_root(doc);
		int64_t from, to, amount;
		bool ok = get_int(root, "from", &from) &&
		    get_int(root, "to", &to) &&
		    get_int(root, "amount", &amount);
		hx_jdoc_free(doc);
		ssize_t fi = ok ? acct_index(c, from) : -1;
		ssize_t ti = ok ? acct_index(c, to) : -1;
		if (fi < 0 || ti < 0)
			continue;
		xfer x = { (size_t)fi, (size_t)ti, amount, 0, X_UNCERTAIN, i };
		uint64_t txid = 0;
		bool has_txid = hx__op_txid(inv, comp, &txid);
		if (comp != NULL && comp->type == HX_OP_OK) {
			x.st = X_APPLIED;
			c->ok++;
			uint64_t v;
			dtx_err rv = comp->value == NULL
			    ? DTX_EINVAL
			    : hx_json_parse(comp->value, strlen(comp->value),
			          &doc, NULL, 0);
			if (rv == DTX_ENOMEM)
				return rv;
			if (rv == DTX_OK &&
			    hx_jv_u64(hx_jv_get(hx_jdoc_root(doc), "cts"),
			        &v) == DTX_OK) {
				x.cts = v;
				c->ok_cts++;
			}
			if (rv == DTX_OK)
				hx_jdoc_free(doc);
		} else if (has_txid) {
			x.st = resolve(c, txid);
		}
		if (x.st == X_NONE)
			continue;
		clk_ts node_cts = 0;
		dtx_err srv = has_txid
		    ? status_cts(r, c, inv, txid, x.cts, &node_cts)
		    : DTX_OK;
		if (srv != DTX_OK)
			return srv;
		if (x.cts == 0)
			x.cts = node_cts;
		if (x.cts == 0)
			x.st = X_UNCERTAIN; // committed, at an unknown time
		c->xs[c->nx++] = x;
	}
	return DTX_OK;
}

// Whether some choice among the uncertain transfers cand[0..k) makes the
// residual diff (read - expected, per account) zero: Gray-code walk, one
// transfer toggled per step.
static bool
explained(const ctx *c, const size_t *cand, size_t k, int64_t *diff)
{
	size_t nonzero = 0;
	for (size_t a = 0; a < c->na; a++)
		nonzero += diff[a] != 0;
	bool found = nonzero == 0;
	for (uint32_t g = 1; !found && g < (UINT32_C(1) << k); g++) {
		uint32_t bit = (uint32_t)__builtin_ctz(g);
		uint32_t gray = g ^ (g >> 1);
		const xfer *x = &c->xs[cand[bit]];
		int64_t sign = (gray >> bit) & 1 ? 1 : -1; // now in: subtract
		size_t acc[2] = { x->from, x->to };
		int64_t d[2] = { -x->amount, x->amount };
		for (int s = 0; s < 2; s++) {
			nonzero -= diff[acc[s]] != 0;
			diff[acc[s]] -= sign * d[s];
			nonzero += diff[acc[s]] != 0;
		}
		found = nonzero == 0;
	}
	return found;
}

static char *
mismatch_detail(
    const ctx *c, clk_ts ts, const int64_t *got, const int64_t *want, size_t k)
{
	hx_sb d = { 0 };
	hx_sb_printf(&d, "{\"ts\":%llu,\"uncertain\":%zu,\"accounts\":[",
	    (unsigned long long)ts, k);
	size_t shown = 0;
	for (size_t a = 0; a < c->na && shown < 8; a++) {
		if (got[a] == want[a])
			continue;
		hx_sb_printf(&d,
		    "%s{\"account\":%lld,\"read\":%lld,\"expected\":%lld}",
		    shown ? "," : "", (long long)c->ids[a], (long long)got[a],
		    (long long)want[a]);
		shown++;
	}
	hx_sb_printf(&d, "]}");
	return hx_sb_take(&d);
}

// Reads op's balances into got; false when the read is not a whole-bank
// read of exactly the accounts (the bank checker reports those) or, with
// *rv DTX_ENOMEM, when memory ran out.
static bool
read_balances(
    const ctx *c, const hx_op *op, int64_t *got, bool *seen, dtx_err *rv)
{
	hx_jdoc *doc;
	*rv = hx_json_parse(op->value, strlen(op->value), &doc, NULL, 0);
	if (*rv != DTX_OK) {
		if (*rv != DTX_ENOMEM)
			*rv = DTX_OK; // collect_reads parsed it: cannot happen
		return false;
	}
	const hx_jv *bal = hx_jv_get(hx_jdoc_root(doc), "balances");
	bool ok = bal != NULL && bal->type == HX_JV_OBJ && bal->len == c->na;
	memset(seen, 0, c->na * sizeof(*seen));
	for (const hx_jv *m = ok ? bal->first : NULL; ok && m; m = m->next) {
		char *end;
		long long id = strtoll(m->key, &end, 10);
		ssize_t a = *end == '\0' ? acct_index(c, id) : -1;
		ok = a >= 0 && !seen[a] && hx_jv_int(m, &got[a]) == DTX_OK;
		if (ok)
			seen[a] = true;
	}
	hx_jdoc_free(doc);
	return ok;
}

// Checks one read against the replayed state want.
static dtx_err
check_one(hx_replay_result *r, const ctx *c, const rread *rd,
    const int64_t *want, int64_t *got, int64_t *diff, size_t *cand, bool *seen)
{
	dtx_err rv;
	if (!read_balances(c, rd->op, got, seen, &rv))
		return rv;
	r->reads++;
	bool same = memcmp(got, want, c->na * sizeof(int64_t)) == 0;
	if (same) {
		r->matched++;
		return DTX_OK;
	}
	// Transfers still uncertain that were invoked before the read
	// completed could be in it.
	size_t k = 0;
	size_t comp = (size_t)rd->op->index;
	for (size_t i = 0; i < c->nx; i++) {
		if (c->xs[i].st != X_UNCERTAIN || c->xs[i].inv > comp)
			continue;
		if (k == MAX_UNCERTAIN) {
			k++;
			break;
		}
		cand[k++] = i;
	}
	if (k <= MAX_UNCERTAIN) {
		for (size_t a = 0; a < c->na; a++)
			diff[a] = got[a] - want[a];
		if (explained(c, cand, k, diff)) {
			r->explained++;
			return DTX_OK;
		}
		r->wrong++;
		return hx__check_anomaly(&r->c, "replay-mismatch", rd->op,
		    false, 0, NULL, mismatch_detail(c, rd->ts, got, want, k));
	}
	r->unknown++;
	return hx__check_anomaly(&r->c, "replay-unknown", rd->op, false, 0,
	    NULL, mismatch_detail(c, rd->ts, got, want, k));
}

// Collects the ok reads with their timestamps, sorted by timestamp.
static dtx_err
collect_reads(const hx_history *h, rread **out, size_t *nout)
{
	size_t n = hx_history_len(h), k = 0;
	rread *rs = dtx_alloc((n ? n : 1) * sizeof(*rs));
	if (rs == NULL)
		return DTX_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const hx_op *op = hx_history_get(h, i);
		if (op->type != HX_OP_OK || op->process == HX_PROC_NEMESIS ||
		    op->value == NULL ||
		    (strcmp(op->f, "read") != 0 &&
		        strcmp(op->f, "final-read") != 0))
			continue;
		hx_jdoc *doc;
		dtx_err rv =
		    hx_json_parse(op->value, strlen(op->value), &doc, NULL, 0);
		if (rv == DTX_ENOMEM) {
			dtx_free(rs);
			return rv;
		}
		if (rv != DTX_OK)
			continue;
		uint64_t ts;
		if (hx_jv_u64(hx_jv_get(hx_jdoc_root(doc), "ts"), &ts) ==
		        DTX_OK &&
		    ts != 0)
			rs[k++] = (rread) { op, ts };
		hx_jdoc_free(doc);
	}
	qsort(rs, k, sizeof(*rs), cmp_read);
	*out = rs;
	*nout = k;
	return DTX_OK;
}

// Sweeps the reads in timestamp order over the applied transfers in
// commit order.
static dtx_err
replay(hx_replay_result *r, ctx *c, const hx_history *h, int64_t initial,
    bool from_first)
{
	rread *rs = NULL;
	size_t nr = 0, na = c->na ? c->na : 1;
	int64_t *state = dtx_alloc(na * sizeof(int64_t));
	int64_t *got = dtx_alloc(na * sizeof(int64_t));
	int64_t *diff = dtx_alloc(na * sizeof(int64_t));
	bool *seen = dtx_alloc(na * sizeof(bool));
	size_t cand[MAX_UNCERTAIN + 1];
	dtx_err rv = DTX_ENOMEM;
	if (state == NULL || got == NULL || diff == NULL || seen == NULL ||
	    (rv = collect_reads(h, &rs, &nr)) != DTX_OK)
		goto done;
	for (size_t a = 0; a < c->na; a++)
		state[a] = initial;
	// A bank the run did not create: its first read (the setup read)
	// is the only source of the per-account balances.
	const rread *first = NULL;
	for (size_t i = 0; from_first && i < nr; i++)
		if (first == NULL || rs[i].op->index < first->op->index)
			first = &rs[i];
	if (first != NULL && !read_balances(c, first->op, state, seen, &rv)) {
		if (rv != DTX_OK)
			goto done;
		for (size_t a = 0; a < c->na; a++)
			state[a] = initial;
	}
	qsort(c->xs, c->nx, sizeof(*c->xs), cmp_xfer);
	size_t next = 0;
	for (size_t i = 0; rv == DTX_OK && i < nr; i++) {
		for (; next < c->nx && c->xs[next].cts <= rs[i].ts; next++) {
			const xfer *x = &c->xs[next];
			if (x->st != X_APPLIED)
				continue;
			state[x->from] -= x->amount;
			state[x->to] += x->amount;
		}
		rv = check_one(r, c, &rs[i], state, got, diff, cand, seen);
	}
done:
	dtx_free(rs);
	dtx_free(state);
	dtx_free(got);
	dtx_free(diff);
	dtx_free(seen);
	return rv;
}

// skip: why the replay did not run (NULL: it ran).
static dtx_err
describe(hx_replay_result *r, const char *skip)
{
	hx_sb s = { 0 }, j = { 0 };
	hx_valid valid = r->wrong + r->cts_mismatch > 0 ? HX_VALID_FALSE
	    : skip != NULL                              ? HX_VALID_TRUE
	    : (r->unknown > 0 || r->reads == 0)         ? HX_VALID_UNKNOWN
	                                                : HX_VALID_TRUE;
	r->skipped = skip != NULL;
	if (skip != NULL)
		hx_sb_printf(&s, "skipped: %s", skip);
	else
		hx_sb_printf(&s,
		    "%zu reads replayed against %zu committed transfers "
		    "(%zu uncertain): %zu match, %zu explained by uncertain "
		    "transfers, %zu wrong, %zu undecided; %zu commit "
		    "timestamps that differ between nodes or from the reply",
		    r->reads, r->committed, r->uncertain, r->matched,
		    r->explained, r->wrong, r->unknown, r->cts_mismatch);
	hx_sb_printf(&j, "{\"valid\":%s,\"skipped\":", hx_valid_json(valid));
	if (skip != NULL)
		hx_sb_json_str(&j, skip);
	else
		hx_sb_printf(&j, "false");
	hx_sb_printf(&j,
	    ",\"reads\":%zu,\"matched\":%zu,\"explained\":%zu,"
	    "\"wrong\":%zu,\"unknown\":%zu,\"committed\":%zu,"
	    "\"uncertain\":%zu,\"cts_mismatch\":%zu}",
	    r->reads, r->matched, r->explained, r->wrong, r->unknown,
	    r->committed, r->uncertain, r->cts_mismatch);
	return hx__check_set(&r->c, valid, &s, &j);
}

static dtx_err
setup(ctx *c, const hx_bank_cfg *cfg, const hx_txn_obs *obs, size_t nobs,
    const hx_txn_cts *cts, size_t ncts)
{
	c->na = cfg->naccounts;
	c->ids = dtx_alloc((c->na ? c->na : 1) * sizeof(int64_t));
	c->obs = dtx_alloc((nobs ? nobs : 1) * sizeof(*obs));
	c->cts = dtx_alloc((ncts ? ncts : 1) * sizeof(*cts));
	if (c->ids == NULL || c->obs == NULL || c->cts == NULL)
		return DTX_ENOMEM;
	if (c->na)
		memcpy(c->ids, cfg->accounts, c->na * sizeof(int64_t));
	qsort(c->ids, c->na, sizeof(int64_t), cmp_i64);
	if (nobs)
		memcpy(c->obs, obs, nobs * sizeof(*obs));
	c->nobs = nobs;
	qsort(c->obs, nobs, sizeof(*obs), cmp_u64_first);
	if (ncts)
		memcpy(c->cts, cts, ncts * sizeof(*cts));
	c->ncts = ncts;
	qsort(c->cts, ncts, sizeof(*cts), cmp_u64_first);
	return DTX_OK;
}

dtx_err
hx_check_replay(const hx_history *h, const hx_bank_cfg *cfg, bool from_first,
    const hx_txn_obs *obs, size_t nobs, const hx_txn_cts *cts, size_t ncts,
    hx_replay_result *out)
{
	if (h == NULL || cfg == NULL || out == NULL ||
	    (cfg->naccounts > 0 && cfg->accounts == NULL) ||
	    (nobs > 0 && obs == NULL) || (ncts > 0 && cts == NULL))
		return DTX_EINVAL;
	hx_replay_result r;
	memset(&r, 0, sizeof(r));
	hx__check_init(&r.c, "replay");
	ctx c;
	memset(&c, 0, sizeof(c));
	int64_t *pairs = NULL;
	const char *skip = NULL;
	dtx_err rv = DTX_OK;
	if (cfg->saga)
		skip = "sagas: a saga's debit and credit commit as separate "
		       "local transactions at timestamps the client never "
		       "learns, so there is no commit timestamp to replay "
		       "against (the bank and saga checkers judge its "
		       "transient and final totals)";
	else if (cfg->naccounts == 0 ||
	    cfg->total % (int64_t)cfg->naccounts != 0)
		skip = "the initial balances are not known (the total is not "
		       "an equal share per account)";
	if (skip == NULL) {
		int64_t initial = cfg->total / (int64_t)cfg->naccounts;
		if ((rv = setup(&c, cfg, obs, nobs, cts, ncts)) != DTX_OK ||
		    (rv = hx_history_pairs(h, &pairs)) != DTX_OK ||
		    (rv = collect(&r, &c, h, pairs)) != DTX_OK)
			goto done;
		for (size_t i = 0; i < c.nx; i++) {
			if (c.xs[i].st == X_APPLIED)
				r.committed++;
			else
				r.uncertain++;
		}
		// A history recorded before transfers carried their commit
		// timestamps has nothing to replay against.
		if (c.ok > 0 && c.ok_cts == 0)
			skip = "no ok transfer in the history carries its "
			       "commit timestamp";
		else if ((rv = replay(&r, &c, h, initial, from_first)) !=
		    DTX_OK)
			goto done;
	}
	rv = describe(&r, skip);
done:
	dtx_free(pairs);
	dtx_free(c.ids);
	dtx_free(c.obs);
	dtx_free(c.cts);
	dtx_free(c.xs);
	if (rv == DTX_OK)
		*out = r;
	else
		hx_check_fini(&r.c);
	return rv;
}
