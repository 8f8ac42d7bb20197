/*
 * space.c -- index_space_init: how a metric is stored and compared inside
 * indexes (kernel, kernel length, record size). Internal distances are
 * described in index.h.
 */
#include "index/index.h"

void index_space_init(index_space *s, ndl_metric metric, uint32_t dim)
{
    const simd_kernels *k = simd_get();
    s->metric = metric;
    s->dim = dim;
    s->n = dim;
    s->vec_bytes = (size_t)dim * sizeof(float);
    switch (metric) {
    case NDL_METRIC_L2:
        s->dist = k->l2sq_f32;
        break;
    case NDL_METRIC_COSINE: /* vectors are stored unit-normalized: rank by -dot */
    case NDL_METRIC_IP:
        s->dist = k->negdot_f32;
        break;
    case NDL_METRIC_L1:
        s->dist = k->l1_f32;
        break;
    case NDL_METRIC_HAMMING: /* dim bits packed into bytes; the kernel counts bytes */
        s->n = ((size_t)dim + 7) / 8;
        s->vec_bytes = s->n;
        s->dist = k->hamming_u8;
        break;
    default:
        assert(!"unknown metric");
        s->dist = k->l2sq_f32;
        break;
    }
}
