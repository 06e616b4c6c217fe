/*
 * CESQL internals shared by cesql_lex.c, cesql_parse.c, cesql_eval.c,
 * cesql_func.c and cesql_utf8.c. Not installed, not part of the API.
 *
 * A compiled expression is a flat array of nodes. Children always have
 * lower indices than their parent (the parser creates them first), so a
 * single forward pass sees every child before its parent; the root is the
 * last node created. Variadic children (function arguments, IN sets,
 * AND/OR/XOR chains) are listed in `kids`; LIKE patterns in `items`;
 * every string (constants, attribute names, pattern text) in `pool`.
 */
#ifndef KNIT_CLOUDEVENTS_CESQL_INT_H
#define KNIT_CLOUDEVENTS_CESQL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloudevents/cesql.h"

/* ------------------------------------------------------------- values */

/* Value types; numerically equal to ce_sql_type. CS_T_ANY only appears
 * as a node's static type (an attribute reference). */
enum { CS_T_BOOL = 0, CS_T_INT = 1, CS_T_STR = 2, CS_T_ANY = 3 };

/* An evaluation value. Booleans are kept in `i` (0 or 1). */
typedef struct cs_val {
    const char *s;
    size_t n;
    int32_t i;
    uint8_t t;
} cs_val;

/* -------------------------------------------------------------- nodes */

enum cs_op {
    OP_CONST = 0,   /* constant; `err` != 0 for a folded failing one */
    OP_ATTR,        /* attribute: name at pool[soff], slen bytes */
    OP_EXISTS,      /* EXISTS attribute: same fields as OP_ATTR */
    OP_NOT,         /* a */
    OP_NEG,         /* a */
    OP_AND,         /* kids[b .. b+n) */
    OP_OR,
    OP_XOR,
    OP_EQ,          /* a, b */
    OP_NE,          /* a, b; CS_F_DIAMOND when written <> */
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_MOD,
    OP_LIKE,        /* a; pattern items[b .. b+n), source text at soff */
    OP_IN,          /* a; set kids[b .. b+n) */
    OP_CALL,        /* function cs_functions[fn]; args kids[b .. b+n) */
    OP_NOFUNC,      /* unknown function named pool[soff]; args as CALL */
    OP_CAST,        /* BOOL/INT/STRING(a): cast to `type`; as CALL too */
    OP__COUNT
};

enum {
    CS_F_NEGATE = 1u << 0,  /* NOT LIKE, NOT IN */
    CS_F_DIAMOND = 1u << 1, /* <> rather than != */
};

/* LIKE pattern shapes with a fast path; CS_LIKE_GENERAL walks items. */
enum {
    CS_LIKE_EXACT = 0,  /* no wildcard: text at lit */
    CS_LIKE_PREFIX,     /* text% */
    CS_LIKE_SUFFIX,     /* %text */
    CS_LIKE_CONTAINS,   /* %text% */
    CS_LIKE_ANY,        /* % (matches everything) */
    CS_LIKE_GENERAL,
};

/* LIKE pattern item. */
enum { CS_ITEM_LIT = 0, CS_ITEM_ONE, CS_ITEM_ANY };
typedef struct cs_item {
    uint32_t kind;
    uint32_t off;   /* CS_ITEM_LIT: text at pool[off], len bytes */
    uint32_t len;
} cs_item;

/* Error details, used by ce_sql_ctx_explain. */
enum cs_detail {
    D_NONE = 0,
    D_DIV_ZERO,
    D_OVERFLOW,
    D_CAST,         /* value in ctx->val, target type in ctx->arg */
    D_MISSING_ATTR, /* node is the OP_ATTR */
    D_NO_FUNC,      /* node is the OP_NOFUNC */
    D_NEG_LEN,      /* LEFT/RIGHT/SUBSTRING length < 0: ctx->arg */
    D_SUBSTR_POS,   /* SUBSTRING position out of range: ctx->arg */
    D_NOMEM,
};

typedef struct cs_node {
    uint8_t op;
    uint8_t type;     /* static result type CS_T_* */
    uint8_t flags;    /* CS_F_* */
    uint8_t err;      /* OP_CONST: ce_sql_error carried by a folded node */
    uint8_t detail;   /* OP_CONST with err: enum cs_detail */
    uint8_t like;     /* OP_LIKE: CS_LIKE_* */
    uint16_t fn;      /* OP_CALL: index into cs_functions */
    uint16_t depth;   /* height of the subtree */
    uint32_t pos;     /* byte span of the source text */
    uint32_t end;
    uint32_t a, b, n; /* children, see enum cs_op */
    int32_t i;        /* OP_CONST: Integer or Boolean value; or err arg */
    uint32_t soff;    /* string in pool */
    uint32_t slen;
} cs_node;

struct ce_sql_expr {
    cs_node *nodes;
    uint32_t nnodes, ncap;
    uint32_t *kids;
    uint32_t nkids, kcap;
    cs_item *items;
    uint32_t nitems, icap;
    char *pool;
    uint32_t plen, pcap;
    uint32_t root;
    char *src;        /* NUL-terminated copy of the source */
    uint32_t src_len;
};

/* --------------------------------------------------- scratch context */

typedef struct cs_chunk {
    struct cs_chunk *next;
    size_t cap;
    size_t heap;            /* malloc'd (else caller memory) */
    _Alignas(8) char data[];
} cs_chunk;

struct ce_sql_ctx {
    cs_chunk *head, *cur;
    size_t used;
    bool heap;        /* the context itself was malloc'd */
    /* last error of the last evaluation */
    uint8_t err;
    uint8_t detail;
    uint32_t node;    /* index of the node that raised it */
    int32_t arg;
    bool hasval;      /* val holds the offending value of a cast */
    bool vtrunc;      /* ... truncated */
    uint8_t vlen;
    char val[48];
};

/* The evaluation state of one ce_sql_eval call. */
typedef struct cs_eval {
    const ce_sql_expr *x;
    const ce_event *ev;
    ce_sql_ctx *ctx;
} cs_eval;

/* Reserves n bytes in the scratch area; NULL on ENOMEM. */
char *cs_scratch(ce_sql_ctx *ctx, size_t n);
void cs_ctx_reset(ce_sql_ctx *ctx);
/* Initialises a context living in caller memory with `stack` as its first
 * chunk (aligned, at least sizeof(cs_chunk) + 64 bytes). */
void cs_ctx_init_stack(ce_sql_ctx *ctx, void *stack, size_t size);
void cs_ctx_fini(ce_sql_ctx *ctx);

/* Evaluates node `idx`. Returns 0 or a ce_sql_error; *out is always set. */
int cs_eval_node(cs_eval *st, uint32_t idx, cs_val *out);
/* Records the first error of an evaluation and returns `e`. */
int cs_raise(cs_eval *st, const cs_node *at, int e, int detail, int32_t arg);
/* As cs_raise for a cast error, keeping a copy of the value. */
int cs_raise_cast(cs_eval *st, const cs_node *at, const cs_val *v, int to);

/* Casts in place to Boolean / Integer / String (fail: zero value +
 * CE_SQL_ECAST raised at `at`; String can only fail on ENOMEM). */
int cs_to_bool(cs_eval *st, const cs_node *at, cs_val *v);
int cs_to_int(cs_eval *st, const cs_node *at, cs_val *v);
int cs_to_str(cs_eval *st, const cs_node *at, cs_val *v);
int cs_cast(cs_eval *st, const cs_node *at, cs_val *v, int type);
/* Whether the cast would succeed, without side effects. */
bool cs_can_cast(const cs_val *v, int type);
/* Sets the zero value of a static type (CS_T_ANY: false). */
void cs_zero(cs_val *v, int type);

/* Parses [+-]?[0-9]+ in int32 range (leading zeros allowed). */
bool cs_parse_int(const char *s, size_t n, int32_t *out);

/* LIKE matching of s against items (GENERAL shape). */
bool cs_like_match(const ce_sql_expr *x, const cs_node *nd, const char *s,
                   size_t n);

/* ---------------------------------------------------------- functions */

typedef int (*cs_fn_impl)(cs_eval *st, const cs_node *nd, cs_val *args,
                          uint32_t nargs, cs_val *out);

typedef struct cs_fn {
    const char *name;   /* upper case */
    uint8_t nfixed;     /* fixed parameters */
    bool variadic;      /* then any number of `vtype` */
    uint8_t ret;        /* CS_T_* */
    uint8_t arg[3];     /* CS_T_*, CS_T_ANY = no cast */
    uint8_t vtype;
    bool is_cast;       /* BOOL, INT, STRING: compiled to OP_CAST */
    cs_fn_impl impl;
} cs_fn;

extern const cs_fn cs_functions[];
extern const size_t cs_nfunctions;
/* Index of the function with that name (any case) accepting nargs
 * arguments; -1 if the name is unknown, -2 if known with other arities. */
int cs_fn_lookup(const char *name, size_t len, uint32_t nargs);
/* Argument type of parameter i of f. */
int cs_fn_arg_type(const cs_fn *f, uint32_t i);

/* ---------------------------------------------------------- UTF-8 */

/* Length in bytes of the character starting at s[0] (1 for an invalid
 * byte, so every byte string has a well-defined character count). */
size_t cs_utf8_len(const char *s, size_t n);
/* Decodes one character; invalid sequences decode as the byte value with
 * length 1 and *ok = false. */
uint32_t cs_utf8_decode(const char *s, size_t n, size_t *len, bool *ok);
size_t cs_utf8_encode(uint32_t cp, char *out);
/* Number of characters. */
size_t cs_utf8_count(const char *s, size_t n);
/* Byte offset of character number `k` (clamped to n). */
size_t cs_utf8_offset(const char *s, size_t n, size_t k);
/* True when s is valid UTF-8 (no overlongs, no surrogates); on failure
 * *bad is the offset of the first bad byte. */
bool cs_utf8_valid(const char *s, size_t n, size_t *bad);
/* Unicode simple case mapping (cesql_case.c) and White_Space. */
uint32_t cs_to_lower(uint32_t cp);
uint32_t cs_to_upper(uint32_t cp);
bool cs_is_space(uint32_t cp);

/* ---------------------------------------------------------- lexer */

enum cs_tok_kind {
    TK_EOF = 0,
    TK_ERROR,
    TK_INT,
    TK_STR,
    TK_IDENT,   /* letters and digits: attribute (or function if letters) */
    TK_FNAME,   /* letters and '_' with at least one '_': function only */
    TK_TRUE, TK_FALSE,
    TK_AND, TK_OR, TK_XOR, TK_NOT, TK_LIKE, TK_IN, TK_EXISTS,
    TK_LPAREN, TK_RPAREN, TK_COMMA,
    TK_STAR, TK_SLASH, TK_PERCENT, TK_PLUS, TK_MINUS,
    TK_EQ, TK_NE, TK_LTGT, TK_LT, TK_LE, TK_GT, TK_GE,
};

typedef struct cs_tok {
    int kind;
    uint32_t pos;       /* byte offset of the token */
    uint32_t len;       /* bytes */
    int32_t ival;       /* TK_INT */
    bool has_digit;     /* TK_IDENT contains a digit */
    const char *emsg;   /* TK_ERROR: what is wrong (static text) */
    uint32_t epos;      /* TK_ERROR: where */
} cs_tok;

/* Lexes the token starting at or after *pos in src[0..n); advances *pos
 * past it. Never reads beyond n. */
void cs_lex(const char *src, size_t n, size_t *pos, cs_tok *out);
/* Decodes the string literal token into out (at most tok->len bytes) and
 * returns the decoded length. */
size_t cs_unquote(const char *src, const cs_tok *tok, char *out);
/* Human description of a token for error messages ("end of input",
 * "keyword AND", "string 'ab'", ...), written into buf. */
void cs_tok_describe(const char *src, const cs_tok *tok, char *buf,
                     size_t size);
const char *cs_tok_name(int kind);

#endif /* KNIT_CLOUDEVENTS_CESQL_INT_H */
