/*
 * 0002-log: level parsing and filtering, text and JSON line formats
 * (escaping, one line per call) and whole lines under concurrent writers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/common.h"

/* Runs fn with the logger pointed at a temporary file; returns its text. */
static char *capture(void (*fn)(void))
{
    char path[] = "/tmp/knit-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    kn_log_set_fd(fd);
    fn();
    kn_log_set_fd(2);
    off_t n = lseek(fd, 0, SEEK_END);
    char *buf = calloc(1, (size_t)n + 1);
    assert_int_equal(pread(fd, buf, (size_t)n, 0), n);
    close(fd);
    return buf;
}

static void test_level_parse(void **state)
{
    (void)state;
    kn_log_level l = KN_LOG_ERROR;
    assert_int_equal(kn_log_level_parse("debug", &l), KN_OK);
    assert_int_equal(l, KN_LOG_DEBUG);
    assert_int_equal(kn_log_level_parse("INFO", &l), KN_OK);
    assert_int_equal(l, KN_LOG_INFO);
    assert_int_equal(kn_log_level_parse("Warning", &l), KN_OK);
    assert_int_equal(l, KN_LOG_WARN);
    assert_int_equal(kn_log_level_parse("warn", &l), KN_OK);
    assert_int_equal(kn_log_level_parse("error", &l), KN_OK);
    assert_int_equal(l, KN_LOG_ERROR);
    assert_int_equal(kn_log_level_parse("verbose", &l), KN_INVAL);
    assert_int_equal(kn_log_level_parse("", &l), KN_INVAL);
    assert_int_equal(kn_log_level_parse(NULL, &l), KN_INVAL);
    assert_int_equal(l, KN_LOG_ERROR);
    assert_string_equal(kn_log_level_str(KN_LOG_WARN), "warn");
}

static void emit_text(void)
{
    kn_log_init(KN_LOG_INFO, false);
    KN_DEBUG("test", "hidden %d", 1);
    KN_INFO("broker", "started on %s", "127.0.0.1:8080");
    KN_ERROR("log", "two\nlines");
    kn_log_write(KN_LOG_WARN, NULL, "no component");
}

static void test_text(void **state)
{
    (void)state;
    char *out = capture(emit_text);
    assert_null(strstr(out, "hidden"));
    char *l1 = out, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    /* "2024-05-01T10:00:00.123Z INFO  broker: started on ..." */
    assert_int_equal(l1[4], '-');
    assert_int_equal(l1[10], 'T');
    assert_int_equal(l1[23], 'Z');
    assert_memory_equal(l1 + 24, " INFO  broker: started on 127.0.0.1:8080\n",
                        41);
    assert_memory_equal(l2 + 24, " ERROR log: two\\nlines\n", 23);
    assert_memory_equal(l3 + 24, " WARN  no component\n", 20);
    assert_int_equal(strlen(l3), 24 + 20);
    free(out);
}

static void emit_json(void)
{
    kn_log_init(KN_LOG_DEBUG, true);
    KN_DEBUG("dispatch", "quote \" back\\slash tab\t ctl\x01 nl\n end");
    KN_WARN("x", "bad utf8 \xff\xfe ok \xc3\xa9");
    kn_log_init(KN_LOG_INFO, false);
}

static void test_json(void **state)
{
    (void)state;
    char *out = capture(emit_json);
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    *nl = '\0';
    json_error_t je;
    json_t *o = json_loads(out, 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "level")),
                        "debug");
    assert_string_equal(json_string_value(json_object_get(o, "component")),
                        "dispatch");
    assert_string_equal(json_string_value(json_object_get(o, "msg")),
                        "quote \" back\\slash tab\t ctl\x01 nl\n end");
    int64_t ns;
    assert_int_equal(kn_time_parse_ns(json_string_value(json_object_get(o,
                                                         "ts")), &ns, NULL),
                     KN_OK);
    json_decref(o);
    o = json_loads(nl + 1, 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "level")),
                        "warn");
    assert_string_equal(json_string_value(json_object_get(o, "msg")),
                        "bad utf8 \xef\xbf\xbd\xef\xbf\xbd ok \xc3\xa9");
    json_decref(o);
    free(out);
}

#define THREADS 4
#define LINES 500

static void *writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    char big[3000];
    memset(big, 'a' + id, sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < LINES; i++)
        KN_INFO("t", "%d %d %s", id, i, big);
    return NULL;
}

static void emit_threads(void)
{
    kn_log_init(KN_LOG_INFO, true);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    kn_log_init(KN_LOG_INFO, false);
}

static void test_threads(void **state)
{
    (void)state;
    char *out = capture(emit_threads);
    int count[THREADS] = {0};
    char *save = NULL;
    for (char *l = strtok_r(out, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(l, 0, NULL);
        assert_non_null(o); /* every line is whole */
        const char *msg = json_string_value(json_object_get(o, "msg"));
        int id, i;
        assert_int_equal(sscanf(msg, "%d %d", &id, &i), 2);
        assert_true(id >= 0 && id < THREADS);
        assert_int_equal(i, count[id]); /* in order per thread */
        count[id]++;
        json_decref(o);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(count[i], LINES);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
