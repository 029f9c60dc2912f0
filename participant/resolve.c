// SPDX-License-Identifier: MIT
//
// The in-doubt resolver: a thread that finds every transaction this
// participant voted YES for and has no outcome of, both those reloaded
// from the WAL at start and those left PREPARED too long while running,
// and learns its outcome. A parallel-commit (pc) transaction is settled
// by its peers' votes alone (resolve_pc). Any other asks the coordinator
// first (presumed abort: no record means aborted); when the coordinator
// cannot be reached it asks the peers (cooperative termination, rule 8): a peer
// that knows the outcome tells it, a peer that never voted aborts and says so.
// When every peer is in doubt too it never guesses (rule 9): it stays blocked,
// says so in HEALTH and in the log, and retries with capped exponential
// backoff.
//
// 3PC transactions whose coordinator is unreachable run the termination
// protocol instead (rule 11): the reachable participant with the lowest
// node id acts as recovery coordinator; any COMMITTED -> commit; any
// ABORTED or never voted -> abort; any PRECOMMITTED -> PRE_COMMIT all
// reachable, then DO_COMMIT; all merely PREPARED -> ABORT all reachable.
// A participant that restarted with the transaction PREPARED aborts only
// when every peer answered PREPARED (it is a recovering site: the others
// may have committed without it).
//
// That protocol is correct only under crash-stop failures with bounded
// message delays. Under a network partition it is WRONG: the coordinator
// may have pre-committed the participants on one side and gone on to
// commit them, while the other side, all PREPARED and unable to reach
// anyone who saw the PRE_COMMIT, elects its own recovery coordinator and
// aborts. Both sides then decide, differently, and atomicity is lost. No
// timeout fixes this: an unreachable node and a slow one look alike.

#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "participant_int.h"

#define BACKOFF_BASE_MS 200u
#define TICK_MS 100u
#define MAINTAIN_EVERY_NS (1000u * 1000000ull)
#define GC_EVERY_NS (10000u * 1000000ull)

typedef enum res_out {
	RES_DECIDED, // an outcome was applied here
	RES_UNDECIDED, // nobody reachable knows: in doubt (counts as blocked)
	RES_WAIT, // someone reachable is deciding: look again soon
} res_out;

// Sends {txid, commit_ts cts} of type to node, with the resolve timeout
// (every message the resolver sends may be repeated). The contract of
// proto_daemon_call: on DTX_OK or DTX_EREFUSED *rep is owned by the
// caller.
static dtx_err
call_txid(part *p, uint32_t node, proto_type type, uint64_t txid, clk_ts cts,
    proto_msg *rep)
{
	proto_msg req;
	proto_call_opts o = { .timeout_ms =
		                  (uint32_t)p->cfg->resolve_timeout_ms,
		.idempotent = true };
	proto_msg_init(&req, type);
	req.u.txid.txid = txid;
	req.u.txid.commit_ts = cts;
	return proto_daemon_call(p->d, node, &req, rep, &o);
}

// Sends STATUS{txid} to node; on DTX_OK *st and *cts hold the answer
// (and *pts, when not NULL, a pc peer's durable prepare ts).
static dtx_err
ask_status_pts(part *p, uint32_t node, uint64_t txid, proto_txn_state *st,
    clk_ts *cts, clk_ts *pts)
{
	proto_msg rep;
	dtx_err rv = call_txid(p, node, PROTO_STATUS, txid, 0, &rep);
	if (rv == DTX_OK) {
		if (rep.hdr.type == PROTO_STATUS_REPLY &&
		    rep.u.status_reply.txid == txid) {
			*st = rep.u.status_reply.state;
			*cts = rep.u.status_reply.commit_ts;
			if (pts != NULL)
				*pts = rep.u.status_reply.prepare_ts;
		} else {
			rv = DTX_EPROTO;
		}
		proto_msg_free(&rep);
	} else if (rv == DTX_EREFUSED) {
		DTX_LOGF(DTX_LOG_DEBUG, "RESOLVE_REFUSED",
		    DTX_FIELDS(DTX_LF_TXID(txid), DTX_LF_PEER(node),
		        DTX_LF_S("why",
		            rep.u.error.reason ? rep.u.error.reason : "error")),
		    "STATUS refused");
		proto_msg_free(&rep);
	}
	return rv;
}

static dtx_err
ask_status(
    part *p, uint32_t node, uint64_t txid, proto_txn_state *st, clk_ts *cts)
{
	return ask_status_pts(p, node, txid, st, cts, NULL);
}

// Sends a decision (COMMIT, ABORT, PRE_COMMIT, DO_COMMIT) to node.
static dtx_err
tell(part *p, uint32_t node, proto_type type, uint64_t txid, clk_ts cts)
{
	proto_msg rep;
	dtx_err rv = call_txid(p, node, type, txid,
	    type == PROTO_COMMIT || type == PROTO_PRE_COMMIT ? cts : 0, &rep);
	if (rv == DTX_OK || rv == DTX_EREFUSED) {
		if (rv == DTX_OK && rep.hdr.type != PROTO_ACK)
			rv = DTX_EPROTO;
		proto_msg_free(&rep);
	}
	DTX_LOGF(rv == DTX_OK ? DTX_LOG_INFO : DTX_LOG_WARN, "TERMINATE_SEND",
	    DTX_FIELDS(DTX_LF_TXID(txid), DTX_LF_PEER(node),
	        DTX_LF_S("type", proto_type_name(type)),
	        DTX_LF_S(
	            "state", rv == DTX_OK ? "acknowledged" : dtx_strerror(rv))),
	    NULL);
	return rv;
}

// Applies an outcome learned from who. False when the store refused it.
static bool
decide(part *p, uint64_t txid, bool commit, clk_ts cts, part_ctr by,
    const char *who)
{
	// The commit ts is covered first, checked as a COMMIT's is: one too
	// far ahead of this node's clock leaves the transaction in doubt.
	dtx_err rv = DTX_OK;
	if (commit && cts > clk_node_now(p->clock))
		rv = clk_node_witness(p->clock, cts);
	if (rv == DTX_OK)
		rv = commit ? stor_kv_commit(p->kv, txid, cts)
		            : stor_kv_abort(p->kv, txid);
	if (rv == DTX_OK)
		part__txtab_del(p->txtab, txid);
	if (rv == DTX_ECONFLICT && !commit &&
	    by == PART_CTR_RESOLVED_BY_TERMINATION) {
		// The 3PC termination read this participant PREPARED, and a
		// commit arrived since (the coordinator's PRE_COMMIT and
		// DO_COMMIT). The abort is applied here before any peer is
		// told, so nothing was aborted; the next round finds the
		// transaction committed.
		DTX_LOGF(DTX_LOG_WARN, "TERMINATE_OVERTAKEN",
		    DTX_FIELDS(DTX_LF_TXID(txid), DTX_LF_S("by", who)),
		    "committed here meanwhile: nothing aborted, no peer told");
		return false;
	}
	if (rv != DTX_OK) {
		DTX_LOGF(DTX_LOG_ERROR, "RESOLVE_APPLY",
		    DTX_FIELDS(DTX_LF_TXID(txid), DTX_LF_S("by", who),
		        DTX_LF_S("why", dtx_strerror(rv))),
		    "cannot %s", commit ? "commit" : "abort");
		return false;
	}
	part__count(p, by);
	part__count(p, commit ? PART_CTR_COMMITTED : PART_CTR_ABORTED);
	part__outcome_signal(p);
	proto_daemon_trace(p->d, PROTO_EV_RECOVER, txid, NULL,
	    commit ? "RESOLVED_COMMIT" : "RESOLVED_ABORT", cts);
	char cts_s[32];
	snprintf(cts_s, sizeof(cts_s), "%" PRIu64 ".%u", clk_ts_l(cts),
	    clk_ts_c(cts));
	DTX_LOGF(DTX_LOG_INFO, "RESOLVED",
	    DTX_FIELDS(DTX_LF_TXID(txid),
	        DTX_LF_S("state", commit ? "committed" : "aborted"),
	        DTX_LF_S("cts", commit ? cts_s : NULL), DTX_LF_S("by", who)),
	    NULL);
	return true;
}

static res_out
decided(bool ok)
{
	return ok ? RES_DECIDED : RES_UNDECIDED;
}

// Applies what peer answered about txid (st, with cts) when that
// settles it: committed with a ts, aborted or never voted. Then returns
// true with *out the result of deciding; otherwise false.
static bool
peer_decided(part *p, uint64_t txid, uint32_t peer, proto_txn_state st,
    clk_ts cts, res_out *out)
{
	char who[64];
	snprintf(who, sizeof(who), "peer %u says %s", peer,
	    st == PROTO_TS_NEVER_VOTED ? "never voted" : "so");
	if (st == PROTO_TS_COMMITTED && cts != 0) {
		*out = decided(decide(
		    p, txid, true, cts, PART_CTR_RESOLVED_BY_PEERS, who));
		return true;
	}
	if (st == PROTO_TS_ABORTED || st == PROTO_TS_NEVER_VOTED) {
		*out = decided(
		    decide(p, txid, false, 0, PART_CTR_RESOLVED_BY_PEERS, who));
		return true;
	}
	return false;
}

static bool was_recovered(const part *p, uint64_t txid);

// The 3PC termination protocol, run when the coordinator is unreachable.
static res_out
terminate_3pc(part *p, const stor_indoubt *x)
{
	uint32_t reach[STOR_PEERS_MAX];
	size_t nreach = 0;
	uint32_t leader = p->self;
	clk_ts pre_cts = x->state == STOR_TX_PRECOMMITTED ? x->commit_ts : 0;

	for (uint32_t i = 0; i < x->meta.npeers; i++) {
		uint32_t peer = x->meta.peers[i];
		proto_txn_state st;
		clk_ts cts = 0;
		res_out out;
		if (ask_status(p, peer, x->txid, &st, &cts) != DTX_OK)
			continue;
		if (peer_decided(p, x->txid, peer, st, cts, &out))
			return out;
		if (st == PROTO_TS_PRECOMMITTED && cts > pre_cts)
			pre_cts = cts;
		reach[nreach++] = peer;
		if (peer < leader)
			leader = peer;
	}
	if (leader != p->self) {
		DTX_LOGF(DTX_LOG_DEBUG, "TERMINATE_DEFER",
		    DTX_FIELDS(DTX_LF_TXID(x->txid), DTX_LF_PEER(leader)),
		    "the peer leads the termination");
		return RES_WAIT;
	}
	if (pre_cts != 0) {
		// Someone pre-committed: the coordinator may have committed.
		if (x->state == STOR_TX_PREPARED &&
		    stor_kv_precommit(p->kv, x->txid, pre_cts) != DTX_OK)
			return RES_UNDECIDED;
		for (size_t i = 0; i < nreach; i++)
			(void)tell(
			    p, reach[i], PROTO_PRE_COMMIT, x->txid, pre_cts);
		if (!decide(p, x->txid, true, pre_cts,
		        PART_CTR_RESOLVED_BY_TERMINATION,
		        "3pc termination: a participant pre-committed"))
			return RES_UNDECIDED;
		for (size_t i = 0; i < nreach; i++)
			(void)tell(p, reach[i], PROTO_DO_COMMIT, x->txid, 0);
		return RES_DECIDED;
	}
	// A participant that crashed while uncertain (the transaction was
	// reloaded at its start) is a failed site of the protocol, not one
	// of the survivors that terminate it: the coordinator presumes a
	// participant that does not acknowledge its PRE_COMMIT crashed and
	// goes on to commit the others. So it learns the outcome from a peer
	// that knows, and aborts only when every peer answered, all merely
	// PREPARED (3PC's recovery rule); a peer it cannot reach may have
	// committed, and it waits.
	if (nreach < x->meta.npeers && was_recovered(p, x->txid)) {
		DTX_LOGF(DTX_LOG_DEBUG, "TERMINATE_RECOVERED",
		    DTX_FIELDS(DTX_LF_TXID(x->txid),
		        DTX_LF_U("answered", nreach),
		        DTX_LF_U("peers", x->meta.npeers)),
		    "reloaded uncertain: waits for every peer");
		return RES_UNDECIDED;
	}
	// Everyone reachable is only PREPARED: nobody can have committed
	// (under crash-stop; see the top of this file).
	if (!decide(p, x->txid, false, 0, PART_CTR_RESOLVED_BY_TERMINATION,
	        "3pc termination: all reachable participants uncertain"))
		return RES_UNDECIDED;
	for (size_t i = 0; i < nreach; i++)
		(void)tell(p, reach[i], PROTO_ABORT, x->txid, 0);
	return RES_DECIDED;
}

// Parallel commit (rules 25, 26): the votes are the decision, so ask
// every peer named in the record and never the coordinator. A peer that
// committed tells the ts; one that aborted, voted NO or never prepared
// (it records the abort fence before it answers NEVER_VOTED, so its
// PREPARE can no longer arrive) means abort; a peer PREPARED here has
// voted YES durably (it syncs before it answers) and tells its prepare
// ts. Every YES: commit at the largest prepare ts, which every
// participant derives alike. A peer that cannot be asked keeps it in
// doubt: its vote could go either way.
static res_out
resolve_pc(part *p, const stor_indoubt *x)
{
	clk_ts cts = x->meta.prepare_ts;
	bool missing = false;
	for (uint32_t i = 0; i < x->meta.npeers; i++) {
		uint32_t peer = x->meta.peers[i];
		proto_txn_state st;
		clk_ts pcts = 0, pts = 0;
		res_out out;
		if (ask_status_pts(p, peer, x->txid, &st, &pcts, &pts) !=
		    DTX_OK) {
			missing = true; // a NO from another still decides
			continue;
		}
		if (peer_decided(p, x->txid, peer, st, pcts, &out))
			return out;
		if (st == PROTO_TS_PREPARED && pts != 0) {
			if (pts > cts)
				cts = pts;
		} else {
			missing = true;
		}
	}
	if (missing)
		return RES_UNDECIDED;
	return decided(decide(p, x->txid, true, cts, PART_CTR_RESOLVED_BY_PEERS,
	    "pc: every participant voted yes"));
}

dtx_err
part__pc_vote(part *p, uint64_t txid, clk_ts *pts)
{
	stor_indoubt x;
	*pts = 0;
	if (stor_kv_indoubt_find(p->kv, txid, &x) != DTX_OK ||
	    x.meta.mode != STOR_MODE_PC || x.state != STOR_TX_PREPARED)
		return DTX_OK;
	dtx_err rv = stor_kv_sync(p->kv, x.lsn);
	if (rv == DTX_OK)
		*pts = x.meta.prepare_ts;
	return rv;
}

static res_out
resolve_one(part *p, const stor_indoubt *x)
{
	proto_txn_state st;
	clk_ts cts = 0;
	char who[64];

	part__count(p, PART_CTR_RESOLVE_ATTEMPTS);
	if (x->meta.mode == STOR_MODE_PC)
		return resolve_pc(p, x);
	dtx_err rv = ask_status(p, x->meta.coordinator, x->txid, &st, &cts);
	if (rv == DTX_OK) {
		snprintf(
		    who, sizeof(who), "coordinator %u", x->meta.coordinator);
		switch (st) {
		case PROTO_TS_COMMITTED:
			if (cts == 0)
				break;
			return decided(decide(p, x->txid, true, cts,
			    PART_CTR_RESOLVED_BY_COORDINATOR, who));
		case PROTO_TS_ABORTED:
		case PROTO_TS_UNKNOWN:
		case PROTO_TS_NEVER_VOTED:
			// Presumed abort: no record means aborted.
			return decided(decide(p, x->txid, false, 0,
			    PART_CTR_RESOLVED_BY_COORDINATOR, who));
		default:
			// Still collecting votes or sending decisions.
			return RES_WAIT;
		}
	}
	DTX_LOGF(DTX_LOG_DEBUG, "RESOLVE_COORD",
	    DTX_FIELDS(DTX_LF_TXID(x->txid), DTX_LF_PEER(x->meta.coordinator),
	        DTX_LF_S("why",
	            rv == DTX_OK ? "committed without a ts"
	                         : dtx_strerror(rv))),
	    NULL);
	if (x->meta.mode == STOR_MODE_3PC)
		return terminate_3pc(p, x);
	for (uint32_t i = 0; i < x->meta.npeers; i++) {
		uint32_t peer = x->meta.peers[i];
		res_out out;
		if (ask_status(p, peer, x->txid, &st, &cts) != DTX_OK)
			continue;
		if (peer_decided(p, x->txid, peer, st, cts, &out))
			return out;
	}
	return RES_UNDECIDED;
}

bool
part__decide(part *p, uint64_t txid, bool commit, clk_ts cts, const char *who)
{
	return decide(
	    p, txid, commit, cts, PART_CTR_RESOLVED_BY_COORDINATOR, who);
}

int
part__resolve_once(part *p, const stor_indoubt *x)
{
	res_out r = resolve_one(p, x);
	return r == RES_DECIDED ? 0 : r == RES_UNDECIDED ? 1 : 2;
}

static bool
was_recovered(const part *p, uint64_t txid)
{
	for (size_t i = 0; i < p->nrecovered; i++)
		if (p->recovered[i] == txid)
			return true;
	return false;
}

static part__doubt *
find_doubt(part *p, uint64_t txid)
{
	for (size_t i = 0; i < p->ndoubts; i++)
		if (p->doubts[i].txid == txid)
			return &p->doubts[i];
	return NULL;
}

// Replaces the table with one entry per in-doubt transaction of list,
// keeping what was known of each. res_mu held.
static dtx_err
sync_table(part *p, const stor_indoubt *list, size_t n, uint64_t now)
{
	part__doubt *nd = NULL;
	if (n > 0 && (nd = dtx_calloc(n, sizeof(*nd))) == NULL)
		return DTX_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const part__doubt *old = find_doubt(p, list[i].txid);
		if (old != NULL) {
			nd[i] = *old;
		} else {
			nd[i] = (part__doubt) { .txid = list[i].txid,
				.seen_ns = now,
				.next_ns = now,
				.backoff_ms = BACKOFF_BASE_MS,
				.recovered = was_recovered(p, list[i].txid) };
		}
		nd[i].state = list[i].state;
	}
	dtx_free(p->doubts);
	p->doubts = nd;
	p->ndoubts = n;
	return DTX_OK;
}

// Records the result of one attempt. res_mu held.
static void
note_result(part *p, uint64_t txid, res_out r, uint64_t now)
{
	part__doubt *e = find_doubt(p, txid);
	if (e == NULL)
		return;
	e->attempts++;
	if (r == RES_DECIDED) {
		e->blocked = false;
		e->fail_since_ns = 0;
		e->next_ns = UINT64_MAX; // gone from the list next pass
		return;
	}
	if (r == RES_WAIT) {
		e->backoff_ms = BACKOFF_BASE_MS;
		e->next_ns = now + BACKOFF_BASE_MS * 1000000ull;
		return;
	}
	if (e->fail_since_ns == 0)
		e->fail_since_ns = now;
	e->next_ns = now + e->backoff_ms * 1000000ull;
	uint64_t cap = (uint64_t)p->cfg->resolve_backoff_max_ms;
	e->backoff_ms = e->backoff_ms * 2 < cap ? e->backoff_ms * 2 : cap;
}

// Marks and logs transactions unresolved for longer than blocked_ms.
// res_mu held.
static void
mark_blocked(part *p, uint64_t now)
{
	uint64_t lim = (uint64_t)p->cfg->blocked_ms * 1000000ull;
	uint64_t every = (uint64_t)p->cfg->indoubt_log_ms * 1000000ull;
	for (size_t i = 0; i < p->ndoubts; i++) {
		part__doubt *e = &p->doubts[i];
		bool was = e->blocked;
		e->blocked = e->fail_since_ns != 0 &&
		    e->next_ns != UINT64_MAX && now - e->fail_since_ns >= lim;
		if (!e->blocked || (was && now - e->logged_ns < every))
			continue;
		e->logged_ns = now;
		DTX_LOGF(DTX_LOG_WARN, "INDOUBT",
		    DTX_FIELDS(DTX_LF_TXID(e->txid),
		        DTX_LF_S("state", stor_tx_state_name(e->state)),
		        DTX_LF_U("age_ms", (now - e->seen_ns) / 1000000u),
		        DTX_LF_U("attempts", e->attempts)),
		    "coordinator unreachable, peers in doubt");
	}
}

void
part__resolver_describe(part *p, const stor_indoubt *x, char *out, size_t n)
{
	uint64_t now = dtx_mono_ns();
	bool pc = x->meta.mode == STOR_MODE_PC;
	pthread_mutex_lock(&p->res_mu);
	const part__doubt *e = find_doubt(p, x->txid);
	if (e == NULL || e->attempts == 0)
		snprintf(out, n,
		    "%s; the resolver asks after %" PRId64 " ms in doubt",
		    pc ? "the peers' votes" : "the coordinator's decision",
		    p->cfg->indoubt_timeout_ms);
	else if (e->blocked)
		snprintf(out, n,
		    "%s; blocked for %.1f s (%u attempts): only its "
		    "coordinator's return or dtx txn resolve can decide it",
		    pc ? "a peer's vote that cannot be asked"
		       : "coordinator unreachable and every peer in doubt",
		    (double)(now - e->fail_since_ns) / 1e9, e->attempts);
	else if (e->fail_since_ns != 0)
		snprintf(out, n, "%s (%u attempts)",
		    pc ? "a peer's vote that cannot be asked yet"
		       : "coordinator unreachable, asking the peers",
		    e->attempts);
	else
		snprintf(out, n, "%s (%u attempts)",
		    pc ? "the peers' votes" : "the coordinator, still deciding",
		    e->attempts);
	pthread_mutex_unlock(&p->res_mu);
}

// One pass: refresh the table, try every transaction that is due.
static void
res_pass(part *p)
{
	stor_indoubt *list = NULL;
	size_t n = 0;
	if (stor_kv_indoubt(p->kv, &list, &n) != DTX_OK)
		return;
	uint64_t now = dtx_mono_ns();
	uint64_t timeout = (uint64_t)p->cfg->indoubt_timeout_ms * 1000000ull;
	bool *due = n > 0 ? dtx_calloc(n, sizeof(bool)) : NULL;
	pthread_mutex_lock(&p->res_mu);
	if ((n > 0 && due == NULL) || sync_table(p, list, n, now) != DTX_OK) {
		pthread_mutex_unlock(&p->res_mu);
		dtx_free(due);
		dtx_free(list);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const part__doubt *e = &p->doubts[i];
		due[i] = (e->recovered || now - e->seen_ns >= timeout) &&
		    now >= e->next_ns;
	}
	pthread_mutex_unlock(&p->res_mu);

	for (size_t i = 0; i < n; i++) {
		if (!due[i] || stor_kv_status(p->kv) != DTX_OK ||
		    proto_daemon_stopping(p->d))
			continue;
		pthread_mutex_lock(&p->res_mu);
		bool stop = p->res_stop;
		pthread_mutex_unlock(&p->res_mu);
		if (stop)
			break;
		res_out r = resolve_one(p, &list[i]);
		pthread_mutex_lock(&p->res_mu);
		note_result(p, list[i].txid, r, dtx_mono_ns());
		pthread_mutex_unlock(&p->res_mu);
	}
	pthread_mutex_lock(&p->res_mu);
	mark_blocked(p, dtx_mono_ns());
	p->res_first_pass = true;
	pthread_mutex_unlock(&p->res_mu);
	dtx_free(due);
	dtx_free(list);
}

// Housekeeping: outcome GC and checkpoints, then version GC.
static void
maintain(part *p, uint64_t *last_maint, uint64_t *last_gc)
{
	uint64_t now = dtx_mono_ns();
	if (stor_kv_status(p->kv) != DTX_OK)
		return;
	if (now - *last_maint >= MAINTAIN_EVERY_NS) {
		*last_maint = now;
		dtx_err rv = stor_kv_maintain(p->kv);
		if (rv != DTX_OK)
			DTX_LOG(DTX_LOG_WARN, "MAINTAIN", "store upkeep: %s",
			    dtx_strerror(rv));
	}
	if (now - *last_gc >= GC_EVERY_NS) {
		*last_gc = now;
		uint64_t l = clk_ts_l(clk_node_now(p->clock));
		uint64_t keep = (uint64_t)p->cfg->gc_retain_ms;
		if (l > keep)
			(void)stor_kv_gc(p->kv, clk_ts_make(l - keep, 0), NULL);
	}
}

static void *
res_main(void *arg)
{
	part *p = arg;
	uint64_t last_maint = dtx_mono_ns(), last_gc = last_maint;
	for (;;) {
		res_pass(p);
		part__heur_check(p);
		maintain(p, &last_maint, &last_gc);
		struct timespec ts =
		    dtx_time_after(CLOCK_MONOTONIC, TICK_MS * 1000000u);
		pthread_mutex_lock(&p->res_mu);
		if (!p->res_stop)
			pthread_cond_timedwait(&p->res_cv, &p->res_mu, &ts);
		bool stop = p->res_stop;
		pthread_mutex_unlock(&p->res_mu);
		if (stop)
			break;
	}
	return NULL;
}

dtx_err
part__resolver_start(part *p)
{
	if (p->res_started)
		return DTX_OK;
	if (pthread_create(&p->res_th, NULL, res_main, p) != 0)
		return DTX_ENOMEM;
	p->res_started = true;
	return DTX_OK;
}

void
part__resolver_stop(part *p)
{
	if (!p->res_started)
		return;
	dtx_threads_stop(&p->res_mu, &p->res_cv, &p->res_stop, &p->res_th, 1);
	p->res_started = false;
}

size_t
part__resolver_blocked(part *p, uint64_t *out, size_t max, bool *recovering)
{
	size_t nb = 0;
	bool rec = false;
	pthread_mutex_lock(&p->res_mu);
	for (size_t i = 0; i < p->ndoubts; i++) {
		const part__doubt *e = &p->doubts[i];
		if (e->blocked) {
			if (nb < max)
				out[nb] = e->txid;
			nb++;
		} else if (e->recovered && e->next_ns != UINT64_MAX) {
			rec = true;
		}
	}
	if (!p->res_first_pass && p->nrecovered > 0)
		rec = true;
	pthread_mutex_unlock(&p->res_mu);
	*recovering = rec;
	return nb;
}
