// SPDX-License-Identifier: MIT
//
// dtx bench: the benchmarks, one subcommand each. Every benchmark prints
// numbers (and one JSON object with --json); none asserts a target.

#include "cli_int.h"

static const cli_cmd benches[] = {
	{ "rpc", cli_bench_rpc, "round trips/s and latency of the RPC layer" },
	{ "storage", cli_bench_storage,
	    "WAL/MVCC vs SQLite: appends/s, replay, memory" },
	{ "2pc", cli_bench_2pc,
	    "distributed transfers/s on a local cluster vs the RPC ceiling" },
	{ "saga", cli_bench_saga, "transfer sagas/s on a local cluster" },
	{ NULL, NULL, NULL },
};

int
cli_cmd_bench(int argc, char **argv)
{
	return cli_dispatch("dtx bench", benches,
	    sizeof(benches) / sizeof(benches[0]) - 1, argc, argv);
}
