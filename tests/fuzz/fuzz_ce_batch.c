/*
 * Fuzz target: CloudEvents JSON batch decoding (ce_json_decode_batch).
 * Invariants: no crash, no leak; all or nothing (a failure returns no
 * events and an error whose attribute, when set, starts with "[i]");
 * a decoded batch encodes and decodes back to the same number of events,
 * each equal once JSON-typed data is compacted; encoding is then stable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloudevents/ce_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool equal_json_form(ce_event *a, ce_event *b)
{
    size_t n, ctl = 0;
    const char *d = ce_event_data(a, &n);
    const char *ct = ce_event_get(a, "datacontenttype", &ctl, NULL);
    ce_buf c = CE_BUF_INIT;
    if (!d || !ce_media_is_json(ct, ctl) ||
        ce__json_compact(d, n, &c, NULL) != CE_OK) {
        ce_buf_free(&c);
        return ce_event_equal(a, b);
    }
    ce_event *x = ce_event_clone(a);
    if (!x || ce_event_set_data(x, c.data, c.len) != CE_OK)
        abort();
    bool eq = ce_event_equal(x, b);
    ce_event_unref(x);
    ce_buf_free(&c);
    return eq;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ce_event **evs = (ce_event **)&size, **back, **again;
    size_t n = 99, m, k;
    ce_err err;
    memset(&err, 0, sizeof err);
    int rc = ce_json_decode_batch((const char *)data, size, &evs, &n, &err);
    if (rc != CE_OK) {
        if (evs || n || err.code != rc || !err.msg[0] ||
            (err.attr[0] && err.attr[0] != '['))
            abort();
        return 0;
    }
    ce_buf t1 = CE_BUF_INIT, t2 = CE_BUF_INIT;
    if (ce_json_encode_batch(evs, n, &t1, &err) != CE_OK ||
        ce_json_decode_batch(t1.data, t1.len, &back, &m, &err) != CE_OK ||
        m != n)
        abort();
    for (size_t i = 0; i < n; i++)
        if (!equal_json_form(evs[i], back[i]))
            abort();
    if (ce_json_encode_batch(back, m, &t2, &err) != CE_OK ||
        t1.len != t2.len || memcmp(t1.data, t2.data, t1.len) != 0 ||
        ce_json_decode_batch(t2.data, t2.len, &again, &k, &err) != CE_OK ||
        k != n)
        abort();
    for (size_t i = 0; i < n; i++)
        if (!ce_event_equal(back[i], again[i]))
            abort();
    ce_events_free(again, k);
    ce_events_free(back, m);
    ce_events_free(evs, n);
    ce_buf_free(&t1);
    ce_buf_free(&t2);
    return 0;
}
