/* path.c -- dotted names and their walk through a payload (path.h). */
#include "payload/path.h"

#include <string.h>

bool path_has_empty_part(const char *dotted)
{
    size_t len = strlen(dotted);
    return len && (dotted[0] == '.' || dotted[len - 1] == '.' || strstr(dotted, ".."));
}

uint32_t path_part_count(const char *dotted)
{
    uint32_t n = 1;
    for (; *dotted; dotted++)
        n += *dotted == '.';
    return n;
}

void path_split(const char *dotted, char *buf, const char **parts)
{
    size_t len = strlen(dotted);
    memcpy(buf, dotted, len + 1);
    parts[0] = buf;
    for (size_t i = 0, k = 1; i < len; i++)
        if (buf[i] == '.') {
            buf[i] = '\0';
            parts[k++] = buf + i + 1;
        }
}

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
