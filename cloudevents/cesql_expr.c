/*
 * CESQL compiled-expression utilities: freeing, introspection
 * (ce_sql_result_type, ce_sql_terms for the trigger index), the fully
 * bracketed printer (ce_sql_format) and error descriptions
 * (ce_sql_ctx_explain).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudevents/cesql_int.h"

void ce_sql_free(ce_sql_expr *x)
{
    if (!x)
        return;
    free(x->nodes);
    free(x->kids);
    free(x->items);
    free(x->pool);
    free(x->src);
    free(x);
}

const char *ce_sql_source(const ce_sql_expr *x)
{
    return x->src;
}

ce_sql_type ce_sql_result_type(const ce_sql_expr *x)
{
    return (ce_sql_type)x->nodes[x->root].type;
}

bool ce_sql_is_constant(const ce_sql_expr *x)
{
    return x->nodes[x->root].op == OP_CONST;
}

const char *ce_sql_error_str(ce_sql_error e)
{
    switch (e) {
    case CE_SQL_OK: return "";
    case CE_SQL_EPARSE: return "parse";
    case CE_SQL_EMATH: return "math";
    case CE_SQL_ECAST: return "cast";
    case CE_SQL_EMISSING_ATTRIBUTE: return "missingAttribute";
    case CE_SQL_EMISSING_FUNCTION: return "missingFunction";
    case CE_SQL_EFUNCTION: return "functionEvaluation";
    default: return "generic";
    }
}

const char *ce_sql_type_str(ce_sql_type t)
{
    switch (t) {
    case CE_SQL_BOOLEAN: return "Boolean";
    case CE_SQL_INTEGER: return "Integer";
    case CE_SQL_STRING: return "String";
    default: return "Any";
    }
}

/* ------------------------------------------------------------ terms */

static size_t terms_of(const ce_sql_expr *x, uint32_t idx, ce_sql_term *out,
                       size_t max, size_t count)
{
    const cs_node *nd = &x->nodes[idx];
    if (nd->op == OP_AND) {
        for (uint32_t k = 0; k < nd->n; k++)
            count = terms_of(x, x->kids[nd->b + k], out, max, count);
        return count;
    }
    ce_sql_term t;
    const cs_node *l = &x->nodes[nd->a];
    if (nd->op == OP_EQ) {
        const cs_node *r = &x->nodes[nd->b];
        if (l->op != OP_ATTR || r->op != OP_CONST || r->type != CS_T_STR ||
            r->err)
            return count;
        t.kind = CE_SQL_TERM_EXACT;
        t.value = x->pool + r->soff;
        t.value_len = r->slen;
    } else if (nd->op == OP_LIKE && !(nd->flags & CS_F_NEGATE) &&
               l->op == OP_ATTR) {
        if (nd->like == CS_LIKE_EXACT)
            t.kind = CE_SQL_TERM_EXACT;
        else if (nd->like == CS_LIKE_PREFIX)
            t.kind = CE_SQL_TERM_PREFIX;
        else if (nd->like == CS_LIKE_SUFFIX)
            t.kind = CE_SQL_TERM_SUFFIX;
        else
            return count;
        /* EXACT with no items has an empty literal at offset 0: use "" */
        t.value = nd->slen ? x->pool + nd->soff : "";
        t.value_len = nd->slen;
    } else {
        return count;
    }
    t.attr = x->pool + l->soff;
    t.attr_len = l->slen;
    if (count < max)
        out[count] = t;
    return count + 1;
}

size_t ce_sql_terms(const ce_sql_expr *x, ce_sql_term *out, size_t max)
{
    return terms_of(x, x->root, out, max, 0);
}

/* ------------------------------------------------------------ format */

typedef struct wbuf {
    char *buf;
    size_t size, len;
} wbuf;

__attribute__((format(printf, 2, 3)))
static void wr(wbuf *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = w->len < w->size ? w->size - w->len : 0;
    int n = vsnprintf(room ? w->buf + w->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        w->len += (size_t)n;
}

/* Whether s can be written between quotes q with \q escapes: the lexer
 * pairs a backslash with whatever follows, so an odd run of backslashes
 * must not precede a quote or the closing quote. */
static bool quotable(const char *s, size_t n, char q)
{
    size_t run = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] == '\\') {
            run++;
            continue;
        }
        if ((i == n || s[i] == q) && run % 2)
            return false;
        run = 0;
    }
    return true;
}

/* A string literal that reads back as s: single quotes if possible, else
 * double quotes. (A value folded from functions, such as a backslash
 * before both kinds of quote, may have no literal form; it is then shown
 * in single quotes regardless.) */
static void wr_str(wbuf *w, const char *s, size_t n)
{
    char q = quotable(s, n, '\'') || !quotable(s, n, '"') ? '\'' : '"';
    wr(w, "%c", q);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == q)
            wr(w, "\\");
        wr(w, "%c", s[i]);
    }
    wr(w, "%c", q);
}

static const char *op_text(const cs_node *nd)
{
    static const char *const t[OP__COUNT] = {
        [OP_AND] = "AND", [OP_OR] = "OR", [OP_XOR] = "XOR", [OP_EQ] = "=",
        [OP_NE] = "!=", [OP_LT] = "<", [OP_LE] = "<=", [OP_GT] = ">",
        [OP_GE] = ">=", [OP_ADD] = "+", [OP_SUB] = "-", [OP_MUL] = "*",
        [OP_DIV] = "/", [OP_MOD] = "%",
    };
    if (nd->op == OP_NE && (nd->flags & CS_F_DIAMOND))
        return "<>";
    return t[nd->op] ? t[nd->op] : "?";
}

static void fmt_node(const ce_sql_expr *x, uint32_t idx, wbuf *w);

static void fmt_list(const ce_sql_expr *x, const cs_node *nd, wbuf *w,
                     const char *sep)
{
    for (uint32_t k = 0; k < nd->n; k++) {
        if (k)
            wr(w, "%s", sep);
        fmt_node(x, x->kids[nd->b + k], w);
    }
}

static void fmt_const(const ce_sql_expr *x, const cs_node *nd, wbuf *w)
{
    if (nd->err)    /* a folded error: show what was written */
        wr(w, "%.*s", (int)(nd->end - nd->pos), x->src + nd->pos);
    else if (nd->type == CS_T_BOOL)
        wr(w, "%s", nd->i ? "TRUE" : "FALSE");
    else if (nd->type == CS_T_INT)
        wr(w, "%d", (int)nd->i);
    else
        wr_str(w, x->pool + nd->soff, nd->slen);
}

static void fmt_node(const ce_sql_expr *x, uint32_t idx, wbuf *w)
{
    const cs_node *nd = &x->nodes[idx];
    const char *neg = nd->flags & CS_F_NEGATE ? "NOT " : "";
    switch (nd->op) {
    case OP_CONST:
        fmt_const(x, nd, w);
        break;
    case OP_ATTR:
        wr(w, "%s", x->pool + nd->soff);
        break;
    case OP_EXISTS:
        wr(w, "(EXISTS %s)", x->pool + nd->soff);
        break;
    case OP_NOT:
    case OP_NEG:
        wr(w, "(%s ", nd->op == OP_NOT ? "NOT" : "-");
        fmt_node(x, nd->a, w);
        wr(w, ")");
        break;
    case OP_AND:
    case OP_OR:
    case OP_XOR: {
        char sep[8];
        snprintf(sep, sizeof sep, " %s ", op_text(nd));
        wr(w, "(");
        fmt_list(x, nd, w, sep);
        wr(w, ")");
        break;
    }
    case OP_LIKE: {
        size_t pos = (size_t)nd->i;
        cs_tok t;
        cs_lex(x->src, x->src_len, &pos, &t);
        wr(w, "(");
        fmt_node(x, nd->a, w);
        wr(w, " %sLIKE %.*s)", neg, (int)t.len, x->src + t.pos);
        break;
    }
    case OP_IN:
        wr(w, "(");
        fmt_node(x, nd->a, w);
        wr(w, " %sIN (", neg);
        fmt_list(x, nd, w, ", ");
        wr(w, "))");
        break;
    case OP_CALL:
    case OP_CAST:
    case OP_NOFUNC:
        wr(w, "%s(", nd->op != OP_NOFUNC ? cs_functions[nd->fn].name
                                         : x->pool + nd->soff);
        fmt_list(x, nd, w, ", ");
        wr(w, ")");
        break;
    default:
        wr(w, "(");
        fmt_node(x, nd->a, w);
        wr(w, " %s ", op_text(nd));
        fmt_node(x, nd->b, w);
        wr(w, ")");
        break;
    }
}

size_t ce_sql_format(const ce_sql_expr *x, char *buf, size_t size)
{
    wbuf w = {buf, size, 0};
    if (size)
        buf[0] = 0;
    fmt_node(x, x->root, &w);
    return w.len;
}

/* ------------------------------------------------------------ explain */

size_t ce_sql_ctx_explain(const ce_sql_ctx *ctx, const ce_sql_expr *x,
                          char *buf, size_t size)
{
    wbuf w = {buf, size, 0};
    if (size)
        buf[0] = 0;
    if (!ctx->err)
        return 0;
    if (ctx->node >= x->nnodes) {   /* ctx last evaluated another expr */
        wr(&w, "%s error", ce_sql_error_str((ce_sql_error)ctx->err));
        return w.len;
    }
    const cs_node *nd = &x->nodes[ctx->node];
    uint32_t pos = nd->pos, end = nd->end;
    if (nd->op == OP_CONST && nd->err) {    /* folded at compile time */
        pos = nd->a;
        end = nd->b;
    }
    if (end > x->src_len || end < pos)
        end = pos;
    static const char *const tname[] = {"Boolean", "Integer", "String"};
    switch (ctx->detail) {
    case D_DIV_ZERO:
        wr(&w, "math error: division by zero");
        break;
    case D_OVERFLOW:
        wr(&w, "math error: integer overflow");
        break;
    case D_CAST:
        if (ctx->hasval)
            wr(&w, "cast error: cannot cast '%.*s'%s to %s",
               (int)ctx->vlen, ctx->val, ctx->vtrunc ? "..." : "",
               tname[ctx->arg < 3 && ctx->arg >= 0 ? ctx->arg : 2]);
        else
            wr(&w, "cast error: cannot cast to %s",
               tname[ctx->arg < 3 && ctx->arg >= 0 ? ctx->arg : 2]);
        break;
    case D_MISSING_ATTR:
        wr(&w, "missing attribute '%s'", x->pool + nd->soff);
        break;
    case D_NO_FUNC:
        wr(&w, "missing function: no function of that name takes %d "
           "argument%s", (int)ctx->arg, ctx->arg == 1 ? "" : "s");
        break;
    case D_NEG_LEN:
        wr(&w, "function error: length %d is negative", (int)ctx->arg);
        break;
    case D_SUBSTR_POS:
        wr(&w, "function error: position %d is beyond the string",
           (int)ctx->arg);
        break;
    case D_NOMEM:
        wr(&w, "out of memory");
        break;
    default:
        wr(&w, "%s error", ce_sql_error_str((ce_sql_error)ctx->err));
        break;
    }
    wr(&w, " in \"%.*s\" (at byte %u)", (int)(end - pos), x->src + pos, pos);
    return w.len;
}
