/*
 * filter.h -- the filter language of SPEC §4 (user documentation:
 * docs/FILTERS.md): a JSON object compiled once into a tree, then matched
 * against point payloads, as jansson objects or as their stored text.
 *
 * The tree's layout is part of this interface so that later passes (a
 * bitmap compiler over payload indexes, a query planner) can walk it; only
 * filter_parse builds one, and nothing changes it afterwards, so one filter
 * may be matched from many threads at once.
 *
 * How a path reaches values (MongoDB's rules): the path's parts are looked
 * up one after the other from the payload object. A step that meets an
 * array continues into every element that is an object (other elements,
 * nested arrays included, lead nowhere); a step that meets an object
 * without the key, or a scalar, ends in "missing". So one path can reach
 * several values and several "missing" ends; an operator matches when any
 * of them satisfies it (see the kinds below), and "missing" takes part only
 * where said.
 *
 * Memory: every node, array and string of a filter lives in blocks owned
 * by the filter; filter_free releases them all. Matching allocates nothing.
 */
#ifndef NDL_PAYLOAD_FILTER_H
#define NDL_PAYLOAD_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/base.h"

#define FILTER_MAX_DEPTH 64       /* nested filter and operator objects */
#define FILTER_MAX_CHILDREN 1024  /* entries of one $and / $or */
#define FILTER_MAX_IN 10000       /* entries of one $in / $nin */

typedef enum filter_kind {
    FILTER_TRUE,   /* {}: matches every point, with or without a payload */
    FILTER_AND,    /* every child matches */
    FILTER_OR,     /* some child matches */
    FILTER_NOT,    /* the child does not match */
    FILTER_CMP,    /* path op operand (FILTER_EQ .. FILTER_LTE) */
    FILTER_IN,     /* path $eq some operand of the list */
    FILTER_NIN,    /* not FILTER_IN */
    FILTER_EXISTS, /* the path reaches a value (null counts) == present */
    FILTER_TEXT,   /* some value reached, a string or an array whose strings are
                    * taken together, holds every query token among its words */
} filter_kind;

/* FILTER_EQ: a value reached equals the operand, or is an array with an
 * element equal to it; with a null operand, "missing" matches too.
 * FILTER_NE: exactly not FILTER_EQ (so it matches points without the field).
 * GT..LTE: a value reached, or an element of an array reached, compares so
 * with the operand: numbers with numbers; a date operand (is_date) with
 * strings that parse as dates, as instants; any other string with strings,
 * bytewise. Values of other types never match. */
typedef enum filter_op { FILTER_EQ, FILTER_NE, FILTER_GT, FILTER_GTE, FILTER_LT, FILTER_LTE } filter_op;

/* In the order filter_value_cmp sorts types. */
typedef enum filter_type {
    FILTER_VALUE_NULL,
    FILTER_VALUE_BOOL,
    FILTER_VALUE_NUMBER,
    FILTER_VALUE_STRING,
} filter_type;

/* A scalar operand (or a scalar of a payload, seen the same way). */
typedef struct filter_value {
    filter_type type;
    bool boolean;       /* BOOL */
    bool is_integer;    /* NUMBER: written without '.' or exponent; `integer` is exact */
    bool is_date;       /* STRING (operands only): parses as ISO-8601, `date_ms` is its instant */
    int64_t integer;    /* NUMBER with is_integer */
    double number;      /* NUMBER: the value (an integer converted) */
    const char *str;    /* STRING: len bytes (may hold NUL bytes), NUL-terminated */
    size_t len;
    int64_t date_ms;    /* is_date: milliseconds since 1970-01-01T00:00:00Z */
} filter_value;

/* A dotted field name split at its dots ("meta.author" -> "meta", "author"). */
typedef struct filter_path {
    const char *dotted;        /* the field name as written */
    const char *const *parts;  /* nparts NUL-terminated parts, none empty */
    uint32_t nparts;
} filter_path;

/* A query token of $text, folded (see tokens.h). */
typedef struct filter_token {
    const char *text;
    size_t len;
} filter_token;

typedef struct filter_node filter_node;
struct filter_node {
    filter_kind kind;
    filter_path path; /* CMP, IN, NIN, EXISTS, TEXT, and a NOT made by a field's own
                       * $not ({"price":{"$not":{..}}}); zeroed in other nodes */
    union {
        struct { /* AND, OR */
            const filter_node *children;
            uint32_t count; /* >= 1 */
        } logic;
        const filter_node *negated; /* NOT */
        struct { /* CMP */
            filter_op op;
            filter_value operand;
        } cmp;
        struct { /* IN, NIN */
            const filter_value *values; /* sorted by filter_value_cmp; duplicates kept */
            uint32_t count;             /* 0: IN matches nothing, NIN everything */
            bool has_null;              /* some value is null (then "missing" matches) */
        } in;
        bool present; /* EXISTS */
        struct { /* TEXT */
            const filter_token *tokens;
            uint32_t count; /* >= 1 */
        } text;
    } u;
};

typedef struct filter_block filter_block; /* the filter's memory */

typedef struct filter {
    const filter_node *root;
    filter_block *blocks;
} filter;

/* Compiles spec (a filter object) into *out (free with filter_free).
 * NDL_INVALID with a message that starts with where and the place of the
 * problem ("filter.$and[1].price.$gte: needs a number or a string (got an
 * array)"), or NDL_NOMEM; *out is NULL then. where: "filter" (NULL means
 * that) or e.g. "searches[3].filter". */
ndl_status filter_parse(const json_t *spec, const char *where, filter **out, ndl_error *err);

/* filter_parse of the JSON text text[0..len), read by json_load_object
 * (json_load.h) with where at the start of its messages: refuses text
 * nested deeper than 64 levels (before jansson, which recurses, sees it),
 * invalid UTF-8 or JSON (with line and column), duplicate keys, numbers
 * out of range and a value that is not an object. */
ndl_status filter_parse_text(const char *text, size_t len, const char *where, filter **out, ndl_error *err);

void filter_free(filter *f);

/* True if the point with this payload (an object, or NULL for a point
 * without one) matches. Allocates nothing; thread-safe. */
bool filter_match(const filter *f, const json_t *payload);

/* filter_match of a stored payload text (text[0..len), or NULL/0 for none),
 * parsed here. A text that does not parse as a JSON object matches nothing,
 * and neither does any text when memory runs out while parsing it. */
bool filter_match_text(const filter *f, const char *text, size_t len);

/* The scalar j (null, bool, number or string; strings borrowed from j,
 * is_date false) as a filter_value; false for arrays and objects. */
bool filter_value_of_json(const json_t *j, filter_value *out);

/* Total order of scalars: null < false < true < numbers < strings; numbers
 * by value, exactly (1 == 1.0, and 2^53 + 1 > 2^53 as an integer);
 * strings bytewise, a prefix first. 0 exactly when FILTER_EQ holds. */
int filter_value_cmp(const filter_value *a, const filter_value *b);

#endif
