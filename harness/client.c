// SPDX-License-Identifier: MIT
//
// Talking to a running cluster: bank transfers as TXNs or sagas,
// consistent snapshot reads of every account at one HLC timestamp, bank
// initialisation, HEALTH, FAULT, and the STATUS / SAGA_STATUS questions
// the atomicity and saga checkers need.

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "harness_int.h"

struct hx_conn {
	dtx_topo topo;
	uint32_t self;
	uint32_t saga;
	// Every coordinator and saga orchestrator, in topology order: the
	// transfers are spread across them (hx_conn_coord_for).
	uint32_t coords[DTX_TOPO_MAX], ncoords;
	uint32_t sagas[DTX_TOPO_MAX], nsagas;
	atomic_uint rr; // the next coordinator for a txid of 0
	proto_client *cl[DTX_TOPO_MAX];
	// Over TLS: STATUS and FAULT go through these (an admin or harness
	// certificate); NULL: through cl.
	proto_client *priv[DTX_TOPO_MAX];
	proto_tls *tls, *priv_tls; // owned; NULL over plaintext
};

#define DEFAULT_TIMEOUT_MS 5000

// Opens a client to daemon nd as tls (may be NULL: plaintext).
static dtx_err
open_one(
    const hx_conn *c, proto_tls *tls, const dtx_node *nd, proto_client **out)
{
	// The CLI stamps no clocks: a skewed daemon's HLC must not travel
	// through it to the others.
	proto_client_cfg cc = {
		.url = nd->url,
		.vc_nodes = c->topo.max_id,
		.node_id = c->self,
		.timeout_ms = DEFAULT_TIMEOUT_MS,
		.connect_wait_ms = tls != NULL ? 2000 : 300,
		.tls = tls,
		.check_server = tls != NULL,
		.server_node = nd->id,
	};
	return proto_client_open(&cc, out);
}

// Whether the harness talks to nd.
static bool
served(const dtx_node *nd)
{
	return nd->role != DTX_ROLE_CLIENT && nd->id < DTX_TOPO_MAX;
}

// Opens a client to every daemon of c->topo into cls, as tls (may be
// NULL: plaintext).
static dtx_err
open_clients(hx_conn *c, proto_tls *tls, proto_client **cls)
{
	dtx_err rv = DTX_OK;
	for (uint32_t i = 0; i < c->topo.n && rv == DTX_OK; i++)
		if (served(&c->topo.nodes[i]))
			rv = open_one(c, tls, &c->topo.nodes[i],
			    &cls[c->topo.nodes[i].id]);
	return rv;
}

dtx_err
hx_conn_redial(hx_conn *c, uint32_t id)
{
	if (c == NULL)
		return DTX_EINVAL;
	for (uint32_t i = 0; i < c->topo.n; i++) {
		const dtx_node *nd = &c->topo.nodes[i];
		if (!served(nd) || (id != UINT32_MAX && nd->id != id))
			continue;
		proto_client *cl = NULL, *priv = NULL;
		dtx_err rv = open_one(c, c->tls, nd, &cl);
		if (rv == DTX_OK && c->priv_tls != NULL)
			rv = open_one(c, c->priv_tls, nd, &priv);
		if (rv != DTX_OK) {
			proto_client_close(cl);
			return rv;
		}
		// A close that nng cannot end is bounded and left to the
		// process (proto_client_close).
		proto_client_close(c->cl[nd->id]);
		proto_client_close(c->priv[nd->id]);
		c->cl[nd->id] = cl;
		c->priv[nd->id] = priv;
	}
	return DTX_OK;
}

dtx_err
hx_conn_open_as(
    const dtx_topo *topo, proto_tls *tls, proto_tls *priv, hx_conn **out)
{
	return hx_conn_open_from(topo, -1, tls, priv, out);
}

dtx_err
hx_conn_open_from(const dtx_topo *topo, int64_t self, proto_tls *tls,
    proto_tls *priv, hx_conn **out)
{
	hx_conn *c = self < DTX_TOPO_MAX ? dtx_calloc(1, sizeof(*c)) : NULL;
	if (c == NULL) {
		proto_tls_close(tls);
		proto_tls_close(priv);
		return self < DTX_TOPO_MAX ? DTX_ENOMEM : DTX_EINVAL;
	}
	c->topo = *topo;
	c->saga = UINT32_MAX;
	c->self = topo->max_id > 0 ? topo->max_id - 1 : 0;
	c->tls = tls;
	c->priv_tls = tls != NULL ? priv : NULL;
	if (tls == NULL)
		proto_tls_close(priv);
	const dtx_node *me = dtx_topo_first(topo, DTX_ROLE_CLIENT);
	if (me != NULL)
		c->self = me->id;
	if (self >= 0)
		c->self = (uint32_t)self;
	const dtx_node *sg = dtx_topo_first(topo, DTX_ROLE_SAGA);
	if (sg != NULL)
		c->saga = sg->id;
	for (uint32_t i = 0; i < topo->n; i++) {
		const dtx_node *nd = &topo->nodes[i];
		if (nd->role == DTX_ROLE_COORDINATOR)
			c->coords[c->ncoords++] = nd->id;
		else if (nd->role == DTX_ROLE_SAGA)
			c->sagas[c->nsagas++] = nd->id;
	}
	// Round robin from a random start, so that one-shot commands
	// (dtx transfer) spread too.
	uint64_t r0 = 0;
	(void)dtx_random_u64(&r0);
	atomic_init(&c->rr, (unsigned)r0);
	dtx_err rv = open_clients(c, c->tls, c->cl);
	if (rv == DTX_OK && c->priv_tls != NULL)
		rv = open_clients(c, c->priv_tls, c->priv);
	if (rv != DTX_OK) {
		hx_conn_close(c);
		return rv;
	}
	*out = c;
	return DTX_OK;
}

dtx_err
hx_conn_open(const dtx_topo *topo, hx_conn **out)
{
	return hx_conn_open_as(topo, NULL, NULL, out);
}

void
hx_conn_close(hx_conn *c)
{
	if (c == NULL)
		return;
	for (uint32_t i = 0; i < DTX_TOPO_MAX; i++) {
		proto_client_close(c->cl[i]);
		proto_client_close(c->priv[i]);
	}
	proto_tls_close(c->tls);
	proto_tls_close(c->priv_tls);
	dtx_free(c);
}

const dtx_topo *
hx_conn_topo(const hx_conn *c)
{
	return &c->topo;
}

uint32_t
hx_conn_saga_id(const hx_conn *c)
{
	return c->saga;
}

uint32_t
hx_conn_ncoords(const hx_conn *c)
{
	return c->ncoords;
}

uint32_t
hx_conn_coord_for(hx_conn *c, uint64_t txid)
{
	if (c->ncoords == 0)
		return UINT32_MAX;
	if (txid != 0)
		return c->coords[txid % c->ncoords];
	return c->coords[atomic_fetch_add(&c->rr, 1) % c->ncoords];
}

uint32_t
hx_conn_saga_for(const hx_conn *c, const char *gid)
{
	if (c->nsagas == 0)
		return UINT32_MAX;
	return c->sagas[dtx_crc32c(0, gid, strlen(gid)) % c->nsagas];
}

dtx_err
hx_conn_call(hx_conn *c, uint32_t id, proto_msg *req, proto_msg *rep,
    uint32_t timeout_ms, bool idempotent)
{
	if (id >= DTX_TOPO_MAX || c->cl[id] == NULL)
		return DTX_EINVAL;
	proto_call_opts o = {
		.timeout_ms = timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS,
		.idempotent = idempotent,
	};
	// Only an admin or the harness may ask STATUS, list or resolve
	// transactions in doubt, fetch traces or send FAULT.
	proto_type t = req->hdr.type;
	bool priv = t == PROTO_STATUS || t == PROTO_FAULT ||
	    t == PROTO_TXN_LIST || t == PROTO_TXN_RESOLVE;
	proto_client *cl =
	    priv && c->priv[id] != NULL ? c->priv[id] : c->cl[id];
	return proto_client_call(cl, req, rep, &o);
}

// An idempotent call to node id that wants a reply of type want. On
// success *rep is that reply (free with proto_msg_free); on failure
// nothing is left to free: a refusal or a reply of another type
// (DTX_EPROTO) is freed here.
static dtx_err
call_for(hx_conn *c, uint32_t id, proto_msg *req, uint32_t timeout_ms,
    proto_type want, proto_msg *rep)
{
	proto_msg r;
	dtx_err rv = hx_conn_call(c, id, req, &r, timeout_ms, true);
	if (rv == DTX_EREFUSED)
		proto_msg_free(&r);
	if (rv != DTX_OK)
		return rv;
	if (r.hdr.type != want) {
		proto_msg_free(&r);
		return DTX_EPROTO;
	}
	*rep = r;
	return DTX_OK;
}

const char *
hx_outcome_name(proto_outcome o)
{
	switch (o) {
	case PROTO_COMMITTED:
		return "committed";
	case PROTO_ABORTED:
		return "aborted";
	default:
		return "unknown";
	}
}

void
hx_acct_key(char *buf, size_t len, int64_t acct)
{
	snprintf(buf, len, HX_ACCT_PREFIX "%" PRId64, acct);
}

void
hx_op_add(proto_op *op, const char *key, int64_t delta, int64_t min)
{
	memset(op, 0, sizeof(*op));
	op->kind = PROTO_OP_ADD;
	op->key.p = (uint8_t *)key;
	op->key.n = (uint32_t)strlen(key);
	op->delta = delta;
	op->min = min;
}

static void
set_reason(hx_xfer *out, const char *why)
{
	snprintf(out->reason, sizeof(out->reason), "%s", why ? why : "");
}

// Sends a transfer's req to node id. True when *rep is a reply of type
// want (owned by the caller: proto_msg_free); else out holds the error
// and its reason and nothing is left to free.
static bool
xfer_call(hx_conn *c, uint32_t id, proto_msg *req, proto_msg *rep,
    uint32_t timeout_ms, proto_type want, hx_xfer *out)
{
	out->err = hx_conn_call(c, id, req, rep, timeout_ms, false);
	if (out->err == DTX_EREFUSED) {
		set_reason(out,
		    rep->u.error.reason ? rep->u.error.reason
		                        : dtx_errname(rep->u.error.code));
		proto_msg_free(rep);
		return false;
	}
	if (out->err != DTX_OK) {
		set_reason(out, dtx_strerror(out->err));
		return false;
	}
	if (rep->hdr.type != want) {
		out->err = DTX_EPROTO;
		set_reason(out, "unexpected reply type");
		proto_msg_free(rep);
		return false;
	}
	return true;
}

// Starts a transfer's result as not yet known (outcome UNKNOWN, no
// failed step) and writes the two accounts' keys into kf and kt, klen
// bytes each.
static void
xfer_begin(
    hx_xfer *out, int64_t from, int64_t to, char *kf, char *kt, size_t klen)
{
	memset(out, 0, sizeof(*out));
	out->outcome = PROTO_UNKNOWN;
	out->failed_step = -1;
	out->coord = UINT32_MAX;
	hx_acct_key(kf, klen, from);
	hx_acct_key(kt, klen, to);
}

void
hx_transfer(hx_conn *c, proto_mode mode, int64_t from, int64_t to,
    int64_t amount, uint32_t timeout_ms, hx_xfer *out)
{
	hx_transfer_as(c, mode, 0, from, to, amount, timeout_ms, out);
}

void
hx_transfer_as(hx_conn *c, proto_mode mode, uint64_t txid, int64_t from,
    int64_t to, int64_t amount, uint32_t timeout_ms, hx_xfer *out)
{
	char kf[48], kt[48];
	proto_op ops[2];
	proto_msg req, rep;
	xfer_begin(out, from, to, kf, kt, sizeof(kf));
	out->txid = txid;
	memset(ops, 0, sizeof(ops));
	hx_op_add(&ops[0], kf, -amount, 0);
	hx_op_add(&ops[1], kt, amount, 0);
	out->coord = hx_conn_coord_for(c, txid);
	if (out->coord == UINT32_MAX) {
		out->err = DTX_EINVAL;
		set_reason(out, "no coordinator in the topology");
		return;
	}
	proto_msg_init(&req, PROTO_TXN);
	req.u.txn.mode = mode;
	req.u.txn.n_ops = 2;
	req.u.txn.ops = ops;
	req.u.txn.txid = txid;
	// A coordinator that certainly did not get the TXN (DTX_EUNREACH:
	// down, or never connected) hands it to the next one, same txid:
	// it happened nowhere yet. Any other failure may have reached it,
	// so it is the caller's to resolve there (out->coord says where).
	uint32_t first = 0;
	while (c->coords[first] != out->coord)
		first++;
	bool ok = false;
	for (uint32_t k = 0; k < c->ncoords; k++) {
		out->coord = c->coords[(first + k) % c->ncoords];
		ok = xfer_call(c, out->coord, &req, &rep, timeout_ms,
		    PROTO_TXN_REPLY, out);
		if (ok || out->err != DTX_EUNREACH)
			break;
	}
	if (!ok)
		return;
	out->outcome = rep.u.txn_reply.outcome;
	out->txid = rep.u.txn_reply.txid;
	out->cts = rep.u.txn_reply.commit_ts;
	set_reason(out, rep.u.txn_reply.reason);
	proto_msg_free(&rep);
}

void
hx_saga_transfer(hx_conn *c, const char *gid, int64_t from, int64_t to,
    int64_t amount, uint32_t timeout_ms, hx_xfer *out)
{
	char kf[48], kt[48];
	proto_saga_step steps[2];
	proto_msg req, rep;
	xfer_begin(out, from, to, kf, kt, sizeof(kf));
	out->coord = hx_conn_saga_for(c, gid);
	if (out->coord == UINT32_MAX || c->topo.nparts == 0) {
		out->err = DTX_EINVAL;
		set_reason(out, "no saga orchestrator in the topology");
		return;
	}
	memset(steps, 0, sizeof(steps));
	// Debit first (it can fail on funds), then credit; compensations
	// must always succeed, so they carry no minimum.
	steps[0].participant = dtx_topo_route(&c->topo, kf, strlen(kf));
	hx_op_add(&steps[0].action, kf, -amount, 0);
	hx_op_add(&steps[0].compensate, kf, amount, INT64_MIN);
	steps[1].participant = dtx_topo_route(&c->topo, kt, strlen(kt));
	hx_op_add(&steps[1].action, kt, amount, 0);
	hx_op_add(&steps[1].compensate, kt, -amount, INT64_MIN);
	proto_msg_init(&req, PROTO_SAGA_SUBMIT);
	req.u.saga_submit.gid = (char *)gid;
	req.u.saga_submit.n_steps = 2;
	req.u.saga_submit.steps = steps;
	if (!xfer_call(
	        c, out->coord, &req, &rep, timeout_ms, PROTO_SAGA_REPLY, out))
		return;
	out->outcome = rep.u.saga_reply.outcome;
	out->failed_step = rep.u.saga_reply.failed_step;
	set_reason(out, rep.u.saga_reply.reason);
	proto_msg_free(&rep);
}

// Parses "acct:<n>"; false for other keys.
static bool
parse_acct(const proto_bytes *k, int64_t *out)
{
	size_t pl = strlen(HX_ACCT_PREFIX);
	char buf[32];
	if (k->n <= pl || k->n - pl >= sizeof(buf) ||
	    memcmp(k->p, HX_ACCT_PREFIX, pl) != 0)
		return false;
	memcpy(buf, k->p + pl, k->n - pl);
	buf[k->n - pl] = '\0';
	char *end;
	long long v = strtoll(buf, &end, 10);
	if (*end != '\0' || v < 0)
		return false;
	*out = v;
	return true;
}

int64_t
hx_health_counter(const proto_msg *rep, const char *name)
{
	if (rep->hdr.type != PROTO_HEALTH_REPLY)
		return -1;
	const proto_health_reply *hr = &rep->u.health_reply;
	for (uint32_t i = 0; i < hr->n_counters; i++)
		if (strcmp(hr->counters[i].name, name) == 0)
			return hr->counters[i].value;
	return -1;
}

bool
hx_entry_i64(const proto_entry *e, int64_t *out)
{
	if (!e->found)
		return false;
	if (!e->is_bytes) {
		*out = e->ival;
		return true;
	}
	if (e->bval.n != 8)
		return false;
	*out = (int64_t)dtx_get_le64(e->bval.p);
	return true;
}

typedef struct acct_ent {
	int64_t id, bal;
} acct_ent;

static int
cmp_ent(const void *a, const void *b)
{
	int64_t x = ((const acct_ent *)a)->id, y = ((const acct_ent *)b)->id;
	return x < y ? -1 : x > y;
}

// What a snapshot read gathers.
typedef struct snap_acc {
	acct_ent *ents;
	size_t n, cap, other;
} snap_acc;

static dtx_err
snap_add(snap_acc *a, const proto_read_reply *rr)
{
	for (uint32_t i = 0; i < rr->n_entries; i++) {
		const proto_entry *e = &rr->entries[i];
		int64_t aid, bal;
		if (!e->found)
			continue;
		if (!parse_acct(&e->key, &aid) || !hx_entry_i64(e, &bal)) {
			a->other++;
			continue;
		}
		if (DTX_GROW(a->ents, a->n, a->cap, 64) != DTX_OK)
			return DTX_ENOMEM;
		a->ents[a->n].id = aid;
		a->ents[a->n].bal = bal;
		a->n++;
	}
	return DTX_OK;
}

// One page of participant id's keys at *ts (0: now) after the cursor
// *after (empty: from the start), retried while an intent blocks it.
// On success *rep holds the page. DTX_ERANGE: the participant collected
// the snapshot (too old).
static dtx_err
read_page(hx_conn *c, uint32_t id, clk_ts ts, const proto_bytes *after,
    uint64_t deadline, proto_msg *rep)
{
	for (;;) {
		uint64_t now = dtx_mono_ns();
		if (now >= deadline)
			return DTX_ETIMEDOUT;
		uint32_t left = (uint32_t)((deadline - now) / 1000000u) + 1;
		proto_msg req;
		proto_msg_init(&req, PROTO_READ);
		req.u.read.ts = ts;
		req.u.read.page = PROTO_READ_PAGE_DEFAULT;
		req.u.read.after = *after; // borrowed
		dtx_err rv = hx_conn_call(c, id, &req, rep, left, true);
		if (rv == DTX_EREFUSED) {
			rv = rep->u.error.code == DTX_ERANGE ? DTX_ERANGE
			                                     : DTX_EREFUSED;
			proto_msg_free(rep);
			return rv;
		}
		if (rv != DTX_OK)
			return rv;
		if (rep->hdr.type != PROTO_READ_REPLY) {
			proto_msg_free(rep);
			return DTX_EPROTO;
		}
		if (rep->u.read_reply.status != PROTO_READ_RETRY)
			return DTX_OK;
		proto_msg_free(rep);
		dtx_sleep_ms(10);
	}
}

// Every participant's keys at *ts (0: now, then the first page's ts),
// page after page, all at that one ts; participants whose bit is set in
// skip are left out. *by: the participant that picked ts (-1: given).
static dtx_err
read_all_pages(hx_conn *c, clk_ts *ts, uint64_t deadline, uint32_t skip,
    snap_acc *a, int64_t *by)
{
	dtx_err rv = DTX_OK;
	for (uint32_t pi = 0; pi < c->topo.nparts && rv == DTX_OK; pi++) {
		uint32_t id = c->topo.parts[pi];
		proto_bytes after = { 0 };
		if (id < 32 && (skip & (1u << id)))
			continue;
		for (;;) {
			proto_msg rep;
			rv = read_page(c, id, *ts, &after, deadline, &rep);
			if (rv != DTX_OK)
				break;
			if (*ts == 0) {
				*ts = rep.u.read_reply.ts;
				*by = id;
			}
			rv = snap_add(a, &rep.u.read_reply);
			dtx_free(after.p);
			// The reply's cursor becomes the next request's.
			after = rep.u.read_reply.next;
			rep.u.read_reply.next = (proto_bytes) { 0 };
			proto_msg_free(&rep);
			if (rv != DTX_OK || after.n == 0)
				break;
		}
		dtx_free(after.p);
	}
	return rv;
}

dtx_err
hx_snapshot_read(hx_conn *c, clk_ts at, uint32_t timeout_ms, hx_snapshot *out)
{
	return hx_snapshot_read_skip(c, at, timeout_ms, 0, out);
}

dtx_err
hx_snapshot_read_skip(
    hx_conn *c, clk_ts at, uint32_t timeout_ms, uint32_t skip, hx_snapshot *out)
{
	uint64_t deadline = dtx_mono_ns() + (uint64_t)timeout_ms * 1000000u;
	snap_acc a = { 0 };
	clk_ts ts = at;
	int64_t by = -1;
	dtx_err rv;
	for (;;) {
		rv = read_all_pages(c, &ts, deadline, skip, &a, &by);
		// A snapshot "now" collected between two pages: take a new one.
		if (rv != DTX_ERANGE || at != 0 || dtx_mono_ns() >= deadline)
			break;
		a.n = a.other = 0;
		ts = 0;
		by = -1;
	}
	acct_ent *ents = a.ents;
	size_t n = a.n;
	if (rv != DTX_OK) {
		dtx_free(ents);
		return rv;
	}
	if (n > 1)
		qsort(ents, n, sizeof(*ents), cmp_ent);
	memset(out, 0, sizeof(*out));
	out->ids = dtx_calloc(n ? n : 1, sizeof(int64_t));
	out->bal = dtx_calloc(n ? n : 1, sizeof(int64_t));
	if (out->ids == NULL || out->bal == NULL) {
		dtx_free(ents);
		hx_snapshot_fini(out);
		return DTX_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		out->ids[i] = ents[i].id;
		out->bal[i] = ents[i].bal;
		out->total += ents[i].bal;
	}
	out->n = n;
	out->ts = ts;
	out->picked_by = by;
	out->other_keys = a.other;
	dtx_free(ents);
	return DTX_OK;
}

void
hx_snapshot_fini(hx_snapshot *s)
{
	if (s == NULL)
		return;
	dtx_free(s->ids);
	dtx_free(s->bal);
	memset(s, 0, sizeof(*s));
}

void
hx_snapshot_json(const hx_snapshot *s, hx_sb *sb)
{
	hx_sb_printf(sb, "{\"ts\":%" PRIu64 ",\"balances\":{", s->ts);
	for (size_t i = 0; i < s->n; i++)
		hx_sb_printf(sb, "%s\"%" PRId64 "\":%" PRId64, i ? "," : "",
		    s->ids[i], s->bal[i]);
	hx_sb_printf(sb, "}}");
}

dtx_err
hx_bank_init(hx_conn *c, uint32_t n, int64_t balance, bool *created, char *err,
    size_t errlen)
{
	hx_snapshot snap;
	dtx_err rv;
	*created = false;
	if (n < 2 || n > HX_ACCOUNTS_MAX) {
		snprintf(
		    err, errlen, "accounts must be 2 to %d", HX_ACCOUNTS_MAX);
		return DTX_EINVAL;
	}
	if ((rv = hx_snapshot_read(c, 0, 10000, &snap)) != DTX_OK) {
		snprintf(err, errlen, "cannot read the accounts: %s",
		    dtx_strerror(rv));
		return rv;
	}
	size_t have = snap.n;
	hx_snapshot_fini(&snap);
	if (have > 0)
		return DTX_OK;

	const dtx_node *co = dtx_topo_first(&c->topo, DTX_ROLE_COORDINATOR);
	proto_op *ops = dtx_calloc(n, sizeof(*ops));
	char(*keys)[48] = dtx_calloc(n, sizeof(*keys));
	uint8_t(*vals)[8] = dtx_calloc(n, sizeof(*vals));
	if (ops == NULL || keys == NULL || vals == NULL || co == NULL) {
		rv = co == NULL ? DTX_EINVAL : DTX_ENOMEM;
		snprintf(err, errlen, "%s",
		    co == NULL ? "no coordinator" : "out of memory");
		goto done;
	}
	for (uint32_t i = 0; i < n; i++) {
		hx_acct_key(keys[i], sizeof(keys[i]), i);
		for (int b = 0; b < 8; b++)
			vals[i][b] = (uint8_t)((uint64_t)balance >> (8 * b));
		ops[i].kind = PROTO_OP_PUT;
		ops[i].key.p = (uint8_t *)keys[i];
		ops[i].key.n = (uint32_t)strlen(keys[i]);
		ops[i].value.p = vals[i];
		ops[i].value.n = 8;
	}
	// A lost reply or an abort (a daemon still starting) is retried: the
	// snapshot decides whether an earlier attempt already committed.
	for (int attempt = 0; attempt < 10; attempt++) {
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_TXN);
		req.u.txn.mode = PROTO_MODE_2PC;
		req.u.txn.n_ops = n;
		req.u.txn.ops = ops;
		rv = hx_conn_call(c, co->id, &req, &rep, 10000, false);
		if (rv == DTX_OK || rv == DTX_EREFUSED) {
			bool ok = rv == DTX_OK &&
			    rep.hdr.type == PROTO_TXN_REPLY &&
			    rep.u.txn_reply.outcome == PROTO_COMMITTED;
			snprintf(err, errlen, "init: %s",
			    rv == DTX_EREFUSED && rep.u.error.reason
			        ? rep.u.error.reason
			        : (rep.hdr.type == PROTO_TXN_REPLY &&
			                      rep.u.txn_reply.reason
			                  ? rep.u.txn_reply.reason
			                  : "not committed"));
			proto_msg_free(&rep);
			if (ok) {
				*created = true;
				rv = DTX_OK;
				goto done;
			}
			rv = DTX_EFAILED;
		} else {
			snprintf(err, errlen, "init: %s", dtx_strerror(rv));
		}
		dtx_sleep_ms(300);
		if (hx_snapshot_read(c, 0, 5000, &snap) == DTX_OK) {
			have = snap.n;
			hx_snapshot_fini(&snap);
			if (have == n) {
				*created = true;
				rv = DTX_OK;
				goto done;
			}
			if (have > 0) {
				snprintf(err, errlen,
				    "init: %zu of %u accounts exist", have, n);
				rv = DTX_EEXIST;
				goto done;
			}
		}
	}
done:
	dtx_free(ops);
	dtx_free(keys);
	dtx_free(vals);
	return rv;
}

dtx_err
hx_health(hx_conn *c, uint32_t id, uint32_t timeout_ms, proto_msg *rep)
{
	proto_msg req;
	proto_msg_init(&req, PROTO_HEALTH);
	return call_for(c, id, &req, timeout_ms, PROTO_HEALTH_REPLY, rep);
}

dtx_err
hx_conn_wait_ready(hx_conn *c, uint64_t timeout_ms)
{
	uint64_t deadline = dtx_mono_ns() + timeout_ms * 1000000u;
	dtx_err rv = DTX_OK;
	for (uint32_t i = 0; i < c->topo.n; i++) {
		const dtx_node *nd = &c->topo.nodes[i];
		if (nd->role == DTX_ROLE_CLIENT || nd->id >= DTX_TOPO_MAX)
			continue;
		for (;;) {
			proto_msg rep;
			rv = hx_health(c, nd->id, 2000, &rep);
			if (rv == DTX_OK) {
				proto_msg_free(&rep);
				break;
			}
			if (dtx_mono_ns() > deadline)
				return rv;
			dtx_sleep_ms(50);
		}
	}
	return rv;
}

dtx_err
hx_send_fault(hx_conn *c, uint32_t id, const char *kind, const int64_t *args,
    uint32_t nargs, const char *s)
{
	proto_msg req, rep;
	dtx_err rv = proto_fault_init(&req, kind, args, nargs, s);
	if (rv != DTX_OK)
		return rv;
	rv = hx_conn_call(c, id, &req, &rep, 2000, true);
	if (rv == DTX_OK || rv == DTX_EREFUSED)
		proto_msg_free(&rep);
	return rv;
}

dtx_err
hx_txn_status(hx_conn *c, uint32_t id, uint64_t txid, proto_txn_state *out)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_STATUS);
	req.u.txid.txid = txid;
	dtx_err rv = call_for(c, id, &req, 2000, PROTO_STATUS_REPLY, &rep);
	if (rv != DTX_OK)
		return rv;
	*out = rep.u.status_reply.state;
	proto_msg_free(&rep);
	return DTX_OK;
}

dtx_err
hx_saga_status(hx_conn *c, const char *gid, proto_saga_state *st,
    int32_t *failed_step, clk_ts *comp_ts, uint32_t ncomp)
{
	proto_msg req, rep;
	uint32_t sg = hx_conn_saga_for(c, gid);
	if (sg == UINT32_MAX)
		return DTX_EINVAL;
	proto_msg_init(&req, PROTO_SAGA_STATUS);
	req.u.gid.gid = (char *)gid;
	dtx_err rv = call_for(c, sg, &req, 2000, PROTO_SAGA_STATUS_REPLY, &rep);
	if (rv != DTX_OK)
		return rv;
	*st = rep.u.saga_status_reply.state;
	int32_t fs = -1;
	for (uint32_t i = 0; i < rep.u.saga_status_reply.n_steps; i++)
		if (rep.u.saga_status_reply.step_states[i] == PROTO_SS_FAILED) {
			fs = (int32_t)i;
			break;
		}
	*failed_step = fs;
	const proto_saga_status_reply *sr = &rep.u.saga_status_reply;
	for (uint32_t i = 0; i < ncomp; i++)
		comp_ts[i] =
		    sr->comp_ts != NULL && i < sr->n_steps ? sr->comp_ts[i] : 0;
	proto_msg_free(&rep);
	return DTX_OK;
}
