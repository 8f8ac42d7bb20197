/*
 * filter_candidates.c -- a filter turned into the slots that may match it,
 * from the field indexes (filter_candidates.h).
 *
 * Each node gives a set of slots (NULL = every slot) and whether every
 * slot in it matches (exact) or only that no slot outside it does. A leaf
 * on an indexed field asks its index; a leaf on any other field gives
 * every slot, not exact. AND intersects, OR unites, and each is exact when
 * all its parts are (an OR also when one part is exactly every slot, as
 * {}); NOT (and $ne, $nin) takes the complement of an exact set -- the
 * complement of a superset would say nothing, so an inexact child makes
 * it every slot, not exact.
 */
#include "payload/filter_candidates.h"

#include <string.h>

typedef struct cand {
    roaring_bitmap_t *b; /* NULL: every slot */
    bool exact;
    bool failed;         /* out of memory */
} cand;

typedef struct ctx {
    field_index *const *fields;
    size_t nfields;
    uint32_t slots;
} ctx;

static const field_index *index_of(const ctx *x, const filter_path *p)
{
    for (size_t i = 0; i < x->nfields; i++)
        if (strcmp(field_index_name(x->fields[i]), p->dotted) == 0)
            return x->fields[i];
    return NULL;
}

static cand complement(const ctx *x, cand c)
{
    if (c.failed || !c.exact) {
        bitmap_free(c.b);
        return (cand){NULL, false, c.failed};
    }
    roaring_bitmap_t *all = roaring_bitmap_from_range(0, x->slots, 1);
    if (!all) {
        bitmap_free(c.b);
        return (cand){NULL, false, true};
    }
    if (c.b) {
        roaring_bitmap_andnot_inplace(all, c.b);
        bitmap_free(c.b);
    } else {
        roaring_bitmap_clear(all); /* not everything: nothing */
    }
    return (cand){all, true, false};
}

static cand compile(const ctx *x, const filter_node *n);

static cand leaf(const ctx *x, const filter_node *n)
{
    const field_index *fi = index_of(x, &n->path);
    if (!fi)
        return (cand){NULL, false, false};
    bool exact;
    roaring_bitmap_t *b = field_index_leaf(fi, n, x->slots, &exact);
    return (cand){b, b && exact, false};
}

static cand combine(const ctx *x, const filter_node *n, bool all)
{
    cand acc = {NULL, true, false};
    bool every = false; /* OR: some child gave every slot, not exactly */
    for (uint32_t k = 0; k < n->u.logic.count; k++) {
        cand c = compile(x, &n->u.logic.children[k]);
        acc.exact &= c.exact;
        acc.failed |= c.failed;
        if (!c.b) {
            if (all) /* AND: every slot is the identity */
                continue;
            if (c.exact) { /* OR: every slot, exactly, whatever the rest */
                bitmap_free(acc.b);
                return (cand){NULL, true, acc.failed};
            }
            every = true; /* the rest only for an exact one */
        }
        if (every) { /* OR: already every slot, so the sets go */
            bitmap_free(acc.b);
            bitmap_free(c.b);
            acc.b = NULL;
            continue;
        }
        if (!acc.b) {
            acc.b = c.b;
            continue;
        }
        if (all)
            roaring_bitmap_and_inplace(acc.b, c.b);
        else
            roaring_bitmap_or_inplace(acc.b, c.b);
        bitmap_free(c.b);
    }
    return acc;
}

static cand compile(const ctx *x, const filter_node *n)
{
    switch (n->kind) {
    case FILTER_TRUE: return (cand){NULL, true, false};
    case FILTER_AND: return combine(x, n, true);
    case FILTER_OR: return combine(x, n, false);
    case FILTER_NOT: return complement(x, compile(x, n->u.negated));
    case FILTER_CMP:
        if (n->u.cmp.op == FILTER_NE) { /* not $eq */
            filter_node eq = *n;
            eq.u.cmp.op = FILTER_EQ;
            return complement(x, leaf(x, &eq));
        }
        return leaf(x, n);
    case FILTER_NIN: {
        filter_node in = *n;
        in.kind = FILTER_IN;
        return complement(x, leaf(x, &in));
    }
    case FILTER_IN:
    case FILTER_EXISTS:
    case FILTER_TEXT: return leaf(x, n);
    }
    return (cand){NULL, false, false};
}

roaring_bitmap_t *filter_candidates(const filter *f, field_index *const *fields, size_t nfields,
                                    uint32_t slots, bool *exact)
{
    ctx x = {fields, nfields, slots};
    cand c = compile(&x, f->root);
    if (c.failed) {
        bitmap_free(c.b);
        *exact = false;
        return NULL;
    }
    *exact = c.exact;
    return c.b;
}
