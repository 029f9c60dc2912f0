// SPDX-License-Identifier: MIT
//
// Helpers shared by the 2PC and 3PC integration tests: a local cluster in
// a temp dir with clients to every daemon, the bank accounts (keys
// "acct:<n>" holding 8-byte little-endian int64 balances), transfers,
// snapshot totals, STATUS and HEALTH queries, and bounded waits.

#ifndef TEST_2PC_UTIL_H
#define TEST_2PC_UTIL_H

#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "proto.h"

#define TU_UNUSED __attribute__((unused))

typedef struct tu_fx {
	char dir[256];
	hx_cluster *cl;
	const dtx_topo *topo;
	uint32_t np; // participants 1..np
	uint32_t client_id;
	proto_client *cli[DTX_TOPO_MAX]; // by node id
	char *const *env[DTX_TOPO_MAX]; // each node's extra environment
} tu_fx;

static TU_UNUSED int
tu_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

static TU_UNUSED dtx_err
tu_open_client(tu_fx *fx, uint32_t id)
{
	const dtx_node *nd = dtx_topo_find(fx->topo, id);
	if (nd == NULL)
		return DTX_EINVAL;
	proto_client_close(fx->cli[id]);
	fx->cli[id] = NULL;
	proto_client_cfg cc;
	memset(&cc, 0, sizeof(cc));
	cc.url = nd->url;
	cc.node_id = fx->client_id;
	cc.timeout_ms = 5000;
	cc.connect_wait_ms = 1000;
	return proto_client_open(&cc, &fx->cli[id]);
}

// The coordinator's extra environment in most tests: debug logging; and
// a tu_setup env of it with default participants (up to 3).
static TU_UNUSED char *const tu_coord_debug[] = { "DTX_LOG_LEVEL=debug", NULL };
static TU_UNUSED char *const *const tu_env_debug[] = { tu_coord_debug, NULL,
	NULL, NULL };

// Opens a client of the caller's own to the coordinator (calls time out
// after timeout_ms; 0 keeps the proto default). *out returns owned
// (proto_client_close) on success.
static TU_UNUSED dtx_err
tu_coord_client(tu_fx *fx, uint32_t timeout_ms, proto_client **out)
{
	proto_client_cfg cc;
	memset(&cc, 0, sizeof(cc));
	cc.url = dtx_topo_find(fx->topo, 0)->url;
	cc.node_id = fx->client_id;
	cc.timeout_ms = timeout_ms;
	return proto_client_open(&cc, out);
}

static TU_UNUSED dtx_err tu_await_serving(tu_fx *fx, uint32_t id, int before);

// Creates and starts a cluster of np participants. env (may be NULL)
// gives each node id's extra environment (NULL entries: none), kept for
// restarts (borrowed).
static TU_UNUSED dtx_err
tu_setup(tu_fx *fx, uint32_t np, char *const *const *env)
{
	char err[256];
	memset(fx, 0, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/dtx-2pc-XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return DTX_EIO;
	// Plaintext links on this host (the daemons' --insecure) and the
	// FAULT requests these tests send (--enable-faults).
	setenv("DTX_INSECURE", "1", 1);
	setenv("DTX_ENABLE_FAULTS", "1", 1);
	hx_cluster_opts o;
	memset(&o, 0, sizeof(o));
	o.dir = fx->dir;
	o.participants = np;
	o.insecure = true;
	dtx_err rv = hx_cluster_create(&o, &fx->cl, err, sizeof(err));
	if (rv != DTX_OK) {
		fprintf(stderr, "cluster: %s\n", err);
		return rv;
	}
	fx->topo = hx_cluster_topo(fx->cl);
	fx->np = np;
	const dtx_node *cn = dtx_topo_first(fx->topo, DTX_ROLE_CLIENT);
	fx->client_id = cn != NULL ? cn->id : 0;
	for (uint32_t id = 0; env != NULL && id <= np; id++)
		fx->env[id] = env[id];
	for (uint32_t id = 1; id <= np && rv == DTX_OK; id++)
		rv = hx_cluster_start(fx->cl, id, fx->env[id]);
	if (rv == DTX_OK)
		rv = hx_cluster_start(fx->cl, 0, fx->env[0]);
	for (uint32_t id = 0; id <= np && rv == DTX_OK; id++)
		rv = hx_cluster_wait_ready(fx->cl, id, 20000);
	for (uint32_t id = 0; id <= np && rv == DTX_OK; id++)
		rv = tu_open_client(fx, id);
	for (uint32_t id = 0; id <= np && rv == DTX_OK; id++)
		rv = tu_await_serving(fx, id, 0);
	return rv;
}

// Prints the tail of every daemon's log (for a failed assertion).
static TU_UNUSED void
tu_dump_logs(tu_fx *fx)
{
	for (uint32_t id = 0; id <= fx->np; id++) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd),
		    "echo '--- node %u'; tail -n 15 '%s'", id,
		    hx_cluster_log(fx->cl, id));
		if (system(cmd) != 0)
			fprintf(stderr, "cannot show log of node %u\n", id);
	}
}

// True when a daemon's log shows a sanitizer report.
static TU_UNUSED bool
tu_log_has_sanitizer_report(tu_fx *fx, uint32_t id)
{
	FILE *f = fopen(hx_cluster_log(fx->cl, id), "r");
	char line[1024];
	bool bad = false;
	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, "AddressSanitizer") != NULL ||
		    strstr(line, "LeakSanitizer") != NULL ||
		    strstr(line, "runtime error:") != NULL)
			bad = true;
	fclose(f);
	return bad;
}

// Stops every daemon (SIGTERM: a clean exit, so a sanitizer build reports
// leaks), removes the directory, and returns -1 when the coordinator's
// log holds a sanitizer report, else 0.
static TU_UNUSED int
tu_teardown(tu_fx *fx)
{
	int rc = 0;
	for (uint32_t i = 0; i < DTX_TOPO_MAX; i++) {
		proto_client_close(fx->cli[i]);
		fx->cli[i] = NULL;
	}
	if (fx->cl != NULL) {
		hx_cluster_stop_all(fx->cl, 10000);
		if (tu_log_has_sanitizer_report(fx, 0)) {
			tu_dump_logs(fx);
			rc = -1;
		}
		hx_cluster_free(fx->cl);
		fx->cl = NULL;
	}
	if (fx->dir[0] != '\0' && getenv("DTX_KEEP_TEST_DIR") == NULL)
		nftw(fx->dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	fx->dir[0] = '\0';
	return rc;
}

static TU_UNUSED void
tu_key(char *buf, size_t len, int64_t acct)
{
	snprintf(buf, len, "acct:%" PRId64, acct);
}

// The participant that owns account acct.
static TU_UNUSED uint32_t
tu_owner(tu_fx *fx, int64_t acct)
{
	char k[32];
	tu_key(k, sizeof(k), acct);
	return dtx_topo_route(fx->topo, k, strlen(k));
}

// The n-th account (from 0) owned by participant pid.
static TU_UNUSED int64_t
tu_acct_on(tu_fx *fx, uint32_t pid, int n)
{
	for (int64_t a = 0;; a++)
		if (tu_owner(fx, a) == pid && n-- == 0)
			return a;
}

// Calls node id with a fresh reply; returns the call's result.
static TU_UNUSED dtx_err
tu_call(
    tu_fx *fx, uint32_t id, proto_msg *req, proto_msg *rep, uint32_t timeout_ms)
{
	proto_call_opts o;
	memset(&o, 0, sizeof(o));
	o.timeout_ms = timeout_ms;
	memset(rep, 0, sizeof(*rep));
	return proto_client_call(fx->cli[id], req, rep, &o);
}

static TU_UNUSED void
tu_le64(uint8_t *b, int64_t v)
{
	dtx_put_le64(b, (uint64_t)v);
}

static TU_UNUSED bool
tu_entry_i64(const proto_entry *e, int64_t *out)
{
	return hx_entry_i64(e, out);
}

// READ of all keys at participant pid at ts (0: now), retrying while
// blocked, up to timeout_ms. *rep owned on DTX_OK.
static TU_UNUSED dtx_err
tu_read_all(
    tu_fx *fx, uint32_t pid, clk_ts ts, proto_msg *rep, uint64_t timeout_ms)
{
	uint64_t end = dtx_mono_ns() + timeout_ms * 1000000u;
	for (;;) {
		proto_msg req;
		proto_msg_init(&req, PROTO_READ);
		req.u.read.ts = ts;
		dtx_err rv = tu_call(fx, pid, &req, rep, 3000);
		if (rv == DTX_OK && rep->hdr.type == PROTO_READ_REPLY &&
		    rep->u.read_reply.status == PROTO_READ_OK)
			return DTX_OK;
		if (rv == DTX_OK || rv == DTX_EREFUSED)
			proto_msg_free(rep);
		if (dtx_mono_ns() > end)
			return rv == DTX_OK ? DTX_EAGAIN : rv;
		dtx_sleep_ms(20);
	}
}

// The balance of acct, read now at its owner (retrying while blocked, up
// to timeout_ms), into *v: -1 when the owner has no such key. DTX_EPROTO
// when its value is not an int64.
static TU_UNUSED dtx_err
tu_balance(tu_fx *fx, int64_t acct, uint64_t timeout_ms, int64_t *v)
{
	proto_msg rep;
	char k[32];
	tu_key(k, sizeof(k), acct);
	dtx_err rv = tu_read_all(fx, tu_owner(fx, acct), 0, &rep, timeout_ms);
	if (rv != DTX_OK)
		return rv;
	int64_t got = -1;
	for (uint32_t i = 0; i < rep.u.read_reply.n_entries; i++) {
		const proto_entry *e = &rep.u.read_reply.entries[i];
		if (e->key.n == strlen(k) &&
		    memcmp(e->key.p, k, e->key.n) == 0 &&
		    !tu_entry_i64(e, &got))
			rv = DTX_EPROTO;
	}
	proto_msg_free(&rep);
	if (rv == DTX_OK)
		*v = got;
	return rv;
}

// Sums every "acct:" balance over all participants at one snapshot
// timestamp; *count gets the number of accounts.
static TU_UNUSED dtx_err
tu_total(tu_fx *fx, int64_t *total, size_t *count)
{
	proto_msg rep;
	clk_ts ts = 0;
	int64_t sum = 0;
	size_t n = 0;
	for (uint32_t pid = 1; pid <= fx->np; pid++) {
		dtx_err rv = tu_read_all(fx, pid, ts, &rep, 20000);
		if (rv != DTX_OK)
			return rv;
		if (ts == 0)
			ts = rep.u.read_reply.ts;
		for (uint32_t i = 0; i < rep.u.read_reply.n_entries; i++) {
			const proto_entry *e = &rep.u.read_reply.entries[i];
			int64_t v;
			if (e->key.n > 5 && memcmp(e->key.p, "acct:", 5) == 0 &&
			    tu_entry_i64(e, &v)) {
				sum += v;
				n++;
			}
		}
		proto_msg_free(&rep);
	}
	*total = sum;
	if (count != NULL)
		*count = n;
	return DTX_OK;
}

// tu_total for a test: the reads must work. Include after <cmocka.h>.
static TU_UNUSED int64_t
tu_sum(tu_fx *fx)
{
	int64_t total;
	assert_int_equal(tu_total(fx, &total, NULL), DTX_OK);
	return total;
}

// Sends a TXN and returns the call result; *rep owned on DTX_OK.
static TU_UNUSED dtx_err
tu_txn(tu_fx *fx, proto_client *cl, proto_mode mode, proto_op *ops, uint32_t n,
    proto_msg *rep, uint32_t timeout_ms)
{
	proto_msg req;
	proto_msg_init(&req, PROTO_TXN);
	req.u.txn.mode = mode;
	req.u.txn.n_ops = n;
	req.u.txn.ops = ops;
	proto_call_opts o;
	memset(&o, 0, sizeof(o));
	o.timeout_ms = timeout_ms;
	memset(rep, 0, sizeof(*rep));
	return proto_client_call(cl != NULL ? cl : fx->cli[0], &req, rep, &o);
}

// Creates accounts 0..n-1 with balance bal each, unless some exist.
static TU_UNUSED dtx_err
tu_init_accounts(tu_fx *fx, int64_t n, int64_t bal)
{
	int64_t total;
	size_t count;
	dtx_err rv = tu_total(fx, &total, &count);
	if (rv != DTX_OK || count > 0)
		return rv;
	char keys[PROTO_MAX_OPS][32];
	uint8_t vals[PROTO_MAX_OPS][8];
	proto_op ops[PROTO_MAX_OPS];
	for (int64_t a = 0; a < n;) {
		uint32_t k = 0;
		memset(ops, 0, sizeof(ops));
		for (; k < PROTO_MAX_OPS && a < n; k++, a++) {
			tu_key(keys[k], sizeof(keys[k]), a);
			tu_le64(vals[k], bal);
			ops[k].kind = PROTO_OP_PUT;
			ops[k].key.p = (uint8_t *)keys[k];
			ops[k].key.n = (uint32_t)strlen(keys[k]);
			ops[k].value.p = vals[k];
			ops[k].value.n = 8;
		}
		proto_msg rep;
		rv = tu_txn(fx, NULL, PROTO_MODE_2PC, ops, k, &rep, 10000);
		if (rv != DTX_OK)
			return rv;
		bool ok = rep.hdr.type == PROTO_TXN_REPLY &&
		    rep.u.txn_reply.outcome == PROTO_COMMITTED;
		if (!ok)
			fprintf(stderr, "init: %s\n",
			    rep.u.txn_reply.reason ? rep.u.txn_reply.reason
			                           : "(no reason)");
		proto_msg_free(&rep);
		if (!ok)
			return DTX_EIO;
	}
	return DTX_OK;
}

// A cmocka setup's body: starts a cluster of np participants with env
// (as tu_setup), creates nacct accounts of bal each and makes *state the
// fixture fx (borrowed; a static of the caller). On failure prints the
// daemons' logs, tears down and returns -1.
static TU_UNUSED int
tu_setup_bank(void **state, tu_fx *fx, uint32_t np, char *const *const *env,
    int64_t nacct, int64_t bal)
{
	if (tu_setup(fx, np, env) != DTX_OK ||
	    tu_init_accounts(fx, nacct, bal) != DTX_OK) {
		if (fx->cl != NULL)
			tu_dump_logs(fx);
		tu_teardown(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

// The cmocka teardown of a fixture set up by tu_setup_bank.
static TU_UNUSED int
tu_group_teardown(void **state)
{
	return tu_teardown(*state);
}

// The two ops of a transfer of amount from one account to another; kf
// and kt (32 bytes each) hold the keys the ops borrow.
static TU_UNUSED void
tu_transfer_ops(int64_t from, int64_t to, int64_t amount, char kf[32],
    char kt[32], proto_op ops[2])
{
	tu_key(kf, 32, from);
	tu_key(kt, 32, to);
	memset(ops, 0, 2 * sizeof(proto_op));
	ops[0] = (proto_op) { .kind = PROTO_OP_ADD,
		.key = { (uint8_t *)kf, (uint32_t)strlen(kf) },
		.delta = -amount };
	ops[1] = (proto_op) { .kind = PROTO_OP_ADD,
		.key = { (uint8_t *)kt, (uint32_t)strlen(kt) },
		.delta = amount };
}

// A transfer of amount from one account to another as one TXN.
static TU_UNUSED dtx_err
tu_transfer(tu_fx *fx, proto_client *cl, proto_mode mode, int64_t from,
    int64_t to, int64_t amount, proto_msg *rep, uint32_t timeout_ms)
{
	char kf[32], kt[32];
	proto_op ops[2];
	tu_transfer_ops(from, to, amount, kf, kt, ops);
	return tu_txn(fx, cl, mode, ops, 2, rep, timeout_ms);
}

// STATUS of txid at node id: the state, or PROTO_TS_UNKNOWN with an error.
static TU_UNUSED dtx_err
tu_status(tu_fx *fx, uint32_t id, uint64_t txid, proto_txn_state *st)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_STATUS);
	req.u.txid.txid = txid;
	dtx_err rv = tu_call(fx, id, &req, &rep, 3000);
	if (rv == DTX_OK && rep.hdr.type != PROTO_STATUS_REPLY)
		rv = DTX_EPROTO;
	if (rv == DTX_OK)
		*st = rep.u.status_reply.state;
	if (rv == DTX_OK || rv == DTX_EREFUSED || rv == DTX_EPROTO)
		proto_msg_free(&rep);
	return rv;
}

// HEALTH of node id: state (copied into st), in_doubt, and whether txid
// is in the blocked list.
static TU_UNUSED dtx_err
tu_health(tu_fx *fx, uint32_t id, char *st, size_t stlen, uint64_t *in_doubt,
    uint64_t txid, bool *blocked)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_HEALTH);
	dtx_err rv = tu_call(fx, id, &req, &rep, 3000);
	if (rv != DTX_OK)
		return rv;
	if (rep.hdr.type != PROTO_HEALTH_REPLY) {
		proto_msg_free(&rep);
		return DTX_EPROTO;
	}
	const proto_health_reply *h = &rep.u.health_reply;
	if (st != NULL)
		snprintf(st, stlen, "%s", h->state ? h->state : "");
	if (in_doubt != NULL)
		*in_doubt = h->in_doubt;
	if (blocked != NULL) {
		*blocked = false;
		for (uint32_t i = 0; i < h->n_blocked; i++)
			if (h->blocked[i] == txid)
				*blocked = true;
	}
	proto_msg_free(&rep);
	return DTX_OK;
}

// A HEALTH counter's value (-1 when absent or on error).
static TU_UNUSED int64_t
tu_counter(tu_fx *fx, uint32_t id, const char *name)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_HEALTH);
	if (tu_call(fx, id, &req, &rep, 3000) != DTX_OK)
		return -1;
	int64_t v = hx_health_counter(&rep, name);
	proto_msg_free(&rep);
	return v;
}

// Waits until every participant reports in_doubt 0 (and, when
// with_coord, the coordinator too). false on timeout.
static TU_UNUSED bool
tu_wait_resolved(tu_fx *fx, bool with_coord, uint64_t timeout_ms)
{
	uint64_t end = dtx_mono_ns() + timeout_ms * 1000000u;
	while (dtx_mono_ns() < end) {
		bool all = true;
		for (uint32_t id = with_coord ? 0 : 1; id <= fx->np && all;
		     id++) {
			uint64_t n = 1;
			if (tu_health(fx, id, NULL, 0, &n, 0, NULL) != DTX_OK ||
			    n != 0)
				all = false;
		}
		if (all)
			return true;
		dtx_sleep_ms(50);
	}
	return false;
}

// Sends a FAULT to node id. DTX_OK when it was ACKed.
static TU_UNUSED dtx_err
tu_fault(tu_fx *fx, uint32_t id, const char *kind, const char *s,
    const int64_t *args, uint32_t nargs)
{
	proto_msg req, rep;
	dtx_err rv = proto_fault_init(&req, kind, args, nargs, s);
	if (rv != DTX_OK)
		return rv;
	rv = tu_call(fx, id, &req, &rep, 3000);
	if (rv == DTX_OK || rv == DTX_EREFUSED) {
		if (rv == DTX_OK && rep.hdr.type != PROTO_ACK)
			rv = DTX_EPROTO;
		proto_msg_free(&rep);
	}
	return rv;
}

// Makes the next fsync of node id's log fail (FAULT wal_sync 1), once the
// records it appended unforced (END, ABORT) have had time to be written
// by its WAL's flusher (grace 5 ms): the failing fsync is then the next
// forced one's, not the flusher's.
static TU_UNUSED dtx_err
tu_fail_next_sync(tu_fx *fx, uint32_t id)
{
	dtx_sleep_ms(200);
	int64_t one = 1;
	return tu_fault(fx, id, "wal_sync", NULL, &one, 1);
}

// Transfers 3 from a to b in 2PC with the coordinator's next WAL sync
// failing: its COMMIT record is not known to be durable, so the client
// hears UNKNOWN. Returns the transaction's id. The coordinator's periodic
// checkpoint syncs through the same hook and may take the failure first
// (a failed checkpoint leaves the log working): the transfer then commits
// durably, and the failure is armed again for another one. Include after
// <cmocka.h>.
static TU_UNUSED uint64_t
tu_transfer_unforced(tu_fx *fx, int64_t a, int64_t b)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		assert_int_equal(tu_fail_next_sync(fx, 0), DTX_OK);
		proto_msg rep;
		assert_int_equal(
		    tu_transfer(fx, NULL, PROTO_MODE_2PC, a, b, 3, &rep, 5000),
		    DTX_OK);
		proto_outcome out = rep.u.txn_reply.outcome;
		uint64_t txid = rep.u.txn_reply.txid;
		proto_msg_free(&rep);
		assert_true(txid != 0);
		if (out == PROTO_UNKNOWN)
			return txid;
		assert_int_equal(out, PROTO_COMMITTED);
		print_message("the armed fsync failure went to a checkpoint; "
		              "transfer %llu committed, trying again\n",
		    (unsigned long long)txid);
	}
	fail_msg("no transfer met the armed fsync failure in 5 attempts");
	return 0;
}

// Arms crash point name at node id (for its next hit).
static TU_UNUSED dtx_err
tu_arm(tu_fx *fx, uint32_t id, const char *name)
{
	int64_t one = 1;
	return tu_fault(fx, id, "crash_at", name, &one, 1);
}

// The txid of the last TXN_START line in the coordinator's log (the
// coordinator runs with DTX_LOG_LEVEL=debug), or 0.
static TU_UNUSED uint64_t
tu_last_txid(tu_fx *fx)
{
	FILE *f = fopen(hx_cluster_log(fx->cl, 0), "r");
	char line[1024];
	uint64_t txid = 0;
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *p = strstr(line, " msg=TXN_START txid=");
		unsigned long long v;
		if (p != NULL && sscanf(p, " msg=TXN_START txid=%llu", &v) == 1)
			txid = v;
	}
	fclose(f);
	return txid;
}

// Arms point at the coordinator and runs a 2PC transfer of 5 from
// account a to account b through it, its reply (if any) dropped: the
// crash point is expected to kill the coordinator on the way.
static TU_UNUSED void
tu_transfer_armed(tu_fx *fx, const char *point, int64_t a, int64_t b)
{
	assert_int_equal(tu_arm(fx, 0, point), DTX_OK);
	proto_msg rep;
	if (tu_transfer(fx, NULL, PROTO_MODE_2PC, a, b, 5, &rep, 3000) ==
	    DTX_OK)
		proto_msg_free(&rep);
}

// Waits (20 s) for daemon victim to be killed by the crash point armed
// in it, asserts SIGKILL, and returns the txid of the transaction it was
// running: the coordinator log's last one, asserted new since before
// (tu_last_txid's answer before it started).
static TU_UNUSED uint64_t
tu_crashed_txid(tu_fx *fx, uint32_t victim, uint64_t before)
{
	int status = 0;
	assert_int_equal(
	    hx_cluster_wait_exit(fx->cl, victim, 20000, &status), DTX_OK);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	uint64_t txid = tu_last_txid(fx);
	assert_true(txid != 0 && txid != before);
	return txid;
}

// Waits (bounded) until node id answers PING.
static TU_UNUSED dtx_err
tu_await_pong(tu_fx *fx, uint32_t id)
{
	uint64_t end = dtx_mono_ns() + 20000000000u;
	for (;;) {
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_PING);
		dtx_err rv = tu_call(fx, id, &req, &rep, 2000);
		if (rv == DTX_OK || rv == DTX_EREFUSED)
			proto_msg_free(&rep);
		if (rv == DTX_OK)
			return DTX_OK;
		if (dtx_mono_ns() > end)
			return rv;
		dtx_sleep_ms(10);
	}
}

// Number of times node id's log says it started serving (the runtime's
// LISTEN line, written once its server is fully set up).
static TU_UNUSED int
tu_serving_count(tu_fx *fx, uint32_t id)
{
	FILE *f = fopen(hx_cluster_log(fx->cl, id), "r");
	char line[1024];
	int n = 0;
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, " msg=LISTEN ") != NULL &&
		    strstr(line, " serving on ") != NULL)
			n++;
	fclose(f);
	return n;
}

// Waits (bounded) until node id answers PING and its log shows more than
// `before` LISTEN lines: accepting connections is not serving yet, and a
// HEALTH request that races the runtime's start-up can crash it (see
// proto/daemon.c serve_health, which reads the server before it is set).
static TU_UNUSED dtx_err
tu_await_serving(tu_fx *fx, uint32_t id, int before)
{
	uint64_t end = dtx_mono_ns() + 20000000000u;
	while (tu_serving_count(fx, id) <= before) {
		if (dtx_mono_ns() > end)
			return DTX_ETIMEDOUT;
		dtx_sleep_ms(10);
	}
	return tu_await_pong(fx, id);
}

// Restarts node id (after it died) with its environment.
static TU_UNUSED dtx_err
tu_restart(tu_fx *fx, uint32_t id)
{
	int before = tu_serving_count(fx, id);
	dtx_err rv = hx_cluster_start(fx->cl, id, fx->env[id]);
	if (rv == DTX_OK)
		rv = hx_cluster_wait_ready(fx->cl, id, 20000);
	if (rv == DTX_OK)
		rv = tu_await_serving(fx, id, before);
	return rv;
}

// Atomicity over the participants: 1 when every one reports COMMITTED,
// 0 when none does (aborted, never voted or unknown), -1 for a split or
// when a participant cannot be asked.
static TU_UNUSED int
tu_outcome(tu_fx *fx, uint64_t txid, const uint32_t *ids, uint32_t n)
{
	int committed = 0, other = 0;
	for (uint32_t i = 0; i < n; i++) {
		proto_txn_state st;
		if (tu_status(fx, ids[i], txid, &st) != DTX_OK)
			return -1;
		if (st == PROTO_TS_COMMITTED)
			committed++;
		else if (st == PROTO_TS_ABORTED || st == PROTO_TS_NEVER_VOTED ||
		    st == PROTO_TS_UNKNOWN)
			other++;
		else
			return -1; // still in doubt
	}
	if (committed == (int)n)
		return 1;
	if (other == (int)n)
		return 0;
	return -1;
}

// Asserts that node id reports txid in state want. Include after
// <cmocka.h>.
static TU_UNUSED void
tu_expect_status(tu_fx *fx, uint32_t id, uint64_t txid, proto_txn_state want)
{
	proto_txn_state st;
	assert_int_equal(tu_status(fx, id, txid, &st), DTX_OK);
	assert_int_equal(st, want);
}

// Waits up to timeout_ms for nothing to be in doubt (as tu_wait_resolved);
// on a timeout prints the daemons' logs and fails with the message fmt.
// Include after <cmocka.h>.
static TU_UNUSED __attribute__((format(printf, 4, 5))) void
tu_settle(tu_fx *fx, bool with_coord, uint64_t timeout_ms, const char *fmt, ...)
{
	if (tu_wait_resolved(fx, with_coord, timeout_ms))
		return;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tu_dump_logs(fx);
	fail_msg("%s", msg);
}

// Asserts tu_outcome(txid over ids) == want, printing the daemons' logs
// first when it is not. Include after <cmocka.h>.
static TU_UNUSED void
tu_expect_outcome(
    tu_fx *fx, uint64_t txid, const uint32_t *ids, uint32_t n, int want)
{
	int got = tu_outcome(fx, txid, ids, n);
	if (got != want)
		tu_dump_logs(fx);
	assert_int_equal(got, want);
}

// A balance that must be readable within timeout_ms. Include after
// <cmocka.h>.
static TU_UNUSED int64_t
tu_must_balance(tu_fx *fx, int64_t acct, uint64_t timeout_ms)
{
	int64_t v;
	assert_int_equal(tu_balance(fx, acct, timeout_ms, &v), DTX_OK);
	return v;
}

// The two accounts of a transfer, a the n-th of participant 1 and b the
// n-th of participant 2, with their balances ba and bb before it.
typedef struct tu_pair {
	int64_t a, b;
	int64_t ba, bb;
} tu_pair;

// Pair n and its balances now (each read within timeout_ms). Include
// after <cmocka.h>.
static TU_UNUSED tu_pair
tu_pair_of(tu_fx *fx, int n, uint64_t timeout_ms)
{
	tu_pair p = { .a = tu_acct_on(fx, 1, n), .b = tu_acct_on(fx, 2, n) };
	p.ba = tu_must_balance(fx, p.a, timeout_ms);
	p.bb = tu_must_balance(fx, p.b, timeout_ms);
	return p;
}

// Asserts that exactly amount moved from p's a to its b since
// tu_pair_of (balances read within timeout_ms). Include after <cmocka.h>.
static TU_UNUSED void
tu_pair_moved(tu_fx *fx, const tu_pair *p, int64_t amount, uint64_t timeout_ms)
{
	assert_int_equal(tu_must_balance(fx, p->a, timeout_ms), p->ba - amount);
	assert_int_equal(tu_must_balance(fx, p->b, timeout_ms), p->bb + amount);
}

#endif // TEST_2PC_UTIL_H
