// SPDX-License-Identifier: MIT
//
// Shared by the list-append checker's two files only (check_elle.c reads
// the history and infers the edges, elle_graph.c finds and names the
// cycles): the transactions it reads and the dependency graph.

#ifndef ELLE_INT_H
#define ELLE_INT_H

#include "harness_int.h"

// The three dependency kinds (Adya): ww (T1 wrote a version T2
// overwrote: T1's element comes just before T2's in a list), wr (T2 read
// the list up to T1's element), rw (T1 read the list up to an element
// just before T2's: T2's append is missing from what T1 saw).
typedef enum la_dep {
	LA_WW = 0,
	LA_WR = 1,
	LA_RW = 2,
	LA_NDEPS = 3,
} la_dep;

// One micro-op: an append of val to key, or a read of key whose list is
// list[0..n) (known only in an ok completion).
typedef struct la_mop {
	bool append;
	bool known; // a read whose value the client saw
	int64_t key;
	int64_t val;
	int64_t *list; // owned
	size_t n;
} la_mop;

typedef enum la_status {
	LA_COMMITTED = 0, // ok, or indeterminate and resolved committed
	LA_INDETERMINATE = 1, // info or never completed, unresolved
	LA_ABORTED = 2, // fail, or indeterminate and resolved aborted
} la_status;

typedef struct la_txn {
	int64_t inv; // index of the invocation
	int64_t comp; // of the completion, -1 when none
	la_status st;
	bool final; // a read taken after the run (for lost appends)
	bool has_txid;
	uint64_t txid;
	la_mop *mops; // owned
	size_t nmops;
} la_txn;

// Why an edge exists: its key and the two elements it rests on (for rw
// from an empty read, a is unused and empty is set).
typedef struct la_why {
	int64_t key, a, b;
	bool empty;
} la_why;

// One edge from -> to; types is a bit set of (1 << la_dep).
typedef struct la_edge {
	uint32_t from, to;
	uint8_t types;
	la_why why[LA_NDEPS];
} la_edge;

// The dependency graph over the transactions (node i is txns[i]).
// la_graph_add collects edges; la_graph_finish merges duplicates and
// builds the adjacency (edges sorted by from, off[i]..off[i+1]).
typedef struct la_graph {
	size_t n;
	la_edge *e;
	size_t ne, cap;
	size_t *off; // n + 1 entries after la_graph_finish
	size_t counts[LA_NDEPS]; // distinct (from, to) pairs per kind
} la_graph;

dtx_err la_graph_add(
    la_graph *g, uint32_t from, uint32_t to, la_dep d, const la_why *why);
dtx_err la_graph_finish(la_graph *g);
void la_graph_fini(la_graph *g);

// The cycle classes, in the order they are reported.
typedef enum la_cycle {
	LA_G0 = 0, // ww only
	LA_G1C = 1, // ww and wr, at least one wr
	LA_GSINGLE = 2, // exactly one rw
	LA_G2 = 3, // two or more rw
	LA_NCYCLES = 4,
} la_cycle;

// "G0", "G1c", "G-single", "G2".
const char *la_cycle_name(la_cycle c);

// Finds the strongly connected components of g and, in each, the
// shortest cycle of every class it holds (searching from at most
// LA_MAX_STARTS edges of the class per component). Each is added to c as
// an anomaly of its class name whose detail names the transactions (their
// ops in h) and every edge with its key and elements; found[class]
// counts the components holding one. DTX_ENOMEM.
#define LA_MAX_STARTS 256
#define LA_MAX_EXAMPLES 8 // cycles reported per class
dtx_err la_find_cycles(const la_graph *g, const la_txn *txns,
    const hx_history *h, hx_check *c, size_t found[LA_NCYCLES]);

#endif // ELLE_INT_H
