// SPDX-License-Identifier: MIT
//
// TXN handling: a client's transaction is split by participant and handed
// to the engine (engine.c), which votes with PREPARE (2PC) or CAN_COMMIT
// (3PC), decides and answers. The request is deferred, so no server
// worker waits for it; only a request that cannot be deferred has its
// handler wait, for the same engine. Also STATUS, which answers from the
// table with presumed abort (DESIGN rule 2).
//
// Transaction ids are 64 bits from the kernel's CSPRNG (dtx_random_u64),
// never 0 or UINT64_MAX (reserved): an id names a transaction and says
// nothing else. It is not ordered and carries no time (the HLC commit
// timestamp is the transaction's time), so nobody can guess the id of a
// transaction in flight and forge its decision. A draw that meets an id
// in the coordinator's table is drawn again: the table holds every id the
// decision log still needs (in doubt, committed and not yet acknowledged,
// recovered at open) and the recently ended ones, so an id is never
// reused while anyone may ask about it. An id forgotten since (ended long
// ago, or aborted and presumed so) could only meet a participant that
// still remembers its outcome, which refuses the new PREPARE (a NO vote):
// at worst one aborted transaction, with odds of 2^-64 per pair.
//
// A client may choose the id itself (TXN "tx", 64 random bits), so that it
// knows what to ask about after a timeout; an id the table still holds is
// refused (DTX_EEXIST), and so are the reserved 0 and UINT64_MAX.

#include <string.h>

#include "coordinator_int.h"

// Groups tx's ops by participant into p (p->ops owned: dtx_free).
static dtx_err
make_plan(coord *c, const proto_txn *tx, coord_plan *p)
{
	const dtx_topo *topo = proto_daemon_topo(c->d);
	uint32_t *owner = dtx_calloc(tx->n_ops, sizeof(uint32_t));
	p->ops = dtx_calloc(tx->n_ops, sizeof(proto_op));
	if (owner == NULL || p->ops == NULL) {
		dtx_free(owner);
		dtx_free(p->ops);
		p->ops = NULL;
		return DTX_ENOMEM;
	}
	p->nparts = 0;
	for (uint32_t i = 0; i < tx->n_ops; i++) {
		owner[i] =
		    dtx_topo_route(topo, tx->ops[i].key.p, tx->ops[i].key.n);
		uint32_t k = 0;
		while (k < p->nparts && p->parts[k] < owner[i])
			k++;
		if (k < p->nparts && p->parts[k] == owner[i])
			continue;
		memmove(&p->parts[k + 1], &p->parts[k],
		    (p->nparts - k) * sizeof(uint32_t));
		p->parts[k] = owner[i];
		p->nparts++;
	}
	uint32_t at = 0;
	for (uint32_t k = 0; k < p->nparts; k++) {
		p->first[k] = at;
		for (uint32_t i = 0; i < tx->n_ops; i++)
			if (owner[i] == p->parts[k])
				p->ops[at++] = tx->ops[i];
		p->count[k] = at - p->first[k];
	}
	dtx_free(owner);
	return DTX_OK;
}

void
coord__run_free(coord_run *r)
{
	if (r == NULL)
		return;
	for (uint32_t i = 0; i < r->p.nparts; i++)
		proto_msg_free(&r->items[i].rep);
	proto_msg_free(&r->rep);
	dtx_free(r->p.ops);
	dtx_free(r);
}

void
coord__run_done(coord_run *r)
{
	// The reply leaves after the transaction's COMMITs or ABORTs, as it
	// would without a plug: a client that acts on it at once (or a
	// coordinator killed right after) finds them on their way. A 3PC
	// commit that every participant pre-committed queued only lazy
	// DO_COMMITs, which wait for a batch to ride anyway (commit.c).
	uint32_t all = (uint32_t)((UINT64_C(1) << r->p.nparts) - 1);
	if (r->mode != PROTO_MODE_3PC ||
	    r->rep.u.txn_reply.outcome != PROTO_COMMITTED ||
	    atomic_load(&r->pre_acked) != all)
		coord__send_queued(r->c, r->p.parts, r->p.nparts);
	if (r->w != NULL) {
		coord__waiter_done(r->w); // coord__txn takes r over
		return;
	}
	if (r->done != NULL) {
		r->done(r->done_arg, DTX_OK, &r->rep); // takes r->rep
		proto_msg_init(&r->rep, PROTO_NONE);
		coord__run_free(r);
		return;
	}
	proto_defer_reply(r->tok, DTX_OK, &r->rep); // consumes r->rep
	proto_msg_init(&r->rep, PROTO_NONE);
	coord__run_free(r);
}

// Makes txid's run: the plan (moved in) and the table entry.
static dtx_err
run_new(coord *c, const proto_txn *tx, coord_plan *p, coord_run **out)
{
	coord_run *r =
	    dtx_calloc(1, sizeof(*r) + p->nparts * sizeof(coord_item));
	if (r == NULL)
		return DTX_ENOMEM;
	r->c = c;
	r->mode = tx->mode;
	r->p = *p;
	p->ops = NULL;
	proto_msg_init(&r->rep, PROTO_TXN_REPLY);
	dtx_err rv;
	coord_tx *t = NULL;
	if (tx->txid == UINT64_MAX) {
		rv = DTX_EINVAL; // reserved, as 0 is (the codec refuses it)
		goto fail;
	}
	do {
		// The client's id, once; else a fresh draw until one is free.
		if (tx->txid != 0)
			r->txid = tx->txid;
		else if ((rv = coord__txid_draw(&r->txid)) != DTX_OK)
			goto fail;
		pthread_mutex_lock(&c->mu);
		rv = coord__tx_insert(c, r->txid, &t);
		if (rv == DTX_OK) {
			t->mode = tx->mode;
			t->nparts = r->p.nparts;
			memcpy(t->parts, r->p.parts,
			    r->p.nparts * sizeof(uint32_t));
		}
		pthread_mutex_unlock(&c->mu);
	} while (rv == DTX_EEXIST && tx->txid == 0); // taken: draw again
	if (rv != DTX_OK)
		goto fail;
	*out = r;
	return DTX_OK;
fail:
	coord__run_free(r);
	return rv;
}

// Runs r with this thread waiting for its end; the reply goes to rep.
static void
run_wait(coord_run *r, proto_msg *rep)
{
	coord_waiter w;
	coord__waiter_init(&w);
	w.pending = 1;
	r->w = &w;
	coord__run_start(r);
	coord__waiter_wait(&w);
	coord__waiter_fini(&w);
	rep->hdr.type = PROTO_TXN_REPLY;
	rep->u.txn_reply = r->rep.u.txn_reply;
	proto_msg_init(&r->rep, PROTO_NONE);
	coord__run_free(r);
}

// Checks tx and makes its run (*out, owned) with its plan and table entry.
static dtx_err
txn_begin(coord *c, const proto_txn *tx, coord_run **out)
{
	coord_plan p = { .ops = NULL };
	dtx_err rv;
	if (atomic_load(&c->failed))
		return DTX_EFAILED;
	if (atomic_load(&c->stopped))
		return DTX_ECLOSED;
	if (tx->n_ops < 1 || tx->ops == NULL ||
	    proto_daemon_topo(c->d)->nparts == 0)
		return DTX_EINVAL;
	if ((rv = make_plan(c, tx, &p)) != DTX_OK)
		return rv;
	if ((rv = run_new(c, tx, &p, out)) != DTX_OK) {
		dtx_free(p.ops);
		return rv;
	}
	atomic_fetch_add(&c->n_txns, 1);
	proto_daemon_trace(
	    c->d, PROTO_EV_BEGIN, (*out)->txid, NULL, "TXN_START", 0);
	return DTX_OK;
}

dtx_err
coord__txn(coord *c, const proto_msg *req, proto_msg *rep, proto_call *call)
{
	const proto_txn *tx = &req->u.txn;
	coord_run *r = NULL;
	dtx_err rv;

	if (atomic_load(&c->failed))
		return DTX_EFAILED;
	if (atomic_load(&c->stopped))
		return DTX_ECLOSED;
	// A transaction does not hold this worker while it waits: the
	// request moves to a token (and tx with it), which the run answers.
	// Only a request that cannot be deferred waits here.
	proto_defer *tok = proto_server_defer(call);
	if (tok != NULL)
		tx = &proto_defer_req(tok)->u.txn;
	if ((rv = txn_begin(c, tx, &r)) != DTX_OK)
		goto fail;
	if (tok == NULL) {
		run_wait(r, rep);
		return DTX_OK;
	}
	r->tok = tok;
	coord__run_start(r);
	return DTX_OK;
fail:
	if (tok != NULL) {
		proto_defer_reply(tok, rv, NULL);
		return DTX_OK;
	}
	return rv;
}

dtx_err
coord_txn(coord *c, const proto_msg *req, proto_msg *rep)
{
	coord_run *r = NULL;
	if (req->hdr.type != PROTO_TXN)
		return DTX_EINVAL;
	dtx_err rv = txn_begin(c, &req->u.txn, &r);
	if (rv == DTX_OK)
		run_wait(r, rep);
	return rv;
}

dtx_err
coord_txn_async(coord *c, const proto_msg *req, coord_txn_done done, void *arg)
{
	coord_run *r = NULL;
	if (req->hdr.type != PROTO_TXN || done == NULL)
		return DTX_EINVAL;
	dtx_err rv = txn_begin(c, &req->u.txn, &r);
	if (rv != DTX_OK)
		return rv;
	r->done = done;
	r->done_arg = arg;
	coord__run_start(r);
	return DTX_OK;
}

// Whether from may learn the outcome of t (NULL: a txid this coordinator
// has no record of). The daemon runtime has already admitted the sender's
// role for STATUS (proto/authz.c: coordinator, participant, admin,
// harness) and, over TLS, checked that a node of the topology holds the
// role the topology gives it and that "from" is the node its certificate
// names. So a sender on a client line of the topology, or outside it, is
// an admin or the harness: it may ask about anything. A participant may
// ask about a transaction it takes part in, and about any id this
// coordinator does not know: presumed abort answers ABORTED, which a
// participant in doubt needs and which tells nobody anything. Nobody else
// (another coordinator, the orchestrator) asks a coordinator.
static bool
status_allowed(coord *c, const coord_tx *t, uint32_t from)
{
	const dtx_node *nd = dtx_topo_find(proto_daemon_topo(c->d), from);
	if (nd == NULL || nd->role == DTX_ROLE_CLIENT)
		return true;
	if (nd->role != DTX_ROLE_PARTICIPANT)
		return false;
	if (t == NULL)
		return true;
	for (uint32_t i = 0; i < t->nparts; i++)
		if (t->parts[i] == from)
			return true;
	return false;
}

dtx_err
coord__status(coord *c, const proto_msg *req, proto_msg *rep)
{
	uint64_t txid = req->u.txid.txid;
	proto_status_reply *s = &rep->u.status_reply;
	proto_txn_state st = PROTO_TS_ABORTED; // presumed abort (rule 2)
	clk_ts cts = 0;
	atomic_fetch_add(&c->n_status, 1);
	if (txid == 0 || txid == UINT64_MAX)
		return proto_msg_set_error(rep, DTX_EINVAL,
		    "txid %llu is reserved and names no transaction",
		    (unsigned long long)txid);
	pthread_mutex_lock(&c->mu);
	coord_tx *t = coord__tx_find(c, txid);
	if (!status_allowed(c, t, req->hdr.from)) {
		pthread_mutex_unlock(&c->mu);
		atomic_fetch_add(&c->n_status_refused, 1);
		DTX_LOGF_RL(DTX_LOG_WARN, "REFUSED",
		    dtx_log_rl_key(req->hdr.from, "STATUS"),
		    DTX_FIELDS(DTX_LF_TXID(txid), DTX_LF_PEER(req->hdr.from),
		        DTX_LF_S("type", "status"),
		        DTX_LF_S("why", "not a participant")),
		    "STATUS from node %u: not a participant of the "
		    "transaction",
		    req->hdr.from);
		return proto_msg_set_error(rep, DTX_EPERM,
		    "STATUS refused: node %u is not a participant of txn %llu",
		    req->hdr.from, (unsigned long long)txid);
	}
	if (t != NULL && t->mode == PROTO_MODE_PC) {
		// pc: the votes decide, not this coordinator (rule 25);
		// it has no record to answer from.
		st = PROTO_TS_UNKNOWN;
	} else if (t != NULL) {
		switch (t->state) {
		case COORD_VOTING:
			// Not decided yet: decide abort now, so the answer
			// stays true.
			t->doomed = true;
			break;
		case COORD_DECIDING:
			// The COMMIT record is being forced: the outcome is
			// not known yet. PREPARED tells the asker to wait
			// and ask again (UNKNOWN would read as "no record",
			// i.e. presumed abort, and could split the decision).
			st = PROTO_TS_PREPARED;
			break;
		case COORD_PRECOMMITTED:
			st = PROTO_TS_PRECOMMITTED;
			cts = t->cts;
			break;
		case COORD_COMMITTED:
		case COORD_ENDED:
			st = PROTO_TS_COMMITTED;
			cts = t->cts;
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	rep->hdr.type = PROTO_STATUS_REPLY;
	s->txid = txid;
	s->state = st;
	s->commit_ts = cts;
	return DTX_OK;
}
