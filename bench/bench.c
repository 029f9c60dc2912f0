// SPDX-License-Identifier: MIT
//
// dtx bench: the benchmarks, one subcommand each. Every benchmark prints
// numbers (and one JSON object with --json); none asserts a target.

#include "bench.h"

static const hx_cmd benches[] = {
	{ "rpc", bench_rpc, "round trips/s and latency of the RPC layer" },
	{ "storage", bench_storage,
	    "WAL/MVCC vs SQLite: appends/s, replay, memory" },
	{ "2pc", bench_2pc,
	    "distributed transfers/s on a local cluster vs the RPC ceiling" },
	{ "saga", bench_saga, "transfer sagas/s on a local cluster" },
	{ NULL, NULL, NULL },
};

int
bench_cmd(int argc, char **argv)
{
	return hx_dispatch("dtx bench", benches,
	    sizeof(benches) / sizeof(benches[0]) - 1, argc, argv);
}
