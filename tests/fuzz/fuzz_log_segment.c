/*
 * Fuzz target for the log's on-disk formats: the input is read as a
 * segment file (header, records, batches) by the same scanner recovery
 * uses, every record the scanner accepts has its payload decoded, the
 * input is also decoded as a bare event payload (re-encoding a decoded
 * event must round-trip) and as an index file header. Invariants that
 * would mean a scanner bug abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channels/log/codec.h"
#include "channels/log/segment.h"
#include "common/common.h"

static void index_point(void *arg, uint64_t off, uint64_t pos, int64_t ts)
{
    const size_t *n = arg;
    (void)off;
    (void)ts;
    if (pos < KN_SEG_HDR || pos >= *n)
        abort();
}

static void check_payload(const uint8_t *p, size_t n)
{
    ce_event *ev = NULL, *again = NULL;
    char why[200];
    if (kn_logcodec_decode(p, n, &ev, why, sizeof why) != KN_OK)
        return;
    ce_buf b = CE_BUF_INIT;
    if (kn_logcodec_encode(ev, &b) != KN_OK ||
        kn_logcodec_decode(b.data, b.len, &again, why, sizeof why) !=
            KN_OK ||
        !ce_event_equal(ev, again))
        abort();
    ce_buf_free(&b);
    ce_event_unref(again);
    ce_event_unref(ev);
}

static void check_segment(const uint8_t *data, size_t size)
{
    kn_seg_scan sc;
    if (kn_seg_scan_buf(data, size, 128, true, index_point, &size, &sc) != 0)
        return;
    if (sc.valid_bytes > size || sc.valid_bytes < KN_SEG_HDR ||
        sc.next_offset - sc.base != sc.records ||
        (sc.stop == KN_REC_VALID && sc.valid_bytes != size) ||
        (sc.later_valid && sc.later_pos <= sc.stop_pos))
        abort();
    /* decode what recovery would keep, as a cursor would */
    uint64_t pos = KN_SEG_HDR;
    for (uint64_t off = sc.base; off < sc.next_offset; off++) {
        kn_rec_hdr h;
        if (kn_rec_check(data + pos, size - pos, off, &h, NULL, 0) !=
            KN_REC_VALID)
            abort(); /* the scanner accepted it */
        check_payload(data + pos + KN_REC_HDR, h.len);
        pos += KN_REC_HDR + h.len;
    }
    if (pos != sc.valid_bytes)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_segment(data, size);
    check_payload(data, size);
    kn_idx_hdr ih;
    kn_idx_header_check(data, size, &ih, NULL, 0);
    return 0;
}
