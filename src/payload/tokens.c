/* tokens.c -- the interim $text tokenizer (see tokens.h). */
#include "payload/tokens.h"

static bool in_word(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static unsigned char fold(unsigned char c) { return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c; }

bool token_next(const char *s, size_t len, size_t *pos, token_span *tok)
{
    size_t i = *pos;
    while (i < len && !in_word((unsigned char)s[i]))
        i++;
    if (i == len) {
        *pos = len;
        return false;
    }
    size_t start = i;
    while (i < len && in_word((unsigned char)s[i]))
        i++;
    tok->start = start;
    tok->len = i - start;
    *pos = i;
    return true;
}

size_t token_count(const char *s, size_t len)
{
    size_t n = 0;
    token_span t;
    for (size_t pos = 0; token_next(s, len, &pos, &t);)
        n++;
    return n;
}

void token_fold(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)fold((unsigned char)src[i]);
}

bool token_equal_folded(const char *s, size_t n, const char *folded, size_t m)
{
    if (n != m)
        return false;
    for (size_t i = 0; i < n; i++)
        if (fold((unsigned char)s[i]) != (unsigned char)folded[i])
            return false;
    return true;
}
