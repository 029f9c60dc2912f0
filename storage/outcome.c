// SPDX-License-Identifier: MIT
//
// Remembered outcomes: a bounded FIFO ring of decided transactions (txid
// -> committed at ts, or aborted) that answers STATUS queries and repeated
// decisions once the transaction itself is gone; collected by age and
// bounded by opts.outcome_max, oldest first.

#include "storage_int.h"

const stor__out *
stor__outcome_get(stor_kv *kv, uint64_t txid)
{
	uint64_t seq;
	if (!stor__map_get(&kv->outmap, txid, &seq))
		return NULL;
	size_t i = (kv->out_head + (size_t)(seq - kv->out_seq)) % kv->out_cap;
	return &kv->outs[i];
}

static void
outcome_pop(stor_kv *kv)
{
	const stor__out *o = &kv->outs[kv->out_head];
	uint64_t seq;
	if (stor__map_get(&kv->outmap, o->txid, &seq) && seq == kv->out_seq)
		stor__map_del(&kv->outmap, o->txid);
	kv->out_head = (kv->out_head + 1) % kv->out_cap;
	kv->out_n--;
	kv->out_seq++;
}

void
stor__outcome_put(
    stor_kv *kv, uint64_t txid, stor_tx_state st, clk_ts ts, uint64_t wall)
{
	if (kv->out_n == kv->out_cap && kv->out_cap < kv->opts.outcome_max) {
		size_t nc = kv->out_cap ? kv->out_cap * 2 : 256;
		if (nc > kv->opts.outcome_max)
			nc = kv->opts.outcome_max;
		stor__out *p = dtx_alloc(nc * sizeof(*p));
		if (p != NULL) {
			for (size_t i = 0; i < kv->out_n; i++)
				p[i] =
				    kv->outs[(kv->out_head + i) % kv->out_cap];
			dtx_free(kv->outs);
			kv->outs = p;
			kv->out_cap = nc;
			kv->out_head = 0;
		}
	}
	if (kv->out_cap == 0)
		return;
	if (kv->out_n == kv->out_cap)
		outcome_pop(kv);
	uint64_t seq = kv->out_seq + kv->out_n;
	if (stor__map_put(&kv->outmap, txid, seq) != DTX_OK) {
		DTX_LOGF(DTX_LOG_WARN, "OUTCOMEOOM",
		    DTX_FIELDS(DTX_LF_TXID(txid)),
		    "cannot remember the outcome: out of memory");
		return;
	}
	size_t i = (kv->out_head + kv->out_n) % kv->out_cap;
	kv->outs[i] = (stor__out) {
		.txid = txid, .commit_ts = ts, .wall_ms = wall, .state = st
	};
	kv->out_n++;
}

void
stor_kv_outcome_gc(stor_kv *kv, uint64_t older_than_ms)
{
	if (kv == NULL)
		return;
	uint64_t now = stor__wall_ms();
	pthread_mutex_lock(&kv->mu);
	while (kv->out_n > 0 &&
	    now - kv->outs[kv->out_head].wall_ms > older_than_ms)
		outcome_pop(kv);
	pthread_mutex_unlock(&kv->mu);
}
