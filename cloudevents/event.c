/*
 * The CloudEvents event model: core attributes, typed extensions and data,
 * stored in a per-event arena (the first ~800 bytes live inside the event
 * allocation itself, so a typical event costs one malloc). Events are
 * reference-counted with atomics; a frozen event is immutable and may be
 * read and released from any thread. A mutable event belongs to one thread.
 *
 * Replacing a value does not reclaim the old bytes; they are freed with the
 * event. Values are checked when set, so validation only applies the
 * event-level rules (required attributes, specversion, media type).
 */
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cloudevents/ce_int.h"

#define CE_INLINE_ARENA 800
#define CE_BLOCK_MIN 1024

const char *const ce__core_names[CE_A_NCORE] = {
    "specversion", "id", "source", "type", "datacontenttype", "dataschema",
    "subject", "time",
};

const ce_type ce__core_types[CE_A_NCORE] = {
    CE_TYPE_STRING, CE_TYPE_STRING, CE_TYPE_URI_REF, CE_TYPE_STRING,
    CE_TYPE_STRING, CE_TYPE_URI, CE_TYPE_STRING, CE_TYPE_TIMESTAMP,
};

typedef struct ce_slot {
    const char *v; /* NULL when unset; NUL-terminated */
    uint32_t len;
} ce_slot;

typedef struct ce_ext {
    const char *name;
    const char *v;
    uint32_t len;
    uint8_t nlen;
    uint8_t type;
} ce_ext;

typedef struct ce_block {
    struct ce_block *next;
    alignas(max_align_t) char mem[];
} ce_block;

struct ce_event {
    atomic_uint refs;
    atomic_bool frozen;
    bool has_data;
    uint32_t next, ext_cap;
    ce_ext *ext;
    char *data;
    size_t data_len;
    ce_slot core[CE_A_NCORE];
    char *cur, *lim;   /* free space of the current arena block */
    ce_block *blocks;  /* extra blocks, newest first */
    size_t last_block; /* size of the newest extra block */
    alignas(max_align_t) char mem[CE_INLINE_ARENA];
};

/* ------------------------------------------------------------ arena */

static void *arena_alloc(ce_event *ev, size_t n, size_t align)
{
    uintptr_t p = ((uintptr_t)ev->cur + (align - 1)) & ~(uintptr_t)(align - 1);
    if (p <= (uintptr_t)ev->lim && n <= (size_t)((uintptr_t)ev->lim - p)) {
        ev->cur = (char *)p + n;
        return (void *)p;
    }
    size_t size = ev->last_block ? ev->last_block * 2 : CE_BLOCK_MIN;
    if (size < n + align)
        size = n + align;
    if (size > SIZE_MAX - sizeof(ce_block))
        return NULL;
    ce_block *b = malloc(sizeof(ce_block) + size);
    if (!b)
        return NULL;
    b->next = ev->blocks;
    ev->blocks = b;
    ev->last_block = size;
    ev->cur = b->mem + n; /* mem is max-aligned */
    ev->lim = b->mem + size;
    return b->mem;
}

static char *arena_strdup(ce_event *ev, const char *s, size_t n)
{
    char *p = arena_alloc(ev, n + 1, 1);
    if (p) {
        if (n)
            memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* ------------------------------------------------------------ lifecycle */

/* New mutable event, refcount 1. NULL on ENOMEM. Thread: any. */
ce_event *ce_event_new(void)
{
    ce_event *ev = malloc(sizeof *ev);
    if (!ev)
        return NULL;
    memset(ev, 0, offsetof(ce_event, mem));
    atomic_init(&ev->refs, 1);
    atomic_init(&ev->frozen, false);
    ev->cur = ev->mem;
    ev->lim = ev->mem + sizeof ev->mem;
    return ev;
}

ce_event *ce_event_ref(ce_event *ev)
{
    atomic_fetch_add_explicit(&ev->refs, 1, memory_order_relaxed);
    return ev;
}

void ce_event_unref(ce_event *ev)
{
    if (!ev)
        return;
    if (atomic_fetch_sub_explicit(&ev->refs, 1, memory_order_release) != 1)
        return;
    atomic_thread_fence(memory_order_acquire);
    ce_block *b = ev->blocks;
    while (b) {
        ce_block *next = b->next;
        free(b);
        b = next;
    }
    free(ev);
}

void ce_event_freeze(ce_event *ev)
{
    atomic_store_explicit(&ev->frozen, true, memory_order_release);
}

bool ce_event_frozen(const ce_event *ev)
{
    return atomic_load_explicit(&ev->frozen, memory_order_acquire);
}

/* ------------------------------------------------------------ lookup */

int ce__core_index(const char *name, size_t n)
{
    int i;
    switch (n) {
    case 2: i = CE_A_ID; break;
    case 4: i = name[0] == 't' && name[1] == 'y' ? CE_A_TYPE : CE_A_TIME;
        break;
    case 6: i = CE_A_SOURCE; break;
    case 7: i = CE_A_SUBJECT; break;
    case 10: i = CE_A_DATASCHEMA; break;
    case 11: i = CE_A_SPECVERSION; break;
    case 15: i = CE_A_DATACONTENTTYPE; break;
    default: return -1;
    }
    return memcmp(name, ce__core_names[i], n) == 0 ? i : -1;
}

static ce_ext *find_ext(const ce_event *ev, const char *name, size_t n)
{
    for (uint32_t i = 0; i < ev->next; i++)
        if (ev->ext[i].nlen == n && memcmp(ev->ext[i].name, name, n) == 0)
            return &ev->ext[i];
    return NULL;
}

const char *ce_event_getn(const ce_event *ev, const char *name, size_t nlen,
                          size_t *len, ce_type *type)
{
    int c = ce__core_index(name, nlen);
    const char *v = NULL;
    size_t l = 0;
    ce_type t = CE_TYPE_STRING;
    if (c >= 0) {
        v = ev->core[c].v;
        l = ev->core[c].len;
        t = ce__core_types[c];
    } else {
        const ce_ext *x = find_ext(ev, name, nlen);
        if (x) {
            v = x->v;
            l = x->len;
            t = (ce_type)x->type;
        }
    }
    if (v) {
        if (len)
            *len = l;
        if (type)
            *type = t;
    }
    return v;
}

const char *ce_event_get(const ce_event *ev, const char *name, size_t *len,
                         ce_type *type)
{
    return ce_event_getn(ev, name, strlen(name), len, type);
}

size_t ce_event_attr_count(const ce_event *ev)
{
    size_t n = ev->next;
    for (int i = 0; i < CE_A_NCORE; i++)
        n += ev->core[i].v != NULL;
    return n;
}

bool ce_event_attr_at(const ce_event *ev, size_t i, ce_attr *out)
{
    for (int c = 0; c < CE_A_NCORE; c++) {
        if (!ev->core[c].v)
            continue;
        if (i-- == 0) {
            out->name = ce__core_names[c];
            out->value = ev->core[c].v;
            out->len = ev->core[c].len;
            out->type = ce__core_types[c];
            out->extension = false;
            return true;
        }
    }
    if (i >= ev->next)
        return false;
    out->name = ev->ext[i].name;
    out->value = ev->ext[i].v;
    out->len = ev->ext[i].len;
    out->type = (ce_type)ev->ext[i].type;
    out->extension = true;
    return true;
}

/* ------------------------------------------------------------ setters */

static int frozen_err(const char *name, ce_err *err)
{
    return ce_err_set(err, CE_EFROZEN, name, -1,
                      "event is frozen (shared); clone it to modify");
}

static int oom(ce_err *err)
{
    return ce_err_set(err, CE_ENOMEM, "", -1, "out of memory");
}

static ce_ext *add_ext(ce_event *ev, const char *name, size_t nlen)
{
    if (ev->next == ev->ext_cap) {
        uint32_t cap = ev->ext_cap ? ev->ext_cap * 2 : 4;
        ce_ext *x = arena_alloc(ev, cap * sizeof *x, alignof(ce_ext));
        if (!x)
            return NULL;
        if (ev->next)
            memcpy(x, ev->ext, ev->next * sizeof *x);
        ev->ext = x;
        ev->ext_cap = cap;
    }
    const char *nm = arena_strdup(ev, name, nlen);
    if (!nm)
        return NULL;
    ce_ext *x = &ev->ext[ev->next++];
    x->name = nm;
    x->nlen = (uint8_t)nlen;
    return x;
}

int ce__event_set_raw(ce_event *ev, int core, const char *name, size_t nlen,
                      const char *value, size_t n, ce_type type, ce_err *err)
{
    if (ce_event_frozen(ev))
        return frozen_err(core >= 0 ? ce__core_names[core] : "", err);
    if (n > UINT32_MAX)
        return ce_err_set(err, CE_ERANGE, core >= 0 ? ce__core_names[core]
                          : "", -1, "attribute value too long");
    const char *v = arena_strdup(ev, value ? value : "", n);
    if (!v)
        return oom(err);
    if (core >= 0) {
        ev->core[core].v = v;
        ev->core[core].len = (uint32_t)n;
        return CE_OK;
    }
    ce_ext *x = find_ext(ev, name, nlen);
    if (!x && !(x = add_ext(ev, name, nlen)))
        return oom(err);
    x->v = v;
    x->len = (uint32_t)n;
    x->type = (uint8_t)type;
    return CE_OK;
}

/* Sets an attribute from its canonical string; see cloudevents.h.
 * Errors: CE_EFROZEN, CE_EINVAL (name or value; err names the attribute),
 * CE_ENOMEM. Thread: the owner of the mutable event. */
int ce_event_setn(ce_event *ev, const char *name, size_t nlen,
                  const char *value, size_t n, ce_type type, ce_err *err)
{
    int core = ce__core_index(name, nlen);
    char buf[24]; /* NUL-terminated name for error messages */
    const char *attr = buf;
    if (core < 0) {
        int rc = ce_check_attr_name(name, nlen, err);
        if (rc != CE_OK)
            return rc;
        if ((unsigned)type > CE_TYPE_TIMESTAMP)
            return ce_err_set(err, CE_EINVAL, "", -1,
                              "unknown attribute type %d", (int)type);
        memcpy(buf, name, nlen);
        buf[nlen] = '\0';
    } else {
        type = ce__core_types[core];
        attr = ce__core_names[core];
    }
    if (ce_event_frozen(ev))
        return frozen_err(attr, err);
    if (!value && n)
        return ce_err_set(err, CE_EINVAL, attr, -1, "NULL value");
    int rc = ce__check_value(type, value ? value : "", n, attr, err);
    if (rc != CE_OK)
        return rc;
    return ce__event_set_raw(ev, core, name, nlen, value, n, type, err);
}

int ce_event_set(ce_event *ev, const char *name, const char *value, size_t n,
                 ce_type type, ce_err *err)
{
    return ce_event_setn(ev, name, strlen(name), value, n, type, err);
}

int ce_event_set_str(ce_event *ev, const char *name, const char *value,
                     ce_err *err)
{
    return ce_event_set(ev, name, value, value ? strlen(value) : 0,
                        CE_TYPE_STRING, err);
}

int ce_event_set_int(ce_event *ev, const char *name, int32_t v, ce_err *err)
{
    char buf[16];
    int n = snprintf(buf, sizeof buf, "%d", (int)v);
    return ce_event_set(ev, name, buf, (size_t)n, CE_TYPE_INTEGER, err);
}

int ce_event_set_bool(ce_event *ev, const char *name, bool v, ce_err *err)
{
    return ce_event_set(ev, name, v ? "true" : "false", v ? 4 : 5,
                        CE_TYPE_BOOLEAN, err);
}

int ce_event_unset(ce_event *ev, const char *name)
{
    if (ce_event_frozen(ev))
        return CE_EFROZEN;
    size_t n = strlen(name);
    int core = ce__core_index(name, n);
    if (core >= 0) {
        if (!ev->core[core].v)
            return CE_ENOTFOUND;
        ev->core[core].v = NULL;
        ev->core[core].len = 0;
        return CE_OK;
    }
    ce_ext *x = find_ext(ev, name, n);
    if (!x)
        return CE_ENOTFOUND;
    size_t i = (size_t)(x - ev->ext);
    memmove(x, x + 1, (ev->next - i - 1) * sizeof *x);
    ev->next--;
    return CE_OK;
}

/* ------------------------------------------------------------ data */

char *ce__event_data_alloc(ce_event *ev, size_t n)
{
    if (ce_event_frozen(ev) || n == SIZE_MAX)
        return NULL;
    char *p = arena_alloc(ev, n + 1, 1);
    if (!p)
        return NULL;
    p[n] = '\0';
    ev->data = p;
    ev->data_len = n;
    ev->has_data = true;
    return p;
}

void ce__event_data_truncate(ce_event *ev, size_t n)
{
    if (n <= ev->data_len) {
        if (ev->data + ev->data_len + 1 == ev->cur) /* give the rest back */
            ev->cur = ev->data + n + 1;
        ev->data_len = n;
        ev->data[n] = '\0';
    }
}

int ce_event_set_data(ce_event *ev, const void *data, size_t n)
{
    if (ce_event_frozen(ev))
        return CE_EFROZEN;
    char *p = ce__event_data_alloc(ev, n);
    if (!p)
        return CE_ENOMEM;
    if (n)
        memcpy(p, data, n);
    return CE_OK;
}

int ce_event_clear_data(ce_event *ev)
{
    if (ce_event_frozen(ev))
        return CE_EFROZEN;
    ev->has_data = false;
    ev->data = NULL;
    ev->data_len = 0;
    return CE_OK;
}

bool ce_event_has_data(const ce_event *ev)
{
    return ev->has_data;
}

const void *ce_event_data(const ce_event *ev, size_t *n)
{
    if (n)
        *n = ev->has_data ? ev->data_len : 0;
    return ev->has_data ? ev->data : NULL;
}

/* ------------------------------------------------------------ copy/compare */

ce_event *ce_event_clone(const ce_event *src)
{
    ce_event *ev = ce_event_new();
    if (!ev)
        return NULL;
    size_t need = src->has_data ? src->data_len + 1 : 0;
    for (int c = 0; c < CE_A_NCORE; c++)
        if (src->core[c].v)
            need += src->core[c].len + 1;
    need += (src->next + 1) * sizeof(ce_ext);
    for (uint32_t i = 0; i < src->next; i++)
        need += src->ext[i].nlen + src->ext[i].len + 2;
    if (need > sizeof ev->mem && !arena_alloc(ev, need, 1))
        goto fail;
    ev->cur = ev->blocks ? ev->blocks->mem : ev->mem; /* reuse the space */
    for (int c = 0; c < CE_A_NCORE; c++)
        if (src->core[c].v && ce__event_set_raw(ev, c, NULL, 0, src->core[c].v,
                                                src->core[c].len,
                                                ce__core_types[c], NULL))
            goto fail;
    for (uint32_t i = 0; i < src->next; i++) {
        const ce_ext *x = &src->ext[i];
        if (ce__event_set_raw(ev, -1, x->name, x->nlen, x->v, x->len,
                              (ce_type)x->type, NULL))
            goto fail;
    }
    if (src->has_data && ce_event_set_data(ev, src->data, src->data_len))
        goto fail;
    return ev;
fail:
    ce_event_unref(ev);
    return NULL;
}

static bool same(const char *a, size_t al, const char *b, size_t bl)
{
    return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

bool ce_event_equal(const ce_event *a, const ce_event *b)
{
    if (a == b)
        return true;
    for (int c = 0; c < CE_A_NCORE; c++) {
        if (!a->core[c].v != !b->core[c].v)
            return false;
        if (a->core[c].v && !same(a->core[c].v, a->core[c].len,
                                  b->core[c].v, b->core[c].len))
            return false;
    }
    if (a->next != b->next || a->has_data != b->has_data)
        return false;
    for (uint32_t i = 0; i < a->next; i++) {
        const ce_ext *x = &a->ext[i];
        const ce_ext *y = find_ext(b, x->name, x->nlen);
        if (!y || x->type != y->type || !same(x->v, x->len, y->v, y->len))
            return false;
    }
    return !a->has_data || same(a->data, a->data_len, b->data, b->data_len);
}

/* ------------------------------------------------------------ validation */

static int check_required(const ce_event *ev, int c, ce_err *err)
{
    const char *name = ce__core_names[c];
    if (!ev->core[c].v)
        return ce_err_set(err, CE_EINVAL, name, -1,
                          "required attribute is missing");
    if (ev->core[c].len == 0)
        return ce_err_set(err, CE_EINVAL, name, -1,
                          "required attribute must not be empty");
    return CE_OK;
}

/* Event-level rules of CloudEvents 1.0; see cloudevents.h. */
int ce_event_validate(const ce_event *ev, ce_err *err)
{
    int rc;
    if ((rc = check_required(ev, CE_A_SPECVERSION, err)) != CE_OK)
        return rc;
    const ce_slot *sv = &ev->core[CE_A_SPECVERSION];
    if (!same(sv->v, sv->len, "1.0", 3))
        return ce_err_set(err, CE_EINVAL, "specversion", -1,
                          "unsupported specversion '%.16s': must be 1.0%s",
                          sv->v, same(sv->v, sv->len, "0.3", 3)
                          ? " (convert 0.3 with ce_event_upgrade_03)" : "");
    if ((rc = check_required(ev, CE_A_ID, err)) != CE_OK ||
        (rc = check_required(ev, CE_A_SOURCE, err)) != CE_OK ||
        (rc = check_required(ev, CE_A_TYPE, err)) != CE_OK)
        return rc;
    static const int optional_nonempty[] = {CE_A_DATACONTENTTYPE,
                                            CE_A_DATASCHEMA, CE_A_SUBJECT};
    for (size_t i = 0; i < 3; i++) {
        int c = optional_nonempty[i];
        if (ev->core[c].v && ev->core[c].len == 0)
            return ce_err_set(err, CE_EINVAL, ce__core_names[c], -1,
                              "attribute must not be empty when present");
    }
    const ce_slot *ct = &ev->core[CE_A_DATACONTENTTYPE];
    if (ct->v)
        return ce__check_media(ct->v, ct->len, "datacontenttype", err);
    return CE_OK;
}

/* ------------------------------------------------------------ 0.3 */

static int upgrade_encoding(ce_event *ev, ce_err *err)
{
    size_t n;
    const char *enc = ce_event_get(ev, "datacontentencoding", &n, NULL);
    if (!enc)
        return CE_OK;
    if (n != 6 || strncasecmp(enc, "base64", 6) != 0)
        return ce_err_set(err, CE_EINVAL, "datacontentencoding", -1,
                          "unsupported datacontentencoding '%.32s': only "
                          "base64 is defined", enc);
    if (ev->has_data) {
        const char *d = ev->data;
        size_t dl = ev->data_len;
        if (dl >= 2 && d[0] == '"' && d[dl - 1] == '"')
            d++, dl -= 2; /* the JSON text of a string */
        ce_buf out = CE_BUF_INIT;
        int rc = ce_base64_decode(&out, d, dl, err);
        if (rc == CE_OK)
            rc = ce_event_set_data(ev, out.data ? out.data : "", out.len);
        ce_buf_free(&out);
        if (rc == CE_EPARSE)
            return ce_err_set(err, CE_EINVAL, "data", err ? err->offset : -1,
                              "data is not valid base64 although "
                              "datacontentencoding is base64");
        if (rc != CE_OK)
            return oom(err);
    }
    ce_event_unset(ev, "datacontentencoding");
    return CE_OK;
}

/* Converts a 0.3 event to 1.0 in place; a 1.0 event is left unchanged.
 * Errors: CE_EFROZEN, CE_EINVAL (other specversion, bad schemaurl,
 * unsupported encoding). On error the event may be partly converted. */
int ce_event_upgrade_03(ce_event *ev, ce_err *err)
{
    const ce_slot *sv = &ev->core[CE_A_SPECVERSION];
    if (sv->v && same(sv->v, sv->len, "1.0", 3))
        return CE_OK;
    if (!sv->v || !same(sv->v, sv->len, "0.3", 3))
        return ce_err_set(err, CE_EINVAL, "specversion", -1,
                          "cannot upgrade specversion '%.16s': only 0.3 is "
                          "supported", sv->v ? sv->v : "");
    if (ce_event_frozen(ev))
        return frozen_err("specversion", err);
    size_t n;
    const char *schema = ce_event_get(ev, "schemaurl", &n, NULL);
    if (schema) {
        ce_err e2;
        if (ce_event_set(ev, "dataschema", schema, n, CE_TYPE_URI, &e2))
            return ce_err_set(err, CE_EINVAL, "schemaurl", -1,
                              "schemaurl cannot become dataschema: %.140s",
                              e2.msg);
        ce_event_unset(ev, "schemaurl");
    }
    int rc = upgrade_encoding(ev, err);
    if (rc != CE_OK)
        return rc;
    return ce__event_set_raw(ev, CE_A_SPECVERSION, NULL, 0, "1.0", 3,
                             CE_TYPE_STRING, err);
}
