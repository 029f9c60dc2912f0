// SPDX-License-Identifier: MIT
//
// Private to the dtx command (cli/): the command functions main.c lists,
// one cmd_*.c file per command group. Other folders do not include it.

#ifndef HX_H
#define HX_H

#include "harness.h"

// Commands: argv holds what follows the command's name; each returns the
// process exit code (HX_EXIT_*).
int cli_cmd_results(int argc, char **argv); // cmd_results.c
int cli_cmd_check(int argc, char **argv); // cmd_check.c
int cli_cmd_cluster(int argc, char **argv); // cmd_cluster.c
int cli_cmd_transfer(int argc, char **argv); // cmd_txn.c
int cli_cmd_balances(int argc, char **argv); // cmd_txn.c
int cli_cmd_bank(int argc, char **argv); // cmd_bank.c
int cli_cmd_health(int argc, char **argv); // cmd_health.c

// Reads the run id a command takes as its only positional argument (a
// positive decimal integer) from pos[0..npos). When it is missing or bad,
// says so on stderr with the usage "<what> ID <flags>" and returns
// DTX_EINVAL.
dtx_err cli_run_id_arg(const char *what, const char *flags, char *const *pos,
    int npos, int64_t *out);

#endif // HX_H
