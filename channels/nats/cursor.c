/*
 * Cursors of the NATS channel. A cursor group is one durable pull
 * consumer on the broker's stream (explicit ack, MaxDeliver unlimited, no
 * JetStream backoff: retries are knit's own). AckWait and MaxAckPending
 * come from the opener's hints (kn_cursor_opts: the trigger's delivery
 * timeout and read-ahead window), or from "ack-wait" / "max-ack-pending"
 * when those are set (see kn_nats_consumer_limits); an existing consumer
 * whose limits differ is updated when the cursor opens. Every knit
 * process that opens the group pulls from the same consumer, so JetStream
 * splits the messages between them.
 *
 * Reading: each cursor subscribes to its own inbox and keeps one pull
 * request (batch "fetch-batch", expiry "fetch-expires") open at the
 * server; JetStream sends each message as soon as it is stored, the
 * cnats delivery thread queues it and signals the cursor's eventfd, and
 * cursor_next decodes from the queue without waiting. A new request goes
 * out when the previous one is filled or expires and the queue has room.
 * Status messages (404/408/409) end a request; "Consumer Deleted" makes
 * the maintenance thread check the consumer (another process may be
 * seeking) and re-create it from the last sequence seen if it stays gone.
 *
 * Offsets are stream sequences (partition 0). A cursor sees only its
 * share of the sequences when processes share a group, so offsets have
 * gaps. cursor_commit(next) acks every handed-out message below `next`;
 * handed-out but uncommitted messages get a keep-alive (+WPI) every
 * AckWait/3 so JetStream does not redeliver them while knit still works
 * on them (its own retries may take long), and are NAK'd on close so
 * another process (or a reopened cursor) gets them at once.
 *
 * Records that are not CloudEvents are counted, logged, acked and
 * skipped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "channels/nats/nats_int.h"

#define CHUNK 64              /* messages popped per lock hold */
#define MAX_HDRS 64           /* headers decoded without allocation */
#define SKIP_LOG_FIRST 5

/* ------------------------------------------------------ ack subjects */

/* Parses a JetStream ack subject: "$JS.ACK.<stream>.<consumer>.<dlv>.
 * <sseq>.<cseq>.<ts>.<pending>" (v1) or with domain and account hash
 * after "ACK" (v2, 11+ tokens). */
static bool parse_ack(const char *s, uint64_t *seq, int64_t *ts,
                      uint64_t *delivered)
{
    const char *tok[16];
    size_t ntok = 0;
    if (!s || strncmp(s, "$JS.ACK.", 8) != 0)
        return false;
    for (const char *p = s; ntok < 16;) {
        tok[ntok++] = p;
        if (!(p = strchr(p, '.')))
            break;
        p++;
    }
    size_t base = ntok == 9 ? 2 : ntok >= 11 ? 4 : 0;
    if (!base)
        return false;
    char *end;
    errno = 0;
    *delivered = strtoull(tok[base + 2], &end, 10);
    if (*end != '.')
        return false;
    *seq = strtoull(tok[base + 3], &end, 10);
    if (*end != '.' || *seq == 0)
        return false;
    *ts = strtoll(tok[base + 5], &end, 10);
    return *end == '.' && !errno;
}

/* Under c->mu or after the cursor left every list. */
static void send_ack(kn_ncursor *c, const char *reply, const char *what)
{
    if (reply)
        natsConnection_Publish(c->ch->nc, reply, what, (int)strlen(what));
}

/* ------------------------------------------------------- pull requests */

static void wake_maint(kn_ncursor *c)
{
    kn_nats_wake(c->ch, false);
}

/* Under c->mu: opens a pull request when none is open and the queue has
 * room for at least half a batch. */
static void maybe_request(kn_ncursor *c)
{
    kn_nats *ch = c->ch;
    int64_t now = kn_nats_now_ms(), batch = ch->set.fetch_batch;
    int64_t room = 2 * batch - (int64_t)c->qlen;
    char reply[160], body[96];

    if (!c->ready || c->req_open || c->closing ||
        !atomic_load(&ch->connected) || now < c->retry_at_ms ||
        room < (batch + 1) / 2)
        return;
    if (room > batch)
        room = batch;
    snprintf(reply, sizeof reply, "%s.%" PRIu64, c->inbox, ++c->req_id);
    int n = snprintf(body, sizeof body, "{\"batch\":%" PRId64 ",\"expires\":"
                     "%" PRId64 "}", room,
                     ch->set.fetch_expires_ms * 1000000);
    natsStatus s = natsConnection_PublishRequest(ch->nc, c->next_subj,
                                                 reply, body, n);
    if (s != NATS_OK) {
        c->retry_at_ms = now + 250;
        wake_maint(c);
        return;
    }
    KN_DEBUG(KN_NATS_COMP, "cursor %s: pull request %" PRIu64 " for %"
             PRId64, c->group, c->req_id, room);
    c->req_open = true;
    c->req_left = room;
    c->req_deadline_ms = now + ch->set.fetch_expires_ms + 2000;
}

/* Under c->mu: a status message for our inbox. */
static void on_status(kn_ncursor *c, natsMsg *m, const char *status)
{
    const char *subj = natsMsg_GetSubject(m), *desc = NULL, *dot;
    uint64_t id = (dot = strrchr(subj, '.')) ? strtoull(dot + 1, NULL, 10)
                                            : 0;
    int code = atoi(status);
    int64_t now = kn_nats_now_ms();

    KN_DEBUG(KN_NATS_COMP, "cursor %s: status %s for request %" PRIu64
             " (current %" PRIu64 "%s)", c->group, status, id, c->req_id,
             c->req_open ? ", open" : "");
    if (code == 100 || id != c->req_id || !c->req_open)
        return; /* heartbeat, or the end of an older request */
    c->req_open = false;
    if (code == 404 || code == 408) {
        maybe_request(c);
        return;
    }
    natsMsgHeader_Get(m, "Description", &desc);
    if (code == 409 && desc && strstr(desc, "Deleted")) {
        c->verify = true;
        c->verify_at_ms = now + 2000;
    } else {
        KN_DEBUG(KN_NATS_COMP, "cursor %s: pull request ended with %d %s",
                 c->group, code, desc ? desc : "");
    }
    c->retry_at_ms = now + 500;
    wake_maint(c);
}

static int queue_push(kn_ncursor *c, natsMsg *m)
{
    if (c->qlen == c->qcap) {
        size_t cap = c->qcap ? c->qcap * 2 : 64;
        natsMsg **q = malloc(cap * sizeof *q);
        if (!q)
            return KN_NOMEM;
        for (size_t i = 0; i < c->qlen; i++)
            q[i] = c->q[(c->qhead + i) % c->qcap];
        free(c->q);
        c->q = q;
        c->qcap = cap;
        c->qhead = 0;
    }
    c->q[(c->qhead + c->qlen++) % c->qcap] = m;
    return KN_OK;
}

static natsMsg *queue_pop(kn_ncursor *c)
{
    natsMsg *m = c->q[c->qhead];
    c->qhead = (c->qhead + 1) % c->qcap;
    c->qlen--;
    return m;
}

/* cnats delivery thread: a message or a status for one of our inboxes. */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m,
                   void *closure)
{
    kn_nsub *ns = closure;
    kn_ncursor *c = ns->c;
    const char *status = NULL;
    (void)nc;
    (void)sub;

    pthread_mutex_lock(&c->mu);
    if (ns->epoch != c->epoch) { /* an older subscription */
        pthread_mutex_unlock(&c->mu);
        natsMsg_Destroy(m);
        return;
    }
    if (natsMsg_GetDataLength(m) == 0 &&
        natsMsgHeader_Get(m, "Status", &status) == NATS_OK) {
        on_status(c, m, status);
    } else {
        if (c->req_open && --c->req_left <= 0)
            c->req_open = false;
        if (c->closing) {
            /* give it back at once; see kn_nats_cursor_close */
            send_ack(c, natsMsg_GetReply(m), "-NAK");
        } else if (queue_push(c, m) != KN_OK) {
            /* not acked: JetStream redelivers it after ack-wait */
            KN_ERROR(KN_NATS_COMP, "cursor %s: out of memory, dropping "
                     "a message", c->group);
        } else {
            m = NULL;
            if (c->armed) {
                c->armed = false;
                eventfd_write(c->efd, 1);
            }
        }
    }
    if (c->closing)
        pthread_cond_broadcast(&c->cv);
    else
        maybe_request(c);
    pthread_mutex_unlock(&c->mu);
    natsMsg_Destroy(m);
}

static void on_sub_complete(void *closure)
{
    kn_nsub *ns = closure;
    kn_ncursor *c = ns->c;
    pthread_mutex_lock(&c->mu);
    c->live_subs--;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    free(ns);
}

/* ---------------------------------------------------------- consumers */

/* AckWait from the attempt timeout: twice it, so one attempt and the
 * gaps between keep-alives fit, within these bounds. The floor survives a
 * maintenance thread held up by JetStream API calls (api-timeout); the
 * cap only bounds how long a dead process's messages wait (keep-alives
 * every AckWait/3 cover longer attempts and all of knit's retries). */
#define ACK_WAIT_MIN_NS (10 * 1000000000LL)
#define ACK_WAIT_MAX_NS (600 * 1000000000LL)

void kn_nats_consumer_limits(const kn_nats_settings *set,
                             const kn_cursor_opts *opts,
                             int64_t *ack_wait_ns, int64_t *max_ack_pending)
{
    static const kn_cursor_opts none = {0, 0, 0};
    if (!opts)
        opts = &none;
    *ack_wait_ns = set->ack_wait_ns;
    if (!set->ack_wait_set && opts->attempt_timeout_ns != 0) {
        int64_t t = opts->attempt_timeout_ns;
        int64_t w = t < 0 || t > ACK_WAIT_MAX_NS / 2 ? ACK_WAIT_MAX_NS
                                                     : 2 * t;
        *ack_wait_ns = w < ACK_WAIT_MIN_NS ? ACK_WAIT_MIN_NS : w;
    }
    /* Everything the reader may hold un-committed (its window), plus one
     * fetch batch: acks go out on the reader's commit tick, and the next
     * batch must be able to arrive meanwhile, so the reader never waits
     * on JetStream while it has room. */
    *max_ack_pending = set->max_ack_pending;
    if (!set->max_ack_pending_set &&
        (opts->max_held || opts->max_in_flight)) {
        int64_t held = opts->max_held > opts->max_in_flight
                           ? opts->max_held : opts->max_in_flight;
        *max_ack_pending = held + set->fetch_batch;
    }
}

static void consumer_config(const kn_ncursor *c, jsConsumerConfig *cc)
{
    jsConsumerConfig_Init(cc);
    cc->Durable = c->durable;
    cc->AckPolicy = js_AckExplicit;
    cc->AckWait = c->ack_wait_ns;
    cc->MaxDeliver = -1;
    cc->MaxAckPending = c->max_ack_pending;
    cc->FilterSubject = c->ch->subject;
    cc->ReplayPolicy = js_ReplayInstant;
    cc->DeliverPolicy = js_DeliverNew;
}

static int js_fail(kn_ncursor *c, natsStatus s, jsErrCode ec,
                   const char *what, kn_err *err)
{
    const char *t = nats_GetLastError(NULL);
    return kn_err_set(err, kn_nats_js_status(s, ec), "cursor %s: %s "
                      "consumer %s: %s", c->group, what, c->durable,
                      t && *t ? t : natsStatus_GetText(s));
}

/* Creates a by-start-time consumer through the JetStream API directly:
 * cnats 3.4 formats OptStartTime without the leading zeros of the
 * fraction (".032" is sent as ".32"), which moves the start. Fills the
 * two fields recreate() checks. */
static natsStatus create_by_time(kn_ncursor *c, const jsConsumerConfig *cc,
                                 int64_t wait_ms, uint64_t *delivered,
                                 int64_t *ack_pending, jsErrCode *ec,
                                 char *why, size_t whyn)
{
    char when[CE_TIME_MAX], subj[512];
    natsMsg *reply = NULL;
    json_t *req, *resp = NULL, *e;
    char *body;
    natsStatus s;

    kn_time_format_ns(cc->OptStartTime, when);
    req = json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, "
                    "s:s}}", "stream_name", c->ch->stream, "config",
                    "durable_name", cc->Durable, "deliver_policy",
                    "by_start_time", "opt_start_time", when, "ack_policy",
                    "explicit", "ack_wait", (json_int_t)cc->AckWait,
                    "max_deliver", (json_int_t)cc->MaxDeliver,
                    "max_ack_pending", (json_int_t)cc->MaxAckPending,
                    "filter_subject", cc->FilterSubject, "replay_policy",
                    "instant");
    body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body)
        return NATS_NO_MEMORY;
    snprintf(subj, sizeof subj, "$JS.API.CONSUMER.DURABLE.CREATE.%s.%s",
             c->ch->stream, cc->Durable);
    s = natsConnection_Request(&reply, c->ch->nc, subj, body,
                               (int)strlen(body), wait_ms);
    free(body);
    if (s == NATS_OK &&
        !(resp = json_loadb(natsMsg_GetData(reply),
                            (size_t)natsMsg_GetDataLength(reply), 0, NULL)))
        s = NATS_ERR;
    natsMsg_Destroy(reply);
    if (s != NATS_OK) {
        json_decref(resp);
        return s;
    }
    if ((e = json_object_get(resp, "error"))) {
        *ec = (jsErrCode)json_integer_value(json_object_get(e, "err_code"));
        const char *d = json_string_value(json_object_get(e,
                                                          "description"));
        snprintf(why, whyn, "%s", d ? d : "consumer create refused");
        json_decref(resp);
        return NATS_ERR;
    }
    *delivered = (uint64_t)json_integer_value(json_object_get(
        json_object_get(resp, "delivered"), "consumer_seq"));
    *ack_pending = json_integer_value(json_object_get(resp,
                                                      "num_ack_pending"));
    json_decref(resp);
    return NATS_OK;
}

/* Deletes and creates the consumer with cc. A few attempts: another
 * process may re-create it in between, and nats-server 2.9 may hand a
 * consumer created right after the delete of one with the same name the
 * old one's delivery state (it then delivers nothing old): a fresh
 * consumer must show nothing delivered. */
static int recreate(kn_ncursor *c, jsConsumerConfig *cc, jsOptions *jo,
                    kn_err *err)
{
    natsStatus s = NATS_OK;
    jsErrCode ec = 0;
    char why[200] = "";
    for (int attempt = 0; attempt < 8; attempt++) {
        jsConsumerInfo *ci = NULL;
        if (attempt > 0)
            nanosleep(&(struct timespec){0, 20000000L * attempt}, NULL);
        s = js_DeleteConsumer(c->ch->js, c->ch->stream, c->durable, jo,
                              &ec);
        if (s != NATS_OK && s != NATS_NOT_FOUND)
            return js_fail(c, s, ec, "deleting", err);
        uint64_t delivered = 0;
        int64_t ack_pending = 0;
        if (cc->DeliverPolicy == js_DeliverByStartTime) {
            s = create_by_time(c, cc, jo->Wait, &delivered, &ack_pending,
                               &ec, why, sizeof why);
        } else {
            s = js_AddConsumer(&ci, c->ch->js, c->ch->stream, cc, jo, &ec);
            if (s == NATS_OK) {
                delivered = ci->Delivered.Consumer;
                ack_pending = ci->NumAckPending;
            }
            jsConsumerInfo_Destroy(ci);
        }
        if (s == NATS_OK) {
            bool stale = delivered != 0 || ack_pending != 0;
            if (!stale)
                return KN_OK;
            KN_DEBUG(KN_NATS_COMP, "cursor %s: consumer %s came back with "
                     "old state; re-creating it", c->group, c->durable);
            continue;
        }
        if (s != NATS_ERR)
            break;
    }
    if (s == NATS_OK)
        return kn_err_set(err, KN_IO, "cursor %s: consumer %s keeps its "
                          "old position after being re-created", c->group,
                          c->durable);
    if (why[0])
        return kn_err_set(err, kn_nats_js_status(s, ec) == KN_IO ? KN_INVAL
                          : kn_nats_js_status(s, ec), "cursor %s: creating "
                          "consumer %s: %s", c->group, c->durable, why);
    return js_fail(c, s, ec, "creating", err);
}

/* Makes the durable consumer match `to` (JetStream API calls; op_mu). */
static int ensure_consumer(kn_ncursor *c, const kn_seek *to,
                           bool stream_created, kn_err *err)
{
    jsConsumerConfig cc;
    jsConsumerInfo *ci = NULL;
    jsOptions jo;
    jsErrCode ec = 0;
    natsStatus s;

    jsOptions_Init(&jo);
    jo.Wait = c->ch->set.api_timeout_ms;
    consumer_config(c, &cc);
    switch (to->kind) {
    case KN_SEEK_END:
        return recreate(c, &cc, &jo, err);
    case KN_SEEK_START:
        cc.DeliverPolicy = js_DeliverAll;
        return recreate(c, &cc, &jo, err);
    case KN_SEEK_OFFSET:
        cc.DeliverPolicy = to->offset > 1 ? js_DeliverByStartSequence
                                          : js_DeliverAll;
        cc.OptStartSeq = to->offset > 1 ? to->offset : 0;
        return recreate(c, &cc, &jo, err);
    case KN_SEEK_TIME:
        cc.DeliverPolicy = js_DeliverByStartTime;
        cc.OptStartTime = to->time_ns > 0 ? to->time_ns : 1;
        return recreate(c, &cc, &jo, err);
    case KN_SEEK_COMMITTED:
        break;
    default:
        return kn_err_set(err, KN_INVAL, "unknown seek kind %d", to->kind);
    }
    s = js_GetConsumerInfo(&ci, c->ch->js, c->ch->stream, c->durable, &jo,
                           &ec);
    if (s == NATS_NOT_FOUND) {
        /* Resume after what this cursor saw if it had a consumer before;
         * everything if the stream is new; else only new events. */
        if (c->last_seq) {
            cc.DeliverPolicy = js_DeliverByStartSequence;
            cc.OptStartSeq = c->last_seq + 1;
        } else if (stream_created) {
            cc.DeliverPolicy = js_DeliverAll;
        }
        s = js_AddConsumer(NULL, c->ch->js, c->ch->stream, &cc, &jo, &ec);
        if (s == NATS_ERR) /* created by another process meanwhile */
            s = js_GetConsumerInfo(&ci, c->ch->js, c->ch->stream,
                                   c->durable, &jo, &ec);
        if (s != NATS_OK)
            return js_fail(c, s, ec, "creating", err);
    } else if (s != NATS_OK) {
        return js_fail(c, s, ec, "looking up", err);
    }
    if (ci && (ci->Config->AckWait != cc.AckWait ||
               ci->Config->MaxAckPending != cc.MaxAckPending ||
               ci->Config->MaxDeliver != cc.MaxDeliver)) {
        jsConsumerConfig *u = ci->Config;
        KN_INFO(KN_NATS_COMP, "cursor %s: updating consumer %s: AckWait "
                "%" PRId64 " ms -> %" PRId64 " ms, MaxAckPending %" PRId64
                " -> %" PRId64, c->group, c->durable, u->AckWait / 1000000,
                cc.AckWait / 1000000, u->MaxAckPending, cc.MaxAckPending);
        u->AckWait = cc.AckWait;
        u->MaxAckPending = cc.MaxAckPending;
        u->MaxDeliver = cc.MaxDeliver;
        s = js_UpdateConsumer(NULL, c->ch->js, c->ch->stream, u, &jo, &ec);
        if (s != NATS_OK) {
            jsConsumerInfo_Destroy(ci);
            return js_fail(c, s, ec, "updating", err);
        }
    }
    jsConsumerInfo_Destroy(ci);
    return KN_OK;
}

/* Under c->mu: forgets everything received from an older consumer or
 * subscription (not acked: that consumer's state is gone). */
static void drop_local(kn_ncursor *c, bool nak)
{
    while (c->qlen) {
        natsMsg *m = queue_pop(c);
        if (nak)
            send_ack(c, natsMsg_GetReply(m), "-NAK");
        natsMsg_Destroy(m);
    }
    for (size_t i = 0; i < c->nheld; i++) {
        if (nak)
            send_ack(c, c->held[i].reply, "-NAK");
        free(c->held[i].reply);
    }
    c->nheld = 0;
}

/* Subscribes a fresh inbox and makes it current (op_mu held). */
static int subscribe(kn_ncursor *c, kn_err *err)
{
    natsInbox *inbox = NULL;
    natsSubscription *sub = NULL, *old;
    kn_nsub *ns = calloc(1, sizeof *ns);
    char subj[160];
    natsStatus s;

    if (!ns)
        return kn_err_set(err, KN_NOMEM, "out of memory");
    ns->c = c;
    ns->epoch = c->epoch + 1; /* epoch only changes under op_mu */
    s = natsInbox_Create(&inbox);
    if (s == NATS_OK) {
        snprintf(subj, sizeof subj, "%s.*", inbox);
        s = natsConnection_Subscribe(&sub, c->ch->nc, subj, on_msg, ns);
    }
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(sub, -1, -1);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(sub, on_sub_complete, ns);
    if (s != NATS_OK) {
        if (sub) {
            natsSubscription_Unsubscribe(sub);
            natsSubscription_Destroy(sub);
        }
        natsInbox_Destroy(inbox);
        free(ns);
        return kn_err_set(err, kn_nats_status(s), "cursor %s: subscribe: "
                          "%s", c->group, natsStatus_GetText(s));
    }
    pthread_mutex_lock(&c->mu);
    old = c->sub;
    c->sub = sub;
    c->live_subs++;
    c->epoch = ns->epoch;
    snprintf(c->inbox, sizeof c->inbox, "%s", inbox);
    drop_local(c, false);
    c->req_open = false;
    c->retry_at_ms = 0;
    c->ready = true;
    c->setup_pending = false;
    c->verify = false;
    c->want = (kn_seek){KN_SEEK_COMMITTED, 0, 0};
    maybe_request(c);
    pthread_mutex_unlock(&c->mu);
    natsInbox_Destroy(inbox);
    eventfd_write(c->efd, 1);
    wake_maint(c); /* schedules the keep-alives of this cursor */
    if (old) {
        natsSubscription_Unsubscribe(old);
        natsSubscription_Destroy(old);
    }
    return KN_OK;
}

/* Positions the consumer and (re)subscribes (op_mu held). */
static int setup(kn_ncursor *c, const kn_seek *to, bool stream_created,
                 kn_err *err)
{
    kn_nats *ch = c->ch;
    int rc;
    if (!atomic_load(&ch->connected) || !atomic_load(&ch->stream_ok))
        return kn_err_set(err, KN_UNAVAILABLE, "cursor %s: NATS or the "
                          "stream %s is not available", c->group,
                          ch->stream);
    if ((rc = ensure_consumer(c, to, stream_created, err)) != KN_OK)
        return rc;
    return subscribe(c, err);
}

static bool transient(int rc)
{
    return rc == KN_UNAVAILABLE || rc == KN_TIMEOUT;
}

/* --------------------------------------------------------- maintenance */

static void keep_alive(kn_ncursor *c)
{
    for (size_t i = 0; i < c->qlen; i++)
        send_ack(c, natsMsg_GetReply(c->q[(c->qhead + i) % c->qcap]),
                 "+WPI");
    for (size_t i = 0; i < c->nheld; i++)
        send_ack(c, c->held[i].reply, "+WPI");
}

/* Deferred set-up or consumer check (op_mu held). */
static void maint_setup(kn_ncursor *c, int64_t now, bool stream_created)
{
    kn_err err = {0};
    pthread_mutex_lock(&c->mu);
    bool do_setup = c->setup_pending && now >= c->setup_at_ms;
    bool do_verify = !do_setup && c->verify && now >= c->verify_at_ms;
    kn_seek want = c->want;
    pthread_mutex_unlock(&c->mu);
    if (do_verify) {
        jsOptions jo;
        jsErrCode ec = 0;
        jsOptions_Init(&jo);
        jo.Wait = c->ch->set.api_timeout_ms;
        natsStatus s = js_GetConsumerInfo(NULL, c->ch->js, c->ch->stream,
                                          c->durable, &jo, &ec);
        if (s == NATS_OK) {
            pthread_mutex_lock(&c->mu);
            c->verify = false;
            pthread_mutex_unlock(&c->mu);
            return;
        }
        if (s != NATS_NOT_FOUND) {
            pthread_mutex_lock(&c->mu);
            c->verify_at_ms = now + 1000;
            pthread_mutex_unlock(&c->mu);
            return;
        }
        KN_WARN(KN_NATS_COMP, "cursor %s: consumer %s is gone; re-creating "
                "it after sequence %" PRIu64, c->group, c->durable,
                c->last_seq);
        do_setup = true;
        want = (kn_seek){KN_SEEK_COMMITTED, 0, 0};
    }
    if (!do_setup)
        return;
    int rc = setup(c, &want, stream_created, &err);
    if (rc == KN_OK) {
        KN_INFO(KN_NATS_COMP, "cursor %s: reading from consumer %s",
                c->group, c->durable);
        return;
    }
    pthread_mutex_lock(&c->mu);
    int64_t b = c->setup_backoff_ms ? c->setup_backoff_ms * 2 : 100;
    c->setup_backoff_ms = b > 5000 ? 5000 : b;
    c->setup_at_ms = now + c->setup_backoff_ms;
    c->setup_pending = true;
    c->want = want;
    pthread_mutex_unlock(&c->mu);
    if (!transient(rc))
        KN_ERROR(KN_NATS_COMP, "%s (retrying)", err.msg);
}

int64_t kn_nats_cursor_maint(kn_ncursor *c, int64_t now, bool reconnected,
                             bool stream_created)
{
    int64_t next = now + 5000;
    int64_t wpi = c->ack_wait_ns / 3000000;

    pthread_mutex_lock(&c->mu);
    if (reconnected) {
        c->req_open = false; /* pull requests die with the connection */
        c->retry_at_ms = 0;
        if (c->ready) {
            c->verify = true;
            c->verify_at_ms = now;
        }
    }
    pthread_mutex_unlock(&c->mu);

    if (atomic_load(&c->ch->connected)) {
        pthread_mutex_lock(&c->op_mu);
        maint_setup(c, now, stream_created);
        pthread_mutex_unlock(&c->op_mu);
    }

    pthread_mutex_lock(&c->mu);
    now = kn_nats_now_ms();
    if (c->ready) {
        if (c->req_open && now >= c->req_deadline_ms)
            c->req_open = false; /* lost without a status: ask again */
        maybe_request(c);
        if (c->req_open && c->req_deadline_ms < next)
            next = c->req_deadline_ms;
        else if (!c->req_open && c->retry_at_ms > now &&
                 c->retry_at_ms < next)
            next = c->retry_at_ms;
        if (now >= c->wpi_at_ms) {
            if (atomic_load(&c->ch->connected))
                keep_alive(c);
            c->wpi_at_ms = now + wpi;
        }
        if (c->wpi_at_ms < next)
            next = c->wpi_at_ms;
    }
    if (c->setup_pending && c->setup_at_ms < next)
        next = c->setup_at_ms;
    if (c->verify && c->verify_at_ms < next)
        next = c->verify_at_ms;
    pthread_mutex_unlock(&c->mu);
    return next;
}

/* ---------------------------------------------------------- open, close */

static void cursor_free(kn_ncursor *c)
{
    if (c->efd >= 0)
        close(c->efd);
    free(c->q);
    free(c->held);
    free(c->group);
    free(c->durable);
    free(c->next_subj);
    pthread_mutex_destroy(&c->op_mu);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

static kn_ncursor *cursor_new(kn_nats *ch, const char *group, kn_err *err)
{
    pthread_condattr_t ca;
    kn_ncursor *c = calloc(1, sizeof *c);
    size_t n;

    if (!c) {
        kn_err_set(err, KN_NOMEM, "out of memory");
        return NULL;
    }
    c->ch = ch;
    c->base.channel = &ch->base;
    c->efd = -1;
    pthread_mutex_init(&c->op_mu, NULL);
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!(c->group = strdup(group)) ||
        kn_nats_durable_name(group, &c->durable) != KN_OK)
        goto nomem;
    n = strlen(ch->stream) + strlen(c->durable) + 32;
    if (!(c->next_subj = malloc(n)))
        goto nomem;
    snprintf(c->next_subj, n, "$JS.API.CONSUMER.MSG.NEXT.%s.%s",
             ch->stream, c->durable);
    if ((c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        kn_err_set(err, KN_IO, "eventfd: %s", strerror(errno));
        cursor_free(c);
        return NULL;
    }
    return c;
nomem:
    kn_err_set(err, KN_NOMEM, "out of memory");
    cursor_free(c);
    return NULL;
}

int kn_nats_cursor_open(kn_channel *base, const char *group,
                        const kn_seek *start, const kn_cursor_opts *opts,
                        kn_cursor **out, kn_err *err)
{
    static const kn_seek committed = {KN_SEEK_COMMITTED, 0, 0};
    kn_nats *ch = (kn_nats *)base;
    kn_ncursor *c;
    int rc;

    *out = NULL;
    if (!group || !*group)
        return kn_err_set(err, KN_INVAL, "cursor group name is empty");
    if (!(c = cursor_new(ch, group, err)))
        return err ? err->status : KN_NOMEM;
    kn_nats_consumer_limits(&ch->set, opts, &c->ack_wait_ns,
                            &c->max_ack_pending);
    c->want = start ? *start : committed;
    if (c->want.kind > KN_SEEK_COMMITTED) {
        int kind = (int)c->want.kind;
        cursor_free(c);
        return kn_err_set(err, KN_INVAL, "unknown seek kind %d", kind);
    }
    pthread_mutex_lock(&c->op_mu);
    rc = setup(c, &c->want, false, err);
    if (transient(rc)) {
        KN_WARN(KN_NATS_COMP, "%s; the cursor starts reading when it "
                "is back", err ? err->msg : kn_status_str(rc));
        c->setup_pending = true;
        rc = KN_OK;
    }
    pthread_mutex_unlock(&c->op_mu);
    if (rc != KN_OK) {
        cursor_free(c);
        return rc;
    }
    pthread_mutex_lock(&ch->cur_mu);
    c->next = ch->cursors;
    ch->cursors = c;
    pthread_mutex_unlock(&ch->cur_mu);
    wake_maint(c); /* set-up retries, keep-alives */
    *out = &c->base;
    return KN_OK;
}

void kn_nats_cursor_close(kn_cursor *base)
{
    kn_ncursor *c = (kn_ncursor *)base;
    struct timespec ts;
    natsSubscription *sub;

    if (!c)
        return;
    pthread_mutex_lock(&c->ch->cur_mu);
    for (kn_ncursor **pp = &c->ch->cursors; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    pthread_mutex_unlock(&c->ch->cur_mu);
    /* Messages handed out but not committed go back to JetStream (-NAK)
     * so another process or a reopened cursor gets them at once. While
     * our pull request is open they bounce back to us and are NAK'd
     * again until it is used up: unsubscribing first would leave a pull
     * request without a listener, and nats-server 2.9 then loses track
     * of redelivered messages until ack-wait. */
    pthread_mutex_lock(&c->op_mu); /* no set-up in progress */
    pthread_mutex_lock(&c->mu);
    c->closing = true;
    bool gave_back = c->qlen + c->nheld > 0;
    drop_local(c, true);
    if (gave_back && atomic_load(&c->ch->connected)) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 1;
        while (c->req_open)
            if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT)
                break;
    }
    sub = c->sub;
    c->sub = NULL;
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&c->op_mu);
    if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    if (atomic_load(&c->ch->connected))
        natsConnection_FlushTimeout(c->ch->nc, 1000);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += 5;
    pthread_mutex_lock(&c->mu);
    while (c->live_subs > 0)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT)
            break;
    bool stuck = c->live_subs > 0;
    pthread_mutex_unlock(&c->mu);
    if (stuck) {
        /* a delivery callback may still hold c: leak it rather than
         * free memory in use */
        KN_ERROR(KN_NATS_COMP, "cursor %s: subscription did not finish; "
                 "leaking it", c->group);
        return;
    }
    cursor_free(c);
}

int kn_nats_cursor_seek(kn_cursor *base, const kn_seek *to, kn_err *err)
{
    kn_ncursor *c = (kn_ncursor *)base;
    int rc;
    if (!to)
        return kn_err_set(err, KN_INVAL, "seek: no position");
    pthread_mutex_lock(&c->op_mu);
    rc = setup(c, to, false, err);
    pthread_mutex_unlock(&c->op_mu);
    return rc;
}

int kn_nats_cursor_delete(kn_channel *base, const char *group)
{
    kn_nats *ch = (kn_nats *)base;
    char *durable = NULL;
    jsOptions jo;
    jsErrCode ec = 0;
    int rc;

    if (!group || !*group)
        return KN_INVAL;
    pthread_mutex_lock(&ch->cur_mu);
    for (kn_ncursor *c = ch->cursors; c; c = c->next)
        if (strcmp(c->group, group) == 0) {
            pthread_mutex_unlock(&ch->cur_mu);
            return KN_EXISTS;
        }
    pthread_mutex_unlock(&ch->cur_mu);
    if ((rc = kn_nats_durable_name(group, &durable)) != KN_OK)
        return rc;
    if (!atomic_load(&ch->connected)) {
        free(durable);
        return KN_UNAVAILABLE;
    }
    jsOptions_Init(&jo);
    jo.Wait = ch->set.api_timeout_ms;
    natsStatus s = js_DeleteConsumer(ch->js, ch->stream, durable, &jo, &ec);
    free(durable);
    if (s == NATS_OK)
        return KN_OK;
    if (s == NATS_NOT_FOUND || ec == JSConsumerNotFoundErr ||
        ec == JSStreamNotFoundErr)
        return KN_NOTFOUND;
    return kn_nats_js_status(s, ec);
}

/* ------------------------------------------------------------ reading */

int kn_nats_cursor_fd(kn_cursor *base)
{
    return ((kn_ncursor *)base)->efd;
}

void kn_nats_cursor_drain(kn_cursor *base)
{
    eventfd_t v;
    eventfd_read(((kn_ncursor *)base)->efd, &v);
}

static void note_skip(kn_ncursor *c, uint64_t seq, const char *why)
{
    kn_nats *ch = c->ch;
    pthread_mutex_lock(&ch->mu);
    ch->skipped++;
    pthread_mutex_unlock(&ch->mu);
    c->skipped++;
    if (c->skipped <= SKIP_LOG_FIRST || c->skipped % 1000 == 0)
        KN_WARN(KN_NATS_COMP, "cursor %s: stream %s sequence %" PRIu64
                " is not a CloudEvent (%s); acknowledged and skipped "
                "(%" PRIu64 " so far)", c->group, ch->stream, seq, why,
                c->skipped);
}

/* Decodes one message into r. Returns false for a record to skip. */
static bool decode(kn_ncursor *c, natsMsg *m, uint64_t seq, int64_t ts,
                   kn_record *r)
{
    ce_header stack[MAX_HDRS], *h = stack;
    const char **keys = NULL;
    int nk = 0;
    ce_err cerr;
    ce_event *ev = NULL;
    int rc;

    if (natsMsgHeader_Keys(m, &keys, &nk) != NATS_OK)
        nk = 0;
    if (nk > MAX_HDRS && !(h = malloc((size_t)nk * sizeof *h))) {
        free((void *)keys);
        note_skip(c, seq, "out of memory");
        return false;
    }
    int n = 0;
    for (int i = 0; i < nk; i++) {
        const char *v = NULL;
        if (natsMsgHeader_Get(m, keys[i], &v) == NATS_OK && v)
            h[n++] = (ce_header){keys[i], strlen(keys[i]), v, strlen(v)};
    }
    rc = ce_nats_decode(h, (size_t)n, natsMsg_GetData(m),
                        (size_t)natsMsg_GetDataLength(m), 0, &ev, &cerr);
    if (h != stack)
        free(h);
    free((void *)keys);
    if (rc != CE_OK) {
        note_skip(c, seq, cerr.msg);
        return false;
    }
    ce_event_freeze(ev);
    *r = (kn_record){ev, seq, 0, ts};
    return true;
}

/* Under c->mu: a redelivery of a message this cursor still holds takes
 * the new ack subject and is not handed out again. */
static bool held_refresh(kn_ncursor *c, uint64_t seq, const char *reply)
{
    for (size_t i = 0; i < c->nheld; i++)
        if (c->held[i].seq == seq) {
            char *r = strdup(reply);
            if (r) {
                free(c->held[i].reply);
                c->held[i].reply = r;
            }
            return true;
        }
    return false;
}

static int held_add(kn_ncursor *c, uint64_t seq, const char *reply)
{
    if (c->nheld == c->capheld) {
        size_t cap = c->capheld ? c->capheld * 2 : 256;
        kn_held *h = realloc(c->held, cap * sizeof *h);
        if (!h)
            return KN_NOMEM;
        c->held = h;
        c->capheld = cap;
    }
    char *r = strdup(reply);
    if (!r)
        return KN_NOMEM;
    c->held[c->nheld++] = (kn_held){seq, r};
    if (seq > c->last_seq)
        c->last_seq = seq;
    return KN_OK;
}

/* Handles one popped message: a record in *r (returns true) or skipped. */
static bool take_one(kn_ncursor *c, natsMsg *m, kn_record *r)
{
    const char *reply = natsMsg_GetReply(m);
    uint64_t seq = 0, dlv = 0;
    int64_t ts = 0;

    if (!parse_ack(reply, &seq, &ts, &dlv)) {
        note_skip(c, 0, "no JetStream ack subject");
        return false;
    }
    if (dlv > 1) {
        pthread_mutex_lock(&c->mu);
        bool dup = held_refresh(c, seq, reply);
        pthread_mutex_unlock(&c->mu);
        if (dup)
            return false;
    }
    if (!decode(c, m, seq, ts, r)) {
        send_ack(c, reply, "+ACK");
        return false;
    }
    pthread_mutex_lock(&c->mu);
    int rc = held_add(c, seq, reply);
    pthread_mutex_unlock(&c->mu);
    if (rc != KN_OK) { /* not held: JetStream redelivers after ack-wait */
        ce_event_unref(r->event);
        return false;
    }
    return true;
}

int kn_nats_cursor_next(kn_cursor *base, kn_record *recs, size_t max)
{
    kn_ncursor *c = (kn_ncursor *)base;
    size_t n = 0;
    bool more;

    while (n < max) {
        natsMsg *chunk[CHUNK];
        size_t k = 0;
        pthread_mutex_lock(&c->mu);
        while (k < CHUNK && k < max - n && c->qlen)
            chunk[k++] = queue_pop(c);
        pthread_mutex_unlock(&c->mu);
        if (k == 0)
            break;
        for (size_t i = 0; i < k; i++) {
            if (take_one(c, chunk[i], &recs[n]))
                n++;
            natsMsg_Destroy(chunk[i]);
        }
    }
    pthread_mutex_lock(&c->mu);
    more = c->qlen > 0;
    if (!more)
        c->armed = true;
    maybe_request(c);
    pthread_mutex_unlock(&c->mu);
    if (more)
        eventfd_write(c->efd, 1);
    return (int)n;
}

int kn_nats_cursor_commit(kn_cursor *base, int32_t partition, uint64_t next)
{
    kn_ncursor *c = (kn_ncursor *)base;
    int rc = KN_OK;
    size_t j = 0;

    if (partition != 0)
        return KN_INVAL;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nheld; i++) {
        kn_held h = c->held[i];
        if (h.seq < next) {
            natsStatus s = natsConnection_Publish(c->ch->nc, h.reply,
                                                  "+ACK", 4);
            if (s == NATS_OK) {
                free(h.reply);
                continue;
            }
            rc = kn_nats_status(s);
        }
        c->held[j++] = h;
    }
    c->nheld = j;
    pthread_mutex_unlock(&c->mu);
    return rc;
}
