/*
 * conftest.h: reading the conformance data with libyaml for the replay
 * tests (0104 JSON format, 0160 HTTP binding, 0200 CESQL TCK): where the
 * data is, every document of a file, the .yaml files of a directory,
 * mapping lookups and header-style trimming. cmocka: a file that cannot
 * be read fails the test. Header-only; each test binary includes it once.
 */
#ifndef KNIT_TESTS_CONFTEST_H
#define KNIT_TESTS_CONFTEST_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* $KNIT_SHARED_DIR/conformance/<rel> (ctest sets it), else
 * $KNIT_SOURCE_DIR/../shared/conformance/<rel>. */
static inline void cf_path(char *buf, size_t n, const char *rel)
{
    const char *shared = getenv("KNIT_SHARED_DIR");
    const char *src = getenv("KNIT_SOURCE_DIR");
    if (shared && *shared)
        snprintf(buf, n, "%s/conformance/%s", shared, rel);
    else
        snprintf(buf, n, "%s/../shared/conformance/%s",
                 src && *src ? src : ".", rel);
}

/* The text of a scalar node; NULL for anything else. */
static inline const char *cf_scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE
           ? (const char *)n->data.scalar.value : NULL;
}

/* The value of `key` in a mapping node; NULL if absent or not a map. */
static inline yaml_node_t *cf_map_get(yaml_document_t *d, yaml_node_t *map,
                                      const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        const char *k = cf_scalar(yaml_document_get_node(d, p->key));
        if (k && strcmp(k, key) == 0)
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

/* s without surrounding whitespace, as an HTTP header would carry it (YAML
 * block scalars end in a newline); its length in *n. */
static inline const char *cf_trim(const char *s, size_t *n)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t l = strlen(s);
    while (l && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\r' ||
                 s[l - 1] == '\n'))
        l--;
    *n = l;
    return s;
}

/* Calls fn for every document of the YAML file at path (index from 0);
 * returns how many there were. */
typedef void (*cf_doc_fn)(void *ctx, const char *path, size_t index,
                          yaml_document_t *d);

static inline size_t cf_each_doc(const char *path, cf_doc_fn fn, void *ctx)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    yaml_parser_t p;
    assert_true(yaml_parser_initialize(&p));
    yaml_parser_set_input_file(&p, f);
    size_t count = 0;
    for (;;) {
        yaml_document_t d;
        if (!yaml_parser_load(&p, &d))
            fail_msg("%s: YAML error: %s", path, p.problem);
        if (!yaml_document_get_root_node(&d)) {
            yaml_document_delete(&d);
            break;
        }
        fn(ctx, path, count++, &d);
        yaml_document_delete(&d);
    }
    yaml_parser_delete(&p);
    fclose(f);
    return count;
}

static inline int cf_strcmp_p(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The paths of the *.yaml files in dir, sorted by name (malloc'd, each
 * and the array; NULL-terminated); *n = how many. */
static inline char **cf_yaml_files(const char *dir, size_t *n)
{
    DIR *dp = opendir(dir);
    if (!dp)
        fail_msg("cannot open %s", dir);
    char **paths = NULL;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l <= 5 || strcmp(e->d_name + l - 5, ".yaml") != 0)
            continue;
        paths = realloc(paths, (count + 2) * sizeof *paths);
        assert_non_null(paths);
        paths[count] = malloc(strlen(dir) + l + 2);
        assert_non_null(paths[count]);
        sprintf(paths[count], "%s/%s", dir, e->d_name);
        count++;
    }
    closedir(dp);
    if (paths) {
        qsort(paths, count, sizeof *paths, cf_strcmp_p);
        paths[count] = NULL;
    }
    *n = count;
    return paths;
}

static inline void cf_free_files(char **paths)
{
    for (size_t i = 0; paths && paths[i]; i++)
        free(paths[i]);
    free(paths);
}

#endif
