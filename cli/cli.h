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
int cli_cmd_certs(int argc, char **argv); // cmd_certs.c
int cli_cmd_trace(int argc, char **argv); // cmd_trace.c
// dtx results export (cmd_export.c), called by cli_cmd_results.
int cli_results_export(int argc, char **argv);
// Writes op as one line of Jepsen's history.edn (cmd_export.c).
void cli_edn_op(FILE *out, const hx_op *op);

// dtx txn list | status | resolve (cmd_txn_admin.c, cmd_txn_resolve.c).
int cli_cmd_txn(int argc, char **argv);
int cli_txn_resolve(int argc, char **argv);
// Their flags.
typedef struct cli_txn_cfg {
	char *dir;
	bool json;
	int64_t timeout_ms;
	int64_t from;
	bool in_doubt; // list
	bool commit, abort; // resolve
	char *reason; // resolve
} cli_txn_cfg;
#define CLI_TXN_COMMON_OPTS                                                    \
	{ "dir", DTX_CFG_STR, offsetof(cli_txn_cfg, dir), 0, 0,                \
		HX_CLUSTER_DIR_DEFAULT, "cluster directory" },                 \
	    { "json", DTX_CFG_BOOL, offsetof(cli_txn_cfg, json), 0, 0,         \
		    "false", "JSON output" },                                  \
	    { "timeout-ms", DTX_CFG_INT, offsetof(cli_txn_cfg, timeout_ms),    \
		    100, 600000, "5000", "timeout of each call to a node" },   \
	{                                                                      \
		"from", DTX_CFG_INT, offsetof(cli_txn_cfg, from), -1,          \
		    DTX_TOPO_MAX - 1, "-1",                                    \
		    "node id to send as (-1: the topology's client id; with "  \
		    "--insecure the sender's role is that id's in the "        \
		    "topology)"                                                \
	}
// Parses a txn subcommand's flags (hx_parse_flags): 0 to go on, -1 when
// help was shown, else the exit code.
int cli_txn_flags(const char *what, const dtx_cfg_opt *opts, size_t nopts,
    cli_txn_cfg *cfg, int argc, char **argv, char **pos, int maxpos, int *npos);
// Connects to the cluster in cfg->dir as cfg->from: 0 with *out owned
// (hx_conn_close), else the exit code after saying why on stderr.
int cli_txn_conn(const char *what, const cli_txn_cfg *cfg, hx_conn **out);
// A transaction id argument: decimal, 1 .. UINT64_MAX-1. DTX_EINVAL.
dtx_err cli_txid_arg(const char *s, uint64_t *out);
// A key as text: printable bytes as they are, others as \xNN.
void cli_key_fmt(const proto_bytes *k, char *out, size_t n);
// ms since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ".
void cli_utc_ms(uint64_t ms, char *out, size_t n);
// "prepared", "committed", ... for a proto_txn_state.
const char *cli_state_name(proto_txn_state st);
// One transaction in doubt, one decision by hand (JSON object, text line).
void cli_indoubt_json(hx_json *j, uint32_t node, const proto_indoubt *x);
void cli_heur_json(hx_json *j, uint32_t node, const proto_heur *h);
void cli_heur_print(uint32_t node, const proto_heur *h);
// dtx txn status TXID once connected: prints, returns the exit code.
int cli_txn_status_run(const cli_txn_cfg *cfg, hx_conn *conn, uint64_t txid);

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

// The pages of dtx txn (help_txn.c), served after help.c's own, then
// those of dtx certs and dtx trace (help_ops.c).
extern const cli_help cli_help_txn[];
extern const size_t cli_help_ntxn;
extern const cli_help cli_help_ops[];
extern const size_t cli_help_nops;

// Exit rows the help tables share.
#define USAGE_ROW                                                              \
	{                                                                      \
		HX_EXIT_USAGE, NULL, "bad flag or argument"                    \
	}
#define FAILED_ROW                                                             \
	{                                                                      \
		HX_EXIT_INTERNAL, NULL, "could not run (stderr says why)"      \
	}
#define NOCLUSTER_ROW                                                          \
	{                                                                      \
		HX_EXIT_UNAVAILABLE, NULL,                                     \
		    "no cluster in DIR, or a node it needs is down"            \
	}
#define GROUP_EXITS                                                            \
	{                                                                      \
		{ HX_EXIT_OK, NULL, "help shown" },                            \
		{                                                              \
			HX_EXIT_USAGE, NULL, "missing or unknown command"      \
		}                                                              \
	}
#define VERDICT_EXITS                                                          \
	{                                                                      \
		{ HX_EXIT_OK, NULL, "valid" },                                 \
		    { HX_EXIT_INVALID, NULL, "invalid" },                      \
		    { HX_EXIT_UNKNOWN, NULL, "unknown" }, USAGE_ROW,           \
		    FAILED_ROW                                                 \
	}
#define BENCH_EXITS                                                            \
	{                                                                      \
		{ HX_EXIT_OK, NULL, "measured" }, USAGE_ROW, FAILED_ROW        \
	}

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
