/* test_oidc.c -- the upstream provider's rules: its discovery document, its key set, every
 * check of an ID token, the configured limits, the user id and the display name. */
#include "cm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "helpers.h"
#include "oidc.h"

#define ISS "https://idp.example"
#define NOW 1800000000LL

static struct p2a_config cfg_of(void)
{
    struct p2a_config c;
    memset(&c, 0, sizeof(c));
    c.upstream_issuer = (char *)ISS;
    c.upstream_client_id = (char *)"p2a";
    c.upstream_name_claim = (char *)"name";
    return c;
}

static json_t *discovery(const char *body, const struct p2a_config *c, char *why)
{
    return oidc_discovery(body, strlen(body), c, why, 160);
}

static void oidc__discovery(void **state)
{
    (void)state;
    struct p2a_config c = cfg_of();
    char why[160];
    json_t *d = discovery("{\"issuer\":\"" ISS "\",\"authorization_endpoint\":\"" ISS "/a\","
                          "\"token_endpoint\":\"" ISS "/t\",\"jwks_uri\":\"" ISS "/k\"}",
                          &c, why);
    assert_non_null(d); /* no response_types or PKCE methods listed: Discovery's defaults */
    json_decref(d);
    const char *bad[][2] = {
        {"{\"issuer\":\"https://other.example\",\"authorization_endpoint\":\"" ISS "/a\","
         "\"token_endpoint\":\"" ISS "/t\",\"jwks_uri\":\"" ISS "/k\"}",
         "another issuer"},
        {"{\"issuer\":\"" ISS "\",\"authorization_endpoint\":\"http://idp.example/a\","
         "\"token_endpoint\":\"" ISS "/t\",\"jwks_uri\":\"" ISS "/k\"}",
         "authorization_endpoint"},
        {"{\"issuer\":\"" ISS "\",\"authorization_endpoint\":\"" ISS "/a\","
         "\"token_endpoint\":\"" ISS "/t\"}",
         "jwks_uri"},
        {"{\"issuer\":\"" ISS "\",\"authorization_endpoint\":\"" ISS "/a\","
         "\"token_endpoint\":\"" ISS "/t\",\"jwks_uri\":\"" ISS "/k\","
         "\"code_challenge_methods_supported\":[\"plain\"]}",
         "S256"},
        {"{\"issuer\":\"" ISS "\",\"authorization_endpoint\":\"" ISS "/a\","
         "\"token_endpoint\":\"" ISS "/t\",\"jwks_uri\":\"" ISS "/k\","
         "\"response_types_supported\":[\"id_token\"]}",
         "authorization code"},
        {"[1]", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_null(discovery(bad[i][0], &c, why));
        assert_non_null(strstr(why, bad[i][1]));
    }
    /* an http provider on loopback may name http endpoints on loopback, not elsewhere */
    c.upstream_issuer = (char *)"http://127.0.0.1:9";
    d = discovery("{\"issuer\":\"http://127.0.0.1:9\",\"authorization_endpoint\":"
                  "\"http://127.0.0.1:9/a\",\"token_endpoint\":\"http://127.0.0.1:9/t\","
                  "\"jwks_uri\":\"http://127.0.0.1:9/k\"}",
                  &c, why);
    assert_non_null(d);
    json_decref(d);
    assert_null(discovery("{\"issuer\":\"http://127.0.0.1:9\",\"authorization_endpoint\":"
                          "\"http://127.0.0.1:9/a\",\"token_endpoint\":\"http://evil.example/t\","
                          "\"jwks_uri\":\"http://127.0.0.1:9/k\"}",
                          &c, why));
}

/* {"keys":[...]} of the given JWK texts. */
static char *set_of(const char *const *jwks, size_t n)
{
    size_t cap = 64;
    for (size_t i = 0; i < n; i++)
        cap += strlen(jwks[i]) + 1;
    char *s = malloc(cap);
    strcpy(s, "{\"keys\":[");
    for (size_t i = 0; i < n; i++) {
        strcat(s, jwks[i]);
        strcat(s, i + 1 < n ? "," : "");
    }
    strcat(s, "]}");
    return s;
}

static void oidc__key_set_keeps_signing_keys(void **state)
{
    (void)state;
    char *dir = th_tmpdir(), why[160];
    EVP_PKEY *k = th_write_key(dir, "k1");
    char *jwk = th_jwk_public(k, "k1");
    /* the same key marked for encryption, and a kind we cannot use, are skipped */
    char *enc = strdup(jwk);
    char *brace = strrchr(enc, '}');
    *brace = '\0';
    char *enc2 = malloc(strlen(enc) + 32);
    sprintf(enc2, "%s,\"use\":\"enc\"}", enc);
    const char *mixed[] = {enc2, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\"}", jwk};
    char *body = set_of(mixed, 3);
    json_t *set = oidc_jwks(body, strlen(body), why, sizeof(why));
    assert_non_null(set);
    assert_int_equal(json_array_size(json_object_get(set, "keys")), 1);
    json_decref(set);
    free(body);
    const char *none[] = {enc2};
    body = set_of(none, 1);
    assert_null(oidc_jwks(body, strlen(body), why, sizeof(why)));
    assert_non_null(strstr(why, "no EC P-256 or RSA signing key"));
    free(body);
    const char *many[OIDC_MAX_KEYS + 4];
    for (size_t i = 0; i < OIDC_MAX_KEYS + 4; i++)
        many[i] = jwk;
    body = set_of(many, OIDC_MAX_KEYS + 4);
    set = oidc_jwks(body, strlen(body), why, sizeof(why));
    assert_int_equal(json_array_size(json_object_get(set, "keys")), OIDC_MAX_KEYS);
    json_decref(set);
    free(body);
    free(enc);
    free(enc2);
    free(jwk);
    EVP_PKEY_free(k);
    th_rmtree(dir);
}

struct idp {
    char *dir;
    EVP_PKEY *key;
    json_t *jwks;
};

static struct idp idp_new(void)
{
    struct idp p = {.dir = th_tmpdir()};
    p.key = th_write_key(p.dir, "k1");
    char *jwk = th_jwk_public(p.key, "k1");
    const char *one[] = {jwk};
    char *body = set_of(one, 1), why[160];
    p.jwks = oidc_jwks(body, strlen(body), why, sizeof(why));
    free(body);
    free(jwk);
    return p;
}

static void idp_free(struct idp *p)
{
    json_decref(p->jwks);
    EVP_PKEY_free(p->key);
    th_rmtree(p->dir);
}

/* The result of checking an ES256 token of claims (JSON), signed by p's key under kid. */
static enum oidc_result check(struct idp *p, const char *header, const char *claims, char *why)
{
    char *tok = th_jwt_es256(p->key, header, claims);
    struct oidc_expect x = {
        .issuer = ISS, .client_id = "p2a", .nonce = "n-123", .now = NOW, .skew_s = 60};
    json_t *c = NULL;
    enum oidc_result rc = oidc_id_token_check(tok, p->jwks, &x, &c, why, 160);
    assert_true((rc == OIDC_OK) == (c != NULL));
    json_decref(c);
    free(tok);
    return rc;
}

#define H "{\"alg\":\"ES256\",\"kid\":\"k1\"}"
#define GOOD_TAIL "\"sub\":\"u1\",\"nonce\":\"n-123\",\"iat\":1800000000,\"exp\":1800000300}"

static void oidc__id_token_checks(void **state)
{
    (void)state;
    struct idp p = idp_new();
    char why[160];
    assert_int_equal(check(&p, H, "{\"iss\":\"" ISS "\",\"aud\":\"p2a\"," GOOD_TAIL, why), OIDC_OK);
    assert_int_equal(
        check(&p, H, "{\"iss\":\"" ISS "\",\"aud\":[\"p2a\",\"x\"],\"azp\":\"p2a\"," GOOD_TAIL,
              why),
        OIDC_OK);
    const char *refused[][2] = {
        {"{\"iss\":\"https://evil\",\"aud\":\"p2a\"," GOOD_TAIL, "another issuer"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"x\"," GOOD_TAIL, "(aud)"},
        {"{\"iss\":\"" ISS "\",\"aud\":[\"p2a\",\"x\"]," GOOD_TAIL, "no azp"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"p2a\",\"azp\":\"x\"," GOOD_TAIL, "(azp)"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"p2a\",\"sub\":\"u1\",\"nonce\":\"n-124\","
         "\"iat\":1800000000,\"exp\":1800000300}",
         "(nonce)"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"p2a\",\"sub\":\"u1\",\"nonce\":\"n-123\","
         "\"iat\":1799999000,\"exp\":1799999900}",
         "expired"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"p2a\",\"sub\":\"u1\",\"nonce\":\"n-123\","
         "\"iat\":1800000100,\"exp\":1800000300}",
         "in the future"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"p2a\",\"sub\":\"u1\",\"nonce\":\"n-123\","
         "\"iat\":1799990000,\"exp\":1800000300}",
         "too long ago"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"p2a\",\"sub\":\"u 1\",\"nonce\":\"n-123\","
         "\"iat\":1800000000,\"exp\":1800000300}",
         "subject"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"p2a\",\"nonce\":\"n-123\","
         "\"iat\":1800000000,\"exp\":1800000300}",
         "subject"},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(check(&p, H, refused[i][0], why), OIDC_REFUSED);
        assert_non_null(strstr(why, refused[i][1]));
    }
    /* an unknown kid asks for the set again; alg none and HS256 never look at a key */
    assert_int_equal(check(&p, "{\"alg\":\"ES256\",\"kid\":\"k9\"}",
                           "{\"iss\":\"" ISS "\",\"aud\":\"p2a\"," GOOD_TAIL, why),
                     OIDC_UNKNOWN_KEY);
    struct oidc_expect x = {
        .issuer = ISS, .client_id = "p2a", .nonce = "n-123", .now = NOW, .skew_s = 60};
    json_t *c = NULL;
    char *tok =
        th_jwt_unsigned("{\"alg\":\"none\"}", "{\"iss\":\"" ISS "\",\"aud\":\"p2a\"," GOOD_TAIL);
    assert_int_equal(oidc_id_token_check(tok, p.jwks, &x, &c, why, sizeof(why)), OIDC_REFUSED);
    assert_non_null(strstr(why, "only RS256 and ES256"));
    free(tok);
    tok = th_jwt_hs256("secret", 6, "{\"alg\":\"HS256\",\"kid\":\"k1\"}",
                       "{\"iss\":\"" ISS "\",\"aud\":\"p2a\"," GOOD_TAIL);
    assert_int_equal(oidc_id_token_check(tok, p.jwks, &x, &c, why, sizeof(why)), OIDC_REFUSED);
    free(tok);
    /* signed by another key under a known kid */
    struct idp q = idp_new();
    tok = th_jwt_es256(q.key, H, "{\"iss\":\"" ISS "\",\"aud\":\"p2a\"," GOOD_TAIL);
    assert_int_equal(oidc_id_token_check(tok, p.jwks, &x, &c, why, sizeof(why)), OIDC_REFUSED);
    assert_non_null(strstr(why, "does not verify"));
    free(tok);
    idp_free(&q);
    idp_free(&p);
}

static void oidc__limits_user_id_and_name(void **state)
{
    (void)state;
    struct p2a_config c = cfg_of();
    json_t *cl = json_pack("{s:s, s:s, s:b, s:[s, s], s:s}", "sub", "abc", "email",
                           "ann@Corp.example", "email_verified", 1, "groups", "a", "mcp-users",
                           "name", "Ann \x01" "Example \xc3\xa9t\xc3\xa9");
    assert_null(oidc_allowed(&c, cl)); /* no limits */
    c.upstream_allowed_domains = (char *)"other.example, corp.example";
    c.upstream_required_claim = (char *)"groups=mcp-users";
    assert_null(oidc_allowed(&c, cl));
    c.upstream_required_claim = (char *)"groups=admins";
    assert_non_null(strstr(oidc_allowed(&c, cl), "group"));
    c.upstream_required_claim = NULL;
    c.upstream_allowed_domains = (char *)"corp.example.org";
    assert_non_null(strstr(oidc_allowed(&c, cl), "domain"));
    json_object_set_new(cl, "email_verified", json_false());
    c.upstream_allowed_domains = (char *)"corp.example";
    assert_non_null(strstr(oidc_allowed(&c, cl), "verified"));

    char id[16], name[16];
    c.upstream_subject_prefix = (char *)"corp|";
    assert_true(oidc_user_id(&c, cl, id, sizeof(id)));
    assert_string_equal(id, "corp|abc");
    assert_false(oidc_user_id(&c, cl, id, 8)); /* does not fit */
    /* control characters dropped; cut on a character boundary (é is two bytes) */
    oidc_display_name(&c, cl, name, sizeof(name));
    assert_string_equal(name, "Ann Example \xc3\xa9t");
    c.upstream_name_claim = (char *)"nickname"; /* absent: then name */
    oidc_display_name(&c, cl, name, sizeof(name));
    assert_string_equal(name, "Ann Example \xc3\xa9t");
    json_object_del(cl, "name");
    oidc_display_name(&c, cl, name, sizeof(name));
    assert_string_equal(name, "ann@Corp.exampl");
    json_decref(cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(oidc__discovery),
        cmocka_unit_test(oidc__key_set_keeps_signing_keys),
        cmocka_unit_test(oidc__id_token_checks),
        cmocka_unit_test(oidc__limits_user_id_and_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
