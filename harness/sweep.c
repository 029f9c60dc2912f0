// SPDX-License-Identifier: MIT
//
// Bounded sweeps. After a run the harness asks the cluster thousands of
// questions one after another: the STATUS of every transaction at its
// participants and coordinator, the SAGA_STATUS of every saga, the final
// reads. Each call has its own timeout, but a node that has stopped
// answering makes every call to it wait that timeout out, and a sweep of
// 5,000 transactions at 2 s a call then runs for hours while it looks,
// from outside, like one call stuck in nng_aio_wait. So a sweep gives up
// on a node that has failed every call for HX__SWEEP_NODE_WAIT_MS (and at
// least HX__SWEEP_NODE_TRIES calls in a row) and asks it nothing more,
// saying which node it waited for and how long; the other nodes are still
// asked, so a daemon that died (one that refused its data directory as it
// restarted, say) costs its own answers and not the verdict. The sweep
// ends as a whole at its deadline. Before it gives a node up it dials it
// afresh once (a new
// socket): in a process where nng 1.5.2 can no longer tear connections
// down, an old link to a restarted node is never dialled again (README,
// "Known limit").

#include <string.h>

#include "harness_int.h"

void
hx__sweep_init(hx__sweep *s, const char *what, uint64_t budget_ms)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->what, sizeof(s->what), "%s", what);
	s->t0 = dtx_mono_ns();
	s->deadline = s->t0 + budget_ms * 1000000u;
}

// True when rv says the node did not answer at all (an ERROR reply or a
// reply of another type is an answer).
static bool
no_answer(dtx_err rv)
{
	return rv == DTX_EUNREACH || rv == DTX_ETIMEDOUT || rv == DTX_ECLOSED;
}

bool
hx__sweep_over(const hx__sweep *s)
{
	return s->err != DTX_OK;
}

bool
hx__sweep_lost(const hx__sweep *s, uint32_t id)
{
	return id < DTX_TOPO_MAX && s->nodes[id].lost;
}

static void
give_up(hx__sweep *s, uint32_t id, uint64_t now)
{
	hx__sweep_node *n = &s->nodes[id];
	n->lost = true;
	if (id < 32)
		s->lost |= 1u << id;
	if (s->why[0] != '\0')
		return; // the first one is named
	snprintf(s->why, sizeof(s->why),
	    "%s: node %u has not answered for %.1f s (%u calls in a row "
	    "failed, the last with %s); is it running? (after %.1f s the "
	    "sweep asked it nothing more: its answers are unknown)",
	    s->what, id, (double)(now - n->since) / 1e9, n->fails,
	    dtx_errname(n->last), (double)(now - s->t0) / 1e9);
}

bool
hx__sweep_note(hx__sweep *s, uint32_t id, uint64_t started, dtx_err rv)
{
	if (s->err != DTX_OK || hx__sweep_lost(s, id))
		return false;
	uint64_t now = dtx_mono_ns();
	if (id < DTX_TOPO_MAX) {
		hx__sweep_node *n = &s->nodes[id];
		if (!no_answer(rv)) {
			n->fails = 0;
		} else {
			if (n->fails++ == 0)
				n->since = started;
			n->last = rv;
			if (n->fails >= HX__SWEEP_NODE_TRIES &&
			    now - n->since >=
			        (uint64_t)HX__SWEEP_NODE_WAIT_MS * 1000000u) {
				give_up(s, id, now);
				return false;
			}
		}
	}
	if (now >= s->deadline) {
		s->err = DTX_ETIMEDOUT;
		snprintf(s->why, sizeof(s->why),
		    "%s: not done after %.1f s (its deadline), the last call "
		    "to node %u %s",
		    s->what, (double)(now - s->t0) / 1e9, id,
		    rv == DTX_OK ? "answered" : dtx_errname(rv));
		return false;
	}
	return true;
}

dtx_err
hx__sweep_call(hx__sweep *s, hx_conn *c, uint32_t id, proto_msg *req,
    proto_msg *rep, uint32_t timeout_ms)
{
	if (s->err != DTX_OK)
		return s->err;
	if (hx__sweep_lost(s, id))
		return DTX_EUNREACH;
	// No call may run past the sweep's deadline.
	uint64_t now = dtx_mono_ns();
	uint64_t left = s->deadline > now ? (s->deadline - now) / 1000000u : 0;
	if (left < timeout_ms)
		timeout_ms = left > 0 ? (uint32_t)left : 1;
	dtx_err rv = hx_conn_call(c, id, req, rep, timeout_ms, true);
	if (id < DTX_TOPO_MAX && no_answer(rv) && !s->nodes[id].redialed &&
	    s->nodes[id].fails + 1 >= HX__SWEEP_NODE_TRIES) {
		// Before giving the node up, dial it afresh once: the link
		// may be one nng no longer redials while the node is fine.
		// Its wait starts over.
		s->nodes[id].redialed = true;
		s->nodes[id].fails = 0;
		(void)hx_conn_redial(c, id);
		return rv;
	}
	hx__sweep_note(s, id, now, rv);
	return rv;
}
