// SPDX-License-Identifier: MIT
//
// common: the few things every dtx component shares: error codes, one-line
// logging, allocation hooks that tests can make fail, CRC32C, clocks for
// measuring intervals, a seeded PRNG, crash points for fault tests, and the
// config table that fills a daemon's settings from defaults, environment and
// flags.

#ifndef DTX_COMMON_H
#define DTX_COMMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

// ---------------------------------------------------------------- errors

// Every function that can fail returns a dtx_err; DTX_OK is zero. Results
// are written through out-parameters only on success.
typedef enum dtx_err {
	DTX_OK = 0,
	DTX_ENOMEM, // allocation failed
	DTX_EINVAL, // bad argument or bad user input
	DTX_EIO, // a read, write or fsync failed
	DTX_ECORRUPT, // on-disk data is damaged before the tail
	DTX_ECONFLICT, // key locked by another transaction / write conflict
	DTX_ETIMEDOUT, // no answer in time (outcome unknown)
	DTX_EPROTO, // malformed, unknown or oversized message
	DTX_ECLOSED, // object closed or shutting down
	DTX_ENOENT, // no such key, record, file or transaction
	DTX_EEXIST, // already exists
	DTX_EFAILED, // store is in the failed state after an I/O error
	DTX_EUNREACH, // peer cannot be reached (connection refused/lost)
	DTX_EBUSY, // resource busy, try again later
	DTX_ECLOCK, // a timestamp too far ahead of our physical clock
	DTX_ERANGE, // value out of range (e.g. balance below minimum)
	DTX_EAGAIN, // transient condition, the caller should retry
	DTX_EPERM, // not permitted (e.g. needs root)
	DTX_ENOSPC, // no space left on device
	DTX_ECANCELED, // operation canceled
	DTX_EREFUSED, // peer definitely refused (an error reply)
	DTX_ERR_COUNT
} dtx_err;

// Returns a static, human-readable description of err. Never NULL.
const char *dtx_strerror(dtx_err err);

// Returns the short symbolic name of err ("DTX_EIO"). Never NULL.
const char *dtx_errname(dtx_err err);

// Translates an errno value into a dtx_err (EIO, ENOSPC -> DTX_EIO/ENOSPC,
// ENOENT -> DTX_ENOENT, ...). Call it once, where the syscall returns.
dtx_err dtx_from_errno(int e);

// Formats an error message into err (errlen bytes, truncated); does
// nothing when err is NULL or errlen 0, so callers may pass no buffer.
void dtx_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Aborts the process with a message: for proven invariants only, never for
// anything a peer, a disk or the allocator can cause.
#define DTX_ASSERT(x)                                                          \
	do {                                                                   \
		if (!(x))                                                      \
			dtx_panic(__FILE__, __LINE__, #x);                     \
	} while (0)

_Noreturn void dtx_panic(const char *file, int line, const char *what);

// ---------------------------------------------------------------- logging

typedef enum dtx_log_level {
	DTX_LOG_DEBUG = 0,
	DTX_LOG_INFO = 1,
	DTX_LOG_WARN = 2,
	DTX_LOG_ERROR = 3,
	DTX_LOG_OFF = 4
} dtx_log_level;

// Sets the process's log name (e.g. "coord-1") and the lowest level that is
// printed. Call once from main() before starting threads. name is copied
// (truncated to 31 bytes).
void dtx_log_init(const char *name, dtx_log_level min);

// Parses "debug", "info", "warn", "error" or "off"; DTX_EINVAL otherwise.
dtx_err dtx_log_level_parse(const char *s, dtx_log_level *out);

// True when a message of this level would be printed.
bool dtx_log_enabled(dtx_log_level level);

// A log record is one line: logfmt (the default) or one JSON object,
//   ts=2026-12-05T01:07:11.123Z level=info node=participant-1 msg=PREPARED
//     txid=42 text="voted yes" suppressed=3
//   {"ts":"2026-12-05T01:07:11.123Z","level":"info","node":"participant-1",
//    "msg":"PREPARED","txid":42,"text":"voted yes","suppressed":3}
// in this order: ts (UTC, milliseconds), level (debug, info, warn, error),
// node (the name given to dtx_log_init), msg (the message id, a constant
// per event), then the caller's fields, then text (the free-form
// sentence, absent when empty), then suppressed/suppressed_other (a rate
// limited line, see DTX_LOG_RL). The same thing has the same key
// everywhere: txid (a 2PC/3PC/pc transaction id, decimal), gid (a saga's
// global id), peer (another node's id), state, why. A logfmt value is bare
// when it is non-empty and has no space, '"', '=' or control character,
// else quoted with \" \\ \n \r \t and \u00XX escapes; one record never
// spans two lines in either format.
typedef enum dtx_log_format {
	DTX_LOG_FMT_LOGFMT = 0,
	DTX_LOG_FMT_JSON = 1,
} dtx_log_format;

// Parses "logfmt" or "json"; DTX_EINVAL otherwise.
dtx_err dtx_log_format_parse(const char *s, dtx_log_format *out);

// Sets the process's record format (logfmt until called). Call from main()
// before starting threads.
void dtx_log_set_format(dtx_log_format f);

typedef enum dtx_log_kind {
	DTX_LF_STR = 0, // s (NULL: the field is left out)
	DTX_LF_U64 = 1, // u
	DTX_LF_I64 = 2, // i
} dtx_log_kind;

// One field of a record: key (a constant [a-z0-9_]+ name) and a value.
typedef struct dtx_log_field {
	const char *key;
	dtx_log_kind kind;
	const char *s;
	uint64_t u;
	int64_t i;
} dtx_log_field;

#define DTX_LF_S(k, v)                                                         \
	((dtx_log_field) { .key = (k), .kind = DTX_LF_STR, .s = (v) })
#define DTX_LF_U(k, v)                                                         \
	((dtx_log_field) { .key = (k), .kind = DTX_LF_U64, .u = (uint64_t)(v) })
#define DTX_LF_I(k, v)                                                         \
	((dtx_log_field) { .key = (k), .kind = DTX_LF_I64, .i = (int64_t)(v) })
#define DTX_LF_TXID(v) DTX_LF_U("txid", (v))
#define DTX_LF_GID(v) DTX_LF_S("gid", (v))
#define DTX_LF_PEER(v) DTX_LF_U("peer", (v))
// The field list argument of DTX_LOGF: DTX_FIELDS(DTX_LF_TXID(t), ...).
#define DTX_FIELDS(...)                                                        \
	{                                                                      \
		__VA_ARGS__                                                    \
	}

// What one record holds, for dtx_log_format_record.
typedef struct dtx_log_record {
	uint64_t realtime_ns; // wall-clock time of the event
	dtx_log_level level;
	const char *node; // borrowed
	const char *msgid; // borrowed
	const dtx_log_field *fields; // borrowed, nfields of them
	size_t nfields;
	const char *text; // borrowed; NULL or "" for none
	uint64_t suppressed, suppressed_other; // 0: left out
} dtx_log_record;

// Formats r as one line ending in '\n' into buf[0..cap) (cap >= 64),
// NUL-terminated; returns the line's length. A record longer than the
// buffer is cut inside a value, which is still closed (the line stays
// valid logfmt or JSON) and ends in "..."; later fields are dropped.
// Pure and thread-safe.
size_t dtx_log_format_record(
    char *buf, size_t cap, dtx_log_format fmt, const dtx_log_record *r);

// One key/value of a parsed record: both point into the caller's scratch.
typedef struct dtx_log_kv {
	const char *key;
	const char *val;
} dtx_log_kv;

// Parses one log line (logfmt or, when it starts with '{', a flat JSON
// object of strings and integers as dtx_log_format_record writes) into at
// most max pairs, keys and unescaped values copied into scratch[0..cap).
// Returns the number of pairs, or -1 when the line is not a record (no
// "ts" first, bad quoting, scratch too small). Pure and thread-safe.
int dtx_log_parse(const char *line, size_t len, dtx_log_kv *kv, size_t max,
    char *scratch, size_t cap);

// The value of key among kv[0..n), or NULL.
const char *dtx_log_get(const dtx_log_kv *kv, int n, const char *key);

// Writes one record at level with msgid, the nf fields f and the text
// formatted from fmt (may be NULL) to stderr in the process's format.
// Thread-safe; the line is written with a single write(2).
void dtx_log_emit(dtx_log_level level, const char *msgid,
    const dtx_log_field *f, size_t nf, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

// As dtx_log_emit with no fields: "text" is the formatted fmt.
void dtx_log_write(dtx_log_level level, const char *msgid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// The level is checked before the arguments are formatted.
#define DTX_LOG(level, msgid, ...)                                             \
	do {                                                                   \
		if (dtx_log_enabled(level))                                    \
			dtx_log_write((level), (msgid), __VA_ARGS__);          \
	} while (0)

// A record with fields: DTX_LOGF(DTX_LOG_DEBUG, "PREPARED",
// DTX_FIELDS(DTX_LF_TXID(t), DTX_LF_S("state", "prepared")), "fmt", ...).
#define DTX_LOGF(level, msgid, fields, ...)                                    \
	do {                                                                   \
		if (dtx_log_enabled(level)) {                                  \
			const dtx_log_field dtx_lf_[] = fields;                \
			dtx_log_emit((level), (msgid), dtx_lf_,                \
			    sizeof(dtx_lf_) / sizeof(dtx_lf_[0]),              \
			    __VA_ARGS__);                                      \
		}                                                              \
	} while (0)

// A rate limiter for repeated lines: each (reason, key) may pass once per
// interval; the lines held back in between are counted, and the next line
// that passes reports the count. The table has DTX_RL_SLOTS slots, so its
// memory is fixed: a new (reason, key) takes a free slot or the one whose
// last line is oldest, whose pending count is then reported with the next
// line of any key (as "others"). A plain struct so that it can be
// embedded; every function is thread-safe (one mutex).
#define DTX_RL_SLOTS 64
#define DTX_RL_INTERVAL_NS UINT64_C(1000000000) // the log's: one second

typedef struct dtx_rl_slot {
	char reason[32]; // copied, truncated to 31 bytes
	uint64_t key;
	uint64_t last_ns; // when its last line passed
	uint64_t suppressed; // lines held back since then
	bool used;
} dtx_rl_slot;

typedef struct dtx_rl {
	pthread_mutex_t mu;
	uint64_t interval_ns;
	uint64_t evicted; // held-back counts of reused slots, not yet reported
	dtx_rl_slot slot[DTX_RL_SLOTS];
} dtx_rl;

// Initialises rl (every slot free) with the given interval. DTX_ENOMEM
// when the mutex cannot be made. Pair with dtx_rl_fini.
dtx_err dtx_rl_init(dtx_rl *rl, uint64_t interval_ns);
void dtx_rl_fini(dtx_rl *rl);

// True when a line for (reason, key) at monotonic time now_ns may be
// written: the first one, or one at least an interval after the last that
// passed. Then *suppressed gets the number of lines of this (reason, key)
// held back since, and *others the count of slots reused since the last
// line passed; both are reset. False (counted) otherwise. reason is
// borrowed (NULL counts as "").
bool dtx_rl_pass(dtx_rl *rl, const char *reason, uint64_t key, uint64_t now_ns,
    uint64_t *suppressed, uint64_t *others);

// The one rate limit of the log, for a warning that may repeat in a flood
// (a refused message, a forged or stale request, a clock rejection): the
// process's own limiter lets one line per second through for each (msgid,
// key) and gives the next line that passes suppressed=N for the N like it
// held back (suppressed_other=M for the counts of evicted keys). Lines
// held back are not formatted. key tells apart what should not hide each
// other: a peer's node id, or dtx_log_rl_key(peer, what). Thread-safe.
void dtx_log_emit_rl(dtx_log_level level, const char *msgid, uint64_t key,
    const dtx_log_field *f, size_t nf, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

// A rate-limit key for (peer, what): peer in the high 32 bits, a hash of
// what (NULL: "") in the low ones.
uint64_t dtx_log_rl_key(uint32_t peer, const char *what);

#define DTX_LOG_RL(level, msgid, key, ...)                                     \
	do {                                                                   \
		if (dtx_log_enabled(level))                                    \
			dtx_log_emit_rl(                                       \
			    (level), (msgid), (key), NULL, 0, __VA_ARGS__);    \
	} while (0)

#define DTX_LOGF_RL(level, msgid, key, fields, ...)                            \
	do {                                                                   \
		if (dtx_log_enabled(level)) {                                  \
			const dtx_log_field dtx_lf_[] = fields;                \
			dtx_log_emit_rl((level), (msgid), (key), dtx_lf_,      \
			    sizeof(dtx_lf_) / sizeof(dtx_lf_[0]),              \
			    __VA_ARGS__);                                      \
		}                                                              \
	} while (0)

// ---------------------------------------------------------------- memory

// Library code allocates through these so that tests can make the n-th
// allocation fail. All are thread-safe. dtx_free(NULL) does nothing.
void *dtx_alloc(size_t n);
void *dtx_calloc(size_t count, size_t size);
void *dtx_realloc(void *p, size_t n);
void dtx_free(void *p);
// Returns an owned copy (free with dtx_free), or NULL when out of memory.
char *dtx_strdup(const char *s);
void *dtx_memdup(const void *p, size_t n);

// Makes room for element n of the growing array whose pointer is at arrp
// (a T ** passed as void *, T of size bytes) with *cap slots: the first
// growth makes first slots, later ones double. DTX_ENOMEM leaves the
// array and *cap as they were. DTX_GROW takes the array and its size_t
// capacity by name.
dtx_err dtx_grow(void *arrp, size_t n, size_t *cap, size_t first, size_t size);
#define DTX_GROW(arr, n, cap, first)                                           \
	dtx_grow(&(arr), (n), &(cap), (first), sizeof(*(arr)))

// Appends item to the tail of a singly linked FIFO queue whose first and
// last elements are head and tail (both NULL when it is empty) and whose
// elements link through their member link, which it sets to NULL. A
// macro so that it serves every element type; it evaluates its arguments
// more than once. The caller serialises access to the queue.
#define DTX_QUEUE_PUSH(head, tail, item, link)                                 \
	do {                                                                   \
		(item)->link = NULL;                                           \
		if ((tail) != NULL)                                            \
			(tail)->link = (item);                                 \
		else                                                           \
			(head) = (item);                                       \
		(tail) = (item);                                               \
	} while (0)

// Test hook: after n more successful allocations, every allocation fails
// until the hook is disarmed with n < 0. n == 0 fails the very next one.
void dtx_alloc_fail_after(long n);
// Test hook: true once an allocation has been failed by the hook since the
// last dtx_alloc_fail_after() call.
bool dtx_alloc_failed(void);

// ---------------------------------------------------------------- CRC32C

// CRC32C (Castagnoli) of buf, continuing from crc (start with 0). Uses the
// SSE4.2 instruction when the CPU has it.
uint32_t dtx_crc32c(uint32_t crc, const void *buf, size_t len);

// ---------------------------------------------------------------- time

// Monotonic time in nanoseconds, for measuring intervals and timeouts.
uint64_t dtx_mono_ns(void);
// System wall-clock time in nanoseconds since the epoch (not skewed: the
// clock/ module's source is what protocol timestamps read).
uint64_t dtx_wall_ns(void);
// Sleeps for ms milliseconds (restarting on EINTR).
void dtx_sleep_ms(uint64_t ms);
// Sleeps for ms milliseconds in slices of at most 20 ms, returning early
// once stop(arg) is true.
void dtx_nap_ms(uint64_t ms, bool (*stop)(void *arg), void *arg);
// The time ns nanoseconds from now on clock clk (CLOCK_MONOTONIC or
// CLOCK_REALTIME), as the absolute deadline pthread_cond_timedwait takes
// for a condition variable that uses clk.
struct timespec dtx_time_after(clockid_t clk, uint64_t ns);

// Stops n threads th[0..n) that wait on cv under mu until *stop: sets
// *stop under mu, wakes every waiter on cv, then joins each thread. All
// borrowed; mu and cv stay initialised.
void dtx_threads_stop(pthread_mutex_t *mu, pthread_cond_t *cv, bool *stop,
    const pthread_t *th, size_t n);

// ---------------------------------------------------------------- files

// Creates directory path and its missing parents (mode 0755); an existing
// one is fine. DTX_EINVAL when path is longer than PATH_MAX, else the
// translated errno of the mkdir that failed.
dtx_err dtx_mkdir_p(const char *path);

// Removes path and, for a directory, everything below it, without
// following symbolic links. A missing path is fine. Otherwise DTX_OK, or
// the translated errno of the first entry that could not be removed (the
// others are still tried).
dtx_err dtx_rmtree(const char *path);

// Sorts v[0..n) in ascending order.
void dtx_sort_u64(uint64_t *v, size_t n);

// ---------------------------------------------------------------- PRNG

// splitmix64: a small, fast, seedable generator. *state is the whole state.
uint64_t dtx_rand_next(uint64_t *state);
// Uniform integer in [0, n); n > 0.
uint64_t dtx_rand_below(uint64_t *state, uint64_t n);

// ---------------------------------------------------------------- CSPRNG

// Fills buf[0..n) with bytes from the kernel's CSPRNG (getrandom(2); it
// blocks only until the pool is first initialised after boot), for
// whatever a peer must not guess: transaction ids, nonces. DTX_EINVAL when
// buf is NULL and n > 0; otherwise the translated errno of a failed call
// (DTX_EIO for a kernel without getrandom), with buf then in an
// unspecified state: never fall back to a weaker source. Thread-safe.
dtx_err dtx_random_bytes(void *buf, size_t n);

// One uniformly random uint64 from dtx_random_bytes into *out (written
// only on success). DTX_EINVAL when out is NULL; errors as above.
dtx_err dtx_random_u64(uint64_t *out);

// ---------------------------------------------------------------- crash points

// Fault tests name a crash point in the environment variable DTX_CRASH_AT
// ("name" or "name:N" for the N-th time the point is reached, default 1).
// When this process reaches that point it logs the name and kills itself
// with SIGKILL, exactly as kill -9 would. Costs one comparison otherwise.
void dtx_crashpoint(const char *name);

// Arms crash point name (copied; at most 127 bytes) for its nth hit from
// now, replacing whatever DTX_CRASH_AT armed; NULL disarms. Thread-safe
// with respect to dtx_crashpoint.
void dtx_crashpoint_arm(const char *name, long nth);

// True while a crash point is armed: lets a caller that names its points
// at run time skip building the name.
bool dtx_crashpoint_armed(void);

// As dtx_crashpoint, for a point reached after something left the process
// (a reply handed to the network) that must get out before the kill: the
// process dies after_ms later, and from the moment the point is reached no
// log fsync of the process ends and no request leaves it (dtx_crash_gate),
// so what was not durable or sent then is lost, as if the power failed
// just after the point.
void dtx_crashpoint_soon(const char *name, uint32_t after_ms);

// Called by a log before each fsync and by an RPC client before each
// request it sends: returns at once, unless a dtx_crashpoint_soon was
// reached, in which case it waits for the kill.
void dtx_crash_gate(void);

// ---------------------------------------------------------------- config

typedef enum dtx_cfg_type {
	DTX_CFG_INT, // int64_t, checked against [min, max]
	DTX_CFG_STR, // char *, owned by the config struct
	DTX_CFG_BOOL, // bool; "--name" alone means true
	DTX_CFG_DOUBLE, // double, checked against [min, max]
} dtx_cfg_type;

// One row of a config table: the flag is "--name", the environment
// variable is <prefix><NAME> with '-' turned into '_' and upper-cased.
typedef struct dtx_cfg_opt {
	const char *name;
	dtx_cfg_type type;
	size_t offset; // offsetof() the field in the config struct
	int64_t min, max; // for INT and DOUBLE
	const char *def; // default as text, NULL for none (STR stays NULL)
	const char *help;
} dtx_cfg_opt;

// Fills cfg from the table's defaults, then the environment (when
// env_prefix is non-NULL, e.g. "DTX_"), then argv[0..argc). Arguments that
// are not flags are returned in positional[] (borrowed from argv) when
// positional is non-NULL, up to max_pos of them; *npos gets the count.
// On error returns DTX_EINVAL and writes one line saying what is wrong and
// what would be right into err (size errlen); cfg must still be passed to
// dtx_cfg_fini. Not thread-safe (call from main).
dtx_err dtx_cfg_load(const dtx_cfg_opt *table, size_t n, void *cfg,
    const char *env_prefix, int argc, char **argv, char **positional,
    int max_pos, int *npos, char *err, size_t errlen);

// Frees the strings dtx_cfg_load stored in cfg. cfg may be partly filled.
void dtx_cfg_fini(const dtx_cfg_opt *table, size_t n, void *cfg);

// Prints one line per option: "  --name VALUE  help (default: def)".
void dtx_cfg_usage(FILE *out, const dtx_cfg_opt *table, size_t n);

// ---------------------------------------------------------------- topology

// A cluster's topology: which node ids exist, their roles and addresses.
// It is read from a small text file, one node a line:
//
//     # role         id  url
//     coordinator    0   tcp://127.0.0.1:7100
//     participant    1   tcp://127.0.0.1:7101
//     participant    2   tcp://127.0.0.1:7102
//     saga           3   tcp://127.0.0.1:7103
//     client         4
//
// Blank lines and '#' comments are ignored. Ids are 0 .. DTX_TOPO_MAX-1 and
// unique (they index vector clocks); a client line (no url) reserves the
// id the CLI uses as its own. Keys belong to participants by
// dtx_topo_route(): CRC32C(key) modulo the number of participants, taken
// in the order their lines appear, so every process routes a key alike.
#define DTX_TOPO_MAX 32
#define DTX_URL_MAX 256

typedef enum dtx_role {
	DTX_ROLE_COORDINATOR,
	DTX_ROLE_PARTICIPANT,
	DTX_ROLE_SAGA,
	DTX_ROLE_CLIENT,
} dtx_role;

typedef struct dtx_node {
	uint32_t id;
	dtx_role role;
	char url[DTX_URL_MAX]; // empty for clients
} dtx_node;

typedef struct dtx_topo {
	uint32_t n; // nodes[0 .. n)
	dtx_node nodes[DTX_TOPO_MAX];
	uint32_t nparts; // participants, in file order
	uint32_t parts[DTX_TOPO_MAX]; // their ids
	uint32_t max_id; // largest id + 1 (the vector clock size)
} dtx_topo;

// Parses topology text into *out. On error returns DTX_EINVAL with
// "line N: what is wrong" in err. Borrows text.
dtx_err dtx_topo_parse(
    const char *text, dtx_topo *out, char *err, size_t errlen);

// Reads and parses a topology file (DTX_ENOENT if missing, DTX_EINVAL with
// the reason in err when malformed).
dtx_err dtx_topo_load(
    const char *path, dtx_topo *out, char *err, size_t errlen);

// Writes topo in the text form above to path atomically (tmp + rename).
dtx_err dtx_topo_save(const dtx_topo *topo, const char *path);

// The node with this id, or NULL. Borrowed from topo.
const dtx_node *dtx_topo_find(const dtx_topo *topo, uint32_t id);

// The first node with this role, or NULL.
const dtx_node *dtx_topo_first(const dtx_topo *topo, dtx_role role);

// The id of the participant that owns key. topo must have a participant.
uint32_t dtx_topo_route(const dtx_topo *topo, const void *key, size_t len);

// "coordinator", "participant", "saga", "client".
const char *dtx_role_name(dtx_role role);

// ---------------------------------------------------------------- bytes

// Little-endian integers at p (p has room for their size). Every on-disk
// format of dtx is little-endian and goes through these.

// The low n bytes of v (n <= 8) at p, least significant first.
static inline void
dtx_put_le(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

// The n-byte (n <= 8) little-endian integer at p.
static inline uint64_t
dtx_get_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = n; i > 0; i--)
		v = (v << 8) | p[i - 1];
	return v;
}

static inline void
dtx_put_le16(uint8_t *p, uint16_t v)
{
	dtx_put_le(p, v, 2);
}

static inline void
dtx_put_le32(uint8_t *p, uint32_t v)
{
	dtx_put_le(p, v, 4);
}

static inline void
dtx_put_le64(uint8_t *p, uint64_t v)
{
	dtx_put_le(p, v, 8);
}

static inline uint16_t
dtx_get_le16(const uint8_t *p)
{
	return (uint16_t)dtx_get_le(p, 2);
}

static inline uint32_t
dtx_get_le32(const uint8_t *p)
{
	return (uint32_t)dtx_get_le(p, 4);
}

static inline uint64_t
dtx_get_le64(const uint8_t *p)
{
	return dtx_get_le(p, 8);
}

// A growable byte buffer for encoding records (bytes.c). Start from
// { 0 }; an append that cannot allocate sets oom and every later append
// does nothing, so an encoder checks oom once at the end. Not thread-safe.
typedef struct dtx_buf {
	uint8_t *p; // owned (dtx_buf_fini)
	size_t len, cap;
	bool oom; // an append failed; the content is incomplete
} dtx_buf;

// Appends n bytes of p (borrowed).
void dtx_buf_put(dtx_buf *b, const void *p, size_t n);
// Append little-endian integers.
void dtx_buf_u8(dtx_buf *b, uint8_t v);
void dtx_buf_u16(dtx_buf *b, uint16_t v);
void dtx_buf_u32(dtx_buf *b, uint32_t v);
void dtx_buf_u64(dtx_buf *b, uint64_t v);
// Frees the bytes and resets b to { 0 }.
void dtx_buf_fini(dtx_buf *b);

// A bounds-checked reader over borrowed bytes (bytes.c): a read past the
// end sets bad and returns 0 (NULL for dtx_rd_bytes), and so does every
// read after it.
typedef struct dtx_rd {
	const uint8_t *p;
	size_t len, off;
	bool bad;
} dtx_rd;

// The next n bytes (borrowed from r->p), or NULL.
const uint8_t *dtx_rd_bytes(dtx_rd *r, size_t n);
// Read little-endian integers.
uint8_t dtx_rd_u8(dtx_rd *r);
uint16_t dtx_rd_u16(dtx_rd *r);
uint32_t dtx_rd_u32(dtx_rd *r);
uint64_t dtx_rd_u64(dtx_rd *r);
// A length-prefixed byte string: a uint32 length, then that many bytes
// (borrowed from r->p). Stores the length in *len and returns the bytes,
// or NULL (and sets bad) past the end or when the length is over max.
const uint8_t *dtx_rd_blob(dtx_rd *r, uint32_t max, uint32_t *len);

#endif // DTX_COMMON_H
