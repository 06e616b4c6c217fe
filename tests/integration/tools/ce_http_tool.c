/*
 * ce_http_tool: the HTTP binding of libknit-cloudevents as a command, for
 * interop tests with other CloudEvents implementations.
 *
 *   ce_http_tool decode [--lenient] HEADERS.json BODY
 *       Decodes the HTTP message whose headers are a JSON object
 *       {"name": "value", ...} and whose body is the file BODY; prints the
 *       event in the JSON format (a JSON array for a batch) on stdout.
 *   ce_http_tool encode binary|structured EVENT.json HEADERS_OUT BODY_OUT
 *       Reads one event in the JSON format, encodes it in the given mode
 *       and writes the headers (JSON object) and the body (raw bytes).
 *
 * Exit status: 0 on success, 1 on a CloudEvents error (message on stderr),
 * 2 on a usage or I/O error.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cloudevents/cloudevents.h"

static int read_file(const char *path, ce_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (ce_buf_append(out, chunk, n) != CE_OK) {
            fclose(f);
            return -1;
        }
    int bad = ferror(f);
    fclose(f);
    return bad ? -1 : 0;
}

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

static int fail(const char *what, const ce_err *err)
{
    fprintf(stderr, "%s: %s: %s (attribute '%s')\n", what,
            ce_code_str(err->code), err->msg, err->attr);
    return 1;
}

static int cmd_decode(int argc, char **argv)
{
    unsigned flags = 0;
    if (argc > 0 && strcmp(argv[0], "--lenient") == 0) {
        flags |= CE_DECODE_LENIENT;
        argc--;
        argv++;
    }
    if (argc != 2)
        return 2;
    json_error_t je;
    json_t *hj = json_load_file(argv[0], 0, &je);
    if (!json_is_object(hj)) {
        fprintf(stderr, "%s: not a JSON object: %s\n", argv[0], je.text);
        json_decref(hj);
        return 2;
    }
    ce_header hs[128];
    size_t nh = 0;
    const char *k;
    json_t *v;
    json_object_foreach(hj, k, v) {
        if (!json_is_string(v) || nh == 128) {
            fprintf(stderr, "header %s: not a string (or too many)\n", k);
            json_decref(hj);
            return 2;
        }
        hs[nh++] = (ce_header){k, strlen(k), json_string_value(v),
                               json_string_length(v)};
    }
    ce_buf body = CE_BUF_INIT, out = CE_BUF_INIT;
    ce_event **evs = NULL;
    size_t n = 0;
    ce_err err = {0};
    int rc = 2;
    if (read_file(argv[1], &body) != 0)
        goto done;
    rc = 1;
    if (ce_http_decode(hs, nh, body.data, body.len, flags, &evs, &n, &err)) {
        fail("decode", &err);
        goto done;
    }
    const char *ct = NULL;
    for (size_t i = 0; i < nh; i++)
        if (strcasecmp(hs[i].name, "content-type") == 0)
            ct = hs[i].value;
    if ((ct && ce_http_mode(ct, strlen(ct)) == CE_MODE_BATCH
             ? ce_json_encode_batch(evs, n, &out, &err)
             : ce_json_encode(evs[0], &out, &err)) != CE_OK) {
        fail("encode", &err);
        goto done;
    }
    fwrite(out.data, 1, out.len, stdout);
    putchar('\n');
    rc = 0;
done:
    ce_events_free(evs, n);
    ce_buf_free(&body);
    ce_buf_free(&out);
    json_decref(hj);
    return rc;
}

static int cmd_encode(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    ce_mode mode;
    if (strcmp(argv[0], "binary") == 0)
        mode = CE_MODE_BINARY;
    else if (strcmp(argv[0], "structured") == 0)
        mode = CE_MODE_STRUCTURED;
    else
        return 2;
    ce_buf in = CE_BUF_INIT, body = CE_BUF_INIT;
    ce_event *ev = NULL;
    ce_err err = {0};
    ce_headers h = {0};
    json_t *hj = NULL;
    int rc = 2;
    if (read_file(argv[1], &in) != 0)
        goto done;
    rc = 1;
    if (ce_json_decode(in.data, in.len, &ev, &err) != CE_OK) {
        fail("decode", &err);
        goto done;
    }
    if (ce_http_encode(ev, mode, &h, &body, &err) != CE_OK) {
        fail("encode", &err);
        goto done;
    }
    hj = json_object();
    for (size_t i = 0; i < h.count; i++)
        json_object_set_new(hj, h.items[i].name,
                            json_stringn(h.items[i].value,
                                         h.items[i].value_len));
    rc = json_dump_file(hj, argv[2], JSON_COMPACT) != 0 ||
         write_file(argv[3], body.data ? body.data : "", body.len) != 0
         ? 2 : 0;
done:
    json_decref(hj);
    ce_headers_free(&h);
    ce_buf_free(&in);
    ce_buf_free(&body);
    ce_event_unref(ev);
    return rc;
}

int main(int argc, char **argv)
{
    int rc = 2;
    if (argc >= 2 && strcmp(argv[1], "decode") == 0)
        rc = cmd_decode(argc - 2, argv + 2);
    else if (argc >= 2 && strcmp(argv[1], "encode") == 0)
        rc = cmd_encode(argc - 2, argv + 2);
    if (rc == 2)
        fprintf(stderr, "usage: ce_http_tool decode [--lenient] HEADERS.json "
                        "BODY\n       ce_http_tool encode binary|structured "
                        "EVENT.json HEADERS_OUT BODY_OUT\n");
    return rc;
}
