// SPDX-License-Identifier: MIT
//
// Certificates and TLS by default, through the built dtx command, run as
// a user runs it:
// `certs init` makes a CA and per-node keys (0600) and certificates whose
// subjects the daemons read, refuses to replace a CA without --force,
// reissues one node's with --keep-ca --only (signed by the same CA), and
// says what is wrong with bad flags; `cluster start` runs a mutual-TLS
// cluster (tls+tcp:// topology, certificates in DIR/certs) on which
// accounts, transfer, balances, health and cluster status work with the
// certificates they find there, while a plaintext client gets nothing;
// `cluster start --insecure` runs plaintext daemons that say so.

#include <fcntl.h>
#include <nng/nng.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../capture.h"
#include "cli.h"

static char tmp[64];

// Runs `dtx ARGS...` as its own process (tc_dtx); returns the exit code
// and, when out is not NULL, the output (malloc'd).
static int
run_dtx(char **out, const char *const *args)
{
	char *text = NULL;
	int rc = tc_dtx(tmp, &text, args);
	assert_non_null(text);
	if (out != NULL)
		*out = text;
	else
		free(text);
	return rc;
}

#define DTX(out, ...) run_dtx(out, (const char *const[]) { __VA_ARGS__, NULL })

static void
expect(int want_rc, const char *want_text, const char *const *args)
{
	char *out;
	assert_int_equal(run_dtx(&out, args), want_rc);
	if (want_text != NULL && strstr(out, want_text) == NULL)
		fail_msg("no '%s' in the output", want_text);
	free(out);
}

#define EXPECT(rc, text, ...)                                                  \
	expect(rc, text, (const char *const[]) { __VA_ARGS__, NULL })

// Opens DIR's CA with NAME's certificate and key; on success checks that
// the certificate names (role, id).
static dtx_err
open_as(const char *dir, const char *ca, const char *name, proto_role role,
    uint32_t id)
{
	char a[256], c[256], k[256], why[256];
	snprintf(a, sizeof(a), "%s/%s", dir, ca);
	snprintf(c, sizeof(c), "%s/%s.crt", dir, name);
	snprintf(k, sizeof(k), "%s/%s.key", dir, name);
	proto_tls *t = NULL;
	dtx_err rv = proto_tls_open(a, c, k, why, sizeof(why), &t);
	if (rv == DTX_OK) {
		uint32_t node;
		proto_role r;
		proto_tls_self(t, &node, &r);
		assert_int_equal(node, id);
		assert_int_equal(r, role);
		proto_tls_close(t);
	} else {
		printf("%s: %s\n", name, why);
	}
	return rv;
}

static void
test_certs_init(void **state)
{
	(void)state;
	char d[128], path[256];
	snprintf(d, sizeof(d), "%s/certs", tmp);
	EXPECT(HX_EXIT_OK, "participant-2.crt", "certs", "init", d,
	    "--participants", "2", "--sagas", "0");
	const struct {
		const char *name;
		proto_role role;
		uint32_t id;
	} want[] = {
		{ "coordinator-0", PROTO_ROLE_COORDINATOR, 0 },
		{ "participant-1", PROTO_ROLE_PARTICIPANT, 1 },
		{ "participant-2", PROTO_ROLE_PARTICIPANT, 2 },
		{ "client-3", PROTO_ROLE_CLIENT, 3 },
		{ "admin-3", PROTO_ROLE_ADMIN, 3 },
		{ "harness-3", PROTO_ROLE_HARNESS, 3 },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_int_equal(open_as(d, "ca.crt", want[i].name,
		                     want[i].role, want[i].id),
		    DTX_OK);
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s.key", d, want[i].name);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
	snprintf(path, sizeof(path), "%s/saga-3.crt", d);
	assert_int_not_equal(access(path, F_OK), 0); // --sagas 0

	// A CA is never replaced by accident.
	snprintf(path, sizeof(path), "%s/ca.crt", d);
	char *ca0 = tc_slurp(path);
	EXPECT(HX_EXIT_CONFLICT, "--force", "certs", "init", d,
	    "--participants", "2");
	char *ca1 = tc_slurp(path);
	assert_string_equal(ca0, ca1);
	free(ca1);

	// One node's certificate reissued with the same CA.
	snprintf(path, sizeof(path), "%s/participant-2.crt", d);
	char *p2 = tc_slurp(path);
	snprintf(path, sizeof(path), "%s/participant-1.crt", d);
	char *p1 = tc_slurp(path);
	EXPECT(HX_EXIT_OK, NULL, "certs", "init", d, "--participants", "2",
	    "--keep-ca", "--only", "participant-2");
	snprintf(path, sizeof(path), "%s/participant-2.crt", d);
	char *p2b = tc_slurp(path);
	snprintf(path, sizeof(path), "%s/participant-1.crt", d);
	char *p1b = tc_slurp(path);
	assert_string_not_equal(p2, p2b);
	assert_string_equal(p1, p1b);
	assert_int_equal(
	    open_as(d, "ca.crt", "participant-2", PROTO_ROLE_PARTICIPANT, 2),
	    DTX_OK);
	snprintf(path, sizeof(path), "%s/ca.crt", d);
	ca1 = tc_slurp(path);
	assert_string_equal(ca0, ca1);
	free(ca1);

	// --force: a new CA, which does not trust what the old one signed.
	snprintf(path, sizeof(path), "%s/old-ca.crt", d);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(ca0, f);
	fclose(f);
	EXPECT(HX_EXIT_OK, NULL, "certs", "init", d, "--participants", "2",
	    "--force");
	assert_int_not_equal(open_as(d, "old-ca.crt", "participant-1",
	                         PROTO_ROLE_PARTICIPANT, 1),
	    DTX_OK);
	assert_int_equal(
	    open_as(d, "ca.crt", "participant-1", PROTO_ROLE_PARTICIPANT, 1),
	    DTX_OK);
	free(ca0);
	free(p1);
	free(p1b);
	free(p2);
	free(p2b);

	// Bad requests say what is wrong and do nothing.
	EXPECT(HX_EXIT_USAGE, "ROLE-ID", "certs", "init", d, "--only", "bogus");
	EXPECT(HX_EXIT_USAGE, "excludes", "certs", "init", d, "--force",
	    "--keep-ca");
	EXPECT(HX_EXIT_USAGE, "one directory", "certs", "init");
	EXPECT(HX_EXIT_USAGE, "no node participant-9", "certs", "init", d,
	    "--keep-ca", "--only", "participant-9");
	snprintf(path, sizeof(path), "%s/empty", tmp);
	EXPECT(HX_EXIT_USAGE, "ca.crt", "certs", "init", path, "--keep-ca");
}

// HEALTH over plaintext to a TLS daemon's port gets no answer.
static void
plaintext_refused(const char *tls_url)
{
	char url[256];
	snprintf(url, sizeof(url), "tcp://%s", strstr(tls_url, "://") + 3);
	proto_client_cfg cc = {
		.url = url, .timeout_ms = 1000, .connect_wait_ms = 1000
	};
	proto_client *c = NULL;
	assert_int_equal(proto_client_open(&cc, &c), DTX_OK);
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_HEALTH);
	dtx_err rv = proto_client_call(c, &req, &rep, NULL);
	if (rv == DTX_OK || rv == DTX_EREFUSED)
		proto_msg_free(&rep);
	assert_int_not_equal(rv, DTX_OK);
	proto_client_close(c);
}

// Connections as one-shot commands make them: clients to every daemon,
// its admin ones too (whose hello is still going on when the command
// ends), one call, and all closed. Every close ends: a message arriving
// while a socket closes would leave it to the process (and stop nng's
// teardown in the whole process).
static void
short_lived_conns(hx_cluster *cl)
{
#ifdef __SANITIZE_ADDRESS__
	// nng 1.5.2 itself leaves some of these connections' objects
	// unfreed (LeakSanitizer: indirect leaks only, all allocated inside
	// libnng under nng_dialer_create), so the ASan build skips them.
	(void)cl;
	printf("short-lived connections: skipped under ASan\n");
	return;
#endif
	char err[256];
	size_t before = proto_client_left_open();
	int i;
	uint64_t end = dtx_mono_ns() + 60000000000u;
	for (i = 0; i < 40 && proto_client_left_open() == before &&
	     dtx_mono_ns() < end;
	     i++) {
		hx_conn *cn = NULL;
		assert_int_equal(
		    hx_cluster_conn(cl, false, &cn, err, sizeof(err)), DTX_OK);
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_HEALTH);
		if (hx_conn_call(cn, (uint32_t)i % 3, &req, &rep, 0, true) ==
		    DTX_OK)
			proto_msg_free(&rep);
		hx_conn_close(cn);
	}
	printf("%d short-lived connections\n", i);
	assert_int_equal(proto_client_left_open(), before);
}

static void
test_cluster_tls_default(void **state)
{
	(void)state;
	char d[128], path[256];
	snprintf(d, sizeof(d), "%s/cluster", tmp);
	EXPECT(HX_EXIT_OK, "mutual TLS", "cluster", "start", "--dir", d,
	    "--participants", "2");
	snprintf(path, sizeof(path), "%s/topology", d);
	char *topo = tc_slurp(path);
	assert_non_null(topo);
	assert_non_null(strstr(topo, "tls+tcp://"));
	free(topo);
	snprintf(path, sizeof(path), "%s/certs/harness-3.key", d);
	assert_int_equal(access(path, R_OK), 0);
	EXPECT(HX_EXIT_OK, "created 4 accounts", "accounts", "init", "4",
	    "--dir", d);
	// The accounts' COMMIT may still be on its way to a participant
	// when the transfer's PREPARE arrives on another connection (the
	// participant does not wait for locks): aborted is then the right
	// answer, and a retry commits.
	int rc = HX_EXIT_INVALID;
	for (int i = 0; i < 5 && rc == HX_EXIT_INVALID; i++) {
		if (i > 0)
			dtx_sleep_ms(200);
		rc = DTX(NULL, "transfer", "0", "1", "5", "--dir", d);
	}
	assert_int_equal(rc, HX_EXIT_OK);
	EXPECT(HX_EXIT_OK, "total 400", "balances", "--dir", d);
	EXPECT(HX_EXIT_OK, "\"tls\":true", "cluster", "status", "--dir", d,
	    "--json");
	hx_cluster *cl = NULL;
	char err[256];
	assert_int_equal(hx_cluster_open(d, &cl, err, sizeof(err)), DTX_OK);
	const dtx_node *p1 = dtx_topo_find(hx_cluster_topo(cl), 1);
	EXPECT(HX_EXIT_OK, "participant 1 ok", "health", p1->url, "--dir", d);
	// Without a certificate dtx health says so; a plaintext client
	// gets nothing from a TLS port.
	snprintf(path, sizeof(path), "%s/nowhere", tmp);
	EXPECT(HX_EXIT_USAGE, "needs a certificate", "health", p1->url, "--dir",
	    path);
	plaintext_refused(p1->url);
	short_lived_conns(cl);
	hx_cluster_free(cl);
	EXPECT(HX_EXIT_OK, "stopped", "cluster", "stop", "--dir", d);

	// --insecure: plaintext, announced by every daemon.
	snprintf(d, sizeof(d), "%s/plain", tmp);
	EXPECT(HX_EXIT_OK, "insecure", "cluster", "start", "--dir", d,
	    "--participants", "1", "--insecure");
	snprintf(path, sizeof(path), "%s/topology", d);
	topo = tc_slurp(path);
	assert_null(strstr(topo, "tls+tcp://"));
	free(topo);
	EXPECT(HX_EXIT_OK, "created 2 accounts", "accounts", "init", "2",
	    "--dir", d);
	snprintf(path, sizeof(path), "%s/logs/1.log", d);
	char *log = tc_slurp(path);
	assert_non_null(strstr(log, "INSECURE"));
	free(log);
	EXPECT(HX_EXIT_OK, "stopped", "cluster", "stop", "--dir", d);
}

int
main(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/dtx-cli-tls-XXXXXX");
	if (mkdtemp(tmp) == NULL)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_certs_init),
		cmocka_unit_test(test_cluster_tls_default),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	char d[128];
	snprintf(d, sizeof(d), "%s/cluster", tmp);
	hx_cluster_stop_dir(d, false);
	snprintf(d, sizeof(d), "%s/plain", tmp);
	hx_cluster_stop_dir(d, false);
	(void)dtx_rmtree(tmp);
	nng_fini();
	return rc;
}
