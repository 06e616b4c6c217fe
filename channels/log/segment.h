/*
 * Segment and index file formats of the embedded log (byte layout in
 * docs/storage.md). Pure functions over memory: building and checking
 * headers, sealing records, and scanning a segment image to find its
 * valid prefix. No I/O, no threads; the fuzz target drives these directly.
 */
#ifndef KNIT_LOG_SEGMENT_H
#define KNIT_LOG_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KN_SEG_MAGIC "KNITLOG1"
#define KN_SEG_VERSION 1u
#define KN_SEG_HDR 32u            /* segment header bytes */
#define KN_REC_HDR 32u            /* record header bytes */
#define KN_REC_MAX (64u << 20)    /* largest event payload */
#define KN_IDX_MAGIC "KNITIDX1"
#define KN_IDX_HDR 64u
#define KN_IDX_ENTRY 16u

/* ---------------------------------------------------- little endian */

static inline void kn_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}
static inline void kn_put64(unsigned char *p, uint64_t v)
{
    kn_put32(p, (uint32_t)v);
    kn_put32(p + 4, (uint32_t)(v >> 32));
}
static inline uint32_t kn_get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}
static inline uint64_t kn_get64(const unsigned char *p)
{
    return (uint64_t)kn_get32(p) | (uint64_t)kn_get32(p + 4) << 32;
}

/* ---------------------------------------------------- segment header */

/* Writes the 32-byte header of a segment whose first offset is base. */
void kn_seg_header_build(unsigned char out[KN_SEG_HDR], uint64_t base);
/* Checks magic, version, CRC; returns 0 and *base, or -1 with why. */
int kn_seg_header_check(const unsigned char *p, size_t n, uint64_t *base,
                        char *why, size_t whylen);

/* ----------------------------------------------------------- records */

typedef struct kn_rec_hdr {
    uint32_t crc;
    uint32_t len;          /* payload bytes */
    uint64_t offset;
    int64_t ts_ns;
    uint32_t batch_left;   /* records after this one in the same append */
    uint32_t flags;        /* 0 */
} kn_rec_hdr;

/* Fills the header of a record whose payload follows it contiguously in
 * rec (rec[KN_REC_HDR .. KN_REC_HDR+len)) and computes its CRC. */
void kn_rec_seal(unsigned char *rec, uint32_t len, uint64_t offset,
                 int64_t ts_ns, uint32_t batch_left);

typedef enum kn_rec_state {
    KN_REC_VALID = 0,
    KN_REC_SHORT,    /* fewer bytes than the header announces (torn) */
    KN_REC_BAD,      /* bad length, CRC, flags or offset */
} kn_rec_state;

/* Checks the record at p (avail bytes from there to the end of what is
 * readable). With expect_offset != UINT64_MAX the record must carry it. */
kn_rec_state kn_rec_check(const unsigned char *p, size_t avail,
                          uint64_t expect_offset, kn_rec_hdr *out,
                          char *why, size_t whylen);

/* ---------------------------------------------------------- scanning */

typedef void (*kn_seg_index_fn)(void *arg, uint64_t offset, uint64_t pos,
                                int64_t ts_ns);

typedef struct kn_seg_scan {
    uint64_t base;
    uint64_t next_offset;   /* offset after the last complete batch */
    uint64_t valid_bytes;   /* end of the last complete batch */
    uint64_t records;       /* records in the valid prefix */
    int64_t first_ts, last_ts; /* 0 when no records */
    kn_rec_state stop;      /* why the scan stopped (VALID = clean end) */
    uint64_t stop_pos;      /* byte position of the first bad record */
    uint64_t dropped;       /* valid records of an incomplete batch */
    bool later_valid;       /* an intact record exists after stop_pos */
    uint64_t later_pos;
    char why[200];
} kn_seg_scan;

/* Scans a whole segment image (header included). Calls fn (may be NULL)
 * for index points: the first record and then one record at least every
 * interval bytes; points at or past out->next_offset must be discarded
 * by the caller (they belong to a dropped incomplete batch). Returns 0,
 * or -1 when the header itself is bad (why set). With look_ahead, after a
 * bad record it searches the rest for an intact record (later_valid). */
int kn_seg_scan_buf(const unsigned char *p, size_t n, uint32_t interval,
                    bool look_ahead, kn_seg_index_fn fn, void *arg,
                    kn_seg_scan *out);

/* Searches [from, n) for the first position holding an intact record
 * whose offset is >= min_offset. Returns the position or UINT64_MAX. */
uint64_t kn_seg_resync(const unsigned char *p, size_t n, uint64_t from,
                       uint64_t min_offset);

/* ------------------------------------------------------------- index */

typedef struct kn_idx_hdr {
    uint32_t count;        /* entries */
    uint64_t base;
    uint64_t next_offset;
    uint64_t seg_size;
    int64_t first_ts, last_ts;
    uint32_t entries_crc;
} kn_idx_hdr;

typedef struct kn_idx_entry {
    uint64_t offset;
    uint64_t pos;
    int64_t ts_ns;
} kn_idx_entry;

void kn_idx_header_build(unsigned char out[KN_IDX_HDR], const kn_idx_hdr *h);
int kn_idx_header_check(const unsigned char *p, size_t n, kn_idx_hdr *out,
                        char *why, size_t whylen);
void kn_idx_entry_build(unsigned char out[KN_IDX_ENTRY], uint64_t base,
                        const kn_idx_entry *e);
void kn_idx_entry_parse(const unsigned char *p, uint64_t base,
                        kn_idx_entry *e);

#endif
