// SPDX-License-Identifier: MIT
//
// Crash test: a child process appends forced records from several threads
// and reports every acknowledged LSN through a pipe; the parent SIGKILLs
// it at random moments, 60 rounds, then reopens the WAL (and the MVCC
// store) and checks that every acknowledged record is there and intact
// and that writes are taken again.

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_storage_util.h"

enum { ROUNDS = 60, WRITERS = 4 };

typedef struct child_arg {
	stor_wal *w;
	stor_kv *kv;
	int fd;
	int id;
	pthread_mutex_t *mu;
} child_arg;

// Record payloads carry their LSN's check pattern only after the append
// returned it, so the child writes the pattern of a tag it chooses: the
// tag is (writer id, counter) and the parent checks the bytes against it.
static size_t
tag_payload(uint64_t tag, unsigned char *out)
{
	size_t n = 8 + (size_t)(tag % 40);
	memcpy(out, &tag, 8);
	for (size_t i = 8; i < n; i++)
		out[i] = (unsigned char)(tag * 131 + i);
	return n;
}

static bool
tag_ok(const unsigned char *p, size_t len, uint64_t *tag)
{
	if (len < 8)
		return false;
	memcpy(tag, p, 8);
	unsigned char want[64];
	size_t n = tag_payload(*tag, want);
	return n == len && memcmp(p, want, n) == 0;
}

// Tells the parent that the pair (x, y) is acknowledged; exits when the
// pipe fails.
static void
send_ack(child_arg *a, uint64_t x, uint64_t y)
{
	uint64_t msg[2] = { x, y };
	pthread_mutex_lock(a->mu);
	ssize_t r = write(a->fd, msg, sizeof(msg));
	pthread_mutex_unlock(a->mu);
	if (r != (ssize_t)sizeof(msg))
		_exit(4);
}

// The WAL options of every crash round: small segments, so that rounds
// also cross segment boundaries.
static void
crash_wal_opts(stor_wal_opts *o)
{
	stor_wal_opts_init(o);
	o->segment_bytes = 16384;
}

static void *
child_writer(void *p)
{
	child_arg *a = p;
	for (uint64_t i = 0;; i++) {
		uint64_t tag = ((uint64_t)a->id << 40) | i;
		unsigned char buf[64];
		size_t n = tag_payload(tag, buf);
		uint64_t lsn;
		if (stor_wal_append(a->w, 7, buf, n, true, &lsn) != DTX_OK)
			_exit(3);
		send_ack(a, lsn, tag);
	}
	return NULL;
}

static void *
child_kv_writer(void *p)
{
	child_arg *a = p;
	for (uint64_t i = 1;; i++) {
		char key[32];
		int kl = snprintf(key, sizeof(key), "k%d-%llu", a->id,
		    (unsigned long long)(i % 50));
		stor_txn *t;
		if (stor_txn_begin(a->kv, CLK_TS_MAX, &t) != DTX_OK ||
		    stor_txn_put_i64(t, key, (size_t)kl, (int64_t)i) != DTX_OK)
			_exit(5);
		if (stor_txn_commit(t, clk_ts_make(1000 + i, 0)) != DTX_OK)
			_exit(6);
		send_ack(a, (uint64_t)a->id, i);
	}
	return NULL;
}

static void
run_child(const char *dir, int fd, bool kv)
{
	stor_wal_opts o;
	crash_wal_opts(&o);
	child_arg a[WRITERS];
	pthread_t th[WRITERS];
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	stor_wal *w = NULL;
	stor_kv *s = NULL;
	if (kv) {
		stor_kv_opts ko;
		stor_kv_opts_init(&ko);
		ko.wal = o;
		if (stor_kv_open(dir, &ko, &s) != DTX_OK)
			_exit(2);
	} else if (stor_wal_open(dir, &o, NULL, NULL, NULL, &w) != DTX_OK) {
		_exit(2);
	}
	for (int i = 0; i < WRITERS; i++) {
		a[i] = (child_arg) {
			.w = w, .kv = s, .fd = fd, .id = i, .mu = &mu
		};
		pthread_create(
		    &th[i], NULL, kv ? child_kv_writer : child_writer, &a[i]);
	}
	for (;;)
		pause();
}

// Starts the child, lets it run for delay_ms, kills it with SIGKILL and
// returns what it acknowledged (pairs of u64) in *acks (malloc'd).
static size_t
crash_round(const char *dir, bool kv, uint64_t delay_us, uint64_t **acks)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		run_child(dir, p[1], kv);
		_exit(1);
	}
	close(p[1]);
	usleep((useconds_t)delay_us);
	kill(pid, SIGKILL);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	size_t cap = 1024, n = 0;
	uint64_t *v = malloc(cap * sizeof(uint64_t));
	for (;;) {
		if (n + 2 > cap) {
			cap *= 2;
			v = realloc(v, cap * sizeof(uint64_t));
		}
		ssize_t r = read(p[0], v + n, 2 * sizeof(uint64_t));
		if (r <= 0)
			break;
		assert_int_equal(r, 2 * sizeof(uint64_t));
		n += 2;
	}
	close(p[0]);
	*acks = v;
	return n / 2;
}

typedef struct seen {
	uint64_t *tag; // tag by LSN
	size_t cap;
	uint64_t last;
	bool bad;
} seen;

static dtx_err
on_rec(void *arg, uint64_t lsn, uint8_t type, const void *p, size_t len)
{
	seen *s = arg;
	uint64_t tag;
	if (type != 7 || !tag_ok(p, len, &tag)) {
		s->bad = true;
		return DTX_OK;
	}
	if (lsn >= s->cap) {
		size_t nc = s->cap ? s->cap : 4096;
		while (nc <= lsn)
			nc *= 2;
		s->tag = realloc(s->tag, nc * sizeof(uint64_t));
		memset(s->tag + s->cap, 0xff, (nc - s->cap) * sizeof(uint64_t));
		s->cap = nc;
	}
	s->tag[lsn] = tag;
	s->last = lsn;
	return DTX_OK;
}

// The last LSN the checkpoint covers: a round whose child was killed
// before it appended anything replays no record after it.
static dtx_err
on_ckpt(void *arg, uint64_t lsn, const void *blob, size_t len)
{
	seen *s = arg;
	(void)blob;
	(void)len;
	s->last = lsn;
	return DTX_OK;
}

// Checks what the parent finds in dir after round, whose child
// acknowledged the n pairs in acks.
typedef void (*crash_check_fn)(
    const char *dir, int round, const uint64_t *acks, size_t n);

// Runs ROUNDS crash rounds in a fresh directory, each killing its child
// after a delay drawn from seed, and checks each with check. Returns the
// number of acknowledgements checked.
static size_t
crash_rounds(const char *tag, uint64_t seed, bool kv, crash_check_fn check)
{
	char dir[256];
	st_tmpdir(dir, sizeof(dir), tag);
	size_t total = 0;
	for (int round = 0; round < ROUNDS; round++) {
		uint64_t *acks;
		uint64_t delay = 2000 + dtx_rand_below(&seed, 40000);
		size_t n = crash_round(dir, kv, delay, &acks);
		total += n;
		check(dir, round, acks, n);
		free(acks);
	}
	(void)dtx_rmtree(dir);
	return total;
}

static void
check_wal_round(const char *dir, int round, const uint64_t *acks, size_t n)
{
	seen s = { 0 };
	stor_wal_opts o;
	crash_wal_opts(&o);
	stor_wal *w;
	assert_int_equal(
	    stor_wal_open(dir, &o, on_ckpt, on_rec, &s, &w), DTX_OK);
	assert_false(s.bad);
	for (size_t i = 0; i < n; i++) {
		uint64_t lsn = acks[2 * i], tag = acks[2 * i + 1];
		assert_true(lsn < s.cap);
		assert_int_equal(s.tag[lsn], tag);
	}
	// The store takes writes again; the record survives.
	unsigned char buf[64];
	size_t len = tag_payload(1ull << 62, buf);
	uint64_t l;
	assert_int_equal(stor_wal_append(w, 7, buf, len, true, &l), 0);
	assert_int_equal(l, s.last + 1);
	// Keep the directory small: checkpoint every few rounds.
	if (round % 10 == 9)
		assert_int_equal(stor_wal_checkpoint(w, l, 0, "c", 1), 0);
	stor_wal_close(w);
	free(s.tag);
}

static void
test_crash_wal(void **state)
{
	(void)state;
	size_t total =
	    crash_rounds("crash", 0x5eed0001, false, check_wal_round);
	print_message("%d crash rounds, %zu acknowledged appends checked\n",
	    ROUNDS, total);
}

static void
check_kv_round(const char *dir, int round, const uint64_t *acks, size_t n)
{
	int64_t want[WRITERS][50];
	memset(want, 0, sizeof(want));
	for (size_t i = 0; i < n; i++) {
		uint64_t id = acks[2 * i], v = acks[2 * i + 1];
		assert_true(id < WRITERS);
		if ((int64_t)v > want[id][v % 50])
			want[id][v % 50] = (int64_t)v;
	}
	stor_kv_opts ko;
	stor_kv_opts_init(&ko);
	crash_wal_opts(&ko.wal);
	stor_kv *kv = st_kv_open(dir, &ko);
	for (int id = 0; id < WRITERS; id++) {
		for (int k = 0; k < 50; k++) {
			if (want[id][k] == 0)
				continue;
			char key[32];
			int kl = snprintf(key, sizeof(key), "k%d-%d", id, k);
			int64_t v;
			clk_ts ts;
			// The value committed at ts 1000+v: reading at exactly
			// that timestamp must find it.
			clk_ts at =
			    clk_ts_make(1000 + (uint64_t)want[id][k], 0);
			assert_int_equal(stor_kv_get_i64(kv, key, (size_t)kl,
			                     at, &v, &ts, NULL),
			    DTX_OK);
			assert_int_equal(v, want[id][k]);
			assert_int_equal(ts, at);
		}
	}
	st_put_local(
	    kv, "after", round, clk_ts_make(1u << 30, (uint32_t)round));
	if (round % 10 == 9)
		assert_int_equal(stor_kv_checkpoint(kv), 0);
	stor_kv_close(kv);
	if (round % 10 == 9) {
		// Start over now and then so replay stays short.
		(void)dtx_rmtree(dir);
		assert_int_equal(mkdir(dir, 0755), 0);
	}
}

static void
test_crash_kv(void **state)
{
	(void)state;
	size_t total =
	    crash_rounds("crashkv", 0x5eed0002, true, check_kv_round);
	print_message("%d kv crash rounds, %zu acknowledged commits checked\n",
	    ROUNDS, total);
}

// The child of test_crashpoint_soon: a forced record, a reach of the point
// while it is not armed (nothing happens), then the point armed and
// reached, and an fsync that must never end: it reports each step through
// fd ('a' before arming, 'b' after the reach, 's' should the sync end).
static void
soon_child(const char *dir, int fd)
{
	stor_wal_opts o;
	crash_wal_opts(&o);
	stor_wal *w = NULL;
	uint64_t lsn;
	if (stor_wal_open(dir, &o, NULL, NULL, NULL, &w) != DTX_OK ||
	    stor_wal_append(w, 7, "one", 3, true, &lsn) != DTX_OK)
		_exit(2);
	dtx_crashpoint_soon("test.soon", 1);
	if (stor_wal_append(w, 7, "two", 3, true, &lsn) != DTX_OK ||
	    write(fd, "a", 1) != 1)
		_exit(3);
	dtx_crashpoint_arm("test.soon", 1);
	dtx_crashpoint_soon("test.soon", 300);
	if (write(fd, "b", 1) != 1 ||
	    stor_wal_append(w, 7, "three", 5, false, &lsn) != DTX_OK)
		_exit(4);
	if (stor_wal_sync(w, lsn) == DTX_OK)
		(void)!write(fd, "s", 1);
	_exit(5);
}

// dtx_crashpoint_soon: not armed, it does nothing; reached, it returns,
// the process lives on for the delay (SIGKILL about 300 ms later), and
// the fsync asked for in between never ends.
static void
test_crashpoint_soon(void **state)
{
	(void)state;
	char dir[256];
	st_tmpdir(dir, sizeof(dir), "soon");
	int p[2];
	assert_int_equal(pipe(p), 0);
	uint64_t t0 = dtx_mono_ns();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		soon_child(dir, p[1]);
	}
	close(p[1]);
	char got[8] = { 0 };
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(got) - 1 &&
	    (r = read(p[0], got + n, sizeof(got) - 1 - n)) > 0)
		n += (size_t)r;
	close(p[0]);
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	uint64_t ms = (dtx_mono_ns() - t0) / 1000000u;
	print_message("child said '%s', died after %llu ms\n", got,
	    (unsigned long long)ms);
	assert_string_equal(got, "ab");
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	assert_true(ms >= 250);
	(void)dtx_rmtree(dir);
}

int
main(void)
{
	dtx_log_init("test", DTX_LOG_OFF);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_wal),
		cmocka_unit_test(test_crash_kv),
		cmocka_unit_test(test_crashpoint_soon),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
