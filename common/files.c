/*
 * files.c: whole-file reads (including "-" for stdin), atomic file
 * replacement (temporary file, fsync, rename, fsync of the directory) and
 * mkdir -p.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"

static int errno_status(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return KN_NOTFOUND;
    case ENOSPC:
    case EDQUOT:
        return KN_NOSPACE;
    case ENOMEM:
        return KN_NOMEM;
    case EEXIST:
        return KN_EXISTS;
    default:
        return KN_IO;
    }
}

static int read_fd(int fd, ce_buf *out)
{
    for (;;) {
        if (ce_buf_reserve(out, 65536) != 0)
            return KN_NOMEM;
        ssize_t r = read(fd, out->data + out->len, out->cap - out->len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno_status(errno);
        if (r == 0)
            break;
        out->len += (size_t)r;
    }
    out->data[out->len] = '\0';
    return KN_OK;
}

/* Reads all of `path` ("-" = standard input) into *out, replacing its
 * content; out->data is NUL-terminated (not counted in len). Errors:
 * KN_NOTFOUND, KN_IO, KN_NOMEM with err->msg naming the file and reason.
 * The caller owns out (ce_buf_free). Any thread. */
int kn_read_file(const char *path, ce_buf *out, kn_err *err)
{
    bool is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return kn_err_set(err, errno_status(e), "cannot open %s: %s", path,
                          strerror(e));
    }
    struct stat st;
    if (!is_stdin && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return kn_err_set(err, KN_INVAL, "cannot read %s: is a directory",
                          path);
    }
    out->len = 0;
    int rc = read_fd(fd, out);
    int e = errno;
    if (!is_stdin)
        close(fd);
    if (rc == KN_NOMEM)
        return kn_err_set(err, rc, "cannot read %s: out of memory", path);
    if (rc != KN_OK)
        return kn_err_set(err, rc, "cannot read %s: %s",
                          is_stdin ? "standard input" : path, strerror(e));
    return KN_OK;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsyncs the directory holding `path` so a rename in it is durable. */
static int fsync_parent(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Replaces `path` with the n bytes at p so that a crash leaves either the
 * old or the new content: writes "<path>.tmp.<pid>.<seq>", fsyncs it,
 * renames it over path and fsyncs the directory. On error the temporary
 * file is removed; status KN_NOSPACE / KN_NOTFOUND / KN_IO with err->msg
 * naming the step. Concurrent writers of one path: the last rename wins. */
int kn_write_file_atomic(const char *path, const void *p, size_t n,
                         kn_err *err)
{
    static atomic_uint seq;
    char tmp[4096 + 64];
    int len = snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path,
                       (long)getpid(), atomic_fetch_add(&seq, 1));
    if (len < 0 || (size_t)len >= sizeof tmp)
        return kn_err_set(err, KN_INVAL, "path too long: %.200s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        return kn_err_set(err, errno_status(e), "cannot create %s: %s", tmp,
                          strerror(e));
    }
    const char *step = "write";
    int e = 0;
    if (write_all(fd, p, n) != 0 || (step = "fsync", fsync(fd) != 0))
        e = errno;
    if (close(fd) != 0 && !e) {
        e = errno;
        step = "close";
    }
    if (!e && rename(tmp, path) != 0) {
        e = errno;
        step = "rename";
    }
    if (e) {
        unlink(tmp);
        return kn_err_set(err, errno_status(e), "cannot %s %s: %s", step,
                          path, strerror(e));
    }
    if (fsync_parent(path) != 0) {
        e = errno;
        return kn_err_set(err, errno_status(e), "cannot fsync the directory "
                          "of %s: %s", path, strerror(e));
    }
    return KN_OK;
}

/* Creates path and its missing parents with `mode` (like mkdir -p).
 * Existing directories are fine. Returns KN_OK or a status with errno
 * left set (KN_EXISTS when a component is not a directory). */
int kn_mkdirs(const char *path, int mode)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) {
        errno = n ? ENAMETOOLONG : ENOENT;
        return KN_INVAL;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        if (buf[i - 1] == '/')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, (mode_t)mode) != 0) {
            int e = errno;
            struct stat st;
            if (e != EEXIST || stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
                errno = e == EEXIST ? ENOTDIR : e;
                return e == EEXIST ? KN_EXISTS : errno_status(e);
            }
        }
        buf[i] = c;
    }
    return KN_OK;
}
