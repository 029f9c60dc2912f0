// SPDX-License-Identifier: MIT
//
// storage: a write-ahead log with group commit, segment files, CRC32C
// records and atomic checkpoints (stor_wal_*; its layout, a read-only scan
// and disk-fault hooks for tools under "WAL files"), and built on it a
// multi-version key-value store with HLC-stamped versions, prepared
// transactions held as intents, local first-committer-wins transactions,
// saga barrier records and remembered outcomes (stor_kv_*, stor_txn_*).

#ifndef DTX_STORAGE_H
#define DTX_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "common.h"

// ================================================================ WAL
//
// On-disk layout. A WAL lives in one directory of its own and holds:
//
//   wal-<16 hex digits: first LSN>.log   segment files, in LSN order
//   checkpoint                           the latest checkpoint (optional)
//   checkpoint.tmp                       a checkpoint being written (removed
//                                        on open, unless the manifest names
//                                        it: see below)
//   MANIFEST                             the live segments and the
//                                        checkpoint (rule 24)
//   MANIFEST.tmp                         a manifest being written
//
// LSNs number records 1, 2, 3, ... without gaps across segments. All
// integers are little-endian.
//
// Segment header (32 bytes; a preallocated segment continues with zeros
// after its last record):
//   0   8  magic "DTXWAL01"
//   8   8  first LSN of the segment (equals the number in the file name)
//   16  8  reserved, zero
//   24  4  CRC32C of bytes 0..23
//   28  4  reserved, zero
//
// Record (20 + len bytes), packed back to back after the header:
//   0   4  len: payload length in bytes (at most STOR_WAL_MAX_RECORD)
//   4   1  type: 1..255, chosen by the WAL's user (0 is never written)
//   5   3  reserved, zero
//   8   8  LSN
//   16  len payload
//   16+len 4  CRC32C of bytes 0 .. 16+len-1 (header and payload)
//
// Checkpoint file (32 + blob bytes):
//   0   8  magic "DTXCKPT1"
//   8   8  LSN: the blob reflects every record with LSN <= this
//   16  8  blob length
//   24  4  CRC32C of bytes 0..23 followed by the blob
//   28  4  reserved, zero
//   32  .. blob (the WAL user's own bytes)
//
// Manifest file (36 + 8 n bytes), rewritten atomically (MANIFEST.tmp
// written and fsynced, renamed over MANIFEST, directory fsynced) when a
// segment is created (after its header is durable, before any record goes
// into it), when the first records of a segment are durable (flag bit 1,
// before any of them is acknowledged), when a checkpoint is taken and
// when open changed the files; never per append, so group commit pays
// for it once per segment:
//   0   8  magic "DTXMAN01"
//   8   8  checkpoint LSN (0 when there is no checkpoint)
//   16  4  checkpoint CRC32C: bytes 24..27 of the checkpoint file (0: none)
//   20  1  flags: bit 0 set when there is a checkpoint; bit 1 set when
//          the newest segment has held a durable record; other bits zero
//   21  3  reserved, zero
//   24  4  n: live segments (at most STOR_WAL_MAN_MAX)
//   28  4  reserved, zero
//   32  8n first LSN of each live segment, ascending
//   32+8n 4  CRC32C of bytes 0 .. 32+8n-1
//
// A checkpoint is written to checkpoint.tmp and fsynced, then named in the
// manifest (with the segments that stay), then renamed into place; only
// then are the segments the manifest dropped deleted.
//
// Open checks the directory against the manifest before replaying and
// stops with DTX_ECORRUPT, logging a WALCORRUPT line that names the file,
// for: a damaged manifest; a segment it names that is missing; a segment
// on disk it does not name (foreign); a checkpoint it does not name, or
// one missing or other (LSN, CRC) than it names. Three files a crash can
// leave are not damage and are repaired, logged: a checkpoint.tmp that the
// manifest names (renamed into place); segments below the manifest's
// first one (retired by a checkpoint, removed); a newest segment the
// manifest does not name that holds no more than its header (created,
// never named, removed). A directory with no manifest is adopted: empty,
// it is a fresh start; with segments or a checkpoint (a log written
// before manifests existed), what is there is checked as before, a
// WALMANIFEST warning is logged and the manifest written from it, once.
// A newest segment the manifest names that holds no record (cut to its
// header, within it, or within its first record) is DTX_ECORRUPT, the
// file named and left alone, when it provably held durable records: flag
// bit 1 says so, or the checkpoint's LSN is at or past its first LSN
// (those records were synced into it before the checkpoint). Otherwise
// it provably never held an acknowledged record (bit 1 is written before
// the first one is acknowledged): a creation or rotation the process
// stopped right after, kept as it is (or removed, logged WALTAIL, when
// even its header is short) and written into. A manifest without bit 1
// (written before it existed) gets it on open when the newest segment
// holds records.
//
// Recovery reads the checkpoint, then scans the segments from the one that
// holds LSN checkpoint+1 and hands every later record to the caller. A
// record that is torn (the file ends inside it) or fails its CRC at the
// tail of the last segment, with no valid later record behind it, is cut
// off with ftruncate and logged (WALTAIL). Any other damage (a bad record
// followed by a valid one, a bad record in an older segment, a missing
// segment, an LSN out of sequence, a bad checkpoint) is DTX_ECORRUPT.
//
// What a crash loses: with STOR_SYNC_FULL an append is acknowledged only
// after fdatasync, so a SIGKILL or power loss never loses an acknowledged
// record. A SIGKILL loses records still in the process's batch buffer
// (never acknowledged); records written but not yet synced survive a
// SIGKILL (they are in the page cache) but not a power loss.
// stor_wal_crash() simulates the latter in-process.

#define STOR_WAL_MAX_RECORD (16u * 1024u * 1024u)

typedef struct stor_wal stor_wal;

// STOR_SYNC_NONE skips fdatasync: for benchmarks only, which must say so
// in their output. The default and every test use STOR_SYNC_FULL.
typedef enum stor_sync {
	STOR_SYNC_FULL = 0,
	STOR_SYNC_NONE = 1,
} stor_sync;

// I/O hooks for fault tests. Each returns 0 or an errno value. write_fn
// must write all len bytes or fail. NULL means the real syscall
// (write(2) in a loop, fdatasync(2)). They are called by the thread that
// writes a batch (the flusher, or a thread waiting for durability that
// leads the batch itself), never by two threads at once.
typedef int (*stor_write_fn)(void *arg, int fd, const void *buf, size_t len);
typedef int (*stor_sync_fn)(void *arg, int fd);

typedef struct stor_wal_opts {
	stor_sync sync; // STOR_SYNC_FULL unless a benchmark says otherwise
	uint64_t segment_bytes; // rotate once a segment exceeds this (64 MiB)
	stor_write_fn write_fn; // NULL: write(2)
	stor_sync_fn sync_fn; // NULL: fdatasync(2)
	void *hook_arg; // passed to write_fn and sync_fn
	// Zero-fill the current segment ahead of the writes (1 MiB at a
	// time) so that most appends overwrite allocated blocks and their
	// fdatasync need not log a file-size change (default true). Recovery
	// treats an all-zero rest of a segment as its end.
	bool preallocate;
} stor_wal_opts;

// Fills o with the defaults (full sync, 64 MiB segments zero-filled ahead
// of the writes, real syscalls).
void stor_wal_opts_init(stor_wal_opts *o);

// Called once during open with the checkpoint's LSN and blob (borrowed,
// valid during the call) when a checkpoint exists. An error return stops
// the open, which returns that error.
typedef dtx_err (*stor_wal_ckpt_fn)(
    void *arg, uint64_t lsn, const void *blob, size_t len);

// Called during open for every record after the checkpoint, in LSN order.
// payload is borrowed, valid during the call. An error return stops the
// open, which returns that error.
typedef dtx_err (*stor_wal_rec_fn)(
    void *arg, uint64_t lsn, uint8_t type, const void *payload, size_t len);

// Opens (creating when missing) the WAL in directory dir, replays it
// through on_ckpt and on_rec (either may be NULL) and starts the flusher
// thread. opts may be NULL for the defaults; it is copied. Returns
// DTX_ECORRUPT for damage before the tail or a directory that disagrees
// with its manifest (see "Manifest file"), DTX_EIO / DTX_ENOSPC / DTX_EPERM
// for file errors, DTX_ENOMEM. On success *out is owned (close with
// stor_wal_close). dir is borrowed.
dtx_err stor_wal_open(const char *dir, const stor_wal_opts *opts,
    stor_wal_ckpt_fn on_ckpt, stor_wal_rec_fn on_rec, void *arg,
    stor_wal **out);

// Flushes and syncs what was appended (errors are logged), stops the
// flusher and frees w. stor_wal_close(NULL) does nothing. No other call on
// w may be running or start.
void stor_wal_close(stor_wal *w);

// Appends one record (type 1..255, len <= STOR_WAL_MAX_RECORD; payload is
// borrowed and copied). With force the call returns only once the record
// is durable; without it the record goes into the next batch and the call
// returns at once (the flusher writes it within about 5 ms unless
// a forced append or a stor_wal_sync takes it along first). *lsn (may be
// NULL) gets the record's LSN. Errors: DTX_EINVAL, DTX_ENOMEM, DTX_EIO
// (this record's batch failed to write or sync), DTX_EFAILED (the WAL
// failed earlier and takes no more writes), DTX_ECLOSED. Thread-safe; many
// threads' forced appends share one fdatasync, and a thread that finds no
// batch being written writes and syncs its batch itself.
dtx_err stor_wal_append(stor_wal *w, uint8_t type, const void *payload,
    size_t len, bool force, uint64_t *lsn);

// Waits until every record up to lsn is durable. DTX_EIO / DTX_EFAILED when
// the WAL failed before that. Thread-safe.
dtx_err stor_wal_sync(stor_wal *w, uint64_t lsn);

// DTX_OK, or DTX_EFAILED once a write or sync failed. Thread-safe.
dtx_err stor_wal_status(const stor_wal *w);

// The LSN of the last appended record (0 when none), and the highest LSN
// known durable. Thread-safe.
uint64_t stor_wal_last_lsn(stor_wal *w);
uint64_t stor_wal_durable_lsn(stor_wal *w);

// Makes everything up to lsn durable, then writes blob (borrowed) as the
// checkpoint for lsn atomically (write a temp file, fsync, name it in the
// manifest, rename, fsync the directory), then deletes every segment
// whose records all lie below
// min(lsn + 1, keep_lsn) (keep_lsn 0: no extra limit), e.g. the oldest
// in-doubt PREPARED record's LSN. lsn must not exceed stor_wal_last_lsn.
// Errors: DTX_EINVAL, DTX_EIO, DTX_ENOSPC, DTX_ENOMEM, DTX_EFAILED.
// Thread-safe; checkpoints are serialized.
dtx_err stor_wal_checkpoint(
    stor_wal *w, uint64_t lsn, uint64_t keep_lsn, const void *blob, size_t len);

typedef struct stor_wal_stats {
	uint64_t appends; // records appended since open
	uint64_t batches; // batches written
	uint64_t syncs; // fdatasync calls
	uint64_t bytes; // bytes written since open
	uint64_t replayed; // records after the checkpoint read during open
	uint64_t tail_truncated; // bytes cut off the tail during open
	uint64_t segments; // segment files on disk
	uint64_t checkpoint_lsn; // LSN of the latest checkpoint (0: none)
} stor_wal_stats;

// Copies the counters. Thread-safe.
void stor_wal_stats_get(stor_wal *w, stor_wal_stats *out);

// A forcer: a thread that makes records durable on behalf of callers that
// must not block (completions on nng threads). A caller appends its
// records unforced, fills a stor_force with the last one's LSN and a done
// hook and queues it; the forcer syncs everything queued meanwhile with
// one stor_wal_sync and then calls each done, on its own thread, with that
// sync's result.
typedef struct stor_force stor_force;
struct stor_force {
	uint64_t lsn; // make the WAL durable up to here
	void (*done)(stor_force *f, dtx_err rv); // rv: stor_wal_sync's
	stor_force *next; // the forcer's
};
typedef struct stor_forcer stor_forcer;

// Starts a forcer for wal (borrowed: it must outlive the forcer). *out is
// owned (stor_forcer_close). DTX_EINVAL, DTX_ENOMEM.
dtx_err stor_forcer_open(stor_wal *wal, stor_forcer **out);

// Queues f (owned by the caller until its done runs). Never blocks for
// the disk, except after stor_forcer_stop: then f is forced and its done
// called on the calling thread. Thread-safe.
void stor_forcer_force(stor_forcer *fc, stor_force *f);

// Optional: group(arg, true) runs before the done hooks of one sync's
// group and group(arg, false) after them, on the same thread, so that a
// caller can treat what the group's hooks produce as one batch. Set it
// before the first stor_forcer_force.
void stor_forcer_group_hook(
    stor_forcer *fc, void (*group)(void *arg, bool begin), void *arg);

// Forces what is queued, runs its hooks and joins the thread; later
// forces run on their callers' threads. NULL or a second call does nothing.
void stor_forcer_stop(stor_forcer *fc);

// stor_forcer_stop, then frees fc. NULL does nothing.
void stor_forcer_close(stor_forcer *fc);

// Fault injection: stops the flusher without flushing, cuts the current
// segment back to the last synced byte (losing every unsynced write, as a
// power loss would) and frees w. For tests and the fault harness.
void stor_wal_crash(stor_wal *w);

// ---------------------------------------------------------------- WAL files
//
// The layout above as names, for code that reads or damages a WAL
// directory itself (the disk nemesis, tests) instead of redefining it.
// None of these open a stor_wal or recover anything. stor_wal_scan and
// stor_wal_rec_frame may run at any time; the two fault hooks change
// files and are for a WAL that no process has open (a stopped daemon).

#define STOR_WAL_SEG_MAGIC "DTXWAL01" // segment header bytes 0..7
#define STOR_WAL_SEG_HDR 32u // segment header bytes
#define STOR_WAL_REC_HDR 16u // record header: len, type, reserved, LSN
#define STOR_WAL_REC_OVERHEAD 20u // header plus the CRC32C after the payload
#define STOR_WAL_SEG_NAME_LEN 24u // strlen("wal-0000000000000001.log")
#define STOR_WAL_CKPT_MAGIC "DTXCKPT1" // checkpoint file bytes 0..7
#define STOR_WAL_CKPT_NAME "checkpoint"
#define STOR_WAL_MAN_NAME "MANIFEST"
#define STOR_WAL_MAN_MAGIC "DTXMAN01" // manifest bytes 0..7
#define STOR_WAL_MAN_MAX 65536u // live segments a manifest may name

// Writes the name of the segment whose first LSN is first into out (n
// bytes; at least STOR_WAL_SEG_NAME_LEN + 1 for the whole name).
void stor_wal_seg_name(char *out, size_t n, uint64_t first);

// True when name is a segment file name ("wal-" 16 lowercase hex digits
// ".log", first LSN > 0); *first (may be NULL) gets its first LSN.
bool stor_wal_seg_parse(const char *name, uint64_t *first);

// Frames one record as the WAL writes it: the header (len, type,
// reserved zero, lsn), the payload (borrowed, len bytes) and the CRC32C of
// both, STOR_WAL_REC_OVERHEAD + len bytes in all, into out.
void stor_wal_rec_frame(
    uint8_t *out, uint8_t type, uint64_t lsn, const void *payload, size_t len);

// One record as stor_wal_scan finds it on disk.
typedef struct stor_wal_rec_info {
	char segment[STOR_WAL_SEG_NAME_LEN + 1]; // its segment's file name
	uint64_t seg_first; // that segment's first LSN
	uint64_t offset; // byte offset of the record's first byte in the file
	uint64_t length; // bytes on disk: STOR_WAL_REC_OVERHEAD + payload_len
	uint64_t lsn;
	uint8_t type;
	uint32_t payload_len;
} stor_wal_rec_info;

// Called by stor_wal_scan for every good record (info borrowed, valid
// during the call). A non-OK return stops the scan, which returns it.
typedef dtx_err (*stor_wal_scan_fn)(void *arg, const stor_wal_rec_info *info);

// Where the log ends: its newest segment, the offset just past that
// segment's last good record (where the next record would be written),
// the file's size and the LSN the next record would have.
typedef struct stor_wal_end {
	char segment[STOR_WAL_SEG_NAME_LEN + 1]; // "" when there is none
	uint64_t offset;
	uint64_t size;
	uint64_t next_lsn;
} stor_wal_end;

// Reads the segments in dir in LSN order and calls fn (may be NULL) for
// every good record: complete, type not 0, reserved bytes zero, CRC32C
// right and LSN the next one of its segment. Within a segment the walk
// stops at the first record that is not good (a torn or damaged tail,
// damage in the middle, or the zero-filled preallocated rest); it does
// not tell them apart, nor compare LSNs across segments (recovery does).
// The checkpoint is not read. *end (may be NULL) gets where the newest
// segment's good records end. Reads only. DTX_ECORRUPT when a segment's
// header is bad, DTX_EIO and the like from the files, DTX_ENOMEM, fn's
// error. dir is borrowed.
dtx_err stor_wal_scan(
    const char *dir, stor_wal_scan_fn fn, void *arg, stor_wal_end *end);

// How stor_wal_tear_tail damages the tail.
typedef struct stor_wal_tear {
	uint32_t payload_len; // of the torn record, <= STOR_WAL_MAX_RECORD
	// Bytes of the torn record written; at least 1 is kept back (a
	// larger value is cut to STOR_WAL_REC_OVERHEAD + payload_len - 1).
	uint32_t keep;
	uint64_t seed; // draws the type (1..255) and payload bytes (dtx_rand)
	bool truncate; // cut the file off just after the kept bytes
} stor_wal_tear;

// Tears the log's tail as a crash in the middle of writing a batch does:
// writes the first how->keep bytes of the record that would come next
// (framed as stor_wal_rec_frame does, with the next LSN) at the end of the
// newest segment's good records (stor_wal_scan's end), cuts the file off
// after them when how->truncate, and fsyncs. Only bytes past every good
// record change, so nothing acknowledged is lost: recovery must cut the
// torn record off and keep everything else. *where (may be NULL) gets the
// end found before the tear (offset: where the torn record starts; size:
// the file's size before). DTX_ENOENT when dir holds no segment,
// DTX_EINVAL for a bad how, errors as stor_wal_scan. For a WAL that no
// process has open.
dtx_err stor_wal_tear_tail(
    const char *dir, const stor_wal_tear *how, stor_wal_end *where);

// Flips bit `bit` (0: the lowest bit of the record's first byte) of the
// good record with LSN lsn (as stor_wal_scan finds it) and fsyncs: the
// damage to acknowledged data that recovery must report as DTX_ECORRUPT
// unless the record is the last one. *info (may be NULL) gets the record
// as it was found. DTX_ENOENT when no good
// record has that LSN, DTX_ERANGE when bit >= 8 * its length, errors as
// stor_wal_scan. For a WAL that no process has open.
dtx_err stor_wal_flip_bit(
    const char *dir, uint64_t lsn, uint64_t bit, stor_wal_rec_info *info);

// ================================================================ identity
//
// A daemon's data directory knows its node and its cluster (rule 24):
// the file IDENTITY in it is written on the first start and checked on
// every later one (stor_ident_check), before the daemon opens its store
// or log. Layout (32 bytes, little-endian):
//   0   8  magic "DTXIDNT1"
//   8   4  node id
//   12  4  reserved, zero
//   16  8  cluster id (stor_cluster_id)
//   24  4  CRC32C of bytes 0..23
//   28  4  reserved, zero
// Written as IDENTITY.tmp, fsynced, renamed, directory fsynced.

#define STOR_IDENT_NAME "IDENTITY"
#define STOR_IDENT_MAGIC "DTXIDNT1"

// The cluster id of a topology, which has no id of its own: FNV-1a 64 over
// (u32 id, u32 role), little-endian, of every coordinator, participant
// and saga node in ascending id order. Clients and urls are left out, so
// a cluster restarted on other ports, or with another client line, keeps
// its id; adding, removing or re-roling a server node changes it.
uint64_t stor_cluster_id(const dtx_topo *topo);

// Checks that data directory dir (borrowed; created when missing) belongs
// to node of cluster: writes IDENTITY when there is none (a fresh
// directory, or one of a version before identities), else compares.
// DTX_ECORRUPT, with a DATAID error line naming the file and both
// identities, for another node or cluster or a damaged file; file errors.
dtx_err stor_ident_check(const char *dir, uint32_t node, uint64_t cluster);

// ================================================================ MVCC store
//
// A key-value store on one WAL (in its own directory). Keys and values are
// byte strings (keys up to STOR_KEY_MAX bytes, values up to STOR_VAL_MAX);
// every committed version carries its HLC commit timestamp, so a read at
// any timestamp T sees the newest version with ts <= T. A prepared
// distributed transaction holds its writes as intents stamped with its
// prepare timestamp: any other transaction's write to those keys is
// refused at once with DTX_ECONFLICT (nobody waits, so there is no
// distributed deadlock), and a read at T >= the prepare timestamp reports
// the intent (DTX_EAGAIN) so the caller can wait or retry (DESIGN rule 10).
// COMMIT turns intents into versions at the commit timestamp, ABORT drops
// them. Local transactions commit first-committer-wins. All functions are
// thread-safe unless stated otherwise.

#define STOR_KEY_MAX 4096u
#define STOR_VAL_MAX (1024u * 1024u)
#define STOR_PEERS_MAX 32u // = CLK_VC_MAX
#define STOR_GID_MAX 256u

typedef struct stor_kv stor_kv;
typedef struct stor_txn stor_txn;

typedef enum stor_mode {
	STOR_MODE_2PC = 2,
	STOR_MODE_3PC = 3,
	STOR_MODE_PC = 4, // parallel commit: the votes decide, no coordinator
} stor_mode;

// States of a distributed transaction as the store knows it.
typedef enum stor_tx_state {
	STOR_TX_UNKNOWN = 0, // never seen (or its outcome was collected)
	STOR_TX_PREPARED = 1, // voted YES, outcome unknown (in doubt)
	STOR_TX_PRECOMMITTED = 2, // 3PC: pre-committed, outcome unknown
	STOR_TX_COMMITTED = 3,
	STOR_TX_ABORTED = 4,
} stor_tx_state;

// Returns "prepared", "precommitted", ... Never NULL.
const char *stor_tx_state_name(stor_tx_state s);

// What a PREPARED record holds besides the write set. A plain value type.
typedef struct stor_prep_meta {
	uint32_t coordinator; // node id of the coordinator
	uint32_t mode; // STOR_MODE_2PC, STOR_MODE_3PC or STOR_MODE_PC
	clk_ts prepare_ts; // > 0
	uint32_t npeers; // <= STOR_PEERS_MAX
	uint32_t peers[STOR_PEERS_MAX]; // the other participants' node ids
} stor_prep_meta;

// The transaction holding an intent that blocked a read.
typedef struct stor_blocker {
	uint64_t txid; // 0 for a local transaction being made durable
	clk_ts prepare_ts;
} stor_blocker;

typedef enum stor_barrier_op {
	STOR_BARRIER_ACTION = 1,
	STOR_BARRIER_COMPENSATE = 2,
} stor_barrier_op;

typedef struct stor_kv_opts {
	stor_wal_opts wal; // see stor_wal_opts_init
	size_t outcome_max; // outcomes remembered at most (65536)
	uint64_t outcome_ttl_ms; // outcomes older than this are dropped by
	                         // stor_kv_maintain (600000)
	uint64_t checkpoint_bytes; // stor_kv_maintain checkpoints once the
	                           // WAL grew this much (64 MiB)
} stor_kv_opts;

// Fills o with the defaults.
void stor_kv_opts_init(stor_kv_opts *o);

// Opens (creating when missing) the store in directory dir: loads the
// checkpoint, replays the WAL and reloads every prepared transaction
// without an outcome with its intents before returning, so nothing is
// served before the locks are back. opts may be NULL (defaults); copied.
// Errors as stor_wal_open, plus DTX_ECORRUPT for a record that does not
// decode. On success *out is owned (close with stor_kv_close).
dtx_err stor_kv_open(const char *dir, const stor_kv_opts *opts, stor_kv **out);

// Closes the store (flushing the WAL). stor_kv_close(NULL) does nothing.
// No other call on kv may be running; open stor_txn handles must have
// been finished.
void stor_kv_close(stor_kv *kv);

// DTX_OK, or DTX_EFAILED once the WAL failed (the store then refuses all
// writes; reads of what is in memory still work).
dtx_err stor_kv_status(stor_kv *kv);

// Waits until every record up to lsn is durable (for the _async calls).
dtx_err stor_kv_sync(stor_kv *kv, uint64_t lsn);

// ---------------------------------------------------------------- reads

// Snapshot read of key (borrowed) at ts: the newest committed version with
// ts <= the given ts. On DTX_OK *val is returned owned (free with
// dtx_free; may be NULL when *vlen is 0) and *vts (may be NULL) gets the
// version's timestamp. DTX_ENOENT: no version (or a deletion) visible.
// DTX_EAGAIN: an intent with prepare ts <= ts holds the key; *blk (may be
// NULL) gets its transaction (the one out-parameter written on an error).
// DTX_ERANGE: ts is below the garbage-collection horizon (snapshot too old).
dtx_err stor_kv_get(stor_kv *kv, const void *key, size_t klen, clk_ts ts,
    void **val, size_t *vlen, clk_ts *vts, stor_blocker *blk);

// stor_kv_get for a value stored with stor_txn_put_i64. DTX_EINVAL when the
// value is not 8 bytes.
dtx_err stor_kv_get_i64(stor_kv *kv, const void *key, size_t klen, clk_ts ts,
    int64_t *out, clk_ts *vts, stor_blocker *blk);

// Called by stor_kv_scan for every visible key (key, val borrowed, valid
// during the call). Runs with the store locked: it must not call into the
// store. A non-OK return stops the scan, which returns it.
typedef dtx_err (*stor_scan_fn)(void *arg, const void *key, size_t klen,
    const void *val, size_t vlen, clk_ts vts);

// Calls fn for every key with a version visible at ts, in no particular
// order, as one consistent snapshot. When any intent with prepare ts <= ts
// exists the scan calls nothing and returns DTX_EAGAIN with *blk set.
// DTX_ERANGE as stor_kv_get.
dtx_err stor_kv_scan(
    stor_kv *kv, clk_ts ts, stor_scan_fn fn, void *arg, stor_blocker *blk);

// ---------------------------------------------------------------- local and
// prepared transactions

// Starts a transaction reading at snapshot ts snap (CLK_TS_MAX: always the
// latest committed version). The snapshot is pinned against garbage
// collection until the transaction ends. On success *out is owned: end it
// with exactly one of stor_txn_commit, stor_txn_prepare(_async) or
// stor_txn_abort. A stor_txn is used by one thread at a time.
dtx_err stor_txn_begin(stor_kv *kv, clk_ts snap, stor_txn **out);

// Reads key through the transaction: its own writes first, then the
// snapshot. Results and ownership as stor_kv_get. The version seen is
// remembered: commit and prepare fail with DTX_ECONFLICT if the key
// changed since.
dtx_err stor_txn_get(stor_txn *t, const void *key, size_t klen, void **val,
    size_t *vlen, stor_blocker *blk);
dtx_err stor_txn_get_i64(
    stor_txn *t, const void *key, size_t klen, int64_t *out, stor_blocker *blk);

// Buffers a write (key and val borrowed, copied). DTX_EINVAL for sizes out
// of range, DTX_ENOMEM.
dtx_err stor_txn_put(
    stor_txn *t, const void *key, size_t klen, const void *val, size_t vlen);
dtx_err stor_txn_put_i64(stor_txn *t, const void *key, size_t klen, int64_t v);
dtx_err stor_txn_del(stor_txn *t, const void *key, size_t klen);

// Whether the barrier (gid, branch, op) exists (committed, or written by
// this transaction). The answer is checked again under the commit lock:
// if a barrier read as absent appeared meanwhile, commit fails with
// DTX_ECONFLICT, so check-then-insert is atomic. gid is borrowed, 1 to
// STOR_GID_MAX bytes.
dtx_err stor_txn_barrier_get(stor_txn *t, const char *gid, int64_t branch,
    stor_barrier_op op, bool *exists);

// Adds the barrier (gid, branch, op) to the transaction's writes: it is
// logged in the same record as the business writes. DTX_EEXIST when it is
// already committed.
dtx_err stor_txn_barrier_put(
    stor_txn *t, const char *gid, int64_t branch, stor_barrier_op op);

// Commits a local transaction at commit_ts (> 0): first committer wins.
// DTX_ECONFLICT when a written key (or a key read) got a newer version or
// holds another transaction's intent, or a checked barrier appeared.
// Returns once the commit is durable; the versions are visible from then
// on. Always ends t (frees it), whatever the result. A transaction without
// writes commits without logging.
dtx_err stor_txn_commit(stor_txn *t, clk_ts commit_ts);

// stor_txn_commit without the wait: validates, installs t's writes as
// intents stamped commit_ts (a read at or above commit_ts answers
// DTX_EAGAIN with blocker txid 0 until the commit is durable), inserts its
// barriers as pending and queues the record; returns at once. The
// versions become visible, and the barriers settle, once the record is
// durable: call stor_kv_sync(kv, *lsn) before acknowledging the commit.
// When the WAL fails first, stor_kv_sync says so and the intents stay
// until the store is reopened (whether the commit happened is then read
// from the log). *lsn (may be NULL) gets the record's LSN, 0 for a
// transaction without writes or barriers (nothing to wait for). Always
// ends t. Errors as stor_txn_commit, except those of the wait. Lets a
// caller hold a lock around "take the timestamp, install the intents"
// without holding it across the fsync.
dtx_err stor_txn_commit_async(stor_txn *t, clk_ts commit_ts, uint64_t *lsn);

// Prepares t's writes as distributed transaction txid (> 0) with meta
// (borrowed): checks that no written or read key changed or holds another
// intent (DTX_ECONFLICT, at once), installs the intents and force-logs one
// PREPARED record. DTX_EEXIST when txid is already prepared or has a
// remembered outcome. DTX_EINVAL for bad meta or an empty write set.
// Always ends t. _async returns once the intents are installed and the
// record is queued; *lsn gets its LSN for stor_kv_sync (vote YES only
// after that succeeds).
dtx_err stor_txn_prepare(
    stor_txn *t, uint64_t txid, const stor_prep_meta *meta);
dtx_err stor_txn_prepare_async(
    stor_txn *t, uint64_t txid, const stor_prep_meta *meta, uint64_t *lsn);

// Ends t without writing anything. stor_txn_abort(NULL) does nothing.
void stor_txn_abort(stor_txn *t);

// ---------------------------------------------------------------- outcomes

// 3PC: moves prepared txid to PRECOMMITTED with commit_ts, force-logged.
// DTX_ENOENT when txid is not prepared. Idempotent.
dtx_err stor_kv_precommit(stor_kv *kv, uint64_t txid, clk_ts commit_ts);
// The same with the record only appended: on success *lsn gets the LSN
// that must be durable (stor_kv_sync) before the PRECOMMIT is
// acknowledged, 0 when this call wrote nothing, so that a BATCH of
// PRE_COMMITs shares one fsync.
dtx_err stor_kv_precommit_async(
    stor_kv *kv, uint64_t txid, clk_ts commit_ts, uint64_t *lsn);

// Force-logs COMMIT for prepared (or precommitted) txid at commit_ts (>=
// its prepare ts), then turns its intents into versions at commit_ts and
// remembers the outcome. DTX_OK also when txid is already committed (a
// repeated COMMIT); DTX_ENOENT when txid is unknown; DTX_ECONFLICT when it
// was aborted. _async queues the record and returns its LSN; the versions
// appear once it is durable.
dtx_err stor_kv_commit(stor_kv *kv, uint64_t txid, clk_ts commit_ts);
dtx_err stor_kv_commit_async(
    stor_kv *kv, uint64_t txid, clk_ts commit_ts, uint64_t *lsn);

// Logs ABORT for txid (not forced), drops its intents and remembers the
// outcome. Aborting an unknown txid records the outcome (a participant
// that never voted). DTX_OK also when already aborted; DTX_ECONFLICT when
// it was committed.
dtx_err stor_kv_abort(stor_kv *kv, uint64_t txid);

// The state of txid: in doubt (PREPARED / PRECOMMITTED), or a remembered
// outcome. *commit_ts (may be NULL) gets the commit ts for COMMITTED and
// PRECOMMITTED, else 0. DTX_ENOENT when the store knows nothing of txid.
dtx_err stor_kv_tx_state(
    stor_kv *kv, uint64_t txid, stor_tx_state *state, clk_ts *commit_ts);

typedef struct stor_indoubt {
	uint64_t txid;
	stor_tx_state state; // PREPARED or PRECOMMITTED
	clk_ts commit_ts; // for PRECOMMITTED, else 0
	uint64_t lsn; // LSN of the PREPARED record
	uint32_t nwrites; // keys written
	stor_prep_meta meta;
} stor_indoubt;

// Lists every in-doubt transaction in txid order. *list is returned owned
// (free with dtx_free; NULL when *n is 0).
dtx_err stor_kv_indoubt(stor_kv *kv, stor_indoubt **list, size_t *n);

// The in-doubt transaction txid alone, as stor_kv_indoubt would list it,
// copied into *out (caller's storage): a look-up in the transaction
// table, without copying the whole list. DTX_ENOENT when txid is not in
// doubt (never prepared, decided, or its COMMIT is queued); DTX_EINVAL
// for txid 0.
dtx_err stor_kv_indoubt_find(stor_kv *kv, uint64_t txid, stor_indoubt *out);

// ---------------------------------------------------------------- heuristic
// decisions
//
// An operator may decide an in-doubt transaction by hand when its
// coordinator cannot be reached (XA's heuristic completion; PostgreSQL's
// COMMIT PREPARED / ROLLBACK PREPARED). The decision is force-logged as
// heuristic, with who made it, when and why, in one HEUR record that also
// commits or aborts the transaction, and is kept for good: checkpoints
// carry it, outcome collection never drops it. Once the coordinator's own
// decision is learned it is recorded beside it (a second HEUR record):
// agreed, or a heuristic hazard when the two differ.

#define STOR_HEUR_STR_MAX 256u // bytes of who and why

typedef enum stor_heur_verdict {
	STOR_HEUR_UNCONFIRMED = 0, // the coordinator's decision is not known
	STOR_HEUR_AGREED = 1, // the coordinator decided the same
	STOR_HEUR_HAZARD = 2, // the coordinator decided the other way
} stor_heur_verdict;

// Returns "unconfirmed", "agreed", "hazard". Never NULL.
const char *stor_heur_verdict_name(stor_heur_verdict v);

// One heuristic decision. A plain value type.
typedef struct stor_heur {
	uint64_t txid;
	stor_tx_state outcome; // COMMITTED or ABORTED: what was done here
	clk_ts commit_ts; // for COMMITTED, else 0
	uint64_t wall_ms; // when (wall clock, ms since the epoch)
	uint32_t by_node; // the node id of whoever asked for it
	char who[STOR_HEUR_STR_MAX + 1]; // "admin 7", NUL-terminated
	char why[STOR_HEUR_STR_MAX + 1]; // the operator's reason, or ""
	stor_prep_meta meta; // the transaction's coordinator, mode, peers
	stor_heur_verdict verdict;
	stor_tx_state coord_outcome; // the coordinator's, once known
	uint64_t verdict_wall_ms; // when it was learned (0: not yet)
} stor_heur;

// Decides in-doubt txid heuristically: commit at commit_ts (>= its
// prepare ts) or abort, force-logging one HEUR record with who and why
// (borrowed, cut to STOR_HEUR_STR_MAX bytes) and by_node, and returns once
// it is durable. DTX_ENOENT when txid is not in doubt here (unknown,
// decided, or its COMMIT is queued), DTX_EINVAL for a bad commit ts,
// errors of the WAL. *out (may be NULL) gets the record as kept.
dtx_err stor_kv_heuristic(stor_kv *kv, uint64_t txid, bool commit,
    clk_ts commit_ts, uint32_t by_node, const char *who, const char *why,
    stor_heur *out);

// Records the coordinator's decision coord (COMMITTED or ABORTED) for
// heuristically decided txid, force-logged, and sets *verdict (may be
// NULL): AGREED or HAZARD. A verdict already recorded is kept and
// returned (nothing is logged). DTX_ENOENT when txid has no heuristic
// decision here, DTX_EINVAL for another coord, errors of the WAL.
dtx_err stor_kv_heur_verdict(stor_kv *kv, uint64_t txid, stor_tx_state coord,
    stor_heur_verdict *verdict);

// The heuristic decision of txid, copied into *out. DTX_ENOENT when none.
dtx_err stor_kv_heur_get(stor_kv *kv, uint64_t txid, stor_heur *out);

// Every heuristic decision, oldest first. *list is returned owned (free
// with dtx_free; NULL when *n is 0).
dtx_err stor_kv_heur_list(stor_kv *kv, stor_heur **list, size_t *n);

// Called by stor_kv_indoubt_keys for each key an in-doubt transaction
// writes (key borrowed, valid during the call; the store is locked: do
// not call into it). A non-OK return stops the walk, which returns it.
typedef dtx_err (*stor_key_fn)(void *arg, const void *key, size_t klen);

// Calls fn for each key in-doubt txid holds an intent on, in the order
// of its write set. DTX_ENOENT when txid is not in doubt here.
dtx_err stor_kv_indoubt_keys(
    stor_kv *kv, uint64_t txid, stor_key_fn fn, void *arg);

// ---------------------------------------------------------------- upkeep

// Pins snapshot ts against garbage collection; *pin identifies the pin for
// stor_kv_snap_unpin.
dtx_err stor_kv_snap_pin(stor_kv *kv, clk_ts ts, uint64_t *pin);
void stor_kv_snap_unpin(stor_kv *kv, uint64_t pin);

// Drops every version that no snapshot at or above horizon can see: for
// each key the newest version with ts <= h is kept and older ones go, h
// being min(horizon, oldest pinned snapshot, oldest open transaction's
// snapshot). Keys whose only remaining version is a deletion at or below h
// go too. Reads below h then return DTX_ERANGE. *removed (may be NULL)
// gets the number of versions dropped.
dtx_err stor_kv_gc(stor_kv *kv, clk_ts horizon, size_t *removed);

// Deletes barriers: those of gid when gid is non-NULL, else those
// committed more than older_than_ms of wall time ago. Logged (not
// forced). *removed may be NULL.
dtx_err stor_kv_barrier_gc(
    stor_kv *kv, const char *gid, uint64_t older_than_ms, size_t *removed);

// stor_kv_barrier_gc by age (gid NULL), at most once per every_ms of wall
// time: a call sooner than that after the last one that collected
// returns DTX_OK at once with *removed (may be NULL) 0, so a request path
// may call it each time. Collects the barriers of sagas whose forget
// message was lost. Thread-safe.
dtx_err stor_kv_barrier_gc_every(
    stor_kv *kv, uint64_t older_than_ms, uint64_t every_ms, size_t *removed);

// Forgets outcomes recorded more than older_than_ms of wall time ago
// (in-doubt transactions are never forgotten). The table is also bounded
// by opts.outcome_max, oldest first.
void stor_kv_outcome_gc(stor_kv *kv, uint64_t older_than_ms);

// Writes a checkpoint of the committed state, the in-doubt transactions,
// the remembered outcomes and the barriers, then lets the WAL drop
// segments below min(checkpoint LSN, oldest in-doubt PREPARED LSN), so
// that reopening does not grow with history. Writers wait only while the
// state is copied in memory. Errors as stor_wal_checkpoint.
dtx_err stor_kv_checkpoint(stor_kv *kv);

// Housekeeping for a daemon's timer: outcome_gc with opts.outcome_ttl_ms,
// and a checkpoint when the WAL grew by opts.checkpoint_bytes since the
// last one.
dtx_err stor_kv_maintain(stor_kv *kv);

typedef struct stor_kv_stats {
	uint64_t keys; // keys in the table (including deleted ones not yet
	               // collected)
	uint64_t versions;
	uint64_t intents; // keys held by prepared or committing transactions
	uint64_t indoubt; // prepared or precommitted transactions
	uint64_t outcomes; // remembered outcomes
	uint64_t barriers;
	clk_ts gc_horizon;
	uint64_t heur_commits; // heuristic decisions kept, by outcome
	uint64_t heur_aborts;
	uint64_t heur_hazards; // those the coordinator contradicted
	uint64_t heur_unconfirmed; // those whose coordinator is not heard yet
	stor_wal_stats wal;
} stor_kv_stats;

void stor_kv_stats_get(stor_kv *kv, stor_kv_stats *out);

// The store's WAL, borrowed (for its stats; do not append to it).
stor_wal *stor_kv_wal(stor_kv *kv);

#endif // DTX_STORAGE_H
