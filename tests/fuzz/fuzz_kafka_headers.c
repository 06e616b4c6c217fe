/*
 * Fuzz target: Kafka binding decoding (ce_ header mapping, content-type,
 * structured detection).
 *
 * Input framing (frame.h): "name: value" lines, an empty line, the record
 * value. Two pseudo-headers shape the record instead of becoming headers:
 *     @key: K      the record key is K
 *     @null        the record value is null (the body is ignored)
 * With no empty line the value is empty (not null). Example:
 *     @key: customer-7
 *     ce_specversion: 1.0
 *     ce_id: 1
 *     ce_source: /s
 *     ce_type: t
 *     content-type: text/plain
 *
 *     hello
 *
 * Every record that decodes must survive encode (same mode) → decode →
 * ce_event_equal; a mismatch aborts.
 */
#include <stdlib.h>
#include <string.h>

#include "cloudevents/cloudevents.h"
#include "frame.h"

static void round_trip(const ce_event *ev, ce_mode mode)
{
    ce_headers h = {0};
    ce_buf val = CE_BUF_INIT;
    bool has_value;
    const char *key;
    size_t klen;
    int rc = ce_kafka_encode(ev, mode, &h, &val, &has_value, &key, &klen,
                             NULL);
    if (rc == CE_EUNSUPPORTED)  /* e.g. a CE media type as binary data */
        goto out;
    if (rc != CE_OK)
        abort();
    ce_kafka_record rec = {key, klen, has_value ? val.data : NULL, val.len,
                           h.items, h.count};
    ce_event *back = NULL;
    if (ce_kafka_decode(&rec, 0, &back, NULL) != CE_OK ||
        !frame_same_event(ev, back))
        abort();
    ce_event_unref(back);
out:
    ce_headers_free(&h);
    ce_buf_free(&val);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    frame f;
    frame_parse(data, size, &f);
    ce_kafka_record rec = {.value = f.body, .value_len = f.body_len};
    ce_header hs[FRAME_MAX_HEADERS];
    size_t nh = 0;
    for (size_t i = 0; i < f.nh; i++) {
        const ce_header *h = &f.h[i];
        if (h->name_len == 4 && memcmp(h->name, "@key", 4) == 0) {
            rec.key = h->value;
            rec.key_len = h->value_len;
        } else if (h->name_len == 5 && memcmp(h->name, "@null", 5) == 0) {
            rec.value = NULL;
            rec.value_len = 0;
        } else {
            hs[nh++] = *h;
        }
    }
    rec.headers = hs;
    rec.nheaders = nh;
    const ce_header *ct = ce_headers_find(hs, nh, "content-type");
    ce_mode mode = ct && ce_http_mode(ct->value, ct->value_len) !=
                             CE_MODE_BINARY ? CE_MODE_STRUCTURED
                                            : CE_MODE_BINARY;
    for (unsigned flags = 0; flags <= CE_DECODE_NO_VALIDATE;
         flags += CE_DECODE_NO_VALIDATE) {
        ce_event *ev = NULL;
        if (ce_kafka_decode(&rec, flags, &ev, NULL) != CE_OK) {
            if (ev)
                abort();
            continue;
        }
        if (!flags)
            round_trip(ev, mode);
        ce_event_unref(ev);
    }
    return 0;
}
