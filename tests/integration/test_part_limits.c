// SPDX-License-Identifier: MIT
//
// The connection cap of a real dtx-participant started with a file
// descriptor limit of 160 (ulimit -n in a wrapper script, hard and soft):
// --max-conns (512) is lowered so that 96 descriptors stay free, and the
// log says so; 100 idle connections are held to the cap, the rest closed
// (a refused client redials within 10 ms, so each one over the cap may
// hold a descriptor while it is refused: 64 + 36 fit in the 96 kept free)
// and counted; with the cap full, commits still go through (the WAL and
// the clock bound get their descriptors, nothing runs out of them); once
// the idle connections close, new ones are served. And a spray of
// COMMITs for unknown txids leaves the log bounded.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "test_part_harness.h"

#define P1 1u
#define FD_LIMIT 160
#define CAP (FD_LIMIT - 96) // the daemon keeps 64 + DTX_TOPO_MAX free
#define IDLE 100

static char wrap_dir[64];

// A dtx-participant that runs the real one under ulimit -n FD_LIMIT.
static int
make_wrapper(void)
{
	const char *root = getenv("DTX_BUILD_ROOT");
	snprintf(wrap_dir, sizeof(wrap_dir), "/tmp/dtx-wrap-XXXXXX");
	if (mkdtemp(wrap_dir) == NULL)
		return -1;
	char path[128];
	snprintf(path, sizeof(path), "%s/dtx-participant", wrap_dir);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fprintf(f,
	    "#!/bin/sh\nulimit -n %d || exit 111\n"
	    "exec '%s/participant/dtx-participant' \"$@\"\n",
	    FD_LIMIT, root != NULL ? root : "build");
	fclose(f);
	if (chmod(path, 0755) != 0)
		return -1;
	setenv("DTX_BIN_DIR", wrap_dir, 1);
	return 0;
}

static int
setup(void **state)
{
	if (make_wrapper() != 0)
		return -1;
	return h_setup(state, 1, 1, NULL);
}

static int
teardown(void **state)
{
	h_teardown(state);
	(void)dtx_rmtree(wrap_dir);
	return 0;
}

// Opens a client of participant 1 without waiting for its connection.
static proto_client *
idle_client(harness *h)
{
	proto_client_cfg cc = { .url = h_url(h, P1),
		.vc_nodes = hx_cluster_topo(h->c)->max_id,
		.node_id = h->client_id,
		.timeout_ms = 1000 };
	proto_client *c = NULL;
	assert_int_equal(proto_client_open(&cc, &c), DTX_OK);
	return c;
}

static void
test_cap_keeps_descriptors(void **state)
{
	harness *h = *state;
	// The cap in force, and why.
	assert_int_equal(h_health_counter(h, P1, "max_conns"), CAP);
	assert_int_equal(h_log_count(h, P1, "--max-conns 512 lowered to"), 1);

	proto_client *idle[IDLE];
	for (int i = 0; i < IDLE; i++)
		idle[i] = idle_client(h);
	// Held to the cap; the rest closed and counted (they redial, so
	// the count keeps growing).
	int64_t conns = 0, refused = 0;
	uint64_t end = dtx_mono_ns() + 20000000000ull;
	while (dtx_mono_ns() < end) {
		conns = h_health_counter(h, P1, "conns");
		refused = h_health_counter(h, P1, "conns_refused");
		if (refused >= IDLE - CAP)
			break;
		dtx_sleep_ms(50);
	}
	printf("%d idle clients: %lld connections, %lld refused\n", IDLE,
	    (long long)conns, (long long)refused);
	assert_true(conns <= CAP);
	assert_true(refused >= IDLE - CAP);

	// With the cap full, commits need descriptors for the WAL and the
	// clock bound (written once a second): they have them.
	for (int i = 0; i < 6; i++) {
		char key[32];
		snprintf(key, sizeof(key), "acct:%d", i);
		assert_true(h_put(h, P1, 7000 + (uint64_t)i, key, 10 + i));
		dtx_sleep_ms(300);
	}
	for (int i = 0; i < 6; i++) {
		char key[32];
		snprintf(key, sizeof(key), "acct:%d", i);
		h_expect(h, P1, 0, key, 10 + i);
	}
	// Eventually ok (a loaded machine can take seconds to settle the
	// last commit); "failed" would stay.
	assert_true(h_await_state(h, P1, "ok", 10000));
	assert_int_equal(h_log_count(h, P1, "Too many open files"), 0);
	assert_int_equal(h_log_count(h, P1, "EMFILE"), 0);
	// A descriptor the clock bound could not get shows as its write
	// failing (the error text says I/O error, not EMFILE).
	assert_int_equal(h_log_count(h, P1, "CLK_BOUND_WRITE"), 0);

	// The idle ones gone, a new client is served.
	for (int i = 0; i < IDLE; i++)
		proto_client_close(idle[i]);
	proto_client_cfg cc = { .url = h_url(h, P1),
		.vc_nodes = hx_cluster_topo(h->c)->max_id,
		.node_id = h->client_id,
		.timeout_ms = 2000,
		.connect_wait_ms = 5000 };
	proto_client *c = NULL;
	assert_int_equal(proto_client_open(&cc, &c), DTX_OK);
	proto_retry r = { .attempts = 20, .base_ms = 100, .cap_ms = 500 };
	proto_call_opts o = { .retry = &r };
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_PING);
	assert_int_equal(proto_client_call(c, &req, &rep, &o), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_PONG);
	proto_msg_free(&rep);
	proto_client_close(c);
	// The daemon learns of each close when its side reads the end of
	// the stream, in its own time: the count drops soon, not at once.
	int64_t left = 0;
	end = dtx_mono_ns() + 5000000000ull;
	while ((left = h_health_counter(h, P1, "conns")) > 3 &&
	    dtx_mono_ns() < end)
		dtx_sleep_ms(50);
	assert_true(left <= 3);
}

// Sends n COMMITs for txids nobody prepared through c; returns how many
// got an ACK (the rest an ERROR).
static int
spray(proto_client *c, uint64_t base, int n)
{
	int acked = 0;
	for (int i = 0; i < n; i++) {
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_COMMIT);
		req.u.txid.txid = base + (uint64_t)i;
		req.u.txid.commit_ts = clk_ts_make(dtx_wall_ns() / 1000000u, 0);
		dtx_err rv = proto_client_call(c, &req, &rep, NULL);
		assert_true(rv == DTX_OK || rv == DTX_EREFUSED);
		acked += rep.hdr.type == PROTO_ACK;
		proto_msg_free(&rep);
	}
	return acked;
}

// COMMITs for unknown txids, sprayed: from the coordinator each is
// ACKed (the outcome of a transaction collected long ago) and counted,
// from a client each is refused and counted; either way the log gets at
// most a line a second per sender and reason, each saying how many it
// stands for, not a line per message.
static void
test_unknown_commits_log_bounded(void **state)
{
	harness *h = *state;
	const int n = 2000;
	uint64_t t0 = dtx_mono_ns();
	proto_client *coord = h_client(h, P1);
	assert_non_null(coord);
	assert_int_equal(spray(coord, 900000, n), n);
	proto_client *cl = idle_client(h);
	assert_int_equal(spray(cl, 950000, n), 0);
	proto_client_close(cl);
	uint64_t secs = (dtx_mono_ns() - t0) / 1000000000u + 1;
	int unknown = h_log_count(h, P1, "COMMIT_UNKNOWN");
	int refused = h_log_count(h, P1, "REFUSED");
	printf("%d + %d COMMITs in %llu s: %d COMMIT_UNKNOWN and %d REFUSED "
	       "lines\n",
	    n, n, (unsigned long long)secs, unknown, refused);
	assert_true(unknown >= 1 && (uint64_t)unknown <= secs + 1);
	assert_true(refused >= 1 && (uint64_t)refused <= secs + 1);
	assert_int_equal(h_health_counter(h, P1, "commit_unknown"), n);
	assert_true(h_health_counter(h, P1, "refused_role") >= n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_cap_keeps_descriptors, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_unknown_commits_log_bounded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
