/*
 * 0350-log-crash: crash safety of the log. A child process appends from
 * several threads (durability fsync) and reports every acknowledged
 * append on a pipe; the parent SIGKILLs it mid-stream, reopens the log
 * (recovery) and checks that every acknowledged event is stored exactly
 * once, at the offset it was acknowledged with, in each thread's order.
 * Three rounds run on the same log, so recovery is followed by appends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "../unit/logtest.h"

#define THREADS 4
#define WINDOW 64
#define ROUNDS 3
#define KILL_AFTER 400 /* acks seen before the kill */

static char dir[64];
static int ack_fd = -1;

typedef struct slot {
    char id[32];
    struct child_thread *t;
} slot;

typedef struct child_thread {
    kn_channel *ch;
    int round, id;
    slot slots[WINDOW];
    tu_wait w;
} child_thread;

static void child_ack(void *arg, int status, uint64_t first)
{
    slot *s = arg;
    char line[96];
    if (status != KN_OK)
        _exit(3);
    int n = snprintf(line, sizeof line, "%llu %s\n",
                     (unsigned long long)first, s->id);
    if (write(ack_fd, line, (size_t)n) != n)
        _exit(4);
    tu_wait_cb(&s->t->w, status, first);
}

/* Appends forever with up to WINDOW appends in flight. */
static void *child_work(void *arg)
{
    child_thread *t = arg;
    tu_wait_init(&t->w);
    for (unsigned i = 0;; i++) {
        if (i >= WINDOW) /* completions come back in submission order */
            tu_wait_for(&t->w, (int)(i - WINDOW + 1), -1);
        slot *s = &t->slots[i % WINDOW];
        s->t = t;
        snprintf(s->id, sizeof s->id, "r%d.t%d.%u", t->round, t->id, i);
        ce_event *ev = tu_event(s->id, 0, 40 + (i % 7) * 30);
        if (kn_channel_append(t->ch, &ev, 1, child_ack, s) != KN_OK)
            _exit(5);
        ce_event_unref(ev);
    }
    return NULL;
}

static void child_main(int round, int fd)
{
    static child_thread t[THREADS];
    pthread_t th[THREADS];
    kn_err err;
    ack_fd = fd;
    kn_channel *ch = lt_open("log", dir, NULL, &err);
    if (!ch)
        _exit(2);
    for (int i = 0; i < THREADS; i++) {
        t[i].ch = ch;
        t[i].round = round;
        t[i].id = i;
        pthread_create(&th[i], NULL, child_work, &t[i]);
    }
    for (;;)
        pause();
}

typedef struct acked {
    uint64_t offset;
    char id[40];
} acked;

static acked *acks;
static size_t nacks, capacks;

/* Runs one child, kills it after KILL_AFTER acks, collects every ack. */
static void crash_round(int round)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        child_main(round, p[1]);
    }
    close(p[1]);
    FILE *f = fdopen(p[0], "r");
    char line[128];
    size_t seen = 0;
    bool killed = false;
    while (fgets(line, sizeof line, f)) {
        if (nacks == capacks) {
            capacks = capacks ? capacks * 2 : 1024;
            acks = realloc(acks, capacks * sizeof *acks);
        }
        unsigned long long off;
        acked *a = &acks[nacks];
        assert_int_equal(sscanf(line, "%llu %39s", &off, a->id), 2);
        a->offset = off;
        nacks++;
        if (++seen == KILL_AFTER && !killed) {
            kill(pid, SIGKILL); /* mid-stream: appends are in flight */
            killed = true;
        }
    }
    fclose(f);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    fprintf(stderr, "round %d: %zu acks before the kill landed\n", round,
            seen);
}

static int by_offset(const void *a, const void *b)
{
    const acked *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Reopens the log and checks every ack against what is stored. */
static void verify(void)
{
    kn_err err = {0};
    kn_channel *ch = lt_open("log", dir, NULL, &err);
    if (!ch)
        fprintf(stderr, "reopen: %s\n", err.msg);
    assert_non_null(ch);
    qsort(acks, nacks, sizeof *acks, by_offset);
    kn_seek sk = {KN_SEEK_START, 0, 0};
    kn_cursor *c = NULL;
    assert_int_equal(ch->ops->cursor_open(ch, "verify", &sk, NULL, &c, NULL),
                     KN_OK);
    kn_record recs[64];
    size_t ai = 0;
    uint64_t next = 0, stored = 0;
    int last_seq[ROUNDS][THREADS];
    memset(last_seq, -1, sizeof last_seq);
    int n;
    while ((n = ch->ops->cursor_next(c, recs, 64)) > 0) {
        for (int i = 0; i < n; i++) {
            const char *id = ce_event_get(recs[i].event, "id", NULL, NULL);
            assert_int_equal(recs[i].offset, next);
            /* ids are "<r>.<t>.<i>-0": unique, increasing per thread */
            int r, t, s;
            assert_int_equal(sscanf(id, "r%d.t%d.%d-0", &r, &t, &s), 3);
            assert_true(s > last_seq[r][t]); /* never twice, in order */
            last_seq[r][t] = s;
            if (ai < nacks && acks[ai].offset == next) {
                char want[48];
                snprintf(want, sizeof want, "%s-0", acks[ai].id);
                assert_string_equal(id, want);
                ai++;
            }
            next++;
            stored++;
            ce_event_unref(recs[i].event);
        }
    }
    assert_int_equal(n, 0);
    assert_int_equal(ai, nacks); /* every ack was found at its offset */
    fprintf(stderr, "verified %zu acked events among %llu stored\n", nacks,
            (unsigned long long)stored);
    ch->ops->cursor_close(c);
    assert_int_equal(ch->ops->cursor_delete(ch, "verify"), KN_OK);
    kn_channel_close(ch);
}

static void test_crash(void **state)
{
    (void)state;
    tu_mkdtemp(dir, sizeof dir, "log-crash");
    for (int r = 0; r < ROUNDS; r++) {
        crash_round(r);
        verify();
    }
    free(acks);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
