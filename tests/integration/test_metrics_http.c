// SPDX-License-Identifier: MIT
//
// The daemons' HTTP endpoints on a real cluster (--http 127.0.0.1:0 given
// as DTX_HTTP, each daemon writing its bound address to DATA/http.addr):
// /metrics of the coordinator, the participants and the saga orchestrator
// passes the exposition-format checker and counts the transactions run;
// /livez is 200; /readyz is 503 while a participant holds an in-doubt
// transaction nobody reachable can resolve (the coordinator down after
// logging COMMIT) and 200 once it resolves; a participant restarted in
// doubt tells systemd READY=1 only then (NOTIFY_SOCKET), and STOPPING=1
// when it stops.

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../http_get.h"
#include "../prom_check.h"
#include "test_2pc_util.h"

#define NACCT 8
#define BAL 1000
#define PAGE (1 << 20)

static int
setup(void **state)
{
	static tu_fx fx;
	setenv("DTX_HTTP", "127.0.0.1:0", 1);
	return tu_setup_bank(state, &fx, 2, tu_env_debug, NACCT, BAL);
}

// Node id's bound HTTP address from its data directory, waiting for the
// file up to 10 s.
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

// Polls /readyz until it answers want (up to timeout_ms); returns the
// last status and leaves the body in why.
static int
await_ready(
    const char *addr, int want, uint64_t timeout_ms, char *why, size_t len)
{
	uint64_t end = dtx_mono_ns() + timeout_ms * 1000000ull;
	int code;
	while ((code = hg_get(addr, "/readyz", why, len)) != want &&
	    dtx_mono_ns() < end)
		dtx_sleep_ms(100);
	return code;
}

// Fetches /metrics, checks the format and returns the page (owned).
static char *
checked_page(const char *addr)
{
	char *page = malloc(PAGE), err[256];
	assert_non_null(page);
	assert_int_equal(hg_get(addr, "/metrics", page, PAGE), 200);
	if (!pc_check(page, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n%s", addr, err, page);
		fail();
	}
	return page;
}

// The value of the sample whose line starts with prefix (-1: none).
static double
sample(const char *page, const char *prefix)
{
	char want[256];
	snprintf(want, sizeof(want), "\n%s ", prefix);
	const char *p = strstr(page, want);
	return p ? strtod(p + strlen(want), NULL) : -1;
}

static void
test_every_daemon_serves(void **state)
{
	tu_fx *fx = *state;
	char addr[96], body[512];
	for (int i = 0; i < 3; i++) {
		proto_msg rep;
		assert_int_equal(
		    tu_transfer(fx, NULL, PROTO_MODE_2PC, tu_acct_on(fx, 1, i),
		        tu_acct_on(fx, 2, i), 1, &rep, 5000),
		    DTX_OK);
		proto_msg_free(&rep);
	}
	for (uint32_t id = 0; id <= fx->np; id++) {
		http_addr(fx->cl, id, addr, sizeof(addr));
		assert_int_equal(
		    hg_get(addr, "/livez", body, sizeof(body)), 200);
		assert_int_equal(
		    await_ready(addr, 200, 10000, body, sizeof(body)), 200);
		assert_int_equal(
		    hg_get(addr, "/nope", body, sizeof(body)), 404);
		assert_int_equal(hg_raw(addr,
		                     "DELETE /livez HTTP/1.1\r\nHost: x\r\n"
		                     "Connection: close\r\n\r\n",
		                     body, sizeof(body)),
		    405);
		assert_true(hg_raw(addr, "NONSENSE\r\n\r\n", body,
		                sizeof(body)) != 200);
		char *page = checked_page(addr);
		assert_true(sample(page, "dtx_ready") == 1);
		assert_true(sample(page, "dtx_uptime_seconds") > 0);
		assert_non_null(strstr(page, "\ndtx_hlc_offset_seconds "));
		assert_non_null(strstr(page, "\ndtx_refusals_total{reason="));
		if (id == 0) {
			assert_true(sample(page,
			                "dtx_transactions_total{mode=\"2pc\","
			                "outcome=\"committed\"}") >= 3);
			assert_true(
			    sample(page,
			        "dtx_transaction_duration_seconds_count{"
			        "mode=\"2pc\"}") >= 3);
			assert_true(sample(page, "dtx_wal_fsyncs_total") > 0);
		} else {
			assert_true(sample(page,
			                "dtx_votes_total{mode=\"2pc\","
			                "vote=\"yes\"}") >= 3);
			assert_true(
			    sample(page, "dtx_wal_written_bytes_total") > 0);
			assert_true(
			    sample(page,
			        "dtx_wal_fsync_duration_seconds_count") > 0);
		}
		free(page);
	}
}

// A datagram socket at path for NOTIFY_SOCKET.
static int
notify_socket(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

// Waits up to timeout_ms for a notification containing what; true when
// one came. Every message read is appended to seen.
static bool
await_notify(
    int fd, const char *what, uint64_t timeout_ms, char *seen, size_t len)
{
	uint64_t end = dtx_mono_ns() + timeout_ms * 1000000ull;
	while (dtx_mono_ns() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 100) != 1)
			continue;
		char msg[512];
		ssize_t n = recv(fd, msg, sizeof(msg) - 1, 0);
		if (n <= 0)
			continue;
		msg[n] = '\0';
		size_t sl = strlen(seen);
		snprintf(seen + sl, len - sl, "%s|", msg);
		if (strstr(msg, what) != NULL)
			return true;
	}
	return false;
}

static void
test_readyz_blocked_in_doubt(void **state)
{
	tu_fx *fx = *state;
	char a1[96], a2[96], why[512], seen[4096] = "";
	http_addr(fx->cl, 1, a1, sizeof(a1));

	// The coordinator dies right after forcing COMMIT: both
	// participants are in doubt and nobody reachable knows.
	int64_t a = tu_acct_on(fx, 1, 3), b = tu_acct_on(fx, 2, 3);
	tu_transfer_armed(fx, "coord.after_commit_log", a, b);
	assert_int_equal(hx_cluster_wait_exit(fx->cl, 0, 20000, NULL), DTX_OK);
	if (await_ready(a1, 503, 60000, why, sizeof(why)) != 503)
		tu_dump_logs(fx);
	assert_non_null(strstr(why, "blocked"));
	assert_non_null(strchr(why, '\n'));
	assert_int_equal(hg_get(a1, "/livez", why, sizeof(why)), 200);
	char *page = checked_page(a1);
	assert_true(sample(page, "dtx_ready") == 0);
	assert_true(sample(page, "dtx_in_doubt_transactions") >= 1);
	assert_true(sample(page, "dtx_blocked_transactions") >= 1);
	assert_true(sample(page, "dtx_oldest_in_doubt_seconds") > 0);
	free(page);

	// Participant 2 restarts in doubt under systemd's eyes: it reloads
	// the transaction, serves, but is not ready and says why.
	char sock[300], envs[340], addrfile[512];
	snprintf(sock, sizeof(sock), "%s/notify", fx->dir);
	int nfd = notify_socket(sock);
	assert_int_equal(hx_cluster_signal(fx->cl, 2, SIGTERM), DTX_OK);
	assert_int_equal(hx_cluster_wait_exit(fx->cl, 2, 20000, NULL), DTX_OK);
	snprintf(addrfile, sizeof(addrfile), "%s/http.addr",
	    hx_cluster_data(fx->cl, 2));
	unlink(addrfile);
	snprintf(envs, sizeof(envs), "NOTIFY_SOCKET=%s", sock);
	char *env2[] = { envs, NULL };
	assert_int_equal(hx_cluster_start(fx->cl, 2, env2), DTX_OK);
	assert_int_equal(hx_cluster_wait_ready(fx->cl, 2, 20000), DTX_OK);
	http_addr(fx->cl, 2, a2, sizeof(a2));
	assert_int_equal(hg_get(a2, "/readyz", why, sizeof(why)), 503);
	assert_false(await_notify(nfd, "READY=1", 2000, seen, sizeof(seen)));
	assert_non_null(strstr(seen, "STATUS="));

	// The coordinator returns with its logged COMMIT: both resolve and
	// become ready; the restarted one tells systemd so.
	assert_int_equal(tu_restart(fx, 0), DTX_OK);
	tu_settle(fx, true, 60000,
	    "still in doubt after the coordinator "
	    "returned");
	assert_int_equal(await_ready(a1, 200, 30000, why, sizeof(why)), 200);
	assert_int_equal(await_ready(a2, 200, 30000, why, sizeof(why)), 200);
	assert_true(await_notify(nfd, "READY=1", 30000, seen, sizeof(seen)));
	page = checked_page(a1);
	assert_true(sample(page, "dtx_ready") == 1);
	assert_true(sample(page, "dtx_blocked_transactions") == 0);
	free(page);

	// A clean stop says STOPPING=1 first.
	assert_int_equal(hx_cluster_signal(fx->cl, 2, SIGTERM), DTX_OK);
	assert_true(await_notify(nfd, "STOPPING=1", 20000, seen, sizeof(seen)));
	assert_int_equal(hx_cluster_wait_exit(fx->cl, 2, 20000, NULL), DTX_OK);
	close(nfd);
	unlink(sock);
	assert_int_equal(tu_restart(fx, 2), DTX_OK);
}

static void
test_saga_cluster_pages(void **state)
{
	(void)state;
	char dir[] = "/tmp/dtx-metrics-XXXXXX", err[256], addr[96];
	assert_non_null(mkdtemp(dir));
	hx_cluster_opts o;
	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.participants = 1;
	o.saga = true;
	hx_cluster *cl = NULL;
	assert_int_equal(hx_cluster_create(&o, &cl, err, sizeof(err)), DTX_OK);
	assert_int_equal(hx_cluster_start_all(cl, 20000), DTX_OK);
	const dtx_node *sg = dtx_topo_first(hx_cluster_topo(cl), DTX_ROLE_SAGA);
	assert_non_null(sg);
	uint32_t ids[] = { 0, 1, sg->id };
	for (size_t i = 0; i < 3; i++) {
		http_addr(cl, ids[i], addr, sizeof(addr));
		char *page = checked_page(addr);
		if (ids[i] == sg->id)
			assert_non_null(strstr(
			    page, "\ndtx_sagas_total{outcome=\"committed\"} "));
		free(page);
	}
	hx_cluster_stop_all(cl, 10000);
	hx_cluster_free(cl);
	if (getenv("DTX_KEEP_TEST_DIR") == NULL)
		nftw(dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_daemon_serves),
		cmocka_unit_test(test_readyz_blocked_in_doubt),
		cmocka_unit_test(test_saga_cluster_pages),
	};
	return cmocka_run_group_tests(tests, setup, tu_group_teardown);
}
