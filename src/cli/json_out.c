/*
 * json_out.c -- writing JSON values for the CLI's machine-readable output:
 * escaped strings, numbers in their shortest round-tripping form, and ids
 * (u64 ids as numbers, string ids as strings).
 */
#include <math.h>
#include <stdlib.h>

#include "cli/cli.h"

void cli_json_string(FILE *f, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                fprintf(f, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
            } else {
                fputc(c, f);  /* ids are valid UTF-8 already */
            }
        }
    }
    fputc('"', f);
}

void cli_json_number(FILE *f, double v)
{
    if (!isfinite(v)) {
        fputs("null", f);  /* JSON has no NaN/Inf; the library never returns them */
        return;
    }
    /* The values are floats: find the fewest digits that read back exactly. */
    float target = (float)v;
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)target);
        if (strtof(buf, NULL) == target)
            break;
    }
    fputs(buf, f);
}

void cli_json_id(FILE *f, const ndl_id *id)
{
    if (id->str)
        cli_json_string(f, id->str, id->len);
    else
        fprintf(f, "%llu", (unsigned long long)id->num);
}
