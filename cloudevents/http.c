/*
 * CloudEvents HTTP protocol binding over a plain header list and body (no
 * HTTP library inside): mode detection, binary / structured / batched
 * decoding, binary / structured encoding.
 *
 * Binary mode: every attribute but datacontenttype is a ce-<name> header
 * (names case-insensitive, values percent-encoded, see pct.c); Content-Type
 * carries datacontenttype; the body is the data (empty body = no data,
 * HTTP cannot tell the two apart). Extension values read from headers are
 * Strings: the binding carries no types.
 * Structured and batched modes: the JSON event format only; other formats
 * are CE_EUNSUPPORTED.
 */
#include <stdlib.h>
#include <string.h>

#include "cloudevents/bind_int.h"

static const ce_bind_binary http_binary = {
    .prefix = "ce-",
    .ctype_header = "Content-Type",
    .pct = true,
    .ce_dct_allowed = false,
    .ce_dct_written = false,
    .ctype_written = true,
};

#define CE_MEDIA_JSON_UTF8 "application/cloudevents+json; charset=utf-8"

/* Mode from a Content-Type value (NULL = binary): the batch prefix is
 * checked first because it also starts with application/cloudevents. */
ce_mode ce_http_mode(const char *content_type, size_t n)
{
    if (!content_type)
        return CE_MODE_BINARY;
    while (n && (*content_type == ' ' || *content_type == '\t')) {
        content_type++;
        n--;
    }
    if (ce_bind_iprefix(content_type, n, "application/cloudevents-batch"))
        return CE_MODE_BATCH;
    if (ce_bind_iprefix(content_type, n, "application/cloudevents"))
        return CE_MODE_STRUCTURED;
    return CE_MODE_BINARY;
}

/* True when the batch media type is the JSON batch format. */
static bool is_batch_json(const char *ct, size_t n)
{
    static const char mt[] = CE_MEDIA_BATCH;
    size_t mn = sizeof mt - 1;
    while (n && (*ct == ' ' || *ct == '\t')) {
        ct++;
        n--;
    }
    if (n < mn || !ce_bind_ieq(ct, mn, mt, mn))
        return false;
    return n == mn || ct[mn] == ';' || ct[mn] == ' ' || ct[mn] == '\t';
}

static int unsupported(const ce_header *ct, ce_err *err)
{
    return ce_err_set(err, CE_EUNSUPPORTED, "Content-Type", -1,
                      "Content-Type %.*s: only the JSON event format "
                      "(application/cloudevents+json, "
                      "application/cloudevents-batch+json) is supported",
                      (int)(ct->value_len > 100 ? 100 : ct->value_len),
                      ct->value);
}

/* Wraps one event in a new 1-element array for the caller. */
static int one(ce_event *ev, ce_event ***out, size_t *count, ce_err *err)
{
    ce_event **arr = malloc(sizeof *arr);
    if (!arr) {
        ce_event_unref(ev);
        return ce_err_set(err, CE_ENOMEM, "", -1, "out of memory");
    }
    arr[0] = ev;
    *out = arr;
    *count = 1;
    return CE_OK;
}

/* Decodes an HTTP message in any mode (see cloudevents.h). Thread: any;
 * the headers and body are only read. Errors: CE_EINVAL (missing/invalid
 * attribute, named by err->attr), CE_EPARSE (malformed header value or
 * JSON), CE_EUNSUPPORTED (a non-JSON event format), CE_ENOMEM. On error
 * *out is NULL and *count 0. */
int ce_http_decode(const ce_header *headers, size_t nheaders,
                   const void *body, size_t body_len, unsigned flags,
                   ce_event ***out, size_t *count, ce_err *err)
{
    *out = NULL;
    *count = 0;
    ce_event *ev = NULL;
    int rc = ce_bind_decode_binary(&http_binary, headers, nheaders, body,
                                   body_len, body_len > 0, flags, &ev, err);
    if (rc == CE_BIND_NOT_BINARY) {
        const ce_header *ct = ce_headers_find(headers, nheaders,
                                              "content-type");
        if (ce_http_mode(ct->value, ct->value_len) == CE_MODE_BATCH) {
            if (!is_batch_json(ct->value, ct->value_len))
                return unsupported(ct, err);
            return ce_json_decode_batch(body, body_len, out, count, err);
        }
        if (!ce_bind_is_ce_json(ct->value, ct->value_len))
            return unsupported(ct, err);
        rc = ce_json_decode(body, body_len, &ev, err);
    }
    if (rc != CE_OK)
        return rc;
    return one(ev, out, count, err);
}

/* Restores headers/body to their lengths before a failed encode. */
static void rollback(ce_headers *h, size_t hcount, size_t hstore,
                     ce_buf *body, size_t blen)
{
    h->count = hcount;
    h->store.len = hstore;
    if (h->store.data)
        h->store.data[hstore] = '\0';
    if (body && body->data) {
        body->len = blen;
        body->data[blen] = '\0';
    }
}

/* Encodes ev for HTTP (see cloudevents.h). Thread: any (ev is only read).
 * Errors: CE_EUNSUPPORTED for CE_MODE_BATCH (use ce_json_encode_batch),
 * CE_ENOMEM, or what ce_json_encode reports; on error *headers and *body
 * are as they were. */
int ce_http_encode(const ce_event *ev, ce_mode mode, ce_headers *headers,
                   ce_buf *body, ce_err *err)
{
    size_t hc = headers->count, hs = headers->store.len, bl = body->len;
    int rc;
    if (mode == CE_MODE_BINARY) {
        rc = ce_bind_encode_binary(&http_binary, ev, headers, err);
        if (rc == CE_OK && ce_event_has_data(ev)) {
            size_t n;
            const void *d = ce_event_data(ev, &n);
            if (ce_buf_append(body, d, n) != CE_OK)
                rc = ce_err_set(err, CE_ENOMEM, "data", -1, "out of memory");
        }
    } else if (mode == CE_MODE_STRUCTURED) {
        rc = ce_headers_add(headers, "Content-Type", 12, CE_MEDIA_JSON_UTF8,
                            sizeof CE_MEDIA_JSON_UTF8 - 1);
        if (rc != CE_OK)
            rc = ce_err_set(err, CE_ENOMEM, "", -1, "out of memory");
        else
            rc = ce_json_encode(ev, body, err);
    } else {
        return ce_err_set(err, CE_EUNSUPPORTED, "", -1,
                          "ce_http_encode encodes one event; use "
                          "ce_json_encode_batch for batched mode");
    }
    if (rc != CE_OK)
        rollback(headers, hc, hs, body, bl);
    return rc;
}
