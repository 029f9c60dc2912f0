// SPDX-License-Identifier: MIT
//
// test_proto_codec.c's samples and equality for the operator's messages
// (TXN_LIST .. TXN_RESOLVE_REPLY). Included by that file only, after its
// helpers (ok, key, str_eq, bytes_eq, SCALARS_EQ).

#ifndef PROTO_CODEC_OPER_H
#define PROTO_CODEC_OPER_H

static void
sample_oper(proto_type t, proto_msg *m)
{
	switch (t) {
	case PROTO_TXN_LIST:
		m->u.txid.txid = 77;
		break;
	case PROTO_TXN_LIST_REPLY: {
		proto_txn_list_reply *l = &m->u.txn_list_reply;
		l->n_txs = 2;
		l->txs = dtx_calloc(2, sizeof(proto_indoubt));
		assert_non_null(l->txs);
		for (uint32_t i = 0; i < 2; i++) {
			proto_indoubt *x = &l->txs[i];
			x->txid = 1ULL << (40 + i);
			x->state =
			    i ? PROTO_TS_PRECOMMITTED : PROTO_TS_PREPARED;
			x->mode = i ? PROTO_MODE_3PC : PROTO_MODE_2PC;
			x->coord = 0;
			x->n_peers = 2;
			x->peers[0] = 1;
			x->peers[1] = 31;
			x->age_ms = 65000 + i;
			x->prepare_ts = clk_ts_make(1700000000100ULL, 2);
			x->commit_ts = i ? clk_ts_make(1700000000200ULL, 0) : 0;
			x->n_keys = i + 1;
			key(&x->keys[0], "acct:1");
			if (i)
				key(&x->keys[1], "acct:22");
			x->keys_total = 3;
			ok(proto_str_set(
			    &x->wait, "coordinator 0 unreachable"));
		}
		l->n_heur = 1;
		l->heur = dtx_calloc(1, sizeof(proto_heur));
		assert_non_null(l->heur);
		proto_heur *h = &l->heur[0];
		h->txid = 99;
		h->outcome = PROTO_TS_ABORTED;
		h->at_ms = 1700000000300ULL;
		h->by = 4;
		ok(proto_str_set(&h->who, "admin 4"));
		ok(proto_str_set(&h->why, ""));
		h->coord = 0;
		h->mode = PROTO_MODE_2PC;
		h->verdict = PROTO_HEUR_HAZARD;
		h->coord_outcome = PROTO_TS_COMMITTED;
		h->verdict_ms = 1700000000400ULL;
		l->more = 5;
		l->state = PROTO_TS_COMMITTED;
		l->commit_ts = clk_ts_make(1700000000500ULL, 3);
		break;
	}
	case PROTO_TXN_RESOLVE:
		m->u.txn_resolve.txid = 99;
		m->u.txn_resolve.commit = true;
		ok(proto_str_set(&m->u.txn_resolve.reason, "ticket 12"));
		break;
	case PROTO_TXN_RESOLVE_REPLY:
		m->u.txn_resolve_reply.txid = 99;
		m->u.txn_resolve_reply.outcome = PROTO_TS_COMMITTED;
		m->u.txn_resolve_reply.commit_ts = clk_ts_make(17, 1);
		m->u.txn_resolve_reply.heuristic = true;
		ok(proto_str_set(&m->u.txn_resolve_reply.reason, "admin 4"));
		break;
	default:
		fail_msg("no sample for type %d", (int)t);
	}
}

static void
eq_indoubt(const proto_indoubt *x, const proto_indoubt *y)
{
	assert_true(x->txid == y->txid);
	assert_int_equal(x->state, y->state);
	assert_int_equal(x->mode, y->mode);
	assert_int_equal(x->coord, y->coord);
	SCALARS_EQ(x->peers, x->n_peers, y->peers, y->n_peers);
	assert_true(x->age_ms == y->age_ms);
	assert_true(x->prepare_ts == y->prepare_ts);
	assert_true(x->commit_ts == y->commit_ts);
	assert_int_equal(x->n_keys, y->n_keys);
	for (uint32_t i = 0; i < x->n_keys; i++)
		bytes_eq(&x->keys[i], &y->keys[i]);
	assert_true(x->keys_total == y->keys_total);
	str_eq(x->wait, y->wait);
}

static void
eq_heur(const proto_heur *x, const proto_heur *y)
{
	assert_true(x->txid == y->txid);
	assert_int_equal(x->outcome, y->outcome);
	assert_true(x->commit_ts == y->commit_ts);
	assert_true(x->at_ms == y->at_ms);
	assert_int_equal(x->by, y->by);
	str_eq(x->who, y->who);
	str_eq(x->why, y->why);
	assert_int_equal(x->coord, y->coord);
	assert_int_equal(x->mode, y->mode);
	assert_int_equal(x->verdict, y->verdict);
	assert_int_equal(x->coord_outcome, y->coord_outcome);
	assert_true(x->verdict_ms == y->verdict_ms);
}

static void
eq_oper(const proto_msg *a, const proto_msg *b)
{
	switch (a->hdr.type) {
	case PROTO_TXN_LIST:
		assert_true(a->u.txid.txid == b->u.txid.txid);
		break;
	case PROTO_TXN_LIST_REPLY: {
		const proto_txn_list_reply *x = &a->u.txn_list_reply;
		const proto_txn_list_reply *y = &b->u.txn_list_reply;
		assert_int_equal(x->n_txs, y->n_txs);
		for (uint32_t i = 0; i < x->n_txs; i++)
			eq_indoubt(&x->txs[i], &y->txs[i]);
		assert_int_equal(x->n_heur, y->n_heur);
		for (uint32_t i = 0; i < x->n_heur; i++)
			eq_heur(&x->heur[i], &y->heur[i]);
		assert_true(x->more == y->more);
		assert_int_equal(x->state, y->state);
		assert_true(x->commit_ts == y->commit_ts);
		break;
	}
	case PROTO_TXN_RESOLVE:
		assert_true(a->u.txn_resolve.txid == b->u.txn_resolve.txid);
		assert_int_equal(
		    a->u.txn_resolve.commit, b->u.txn_resolve.commit);
		str_eq(a->u.txn_resolve.reason, b->u.txn_resolve.reason);
		break;
	case PROTO_TXN_RESOLVE_REPLY: {
		const proto_txn_resolve_reply *x = &a->u.txn_resolve_reply;
		const proto_txn_resolve_reply *y = &b->u.txn_resolve_reply;
		assert_true(x->txid == y->txid);
		assert_int_equal(x->outcome, y->outcome);
		assert_true(x->commit_ts == y->commit_ts);
		assert_int_equal(x->heuristic, y->heuristic);
		str_eq(x->reason, y->reason);
		break;
	}
	default:
		break;
	}
}

#endif // PROTO_CODEC_OPER_H
