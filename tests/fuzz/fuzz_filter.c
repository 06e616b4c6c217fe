/*
 * fuzz_filter: the trigger filter compiler and the trigger index on
 * arbitrary input. The input is a JSON array; each element that has a
 * "specversion" member is an event in the JSON format, every other
 * element is a trigger spec. Invariants:
 * - a rejected spec names the path of its error and a message;
 * - an explained evaluation agrees with a plain one, and a non-match
 *   names a clause;
 * - the index gives exactly the matches of evaluating every filter, for
 *   the input's events and a few fixed ones.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/filter/filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ITEMS 64

static ce_event *fixed_event(int i)
{
    static const char *const json[] = {
        "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\","
        "\"type\":\"com.example.a\",\"subject\":\"x.png\",\"prio\":5,"
        "\"flag\":true,\"ext\":\"\"}",
        "{\"specversion\":\"1.0\",\"id\":\"2\",\"source\":\"a\","
        "\"type\":\"b\",\"prio\":\"abc\"}",
    };
    ce_event *ev = NULL;
    if (ce_json_decode(json[i], strlen(json[i]), &ev, NULL) != CE_OK)
        abort();
    ce_event_freeze(ev);
    return ev;
}

static void check_event(kn_filter **fs, size_t n, const kn_filter_index *ix,
                        const ce_event *ev)
{
    uint64_t bits[(MAX_ITEMS + 63) / 64];
    uint32_t ids[MAX_ITEMS];
    size_t want = 0;
    size_t got = kn_filter_index_match(ix, ev, bits);
    if (kn_filter_index_match_ids(ix, ev, ids, MAX_ITEMS) != got)
        abort();
    for (size_t i = 0; i < n; i++) {
        kn_filter_explain why;
        bool m = kn_filter_match(fs[i], ev, NULL);
        if (kn_filter_match(fs[i], ev, &why) != m)
            abort();
        if (fs[i] && !m && !why.clause[0])
            abort();
        if (m != ((bits[i / 64] >> (i % 64)) & 1))
            abort();
        want += m;
    }
    if (got != want)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)data, size,
                              JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!root)
        return 0;
    kn_filter *fs[MAX_ITEMS] = {0};
    ce_event *evs[MAX_ITEMS + 2];
    size_t nf = 0, ne = 0;
    size_t idx;
    json_t *item;
    evs[ne++] = fixed_event(0);
    evs[ne++] = fixed_event(1);
    json_array_foreach(root, idx, item) {
        if (idx >= MAX_ITEMS)
            break;
        if (json_object_get(item, "specversion")) {
            char *txt = json_dumps(item, JSON_COMPACT);
            ce_event *ev = NULL;
            if (txt && ce_json_decode(txt, strlen(txt), &ev, NULL) == CE_OK) {
                ce_event_freeze(ev);
                evs[ne++] = ev;
            }
            free(txt);
            continue;
        }
        kn_err err;
        memset(&err, 0, sizeof err);
        int rc = kn_filter_compile(item, "spec", &fs[nf], &err);
        if (rc != KN_OK && (fs[nf] || !err.msg[0] ||
                            (rc == KN_INVAL && !err.field[0])))
            abort();
        nf++; /* a rejected spec stays as an unused (NULL) slot */
    }
    kn_filter_index *ix = NULL;
    kn_err err;
    if (kn_filter_index_build(fs, nf, &ix, &err) != KN_OK)
        abort();
    if (kn_filter_index_size(ix) != nf)
        abort();
    for (size_t e = 0; e < ne; e++)
        check_event(fs, nf, ix, evs[e]);
    kn_filter_index_free(ix);
    for (size_t i = 0; i < nf; i++)
        kn_filter_free(fs[i]);
    for (size_t e = 0; e < ne; e++)
        ce_event_unref(evs[e]);
    json_decref(root);
    return 0;
}
