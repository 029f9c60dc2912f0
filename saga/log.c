// SPDX-License-Identifier: MIT
//
// The saga log: encoding and parsing of its records (formats in
// saga_int.h), applying a record to the in-memory table (the one code path
// for replay and for live appends, so that what recovery rebuilds is
// exactly what the running orchestrator had; a live BEGIN copies its steps
// from the request the record encodes rather than decoding them again),
// and checkpoints of the table.

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "saga_int.h"

// ---------------------------------------------------------------- encoders

void
saga__buf_str(dtx_buf *b, const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	if (n > PROTO_MAX_STR)
		n = PROTO_MAX_STR;
	dtx_buf_u16(b, (uint16_t)n);
	dtx_buf_put(b, s, n);
}

void
saga__enc_step(dtx_buf *b, const char *gid, uint32_t step, proto_phase ph,
    bool finished, proto_step_result res, const char *why)
{
	saga__buf_str(b, gid);
	dtx_buf_u32(b, step);
	dtx_buf_u8(b, (uint8_t)ph);
	dtx_buf_u8(b, finished ? 1 : 0);
	dtx_buf_u8(b, (uint8_t)res);
	saga__buf_str(b, why);
}

void
saga__enc_comp(dtx_buf *b, const char *gid, int32_t failed, const char *why)
{
	saga__buf_str(b, gid);
	dtx_buf_u32(b, (uint32_t)failed);
	saga__buf_str(b, why);
}

void
saga__enc_end(dtx_buf *b, const char *gid, proto_saga_state st, int32_t failed,
    uint64_t submit_wall_ms, const char *why)
{
	saga__buf_str(b, gid);
	dtx_buf_u8(b, (uint8_t)st);
	dtx_buf_u32(b, (uint32_t)failed);
	dtx_buf_u64(b, submit_wall_ms);
	saga__buf_str(b, why);
}

dtx_err
saga__bid_new(saga *s, char *out)
{
	clk_ts ts;
	uint64_t rnd;
	dtx_err rv = clk_node_local(proto_daemon_clock(s->d), &ts);
	if (rv == DTX_OK)
		rv = dtx_random_u64(&rnd);
	if (rv != DTX_OK)
		return rv;
	snprintf(out, SAGA_BID_LEN + 1, "s%016" PRIx64 "-%016" PRIx64,
	    (uint64_t)ts, rnd);
	return DTX_OK;
}

dtx_err
saga__enc_begin(dtx_buf *b, const proto_saga_submit *sub,
    uint64_t submit_wall_ms, const char *bid)
{
	proto_msg m;
	uint8_t *enc = NULL;
	size_t n = 0;

	proto_msg_init(&m, PROTO_SAGA_SUBMIT);
	m.hdr.version = PROTO_VERSION;
	m.u.saga_submit = *sub; // borrowed for the encoding only
	dtx_err rv = proto_encode_buf(&m, &enc, &n);
	if (rv != DTX_OK)
		return rv;
	saga__buf_str(b, sub->gid);
	dtx_buf_u64(b, submit_wall_ms);
	dtx_buf_u32(b, (uint32_t)n);
	dtx_buf_put(b, enc, n);
	saga__buf_str(b, bid);
	dtx_free(enc);
	return b->oom ? DTX_ENOMEM : DTX_OK;
}

// ---------------------------------------------------------------- parsing

// Reads a u16-prefixed string into buf (size PROTO_MAX_STR + 1). A NUL
// inside is damage.
static void
rd_str(dtx_rd *r, char *buf)
{
	size_t n = (size_t)dtx_rd_u16(r);
	const uint8_t *p = dtx_rd_bytes(r, n);
	buf[0] = '\0';
	if (p == NULL)
		return;
	if (n > PROTO_MAX_STR || memchr(p, 0, n) != NULL) {
		r->bad = true;
		return;
	}
	memcpy(buf, p, n);
	buf[n] = '\0';
}

static dtx_err
set_reason(saga__rec *r, const char *why)
{
	if (why[0] == '\0')
		return DTX_OK;
	char *c = dtx_strdup(why);
	if (c == NULL)
		return DTX_ENOMEM;
	dtx_free(r->reason);
	r->reason = c;
	return DTX_OK;
}

// Creates a saga from a BEGIN record's SAGA_SUBMIT bytes (decoded again,
// strictly: the log's bytes are checked like a peer's).
static dtx_err
rec_new(const char *gid, const uint8_t *enc, size_t n, saga__rec **out)
{
	saga__rec *r = dtx_calloc(1, sizeof(*r));
	if (r == NULL)
		return DTX_ENOMEM;
	r->failed_step = -1;
	r->gid = dtx_strdup(gid);
	if (r->gid == NULL) {
		saga__rec_free(r);
		return DTX_ENOMEM;
	}
	if (enc != NULL) {
		proto_msg m;
		char why[128];
		dtx_err rv = proto_decode(enc, n, NULL, &m, why, sizeof(why));
		if (rv == DTX_OK &&
		    (m.hdr.type != PROTO_SAGA_SUBMIT ||
		        strcmp(m.u.saga_submit.gid, gid) != 0))
			rv = DTX_ECORRUPT;
		if (rv != DTX_OK) {
			proto_msg_free(&m);
			saga__rec_free(r);
			return rv == DTX_ENOMEM ? DTX_ENOMEM : DTX_ECORRUPT;
		}
		// Take the steps (and their keys) out of the message.
		r->n_steps = m.u.saga_submit.n_steps;
		r->steps = m.u.saga_submit.steps;
		m.u.saga_submit.steps = NULL;
		m.u.saga_submit.n_steps = 0;
		proto_msg_free(&m);
		r->st = dtx_calloc(r->n_steps, 1);
		if (r->st == NULL) {
			saga__rec_free(r);
			return DTX_ENOMEM;
		}
	}
	*out = r;
	return DTX_OK;
}

// Makes r (new, with its steps) a running saga in the table: what a BEGIN
// record means. Frees r on failure.
static dtx_err
begin_insert(saga *s, saga__rec *r, uint64_t wall, saga__rec **out)
{
	r->state = PROTO_SAGA_RUNNING;
	r->submit_wall_ms = wall;
	if (r->n_steps > 0)
		r->st[0] = PROTO_SS_RUNNING; // BEGIN starts step 0
	dtx_err rv = saga__insert(s, r);
	if (rv != DTX_OK) {
		saga__rec_free(r);
		return rv;
	}
	s->unfinished++;
	*out = r;
	return DTX_OK;
}

static dtx_err
apply_begin(saga *s, dtx_rd *in, saga__rec **out)
{
	char gid[PROTO_MAX_STR + 1];
	rd_str(in, gid);
	uint64_t wall = dtx_rd_u64(in);
	size_t n = (size_t)dtx_rd_u32(in);
	const uint8_t *enc = dtx_rd_bytes(in, n);
	char bid[PROTO_MAX_STR + 1];
	if (in->off < in->len)
		rd_str(in, bid);
	else
		snprintf(bid, sizeof(bid), "%s", gid); // written before bids
	if (in->bad || gid[0] == '\0' || bid[0] == '\0')
		return DTX_ECORRUPT;
	saga__rec *r = saga__find(s, gid);
	if (r != NULL) {
		*out = r; // already known (a checkpoint raced the record)
		return DTX_OK;
	}
	dtx_err rv = rec_new(gid, enc, n, &r);
	if (rv != DTX_OK)
		return rv;
	snprintf(r->bid, sizeof(r->bid), "%s", bid);
	return begin_insert(s, r, wall, out);
}

// Copies op's key and value (owned, so that proto_msg_free releases them).
static dtx_err
op_copy(proto_op *dst, const proto_op *src)
{
	*dst = *src;
	dst->key = (proto_bytes) { 0 };
	dst->value = (proto_bytes) { 0 };
	dtx_err rv = DTX_OK;
	if (src->key.n > 0)
		rv = proto_bytes_set(&dst->key, src->key.p, src->key.n);
	if (rv == DTX_OK && src->value.n > 0)
		rv = proto_bytes_set(&dst->value, src->value.p, src->value.n);
	return rv;
}

dtx_err
saga__apply_begin_live(saga *s, const proto_saga_submit *sub, uint64_t wall,
    const char *bid, saga__rec **out)
{
	saga__rec *r = saga__find(s, sub->gid);
	if (r != NULL) {
		*out = r;
		return DTX_OK;
	}
	dtx_err rv = rec_new(sub->gid, NULL, 0, &r);
	if (rv != DTX_OK)
		return rv;
	snprintf(r->bid, sizeof(r->bid), "%s", bid);
	r->steps = dtx_calloc(sub->n_steps, sizeof(*r->steps));
	r->st = dtx_calloc(sub->n_steps, 1);
	if (r->steps == NULL || r->st == NULL) {
		saga__rec_free(r);
		return DTX_ENOMEM;
	}
	r->n_steps = sub->n_steps;
	for (uint32_t i = 0; i < sub->n_steps && rv == DTX_OK; i++) {
		r->steps[i].participant = sub->steps[i].participant;
		rv = op_copy(&r->steps[i].action, &sub->steps[i].action);
		if (rv == DTX_OK)
			rv = op_copy(
			    &r->steps[i].compensate, &sub->steps[i].compensate);
	}
	if (rv != DTX_OK) {
		saga__rec_free(r);
		return rv;
	}
	return begin_insert(s, r, wall, out);
}

static dtx_err
apply_step(saga *s, dtx_rd *in, saga__rec **out)
{
	char gid[PROTO_MAX_STR + 1], why[PROTO_MAX_STR + 1];
	rd_str(in, gid);
	uint32_t i = (uint32_t)dtx_rd_u32(in);
	uint8_t ph = (uint8_t)dtx_rd_u8(in);
	uint8_t fin = (uint8_t)dtx_rd_u8(in);
	uint8_t res = (uint8_t)dtx_rd_u8(in);
	rd_str(in, why);
	if (in->bad || ph > PROTO_PHASE_COMPENSATE || fin > 1 ||
	    res > PROTO_STEP_FAILED)
		return DTX_ECORRUPT;
	saga__rec *r = saga__find(s, gid);
	if (r == NULL || i >= r->n_steps)
		return DTX_ECORRUPT;
	uint8_t st;
	if (ph == PROTO_PHASE_ACTION)
		st = !fin                  ? PROTO_SS_RUNNING
		    : res == PROTO_STEP_OK ? PROTO_SS_DONE
		                           : PROTO_SS_FAILED;
	else
		st = fin ? PROTO_SS_COMPENSATED : PROTO_SS_COMPENSATING;
	r->st[i] = st;
	if (ph == PROTO_PHASE_ACTION && fin)
		r->action_since_ns = 0;
	*out = r;
	return DTX_OK;
}

static dtx_err
apply_comp(saga *s, dtx_rd *in, saga__rec **out)
{
	char gid[PROTO_MAX_STR + 1], why[PROTO_MAX_STR + 1];
	rd_str(in, gid);
	int32_t failed = (int32_t)(uint32_t)dtx_rd_u32(in);
	rd_str(in, why);
	if (in->bad)
		return DTX_ECORRUPT;
	saga__rec *r = saga__find(s, gid);
	if (r == NULL)
		return DTX_ECORRUPT;
	if (r->state == PROTO_SAGA_RUNNING) {
		r->state = PROTO_SAGA_COMPENSATING;
		r->failed_step = failed;
		r->comp_since_ns = dtx_mono_ns();
		dtx_err rv = set_reason(r, why);
		if (rv != DTX_OK)
			return rv;
	}
	*out = r;
	return DTX_OK;
}

static dtx_err
apply_end(saga *s, dtx_rd *in, saga__rec **out)
{
	char gid[PROTO_MAX_STR + 1], why[PROTO_MAX_STR + 1];
	rd_str(in, gid);
	uint8_t st = (uint8_t)dtx_rd_u8(in);
	int32_t failed = (int32_t)(uint32_t)dtx_rd_u32(in);
	uint64_t wall = dtx_rd_u64(in);
	rd_str(in, why);
	if (in->bad || gid[0] == '\0' ||
	    (st != PROTO_SAGA_COMMITTED && st != PROTO_SAGA_ABORTED))
		return DTX_ECORRUPT;
	saga__rec *r = saga__find(s, gid);
	dtx_err rv;
	if (r == NULL) {
		// A finished saga from a checkpoint: its outcome only.
		if ((rv = rec_new(gid, NULL, 0, &r)) != DTX_OK)
			return rv;
		if ((rv = saga__insert(s, r)) != DTX_OK) {
			saga__rec_free(r);
			return rv;
		}
		r->submit_wall_ms = wall;
	} else if (r->state == PROTO_SAGA_COMMITTED ||
	    r->state == PROTO_SAGA_ABORTED) {
		*out = r;
		return DTX_OK;
	} else {
		s->unfinished--;
		if (r->recovered)
			s->recovering--;
	}
	r->state = (proto_saga_state)st;
	r->failed_step = failed;
	if ((rv = set_reason(r, why)) != DTX_OK)
		return rv;
	saga__finished(s, r);
	*out = r;
	return DTX_OK;
}

dtx_err
saga__apply(
    saga *s, uint8_t type, const void *payload, size_t len, saga__rec **rec)
{
	dtx_rd in = { .p = payload, .len = len };
	saga__rec *r = NULL;
	dtx_err rv;

	switch (type) {
	case SAGA__REC_BEGIN:
		rv = apply_begin(s, &in, &r);
		break;
	case SAGA__REC_STEP:
		rv = apply_step(s, &in, &r);
		break;
	case SAGA__REC_COMP:
		rv = apply_comp(s, &in, &r);
		break;
	case SAGA__REC_END:
		rv = apply_end(s, &in, &r);
		break;
	default:
		rv = DTX_ECORRUPT;
	}
	if (rv == DTX_OK && in.off != in.len)
		rv = DTX_ECORRUPT;
	if (rv == DTX_OK && rec != NULL)
		*rec = r;
	return rv;
}

dtx_err
saga__log_n(
    saga *s, const saga__logrec *recs, size_t n, bool force, uint64_t *lsn_out)
{
	uint64_t lsn = 0;
	dtx_err rv = DTX_OK;
	size_t i = 0;

	for (i = 0; i < n; i++)
		if (recs[i].b->oom)
			return DTX_ENOMEM;
	pthread_mutex_lock(&s->mu);
	for (i = 0; i < n && rv == DTX_OK; i++) {
		const dtx_buf *b = recs[i].b;
		rv = stor_wal_append(
		    s->wal, recs[i].type, b->p, b->len, false, &lsn);
		if (rv == DTX_OK)
			rv = saga__apply(s, recs[i].type, b->p, b->len, NULL);
	}
	pthread_mutex_unlock(&s->mu);
	// The WAL writes in LSN order: the last record durable means all are.
	if (rv == DTX_OK && force && lsn_out != NULL)
		*lsn_out = lsn;
	else if (rv == DTX_OK && force)
		rv = stor_wal_sync(s->wal, lsn);
	if (rv != DTX_OK)
		DTX_LOG(DTX_LOG_ERROR, "SAGA_LOG", "saga log record %u: %s",
		    recs[i > 0 ? i - 1 : 0].type, dtx_strerror(rv));
	return rv;
}

dtx_err
saga__log(saga *s, uint8_t type, const dtx_buf *b, bool force, uint64_t *lsn)
{
	saga__logrec rec = { .type = type, .b = b };
	return saga__log_n(s, &rec, 1, force, lsn);
}

// ---------------------------------------------------------------- open

static dtx_err
on_rec(void *arg, uint64_t lsn, uint8_t type, const void *payload, size_t len)
{
	saga *s = arg;
	dtx_err rv = saga__apply(s, type, payload, len, NULL);
	if (rv == DTX_ECORRUPT)
		DTX_LOG(DTX_LOG_ERROR, "SAGA_LOG_CORRUPT",
		    "saga log record %llu (type %u) does not parse",
		    (unsigned long long)lsn, type);
	return rv;
}

static dtx_err
on_ckpt(void *arg, uint64_t lsn, const void *blob, size_t len)
{
	saga *s = arg;
	dtx_rd in = { .p = blob, .len = len };
	(void)lsn;
	while (in.off < in.len) {
		uint8_t type = (uint8_t)dtx_rd_u8(&in);
		size_t n = (size_t)dtx_rd_u32(&in);
		const uint8_t *p = dtx_rd_bytes(&in, n);
		if (in.bad)
			return DTX_ECORRUPT;
		dtx_err rv = saga__apply(s, type, p, n, NULL);
		if (rv != DTX_OK)
			return rv;
	}
	return DTX_OK;
}

dtx_err
saga__log_open(saga *s)
{
	char dir[4096 + 16];
	stor_wal_opts o;

	stor_wal_opts_init(&o);
	o.sync = s->sync;
	snprintf(dir, sizeof(dir), "%s/log", proto_daemon_config(s->d)->data);
	pthread_mutex_lock(&s->mu);
	s->replaying = true;
	dtx_err rv = stor_wal_open(dir, &o, on_ckpt, on_rec, s, &s->wal);
	s->replaying = false;
	// Every saga still unfinished was interrupted: saga_start resumes it.
	for (size_t b = 0; rv == DTX_OK && b < s->nbuckets; b++)
		for (saga__rec *r = s->buckets[b]; r != NULL; r = r->hnext)
			if (r->state == PROTO_SAGA_RUNNING ||
			    r->state == PROTO_SAGA_COMPENSATING) {
				r->recovered = true;
				s->recovering++;
				saga__count(s, SAGA_CTR_RECOVERED);
				saga__enqueue(s, r);
			}
	pthread_mutex_unlock(&s->mu);
	if (rv != DTX_OK) {
		DTX_LOG(DTX_LOG_ERROR, "SAGA_LOG_OPEN", "cannot open %s: %s",
		    dir, dtx_strerror(rv));
		return rv;
	}
	stor_wal_stats ws;
	stor_wal_stats_get(s->wal, &ws);
	s->ckpt_bytes = 0;
	DTX_LOG(DTX_LOG_INFO, "SAGA_LOG_OPEN",
	    "%s: %zu sagas remembered, %zu unfinished to resume, %llu records "
	    "replayed",
	    dir, s->count, s->recovering, (unsigned long long)ws.replayed);
	return DTX_OK;
}

// ---------------------------------------------------------------- checkpoint

static void
blob_rec(dtx_buf *blob, uint8_t type, const dtx_buf *p)
{
	dtx_buf_u8(blob, type);
	dtx_buf_u32(blob, (uint32_t)p->len);
	dtx_buf_put(blob, p->p, p->len);
}

// Writes r as checkpoint records. saga->mu held.
static void
blob_saga(dtx_buf *blob, const saga__rec *r)
{
	dtx_buf p = { 0 };
	if (r->state == PROTO_SAGA_COMMITTED ||
	    r->state == PROTO_SAGA_ABORTED) {
		saga__enc_end(&p, r->gid, r->state, r->failed_step,
		    r->submit_wall_ms, r->reason);
		blob_rec(blob, SAGA__REC_END, &p);
		dtx_buf_fini(&p);
		return;
	}
	proto_saga_submit sub = {
		.gid = r->gid, .n_steps = r->n_steps, .steps = r->steps
	};
	if (saga__enc_begin(&p, &sub, r->submit_wall_ms, r->bid) != DTX_OK) {
		blob->oom = true;
		dtx_buf_fini(&p);
		return;
	}
	blob_rec(blob, SAGA__REC_BEGIN, &p);
	for (uint32_t i = 0; i < r->n_steps; i++) {
		uint8_t st = r->st[i];
		if (st == PROTO_SS_PENDING ||
		    (i == 0 && st == PROTO_SS_RUNNING))
			continue;
		p.len = 0;
		if (st == PROTO_SS_RUNNING)
			saga__enc_step(&p, r->gid, i, PROTO_PHASE_ACTION, false,
			    PROTO_STEP_OK, NULL);
		else if (st == PROTO_SS_DONE || st == PROTO_SS_FAILED)
			saga__enc_step(&p, r->gid, i, PROTO_PHASE_ACTION, true,
			    st == PROTO_SS_DONE ? PROTO_STEP_OK
			                        : PROTO_STEP_FAILED,
			    NULL);
		else
			saga__enc_step(&p, r->gid, i, PROTO_PHASE_COMPENSATE,
			    st == PROTO_SS_COMPENSATED, PROTO_STEP_OK, NULL);
		blob_rec(blob, SAGA__REC_STEP, &p);
	}
	if (r->state == PROTO_SAGA_COMPENSATING) {
		p.len = 0;
		saga__enc_comp(&p, r->gid, r->failed_step, r->reason);
		blob_rec(blob, SAGA__REC_COMP, &p);
	}
	if (p.oom)
		blob->oom = true;
	dtx_buf_fini(&p);
}

dtx_err
saga__log_checkpoint(saga *s, bool force)
{
	stor_wal_stats ws;
	dtx_buf blob = { 0 };

	stor_wal_stats_get(s->wal, &ws);
	if (!force &&
	    ws.bytes - s->ckpt_bytes < (uint64_t)s->cfg->checkpoint_bytes)
		return DTX_OK;
	pthread_mutex_lock(&s->mu);
	uint64_t lsn = stor_wal_last_lsn(s->wal);
	for (size_t b = 0; b < s->nbuckets; b++)
		for (saga__rec *r = s->buckets[b]; r != NULL; r = r->hnext)
			blob_saga(&blob, r);
	pthread_mutex_unlock(&s->mu);
	dtx_err rv = blob.oom ? DTX_ENOMEM : DTX_OK;
	if (rv == DTX_OK && lsn > 0)
		rv = stor_wal_checkpoint(s->wal, lsn, 0, blob.p, blob.len);
	if (rv == DTX_OK) {
		s->ckpt_bytes = ws.bytes;
		saga__count(s, SAGA_CTR_CHECKPOINTS);
		DTX_LOG(DTX_LOG_INFO, "SAGA_CHECKPOINT",
		    "checkpoint at LSN %llu: %zu bytes",
		    (unsigned long long)lsn, blob.len);
	} else {
		DTX_LOG(DTX_LOG_WARN, "SAGA_CHECKPOINT",
		    "checkpoint failed: %s", dtx_strerror(rv));
	}
	dtx_buf_fini(&blob);
	return rv;
}
