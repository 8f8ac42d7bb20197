/* path.c -- the walk of a dotted path through a payload (path.h). */
#include "payload/path.h"

bool path_walk(const json_t *v, const char *const *parts, uint32_t nparts, path_visit visit,
               void *ctx)
{
    if (nparts == 0)
        return visit(ctx, v);
    if (json_is_object(v))
        return path_walk(json_object_get(v, parts[0]), parts + 1, nparts - 1, visit, ctx);
    if (json_is_array(v)) { /* into every element that is an object */
        for (size_t k = 0, len = json_array_size(v); k < len; k++) {
            const json_t *e = json_array_get(v, k);
            if (json_is_object(e) && path_walk(e, parts, nparts, visit, ctx))
                return true;
        }
        return false;
    }
    return visit(ctx, NULL); /* a scalar, a missing key or no payload */
}
