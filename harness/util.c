// SPDX-License-Identifier: MIT
//
// Helpers every dtx command (and benchmark) uses: dispatch with help at
// every level, flag parsing with one-line errors, and latency quantiles.
// The JSON writer behind --json is in json.c.

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness_int.h"

int
hx_dispatch(
    const char *what, const hx_cmd *cmds, size_t n, int argc, char **argv)
{
	if (argc >= 1 &&
	    (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
		printf(
		    "usage: %s COMMAND [ARGS...] [FLAGS]\n\ncommands:\n", what);
		for (size_t i = 0; i < n; i++)
			printf("  %-10s %s\n", cmds[i].name, cmds[i].summary);
		printf("\n%s COMMAND --help shows a command's arguments, "
		       "flags and exit codes.\n",
		    what);
		return HX_EXIT_OK;
	}
	if (argc >= 1) {
		for (size_t i = 0; i < n; i++)
			if (strcmp(argv[0], cmds[i].name) == 0)
				return cmds[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "%s: %s%s%s; known: ", what,
	    argc >= 1 ? "unknown command '" : "missing command",
	    argc >= 1 ? argv[0] : "", argc >= 1 ? "'" : "");
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "%s%s", i ? ", " : "", cmds[i].name);
	fputc('\n', stderr);
	return HX_EXIT_USAGE;
}

int
hx_parse_flags(const char *what, const dtx_cfg_opt *table, size_t n, void *cfg,
    int argc, char **argv, char **pos, int max_pos, int *npos)
{
	char err[512];
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			// The command's usage line, arguments and exit
			// codes come from the caller (cli/help.c).
			printf("flags:\n");
			dtx_cfg_usage(stdout, table, n);
			return -1;
		}
	}
	if (dtx_cfg_load(table, n, cfg, NULL, argc, argv, pos, max_pos, npos,
	        err, sizeof(err)) != DTX_OK) {
		fprintf(stderr, "%s: %s (see: %s --help)\n", what, err, what);
		return HX_EXIT_USAGE;
	}
	return 0;
}

int
hx__name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s != NULL && i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

uint64_t
hx_quantile(const uint64_t *sorted, size_t n, double q)
{
	if (n == 0)
		return 0;
	// Nearest-rank: the smallest sample with at least q of them <= it.
	size_t rank = (size_t)ceil(q * (double)n);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}
