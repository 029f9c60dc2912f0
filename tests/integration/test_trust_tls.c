// SPDX-License-Identifier: MIT
//
// The trust boundary with a real participant over mutual TLS, certificates
// made by openssl in the test's directory: a client without a certificate
// and one from another CA cannot connect; a client certificate sending
// COMMIT/ABORT/PREPARE/STEP/FAULT is refused and nothing changes; a
// participant certificate forging a decision for a transaction whose
// PREPARED record names coordinator 0 is refused; FAULT from a harness
// certificate is refused without --enable-faults; the daemon refuses to
// start on plaintext without --insecure or on tls+tcp without
// certificates; a client whose connection never finishes its hello closes
// it and connects again; and a coordinator with two participants, all over
// mutual TLS, commits a client's transfer.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto.h"
#include "test_trust_util.h"

#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#define ok(x) assert_int_equal((x), DTX_OK)

typedef struct fx {
	char dir[64];
	char topo[128];
	char bin[512];
	char url[4][128]; // by node id: 0 coordinator, 1 and 2 participants
	pid_t pid;
	pid_t more[2]; // coordinator 0 and participant 2, once started
	proto_tls *coord, *part2, *client, *harness, *evil, *stranger;
	proto_client *as_coord, *as_part2, *as_client, *as_harness;
	uint64_t next_txid;
} fx;

static int
free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t n = sizeof(a);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &n), 0);
	close(s);
	return ntohs(a.sin_port);
}

// Starts argv[0] with argv (NULL-terminated), output to DIR/name.log.
static pid_t
spawn(fx *f, const char *name, char *const argv[])
{
	char log[256];
	snprintf(log, sizeof(log), "%s/%s.log", f->dir, name);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

// Runs the participant with argv to its end (it must refuse to start):
// its exit status, and whether its log holds want.
static int
run_refused(fx *f, const char *name, char *const argv[], const char *want)
{
	pid_t pid = spawn(f, name, argv);
	int st = 0;
	for (int i = 0; i < 500; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		dtx_sleep_ms(10);
	}
	if (waitpid(pid, &st, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		fail_msg("%s kept running", name);
	}
	char log[256], buf[4096] = "";
	snprintf(log, sizeof(log), "%s/%s.log", f->dir, name);
	FILE *fp = fopen(log, "r");
	assert_non_null(fp);
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	if (strstr(buf, want) == NULL)
		fail_msg("%s: no '%s' in: %s", name, want, buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static proto_client *
client_as(fx *f, proto_tls *t, uint32_t timeout_ms)
{
	proto_client_cfg cc = { .url = f->url[1],
		.vc_nodes = 4,
		.timeout_ms = timeout_ms,
		.connect_wait_ms = timeout_ms,
		.tls = t,
		.check_server = true,
		.server_node = 1 };
	proto_client *c = NULL;
	ok(proto_client_open(&cc, &c));
	return c;
}

static void
make_certs(fx *f)
{
	assert_true(tt_ca(f->dir, "ca"));
	assert_true(tt_ca(f->dir, "evil"));
	assert_true(tt_cert(f->dir, "ca", "c0", "/CN=coordinator-0"));
	assert_true(tt_cert(f->dir, "ca", "p1", "/CN=participant-1"));
	assert_true(tt_cert(f->dir, "ca", "p2", "/CN=participant-2"));
	assert_true(tt_cert(f->dir, "ca", "k3", "/CN=client-3"));
	assert_true(tt_cert(f->dir, "ca", "h3", "/CN=3/OU=harness"));
	// A coordinator the topology does not know.
	assert_true(tt_cert(f->dir, "ca", "c5", "/CN=coordinator-5"));
	assert_true(tt_cert(f->dir, "evil", "e3", "/CN=client-3"));
	ok(tt_tls(f->dir, "ca", "c0", &f->coord));
	ok(tt_tls(f->dir, "ca", "p2", &f->part2));
	ok(tt_tls(f->dir, "ca", "k3", &f->client));
	ok(tt_tls(f->dir, "ca", "h3", &f->harness));
	ok(tt_tls(f->dir, "evil", "e3", &f->evil));
	ok(tt_tls(f->dir, "ca", "c5", &f->stranger));
}

static void
write_topology(fx *f)
{
	for (int i = 0; i < 3; i++)
		snprintf(f->url[i], sizeof(f->url[i]), "tls+tcp://127.0.0.1:%d",
		    free_port());
	snprintf(f->topo, sizeof(f->topo), "%s/topology", f->dir);
	FILE *fp = fopen(f->topo, "w");
	assert_non_null(fp);
	fprintf(fp,
	    "coordinator 0 %s\nparticipant 1 %s\nparticipant 2 %s\n"
	    "client 3\n",
	    f->url[0], f->url[1], f->url[2]);
	fclose(fp);
}

static int
setup(void **state)
{
	if (!tt_have_openssl()) {
		fprintf(stderr, "openssl missing: skipped\n");
		*state = NULL;
		return 0;
	}
	fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->next_txid = 1000;
	snprintf(f->dir, sizeof(f->dir), "/tmp/dtx-trust-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	const char *root = getenv("DTX_BUILD_ROOT");
	snprintf(f->bin, sizeof(f->bin), "%s/participant/dtx-participant",
	    root ? root : "build");
	make_certs(f);
	write_topology(f);
	char data[128], ca[128], crt[128], key[128];
	snprintf(data, sizeof(data), "%s/data1", f->dir);
	snprintf(ca, sizeof(ca), "%s/ca.crt", f->dir);
	snprintf(crt, sizeof(crt), "%s/p1.crt", f->dir);
	snprintf(key, sizeof(key), "%s/p1.key", f->dir);
	char *argv[] = { f->bin, "--node-id", "1", "--topology", f->topo,
		"--data", data, "--tls-ca", ca, "--tls-cert", crt, "--tls-key",
		key, "--log-level", "info", NULL };
	f->pid = spawn(f, "p1", argv);
	f->as_coord = client_as(f, f->coord, 3000);
	f->as_part2 = client_as(f, f->part2, 3000);
	f->as_client = client_as(f, f->client, 3000);
	f->as_harness = client_as(f, f->harness, 3000);
	// Up when it answers the coordinator's PING.
	proto_retry r = { .attempts = 100, .base_ms = 100, .cap_ms = 200 };
	proto_call_opts o = { .retry = &r };
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_PING);
	ok(proto_client_call(f->as_coord, &req, &rep, &o));
	assert_int_equal(rep.hdr.type, PROTO_PONG);
	proto_msg_free(&rep);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fx *f = *state;
	if (f == NULL)
		return 0;
	proto_client_close(f->as_coord);
	proto_client_close(f->as_part2);
	proto_client_close(f->as_client);
	proto_client_close(f->as_harness);
	if (f->pid > 0) {
		kill(f->pid, SIGTERM);
		waitpid(f->pid, NULL, 0);
	}
	for (int i = 0; i < 2; i++)
		if (f->more[i] > 0) {
			kill(f->more[i], SIGTERM);
			waitpid(f->more[i], NULL, 0);
		}
	proto_tls_close(f->coord);
	proto_tls_close(f->part2);
	proto_tls_close(f->client);
	proto_tls_close(f->harness);
	proto_tls_close(f->evil);
	proto_tls_close(f->stranger);
	if (getenv("DTX_KEEP_TEST_DIR") == NULL)
		dtx_rmtree(f->dir);
	free(f);
	return 0;
}

#define NEED_FX()                                                              \
	fx *f = *state;                                                        \
	if (f == NULL)                                                         \
	skip()

// One call; DTX_OK or DTX_EREFUSED leave *rep to free.
static dtx_err
call(proto_client *c, proto_msg *req, proto_msg *rep)
{
	proto_call_opts o = { .timeout_ms = 3000 };
	return proto_client_call(c, req, rep, &o);
}

// req must be refused by the daemon with DTX_EPERM.
static void
refused(proto_client *c, proto_msg *req, const char *what)
{
	proto_msg rep;
	dtx_err rv = call(c, req, &rep);
	if (rv != DTX_EREFUSED)
		fail_msg("%s: %s, not refused", what, dtx_strerror(rv));
	if (rep.u.error.code != DTX_EPERM)
		fail_msg("%s: refused with %s (%s)", what,
		    dtx_strerror(rep.u.error.code), rep.u.error.reason);
	proto_msg_free(&rep);
}

static proto_op
op_add(const char *key, int64_t delta, int64_t min)
{
	return (proto_op) { .kind = PROTO_OP_ADD,
		.key = { .p = (uint8_t *)key, .n = (uint32_t)strlen(key) },
		.delta = delta,
		.min = min };
}

static proto_op
op_put(const char *key, int64_t v, uint8_t *buf)
{
	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t)((uint64_t)v >> (8 * i));
	return (proto_op) { .kind = PROTO_OP_PUT,
		.key = { .p = (uint8_t *)key, .n = (uint32_t)strlen(key) },
		.value = { .p = buf, .n = 8 } };
}

static void
prepare_msg(
    proto_msg *m, uint64_t txid, uint32_t coord, proto_op *ops, uint32_t n)
{
	proto_msg_init(m, PROTO_PREPARE);
	m->u.prepare.txid = txid;
	m->u.prepare.coord = coord;
	m->u.prepare.ops = ops;
	m->u.prepare.n_ops = n;
}

static void
txid_msg(proto_msg *m, proto_type t, uint64_t txid, clk_ts cts)
{
	proto_msg_init(m, t);
	m->u.txid.txid = txid;
	m->u.txid.commit_ts = cts;
}

// As coordinator 0: PREPARE txid with ops, YES; returns the prepare ts.
static clk_ts
prepare_yes(fx *f, uint64_t txid, proto_op *ops, uint32_t n)
{
	proto_msg req, rep;
	prepare_msg(&req, txid, 0, ops, n);
	ok(call(f->as_coord, &req, &rep));
	assert_int_equal(rep.hdr.type, PROTO_VOTE);
	assert_true(rep.u.vote.yes);
	clk_ts pts = rep.u.vote.prepare_ts;
	proto_msg_free(&rep);
	return pts;
}

static void
decide(fx *f, proto_type t, uint64_t txid, clk_ts cts)
{
	proto_msg req, rep;
	txid_msg(&req, t, txid, cts);
	ok(call(f->as_coord, &req, &rep));
	assert_int_equal(rep.hdr.type, PROTO_ACK);
	proto_msg_free(&rep);
}

// The state participant 1 reports for txid (asked as coordinator 0).
static proto_txn_state
status(fx *f, uint64_t txid)
{
	proto_msg req, rep;
	txid_msg(&req, PROTO_STATUS, txid, 0);
	ok(call(f->as_coord, &req, &rep));
	assert_int_equal(rep.hdr.type, PROTO_STATUS_REPLY);
	proto_txn_state st = rep.u.status_reply.state;
	proto_msg_free(&rep);
	return st;
}

static int64_t
balance(fx *f, const char *key)
{
	proto_msg req, rep;
	proto_bytes k = { .p = (uint8_t *)key, .n = (uint32_t)strlen(key) };
	proto_msg_init(&req, PROTO_READ);
	req.u.read.keys = &k;
	req.u.read.n_keys = 1;
	ok(call(f->as_client, &req, &rep));
	assert_int_equal(rep.hdr.type, PROTO_READ_REPLY);
	assert_int_equal(rep.u.read_reply.status, PROTO_READ_OK);
	assert_int_equal(rep.u.read_reply.n_entries, 1);
	const proto_entry *e = &rep.u.read_reply.entries[0];
	assert_true(e->found);
	int64_t v = e->ival;
	proto_msg_free(&rep);
	return v;
}

static int64_t
counter(proto_client *c, const char *name)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_HEALTH);
	ok(call(c, &req, &rep));
	int64_t v = -1;
	for (uint32_t i = 0; i < rep.u.health_reply.n_counters; i++)
		if (strcmp(rep.u.health_reply.counters[i].name, name) == 0)
			v = rep.u.health_reply.counters[i].value;
	proto_msg_free(&rep);
	return v;
}

// Sets key to v through a committed transaction of coordinator 0.
static void
put(fx *f, const char *key, int64_t v)
{
	uint8_t buf[8];
	proto_op op = op_put(key, v, buf);
	uint64_t txid = f->next_txid++;
	clk_ts pts = prepare_yes(f, txid, &op, 1);
	decide(f, PROTO_COMMIT, txid, pts + 1);
}

static void
test_mtls_serves(void **state)
{
	NEED_FX();
	put(f, "acct:a", 100);
	assert_int_equal(balance(f, "acct:a"), 100);
	assert_int_equal(counter(f->as_client, "insecure"), 0);
	assert_int_equal(counter(f->as_client, "faults_enabled"), 0);
	assert_true(counter(f->as_client, "hellos") >= 2);
}

// No certificate: the TLS handshake needs one, so no connection ever
// comes up and nothing is delivered.
static void
test_no_certificate(void **state)
{
	NEED_FX();
	char path[256];
	snprintf(path, sizeof(path), "%s/ca.crt", f->dir);
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	static char ca[8192];
	size_t n = fread(ca, 1, sizeof(ca) - 1, fp);
	ca[n] = '\0';
	fclose(fp);
	nng_tls_config *tc;
	assert_int_equal(nng_tls_config_alloc(&tc, NNG_TLS_MODE_CLIENT), 0);
	assert_int_equal(nng_tls_config_ca_chain(tc, ca, NULL), 0);
	nng_socket sock;
	nng_dialer d;
	assert_int_equal(nng_req0_open(&sock), 0);
	assert_int_equal(nng_dialer_create(&d, sock, f->url[1]), 0);
	assert_int_equal(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tc), 0);
	assert_int_equal(nng_dialer_start(d, NNG_FLAG_NONBLOCK), 0);
	nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, 1500);
	nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 1500);
	proto_msg req;
	proto_msg_init(&req, PROTO_PING);
	req.hdr.id = 1;
	req.hdr.from = 3;
	nng_msg *m;
	assert_int_equal(nng_msg_alloc(&m, 0), 0);
	ok(proto_encode(&req, m));
	int rv = nng_sendmsg(sock, m, 0);
	if (rv == 0) {
		// Queued in the socket: no answer can come.
		assert_int_not_equal(nng_recvmsg(sock, &m, 0), 0);
	} else {
		nng_msg_free(m);
	}
	nng_close(sock);
	nng_tls_config_free(tc);
	// The daemon is still up for the others.
	assert_int_equal(balance(f, "acct:a"), 100);
}

static void
test_other_ca(void **state)
{
	NEED_FX();
	proto_client *c = client_as(f, f->evil, 1000);
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_PING);
	assert_int_equal(call(c, &req, &rep), DTX_EUNREACH);
	assert_false(proto_client_connected(c));
	proto_client_close(c);
}

static void
test_client_cannot_decide(void **state)
{
	NEED_FX();
	proto_op debit = op_add("acct:a", -40, 0);
	uint64_t txid = f->next_txid++;
	clk_ts pts = prepare_yes(f, txid, &debit, 1);
	int64_t before = counter(f->as_client, "refused_role");
	proto_msg m;
	txid_msg(&m, PROTO_COMMIT, txid, pts + 1);
	refused(f->as_client, &m, "COMMIT from a client");
	txid_msg(&m, PROTO_ABORT, txid, 0);
	refused(f->as_client, &m, "ABORT from a client");
	proto_op credit = op_add("acct:a", 1000000, 0);
	prepare_msg(&m, f->next_txid++, 3, &credit, 1);
	refused(f->as_client, &m, "PREPARE from a client");
	proto_msg_init(&m, PROTO_STEP);
	m.u.step.gid = "g-forged";
	m.u.step.branch = 0;
	m.u.step.phase = PROTO_PHASE_ACTION;
	m.u.step.ops = &credit;
	m.u.step.n_ops = 1;
	refused(f->as_client, &m, "STEP from a client");
	ok(proto_fault_init(&m, "wal_sync", NULL, 0, NULL));
	refused(f->as_client, &m, "FAULT from a client");
	// Nothing changed: still in doubt, and the balance as it was.
	assert_int_equal(status(f, txid), PROTO_TS_PREPARED);
	assert_int_equal(counter(f->as_client, "refused_role"), before + 5);
	decide(f, PROTO_ABORT, txid, 0);
	assert_int_equal(balance(f, "acct:a"), 100);
}

static void
test_forged_decision(void **state)
{
	NEED_FX();
	proto_op debit = op_add("acct:a", -40, 0);
	uint64_t txid = f->next_txid++;
	clk_ts pts = prepare_yes(f, txid, &debit, 1);
	proto_msg m;
	// Participant 2 is not in this record: it may decide nothing.
	txid_msg(&m, PROTO_COMMIT, txid, pts + 1);
	refused(f->as_part2, &m, "COMMIT from a participant");
	txid_msg(&m, PROTO_ABORT, txid, 0);
	refused(f->as_part2, &m, "ABORT from a participant");
	txid_msg(&m, PROTO_PRE_COMMIT, txid, pts + 1);
	refused(f->as_part2, &m, "PRE_COMMIT from a participant");
	txid_msg(&m, PROTO_DO_COMMIT, txid, 0);
	refused(f->as_part2, &m, "DO_COMMIT from a participant");
	assert_true(counter(f->as_coord, "refused_decision") >= 3);
	// A coordinator certificate the topology does not know.
	proto_client *c5 = client_as(f, f->stranger, 3000);
	txid_msg(&m, PROTO_COMMIT, txid, pts + 1);
	refused(c5, &m, "COMMIT from an unknown coordinator");
	proto_client_close(c5);
	assert_true(counter(f->as_coord, "refused_identity") >= 1);
	// A repeated PREPARE with other ops, and reserved txids.
	proto_op more = op_add("acct:a", -90, 0);
	prepare_msg(&m, txid, 0, &more, 1);
	refused(f->as_coord, &m, "PREPARE with other ops");
	proto_op floor = op_add("acct:a", -500, INT64_MIN);
	prepare_msg(&m, f->next_txid++, 0, &floor, 1);
	refused(f->as_coord, &m, "PREPARE with an INT64_MIN floor");
	proto_msg rep;
	txid_msg(&m, PROTO_ABORT, UINT64_MAX, 0);
	assert_int_equal(call(f->as_coord, &m, &rep), DTX_EREFUSED);
	assert_int_equal(rep.u.error.code, DTX_EINVAL);
	proto_msg_free(&rep);
	// Still in doubt, the balance untouched; its coordinator decides.
	assert_int_equal(status(f, txid), PROTO_TS_PREPARED);
	decide(f, PROTO_COMMIT, txid, pts + 1);
	assert_int_equal(balance(f, "acct:a"), 60);
}

static void
test_fault_needs_flag(void **state)
{
	NEED_FX();
	proto_msg m, rep;
	ok(proto_fault_init(&m, "wal_sync", NULL, 0, NULL));
	assert_int_equal(call(f->as_harness, &m, &rep), DTX_EREFUSED);
	assert_int_equal(rep.u.error.code, DTX_EPERM);
	assert_non_null(strstr(rep.u.error.reason, "refused_faults_off"));
	proto_msg_free(&rep);
	assert_int_equal(counter(f->as_harness, "refused_faults_off"), 1);
	assert_int_equal(counter(f->as_harness, "faults"), 0);
	// The store still syncs: a commit goes through.
	put(f, "acct:b", 7);
	assert_int_equal(balance(f, "acct:b"), 7);
}

// Starts node id (coordinator 0 or participant 2) with its certificate.
static pid_t
start_node(fx *f, const char *bin, uint32_t id, const char *file)
{
	char data[128], ca[128], crt[128], key[128], idt[8];
	snprintf(idt, sizeof(idt), "%u", id);
	snprintf(data, sizeof(data), "%s/data%u", f->dir, id);
	snprintf(ca, sizeof(ca), "%s/ca.crt", f->dir);
	snprintf(crt, sizeof(crt), "%s/%s.crt", f->dir, file);
	snprintf(key, sizeof(key), "%s/%s.key", f->dir, file);
	char *argv[] = { (char *)bin, "--node-id", idt, "--topology", f->topo,
		"--data", data, "--tls-ca", ca, "--tls-cert", crt, "--tls-key",
		key, "--log-level", "info", NULL };
	return spawn(f, file, argv);
}

// The value of key at the participant that owns it.
static int64_t
owned_balance(fx *f, const dtx_topo *t, const char *key)
{
	uint32_t owner = dtx_topo_route(t, key, strlen(key));
	proto_client_cfg cc = { .url = f->url[owner],
		.vc_nodes = 4,
		.timeout_ms = 3000,
		.connect_wait_ms = 3000,
		.tls = f->client,
		.check_server = true,
		.server_node = owner };
	proto_client *c = NULL;
	ok(proto_client_open(&cc, &c));
	proto_client *keep = f->as_client;
	f->as_client = c;
	int64_t v = balance(f, key);
	f->as_client = keep;
	proto_client_close(c);
	return v;
}

// A whole cluster over mutual TLS: the coordinator's calls to the
// participants say hello like any client, and a client's transfer
// commits on both sides.
static void
test_cluster_over_tls(void **state)
{
	NEED_FX();
	char bin[512];
	const char *root = getenv("DTX_BUILD_ROOT");
	snprintf(bin, sizeof(bin), "%s/coordinator/dtx-coordinator",
	    root ? root : "build");
	f->more[0] = start_node(f, bin, 0, "c0");
	f->more[1] = start_node(f, f->bin, 2, "p2");
	dtx_topo t;
	char err[256];
	ok(dtx_topo_load(f->topo, &t, err, sizeof(err)));
	proto_client_cfg cc = { .url = f->url[0],
		.vc_nodes = 4,
		.timeout_ms = 5000,
		.connect_wait_ms = 5000,
		.tls = f->client,
		.check_server = true,
		.server_node = 0 };
	proto_client *c = NULL;
	ok(proto_client_open(&cc, &c));
	uint8_t b1[8], b2[8];
	proto_op put[2] = { op_put("tls:x", 50, b1), op_put("tls:y", 50, b2) };
	proto_op move[2] = { op_add("tls:x", -20, 0), op_add("tls:y", 20, 0) };
	proto_op *ops[2] = { put, move };
	proto_retry r = { .attempts = 50, .base_ms = 100, .cap_ms = 300 };
	proto_call_opts o = { .retry = &r };
	for (int i = 0; i < 2; i++) {
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_TXN);
		req.u.txn.mode = PROTO_MODE_2PC;
		req.u.txn.ops = ops[i];
		req.u.txn.n_ops = 2;
		ok(proto_client_call(c, &req, &rep, &o));
		assert_int_equal(rep.hdr.type, PROTO_TXN_REPLY);
		if (rep.u.txn_reply.outcome != PROTO_COMMITTED)
			fail_msg("txn %d: %s", i,
			    rep.u.txn_reply.reason ? rep.u.txn_reply.reason
			                           : "not committed");
		proto_msg_free(&rep);
	}
	proto_client_close(c);
	assert_int_equal(owned_balance(f, &t, "tls:x"), 30);
	assert_int_equal(owned_balance(f, &t, "tls:y"), 70);
	assert_true(counter(f->as_coord, "hellos") >= 5);
}

static void
test_startup_refusals(void **state)
{
	NEED_FX();
	char topo[128], data[128], ca[128], crt[128], key[128];
	snprintf(topo, sizeof(topo), "%s/plain-topology", f->dir);
	snprintf(data, sizeof(data), "%s/data-x", f->dir);
	FILE *fp = fopen(topo, "w");
	assert_non_null(fp);
	fprintf(fp,
	    "coordinator 0 tcp://127.0.0.1:%d\nparticipant 1 "
	    "tcp://127.0.0.1:%d\nclient 3\n",
	    free_port(), free_port());
	fclose(fp);
	char *plain[] = { f->bin, "--node-id", "1", "--topology", topo,
		"--data", data, NULL };
	assert_int_not_equal(run_refused(f, "plain", plain, "--insecure"), 0);
	char *tls[] = { f->bin, "--node-id", "1", "--topology", f->topo,
		"--data", data, "--insecure", NULL };
	assert_int_not_equal(
	    run_refused(f, "tlsnocert", tls, "needs --tls-ca"), 0);
	snprintf(ca, sizeof(ca), "%s/ca.crt", f->dir);
	snprintf(crt, sizeof(crt), "%s/p2.crt", f->dir);
	snprintf(key, sizeof(key), "%s/p2.key", f->dir);
	char *wrong[] = { f->bin, "--node-id", "1", "--topology", f->topo,
		"--data", data, "--tls-ca", ca, "--tls-cert", crt, "--tls-key",
		key, NULL };
	assert_int_not_equal(
	    run_refused(f, "wrongcert", wrong, "names participant 2"), 0);
}

static void
count_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p;
	(void)ev;
	atomic_fetch_add((atomic_int *)arg, 1);
}

// A server that completes the TLS handshake but never answers the hello
// (a peer gone quiet on a connection that stays up): the client's calls
// fail as not delivered, and once the connection has gone 5 s without a
// finished hello the client closes it, so the dialer connects again and
// a new hello runs (HELLO_STUCK), instead of waiting on it for ever.
static void
test_hello_stuck_reconnects(void **state)
{
	NEED_FX();
	char path[256], url[128];
	static char crt[8192], key[8192];
	const char *files[2] = { "p2.crt", "p2.key" };
	char *bufs[2] = { crt, key };
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
		FILE *fp = fopen(path, "r");
		assert_non_null(fp);
		size_t n = fread(bufs[i], 1, sizeof(crt) - 1, fp);
		bufs[i][n] = '\0';
		fclose(fp);
	}
	nng_tls_config *tc;
	assert_int_equal(nng_tls_config_alloc(&tc, NNG_TLS_MODE_SERVER), 0);
	assert_int_equal(nng_tls_config_own_cert(tc, crt, key, NULL), 0);
	nng_socket srv;
	nng_listener l;
	atomic_int conns = 0;
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", free_port());
	assert_int_equal(nng_rep0_open_raw(&srv), 0);
	assert_int_equal(
	    nng_pipe_notify(srv, NNG_PIPE_EV_ADD_POST, count_pipe, &conns), 0);
	assert_int_equal(nng_listener_create(&l, srv, url), 0);
	assert_int_equal(nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, tc), 0);
	assert_int_equal(nng_listener_start(l, 0), 0);

	proto_client_cfg cc = { .url = url,
		.vc_nodes = 4,
		.timeout_ms = 300,
		.connect_wait_ms = 300,
		.tls = f->client,
		.check_server = true,
		.server_node = 2 };
	proto_client *c = NULL;
	ok(proto_client_open(&cc, &c));
	uint64_t end = dtx_mono_ns() + 15000000000ull;
	while (atomic_load(&conns) < 2 && dtx_mono_ns() < end) {
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_PING);
		proto_call_opts o = { .timeout_ms = 300 };
		assert_int_equal(
		    proto_client_call(c, &req, &rep, &o), DTX_EUNREACH);
		dtx_sleep_ms(100);
	}
	fprintf(stderr, "# %d connections\n", atomic_load(&conns));
	assert_true(atomic_load(&conns) >= 2);
	proto_client_close(c);
	nng_close(srv);
	nng_tls_config_free(tc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mtls_serves),
		cmocka_unit_test(test_no_certificate),
		cmocka_unit_test(test_other_ca),
		cmocka_unit_test(test_hello_stuck_reconnects),
		cmocka_unit_test(test_client_cannot_decide),
		cmocka_unit_test(test_forged_decision),
		cmocka_unit_test(test_fault_needs_flag),
		cmocka_unit_test(test_startup_refusals),
		cmocka_unit_test(test_cluster_over_tls),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
