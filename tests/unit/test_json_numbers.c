/*
 * test_json_numbers.c -- the hot-path number text of src/payload against
 * the C library it replaces: json_read_number must give exactly what
 * jansson would (strtod for reals, int64 for integers) and refuse what
 * jansson refuses; json_format_float9 must write exactly snprintf's
 * "%.9g". Random values (fixed seeds) plus the edges: ties at the ninth
 * digit, rounding that carries into a new digit, the switch points of %g,
 * the float range's ends and the fast path's limits.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_rand.h"

#include "payload/json_number.h"
#include "payload/json_print.h"


/* ---------------------------------------------------------------- reading */

/* s must read whole, to exactly strtod's double (bit for bit). */
static void expect_real(const char *s)
{
    double d = 12345, ref = strtod(s, NULL);
    const char *end = json_read_number(s, s + strlen(s), &d);
    if (!end || *end || memcmp(&d, &ref, sizeof d) != 0)
        fail_msg("'%s': read %.17g (%s), strtod %.17g", s, d, end ? "whole" : "refused", ref);
}

/* s must read whole, to (double) of its int64 value. */
static void expect_integer(const char *s)
{
    double d = 12345, ref = (double)strtoll(s, NULL, 10);
    const char *end = json_read_number(s, s + strlen(s), &d);
    if (!end || *end || memcmp(&d, &ref, sizeof d) != 0)
        fail_msg("'%s': read %.17g (%s), int64 %.17g", s, d, end ? "whole" : "refused", ref);
}

static void expect_refused(const char *s)
{
    double d;
    if (json_read_number(s, s + strlen(s), &d))
        fail_msg("'%s' read as %.17g; jansson refuses it", s, d);
}

static void test_read_edges(void **state)
{
    (void)state;
    const char *reals[] = {"0.0", "-0.0", "0e0", "-0e-5", "1.5", "-2.25", "0.1", "0.6",
                           "0.600000024", "1e22", "1e23", "9007199254740993.0",
                           "9007199254740992e-5", "123456789012345678901234567890.5",
                           "0.000000000000000000000000000000000000000000001", "1e-400",
                           "4.9406564584124654e-324", "2.2250738585072011e-308",
                           "1.7976931348623157e308", "3.4028234663852886e+38",
                           "1.17549435e-38", "1E+2", "1e-22", "1e-23", "7.0e-10",
                           "0.30000000000000004", "123.456e-7", "1e0000000000000000001"};
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++)
        expect_real(reals[i]);
    const char *ints[] = {"0", "-0", "7", "-7", "123456789012345678", "999999999999999999",
                          "9223372036854775807", "-9223372036854775808", "9007199254740993"};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        expect_integer(ints[i]);
    /* outside JSON's grammar, or what jansson refuses */
    const char *bad[] = {"", "-", "+1", ".5", "1.", "1.e5", "1e", "1e+", "-x", "NaN",
                         "Infinity", "9223372036854775808", "-9223372036854775809",
                         "1e309", "-1e400000"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_refused(bad[i]);
}

static void test_read_stops_at_the_number(void **state)
{
    (void)state;
    const char s[] = "-12.5e1,3]";
    double d;
    const char *end = json_read_number(s, s + strlen(s), &d);
    assert_non_null(end);
    assert_int_equal(end - s, 7);
    assert_true(d == -125.0);
    /* the end bound is respected: "1.5" cut after "1." is not a number */
    assert_null(json_read_number(s + 1, s + 4, &d));
    end = json_read_number(s + 1, s + 3, &d); /* "12" */
    assert_non_null(end);
    assert_true(d == 12.0);
    /* a leading zero ends the number: "01" is 0 and then a stray 1, which
     * the caller's grammar refuses */
    const char z[] = "01";
    end = json_read_number(z, z + 2, &d);
    assert_ptr_equal(end, z + 1);
    assert_true(d == 0.0);
}

static void test_read_random(void **state)
{
    (void)state;
    char s[64];
    for (int i = 0; i < 200000; i++) {
        uint64_t r = rnd();
        switch (i % 4) {
        case 0: { /* floats as a server's clients print them */
            uint32_t bits = (uint32_t)r;
            float f;
            memcpy(&f, &bits, sizeof f);
            if (!isfinite(f))
                continue;
            snprintf(s, sizeof s, "%.9g", (double)f);
            break;
        }
        case 1: { /* any double, shortest-exact */
            double d;
            memcpy(&d, &r, sizeof d);
            if (!isfinite(d))
                continue;
            snprintf(s, sizeof s, "%.17g", d);
            break;
        }
        case 2: /* short decimals, some past the fast path's 2^53 / 10^22 */
            snprintf(s, sizeof s, "%s%llu.%llue%d", r & 1 ? "-" : "",
                     (unsigned long long)(r >> 40), (unsigned long long)((r >> 8) & 0xffffff),
                     (int)((r >> 2) % 64) - 32);
            break;
        default: /* integers up to 19 digits */
            snprintf(s, sizeof s, "%lld", (long long)((r >> (r & 63)) >> 1) * (r & 2 ? -1 : 1));
            expect_integer(s);
            continue;
        }
        if (!strchr(s, '.') && !strchr(s, 'e')) /* %g may print an integer */
            expect_integer(s);
        else
            expect_real(s);
    }
}

/* ---------------------------------------------------------------- printing */

static void expect_g9(float f)
{
    char got[32], want[32];
    size_t n = json_format_float9(f, got);
    int m = snprintf(want, sizeof want, "%.9g", (double)f);
    if (n != (size_t)m || strcmp(got, want) != 0)
        fail_msg("%a: wrote '%s', %%.9g writes '%s'", (double)f, n ? got : "", want);
}

static void test_format_edges(void **state)
{
    (void)state;
    const float edges[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 0.1f, 0.6f, 1e-4f, 9.99999e-5f,
                           1e-5f, 123456789.0f, 999999999.0f, 1e9f, 1.5e9f, 4294967296.0f,
                           99999.99f, 0.00012345678f, 6.103515625e-05f, /* a tie at digit 10 */
                           FLT_MAX, -FLT_MAX, FLT_MIN, FLT_TRUE_MIN, 1e-38f, 1e38f, 16777216.0f,
                           16777217.0f, 100000000.0f, 1000000000.0f, 9.9999999e8f, 3.0517578125e-05f,
                           4.76837158203125e-07f, 9.5367431640625e-07f, 2e-7f, 1.9073486328125e-06f};
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++)
        expect_g9(edges[i]);
    /* every power of two a float holds, and its neighbours */
    for (int e = -149; e <= 127; e++) {
        float f = ldexpf(1.0f, e);
        expect_g9(f);
        expect_g9(nextafterf(f, 0.0f));
        expect_g9(nextafterf(f, INFINITY));
    }
    /* every power of ten, and a hair either side (the %g switch points) */
    for (int e = -45; e <= 38; e++) {
        float f = (float)pow(10.0, e);
        expect_g9(f);
        expect_g9(nextafterf(f, 0.0f));
        expect_g9(nextafterf(f, INFINITY));
    }
    char buf[32];
    assert_int_equal(json_format_float9(NAN, buf), 0);
    assert_int_equal(json_format_float9(INFINITY, buf), 0);
    assert_int_equal(json_format_float9(-INFINITY, buf), 0);
}

static void test_format_random(void **state)
{
    (void)state;
    for (int i = 0; i < 1000000; i++) {
        uint32_t bits = (uint32_t)rnd();
        float f;
        memcpy(&f, &bits, sizeof f);
        if (isfinite(f))
            expect_g9(f);
    }
    /* the values scores and distances take: small magnitudes, dense */
    for (int i = 0; i < 300000; i++) {
        float f = (float)((double)(rnd() >> 11) / 9007199254740992.0 * 4.0 - 2.0);
        expect_g9(f);
        expect_g9(f * 1000.0f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_edges),
        cmocka_unit_test(test_read_stops_at_the_number),
        cmocka_unit_test(test_read_random),
        cmocka_unit_test(test_format_edges),
        cmocka_unit_test(test_format_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
