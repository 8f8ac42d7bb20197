/*
 * test_payload.c -- unit tests of src/payload: payload validation (every rule
 * and its message), canonical text (whitespace, number and string round
 * trips), top-level merge, deep nesting that must not crash, the size limit
 * at its exact boundary, and out-of-memory injection (NDL_NOMEM, no leaks).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "payload/json.h"
#include "payload/json_print.h"
#include "payload/json_scan.h"
#include "util/alloc.h"
#include "util/base.h"

#define MAX PAYLOAD_DEFAULT_MAX_BYTES

/* ---------------------------------------------------------------- helpers */

static ndl_status validate_str(const char *s, ndl_error *err) { return payload_validate(s, strlen(s), MAX, err); }

/* Expects s (NUL-terminated) to be refused with a message containing every
 * non-NULL fragment. */
static size_t g_max = MAX; /* the limit expect_invalid* use */

static void expect_invalid_len(const char *s, size_t len, const char *frag1, const char *frag2)
{
    ndl_error err = {0};
    ndl_status st = payload_validate(s, len, g_max, &err);
    if (st != NDL_INVALID)
        fail_msg("accepted (status %d) a bad payload of %zu bytes: %.60s", (int)st, len, s);
    assert_int_equal(err.status, NDL_INVALID);
    if (frag1 && !strstr(err.msg, frag1))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, frag1);
    if (frag2 && !strstr(err.msg, frag2))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, frag2);
    /* canonical and prepare refuse the same text with the same status */
    char *out = (char *)1;
    size_t n = 0;
    assert_int_equal(payload_canonical(s, len, &out, &n, NULL), NDL_INVALID);
    assert_int_equal(payload_prepare(s, len, g_max, &out, &n, NULL), NDL_INVALID);
}

static void expect_invalid(const char *s, const char *frag1, const char *frag2)
{
    expect_invalid_len(s, strlen(s), frag1, frag2);
}

/* Canonical text of s must equal want. */
static void expect_canonical(const char *s, const char *want)
{
    char *out = NULL;
    size_t n = 0;
    ndl_error err = {0};
    ndl_status st = payload_canonical(s, strlen(s), &out, &n, &err);
    if (st != NDL_OK)
        fail_msg("payload_canonical(%s) failed: %s", s, err.msg);
    assert_int_equal(n, strlen(out));
    if (strcmp(out, want) != 0)
        fail_msg("canonical of %s\n  is   %s\n  want %s", s, out, want);
    /* canonical text is a fixed point */
    char *again = NULL;
    size_t n2 = 0;
    assert_int_equal(payload_canonical(out, n, &again, &n2, &err), NDL_OK);
    assert_int_equal(n2, n);
    assert_memory_equal(again, out, n);
    ndl_free(again);
    ndl_free(out);
}

static char *nested(size_t depth, const char *open, const char *inner, const char *close)
{
    size_t lo = strlen(open), li = strlen(inner), lc = strlen(close);
    char *s = malloc(depth * (lo + lc) + li + 1);
    assert_non_null(s);
    char *p = s;
    for (size_t i = 0; i < depth; i++, p += lo)
        memcpy(p, open, lo);
    memcpy(p, inner, li);
    p += li;
    for (size_t i = 0; i < depth; i++, p += lc)
        memcpy(p, close, lc);
    *p = 0;
    return s;
}

/* ---------------------------------------------------------------- valid */

static void test_payload_valid_shapes(void **state)
{
    (void)state;
    static const char *ok[] = {
        "{}",
        " \t\r\n{ } \n",
        "{\"a\":1}",
        "{\"category\":\"tech\",\"price\":12.5,\"year\":2024,\"in_stock\":true,\"note\":null}",
        "{\"tags\":[\"a\",\"b\"],\"empty\":[],\"obj\":{},\"mixed\":[1,\"x\",null,false,{\"k\":[]}]}",
        "{\"meta\":{\"author\":{\"name\":\"john\",\"ids\":[1,2,3]}}}",
        "{\"caf\xc3\xa9\":\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\",\"emoji\":\"\xf0\x9f\x98\x80\"}",
        "{\"\":\"empty key\",\" \":\"space key\"}",
        "{\"n\":[0,-0,1e0,-1.5E+3,2e-3,0.0,123456789012345678,-9223372036854775808]}",
        "{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\ud83d\\ude00\\u0000\"}",
        "{\"text\":\"[[[[{{{{ brackets in a string do not nest\",\"q\":\"\\\"[\"}",
        "{\"u2028\":\"\xe2\x80\xa8\",\"max\":\"\xf4\x8f\xbf\xbf\"}",
    };
    for (size_t i = 0; i < NDL_ARRAY_LEN(ok); i++) {
        ndl_error err = {0};
        ndl_status st = validate_str(ok[i], &err);
        if (st != NDL_OK)
            fail_msg("refused %s: %s", ok[i], err.msg);
        char *out = NULL;
        size_t n;
        assert_int_equal(payload_prepare(ok[i], strlen(ok[i]), MAX, &out, &n, &err), NDL_OK);
        ndl_free(out);
    }
    /* No NUL terminator needed: a length inside a larger buffer. */
    const char buf[] = "{\"a\":1}GARBAGE";
    assert_int_equal(payload_validate(buf, 7, MAX, NULL), NDL_OK);
}

static void test_payload_depth_boundary(void **state)
{
    (void)state;
    /* {} is depth 1; 64 nested containers pass, 65 do not. */
    char *arr64 = nested(PAYLOAD_MAX_DEPTH - 1, "[", "", "]");
    char *ok = malloc(strlen(arr64) + 8);
    sprintf(ok, "{\"a\":%s}", arr64);
    ndl_error err = {0};
    assert_int_equal(validate_str(ok, &err), NDL_OK);
    expect_canonical(ok, ok);
    free(ok);
    free(arr64);

    char *obj64 = nested(PAYLOAD_MAX_DEPTH, "{\"k\":", "1", "}");
    /* the innermost "{"k":1}" is a level of its own: 64 '{' in all */
    char *obj64b = nested(PAYLOAD_MAX_DEPTH - 1, "{\"k\":", "{}", "}");
    assert_int_equal(validate_str(obj64b, &err), NDL_OK);
    assert_int_equal(validate_str(obj64, &err), NDL_OK);
    free(obj64);
    free(obj64b);

    char *obj65 = nested(PAYLOAD_MAX_DEPTH + 1, "{\"k\":", "1", "}");
    /* the 65th '{' sits at byte offset 64 * 5 = 320, column 321 */
    expect_invalid(obj65, "payload nests deeper than 64 levels", "line 1 column 321, byte offset 320");
    free(obj65);

    char *arr65 = nested(PAYLOAD_MAX_DEPTH, "[", "", "]");
    char *bad = malloc(strlen(arr65) + 8);
    sprintf(bad, "{\"a\":%s}", arr65);
    expect_invalid(bad, "nests deeper than 64 levels", NULL);
    free(bad);
    free(arr65);
}

static void test_payload_deep_nesting_does_not_crash(void **state)
{
    (void)state;
    /* 100,000 levels, closed and unclosed, arrays, objects and a mix: an
     * error each time, never a stack overflow. */
    g_max = SIZE_MAX;
    char *a = nested(100000, "[", "", "]");
    expect_invalid(a, "nests deeper than 64 levels", "byte offset 64");
    memset(a + 100000, ' ', 100000); /* unclosed */
    expect_invalid(a, "nests deeper than 64 levels", NULL);
    free(a);
    char *o = nested(100000, "{\"a\":", "0", "}");
    expect_invalid(o, "nests deeper than 64 levels", NULL);
    free(o);
    char *m = nested(100000, "{\"a\":[", "0", "]}");
    expect_invalid(m, "nests deeper than 64 levels", NULL);
    char *out;
    size_t n;
    assert_int_equal(payload_merge("{}", 2, m, strlen(m), MAX, &out, &n, NULL), NDL_INVALID);
    assert_int_equal(payload_merge(m, strlen(m), "{}", 2, MAX, &out, &n, NULL), NDL_CORRUPT);
    /* the size check comes first, depth is not even scanned */
    ndl_error err = {0};
    assert_int_equal(payload_validate(m, strlen(m), MAX, &err), NDL_INVALID);
    assert_non_null(strstr(err.msg, "bytes; the limit is 65536"));
    free(m);
    /* the scanner alone, on a text of brackets only */
    size_t at = 0;
    char *b = nested(100000, "[", "", "]");
    assert_false(json_depth_within(b, strlen(b), 64, &at));
    assert_int_equal(at, 64);
    assert_true(json_depth_within(b, strlen(b), 100000, &at));
    free(b);
    g_max = MAX;
}

/* ---------------------------------------------------------------- canonical */

static void test_payload_canonical_whitespace_and_order(void **state)
{
    (void)state;
    expect_canonical(" { \"b\" : 1 ,\n\t\"a\" : [ 1 , 2 , { } ] , \"c\" : { \"z\" : null , \"y\" : true } }\r\n",
                     "{\"b\":1,\"a\":[1,2,{}],\"c\":{\"z\":null,\"y\":true}}");
    expect_canonical("{}", "{}");
    expect_canonical("{\"a\":false}", "{\"a\":false}");
}

static void test_payload_canonical_numbers(void **state)
{
    (void)state;
    expect_canonical("{\"a\":0.1}", "{\"a\":0.1}");
    expect_canonical("{\"a\":0.30000000000000004}", "{\"a\":0.30000000000000004}");
    expect_canonical("{\"a\":1.0}", "{\"a\":1.0}");
    expect_canonical("{\"a\":-0.0}", "{\"a\":-0.0}");
    expect_canonical("{\"a\":1e300}", "{\"a\":1e300}");
    expect_canonical("{\"a\":1.5e-7}", "{\"a\":1.5e-7}");
    expect_canonical("{\"a\":1E5}", "{\"a\":100000.0}");
    expect_canonical("{\"a\":2.5E-3}", "{\"a\":0.0025}");
    expect_canonical("{\"a\":1.7976931348623157e308}", "{\"a\":1.7976931348623157e308}");
    expect_canonical("{\"a\":4.9406564584124654e-324}", "{\"a\":4.94065645841247e-324}");
    expect_canonical("{\"a\":123456789.123456789}", "{\"a\":123456789.12345679}");
    expect_canonical("{\"a\":0.123456791}", "{\"a\":0.123456791}");
    /* integers are exact over the whole int64 range */
    expect_canonical("{\"a\":9007199254740993,\"b\":9223372036854775807,\"c\":-9223372036854775808,\"d\":-0}",
                     "{\"a\":9007199254740993,\"b\":9223372036854775807,\"c\":-9223372036854775808,\"d\":0}");

    /* Random finite doubles: the canonical text reads back bit-exactly. */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        uint64_t bits = x * 0x2545F4914F6CDD1Dull;
        double d;
        memcpy(&d, &bits, sizeof d);
        if (!isfinite(d))
            continue;
        char in[64];
        snprintf(in, sizeof in, "{\"v\":%.17g}", d);
        char *out;
        size_t n;
        ndl_error err = {0};
        if (payload_canonical(in, strlen(in), &out, &n, &err) != NDL_OK)
            fail_msg("%s: %s", in, err.msg);
        assert_true(strncmp(out, "{\"v\":", 5) == 0);
        double back = strtod(out + 5, NULL);
        if (memcmp(&back, &d, sizeof d) != 0)
            fail_msg("%s -> %s does not round-trip", in, out);
        ndl_free(out);
    }
    /* the formatter itself */
    char buf[32];
    assert_int_equal(json_format_real(INFINITY, buf), 0);
    assert_int_equal(json_format_real(NAN, buf), 0);
    assert_int_equal(json_format_real(2.0, buf), 3);
    assert_string_equal(buf, "2.0");
    json_format_real(-1e-300, buf);
    assert_string_equal(buf, "-1e-300");
    json_format_real(1e15, buf);
    assert_string_equal(buf, "1e15");
    json_format_real(123456789012345.0, buf);
    assert_string_equal(buf, "123456789012345.0");
}

static void test_payload_canonical_strings(void **state)
{
    (void)state;
    /* minimal escapes; \/ and \u escapes of printable characters decoded */
    expect_canonical("{\"s\":\"\\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u0001\\u001F\\u007f\"}",
                     "{\"s\":\"\\\"q\\\" \\\\ / \\b\\f\\n\\r\\t \\u0001\\u001f\x7f\"}");
    expect_canonical("{\"s\":\"\\u00e9\\u65E5\\ud83d\\ude00\"}",
                     "{\"s\":\"\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\"}");
    expect_canonical("{\"caf\xc3\xa9\":\"\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xe2\x80\xa8\"}",
                     "{\"caf\xc3\xa9\":\"\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xe2\x80\xa8\"}");
    /* \u0000 inside a value survives (lengths, not strlen) */
    expect_canonical("{\"s\":\"a\\u0000b\"}", "{\"s\":\"a\\u0000b\"}");
    expect_canonical("{\"\\u0041\\n\":1}", "{\"A\\n\":1}");
}

/* ---------------------------------------------------------------- errors */

static void test_payload_not_json(void **state)
{
    (void)state;
    expect_invalid("hello", "payload is not valid JSON at line 1 column", NULL);
    expect_invalid("{\"a\": 1,, \"b\": 2}", "not valid JSON at line 1 column 9", NULL);
    expect_invalid("{\"name\": \"x\",\n \"v\": [1, 2,\n  tru]}", "at line 3 column", NULL);
    expect_invalid("{\"a\":}", "not valid JSON", NULL);
    expect_invalid("{\"a\":1,}", "not valid JSON", NULL);
    expect_invalid("{\"a\":1} x", "not valid JSON", NULL);
    expect_invalid("{\"a\":1}{}", "not valid JSON", NULL);
    expect_invalid("{a:1}", "not valid JSON", NULL);
    expect_invalid("{'a':1}", "not valid JSON", NULL);
    expect_invalid("{\"a\":1 /* c */}", "not valid JSON", NULL);
    expect_invalid("{\"a\":NaN}", "not valid JSON", NULL);
    expect_invalid("{\"a\":Infinity}", "not valid JSON", NULL);
    expect_invalid("{\"a\":01}", "not valid JSON", NULL);
    expect_invalid("{\"a\":1.}", "not valid JSON", NULL);
    expect_invalid("{\"a\":-.5}", "not valid JSON", NULL);
    expect_invalid("{\"a\":+1}", "not valid JSON", NULL);
    expect_invalid("{\"a\":\"x\ty\"}", "not valid JSON", NULL); /* raw control character */
    expect_invalid("{\"a\":\"\\x41\"}", "not valid JSON", NULL);
    expect_invalid("{\"a\":\"\\ud800\"}", "not valid JSON", NULL); /* lone surrogate escape */
    expect_invalid("{\"a\":\"\\udc00\\ud800\"}", "not valid JSON", NULL);
    expect_invalid_len("{\"a\":1}\0", 8, "not valid JSON", NULL); /* NUL byte in the text */
}

static void test_payload_truncated(void **state)
{
    (void)state;
    const char *full = "{\"a\":[1,2.5,{\"b\":\"caf\xc3\xa9\"}],\"c\":true}";
    size_t len = strlen(full);
    for (size_t cut = 1; cut < len; cut++) {
        ndl_error err = {0};
        ndl_status st = payload_validate(full, cut, MAX, &err);
        if (st != NDL_INVALID)
            fail_msg("prefix of %zu bytes accepted", cut);
        if (!strstr(err.msg, "payload is not valid"))
            fail_msg("prefix %zu: %s", cut, err.msg);
    }
    expect_invalid("{\"a\": \"b", "line 1 column", "premature end of input");
    expect_invalid("", "payload is empty", NULL);
    expect_invalid(" \n\t ", "payload is empty", NULL);
    ndl_error err = {0};
    assert_int_equal(payload_validate(NULL, 0, MAX, &err), NDL_INVALID);
    assert_non_null(strstr(err.msg, "payload is empty"));
    assert_int_equal(payload_validate(NULL, 5, MAX, &err), NDL_INVALID);
    assert_non_null(strstr(err.msg, "missing"));
}

static void test_payload_wrong_top_level(void **state)
{
    (void)state;
    expect_invalid("[1,2]", "payload must be a JSON object, got an array", NULL);
    expect_invalid(" 42 ", "payload must be a JSON object, got a number", NULL);
    expect_invalid("-1.5e3", "got a number", NULL);
    expect_invalid("\"{}\"", "payload must be a JSON object, got a string", NULL);
    expect_invalid("true", "got a boolean", NULL);
    expect_invalid("false", "got a boolean", NULL);
    expect_invalid("null", "got null", NULL);
}

static void test_payload_invalid_utf8(void **state)
{
    (void)state;
    expect_invalid("{\"a\":\"x\xff\"}", "payload is not valid UTF-8: byte 0xFF at line 1 column 8 (byte offset 7)",
                   NULL);
    expect_invalid("{\"\xc3\xa9\":\"\x80\"}", "byte 0x80 at line 1 column 7 (byte offset 7)", NULL);
    expect_invalid("{\"a\":\n\"\xe6\x97\"}", "not valid UTF-8: byte 0xE6 at line 2 column 2", NULL);
    expect_invalid("{\"a\xfe\":1}", "not valid UTF-8", NULL);                     /* in a key */
    expect_invalid("{\"a\":1}\xff", "not valid UTF-8", NULL);                     /* outside strings */
    expect_invalid("{\"a\":\"\xc0\xaf\"}", "not valid UTF-8: byte 0xC0", NULL);   /* overlong '/' */
    expect_invalid("{\"a\":\"\xc1\xbf\"}", "not valid UTF-8", NULL);              /* overlong */
    expect_invalid("{\"a\":\"\xe0\x80\xaf\"}", "not valid UTF-8", NULL);          /* overlong, 3 bytes */
    expect_invalid("{\"a\":\"\xf0\x80\x80\xaf\"}", "not valid UTF-8", NULL);      /* overlong, 4 bytes */
    expect_invalid("{\"a\":\"\xed\xa0\x80\"}", "not valid UTF-8", NULL);          /* surrogate U+D800 */
    expect_invalid("{\"a\":\"\xed\xbf\xbf\"}", "not valid UTF-8", NULL);          /* surrogate U+DFFF */
    expect_invalid("{\"a\":\"\xf4\x90\x80\x80\"}", "not valid UTF-8", NULL);      /* > U+10FFFF */
    expect_invalid("{\"a\":\"\xf5\x80\x80\x80\"}", "not valid UTF-8", NULL);
    expect_invalid("{\"a\":\"\xe6\x97\xa5", "not valid", NULL);                   /* valid UTF-8, cut JSON */
    expect_invalid_len("{\"a\":\"\xe6\x97", 7, "not valid UTF-8", NULL);         /* sequence cut at the end */
}

static void test_payload_duplicates_ranges_nul_keys(void **state)
{
    (void)state;
    expect_invalid("{\"a\":1,\"b\":2,\"a\":3}", "payload has a duplicate key at line 1 column", "\"a\"");
    expect_invalid("{\"o\":{\"k\":1,\"k\":1}}", "duplicate key", NULL);
    expect_invalid("{\"\\u0061\":1,\"a\":2}", "duplicate key", NULL); /* same key, spelled two ways */
    expect_invalid("{\"a\":9223372036854775808}", "number out of range", NULL);
    expect_invalid("{\"a\":-9223372036854775809}", "number out of range", NULL);
    expect_invalid("{\"a\":1e400}", "number out of range", NULL);
    expect_invalid("{\"a\\u0000b\":1}", "has \\u0000 in a key", NULL);
    /* the same keys in different objects are fine */
    ndl_error err = {0};
    assert_int_equal(validate_str("{\"a\":{\"a\":{\"a\":1}},\"b\":[{\"a\":1},{\"a\":2}]}", &err), NDL_OK);
}

static void test_payload_size_limit(void **state)
{
    (void)state;
    /* {"s":"xxxx..."}: 8 bytes of frame + filler */
    size_t limit = 65536;
    char *s = malloc(limit + 2);
    memcpy(s, "{\"s\":\"", 6);
    memset(s + 6, 'x', limit - 8);
    memcpy(s + limit - 2, "\"}", 3);
    assert_int_equal(strlen(s), limit);
    ndl_error err = {0};
    assert_int_equal(payload_validate(s, limit, limit, &err), NDL_OK);
    char *out;
    size_t n;
    assert_int_equal(payload_prepare(s, limit, limit, &out, &n, &err), NDL_OK);
    assert_int_equal(n, limit);
    ndl_free(out);
    /* one byte more */
    memcpy(s + limit - 2, "x\"}", 4);
    assert_int_equal(payload_validate(s, limit + 1, limit, &err), NDL_INVALID);
    assert_string_equal(err.msg, "payload is 65537 bytes; the limit is 65536");
    assert_int_equal(payload_prepare(s, limit + 1, limit, &out, &n, &err), NDL_INVALID);
    free(s);
    /* the message of the brief */
    char *big = malloc(70001);
    memcpy(big, "{\"s\":\"", 6);
    memset(big + 6, 'y', 70000 - 8);
    memcpy(big + 70000 - 2, "\"}", 3);
    assert_int_equal(payload_validate(big, 70000, 65536, &err), NDL_INVALID);
    assert_string_equal(err.msg, "payload is 70000 bytes; the limit is 65536");
    free(big);
    /* whitespace counts in the given text; the canonical text must fit too */
    assert_int_equal(payload_validate("{ }", 3, 2, &err), NDL_INVALID);
    assert_int_equal(payload_validate("{ }", 3, 3, &err), NDL_OK);
    assert_int_equal(payload_prepare("{\"a\":1e5}", 9, 9, &out, &n, &err), NDL_INVALID); /* 100000.0 */
    assert_non_null(strstr(err.msg, "canonical payload is 14 bytes; the limit is 9"));
    assert_int_equal(payload_prepare("{\"a\":1e5}", 9, 14, &out, &n, &err), NDL_OK);
    assert_string_equal(out, "{\"a\":100000.0}");
    ndl_free(out);
}

/* ---------------------------------------------------------------- merge */

static void expect_merge(const char *stored, const char *patch, const char *want)
{
    char *out = NULL;
    size_t n = 0;
    ndl_error err = {0};
    ndl_status st = payload_merge(stored, stored ? strlen(stored) : 0, patch, strlen(patch), MAX, &out, &n, &err);
    if (st != NDL_OK)
        fail_msg("merge(%s, %s): %s", stored, patch, err.msg);
    if (strcmp(out, want) != 0)
        fail_msg("merge(%s, %s)\n  is   %s\n  want %s", stored, patch, out, want);
    assert_int_equal(n, strlen(want));
    ndl_free(out);
}

static void test_payload_merge_semantics(void **state)
{
    (void)state;
    /* patch keys replace, new keys are appended, other stored keys stay in place */
    expect_merge("{\"a\":1,\"b\":2,\"c\":3}", "{\"b\":20,\"d\":4}", "{\"a\":1,\"b\":20,\"c\":3,\"d\":4}");
    /* null is stored, not a deletion */
    expect_merge("{\"a\":1,\"b\":2}", "{\"a\":null}", "{\"a\":null,\"b\":2}");
    /* top level only: nested objects are replaced whole */
    expect_merge("{\"m\":{\"x\":1,\"y\":2},\"k\":0}", "{\"m\":{\"y\":3}}", "{\"m\":{\"y\":3},\"k\":0}");
    expect_merge("{\"t\":[1,2,3]}", "{\"t\":[]}", "{\"t\":[]}");
    expect_merge("{\"t\":[1,2,3]}", "{\"t\":\"now a string\"}", "{\"t\":\"now a string\"}");
    /* empty patch: stored unchanged (and canonicalized) */
    expect_merge("{ \"a\" : 0.1 }", "{}", "{\"a\":0.1}");
    /* no stored payload yet */
    expect_merge(NULL, "{ \"z\":1, \"a\":[true] }", "{\"z\":1,\"a\":[true]}");
    expect_merge("", "{\"a\":1}", "{\"a\":1}");
    expect_merge("{}", "{\"caf\xc3\xa9\":\"\\u00e9\"}", "{\"caf\xc3\xa9\":\"\xc3\xa9\"}");

    char *out;
    size_t n;
    ndl_error err = {0};
    /* bad patch: NDL_INVALID with the payload messages */
    assert_int_equal(payload_merge("{}", 2, "[1]", 3, MAX, &out, &n, &err), NDL_INVALID);
    assert_string_equal(err.msg, "payload must be a JSON object, got an array");
    assert_int_equal(payload_merge("{}", 2, "{\"a\":1,\"a\":2}", 13, MAX, &out, &n, &err), NDL_INVALID);
    assert_int_equal(payload_merge("{}", 2, "{\"a\":\"\xff\"}", 9, MAX, &out, &n, &err), NDL_INVALID);
    /* bad stored text: NDL_CORRUPT */
    assert_int_equal(payload_merge("{\"a\":", 5, "{}", 2, MAX, &out, &n, &err), NDL_CORRUPT);
    assert_non_null(strstr(err.msg, "stored payload is not valid JSON"));
    assert_int_equal(payload_merge("[]", 2, "{}", 2, MAX, &out, &n, &err), NDL_CORRUPT);
    assert_non_null(strstr(err.msg, "stored payload must be a JSON object"));

    /* the merged text against the limit, at the exact boundary */
    const char *stored = "{\"a\":\"0123456789\"}"; /* 18 bytes */
    const char *patch = "{\"b\":1}";               /* merged: {"a":"0123456789","b":1} = 24 */
    assert_int_equal(payload_merge(stored, strlen(stored), patch, strlen(patch), 24, &out, &n, &err), NDL_OK);
    assert_int_equal(n, 24);
    ndl_free(out);
    assert_int_equal(payload_merge(stored, strlen(stored), patch, strlen(patch), 23, &out, &n, &err), NDL_INVALID);
    assert_string_equal(err.msg, "merged payload is 24 bytes; the limit is 23");
    /* a patch bigger than the limit is fine when the merge fits (whitespace) */
    const char *spacey = "{ \"a\" :      \"x\"       }";
    assert_int_equal(payload_merge(stored, strlen(stored), spacey, strlen(spacey), 9, &out, &n, &err), NDL_OK);
    assert_string_equal(out, "{\"a\":\"x\"}");
    ndl_free(out);
}

/* ---------------------------------------------------------------- OOM */

static const char *OOM_DOC = "{\"category\":\"tech\",\"price\":12.5,\"tags\":[\"a\",\"b\",\"caf\xc3\xa9\"],"
                             "\"meta\":{\"author\":\"john\",\"scores\":[0.1,0.2,0.30000000000000004],"
                             "\"deep\":{\"x\":[[1],[2,{\"y\":null}]]}},\"title\":\"A \\\"quoted\\\" \\u00e9t\\u00e9\","
                             "\"n\":9223372036854775807}";

typedef ndl_status (*oom_fn)(char **out, size_t *n, ndl_error *err);

static ndl_status oom_validate(char **out, size_t *n, ndl_error *err)
{
    *out = NULL;
    *n = 0;
    return payload_validate(OOM_DOC, strlen(OOM_DOC), MAX, err);
}
static ndl_status oom_canonical(char **out, size_t *n, ndl_error *err)
{
    return payload_canonical(OOM_DOC, strlen(OOM_DOC), out, n, err);
}
static ndl_status oom_prepare(char **out, size_t *n, ndl_error *err)
{
    return payload_prepare(OOM_DOC, strlen(OOM_DOC), MAX, out, n, err);
}
static ndl_status oom_merge(char **out, size_t *n, ndl_error *err)
{
    const char *patch = "{\"price\":13,\"new\":{\"k\":[1,2,3]},\"category\":null}";
    return payload_merge(OOM_DOC, strlen(OOM_DOC), patch, strlen(patch), MAX, out, n, err);
}
static ndl_status oom_merge_empty(char **out, size_t *n, ndl_error *err)
{
    return payload_merge(NULL, 0, OOM_DOC, strlen(OOM_DOC), MAX, out, n, err);
}

static void run_oom(oom_fn fn)
{
    char *want = NULL;
    size_t want_n = 0;
    assert_int_equal(fn(&want, &want_n, NULL), NDL_OK);
    int failures = 0;
    for (long k = 0;; k++) {
        char *out = NULL;
        size_t n = 0;
        ndl_error err = {0};
        ndl_alloc_fail_after(k);
        ndl_status st = fn(&out, &n, &err);
        ndl_alloc_fail_after(-1);
        if (st == NDL_OK) {
            assert_int_equal(n, want_n);
            if (want)
                assert_memory_equal(out, want, n);
            ndl_free(out);
            break;
        }
        if (st != NDL_NOMEM)
            fail_msg("allocation %ld failing gave status %d (%s), not NDL_NOMEM", k, (int)st, err.msg);
        assert_int_equal(err.status, NDL_NOMEM);
        failures++;
        assert_true(k < 100000);
    }
    assert_true(failures > 0); /* the injection did reach the code */
    ndl_free(want);
}

static void test_payload_oom(void **state)
{
    (void)state;
    run_oom(oom_validate);
    run_oom(oom_canonical);
    run_oom(oom_prepare);
    run_oom(oom_merge);
    run_oom(oom_merge_empty);
}

/* ---------------------------------------------------------------- scan */

static void test_payload_scan_helpers(void **state)
{
    (void)state;
    size_t line, col, at;
    const char *t = "ab\n\xc3\xa9x\ny";
    json_line_col(t, 0, &line, &col);
    assert_int_equal(line, 1);
    assert_int_equal(col, 1);
    json_line_col(t, 5, &line, &col); /* 'x' after the 2-byte é */
    assert_int_equal(line, 2);
    assert_int_equal(col, 2);
    json_line_col(t, 7, &line, &col);
    assert_int_equal(line, 3);
    assert_int_equal(col, 1);
    /* escaped quotes keep the scanner inside the string */
    const char *s = "{\"a\":\"\\\"[[[[\\\\\",\"b\":[[1]]}";
    assert_true(json_depth_within(s, strlen(s), 3, &at));
    assert_false(json_depth_within(s, strlen(s), 2, &at));
    assert_int_equal(s[at], '[');
    assert_true(json_blank("", 0));
    assert_true(json_blank(" \t\r\n", 4));
    assert_false(json_blank(" x", 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_payload_valid_shapes),
        cmocka_unit_test(test_payload_depth_boundary),
        cmocka_unit_test(test_payload_deep_nesting_does_not_crash),
        cmocka_unit_test(test_payload_canonical_whitespace_and_order),
        cmocka_unit_test(test_payload_canonical_numbers),
        cmocka_unit_test(test_payload_canonical_strings),
        cmocka_unit_test(test_payload_not_json),
        cmocka_unit_test(test_payload_truncated),
        cmocka_unit_test(test_payload_wrong_top_level),
        cmocka_unit_test(test_payload_invalid_utf8),
        cmocka_unit_test(test_payload_duplicates_ranges_nul_keys),
        cmocka_unit_test(test_payload_size_limit),
        cmocka_unit_test(test_payload_merge_semantics),
        cmocka_unit_test(test_payload_oom),
        cmocka_unit_test(test_payload_scan_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
