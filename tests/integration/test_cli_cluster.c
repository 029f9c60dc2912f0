// SPDX-License-Identifier: MIT
//
// The dtx command against a real local cluster (started by the 2PC test
// helpers on free ports), run as its own process (tc_dtx): `cluster
// status` exits 1 once a node is down, `cluster stop` on nothing says so
// and exits 1, `accounts init` creates the accounts once and then changes
// nothing, refusing other arguments, so that `transfer 1 2 10` works on a
// fresh cluster; `transfer --mode saga` without an orchestrator is
// "unavailable" (69), not "unknown"; `balances` and the harness's
// snapshot reads page through a participant whose keys exceed the body
// limit.

#include <fcntl.h>
#include <nng/nng.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../capture.h"
#include "cli.h"
#include "test_2pc_util.h"

// Runs `dtx ARGS...` as its own process (tc_dtx), output into *out
// (malloc'd); returns the exit code.
static int
run_dtx(tu_fx *fx, char **out, const char *const *args)
{
	int rc = tc_dtx(fx->dir, out, args);
	assert_non_null(*out);
	return rc;
}

#define DTX(fx, out, ...)                                                      \
	run_dtx(fx, out, (const char *const[]) { __VA_ARGS__, NULL })

static void
expect(tu_fx *fx, int want_rc, const char *want_text, const char *const *args)
{
	char *out;
	int rc = run_dtx(fx, &out, args);
	assert_int_equal(rc, want_rc);
	if (want_text != NULL)
		assert_non_null(strstr(out, want_text));
	free(out);
}

#define EXPECT(fx, rc, text, ...)                                              \
	expect(fx, rc, text, (const char *const[]) { __VA_ARGS__, NULL })

static void
test_accounts_and_transfer(void **state)
{
	tu_fx *fx = *state;
	const char *d = fx->dir;
	EXPECT(fx, HX_EXIT_OK, "coordinator", "cluster", "status", "--dir", d);
	EXPECT(fx, HX_EXIT_OK, "\"ok\":true", "cluster", "status", "--dir", d,
	    "--json");
	// The first run creates the accounts, the second changes nothing.
	EXPECT(fx, HX_EXIT_OK, "created 4 accounts", "accounts", "init", "4",
	    "--balance", "50", "--dir", d);
	EXPECT(fx, HX_EXIT_OK, "unchanged", "accounts", "init", "4",
	    "--balance", "50", "--dir", d);
	EXPECT(fx, HX_EXIT_OK, "committed", "transfer", "1", "2", "10", "--dir",
	    d);
	// Transfers keep the total, so the same arguments still match.
	EXPECT(fx, HX_EXIT_OK, "unchanged", "accounts", "init", "4",
	    "--balance", "50", "--dir", d);
	EXPECT(fx, HX_EXIT_CONFLICT, "nothing changed", "accounts", "init", "5",
	    "--balance", "50", "--dir", d);
	EXPECT(fx, HX_EXIT_CONFLICT, "nothing changed", "accounts", "init", "4",
	    "--balance", "60", "--dir", d);
	EXPECT(fx, HX_EXIT_USAGE, NULL, "accounts", "init", "1", "--dir", d);
	EXPECT(
	    fx, HX_EXIT_OK, "\"total\":200", "balances", "--dir", d, "--json");
	EXPECT(fx, HX_EXIT_OK, "acct:1      40", "balances", "--dir", d);
	// No saga orchestrator in this cluster: nothing was sent.
	EXPECT(fx, HX_EXIT_UNAVAILABLE, "saga orchestrator", "transfer", "1",
	    "2", "10", "--mode", "saga", "--dir", d);
	EXPECT(
	    fx, HX_EXIT_OK, "\"total\":200", "balances", "--dir", d, "--json");
}

static void
test_status_and_stop(void **state)
{
	tu_fx *fx = *state;
	const char *d = fx->dir;
	char none[300];
	snprintf(none, sizeof(none), "%s/no-cluster-here", d);
	EXPECT(
	    fx, HX_EXIT_UNAVAILABLE, NULL, "cluster", "status", "--dir", none);
	EXPECT(fx, HX_EXIT_UNAVAILABLE, NULL, "transfer", "1", "2", "10",
	    "--dir", none);
	EXPECT(fx, HX_EXIT_UNAVAILABLE, NULL, "accounts", "init", "4", "--dir",
	    none);
	EXPECT(fx, HX_EXIT_INVALID, "nothing to stop", "cluster", "stop",
	    "--dir", none);

	EXPECT(fx, HX_EXIT_OK, NULL, "cluster", "status", "--dir", d);
	assert_int_equal(hx_cluster_signal(fx->cl, 2, SIGKILL), DTX_OK);
	EXPECT(fx, HX_EXIT_INVALID, "down", "cluster", "status", "--dir", d);
	EXPECT(fx, HX_EXIT_INVALID, "\"ok\":false", "cluster", "status",
	    "--dir", d, "--json");
	EXPECT(fx, HX_EXIT_OK, "stopped", "cluster", "stop", "--dir", d);
	EXPECT(fx, HX_EXIT_INVALID, "nothing to stop", "cluster", "stop",
	    "--dir", d);
	// Every node down is not a healthy cluster either.
	EXPECT(fx, HX_EXIT_INVALID, "down", "cluster", "status", "--dir", d);
}

// A node blocked on an in-doubt transaction answers HEALTH but is not
// healthy: the coordinator dies right after forcing COMMIT, both
// participants stay blocked, and `cluster status` exits 1 naming them
// blocked until the coordinator returns.
static void
test_blocked_status(void **state)
{
	tu_fx *fx = *state;
	const char *d = fx->dir;
	assert_int_equal(tu_init_accounts(fx, 8, 1000), DTX_OK);
	int64_t a = tu_acct_on(fx, 1, 0), b = tu_acct_on(fx, 2, 0);
	tu_transfer_armed(fx, "coord.after_commit_log", a, b);
	assert_int_equal(hx_cluster_wait_exit(fx->cl, 0, 20000, NULL), DTX_OK);
	uint64_t end = dtx_mono_ns() + 60000000000u;
	bool both = false;
	while (!both && dtx_mono_ns() < end) {
		both = true;
		for (uint32_t id = 1; id <= 2; id++) {
			char st[32] = "";
			if (tu_health(fx, id, st, sizeof(st), NULL, 0, NULL) !=
			        DTX_OK ||
			    strcmp(st, "blocked") != 0)
				both = false;
		}
		if (!both)
			dtx_sleep_ms(50);
	}
	assert_true(both);
	char *out;
	assert_int_equal(
	    DTX(fx, &out, "cluster", "status", "--dir", d, "--json"),
	    HX_EXIT_INVALID);
	hx_jdoc *doc;
	assert_int_equal(
	    hx_json_parse(out, strlen(out), &doc, NULL, 0), DTX_OK);
	int seen = 0;
	for (const hx_jv *n = hx_jv_get(hx_jdoc_root(doc), "nodes")->first; n;
	     n = n->next) {
		int64_t id, blocked;
		assert_int_equal(hx_jv_int(hx_jv_get(n, "id"), &id), DTX_OK);
		if (id != 1 && id != 2)
			continue;
		seen++;
		assert_string_equal(hx_jv_get(n, "health")->s, "blocked");
		assert_false(hx_jv_get(n, "ok")->b);
		assert_int_equal(
		    hx_jv_int(hx_jv_get(n, "blocked"), &blocked), DTX_OK);
		assert_true(blocked >= 1);
	}
	assert_int_equal(seen, 2);
	hx_jdoc_free(doc);
	free(out);
	// With the coordinator down a transfer is not done, and says why.
	EXPECT(fx, HX_EXIT_UNAVAILABLE, "aborted", "transfer", "3", "4", "1",
	    "--dir", d, "--timeout-ms", "2000");
	// The coordinator returns with its logged COMMIT; once the
	// participants have resolved, the cluster is healthy again.
	assert_int_equal(tu_restart(fx, 0), DTX_OK);
	int rc = -1;
	end = dtx_mono_ns() + 60000000000u;
	while (rc != HX_EXIT_OK && dtx_mono_ns() < end) {
		rc = DTX(fx, &out, "cluster", "status", "--dir", d);
		free(out);
		if (rc != HX_EXIT_OK)
			dtx_sleep_ms(250);
	}
	assert_int_equal(rc, HX_EXIT_OK);
}

// Twenty PUTs of 60 KB values all owned by participant 1 (1.2 MB, over
// the 1 MiB body limit): a READ of all its keys in one reply is answered
// with an ERROR saying so (not a reply the client's socket drops), but
// the paged reads work. Pages of any size return every
// key exactly once, in key order, each value intact, all at the first
// page's timestamp; a cursor with a key list is refused; `dtx balances`
// (which reads in pages) sees the accounts with their total while
// transfers run, and ignores the blobs.
#define BLOBS 20
#define BLOB_BYTES (60 * 1024)

static void
blob_key(tu_fx *fx, int i, char k[32])
{
	for (int n = 0, j = 0;; j++) {
		snprintf(k, 32, "blob:%03d", j);
		if (dtx_topo_route(fx->topo, k, strlen(k)) == 1 && n++ == i)
			return;
	}
}

// Reads every key of participant 1 in pages of pg bytes at one ts;
// checks order, cursors and values; returns the number of blobs and
// the sum of the accounts seen.
static int
paged_read(tu_fx *fx, uint32_t pg, int64_t *accts, int *pages)
{
	proto_bytes after = { 0 };
	clk_ts ts = 0;
	int blobs = 0;
	uint8_t last[PROTO_MAX_KEY + 1];
	size_t lastn = 0;
	*accts = 0;
	*pages = 0;
	for (;;) {
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_READ);
		req.u.read.ts = ts;
		req.u.read.page = pg;
		req.u.read.after = after;
		assert_int_equal(tu_call(fx, 1, &req, &rep, 10000), DTX_OK);
		assert_int_equal(rep.hdr.type, PROTO_READ_REPLY);
		assert_int_equal(rep.u.read_reply.status, PROTO_READ_OK);
		if (ts == 0)
			ts = rep.u.read_reply.ts;
		// Every page is read at the first page's timestamp.
		assert_true(rep.u.read_reply.ts == ts);
		(*pages)++;
		const proto_read_reply *rr = &rep.u.read_reply;
		assert_true(rr->n_entries >= 1);
		for (uint32_t i = 0; i < rr->n_entries; i++) {
			const proto_entry *e = &rr->entries[i];
			assert_true(e->found);
			size_t m = e->key.n < lastn ? e->key.n : lastn;
			int c = memcmp(e->key.p, last, m);
			assert_true(c > 0 || (c == 0 && e->key.n > lastn));
			memcpy(last, e->key.p, e->key.n);
			lastn = e->key.n;
			int64_t v;
			if (e->key.n > 5 && memcmp(e->key.p, "blob:", 5) == 0) {
				assert_true(e->is_bytes);
				assert_int_equal(e->bval.n, BLOB_BYTES);
				for (uint32_t b = 0; b < e->bval.n; b += 997)
					assert_int_equal(e->bval.p[b],
					    (uint8_t)(e->key.p[e->key.n - 1] +
					        b));
				blobs++;
			} else if (tu_entry_i64(e, &v)) {
				*accts += v;
			}
		}
		if (rr->next.n > 0) {
			// The cursor is the page's last key.
			assert_memory_equal(rr->next.p, last, lastn);
			assert_int_equal(rr->next.n, lastn);
		}
		dtx_free(after.p);
		after = rep.u.read_reply.next;
		rep.u.read_reply.next = (proto_bytes) { 0 };
		proto_msg_free(&rep);
		if (after.n == 0)
			return blobs;
	}
}

static void
test_paged_read(void **state)
{
	tu_fx *fx = *state;
	const char *d = fx->dir;
	EXPECT(fx, HX_EXIT_OK, "created 8 accounts", "accounts", "init", "8",
	    "--balance", "50", "--dir", d);
	uint8_t *val = malloc(BLOB_BYTES);
	assert_non_null(val);
	for (int i = 0; i < BLOBS; i++) {
		char k[32];
		blob_key(fx, i, k);
		for (uint32_t b = 0; b < BLOB_BYTES; b++)
			val[b] = (uint8_t)(k[strlen(k) - 1] + b);
		proto_op op = { .kind = PROTO_OP_PUT,
			.key = { (uint8_t *)k, (uint32_t)strlen(k) },
			.value = { val, BLOB_BYTES } };
		proto_msg rep;
		assert_int_equal(
		    tu_txn(fx, NULL, PROTO_MODE_2PC, &op, 1, &rep, 10000),
		    DTX_OK);
		assert_int_equal(rep.u.txn_reply.outcome, PROTO_COMMITTED);
		proto_msg_free(&rep);
	}
	free(val);
	// One reply cannot hold it: the participant says so at once (the
	// client's socket would drop the reply and time out).
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_READ);
	uint64_t t0 = dtx_mono_ns();
	assert_int_equal(tu_call(fx, 1, &req, &rep, 10000), DTX_EREFUSED);
	assert_true(dtx_mono_ns() - t0 < 5000000000u);
	assert_int_equal(rep.u.error.code, DTX_EPROTO);
	assert_non_null(strstr(rep.u.error.reason, "over the body limit"));
	proto_msg_free(&rep);

	int64_t accts1 = 0, sum = 0;
	int pages = 0;
	// Pages of 1 byte hold one entry each; the default and the largest
	// (asked as 4 GiB, lowered to PROTO_READ_PAGE_MAX) hold several.
	const uint32_t sizes[] = { 1, PROTO_READ_PAGE_DEFAULT, UINT32_MAX };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(paged_read(fx, sizes[i], &sum, &pages), BLOBS);
		printf("page %u bytes: %d pages\n", sizes[i], pages);
		if (i > 0)
			assert_int_equal(sum, accts1);
		accts1 = sum;
		assert_true(pages >= (i == 0 ? BLOBS : 2));
		assert_true(i == 0 || pages <= BLOBS / 2);
	}
	// A cursor goes with a page size and no keys.
	proto_bytes k = { (uint8_t *)"blob:000", 8 };
	proto_msg_init(&req, PROTO_READ);
	req.u.read.after = k;
	assert_int_equal(tu_call(fx, 1, &req, &rep, 10000), DTX_EREFUSED);
	assert_int_equal(rep.u.error.code, DTX_EINVAL);
	proto_msg_free(&rep);
	// A paged read of listed keys answers a prefix that fits the page.
	proto_bytes keys[BLOBS];
	char names[BLOBS][32];
	for (int i = 0; i < BLOBS; i++) {
		blob_key(fx, i, names[i]);
		keys[i] = (proto_bytes) { (uint8_t *)names[i],
			(uint32_t)strlen(names[i]) };
	}
	proto_msg_init(&req, PROTO_READ);
	req.u.read.keys = keys;
	req.u.read.n_keys = BLOBS;
	req.u.read.page = 3 * BLOB_BYTES;
	assert_int_equal(tu_call(fx, 1, &req, &rep, 10000), DTX_OK);
	assert_int_equal(rep.u.read_reply.n_entries, 2);
	proto_msg_free(&rep);

	// dtx balances, while transfers run, sees all 8 accounts and the
	// total; every snapshot is one consistent read.
	for (int round = 0; round < 5; round++) {
		EXPECT(fx, HX_EXIT_OK, "committed", "transfer", "1", "2", "3",
		    "--dir", d);
		EXPECT(fx, HX_EXIT_OK, "\"total\":400", "balances", "--dir", d,
		    "--json");
	}
	hx_conn *c;
	assert_int_equal(hx_conn_open(fx->topo, &c), DTX_OK);
	hx_snapshot snap;
	assert_int_equal(hx_snapshot_read(c, 0, 10000, &snap), DTX_OK);
	assert_int_equal(snap.n, 8);
	assert_int_equal(snap.total, 400);
	assert_int_equal(snap.other_keys, BLOBS);
	hx_snapshot_fini(&snap);
	hx_conn_close(c);
}

static int
setup(void **state)
{
	tu_fx *fx = calloc(1, sizeof(*fx));
	if (fx == NULL || tu_setup(fx, 2, NULL) != DTX_OK) {
		if (fx != NULL && fx->cl != NULL)
			tu_dump_logs(fx);
		if (fx != NULL)
			tu_teardown(fx);
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	tu_fx *fx = *state;
	int rc = tu_teardown(fx);
	free(fx);
	return rc;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_accounts_and_transfer, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_status_and_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_blocked_status, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_paged_read, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	// The commands ran in this process: let nng reap the sockets they
	// closed (it does so on a thread of its own) before LeakSanitizer
	// looks at what is left.
	nng_fini();
	return rc;
}
