/*
 * 0301-log-format: CRC32C (known vectors, hardware and software paths
 * agree), the event payload codec (round trip of every attribute type,
 * absent vs empty data, damaged payloads rejected with a position), and
 * the segment scanner (clean, torn, corrupt, incomplete batch).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "channels/log/codec.h"
#include "channels/log/crc32c.h"
#include "channels/log/segment.h"
#include "logtest.h"

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(kn_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(kn_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(kn_crc32c(0, "", 0), 0);
    unsigned char zeros[32] = {0};
    assert_int_equal(kn_crc32c(0, zeros, 32), 0x8A9136AAu); /* RFC 3720 */
    /* incremental == one shot, hw == sw, at every split and alignment */
    unsigned char buf[1031];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 31 + 7);
    uint32_t whole = kn_crc32c_sw(0, buf, sizeof buf);
    for (size_t cut = 0; cut < sizeof buf; cut += 13) {
        uint32_t c = kn_crc32c(0, buf, cut);
        assert_int_equal(kn_crc32c(c, buf + cut, sizeof buf - cut), whole);
        assert_int_equal(kn_crc32c(0, buf + 1, cut),
                         kn_crc32c_sw(0, buf + 1, cut));
    }
}

static ce_event *rich_event(void)
{
    ce_event *ev = ce_event_new();
    assert_int_equal(ce_event_set_str(ev, "specversion", "1.0", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "id", "A-1", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "source", "urn:x", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "type", "t", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "subject", "sub", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "time",
                                      "2024-01-02T03:04:05.5Z", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "dataschema", "https://s/x",
                                      NULL), 0);
    assert_int_equal(ce_event_set_int(ev, "count", -42, NULL), 0);
    assert_int_equal(ce_event_set_bool(ev, "flag", true, NULL), 0);
    assert_int_equal(ce_event_set(ev, "blob", "AAEC", 4, CE_TYPE_BINARY,
                                  NULL), 0);
    assert_int_equal(ce_event_set(ev, "link", "https://a/b", 11,
                                  CE_TYPE_URI, NULL), 0);
    assert_int_equal(ce_event_set(ev, "ref", "../x", 4, CE_TYPE_URI_REF,
                                  NULL), 0);
    assert_int_equal(ce_event_set(ev, "at", "2020-02-29T00:00:00Z", 20,
                                  CE_TYPE_TIMESTAMP, NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "utf", "h\xc3\xa9llo", NULL), 0);
    return ev;
}

static void roundtrip(ce_event *ev)
{
    ce_buf b = CE_BUF_INIT;
    ce_event *back = NULL;
    char why[200];
    assert_int_equal(kn_logcodec_encode(ev, &b), KN_OK);
    assert_int_equal(kn_logcodec_decode(b.data, b.len, &back, why,
                                        sizeof why), KN_OK);
    assert_true(ce_event_equal(ev, back));
    assert_true(ce_event_frozen(back));
    assert_int_equal(ce_event_has_data(back), ce_event_has_data(ev));
    ce_type t;
    const char *v = ce_event_get(back, "count", NULL, &t);
    if (v) {
        assert_string_equal(v, "-42");
        assert_int_equal(t, CE_TYPE_INTEGER);
    }
    ce_event_unref(back);
    ce_buf_free(&b);
}

static void test_codec_roundtrip(void **state)
{
    (void)state;
    ce_event *ev = rich_event();
    roundtrip(ev); /* no data */
    assert_int_equal(ce_event_set_data(ev, "", 0), 0);
    roundtrip(ev); /* empty data differs from none */
    unsigned char bin[300];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (unsigned char)i;
    assert_int_equal(ce_event_set_data(ev, bin, sizeof bin), 0);
    roundtrip(ev); /* binary data with NULs, 2-byte varint length */
    ce_event_unref(ev);
}

static void test_codec_damage(void **state)
{
    (void)state;
    ce_event *ev = rich_event(), *out = NULL;
    ce_buf b = CE_BUF_INIT;
    char why[200];
    assert_int_equal(ce_event_set_data(ev, "abc", 3), 0);
    assert_int_equal(kn_logcodec_encode(ev, &b), KN_OK);
    /* every truncation is rejected, never a crash */
    for (size_t n = 0; n < b.len; n++) {
        assert_int_equal(kn_logcodec_decode(b.data, n, &out, why,
                                            sizeof why), KN_CORRUPT);
        assert_null(out);
        assert_non_null(strstr(why, "byte"));
    }
    b.data[0] = 9;
    assert_int_equal(kn_logcodec_decode(b.data, b.len, &out, why,
                                        sizeof why), KN_CORRUPT);
    assert_non_null(strstr(why, "version"));
    b.data[0] = KN_LOGCODEC_VERSION;
    b.data[1] = 0x40;
    assert_int_equal(kn_logcodec_decode(b.data, b.len, &out, why,
                                        sizeof why), KN_CORRUPT);
    b.data[1] = 1;
    char extra[1024];
    memcpy(extra, b.data, b.len);
    extra[b.len] = 0;
    assert_int_equal(kn_logcodec_decode(extra, b.len + 1, &out, why,
                                        sizeof why), KN_CORRUPT);
    assert_non_null(strstr(why, "trailing"));
    /* an invalid value for its type is refused by the event model */
    unsigned char bad[] = {1, 0, 1, 0x02 /* integer */, 1, 'n', 2, 'x', 'y'};
    assert_int_equal(kn_logcodec_decode(bad, sizeof bad, &out, why,
                                        sizeof why), KN_CORRUPT);
    assert_non_null(strstr(why, "'n'"));
    ce_buf_free(&b);
    ce_event_unref(ev);
}

/* Builds a segment image of `batches` appends of `per` records each. */
static size_t build_segment(unsigned char *buf, size_t cap, uint64_t base,
                            int batches, int per)
{
    size_t pos = KN_SEG_HDR;
    uint64_t off = base;
    kn_seg_header_build(buf, base);
    for (int b = 0; b < batches; b++)
        for (int r = 0; r < per; r++) {
            ce_event *ev = tu_event("s", (unsigned)off, 20);
            ce_buf p = CE_BUF_INIT;
            assert_int_equal(kn_logcodec_encode(ev, &p), KN_OK);
            assert_true(pos + KN_REC_HDR + p.len <= cap);
            memcpy(buf + pos + KN_REC_HDR, p.data, p.len);
            kn_rec_seal(buf + pos, (uint32_t)p.len, off++, 1000 + b,
                        (uint32_t)(per - 1 - r));
            pos += KN_REC_HDR + p.len;
            ce_buf_free(&p);
            ce_event_unref(ev);
        }
    return pos;
}

static void test_scan(void **state)
{
    (void)state;
    static unsigned char buf[64 << 10];
    kn_seg_scan sc;
    size_t n = build_segment(buf, sizeof buf, 100, 4, 3);

    assert_int_equal(kn_seg_scan_buf(buf, n, 64, true, NULL, NULL, &sc), 0);
    assert_int_equal(sc.stop, KN_REC_VALID);
    assert_int_equal(sc.base, 100);
    assert_int_equal(sc.next_offset, 112);
    assert_int_equal(sc.records, 12);
    assert_int_equal(sc.valid_bytes, n);
    assert_int_equal(sc.first_ts, 1000);
    assert_int_equal(sc.last_ts, 1003);

    /* torn: cut inside the last record; its whole batch goes */
    assert_int_equal(kn_seg_scan_buf(buf, n - 5, 64, true, NULL, NULL, &sc),
                     0);
    assert_int_equal(sc.stop, KN_REC_SHORT);
    assert_int_equal(sc.next_offset, 109);
    assert_int_equal(sc.dropped, 2);
    assert_false(sc.later_valid);

    /* damage in the first record with intact records after it */
    buf[KN_SEG_HDR + 40] ^= 0xff; /* inside the first record's payload */
    assert_int_equal(kn_seg_scan_buf(buf, n, 64, true, NULL, NULL, &sc), 0);
    assert_int_equal(sc.stop, KN_REC_BAD);
    assert_int_equal(sc.stop_pos, KN_SEG_HDR);
    assert_int_equal(sc.next_offset, 100);
    assert_true(sc.later_valid);
    assert_non_null(strstr(sc.why, "CRC"));
    buf[KN_SEG_HDR + 40] ^= 0xff;

    /* bad header */
    buf[3] ^= 1;
    assert_int_equal(kn_seg_scan_buf(buf, n, 64, true, NULL, NULL, &sc), -1);
    assert_non_null(strstr(sc.why, "magic"));
    buf[3] ^= 1;
    assert_int_equal(kn_seg_scan_buf(buf, 10, 64, true, NULL, NULL, &sc),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_codec_roundtrip),
        cmocka_unit_test(test_codec_damage),
        cmocka_unit_test(test_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
