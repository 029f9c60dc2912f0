// SPDX-License-Identifier: MIT
//
// The trust boundary in proto: the authorisation table (every message
// type x every role), certificate subjects, the signed hello, an RPC over
// mutual TLS (identity seen by the handler, a foreign CA refused, a
// request before the hello refused) and the connection cap.

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../integration/test_trust_util.h"
#include "proto.h"

#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#define ok(x) assert_int_equal((x), DTX_OK)
#define RB(x) (1u << PROTO_ROLE_##x)

// The table as the issue states it, written out independently of
// proto/authz.c: C coordinator, P participant, S saga, K client, A admin,
// H harness. A reply type is never a request; FAULT also needs
// --enable-faults.
static uint32_t
expected(proto_type t)
{
	const uint32_t all = RB(COORDINATOR) | RB(PARTICIPANT) | RB(SAGA) |
	    RB(CLIENT) | RB(ADMIN) | RB(HARNESS);
	const uint32_t ext = RB(CLIENT) | RB(ADMIN) | RB(HARNESS);
	switch (t) {
	case PROTO_BATCH:
	case PROTO_PING:
	case PROTO_HEALTH:
		return all;
	case PROTO_FAULT:
		return RB(HARNESS);
	case PROTO_TXN:
	case PROTO_SAGA_SUBMIT:
	case PROTO_SAGA_STATUS:
		return ext;
	case PROTO_PREPARE:
	case PROTO_CAN_COMMIT:
	case PROTO_COMMIT:
		return RB(COORDINATOR);
	case PROTO_ABORT:
	case PROTO_PRE_COMMIT:
	case PROTO_DO_COMMIT:
		return RB(COORDINATOR) | RB(PARTICIPANT);
	case PROTO_STATUS:
		return RB(COORDINATOR) | RB(PARTICIPANT) | RB(ADMIN) |
		    RB(HARNESS);
	case PROTO_READ:
		return ext | RB(COORDINATOR) | RB(SAGA);
	case PROTO_STEP:
	case PROTO_SAGA_FORGET:
		return RB(SAGA);
	case PROTO_TXN_LIST:
		return RB(ADMIN) | RB(HARNESS);
	case PROTO_TXN_RESOLVE:
		return RB(ADMIN);
	case PROTO_TRACE:
		return RB(ADMIN) | RB(HARNESS);
	default:
		return 0; // replies, NONE, HELLO/CHALLENGE/AUTH
	}
}

static void
test_authz_table(void **state)
{
	(void)state;
	for (int t = PROTO_NONE; t < PROTO_TYPE_COUNT; t++) {
		for (int r = PROTO_ROLE_NONE; r < PROTO_ROLE_COUNT; r++) {
			uint32_t bit = 1u << r;
			bool want = (expected((proto_type)t) & bit) != 0;
			proto_refusal got =
			    proto_authz_check((proto_type)t, bit, true);
			if ((got == PROTO_REFUSED_NONE) != want)
				fail_msg("%s from %s: table says %s",
				    proto_type_name((proto_type)t),
				    proto_role_name((proto_role)r),
				    proto_refusal_name(got));
			// Without --enable-faults no role may send FAULT.
			got = proto_authz_check((proto_type)t, bit, false);
			bool want_off = want && t != PROTO_FAULT;
			assert_int_equal(got == PROTO_REFUSED_NONE, want_off);
			if (t == PROTO_FAULT && want)
				assert_int_equal(got, PROTO_REFUSED_FAULTS_OFF);
		}
	}
	// Several roles at once: allowed when any of them is.
	assert_int_equal(
	    proto_authz_check(PROTO_FAULT, proto_authz_external(), true),
	    PROTO_REFUSED_NONE);
	assert_int_equal(
	    proto_authz_check(PROTO_COMMIT, proto_authz_external(), true),
	    PROTO_REFUSED_ROLE);
	assert_int_equal(proto_authz_roles(PROTO_TYPE_COUNT), 0);
}

static void
test_subject(void **state)
{
	(void)state;
	uint32_t id = 99;
	proto_role r = PROTO_ROLE_NONE;
	ok(proto_subject_identity("participant-3", NULL, &id, &r));
	assert_int_equal(id, 3);
	assert_int_equal(r, PROTO_ROLE_PARTICIPANT);
	ok(proto_subject_identity("12", "harness", &id, &r));
	assert_int_equal(id, 12);
	assert_int_equal(r, PROTO_ROLE_HARNESS);
	ok(proto_subject_identity("coordinator-0", "coordinator", &id, &r));
	assert_int_equal(r, PROTO_ROLE_COORDINATOR);
	const char *bad[][2] = {
		{ "participant-3", "coordinator" }, // OU disagrees
		{ "3", NULL }, // no role
		{ "3", "root" }, // unknown role
		{ "wizard-3", NULL },
		{ "participant-", NULL },
		{ "participant-3x", NULL },
		{ "participant-1234567890", NULL }, // too many digits
		{ "", "client" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
		    proto_subject_identity(bad[i][0], bad[i][1], &id, &r),
		    DTX_EINVAL);
	assert_int_equal(
	    proto_subject_identity(NULL, "client", &id, &r), DTX_EINVAL);
}

// ---------------------------------------------------------------- with
// certificates

typedef struct fixture {
	char dir[64];
} fixture;

static int
setup(void **state)
{
	if (!tt_have_openssl()) {
		*state = NULL;
		return 0;
	}
	fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/dtx-auth-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_true(tt_ca(f->dir, "ca"));
	assert_true(tt_ca(f->dir, "evil"));
	assert_true(tt_cert(f->dir, "ca", "p1", "/CN=participant-1"));
	assert_true(tt_cert(f->dir, "ca", "c3", "/CN=3/OU=client"));
	assert_true(tt_cert(f->dir, "evil", "e3", "/CN=client-3"));
	assert_true(tt_cert(f->dir, "ca", "anon", "/CN=nobody"));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	if (f == NULL)
		return 0;
	assert_int_equal(dtx_rmtree(f->dir), DTX_OK);
	free(f);
	return 0;
}

static void
test_tls_open(void **state)
{
	fixture *f = *state;
	if (f == NULL)
		skip();
	proto_tls *t = NULL;
	uint32_t node;
	proto_role role;
	ok(tt_tls(f->dir, "ca", "p1", &t));
	proto_tls_self(t, &node, &role);
	assert_int_equal(node, 1);
	assert_int_equal(role, PROTO_ROLE_PARTICIPANT);
	proto_tls_close(t);
	// A certificate the CA did not sign, a subject naming no node, a
	// key of another certificate: each refused at open.
	char a[256], c[256], k[256], why[256];
	assert_int_equal(tt_tls(f->dir, "ca", "e3", &t), DTX_EINVAL);
	assert_int_equal(tt_tls(f->dir, "ca", "anon", &t), DTX_EINVAL);
	snprintf(a, sizeof(a), "%s/ca.crt", f->dir);
	snprintf(c, sizeof(c), "%s/p1.crt", f->dir);
	snprintf(k, sizeof(k), "%s/c3.key", f->dir);
	assert_int_equal(
	    proto_tls_open(a, c, k, why, sizeof(why), &t), DTX_EINVAL);
	assert_non_null(strstr(why, "does not match"));
	assert_int_equal(
	    proto_tls_open(a, c, NULL, why, sizeof(why), &t), DTX_EINVAL);
}

static void
test_hello(void **state)
{
	fixture *f = *state;
	if (f == NULL)
		skip();
	proto_tls *srv = NULL, *cli = NULL, *evil = NULL;
	ok(tt_tls(f->dir, "ca", "p1", &srv));
	ok(tt_tls(f->dir, "ca", "c3", &cli));
	ok(tt_tls(f->dir, "evil", "e3", &evil));
	uint8_t nonce[PROTO_NONCE_LEN], other[PROTO_NONCE_LEN];
	for (int i = 0; i < PROTO_NONCE_LEN; i++) {
		nonce[i] = (uint8_t)i;
		other[i] = (uint8_t)(i + 1);
	}
	char why[256];
	uint32_t node = 0;
	proto_role role = PROTO_ROLE_NONE;
	proto_msg m;
	ok(proto_tls_hello(cli, 1, nonce, &m));
	assert_int_equal(m.hdr.type, PROTO_AUTH);
	ok(proto_tls_verify_hello(
	    srv, 1, nonce, &m.u.auth, &node, &role, why, sizeof(why)));
	assert_int_equal(node, 3);
	assert_int_equal(role, PROTO_ROLE_CLIENT);
	// Another nonce, another server id: the signature does not verify.
	assert_int_equal(proto_tls_verify_hello(srv, 1, other, &m.u.auth, &node,
	                     &role, why, sizeof(why)),
	    DTX_EPERM);
	assert_int_equal(proto_tls_verify_hello(srv, 2, nonce, &m.u.auth, &node,
	                     &role, why, sizeof(why)),
	    DTX_EPERM);
	// A flipped signature byte.
	m.u.auth.sig.p[m.u.auth.sig.n / 2] ^= 1;
	assert_int_equal(proto_tls_verify_hello(srv, 1, nonce, &m.u.auth, &node,
	                     &role, why, sizeof(why)),
	    DTX_EPERM);
	proto_msg_free(&m);
	// A certificate from another CA, correctly signed with its key.
	ok(proto_tls_hello(evil, 1, nonce, &m));
	assert_int_equal(proto_tls_verify_hello(srv, 1, nonce, &m.u.auth, &node,
	                     &role, why, sizeof(why)),
	    DTX_EPERM);
	assert_non_null(strstr(why, "CA"));
	proto_msg_free(&m);
	proto_tls_close(evil);
	proto_tls_close(cli);
	proto_tls_close(srv);
}

// The handler answers PONG and records who sent the request.
typedef struct seen {
	proto_peer peer;
	atomic_int n;
} seen;

static dtx_err
who_handler(void *arg, const proto_msg *req, proto_msg *rep, proto_call *call)
{
	seen *s = arg;
	(void)req;
	s->peer = *proto_call_peer(call);
	atomic_fetch_add(&s->n, 1);
	rep->hdr.type = PROTO_PONG;
	return DTX_OK;
}

static proto_server *
tls_server(proto_tls *t, seen *s)
{
	proto_server_cfg sc = { .url = "tls+tcp://127.0.0.1:0",
		.workers = 2,
		.node_id = 1,
		.handler = who_handler,
		.arg = s,
		.tls = t };
	proto_server *srv = NULL;
	ok(proto_server_open(&sc, &srv));
	return srv;
}

static proto_client *
tls_client(const char *url, proto_tls *t, uint32_t expect)
{
	proto_client_cfg cc = { .url = url,
		.node_id = 77, // replaced by the certificate's
		.timeout_ms = 3000,
		.connect_wait_ms = 3000,
		.tls = t,
		.check_server = true,
		.server_node = expect };
	proto_client *c = NULL;
	ok(proto_client_open(&cc, &c));
	return c;
}

static void
test_tls_rpc(void **state)
{
	fixture *f = *state;
	if (f == NULL)
		skip();
	proto_tls *st = NULL, *ct = NULL, *et = NULL;
	ok(tt_tls(f->dir, "ca", "p1", &st));
	ok(tt_tls(f->dir, "ca", "c3", &ct));
	ok(tt_tls(f->dir, "evil", "e3", &et));
	seen s = { 0 };
	proto_server *srv = tls_server(st, &s);
	const char *url = proto_server_url(srv);
	assert_non_null(strstr(url, "tls+tcp://127.0.0.1:"));
	assert_null(strstr(url, ":0"));

	// The handler sees the certificate's identity.
	proto_client *c = tls_client(url, ct, 1);
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_PING);
	ok(proto_client_call(c, &req, &rep, NULL));
	assert_int_equal(rep.hdr.type, PROTO_PONG);
	proto_msg_free(&rep);
	assert_true(s.peer.authenticated);
	assert_int_equal(s.peer.node, 3);
	assert_int_equal(s.peer.role, PROTO_ROLE_CLIENT);
	assert_true(proto_client_connected(c));
	proto_client_close(c);

	// A client expecting another server node gets no hello through.
	c = tls_client(url, ct, 2);
	proto_call_opts o = { .timeout_ms = 500 };
	assert_int_equal(proto_client_call(c, &req, &rep, &o), DTX_EUNREACH);
	proto_client_close(c);

	// A certificate of another CA: the TLS handshake fails.
	c = tls_client(url, et, 1);
	assert_int_equal(proto_client_call(c, &req, &rep, &o), DTX_EUNREACH);
	proto_client_close(c);

	// Plaintext urls and TLS material do not mix.
	proto_client_cfg bad = { .url = "tcp://127.0.0.1:1", .tls = ct };
	assert_int_equal(proto_client_open(&bad, &c), DTX_EINVAL);
	bad = (proto_client_cfg) { .url = url };
	assert_int_equal(proto_client_open(&bad, &c), DTX_EINVAL);

	proto_server_stats ss;
	proto_server_stats_get(srv, &ss);
	assert_true(ss.hellos >= 1);
	assert_int_equal(atomic_load(&s.n), 1);
	proto_server_close(srv);
	proto_tls_close(et);
	proto_tls_close(ct);
	proto_tls_close(st);
}

// A whole file, NUL-terminated (free with free).
static char *
slurp(const char *path)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	char *buf = calloc(1, 65536);
	assert_non_null(buf);
	size_t n = fread(buf, 1, 65535, fp);
	fclose(fp);
	assert_true(n > 0);
	return buf;
}

// A TLS client configuration with the cluster CA and name's certificate
// and key from f->dir, as nng alone would use them (free with
// nng_tls_config_free).
static nng_tls_config *
raw_tls(const fixture *f, const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/ca.crt", f->dir);
	char *ca = slurp(path);
	snprintf(path, sizeof(path), "%s/%s.crt", f->dir, name);
	char *crt = slurp(path);
	snprintf(path, sizeof(path), "%s/%s.key", f->dir, name);
	char *key = slurp(path);
	nng_tls_config *tc;
	assert_int_equal(nng_tls_config_alloc(&tc, NNG_TLS_MODE_CLIENT), 0);
	assert_int_equal(nng_tls_config_ca_chain(tc, ca, NULL), 0);
	assert_int_equal(nng_tls_config_own_cert(tc, crt, key, NULL), 0);
	free(ca);
	free(crt);
	free(key);
	return tc;
}

// Opens a REQ socket dialing url over tc, replies awaited up to 3 s.
static void
raw_dial(nng_socket *sock, const char *url, nng_tls_config *tc)
{
	nng_dialer d;
	assert_int_equal(nng_req0_open(sock), 0);
	assert_int_equal(nng_dialer_create(&d, *sock, url), 0);
	assert_int_equal(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tc), 0);
	assert_int_equal(nng_dialer_start(d, 0), 0);
	nng_socket_set_ms(*sock, NNG_OPT_RECVTIMEO, 3000);
}

// Sends m (id and from set by the caller) on sock and decodes the reply.
static void
raw_rt(nng_socket sock, proto_msg *m, proto_msg *rep)
{
	nng_msg *msg;
	assert_int_equal(nng_msg_alloc(&msg, 0), 0);
	ok(proto_encode(m, msg));
	assert_int_equal(nng_sendmsg(sock, msg, 0), 0);
	assert_int_equal(nng_recvmsg(sock, &msg, 0), 0);
	char why[128];
	ok(proto_decode_nng(msg, NULL, rep, why, sizeof(why)));
	nng_msg_free(msg);
}

// A request before the hello, sent over a verified TLS connection with
// nng alone, is refused unread.
static void
test_unauthenticated(void **state)
{
	fixture *f = *state;
	if (f == NULL)
		skip();
	proto_tls *st = NULL;
	ok(tt_tls(f->dir, "ca", "p1", &st));
	seen s = { 0 };
	proto_server *srv = tls_server(st, &s);
	nng_tls_config *tc = raw_tls(f, "c3");
	nng_socket sock;
	raw_dial(&sock, proto_server_url(srv), tc);
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_PING);
	req.hdr.id = 5;
	req.hdr.from = 3;
	raw_rt(sock, &req, &rep);
	assert_int_equal(rep.hdr.type, PROTO_ERROR);
	assert_int_equal(rep.u.error.code, DTX_EPERM);
	assert_non_null(strstr(rep.u.error.reason, "unauthenticated"));
	proto_msg_free(&rep);
	assert_int_equal(atomic_load(&s.n), 0);
	proto_server_stats ss;
	proto_server_stats_get(srv, &ss);
	assert_int_equal(ss.unauthenticated, 1);
	nng_close(sock);
	nng_tls_config_free(tc);
	proto_server_close(srv);
	proto_tls_close(st);
}

// The hello by hand on one connection: the connection is bound to the
// certificate's node, a "from" of another node is refused on it, and a
// second connection is not bound by the first one's hello.
static void
test_hello_binds_pipe(void **state)
{
	fixture *f = *state;
	if (f == NULL)
		skip();
	proto_tls *st = NULL, *ct = NULL;
	ok(tt_tls(f->dir, "ca", "p1", &st));
	ok(tt_tls(f->dir, "ca", "c3", &ct));
	seen s = { 0 };
	proto_server *srv = tls_server(st, &s);
	nng_tls_config *tc = raw_tls(f, "c3");
	nng_socket sock[2];
	for (int i = 0; i < 2; i++)
		raw_dial(&sock[i], proto_server_url(srv), tc);
	proto_msg m, rep;
	proto_msg_init(&m, PROTO_HELLO);
	m.hdr.id = 1;
	m.hdr.from = 3;
	raw_rt(sock[0], &m, &rep);
	assert_int_equal(rep.hdr.type, PROTO_CHALLENGE);
	assert_int_equal(rep.hdr.from, 1);
	ok(proto_tls_hello(ct, 1, rep.u.auth.nonce.p, &m));
	proto_msg_free(&rep);
	m.hdr.id = 2;
	m.hdr.from = 3;
	raw_rt(sock[0], &m, &rep);
	proto_msg_free(&m);
	assert_int_equal(rep.hdr.type, PROTO_ACK);
	proto_msg_free(&rep);
	// Bound: a PING as node 3 is served, one claiming node 4 is not.
	proto_msg_init(&m, PROTO_PING);
	m.hdr.id = 3;
	m.hdr.from = 3;
	raw_rt(sock[0], &m, &rep);
	assert_int_equal(rep.hdr.type, PROTO_PONG);
	proto_msg_free(&rep);
	m.hdr.id = 4;
	m.hdr.from = 4;
	raw_rt(sock[0], &m, &rep);
	assert_int_equal(rep.hdr.type, PROTO_ERROR);
	assert_int_equal(rep.u.error.code, DTX_EPERM);
	assert_non_null(strstr(rep.u.error.reason, "not this connection"));
	proto_msg_free(&rep);
	// An AUTH without a fresh HELLO (the nonce was used) is refused.
	ok(proto_tls_hello(
	    ct, 1, (const uint8_t *)"0123456789abcdef0123456789abcdef", &m));
	m.hdr.id = 5;
	m.hdr.from = 3;
	raw_rt(sock[0], &m, &rep);
	proto_msg_free(&m);
	assert_int_equal(rep.hdr.type, PROTO_ERROR);
	assert_int_equal(rep.u.error.code, DTX_EPERM);
	proto_msg_free(&rep);
	// The other connection said no hello: refused.
	proto_msg_init(&m, PROTO_PING);
	m.hdr.id = 6;
	m.hdr.from = 3;
	raw_rt(sock[1], &m, &rep);
	assert_int_equal(rep.hdr.type, PROTO_ERROR);
	assert_non_null(strstr(rep.u.error.reason, "unauthenticated"));
	proto_msg_free(&rep);
	assert_int_equal(atomic_load(&s.n), 1);
	assert_int_equal(s.peer.node, 3);
	proto_server_stats ss;
	proto_server_stats_get(srv, &ss);
	assert_int_equal(ss.from_mismatch, 1);
	assert_int_equal(ss.hello_failed, 1);
	assert_int_equal(ss.hellos, 1);
	for (int i = 0; i < 2; i++)
		nng_close(sock[i]);
	nng_tls_config_free(tc);
	proto_server_close(srv);
	proto_tls_close(ct);
	proto_tls_close(st);
}

// Connections over --max-conns are closed at once and counted.
static void
test_max_conns(void **state)
{
	(void)state;
	seen s = { 0 };
	char url[128];
	snprintf(
	    url, sizeof(url), "ipc:///tmp/dtx-maxconns-%d.sock", (int)getpid());
	proto_server_cfg sc = { .url = url,
		.workers = 2,
		.node_id = 1,
		.handler = who_handler,
		.arg = &s,
		.max_conns = 2 };
	proto_server *srv = NULL;
	ok(proto_server_open(&sc, &srv));
	proto_client *c[4];
	for (int i = 0; i < 4; i++) {
		proto_client_cfg cc = { .url = url, .node_id = 3 };
		ok(proto_client_open(&cc, &c[i]));
	}
	proto_server_stats ss;
	for (int i = 0; i < 200; i++) {
		proto_server_stats_get(srv, &ss);
		if (ss.conns_refused >= 2)
			break;
		dtx_sleep_ms(10);
	}
	assert_true(ss.conns_refused >= 2);
	assert_true(ss.conns <= 2);
	for (int i = 0; i < 4; i++)
		proto_client_close(c[i]);
	proto_server_close(srv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_authz_table),
		cmocka_unit_test(test_subject),
		cmocka_unit_test(test_max_conns),
		cmocka_unit_test(test_tls_open),
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_tls_rpc),
		cmocka_unit_test(test_unauthenticated),
		cmocka_unit_test(test_hello_binds_pipe),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
