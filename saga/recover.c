// SPDX-License-Identifier: MIT
//
// The orchestrator's background threads. Resumers run the sagas nobody's
// worker is running: those the log left unfinished after a crash (each in
// the direction its log says) and those a worker handed off because their
// compensation outlasted the client's wait. Each gets a turn of bounded
// length and goes back to the end of the queue, so one saga stuck on a
// dead participant does not hold up the others. The background thread
// sends SAGA_FORGET to the participants of finished sagas (so that they
// collect their barriers), checkpoints the log and evicts old outcomes.

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "saga_int.h"

#define TURN_MS 1000 // a resumer's turn on one saga
#define BG_PERIOD_MS 50
#define FORGET_BATCH 1024 // = PROTO_MAX_BATCH
#define FORGET_TAKE 8192 // forgets handled per round
#define FORGET_ATTEMPTS 5

static void
wait_ms(saga *s, pthread_cond_t *cv, uint64_t ms)
{
	struct timespec ts = dtx_time_after(CLOCK_MONOTONIC, ms * 1000000u);
	pthread_cond_timedwait(cv, &s->mu, &ts);
}

static void *
resumer(void *arg)
{
	saga *s = arg;

	pthread_mutex_lock(&s->mu);
	while (!saga__stopping(s)) {
		saga__rec *r = s->q_head;
		if (r == NULL) {
			wait_ms(s, &s->q_cv, 100);
			continue;
		}
		s->q_head = r->fnext;
		if (s->q_head == NULL)
			s->q_tail = NULL;
		r->fnext = NULL;
		r->queued = false;
		r->owned = true;
		pthread_mutex_unlock(&s->mu);
		DTX_LOG(DTX_LOG_DEBUG, "SAGA_RESUME", "saga %s (%s)", r->gid,
		    r->state == PROTO_SAGA_RUNNING ? "forward"
		                                   : "compensating");
		bool done = saga__drive(
		    s, r, dtx_mono_ns() + (uint64_t)TURN_MS * 1000000u);
		pthread_mutex_lock(&s->mu);
		if (!done && !saga__stopping(s))
			saga__enqueue(s, r);
		else
			r->owned = false;
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

// Puts f back for another attempt later, or drops it (the participants
// then collect those barriers by age). saga->mu held. Takes f->gid.
static void
requeue_forget(saga *s, saga__forget f)
{
	if (++f.attempts >= FORGET_ATTEMPTS || s->fq_len == s->fq_cap) {
		saga__count(s, SAGA_CTR_FORGET_ERRORS);
		dtx_free(f.gid);
		return;
	}
	f.due_ns = dtx_mono_ns() + 1000000000u * f.attempts;
	s->fq[(s->fq_head + s->fq_len) % s->fq_cap] = f;
	s->fq_len++;
}

// Sends one BATCH of SAGA_FORGET for fs[idx[0..n)] to participant p.
static dtx_err
forget_batch(saga *s, uint32_t p, saga__forget *fs, const size_t *idx, size_t n)
{
	proto_msg req, rep;
	proto_msg *msgs = dtx_calloc(n, sizeof(*msgs));
	if (msgs == NULL)
		return DTX_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		proto_msg_init(&msgs[i], PROTO_SAGA_FORGET);
		msgs[i].u.gid.gid = fs[idx[i]].gid; // borrowed
	}
	proto_msg_init(&req, PROTO_BATCH);
	proto_msg_init(&rep, PROTO_NONE);
	req.u.batch.n = (uint32_t)n;
	req.u.batch.msgs = msgs;
	proto_retry once = { .attempts = 1 };
	proto_call_opts o = {
		.timeout_ms = (uint32_t)s->cfg->step_timeout_ms,
		.idempotent = true,
		.retry = &once,
	};
	dtx_err rv = proto_daemon_call(s->d, p, &req, &rep, &o);
	if (rv == DTX_OK && (rep.hdr.type != PROTO_BATCH || rep.u.batch.n != n))
		rv = DTX_EPROTO;
	proto_msg_free(&rep);
	dtx_free(msgs);
	return rv;
}

// Sends every SAGA_FORGET that is due, one BATCH per participant.
static void
send_forgets(saga *s)
{
	saga__forget *fs = NULL;
	size_t n = 0;
	uint64_t now = dtx_mono_ns();

	pthread_mutex_lock(&s->mu);
	size_t due = 0;
	while (due < s->fq_len && due < FORGET_TAKE &&
	    s->fq[(s->fq_head + due) % s->fq_cap].due_ns <= now)
		due++;
	if (due > 0 && (fs = dtx_alloc(due * sizeof(*fs))) != NULL) {
		for (size_t i = 0; i < due; i++)
			fs[i] = s->fq[(s->fq_head + i) % s->fq_cap];
		s->fq_head = (s->fq_head + due) % s->fq_cap;
		s->fq_len -= due;
		n = due;
	}
	pthread_mutex_unlock(&s->mu);
	if (n == 0)
		return;

	// A saga's END may still be in flight to the disk (it is not
	// forced): its barriers go only once it is durable, or a crash
	// could resume the saga and run a step again without them.
	size_t *idx = NULL;
	if (stor_wal_sync(s->wal, stor_wal_last_lsn(s->wal)) == DTX_OK)
		idx = dtx_alloc(FORGET_BATCH * sizeof(*idx));
	uint32_t failed[32] = { 0 }; // per participant: a batch failed
	for (uint32_t p = 0; idx != NULL && p < 32; p++) {
		size_t k = 0;
		for (size_t i = 0; i <= n; i++) {
			bool mine = i < n && (fs[i].parts >> p & 1u);
			if (mine)
				idx[k++] = i;
			if (k > 0 && (k == FORGET_BATCH || i == n)) {
				dtx_err rv = forget_batch(s, p, fs, idx, k);
				if (rv == DTX_OK) {
					atomic_fetch_add(
					    &s->ctr[SAGA_CTR_FORGETS_SENT], k);
					for (size_t j = 0; j < k; j++)
						fs[idx[j]].parts &=
						    ~(UINT32_C(1) << p);
				} else {
					failed[p]++;
				}
				k = 0;
			}
		}
	}
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < n; i++) {
		if (fs[i].parts != 0 && idx != NULL)
			requeue_forget(s, fs[i]);
		else
			dtx_free(fs[i].gid);
	}
	pthread_mutex_unlock(&s->mu);
	for (uint32_t p = 0; p < 32; p++)
		if (failed[p] > 0)
			DTX_LOG(DTX_LOG_INFO, "SAGA_FORGET",
			    "node %u: %u forget batches failed; retrying later",
			    p, failed[p]);
	dtx_free(idx);
	dtx_free(fs);
}

static void *
background(void *arg)
{
	saga *s = arg;

	while (!saga__stopping(s)) {
		dtx_sleep_ms(BG_PERIOD_MS);
		pthread_mutex_lock(&s->mu);
		saga__evict(s);
		pthread_mutex_unlock(&s->mu);
		send_forgets(s);
		saga__log_checkpoint(s, false);
	}
	return NULL;
}

dtx_err
saga__threads_start(saga *s)
{
	size_t n = (size_t)s->cfg->resumers;
	s->resumers = dtx_calloc(n, sizeof(pthread_t));
	if (s->resumers == NULL)
		return DTX_ENOMEM;
	for (; s->nresumers < n; s->nresumers++)
		if (pthread_create(
		        &s->resumers[s->nresumers], NULL, resumer, s) != 0)
			return DTX_ENOMEM;
	if (pthread_create(&s->bg, NULL, background, s) != 0)
		return DTX_ENOMEM;
	s->bg_started = true;
	return DTX_OK;
}

void
saga__threads_stop(saga *s)
{
	pthread_mutex_lock(&s->mu);
	atomic_store(&s->stop, true);
	pthread_cond_broadcast(&s->q_cv);
	pthread_cond_broadcast(&s->done_cv);
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < s->nresumers; i++)
		pthread_join(s->resumers[i], NULL);
	s->nresumers = 0;
	if (s->bg_started)
		pthread_join(s->bg, NULL);
	s->bg_started = false;
}
