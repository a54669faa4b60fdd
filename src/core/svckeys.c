/* svckeys.c -- loading and checking service keys (see svckeys.h). */
#include "svckeys.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "codec.h"
#include "digest.h"
#include "strlist.h"
#include "url.h"
#include "xalloc.h"

#define SVCKEYS_MAX 1024

struct svc_entry {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    struct svc_key key;
    char *bound[SVCKEYS_MAX_BOUND]; /* what key.resources points at */
};

struct svckeys {
    struct svc_entry *v;
    size_t n;
};

/* "resource=<url>[,<url>]" into e's bound resources. */
static bool parse_bound(const char *list, struct svc_entry *e, const char **why)
{
    for (struct strlist it = strlist_of(list, ","); strlist_next(&it);) {
        if (e->key.nresources == SVCKEYS_MAX_BOUND) {
            *why = "resource= names more than 16 resources";
            return false;
        }
        char *u = xstrndup(it.item, it.len);
        e->bound[e->key.nresources++] = u;
        if (!url_is_http(u)) {
            *why = "resource= must list http(s) URLs separated by commas";
            return false;
        }
    }
    if (e->key.nresources == 0) {
        *why = "resource= names no resource";
        return false;
    }
    e->key.resources = (const char *const *)e->bound;
    return true;
}

/* The label, and the binding when the line ends with resource=. */
static bool parse_rest(char *rest, struct svc_entry *e, const char **why)
{
    while (rest != NULL && (*rest == ' ' || *rest == '\t'))
        rest++;
    char *last = rest ? strrchr(rest, ' ') : NULL, *tab = rest ? strrchr(rest, '\t') : NULL;
    if (tab != NULL && (last == NULL || tab > last))
        last = tab;
    char *field = last ? last + 1 : rest;
    if (field != NULL && strncmp(field, "resource=", 9) == 0) {
        if (e->key.role != SVC_ROLE_INTROSPECT) {
            *why = "only an introspect key is bound to resources";
            return false;
        }
        if (!parse_bound(field + 9, e, why))
            return false;
        *field = '\0';
        for (char *p = field; p > rest && (p[-1] == ' ' || p[-1] == '\t');)
            *--p = '\0';
    }
    snprintf(e->key.label, sizeof(e->key.label), "%s", rest ? rest : "");
    return true;
}

static bool parse_line(char *line, struct svc_entry *e, const char **why)
{
    char *save = NULL;
    char *role = strtok_r(line, " \t", &save);
    char *hex = strtok_r(NULL, " \t", &save);
    char *rest = strtok_r(NULL, "", &save);
    if (strcmp(role, "introspect") == 0) {
        e->key.role = SVC_ROLE_INTROSPECT;
    } else if (strcmp(role, "admin") == 0) {
        e->key.role = SVC_ROLE_ADMIN;
    } else {
        *why = "role must be introspect or admin";
        return false;
    }
    if (hex == NULL || strlen(hex) != 2 * SHA256_DIGEST_LENGTH) {
        *why = "expected the 64-digit sha256 hex of the key";
        return false;
    }
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        int hi = codec_hexval(hex[2 * i]), lo = codec_hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            *why = "digest is not hex";
            return false;
        }
        e->digest[i] = (unsigned char)(hi << 4 | lo);
    }
    return parse_rest(rest, e, why);
}

p2a_err svckeys_load(const char *path, struct svckeys **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open PIPE2_AUTH_SERVICE_KEYS_FILE %s: %s", path,
                 strerror(errno));
        return P2A_ERR_INVALID;
    }
    struct svckeys *keys = xcalloc(1, sizeof(*keys));
    keys->v = xcalloc(SVCKEYS_MAX, sizeof(*keys->v));
    char line[1024];
    int lineno = 0;
    p2a_err rc = P2A_OK;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        size_t n = strlen(line);
        if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
            snprintf(err, errlen, "%s:%d: line too long", path, lineno);
            rc = P2A_ERR_INVALID;
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
            line[--n] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        if (keys->n == SVCKEYS_MAX) {
            snprintf(err, errlen, "%s: more than %d keys", path, SVCKEYS_MAX);
            rc = P2A_ERR_INVALID;
            break;
        }
        const char *why = NULL;
        bool ok = parse_line(p, &keys->v[keys->n], &why);
        keys->n++; /* counted either way: freed with the rest */
        if (!ok) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
            rc = P2A_ERR_INVALID;
            break;
        }
    }
    fclose(f);
    if (rc == P2A_OK && keys->n == 0) {
        snprintf(err, errlen, "%s holds no service keys", path);
        rc = P2A_ERR_INVALID;
    }
    if (rc != P2A_OK) {
        svckeys_free(keys);
        return rc;
    }
    *out = keys;
    return P2A_OK;
}

void svckeys_free(struct svckeys *keys)
{
    if (keys == NULL)
        return;
    for (size_t i = 0; i < keys->n; i++)
        for (size_t j = 0; j < keys->v[i].key.nresources; j++)
            free(keys->v[i].bound[j]);
    free(keys->v);
    free(keys);
}

size_t svckeys_count(const struct svckeys *keys)
{
    return keys->n;
}

enum svc_role svckeys_check(const struct svckeys *keys, const char *key, size_t len,
                            const struct svc_key **entry)
{
    if (len == 0 || len > SVCKEYS_MAX_KEY_LEN)
        return SVC_ROLE_NONE;
    unsigned char d[SHA256_DIGEST_LENGTH];
    digest_sha256(key, len, d);
    enum svc_role role = SVC_ROLE_NONE;
    if (entry != NULL)
        *entry = NULL;
    /* look at every entry whatever matched, so timing says nothing about which did */
    for (size_t i = 0; i < keys->n; i++) {
        if (CRYPTO_memcmp(d, keys->v[i].digest, sizeof(d)) == 0) {
            role = keys->v[i].key.role;
            if (entry != NULL)
                *entry = &keys->v[i].key;
        }
    }
    return role;
}
