// SPDX-License-Identifier: MIT
//
// The forcer: one thread that makes WAL records durable for callers that
// must not wait for the disk themselves (completions running on nng
// threads). Everything queued while a sync runs is forced by the next
// one, with a single stor_wal_sync up to the highest LSN among them, and
// each request's done runs on the forcer's thread afterwards.

#include <pthread.h>

#include "storage.h"

struct stor_forcer {
	stor_wal *wal; // borrowed
	pthread_mutex_t mu;
	pthread_cond_t cv;
	stor_force *head, *tail;
	void (*group)(void *arg, bool begin); // optional, around each group
	void *group_arg;
	bool stop;
	bool started;
	pthread_t th;
};

// Syncs up to the highest LSN of list (linked through next), then calls
// each one's done in queue order, between the group hook's begin and end.
static void
force_list(stor_forcer *fc, stor_force *list)
{
	stor_wal *wal = fc->wal;
	uint64_t lsn = 0;
	for (stor_force *f = list; f != NULL; f = f->next)
		if (f->lsn > lsn)
			lsn = f->lsn;
	dtx_err rv = stor_wal_sync(wal, lsn);
	if (fc->group != NULL)
		fc->group(fc->group_arg, true);
	while (list != NULL) {
		stor_force *next = list->next;
		list->done(list, rv);
		list = next;
	}
	if (fc->group != NULL)
		fc->group(fc->group_arg, false);
}

static void *
forcer_main(void *arg)
{
	stor_forcer *fc = arg;
	pthread_mutex_lock(&fc->mu);
	for (;;) {
		while (fc->head == NULL && !fc->stop)
			pthread_cond_wait(&fc->cv, &fc->mu);
		stor_force *list = fc->head;
		if (list == NULL)
			break; // stopping, and nothing queued
		fc->head = fc->tail = NULL;
		pthread_mutex_unlock(&fc->mu);
		force_list(fc, list);
		pthread_mutex_lock(&fc->mu);
	}
	pthread_mutex_unlock(&fc->mu);
	return NULL;
}

dtx_err
stor_forcer_open(stor_wal *wal, stor_forcer **out)
{
	if (wal == NULL || out == NULL)
		return DTX_EINVAL;
	stor_forcer *fc = dtx_calloc(1, sizeof(*fc));
	if (fc == NULL)
		return DTX_ENOMEM;
	fc->wal = wal;
	pthread_mutex_init(&fc->mu, NULL);
	pthread_cond_init(&fc->cv, NULL);
	if (pthread_create(&fc->th, NULL, forcer_main, fc) != 0) {
		pthread_mutex_destroy(&fc->mu);
		pthread_cond_destroy(&fc->cv);
		dtx_free(fc);
		return DTX_ENOMEM;
	}
	fc->started = true;
	*out = fc;
	return DTX_OK;
}

void
stor_forcer_force(stor_forcer *fc, stor_force *f)
{
	f->next = NULL;
	pthread_mutex_lock(&fc->mu);
	if (fc->stop) {
		pthread_mutex_unlock(&fc->mu);
		force_list(fc, f);
		return;
	}
	DTX_QUEUE_PUSH(fc->head, fc->tail, f, next);
	pthread_cond_signal(&fc->cv);
	pthread_mutex_unlock(&fc->mu);
}

void
stor_forcer_group_hook(
    stor_forcer *fc, void (*group)(void *arg, bool begin), void *arg)
{
	pthread_mutex_lock(&fc->mu);
	fc->group = group;
	fc->group_arg = arg;
	pthread_mutex_unlock(&fc->mu);
}

void
stor_forcer_stop(stor_forcer *fc)
{
	if (fc == NULL)
		return;
	pthread_mutex_lock(&fc->mu);
	fc->stop = true;
	pthread_cond_signal(&fc->cv);
	bool join = fc->started;
	fc->started = false;
	pthread_mutex_unlock(&fc->mu);
	if (join)
		pthread_join(fc->th, NULL);
}

void
stor_forcer_close(stor_forcer *fc)
{
	if (fc == NULL)
		return;
	stor_forcer_stop(fc);
	pthread_mutex_destroy(&fc->mu);
	pthread_cond_destroy(&fc->cv);
	dtx_free(fc);
}
