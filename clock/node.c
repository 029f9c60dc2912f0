// SPDX-License-Identifier: MIT
//
// A daemon's clock: its HLC and its vector clock behind one mutex, so that
// each send, receive or local event gets both stamps as one step.

#include <pthread.h>
#include <string.h>

#include "clock.h"

struct clk_node {
	pthread_mutex_t mu; // guards vc and orders events on hlc
	clk_hlc *hlc; // owned
	clk_vc vc;
	uint32_t self;
	uint32_t n_nodes;
};

dtx_err
clk_node_open(clk_node **out, clk_source *src, uint32_t self_id,
    uint32_t n_nodes, uint64_t max_offset_ms, const char *bound_path)
{
	if (n_nodes == 0 || n_nodes > CLK_VC_MAX || self_id >= n_nodes)
		return DTX_EINVAL;
	clk_node *n = dtx_calloc(1, sizeof(*n));
	if (n == NULL)
		return DTX_ENOMEM;
	if (pthread_mutex_init(&n->mu, NULL) != 0) {
		dtx_free(n);
		return DTX_ENOMEM;
	}
	dtx_err err = clk_hlc_open(&n->hlc, src, max_offset_ms, bound_path);
	if (err != DTX_OK) {
		pthread_mutex_destroy(&n->mu);
		dtx_free(n);
		return err;
	}
	clk_vc_init(&n->vc, n_nodes);
	n->self = self_id;
	n->n_nodes = n_nodes;
	*out = n;
	return DTX_OK;
}

void
clk_node_close(clk_node *n)
{
	if (n == NULL)
		return;
	clk_hlc_close(n->hlc);
	pthread_mutex_destroy(&n->mu);
	dtx_free(n);
}

dtx_err
clk_node_send(clk_node *n, clk_ts *ts, clk_vc *vc)
{
	clk_ts t;
	pthread_mutex_lock(&n->mu);
	// The HLC goes first: it is the step that can fail, and the vector
	// clock must not tick for an event that did not happen.
	dtx_err err = clk_hlc_now(n->hlc, &t);
	if (err == DTX_OK) {
		n->vc.c[n->self]++;
		if (vc != NULL)
			*vc = n->vc;
		*ts = t;
	}
	pthread_mutex_unlock(&n->mu);
	return err;
}

dtx_err
clk_node_local(clk_node *n, clk_ts *ts)
{
	return clk_node_send(n, ts, NULL);
}

dtx_err
clk_node_recv(
    clk_node *n, clk_ts remote_ts, const clk_vc *remote_vc, clk_ts *out)
{
	return clk_node_recv_vc(n, remote_ts, remote_vc, out, NULL);
}

void
clk_node_vc_floor(clk_node *n, uint64_t floor)
{
	pthread_mutex_lock(&n->mu);
	if (n->vc.c[n->self] < floor)
		n->vc.c[n->self] = floor;
	pthread_mutex_unlock(&n->mu);
}

dtx_err
clk_node_recv_vc(clk_node *n, clk_ts remote_ts, const clk_vc *remote_vc,
    clk_ts *out, clk_vc *vc)
{
	if (remote_vc != NULL && remote_vc->n > n->n_nodes)
		return DTX_EINVAL;
	clk_ts t;
	pthread_mutex_lock(&n->mu);
	dtx_err err = clk_hlc_update(n->hlc, remote_ts, &t);
	if (err == DTX_OK) {
		if (remote_vc != NULL)
			clk_vc_merge(&n->vc, remote_vc);
		n->vc.c[n->self]++;
		if (out != NULL)
			*out = t;
		if (vc != NULL)
			*vc = n->vc;
	}
	pthread_mutex_unlock(&n->mu);
	return err;
}

dtx_err
clk_node_witness(clk_node *n, clk_ts ts)
{
	clk_ts t;
	pthread_mutex_lock(&n->mu);
	dtx_err err = clk_hlc_witness(n->hlc, ts, &t);
	if (err == DTX_OK)
		n->vc.c[n->self]++;
	pthread_mutex_unlock(&n->mu);
	return err;
}

clk_ts
clk_node_now(clk_node *n)
{
	return clk_hlc_peek(n->hlc);
}

void
clk_node_vc(clk_node *n, clk_vc *out)
{
	pthread_mutex_lock(&n->mu);
	*out = n->vc;
	pthread_mutex_unlock(&n->mu);
}

uint32_t
clk_node_self(const clk_node *n)
{
	return n->self;
}

uint32_t
clk_node_size(const clk_node *n)
{
	return n->n_nodes;
}

clk_hlc *
clk_node_hlc(clk_node *n)
{
	return n->hlc;
}

clk_source *
clk_node_source(clk_node *n)
{
	return clk_hlc_source(n->hlc);
}
