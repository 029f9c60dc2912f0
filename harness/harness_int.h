// SPDX-License-Identifier: MIT
//
// Shared between the harness's own files (and its unit tests) only: the
// checker plumbing and small helpers that are not part of harness.h.

#ifndef HARNESS_INT_H
#define HARNESS_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "harness.h"

// Checker plumbing (check.c): starts a result, adds an anomaly (detail is
// JSON text, taken on success and on failure), and sets the summary and
// JSON from builders (taken).
void hx__check_init(hx_check *c, const char *name);
dtx_err hx__check_anomaly(hx_check *c, const char *kind, const hx_op *op,
    bool has_txid, uint64_t txid, const char *gid, char *detail);
dtx_err hx__check_set(hx_check *c, hx_valid valid, hx_sb *summary, hx_sb *json);
// The txid / gid of a transfer from its completion's value, else its
// invocation's (either may be NULL). false when neither has one.
bool hx__op_txid(const hx_op *inv, const hx_op *comp, uint64_t *txid);
bool hx__op_gid(const hx_op *inv, const hx_op *comp, char *gid, size_t len);
// The index of s among names[0..n), for parsing an enum by the names it
// prints with; -1 when s is none of them or NULL.
int hx__name_index(const char *const *names, size_t n, const char *s);

#endif // HARNESS_INT_H
