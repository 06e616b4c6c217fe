/*
 * The kind registry: every resource kind knit knows, as tables. Supported
 * kinds carry their field tables (Broker in kinds_broker.c, Trigger in
 * kinds_trigger.c, ConfigMap here); the other Knative kinds are listed so
 * that applying them says
 * "kind X is not supported yet" instead of "unknown kind". A new kind
 * plugs in by adding its table to kn_kinds[].
 */
#include "broker/broker.h"

static const kn_field output_only = {0};

/* ------------------------------------------------------- ConfigMap */

static const kn_field configmap_fields[] = {
    {.name = "data", .type = KN_FT_MAP_STRING,
     .doc = "string keys and values (values must be quoted when they look "
            "like numbers or booleans)"},
    {.name = "immutable", .type = KN_FT_BOOL,
     .doc = "stored; knit does not enforce it"},
    {.name = "binaryData", .type = KN_FT_ANY,
     .unsupported = "use data with text values"},
    {0},
};

const kn_kind kn_kind_configmap = {
    .api_version = "v1",
    .kind = "ConfigMap",
    .plural = "configmaps",
    .singular = "configmap",
    .supported = true,
    .fields = configmap_fields,
};

/* ------------------------------------- known kinds not supported yet */

#define KN_UNSUPPORTED_KIND(var, api, k, pl, sg)                            \
    static const kn_kind var = {                                            \
        .api_version = api, .kind = k, .plural = pl, .singular = sg,        \
        .supported = false, .fields = &output_only,                         \
    };

KN_UNSUPPORTED_KIND(kind_eventtype, "eventing.knative.dev/v1beta3",
                    "EventType", "eventtypes", "eventtype")
KN_UNSUPPORTED_KIND(kind_eventpolicy, "eventing.knative.dev/v1alpha1",
                    "EventPolicy", "eventpolicies", "eventpolicy")
KN_UNSUPPORTED_KIND(kind_channel, "messaging.knative.dev/v1", "Channel",
                    "channels", "channel")
KN_UNSUPPORTED_KIND(kind_imc, "messaging.knative.dev/v1", "InMemoryChannel",
                    "inmemorychannels", "inmemorychannel")
KN_UNSUPPORTED_KIND(kind_subscription, "messaging.knative.dev/v1",
                    "Subscription", "subscriptions", "subscription")
KN_UNSUPPORTED_KIND(kind_sequence, "flows.knative.dev/v1", "Sequence",
                    "sequences", "sequence")
KN_UNSUPPORTED_KIND(kind_parallel, "flows.knative.dev/v1", "Parallel",
                    "parallels", "parallel")
KN_UNSUPPORTED_KIND(kind_ping, "sources.knative.dev/v1", "PingSource",
                    "pingsources", "pingsource")
KN_UNSUPPORTED_KIND(kind_container, "sources.knative.dev/v1",
                    "ContainerSource", "containersources",
                    "containersource")
KN_UNSUPPORTED_KIND(kind_sinkbinding, "sources.knative.dev/v1",
                    "SinkBinding", "sinkbindings", "sinkbinding")
KN_UNSUPPORTED_KIND(kind_apiserver, "sources.knative.dev/v1",
                    "ApiServerSource", "apiserversources",
                    "apiserversource")
KN_UNSUPPORTED_KIND(kind_kafkasource, "sources.knative.dev/v1beta1",
                    "KafkaSource", "kafkasources", "kafkasource")
KN_UNSUPPORTED_KIND(kind_kafkasink, "eventing.knative.dev/v1alpha1",
                    "KafkaSink", "kafkasinks", "kafkasink")
KN_UNSUPPORTED_KIND(kind_kafkachannel, "messaging.knative.dev/v1beta1",
                    "KafkaChannel", "kafkachannels", "kafkachannel")
KN_UNSUPPORTED_KIND(kind_service, "serving.knative.dev/v1", "Service",
                    "services", "service")
KN_UNSUPPORTED_KIND(kind_configuration, "serving.knative.dev/v1",
                    "Configuration", "configurations", "configuration")
KN_UNSUPPORTED_KIND(kind_revision, "serving.knative.dev/v1", "Revision",
                    "revisions", "revision")
KN_UNSUPPORTED_KIND(kind_route, "serving.knative.dev/v1", "Route", "routes",
                    "route")

const kn_kind *const kn_kinds[] = {
    &kn_kind_broker,
    &kn_kind_configmap,
    &kn_kind_trigger,
    &kind_eventtype,
    &kind_eventpolicy,
    &kind_channel,
    &kind_imc,
    &kind_subscription,
    &kind_sequence,
    &kind_parallel,
    &kind_ping,
    &kind_container,
    &kind_sinkbinding,
    &kind_apiserver,
    &kind_kafkasource,
    &kind_kafkasink,
    &kind_kafkachannel,
    &kind_service,
    &kind_configuration,
    &kind_revision,
    &kind_route,
    NULL,
};
