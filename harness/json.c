// SPDX-License-Identifier: MIT
//
// JSON for the harness and the dtx command: a small strict reader (RFC
// 8259) for the values the history and the results file hold, a text
// builder, and the streaming writer behind every --json. Every node and
// string of a parsed document lives in one arena so that freeing a
// document is one walk over its blocks; bad input gives an error with the
// byte offset, never a crash. The writer prints integers exactly (int64
// and uint64, never through a double), doubles with as many digits as
// they need to read back unchanged, and a verdict as true, false or
// "unknown".

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "harness_int.h"

typedef struct arena_block {
	struct arena_block *next;
	size_t used, cap;
	max_align_t data[];
} arena_block;

struct hx_jdoc {
	arena_block *blocks;
	hx_jv *root;
};

typedef struct parser {
	const char *p, *end, *start;
	hx_jdoc *doc;
	char *err;
	size_t errlen;
	dtx_err rv;
	bool count_only; // validation: build no tree
} parser;

static void *
arena_alloc(parser *ps, size_t n)
{
	n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	arena_block *b = ps->doc->blocks;
	if (b == NULL || b->cap - b->used < n) {
		size_t cap = n > 8192 ? n : 8192;
		arena_block *nb = dtx_alloc(sizeof(*nb) + cap);
		if (nb == NULL) {
			ps->rv = DTX_ENOMEM;
			return NULL;
		}
		nb->next = ps->doc->blocks;
		nb->used = 0;
		nb->cap = cap;
		ps->doc->blocks = nb;
		b = nb;
	}
	void *r = (char *)b->data + b->used;
	b->used += n;
	return r;
}

static bool
fail(parser *ps, const char *what)
{
	if (ps->rv == DTX_OK)
		ps->rv = DTX_EINVAL;
	if (ps->err != NULL && ps->errlen > 0 && ps->rv == DTX_EINVAL)
		snprintf(ps->err, ps->errlen, "offset %zu: %s",
		    (size_t)(ps->p - ps->start), what);
	return false;
}

static void
skip_ws(parser *ps)
{
	while (ps->p < ps->end &&
	    (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' ||
	        *ps->p == '\r'))
		ps->p++;
}

static bool
literal(parser *ps, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return fail(ps, "invalid literal");
	ps->p += n;
	return true;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
hex4(parser *ps, unsigned *out)
{
	if (ps->end - ps->p < 4)
		return fail(ps, "short \\u escape");
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(ps->p[i]);
		if (h < 0)
			return fail(ps, "bad hex digit in \\u escape");
		v = v * 16 + (unsigned)h;
	}
	ps->p += 4;
	*out = v;
	return true;
}

static size_t
put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

// Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0.
static size_t
utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0];
	size_t n;
	unsigned min;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	unsigned cp = c & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

// Parses a string at ps->p (on the opening quote). The decoded text is never
// longer than the source, so one arena allocation of the source length
// suffices.
static bool
parse_string(parser *ps, char **out, size_t *outlen)
{
	ps->p++;
	const char *s = ps->p;
	size_t cap = 0;
	while (s < ps->end && *s != '"') {
		if (*s == '\\' && s + 1 < ps->end)
			s++;
		s++;
	}
	cap = (size_t)(s - ps->p) + 1;
	char *buf = NULL;
	if (!ps->count_only) {
		buf = arena_alloc(ps, cap);
		if (buf == NULL)
			return false;
	}
	size_t n = 0;
	char tmp[4];
	for (;;) {
		if (ps->p >= ps->end)
			return fail(ps, "unterminated string");
		unsigned char c = (unsigned char)*ps->p;
		if (c == '"') {
			ps->p++;
			break;
		}
		if (c < 0x20)
			return fail(ps, "control character in string");
		if (c == '\\') {
			ps->p++;
			if (ps->p >= ps->end)
				return fail(ps, "unterminated string");
			char e = *ps->p++;
			char ch;
			switch (e) {
			case '"':
				ch = '"';
				break;
			case '\\':
				ch = '\\';
				break;
			case '/':
				ch = '/';
				break;
			case 'b':
				ch = '\b';
				break;
			case 'f':
				ch = '\f';
				break;
			case 'n':
				ch = '\n';
				break;
			case 'r':
				ch = '\r';
				break;
			case 't':
				ch = '\t';
				break;
			case 'u': {
				unsigned cp;
				if (!hex4(ps, &cp))
					return false;
				if (cp >= 0xDC00 && cp <= 0xDFFF)
					return fail(ps, "lone low surrogate");
				if (cp >= 0xD800 && cp <= 0xDBFF) {
					unsigned lo;
					if (ps->end - ps->p < 2 ||
					    ps->p[0] != '\\' || ps->p[1] != 'u')
						return fail(
						    ps, "lone high surrogate");
					ps->p += 2;
					if (!hex4(ps, &lo))
						return false;
					if (lo < 0xDC00 || lo > 0xDFFF)
						return fail(
						    ps, "bad surrogate pair");
					cp = 0x10000 + ((cp - 0xD800) << 10) +
					    (lo - 0xDC00);
				}
				if (cp == 0)
					return fail(ps, "\\u0000 in string");
				size_t k = put_utf8(tmp, cp);
				if (buf)
					memcpy(buf + n, tmp, k);
				n += k;
				continue;
			}
			default:
				ps->p--;
				return fail(ps, "bad escape in string");
			}
			if (buf)
				buf[n] = ch;
			n++;
			continue;
		}
		if (c >= 0x80) {
			size_t k = utf8_seq((const unsigned char *)ps->p,
			    (const unsigned char *)ps->end);
			if (k == 0)
				return fail(ps, "invalid UTF-8 in string");
			if (buf)
				memcpy(buf + n, ps->p, k);
			n += k;
			ps->p += k;
			continue;
		}
		if (buf)
			buf[n] = (char)c;
		n++;
		ps->p++;
	}
	if (buf)
		buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return true;
}

static bool
parse_number(parser *ps, hx_jv *v)
{
	const char *s = ps->p;
	bool neg = false;
	if (ps->p < ps->end && *ps->p == '-') {
		neg = true;
		ps->p++;
	}
	if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9'))
		return fail(ps, "bad number");
	bool is_int = true, overflow = false;
	uint64_t mag = 0;
	if (*ps->p == '0') {
		ps->p++;
		if (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			return fail(ps, "leading zero in number");
	} else {
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
			unsigned d = (unsigned)(*ps->p - '0');
			if (mag > (UINT64_MAX - d) / 10)
				overflow = true;
			else
				mag = mag * 10 + d;
			ps->p++;
		}
	}
	if (ps->p < ps->end && *ps->p == '.') {
		is_int = false;
		ps->p++;
		if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9'))
			return fail(ps, "digit expected after '.'");
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		is_int = false;
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9'))
			return fail(ps, "digit expected in exponent");
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (v == NULL)
		return true;
	char tmp[64];
	size_t n = (size_t)(ps->p - s);
	if (n < sizeof(tmp)) {
		memcpy(tmp, s, n);
		tmp[n] = '\0';
		v->d = strtod(tmp, NULL);
	} else {
		v->d = neg ? -HUGE_VAL : HUGE_VAL;
	}
	v->type = HX_JV_NUM;
	v->is_int = is_int && !overflow;
	v->neg = neg && mag != 0;
	v->mag = mag;
	return true;
}

static bool parse_value(parser *ps, hx_jv *v, int depth);

static int
cmp_key(const void *a, const void *b)
{
	const hx_jv *x = *(const hx_jv *const *)a;
	const hx_jv *y = *(const hx_jv *const *)b;
	return strcmp(x->key, y->key);
}

// Rejects duplicate keys: pairwise for small objects, by sorting otherwise.
static bool
check_dups(parser *ps, hx_jv *obj)
{
	if (obj->len < 2)
		return true;
	if (obj->len <= 8) {
		for (hx_jv *a = obj->first; a; a = a->next)
			for (hx_jv *b = a->next; b; b = b->next)
				if (strcmp(a->key, b->key) == 0)
					return fail(ps, "duplicate key");
		return true;
	}
	hx_jv **v = dtx_alloc(obj->len * sizeof(*v));
	if (v == NULL) {
		ps->rv = DTX_ENOMEM;
		return false;
	}
	size_t i = 0;
	for (hx_jv *a = obj->first; a; a = a->next)
		v[i++] = a;
	qsort(v, obj->len, sizeof(*v), cmp_key);
	bool ok = true;
	for (i = 1; i < obj->len && ok; i++)
		if (strcmp(v[i - 1]->key, v[i]->key) == 0)
			ok = false;
	dtx_free(v);
	return ok ? true : fail(ps, "duplicate key");
}

static hx_jv *
new_node(parser *ps)
{
	hx_jv *n = arena_alloc(ps, sizeof(*n));
	if (n != NULL)
		memset(n, 0, sizeof(*n));
	return n;
}

static bool
parse_container(parser *ps, hx_jv *v, int depth, bool is_obj)
{
	char close = is_obj ? '}' : ']';
	if (depth >= HX_JV_MAX_DEPTH)
		return fail(ps, "nesting too deep");
	ps->p++;
	if (v) {
		v->type = is_obj ? HX_JV_OBJ : HX_JV_ARR;
		v->len = 0;
	}
	hx_jv *last = NULL;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return true;
	}
	for (;;) {
		skip_ws(ps);
		hx_jv *m = NULL;
		if (!ps->count_only && (m = new_node(ps)) == NULL)
			return false;
		if (is_obj) {
			if (ps->p >= ps->end || *ps->p != '"')
				return fail(ps, "object key expected");
			char *key;
			size_t klen;
			if (!parse_string(ps, &key, &klen))
				return false;
			if (m)
				m->key = key;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':')
				return fail(ps, "':' expected");
			ps->p++;
		}
		if (!parse_value(ps, m, depth + 1))
			return false;
		if (v) {
			if (last)
				last->next = m;
			else
				v->first = m;
			last = m;
			v->len++;
		}
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == close)
				return fail(ps, "trailing comma");
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			break;
		}
		return fail(
		    ps, is_obj ? "',' or '}' expected" : "',' or ']' expected");
	}
	if (is_obj && v)
		return check_dups(ps, v);
	return true;
}

static bool
parse_value(parser *ps, hx_jv *v, int depth)
{
	skip_ws(ps);
	if (ps->p >= ps->end)
		return fail(ps, "value expected");
	switch (*ps->p) {
	case '{':
		return parse_container(ps, v, depth, true);
	case '[':
		return parse_container(ps, v, depth, false);
	case '"': {
		char *s;
		size_t n;
		if (!parse_string(ps, &s, &n))
			return false;
		if (v) {
			v->type = HX_JV_STR;
			v->s = s;
			v->len = n;
		}
		return true;
	}
	case 't':
		if (v) {
			v->type = HX_JV_BOOL;
			v->b = true;
		}
		return literal(ps, "true");
	case 'f':
		if (v)
			v->type = HX_JV_BOOL;
		return literal(ps, "false");
	case 'n':
		if (v)
			v->type = HX_JV_NULL;
		return literal(ps, "null");
	default:
		return parse_number(ps, v);
	}
}

void
hx_jdoc_free(hx_jdoc *d)
{
	if (d == NULL)
		return;
	arena_block *b = d->blocks;
	while (b != NULL) {
		arena_block *n = b->next;
		dtx_free(b);
		b = n;
	}
	dtx_free(d);
}

static bool
run(parser *ps)
{
	hx_jv *root = NULL;
	if (!ps->count_only) {
		root = new_node(ps);
		if (root == NULL)
			return false;
		ps->doc->root = root;
	}
	if (!parse_value(ps, root, 0))
		return false;
	skip_ws(ps);
	if (ps->p != ps->end)
		return fail(ps, "unexpected text after the value");
	return true;
}

dtx_err
hx_json_parse(
    const char *text, size_t len, hx_jdoc **out, char *err, size_t errlen)
{
	if (text == NULL || out == NULL)
		return DTX_EINVAL;
	hx_jdoc *d = dtx_calloc(1, sizeof(*d));
	if (d == NULL)
		return DTX_ENOMEM;
	parser ps = { .p = text,
		.end = text + len,
		.start = text,
		.doc = d,
		.err = err,
		.errlen = errlen };
	if (!run(&ps)) {
		hx_jdoc_free(d);
		return ps.rv == DTX_OK ? DTX_EINVAL : ps.rv;
	}
	*out = d;
	return DTX_OK;
}

bool
hx_json_valid(const char *text, size_t len)
{
	if (text == NULL)
		return false;
	hx_jdoc d = { 0 };
	parser ps = { .p = text,
		.end = text + len,
		.start = text,
		.doc = &d,
		.count_only = true };
	// Validation builds no tree, so it needs no memory and duplicate
	// keys are not detected here; hx_json_parse rejects them.
	return run(&ps);
}

const hx_jv *
hx_jdoc_root(const hx_jdoc *d)
{
	return d ? d->root : NULL;
}

const hx_jv *
hx_jv_get(const hx_jv *v, const char *key)
{
	if (v == NULL || v->type != HX_JV_OBJ)
		return NULL;
	for (const hx_jv *m = v->first; m; m = m->next)
		if (strcmp(m->key, key) == 0)
			return m;
	return NULL;
}

dtx_err
hx_jv_int(const hx_jv *v, int64_t *out)
{
	if (v == NULL || v->type != HX_JV_NUM || !v->is_int)
		return DTX_EINVAL;
	if (v->neg) {
		if (v->mag > (uint64_t)INT64_MAX + 1)
			return DTX_ERANGE;
		*out = v->mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN
		                                         : -(int64_t)v->mag;
		return DTX_OK;
	}
	if (v->mag > (uint64_t)INT64_MAX)
		return DTX_ERANGE;
	*out = (int64_t)v->mag;
	return DTX_OK;
}

dtx_err
hx_jv_u64(const hx_jv *v, uint64_t *out)
{
	if (v == NULL || v->type != HX_JV_NUM || !v->is_int)
		return DTX_EINVAL;
	if (v->neg)
		return DTX_ERANGE;
	*out = v->mag;
	return DTX_OK;
}

// ---------------------------------------------------------------- builder

void
hx_sb_vprintf(hx_sb *sb, const char *fmt, va_list ap)
{
	if (sb->oom)
		return;
	for (;;) {
		va_list cp;
		va_copy(cp, ap);
		size_t room = sb->cap - sb->len;
		int n = vsnprintf(
		    sb->buf ? sb->buf + sb->len : NULL, room, fmt, cp);
		va_end(cp);
		if (n < 0) {
			sb->oom = true;
			return;
		}
		if ((size_t)n < room) {
			sb->len += (size_t)n;
			return;
		}
		// Room for the text and its NUL, then format again.
		if (DTX_GROW(sb->buf, sb->len + (size_t)n, sb->cap, 256) !=
		    DTX_OK) {
			sb->oom = true;
			return;
		}
	}
}

void
hx_sb_printf(hx_sb *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	hx_sb_vprintf(sb, fmt, ap);
	va_end(ap);
}

void
hx_sb_json_str(hx_sb *sb, const char *s)
{
	hx_sb_printf(sb, "\"");
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;
	     p++) {
		if (*p == '"' || *p == '\\')
			hx_sb_printf(sb, "\\%c", *p);
		else if (*p < 0x20)
			hx_sb_printf(sb, "\\u%04x", *p);
		else
			hx_sb_printf(sb, "%c", *p);
	}
	hx_sb_printf(sb, "\"");
}

char *
hx_sb_take(hx_sb *sb)
{
	if (sb->oom ||
	    (sb->buf == NULL &&
	        (hx_sb_printf(sb, "%s", ""), sb->buf == NULL))) {
		hx_sb_fini(sb);
		return NULL;
	}
	char *r = sb->buf;
	sb->buf = NULL;
	sb->len = sb->cap = 0;
	return r;
}

void
hx_sb_fini(hx_sb *sb)
{
	dtx_free(sb->buf);
	sb->buf = NULL;
	sb->len = sb->cap = 0;
	sb->oom = false;
}

// ---------------------------------------------------------------- writer

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
hx_json_u64(hx_json *j, const char *key, uint64_t val)
{
	sep(j, key);
	fprintf(j->out, "%llu", (unsigned long long)val);
}

void
hx_json_fmt_double(char *buf, size_t len, double val)
{
	if (!isfinite(val)) {
		snprintf(buf, len, "null");
		return;
	}
	// The shortest of 15, 16 or 17 significant digits that reads back
	// as the same double: 0.1 stays "0.1", 176577581 stays "176577581"
	// and nothing is rounded away (a seed written with %.6g once lost
	// its last digits and its run could not be reproduced).
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, val);
		if (strtod(buf, NULL) == val)
			break;
	}
}

void
hx_json_num(hx_json *j, const char *key, double val)
{
	char buf[40];
	sep(j, key);
	hx_json_fmt_double(buf, sizeof(buf), val);
	fputs(buf, j->out);
}

void
hx_json_bool(hx_json *j, const char *key, bool val)
{
	sep(j, key);
	fputs(val ? "true" : "false", j->out);
}

const char *
hx_valid_json(hx_valid v)
{
	return v == HX_VALID_TRUE ? "true"
	    : v == HX_VALID_FALSE ? "false"
	                          : "\"unknown\"";
}

void
hx_json_verdict(hx_json *j, const char *key, hx_valid v)
{
	hx_json_key(j, key);
	fputs(hx_valid_json(v), j->out);
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
