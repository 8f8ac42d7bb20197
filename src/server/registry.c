/*
 * registry.c -- the server's open collections. Every collection of the
 * database is opened at start (so /metrics and the first search need no
 * open); a handler borrows a handle for its length; a drop marks the entry,
 * waits until nobody borrows it, closes it (which checkpoints) and drops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"

typedef struct entry {
    char name[NDL_NAME_MAX + 1];
    ndl_collection *c;
    uint32_t dim;     /* fixed for a collection's life; info_get takes its write lock */
    int users;
    bool dropping;
    struct entry *next;
} entry;

struct registry {
    ndl_db *db;
    pthread_mutex_t lock;
    pthread_cond_t released;
    entry *head; /* sorted by name */
};

static entry **find(registry *g, const char *name)
{
    entry **p = &g->head;
    while (*p && strcmp((*p)->name, name) < 0)
        p = &(*p)->next;
    return p;
}

static uint32_t collection_dim(ndl_collection *c)
{
    ndl_collection_info info;
    return ndl_collection_info_get(c, &info, NULL) == NDL_OK ? info.config.dimension : 0;
}

static ndl_status add(registry *g, const char *name, ndl_collection *c, ndl_error *err)
{
    entry *e = calloc(1, sizeof *e);
    if (!e) {
        ndl_collection_close(c, NULL);
        err->status = NDL_NOMEM;
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return NDL_NOMEM;
    }
    snprintf(e->name, sizeof e->name, "%s", name);
    e->c = c;
    e->dim = collection_dim(c);
    entry **p = find(g, name);
    e->next = *p;
    *p = e;
    return NDL_OK;
}

ndl_status registry_open(ndl_db *db, registry **out, ndl_error *err)
{
    registry *g = calloc(1, sizeof *g);
    if (!g) {
        err->status = NDL_NOMEM;
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return NDL_NOMEM;
    }
    g->db = db;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->released, NULL);
    char **names = NULL;
    size_t n = 0;
    ndl_status rc = ndl_collection_list(db, &names, &n, err);
    for (size_t i = 0; rc == NDL_OK && i < n; i++) {
        ndl_collection *c;
        if ((rc = ndl_collection_open(db, names[i], &c, err)) == NDL_OK)
            rc = add(g, names[i], c, err);
    }
    if (names)
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
        if (ndl_collection_close(e->c, &local) != NDL_OK && first_err &&
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
    entry *e = *find(g, name);
    ndl_collection *c = NULL;
    if (e && strcmp(e->name, name) == 0 && !e->dropping) {
        e->users++;
        c = e->c;
        r->dim = e->dim;
    }
    pthread_mutex_unlock(&g->lock);
    if (!c)
        reply_error(r, 404, "not_found", "collection '%s' does not exist", name);
    return c;
}

void registry_put(srv_req *r, const char *name)
{
    registry *g = r->srv->reg;
    pthread_mutex_lock(&g->lock);
    entry *e = *find(g, name);
    if (e && strcmp(e->name, name) == 0 && --e->users == 0)
        pthread_cond_broadcast(&g->released);
    pthread_mutex_unlock(&g->lock);
}

ndl_status registry_create(registry *g, const char *name, const ndl_collection_config *cfg,
                           ndl_error *err)
{
    pthread_mutex_lock(&g->lock);
    ndl_collection *c;
    entry *e = *find(g, name);
    ndl_status rc;
    if (e && strcmp(e->name, name) == 0) {
        err->status = rc = e->dropping ? NDL_BUSY : NDL_EXISTS;
        snprintf(err->msg, sizeof err->msg, "collection '%s' %s", name,
                 e->dropping ? "is being dropped" : "already exists");
    } else if ((rc = ndl_collection_create(g->db, name, cfg, &c, err)) == NDL_OK) {
        rc = add(g, name, c, err);
    }
    pthread_mutex_unlock(&g->lock);
    return rc;
}

ndl_status registry_drop(registry *g, const char *name, ndl_error *err)
{
    pthread_mutex_lock(&g->lock);
    entry **p = find(g, name), *e = *p;
    ndl_status rc = NDL_OK;
    if (!e || strcmp(e->name, name) != 0 || e->dropping) {
        err->status = rc = NDL_NOT_FOUND;
        snprintf(err->msg, sizeof err->msg, "collection '%s' does not exist", name);
    } else {
        e->dropping = true;
        while (e->users > 0)
            pthread_cond_wait(&g->released, &g->lock);
        ndl_collection_close(e->c, NULL); /* its checkpoint is thrown away next */
        e->c = NULL;
        rc = ndl_collection_drop(g->db, name, err);
        p = find(g, name); /* the list may have changed while waiting */
        if (rc == NDL_OK) {
            *p = e->next;
            free(e);
        } else { /* still there: open it again */
            ndl_error e2;
            e->dropping = false;
            if (ndl_collection_open(g->db, name, &e->c, &e2) != NDL_OK) {
                *p = e->next;
                free(e);
            }
        }
    }
    pthread_mutex_unlock(&g->lock);
    return rc;
}

void registry_each(registry *g, void (*fn)(void *ctx, const char *name, ndl_collection *c),
                   void *ctx)
{
    pthread_mutex_lock(&g->lock);
    for (entry *e = g->head; e; e = e->next)
        if (!e->dropping && e->c)
            fn(ctx, e->name, e->c);
    pthread_mutex_unlock(&g->lock);
}
