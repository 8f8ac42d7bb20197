/*
 * field_index.c -- one field's payload index (field_index.h): a dictionary
 * of bitmaps for keyword and text fields (value or word -> slots), two
 * bitmaps for bool, and for int, float and date a sorted array of (value,
 * slot) with a small sorted delta that new entries go to (merged into the
 * main array when it grows past DELTA_MAX), so ranges are two binary
 * searches and an insert moves at most the delta.
 */
#include "payload/field_index.h"

#include <stdlib.h>
#include <string.h>

#include "payload/bitmap_words.h"
#include "payload/date.h"
#include "payload/json_print.h"
#include "payload/path.h"
#include "payload/tokens.h"
#include "util/alloc.h"

#define DELTA_MAX 4096
#define WORD_MAX 128 /* bytes of a text word kept: longer words by their start */

static const char *const type_names[FIELD_TYPES] = {"keyword", "int", "float", "bool", "date", "text"};

const char *field_type_name(field_type t) { return (unsigned)t < FIELD_TYPES ? type_names[t] : "?"; }

bool field_type_parse(const char *s, field_type *out)
{
    for (int t = 0; t < FIELD_TYPES; t++)
        if (strcmp(s, type_names[t]) == 0) {
            *out = (field_type)t;
            return true;
        }
    return false;
}

ndl_status field_name_check(const char *name, ndl_error *err)
{
    size_t len = strlen(name);
    if (len == 0 || len > FIELD_NAME_MAX)
        return ndl_err(err, NDL_INVALID, "a field name has 1..%d bytes (got %zu)", FIELD_NAME_MAX, len);
    if (name[0] == '$')
        return ndl_err(err, NDL_INVALID, "field name '%s' starts with '$' (operators do)", name);
    if (path_has_empty_part(name))
        return ndl_err(err, NDL_INVALID, "field name '%s' has an empty part between dots", name);
    return NDL_OK;
}

/* ---------------------------------------------------------------- dictionary */

typedef struct dict_entry {
    char *key; /* NULL: empty */
    size_t len;
    roaring_bitmap_t *slots;
} dict_entry;

typedef struct dict {
    dict_entry *e;
    size_t cap, n; /* cap: a power of two, or 0 */
} dict;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static dict_entry *dict_find(const dict *d, const char *key, size_t len)
{
    if (!d->cap)
        return NULL;
    for (size_t i = hash_bytes(key, len) & (d->cap - 1);; i = (i + 1) & (d->cap - 1)) {
        dict_entry *e = &d->e[i];
        if (!e->key)
            return NULL;
        if (e->len == len && memcmp(e->key, key, len) == 0)
            return e;
    }
}

static bool dict_grow(dict *d)
{
    size_t cap = d->cap ? d->cap * 2 : 64;
    dict_entry *e = ndl_calloc(cap, sizeof *e);
    if (!e)
        return false;
    for (size_t i = 0; i < d->cap; i++) {
        if (!d->e[i].key)
            continue;
        size_t j = hash_bytes(d->e[i].key, d->e[i].len) & (cap - 1);
        while (e[j].key)
            j = (j + 1) & (cap - 1);
        e[j] = d->e[i];
    }
    ndl_free(d->e);
    d->e = e;
    d->cap = cap;
    return true;
}

/* The bitmap of key, made (empty) if it is not there yet; NULL: no memory. */
static roaring_bitmap_t *dict_get(dict *d, const char *key, size_t len)
{
    dict_entry *e = dict_find(d, key, len);
    if (e)
        return e->slots;
    if ((d->n + 1) * 10 > d->cap * 7 && !dict_grow(d))
        return NULL;
    size_t i = hash_bytes(key, len) & (d->cap - 1);
    while (d->e[i].key)
        i = (i + 1) & (d->cap - 1);
    char *k = ndl_malloc(len + 1);
    roaring_bitmap_t *b = k ? roaring_bitmap_create() : NULL;
    if (!b) {
        ndl_free(k);
        return NULL;
    }
    memcpy(k, key, len);
    k[len] = '\0';
    d->e[i] = (dict_entry){k, len, b};
    d->n++;
    return b;
}

static void dict_free(dict *d)
{
    for (size_t i = 0; i < d->cap; i++)
        if (d->e[i].key) {
            ndl_free(d->e[i].key);
            bitmap_free(d->e[i].slots);
        }
    ndl_free(d->e);
}

static size_t dict_memory(const dict *d)
{
    size_t m = d->cap * sizeof *d->e;
    for (size_t i = 0; i < d->cap; i++)
        if (d->e[i].key)
            m += d->e[i].len + 1 + roaring_bitmap_portable_size_in_bytes(d->e[i].slots);
    return m;
}

/* ---------------------------------------------------------------- numbers */

/* One value of an int, float or date field: the filter's number (dates:
 * the instant in ms, as an integer) and its slot. */
typedef struct num_entry {
    filter_value v;
    uint32_t slot;
    bool dead; /* removed from the main array (dropped at its next merge) */
} num_entry;

typedef struct num_run {
    num_entry *e;
    size_t n, cap;
} num_run;

static int entry_cmp(const num_entry *a, const num_entry *b)
{
    int c = filter_value_cmp(&a->v, &b->v);
    return c ? c : (a->slot > b->slot) - (a->slot < b->slot);
}

/* First entry of r whose value is not below v (after false), or above v
 * (after true); slots are not compared. */
static size_t lower_bound(const num_run *r, const filter_value *v, bool after)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = filter_value_cmp(&r->e[mid].v, v);
        if (c < 0 || (after && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static size_t entry_bound(const num_run *r, const num_entry *x)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (entry_cmp(&r->e[mid], x) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool run_insert(num_run *r, const num_entry *x)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        num_entry *e = ndl_realloc(r->e, cap * sizeof *e);
        if (!e)
            return false;
        r->e = e;
        r->cap = cap;
    }
    size_t at = entry_bound(r, x);
    memmove(r->e + at + 1, r->e + at, (r->n - at) * sizeof *r->e);
    r->e[at] = *x;
    r->n++;
    return true;
}

/* Removes one live entry equal to x: from the delta by moving the rest
 * (at most DELTA_MAX), from the main array by marking it dead (moving
 * there would cost the field's size per change). False if none. */
static bool run_remove(num_run *r, const num_entry *x, bool mark)
{
    for (size_t at = entry_bound(r, x); at < r->n && entry_cmp(&r->e[at], x) == 0; at++) {
        if (r->e[at].dead)
            continue;
        if (mark) {
            r->e[at].dead = true;
        } else {
            memmove(r->e + at, r->e + at + 1, (r->n - at - 1) * sizeof *r->e);
            r->n--;
        }
        return true;
    }
    return false;
}

/* Merges delta into main (both sorted). */
static bool run_merge(num_run *main, num_run *delta)
{
    size_t n = main->n + delta->n;
    num_entry *e = ndl_malloc((n ? n : 1) * sizeof *e);
    if (!e)
        return false;
    size_t i = 0, j = 0, k = 0;
    while (i < main->n || j < delta->n) {
        if (j == delta->n || (i < main->n && entry_cmp(&main->e[i], &delta->e[j]) <= 0)) {
            if (!main->e[i].dead) /* the dead go here */
                e[k++] = main->e[i];
            i++;
        } else {
            e[k++] = delta->e[j++];
        }
    }
    ndl_free(main->e);
    main->e = e;
    main->n = k;
    main->cap = n;
    delta->n = 0;
    return true;
}

/* ---------------------------------------------------------------- the index */

struct field_index {
    char *name;
    const char **parts; /* into name's buffer, after the name */
    uint32_t nparts;
    field_type type;
    roaring_bitmap_t *present; /* some end holds a value (null counts) */
    roaring_bitmap_t *nullish; /* some end is missing or null, or an array there holds null */
    roaring_bitmap_t *multi;   /* more than one end */
    roaring_bitmap_t *bools[2];
    dict keys;                 /* keyword: values; text: words (folded) */
    num_run main, delta;       /* int, float, date */
};

const char *field_index_name(const field_index *fi) { return fi->name; }
field_type field_index_type(const field_index *fi) { return fi->type; }

ndl_status field_index_create(const char *name, field_type t, field_index **out, ndl_error *err)
{
    *out = NULL;
    ndl_status rc = field_name_check(name, err);
    if (rc != NDL_OK)
        return rc;
    if ((unsigned)t >= FIELD_TYPES)
        return ndl_err(err, NDL_INVALID, "field '%s': unknown type %d", name, (int)t);
    field_index *fi = ndl_calloc(1, sizeof *fi);
    size_t len = strlen(name);
    if (fi) {
        fi->type = t;
        fi->nparts = path_part_count(name);
        fi->name = ndl_malloc(2 * len + 2); /* the name, then its parts */
        fi->parts = ndl_calloc(fi->nparts, sizeof *fi->parts);
        fi->present = roaring_bitmap_create();
        fi->nullish = roaring_bitmap_create();
        fi->multi = roaring_bitmap_create();
        fi->bools[0] = roaring_bitmap_create();
        fi->bools[1] = roaring_bitmap_create();
    }
    if (!fi || !fi->name || !fi->parts || !fi->present || !fi->nullish || !fi->multi ||
        !fi->bools[0] || !fi->bools[1]) {
        field_index_free(fi);
        return ndl_err(err, NDL_NOMEM, "out of memory for the index of field '%s'", name);
    }
    memcpy(fi->name, name, len + 1);
    path_split(name, fi->name + len + 1, fi->parts);
    *out = fi;
    return NDL_OK;
}

void field_index_free(field_index *fi)
{
    if (!fi)
        return;
    ndl_free(fi->parts);
    ndl_free(fi->name);
    bitmap_free(fi->present);
    bitmap_free(fi->nullish);
    bitmap_free(fi->multi);
    bitmap_free(fi->bools[0]);
    bitmap_free(fi->bools[1]);
    dict_free(&fi->keys);
    ndl_free(fi->main.e);
    ndl_free(fi->delta.e);
    ndl_free(fi);
}

/* ---------------------------------------------------------------- renumbering */

typedef struct remap_ctx {
    const uint32_t *remap;
    uint32_t slots;
    roaring_bitmap_t *out;
    uint32_t n;
    uint32_t buf[1024];
} remap_ctx;

static bool remap_value(uint32_t slot, void *arg)
{
    remap_ctx *r = arg;
    if (slot >= r->slots || r->remap[slot] == UINT32_MAX)
        return true;
    r->buf[r->n++] = r->remap[slot];
    if (r->n == NDL_ARRAY_LEN(r->buf)) {
        roaring_bitmap_add_many(r->out, r->n, r->buf);
        r->n = 0;
    }
    return true;
}

/* Adds the renumbered slots of from to out (sorted, since remap keeps
 * order: whole runs go to CRoaring at once). */
static void remap_into(const roaring_bitmap_t *from, roaring_bitmap_t *out, remap_ctx *r)
{
    r->out = out;
    r->n = 0;
    roaring_iterate(from, remap_value, r);
    if (r->n)
        roaring_bitmap_add_many(out, r->n, r->buf);
}

/* The kept entries of from, renumbered, in to (empty); sorted as from is. */
static bool remap_run(const num_run *from, num_run *to, const remap_ctx *r)
{
    if (!from->n)
        return true;
    if (!(to->e = ndl_malloc(from->n * sizeof *to->e)))
        return false;
    to->cap = from->n;
    for (size_t i = 0; i < from->n; i++) {
        num_entry x = from->e[i];
        if (x.dead || x.slot >= r->slots || r->remap[x.slot] == UINT32_MAX)
            continue;
        x.slot = r->remap[x.slot];
        to->e[to->n++] = x;
    }
    return true;
}

ndl_status field_index_remapped(const field_index *fi, const uint32_t *remap, uint32_t slots,
                                field_index **out, ndl_error *err)
{
    field_index *n;
    ndl_status rc = field_index_create(fi->name, fi->type, &n, err);
    if (rc != NDL_OK)
        return rc;
    remap_ctx *r = ndl_malloc(sizeof *r);
    bool ok = r != NULL;
    if (ok) {
        r->remap = remap;
        r->slots = slots;
        remap_into(fi->present, n->present, r);
        remap_into(fi->nullish, n->nullish, r);
        remap_into(fi->multi, n->multi, r);
        remap_into(fi->bools[0], n->bools[0], r);
        remap_into(fi->bools[1], n->bools[1], r);
        ok = remap_run(&fi->main, &n->main, r) && remap_run(&fi->delta, &n->delta, r);
    }
    for (size_t i = 0; ok && i < fi->keys.cap; i++) {
        const dict_entry *e = &fi->keys.e[i];
        if (!e->key)
            continue;
        roaring_bitmap_t *b = roaring_bitmap_create();
        if (!b) {
            ok = false;
            break;
        }
        remap_into(e->slots, b, r);
        if (!roaring_bitmap_is_empty(b)) { /* a value no kept slot holds goes */
            roaring_bitmap_t *into = dict_get(&n->keys, e->key, e->len);
            ok = into && roaring_bitmap_overwrite(into, b);
        }
        roaring_bitmap_free(b);
    }
    ndl_free(r);
    if (!ok) {
        field_index_free(n);
        return ndl_err(err, NDL_NOMEM, "out of memory renumbering the index of field '%s'",
                       fi->name);
    }
    *out = n;
    return NDL_OK;
}

size_t field_index_memory_bytes(const field_index *fi)
{
    size_t m = sizeof *fi + dict_memory(&fi->keys) +
               (fi->main.cap + fi->delta.cap) * sizeof(num_entry);
    const roaring_bitmap_t *b[] = {fi->present, fi->nullish, fi->multi, fi->bools[0], fi->bools[1]};
    for (size_t i = 0; i < sizeof b / sizeof *b; i++)
        m += roaring_bitmap_portable_size_in_bytes(b[i]);
    return m;
}

/* ---------------------------------------------------------------- values */

/* An instant (ms) as the number a date field stores for it. */
static filter_value instant(int64_t ms)
{
    return (filter_value){.type = FILTER_VALUE_NUMBER, .is_integer = true, .integer = ms,
                          .number = (double)ms};
}

/* The number a scalar of this field's type stands for (dates: the instant,
 * as an integer of ms); false for a value the index does not order. */
static bool number_of(field_type t, const json_t *v, filter_value *out)
{
    if (t == FIELD_DATE) {
        int64_t ms;
        if (!json_is_string(v) || !iso8601_parse(json_string_value(v), json_string_length(v), &ms))
            return false;
        *out = instant(ms);
        return true;
    }
    return json_is_number(v) && filter_value_of_json(v, out);
}

static bool type_fits(field_type t, const json_t *v)
{
    switch (t) {
    case FIELD_KEYWORD:
    case FIELD_TEXT: return json_is_string(v);
    case FIELD_INT: return json_is_integer(v);
    case FIELD_FLOAT: return json_is_number(v);
    case FIELD_BOOL: return json_is_boolean(v);
    case FIELD_DATE: {
        filter_value x;
        return number_of(t, v, &x);
    }
    }
    return false;
}

typedef struct check_ctx {
    const field_index *fi;
    const json_t *bad;
} check_ctx;

static bool check_end(void *ctx, const json_t *end)
{
    check_ctx *c = ctx;
    if (!end || json_is_null(end))
        return false;
    if (json_is_array(end)) {
        for (size_t k = 0, n = json_array_size(end); k < n; k++) {
            const json_t *e = json_array_get(end, k);
            if (!json_is_null(e) && !type_fits(c->fi->type, e)) {
                c->bad = e;
                return true;
            }
        }
        return false;
    }
    if (!type_fits(c->fi->type, end)) {
        c->bad = end;
        return true;
    }
    return false;
}

ndl_status field_index_check(const field_index *fi, const json_t *payload, ndl_error *err)
{
    check_ctx c = {fi, NULL};
    if (!path_walk(payload, fi->parts, fi->nparts, check_end, &c))
        return NDL_OK;
    if (fi->type == FIELD_DATE && json_is_string(c.bad))
        return ndl_err(err, NDL_INVALID,
                       "payload field '%s' is indexed as date: \"%.40s\" is not an ISO-8601 date",
                       fi->name, json_string_value(c.bad));
    if (fi->type == FIELD_INT && json_is_real(c.bad)) /* "got a number" would not say what is wrong */
        return ndl_err(err, NDL_INVALID,
                       "payload field '%s' is indexed as int; got a number with a fraction or an exponent",
                       fi->name);
    return ndl_err(err, NDL_INVALID, "payload field '%s' is indexed as %s; got %s", fi->name,
                   field_type_name(fi->type), json_type_phrase(c.bad));
}

typedef struct add_ctx {
    field_index *fi;
    uint32_t slot;
    bool remove;
    uint32_t ends;
    bool failed;
} add_ctx;

static void put_bitmap(add_ctx *c, roaring_bitmap_t *b)
{
    if (!b)
        c->failed = true;
    else if (c->remove)
        roaring_bitmap_remove(b, c->slot);
    else
        roaring_bitmap_add(b, c->slot);
}

static void put_number(add_ctx *c, const filter_value *v)
{
    field_index *fi = c->fi;
    num_entry x = {.v = *v, .slot = c->slot};
    if (c->remove) {
        if (!run_remove(&fi->delta, &x, false))
            run_remove(&fi->main, &x, true);
        return;
    }
    if (!run_insert(&fi->delta, &x))
        c->failed = true;
    else if (fi->delta.n >= DELTA_MAX && !run_merge(&fi->main, &fi->delta))
        c->failed = true; /* the delta keeps it: still searchable */
}

/* The slot into (or out of) the dictionary's bitmap of key[0..n). */
static void put_key(add_ctx *c, const char *key, size_t n)
{
    if (c->remove) {
        dict_entry *e = dict_find(&c->fi->keys, key, n);
        if (e)
            roaring_bitmap_remove(e->slots, c->slot);
    } else {
        put_bitmap(c, dict_get(&c->fi->keys, key, n));
    }
}

static void put_words(add_ctx *c, const char *s, size_t len)
{
    token_span t;
    char buf[WORD_MAX];
    for (size_t pos = 0; token_next(s, len, &pos, &t);) {
        size_t n = NDL_MIN(t.len, (size_t)WORD_MAX);
        token_fold(buf, s + t.start, n);
        put_key(c, buf, n);
    }
}

/* One scalar at an end of the path (or in an array there). */
static void put_value(add_ctx *c, const json_t *v)
{
    field_index *fi = c->fi;
    if (json_is_null(v)) {
        put_bitmap(c, fi->nullish);
        return;
    }
    switch (fi->type) {
    case FIELD_KEYWORD:
        if (json_is_string(v))
            put_key(c, json_string_value(v), json_string_length(v));
        break;
    case FIELD_TEXT:
        if (json_is_string(v))
            put_words(c, json_string_value(v), json_string_length(v));
        break;
    case FIELD_BOOL:
        if (json_is_boolean(v))
            put_bitmap(c, fi->bools[json_is_true(v)]);
        break;
    case FIELD_INT:
    case FIELD_FLOAT:
    case FIELD_DATE: {
        filter_value x;
        if (number_of(fi->type, v, &x))
            put_number(c, &x);
        break;
    }
    }
}

static bool add_end(void *ctx, const json_t *end)
{
    add_ctx *c = ctx;
    c->ends++;
    if (!end) {
        put_bitmap(c, c->fi->nullish);
        return false;
    }
    put_bitmap(c, c->fi->present);
    if (json_is_array(end))
        for (size_t k = 0, n = json_array_size(end); k < n; k++)
            put_value(c, json_array_get(end, k));
    else
        put_value(c, end);
    return false;
}

ndl_status field_index_add(field_index *fi, uint32_t slot, const json_t *payload, ndl_error *err)
{
    add_ctx c = {.fi = fi, .slot = slot};
    path_walk(payload, fi->parts, fi->nparts, add_end, &c);
    if (c.ends > 1)
        put_bitmap(&c, fi->multi);
    if (c.failed)
        return ndl_err(err, NDL_NOMEM, "out of memory indexing field '%s'", fi->name);
    return NDL_OK;
}

void field_index_remove(field_index *fi, uint32_t slot, const json_t *payload)
{
    add_ctx c = {.fi = fi, .slot = slot, .remove = true};
    path_walk(payload, fi->parts, fi->nparts, add_end, &c);
    roaring_bitmap_remove(fi->multi, slot);
}

/* ---------------------------------------------------------------- filters */

/* Marks the slots below `slots` of the entries of r in [lo, hi) in the
 * bit words (values are in value order, slots in any order). */
static void mark_slots(uint64_t *words, uint32_t slots, const num_run *r, size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi; i++)
        if (!r->e[i].dead && r->e[i].slot < slots)
            words[r->e[i].slot >> 6] |= (uint64_t)1 << (r->e[i].slot & 63);
}

/* Bit words for slots 0..slots-1, all clear; NULL: no memory. */
static uint64_t *words_new(uint32_t slots)
{
    size_t nwords = ((size_t)slots + 63) / 64;
    return ndl_calloc(nwords ? nwords : 1, sizeof(uint64_t));
}

/* Marks the slots (below `slots`) with a value v such that (v op o)
 * holds, op a range or EQ; returns how many entries it looked at. */
static size_t mark_range(const field_index *fi, filter_op op, const filter_value *o, uint64_t *words,
                         uint32_t slots)
{
    const num_run *runs[2] = {&fi->main, &fi->delta};
    size_t total = 0;
    for (int i = 0; i < 2; i++) {
        const num_run *r = runs[i];
        size_t lo = 0, hi = r->n;
        if (op == FILTER_GT)
            lo = lower_bound(r, o, true);
        else if (op == FILTER_GTE || op == FILTER_EQ)
            lo = lower_bound(r, o, false);
        if (op == FILTER_LT)
            hi = lower_bound(r, o, false);
        else if (op == FILTER_LTE || op == FILTER_EQ)
            hi = lower_bound(r, o, true);
        if (hi > lo) {
            mark_slots(words, slots, r, lo, hi);
            total += hi - lo;
        }
    }
    return total;
}

/* Slots (below `slots`) with a value v such that (v op o) holds. */
static roaring_bitmap_t *range(const field_index *fi, filter_op op, const filter_value *o, uint32_t slots)
{
    uint64_t *words = words_new(slots);
    if (!words)
        return NULL;
    roaring_bitmap_t *b = mark_range(fi, op, o, words, slots)
                              ? bitmap_from_words(words, ((size_t)slots + 63) / 64)
                              : roaring_bitmap_create();
    ndl_free(words);
    return b;
}

/* What $eq o (not null) looks up in an int, float or date field: the
 * number into *key (true), or false when no value of the field can equal
 * o (*narrowed true) or the index cannot tell (*narrowed false: a string
 * that is not a date, on a date field). *exact: an entry found does
 * match ($eq on a date compares the text; equal text is an equal instant,
 * not the other way round). */
static bool number_key(const field_index *fi, const filter_value *o, filter_value *key, bool *narrowed,
                       bool *exact)
{
    *narrowed = true;
    *exact = fi->type != FIELD_DATE;
    if (fi->type != FIELD_DATE) { /* numbers compare with numbers only */
        *key = *o;
        return o->type == FILTER_VALUE_NUMBER;
    }
    if (o->type != FILTER_VALUE_STRING)
        return false;
    *narrowed = o->is_date;
    *key = instant(o->date_ms);
    return o->is_date;
}

/* $eq operand o (not null), or NULL + *exact false when not narrowed. */
static roaring_bitmap_t *equal(const field_index *fi, const filter_value *o, uint32_t slots, bool *exact)
{
    *exact = true;
    switch (fi->type) {
    case FIELD_KEYWORD:
        if (o->type == FILTER_VALUE_STRING) {
            dict_entry *e = dict_find(&fi->keys, o->str, o->len);
            return e ? roaring_bitmap_copy(e->slots) : roaring_bitmap_create();
        }
        return roaring_bitmap_create(); /* a keyword field holds strings only */
    case FIELD_BOOL:
        return o->type == FILTER_VALUE_BOOL ? roaring_bitmap_copy(fi->bools[o->boolean])
                                            : roaring_bitmap_create();
    case FIELD_INT:
    case FIELD_FLOAT:
    case FIELD_DATE: {
        filter_value key;
        bool narrowed;
        if (number_key(fi, o, &key, &narrowed, exact))
            return range(fi, FILTER_EQ, &key, slots);
        *exact = narrowed;
        return narrowed ? roaring_bitmap_create() : NULL;
    }
    case FIELD_TEXT: break;
    }
    *exact = false;
    return NULL;
}

/* $in on an int, float or date field: every value marked into one set of
 * bit words (one pass over the slots, not one per value). NULL + *exact
 * false when not narrowed or out of memory. */
static roaring_bitmap_t *numbers_in(const field_index *fi, const filter_node *n, uint32_t slots, bool *exact)
{
    *exact = true;
    uint64_t *words = words_new(slots);
    if (!words)
        return NULL;
    size_t total = 0;
    for (uint32_t k = 0; k < n->u.in.count; k++) {
        const filter_value *o = &n->u.in.values[k];
        if (o->type == FILTER_VALUE_NULL)
            continue;
        filter_value key;
        bool narrowed, one_exact;
        if (number_key(fi, o, &key, &narrowed, &one_exact)) {
            total += mark_range(fi, FILTER_EQ, &key, words, slots);
            *exact &= one_exact;
        } else if (!narrowed) {
            ndl_free(words);
            *exact = false;
            return NULL;
        }
    }
    roaring_bitmap_t *b = total ? bitmap_from_words(words, ((size_t)slots + 63) / 64) : roaring_bitmap_create();
    ndl_free(words);
    if (b && n->u.in.has_null)
        roaring_bitmap_or_inplace(b, fi->nullish);
    return b;
}

static roaring_bitmap_t *ordered(const field_index *fi, filter_op op, const filter_value *o,
                                 uint32_t slots, bool *exact)
{
    *exact = true;
    if (fi->type == FIELD_INT || fi->type == FIELD_FLOAT) /* numbers compare with numbers only */
        return o->type == FILTER_VALUE_NUMBER ? range(fi, op, o, slots) : roaring_bitmap_create();
    if (fi->type == FIELD_DATE && o->is_date) {
        filter_value ms = instant(o->date_ms);
        return range(fi, op, &ms, slots);
    }
    *exact = false;
    return NULL;
}

static roaring_bitmap_t *words(const field_index *fi, const filter_node *n, bool *exact)
{
    *exact = false;
    if (fi->type != FIELD_TEXT)
        return NULL;
    roaring_bitmap_t *b = NULL;
    for (uint32_t k = 0; k < n->u.text.count; k++) {
        const filter_token *t = &n->u.text.tokens[k];
        dict_entry *e = dict_find(&fi->keys, t->text, NDL_MIN(t->len, (size_t)WORD_MAX));
        if (!e) {
            bitmap_free(b);
            *exact = true;
            return roaring_bitmap_create();
        }
        if (!b)
            b = roaring_bitmap_copy(e->slots);
        else
            roaring_bitmap_and_inplace(b, e->slots);
        if (!b)
            return NULL;
    }
    /* per end: a slot with several ends may hold the words in different ones */
    bool long_word = false;
    for (uint32_t k = 0; k < n->u.text.count; k++)
        long_word |= n->u.text.tokens[k].len >= WORD_MAX; /* longer words share its key */
    *exact = !long_word && !roaring_bitmap_intersect(b, fi->multi);
    return b;
}

static roaring_bitmap_t *leaf(const field_index *fi, const filter_node *n, uint32_t slots, bool *exact)
{
    *exact = false;
    roaring_bitmap_t *b = NULL;
    switch (n->kind) {
    case FILTER_CMP:
        if (n->u.cmp.op == FILTER_NE)
            return NULL;
        if (n->u.cmp.op != FILTER_EQ)
            return ordered(fi, n->u.cmp.op, &n->u.cmp.operand, slots, exact);
        if (n->u.cmp.operand.type == FILTER_VALUE_NULL) {
            *exact = true;
            return roaring_bitmap_copy(fi->nullish);
        }
        return equal(fi, &n->u.cmp.operand, slots, exact);
    case FILTER_IN:
        if (fi->type == FIELD_INT || fi->type == FIELD_FLOAT || fi->type == FIELD_DATE)
            return numbers_in(fi, n, slots, exact);
        b = n->u.in.has_null ? roaring_bitmap_copy(fi->nullish) : roaring_bitmap_create();
        *exact = b != NULL;
        for (uint32_t k = 0; b && k < n->u.in.count; k++) {
            if (n->u.in.values[k].type == FILTER_VALUE_NULL)
                continue;
            bool one_exact;
            roaring_bitmap_t *one = equal(fi, &n->u.in.values[k], slots, &one_exact);
            if (!one) {
                bitmap_free(b);
                *exact = false;
                return NULL;
            }
            roaring_bitmap_or_inplace(b, one);
            bitmap_free(one);
            *exact &= one_exact;
        }
        return b;
    case FILTER_EXISTS:
        *exact = true;
        if (n->u.present)
            return roaring_bitmap_copy(fi->present);
        b = roaring_bitmap_from_range(0, slots, 1);
        if (b)
            roaring_bitmap_andnot_inplace(b, fi->present);
        *exact = b != NULL;
        return b;
    case FILTER_TEXT: return words(fi, n, exact);
    default: return NULL;
    }
}

roaring_bitmap_t *field_index_leaf(const field_index *fi, const filter_node *n, uint32_t slots,
                                   bool *exact)
{
    roaring_bitmap_t *b = leaf(fi, n, slots, exact);
    if (!b) /* every slot: not narrowed, or out of memory after an exact start */
        *exact = false;
    return b;
}
