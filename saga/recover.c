// SPDX-License-Identifier: MIT
//
// The orchestrator's threads besides the server's. At start every saga
// the log left unfinished after a crash is resumed as a job of the engine
// (engine.c), in the direction its log says. Resumers continue the jobs
// that wait out a pause (a retry's backoff), answering a client whose
// reply is due meanwhile; a parked job holds no thread, so one saga stuck
// on a dead participant does not hold up the others. The background
// thread sends SAGA_FORGET to the participants of finished sagas (so that
// they collect their barriers), checkpoints the log and evicts old
// outcomes.

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "saga_int.h"

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

// Puts j on the parked list, or ends it when the orchestrator stops.
static void
push(saga *s, saga__job *j)
{
	pthread_mutex_lock(&s->mu);
	if (!atomic_load(&s->stop)) {
		j->next = s->parked;
		s->parked = j;
		pthread_cond_signal(&s->q_cv);
		j = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	if (j != NULL)
		saga__job_end(j);
}

void
saga__park(saga__job *j, uint64_t ms, void (*then)(saga__job *j))
{
	j->then = then;
	j->due_ns = dtx_mono_ns() + ms * 1000000u;
	if (!j->paused) {
		j->paused = true;
		saga__count(j->s, SAGA_CTR_TO_THREAD);
	}
	push(j->s, j);
}

// When a resumer must look at parked j: its pause is over, or its
// client's reply is due.
static uint64_t
wake_at(const saga__job *j)
{
	if (j->tok != NULL && j->r->reply_by_ns < j->due_ns)
		return j->r->reply_by_ns;
	return j->due_ns;
}

// Takes the first parked job whose wake time passed off the list; else
// *next_ns gets the earliest wake time. saga->mu held.
static saga__job *
take_due(saga *s, uint64_t now, uint64_t *next_ns)
{
	for (saga__job **pp = &s->parked; *pp != NULL; pp = &(*pp)->next) {
		saga__job *j = *pp;
		uint64_t t = wake_at(j);
		if (t <= now) {
			*pp = j->next;
			j->next = NULL;
			return j;
		}
		if (t < *next_ns)
			*next_ns = t;
	}
	return NULL;
}

// A parked job's wake time passed: answers its client if its reply is
// due, then goes on once its pause is over.
static void
wake(saga *s, saga__job *j)
{
	uint64_t now = dtx_mono_ns();
	if (j->tok != NULL && now >= j->r->reply_by_ns)
		saga__job_answer(j);
	if (saga__stopping(s))
		saga__job_end(j); // unknown: it resumes from the log
	else if (now < j->due_ns)
		push(s, j);
	else
		j->then(j);
}

static void *
resumer(void *arg)
{
	saga *s = arg;

	pthread_mutex_lock(&s->mu);
	while (!atomic_load(&s->stop)) {
		uint64_t now = dtx_mono_ns();
		uint64_t next = now + 100000000u; // look at stop every 100 ms
		saga__job *j = take_due(s, now, &next);
		if (j == NULL) {
			struct timespec ts =
			    dtx_time_after(CLOCK_MONOTONIC, next - now);
			pthread_cond_timedwait(&s->q_cv, &s->mu, &ts);
			continue;
		}
		pthread_mutex_unlock(&s->mu);
		wake(s, j);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

// Resumes every saga the log left unfinished, each as a job.
static dtx_err
resume_recovered(saga *s)
{
	dtx_err rv = DTX_OK;

	pthread_mutex_lock(&s->mu);
	saga__rec *r;
	while (rv == DTX_OK && (r = s->q_head) != NULL) {
		saga__job *j = NULL;
		if ((rv = saga__job_new(s, &j)) != DTX_OK)
			break;
		s->q_head = r->fnext;
		if (s->q_head == NULL)
			s->q_tail = NULL;
		r->fnext = NULL;
		r->owned = true;
		pthread_mutex_unlock(&s->mu);
		saga__resume(j, r);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return rv == DTX_ECLOSED ? DTX_OK : rv;
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
			DTX_LOGF(DTX_LOG_INFO, "SAGA_FORGET",
			    DTX_FIELDS(
			        DTX_LF_PEER(p), DTX_LF_U("failed", failed[p])),
			    "forget batches failed; retrying later");
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
	return resume_recovered(s);
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
	// No resumer is left to continue the parked jobs: they end (each
	// saga resumes from the log), and the jobs in flight end at their
	// next completion, which the open server and batchers still deliver.
	pthread_mutex_lock(&s->mu);
	saga__job *p = s->parked;
	s->parked = NULL;
	pthread_mutex_unlock(&s->mu);
	while (p != NULL) {
		saga__job *next = p->next;
		saga__job_end(p);
		p = next;
	}
	pthread_mutex_lock(&s->mu);
	while (s->jobs > 0)
		wait_ms(s, &s->done_cv, 100);
	pthread_mutex_unlock(&s->mu);
}
