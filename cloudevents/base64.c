/*
 * Base64 (RFC 4648 section 4, standard alphabet, with padding). Decoding is
 * strict: no whitespace, length a multiple of 4, padding only at the end.
 */
#include <stdint.h>

#include "cloudevents/cloudevents.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63 for alphabet characters, 64 for '=', -1 otherwise. */
static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return c == '=' ? 64 : -1;
}

/* Appends the encoding of p[0..n) to out. CE_ENOMEM on failure. */
int ce_base64_encode(ce_buf *out, const void *p, size_t n)
{
    const unsigned char *s = p;
    if (ce_buf_reserve(out, (n + 2) / 3 * 4) != CE_OK)
        return CE_ENOMEM;
    char *o = out->data + out->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = b64_alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    out->len = (size_t)(o - out->data);
    *o = '\0';
    return CE_OK;
}

/* Appends the decoded bytes of s[0..n) to out. CE_EPARSE (offset = the
 * position of the bad character) on invalid input; out is then unchanged. */
int ce_base64_decode(ce_buf *out, const char *s, size_t n, ce_err *err)
{
    if (n % 4 != 0)
        return ce_err_set(err, CE_EPARSE, "", (long)n,
                          "base64: length %zu is not a multiple of 4", n);
    if (ce_buf_reserve(out, n / 4 * 3) != CE_OK)
        return ce_err_set(err, CE_ENOMEM, "", -1, "out of memory");
    unsigned char *o = (unsigned char *)out->data + out->len;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        size_t pad = 0;
        for (int k = 0; k < 4; k++) {
            v[k] = b64_val((unsigned char)s[i + k]);
            if (v[k] < 0)
                return ce_err_set(err, CE_EPARSE, "", (long)(i + k),
                                  "base64: invalid character at offset %zu",
                                  i + (size_t)k);
            if (v[k] == 64) {
                if (i + 4 != n || k < 2)
                    return ce_err_set(err, CE_EPARSE, "", (long)(i + k),
                                      "base64: misplaced padding at offset "
                                      "%zu", i + (size_t)k);
                pad++;
                v[k] = 0;
            } else if (pad) {
                return ce_err_set(err, CE_EPARSE, "", (long)(i + k),
                                  "base64: data after padding at offset %zu",
                                  i + (size_t)k);
            }
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                     (uint32_t)v[2] << 6 | (uint32_t)v[3];
        *o++ = (unsigned char)(x >> 16);
        if (pad < 2)
            *o++ = (unsigned char)(x >> 8);
        if (pad < 1)
            *o++ = (unsigned char)x;
    }
    out->len = (size_t)((char *)o - out->data);
    out->data[out->len] = '\0';
    return CE_OK;
}
