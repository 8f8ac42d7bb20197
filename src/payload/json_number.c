/* json_number.c -- a JSON number as jansson reads it (see json_number.h). */
#include "payload/json_number.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Powers of ten a double holds exactly (10^22 < 2^53 * 2^22 still is). */
static const double exact_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static bool is_digit(const char *p, const char *end) { return p < end && *p >= '0' && *p <= '9'; }

/* The slow way, for what the fast path cannot do exactly. */
static bool read_slow(const char *s, const char *e, bool integer, double *out)
{
    char tmp[512];
    if ((size_t)(e - s) >= sizeof tmp)
        return false;
    memcpy(tmp, s, (size_t)(e - s));
    tmp[e - s] = '\0';
    errno = 0;
    if (integer) { /* jansson keeps integers as int64 */
        long long v = strtoll(tmp, NULL, 10);
        if (errno == ERANGE)
            return false;
        *out = (double)v;
        return true;
    }
    *out = strtod(tmp, NULL);
    return isfinite(*out);
}

const char *json_read_number(const char *p, const char *end, double *out)
{
    const char *s = p;
    bool neg = false, integer = true, exact = true;
    uint64_t mant = 0; /* the significant digits read, while they fit */
    int digits = 0;    /* significant digits in mant (leading zeros not counted) */
    int exp10 = 0;     /* the value is mant * 10^exp10 */
    if (p < end && *p == '-') {
        neg = true;
        p++;
    }
    if (p < end && *p == '0') {
        p++;
    } else if (is_digit(p, end)) {
        for (; is_digit(p, end); p++) {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                digits += mant != 0;
            } else {
                exact = false;
            }
        }
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        integer = false;
        if (!is_digit(++p, end))
            return NULL;
        for (; is_digit(p, end); p++) {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                digits += mant != 0;
                exp10--;
            } else {
                exact = false;
            }
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integer = false;
        bool eneg = false;
        if (++p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (!is_digit(p, end))
            return NULL;
        int e = 0;
        for (; is_digit(p, end); p++)
            if (e < 100000)
                e = e * 10 + (*p - '0');
        exp10 += eneg ? -e : e;
    }
    if (exact && integer && digits <= 18) {
        *out = (double)(neg ? -(int64_t)mant : (int64_t)mant);
        return p;
    }
    if (exact && !integer && mant <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        double d = (double)mant; /* exact; one rounding below, as strtod's */
        d = exp10 < 0 ? d / exact_pow10[-exp10] : d * exact_pow10[exp10];
        *out = neg ? -d : d;
        return p;
    }
    return read_slow(s, p, integer, out) ? p : NULL;
}
