/*
 * date.h -- ISO-8601 instants as the filter language reads them (SPEC §4:
 * {"published":{"$gte":"2024-01-01T00:00:00Z"}}), in epoch milliseconds.
 *
 * Accepted, and nothing else (no leading or trailing text, no blanks):
 *   YYYY-MM-DD                               midnight UTC
 *   YYYY-MM-DDTHH:MM[:SS[.f]][zone]          'T', 't' or one space between
 *                                            date and time
 * f is 1 to 9 digits, kept to the millisecond (truncated, not rounded);
 * zone is Z, z, +HH:MM, -HH:MM, +HHMM or -HHMM (hours 00-23, minutes 00-59);
 * a time without a zone is UTC. Years 0000-9999 of the proleptic Gregorian
 * calendar (so year 0 is a leap year), months 01-12, days within the month,
 * hours 00-23, minutes and seconds 00-59: a leap second (:60) is refused,
 * since an instant cannot say which of its two seconds it meant.
 *
 * Pure arithmetic (days from the civil date), no timegm: independent of the
 * locale and the TZ variable, and thread-safe.
 */
#ifndef NDL_PAYLOAD_DATE_H
#define NDL_PAYLOAD_DATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True, with *ms_utc = milliseconds since 1970-01-01T00:00:00Z (negative
 * before), if s[0..len) is one of the forms above; else false and *ms_utc
 * untouched. */
bool iso8601_parse(const char *s, size_t len, int64_t *ms_utc);

#endif
