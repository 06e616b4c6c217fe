/*
 * The Trigger kind (eventing.knative.dev/v1): its field table (spec.broker,
 * spec.filter.attributes, spec.filters, spec.subscriber, spec.delivery),
 * its annotations (delivery order, max in flight, rate limit), and the
 * checks that need more than the table: filters compiled once at apply
 * time (errors name file:line and the filter path), subscriber and
 * dead-letter refs limited to what knit can resolve (a Broker), and the
 * immutability of spec.broker.
 *
 * Pure functions; any thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/dispatch/dispatch.h"
#include "broker/filter/filter.h"

static const kn_field any_element[] = {
    {.name = "", .type = KN_FT_ANY, .doc = "one filter expression"},
    {0},
};

static const kn_field filter_fields[] = {
    {.name = "attributes", .type = KN_FT_MAP_STRING,
     .doc = "attribute → exact value (\"\" = any value, must be present)"},
    {0},
};

static const kn_field trigger_spec_fields[] = {
    {.name = "broker", .type = KN_FT_STRING,
     .flags = KN_FF_REQUIRED | KN_FF_NONEMPTY, .check = kn_check_name,
     .doc = "the broker in the trigger's namespace (immutable)"},
    {.name = "brokerRef", .type = KN_FT_ANY,
     .unsupported = "cross-namespace brokers are not supported; use "
                    "spec.broker"},
    {.name = "filter", .type = KN_FT_OBJECT, .children = filter_fields,
     .doc = "legacy exact-match filter"},
    {.name = "filters", .type = KN_FT_LIST, .children = any_element,
     .doc = "Subscriptions API filters (override filter when non-empty)"},
    {.name = "subscriber", .type = KN_FT_OBJECT,
     .flags = KN_FF_REQUIRED, .children = kn_destination_fields,
     .check = kn_check_destination, .doc = "where matching events go"},
    {.name = "delivery", .type = KN_FT_OBJECT, .children = kn_delivery_fields,
     .doc = "delivery spec (replaces the broker's as a whole)"},
    {0},
};

static const kn_field trigger_fields[] = {
    {.name = "spec", .type = KN_FT_OBJECT, .flags = KN_FF_REQUIRED,
     .children = trigger_spec_fields, .doc = "desired state"},
    {.name = "status", .type = KN_FT_ANY, .flags = KN_FF_OUTPUT},
    {0},
};

static const char *const orders[] = {"ordered", "unordered", NULL};

static const kn_annotation trigger_annotations[] = {
    {KN_ANN_DELIVERY_ORDER, KN_FT_ENUM, orders,
     "ordered: one event at a time per partitionkey (else source); "
     "unordered (default): up to max-in-flight"},
    {KN_ANN_MAX_IN_FLIGHT, KN_FT_STRING, NULL,
     "deliveries in flight at once (default 100)"},
    {KN_ANN_RATE_LIMIT, KN_FT_STRING, NULL,
     "deliveries started per second (default: no limit)"},
    {0},
};

/* ------------------------------------------------------- options */

static int parse_count(const char *s, uint32_t lo, uint32_t hi,
                       uint32_t *out)
{
    char *end = NULL;
    if (!s || !*s || *s < '0' || *s > '9')
        return KN_INVAL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return KN_INVAL;
    *out = (uint32_t)v;
    return KN_OK;
}

int kn_trigger_options(const kn_resource *t, kn_trigger_opts *o,
                       kn_err *err)
{
    const char *order = kn_resource_annotation(t, KN_ANN_DELIVERY_ORDER);
    const char *mif = kn_resource_annotation(t, KN_ANN_MAX_IN_FLIGHT);
    const char *rate = kn_resource_annotation(t, KN_ANN_RATE_LIMIT);
    o->ordered = order && strcmp(order, "ordered") == 0;
    o->max_in_flight = KN_TRIGGER_DEFAULT_MAX_IN_FLIGHT;
    o->rate_limit = 0;
    if (mif && parse_count(mif, 1, KN_TRIGGER_MAX_IN_FLIGHT_MAX,
                           &o->max_in_flight) != KN_OK) {
        kn_err_set(err, KN_INVAL, "expected an integer from 1 to %u, got "
                   "\"%s\"", KN_TRIGGER_MAX_IN_FLIGHT_MAX, mif);
        if (err)
            snprintf(err->field, sizeof err->field,
                     "metadata.annotations.%s", KN_ANN_MAX_IN_FLIGHT);
        return KN_INVAL;
    }
    if (rate && parse_count(rate, 0, 10000000, &o->rate_limit) != KN_OK) {
        kn_err_set(err, KN_INVAL, "expected events per second as an "
                   "integer from 0 (no limit) to 10000000, got \"%s\"", rate);
        if (err)
            snprintf(err->field, sizeof err->field,
                     "metadata.annotations.%s", KN_ANN_RATE_LIMIT);
        return KN_INVAL;
    }
    return KN_OK;
}

/* ------------------------------------------------------- validate */

/* A ref knit can resolve: a Broker. Services come with serving. */
static int check_ref(kn_decode_ctx *ctx, json_t *dest, const char *path)
{
    json_t *ref = json_object_get(dest, "ref");
    if (!ref)
        return KN_OK;
    const char *kind = json_string_value(json_object_get(ref, "kind"));
    const char *api = json_string_value(json_object_get(ref, "apiVersion"));
    char p[256];
    snprintf(p, sizeof p, "%s.ref.kind", path);
    if (strcmp(kind, "Service") == 0)
        return kn_decode_fail(ctx, KN_UNSUPPORTED, p,
                              "a ref to a Service is not supported yet; "
                              "use uri with the service's URL");
    if (strcmp(kind, "Broker") != 0)
        return kn_decode_fail(ctx, KN_INVAL, p,
                              "knit resolves refs to a Broker only, got %s",
                              kind);
    snprintf(p, sizeof p, "%s.ref.apiVersion", path);
    if (api && strcmp(api, "eventing.knative.dev/v1") != 0)
        return kn_decode_fail(ctx, KN_INVAL, p,
                              "Broker is served as eventing.knative.dev/v1,"
                              " not %s", api);
    return KN_OK;
}

static int validate_trigger(kn_decode_ctx *ctx, json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    int rc = check_ref(ctx, json_object_get(spec, "subscriber"),
                       "spec.subscriber");
    json_t *dls = json_object_get(json_object_get(spec, "delivery"),
                                  "deadLetterSink");
    if (rc == KN_OK && dls)
        rc = check_ref(ctx, dls, "spec.delivery.deadLetterSink");
    if (rc != KN_OK)
        return rc;
    kn_err ferr = {0};
    kn_filter *f = NULL;
    if (kn_filter_compile(spec, "spec", &f, &ferr) != KN_OK)
        return kn_decode_fail(ctx, KN_INVAL,
                              ferr.field[0] ? ferr.field : "spec.filters",
                              "%s", ferr.msg[0] ? ferr.msg
                                                : "invalid filter");
    kn_filter_free(f);
    kn_resource tmp = {.obj = obj};
    kn_trigger_opts o;
    kn_err aerr = {0};
    if (kn_trigger_options(&tmp, &o, &aerr) != KN_OK)
        return kn_decode_fail(ctx, KN_INVAL, aerr.field, "%s", aerr.msg);
    return KN_OK;
}

const kn_kind kn_kind_trigger = {
    .api_version = "eventing.knative.dev/v1",
    .kind = "Trigger",
    .plural = "triggers",
    .singular = "trigger",
    .supported = true,
    .fields = trigger_fields,
    .annotations = trigger_annotations,
    .validate = validate_trigger,
};

const char *kn_trigger_broker(const kn_resource *t)
{
    return json_string_value(
        json_object_get(json_object_get(t->obj, "spec"), "broker"));
}

int kn_trigger_check_update(const kn_resource *prev, const kn_resource *next,
                            kn_err *err)
{
    if (!prev || !next || next->kind != &kn_kind_trigger ||
        prev->kind != &kn_kind_trigger)
        return KN_OK;
    const char *a = kn_trigger_broker(prev), *b = kn_trigger_broker(next);
    if (!a || !b || strcmp(a, b) == 0)
        return KN_OK;
    kn_err_set(err, KN_INVAL, "spec.broker is immutable: trigger %s/%s "
               "belongs to broker %s; delete it and create it again to "
               "move it to %s", next->ns, next->name, a, b);
    if (err) {
        snprintf(err->where, sizeof err->where, "%s", next->where);
        snprintf(err->field, sizeof err->field, "spec.broker");
    }
    return KN_INVAL;
}
