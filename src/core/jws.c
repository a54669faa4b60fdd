/* jws.c -- see jws.h. */
#include "jws.h"

#include <stdbool.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "codec.h"
#include "xalloc.h"

size_t jws_es256_der(const unsigned char raw[64], unsigned char der[72])
{
    size_t body = 0;
    for (int half = 0; half < 2; half++) { /* INTEGER r, then INTEGER s */
        const unsigned char *v = raw + 32 * half;
        size_t i = 0;
        while (i < 31 && v[i] == 0)
            i++;
        size_t n = 32 - i, pad = (v[i] & 0x80) ? 1 : 0; /* DER integers are signed */
        unsigned char *out = der + 2 + body;
        out[0] = 0x02;
        out[1] = (unsigned char)(n + pad);
        out[2] = 0;
        memcpy(out + 2 + pad, v + i, n);
        body += 2 + pad + n;
    }
    der[0] = 0x30;
    der[1] = (unsigned char)body;
    return 2 + body;
}

/* ---- keys --------------------------------------------------------------------------------- */

/* A base64url member decoded into out (at most cap bytes, cap <= 1024): its length, or -1. */
static long b64_member(json_t *jwk, const char *name, unsigned char *out, size_t cap)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    unsigned char buf[1024 + 4]; /* the decoder wants room for a last partial group */
    if (s == NULL || cap > 1024 || strlen(s) > (cap + 2) / 3 * 4)
        return -1;
    long n = codec_b64url_decode(s, strlen(s), buf, cap + 4);
    if (n < 0 || (size_t)n > cap)
        return -1;
    memcpy(out, buf, (size_t)n);
    return n;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *b)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(b);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *key = NULL;
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
        key = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return key;
}

static EVP_PKEY *ec_key(json_t *jwk, const char **why)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    unsigned char pt[65];
    if (crv == NULL || strcmp(crv, "P-256") != 0) {
        *why = "an EC key must be on P-256";
        return NULL;
    }
    pt[0] = 0x04; /* uncompressed point: x || y */
    if (b64_member(jwk, "x", pt + 1, 32) != 32 || b64_member(jwk, "y", pt + 33, 32) != 32) {
        *why = "an EC key needs x and y of 32 bytes";
        return NULL;
    }
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    EVP_PKEY *key = NULL;
    if (b != NULL &&
        OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
        OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)))
        key = from_params("EC", b);
    OSSL_PARAM_BLD_free(b);
    if (key == NULL)
        *why = "the EC key is not a point on P-256";
    return key;
}

static EVP_PKEY *rsa_key(json_t *jwk, const char **why)
{
    unsigned char n[1024], e[8];
    long nl = b64_member(jwk, "n", n, sizeof(n)), el = b64_member(jwk, "e", e, sizeof(e));
    if (nl < 256 || el < 1) {
        *why = "an RSA key needs n of 2048 to 8192 bits and e";
        return NULL;
    }
    BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    EVP_PKEY *key = NULL;
    if (bn != NULL && be != NULL && b != NULL && BN_num_bits(bn) >= 2048 &&
        OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be))
        key = from_params("RSA", b);
    OSSL_PARAM_BLD_free(b);
    BN_free(bn);
    BN_free(be);
    if (key == NULL)
        *why = "the RSA key is not usable (n of 2048 to 8192 bits, e)";
    return key;
}

EVP_PKEY *jws_key_from_jwk(json_t *jwk, const char **why)
{
    static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "k"};
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    if (!json_is_object(jwk) || kty == NULL) {
        *why = "a key must be a JWK object with kty";
        return NULL;
    }
    for (size_t i = 0; i < sizeof(private_members) / sizeof(private_members[0]); i++) {
        if (json_object_get(jwk, private_members[i]) != NULL) {
            *why = "a published key must not hold private parameters";
            return NULL;
        }
    }
    if (strcmp(kty, "EC") == 0)
        return ec_key(jwk, why);
    if (strcmp(kty, "RSA") == 0)
        return rsa_key(jwk, why);
    *why = "keys must be EC (P-256) or RSA";
    return NULL;
}

const char *jws_keys_check(json_t *jwks)
{
    json_t *keys = json_object_get(jwks, "keys");
    if (!json_is_array(keys) || json_array_size(keys) == 0 || json_array_size(keys) > JWS_MAX_KEYS)
        return "jwks must be an object whose keys holds 1 to 8 keys";
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        const char *why = NULL;
        EVP_PKEY *key = jws_key_from_jwk(k, &why);
        if (key == NULL)
            return why;
        EVP_PKEY_free(key);
    }
    return NULL;
}

/* ---- signatures --------------------------------------------------------------------------- */

json_t *jws_segment_json(const char *seg, size_t n)
{
    unsigned char buf[JWS_MAX_LEN / 4 * 3 + 3];
    long len = codec_b64url_decode(seg, n, buf, sizeof(buf));
    json_t *js =
        len > 0 ? json_loadb((const char *)buf, (size_t)len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (js != NULL && !json_is_object(js)) {
        json_decref(js);
        js = NULL;
    }
    return js;
}

enum alg { ALG_NONE, ALG_ES256, ALG_RS256, ALG_PS256 };

static enum alg alg_of(const char *alg)
{
    static const char *const names[] = {"ES256", "RS256", "PS256"};
    for (size_t i = 0; alg != NULL && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(alg, names[i]) == 0)
            return (enum alg)(i + 1);
    return ALG_NONE;
}

/* Does sig (raw, as JWS carries it) verify input with key under alg? PS256: RSASSA-PSS with
 * SHA-256, MGF1 with SHA-256 and a salt as long as the hash (RFC 7518 3.5). */
static bool verify_with(EVP_PKEY *key, enum alg alg, const char *input, size_t inlen,
                        const unsigned char *sig, size_t siglen)
{
    unsigned char der[72];
    if (alg == ALG_ES256) {
        if (siglen != 64)
            return false;
        siglen = jws_es256_der(sig, der);
        sig = der;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok = md != NULL && EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key) == 1;
    if (ok && alg == ALG_PS256)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1;
    ok = ok && EVP_DigestVerify(md, sig, siglen, (const unsigned char *)input, inlen) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return ok;
}

json_t *jws_verify(const char *tok, json_t *jwks, const char **why)
{
    size_t len = strlen(tok);
    const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (len > JWS_MAX_LEN || d1 == NULL || d2 == NULL || strchr(d2 + 1, '.') != NULL) {
        *why = "the assertion is not a compact JWS";
        return NULL;
    }
    json_t *h = jws_segment_json(tok, (size_t)(d1 - tok));
    const char *alg = json_string_value(json_object_get(h, "alg"));
    const char *kid = json_string_value(json_object_get(h, "kid"));
    enum alg a = alg_of(alg);
    if (h == NULL || a == ALG_NONE || json_object_get(h, "crit") != NULL) {
        json_decref(h);
        *why = "the assertion must be signed with PS256, ES256 or RS256";
        return NULL;
    }
    unsigned char sig[1024];
    long siglen = codec_b64url_decode(d2 + 1, strlen(d2 + 1), sig, sizeof(sig));
    bool ok = false;
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(jwks, "keys"), i, k)
    {
        const char *kty = json_string_value(json_object_get(k, "kty"));
        const char *kkid = json_string_value(json_object_get(k, "kid"));
        if (ok || kty == NULL || strcmp(kty, a == ALG_ES256 ? "EC" : "RSA") != 0 ||
            (kid != NULL && (kkid == NULL || strcmp(kid, kkid) != 0)))
            continue;
        const char *kwhy;
        EVP_PKEY *key = jws_key_from_jwk(k, &kwhy);
        ok = key != NULL && siglen > 0 &&
             verify_with(key, a, tok, (size_t)(d2 - tok), sig, (size_t)siglen);
        EVP_PKEY_free(key);
    }
    json_decref(h);
    if (!ok) {
        *why = "the assertion's signature does not verify with the client's keys";
        return NULL;
    }
    json_t *payload = jws_segment_json(d1 + 1, (size_t)(d2 - d1 - 1));
    if (payload == NULL)
        *why = "the assertion's payload is not a JSON object";
    return payload;
}
