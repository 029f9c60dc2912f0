// SPDX-License-Identifier: MIT
//
// Per-participant batching channels (DESIGN rule 4): every message the
// coordinator sends a participant is queued on that participant's channel,
// and each of a few sender threads takes whatever is queued (without
// waiting for more) and sends it as one BATCH, so many transactions'
// PREPAREs and COMMITs share one round trip and one participant fsync
// while several batches are in flight at once.

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

// Completes one item: wakes its waiter or runs its callback.
static void
complete(coord *c, coord_item *it, dtx_err err)
{
	it->err = err;
	if (it->w != NULL) {
		coord_waiter *w = it->w;
		pthread_mutex_lock(&w->mu);
		if (--w->pending == 0)
			pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
	} else if (it->done != NULL) {
		it->done(c, it);
	} else {
		coord__item_free(it);
	}
}

// Sends items[0..n) to the channel's participant and completes each.
static void
send_batch(coord_chan *ch, coord_item **items, uint32_t n)
{
	coord *c = ch->c;
	proto_msg req, rep;
	uint32_t timeout = 0;
	for (uint32_t i = 0; i < n; i++)
		if (items[i]->timeout_ms > timeout)
			timeout = items[i]->timeout_ms;
	proto_call_opts opts = { .timeout_ms = timeout };
	memset(&rep, 0, sizeof(rep));

	if (n == 1) {
		dtx_err err = proto_daemon_call(
		    c->d, ch->peer, &items[0]->req, &rep, &opts);
		if (err == DTX_OK || err == DTX_EREFUSED) {
			items[0]->rep = rep;
			err = DTX_OK;
		}
		atomic_fetch_add(&c->n_batches, 1);
		atomic_fetch_add(&c->n_batch_items, 1);
		complete(c, items[0], err);
		return;
	}

	proto_msg *msgs = dtx_calloc(n, sizeof(proto_msg));
	if (msgs == NULL) {
		for (uint32_t i = 0; i < n; i++)
			complete(c, items[i], DTX_ENOMEM);
		return;
	}
	// Shallow copies: the elements borrow the items' bodies.
	for (uint32_t i = 0; i < n; i++)
		msgs[i] = items[i]->req;
	proto_msg_init(&req, PROTO_BATCH);
	req.u.batch.n = n;
	req.u.batch.msgs = msgs;
	dtx_err err = proto_daemon_call(c->d, ch->peer, &req, &rep, &opts);
	dtx_free(msgs);
	atomic_fetch_add(&c->n_batches, 1);
	atomic_fetch_add(&c->n_batch_items, n);
	if (err == DTX_OK &&
	    (rep.hdr.type != PROTO_BATCH || rep.u.batch.n != n)) {
		DTX_LOG(DTX_LOG_WARN, "BATCH_REPLY",
		    "participant %u answered a batch of %u with %s of %u",
		    ch->peer, n, proto_type_name(rep.hdr.type),
		    rep.hdr.type == PROTO_BATCH ? rep.u.batch.n : 1);
		err = DTX_EPROTO;
	}
	if (err == DTX_EREFUSED)
		DTX_LOG(DTX_LOG_WARN, "BATCH_REFUSED",
		    "participant %u refused a batch: %s", ch->peer,
		    rep.u.error.reason ? rep.u.error.reason : "(no reason)");
	if (err != DTX_OK) {
		proto_msg_free(&rep);
		for (uint32_t i = 0; i < n; i++)
			complete(c, items[i],
			    err == DTX_EREFUSED ? DTX_EPROTO : err);
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		items[i]->rep = rep.u.batch.msgs[i];
		memset(&rep.u.batch.msgs[i], 0, sizeof(proto_msg));
	}
	proto_msg_free(&rep);
	for (uint32_t i = 0; i < n; i++)
		complete(c, items[i], DTX_OK);
}

static void *
sender_main(void *arg)
{
	coord_chan *ch = arg;
	uint32_t max = (uint32_t)ch->c->cfg.max_batch;
	coord_item **items = dtx_calloc(max, sizeof(coord_item *));
	for (;;) {
		pthread_mutex_lock(&ch->mu);
		while (!ch->stop && ch->head == NULL)
			pthread_cond_wait(&ch->cv, &ch->mu);
		if (ch->stop) {
			pthread_mutex_unlock(&ch->mu);
			break;
		}
		uint32_t n = 0;
		uint32_t cap = items == NULL ? 1 : max;
		coord_item *single = NULL;
		while (ch->head != NULL && n < cap) {
			coord_item *it = ch->head;
			ch->head = it->next;
			it->next = NULL;
			if (items != NULL)
				items[n] = it;
			else
				single = it;
			n++;
		}
		if (ch->head == NULL)
			ch->tail = NULL;
		else
			pthread_cond_signal(&ch->cv);
		pthread_mutex_unlock(&ch->mu);
		send_batch(ch, items != NULL ? items : &single, n);
	}
	dtx_free(items);
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
	it->next = NULL;
	if (ch->tail != NULL)
		ch->tail->next = it;
	else
		ch->head = it;
	ch->tail = it;
	pthread_cond_signal(&ch->cv);
	pthread_mutex_unlock(&ch->mu);
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
		for (int64_t k = 0; k < c->cfg.senders; k++) {
			if (pthread_create(
			        &ch->th[ch->nth], NULL, sender_main, ch) != 0) {
				DTX_LOG(DTX_LOG_ERROR, "CHAN_THREAD",
				    "cannot start a sender for participant %u",
				    id);
				return DTX_ENOMEM;
			}
			ch->nth++;
		}
	}
	return DTX_OK;
}

void
coord__chans_stop(coord *c)
{
	for (uint32_t id = 0; id < DTX_TOPO_MAX; id++) {
		if (!c->chan_open[id])
			continue;
		coord_chan *ch = &c->chans[id];
		pthread_mutex_lock(&ch->mu);
		ch->stop = true;
		pthread_cond_broadcast(&ch->cv);
		pthread_mutex_unlock(&ch->mu);
		for (uint32_t k = 0; k < ch->nth; k++)
			pthread_join(ch->th[k], NULL);
		ch->nth = 0;
		// Whatever is still queued fails: nothing more goes out.
		coord_item *it = ch->head;
		ch->head = ch->tail = NULL;
		while (it != NULL) {
			coord_item *n = it->next;
			complete(c, it, DTX_ECLOSED);
			it = n;
		}
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
}
