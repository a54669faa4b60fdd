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
#include "xalloc.h"

#define SVCKEYS_MAX 1024

struct svc_entry {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    enum svc_role role;
    char label[64];
};

struct svckeys {
    struct svc_entry *v;
    size_t n;
};

static bool parse_line(char *line, struct svc_entry *e, const char **why)
{
    char *save = NULL;
    char *role = strtok_r(line, " \t", &save);
    char *hex = strtok_r(NULL, " \t", &save);
    char *label = strtok_r(NULL, "", &save);
    if (strcmp(role, "introspect") == 0) {
        e->role = SVC_ROLE_INTROSPECT;
    } else if (strcmp(role, "admin") == 0) {
        e->role = SVC_ROLE_ADMIN;
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
    while (label != NULL && (*label == ' ' || *label == '\t'))
        label++;
    snprintf(e->label, sizeof(e->label), "%s", label ? label : "");
    return true;
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
        if (!parse_line(p, &keys->v[keys->n], &why)) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
            rc = P2A_ERR_INVALID;
            break;
        }
        keys->n++;
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
    free(keys->v);
    free(keys);
}

size_t svckeys_count(const struct svckeys *keys)
{
    return keys->n;
}

enum svc_role svckeys_check(const struct svckeys *keys, const char *key, size_t len,
                            const char **label)
{
    if (len == 0 || len > SVCKEYS_MAX_KEY_LEN)
        return SVC_ROLE_NONE;
    unsigned char d[SHA256_DIGEST_LENGTH];
    digest_sha256(key, len, d);
    enum svc_role role = SVC_ROLE_NONE;
    /* look at every entry whatever matched, so timing says nothing about which did */
    for (size_t i = 0; i < keys->n; i++) {
        if (CRYPTO_memcmp(d, keys->v[i].digest, sizeof(d)) == 0) {
            role = keys->v[i].role;
            if (label != NULL)
                *label = keys->v[i].label;
        }
    }
    return role;
}
