/*
 * UTF-8 helpers for CESQL: character counting and offsets (LENGTH, LEFT,
 * RIGHT, SUBSTRING and LIKE's '_' work on characters, not bytes),
 * decoding/encoding for LOWER/UPPER, and the White_Space property for
 * TRIM. Event strings are valid UTF-8 when they passed validation; should
 * one not be, every invalid byte counts as one character, so nothing here
 * can fail or read out of bounds.
 */
#include "cloudevents/cesql_int.h"

uint32_t cs_utf8_decode(const char *str, size_t n, size_t *len, bool *ok)
{
    const unsigned char *s = (const unsigned char *)str;
    uint32_t c = s[0];
    *ok = true;
    *len = 1;
    if (c < 0x80)
        return c;
    size_t need;
    uint32_t min;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        min = 0x80;
        c &= 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        min = 0x800;
        c &= 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        min = 0x10000;
        c &= 0x07;
    } else {
        *ok = false;
        return s[0];
    }
    if (n < need + 1) {
        *ok = false;
        return s[0];
    }
    for (size_t i = 1; i <= need; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *ok = false;
            return s[0];
        }
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
        *ok = false;
        return s[0];
    }
    *len = need + 1;
    return c;
}

size_t cs_utf8_len(const char *s, size_t n)
{
    if ((unsigned char)s[0] < 0x80)
        return 1;
    size_t len;
    bool ok;
    cs_utf8_decode(s, n, &len, &ok);
    return len;
}

size_t cs_utf8_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t cs_utf8_count(const char *s, size_t n)
{
    size_t count = 0, i = 0;
    while (i < n) {
        /* fast path over ASCII */
        if ((unsigned char)s[i] < 0x80) {
            i++;
        } else {
            i += cs_utf8_len(s + i, n - i);
        }
        count++;
    }
    return count;
}

size_t cs_utf8_offset(const char *s, size_t n, size_t k)
{
    size_t i = 0;
    while (k > 0 && i < n) {
        i += cs_utf8_len(s + i, n - i);
        k--;
    }
    return i;
}

bool cs_utf8_valid(const char *s, size_t n, size_t *bad)
{
    size_t i = 0;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t len;
        bool ok;
        cs_utf8_decode(s + i, n - i, &len, &ok);
        if (!ok) {
            *bad = i;
            return false;
        }
        i += len;
    }
    return true;
}

/* Unicode White_Space (the set Go's unicode.IsSpace and TrimSpace use). */
bool cs_is_space(uint32_t cp)
{
    switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20:
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}
