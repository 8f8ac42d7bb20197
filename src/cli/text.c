/*
 * text.c -- UTF-8 helpers of text.h. Error messages quote what a damaged
 * file or a user held; raw bytes there could garble a terminal or make the
 * message itself invalid UTF-8, so they are shown escaped.
 */
#include "cli/text.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

size_t cli_utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t k;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        k = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        k = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        k = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    /* overlong forms, beyond Unicode, surrogates */
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k;
}

const char *cli_safe_text(const char *s, size_t n, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    size_t o = 0;
    while (p < end) {
        size_t k = cli_utf8_seq(p, end);
        int plain = k > 1 || (k == 1 && *p >= 0x20 && *p != 0x7f);
        size_t need = plain ? k : 4;
        if (o + need + 4 > cap) {  /* keep room for "..." and the NUL */
            memcpy(out + o, "...", 4);
            return out;
        }
        if (plain) {
            memcpy(out + o, p, k);
            o += k;
            p += k;
        } else {
            snprintf(out + o, 5, "\\x%02x", *p++);
            o += 4;
        }
    }
    out[o] = '\0';
    return out;
}
