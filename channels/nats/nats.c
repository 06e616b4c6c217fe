/*
 * The NATS JetStream channel ("nats" backend): settings, the connection
 * (infinite reconnect with backoff), the broker's stream
 * (KN_BROKER_<NS>__<NAME>, subject knit.<ns>.<name>.events; created, or
 * updated when it exists), a maintenance thread (stream re-checks after
 * reconnects, cursor set-up retries, pull-request watchdog, keep-alive of
 * held messages, completions of empty appends), stats, open and close.
 * Appends are in publish.c, cursors in cursor.c; the user-facing
 * description (settings, guarantees) is docs/channels-nats.md.
 *
 * Health: an append fails at once with KN_UNAVAILABLE while the connection
 * is down or the stream could not be checked; cnats reconnects by itself
 * and the maintenance thread re-checks the stream, after which appends
 * succeed again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channels/nats/nats_int.h"
#include "channels/settings.h"

#define DEFAULT_URL "nats://127.0.0.1:4222"

int64_t kn_nats_now_ms(void)
{
    return kn_now_mono_ms();
}

/* ------------------------------------------------------------- status */

int kn_nats_status(natsStatus s)
{
    switch (s) {
    case NATS_OK:
        return KN_OK;
    case NATS_TIMEOUT:
        return KN_TIMEOUT;
    case NATS_NO_MEMORY:
        return KN_NOMEM;
    case NATS_MAX_PAYLOAD:
        return KN_TOOBIG;
    case NATS_NOT_FOUND:
        return KN_NOTFOUND;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
        return KN_INVAL;
    case NATS_NO_RESPONDERS:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NOT_YET_CONNECTED:
    case NATS_NO_SERVER:
    case NATS_STALE_CONNECTION:
    case NATS_IO_ERROR:
    case NATS_INSUFFICIENT_BUFFER:
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
        return KN_UNAVAILABLE;
    default:
        return KN_IO;
    }
}

int kn_nats_js_status(natsStatus s, jsErrCode ec)
{
    if (s != NATS_ERR || ec == 0)
        return kn_nats_status(s);
    switch ((int)ec) {
    case JSStreamMessageExceedsMaximumErr:
        return KN_TOOBIG;
    case JSStreamStoreFailedErr:
    case JSInsufficientResourcesErr:
    case JSStorageResourcesExceededErr:
    case JSMemoryResourcesExceededErr:
        return KN_NOSPACE;
    case JSStreamNotFoundErr:
    case JSConsumerNotFoundErr:
        return KN_NOTFOUND;
    case JSNotEnabledErr:
    case JSNotEnabledForAccountErr:
    case JSClusterNotAvailErr:
    case JSStreamOfflineErr:
        return KN_UNAVAILABLE;
    default:
        return KN_IO;
    }
}

/* cnats keeps the text of the last error per thread. */
static const char *last_error(natsStatus s)
{
    const char *t = nats_GetLastError(NULL);
    return t && *t ? t : natsStatus_GetText(s);
}

/* -------------------------------------------------------------- names */

static bool subject_safe(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (*s <= ' ' || *s == '*' || *s == '>' || *s == '.' ||
            (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

int kn_nats_stream_name(const char *ns, const char *name, char **out)
{
    size_t n = strlen(ns) + strlen(name) + 16;
    char *p;

    *out = NULL;
    if (!subject_safe(ns) || !subject_safe(name))
        return KN_INVAL;
    if (!(p = malloc(n)))
        return KN_NOMEM;
    snprintf(p, n, "KN_BROKER_%s__%s", ns, name);
    for (char *q = p + 10; *q; q++) {
        if (*q == '-' || *q == '/' || *q == '\\')
            *q = '_';
        else if (*q >= 'a' && *q <= 'z')
            *q = (char)(*q - 'a' + 'A');
    }
    *out = p;
    return KN_OK;
}

/* Durable consumer names may not hold '.', '*', '>', white space or path
 * separators. The mapping keeps letters, digits and '-', writes '_' as
 * "__" and every other byte as "_XX" (hex), so distinct groups never
 * share a consumer; names longer than KN_NATS_NAME_MAX keep a prefix and
 * a hash of the whole group. */
int kn_nats_durable_name(const char *group, char **out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(group);
    char *p;
    size_t o = 0;

    *out = NULL;
    if (n == 0)
        return KN_INVAL;
    if (!(p = malloc(3 * n + 1)))
        return KN_NOMEM;
    for (const unsigned char *s = (const unsigned char *)group; *s; s++) {
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
            (*s >= '0' && *s <= '9') || *s == '-') {
            p[o++] = (char)*s;
        } else if (*s == '_') {
            p[o++] = '_';
            p[o++] = '_';
        } else {
            p[o++] = '_';
            p[o++] = hex[*s >> 4];
            p[o++] = hex[*s & 15];
        }
    }
    p[o] = '\0';
    if (o > KN_NATS_NAME_MAX) {
        uint64_t h = 1469598103934665603ull; /* FNV-1a */
        for (const unsigned char *s = (const unsigned char *)group; *s; s++)
            h = (h ^ *s) * 1099511628211ull;
        snprintf(p + KN_NATS_NAME_MAX - 17, 18, "_%016" PRIx64, h);
    }
    *out = p;
    return KN_OK;
}

/* ----------------------------------------------------------- settings */

static const char *const g_known[] = {
    "url", "credentials", "user", "password", "token", "storage",
    "replicas", "max-age", "max-bytes", "duplicate-window", "ack-wait",
    "max-ack-pending", "publish-timeout", "fetch-batch", "fetch-expires",
    "reconnect-wait-max", "api-timeout",
};

/* "setting KEY: 'VALUE' PROBLEM", with the field named. */
static int bad(kn_err *err, const char *key, const char *v,
               const char *problem)
{
    return kn_setting_error(err, key, "'%s' %s", v, problem);
}

#define SIZE_TEXT "is not a size (bytes, optionally with k/M/G/T or " \
                  "Ki/Mi/Gi/Ti)"
#define INT_TEXT "is not a non-negative integer"

/* An integer in [min, max] with an optional size suffix (k, M, G, T or
 * Ki, Mi, Gi, Ti) when `sizes`. */
static int parse_int(const char *key, const char *s, bool sizes,
                     int64_t min, int64_t max, int64_t *out, kn_err *err)
{
    uint64_t v;
    int rc = kn_setting_size(s, sizes, INT64_MAX, &v);
    if (rc == KN_INVAL)
        return bad(err, key, s, sizes ? SIZE_TEXT : INT_TEXT);
    if (rc != KN_OK || (int64_t)v < min || (int64_t)v > max)
        return kn_setting_error(err, key, "'%s' is outside %" PRId64
                                "..%" PRId64, s, min, max);
    *out = (int64_t)v;
    return KN_OK;
}

/* Milliseconds as an integer, or an ISO-8601 duration ("PT30S"). */
static int parse_ms(const char *key, const char *s, int64_t min,
                    int64_t *out, kn_err *err)
{
    int64_t v;
    if (kn_setting_ms(s, &v) != KN_OK)
        return bad(err, key, s, "is not a duration (milliseconds or "
                   "ISO-8601 such as PT30S)");
    if (v < min || v > INT64_MAX / 1000000)
        return kn_setting_error(err, key, "'%s' must be at least %" PRId64
                                " ms", s, min);
    *out = v;
    return KN_OK;
}

static int split_urls(kn_nats_settings *o, const char *s, kn_err *err)
{
    const char *p = s;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *b = p, *e = p + n;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > b) {
            char **u = realloc(o->urls, (size_t)(o->nurls + 1) *
                               sizeof *u);
            if (!u)
                return kn_err_set(err, KN_NOMEM, "out of memory");
            o->urls = u;
            if (!(u[o->nurls] = strndup(b, (size_t)(e - b))))
                return kn_err_set(err, KN_NOMEM, "out of memory");
            o->nurls++;
        }
        p += n + (p[n] == ',');
    }
    if (o->nurls == 0)
        return bad(err, "url", s, "holds no URL");
    return KN_OK;
}

static void settings_free(kn_nats_settings *o)
{
    for (int i = 0; i < o->nurls; i++)
        free(o->urls[i]);
    free(o->urls);
    free(o->credentials);
    free(o->user);
    free(o->password);
    free(o->token);
    memset(o, 0, sizeof *o);
}

static int dup_setting(const json_t *set, const char *key, char **out,
                       kn_err *err)
{
    char buf[32];
    const char *v = kn_setting_str(set, key, buf, sizeof buf);
    if (!v)
        return KN_OK;
    if (!*v)
        return bad(err, key, v, "must be a non-empty string");
    if (!(*out = strdup(v)))
        return kn_err_set(err, KN_NOMEM, "out of memory");
    return KN_OK;
}

typedef struct ms_setting {
    const char *key;
    int64_t min;
    int64_t *dst;
} ms_setting;

static int parse_settings(const json_t *set, kn_nats_settings *o,
                          kn_err *err)
{
    char buf[32];
    const char *v;
    int64_t age_ms = 0, dup_ms = 120000, ack_ms = 30000;
    int rc;

    memset(o, 0, sizeof *o);
    o->storage = js_FileStorage;
    o->replicas = 1;
    o->max_bytes = -1;
    o->max_ack_pending = 1000;
    o->publish_timeout_ms = 5000;
    o->fetch_batch = 256;
    o->fetch_expires_ms = 5000;
    o->reconnect_wait_max_ms = 2000;
    o->api_timeout_ms = 5000;
    if (set && !json_is_object(set))
        return kn_err_set(err, KN_INVAL, "channel settings: not an object");
    v = kn_setting_str(set, "url", buf, sizeof buf);
    if ((rc = split_urls(o, v ? v : DEFAULT_URL, err)) != KN_OK)
        return rc;
    if ((rc = dup_setting(set, "credentials", &o->credentials, err)) ||
        (rc = dup_setting(set, "user", &o->user, err)) ||
        (rc = dup_setting(set, "password", &o->password, err)) ||
        (rc = dup_setting(set, "token", &o->token, err)))
        return rc;
    if (o->password && !o->user)
        return bad(err, "password", "***", "needs the setting user");
    if ((v = kn_setting_str(set, "storage", buf, sizeof buf))) {
        if (strcmp(v, "file") == 0)
            o->storage = js_FileStorage;
        else if (strcmp(v, "memory") == 0)
            o->storage = js_MemoryStorage;
        else
            return bad(err, "storage", v, "is not one of file, memory");
    }
    if ((v = kn_setting_str(set, "replicas", buf, sizeof buf)) &&
        (rc = parse_int("replicas", v, false, 1, 5, &o->replicas, err)))
        return rc;
    if ((v = kn_setting_str(set, "max-bytes", buf, sizeof buf))) {
        if ((rc = parse_int("max-bytes", v, true, 0, INT64_MAX,
                            &o->max_bytes, err)))
            return rc;
        if (o->max_bytes == 0)
            o->max_bytes = -1;
    }
    if ((v = kn_setting_str(set, "max-ack-pending", buf, sizeof buf))) {
        if ((rc = parse_int("max-ack-pending", v, false, 1, 1000000,
                            &o->max_ack_pending, err)))
            return rc;
        o->max_ack_pending_set = true;
    }
    o->ack_wait_set = kn_setting_str(set, "ack-wait", buf, sizeof buf) !=
                      NULL;
    if ((v = kn_setting_str(set, "fetch-batch", buf, sizeof buf)) &&
        (rc = parse_int("fetch-batch", v, false, 1, 10000,
                        &o->fetch_batch, err)))
        return rc;
    const ms_setting ms[] = {
        {"max-age", 0, &age_ms},
        {"duplicate-window", 0, &dup_ms},
        {"ack-wait", 1000, &ack_ms},
        {"publish-timeout", 10, &o->publish_timeout_ms},
        {"fetch-expires", 100, &o->fetch_expires_ms},
        {"reconnect-wait-max", 10, &o->reconnect_wait_max_ms},
        {"api-timeout", 10, &o->api_timeout_ms},
    };
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++)
        if ((v = kn_setting_str(set, ms[i].key, buf, sizeof buf)) &&
            (rc = parse_ms(ms[i].key, v, ms[i].min, ms[i].dst, err)))
            return rc;
    if (age_ms > 0 && dup_ms > age_ms)
        return bad(err, "duplicate-window",
                   kn_setting_str(set, "duplicate-window", buf, sizeof buf),
                   "is longer than max-age");
    o->max_age_ns = age_ms * 1000000;
    o->dup_window_ns = dup_ms * 1000000;
    o->ack_wait_ns = ack_ms * 1000000;
    if (set)
        kn_settings_warn_unknown(set, g_known,
                                 sizeof g_known / sizeof *g_known,
                                 KN_NATS_COMP, "nats");
    return KN_OK;
}

/* ------------------------------------------------------------- stream */

static void stream_config(kn_nats *ch, jsStreamConfig *c,
                          const char **subjects)
{
    jsStreamConfig_Init(c);
    subjects[0] = ch->subject;
    c->Name = ch->stream;
    c->Subjects = subjects;
    c->SubjectsLen = 1;
    c->Retention = js_LimitsPolicy;
    c->Discard = js_DiscardOld;
    c->Storage = ch->set.storage;
    c->Replicas = ch->set.replicas;
    c->MaxAge = ch->set.max_age_ns;
    c->MaxBytes = ch->set.max_bytes;
    c->Duplicates = ch->set.dup_window_ns;
}

static bool has_subject(const jsStreamConfig *c, const char *subj)
{
    for (int i = 0; i < c->SubjectsLen; i++)
        if (strcmp(c->Subjects[i], subj) == 0)
            return true;
    return false;
}

static void note_state(kn_nats *ch, const jsStreamInfo *si)
{
    pthread_mutex_lock(&ch->mu);
    ch->st.head_offset = si->State.LastSeq + 1;
    ch->st.first_offset = si->State.Msgs ? si->State.FirstSeq
                                         : ch->st.head_offset;
    if (ch->head_seen > ch->st.head_offset)
        ch->st.head_offset = ch->head_seen;
    ch->st.stored_bytes = si->State.Bytes;
    pthread_mutex_unlock(&ch->mu);
}

int kn_nats_ensure_stream(kn_nats *ch, bool *created, kn_err *err)
{
    jsOptions jo;
    jsStreamConfig cfg;
    const char *subjects[1];
    jsStreamInfo *si = NULL;
    jsErrCode ec = 0;
    natsStatus s;
    int rc = KN_OK;

    *created = false;
    jsOptions_Init(&jo);
    jo.Wait = ch->set.api_timeout_ms;
    stream_config(ch, &cfg, subjects);
    s = js_GetStreamInfo(&si, ch->js, ch->stream, &jo, &ec);
    if (s == NATS_NOT_FOUND) {
        s = js_AddStream(&si, ch->js, &cfg, &jo, &ec);
        if (s == NATS_OK) {
            *created = true;
            KN_INFO(KN_NATS_COMP, "broker %s: created stream %s (%s "
                    "storage, %" PRId64 " replica(s))", ch->label,
                    ch->stream, ch->set.storage == js_FileStorage
                    ? "file" : "memory", ch->set.replicas);
        } else if (ec == JSStreamNameExistErr) {
            s = js_GetStreamInfo(&si, ch->js, ch->stream, &jo, &ec);
        }
    }
    if (s != NATS_OK) {
        rc = kn_nats_js_status(s, ec);
        if (rc == KN_IO || rc == KN_NOTFOUND)
            rc = KN_INVAL; /* the server refused our configuration */
        kn_err_set(err, rc, "stream %s: %s", ch->stream, last_error(s));
        goto out;
    }
    if (*created)
        goto done;
    const jsStreamConfig *cur = si->Config;
    if (cur->Storage != cfg.Storage) {
        rc = kn_err_set(err, KN_INVAL, "setting storage: stream %s exists "
                        "with %s storage and NATS cannot change it (delete "
                        "the stream or use that storage)", ch->stream,
                        cur->Storage == js_FileStorage ? "file" : "memory");
        if (err)
            snprintf(err->field, sizeof err->field, "storage");
        goto out;
    }
    if (has_subject(cur, ch->subject) && cur->MaxAge == cfg.MaxAge &&
        cur->MaxBytes == cfg.MaxBytes && cur->Replicas == cfg.Replicas &&
        cur->Duplicates == cfg.Duplicates)
        goto done;
    jsStreamInfo_Destroy(si);
    si = NULL;
    s = js_UpdateStream(&si, ch->js, &cfg, &jo, &ec);
    if (s != NATS_OK) {
        rc = kn_nats_js_status(s, ec);
        if (rc == KN_IO || rc == KN_NOTFOUND)
            rc = KN_INVAL;
        kn_err_set(err, rc, "stream %s: update refused: %s", ch->stream,
                   last_error(s));
        goto out;
    }
    KN_INFO(KN_NATS_COMP, "broker %s: updated stream %s to the settings",
            ch->label, ch->stream);
done:
    note_state(ch, si);
out:
    jsStreamInfo_Destroy(si);
    return rc;
}

/* -------------------------------------------------- connection events */

void kn_nats_wake(kn_nats *ch, bool ensure)
{
    pthread_mutex_lock(&ch->mu);
    if (ensure) {
        ch->need_ensure = true;
        ch->ensure_at_ms = 0;
        ch->ensure_backoff_ms = 0;
    }
    ch->kick = true;
    pthread_cond_signal(&ch->cv);
    pthread_mutex_unlock(&ch->mu);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    kn_nats *ch = closure;
    (void)nc;
    pthread_mutex_lock(&ch->mu);
    bool stopping = ch->stopping;
    pthread_mutex_unlock(&ch->mu);
    if (atomic_exchange(&ch->connected, false) && !stopping)
        KN_WARN(KN_NATS_COMP, "broker %s: connection to NATS lost; appends "
                "fail with 'unavailable' until it is back", ch->label);
    /* PubAcks of messages in flight will not arrive: fail them now. */
    kn_nats_fail_pending(ch, KN_UNAVAILABLE);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    kn_nats *ch = closure;
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    KN_INFO(KN_NATS_COMP, "broker %s: connected to NATS at %s", ch->label,
            url);
    atomic_store(&ch->connected, true);
    pthread_mutex_lock(&ch->mu);
    ch->reconnects++;
    pthread_mutex_unlock(&ch->mu);
    kn_nats_wake(ch, true);
}

static void on_closed(natsConnection *nc, void *closure)
{
    kn_nats *ch = closure;
    (void)nc;
    pthread_mutex_lock(&ch->mu);
    ch->closed = true;
    pthread_cond_broadcast(&ch->cv);
    pthread_mutex_unlock(&ch->mu);
}

static void on_error(natsConnection *nc, natsSubscription *sub,
                     natsStatus err, void *closure)
{
    kn_nats *ch = closure;
    (void)nc;
    (void)sub;
    KN_WARN(KN_NATS_COMP, "broker %s: NATS reports: %s", ch->label,
            natsStatus_GetText(err));
}

/* Backoff between reconnect rounds: 25 ms doubling up to the maximum,
 * with +-25 % jitter. */
static int64_t reconnect_delay(natsConnection *nc, int attempts,
                               void *closure)
{
    kn_nats *ch = closure;
    int64_t d = 25;
    (void)nc;
    for (int i = 1; i < attempts && d < ch->set.reconnect_wait_max_ms; i++)
        d *= 2;
    if (d > ch->set.reconnect_wait_max_ms)
        d = ch->set.reconnect_wait_max_ms;
    d += (d / 2) * (kn_now_mono_ns() % 1000) / 1000 - d / 4;
    return d > 0 ? d : 1;
}

static int make_options(kn_nats *ch, kn_err *err)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    char name[300];

    const char **urls = calloc((size_t)ch->set.nurls, sizeof *urls);

    snprintf(name, sizeof name, "knit broker %s", ch->label);
    if (!urls) {
        natsOptions_Destroy(o);
        return kn_err_set(err, KN_NOMEM, "out of memory");
    }
    for (int i = 0; i < ch->set.nurls; i++)
        urls[i] = ch->set.urls[i];
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, urls, ch->set.nurls);
    free(urls);
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return kn_err_set_at(err, KN_INVAL, NULL, "url", "setting url: %s",
                             last_error(s));
    }
    if (s == NATS_OK)
        s = natsOptions_SetName(o, name);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetCustomReconnectDelay(o, reconnect_delay, ch);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, on_reconnected,
                                                ch);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, ch);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_reconnected, ch);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(o, on_closed, ch);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_error, ch);
    if (s == NATS_OK)
        s = natsOptions_UseGlobalMessageDelivery(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, ch->set.api_timeout_ms);
    if (s == NATS_OK && ch->set.user)
        s = natsOptions_SetUserInfo(o, ch->set.user, ch->set.password);
    if (s == NATS_OK && ch->set.token)
        s = natsOptions_SetToken(o, ch->set.token);
    if (s == NATS_OK && ch->set.credentials) {
        s = natsOptions_SetUserCredentialsFromFiles(o,
                                                    ch->set.credentials,
                                                    NULL);
        if (s != NATS_OK) {
            natsOptions_Destroy(o);
            return kn_err_set_at(err, KN_INVAL, NULL, "credentials",
                                 "setting credentials: %s",
                                 last_error(s));
        }
    }
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return kn_err_set(err, kn_nats_status(s), "NATS options: %s",
                          last_error(s));
    }
    ch->opts = o;
    return KN_OK;
}

/* -------------------------------------------------------- maintenance */

static void ensure_step(kn_nats *ch, int64_t now, bool *created)
{
    kn_err err = {0};
    int rc = kn_nats_ensure_stream(ch, created, &err);
    pthread_mutex_lock(&ch->mu);
    if (rc == KN_OK) {
        ch->need_ensure = false;
        ch->ensure_backoff_ms = 0;
        ch->last_error[0] = '\0';
    } else {
        int64_t b = ch->ensure_backoff_ms ? ch->ensure_backoff_ms * 2 : 100;
        ch->ensure_backoff_ms = b > 5000 ? 5000 : b;
        ch->ensure_at_ms = now + ch->ensure_backoff_ms;
        snprintf(ch->last_error, sizeof ch->last_error, "%.200s", err.msg);
    }
    pthread_mutex_unlock(&ch->mu);
    if (rc == KN_OK && !atomic_exchange(&ch->stream_ok, true))
        KN_INFO(KN_NATS_COMP, "broker %s: stream %s is available",
                ch->label, ch->stream);
    if (rc != KN_OK && atomic_exchange(&ch->stream_ok, false))
        KN_WARN(KN_NATS_COMP, "broker %s: %s", ch->label, err.msg);
}

static void cond_wait_until(kn_nats *ch, int64_t at_ms)
{
    struct timespec ts;
    int64_t d = at_ms - kn_nats_now_ms();
    if (d <= 0)
        return;
    kn_deadline_ms(&ts, CLOCK_MONOTONIC, d);
    pthread_cond_timedwait(&ch->cv, &ch->mu, &ts);
}

static void *maint_main(void *arg)
{
    kn_nats *ch = arg;
    unsigned seen_reconnects = 0;
    int64_t next = 0;

    pthread_mutex_lock(&ch->mu);
    for (;;) {
        int64_t now = kn_nats_now_ms();
        bool can_ensure = ch->need_ensure && atomic_load(&ch->connected);
        bool work = ch->done_head || ch->stopping || ch->kick ||
                    (can_ensure && now >= ch->ensure_at_ms) ||
                    ch->reconnects != seen_reconnects || now >= next;
        if (!work) {
            int64_t at = next;
            if (can_ensure && ch->ensure_at_ms < at)
                at = ch->ensure_at_ms;
            ch->maint_wake_at = at; /* appends wake it for earlier */
            cond_wait_until(ch, at);
            continue;
        }
        ch->maint_wake_at = INT64_MAX;
        if (ch->stopping && !ch->done_head)
            break;
        bool ensure = can_ensure && now >= ch->ensure_at_ms;
        bool reconnected = ch->reconnects != seen_reconnects;
        ch->kick = false;
        seen_reconnects = ch->reconnects;
        pthread_mutex_unlock(&ch->mu);

        kn_nats_run_done(ch);
        bool created = false;
        if (ensure)
            ensure_step(ch, now, &created);
        next = now + 5000;
        kn_nats_flush_grave(ch);
        int64_t due = kn_nats_expire_pending(ch, kn_nats_now_ms());
        if (due < next)
            next = due;
        pthread_mutex_lock(&ch->cur_mu);
        for (kn_ncursor *c = ch->cursors; c; c = c->next) {
            int64_t t = kn_nats_cursor_maint(c, kn_nats_now_ms(),
                                             reconnected, created);
            if (t < next)
                next = t;
        }
        pthread_mutex_unlock(&ch->cur_mu);
        pthread_mutex_lock(&ch->mu);
        if (ch->stopping && !ch->done_head)
            break;
    }
    pthread_mutex_unlock(&ch->mu);
    return NULL;
}

/* -------------------------------------------------------- open, close */

static void nats_stats(kn_channel *base, kn_channel_stats *out)
{
    kn_nats *ch = (kn_nats *)base;
    if (atomic_load(&ch->connected) && atomic_load(&ch->stream_ok)) {
        jsOptions jo;
        jsStreamInfo *si = NULL;
        jsErrCode ec = 0;
        jsOptions_Init(&jo);
        jo.Wait = ch->set.api_timeout_ms < 1000 ? ch->set.api_timeout_ms
                                                : 1000;
        if (js_GetStreamInfo(&si, ch->js, ch->stream, &jo, &ec) == NATS_OK)
            note_state(ch, si);
        jsStreamInfo_Destroy(si);
    }
    pthread_mutex_lock(&ch->mu);
    *out = ch->st;
    if (ch->head_seen > out->head_offset)
        out->head_offset = ch->head_seen;
    if (out->head_offset == 0)
        out->head_offset = 1;
    out->segments = 0;
    out->skipped_records = ch->skipped;
    out->healthy = atomic_load(&ch->connected) &&
                   atomic_load(&ch->stream_ok);
    pthread_mutex_unlock(&ch->mu);
}

/* See channel.h. */
const char *kn_channel_nats_reason(kn_channel *base, char *buf, size_t n)
{
    kn_nats *ch = (kn_nats *)base;
    buf[0] = '\0';
    if (!atomic_load(&ch->connected)) {
        snprintf(buf, n, "no connection to NATS at %s%s (reconnecting)",
                 ch->set.urls[0], ch->set.nurls > 1 ? " and others" : "");
    } else if (!atomic_load(&ch->stream_ok)) {
        pthread_mutex_lock(&ch->mu);
        snprintf(buf, n, "stream %s is not available: %s", ch->stream,
                 ch->last_error[0] ? ch->last_error : "not checked yet");
        pthread_mutex_unlock(&ch->mu);
    }
    return buf;
}

/* Closes the connection and waits until cnats ran its last callback
 * (closed comes after disconnected), so none touches ch afterwards. */
static void close_connection(kn_nats *ch)
{
    if (!ch->nc)
        return;
    pthread_mutex_lock(&ch->mu);
    ch->stopping = true;
    pthread_mutex_unlock(&ch->mu);
    natsConnection_Close(ch->nc);
    pthread_mutex_lock(&ch->mu);
    int64_t end = kn_nats_now_ms() + 5000;
    while (!ch->closed && kn_nats_now_ms() < end)
        cond_wait_until(ch, end);
    bool closed = ch->closed;
    pthread_mutex_unlock(&ch->mu);
    if (!closed)
        KN_ERROR(KN_NATS_COMP, "broker %s: NATS connection did not report "
                 "its close", ch->label);
    natsConnection_Destroy(ch->nc);
    ch->nc = NULL;
}

static void nats_free(kn_nats *ch)
{
    kn_nats_acks_stop(ch);
    kn_nats_flush_grave(ch);
    close_connection(ch);
    jsCtx_Destroy(ch->js);
    natsOptions_Destroy(ch->opts);
    kn_nats_pring_free(&ch->pr);
    free(ch->ack_prefix);
    settings_free(&ch->set);
    free(ch->label);
    free(ch->stream);
    free(ch->subject);
    pthread_mutex_destroy(&ch->mu);
    pthread_mutex_destroy(&ch->cur_mu);
    pthread_cond_destroy(&ch->cv);
    free(ch);
}

static int init_names(kn_nats *ch, const kn_channel_config *cfg,
                      kn_err *err)
{
    const char *ns = cfg->ns, *name = cfg->name;
    size_t n;

    if (!ns || !name)
        return kn_err_set(err, KN_INVAL, "nats channel: the broker "
                          "namespace and name are required");
    switch (kn_nats_stream_name(ns, name, &ch->stream)) {
    case KN_OK:
        break;
    case KN_NOMEM:
        return kn_err_set(err, KN_NOMEM, "out of memory");
    default:
        return kn_err_set(err, KN_INVAL, "nats channel: broker '%s/%s' "
                          "has characters a NATS subject cannot carry "
                          "('.', '*', '>', white space, control)", ns,
                          name);
    }
    n = strlen(ns) + strlen(name) + 16;
    if (!(ch->subject = malloc(n)) || !(ch->label = malloc(n)))
        return kn_err_set(err, KN_NOMEM, "out of memory");
    snprintf(ch->subject, n, "knit.%s.%s.events", ns, name);
    snprintf(ch->label, n, "%s/%s", ns, name);
    return KN_OK;
}

static int connect_js(kn_nats *ch, kn_err *err)
{
    jsOptions jo;
    natsStatus s = natsConnection_Connect(&ch->nc, ch->opts);

    if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED)
        return kn_err_set(err, kn_nats_status(s) == KN_UNAVAILABLE
                          ? KN_UNAVAILABLE : KN_INVAL,
                          "nats channel: cannot connect to %s: %s",
                          ch->set.urls[0], last_error(s));
    atomic_store(&ch->connected, s == NATS_OK);
    jsOptions_Init(&jo);
    jo.Wait = ch->set.api_timeout_ms;
    s = natsConnection_JetStream(&ch->js, ch->nc, &jo);
    if (s != NATS_OK)
        return kn_err_set(err, kn_nats_status(s), "nats channel: "
                          "JetStream context: %s", last_error(s));
    return kn_nats_acks_start(ch, err);
}

static int nats_open(const kn_channel_config *cfg, kn_channel **out,
                     kn_err *err)
{
    pthread_condattr_t ca;
    kn_nats *ch = calloc(1, sizeof *ch);
    int rc;

    *out = NULL;
    if (!ch)
        return kn_err_set(err, KN_NOMEM, "out of memory");
    ch->base.ops = &kn_channel_nats_ops;
    ch->done_tail = &ch->done_head;
    ch->maint_wake_at = INT64_MAX;
    pthread_mutex_init(&ch->mu, NULL);
    pthread_mutex_init(&ch->cur_mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ch->cv, &ca);
    pthread_condattr_destroy(&ca);
    if ((rc = parse_settings(cfg->settings, &ch->set, err)) != KN_OK ||
        (rc = init_names(ch, cfg, err)) != KN_OK ||
        (rc = make_options(ch, err)) != KN_OK ||
        (rc = connect_js(ch, err)) != KN_OK)
        goto fail;
    ch->need_ensure = true;
    if (atomic_load(&ch->connected)) {
        bool created;
        kn_err e2 = {0};
        rc = kn_nats_ensure_stream(ch, &created, &e2);
        if (rc == KN_OK) {
            ch->need_ensure = false;
            atomic_store(&ch->stream_ok, true);
        } else if (rc != KN_UNAVAILABLE && rc != KN_TIMEOUT) {
            if (err)
                *err = e2;
            goto fail;
        } else {
            KN_WARN(KN_NATS_COMP, "broker %s: %s (will retry)", ch->label,
                    e2.msg);
        }
    } else {
        KN_WARN(KN_NATS_COMP, "broker %s: NATS at %s is not reachable yet; "
                "retrying in the background", ch->label, ch->set.urls[0]);
    }
    rc = pthread_create(&ch->maint, NULL, maint_main, ch);
    if (rc != 0) {
        rc = kn_err_set(err, KN_NOMEM, "nats channel: cannot start its "
                        "thread: %s", strerror(rc));
        goto fail;
    }
    ch->maint_started = true;
    *out = &ch->base;
    return KN_OK;
fail:
    nats_free(ch);
    return rc;
}

static void nats_close(kn_channel *base)
{
    kn_nats *ch = (kn_nats *)base;

    if (!ch)
        return;
    pthread_mutex_lock(&ch->cur_mu);
    bool open_cursors = ch->cursors != NULL;
    pthread_mutex_unlock(&ch->cur_mu);
    if (open_cursors)
        KN_ERROR(KN_NATS_COMP, "broker %s: channel closed with cursors "
                 "still open", ch->label);
    /* Let appends in flight get their PubAcks, then fail the rest; no
     * PubAck callback runs after kn_nats_acks_stop. */
    int64_t end = kn_nats_now_ms() + ch->set.publish_timeout_ms;
    while (atomic_load(&ch->connected) && kn_nats_pending(ch) > 0 &&
           kn_nats_now_ms() < end)
        nanosleep(&(struct timespec){0, 2000000L}, NULL);
    kn_nats_fail_pending(ch, KN_CLOSED);
    kn_nats_acks_stop(ch);
    kn_nats_flush_grave(ch);
    pthread_mutex_lock(&ch->mu);
    ch->stopping = true;
    pthread_cond_signal(&ch->cv);
    pthread_mutex_unlock(&ch->mu);
    if (ch->maint_started)
        pthread_join(ch->maint, NULL);
    kn_nats_run_done(ch);
    if (ch->nc)
        natsConnection_FlushTimeout(ch->nc, 1000);
    nats_free(ch);
}

const kn_channel_ops kn_channel_nats_ops = {
    .name = "nats",
    .version = 1,
    .open = nats_open,
    .append = kn_nats_append,
    .cursor_hints = true,
    .commit_often = true,
    .cursor_open = kn_nats_cursor_open,
    .cursor_next = kn_nats_cursor_next,
    .cursor_fd = kn_nats_cursor_fd,
    .cursor_drain_notify = kn_nats_cursor_drain,
    .cursor_commit = kn_nats_cursor_commit,
    .cursor_seek = kn_nats_cursor_seek,
    .cursor_close = kn_nats_cursor_close,
    .cursor_delete = kn_nats_cursor_delete,
    .stats = nats_stats,
    .close = nats_close,
};
