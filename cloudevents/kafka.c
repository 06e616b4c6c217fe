/*
 * CloudEvents Kafka protocol binding over a plain record (key, value,
 * headers); no librdkafka inside.
 *
 * Binary mode: every attribute but datacontenttype is a ce_<name> header
 * (names matched case-insensitively, values used as they are: the binding
 * defines no percent-encoding, but they must be UTF-8); the content-type
 * header carries datacontenttype. A ce_datacontenttype header (the JS SDK
 * writes one next to content-type) is accepted when it agrees with
 * content-type. The value is the data: a null value is an event without
 * data, a zero-length value is empty data (Kafka, unlike HTTP, can tell).
 * Structured mode: content-type application/cloudevents+json, value = the
 * JSON format. Batch mode does not exist in this binding.
 *
 * Key mapping: encoding copies the partitionkey extension to the record
 * key (the "Key Mapper" of the spec, which knit always uses); decoding
 * never turns the key into an attribute (partitionkey travels in its own
 * ce_partitionkey header, and a key given by other producers is not an
 * event attribute).
 */
#include <string.h>

#include "cloudevents/bind_int.h"

static const ce_bind_binary kafka_binary = {
    .prefix = "ce_",
    .ctype_header = "content-type",
    .pct = false,
    .ce_dct_allowed = true,
    .ce_dct_written = false,
    .ctype_written = true,
};

#define KAFKA_STRUCTURED_CT "application/cloudevents+json; charset=utf-8"

/* Decodes a Kafka record into a new event (see cloudevents.h). Thread:
 * any. Errors: CE_EINVAL (missing/invalid attribute, a null value in
 * structured mode), CE_EPARSE (non-UTF-8 header, bad JSON),
 * CE_EUNSUPPORTED (non-JSON format, batch), CE_ENOMEM. */
int ce_kafka_decode(const ce_kafka_record *rec, unsigned flags,
                    ce_event **out, ce_err *err)
{
    *out = NULL;
    int rc = ce_bind_decode_binary(&kafka_binary, rec->headers, rec->nheaders,
                                   rec->value, rec->value_len,
                                   rec->value != NULL, flags, out, err);
    if (rc != CE_BIND_NOT_BINARY)
        return rc;
    const ce_header *ct = ce_headers_find(rec->headers, rec->nheaders, "content-type");
    if (!ce_bind_is_ce_json(ct->value, ct->value_len))
        return ce_err_set(err, CE_EUNSUPPORTED, "content-type", -1,
                          "content-type %.*s: only the JSON event format is "
                          "supported by the Kafka binding",
                          (int)(ct->value_len > 100 ? 100 : ct->value_len),
                          ct->value);
    if (!rec->value)
        return ce_err_set(err, CE_EINVAL, "value", -1,
                          "structured-mode record has a null value");
    return ce_json_decode(rec->value, rec->value_len, out, err);
}

/* Encodes ev as a Kafka record (see cloudevents.h). *key_out points into
 * ev (valid while the caller holds ev). Thread: any. Errors: CE_ENOMEM,
 * CE_EUNSUPPORTED (batch mode), what ce_json_encode reports; on error
 * *headers and *value are as they were. */
int ce_kafka_encode(const ce_event *ev, ce_mode mode, ce_headers *headers,
                    ce_buf *value, bool *has_value, const char **key_out,
                    size_t *key_len, ce_err *err)
{
    size_t hc = headers->count, hs = headers->store.len, vl = value->len;
    int rc;
    *has_value = false;
    *key_out = ce_event_get(ev, "partitionkey", key_len, NULL);
    if (!*key_out)
        *key_len = 0;
    if (mode == CE_MODE_BINARY) {
        rc = ce_bind_encode_binary(&kafka_binary, ev, headers, err);
        if (rc == CE_OK && ce_event_has_data(ev)) {
            size_t n;
            const void *d = ce_event_data(ev, &n);
            if (ce_buf_append(value, d, n) != CE_OK)
                rc = ce_err_set(err, CE_ENOMEM, "data", -1, "out of memory");
            else
                *has_value = true;
        }
    } else if (mode == CE_MODE_STRUCTURED) {
        rc = ce_headers_add(headers, "content-type", 12, KAFKA_STRUCTURED_CT,
                            sizeof KAFKA_STRUCTURED_CT - 1);
        if (rc != CE_OK)
            rc = ce_err_set(err, CE_ENOMEM, "", -1, "out of memory");
        else
            rc = ce_json_encode(ev, value, err);
        *has_value = rc == CE_OK;
    } else {
        rc = ce_err_set(err, CE_EUNSUPPORTED, "", -1,
                        "the Kafka binding has no batched mode");
    }
    if (rc != CE_OK) {
        headers->count = hc;
        headers->store.len = hs;
        if (headers->store.data)
            headers->store.data[hs] = '\0';
        if (value->data) {
            value->len = vl;
            value->data[vl] = '\0';
        }
        *has_value = false;
    }
    return rc;
}
