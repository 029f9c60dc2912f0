// SPDX-License-Identifier: MIT
//
// Parallel commit (pc, after Cornus): the votes are the decision. A pc
// transaction is committed exactly when every participant named in the
// PREPARED records has durably voted YES, at the largest prepare
// timestamp, a function of the votes alone (DESIGN rule 25). So the
// coordinator writes nothing: once it holds every vote it answers the
// client and only then queues COMMIT (or ABORT) on the batched channels,
// fire and forget; a COMMIT is lazy (--pc-lazy-commit): it rides the next
// batch to its participant. A lost COMMIT costs nothing: the participant, in
// doubt too long, asks its peers and derives the same outcome and timestamp
// (participant/resolve.c, rule 26). A restarted or different coordinator
// has nothing to finish.
//
// A vote that did not arrive (timeout, unreachable, an ERROR) is not a
// NO: that participant may have voted YES durably, and then the votes
// may already say commit. The coordinator cannot abort on its own, so it
// answers UNKNOWN and sends nothing; the participants settle it (the
// silent one is fenced by the first peer that asks it, or its YES is
// found). Only an explicit NO vote, which the participant made durable
// before answering, lets the coordinator abort and tell the others.

#include <stdio.h>
#include <string.h>

#include "coordinator_int.h"

// A pc COMMIT nobody waits for rides the next batch to its participant
// (lazy, as 3PC's DO_COMMIT): at one client that is the next
// transaction's PREPARE, so one message and one fsync there cover both
// (the PREPARE, served after the COMMIT, waits for that fsync if it needs
// the same keys); on an idle channel it leaves within COORD_LINGER_MS.
static void
pc_send_commit(coord *c, uint64_t txid, uint32_t peer, clk_ts cts)
{
	coord_item *it = coord__item_new();
	if (it == NULL)
		return; // the participant finds the outcome itself
	proto_msg_init(&it->req, PROTO_COMMIT);
	it->req.u.txid.txid = txid;
	it->req.u.txid.commit_ts = cts;
	it->peer = peer;
	it->timeout_ms = (uint32_t)c->cfg.ack_timeout_ms;
	it->lazy = c->cfg.pc_lazy_commit;
	if (coord__send(c, it) != DTX_OK)
		coord__item_free(it);
}

typedef enum pc_tally {
	PC_ALL_YES, // *cts: the largest prepare ts
	PC_SOME_NO, // a participant voted NO: aborted
	PC_MISSING, // no NO, but a vote is missing: the votes decide later
} pc_tally;

// Reads r's votes. A vote counts once per participant: r->items holds
// exactly one item per participant of the plan, matched by txid, so a
// repeated or stray VOTE cannot count twice. nack[i]: parts[i] voted NO.
static pc_tally
pc_tally_votes(const coord_run *r, clk_ts *cts, char *why, size_t n, bool *nack)
{
	bool no = false, missing = false;
	clk_ts maxpts = 0;
	for (uint32_t i = 0; i < r->p.nparts; i++) {
		const coord_item *it = &r->items[i];
		const proto_vote *v = coord__vote_of(r, i);
		nack[i] = v != NULL && !v->yes;
		if (v != NULL && v->yes && v->prepare_ts != 0) {
			if (v->prepare_ts > maxpts)
				maxpts = v->prepare_ts;
		} else if (nack[i]) {
			if (!no)
				coord__no_reason(v, why, n);
			no = true;
		} else if (!missing) {
			missing = true;
			if (!no)
				snprintf(why, n,
				    "participant %u: no vote (%s); the "
				    "participants decide",
				    it->peer,
				    it->err != DTX_OK
				        ? dtx_strerror(it->err)
				        : proto_type_name(it->rep.hdr.type));
		}
	}
	*cts = maxpts;
	return no ? PC_SOME_NO : missing ? PC_MISSING : PC_ALL_YES;
}

void
coord__pc_decide(coord_run *r)
{
	coord *c = r->c;
	proto_txn_reply *rep = &r->rep.u.txn_reply;
	char why[PROTO_MAX_STR];
	bool nack[COORD_MAX_PARTS];
	clk_ts cts = 0;
	uint64_t txid = r->txid;
	uint32_t nparts = r->p.nparts, parts[COORD_MAX_PARTS];
	memcpy(parts, r->p.parts, nparts * sizeof(uint32_t));
	why[0] = '\0';
	pc_tally out = pc_tally_votes(r, &cts, why, sizeof(why), nack);

	// Soft state only: the entry kept the id unique while voting.
	pthread_mutex_lock(&c->mu);
	coord_tx *t = coord__tx_find(c, txid);
	if (t != NULL)
		coord__tx_remove(c, t);
	pthread_mutex_unlock(&c->mu);

	rep->txid = txid;
	if (out == PC_ALL_YES) {
		atomic_fetch_add(&c->n_committed, 1);
		rep->outcome = PROTO_COMMITTED;
		rep->commit_ts = cts;
	} else if (out == PC_SOME_NO) {
		atomic_fetch_add(&c->n_aborted, 1);
		rep->outcome = PROTO_ABORTED;
		(void)coord__reason(rep, "%s", why);
	} else {
		atomic_fetch_add(&c->n_unknown, 1);
		rep->outcome = PROTO_UNKNOWN;
		(void)coord__reason(rep, "%s", why);
	}
	dtx_crashpoint("coord.pc_before_reply");
	coord__run_done(r); // the client first; r is gone
	if (out == PC_MISSING)
		return;
	dtx_crashpoint("coord.pc_after_reply");
	for (uint32_t i = 0; i < nparts; i++) {
		if (out == PC_ALL_YES)
			pc_send_commit(c, txid, parts[i], cts);
		else if (!nack[i])
			coord__send_abort(c, txid, parts[i]);
	}
}
