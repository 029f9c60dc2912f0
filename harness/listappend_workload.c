// SPDX-License-Identifier: MIT
//
// The list-append workload (dtx bank --workload list-append): clients run
// transactions that append unique integers to a few lists (APPEND ops in
// one 2PC/3PC/pc TXN) and snapshot reads of several lists at one HLC
// timestamp, recorded as Elle-style "txn" ops for the list-append checker
// (check_elle.c).
//
// What a transaction is here. The TXN request cannot return values, so a
// transaction either appends (1 to 4 appends, possibly twice to one key)
// or reads (1 to 4 keys): a read is a READ of each key's participant at
// one timestamp T (the first participant picks T, the others read at it),
// which the system promises is a consistent snapshot: every transaction
// with commit ts <= T whole, none above. The checker may therefore treat
// each read as a read-only transaction serialized at T and each append
// transaction as serialized at its commit ts; its ww edges come from the
// order in which lists show the appends, wr edges from an append to the
// reads that see it, rw edges from a read to the append after its last
// element. Cycles need a read that sees part of a transaction (G-single,
// G1b), writes ordered one way on one key and the other way on another
// (G0), or reads that disagree on the order of independent appends (G2).
// G1c needs a transaction that both reads and writes, which this workload
// never runs (the checker still finds it in other histories).
//
// Keys rotate: each of LA_SLOTS slots appends to one key until it holds
// LA_PER_KEY elements, then moves to a fresh key (as Elle's generator
// does), so lists stay short and reads cheap. After the run, a final read
// of every key used, at a timestamp at or above every commit timestamp
// the run learnt, must hold every committed append (lost-append).

#include <inttypes.h>
#include <string.h>

#include "harness_int.h"

#define LA_SLOTS 8 // keys being appended to at once
#define LA_PER_KEY 32 // appends per key before its slot moves on
#define LA_MAX_MOPS 4 // micro-ops per transaction
#define LA_KEY_MAX 32 // bytes of a key name

struct hx__la {
	pthread_mutex_t mu;
	int64_t slot_key[LA_SLOTS];
	uint32_t slot_n[LA_SLOTS];
	int64_t next_key; // keys 0..next_key-1 have been handed out
	int64_t next_val;
	clk_ts max_cts; // the largest commit ts a client heard
};

dtx_err
hx__la_new(hx_bankrun *r)
{
	hx__la *la = dtx_calloc(1, sizeof(*la));
	if (la == NULL)
		return DTX_ENOMEM;
	pthread_mutex_init(&la->mu, NULL);
	for (int i = 0; i < LA_SLOTS; i++)
		la->slot_key[i] = la->next_key++;
	la->next_val = 1;
	r->la = la;
	return DTX_OK;
}

void
hx__la_free(hx__la *la)
{
	if (la == NULL)
		return;
	pthread_mutex_destroy(&la->mu);
	dtx_free(la);
}

static void
key_name(char *buf, size_t len, int64_t k)
{
	snprintf(buf, len, "la:%" PRId64, k);
}

static void
hist(hx_bankrun *b, int64_t proc, hx_op_type t, hx_sb *sb, const char *err)
{
	char *v = hx_sb_take(sb);
	hx_history_add(b->h, proc, t, "txn", v, err);
	dtx_free(v);
}

// ---------------------------------------------------------------- appends

// Draws the next append's key (from a random slot) and unique element.
static void
draw_append(hx__la *la, uint64_t *rng, int64_t *key, int64_t *val)
{
	uint64_t s = dtx_rand_below(rng, LA_SLOTS);
	pthread_mutex_lock(&la->mu);
	*key = la->slot_key[s];
	*val = la->next_val++;
	if (++la->slot_n[s] >= LA_PER_KEY) {
		la->slot_key[s] = la->next_key++;
		la->slot_n[s] = 0;
	}
	pthread_mutex_unlock(&la->mu);
}

static void
mops_json(hx_sb *sb, const int64_t *keys, const int64_t *vals, size_t n)
{
	hx_sb_printf(sb, "{\"mops\":[");
	for (size_t i = 0; i < n; i++)
		hx_sb_printf(sb, "%s[\"append\",%" PRId64 ",%" PRId64 "]",
		    i ? "," : "", keys[i], vals[i]);
	hx_sb_printf(sb, "]");
}

static hx_op_type
outcome_type(const hx_xfer *x)
{
	if (x->err == DTX_OK)
		return x->outcome == PROTO_COMMITTED ? HX_OP_OK
		    : x->outcome == PROTO_ABORTED    ? HX_OP_FAIL
		                                     : HX_OP_INFO;
	// Never delivered, or refused outright: certainly not applied.
	return x->err == DTX_EUNREACH || x->err == DTX_EREFUSED ? HX_OP_FAIL
	                                                        : HX_OP_INFO;
}

// Sends the appends as one TXN with the client's txid into *x.
static void
send_appends(hx_bankrun *b, uint64_t txid, char names[][LA_KEY_MAX],
    const int64_t *vals, size_t n, hx_xfer *x)
{
	proto_op ops[LA_MAX_MOPS];
	proto_msg req, rep;
	memset(x, 0, sizeof(*x));
	memset(ops, 0, sizeof(ops));
	x->outcome = PROTO_UNKNOWN;
	x->txid = txid;
	for (size_t i = 0; i < n; i++) {
		ops[i].kind = PROTO_OP_APPEND;
		ops[i].key.p = (uint8_t *)names[i];
		ops[i].key.n = (uint32_t)strlen(names[i]);
		ops[i].delta = vals[i];
	}
	const dtx_node *co =
	    dtx_topo_first(hx_conn_topo(b->conn), DTX_ROLE_COORDINATOR);
	if (co == NULL) {
		x->err = DTX_EUNREACH;
		snprintf(x->reason, sizeof(x->reason), "no coordinator");
		return;
	}
	proto_msg_init(&req, PROTO_TXN);
	req.u.txn = (proto_txn) {
		.mode = b->mode, .n_ops = (uint32_t)n, .ops = ops, .txid = txid
	};
	x->err = hx_conn_call(
	    b->conn, co->id, &req, &rep, (uint32_t)b->conf->timeout_ms, false);
	if (x->err == DTX_EREFUSED) {
		snprintf(x->reason, sizeof(x->reason), "%s",
		    rep.u.error.reason ? rep.u.error.reason : "refused");
		proto_msg_free(&rep);
		return;
	}
	if (x->err != DTX_OK) {
		snprintf(
		    x->reason, sizeof(x->reason), "%s", dtx_strerror(x->err));
		return;
	}
	if (rep.hdr.type == PROTO_TXN_REPLY) {
		x->outcome = rep.u.txn_reply.outcome;
		x->cts = rep.u.txn_reply.commit_ts;
		snprintf(x->reason, sizeof(x->reason), "%s",
		    rep.u.txn_reply.reason ? rep.u.txn_reply.reason : "");
	} else {
		x->err = DTX_EPROTO; // the outcome is unknown
		snprintf(x->reason, sizeof(x->reason), "unexpected reply");
	}
	proto_msg_free(&rep);
}

// The participants of the keys in names[0..n), distinct, into rec.
static void
rec_parts(hx_bankrun *b, char names[][LA_KEY_MAX], size_t n, hx__xrec *rec)
{
	const dtx_topo *topo = hx_conn_topo(b->conn);
	for (size_t i = 0; i < n; i++) {
		uint32_t p = dtx_topo_route(topo, names[i], strlen(names[i]));
		bool dup = false;
		for (uint8_t j = 0; j < rec->nparts && !dup; j++)
			dup = rec->parts[j] == p;
		if (!dup && rec->nparts < HX__XREC_PARTS)
			rec->parts[rec->nparts++] = p;
	}
}

static int64_t
append_txn(hx_bankrun *b, int64_t proc, uint64_t *rng, clk_ts *last)
{
	size_t n = 1 + dtx_rand_below(rng, LA_MAX_MOPS);
	int64_t keys[LA_MAX_MOPS], vals[LA_MAX_MOPS];
	char names[LA_MAX_MOPS][LA_KEY_MAX];
	hx__xrec rec = { 0 };
	hx_sb sb = { 0 };
	hx_xfer x;
	for (size_t i = 0; i < n; i++) {
		draw_append(b->la, rng, &keys[i], &vals[i]);
		key_name(names[i], sizeof(names[i]), keys[i]);
	}
	// The client's own txid, so that a timed-out transaction is resolved
	// after the run (0 when no randomness: the coordinator draws one).
	if (dtx_random_u64(&rec.txid) != DTX_OK)
		rec.txid = 0;
	mops_json(&sb, keys, vals, n);
	if (rec.txid != 0)
		hx_sb_printf(&sb, ",\"txid\":%" PRIu64, rec.txid);
	hx_sb_printf(&sb, ",\"mode\":\"%s\"}", b->conf->mode);
	hist(b, proc, HX_OP_INVOKE, &sb, NULL);

	send_appends(b, rec.txid, names, vals, n, &x);
	hx_op_type t = outcome_type(&x);
	mops_json(&sb, keys, vals, n);
	if (rec.txid != 0)
		hx_sb_printf(&sb, ",\"txid\":%" PRIu64, rec.txid);
	if (x.cts != 0)
		hx_sb_printf(&sb, ",\"cts\":%" PRIu64, x.cts);
	hx_sb_printf(&sb, ",\"mode\":\"%s\"}", b->conf->mode);
	char err[PROTO_MAX_STR + 48];
	snprintf(err, sizeof(err), "%s: %s",
	    x.err != DTX_OK ? dtx_errname(x.err) : hx_outcome_name(x.outcome),
	    x.reason);
	hist(b, proc, t, &sb, t == HX_OP_OK ? NULL : err);
	if (rec.txid != 0) {
		rec_parts(b, names, n, &rec);
		hx__bank_add_rec(b, &rec);
	}
	if (t == HX_OP_OK) {
		pthread_mutex_lock(&b->la->mu);
		if (x.cts > b->la->max_cts)
			b->la->max_cts = x.cts;
		pthread_mutex_unlock(&b->la->mu);
	}
	return hx__bank_tally(b, t, x.cts, last, proc);
}

// ---------------------------------------------------------------- reads

// One key's list from a READ_REPLY entry into *sb as a JSON array. False
// when the value is not a list (its text goes into why).
static bool
entry_list(const proto_entry *e, hx_sb *sb, char *why, size_t n)
{
	if (!e->found) {
		hx_sb_printf(sb, "[]");
		return true;
	}
	const proto_bytes *v = &e->bval;
	if (!e->is_bytes || v->n < PROTO_LIST_HDR ||
	    memcmp(v->p, PROTO_LIST_MAGIC, PROTO_LIST_HDR) != 0 ||
	    (v->n - PROTO_LIST_HDR) % 8 != 0) {
		snprintf(why, n, "a value that is not a list (%u bytes)",
		    e->is_bytes ? v->n : 8);
		return false;
	}
	hx_sb_printf(sb, "[");
	for (uint32_t i = 0; i < (v->n - PROTO_LIST_HDR) / 8; i++)
		hx_sb_printf(sb, "%s%" PRId64, i ? "," : "",
		    (int64_t)dtx_get_le64(v->p + PROTO_LIST_HDR + 8 * i));
	hx_sb_printf(sb, "]");
	return true;
}

// READ of key at participant id at ts (0: its now), retrying RETRY
// answers until the deadline. On DTX_OK *rep is a READ_REPLY with one
// entry (owned: proto_msg_free).
static dtx_err
read_key(hx_bankrun *b, uint32_t id, const char *key, clk_ts ts,
    uint64_t deadline, proto_msg *rep)
{
	proto_bytes k = { (uint8_t *)(uintptr_t)key, (uint32_t)strlen(key) };
	for (;;) {
		uint64_t now = dtx_mono_ns();
		if (now >= deadline)
			return DTX_ETIMEDOUT;
		proto_msg req;
		proto_msg_init(&req, PROTO_READ);
		req.u.read = (proto_read) { .ts = ts, .n_keys = 1, .keys = &k };
		dtx_err rv = hx_conn_call(b->conn, id, &req, rep,
		    (uint32_t)((deadline - now) / 1000000u) + 1, true);
		if (rv != DTX_OK) {
			if (rv == DTX_EREFUSED)
				proto_msg_free(rep);
			return rv;
		}
		if (rep->hdr.type != PROTO_READ_REPLY ||
		    rep->u.read_reply.n_entries != 1) {
			proto_msg_free(rep);
			return DTX_EPROTO;
		}
		if (rep->u.read_reply.status != PROTO_READ_RETRY)
			return DTX_OK;
		proto_msg_free(rep);
		dtx_sleep_ms(10);
	}
}

// Reads keys[0..n) at one timestamp into *sb (the mops of the ok
// completion), at or above floor. *ts gets the timestamp.
static dtx_err
read_lists(hx_bankrun *b, const int64_t *keys, size_t n, clk_ts floor,
    hx_sb *sb, clk_ts *ts, char *why, size_t wn)
{
	const dtx_topo *topo = hx_conn_topo(b->conn);
	uint64_t deadline =
	    dtx_mono_ns() + (uint64_t)b->conf->timeout_ms * 1000000u;
	clk_ts T = 0;
	hx_sb_printf(sb, "{\"mops\":[");
	for (size_t i = 0; i < n; i++) {
		char name[LA_KEY_MAX];
		proto_msg rep;
		key_name(name, sizeof(name), keys[i]);
		uint32_t id = dtx_topo_route(topo, name, strlen(name));
		dtx_err rv = read_key(b, id, name, T, deadline, &rep);
		if (rv == DTX_OK && i == 0 && rep.u.read_reply.ts < floor) {
			// The first participant picks T; below the client's
			// own last commit it reads again at that commit
			// (read-your-writes), as the bank's reads do.
			proto_msg_free(&rep);
			rv = read_key(b, id, name, floor, deadline, &rep);
		}
		if (rv != DTX_OK) {
			snprintf(why, wn, "%s", dtx_errname(rv));
			return rv;
		}
		T = rep.u.read_reply.ts;
		hx_sb_printf(
		    sb, "%s[\"r\",%" PRId64 ",", i ? "," : "", keys[i]);
		bool ok = entry_list(&rep.u.read_reply.entries[0], sb, why, wn);
		proto_msg_free(&rep);
		if (!ok)
			return DTX_ECORRUPT;
		hx_sb_printf(sb, "]");
	}
	hx_sb_printf(sb, "],\"ts\":%" PRIu64, T);
	*ts = T;
	return DTX_OK;
}

// A read transaction of keys[0..n) by proc, recorded; final marks the
// reads after the run. A read changes nothing, so one that fails is a
// failure, never indeterminate.
static void
read_txn(hx_bankrun *b, int64_t proc, const int64_t *keys, size_t n,
    clk_ts floor, bool final)
{
	hx_sb sb = { 0 };
	char why[160] = "";
	clk_ts ts;
	hx_sb_printf(&sb, "{\"mops\":[");
	for (size_t i = 0; i < n; i++)
		hx_sb_printf(
		    &sb, "%s[\"r\",%" PRId64 ",null]", i ? "," : "", keys[i]);
	hx_sb_printf(&sb, "]%s}", final ? ",\"final\":true" : "");
	hist(b, proc, HX_OP_INVOKE, &sb, NULL);
	dtx_err rv = read_lists(b, keys, n, floor, &sb, &ts, why, sizeof(why));
	if (rv != DTX_OK) {
		hx_sb_fini(&sb);
		hx_sb_printf(&sb, "{\"mops\":[");
		for (size_t i = 0; i < n; i++)
			hx_sb_printf(&sb, "%s[\"r\",%" PRId64 ",null]",
			    i ? "," : "", keys[i]);
		hx_sb_printf(&sb, "]%s}", final ? ",\"final\":true" : "");
		hist(b, proc, HX_OP_FAIL, &sb, why);
		atomic_fetch_add(&b->fail, 1);
		return;
	}
	hx_sb_printf(&sb, "%s}", final ? ",\"final\":true" : "");
	hist(b, proc, HX_OP_OK, &sb, NULL);
	atomic_fetch_add(&b->ok, 1);
}

int64_t
hx__la_step(hx_bankrun *b, int64_t proc, uint64_t *rng, clk_ts *last)
{
	if (dtx_rand_below(rng, 2) == 0)
		return append_txn(b, proc, rng, last);
	// 1 to 4 distinct keys among those being appended to.
	int64_t keys[LA_MAX_MOPS];
	size_t n = 1 + dtx_rand_below(rng, LA_MAX_MOPS), k = 0;
	pthread_mutex_lock(&b->la->mu);
	for (size_t i = 0; i < n; i++) {
		int64_t key = b->la->slot_key[dtx_rand_below(rng, LA_SLOTS)];
		bool dup = false;
		for (size_t j = 0; j < k && !dup; j++)
			dup = keys[j] == key;
		if (!dup)
			keys[k++] = key;
	}
	pthread_mutex_unlock(&b->la->mu);
	read_txn(b, proc, keys, k, *last, false);
	return proc;
}

// ---------------------------------------------------------------- final

dtx_err
hx__la_final_reads(hx_bankrun *b)
{
	// At or above every commit ts the run learnt: the clients' and the
	// nodes' STATUS answers (b->cts, from the sweep that ran first).
	clk_ts floor = b->la->max_cts;
	for (size_t i = 0; i < b->ncts; i++)
		if (b->cts[i].cts > floor)
			floor = b->cts[i].cts;
	int64_t proc = atomic_fetch_add(&b->next_proc, 1);
	int64_t nk = b->la->next_key;
	enum { BATCH = 32 };
	int64_t keys[BATCH];
	// All the batches end by a deadline: a minute, and two read
	// timeouts a batch (a read waits out one at most, and a retry
	// follows). Reads not taken by then are failed reads in the
	// history, as those that ran out of tries are.
	uint64_t t0 = dtx_mono_ns();
	uint64_t end = t0 +
	    (60000u + (uint64_t)(nk / BATCH + 1) * 2 * b->conf->timeout_ms) *
	        1000000u;
	for (int64_t lo = 0; lo < nk && !atomic_load(&b->interrupted);) {
		size_t n = 0;
		for (int64_t k = lo; k < nk && n < BATCH; k++)
			keys[n++] = k;
		// Each batch is tried until it succeeds (a node may still be
		// restarting), at most 20 times.
		size_t before = hx_history_len(b->h);
		bool ok = false;
		int tries = 0;
		for (; tries < 20 && !ok && dtx_mono_ns() < end; tries++) {
			if (tries > 0)
				dtx_sleep_ms(200);
			read_txn(b, proc, keys, n, floor, true);
			const hx_op *op = hx_history_get(b->h, before + 1);
			before = hx_history_len(b->h);
			ok = op->type == HX_OP_OK;
			if (atomic_load(&b->interrupted))
				break;
		}
		if (!ok && dtx_mono_ns() >= end) {
			fprintf(stderr,
			    "dtx bank: final reads of lists: keys la:%" PRId64
			    " and up not read after %.1f s (%d tries of the "
			    "last batch; the failures are in the history)\n",
			    lo, (double)(dtx_mono_ns() - t0) / 1e9, tries);
			break;
		}
		lo += (int64_t)n;
	}
	return DTX_OK;
}
