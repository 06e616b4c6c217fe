/*
 * cli_format.c — output helpers of the `knit` CLI: the table of resource
 * kinds and their aliases, kubectl-style references and ages, text
 * tables, JSON path lookups, one-line event summaries for `knit tail`, and
 * the NDJSON line splitter. Pure functions, unit-tested in
 * tests/unit/0451-cli-format.c.
 */
#include "broker/cli.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* -------------------------------------------------------------- kinds */

#define EVENTING "eventing.knative.dev"
#define MESSAGING "messaging.knative.dev"
#define FLOWS "flows.knative.dev"
#define SOURCES "sources.knative.dev"
#define SERVING "serving.knative.dev"

/* Every kind of DESIGN.md §3. Add a row for a new kind. */
/* clang-format off */
static const kn_cli_kind kinds[] = {
    {"Broker", "brokers", EVENTING, "brk",
     {"URL"}, {"status.address.url"}},
    {"Trigger", "triggers", EVENTING, "trig",
     {"BROKER", "SUBSCRIBER"}, {"spec.broker", "status.subscriberUri"}},
    {"ConfigMap", "configmaps", "", "cm", {NULL}, {NULL}},
    {"Channel", "channels", MESSAGING, "ch",
     {"URL"}, {"status.address.url"}},
    {"InMemoryChannel", "inmemorychannels", MESSAGING, "imc",
     {"URL"}, {"status.address.url"}},
    {"Subscription", "subscriptions", MESSAGING, "sub",
     {"CHANNEL"}, {"spec.channel.name"}},
    {"Sequence", "sequences", FLOWS, "seq",
     {"URL"}, {"status.address.url"}},
    {"Parallel", "parallels", FLOWS, "",
     {"URL"}, {"status.address.url"}},
    {"PingSource", "pingsources", SOURCES, "ping",
     {"SCHEDULE", "SINK"}, {"spec.schedule", "status.sinkUri"}},
    {"ContainerSource", "containersources", SOURCES, "",
     {"SINK"}, {"status.sinkUri"}},
    {"SinkBinding", "sinkbindings", SOURCES, "",
     {"SINK"}, {"status.sinkUri"}},
    {"KafkaSource", "kafkasources", SOURCES, "",
     {"SINK"}, {"status.sinkUri"}},
    {"Service", "services", SERVING, "ksvc kservice svc",
     {"URL"}, {"status.url"}},
    {"Configuration", "configurations", SERVING, "config cfg",
     {"LATEST"}, {"status.latestCreatedRevisionName"}},
    {"Revision", "revisions", SERVING, "rev", {NULL}, {NULL}},
    {"Route", "routes", SERVING, "rt", {"URL"}, {"status.url"}},
};
/* clang-format on */
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static bool
alias_match(const char *aliases, const char *s, size_t n)
{
    const char *p = aliases;

    while (*p) {
        size_t l = strcspn(p, " ");
        if (l == n && strncasecmp(p, s, n) == 0)
            return true;
        p += l;
        while (*p == ' ')
            p++;
    }
    return false;
}

static const kn_cli_kind *
lookup_n(const char *s, size_t n)
{
    for (size_t i = 0; i < NKINDS; i++) {
        const kn_cli_kind *k = &kinds[i];
        if ((strlen(k->kind) == n && strncasecmp(k->kind, s, n) == 0) ||
            (strlen(k->plural) == n && strncasecmp(k->plural, s, n) == 0) ||
            alias_match(k->aliases, s, n))
            return k;
    }
    return NULL;
}

const kn_cli_kind *
kn_cli_kind_lookup(const char *s)
{
    const char *dot = strchr(s, '.');
    const kn_cli_kind *k;

    if (s[0] == '\0')
        return NULL;
    if (dot == NULL)
        return lookup_n(s, strlen(s));
    /* "brokers.eventing.knative.dev": the group must match. */
    k = lookup_n(s, (size_t)(dot - s));
    if (k != NULL && strcasecmp(dot + 1, k->group) == 0)
        return k;
    return NULL;
}

const kn_cli_kind *
kn_cli_kind_by_kind(const char *kind)
{
    for (size_t i = 0; i < NKINDS; i++)
        if (strcmp(kinds[i].kind, kind) == 0)
            return &kinds[i];
    return NULL;
}

void
kn_cli_kind_list(char *buf, size_t n)
{
    size_t off = 0;

    if (n == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < NKINDS && off < n; i++) {
        int w = snprintf(buf + off, n - off, "%s%s", i ? ", " : "",
                         kinds[i].plural);
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

void
kn_cli_resource_ref(const char *kind, const char *api_version, const char *name,
                    char *buf, size_t n)
{
    char lower[64];
    const char *group = "";
    size_t glen = 0, i;

    for (i = 0; kind[i] && i + 1 < sizeof(lower); i++)
        lower[i] = (char)tolower((unsigned char)kind[i]);
    lower[i] = '\0';
    if (api_version != NULL) {
        const char *slash = strchr(api_version, '/');
        if (slash != NULL) {
            group = api_version;
            glen = (size_t)(slash - api_version);
        }
    } else {
        const kn_cli_kind *k = kn_cli_kind_by_kind(kind);
        if (k != NULL) {
            group = k->group;
            glen = strlen(group);
        }
    }
    if (glen > 0)
        snprintf(buf, n, "%s.%.*s/%s", lower, (int)glen, group, name);
    else
        snprintf(buf, n, "%s/%s", lower, name);
}

/* --------------------------------------------------------------- JSON */

json_t *
kn_cli_json_path(const json_t *root, const char *path)
{
    const json_t *cur = root;
    const char *p = path;

    while (cur != NULL && *p) {
        size_t l = strcspn(p, ".");
        char key[128];

        if (!json_is_object(cur) || l >= sizeof(key))
            return NULL;
        memcpy(key, p, l);
        key[l] = '\0';
        cur = json_object_get(cur, key);
        p += l;
        if (*p == '.')
            p++;
    }
    return (json_t *)(uintptr_t)cur;
}

const char *
kn_cli_json_str(const json_t *root, const char *path, const char *dflt)
{
    const json_t *v = kn_cli_json_path(root, path);

    return json_is_string(v) ? json_string_value(v) : dflt;
}

json_t *
kn_cli_condition(const json_t *res, const char *type)
{
    json_t *conds = kn_cli_json_path(res, "status.conditions");
    size_t i;
    json_t *c;

    if (!json_is_array(conds))
        return NULL;
    json_array_foreach (conds, i, c) {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t != NULL && strcmp(t, type) == 0)
            return c;
    }
    return NULL;
}

/* ---------------------------------------------------------------- age */

void
kn_cli_format_age(int64_t secs, char *buf, size_t n)
{
    int64_t m, h, d, y;

    if (secs < 0)
        secs = 0;
    m = secs / 60;
    h = m / 60;
    d = h / 24;
    y = d / 365;
    if (secs < 120)
        snprintf(buf, n, "%llds", (long long)secs);
    else if (m < 10 && secs % 60 != 0)
        snprintf(buf, n, "%lldm%llds", (long long)m, (long long)(secs % 60));
    else if (m < 180)
        snprintf(buf, n, "%lldm", (long long)m);
    else if (h < 8 && m % 60 != 0)
        snprintf(buf, n, "%lldh%lldm", (long long)h, (long long)(m % 60));
    else if (h < 48)
        snprintf(buf, n, "%lldh", (long long)h);
    else if (h < 24 * 8 && h % 24 != 0)
        snprintf(buf, n, "%lldd%lldh", (long long)d, (long long)(h % 24));
    else if (d < 365 * 2)
        snprintf(buf, n, "%lldd", (long long)d);
    else if (y < 8 && d % 365 != 0)
        snprintf(buf, n, "%lldy%lldd", (long long)y, (long long)(d % 365));
    else
        snprintf(buf, n, "%lldy", (long long)y);
}

void
kn_cli_format_age_since(const char *rfc3339, int64_t now_sec, char *buf,
                        size_t n)
{
    ce_time t;

    if (rfc3339 == NULL) {
        snprintf(buf, n, "%s", "");
        return;
    }
    if (ce_time_parse(rfc3339, strlen(rfc3339), &t, NULL) != CE_OK) {
        snprintf(buf, n, "%s", "<unknown>");
        return;
    }
    kn_cli_format_age(now_sec - t.sec, buf, n);
}

/* -------------------------------------------------------------- table */

int
kn_cli_table_init(kn_cli_table *t, const char *const *headers, size_t ncols)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    return kn_cli_table_add(t, headers);
}

int
kn_cli_table_add(kn_cli_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        char **nc = realloc(t->cells, cap * t->ncols * sizeof(*nc));
        if (nc == NULL)
            return -1;
        t->cells = nc;
        t->cap = cap;
    }
    for (size_t i = 0; i < t->ncols; i++) {
        char *s = strdup(cells[i] ? cells[i] : "");
        if (s == NULL) {
            while (i-- > 0)
                free(t->cells[t->nrows * t->ncols + i]);
            return -1;
        }
        t->cells[t->nrows * t->ncols + i] = s;
    }
    t->nrows++;
    return 0;
}

/* Display width: UTF-8 code points. */
static size_t
u8_width(const char *s)
{
    size_t w = 0;

    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

int
kn_cli_table_render(const kn_cli_table *t, ce_buf *out)
{
    size_t *w = calloc(t->ncols ? t->ncols : 1, sizeof(*w));
    int rc = 0;

    if (w == NULL)
        return -1;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t l = u8_width(t->cells[r * t->ncols + c]);
            if (l > w[c])
                w[c] = l;
        }
    for (size_t r = 0; r < t->nrows && rc == 0; r++) {
        for (size_t c = 0; c < t->ncols && rc == 0; c++) {
            const char *s = t->cells[r * t->ncols + c];
            rc = ce_buf_puts(out, s);
            if (c + 1 < t->ncols)
                for (size_t k = u8_width(s); k < w[c] + 3 && rc == 0; k++)
                    rc = ce_buf_append(out, " ", 1);
        }
        /* A row of empty trailing cells leaves spaces: trim them. */
        while (out->len > 0 && out->data[out->len - 1] == ' ')
            out->data[--out->len] = '\0';
        if (rc == 0)
            rc = ce_buf_append(out, "\n", 1);
    }
    free(w);
    return rc ? -1 : 0;
}

void
kn_cli_table_free(kn_cli_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

/* ------------------------------------------------------- event lines */

/* Length of the valid UTF-8 sequence at p (1..4), 0 if invalid. */
static size_t
u8_seq(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned c = p[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xF0 && p[1] < 0x90) ||
        (c == 0xF4 && p[1] > 0x8F) || (c == 0xED && p[1] > 0x9F))
        return 0;
    return len;
}

bool
kn_cli_is_utf8_text(const void *data, size_t n)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < n;) {
        size_t l = p[i] == 0 ? 0 : u8_seq(p + i, n - i);
        if (l == 0)
            return false;
        i += l;
    }
    return true;
}

/* Appends text escaped on one line, at most max code points. */
static int
put_escaped(const char *s, size_t n, size_t max, ce_buf *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t cps = 0;
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0;) {
        size_t l = u8_seq(p + i, n - i);
        if (l == 0)
            l = 1;
        if (cps++ == max)
            return ce_buf_puts(out, "...");
        if (p[i] == '\n')
            rc = ce_buf_puts(out, "\\n");
        else if (p[i] == '\r')
            rc = ce_buf_puts(out, "\\r");
        else if (p[i] == '\t')
            rc = ce_buf_puts(out, "\\t");
        else if (p[i] < 0x20 || p[i] == 0x7F)
            rc = ce_buf_printf(out, "\\x%02x", p[i]);
        else
            rc = ce_buf_append(out, s + i, l);
        i += l;
    }
    return rc;
}

int
kn_cli_format_data_preview(const void *data, size_t n, const char *ctype,
                           size_t max, ce_buf *out)
{
    int rc;

    if (ctype == NULL || ce_media_is_json(ctype, strlen(ctype))) {
        json_t *j = json_loadb(data, n, JSON_DECODE_ANY, NULL);
        if (j != NULL) {
            char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY |
                                        JSON_PRESERVE_ORDER);
            json_decref(j);
            if (s == NULL)
                return -1;
            rc = put_escaped(s, strlen(s), max, out);
            free(s);
            return rc;
        }
    }
    if (kn_cli_is_utf8_text(data, n))
        return put_escaped(data, n, max, out);
    return ce_buf_printf(out, "<%zu bytes>", n);
}

int
kn_cli_format_event_line(const ce_event *ev, size_t max_data, ce_buf *out)
{
    const char *t = ce_event_get(ev, "time", NULL, NULL);
    const char *sub = ce_event_get(ev, "subject", NULL, NULL);
    int rc;

    if (t == NULL)
        t = ce_event_get(ev, "knativearrivaltime", NULL, NULL);
    rc = ce_buf_printf(out, "%s  type=%s  source=%s  id=%s", t ? t : "-",
                       ce_event_get(ev, "type", NULL, NULL),
                       ce_event_get(ev, "source", NULL, NULL),
                       ce_event_get(ev, "id", NULL, NULL));
    if (rc == 0 && sub != NULL)
        rc = ce_buf_printf(out, "  subject=%s", sub);
    if (rc == 0 && ce_event_has_data(ev)) {
        size_t n = 0;
        const void *d = ce_event_data(ev, &n);
        rc = ce_buf_puts(out, "  data=");
        if (rc == 0)
            rc = kn_cli_format_data_preview(
                d, n, ce_event_get(ev, "datacontenttype", NULL, NULL), max_data,
                out);
    }
    return rc ? -1 : 0;
}

/* -------------------------------------------------------------- lines */

int
kn_cli_lines_feed(kn_cli_lines *l, const char *p, size_t n,
                  int (*cb)(void *ctx, const char *line, size_t len), void *ctx)
{
    size_t start = 0;
    int rc = 0;

    if (n > 0 && ce_buf_append(&l->pending, p, n) != 0)
        return -1;
    for (size_t i = 0; i < l->pending.len && rc == 0; i++) {
        size_t len;

        if (l->pending.data[i] != '\n')
            continue;
        len = i - start;
        if (len > 0 && l->pending.data[start + len - 1] == '\r')
            len--;
        rc = cb(ctx, l->pending.data + start, len);
        start = i + 1;
    }
    if (start > 0) {
        memmove(l->pending.data, l->pending.data + start,
                l->pending.len - start);
        l->pending.len -= start;
        l->pending.data[l->pending.len] = '\0';
    }
    return rc;
}

void
kn_cli_lines_free(kn_cli_lines *l)
{
    ce_buf_free(&l->pending);
}
