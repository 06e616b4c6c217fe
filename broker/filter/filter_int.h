/*
 * Internals shared by the files of broker/filter/: the compiled form of a
 * trigger filter (filter.c) and what the index (index.c) reads from it.
 *
 * A compiled filter is a flat array of nodes. Leaves test one attribute
 * (exact / prefix / suffix / present) or run one CESQL expression; inner
 * nodes combine their children (all / any / not). Strings (attribute names,
 * values, clause paths) live in one pool owned by the filter and are
 * referenced by offset. Immutable after kn_filter_compile.
 */
#ifndef KNIT_BROKER_FILTER_INT_H
#define KNIT_BROKER_FILTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/filter/filter.h"
#include "cloudevents/cesql.h"

typedef enum kf_op {
    KF_TRUE = 0, /* matches everything (no filter at all) */
    KF_ALL,      /* every child matches (filters array, attributes, all) */
    KF_ANY,      /* at least one child matches */
    KF_NOT,      /* the one child does not match */
    KF_EXACT,    /* attribute present and equal to the value */
    KF_PREFIX,   /* attribute present and starts with the value */
    KF_SUFFIX,   /* attribute present and ends with the value */
    KF_PRESENT,  /* attribute present (legacy attribute with value "") */
    KF_CESQL,    /* CESQL expression evaluates to Boolean true */
} kf_op;

typedef struct kf_node {
    uint8_t op;          /* kf_op */
    uint32_t kid0;       /* ALL/ANY: first index in kn_filter.kids;
                            NOT: the child node */
    uint32_t nkids;      /* ALL/ANY: number of children */
    uint32_t attr_off;   /* leaf: attribute name in the pool */
    uint32_t attr_len;
    uint32_t val_off;    /* EXACT/PREFIX/SUFFIX: value in the pool */
    uint32_t val_len;
    uint32_t path_off;   /* clause path ("spec.filters[1].exact.type") */
    ce_sql_expr *sql;    /* CESQL: owned */
} kf_node;

struct kn_filter {
    kf_node *nodes;
    uint32_t nnodes;
    uint32_t root;
    uint32_t *kids; /* children of ALL/ANY nodes, in document order */
    uint32_t nkids;
    char *pool;     /* NUL-terminated strings, referenced by offset */
    size_t pool_len;
};

static inline const char *kf_str(const kn_filter *f, uint32_t off)
{
    return f->pool + off;
}

/* A necessary condition of a filter: the filter can only match an event
 * whose attribute `attr` satisfies it. Strings are borrowed from the
 * filter (its pool or its CESQL expressions). */
typedef enum kf_cond_kind {
    KF_COND_EXACT = 0,
    KF_COND_PREFIX,
    KF_COND_SUFFIX,
    KF_COND_PRESENT,
} kf_cond_kind;

typedef struct kf_cond {
    kf_cond_kind kind;
    const char *attr;
    uint32_t attr_len;
    const char *val;
    uint32_t val_len;
} kf_cond;

/* Fills up to `max` necessary conditions of f (see index.c for which
 * clauses qualify) and returns how many exist in total. *whole is set to
 * true when the filter is exactly its one condition (matching that
 * condition is matching the filter; no verification needed). */
size_t kf_conditions(const kn_filter *f, kf_cond *out, size_t max,
                     bool *whole);

/* The condition trigger i is filed under in the index (false: it is in
 * the always list or an unused slot). O(index size): for tests. */
bool kf_index_key(const kn_filter_index *ix, size_t i, kf_cond *out);

/* Evaluates node i (no explanation). Used by the index to verify
 * candidates. */
bool kf_eval(const kn_filter *f, uint32_t i, const ce_event *ev);

#endif /* KNIT_BROKER_FILTER_INT_H */
