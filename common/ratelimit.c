// SPDX-License-Identifier: MIT
//
// A rate limiter for repeated log lines: at most one line per interval for
// each (reason, key), with a count of the lines held back, in a fixed
// table so that a flood of distinct keys costs no memory.

#include <string.h>

#include "common.h"

dtx_err
dtx_rl_init(dtx_rl *rl, uint64_t interval_ns)
{
	memset(rl, 0, sizeof(*rl));
	if (pthread_mutex_init(&rl->mu, NULL) != 0)
		return DTX_ENOMEM;
	rl->interval_ns = interval_ns;
	return DTX_OK;
}

void
dtx_rl_fini(dtx_rl *rl)
{
	if (rl != NULL)
		pthread_mutex_destroy(&rl->mu);
}

// The slot of (reason, key), or the one to reuse for it: a free slot, else
// the one whose last line is oldest (its pending count moves to
// rl->evicted so that it is still reported). Called with mu held.
static dtx_rl_slot *
find_slot(dtx_rl *rl, const char *reason, uint64_t key, bool *fresh)
{
	dtx_rl_slot *victim = NULL;
	for (size_t i = 0; i < DTX_RL_SLOTS; i++) {
		dtx_rl_slot *s = &rl->slot[i];
		if (!s->used) {
			if (victim == NULL || victim->used)
				victim = s;
			continue;
		}
		if (s->key == key &&
		    strncmp(s->reason, reason, sizeof(s->reason) - 1) == 0) {
			*fresh = false;
			return s;
		}
		if (victim == NULL ||
		    (victim->used && s->last_ns < victim->last_ns))
			victim = s;
	}
	if (victim->used)
		rl->evicted += victim->suppressed;
	memset(victim, 0, sizeof(*victim));
	victim->used = true;
	victim->key = key;
	snprintf(victim->reason, sizeof(victim->reason), "%s", reason);
	*fresh = true;
	return victim;
}

bool
dtx_rl_pass(dtx_rl *rl, const char *reason, uint64_t key, uint64_t now_ns,
    uint64_t *suppressed, uint64_t *others)
{
	bool fresh, pass;
	pthread_mutex_lock(&rl->mu);
	dtx_rl_slot *s =
	    find_slot(rl, reason != NULL ? reason : "", key, &fresh);
	pass = fresh ||
	    (now_ns >= s->last_ns && now_ns - s->last_ns >= rl->interval_ns);
	if (pass) {
		*suppressed = s->suppressed;
		*others = rl->evicted;
		s->suppressed = 0;
		rl->evicted = 0;
		s->last_ns = now_ns;
	} else {
		s->suppressed++;
	}
	pthread_mutex_unlock(&rl->mu);
	return pass;
}
