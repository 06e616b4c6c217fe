/*
 * fuzz_yaml: kn_yaml_load on arbitrary bytes. Every document that loads is
 * emitted with kn_yaml_emit and loaded again; the reload must give exactly
 * one document equal to the original tree (abort otherwise). The line table
 * is queried for every recorded path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(const kn_yaml_doc *doc)
{
    ce_buf b = CE_BUF_INIT;
    int rc = kn_yaml_emit(doc->root, &b);
    if (rc != KN_OK)
        abort(); /* every loaded tree must be emittable */
    kn_yaml_doc *again = NULL;
    size_t n = 0;
    kn_err err;
    rc = kn_yaml_load("emitted", b.data, b.len, &again, &n, &err);
    if (rc != 1 || n != 1 || !json_equal(again[0].root, doc->root))
        abort();
    kn_yaml_docs_free(again, n);
    free(b.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kn_yaml_doc *docs = NULL;
    size_t n = 0;
    kn_err err;
    int rc = kn_yaml_load("fuzz", (const char *)data, size, &docs, &n, &err);
    if (rc < 0) {
        if (docs || n || err.status != rc || !err.where[0])
            abort();
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const char *path;
        json_t *line;
        json_object_foreach(docs[i].lines, path, line) {
            if (kn_yaml_line(&docs[i], path) != json_integer_value(line) &&
                strlen(path) < 1000)
                abort();
        }
        check_round_trip(&docs[i]);
    }
    kn_yaml_docs_free(docs, n);
    return 0;
}
