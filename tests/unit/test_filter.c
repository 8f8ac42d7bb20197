/*
 * test_filter.c -- unit tests of the filter language (src/payload/filter*.c,
 * date.c, tokens.c): ISO-8601 instants (against timegm), the tokenizer,
 * every operator matching and not, the compiled tree's layout, every
 * malformed filter with its message, depth limits, a randomized comparison
 * with a deliberately simple reference evaluator written here on jansson
 * values (and the complements NOT / $ne / $nin / $exists:false), and
 * out-of-memory injection.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "test_rand.h"
#include <jansson.h>

#include "payload/date.h"
#include "payload/filter.h"
#include "payload/json.h"
#include "payload/tokens.h"
#include "util/alloc.h"
#include "util/base.h"
#include "util/utf8.h"

/* ---------------------------------------------------------------- helpers */

static json_t *load(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v)
        fail_msg("test JSON does not parse: %s (%s)", text, je.text);
    return v;
}

static filter *compile(const char *text)
{
    filter *f = NULL;
    ndl_error err = {0};
    if (filter_parse_text(text, strlen(text), "filter", &f, &err) != NDL_OK)
        fail_msg("filter %s refused: %s", text, err.msg);
    return f;
}

/* filter_match of payload (NULL: none), checked against filter_match_text
 * of the payload's text. */
static bool matches(const filter *f, const json_t *payload)
{
    bool m = filter_match(f, payload);
    char *text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
    bool mt = filter_match_text(f, text, text ? strlen(text) : 0);
    ndl_free(text);
    if (m != mt)
        fail_msg("filter_match says %d, filter_match_text %d", m, mt);
    return m;
}

typedef struct match_case {
    const char *filter;
    bool want;
} match_case;

static void check_cases(const char *payload_text, const match_case *cases, size_t n)
{
    json_t *payload = payload_text ? load(payload_text) : NULL;
    for (size_t i = 0; i < n; i++) {
        filter *f = compile(cases[i].filter);
        if (matches(f, payload) != cases[i].want)
            fail_msg("%s on %.60s: want %s", cases[i].filter, payload_text ? payload_text : "(no payload)",
                     cases[i].want ? "match" : "no match");
        filter_free(f);
    }
    json_decref(payload);
}

/* ---------------------------------------------------------------- dates */

static int64_t epoch_ms(int y, int mo, int d, int h, int mi, int s, int ms, int offset_min)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s};
    return ((int64_t)timegm(&tm) - offset_min * 60) * 1000 + ms;
}

static void expect_date(const char *s, int64_t want)
{
    int64_t got = 0;
    if (!iso8601_parse(s, strlen(s), &got))
        fail_msg("'%s' does not parse as a date", s);
    if (got != want)
        fail_msg("'%s' is %lld ms, want %lld", s, (long long)got, (long long)want);
}

static void test_date_valid(void **state)
{
    (void)state;
    expect_date("1970-01-01", 0);
    expect_date("1970-01-01T00:00:00Z", 0);
    expect_date("1969-12-31T23:59:59.999Z", -1);
    expect_date("2024-01-01", 1704067200000);
    expect_date("2024-01-01T00:00", 1704067200000);
    expect_date("2024-01-01 00:00:00", 1704067200000);
    expect_date("2024-01-01t00:00:00z", 1704067200000);
    expect_date("2024-01-01T01:00:00+01:00", 1704067200000);
    expect_date("2024-01-01T01:00:00+0100", 1704067200000);
    expect_date("2023-12-31T18:30:00-05:30", 1704067200000);
    expect_date("2024-01-01T00:00:00-00:00", 1704067200000);
    expect_date("2024-01-01T00:00:00.1Z", 1704067200100);
    expect_date("2024-01-01T00:00:00.12Z", 1704067200120);
    expect_date("2024-01-01T00:00:00.123456789Z", 1704067200123);
    expect_date("2024-01-01T00:00:00.9999", 1704067200999); /* truncated, not rounded */
    expect_date("2024-01-01T00:00:00.000000001+00:00", 1704067200000);
    /* leap years: every 4, not every 100, every 400 */
    expect_date("2024-02-29", epoch_ms(2024, 2, 29, 0, 0, 0, 0, 0));
    expect_date("2000-02-29", epoch_ms(2000, 2, 29, 0, 0, 0, 0, 0));
    expect_date("2400-02-29T12:00Z", epoch_ms(2400, 2, 29, 12, 0, 0, 0, 0));
    expect_date("2024-03-01", epoch_ms(2024, 2, 29, 0, 0, 0, 0, 0) + 86400000);
    expect_date("1900-03-01", epoch_ms(1900, 2, 28, 0, 0, 0, 0, 0) + 86400000);
    expect_date("2024-12-31T23:59:59Z", epoch_ms(2024, 12, 31, 23, 59, 59, 0, 0));
    expect_date("2024-04-30", epoch_ms(2024, 4, 30, 0, 0, 0, 0, 0));
    /* the ends of the range */
    expect_date("0000-01-01", -62167219200000);
    expect_date("0000-02-29", -62167219200000 + 59 * 86400000LL); /* year 0 is a leap year */
    expect_date("9999-12-31T23:59:59.999Z", 253402300799999);
    expect_date("9999-12-31T23:59:59.999-23:59", 253402300799999 + (23 * 60 + 59) * 60000LL);
    expect_date("0000-01-01T00:00:00+23:59", -62167219200000 - (23 * 60 + 59) * 60000LL);
}

static void test_date_invalid(void **state)
{
    (void)state;
    static const char *bad[] = {
        "", "2024", "2024-01", "2024-1-1", "2024-01-1", "2024-1-01", "24-01-01", "02024-01-01", "2024/01/01",
        "20240101", "2024-01-01x", "2024-01-01Z", "2024-01-01T", "2024-01-01T10", "2024-01-01T1000",
        "2024-01-01T10:0", "2024-01-01T10:00:0", "2024-01-01T10:00:00.", "2024-01-01T10:00:00.1234567890",
        "2024-01-01T10:00:00,5", "2024-01-01T10:00:00ZZ", "2024-01-01T10:00:00Z ", " 2024-01-01",
        "2024-01-01 ", "2024-01-01T10:00:00+1", "2024-01-01T10:00:00+01", "2024-01-01T10:00:00+01:0",
        "2024-01-01T10:00:00+24:00", "2024-01-01T10:00:00+01:60", "2024-01-01T10:00:00+01:00x",
        "2024-01-01T10:00:00 +01:00", "2024-01-01_10:00", "2024-01-01TT10:00", "-2024-01-01", "+2024-01-01",
        "2024-00-10", "2024-13-01", "2024-01-00", "2024-01-32", "2024-02-30", "2023-02-29", "1900-02-29",
        "2100-02-29", "2024-04-31", "2024-06-31", "2024-09-31", "2024-11-31", "2024-01-01T24:00",
        "2024-01-01T23:60", "2024-01-01T23:59:60", "2024-01-01T23:59:60Z", "2024-01-01T-1:00", "２０２４-01-01",
        "2024-01-01T10:00:00.5.5", "abcd-ef-gh", "2024-01-01T10:00:00+0a:00",
    };
    for (size_t i = 0; i < NDL_ARRAY_LEN(bad); i++) {
        int64_t ms = 42;
        if (iso8601_parse(bad[i], strlen(bad[i]), &ms))
            fail_msg("'%s' parsed as a date (%lld)", bad[i], (long long)ms);
        assert_int_equal(ms, 42);
    }
    /* the length is what counts, not a NUL */
    int64_t ms;
    assert_true(iso8601_parse("2024-01-01junk", 10, &ms));
    assert_false(iso8601_parse("2024-01-01\0", 11, &ms));
}


/* Random instants in every form, against timegm. */
static void test_date_random_against_timegm(void **state)
{
    (void)state;
    rng_state = 0x9e3779b97f4a7c15ull;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int i = 0; i < 20000; i++) {
        int y = rnd_below(10000), mo = 1 + rnd_below(12);
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        int d = 1 + rnd_below(mdays[mo - 1] + (mo == 2 && leap)), h = rnd_below(24), mi = rnd_below(60),
            s = rnd_below(60), ms = rnd_below(1000), off = rnd_below(2 * 1440 - 1) - 1439;
        char text[128], zone[16];
        int form = rnd_below(6), zform = rnd_below(4);
        if (zform == 0)
            snprintf(zone, sizeof zone, "%s", off == 0 ? "Z" : "");
        else
            snprintf(zone, sizeof zone, zform == 1 ? "%c%02d:%02d" : "%c%02d%02d", off < 0 ? '-' : '+',
                     abs(off) / 60, abs(off) % 60);
        int zoff = zform == 0 ? 0 : off;
        int64_t want;
        switch (form) {
        case 0:
            snprintf(text, sizeof text, "%04d-%02d-%02d", y, mo, d);
            want = epoch_ms(y, mo, d, 0, 0, 0, 0, 0);
            break;
        case 1:
            snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d%s", y, mo, d, h, mi, zone);
            want = epoch_ms(y, mo, d, h, mi, 0, 0, zoff);
            break;
        case 2:
            snprintf(text, sizeof text, "%04d-%02d-%02d %02d:%02d:%02d%s", y, mo, d, h, mi, s, zone);
            want = epoch_ms(y, mo, d, h, mi, s, 0, zoff);
            break;
        default: {
            int digits = 1 + rnd_below(9);
            char frac[16];
            snprintf(frac, sizeof frac, "%03d%06d", ms, rnd_below(1000000));
            frac[digits] = '\0';
            int kept = atoi(frac);
            for (int k = digits; k < 3; k++)
                kept *= 10;
            for (int k = digits; k > 3; k--)
                kept /= 10;
            snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%s%s", y, mo, d, h, mi, s, frac, zone);
            want = epoch_ms(y, mo, d, h, mi, s, kept, zoff);
            break;
        }
        }
        expect_date(text, want);
    }
}

/* ---------------------------------------------------------------- tokens */

static void expect_tokens(const char *s, size_t len, const char *want_joined)
{
    char got[256] = "";
    size_t pos = 0, used = 0, n = 0;
    token_span t;
    while (token_next(s, len, &pos, &t)) {
        assert_true(t.len > 0);
        char folded[64];
        assert_true(t.len < sizeof folded);
        token_fold(folded, s + t.start, t.len);
        assert_true(token_equal_folded(s + t.start, t.len, folded, t.len));
        used += (size_t)snprintf(got + used, sizeof got - used, "%s%.*s", n++ ? "|" : "", (int)t.len, folded);
    }
    assert_int_equal(pos, len);
    assert_int_equal(token_count(s, len), n);
    if (strcmp(got, want_joined) != 0)
        fail_msg("tokens of '%.*s': '%s', want '%s'", (int)len, s, got, want_joined);
}

static void test_tokens(void **state)
{
    (void)state;
    expect_tokens("", 0, "");
    expect_tokens(" ,.;-!", 6, "");
    expect_tokens("Hello, World!", 13, "hello|world");
    expect_tokens("vector-database_search", 22, "vector|database|search");
    expect_tokens("MiXeD123 42", 11, "mixed123|42");
    expect_tokens("caf\xc3\xa9 \xc3\x80la", 10, "caf\xc3\xa9|\xc3\x80la"); /* non-ASCII kept as is */
    expect_tokens("a\0b", 3, "a|b");
    expect_tokens("\"quoted\"\n\ttabs", 14, "quoted|tabs");
    assert_false(token_equal_folded("Hello", 5, "hell", 4));
    assert_false(token_equal_folded("Hello", 5, "Hello", 5)); /* the query side is folded */
    assert_true(token_equal_folded("HELLO", 5, "hello", 5));
}

/* ---------------------------------------------------------------- matching */

static const char *DOC =
    "{\"category\":\"tech\",\"price\":12.5,\"year\":2024,\"count\":3,\"in_stock\":true,\"note\":null,"
    "\"tags\":[\"a\",\"b\",3,null],\"meta\":{\"author\":\"john\",\"stats\":{\"views\":100}},"
    "\"authors\":[{\"name\":\"ann\",\"age\":30},{\"name\":\"bob\"},{\"x\":1},5,[{\"name\":\"zed\"}]],"
    "\"published\":\"2024-03-01T12:00:00+02:00\",\"title\":\"Hello, Vector-Database world!\","
    "\"chunks\":[\"The quick brown\",\"fox JUMPS\",7],\"big\":9007199254740993,\"ratio\":1.0,\"neg\":-0.0,"
    "\"empty\":[],\"obj\":{},\"nul\":\"a\\u0000b\",\"deep\":[{\"b\":[{\"c\":1},{\"c\":[2,3]}]}]}";

static void test_filter_eq_and_null(void **state)
{
    (void)state;
    static const match_case cases[] = {
        {"{}", true},
        {"{\"category\":\"tech\"}", true},
        {"{\"category\":\"Tech\"}", false},
        {"{\"category\":{\"$eq\":\"tech\"}}", true},
        {"{\"category\":\"tech \"}", false},
        {"{\"count\":3}", true},
        {"{\"count\":3.0}", true},
        {"{\"ratio\":1}", true},
        {"{\"neg\":0}", true},
        {"{\"price\":12.5}", true},
        {"{\"price\":12}", false},
        {"{\"big\":9007199254740993}", true},
        {"{\"big\":9007199254740992}", false}, /* integers compare exactly */
        {"{\"big\":9007199254740992.0}", false},
        {"{\"big\":{\"$gt\":9007199254740992.0}}", true},
        {"{\"big\":{\"$lt\":9007199254740994.0}}", true},
        {"{\"in_stock\":true}", true},
        {"{\"in_stock\":false}", false},
        {"{\"in_stock\":1}", false},
        {"{\"in_stock\":\"true\"}", false},
        {"{\"count\":\"3\"}", false},
        {"{\"nul\":\"a\\u0000b\"}", true},
        {"{\"nul\":\"a\"}", false},
        {"{\"note\":null}", true},
        {"{\"nothere\":null}", true},
        {"{\"category\":null}", false},
        {"{\"tags\":null}", true},  /* an element is null */
        {"{\"meta.author\":null}", false},
        {"{\"meta.nothere\":null}", true},
        {"{\"authors.name\":null}", true}, /* {"x":1} has no name */
        {"{\"empty.x\":null}", false},     /* an empty array leads nowhere */
        {"{\"category.x\":null}", true},   /* a string has no fields */
        {"{\"obj\":null}", false},
        {"{\"category\":{\"$ne\":\"tech\"}}", false},
        {"{\"category\":{\"$ne\":\"x\"}}", true},
        {"{\"nothere\":{\"$ne\":\"x\"}}", true},
        {"{\"note\":{\"$ne\":null}}", false},
        {"{\"nothere\":{\"$ne\":null}}", false},
        {"{\"category\":{\"$ne\":null}}", true},
        {"{\"tags\":{\"$ne\":\"a\"}}", false},
        {"{\"tags\":{\"$ne\":\"z\"}}", true},
        {"{\"obj\":{\"$ne\":1}}", true},
    };
    check_cases(DOC, cases, NDL_ARRAY_LEN(cases));
    static const match_case none[] = {
        {"{}", true},
        {"{\"a\":null}", true},
        {"{\"a.b\":null}", true},
        {"{\"a\":{\"$exists\":false}}", true},
        {"{\"a\":{\"$exists\":true}}", false},
        {"{\"a\":{\"$ne\":1}}", true},
        {"{\"a\":{\"$nin\":[1]}}", true},
        {"{\"a\":{\"$in\":[1,null]}}", true},
        {"{\"a\":1}", false},
        {"{\"a\":{\"$lt\":1}}", false},
        {"{\"a\":{\"$text\":\"x\"}}", false},
        {"{\"$not\":{\"a\":1}}", true},
    };
    check_cases(NULL, none, NDL_ARRAY_LEN(none));
    check_cases("{}", none, NDL_ARRAY_LEN(none));
    /* null through arrays, as MongoDB's jstests/core/null2.js */
    static const match_case yes[] = {{"{\"a.b\":null}", true}, {"{\"a.b\":{\"$exists\":true}}", true}};
    static const match_case no[] = {{"{\"a.b\":null}", false}, {"{\"a.b\":{\"$in\":[null]}}", false}};
    check_cases("{\"a\":[{\"b\":1},{}]}", yes, NDL_ARRAY_LEN(yes));
    check_cases("{\"a\":[]}", no, NDL_ARRAY_LEN(no));
    check_cases("{\"a\":[5]}", no, NDL_ARRAY_LEN(no));
    check_cases("{\"a\":[5,{\"b\":5}]}", no, NDL_ARRAY_LEN(no));
    check_cases("{\"a\":[{\"b\":5}]}", no, NDL_ARRAY_LEN(no));
}

static void test_filter_arrays_and_paths(void **state)
{
    (void)state;
    static const match_case cases[] = {
        {"{\"tags\":\"a\"}", true},
        {"{\"tags\":3}", true},
        {"{\"tags\":3.0}", true},
        {"{\"tags\":\"c\"}", false},
        {"{\"tags\":{\"$gt\":2}}", true},
        {"{\"tags\":{\"$gt\":3}}", false},
        {"{\"tags\":{\"$gte\":\"b\"}}", true},
        {"{\"tags\":{\"$gt\":\"b\"}}", false},
        {"{\"tags\":{\"$gt\":\"a\",\"$lt\":\"b\"}}", true}, /* "b" > "a", "a" < "b": no $elemMatch */
        {"{\"tags\":{\"$gte\":\"b\",\"$lte\":3}}", true}, /* each operator by any element */
        {"{\"meta.author\":\"john\"}", true},
        {"{\"meta.stats.views\":{\"$gte\":100}}", true},
        {"{\"meta.stats.views\":{\"$gt\":100}}", false},
        {"{\"meta.author.x\":\"john\"}", false},
        {"{\"meta\":{\"$exists\":true}}", true},
        {"{\"authors.name\":\"bob\"}", true},
        {"{\"authors.name\":\"zed\"}", false}, /* nested arrays are not entered */
        {"{\"authors.age\":{\"$gt\":29}}", true},
        {"{\"authors.age\":{\"$gt\":30}}", false},
        {"{\"authors.x\":1}", true},
        {"{\"authors\":5}", true},
        {"{\"deep.b.c\":1}", true},
        {"{\"deep.b.c\":3}", true},
        {"{\"deep.b.c\":{\"$gt\":2}}", true},
        {"{\"deep.b.c\":4}", false},
        {"{\"deep.b\":{\"$exists\":true}}", true},
        {"{\"deep.c\":{\"$exists\":true}}", false},
    };
    check_cases(DOC, cases, NDL_ARRAY_LEN(cases));
    /* a key with a dot in the payload cannot be reached: dots always split */
    static const match_case dotted[] = {
        {"{\"a.b\":1}", false},
        {"{\"a\":{\"$exists\":false}}", true},
    };
    check_cases("{\"a.b\":1}", dotted, NDL_ARRAY_LEN(dotted));
}

static void test_filter_ranges_and_dates(void **state)
{
    (void)state;
    static const match_case cases[] = {
        {"{\"price\":{\"$gte\":10,\"$lt\":100}}", true},
        {"{\"price\":{\"$gt\":12.5}}", false},
        {"{\"price\":{\"$gte\":12.5}}", true},
        {"{\"price\":{\"$lte\":12.5}}", true},
        {"{\"price\":{\"$lt\":12.5}}", false},
        {"{\"price\":{\"$lt\":13}}", true},
        {"{\"year\":{\"$gt\":2023.5}}", true},
        {"{\"year\":{\"$lte\":2024}}", true},
        {"{\"year\":{\"$lt\":2024}}", false},
        {"{\"category\":{\"$gt\":\"tea\"}}", true},
        {"{\"category\":{\"$lt\":\"tech\"}}", false},
        {"{\"category\":{\"$lt\":\"techa\"}}", true},
        {"{\"category\":{\"$gte\":\"\"}}", true},
        {"{\"category\":{\"$gt\":5}}", false}, /* other types never match */
        {"{\"price\":{\"$gt\":\"1\"}}", false},
        {"{\"in_stock\":{\"$gte\":0}}", false},
        {"{\"note\":{\"$lte\":0}}", false},
        {"{\"obj\":{\"$gte\":0}}", false},
        {"{\"nothere\":{\"$gt\":0}}", false},
        {"{\"nothere\":{\"$lt\":0}}", false},
        /* published is 2024-03-01T10:00:00Z written with a +02:00 zone */
        {"{\"published\":{\"$gte\":\"2024-03-01T10:00:00Z\"}}", true},
        {"{\"published\":{\"$gt\":\"2024-03-01T10:00:00Z\"}}", false},
        {"{\"published\":{\"$lte\":\"2024-03-01T10:00:00z\"}}", true},
        {"{\"published\":{\"$gt\":\"2024-03-01T09:59:59.999Z\"}}", true},
        {"{\"published\":{\"$lt\":\"2024-03-01T10:00:00.001Z\"}}", true},
        {"{\"published\":{\"$lt\":\"2024-03-01T11:00\"}}", true}, /* UTC; bytewise it would not be */
        {"{\"published\":{\"$gte\":\"2024-03-01\",\"$lt\":\"2024-03-02\"}}", true},
        {"{\"published\":{\"$gt\":\"2024-03-01T12:00:00+02:01\"}}", true},
        {"{\"published\":{\"$gte\":\"2024-03-01T05:00:00-05:00\"}}", true},
        {"{\"published\":{\"$gt\":\"2024-03-01T05:00:00-05:00\"}}", false},
        {"{\"published\":{\"$gt\":\"2024-03-01T12\"}}", true}, /* not a date: bytewise */
        {"{\"published\":\"2024-03-01T10:00:00Z\"}", false},   /* $eq is bytewise */
        {"{\"published\":\"2024-03-01T12:00:00+02:00\"}", true},
        {"{\"category\":{\"$gt\":\"2000-01-01\"}}", false},    /* not a date: no match */
        {"{\"year\":{\"$gt\":\"2000-01-01\"}}", false},
    };
    check_cases(DOC, cases, NDL_ARRAY_LEN(cases));
    static const match_case dates[] = {
        {"{\"d\":{\"$gte\":\"2000-02-29\"}}", true},
        {"{\"d\":{\"$gt\":\"2000-02-29T23:59:59.999Z\"}}", false},
        {"{\"d\":{\"$lt\":\"2000-03-01\"}}", true},
        {"{\"d\":{\"$lt\":\"1999-03-01\"}}", true}, /* "bad" is not a date, "2000-02-30" neither */
        {"{\"d\":{\"$gt\":\"2000-03-01\"}}", false},
    };
    check_cases("{\"d\":[\"2000-02-29T23:59:59.999Z\",\"bad\",\"2000-02-30\",\"1999-02-28 10:00\"]}", dates,
                NDL_ARRAY_LEN(dates));
}

static void test_filter_in_exists_text(void **state)
{
    (void)state;
    static const match_case cases[] = {
        {"{\"tags\":{\"$in\":[\"z\",\"b\"]}}", true},
        {"{\"tags\":{\"$in\":[\"z\",\"y\"]}}", false},
        {"{\"category\":{\"$in\":[\"a\",\"tech\"]}}", true},
        {"{\"category\":{\"$in\":[]}}", false},
        {"{\"nothere\":{\"$in\":[]}}", false},
        {"{\"nothere\":{\"$in\":[null]}}", true},
        {"{\"nothere\":{\"$in\":[1,2]}}", false},
        {"{\"count\":{\"$in\":[1.0,3.0]}}", true},
        {"{\"count\":{\"$in\":[true,\"3\",null]}}", false},
        {"{\"note\":{\"$in\":[1,null]}}", true},
        {"{\"count\":{\"$in\":[1,2,4,5,6,7,8,9,10,11,12,13,14,15,\"a\",\"b\",null,false,3.0,99]}}", true},
        {"{\"count\":{\"$in\":[1,2,4,5,6,7,8,9,10,11,12,13,14,15,\"a\",\"b\",null,false,3.5,99]}}", false},
        {"{\"tags\":{\"$in\":[1,2,4,5,6,7,8,9,10,11,12,13,14,15,\"c\",\"d\",\"b\",false,3.5,99]}}", true},
        {"{\"category\":{\"$nin\":[\"tech\"]}}", false},
        {"{\"category\":{\"$nin\":[]}}", true},
        {"{\"nothere\":{\"$nin\":[]}}", true},
        {"{\"nothere\":{\"$nin\":[\"x\"]}}", true},
        {"{\"nothere\":{\"$nin\":[null]}}", false},
        {"{\"tags\":{\"$nin\":[\"a\"]}}", false},
        {"{\"tags\":{\"$nin\":[\"x\",\"y\"]}}", true},
        {"{\"note\":{\"$exists\":true}}", true},
        {"{\"note\":{\"$exists\":false}}", false},
        {"{\"nothere\":{\"$exists\":false}}", true},
        {"{\"nothere\":{\"$exists\":true}}", false},
        {"{\"authors.name\":{\"$exists\":true}}", true},
        {"{\"authors.zzz\":{\"$exists\":true}}", false},
        {"{\"empty\":{\"$exists\":true}}", true},
        {"{\"empty.x\":{\"$exists\":false}}", true},
        {"{\"obj\":{\"$exists\":true}}", true},
        {"{\"title\":{\"$text\":\"vector\"}}", true},
        {"{\"title\":{\"$text\":\"VECTOR database\"}}", true},
        {"{\"title\":{\"$text\":\"hello, WORLD!\"}}", true},
        {"{\"title\":{\"$text\":\"database-vector\"}}", true}, /* order does not count */
        {"{\"title\":{\"$text\":\"vector search\"}}", false},
        {"{\"title\":{\"$text\":\"vect\"}}", false}, /* whole words */
        {"{\"chunks\":{\"$text\":\"quick fox jumps\"}}", true},
        {"{\"chunks\":{\"$text\":\"quick cat\"}}", false},
        {"{\"chunks\":{\"$text\":\"7\"}}", false}, /* numbers are not text */
        {"{\"category\":{\"$text\":\"TECH\"}}", true},
        {"{\"count\":{\"$text\":\"3\"}}", false},
        {"{\"nothere\":{\"$text\":\"x\"}}", false},
        {"{\"authors.name\":{\"$text\":\"bob\"}}", true},
        {"{\"nul\":{\"$text\":\"b\"}}", true},
    };
    check_cases(DOC, cases, NDL_ARRAY_LEN(cases));
    static const match_case utf8[] = {
        {"{\"t\":{\"$text\":\"CAF\xc3\xa9\"}}", true},
        {"{\"t\":{\"$text\":\"caf\xc3\x89\"}}", false}, /* no Unicode folding yet */
        {"{\"t\":{\"$text\":\"caf\"}}", false},
    };
    check_cases("{\"t\":\"un caf\xc3\xa9, merci\"}", utf8, NDL_ARRAY_LEN(utf8));
}

/* $text with more query words than one pass over a string's words checks
 * (64): all of them, in any order and case, across the strings of an
 * array; one missing word, in any group, fails. */
static void test_filter_text_many_words(void **state)
{
    (void)state;
    enum { WORDS = 150 };
    char all[WORDS * 8], half1[WORDS * 8], half2[WORDS * 8];
    size_t na = 0, n1 = 0, n2 = 0;
    for (int i = 0; i < WORDS; i++) {
        na += (size_t)snprintf(all + na, sizeof all - na, "%sw%d", i ? " " : "", i);
        if (i < WORDS / 2)
            n1 += (size_t)snprintf(half1 + n1, sizeof half1 - n1, "%sw%d", i ? " " : "", i);
        else
            n2 += (size_t)snprintf(half2 + n2, sizeof half2 - n2, "%sw%d", n2 ? " " : "", i);
    }
    char payload[WORDS * 32];
    snprintf(payload, sizeof payload, "{\"t\":\"%s\",\"a\":[\"%s\",\"%s\"]}", all, half1, half2);
    /* the query lists words 149..0: 140 is in its first group of 64, 70
     * in the second, 10 in the third */
    static const int missings[] = {-1, 140, 70, 10};
    for (size_t m = 0; m < NDL_ARRAY_LEN(missings); m++) {
        int missing = missings[m];
        char query[WORDS * 8];
        size_t nq = 0;
        for (int i = WORDS - 1; i >= 0; i--) /* reversed, every third upper case */
            nq += (size_t)snprintf(query + nq, sizeof query - nq, "%s%s%d", nq ? " " : "",
                                   i == missing ? "nope" : i % 3 ? "w" : "W", i);
        for (int field = 0; field < 2; field++) {
            char text[WORDS * 10];
            snprintf(text, sizeof text, "{\"%s\":{\"$text\":\"%s\"}}", field ? "a" : "t", query);
            match_case c = {text, missing < 0};
            check_cases(payload, &c, 1);
        }
    }
}

static void test_filter_logic(void **state)
{
    (void)state;
    static const match_case cases[] = {
        {"{\"$and\":[{\"category\":\"tech\"},{\"price\":{\"$lt\":20}}]}", true},
        {"{\"$and\":[{\"category\":\"tech\"},{\"price\":{\"$gt\":20}}]}", false},
        {"{\"$and\":[{}]}", true},
        {"{\"$or\":[{\"category\":\"x\"},{\"price\":{\"$lt\":20}}]}", true},
        {"{\"$or\":[{\"category\":\"x\"},{\"price\":{\"$gt\":20}}]}", false},
        {"{\"$or\":[{}]}", true},
        {"{\"$not\":{\"category\":\"tech\"}}", false},
        {"{\"$not\":{\"category\":\"x\"}}", true},
        {"{\"$not\":{}}", false},
        {"{\"$not\":{\"$not\":{}}}", true},
        {"{\"category\":\"tech\",\"count\":3}", true},
        {"{\"category\":\"tech\",\"count\":4}", false}, /* keys: implicit $and */
        {"{\"category\":\"tech\",\"$or\":[{\"count\":4},{\"year\":2024}]}", true},
        {"{\"price\":{\"$not\":{\"$gt\":20}}}", true},
        {"{\"price\":{\"$not\":{\"$gt\":5}}}", false},
        {"{\"price\":{\"$not\":{\"$gt\":5,\"$lt\":10}}}", true},
        {"{\"nothere\":{\"$not\":{\"$gt\":5}}}", true},
        {"{\"price\":{\"$not\":{\"$not\":{\"$gt\":5}}}}", true},
        {"{\"$and\":[{\"$or\":[{\"$not\":{\"a\":1}},{\"b\":2}]}]}", true},
        {"{\"$or\":[{\"$and\":[{\"category\":\"tech\"},{\"$not\":{\"tags\":\"a\"}}]},{\"meta.author\":\"john\"}]}",
         true},
        {"{\"$or\":[{\"$and\":[{\"category\":\"tech\"},{\"$not\":{\"tags\":\"a\"}}]},{\"meta.author\":\"jo\"}]}",
         false},
    };
    check_cases(DOC, cases, NDL_ARRAY_LEN(cases));
}

static void test_filter_match_text(void **state)
{
    (void)state;
    filter *all = compile("{}"), *absent = compile("{\"a\":{\"$exists\":false}}");
    assert_true(filter_match_text(all, NULL, 0));
    assert_true(filter_match_text(all, "{}", 2));
    assert_true(filter_match_text(absent, NULL, 0));
    assert_true(filter_match_text(absent, "", 0));
    /* a text that does not parse matches nothing, not even {} */
    static const char *broken[] = {"{", "[1]", "1", "{\"a\":1,}", "{\"a\":1} x", "\xff", "null"};
    for (size_t i = 0; i < NDL_ARRAY_LEN(broken); i++) {
        assert_false(filter_match_text(all, broken[i], strlen(broken[i])));
        assert_false(filter_match_text(absent, broken[i], strlen(broken[i])));
    }
    char deep[200];
    memset(deep, '[', sizeof deep);
    assert_false(filter_match_text(all, deep, sizeof deep)); /* refused before jansson recurses */
    filter_free(all);
    filter_free(absent);
}

/* ---------------------------------------------------------------- the tree */

static void test_filter_tree_layout(void **state)
{
    (void)state;
    filter *f = compile("{\"meta.author\":\"john\",\"price\":{\"$gte\":10,\"$lt\":99.5},"
                        "\"tags\":{\"$in\":[\"b\",1,null,\"a\",true,0.5]},\"d\":{\"$gt\":\"2024-01-01T00:00:00Z\"},"
                        "\"t\":{\"$text\":\"Hello, World\"},\"x\":{\"$not\":{\"$exists\":true}},"
                        "\"$or\":[{\"y\":{\"$nin\":[]}},{}]}");
    const filter_node *r = f->root;
    assert_int_equal(r->kind, FILTER_AND);
    assert_int_equal(r->u.logic.count, 7);
    const filter_node *k = r->u.logic.children;

    assert_int_equal(k[0].kind, FILTER_CMP);
    assert_int_equal(k[0].u.cmp.op, FILTER_EQ);
    assert_string_equal(k[0].path.dotted, "meta.author");
    assert_int_equal(k[0].path.nparts, 2);
    assert_string_equal(k[0].path.parts[0], "meta");
    assert_string_equal(k[0].path.parts[1], "author");
    assert_int_equal(k[0].u.cmp.operand.type, FILTER_VALUE_STRING);
    assert_int_equal(k[0].u.cmp.operand.len, 4);
    assert_string_equal(k[0].u.cmp.operand.str, "john");
    assert_false(k[0].u.cmp.operand.is_date);

    assert_int_equal(k[1].kind, FILTER_AND);
    assert_int_equal(k[1].u.logic.count, 2);
    const filter_node *gte = &k[1].u.logic.children[0], *lt = &k[1].u.logic.children[1];
    assert_int_equal(gte->u.cmp.op, FILTER_GTE);
    assert_string_equal(gte->path.dotted, "price");
    assert_true(gte->u.cmp.operand.is_integer);
    assert_int_equal(gte->u.cmp.operand.integer, 10);
    assert_int_equal(lt->u.cmp.op, FILTER_LT);
    assert_false(lt->u.cmp.operand.is_integer);
    assert_true(lt->u.cmp.operand.number == 99.5);

    assert_int_equal(k[2].kind, FILTER_IN);
    assert_int_equal(k[2].u.in.count, 6);
    assert_true(k[2].u.in.has_null);
    const filter_value *v = k[2].u.in.values; /* sorted: null, true, 0.5, 1, "a", "b" */
    assert_int_equal(v[0].type, FILTER_VALUE_NULL);
    assert_int_equal(v[1].type, FILTER_VALUE_BOOL);
    assert_true(v[2].number == 0.5);
    assert_int_equal(v[3].integer, 1);
    assert_string_equal(v[4].str, "a");
    assert_string_equal(v[5].str, "b");

    assert_int_equal(k[3].kind, FILTER_CMP);
    assert_true(k[3].u.cmp.operand.is_date);
    assert_int_equal(k[3].u.cmp.operand.date_ms, 1704067200000);

    assert_int_equal(k[4].kind, FILTER_TEXT);
    assert_int_equal(k[4].u.text.count, 2);
    assert_int_equal(k[4].u.text.tokens[0].len, 5);
    assert_memory_equal(k[4].u.text.tokens[0].text, "hello", 5);
    assert_memory_equal(k[4].u.text.tokens[1].text, "world", 5);

    assert_int_equal(k[5].kind, FILTER_NOT);
    assert_int_equal(k[5].u.negated->kind, FILTER_EXISTS);
    assert_true(k[5].u.negated->u.present);
    assert_string_equal(k[5].u.negated->path.dotted, "x");

    assert_int_equal(k[6].kind, FILTER_OR);
    assert_int_equal(k[6].u.logic.count, 2);
    assert_int_equal(k[6].u.logic.children[0].kind, FILTER_NIN);
    assert_int_equal(k[6].u.logic.children[0].u.in.count, 0);
    assert_int_equal(k[6].u.logic.children[1].kind, FILTER_TRUE);
    filter_free(f);

    f = compile("{}");
    assert_int_equal(f->root->kind, FILTER_TRUE);
    filter_free(f);
    filter_free(NULL);
}

static void test_filter_value_order(void **state)
{
    (void)state;
    static const char *ascending[] = {"null", "false", "true", "-1e300", "-9223372036854775808", "-1.5", "-1",
                                      "0", "0.5", "1", "9007199254740992", "9007199254740993", "9007199254740994.0",
                                      "9223372036854775807", "1e19", "\"\"", "\"a\"", "\"a\\u0000\"", "\"ab\"",
                                      "\"b\"", "\"\xc3\xa9\""};
    size_t n = NDL_ARRAY_LEN(ascending);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            json_t *a = load(ascending[i]), *b = load(ascending[j]);
            filter_value x, y;
            assert_true(filter_value_of_json(a, &x));
            assert_true(filter_value_of_json(b, &y));
            int c = filter_value_cmp(&x, &y), want = (i > j) - (i < j);
            if (c != want)
                fail_msg("%s <=> %s is %d, want %d", ascending[i], ascending[j], c, want);
            json_decref(a);
            json_decref(b);
        }
    }
    static const char *equal[][2] = {{"1", "1.0"}, {"0", "-0.0"}, {"-0.0", "0.0"}, {"1e3", "1000"},
                                     {"9007199254740992", "9007199254740992.0"}};
    for (size_t i = 0; i < NDL_ARRAY_LEN(equal); i++) {
        json_t *a = load(equal[i][0]), *b = load(equal[i][1]);
        filter_value x, y;
        filter_value_of_json(a, &x);
        filter_value_of_json(b, &y);
        assert_int_equal(filter_value_cmp(&x, &y), 0);
        assert_int_equal(filter_value_cmp(&y, &x), 0);
        json_decref(a);
        json_decref(b);
    }
    json_t *arr = load("[1]");
    filter_value x;
    assert_false(filter_value_of_json(arr, &x));
    json_decref(arr);
}

/* ---------------------------------------------------------------- errors */

typedef struct bad_case {
    const char *filter;
    const char *frag1, *frag2;
} bad_case;

static void expect_refused(const char *text, size_t len, const char *where, const char *frag1, const char *frag2)
{
    filter *f = (filter *)1;
    ndl_error err = {0};
    ndl_status st = filter_parse_text(text, len, where, &f, &err);
    if (st != NDL_INVALID)
        fail_msg("accepted (status %d) the bad filter %.80s", (int)st, text);
    assert_null(f);
    assert_int_equal(err.status, NDL_INVALID);
    if (frag1 && !strstr(err.msg, frag1))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, frag1);
    if (frag2 && !strstr(err.msg, frag2))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, frag2);
    assert_true(utf8_valid(err.msg, strlen(err.msg), NULL));
}

static void test_filter_errors(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"{\"$regex\":\"a\"}", "filter: unknown operator '$regex'", NULL},
        {"{\"a\":1,\"$where\":\"x\"}", "filter: unknown operator '$where'", NULL},
        {"{\"$\":1}", "filter: unknown operator '$'", NULL},
        {"{\"$gt\":5}", "filter: unknown operator '$gt' here", "{\"price\":{\"$gt\":...}}"},
        {"{\"$eq\":5}", "filter: unknown operator '$eq' here", NULL},
        {"{\"$exists\":true}", "filter: unknown operator '$exists' here", NULL},
        {"{\"$and\":{}}", "filter.$and: needs a non-empty array of filters (got an object)", NULL},
        {"{\"$or\":[]}", "filter.$or: needs a non-empty array of filters (got an empty array)", NULL},
        {"{\"$or\":null}", "filter.$or: needs a non-empty array of filters (got null)", NULL},
        {"{\"$and\":[1]}", "filter.$and[0]: must be a filter object (got a number)", NULL},
        {"{\"$and\":[{\"a\":1},\"b\"]}", "filter.$and[1]: must be a filter object (got a string)", NULL},
        {"{\"$and\":[[]]}", "filter.$and[0]: must be a filter object (got an array)", NULL},
        {"{\"$and\":[{},{\"$or\":[{\"a\":[1]}]}]}", "filter.$and[1].$or[0].a: an array cannot be compared whole",
         "$in"},
        {"{\"$not\":[]}", "filter.$not: must be a filter object (got an array)", NULL},
        {"{\"$not\":null}", "filter.$not: must be a filter object (got null)", NULL},
        {"{\"$not\":{\"$not\":{\"$nor\":[]}}}", "filter.$not.$not: unknown operator '$nor'", NULL},
        {"{\"\":1}", "filter: a field name is empty", NULL},
        {"{\"a..b\":1}", "filter: field 'a..b' has an empty part", NULL},
        {"{\".a\":1}", "filter: field '.a' has an empty part", NULL},
        {"{\"a.\":1}", "filter: field 'a.' has an empty part", NULL},
        {"{\".\":1}", "field '.' has an empty part", NULL},
        {"{\"a.b.\":{\"$gt\":1}}", "field 'a.b.' has an empty part", NULL},
        {"{\"tags\":[\"a\"]}", "filter.tags: an array cannot be compared whole", "{\"$in\":[...]}"},
        {"{\"a\":{}}", "filter.a: needs at least one operator", NULL},
        {"{\"meta\":{\"author\":\"john\"}}", "filter.meta: 'author' is not an operator", "\"meta.author\""},
        {"{\"a\":{\"$gt\":1,\"b\":2}}", "filter.a: 'b' is not an operator", "dotted paths"},
        {"{\"a\":{\"$foo\":1}}", "filter.a: unknown operator '$foo'", NULL},
        {"{\"a\":{\"$and\":[]}}", "filter.a: unknown operator '$and'", NULL},
        {"{\"a\":{\"$regex\":\"x\"}}", "filter.a: unknown operator '$regex'", NULL},
        {"{\"a\":{\"$eq\":[1]}}", "filter.a.$eq: must be a string, number, bool or null (got an array)", NULL},
        {"{\"a\":{\"$eq\":{}}}", "filter.a.$eq: must be a string, number, bool or null (got an object)", NULL},
        {"{\"a\":{\"$ne\":[]}}", "filter.a.$ne: must be a string, number, bool or null", NULL},
        {"{\"$and\":[{},{\"price\":{\"$gte\":[]}}]}",
         "filter.$and[1].price.$gte: needs a number or a string (got an array)", NULL},
        {"{\"a\":{\"$gt\":true}}", "filter.a.$gt: needs a number or a string (got a boolean)", NULL},
        {"{\"a\":{\"$lt\":null}}", "filter.a.$lt: needs a number or a string (got null)", NULL},
        {"{\"a\":{\"$lte\":{}}}", "filter.a.$lte: needs a number or a string (got an object)", NULL},
        {"{\"a\":{\"$gte\":false}}", "filter.a.$gte: needs a number or a string (got a boolean)", NULL},
        {"{\"tags\":{\"$in\":\"a\"}}", "filter.tags.$in: needs an array of values (got a string)", NULL},
        {"{\"tags\":{\"$in\":[1,2,3,[4]]}}", "filter.tags.$in[3]: must be a string, number, bool or null", NULL},
        {"{\"tags\":{\"$nin\":[{}]}}", "filter.tags.$nin[0]: must be a string, number, bool or null (got an object)",
         NULL},
        {"{\"tags\":{\"$nin\":null}}", "filter.tags.$nin: needs an array of values (got null)", NULL},
        {"{\"a\":{\"$in\":[1],\"$nin\":5}}", "filter.a.$nin: needs an array of values (got a number)", NULL},
        {"{\"$or\":[{\"a\":1},{\"b\":{\"$in\":[1,{}]}}]}", "filter.$or[1].b.$in[1]: must be", NULL},
        {"{\"t\":{\"$exists\":1}}", "filter.t.$exists: needs true or false (got a number)", NULL},
        {"{\"t\":{\"$exists\":\"true\"}}", "filter.t.$exists: needs true or false (got a string)", NULL},
        {"{\"t\":{\"$exists\":null}}", "filter.t.$exists: needs true or false (got null)", NULL},
        {"{\"t\":{\"$text\":5}}", "filter.t.$text: needs a string of words", "(got a number)"},
        {"{\"t\":{\"$text\":[\"a\"]}}", "filter.t.$text: needs a string of words", "(got an array)"},
        {"{\"t\":{\"$text\":\"\"}}", "filter.t.$text: has no words", NULL},
        {"{\"t\":{\"$text\":\" ,.; \"}}", "filter.t.$text: has no words", NULL},
        {"{\"a\":{\"$exists\":true,\"$text\":{}}}", "filter.a.$text: needs a string of words", NULL},
        {"{\"a\":{\"$not\":5}}", "filter.a.$not: needs an object of operators", "(got a number)"},
        {"{\"a\":{\"$not\":{}}}", "filter.a.$not: needs at least one operator", NULL},
        {"{\"a\":{\"$not\":{\"x\":1}}}", "filter.a.$not: 'x' is not an operator", NULL},
        {"{\"a\":{\"$not\":{\"$regex\":\"x\"}}}", "filter.a.$not: unknown operator '$regex'", NULL},
        {"{\"a\":{\"$not\":{\"$gt\":[]}}}", "filter.a.$not.$gt: needs a number or a string", NULL},
        /* the text itself */
        {"", "filter is empty", NULL},
        {" \n\t", "filter is empty", NULL},
        {"{", "filter is not valid JSON at line 1", NULL},
        {"{\"a\":1,}", "filter is not valid JSON at line 1 column", NULL},
        {"{\"a\":1}\n{}", "filter is not valid JSON at line 2", NULL},
        {"{\"a\":1,\"a\":2}", "filter has a duplicate key at line 1 column 10", NULL},
        {"{\"a\":1e999}", "filter has a number out of range", NULL},
        {"{\"a\\u0000\":1}", "filter has \\u0000 in a key", NULL},
        {"[]", "filter must be a JSON object, got an array", NULL},
        {"\"x\"", "filter must be a JSON object, got a string", NULL},
        {"null", "filter must be a JSON object, got null", NULL},
        {"{\"a\":NaN}", "filter is not valid JSON", NULL},
        {"{\"a\":\"\xff\"}", "filter is not valid UTF-8: byte 0xFF at line 1 column 7", NULL},
        {"{'a':1}", "filter is not valid JSON", NULL},
    };
    for (size_t i = 0; i < NDL_ARRAY_LEN(cases); i++)
        expect_refused(cases[i].filter, strlen(cases[i].filter), "filter", cases[i].frag1, cases[i].frag2);
    /* NULL text, and where given by the caller */
    expect_refused(NULL, 0, NULL, "filter is empty", NULL);
    expect_refused("{\"a\":{\"$gt\":[]}}", 16, "searches[3].filter", "searches[3].filter.a.$gt: needs", NULL);
    expect_refused("[", 1, "searches[3].filter", "searches[3].filter is not valid JSON", NULL);
    /* filter_parse directly (as the server calls it, with the body parsed) */
    static const char *const direct[][2] = {
        {"{\"a\":{\"$in\":[[]]}}", "filter.a.$in[0]: must be a string, number, bool or null (got an array)"},
        {"[]", "filter: must be a filter object (got an array)"},
        {"\"x\"", "filter: must be a filter object (got a string)"},
        {"null", "filter: must be a filter object (got null)"},
    };
    for (size_t i = 0; i < NDL_ARRAY_LEN(direct); i++) {
        json_t *spec = load(direct[i][0]);
        filter *f = (filter *)1;
        ndl_error err = {0};
        assert_int_equal(filter_parse(spec, NULL, &f, &err), NDL_INVALID);
        assert_null(f);
        assert_string_equal(err.msg, direct[i][1]);
        json_decref(spec);
    }
}

static char *repeat(const char *unit, size_t times, const char *prefix, const char *suffix)
{
    size_t u = strlen(unit), p = strlen(prefix), s = strlen(suffix);
    char *out = malloc(p + u * times + s + 1);
    assert_non_null(out);
    memcpy(out, prefix, p);
    for (size_t i = 0; i < times; i++)
        memcpy(out + p + i * u, unit, u);
    memcpy(out + p + u * times, suffix, s + 1);
    return out;
}

static void test_filter_limits(void **state)
{
    (void)state;
    /* $in: 10000 values are fine, 10001 are not */
    char *in = repeat("7,", 9999, "{\"a\":{\"$in\":[", "7]}}");
    filter *f = compile(in);
    json_t *p = load("{\"a\":7}");
    assert_true(matches(f, p));
    filter_free(f);
    free(in);
    in = repeat("7,", 10000, "{\"a\":{\"$in\":[", "7]}}");
    expect_refused(in, strlen(in), "filter", "filter.a.$in: has 10001 values; at most 10000", NULL);
    free(in);
    /* $and / $or: 1024 filters, not 1025 */
    char *list = repeat("{\"a\":7},", 1023, "{\"$or\":[", "{\"a\":7}]}");
    f = compile(list);
    assert_true(matches(f, p));
    filter_free(f);
    free(list);
    list = repeat("{\"a\":7},", 1024, "{\"$and\":[", "{\"a\":7}]}");
    expect_refused(list, strlen(list), "filter", "filter.$and: has 1025 filters; at most 1024", NULL);
    free(list);
    json_decref(p);

    /* depth: 64 nested filter objects are fine, 65 are not (built as
     * jansson values, since the text's own depth limit comes first) */
    for (int levels = 63; levels <= 64; levels++) {
        json_t *spec = json_object();
        for (int i = 0; i < levels; i++)
            spec = json_pack("{s:o}", "$not", spec);
        f = NULL;
        ndl_error err = {0};
        ndl_status st = filter_parse(spec, "filter", &f, &err);
        if (levels == 63) {
            assert_int_equal(st, NDL_OK);
            assert_true(filter_match(f, NULL) == (levels % 2 == 0));
            filter_free(f);
        } else {
            assert_int_equal(st, NDL_INVALID);
            assert_non_null(strstr(err.msg, "filters nest deeper than 64 levels"));
            assert_true(strncmp(err.msg, "filter...", 9) == 0); /* the long place is elided */
            assert_true(utf8_valid(err.msg, strlen(err.msg), NULL));
        }
        json_decref(spec);
    }
    /* operator objects count as levels too */
    json_t *ops = json_pack("{s:i}", "$gt", 1);
    for (int i = 0; i < 63; i++)
        ops = json_pack("{s:o}", "$not", ops);
    json_t *spec = json_pack("{s:o}", "a", ops);
    ndl_error err = {0};
    assert_int_equal(filter_parse(spec, "filter", &f, &err), NDL_INVALID);
    assert_non_null(strstr(err.msg, "filters nest deeper than 64 levels"));
    json_decref(spec);

    /* the text's depth is checked before jansson sees it */
    char *deep = repeat("[", 65, "", "");
    expect_refused(deep, strlen(deep), "filter", "filter nests deeper than 64 levels (line 1 column 65, byte offset 64)", NULL);
    free(deep);
    deep = repeat("{\"$not\":", 100000, "", "");
    expect_refused(deep, strlen(deep), "filter", "nests deeper than 64 levels", NULL);
    free(deep);
}

/* Long keys and places are cut between characters: messages stay valid
 * UTF-8 and keep their end. */
static void test_filter_long_messages(void **state)
{
    (void)state;
    char *key = repeat("\xc3\xa9", 300, "{\"$and\":[{\"", "\":{\"$gt\":[]}}]}");
    expect_refused(key, strlen(key), "filter", "filter...", ".$gt: needs a number or a string (got an array)");
    free(key);
    key = repeat("\xe6\x97\xa5", 100, "{\"a\":{\"$", "\":1}}");
    expect_refused(key, strlen(key), "filter", "filter.a: unknown operator '$\xe6\x97\xa5", "...'");
    free(key);
    key = repeat("\xf0\x9f\x98\x80", 100, "{\"a\":{\"", "\":1}}");
    expect_refused(key, strlen(key), "filter", "filter.a: '\xf0\x9f\x98\x80", "is not an operator");
    free(key);
    key = repeat("x.", 200, "{\"", ".\":1}");
    expect_refused(key, strlen(key), "filter", "filter: field 'x.x.", "has an empty part");
    free(key);
    /* where itself may be long */
    char where[300];
    memset(where, 'w', sizeof where - 1);
    where[sizeof where - 1] = '\0';
    expect_refused("{\"a\":{\"$gt\":[]}}", 16, where, "www", NULL);
}

/* ---------------------------------------------------------------- reference */

/* A deliberately simple evaluator of filters written straight on the JSON
 * of filter and payload, sharing nothing with filter_eval.c: collect every
 * end of a path into a list (NULL for "missing"), then test the list. */

typedef struct ends {
    const json_t *v[512];
    size_t n;
} ends;

static void ref_collect(const json_t *v, char **parts, int i, int nparts, ends *out)
{
    if (i == nparts) {
        assert_true(out->n < NDL_ARRAY_LEN(out->v));
        out->v[out->n++] = v;
    } else if (json_is_object(v)) {
        ref_collect(json_object_get(v, parts[i]), parts, i + 1, nparts, out);
    } else if (json_is_array(v)) {
        size_t k;
        json_t *e;
        json_array_foreach((json_t *)v, k, e)
        {
            if (json_is_object(e))
                ref_collect(e, parts, i, nparts, out);
        }
    } else {
        ref_collect(NULL, parts, nparts, nparts, out);
    }
}

static void ref_ends(const json_t *payload, const char *field, ends *out)
{
    char copy[256], *parts[32], *save = NULL;
    int n = 0;
    snprintf(copy, sizeof copy, "%s", field);
    for (char *p = strtok_r(copy, ".", &save); p; p = strtok_r(NULL, ".", &save))
        parts[n++] = p;
    out->n = 0;
    ref_collect(payload, parts, 0, n, out);
}

/* The dates the random filters and payloads use, with their instants;
 * every other string of theirs is not a date. */
static const struct {
    const char *text;
    int y, mo, d, h, mi, s, ms, offset;
} REF_DATES[] = {
    {"2024-03-01", 2024, 3, 1, 0, 0, 0, 0, 0},
    {"2024-03-01T10:00:00Z", 2024, 3, 1, 10, 0, 0, 0, 0},
    {"2024-03-01T12:00:00+02:00", 2024, 3, 1, 12, 0, 0, 0, 120},
    {"2024-03-01T09:59:59.999Z", 2024, 3, 1, 9, 59, 59, 999, 0},
    {"2024-03-01 10:00", 2024, 3, 1, 10, 0, 0, 0, 0},
    {"2024-02-29T23:00:00-01:00", 2024, 2, 29, 23, 0, 0, 0, -60},
    {"2023-12-31T23:59:59.5+0000", 2023, 12, 31, 23, 59, 59, 500, 0},
    {"2024-03-01T10:00:00.000000001z", 2024, 3, 1, 10, 0, 0, 0, 0},
};

static bool ref_date(const json_t *s, int64_t *ms)
{
    for (size_t i = 0; i < NDL_ARRAY_LEN(REF_DATES); i++)
        if (strcmp(json_string_value(s), REF_DATES[i].text) == 0) {
            *ms = epoch_ms(REF_DATES[i].y, REF_DATES[i].mo, REF_DATES[i].d, REF_DATES[i].h, REF_DATES[i].mi,
                           REF_DATES[i].s, REF_DATES[i].ms, REF_DATES[i].offset);
            return true;
        }
    return false;
}

static int ref_strcmp(const json_t *a, const json_t *b)
{
    size_t la = json_string_length(a), lb = json_string_length(b);
    int c = memcmp(json_string_value(a), json_string_value(b), la < lb ? la : lb);
    return c ? (c > 0) - (c < 0) : (la > lb) - (la < lb);
}

static bool ref_scalar_eq(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    if (json_is_string(a) && json_is_string(b))
        return ref_strcmp(a, b) == 0;
    if (json_is_boolean(a) && json_is_boolean(b))
        return json_is_true(a) == json_is_true(b);
    return json_is_null(a) && json_is_null(b);
}

static bool ref_eq_end(const json_t *end, const json_t *operand)
{
    if (!end)
        return json_is_null(operand);
    if (!json_is_array(end))
        return ref_scalar_eq(end, operand);
    for (size_t k = 0; k < json_array_size(end); k++)
        if (ref_scalar_eq(json_array_get(end, k), operand))
            return true;
    return false;
}

/* -1, 0, 1, or 2 when v and the operand do not compare. */
static int ref_order(const json_t *v, const json_t *operand)
{
    int64_t a, b;
    if (json_is_number(operand)) {
        if (!json_is_number(v))
            return 2;
        double x = json_number_value(v), y = json_number_value(operand);
        return (x > y) - (x < y);
    }
    if (!json_is_string(v))
        return 2;
    if (ref_date(operand, &b))
        return ref_date(v, &a) ? (a > b) - (a < b) : 2;
    return ref_strcmp(v, operand);
}

static bool ref_order_holds(const char *op, int c)
{
    if (c == 2)
        return false;
    if (strcmp(op, "$gt") == 0)
        return c > 0;
    if (strcmp(op, "$gte") == 0)
        return c >= 0;
    if (strcmp(op, "$lt") == 0)
        return c < 0;
    return c <= 0;
}

static bool ref_range_end(const json_t *end, const char *op, const json_t *operand)
{
    if (!end)
        return false;
    if (!json_is_array(end))
        return ref_order_holds(op, ref_order(end, operand));
    for (size_t k = 0; k < json_array_size(end); k++)
        if (ref_order_holds(op, ref_order(json_array_get(end, k), operand)))
            return true;
    return false;
}

/* Lower-cased words of s, one after the other, each NUL-terminated. */
static size_t ref_words(const char *s, size_t len, char words[][64], size_t max)
{
    size_t n = 0, w = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)s[i] : ' ';
        if (c >= 0x80 || (c < 0x80 && isalnum(c))) {
            if (w < 63)
                words[n][w++] = (char)tolower(c);
        } else if (w) {
            words[n][w] = '\0';
            w = 0;
            if (++n == max)
                return n;
        }
    }
    return n;
}

static bool ref_has_word(const json_t *v, const char *word)
{
    char words[32][64];
    if (!json_is_string(v))
        return false;
    size_t n = ref_words(json_string_value(v), json_string_length(v), words, 32);
    for (size_t i = 0; i < n; i++)
        if (strcmp(words[i], word) == 0)
            return true;
    return false;
}

static bool ref_text_end(const json_t *end, const char *query)
{
    if (!json_is_string(end) && !json_is_array(end))
        return false;
    char q[32][64];
    size_t n = ref_words(query, strlen(query), q, 32);
    for (size_t i = 0; i < n; i++) {
        bool found = ref_has_word(end, q[i]);
        for (size_t k = 0; json_is_array(end) && k < json_array_size(end); k++)
            found = found || ref_has_word(json_array_get(end, k), q[i]);
        if (!found)
            return false;
    }
    return true;
}

static bool ref_ops(const json_t *payload, const char *field, const json_t *ops);

static bool ref_op(const json_t *payload, const char *field, const char *op, const json_t *arg)
{
    if (strcmp(op, "$not") == 0)
        return !ref_ops(payload, field, arg);
    ends e;
    ref_ends(payload, field, &e);
    bool any = false;
    if (strcmp(op, "$eq") == 0 || strcmp(op, "$ne") == 0) {
        for (size_t i = 0; i < e.n; i++)
            any = any || ref_eq_end(e.v[i], arg);
        return op[1] == 'e' ? any : !any;
    }
    if (strcmp(op, "$in") == 0 || strcmp(op, "$nin") == 0) {
        for (size_t i = 0; i < e.n; i++)
            for (size_t k = 0; k < json_array_size(arg); k++)
                any = any || ref_eq_end(e.v[i], json_array_get(arg, k));
        return op[1] == 'i' ? any : !any;
    }
    if (strcmp(op, "$exists") == 0) {
        for (size_t i = 0; i < e.n; i++)
            any = any || e.v[i] != NULL;
        return any == json_is_true(arg);
    }
    if (strcmp(op, "$text") == 0) {
        for (size_t i = 0; i < e.n; i++)
            any = any || ref_text_end(e.v[i], json_string_value(arg));
        return any;
    }
    for (size_t i = 0; i < e.n; i++)
        any = any || ref_range_end(e.v[i], op, arg);
    return any;
}

static bool ref_ops(const json_t *payload, const char *field, const json_t *ops)
{
    const char *op;
    json_t *arg;
    json_object_foreach((json_t *)ops, op, arg)
    {
        if (!ref_op(payload, field, op, arg))
            return false;
    }
    return true;
}

static bool ref_match(const json_t *spec, const json_t *payload)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)spec, key, v)
    {
        bool ok;
        if (strcmp(key, "$and") == 0 || strcmp(key, "$or") == 0) {
            bool is_and = key[1] == 'a';
            ok = is_and;
            for (size_t i = 0; i < json_array_size(v); i++)
                if (ref_match(json_array_get(v, i), payload) != is_and) {
                    ok = !is_and;
                    break;
                }
        } else if (strcmp(key, "$not") == 0) {
            ok = !ref_match(v, payload);
        } else if (json_is_object(v)) {
            ok = ref_ops(payload, key, v);
        } else {
            ok = ref_op(payload, key, "$eq", v);
        }
        if (!ok)
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------- random */

static const char *const STRINGS[] = {"x", "y", "X", "", "tech", "a b", "Hello, World", "vector database",
                                      "caf\xc3\xa9 ok", "2024-02-30", "2024-1-1", "2024-03-01T12", "zz top"};
static const char *const QUERIES[] = {"hello", "WORLD hello", "vector", "database VECTOR", "caf\xc3\xa9",
                                      "x", "top zz", "b", "a-b", "ok, world"};
static const char *const FIELDS[] = {"a", "b", "c", "tags", "t", "n", "n.x", "n.y", "n.deep.z",
                                     "arr", "arr.x", "arr.y", "zz", "a.x", "arr.deep.z"};

static json_t *rand_scalar(void)
{
    switch (rnd_below(8)) {
    case 0: return json_null();
    case 1: return json_boolean(rnd_below(2));
    case 2: return json_integer(rnd_below(5) - 1);
    case 3: {
        static const double reals[] = {0.0, 1.0, 1.5, 2.5, -1.0, 3.0};
        return json_real(reals[rnd_below(6)]);
    }
    case 4:
    case 5: return json_string(REF_DATES[rnd_below(NDL_ARRAY_LEN(REF_DATES))].text);
    default: return json_string(STRINGS[rnd_below(NDL_ARRAY_LEN(STRINGS))]);
    }
}

static json_t *rand_value(int depth);

static json_t *rand_object(int depth)
{
    json_t *o = json_object();
    static const char *const keys[] = {"x", "y", "z", "deep"};
    for (size_t i = 0; i < NDL_ARRAY_LEN(keys); i++)
        if (rnd_below(3))
            json_object_set_new(o, keys[i], rand_value(depth + 1));
    return o;
}

static json_t *rand_value(int depth)
{
    int r = rnd_below(10);
    if (r < 5 || depth > 2)
        return rand_scalar();
    if (r < 8) {
        json_t *a = json_array();
        for (int i = rnd_below(4); i > 0; i--) {
            int kind = rnd_below(6);
            json_array_append_new(a, kind == 0 ? rand_object(depth + 1)
                                     : kind == 1 ? json_pack("[o]", rand_object(depth + 1))
                                                 : rand_scalar());
        }
        return a;
    }
    return rand_object(depth);
}

/* Fields a..t hold anything; n is mostly an object and arr mostly an array
 * of objects, so that dotted paths have something to walk. */
static json_t *rand_payload(void)
{
    json_t *p = json_object();
    static const char *const keys[] = {"a", "b", "c", "tags", "t"};
    for (size_t i = 0; i < NDL_ARRAY_LEN(keys); i++)
        if (rnd_below(4))
            json_object_set_new(p, keys[i], rand_value(0));
    if (rnd_below(4))
        json_object_set_new(p, "n", rnd_below(3) ? rand_object(1) : rand_value(0));
    if (rnd_below(4)) {
        json_t *arr = rnd_below(3) ? json_array() : rand_value(0);
        for (int i = json_is_array(arr) ? rnd_below(4) : 0; i > 0; i--)
            json_array_append_new(arr, rnd_below(4) ? rand_object(1) : rand_value(1));
        json_object_set_new(p, "arr", arr);
    }
    return p;
}

static json_t *rand_list(void)
{
    json_t *a = json_array();
    for (int i = rnd_below(12); i > 0; i--)
        json_array_append_new(a, rand_scalar());
    return a;
}

static json_t *rand_range_operand(void)
{
    if (rnd_below(2))
        return json_real(rnd_below(7) / 2.0 - 1);
    if (rnd_below(2))
        return json_string(REF_DATES[rnd_below(NDL_ARRAY_LEN(REF_DATES))].text);
    return json_string(STRINGS[rnd_below(NDL_ARRAY_LEN(STRINGS))]);
}

/* One operator and its operand, set into ops. */
static void rand_op(json_t *ops, int depth)
{
    static const char *const range[] = {"$gt", "$gte", "$lt", "$lte"};
    switch (rnd_below(9)) {
    case 0: json_object_set_new(ops, "$eq", rand_scalar()); break;
    case 1: json_object_set_new(ops, "$ne", rand_scalar()); break;
    case 2:
    case 3: json_object_set_new(ops, range[rnd_below(4)], rand_range_operand()); break;
    case 4: json_object_set_new(ops, "$in", rand_list()); break;
    case 5: json_object_set_new(ops, "$nin", rand_list()); break;
    case 6: json_object_set_new(ops, "$exists", json_boolean(rnd_below(2))); break;
    case 7: json_object_set_new(ops, "$text", json_string(QUERIES[rnd_below(NDL_ARRAY_LEN(QUERIES))])); break;
    default: {
        json_t *inner = json_object();
        rand_op(inner, depth + 1);
        json_object_set_new(ops, depth < 3 ? "$not" : "$exists", depth < 3 ? inner : json_true());
        if (depth >= 3)
            json_decref(inner);
    }
    }
}

static json_t *rand_filter(int depth);

static void rand_entry(json_t *f, int depth)
{
    int r = rnd_below(depth < 3 ? 10 : 6);
    const char *field = FIELDS[rnd_below(NDL_ARRAY_LEN(FIELDS))];
    if (r < 2) {
        json_object_set_new(f, field, rand_scalar());
    } else if (r < 6) {
        json_t *ops = json_object();
        for (int i = 1 + (rnd_below(4) == 0); i > 0; i--)
            rand_op(ops, depth);
        json_object_set_new(f, field, ops);
    } else if (r < 9) {
        json_t *list = json_array();
        for (int i = 1 + rnd_below(3); i > 0; i--)
            json_array_append_new(list, rand_filter(depth + 1));
        json_object_set_new(f, r == 6 ? "$and" : "$or", list);
    } else {
        json_object_set_new(f, "$not", rand_filter(depth + 1));
    }
}

static json_t *rand_filter(int depth)
{
    json_t *f = json_object();
    int n = rnd_below(12) == 0 ? 0 : 1 + (rnd_below(3) == 0);
    for (int i = 0; i < n; i++)
        rand_entry(f, depth);
    return f;
}

static filter *compile_json(const json_t *spec)
{
    filter *f = NULL;
    ndl_error err = {0};
    if (filter_parse(spec, "filter", &f, &err) != NDL_OK) {
        char *text = json_dumps(spec, JSON_COMPACT);
        fail_msg("random filter %s refused: %s", text, err.msg);
    }
    return f;
}

static void check_against_reference(const json_t *spec, json_t *const *payloads, size_t n, size_t *hits)
{
    filter *f = compile_json(spec);
    json_t *negated_spec = json_pack("{s:O}", "$not", (json_t *)spec);
    filter *negated = compile_json(negated_spec);
    for (size_t i = 0; i < n; i++) {
        bool got = filter_match(f, payloads[i]), want = ref_match(spec, payloads[i]);
        if (got != want) {
            char *fs = json_dumps(spec, JSON_COMPACT), *ps = json_dumps(payloads[i], JSON_COMPACT);
            fail_msg("filter %s on payload %s: filter_match %d, reference %d", fs, ps, got, want);
        }
        assert_true(filter_match(negated, payloads[i]) == !got);
        *hits += got;
    }
    filter_free(negated);
    json_decref(negated_spec);
    filter_free(f);
}

/* For one field: $ne against $eq and implicit $eq, $nin against $in,
 * $exists false against true, $not of a range against the range. */
static void check_complements(const json_t *payload)
{
    const char *field = FIELDS[rnd_below(NDL_ARRAY_LEN(FIELDS))];
    json_t *v = rand_scalar(), *list = rand_list(), *r = rand_range_operand();
    json_t *specs[] = {
        json_pack("{s:O}", field, v),
        json_pack("{s:{s:O}}", field, "$eq", v),
        json_pack("{s:{s:O}}", field, "$ne", v),
        json_pack("{s:{s:O}}", field, "$in", list),
        json_pack("{s:{s:O}}", field, "$nin", list),
        json_pack("{s:{s:b}}", field, "$exists", 1),
        json_pack("{s:{s:b}}", field, "$exists", 0),
        json_pack("{s:{s:O}}", field, "$lte", r),
        json_pack("{s:{s:{s:O}}}", field, "$not", "$lte", r),
    };
    bool m[NDL_ARRAY_LEN(specs)];
    for (size_t i = 0; i < NDL_ARRAY_LEN(specs); i++) {
        filter *f = compile_json(specs[i]);
        m[i] = filter_match(f, payload);
        assert_true(m[i] == ref_match(specs[i], payload));
        filter_free(f);
        json_decref(specs[i]);
    }
    assert_true(m[0] == m[1]);
    assert_true(m[2] == !m[1]);
    assert_true(m[4] == !m[3]);
    assert_true(m[6] == !m[5]);
    assert_true(m[8] == !m[7]);
    json_decref(v);
    json_decref(list);
    json_decref(r);
}

static void test_filter_random_against_reference(void **state)
{
    (void)state;
    rng_state = 0x2545f4914f6cdd1dull;
    enum { PAYLOADS = 24, FILTERS = 4000 };
    json_t *payloads[PAYLOADS + 1];
    for (size_t i = 0; i < PAYLOADS; i++)
        payloads[i] = rand_payload();
    payloads[PAYLOADS] = NULL; /* a point without a payload */
    size_t hits = 0, total = 0;
    for (int i = 0; i < FILTERS; i++) {
        json_t *spec = rand_filter(0);
        check_against_reference(spec, payloads, PAYLOADS + 1, &hits);
        total += PAYLOADS + 1;
        if (i % 8 == 0) { /* through the text too */
            char *text = json_dumps(spec, JSON_COMPACT);
            filter *f = compile(text);
            for (size_t k = 0; k <= PAYLOADS; k++)
                assert_true(matches(f, payloads[k]) == ref_match(spec, payloads[k]));
            filter_free(f);
            ndl_free(text);
        }
        json_decref(spec);
        check_complements(payloads[rnd_below(PAYLOADS + 1)]);
    }
    /* neither side of the comparison may be rare, else it proves little */
    assert_true(hits > total / 5 && hits < total * 4 / 5);
    for (size_t i = 0; i < PAYLOADS; i++)
        json_decref(payloads[i]);
}

/* ---------------------------------------------------------------- OOM */

static const char *OOM_FILTER = "{\"category\":\"tech\",\"price\":{\"$gte\":10,\"$lt\":100},"
                                "\"tags\":{\"$in\":[\"a\",\"b\",\"c\",1,2,3,4,5,6,7,8,9,10]},"
                                "\"$or\":[{\"published\":{\"$gte\":\"2024-01-01T00:00:00Z\"}},"
                                "{\"$not\":{\"meta.author\":{\"$exists\":false}}}],"
                                "\"title\":{\"$text\":\"vector database\"},\"x\":{\"$not\":{\"$in\":[]}}}";
static const char *OOM_DOC = "{\"category\":\"tech\",\"price\":12.5,\"tags\":[\"z\",3],\"meta\":{\"author\":\"j\"},"
                             "\"title\":\"A vector database\",\"x\":[1,2]}";

static void test_filter_oom(void **state)
{
    (void)state;
    json_t *doc = load(OOM_DOC);
    int failures = 0;
    for (long k = 0;; k++) {
        filter *f = (filter *)1;
        ndl_error err = {0};
        ndl_alloc_fail_after(k);
        ndl_status st = filter_parse_text(OOM_FILTER, strlen(OOM_FILTER), "filter", &f, &err);
        bool text_match = st == NDL_OK && filter_match_text(f, OOM_DOC, strlen(OOM_DOC));
        ndl_alloc_fail_after(-1);
        if (st == NDL_OK) {
            assert_true(filter_match(f, doc));
            assert_true(text_match); /* a failed allocation while parsing the payload was retried */
            filter_free(f);
            break;
        }
        if (st != NDL_NOMEM)
            fail_msg("allocation %ld failing gave status %d (%s), not NDL_NOMEM", k, (int)st, err.msg);
        assert_null(f);
        assert_int_equal(err.status, NDL_NOMEM);
        assert_non_null(strstr(err.msg, "out of memory"));
        failures++;
        assert_true(k < 100000);
    }
    assert_true(failures > 3);
    /* filter_parse alone: only the filter's own blocks */
    json_t *spec = load(OOM_FILTER);
    failures = 0;
    for (long k = 0;; k++) {
        filter *f = NULL;
        ndl_alloc_fail_after(k);
        ndl_status st = filter_parse(spec, NULL, &f, NULL);
        ndl_alloc_fail_after(-1);
        if (st == NDL_OK) {
            assert_true(filter_match(f, doc));
            filter_free(f);
            break;
        }
        assert_int_equal(st, NDL_NOMEM);
        failures++;
    }
    assert_true(failures > 0);
    json_decref(spec);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_date_valid),
        cmocka_unit_test(test_date_invalid),
        cmocka_unit_test(test_date_random_against_timegm),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_filter_eq_and_null),
        cmocka_unit_test(test_filter_arrays_and_paths),
        cmocka_unit_test(test_filter_ranges_and_dates),
        cmocka_unit_test(test_filter_in_exists_text),
        cmocka_unit_test(test_filter_text_many_words),
        cmocka_unit_test(test_filter_logic),
        cmocka_unit_test(test_filter_match_text),
        cmocka_unit_test(test_filter_tree_layout),
        cmocka_unit_test(test_filter_value_order),
        cmocka_unit_test(test_filter_errors),
        cmocka_unit_test(test_filter_limits),
        cmocka_unit_test(test_filter_long_messages),
        cmocka_unit_test(test_filter_random_against_reference),
        cmocka_unit_test(test_filter_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
