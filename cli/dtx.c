// SPDX-License-Identifier: MIT
//
// The dtx command as a library function (cli_main), so that tests run it
// in-process: the list of what dtx can do, help at every level, and the
// `help` and `version` commands. main.c only calls it.

#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "cli.h"

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const hx_cmd commands[] = {
	{ "bench", bench_cmd, "measure throughput and latency" },
	{ "results", cli_cmd_results, "list, show, prune and export runs" },
	{ "check", cli_cmd_check, "re-check a recorded run" },
	{ "cluster", cli_cmd_cluster,
	    "start, stop or inspect a local cluster" },
	{ "accounts", cli_cmd_accounts, "create the bank accounts" },
	{ "transfer", cli_cmd_transfer, "move money between two accounts" },
	{ "balances", cli_cmd_balances,
	    "a consistent snapshot of all accounts" },
	{ "txn", cli_cmd_txn,
	    "list, inspect and resolve transactions in doubt" },
	{ "bank", cli_cmd_bank,
	    "run the bank workload under faults and check it" },
	{ "health", cli_cmd_health, "ask one daemon whether it is healthy" },
	{ "certs", cli_cmd_certs, "make a cluster's CA and certificates" },
	{ "trace", cli_cmd_trace,
	    "one transaction's events on every node, in causal order" },
	{ "version", cmd_version, "print the version" },
	{ "help", cmd_help, "list the commands, or explain the exit codes" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static int
dispatch(int argc, char **argv)
{
	return hx_dispatch("dtx", commands, NCOMMANDS, argc, argv);
}

static int
cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("dtx %s\n", DTX_VERSION);
	return HX_EXIT_OK;
}

// dtx help [exit-codes | --man | COMMAND...].
static int
cmd_help(int argc, char **argv)
{
	if (argc == 1 && strcmp(argv[0], "exit-codes") == 0) {
		cli_print_exit_codes(stdout);
		return HX_EXIT_OK;
	}
	if (argc == 1 && strcmp(argv[0], "--man") == 0)
		return cli_help_man(dispatch);
	for (int i = 0; i < argc; i++) {
		if (argv[i][0] == '-' || i >= 6) {
			fprintf(stderr,
			    "dtx help: want exit-codes or a command (see: dtx "
			    "help --help)\n");
			return HX_EXIT_USAGE;
		}
	}
	return cli_help_run(argc, argv, dispatch);
}

int
cli_main(int argc, char **argv)
{
	if (argc < 2) {
		cli_help_run(0, NULL, dispatch);
		return HX_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(0, NULL);
	if (cli_wants_help(argc - 1, argv + 1))
		return cli_help_run(argc - 1, argv + 1, dispatch);
	return dispatch(argc - 1, argv + 1);
}
