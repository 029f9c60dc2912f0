// SPDX-License-Identifier: MIT
//
// The log record format (common.h): one record as a logfmt or JSON line,
// and the parser that reads either back (the harness's log checker and
// `dtx trace` read daemon logs with it). Pure functions, no I/O.

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"

// The output buffer: appends stop RESERVE bytes short of the end so that
// whatever is open can always be closed.
#define RESERVE 8

typedef struct out {
	char *p;
	size_t n, cap;
	bool cut; // something did not fit: no more fields
} out;

static bool
room(const out *o, size_t k)
{
	return o->n + k + RESERVE <= o->cap;
}

static void
put(out *o, const char *s, size_t k)
{
	if (o->cut || !room(o, k)) {
		o->cut = true;
		return;
	}
	memcpy(o->p + o->n, s, k);
	o->n += k;
}

static void
puts_(out *o, const char *s)
{
	put(o, s, strlen(s));
}

// A logfmt value needs quotes when empty or holding a space, '"', '=',
// '\\' or a control character.
static bool
needs_quotes(const char *s)
{
	if (*s == '\0')
		return true;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' ||
		    *p == 0x7f)
			return true;
	return false;
}

// The length of the well-formed UTF-8 sequence at c (a byte >= 0x80), or 0
// when it is not one (it is then escaped as \u00XX, so that a JSON record
// stays valid whatever bytes a peer sent).
static size_t
utf8_len(const unsigned char *c)
{
	size_t n = (*c & 0xe0) == 0xc0 ? 2
	    : (*c & 0xf0) == 0xe0      ? 3
	    : (*c & 0xf8) == 0xf0      ? 4
	                               : 0;
	if ((n == 2 && *c < 0xc2) || *c > 0xf4 || (*c == 0xe0 && c[1] < 0xa0) ||
	    (*c == 0xed && c[1] >= 0xa0) || (*c == 0xf0 && c[1] < 0x90) ||
	    (*c == 0xf4 && c[1] >= 0x90))
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((c[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

// Writes s quoted and escaped (the escapes of logfmt and JSON agree); a
// value that does not fit is cut, ends in "..." and is still closed.
static void
put_quoted(out *o, const char *s)
{
	if (o->cut)
		return;
	o->p[o->n++] = '"';
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		char e[8];
		size_t k = 1;
		e[0] = (char)*c;
		if (*c == '"' || *c == '\\') {
			e[0] = '\\';
			e[1] = (char)*c;
			k = 2;
		} else if (*c == '\n' || *c == '\r' || *c == '\t') {
			e[0] = '\\';
			e[1] = *c == '\n' ? 'n' : *c == '\r' ? 'r' : 't';
			k = 2;
		} else if (*c < 0x20 || *c == 0x7f ||
		    (*c >= 0x80 && utf8_len(c) == 0)) {
			snprintf(e, sizeof(e), "\\u%04x", *c);
			k = 6;
		}
		size_t u = *c >= 0x80 ? utf8_len(c) : 0;
		if (!room(o, k + (u > 1 ? u - 1 : 0) + 4)) {
			memcpy(o->p + o->n, "...", 3);
			o->n += 3;
			o->cut = true;
			break;
		}
		memcpy(o->p + o->n, e, k);
		o->n += k;
		// A whole UTF-8 sequence is copied as it is.
		for (size_t j = 1; j < u; j++)
			o->p[o->n++] = (char)*++c;
	}
	o->p[o->n++] = '"';
}

// Writes one key and string value in the record's format.
static void
put_str(out *o, dtx_log_format fmt, bool first, const char *k, const char *v)
{
	// Room for the key and a closed (perhaps cut) value, or nothing.
	if (o->cut || !room(o, strlen(k) + 12)) {
		o->cut = true;
		return;
	}
	if (fmt == DTX_LOG_FMT_JSON) {
		puts_(o, first ? "\"" : ",\"");
		puts_(o, k);
		puts_(o, "\":");
		put_quoted(o, v);
		return;
	}
	if (!first)
		puts_(o, " ");
	puts_(o, k);
	puts_(o, "=");
	if (needs_quotes(v))
		put_quoted(o, v);
	else
		puts_(o, v);
}

// An integer: bare in both formats.
static void
put_num(out *o, dtx_log_format fmt, const char *k, const char *num)
{
	if (o->cut || !room(o, strlen(k) + strlen(num) + 4)) {
		o->cut = true;
		return;
	}
	if (fmt == DTX_LOG_FMT_JSON) {
		puts_(o, ",\"");
		puts_(o, k);
		puts_(o, "\":");
	} else {
		puts_(o, " ");
		puts_(o, k);
		puts_(o, "=");
	}
	puts_(o, num);
}

static void
put_field(out *o, dtx_log_format fmt, const dtx_log_field *f)
{
	char num[24];
	switch (f->kind) {
	case DTX_LF_U64:
		snprintf(num, sizeof(num), "%" PRIu64, f->u);
		put_num(o, fmt, f->key, num);
		break;
	case DTX_LF_I64:
		snprintf(num, sizeof(num), "%" PRId64, f->i);
		put_num(o, fmt, f->key, num);
		break;
	default:
		if (f->s != NULL)
			put_str(o, fmt, false, f->key, f->s);
		break;
	}
}

size_t
dtx_log_format_record(
    char *buf, size_t cap, dtx_log_format fmt, const dtx_log_record *r)
{
	static const char *lv[] = { "debug", "info", "warn", "error", "off" };
	out o = { .p = buf, .cap = cap };
	char ts[40];
	struct tm tm;
	time_t sec = (time_t)(r->realtime_ns / 1000000000u);
	gmtime_r(&sec, &tm);
	size_t k = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + k, sizeof(ts) - k, ".%03uZ",
	    (unsigned)(r->realtime_ns / 1000000u % 1000u));

	if (fmt == DTX_LOG_FMT_JSON)
		puts_(&o, "{");
	put_str(&o, fmt, true, "ts", ts);
	put_str(&o, fmt, false, "level",
	    lv[r->level <= DTX_LOG_OFF ? r->level : DTX_LOG_OFF]);
	put_str(&o, fmt, false, "node", r->node != NULL ? r->node : "");
	put_str(&o, fmt, false, "msg", r->msgid != NULL ? r->msgid : "");
	for (size_t i = 0; i < r->nfields; i++)
		put_field(&o, fmt, &r->fields[i]);
	if (r->text != NULL && r->text[0] != '\0')
		put_str(&o, fmt, false, "text", r->text);
	char num[24];
	if (r->suppressed > 0) {
		snprintf(num, sizeof(num), "%" PRIu64, r->suppressed);
		put_num(&o, fmt, "suppressed", num);
	}
	if (r->suppressed_other > 0) {
		snprintf(num, sizeof(num), "%" PRIu64, r->suppressed_other);
		put_num(&o, fmt, "suppressed_other", num);
	}
	// The reserve always holds the close and the newline.
	if (fmt == DTX_LOG_FMT_JSON)
		o.p[o.n++] = '}';
	o.p[o.n++] = '\n';
	o.p[o.n] = '\0';
	return o.n;
}

// ---------------------------------------------------------------- parsing

typedef struct in {
	const char *p, *end;
	char *s; // scratch
	size_t n, cap;
} in;

static bool
emit(in *x, char c)
{
	if (x->n + 1 >= x->cap)
		return false;
	x->s[x->n++] = c;
	return true;
}

static int
hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0'
	    : c >= 'a' && c <= 'f'  ? c - 'a' + 10
	    : c >= 'A' && c <= 'F'  ? c - 'A' + 10
	                            : -1;
}

// Reads a quoted string at x->p (on the '"') into scratch, NUL-terminated.
static bool
read_quoted(in *x)
{
	x->p++;
	while (x->p < x->end && *x->p != '"') {
		char c = *x->p++;
		if (c == '\\') {
			if (x->p >= x->end)
				return false;
			char e = *x->p++;
			if (e == 'n')
				c = '\n';
			else if (e == 'r')
				c = '\r';
			else if (e == 't')
				c = '\t';
			else if (e == '"' || e == '\\' || e == '/')
				c = e;
			else if (e == 'u' && x->end - x->p >= 4 &&
			    x->p[0] == '0' && x->p[1] == '0' &&
			    hexval(x->p[2]) >= 0 && hexval(x->p[3]) >= 0) {
				c = (char)(hexval(x->p[2]) * 16 +
				    hexval(x->p[3]));
				x->p += 4;
			} else
				return false;
		}
		if (!emit(x, c))
			return false;
	}
	if (x->p >= x->end)
		return false;
	x->p++;
	return emit(x, '\0');
}

// Reads a bare token up to one of stop (or the end) into scratch.
static bool
read_bare(in *x, const char *stop)
{
	const char *b = x->p;
	while (x->p < x->end && strchr(stop, *x->p) == NULL)
		if (!emit(x, *x->p++))
			return false;
	return x->p > b && emit(x, '\0');
}

static void
skip(in *x, const char *chars)
{
	while (x->p < x->end && strchr(chars, *x->p) != NULL)
		x->p++;
}

static int
parse_logfmt(in *x, dtx_log_kv *kv, size_t max)
{
	size_t n = 0;
	for (;;) {
		skip(x, " \t\r\n");
		if (x->p >= x->end)
			break;
		if (n == max)
			return -1;
		kv[n].key = x->s + x->n;
		if (!read_bare(x, "= \t\r\n\"") || x->p >= x->end ||
		    *x->p != '=')
			return -1;
		x->p++;
		kv[n].val = x->s + x->n;
		if (x->p < x->end && *x->p == '"') {
			if (!read_quoted(x))
				return -1;
		} else if (x->p >= x->end || strchr(" \t\r\n", *x->p)) {
			if (!emit(x, '\0'))
				return -1;
		} else if (!read_bare(x, " \t\r\n")) {
			return -1;
		}
		n++;
	}
	return (int)n;
}

static int
parse_json(in *x, dtx_log_kv *kv, size_t max)
{
	size_t n = 0;
	x->p++;
	for (;;) {
		skip(x, " \t");
		if (x->p < x->end && *x->p == '}')
			break;
		if (n == max || x->p >= x->end || *x->p != '"')
			return -1;
		kv[n].key = x->s + x->n;
		if (!read_quoted(x))
			return -1;
		skip(x, " \t");
		if (x->p >= x->end || *x->p++ != ':')
			return -1;
		skip(x, " \t");
		kv[n].val = x->s + x->n;
		if (x->p < x->end && *x->p == '"') {
			if (!read_quoted(x))
				return -1;
		} else if (!read_bare(x, ",} \t")) {
			return -1;
		}
		n++;
		skip(x, " \t");
		if (x->p < x->end && *x->p == ',')
			x->p++;
	}
	return (int)n;
}

int
dtx_log_parse(const char *line, size_t len, dtx_log_kv *kv, size_t max,
    char *scratch, size_t cap)
{
	in x = { .p = line, .end = line + len, .s = scratch, .cap = cap };
	skip(&x, " \t");
	int n = x.p < x.end && *x.p == '{' ? parse_json(&x, kv, max)
	                                   : parse_logfmt(&x, kv, max);
	if (n < 1 || strcmp(kv[0].key, "ts") != 0)
		return -1;
	return n;
}

const char *
dtx_log_get(const dtx_log_kv *kv, int n, const char *key)
{
	for (int i = 0; i < n; i++)
		if (strcmp(kv[i].key, key) == 0)
			return kv[i].val;
	return NULL;
}
