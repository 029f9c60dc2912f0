// SPDX-License-Identifier: MIT
//
// Vector clocks over node ids and the msgpack wire forms of vector clocks
// and HLC timestamps. Decoding is strict because every field comes from a
// peer that may be buggy or hostile.

#include <string.h>

#include "clock.h"

// clk_vc_unpack tracks seen keys in one 64-bit mask.
_Static_assert(CLK_VC_MAX <= 64, "CLK_VC_MAX must fit a uint64_t mask");

dtx_err
clk_ts_pack(msgpack_packer *pk, clk_ts ts)
{
	if (msgpack_pack_array(pk, 2) != 0 ||
	    msgpack_pack_uint64(pk, clk_ts_l(ts)) != 0 ||
	    msgpack_pack_uint32(pk, clk_ts_c(ts)) != 0)
		return DTX_ENOMEM;
	return DTX_OK;
}

dtx_err
clk_ts_unpack(const msgpack_object *obj, clk_ts *out)
{
	if (obj == NULL || obj->type != MSGPACK_OBJECT_ARRAY ||
	    obj->via.array.size != 2)
		return DTX_EPROTO;
	const msgpack_object *l = &obj->via.array.ptr[0];
	const msgpack_object *c = &obj->via.array.ptr[1];
	if (l->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    c->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return DTX_EPROTO;
	if (l->via.u64 > CLK_L_MAX || c->via.u64 > CLK_LOGICAL_MAX)
		return DTX_EPROTO;
	*out = clk_ts_make(l->via.u64, (uint32_t)c->via.u64);
	return DTX_OK;
}

dtx_err
clk_vc_init(clk_vc *vc, uint32_t n)
{
	if (n == 0 || n > CLK_VC_MAX)
		return DTX_EINVAL;
	memset(vc, 0, sizeof(*vc));
	vc->n = n;
	return DTX_OK;
}

dtx_err
clk_vc_tick(clk_vc *vc, uint32_t self)
{
	if (vc->n > CLK_VC_MAX || self >= vc->n)
		return DTX_EINVAL;
	vc->c[self]++;
	return DTX_OK;
}

dtx_err
clk_vc_merge(clk_vc *dst, const clk_vc *src)
{
	if (dst->n > CLK_VC_MAX || src->n > CLK_VC_MAX)
		return DTX_EINVAL;
	for (uint32_t i = 0; i < src->n; i++)
		if (src->c[i] > dst->c[i])
			dst->c[i] = src->c[i];
	if (src->n > dst->n)
		dst->n = src->n;
	return DTX_OK;
}

dtx_err
clk_vc_receive(clk_vc *vc, uint32_t self, const clk_vc *remote)
{
	// Check everything first so that a refused call changes nothing.
	if (vc->n > CLK_VC_MAX || remote->n > CLK_VC_MAX)
		return DTX_EINVAL;
	uint32_t n = vc->n > remote->n ? vc->n : remote->n;
	if (self >= n)
		return DTX_EINVAL;
	clk_vc_merge(vc, remote);
	vc->c[self]++;
	return DTX_OK;
}

clk_vc_order
clk_vc_compare(const clk_vc *a, const clk_vc *b)
{
	uint32_t n = a->n > b->n ? a->n : b->n;
	if (n > CLK_VC_MAX)
		n = CLK_VC_MAX;
	bool less = false, greater = false;
	for (uint32_t i = 0; i < n; i++) {
		// Entries at or past a clock's n are zero by construction, but
		// a caller's struct may hold anything there: read them as 0.
		uint64_t x = i < a->n ? a->c[i] : 0;
		uint64_t y = i < b->n ? b->c[i] : 0;
		if (x < y)
			less = true;
		else if (x > y)
			greater = true;
	}
	if (less && greater)
		return CLK_VC_CONCURRENT;
	if (less)
		return CLK_VC_BEFORE;
	if (greater)
		return CLK_VC_AFTER;
	return CLK_VC_EQUAL;
}

const char *
clk_vc_order_name(clk_vc_order o)
{
	switch (o) {
	case CLK_VC_EQUAL:
		return "equal";
	case CLK_VC_BEFORE:
		return "before";
	case CLK_VC_AFTER:
		return "after";
	case CLK_VC_CONCURRENT:
		return "concurrent";
	}
	return "unknown";
}

dtx_err
clk_vc_pack(msgpack_packer *pk, const clk_vc *vc)
{
	if (vc->n > CLK_VC_MAX)
		return DTX_EINVAL;
	uint32_t nz = 0;
	for (uint32_t i = 0; i < vc->n; i++)
		if (vc->c[i] != 0)
			nz++;
	if (msgpack_pack_map(pk, nz) != 0)
		return DTX_ENOMEM;
	for (uint32_t i = 0; i < vc->n; i++) {
		if (vc->c[i] == 0)
			continue;
		if (msgpack_pack_uint32(pk, i) != 0 ||
		    msgpack_pack_uint64(pk, vc->c[i]) != 0)
			return DTX_ENOMEM;
	}
	return DTX_OK;
}

dtx_err
clk_vc_unpack(const msgpack_object *obj, uint32_t n_nodes, clk_vc *out)
{
	if (n_nodes == 0 || n_nodes > CLK_VC_MAX)
		return DTX_EINVAL;
	if (obj == NULL || obj->type != MSGPACK_OBJECT_MAP ||
	    obj->via.map.size > n_nodes)
		return DTX_EPROTO;
	clk_vc vc;
	memset(&vc, 0, sizeof(vc));
	vc.n = n_nodes;
	uint64_t seen = 0; // bit i: key i already present (CLK_VC_MAX <= 64)
	for (uint32_t i = 0; i < obj->via.map.size; i++) {
		const msgpack_object_kv *kv = &obj->via.map.ptr[i];
		if (kv->key.type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    kv->val.type != MSGPACK_OBJECT_POSITIVE_INTEGER)
			return DTX_EPROTO;
		uint64_t k = kv->key.via.u64;
		if (k >= n_nodes || (seen & (UINT64_C(1) << k)) != 0)
			return DTX_EPROTO;
		seen |= UINT64_C(1) << k;
		vc.c[k] = kv->val.via.u64;
	}
	*out = vc;
	return DTX_OK;
}
