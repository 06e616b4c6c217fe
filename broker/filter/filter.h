/*
 * Trigger filters (DESIGN.md §4): the legacy `spec.filter.attributes` and
 * the Subscriptions API dialects of `spec.filters` (exact, prefix, suffix,
 * all, any, not, cesql), compiled once when a trigger is applied, and the
 * per-broker index that evaluates all triggers of a broker in one pass.
 *
 * Threads: compiled filters and indexes are immutable after build and may
 * be used from any thread; evaluation allocates nothing on the heap (scratch
 * space is per call or per kn_filter_scratch owned by the calling thread).
 */
#ifndef KNIT_BROKER_FILTER_H
#define KNIT_BROKER_FILTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloudevents/cloudevents.h"
#include "common/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kn_filter kn_filter;
typedef struct kn_filter_index kn_filter_index;

/* Compiles the filter of a trigger spec object (the JSON of `spec`, with
 * `filter` and/or `filters`; `filters` non-empty overrides `filter`).
 * Errors (bad dialect, several dialects in one element, empty value,
 * CESQL parse error with its position) go to err with err->field set to
 * the path under `path_prefix` (e.g. "spec.filters[2].cesql"). A spec
 * with no filter compiles to match-all. Returns KN_OK / KN_INVAL. */
int kn_filter_compile(const json_t *spec, const char *path_prefix,
                      kn_filter **out, kn_err *err);
void kn_filter_free(kn_filter *f);

/* Why an event did not match (for `knit filter test`): the path of the
 * first failing clause ("spec.filters[1].prefix.type") and a sentence. */
typedef struct kn_filter_explain {
    char clause[128];
    char reason[256];
} kn_filter_explain;

/* Evaluates one filter against ev (non-NULL). `why` may be NULL; on a
 * match it is cleared. CESQL evaluation errors are no-match (and counted
 * via kn_filter_cesql_errors(), process-wide). A NULL f never matches. */
bool kn_filter_match(const kn_filter *f, const ce_event *ev,
                     kn_filter_explain *why);
uint64_t kn_filter_cesql_errors(void);

/* The index over all triggers of a broker: filters[i] belongs to trigger
 * i (borrowed: they must outlive the index; the array itself is copied).
 * A NULL filters[i] is an unused slot that never matches. Cost of a
 * build: linear in the filters' conditions; KN_NOMEM, or KN_INVAL for
 * more than 2^31 - 1 triggers. kn_filter_index_size is n. */
int kn_filter_index_build(kn_filter *const *filters, size_t n,
                          kn_filter_index **out, kn_err *err);
void kn_filter_index_free(kn_filter_index *ix);
size_t kn_filter_index_size(const kn_filter_index *ix);
/* Sets bit i of `match` (an array of (n + 63) / 64 words, zeroed by the
 * function) for every trigger i whose filter matches. Returns the number
 * of matches. Gives exactly the same result as kn_filter_match on each
 * filter. */
size_t kn_filter_index_match(const kn_filter_index *ix, const ce_event *ev,
                             uint64_t *match);
/* Same matches as a list: stores the trigger numbers (in no particular
 * order, each once) in ids[0..max) and returns how many match in total
 * (when that exceeds max, only the first max are stored). Unlike the
 * bitmap form, its cost does not include clearing n bits. */
size_t kn_filter_index_match_ids(const kn_filter_index *ix,
                                 const ce_event *ev, uint32_t *ids,
                                 size_t max);

/* What an index holds (for metrics, logs and the benchmark). */
typedef struct kn_filter_index_stats {
    size_t triggers;   /* n given to the build */
    size_t indexed;    /* filed under one of their conditions */
    size_t always;     /* no usable condition: evaluated for every event */
    size_t verified;   /* filed triggers whose full filter runs on a hit */
    size_t keys;       /* distinct (attribute, kind, value) keys */
    size_t attributes; /* distinct attributes looked up per event */
    size_t bytes;      /* heap held by the index itself */
} kn_filter_index_stats;
void kn_filter_index_stats_get(const kn_filter_index *ix,
                               kn_filter_index_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* KNIT_BROKER_FILTER_H */
