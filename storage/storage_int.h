// SPDX-License-Identifier: MIT
//
// Shared between storage/'s own files: the WAL's internal open with a
// durability hook, and the MVCC store's in-memory structures (key table,
// versions, transactions, outcomes, barriers) with the functions each
// file offers the others.
//
// Layering. Each file calls only into files of the layers below it (the
// numbers), never up:
//
//   8  store.c     open, close, stats: the only file that hands the WAL
//                  the store's three hooks (replay, checkpoint, durable)
//   7  txdist.c    PREPARE / PRECOMMIT / COMMIT / ABORT, in-doubt list;
//                  uses txlocal.c's validation and hand-over
//      heur.c      heuristic decisions of in-doubt transactions and
//                  their verdicts
//      txlocal.c   stor_txn: snapshot reads, buffered writes, local commit
//   6  ckpt.c      checkpoint blob (the WAL's checkpoint hook); reloads
//                  prepared transactions through kvlog.c
//      kvlog.c     replay of the store's records (the WAL's record hook)
//   5  txtab.c     transactions holding intents, the commit queue and the
//                  WAL's durability hook that applies it
//   4  outcome.c   remembered outcomes
//      heurtab.c   heuristic decisions, kept for good, and their codec
//      barrier.c   saga barriers (its BARGC record goes to the WAL)
//   3  kvrec.c     record payload codecs
//   2  kv.c        u64 maps, key table, versions, reads, pins, version GC
//   1  forcer.c    durability for callers that must not block, on wal.c
//      wal.c       the log; it names, frames and parses through walfile.c
//      walfile.c   segment names, record framing, scan and fault hooks
//      manifest.c  the list of live segments and the checkpoint, checked
//                  against the files on open
//      ident.c     the data directory's identity (node, cluster)
//      The log knows nothing of the store: it hands records, the
//      checkpoint blob and the durable LSN up through the three hooks
//      passed to stor__wal_open, and takes appends, syncs and
//      checkpoints.
//
// So the log never calls the store, replay (kvlog.c, ckpt.c) rebuilds
// the tables without calling the operations above it, and the operations
// (txlocal.c, txdist.c) reach the log only by appending records. Within
// a layer, the file listed first may call the one below it, not back.

#ifndef STORAGE_INT_H
#define STORAGE_INT_H

#include <pthread.h>
#include <string.h>

#include "storage.h"

// ---------------------------------------------------------------- WAL

// Called by the thread that wrote a batch (the flusher, or a thread that
// led the batch while waiting for durability) after the batch up to lsn
// is durable and before any waiter of that batch wakes. Must not append
// to the WAL. Since any thread forcing an append or syncing may run it,
// no thread may do either while holding a lock the callback takes (for
// the MVCC store: kv->mu).
typedef void (*stor__durable_fn)(void *arg, uint64_t lsn);

dtx_err stor__wal_open(const char *dir, const stor_wal_opts *opts,
    stor_wal_ckpt_fn on_ckpt, stor_wal_rec_fn on_rec, void *arg,
    stor__durable_fn on_durable, void *durable_arg, stor_wal **out);

// ---------------------------------------------------------------- 1 manifest.c

// A WAL manifest in memory (its file format is in storage.h). segs is
// owned (stor__man_fini), ascending.
typedef struct stor__man {
	bool has_ckpt;
	uint64_t ckpt_lsn;
	uint32_t ckpt_crc; // bytes 24..27 of the checkpoint file
	uint64_t *segs;
	size_t nsegs;
	// The newest segment has held a durable record (flags bit 1): a
	// newest segment found with no record then lost records.
	bool newest_used;
} stor__man;

void stor__man_fini(stor__man *m);

// Reads dir's manifest (dirfd open on dir) into *m. *found false and
// DTX_OK when there is none. DTX_ECORRUPT (logged, naming the file) when
// it is damaged; DTX_ENOMEM; file errors.
dtx_err stor__man_read(int dirfd, const char *dir, stor__man *m, bool *found);

// Writes m as the manifest atomically: temp file, write and sync through
// o's hooks, rename, sync of the directory. DTX_ERANGE for more than
// STOR_WAL_MAN_MAX segments, DTX_ENOMEM, file errors.
dtx_err stor__man_write(int dirfd, const stor_wal_opts *o, const stor__man *m);

// Syncs fd through o's sync hook (nothing with STOR_SYNC_NONE).
dtx_err stor__sync_fd(const stor_wal_opts *o, int fd);

// Checks the checkpoint file against m: DTX_ECORRUPT (logged, naming the
// file) when it is missing, foreign or not the one m names. A complete
// checkpoint.tmp that m names is renamed into place (a crash between the
// two steps of a checkpoint).
dtx_err stor__man_check_ckpt(
    int dirfd, const char *dir, const stor_wal_opts *o, const stor__man *m);

// Checks the segments found on disk (segs, *nsegs, ascending) against m:
// DTX_ECORRUPT (logged, naming the file) for a segment m names that is
// missing or one on disk that m does not name. Two files left by a crash
// are removed instead (and dropped from segs, *changed set): segments
// below m's first one (retired by a checkpoint whose removals did not
// finish) and a newest segment holding no more than its header (created,
// not yet named).
dtx_err stor__man_check_segs(int dirfd, const char *dir, const stor__man *m,
    uint64_t *segs, size_t *nsegs, bool *changed);

// ---------------------------------------------------------------- MVCC

// One committed version. Newest first in a key's chain. A deletion is a
// version with tomb set.
typedef struct stor__ver {
	struct stor__ver *next;
	clk_ts ts;
	uint32_t len;
	uint8_t tomb;
	uint8_t val[];
} stor__ver;

struct stor__tx;

// One key: allocated once with the key bytes inline.
typedef struct stor__ent {
	stor__ver *head;
	struct stor__tx *intent; // transaction holding an intent, or NULL
	uint32_t hash;
	uint32_t klen;
	uint8_t key[];
} stor__ent;

// Open-addressing table of keys (linear probing, backward-shift delete).
typedef struct stor__tab {
	stor__ent **slot;
	size_t mask; // capacity - 1 (capacity a power of two)
	size_t n;
} stor__tab;

// One key a transaction touched: read (base only) or written (ver holds
// the new value; its ts is set when it becomes a version).
typedef struct stor__w {
	uint8_t *key; // owned copy
	uint32_t klen;
	bool write;
	clk_ts base; // ts of the key's newest version when first touched
	stor__ent *ent; // the key's entry once intents are installed
	stor__ver *ver; // the new version (owned until applied)
} stor__w;

typedef struct stor__bar {
	uint8_t *gid;
	uint32_t glen;
	uint8_t op;
	int64_t branch;
	uint64_t wall_ms; // when committed
	bool pending; // its local commit is not durable yet
	// In the store's table: index + 1 of the next barrier whose gid has
	// the same hash (0: last), so that a saga's barriers are found
	// without scanning the table.
	size_t gnext;
} stor__bar;

typedef enum stor__txkind {
	STOR__TX_DIST = 1, // a prepared distributed transaction
	STOR__TX_LOCAL = 2, // a local commit waiting to become durable
} stor__txkind;

// A transaction holding intents: prepared (in doubt), precommitted, or
// committing (its COMMIT record is queued and it becomes versions once
// durable).
typedef struct stor__tx {
	uint64_t txid; // 0 for local
	stor__txkind kind;
	stor_tx_state state; // PREPARED, PRECOMMITTED
	bool committing; // commit record queued
	uint64_t commit_lsn; // LSN that must be durable before applying
	clk_ts commit_ts;
	uint64_t lsn; // PREPARED record LSN
	stor_prep_meta meta;
	stor__w *w;
	size_t nw;
	stor__bar *bars; // local commits: barriers to insert
	size_t nbars;
	struct stor__tx *next_all; // list of all holding transactions
	struct stor__tx **prev_all;
	struct stor__tx *next_q; // commit queue, in LSN order
} stor__tx;

// The timestamp a transaction's intents carry: the commit ts of a local
// commit being made durable, the prepare ts of a distributed transaction.
// The key table (kv.c) knows a transaction by this and its txid alone.
static inline clk_ts
stor__tx_intent_ts(const stor__tx *tx)
{
	return tx->kind == STOR__TX_LOCAL ? tx->commit_ts : tx->meta.prepare_ts;
}

// Remembered outcome.
typedef struct stor__out {
	uint64_t txid;
	clk_ts commit_ts;
	uint64_t wall_ms;
	uint8_t state; // COMMITTED or ABORTED
} stor__out;

// u64 -> u64 open-addressing map (key 0 is reserved as empty).
typedef struct stor__map {
	uint64_t *k;
	uint64_t *v;
	size_t mask;
	size_t n;
} stor__map;

dtx_err stor__map_put(stor__map *m, uint64_t k, uint64_t v);
bool stor__map_get(const stor__map *m, uint64_t k, uint64_t *v);
bool stor__map_del(stor__map *m, uint64_t k);
void stor__map_fini(stor__map *m);

struct stor_kv {
	pthread_mutex_t mu;
	stor_wal *wal;
	stor_kv_opts opts;
	bool replaying;
	stor__tab tab;
	uint64_t nversions;
	uint64_t nintents;
	clk_ts gc_horizon;
	// transactions holding intents; txid -> stor__tx * for distributed
	stor__tx *txs;
	stor__map txmap;
	// committing transactions in LSN order, applied once durable
	stor__tx *cq_head, **cq_tail;
	// remembered outcomes: a FIFO ring, txid -> ring position
	stor__out *outs;
	size_t out_cap, out_head, out_n;
	uint64_t out_seq; // position of outs[out_head] in the FIFO
	stor__map outmap; // txid -> FIFO sequence number
	// barriers
	stor__bar *bars;
	size_t nbars, bar_cap;
	stor__map barmap; // barrier hash -> index + 1
	size_t bar_dups; // barriers whose hash barmap holds for another
	stor__map gidmap; // gid hash -> index + 1 of its first barrier
	// snapshot pins: pin id -> ts
	stor__map pins;
	uint64_t next_pin;
	uint64_t ckpt_wal_bytes; // WAL bytes written when last checkpointed
	uint64_t bar_gc_wall_ms; // last stor_kv_barrier_gc_every collection
	// heuristic decisions, oldest first, kept for good; txid -> index + 1
	stor_heur *heurs;
	size_t nheurs, heur_cap;
	stor__map heurmap;
};

// ---------------------------------------------------------------- 2 kv.c

uint32_t stor__hash(const void *key, size_t klen);
stor__ent *stor__tab_find(const stor__tab *t, const void *key, size_t klen);
// Finds or inserts key; NULL when out of memory.
stor__ent *stor__tab_get(stor__tab *t, const void *key, size_t klen);
void stor__tab_fini(stor__tab *t);
// Newest version with ts <= at (NULL when none).
const stor__ver *stor__visible(const stor__ent *e, clk_ts at);
// Inserts a version in ts order (an equal ts replaces). Takes v.
void stor__ver_insert(stor_kv *kv, stor__ent *e, stor__ver *v);
stor__ver *stor__ver_new(const void *val, size_t len, bool tomb, clk_ts ts);
// Looks up key at ts with kv->mu held: *out gets the visible version (NULL
// for none or a deletion); DTX_EAGAIN with *blk for an intent at or below
// ts; DTX_ERANGE below the GC horizon.
dtx_err stor__read(stor_kv *kv, const void *key, size_t klen, clk_ts ts,
    const stor__ver **out, stor_blocker *blk);
dtx_err stor__tab_reserve(stor__tab *t, size_t n);
// Oldest snapshot any open transaction or pin can read.
clk_ts stor__min_pinned(stor_kv *kv);
uint64_t stor__wall_ms(void);

// ---------------------------------------------------------------- 3 kvrec.c

// WAL record types of the store. Payloads (little-endian; "writes" is u32
// n, then n times: u32 klen, key, u8 tomb, u32 vlen, value; "meta" is u32
// coordinator, u32 mode, u64 prepare ts, u32 npeers, npeers x u32):
//   LOCAL      u64 commit ts, writes, u32 nbar, nbar x (u32 glen, gid,
//              u64 branch, u8 op, u64 wall ms)
//   PREPARE    u64 txid, meta, writes
//   PRECOMMIT  u64 txid, u64 commit ts
//   COMMIT     u64 txid, u64 commit ts
//   ABORT      u64 txid, u64 zero
//   BARGC      u32 glen, gid (glen 0: by age), u64 cut-off wall ms
//   HEUR       u64 txid, u8 kind, then for kind 1 (a heuristic decision,
//              which also commits or aborts the in-doubt txid): "decision"
//              = u8 outcome (3 committed, 4 aborted), u64 commit ts (0 for
//              an abort), u64 wall ms, u32 by node, u32 len + who, u32 len
//              + why (each <= STOR_HEUR_STR_MAX), meta; for kind 2 (the
//              coordinator's decision learned later): u8 its outcome (3,
//              4), u8 verdict (1 agreed, 2 hazard), u64 wall ms
enum {
	STOR__REC_LOCAL = 1, // a local commit: writes and barriers
	STOR__REC_PREPARE = 2, // PREPARED: txid, meta, writes
	STOR__REC_PRECOMMIT = 3, // txid, commit ts
	STOR__REC_COMMIT = 4, // txid, commit ts
	STOR__REC_ABORT = 5, // txid
	STOR__REC_BARGC = 6, // barrier deletion: gid or age cut-off
	STOR__REC_HEUR = 7, // a heuristic decision, or its verdict
};

void stor__enc_writes(dtx_buf *b, const stor__w *w, size_t nw);
void stor__enc_meta(dtx_buf *b, const stor_prep_meta *m);
void stor__enc_bars(dtx_buf *b, const stor__bar *bars, size_t n);
dtx_err stor__dec_meta(dtx_rd *r, stor_prep_meta *m);
// Decodes nw writes into a newly allocated array (owned copies; free with
// stor__writes_free).
dtx_err stor__dec_writes(dtx_rd *r, stor__w **w, size_t *nw);
void stor__writes_free(stor__w *w, size_t n);
// Decodes one barrier; b->gid points into r's buffer (borrowed).
dtx_err stor__dec_bar(dtx_rd *r, stor__bar *b);
// Whether an encoded record can be appended: DTX_ENOMEM when its
// encoding ran out of memory, DTX_EINVAL when it is too large for the WAL.
dtx_err stor__rec_check(const dtx_buf *rec);

// ---------------------------------------------------------------- 4 outcome.c

void stor__outcome_put(
    stor_kv *kv, uint64_t txid, stor_tx_state st, clk_ts ts, uint64_t wall);
const stor__out *stor__outcome_get(stor_kv *kv, uint64_t txid);

// ---------------------------------------------------------------- 4 heurtab.c

// The heuristic decision of txid in the table, or NULL. kv->mu held.
stor_heur *stor__heur_find(stor_kv *kv, uint64_t txid);
// Adds a copy of h (its txid not yet in the table). kv->mu held.
dtx_err stor__heur_add(stor_kv *kv, const stor_heur *h);
void stor__heur_fini(stor_kv *kv);
// The "decision" part of a HEUR record or checkpoint entry (layout above).
void stor__heur_enc(dtx_buf *b, const stor_heur *h);
dtx_err stor__heur_dec(dtx_rd *r, stor_heur *h);
// ---------------------------------------------------------------- 4 barrier.c

bool stor__bar_is(const stor__bar *b, const uint8_t *gid, size_t glen,
    int64_t branch, uint8_t op);
ptrdiff_t stor__bar_find(
    stor_kv *kv, const uint8_t *gid, size_t glen, int64_t branch, uint8_t op);
// The first barrier of gid in its chain (an index into kv->bars), skipping
// pending ones when settled; -1 when there is none.
ptrdiff_t stor__bar_first_of(
    stor_kv *kv, const uint8_t *gid, size_t glen, bool settled);
// Adds a copy of b (its gid copied) unless it is there already.
dtx_err stor__bar_add(stor_kv *kv, const stor__bar *b);
void stor__bar_remove_at(stor_kv *kv, size_t i);
// The n barriers of a local commit: marks them settled once its record is
// durable (keep), or removes them when it failed. kv->mu held.
void stor__bar_settle(stor_kv *kv, const stor__bar *bars, size_t n, bool keep);
// Removes the settled barriers of gid (glen > 0), else those committed
// before cutoff wall ms; *n (may be NULL) gets the count. kv->mu held.
void stor__bar_gc_apply(
    stor_kv *kv, const uint8_t *gid, size_t glen, uint64_t cutoff, size_t *n);

// ---------------------------------------------------------------- 5 txtab.c

void stor__tx_free(stor__tx *tx);
void stor__tx_link(stor_kv *kv, stor__tx *tx);
void stor__tx_unlink(stor_kv *kv, stor__tx *tx);
// The distributed transaction txid in the table, or NULL. kv->mu held.
stor__tx *stor__tx_get(stor_kv *kv, uint64_t txid);
// Installs tx's intents on their entries. kv->mu held.
dtx_err stor__tx_install(stor_kv *kv, stor__tx *tx);
// Takes tx's intents off their entries. kv->mu held.
void stor__tx_release(stor_kv *kv, stor__tx *tx);
// Turns tx's intents into versions at its commit ts, records the outcome
// for a distributed one, unlinks and frees tx. kv->mu held.
void stor__tx_apply(stor_kv *kv, stor__tx *tx);
// Drops tx's intents, unlinks and frees it. kv->mu held.
void stor__tx_drop(stor_kv *kv, stor__tx *tx);
// Queues tx (its COMMIT or LOCAL record appended) to be applied once
// durable. kv->mu held.
void stor__cq_push(stor_kv *kv, stor__tx *tx);
// The WAL's durability hook: applies the queued commits up to lsn.
void stor__on_durable(void *arg, uint64_t lsn);

// ---------------------------------------------------------------- 6 kvlog.c,
// ckpt.c

// The WAL's record hook: replays one of the store's records.
dtx_err stor__replay(
    void *arg, uint64_t lsn, uint8_t type, const void *p, size_t len);
// Replays one HEUR record (kvlog.c): applies a decision to its
// transaction, or a verdict to its entry.
dtx_err stor__heur_replay(stor_kv *kv, dtx_rd *r);
// Reloads one prepared transaction (meta and writes read from r) with its
// intents.
dtx_err stor__load_prepared(stor_kv *kv, dtx_rd *r, uint64_t txid,
    stor_tx_state st, clk_ts commit_ts, uint64_t lsn);
// The WAL's checkpoint hook: loads the store's checkpoint blob.
dtx_err stor__load_ckpt(void *arg, uint64_t lsn, const void *p, size_t len);

// ---------------------------------------------------------------- 7 txlocal.c

// A transaction being built. txlocal.c fills it; txdist.c prepares it.
struct stor_txn {
	stor_kv *kv;
	clk_ts snap;
	uint64_t pin; // 0: not pinned (snap is CLK_TS_MAX)
	stor__w *w; // keys touched
	size_t nw, wcap;
	stor__map idx; // key hash -> index + 1 into w
	stor__bar *puts; // barriers to insert
	size_t nputs, putcap;
	stor__bar *chk; // barriers read as absent
	size_t nchk, chkcap;
};

void stor__txn_free(stor_txn *t);
// Checks first-committer-wins and intents for every touched key, and that
// no barrier read as absent or about to be written exists. kv->mu held.
dtx_err stor__txn_validate(stor_txn *t);
// Moves t's writes (and, for a local commit, its barriers) into a new tx
// (NULL when out of memory). Read-only keys stay in t.
stor__tx *stor__txn_take(stor_txn *t, stor__txkind kind);
// The end of an async commit or prepare, with kv->mu held: unlocks it,
// frees the transaction tx not handed over (may be NULL), rec and t, and
// on success writes lsn to *out (may be NULL). Returns err.
dtx_err stor__txn_end(stor_kv *kv, stor__tx *tx, dtx_buf *rec, stor_txn *t,
    dtx_err err, uint64_t lsn, uint64_t *out);

#endif // STORAGE_INT_H
