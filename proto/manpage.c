// SPDX-License-Identifier: MIT
//
// A daemon's manual page (section 8) in roff, written by `<daemon> --man`
// from the same flag tables as its --help (the runtime's common flags and
// the daemon's own), so that the page cannot drift from the binary. The
// build runs each daemon with --man and installs the result.

#include <stdio.h>
#include <string.h>

#include "proto_int.h"

typedef struct page_text {
	dtx_role role;
	const char *name; // "dtx-coordinator"
	const char *summary; // the NAME line
	const char *description; // paragraphs, separated by "\n"
} page_text;

static const page_text pages[] = {
	{ DTX_ROLE_COORDINATOR, "dtx-coordinator",
	    "two-phase, three-phase and parallel commit coordinator",
	    "Runs the transactions clients send it (TXN) over the "
	    "participants of its topology: 2PC with presumed abort, 3PC, or "
	    "parallel commit. It forces each COMMIT decision to its log "
	    "before any participant hears it, re-drives logged commits after "
	    "a restart and answers STATUS for the transactions it ran.\n"
	    "Every message carries the node's hybrid logical clock and "
	    "vector clock; the last transaction events are kept for TRACE "
	    "(see dtx trace in dtx(1))." },
	{ DTX_ROLE_PARTICIPANT, "dtx-participant",
	    "transaction participant holding a shard of the accounts",
	    "Holds a shard of the key-value store (a write-ahead log and "
	    "multi-version store in its data directory). It forces PREPARED "
	    "before voting yes and COMMIT before acknowledging it, serves "
	    "snapshot reads at a timestamp, applies saga steps behind a "
	    "barrier, and after a restart reloads its prepared transactions "
	    "and asks the coordinator, then its peers, for their outcome.\n"
	    "Every message carries the node's hybrid logical clock and "
	    "vector clock; the last transaction events are kept for TRACE "
	    "(see dtx trace in dtx(1))." },
	{ DTX_ROLE_SAGA, "dtx-saga", "saga orchestrator",
	    "Runs sagas clients submit (SAGA_SUBMIT): each step's action on "
	    "its participant in order, and on a failure the compensations of "
	    "the completed steps in reverse order, retried with capped "
	    "exponential backoff. The saga and each step's state are forced "
	    "to its log before the step runs, so that a restarted "
	    "orchestrator resumes every saga it had not finished.\n"
	    "Every message carries the node's hybrid logical clock and "
	    "vector clock; the last saga events are kept for TRACE (see dtx "
	    "trace in dtx(1))." },
};

// Writes text as roff: backslashes escaped, hyphens as \-, a leading '.'
// or '\'' guarded, "\n" as a new paragraph.
static void
roff(FILE *out, const char *text)
{
	bool bol = true;
	for (const char *p = text; *p; p++) {
		if (bol && (*p == '.' || *p == '\''))
			fputs("\\&", out);
		bol = false;
		if (*p == '\\')
			fputs("\\e", out);
		else if (*p == '-')
			fputs("\\-", out);
		else if (*p == '\n') {
			fputs("\n.PP\n", out);
			bol = true;
		} else
			fputc(*p, out);
	}
}

static void
options(FILE *out, const dtx_cfg_opt *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *meta = t[i].type == DTX_CFG_BOOL ? ""
		    : t[i].type == DTX_CFG_STR               ? " TEXT"
		                                             : " N";
		fputs(".TP\n.B \\-\\-", out);
		roff(out, t[i].name);
		fprintf(out, "%s\n", meta);
		roff(out, t[i].help != NULL ? t[i].help : "");
		if (t[i].def != NULL) {
			fputs(" (default: ", out);
			roff(out, t[i].def);
			fputs(")", out);
		}
		fputs(".\nEnvironment: DTX_", out);
		for (const char *c = t[i].name; *c; c++)
			fputc(*c == '-'                    ? '_'
			        : (*c >= 'a' && *c <= 'z') ? *c - 'a' + 'A'
			                                   : *c,
			    out);
		fputs("\n", out);
	}
}

void
proto__daemon_man(FILE *out, dtx_role role, const dtx_cfg_opt *common,
    size_t ncommon, const dtx_cfg_opt *extra, size_t nextra)
{
	const page_text *p = &pages[0];
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		if (pages[i].role == role)
			p = &pages[i];
	fputs(".TH ", out);
	for (const char *c = p->name; *c; c++)
		fputc(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c, out);
	fputs(" 8 \"\" \"dtx\" \"dtx manual\"\n.SH NAME\n", out);
	roff(out, p->name);
	fputs(" \\- ", out);
	roff(out, p->summary);
	fputs("\n.SH SYNOPSIS\n.B ", out);
	roff(out, p->name);
	fputs("\n\\-\\-node\\-id N \\-\\-topology FILE \\-\\-data DIR "
	      "[FLAGS]\n.PP\n.B ",
	    out);
	roff(out, p->name);
	fputs("\n\\-\\-help | \\-\\-man\n.SH DESCRIPTION\n", out);
	roff(out, p->description);
	fputs("\n.SH OPTIONS\nEach flag may also be given in the environment "
	      "variable named after it; a flag on the command line wins.\n",
	    out);
	options(out, common, ncommon);
	options(out, extra, nextra);
	fputs(".SH LOGGING\nOne record per line on standard error, logfmt by "
	      "default (ts= level= node= msg= then fields such as txid=, "
	      "gid=, peer=, why=), or JSON objects with \\-\\-log\\-format "
	      "json. Repeated warnings are rate-limited with a suppressed= "
	      "count.\n.SH SIGNALS\nSIGTERM and SIGINT stop the daemon "
	      "cleanly; under systemd it reports READY=1 once recovery is "
	      "done and STOPPING=1 when it stops.\n.SH EXIT STATUS\n.TP\n.B "
	      "0\nstopped by a signal, or \\-\\-help / \\-\\-man\n.TP\n.B "
	      "1\ncould not start or serve (the log says why)\n.TP\n.B 64\n"
	      "a bad flag, topology or configuration\n.SH SEE ALSO\n"
	      ".BR dtx (1),\n.BR dtx\\-coordinator (8),\n"
	      ".BR dtx\\-participant (8),\n.BR dtx\\-saga (8)\n",
	    out);
}
