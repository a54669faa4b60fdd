/* test_token.c -- token_sign, token_decode, token_check: every bad token we know of. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "clock.h"
#include "helpers.h"
#include "keys.h"
#include "codec.h"
#include "token.h"

#define ISS "https://auth.example.test"
#define AUD "https://mcp.example.test/mcp"
#define HDR "{\"alg\":\"ES256\",\"kid\":\"k1\",\"typ\":\"JWT\"}"

struct fx {
    char *dir;
    EVP_PKEY *key;
    struct keyring *ring;
    int64_t now;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    th_keyring(&f->dir, &f->key, &f->ring);
    f->now = clock_now();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    token_thread_cleanup(); /* before the keys its contexts refer to go */
    th_keyring_free(f->dir, f->key, f->ring);
    free(f);
    return 0;
}

/* A payload valid in every way; fmt overrides come through the arguments. */
static char *payload(const struct fx *f, const char *iss, const char *use, int64_t iat, int64_t exp,
                     const char *extra)
{
    char *p = malloc(1024);
    snprintf(p, 1024,
             "{\"iss\":\"%s\",\"sub\":\"alice\",\"aud\":[\"" AUD "\"],\"jti\":\"abcDEF123\","
             "\"iat\":%lld,\"exp\":%lld,\"token_use\":\"%s\"%s}",
             iss, (long long)iat, (long long)exp, use, extra);
    (void)f;
    return p;
}

static enum token_verdict verdict_of(struct fx *f, const char *tok, enum token_kind want,
                                     const char *resource)
{
    struct token_claims c;
    enum token_verdict v = token_decode(f->ring, ISS, tok, strlen(tok), &c);
    if (v == TV_ACTIVE) {
        v = token_check(&c, f->now, 60, want, resource);
        token_claims_deinit(&c);
    }
    return v;
}

static enum token_verdict es256_verdict(struct fx *f, const char *hdr, const char *p)
{
    char *tok = th_jwt_es256(f->key, hdr, p);
    enum token_verdict v = verdict_of(f, tok, TOKEN_KIND_NONE, NULL);
    free(tok);
    return v;
}

/* What token_sign is asked for: alice's token for aud, from now for ttl seconds. */
static struct token_issue issue_of(const struct fx *f, enum token_kind kind, const char *const *aud,
                                   const char *scope, const char *name, const char *client_id,
                                   int64_t ttl)
{
    return (struct token_issue){.kind = kind,
                                .issuer = ISS,
                                .sub = "alice",
                                .aud = aud,
                                .naud = 1,
                                .scope = scope,
                                .name = name,
                                .client_id = client_id,
                                .iat = f->now,
                                .exp = f->now + ttl};
}

static void token__sign_then_decode_roundtrip(void **state)
{
    struct fx *f = *state;
    const char *aud[] = {AUD};
    struct token_issue in = issue_of(f, TOKEN_KIND_PAT, aud, "mcp:read", "laptop", NULL, 3600);
    char *tok, jti[TOKEN_JTI_LEN + 1];
    assert_int_equal(token_sign(f->ring, &in, &tok, jti), P2A_OK);
    assert_int_equal(strlen(jti), TOKEN_JTI_LEN);
    struct token_claims c;
    assert_int_equal(token_decode(f->ring, ISS, tok, strlen(tok), &c), TV_ACTIVE);
    assert_int_equal(c.kind, TOKEN_KIND_PAT);
    assert_string_equal(c.sub, "alice");
    assert_string_equal(c.jti, jti);
    assert_string_equal(c.name, "laptop");
    assert_string_equal(c.scope, "mcp:read");
    assert_int_equal(c.naud, 1);
    assert_string_equal(c.aud, AUD);
    assert_int_equal(c.exp, f->now + 3600);
    struct token_claims *packed = token_claims_pack(&c);
    token_claims_deinit(&c);
    assert_string_equal(packed->name, "laptop"); /* the packed copy owns its own strings */
    assert_string_equal(packed->aud, AUD);
    assert_int_equal(token_check(packed, f->now, 60, TOKEN_KIND_PAT, AUD), TV_ACTIVE);
    free(packed);
    free(tok);
}

/* The signature is the standard JWS ES256 form (raw r||s), checked here with OpenSSL alone. */
static void token__signature_is_standard_es256(void **state)
{
    struct fx *f = *state;
    const char *aud[] = {AUD};
    struct token_issue in = issue_of(f, TOKEN_KIND_PAT, aud, NULL, "n", NULL, 60);
    char *tok, jti[TOKEN_JTI_LEN + 1];
    assert_int_equal(token_sign(f->ring, &in, &tok, jti), P2A_OK);
    char *dot = strrchr(tok, '.');
    size_t n = strlen(dot + 1);
    assert_int_equal(n, 86); /* 64 bytes, unpadded base64url */
    char b64[100];
    for (size_t i = 0; i < n; i++)
        b64[i] = dot[1 + i] == '-' ? '+' : (dot[1 + i] == '_' ? '/' : dot[1 + i]);
    memcpy(b64 + n, "==", 3);
    unsigned char raw[66];
    assert_int_equal(EVP_DecodeBlock(raw, (unsigned char *)b64, (int)n + 2), 66);
    ECDSA_SIG *sig = ECDSA_SIG_new();
    ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL));
    unsigned char *der = NULL;
    int derlen = i2d_ECDSA_SIG(sig, &der);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, f->key), 1);
    assert_int_equal(
        EVP_DigestVerify(md, der, (size_t)derlen, (unsigned char *)tok, (size_t)(dot - tok)), 1);
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    free(tok);
}

/* Signatures whose r or s has the high bit set (half of them) or leading zero bytes (one in
 * 128) take other DER encodings: a few hundred cover them. */
static void token__every_signature_shape_verifies(void **state)
{
    struct fx *f = *state;
    const char *aud[] = {AUD};
    struct token_issue in = issue_of(f, TOKEN_KIND_PAT, aud, NULL, "n", NULL, 60);
    for (int i = 0; i < 400; i++) {
        char *tok, jti[TOKEN_JTI_LEN + 1];
        assert_int_equal(token_sign(f->ring, &in, &tok, jti), P2A_OK);
        struct token_claims c;
        assert_int_equal(token_decode(f->ring, ISS, tok, strlen(tok), &c), TV_ACTIVE);
        token_claims_deinit(&c);
        free(tok);
    }
}

/* (r, s) and (r, n - s) both satisfy ECDSA: only the low s is accepted, so a token has one
 * spelling; and what token_sign writes (both the libjwt and our own signer) is low. */
static void token__high_s_is_refused_and_never_signed(void **state)
{
    struct fx *f = *state;
    char *p = payload(f, ISS, "pat", f->now, f->now + 60, "");
    for (int i = 0; i < 20; i++) {
        char *low = th_jwt_es256_s(f->key, HDR, p, false);
        char *high = th_jwt_es256_s(f->key, HDR, p, true);
        assert_int_equal(verdict_of(f, low, TOKEN_KIND_NONE, NULL), TV_ACTIVE);
        assert_int_equal(verdict_of(f, high, TOKEN_KIND_NONE, NULL), TV_BAD_SIGNATURE);
        free(low);
        free(high);
    }
    free(p);
    const char *aud[] = {AUD};
    for (int kind = TOKEN_KIND_PAT; kind <= TOKEN_KIND_OAUTH; kind++) {
        struct token_issue in = issue_of(f, (enum token_kind)kind, aud, NULL, "n", "c", 60);
        for (int i = 0; i < 100; i++) {
            char *tok, jti[TOKEN_JTI_LEN + 1];
            assert_int_equal(token_sign(f->ring, &in, &tok, jti), P2A_OK);
            const char *sig = strrchr(tok, '.') + 1;
            unsigned char raw[66];
            assert_int_equal(codec_b64url_decode(sig, strlen(sig), raw, sizeof(raw)), 64);
            /* s <= n / 2: its first byte at most 0x7f (and not above n / 2 beyond it) */
            assert_true(raw[32] <= 0x7f);
            struct token_claims c;
            assert_int_equal(token_decode(f->ring, ISS, tok, strlen(tok), &c), TV_ACTIVE);
            token_claims_deinit(&c);
            free(tok);
        }
    }
}

static void token__empty_is_missing(void **state)
{
    assert_int_equal(verdict_of(*state, "", TOKEN_KIND_NONE, NULL), TV_MISSING);
}

static void token__garbage_is_malformed(void **state)
{
    struct fx *f = *state;
    assert_int_equal(verdict_of(f, "hello", TOKEN_KIND_NONE, NULL), TV_MALFORMED);
    assert_int_equal(verdict_of(f, "not a token at all", TOKEN_KIND_NONE, NULL), TV_MALFORMED);
    assert_int_equal(verdict_of(f, "aGVsbG8.d29ybGQ.c2ln", TOKEN_KIND_NONE, NULL), TV_MALFORMED);
    assert_int_equal(verdict_of(f, "..", TOKEN_KIND_NONE, NULL), TV_MALFORMED);
}

static void token__100kb_is_malformed(void **state)
{
    struct fx *f = *state;
    size_t n = 100 * 1024;
    char *big = malloc(n + 1);
    memset(big, 'A', n);
    big[n] = '\0';
    big[10] = '.';
    big[20] = '.';
    assert_int_equal(verdict_of(f, big, TOKEN_KIND_NONE, NULL), TV_MALFORMED);
    free(big);
}

static void token__wrong_segment_counts_are_malformed(void **state)
{
    struct fx *f = *state;
    char *p = payload(f, ISS, "pat", f->now, f->now + 60, "");
    char *tok = th_jwt_es256(f->key, HDR, p);
    char *two = strdup(tok);
    *strrchr(two, '.') = '\0';
    assert_int_equal(verdict_of(f, two, TOKEN_KIND_NONE, NULL), TV_MALFORMED);
    char four[4096];
    snprintf(four, sizeof(four), "%s.AAAA", tok);
    assert_int_equal(verdict_of(f, four, TOKEN_KIND_NONE, NULL), TV_MALFORMED);
    assert_int_equal(verdict_of(f, tok, TOKEN_KIND_NONE, NULL), TV_ACTIVE);
    free(two);
    free(tok);
    free(p);
}

static void token__bad_base64_is_malformed(void **state)
{
    struct fx *f = *state;
    char *p = payload(f, ISS, "pat", f->now, f->now + 60, "");
    char *tok = th_jwt_es256(f->key, HDR, p);
    char *bad = strdup(tok);
    bad[3] = '*'; /* outside the alphabet */
    assert_int_equal(verdict_of(f, bad, TOKEN_KIND_NONE, NULL), TV_MALFORMED);
    free(bad);
    /* a header whose length is 1 mod 4 cannot be base64 */
    char odd[4096];
    snprintf(odd, sizeof(odd), "eyJhb%s", strchr(tok, '.'));
    assert_int_equal(verdict_of(f, odd, TOKEN_KIND_NONE, NULL), TV_MALFORMED);
    /* padding is not base64url */
    char padded[4096];
    snprintf(padded, sizeof(padded), "%.*s=%s", (int)(strchr(tok, '.') - tok), tok,
             strchr(tok, '.'));
    assert_int_equal(verdict_of(f, padded, TOKEN_KIND_NONE, NULL), TV_MALFORMED);
    free(tok);
    free(p);
}

static void token__alg_none_is_refused(void **state)
{
    struct fx *f = *state;
    char *p = payload(f, ISS, "pat", f->now, f->now + 60, "");
    char *tok = th_jwt_unsigned("{\"alg\":\"none\",\"kid\":\"k1\"}", p);
    assert_int_equal(verdict_of(f, tok, TOKEN_KIND_NONE, NULL), TV_BAD_SIGNATURE);
    free(tok);
    tok = th_jwt_unsigned("{\"alg\":\"None\",\"kid\":\"k1\",\"typ\":\"JWT\"}", p);
    assert_int_equal(verdict_of(f, tok, TOKEN_KIND_NONE, NULL), TV_BAD_SIGNATURE);
    free(tok);
    free(p);
}

/* Algorithm confusion: HS256 keyed with the public key's PEM, which an attacker can know. */
static void token__hs256_with_public_pem_is_refused(void **state)
{
    struct fx *f = *state;
    const struct signing_key *k = keys_find(f->ring, "k1", 2);
    char *p = payload(f, ISS, "pat", f->now, f->now + 60, "");
    char *tok = th_jwt_hs256(k->pub_pem, k->pub_pem_len,
                             "{\"alg\":\"HS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}", p);
    assert_int_equal(verdict_of(f, tok, TOKEN_KIND_NONE, NULL), TV_BAD_SIGNATURE);
    free(tok);
    /* and with our own header's alg pinned to ES256 but an HMAC tag as signature */
    tok = th_jwt_hs256(k->pub_pem, k->pub_pem_len, HDR, p);
    assert_int_equal(verdict_of(f, tok, TOKEN_KIND_NONE, NULL), TV_BAD_SIGNATURE);
    free(tok);
    free(p);
}

static void token__unknown_kid(void **state)
{
    struct fx *f = *state;
    char *p = payload(f, ISS, "pat", f->now, f->now + 60, "");
    assert_int_equal(es256_verdict(f, "{\"alg\":\"ES256\",\"kid\":\"other\"}", p), TV_UNKNOWN_KEY);
    assert_int_equal(es256_verdict(f, "{\"alg\":\"ES256\"}", p), TV_UNKNOWN_KEY);
    free(p);
}

static void token__signed_by_another_key(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *other = EVP_EC_gen("P-256");
    char *p = payload(f, ISS, "pat", f->now, f->now + 60, "");
    char *tok = th_jwt_es256(other, HDR, p);
    assert_int_equal(verdict_of(f, tok, TOKEN_KIND_NONE, NULL), TV_BAD_SIGNATURE);
    free(tok);
    free(p);
    EVP_PKEY_free(other);
}

static void token__tampered_payload(void **state)
{
    struct fx *f = *state;
    char *p = payload(f, ISS, "pat", f->now, f->now + 60, "");
    char *tok = th_jwt_es256(f->key, HDR, p);
    /* swap in a payload naming another user, keep the signature */
    char *p2 = strdup(p);
    memcpy(strstr(p2, "alice"), "mallo", 5);
    char *forged = th_jwt_es256(f->key, HDR, p2);
    char mixed[4096];
    snprintf(mixed, sizeof(mixed), "%.*s%s", (int)(strrchr(forged, '.') - forged), forged,
             strrchr(tok, '.'));
    assert_int_equal(verdict_of(f, mixed, TOKEN_KIND_NONE, NULL), TV_BAD_SIGNATURE);
    free(forged);
    free(p2);
    free(tok);
    free(p);
}

/* A signature has one spelling: its last character's unused bits changed, it is refused,
 * not another token (each spelling would be its own cache entry). */
static void token__signature_has_one_spelling(void **state)
{
    struct fx *f = *state;
    char *p = payload(f, ISS, "pat", f->now, f->now + 60, "");
    char *tok = th_jwt_es256(f->key, HDR, p);
    assert_int_equal(verdict_of(f, tok, TOKEN_KIND_NONE, NULL), TV_ACTIVE);
    char *last = tok + strlen(tok) - 1; /* 86 characters: the last carries 2 bits of 6 */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(alphabet, *last) - alphabet);
    *last = alphabet[v ^ 1];
    assert_int_equal(verdict_of(f, tok, TOKEN_KIND_NONE, NULL), TV_BAD_SIGNATURE);
    free(tok);
    free(p);
}

/* An audience with a NUL inside is malformed, as every other string claim (the JSON parser
 * refuses \u0000): read as C text it would be another audience ("https://a\u0000x" as
 * "https://a"). */
static void token__audience_with_a_nul_is_malformed(void **state)
{
    struct fx *f = *state;
    const char *auds[] = {"\"" AUD "\\u0000x\"", "[\"" AUD "\\u0000x\"]"};
    for (size_t i = 0; i < 2; i++) {
        char p[1024];
        snprintf(p, sizeof(p),
                 "{\"iss\":\"%s\",\"sub\":\"alice\",\"aud\":%s,\"jti\":\"abcDEF123\","
                 "\"iat\":%lld,\"exp\":%lld,\"token_use\":\"pat\"}",
                 ISS, auds[i], (long long)f->now, (long long)f->now + 60);
        char *tok = th_jwt_es256(f->key, HDR, p);
        assert_int_equal(verdict_of(f, tok, TOKEN_KIND_NONE, NULL), TV_MALFORMED);
        free(tok);
    }
}

static void token__expired_by_one_second(void **state)
{
    struct fx *f = *state;
    char *p = payload(f, ISS, "pat", f->now - 3600, f->now - 1, "");
    assert_int_equal(es256_verdict(f, HDR, p), TV_EXPIRED);
    free(p);
    /* exp == now is already expired (RFC 7519: on or after) */
    p = payload(f, ISS, "pat", f->now - 3600, f->now, "");
    assert_int_equal(es256_verdict(f, HDR, p), TV_EXPIRED);
    free(p);
}

static void token__nbf_in_the_future(void **state)
{
    struct fx *f = *state;
    char extra[64];
    snprintf(extra, sizeof(extra), ",\"nbf\":%lld", (long long)(f->now + 3600));
    char *p = payload(f, ISS, "pat", f->now, f->now + 7200, extra);
    assert_int_equal(es256_verdict(f, HDR, p), TV_NOT_YET_VALID);
    free(p);
    /* within the clock skew: fine */
    snprintf(extra, sizeof(extra), ",\"nbf\":%lld", (long long)(f->now + 30));
    p = payload(f, ISS, "pat", f->now, f->now + 7200, extra);
    assert_int_equal(es256_verdict(f, HDR, p), TV_ACTIVE);
    free(p);
    /* issued in the future */
    p = payload(f, ISS, "pat", f->now + 3600, f->now + 7200, "");
    assert_int_equal(es256_verdict(f, HDR, p), TV_NOT_YET_VALID);
    free(p);
}

static void token__wrong_issuer(void **state)
{
    struct fx *f = *state;
    char *p = payload(f, "https://evil.example.test", "pat", f->now, f->now + 60, "");
    assert_int_equal(es256_verdict(f, HDR, p), TV_WRONG_ISSUER);
    free(p);
}

static void token__wrong_audience_when_resource_given(void **state)
{
    struct fx *f = *state;
    char *p = payload(f, ISS, "pat", f->now, f->now + 60, "");
    char *tok = th_jwt_es256(f->key, HDR, p);
    assert_int_equal(verdict_of(f, tok, TOKEN_KIND_NONE, "https://other.example.test/mcp"),
                     TV_WRONG_AUDIENCE);
    assert_int_equal(verdict_of(f, tok, TOKEN_KIND_NONE, "https://mcp.example.test/mcp2"),
                     TV_WRONG_AUDIENCE);
    /* normalised: scheme and host case, one trailing slash */
    assert_int_equal(verdict_of(f, tok, TOKEN_KIND_NONE, "HTTPS://MCP.Example.TEST/mcp/"),
                     TV_ACTIVE);
    /* the path is case-sensitive */
    assert_int_equal(verdict_of(f, tok, TOKEN_KIND_NONE, "https://mcp.example.test/MCP"),
                     TV_WRONG_AUDIENCE);
    assert_int_equal(verdict_of(f, tok, TOKEN_KIND_NONE, ""), TV_ACTIVE);
    free(tok);
    free(p);
}

static void token__any_of_several_audiences(void **state)
{
    struct fx *f = *state;
    char p[1024];
    snprintf(p, sizeof(p),
             "{\"iss\":\"" ISS "\",\"sub\":\"alice\",\"aud\":[\"https://a.test/mcp\","
             "\"https://b.test/mcp\"],\"jti\":\"j\",\"iat\":%lld,\"exp\":%lld,"
             "\"token_use\":\"pat\"}",
             (long long)f->now, (long long)f->now + 60);
    char *tok = th_jwt_es256(f->key, HDR, p);
    assert_int_equal(verdict_of(f, tok, TOKEN_KIND_NONE, "https://b.test/mcp"), TV_ACTIVE);
    assert_int_equal(verdict_of(f, tok, TOKEN_KIND_NONE, "https://a.test/mcp"), TV_ACTIVE);
    assert_int_equal(verdict_of(f, tok, TOKEN_KIND_NONE, "https://c.test/mcp"), TV_WRONG_AUDIENCE);
    struct token_claims c;
    assert_int_equal(token_decode(f->ring, ISS, tok, strlen(tok), &c), TV_ACTIVE);
    assert_int_equal(c.naud, 2);
    assert_string_equal(token_next_aud(c.aud), "https://b.test/mcp");
    token_claims_deinit(&c);
    free(tok);
}

static void token__kinds_cannot_pass_for_each_other(void **state)
{
    struct fx *f = *state;
    char *pat = payload(f, ISS, "pat", f->now, f->now + 60, "");
    char *oauth = payload(f, ISS, "access", f->now, f->now + 60, ",\"client_id\":\"c1\"");
    char *t1 = th_jwt_es256(f->key, HDR, pat), *t2 = th_jwt_es256(f->key, HDR, oauth);
    assert_int_equal(verdict_of(f, t1, TOKEN_KIND_OAUTH, NULL), TV_WRONG_AUDIENCE);
    assert_int_equal(verdict_of(f, t2, TOKEN_KIND_PAT, NULL), TV_WRONG_AUDIENCE);
    assert_int_equal(verdict_of(f, t1, TOKEN_KIND_PAT, NULL), TV_ACTIVE);
    assert_int_equal(verdict_of(f, t2, TOKEN_KIND_OAUTH, NULL), TV_ACTIVE);
    /* no marker at all: not ours */
    char *none = payload(f, ISS, "id", f->now, f->now + 60, "");
    assert_int_equal(es256_verdict(f, HDR, none), TV_MALFORMED);
    free(none);
    free(t1);
    free(t2);
    free(pat);
    free(oauth);
}

static void token__claim_types_and_duplicates(void **state)
{
    struct fx *f = *state;
    char p[1024];
    snprintf(p, sizeof(p),
             "{\"iss\":\"" ISS "\",\"sub\":\"alice\",\"sub\":\"bob\",\"aud\":\"" AUD
             "\",\"jti\":\"j\",\"iat\":%lld,\"exp\":%lld,\"token_use\":\"pat\"}",
             (long long)f->now, (long long)f->now + 60);
    assert_int_equal(es256_verdict(f, HDR, p), TV_MALFORMED);
    snprintf(p, sizeof(p),
             "{\"iss\":\"" ISS "\",\"sub\":\"alice\",\"aud\":\"" AUD
             "\",\"jti\":\"j\",\"iat\":%lld,\"exp\":\"%lld\",\"token_use\":\"pat\"}",
             (long long)f->now, (long long)f->now + 60);
    assert_int_equal(es256_verdict(f, HDR, p), TV_MALFORMED);
    assert_int_equal(es256_verdict(f, HDR, "[1,2,3]"), TV_MALFORMED);
    assert_int_equal(es256_verdict(f, "{\"alg\":\"ES256\",\"kid\":\"k1\",\"crit\":[\"x\"]}", p),
                     TV_MALFORMED);
}

static void token__pat_lifetime_over_a_year_is_refused(void **state)
{
    struct fx *f = *state;
    char *p = payload(f, ISS, "pat", f->now, f->now + 400 * 86400LL, "");
    assert_int_equal(es256_verdict(f, HDR, p), TV_MALFORMED);
    free(p);
}

static void token__resource_eq(void **state)
{
    (void)state;
    assert_true(token_resource_eq("https://a.test/mcp", "https://A.TEST/mcp/"));
    assert_true(token_resource_eq("https://a.test", "https://a.test/"));
    assert_false(token_resource_eq("https://a.test/mcp", "https://a.test/mcp//"));
    assert_false(token_resource_eq("https://a.test/mcp", "http://a.test/mcp"));
    assert_false(token_resource_eq("https://a.test:8443/mcp", "https://a.test/mcp"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(token__sign_then_decode_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(token__signature_is_standard_es256, setup, teardown),
        cmocka_unit_test_setup_teardown(token__every_signature_shape_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(token__empty_is_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(token__garbage_is_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(token__100kb_is_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(token__wrong_segment_counts_are_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(token__bad_base64_is_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(token__alg_none_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(token__hs256_with_public_pem_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(token__unknown_kid, setup, teardown),
        cmocka_unit_test_setup_teardown(token__signed_by_another_key, setup, teardown),
        cmocka_unit_test_setup_teardown(token__signature_has_one_spelling, setup, teardown),
        cmocka_unit_test_setup_teardown(token__audience_with_a_nul_is_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(token__tampered_payload, setup, teardown),
        cmocka_unit_test_setup_teardown(token__expired_by_one_second, setup, teardown),
        cmocka_unit_test_setup_teardown(token__nbf_in_the_future, setup, teardown),
        cmocka_unit_test_setup_teardown(token__wrong_issuer, setup, teardown),
        cmocka_unit_test_setup_teardown(token__wrong_audience_when_resource_given, setup, teardown),
        cmocka_unit_test_setup_teardown(token__any_of_several_audiences, setup, teardown),
        cmocka_unit_test_setup_teardown(token__kinds_cannot_pass_for_each_other, setup, teardown),
        cmocka_unit_test_setup_teardown(token__claim_types_and_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(token__pat_lifetime_over_a_year_is_refused, setup,
                                        teardown),
        cmocka_unit_test(token__resource_eq),
        cmocka_unit_test_setup_teardown(token__high_s_is_refused_and_never_signed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
