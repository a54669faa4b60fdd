/* helpers.c -- see helpers.h. */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "keys.h"
#include "revoke.h"
#include "tcache.h"
#include "token.h"

char *th_tmpdir(void)
{
    char *d = strdup("/tmp/p2a-unit-XXXXXX");
    if (d == NULL || mkdtemp(d) == NULL)
        abort();
    return d;
}

void th_rmtree(char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        abort();
    free(dir);
}

char *th_write_file(const char *dir, const char *name, const char *text)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
        abort();
    return path;
}

EVP_PKEY *th_write_key(const char *dir, const char *kid)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.pem", dir, kid);
    FILE *f = fopen(path, "w");
    if (k == NULL || f == NULL || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL))
        abort();
    fclose(f);
    return k;
}

char *th_b64url(const void *data, size_t len)
{
    char *out = malloc(len * 4 / 3 + 8);
    int m = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    while (m > 0 && out[m - 1] == '=')
        m--;
    for (int i = 0; i < m; i++)
        out[i] = out[i] == '+' ? '-' : (out[i] == '/' ? '_' : out[i]);
    out[m] = '\0';
    return out;
}

static char *signing_input(const char *h, const char *p)
{
    char *eh = th_b64url(h, strlen(h)), *ep = th_b64url(p, strlen(p));
    size_t n = strlen(eh) + strlen(ep) + 2;
    char *s = malloc(n);
    snprintf(s, n, "%s.%s", eh, ep);
    free(eh);
    free(ep);
    return s;
}

static char *join(char *input, const unsigned char *sig, size_t siglen)
{
    char *es = th_b64url(sig, siglen);
    size_t n = strlen(input) + strlen(es) + 2;
    char *t = malloc(n);
    snprintf(t, n, "%s.%s", input, es);
    free(es);
    free(input);
    return t;
}

char *th_jwt_es256(EVP_PKEY *key, const char *h, const char *p)
{
    return th_jwt_es256_s(key, h, p, false);
}

char *th_jwt_es256_s(EVP_PKEY *key, const char *h, const char *p, bool high_s)
{
    char *input = signing_input(h, p);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[128];
    size_t derlen = sizeof(der);
    if (!EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) ||
        !EVP_DigestSign(md, der, &derlen, (unsigned char *)input, strlen(input)))
        abort();
    EVP_MD_CTX_free(md);
    const unsigned char *pp = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &pp, (long)derlen);
    unsigned char raw[64];
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32);
    /* (r, s) and (r, n - s) both verify; pick the one asked for */
    BIGNUM *n = BN_new(), *half = BN_new(), *sv = BN_dup(ECDSA_SIG_get0_s(sig));
    BN_hex2bn(&n, "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");
    BN_rshift1(half, n);
    if ((BN_cmp(sv, half) > 0) != high_s)
        BN_sub(sv, n, sv);
    BN_bn2binpad(sv, raw + 32, 32);
    BN_free(n);
    BN_free(half);
    BN_free(sv);
    ECDSA_SIG_free(sig);
    return join(input, raw, 64);
}

char *th_jwt_hs256(const void *secret, size_t len, const char *h, const char *p)
{
    char *input = signing_input(h, p);
    unsigned char mac[32];
    unsigned int maclen = sizeof(mac);
    HMAC(EVP_sha256(), secret, (int)len, (unsigned char *)input, strlen(input), mac, &maclen);
    return join(input, mac, maclen);
}

static char *jwt_rsa(EVP_PKEY *key, const char *h, const char *p, bool pss)
{
    char *input = signing_input(h, p);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    if (!EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) ||
        (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                 EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)) ||
        !EVP_DigestSign(md, sig, &siglen, (unsigned char *)input, strlen(input)))
        abort();
    EVP_MD_CTX_free(md);
    return join(input, sig, siglen);
}

char *th_jwt_rs256(EVP_PKEY *key, const char *h, const char *p)
{
    return jwt_rsa(key, h, p, false);
}

char *th_jwt_ps256(EVP_PKEY *key, const char *h, const char *p)
{
    return jwt_rsa(key, h, p, true);
}

static char *bn_b64url(EVP_PKEY *key, const char *param)
{
    BIGNUM *bn = NULL;
    if (!EVP_PKEY_get_bn_param(key, param, &bn))
        abort();
    unsigned char buf[1024];
    int n = BN_bn2bin(bn, buf);
    BN_free(bn);
    return th_b64url(buf, (size_t)n);
}

char *th_jwk_public(EVP_PKEY *key, const char *kid)
{
    char *out = malloc(4096);
    if (EVP_PKEY_is_a(key, "EC")) {
        unsigned char pt[65];
        size_t n = 0;
        if (!EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &n) ||
            n != 65)
            abort();
        char *x = th_b64url(pt + 1, 32), *y = th_b64url(pt + 33, 32);
        snprintf(out, 4096,
                 "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}", kid,
                 x, y);
        free(x);
        free(y);
    } else {
        char *nn = bn_b64url(key, OSSL_PKEY_PARAM_RSA_N),
             *e = bn_b64url(key, OSSL_PKEY_PARAM_RSA_E);
        snprintf(out, 4096, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"}", kid, nn,
                 e);
        free(nn);
        free(e);
    }
    return out;
}

char *th_jwt_unsigned(const char *h, const char *p)
{
    char *input = signing_input(h, p);
    return join(input, (const unsigned char *)"", 0);
}

void th_keyring(char **dir, EVP_PKEY **key, struct keyring **ring)
{
    char err[256];
    *dir = th_tmpdir();
    *key = th_write_key(*dir, "k1");
    if (keys_load(*dir, ring, err, sizeof(err)) != P2A_OK) {
        fprintf(stderr, "th_keyring: %s\n", err);
        abort();
    }
}

void th_keyring_free(char *dir, EVP_PKEY *key, struct keyring *ring)
{
    keys_free(ring);
    EVP_PKEY_free(key);
    th_rmtree(dir);
}

struct th_introspector *th_introspector_new(const char *iss)
{
    struct th_introspector *t = calloc(1, sizeof(*t));
    th_keyring(&t->dir, &t->key, &t->ring);
    t->cfg.issuer = strdup(iss);
    t->cfg.clock_skew_s = 60;
    t->revoked = revoke_new(20000);
    t->cache = tcache_new(64, 1 << 20);
    t->x = (struct introspector){
        .cfg = &t->cfg, .keys = t->ring, .revoked = t->revoked, .cache = t->cache};
    return t;
}

void th_introspector_free(struct th_introspector *t)
{
    token_thread_cleanup();
    tcache_free(t->cache);
    revoke_free(t->revoked);
    th_keyring_free(t->dir, t->key, t->ring);
    free(t->cfg.issuer);
    free(t);
}
