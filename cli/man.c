// SPDX-License-Identifier: MIT
//
// dtx(1) in roff, written by `dtx help --man` from the same help pages and
// flag tables as --help, so that the manual cannot drift from the command.
// The build runs it to make build/cli/dtx.1 and installs that.

#include <stdio.h>
#include <string.h>

#include "cli.h"

// Writes text as roff text: backslashes escaped, hyphens as \-, and a
// leading '.' or '\'' guarded so that it is not read as a request.
static void
roff(const char *text)
{
	if (text[0] == '.' || text[0] == '\'')
		fputs("\\&", stdout);
	for (const char *p = text; *p; p++) {
		if (*p == '\\')
			fputs("\\e", stdout);
		else if (*p == '-')
			fputs("\\-", stdout);
		else
			fputc(*p, stdout);
	}
}

// A command's section: usage, what it does, then verbatim its arguments,
// its flags (from its own table, by running it with --help) and its exit
// codes.
static int
page(const cli_help *h, cli_dispatch_fn dispatch)
{
	printf(".SS \"");
	roff(h->path);
	printf("%s", h->args[0] ? " " : "");
	roff(h->args);
	printf("%s\"\n", h->no_flags ? "" : " [FLAGS]");
	roff(h->about);
	printf("\n.PP\n.nf\n");
	if (h->arguments != NULL)
		printf("arguments:\n%s", h->arguments);
	int rc = HX_EXIT_OK;
	if (!h->no_flags) {
		char words[128], *argv[8];
		int n = 0;
		snprintf(words, sizeof(words), "%s", h->path + strlen("dtx "));
		for (char *w = strtok(words, " "); w && n < 6;
		     w = strtok(NULL, " "))
			argv[n++] = w;
		argv[n++] = "--help";
		argv[n] = NULL;
		fflush(stdout);
		rc = dispatch(n, argv);
	}
	printf("exit codes:\n");
	for (size_t i = 0; i < 8 && h->exits[i].when != NULL; i++) {
		const char *name = cli_exit_name(h->exits[i].code);
		printf("  %-3d %-12s %s\n", h->exits[i].code, name ? name : "?",
		    h->exits[i].when);
	}
	printf(".fi\n");
	return rc;
}

int
cli_help_man(cli_dispatch_fn dispatch)
{
	const cli_help *root = cli_help_at(0);
	printf(".TH DTX 1 \"\" \"dtx %s\" \"dtx manual\"\n", DTX_VERSION);
	printf(".SH NAME\ndtx \\- ");
	roff(root->about);
	printf("\n.SH SYNOPSIS\n.B dtx\n.I COMMAND\n[ARGS...] [FLAGS]\n");
	printf(".PP\n.B dtx\n.I COMMAND\n\\-\\-help\n");
	printf(".SH COMMANDS\n");
	int rc = HX_EXIT_OK;
	for (size_t i = 1; cli_help_at(i) != NULL; i++)
		if (cli_help_at(i)->args != NULL &&
		    page(cli_help_at(i), dispatch) != HX_EXIT_OK)
			rc = HX_EXIT_INTERNAL;
	printf(".SH EXIT STATUS\nThe same codes mean the same thing for every "
	       "command.\n");
	for (size_t i = 0; i < cli_nexit_codes; i++) {
		printf(".TP\n.B %d\n(%s) ", cli_exit_codes[i].code,
		    cli_exit_codes[i].name);
		roff(cli_exit_codes[i].when);
		printf("\n");
	}
	printf(".SH SEE ALSO\n.BR dtx\\-coordinator (8),\n"
	       ".BR dtx\\-participant (8),\n.BR dtx\\-saga (8);\nREADME.md "
	       "and ARCHITECTURE.md in the source tree.\n");
	fflush(stdout);
	return rc;
}
