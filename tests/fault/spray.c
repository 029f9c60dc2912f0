// SPDX-License-Identifier: MIT
//
// dtx-spray: a hostile process with a valid certificate of a cluster that
// sprays forged decisions at every participant, for the forged-spray
// fault test.
//
//   dtx-spray DIR AS SECONDS ACCOUNTS
//
// DIR is a running cluster's directory (DIR/topology, DIR/certs); AS is
// the certificate to forge with: "client" (the client certificate) or
// "participant" (the first participant's). For SECONDS it loops: READs
// every account of every participant with the client certificate (a read
// blocked by a prepared intent names its txid: a recent, real
// transaction, as a participant would learn from a PREPARE), then sends
// COMMIT
// (commit ts now) and ABORT for each such txid, for the txids the old
// clock-based scheme would have made in the last 30 ms (ms << 16 | n),
// and for small ones, to every participant. It prints one line:
//   sent N refused R accepted A learned L refused_delta D
// where refused counts the ERROR replies, accepted the other replies,
// learned the real txids found, and refused_delta how much the
// participants' refused_* HEALTH counters grew meanwhile. Exits 0 when
// it could talk to every participant, 1 otherwise.

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define LEARN_MAX 256

typedef struct spray {
	proto_client *cl[DTX_TOPO_MAX]; // forges, as AS
	proto_client *rd[DTX_TOPO_MAX]; // reads, as the client
	uint32_t ids[DTX_TOPO_MAX];
	uint32_t n;
	uint64_t sent, refused, accepted, learned;
	uint64_t txids[LEARN_MAX]; // a ring of the real txids seen
	uint32_t ntx, next;
	proto_tls *tls, *rd_tls; // AS's certificate, the client's
} spray;

// The sum of every refused_* HEALTH counter of the participants, or -1.
static int64_t
refusals(spray *s)
{
	int64_t sum = 0;
	for (uint32_t i = 0; i < s->n; i++) {
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_HEALTH);
		proto_call_opts o = { .timeout_ms = 3000, .idempotent = true };
		dtx_err rv = proto_client_call(s->cl[i], &req, &rep, &o);
		if (rv == DTX_EREFUSED)
			proto_msg_free(&rep);
		if (rv != DTX_OK)
			return -1;
		const proto_health_reply *h = &rep.u.health_reply;
		for (uint32_t k = 0;
		     rep.hdr.type == PROTO_HEALTH_REPLY && k < h->n_counters;
		     k++)
			if (strncmp(h->counters[k].name, "refused_", 8) == 0)
				sum += h->counters[k].value;
		proto_msg_free(&rep);
	}
	return sum;
}

// One forged decision: the reply is counted, never trusted.
static void
forge(spray *s, uint32_t i, proto_type type, uint64_t tx)
{
	proto_msg req, rep;
	proto_msg_init(&req, type);
	req.u.txid.txid = tx;
	req.u.txid.commit_ts = clk_ts_make(dtx_wall_ns() / 1000000u, 0);
	proto_call_opts o = { .timeout_ms = 1000 };
	dtx_err rv = proto_client_call(s->cl[i], &req, &rep, &o);
	s->sent++;
	if (rv == DTX_EREFUSED)
		s->refused++;
	else if (rv == DTX_OK)
		s->accepted++;
	if (rv == DTX_OK || rv == DTX_EREFUSED)
		proto_msg_free(&rep);
}

// READs every account at participant i; a blocked read's txid is learned.
static void
learn(spray *s, uint32_t i, int64_t accounts)
{
	for (int64_t a = 0; a < accounts; a++) {
		char key[32];
		hx_acct_key(key, sizeof(key), a);
		proto_bytes k = { (uint8_t *)key, strlen(key) };
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_READ);
		req.u.read.n_keys = 1;
		req.u.read.keys = &k;
		proto_call_opts o = { .timeout_ms = 1000, .idempotent = true };
		dtx_err rv = proto_client_call(s->rd[i], &req, &rep, &o);
		if (rv != DTX_OK && rv != DTX_EREFUSED)
			continue;
		if (rv == DTX_OK && rep.hdr.type == PROTO_READ_REPLY &&
		    rep.u.read_reply.blocked_txid != 0) {
			s->txids[s->next] = rep.u.read_reply.blocked_txid;
			s->next = (s->next + 1) % LEARN_MAX;
			s->ntx += s->ntx < LEARN_MAX;
			s->learned++;
		}
		proto_msg_free(&rep);
	}
}

// Every participant gets COMMIT and ABORT for each txid it may hold.
static void
round_of(spray *s)
{
	uint64_t ms = dtx_wall_ns() / 1000000u;
	for (uint32_t i = 0; i < s->n; i++) {
		for (uint32_t t = 0; t < s->ntx; t++) {
			forge(s, i, PROTO_COMMIT, s->txids[t]);
			forge(s, i, PROTO_ABORT, s->txids[t]);
		}
		// The old clock-based ids of the last 30 ms, and small ones.
		for (uint64_t back = 0; back < 30; back += 3)
			for (uint32_t n = 0; n < 4; n++) {
				uint64_t tx = clk_ts_make(ms - back, n);
				forge(s, i,
				    back % 2 ? PROTO_ABORT : PROTO_COMMIT, tx);
			}
		for (uint64_t tx = 1; tx <= 8; tx++)
			forge(s, i, PROTO_COMMIT, tx);
	}
}

static int
open_all(spray *s, const char *dir, const char *as)
{
	char path[4096], err[512];
	dtx_topo t;
	snprintf(path, sizeof(path), "%s/topology", dir);
	if (dtx_topo_load(path, &t, err, sizeof(err)) != DTX_OK) {
		fprintf(stderr, "dtx-spray: %s: %s\n", path, err);
		return -1;
	}
	const dtx_node *me = strcmp(as, "participant") == 0
	    ? dtx_topo_first(&t, DTX_ROLE_PARTICIPANT)
	    : dtx_topo_first(&t, DTX_ROLE_CLIENT);
	if (me == NULL) {
		fprintf(stderr, "dtx-spray: no %s in %s\n", as, path);
		return -1;
	}
	const dtx_node *cn = dtx_topo_first(&t, DTX_ROLE_CLIENT);
	snprintf(path, sizeof(path), "%s/certs", dir);
	if (cn == NULL ||
	    hx_certs_open(path, hx_proto_role(me->role), me->id, &s->tls, err,
	        sizeof(err)) != DTX_OK ||
	    hx_certs_open(path, PROTO_ROLE_CLIENT, cn->id, &s->rd_tls, err,
	        sizeof(err)) != DTX_OK) {
		fprintf(stderr, "dtx-spray: %s\n", err);
		return -1;
	}
	for (uint32_t k = 0; k < t.nparts; k++) {
		const dtx_node *nd = dtx_topo_find(&t, t.parts[k]);
		proto_client_cfg cc = { .url = nd->url,
			.vc_nodes = t.max_id,
			.timeout_ms = 1000,
			.connect_wait_ms = 3000,
			.tls = s->tls,
			.check_server = true,
			.server_node = nd->id };
		if (proto_client_open(&cc, &s->cl[s->n]) != DTX_OK)
			return -1;
		cc.tls = s->rd_tls;
		if (proto_client_open(&cc, &s->rd[s->n]) != DTX_OK)
			return -1;
		s->ids[s->n++] = nd->id;
	}
	return 0;
}

// Closes every client (one half-opened by open_all too) and the TLS
// material.
static void
close_all(spray *s)
{
	for (uint32_t i = 0; i < DTX_TOPO_MAX; i++) {
		proto_client_close(s->cl[i]);
		proto_client_close(s->rd[i]);
	}
	proto_tls_close(s->tls);
	proto_tls_close(s->rd_tls);
}

int
main(int argc, char **argv)
{
	spray s;
	memset(&s, 0, sizeof(s));
	if (argc != 5 ||
	    (strcmp(argv[2], "client") && strcmp(argv[2], "participant"))) {
		fprintf(stderr,
		    "usage: dtx-spray DIR client|participant SECONDS "
		    "ACCOUNTS\n");
		return 2;
	}
	double secs = atof(argv[3]);
	int64_t accounts = atoll(argv[4]);
	if (open_all(&s, argv[1], argv[2]) != 0) {
		close_all(&s);
		return 1;
	}
	int64_t before = refusals(&s);
	uint64_t end = dtx_mono_ns() + (uint64_t)(secs * 1e9);
	while (dtx_mono_ns() < end) {
		for (uint32_t i = 0; i < s.n; i++)
			learn(&s, i, accounts);
		round_of(&s);
	}
	int64_t after = refusals(&s);
	printf("sent %" PRIu64 " refused %" PRIu64 " accepted %" PRIu64
	       " learned %" PRIu64 " refused_delta %" PRId64 "\n",
	    s.sent, s.refused, s.accepted, s.learned,
	    before >= 0 && after >= 0 ? after - before : -1);
	close_all(&s);
	return before >= 0 && after >= 0 ? 0 : 1;
}
