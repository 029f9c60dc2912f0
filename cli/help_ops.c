// SPDX-License-Identifier: MIT
//
// The help pages of dtx certs and dtx trace: rows of the same kind as
// help.c's table, which cli_help_at serves after its own and dtx txn's.

#include "cli.h"

const cli_help cli_help_ops[] = {
	{ "dtx certs", NULL, "make a cluster's CA and certificates",
	    "A cluster's CA and one key and certificate per node.", NULL,
	    GROUP_EXITS, false },
	{ "dtx certs init", "DIR",
	    "make a cluster CA and every node's key and certificate",
	    "DIR/ca.crt, ca.key (EC P-256), per node ROLE-ID.crt and .key "
	    "(0600; CN=ROLE-ID, OU=ROLE), plus client, admin and harness. "
	    "A CA is replaced only with --force.",
	    "  DIR    where the files go (created if missing)\n",
	    { { HX_EXIT_OK, NULL, "written" }, USAGE_ROW,
	        { HX_EXIT_CONFLICT, NULL, "DIR already holds a CA" },
	        FAILED_ROW },
	    false },
	{ "dtx trace", "TXID|GID",
	    "one transaction's events on every node, in causal order",
	    "The causal history of transaction TXID or saga GID: each send, "
	    "receive, force, decision, apply, retry and recovery on every "
	    "node with its HLC and vector clock, in happened-before order, "
	    "concurrent events grouped in steps; from a running cluster (the "
	    "daemons' TRACE rings and logs) or a stored run's logs (--run).",
	    "  TXID   a transaction id (decimal)\n  GID    a saga's id\n",
	    { { HX_EXIT_OK, NULL, "traced" },
	        { HX_EXIT_UNKNOWN, NULL, "no event of it was found" },
	        USAGE_ROW, NOCLUSTER_ROW, FAILED_ROW },
	    false },
};
const size_t cli_help_nops = sizeof(cli_help_ops) / sizeof(cli_help_ops[0]);
