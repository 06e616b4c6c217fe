/*
 * Percent-encoding of header values (HTTP binding §3.1.3.2): the spec's
 * examples, strict versus lenient decoding, quoted-strings, UTF-8 checks
 * (overlongs, surrogates), and the error texts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cloudevents/cloudevents.h"

static void enc_is(const char *in, const char *want)
{
    ce_buf b = CE_BUF_INIT;
    assert_int_equal(ce_pct_encode(&b, in, strlen(in)), CE_OK);
    assert_string_equal(b.data, want);
    assert_int_equal(b.len, strlen(want));
    ce_buf_free(&b);
}

static void dec_is(const char *in, unsigned flags, const char *want)
{
    ce_buf b = CE_BUF_INIT;
    ce_err err = {0};
    int rc = ce_pct_decode(&b, in, strlen(in), flags, &err);
    if (rc != CE_OK)
        fail_msg("decode of '%s' failed: %s", in, err.msg);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    ce_buf_free(&b);
}

/* Decoding must fail; returns the message for the caller to check. */
static ce_err dec_fails(const char *in, size_t n, unsigned flags)
{
    ce_buf b = CE_BUF_INIT;
    ce_err err = {0};
    assert_int_equal(ce_pct_decode(&b, in, n, flags, &err), CE_EPARSE);
    assert_int_equal(err.code, CE_EPARSE);
    assert_int_equal(b.len, 0);
    ce_buf_free(&b);
    return err;
}

static void test_spec_example(void **state)
{
    (void)state;
    enc_is("Euro € 😀", "Euro%20%E2%82%AC%20%F0%9F%98%80");
    dec_is("Euro%20%E2%82%AC%20%F0%9F%98%80", 0, "Euro € 😀");
}

static void test_encode_set(void **state)
{
    (void)state;
    enc_is("", "");
    enc_is("plain-ASCII_text.~!#$&'()*+,/:;<=>?@[\\]^`{|}",
           "plain-ASCII_text.~!#$&'()*+,/:;<=>?@[\\]^`{|}");
    enc_is("100%", "100%25");
    enc_is("say \"hi\"", "say%20%22hi%22");
    enc_is("tab\there", "tab%09here");
    enc_is("del\x7f", "del%7F");
    enc_is("caf\xc3\xa9", "caf%C3%A9");
    /* encode appends */
    ce_buf b = CE_BUF_INIT;
    assert_int_equal(ce_pct_encode(&b, "a b", 3), CE_OK);
    assert_int_equal(ce_pct_encode(&b, "%", 1), CE_OK);
    assert_string_equal(b.data, "a%20b%25");
    ce_buf_free(&b);
}

static void test_decode_accepts(void **state)
{
    (void)state;
    dec_is("", 0, "");
    dec_is("%e2%82%ac", 0, "€");                 /* lower-case hex */
    dec_is("a%2Fb", 0, "a/b");
    dec_is("%2525", 0, "%25");                   /* exactly one round */
    dec_is("  spaced value \t", 0, "spaced value"); /* OWS trimmed */
    dec_is("raw space ok", 0, "raw space ok");
    dec_is("https://example.com/x?y=1", 0, "https://example.com/x?y=1");
}

static void test_quoted_string(void **state)
{
    (void)state;
    dec_is("\"hello world\"", 0, "hello world");
    dec_is("\"say \\\"hi\\\"\"", 0, "say \"hi\"");
    dec_is("\"back\\\\slash\"", 0, "back\\slash");
    dec_is("\"Euro%20%E2%82%AC\"", 0, "Euro €");  /* unquote, then decode */
    dec_is("\"\"", 0, "");
    ce_err e = dec_fails("\"unterminated", 13, 0);
    assert_non_null(strstr(e.msg, "malformed quoted-string"));
    e = dec_fails("\"a\"b", 4, 0);
    assert_non_null(strstr(e.msg, "quoted-string at offset 2"));
    /* lenient passes a broken quoted-string through */
    dec_is("\"unterminated", CE_DECODE_LENIENT, "\"unterminated");
}

static void test_strict_vs_lenient(void **state)
{
    (void)state;
    ce_err e = dec_fails("100%", 4, 0);
    assert_string_equal(e.msg, "value: invalid percent-escape at offset 3 "
                               "(use %25 for a literal '%')");
    assert_int_equal(e.offset, 3);
    dec_is("100%", CE_DECODE_LENIENT, "100%");
    e = dec_fails("50%off", 6, 0);
    assert_int_equal(e.offset, 2);
    dec_is("50%off", CE_DECODE_LENIENT, "50%off");
    dec_is("%zz%41", CE_DECODE_LENIENT, "%zzA");
    dec_fails("%4", 2, 0);
    /* raw non-ASCII: strict rejects, lenient keeps valid UTF-8 */
    e = dec_fails("caf\xc3\xa9", 5, 0);
    assert_string_equal(e.msg, "value: byte 0xC3 at offset 3 must be "
                               "percent-encoded");
    dec_is("caf\xc3\xa9", CE_DECODE_LENIENT, "caf\xc3\xa9");
    /* raw quote in the middle, raw control */
    dec_fails("a\"b", 3, 0);
    dec_is("a\"b", CE_DECODE_LENIENT, "a\"b");
    dec_fails("a\x01" "b", 3, 0);
}

static void test_utf8_rejected(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "%C0%A0",          /* overlong space */
        "%C1%BF",          /* overlong */
        "%E0%80%AF",       /* overlong '/' */
        "%F0%80%80%AF",    /* overlong */
        "%ED%A0%80",       /* surrogate U+D800 */
        "%F4%90%80%80",    /* > U+10FFFF */
        "%FF",
        "%80",             /* stray continuation */
        "%E2%82",          /* truncated */
        "ok%C3",           /* truncated at end */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ce_err e = dec_fails(bad[i], strlen(bad[i]), 0);
        assert_non_null(strstr(e.msg, "not valid UTF-8"));
        /* lenient does not relax the UTF-8 rule */
        dec_fails(bad[i], strlen(bad[i]), CE_DECODE_LENIENT);
    }
    ce_err e = dec_fails("\xc0\xa0", 2, CE_DECODE_LENIENT);
    assert_non_null(strstr(e.msg, "not valid UTF-8"));
    dec_is("%F4%8F%BF%BF", 0, "\xf4\x8f\xbf\xbf");  /* U+10FFFF is fine */
    dec_is("%EF%BF%BD", 0, "\xef\xbf\xbd");
}

static void test_round_trip_all_bytes(void **state)
{
    (void)state;
    /* every ASCII byte but NUL and the controls the decoder refuses */
    char in[128];
    size_t n = 0;
    for (int c = 1; c < 128; c++)
        in[n++] = (char)c;
    ce_buf enc = CE_BUF_INIT, dec = CE_BUF_INIT;
    assert_int_equal(ce_pct_encode(&enc, in, n), CE_OK);
    for (size_t i = 0; i < enc.len; i++) {
        unsigned char c = (unsigned char)enc.data[i];
        assert_true(c > 0x20 && c < 0x7F && c != '"');
    }
    assert_int_equal(ce_pct_decode(&dec, enc.data, enc.len, 0, NULL),
                     CE_OK);
    assert_int_equal(dec.len, n);
    assert_memory_equal(dec.data, in, n);
    ce_buf_free(&enc);
    ce_buf_free(&dec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_example),
        cmocka_unit_test(test_encode_set),
        cmocka_unit_test(test_decode_accepts),
        cmocka_unit_test(test_quoted_string),
        cmocka_unit_test(test_strict_vs_lenient),
        cmocka_unit_test(test_utf8_rejected),
        cmocka_unit_test(test_round_trip_all_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
