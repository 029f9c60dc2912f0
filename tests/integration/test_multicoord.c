// SPDX-License-Identifier: MIT
//
// A cluster with two coordinators (node 0 and node 3, beside participants
// 1 and 2): the harness client spreads transfers across both (by txid),
// each coordinator keeps its own transactions, a killed coordinator
// leaves the other serving (a TXN it certainly did not get moves on to
// the next), and a participant in doubt asks the coordinator its PREPARED
// record names, not another one: a 2PC transaction that coordinator 3
// logged as committed and then died on is committed once 3 is back, and
// stays in doubt while 3 is down (coordinator 0, which has no record of
// it, would have said presumed abort).

#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>

#include "harness.h"

#define NACCT 8
#define BAL 1000
#define CO_A 0u // the first coordinator
#define CO_B 3u // the second: after participants 1 and 2

typedef struct mc_fx {
	char dir[256];
	hx_cluster *cl;
	hx_conn *conn;
} mc_fx;

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

static void
dump_logs(mc_fx *fx)
{
	for (uint32_t id = 0; id <= CO_B; id++) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd),
		    "echo '--- node %u'; tail -n 20 '%s'", id,
		    hx_cluster_log(fx->cl, id));
		if (system(cmd) != 0)
			fprintf(stderr, "cannot show log of node %u\n", id);
	}
}

static int
setup(void **state)
{
	static mc_fx fx;
	char err[256];
	bool created;
	memset(&fx, 0, sizeof(fx));
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/dtx-mc-XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	setenv("DTX_INSECURE", "1", 1);
	setenv("DTX_ENABLE_FAULTS", "1", 1);
	hx_cluster_opts o = { .dir = fx.dir,
		.participants = 2,
		.coordinators = 2,
		// Plaintext links on this host: the test's own clients speak
		// as the topology's client node (see test_2pc_util.h).
		.insecure = true };
	if (hx_cluster_create(&o, &fx.cl, err, sizeof(err)) != DTX_OK) {
		fprintf(stderr, "cluster: %s\n", err);
		return -1;
	}
	const dtx_topo *t = hx_cluster_topo(fx.cl);
	if (dtx_topo_find(t, CO_A)->role != DTX_ROLE_COORDINATOR ||
	    dtx_topo_find(t, CO_B)->role != DTX_ROLE_COORDINATOR ||
	    t->nparts != 2)
		return -1;
	// Coordinator 0 lets every vote overtake decisions; 3 keeps the
	// default (only pc PREPAREs do).
	static char *const overtake[] = { "DTX_VOTES_OVERTAKE=1", NULL };
	dtx_err rv = DTX_OK;
	for (uint32_t i = 0; i < t->n && rv == DTX_OK; i++)
		if (t->nodes[i].role != DTX_ROLE_CLIENT)
			rv = hx_cluster_start(fx.cl, t->nodes[i].id,
			    t->nodes[i].id == CO_A ? overtake : NULL);
	for (uint32_t i = 0; i < t->n && rv == DTX_OK; i++)
		if (t->nodes[i].role != DTX_ROLE_CLIENT)
			rv =
			    hx_cluster_wait_ready(fx.cl, t->nodes[i].id, 30000);
	if (rv != DTX_OK || hx_conn_open(t, &fx.conn) != DTX_OK ||
	    hx_conn_ncoords(fx.conn) != 2 ||
	    hx_bank_init(fx.conn, NACCT, BAL, &created, err, sizeof(err)) !=
	        DTX_OK) {
		fprintf(stderr, "setup: %s\n", err);
		dump_logs(&fx);
		return -1;
	}
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	mc_fx *fx = *state;
	if (fx == NULL)
		return 0;
	hx_conn_close(fx->conn);
	if (fx->cl != NULL) {
		hx_cluster_stop_all(fx->cl, 10000);
		hx_cluster_free(fx->cl);
	}
	if (getenv("DTX_KEEP_TEST_DIR") == NULL)
		nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static int64_t
total(mc_fx *fx)
{
	hx_snapshot s;
	assert_int_equal(hx_snapshot_read(fx->conn, 0, 20000, &s), DTX_OK);
	int64_t t = s.total;
	assert_int_equal(s.n, NACCT);
	hx_snapshot_fini(&s);
	return t;
}

// A txid that hx_conn_coord_for sends to coordinator co.
static uint64_t
txid_for(mc_fx *fx, uint32_t co)
{
	for (int i = 0; i < 100000; i++) {
		uint64_t t;
		assert_int_equal(dtx_random_u64(&t), DTX_OK);
		if (t != 0 && t != UINT64_MAX &&
		    hx_conn_coord_for(fx->conn, t) == co)
			return t;
	}
	fail_msg("no txid goes to coordinator %u", co);
	return 0;
}

// One transfer through coordinator co (co UINT32_MAX: round robin,
// txid 0) that commits: an abort (a lock still held by an earlier
// transfer whose COMMIT is on its way) is retried with a new txid.
static void
xfer_commit(mc_fx *fx, proto_mode mode, uint32_t co, int64_t from, int64_t to,
    hx_xfer *x)
{
	for (int attempt = 0; attempt < 100; attempt++) {
		uint64_t txid = co == UINT32_MAX ? 0 : txid_for(fx, co);
		hx_transfer_as(fx->conn, mode, txid, from, to, 1, 10000, x);
		if (x->err != DTX_OK || x->outcome != PROTO_ABORTED)
			break;
		dtx_sleep_ms(20);
	}
	if (x->err != DTX_OK || x->outcome != PROTO_COMMITTED) {
		fprintf(stderr, "transfer %" PRId64 "->%" PRId64 ": %s %s\n",
		    from, to, dtx_errname(x->err), x->reason);
		dump_logs(fx);
	}
	assert_int_equal(x->err, DTX_OK);
	assert_int_equal(x->outcome, PROTO_COMMITTED);
}

// Waits until node id answers HEALTH through the harness's connection
// (which redials a restarted daemon with backoff).
static void
await_health(mc_fx *fx, uint32_t id)
{
	for (int i = 0; i < 200; i++) {
		proto_msg rep;
		if (hx_health(fx->conn, id, 1000, &rep) == DTX_OK) {
			proto_msg_free(&rep);
			return;
		}
		dtx_sleep_ms(100);
	}
	fail_msg("node %u does not answer HEALTH", id);
}

static int64_t
coord_counter(mc_fx *fx, uint32_t id, const char *name)
{
	proto_msg rep;
	assert_int_equal(hx_health(fx->conn, id, 5000, &rep), DTX_OK);
	int64_t v = hx_health_counter(&rep, name);
	proto_msg_free(&rep);
	return v;
}

// Transfers in 2PC and pc go through both coordinators, each of which
// commits its own share; with coordinator 3 killed every transfer still
// commits, through coordinator 0, and the bank's total is kept.
static void
test_spread_and_kill(void **state)
{
	mc_fx *fx = *state;
	// No daemon for an id the topology lacks, nor for its client node.
	assert_int_equal(
	    hx_cluster_start(fx->cl, DTX_TOPO_MAX, NULL), DTX_EINVAL);
	assert_int_equal(
	    hx_cluster_start(fx->cl, UINT32_MAX, NULL), DTX_EINVAL);
	const dtx_node *cn =
	    dtx_topo_first(hx_cluster_topo(fx->cl), DTX_ROLE_CLIENT);
	assert_non_null(cn);
	assert_int_equal(hx_cluster_start(fx->cl, cn->id, NULL), DTX_EINVAL);
	int64_t t0 = total(fx);
	int64_t a0 = coord_counter(fx, CO_A, "committed");
	int64_t b0 = coord_counter(fx, CO_B, "committed");
	int by[2] = { 0, 0 };
	const proto_mode modes[] = { PROTO_MODE_2PC, PROTO_MODE_PC };
	for (int i = 0; i < 24; i++) {
		hx_xfer x;
		xfer_commit(fx, modes[(i / 2) % 2], i % 2 ? CO_B : CO_A,
		    i % NACCT, (i + 3) % NACCT, &x);
		assert_true(hx_conn_coord_for(fx->conn, x.txid) == x.coord);
		assert_int_equal(x.coord, i % 2 ? CO_B : CO_A);
		by[i % 2]++;
	}
	// Each coordinator counted exactly its own.
	assert_int_equal(coord_counter(fx, CO_A, "committed") - a0, by[0]);
	assert_int_equal(coord_counter(fx, CO_B, "committed") - b0, by[1]);
	// Round robin (txid 0) reaches both too.
	bool seen[2] = { false, false };
	for (int i = 0; i < 8; i++) {
		hx_xfer x;
		xfer_commit(fx, PROTO_MODE_2PC, UINT32_MAX, 1, 2, &x);
		seen[x.coord == CO_B] = true;
	}
	assert_true(seen[0] && seen[1]);
	assert_int_equal(total(fx), t0);

	assert_int_equal(hx_cluster_signal(fx->cl, CO_B, SIGKILL), DTX_OK);
	for (int i = 0; i < 12; i++) {
		// Half of them start at the dead coordinator 3, which
		// certainly does not get them: they move on to 0.
		hx_xfer x;
		xfer_commit(fx, modes[i % 2], i % 2 ? CO_B : CO_A,
		    (i + 1) % NACCT, (i + 5) % NACCT, &x);
		assert_int_equal(x.coord, CO_A);
	}
	assert_int_equal(total(fx), t0);
	assert_int_equal(hx_cluster_start(fx->cl, CO_B, NULL), DTX_OK);
	assert_int_equal(hx_cluster_wait_ready(fx->cl, CO_B, 20000), DTX_OK);
	await_health(fx, CO_B);
}

// The state of txid at participant id (PROTO_TS_UNKNOWN when it cannot
// be asked).
static proto_txn_state
part_state(mc_fx *fx, uint32_t id, uint64_t txid)
{
	proto_txn_state st;
	if (hx_txn_status(fx->conn, id, txid, &st) != DTX_OK)
		return PROTO_TS_UNKNOWN;
	return st;
}

// Coordinator 3 logs a 2PC commit and dies before telling anyone: the
// participants hold the transaction in doubt. Their records name
// coordinator 3, so while it is down they stay in doubt (coordinator 0
// would answer "no record": presumed abort, the wrong outcome); once it is
// back they learn COMMITTED from it.
static void
test_in_doubt_asks_own_coordinator(void **state)
{
	mc_fx *fx = *state;
	int64_t t0 = total(fx);
	int64_t one = 1;
	assert_int_equal(hx_send_fault(fx->conn, CO_B, "crash_at", &one, 1,
	                     "coord.after_commit_log"),
	    DTX_OK);
	uint64_t txid = txid_for(fx, CO_B);
	hx_xfer x;
	hx_transfer_as(fx->conn, PROTO_MODE_2PC, txid, 0, 1, 7, 3000, &x);
	assert_int_not_equal(x.err, DTX_OK); // the coordinator died
	assert_int_equal(x.coord, CO_B);
	assert_int_equal(
	    hx_cluster_wait_exit(fx->cl, CO_B, 10000, NULL), DTX_OK);
	// Past the participants' in-doubt timeout and several resolver
	// rounds: still in doubt at both (never aborted through node 0).
	dtx_sleep_ms(4000);
	for (uint32_t id = 1; id <= 2; id++) {
		proto_txn_state st = part_state(fx, id, txid);
		if (st != PROTO_TS_PREPARED)
			dump_logs(fx);
		assert_int_equal(st, PROTO_TS_PREPARED);
	}
	assert_int_equal(hx_cluster_start(fx->cl, CO_B, NULL), DTX_OK);
	assert_int_equal(hx_cluster_wait_ready(fx->cl, CO_B, 20000), DTX_OK);
	uint64_t end = dtx_mono_ns() + 60000000000ull;
	bool done = false;
	while (!done && dtx_mono_ns() < end) {
		done = part_state(fx, 1, txid) == PROTO_TS_COMMITTED &&
		    part_state(fx, 2, txid) == PROTO_TS_COMMITTED;
		if (!done)
			dtx_sleep_ms(100);
	}
	if (!done)
		dump_logs(fx);
	assert_true(done);
	// Coordinator 0 never heard of it; 3 has the commit.
	proto_txn_state st = PROTO_TS_UNKNOWN;
	await_health(fx, CO_B);
	assert_int_equal(hx_txn_status(fx->conn, CO_B, txid, &st), DTX_OK);
	assert_int_equal(st, PROTO_TS_COMMITTED);
	assert_int_equal(hx_txn_status(fx->conn, CO_A, txid, &st), DTX_OK);
	assert_int_not_equal(st, PROTO_TS_COMMITTED);
	assert_int_equal(total(fx), t0);
}

// An account owned by participant part, other than skip.
static int64_t
acct_on(mc_fx *fx, uint32_t part, int64_t skip)
{
	const dtx_topo *t = hx_cluster_topo(fx->cl);
	for (int64_t a = 0; a < NACCT; a++) {
		char k[32];
		hx_acct_key(k, sizeof(k), a);
		if (a != skip && dtx_topo_route(t, k, strlen(k)) == part)
			return a;
	}
	fail_msg("no second account on participant %u", part);
	return -1;
}

// The milliseconds a transfer of mode through co from a to b takes
// right after one from a0 to b0 (both answered, and committed; an abort
// of the first is retried).
static uint64_t
second_ms(mc_fx *fx, proto_mode mode, uint32_t co, int64_t a0, int64_t b0,
    int64_t a, int64_t b)
{
	hx_xfer x;
	xfer_commit(fx, mode, co, a0, b0, &x);
	uint64_t t0 = dtx_mono_ns();
	hx_transfer_as(fx->conn, mode, txid_for(fx, co), a, b, 1, 10000, &x);
	uint64_t ms = (dtx_mono_ns() - t0) / 1000000u;
	if (x.err != DTX_OK || x.outcome != PROTO_COMMITTED)
		fprintf(stderr, "second transfer: %s %s\n", dtx_errname(x.err),
		    x.reason);
	assert_int_equal(x.err, DTX_OK);
	assert_int_equal(x.outcome, PROTO_COMMITTED);
	dtx_sleep_ms(400); // the COMMITs land
	return ms;
}

// With every call from a coordinator to participant 1 held back 300 ms,
// a transfer answered (pc: before its COMMIT leaves) is followed at once
// by another on the same accounts. A pc PREPARE overtakes the COMMIT
// batch by default (coordinator 3), and so does a 2PC one with
// --votes-overtake (coordinator 0): one delay, and participant 1 holds
// the second PREPARE until the first's COMMIT, which arrives about with
// it, releases the accounts, so it commits the first time. A 2PC PREPARE
// through coordinator 3 (the default for 2PC) waits for the first's
// COMMIT batch: two delays.
static void
test_vote_not_behind_commit(void **state)
{
	mc_fx *fx = *state;
	int64_t a1 = acct_on(fx, 1, -1), a2 = acct_on(fx, 1, a1);
	int64_t b1 = acct_on(fx, 2, -1), b2 = acct_on(fx, 2, b1);
	int64_t args[2] = { 1, 300 };
	assert_int_equal(
	    hx_send_fault(fx->conn, CO_A, "delay", args, 2, NULL), DTX_OK);
	assert_int_equal(
	    hx_send_fault(fx->conn, CO_B, "delay", args, 2, NULL), DTX_OK);
	uint64_t pc_def = second_ms(fx, PROTO_MODE_PC, CO_B, a1, b1, a1, b1);
	uint64_t pc_other = second_ms(fx, PROTO_MODE_PC, CO_B, a1, b1, a2, b2);
	uint64_t fast = second_ms(fx, PROTO_MODE_2PC, CO_A, a1, b1, a1, b1);
	uint64_t kept = second_ms(fx, PROTO_MODE_2PC, CO_B, a1, b1, a1, b1);
	fprintf(stderr,
	    "second transfer: pc %" PRIu64 " ms (same accounts), %" PRIu64
	    " ms (others); 2pc %" PRIu64 " ms overtaking, %" PRIu64
	    " ms in order\n",
	    pc_def, pc_other, fast, kept);
	assert_true(pc_def >= 300 && pc_def < 550);
	assert_true(pc_other >= 300 && pc_other < 550);
	assert_true(fast >= 300 && fast < 550);
	assert_true(kept >= 550);
	args[1] = 0;
	assert_int_equal(
	    hx_send_fault(fx->conn, CO_A, "delay", args, 2, NULL), DTX_OK);
	assert_int_equal(
	    hx_send_fault(fx->conn, CO_B, "delay", args, 2, NULL), DTX_OK);
}

// Runs `dtx bench KIND ARGS --json` on a fresh directory on disk (the
// bench refuses tmpfs) and parses its JSON into *d; false when there is
// no build to run (DTX_BUILD_ROOT unset).
static bool
bench_json(const char *kind_args, hx_jdoc **d)
{
	const char *root = getenv("DTX_BUILD_ROOT");
	char cmd[1024], dir[64] = "/var/tmp/dtx-mcb-XXXXXX";
	if (root == NULL)
		return false;
	assert_non_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "'%s/cli/dtx' bench %s --json --dir '%s'",
	    root, kind_args, dir);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	char out[8192];
	size_t n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	int st = pclose(f);
	rmdir(dir);
	assert_int_equal(st, 0);
	char err[128];
	assert_int_equal(hx_json_parse(out, n, d, err, sizeof(err)), DTX_OK);
	return true;
}

// Asserts that the bench's JSON root says it drove two heads (count_key),
// that each counted commits of its own (by_key) and that no call failed.
static void
expect_two_heads(const hx_jv *root, const char *count_key, const char *by_key)
{
	int64_t v = 0;
	assert_int_equal(hx_jv_int(hx_jv_get(root, count_key), &v), DTX_OK);
	assert_int_equal(v, 2);
	const hx_jv *by = hx_jv_get(root, by_key);
	assert_non_null(by);
	assert_int_equal(by->len, 2);
	for (const hx_jv *e = by->first; e != NULL; e = e->next) {
		assert_int_equal(hx_jv_int(e, &v), DTX_OK);
		assert_true(v > 0);
	}
	assert_int_equal(hx_jv_int(hx_jv_get(root, "errors"), &v), DTX_OK);
	assert_int_equal(v, 0);
}

// dtx bench 2pc --coordinators 2 drives both coordinators: each counts
// commits of its own, and the bench reports two.
static void
test_bench_two_coordinators(void **state)
{
	(void)state;
	hx_jdoc *d;
	if (!bench_json("2pc --mode pc --coordinators 2 --participants 2 "
	                "--clients 4 --client-batch 1 --seconds 2 "
	                "--rpc-seconds 1 --accounts 64",
	        &d)) {
		skip();
		return;
	}
	const hx_jv *root = hx_jdoc_root(d);
	expect_two_heads(root, "coordinators", "committed_by_coordinator");
	// Every transfer costs each side context switches (a message in and
	// out at the least): a count below one per transfer is a broken one.
	static const char *const per[] = {
		"switches_per_txn_coordinator",
		"switches_per_txn_participants",
		"cpu_us_per_txn_coordinator",
	};
	for (size_t i = 0; i < sizeof(per) / sizeof(per[0]); i++) {
		const hx_jv *v = hx_jv_get(root, per[i]);
		assert_non_null(v);
		assert_int_equal(v->type, HX_JV_NUM);
		assert_true(v->d >= 1.0);
	}
	hx_jdoc_free(d);
}

// dtx bench saga --orchestrators 2 drives both orchestrators, each
// finishing sagas of its own, and the total stays conserved.
static void
test_bench_two_orchestrators(void **state)
{
	(void)state;
	hx_jdoc *d;
	if (!bench_json("saga --orchestrators 2 --participants 2 --clients 4 "
	                "--client-batch 1 --seconds 2 --accounts 64",
	        &d)) {
		skip();
		return;
	}
	const hx_jv *root = hx_jdoc_root(d);
	expect_two_heads(root, "orchestrators", "committed_by_orchestrator");
	const hx_jv *conserved = hx_jv_get(root, "conserved");
	assert_non_null(conserved);
	assert_int_equal(conserved->type, HX_JV_BOOL);
	assert_true(conserved->b);
	hx_jdoc_free(d);
}

// The exit status of `dtx bench ARGS` (its output dropped), or -1 when
// the build tree is not known.
static int
bench_status(const char *args)
{
	const char *root = getenv("DTX_BUILD_ROOT");
	char cmd[1024];
	if (root == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd),
	    "'%s/cli/dtx' bench %s --dir /var/tmp >/dev/null 2>&1", root, args);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

// A pc coordinator holds nothing that must outlive it, so dtx bench runs
// it in its own process by default: the clients call it directly (one
// thread each, or from its completions), it still serves its URL (its
// HEALTH counts every transfer they made) and reports no CPU of its
// own. A 2PC or 3PC coordinator, whose log decides, is refused there.
static void
test_bench_embedded_pc(void **state)
{
	(void)state;
	static const char *const runs[] = {
		"2pc --mode pc --participants 2 --clients 2 --client-batch 1 "
		"--seconds 2 --rpc-seconds 1 --accounts 256",
		"2pc --mode pc --participants 2 --clients 8 --client-batch 8 "
		"--seconds 2 --rpc-seconds 1 --accounts 256",
	};
	for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
		hx_jdoc *d;
		if (!bench_json(runs[r], &d)) {
			skip();
			return;
		}
		const hx_jv *root = hx_jdoc_root(d);
		const hx_jv *where = hx_jv_get(root, "coordinator");
		assert_non_null(where);
		assert_string_equal(where->s, "embedded");
		int64_t committed = 0, errors = 1, unknown = 1, counted = 0;
		assert_int_equal(
		    hx_jv_int(hx_jv_get(root, "committed"), &committed),
		    DTX_OK);
		assert_int_equal(
		    hx_jv_int(hx_jv_get(root, "errors"), &errors), DTX_OK);
		assert_int_equal(
		    hx_jv_int(hx_jv_get(root, "unknown"), &unknown), DTX_OK);
		assert_true(committed > 0);
		assert_int_equal(errors, 0);
		assert_int_equal(unknown, 0);
		const hx_jv *by = hx_jv_get(root, "committed_by_coordinator");
		assert_non_null(by);
		assert_int_equal(by->len, 1);
		assert_int_equal(hx_jv_int(by->first, &counted), DTX_OK);
		assert_true(counted >= committed);
		const hx_jv *cs =
		    hx_jv_get(root, "switches_per_txn_coordinator");
		assert_non_null(cs);
		assert_true(cs->d < 0);
		hx_jdoc_free(d);
	}
	assert_int_equal(bench_status("2pc --mode 2pc --coordinator embedded "
	                              "--seconds 1"),
	    64);
	assert_int_equal(bench_status("2pc --mode 3pc --coordinator embedded "
	                              "--seconds 1"),
	    64);
	assert_int_equal(bench_status("2pc --mode pc --coordinator elsewhere "
	                              "--seconds 1"),
	    64);
}

// The cluster directory dtx bench made under dir (out: its path), once
// its state file is there.
static bool
bench_cluster_dir(const char *dir, char *out, size_t len)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return false;
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, ".dtx-bench-", 11) != 0)
			continue;
		char st[512];
		snprintf(st, sizeof(st), "%s/%s/cluster.state", dir, e->d_name);
		found = access(st, F_OK) == 0;
		if (found)
			snprintf(out, len, "%s/%s", dir, e->d_name);
	}
	closedir(d);
	return found;
}

// A HEALTH counter of node id (-1 when it does not answer).
static int64_t
node_counter(hx_conn *conn, uint32_t id, const char *name)
{
	proto_msg rep;
	if (hx_health(conn, id, 2000, &rep) != DTX_OK)
		return -1;
	int64_t v = hx_health_counter(&rep, name);
	proto_msg_free(&rep);
	return v;
}

// The process that embeds a pc coordinator dies for good in the middle
// of its transfers, some of which only one participant has voted on
// (the other is paused): nobody is left to finish them, and nobody needs
// to. The participants resolve every one among themselves (in doubt:
// none left, some resolved by peers) and the bank's total is what it was.
static void
test_embedded_pc_client_killed(void **state)
{
	(void)state;
	const char *root = getenv("DTX_BUILD_ROOT");
	if (root == NULL) {
		skip();
		return;
	}
	char dir[64] = "/var/tmp/dtx-emb-XXXXXX", cdir[512], bin[512];
	assert_non_null(mkdtemp(dir));
	snprintf(bin, sizeof(bin), "%s/cli/dtx", root);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		execl(bin, "dtx", "bench", "2pc", "--mode", "pc", "--insecure",
		    "--participants", "2", "--clients", "8", "--client-batch",
		    "1", "--seconds", "120", "--rpc-seconds", "1", "--accounts",
		    "64", "--dir", dir, (char *)NULL);
		_exit(127);
	}
	uint64_t end = dtx_mono_ns() + 30000000000ull;
	bool found = false;
	while (!(found = bench_cluster_dir(dir, cdir, sizeof(cdir))) &&
	    dtx_mono_ns() < end)
		dtx_sleep_ms(50);
	hx_cluster *cl = NULL;
	hx_conn *conn = NULL;
	char err[256];
	// Transfers flow (the accounts are made first), then participant 2
	// stops answering: participant 1 votes YES on what 2 never saw.
	bool flowing = false;
	uint32_t p1 = 0, p2 = 0;
	if (found && hx_cluster_open(cdir, &cl, err, sizeof(err)) == DTX_OK &&
	    hx_cluster_topo(cl)->nparts == 2 &&
	    hx_conn_open(hx_cluster_topo(cl), &conn) == DTX_OK) {
		p1 = hx_cluster_topo(cl)->parts[0];
		p2 = hx_cluster_topo(cl)->parts[1];
		while (
		    !(flowing = node_counter(conn, p1, "committed") >= 500) &&
		    dtx_mono_ns() < end)
			dtx_sleep_ms(50);
	}
	// Every daemon has started by now: read their pids afresh.
	hx_cluster_free(cl);
	cl = NULL;
	int pp2 = 0;
	if (flowing && hx_cluster_open(cdir, &cl, err, sizeof(err)) == DTX_OK)
		pp2 = hx_cluster_pid(cl, p2);
	if (pp2 <= 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		hx_conn_close(conn);
		if (found)
			hx_cluster_stop_dir(cdir, false);
		hx_cluster_free(cl);
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		fail_msg("the bench's cluster did not come up (dir %s, "
		         "transfers %s)",
		    found ? cdir : "none", flowing ? "flowing" : "not flowing");
	}
	assert_int_equal(kill(pp2, SIGSTOP), 0);
	dtx_sleep_ms(300);
	int64_t prepared = node_counter(conn, p1, "in_doubt");
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(kill(pp2, SIGCONT), 0);
	// Past the in-doubt timeout (2 s) and a few resolver rounds.
	end = dtx_mono_ns() + 30000000000ull;
	int64_t left = -1;
	while (dtx_mono_ns() < end) {
		int64_t a = node_counter(conn, p1, "in_doubt");
		int64_t b = node_counter(conn, p2, "in_doubt");
		left = a < 0 || b < 0 ? -1 : a + b;
		if (left == 0)
			break;
		dtx_sleep_ms(200);
	}
	int64_t by_peers = node_counter(conn, p1, "resolved_by_peers") +
	    node_counter(conn, p2, "resolved_by_peers");
	hx_snapshot s;
	dtx_err rv = hx_snapshot_read(conn, 0, 20000, &s);
	int64_t total = rv == DTX_OK ? s.total : -1;
	size_t n = rv == DTX_OK ? s.n : 0;
	if (rv == DTX_OK)
		hx_snapshot_fini(&s);
	hx_conn_close(conn);
	hx_cluster_stop_all(cl, 10000);
	hx_cluster_free(cl);
	if (getenv("DTX_KEEP_TEST_DIR") == NULL)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	fprintf(stderr,
	    "in doubt at participant %u when the bench died: %" PRId64
	    "; resolved by peers since: %" PRId64 "; left: %" PRId64 "\n",
	    p1, prepared, by_peers, left);
	assert_true(prepared >= 1);
	assert_int_equal(left, 0);
	assert_true(by_peers >= 1);
	assert_int_equal(rv, DTX_OK);
	assert_int_equal(n, 64);
	assert_int_equal(total, 64 * INT64_C(1000000000));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spread_and_kill),
		cmocka_unit_test(test_in_doubt_asks_own_coordinator),
		cmocka_unit_test(test_bench_two_coordinators),
		cmocka_unit_test(test_bench_two_orchestrators),
		cmocka_unit_test(test_bench_embedded_pc),
		cmocka_unit_test(test_embedded_pc_client_killed),
		cmocka_unit_test(test_vote_not_behind_commit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
