// SPDX-License-Identifier: MIT
//
// The log record formatter and parser (common/logfmt.c): logfmt values
// quoted exactly when they must be (spaces, quotes, '=', newlines, control
// characters, empty), every record read back to the same keys and values,
// JSON records valid JSON with integers as numbers, records cut to fit a
// small buffer still valid, and lines that are not records refused.

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common.h"
#include "harness.h"

// 2026-12-05T01:13:51.123Z
#define T0 (UINT64_C(1796433231) * 1000000000u + 123456789u)

static const char *const hostile[] = {
	"plain",
	"two words",
	"say \"hi\"",
	"a=b",
	"line one\nline two\r\n",
	"back\\slash",
	"tab\there",
	"bell\a and \x01",
	"",
	"trailing space ",
	"unicode ü ok",
	"bad \xff utf8 \xc3",
};
#define NHOSTILE (sizeof(hostile) / sizeof(hostile[0]))

static size_t
fmt(char *buf, size_t cap, dtx_log_format f, const char *v)
{
	dtx_log_field fields[] = { DTX_LF_TXID(42), DTX_LF_GID("g-7 x"),
		DTX_LF_I("delta", -5), DTX_LF_S("why", v),
		DTX_LF_S("absent", NULL) };
	dtx_log_record r = { .realtime_ns = T0,
		.level = DTX_LOG_WARN,
		.node = "part-1",
		.msgid = "REFUSED",
		.fields = fields,
		.nfields = 5,
		.text = v,
		.suppressed = 3 };
	return dtx_log_format_record(buf, cap, f, &r);
}

static void
test_logfmt_quoting(void **state)
{
	(void)state;
	char line[1024];
	size_t n = fmt(line, sizeof(line), DTX_LOG_FMT_LOGFMT, "plain");
	assert_string_equal(line,
	    "ts=2026-12-05T01:13:51.123Z level=warn node=part-1 msg=REFUSED "
	    "txid=42 gid=\"g-7 x\" delta=-5 why=plain text=plain "
	    "suppressed=3\n");
	assert_int_equal(n, strlen(line));
	fmt(line, sizeof(line), DTX_LOG_FMT_LOGFMT, "say \"hi\"\n");
	assert_non_null(strstr(line, " why=\"say \\\"hi\\\"\\n\" "));
	fmt(line, sizeof(line), DTX_LOG_FMT_LOGFMT, "");
	assert_non_null(strstr(line, " why=\"\" "));
	// An empty text is left out; a NULL string field too.
	assert_null(strstr(line, "text="));
	assert_null(strstr(line, "absent"));
	fmt(line, sizeof(line), DTX_LOG_FMT_LOGFMT, "a=b");
	assert_non_null(strstr(line, " why=\"a=b\" "));
	fmt(line, sizeof(line), DTX_LOG_FMT_LOGFMT, "bell\a");
	assert_non_null(strstr(line, " why=\"bell\\u0007\" "));

	// Every hostile value: one line, read back to the same fields.
	for (size_t i = 0; i < NHOSTILE; i++) {
		n = fmt(line, sizeof(line), DTX_LOG_FMT_LOGFMT, hostile[i]);
		assert_int_equal(strchr(line, '\n'), line + n - 1);
		char scratch[2048];
		dtx_log_kv kv[16];
		int k =
		    dtx_log_parse(line, n, kv, 16, scratch, sizeof(scratch));
		assert_true(k >= 8);
		assert_string_equal(
		    dtx_log_get(kv, k, "ts"), "2026-12-05T01:13:51.123Z");
		assert_string_equal(dtx_log_get(kv, k, "level"), "warn");
		assert_string_equal(dtx_log_get(kv, k, "msg"), "REFUSED");
		assert_string_equal(dtx_log_get(kv, k, "txid"), "42");
		assert_string_equal(dtx_log_get(kv, k, "gid"), "g-7 x");
		assert_string_equal(dtx_log_get(kv, k, "delta"), "-5");
		assert_string_equal(dtx_log_get(kv, k, "why"), hostile[i]);
		assert_string_equal(dtx_log_get(kv, k, "suppressed"), "3");
		assert_null(dtx_log_get(kv, k, "absent"));
	}
}

static void
test_json_valid(void **state)
{
	(void)state;
	char line[1024];
	for (size_t i = 0; i < NHOSTILE; i++) {
		size_t n =
		    fmt(line, sizeof(line), DTX_LOG_FMT_JSON, hostile[i]);
		assert_int_equal(strchr(line, '\n'), line + n - 1);
		hx_jdoc *doc = NULL;
		char err[128];
		assert_int_equal(
		    hx_json_parse(line, n - 1, &doc, err, sizeof(err)), DTX_OK);
		const hx_jv *root = hx_jdoc_root(doc);
		assert_int_equal(root->type, HX_JV_OBJ);
		const hx_jv *v = hx_jv_get(root, "txid");
		assert_non_null(v);
		assert_int_equal(v->type, HX_JV_NUM);
		v = hx_jv_get(root, "why");
		assert_non_null(v);
		assert_int_equal(v->type, HX_JV_STR);
		// Bytes that are not UTF-8 are escaped as \u00XX, which JSON
		// reads as U+00XX: only well-formed text reads back as is.
		if (strchr(hostile[i], '\xff') == NULL)
			assert_string_equal(v->s, hostile[i]);
		assert_string_equal(hx_jv_get(root, "msg")->s, "REFUSED");
		hx_jdoc_free(doc);
		// The log's own parser reads JSON records too.
		char scratch[2048];
		dtx_log_kv kv[16];
		int k =
		    dtx_log_parse(line, n, kv, 16, scratch, sizeof(scratch));
		assert_true(k >= 8);
		assert_string_equal(dtx_log_get(kv, k, "why"), hostile[i]);
		assert_string_equal(dtx_log_get(kv, k, "txid"), "42");
	}
}

// A record longer than the buffer is cut inside a value and stays valid.
static void
test_cut(void **state)
{
	(void)state;
	char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[100] = ' ';
	big[200] = '"';
	for (size_t cap = 64; cap <= 600; cap += 37) {
		char line[600];
		for (int f = 0; f < 2; f++) {
			size_t n = fmt(line, cap, (dtx_log_format)f, big);
			assert_true(n < cap);
			assert_int_equal(line[n - 1], '\n');
			assert_int_equal(strlen(line), n);
			char scratch[2048];
			dtx_log_kv kv[16];
			assert_true(dtx_log_parse(line, n, kv, 16, scratch,
			                sizeof(scratch)) >= 1);
			if (f == DTX_LOG_FMT_JSON) {
				hx_jdoc *doc = NULL;
				assert_int_equal(
				    hx_json_parse(line, n - 1, &doc, NULL, 0),
				    DTX_OK);
				hx_jdoc_free(doc);
			}
		}
	}
}

static void
test_parse_refuses(void **state)
{
	(void)state;
	const char *bad[] = {
		"",
		"just some words",
		"level=info msg=X", // not a record: ts is not first
		"ts=1 why=\"unterminated",
		"ts=1 why=\"bad escape \\q\"",
		"ts=1 =novalue",
		"{\"ts\":\"1\",\"msg\":}",
		"{\"ts\":\"1\"",
		"2026-01-01T00:00:00.000Z INFO part-1 READY ok",
	};
	char scratch[256];
	dtx_log_kv kv[8];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(dtx_log_parse(bad[i], strlen(bad[i]), kv, 8,
		                     scratch, sizeof(scratch)),
		    -1);
	// Too many pairs or too little scratch: refused, not overrun.
	const char *many = "ts=1 a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 i=9";
	assert_int_equal(
	    dtx_log_parse(many, strlen(many), kv, 8, scratch, sizeof(scratch)),
	    -1);
	assert_int_equal(
	    dtx_log_parse(many, strlen(many), kv, 8, scratch, 8), -1);
	// An empty bare value is an empty string.
	const char *empty = "ts=1 a= b=2";
	int k = dtx_log_parse(
	    empty, strlen(empty), kv, 8, scratch, sizeof(scratch));
	assert_int_equal(k, 3);
	assert_string_equal(dtx_log_get(kv, k, "a"), "");
	assert_string_equal(dtx_log_get(kv, k, "b"), "2");
	dtx_log_format f;
	assert_int_equal(dtx_log_format_parse("json", &f), DTX_OK);
	assert_int_equal(f, DTX_LOG_FMT_JSON);
	assert_int_equal(dtx_log_format_parse("LOGFMT", &f), DTX_OK);
	assert_int_equal(f, DTX_LOG_FMT_LOGFMT);
	assert_int_equal(dtx_log_format_parse("xml", &f), DTX_EINVAL);
	assert_int_equal(dtx_log_format_parse(NULL, &f), DTX_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_logfmt_quoting),
		cmocka_unit_test(test_json_valid),
		cmocka_unit_test(test_cut),
		cmocka_unit_test(test_parse_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
