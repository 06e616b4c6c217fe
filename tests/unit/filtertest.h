/*
 * Helpers shared by the trigger filter tests (025x-026x): a trigger spec
 * from YAML text, compiling it (expecting success or an error), and test
 * events built from "name=value" pairs. Header-only; each test binary
 * includes it once (after cmocka.h).
 */
#ifndef KNIT_TESTS_FILTERTEST_H
#define KNIT_TESTS_FILTERTEST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/filter/filter.h"
#include "common/common.h"

/* The spec object of a YAML text (a trigger spec, not a whole trigger). */
static inline json_t *ft_spec(const char *yaml)
{
    kn_yaml_doc *docs = NULL;
    size_t n = 0;
    kn_err err;
    memset(&err, 0, sizeof err);
    if (kn_yaml_load("spec.yaml", yaml, strlen(yaml), &docs, &n, &err) < 0 ||
        n != 1) {
        fprintf(stderr, "bad test YAML: %s\n%s\n", err.msg, yaml);
        abort();
    }
    json_t *root = json_incref(docs[0].root);
    kn_yaml_docs_free(docs, n);
    return root;
}

/* Compiles a spec given as YAML; aborts the test on an error. */
static inline kn_filter *ft_compile(const char *yaml)
{
    json_t *spec = ft_spec(yaml);
    kn_filter *f = NULL;
    kn_err err;
    memset(&err, 0, sizeof err);
    int rc = kn_filter_compile(spec, "spec", &f, &err);
    json_decref(spec);
    if (rc != KN_OK) {
        fprintf(stderr, "compile failed: %s: %s\n%s\n", err.field, err.msg,
                yaml);
        abort();
    }
    return f;
}

/* Compiles a spec expected to fail; returns the status, err filled. */
static inline int ft_compile_err(const char *yaml, kn_err *err)
{
    json_t *spec = ft_spec(yaml);
    kn_filter *f = NULL;
    memset(err, 0, sizeof *err);
    int rc = kn_filter_compile(spec, "spec", &f, err);
    json_decref(spec);
    if (rc == KN_OK) {
        kn_filter_free(f);
        fprintf(stderr, "compile unexpectedly succeeded:\n%s\n", yaml);
        abort();
    }
    if (f)
        abort();
    return rc;
}

/* A frozen event: specversion/id/source/type set, then each "name=value"
 * argument (NULL-terminated list). A name prefixed with "i:" or "b:"
 * makes an Integer or Boolean extension ("i:prio=5"). "type=" etc.
 * override the defaults; "-name" removes an attribute. */
static inline ce_event *ft_event(const char *first, ...)
{
    ce_event *ev = ce_event_new();
    ce_err ce;
    if (!ev)
        abort();
    if (ce_event_set_str(ev, "specversion", "1.0", &ce) ||
        ce_event_set_str(ev, "id", "1", &ce) ||
        ce_event_set_str(ev, "source", "/src", &ce) ||
        ce_event_set_str(ev, "type", "t", &ce))
        abort();
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *)) {
        ce_type t = CE_TYPE_STRING;
        if (a[0] == '-') {
            ce_event_unset(ev, a + 1);
            continue;
        }
        if (a[0] == 'i' && a[1] == ':') {
            t = CE_TYPE_INTEGER;
            a += 2;
        } else if (a[0] == 'b' && a[1] == ':') {
            t = CE_TYPE_BOOLEAN;
            a += 2;
        }
        const char *eq = strchr(a, '=');
        if (!eq)
            abort();
        if (ce_event_setn(ev, a, (size_t)(eq - a), eq + 1, strlen(eq + 1),
                          t, &ce) != CE_OK) {
            fprintf(stderr, "bad test attribute %s: %s\n", a, ce.msg);
            abort();
        }
    }
    va_end(ap);
    ce_event_freeze(ev);
    return ev;
}

/* Match of a YAML spec against an event (compiles, matches, frees). */
static inline bool ft_match(const char *yaml, const ce_event *ev)
{
    kn_filter *f = ft_compile(yaml);
    bool m = kn_filter_match(f, ev, NULL);
    kn_filter_explain why;
    bool m2 = kn_filter_match(f, ev, &why);
    kn_filter_free(f);
    if (m != m2) /* the explaining evaluation must agree */
        abort();
    return m;
}

#endif /* KNIT_TESTS_FILTERTEST_H */
