/*
 * test_field_index.c -- unit tests of the payload field indexes
 * (src/payload/field_index.c) and of filters compiled into candidate slots
 * from them (src/payload/filter_candidates.c).
 *
 * The contract, checked for every filter below with filter_match as the
 * oracle (test_filter.c tests filter_match against a reference evaluator):
 *
 *   B = filter_candidates(f, fields, n, slots, &exact), NULL meaning every
 *   slot of 0..slots-1. For every slot s in 0..slots-1 whose payload P_s
 *   was added to every index of `fields`:
 *     filter_match(f, P_s)          =>  s in B              (always a superset)
 *     exact and s in B              =>  filter_match(f, P_s) (then B is the answer)
 *   B holds no slot outside 0..slots-1, and the answer does not depend on
 *   what *exact held before the call.
 *
 * Indexes must agree with filter_match exactly wherever they answer
 * exactly, for every operator, on:
 * - keyword: strings, arrays of strings, null, missing, NUL bytes, case;
 * - int: integers beyond 2^53 (9007199254740993 vs 9007199254740992), the
 *   ends of int64, operands like 2.5 or 9007199254740993.0 against ints,
 *   negative numbers;
 * - float: 1 == 1.0 == 1e0, -0.0 == 0, JSON integers stored in a float field;
 * - bool; date (ISO strings in any zone, with fractions: $eq and $in
 *   compare the text, so they are never exact; ranges are exact, as
 *   instants);
 * - text: $text words, ASCII case folding, words longer than 128 bytes
 *   (indexed by their first 128: not exact), a slot with several ends of a
 *   path through arrays of objects (words may sit in different ends: not
 *   exact);
 * - dotted paths through objects and arrays of objects (elements that are
 *   not objects lead nowhere), $exists true/false, $eq null, $in with null,
 *   $ne / $nin / $not (complements, exact only when what they negate is),
 *   $and / $or mixing indexed and unindexed fields, {}.
 * And:
 * - field_index_check: values of the type, null and arrays of them pass;
 *   anything else is refused naming the field, its type and what was found
 *   ("payload field 'price' is indexed as float; got a string"); a date
 *   field refuses strings that are not ISO-8601 dates;
 * - field_index_remove then field_index_add (a payload changed in place)
 *   answers as if only the new payload had ever been added;
 * - field_index_remapped (compaction renumbering slots, dropping some)
 *   answers exactly as indexes built afresh from the kept payloads;
 * - over 10,000 numbers per field, so that the sorted delta (4096 entries)
 *   merges into the main run, with removals from both;
 * - a randomized property test (fixed seeds): random payloads whose indexed
 *   fields hold values of their type (or null, missing, arrays), plus
 *   unindexed fields; random filters over both with every operator. Filters
 *   that use only what an index answers exactly must come back exact, and
 *   a fair share of all filters does: an index that always answered "every
 *   slot, not exact" would fail;
 * - thousands of keywords and words, so that the dictionaries grow and
 *   rehash; memory accounting;
 * - field names (field_name_check), type names;
 * - out of memory (ndl_alloc_fail_after) in field_index_create,
 *   field_index_add (what was half added can be removed and added again)
 *   and while answering (still a superset; a leaf that gives every slot is
 *   not exact); CRoaring allocates with malloc and is not failed. ASan
 *   checks that nothing leaks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_rand.h"
#include <jansson.h>
#include <roaring/roaring.h>

#include "payload/field_index.h"
#include "payload/filter.h"
#include "payload/filter_candidates.h"
#include "util/alloc.h"
#include "util/base.h"

/* ---------------------------------------------------------------- helpers */

static json_t *load(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v)
        fail_msg("test JSON does not parse: %s (%s)", text, je.text);
    return v;
}

/* JSON text of v (NULL: "(no payload)") in a buffer of its own, for messages. */
static const char *show(const json_t *v, char *buf, size_t size)
{
    if (!v) {
        snprintf(buf, size, "(no payload)");
        return buf;
    }
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf, size, "%s", text ? text : "?");
    free(text);
    return buf;
}

static filter *compile(const json_t *spec)
{
    filter *f = NULL;
    ndl_error err = {0};
    if (filter_parse(spec, "filter", &f, &err) != NDL_OK) {
        char buf[1024];
        fail_msg("filter %s refused: %s", show(spec, buf, sizeof buf), err.msg);
    }
    return f;
}


#define PICK(a) ((a)[rnd_below((int)NDL_ARRAY_LEN(a))])

/* ---------------------------------------------------------------- a world */

/* Indexes and the payload of every slot, each added to every index (after
 * field_index_check said it fits). */
typedef struct world {
    field_index *fields[16];
    size_t nfields;
    json_t **payloads; /* slot -> payload, NULL: a point without one */
    uint32_t slots, cap;
} world;

/* Declares fields from "name:type name:type ...". */
static void world_fields(world *w, const char *decl)
{
    char copy[512], *save = NULL;
    snprintf(copy, sizeof copy, "%s", decl);
    for (char *d = strtok_r(copy, " ", &save); d; d = strtok_r(NULL, " ", &save)) {
        char *colon = strchr(d, ':');
        field_type t;
        assert_non_null(colon);
        *colon = '\0';
        assert_true(field_type_parse(colon + 1, &t));
        ndl_error err = {0};
        assert_true(w->nfields < NDL_ARRAY_LEN(w->fields));
        if (field_index_create(d, t, &w->fields[w->nfields], &err) != NDL_OK)
            fail_msg("field %s:%s refused: %s", d, colon + 1, err.msg);
        assert_string_equal(field_index_name(w->fields[w->nfields]), d);
        assert_int_equal(field_index_type(w->fields[w->nfields]), t);
        w->nfields++;
    }
}

static void index_payload(world *w, uint32_t slot, const json_t *p)
{
    for (size_t i = 0; i < w->nfields; i++) {
        ndl_error err = {0};
        char buf[1024];
        if (field_index_check(w->fields[i], p, &err) != NDL_OK)
            fail_msg("payload %s refused: %s", show(p, buf, sizeof buf), err.msg);
        assert_int_equal(field_index_add(w->fields[i], slot, p, &err), NDL_OK);
    }
}

/* A new slot holding p (taken over; NULL: no payload), not indexed here. */
static uint32_t world_store(world *w, json_t *p)
{
    if (w->slots == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 64;
        w->payloads = realloc(w->payloads, w->cap * sizeof *w->payloads);
        assert_non_null(w->payloads);
    }
    w->payloads[w->slots] = p;
    return w->slots++;
}

/* A new slot holding p, added to every index. */
static uint32_t world_add(world *w, json_t *p)
{
    index_payload(w, w->slots, p);
    return world_store(w, p);
}

/* The payload of slot changed in place to p (taken over). */
static void world_replace(world *w, uint32_t slot, json_t *p)
{
    for (size_t i = 0; i < w->nfields; i++)
        field_index_remove(w->fields[i], slot, w->payloads[slot]);
    index_payload(w, slot, p);
    json_decref(w->payloads[slot]);
    w->payloads[slot] = p;
}

/* Slots from payload texts (NULL: no payload). */
static void world_load(world *w, const char *decl, const char *const *texts, size_t n)
{
    world_fields(w, decl);
    for (size_t i = 0; i < n; i++)
        world_add(w, texts[i] ? load(texts[i]) : NULL);
}

static void world_free(world *w)
{
    for (size_t i = 0; i < w->nfields; i++)
        field_index_free(w->fields[i]);
    for (uint32_t s = 0; s < w->slots; s++)
        json_decref(w->payloads[s]);
    free(w->payloads);
    memset(w, 0, sizeof *w);
}

/* ---------------------------------------------------------------- the contract */

typedef struct verdict {
    bool exact;
    uint32_t matches;    /* slots that match */
    uint32_t candidates; /* slots in B */
} verdict;

/* Checks the contract of b and exact (an answer of filter_candidates for
 * f, from spec) on every slot of w. want_list, if given, receives the
 * matching slots as "0 3 5". */
static verdict verify(const world *w, const json_t *spec, const filter *f, const roaring_bitmap_t *b,
                      bool exact, char *want_list, size_t list_size)
{
    char fbuf[1024], pbuf[1024];
    verdict v = {exact, 0, b ? (uint32_t)roaring_bitmap_get_cardinality(b) : w->slots};
    if (b && !roaring_bitmap_is_empty(b) && roaring_bitmap_maximum(b) >= w->slots)
        fail_msg("filter %s: candidate slot %u is not below %u", show(spec, fbuf, sizeof fbuf),
                 roaring_bitmap_maximum(b), w->slots);
    size_t used = 0;
    if (want_list)
        want_list[0] = '\0';
    for (uint32_t s = 0; s < w->slots; s++) {
        bool m = filter_match(f, w->payloads[s]);
        bool in = !b || roaring_bitmap_contains(b, s);
        if (m && !in)
            fail_msg("filter %s matches slot %u (payload %s) but it is not a candidate", show(spec, fbuf, sizeof fbuf),
                     s, show(w->payloads[s], pbuf, sizeof pbuf));
        if (exact && in && !m)
            fail_msg("filter %s: the answer is exact but holds slot %u (payload %s), which does not match",
                     show(spec, fbuf, sizeof fbuf), s, show(w->payloads[s], pbuf, sizeof pbuf));
        v.matches += m;
        if (m && want_list)
            used += (size_t)snprintf(want_list + used, list_size - used, used ? " %u" : "%u", s);
        if (want_list)
            assert_true(used < list_size);
    }
    return v;
}

/* filter_candidates of spec over w, checked (twice: the answer may not
 * depend on what *exact held before). */
static verdict check_contract(const world *w, const json_t *spec, char *list, size_t list_size)
{
    filter *f = compile(spec);
    bool exact = true, exact2 = false;
    roaring_bitmap_t *b = filter_candidates(f, w->fields, w->nfields, w->slots, &exact);
    roaring_bitmap_t *b2 = filter_candidates(f, w->fields, w->nfields, w->slots, &exact2);
    char buf[1024];
    if (exact != exact2 || !b != !b2 || (b && !roaring_bitmap_equals(b, b2)))
        fail_msg("filter %s: two calls gave different answers", show(spec, buf, sizeof buf));
    verdict v = verify(w, spec, f, b, exact, list, list_size);
    bitmap_free(b);
    bitmap_free(b2);
    filter_free(f);
    return v;
}

enum { INEXACT, EXACT, EITHER };

typedef struct fcase {
    const char *filter;
    int exact;        /* INEXACT: must not be exact; EXACT: must be; EITHER */
    const char *want; /* the slots that match ("0 3 5"; "" none) */
} fcase;

static void run_case(const world *w, const char *text, int want_exact, const char *want)
{
    char got[1024];
    json_t *spec = load(text);
    verdict v = check_contract(w, spec, got, sizeof got);
    if (strcmp(got, want) != 0)
        fail_msg("filter %s matches slots \"%s\", want \"%s\"", text, got, want);
    if (want_exact != EITHER && v.exact != (want_exact == EXACT))
        fail_msg("filter %s: exact is %d, want %d (%u candidates, %u matches)", text, v.exact, want_exact == EXACT,
                 v.candidates, v.matches);
    json_decref(spec);
}

static void run_cases(const world *w, const fcase *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        run_case(w, cases[i].filter, cases[i].exact, cases[i].want);
}

static void run_world(const char *decl, const char *const *payloads, size_t npayloads, const fcase *cases,
                      size_t ncases)
{
    world w = {0};
    world_load(&w, decl, payloads, npayloads);
    run_cases(&w, cases, ncases);
    world_free(&w);
}

#define RUN_WORLD(decl, payloads, cases)                                                                     \
    run_world(decl, payloads, NDL_ARRAY_LEN(payloads), cases, NDL_ARRAY_LEN(cases))

/* ---------------------------------------------------------------- names */

static void test_type_names(void **state)
{
    (void)state;
    static const char *const names[FIELD_TYPES] = {"keyword", "int", "float", "bool", "date", "text"};
    for (int t = 0; t < FIELD_TYPES; t++) {
        field_type back = (field_type)-1;
        assert_string_equal(field_type_name((field_type)t), names[t]);
        assert_true(field_type_parse(field_type_name((field_type)t), &back));
        assert_int_equal(back, t);
    }
    static const char *const bad[] = {"", "Keyword", "INT", "integer", "string", "double", "boolean", "datetime",
                                      "keyword ", " int", "?", "texts"};
    for (size_t i = 0; i < NDL_ARRAY_LEN(bad); i++) {
        field_type out = FIELD_BOOL;
        assert_false(field_type_parse(bad[i], &out));
        assert_int_equal(out, FIELD_BOOL); /* untouched */
    }
    assert_string_equal(field_type_name((field_type)FIELD_TYPES), "?");
    assert_string_equal(field_type_name((field_type)-1), "?");
}

static void expect_name(const char *name, const char *msg)
{
    ndl_error err = {0};
    ndl_status st = field_name_check(name, &err);
    if (!msg) {
        if (st != NDL_OK)
            fail_msg("field name '%s' refused: %s", name, err.msg);
        field_index *fi = NULL;
        assert_int_equal(field_index_create(name, FIELD_KEYWORD, &fi, NULL), NDL_OK);
        assert_string_equal(field_index_name(fi), name);
        field_index_free(fi);
        return;
    }
    if (st != NDL_INVALID)
        fail_msg("field name '%.60s' accepted", name);
    assert_int_equal(err.status, NDL_INVALID);
    if (!strstr(err.msg, msg))
        fail_msg("field name '%.60s': message '%s' lacks '%s'", name, err.msg, msg);
    field_index *fi = (field_index *)&err; /* must be reset to NULL */
    assert_int_equal(field_index_create(name, FIELD_INT, &fi, &err), NDL_INVALID);
    assert_null(fi);
    assert_non_null(strstr(err.msg, msg));
}

static void test_field_names(void **state)
{
    (void)state;
    char name[300];
    expect_name("a", NULL);
    expect_name("price", NULL);
    expect_name("meta.author", NULL);
    expect_name("a.b.c.d", NULL);
    expect_name("a$", NULL);
    expect_name("a.$b", NULL); /* only a leading '$' is an operator */
    expect_name("caf\xc3\xa9 x-y_z", NULL);
    memset(name, 'n', 256);
    name[256] = '\0';
    expect_name(name, NULL);
    name[256] = 'n';
    name[257] = '\0';
    expect_name(name, "a field name has 1..256 bytes (got 257)");
    expect_name("", "a field name has 1..256 bytes (got 0)");
    expect_name("$a", "field name '$a' starts with '$' (operators do)");
    expect_name("$", "starts with '$'");
    expect_name(".a", "field name '.a' has an empty part between dots");
    expect_name("a.", "field name 'a.' has an empty part between dots");
    expect_name("a..b", "field name 'a..b' has an empty part between dots");
    expect_name(".", "has an empty part between dots");
    expect_name("a.b..", "has an empty part between dots");
    /* a bad type */
    field_index *fi = (field_index *)name;
    ndl_error err = {0};
    assert_int_equal(field_index_create("a", (field_type)FIELD_TYPES, &fi, &err), NDL_INVALID);
    assert_null(fi);
    assert_string_equal(err.msg, "field 'a': unknown type 6");
    /* the error is optional */
    assert_int_equal(field_name_check("", NULL), NDL_INVALID);
}

/* ---------------------------------------------------------------- type checks */

typedef struct check_case {
    const char *decl; /* "name:type" */
    const char *payload;
    const char *msg; /* NULL: accepted */
} check_case;

static void test_check(void **state)
{
    (void)state;
    static const check_case cases[] = {
        /* accepted: the type, null, arrays of them, missing, no payload */
        {"price:float", "{\"price\":1.5}", NULL},
        {"price:float", "{\"price\":2}", NULL},
        {"price:float", "{\"price\":[1,2.5,null,-0.0]}", NULL},
        {"price:float", "{\"price\":null}", NULL},
        {"price:float", "{\"price\":[]}", NULL},
        {"price:float", "{}", NULL},
        {"price:float", NULL, NULL},
        {"price:float", "{\"other\":\"x\",\"pricey\":\"y\"}", NULL},
        {"year:int", "{\"year\":9223372036854775807}", NULL},
        {"year:int", "{\"year\":[-9223372036854775808,0,null]}", NULL},
        {"tag:keyword", "{\"tag\":\"\"}", NULL},
        {"tag:keyword", "{\"tag\":[\"a\",null,\"a\\u0000b\"]}", NULL},
        {"ok:bool", "{\"ok\":[true,false,null]}", NULL},
        {"title:text", "{\"title\":[\"hello world\",\"\"]}", NULL},
        {"at:date", "{\"at\":[\"2024-03-01\",\"2024-03-01T10:00:00.123456+05:30\",null,\"2024-02-29 23:00z\"]}", NULL},
        /* paths: only the ends count; elements that are not objects lead nowhere */
        {"meta.tags:keyword", "{\"meta\":\"x\"}", NULL},
        {"meta.tags:keyword", "{\"meta\":[1,\"x\",[{\"tags\":5}],{\"tags\":[\"a\"]},{}]}", NULL},
        {"meta.tags:keyword", "{\"meta\":{\"other\":5}}", NULL},
        {"a.b.c:int", "{\"a\":[{\"b\":{\"c\":1}},{\"b\":[{\"c\":[2,null]},{\"c\":null}]}]}", NULL},
        /* refused, naming the field, its type and what was found */
        {"price:float", "{\"price\":\"12\"}", "payload field 'price' is indexed as float; got a string"},
        {"price:float", "{\"price\":[1,\"2\"]}", "payload field 'price' is indexed as float; got a string"},
        {"price:float", "{\"price\":true}", "payload field 'price' is indexed as float; got a boolean"},
        {"price:float", "{\"price\":{\"v\":1}}", "payload field 'price' is indexed as float; got an object"},
        {"price:float", "{\"price\":[[1]]}", "payload field 'price' is indexed as float; got an array"},
        {"year:int", "{\"year\":\"2024\"}", "payload field 'year' is indexed as int; got a string"},
        {"year:int", "{\"year\":[1,false]}", "payload field 'year' is indexed as int; got a boolean"},
        {"year:int", "{\"year\":2.5}",
         "payload field 'year' is indexed as int; got a number with a fraction or an exponent"},
        {"year:int", "{\"year\":[1,2e3]}",
         "payload field 'year' is indexed as int; got a number with a fraction or an exponent"},
        {"tag:keyword", "{\"tag\":5}", "payload field 'tag' is indexed as keyword; got a number"},
        {"tag:keyword", "{\"tag\":[\"a\",[\"b\"]]}", "payload field 'tag' is indexed as keyword; got an array"},
        {"tag:keyword", "{\"tag\":[{}]}", "payload field 'tag' is indexed as keyword; got an object"},
        {"tag:keyword", "{\"tag\":false}", "payload field 'tag' is indexed as keyword; got a boolean"},
        {"ok:bool", "{\"ok\":1}", "payload field 'ok' is indexed as bool; got a number"},
        {"ok:bool", "{\"ok\":\"true\"}", "payload field 'ok' is indexed as bool; got a string"},
        {"title:text", "{\"title\":3}", "payload field 'title' is indexed as text; got a number"},
        {"title:text", "{\"title\":{}}", "payload field 'title' is indexed as text; got an object"},
        {"at:date", "{\"at\":5}", "payload field 'at' is indexed as date; got a number"},
        {"at:date", "{\"at\":true}", "payload field 'at' is indexed as date; got a boolean"},
        {"at:date", "{\"at\":\"2024-1-1\"}",
         "payload field 'at' is indexed as date: \"2024-1-1\" is not an ISO-8601 date"},
        {"at:date", "{\"at\":[\"2024-03-01\",\"yesterday\"]}",
         "payload field 'at' is indexed as date: \"yesterday\" is not an ISO-8601 date"},
        {"at:date", "{\"at\":\"2024-02-30\"}", "\"2024-02-30\" is not an ISO-8601 date"},
        {"at:date", "{\"at\":\"2024-03-01T10\"}", "\"2024-03-01T10\" is not an ISO-8601 date"},
        {"at:date", "{\"at\":\"\"}", "payload field 'at' is indexed as date: \"\" is not an ISO-8601 date"},
        {"at:date", "{\"at\":\"0123456789012345678901234567890123456789-and-more\"}",
         "payload field 'at' is indexed as date: \"0123456789012345678901234567890123456789\" is not"},
        {"meta.tags:keyword", "{\"meta\":[{\"tags\":\"a\"},{\"tags\":[null,7]}]}",
         "payload field 'meta.tags' is indexed as keyword; got a number"},
        {"a.b.c:int", "{\"a\":[{\"b\":{\"c\":1}},{\"b\":[{\"c\":[2,\"x\"]}]}]}",
         "payload field 'a.b.c' is indexed as int; got a string"},
    };
    for (size_t i = 0; i < NDL_ARRAY_LEN(cases); i++) {
        world w = {0};
        world_fields(&w, cases[i].decl);
        json_t *p = cases[i].payload ? load(cases[i].payload) : NULL;
        ndl_error err = {0};
        ndl_status st = field_index_check(w.fields[0], p, &err);
        if (!cases[i].msg && st != NDL_OK)
            fail_msg("%s %s refused: %s", cases[i].decl, cases[i].payload, err.msg);
        if (cases[i].msg) {
            if (st != NDL_INVALID)
                fail_msg("%s %s accepted", cases[i].decl, cases[i].payload);
            assert_int_equal(err.status, NDL_INVALID);
            if (!strstr(err.msg, cases[i].msg))
                fail_msg("%s %s: message '%s' lacks '%s'", cases[i].decl, cases[i].payload, err.msg, cases[i].msg);
            assert_int_equal(field_index_check(w.fields[0], p, NULL), NDL_INVALID);
        }
        json_decref(p);
        world_free(&w);
    }
}

/* ---------------------------------------------------------------- keyword */

static void test_keyword(void **state)
{
    (void)state;
    static const char *const payloads[] = {
        "{\"k\":\"a\"}",            /* 0 */
        "{\"k\":\"b\"}",            /* 1 */
        "{\"k\":[\"a\",\"c\"]}",    /* 2 */
        "{\"k\":null}",             /* 3 */
        "{}",                       /* 4 */
        NULL,                       /* 5 */
        "{\"k\":[]}",               /* 6 */
        "{\"k\":[\"b\",null]}",     /* 7 */
        "{\"k\":\"A\"}",            /* 8 */
        "{\"k\":\"\"}",             /* 9 */
        "{\"k\":\"a\\u0000b\"}",    /* 10 */
        "{\"k\":\"2024-03-01\"}",   /* 11 */
        "{\"k\":\"caf\\u00e9\"}",   /* 12 */
    };
    static const fcase cases[] = {
        {"{\"k\":\"a\"}", EXACT, "0 2"},
        {"{\"k\":{\"$eq\":\"A\"}}", EXACT, "8"},
        {"{\"k\":\"zz\"}", EXACT, ""},
        {"{\"k\":\"\"}", EXACT, "9"},
        {"{\"k\":\"a\\u0000b\"}", EXACT, "10"},
        {"{\"k\":\"a\\u0000\"}", EXACT, ""},
        {"{\"k\":\"caf\\u00e9\"}", EXACT, "12"},
        {"{\"k\":\"CAF\\u00c9\"}", EXACT, ""},
        {"{\"k\":5}", EXACT, ""},
        {"{\"k\":true}", EXACT, ""},
        {"{\"k\":null}", EXACT, "3 4 5 7"},
        {"{\"k\":{\"$ne\":null}}", EXACT, "0 1 2 6 8 9 10 11 12"},
        {"{\"k\":{\"$ne\":\"a\"}}", EXACT, "1 3 4 5 6 7 8 9 10 11 12"},
        {"{\"k\":{\"$ne\":5}}", EXACT, "0 1 2 3 4 5 6 7 8 9 10 11 12"},
        {"{\"k\":{\"$in\":[\"a\",\"b\"]}}", EXACT, "0 1 2 7"},
        {"{\"k\":{\"$in\":[\"c\",null]}}", EXACT, "2 3 4 5 7"},
        {"{\"k\":{\"$in\":[]}}", EXACT, ""},
        {"{\"k\":{\"$in\":[1,true,\"b\",\"b\"]}}", EXACT, "1 7"},
        {"{\"k\":{\"$nin\":[]}}", EXACT, "0 1 2 3 4 5 6 7 8 9 10 11 12"},
        {"{\"k\":{\"$nin\":[\"a\",null]}}", EXACT, "1 6 8 9 10 11 12"},
        {"{\"k\":{\"$exists\":true}}", EXACT, "0 1 2 3 6 7 8 9 10 11 12"},
        {"{\"k\":{\"$exists\":false}}", EXACT, "4 5"},
        {"{\"k\":{\"$not\":{\"$eq\":\"a\"}}}", EXACT, "1 3 4 5 6 7 8 9 10 11 12"},
        {"{\"k\":{\"$not\":{\"$exists\":true}}}", EXACT, "4 5"},
        {"{\"k\":{\"$in\":[\"a\"],\"$nin\":[\"c\"]}}", EXACT, "0"},
        /* ranges and $text on a keyword field: not narrowed, still right */
        {"{\"k\":{\"$gt\":\"a\"}}", EITHER, "1 2 7 10 12"},
        {"{\"k\":{\"$not\":{\"$gt\":\"a\"}}}", EITHER, "0 3 4 5 6 8 9 11"},
        {"{\"k\":{\"$gte\":\"2024-01-01\"}}", EITHER, "11"},
        {"{\"k\":{\"$lt\":5}}", EITHER, ""},
        {"{\"k\":{\"$text\":\"a\"}}", EITHER, "0 2 8 10"},
        {"{\"k\":\"a\",\"k.x\":null}", EITHER, "0"}, /* a string has no fields; [] leads nowhere */
    };
    RUN_WORLD("k:keyword", payloads, cases);
}

/* ---------------------------------------------------------------- int */

static void test_int(void **state)
{
    (void)state;
    static const char *const payloads[] = {
        "{\"n\":1}",                    /* 0 */
        "{\"n\":9007199254740993}",     /* 1: 2^53 + 1 */
        "{\"n\":9007199254740992}",     /* 2: 2^53 */
        "{\"n\":-5}",                   /* 3 */
        "{\"n\":[2,3]}",                /* 4 */
        "{\"n\":null}",                 /* 5 */
        "{}",                           /* 6 */
        "{\"n\":[]}",                   /* 7 */
        "{\"n\":[null,-1]}",            /* 8 */
        "{\"n\":0}",                    /* 9 */
        "{\"n\":9223372036854775807}",  /* 10 */
        "{\"n\":-9223372036854775808}", /* 11 */
        "{\"n\":2}",                    /* 12 */
        NULL,                           /* 13 */
    };
    static const fcase cases[] = {
        {"{\"n\":1}", EXACT, "0"},
        {"{\"n\":1.0}", EXACT, "0"},
        {"{\"n\":1e0}", EXACT, "0"},
        {"{\"n\":-1}", EXACT, "8"},
        {"{\"n\":9007199254740993}", EXACT, "1"},
        {"{\"n\":9007199254740992}", EXACT, "2"},
        {"{\"n\":9007199254740992.0}", EXACT, "2"},
        {"{\"n\":9007199254740993.0}", EXACT, "2"}, /* as a double that is 2^53 */
        {"{\"n\":2.5}", EXACT, ""},
        {"{\"n\":-9223372036854775808}", EXACT, "11"},
        {"{\"n\":{\"$gt\":9007199254740992}}", EXACT, "1 10"},
        {"{\"n\":{\"$gte\":9007199254740992.0}}", EXACT, "1 2 10"},
        {"{\"n\":{\"$lt\":9007199254740993}}", EXACT, "0 2 3 4 8 9 11 12"},
        {"{\"n\":{\"$lte\":9007199254740992}}", EXACT, "0 2 3 4 8 9 11 12"},
        {"{\"n\":{\"$gt\":2.5}}", EXACT, "1 2 4 10"},
        {"{\"n\":{\"$lte\":2.5}}", EXACT, "0 3 4 8 9 11 12"},
        {"{\"n\":{\"$lt\":-1}}", EXACT, "3 11"},
        {"{\"n\":{\"$gte\":-1}}", EXACT, "0 1 2 4 8 9 10 12"},
        {"{\"n\":{\"$gt\":-1.5}}", EXACT, "0 1 2 4 8 9 10 12"},
        {"{\"n\":{\"$gt\":-9223372036854775808}}", EXACT, "0 1 2 3 4 8 9 10 12"},
        {"{\"n\":{\"$gte\":-9.2233720368547758e18}}", EXACT, "0 1 2 3 4 8 9 10 11 12"},
        {"{\"n\":{\"$gte\":9223372036854775807}}", EXACT, "10"},
        {"{\"n\":{\"$gte\":9.2233720368547758e18}}", EXACT, ""}, /* 2^63 */
        {"{\"n\":{\"$lt\":1e19}}", EXACT, "0 1 2 3 4 8 9 10 11 12"},
        {"{\"n\":{\"$gt\":-1e300,\"$lt\":-1e19}}", EXACT, ""},
        {"{\"n\":{\"$gt\":0,\"$lt\":3}}", EXACT, "0 4 12"},
        {"{\"n\":{\"$gt\":2,\"$lt\":3}}", EXACT, "4"}, /* each operator on its own: 3 > 2, 2 < 3 */
        {"{\"n\":\"1\"}", EXACT, ""},
        {"{\"n\":true}", EXACT, ""},
        {"{\"n\":{\"$gt\":\"a\"}}", EXACT, ""},
        {"{\"n\":{\"$gte\":\"2024-01-01\"}}", EXACT, ""},
        {"{\"n\":null}", EXACT, "5 6 8 13"},
        {"{\"n\":{\"$in\":[2,3.0,null]}}", EXACT, "4 5 6 8 12 13"},
        {"{\"n\":{\"$in\":[1,\"1\",true]}}", EXACT, "0"},
        {"{\"n\":{\"$nin\":[1,2]}}", EXACT, "1 2 3 5 6 7 8 9 10 11 13"},
        {"{\"n\":{\"$ne\":2}}", EXACT, "0 1 2 3 5 6 7 8 9 10 11 13"},
        {"{\"n\":{\"$ne\":null}}", EXACT, "0 1 2 3 4 7 9 10 11 12"},
        {"{\"n\":{\"$not\":{\"$gt\":0}}}", EXACT, "3 5 6 7 8 9 11 13"},
        {"{\"n\":{\"$not\":{\"$gt\":1,\"$lt\":5}}}", EXACT, "0 1 2 3 5 6 7 8 9 10 11 13"},
        {"{\"n\":{\"$exists\":false}}", EXACT, "6 13"},
        {"{\"n\":{\"$exists\":true}}", EXACT, "0 1 2 3 4 5 7 8 9 10 11 12"},
        {"{\"n\":{\"$text\":\"1\"}}", EITHER, ""},
    };
    RUN_WORLD("n:int", payloads, cases);
}

/* ---------------------------------------------------------------- float */

static void test_float(void **state)
{
    (void)state;
    static const char *const payloads[] = {
        "{\"x\":1}",                   /* 0: a JSON integer */
        "{\"x\":1.0}",                 /* 1 */
        "{\"x\":1.5}",                 /* 2 */
        "{\"x\":-0.0}",                /* 3 */
        "{\"x\":[0.1,2]}",             /* 4 */
        "{\"x\":null}",                /* 5 */
        "{}",                          /* 6 */
        "{\"x\":1e300}",               /* 7 */
        "{\"x\":9007199254740993}",    /* 8 */
        "{\"x\":9007199254740992.0}",  /* 9 */
        "{\"x\":0.30000000000000004}", /* 10 */
        "{\"x\":-2.5}",                /* 11 */
    };
    static const fcase cases[] = {
        {"{\"x\":1}", EXACT, "0 1"},
        {"{\"x\":1.0}", EXACT, "0 1"},
        {"{\"x\":{\"$eq\":1e0}}", EXACT, "0 1"},
        {"{\"x\":0}", EXACT, "3"},
        {"{\"x\":-0.0}", EXACT, "3"},
        {"{\"x\":0.1}", EXACT, "4"},
        {"{\"x\":2}", EXACT, "4"},
        {"{\"x\":0.3}", EXACT, ""},
        {"{\"x\":0.30000000000000004}", EXACT, "10"},
        {"{\"x\":9007199254740993}", EXACT, "8"},
        {"{\"x\":9007199254740992}", EXACT, "9"},
        {"{\"x\":{\"$gt\":9007199254740992}}", EXACT, "7 8"},
        {"{\"x\":{\"$gte\":1,\"$lt\":1.5}}", EXACT, "0 1 4"},
        {"{\"x\":{\"$gt\":1}}", EXACT, "2 4 7 8 9"},
        {"{\"x\":{\"$gte\":1}}", EXACT, "0 1 2 4 7 8 9"},
        {"{\"x\":{\"$lt\":0}}", EXACT, "11"},
        {"{\"x\":{\"$lte\":0}}", EXACT, "3 11"},
        {"{\"x\":{\"$lt\":-2}}", EXACT, "11"},
        {"{\"x\":{\"$gte\":1e300}}", EXACT, "7"},
        {"{\"x\":{\"$in\":[1.5,2,\"1\"]}}", EXACT, "2 4"},
        {"{\"x\":{\"$nin\":[1]}}", EXACT, "2 3 4 5 6 7 8 9 10 11"},
        {"{\"x\":\"1\"}", EXACT, ""},
        {"{\"x\":true}", EXACT, ""},
        {"{\"x\":{\"$lt\":\"z\"}}", EXACT, ""},
        {"{\"x\":null}", EXACT, "5 6"},
        {"{\"x\":{\"$ne\":null}}", EXACT, "0 1 2 3 4 7 8 9 10 11"},
        {"{\"x\":{\"$not\":{\"$lte\":1}}}", EXACT, "2 5 6 7 8 9"},
    };
    RUN_WORLD("x:float", payloads, cases);
}

/* ---------------------------------------------------------------- bool */

static void test_bool(void **state)
{
    (void)state;
    static const char *const payloads[] = {
        "{\"b\":true}",         /* 0 */
        "{\"b\":false}",        /* 1 */
        "{\"b\":[true,false]}", /* 2 */
        "{\"b\":null}",         /* 3 */
        "{}",                   /* 4 */
        "{\"b\":[]}",           /* 5 */
        "{\"b\":[false,null]}", /* 6 */
        NULL,                   /* 7 */
    };
    static const fcase cases[] = {
        {"{\"b\":true}", EXACT, "0 2"},
        {"{\"b\":false}", EXACT, "1 2 6"},
        {"{\"b\":{\"$ne\":true}}", EXACT, "1 3 4 5 6 7"},
        {"{\"b\":{\"$ne\":false}}", EXACT, "0 3 4 5 7"},
        {"{\"b\":1}", EXACT, ""},
        {"{\"b\":0}", EXACT, ""},
        {"{\"b\":\"true\"}", EXACT, ""},
        {"{\"b\":{\"$in\":[true,null]}}", EXACT, "0 2 3 4 6 7"},
        {"{\"b\":{\"$in\":[1,\"false\"]}}", EXACT, ""},
        {"{\"b\":{\"$nin\":[false]}}", EXACT, "0 3 4 5 7"},
        {"{\"b\":{\"$exists\":true}}", EXACT, "0 1 2 3 5 6"},
        {"{\"b\":{\"$not\":{\"$eq\":null}}}", EXACT, "0 1 2 5"},
        {"{\"b\":{\"$gt\":0}}", EITHER, ""},
        {"{\"b\":{\"$lt\":\"z\"}}", EITHER, ""},
    };
    RUN_WORLD("b:bool", payloads, cases);
}

/* ---------------------------------------------------------------- date */

static void test_date(void **state)
{
    (void)state;
    /* T = 2024-03-01T00:00:00Z */
    static const char *const payloads[] = {
        "{\"d\":\"2024-03-01\"}",                       /* 0: T */
        "{\"d\":\"2024-03-01T00:00:00Z\"}",             /* 1: T */
        "{\"d\":\"2024-03-01T02:00:00+02:00\"}",        /* 2: T */
        "{\"d\":\"2024-02-29T23:59:59.999Z\"}",         /* 3: T - 1 ms */
        "{\"d\":\"2024-03-01T00:00:00.0009Z\"}",        /* 4: T (truncated) */
        "{\"d\":[\"2023-01-01\",\"2025-01-01\"]}",      /* 5: before and after */
        "{\"d\":null}",                                 /* 6 */
        "{}",                                           /* 7 */
        "{\"d\":\"2024-03-01t00:00:00.001z\"}",         /* 8: T + 1 ms */
        "{\"d\":\"0000-01-01\"}",                       /* 9 */
        "{\"d\":\"9999-12-31T23:59:59.999-23:59\"}",    /* 10 */
        "{\"d\":\"2024-02-29 19:00-0500\"}",            /* 11: T */
        NULL,                                           /* 12 */
    };
    static const fcase cases[] = {
        /* $eq and $in compare the text: the instant narrows, never exactly */
        {"{\"d\":\"2024-03-01\"}", INEXACT, "0"},
        {"{\"d\":\"2024-03-01T00:00:00Z\"}", INEXACT, "1"},
        {"{\"d\":\"2024-03-01T00:00Z\"}", EITHER, ""},
        {"{\"d\":{\"$in\":[\"2024-03-01\",\"x\"]}}", INEXACT, "0"},
        {"{\"d\":{\"$in\":[\"2024-03-01\",5,null]}}", INEXACT, "0 6 7 12"},
        {"{\"d\":{\"$ne\":\"2024-03-01\"}}", INEXACT, "1 2 3 4 5 6 7 8 9 10 11 12"},
        {"{\"d\":{\"$nin\":[\"2024-03-01T02:00:00+02:00\"]}}", INEXACT, "0 1 3 4 5 6 7 8 9 10 11 12"},
        {"{\"d\":\"not a date\"}", EITHER, ""},
        {"{\"d\":5}", EXACT, ""},
        {"{\"d\":true}", EXACT, ""},
        {"{\"d\":null}", EXACT, "6 7 12"},
        {"{\"d\":{\"$in\":[null,3]}}", EXACT, "6 7 12"},
        {"{\"d\":{\"$exists\":true}}", EXACT, "0 1 2 3 4 5 6 8 9 10 11"},
        /* ranges with a date operand compare instants: exact */
        {"{\"d\":{\"$gte\":\"2024-03-01T00:00:00Z\"}}", EXACT, "0 1 2 4 5 8 10 11"},
        {"{\"d\":{\"$gt\":\"2024-03-01\"}}", EXACT, "5 8 10"},
        {"{\"d\":{\"$gt\":\"2024-03-01T00:00:00.000999Z\"}}", EXACT, "5 8 10"},
        {"{\"d\":{\"$lt\":\"2024-03-01T02:00+02:00\"}}", EXACT, "3 5 9"},
        {"{\"d\":{\"$lte\":\"2024-03-01 00:00\"}}", EXACT, "0 1 2 3 4 5 9 11"},
        {"{\"d\":{\"$gte\":\"2024-03-01\",\"$lte\":\"2024-03-01\"}}", EXACT, "0 1 2 4 5 11"},
        {"{\"d\":{\"$gte\":\"2024-02-29T19:00:00-05:00\",\"$lt\":\"2024-03-01T00:00:00.001Z\"}}", EXACT,
         "0 1 2 4 5 11"},
        {"{\"d\":{\"$gt\":\"0000-01-01T00:00:00+23:59\"}}", EXACT, "0 1 2 3 4 5 8 9 10 11"},
        {"{\"d\":{\"$lt\":\"0000-01-01T00:00:00+23:59\"}}", EXACT, ""},
        {"{\"d\":{\"$gte\":\"9999-12-31T23:59:59.999-23:59\"}}", EXACT, "10"},
        {"{\"d\":{\"$not\":{\"$lt\":\"2024-03-01\"}}}", EXACT, "0 1 2 4 6 7 8 10 11 12"},
        /* other operands compare as strings or not at all */
        {"{\"d\":{\"$gt\":\"2024\"}}", EITHER, "0 1 2 3 4 5 8 10 11"},
        {"{\"d\":{\"$gt\":5}}", EITHER, ""},
        {"{\"d\":{\"$text\":\"2024\"}}", EITHER, "0 1 2 3 4 8 11"},
    };
    RUN_WORLD("d:date", payloads, cases);
}

/* ---------------------------------------------------------------- text */

/* "<n times c><tail>" in buf. */
static const char *repeat(char *buf, size_t size, char c, size_t n, const char *tail)
{
    assert_true(n + strlen(tail) < size);
    memset(buf, c, n);
    snprintf(buf + n, size - n, "%s", tail);
    return buf;
}

static void test_text(void **state)
{
    (void)state;
    char a128[200], a130b[200], p8[300], p9[300];
    snprintf(p8, sizeof p8, "{\"t\":\"%s\"}", repeat(a130b, sizeof a130b, 'a', 130, " b"));
    snprintf(p9, sizeof p9, "{\"t\":\"%s\"}", repeat(a128, sizeof a128, 'a', 128, ""));
    const char *const payloads[] = {
        "{\"t\":\"Hello, Vector-Database world!\"}", /* 0 */
        "{\"t\":\"hello\"}",                         /* 1 */
        "{\"t\":[\"vector\",\"DATABASE\"]}",         /* 2: the strings of an array together */
        "{\"t\":null}",                              /* 3 */
        "{}",                                        /* 4 */
        "{\"t\":\"caf\\u00e9 CAF\\u00c9\"}",         /* 5 */
        "{\"t\":\"x_y 42\"}",                        /* 6 */
        "{\"t\":\"\"}",                              /* 7 */
        p8,                                          /* 8: a word of 130 bytes, and b */
        p9,                                          /* 9: a word of 128 bytes */
        "{\"t\":[\"hello\",null]}",                  /* 10 */
        "{\"t\":[]}",                                /* 11 */
        NULL,                                        /* 12 */
    };
    static const fcase cases[] = {
        {"{\"t\":{\"$text\":\"hello\"}}", EXACT, "0 1 10"},
        {"{\"t\":{\"$text\":\"HELLO world\"}}", EXACT, "0"},
        {"{\"t\":{\"$text\":\"vector database\"}}", EXACT, "0 2"},
        {"{\"t\":{\"$text\":\"database, VECTOR!\"}}", EXACT, "0 2"},
        {"{\"t\":{\"$text\":\"caf\\u00e9\"}}", EXACT, "5"},
        {"{\"t\":{\"$text\":\"CAF\\u00c9\"}}", EXACT, "5"},
        {"{\"t\":{\"$text\":\"caf\\u00c9\"}}", EXACT, "5"}, /* ASCII folds, É stays: CAFÉ */
        {"{\"t\":{\"$text\":\"x y\"}}", EXACT, "6"},
        {"{\"t\":{\"$text\":\"x_y\"}}", EXACT, "6"},
        {"{\"t\":{\"$text\":\"42\"}}", EXACT, "6"},
        {"{\"t\":{\"$text\":\"nothing\"}}", EXACT, ""},
        {"{\"t\":{\"$text\":\"vect\"}}", EXACT, ""},
        {"{\"t\":{\"$text\":\"hello nothing\"}}", EXACT, ""},
        {"{\"t\":{\"$text\":\"b\"}}", EXACT, "8"},
        {"{\"t\":null}", EXACT, "3 4 10 12"},
        {"{\"t\":{\"$in\":[null]}}", EXACT, "3 4 10 12"},
        {"{\"t\":{\"$ne\":null}}", EXACT, "0 1 2 5 6 7 8 9 11"},
        {"{\"t\":{\"$not\":{\"$text\":\"hello\"}}}", EXACT, "2 3 4 5 6 7 8 9 11 12"},
        {"{\"t\":{\"$exists\":false}}", EXACT, "4 12"},
        /* not narrowed by words, still right */
        {"{\"t\":\"hello\"}", EITHER, "1 10"},
        {"{\"t\":{\"$in\":[\"hello\",null]}}", EITHER, "1 3 4 10 12"},
        {"{\"t\":{\"$gt\":\"a\"}}", EITHER, "1 2 5 6 8 9 10"},
    };
    world w = {0};
    world_load(&w, "t:text", payloads, NDL_ARRAY_LEN(payloads));
    run_cases(&w, cases, NDL_ARRAY_LEN(cases));
    /* words of 128 bytes and more are indexed by their first 128 */
    static const struct {
        size_t n;
        char c;
        const char *tail;
        int exact;
        const char *want;
    } longs[] = {
        {127, 'a', "", EXACT, ""},
        {128, 'a', "", INEXACT, "9"}, /* 8's word has the same first 128 bytes */
        {128, 'A', "", INEXACT, "9"},
        {129, 'A', "", INEXACT, ""},
        {130, 'a', " B", INEXACT, "8"},
        {130, 'a', " hello", EITHER, ""},
    };
    for (size_t i = 0; i < NDL_ARRAY_LEN(longs); i++) {
        char word[200], text[300];
        repeat(word, sizeof word, longs[i].c, longs[i].n, longs[i].tail);
        snprintf(text, sizeof text, "{\"t\":{\"$text\":\"%s\"}}", word);
        run_case(&w, text, longs[i].exact, longs[i].want);
    }
    world_free(&w);
}

/* ---------------------------------------------------------------- paths */

static void test_paths(void **state)
{
    (void)state;
    static const char *const payloads[] = {
        "{\"o\":{\"t\":\"vector database\",\"k\":\"a\",\"n\":1}}",                      /* 0 */
        "{\"o\":[{\"t\":\"vector\",\"k\":\"a\"},{\"t\":\"database\",\"k\":\"b\",\"n\":2}]}", /* 1: two ends */
        "{\"o\":[{\"t\":\"vector database\"},{}]}",                                   /* 2: an end missing */
        "{\"o\":[]}",                                                                 /* 3: no end */
        "{\"o\":[5,\"x\",{\"t\":null}]}",                                             /* 4 */
        "{\"o\":\"scalar\"}",                                                         /* 5 */
        "{\"o\":[[{\"t\":\"vector database\",\"k\":\"a\"}]]}",                        /* 6: nowhere */
        "{\"o\":{\"n\":[3,null]}}",                                                   /* 7 */
        "{\"o\":[{\"k\":[\"c\",\"d\"]},{\"k\":\"e\"}]}",                              /* 8 */
        "{\"o\":{\"t\":[\"vector\",\"x\"],\"k\":null}}",                              /* 9 */
        NULL,                                                                         /* 10 */
        "{\"m\":{\"a\":{\"b\":\"deep\"}}}",                                           /* 11 */
        "{\"m\":[{\"a\":[{\"b\":\"deep\"},{\"b\":\"other\"}]}]}",                     /* 12 */
        "{\"m\":{\"a\":\"deep\"}}",                                                   /* 13 */
    };
    static const fcase cases[] = {
        /* $text per end: 1 has the words in two ends, so words cannot be exact */
        {"{\"o.t\":{\"$text\":\"vector database\"}}", INEXACT, "0 2"},
        {"{\"o.t\":{\"$text\":\"vector\"}}", INEXACT, "0 1 2 9"},
        {"{\"o.t\":{\"$text\":\"database vector\"},\"o.k\":\"a\"}", INEXACT, "0"},
        {"{\"o.t\":{\"$text\":\"x\"}}", EXACT, "9"}, /* no candidate has two ends */
        {"{\"o.t\":{\"$text\":\"x vector\"}}", EXACT, "9"},
        {"{\"o.t\":{\"$not\":{\"$text\":\"vector\"}}}", INEXACT, "3 4 5 6 7 8 10 11 12 13"},
        {"{\"o.t\":{\"$exists\":true}}", EXACT, "0 1 2 4 9"},
        {"{\"o.t\":null}", EXACT, "2 4 5 7 8 10 11 12 13"},
        {"{\"o.k\":\"a\"}", EXACT, "0 1"},
        {"{\"o.k\":\"b\"}", EXACT, "1"},
        {"{\"o.k\":{\"$in\":[\"c\",\"e\"]}}", EXACT, "8"},
        {"{\"o.k\":null}", EXACT, "2 4 5 7 9 10 11 12 13"},
        {"{\"o.k\":{\"$exists\":false}}", EXACT, "2 3 4 5 6 7 10 11 12 13"},
        {"{\"o.k\":{\"$ne\":\"a\"}}", EXACT, "2 3 4 5 6 7 8 9 10 11 12 13"},
        {"{\"o.k\":{\"$nin\":[\"a\",null]}}", EXACT, "3 6 8"},
        {"{\"o.n\":{\"$gte\":2}}", EXACT, "1 7"},
        {"{\"o.n\":{\"$lt\":3}}", EXACT, "0 1"},
        {"{\"o.n\":null}", EXACT, "1 2 4 5 7 8 9 10 11 12 13"},
        {"{\"o.n\":2,\"o.k\":\"a\"}", EXACT, "1"}, /* in different elements: no $elemMatch */
        {"{\"m.a.b\":\"deep\"}", EXACT, "11 12"},
        {"{\"m.a.b\":\"other\"}", EXACT, "12"},
        {"{\"m.a.b\":{\"$exists\":true}}", EXACT, "11 12"},
        {"{\"m.a.b\":null}", EXACT, "0 1 2 3 4 5 6 7 8 9 10 13"},
        /* prefixes and other paths are not indexed */
        {"{\"o\":{\"$exists\":true}}", EITHER, "0 1 2 3 4 5 6 7 8 9"},
        {"{\"m.a\":\"deep\"}", INEXACT, "13"},
        {"{\"o.k\":\"a\",\"o.t\":\"vector\"}", INEXACT, "1"},
    };
    RUN_WORLD("o.t:text o.k:keyword o.n:int m.a.b:keyword", payloads, cases);
}

/* ---------------------------------------------------------------- logic */

static void test_logic(void **state)
{
    (void)state;
    static const char *const payloads[] = {
        "{\"k\":\"a\",\"n\":1,\"u\":1}",                /* 0 */
        "{\"k\":\"b\",\"n\":2,\"u\":2}",                /* 1 */
        "{\"k\":\"a\",\"n\":3}",                        /* 2 */
        "{\"u\":1}",                                    /* 3 */
        NULL,                                           /* 4 */
        "{\"k\":[\"a\",\"b\"],\"n\":[1,5],\"u\":\"x\"}", /* 5 */
        "{\"k\":\"c\",\"n\":5,\"u\":[1,2]}",            /* 6 */
    };
    static const fcase cases[] = {
        {"{}", EXACT, "0 1 2 3 4 5 6"},
        {"{\"$not\":{}}", EXACT, ""},
        {"{\"$and\":[{},{}]}", EXACT, "0 1 2 3 4 5 6"},
        {"{\"$or\":[{\"$not\":{}},{\"k\":\"c\"}]}", EXACT, "6"},
        {"{\"$or\":[{\"k\":\"c\"},{}]}", EXACT, "0 1 2 3 4 5 6"},
        {"{\"k\":\"a\",\"n\":{\"$gt\":1}}", EXACT, "2 5"},
        {"{\"$or\":[{\"k\":\"b\"},{\"n\":3}]}", EXACT, "1 2 5"},
        {"{\"$not\":{\"k\":\"a\",\"n\":{\"$gt\":1}}}", EXACT, "0 1 3 4 6"},
        {"{\"$and\":[{\"k\":\"a\"},{\"$or\":[{\"n\":1},{\"n\":3}]}]}", EXACT, "0 2 5"},
        {"{\"$or\":[{\"k\":\"c\"},{\"$not\":{\"n\":{\"$lt\":5}}}]}", EXACT, "3 4 6"},
        {"{\"$not\":{\"$not\":{\"k\":\"a\"}}}", EXACT, "0 2 5"},
        {"{\"n\":{\"$not\":{\"$gt\":1,\"$lt\":5}}}", EXACT, "0 3 4 6"},
        {"{\"$or\":[{\"k\":{\"$exists\":false}},{\"n\":{\"$in\":[5]}}]}", EXACT, "3 4 5 6"},
        /* with the unindexed u: a superset, checked on payloads */
        {"{\"k\":\"a\",\"u\":1}", INEXACT, "0"},
        {"{\"$or\":[{\"k\":\"b\"},{\"u\":1}]}", INEXACT, "0 1 3 5 6"},
        {"{\"$not\":{\"$or\":[{\"k\":\"b\"},{\"u\":1}]}}", INEXACT, "2 4"},
        {"{\"$and\":[{\"u\":{\"$exists\":true}},{}]}", INEXACT, "0 1 3 5 6"},
        {"{\"u\":{\"$exists\":false}}", INEXACT, "2 4"},
        {"{\"k\":{\"$in\":[\"a\"]},\"$not\":{\"u\":1}}", INEXACT, "2 5"},
        {"{\"$not\":{\"u\":1}}", INEXACT, "1 2 4 5"},
        {"{\"$or\":[{},{\"u\":1}]}", EITHER, "0 1 2 3 4 5 6"},
        {"{\"$or\":[{\"u\":1},{}]}", EITHER, "0 1 2 3 4 5 6"},
        {"{\"$and\":[{\"k\":\"zz\"},{\"u\":1}]}", EITHER, ""},
        /* an OR with a part exactly every slot is exactly every slot, in any order */
        {"{\"$or\":[{},{\"u\":1}]}", EXACT, "0 1 2 3 4 5 6"},
        {"{\"$or\":[{\"u\":1},{},{\"k\":\"a\"}]}", EXACT, "0 1 2 3 4 5 6"},
        {"{\"$or\":[{\"k\":\"a\"},{\"u\":1},{\"n\":2}]}", INEXACT, "0 1 2 3 5 6"},
    };
    RUN_WORLD("k:keyword n:int", payloads, cases);
    /* no indexes at all: every slot, exact only when the answer is all or nothing */
    world w = {0};
    world_load(&w, "", payloads, NDL_ARRAY_LEN(payloads));
    run_case(&w, "{}", EXACT, "0 1 2 3 4 5 6");
    run_case(&w, "{\"$not\":{}}", EXACT, "");
    run_case(&w, "{\"k\":\"a\"}", INEXACT, "0 2 5");
    run_case(&w, "{\"$not\":{\"k\":\"a\"}}", INEXACT, "1 3 4 6");
    world_free(&w);
    /* an empty collection */
    world_fields(&w, "k:keyword n:int");
    static const char *const empty[] = {"{}", "{\"k\":\"a\"}", "{\"k\":{\"$exists\":false}}", "{\"n\":{\"$ne\":1}}",
                                        "{\"$not\":{\"n\":{\"$gt\":1}}}", "{\"$not\":{}}"};
    for (size_t i = 0; i < NDL_ARRAY_LEN(empty); i++)
        run_case(&w, empty[i], EITHER, "");
    world_free(&w);
}

/* ---------------------------------------------------------------- random payloads */

static const struct {
    const char *name;
    field_type type;
} INDEXED[] = {
    {"k", FIELD_KEYWORD}, {"n", FIELD_INT},     {"x", FIELD_FLOAT},   {"b", FIELD_BOOL},
    {"d", FIELD_DATE},    {"t", FIELD_TEXT},    {"o.k", FIELD_KEYWORD}, {"o.n", FIELD_INT},
    {"o.x", FIELD_FLOAT}, {"o.b", FIELD_BOOL},  {"o.d", FIELD_DATE},  {"o.t", FIELD_TEXT},
};
#define TOP_FIELDS 6 /* INDEXED[0..6) are top-level, the rest under "o" */
static const char *const INDEXED_DECL = "k:keyword n:int x:float b:bool d:date t:text o.k:keyword o.n:int "
                                        "o.x:float o.b:bool o.d:date o.t:text";
static const char *const UNINDEXED[] = {"u", "o.u", "o", "zz", "k.x", "o.k.x"};

static const char *const KEYWORDS[] = {"a", "b", "c", "A", "", "a b", "2024-03-01", "hello", "caf\xc3\xa9"};
static const int64_t INTS[] = {0, 1, -1, 2, 3, 7, 100, -100, 9007199254740992, 9007199254740993,
                               -9007199254740993, INT64_MAX, INT64_MIN};
static const double REALS[] = {0.0, -0.0, 0.5, 1.0, 1.5, 2.5, -1.5, 3.0, 1e300, -1e300, 9007199254740992.0, 0.1};
static const char *const DATES[] = {
    "2024-03-01", "2024-03-01T00:00:00Z", "2024-03-01T02:00:00+02:00", "2024-02-29T23:59:59.999Z",
    "2024-03-01T00:00:00.0005Z", "2024-03-01 00:00:00.001", "2023-12-31T22:00-02:00", "1970-01-01",
    "1969-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999+23:59", "0000-01-01T00:00:00-23:59",
};
static const char *const NOT_DATES[] = {"2024", "2024-1-1", "2024-02-30", "2024-03-01T10", "z"};
static char LONG128[129], LONG130[140];
static const char *TEXTS[] = {
    "hello world", "Hello, Vector-Database world!", "vector", "DATABASE", "caf\xc3\xa9 CAF\xc3\x89", "x_y 42",
    "", " - ", "the quick brown fox", "Quick QUICK", LONG128, LONG130,
};
static const char *QUERIES[] = {"hello", "WORLD hello", "vector database", "caf\xc3\xa9", "CAF\xc3\x89", "x", "42",
                                "y x", "brown fox", "quick", "nothing", "fox-hello", LONG128, LONG130};

static void init_pools(void)
{
    memset(LONG128, 'q', 128);
    LONG128[128] = '\0';
    memset(LONG130, 'q', 130);
    memcpy(LONG130 + 130, " fox", 5);
}

static json_t *typed_scalar(field_type t)
{
    switch (t) {
    case FIELD_KEYWORD: return json_string(PICK(KEYWORDS));
    case FIELD_INT: return json_integer(PICK(INTS));
    case FIELD_FLOAT: return rnd_below(3) ? json_real(PICK(REALS)) : json_integer(PICK(INTS));
    case FIELD_BOOL: return json_boolean(rnd_below(2));
    case FIELD_DATE: return json_string(PICK(DATES));
    case FIELD_TEXT: return json_string(PICK(TEXTS));
    }
    return json_null();
}

/* Any scalar at all (operands of the wrong type included). */
static json_t *any_scalar(void)
{
    switch (rnd_below(9)) {
    case 0: return json_null();
    case 1: return json_string(PICK(NOT_DATES));
    case 2: return json_real(rnd_below(9) / 2.0 - 2);
    default: return typed_scalar((field_type)rnd_below(FIELD_TYPES));
    }
}

/* A value of type t as a payload holds it: null, a scalar or an array. */
static json_t *typed_value(field_type t)
{
    int r = rnd_below(10);
    if (r == 0)
        return json_null();
    if (r < 7)
        return typed_scalar(t);
    json_t *a = json_array();
    for (int i = rnd_below(4); i > 0; i--)
        json_array_append_new(a, rnd_below(6) ? typed_scalar(t) : json_null());
    return a;
}

static json_t *any_value(void)
{
    if (rnd_below(4))
        return any_scalar();
    json_t *a = json_array();
    for (int i = rnd_below(3); i > 0; i--)
        json_array_append_new(a, any_scalar());
    return a;
}

/* An element of "o": an object with some of the o.* fields and u. */
static json_t *rand_o_object(void)
{
    json_t *o = json_object();
    for (size_t i = TOP_FIELDS; i < NDL_ARRAY_LEN(INDEXED); i++)
        if (rnd_below(2))
            json_object_set_new(o, INDEXED[i].name + 2, typed_value(INDEXED[i].type));
    if (rnd_below(3) == 0)
        json_object_set_new(o, "u", any_value());
    return o;
}

static json_t *rand_payload(void)
{
    if (rnd_below(30) == 0)
        return NULL;
    json_t *p = json_object();
    for (size_t i = 0; i < TOP_FIELDS; i++)
        if (rnd_below(5))
            json_object_set_new(p, INDEXED[i].name, typed_value(INDEXED[i].type));
    if (rnd_below(3))
        json_object_set_new(p, "u", any_value());
    int r = rnd_below(10);
    if (r == 1) {
        json_object_set_new(p, "o", any_scalar());
    } else if (r >= 2 && r < 5) {
        json_object_set_new(p, "o", rand_o_object());
    } else if (r >= 5) {
        json_t *a = json_array();
        for (int i = rnd_below(4); i > 0; i--) {
            int kind = rnd_below(8);
            json_array_append_new(a, kind < 6   ? rand_o_object()
                                     : kind == 6 ? json_pack("[o]", rand_o_object()) /* leads nowhere */
                                                 : any_scalar());
        }
        json_object_set_new(p, "o", a);
    }
    return p;
}

/* ---------------------------------------------------------------- random filters */

/* Filters are built either over any field with any operator and operand,
 * or (exact_only) from just what the indexes answer exactly: then the
 * answer must come back exact. */

static json_t *rand_filter(int depth, bool exact_only);

static field_type type_of(const char *field)
{
    for (size_t i = 0; i < NDL_ARRAY_LEN(INDEXED); i++)
        if (strcmp(INDEXED[i].name, field) == 0)
            return INDEXED[i].type;
    return (field_type)rnd_below(FIELD_TYPES); /* unindexed: operands of some type */
}

static json_t *range_operand(field_type t)
{
    switch (rnd_below(4)) {
    case 0: return json_integer(PICK(INTS));
    case 1: return json_real(PICK(REALS));
    case 2: return json_string(rnd_below(2) ? PICK(DATES) : PICK(NOT_DATES));
    default:
        if (t == FIELD_INT || t == FIELD_FLOAT || t == FIELD_BOOL)
            return json_real(rnd_below(13) / 2.0 - 3);
        return t == FIELD_DATE ? json_string(PICK(DATES)) : typed_scalar(t);
    }
}

/* An $eq / $in operand: mostly of the field's type. */
static json_t *eq_operand(field_type t, bool exact_only)
{
    int r = rnd_below(10);
    if (exact_only && t == FIELD_TEXT)
        return json_null();
    if (exact_only && t == FIELD_DATE) /* only operands that are not strings */
        return r < 3 ? json_null() : r < 6 ? json_boolean(r & 1) : json_integer(PICK(INTS));
    if (r < 2)
        return json_null();
    if (r < 4)
        return any_scalar();
    return typed_scalar(t);
}

static json_t *eq_list(field_type t, bool exact_only)
{
    json_t *a = json_array();
    for (int i = rnd_below(5); i > 0; i--)
        json_array_append_new(a, eq_operand(t, exact_only));
    return a;
}

/* One operator on field (of type t) and its operand, set into ops. */
static void rand_op(json_t *ops, const char *field, field_type t, int depth, bool exact_only)
{
    static const char *const ranges[] = {"$gt", "$gte", "$lt", "$lte"};
    for (;;) {
        switch (rnd_below(10)) {
        case 0: json_object_set_new(ops, "$eq", eq_operand(t, exact_only)); return;
        case 1: json_object_set_new(ops, "$ne", eq_operand(t, exact_only)); return;
        case 2:
        case 3:
            if (!exact_only || t == FIELD_INT || t == FIELD_FLOAT) {
                json_object_set_new(ops, PICK(ranges), range_operand(t));
                return;
            }
            if (t == FIELD_DATE) {
                json_object_set_new(ops, PICK(ranges), json_string(PICK(DATES)));
                return;
            }
            break;
        case 4: json_object_set_new(ops, "$in", eq_list(t, exact_only)); return;
        case 5: json_object_set_new(ops, "$nin", eq_list(t, exact_only)); return;
        case 6: json_object_set_new(ops, "$exists", json_boolean(rnd_below(2))); return;
        case 7:
            /* a field with one end and words shorter than 128 bytes: exact */
            if (!exact_only || strcmp(field, "t") == 0) {
                const char *q = PICK(QUERIES);
                json_object_set_new(ops, "$text", json_string(exact_only && strlen(q) >= 128 ? "fox" : q));
                return;
            }
            break;
        default:
            if (depth < 3) {
                json_t *inner = json_object();
                rand_op(inner, field, t, depth + 1, exact_only);
                json_object_set_new(ops, "$not", inner);
                return;
            }
        }
    }
}

static const char *rand_field(bool exact_only)
{
    if (exact_only || rnd_below(4))
        return INDEXED[rnd_below((int)NDL_ARRAY_LEN(INDEXED))].name;
    return PICK(UNINDEXED);
}

static void rand_entry(json_t *f, int depth, bool exact_only)
{
    int r = rnd_below(depth < 3 ? 10 : 6);
    const char *field = rand_field(exact_only);
    field_type t = type_of(field);
    if (r < 2) {
        json_object_set_new(f, field, eq_operand(t, exact_only));
    } else if (r < 6) {
        json_t *ops = json_object();
        for (int i = 1 + (rnd_below(4) == 0); i > 0; i--)
            rand_op(ops, field, t, depth, exact_only);
        json_object_set_new(f, field, ops);
    } else if (r < 9) {
        json_t *list = json_array();
        for (int i = 1 + rnd_below(3); i > 0; i--)
            json_array_append_new(list, rand_filter(depth + 1, exact_only));
        json_object_set_new(f, r == 6 ? "$and" : "$or", list);
    } else {
        json_object_set_new(f, "$not", rand_filter(depth + 1, exact_only));
    }
}

static json_t *rand_filter(int depth, bool exact_only)
{
    json_t *f = json_object();
    int n = rnd_below(12) == 0 ? 0 : 1 + (rnd_below(3) == 0);
    for (int i = 0; i < n; i++)
        rand_entry(f, depth, exact_only);
    return f;
}

/* ---------------------------------------------------------------- random tests */

typedef struct tally {
    uint32_t filters, exact, slots, matches, candidates;
} tally;

/* The contract for spec and for its negation; exact_only: both must be exact. */
static void check_random(const world *w, json_t *spec, bool exact_only, tally *t)
{
    json_t *negated = json_pack("{s:O}", "$not", spec);
    json_t *both[2] = {spec, negated};
    for (int i = 0; i < 2; i++) {
        verdict v = check_contract(w, both[i], NULL, 0);
        if (exact_only && !v.exact) {
            char buf[1024];
            fail_msg("filter %s uses only what the indexes answer exactly, but the answer is not exact",
                     show(both[i], buf, sizeof buf));
        }
        t->filters++;
        t->exact += v.exact;
        t->slots += w->slots;
        t->candidates += v.candidates;
        t->matches += i == 0 ? v.matches : 0;
    }
    json_decref(negated);
}

static void random_filters(const world *w, int count, tally *general, tally *exact)
{
    for (int i = 0; i < count; i++) {
        bool exact_only = i % 3 == 2;
        json_t *spec = rand_filter(0, exact_only);
        check_random(w, spec, exact_only, exact_only ? exact : general);
        json_decref(spec);
    }
}

static void random_world(world *w, int slots)
{
    world_fields(w, INDEXED_DECL);
    for (int i = 0; i < slots; i++)
        world_add(w, rand_payload());
}

/* Neither matching nor not matching may be rare, and indexes must do their
 * part: a share of exact answers, and candidates well short of every slot. */
static void expect_useful(const tally *t, const char *what)
{
    print_message("%s: %u filters, %.1f%% exact, %.1f%% of slots match, %.1f%% are candidates\n", what, t->filters,
                  100.0 * t->exact / t->filters, 200.0 * t->matches / t->slots, 100.0 * t->candidates / t->slots);
    assert_true(t->matches > t->slots / 20 && t->matches < t->slots * 9 / 20); /* of half the filters */
    assert_true(t->exact > t->filters / 4);
    assert_true(t->candidates < t->slots * 9 / 10);
}

static void test_random_contract(void **state)
{
    (void)state;
    rng_state = 0x6a09e667f3bcc908ull;
    init_pools();
    world w = {0};
    random_world(&w, 300);
    tally general = {0}, exact = {0};
    random_filters(&w, 4500, &general, &exact);
    expect_useful(&general, "any filter");
    assert_int_equal(exact.exact, exact.filters);
    expect_useful(&exact, "exact filters");
    world_free(&w);
}

/* Payloads changed in place: remove the old, add the new. */
static void test_random_replace(void **state)
{
    (void)state;
    rng_state = 0xbb67ae8584caa73bull;
    init_pools();
    world w = {0};
    random_world(&w, 240);
    for (int round = 0; round < 3; round++) {
        for (uint32_t s = 0; s < w.slots; s++) {
            int r = rnd_below(10);
            if (r < 4)
                world_replace(&w, s, rand_payload());
            else if (r == 4) /* the same payload again */
                world_replace(&w, s, w.payloads[s] ? json_deep_copy(w.payloads[s]) : NULL);
            else if (r == 5)
                world_replace(&w, s, NULL);
        }
        tally general = {0}, exact = {0};
        random_filters(&w, 600, &general, &exact);
        assert_int_equal(exact.exact, exact.filters);
        expect_useful(&general, "after replacing");
    }
    world_free(&w);
}

/* A replaced payload leaves nothing behind, value by value. */
static void test_replace_cases(void **state)
{
    (void)state;
    static const char *const before[] = {
        "{\"k\":\"a\",\"n\":[5,5],\"x\":1.5,\"b\":true,\"d\":\"2024-03-01\",\"t\":\"hello world\","
        "\"o\":[{\"t\":\"vector\"},{\"t\":\"database\"}]}",
        "{\"k\":[\"a\",\"b\"],\"n\":null,\"t\":[\"hello\",\"world\"],\"o\":{\"t\":\"x\"}}",
        NULL,
        "{\"k\":\"b\"}",
    };
    static const char *const after[] = {
        "{\"k\":\"b\",\"n\":6,\"t\":\"world\",\"o\":{\"t\":\"vector database\"}}",
        "{\"n\":5,\"d\":null,\"o\":[]}",
        "{\"k\":\"a\",\"t\":\"hello\"}",
        NULL,
    };
    static const fcase cases[] = {
        {"{\"k\":\"a\"}", EXACT, "2"},
        {"{\"k\":\"b\"}", EXACT, "0"},
        {"{\"k\":null}", EXACT, "1 3"},
        {"{\"k\":{\"$exists\":true}}", EXACT, "0 2"},
        {"{\"n\":5}", EXACT, "1"},
        {"{\"n\":{\"$gte\":5}}", EXACT, "0 1"},
        {"{\"n\":null}", EXACT, "2 3"},
        {"{\"x\":{\"$gt\":0}}", EXACT, ""},
        {"{\"b\":true}", EXACT, ""},
        {"{\"b\":{\"$exists\":false}}", EXACT, "0 1 2 3"},
        {"{\"d\":{\"$gte\":\"2000-01-01\"}}", EXACT, ""},
        {"{\"d\":{\"$exists\":true}}", EXACT, "1"},
        {"{\"t\":{\"$text\":\"hello\"}}", EXACT, "2"},
        {"{\"t\":{\"$text\":\"world\"}}", EXACT, "0"},
        {"{\"o.t\":{\"$text\":\"vector database\"}}", EXACT, "0"}, /* one end now */
        {"{\"o.t\":{\"$text\":\"x\"}}", EXACT, ""},
        {"{\"o.t\":{\"$exists\":true}}", EXACT, "0"},
        {"{\"o.t\":null}", EXACT, "2 3"},
    };
    world w = {0};
    world_load(&w, "k:keyword n:int x:float b:bool d:date t:text o.t:text", before, NDL_ARRAY_LEN(before));
    for (uint32_t s = 0; s < NDL_ARRAY_LEN(after); s++)
        world_replace(&w, s, after[s] ? load(after[s]) : NULL);
    run_cases(&w, cases, NDL_ARRAY_LEN(cases));
    world_free(&w);
}

/* ---------------------------------------------------------------- many numbers */

static json_t *rand_number_payload(void)
{
    static const char *const zones[] = {"Z", "+02:00", "-05:30", "+0100", ""};
    int r = rnd_below(20);
    if (r == 0)
        return NULL;
    if (r == 1)
        return json_pack("{s:n}", "n");
    char date[64];
    snprintf(date, sizeof date, "20%02d-%02d-%02dT%02d:%02d:%02d.%03d%s", rnd_below(40), 1 + rnd_below(12),
             1 + rnd_below(28), rnd_below(24), rnd_below(60), rnd_below(60), rnd_below(1000), PICK(zones));
    json_int_t n = rnd_below(6000) - 3000;
    if (rnd_below(50) == 0)
        n = PICK(INTS);
    json_t *x = rnd_below(3) ? json_real((rnd_below(8000) - 4000) / 8.0) : json_integer(rnd_below(1000) - 500);
    json_t *p = json_pack("{s:I,s:o,s:s}", "n", n, "x", x, "d", date);
    if (r == 2) /* arrays, duplicates included */
        json_object_set_new(p, "n", json_pack("[I,I,n]", n, rnd_below(2) ? n : n ^ 1));
    return p;
}

/* A random filter on n, x or d whose operands come from the values held;
 * *exact: whether the answer must be exact (all but $eq and $ne on the
 * date, which compare text). */
static json_t *rand_number_filter(const world *w, bool *exact)
{
    static const char *const ops[] = {"$gt", "$gte", "$lt", "$lte", "$eq", "$ne"};
    static const char *const fields[] = {"n", "x", "d"};
    const char *field = PICK(fields), *op = PICK(ops);
    const json_t *held = NULL;
    while (!json_is_number(held) && !json_is_string(held))
        held = json_object_get(w->payloads[rnd_below((int)w->slots)], field);
    json_t *operand = json_copy((json_t *)held);
    if (json_is_integer(operand) && rnd_below(3) == 0)
        json_integer_set(operand, json_integer_value(operand) ^ rnd_below(2)); /* a neighbour */
    else if (json_is_real(operand) && rnd_below(3) == 0)
        json_real_set(operand, json_real_value(operand) + 0.0625);
    *exact = field[0] != 'd' || op[1] == 'g' || op[1] == 'l';
    if (rnd_below(4) == 0) /* a second end */
        return json_pack("{s:{s:o,s:o}}", field, op, operand, rnd_below(2) ? "$lt" : "$gte",
                         field[0] == 'd' ? json_string(PICK(DATES)) : json_integer(rnd_below(6000) - 3000));
    return json_pack("{s:{s:o}}", field, op, operand);
}

static void many_number_filters(const world *w, int count)
{
    for (int i = 0; i < count; i++) {
        bool want_exact;
        json_t *spec = rand_number_filter(w, &want_exact);
        verdict v = check_contract(w, spec, NULL, 0);
        if (v.exact != want_exact) {
            char buf[256];
            fail_msg("filter %s: exact is %d, want %d", show(spec, buf, sizeof buf), v.exact, want_exact);
        }
        json_decref(spec);
    }
}

static void test_many_numbers(void **state)
{
    (void)state;
    rng_state = 0x3c6ef372fe94f82bull;
    world w = {0};
    world_fields(&w, "n:int x:float d:date");
    enum { SLOTS = 12000 };
    for (int i = 0; i < SLOTS; i++) /* over 12,000 entries a field: merged at 4096 and 8192 */
        world_add(&w, rand_number_payload());
    size_t before = field_index_memory_bytes(w.fields[0]);
    assert_true(before > 12000 * 16);
    many_number_filters(&w, 150);
    /* changed in place: the old values are in the main run (early slots)
     * and in the delta (late ones), and the new ones merge again */
    for (int i = 0; i < 1500; i++) {
        uint32_t s = (uint32_t)(i % 2 ? rnd_below(2000) : SLOTS - 1 - rnd_below(2000));
        world_replace(&w, s, rand_number_payload());
    }
    many_number_filters(&w, 150);
    for (int i = 0; i < 3000; i++)
        world_replace(&w, (uint32_t)rnd_below(SLOTS), rnd_below(2) ? NULL : rand_number_payload());
    many_number_filters(&w, 150);
    /* everything removed: nothing is left to find */
    for (uint32_t s = 0; s < w.slots; s++)
        world_replace(&w, s, NULL);
    static const char *const gone[] = {"{\"n\":{\"$gte\":-9223372036854775808}}", "{\"x\":{\"$lt\":1e300}}",
                                       "{\"d\":{\"$gt\":\"0000-01-01\"}}"};
    for (size_t i = 0; i < NDL_ARRAY_LEN(gone); i++)
        run_case(&w, gone[i], EXACT, "");
    world_free(&w);
}

/* ---------------------------------------------------------------- renumbering */

/* What a compaction makes of w: remap drops about a third of the slots
 * (keeping order); moved gets w's indexes through field_index_remapped and
 * the kept payloads at their new slots, fresh indexes built from those
 * payloads alone. */
static void remap_world(const world *w, world *moved, world *fresh)
{
    uint32_t *remap = malloc((size_t)NDL_MAX(w->slots, 1) * sizeof *remap);
    assert_non_null(remap);
    memset(moved, 0, sizeof *moved);
    memset(fresh, 0, sizeof *fresh);
    for (size_t i = 0; i < w->nfields; i++) {
        char decl[300];
        snprintf(decl, sizeof decl, "%s:%s", field_index_name(w->fields[i]),
                 field_type_name(field_index_type(w->fields[i])));
        world_fields(fresh, decl);
    }
    uint32_t next = 0;
    for (uint32_t s = 0; s < w->slots; s++) {
        remap[s] = rnd_below(3) == 0 ? UINT32_MAX : next++;
        if (remap[s] == UINT32_MAX)
            continue;
        json_t *p = w->payloads[s];
        world_add(fresh, p ? json_incref(p) : NULL);
        world_store(moved, p ? json_incref(p) : NULL);
    }
    moved->nfields = w->nfields;
    for (size_t i = 0; i < w->nfields; i++) {
        ndl_error err = {0};
        assert_int_equal(field_index_remapped(w->fields[i], remap, w->slots, &moved->fields[i], &err),
                         NDL_OK);
        assert_string_equal(field_index_name(moved->fields[i]), field_index_name(w->fields[i]));
        assert_int_equal(field_index_type(moved->fields[i]), field_index_type(w->fields[i]));
    }
    free(remap);
}

/* The renumbered indexes answer spec exactly as the fresh ones do (same
 * candidates, same exactness), and keep the contract. */
static void same_answers(const world *moved, const world *fresh, const json_t *spec)
{
    filter *f = compile(spec);
    bool ea = false, eb = false;
    roaring_bitmap_t *a = filter_candidates(f, moved->fields, moved->nfields, moved->slots, &ea);
    roaring_bitmap_t *b = filter_candidates(f, fresh->fields, fresh->nfields, fresh->slots, &eb);
    char buf[1024];
    if (ea != eb || !a != !b || (a && !roaring_bitmap_equals(a, b)))
        fail_msg("filter %s: the renumbered indexes answer %s%llu candidates, exact %d; built "
                 "afresh %s%llu, exact %d",
                 show(spec, buf, sizeof buf), a ? "" : "all ",
                 a ? (unsigned long long)roaring_bitmap_get_cardinality(a) : 0ull, ea,
                 b ? "" : "all ", b ? (unsigned long long)roaring_bitmap_get_cardinality(b) : 0ull,
                 eb);
    bitmap_free(a);
    bitmap_free(b);
    filter_free(f);
    check_contract(moved, spec, NULL, 0);
}

/* remap_world of w, then count filters from make (given the renumbered
 * world and the filter's number) answered alike; frees all three worlds. */
static void remap_and_compare(world *w, int count, json_t *(*make)(const world *moved, int i))
{
    world moved, fresh;
    remap_world(w, &moved, &fresh);
    assert_true(moved.slots > w->slots / 2 && moved.slots < w->slots * 5 / 6);
    for (int i = 0; i < count; i++) {
        json_t *spec = make(&moved, i);
        same_answers(&moved, &fresh, spec);
        json_decref(spec);
    }
    world_free(w);
    world_free(&moved);
    world_free(&fresh);
}

static json_t *any_filter(const world *moved, int i)
{
    (void)moved;
    return rand_filter(0, i % 3 == 2);
}

static json_t *number_filter(const world *moved, int i)
{
    (void)i;
    bool want_exact;
    return rand_number_filter(moved, &want_exact);
}

/* field_index_remapped against indexes built afresh, on random payloads
 * changed in place (removals from bitmaps and dictionaries), every
 * operator. */
static void test_remap_random(void **state)
{
    (void)state;
    rng_state = 0xa54ff53a5f1d36f1ull;
    init_pools();
    world w = {0};
    random_world(&w, 600);
    for (uint32_t s = 0; s < w.slots; s++)
        if (rnd_below(3) == 0)
            world_replace(&w, s, rnd_below(4) ? rand_payload() : NULL);
    remap_and_compare(&w, 1500, any_filter);
}

/* The sorted numeric runs: merged main runs with dead entries (values
 * changed in place) and a delta, renumbered. */
static void test_remap_numbers(void **state)
{
    (void)state;
    rng_state = 0x510e527fade682d1ull;
    world w = {0};
    world_fields(&w, "n:int x:float d:date");
    for (int i = 0; i < 12000; i++)
        world_add(&w, rand_number_payload());
    for (int i = 0; i < 3000; i++)
        world_replace(&w, (uint32_t)rnd_below(12000), rnd_below(5) ? rand_number_payload() : NULL);
    /* removals alone (no adds, so no merge): entries marked dead in the
     * main run, which answers skip and the renumbering drops */
    for (int i = 0; i < 1000; i++)
        world_replace(&w, (uint32_t)rnd_below(8000), NULL);
    remap_and_compare(&w, 150, number_filter);
}

/* ---------------------------------------------------------------- many keys */

/* Thousands of keywords and words: the dictionaries grow (and rehash) many
 * times; every key stays findable, and memory is accounted for. */
static void test_many_keys(void **state)
{
    (void)state;
    world w = {0};
    world_fields(&w, "k:keyword t:text o.k:keyword");
    size_t empty[3];
    for (int i = 0; i < 3; i++)
        empty[i] = field_index_memory_bytes(w.fields[i]);
    enum { KEYS = 1500 };
    for (int i = 0; i < 2 * KEYS; i++) {
        char text[160];
        snprintf(text, sizeof text, "{\"k\":[\"key%d\",\"Key%d\"],\"t\":\"word%d W%d other\",\"o\":[{\"k\":\"o%d\"}]}",
                 i % KEYS, i, i % KEYS, i, i);
        world_add(&w, load(text));
    }
    for (int i = 0; i < 3; i++)
        assert_true(field_index_memory_bytes(w.fields[i]) > empty[i] + KEYS * 16);
    for (int i = 0; i < KEYS; i += 7) {
        char text[96], want[32];
        snprintf(want, sizeof want, "%d %d", i, i + KEYS);
        snprintf(text, sizeof text, "{\"k\":\"key%d\"}", i);
        run_case(&w, text, EXACT, want);
        snprintf(text, sizeof text, "{\"t\":{\"$text\":\"OTHER word%d\"}}", i);
        run_case(&w, text, EXACT, want);
        snprintf(text, sizeof text, "{\"$or\":[{\"k\":\"Key%d\"},{\"o.k\":\"o%d\"}]}", i, i + KEYS);
        run_case(&w, text, EXACT, want);
        snprintf(text, sizeof text, "{\"t\":{\"$text\":\"w%d word%d\"}}", i + KEYS, i);
        run_case(&w, text, EXACT, strchr(want, ' ') + 1); /* only the second */
    }
    world_free(&w);
}

/* ---------------------------------------------------------------- out of memory */

static void test_oom_create(void **state)
{
    (void)state;
    int failures = 0;
    for (long k = 0;; k++) {
        field_index *fi = (field_index *)&failures;
        ndl_error err = {0};
        ndl_alloc_fail_after(k);
        ndl_status st = field_index_create("meta.a.b", FIELD_TEXT, &fi, &err);
        ndl_alloc_fail_after(-1);
        if (st == NDL_OK) {
            assert_string_equal(field_index_name(fi), "meta.a.b");
            field_index_free(fi);
            break;
        }
        assert_int_equal(st, NDL_NOMEM);
        assert_null(fi);
        assert_string_equal(err.msg, "out of memory for the index of field 'meta.a.b'");
        failures++;
        assert_true(k < 1000);
    }
    assert_true(failures >= 3); /* the index, its name (parts after it), the parts array */
}

/* A payload big enough to grow the dictionaries (64 entries first) and to
 * fill the numbers' delta to its merge. */
static json_t *big_payload(void)
{
    json_t *k = json_array(), *n = json_array(), *t = json_array();
    for (int i = 0; i < 120; i++) {
        char s[32];
        snprintf(s, sizeof s, "key%d", i);
        json_array_append_new(k, json_string(s));
        snprintf(s, sizeof s, "Word%d w%d", i, i * 7);
        json_array_append_new(t, json_string(s));
    }
    for (int i = 0; i < 300; i++)
        json_array_append_new(n, json_integer(5000 + i * 3));
    return json_pack("{s:o,s:o,s:o,s:s,s:b}", "k", k, "n", n, "t", t, "d", "2024-03-01T10:00Z", "b", 1);
}

static const char *const OOM_FILTERS[] = {
    "{\"k\":\"key7\"}", "{\"k\":{\"$ne\":\"key7\"}}", "{\"n\":{\"$gte\":5600}}", "{\"n\":{\"$in\":[3,5009,null]}}",
    "{\"n\":{\"$not\":{\"$lt\":5100}}}", "{\"t\":{\"$text\":\"word3 w21\"}}", "{\"d\":{\"$gt\":\"2024-01-01\"}}",
    "{\"b\":true,\"n\":{\"$lt\":30}}", "{\"$or\":[{\"k\":\"key1\"},{\"n\":0}]}", "{\"k\":{\"$exists\":false}}",
};

static void check_oom_filters(const world *w)
{
    for (size_t i = 0; i < NDL_ARRAY_LEN(OOM_FILTERS); i++) {
        json_t *spec = load(OOM_FILTERS[i]);
        verdict v = check_contract(w, spec, NULL, 0);
        assert_true(v.exact);
        json_decref(spec);
    }
}

static void test_oom_add(void **state)
{
    (void)state;
    int failures[5] = {0}; /* by field */
    json_t *big = big_payload();
    for (long k = 0;; k++) {
        /* 4000 numbers in the delta: the big payload's take it past 4096, to a merge */
        world w = {0};
        world_fields(&w, "k:keyword n:int t:text d:date b:bool");
        json_t *base = json_object(), *numbers = json_array();
        for (int i = 0; i < 4000; i++)
            json_array_append_new(numbers, json_integer(i)); /* in order: appended, cheap */
        json_object_set_new(base, "n", numbers);
        world_add(&w, base);
        for (int i = 0; i < 10; i++) {
            char text[64];
            snprintf(text, sizeof text, "{\"k\":\"other%d\",\"t\":\"word%d\"}", i, i);
            world_add(&w, load(text));
        }
        uint32_t slot = w.slots;
        ndl_status st[5];
        ndl_error err[5];
        bool failed = false;
        ndl_alloc_fail_after(k);
        for (size_t i = 0; i < w.nfields; i++) {
            memset(&err[i], 0, sizeof err[i]);
            st[i] = field_index_add(w.fields[i], slot, big, &err[i]);
            failed |= st[i] != NDL_OK;
        }
        ndl_alloc_fail_after(-1);
        for (size_t i = 0; i < w.nfields; i++) {
            if (st[i] == NDL_OK)
                continue;
            char want[128];
            snprintf(want, sizeof want, "out of memory indexing field '%s'", field_index_name(w.fields[i]));
            assert_int_equal(st[i], NDL_NOMEM);
            assert_int_equal(err[i].status, NDL_NOMEM);
            assert_string_equal(err[i].msg, want);
            failures[i]++;
        }
        if (failed) { /* what was half added can be taken out and added again */
            for (size_t i = 0; i < w.nfields; i++)
                field_index_remove(w.fields[i], slot, big);
            for (size_t i = 0; i < w.nfields; i++)
                assert_int_equal(field_index_add(w.fields[i], slot, big, NULL), NDL_OK);
        }
        assert_int_equal(world_store(&w, json_incref(big)), slot);
        check_oom_filters(&w);
        world_free(&w);
        if (!failed)
            break;
        assert_true(k < 10000);
    }
    /* keys, the numbers' merge, words, a date: each failed; bools allocate only in CRoaring */
    for (int i = 0; i < 4; i++)
        assert_true(failures[i] > 0);
    assert_int_equal(failures[4], 0);
    json_decref(big);
}

/* Answering under OOM: a superset still, exact only if right; a leaf that
 * gives every slot says it is not exact. */
static void test_oom_answer(void **state)
{
    (void)state;
    world w = {0};
    world_fields(&w, "k:keyword n:int t:text d:date b:bool");
    json_t *big = big_payload();
    world_add(&w, big);
    for (int i = 0; i < 40; i++) {
        char text[96];
        snprintf(text, sizeof text, "{\"k\":\"key%d\",\"n\":[%d,%d],\"d\":\"2024-03-%02dT10:00Z\",\"b\":%s}", i, i,
                 i * 11, 1 + i % 28, i % 2 ? "true" : "false");
        world_add(&w, load(text));
    }
    int nulls = 0;
    for (size_t i = 0; i < NDL_ARRAY_LEN(OOM_FILTERS); i++) {
        json_t *spec = load(OOM_FILTERS[i]);
        filter *f = compile(spec);
        for (long k = 0; k < 4; k++) {
            bool exact = true;
            ndl_alloc_fail_after(k);
            roaring_bitmap_t *b = filter_candidates(f, w.fields, w.nfields, w.slots, &exact);
            ndl_alloc_fail_after(-1);
            verify(&w, spec, f, b, exact, NULL, 0);
            nulls += !b;
            bitmap_free(b);
        }
        /* a leaf of one field, directly */
        const filter_node *n = f->root;
        const field_index *fi = NULL;
        for (size_t j = 0; j < w.nfields && n->path.dotted; j++)
            if (strcmp(field_index_name(w.fields[j]), n->path.dotted) == 0)
                fi = w.fields[j];
        for (long k = 0; fi && k < 4; k++) {
            bool exact = true;
            ndl_alloc_fail_after(k);
            roaring_bitmap_t *b = field_index_leaf(fi, n, w.slots, &exact);
            ndl_alloc_fail_after(-1);
            if (!b && exact)
                fail_msg("filter %s: field_index_leaf gave every slot (out of memory at allocation %ld), "
                         "yet said exact", OOM_FILTERS[i], k);
            bitmap_free(b);
        }
        filter_free(f);
        json_decref(spec);
    }
    assert_true(nulls > 0); /* the injection reached the answers */
    world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_field_names),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_keyword),
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_float),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_date),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_logic),
        cmocka_unit_test(test_replace_cases),
        cmocka_unit_test(test_random_contract),
        cmocka_unit_test(test_random_replace),
        cmocka_unit_test(test_remap_random),
        cmocka_unit_test(test_remap_numbers),
        cmocka_unit_test(test_many_numbers),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_oom_create),
        cmocka_unit_test(test_oom_add),
        cmocka_unit_test(test_oom_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
