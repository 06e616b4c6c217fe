/*
 * Fuzz target: CloudEvents JSON format decoding (ce_json_decode).
 * Invariants checked on every input:
 * - no crash, no leak; a failure returns no event and a message;
 * - a decoded event encodes, and the encoding decodes to an equal event
 *   (JSON-typed data compared in its compact form, which is what the JSON
 *   format carries); encoding is then stable byte for byte;
 * - the encoding is valid JSON for an independent parser (jansson; only
 *   numbers beyond its range, copied from the input's data, may differ);
 * - a clone is equal, and a frozen event refuses changes.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloudevents/ce_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ev with JSON-typed data compacted (a new reference). */
static ce_event *json_form(ce_event *ev)
{
    size_t n, ctl = 0;
    const char *d = ce_event_data(ev, &n);
    const char *ct = ce_event_get(ev, "datacontenttype", &ctl, NULL);
    ce_buf c = CE_BUF_INIT;
    if (!d || !ce_media_is_json(ct, ctl) ||
        ce__json_compact(d, n, &c, NULL) != CE_OK) {
        ce_buf_free(&c);
        return ce_event_ref(ev);
    }
    ce_event *out = ce_event_clone(ev);
    if (!out || ce_event_set_data(out, c.data, c.len) != CE_OK)
        abort();
    ce_buf_free(&c);
    return out;
}

static void check_valid_json(const ce_buf *b)
{
    json_error_t je;
    json_t *j = json_loadb(b->data, b->len, JSON_ALLOW_NUL, &je);
    if (!j && !strstr(je.text, "too big") && !strstr(je.text, "overflow"))
        abort();
    json_decref(j);
}

static void check_round_trip(ce_event *ev)
{
    ce_buf t1 = CE_BUF_INIT, t2 = CE_BUF_INIT;
    ce_err err;
    ce_event *e2, *e3;
    if (ce_json_encode(ev, &t1, &err) != CE_OK)
        abort();
    check_valid_json(&t1);
    if (ce_json_decode(t1.data, t1.len, &e2, &err) != CE_OK)
        abort();
    ce_event *want = json_form(ev);
    if (!ce_event_equal(want, e2))
        abort();
    if (ce_json_encode(e2, &t2, &err) != CE_OK || t1.len != t2.len ||
        memcmp(t1.data, t2.data, t1.len) != 0)
        abort();
    if (ce_json_decode(t2.data, t2.len, &e3, &err) != CE_OK ||
        !ce_event_equal(e2, e3))
        abort();
    ce_event_unref(want);
    ce_event_unref(e2);
    ce_event_unref(e3);
    ce_buf_free(&t1);
    ce_buf_free(&t2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ce_event *ev = (ce_event *)&size; /* must be reset on failure */
    ce_err err;
    memset(&err, 0, sizeof err);
    int rc = ce_json_decode((const char *)data, size, &ev, &err);
    if (rc != CE_OK) {
        if (ev || err.code != rc || !err.msg[0])
            abort();
        return 0;
    }
    if (ce_event_validate(ev, NULL) != CE_OK)
        abort();
    check_round_trip(ev);
    ce_event *c = ce_event_clone(ev);
    if (!c || !ce_event_equal(c, ev))
        abort();
    ce_event_freeze(c);
    if (ce_event_set_str(c, "id", "x", NULL) != CE_EFROZEN)
        abort();
    ce_event_unref(c);
    ce_event_unref(ev);
    return 0;
}
