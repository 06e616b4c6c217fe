/*
 * misc.c: small utilities — random UUIDs (libuuid), DNS-1123 label checks
 * and "namespace/name" splitting.
 */
#include <stdio.h>
#include <string.h>
#include <uuid/uuid.h>

#include "common/common.h"

/* Fills buf with a new random (v4) UUID in lower case. Any thread. */
void kn_uuid(char buf[37])
{
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, buf);
}

static bool lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool kn_dns1123_label(const char *s)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    if (n == 0 || n > 63 || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
        return false;
    for (size_t i = 1; i + 1 < n; i++)
        if (!lower_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

/* Splits "ns/name" into its two non-empty parts (no further '/'). Returns
 * false, leaving the outputs unspecified, if the shape is wrong or a part
 * does not fit its buffer. Does not check DNS rules. */
bool kn_split_ns_name(const char *s, char *ns, size_t nsn, char *name,
                      size_t namen)
{
    if (!s)
        return false;
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || !slash[1] || strchr(slash + 1, '/'))
        return false;
    size_t a = (size_t)(slash - s), b = strlen(slash + 1);
    if (a >= nsn || b >= namen)
        return false;
    memcpy(ns, s, a);
    ns[a] = '\0';
    memcpy(name, slash + 1, b + 1);
    return true;
}
