/* filter_eval.c -- matching a compiled filter against a payload (the rules
 * are in filter.h and docs/FILTERS.md). Runs once per candidate during a
 * filtered search, so it allocates nothing: paths were split, operands
 * typed and dates read when the filter was compiled. */
#include <stdlib.h>

#include "payload/date.h"
#include "payload/filter.h"
#include "payload/json.h"
#include "payload/json_scan.h"
#include "payload/path.h"
#include "payload/tokens.h"

/* Does node n hold for one end of its path: a value, or NULL for "missing"? */
typedef bool (*end_test)(const filter_node *n, const json_t *end);

typedef struct end_check {
    const filter_node *n;
    end_test test;
} end_check;

static bool check_end(void *ctx, const json_t *end)
{
    const end_check *e = ctx;
    return e->test(e->n, end);
}

/* True if some end of n's path from the payload passes test. */
static bool any_end(const json_t *payload, const filter_node *n, end_test test)
{
    end_check e = {n, test};
    return path_walk(payload, n->path.parts, n->path.nparts, check_end, &e);
}

/* True if the scalar v, or some element of the array v, passes test. */
static bool scalar_or_element(const filter_node *n, const json_t *v, end_test test)
{
    if (!json_is_array(v))
        return test(n, v);
    for (size_t k = 0, len = json_array_size(v); k < len; k++)
        if (test(n, json_array_get(v, k)))
            return true;
    return false;
}

/* ---------------------------------------------------------------- $eq $in */

static bool equals_operand(const filter_node *n, const json_t *v)
{
    filter_value x;
    return filter_value_of_json(v, &x) && filter_value_cmp(&x, &n->u.cmp.operand) == 0;
}

static bool eq_end(const filter_node *n, const json_t *end)
{
    if (!end)
        return n->u.cmp.operand.type == FILTER_VALUE_NULL;
    return scalar_or_element(n, end, equals_operand);
}

static int cmp_values(const void *a, const void *b) { return filter_value_cmp(a, b); }

static bool in_list(const filter_node *n, const json_t *v)
{
    filter_value x;
    if (!filter_value_of_json(v, &x))
        return false;
    const filter_value *values = n->u.in.values;
    uint32_t count = n->u.in.count;
    if (count <= 8) {
        for (uint32_t k = 0; k < count; k++)
            if (filter_value_cmp(&x, &values[k]) == 0)
                return true;
        return false;
    }
    return bsearch(&x, values, count, sizeof *values, cmp_values);
}

static bool in_end(const filter_node *n, const json_t *end)
{
    if (!end)
        return n->u.in.has_null;
    return scalar_or_element(n, end, in_list);
}

/* ---------------------------------------------------------------- ranges */

static bool holds(filter_op op, int c)
{
    switch (op) {
    case FILTER_GT: return c > 0;
    case FILTER_GTE: return c >= 0;
    case FILTER_LT: return c < 0;
    case FILTER_LTE: return c <= 0;
    case FILTER_EQ:
    case FILTER_NE: break;
    }
    return false;
}

static bool in_range(const filter_node *n, const json_t *v)
{
    const filter_value *o = &n->u.cmp.operand;
    filter_value x;
    if (!filter_value_of_json(v, &x) || x.type != o->type)
        return false;
    if (o->is_date) {
        int64_t ms;
        return iso8601_parse(x.str, x.len, &ms) && holds(n->u.cmp.op, (ms > o->date_ms) - (ms < o->date_ms));
    }
    return holds(n->u.cmp.op, filter_value_cmp(&x, o));
}

static bool range_end(const filter_node *n, const json_t *end) { return end && scalar_or_element(n, end, in_range); }

/* ---------------------------------------------------------------- $exists $text */

static bool present_end(const filter_node *n, const json_t *end)
{
    (void)n;
    return end != NULL;
}

/* Query tokens a pass over a string's words checks at once. */
#define TEXT_CHUNK 64

/* Marks in found[] the query tokens q[0..nq) that are among the words of v
 * (if a string), reading its words once; returns how many it newly marked. */
static uint32_t mark_tokens(const json_t *v, const filter_token *q, uint32_t nq, bool *found,
                            uint32_t left)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    uint32_t marked = 0;
    token_span t;
    for (size_t pos = 0; marked < left && token_next(s, len, &pos, &t);)
        for (uint32_t k = 0; k < nq; k++)
            if (!found[k] && token_equal_folded(s + t.start, t.len, q[k].text, q[k].len)) {
                found[k] = true;
                marked++;
            }
    return marked;
}

/* Every query token is among the words of the string, or of the strings
 * of the array, end: each string's words are read once per TEXT_CHUNK
 * query tokens (it was once per token). */
static bool text_end(const filter_node *n, const json_t *end)
{
    if (!json_is_string(end) && !json_is_array(end))
        return false;
    for (uint32_t first = 0; first < n->u.text.count; first += TEXT_CHUNK) {
        const filter_token *q = n->u.text.tokens + first;
        uint32_t nq = n->u.text.count - first < TEXT_CHUNK ? n->u.text.count - first : TEXT_CHUNK;
        bool found[TEXT_CHUNK] = {false};
        uint32_t left = nq;
        left -= mark_tokens(end, q, nq, found, left);
        for (size_t e = 0, len = json_array_size(end); left && e < len; e++)
            left -= mark_tokens(json_array_get(end, e), q, nq, found, left);
        if (left)
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------- nodes */

static bool match(const filter_node *n, const json_t *payload)
{
    switch (n->kind) {
    case FILTER_TRUE: return true;
    case FILTER_AND:
        for (uint32_t k = 0; k < n->u.logic.count; k++)
            if (!match(&n->u.logic.children[k], payload))
                return false;
        return true;
    case FILTER_OR:
        for (uint32_t k = 0; k < n->u.logic.count; k++)
            if (match(&n->u.logic.children[k], payload))
                return true;
        return false;
    case FILTER_NOT: return !match(n->u.negated, payload);
    case FILTER_CMP:
        switch (n->u.cmp.op) {
        case FILTER_EQ: return any_end(payload, n, eq_end);
        case FILTER_NE: return !any_end(payload, n, eq_end);
        default: return any_end(payload, n, range_end);
        }
    case FILTER_IN: return any_end(payload, n, in_end);
    case FILTER_NIN: return !any_end(payload, n, in_end);
    case FILTER_EXISTS: return any_end(payload, n, present_end) == n->u.present;
    case FILTER_TEXT: return any_end(payload, n, text_end);
    }
    return false;
}

bool filter_match(const filter *f, const json_t *payload) { return match(f->root, payload); }

bool filter_match_text(const filter *f, const char *text, size_t len)
{
    if (!text || len == 0)
        return match(f->root, NULL);
    if (!json_depth_within(text, len, PAYLOAD_MAX_DEPTH, NULL))
        return false;
    payload_json_init();
    /* ALLOW_NUL: payload strings may hold \u0000. A jansson allocation that
     * failed was retried with malloc (json.h), so a value returned is whole. */
    json_t *payload = json_loadb(text, len, JSON_ALLOW_NUL, NULL);
    payload_json_alloc_failed(); /* clear the flag for the next caller */
    bool ok = json_is_object(payload) && match(f->root, payload);
    json_decref(payload);
    return ok;
}
