/* test_idjag.c -- redeeming an ID-JAG: the trusted issuers, every check of the assertion (its
 * header before any key, then its claims), the scope to grant and the discovery URL. */
#include "cm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "config.h"
#include "helpers.h"
#include "idjag.h"

#define IDP "https://idp.example"
#define AS "https://auth.example"
#define RES "https://mcp.example/mcp"
#define NOW 1800000000LL

struct fx {
    char *dir;
    EVP_PKEY *ec, *rsa, *stranger;
    json_t *jwks;
    struct p2a_config cfg;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->dir = th_tmpdir();
    f->ec = th_write_key(f->dir, "ec");
    f->stranger = th_write_key(f->dir, "stranger");
    f->rsa = EVP_RSA_gen(2048);
    char *je = th_jwk_public(f->ec, "k-ec"), *jr = th_jwk_public(f->rsa, "k-rsa");
    char text[8192];
    snprintf(text, sizeof(text), "{\"keys\":[%s,%s]}", je, jr);
    free(je);
    free(jr);
    f->jwks = json_loads(text, 0, NULL);
    f->cfg.issuer = (char *)AS;
    f->cfg.resources[0] = (char *)RES;
    f->cfg.nresources = 1;
    f->cfg.scopes = (char *)"mcp files offline_access";
    f->cfg.resource_scopes = (char *)"mcp";
    f->cfg.id_jag_issuers[0] = (char *)"https://other-idp.example";
    f->cfg.id_jag_issuers[1] = (char *)IDP;
    f->cfg.nid_jag_issuers = 2;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    EVP_PKEY_free(f->ec);
    EVP_PKEY_free(f->rsa);
    EVP_PKEY_free(f->stranger);
    json_decref(f->jwks);
    th_rmtree(f->dir);
    free(f);
    return 0;
}

/* The claims of a good ID-JAG, with "over" (JSON members) replacing or adding some. */
static char *claims(const char *over)
{
    json_t *c =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "iss", IDP, "sub", "u-1001",
                  "aud", AS "/", "resource", RES, "client_id", "c_agent", "jti", "j-1", "iat",
                  (json_int_t)NOW - 10, "exp", (json_int_t)NOW + 290, "scope", "mcp files");
    json_t *o = json_loads(over ? over : "{}", 0, NULL);
    assert_non_null(o);
    json_object_update(c, o);
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (json_is_null(v))
            json_object_del(c, k);
    }
    char *s = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    json_decref(o);
    return s;
}

static const char HDR_EC[] = "{\"alg\":\"ES256\",\"kid\":\"k-ec\",\"typ\":\"oauth-id-jag+jwt\"}";
static const char HDR_RS[] = "{\"alg\":\"RS256\",\"kid\":\"k-rsa\",\"typ\":\"oauth-id-jag+jwt\"}";
static const char HDR_PS[] = "{\"alg\":\"PS256\",\"kid\":\"k-rsa\",\"typ\":\"oauth-id-jag+jwt\"}";

static enum oidc_result check(struct fx *f, const char *tok, char *why, json_t **out)
{
    struct idjag_expect x = {.issuer = IDP, .client_id = "c_agent", .now = NOW, .skew_s = 30};
    json_t *c = NULL;
    why[0] = '\0';
    enum oidc_result rc = idjag_check(&f->cfg, tok, f->jwks, &x, &c, why, 200);
    if (out != NULL)
        *out = c;
    else
        json_decref(c);
    return rc;
}

static void idjag__good_assertions_with_each_algorithm(void **state)
{
    struct fx *f = *state;
    char *p = claims(NULL), why[200];
    char *toks[] = {
        th_jwt_es256(f->ec, HDR_EC, p), th_jwt_rs256(f->rsa, HDR_RS, p),
        th_jwt_ps256(f->rsa, HDR_PS, p),
        th_jwt_es256(f->ec, "{\"alg\":\"ES256\",\"typ\":\"application/OAUTH-ID-JAG+JWT\"}", p)};
    for (size_t i = 0; i < sizeof(toks) / sizeof(toks[0]); i++) {
        const char *w;
        assert_string_equal(idjag_issuer(&f->cfg, toks[i], &w), IDP);
        json_t *c = NULL;
        if (check(f, toks[i], why, &c) != OIDC_OK)
            fail_msg("token %zu refused: %s", i, why);
        assert_string_equal(idjag_resource(&f->cfg, c), RES);
        json_decref(c);
        free(toks[i]);
    }
    free(p);
}

static void idjag__header_is_checked_before_any_key(void **state)
{
    struct fx *f = *state;
    char *p = claims(NULL), why[200];
    char pem[4096];
    snprintf(pem, sizeof(pem), "%s", "the public key as an HMAC secret");
    struct {
        char *tok;
        enum oidc_result rc;
        const char *why;
    } cases[] = {
        {th_jwt_es256(f->ec, "{\"alg\":\"ES256\",\"kid\":\"k-ec\",\"typ\":\"JWT\"}", p),
         OIDC_REFUSED, "typ must be oauth-id-jag+jwt"},
        {th_jwt_es256(f->ec, "{\"alg\":\"ES256\",\"kid\":\"k-ec\"}", p), OIDC_REFUSED,
         "typ must be"},
        {th_jwt_unsigned("{\"alg\":\"none\",\"typ\":\"oauth-id-jag+jwt\"}", p), OIDC_REFUSED,
         "signed with none; only RS256, ES256 and PS256"},
        {th_jwt_hs256(pem, strlen(pem), "{\"alg\":\"HS256\",\"typ\":\"oauth-id-jag+jwt\"}", p),
         OIDC_REFUSED, "signed with HS256"},
        {th_jwt_es256(f->stranger,
                      "{\"alg\":\"ES256\",\"kid\":\"rotated\",\"typ\":\"oauth-id-jag+jwt\"}", p),
         OIDC_UNKNOWN_KEY, "a key its issuer does not publish"},
        {th_jwt_es256(f->stranger, HDR_EC, p), OIDC_REFUSED, "signature does not verify"},
        {th_jwt_es256(f->stranger, "{\"alg\":\"ES256\",\"typ\":\"oauth-id-jag+jwt\"}", p),
         OIDC_REFUSED, "signature does not verify"},
        {th_jwt_rs256(f->rsa, HDR_PS, p), OIDC_REFUSED, "signature does not verify"},
        {strdup("not.a-jwt"), OIDC_REFUSED, "not a JWT"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum oidc_result rc = check(f, cases[i].tok, why, NULL);
        if (rc != cases[i].rc || strstr(why, cases[i].why) == NULL)
            fail_msg("case %zu: %d '%s' lacks '%s'", i, rc, why, cases[i].why);
        free(cases[i].tok);
    }
    free(p);
}

static void idjag__claims_are_checked(void **state)
{
    struct fx *f = *state;
    char why[200], big[700];
    snprintf(big, sizeof(big), "{\"jti\":\"%0200d\"}", 7);
    struct {
        const char *over, *why;
    } cases[] = {
        {"{\"iss\":\"https://other-idp.example\"}", "another identity provider"},
        {"{\"aud\":\"https://evil.example\"}", "not for this authorization server"},
        {"{\"aud\":[\"" AS "\",\"https://b.example\"]}", "not for this authorization server"},
        {"{\"aud\":null}", "(aud)"},
        {"{\"client_id\":\"c_other\"}", "another client"},
        {"{\"client_id\":null}", "another client"},
        {"{\"resource\":\"https://elsewhere.example/mcp\"}", "does not serve"},
        {"{\"resource\":null}", "does not serve"},
        {"{\"exp\":1799999900,\"iat\":1799999800}", "has expired"},
        {"{\"exp\":null}", "no exp"},
        {"{\"iat\":null}", "no iat"},
        {"{\"iat\":1800000600,\"exp\":1800000900}", "in the future"},
        {"{\"iat\":1799999990,\"exp\":1800003600}", "longer than 10 minutes"},
        {"{\"nbf\":1800000600}", "not valid yet"},
        {"{\"jti\":null}", "no jti"},
        {"{\"jti\":\"has space\"}", "malformed"},
        {big, "no jti, or a malformed one"},
        {"{\"sub\":null}", "subject is missing"},
        {"{\"sub\":\"\"}", "subject is missing"},
        {"{\"sub\":\"a\\nb\"}", "subject is missing or malformed"},
        {"{\"scope\":[\"mcp\"]}", "scope is malformed"},
        {"{\"scope\":\"mcp  files\"}", "scope is malformed"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p = claims(cases[i].over);
        char *tok = th_jwt_es256(f->ec, HDR_EC, p);
        enum oidc_result rc = check(f, tok, why, NULL);
        if (rc != OIDC_REFUSED || strstr(why, cases[i].why) == NULL)
            fail_msg("case %zu (%s): %d '%s' lacks '%s'", i, cases[i].over, rc, why, cases[i].why);
        free(tok);
        free(p);
    }
    /* the audience without its trailing slash, and alone in an array, and a leeway in skew */
    const char *ok[] = {"{\"aud\":\"" AS "\"}", "{\"aud\":[\"" AS "/\"]}",
                        "{\"exp\":1799999990,\"iat\":1799999700}", "{\"scope\":null}"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char *p = claims(ok[i]);
        char *tok = th_jwt_es256(f->ec, HDR_EC, p);
        if (check(f, tok, why, NULL) != OIDC_OK)
            fail_msg("good %zu (%s) refused: %s", i, ok[i], why);
        free(tok);
        free(p);
    }
}

static void idjag__only_trusted_issuers(void **state)
{
    struct fx *f = *state;
    const char *why;
    char *p = claims("{\"iss\":\"https://idp.example/\"}"); /* not byte-identical */
    char *tok = th_jwt_es256(f->ec, HDR_EC, p);
    assert_null(idjag_issuer(&f->cfg, tok, &why));
    assert_non_null(strstr(why, "does not trust"));
    free(tok);
    free(p);
    p = claims("{\"iss\":null}");
    tok = th_jwt_es256(f->ec, HDR_EC, p);
    assert_null(idjag_issuer(&f->cfg, tok, &why));
    free(tok);
    free(p);
    assert_null(idjag_issuer(&f->cfg, "a.b", &why));
    assert_non_null(strstr(why, "not a JWT"));
    assert_true(idjag_enabled(&f->cfg));
    struct p2a_config off = {0};
    assert_false(idjag_enabled(&off));
    assert_null(idjag_issuer(&off, "x.y.z", &why));
    /* discovery: the trailing slash dropped; only a configured issuer's URL is one */
    char url[IDJAG_DISCOVERY_MAX];
    assert_true(idjag_discovery_url("https://idp.example/", url, sizeof(url)));
    assert_string_equal(url, "https://idp.example/.well-known/openid-configuration");
    assert_string_equal(idjag_issuer_of_discovery(&f->cfg, url), IDP);
    assert_null(idjag_issuer_of_discovery(&f->cfg, "https://evil.example/.well-known/x"));
}

static void idjag__scope_is_the_intersection(void **state)
{
    struct fx *f = *state;
    bool inv;
    char out[200];
    json_t *asserted = json_pack("{s:s}", "scope", "mcp files"),
           *narrow = json_pack("{s:s}", "scope", "mcp other"), *none = json_object();
    assert_null(idjag_scope(&f->cfg, asserted, "files", out, sizeof(out), &inv));
    assert_string_equal(out, "files");
    assert_null(idjag_scope(&f->cfg, asserted, NULL, out, sizeof(out), &inv));
    assert_string_equal(out, "mcp files"); /* what the identity provider granted */
    assert_null(idjag_scope(&f->cfg, narrow, NULL, out, sizeof(out), &inv));
    assert_string_equal(out, "mcp"); /* and we offer */
    assert_null(idjag_scope(&f->cfg, none, NULL, out, sizeof(out), &inv));
    assert_string_equal(out, "mcp"); /* no scope asserted or asked: the resource's */
    assert_null(idjag_scope(&f->cfg, none, "mcp", out, sizeof(out), &inv));
    assert_string_equal(out, "mcp");
    json_t *offline = json_pack("{s:s}", "scope", "mcp offline_access");
    assert_null(idjag_scope(&f->cfg, offline, NULL, out, sizeof(out), &inv));
    assert_string_equal(out, "mcp"); /* never a refresh token */
    json_decref(offline);
    /* no scope asserted: nothing beyond the resource's defaults (no person consents here) */
    assert_non_null(idjag_scope(&f->cfg, none, "files", out, sizeof(out), &inv));
    assert_false(inv);
    const char *why = idjag_scope(&f->cfg, asserted, "mcp admin", out, sizeof(out), &inv);
    assert_non_null(why);
    assert_false(inv); /* invalid_grant: beyond the assertion */
    assert_non_null(strstr(why, "more than the identity provider granted"));
    why = idjag_scope(&f->cfg, narrow, "other", out, sizeof(out), &inv);
    assert_true(inv);
    assert_non_null(why);
    assert_non_null(idjag_scope(&f->cfg, none, "a  b", out, sizeof(out), &inv));
    assert_true(inv);
    json_decref(asserted);
    json_decref(narrow);
    json_decref(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(idjag__good_assertions_with_each_algorithm, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(idjag__header_is_checked_before_any_key, setup, teardown),
        cmocka_unit_test_setup_teardown(idjag__claims_are_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(idjag__only_trusted_issuers, setup, teardown),
        cmocka_unit_test_setup_teardown(idjag__scope_is_the_intersection, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
