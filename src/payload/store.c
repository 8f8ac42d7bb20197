/*
 * store.c -- per-slot payload texts and their checkpoint file (format in
 * store.h). Opening maps the file and points each slot into it, so payloads
 * cost no copy until a slot's payload is replaced.
 */
#include "payload/store.h"

#include <string.h>

#include "storage/sfile.h"
#include "util/alloc.h"
#include "util/le.h"

#define PAYL_KIND SFILE_KIND('P', 'A', 'Y', 'L')

ndl_status payload_store_init(payload_store *s, ndl_error *err)
{
    memset(s, 0, sizeof *s);
    return arena_init(&s->refs, sizeof(payload_ref), err);
}

static void drop_text(payload_store *s, payload_ref *r)
{
    if (r->owned) {
        s->heap_bytes -= r->len;
        ndl_free((void *)r->text);
    }
    r->text = NULL;
    r->len = 0;
    r->owned = 0;
}

static void free_retired(payload_store *s)
{
    for (size_t i = 0; i < s->nretired; i++)
        ndl_free(s->retired[i]);
    s->nretired = 0;
}

void payload_store_destroy(payload_store *s)
{
    if (s->refs.chunks) {
        uint32_t n = arena_count(&s->refs);
        for (uint32_t i = 0; i < n; i++)
            drop_text(s, (payload_ref *)arena_rec(&s->refs, i));
    }
    arena_destroy(&s->refs);
    free_retired(s);
    ndl_free(s->retired);
    if (s->map) {
        sfile_map m = {.base = s->map, .len = s->map_len};
        sfile_map_close(&m);
    }
    memset(s, 0, sizeof *s);
}

/* A heap copy of text as a ref; a NULL text makes an empty ref. */
static ndl_status copy_text(payload_store *s, const char *text, size_t len, payload_ref *out,
                            ndl_error *err)
{
    memset(out, 0, sizeof *out);
    if (!text)
        return NDL_OK;
    if (len > UINT32_MAX)
        return ndl_err(err, NDL_INVALID, "payload of %zu bytes is too large", len);
    char *p = ndl_malloc(len ? len : 1);
    if (!p)
        return ndl_err(err, NDL_NOMEM, "out of memory for a payload of %zu bytes", len);
    memcpy(p, text, len);
    out->text = p;
    out->len = (uint32_t)len;
    out->owned = 1;
    s->heap_bytes += len;
    return NDL_OK;
}

ndl_status payload_store_append(payload_store *s, uint32_t slot, const char *text, size_t len,
                                ndl_error *err)
{
    payload_ref r;
    ndl_status rc = copy_text(s, text, len, &r, err);
    if (rc != NDL_OK)
        return rc;
    uint32_t got;
    void *rec;
    rc = arena_reserve(&s->refs, &got, &rec, err);
    if (rc == NDL_OK && got != slot)
        rc = ndl_err(err, NDL_INTERNAL, "payload slot %u is out of step (expected %u)", got, slot);
    if (rc != NDL_OK) {
        drop_text(s, &r);
        return rc;
    }
    memcpy(rec, &r, sizeof r);
    arena_publish(&s->refs, slot + 1);
    return NDL_OK;
}

ndl_status payload_store_replace(payload_store *s, uint32_t slot, const char *text, size_t len,
                                 ndl_error *err)
{
    payload_ref *cur = (payload_ref *)arena_rec(&s->refs, slot);
    bool retire = s->snapshots && cur->owned;
    if (retire && s->nretired == s->retired_cap) {
        size_t cap = s->retired_cap ? 2 * s->retired_cap : 64;
        char **grown = ndl_realloc(s->retired, cap * sizeof *grown);
        if (!grown)
            return ndl_err(err, NDL_NOMEM, "out of memory replacing a payload");
        s->retired = grown;
        s->retired_cap = cap;
    }
    payload_ref r;
    ndl_status rc = copy_text(s, text, len, &r, err);
    if (rc != NDL_OK)
        return rc;
    if (retire) { /* a snapshot may be reading it: free it on release */
        s->retired[s->nretired++] = (char *)cur->text;
        s->heap_bytes -= cur->len;
        cur->owned = 0;
    }
    drop_text(s, cur);
    *cur = r;
    return NDL_OK;
}

ndl_status payload_store_append_ref(payload_store *s, uint32_t slot, const payload_ref *r,
                                    ndl_error *err)
{
    uint32_t got;
    void *rec;
    ndl_status rc = arena_reserve(&s->refs, &got, &rec, err);
    if (rc == NDL_OK && got != slot)
        rc = ndl_err(err, NDL_INTERNAL, "payload slot %u is out of step (expected %u)", got, slot);
    if (rc != NDL_OK)
        return rc;
    payload_ref borrowed = {r->text, r->len, 0};
    memcpy(rec, &borrowed, sizeof borrowed);
    arena_publish(&s->refs, slot + 1);
    return NDL_OK;
}

void payload_store_take(payload_store *dst, payload_store *src, const uint32_t *remap, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        payload_ref *from = (payload_ref *)arena_rec(&src->refs, i);
        if (remap[i] == UINT32_MAX || !from->owned)
            continue;
        payload_ref *to = (payload_ref *)arena_rec(&dst->refs, remap[i]);
        to->owned = 1;
        from->owned = 0;
        src->heap_bytes -= from->len;
        dst->heap_bytes += from->len;
    }
    dst->map = src->map;
    dst->map_len = src->map_len;
    src->map = NULL;
    src->map_len = 0;
}

ndl_status payload_store_extend(payload_store *s, uint32_t slots, ndl_error *err)
{
    for (uint32_t i = payload_store_count(s); i < slots; i++) {
        ndl_status rc = payload_store_append(s, i, NULL, 0, err);
        if (rc != NDL_OK)
            return rc;
    }
    return NDL_OK;
}

ndl_status payload_store_snapshot(payload_store *s, uint32_t slots, payload_snapshot *out,
                                  ndl_error *err)
{
    out->slots = slots;
    out->refs = ndl_malloc((slots ? slots : 1) * sizeof *out->refs);
    if (!out->refs)
        return ndl_err(err, NDL_NOMEM, "out of memory for a payload snapshot of %u slots", slots);
    for (uint32_t i = 0; i < slots; i += ARENA_CHUNK_SLOTS) /* records are chunk-contiguous */
        memcpy(out->refs + i, arena_rec(&s->refs, i),
               NDL_MIN(ARENA_CHUNK_SLOTS, slots - i) * sizeof *out->refs);
    s->snapshots++;
    return NDL_OK;
}

void payload_store_release(payload_store *s, payload_snapshot *snap)
{
    if (!snap->refs)
        return;
    ndl_free(snap->refs);
    snap->refs = NULL;
    if (--s->snapshots == 0)
        free_retired(s);
}

static bool kept(const payload_snapshot *snap, const bitset *skip, uint32_t slot)
{
    return !(skip && bitset_test(skip, slot)) && snap->refs[slot].text;
}

ndl_status payload_snapshot_write(const payload_snapshot *snap, const char *path,
                                  const bitset *skip, ndl_error *err)
{
    uint32_t slots = snap->slots;
    sfile_writer *w;
    ndl_status rc = sfile_create(path, PAYL_KIND, PAYL_VERSION, &w, err);
    if (rc != NDL_OK)
        return rc;
    uint8_t head[8] = {(uint8_t)slots, (uint8_t)(slots >> 8), (uint8_t)(slots >> 16),
                       (uint8_t)(slots >> 24), 0, 0, 0, 0};
    rc = sfile_write(w, head, sizeof head, err);
    uint64_t off = 0;
    for (uint32_t i = 0; i < slots && rc == NDL_OK; i++) {
        rc = sfile_put_u64(w, off, err);
        if (kept(snap, skip, i))
            off += snap->refs[i].len;
    }
    if (rc == NDL_OK)
        rc = sfile_put_u64(w, off, err);
    for (uint32_t i = 0; i < slots && rc == NDL_OK; i++)
        if (kept(snap, skip, i))
            rc = sfile_write(w, snap->refs[i].text, snap->refs[i].len, err);
    if (rc != NDL_OK) {
        sfile_abort(w);
        return rc;
    }
    return sfile_commit(w, err);
}

ndl_status payload_store_load(payload_store *s, const char *path, uint32_t slots, ndl_error *err)
{
    if (payload_store_count(s) != 0)
        return ndl_err(err, NDL_INTERNAL, "payload store is not empty");
    sfile_map map;
    ndl_status rc = sfile_map_open(path, PAYL_KIND, PAYL_VERSION, 1, &map, err);
    if (rc != NDL_OK)
        return rc;
    sfile_cursor cur;
    sfile_cursor_init(&cur, &map);
    uint32_t n = sfile_get_u32(&cur);
    sfile_get_u32(&cur);
    const uint8_t *offs = sfile_get_bytes(&cur, ((size_t)n + 1) * 8);
    if (cur.overrun || n != slots) {
        sfile_map_close(&map);
        return ndl_err(err, NDL_CORRUPT, "'%s' holds %u slots; the manifest says %u", path, n,
                       slots);
    }
    const char *texts = (const char *)cur.p;
    uint64_t area = (uint64_t)(cur.end - cur.p);
    uint64_t prev;
    prev = le_get64(offs);
    if (prev != 0)
        rc = ndl_err(err, NDL_CORRUPT, "'%s': the first payload offset is %llu, not 0", path,
                     (unsigned long long)prev);
    for (uint32_t i = 0; i < n && rc == NDL_OK; i++) {
        uint64_t next;
        next = le_get64(offs + ((size_t)i + 1) * 8);
        if (next < prev || next > area || next - prev > UINT32_MAX) {
            rc = ndl_err(err, NDL_CORRUPT, "'%s': slot %u has a bad payload offset %llu", path, i,
                         (unsigned long long)next);
            break;
        }
        uint32_t slot;
        void *rec;
        if ((rc = arena_reserve(&s->refs, &slot, &rec, err)) != NDL_OK)
            break;
        payload_ref r = {next > prev ? texts + prev : NULL, (uint32_t)(next - prev), 0};
        memcpy(rec, &r, sizeof r);
        arena_publish(&s->refs, slot + 1);
        prev = next;
    }
    if (rc == NDL_OK && prev != area)
        rc = ndl_err(err, NDL_CORRUPT, "'%s': %llu bytes follow the last payload", path,
                     (unsigned long long)(area - prev));
    if (rc != NDL_OK) { /* the refs dangle now: the caller destroys the store */
        sfile_map_close(&map);
        return rc;
    }
    s->map = map.base;
    s->map_len = map.len;
    return NDL_OK;
}

size_t payload_store_memory_bytes(const payload_store *s)
{
    size_t mapped = s->map ? s->map_len : 0;
    return arena_memory_bytes(&s->refs) + s->heap_bytes + mapped;
}
