/* filter_value.c -- scalars of filters and payloads, and their one order
 * (see filter.h): what $eq, $in and the range operators compare with. */
#include <math.h>
#include <string.h>

#include "payload/filter.h"

bool filter_value_of_json(const json_t *j, filter_value *out)
{
    memset(out, 0, sizeof *out);
    switch (json_typeof(j)) {
    case JSON_NULL: out->type = FILTER_VALUE_NULL; return true;
    case JSON_TRUE:
    case JSON_FALSE:
        out->type = FILTER_VALUE_BOOL;
        out->boolean = json_is_true(j);
        return true;
    case JSON_INTEGER:
        out->type = FILTER_VALUE_NUMBER;
        out->is_integer = true;
        out->integer = json_integer_value(j);
        out->number = (double)out->integer;
        return true;
    case JSON_REAL:
        out->type = FILTER_VALUE_NUMBER;
        out->number = json_real_value(j);
        return true;
    case JSON_STRING:
        out->type = FILTER_VALUE_STRING;
        out->str = json_string_value(j);
        out->len = json_string_length(j);
        return true;
    case JSON_ARRAY:
    case JSON_OBJECT: return false;
    }
    return false;
}

static int sign(double d) { return (d > 0) - (d < 0); }

/* i <=> d exactly (a double beyond 2^53 is not rounded to i's neighbours
 * and back). d is finite: jansson refuses NaN and infinities. */
static int cmp_int_double(int64_t i, double d)
{
    if (d >= 9223372036854775808.0) /* 2^63 */
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    double whole = trunc(d);
    int64_t w = (int64_t)whole; /* exact: |whole| < 2^63 */
    if (i != w)
        return i < w ? -1 : 1;
    return -sign(d - whole); /* i == whole: the fraction decides */
}

static int cmp_numbers(const filter_value *a, const filter_value *b)
{
    if (a->is_integer && b->is_integer)
        return (a->integer > b->integer) - (a->integer < b->integer);
    if (a->is_integer)
        return cmp_int_double(a->integer, b->number);
    if (b->is_integer)
        return -cmp_int_double(b->integer, a->number);
    return (a->number > b->number) - (a->number < b->number);
}

int filter_value_cmp(const filter_value *a, const filter_value *b)
{
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    switch (a->type) {
    case FILTER_VALUE_NULL: return 0;
    case FILTER_VALUE_BOOL: return (int)a->boolean - (int)b->boolean;
    case FILTER_VALUE_NUMBER: return cmp_numbers(a, b);
    case FILTER_VALUE_STRING: {
        int c = memcmp(a->str, b->str, NDL_MIN(a->len, b->len));
        if (c != 0)
            return c < 0 ? -1 : 1;
        return (a->len > b->len) - (a->len < b->len);
    }
    }
    return 0;
}
