// SPDX-License-Identifier: MIT
//
// dtx: the command line. main() reads as the list of what dtx can do; each
// subcommand lives in its own file.

#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "cli.h"

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const hx_cmd commands[] = {
	{ "bench", bench_cmd, "measure throughput and latency" },
	{ "results", cli_cmd_results, "list and show recorded runs" },
	{ "check", cli_cmd_check, "re-check a recorded run" },
	{ "cluster", cli_cmd_cluster,
	    "start, stop or inspect a local cluster" },
	{ "transfer", cli_cmd_transfer, "move money between two accounts" },
	{ "balances", cli_cmd_balances,
	    "a consistent snapshot of all accounts" },
	{ "bank", cli_cmd_bank,
	    "run the bank workload under faults and check it" },
	{ "health", cli_cmd_health, "ask one daemon whether it is healthy" },
	{ "version", cmd_version, "print the version" },
	{ "help", cmd_help, "list the commands" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static int
cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("dtx %s\n", DTX_VERSION);
	return HX_EXIT_OK;
}

static int
cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("usage: dtx COMMAND [ARGS...]   (dtx COMMAND --help for "
	       "flags)\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		printf("  %-10s %s\n", commands[i].name, commands[i].summary);
	return HX_EXIT_OK;
}

int
main(int argc, char **argv)
{
	dtx_log_init("dtx", DTX_LOG_WARN);
	if (argc < 2) {
		cmd_help(0, NULL);
		return HX_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return cmd_help(0, NULL);
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(0, NULL);
	return hx_dispatch("dtx", commands, NCOMMANDS, argc - 1, argv + 1);
}
