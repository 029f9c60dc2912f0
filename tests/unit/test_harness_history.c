// SPDX-License-Identifier: MIT
//
// The CLI's history model and strict JSON reader: stamping, concurrent
// appends, invocation/completion pairing, fault windows derived from nemesis
// ops, and a JSON reader that accepts RFC 8259 and rejects everything else
// without crashing or leaking, also when allocations fail.

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "harness.h"

static void
test_add_stamps_index_and_time(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	assert_non_null(h);
	assert_int_equal(hx_history_add(h, 0, HX_OP_INVOKE, "transfer",
	                     "{\"from\":1,\"to\":2,\"amount\":5}", NULL),
	    DTX_OK);
	dtx_sleep_ms(2);
	assert_int_equal(
	    hx_history_add(h, 0, HX_OP_INFO, "transfer", NULL, "timeout"),
	    DTX_OK);
	assert_int_equal(hx_history_add(h, HX_PROC_NEMESIS, HX_OP_INFO, "kill",
	                     "{\"targets\":[1]}", NULL),
	    DTX_OK);
	assert_int_equal(hx_history_len(h), 3);
	const hx_op *a = hx_history_get(h, 0), *b = hx_history_get(h, 1);
	assert_int_equal(a->index, 0);
	assert_int_equal(b->index, 1);
	assert_true(b->time_ns - a->time_ns >= 2000000);
	assert_string_equal(b->error, "timeout");
	assert_null(b->value);
	assert_null(hx_history_get(h, 3));
	char buf[24];
	assert_string_equal(
	    hx_process_name(hx_history_get(h, 2)->process, buf, sizeof(buf)),
	    "nemesis");
	assert_string_equal(hx_process_name(17, buf, sizeof(buf)), "17");
	hx_op_type t;
	assert_int_equal(hx_op_type_parse("info", &t), DTX_OK);
	assert_int_equal(t, HX_OP_INFO);
	assert_int_equal(hx_op_type_parse("done", &t), DTX_EINVAL);
	assert_string_equal(hx_op_type_name(HX_OP_FAIL), "fail");
	hx_history_free(h);
	hx_history_free(NULL);
}

static void
test_add_rejects_bad_arguments(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	assert_int_equal(
	    hx_history_add(h, 0, HX_OP_OK, "read", "{\"ts\":", NULL),
	    DTX_EINVAL);
	assert_int_equal(
	    hx_history_add(h, 0, HX_OP_OK, "", NULL, NULL), DTX_EINVAL);
	assert_int_equal(
	    hx_history_add(h, 0, HX_OP_OK, NULL, NULL, NULL), DTX_EINVAL);
	assert_int_equal(
	    hx_history_add(h, -7, HX_OP_OK, "read", NULL, NULL), DTX_EINVAL);
	assert_int_equal(
	    hx_history_add(h, 0, (hx_op_type)9, "read", NULL, NULL),
	    DTX_EINVAL);
	assert_int_equal(
	    hx_history_append(h, -1, 0, HX_OP_OK, "read", NULL, NULL),
	    DTX_EINVAL);
	assert_int_equal(hx_history_len(h), 0);
	hx_history_free(h);
}

#define THREADS 8
#define PER_THREAD 3000

typedef struct writer {
	hx_history *h;
	int64_t process;
} writer;

static void *
write_ops(void *arg)
{
	writer *w = arg;
	char v[64];
	for (int i = 0; i < PER_THREAD; i++) {
		snprintf(v, sizeof(v), "{\"seq\":%d}", i);
		if (hx_history_add(w->h, w->process,
		        i % 2 ? HX_OP_OK : HX_OP_INVOKE, "transfer", v,
		        NULL) != DTX_OK)
			return (void *)1;
		// Readers run concurrently with writers.
		size_t n = hx_history_len(w->h);
		if (n == 0 || hx_history_get(w->h, n - 1) == NULL)
			return (void *)1;
	}
	return NULL;
}

static void
test_concurrent_appends(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	pthread_t t[THREADS];
	writer w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (writer) { h, i };
		assert_int_equal(
		    pthread_create(&t[i], NULL, write_ops, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		void *rv;
		pthread_join(t[i], &rv);
		assert_null(rv);
	}
	assert_int_equal(hx_history_len(h), THREADS * PER_THREAD);
	int next[THREADS] = { 0 };
	int64_t last = -1;
	for (size_t i = 0; i < hx_history_len(h); i++) {
		const hx_op *op = hx_history_get(h, i);
		assert_int_equal(op->index, (int64_t)i);
		assert_true(op->time_ns >= last);
		last = op->time_ns;
		char want[64];
		snprintf(want, sizeof(want), "{\"seq\":%d}", next[op->process]);
		assert_string_equal(op->value, want);
		next[op->process]++;
	}
	int64_t *pairs;
	assert_int_equal(hx_history_pairs(h, &pairs), DTX_OK);
	for (size_t i = 0; i < hx_history_len(h); i++) {
		const hx_op *op = hx_history_get(h, i);
		assert_true(pairs[i] >= 0);
		const hx_op *o = hx_history_get(h, (size_t)pairs[i]);
		assert_int_equal(o->process, op->process);
		assert_int_equal(pairs[pairs[i]], (int64_t)i);
	}
	dtx_free(pairs);
	hx_history_free(h);
}

static void
test_pairs(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	// 0: p0 invoke, 1: p1 invoke, 2: p1 ok, 3: p0 info, 4: p2 invoke
	// (never completes), 5: nemesis kill, 6: nemesis kill (done),
	// 7: p3 ok completing nothing, 8: p4 invoke, 9: p4 invoke (the first
	// never completed), 10: p4 fail.
	struct {
		int64_t p;
		hx_op_type t;
		const char *f;
	} ops[] = {
		{ 0, HX_OP_INVOKE, "transfer" },
		{ 1, HX_OP_INVOKE, "read" },
		{ 1, HX_OP_OK, "read" },
		{ 0, HX_OP_INFO, "transfer" },
		{ 2, HX_OP_INVOKE, "transfer" },
		{ HX_PROC_NEMESIS, HX_OP_INFO, "kill" },
		{ HX_PROC_NEMESIS, HX_OP_INFO, "kill" },
		{ 3, HX_OP_OK, "read" },
		{ 4, HX_OP_INVOKE, "read" },
		{ 4, HX_OP_INVOKE, "read" },
		{ 4, HX_OP_FAIL, "read" },
	};
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		assert_int_equal(hx_history_append(h, (int64_t)i * 10, ops[i].p,
		                     ops[i].t, ops[i].f, NULL, NULL),
		    DTX_OK);
	int64_t *p;
	assert_int_equal(hx_history_pairs(h, &p), DTX_OK);
	int64_t want[] = { 3, 2, 1, 0, -1, 6, 5, -1, -1, 10, 9 };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(p[i], want[i]);
	dtx_free(p);
	hx_history_free(h);
}

static void
test_faults_from_history(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	int64_t N = HX_PROC_NEMESIS;
	assert_int_equal(hx_history_append(h, 1000, N, HX_OP_INFO, "kill",
	                     "{\"targets\":[1,2]}", NULL),
	    DTX_OK);
	assert_int_equal(hx_history_append(h, 1100, N, HX_OP_INFO, "kill",
	                     "{\"targets\":[1,2],\"killed\":true}", NULL),
	    DTX_OK);
	assert_int_equal(
	    hx_history_append(h, 1500, 0, HX_OP_INVOKE, "read", NULL, NULL),
	    DTX_OK);
	assert_int_equal(
	    hx_history_append(h, 2000, N, HX_OP_INFO, "partition",
	        "{\"targets\":\"halves\",\"shape\":\"halves\"}", NULL),
	    DTX_OK);
	assert_int_equal(
	    hx_history_append(h, 2100, N, HX_OP_INFO, "partition", NULL, NULL),
	    DTX_OK);
	assert_int_equal(
	    hx_history_append(h, 3000, N, HX_OP_INFO, "restart", NULL, NULL),
	    DTX_OK);
	assert_int_equal(
	    hx_history_append(h, 3200, N, HX_OP_INFO, "restart", NULL, NULL),
	    DTX_OK);
	assert_int_equal(hx_history_append(h, 4000, N, HX_OP_INVOKE,
	                     "wal-bitflip", "{\"targets\":[3]}", NULL),
	    DTX_OK);
	assert_int_equal(hx_history_append(
	                     h, 4050, N, HX_OP_INFO, "wal-bitflip", NULL, NULL),
	    DTX_OK);
	hx_fault *f;
	size_t n;
	assert_int_equal(hx_faults_from_history(h, &f, &n), DTX_OK);
	assert_int_equal(n, 3);
	assert_string_equal(f[0].kind, "kill");
	assert_int_equal(f[0].start_ns, 1000);
	assert_int_equal(f[0].end_ns, 3200);
	assert_string_equal(f[0].targets, "1,2");
	assert_non_null(strstr(f[0].detail, "killed"));
	assert_string_equal(f[1].kind, "partition");
	assert_int_equal(f[1].start_ns, 2000);
	assert_int_equal(f[1].end_ns, -1); // never healed
	assert_string_equal(f[1].targets, "halves");
	assert_string_equal(f[2].kind, "wal-bitflip");
	assert_int_equal(f[2].start_ns, 4000);
	assert_int_equal(f[2].end_ns, 4050);
	assert_string_equal(f[2].targets, "3");
	hx_faults_free(f, n);
	hx_history_free(h);
}

// Appends a nemesis info op f with value v at t ns.
static void
nem(hx_history *h, int64_t t, const char *f, const char *v)
{
	assert_int_equal(
	    hx_history_append(h, t, HX_PROC_NEMESIS, HX_OP_INFO, f, v, NULL),
	    DTX_OK);
}

// Windows that name their fault close by their own id: two overlapping
// kills (max-concurrent-faults) get their own ends, in either order; a
// disk fault lasts until its restart; the final heal's "faults":[...]
// ends exactly the faults it names; kill-forever never ends; a slow link
// lasts until its slow-link-end; a closing op
// for a fault that is no longer open changes nothing; a start without an
// id (a history written before ids) is still closed by name, by the next
// closing op of its kind.
static void
test_fault_windows_by_id(void **state)
{
	(void)state;
	hx_history *h = hx_history_new();
	nem(h, 1000, "kill", "{\"targets\":[1],\"fault\":1}");
	nem(h, 1500, "kill", "{\"targets\":[2],\"fault\":2}");
	nem(h, 2000, "restart", "{\"targets\":[2],\"fault\":2}");
	nem(h, 3000, "restart", "{\"targets\":[1],\"fault\":1}");
	nem(h, 4000, "disk", "{\"targets\":[3],\"fault\":3}");
	nem(h, 4100, "packet", "{\"targets\":[1],\"fault\":4}");
	nem(h, 4200, "crashpoint", "{\"targets\":[2],\"fault\":5}");
	nem(h, 4300, "kill-forever", "{\"targets\":[0],\"fault\":6}");
	nem(h, 4350, "slow-link",
	    "{\"targets\":[3],\"fault\":7,\"from\":0,\"delay_ms\":3000}");
	nem(h, 4400, "kill", "{\"targets\":[2]}");
	nem(h, 6000, "restart", "{\"targets\":[3],\"fault\":3}");
	nem(h, 6500, "restart", "{\"targets\":[3],\"fault\":3}");
	nem(h, 7000, "crashpoint-hit", "{\"targets\":[2],\"fault\":5}");
	nem(h, 7500, "crashpoint-end", "{\"targets\":[2],\"fault\":5}");
	nem(h, 8000, "packet-end", "{\"targets\":[1],\"faults\":[4]}");
	nem(h, 8500, "slow-link-end",
	    "{\"targets\":[3],\"fault\":7,\"from\":0,\"delay_ms\":3000}");
	nem(h, 9000, "restart", "{\"targets\":[2],\"faults\":[]}");
	hx_fault *f;
	size_t n;
	assert_int_equal(hx_faults_from_history(h, &f, &n), DTX_OK);
	assert_int_equal(n, 8);
	static const struct {
		const char *kind;
		int64_t start, end;
	} want[] = {
		{ "kill", 1000, 3000 },
		{ "kill", 1500, 2000 },
		{ "disk", 4000, 6000 },
		{ "packet", 4100, 8000 },
		{ "crashpoint", 4200, 7000 },
		{ "kill-forever", 4300, -1 },
		{ "slow-link", 4350, 8500 },
		{ "kill", 4400, 6000 },
	};
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(f[i].kind, want[i].kind);
		assert_int_equal(f[i].start_ns, want[i].start);
		assert_int_equal(f[i].end_ns, want[i].end);
	}
	hx_faults_free(f, n);
	hx_history_free(h);
}

static hx_jdoc *
parse_ok(const char *s)
{
	hx_jdoc *d = NULL;
	char err[128] = "";
	dtx_err rv = hx_json_parse(s, strlen(s), &d, err, sizeof(err));
	if (rv != DTX_OK)
		fail_msg("rejected %s: %s", s, err);
	assert_true(hx_json_valid(s, strlen(s)));
	return d;
}

static void
test_json_accepts_valid(void **state)
{
	(void)state;
	hx_jdoc *d = parse_ok(
	    " {\"ts\":18446744073709551615,\"balances\":{\"0\":100,\"1\":-3},"
	    "\"a\":[1,2.5,-0,1e3,true,false,null,\"x\\\"\\\\\\/\\b\\f\\n\\r\\t"
	    "\\u00e9\\ud83d\\ude00\"],\"e\":{},\"z\":[]} ");
	const hx_jv *r = hx_jdoc_root(d);
	uint64_t u;
	assert_int_equal(hx_jv_u64(hx_jv_get(r, "ts"), &u), DTX_OK);
	assert_true(u == UINT64_MAX);
	int64_t i;
	assert_int_equal(hx_jv_int(hx_jv_get(r, "ts"), &i), DTX_ERANGE);
	const hx_jv *b = hx_jv_get(r, "balances");
	assert_int_equal(b->len, 2);
	assert_int_equal(hx_jv_int(hx_jv_get(b, "1"), &i), DTX_OK);
	assert_int_equal(i, -3);
	assert_int_equal(hx_jv_u64(hx_jv_get(b, "1"), &u), DTX_ERANGE);
	const hx_jv *a = hx_jv_get(r, "a");
	assert_int_equal(a->type, HX_JV_ARR);
	assert_int_equal(a->len, 8);
	const hx_jv *m = a->first->next;
	assert_int_equal(m->type, HX_JV_NUM);
	assert_false(m->is_int);
	assert_true(m->d == 2.5);
	assert_int_equal(hx_jv_int(m, &i), DTX_EINVAL);
	m = m->next;
	assert_int_equal(hx_jv_int(m, &i), DTX_OK);
	assert_int_equal(i, 0);
	m = m->next;
	assert_true(m->d == 1000.0);
	m = m->next->next->next->next;
	assert_int_equal(m->type, HX_JV_STR);
	assert_string_equal(m->s, "x\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
	assert_null(hx_jv_get(r, "missing"));
	assert_null(hx_jv_get(a, "0"));
	assert_int_equal(hx_jv_get(r, "e")->len, 0);
	hx_jdoc_free(d);
	d = parse_ok("-9223372036854775808");
	assert_int_equal(hx_jv_int(hx_jdoc_root(d), &i), DTX_OK);
	assert_true(i == INT64_MIN);
	hx_jdoc_free(d);
	d = parse_ok("\"caf\xc3\xa9\"");
	hx_jdoc_free(d);
	// Larger objects take the sorting duplicate check.
	char big[2048] = "{";
	for (int k = 0; k < 100; k++)
		snprintf(big + strlen(big), sizeof(big) - strlen(big),
		    "%s\"%d\":%d", k ? "," : "", k, k);
	strcat(big, "}");
	d = parse_ok(big);
	assert_int_equal(hx_jdoc_root(d)->len, 100);
	hx_jdoc_free(d);
	hx_jdoc_free(NULL);
}

static void
test_json_rejects_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		" ",
		"{",
		"}",
		"[1,]",
		"{\"a\":1,}",
		"{\"a\" 1}",
		"{a:1}",
		"{'a':1}",
		"[01]",
		"[1.]",
		"[.5]",
		"[+1]",
		"[-]",
		"[1e]",
		"[1e+]",
		"NaN",
		"Infinity",
		"tru",
		"nul",
		"[true false]",
		"\"abc",
		"\"a\tb\"",
		"\"\\x\"",
		"\"\\u12\"",
		"\"\\u12G4\"",
		"\"\\ud800\"",
		"\"\\udc00\"",
		"\"\\ud800\\u0041\"",
		"\"\\u0000\"",
		"\"\xff\"",
		"\"\xc0\xaf\"",
		"\"\xed\xa0\x80\"",
		"\"\xe2\x82\"",
		"{\"a\":1,\"a\":2}",
		"[1] 2",
		"{} x",
		"// c\n1",
		"[1,2",
		"{\"a\":}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hx_jdoc *d = (hx_jdoc *)0x1;
		char err[128] = "";
		dtx_err rv =
		    hx_json_parse(bad[i], strlen(bad[i]), &d, err, sizeof(err));
		if (rv != DTX_EINVAL)
			fail_msg("accepted %s", bad[i]);
		assert_true(d == (hx_jdoc *)0x1); // untouched on error
		assert_non_null(strstr(err, "offset "));
		// The validator agrees, except that it does not look for
		// duplicate keys (it builds no tree).
		if (strstr(bad[i], "\"a\":1,\"a\"") == NULL)
			assert_false(hx_json_valid(bad[i], strlen(bad[i])));
	}
	// An embedded NUL inside the given length is not JSON text.
	assert_int_equal(
	    hx_json_parse("[1]\0", 4, &(hx_jdoc *) { NULL }, NULL, 0),
	    DTX_EINVAL);
	char deep[200];
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	assert_int_equal(
	    hx_json_parse(deep, 200, &(hx_jdoc *) { NULL }, NULL, 0),
	    DTX_EINVAL);
	hx_jdoc *d = NULL;
	assert_int_equal(hx_json_parse(deep + 100 - HX_JV_MAX_DEPTH,
	                     2 * HX_JV_MAX_DEPTH, &d, NULL, 0),
	    DTX_OK);
	hx_jdoc_free(d);
}

static void
test_json_out_of_memory(void **state)
{
	(void)state;
	char big[4096] = "{\"balances\":{";
	for (int k = 0; k < 60; k++)
		snprintf(big + strlen(big), sizeof(big) - strlen(big),
		    "%s\"%d\":%d", k ? "," : "", k, k);
	strcat(big, "},\"s\":\"");
	for (int k = 0; k < 3000; k++)
		strcat(big, "x");
	strcat(big, "\"}");
	bool done = false;
	for (long n = 0; !done && n < 1000; n++) {
		hx_jdoc *d = NULL;
		dtx_alloc_fail_after(n);
		dtx_err rv = hx_json_parse(big, strlen(big), &d, NULL, 0);
		dtx_alloc_fail_after(-1);
		if (rv == DTX_OK) {
			assert_int_equal(
			    hx_jv_get(hx_jdoc_root(d), "balances")->len, 60);
			hx_jdoc_free(d);
			done = true;
		} else {
			assert_int_equal(rv, DTX_ENOMEM);
		}
	}
	assert_true(done);
}

static void
test_json_mutations_never_crash(void **state)
{
	(void)state;
	const char *seed = "{\"ts\":123,\"balances\":{\"0\":10,\"1\":-2},"
	                   "\"a\":[1,2.5e3,\"\\u00e9x\",null,true]}";
	size_t len = strlen(seed);
	uint64_t rng = 42;
	char buf[256];
	size_t accepted = 0;
	for (int i = 0; i < 20000; i++) {
		memcpy(buf, seed, len);
		size_t n = len;
		int edits = 1 + (int)dtx_rand_below(&rng, 3);
		for (int e = 0; e < edits; e++) {
			size_t at = dtx_rand_below(&rng, n);
			switch (dtx_rand_below(&rng, 3)) {
			case 0:
				buf[at] = (char)dtx_rand_below(&rng, 256);
				break;
			case 1:
				n = at; // truncate
				break;
			default:
				memmove(buf + at, buf + at + 1, n - at - 1);
				n--;
			}
			if (n == 0)
				break;
		}
		hx_jdoc *d = NULL;
		dtx_err rv = hx_json_parse(buf, n, &d, NULL, 0);
		assert_true(rv == DTX_OK || rv == DTX_EINVAL);
		bool v = hx_json_valid(buf, n);
		if (rv == DTX_OK) {
			assert_true(v);
			accepted++;
		}
		hx_jdoc_free(d);
	}
	assert_true(accepted > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_stamps_index_and_time),
		cmocka_unit_test(test_add_rejects_bad_arguments),
		cmocka_unit_test(test_concurrent_appends),
		cmocka_unit_test(test_pairs),
		cmocka_unit_test(test_faults_from_history),
		cmocka_unit_test(test_fault_windows_by_id),
		cmocka_unit_test(test_json_accepts_valid),
		cmocka_unit_test(test_json_rejects_malformed),
		cmocka_unit_test(test_json_out_of_memory),
		cmocka_unit_test(test_json_mutations_never_crash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
