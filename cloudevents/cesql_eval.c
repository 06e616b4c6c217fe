/*
 * CESQL evaluator: walks the node array of a compiled expression against
 * one event, fail-fast (the first error stops evaluation; every enclosing
 * node yields the zero value of its type). Also the casting rules (CESQL
 * section 3.7), LIKE matching, the scratch context and the public
 * evaluation entry points.
 *
 * Evaluation order: operands are evaluated left to right, then converted
 * to the types the operator needs, left to right; the first error wins.
 * AND and OR stop at the first operand that decides the result; IN stops
 * at the first set element that matches.
 *
 * No heap allocation happens here once a context's scratch area is large
 * enough: strings point into the event, the expression, or the scratch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudevents/cesql_int.h"

#define NODE(st, i) (&(st)->x->nodes[(i)])

/* ------------------------------------------------------------ context */

enum { CHUNK_MIN = 4096 };

static cs_chunk *chunk_new(size_t cap)
{
    cs_chunk *c = malloc(sizeof *c + cap);
    if (!c)
        return NULL;
    c->next = NULL;
    c->cap = cap;
    c->heap = true;
    return c;
}

ce_sql_ctx *ce_sql_ctx_new(void)
{
    ce_sql_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    ctx->heap = true;
    ctx->head = ctx->cur = chunk_new(CHUNK_MIN);
    if (!ctx->head) {
        free(ctx);
        return NULL;
    }
    return ctx;
}

void cs_ctx_init_stack(ce_sql_ctx *ctx, void *stack, size_t size)
{
    memset(ctx, 0, sizeof *ctx);
    cs_chunk *c = stack;
    c->next = NULL;
    c->cap = size - sizeof *c;
    c->heap = false;
    ctx->head = ctx->cur = c;
}

void cs_ctx_fini(ce_sql_ctx *ctx)
{
    cs_chunk *c = ctx->head;
    while (c) {
        cs_chunk *next = c->next;
        if (c->heap)
            free(c);
        c = next;
    }
    ctx->head = ctx->cur = NULL;
}

void ce_sql_ctx_free(ce_sql_ctx *ctx)
{
    if (!ctx)
        return;
    cs_ctx_fini(ctx);
    if (ctx->heap)
        free(ctx);
}

void cs_ctx_reset(ce_sql_ctx *ctx)
{
    ctx->cur = ctx->head;
    ctx->used = 0;
    ctx->err = 0;
    ctx->detail = 0;
    ctx->node = 0;
    ctx->arg = 0;
    ctx->vlen = 0;
    ctx->vtrunc = false;
    ctx->hasval = false;
}

char *cs_scratch(ce_sql_ctx *ctx, size_t n)
{
    if (n > SIZE_MAX / 4)
        return NULL;
    size_t need = (n + 7) & ~(size_t)7;
    cs_chunk *c = ctx->cur;
    if (c->cap - ctx->used >= need) {
        char *r = c->data + ctx->used;
        ctx->used += need;
        return r;
    }
    cs_chunk *next = c->next;
    if (!next || next->cap < need) {
        size_t cap = c->cap * 2 > CHUNK_MIN ? c->cap * 2 : CHUNK_MIN;
        if (cap < need)
            cap = need;
        cs_chunk *fresh = chunk_new(cap);
        if (!fresh)
            return NULL;
        fresh->next = next;     /* keep smaller chunks for later reuse */
        c->next = fresh;
        next = fresh;
    }
    ctx->cur = next;
    ctx->used = need;
    return next->data;
}

/* ------------------------------------------------------------ errors */

int cs_raise(cs_eval *st, const cs_node *at, int e, int detail, int32_t arg)
{
    ce_sql_ctx *ctx = st->ctx;
    if (!ctx->err) {
        ctx->err = (uint8_t)e;
        ctx->detail = (uint8_t)detail;
        ctx->node = (uint32_t)(at - st->x->nodes);
        ctx->arg = arg;
    }
    return e;
}

int cs_raise_cast(cs_eval *st, const cs_node *at, const cs_val *v, int to)
{
    ce_sql_ctx *ctx = st->ctx;
    if (!ctx->err && v->t == CS_T_STR) {
        size_t n = v->n < sizeof ctx->val ? v->n : sizeof ctx->val;
        memcpy(ctx->val, v->s, n);
        ctx->vlen = (uint8_t)n;
        ctx->vtrunc = n < v->n;
        ctx->hasval = true;
    }
    return cs_raise(st, at, CE_SQL_ECAST, D_CAST, to);
}

/* ------------------------------------------------------------ casts */

void cs_zero(cs_val *v, int type)
{
    v->t = type == CS_T_ANY ? CS_T_BOOL : (uint8_t)type;
    v->i = 0;
    v->s = "";
    v->n = 0;
}

bool cs_parse_int(const char *s, size_t n, int32_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (n && (s[0] == '+' || s[0] == '-'))
        neg = s[i++] == '-';
    if (i == n)
        return false;
    int64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
        if (v > (int64_t)INT32_MAX + 1)
            return false;
    }
    if (neg)
        v = -v;
    if (v > INT32_MAX)
        return false;
    *out = (int32_t)v;
    return true;
}

static int bool_word(const char *s, size_t n)
{
    if (n == 4 && (s[0] | 0x20) == 't' && (s[1] | 0x20) == 'r' &&
        (s[2] | 0x20) == 'u' && (s[3] | 0x20) == 'e')
        return 1;
    if (n == 5 && (s[0] | 0x20) == 'f' && (s[1] | 0x20) == 'a' &&
        (s[2] | 0x20) == 'l' && (s[3] | 0x20) == 's' &&
        (s[4] | 0x20) == 'e')
        return 0;
    return -1;
}

bool cs_can_cast(const cs_val *v, int type)
{
    int32_t i;
    if (v->t != CS_T_STR || type == CS_T_STR || type == CS_T_ANY)
        return true;
    if (type == CS_T_INT)
        return cs_parse_int(v->s, v->n, &i);
    return bool_word(v->s, v->n) >= 0;
}

int cs_to_bool(cs_eval *st, const cs_node *at, cs_val *v)
{
    if (v->t == CS_T_BOOL)
        return 0;
    if (v->t == CS_T_INT) {
        v->i = v->i != 0;
    } else {
        int b = bool_word(v->s, v->n);
        if (b < 0) {
            int e = cs_raise_cast(st, at, v, CS_T_BOOL);
            cs_zero(v, CS_T_BOOL);
            return e;
        }
        v->i = b;
    }
    v->t = CS_T_BOOL;
    return 0;
}

int cs_to_int(cs_eval *st, const cs_node *at, cs_val *v)
{
    if (v->t == CS_T_INT)
        return 0;
    if (v->t == CS_T_STR && !cs_parse_int(v->s, v->n, &v->i)) {
        int e = cs_raise_cast(st, at, v, CS_T_INT);
        cs_zero(v, CS_T_INT);
        return e;
    }
    v->t = CS_T_INT;    /* a Boolean already holds 0 or 1 */
    return 0;
}

int cs_to_str(cs_eval *st, const cs_node *at, cs_val *v)
{
    if (v->t == CS_T_STR)
        return 0;
    if (v->t == CS_T_BOOL) {
        v->s = v->i ? "true" : "false";
        v->n = v->i ? 4 : 5;
    } else {
        char *buf = cs_scratch(st->ctx, 12);
        if (!buf) {
            cs_zero(v, CS_T_STR);
            return cs_raise(st, at, CE_SQL_EGENERIC, D_NOMEM, 0);
        }
        v->n = (size_t)snprintf(buf, 12, "%d", (int)v->i);
        v->s = buf;
    }
    v->t = CS_T_STR;
    return 0;
}

int cs_cast(cs_eval *st, const cs_node *at, cs_val *v, int type)
{
    if (v->t == type || type == CS_T_ANY)
        return 0;
    switch (type) {
    case CS_T_BOOL: return cs_to_bool(st, at, v);
    case CS_T_INT: return cs_to_int(st, at, v);
    default: return cs_to_str(st, at, v);
    }
}

/* ------------------------------------------------------------ LIKE */

bool cs_like_match(const ce_sql_expr *x, const cs_node *nd, const char *s,
                   size_t n)
{
    const cs_item *it = x->items + nd->b;
    uint32_t ni = nd->n, k = 0;
    size_t p = 0, star_p = 0;
    uint32_t star_k = UINT32_MAX;
    for (;;) {
        if (k < ni) {
            const cs_item *c = &it[k];
            if (c->kind == CS_ITEM_ANY) {
                star_k = k++;
                star_p = p;
                continue;
            }
            if (c->kind == CS_ITEM_ONE && p < n) {
                p += cs_utf8_len(s + p, n - p);
                k++;
                continue;
            }
            if (c->kind == CS_ITEM_LIT && n - p >= c->len &&
                !memcmp(s + p, x->pool + c->off, c->len)) {
                p += c->len;
                k++;
                continue;
            }
        } else if (p == n) {
            return true;
        }
        /* mismatch: let the last '%' swallow one more character */
        if (star_k == UINT32_MAX || star_p >= n)
            return false;
        star_p += cs_utf8_len(s + star_p, n - star_p);
        p = star_p;
        k = star_k + 1;
    }
}

static bool like(const ce_sql_expr *x, const cs_node *nd, const char *s,
                 size_t n)
{
    const char *lit = nd->slen ? x->pool + nd->soff : "";
    size_t ll = nd->slen;
    switch (nd->like) {
    case CS_LIKE_EXACT:
        return n == ll && !memcmp(s, lit, ll);
    case CS_LIKE_PREFIX:
        return n >= ll && !memcmp(s, lit, ll);
    case CS_LIKE_SUFFIX:
        return n >= ll && !memcmp(s + n - ll, lit, ll);
    case CS_LIKE_CONTAINS:
        return memmem(s, n, lit, ll) != NULL;
    case CS_LIKE_ANY:
        return true;
    default:
        return cs_like_match(x, nd, s, n);
    }
}

/* ------------------------------------------------------------ nodes */

static int fail_zero(const cs_node *nd, cs_val *out, int e)
{
    cs_zero(out, nd->type);
    return e;
}

static void set_bool(cs_val *out, bool b)
{
    out->t = CS_T_BOOL;
    out->i = b;
}

static void set_int(cs_val *out, int64_t i)
{
    out->t = CS_T_INT;
    out->i = (int32_t)i;
}

static inline int eval_const(cs_eval *st, const cs_node *nd, cs_val *out)
{
    out->t = nd->type;
    out->i = nd->i;
    out->s = nd->type == CS_T_STR ? st->x->pool + nd->soff : "";
    out->n = nd->slen;
    if (nd->err) {
        cs_raise(st, nd, nd->err, nd->detail, (int32_t)nd->n);
        return nd->err;
    }
    return 0;
}

static inline int eval_attr(cs_eval *st, const cs_node *nd, cs_val *out)
{
    size_t len = 0;
    ce_type ct = CE_TYPE_STRING;
    const char *v = NULL;
    if (st->ev)
        v = ce_event_getn(st->ev, st->x->pool + nd->soff, nd->slen, &len,
                          &ct);
    if (!v) {
        cs_zero(out, CS_T_BOOL);
        return cs_raise(st, nd, CE_SQL_EMISSING_ATTRIBUTE, D_MISSING_ATTR,
                        0);
    }
    if (ct == CE_TYPE_BOOLEAN) {
        set_bool(out, len == 4 && !memcmp(v, "true", 4));
    } else if (ct == CE_TYPE_INTEGER && cs_parse_int(v, len, &out->i)) {
        out->t = CS_T_INT;
    } else {
        out->t = CS_T_STR;
        out->s = v;
        out->n = len;
    }
    return 0;
}

static inline void eval_exists(cs_eval *st, const cs_node *nd, cs_val *out)
{
    set_bool(out, st->ev && ce_event_getn(st->ev, st->x->pool + nd->soff,
                                          nd->slen, NULL, NULL));
}

/* Evaluates a child, with constants, attributes and EXISTS (most
 * children) handled inline rather than through the dispatcher. */
static inline int child(cs_eval *st, uint32_t idx, cs_val *out)
{
    const cs_node *nd = NODE(st, idx);
    if (nd->op == OP_ATTR)
        return eval_attr(st, nd, out);
    if (nd->op == OP_CONST)
        return eval_const(st, nd, out);
    if (nd->op == OP_EXISTS) {
        eval_exists(st, nd, out);
        return 0;
    }
    return cs_eval_node(st, idx, out);
}

/* Casts with the no-op case inline. */
static inline int as_bool(cs_eval *st, const cs_node *at, cs_val *v)
{
    return v->t == CS_T_BOOL ? 0 : cs_to_bool(st, at, v);
}

static inline int as_int(cs_eval *st, const cs_node *at, cs_val *v)
{
    return v->t == CS_T_INT ? 0 : cs_to_int(st, at, v);
}

static inline int as_str(cs_eval *st, const cs_node *at, cs_val *v)
{
    return v->t == CS_T_STR ? 0 : cs_to_str(st, at, v);
}

static inline int as_type(cs_eval *st, const cs_node *at, cs_val *v, int t)
{
    return v->t == t || t == CS_T_ANY ? 0 : cs_cast(st, at, v, t);
}

static int eval_cast(cs_eval *st, const cs_node *nd, cs_val *out)
{
    int e = child(st, nd->a, out);
    if (!e)
        e = as_type(st, nd, out, nd->type);
    return e ? fail_zero(nd, out, e) : 0;
}

static int eval_unary(cs_eval *st, const cs_node *nd, cs_val *out)
{
    int e = child(st, nd->a, out);
    if (!e)
        e = nd->op == OP_NOT ? as_bool(st, nd, out)
                             : as_int(st, nd, out);
    if (e)
        return fail_zero(nd, out, e);
    if (nd->op == OP_NOT) {
        out->i = !out->i;
        return 0;
    }
    if (out->i == INT32_MIN)
        return fail_zero(nd, out, cs_raise(st, nd, CE_SQL_EMATH,
                                           D_OVERFLOW, 0));
    out->i = -out->i;
    return 0;
}

/* AND / OR: stop at the first operand that decides. XOR: all. */
static int eval_logic(cs_eval *st, const cs_node *nd, cs_val *out)
{
    const uint32_t *kids = st->x->kids + nd->b;
    bool acc = nd->op == OP_AND;
    for (uint32_t k = 0; k < nd->n; k++) {
        int e = child(st, kids[k], out);
        if (!e)
            e = as_bool(st, nd, out);
        if (e)
            return fail_zero(nd, out, e);
        bool b = out->i != 0;
        if (nd->op == OP_XOR) {
            acc ^= b;
        } else if (b != (nd->op == OP_AND)) {
            acc = b;
            break;
        }
    }
    set_bool(out, acc);
    return 0;
}

static bool val_equal(const cs_val *l, const cs_val *r)
{
    if (l->t == CS_T_STR)
        return l->n == r->n && !memcmp(l->s, r->s, l->n);
    return l->i == r->i;
}

/* = and <>: the left operand is cast to the right operand's type. */
static int eval_equal(cs_eval *st, const cs_node *nd, cs_val *out)
{
    cs_val l, r;
    int e = child(st, nd->a, &l);
    if (!e)
        e = child(st, nd->b, &r);
    if (!e)
        e = as_type(st, nd, &l, r.t);
    if (e)
        return fail_zero(nd, out, e);
    set_bool(out, val_equal(&l, &r) == (nd->op == OP_EQ));
    return 0;
}

static int arith(cs_eval *st, const cs_node *nd, int64_t l, int64_t r,
                 cs_val *out)
{
    int64_t v;
    switch (nd->op) {
    case OP_LT: set_bool(out, l < r); return 0;
    case OP_LE: set_bool(out, l <= r); return 0;
    case OP_GT: set_bool(out, l > r); return 0;
    case OP_GE: set_bool(out, l >= r); return 0;
    case OP_ADD: v = l + r; break;
    case OP_SUB: v = l - r; break;
    case OP_MUL: v = l * r; break;
    default: /* OP_DIV, OP_MOD: truncate toward zero, C semantics */
        if (r == 0)
            return fail_zero(nd, out, cs_raise(st, nd, CE_SQL_EMATH,
                                               D_DIV_ZERO, 0));
        v = nd->op == OP_DIV ? l / r : l % r;
        break;
    }
    if (v < INT32_MIN || v > INT32_MAX)
        return fail_zero(nd, out, cs_raise(st, nd, CE_SQL_EMATH,
                                           D_OVERFLOW, 0));
    set_int(out, v);
    return 0;
}

/* < <= > >= + - * / %: Integer operands. */
static int eval_int_binary(cs_eval *st, const cs_node *nd, cs_val *out)
{
    cs_val l, r;
    int e = child(st, nd->a, &l);
    if (!e)
        e = child(st, nd->b, &r);
    if (!e)
        e = as_int(st, nd, &l);
    if (!e)
        e = as_int(st, nd, &r);
    if (e)
        return fail_zero(nd, out, e);
    return arith(st, nd, l.i, r.i, out);
}

static int eval_like(cs_eval *st, const cs_node *nd, cs_val *out)
{
    int e = child(st, nd->a, out);
    if (!e)
        e = as_str(st, nd, out);
    if (e)
        return fail_zero(nd, out, e);
    bool m = like(st->x, nd, out->s, out->n);
    set_bool(out, m != ((nd->flags & CS_F_NEGATE) != 0));
    return 0;
}

/* x IN (set): each element is cast to x's type and compared with =. */
static int eval_in(cs_eval *st, const cs_node *nd, cs_val *out)
{
    cs_val l, r;
    int e = child(st, nd->a, &l);
    if (e)
        return fail_zero(nd, out, e);
    const uint32_t *kids = st->x->kids + nd->b;
    bool found = false;
    for (uint32_t k = 0; k < nd->n && !found; k++) {
        e = child(st, kids[k], &r);
        if (!e)
            e = as_type(st, nd, &r, l.t);
        if (e)
            return fail_zero(nd, out, e);
        found = val_equal(&l, &r);
    }
    set_bool(out, found != ((nd->flags & CS_F_NEGATE) != 0));
    return 0;
}

enum { ARGS_LOCAL = 8 };

static int eval_call(cs_eval *st, const cs_node *nd, cs_val *out)
{
    const cs_fn *f = &cs_functions[nd->fn];
    cs_val local[ARGS_LOCAL], *args = local;
    if (nd->n > ARGS_LOCAL) {
        args = (cs_val *)(void *)cs_scratch(st->ctx, nd->n * sizeof *args);
        if (!args)
            return fail_zero(nd, out, cs_raise(st, nd, CE_SQL_EGENERIC,
                                               D_NOMEM, 0));
    }
    for (uint32_t k = 0; k < nd->n; k++) {
        int e = child(st, st->x->kids[nd->b + k], &args[k]);
        if (e)
            return fail_zero(nd, out, e);
    }
    for (uint32_t k = 0; k < nd->n; k++) {
        int e = as_type(st, nd, &args[k], cs_fn_arg_type(f, k));
        if (e)
            return fail_zero(nd, out, e);
    }
    return f->impl(st, nd, args, nd->n, out);
}

int cs_eval_node(cs_eval *st, uint32_t idx, cs_val *out)
{
    const cs_node *nd = NODE(st, idx);
    switch (nd->op) {
    case OP_CONST:
        return eval_const(st, nd, out);
    case OP_ATTR:
        return eval_attr(st, nd, out);
    case OP_EXISTS:
        eval_exists(st, nd, out);
        return 0;
    case OP_NOT:
    case OP_NEG:
        return eval_unary(st, nd, out);
    case OP_AND:
    case OP_OR:
    case OP_XOR:
        return eval_logic(st, nd, out);
    case OP_EQ:
    case OP_NE:
        return eval_equal(st, nd, out);
    case OP_LIKE:
        return eval_like(st, nd, out);
    case OP_IN:
        return eval_in(st, nd, out);
    case OP_CALL:
        return eval_call(st, nd, out);
    case OP_CAST:
        return eval_cast(st, nd, out);
    case OP_NOFUNC:
        return fail_zero(nd, out, cs_raise(st, nd,
                                           CE_SQL_EMISSING_FUNCTION,
                                           D_NO_FUNC, (int32_t)nd->n));
    default:
        return eval_int_binary(st, nd, out);
    }
}

/* ------------------------------------------------------------ API */

static void export(const cs_val *v, ce_sql_value *out)
{
    out->type = (ce_sql_type)v->t;
    out->b = v->t == CS_T_BOOL && v->i;
    out->i = v->t == CS_T_INT ? v->i : 0;
    out->s = v->t == CS_T_STR ? v->s : NULL;
    out->len = v->t == CS_T_STR ? v->n : 0;
}

ce_sql_error ce_sql_eval(const ce_sql_expr *x, const ce_event *ev,
                         ce_sql_ctx *ctx, ce_sql_value *out)
{
    cs_ctx_reset(ctx);
    cs_eval st = {x, ev, ctx};
    cs_val v;
    int e = cs_eval_node(&st, x->root, &v);
    export(&v, out);
    return (ce_sql_error)e;
}

bool ce_sql_match(const ce_sql_expr *x, const ce_event *ev, ce_sql_ctx *ctx)
{
    _Alignas(16) char stack[512];
    ce_sql_ctx local;
    if (!ctx) {
        cs_ctx_init_stack(&local, stack, sizeof stack);
        ctx = &local;
    }
    cs_ctx_reset(ctx);
    cs_eval st = {x, ev, ctx};
    cs_val v;
    int e = cs_eval_node(&st, x->root, &v);
    if (ctx == &local)
        cs_ctx_fini(&local);
    return !e && v.t == CS_T_BOOL && v.i;
}
