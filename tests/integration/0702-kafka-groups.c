/*
 * 0702-kafka-groups: cursors of one group are members of one Kafka
 * consumer group on the mock cluster. Two cursors split the partitions
 * (no record goes to both); events with the same partitionkey share a
 * partition and keep their order; a second member joining mid-stream
 * (rebalance) loses nothing: every acknowledged event is read by one of
 * them, and only events the first one had not committed when the
 * rebalance began come again (bounded duplicates).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kafkatest.h"

#define NPART 6

static const char *g_fast[][2] = {
    {"kafka.consumer.session.timeout.ms", "6000"},
    {"kafka.consumer.heartbeat.interval.ms", "300"},
};

/* Records kept by one member. */
typedef struct member {
    kn_cursor *c;
    kn_record *r;
    size_t n, cap;
    bool commit;        /* commit each record right after reading it */
} member;

static void member_read(member *m)
{
    const kn_channel_ops *ops = m->c->channel->ops;
    kn_record buf[32];
    ops->cursor_drain_notify(m->c);
    int n;
    while ((n = ops->cursor_next(m->c, buf, 32)) > 0) {
        if (m->n + (size_t)n > m->cap) {
            m->cap = (m->n + (size_t)n) * 2;
            m->r = realloc(m->r, m->cap * sizeof *m->r);
            assert_non_null(m->r);
        }
        for (int i = 0; i < n; i++) {
            m->r[m->n++] = buf[i];
            if (m->commit)
                assert_int_equal(ops->cursor_commit(m->c, buf[i].partition,
                                                    buf[i].offset + 1),
                                 KN_OK);
        }
    }
    assert_true(n >= 0);
}

/* Serves the members for ms (or until `until` records in total). */
static void serve(member *ms, size_t nm, int ms_max, size_t until)
{
    int64_t end = kn_now_mono_ms() + ms_max;
    struct pollfd pf[4];
    while (kn_now_mono_ms() < end) {
        size_t total = 0;
        for (size_t i = 0; i < nm; i++)
            total += ms[i].n;
        if (until && total >= until)
            return;
        for (size_t i = 0; i < nm; i++)
            pf[i] = (struct pollfd){ms[i].c->channel->ops->cursor_fd(ms[i].c),
                                    POLLIN, 0};
        int left = (int)(end - kn_now_mono_ms());
        if (poll(pf, nm, left > 0 ? left : 0) <= 0)
            continue;
        for (size_t i = 0; i < nm; i++)
            if (pf[i].revents)
                member_read(&ms[i]);
    }
}

static void member_free(member *m)
{
    tu_release(m->r, m->n);
    free(m->r);
    if (m->c)
        m->c->channel->ops->cursor_close(m->c);
}

static unsigned id_num(const kn_record *r, const char *prefix)
{
    const char *id = ce_event_get(r->event, "id", NULL, NULL);
    assert_non_null(id);
    assert_int_equal(strncmp(id, prefix, strlen(prefix)), 0);
    return (unsigned)atoi(id + strlen(prefix) + 1);
}

static void append_keyed(kn_channel *ch, const char *prefix, unsigned from,
                         unsigned to)
{
    for (unsigned i = from; i < to; i++) {
        ce_event *ev = tu_event(prefix, i, 10);
        ce_event *k = ce_event_clone(ev);
        char key[16];
        snprintf(key, sizeof key, "key-%u", i % 8);
        assert_int_equal(ce_event_set_str(k, "partitionkey", key, NULL),
                         CE_OK);
        ce_event_freeze(k);
        assert_int_equal(tu_append(ch, &k, 1, NULL), KN_OK);
        ce_event_unref(k);
        ce_event_unref(ev);
    }
}

static void test_split(void **state)
{
    (void)state;
    kn_err err = {0};
    assert_int_equal(rd_kafka_mock_topic_create(g_mock.mc, kt_topic("split"),
                                                NPART, 3), 0);
    kn_channel *ch = kt_open(&g_mock, "split", g_fast, 2, &err);
    assert_non_null(ch);
    member m[2] = {{0}, {0}};
    for (int i = 0; i < 2; i++) {
        m[i].c = kt_cursor(ch, "trigger.default.split", KN_SEEK_COMMITTED,
                           &err);
        assert_non_null(m[i].c);
        m[i].commit = true;
    }
    /* Until both are members with partitions (the mock waits 3 s for
     * the first join; a late joiner means another rebalance). */
    int64_t end = kn_now_mono_ms() + 20000;
    unsigned probe = 0;
    while ((!m[0].n || !m[1].n) && kn_now_mono_ms() < end) {
        append_keyed(ch, "p", probe, probe + 8);
        probe += 8;
        serve(m, 2, 500, 0);
    }
    assert_true(m[0].n > 0 && m[1].n > 0);
    serve(m, 2, 300, 0);
    for (int i = 0; i < 2; i++) {
        tu_release(m[i].r, m[i].n);
        m[i].n = 0;
    }
    append_keyed(ch, "s", 0, 80);
    serve(m, 2, 15000, 80);
    assert_int_equal(m[0].n + m[1].n, 80);
    assert_true(m[0].n > 0 && m[1].n > 0);

    unsigned char seen[80] = {0};
    int owner[NPART] = {-1, -1, -1, -1, -1, -1};
    int key_part[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    uint64_t last_in_part[NPART] = {0};
    for (int i = 0; i < 2; i++)
        for (size_t j = 0; j < m[i].n; j++) {
            const kn_record *r = &m[i].r[j];
            unsigned v = id_num(r, "s");
            assert_true(v < 80 && !seen[v]);
            seen[v] = 1;
            assert_true(r->partition >= 0 && r->partition < NPART);
            /* one member per partition */
            assert_true(owner[r->partition] < 0 ||
                        owner[r->partition] == i);
            owner[r->partition] = i;
            /* same key → same partition, in order */
            int *kp = &key_part[v % 8];
            assert_true(*kp < 0 || *kp == r->partition);
            *kp = r->partition;
            assert_true(r->offset + 1 > last_in_part[r->partition]);
            last_in_part[r->partition] = r->offset + 1;
        }
    member_free(&m[0]);
    member_free(&m[1]);
    kn_channel_close(ch);
}

/* A reads without committing the last few records; B joins; everything
 * appended is read by A or B, the uncommitted records again. */
static void test_rebalance_no_loss(void **state)
{
    (void)state;
    kn_err err = {0};
    assert_int_equal(rd_kafka_mock_topic_create(g_mock.mc, kt_topic("reb"),
                                                NPART, 3), 0);
    kn_channel *ch = kt_open(&g_mock, "reb", g_fast, 2, &err);
    assert_non_null(ch);
    const kn_channel_ops *ops = ch->ops;
    member m[2] = {{0}, {0}};
    m[0].c = kt_cursor(ch, "trigger.default.reb", KN_SEEK_COMMITTED, &err);
    assert_non_null(m[0].c);
    serve(m, 1, 3500, 0);
    append_keyed(ch, "r", 0, 60);
    serve(m, 1, 10000, 60);
    assert_int_equal(m[0].n, 60);
    /* A is "done" with the first 40 records it read, not the rest. */
    uint64_t done[NPART] = {0};
    for (size_t j = 0; j < 40; j++)
        if (m[0].r[j].offset + 1 > done[m[0].r[j].partition])
            done[m[0].r[j].partition] = m[0].r[j].offset + 1;
    unsigned inflight = 0;
    for (size_t j = 40; j < 60; j++)
        inflight += m[0].r[j].offset + 1 > done[m[0].r[j].partition];
    for (int p = 0; p < NPART; p++)
        if (done[p])
            assert_int_equal(ops->cursor_commit(m[0].c, p, done[p]), KN_OK);

    /* B joins while more events arrive. */
    size_t a_before = m[0].n;
    m[1].c = kt_cursor(ch, "trigger.default.reb", KN_SEEK_COMMITTED, &err);
    assert_non_null(m[1].c);
    m[1].commit = true;
    m[0].commit = true;
    for (unsigned round = 0; round < 6; round++) {
        append_keyed(ch, "r", 60 + round * 10, 70 + round * 10);
        serve(m, 2, 300, 0);
    }
    unsigned count[120], dups, missing;
    int64_t end = kn_now_mono_ms() + 15000;
    do { /* until B has partitions and every event was read */
        serve(m, 2, 200, 0);
        memset(count, 0, sizeof count);
        dups = missing = 0;
        for (int i = 0; i < 2; i++)
            for (size_t j = 0; j < m[i].n; j++) {
                unsigned v = id_num(&m[i].r[j], "r");
                assert_true(v < 120);
                dups += count[v]++ > 0;
            }
        for (unsigned v = 0; v < 120; v++)
            missing += count[v] == 0;
    } while ((missing || !m[1].n) && kn_now_mono_ms() < end);
    assert_true(m[1].n > 0); /* B got partitions */
    assert_int_equal(missing, 0); /* no loss */
    /* Duplicates only from what A had not committed when the rebalance
     * began: its in-flight records, and (the mock refuses commits while
     * a group rebalances, where Kafka takes the current generation's)
     * what A read and committed while B was joining. */
    size_t a_during = m[0].n - a_before;
    print_message("rebalance: %u duplicates (%u records were in flight, "
                  "A read %zu while B joined)\n", dups, inflight, a_during);
    assert_true(dups <= inflight + a_during);
    member_free(&m[0]);
    member_free(&m[1]);
    kn_channel_close(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_rebalance_no_loss),
    };
    return cmocka_run_group_tests(tests, kt_group_setup, kt_group_teardown);
}
