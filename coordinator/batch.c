// SPDX-License-Identifier: MIT
//
// Per-participant batching channels (DESIGN rule 4): every message the
// coordinator sends a participant is queued on that participant's channel.
// While fewer than cfg.senders batches are on the wire, the thread that
// queues a message takes whatever is queued (without waiting for more)
// and sends it as one BATCH itself, asynchronously; otherwise the message
// waits, and the reply of the batch on the wire sends everything that
// queued up meanwhile as the next BATCH. So many transactions' PREPAREs
// and COMMITs share one round trip and one participant fsync, and no
// message is handed to another thread just to be sent.
//
// A message a client waits for (PREPARE, CAN_COMMIT, PRE_COMMIT) that
// may overtake (a pc PREPARE by default; every one with
// cfg.votes_overtake) does not wait behind batches that carry none:
// while fewer than cfg.senders batches with such a message are on the
// wire, it leaves at once, with whatever else is queued. Without that,
// at one client every PREPARE waits for the previous transaction's
// COMMIT batch to come back (a round trip and the participant's fsync
// of the commit). A client's next transaction on the same keys may then
// meet the previous one's locks still held: the participant holds its
// PREPARE (and the batch's reply) until that decision arrives
// (participant/lockwait.c). So the other way round, a decision never
// waits behind batches of votes: while fewer than cfg.senders batches
// without votes are on the wire, the queued decisions leave at once,
// without the queued votes. Otherwise a decision the participant waits
// for could sit behind the very batch that waits for it.
//
// Two refinements make the batches larger, each one a round trip and a
// participant fsync fewer. A thread that completes a group (a batch's
// replies, the forcer's group of durable records) plugs the channels
// while it works (coord__plug), so the messages the group produces leave
// together when it unplugs instead of the first one alone. And 3PC's
// DO_COMMIT and pc's COMMIT, which nobody waits for, are lazy: each rides
// the next batch to its participant and starts none itself, unless the
// channel stays idle for COORD_LINGER_MS (the linger thread then sends
// it).

#include <string.h>

#include "coordinator_int.h"

coord_item *
coord__item_new(void)
{
	return dtx_calloc(1, sizeof(coord_item));
}

void
coord__item_free(coord_item *it)
{
	if (it == NULL)
		return;
	proto_msg_free(&it->rep);
	dtx_free(it);
}

void
coord__waiter_init(coord_waiter *w)
{
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->pending = 0;
}

void
coord__waiter_fini(coord_waiter *w)
{
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

void
coord__waiter_wait(coord_waiter *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->pending > 0)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

void
coord__waiter_done(coord_waiter *w)
{
	pthread_mutex_lock(&w->mu);
	if (--w->pending == 0)
		pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

// Completes one item: runs its callback, or frees it.
static void
complete(coord *c, coord_item *it, dtx_err err)
{
	it->err = err;
	if (it->done != NULL)
		it->done(c, it);
	else
		coord__item_free(it);
}

// One batch on the wire: the items it carries and the messages the
// request borrows from them, kept until the reply (or the failure) is in.
typedef struct flight {
	coord_chan *ch;
	uint32_t n;
	uint32_t votes; // items a client waits for (is_vote)
	proto_msg req; // a BATCH of msgs, or the single item's own request
	coord_item **items; // n entries, after the struct
	proto_msg *msgs; // n entries (unused for n == 1)
	proto_retry retry; // the call's retry policy (it outlives launch)
} flight;

// A batch that was never handed to a connection (none is up: the
// participant is restarting, or the dialer is between attempts) is safe
// to send again. Each such attempt waits up to the client's connect wait
// (200 ms) plus a short backoff, so this many fit in the batch's timeout.
#define RESEND_SLICE_MS 250

static void flight_done(void *arg, dtx_err err, proto_msg *rep);

// Whether a client waits for this message's answer before it hears its
// transaction's outcome.
static bool
is_vote(const coord_item *it)
{
	proto_type t = it->req.hdr.type;
	return t == PROTO_PREPARE || t == PROTO_CAN_COMMIT ||
	    t == PROTO_PRE_COMMIT;
}

// Whether a vote may leave while only decisions are on the wire.
static bool
is_fast(const coord *c, const coord_item *it)
{
	if (!is_vote(it))
		return false;
	return c->cfg.votes_overtake ||
	    (c->cfg.pc_votes_overtake && it->req.hdr.type == PROTO_PREPARE &&
	        it->req.u.prepare.mode == PROTO_MODE_PC);
}

// Takes up to max_batch queued items (with decisions_only, only those
// that are not votes) into a new flight, in queue order. Caller holds
// ch->mu and counts the flight once it has it. NULL when there is
// nothing to take or memory ran out (the items stay queued: the next
// send or completion tries again).
static flight *
take_flight(coord_chan *ch, bool decisions_only)
{
	uint32_t max = (uint32_t)ch->c->cfg.max_batch;
	uint32_t n = 0;
	for (coord_item *it = ch->head; it != NULL && n < max; it = it->next)
		n += !decisions_only || !is_vote(it);
	if (n == 0)
		return NULL;
	flight *f = dtx_alloc(sizeof(*f) + n * sizeof(coord_item *) +
	    (n > 1 ? n * sizeof(proto_msg) : 0));
	if (f == NULL)
		return NULL;
	f->ch = ch;
	f->n = n;
	f->votes = 0;
	f->items = (coord_item **)(f + 1);
	f->msgs = n > 1 ? (proto_msg *)(f->items + n) : NULL;
	uint32_t fast = 0, k = 0;
	coord_item **pp = &ch->head, *kept = NULL;
	while (*pp != NULL && k < n) {
		coord_item *it = *pp;
		if (decisions_only && is_vote(it)) {
			kept = it;
			pp = &it->next;
			continue;
		}
		*pp = it->next;
		it->next = NULL;
		if (!it->lazy)
			ch->eager--;
		f->items[k++] = it;
		f->votes += is_vote(it);
		fast += is_fast(ch->c, it);
	}
	if (*pp == NULL)
		ch->tail = kept; // the last item left, or none
	ch->queued_votes -= f->votes;
	ch->queued_fast -= fast;
	return f;
}

// Starts f's call. The reply arrives in flight_done on an nng thread;
// the request's bodies stay borrowed from the items until then.
static void
launch(flight *f)
{
	coord_chan *ch = f->ch;
	uint32_t timeout = 0;
	for (uint32_t i = 0; i < f->n; i++)
		if (f->items[i]->timeout_ms > timeout)
			timeout = f->items[i]->timeout_ms;
	// Only "not delivered" is retried: a timeout leaves the outcome
	// unknown and goes back to the transaction.
	f->retry = (proto_retry) { .attempts = 1 + timeout / RESEND_SLICE_MS,
		.base_ms = 20,
		.cap_ms = 50 };
	proto_call_opts opts = { .timeout_ms = timeout, .retry = &f->retry };
	if (f->n == 1) {
		f->req = f->items[0]->req;
	} else {
		// Shallow copies: the elements borrow the items' bodies.
		for (uint32_t i = 0; i < f->n; i++)
			f->msgs[i] = f->items[i]->req;
		proto_msg_init(&f->req, PROTO_BATCH);
		f->req.u.batch.n = f->n;
		f->req.u.batch.msgs = f->msgs;
	}
	atomic_fetch_add(&ch->c->n_batches, 1);
	atomic_fetch_add(&ch->c->n_batch_items, f->n);
	dtx_err err = proto_daemon_call_async(
	    ch->c->d, ch->peer, &f->req, &opts, flight_done, f);
	if (err != DTX_OK)
		flight_done(f, err, NULL);
}

// What the channel may send now (caller holds ch->mu): nothing, when
// the channel stops, is empty, or holds only lazy items (unless lazy);
// everything queued, when fewer than cfg.senders batches are on the
// wire, or a vote that may overtake is queued and fewer than
// cfg.senders batches with votes are; only decisions, when fewer than
// cfg.senders batches without votes are on the wire.
typedef enum send_what { SEND_NONE, SEND_ALL, SEND_DECISIONS } send_what;

static send_what
may_send(const coord_chan *ch, bool lazy)
{
	uint32_t s = (uint32_t)ch->c->cfg.senders;
	if (ch->stop || ch->head == NULL || (!lazy && ch->eager == 0))
		return SEND_NONE;
	if (ch->inflight < s || (ch->queued_fast > 0 && ch->vote_inflight < s))
		return SEND_ALL;
	if (ch->inflight - ch->vote_inflight < s &&
	    (lazy || ch->eager > ch->queued_votes))
		return SEND_DECISIONS;
	return SEND_NONE;
}

// Lazy items wait on an idle channel: the linger thread sends them
// within COORD_LINGER_MS. Only the call that arms it wakes the thread.
static void
linger(coord *c)
{
	uint64_t zero = 0;
	uint64_t at = dtx_mono_ns() + COORD_LINGER_MS * 1000000u;
	if (!atomic_compare_exchange_strong(&c->linger_ns, &zero, at))
		return;
	pthread_mutex_lock(&c->lg_mu);
	pthread_cond_signal(&c->lg_cv);
	pthread_mutex_unlock(&c->lg_mu);
}

// Sends what is queued while may_send(ch, lazy). The thread that finds
// the channel idle sends the batch itself: no hand-off to another thread.
static void
pump(coord_chan *ch, bool lazy)
{
	pthread_mutex_lock(&ch->mu);
	for (send_what w; (w = may_send(ch, lazy)) != SEND_NONE;) {
		flight *f = take_flight(ch, w == SEND_DECISIONS);
		if (f == NULL)
			break;
		ch->inflight++;
		ch->vote_inflight += f->votes > 0;
		pthread_mutex_unlock(&ch->mu);
		launch(f);
		pthread_mutex_lock(&ch->mu);
	}
	bool strand = !ch->stop && ch->head != NULL &&
	    ch->inflight < (uint32_t)ch->c->cfg.senders;
	pthread_mutex_unlock(&ch->mu);
	if (strand)
		linger(ch->c);
}

static void
pump_all(coord *c)
{
	for (uint32_t id = 0; id < DTX_TOPO_MAX; id++)
		if (c->chan_open[id])
			pump(&c->chans[id], false);
}

// The reply of a flight (or its failure): completes every item, then
// lets the channels send what queued up meanwhile.
static void
flight_done(void *arg, dtx_err err, proto_msg *rep)
{
	flight *f = arg;
	coord_chan *ch = f->ch;
	coord *c = ch->c;
	uint32_t n = f->n;
	coord__plug(c);
	proto_msg none;
	memset(&none, 0, sizeof(none));
	if (rep == NULL)
		rep = &none;
	if (n == 1) {
		if (err == DTX_OK || err == DTX_EREFUSED) {
			f->items[0]->rep = *rep;
			err = DTX_OK;
		}
	} else {
		if (err == DTX_OK &&
		    (rep->hdr.type != PROTO_BATCH || rep->u.batch.n != n)) {
			DTX_LOG_RL(DTX_LOG_WARN, "BATCH_REPLY", ch->peer,
			    "participant %u answered a batch of %u with %s of "
			    "%u",
			    ch->peer, n, proto_type_name(rep->hdr.type),
			    rep->hdr.type == PROTO_BATCH ? rep->u.batch.n : 1);
			err = DTX_EPROTO;
		}
		if (err == DTX_EREFUSED) {
			// One line a second for each participant: while its
			// clock lags this one's, every batch is refused.
			DTX_LOG_RL(DTX_LOG_WARN, "BATCH_REFUSED", ch->peer,
			    "participant %u refused a batch: %s", ch->peer,
			    rep->u.error.reason ? rep->u.error.reason
			                        : "(no reason)");
			err = DTX_EPROTO;
		}
		if (err == DTX_OK)
			for (uint32_t i = 0; i < n; i++) {
				f->items[i]->rep = rep->u.batch.msgs[i];
				memset(&rep->u.batch.msgs[i], 0,
				    sizeof(proto_msg));
			}
		proto_msg_free(rep);
	}
	// An item may be freed by its completion: none is touched after.
	bool votes = f->votes > 0;
	for (uint32_t i = 0; i < n; i++)
		complete(c, f->items[i], err);
	dtx_free(f);
	// Unplugged as coord__unplug does, with this channel's flight
	// counted out first so that it sends what queued up meanwhile; not
	// once the channel stops (coord__chans_stop returns when the last
	// flight is counted out, and the channels may then be gone).
	atomic_fetch_sub(&c->plugs, 1);
	pthread_mutex_lock(&ch->mu);
	ch->inflight--;
	ch->vote_inflight -= votes;
	bool stop = ch->stop;
	if (stop && ch->inflight == 0)
		pthread_cond_broadcast(&ch->cv);
	pthread_mutex_unlock(&ch->mu);
	if (!stop)
		pump_all(c);
}

void
coord__send_queued(coord *c, const uint32_t *peers, uint32_t n)
{
	if (atomic_load(&c->plugs) == 0)
		return; // nothing is held back
	for (uint32_t i = 0; i < n; i++)
		if (peers[i] < DTX_TOPO_MAX && c->chan_open[peers[i]])
			pump(&c->chans[peers[i]], false);
}

void
coord__plug(coord *c)
{
	atomic_fetch_add(&c->plugs, 1);
}

// An item queued while some thread was plugged is sent by that thread's
// unplug at the latest: it reads plugs after queueing, and the unplug
// pumps every channel after counting itself out.
void
coord__unplug(coord *c)
{
	atomic_fetch_sub(&c->plugs, 1);
	pump_all(c);
}

// The linger thread: sleeps until a linger is armed, waits until it is
// due, then sends whatever waits on the idle channels. linger_ns is read
// under lg_mu, so an arming after the read signals the wait below.
static void *
linger_main(void *arg)
{
	coord *c = arg;
	pthread_mutex_lock(&c->lg_mu);
	while (!c->lg_stop) {
		uint64_t at = atomic_load(&c->linger_ns);
		uint64_t now = dtx_mono_ns();
		if (at == 0) {
			pthread_cond_wait(&c->lg_cv, &c->lg_mu);
			continue;
		}
		if (now < at) {
			struct timespec ts =
			    dtx_time_after(CLOCK_REALTIME, at - now);
			pthread_cond_timedwait(&c->lg_cv, &c->lg_mu, &ts);
			continue;
		}
		// Cleared before the pumps: a lazy item queued after them
		// arms a new linger.
		atomic_store(&c->linger_ns, 0);
		pthread_mutex_unlock(&c->lg_mu);
		for (uint32_t id = 0; id < DTX_TOPO_MAX; id++)
			if (c->chan_open[id])
				pump(&c->chans[id], true);
		pthread_mutex_lock(&c->lg_mu);
	}
	pthread_mutex_unlock(&c->lg_mu);
	return NULL;
}

dtx_err
coord__send(coord *c, coord_item *it)
{
	if (it->peer >= DTX_TOPO_MAX || !c->chan_open[it->peer])
		return DTX_EINVAL;
	coord_chan *ch = &c->chans[it->peer];
	pthread_mutex_lock(&ch->mu);
	if (ch->stop) {
		pthread_mutex_unlock(&ch->mu);
		return DTX_ECLOSED;
	}
	DTX_QUEUE_PUSH(ch->head, ch->tail, it, next);
	ch->queued_votes += is_vote(it);
	ch->queued_fast += is_fast(c, it);
	if (!it->lazy)
		ch->eager++;
	bool idle = may_send(ch, false) != SEND_NONE;
	pthread_mutex_unlock(&ch->mu);
	if (idle && atomic_load(&c->plugs) == 0)
		pump(ch, false);
	return DTX_OK;
}

dtx_err
coord__chans_open(coord *c)
{
	const dtx_topo *topo = proto_daemon_topo(c->d);
	for (uint32_t i = 0; i < topo->nparts; i++) {
		uint32_t id = topo->parts[i];
		coord_chan *ch = &c->chans[id];
		ch->c = c;
		ch->peer = id;
		pthread_mutex_init(&ch->mu, NULL);
		pthread_cond_init(&ch->cv, NULL);
		c->chan_open[id] = true;
	}
	pthread_mutex_init(&c->lg_mu, NULL);
	pthread_cond_init(&c->lg_cv, NULL);
	c->lg_init = true;
	if (pthread_create(&c->lg_th, NULL, linger_main, c) != 0)
		return DTX_ENOMEM;
	c->lg_started = true;
	return DTX_OK;
}

void
coord__chans_stop(coord *c)
{
	if (c->lg_started) {
		dtx_threads_stop(
		    &c->lg_mu, &c->lg_cv, &c->lg_stop, &c->lg_th, 1);
		c->lg_started = false;
	}
	// Lazy items go out now, as they would have without their linger.
	for (uint32_t id = 0; id < DTX_TOPO_MAX; id++)
		if (c->chan_open[id])
			pump(&c->chans[id], true);
	for (uint32_t id = 0; id < DTX_TOPO_MAX; id++) {
		if (!c->chan_open[id])
			continue;
		coord_chan *ch = &c->chans[id];
		pthread_mutex_lock(&ch->mu);
		ch->stop = true;
		// Whatever is still queued fails: nothing more goes out.
		coord_item *it = ch->head;
		ch->head = ch->tail = NULL;
		ch->queued_votes = 0;
		ch->queued_fast = 0;
		ch->eager = 0;
		pthread_mutex_unlock(&ch->mu);
		while (it != NULL) {
			coord_item *n = it->next;
			complete(c, it, DTX_ECLOSED);
			it = n;
		}
		// Batches on the wire end within their timeout.
		pthread_mutex_lock(&ch->mu);
		while (ch->inflight > 0)
			pthread_cond_wait(&ch->cv, &ch->mu);
		pthread_mutex_unlock(&ch->mu);
	}
}

void
coord__chans_fini(coord *c)
{
	for (uint32_t id = 0; id < DTX_TOPO_MAX; id++) {
		if (!c->chan_open[id])
			continue;
		pthread_cond_destroy(&c->chans[id].cv);
		pthread_mutex_destroy(&c->chans[id].mu);
		c->chan_open[id] = false;
	}
	if (c->lg_init) {
		pthread_cond_destroy(&c->lg_cv);
		pthread_mutex_destroy(&c->lg_mu);
		c->lg_init = false;
	}
}
