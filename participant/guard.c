// SPDX-License-Identifier: MIT
//
// The participant's per-transaction rules, checked before a message acts
// on a transaction (the daemon runtime has already checked the sender's
// role): a decision only from the coordinator its PREPARED record names
// (or, for the 3PC termination protocol, from a peer named there), a
// repeated PREPARE only with the ops of the first, no reserved txid, and
// amounts and floors an operation can mean. The records' coordinator,
// mode, peers and a digest of the PREPARE live in a hash table by txid
// while the transaction is in doubt here.

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "participant_int.h"

struct part__txtab {
	pthread_mutex_t mu;
	part__txmeta *slots; // open addressing; txid 0 marks a free slot
	size_t cap, n; // cap a power of two, n < cap / 2
};

static size_t
slot_of(const part__txtab *t, uint64_t txid)
{
	uint64_t h = txid * 0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> 20) & (t->cap - 1);
}

// The slot of txid, or of the free slot where it would go.
static part__txmeta *
find(part__txtab *t, uint64_t txid)
{
	size_t i = slot_of(t, txid);
	while (t->slots[i].txid != 0 && t->slots[i].txid != txid)
		i = (i + 1) & (t->cap - 1);
	return &t->slots[i];
}

static dtx_err
grow(part__txtab *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 64;
	part__txmeta *old = t->slots, *ns = dtx_calloc(ncap, sizeof(*ns));
	size_t ocap = t->cap;
	if (ns == NULL)
		return DTX_ENOMEM;
	t->slots = ns;
	t->cap = ncap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].txid != 0)
			*find(t, old[i].txid) = old[i];
	dtx_free(old);
	return DTX_OK;
}

dtx_err
part__txtab_new(part__txtab **out)
{
	part__txtab *t = dtx_calloc(1, sizeof(*t));
	if (t == NULL)
		return DTX_ENOMEM;
	pthread_mutex_init(&t->mu, NULL);
	if (grow(t) != DTX_OK) {
		part__txtab_free(t);
		return DTX_ENOMEM;
	}
	*out = t;
	return DTX_OK;
}

void
part__txtab_free(part__txtab *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->mu);
	dtx_free(t->slots);
	dtx_free(t);
}

dtx_err
part__txtab_put(part__txtab *t, const part__txmeta *m)
{
	dtx_err rv = DTX_OK;
	pthread_mutex_lock(&t->mu);
	if ((t->n + 1) * 2 > t->cap)
		rv = grow(t);
	if (rv == DTX_OK) {
		part__txmeta *s = find(t, m->txid);
		if (s->txid == 0)
			t->n++;
		*s = *m;
	}
	pthread_mutex_unlock(&t->mu);
	return rv;
}

bool
part__txtab_get(part__txtab *t, uint64_t txid, part__txmeta *out)
{
	pthread_mutex_lock(&t->mu);
	part__txmeta *s = find(t, txid);
	bool ok = s->txid == txid;
	if (ok)
		*out = *s;
	pthread_mutex_unlock(&t->mu);
	return ok;
}

void
part__txtab_del(part__txtab *t, uint64_t txid)
{
	pthread_mutex_lock(&t->mu);
	part__txmeta *s = find(t, txid);
	if (s->txid == txid) {
		// Backward-shift deletion keeps every probe chain whole.
		size_t i = (size_t)(s - t->slots), j = i;
		t->slots[i].txid = 0;
		t->n--;
		for (;;) {
			j = (j + 1) & (t->cap - 1);
			if (t->slots[j].txid == 0)
				break;
			size_t k = slot_of(t, t->slots[j].txid);
			bool between =
			    i <= j ? (i < k && k <= j) : (i < k || k <= j);
			if (between)
				continue;
			t->slots[i] = t->slots[j];
			t->slots[j].txid = 0;
			i = j;
		}
	}
	pthread_mutex_unlock(&t->mu);
}

uint32_t
part__prepare_digest(const proto_msg *req)
{
	const proto_prepare *pr = &req->u.prepare;
	uint32_t c = dtx_crc32c(0, &pr->coord, sizeof(pr->coord));
	uint32_t mode =
	    req->hdr.type == PROTO_CAN_COMMIT || pr->mode == PROTO_MODE_3PC ? 3
	    : pr->mode == PROTO_MODE_PC                                     ? 4
	                                                                    : 2;
	c = dtx_crc32c(c, &mode, sizeof(mode));
	for (uint32_t i = 0; i < pr->n_ops; i++) {
		const proto_op *op = &pr->ops[i];
		uint32_t k = (uint32_t)op->kind;
		c = dtx_crc32c(c, &k, sizeof(k));
		c = dtx_crc32c(c, &op->key.n, sizeof(op->key.n));
		c = dtx_crc32c(c, op->key.p, op->key.n);
		if (op->kind == PROTO_OP_ADD) {
			c = dtx_crc32c(c, &op->delta, sizeof(op->delta));
			c = dtx_crc32c(c, &op->min, sizeof(op->min));
		} else if (op->kind == PROTO_OP_APPEND) {
			c = dtx_crc32c(c, &op->delta, sizeof(op->delta));
		} else if (op->kind == PROTO_OP_PUT) {
			c = dtx_crc32c(c, &op->value.n, sizeof(op->value.n));
			c = dtx_crc32c(c, op->value.p, op->value.n);
		}
	}
	return c;
}

// The ops of a PREPARE: every ADD moves a positive amount of at most
// PART_MAX_AMOUNT, and its floor is a real balance (at least
// -PART_MAX_AMOUNT: no INT64_MIN that would let a debit overdraw).
static bool
ops_sane(const proto_prepare *pr, char *why, size_t n)
{
	for (uint32_t i = 0; i < pr->n_ops; i++) {
		const proto_op *op = &pr->ops[i];
		if (op->kind != PROTO_OP_ADD)
			continue;
		if (op->delta == 0 || op->delta > PART_MAX_AMOUNT ||
		    op->delta < -PART_MAX_AMOUNT) {
			snprintf(why, n,
			    "op %u: amount %" PRId64 " is not in "
			    "1..%lld",
			    i, op->delta, (long long)PART_MAX_AMOUNT);
			return false;
		}
		if (op->min < -PART_MAX_AMOUNT) {
			snprintf(why, n,
			    "op %u: floor %" PRId64 " is below "
			    "-%lld",
			    i, op->min, (long long)PART_MAX_AMOUNT);
			return false;
		}
	}
	return true;
}

// The topology role of node, PROTO_ROLE_NONE outside it.
static proto_role
role_of(part *p, uint32_t node)
{
	const dtx_node *nd = dtx_topo_find(proto_daemon_topo(p->d), node);
	if (nd == NULL)
		return PROTO_ROLE_NONE;
	return nd->role == DTX_ROLE_COORDINATOR ? PROTO_ROLE_COORDINATOR
	    : nd->role == DTX_ROLE_PARTICIPANT  ? PROTO_ROLE_PARTICIPANT
	                                        : PROTO_ROLE_CLIENT;
}

static bool
is_peer(const part__txmeta *m, uint32_t node)
{
	for (uint32_t i = 0; i < m->meta.npeers; i++)
		if (m->meta.peers[i] == node)
			return true;
	return false;
}

// A PREPARE or CAN_COMMIT: names its sender as its coordinator, has sane
// ops, and if it repeats one in doubt here, repeats it exactly.
static bool
prepare_ok(part *p, const proto_msg *req, char *why, size_t n)
{
	const proto_prepare *pr = &req->u.prepare;
	part__txmeta m;
	if (pr->coord != req->hdr.from) {
		snprintf(why, n, "sent by node %u but names coordinator %u",
		    req->hdr.from, pr->coord);
		return false;
	}
	if (!ops_sane(pr, why, n))
		return false;
	if (!part__txtab_get(p->txtab, pr->txid, &m))
		return true;
	if (m.meta.coordinator != req->hdr.from) {
		snprintf(why, n, "tx %" PRIu64 " is coordinated by node %u",
		    pr->txid, m.meta.coordinator);
		return false;
	}
	if (m.have_digest && m.digest != part__prepare_digest(req)) {
		snprintf(why, n,
		    "tx %" PRIu64 " was prepared here with other ops",
		    pr->txid);
		return false;
	}
	return true;
}

// A decision: from the coordinator the PREPARED record names, or in 3PC
// from a peer named there (termination: ABORT, PRE_COMMIT, DO_COMMIT).
// For a transaction not in doubt here only a coordinator may say
// anything that could record an outcome, or contradict a commit.
static bool
decision_ok(part *p, const proto_msg *req, char *why, size_t n)
{
	uint64_t txid = req->u.txid.txid;
	uint32_t from = req->hdr.from;
	part__txmeta m;
	if (part__txtab_get(p->txtab, txid, &m)) {
		if (from == m.meta.coordinator)
			return true;
		if (m.meta.mode == STOR_MODE_3PC && is_peer(&m, from) &&
		    req->hdr.type != PROTO_COMMIT)
			return true;
		snprintf(why, n,
		    "tx %" PRIu64 " is coordinated by node %u, not node %u",
		    txid, m.meta.coordinator, from);
		return false;
	}
	proto_role r = role_of(p, from);
	if (r == PROTO_ROLE_COORDINATOR || r == PROTO_ROLE_NONE)
		return true; // (NONE: outside the topology, --insecure only)
	stor_tx_state st;
	if (stor_kv_tx_state(p->kv, txid, &st, NULL) == DTX_OK &&
	    st != STOR_TX_PREPARED && st != STOR_TX_PRECOMMITTED) {
		// Decided: the answer changes nothing, but an ABORT of a
		// committed transaction would be logged as the anomaly it is
		// when its coordinator sends it; from anyone else it is
		// refused (counted, logged rate-limited).
		if (req->hdr.type != PROTO_ABORT || st != STOR_TX_COMMITTED)
			return true;
		snprintf(why, n,
		    "tx %" PRIu64 " was committed here: only its coordinator "
		    "may say otherwise",
		    txid);
		return false;
	}
	snprintf(why, n, "tx %" PRIu64 " is not in doubt here", txid);
	return false;
}

static uint64_t
txid_of(const proto_msg *req)
{
	return req->hdr.type == PROTO_PREPARE ||
	        req->hdr.type == PROTO_CAN_COMMIT
	    ? req->u.prepare.txid
	    : req->u.txid.txid;
}

bool
part__guard(part *p, const proto_msg *req, proto_msg *rep, dtx_err *rv)
{
	char why[200];
	bool ok = true;
	*rv = DTX_OK;
	switch (req->hdr.type) {
	case PROTO_PREPARE:
	case PROTO_CAN_COMMIT:
	case PROTO_COMMIT:
	case PROTO_ABORT:
	case PROTO_PRE_COMMIT:
	case PROTO_DO_COMMIT:
	case PROTO_STATUS:
		break;
	default:
		return true;
	}
	uint64_t txid = txid_of(req);
	if (txid == 0 || txid == UINT64_MAX) {
		*rv = DTX_EINVAL; // reserved ids
		return false;
	}
	if (req->hdr.type == PROTO_PREPARE || req->hdr.type == PROTO_CAN_COMMIT)
		ok = prepare_ok(p, req, why, sizeof(why));
	else if (req->hdr.type != PROTO_STATUS)
		ok = decision_ok(p, req, why, sizeof(why));
	if (ok)
		return true;
	part__count(p,
	    req->hdr.type == PROTO_PREPARE || req->hdr.type == PROTO_CAN_COMMIT
	        ? PART_CTR_REFUSED_PREPARE
	        : PART_CTR_REFUSED_DECISION);
	DTX_LOGF_RL(DTX_LOG_WARN, "REFUSED",
	    dtx_log_rl_key(req->hdr.from, "GUARD"),
	    DTX_FIELDS(DTX_LF_PEER(req->hdr.from),
	        DTX_LF_S("type", proto_type_name(req->hdr.type)),
	        DTX_LF_S("why", why)),
	    "%s from node %u refused", proto_type_name(req->hdr.type),
	    req->hdr.from);
	*rv = proto_msg_set_error(rep, DTX_EPERM, "%s refused: %s",
	    proto_type_name(req->hdr.type), why);
	return false;
}
