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

// Local clusters (cluster.c): a directory holding the topology file, one
// data dir and one log file per node, and a state file with the pids of the
// running daemons, so that "dtx cluster stop" from another process finds
// them. Daemons are found in $DTX_BIN_DIR, next to the dtx executable, or
// in the build tree's <component>/ folders beside it.
//
//     DIR/topology          the topology (common.h) every daemon reads
//     DIR/cluster.state     "id pid" lines of the running daemons
//     DIR/data/<id>/        each daemon's --data
//     DIR/logs/<id>.log     each daemon's stderr, appended across restarts
typedef struct cli_cluster cli_cluster;

typedef struct cli_cluster_opts {
	const char *dir; // created if missing
	uint32_t participants; // 1 .. 16
	bool saga; // also run dtx-saga
	const char *host; // listen address, default "127.0.0.1"
	const char *log_level; // passed to the daemons, default "info"
} cli_cluster_opts;

// Creates the directory layout and a topology with free TCP ports
// (coordinator id 0, participants 1..N, saga N+1, the CLI as client).
// Returns owned (free with cli_cluster_free). err gets a one-line reason.
dtx_err cli_cluster_create(
    const cli_cluster_opts *opts, cli_cluster **out, char *err, size_t errlen);

// Opens an existing cluster directory (topology + state file).
dtx_err cli_cluster_open(
    const char *dir, cli_cluster **out, char *err, size_t errlen);

// Frees the handle; running daemons keep running. NULL does nothing.
void cli_cluster_free(cli_cluster *c);

// The cluster's topology and directory (borrowed).
const dtx_topo *cli_cluster_topo(const cli_cluster *c);
const char *cli_cluster_dir(const cli_cluster *c);

// Starts node id's daemon (detached into its own process group) with
// extra environment entries "KEY=VALUE" (env may be NULL; the list ends
// with NULL). Refuses with DTX_EEXIST when it is already running.
dtx_err cli_cluster_start(cli_cluster *c, uint32_t id, char *const env[]);

// Waits until node id accepts connections on its URL, or its process has
// exited (DTX_ECLOSED), or timeout_ms passed (DTX_ETIMEDOUT).
dtx_err cli_cluster_wait_ready(
    cli_cluster *c, uint32_t id, uint64_t timeout_ms);

// Starts every node that is not running and waits until all are ready.
dtx_err cli_cluster_start_all(cli_cluster *c, uint64_t timeout_ms);

// Sends sig to node id's daemon (SIGKILL, SIGSTOP, SIGCONT, SIGTERM).
// After SIGKILL the process is reaped and forgotten.
dtx_err cli_cluster_signal(cli_cluster *c, uint32_t id, int sig);

// Waits for node id's daemon to exit (e.g. at a crash point) and reaps it.
// *status gets the waitpid status when status is non-NULL.
dtx_err cli_cluster_wait_exit(
    cli_cluster *c, uint32_t id, uint64_t timeout_ms, int *status);

// The pid of node id's daemon, or 0 when it is not running.
int cli_cluster_pid(cli_cluster *c, uint32_t id);

// Stops every daemon: SIGCONT (in case it is paused), SIGTERM, then
// SIGKILL after grace_ms; removes the state file.
dtx_err cli_cluster_stop_all(cli_cluster *c, uint64_t grace_ms);

// Path of node id's log file (borrowed until the next call).
const char *cli_cluster_log(cli_cluster *c, uint32_t id);

#endif // CLI_INT_H
