/*
 * CESQL v1.0 (CloudEvents SQL): compile an expression once, evaluate it
 * against many events. Part of libknit-cloudevents; see docs/filters-cesql.md
 * for the language as knit implements it.
 *
 * Model
 * - ce_sql_compile() parses and type-checks the text and folds constant
 *   sub-expressions into a compact node array (ce_sql_expr). A compiled
 *   expression is immutable: any number of threads may evaluate it at once.
 * - ce_sql_eval() evaluates it against one event. It never allocates once
 *   the scratch context is warm: strings produced during evaluation (LOWER,
 *   CONCAT, casts of integers, ...) live in a ce_sql_ctx that the caller
 *   owns, one per thread. Results stay valid until the next evaluation
 *   with the same context.
 * - Evaluation is fail-fast, as the CESQL TCK expects: the first error
 *   stops evaluation and every enclosing operator yields the zero value of
 *   its type (false, 0, ""), together with the error kind.
 * - Event attributes are read with ce_event_getn(): Integer and Boolean
 *   attributes are seen as CESQL Integer and Boolean, every other type
 *   (String, URI, URI-reference, Timestamp, Binary) as String holding the
 *   canonical string.
 */
#ifndef KNIT_CLOUDEVENTS_CESQL_H
#define KNIT_CLOUDEVENTS_CESQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloudevents/cloudevents.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CESQL value types. CE_SQL_ANY is only used as a static result type, for
 * an expression that is a bare attribute reference (its type depends on
 * the event). */
typedef enum ce_sql_type {
    CE_SQL_BOOLEAN = 0,
    CE_SQL_INTEGER,
    CE_SQL_STRING,
    CE_SQL_ANY,
} ce_sql_type;

/* Error kinds of the CESQL specification (section 4.1). */
typedef enum ce_sql_error {
    CE_SQL_OK = 0,
    CE_SQL_EPARSE,             /* parse error (compile time only) */
    CE_SQL_EMATH,              /* division by zero, integer overflow */
    CE_SQL_ECAST,              /* a value cannot be cast to a type */
    CE_SQL_EMISSING_ATTRIBUTE, /* the event lacks a referenced attribute */
    CE_SQL_EMISSING_FUNCTION,  /* no function with that name and arity */
    CE_SQL_EFUNCTION,          /* function evaluation error (bad arg) */
    CE_SQL_EGENERIC,           /* anything else (e.g. out of memory) */
} ce_sql_error;

/* The TCK's name for an error kind: "parse", "math", "cast",
 * "missingAttribute", "missingFunction", "functionEvaluation", "generic";
 * "" for CE_SQL_OK. */
const char *ce_sql_error_str(ce_sql_error e);
/* "Boolean", "Integer", "String" or "Any". */
const char *ce_sql_type_str(ce_sql_type t);

/* A CESQL value. Strings are NOT NUL-terminated and are borrowed: they
 * point into the event, into the compiled expression, or into the
 * ce_sql_ctx scratch area, so they live as long as the shortest of those
 * (scratch: until the next ce_sql_eval with the same context). */
typedef struct ce_sql_value {
    ce_sql_type type;
    bool b;          /* CE_SQL_BOOLEAN */
    int32_t i;       /* CE_SQL_INTEGER */
    const char *s;   /* CE_SQL_STRING (never NULL for a String) */
    size_t len;
} ce_sql_value;

typedef struct ce_sql_expr ce_sql_expr;
typedef struct ce_sql_ctx ce_sql_ctx;

/* Compile flags. */
enum {
    /* Reject calls to unknown functions (or a known name with the wrong
     * number of arguments) at compile time with CE_EINVAL instead of
     * compiling them to a node that evaluates to false +
     * CE_SQL_EMISSING_FUNCTION (which is what the TCK expects). Use it
     * where a user can be told at once, e.g. when a trigger is applied. */
    CE_SQL_STRICT = 1u << 0,
    /* Keep constant sub-expressions as written (no folding). Evaluation
     * results are the same; useful with ce_sql_format to show how an
     * expression was parsed. */
    CE_SQL_NO_FOLD = 1u << 1,
};

/* Longest accepted source text and deepest accepted nesting. */
#define CE_SQL_MAX_SOURCE (1u << 20)
#define CE_SQL_MAX_DEPTH 128

/* Compiles `n` bytes of CESQL text. On success *out is a new expression
 * the caller frees with ce_sql_free.
 * Errors: CE_EPARSE (syntax; err->offset is the byte position, err->msg
 * says what was expected and what was found), CE_EINVAL (CE_SQL_STRICT
 * and an unknown function; offset points at its name), CE_ERANGE (text
 * longer than CE_SQL_MAX_SOURCE or nested deeper than CE_SQL_MAX_DEPTH),
 * CE_ENOMEM. err->attr is "cesql". Thread-safe. */
int ce_sql_compile(const char *src, size_t n, unsigned flags,
                   ce_sql_expr **out, ce_err *err);
/* Frees an expression; NULL is ignored. No evaluation may be running. */
void ce_sql_free(ce_sql_expr *x);

/* The source text the expression was compiled from (NUL-terminated). */
const char *ce_sql_source(const ce_sql_expr *x);
/* The static result type: Boolean, Integer, String, or CE_SQL_ANY when the
 * whole expression is one attribute reference. A filter whose type is
 * Integer or String can never match. */
ce_sql_type ce_sql_result_type(const ce_sql_expr *x);
/* True when the expression does not depend on the event (it was folded to
 * one constant); *value and the return of ce_sql_eval are then fixed. */
bool ce_sql_is_constant(const ce_sql_expr *x);

/* Writes the expression fully bracketed, one pair of parentheses per
 * operator, keywords and function names in upper case, e.g.
 * "((NOT a) = b)". Like snprintf: writes at most `size` bytes including
 * the NUL and returns the length the whole text needs. */
size_t ce_sql_format(const ce_sql_expr *x, char *buf, size_t size);

/* Scratch context for evaluation. One per thread (a context must not be
 * used by two evaluations at once). ce_sql_ctx_new returns NULL on ENOMEM.
 * Memory grows to the largest evaluation's need and is then reused. */
ce_sql_ctx *ce_sql_ctx_new(void);
void ce_sql_ctx_free(ce_sql_ctx *ctx);

/* Evaluates x against ev (ev may be NULL: every attribute is then
 * missing) using the caller's scratch context ctx (not NULL). Always
 * fills *out; returns CE_SQL_OK or the first error kind,
 * in which case *out holds the zero value of the failing expression's
 * type as the TCK expects (or the value a function defines for its error,
 * e.g. LEFT('abc', -2) = 'abc'). Thread-safe for distinct contexts. */
ce_sql_error ce_sql_eval(const ce_sql_expr *x, const ce_event *ev,
                         ce_sql_ctx *ctx, ce_sql_value *out);

/* Filter semantics (Subscriptions API): true only when the result is
 * Boolean true and no error occurred. ctx may be NULL, in which case a
 * small on-stack scratch area is used (and heap only for long strings). */
bool ce_sql_match(const ce_sql_expr *x, const ce_event *ev, ce_sql_ctx *ctx);

/* Describes the last error of the last ce_sql_eval on ctx (which must have
 * evaluated x) in `buf`, e.g. "missing attribute 'myext' (at byte 0)" or
 * "LEFT: length -2 is negative (at byte 0)". snprintf-like return; "" when
 * the last evaluation had no error. */
size_t ce_sql_ctx_explain(const ce_sql_ctx *ctx, const ce_sql_expr *x,
                          char *buf, size_t size);

/* ---------------------------------------------------------- indexing aid */

/* A necessary condition found among the top-level AND operands of an
 * expression: the expression can only be true when the attribute's
 * canonical string equals / starts with / ends with `value`. Recognised
 * forms are `attr = 'text'` and `attr LIKE 'pattern'` where the pattern is
 * literal text, `text%` or `%text` (attribute on the left; `=` with the
 * literal on the left is not used, it would cast the text instead).
 * Strings point into the expression. Integer-typed attributes whose
 * canonical form is "-0" are the one case where the condition is stricter
 * than CESQL (CESQL casts -0 to "0"); knit never produces "-0". */
typedef enum ce_sql_term_kind {
    CE_SQL_TERM_EXACT = 0,
    CE_SQL_TERM_PREFIX,
    CE_SQL_TERM_SUFFIX,
} ce_sql_term_kind;

typedef struct ce_sql_term {
    ce_sql_term_kind kind;
    const char *attr;    /* lower-case attribute name, NUL-terminated */
    size_t attr_len;
    const char *value;   /* NUL-terminated */
    size_t value_len;
} ce_sql_term;

/* Fills up to `max` terms and returns how many exist in total. */
size_t ce_sql_terms(const ce_sql_expr *x, ce_sql_term *out, size_t max);

#ifdef __cplusplus
}
#endif
#endif /* KNIT_CLOUDEVENTS_CESQL_H */
