/* keys.c -- loading the keyring (see keys.h).
 *
 * Each key is kept three ways: the EVP_PKEY of its public half, its public PEM (what libjwt
 * wants to verify) and its private PEM (what libjwt wants to sign). All are made here, once,
 * on the main thread before workers start. The private PEM is cleansed when freed.
 */
#include "keys.h"

#include <dirent.h>
#include <stdatomic.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>

#include "codec.h"
#include "xalloc.h"

struct keyring {
    struct signing_key keys[KEYS_MAX];
    size_t n;
    size_t signer;
    unsigned long long serial;
};

static atomic_ullong next_serial = 1;

static bool kid_ok(const char *s, size_t n)
{
    if (n == 0 || n > KEYS_MAX_KID)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static char *bio_to_string(BIO *b, size_t *len)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = xstrndup(data, n > 0 ? (size_t)n : 0);
    *len = n > 0 ? (size_t)n : 0;
    return s;
}

static bool is_p256(EVP_PKEY *pk)
{
    char group[64];
    size_t glen = 0;
    if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC)
        return false;
    if (!EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), &glen))
        return false;
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

static p2a_err load_one(struct signing_key *k, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open signing key %s: %s", path, strerror(errno));
        return P2A_ERR_INVALID;
    }
    EVP_PKEY *pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (pk == NULL || !is_p256(pk)) {
        ERR_clear_error();
        EVP_PKEY_free(pk);
        snprintf(err, errlen, "signing key %s is not a PEM EC P-256 private key", path);
        return P2A_ERR_INVALID;
    }
    BIO *priv = BIO_new(BIO_s_secmem());
    BIO *pub = BIO_new(BIO_s_mem());
    if (priv == NULL || pub == NULL || !PEM_write_bio_PrivateKey(priv, pk, NULL, NULL, 0, NULL, NULL) ||
        !PEM_write_bio_PUBKEY(pub, pk)) {
        BIO_free(priv);
        BIO_free(pub);
        EVP_PKEY_free(pk);
        ERR_clear_error();
        snprintf(err, errlen, "cannot encode signing key %s", path);
        return P2A_ERR_INVALID;
    }
    k->priv_pem = bio_to_string(priv, &k->priv_pem_len);
    k->pub_pem = bio_to_string(pub, &k->pub_pem_len);
    BIO_free(priv);
    BIO_free(pub);
    /* keep only the public half in memory as a key object */
    k->pub = NULL;
    BIO *pb = BIO_new_mem_buf(k->pub_pem, (int)k->pub_pem_len);
    if (pb != NULL)
        k->pub = PEM_read_bio_PUBKEY(pb, NULL, NULL, NULL);
    BIO_free(pb);
    EVP_PKEY_free(pk);
    if (k->pub == NULL) {
        ERR_clear_error();
        snprintf(err, errlen, "cannot read back the public half of %s", path);
        return P2A_ERR_INVALID;
    }
    k->alg = "ES256";
    return P2A_OK;
}

static void key_deinit(struct signing_key *k)
{
    if (k->priv_pem != NULL) {
        OPENSSL_cleanse(k->priv_pem, k->priv_pem_len);
        free(k->priv_pem);
    }
    free(k->pub_pem);
    EVP_PKEY_free(k->pub);
    memset(k, 0, sizeof(*k));
}

void keys_free(struct keyring *ring)
{
    if (ring == NULL)
        return;
    for (size_t i = 0; i < ring->n; i++)
        key_deinit(&ring->keys[i]);
    free(ring);
}

p2a_err keys_load(const char *dir, struct keyring **out, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(err, errlen, "cannot open PIPE2_AUTH_KEYS_DIR %s: %s", dir, strerror(errno));
        return P2A_ERR_INVALID;
    }
    struct keyring *ring = xcalloc(1, sizeof(*ring));
    ring->serial = atomic_fetch_add(&next_serial, 1);
    struct dirent *de;
    p2a_err rc = P2A_OK;
    while (rc == P2A_OK && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".pem") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (!kid_ok(de->d_name, n - 4)) {
            snprintf(err, errlen,
                     "signing key file %s: the name before .pem is the kid: 1 to 64 of "
                     "A-Z a-z 0-9 - _ .",
                     path);
            rc = P2A_ERR_INVALID;
            break;
        }
        if (ring->n == KEYS_MAX) {
            snprintf(err, errlen, "more than %d signing keys in %s", KEYS_MAX, dir);
            rc = P2A_ERR_INVALID;
            break;
        }
        struct signing_key *k = &ring->keys[ring->n];
        memcpy(k->kid, de->d_name, n - 4);
        k->kid[n - 4] = '\0';
        k->mtime = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        rc = load_one(k, path, err, errlen);
        if (rc == P2A_OK)
            ring->n++;
        else
            key_deinit(k);
    }
    closedir(d);
    if (rc == P2A_OK && ring->n == 0) {
        snprintf(err, errlen, "no signing keys (<kid>.pem) in %s", dir);
        rc = P2A_ERR_INVALID;
    }
    if (rc != P2A_OK) {
        keys_free(ring);
        return rc;
    }
    for (size_t i = 1; i < ring->n; i++) {
        const struct signing_key *a = &ring->keys[i], *b = &ring->keys[ring->signer];
        if (a->mtime > b->mtime || (a->mtime == b->mtime && strcmp(a->kid, b->kid) > 0))
            ring->signer = i;
    }
    *out = ring;
    return P2A_OK;
}

const struct signing_key *keys_find(const struct keyring *ring, const char *kid, size_t len)
{
    for (size_t i = 0; i < ring->n; i++)
        if (strlen(ring->keys[i].kid) == len && memcmp(ring->keys[i].kid, kid, len) == 0)
            return &ring->keys[i];
    return NULL;
}

const struct signing_key *keys_signer(const struct keyring *ring)
{
    return &ring->keys[ring->signer];
}

unsigned long long keys_serial(const struct keyring *ring)
{
    return ring->serial;
}

size_t keys_count(const struct keyring *ring)
{
    return ring->n;
}

static bool coordinate(const EVP_PKEY *pub, const char *name, char out[48])
{
    BIGNUM *bn = NULL;
    unsigned char raw[32];
    bool ok = EVP_PKEY_get_bn_param(pub, name, &bn) == 1 &&
              BN_bn2binpad(bn, raw, sizeof(raw)) == (int)sizeof(raw);
    BN_free(bn);
    if (ok)
        codec_b64url_encode(raw, sizeof(raw), out);
    return ok;
}

char *keys_jwks(const struct keyring *ring)
{
    size_t cap = 64 + ring->n * 256, len = 0;
    char *out = xmalloc(cap);
    len += (size_t)snprintf(out, cap, "{\"keys\":[");
    for (size_t i = 0; i < ring->n; i++) {
        const struct signing_key *k = &ring->keys[i];
        char x[48], y[48];
        if (!coordinate(k->pub, OSSL_PKEY_PARAM_EC_PUB_X, x) ||
            !coordinate(k->pub, OSSL_PKEY_PARAM_EC_PUB_Y, y))
            continue;
        len += (size_t)snprintf(out + len, cap - len,
                                "%s{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\","
                                "\"y\":\"%s\",\"kid\":\"%s\",\"alg\":\"ES256\","
                                "\"use\":\"sig\"}",
                                len > 9 ? "," : "", x, y, k->kid);
    }
    snprintf(out + len, cap - len, "]}");
    return out;
}
