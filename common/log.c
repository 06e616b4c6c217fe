/*
 * log.c: levelled logging to stderr (or a configured fd), as text lines
 * ("2024-05-01T10:00:00.123Z INFO  component: message") or JSON lines
 * ({"ts":RFC3339,"level":"info","component":..,"msg":..}).
 *
 * Thread-safety: settings are atomics; each line is formatted into its own
 * buffer and written with one write(2) under a mutex, so lines from
 * different threads never interleave.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <unistd.h>

#include "common/common.h"
#include "common/internal.h"

static atomic_int log_level = KN_LOG_INFO;
static atomic_bool log_json = false;
static atomic_int log_fd = STDERR_FILENO;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};

void kn_log_init(kn_log_level level, bool json)
{
    kn_log_set_level(level);
    atomic_store(&log_json, json);
}

void kn_log_set_level(kn_log_level level)
{
    if (level < KN_LOG_DEBUG)
        level = KN_LOG_DEBUG;
    if (level > KN_LOG_ERROR)
        level = KN_LOG_ERROR;
    atomic_store(&log_level, (int)level);
}

void kn_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

bool kn_log_enabled(kn_log_level level)
{
    return (int)level >= atomic_load_explicit(&log_level,
                                              memory_order_relaxed);
}

const char *kn_log_level_str(kn_log_level level)
{
    if (level < KN_LOG_DEBUG || level > KN_LOG_ERROR)
        return "unknown";
    return level_names[level];
}

/* Accepts debug, info, warn, warning, error (any case). KN_INVAL for
 * anything else (*out untouched). */
int kn_log_level_parse(const char *s, kn_log_level *out)
{
    if (!s)
        return KN_INVAL;
    for (int i = KN_LOG_DEBUG; i <= KN_LOG_ERROR; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (kn_log_level)i;
            return KN_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = KN_LOG_WARN;
        return KN_OK;
    }
    return KN_INVAL;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    unsigned cp = c & (0x3fu >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Appends s as the inside of a JSON string: escapes quotes, backslashes
 * and control characters; invalid UTF-8 becomes U+FFFD. */
static int json_escape(ce_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        unsigned c = p[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            rc = ce_buf_append(b, e, 2);
            i++;
        } else if (c == '\n') {
            rc = ce_buf_puts(b, "\\n");
            i++;
        } else if (c == '\t') {
            rc = ce_buf_puts(b, "\\t");
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            rc = ce_buf_printf(b, "\\u%04x", c);
            i++;
        } else {
            size_t l = utf8_len(p + i, n - i);
            rc = l ? ce_buf_append(b, p + i, l)
                   : ce_buf_puts(b, "\\ufffd");
            i += l ? l : 1;
        }
    }
    return rc;
}

/* Text lines keep the message as is, except newlines and other control
 * characters are escaped so one call is always one line. */
static int text_escape(ce_buf *b, const char *s)
{
    int rc = 0;
    for (const char *p = s; *p && rc == 0; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\n')
            rc = ce_buf_puts(b, "\\n");
        else if (c < 0x20 && c != '\t')
            rc = ce_buf_printf(b, "\\x%02x", c);
        else
            rc = ce_buf_append(b, p, 1);
    }
    return rc;
}

static int format_line(ce_buf *b, kn_log_level level, const char *comp,
                       const char *msg)
{
    char ts[CE_TIME_MAX];
    /* Millisecond precision is enough for logs: cut "…SS.mmm" + "Z". */
    size_t tl = kn_time_format_ns(kn_now_wall_ns(), ts);
    if (tl > 24) {
        ts[23] = 'Z';
        ts[24] = '\0';
    }
    int lv = level < KN_LOG_DEBUG || level > KN_LOG_ERROR ? KN_LOG_ERROR
                                                            : (int)level;
    comp = comp ? comp : "";
    int rc;
    if (atomic_load(&log_json)) {
        rc = ce_buf_printf(b, "{\"ts\":\"%s\",\"level\":\"%s\","
                           "\"component\":\"", ts, level_names[lv]);
        rc = rc ? rc : json_escape(b, comp);
        rc = rc ? rc : ce_buf_puts(b, "\",\"msg\":\"");
        rc = rc ? rc : json_escape(b, msg);
        rc = rc ? rc : ce_buf_puts(b, "\"}\n");
    } else {
        rc = ce_buf_printf(b, "%s %s %s%s", ts, level_tags[lv], comp,
                           comp[0] ? ": " : "");
        rc = rc ? rc : text_escape(b, msg);
        rc = rc ? rc : ce_buf_puts(b, "\n");
    }
    return rc;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere left to report a logging failure */
        p += w;
        n -= (size_t)w;
    }
}

/* Formats and writes one line if `level` is enabled. Any thread. Never
 * fails visibly: when memory runs out the bare message is written. */
void kn_log_write(kn_log_level level, const char *component, const char *fmt,
                  ...)
{
    if (!kn_log_enabled(level))
        return;
    int saved_errno = errno;
    ce_buf msg = CE_BUF_INIT, line = CE_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    int rc = ce_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    if (rc == 0)
        rc = format_line(&line, level, component, msg.data);
    int fd = atomic_load(&log_fd);
    pthread_mutex_lock(&log_mu);
    if (rc == 0)
        write_all(fd, line.data, line.len);
    else
        write_all(fd, "log: out of memory formatting a message\n", 40);
    pthread_mutex_unlock(&log_mu);
    free(msg.data);
    free(line.data);
    errno = saved_errno;
}
