/*
 * fuzz_cesql: ce_sql_compile on arbitrary bytes, with and without constant
 * folding and in strict mode. Every expression that compiles is evaluated
 * against a fixed event (attributes of every CloudEvents type), formatted,
 * explained and searched for index terms. Consistency is enforced with
 * abort():
 * - folded and unfolded compilation agree on success, result and error;
 * - the unfolded expression's ce_sql_format text compiles again and
 *   evaluates to the same result and error;
 * - ce_sql_match agrees with ce_sql_eval.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloudevents/cesql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ce_event *event;
static ce_sql_ctx *ctx1, *ctx2;

static void init(void)
{
    event = ce_event_new();
    ctx1 = ce_sql_ctx_new();
    ctx2 = ce_sql_ctx_new();
    if (!event || !ctx1 || !ctx2)
        abort();
    int rc = 0;
    rc |= ce_event_set_str(event, "specversion", "1.0", NULL);
    rc |= ce_event_set_str(event, "id", "id-1", NULL);
    rc |= ce_event_set_str(event, "source", "https://example.com/a", NULL);
    rc |= ce_event_set_str(event, "type", "com.example.created", NULL);
    rc |= ce_event_set_str(event, "subject", " Sub ject ", NULL);
    rc |= ce_event_set_str(event, "time", "2018-04-26T14:48:09+02:00", NULL);
    rc |= ce_event_set_int(event, "a", 10, NULL);
    rc |= ce_event_set_int(event, "b", -2147483647 - 1, NULL);
    rc |= ce_event_set_bool(event, "c", true, NULL);
    rc |= ce_event_set_str(event, "d", "5", NULL);
    rc |= ce_event_set_str(event, "e", "日本語 ÀÉ", NULL);
    rc |= ce_event_set_str(event, "f", "TRUE", NULL);
    rc |= ce_event_set(event, "g", "AQID", 4, CE_TYPE_BINARY, NULL);
    if (rc)
        abort();
    ce_event_freeze(event);
}

static bool same(ce_sql_error e1, const ce_sql_value *a, ce_sql_error e2,
                 const ce_sql_value *b)
{
    if (e1 != e2 || a->type != b->type)
        return false;
    if (a->type == CE_SQL_STRING)
        return a->len == b->len && (!a->len || !memcmp(a->s, b->s, a->len));
    return a->b == b->b && a->i == b->i;
}

/* Evaluates and exercises the read-only API; returns the error. */
static ce_sql_error run(const ce_sql_expr *x, ce_sql_ctx *ctx,
                        ce_sql_value *v)
{
    ce_sql_error e = ce_sql_eval(x, event, ctx, v);
    char buf[256];
    ce_sql_ctx_explain(ctx, x, buf, sizeof buf);
    ce_sql_term terms[4];
    size_t n = ce_sql_terms(x, terms, 4);
    for (size_t i = 0; i < n && i < 4; i++)
        if (!terms[i].attr || !terms[i].value)
            abort();
    (void)ce_sql_result_type(x);
    (void)ce_sql_is_constant(x);
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!event)
        init();
    const char *src = (const char *)data;
    ce_sql_expr *x = NULL, *y = NULL, *z = NULL;
    ce_err err;
    int rc1 = ce_sql_compile(src, size, 0, &x, &err);
    int rc2 = ce_sql_compile(src, size, CE_SQL_NO_FOLD, &y, &err);
    int rc3 = ce_sql_compile(src, size, CE_SQL_STRICT, &z, &err);
    ce_sql_free(z);
    if (rc1 != rc2 || (rc3 == CE_OK && rc1 != CE_OK))
        abort();
    if (rc1 != CE_OK) {
        if (x || y || err.offset < 0 || (size_t)err.offset > size)
            abort();
        return 0;
    }
    ce_sql_value v1, v2, v3;
    ce_sql_error e1 = run(x, ctx1, &v1);
    ce_sql_error e2 = run(y, ctx2, &v2);
    if (!same(e1, &v1, e2, &v2))
        abort();
    bool m = ce_sql_match(x, event, NULL);
    if (m != (e1 == CE_SQL_OK && v1.type == CE_SQL_BOOLEAN && v1.b))
        abort();

    /* the printed form of the unfolded parse reads back the same */
    size_t need = ce_sql_format(y, NULL, 0);
    char *text = malloc(need + 1);
    if (!text)
        abort();
    if (ce_sql_format(y, text, need + 1) != need || strlen(text) != need)
        abort();
    if (ce_sql_compile(text, need, 0, &z, &err) != CE_OK)
        abort();
    ce_sql_error e3 = run(z, ctx2, &v3);
    /* ctx2 was reused: compare with the folded result held in ctx1 */
    if (!same(e1, &v1, e3, &v3))
        abort();
    free(text);
    ce_sql_free(x);
    ce_sql_free(y);
    ce_sql_free(z);
    return 0;
}
