// SPDX-License-Identifier: MIT
//
// The help pages of dtx txn (list, status, resolve): rows of the same
// kind as help.c's table, which cli_help_at serves after its own.

#include "cli.h"

const cli_help cli_help_txn[] = {
	{ "dtx txn", NULL, "list, inspect and resolve transactions in doubt",
	    "What a running cluster's participants hold in doubt, and the "
	    "decisions an admin made by hand (heuristic decisions).",
	    NULL,
	    { { HX_EXIT_OK, NULL, "help shown" },
	        { HX_EXIT_USAGE, NULL, "missing or unknown command" } },
	    false },
	{ "dtx txn list", "", "transactions in doubt, decisions by hand",
	    "Every transaction a participant holds prepared or pre-committed, "
	    "with its age, coordinator, peers, locked keys and what it waits "
	    "for, and (without --in-doubt) every decision made by hand with "
	    "who, when, why and whether the coordinator agreed.",
	    NULL,
	    { { HX_EXIT_OK, NULL, "every participant answered" },
	        { HX_EXIT_INVALID, NULL,
	            "a participant did not answer (the list is incomplete), "
	            "or refused: listing is the admin role's" },
	        { HX_EXIT_USAGE, NULL, "bad flag or argument" },
	        { HX_EXIT_UNAVAILABLE, NULL,
	            "no cluster in DIR, or a node it needs is down" },
	        { HX_EXIT_INTERNAL, NULL, "could not run (stderr says why)" } },
	    false },
	{ "dtx txn status", "TXID", "what every node knows of one",
	    "The coordinator's answer to STATUS and each participant's state "
	    "of TXID, its time in doubt, and any decision made by hand and "
	    "its verdict (a heuristic hazard when the coordinator decided "
	    "the other way).",
	    "  TXID  a transaction id (decimal)\n",
	    { { HX_EXIT_OK, NULL, "decided alike everywhere" },
	        { HX_EXIT_INVALID, NULL,
	            "a heuristic hazard or split: the outcome differs" },
	        { HX_EXIT_UNKNOWN, NULL,
	            "still in doubt, or a node could not be asked" },
	        { HX_EXIT_USAGE, NULL, "bad flag or argument" },
	        { HX_EXIT_NOT_FOUND, NULL, "no node knows TXID" },
	        { HX_EXIT_UNAVAILABLE, NULL,
	            "no cluster in DIR, or a node it needs is down" },
	        { HX_EXIT_INTERNAL, NULL, "could not run (stderr says why)" } },
	    false },
	{ "dtx txn resolve", "TXID", "decide one by hand (admin only)",
	    "Decides TXID at every participant holding it in doubt. Each asks "
	    "the coordinator first: if it answers, its decision is applied "
	    "instead and the reply says so; only when it cannot be reached "
	    "is --commit or --abort applied, recorded as a heuristic decision "
	    "(who, when, --reason) and later checked against the "
	    "coordinator's.",
	    "  TXID  a transaction id (decimal)\n",
	    { { HX_EXIT_OK, NULL, "decided as asked everywhere" },
	        { HX_EXIT_INVALID, NULL, "refused: not the admin role" },
	        { HX_EXIT_UNKNOWN, NULL,
	            "the coordinator is still deciding; ask again" },
	        { HX_EXIT_USAGE, NULL, "bad flag or argument" },
	        { HX_EXIT_CONFLICT, NULL,
	            "decided the other way (by its coordinator, or before)" },
	        { HX_EXIT_NOT_FOUND, NULL, "no node knows TXID" },
	        { HX_EXIT_UNAVAILABLE, NULL,
	            "no cluster in DIR, or a participant holding it cannot "
	            "be reached" },
	        { HX_EXIT_INTERNAL, NULL, "could not run (stderr says why)" } },
	    false },
};
const size_t cli_help_ntxn = sizeof(cli_help_txn) / sizeof(cli_help_txn[0]);
