/*
 * base.h -- the one internal shim header: compiler hints, error helpers and
 * small utilities shared by every module. Modules include this, never the
 * other way round.
 */
#ifndef NDL_UTIL_BASE_H
#define NDL_UTIL_BASE_H

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "needle.h"

#define NDL_LIKELY(x) __builtin_expect(!!(x), 1)
#define NDL_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define NDL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define NDL_MAX(a, b) ((a) > (b) ? (a) : (b))
#define NDL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define NDL_CACHELINE 64
#define NDL_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Fill err (if non-NULL) with status and a formatted message; returns status
 * so callers can write `return ndl_err(err, NDL_INVALID, "...")`. */
ndl_status ndl_err(ndl_error *err, ndl_status status, const char *fmt, ...) NDL_PRINTF(3, 4);

/* Monotonic clock in nanoseconds. */
uint64_t ndl_now_ns(void);

#endif
