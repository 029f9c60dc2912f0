// SPDX-License-Identifier: MIT
//
// The daemons' /metrics page and HTTP listener in one process: the page
// built from counted requests and a HEALTH reply passes the exposition
// format checker (tests/prom_check.h) with the values in base units and
// the refusals under one reason label; the checker itself refuses each
// broken rule; the HTTP listener answers /metrics, /livez, /readyz (503
// with a reason), 404, 405 and malformed requests without dying, writes
// its bound address, and refuses a bad or busy address; a daemon runtime
// with --http is live at once, ready only from proto_daemon_wait on and
// while its state is "ok", and stops serving HTTP when the wait ends.

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../http_get.h"
#include "../prom_check.h"
#include "proto_int.h"

// A HEALTH reply like a participant's, with refusals and millisecond
// values.
static void
health_reply(proto_msg *m)
{
	proto_msg_init(m, PROTO_HEALTH_REPLY);
	proto_health_reply *h = &m->u.health_reply;
	h->node = 3;
	h->in_doubt = 2;
	proto_named_value c[] = {
		{ "uptime_ms", 1500 },
		{ "requests", 10 },
		{ "clock_offset_ms", -250 },
		{ "refused_role", 4 },
		{ "refused_prepare", 1 },
		{ "in_doubt", 2 },
		{ "blocked", 1 },
		{ "oldest_in_doubt_ms", 7250 },
		{ "wal_bytes", 4096 },
		{ "wal_syncs", 9 },
		{ "avg_batch_x100", 250 },
		{ "some_new_count", 5 },
		{ "Not A Name", 1 },
	};
	assert_int_equal(
	    proto_health_counters(h, c, sizeof(c) / sizeof(c[0])), DTX_OK);
}

static char *
render(proto__metrics *m, bool ready)
{
	proto_msg h;
	proto__buf b = { 0 };
	proto__gauges g = { .ready = ready, .hlc_offset_s = 0.012 };
	health_reply(&h);
	proto__metrics_render(m, &h.u.health_reply, &g, &b);
	proto_msg_free(&h);
	assert_false(b.oom);
	return b.p;
}

static void
expect_line(const char *text, const char *line)
{
	char want[256];
	snprintf(want, sizeof(want), "\n%s\n", line);
	if (strstr(text, want) == NULL) {
		fprintf(stderr, "missing line: %s\n%s", line, text);
		fail();
	}
}

static void
check_ok(const char *text)
{
	char err[256];
	if (!pc_check(text, err, sizeof(err))) {
		fprintf(stderr, "%s\n---\n%s", err, text);
		fail();
	}
}

static void
test_participant_page(void **state)
{
	(void)state;
	static proto__metrics m;
	memset(&m, 0, sizeof(m));
	m.role = DTX_ROLE_PARTICIPANT;
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_PREPARE);
	proto_msg_init(&rep, PROTO_VOTE);
	rep.u.vote.yes = true;
	proto__metrics_account(&m, &req, &rep, 3000000); // 3 ms
	// A BATCH answered whole: two CAN_COMMITs, one yes and one no.
	proto_msg rq[2], rp[2];
	proto_msg_init(&rq[0], PROTO_CAN_COMMIT);
	proto_msg_init(&rq[1], PROTO_CAN_COMMIT);
	proto_msg_init(&rp[0], PROTO_VOTE);
	proto_msg_init(&rp[1], PROTO_VOTE);
	rp[0].u.vote.yes = true;
	proto_msg_init(&req, PROTO_BATCH);
	proto_msg_init(&rep, PROTO_BATCH);
	req.u.batch.n = rep.u.batch.n = 2;
	req.u.batch.msgs = rq;
	rep.u.batch.msgs = rp;
	proto__metrics_account(&m, &req, &rep, 20000000000ULL); // 20 s
	proto_daemon *none = NULL;
	(void)none;
	atomic_store(&m.fsync_timed, true);
	proto__hist_observe(&m.fsync, 150000);

	char *text = render(&m, false);
	check_ok(text);
	expect_line(text, "dtx_node_info{role=\"participant\",node=\"3\"} 1");
	expect_line(text, "dtx_ready 0");
	expect_line(text, "dtx_in_doubt_transactions 2");
	expect_line(text, "dtx_hlc_offset_seconds 0.012");
	expect_line(text, "dtx_prepares_total{mode=\"2pc\"} 1");
	expect_line(text, "dtx_prepares_total{mode=\"3pc\"} 2");
	expect_line(text, "dtx_votes_total{mode=\"3pc\",vote=\"no\"} 1");
	expect_line(text, "dtx_votes_total{mode=\"3pc\",vote=\"yes\"} 1");
	expect_line(text, "dtx_refusals_total{reason=\"role\"} 4");
	expect_line(text, "dtx_refusals_total{reason=\"prepare\"} 1");
	expect_line(text, "dtx_uptime_seconds 1.500000");
	expect_line(text, "dtx_clock_fault_offset_seconds -0.250000");
	expect_line(text, "dtx_oldest_in_doubt_seconds 7.250000");
	expect_line(text, "dtx_blocked_transactions 1");
	expect_line(text, "dtx_wal_written_bytes_total 4096");
	expect_line(text, "dtx_wal_fsyncs_total 9");
	expect_line(text, "dtx_some_new_count_total 5");
	// 3 ms falls in le=0.005; 20 s only in +Inf.
	expect_line(text,
	    "dtx_request_duration_seconds_bucket{type=\"prepare\","
	    "le=\"0.0025\"} 0");
	expect_line(text,
	    "dtx_request_duration_seconds_bucket{type=\"prepare\","
	    "le=\"0.005\"} 1");
	expect_line(text,
	    "dtx_request_duration_seconds_bucket{type=\"can_commit\","
	    "le=\"10\"} 0");
	expect_line(text,
	    "dtx_request_duration_seconds_bucket{type=\"can_commit\","
	    "le=\"+Inf\"} 2");
	expect_line(
	    text, "dtx_request_duration_seconds_count{type=\"can_commit\"} 2");
	expect_line(text, "dtx_wal_fsync_duration_seconds_count 1");
	assert_null(strstr(text, "Not A Name"));
	assert_null(strstr(text, "avg_batch"));
	assert_null(strstr(text, "_ms"));
	free(text);
}

static void
test_coordinator_and_saga_pages(void **state)
{
	(void)state;
	static proto__metrics m;
	memset(&m, 0, sizeof(m));
	m.role = DTX_ROLE_COORDINATOR;
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_TXN);
	req.u.txn.mode = PROTO_MODE_3PC;
	proto_msg_init(&rep, PROTO_TXN_REPLY);
	rep.u.txn_reply.outcome = PROTO_ABORTED;
	proto__metrics_account(&m, &req, &rep, 40000000); // 40 ms
	// An ERROR reply counts as unknown.
	proto_msg_init(&rep, PROTO_ERROR);
	proto__metrics_account(&m, &req, &rep, 1000);
	char *text = render(&m, true);
	check_ok(text);
	expect_line(text, "dtx_ready 1");
	expect_line(
	    text, "dtx_transactions_total{mode=\"3pc\",outcome=\"aborted\"} 1");
	expect_line(
	    text, "dtx_transactions_total{mode=\"3pc\",outcome=\"unknown\"} 1");
	expect_line(text,
	    "dtx_transaction_duration_seconds_bucket{mode=\"3pc\","
	    "le=\"0.05\"} 2");
	expect_line(
	    text, "dtx_transaction_duration_seconds_count{mode=\"3pc\"} 2");
	assert_null(strstr(text, "dtx_votes_total"));
	free(text);

	memset(&m, 0, sizeof(m));
	m.role = DTX_ROLE_SAGA;
	proto_msg_init(&req, PROTO_SAGA_SUBMIT);
	proto_msg_init(&rep, PROTO_SAGA_REPLY);
	rep.u.saga_reply.outcome = PROTO_COMMITTED;
	proto__metrics_account(&m, &req, &rep, 1000);
	text = render(&m, true);
	check_ok(text);
	expect_line(text, "dtx_sagas_total{outcome=\"committed\"} 1");
	free(text);
}

// Each document breaks one rule; the checker must say so.
static void
test_checker_refuses_broken_pages(void **state)
{
	(void)state;
	static const char *const bad[] = {
		// no TYPE
		"# HELP dtx_a_total a\ndtx_a_total 1\n",
		// counter without _total
		"# HELP dtx_a a\n# TYPE dtx_a counter\ndtx_a 1\n",
		// gauge with _total
		"# HELP dtx_a_total a\n# TYPE dtx_a_total gauge\ndtx_a_total "
		"1\n",
		// no dtx_ prefix
		"# HELP a a\n# TYPE a gauge\na 1\n",
		// milliseconds
		"# HELP dtx_a_ms a\n# TYPE dtx_a_ms gauge\ndtx_a_ms 1\n",
		// no HELP
		"# TYPE dtx_a gauge\ndtx_a 1\n",
		// bad label syntax
		"# HELP dtx_a a\n# TYPE dtx_a gauge\ndtx_a{x=1} 1\n",
		"# HELP dtx_a a\n# TYPE dtx_a gauge\ndtx_a{x=\"1\" 1\n",
		// bad value
		"# HELP dtx_a a\n# TYPE dtx_a gauge\ndtx_a one\n",
		// a series twice
		"# HELP dtx_a a\n# TYPE dtx_a gauge\ndtx_a 1\ndtx_a 2\n",
		// family not contiguous
		"# HELP dtx_a a\n# TYPE dtx_a gauge\n# HELP dtx_b b\n# TYPE "
		"dtx_b gauge\ndtx_b 1\ndtx_a 1\n",
		// histogram: not cumulative, no +Inf, count != +Inf, no sum
		"# HELP dtx_h h\n# TYPE dtx_h "
		"histogram\ndtx_h_bucket{le=\"1\"} "
		"2\ndtx_h_bucket{le=\"+Inf\"} 1\ndtx_h_sum 1\ndtx_h_count 1\n",
		"# HELP dtx_h h\n# TYPE dtx_h "
		"histogram\ndtx_h_bucket{le=\"1\"} "
		"1\ndtx_h_sum 1\ndtx_h_count 1\n",
		"# HELP dtx_h h\n# TYPE dtx_h histogram\ndtx_h_bucket{le=\"+"
		"Inf\"} 2\ndtx_h_sum 1\ndtx_h_count 1\n",
		"# HELP dtx_h h\n# TYPE dtx_h histogram\ndtx_h_bucket{le=\"+"
		"Inf\"} 1\ndtx_h_count 1\n",
		// histogram: le decreasing
		"# HELP dtx_h h\n# TYPE dtx_h "
		"histogram\ndtx_h_bucket{le=\"2\"} "
		"1\ndtx_h_bucket{le=\"1\"} 1\ndtx_h_bucket{le=\"+Inf\"} "
		"1\ndtx_h_sum 1\ndtx_h_count 1\n",
		// no final newline
		"# HELP dtx_a a\n# TYPE dtx_a gauge\ndtx_a 1",
	};
	char err[256];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (pc_check(bad[i], err, sizeof(err))) {
			fprintf(
			    stderr, "accepted bad page %zu:\n%s\n", i, bad[i]);
			fail();
		}
	}
	check_ok("# HELP dtx_h h\n# TYPE dtx_h histogram\n"
	         "dtx_h_bucket{k=\"a\\\"b\",le=\"0.5\"} 1\n"
	         "dtx_h_bucket{k=\"a\\\"b\",le=\"+Inf\"} 3\n"
	         "dtx_h_sum{k=\"a\\\"b\"} 2.5\ndtx_h_count{k=\"a\\\"b\"} 3\n");
}

typedef struct stub {
	bool ready;
} stub;

static dtx_err
stub_metrics(void *arg, proto__buf *out)
{
	(void)arg;
	proto__buf_printf(out,
	    "# HELP dtx_x x\n# TYPE dtx_x gauge\n"
	    "dtx_x 1\n");
	return DTX_OK;
}

static bool
stub_ready(void *arg, char *why, size_t len)
{
	stub *s = arg;
	if (!s->ready)
		snprintf(why, len, "recovering (in doubt 1, blocked 0)");
	return s->ready;
}

static void
test_http_listener(void **state)
{
	(void)state;
	char dir[] = "/tmp/dtx-http-XXXXXX", file[64], err[256];
	char body[4096], addr[96];
	assert_non_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/http.addr", dir);
	stub st = { .ready = false };
	proto__http_cfg cfg = { .addr = "127.0.0.1:0",
		.addr_file = file,
		.metrics = stub_metrics,
		.ready = stub_ready,
		.arg = &st };
	proto__http *h = NULL;
	assert_int_equal(proto__http_open(&cfg, &h, err, sizeof(err)), DTX_OK);
	FILE *f = fopen(file, "r");
	assert_non_null(f);
	assert_non_null(fgets(addr, sizeof(addr), f));
	fclose(f);
	addr[strcspn(addr, "\n")] = '\0';
	assert_string_equal(addr, proto__http_addr(h));
	assert_true(
	    strncmp(addr, "127.0.0.1:", 10) == 0 && atoi(addr + 10) > 0);

	assert_int_equal(hg_get(addr, "/metrics", body, sizeof(body)), 200);
	assert_string_equal(body,
	    "# HELP dtx_x x\n# TYPE dtx_x gauge\n"
	    "dtx_x 1\n");
	assert_int_equal(hg_get(addr, "/livez", body, sizeof(body)), 200);
	assert_int_equal(hg_get(addr, "/readyz", body, sizeof(body)), 503);
	assert_string_equal(body, "recovering (in doubt 1, blocked 0)\n");
	st.ready = true;
	assert_int_equal(hg_get(addr, "/readyz", body, sizeof(body)), 200);
	assert_int_equal(hg_get(addr, "/nope", body, sizeof(body)), 404);
	assert_int_equal(hg_raw(addr,
	                     "POST /metrics HTTP/1.1\r\nHost: x\r\n"
	                     "Content-Length: 0\r\nConnection: close\r\n\r\n",
	                     body, sizeof(body)),
	    405);
	// Malformed requests: an error status or a closed connection, and
	// the listener keeps serving.
	static const char *const junk[] = { "\r\n\r\n", "GARBAGE\r\n\r\n",
		"GET\r\n\r\n", "GET /livez HTTP/9.9\r\n\r\n",
		"GET /livez HTTP/1.1\r\nBad Header Line\r\n\r\n",
		"GET /livez HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
		"\x01\x02\x03\xff\xfe\r\n\r\n" };
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		int code = hg_raw(addr, junk[i], body, sizeof(body));
		assert_true(code == 0 || code >= 400);
		assert_int_equal(
		    hg_get(addr, "/livez", body, sizeof(body)), 200);
	}
	// Random bytes and an oversized header line: same.
	char *junk2 = malloc(200001);
	assert_non_null(junk2);
	srand(7);
	for (int i = 0; i < 100; i++) {
		size_t n = 1 + (size_t)rand() % 2000;
		for (size_t k = 0; k < n; k++)
			junk2[k] = (char)(1 + rand() % 255);
		memcpy(junk2 + n, "\r\n\r\n", 5);
		int code = hg_raw(addr, junk2, body, sizeof(body));
		assert_true(code == 0 || code >= 400);
	}
	int hl = snprintf(junk2, 200001, "GET /metrics HTTP/1.1\r\nX: ");
	memset(junk2 + hl, 'a', 199000);
	memcpy(junk2 + hl + 199000, "\r\n\r\n", 5);
	assert_int_not_equal(hg_raw(addr, junk2, body, sizeof(body)), 200);
	free(junk2);
	assert_int_equal(hg_get(addr, "/livez", body, sizeof(body)), 200);
	// The same address twice is busy; a bad one is refused.
	proto__http *h2 = NULL;
	cfg.addr = addr;
	cfg.addr_file = NULL;
	dtx_err busy = proto__http_open(&cfg, &h2, err, sizeof(err));
	assert_int_equal(busy, DTX_EEXIST);
	cfg.addr = "tcp://127.0.0.1:1";
	assert_int_equal(
	    proto__http_open(&cfg, &h2, err, sizeof(err)), DTX_EINVAL);
	cfg.addr = "127.0.0.1:0/path";
	assert_int_equal(
	    proto__http_open(&cfg, &h2, err, sizeof(err)), DTX_EINVAL);
	proto__http_close(h);
	// Closed: nobody answers.
	assert_int_equal(hg_get(addr, "/livez", body, sizeof(body)), -1);
	unlink(file);
	rmdir(dir);
}

// A daemon runtime in this process with --http: its state is what
// test_state says.
static const char *test_state = "ok";

static dtx_err
test_handler(void *arg, const proto_msg *req, proto_msg *rep, proto_call *call)
{
	(void)arg;
	(void)req;
	(void)rep;
	(void)call;
	return DTX_EINVAL;
}

static dtx_err
test_health(void *arg, proto_health_reply *rep)
{
	(void)arg;
	rep->in_doubt = 1;
	return proto_str_set(&rep->state, test_state);
}

static void *
waiter(void *arg)
{
	proto_daemon_wait(arg);
	return NULL;
}

static void
test_daemon_http(void **state)
{
	(void)state;
	char dir[] = "/tmp/dtx-httpd-XXXXXX", topo[64], data[64], path[96];
	char addr[96], body[8192], err[256];
	assert_non_null(mkdtemp(dir));
	snprintf(topo, sizeof(topo), "%s/topology", dir);
	snprintf(data, sizeof(data), "%s/data", dir);
	FILE *fp = fopen(topo, "w");
	assert_non_null(fp);
	fprintf(fp,
	    "coordinator 0 ipc://%s/c.sock\nparticipant 1 "
	    "ipc://%s/p1.sock\nclient 3\n",
	    dir, dir);
	fclose(fp);
	char *argv[] = { "dtx-test", "--node-id", "1", "--topology", topo,
		"--data", data, "--log-level", "error", "--insecure", "--http",
		"127.0.0.1:0", NULL };
	proto_daemon *d = NULL;
	assert_int_equal(proto_daemon_open("dtx-test", DTX_ROLE_PARTICIPANT, 12,
	                     argv, NULL, 0, NULL, &d),
	    DTX_OK);
	proto_daemon_hooks h = { .role = DTX_ROLE_PARTICIPANT,
		.handler = test_handler,
		.health = test_health };
	assert_int_equal(proto_daemon_serve(d, &h), DTX_OK);
	snprintf(path, sizeof(path), "%s/http.addr", data);
	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_non_null(fgets(addr, sizeof(addr), fp));
	fclose(fp);
	addr[strcspn(addr, "\n")] = '\0';

	// Served, but its start is not complete: not ready.
	assert_int_equal(hg_get(addr, "/livez", body, sizeof(body)), 200);
	assert_int_equal(hg_get(addr, "/readyz", body, sizeof(body)), 503);
	assert_string_equal(body, "starting\n");
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, waiter, d), 0);
	int code = 0;
	for (int i = 0; i < 100 && code != 200; i++) {
		code = hg_get(addr, "/readyz", body, sizeof(body));
		if (code != 200)
			dtx_sleep_ms(20);
	}
	assert_int_equal(code, 200);
	assert_string_equal(body, "ready\n");
	static char page[1 << 16];
	assert_int_equal(hg_get(addr, "/metrics", page, sizeof(page)), 200);
	if (!pc_check(page, err, sizeof(err))) {
		fprintf(stderr, "%s\n%s", err, page);
		fail();
	}
	assert_non_null(strstr(page, "\ndtx_ready 1\n"));
	assert_non_null(strstr(page, "\ndtx_in_doubt_transactions 1\n"));
	// A blocked daemon is not ready, and says why in one line.
	test_state = "blocked";
	assert_int_equal(hg_get(addr, "/readyz", body, sizeof(body)), 503);
	assert_non_null(strstr(body, "blocked: in-doubt transactions"));
	assert_non_null(strstr(body, "in doubt 1"));
	assert_ptr_equal(strchr(body, '\n'), body + strlen(body) - 1);
	assert_int_equal(hg_get(addr, "/metrics", page, sizeof(page)), 200);
	assert_non_null(strstr(page, "\ndtx_ready 0\n"));
	test_state = "ok";
	// Stopping ends the HTTP listener with the wait.
	proto_daemon_stop(d);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(hg_get(addr, "/livez", body, sizeof(body)), -1);
	proto_daemon_close(d);
	assert_int_equal(dtx_rmtree(dir), DTX_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_participant_page),
		cmocka_unit_test(test_coordinator_and_saga_pages),
		cmocka_unit_test(test_checker_refuses_broken_pages),
		cmocka_unit_test(test_http_listener),
		cmocka_unit_test(test_daemon_http),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
