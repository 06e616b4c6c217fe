/*
 * fuzz_resources: the resource loader (YAML → kinds → table-driven
 * decoder) on arbitrary bytes. Whatever parses must be self-consistent:
 * an error always names a place, every decoded resource re-decodes from
 * its own normalised object to the same object (the store's reload path),
 * and a Broker's plan can be built with and without a ConfigMap.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decoding the normalised object again must give the same object. */
static void check_redecode(const kn_resource *r)
{
    kn_yaml_doc doc = {.root = r->obj, .line = 0, .lines = NULL};
    kn_resource *again = NULL;
    kn_err err = {0};
    if (kn_resource_decode("again", &doc, &again, &err) != KN_OK || !again)
        abort();
    if (!json_equal(again->obj, r->obj) || again->kind != r->kind)
        abort();
    kn_resource_decref(again);
}

static void check_plans(kn_resource **rs, size_t n)
{
    const kn_resource *cm = NULL;
    for (size_t i = 0; i < n; i++)
        if (rs[i]->kind == &kn_kind_configmap)
            cm = rs[i];
    for (size_t i = 0; i < n; i++) {
        if (rs[i]->kind != &kn_kind_broker)
            continue;
        kn_broker_plan p;
        if (kn_broker_plan_make(rs[i], NULL, &p) != KN_OK && !p.reason[0])
            abort();
        kn_broker_plan_free(&p);
        if (kn_broker_plan_make(rs[i], cm, &p) != KN_OK && !p.reason[0])
            abort();
        kn_broker_plan_free(&p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        kn_log_init(KN_LOG_ERROR, false);
        kn_channels_register_builtin();
        init = 1;
    }
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    kn_resource **rs = NULL;
    size_t n = 0;
    kn_err err = {0};
    int rc = kn_resources_parse("fuzz.yaml", buf, size, &rs, &n, &err);
    if (rc != KN_OK) {
        if (!err.msg[0] || rs || n)
            abort(); /* an error always says what */
    } else {
        for (size_t i = 0; i < n; i++)
            check_redecode(rs[i]);
        check_plans(rs, n);
        for (size_t i = 0; i + 1 < n; i++)
            (void)kn_resource_same(rs[i], rs[i + 1]);
    }
    kn_resources_free(rs, n);
    free(buf);
    return 0;
}
