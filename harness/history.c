// SPDX-License-Identifier: MIT
//
// The run history: an append-only list of Jepsen-style operations that many
// client threads write concurrently, stored in fixed-size blocks so that a
// pointer to an op stays valid while others append.

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "harness_int.h"

#define BLOCK_OPS 1024

struct hx_history {
	pthread_mutex_t mu;
	uint64_t start_ns;
	hx_op **blocks;
	size_t nblocks;
	size_t blocks_cap;
	size_t len;
};

static const char *const type_names[] = { "invoke", "ok", "fail", "info" };

const char *
hx_op_type_name(hx_op_type t)
{
	return (unsigned)t <= HX_OP_INFO ? type_names[t] : "?";
}

dtx_err
hx_op_type_parse(const char *s, hx_op_type *out)
{
	int i = hx__name_index(type_names, HX_OP_INFO + 1, s);
	if (i < 0)
		return DTX_EINVAL;
	*out = (hx_op_type)i;
	return DTX_OK;
}

const char *
hx_process_name(int64_t process, char *buf, size_t len)
{
	if (process == HX_PROC_NEMESIS)
		snprintf(buf, len, "nemesis");
	else
		snprintf(buf, len, "%lld", (long long)process);
	return buf;
}

hx_history *
hx_history_new(void)
{
	hx_history *h = dtx_calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	if (pthread_mutex_init(&h->mu, NULL) != 0) {
		dtx_free(h);
		return NULL;
	}
	h->start_ns = dtx_mono_ns();
	return h;
}

static void
op_fini(hx_op *op)
{
	dtx_free(op->f);
	dtx_free(op->value);
	dtx_free(op->error);
}

void
hx_history_free(hx_history *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->len; i++)
		op_fini(&h->blocks[i / BLOCK_OPS][i % BLOCK_OPS]);
	for (size_t b = 0; b < h->nblocks; b++)
		dtx_free(h->blocks[b]);
	dtx_free(h->blocks);
	pthread_mutex_destroy(&h->mu);
	dtx_free(h);
}

// Copies the strings outside the lock, then stamps and stores under it so
// that the index order and the time order agree.
static dtx_err
append(hx_history *h, bool stamp, int64_t time_ns, int64_t process,
    hx_op_type type, const char *f, const char *value_json, const char *error)
{
	if (h == NULL || f == NULL || f[0] == '\0' ||
	    (unsigned)type > HX_OP_INFO ||
	    (process < 0 && process != HX_PROC_NEMESIS))
		return DTX_EINVAL;
	if (value_json != NULL &&
	    !hx_json_valid(value_json, strlen(value_json)))
		return DTX_EINVAL;
	hx_op op = { 0 };
	op.process = process;
	op.type = type;
	op.f = dtx_strdup(f);
	op.value = value_json ? dtx_strdup(value_json) : NULL;
	op.error = error ? dtx_strdup(error) : NULL;
	if (op.f == NULL || (value_json && op.value == NULL) ||
	    (error && op.error == NULL))
		goto nomem;

	pthread_mutex_lock(&h->mu);
	if (h->len == h->nblocks * BLOCK_OPS) {
		if (h->nblocks == h->blocks_cap) {
			size_t cap = h->blocks_cap ? h->blocks_cap * 2 : 16;
			hx_op **nb =
			    dtx_realloc(h->blocks, cap * sizeof(*h->blocks));
			if (nb == NULL) {
				pthread_mutex_unlock(&h->mu);
				goto nomem;
			}
			h->blocks = nb;
			h->blocks_cap = cap;
		}
		hx_op *blk = dtx_alloc(BLOCK_OPS * sizeof(hx_op));
		if (blk == NULL) {
			pthread_mutex_unlock(&h->mu);
			goto nomem;
		}
		h->blocks[h->nblocks++] = blk;
	}
	op.index = (int64_t)h->len;
	op.time_ns = stamp ? (int64_t)(dtx_mono_ns() - h->start_ns) : time_ns;
	h->blocks[h->len / BLOCK_OPS][h->len % BLOCK_OPS] = op;
	h->len++;
	pthread_mutex_unlock(&h->mu);
	return DTX_OK;
nomem:
	op_fini(&op);
	return DTX_ENOMEM;
}

dtx_err
hx_history_add(hx_history *h, int64_t process, hx_op_type type, const char *f,
    const char *value_json, const char *error)
{
	return append(h, true, 0, process, type, f, value_json, error);
}

dtx_err
hx_history_append(hx_history *h, int64_t time_ns, int64_t process,
    hx_op_type type, const char *f, const char *value_json, const char *error)
{
	if (time_ns < 0)
		return DTX_EINVAL;
	return append(h, false, time_ns, process, type, f, value_json, error);
}

size_t
hx_history_len(const hx_history *h)
{
	hx_history *m = (hx_history *)h;
	pthread_mutex_lock(&m->mu);
	size_t n = m->len;
	pthread_mutex_unlock(&m->mu);
	return n;
}

const hx_op *
hx_history_get(const hx_history *h, size_t i)
{
	hx_history *m = (hx_history *)h;
	const hx_op *op = NULL;
	pthread_mutex_lock(&m->mu);
	if (i < m->len)
		op = &m->blocks[i / BLOCK_OPS][i % BLOCK_OPS];
	pthread_mutex_unlock(&m->mu);
	return op;
}

// An open op per process, found by binary search in a sorted table that
// grows as new processes appear.
typedef struct open_slot {
	int64_t process;
	int64_t op; // index of the open invocation, or -1
	const char *f;
} open_slot;

static open_slot *
find_slot(open_slot *slots, size_t n, int64_t process, size_t *pos)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (slots[mid].process < process)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	if (lo < n && slots[lo].process == process)
		return &slots[lo];
	return NULL;
}

dtx_err
hx_history_pairs(const hx_history *h, int64_t **out)
{
	size_t n = hx_history_len(h);
	int64_t *pair = dtx_alloc((n ? n : 1) * sizeof(*pair));
	open_slot *slots = NULL;
	size_t nslots = 0, cap = 0;
	if (pair == NULL)
		return DTX_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const hx_op *op = hx_history_get(h, i);
		pair[i] = -1;
		size_t pos;
		open_slot *s = find_slot(slots, nslots, op->process, &pos);
		if (s == NULL) {
			if (DTX_GROW(slots, nslots, cap, 16) != DTX_OK) {
				dtx_free(slots);
				dtx_free(pair);
				return DTX_ENOMEM;
			}
			memmove(&slots[pos + 1], &slots[pos],
			    (nslots - pos) * sizeof(*slots));
			slots[pos] = (open_slot) { op->process, -1, NULL };
			nslots++;
			s = &slots[pos];
		}
		bool nemesis = op->process == HX_PROC_NEMESIS;
		if (op->type == HX_OP_INVOKE ||
		    (nemesis && (s->op < 0 || strcmp(s->f, op->f) != 0))) {
			// A new invocation; one left open never completed.
			s->op = (int64_t)i;
			s->f = op->f;
		} else if (s->op >= 0) {
			pair[i] = s->op;
			pair[s->op] = (int64_t)i;
			s->op = -1;
			s->f = NULL;
		}
	}
	dtx_free(slots);
	*out = pair;
	return DTX_OK;
}

// ---------------------------------------------------------------- faults

// Which nemesis f ends which fault windows.
static const struct {
	const char *start, *end;
} windows[] = {
	{ "kill", "restart" },
	{ "pause", "resume" },
	{ "partition", "heal" },
	{ "netem", "heal" },
	{ "clock-bump", "clock-reset" },
	{ "clock-strobe", "clock-reset" },
	{ "disk", "restart" },
	{ "lose-unsynced", "restart" },
	{ "corrupt", "restart" },
	{ "crashpoint", "crashpoint-end" },
	{ "crashpoint", "crashpoint-hit" },
	{ "packet", "packet-end" },
	{ "slow-link", "slow-link-end" },
	// Never ends: no op has an empty f.
	{ "kill-forever", "" },
};
#define NWINDOWS (sizeof(windows) / sizeof(windows[0]))

// True when end closes a window that start opens; a NULL start or end
// stands for any, so is_window(NULL, f) asks whether f ends some window
// and is_window(f, NULL) whether a window opened by f has an end.
static bool
is_window(const char *start, const char *end)
{
	for (size_t i = 0; i < NWINDOWS; i++)
		if ((start == NULL || strcmp(start, windows[i].start) == 0) &&
		    (end == NULL || strcmp(end, windows[i].end) == 0))
			return true;
	return false;
}

void
hx_faults_free(hx_fault *f, size_t n)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		dtx_free(f[i].kind);
		dtx_free(f[i].targets);
		dtx_free(f[i].detail);
	}
	dtx_free(f);
}

// Renders the "targets" field of a nemesis value as text: "1,2" for an
// array, the string itself, or "" when absent.
static char *
targets_text(const char *value)
{
	hx_sb sb = { 0 };
	hx_jdoc *doc = NULL;
	hx_sb_printf(&sb, "%s", "");
	if (value != NULL &&
	    hx_json_parse(value, strlen(value), &doc, NULL, 0) == DTX_OK) {
		const hx_jv *t = hx_jv_get(hx_jdoc_root(doc), "targets");
		if (t && t->type == HX_JV_STR)
			hx_sb_printf(&sb, "%s", t->s);
		else if (t && t->type == HX_JV_NUM)
			hx_sb_printf(&sb, "%g", t->d);
		for (const hx_jv *m = t && t->type == HX_JV_ARR ? t->first
		                                                : NULL;
		     m; m = m->next) {
			if (m != t->first)
				hx_sb_printf(&sb, ",");
			if (m->type == HX_JV_STR)
				hx_sb_printf(&sb, "%s", m->s);
			else if (m->type == HX_JV_NUM)
				hx_sb_printf(&sb, "%g", m->d);
		}
	}
	hx_jdoc_free(doc);
	return hx_sb_take(&sb);
}

// The fault ids a nemesis value names ("fault":N when it starts or ends
// one fault, "faults":[N,...] when it ends several), up to max of them.
static size_t
value_ids(const char *value, uint32_t *ids, size_t max)
{
	hx_jdoc *doc = NULL;
	size_t k = 0;
	uint64_t v;
	if (value == NULL ||
	    hx_json_parse(value, strlen(value), &doc, NULL, 0) != DTX_OK)
		return 0;
	const hx_jv *root = hx_jdoc_root(doc);
	if (hx_jv_u64(hx_jv_get(root, "fault"), &v) == DTX_OK && v > 0 &&
	    v <= UINT32_MAX)
		ids[k++] = (uint32_t)v;
	const hx_jv *arr = hx_jv_get(root, "faults");
	for (const hx_jv *m = arr && arr->type == HX_JV_ARR ? arr->first : NULL;
	     m != NULL && k < max; m = m->next)
		if (hx_jv_u64(m, &v) == DTX_OK && v > 0 && v <= UINT32_MAX)
			ids[k++] = (uint32_t)v;
	hx_jdoc_free(doc);
	return k;
}

static bool
has_id(const uint32_t *ids, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

dtx_err
hx_faults_from_history(const hx_history *h, hx_fault **out, size_t *nout)
{
	hx_fault *f = NULL;
	uint32_t *wid = NULL; // each window's fault id (0: none recorded)
	size_t n = 0, cap = 0, wcap = 0;
	int64_t *pairs = NULL;
	dtx_err rv = hx_history_pairs(h, &pairs);
	if (rv != DTX_OK)
		return rv;
	size_t len = hx_history_len(h);
	for (size_t i = 0; i < len; i++) {
		const hx_op *op = hx_history_get(h, i);
		uint32_t ids[64];
		size_t nid = op->process == HX_PROC_NEMESIS
		    ? value_ids(op->value, ids, 64)
		    : 0;
		// Only a nemesis op's opening half starts or ends a window;
		// an op that names its fault stands alone (two kills in a row
		// are two faults, not an invocation and its completion).
		if (op->process != HX_PROC_NEMESIS ||
		    (nid == 0 && pairs[i] >= 0 && (size_t)pairs[i] < i))
			continue;
		const hx_op *done = nid == 0 && pairs[i] >= 0
		    ? hx_history_get(h, (size_t)pairs[i])
		    : op;
		if (is_window(NULL, op->f)) {
			// By id when both sides have one, else (histories
			// written before ids) every open window of its kinds.
			for (size_t k = 0; k < n; k++)
				if (f[k].end_ns < 0 &&
				    is_window(f[k].kind, op->f) &&
				    (nid == 0 || wid[k] == 0 ||
				        has_id(ids, nid, wid[k])))
					f[k].end_ns = done->time_ns;
			continue;
		}
		if (DTX_GROW(f, n, cap, 16) != DTX_OK ||
		    DTX_GROW(wid, n, wcap, 16) != DTX_OK)
			goto nomem;
		wid[n] = nid > 0 ? ids[0] : 0;
		hx_fault *w = &f[n];
		memset(w, 0, sizeof(*w));
		w->start_ns = op->time_ns;
		w->end_ns = is_window(op->f, NULL) ? -1 : done->time_ns;
		n++;
		const char *val = done->value ? done->value : op->value;
		w->kind = dtx_strdup(op->f);
		w->targets = targets_text(val);
		w->detail = val ? dtx_strdup(val) : NULL;
		if (w->kind == NULL || w->targets == NULL ||
		    (val && w->detail == NULL))
			goto nomem;
	}
	dtx_free(pairs);
	dtx_free(wid);
	*out = f;
	*nout = n;
	return DTX_OK;
nomem:
	dtx_free(pairs);
	dtx_free(wid);
	hx_faults_free(f, n);
	return DTX_ENOMEM;
}
