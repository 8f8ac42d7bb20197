/* idmap.c -- external id <-> slot maps (see idmap.h for the structure). */
#include "db/idmap.h"

#include <string.h>

#include "util/alloc.h"
#include "util/utf8.h"

#define IDMAP_INITIAL_CAP 1024

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

uint64_t ndl_id_hash(ndl_id id)
{
    if (!id.str)
        return mix64(id.num);
    /* FNV-1a, then mixed; seeded differently from numbers so 5 and "5" differ */
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < id.len; i++) {
        h ^= (unsigned char)id.str[i];
        h *= 0x100000001b3ull;
    }
    return mix64(h ^ 0x5bd1e9955bd1e995ull);
}

bool ndl_id_equal(ndl_id a, ndl_id b)
{
    if ((a.str == NULL) != (b.str == NULL))
        return false;
    if (!a.str)
        return a.num == b.num;
    return a.len == b.len && memcmp(a.str, b.str, a.len) == 0;
}

ndl_status idmap_check_id(ndl_id id, ndl_error *err)
{
    if (!id.str)
        return NDL_OK;
    if (id.len == 0)
        return ndl_err(err, NDL_INVALID, "string id is empty");
    if (id.len > NDL_ID_STR_MAX)
        return ndl_err(err, NDL_INVALID, "string id has %u bytes; the limit is %d", id.len,
                       NDL_ID_STR_MAX);
    size_t bad;
    if (!utf8_valid(id.str, id.len, &bad))
        return ndl_err(err, NDL_INVALID, "string id is not valid UTF-8 (byte %zu)", bad);
    return NDL_OK;
}

static ndl_status table_alloc(idmap *m, size_t cap, ndl_error *err)
{
    uint32_t *t = ndl_malloc(cap * sizeof *t);
    uint32_t *g = ndl_malloc(cap * sizeof *g);
    if (!t || !g) {
        ndl_free(t);
        ndl_free(g);
        return ndl_err(err, NDL_NOMEM, "out of memory for id map of %zu entries", cap);
    }
    memset(t, 0xff, cap * sizeof *t);
    m->table = t;
    m->tags = g;
    m->cap = cap;
    return NDL_OK;
}

ndl_status idmap_init(idmap *m, ndl_error *err)
{
    memset(m, 0, sizeof *m);
    ndl_status rc = arena_init(&m->slots, sizeof(slot_id), err);
    if (rc != NDL_OK)
        return rc;
    rc = table_alloc(m, IDMAP_INITIAL_CAP, err);
    if (rc != NDL_OK)
        arena_destroy(&m->slots);
    return rc;
}

void idmap_destroy(idmap *m)
{
    if (!m->table)
        return;
    uint32_t n = arena_count(&m->slots);
    for (uint32_t s = 0; s < n; s++)
        ndl_free((void *)idmap_slot(m, s)->str);
    arena_destroy(&m->slots);
    ndl_free(m->table);
    ndl_free(m->tags);
    m->table = NULL;
    m->tags = NULL;
}

ndl_status idmap_set_slot(idmap *m, uint32_t slot, ndl_id id, ndl_error *err)
{
    uint32_t got;
    void *rec;
    ndl_status rc = arena_reserve(&m->slots, &got, &rec, err);
    if (rc != NDL_OK)
        return rc;
    assert(got == slot);
    (void)slot;
    slot_id *s = rec;
    if (id.str) {
        char *copy = ndl_strndup(id.str, id.len);
        if (!copy)
            return ndl_err(err, NDL_NOMEM, "out of memory for a string id");
        s->str = copy;
        s->num = id.len;
        m->str_bytes += id.len + 1;
    } else {
        s->str = NULL;
        s->num = id.num;
    }
    arena_publish(&m->slots, got + 1);
    return NDL_OK;
}

/* Position of id in the table, or of the empty bucket where it would go. */
static size_t probe(const idmap *m, ndl_id id, uint64_t h, bool *found)
{
    size_t mask = m->cap - 1;
    uint32_t tag = (uint32_t)(h >> 32);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t s = m->table[i];
        if (s == IDMAP_EMPTY) {
            *found = false;
            return i;
        }
        if (m->tags[i] == tag && ndl_id_equal(idmap_slot_to_id(idmap_slot(m, s)), id)) {
            *found = true;
            return i;
        }
    }
}

uint32_t idmap_find(const idmap *m, ndl_id id)
{
    bool found;
    size_t i = probe(m, id, ndl_id_hash(id), &found);
    return found ? m->table[i] : IDMAP_EMPTY;
}

static ndl_status grow(idmap *m, ndl_error *err)
{
    uint32_t *old_t = m->table, *old_g = m->tags;
    size_t old_cap = m->cap;
    ndl_status rc = table_alloc(m, old_cap * 2, err);
    if (rc != NDL_OK)
        return rc;
    for (size_t i = 0; i < old_cap; i++) {
        if (old_t[i] == IDMAP_EMPTY)
            continue;
        ndl_id id = idmap_slot_to_id(idmap_slot(m, old_t[i]));
        uint64_t h = ndl_id_hash(id);
        size_t j = h & (m->cap - 1);
        while (m->table[j] != IDMAP_EMPTY)
            j = (j + 1) & (m->cap - 1);
        m->table[j] = old_t[i];
        m->tags[j] = (uint32_t)(h >> 32);
    }
    ndl_free(old_t);
    ndl_free(old_g);
    return NDL_OK;
}

ndl_status idmap_put(idmap *m, ndl_id id, uint32_t slot, uint32_t *old, ndl_error *err)
{
    if ((m->live + 1) * 10 > m->cap * 7) {
        ndl_status rc = grow(m, err);
        if (rc != NDL_OK)
            return rc;
    }
    uint64_t h = ndl_id_hash(id);
    bool found;
    size_t i = probe(m, id, h, &found);
    *old = found ? m->table[i] : IDMAP_EMPTY;
    if (!found)
        m->live++;
    m->table[i] = slot;
    m->tags[i] = (uint32_t)(h >> 32);
    return NDL_OK;
}

uint32_t idmap_remove(idmap *m, ndl_id id)
{
    bool found;
    size_t i = probe(m, id, ndl_id_hash(id), &found);
    if (!found)
        return IDMAP_EMPTY;
    uint32_t slot = m->table[i];
    size_t mask = m->cap - 1;
    /* backward-shift deletion keeps probe chains intact without tombstones */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (m->table[j] == IDMAP_EMPTY)
            break;
        uint64_t h = ndl_id_hash(idmap_slot_to_id(idmap_slot(m, m->table[j])));
        size_t home = h & mask;
        /* move j back to i if its home is not in (i, j] cyclically */
        bool in_range = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            m->table[i] = m->table[j];
            m->tags[i] = m->tags[j];
            i = j;
        }
    }
    m->table[i] = IDMAP_EMPTY;
    m->live--;
    return slot;
}

size_t idmap_memory_bytes(const idmap *m)
{
    return arena_memory_bytes(&m->slots) + m->cap * 8 + m->str_bytes;
}
