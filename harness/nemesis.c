// SPDX-License-Identifier: MIT
//
// Nemeses, after Jepsen's: a schedule of faults that is a pure function of
// a seed (so a failing run can be replayed), and a thread that applies it
// to a running cluster: kill/restart, pause/resume, partitions (iptables
// inside network namespaces, or the daemons' in-process FAULT "partition"),
// clock bumps and strobes through FAULT "clock", disk faults (a kill
// that tears the WAL's tail as a crash mid-write does), lost unsynced
// writes (a kill of a daemon under libdtx-unsynced.so, unsynced/) and
// aimed crash points (FAULT "crash_at"); every action is recorded in the
// history as an `info` op of the nemesis process.

#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>

#include "harness_int.h"
#include "storage.h"

static const char *const action_names[HX_NA_COUNT] = {
	[HX_NA_KILL] = "kill",
	[HX_NA_RESTART] = "restart",
	[HX_NA_PAUSE] = "pause",
	[HX_NA_RESUME] = "resume",
	[HX_NA_PARTITION] = "partition",
	[HX_NA_HEAL] = "heal",
	[HX_NA_CLOCK_BUMP] = "clock-bump",
	[HX_NA_CLOCK_STROBE] = "clock-strobe",
	[HX_NA_CLOCK_RESET] = "clock-reset",
	[HX_NA_DISK] = "disk",
	[HX_NA_LOSE] = "lose-unsynced",
	[HX_NA_CRASH_ARM] = "crashpoint",
	[HX_NA_CRASH_END] = "crashpoint-end",
	[HX_NA_CRASH_HIT] = "crashpoint-hit",
	[HX_NA_PACKET] = "packet",
	[HX_NA_PACKET_END] = "packet-end",
	[HX_NA_CORRUPT] = "corrupt",
	[HX_NA_KILL_FOREVER] = "kill-forever",
	[HX_NA_SLOW_LINK] = "slow-link",
	[HX_NA_SLOW_LINK_END] = "slow-link-end",
};

static const char *const shape_names[HX_SHAPE_COUNT] = {
	"halves",
	"one",
	"bridge",
	"ring",
};

static const char *const kind_names[HX_NEM_NKINDS] = {
	"kill",
	"pause",
	"partition",
	"clock",
	"disk",
	"lose-unsynced",
	"crashpoint",
	"packet",
	"corrupt",
	"kill-forever",
	"slow-link",
};

enum {
	K_KILL,
	K_PAUSE,
	K_PART,
	K_CLOCK,
	K_DISK,
	K_LOSE,
	K_CRASH,
	K_PACKET,
	K_CORRUPT,
	K_FOREVER,
	K_SLOW
};

// How long a node that died at some crash points stays down. A coordinator
// that died just after answering a client: past the participants' 2 s
// in-doubt timeout and their two 0.5 s resolver calls, so that they decide
// without it (3PC's termination protocol; 2PC's wait in doubt). An
// orchestrator that died between two compensations: long enough for
// reads to see the half-compensated saga (rule 12: what they see must
// never hold more money than the bank).
#define CRASH_DOWN_MS 3500u

// Every crash point of the daemons (grep dtx_crashpoint), the role whose
// daemon reaches it (DTX_ROLE_CLIENT: every daemon), the modes that reach
// it, whether the coordinators restart before a node that died there
// comes back (restart_coordinators), and how long the node stays down
// (0: it is restarted at once).
static const struct crashpoint {
	const char *name;
	dtx_role role;
	const char *modes;
	bool coords_restart;
	uint32_t down_ms;
} crashpoints[] = {
	// The 2PC engine's COMMIT record (3PC logs its decision as PRECOMMIT).
	{ "coord.before_commit_log", DTX_ROLE_COORDINATOR, "2pc", false, 0 },
	{ "coord.after_commit_log", DTX_ROLE_COORDINATOR, "2pc,3pc", false, 0 },
	{ "coord.after_some_commits", DTX_ROLE_COORDINATOR, "2pc,3pc", false,
	    0 },
	{ "coord.after_precommit_log", DTX_ROLE_COORDINATOR, "3pc", false, 0 },
	{ "coord.after_some_precommits", DTX_ROLE_COORDINATOR, "3pc", false,
	    0 },
	{ "part.before_prepare_log", DTX_ROLE_PARTICIPANT, "2pc,3pc", false,
	    0 },
	{ "part.after_prepare_log", DTX_ROLE_PARTICIPANT, "2pc,3pc", false, 0 },
	{ "part.before_commit_log", DTX_ROLE_PARTICIPANT, "2pc,3pc", false, 0 },
	{ "part.after_commit_log", DTX_ROLE_PARTICIPANT, "2pc,3pc", false, 0 },
	{ "part.after_precommit_log", DTX_ROLE_PARTICIPANT, "3pc", false, 0 },
	// Just after a reply went out, with no fsync after it
	// (dtx_crashpoint_soon in proto/server.c): with lose-unsynced,
	// what a daemon answered for must have been durable already.
	{ "rpc.after_reply.prepare", DTX_ROLE_PARTICIPANT, "2pc", false, 0 },
	{ "rpc.after_reply.commit", DTX_ROLE_PARTICIPANT, "2pc,3pc", true, 0 },
	{ "rpc.after_reply.pre_commit", DTX_ROLE_PARTICIPANT, "3pc", false, 0 },
	{ "rpc.after_reply.step", DTX_ROLE_PARTICIPANT, "saga", false, 0 },
	{ "rpc.after_reply.txn", DTX_ROLE_COORDINATOR, "2pc,3pc", false,
	    CRASH_DOWN_MS },
	{ "rpc.after_reply.saga_submit", DTX_ROLE_SAGA, "saga", false, 0 },
	{ "part.saga_step_after_commit", DTX_ROLE_PARTICIPANT, "saga", false,
	    0 },
	{ "saga.after_begin_log", DTX_ROLE_SAGA, "saga", false, 0 },
	{ "saga.after_step_start_log", DTX_ROLE_SAGA, "saga", false, 0 },
	{ "saga.after_step_applied", DTX_ROLE_SAGA, "saga", false, 0 },
	{ "saga.during_compensation", DTX_ROLE_SAGA, "saga", false,
	    CRASH_DOWN_MS },
	{ "clk.bound.before_rename", DTX_ROLE_CLIENT, "2pc,3pc,saga", false,
	    0 },
};

#define NCRASHPOINTS (sizeof(crashpoints) / sizeof(crashpoints[0]))

size_t
hx_nem_crashpoints(
    const char *mode, dtx_role role, const char **out, size_t max)
{
	size_t k = 0;
	for (size_t i = 0; i < NCRASHPOINTS; i++) {
		const struct crashpoint *c = &crashpoints[i];
		if (c->role != role && c->role != DTX_ROLE_CLIENT)
			continue;
		if (mode != NULL && strstr(c->modes, mode) == NULL)
			continue;
		if (k < max)
			out[k] = c->name;
		k++;
	}
	return k;
}

const char *
hx_nem_kind_name(int k)
{
	return k >= 0 && k < HX_NEM_NKINDS ? kind_names[k] : "?";
}

static const char *const disk_form_names[] = {
	"torn",
	"truncated",
};

static const char *const target_names[] = {
	"any",
	"coordinator",
	"participants",
	"saga",
};

const char *
hx_nem_action_name(hx_nem_action a)
{
	return (unsigned)a < HX_NA_COUNT ? action_names[a] : "?";
}

const char *
hx_part_shape_name(hx_part_shape s)
{
	return (unsigned)s < HX_SHAPE_COUNT ? shape_names[s] : "?";
}

const char *
hx_nem_target_name(hx_nem_target t)
{
	return (unsigned)t <= HX_TARGET_SAGA ? target_names[t] : "?";
}

static int
action_kind(hx_nem_action a)
{
	switch (a) {
	case HX_NA_KILL:
	case HX_NA_RESTART:
		return 0;
	case HX_NA_PAUSE:
	case HX_NA_RESUME:
		return 1;
	case HX_NA_PARTITION:
	case HX_NA_HEAL:
		return 2;
	case HX_NA_DISK:
		return K_DISK;
	case HX_NA_LOSE:
		return K_LOSE;
	case HX_NA_CRASH_ARM:
	case HX_NA_CRASH_END:
	case HX_NA_CRASH_HIT:
		return K_CRASH;
	case HX_NA_PACKET:
	case HX_NA_PACKET_END:
		return K_PACKET;
	case HX_NA_CORRUPT:
		return K_CORRUPT;
	case HX_NA_KILL_FOREVER:
		return K_FOREVER;
	case HX_NA_SLOW_LINK:
	case HX_NA_SLOW_LINK_END:
		return K_SLOW;
	default:
		return K_CLOCK;
	}
}

const char *
hx_nem_action_kind(hx_nem_action a)
{
	return kind_names[action_kind(a)];
}

bool
hx_nem_action_starts(hx_nem_action a)
{
	return a == HX_NA_KILL || a == HX_NA_PAUSE || a == HX_NA_PARTITION ||
	    a == HX_NA_CLOCK_BUMP || a == HX_NA_CLOCK_STROBE ||
	    a == HX_NA_DISK || a == HX_NA_LOSE || a == HX_NA_CRASH_ARM ||
	    a == HX_NA_PACKET || a == HX_NA_CORRUPT ||
	    a == HX_NA_KILL_FOREVER || a == HX_NA_SLOW_LINK;
}

// Parses a comma-separated list of names[0..n) into bits; "none" and ""
// give 0.
static dtx_err
parse_list(const char *s, const char *const *names, size_t n, unsigned *out,
    char *err, size_t errlen)
{
	unsigned bits = 0;
	const char *p = s ? s : "";
	if (strcmp(p, "none") == 0) {
		*out = 0;
		return DTX_OK;
	}
	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		size_t i;
		for (i = 0; i < n; i++)
			if (strlen(names[i]) == len &&
			    strncmp(p, names[i], len) == 0)
				break;
		if (i == n) {
			snprintf(
			    err, errlen, "unknown name '%.*s'", (int)len, p);
			return DTX_EINVAL;
		}
		bits |= 1u << i;
		p += len;
		if (*p == ',')
			p++;
	}
	*out = bits;
	return DTX_OK;
}

dtx_err
hx_nem_kinds_parse(const char *s, unsigned *out, char *err, size_t errlen)
{
	return parse_list(s, kind_names, HX_NEM_NKINDS, out, err, errlen);
}

dtx_err
hx_nem_shapes_parse(const char *s, unsigned *out, char *err, size_t errlen)
{
	return parse_list(s, shape_names, HX_SHAPE_COUNT, out, err, errlen);
}

dtx_err
hx_nem_target_parse(const char *s, hx_nem_target *out)
{
	for (unsigned i = 0; i <= HX_TARGET_SAGA; i++)
		if (strcmp(s, target_names[i]) == 0) {
			*out = (hx_nem_target)i;
			return DTX_OK;
		}
	return DTX_EINVAL;
}

dtx_err
hx_nem_targets(const dtx_topo *topo, hx_nem_target t,
    uint32_t ids[DTX_TOPO_MAX], uint32_t *n)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < topo->n; i++) {
		dtx_role r = topo->nodes[i].role;
		bool take = r != DTX_ROLE_CLIENT &&
		    (t == HX_TARGET_ANY ||
		        (t == HX_TARGET_COORDINATOR &&
		            r == DTX_ROLE_COORDINATOR) ||
		        (t == HX_TARGET_PARTICIPANTS &&
		            r == DTX_ROLE_PARTICIPANT) ||
		        (t == HX_TARGET_SAGA && r == DTX_ROLE_SAGA));
		if (take && topo->nodes[i].id < DTX_TOPO_MAX)
			ids[k++] = topo->nodes[i].id;
	}
	*n = k;
	return k > 0 ? DTX_OK : DTX_ENOENT;
}

// Jepsen's complete grudge: nobody talks across components. comp[i] is the
// component of nodes[i].
static void
complete_grudge(
    const uint32_t *nodes, const int *comp, uint32_t n, hx_grudge *g)
{
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < n; j++)
			if (comp[i] != comp[j])
				g->drop[nodes[i]] |= 1u << nodes[j];
}

void
hx_partition_grudge(
    hx_part_shape shape, const uint32_t *nodes, uint32_t n, hx_grudge *out)
{
	int comp[DTX_TOPO_MAX] = { 0 };
	uint32_t all = 0, split = n / 2;
	memset(out, 0, sizeof(*out));
	if (n > DTX_TOPO_MAX)
		return;
	for (uint32_t i = 0; i < n; i++)
		all |= 1u << nodes[i];
	switch (shape) {
	case HX_SHAPE_HALVES:
		for (uint32_t i = 0; i < n; i++)
			comp[i] = i < split ? 0 : 1;
		complete_grudge(nodes, comp, n, out);
		break;
	case HX_SHAPE_ONE:
		for (uint32_t i = 0; i < n; i++)
			comp[i] = i == 0 ? 0 : 1;
		complete_grudge(nodes, comp, n, out);
		break;
	case HX_SHAPE_BRIDGE:
		for (uint32_t i = 0; i < n; i++)
			comp[i] = i < split ? 0 : 1;
		complete_grudge(nodes, comp, n, out);
		if (split < n) {
			uint32_t b = nodes[split];
			out->drop[b] = 0;
			for (uint32_t i = 0; i < n; i++)
				out->drop[nodes[i]] &= ~(1u << b);
		}
		break;
	case HX_SHAPE_RING: {
		uint32_t m = n / 2 + 1;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t sees = 0;
			for (uint32_t k = 0; k < m; k++)
				sees |= 1u << nodes[(i + k) % n];
			out->drop[nodes[i]] = all & ~sees;
		}
		break;
	}
	default:
		break;
	}
}

// Uniform in [lo, hi).
static uint64_t
rnd_range(uint64_t *rng, uint64_t lo, uint64_t hi)
{
	return hi > lo ? lo + dtx_rand_below(rng, hi - lo) : lo;
}

static void
shuffle(uint64_t *rng, uint32_t *v, uint32_t n)
{
	for (uint32_t i = n; i > 1; i--) {
		uint32_t j = (uint32_t)dtx_rand_below(rng, i);
		uint32_t t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

typedef struct plan {
	hx_nem_event *ev;
	size_t n, cap;
	// The crash points in a seeded order, taken in turn (reshuffled when
	// used up) so that each is armed about as often as the others.
	uint32_t cp[NCRASHPOINTS];
	size_t cp_i;
	uint32_t next_id; // the last fault id given out
} plan;

// Appends event a at ms on the n nodes of targets; NULL when out of
// memory.
static hx_nem_event *
push(plan *p, uint64_t at, hx_nem_action a, const uint32_t *targets, uint32_t n)
{
	if (DTX_GROW(p->ev, p->n, p->cap, 32) != DTX_OK)
		return NULL;
	hx_nem_event *e = &p->ev[p->n++];
	memset(e, 0, sizeof(*e));
	e->at_ms = at;
	e->action = a;
	e->ntargets = n;
	memcpy(e->targets, targets, n * sizeof(uint32_t));
	return e;
}

// Whether name is one of the comma-separated names of list.
static bool
in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; *p != '\0';) {
		size_t len = strcspn(p, ",");
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p += len + (p[len] == ',');
	}
	return false;
}

// The crash point of the len bytes at name, or NULL.
static const struct crashpoint *
crashpoint_named(const char *name, size_t len)
{
	for (size_t i = 0; i < NCRASHPOINTS; i++)
		if (strlen(crashpoints[i].name) == len &&
		    strncmp(name, crashpoints[i].name, len) == 0)
			return &crashpoints[i];
	return NULL;
}

dtx_err
hx_nem_crashpoints_check(const char *list, char *err, size_t errlen)
{
	for (const char *p = list; p != NULL && *p != '\0';) {
		size_t len = strcspn(p, ",");
		if (crashpoint_named(p, len) == NULL) {
			int k = snprintf(err, errlen,
			    "no crash point '%.*s'; there are",
			    (int)(len < 64 ? len : 64), p);
			for (size_t i = 0;
			     i < NCRASHPOINTS && k > 0 && (size_t)k < errlen;
			     i++)
				k += snprintf(err + k, errlen - (size_t)k,
				    "%s %s", i ? "," : "", crashpoints[i].name);
			return DTX_EINVAL;
		}
		p += len + (p[len] == ',');
	}
	return DTX_OK;
}

// Whether crash point c can be reached by node id of topo in mode (and is
// one of the aimed points, when some are).
static bool
reaches(const struct crashpoint *c, const hx_nem_cfg *cfg, uint32_t id)
{
	const dtx_node *nd = dtx_topo_find(cfg->topo, id);
	if (cfg->crashpoints != NULL && *cfg->crashpoints != '\0' &&
	    !in_list(cfg->crashpoints, c->name))
		return false;
	if (nd == NULL ||
	    (cfg->mode != NULL && *cfg->mode != '\0' &&
	        strstr(c->modes, cfg->mode) == NULL))
		return false;
	return c->role == DTX_ROLE_CLIENT || c->role == nd->role;
}

// Plans an armed crash point: the next point in the plan's rotation that
// one of the targets reaches, on one such target, armed for at most 3 s
// (a point on the path of every transaction is reached within ms).
// DTX_ENOENT when no target reaches any point.
static dtx_err
plan_crash(plan *p, const hx_nem_cfg *cfg, uint64_t *rng, uint64_t t,
    uint64_t hold, const uint32_t *tg, uint32_t ntg)
{
	for (size_t tries = 0; tries < 2 * NCRASHPOINTS; tries++) {
		if (p->cp_i >= NCRASHPOINTS) {
			for (uint32_t i = 0; i < NCRASHPOINTS; i++)
				p->cp[i] = i;
			shuffle(rng, p->cp, NCRASHPOINTS);
			p->cp_i = 0;
		}
		const struct crashpoint *c = &crashpoints[p->cp[p->cp_i++]];
		uint32_t cand[DTX_TOPO_MAX], nc = 0;
		for (uint32_t i = 0; i < ntg; i++)
			if (reaches(c, cfg, tg[i]))
				cand[nc++] = tg[i];
		if (nc == 0)
			continue;
		uint32_t id = cand[dtx_rand_below(rng, nc)];
		hx_nem_event *s = push(p, t, HX_NA_CRASH_ARM, &id, 1);
		if (s == NULL)
			return DTX_ENOMEM;
		snprintf(s->point, sizeof(s->point), "%s", c->name);
		hx_nem_event *e = push(p, t + (hold < 3000 ? hold : 3000),
		    HX_NA_CRASH_END, &id, 1);
		if (e == NULL)
			return DTX_ENOMEM;
		snprintf(e->point, sizeof(e->point), "%s", c->name);
		return DTX_OK;
	}
	return DTX_ENOENT;
}

// The stores are the participants': one of those among the targets, or
// any target when they include none.
static uint32_t
pick_store(
    const hx_nem_cfg *cfg, uint64_t *rng, const uint32_t *tg, uint32_t ntg)
{
	uint32_t cand[DTX_TOPO_MAX], nc = 0;
	for (uint32_t i = 0; i < ntg; i++) {
		const dtx_node *nd = dtx_topo_find(cfg->topo, tg[i]);
		if (nd != NULL && nd->role == DTX_ROLE_PARTICIPANT)
			cand[nc++] = tg[i];
	}
	if (nc == 0)
		return tg[dtx_rand_below(rng, ntg)];
	return cand[dtx_rand_below(rng, nc)];
}

// Plans a packet fault on one target (loss and duplication 1-10 %, delay
// 10-100 ms with half of it as jitter, 10-40 % reordered) or a corruption
// of one store (a bit flip or a cut, with its seed): start and end.
static dtx_err
plan_damage(plan *p, const hx_nem_cfg *cfg, uint64_t *rng, int k, uint64_t t,
    uint64_t hold, const uint32_t *tg, uint32_t ntg)
{
	hx_nem_event *s;
	uint32_t id = k == K_CORRUPT ? pick_store(cfg, rng, tg, ntg)
	                             : tg[dtx_rand_below(rng, ntg)];
	s = push(p, t, k == K_CORRUPT ? HX_NA_CORRUPT : HX_NA_PACKET, &id, 1);
	if (s == NULL)
		return DTX_ENOMEM;
	if (k == K_CORRUPT) {
		s->corrupt_truncate = dtx_rand_below(rng, 2) == 0;
		s->corrupt_seed = dtx_rand_next(rng);
	} else {
		s->loss_pct = (uint32_t)rnd_range(rng, 1, 11);
		s->dup_pct = (uint32_t)rnd_range(rng, 1, 11);
		s->delay_ms = (uint32_t)rnd_range(rng, 10, 101);
		s->jitter_ms = s->delay_ms / 2;
		s->reorder_pct = (uint32_t)rnd_range(rng, 10, 41);
	}
	return push(p, t + hold,
	           k == K_CORRUPT ? HX_NA_RESTART : HX_NA_PACKET_END, &id,
	           1) != NULL
	    ? DTX_OK
	    : DTX_ENOMEM;
}

// Plans one fault of kind k from t for hold ms: its start and end event.
static dtx_err
plan_fault(plan *p, const hx_nem_cfg *cfg, uint64_t *rng, int k, uint64_t t,
    uint64_t hold, const uint32_t *tg, uint32_t ntg, const uint32_t *all,
    uint32_t nall)
{
	hx_nem_event *s, *e;
	int64_t mo = cfg->max_offset_ms > 0 ? cfg->max_offset_ms : 500;
	if (k == K_DISK) {
		uint32_t id = pick_store(cfg, rng, tg, ntg);
		s = push(p, t, HX_NA_DISK, &id, 1);
		if (s == NULL)
			return DTX_ENOMEM;
		s->disk_form = (hx_disk_form)dtx_rand_below(rng, 2);
		s->disk_len = (uint32_t)rnd_range(rng, 8, 256);
		// At least one byte is written and at least one is missing.
		s->disk_keep =
		    (uint32_t)rnd_range(rng, 1, 20 + (uint64_t)s->disk_len + 4);
		s->disk_seed = dtx_rand_next(rng);
		e = push(p, t + hold, HX_NA_RESTART, &id, 1);
		return e != NULL ? DTX_OK : DTX_ENOMEM;
	}
	if (k == K_CRASH)
		return plan_crash(p, cfg, rng, t, hold, tg, ntg);
	if (k == K_PACKET || k == K_CORRUPT)
		return plan_damage(p, cfg, rng, k, t, hold, tg, ntg);
	if (k == K_KILL || k == K_PAUSE || k == K_LOSE) {
		static const hx_nem_action first[] = { [K_KILL] = HX_NA_KILL,
			[K_PAUSE] = HX_NA_PAUSE,
			[K_LOSE] = HX_NA_LOSE };
		uint32_t id = tg[dtx_rand_below(rng, ntg)];
		s = push(p, t, first[k], &id, 1);
		if (s == NULL)
			return DTX_ENOMEM;
		e = push(p, t + hold,
		    k == K_PAUSE ? HX_NA_RESUME : HX_NA_RESTART, &id, 1);
		return e != NULL ? DTX_OK : DTX_ENOMEM;
	}
	if (k == 2) {
		hx_part_shape shapes[HX_SHAPE_COUNT];
		uint32_t ns = 0, order[DTX_TOPO_MAX];
		unsigned mask = cfg->shapes ? cfg->shapes : 0xfu;
		for (unsigned i = 0; i < HX_SHAPE_COUNT; i++)
			if (mask & (1u << i))
				shapes[ns++] = (hx_part_shape)i;
		if (ns == 0)
			return DTX_EINVAL;
		hx_part_shape sh = shapes[dtx_rand_below(rng, ns)];
		memcpy(order, all, nall * sizeof(uint32_t));
		shuffle(rng, order, nall);
		// The targeted role goes first: the node isolated alone, in
		// the smaller half, or first on the ring.
		uint32_t want = tg[dtx_rand_below(rng, ntg)];
		for (uint32_t i = 0; i < nall; i++)
			if (order[i] == want) {
				order[i] = order[0];
				order[0] = want;
			}
		s = push(p, t, HX_NA_PARTITION, order, nall);
		if (s == NULL)
			return DTX_ENOMEM;
		s->shape = sh;
		hx_partition_grudge(sh, order, nall, &s->grudge);
		if (cfg->onset_max_ms > 0) {
			s->onset_ms = (uint32_t)rnd_range(
			    rng, cfg->onset_max_ms / 4, cfg->onset_max_ms);
			s->onset_later = dtx_rand_below(rng, 2) == 0;
		}
		e = push(p, t + hold, HX_NA_HEAL, all, nall);
		return e != NULL ? DTX_OK : DTX_ENOMEM;
	}
	// Clock: a random non-empty subset of the targets.
	uint32_t pick[DTX_TOPO_MAX], np = 0;
	for (uint32_t i = 0; i < ntg; i++)
		if (dtx_rand_below(rng, 2) == 0)
			pick[np++] = tg[i];
	if (np == 0)
		pick[np++] = tg[dtx_rand_below(rng, ntg)];
	bool strobe = dtx_rand_below(rng, 2) == 0;
	s = push(
	    p, t, strobe ? HX_NA_CLOCK_STROBE : HX_NA_CLOCK_BUMP, pick, np);
	if (s == NULL)
		return DTX_ENOMEM;
	if (strobe) {
		int64_t d = (int64_t)rnd_range(
		    rng, (uint64_t)mo / 2 + 1, 2 * (uint64_t)mo + 1);
		s->strobe_delta_ms = dtx_rand_below(rng, 2) ? d : -d;
		s->strobe_period_ms = (uint32_t)rnd_range(rng, 10, 200);
		s->strobe_ms = (uint32_t)(hold < 3000 ? hold : 3000);
	} else {
		for (uint32_t i = 0; i < np; i++) {
			int64_t d =
			    (int64_t)rnd_range(rng, 1, 2 * (uint64_t)mo + 1);
			s->offset_ms[i] = dtx_rand_below(rng, 2) ? d : -d;
		}
	}
	e = push(p, t + hold, HX_NA_CLOCK_RESET, pick, np);
	return e != NULL ? DTX_OK : DTX_ENOMEM;
}

// The kinds some target can take (crash points: one the targets reach).
static unsigned
placeable(const hx_nem_cfg *cfg, const uint32_t *tg, uint32_t ntg)
{
	unsigned bits = cfg->kinds & ~(unsigned)HX_NEM_CRASHPOINT;
	for (size_t i = 0; i < NCRASHPOINTS; i++)
		for (uint32_t j = 0; j < ntg; j++)
			if (reaches(&crashpoints[i], cfg, tg[j]))
				bits |= cfg->kinds & HX_NEM_CRASHPOINT;
	return bits;
}

unsigned
hx_nemesis_unplanned(const hx_nem_cfg *cfg, const hx_nem_event *ev, size_t n)
{
	unsigned seen = 0;
	for (size_t i = 0; i < n; i++)
		if (hx_nem_action_starts(ev[i].action))
			seen |= 1u << action_kind(ev[i].action);
	return cfg->kinds & ~seen;
}

// What the faults in force occupy: nodes (every fault but a partition) or
// the network (a partition), each until its end.
typedef struct busy {
	uint64_t end[64];
	uint32_t nodes[64];
	bool net[64];
	size_t n;
} busy;

static void
busy_expire(busy *b, uint64_t t)
{
	size_t k = 0;
	for (size_t i = 0; i < b->n; i++)
		if (b->end[i] > t) {
			b->end[k] = b->end[i];
			b->nodes[k] = b->nodes[i];
			b->net[k++] = b->net[i];
		}
	b->n = k;
}

static uint64_t
busy_first_end(const busy *b)
{
	uint64_t m = UINT64_MAX;
	for (size_t i = 0; i < b->n; i++)
		if (b->end[i] < m)
			m = b->end[i];
	return m;
}

// Targets of tg not occupied by a fault in force, into free; and whether
// a partition is in force.
static uint32_t
busy_free(
    const busy *b, const uint32_t *tg, uint32_t ntg, uint32_t *free, bool *net)
{
	uint32_t used = 0, nf = 0;
	*net = false;
	for (size_t i = 0; i < b->n; i++) {
		used |= b->nodes[i];
		*net = *net || b->net[i];
	}
	for (uint32_t i = 0; i < ntg; i++)
		if (!(used & (1u << tg[i])))
			free[nf++] = tg[i];
	return nf;
}

// The nodes the faults in force occupy, a bit each.
static uint32_t
busy_nodes(const busy *b)
{
	uint32_t used = 0;
	for (size_t i = 0; i < b->n; i++)
		used |= b->nodes[i];
	return used;
}

// Sorts ev[0..n) by time, keeping the order of equal times (insertion).
static void
sort_events(hx_nem_event *ev, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		hx_nem_event x = ev[i];
		size_t j = i;
		for (; j > 0 && ev[j - 1].at_ms > x.at_ms; j--)
			ev[j] = ev[j - 1];
		ev[j] = x;
	}
}

typedef struct plan_in {
	const hx_nem_cfg *cfg;
	const uint32_t *tg, *all;
	uint32_t ntg, nall;
	int kinds[HX_NEM_NKINDS], nk;
	uint64_t iv, gv;
	uint32_t gone; // the kill-forever victim, a bit
} plan_in;

// Plans a slow link to one of the free targets tg[0..ntg): the sender is
// a daemon of another role when there is one (the coordinator's or the
// saga orchestrator's calls to a participant carry the protocol; a
// participant's calls to its peers only termination), else any other
// daemon; never the kill-forever victim nor a node another fault in
// force occupies (the bits of used). The delay, 2-5 s, outlasts the
// daemons' 1 s call timeouts and the participants' 2 s in-doubt timeout,
// so what the link carries arrives after its peers have moved on.
// DTX_ENOENT when the target has no sender.
static dtx_err
plan_slow(const plan_in *in, plan *p, uint64_t *rng, uint64_t t, uint64_t hold,
    const uint32_t *tg, uint32_t ntg, uint32_t used)
{
	uint32_t id = tg[dtx_rand_below(rng, ntg)];
	const dtx_node *to = dtx_topo_find(in->cfg->topo, id);
	uint32_t other[DTX_TOPO_MAX], same[DTX_TOPO_MAX], no = 0, ns = 0;
	for (uint32_t i = 0; i < in->nall; i++) {
		uint32_t from = in->all[i];
		const dtx_node *nd = dtx_topo_find(in->cfg->topo, from);
		if (from == id || nd == NULL ||
		    ((in->gone | used) & (1u << from)))
			continue;
		if (to == NULL || nd->role != to->role)
			other[no++] = from;
		else
			same[ns++] = from;
	}
	if (no + ns == 0)
		return DTX_ENOENT;
	uint32_t from = no > 0 ? other[dtx_rand_below(rng, no)]
	                       : same[dtx_rand_below(rng, ns)];
	uint32_t ms = (uint32_t)rnd_range(rng, 2000, 5001);
	hx_nem_event *s = push(p, t, HX_NA_SLOW_LINK, &id, 1);
	if (s == NULL)
		return DTX_ENOMEM;
	s->link_from = from;
	s->delay_ms = ms;
	hx_nem_event *e = push(p, t + hold, HX_NA_SLOW_LINK_END, &id, 1);
	if (e == NULL)
		return DTX_ENOMEM;
	e->link_from = from;
	e->delay_ms = ms;
	return DTX_OK;
}

// Places one fault of the next kind of the rotation that fits at t (a
// kind whose targets are all busy waits for the next start); true when
// one was placed. *res gets what it occupies.
static dtx_err
place(const plan_in *in, plan *p, uint64_t *rng, uint32_t *perm, int *pi,
    uint64_t t, uint64_t hold, const busy *b, bool *placed)
{
	uint32_t free[DTX_TOPO_MAX];
	bool net;
	uint32_t nf = busy_free(b, in->tg, in->ntg, free, &net);
	size_t n0 = p->n;
	*placed = false;
	for (int tries = 0; tries < in->nk && !*placed; tries++) {
		if (*pi == in->nk) {
			for (int i = 0; i < in->nk; i++)
				perm[i] = (uint32_t)in->kinds[i];
			shuffle(rng, perm, (uint32_t)in->nk);
			*pi = 0;
		}
		int k = (int)perm[(*pi)++];
		if (k == K_PART ? net : nf == 0)
			continue;
		dtx_err rv = k == K_SLOW
		    ? plan_slow(in, p, rng, t, hold, free, nf, busy_nodes(b))
		    : plan_fault(p, in->cfg, rng, k, t, hold,
		          k == K_PART ? in->tg : free,
		          k == K_PART ? in->ntg : nf, in->all, in->nall);
		if (rv == DTX_ENOENT)
			continue;
		if (rv != DTX_OK)
			return rv;
		// Its start and end share one fault id.
		p->next_id++;
		for (size_t i = n0; i < p->n; i++)
			p->ev[i].fault_id = p->next_id;
		*placed = true;
	}
	return DTX_OK;
}

// Kill-forever: one target killed once, between a quarter and a half of
// the run in (so the run shows both sides), and never restarted; the
// other kinds leave it alone from the start. *victim gets it.
static dtx_err
plan_forever(const plan_in *in, plan *p, uint64_t *rng, uint32_t *victim)
{
	const hx_nem_cfg *cfg = in->cfg;
	uint64_t d = cfg->duration_ms;
	uint32_t id = in->tg[dtx_rand_below(rng, in->ntg)];
	uint64_t at = d >= 2000 ? rnd_range(rng, d / 4, d / 2) : d / 4;
	hx_nem_event *e = push(p, at, HX_NA_KILL_FOREVER, &id, 1);
	if (e == NULL)
		return DTX_ENOMEM;
	e->fault_id = ++p->next_id;
	*victim = id;
	return DTX_OK;
}

// One schedule at interval iv and gap gv (see hx_nemesis_plan).
static dtx_err
plan_once(const plan_in *in0, plan *p)
{
	const hx_nem_cfg *cfg = in0->cfg;
	uint64_t rng = cfg->seed ^ UINT64_C(0x6e656d6573697321);
	uint64_t iv = in0->iv, gv = in0->gv;
	plan_in local = *in0, *in = &local;
	uint32_t tg[DTX_TOPO_MAX];
	if (cfg->kinds & HX_NEM_KILL_FOREVER) {
		uint32_t victim, k = 0;
		dtx_err rv = plan_forever(in0, p, &rng, &victim);
		if (rv != DTX_OK)
			return rv;
		for (uint32_t i = 0; i < in0->ntg; i++)
			if (in0->tg[i] != victim)
				tg[k++] = in0->tg[i];
		local.tg = tg;
		local.ntg = k;
		local.gone = 1u << victim;
	}
	uint32_t perm[HX_NEM_NKINDS], nconc = cfg->max_concurrent;
	int pi = in->nk;
	busy b = { .n = 0 };
	uint64_t hold_lo =
	    iv / 2 > cfg->hold_min_ms ? iv / 2 : cfg->hold_min_ms;
	uint64_t t = rnd_range(&rng, gv / 2, gv + gv / 2);
	p->cp_i = NCRASHPOINTS;
	if (nconc < 1)
		nconc = 1;
	for (; in->nk > 0 && in->ntg > 0;) {
		uint64_t hold = rnd_range(&rng, hold_lo, hold_lo + iv);
		uint64_t gap = rnd_range(&rng, gv / 2, gv + gv / 2);
		// Every fault ends half a second before the workload does.
		if (t + 500 >= cfg->duration_ms)
			break;
		if (t + hold + 500 > cfg->duration_ms)
			hold = cfg->duration_ms - 500 - t;
		if (hold < 200)
			break;
		busy_expire(&b, t);
		if (b.n >= nconc || b.n == 64) {
			t = busy_first_end(&b);
			continue;
		}
		size_t n0 = p->n;
		bool placed;
		dtx_err rv =
		    place(in, p, &rng, perm, &pi, t, hold, &b, &placed);
		if (rv != DTX_OK)
			return rv;
		if (!placed) {
			t = b.n > 0 ? busy_first_end(&b) : t + gap;
			continue;
		}
		const hx_nem_event *s = &p->ev[n0];
		b.end[b.n] = p->ev[n0 + 1].at_ms;
		b.net[b.n] = s->action == HX_NA_PARTITION;
		b.nodes[b.n] = 0;
		for (uint32_t i = 0; i < s->ntargets && !b.net[b.n]; i++)
			b.nodes[b.n] |= 1u << s->targets[i];
		// A slow link occupies its sender too: a kill would end it
		// early, a packet fault's delays would overwrite it.
		if (s->action == HX_NA_SLOW_LINK)
			b.nodes[b.n] |= 1u << s->link_from;
		b.n++;
		// One at a time: the next starts a gap after this one's end.
		t = nconc == 1 ? p->ev[n0 + 1].at_ms + gap : t + gap / nconc;
	}
	if (nconc > 1 || (cfg->kinds & HX_NEM_KILL_FOREVER))
		sort_events(p->ev, p->n);
	return DTX_OK;
}

dtx_err
hx_nemesis_plan(const hx_nem_cfg *cfg, hx_nem_event **out, size_t *n)
{
	return hx_nemesis_plan_ex(cfg, out, n, NULL, NULL);
}

dtx_err
hx_nemesis_plan_ex(const hx_nem_cfg *cfg, hx_nem_event **out, size_t *n,
    uint64_t *interval_ms, uint64_t *gap_ms)
{
	uint32_t tg[DTX_TOPO_MAX], all[DTX_TOPO_MAX];
	plan_in in = { .cfg = cfg, .tg = tg, .all = all };

	if (cfg->topo == NULL || cfg->interval_ms < 100)
		return DTX_EINVAL;
	for (int k = 0; k < HX_NEM_NKINDS; k++)
		if ((cfg->kinds & (1u << k)) && k != K_FOREVER)
			in.kinds[in.nk++] = k;
	*out = NULL;
	*n = 0;
	if (cfg->kinds == 0)
		return DTX_OK;
	if (hx_nem_targets(cfg->topo, cfg->target, tg, &in.ntg) != DTX_OK ||
	    hx_nem_targets(cfg->topo, HX_TARGET_ANY, all, &in.nall) != DTX_OK)
		return DTX_EINVAL;
	in.iv = cfg->interval_ms;
	in.gv = cfg->gap_ms ? cfg->gap_ms : in.iv;
	unsigned can = placeable(cfg, tg, in.ntg);
	// A run too short to hold every kind at this interval gets a
	// compressed schedule (interval and gap two thirds shorter each
	// time, down to 200 ms) rather than silently fewer kinds.
	for (int attempt = 0;; attempt++) {
		plan p = { 0 };
		dtx_err rv = plan_once(&in, &p);
		if (rv != DTX_OK) {
			dtx_free(p.ev);
			return rv;
		}
		unsigned missing = hx_nemesis_unplanned(cfg, p.ev, p.n) & can;
		if (missing == 0 || in.iv <= 200 || attempt == 8) {
			*out = p.ev;
			*n = p.n;
			if (interval_ms != NULL)
				*interval_ms = in.iv;
			if (gap_ms != NULL)
				*gap_ms = in.gv;
			return DTX_OK;
		}
		dtx_free(p.ev);
		in.iv = in.iv * 2 / 3 > 200 ? in.iv * 2 / 3 : 200;
		in.gv = in.gv * 2 / 3 > 100 ? in.gv * 2 / 3 : 100;
	}
}

// The value of an event's op; extra (may be NULL) is appended inside the
// object: what applying it found out.
static void
event_json(const hx_nem_event *e, hx_sb *sb, bool simulated, const char *extra)
{
	hx_sb_printf(sb, "{\"targets\":[");
	for (uint32_t i = 0; i < e->ntargets; i++)
		hx_sb_printf(sb, "%s%u", i ? "," : "", e->targets[i]);
	hx_sb_printf(sb, "]");
	if (e->fault_id != 0)
		hx_sb_printf(sb, ",\"fault\":%u", e->fault_id);
	switch (e->action) {
	case HX_NA_PACKET:
		hx_sb_printf(sb,
		    ",\"loss_pct\":%u,\"dup_pct\":%u,\"delay_ms\":%u,"
		    "\"jitter_ms\":%u,\"reorder_pct\":%u",
		    e->loss_pct, e->dup_pct, e->delay_ms, e->jitter_ms,
		    e->reorder_pct);
		break;
	case HX_NA_CORRUPT:
		hx_sb_printf(sb, ",\"form\":\"%s\"",
		    e->corrupt_truncate ? "truncate" : "flip");
		break;
	case HX_NA_SLOW_LINK:
	case HX_NA_SLOW_LINK_END:
		hx_sb_printf(sb, ",\"from\":%u,\"delay_ms\":%u", e->link_from,
		    e->delay_ms);
		break;
	case HX_NA_PARTITION:
		hx_sb_printf(sb, ",\"shape\":\"%s\",\"grudge\":{",
		    hx_part_shape_name(e->shape));
		for (uint32_t a = 0, first = 1; a < DTX_TOPO_MAX; a++) {
			if (e->grudge.drop[a] == 0)
				continue;
			hx_sb_printf(sb, "%s\"%u\":[", first ? "" : ",", a);
			first = 0;
			for (uint32_t b = 0, f2 = 1; b < DTX_TOPO_MAX; b++)
				if (e->grudge.drop[a] & (1u << b)) {
					hx_sb_printf(
					    sb, "%s%u", f2 ? "" : ",", b);
					f2 = 0;
				}
			hx_sb_printf(sb, "]");
		}
		hx_sb_printf(sb, "}");
		if (e->onset_ms > 0 && !simulated)
			hx_sb_printf(sb, ",\"onset_ms\":%u,\"onset\":\"%s\"",
			    e->onset_ms,
			    e->onset_later
			        ? "sends to later targets cut first"
			        : "sends to earlier targets cut first");
		if (simulated)
			hx_sb_printf(sb, ",\"simulated\":true");
		break;
	case HX_NA_CLOCK_BUMP:
		hx_sb_printf(sb, ",\"offsets_ms\":{");
		for (uint32_t i = 0; i < e->ntargets; i++)
			hx_sb_printf(sb, "%s\"%u\":%" PRId64, i ? "," : "",
			    e->targets[i], e->offset_ms[i]);
		hx_sb_printf(sb, "}");
		break;
	case HX_NA_CLOCK_STROBE:
		hx_sb_printf(sb,
		    ",\"delta_ms\":%" PRId64 ",\"period_ms\":%u,"
		    "\"duration_ms\":%u",
		    e->strobe_delta_ms, e->strobe_period_ms, e->strobe_ms);
		break;
	case HX_NA_DISK:
		hx_sb_printf(sb,
		    ",\"form\":\"%s\",\"record_bytes\":%u,"
		    "\"written_bytes\":%u",
		    disk_form_names[e->disk_form == HX_DISK_TRUNCATED],
		    20 + e->disk_len + 4, e->disk_keep);
		break;
	case HX_NA_CRASH_ARM:
	case HX_NA_CRASH_END:
	case HX_NA_CRASH_HIT:
		hx_sb_printf(sb, ",\"point\":\"%s\"", e->point);
		break;
	default:
		break;
	}
	if (extra != NULL && extra[0] != '\0')
		hx_sb_printf(sb, ",%s", extra);
	hx_sb_printf(sb, "}");
}

void
hx_nem_event_json(const hx_nem_event *e, hx_sb *sb)
{
	event_json(e, sb, false, NULL);
}

// ---------------------------------------------------------------- runtime

struct hx_nemesis {
	hx_cluster *cl;
	hx_compose *cc; // non-NULL: the nodes are containers
	bool own; // the cluster was started for this run
	hx_conn *conn;
	// The nemesis's own clients to the cluster (conn then points at
	// them), NULL when it shares the caller's: only its own are dialled
	// afresh (nem_fault).
	hx_conn *own_conn;
	hx_history *h;
	hx_nem_event *ev;
	size_t n;
	pthread_t th;
	bool running;
	bool healed;
	atomic_bool stop;
	uint64_t t0;
	pthread_mutex_t mtx; // guards current, started, errors
	char current[96];
	size_t started[HX_NEM_NKINDS];
	size_t ok_starts[HX_NEM_NKINDS]; // starts that did not fail
	size_t errors;
	unsigned planned; // kinds the plan starts
	// What is in force (only the nemesis thread, then stop, touch it).
	bool killed[DTX_TOPO_MAX];
	bool paused[DTX_TOPO_MAX];
	bool clocked[DTX_TOPO_MAX];
	bool partitioned;
	// Crash points armed and not yet reached, and since when.
	char armed[DTX_TOPO_MAX][48];
	uint64_t armed_ns[DTX_TOPO_MAX];
	uint32_t armed_id[DTX_TOPO_MAX];
	uint32_t hit_id[DTX_TOPO_MAX]; // the fault of the last point reached
	// A node that died at a crash point with a down time: when it is
	// restarted (mono ns; 0: not waiting).
	uint64_t up_at[DTX_TOPO_MAX];
	// The HLC a node stamped on its last HEALTH answer before a kill
	// (0: not asked or no answer), for clock_after_restart.
	clk_ts hlc_before[DTX_TOPO_MAX];
	// Killed for good (kill-forever): never restarted.
	bool gone[DTX_TOPO_MAX];
	// Packet faults in force, per node: what was installed.
	bool pk_rules[DTX_TOPO_MAX], pk_netem[DTX_TOPO_MAX];
	bool pk_delay[DTX_TOPO_MAX];
	uint32_t pk_delay_ms[DTX_TOPO_MAX];
	// Slow links in force, by the node they lead to: the sender and the
	// fault's id.
	bool slow[DTX_TOPO_MAX];
	uint32_t slow_from[DTX_TOPO_MAX], slow_id[DTX_TOPO_MAX];
	uint32_t slow_ms[DTX_TOPO_MAX];
	// Corrupt: a copy of the node's data dir waits to be restored.
	bool saved[DTX_TOPO_MAX];
	// Faults started and not ended: id, kind and nodes (a bit each).
	struct open_fault {
		uint32_t id, nodes;
		int kind;
	} open[64];
	size_t nopen;
};

// FAULT kind to node id. A call that certainly did not arrive
// (DTX_EUNREACH: no connection) is sent once more on a new socket when
// the clients are the nemesis's own: nng 1.5.2 can stop redialling a
// node that restarted (README, "Known limit"), and a fault that never
// reaches its target would not run.
static dtx_err
nem_fault(hx_nemesis *nm, uint32_t id, const char *kind, const int64_t *args,
    uint32_t nargs, const char *str)
{
	dtx_err rv = hx_send_fault(nm->conn, id, kind, args, nargs, str);
	if (rv != DTX_EUNREACH || nm->own_conn == NULL ||
	    hx_conn_redial(nm->own_conn, id) != DTX_OK)
		return rv;
	return hx_send_fault(nm->conn, id, kind, args, nargs, str);
}

// Keeps the open-fault list as e starts or ends a fault.
static void
track(hx_nemesis *nm, const hx_nem_event *e)
{
	if (e->fault_id == 0)
		return;
	if (hx_nem_action_starts(e->action)) {
		if (nm->nopen == 64)
			return;
		struct open_fault *o = &nm->open[nm->nopen++];
		o->id = e->fault_id;
		o->kind = action_kind(e->action);
		o->nodes = 0;
		for (uint32_t i = 0; i < e->ntargets; i++)
			o->nodes |= 1u << e->targets[i];
		return;
	}
	for (size_t i = 0; i < nm->nopen; i++)
		if (nm->open[i].id == e->fault_id) {
			nm->open[i] = nm->open[--nm->nopen];
			return;
		}
}

static void
set_current(hx_nemesis *nm, const char *s)
{
	pthread_mutex_lock(&nm->mtx);
	snprintf(nm->current, sizeof(nm->current), "%s", s);
	pthread_mutex_unlock(&nm->mtx);
}

// An unplanned event (fault id 0 unless set after): action a on node id.
static hx_nem_event
event1(hx_nem_action a, uint32_t id)
{
	hx_nem_event e;
	memset(&e, 0, sizeof(e));
	e.action = a;
	e.ntargets = 1;
	e.targets[0] = id;
	return e;
}

static void
record(
    hx_nemesis *nm, const hx_nem_event *e, const char *error, const char *extra)
{
	hx_sb sb = { 0 };
	event_json(e, &sb,
	    e->action == HX_NA_PARTITION && !hx_cluster_is_netns(nm->cl) &&
	        nm->cc == NULL,
	    extra);
	char *v = hx_sb_take(&sb);
	hx_history_add(nm->h, HX_PROC_NEMESIS, HX_OP_INFO,
	    hx_nem_action_name(e->action), v, error);
	dtx_free(v);
	track(nm, e);
	pthread_mutex_lock(&nm->mtx);
	if (hx_nem_action_starts(e->action))
		nm->started[action_kind(e->action)]++;
	// A crash point that was reached ran, even when the answer to its
	// arming was lost (the daemon reached it at once and died first).
	if ((hx_nem_action_starts(e->action) || e->action == HX_NA_CRASH_HIT) &&
	    error == NULL)
		nm->ok_starts[action_kind(e->action)]++;
	if (error != NULL)
		nm->errors++;
	pthread_mutex_unlock(&nm->mtx);
	if (hx_nem_action_starts(e->action)) {
		char cur[96];
		int len = snprintf(
		    cur, sizeof(cur), "%s", hx_nem_action_name(e->action));
		if (e->action == HX_NA_PARTITION)
			len += snprintf(cur + len, sizeof(cur) - (size_t)len,
			    " %s", hx_part_shape_name(e->shape));
		for (uint32_t i = 0; i < e->ntargets && len < 80; i++)
			len += snprintf(cur + len, sizeof(cur) - (size_t)len,
			    "%s%u", i ? "," : " [", e->targets[i]);
		snprintf(cur + len, sizeof(cur) - (size_t)len, "]");
		set_current(nm, cur);
	} else {
		set_current(nm, "none");
	}
}

// record with rv's name as the error, or none when rv is DTX_OK.
static void
record_rv(hx_nemesis *nm, const hx_nem_event *e, dtx_err rv, const char *extra)
{
	char err[64];
	snprintf(err, sizeof(err), "%s", dtx_errname(rv));
	record(nm, e, rv == DTX_OK ? NULL : err, extra);
}

// The set a daemon must refuse in-process: the grudge in both directions.
static uint32_t
both_ways(const hx_grudge *g, uint32_t a)
{
	uint32_t cut = g->drop[a];
	for (uint32_t b = 0; b < DTX_TOPO_MAX; b++)
		if (g->drop[b] & (1u << a))
			cut |= 1u << b;
	return cut & ~(1u << a);
}

static dtx_err
partition_inproc(hx_nemesis *nm, const hx_grudge *g)
{
	const dtx_topo *topo = hx_cluster_topo(nm->cl);
	dtx_err rv = DTX_OK;
	for (uint32_t i = 0; i < topo->n; i++) {
		const dtx_node *nd = &topo->nodes[i];
		if (nd->role == DTX_ROLE_CLIENT)
			continue;
		int64_t args[PROTO_MAX_FAULT_ARGS];
		uint32_t na = 0;
		uint32_t cut = g ? both_ways(g, nd->id) : 0;
		for (uint32_t b = 0; b < DTX_TOPO_MAX; b++)
			if (cut & (1u << b)) {
				if (na == PROTO_MAX_FAULT_ARGS)
					return DTX_ERANGE;
				args[na++] = b;
			}
		dtx_err r = nem_fault(nm, nd->id, "partition", args, na, NULL);
		if (r != DTX_OK)
			rv = r;
	}
	return rv;
}

static dtx_err
set_clock(hx_nemesis *nm, uint32_t id, int64_t off)
{
	int64_t args[2] = { off, 1000 };
	return nem_fault(nm, id, "clock", args, 2, NULL);
}

static void watch_crashes(hx_nemesis *nm);

static bool
nap_until(hx_nemesis *nm, uint64_t at_ns)
{
	while (!atomic_load(&nm->stop)) {
		watch_crashes(nm);
		uint64_t now = dtx_mono_ns();
		if (now >= at_ns)
			return true;
		uint64_t left = (at_ns - now) / 1000000u;
		dtx_sleep_ms(left > 50 ? 50 : left + 1);
	}
	return false;
}

// ---------------------------------------------------------------- disk

// The WAL's layout, its walk and the tear itself are storage's (storage.h,
// "WAL files"); the nemesis only finds the WAL directory to strike.

// Finds the newest segment in dir or one folder below it (a
// participant's store/, the coordinator's log/) and copies the folder
// that holds it into best (len bytes); *best_first is its first LSN (0:
// none found yet). The first folder found wins a tie.
static void
newest_wal_dir(
    const char *dir, int depth, char *best, size_t len, uint64_t *best_first)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[PATH_MAX];
		uint64_t first;
		if (e->d_name[0] == '.')
			continue;
		if (stor_wal_seg_parse(e->d_name, &first)) {
			if (first > *best_first) {
				snprintf(best, len, "%s", dir);
				*best_first = first;
			}
		} else if (depth > 0 && e->d_type == DT_DIR &&
		    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) <
		        (int)sizeof(path)) {
			newest_wal_dir(path, depth - 1, best, len, best_first);
		}
	}
	closedir(d);
}

// The disk fault proper, on a daemon that is dead: stor_wal_tear_tail on
// the WAL directory in data (or one folder below it) that holds the newest
// segment, with the event's record length, kept bytes, seed and form.
// extra gets where it tore as JSON members.
dtx_err
hx_nem_tear_wal(
    const char *data, const hx_nem_event *e, char *extra, size_t len)
{
	char dir[PATH_MAX] = "";
	uint64_t first = 0;
	newest_wal_dir(data, 1, dir, sizeof(dir), &first);
	if (first == 0) {
		snprintf(extra, len, "\"segment\":null");
		return DTX_ENOENT;
	}
	stor_wal_tear how = {
		.payload_len = e->disk_len,
		.keep = e->disk_keep,
		.seed = e->disk_seed,
		.truncate = e->disk_form == HX_DISK_TRUNCATED,
	};
	stor_wal_end where;
	dtx_err rv = stor_wal_tear_tail(dir, &how, &where);
	if (rv == DTX_OK)
		snprintf(extra, len,
		    "\"segment\":\"%s\",\"offset\":%" PRIu64 ",\"lsn\":%" PRIu64
		    ",\"segment_bytes\":%" PRIu64,
		    where.segment, where.offset, where.next_lsn, where.size);
	return rv;
}

// Where a corrupt fault keeps the copy of node id's data dir.
static void
saved_path(hx_nemesis *nm, uint32_t id, char *data, char *saved, size_t len)
{
	snprintf(data, len, "%s", hx_cluster_data(nm->cl, id));
	snprintf(saved, len, "%s.pre-corrupt", data);
}

static dtx_err
restart(hx_nemesis *nm, uint32_t id)
{
	if (nm->cc != NULL)
		return hx_compose_start(nm->cc, id);
	if (nm->gone[id])
		return DTX_OK;
	// After a corrupt fault's refusal: the data dir as it was before.
	if (nm->saved[id] && hx_cluster_pid(nm->cl, id) == 0) {
		char data[PATH_MAX], saved[PATH_MAX];
		saved_path(nm, id, data, saved, sizeof(data));
		dtx_err r = hx_dir_restore(saved, data);
		if (r != DTX_OK)
			return r;
		nm->saved[id] = false;
	}
	dtx_err rv = hx_cluster_start(nm->cl, id, NULL);
	if (rv == DTX_EEXIST)
		return DTX_OK;
	if (rv == DTX_OK)
		rv = hx_cluster_wait_ready(nm->cl, id, 15000);
	return rv;
}

// A partition that comes on one way first: the sends from each node to
// the nodes after it (or before it) in the event's order are cut and the
// op recorded; onset_ms later the cut is completed both ways. A failure
// of the completion counts as a failed action.
static void
onset(hx_nemesis *nm, const hx_nem_event *e)
{
	const dtx_topo *topo = hx_cluster_topo(nm->cl);
	const char *prefix = hx_cluster_netns_prefix(nm->cl);
	uint32_t pos[DTX_TOPO_MAX] = { 0 };
	hx_grudge one;
	char err[64];
	for (uint32_t i = 0; i < e->ntargets; i++)
		pos[e->targets[i]] = i;
	memset(&one, 0, sizeof(one));
	for (uint32_t a = 0; a < DTX_TOPO_MAX; a++)
		for (uint32_t b = 0; b < DTX_TOPO_MAX; b++)
			if ((e->grudge.drop[a] & (1u << b)) &&
			    (e->onset_later ? pos[a] < pos[b]
			                    : pos[a] > pos[b]))
				one.drop[a] |= 1u << b;
	dtx_err rv = hx_netns_cut_sends(prefix, topo, &one);
	snprintf(err, sizeof(err), "%s", dtx_errname(rv));
	record(nm, e, rv == DTX_OK ? NULL : err, NULL);
	uint64_t end = dtx_mono_ns() + (uint64_t)e->onset_ms * 1000000u;
	while (!atomic_load(&nm->stop) && dtx_mono_ns() < end)
		dtx_sleep_ms(10);
	if (hx_netns_partition(prefix, topo, &e->grudge) != DTX_OK) {
		pthread_mutex_lock(&nm->mtx);
		nm->errors++;
		pthread_mutex_unlock(&nm->mtx);
	}
}

// The container form of the process and network faults (clock faults go
// through the daemons' FAULT message either way). True when it handled
// e; *rv is the result.
static bool
apply_compose(hx_nemesis *nm, const hx_nem_event *e, dtx_err *rv)
{
	dtx_err r;
	*rv = DTX_OK;
	switch (e->action) {
	case HX_NA_DISK:
		// The containers' volumes are not ours to tear.
		*rv = DTX_EPERM;
		return true;
	case HX_NA_KILL:
	case HX_NA_RESTART:
	case HX_NA_PAUSE:
	case HX_NA_RESUME:
		for (uint32_t i = 0; i < e->ntargets; i++) {
			uint32_t id = e->targets[i];
			switch (e->action) {
			case HX_NA_KILL:
				r = hx_compose_kill(nm->cc, id);
				nm->killed[id] = true;
				break;
			case HX_NA_RESTART:
				r = hx_compose_start(nm->cc, id);
				nm->killed[id] = false;
				break;
			case HX_NA_PAUSE:
				r = hx_compose_pause(nm->cc, id);
				nm->paused[id] = true;
				break;
			default:
				r = hx_compose_unpause(nm->cc, id);
				nm->paused[id] = false;
				break;
			}
			if (r != DTX_OK)
				*rv = r;
		}
		return true;
	case HX_NA_PARTITION:
		nm->partitioned = true;
		*rv = hx_compose_partition(nm->cc, &e->grudge);
		return true;
	case HX_NA_HEAL:
		*rv = hx_compose_heal(nm->cc);
		nm->partitioned = false;
		return true;
	default:
		return false;
	}
}

// ---------------------------------------------------------------- aimed

// Rule 14 at every kill and restart: a daemon's clock starts after a
// restart at or above every timestamp it stamped before (it persists a
// bound before it goes past it). Before a kill the nemesis asks the node's
// HEALTH (its answer is stamped with the node's HLC) unless the node is
// paused or partitioned away; after the restart it asks again, and the
// restart op records both ("hlc":[{"node":N,"before":B,"after":A}]), which
// the session checker holds to after > before.
static clk_ts
stamped_hlc(hx_nemesis *nm, uint32_t id, uint32_t timeout_ms)
{
	proto_msg rep;
	if (hx_health(nm->conn, id, timeout_ms, &rep) != DTX_OK)
		return 0;
	clk_ts ts = rep.hdr.hlc;
	proto_msg_free(&rep);
	return ts;
}

static void
clock_before_kill(hx_nemesis *nm, uint32_t id)
{
	nm->hlc_before[id] = nm->cc == NULL && !nm->paused[id] &&
	        !nm->partitioned && hx_cluster_pid(nm->cl, id) != 0
	    ? stamped_hlc(nm, id, 300)
	    : 0;
}

// Appends ,"hlc":[...] to extra (of size len, holding a JSON object's
// members) for each target of restart event e asked before its kill.
static void
clock_after_restart(
    hx_nemesis *nm, const hx_nem_event *e, char *extra, size_t len)
{
	size_t at = strlen(extra);
	bool first = true;
	for (uint32_t i = 0; i < e->ntargets; i++) {
		uint32_t id = e->targets[i];
		clk_ts before = nm->hlc_before[id], after;
		nm->hlc_before[id] = 0;
		if (before == 0 || (after = stamped_hlc(nm, id, 2000)) == 0 ||
		    at + 96 >= len)
			continue;
		at += (size_t)snprintf(extra + at, len - at,
		    "%s{\"node\":%u,\"before\":%llu,\"after\":%llu}",
		    first ? (at > 0 ? ",\"hlc\":[" : "\"hlc\":[") : ",", id,
		    (unsigned long long)before, (unsigned long long)after);
		first = false;
	}
	if (!first)
		snprintf(extra + at, len - at, "]");
}

// Kills id (dead already is fine) and rolls back its unsynced writes;
// extra gets "undone_writes":N.
static dtx_err
kill_lose(hx_nemesis *nm, uint32_t id, char *extra, size_t len)
{
	size_t undone = 0;
	dtx_err rv = DTX_OK;
	if (hx_cluster_pid(nm->cl, id) != 0) {
		clock_before_kill(nm, id);
		rv = hx_cluster_signal(nm->cl, id, SIGKILL);
	}
	nm->killed[id] = true;
	if (rv == DTX_OK)
		rv = hx_unsynced_rollback(hx_cluster_data(nm->cl, id), &undone);
	snprintf(extra, len, "\"undone_writes\":%zu", undone);
	return rv;
}

// Whether the last 8 KB of node id's log say it reached crash point name
// (the CRASHPOINT line dtx_crashpoint writes before its SIGKILL).
static bool
log_confirms(hx_nemesis *nm, uint32_t id, const char *name)
{
	char buf[8193], want[96];
	FILE *f = fopen(hx_cluster_log(nm->cl, id), "rb");
	if (f == NULL)
		return false;
	if (fseek(f, -8192, SEEK_END) != 0)
		rewind(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	snprintf(want, sizeof(want), "crash point %s reached", name);
	return strstr(buf, want) != NULL;
}

// A participant that died just after it acknowledged a COMMIT asks, as it
// restarts, what became of the transactions it holds in doubt; a
// coordinator remembers the recently ended ones in memory, which would
// answer for a COMMIT record the participant lost. So the coordinators
// are killed and restarted first (each a kill and a restart in the
// history): the answer then comes from their logs alone. Their unsynced
// writes stay (a process crash, not a power failure), so the END records
// they wrote are read back and a lost COMMIT is not re-driven.
static void
restart_coordinators(hx_nemesis *nm)
{
	const dtx_topo *topo = hx_cluster_topo(nm->cl);
	for (uint32_t i = 0; i < topo->n; i++) {
		if (topo->nodes[i].role != DTX_ROLE_COORDINATOR)
			continue;
		uint32_t id = topo->nodes[i].id;
		hx_nem_event k = event1(HX_NA_KILL, id);
		dtx_err rv = hx_cluster_signal(nm->cl, id, SIGKILL);
		nm->killed[id] = true;
		record_rv(nm, &k, rv, NULL);
		k.action = HX_NA_RESTART;
		rv = restart(nm, id);
		if (rv == DTX_OK)
			nm->killed[id] = false;
		record_rv(nm, &k, rv, NULL);
	}
}

// A daemon that died with a crash point armed reached it: records the hit
// (which point, which node, how long after arming), rolls back what it
// had not synced and restarts it unarmed.
static void
crash_hit(hx_nemesis *nm, uint32_t id)
{
	hx_nem_event e = event1(HX_NA_CRASH_HIT, id);
	char extra[128];
	snprintf(e.point, sizeof(e.point), "%s", nm->armed[id]);
	e.fault_id = nm->armed_id[id];
	nm->hit_id[id] = e.fault_id;
	uint64_t ms = (dtx_mono_ns() - nm->armed_ns[id]) / 1000000u;
	nm->armed[id][0] = '\0';
	// "confirmed": its log says it died there (not of something else).
	int len = snprintf(extra, sizeof(extra),
	    "\"after_ms\":%" PRIu64 ",\"confirmed\":%s,", ms,
	    log_confirms(nm, id, e.point) ? "true" : "false");
	dtx_err rv =
	    kill_lose(nm, id, extra + len, sizeof(extra) - (size_t)len);
	const struct crashpoint *cp =
	    crashpoint_named(e.point, strlen(e.point));
	if (rv == DTX_OK && cp != NULL && cp->coords_restart)
		restart_coordinators(nm);
	if (rv == DTX_OK && cp != NULL && cp->down_ms > 0) {
		// Down a while: watch_crashes restarts it.
		nm->up_at[id] =
		    dtx_mono_ns() + (uint64_t)cp->down_ms * 1000000u;
		record_rv(nm, &e, rv, extra);
		return;
	}
	if (rv == DTX_OK)
		rv = restart(nm, id);
	if (rv == DTX_OK)
		nm->killed[id] = false;
	record_rv(nm, &e, rv, extra);
}

static void
watch_crashes(hx_nemesis *nm)
{
	if (nm->cc != NULL)
		return;
	uint64_t now = dtx_mono_ns();
	for (uint32_t id = 0; id < DTX_TOPO_MAX; id++) {
		if (nm->armed[id][0] != '\0' && hx_cluster_pid(nm->cl, id) == 0)
			crash_hit(nm, id);
		if (nm->up_at[id] != 0 && now >= nm->up_at[id]) {
			nm->up_at[id] = 0;
			hx_nem_event e = event1(HX_NA_RESTART, id);
			dtx_err rv = restart(nm, id);
			if (rv == DTX_OK)
				nm->killed[id] = false;
			record_rv(nm, &e, rv, NULL);
		}
	}
}

// Lost unsynced writes and crash points. True when it handled e; *rv is
// the result and extra gets what it found.
static bool
apply_aimed(
    hx_nemesis *nm, const hx_nem_event *e, dtx_err *rv, char *extra, size_t len)
{
	uint32_t id = e->targets[0];
	int64_t one = 1;
	switch (e->action) {
	case HX_NA_LOSE:
		*rv =
		    nm->cc != NULL ? DTX_EPERM : kill_lose(nm, id, extra, len);
		return true;
	case HX_NA_CRASH_ARM:
		*rv = nm->cc != NULL
		    ? DTX_EPERM
		    : nem_fault(nm, id, "crash_at", &one, 1, e->point);
		// A daemon that reaches the point just after arming it dies
		// before its answer leaves, and a retried call reports its
		// last attempt's failure though an earlier one arrived: an
		// arming that failed on the way is watched too, unless the
		// node is down (crash_hit's "confirmed" says whether its log
		// shows the point).
		if (*rv == DTX_OK ||
		    (nm->up_at[id] == 0 && !nm->killed[id] &&
		        (*rv == DTX_ETIMEDOUT || *rv == DTX_ECLOSED ||
		            *rv == DTX_EUNREACH))) {
			snprintf(nm->armed[id], sizeof(nm->armed[id]), "%s",
			    e->point);
			nm->armed_ns[id] = dtx_mono_ns();
			nm->armed_id[id] = e->fault_id;
		}
		return true;
	case HX_NA_CRASH_END:
		watch_crashes(nm);
		*rv = DTX_OK;
		if (nm->armed[id][0] != '\0') {
			// Not reached: disarm (no point has this name).
			nm->armed[id][0] = '\0';
			*rv = nem_fault(nm, id, "crash_at", &one, 1, "-");
			snprintf(extra, len, "\"hit\":false");
		} else {
			// Reached, or never armed (the arming failed).
			snprintf(extra, len, "\"hit\":%s",
			    nm->hit_id[id] == e->fault_id && e->fault_id != 0
			        ? "true"
			        : "false");
		}
		return true;
	default:
		return false;
	}
}

// ---------------------------------------------------------------- packets

// The daemons' FAULT "delay" both ways between id and every other daemon
// (ms 0 clears). A peer that is down is skipped; only the target's own
// refusal is an error.
static dtx_err
delay_both(hx_nemesis *nm, uint32_t id, uint32_t ms)
{
	const dtx_topo *topo = hx_cluster_topo(nm->cl);
	dtx_err rv = DTX_OK;
	for (uint32_t i = 0; i < topo->n; i++) {
		const dtx_node *nd = &topo->nodes[i];
		if (nd->role == DTX_ROLE_CLIENT || nd->id == id)
			continue;
		int64_t to_peer[2] = { nd->id, ms }, to_id[2] = { id, ms };
		dtx_err r = nem_fault(nm, id, "delay", to_peer, 2, NULL);
		if (r != DTX_OK)
			rv = r;
		if (!nm->gone[nd->id])
			(void)nem_fault(nm, nd->id, "delay", to_id, 2, NULL);
	}
	return rv;
}

// Starts a packet fault: loss and duplication by iptables in the node's
// namespace (netns runs only), delay and reordering by tc netem when the
// kernel has it, else delay by the daemons' FAULT "delay" (no
// reordering). extra says which mechanism ran for each.
static dtx_err
packet_on(hx_nemesis *nm, const hx_nem_event *e, char *extra, size_t len)
{
	uint32_t id = e->targets[0];
	bool ns = nm->cc == NULL && hx_cluster_is_netns(nm->cl);
	const char *prefix = ns ? hx_cluster_netns_prefix(nm->cl) : "";
	const char *loss = "not run: needs --netns (iptables inside the "
	                   "node's namespace)";
	dtx_err rv = DTX_OK;
	if (ns) {
		nm->pk_rules[id] = true;
		rv = hx_netns_packet(prefix, hx_cluster_topo(nm->cl), id,
		    e->loss_pct, e->dup_pct);
		loss = rv == DTX_OK ? "iptables statistic" : "iptables failed";
	}
	nm->pk_netem[id] = ns &&
	    hx_netns_netem(prefix, id, e->delay_ms, e->jitter_ms,
	        e->reorder_pct) == DTX_OK;
	if (!nm->pk_netem[id]) {
		nm->pk_delay[id] = true;
		nm->pk_delay_ms[id] = e->delay_ms;
		dtx_err r = delay_both(nm, id, e->delay_ms);
		if (rv == DTX_OK)
			rv = r;
	}
	snprintf(extra, len,
	    "\"mechanism\":{\"loss\":\"%s\",\"duplicate\":\"%s\","
	    "\"delay\":\"%s\",\"reorder\":\"%s\"}",
	    loss,
	    ns ? (rv == DTX_OK ? "iptables statistic + TEE" : loss) : loss,
	    nm->pk_netem[id] ? "tc netem"
	        : ns ? "daemon FAULT delay (no sch_netem in this kernel)"
	             : "daemon FAULT delay (no --netns)",
	    nm->pk_netem[id] ? "tc netem" : "not run: needs sch_netem");
	return rv;
}

// Ends node id's packet fault; extra gets the packets the rules dropped
// and duplicated.
static dtx_err
packet_off(hx_nemesis *nm, uint32_t id, char *extra, size_t len)
{
	dtx_err rv = DTX_OK;
	uint64_t dropped = 0, dup = 0;
	if (nm->pk_rules[id] || nm->pk_netem[id])
		rv = hx_netns_packet_clear(hx_cluster_netns_prefix(nm->cl), id,
		    nm->pk_netem[id], &dropped, &dup);
	if (nm->pk_delay[id]) {
		dtx_err r = delay_both(nm, id, 0);
		if (rv == DTX_OK && r != DTX_OK && !nm->killed[id])
			rv = r;
	}
	if (nm->pk_rules[id])
		snprintf(extra, len,
		    "\"dropped_packets\":%" PRIu64
		    ",\"duplicated_packets\":%" PRIu64,
		    dropped, dup);
	nm->pk_rules[id] = nm->pk_netem[id] = nm->pk_delay[id] = false;
	return rv;
}

// ---------------------------------------------------------------- slow link

// Starts a slow link: the sender's FAULT "delay" for its calls to the
// target. The delay lives in the sender's memory, so a restart of the
// sender ends it early; the op's "mechanism" says so.
static dtx_err
slow_on(hx_nemesis *nm, const hx_nem_event *e, char *extra, size_t len)
{
	uint32_t id = e->targets[0], from = e->link_from;
	int64_t args[2] = { id, e->delay_ms };
	dtx_err rv = nem_fault(nm, from, "delay", args, 2, NULL);
	if (rv == DTX_OK) {
		nm->slow[id] = true;
		nm->slow_from[id] = from;
		nm->slow_id[id] = e->fault_id;
		nm->slow_ms[id] = e->delay_ms;
	}
	snprintf(extra, len,
	    "\"mechanism\":\"daemon FAULT delay in the sender (its calls "
	    "to the target wait, then leave; a restart of the sender ends "
	    "it)\"");
	return rv;
}

// Ends the slow link to node id. A sender that is down (killed since)
// lost the delay with its memory: nothing to clear.
static dtx_err
slow_off(hx_nemesis *nm, uint32_t id)
{
	if (!nm->slow[id])
		return DTX_OK;
	uint32_t from = nm->slow_from[id];
	int64_t args[2] = { id, 0 };
	dtx_err rv = nem_fault(nm, from, "delay", args, 2, NULL);
	nm->slow[id] = false;
	if (rv != DTX_OK && (nm->killed[from] || nm->gone[from]))
		rv = DTX_OK;
	return rv;
}

// Ends the slow links still in force, each recorded with its id.
static void
heal_slow(hx_nemesis *nm)
{
	for (uint32_t i = 0; i < DTX_TOPO_MAX; i++) {
		if (!nm->slow[i])
			continue;
		hx_nem_event e = event1(HX_NA_SLOW_LINK_END, i);
		e.link_from = nm->slow_from[i];
		e.fault_id = nm->slow_id[i];
		e.delay_ms = nm->slow_ms[i];
		record_rv(nm, &e, slow_off(nm, i), NULL);
	}
}

// ---------------------------------------------------------------- corrupt

// The last ERROR line of node id's log (the refusal), JSON-escaped into
// sb as a string; null when there is none.
static void
refusal_line(hx_nemesis *nm, uint32_t id, hx_sb *sb)
{
	char buf[8193];
	FILE *f = fopen(hx_cluster_log(nm->cl, id), "rb");
	size_t n = 0;
	if (f != NULL) {
		if (fseek(f, -8192, SEEK_END) != 0)
			rewind(f);
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	char *best = NULL;
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l != NULL;
	     l = strtok_r(NULL, "\n", &save))
		if (strstr(l, "ERROR") != NULL || strstr(l, "CORRUPT") != NULL)
			best = l;
	if (best == NULL)
		hx_sb_printf(sb, "null");
	else
		hx_sb_json_str(sb, best);
}

static uint64_t
log_size(hx_nemesis *nm, uint32_t id)
{
	struct stat st;
	return stat(hx_cluster_log(nm->cl, id), &st) == 0 ? (uint64_t)st.st_size
	                                                  : 0;
}

// The corrupt fault: kill, roll back what was not synced, copy the data
// dir, damage it, and try to start the daemon. A refusal is the expected
// outcome (the copy is restored by the fault's RESTART); a daemon that
// starts on damaged acknowledged data is recorded as "started", left
// running, and the checkers judge what it serves.
static dtx_err
corrupt(hx_nemesis *nm, const hx_nem_event *e, char *extra, size_t len)
{
	uint32_t id = e->targets[0];
	char data[PATH_MAX], saved[PATH_MAX], what[1024] = "";
	if (nm->cc != NULL)
		return DTX_EPERM;
	dtx_err rv = DTX_OK;
	if (hx_cluster_pid(nm->cl, id) != 0)
		rv = hx_cluster_signal(nm->cl, id, SIGKILL);
	nm->killed[id] = true;
	saved_path(nm, id, data, saved, sizeof(data));
	if (rv == DTX_OK)
		rv = hx_unsynced_rollback(data, NULL);
	if (rv == DTX_OK && (rv = hx_dir_copy(data, saved)) == DTX_OK)
		nm->saved[id] = true;
	if (rv == DTX_OK)
		rv = hx_corrupt_store(data, e->corrupt_truncate,
		    e->corrupt_seed, what, sizeof(what));
	if (rv != DTX_OK) {
		snprintf(extra, len, "%s%s\"outcome\":\"not damaged\"", what,
		    what[0] ? "," : "");
		return rv;
	}
	uint64_t t0 = dtx_mono_ns(), from = log_size(nm, id);
	dtx_err st = hx_cluster_start(nm->cl, id, NULL);
	if (st == DTX_OK)
		st = hx_cluster_wait_ready(nm->cl, id, 10000);
	if (st != DTX_OK && hx_cluster_pid(nm->cl, id) != 0)
		(void)hx_cluster_signal(nm->cl, id, SIGKILL);
	hx_sb sb = { 0 };
	// The log bytes of the attempt: the refusal the checkers expect.
	hx_sb_printf(&sb,
	    "%s,\"outcome\":\"%s\",\"start_ms\":%" PRIu64
	    ",\"log_from\":%" PRIu64 ",\"log_to\":%" PRIu64,
	    what,
	    st == DTX_OK            ? "started"
	        : st == DTX_ECLOSED ? "refused"
	                            : "no answer",
	    (dtx_mono_ns() - t0) / 1000000u, from, log_size(nm, id));
	if (st == DTX_OK) {
		// It took the damage: that is what runs from now on.
		nm->killed[id] = false;
		nm->saved[id] = false;
		const char *rm[] = { "rm", "-rf", saved, NULL };
		(void)hx_run(rm, NULL, 0, true);
	} else {
		hx_sb_printf(&sb, ",\"refusal\":");
		refusal_line(nm, id, &sb);
	}
	char *v = hx_sb_take(&sb);
	snprintf(extra, len, "%s", v ? v : "");
	dtx_free(v);
	return DTX_OK;
}

// Packet, slow-link, corrupt and kill-forever faults. True when it
// handled e; *rv is the result and extra gets what it found.
static bool
apply_more(
    hx_nemesis *nm, const hx_nem_event *e, dtx_err *rv, char *extra, size_t len)
{
	uint32_t id = e->targets[0];
	switch (e->action) {
	case HX_NA_PACKET:
		*rv = packet_on(nm, e, extra, len);
		return true;
	case HX_NA_PACKET_END:
		*rv = packet_off(nm, id, extra, len);
		return true;
	case HX_NA_SLOW_LINK:
		*rv = slow_on(nm, e, extra, len);
		return true;
	case HX_NA_SLOW_LINK_END:
		*rv = slow_off(nm, id);
		return true;
	case HX_NA_CORRUPT:
		*rv = corrupt(nm, e, extra, len);
		return true;
	case HX_NA_KILL_FOREVER:
		*rv = nm->cc != NULL ? hx_compose_kill(nm->cc, id)
		    : hx_cluster_pid(nm->cl, id) != 0
		    ? hx_cluster_signal(nm->cl, id, SIGKILL)
		    : DTX_OK;
		pthread_mutex_lock(&nm->mtx);
		nm->gone[id] = true;
		pthread_mutex_unlock(&nm->mtx);
		snprintf(extra, len, "\"forever\":true");
		return true;
	default:
		return false;
	}
}

static void
apply(hx_nemesis *nm, const hx_nem_event *e)
{
	dtx_err rv = DTX_OK, r;
	const dtx_topo *topo = hx_cluster_topo(nm->cl);
	char err[160], extra[PATH_MAX + 128] = "";
	if (nm->cc != NULL && apply_compose(nm, e, &rv)) {
		snprintf(err, sizeof(err), "%s", dtx_errname(rv));
		record(nm, e, rv == DTX_OK ? NULL : err, NULL);
		return;
	}
	if (apply_aimed(nm, e, &rv, extra, sizeof(extra)) ||
	    apply_more(nm, e, &rv, extra, sizeof(extra))) {
		snprintf(err, sizeof(err), "%s", dtx_errname(rv));
		record(nm, e, rv == DTX_OK ? NULL : err, extra);
		return;
	}
	switch (e->action) {
	case HX_NA_DISK:
		rv = hx_cluster_signal(nm->cl, e->targets[0], SIGKILL);
		nm->killed[e->targets[0]] = true;
		// What the daemon had not synced is gone before the tear.
		if (rv == DTX_OK)
			rv = hx_unsynced_rollback(
			    hx_cluster_data(nm->cl, e->targets[0]), NULL);
		if (rv == DTX_OK)
			rv = hx_nem_tear_wal(
			    hx_cluster_data(nm->cl, e->targets[0]), e, extra,
			    sizeof(extra));
		break;
	case HX_NA_KILL:
		for (uint32_t i = 0; i < e->ntargets; i++) {
			clock_before_kill(nm, e->targets[i]);
			if ((r = hx_cluster_signal(
			         nm->cl, e->targets[i], SIGKILL)) != DTX_OK)
				rv = r;
			nm->killed[e->targets[i]] = true;
		}
		break;
	case HX_NA_RESTART:
		for (uint32_t i = 0; i < e->ntargets; i++) {
			if ((r = restart(nm, e->targets[i])) != DTX_OK)
				rv = r;
			nm->killed[e->targets[i]] = false;
		}
		if (rv == DTX_OK)
			clock_after_restart(nm, e, extra, sizeof(extra));
		break;
	case HX_NA_PAUSE:
	case HX_NA_RESUME:
		for (uint32_t i = 0; i < e->ntargets; i++) {
			int sig = e->action == HX_NA_PAUSE ? SIGSTOP : SIGCONT;
			if ((r = hx_cluster_signal(
			         nm->cl, e->targets[i], sig)) != DTX_OK)
				rv = r;
			nm->paused[e->targets[i]] = e->action == HX_NA_PAUSE;
		}
		break;
	case HX_NA_PARTITION:
		nm->partitioned = true;
		if (e->onset_ms > 0 && hx_cluster_is_netns(nm->cl)) {
			onset(nm, e);
			return;
		}
		rv = hx_cluster_is_netns(nm->cl)
		    ? hx_netns_partition(
		          hx_cluster_netns_prefix(nm->cl), topo, &e->grudge)
		    : partition_inproc(nm, &e->grudge);
		break;
	case HX_NA_HEAL:
		rv = hx_cluster_is_netns(nm->cl)
		    ? hx_netns_heal(hx_cluster_netns_prefix(nm->cl), topo)
		    : partition_inproc(nm, NULL);
		nm->partitioned = false;
		break;
	case HX_NA_CLOCK_BUMP:
		for (uint32_t i = 0; i < e->ntargets; i++) {
			if ((r = set_clock(
			         nm, e->targets[i], e->offset_ms[i])) != DTX_OK)
				rv = r;
			nm->clocked[e->targets[i]] = true;
		}
		break;
	case HX_NA_CLOCK_STROBE:
		// Recorded first: the strobe runs for a while.
		for (uint32_t i = 0; i < e->ntargets; i++)
			nm->clocked[e->targets[i]] = true;
		record(nm, e, NULL, NULL);
		uint64_t end =
		    dtx_mono_ns() + (uint64_t)e->strobe_ms * 1000000u;
		bool high = true;
		while (!atomic_load(&nm->stop) && dtx_mono_ns() < end) {
			for (uint32_t i = 0; i < e->ntargets; i++)
				set_clock(nm, e->targets[i],
				    high ? e->strobe_delta_ms : 0);
			high = !high;
			dtx_sleep_ms(e->strobe_period_ms);
		}
		return;
	case HX_NA_CLOCK_RESET:
		for (uint32_t i = 0; i < e->ntargets; i++) {
			if ((r = set_clock(nm, e->targets[i], 0)) != DTX_OK)
				rv = r;
			nm->clocked[e->targets[i]] = false;
		}
		break;
	default:
		rv = DTX_EINVAL;
	}
	snprintf(err, sizeof(err), "%s", dtx_errname(rv));
	record(nm, e, rv == DTX_OK ? NULL : err, extra);
}

static void *
run(void *arg)
{
	hx_nemesis *nm = arg;
	for (size_t i = 0; i < nm->n; i++) {
		if (!nap_until(nm, nm->t0 + nm->ev[i].at_ms * 1000000u))
			break;
		apply(nm, &nm->ev[i]);
	}
	return NULL;
}

dtx_err
hx_nemesis_start(hx_cluster *cl, hx_compose *cc, bool own, hx_conn *conn,
    hx_history *h, const hx_nem_event *ev, size_t n, hx_nemesis **out)
{
	hx_nemesis *nm = dtx_calloc(1, sizeof(*nm));
	if (nm == NULL)
		return DTX_ENOMEM;
	nm->cl = cl;
	nm->cc = cc;
	nm->own = own;
	nm->conn = conn;
	// Its own clients, which it may dial afresh (nem_fault): those of
	// the run are shared with other threads.
	char cerr[256];
	if (cl != NULL && cc == NULL &&
	    hx_cluster_conn(cl, true, &nm->own_conn, cerr, sizeof(cerr)) ==
	        DTX_OK) {
		nm->conn = nm->own_conn;
		// Connected and through the hello before the first fault.
		(void)hx_conn_wait_ready(nm->own_conn, 5000);
	}
	nm->h = h;
	nm->n = n;
	snprintf(nm->current, sizeof(nm->current), "none");
	pthread_mutex_init(&nm->mtx, NULL);
	atomic_init(&nm->stop, false);
	for (size_t i = 0; i < n; i++)
		if (hx_nem_action_starts(ev[i].action))
			nm->planned |= 1u << action_kind(ev[i].action);
	if (n > 0) {
		nm->ev = dtx_memdup(ev, n * sizeof(*ev));
		if (nm->ev == NULL) {
			hx_nemesis_free(nm);
			return DTX_ENOMEM;
		}
	}
	nm->t0 = dtx_mono_ns();
	if (pthread_create(&nm->th, NULL, run, nm) != 0) {
		hx_nemesis_free(nm);
		return DTX_ENOMEM;
	}
	nm->running = true;
	*out = nm;
	return DTX_OK;
}

// Records the end of the faults of the kinds (bits of kind indexes) still
// open on the nodes ids[0..n): "faults":[their ids] in the value, so each
// window closes by its own id; more (may be NULL) is appended.
static void
heal_record_ex(hx_nemesis *nm, hx_nem_action a, const uint32_t *ids, uint32_t n,
    dtx_err rv, unsigned kinds, const char *more)
{
	hx_nem_event e;
	char err[64], extra[1024];
	uint32_t mask = 0;
	int at = snprintf(extra, sizeof(extra), "\"faults\":[");
	memset(&e, 0, sizeof(e));
	e.action = a;
	e.ntargets = n;
	memcpy(e.targets, ids, n * sizeof(uint32_t));
	for (uint32_t i = 0; i < n; i++)
		mask |= 1u << ids[i];
	for (size_t i = 0, first = 1; i < nm->nopen;) {
		const struct open_fault *o = &nm->open[i];
		if (!(kinds & (1u << o->kind)) || !(o->nodes & mask)) {
			i++;
			continue;
		}
		if (at < (int)sizeof(extra) - 16)
			at += snprintf(extra + at, sizeof(extra) - (size_t)at,
			    "%s%u", first ? "" : ",", o->id);
		first = 0;
		nm->open[i] = nm->open[--nm->nopen];
	}
	snprintf(extra + at, sizeof(extra) - (size_t)at, "]%s%s",
	    more && more[0] ? "," : "", more ? more : "");
	snprintf(err, sizeof(err), "%s", dtx_errname(rv));
	record(nm, &e, rv == DTX_OK ? NULL : err, extra);
}

static void
heal_record(hx_nemesis *nm, hx_nem_action a, const uint32_t *ids, uint32_t n,
    dtx_err rv, unsigned kinds)
{
	heal_record_ex(nm, a, ids, n, rv, kinds, NULL);
}

// Ends the packet faults still in force, each recorded with its id.
static void
heal_packets(hx_nemesis *nm)
{
	for (uint32_t i = 0; i < DTX_TOPO_MAX; i++) {
		if (!nm->pk_rules[i] && !nm->pk_netem[i] && !nm->pk_delay[i])
			continue;
		char extra[256] = "";
		dtx_err rv = packet_off(nm, i, extra, sizeof(extra));
		heal_record_ex(
		    nm, HX_NA_PACKET_END, &i, 1, rv, 1u << K_PACKET, extra);
	}
}

void
hx_nemesis_stop(hx_nemesis *nm)
{
	if (nm == NULL || nm->healed)
		return;
	atomic_store(&nm->stop, true);
	if (nm->running)
		pthread_join(nm->th, NULL);
	nm->running = false;
	nm->healed = true;

	const dtx_topo *topo = hx_cluster_topo(nm->cl);
	uint32_t ids[DTX_TOPO_MAX], k = 0;
	dtx_err rv = DTX_OK, r;
	char died[256] = "\"died_unexpectedly\":[";
	size_t dl = strlen(died), d0 = dl;
	// A crash point still armed is disarmed (or was reached: restart).
	watch_crashes(nm);
	for (uint32_t i = 0; i < DTX_TOPO_MAX; i++)
		if (nm->armed[i][0] != '\0') {
			nm->armed[i][0] = '\0';
			rv = nem_fault(
			    nm, i, "crash_at", (int64_t[]) { 1 }, 1, "-");
			heal_record_ex(nm, HX_NA_CRASH_END, &i, 1, rv,
			    1u << K_CRASH, "\"hit\":false");
		}
	rv = DTX_OK;
	heal_packets(nm);
	heal_slow(nm);
	// Resume, then restart: a paused daemon must not hold a port.
	for (uint32_t i = 0; i < DTX_TOPO_MAX; i++)
		if (nm->paused[i]) {
			r = nm->cc != NULL
			    ? hx_compose_unpause(nm->cc, i)
			    : hx_cluster_signal(nm->cl, i, SIGCONT);
			if (r != DTX_OK)
				rv = r;
			nm->paused[i] = false;
			ids[k++] = i;
		}
	if (k > 0)
		heal_record(nm, HX_NA_RESUME, ids, k, rv, 1u << K_PAUSE);
	k = 0;
	rv = DTX_OK;
	for (uint32_t i = 0; i < topo->n; i++) {
		const dtx_node *nd = &topo->nodes[i];
		// Restart what the nemesis killed, and, in a cluster started
		// for this run, any daemon that died; a cluster we only
		// connected to has processes we do not manage.
		bool dead = nm->cc == NULL && nm->own &&
		    hx_cluster_pid(nm->cl, nd->id) == 0;
		if (nd->role == DTX_ROLE_CLIENT || nm->gone[nd->id] ||
		    !(nm->killed[nd->id] || dead))
			continue;
		// Dead though no fault killed it: a crash of its own.
		if (!nm->killed[nd->id] && dl < sizeof(died) - 16)
			dl += (size_t)snprintf(died + dl, sizeof(died) - dl,
			    "%s%u", dl > d0 ? "," : "", nd->id);
		if ((r = restart(nm, nd->id)) != DTX_OK)
			rv = r;
		nm->killed[nd->id] = false;
		nm->up_at[nd->id] = 0;
		ids[k++] = nd->id;
	}
	if (k > 0)
		heal_record_ex(nm, HX_NA_RESTART, ids, k, rv,
		    1u << K_KILL | 1u << K_DISK | 1u << K_LOSE | 1u << K_CRASH |
		        1u << K_CORRUPT,
		    dl > d0 ? strcat(died, "]") : NULL);
	if (nm->partitioned) {
		k = 0;
		hx_nem_targets(topo, HX_TARGET_ANY, ids, &k);
		rv = nm->cc != NULL ? hx_compose_heal(nm->cc)
		    : hx_cluster_is_netns(nm->cl)
		    ? hx_netns_heal(hx_cluster_netns_prefix(nm->cl), topo)
		    : partition_inproc(nm, NULL);
		nm->partitioned = false;
		heal_record(nm, HX_NA_HEAL, ids, k, rv, 1u << K_PART);
	}
	k = 0;
	rv = DTX_OK;
	for (uint32_t i = 0; i < DTX_TOPO_MAX; i++)
		if (nm->clocked[i]) {
			if ((r = set_clock(nm, i, 0)) != DTX_OK)
				rv = r;
			nm->clocked[i] = false;
			ids[k++] = i;
		}
	if (k > 0)
		heal_record(nm, HX_NA_CLOCK_RESET, ids, k, rv, 1u << K_CLOCK);
	set_current(nm, "none");
}

void
hx_nemesis_free(hx_nemesis *nm)
{
	if (nm == NULL)
		return;
	if (nm->running) {
		atomic_store(&nm->stop, true);
		pthread_join(nm->th, NULL);
	}
	pthread_mutex_destroy(&nm->mtx);
	hx_conn_close(nm->own_conn);
	dtx_free(nm->ev);
	dtx_free(nm);
}

uint32_t
hx_nemesis_gone(const hx_nemesis *nm)
{
	uint32_t bits = 0;
	if (nm == NULL)
		return 0;
	hx_nemesis *m = (hx_nemesis *)nm;
	pthread_mutex_lock(&m->mtx);
	for (uint32_t i = 0; i < DTX_TOPO_MAX; i++)
		if (m->gone[i])
			bits |= 1u << i;
	pthread_mutex_unlock(&m->mtx);
	return bits;
}

void
hx_nemesis_counts(
    const hx_nemesis *nm, size_t started[HX_NEM_NKINDS], size_t *errors)
{
	hx_nemesis *m = (hx_nemesis *)nm;
	pthread_mutex_lock(&m->mtx);
	memcpy(started, m->started, sizeof(m->started));
	if (errors != NULL)
		*errors = m->errors;
	pthread_mutex_unlock(&m->mtx);
}

void
hx_nemesis_current(hx_nemesis *nm, char *buf, size_t len)
{
	pthread_mutex_lock(&nm->mtx);
	snprintf(buf, len, "%s", nm->current);
	pthread_mutex_unlock(&nm->mtx);
}

unsigned
hx_nemesis_not_run(hx_nemesis *nm, unsigned kinds, char *why, size_t len)
{
	unsigned bits = 0;
	size_t at = 0;
	why[0] = '\0';
	pthread_mutex_lock(&nm->mtx);
	for (int k = 0; k < HX_NEM_NKINDS; k++) {
		if (!(kinds & (1u << k)) || nm->ok_starts[k] > 0)
			continue;
		const char *r = !(nm->planned & (1u << k))
		    ? "not planned (the run is too short, or no target can "
		      "take it)"
		    : nm->started[k] == 0 ? "planned, but the run ended first"
		                          : "every attempt failed";
		bits |= 1u << k;
		if (at < len)
			at += (size_t)snprintf(why + at, len - at, "%s%s: %s",
			    at ? "; " : "", kind_names[k], r);
	}
	pthread_mutex_unlock(&nm->mtx);
	return bits;
}
