// SPDX-License-Identifier: MIT
//
// Private to the dtx command (cli/): the command functions main.c lists,
// one cmd_*.c file per command group. Other folders do not include it.

#ifndef CLI_H
#define CLI_H

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
int cli_cmd_accounts(int argc, char **argv); // cmd_accounts.c
int cli_cmd_trace(int argc, char **argv); // cmd_trace.c
// dtx results export (cmd_export.c), called by cli_cmd_results.
int cli_results_export(int argc, char **argv);
// Writes op as one line of Jepsen's history.edn (cmd_export.c).
void cli_edn_op(FILE *out, const hx_op *op);

// The whole command (dtx.c): argv[0] is the program name. Returns the
// exit code.
int cli_main(int argc, char **argv);

// Exit codes (help.c): the one table every --help, `dtx help exit-codes`
// and the README print. A command's help lists the codes it uses with
// what each means for it.
typedef struct cli_exit_code {
	int code; // HX_EXIT_*
	const char *name; // "ok", "usage", ...
	const char *when; // what it means
} cli_exit_code;
extern const cli_exit_code cli_exit_codes[];
extern const size_t cli_nexit_codes;
// The name of code in the table, or NULL.
const char *cli_exit_name(int code);
void cli_print_exit_codes(FILE *out);

// Runs a dtx command: argv holds what follows "dtx".
typedef int (*cli_dispatch_fn)(int argc, char **argv);

// One help page (help.c's table). args is NULL for a group of
// subcommands. exits lists the codes the command uses with what each
// means for it (name NULL: the table's), ending at a row whose when is
// NULL.
typedef struct cli_help {
	const char *path; // "dtx cluster start"
	const char *args; // positional arguments, "" for none
	const char *summary;
	const char *about;
	const char *arguments; // one "  NAME  what" line each, or NULL
	cli_exit_code exits[8];
	bool no_flags; // the command takes no flags (no flag table to print)
} cli_help;

// The i-th page, NULL past the last (borrowed, static).
const cli_help *cli_help_at(size_t i);

// Writes dtx(1) in roff to stdout from the same pages and flag tables as
// --help (man.c); dispatch runs a command with --help for its flags.
int cli_help_man(cli_dispatch_fn dispatch);

// Help at every level (help.c). cli_wants_help says whether argv (what
// follows "dtx") asks for it; cli_help_run prints the page of the command
// its leading words name: a group's subcommands, or a command's usage
// line, arguments, flags (by running it through dispatch with --help)
// and exit codes. Returns the exit code (HX_EXIT_OK).
bool cli_wants_help(int argc, char **argv);
int cli_help_run(int argc, char **argv, cli_dispatch_fn dispatch);

// Opens the cluster in dir (cmd_cluster.c): 0 with *out owned (free with
// hx_cluster_free), or HX_EXIT_UNAVAILABLE after saying on stderr that
// there is no cluster there (and how to start one).
int cli_cluster_open(const char *what, const char *dir, hx_cluster **out);

// The exit code for an error that stopped a command before it could
// answer: HX_EXIT_UNAVAILABLE for an unreachable node or a timeout,
// HX_EXIT_CONFLICT for DTX_EEXIST, HX_EXIT_INTERNAL otherwise.
int cli_exit_for(dtx_err e);

// Reads the run id a command takes as its only positional argument (a
// positive decimal integer) from pos[0..npos). When it is missing or bad,
// says so on stderr with the usage "<what> ID <flags>" and returns
// DTX_EINVAL.
dtx_err cli_run_id_arg(const char *what, const char *flags, char *const *pos,
    int npos, int64_t *out);

#endif // CLI_H
