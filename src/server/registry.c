/*
 * registry.c -- the server's open collections. Every collection of the
 * database is opened at start (so /metrics and the first search need no
 * open); a collection that does not open (damaged) is left out, and so is
 * one whose failed drop could not reopen it; while any is, a name missing
 * from the registry is looked for on disk, so its request gets the open's
 * error (otherwise a miss is a 404 at once). A
 * handler borrows a handle for its length. The registry's mutex guards
 * only the list and the counts, never a disk operation: a create reserves
 * its name (CREATING) and builds the collection unlocked; a drop marks the
 * entry (DROPPING), waits until nobody borrows it, then closes and drops
 * it unlocked. So a slow create or drop holds up no other collection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"

typedef enum { READY, CREATING, DROPPING } entry_state;

typedef struct entry {
    char name[NDL_NAME_MAX + 1];
    ndl_collection *c;  /* NULL while CREATING */
    uint32_t dim;       /* fixed for a collection's life */
    int users;
    entry_state state;
    struct entry *next;
} entry;

struct registry {
    ndl_db *db;
    pthread_mutex_t lock;
    pthread_cond_t released;
    entry *head; /* sorted by name */
    int left_out; /* collections not open but on disk: look there for a miss */
};

static ndl_status fail(ndl_error *err, ndl_status st, const char *fmt, const char *name)
{
    err->status = st;
    snprintf(err->msg, sizeof err->msg, fmt, name);
    return st;
}

/* The place of name in the sorted list: *p is its entry or the next one. */
static entry **find(registry *g, const char *name)
{
    entry **p = &g->head;
    while (*p && strcmp((*p)->name, name) < 0)
        p = &(*p)->next;
    return p;
}

static entry *lookup(registry *g, const char *name)
{
    entry *e = *find(g, name);
    return e && strcmp(e->name, name) == 0 ? e : NULL;
}

static void set_ready(entry *e, ndl_collection *c)
{
    ndl_collection_info info;
    e->c = c;
    e->dim = ndl_collection_info_get(c, &info, NULL) == NDL_OK ? info.config.dimension : 0;
    e->state = READY;
}

/* A new entry for name (lock held); NULL when out of memory. */
static entry *insert(registry *g, const char *name, entry_state state)
{
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    snprintf(e->name, sizeof e->name, "%s", name);
    e->state = state;
    entry **p = find(g, name);
    e->next = *p;
    *p = e;
    return e;
}

static void unlink_entry(registry *g, entry *e)
{
    entry **p = find(g, e->name);
    *p = e->next;
    free(e);
}

ndl_status registry_open(ndl_db *db, registry **out, ndl_error *err)
{
    registry *g = calloc(1, sizeof *g);
    if (!g)
        return fail(err, NDL_NOMEM, "out of memory%s", "");
    g->db = db;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->released, NULL);
    char **names = NULL;
    size_t n = 0;
    ndl_status rc = ndl_collection_list(db, &names, &n, err);
    for (size_t i = 0; rc == NDL_OK && i < n; i++) {
        ndl_collection *c;
        ndl_error e_open;
        if (ndl_collection_open(db, names[i], &c, &e_open) != NDL_OK) {
            /* a damaged collection must not keep the others from serving:
             * it is left out, and a request for it gets its open error */
            fprintf(stderr, "needle: collection '%s' is not served: %s\n", names[i], e_open.msg);
            g->left_out++;
            continue;
        }
        entry *e = insert(g, names[i], READY);
        if (!e) {
            ndl_collection_close(c, NULL);
            rc = fail(err, NDL_NOMEM, "out of memory%s", "");
        } else {
            set_ready(e, c);
        }
    }
    ndl_free(names);
    if (rc != NDL_OK) {
        registry_close(g, NULL);
        return rc;
    }
    *out = g;
    return NDL_OK;
}

void registry_close(registry *g, ndl_error *first_err)
{
    if (!g)
        return;
    for (entry *e = g->head, *next; e; e = next) {
        next = e->next;
        ndl_error local;
        if (e->c && ndl_collection_close(e->c, &local) != NDL_OK && first_err &&
            first_err->status == NDL_OK)
            *first_err = local;
        free(e);
    }
    pthread_cond_destroy(&g->released);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

ndl_collection *registry_get(srv_req *r, const char *name)
{
    registry *g = r->srv->reg;
    if (!name_ok(r, name))
        return NULL;
    pthread_mutex_lock(&g->lock);
    entry *e = lookup(g, name);
    if (!e && g->left_out) { /* maybe one left out: open it now */
        pthread_mutex_unlock(&g->lock);
        ndl_collection *c;
        ndl_error err;
        ndl_status st = ndl_collection_open(g->db, name, &c, &err);
        if (st == NDL_NOT_FOUND) {
            reply_error(r, 404, "not_found", "collection '%s' does not exist", name);
            return NULL;
        }
        if (st != NDL_OK) {
            reply_lib(r, &err);
            return NULL;
        }
        pthread_mutex_lock(&g->lock);
        if (!(e = lookup(g, name)) && (e = insert(g, name, READY)))
            set_ready(e, c);
        else
            ndl_collection_close(c, NULL); /* another request opened it meanwhile */
    }
    ndl_collection *c = NULL;
    if (e && e->state == READY) {
        e->users++;
        c = e->c;
        r->dim = e->dim;
    }
    pthread_mutex_unlock(&g->lock);
    if (!c)
        reply_error(r, 404, "not_found", "collection '%s' does not exist", name);
    return c;
}

static void release(registry *g, const char *name)
{
    pthread_mutex_lock(&g->lock);
    entry *e = lookup(g, name);
    if (e && --e->users == 0)
        pthread_cond_broadcast(&g->released);
    pthread_mutex_unlock(&g->lock);
}

void registry_put(srv_req *r, const char *name) { release(r->srv->reg, name); }

ndl_status registry_create(registry *g, const char *name, const ndl_collection_config *cfg,
                           ndl_error *err)
{
    pthread_mutex_lock(&g->lock);
    entry *e = lookup(g, name);
    if (e) {
        pthread_mutex_unlock(&g->lock);
        return e->state == READY
                   ? fail(err, NDL_EXISTS, "collection '%s' already exists", name)
                   : fail(err, NDL_BUSY, "collection '%s' is being created or dropped", name);
    }
    e = insert(g, name, CREATING); /* the name is reserved; the disk work runs unlocked */
    pthread_mutex_unlock(&g->lock);
    if (!e)
        return fail(err, NDL_NOMEM, "out of memory%s", "");
    ndl_collection *c;
    ndl_status rc = ndl_collection_create(g->db, name, cfg, &c, err);
    pthread_mutex_lock(&g->lock);
    if (rc == NDL_OK)
        set_ready(e, c);
    else
        unlink_entry(g, e);
    pthread_mutex_unlock(&g->lock);
    return rc;
}

ndl_status registry_drop(registry *g, const char *name, ndl_error *err)
{
    pthread_mutex_lock(&g->lock);
    entry *e = lookup(g, name);
    if (!e || e->state == DROPPING) {
        pthread_mutex_unlock(&g->lock);
        /* not open here: the library says whether it exists */
        return e ? fail(err, NDL_NOT_FOUND, "collection '%s' does not exist", name)
                 : ndl_collection_drop(g->db, name, err);
    }
    if (e->state == CREATING) {
        pthread_mutex_unlock(&g->lock);
        return fail(err, NDL_BUSY, "collection '%s' is being created", name);
    }
    e->state = DROPPING; /* no new borrowers; creates of the name answer busy */
    while (e->users > 0)
        pthread_cond_wait(&g->released, &g->lock);
    ndl_collection *c = e->c;
    e->c = NULL;
    pthread_mutex_unlock(&g->lock);
    ndl_collection_close(c, NULL); /* its checkpoint is thrown away next */
    ndl_status rc = ndl_collection_drop(g->db, name, err);
    ndl_collection *again = NULL;
    if (rc != NDL_OK && ndl_collection_open(g->db, name, &again, NULL) != NDL_OK)
        again = NULL; /* left out: the next request for it opens it */
    pthread_mutex_lock(&g->lock);
    if (again) {
        set_ready(e, again);
    } else {
        unlink_entry(g, e);
        g->left_out += rc != NDL_OK; /* still on disk, not open */
    }
    pthread_mutex_unlock(&g->lock);
    return rc;
}

void registry_each(registry *g, void (*fn)(void *ctx, const char *name, ndl_collection *c),
                   void *ctx)
{
    /* borrow every ready collection under the lock, call fn without it */
    pthread_mutex_lock(&g->lock);
    size_t n = 0;
    for (entry *e = g->head; e; e = e->next)
        n += e->state == READY;
    entry **all = malloc((n ? n : 1) * sizeof *all);
    size_t k = 0;
    for (entry *e = g->head; all && e; e = e->next)
        if (e->state == READY) {
            e->users++;
            all[k++] = e;
        }
    pthread_mutex_unlock(&g->lock);
    for (size_t i = 0; i < k; i++)
        fn(ctx, all[i]->name, all[i]->c); /* a borrowed entry is not freed */
    for (size_t i = 0; i < k; i++)
        release(g, all[i]->name);
    free(all);
}
