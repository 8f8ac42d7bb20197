/* date.c -- ISO-8601 instants to epoch milliseconds (see date.h). */
#include "payload/date.h"

/* Reads exactly n digits at s[*i..] into *out; false if any is not a digit
 * or the text ends first. */
static bool digits(const char *s, size_t len, size_t *i, int n, int *out)
{
    if (len - *i < (size_t)n)
        return false;
    int v = 0;
    for (int k = 0; k < n; k++) {
        char c = s[*i + (size_t)k];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *i += (size_t)n;
    *out = v;
    return true;
}

static bool byte_is(const char *s, size_t len, size_t i, char c) { return i < len && s[i] == c; }

static bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), after Howard
 * Hinnant's days_from_civil: years start in March so the leap day is last. */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                  /* [0, 399] */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

/* The zone at s[*i..] (which is not empty) in minutes east of UTC. */
static bool zone(const char *s, size_t len, size_t *i, int *minutes)
{
    char c = s[*i];
    if (c == 'Z' || c == 'z') {
        (*i)++;
        *minutes = 0;
        return true;
    }
    if (c != '+' && c != '-')
        return false;
    (*i)++;
    int hh = 0, mm = 0;
    if (!digits(s, len, i, 2, &hh))
        return false;
    if (byte_is(s, len, *i, ':'))
        (*i)++;
    if (!digits(s, len, i, 2, &mm) || hh > 23 || mm > 59)
        return false;
    *minutes = (c == '-' ? -1 : 1) * (hh * 60 + mm);
    return true;
}

bool iso8601_parse(const char *s, size_t len, int64_t *ms_utc)
{
    size_t i = 0;
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, ms = 0, offset = 0;
    if (!digits(s, len, &i, 4, &y) || !byte_is(s, len, i++, '-') || !digits(s, len, &i, 2, &mo) ||
        !byte_is(s, len, i++, '-') || !digits(s, len, &i, 2, &d))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return false;
    if (i < len) {
        if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
            return false;
        i++;
        if (!digits(s, len, &i, 2, &h) || !byte_is(s, len, i++, ':') || !digits(s, len, &i, 2, &mi))
            return false;
        if (byte_is(s, len, i, ':')) {
            i++;
            if (!digits(s, len, &i, 2, &sec))
                return false;
            if (byte_is(s, len, i, '.')) {
                int n = 0;
                for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, n++)
                    if (n < 3)
                        ms = ms * 10 + (s[i] - '0');
                if (n == 0 || n > 9)
                    return false;
                for (; n < 3; n++)
                    ms *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 59)
            return false;
        if (i < len && !zone(s, len, &i, &offset))
            return false;
        if (i != len)
            return false;
    }
    int64_t minutes = days_from_civil(y, mo, d) * 1440 + h * 60 + mi - offset;
    *ms_utc = (minutes * 60 + sec) * 1000 + ms;
    return true;
}
