// SPDX-License-Identifier: MIT
//
// Helpers shared by the dtx-participant integration tests: a cluster of
// real dtx-participant processes in a temp dir, a client per node, and
// builders for the messages a coordinator would send.

#ifndef TEST_PART_HARNESS_H
#define TEST_PART_HARNESS_H

#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "proto.h"

// Every helper is static; a test file need not use them all.
#define H_FN static __attribute__((unused))

typedef struct harness {
	char dir[64];
	hx_cluster *c;
	// The harness speaks as coordinator 0, which its PREPAREs name
	// (cl), sends FAULTs as the topology's client (fcl) and saga STEPs
	// as a node outside the topology (scl), which --insecure lets send
	// anything: the daemons check each role against the topology.
	proto_client *cl[DTX_TOPO_MAX];
	proto_client *fcl[DTX_TOPO_MAX];
	proto_client *scl[DTX_TOPO_MAX];
	uint32_t client_id;
} harness;

H_FN int
h_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

// Points hx_cluster at the daemons of this build tree.
H_FN void
h_env(void)
{
	const char *root = getenv("DTX_BUILD_ROOT");
	if (root != NULL && getenv("DTX_BIN_DIR") == NULL) {
		char bin[4096];
		snprintf(bin, sizeof(bin), "%s/participant", root);
		setenv("DTX_BIN_DIR", bin, 1);
	}
	// Plaintext links on this host (the daemons' --insecure) and the
	// FAULT requests these tests send (--enable-faults).
	setenv("DTX_INSECURE", "1", 1);
	setenv("DTX_ENABLE_FAULTS", "1", 1);
	// Quick in-doubt resolution so the tests stay short.
	setenv("DTX_INDOUBT_TIMEOUT_MS", "300", 0);
	setenv("DTX_BLOCKED_MS", "1000", 0);
	setenv("DTX_RESOLVE_TIMEOUT_MS", "300", 0);
	setenv("DTX_RESOLVE_BACKOFF_MAX_MS", "400", 0);
	setenv("DTX_INDOUBT_LOG_MS", "1000", 0);
	setenv("DTX_LOG_LEVEL", "debug", 0);
}

H_FN harness *
h_new(uint32_t nparts)
{
	harness *h = calloc(1, sizeof(*h));
	char err[256];
	if (h == NULL)
		return NULL;
	h_env();
	snprintf(h->dir, sizeof(h->dir), "/tmp/dtx-part-XXXXXX");
	if (mkdtemp(h->dir) == NULL) {
		free(h);
		return NULL;
	}
	hx_cluster_opts o = {
		.dir = h->dir, .participants = nparts, .insecure = true
	};
	if (hx_cluster_create(&o, &h->c, err, sizeof(err)) != DTX_OK) {
		fprintf(stderr, "cluster: %s\n", err);
		rmdir(h->dir);
		free(h);
		return NULL;
	}
	const dtx_topo *t = hx_cluster_topo(h->c);
	for (uint32_t i = 0; i < t->n; i++)
		if (t->nodes[i].role == DTX_ROLE_CLIENT)
			h->client_id = t->nodes[i].id;
	return h;
}

H_FN void
h_free(harness *h)
{
	if (h == NULL)
		return;
	for (int i = 0; i < DTX_TOPO_MAX; i++) {
		proto_client_close(h->cl[i]);
		proto_client_close(h->fcl[i]);
		proto_client_close(h->scl[i]);
	}
	hx_cluster_stop_all(h->c, 2000);
	if (getenv("DTX_KEEP_TEST_DIR") == NULL)
		nftw(h->dir, h_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	hx_cluster_free(h->c);
	free(h);
}

// A cmocka setup's body: a cluster of nparts participants of which
// 1..nstart are started with env (as h_start); *state the harness.
// Returns -1 when anything fails (the harness is freed).
H_FN int h_setup(
    void **state, uint32_t nparts, uint32_t nstart, char *const env[]);

// The cmocka teardown of a harness made by h_setup.
H_FN int
h_teardown(void **state)
{
	h_free(*state);
	return 0;
}

H_FN const char *
h_url(harness *h, uint32_t id)
{
	return dtx_topo_find(hx_cluster_topo(h->c), id)->url;
}

// Lines of node id's log that contain what.
H_FN int
h_log_count(harness *h, uint32_t id, const char *what)
{
	char line[4096];
	int n = 0;
	FILE *f = fopen(hx_cluster_log(h->c, id), "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, what) != NULL;
	fclose(f);
	return n;
}

// Starts node id with extra environment (NULL-terminated, may be NULL)
// and waits until it accepts connections and has logged that it serves
// (the runtime finishes setting up its server only then).
H_FN dtx_err
h_start(harness *h, uint32_t id, char *const env[])
{
	int before = h_log_count(h, id, "serving on");
	dtx_err rv = hx_cluster_start(h->c, id, env);
	if (rv == DTX_OK)
		rv = hx_cluster_wait_ready(h->c, id, 20000);
	uint64_t end = dtx_mono_ns() + 20000000000ull;
	while (rv == DTX_OK && h_log_count(h, id, "serving on") == before) {
		if (dtx_mono_ns() > end)
			rv = DTX_ETIMEDOUT;
		dtx_sleep_ms(10);
	}
	return rv;
}

H_FN int
h_setup(void **state, uint32_t nparts, uint32_t nstart, char *const env[])
{
	harness *h = h_new(nparts);
	if (h == NULL)
		return -1;
	for (uint32_t id = 1; id <= nstart; id++)
		if (h_start(h, id, env) != DTX_OK) {
			h_free(h);
			return -1;
		}
	*state = h;
	return 0;
}

// Who the harness speaks as for a request of type t (a BATCH's first
// element decides for it): 0 the coordinator, 1 the client, 2 outside.
H_FN int
h_speaker(const proto_msg *req)
{
	const proto_msg *m = req;
	if (m->hdr.type == PROTO_BATCH && m->u.batch.n > 0)
		m = &m->u.batch.msgs[0];
	if (m->hdr.type == PROTO_FAULT)
		return 1;
	if (m->hdr.type == PROTO_STEP || m->hdr.type == PROTO_SAGA_FORGET)
		return 2;
	return 0;
}

H_FN proto_client *
h_client_as(harness *h, uint32_t id, int who)
{
	proto_client **cl = who == 1 ? &h->fcl[id]
	    : who == 2               ? &h->scl[id]
	                             : &h->cl[id];
	uint32_t max = hx_cluster_topo(h->c)->max_id;
	if (*cl == NULL) {
		proto_client_cfg cc = { .url = h_url(h, id),
			.vc_nodes = max,
			.node_id = who == 1 ? h->client_id
			    : who == 2      ? max
			                    : 0,
			.timeout_ms = 5000,
			.connect_wait_ms = 2000,
			.seed = 42 };
		if (proto_client_open(&cc, cl) != DTX_OK)
			return NULL;
	}
	return *cl;
}

H_FN proto_client *
h_client(harness *h, uint32_t id)
{
	return h_client_as(h, id, 0);
}

// One call to node id; timeout_ms 0: the default (5 s).
H_FN dtx_err
h_call_t(harness *h, uint32_t id, proto_msg *req, proto_msg *rep,
    uint32_t timeout_ms)
{
	proto_retry r = { .attempts = 5, .base_ms = 50, .cap_ms = 500 };
	proto_call_opts o = { .timeout_ms = timeout_ms, .retry = &r };
	proto_client *c = h_client_as(h, id, h_speaker(req));
	if (c == NULL)
		return DTX_ENOMEM;
	return proto_client_call(c, req, rep, &o);
}

H_FN dtx_err
h_call(harness *h, uint32_t id, proto_msg *req, proto_msg *rep)
{
	return h_call_t(h, id, req, rep, 0);
}

H_FN proto_op
op_add(const char *key, int64_t delta, int64_t min)
{
	proto_op o = { .kind = PROTO_OP_ADD,
		.key = { (uint8_t *)(uintptr_t)key, (uint32_t)strlen(key) },
		.delta = delta,
		.min = min };
	return o;
}

// A PUT of an int64 (8 bytes, little-endian). buf must outlive the op.
H_FN proto_op
op_put(const char *key, int64_t v, uint8_t buf[8])
{
	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t)((uint64_t)v >> (8 * i));
	proto_op o = { .kind = PROTO_OP_PUT,
		.key = { (uint8_t *)(uintptr_t)key, (uint32_t)strlen(key) },
		.value = { buf, 8 } };
	return o;
}

// Sends PREPARE (CAN_COMMIT when mode is 3PC) and returns the reply
// (owned: free with proto_msg_free).
H_FN dtx_err
h_prepare(harness *h, uint32_t id, uint64_t txid, proto_mode mode,
    const uint32_t *peers, uint32_t npeers, proto_op *ops, uint32_t nops,
    proto_msg *rep)
{
	proto_msg req;
	proto_msg_init(
	    &req, mode == PROTO_MODE_3PC ? PROTO_CAN_COMMIT : PROTO_PREPARE);
	req.u.prepare = (proto_prepare) { .txid = txid,
		.mode = mode,
		.coord = 0,
		.n_peers = npeers,
		.peers = (uint32_t *)(uintptr_t)peers,
		.n_ops = nops,
		.ops = ops };
	return h_call(h, id, &req, rep);
}

// PREPARE that must get a YES: returns the prepare ts, 0 on failure.
H_FN clk_ts
h_prepare_yes(harness *h, uint32_t id, uint64_t txid, proto_mode mode,
    const uint32_t *peers, uint32_t npeers, proto_op *ops, uint32_t nops)
{
	proto_msg rep;
	if (h_prepare(h, id, txid, mode, peers, npeers, ops, nops, &rep) !=
	    DTX_OK)
		return 0;
	clk_ts ts = 0;
	if (rep.hdr.type == PROTO_VOTE && rep.u.vote.yes &&
	    rep.u.vote.txid == txid)
		ts = rep.u.vote.prepare_ts;
	else
		fprintf(stderr, "expected YES for tx %llu: %s %s\n",
		    (unsigned long long)txid, proto_type_name(rep.hdr.type),
		    rep.hdr.type == PROTO_VOTE && rep.u.vote.reason
		        ? rep.u.vote.reason
		        : "");
	proto_msg_free(&rep);
	return ts;
}

// A 2PC PREPARE of one op, with no peers, that must get a YES: returns
// the prepare ts.
H_FN clk_ts
h_prepare1(harness *h, uint32_t id, uint64_t txid, proto_op *op)
{
	clk_ts pts = h_prepare_yes(h, id, txid, PROTO_MODE_2PC, NULL, 0, op, 1);
	assert_true(pts != 0);
	return pts;
}

// Sends a txid message (COMMIT, ABORT, PRE_COMMIT, DO_COMMIT, STATUS);
// returns the reply type (PROTO_NONE when the call failed). *out (may be
// NULL) gets the reply, owned.
H_FN proto_type
h_txid(harness *h, uint32_t id, proto_type type, uint64_t txid, clk_ts cts,
    proto_msg *out)
{
	proto_msg req, rep;
	proto_msg_init(&req, type);
	req.u.txid.txid = txid;
	req.u.txid.commit_ts = cts;
	dtx_err rv = h_call(h, id, &req, &rep);
	if (rv != DTX_OK && rv != DTX_EREFUSED)
		return PROTO_NONE;
	proto_type t = rep.hdr.type;
	if (out != NULL)
		*out = rep;
	else
		proto_msg_free(&rep);
	return t;
}

// Prepares the one op as h_prepare1 does and commits txid at its
// prepare ts, which must be acknowledged.
H_FN void
h_commit1(harness *h, uint32_t id, uint64_t txid, proto_op *op)
{
	clk_ts pts = h_prepare1(h, id, txid, op);
	assert_int_equal(
	    h_txid(h, id, PROTO_COMMIT, txid, pts, NULL), PROTO_ACK);
}

// STATUS of txid at node id (PROTO_TS_UNKNOWN + 100 on failure); *cts
// (may be NULL) gets the commit ts.
H_FN int
h_status(harness *h, uint32_t id, uint64_t txid, clk_ts *cts)
{
	proto_msg rep;
	proto_msg_init(&rep, PROTO_NONE);
	if (h_txid(h, id, PROTO_STATUS, txid, 0, &rep) != PROTO_STATUS_REPLY) {
		proto_msg_free(&rep);
		return 100;
	}
	int st = (int)rep.u.status_reply.state;
	if (cts != NULL)
		*cts = rep.u.status_reply.commit_ts;
	proto_msg_free(&rep);
	return st;
}

// Asserts that txid is committed at node id, at commit ts cts.
H_FN void
h_expect_committed(harness *h, uint32_t id, uint64_t txid, clk_ts cts)
{
	clk_ts got = 0;
	assert_int_equal(h_status(h, id, txid, &got), PROTO_TS_COMMITTED);
	if (got != cts)
		fail_msg("tx %llu at node %u committed at %llx, not %llx",
		    (unsigned long long)txid, id, (unsigned long long)got,
		    (unsigned long long)cts);
}

// Waits up to ms for STATUS of txid at id to become want.
H_FN bool
h_await_status(harness *h, uint32_t id, uint64_t txid, int want, uint64_t ms)
{
	uint64_t end = dtx_mono_ns() + ms * 1000000ull;
	do {
		if (h_status(h, id, txid, NULL) == want)
			return true;
		dtx_sleep_ms(50);
	} while (dtx_mono_ns() < end);
	return false;
}

// Snapshot read of one key at T (0: now). Returns the reply, owned.
H_FN dtx_err
h_read(harness *h, uint32_t id, clk_ts T, const char *key, proto_msg *rep)
{
	proto_bytes k = { (uint8_t *)(uintptr_t)key,
		key ? (uint32_t)strlen(key) : 0 };
	proto_msg req;
	proto_msg_init(&req, PROTO_READ);
	req.u.read = (proto_read) {
		.ts = T, .n_keys = key ? 1 : 0, .keys = key ? &k : NULL
	};
	return h_call(h, id, &req, rep);
}

// Reads key's int64 at T; false when not found or blocked.
H_FN bool
h_get(harness *h, uint32_t id, clk_ts T, const char *key, int64_t *v)
{
	proto_msg rep;
	dtx_err rv = h_read(h, id, T, key, &rep);
	if (rv == DTX_EREFUSED) {
		fprintf(stderr, "read refused: %s\n",
		    rep.u.error.reason ? rep.u.error.reason : "");
		proto_msg_free(&rep);
	}
	if (rv != DTX_OK)
		return false;
	bool ok = rep.hdr.type == PROTO_READ_REPLY &&
	    rep.u.read_reply.status == PROTO_READ_OK &&
	    rep.u.read_reply.n_entries == 1 &&
	    rep.u.read_reply.entries[0].found &&
	    !rep.u.read_reply.entries[0].is_bytes;
	if (ok)
		*v = rep.u.read_reply.entries[0].ival;
	proto_msg_free(&rep);
	return ok;
}

// Sets key to v on node id with a committed one-op transaction.
H_FN bool
h_put(harness *h, uint32_t id, uint64_t txid, const char *key, int64_t v)
{
	uint8_t buf[8];
	proto_op op = op_put(key, v, buf);
	clk_ts pts =
	    h_prepare_yes(h, id, txid, PROTO_MODE_2PC, NULL, 0, &op, 1);
	return pts != 0 &&
	    h_txid(h, id, PROTO_COMMIT, txid, pts, NULL) == PROTO_ACK;
}

// Asserts that node id votes NO on a 2PC PREPARE of txid with the nops
// ops, for a reason containing why.
H_FN void
h_vote_no(harness *h, uint32_t id, uint64_t txid, proto_op *ops, uint32_t nops,
    const char *why)
{
	proto_msg rep;
	assert_int_equal(
	    h_prepare(h, id, txid, PROTO_MODE_2PC, NULL, 0, ops, nops, &rep),
	    DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_VOTE);
	assert_false(rep.u.vote.yes);
	assert_int_equal(rep.u.vote.txid, txid);
	assert_non_null(rep.u.vote.reason);
	if (strstr(rep.u.vote.reason, why) == NULL)
		fail_msg("reason '%s' lacks '%s'", rep.u.vote.reason, why);
	proto_msg_free(&rep);
}

// Asserts that key reads as want at node id at T (0: now).
H_FN void
h_expect(harness *h, uint32_t id, clk_ts T, const char *key, int64_t want)
{
	int64_t v = 0;
	assert_true(h_get(h, id, T, key, &v));
	assert_int_equal(v, want);
}

// HEALTH of node id (reply owned).
H_FN dtx_err
h_health(harness *h, uint32_t id, proto_msg *rep)
{
	proto_msg req;
	proto_msg_init(&req, PROTO_HEALTH);
	return h_call(h, id, &req, rep);
}

// Injects fault kind with one integer argument at node id; the call must
// get an answer, whose type this returns.
H_FN proto_type
h_fault(harness *h, uint32_t id, const char *kind, int64_t arg)
{
	proto_msg req, rep;
	assert_int_equal(proto_fault_init(&req, kind, &arg, 1, NULL), DTX_OK);
	assert_int_equal(h_call(h, id, &req, &rep), DTX_OK);
	proto_type t = rep.hdr.type;
	proto_msg_free(&rep);
	return t;
}

H_FN int64_t
h_counter(const proto_msg *rep, const char *name)
{
	return hx_health_counter(rep, name);
}

// The health counter name of node id; the HEALTH call must succeed.
H_FN int64_t
h_health_counter(harness *h, uint32_t id, const char *name)
{
	proto_msg hr;
	assert_int_equal(h_health(h, id, &hr), DTX_OK);
	int64_t v = h_counter(&hr, name);
	proto_msg_free(&hr);
	return v;
}

// Waits up to ms for HEALTH state st at node id.
H_FN bool
h_await_state(harness *h, uint32_t id, const char *st, uint64_t ms)
{
	uint64_t end = dtx_mono_ns() + ms * 1000000ull;
	do {
		proto_msg rep;
		if (h_health(h, id, &rep) == DTX_OK) {
			bool ok = rep.hdr.type == PROTO_HEALTH_REPLY &&
			    strcmp(rep.u.health_reply.state, st) == 0;
			proto_msg_free(&rep);
			if (ok)
				return true;
		}
		dtx_sleep_ms(50);
	} while (dtx_mono_ns() < end);
	return false;
}

// A timestamp ms milliseconds after ts.
H_FN clk_ts
ts_plus_ms(clk_ts ts, uint64_t ms)
{
	return clk_ts_make(clk_ts_l(ts) + ms, 0);
}

#endif // TEST_PART_HARNESS_H
