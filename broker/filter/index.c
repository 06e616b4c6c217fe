/*
 * The trigger index: every trigger of a broker compiled into one matcher,
 * so that an event costs a few hash probes plus the work on the triggers
 * that can actually match, whatever the number of triggers.
 *
 * How it works (docs/filters.md, "The index"):
 * - Each filter yields its necessary conditions (kf_conditions): the
 *   attribute tests that every match must satisfy — the leaves of the
 *   top-level conjunction (filter.attributes, filters[] elements, nested
 *   `all`) and the `a = 'x'` / `a LIKE 'x%'` / `a LIKE '%x'` conjuncts at
 *   the top of a CESQL AND chain (ce_sql_terms).
 * - Each trigger is filed under ONE of them, the most selective: the one
 *   shared by the fewest triggers, exact before prefix/suffix before mere
 *   presence. Triggers without any condition (match-all, top-level `any`
 *   or `not`, CESQL without a usable conjunct) go to the `always` list.
 * - One hash table holds (attribute, kind, value) → trigger ids. An exact
 *   condition is one probe with the whole value. Prefixes and suffixes are
 *   found by hashing the value incrementally (FNV-1a, from the front for
 *   prefixes and from the back for suffixes) and probing only at the
 *   lengths where the attribute has a stored prefix/suffix, so the cost
 *   is bounded by the value's length, not by the number of triggers.
 * - Candidates are verified with the full filter, except when the filter
 *   is exactly its filed condition (then the hit is the match).
 * Because each trigger is filed once, a trigger is a candidate at most
 * once per event: no deduplication is needed.
 *
 * The index is immutable; rebuilding it is O(total conditions) and is
 * meant to run on every trigger change (the dispatcher swaps it in).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/filter/filter_int.h"

#define IX_MAX_CONDS 32          /* conditions considered per trigger */
#define IX_VERIFY 0x80000000u    /* id flag: run the full filter */
#define IX_MAX_TRIGGERS 0x7fffffffu
#define FNV_OFF 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

typedef struct ix_attr {
    const char *name;
    uint32_t len;
    bool has_exact, has_present;
    uint32_t *plens, nplens; /* distinct prefix lengths, ascending */
    uint32_t *slens, nslens; /* distinct suffix lengths, ascending */
} ix_attr;

/* One (attribute, kind, value) key and its trigger ids. */
typedef struct ix_entry {
    uint64_t h;         /* key_hash of the key */
    const char *val;
    uint32_t len;
    uint32_t attr_kind; /* attr << 2 | kf_cond_kind */
    uint32_t first;     /* count == 1: the id itself; else into ids[] */
    uint32_t count;
} ix_entry;

/* Build-time table. Open addressing: slot = tag << 32 | (entry index +
 * 1), 0 = empty. */
typedef struct ix_table {
    uint64_t *slots;
    uint32_t mask;
    ix_entry *e;
    uint32_t n, cap;
} ix_table;

/* The lookup table: one cache line per key, with values of up to
 * IX_INLINE bytes copied into the line, so a probe that hits touches one
 * line. */
#define IX_INLINE 32
typedef struct ix_slot {
    uint32_t tag;       /* (hash >> 32) | 1; 0 = empty */
    uint32_t attr_kind; /* attr << 2 | kf_cond_kind */
    uint32_t len;
    uint32_t count;     /* trigger ids */
    uint32_t first;     /* count == 1: the id; else into ids[] */
    uint32_t unused;
    const char *val;    /* `inl`, or the filter's copy when longer */
    char inl[IX_INLINE];
} ix_slot;

struct kn_filter_index {
    size_t n;
    kn_filter **filters;
    ix_attr *attrs;
    uint32_t nattrs, cap_attrs;
    uint64_t *names;   /* attribute-name table, ix_table slot format */
    uint32_t names_mask;
    ix_slot *slots;    /* the lookup table */
    uint32_t nslots, nkeys;
    uint64_t *bloom;   /* one bit per key hash: skips most absent keys */
    uint32_t bloom_mask;
    uint32_t *ids;     /* lists of keys with count > 1 */
    uint32_t *always;  /* triggers that are candidates for every event */
    uint32_t nalways;
};

/* -------------------------------------------------------- conditions */

static void add_cond(kf_cond *out, size_t max, size_t *count, kf_cond c)
{
    if (*count < max)
        out[*count] = c;
    (*count)++;
}

static void sql_conds(const ce_sql_expr *x, kf_cond *out, size_t max,
                      size_t *count)
{
    ce_sql_term t[IX_MAX_CONDS];
    size_t n = ce_sql_terms(x, t, IX_MAX_CONDS);
    if (n > IX_MAX_CONDS)
        n = IX_MAX_CONDS;
    for (size_t i = 0; i < n; i++) {
        kf_cond c = {KF_COND_EXACT, t[i].attr, (uint32_t)t[i].attr_len,
                     t[i].value, (uint32_t)t[i].value_len};
        if (t[i].kind == CE_SQL_TERM_PREFIX)
            c.kind = KF_COND_PREFIX;
        else if (t[i].kind == CE_SQL_TERM_SUFFIX)
            c.kind = KF_COND_SUFFIX;
        if (c.kind != KF_COND_EXACT && c.val_len == 0)
            c.kind = KF_COND_PRESENT; /* LIKE '%': any value */
        add_cond(out, max, count, c);
    }
}

static void node_conds(const kn_filter *f, uint32_t i, kf_cond *out,
                       size_t max, size_t *count)
{
    const kf_node *n = &f->nodes[i];
    kf_cond c = {KF_COND_EXACT, kf_str(f, n->attr_off), n->attr_len,
                 kf_str(f, n->val_off), n->val_len};
    switch ((kf_op)n->op) {
    case KF_ALL:
        for (uint32_t k = 0; k < n->nkids; k++)
            node_conds(f, f->kids[n->kid0 + k], out, max, count);
        return;
    case KF_CESQL:
        sql_conds(n->sql, out, max, count);
        return;
    case KF_EXACT:
        break;
    case KF_PREFIX:
        c.kind = KF_COND_PREFIX;
        break;
    case KF_SUFFIX:
        c.kind = KF_COND_SUFFIX;
        break;
    case KF_PRESENT:
        c.kind = KF_COND_PRESENT;
        c.val = "";
        c.val_len = 0;
        break;
    default: /* TRUE, ANY, NOT: nothing every match must satisfy */
        return;
    }
    add_cond(out, max, count, c);
}

size_t kf_conditions(const kn_filter *f, kf_cond *out, size_t max,
                     bool *whole)
{
    size_t count = 0;
    uint8_t op = f->nodes[f->root].op;
    node_conds(f, f->root, out, max, &count);
    *whole = op == KF_TRUE || op == KF_EXACT || op == KF_PREFIX ||
             op == KF_SUFFIX || op == KF_PRESENT;
    return count;
}

/* ------------------------------------------------------------ hashing */

static inline uint64_t fnv_step(uint64_t h, unsigned char c)
{
    return (h ^ c) * FNV_PRIME;
}

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = FNV_OFF;
    for (size_t i = 0; i < n; i++)
        h = fnv_step(h, (unsigned char)s[i]);
    return h;
}

/* Hash of the reversed bytes (suffix keys). */
static uint64_t fnv_rev(const char *s, size_t n)
{
    uint64_t h = FNV_OFF;
    while (n > 0)
        h = fnv_step(h, (unsigned char)s[--n]);
    return h;
}

static inline uint64_t key_hash(uint64_t h, uint32_t attr_kind)
{
    h ^= (uint64_t)attr_kind * 0x9e3779b97f4a7c15ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* Whole values (exact keys) are hashed 8 bytes at a time; prefixes and
 * suffixes use FNV-1a, which can be computed incrementally. */
static inline uint64_t hash_words(const char *s, size_t n)
{
    uint64_t h = 0x243f6a8885a308d3ull ^ ((uint64_t)n * FNV_PRIME);
    uint64_t w;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x9fb21c651e98df25ull;
        h ^= h >> 29;
    }
    w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x9fb21c651e98df25ull;
    return h ^ h >> 32;
}

static uint64_t value_hash(kf_cond_kind kind, const char *v, size_t n)
{
    if (kind == KF_COND_EXACT)
        return hash_words(v, n);
    return kind == KF_COND_SUFFIX ? fnv_rev(v, n) : fnv(v, n);
}

/* ------------------------------------------------------------- tables */

static uint32_t pow2_at_least(size_t n)
{
    uint32_t c = 16;
    while (c < n && c < (1u << 31))
        c <<= 1;
    return c;
}

static int table_init(ix_table *t, size_t expect)
{
    memset(t, 0, sizeof *t);
    uint32_t cap = pow2_at_least(expect * 2);
    t->slots = calloc(cap, sizeof *t->slots);
    t->cap = expect ? (uint32_t)expect : 1;
    t->e = malloc(t->cap * sizeof *t->e);
    if (!t->slots || !t->e)
        return KN_NOMEM;
    t->mask = cap - 1;
    return KN_OK;
}

static void table_free(ix_table *t)
{
    free(t->slots);
    free(t->e);
}

static inline const ix_entry *table_find(const ix_table *t, uint64_t h,
                                         uint32_t attr_kind, const char *v,
                                         size_t n, bool reversed_tail)
{
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint32_t i = (uint32_t)h & t->mask;; i = (i + 1) & t->mask) {
        uint64_t s = t->slots[i];
        if (!s)
            return NULL;
        if ((uint32_t)(s >> 32) != tag)
            continue;
        const ix_entry *e = &t->e[(uint32_t)s - 1];
        if (e->attr_kind == attr_kind && e->len == n &&
            memcmp(reversed_tail ? v - n : v, e->val, n) == 0)
            return e;
    }
}

/* Finds or adds a key; the entry index in *idx. The table never needs to
 * grow: table_init was given the largest number of keys. */
static void table_put(ix_table *t, uint32_t attr_kind, const char *v,
                      uint32_t n, uint32_t *idx)
{
    kf_cond_kind kind = (kf_cond_kind)(attr_kind & 3);
    uint64_t h = key_hash(value_hash(kind, v, n), attr_kind);
    const ix_entry *e = table_find(t, h, attr_kind,
                                   kind == KF_COND_SUFFIX ? v + n : v, n,
                                   kind == KF_COND_SUFFIX);
    if (e) {
        *idx = (uint32_t)(e - t->e);
        return;
    }
    uint32_t i = (uint32_t)h & t->mask;
    while (t->slots[i])
        i = (i + 1) & t->mask;
    *idx = t->n++;
    t->slots[i] = (h >> 32) << 32 | (uint64_t)(*idx + 1);
    t->e[*idx] = (ix_entry){h, v, n, attr_kind, 0, 0};
}

/* --------------------------------------------------------- attributes */

static int attr_find(const kn_filter_index *ix, const char *name, size_t n)
{
    if (!ix->names)
        return -1;
    uint64_t h = fnv(name, n);
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint32_t i = (uint32_t)h & ix->names_mask;;
         i = (i + 1) & ix->names_mask) {
        uint64_t s = ix->names[i];
        if (!s)
            return -1;
        const ix_attr *a = &ix->attrs[(uint32_t)s - 1];
        if ((uint32_t)(s >> 32) == tag && a->len == n &&
            memcmp(a->name, name, n) == 0)
            return (int)((uint32_t)s - 1);
    }
}

static void names_put(uint64_t *names, uint32_t mask, const ix_attr *a,
                      uint32_t id)
{
    uint64_t h = fnv(a->name, a->len);
    uint32_t i = (uint32_t)h & mask;
    while (names[i])
        i = (i + 1) & mask;
    names[i] = (h >> 32) << 32 | (uint64_t)(id + 1);
}

/* Doubles the attribute array and its name table. */
static int attrs_grow(kn_filter_index *ix)
{
    uint32_t cap = ix->cap_attrs ? ix->cap_attrs * 2 : 8;
    ix_attr *a = realloc(ix->attrs, cap * sizeof *a);
    if (!a)
        return KN_NOMEM;
    ix->attrs = a;
    memset(a + ix->cap_attrs, 0, (cap - ix->cap_attrs) * sizeof *a);
    ix->cap_attrs = cap;
    uint64_t *names = calloc((size_t)cap * 2, sizeof *names);
    if (!names)
        return KN_NOMEM;
    for (uint32_t i = 0; i < ix->nattrs; i++)
        names_put(names, cap * 2 - 1, &ix->attrs[i], i);
    free(ix->names);
    ix->names = names;
    ix->names_mask = cap * 2 - 1;
    return KN_OK;
}

/* The attribute's number, added if new; -1 when out of memory. */
static int64_t attr_intern(kn_filter_index *ix, const char *name, size_t n)
{
    int found = attr_find(ix, name, n);
    if (found >= 0)
        return found;
    if (ix->nattrs == ix->cap_attrs && attrs_grow(ix) != KN_OK)
        return -1;
    uint32_t id = ix->nattrs++;
    ix->attrs[id].name = name;
    ix->attrs[id].len = (uint32_t)n;
    names_put(ix->names, ix->names_mask, &ix->attrs[id], id);
    return id;
}

/* Adds length L to a sorted distinct list (sizes are small). */
static int add_len(uint32_t **lens, uint32_t *n, uint32_t len)
{
    uint32_t i = 0;
    while (i < *n && (*lens)[i] < len)
        i++;
    if (i < *n && (*lens)[i] == len)
        return KN_OK;
    uint32_t *p = realloc(*lens, (*n + 1) * sizeof *p);
    if (!p)
        return KN_NOMEM;
    memmove(p + i + 1, p + i, (*n - i) * sizeof *p);
    p[i] = len;
    *lens = p;
    (*n)++;
    return KN_OK;
}

/* -------------------------------------------------------------- build */

typedef struct ix_build {
    uint32_t *cond_first; /* per trigger: first key in `keys` */
    uint32_t *cond_n;
    uint32_t *keys;       /* entry indexes into `all` */
    size_t nkeys;
    bool *whole;
    ix_table all;         /* every condition, counting triggers */
    uint32_t *choice;     /* per trigger: chosen key in `all`, or ~0 */
} ix_build;

static void build_free(ix_build *b)
{
    free(b->cond_first);
    free(b->cond_n);
    free(b->keys);
    free(b->whole);
    free(b->choice);
    table_free(&b->all);
}

/* Pass 1: every trigger's conditions, interned, with trigger counts. */
static int collect(kn_filter_index *ix, ix_build *b)
{
    kf_cond *c = malloc(IX_MAX_CONDS * sizeof *c);
    size_t total = 0, cap = 0;
    int rc = c ? KN_OK : KN_NOMEM;
    /* First count, so the tables are sized once. */
    for (size_t i = 0; i < ix->n && !rc; i++) {
        bool whole;
        size_t k = ix->filters[i] ?
            kf_conditions(ix->filters[i], c, IX_MAX_CONDS, &whole) : 0;
        cap += k < IX_MAX_CONDS ? k : IX_MAX_CONDS;
    }
    if (!rc)
        rc = table_init(&b->all, cap);
    b->keys = malloc((cap ? cap : 1) * sizeof *b->keys);
    if (!b->keys)
        rc = KN_NOMEM;
    for (size_t i = 0; i < ix->n && !rc; i++) {
        size_t k = 0;
        b->cond_first[i] = (uint32_t)total;
        if (ix->filters[i])
            k = kf_conditions(ix->filters[i], c, IX_MAX_CONDS,
                              &b->whole[i]);
        if (k > IX_MAX_CONDS)
            k = IX_MAX_CONDS;
        for (size_t j = 0; j < k && !rc; j++) {
            int64_t a = attr_intern(ix, c[j].attr, c[j].attr_len);
            uint32_t e;
            if (a < 0) {
                rc = KN_NOMEM;
                break;
            }
            table_put(&b->all, (uint32_t)a << 2 | c[j].kind, c[j].val,
                      c[j].val_len, &e);
            b->all.e[e].count++;
            b->keys[total++] = e;
        }
        b->cond_n[i] = (uint32_t)k;
    }
    b->nkeys = total;
    free(c);
    return rc;
}

/* Lower is better: the triggers sharing the key, weighted by how much
 * less selective its kind is. */
static uint64_t score(const ix_entry *e)
{
    static const uint64_t weight[4] = {1, 8, 8, 64};
    return (uint64_t)e->count * weight[e->attr_kind & 3];
}

static bool better(const ix_entry *a, const ix_entry *b)
{
    uint64_t sa = score(a), sb = score(b);
    if (sa != sb)
        return sa < sb;
    if ((a->attr_kind & 3) != (b->attr_kind & 3))
        return (a->attr_kind & 3) < (b->attr_kind & 3);
    return a->len > b->len;
}

/* Pass 2: one key per trigger, then the id lists. Afterwards the count
 * of an entry of `all` is the number of triggers filed under it. */
static int choose(kn_filter_index *ix, ix_build *b)
{
    size_t nchosen = 0;
    for (size_t i = 0; i < ix->n; i++) {
        uint32_t best = UINT32_MAX;
        for (uint32_t j = 0; j < b->cond_n[i]; j++) {
            uint32_t e = b->keys[b->cond_first[i] + j];
            if (best == UINT32_MAX || better(&b->all.e[e], &b->all.e[best]))
                best = e;
        }
        b->choice[i] = best;
        nchosen += best != UINT32_MAX;
    }
    ix->ids = malloc((nchosen ? nchosen : 1) * sizeof *ix->ids);
    ix->always = malloc((ix->n - nchosen + 1) * sizeof *ix->always);
    if (!ix->ids || !ix->always)
        return KN_NOMEM;
    for (uint32_t k = 0; k < b->all.n; k++)
        b->all.e[k].count = 0;
    for (size_t i = 0; i < ix->n; i++)
        if (b->choice[i] != UINT32_MAX)
            b->all.e[b->choice[i]].count++;
    uint32_t off = 0;
    for (uint32_t k = 0; k < b->all.n; k++) {
        b->all.e[k].first = off;
        off += b->all.e[k].count;
        b->all.e[k].count = 0;
    }
    for (size_t i = 0; i < ix->n; i++) {
        uint32_t id = (uint32_t)i |
                      (ix->filters[i] && !b->whole[i] ? IX_VERIFY : 0);
        if (b->choice[i] == UINT32_MAX) {
            if (ix->filters[i]) /* NULL: an unused slot, never matches */
                ix->always[ix->nalways++] = id;
            continue;
        }
        ix_entry *e = &b->all.e[b->choice[i]];
        ix->ids[e->first + e->count++] = id;
    }
    ix->nkeys = 0;
    for (uint32_t k = 0; k < b->all.n; k++)
        ix->nkeys += b->all.e[k].count > 0;
    return KN_OK;
}

static uint32_t slot_tag(uint64_t h)
{
    return (uint32_t)(h >> 32) | 1;
}

static uint64_t bloom_bit(uint64_t h)
{
    return h >> 40 ^ h >> 8;
}

/* The first slot to try: the low 32 bits mapped onto [0, nslots). */
static inline uint32_t slot_home(const kn_filter_index *ix, uint64_t h)
{
    return (uint32_t)(((h & 0xffffffffu) * ix->nslots) >> 32);
}

/* Pass 3: the lookup table (single-id lists inline) and, per attribute,
 * which kinds and lengths to probe. */
static int finish(kn_filter_index *ix, ix_build *b)
{
    uint32_t cap = ix->nkeys + ix->nkeys / 3 + 1; /* load <= 3/4 */
    uint32_t bits = pow2_at_least((size_t)ix->nkeys * 16 + 64);
    ix->slots = aligned_alloc(64, (size_t)cap * sizeof *ix->slots);
    ix->bloom = calloc(bits / 64, sizeof *ix->bloom);
    if (!ix->slots || !ix->bloom)
        return KN_NOMEM;
    memset(ix->slots, 0, (size_t)cap * sizeof *ix->slots);
    ix->nslots = cap;
    ix->bloom_mask = bits - 1;
    for (uint32_t k = 0; k < b->all.n; k++) {
        const ix_entry *e = &b->all.e[k];
        if (k + 8 < b->all.n) /* random writes: fetch ahead */
            __builtin_prefetch(&ix->slots[slot_home(ix, e[8].h)], 1);
        if (e->count == 0)
            continue;
        kf_cond_kind kind = (kf_cond_kind)(e->attr_kind & 3);
        uint64_t h = e->h;
        uint32_t i = slot_home(ix, h);
        while (ix->slots[i].tag)
            i = i + 1 == ix->nslots ? 0 : i + 1;
        ix_slot *s = &ix->slots[i];
        s->tag = slot_tag(h);
        s->attr_kind = e->attr_kind;
        s->len = e->len;
        s->count = e->count;
        s->first = e->count == 1 ? ix->ids[e->first] : e->first;
        s->val = e->val;
        if (e->len <= IX_INLINE) {
            memcpy(s->inl, e->val, e->len);
            s->val = s->inl;
        }
        uint64_t bit = bloom_bit(h) & ix->bloom_mask;
        ix->bloom[bit >> 6] |= 1ull << (bit & 63);
        ix_attr *a = &ix->attrs[e->attr_kind >> 2];
        int rc = KN_OK;
        switch (kind) {
        case KF_COND_EXACT: a->has_exact = true; break;
        case KF_COND_PRESENT: a->has_present = true; break;
        case KF_COND_PREFIX: rc = add_len(&a->plens, &a->nplens, e->len);
            break;
        case KF_COND_SUFFIX: rc = add_len(&a->slens, &a->nslens, e->len);
            break;
        }
        if (rc)
            return rc;
    }
    return KN_OK;
}

int kn_filter_index_build(kn_filter *const *filters, size_t n,
                          kn_filter_index **out, kn_err *err)
{
    *out = NULL;
    if (n > IX_MAX_TRIGGERS)
        return kn_err_set(err, KN_INVAL, "too many triggers (%zu)", n);
    kn_filter_index *ix = calloc(1, sizeof *ix);
    ix_build b;
    memset(&b, 0, sizeof b);
    int rc = KN_NOMEM;
    if (!ix)
        goto fail;
    ix->n = n;
    ix->filters = malloc((n ? n : 1) * sizeof *ix->filters);
    b.cond_first = malloc((n ? n : 1) * sizeof *b.cond_first);
    b.cond_n = malloc((n ? n : 1) * sizeof *b.cond_n);
    b.whole = calloc(n ? n : 1, sizeof *b.whole);
    b.choice = malloc((n ? n : 1) * sizeof *b.choice);
    if (!ix->filters || !b.cond_first || !b.cond_n || !b.whole || !b.choice)
        goto fail;
    if (n)
        memcpy(ix->filters, filters, n * sizeof *filters);
    rc = collect(ix, &b);
    if (!rc)
        rc = choose(ix, &b);
    if (!rc)
        rc = finish(ix, &b);
    if (rc)
        goto fail;
    build_free(&b);
    *out = ix;
    return KN_OK;
fail:
    build_free(&b);
    kn_filter_index_free(ix);
    return kn_err_set(err, KN_NOMEM, "out of memory building the trigger "
                      "index");
}

void kn_filter_index_free(kn_filter_index *ix)
{
    if (!ix)
        return;
    for (uint32_t i = 0; i < ix->nattrs; i++) {
        free(ix->attrs[i].plens);
        free(ix->attrs[i].slens);
    }
    free(ix->attrs);
    free(ix->names);
    free(ix->slots);
    free(ix->bloom);
    free(ix->ids);
    free(ix->always);
    free(ix->filters);
    free(ix);
}

size_t kn_filter_index_size(const kn_filter_index *ix)
{
    return ix ? ix->n : 0;
}

/* -------------------------------------------------------------- match */

/* Below this many indexed attributes the event is asked for each one;
 * above, the event's own attributes are looked up in the index. */
#define IX_SCAN_ATTRS 12

typedef struct ix_out {
    uint64_t *bits;  /* bitmap output, or NULL */
    uint32_t *ids;   /* list output */
    size_t max;
    size_t count;
} ix_out;

static inline void emit(const kn_filter_index *ix, uint32_t id,
                        const ce_event *ev, ix_out *o)
{
    uint32_t t = id & ~IX_VERIFY;
    if ((id & IX_VERIFY) && !kf_eval(ix->filters[t], ix->filters[t]->root,
                                     ev))
        return;
    if (o->bits)
        o->bits[t >> 6] |= 1ull << (t & 63);
    else if (o->count < o->max)
        o->ids[o->count] = t;
    o->count++;
}

static inline const ix_slot *slot_find(const kn_filter_index *ix,
                                       uint64_t h, uint32_t attr_kind,
                                       const char *v, size_t n)
{
    uint64_t bit = bloom_bit(h) & ix->bloom_mask;
    if (!(ix->bloom[bit >> 6] >> (bit & 63) & 1))
        return NULL;
    uint32_t tag = slot_tag(h);
    for (uint32_t i = slot_home(ix, h);;
         i = i + 1 == ix->nslots ? 0 : i + 1) {
        const ix_slot *s = &ix->slots[i];
        if (!s->tag)
            return NULL;
        if (s->tag == tag && s->attr_kind == attr_kind && s->len == n &&
            memcmp(v, s->val, n) == 0)
            return s;
    }
}

/* Looks a key up; v points at the key's bytes (for a suffix: its end). */
static inline void probe(const kn_filter_index *ix, uint64_t h,
                         uint32_t attr_kind, const char *v, size_t n,
                         bool rev, const ce_event *ev, ix_out *o)
{
    const ix_slot *e = slot_find(ix, key_hash(h, attr_kind), attr_kind,
                                 rev ? v - n : v, n);
    if (!e)
        return;
    if (e->count == 1) {
        emit(ix, e->first, ev, o);
        return;
    }
    for (uint32_t k = 0; k < e->count; k++)
        emit(ix, ix->ids[e->first + k], ev, o);
}

static void match_attr(const kn_filter_index *ix, uint32_t id,
                       const char *v, size_t len, const ce_event *ev,
                       ix_out *o)
{
    const ix_attr *a = &ix->attrs[id];
    uint32_t base = id << 2;
    if (a->has_present)
        probe(ix, FNV_OFF, base | KF_COND_PRESENT, v, 0, false, ev, o);
    if (a->has_exact)
        probe(ix, hash_words(v, len), base | KF_COND_EXACT, v, len, false,
              ev, o);
    if (a->nplens) {
        uint64_t h = FNV_OFF;
        uint32_t k = 0;
        size_t stop = a->plens[a->nplens - 1] < len ?
                      a->plens[a->nplens - 1] : len;
        for (size_t p = 0;; p++) {
            if (k < a->nplens && a->plens[k] == p) {
                probe(ix, h, base | KF_COND_PREFIX, v, p, false, ev, o);
                k++;
            }
            if (p == stop)
                break;
            h = fnv_step(h, (unsigned char)v[p]);
        }
    }
    if (a->nslens) {
        uint64_t h = FNV_OFF;
        uint32_t k = 0;
        size_t stop = a->slens[a->nslens - 1] < len ?
                      a->slens[a->nslens - 1] : len;
        for (size_t q = 0;; q++) {
            if (k < a->nslens && a->slens[k] == q) {
                probe(ix, h, base | KF_COND_SUFFIX, v + len, q, true, ev, o);
                k++;
            }
            if (q == stop)
                break;
            h = fnv_step(h, (unsigned char)v[len - 1 - q]);
        }
    }
}

static size_t run(const kn_filter_index *ix, const ce_event *ev, ix_out *o)
{
    for (uint32_t i = 0; i < ix->nalways; i++)
        emit(ix, ix->always[i], ev, o);
    if (ix->nattrs <= IX_SCAN_ATTRS) {
        for (uint32_t i = 0; i < ix->nattrs; i++) {
            size_t len;
            const char *v = ce_event_getn(ev, ix->attrs[i].name,
                                          ix->attrs[i].len, &len, NULL);
            if (v)
                match_attr(ix, i, v, len, ev, o);
        }
        return o->count;
    }
    ce_attr at;
    for (size_t i = 0; ce_event_attr_at(ev, i, &at); i++) {
        int id = attr_find(ix, at.name, strlen(at.name));
        if (id >= 0)
            match_attr(ix, (uint32_t)id, at.value, at.len, ev, o);
    }
    return o->count;
}

size_t kn_filter_index_match(const kn_filter_index *ix, const ce_event *ev,
                             uint64_t *match)
{
    memset(match, 0, ((ix->n + 63) / 64) * sizeof *match);
    ix_out o = {match, NULL, 0, 0};
    return run(ix, ev, &o);
}

size_t kn_filter_index_match_ids(const kn_filter_index *ix,
                                 const ce_event *ev, uint32_t *ids,
                                 size_t max)
{
    ix_out o = {NULL, ids, max, 0};
    return run(ix, ev, &o);
}

/* -------------------------------------------------------------- stats */

void kn_filter_index_stats_get(const kn_filter_index *ix,
                               kn_filter_index_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!ix)
        return;
    out->triggers = ix->n;
    out->always = ix->nalways;
    out->keys = ix->nkeys;
    out->attributes = ix->nattrs;
    for (uint32_t k = 0; k < ix->nslots; k++) {
        const ix_slot *e = &ix->slots[k];
        out->indexed += e->count;
        for (uint32_t j = 0; j < e->count; j++) {
            uint32_t id = e->count == 1 ? e->first : ix->ids[e->first + j];
            out->verified += (id & IX_VERIFY) != 0;
        }
    }
    out->bytes = sizeof *ix + ix->n * sizeof *ix->filters +
                 (size_t)ix->nslots * sizeof *ix->slots +
                 ((size_t)ix->bloom_mask + 1) / 8 +
                 out->indexed * sizeof *ix->ids +
                 (ix->n - out->indexed + 1) * sizeof *ix->always +
                 ((size_t)ix->names_mask + 1) * sizeof *ix->names +
                 ix->cap_attrs * sizeof *ix->attrs;
    for (uint32_t i = 0; i < ix->nattrs; i++)
        out->bytes += (ix->attrs[i].nplens + ix->attrs[i].nslens) *
                      sizeof(uint32_t);
}

bool kf_index_key(const kn_filter_index *ix, size_t i, kf_cond *out)
{
    for (uint32_t k = 0; k < ix->nslots; k++) {
        const ix_slot *e = &ix->slots[k];
        for (uint32_t j = 0; j < e->count; j++) {
            uint32_t id = e->count == 1 ? e->first : ix->ids[e->first + j];
            if ((id & ~IX_VERIFY) != i)
                continue;
            const ix_attr *a = &ix->attrs[e->attr_kind >> 2];
            *out = (kf_cond){(kf_cond_kind)(e->attr_kind & 3), a->name,
                             a->len, e->val, e->len};
            return true;
        }
    }
    return false;
}
