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
// "participant" (the first participant's). For SECONDS it loops: one READ
// of every account at each participant, with the client certificate (a
// read blocked by a prepared intent names its txid: a recent, real
// transaction, as a participant would learn it from a PREPARE), and a
// forged COMMIT (commit ts now) and ABORT for that txid at every
// participant at once; every 100 ms the same again for every txid learned
// so far, for the txids the old clock-based scheme would have made in the
// last 30 ms (ms << 16 | n), and for small ones. It prints one line:
//   sent N refused R accepted A learned L refused_delta D raced T
// where refused counts the ERROR replies, accepted the other replies,
// learned the txids found through blocked reads, raced the transactions
// of its own raced with forgeries, and refused_delta how much the
// participants' refused_* HEALTH counters grew meanwhile. Exits 0 when
// it could talk to every participant, 1 otherwise.

#include <inttypes.h>
#include <stdatomic.h>
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
	proto_client *coord; // the coordinator, as the client
	dtx_topo topo;
	uint64_t own; // transactions of its own raced with forgeries
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

// READs every account at participant i in one request; a read blocked
// by a prepared intent names its txid, which is learned (and true).
static bool
learn(spray *s, uint32_t i, int64_t accounts)
{
	char keys[64][32];
	proto_bytes k[64];
	uint32_t n = 0;
	for (int64_t a = 0; a < accounts && n < 64; a++, n++) {
		hx_acct_key(keys[n], sizeof(keys[n]), a);
		k[n] = (proto_bytes) { (uint8_t *)keys[n], strlen(keys[n]) };
	}
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_READ);
	req.u.read.n_keys = n;
	req.u.read.keys = k;
	proto_call_opts o = { .timeout_ms = 1000, .idempotent = true };
	dtx_err rv = proto_client_call(s->rd[i], &req, &rep, &o);
	if (rv != DTX_OK && rv != DTX_EREFUSED)
		return false;
	uint64_t tx = rv == DTX_OK && rep.hdr.type == PROTO_READ_REPLY
	    ? rep.u.read_reply.blocked_txid
	    : 0;
	proto_msg_free(&rep);
	if (tx == 0)
		return false;
	s->txids[s->next] = tx;
	s->next = (s->next + 1) % LEARN_MAX;
	s->ntx += s->ntx < LEARN_MAX;
	s->learned++;
	return true;
}

// A txid just learned gets a forged COMMIT and ABORT at every
// participant at once, while its transaction may still be in doubt.
static void
strike(spray *s, uint64_t tx)
{
	for (uint32_t i = 0; i < s->n; i++) {
		forge(s, i, PROTO_COMMIT, tx);
		forge(s, i, PROTO_ABORT, tx);
	}
}

typedef struct own_call {
	atomic_bool done;
} own_call;

static void
own_done(void *arg, dtx_err err, proto_msg *rep)
{
	own_call *o = arg;
	if ((err == DTX_OK || err == DTX_EREFUSED) && rep != NULL)
		proto_msg_free(rep);
	atomic_store(&o->done, true);
}

// A transaction of the spray's own, as the client, with a txid it chose:
// PUTs on two keys outside the bank ("spray:<n>") owned by different
// participants. Forged COMMIT and ABORT for that txid go to every
// participant while the coordinator prepares it: a real transaction in
// flight whose id the attacker knows.
static void
race_own(spray *s)
{
	char k[2][32];
	uint32_t owner[2] = { 0, 0 };
	for (uint32_t n = 0, got = 0; got < 2 && n < 1000; n++) {
		snprintf(k[got], sizeof(k[got]), "spray:%u", n);
		owner[got] = dtx_topo_route(&s->topo, k[got], strlen(k[got]));
		got += got == 0 || owner[1] != owner[0];
	}
	proto_op ops[2];
	for (int i = 0; i < 2; i++) {
		memset(&ops[i], 0, sizeof(ops[i]));
		ops[i].kind = PROTO_OP_PUT;
		ops[i].key = (proto_bytes) { (uint8_t *)k[i], strlen(k[i]) };
		ops[i].value = (proto_bytes) { (uint8_t *)"x", 1 };
	}
	uint64_t tx = 0;
	if (dtx_random_u64(&tx) != DTX_OK)
		return;
	tx = (tx >> 1) | 1; // neither 0 nor the reserved maximum
	proto_msg req;
	proto_msg_init(&req, PROTO_TXN);
	req.u.txn.mode = PROTO_MODE_2PC;
	req.u.txn.n_ops = 2;
	req.u.txn.ops = ops;
	req.u.txn.txid = tx;
	own_call o;
	atomic_init(&o.done, false);
	proto_call_opts opts = { .timeout_ms = 5000 };
	if (proto_client_call_async(s->coord, &req, &opts, own_done, &o) !=
	    DTX_OK)
		return;
	for (uint32_t i = 0; i < s->n; i++) {
		forge(s, i, PROTO_ABORT, tx);
		forge(s, i, PROTO_COMMIT, tx);
	}
	while (!atomic_load(&o.done))
		dtx_sleep_ms(1);
	s->own++;
	s->txids[s->next] = tx;
	s->next = (s->next + 1) % LEARN_MAX;
	s->ntx += s->ntx < LEARN_MAX;
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
	const dtx_node *co = dtx_topo_first(&t, DTX_ROLE_COORDINATOR);
	s->topo = t;
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
	if (co == NULL)
		return -1;
	proto_client_cfg cc = { .url = co->url,
		.vc_nodes = t.max_id,
		.timeout_ms = 5000,
		.connect_wait_ms = 3000,
		.tls = s->rd_tls,
		.check_server = true,
		.server_node = co->id };
	if (proto_client_open(&cc, &s->coord) != DTX_OK)
		return -1;
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
	proto_client_close(s->coord);
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
	uint64_t next_round = 0;
	while (dtx_mono_ns() < end) {
		for (uint32_t i = 0; i < s.n; i++)
			if (learn(&s, i, accounts))
				strike(&s,
				    s.txids[(s.next + LEARN_MAX - 1) %
				        LEARN_MAX]);
		// Every 100 ms: a transaction of its own raced with forged
		// decisions, then everything learned so far, and guesses.
		if (dtx_mono_ns() >= next_round) {
			race_own(&s);
			round_of(&s);
			next_round = dtx_mono_ns() + 100000000u;
		}
	}
	int64_t after = refusals(&s);
	printf("sent %" PRIu64 " refused %" PRIu64 " accepted %" PRIu64
	       " learned %" PRIu64 " refused_delta %" PRId64 " raced %" PRIu64
	       "\n",
	    s.sent, s.refused, s.accepted, s.learned,
	    before >= 0 && after >= 0 ? after - before : -1, s.own);
	close_all(&s);
	return before >= 0 && after >= 0 ? 0 : 1;
}
