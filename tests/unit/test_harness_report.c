// SPDX-License-Identifier: MIT
//
// The run report's timeline and index: the timeline's JSON data has a
// real time axis (each op's start and length in ms as the history has
// them), a lane per client and per node, fault windows with their real
// length on the nodes they hit (with a partition's grudge), the checkers'
// anomalies by op index; a 60 s, 8-client history of 60,000 ops gives a
// page under 3 MB; the index shows the seed and the command that
// reproduces the run and links each anomaly to timeline.html#op-N.

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "harness.h"
#include "test_util.h"

#define MS 1000000LL

static char tmpdir[256];

static int
setup(void **state)
{
	(void)state;
	return st_setup_tmp(tmpdir, sizeof(tmpdir), "report", NULL, 0, NULL);
}

static int
teardown(void **state)
{
	(void)state;
	return st_teardown_tmp(tmpdir);
}

// Reads dir/timeline-data.js, checks its framing and parses the JSON in
// it. Returns owned (hx_jdoc_free).
static hx_jdoc *
load_data(const char *dir, size_t *size)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/timeline-data.js", dir);
	size_t len = 0;
	char *t = (char *)st_read_file(path, &len);
	assert_non_null(t);
	const char *pre = "window.DTX_TIMELINE =\n";
	assert_memory_equal(t, pre, strlen(pre));
	assert_true(len > strlen(pre) + 3);
	assert_memory_equal(t + len - 2, ";\n", 2);
	hx_jdoc *d;
	char err[200];
	dtx_err rv = hx_json_parse(
	    t + strlen(pre), len - strlen(pre) - 2, &d, err, sizeof(err));
	if (rv != DTX_OK)
		fail_msg("timeline data is not JSON: %s", err);
	free(t);
	if (size)
		*size = len;
	return d;
}

static const hx_jv *
member(const hx_jv *obj, const char *key)
{
	const hx_jv *v = hx_jv_get(obj, key);
	if (v == NULL)
		fail_msg("timeline data has no %s", key);
	return v;
}

static const hx_jv *
nth(const hx_jv *arr, size_t i)
{
	assert_true(arr->type == HX_JV_ARR);
	const hx_jv *m = arr->first;
	for (size_t k = 0; k < i && m; k++)
		m = m->next;
	if (m == NULL)
		fail_msg("array of %zu has no element %zu", arr->len, i);
	return m;
}

static int64_t
int_at(const hx_jv *arr, size_t i)
{
	int64_t v;
	assert_int_equal(hx_jv_int(nth(arr, i), &v), DTX_OK);
	return v;
}

// One decoded op row.
typedef struct row {
	int64_t index, proc, lane, type, done;
	double t0_ms, dur_ms;
} row;

// Decodes the ops table as the page does (sums in tenths of a ms).
static row *
decode_ops(const hx_jv *root, size_t *n)
{
	const hx_jv *ops = member(root, "ops");
	const hx_jv *procs = member(root, "procs");
	row *r = calloc(ops->len + 1, sizeof(*r));
	assert_non_null(r);
	int64_t idx = 0, tenths = 0;
	size_t k = 0;
	for (const hx_jv *o = ops->first; o; o = o->next, k++) {
		idx += int_at(o, 0);
		tenths += (int64_t)(nth(o, 4)->d * 10 +
		    (nth(o, 4)->d < 0 ? -0.5 : 0.5));
		const hx_jv *p = nth(procs, (size_t)int_at(o, 1));
		r[k] = (row) { .index = idx,
			.proc = int_at(p, 0),
			.lane = int_at(p, 1),
			.type = int_at(o, 3),
			.done = int_at(o, 6) ? idx + int_at(o, 6) : -1,
			.t0_ms = (double)tenths / 10,
			.dur_ms = nth(o, 5)->d };
	}
	*n = k;
	return r;
}

static const row *
find_row(const row *r, size_t n, int64_t index)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].index == index || r[i].done == index)
			return &r[i];
	return NULL;
}

// A 2pc run over 2 accounts: three client threads (process 1 sees an
// uncertain outcome at 1.5 s and its thread goes on as process 3), a kill
// of node 2 from 1.0 s to 4.9 s (a 3.9 s fault), a partition of 1,2,3
// from 2.0 s to 3.0 s, a pause of node 1 never healed, and a read at 6 s
// whose total is wrong with a negative balance (two anomalies). *bad
// gets that read's index.
static hx_history *
make_history(int64_t *bad)
{
	hx_history *h = hx_history_new();
	int64_t N = HX_PROC_NEMESIS;
	const char *xfer =
	    "{\"from\":0,\"to\":1,\"amount\":1,\"mode\":\"2pc\"}";
	const char *good = "{\"ts\":1,\"balances\":{\"0\":50,\"1\":50}}";
	hx_history_append(h, 100 * MS, 0, HX_OP_INVOKE, "transfer", xfer, 0);
	hx_history_append(
	    h, 125 * MS + MS / 2, 0, HX_OP_OK, "transfer", xfer, NULL);
	hx_history_append(h, 200 * MS, 1, HX_OP_INVOKE, "read", NULL, NULL);
	hx_history_append(h, 230 * MS, 1, HX_OP_OK, "read", good, NULL);
	hx_history_append(
	    h, 1000 * MS, N, HX_OP_INFO, "kill", "{\"targets\":[2]}", NULL);
	hx_history_append(h, 1500 * MS, 1, HX_OP_INVOKE, "transfer", xfer, 0);
	hx_history_append(h, 1700 * MS, 1, HX_OP_INFO, "transfer", xfer,
	    "timeout after 5000 ms on tx 123456789");
	hx_history_append(h, 2000 * MS, N, HX_OP_INFO, "partition",
	    "{\"targets\":[1,2,3],\"shape\":\"halves\",\"grudge\":"
	    "{\"1\":[2,3],\"2\":[1],\"3\":[1]}}",
	    NULL);
	hx_history_append(h, 2500 * MS, 3, HX_OP_INVOKE, "read", NULL, NULL);
	hx_history_append(h, 2600 * MS, 2, HX_OP_INVOKE, "transfer", xfer, 0);
	hx_history_append(h, 2700 * MS, 3, HX_OP_OK, "read", good, NULL);
	hx_history_append(
	    h, 2800 * MS, 2, HX_OP_FAIL, "transfer", xfer, "aborted: conflict");
	hx_history_append(h, 3000 * MS, N, HX_OP_INFO, "heal", NULL, NULL);
	hx_history_append(
	    h, 4900 * MS, N, HX_OP_INFO, "restart", "{\"targets\":[2]}", NULL);
	hx_history_append(
	    h, 5000 * MS, N, HX_OP_INFO, "pause", "{\"targets\":[1]}", NULL);
	hx_history_append(h, 6000 * MS, 3, HX_OP_INVOKE, "read", NULL, NULL);
	*bad = (int64_t)hx_history_len(h);
	hx_history_append(h, 6010 * MS, 3, HX_OP_OK, "read",
	    "{\"ts\":2,\"balances\":{\"0\":-10,\"1\":50}}", NULL);
	hx_history_append(h, 6500 * MS, 0, HX_OP_INVOKE, "transfer", xfer, 0);
	return h;
}

static const char params[] =
    "{\"accounts\":[0,1],\"total\":100,\"clients\":3,\"rate\":0,"
    "\"duration\":6,\"nemesis_interval\":5,\"nemesis_hold_min\":0,"
    "\"nemesis_gap\":5,\"partition_onset_ms\":400,\"targets\":\"any\","
    "\"shapes\":\"halves,one,bridge,ring\",\"netns\":false,"
    "\"participants\":3}";

// The fault row of kind on node lane nl starting at start_ms.
static const hx_jv *
find_fault(const hx_jv *root, const char *kind, double start_ms)
{
	const hx_jv *kinds = member(root, "fault_kinds");
	for (const hx_jv *f = member(root, "faults")->first; f; f = f->next) {
		const hx_jv *k = nth(kinds, (size_t)int_at(f, 0));
		if (strcmp(k->s, kind) == 0 && nth(f, 1)->d == start_ms)
			return f;
	}
	fail_msg("no %s fault at %.1f ms", kind, start_ms);
	return NULL;
}

static void
check_faults(const hx_jv *root)
{
	// Nodes: the coordinator and the three participants, one lane each.
	const hx_jv *nodes = member(root, "nodes");
	assert_int_equal(nodes->len, 4);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(int_at(nth(nodes, i), 0), (int64_t)i);
	assert_string_equal(nth(nth(nodes, 0), 1)->s, "n0 coordinator");
	assert_string_equal(nth(nth(nodes, 2), 1)->s, "n2 participant");
	// The kill lasts its real 3.9 s, on node 2's lane only.
	const hx_jv *k = find_fault(root, "kill", 1000);
	assert_true(nth(k, 2)->d - nth(k, 1)->d == 3900);
	assert_int_equal(nth(k, 3)->len, 1);
	assert_int_equal(int_at(nth(k, 3), 0), 2);
	// The partition spans nodes 1-3 with its shape and grudge.
	const hx_jv *p = find_fault(root, "partition", 2000);
	assert_true(nth(p, 2)->d == 3000);
	assert_int_equal(nth(p, 3)->len, 3);
	assert_non_null(strstr(nth(p, 5)->s, "\"shape\":\"halves\""));
	assert_non_null(strstr(nth(p, 5)->s, "\"grudge\""));
	// Never healed: end -1.
	const hx_jv *z = find_fault(root, "pause", 5000);
	assert_true(nth(z, 2)->d == -1);
	assert_int_equal(int_at(nth(z, 3), 0), 1);
	// Fixed colours per kind.
	const hx_jv *col = member(root, "fault_colors");
	assert_string_equal(member(col, "kill")->s, "#E41A1C");
	assert_string_equal(member(col, "partition")->s, "#984EA3");
	assert_string_equal(member(col, "pause")->s, "#FF7F00");
}

static void
check_ops(const hx_jv *root, const hx_history *h)
{
	size_t n;
	row *r = decode_ops(root, &n);
	assert_int_equal(n, 7); // client ops: invocation + completion pairs
	// Every client op of the history is a row's invocation or
	// completion, at its own time, in the lane of its process.
	for (size_t i = 0; i < hx_history_len(h); i++) {
		const hx_op *op = hx_history_get(h, i);
		if (op->process == HX_PROC_NEMESIS)
			continue;
		const row *w = find_row(r, n, (int64_t)i);
		if (w == NULL)
			fail_msg("op %zu missing from the timeline", i);
		assert_int_equal(w->proc, op->process);
		double ms = (double)op->time_ns / 1e6;
		double at =
		    w->index == (int64_t)i ? w->t0_ms : w->t0_ms + w->dur_ms;
		if (at < ms - 0.051 || at > ms + 0.051)
			fail_msg("op %zu at %.3f ms, history %.3f", i, at, ms);
	}
	// The first transfer: 25.5 ms long, ok. The last never completed.
	assert_true(r[0].t0_ms == 100 && r[0].dur_ms == 25.5);
	assert_int_equal(r[0].type, HX_OP_OK);
	assert_int_equal(r[n - 1].type, 0);
	assert_true(r[n - 1].dur_ms == -1);
	// Three client lanes: process 3 continues process 1's thread.
	const hx_jv *lanes = member(root, "lanes");
	assert_int_equal(lanes->len, 3);
	const row *p1 = find_row(r, n, 2), *p3 = find_row(r, n, 8);
	assert_int_equal(p1->proc, 1);
	assert_int_equal(p3->proc, 3);
	assert_int_equal(p1->lane, p3->lane);
	assert_true(member(root, "end_ms")->d == 6500);
	free(r);
}

static void
check_anomaly(const hx_jv *root, int64_t bad)
{
	// Two anomalies on the read (a wrong total and a negative balance):
	// both listed, its value once.
	bool total = false, neg = false;
	for (const hx_jv *a = member(root, "anomalies")->first; a;
	     a = a->next) {
		if (int_at(a, 0) != bad)
			continue;
		total |= strcmp(nth(a, 2)->s, "wrong-total") == 0;
		neg |= strcmp(nth(a, 2)->s, "negative-balance") == 0;
	}
	assert_true(total && neg);
	int64_t all;
	assert_int_equal(
	    hx_jv_int(member(root, "anomalies_total"), &all), DTX_OK);
	assert_int_equal(all, (int64_t)member(root, "anomalies")->len);
	char key[24];
	snprintf(key, sizeof(key), "%lld", (long long)bad);
	const hx_jv *v = member(member(root, "values"), key);
	assert_non_null(strstr(nth(v, 1)->s, "\"0\":-10"));
	// The error of the uncertain transfer, numbers elided.
	bool err = false;
	for (const hx_jv *e = member(root, "errors")->first; e; e = e->next)
		if (strcmp(e->s, "timeout after # ms on tx #") == 0)
			err = true;
	assert_true(err);
}

// make_history checked as a 2pc bank run over accounts 0 and 1: the
// history, its planted bad read's op index, its faults and its verdict,
// all owned (checked_free).
typedef struct checked {
	hx_history *h;
	int64_t bad;
	hx_fault *f;
	size_t nf;
	hx_verdict v;
} checked;

static void
checked_make(checked *c)
{
	c->h = make_history(&c->bad);
	assert_int_equal(hx_faults_from_history(c->h, &c->f, &c->nf), DTX_OK);
	const int64_t acc[] = { 0, 1 };
	hx_run_cfg cfg = { "2pc", { acc, 2, 100, false } };
	assert_int_equal(
	    hx_check_run(c->h, &cfg, NULL, 0, NULL, 0, &c->v), DTX_OK);
}

static void
checked_free(checked *c)
{
	hx_verdict_fini(&c->v);
	hx_faults_free(c->f, c->nf);
	hx_history_free(c->h);
}

static char *
read_text(const char *dir, const char *name)
{
	char path[700];
	size_t len;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	char *t = (char *)st_read_file(path, &len);
	assert_non_null(t);
	return t;
}

static void
test_timeline_data(void **state)
{
	(void)state;
	checked c;
	checked_make(&c);
	assert_int_equal(c.v.valid, HX_VALID_FALSE);
	hx_run_info info = { .mode = "2pc",
		.nemesis = "kill,pause,partition",
		.seed = 176577581,
		.params = params };
	char dir[400];
	snprintf(dir, sizeof(dir), "%s/run", tmpdir);
	assert_int_equal(
	    hx_report_write_run(dir, 7, &info, c.h, c.f, c.nf, &c.v), DTX_OK);
	hx_jdoc *d = load_data(dir, NULL);
	const hx_jv *root = hx_jdoc_root(d);
	int64_t run;
	assert_int_equal(hx_jv_int(member(root, "run"), &run), DTX_OK);
	assert_int_equal(run, 7);
	check_faults(root);
	check_ops(root, c.h);
	check_anomaly(root, c.bad);
	hx_jdoc_free(d);

	// The page: offline (no address to fetch), drawing the data file,
	// following #op-N links.
	char *page = read_text(dir, "timeline.html");
	assert_non_null(strstr(page, "<script src=\"timeline-data.js\">"));
	assert_null(strstr(page, "http:"));
	assert_null(strstr(page, "https:"));
	assert_non_null(strstr(page, "#op-"));
	assert_non_null(strstr(page, "hashchange"));
	free(page);

	// The index: the seed exactly, the command, anomaly deep links, the
	// partition's grudge.
	char *idx = read_text(dir, "index.html");
	assert_non_null(strstr(idx, "<td>176577581</td>"));
	assert_non_null(strstr(idx,
	    "dtx bank --mode 2pc --accounts 2 --balance 50 --clients 3 "
	    "--rate 0 --duration 6 --participants 3 --nemesis "
	    "kill,pause,partition --nemesis-targets any --partition-shapes "
	    "halves,one,bridge,ring --partition-onset-ms 400 --seed "
	    "176577581"));
	char link[64];
	snprintf(link, sizeof(link), "href=\"timeline.html#op-%lld\"",
	    (long long)c.bad);
	assert_non_null(strstr(idx, link));
	assert_non_null(strstr(idx, "grudge"));
	free(idx);
	checked_free(&c);
}

// 60 s, 8 client threads, 60,000 operations (one every ms), errors that
// carry txids as real ones do, an uncertain outcome every 500 ops (a
// fresh process), and a fault every 5 s.
static hx_history *
make_big(void)
{
	hx_history *h = hx_history_new();
	int64_t proc[8];
	for (int c = 0; c < 8; c++)
		proc[c] = c;
	int64_t next = 8;
	uint64_t x = 88172645463325252ULL;
	for (int i = 0; i < 60000; i++) {
		int c = i % 8;
		int64_t t = (int64_t)i * MS;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		int64_t lat = (int64_t)(x % 7000) * 1000 + 200000;
		char v[200], e[120];
		bool read = i % 5 == 0;
		snprintf(v, sizeof(v),
		    "{\"from\":%d,\"to\":%d,\"amount\":%d,\"mode\":\"2pc\","
		    "\"txid\":%llu}",
		    (int)(x % 10), (int)((x >> 8) % 10), (int)(x % 7) + 1,
		    (unsigned long long)(117730588975431685ULL + (uint64_t)i));
		hx_history_append(h, t, proc[c], HX_OP_INVOKE,
		    read ? "read" : "transfer", read ? NULL : v, NULL);
		hx_op_type ty = read ? HX_OP_OK
		    : i % 500 == 7   ? HX_OP_INFO
		    : x % 3 == 0     ? HX_OP_FAIL
		                     : HX_OP_OK;
		snprintf(e, sizeof(e),
		    "aborted: conflict: acct:%d locked by tx %llu",
		    (int)(x % 10), (unsigned long long)(x >> 8));
		hx_history_append(h, t + lat, proc[c], ty,
		    read ? "read" : "transfer",
		    read ? "{\"ts\":1,\"balances\":{\"0\":50,\"1\":50}}" : v,
		    ty == HX_OP_OK ? NULL : e);
		if (ty == HX_OP_INFO)
			proc[c] = next++;
		if (i % 5000 == 100)
			hx_history_append(h, t, HX_PROC_NEMESIS, HX_OP_INFO,
			    "kill", "{\"targets\":[1]}", NULL);
		if (i % 5000 == 3000)
			hx_history_append(h, t, HX_PROC_NEMESIS, HX_OP_INFO,
			    "restart", "{\"targets\":[1]}", NULL);
	}
	return h;
}

static void
test_timeline_size(void **state)
{
	(void)state;
	hx_history *h = make_big();
	hx_fault *f;
	size_t nf;
	assert_int_equal(hx_faults_from_history(h, &f, &nf), DTX_OK);
	assert_int_equal(nf, 12);
	char dir[400];
	snprintf(dir, sizeof(dir), "%s/big", tmpdir);
	// Without gnuplot: the plots are not what this measures.
	char *old = st_path_to(tmpdir);
	hx_run_info info = { "2pc", "kill", 1, params };
	dtx_err rv = hx_report_write_run(dir, 1, &info, h, f, nf, NULL);
	st_path_back(old);
	assert_int_equal(rv, DTX_OK);
	size_t data;
	hx_jdoc *d = load_data(dir, &data);
	const hx_jv *root = hx_jdoc_root(d);
	assert_int_equal(member(root, "ops")->len, 60000);
	assert_int_equal(member(root, "lanes")->len, 8);
	assert_true(member(root, "procs")->len > 100);
	assert_true(member(root, "errors")->len <= 10);
	hx_jdoc_free(d);
	char path[700];
	struct stat st;
	snprintf(path, sizeof(path), "%s/timeline.html", dir);
	assert_int_equal(stat(path, &st), 0);
	size_t total = data + (size_t)st.st_size;
	print_message("timeline page for 60,000 ops: %zu bytes (html %lld)\n",
	    total, (long long)st.st_size);
	assert_true(total < 3u * 1000 * 1000);
	hx_faults_free(f, nf);
	hx_history_free(h);
}

static void
expect_command(
    const char *mode, const char *nemesis, const char *p, const char *want)
{
	hx_run_info info = { mode, nemesis, 42, p };
	char *got = hx_report_command(&info);
	assert_non_null(got);
	assert_string_equal(got, want);
	dtx_free(got);
}

static void
test_command(void **state)
{
	(void)state;
	// 3pc with partitions: the held faults were the default, so no
	// interval flag; netns comes back; an odd shapes text is quoted.
	expect_command("3pc", "partition",
	    "{\"accounts\":4,\"total\":40,\"clients\":2,\"rate\":10.5,"
	    "\"duration\":30,\"nemesis_interval\":2,\"nemesis_hold_min\":4,"
	    "\"targets\":\"participants\",\"shapes\":\"one halves\","
	    "\"netns\":true,\"participants\":5}",
	    "dtx bank --mode 3pc --accounts 4 --balance 10 --clients 2 "
	    "--rate 10.5 --duration 30 --participants 5 --nemesis partition "
	    "--nemesis-targets participants "
	    "--partition-shapes 'one halves' --netns --seed 42");
	// An explicit interval is given back; no nemesis, no nemesis flags.
	expect_command("2pc", "kill", "{\"nemesis_interval\":1.5}",
	    "dtx bank --mode 2pc --nemesis kill --nemesis-interval 1.5 "
	    "--seed 42");
	expect_command("saga", "none", "{\"nemesis_interval\":1.5}",
	    "dtx bank --mode saga --seed 42");
	// Damaged parameters still give the mode and seed.
	expect_command(
	    "2pc", NULL, "{not json", "dtx bank --mode 2pc --seed 42");
	hx_run_info none = { 0 };
	assert_null(hx_report_command(&none));
	assert_null(hx_report_command(NULL));
}

// The page itself, in Debian's chromium when it is installed (skipped
// otherwise): it decodes the data (the title counts the ops and faults),
// and timeline.html#op-N pins op N's details with its anomaly.
static void
test_page_in_browser(void **state)
{
	(void)state;
	if (system("command -v chromium >/dev/null 2>&1") != 0) {
		print_message("chromium not installed: skipped\n");
		skip();
	}
	checked c;
	checked_make(&c);
	hx_run_info info = { "2pc", "kill", 3, params };
	char dir[400], cmd[1400];
	snprintf(dir, sizeof(dir), "%s/page", tmpdir);
	assert_int_equal(
	    hx_report_write_run(dir, 7, &info, c.h, c.f, c.nf, &c.v), DTX_OK);
	snprintf(cmd, sizeof(cmd),
	    "timeout 120 chromium --headless --disable-gpu --no-sandbox "
	    "--user-data-dir=%s/chromium --dump-dom "
	    "'file://%s/timeline.html#op-%lld' >%s/dom.html 2>/dev/null",
	    tmpdir, dir, (long long)c.bad, tmpdir);
	assert_int_equal(system(cmd), 0);
	char *dom = read_text(tmpdir, "dom.html");
	assert_non_null(
	    strstr(dom, "dtx run 7 timeline: 6.5 s, 7 operations, 3 faults"));
	char want[80];
	snprintf(want, sizeof(want), "op %lld (process 3) read ok",
	    (long long)c.bad - 1);
	assert_non_null(strstr(dom, want));
	assert_non_null(strstr(dom, "ANOMALY bank wrong-total"));
	free(dom);
	checked_free(&c);
}

// Every allocation the report makes may fail: each failure gives
// DTX_ENOMEM or a report without the part that needed it, never a crash;
// with no failure it is complete.
static void
test_out_of_memory(void **state)
{
	(void)state;
	checked c;
	checked_make(&c);
	hx_run_info info = { "2pc", "kill", 3, params };
	char dir[400];
	snprintf(dir, sizeof(dir), "%s/oom", tmpdir);
	char *old = st_path_to(tmpdir);
	bool done = false;
	for (long n = 0; n < 10000 && !done; n++) {
		dtx_alloc_fail_after(n);
		dtx_err rv =
		    hx_report_write_run(dir, 7, &info, c.h, c.f, c.nf, &c.v);
		bool failed = dtx_alloc_failed();
		dtx_alloc_fail_after(-1);
		if (rv != DTX_OK && rv != DTX_ENOMEM)
			fail_msg(
			    "failing allocation %ld: %s", n, dtx_errname(rv));
		done = !failed;
		if (done)
			assert_int_equal(rv, DTX_OK);
	}
	st_path_back(old);
	assert_true(done);
	hx_jdoc *d = load_data(dir, NULL);
	assert_int_equal(member(hx_jdoc_root(d), "ops")->len, 7);
	hx_jdoc_free(d);
	checked_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_timeline_data, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_timeline_size, setup, teardown),
		cmocka_unit_test(test_command),
		cmocka_unit_test_setup_teardown(
		    test_out_of_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_page_in_browser, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
