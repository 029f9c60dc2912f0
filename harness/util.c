// SPDX-License-Identifier: MIT
//
// Helpers every dtx command (and benchmark) uses: dispatch, flag parsing
// with one-line errors, latency quantiles, and the JSON writer behind
// --json.

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness_int.h"

int
hx_dispatch(
    const char *what, const hx_cmd *cmds, size_t n, int argc, char **argv)
{
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
			printf("usage: %s [FLAGS]\n", what);
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

void
hx_json_escape(FILE *out, const char *s)
{
	// The short escapes; other control characters get \uXXXX.
	static const char *const esc[256] = {
		['"'] = "\\\"",
		['\\'] = "\\\\",
		['\n'] = "\\n",
		['\t'] = "\\t",
	};
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;
	     p++) {
		if (esc[*p] != NULL)
			fputs(esc[*p], out);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void
sep(hx_json *j, const char *key)
{
	if (j->need_comma[j->depth])
		fputc(',', j->out);
	j->need_comma[j->depth] = true;
	if (key != NULL) {
		hx_json_escape(j->out, key);
		fputc(':', j->out);
	}
}

void
hx_json_begin(hx_json *j, FILE *out)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
	fputc('{', out);
}

void
hx_json_end(hx_json *j)
{
	fputs("}\n", j->out);
	fflush(j->out);
}

void
hx_json_key(hx_json *j, const char *key)
{
	sep(j, key);
}

void
hx_json_str(hx_json *j, const char *key, const char *val)
{
	sep(j, key);
	if (val == NULL)
		fputs("null", j->out);
	else
		hx_json_escape(j->out, val);
}

void
hx_json_int(hx_json *j, const char *key, int64_t val)
{
	sep(j, key);
	fprintf(j->out, "%lld", (long long)val);
}

void
hx_json_num(hx_json *j, const char *key, double val)
{
	sep(j, key);
	if (isfinite(val))
		fprintf(j->out, "%.6g", val);
	else
		fputs("null", j->out);
}

void
hx_json_bool(hx_json *j, const char *key, bool val)
{
	sep(j, key);
	fputs(val ? "true" : "false", j->out);
}

static void
open_nested(hx_json *j, const char *key, char c)
{
	sep(j, key);
	fputc(c, j->out);
	if (j->depth < 15)
		j->depth++;
	j->need_comma[j->depth] = false;
}

static void
close_nested(hx_json *j, char c)
{
	fputc(c, j->out);
	if (j->depth > 0)
		j->depth--;
}

void
hx_json_obj_begin(hx_json *j, const char *key)
{
	open_nested(j, key, '{');
}

void
hx_json_obj_end(hx_json *j)
{
	close_nested(j, '}');
}

void
hx_json_arr_begin(hx_json *j, const char *key)
{
	open_nested(j, key, '[');
}

void
hx_json_arr_end(hx_json *j)
{
	close_nested(j, ']');
}

// Writes text that should be JSON raw when it is, as a string otherwise
// (a damaged row must not make the output invalid).
void
hx_json_raw(hx_json *j, const char *key, const char *text)
{
	if (text != NULL && hx_json_valid(text, strlen(text))) {
		hx_json_key(j, key);
		fputs(text, j->out);
	} else {
		hx_json_str(j, key, text);
	}
}
