/*
 * json_out.c -- writing JSON values for the CLI's machine-readable output:
 * escaped strings, numbers in their shortest round-tripping form, and ids
 * (u64 ids as numbers, string ids as strings).
 */

#include "cli/cli.h"
#include "payload/json_print.h"

void cli_json_string(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        char esc[6];
        size_t n = json_escape((unsigned char)s[i], esc);
        if (n)
            fwrite(esc, 1, n, f);
        else
            fputc(s[i], f); /* ids are valid UTF-8 already */
    }
    fputc('"', f);
}

void cli_json_number(FILE *f, double v)
{
    char buf[32];
    size_t n = json_format_float((float)v, buf); /* the values are floats */
    fputs(n ? buf : "null", f); /* JSON has no NaN/Inf; the library never returns them */
}

void cli_json_id(FILE *f, const ndl_id *id)
{
    if (id->str)
        cli_json_string(f, id->str, id->len);
    else
        fprintf(f, "%llu", (unsigned long long)id->num);
}
