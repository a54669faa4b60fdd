/* test_oauth.c -- the OAuth rules without I/O: forms, headers, redirect URIs, resources,
 * scopes, PKCE, passwords, client metadata. */
#include "cm.h"

#include <jansson.h>

#include "clients.h"
#include "config.h"
#include "oauth.h"

static void oauth__form(void **state)
{
    (void)state;
    struct oauth_form f;
    const char *s = "grant_type=authorization_code&code=a%2Bb+c&&empty=&x";
    assert_int_equal(oauth_form_parse(s, strlen(s), &f), P2A_OK);
    assert_string_equal(oauth_form_get(&f, "grant_type"), "authorization_code");
    assert_string_equal(oauth_form_get(&f, "code"), "a+b c");
    assert_null(oauth_form_get(&f, "empty")); /* empty counts as absent */
    assert_null(oauth_form_get(&f, "x"));
    assert_null(oauth_form_get(&f, "missing"));
    oauth_form_free(&f);
    /* RFC 8707: several resource parameters, one list */
    s = "resource=https%3A%2F%2Fa.example%2Fmcp&x=1&resource=https://b.example";
    assert_int_equal(oauth_form_parse(s, strlen(s), &f), P2A_OK);
    assert_string_equal(oauth_form_get(&f, "resource"), "https://a.example/mcp https://b.example");
    oauth_form_free(&f);
    const char *bad[] = {"a=1&a=2", "a=%zz", "a=%4", "a=%00", "=v"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(oauth_form_parse(bad[i], strlen(bad[i]), &f), P2A_ERR_INVALID);
        assert_true(f.why[0] != '\0');
        oauth_form_free(&f);
    }
    char many[400] = "";
    for (int i = 0; i < 40; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "p%d=1&", i);
    assert_int_equal(oauth_form_parse(many, strlen(many), &f), P2A_ERR_INVALID);
    oauth_form_free(&f);
}

static void oauth__headers(void **state)
{
    (void)state;
    char id[80], secret[100], v[64];
    /* "c_abc:s3cr+t" raw, and form-encoded as RFC 6749 2.3.1 says */
    assert_true(
        oauth_basic_parse("Basic Y19hYmM6czNjcit0", id, sizeof(id), secret, sizeof(secret)));
    assert_string_equal(id, "c_abc");
    assert_string_equal(secret, "s3cr+t");
    assert_true(
        oauth_basic_parse("basic Y19hYmM6czNjciUyQnQ=", id, sizeof(id), secret, sizeof(secret)));
    assert_string_equal(secret, "s3cr+t");
    assert_false(oauth_basic_parse("Basic !!!!", id, sizeof(id), secret, sizeof(secret)));
    assert_false(oauth_basic_parse("Basic bm9jb2xvbg==", id, sizeof(id), secret, sizeof(secret)));
    assert_false(oauth_basic_parse("Bearer x", id, sizeof(id), secret, sizeof(secret)));
    size_t n;
    assert_non_null(oauth_bearer("Bearer abc ", &n));
    assert_int_equal(n, 3);
    assert_null(oauth_bearer("Bearer ", &n));
    assert_true(oauth_cookie_get("a=1; p2a_session=xyz; b=2", "p2a_session", v, sizeof(v)));
    assert_string_equal(v, "xyz");
    assert_false(oauth_cookie_get("xp2a_session=1", "p2a_session", v, sizeof(v)));
    assert_false(oauth_cookie_get(NULL, "p2a_session", v, sizeof(v)));
}

static void oauth__redirect_uris(void **state)
{
    (void)state;
    const char *good[] = {"https://claude.ai/api/mcp/auth_callback",
                          "http://127.0.0.1:33418/",
                          "http://localhost/callback",
                          "http://[::1]:8080/cb",
                          "cursor://anysphere.cursor-mcp/oauth/callback",
                          "com.example.app:/oauth2redirect"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_null(oauth_redirect_uri_check(good[i]));
    const char *bad[] = {"javascript:alert(1)",
                         "JavaScript://x/%0aalert(1)",
                         "data:text/html,x",
                         "file:///etc/passwd",
                         "vbscript:x",
                         "http://example.com/cb",
                         "https://a.example/cb#x",
                         "https://user@a.example/cb",
                         "https:///cb",
                         "no-scheme",
                         "https://a.example/c b",
                         "",
                         "http://127.0.0.1:/cb"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_non_null(oauth_redirect_uri_check(bad[i]));
    assert_true(
        oauth_redirect_uri_match("http://127.0.0.1/callback", "http://127.0.0.1:5123/callback"));
    assert_true(oauth_redirect_uri_match("http://localhost:1/cb", "http://localhost:2/cb"));
    assert_true(oauth_redirect_uri_match("http://127.0.0.1", "http://127.0.0.1:9/"));
    assert_false(oauth_redirect_uri_match("http://localhost/cb", "http://127.0.0.1/cb"));
    assert_false(oauth_redirect_uri_match("http://127.0.0.1/cb", "http://127.0.0.1/cb2"));
    assert_false(oauth_redirect_uri_match("http://127.0.0.1/cb", "http://127.0.0.1/cb?x=1"));
    assert_false(oauth_redirect_uri_match("https://a.example/cb", "https://a.example:444/cb"));
    assert_false(oauth_redirect_uri_match("https://a.example/cb", "https://A.example/cb"));
    /* a code exchange names the URI its authorization request used, up to an empty path */
    assert_true(oauth_redirect_uri_same("http://127.0.0.1:33418", "http://127.0.0.1:33418/"));
    assert_true(oauth_redirect_uri_same("https://a.example/", "https://a.example"));
    assert_true(oauth_redirect_uri_same("https://a.example/cb", "https://a.example/cb"));
    assert_false(oauth_redirect_uri_same("http://127.0.0.1:1/cb", "http://127.0.0.1:2/cb"));
    assert_false(oauth_redirect_uri_same("https://a.example/cb", "https://a.example/cb/"));
    assert_false(oauth_redirect_uri_same("https://a.example", "https://a.example.org/"));
    assert_false(oauth_redirect_uri_same("https://a.example", "https://b.example/"));
    assert_false(oauth_redirect_uri_same("https://a.example", "http://a.example/"));
}

static void oauth__resources_pkce(void **state)
{
    (void)state;
    struct p2a_config cfg = {0};
    char r0[] = "https://mcp.example.com/mcp", r1[] = "https://other.example.com";
    cfg.resources[0] = r0, cfg.resources[1] = r1, cfg.nresources = 2;
    assert_ptr_equal(oauth_resource_find(&cfg, "HTTPS://MCP.example.com/mcp/"), r0);
    assert_ptr_equal(oauth_resource_find(&cfg, "https://other.example.com/"), r1);
    assert_null(oauth_resource_find(&cfg, "https://mcp.example.com/mcp#x"));
    assert_null(oauth_resource_find(&cfg, "https://mcp.example.com/MCP"));
    char list[200];
    assert_true(oauth_resources_canon(&cfg,
                                      "https://OTHER.example.com/ https://mcp.example.com/mcp "
                                      "https://other.example.com",
                                      list, sizeof(list)));
    assert_string_equal(list, "https://other.example.com https://mcp.example.com/mcp"); /* once */
    assert_false(oauth_resources_canon(&cfg, "https://mcp.example.com/mcp https://x.example", list,
                                       sizeof(list)));
    assert_false(oauth_resources_canon(&cfg, "", list, sizeof(list)));
    assert_false(oauth_resources_canon(&cfg, "https://mcp.example.com/mcp", list, 10));
    assert_true(oauth_resources_within("https://a https://b", "https://b"));
    assert_false(oauth_resources_within("https://a", "https://a https://b"));

    /* RFC 7636 appendix B */
    const char *v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const char *c = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    assert_true(oauth_pkce_s256_ok(v, c));
    assert_false(oauth_pkce_s256_ok(c, c));
    assert_false(oauth_pkce_s256_ok("short", c));
    assert_false(oauth_pkce_verifier_valid("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX!"));
    assert_false(oauth_pkce_challenge_valid("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"));
}

static void oauth__passwords(void **state)
{
    (void)state;
    char h[OAUTH_PASSWORD_HASH_MAX];
    assert_int_equal(oauth_password_hash("a long enough passphrase", h, sizeof(h)), P2A_OK);
    assert_true(strncmp(h, "$scrypt$ln=15,r=8,p=1$", 22) == 0);
    assert_true(oauth_password_verify("a long enough passphrase", h));
    assert_false(oauth_password_verify("a long enough passphrasE", h));
    assert_false(oauth_password_verify("x", "$scrypt$ln=99,r=8,p=1$AAAA$AAAA"));
    assert_false(oauth_password_verify("x", "garbage"));
    assert_null(oauth_password_check("ana", "a long enough passphrase"));
    assert_non_null(oauth_password_check("ana", "short"));
    assert_non_null(oauth_password_check("ana-is-here", "ANA-IS-HERE"));
    assert_non_null(oauth_password_check("ana", "zzzzzzzzzzzz"));
    assert_non_null(oauth_password_check("ana", "Password123"));
    char big[300];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[0] = 'y';
    assert_non_null(oauth_password_check("ana", big));
    assert_null(oauth_username_check("ana.b@example-1"));
    assert_non_null(oauth_username_check("ana b"));
    assert_non_null(oauth_username_check(""));
}

/* The registration rule over a parsed body: what /register and RegisterClient both call. */
static p2a_err reg(const char *text, struct oauth_client_reg *out, const char **err)
{
    char desc[200];
    json_t *body = oauth_json_object(text, strlen(text));
    if (body == NULL) {
        *err = "invalid_client_metadata"; /* what /register answers to a body that is none */
        return P2A_ERR_INVALID;
    }
    p2a_err e = oauth_client_register(body, 1000, out, err, desc, sizeof(desc));
    json_decref(body);
    return e;
}

static void oauth__client_metadata(void **state)
{
    (void)state;
    const char *err;
    struct oauth_client_reg r;
    const char *ok = "{\"client_name\":\"App\",\"redirect_uris\":[\"http://127.0.0.1/cb\"],"
                     "\"token_endpoint_auth_method\":\"none\",\"logo_uri\":\"x\"}";
    assert_int_equal(reg(ok, &r, &err), P2A_OK);
    json_t *m = json_loads(r.response, 0, NULL);
    assert_null(json_object_get(m, "logo_uri")); /* unknown members are dropped */
    assert_string_equal(json_string_value(json_object_get(m, "token_endpoint_auth_method")),
                        "none");
    assert_int_equal(json_array_size(json_object_get(m, "grant_types")), 2);
    assert_true(oauth_client_id_valid(r.client_id));
    assert_null(strstr(r.response, "client_secret"));
    json_decref(m);
    oauth_client_reg_deinit(&r);
    const char *conf = "{\"redirect_uris\":[\"https://a.example/cb\"],"
                       "\"token_endpoint_auth_method\":\"client_secret_basic\"}";
    assert_int_equal(reg(conf, &r, &err), P2A_OK);
    assert_non_null(strstr(r.response, "client_secret"));
    assert_null(strstr(r.record, "\"client_secret\"")); /* stored: its digest only */
    assert_non_null(strstr(r.record, "client_secret_sha256"));
    oauth_client_reg_deinit(&r);
    struct {
        const char *body, *error;
    } bad[] = {
        {"[]", "invalid_client_metadata"},
        {"{\"redirect_uris\":[]}", "invalid_redirect_uri"},
        {"{\"redirect_uris\":[\"javascript:x\"]}", "invalid_redirect_uri"},
        {"{\"redirect_uris\":[\"https://a/b\"],\"grant_types\":[\"implicit\"]}",
         "invalid_client_metadata"},
        {"{\"redirect_uris\":[\"https://a/b\"],\"client_name\":7}", "invalid_client_metadata"},
        {"{\"redirect_uris\":[\"https://a/b\"],\"redirect_uris\":[\"https://c/d\"]}",
         "invalid_client_metadata"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(reg(bad[i].body, &r, &err), P2A_ERR_INVALID);
        assert_string_equal(err, bad[i].error);
        assert_null(r.record);
    }
}

/* An administrator's registration (RegisterClient): more grant types, keys, resources. */
static p2a_err reg_admin(const char *text, struct oauth_client_reg *out, char *desc, size_t n)
{
    static char r0[] = "https://mcp.example.com/mcp", r1[] = "https://other.example.com/mcp";
    struct p2a_config cfg = {0};
    cfg.resources[0] = r0, cfg.resources[1] = r1, cfg.nresources = 2;
    const char *err;
    json_t *body = oauth_json_object(text, strlen(text));
    assert_non_null(body);
    p2a_err e = oauth_client_register_admin(body, &cfg, 1000, out, &err, desc, n);
    json_decref(body);
    return e;
}

static void oauth__client_admin_grants(void **state)
{
    (void)state;
    struct oauth_client_reg r;
    char desc[200];
    /* a client-credentials client: no redirect URIs, a secret by default, its resources */
    const char *cc = "{\"grant_types\":[\"client_credentials\"],"
                     "\"resources\":[\"HTTPS://mcp.example.com/mcp/\"],\"scope\":\"mcp:read\"}";
    assert_int_equal(reg_admin(cc, &r, desc, sizeof(desc)), P2A_OK);
    json_t *m = json_loads(r.record, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(m, "token_endpoint_auth_method")),
                        "client_secret_basic");
    assert_string_equal(json_string_value(json_array_get(json_object_get(m, "resources"), 0)),
                        "https://mcp.example.com/mcp"); /* as configured */
    assert_null(json_object_get(m, "redirect_uris"));
    assert_null(json_object_get(m, "response_types"));
    assert_true(oauth_client_has_grant(m, OAUTH_GRANT_CLIENT_CREDENTIALS));
    assert_false(oauth_client_has_grant(m, OAUTH_GRANT_CODE));
    assert_non_null(oauth_client_resource(m, "https://mcp.example.com/mcp/"));
    assert_null(oauth_client_resource(m, "https://other.example.com/mcp"));
    assert_non_null(strstr(r.response, "client_secret"));
    json_decref(m);
    oauth_client_reg_deinit(&r);
    /* keys make private_key_jwt the default */
    const char *pk = "{\"grant_types\":[\"client_credentials\"],\"resources\":["
                     "\"https://other.example.com/mcp\"],\"jwks\":{\"keys\":[{\"kty\":\"EC\","
                     "\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                     "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}}";
    assert_int_equal(reg_admin(pk, &r, desc, sizeof(desc)), P2A_OK);
    assert_non_null(strstr(r.record, "\"private_key_jwt\""));
    assert_null(strstr(r.response, "client_secret"));
    oauth_client_reg_deinit(&r);
    struct {
        const char *body, *why;
    } bad[] = {
        {"{\"grant_types\":[\"implicit\"]}", "grant_types[0] is not a grant type"},
        {"{\"grant_types\":[\"client_credentials\"]}", "client_credentials needs resources"},
        {"{\"grant_types\":[\"client_credentials\"],\"resources\":[\"https://evil.example/\"]}",
         "resources[0] is not a resource"},
        {"{\"grant_types\":[\"client_credentials\"],\"resources\":\"x\"}",
         "resources must be an array"},
        {"{\"grant_types\":[\"client_credentials\"],\"token_endpoint_auth_method\":\"none\","
         "\"resources\":[\"https://mcp.example.com/mcp\"]}",
         "client_credentials needs a confidential client"},
        {"{\"grant_types\":[\"client_credentials\"],\"jwks\":{\"keys\":[]},"
         "\"resources\":[\"https://mcp.example.com/mcp\"]}",
         "jwks:"},
        {"{\"grant_types\":[\"client_credentials\"],\"token_endpoint_auth_method\":"
         "\"client_secret_basic\",\"jwks_uri\":\"https://k.example/jwks\","
         "\"resources\":[\"https://mcp.example.com/mcp\"]}",
         "jwks and jwks_uri are for"},
        {"{\"grant_types\":[\"authorization_code\"]}", "redirect_uris must be"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(reg_admin(bad[i].body, &r, desc, sizeof(desc)), P2A_ERR_INVALID);
        if (strstr(desc, bad[i].why) == NULL)
            fail_msg("case %zu: %s", i, desc);
    }
    /* anyone else (/register) is left the code and refresh grants only */
    const char *err;
    const char *anon = "{\"redirect_uris\":[\"https://a.example/cb\"],\"grant_types\":["
                       "\"client_credentials\",\"authorization_code\"],"
                       "\"resources\":[\"https://mcp.example.com/mcp\"]}";
    assert_int_equal(reg(anon, &r, &err), P2A_OK);
    assert_null(strstr(r.record, "client_credentials"));
    assert_null(strstr(r.record, "resources"));
    oauth_client_reg_deinit(&r);
    assert_true(oauth_grant_confidential(OAUTH_GRANT_TOKEN_EXCHANGE));
    assert_false(oauth_grant_confidential(OAUTH_GRANT_REFRESH));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(oauth__form),
        cmocka_unit_test(oauth__headers),
        cmocka_unit_test(oauth__redirect_uris),
        cmocka_unit_test(oauth__resources_pkce),
        cmocka_unit_test(oauth__passwords),
        cmocka_unit_test(oauth__client_metadata),
        cmocka_unit_test(oauth__client_admin_grants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
