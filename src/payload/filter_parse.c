/* filter_parse.c -- a filter object (JSON) compiled into the tree of
 * filter.h, with messages that say what is wrong and where. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload/date.h"
#include "payload/filter.h"
#include "payload/json_load.h"
#include "payload/json_print.h"
#include "payload/path.h"
#include "payload/tokens.h"
#include "util/alloc.h"

/* ---------------------------------------------------------------- memory */

/* Nodes, arrays and strings are carved from blocks that only grow, so a
 * filter is freed in a few calls and a half-built one on any error. */
struct filter_block {
    filter_block *next;
    size_t used, cap; /* bytes of data */
    max_align_t data[];
};

#define BLOCK_BYTES 4096

static void *take(filter *f, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    filter_block *b = f->blocks;
    if (!b || b->cap - b->used < n) {
        bool large = n > BLOCK_BYTES - sizeof *b;
        size_t cap = large ? n : BLOCK_BYTES - sizeof *b;
        b = ndl_malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        /* a block for one large array goes second, so the small pieces
         * still fill the current one */
        if (large && f->blocks) {
            b->next = f->blocks->next;
            f->blocks->next = b;
        } else {
            b->next = f->blocks;
            f->blocks = b;
        }
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    return memset(p, 0, n); /* fields a node kind does not use read as empty */
}

void filter_free(filter *f)
{
    if (!f)
        return;
    for (filter_block *b = f->blocks, *next; b; b = next) {
        next = b->next;
        ndl_free(b);
    }
    ndl_free(f);
}

/* ---------------------------------------------------------------- places */

/* Where the parser is: a chain on the C stack from the innermost step out,
 * printed after the caller's `where` as ".key" and "[index]" steps. */
typedef struct place {
    const struct place *up;
    const char *key; /* NULL: an array index */
    size_t index;
} place;

#define PLACE_TAIL 100 /* bytes of steps a message shows; more are elided */
#define KEY_SHOWN 40   /* bytes of a key quoted in a message */

typedef struct parser {
    filter *f;
    const char *where;
    ndl_error *err;
} parser;

/* Start of the UTF-8 sequence that holds s[i], moving forward (a cut that
 * lands inside a character starts at the next one). */
static size_t utf8_forward(const char *s, size_t i, size_t len)
{
    while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
        i++;
    return i;
}

/* Length of s[0..n) without a last UTF-8 sequence that a cut left
 * incomplete. */
static size_t utf8_whole(const char *s, size_t n)
{
    size_t i = n;
    while (i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0 || ((unsigned char)s[i - 1] & 0x80) == 0)
        return n; /* ASCII last, or no lead byte found */
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    return n - (i - 1) >= need ? n : i - 1;
}

/* Prepends s[0..n) to buf[*start..); false (keeping s's last bytes) when
 * it does not fit. */
static bool prepend(char *buf, size_t *start, const char *s, size_t n)
{
    if (n > *start) {
        memcpy(buf, s + n - *start, *start);
        *start = 0;
        return false;
    }
    *start -= n;
    memcpy(buf + *start, s, n);
    return true;
}

/* `where` and the steps to at, into out; when the steps are longer than
 * PLACE_TAIL, their start is elided ("filter...price.$gte"). */
static const char *place_text(const parser *p, const place *at, char *out, size_t out_size)
{
    char steps[PLACE_TAIL];
    size_t start = sizeof steps;
    bool whole = true;
    for (const place *q = at; q && whole; q = q->up) {
        char num[24];
        if (q->key) {
            whole = prepend(steps, &start, q->key, strlen(q->key)) && prepend(steps, &start, ".", 1);
        } else {
            int n = snprintf(num, sizeof num, "[%zu]", q->index);
            whole = prepend(steps, &start, num, (size_t)n);
        }
    }
    if (!whole) {
        start = utf8_forward(steps, start, sizeof steps);
        start += start < sizeof steps && steps[start] == '.'; /* "filter...$not", not "filter....$not" */
    }
    snprintf(out, out_size, "%s%s%.*s", p->where, whole ? "" : "...", (int)(sizeof steps - start), steps + start);
    return out;
}

/* key, or its first KEY_SHOWN bytes and "...", into out (KEY_SHOWN + 4). */
static const char *shown(const char *key, char *out)
{
    size_t n = strlen(key);
    if (n <= KEY_SHOWN)
        return key;
    n = utf8_whole(key, KEY_SHOWN);
    memcpy(out, key, n);
    memcpy(out + n, "...", 4);
    return out;
}

/* NDL_INVALID: "<where><steps>: <message>", cut (if at all) between
 * characters so that it stays valid UTF-8 (it may quote keys). */
NDL_PRINTF(3, 4) static ndl_status bad(const parser *p, const place *at, const char *fmt, ...)
{
    char where[256 + PLACE_TAIL], msg[sizeof((ndl_error *)0)->msg];
    place_text(p, at, where, sizeof where);
    int n = snprintf(msg, sizeof msg, "%s: ", where);
    if (n >= 0 && (size_t)n < sizeof msg) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
        va_end(ap);
    }
    msg[utf8_whole(msg, strlen(msg))] = '\0';
    return ndl_err(p->err, NDL_INVALID, "%s", msg);
}

static ndl_status nomem(const parser *p)
{
    return ndl_err(p->err, NDL_NOMEM, "out of memory compiling the %s", p->where);
}

/* ---------------------------------------------------------------- operands */

static bool is_scalar(const json_t *v) { return !json_is_array(v) && !json_is_object(v); }

/* The scalar v as an operand, its string copied into the filter. */
static ndl_status operand(parser *p, const json_t *v, filter_value *out)
{
    filter_value_of_json(v, out);
    if (out->type != FILTER_VALUE_STRING)
        return NDL_OK;
    char *s = take(p->f, out->len + 1);
    if (!s)
        return nomem(p);
    memcpy(s, out->str, out->len);
    s[out->len] = '\0';
    out->str = s;
    out->is_date = iso8601_parse(s, out->len, &out->date_ms);
    return NDL_OK;
}

static int cmp_values(const void *a, const void *b) { return filter_value_cmp(a, b); }

static ndl_status parse_in(parser *p, const json_t *list, const place *at, filter_node *out)
{
    if (!json_is_array(list))
        return bad(p, at, "needs an array of values (got %s)", json_type_phrase(list));
    size_t n = json_array_size(list);
    if (n > FILTER_MAX_IN)
        return bad(p, at, "has %zu values; at most %d", n, FILTER_MAX_IN);
    filter_value *values = take(p->f, n * sizeof *values);
    if (n && !values)
        return nomem(p);
    out->u.in.has_null = false;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(list, i);
        if (!is_scalar(v)) {
            place step = {at, NULL, i};
            return bad(p, &step, "must be a string, number, bool or null (got %s)", json_type_phrase(v));
        }
        ndl_status s = operand(p, v, &values[i]);
        if (s != NDL_OK)
            return s;
        out->u.in.has_null |= values[i].type == FILTER_VALUE_NULL;
    }
    if (n > 1)
        qsort(values, n, sizeof *values, cmp_values);
    out->u.in.values = values;
    out->u.in.count = (uint32_t)n;
    return NDL_OK;
}

static ndl_status parse_text(parser *p, const json_t *v, const place *at, filter_node *out)
{
    if (!json_is_string(v))
        return bad(p, at, "needs a string of words to look for (got %s)", json_type_phrase(v));
    const char *s = json_string_value(v);
    size_t len = json_string_length(v), n = token_count(s, len);
    if (n == 0)
        return bad(p, at, "has no words to look for (letters or digits)");
    filter_token *tokens = take(p->f, n * sizeof *tokens);
    char *folded = take(p->f, len);
    if (!tokens || !folded)
        return nomem(p);
    token_fold(folded, s, len);
    token_span t;
    size_t i = 0;
    for (size_t pos = 0; token_next(s, len, &pos, &t); i++)
        tokens[i] = (filter_token){folded + t.start, t.len};
    out->u.text.tokens = tokens;
    out->u.text.count = (uint32_t)n;
    return NDL_OK;
}

/* ---------------------------------------------------------------- operators */

static ndl_status parse_ops(parser *p, const filter_path *path, const json_t *ops, const place *at, unsigned depth,
                            filter_node *out);

static const struct {
    const char *name;
    filter_op op;
} cmp_ops[] = {{"$eq", FILTER_EQ},   {"$ne", FILTER_NE}, {"$gt", FILTER_GT},
               {"$gte", FILTER_GTE}, {"$lt", FILTER_LT}, {"$lte", FILTER_LTE}};

static const char *const field_only_ops[] = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte",
                                             "$in", "$nin", "$exists", "$text"};

static bool listed(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return true;
    return false;
}

/* One operator of a field's operator object: name at `at` (the field's
 * place), operand v. */
static ndl_status parse_op(parser *p, const filter_path *path, const char *name, const json_t *v,
                           const place *at, unsigned depth, filter_node *out)
{
    place step = {at, name, 0};
    out->path = *path;
    for (size_t i = 0; i < NDL_ARRAY_LEN(cmp_ops); i++) {
        if (strcmp(name, cmp_ops[i].name) != 0)
            continue;
        filter_op op = cmp_ops[i].op;
        bool ordered = op != FILTER_EQ && op != FILTER_NE;
        if (ordered && !json_is_number(v) && !json_is_string(v))
            return bad(p, &step, "needs a number or a string (got %s)", json_type_phrase(v));
        if (!is_scalar(v))
            return bad(p, &step, "must be a string, number, bool or null (got %s)", json_type_phrase(v));
        out->kind = FILTER_CMP;
        out->u.cmp.op = op;
        return operand(p, v, &out->u.cmp.operand);
    }
    if (strcmp(name, "$in") == 0 || strcmp(name, "$nin") == 0) {
        out->kind = name[1] == 'i' ? FILTER_IN : FILTER_NIN;
        return parse_in(p, v, &step, out);
    }
    if (strcmp(name, "$exists") == 0) {
        if (!json_is_boolean(v))
            return bad(p, &step, "needs true or false (got %s)", json_type_phrase(v));
        out->kind = FILTER_EXISTS;
        out->u.present = json_is_true(v);
        return NDL_OK;
    }
    if (strcmp(name, "$text") == 0) {
        out->kind = FILTER_TEXT;
        return parse_text(p, v, &step, out);
    }
    if (strcmp(name, "$not") == 0) {
        if (!json_is_object(v))
            return bad(p, &step, "needs an object of operators, as in {\"$not\":{\"$gt\":5}} (got %s)",
                       json_type_phrase(v));
        filter_node *child = take(p->f, sizeof *child);
        if (!child)
            return nomem(p);
        out->kind = FILTER_NOT;
        out->u.negated = child;
        return parse_ops(p, path, v, &step, depth + 1, child);
    }
    char buf[KEY_SHOWN + 4];
    return bad(p, at, "unknown operator '%s'", shown(name, buf));
}

/* Children of an AND (or the node itself when there is one) for n entries. */
static filter_node *and_of(parser *p, size_t n, filter_node *out)
{
    if (n == 1)
        return out;
    filter_node *kids = take(p->f, n * sizeof *kids);
    if (kids) {
        out->kind = FILTER_AND;
        out->u.logic.children = kids;
        out->u.logic.count = (uint32_t)n;
    }
    return kids;
}

/* A field's operator object: every operator must hold. */
static ndl_status parse_ops(parser *p, const filter_path *path, const json_t *ops, const place *at, unsigned depth,
                            filter_node *out)
{
    if (depth > FILTER_MAX_DEPTH)
        return bad(p, at, "filters nest deeper than %d levels", FILTER_MAX_DEPTH);
    size_t n = json_object_size(ops);
    if (n == 0)
        return bad(p, at, "needs at least one operator, as in {\"$gt\":5} (got {})");
    const char *name;
    const json_t *v;
    char buf[KEY_SHOWN + 4], buf2[KEY_SHOWN + 4];
    json_object_foreach((json_t *)ops, name, v)
    {
        if (name[0] != '$')
            return bad(p, at, "'%s' is not an operator (no embedded-document equality: use dotted paths, as in "
                              "{\"%s.%s\":...})",
                       shown(name, buf), shown(path->dotted, buf2), shown(name, buf));
    }
    filter_node *kids = and_of(p, n, out);
    if (!kids)
        return nomem(p);
    size_t i = 0;
    json_object_foreach((json_t *)ops, name, v)
    {
        ndl_status s = parse_op(p, path, name, v, at, depth, &kids[i++]);
        if (s != NDL_OK)
            return s;
    }
    return NDL_OK;
}

/* ---------------------------------------------------------------- filters */

static ndl_status parse_filter(parser *p, const json_t *spec, const place *at, unsigned depth, filter_node *out);

/* A dotted field name split into the filter's memory. */
static ndl_status parse_path(parser *p, const char *key, const place *at, filter_path *out)
{
    char buf[KEY_SHOWN + 4];
    size_t len = strlen(key);
    uint32_t n = path_part_count(key);
    if (len == 0)
        return bad(p, at, "a field name is empty");
    if (path_has_empty_part(key))
        return bad(p, at, "field '%s' has an empty part between dots", shown(key, buf));
    char *copy = take(p->f, 2 * len + 2);
    const char **parts = take(p->f, n * sizeof *parts);
    if (!copy || !parts)
        return nomem(p);
    memcpy(copy, key, len + 1);
    path_split(key, copy + len + 1, parts);
    out->dotted = copy;
    out->parts = parts;
    out->nparts = n;
    return NDL_OK;
}

static ndl_status parse_field(parser *p, const char *key, const json_t *v, const place *at, unsigned depth,
                              filter_node *out)
{
    filter_path path;
    ndl_status s = parse_path(p, key, at, &path);
    if (s != NDL_OK)
        return s;
    place step = {at, key, 0};
    if (json_is_object(v))
        return parse_ops(p, &path, v, &step, depth + 1, out);
    if (json_is_array(v))
        return bad(p, &step, "an array cannot be compared whole; to match any of several values use "
                             "{\"$in\":[...]}");
    out->kind = FILTER_CMP;
    out->path = path;
    out->u.cmp.op = FILTER_EQ;
    return operand(p, v, &out->u.cmp.operand);
}

/* $and / $or: a non-empty array of filters. */
static ndl_status parse_list(parser *p, const json_t *v, const place *step, unsigned depth, filter_node *out)
{
    size_t n = json_array_size(v);
    if (!json_is_array(v) || n == 0)
        return bad(p, step, "needs a non-empty array of filters (got %s)",
                   json_is_array(v) ? "an empty array" : json_type_phrase(v));
    if (n > FILTER_MAX_CHILDREN)
        return bad(p, step, "has %zu filters; at most %d", n, FILTER_MAX_CHILDREN);
    filter_node *kids = take(p->f, n * sizeof *kids);
    if (!kids)
        return nomem(p);
    out->u.logic.children = kids;
    out->u.logic.count = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        place item = {step, NULL, i};
        ndl_status s = parse_filter(p, json_array_get(v, i), &item, depth + 1, &kids[i]);
        if (s != NDL_OK)
            return s;
    }
    return NDL_OK;
}

/* One key of a filter object: a logical operator or a field. */
static ndl_status parse_entry(parser *p, const char *key, const json_t *v, const place *at, unsigned depth,
                              filter_node *out)
{
    if (key[0] != '$')
        return parse_field(p, key, v, at, depth, out);
    place step = {at, key, 0};
    if (strcmp(key, "$and") == 0 || strcmp(key, "$or") == 0) {
        out->kind = key[1] == 'a' ? FILTER_AND : FILTER_OR;
        return parse_list(p, v, &step, depth, out);
    }
    if (strcmp(key, "$not") == 0) {
        filter_node *child = take(p->f, sizeof *child);
        if (!child)
            return nomem(p);
        out->kind = FILTER_NOT;
        out->u.negated = child;
        return parse_filter(p, v, &step, depth + 1, child);
    }
    char buf[KEY_SHOWN + 4];
    if (listed(key, field_only_ops, NDL_ARRAY_LEN(field_only_ops)))
        return bad(p, at, "unknown operator '%s' here: it goes inside a field, as in {\"price\":{\"%s\":...}}", key,
                   key);
    return bad(p, at, "unknown operator '%s'", shown(key, buf));
}

static ndl_status parse_filter(parser *p, const json_t *spec, const place *at, unsigned depth, filter_node *out)
{
    if (!json_is_object(spec))
        return bad(p, at, "must be a filter object (got %s)", json_type_phrase(spec));
    if (depth > FILTER_MAX_DEPTH)
        return bad(p, at, "filters nest deeper than %d levels", FILTER_MAX_DEPTH);
    size_t n = json_object_size(spec);
    if (n == 0) {
        out->kind = FILTER_TRUE;
        return NDL_OK;
    }
    filter_node *kids = and_of(p, n, out);
    if (!kids)
        return nomem(p);
    const char *key;
    const json_t *v;
    size_t i = 0;
    json_object_foreach((json_t *)spec, key, v)
    {
        ndl_status s = parse_entry(p, key, v, at, depth, &kids[i++]);
        if (s != NDL_OK)
            return s;
    }
    return NDL_OK;
}

/* ---------------------------------------------------------------- entry points */

ndl_status filter_parse(const json_t *spec, const char *where, filter **out, ndl_error *err)
{
    *out = NULL;
    filter *f = ndl_calloc(1, sizeof *f);
    parser p = {f, where ? where : "filter", err};
    if (!f)
        return nomem(&p);
    filter_node *root = take(f, sizeof *root);
    ndl_status s = root ? parse_filter(&p, spec, NULL, 1, root) : nomem(&p);
    if (s != NDL_OK) {
        filter_free(f);
        return s;
    }
    f->root = root;
    *out = f;
    return NDL_OK;
}

ndl_status filter_parse_text(const char *text, size_t len, const char *where, filter **out, ndl_error *err)
{
    *out = NULL;
    where = where ? where : "filter";
    json_t *spec;
    ndl_status s = json_load_object(where, NDL_INVALID, text, len, &spec, err);
    if (s != NDL_OK)
        return s;
    s = filter_parse(spec, where, out, err);
    json_decref(spec);
    return s;
}
