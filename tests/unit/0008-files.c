/*
 * 0008-files: kn_read_file (regular files, stdin via "-", errors),
 * kn_write_file_atomic (replace, no temporary left behind, errors) and
 * kn_mkdirs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/common.h"
#include "tests/testutil.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    tu_mkdtemp(dir, sizeof dir, "files");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tu_rmrf(dir);
}

static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_write_read(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/a.json", dir);
    kn_err err = {0};
    assert_int_equal(kn_write_file_atomic(path, "hello", 5, &err), KN_OK);
    ce_buf b = CE_BUF_INIT;
    assert_int_equal(kn_read_file(path, &b, &err), KN_OK);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "hello");
    /* replace with bigger content; no temporary file stays behind */
    static char big[200000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    assert_int_equal(kn_write_file_atomic(path, big, sizeof big, &err),
                     KN_OK);
    assert_int_equal(kn_read_file(path, &b, &err), KN_OK);
    assert_int_equal(b.len, sizeof big);
    assert_memory_equal(b.data, big, sizeof big);
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(count_entries(dir), 1);
    /* empty file */
    assert_int_equal(kn_write_file_atomic(path, "", 0, &err), KN_OK);
    assert_int_equal(kn_read_file(path, &b, &err), KN_OK);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    free(b.data);
}

static void test_read_errors(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/missing.yaml", dir);
    ce_buf b = CE_BUF_INIT;
    kn_err err = {0};
    assert_int_equal(kn_read_file(path, &b, &err), KN_NOTFOUND);
    char want[256];
    snprintf(want, sizeof want, "cannot open %s: No such file or directory",
             path);
    assert_string_equal(err.msg, want);
    assert_int_equal(kn_read_file(dir, &b, &err), KN_INVAL);
    assert_non_null(strstr(err.msg, "is a directory"));
    free(b.data);
}

static void test_stdin(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/in.txt", dir);
    assert_int_equal(kn_write_file_atomic(path, "from stdin\n", 11, NULL),
                     KN_OK);
    int saved = dup(0);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, 0);
    close(fd);
    ce_buf b = CE_BUF_INIT;
    int rc = kn_read_file("-", &b, NULL);
    dup2(saved, 0);
    close(saved);
    assert_int_equal(rc, KN_OK);
    assert_string_equal(b.data, "from stdin\n");
    free(b.data);
}

static void test_write_errors(void **state)
{
    (void)state;
    char path[128];
    kn_err err = {0};
    snprintf(path, sizeof path, "%s/no/such/dir/x", dir);
    assert_int_equal(kn_write_file_atomic(path, "x", 1, &err), KN_NOTFOUND);
    assert_non_null(strstr(err.msg, "cannot create"));
    /* target is a directory: rename fails, temporary removed */
    snprintf(path, sizeof path, "%s/sub", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    int before = count_entries(dir);
    assert_int_equal(kn_write_file_atomic(path, "x", 1, &err), KN_IO);
    assert_non_null(strstr(err.msg, "cannot rename"));
    assert_int_equal(count_entries(dir), before);
    rmdir(path);
}

static void test_mkdirs(void **state)
{
    (void)state;
    char path[128], file[160];
    snprintf(path, sizeof path, "%s/a/b//c/", dir);
    assert_int_equal(kn_mkdirs(path, 0755), KN_OK);
    struct stat st;
    snprintf(path, sizeof path, "%s/a/b/c", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(kn_mkdirs(path, 0755), KN_OK); /* exists: fine */
    snprintf(file, sizeof file, "%s/f", path);
    assert_int_equal(kn_write_file_atomic(file, "x", 1, NULL), KN_OK);
    snprintf(file, sizeof file, "%s/f/g", path);
    assert_int_equal(kn_mkdirs(file, 0755), KN_EXISTS);
    assert_int_equal(kn_mkdirs("", 0755), KN_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_read),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_stdin),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_mkdirs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
