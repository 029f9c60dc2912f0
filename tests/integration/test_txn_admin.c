// SPDX-License-Identifier: MIT
//
// Transactions in doubt and decisions by hand, end to end with real
// daemons and the dtx command: the coordinator killed right after it
// logged COMMIT (crash point coord.after_commit_log) leaves both
// participants in doubt; dtx txn list --in-doubt --json shows the
// transaction with its age, keys and what it waits for; dtx txn resolve
// is refused to a sender that is not an admin and to an unknown txid
// (exit 66), then --abort decides it by hand at both participants
// (heuristic, who/when/why); restarting the coordinator, which had logged
// COMMIT, makes the heuristic hazard visible in dtx txn status, HEALTH,
// /metrics and dtx check --live, and it survives a participant restart.
// A resolve while the coordinator answers follows the coordinator
// instead (exit 65 when it decided the other way).

#include <pthread.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../capture.h"
#include "../http_get.h"
#include "../prom_check.h"
#include "cli.h"
#include "test_2pc_util.h"

#define NACCT 16
#define BAL 1000
#define PAGE (1 << 20)

static int
setup(void **state)
{
	static tu_fx fx;
	setenv("DTX_HTTP", "127.0.0.1:0", 1);
	return tu_setup_bank(state, &fx, 2, tu_env_debug, NACCT, BAL);
}

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

static hx_jdoc *
parse(const char *text)
{
	hx_jdoc *d = NULL;
	char err[128];
	const char *brace = strchr(text, '{');
	assert_non_null(brace);
	if (hx_json_parse(brace, strlen(brace), &d, err, sizeof(err)) != DTX_OK)
		fail_msg("bad JSON (%s): %s", err, text);
	return d;
}

static uint64_t
u64_of(const hx_jv *o, const char *key)
{
	uint64_t v = 0;
	assert_int_equal(hx_jv_u64(hx_jv_get(o, key), &v), DTX_OK);
	return v;
}

static const char *
str_of(const hx_jv *o, const char *key)
{
	const hx_jv *v = hx_jv_get(o, key);
	assert_non_null(v);
	assert_int_equal(v->type, HX_JV_STR);
	return v->s;
}

// Node id's bound HTTP address from its data directory.
static void
http_addr(hx_cluster *cl, uint32_t id, char *out, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/http.addr", hx_cluster_data(cl, id));
	uint64_t end = dtx_mono_ns() + 10000000000ull;
	FILE *f = NULL;
	while ((f = fopen(path, "r")) == NULL && dtx_mono_ns() < end)
		dtx_sleep_ms(50);
	assert_non_null(f);
	assert_non_null(fgets(out, (int)len, f));
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
}

static bool
file_has(const char *path, const char *a, const char *b)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	bool found = false;
	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, a) != NULL && strstr(line, b) != NULL;
	fclose(f);
	return found;
}

typedef struct bg {
	tu_fx *fx;
	int64_t a, b;
	proto_client *cl;
} bg;

static void *
bg_transfer(void *arg)
{
	bg *g = arg;
	proto_msg rep;
	if (tu_transfer(g->fx, g->cl, PROTO_MODE_2PC, g->a, g->b, 10, &rep,
	        8000) == DTX_OK)
		proto_msg_free(&rep);
	return NULL;
}

// The txid whose intent blocks a read of acct at participant id.
static uint64_t
blocking_txid(tu_fx *fx, uint32_t id, int64_t acct)
{
	uint64_t txid = 0, end = dtx_mono_ns() + 4000000000u;
	char k[32];
	tu_key(k, sizeof(k), acct);
	while (txid == 0 && dtx_mono_ns() < end) {
		proto_msg req, rep;
		proto_bytes key = { (uint8_t *)k, (uint32_t)strlen(k) };
		proto_msg_init(&req, PROTO_READ);
		req.u.read.n_keys = 1;
		req.u.read.keys = &key;
		if (tu_call(fx, id, &req, &rep, 3000) == DTX_OK) {
			if (rep.hdr.type == PROTO_READ_REPLY &&
			    rep.u.read_reply.status == PROTO_READ_RETRY)
				txid = rep.u.read_reply.blocked_txid;
			proto_msg_free(&rep);
		}
		if (txid == 0)
			dtx_sleep_ms(10);
	}
	assert_true(txid != 0);
	return txid;
}

// With the coordinator up and still collecting votes, resolve asks it
// first: it decides abort (a STATUS while voting dooms the
// transaction), the participant applies that, not the --commit asked
// for, and says so; nothing is recorded as heuristic.
static void
test_resolve_follows_coordinator(void **state)
{
	tu_fx *fx = *state;
	const char *d = fx->dir;
	int64_t a = tu_acct_on(fx, 1, 5), b = tu_acct_on(fx, 2, 5);
	int64_t ba = tu_must_balance(fx, a, 20000);
	int64_t hc = tu_counter(fx, 1, "heuristic_commits");
	int64_t ha = tu_counter(fx, 1, "heuristic_aborts");
	int64_t delay[] = { 2, 3000 };
	assert_int_equal(tu_fault(fx, 0, "delay", NULL, delay, 2), DTX_OK);
	bg g = { .fx = fx, .a = a, .b = b };
	assert_int_equal(tu_coord_client(fx, 0, &g.cl), DTX_OK);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, bg_transfer, &g), 0);
	uint64_t txid = blocking_txid(fx, 1, a);
	char tx[24], *out;
	snprintf(tx, sizeof(tx), "%" PRIu64, txid);
	int rc = DTX(fx, &out, "txn", "resolve", tx, "--commit", "--dir", d);
	assert_int_equal(rc, HX_EXIT_CONFLICT);
	assert_non_null(strstr(out, "coordinator 0 answered: aborted"));
	assert_non_null(strstr(out, "as decided"));
	free(out);
	pthread_join(th, NULL);
	proto_client_close(g.cl);
	delay[1] = 0;
	assert_int_equal(tu_fault(fx, 0, "delay", NULL, delay, 2), DTX_OK);
	assert_int_equal(tu_counter(fx, 1, "heuristic_commits"), hc);
	assert_int_equal(tu_counter(fx, 1, "heuristic_aborts"), ha);
	assert_int_equal(tu_must_balance(fx, a, 20000), ba);
	// Decided now: resolving again is a conflict for --commit, fine for
	// --abort.
	rc = DTX(fx, &out, "txn", "resolve", tx, "--commit", "--dir", d);
	assert_int_equal(rc, HX_EXIT_CONFLICT);
	free(out);
	rc = DTX(fx, &out, "txn", "resolve", tx, "--abort", "--dir", d);
	assert_int_equal(rc, HX_EXIT_OK);
	free(out);
}

// The in-doubt list while the coordinator is down.
static void
check_list(tu_fx *fx, uint64_t txid, int64_t a, int64_t b)
{
	char *out;
	int rc = DTX(
	    fx, &out, "txn", "list", "--in-doubt", "--json", "--dir", fx->dir);
	assert_int_equal(rc, HX_EXIT_OK);
	hx_jdoc *doc = parse(out);
	const hx_jv *root = hx_jdoc_root(doc);
	assert_null(hx_jv_get(root, "heuristic"));
	// The coordinator is down: listed as not answering.
	const hx_jv *co = hx_jv_get(root, "coordinators");
	assert_int_equal(co->len, 1);
	assert_non_null(hx_jv_get(co->first, "error"));
	const hx_jv *l = hx_jv_get(root, "in_doubt");
	assert_non_null(l);
	assert_int_equal(l->len, 2);
	char ka[32], kb[32];
	tu_key(ka, sizeof(ka), a);
	tu_key(kb, sizeof(kb), b);
	for (const hx_jv *x = l->first; x != NULL; x = x->next) {
		assert_true(u64_of(x, "txid") == txid);
		assert_string_equal(str_of(x, "state"), "prepared");
		assert_true(u64_of(x, "age_ms") >= 1000);
		assert_true(u64_of(x, "age_ms") < 600000);
		assert_true(u64_of(x, "coordinator") == 0);
		assert_true(u64_of(x, "keys_total") == 1);
		const hx_jv *keys = hx_jv_get(x, "keys");
		assert_int_equal(keys->len, 1);
		uint64_t node = u64_of(x, "node");
		assert_string_equal(keys->first->s, node == 1 ? ka : kb);
		assert_true(strlen(str_of(x, "waiting_for")) > 0);
		assert_int_equal(hx_jv_get(x, "peers")->len, 1);
	}
	hx_jdoc_free(doc);
	free(out);
}

// Refusals: not an admin (a participant's id, --insecure: the topology
// says it is a participant), an unknown txid, a bad argument.
static void
check_refusals(tu_fx *fx, const char *tx)
{
	const char *d = fx->dir;
	char *out;
	int rc = DTX(fx, &out, "txn", "resolve", tx, "--abort", "--from", "1",
	    "--dir", d);
	assert_int_equal(rc, HX_EXIT_INVALID);
	assert_non_null(strstr(out, "refused_role"));
	free(out);
	rc = DTX(fx, &out, "txn", "list", "--from", "2", "--dir", d);
	assert_int_equal(rc, HX_EXIT_INVALID);
	free(out);
	rc = DTX(
	    fx, &out, "txn", "resolve", "4242424242", "--abort", "--dir", d);
	assert_int_equal(rc, HX_EXIT_NOT_FOUND);
	assert_non_null(strstr(out, "no node holds a record"));
	free(out);
	rc = DTX(fx, &out, "txn", "status", "4242424242", "--dir", d);
	assert_int_equal(rc, HX_EXIT_NOT_FOUND);
	free(out);
	rc = DTX(fx, &out, "txn", "resolve", tx, "--dir", d);
	assert_int_equal(rc, HX_EXIT_USAGE);
	free(out);
	rc = DTX(fx, &out, "txn", "resolve", "0x12", "--abort", "--dir", d);
	assert_int_equal(rc, HX_EXIT_USAGE);
	free(out);
	// Still in doubt at both.
	assert_int_equal(tu_counter(fx, 1, "in_doubt"), 1);
	assert_int_equal(tu_counter(fx, 2, "in_doubt"), 1);
}

// STATUS of txid at participant at, asked as node as.
static proto_txn_state
status_as(tu_fx *fx, uint32_t at, uint32_t as, uint64_t txid)
{
	proto_client *c;
	proto_client_cfg cc;
	memset(&cc, 0, sizeof(cc));
	cc.url = dtx_topo_find(fx->topo, at)->url;
	cc.node_id = as;
	cc.timeout_ms = 5000;
	assert_int_equal(proto_client_open(&cc, &c), DTX_OK);
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_STATUS);
	req.u.txid.txid = txid;
	proto_call_opts o = { .timeout_ms = 5000, .idempotent = true };
	assert_int_equal(proto_client_call(c, &req, &rep, &o), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_STATUS_REPLY);
	proto_txn_state st = rep.u.status_reply.state;
	proto_msg_free(&rep);
	proto_client_close(c);
	return st;
}

// What shows the hazard once the coordinator is back.
static void
check_hazard(tu_fx *fx, const char *tx)
{
	const char *d = fx->dir;
	char *out;
	int rc = DTX(fx, &out, "txn", "status", tx, "--json", "--dir", d);
	assert_int_equal(rc, HX_EXIT_INVALID);
	assert_non_null(strstr(out, "\"outcome\":\"heuristic-hazard\""));
	assert_non_null(strstr(out, "\"hazard\":true"));
	assert_non_null(strstr(out, "\"coordinator_outcome\":\"committed\""));
	free(out);
	rc = DTX(fx, &out, "txn", "status", tx, "--dir", d);
	assert_int_equal(rc, HX_EXIT_INVALID);
	assert_non_null(strstr(out, "HEURISTIC HAZARD"));
	assert_non_null(strstr(out, "coordinator 0: committed"));
	free(out);
	rc = DTX(fx, &out, "check", "--live", "--json", "--dir", d);
	assert_int_equal(rc, HX_EXIT_INVALID);
	assert_non_null(strstr(out, "\"kind\":\"heuristic-hazard\""));
	assert_non_null(strstr(out, tx));
	free(out);
	for (uint32_t id = 1; id <= 2; id++) {
		assert_int_equal(tu_counter(fx, id, "heuristic_hazards"), 1);
		assert_int_equal(tu_counter(fx, id, "heuristic_aborts"), 1);
		assert_int_equal(
		    tu_counter(fx, id, "heuristic_unconfirmed"), 0);
		assert_true(file_has(hx_cluster_log(fx->cl, id),
		    "msg=HEURHAZARD", "level=error"));
		char addr[128], err[256];
		http_addr(fx->cl, id, addr, sizeof(addr));
		char *page = malloc(PAGE);
		assert_non_null(page);
		assert_int_equal(hg_get(addr, "/metrics", page, PAGE), 200);
		if (!pc_check(page, err, sizeof(err)))
			fail_msg("%s: %s", addr, err);
		assert_non_null(strstr(page, "dtx_heuristic_hazards_total 1"));
		assert_non_null(strstr(page, "dtx_heuristic_aborts_total 1"));
		free(page);
	}
}

static void
test_indoubt_resolve_hazard(void **state)
{
	tu_fx *fx = *state;
	const char *d = fx->dir;
	tu_pair p = tu_pair_of(fx, 1, 20000);
	uint64_t before = tu_last_txid(fx);
	assert_int_equal(tu_arm(fx, 0, "coord.after_commit_log"), DTX_OK);
	proto_msg rep;
	if (tu_transfer(fx, NULL, PROTO_MODE_2PC, p.a, p.b, 10, &rep, 3000) ==
	    DTX_OK) {
		// The coordinator dies before it answers: an answer is a bug.
		tu_dump_logs(fx);
		fail_msg("the transfer was answered: outcome %d (%s)",
		    (int)rep.u.txn_reply.outcome,
		    rep.u.txn_reply.reason ? rep.u.txn_reply.reason : "-");
	}
	uint64_t txid = tu_crashed_txid(fx, 0, before);
	char tx[24], *out;
	snprintf(tx, sizeof(tx), "%" PRIu64, txid);
	dtx_sleep_ms(1500);
	check_list(fx, txid, p.a, p.b);
	check_refusals(fx, tx);

	int rc = DTX(fx, &out, "txn", "resolve", tx, "--abort", "--reason",
	    "coordinator host lost", "--json", "--dir", d);
	assert_int_equal(rc, HX_EXIT_OK);
	assert_non_null(strstr(out, "\"heuristic\":true"));
	free(out);
	for (uint32_t id = 1; id <= 2; id++) {
		assert_int_equal(tu_counter(fx, id, "heuristic_aborts"), 1);
		assert_int_equal(
		    tu_counter(fx, id, "heuristic_unconfirmed"), 1);
		assert_int_equal(tu_counter(fx, id, "heuristic_hazards"), 0);
		assert_int_equal(tu_counter(fx, id, "in_doubt"), 0);
	}
	assert_int_equal(tu_must_balance(fx, p.a, 20000), p.ba);
	// The decision by hand is participant 1's alone: its peer hears
	// "prepared" (no decision known), an admin the abort.
	assert_int_equal(status_as(fx, 1, 2, txid), PROTO_TS_PREPARED);
	assert_int_equal(
	    status_as(fx, 1, fx->client_id, txid), PROTO_TS_ABORTED);
	rc = DTX(fx, &out, "txn", "list", "--json", "--dir", d);
	assert_int_equal(rc, HX_EXIT_OK);
	assert_non_null(strstr(out, "\"reason\":\"coordinator host lost\""));
	assert_non_null(strstr(out, "\"verdict\":\"unconfirmed\""));
	free(out);

	// The coordinator comes back with COMMIT logged and sends it.
	assert_int_equal(tu_restart(fx, 0), DTX_OK);
	uint64_t end = dtx_mono_ns() + 30000000000ull;
	while ((tu_counter(fx, 1, "heuristic_hazards") != 1 ||
	           tu_counter(fx, 2, "heuristic_hazards") != 1) &&
	    dtx_mono_ns() < end)
		dtx_sleep_ms(100);
	check_hazard(fx, tx);
	// Kept for good: a participant restart still reports it.
	assert_int_equal(hx_cluster_signal(fx->cl, 1, SIGKILL), DTX_OK);
	dtx_sleep_ms(1500); // past its persisted HLC bound
	assert_int_equal(tu_restart(fx, 1), DTX_OK);
	assert_int_equal(tu_counter(fx, 1, "heuristic_hazards"), 1);
	// The coordinator finished: nothing is in doubt anywhere.
	assert_true(tu_wait_resolved(fx, true, 30000));
}

// The coordinator dies before it logs COMMIT; both participants are
// committed by hand; the restarted coordinator has no record (presumed
// abort) and sends nothing, so only the participants' own STATUS check
// finds the hazard.
static void
test_heuristic_commit_presumed_abort(void **state)
{
	tu_fx *fx = *state;
	const char *d = fx->dir;
	tu_pair p = tu_pair_of(fx, 2, 20000);
	int64_t hz[3], hc[3];
	for (uint32_t id = 1; id <= 2; id++) {
		hz[id] = tu_counter(fx, id, "heuristic_hazards");
		hc[id] = tu_counter(fx, id, "heuristic_commits");
	}
	uint64_t before = tu_last_txid(fx);
	assert_int_equal(tu_arm(fx, 0, "coord.before_commit_log"), DTX_OK);
	proto_msg rep;
	if (tu_transfer(fx, NULL, PROTO_MODE_2PC, p.a, p.b, 10, &rep, 3000) ==
	    DTX_OK)
		proto_msg_free(&rep);
	uint64_t txid = tu_crashed_txid(fx, 0, before);
	char tx[24], *out;
	snprintf(tx, sizeof(tx), "%" PRIu64, txid);
	int rc = DTX(fx, &out, "txn", "resolve", tx, "--commit", "--dir", d);
	assert_int_equal(rc, HX_EXIT_OK);
	assert_non_null(strstr(out, "committed by hand"));
	free(out);
	tu_pair_moved(fx, &p, 10, 20000);
	assert_int_equal(tu_restart(fx, 0), DTX_OK);
	uint64_t end = dtx_mono_ns() + 30000000000ull;
	while ((tu_counter(fx, 1, "heuristic_hazards") != hz[1] + 1 ||
	           tu_counter(fx, 2, "heuristic_hazards") != hz[2] + 1) &&
	    dtx_mono_ns() < end)
		dtx_sleep_ms(100);
	for (uint32_t id = 1; id <= 2; id++) {
		assert_int_equal(
		    tu_counter(fx, id, "heuristic_hazards"), hz[id] + 1);
		assert_int_equal(
		    tu_counter(fx, id, "heuristic_commits"), hc[id] + 1);
	}
	rc = DTX(fx, &out, "txn", "status", tx, "--dir", d);
	assert_int_equal(rc, HX_EXIT_INVALID);
	assert_non_null(strstr(out, "coordinator 0 decided aborted"));
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_indoubt_resolve_hazard),
		cmocka_unit_test(test_heuristic_commit_presumed_abort),
		cmocka_unit_test(test_resolve_follows_coordinator),
	};
	return cmocka_run_group_tests(tests, setup, tu_group_teardown);
}
