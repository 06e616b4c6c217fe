/*
 * CloudEvents NATS protocol binding (NATS >= 2.2 message headers) over a
 * plain header list and payload; no cnats inside.
 *
 * Binary mode: every attribute, datacontenttype included, is a ce-<name>
 * header, percent-encoded and decoded like HTTP. When decoding, a
 * Content-Type header is also accepted for datacontenttype (sdk-go's
 * JetStream binding reads either); if both are present they must agree.
 * An empty payload is an event without data (NATS cannot carry a null).
 * Structured mode: Content-Type application/cloudevents+json, payload =
 * the JSON format. Decoding picks structured when Content-Type starts with
 * application/cloudevents, else binary (which needs ce-specversion).
 * There is no batched mode.
 */
#include <string.h>

#include "cloudevents/bind_int.h"

static const ce_bind_binary nats_binary = {
    .prefix = "ce-",
    .ctype_header = "Content-Type",
    .pct = true,
    .ce_dct_allowed = true,
    .ce_dct_written = true,
    .ctype_written = false,
};

/* Decodes a NATS message into a new event (see cloudevents.h). Thread:
 * any. Errors: CE_EINVAL (missing/invalid attribute; a binary message
 * without ce-specversion), CE_EPARSE, CE_EUNSUPPORTED (non-JSON format,
 * batch), CE_ENOMEM. */
int ce_nats_decode(const ce_header *headers, size_t nheaders,
                   const void *payload, size_t len, unsigned flags,
                   ce_event **out, ce_err *err)
{
    *out = NULL;
    int rc = ce_bind_decode_binary(&nats_binary, headers, nheaders, payload,
                                   len, len > 0, flags, out, err);
    if (rc != CE_BIND_NOT_BINARY)
        return rc;
    const ce_header *ct = ce_headers_find(headers, nheaders, "content-type");
    if (!ce_bind_is_ce_json(ct->value, ct->value_len))
        return ce_err_set(err, CE_EUNSUPPORTED, "Content-Type", -1,
                          "Content-Type %.*s: only the JSON event format is "
                          "supported by the NATS binding",
                          (int)(ct->value_len > 100 ? 100 : ct->value_len),
                          ct->value);
    return ce_json_decode(payload, len, out, err);
}

/* Encodes ev for NATS (see cloudevents.h). Thread: any. Errors: CE_ENOMEM,
 * CE_EUNSUPPORTED (batch mode), what ce_json_encode reports; on error
 * *headers and *payload are as they were. */
int ce_nats_encode(const ce_event *ev, ce_mode mode, ce_headers *headers,
                   ce_buf *payload, ce_err *err)
{
    size_t hc = headers->count, hs = headers->store.len, pl = payload->len;
    int rc;
    if (mode == CE_MODE_BINARY) {
        rc = ce_bind_encode_binary(&nats_binary, ev, headers, err);
        if (rc == CE_OK && ce_event_has_data(ev)) {
            size_t n;
            const void *d = ce_event_data(ev, &n);
            if (ce_buf_append(payload, d, n) != CE_OK)
                rc = ce_err_set(err, CE_ENOMEM, "data", -1, "out of memory");
        }
    } else if (mode == CE_MODE_STRUCTURED) {
        rc = ce_headers_add(headers, "Content-Type", 12, CE_MEDIA_JSON,
                            sizeof CE_MEDIA_JSON - 1);
        if (rc != CE_OK)
            rc = ce_err_set(err, CE_ENOMEM, "", -1, "out of memory");
        else
            rc = ce_json_encode(ev, payload, err);
    } else {
        rc = ce_err_set(err, CE_EUNSUPPORTED, "", -1,
                        "the NATS binding has no batched mode");
    }
    if (rc != CE_OK) {
        headers->count = hc;
        headers->store.len = hs;
        if (headers->store.data)
            headers->store.data[hs] = '\0';
        if (payload->data) {
            payload->len = pl;
            payload->data[pl] = '\0';
        }
    }
    return rc;
}
