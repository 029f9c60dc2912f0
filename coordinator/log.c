// SPDX-License-Identifier: MIT
//
// The decision log: a stor_wal in <data>/log holding the coordinator's
// decisions, replayed into the transaction table at open and
// checkpointed so that a restart reads only the decisions still pending.
//
// Record payloads (type byte in the WAL record header; integers
// little-endian):
//
//   COMMIT (1), PRECOMMIT (4): 20 + 4n bytes
//     0   8  txid
//     8   8  commit timestamp (clk_ts)
//     16  1  mode (proto_mode)
//     17  1  n: number of participants, 1..COORD_MAX_PARTS
//     18  2  zero
//     20  4n participant node ids (uint32 each)
//   ABORT (2), END (3): 8 bytes, the txid
//
// Checkpoint blob: "DTXCOCK1" (8 bytes), count (uint32), then per pending
// decision 24 + 4n bytes: state (1: uint8, COORD_COMMITTED or
// COORD_PRECOMMITTED), mode (1), n (1), zero (1), zero (4), txid (8),
// commit timestamp (8), n participant ids (4 each).

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coordinator_int.h"

#define REC_COMMIT 1
#define REC_ABORT 2
#define REC_END 3
#define REC_PRECOMMIT 4
#define CKPT_MAGIC "DTXCOCK1"

// Installs a pending decision found in the log. Caller holds c->mu (or is
// the only thread, at open).
static dtx_err
load_decision(coord *c, uint64_t txid, coord_state st, proto_mode mode,
    clk_ts cts, uint32_t n, const uint8_t *parts)
{
	coord_tx *t;
	dtx_err rv = coord__tx_insert(c, txid, &t);
	if (rv != DTX_OK && rv != DTX_EEXIST)
		return rv;
	if (rv == DTX_EEXIST && t->state == COORD_ENDED)
		return DTX_OK; // an END already seen: nothing left to do
	t->mode = mode;
	t->cts = cts;
	t->nparts = n;
	for (uint32_t i = 0; i < n; i++)
		t->parts[i] = dtx_get_le32(parts + 4 * i);
	t->acked = 0;
	t->recovered = true;
	t->redrive = st == COORD_COMMITTED;
	t->resolve = st == COORD_PRECOMMITTED;
	t->next_try_ns = 0;
	coord__tx_state(c, t, st);
	return DTX_OK;
}

static dtx_err
on_ckpt(void *arg, uint64_t lsn, const void *blob, size_t len)
{
	coord *c = arg;
	const uint8_t *p = blob;
	(void)lsn;
	if (len < 12 || memcmp(p, CKPT_MAGIC, 8) != 0)
		return DTX_ECORRUPT;
	uint32_t count = dtx_get_le32(p + 8);
	size_t off = 12;
	for (uint32_t i = 0; i < count; i++) {
		if (len - off < 24)
			return DTX_ECORRUPT;
		uint8_t st = p[off], mode = p[off + 1], n = p[off + 2];
		if ((st != COORD_COMMITTED && st != COORD_PRECOMMITTED) ||
		    mode > PROTO_MODE_3PC || n < 1 || n > COORD_MAX_PARTS ||
		    len - off - 24 < 4u * n)
			return DTX_ECORRUPT;
		dtx_err rv = load_decision(c, dtx_get_le64(p + off + 8),
		    (coord_state)st, (proto_mode)mode,
		    dtx_get_le64(p + off + 16), n, p + off + 24);
		if (rv != DTX_OK)
			return rv;
		off += 24 + 4u * n;
	}
	return off == len ? DTX_OK : DTX_ECORRUPT;
}

static dtx_err
on_rec(void *arg, uint64_t lsn, uint8_t type, const void *payload, size_t len)
{
	coord *c = arg;
	const uint8_t *p = payload;
	(void)lsn;
	if (type == REC_COMMIT || type == REC_PRECOMMIT) {
		if (len < 20)
			return DTX_ECORRUPT;
		uint8_t mode = p[16], n = p[17];
		if (mode > PROTO_MODE_3PC || n < 1 || n > COORD_MAX_PARTS ||
		    len != 20u + 4u * n)
			return DTX_ECORRUPT;
		return load_decision(c, dtx_get_le64(p),
		    type == REC_COMMIT ? COORD_COMMITTED : COORD_PRECOMMITTED,
		    (proto_mode)mode, dtx_get_le64(p + 8), n, p + 20);
	}
	if ((type == REC_ABORT || type == REC_END) && len == 8) {
		coord_tx *t = coord__tx_find(c, dtx_get_le64(p));
		if (t == NULL)
			return DTX_OK;
		if (type == REC_END)
			coord__tx_end(c, t);
		else
			coord__tx_remove(c, t);
		return DTX_OK;
	}
	return DTX_ECORRUPT;
}

// The decision log's fsync: fails with EIO while a "wal_sync" FAULT asks
// for it, so tests can see what a failing disk does to a decision.
static int
sync_hook(void *arg, int fd)
{
	coord *c = arg;
	if (proto_fault_sync_due(&c->fail_syncs))
		return EIO;
	return fdatasync(fd) == 0 ? 0 : errno;
}

dtx_err
coord__log_open(coord *c)
{
	char dir[PATH_MAX];
	const proto_daemon_cfg *dc = proto_daemon_config(c->d);
	snprintf(dir, sizeof(dir), "%s/log", dc->data);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		dtx_err rv = dtx_from_errno(errno);
		DTX_LOG(DTX_LOG_ERROR, "LOG_DIR", "cannot create %s: %s", dir,
		    dtx_strerror(rv));
		return rv;
	}
	stor_wal_opts o;
	stor_wal_opts_init(&o);
	o.sync_fn = sync_hook;
	o.hook_arg = c;
	dtx_err rv = stor_wal_open(dir, &o, on_ckpt, on_rec, c, &c->wal);
	if (rv != DTX_OK) {
		DTX_LOG(DTX_LOG_ERROR, "LOG_OPEN", "cannot open %s: %s", dir,
		    dtx_strerror(rv));
		return rv;
	}
	stor_wal_stats st;
	stor_wal_stats_get(c->wal, &st);
	c->ckpt_lsn = st.checkpoint_lsn;
	size_t n = 0;
	for (coord_tx *t = c->pending.pnext; t != &c->pending; t = t->pnext)
		n++;
	atomic_store(&c->n_recovered, n);
	DTX_LOG(DTX_LOG_INFO, "LOG_REPLAY",
	    "replayed %llu records after checkpoint %llu: %zu decisions "
	    "pending",
	    (unsigned long long)st.replayed,
	    (unsigned long long)st.checkpoint_lsn, n);
	return DTX_OK;
}

void
coord__log_close(coord *c)
{
	stor_wal_close(c->wal);
	c->wal = NULL;
}

dtx_err
coord__log_decision(coord *c, const coord_tx *t, bool pre, uint64_t *lsn)
{
	uint8_t buf[20 + 4 * COORD_MAX_PARTS];
	memset(buf, 0, 20);
	dtx_put_le64(buf, t->txid);
	dtx_put_le64(buf + 8, t->cts);
	buf[16] = (uint8_t)t->mode;
	buf[17] = (uint8_t)t->nparts;
	for (uint32_t i = 0; i < t->nparts; i++)
		dtx_put_le32(buf + 20 + 4 * i, t->parts[i]);
	return stor_wal_append(c->wal, pre ? REC_PRECOMMIT : REC_COMMIT, buf,
	    20 + 4 * t->nparts, false, lsn);
}

dtx_err
coord__log_abort(coord *c, uint64_t txid)
{
	uint8_t buf[8];
	dtx_put_le64(buf, txid);
	return stor_wal_append(c->wal, REC_ABORT, buf, 8, false, NULL);
}

dtx_err
coord__log_end(coord *c, uint64_t txid)
{
	uint8_t buf[8];
	dtx_put_le64(buf, txid);
	return stor_wal_append(c->wal, REC_END, buf, 8, false, NULL);
}

dtx_err
coord__log_checkpoint(coord *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t lsn = stor_wal_last_lsn(c->wal);
	if (lsn == c->ckpt_lsn) {
		pthread_mutex_unlock(&c->mu);
		return DTX_OK;
	}
	size_t cap = 12, count = 0;
	for (coord_tx *t = c->pending.pnext; t != &c->pending; t = t->pnext)
		if (t->state != COORD_VOTING)
			cap += 24 + 4u * t->nparts;
	uint8_t *blob = dtx_alloc(cap);
	if (blob == NULL) {
		pthread_mutex_unlock(&c->mu);
		return DTX_ENOMEM;
	}
	size_t off = 12;
	for (coord_tx *t = c->pending.pnext; t != &c->pending; t = t->pnext) {
		if (t->state == COORD_VOTING)
			continue;
		// A DECIDING entry's COMMIT record lies below lsn, and the
		// checkpoint makes it durable first: it is a commit.
		memset(blob + off, 0, 24);
		blob[off] = (uint8_t)(t->state == COORD_PRECOMMITTED
		        ? COORD_PRECOMMITTED
		        : COORD_COMMITTED);
		blob[off + 1] = (uint8_t)t->mode;
		blob[off + 2] = (uint8_t)t->nparts;
		dtx_put_le64(blob + off + 8, t->txid);
		dtx_put_le64(blob + off + 16, t->cts);
		for (uint32_t i = 0; i < t->nparts; i++)
			dtx_put_le32(blob + off + 24 + 4 * i, t->parts[i]);
		off += 24 + 4u * t->nparts;
		count++;
	}
	pthread_mutex_unlock(&c->mu);
	memcpy(blob, CKPT_MAGIC, 8);
	dtx_put_le32(blob + 8, (uint32_t)count);
	dtx_err rv = stor_wal_checkpoint(c->wal, lsn, 0, blob, off);
	dtx_free(blob);
	if (rv == DTX_OK) {
		c->ckpt_lsn = lsn;
		atomic_fetch_add(&c->n_checkpoints, 1);
	} else {
		DTX_LOG(DTX_LOG_WARN, "LOG_CKPT",
		    "checkpoint at %llu failed: %s", (unsigned long long)lsn,
		    dtx_strerror(rv));
	}
	return rv;
}
