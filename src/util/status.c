/* status.c -- names and messages of ndl_status, generated from NDL_STATUS_MAP,
 * and the error-detail helper. */
#include <stdio.h>
#include <time.h>

#include "util/base.h"

NDL_API const char *ndl_status_name(ndl_status s)
{
    switch (s) {
#define NAME_CASE(name, value, code, msg) case NDL_##name: return code;
        NDL_STATUS_MAP(NAME_CASE)
#undef NAME_CASE
    }
    return "unknown";
}

NDL_API const char *ndl_status_str(ndl_status s)
{
    switch (s) {
#define MSG_CASE(name, value, code, msg) case NDL_##name: return msg;
        NDL_STATUS_MAP(MSG_CASE)
#undef MSG_CASE
    }
    return "unknown status";
}

NDL_API const char *ndl_version(void) { return NDL_VERSION_STRING; }

ndl_status ndl_err(ndl_error *err, ndl_status status, const char *fmt, ...)
{
    if (err) {
        err->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return status;
}

uint64_t ndl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
