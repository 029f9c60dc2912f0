// SPDX-License-Identifier: MIT
//
// Shared between the dtx CLI's own files: the subcommand table type, flag
// parsing with one-line errors, and a small JSON writer for --json output.

#ifndef CLI_INT_H
#define CLI_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common.h"

// Exit codes shared by every subcommand. A bank run exits 0 when the
// history is valid, 1 when invalid, 2 when unknown.
#define CLI_EXIT_OK 0
#define CLI_EXIT_INVALID 1
#define CLI_EXIT_UNKNOWN 2
#define CLI_EXIT_USAGE 64 // bad flags or arguments (sysexits EX_USAGE)
#define CLI_EXIT_FAILURE 70 // could not run (EX_SOFTWARE)

// A subcommand: argv holds what follows its name.
typedef int (*cli_cmd_fn)(int argc, char **argv);

typedef struct cli_cmd {
	const char *name;
	cli_cmd_fn fn;
	const char *summary;
} cli_cmd;

// Runs the command named argv[0] from cmds; prints a one-line error naming
// the known commands when it is missing or unknown (exit CLI_EXIT_USAGE).
// what is the command path for messages ("dtx", "dtx bench").
int cli_dispatch(
    const char *what, const cli_cmd *cmds, size_t n, int argc, char **argv);

// Parses flags for a subcommand through the common config table (no
// environment). On a bad flag prints "dtx <what>: <error>" and a hint to
// stderr and returns CLI_EXIT_USAGE; "--help" prints usage and returns -1
// (the caller exits 0). Returns 0 on success.
int cli_parse_flags(const char *what, const dtx_cfg_opt *table, size_t n,
    void *cfg, int argc, char **argv, char **pos, int max_pos, int *npos);

// Latency quantile over a sorted array of n samples (q in [0, 1]).
uint64_t cli_quantile(const uint64_t *sorted, size_t n, double q);
// Sorts n uint64 samples in place.
void cli_sort_u64(uint64_t *v, size_t n);

// A streaming JSON writer: cli_json_begin(out), then fields, then end.
// Keys and string values are escaped. Not thread-safe.
typedef struct cli_json {
	FILE *out;
	int depth;
	bool need_comma[16];
} cli_json;

void cli_json_begin(cli_json *j, FILE *out); // writes "{"
void cli_json_end(cli_json *j); // writes "}\n"
void cli_json_key(cli_json *j, const char *key);
void cli_json_str(cli_json *j, const char *key, const char *val);
void cli_json_int(cli_json *j, const char *key, int64_t val);
void cli_json_num(cli_json *j, const char *key, double val);
void cli_json_bool(cli_json *j, const char *key, bool val);
void cli_json_obj_begin(cli_json *j, const char *key); // key NULL in arrays
void cli_json_obj_end(cli_json *j);
void cli_json_arr_begin(cli_json *j, const char *key);
void cli_json_arr_end(cli_json *j);
// Writes s as a JSON string literal (with quotes) to out.
void cli_json_escape(FILE *out, const char *s);

// Subcommands, one file each.
int cli_cmd_bench(int argc, char **argv); // bench.c
int cli_bench_rpc(int argc, char **argv); // bench_rpc.c
int cli_bench_storage(int argc, char **argv); // bench_storage.c
int cli_cmd_results(int argc, char **argv); // results.c
int cli_cmd_check(int argc, char **argv); // check.c

#endif // CLI_INT_H
