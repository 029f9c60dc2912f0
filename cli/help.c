// SPDX-License-Identifier: MIT
//
// What `--help` says at every level of dtx, and the one table of exit
// codes. Each command's usage line, positional arguments and exit codes
// are one row of `helps`; its flags come from its own flag table (printed
// by hx_parse_flags). `dtx help exit-codes` and the README print the same
// exit code table; a unit test checks that they agree.

#include <stdio.h>
#include <string.h>

#include "cli.h"

const cli_exit_code cli_exit_codes[] = {
	{ HX_EXIT_OK, "ok",
	    "done: the history is valid, the transfer committed, every node "
	    "is healthy" },
	{ HX_EXIT_INVALID, "no",
	    "the answer is no: the history is invalid, the transfer aborted "
	    "(certainly not applied), a node is down, not answering or "
	    "blocked, nothing was running to stop" },
	{ HX_EXIT_UNKNOWN, "unknown",
	    "the outcome is unknown: the transfer may or may not have "
	    "committed, the checkers could not decide" },
	{ HX_EXIT_USAGE, "usage",
	    "bad command, flag or argument; nothing was done" },
	{ HX_EXIT_CONFLICT, "conflict",
	    "what exists contradicts the request: accounts with other "
	    "balances, a cluster already running in the directory" },
	{ HX_EXIT_NOT_FOUND, "not-found",
	    "the transaction named is known to no node (dtx txn status, "
	    "dtx txn resolve); nothing was done" },
	{ HX_EXIT_UNAVAILABLE, "unavailable",
	    "the cluster, or a node the command needs, is not running or "
	    "cannot be reached (no cluster in DIR, no saga orchestrator); "
	    "nothing was done" },
	{ HX_EXIT_INTERNAL, "failed",
	    "could not run: a missing or damaged results file, no such run, "
	    "a file that cannot be written, out of memory; the line on "
	    "stderr says which" },
};
const size_t cli_nexit_codes =
    sizeof(cli_exit_codes) / sizeof(cli_exit_codes[0]);

static const cli_help helps[] = {
	{ "dtx", NULL, NULL,
	    "Distributed transactions (2PC, 3PC, sagas) and a Jepsen-style "
	    "harness that tests them under faults.",
	    NULL, GROUP_EXITS, false },
	{ "dtx cluster", NULL, "start, stop or inspect a local cluster",
	    "A local cluster of daemons (processes, optionally in network "
	    "namespaces) that outlives the command.",
	    NULL, GROUP_EXITS, false },
	{ "dtx cluster start", "", "start a local cluster",
	    "Starts a coordinator, participants (and a saga orchestrator with "
	    "--saga) in DIR and waits until every node is healthy.",
	    NULL,
	    { { HX_EXIT_OK, NULL, "every node is up" }, USAGE_ROW,
	        { HX_EXIT_CONFLICT, NULL, "a cluster already runs in DIR" },
	        { HX_EXIT_INTERNAL, NULL, "a daemon did not come up" } },
	    false },
	{ "dtx cluster stop", "", "stop it and remove its namespaces",
	    "Stops every daemon of the cluster in DIR and removes its network "
	    "namespaces.",
	    NULL,
	    { { HX_EXIT_OK, NULL, "stopped" },
	        { HX_EXIT_INVALID, NULL, "nothing was running in DIR" },
	        USAGE_ROW },
	    false },
	{ "dtx cluster status", "", "show each node and its health",
	    "Shows each node's role, address, pid, health, in-doubt and "
	    "blocked transactions.",
	    NULL,
	    { { HX_EXIT_OK, NULL, "every node answers and is ok" },
	        { HX_EXIT_INVALID, NULL,
	            "a node is down, not answering, not ok or blocked" },
	        USAGE_ROW, { HX_EXIT_UNAVAILABLE, NULL, "no cluster in DIR" } },
	    false },
	{ "dtx accounts", NULL, "create the bank accounts",
	    "The bank accounts of a running cluster.", NULL, GROUP_EXITS,
	    false },
	{ "dtx accounts init", "N", "create N accounts (idempotent)",
	    "Creates accounts 0..N-1 with --balance each in one transaction. "
	    "Run again with the same N and balance it changes nothing and "
	    "says so; over accounts of another count or total it refuses.",
	    "  N      number of accounts, 2 or more\n",
	    { { HX_EXIT_OK, NULL, "created, or already there" }, USAGE_ROW,
	        { HX_EXIT_CONFLICT, NULL,
	            "other accounts exist (another count or total)" },
	        NOCLUSTER_ROW, FAILED_ROW },
	    false },
	{ "dtx transfer", "FROM TO AMOUNT", "move money between two accounts",
	    "Moves AMOUNT from account FROM to account TO in one transaction "
	    "(2PC, 3PC) or one saga.",
	    "  FROM    account to debit (an integer >= 0)\n"
	    "  TO      account to credit (another integer >= 0)\n"
	    "  AMOUNT  amount to move (an integer >= 1)\n",
	    { { HX_EXIT_OK, NULL, "committed" },
	        { HX_EXIT_INVALID, NULL, "aborted (certainly not applied)" },
	        { HX_EXIT_UNKNOWN, NULL, "unknown (may have committed)" },
	        USAGE_ROW,
	        { HX_EXIT_UNAVAILABLE, NULL,
	            "aborted because the coordinator (or the saga "
	            "orchestrator) cannot be reached or does not exist "
	            "(no cluster in DIR, --mode saga without one)" },
	        FAILED_ROW },
	    false },
	{ "dtx balances", "", "a consistent snapshot of all accounts",
	    "Reads every participant at one HLC timestamp and prints each "
	    "account and the total.",
	    NULL,
	    { { HX_EXIT_OK, NULL, "read" }, USAGE_ROW, NOCLUSTER_ROW,
	        FAILED_ROW },
	    false },
	{ "dtx bank", "", "run the bank workload under faults and check it",
	    "Jepsen's bank workload: random transfers and snapshot reads "
	    "under a nemesis, then the checkers. With --workload "
	    "list-append, Elle's list-append test instead: appends and "
	    "snapshot reads of lists, checked for dependency cycles.",
	    NULL,
	    { { HX_EXIT_OK, NULL, "valid" },
	        { HX_EXIT_INVALID, NULL, "invalid" },
	        { HX_EXIT_UNKNOWN, NULL, "unknown" }, USAGE_ROW,
	        { HX_EXIT_UNAVAILABLE, NULL,
	            "no cluster in the --connect DIR, or it cannot be "
	            "reached" },
	        FAILED_ROW },
	    false },
	{ "dtx check", "ID | --live", "re-check a recorded run",
	    "Runs the checkers again on run ID's stored history. With --live "
	    "(and no ID) runs the atomicity checker on the running cluster "
	    "in --dir instead: every transaction in doubt or decided by hand, "
	    "as each participant and the coordinator know it; a heuristic "
	    "hazard is a violation.",
	    "  ID     run id (see dtx results list)\n", VERDICT_EXITS, false },
	{ "dtx results", NULL, "list, show, prune and export recorded runs",
	    "The runs recorded in the results file.", NULL, GROUP_EXITS,
	    false },
	{ "dtx results list", "", "list recorded runs",
	    "One line (or JSON object) per run.", NULL,
	    { { HX_EXIT_OK, NULL, "listed" }, USAGE_ROW, FAILED_ROW }, false },
	{ "dtx results show", "ID", "show one run",
	    "A run's parameters, verdict, checks, anomalies, faults and "
	    "metrics.",
	    "  ID     run id (see dtx results list)\n",
	    { { HX_EXIT_OK, NULL, "shown" }, USAGE_ROW, FAILED_ROW }, false },
	{ "dtx results prune", "", "delete old runs",
	    "Deletes runs (with --keep N all but the N newest, with --before "
	    "DATE those started before it) with their ops, faults, "
	    "anomalies, metrics, observations and report directories, then "
	    "compacts the file (VACUUM) and prints what it removed.",
	    NULL, { { HX_EXIT_OK, NULL, "pruned" }, USAGE_ROW, FAILED_ROW },
	    false },
	{ "dtx results export", "ID", "write a run's history as JSON or EDN",
	    "Writes run ID's history to stdout: --format json (one object "
	    "with the run and its ops) or edn (one map per op with :index "
	    ":time :process :type :f :value, as Jepsen's history.edn, for "
	    "Elle and Jepsen's checkers).",
	    "  ID     run id (see dtx results list)\n",
	    { { HX_EXIT_OK, NULL, "written" }, USAGE_ROW, FAILED_ROW }, false },
	{ "dtx health", "[URL]", "ask one daemon whether it is healthy",
	    "Sends HEALTH to the daemon at URL (default: $DTX_LISTEN with a "
	    "wildcard host read as 127.0.0.1).",
	    "  URL    the daemon's address, tcp:// or tls+tcp://host:port\n",
	    { { HX_EXIT_OK, NULL, "state ok or recovering" },
	        { HX_EXIT_INVALID, NULL,
	            "no answer, blocked, failed or refused" },
	        USAGE_ROW },
	    false },
	{ "dtx bench", NULL, "measure throughput and latency",
	    "Benchmarks that print one line of numbers, or one JSON object "
	    "with --json.",
	    NULL, GROUP_EXITS, false },
	{ "dtx bench rpc", "", "round trips/s and latency of the RPC layer",
	    "PING echoes over nng: the RPC ceiling.", NULL, BENCH_EXITS,
	    false },
	{ "dtx bench storage", "", "WAL/MVCC vs SQLite",
	    "WAL appends/s against SQLite in WAL mode, replay speed, memory "
	    "per key.",
	    NULL, BENCH_EXITS, false },
	{ "dtx bench 2pc", "", "distributed transfers/s on a local cluster",
	    "Committed transfers/s between accounts on different "
	    "participants, against the RPC ceiling.",
	    NULL, BENCH_EXITS, false },
	{ "dtx bench saga", "", "transfer sagas/s on a local cluster",
	    "Finished transfer sagas/s, latency, compensated rate.", NULL,
	    BENCH_EXITS, false },
	{ "dtx version", "", "print the version", "Prints the version.", NULL,
	    { { HX_EXIT_OK, NULL, "printed" } }, true },
	{ "dtx help", "[exit-codes | --man | COMMAND...]",
	    "list the commands, or explain the exit codes",
	    "Without arguments lists the commands; `dtx help exit-codes` "
	    "prints the exit code table; `dtx help COMMAND...` is `dtx "
	    "COMMAND... --help`.",
	    "  exit-codes  every exit code dtx uses and what it means\n"
	    "  --man       this manual as a roff man page, dtx(1)\n"
	    "  COMMAND     a command, e.g. cluster start\n",
	    { { HX_EXIT_OK, NULL, "shown" }, USAGE_ROW }, true },
};
#define NHELPS (sizeof(helps) / sizeof(helps[0]))

// Writes text from column col (where the cursor is) wrapped at 78
// columns, continuing lines at column indent, then a newline.
static void
wrap(FILE *out, size_t col, size_t indent, const char *text)
{
	const char *p = text;
	while (*p != '\0') {
		size_t w = strcspn(p, " ");
		if (col > indent && col + 1 + w > 78) {
			fprintf(out, "\n%*s", (int)indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', out);
			col++;
		}
		fwrite(p, 1, w, out);
		col += w;
		p += w;
		while (*p == ' ')
			p++;
	}
	fputc('\n', out);
}

const cli_help *
cli_help_at(size_t i)
{
	if (i < NHELPS)
		return &helps[i];
	i -= NHELPS;
	if (i < cli_help_ntxn)
		return &cli_help_txn[i];
	i -= cli_help_ntxn;
	return i < cli_help_nops ? &cli_help_ops[i] : NULL;
}

static const cli_help *
find(const char *path)
{
	for (size_t i = 0; cli_help_at(i) != NULL; i++)
		if (strcmp(cli_help_at(i)->path, path) == 0)
			return cli_help_at(i);
	return NULL;
}

const char *
cli_exit_name(int code)
{
	for (size_t i = 0; i < cli_nexit_codes; i++)
		if (cli_exit_codes[i].code == code)
			return cli_exit_codes[i].name;
	return NULL;
}

void
cli_print_exit_codes(FILE *out)
{
	fprintf(out, "exit codes (the same for every dtx command):\n");
	for (size_t i = 0; i < cli_nexit_codes; i++) {
		fprintf(out, "  %-3d %-12s", cli_exit_codes[i].code,
		    cli_exit_codes[i].name);
		wrap(out, 18, 18, cli_exit_codes[i].when);
	}
}

static void
print_exits(const cli_help *h)
{
	printf("\n");
	if (h == &helps[0]) {
		cli_print_exit_codes(stdout);
		return;
	}
	printf("exit codes:\n");
	for (size_t i = 0; i < 8 && h->exits[i].when != NULL; i++) {
		const char *name = cli_exit_name(h->exits[i].code);
		printf("  %-3d %-12s", h->exits[i].code, name ? name : "?");
		wrap(stdout, 18, 18, h->exits[i].when);
	}
	printf("(dtx help exit-codes explains every code)\n");
}

// The subcommands of group h: rows whose path is h's plus one word.
static void
print_group(const cli_help *h)
{
	size_t plen = strlen(h->path);
	printf("usage: %s COMMAND [ARGS...] [FLAGS]\n\n", h->path);
	wrap(stdout, 0, 0, h->about);
	printf("\ncommands:\n");
	for (size_t i = 0; cli_help_at(i) != NULL; i++) {
		const char *p = cli_help_at(i)->path;
		if (strncmp(p, h->path, plen) != 0 || p[plen] != ' ' ||
		    strchr(p + plen + 1, ' ') != NULL)
			continue;
		printf("  %-10s %s\n", p + plen + 1, cli_help_at(i)->summary);
	}
	printf("\n%s COMMAND --help shows a command's arguments, flags and "
	       "exit codes.\n",
	    h->path);
	print_exits(h);
}

int
cli_help_run(int argc, char **argv, cli_dispatch_fn dispatch)
{
	// The command path: "dtx" and the leading words that name a row.
	char path[128] = "dtx";
	int words = 0;
	for (int i = 0; i < argc && argv[i][0] != '-'; i++) {
		char next[128];
		if ((size_t)snprintf(next, sizeof(next), "%s %s", path,
		        argv[i]) >= sizeof(next) ||
		    find(next) == NULL)
			break;
		memcpy(path, next, sizeof(path));
		words++;
	}
	const cli_help *h = find(path);
	if (h->args == NULL) {
		print_group(h);
		return HX_EXIT_OK;
	}
	printf("usage: %s%s%s%s\n\n", h->path, h->args[0] ? " " : "", h->args,
	    h->no_flags ? "" : " [FLAGS]");
	wrap(stdout, 0, 0, h->about);
	if (h->arguments != NULL)
		printf("\narguments:\n%s", h->arguments);
	int rc = HX_EXIT_OK;
	if (!h->no_flags) {
		// The command prints its flags from its own table.
		char *hargv[8];
		int n = 0;
		for (int i = 0; i < words && n < 6; i++)
			hargv[n++] = argv[i];
		hargv[n++] = "--help";
		hargv[n] = NULL;
		printf("\n");
		fflush(stdout);
		rc = dispatch(n, hargv);
	}
	print_exits(h);
	return rc;
}

bool
cli_wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

int
cli_exit_for(dtx_err e)
{
	switch (e) {
	case DTX_EUNREACH:
	case DTX_ETIMEDOUT:
		return HX_EXIT_UNAVAILABLE;
	case DTX_EEXIST:
		return HX_EXIT_CONFLICT;
	default:
		return HX_EXIT_INTERNAL;
	}
}
