/* test_clients.c -- client metadata documents and client assertions (clients.h). */
#include "cm.h"

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "clients.h"
#include "helpers.h"
#include "jws.h"

#define URL "https://app.example.com/oauth/client.json"
#define ISS "https://auth.example.com"

static json_t *doc(const char *json, char *why, size_t n)
{
    return oauth_cimd_client(json, strlen(json), URL, why, n);
}

static void clients__cimd_ids(void **state)
{
    (void)state;
    static const char *const good[] = {URL, "https://a.example/c", "https://a.example:8443/c?v=1",
                                       "https://[2001:db8::1]/client"};
    static const char *const bad[] = {"http://a.example/c",       "https://a.example",
                                      "https://a.example/",       "https://a.example/c#frag",
                                      "https://u:p@a.example/c",  "https://a.example/./c",
                                      "https://a.example/a/../c", "https://a.example/c/..",
                                      "https://a.example/c d",    "c_AAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (oauth_cimd_id_check(good[i]) != NULL)
            fail_msg("%s refused: %s", good[i], oauth_cimd_id_check(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (oauth_cimd_id_check(bad[i]) == NULL)
            fail_msg("%s accepted", bad[i]);
}

static void clients__cimd_documents(void **state)
{
    (void)state;
    char why[200];
    json_t *c =
        doc("{\"client_id\":\"" URL "\",\"client_name\":\"App\","
            "\"redirect_uris\":[\"http://localhost/callback\",\"https://app.example.com/cb\"],"
            "\"grant_types\":[\"authorization_code\",\"refresh_token\"],\"extra\":1}",
            why, sizeof(why));
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "client_id")), URL);
    assert_string_equal(json_string_value(json_object_get(c, "token_endpoint_auth_method")),
                        "none"); /* not RFC 7591's client_secret_basic: no secret is shared */
    assert_int_equal(json_array_size(json_object_get(c, "redirect_uris")), 2);
    assert_null(json_object_get(c, "extra"));
    json_decref(c);

    /* Claude's shape: a grant we do not serve is left out, not refused */
    c = doc("{\"client_id\":\"" URL "\",\"client_name\":\"Claude\","
            "\"redirect_uris\":[\"https://claude.ai/api/mcp/auth_callback\"],"
            "\"grant_types\":[\"authorization_code\",\"refresh_token\","
            "\"urn:ietf:params:oauth:grant-type:jwt-bearer\"],\"response_types\":[\"code\"],"
            "\"token_endpoint_auth_method\":\"none\"}",
            why, sizeof(why));
    assert_non_null(c);
    json_t *grants = json_object_get(c, "grant_types");
    assert_int_equal(json_array_size(grants), 2);
    assert_string_equal(json_string_value(json_array_get(grants, 1)), "refresh_token");
    json_decref(c);
    /* ChatGPT's shape: only the plural member; with keys it is private_key_jwt */
    c = doc("{\"client_id\":\"" URL "\",\"client_name\":\"ChatGPT\","
            "\"redirect_uris\":[\"https://chatgpt.com/connector_platform_oauth_redirect\"],"
            "\"token_endpoint_auth_methods_supported\":[\"none\",\"private_key_jwt\"],"
            "\"jwks_uri\":\"https://chatgpt.com/oauth/connector/jwks.json\"}",
            why, sizeof(why));
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "token_endpoint_auth_method")),
                        "private_key_jwt");
    assert_string_equal(json_string_value(json_object_get(c, "jwks_uri")),
                        "https://chatgpt.com/oauth/connector/jwks.json");
    json_decref(c);
    /* the same list without keys: none */
    c = doc("{\"client_id\":\"" URL "\",\"client_name\":\"A\","
            "\"redirect_uris\":[\"https://a.example/cb\"],"
            "\"token_endpoint_auth_methods_supported\":[\"private_key_jwt\",\"none\"]}",
            why, sizeof(why));
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "token_endpoint_auth_method")),
                        "none");
    json_decref(c);

    static const struct {
        const char *json, *why;
    } bad[] = {
        {"[1]", "JSON object"},
        {"{\"client_id\":\"" URL "\",\"client_name\":\"A\","
         "\"grant_types\":[\"urn:ietf:params:oauth:grant-type:jwt-bearer\"],"
         "\"redirect_uris\":[\"https://a.example/cb\"]}",
         "grant_types names none that this server serves"},
        {"{\"client_id\":\"" URL "\",\"client_name\":\"A\",\"grant_types\":[\"refresh_token\"],"
         "\"redirect_uris\":[\"https://a.example/cb\"]}",
         "must list authorization_code"},
        {"{\"client_id\":\"" URL "\",\"client_name\":\"A\",\"grant_types\":[1],"
         "\"redirect_uris\":[\"https://a.example/cb\"]}",
         "array of at most 8 strings"},
        {"{\"client_id\":\"" URL "\",\"client_name\":\"A\","
         "\"token_endpoint_auth_methods_supported\":[\"private_key_jwt\"],"
         "\"redirect_uris\":[\"https://a.example/cb\"]}",
         "token_endpoint_auth_methods_supported"},
        {"{\"client_id\":\"" URL "\",\"client_name\":\"A\","
         "\"token_endpoint_auth_methods_supported\":\"none\","
         "\"redirect_uris\":[\"https://a.example/cb\"]}",
         "must be an array"},
        {"{\"client_id\":\"https://app.example.com/oauth/client.json/\",\"client_name\":\"A\","
         "\"redirect_uris\":[\"https://a.example/cb\"]}",
         "client_id is not its URL"},
        {"{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"]}", "client_name"},
        {"{\"client_id\":\"" URL "\",\"client_name\":\"A\"}", "redirect_uris"},
        {"{\"client_id\":\"" URL "\",\"client_name\":\"A\",\"client_secret\":\"s\","
         "\"redirect_uris\":[\"https://a.example/cb\"]}",
         "secret"},
        {"{\"client_id\":\"" URL "\",\"client_name\":\"A\","
         "\"token_endpoint_auth_method\":\"client_secret_basic\","
         "\"redirect_uris\":[\"https://a.example/cb\"]}",
         "none or private_key_jwt"},
        {"{\"client_id\":\"" URL "\",\"client_name\":\"A\","
         "\"token_endpoint_auth_method\":\"private_key_jwt\","
         "\"redirect_uris\":[\"https://a.example/cb\"]}",
         "jwks"},
        {"{\"client_id\":\"" URL "\",\"client_name\":\"A\",\"redirect_uris\":[\"javascript:x\"]}",
         "redirect_uris"},
        {"{\"client_id\":\"" URL "\",\"client_id\":\"" URL "\",\"client_name\":\"A\","
         "\"redirect_uris\":[\"https://a.example/cb\"]}",
         "JSON object"}, /* duplicate members */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        c = doc(bad[i].json, why, sizeof(why));
        if (c != NULL || strstr(why, bad[i].why) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, why, bad[i].why);
    }
}

static EVP_PKEY *rsa_key(void)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    assert_non_null(k);
    return k;
}

static char *jwks_of(EVP_PKEY *a, EVP_PKEY *b)
{
    char *ja = th_jwk_public(a, "k1"), *jb = th_jwk_public(b, "k2");
    char *out = malloc(strlen(ja) + strlen(jb) + 32);
    sprintf(out, "{\"keys\":[%s,%s]}", ja, jb);
    free(ja);
    free(jb);
    return out;
}

static void clients__assertions(void **state)
{
    (void)state;
    char *dir = th_tmpdir();
    EVP_PKEY *ec = th_write_key(dir, "ec"), *rsa = rsa_key(), *other = th_write_key(dir, "x");
    char *jwks_text = jwks_of(ec, rsa);
    json_t *jwks = json_loads(jwks_text, 0, NULL);
    assert_null(jws_keys_check(jwks));
    const char *auds[] = {ISS, ISS "/token"};
    int64_t now = 1800000000;
    char payload[512];
    struct oauth_assertion out;
    const char *cid = URL;
#define CLAIMS(iss, sub, aud, exp, jti)                                                            \
    snprintf(payload, sizeof(payload),                                                             \
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":%s,\"exp\":%lld,\"iat\":%lld,\"jti\":%s}",    \
             iss, sub, aud, (long long)(exp), (long long)now, jti)
    /* ES256 and RS256, by kid or without one */
    CLAIMS(cid, cid, "\"" ISS "\"", now + 60, "\"j1\"");
    char *t = th_jwt_es256(ec, "{\"alg\":\"ES256\",\"kid\":\"k1\"}", payload);
    assert_null(oauth_assertion_check(t, cid, jwks, auds, 2, now, 60, &out));
    assert_string_equal(out.jti, "j1");
    assert_int_equal(out.exp, now + 60);
    free(t);
    CLAIMS(cid, cid, "[\"x\",\"" ISS "/token\"]", now + 60, "\"j2\"");
    t = th_jwt_rs256(rsa, "{\"alg\":\"RS256\"}", payload);
    assert_null(oauth_assertion_check(t, cid, jwks, auds, 2, now, 60, &out));
    free(t);
    static const struct {
        const char *alg;
        int key; /* 0 ec, 1 rsa, 2 another key */
        const char *iss, *aud, *jti;
        int64_t exp;
        const char *why;
    } bad[] = {
        {"ES256", 2, URL, "\"" ISS "\"", "\"j\"", 60, "signature"},
        {"RS256", 0, URL, "\"" ISS "\"", "\"j\"", 60, "signature"}, /* EC key, RS256 claimed */
        {"HS256", 0, URL, "\"" ISS "\"", "\"j\"", 60, "ES256 or RS256"},
        {"ES256", 0, "https://evil.example/c", "\"" ISS "\"", "\"j\"", 60, "iss and sub"},
        {"ES256", 0, URL, "\"https://other.example\"", "\"j\"", 60, "aud"},
        {"ES256", 0, URL, "\"" ISS "\"", "\"j\"", -120, "expired"},
        {"ES256", 0, URL, "\"" ISS "\"", "\"j\"", 3600, "too long"},
        {"ES256", 0, URL, "\"" ISS "\"", "\"\"", 60, "jti"},
        {"ES256", 0, URL, "\"" ISS "\"", "1", 60, "jti"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CLAIMS(bad[i].iss, bad[i].iss, bad[i].aud, now + bad[i].exp, bad[i].jti);
        char header[64];
        snprintf(header, sizeof(header), "{\"alg\":\"%s\"}", bad[i].alg);
        EVP_PKEY *k = bad[i].key == 0 ? ec : bad[i].key == 1 ? rsa : other;
        t = strcmp(bad[i].alg, "RS256") == 0 && bad[i].key == 1 ? th_jwt_rs256(k, header, payload)
                                                                : th_jwt_es256(k, header, payload);
        const char *why = oauth_assertion_check(t, cid, jwks, auds, 2, now, 60, &out);
        if (why == NULL || strstr(why, bad[i].why) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, why ? why : "(accepted)", bad[i].why);
        free(t);
    }
    json_decref(jwks);
    free(jwks_text);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(other);
    th_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clients__cimd_ids),
        cmocka_unit_test(clients__cimd_documents),
        cmocka_unit_test(clients__assertions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
