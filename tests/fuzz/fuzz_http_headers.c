/*
 * Fuzz target: HTTP binding decoding (binary-mode header mapping and
 * percent-decoding, plus mode detection into structured/batched).
 *
 * Input framing (frame.h): "name: value" lines, an empty line, the body.
 * Example corpus file:
 *     ce-specversion: 1.0
 *     ce-id: 1
 *     ce-source: /s
 *     ce-type: t
 *     ce-subject: Euro%20%E2%82%AC
 *     Content-Type: text/plain
 *
 *     hello
 *
 * Each input is decoded strictly and leniently. Every event that decodes
 * must survive encode (same mode) → strict decode → ce_event_equal; a
 * mismatch aborts, so the fuzzer reports it.
 */
#include <stdlib.h>
#include <string.h>

#include "cloudevents/cloudevents.h"
#include "frame.h"

static void round_trip(const ce_event *ev, ce_mode mode)
{
    ce_headers h = {0};
    ce_buf body = CE_BUF_INIT;
    int rc = ce_http_encode(ev, mode, &h, &body, NULL);
    if (rc == CE_EUNSUPPORTED)  /* e.g. a CE media type as binary data */
        goto out;
    if (rc != CE_OK)
        abort();
    ce_event **back = NULL;
    size_t n = 0;
    ce_err err;
    if (ce_http_decode(h.items, h.count, body.data, body.len, 0, &back, &n,
                       &err) != CE_OK || n != 1 ||
        !frame_same_event(ev, back[0]))
        abort();
    ce_events_free(back, n);
out:
    ce_headers_free(&h);
    ce_buf_free(&body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    frame f;
    frame_parse(data, size, &f);
    const ce_header *ct = ce_headers_find(f.h, f.nh, "content-type");
    ce_mode mode = ct ? ce_http_mode(ct->value, ct->value_len)
                      : CE_MODE_BINARY;
    static const unsigned flags[] = {0, CE_DECODE_LENIENT,
                                     CE_DECODE_NO_VALIDATE};
    for (size_t k = 0; k < sizeof flags / sizeof *flags; k++) {
        ce_event **evs = NULL;
        size_t n = 0;
        ce_err err;
        if (ce_http_decode(f.h, f.nh, f.body, f.body_len, flags[k], &evs, &n,
                           &err) != CE_OK) {
            if (evs || n)
                abort();
            continue;
        }
        if (!(flags[k] & CE_DECODE_NO_VALIDATE))
            for (size_t i = 0; i < n; i++)
                round_trip(evs[i], mode == CE_MODE_BATCH ? CE_MODE_STRUCTURED
                                                         : mode);
        ce_events_free(evs, n);
    }
    return 0;
}
