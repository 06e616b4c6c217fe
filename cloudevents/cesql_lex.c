/*
 * CESQL lexer: turns source bytes into tokens, following the CESQL v1.0
 * ANTLR lexer (CESQLLexer.g4) with case-insensitive keywords.
 *
 * Rules worth knowing (see docs/filters-cesql.md):
 * - Whitespace is space, tab, CR and LF.
 * - An integer literal includes an optional sign: "-5" is one token, so
 *   "5-3" is two adjacent integers (a parse error) and "--10" is
 *   minus(-10). Literals must fit in a signed 32-bit integer.
 * - Strings use '...' or "...". Inside, a backslash followed by the
 *   quote character is that character; the quote doubled ('' or "") is
 *   also one quote (SQL style); any other backslash is kept as is, so
 *   LIKE escapes such as '\%' reach the pattern unchanged.
 * - A word of letters and digits is an identifier (attribute) or, when it
 *   is a keyword, that keyword; a word of letters and '_' is a function
 *   name. Keywords: AND OR XOR NOT LIKE IN EXISTS TRUE FALSE.
 */
#include <stdio.h>
#include <string.h>

#include "cloudevents/cesql_int.h"

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static const struct {
    const char *word;
    int kind;
} keywords[] = {
    {"AND", TK_AND},   {"OR", TK_OR},       {"XOR", TK_XOR},
    {"NOT", TK_NOT},   {"LIKE", TK_LIKE},   {"IN", TK_IN},
    {"EXISTS", TK_EXISTS}, {"TRUE", TK_TRUE}, {"FALSE", TK_FALSE},
};

static int keyword(const char *s, size_t n)
{
    for (size_t k = 0; k < sizeof keywords / sizeof keywords[0]; k++) {
        const char *w = keywords[k].word;
        if (strlen(w) != n)
            continue;
        size_t i = 0;
        while (i < n && (s[i] & ~0x20) == w[i])
            i++;
        if (i == n)
            return keywords[k].kind;
    }
    return -1;
}

static void lex_error(cs_tok *t, size_t at, const char *msg)
{
    t->kind = TK_ERROR;
    t->epos = (uint32_t)at;
    t->emsg = msg;
}

/* Integer literal: optional sign then digits, at src[p]. */
static size_t lex_int(const char *src, size_t n, size_t p, cs_tok *t)
{
    size_t i = p;
    bool neg = false;
    if (src[i] == '+' || src[i] == '-')
        neg = src[i++] == '-';
    int64_t v = 0;
    bool big = false;
    while (i < n && is_digit((unsigned char)src[i])) {
        if (!big) {
            v = v * 10 + (src[i] - '0');
            if (v > (int64_t)INT32_MAX + 1)
                big = true;
        }
        i++;
    }
    if (big || (!neg && v > INT32_MAX)) {
        lex_error(t, p, "integer literal out of range "
                        "(-2147483648 .. 2147483647)");
        return i;
    }
    t->kind = TK_INT;
    t->ival = (int32_t)(neg ? -v : v);
    return i;
}

/* A word of [A-Za-z0-9_]: integer, keyword, identifier or function. */
static size_t lex_word(const char *src, size_t n, size_t p, cs_tok *t)
{
    size_t i = p;
    bool alpha = false, digit = false, under = false;
    while (i < n) {
        int c = (unsigned char)src[i];
        if (is_alpha(c))
            alpha = true;
        else if (is_digit(c))
            digit = true;
        else if (c == '_')
            under = true;
        else
            break;
        i++;
    }
    if (!alpha && !under)
        return lex_int(src, n, p, t);
    if (src[p] == '_' || (under && digit) || (under && !is_alpha(src[p]))) {
        lex_error(t, p, "invalid name: attribute names are letters and "
                        "digits, function names letters and '_'");
        return i;
    }
    if (under) {
        t->kind = TK_FNAME;
        return i;
    }
    int kw = keyword(src + p, i - p);
    t->kind = kw >= 0 ? kw : TK_IDENT;
    t->has_digit = digit;
    return i;
}

static size_t lex_string(const char *src, size_t n, size_t p, cs_tok *t)
{
    char q = src[p];
    size_t i = p + 1;
    while (i < n) {
        char c = src[i];
        if (c == '\\' && i + 1 < n) {
            i += 2;
            continue;
        }
        if (c == q) {
            if (i + 1 < n && src[i + 1] == q) {
                i += 2;
                continue;
            }
            t->kind = TK_STR;
            size_t bad;
            if (!cs_utf8_valid(src + p, i + 1 - p, &bad))
                lex_error(t, p + bad, "invalid UTF-8 in string literal");
            return i + 1;
        }
        i++;
    }
    lex_error(t, p, q == '\'' ? "unterminated string literal (missing ')"
                              : "unterminated string literal (missing \")");
    return n;
}

static size_t lex_op(const char *src, size_t n, size_t p, cs_tok *t)
{
    char c = src[p], d = p + 1 < n ? src[p + 1] : 0;
    switch (c) {
    case '(': t->kind = TK_LPAREN; return p + 1;
    case ')': t->kind = TK_RPAREN; return p + 1;
    case ',': t->kind = TK_COMMA; return p + 1;
    case '*': t->kind = TK_STAR; return p + 1;
    case '/': t->kind = TK_SLASH; return p + 1;
    case '%': t->kind = TK_PERCENT; return p + 1;
    case '+': t->kind = TK_PLUS; return p + 1;
    case '-': t->kind = TK_MINUS; return p + 1;
    case '=': t->kind = TK_EQ; return p + 1;
    case '!':
        if (d == '=') {
            t->kind = TK_NE;
            return p + 2;
        }
        lex_error(t, p, "'!' must be followed by '=' (use NOT for negation)");
        return p + 1;
    case '<':
        if (d == '=' || d == '>') {
            t->kind = d == '=' ? TK_LE : TK_LTGT;
            return p + 2;
        }
        t->kind = TK_LT;
        return p + 1;
    case '>':
        if (d == '=') {
            t->kind = TK_GE;
            return p + 2;
        }
        t->kind = TK_GT;
        return p + 1;
    default:
        lex_error(t, p, "unexpected character");
        return p + 1;
    }
}

void cs_lex(const char *src, size_t n, size_t *pos, cs_tok *t)
{
    size_t p = *pos;
    while (p < n && is_space((unsigned char)src[p]))
        p++;
    memset(t, 0, sizeof *t);
    t->pos = (uint32_t)p;
    if (p >= n) {
        t->kind = TK_EOF;
        *pos = p;
        return;
    }
    int c = (unsigned char)src[p];
    size_t end;
    if ((c == '+' || c == '-') && p + 1 < n &&
        is_digit((unsigned char)src[p + 1]))
        end = lex_int(src, n, p, t);
    else if (is_alpha(c) || is_digit(c) || c == '_')
        end = lex_word(src, n, p, t);
    else if (c == '\'' || c == '"')
        end = lex_string(src, n, p, t);
    else
        end = lex_op(src, n, p, t);
    t->len = (uint32_t)(end - p);
    *pos = end;
}

size_t cs_unquote(const char *src, const cs_tok *tok, char *out)
{
    const char *s = src + tok->pos;
    char q = s[0];
    size_t n = 0;
    for (size_t i = 1; i + 1 < tok->len; i++) {
        if (s[i] == '\\' && i + 2 < tok->len && s[i + 1] == q) {
            out[n++] = q;
            i++;
        } else if (s[i] == '\\' && i + 2 < tok->len) {
            out[n++] = s[i++];  /* any other escape stays as written */
            out[n++] = s[i];
        } else if (s[i] == q) {
            out[n++] = q;       /* doubled quote */
            i++;
        } else {
            out[n++] = s[i];
        }
    }
    return n;
}

const char *cs_tok_name(int kind)
{
    switch (kind) {
    case TK_EOF: return "end of input";
    case TK_ERROR: return "invalid token";
    case TK_INT: return "integer";
    case TK_STR: return "string";
    case TK_IDENT: return "identifier";
    case TK_FNAME: return "function name";
    case TK_TRUE: return "TRUE";
    case TK_FALSE: return "FALSE";
    case TK_AND: return "AND";
    case TK_OR: return "OR";
    case TK_XOR: return "XOR";
    case TK_NOT: return "NOT";
    case TK_LIKE: return "LIKE";
    case TK_IN: return "IN";
    case TK_EXISTS: return "EXISTS";
    case TK_LPAREN: return "'('";
    case TK_RPAREN: return "')'";
    case TK_COMMA: return "','";
    case TK_STAR: return "'*'";
    case TK_SLASH: return "'/'";
    case TK_PERCENT: return "'%'";
    case TK_PLUS: return "'+'";
    case TK_MINUS: return "'-'";
    case TK_EQ: return "'='";
    case TK_NE: return "'!='";
    case TK_LTGT: return "'<>'";
    case TK_LT: return "'<'";
    case TK_LE: return "'<='";
    case TK_GT: return "'>'";
    case TK_GE: return "'>='";
    default: return "token";
    }
}

void cs_tok_describe(const char *src, const cs_tok *t, char *buf,
                     size_t size)
{
    int len = t->len > 24 ? 24 : (int)t->len;
    const char *more = t->len > 24 ? "..." : "";
    switch (t->kind) {
    case TK_INT:
    case TK_STR:
    case TK_IDENT:
    case TK_FNAME:
        snprintf(buf, size, "%s %.*s%s", cs_tok_name(t->kind), len,
                 src + t->pos, more);
        break;
    case TK_TRUE: case TK_FALSE: case TK_AND: case TK_OR: case TK_XOR:
    case TK_NOT: case TK_LIKE: case TK_IN: case TK_EXISTS:
        snprintf(buf, size, "keyword %s", cs_tok_name(t->kind));
        break;
    default:
        snprintf(buf, size, "%s", cs_tok_name(t->kind));
        break;
    }
}
