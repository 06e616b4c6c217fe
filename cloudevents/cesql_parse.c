/*
 * CESQL parser and compiler: source text -> node array (cesql_int.h).
 *
 * Precedence follows the CESQL v1.0 ANTLR grammar (CESQLParser.g4), from
 * tightest to loosest:
 *   function call, literal, attribute, ( ), EXISTS   (primaries)
 *   NOT x, -x       prefix; the operand is a primary or another prefix
 *                   expression, so NOT a = b is (NOT a) = b
 *   x [NOT] LIKE 'pattern'
 *   x [NOT] IN (set)
 *   * / %           left-associative
 *   + -             left-associative
 *   = != <> < <= > >=   left-associative
 *   AND OR XOR      one level, right-associative: a AND b OR c is
 *                   a AND (b OR c)
 * Runs of the same logical operator become one n-ary node (evaluation is
 * identical, and long generated chains do not nest deeply).
 *
 * Each node is created after its children, and folded into a constant at
 * once when all its children are constants (unless CE_SQL_NO_FOLD); the
 * folding runs the evaluator itself, so compile-time and run-time results
 * cannot differ.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudevents/cesql_int.h"

#define NIL UINT32_MAX
/* Parser recursion (parentheses, prefix operators) may go deeper than the
 * tree, since "((x))" nests the parser but not the tree; the bound keeps
 * the C stack small. ce_sql_format's output of any accepted tree fits. */
#define MAX_PARSE_DEPTH (4 * CE_SQL_MAX_DEPTH)

enum { P_CMP = 1, P_ADD, P_MUL, P_IN, P_LIKE };

typedef struct parser {
    const char *src;
    size_t n;
    size_t lexpos;      /* where the token after `tok` starts */
    cs_tok tok;
    ce_sql_expr *x;
    ce_err *err;
    unsigned flags;
    int depth;
    bool failed;
    ce_code code;
    ce_sql_ctx *fold;
} parser;

/* ------------------------------------------------------------ errors */

__attribute__((format(printf, 4, 5)))
static uint32_t fail(parser *p, ce_code code, size_t pos, const char *fmt,
                     ...)
{
    if (p->failed)
        return NIL;
    p->failed = true;
    p->code = code;
    if (p->err) {
        p->err->code = code;
        snprintf(p->err->attr, sizeof p->err->attr, "cesql");
        p->err->offset = (long)pos;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
        va_end(ap);
    }
    return NIL;
}

static uint32_t nomem(parser *p)
{
    return fail(p, CE_ENOMEM, 0, "out of memory");
}

/* "expected X, found Y" at the current token. */
static uint32_t expected(parser *p, const char *what)
{
    char found[64];
    if (p->tok.kind == TK_ERROR)
        return fail(p, CE_EPARSE, p->tok.epos, "%s", p->tok.emsg);
    cs_tok_describe(p->src, &p->tok, found, sizeof found);
    const char *hint = "";
    if (p->tok.kind == TK_INT && (p->src[p->tok.pos] == '-' ||
                                  p->src[p->tok.pos] == '+'))
        hint = " (a sign before digits belongs to the number: "
               "write 'a - 1', not 'a -1')";
    return fail(p, CE_EPARSE, p->tok.pos, "expected %s, found %s%s", what,
                found, hint);
}

/* ------------------------------------------------------------ tokens */

static void advance(parser *p)
{
    cs_lex(p->src, p->n, &p->lexpos, &p->tok);
}

static int peek_kind(const parser *p)
{
    size_t pos = p->lexpos;
    cs_tok t;
    cs_lex(p->src, p->n, &pos, &t);
    return t.kind;
}

static bool accept(parser *p, int kind)
{
    if (p->tok.kind != kind)
        return false;
    advance(p);
    return true;
}

/* ------------------------------------------------------------ storage */

static bool grow(void **arr, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    uint32_t nc = *cap ? *cap : 16;
    while (nc < need)
        nc *= 2;
    void *na = realloc(*arr, (size_t)nc * elem);
    if (!na)
        return false;
    *arr = na;
    *cap = nc;
    return true;
}

/* Appends n bytes plus a NUL to the pool; returns the offset or NIL. */
static uint32_t pool_add(parser *p, const char *s, size_t n)
{
    ce_sql_expr *x = p->x;
    if (!grow((void **)&x->pool, &x->pcap, x->plen + (uint32_t)n + 1, 1))
        return nomem(p);
    uint32_t off = x->plen;
    if (n)
        memcpy(x->pool + off, s, n);
    x->pool[off + n] = 0;
    x->plen += (uint32_t)n + 1;
    return off;
}

static uint32_t new_node(parser *p, int op, int type, uint32_t pos,
                         uint32_t end)
{
    ce_sql_expr *x = p->x;
    if (!grow((void **)&x->nodes, &x->ncap, x->nnodes + 1, sizeof(cs_node)))
        return nomem(p);
    cs_node *nd = &x->nodes[x->nnodes];
    memset(nd, 0, sizeof *nd);
    nd->op = (uint8_t)op;
    nd->type = (uint8_t)type;
    nd->pos = pos;
    nd->end = end;
    nd->depth = 1;
    return x->nnodes++;
}

static uint32_t add_kids(parser *p, const uint32_t *k, uint32_t n)
{
    ce_sql_expr *x = p->x;
    if (!grow((void **)&x->kids, &x->kcap, x->nkids + n, sizeof(uint32_t)))
        return nomem(p);
    uint32_t start = x->nkids;
    if (n)
        memcpy(x->kids + start, k, n * sizeof *k);
    x->nkids += n;
    return start;
}

/* Records that `child` hangs under `parent` for the depth limit. */
static bool set_depth(parser *p, uint32_t parent, uint32_t child)
{
    cs_node *nd = &p->x->nodes[parent];
    uint16_t d = p->x->nodes[child].depth;
    if (d + 1 > nd->depth)
        nd->depth = (uint16_t)(d + 1);
    if (nd->depth > CE_SQL_MAX_DEPTH) {
        fail(p, CE_ERANGE, nd->pos,
             "expression nested deeper than %d levels", CE_SQL_MAX_DEPTH);
        return false;
    }
    return true;
}

static bool is_const(const parser *p, uint32_t i)
{
    return p->x->nodes[i].op == OP_CONST;
}

/* ------------------------------------------------------------ folding */

/* Replaces node idx by the constant it evaluates to. */
static uint32_t fold(parser *p, uint32_t idx)
{
    if (p->flags & CE_SQL_NO_FOLD)
        return idx;
    ce_sql_expr *x = p->x;
    cs_ctx_reset(p->fold);
    cs_eval st = {x, NULL, p->fold};
    cs_val v;
    int e = cs_eval_node(&st, idx, &v);
    uint32_t soff = 0, slen = 0;
    if (v.t == CS_T_STR) {
        /* v.s may point into the pool, which pool_add may move */
        bool inpool = x->pool && v.s >= x->pool && v.s < x->pool + x->plen;
        size_t rel = inpool ? (size_t)(v.s - x->pool) : 0;
        char *tmp = NULL;
        if (inpool && v.n) {
            tmp = malloc(v.n);
            if (!tmp)
                return nomem(p);
            memcpy(tmp, x->pool + rel, v.n);
        }
        soff = pool_add(p, inpool ? tmp : v.s, v.n);
        free(tmp);
        if (soff == NIL)
            return NIL;
        slen = v.n;
    }
    cs_node *nd = &x->nodes[idx];
    const cs_node *at = &x->nodes[p->fold->node];
    nd->op = OP_CONST;
    nd->type = v.t;
    nd->i = v.i;
    nd->soff = soff;
    nd->slen = slen;
    nd->err = (uint8_t)e;
    nd->flags = 0;
    nd->detail = e ? p->fold->detail : 0;
    /* keep where the error arose, for ce_sql_ctx_explain */
    nd->a = e ? at->pos : 0;
    nd->b = e ? at->end : 0;
    nd->n = e ? (uint32_t)p->fold->arg : 0;
    return idx;
}

/* AND/OR whose leading operands are constants: drop the ones that cannot
 * decide the result; fold the whole node when one does (evaluation then
 * stops before any non-constant operand) or when all are constants. */
static uint32_t fold_logic(parser *p, uint32_t i)
{
    if (p->flags & CE_SQL_NO_FOLD)
        return i;
    ce_sql_expr *x = p->x;
    cs_node *nd = &x->nodes[i];
    uint32_t k = 0;
    while (nd->op != OP_XOR && k < nd->n && is_const(p, x->kids[nd->b + k])) {
        uint32_t kid = x->kids[nd->b + k];
        cs_ctx_reset(p->fold);
        cs_eval st = {x, NULL, p->fold};
        cs_val v;
        int e = cs_eval_node(&st, kid, &v);
        if (!e)
            e = cs_to_bool(&st, &x->nodes[kid], &v);
        if (e || (v.i != 0) == (nd->op == OP_OR))
            return fold(p, i);
        k++;
    }
    if (k == nd->n || nd->op == OP_XOR)
        return fold(p, i);
    nd->b += k;
    nd->n -= k;
    return i;
}

/* ------------------------------------------------------------ builders */

static uint32_t mk_unary(parser *p, int op, int type, uint32_t pos,
                         uint32_t child)
{
    uint32_t end = p->x->nodes[child].end;
    uint32_t i = new_node(p, op, type, pos, end);
    if (i == NIL || !set_depth(p, i, child))
        return NIL;
    p->x->nodes[i].a = child;
    return is_const(p, child) ? fold(p, i) : i;
}

static uint32_t mk_binary(parser *p, int op, uint32_t l, uint32_t r,
                          bool diamond)
{
    int type = op >= OP_EQ && op <= OP_GE ? CS_T_BOOL : CS_T_INT;
    uint32_t i = new_node(p, op, type, p->x->nodes[l].pos,
                          p->x->nodes[r].end);
    if (i == NIL || !set_depth(p, i, l) || !set_depth(p, i, r))
        return NIL;
    cs_node *nd = &p->x->nodes[i];
    nd->a = l;
    nd->b = r;
    nd->flags = diamond ? CS_F_DIAMOND : 0;
    return is_const(p, l) && is_const(p, r) ? fold(p, i) : i;
}

/* n-ary AND/OR/XOR over ops[0..n). Folds leading constants of AND/OR
 * that cannot decide the result (true for AND, false for OR). */
static uint32_t mk_logic(parser *p, int op, uint32_t *ops, uint32_t n)
{
    uint32_t pos = p->x->nodes[ops[0]].pos;
    uint32_t end = p->x->nodes[ops[n - 1]].end;
    uint32_t i = new_node(p, op, CS_T_BOOL, pos, end);
    if (i == NIL)
        return NIL;
    bool all = true;
    for (uint32_t k = 0; k < n; k++) {
        if (!set_depth(p, i, ops[k]))
            return NIL;
        all = all && is_const(p, ops[k]);
    }
    uint32_t start = add_kids(p, ops, n);
    if (start == NIL)
        return NIL;
    cs_node *nd = &p->x->nodes[i];
    nd->b = start;
    nd->n = n;
    if (all || (op != OP_XOR && is_const(p, ops[0])))
        return fold_logic(p, i);
    return i;
}

/* ------------------------------------------------------------ LIKE */

/* Splits the decoded pattern into items: "\%" and "\_" are the literal
 * characters, '%' any sequence (repeats collapse), '_' one character,
 * anything else (including other backslashes) literal text. */
static bool like_items(parser *p, uint32_t node, const char *pat, size_t n)
{
    ce_sql_expr *x = p->x;
    char *lit = malloc(n + 1);
    if (!lit)
        return nomem(p), false;
    uint32_t start = x->nitems;
    size_t ll = 0;
    bool ok = true;
    for (size_t i = 0; i <= n && ok; i++) {
        int kind = -1;
        if (i < n && pat[i] == '\\' && i + 1 < n &&
            (pat[i + 1] == '%' || pat[i + 1] == '_')) {
            lit[ll++] = pat[++i];
            continue;
        }
        if (i < n && pat[i] != '%' && pat[i] != '_') {
            lit[ll++] = pat[i];
            continue;
        }
        if (i < n)
            kind = pat[i] == '%' ? CS_ITEM_ANY : CS_ITEM_ONE;
        if (ll) {   /* flush the literal run */
            uint32_t off = pool_add(p, lit, ll);
            ok = off != NIL && grow((void **)&x->items, &x->icap,
                                    x->nitems + 1, sizeof(cs_item));
            if (ok)
                x->items[x->nitems++] = (cs_item){CS_ITEM_LIT, off,
                                                  (uint32_t)ll};
            ll = 0;
        }
        if (kind < 0 || !ok)
            continue;
        if (kind == CS_ITEM_ANY && x->nitems > start &&
            x->items[x->nitems - 1].kind == CS_ITEM_ANY)
            continue;
        ok = grow((void **)&x->items, &x->icap, x->nitems + 1,
                  sizeof(cs_item));
        if (ok)
            x->items[x->nitems++] = (cs_item){(uint32_t)kind, 0, 0};
    }
    free(lit);
    if (!ok)
        return nomem(p), false;
    cs_node *nd = &x->nodes[node];
    nd->b = start;
    nd->n = x->nitems - start;
    return true;
}

/* Picks a fast path for the common pattern shapes. */
static void like_shape(ce_sql_expr *x, cs_node *nd)
{
    const cs_item *it = nd->n ? x->items + nd->b : NULL;
    char sig[4] = {0};
    for (uint32_t k = 0; k < nd->n && k < 3; k++)
        sig[k] = "L1%"[it[k].kind];
    const cs_item *lit = NULL;
    if (nd->n == 0 || !strcmp(sig, "L")) {
        nd->like = CS_LIKE_EXACT;
        lit = nd->n ? &it[0] : NULL;
    } else if (nd->n == 2 && !strcmp(sig, "L%")) {
        nd->like = CS_LIKE_PREFIX;
        lit = &it[0];
    } else if (nd->n == 2 && !strcmp(sig, "%L")) {
        nd->like = CS_LIKE_SUFFIX;
        lit = &it[1];
    } else if (nd->n == 3 && !strcmp(sig, "%L%")) {
        nd->like = CS_LIKE_CONTAINS;
        lit = &it[1];
    } else if (nd->n == 1 && sig[0] == '%') {
        nd->like = CS_LIKE_ANY;
    } else {
        nd->like = CS_LIKE_GENERAL;
    }
    nd->soff = lit ? lit->off : 0;
    nd->slen = lit ? lit->len : 0;
}

static uint32_t parse_like(parser *p, uint32_t left, bool negate)
{
    if (p->tok.kind != TK_STR)
        return expected(p, "a string literal pattern after LIKE");
    cs_tok pt = p->tok;
    uint32_t i = new_node(p, OP_LIKE, CS_T_BOOL, p->x->nodes[left].pos,
                          pt.pos + pt.len);
    if (i == NIL || !set_depth(p, i, left))
        return NIL;
    char *pat = malloc(pt.len);
    if (!pat)
        return nomem(p);
    size_t n = cs_unquote(p->src, &pt, pat);
    bool ok = like_items(p, i, pat, n);
    free(pat);
    if (!ok)
        return NIL;
    cs_node *nd = &p->x->nodes[i];
    nd->a = left;
    nd->i = (int32_t)pt.pos;
    nd->flags = negate ? CS_F_NEGATE : 0;
    like_shape(p->x, nd);
    advance(p);
    return is_const(p, left) ? fold(p, i) : i;
}

/* ------------------------------------------------------------ lists */

typedef struct ivec {
    uint32_t *v;
    uint32_t n, cap;
} ivec;

static bool ivec_push(ivec *iv, uint32_t x)
{
    if (!grow((void **)&iv->v, &iv->cap, iv->n + 1, sizeof(uint32_t)))
        return false;
    iv->v[iv->n++] = x;
    return true;
}

static uint32_t parse_logic(parser *p);

/* Parses "expr, expr, ...)" after the opening parenthesis (which may
 * have been followed directly by ')' when allow_empty). */
static bool parse_list(parser *p, ivec *out, bool allow_empty,
                       const char *what, uint32_t *end)
{
    *end = p->tok.pos + 1;
    if (allow_empty && accept(p, TK_RPAREN))
        return true;
    for (;;) {
        uint32_t e = parse_logic(p);
        if (e == NIL)
            return false;
        if (!ivec_push(out, e))
            return nomem(p), false;
        *end = p->tok.pos + 1;
        if (accept(p, TK_RPAREN))
            return true;
        if (!accept(p, TK_COMMA)) {
            expected(p, what);
            return false;
        }
    }
}

static uint32_t parse_in(parser *p, uint32_t left, bool negate)
{
    if (!accept(p, TK_LPAREN))
        return expected(p, "'(' after IN");
    ivec set = {0};
    uint32_t i = NIL;
    if (p->tok.kind == TK_RPAREN) {
        expected(p, "a value (the IN set cannot be empty)");
        goto done;
    }
    uint32_t end;
    if (!parse_list(p, &set, false, "',' or ')' in the IN set", &end))
        goto done;
    i = new_node(p, OP_IN, CS_T_BOOL, p->x->nodes[left].pos, end);
    if (i == NIL || !set_depth(p, i, left))
        goto fail;
    bool all = is_const(p, left);
    for (uint32_t k = 0; k < set.n; k++) {
        if (!set_depth(p, i, set.v[k]))
            goto fail;
        all = all && is_const(p, set.v[k]);
    }
    uint32_t start = add_kids(p, set.v, set.n);
    if (start == NIL)
        goto fail;
    cs_node *nd = &p->x->nodes[i];
    nd->a = left;
    nd->b = start;
    nd->n = set.n;
    nd->flags = negate ? CS_F_NEGATE : 0;
    if (all)
        i = fold(p, i);
    goto done;
fail:
    i = NIL;
done:
    free(set.v);
    return i;
}

/* ------------------------------------------------------------ calls */

static uint32_t parse_call(parser *p, cs_tok name)
{
    advance(p); /* '(' */
    ivec args = {0};
    uint32_t i = NIL;
    uint32_t end;
    if (!parse_list(p, &args, true, "',' or ')' after a function argument",
                    &end))
        goto done;
    int fn = cs_fn_lookup(p->src + name.pos, name.len, args.n);
    char upper[64];
    size_t ul = name.len < sizeof upper ? name.len : sizeof upper - 1;
    for (size_t k = 0; k < ul; k++)
        upper[k] = (char)(p->src[name.pos + k] & ~0x20);
    upper[ul] = 0;
    if (fn < 0 && (p->flags & CE_SQL_STRICT)) {
        if (fn == -2)
            fail(p, CE_EINVAL, name.pos,
                 "function %s does not take %u argument%s", upper,
                 args.n, args.n == 1 ? "" : "s");
        else
            fail(p, CE_EINVAL, name.pos, "unknown function %s", upper);
        goto done;
    }
    const cs_fn *f = fn >= 0 ? &cs_functions[fn] : NULL;
    i = new_node(p, !f ? OP_NOFUNC : f->is_cast ? OP_CAST : OP_CALL,
                 f ? f->ret : CS_T_BOOL, name.pos, end);
    if (i == NIL)
        goto done;
    bool all = true;
    for (uint32_t k = 0; k < args.n; k++) {
        if (!set_depth(p, i, args.v[k])) {
            i = NIL;
            goto done;
        }
        all = all && is_const(p, args.v[k]);
    }
    uint32_t start = add_kids(p, args.v, args.n);
    uint32_t soff = f ? 0 : pool_add(p, upper, ul);
    if (start == NIL || soff == NIL) {
        i = NIL;
        goto done;
    }
    cs_node *nd = &p->x->nodes[i];
    nd->a = args.n ? args.v[0] : 0;
    nd->b = start;
    nd->n = args.n;
    nd->fn = (uint16_t)(f ? fn : 0);
    nd->soff = soff;
    nd->slen = f ? 0 : (uint32_t)ul;
    if (all || !f)
        i = fold(p, i);
done:
    free(args.v);
    return i;
}

/* ------------------------------------------------------------ primaries */

static bool required_attr(const char *s, size_t n)
{
    return (n == 2 && !memcmp(s, "id", 2)) ||
           (n == 4 && !memcmp(s, "type", 4)) ||
           (n == 6 && !memcmp(s, "source", 6)) ||
           (n == 11 && !memcmp(s, "specversion", 11));
}

static uint32_t mk_attr(parser *p, int op, const cs_tok *t, uint32_t pos)
{
    char lower[256];
    if (t->len >= sizeof lower)
        return fail(p, CE_EPARSE, t->pos,
                    "attribute name longer than %zu characters",
                    sizeof lower - 1);
    for (uint32_t k = 0; k < t->len; k++) {
        char c = p->src[t->pos + k];
        lower[k] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
    }
    uint32_t soff = pool_add(p, lower, t->len);
    uint32_t i = soff == NIL ? NIL : new_node(p, op, op == OP_ATTR ?
                                              CS_T_ANY : CS_T_BOOL, pos,
                                              t->pos + t->len);
    if (i == NIL)
        return NIL;
    cs_node *nd = &p->x->nodes[i];
    nd->soff = soff;
    nd->slen = t->len;
    /* the required attributes always exist (CESQL 3.4.1) */
    if (op == OP_EXISTS && required_attr(lower, t->len) &&
        !(p->flags & CE_SQL_NO_FOLD)) {
        nd->op = OP_CONST;
        nd->i = 1;
        nd->soff = nd->slen = 0;
    }
    return i;
}

static uint32_t parse_primary(parser *p)
{
    cs_tok t = p->tok;
    uint32_t i;
    switch (t.kind) {
    case TK_INT:
    case TK_TRUE:
    case TK_FALSE:
        i = new_node(p, OP_CONST, t.kind == TK_INT ? CS_T_INT : CS_T_BOOL,
                     t.pos, t.pos + t.len);
        if (i != NIL)
            p->x->nodes[i].i = t.kind == TK_INT ? t.ival : t.kind == TK_TRUE;
        advance(p);
        return i;
    case TK_STR: {
        char *buf = malloc(t.len);
        if (!buf)
            return nomem(p);
        size_t n = cs_unquote(p->src, &t, buf);
        uint32_t soff = pool_add(p, buf, n);
        free(buf);
        i = soff == NIL ? NIL : new_node(p, OP_CONST, CS_T_STR, t.pos,
                                         t.pos + t.len);
        if (i != NIL) {
            p->x->nodes[i].soff = soff;
            p->x->nodes[i].slen = (uint32_t)n;
        }
        advance(p);
        return i;
    }
    case TK_IDENT:
    case TK_FNAME:
        advance(p);
        if (p->tok.kind == TK_LPAREN) {
            if (t.has_digit)
                return fail(p, CE_EPARSE, t.pos, "function names are "
                            "letters and '_', without digits");
            return parse_call(p, t);
        }
        if (t.kind == TK_FNAME)
            return expected(p, "'(' after a function name (attribute "
                               "names cannot contain '_')");
        return mk_attr(p, OP_ATTR, &t, t.pos);
    case TK_EXISTS: {
        advance(p);
        if (p->tok.kind != TK_IDENT)
            return expected(p, "an attribute name after EXISTS");
        cs_tok name = p->tok;
        advance(p);
        return mk_attr(p, OP_EXISTS, &name, t.pos);
    }
    case TK_LPAREN: {
        advance(p);
        uint32_t e = parse_logic(p);
        if (e == NIL)
            return NIL;
        if (p->tok.kind != TK_RPAREN) {
            char what[64];
            snprintf(what, sizeof what, "')' to close '(' at byte %u",
                     t.pos);
            return expected(p, what);
        }
        advance(p);
        return e;
    }
    default:
        return expected(p, "a value: literal, attribute, function call, "
                           "'(', NOT, '-' or EXISTS");
    }
}

static uint32_t parse_unary(parser *p)
{
    cs_tok t = p->tok;
    if (t.kind != TK_NOT && t.kind != TK_MINUS)
        return parse_primary(p);
    if (++p->depth > MAX_PARSE_DEPTH)
        return fail(p, CE_ERANGE, t.pos, "expression nested deeper than %d "
                    "levels", MAX_PARSE_DEPTH);
    advance(p);
    uint32_t e = parse_unary(p);
    p->depth--;
    if (e == NIL)
        return NIL;
    return t.kind == TK_NOT ? mk_unary(p, OP_NOT, CS_T_BOOL, t.pos, e)
                            : mk_unary(p, OP_NEG, CS_T_INT, t.pos, e);
}

/* ------------------------------------------------------------ operators */

static int binary_op(int kind, int *prec)
{
    switch (kind) {
    case TK_STAR: *prec = P_MUL; return OP_MUL;
    case TK_SLASH: *prec = P_MUL; return OP_DIV;
    case TK_PERCENT: *prec = P_MUL; return OP_MOD;
    case TK_PLUS: *prec = P_ADD; return OP_ADD;
    case TK_MINUS: *prec = P_ADD; return OP_SUB;
    case TK_EQ: *prec = P_CMP; return OP_EQ;
    case TK_NE: case TK_LTGT: *prec = P_CMP; return OP_NE;
    case TK_LT: *prec = P_CMP; return OP_LT;
    case TK_LE: *prec = P_CMP; return OP_LE;
    case TK_GT: *prec = P_CMP; return OP_GT;
    case TK_GE: *prec = P_CMP; return OP_GE;
    default: *prec = 0; return -1;
    }
}

/* Precedence climbing over the levels between comparison and LIKE. */
static uint32_t parse_binary(parser *p, int minprec)
{
    uint32_t left = parse_unary(p);
    while (left != NIL) {
        int kind = p->tok.kind, prec;
        bool negate = false;
        if (kind == TK_NOT) {
            int next = peek_kind(p);
            if (next != TK_LIKE && next != TK_IN)
                return expected(p, "an operator (NOT here must be "
                                   "followed by LIKE or IN)");
            negate = true;
            kind = next;
        }
        if (kind == TK_LIKE || kind == TK_IN) {
            if ((kind == TK_LIKE ? P_LIKE : P_IN) < minprec)
                break;
            if (negate)
                advance(p);
            advance(p);
            left = kind == TK_LIKE ? parse_like(p, left, negate)
                                   : parse_in(p, left, negate);
            continue;
        }
        int op = binary_op(kind, &prec);
        if (op < 0 || prec < minprec)
            break;
        bool diamond = kind == TK_LTGT;
        advance(p);
        uint32_t right = parse_binary(p, prec + 1);
        if (right == NIL)
            return NIL;
        left = mk_binary(p, op, left, right, diamond);
    }
    return left;
}

static int logic_op(int kind)
{
    return kind == TK_AND ? OP_AND : kind == TK_OR ? OP_OR
         : kind == TK_XOR ? OP_XOR : -1;
}

/* AND/OR/XOR: one right-associative level. x1 o1 x2 o2 x3 ... is
 * x1 o1 (x2 o2 (x3 ...)); built from the right, each run of equal
 * operators becoming one n-ary node. */
static uint32_t parse_logic(parser *p)
{
    if (++p->depth > MAX_PARSE_DEPTH)
        return fail(p, CE_ERANGE, p->tok.pos, "expression nested deeper "
                    "than %d levels", MAX_PARSE_DEPTH);
    ivec xs = {0}, ops = {0};
    uint32_t r = parse_binary(p, P_CMP);
    if (r == NIL || !ivec_push(&xs, r))
        goto fail;
    while (logic_op(p->tok.kind) >= 0) {
        if (!ivec_push(&ops, (uint32_t)logic_op(p->tok.kind)))
            goto fail;
        advance(p);
        r = parse_binary(p, P_CMP);
        if (r == NIL || !ivec_push(&xs, r))
            goto fail;
    }
    uint32_t cur = xs.v[xs.n - 1];
    uint32_t k = ops.n;             /* ops[k-1] joins xs[k-1] and cur */
    while (k > 0 && cur != NIL) {
        uint32_t op = ops.v[k - 1], j = k;
        while (j > 1 && ops.v[j - 2] == op)
            j--;
        /* operands xs[j-1 .. k-1] then cur */
        uint32_t cnt = k - j + 2;
        xs.v[k] = cur;              /* reuse the slot after the run */
        cur = mk_logic(p, (int)op, xs.v + j - 1, cnt);
        k = j - 1;
    }
    r = cur;
    goto done;
fail:
    if (!p->failed)
        nomem(p);
    r = NIL;
done:
    free(xs.v);
    free(ops.v);
    p->depth--;
    return r;
}

/* ------------------------------------------------------------ API */

int ce_sql_compile(const char *src, size_t n, unsigned flags,
                   ce_sql_expr **out, ce_err *err)
{
    *out = NULL;
    if (!src) {
        src = "";
        n = 0;
    }
    parser p = {.src = src, .n = n, .err = err, .flags = flags};
    if (n > CE_SQL_MAX_SOURCE) {
        fail(&p, CE_ERANGE, 0, "expression longer than %u bytes",
             CE_SQL_MAX_SOURCE);
        return CE_ERANGE;
    }
    if (memchr(src, 0, n)) {
        fail(&p, CE_EPARSE, (const char *)memchr(src, 0, n) - src,
             "NUL byte in expression");
        return CE_EPARSE;
    }
    ce_sql_expr *x = calloc(1, sizeof *x);
    p.x = x;
    p.fold = ce_sql_ctx_new();
    if (!x || !p.fold || !(x->src = malloc(n + 1)))
        goto nomem;
    memcpy(x->src, src, n);
    x->src[n] = 0;
    x->src_len = (uint32_t)n;
    p.src = x->src;
    advance(&p);
    if (p.tok.kind == TK_EOF) {
        expected(&p, "an expression");
        goto fail;
    }
    uint32_t root = parse_logic(&p);
    if (root == NIL)
        goto fail;
    if (p.tok.kind != TK_EOF) {
        expected(&p, "an operator or end of input");
        goto fail;
    }
    x->root = root;
    ce_sql_ctx_free(p.fold);
    *out = x;
    return CE_OK;
nomem:
    nomem(&p);
fail:
    ce_sql_ctx_free(p.fold);
    ce_sql_free(x);
    return p.code;
}
