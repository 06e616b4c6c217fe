/*
 * Segment, record and index byte formats (see segment.h and
 * docs/storage.md). Everything here works on memory and checks every
 * length before use, so arbitrary bytes (the fuzz target feeds them) can
 * only produce a verdict, never an out-of-bounds read.
 */
#include "channels/log/segment.h"

#include <stdio.h>
#include <string.h>

#include "channels/log/crc32c.h"

#define MSG(...)                                                            \
    do {                                                                    \
        if (why && whylen)                                                  \
            snprintf(why, whylen, __VA_ARGS__);                             \
    } while (0)

void kn_seg_header_build(unsigned char out[KN_SEG_HDR], uint64_t base)
{
    memset(out, 0, KN_SEG_HDR);
    memcpy(out, KN_SEG_MAGIC, 8);
    kn_put32(out + 8, KN_SEG_VERSION);
    kn_put32(out + 12, KN_SEG_HDR);
    kn_put64(out + 16, base);
    kn_put32(out + 28, kn_crc32c(0, out, 28));
}

int kn_seg_header_check(const unsigned char *p, size_t n, uint64_t *base,
                        char *why, size_t whylen)
{
    if (n < KN_SEG_HDR) {
        MSG("segment header truncated (%zu of %u bytes)", n, KN_SEG_HDR);
        return -1;
    }
    if (memcmp(p, KN_SEG_MAGIC, 8) != 0) {
        MSG("byte 0: bad magic (not a knit log segment)");
        return -1;
    }
    if (kn_get32(p + 28) != kn_crc32c(0, p, 28)) {
        MSG("byte 28: segment header CRC mismatch");
        return -1;
    }
    if (kn_get32(p + 8) != KN_SEG_VERSION) {
        MSG("byte 8: unsupported segment version %u", kn_get32(p + 8));
        return -1;
    }
    if (kn_get32(p + 12) != KN_SEG_HDR || kn_get32(p + 24) != 0) {
        MSG("byte 12: unexpected header size or flags");
        return -1;
    }
    *base = kn_get64(p + 16);
    return 0;
}

void kn_rec_seal(unsigned char *rec, uint32_t len, uint64_t offset,
                 int64_t ts_ns, uint32_t batch_left)
{
    kn_put32(rec + 4, len);
    kn_put64(rec + 8, offset);
    kn_put64(rec + 16, (uint64_t)ts_ns);
    kn_put32(rec + 24, batch_left);
    kn_put32(rec + 28, 0);
    kn_put32(rec, kn_crc32c(0, rec + 4, (size_t)KN_REC_HDR - 4 + len));
}

static void rec_parse(const unsigned char *p, kn_rec_hdr *h)
{
    h->crc = kn_get32(p);
    h->len = kn_get32(p + 4);
    h->offset = kn_get64(p + 8);
    h->ts_ns = (int64_t)kn_get64(p + 16);
    h->batch_left = kn_get32(p + 24);
    h->flags = kn_get32(p + 28);
}

kn_rec_state kn_rec_check(const unsigned char *p, size_t avail,
                          uint64_t expect_offset, kn_rec_hdr *out,
                          char *why, size_t whylen)
{
    kn_rec_hdr h;
    if (avail < KN_REC_HDR) {
        MSG("record header truncated (%zu of %u bytes)", avail, KN_REC_HDR);
        return KN_REC_SHORT;
    }
    rec_parse(p, &h);
    if (h.len > KN_REC_MAX) {
        MSG("record length %u exceeds the maximum %u", h.len, KN_REC_MAX);
        return KN_REC_BAD;
    }
    if (avail - KN_REC_HDR < h.len) {
        MSG("record truncated (%zu of %u payload bytes)",
            avail - KN_REC_HDR, h.len);
        return KN_REC_SHORT;
    }
    if (kn_crc32c(0, p + 4, (size_t)KN_REC_HDR - 4 + h.len) != h.crc) {
        MSG("record CRC mismatch");
        return KN_REC_BAD;
    }
    if (h.flags != 0) {
        MSG("record has unknown flags 0x%x", h.flags);
        return KN_REC_BAD;
    }
    if (expect_offset != UINT64_MAX && h.offset != expect_offset) {
        MSG("record offset %llu where %llu was expected",
            (unsigned long long)h.offset, (unsigned long long)expect_offset);
        return KN_REC_BAD;
    }
    if (out)
        *out = h;
    return KN_REC_VALID;
}

uint64_t kn_seg_resync(const unsigned char *p, size_t n, uint64_t from,
                       uint64_t min_offset)
{
    for (uint64_t q = from; q + KN_REC_HDR <= n; q++) {
        const unsigned char *r = p + q;
        uint32_t len = kn_get32(r + 4);
        uint64_t off = kn_get64(r + 8);
        if (len > KN_REC_MAX || len > n - q - KN_REC_HDR ||
            kn_get32(r + 28) != 0 || off < min_offset ||
            off - min_offset > UINT32_MAX)
            continue;
        if (kn_rec_check(r, n - q, UINT64_MAX, NULL, NULL, 0) ==
            KN_REC_VALID)
            return q;
    }
    return UINT64_MAX;
}

int kn_seg_scan_buf(const unsigned char *p, size_t n, uint32_t interval,
                    bool look_ahead, kn_seg_index_fn fn, void *arg,
                    kn_seg_scan *out)
{
    uint64_t base, pos = KN_SEG_HDR, expect, last_idx = 0;
    uint32_t left = 0; /* records still due in the open batch */
    int64_t first_ts = 0, last_ts = 0;
    bool in_batch = false, any = false;

    memset(out, 0, sizeof *out);
    if (kn_seg_header_check(p, n, &base, out->why, sizeof out->why) != 0)
        return -1;
    out->base = out->next_offset = expect = base;
    out->valid_bytes = KN_SEG_HDR;
    out->stop = KN_REC_VALID;
    while (pos < n) {
        kn_rec_hdr h;
        kn_rec_state st = kn_rec_check(p + pos, n - pos, expect, &h,
                                       out->why, sizeof out->why);
        if (st == KN_REC_VALID && in_batch && h.batch_left != left - 1) {
            snprintf(out->why, sizeof out->why,
                     "record batch count %u where %u was expected",
                     h.batch_left, left - 1);
            st = KN_REC_BAD;
        }
        if (st != KN_REC_VALID) {
            out->stop = st;
            out->stop_pos = pos;
            break;
        }
        if (fn && (!any || pos - last_idx >= interval)) {
            fn(arg, h.offset, pos, h.ts_ns);
            last_idx = pos;
        }
        if (!any)
            first_ts = h.ts_ns;
        any = true;
        last_ts = h.ts_ns;
        pos += KN_REC_HDR + h.len;
        expect++;
        left = h.batch_left;
        in_batch = left > 0;
        if (!in_batch) {
            if (out->records == 0)
                out->first_ts = first_ts;
            out->valid_bytes = pos;
            out->records += expect - out->next_offset;
            out->next_offset = expect;
            out->last_ts = last_ts;
        }
    }
    out->dropped = expect - out->next_offset;
    if (out->stop == KN_REC_VALID && out->dropped > 0) {
        out->stop = KN_REC_SHORT;
        out->stop_pos = pos;
        snprintf(out->why, sizeof out->why,
                 "last batch incomplete (%llu of its records present)",
                 (unsigned long long)out->dropped);
    }
    if (out->stop != KN_REC_VALID && look_ahead) {
        uint64_t q = kn_seg_resync(p, n, out->stop_pos + 1,
                                   out->next_offset);
        out->later_valid = q != UINT64_MAX;
        out->later_pos = out->later_valid ? q : 0;
    }
    return 0;
}

/* -------------------------------------------------------------- index */

void kn_idx_header_build(unsigned char out[KN_IDX_HDR], const kn_idx_hdr *h)
{
    memset(out, 0, KN_IDX_HDR);
    memcpy(out, KN_IDX_MAGIC, 8);
    kn_put32(out + 8, 1);
    kn_put32(out + 12, h->count);
    kn_put64(out + 16, h->base);
    kn_put64(out + 24, h->next_offset);
    kn_put64(out + 32, h->seg_size);
    kn_put64(out + 40, (uint64_t)h->first_ts);
    kn_put64(out + 48, (uint64_t)h->last_ts);
    kn_put32(out + 56, h->entries_crc);
    kn_put32(out + 60, kn_crc32c(0, out, 60));
}

int kn_idx_header_check(const unsigned char *p, size_t n, kn_idx_hdr *out,
                        char *why, size_t whylen)
{
    if (n < KN_IDX_HDR) {
        MSG("index header truncated (%zu of %u bytes)", n, KN_IDX_HDR);
        return -1;
    }
    if (memcmp(p, KN_IDX_MAGIC, 8) != 0 || kn_get32(p + 8) != 1) {
        MSG("byte 0: bad index magic or version");
        return -1;
    }
    if (kn_get32(p + 60) != kn_crc32c(0, p, 60)) {
        MSG("byte 60: index header CRC mismatch");
        return -1;
    }
    out->count = kn_get32(p + 12);
    out->base = kn_get64(p + 16);
    out->next_offset = kn_get64(p + 24);
    out->seg_size = kn_get64(p + 32);
    out->first_ts = (int64_t)kn_get64(p + 40);
    out->last_ts = (int64_t)kn_get64(p + 48);
    out->entries_crc = kn_get32(p + 56);
    if (out->next_offset < out->base || out->seg_size < KN_SEG_HDR) {
        MSG("index header fields inconsistent");
        return -1;
    }
    return 0;
}

void kn_idx_entry_build(unsigned char out[KN_IDX_ENTRY], uint64_t base,
                        const kn_idx_entry *e)
{
    kn_put32(out, (uint32_t)(e->offset - base));
    kn_put32(out + 4, (uint32_t)e->pos);
    kn_put64(out + 8, (uint64_t)e->ts_ns);
}

void kn_idx_entry_parse(const unsigned char *p, uint64_t base,
                        kn_idx_entry *e)
{
    e->offset = base + kn_get32(p);
    e->pos = kn_get32(p + 4);
    e->ts_ns = (int64_t)kn_get64(p + 8);
}
