/* test_config.c -- defaults, precedence, bounds, redaction. */
#include "cm.h"

#include <jansson.h>

#include "config.h"

static int clear_env(void **state)
{
    (void)state;
    const char *vars[] = {"PIPE2_AUTH_ISSUER",     "PIPE2_AUTH_RESOURCE",
                          "PIPE2_AUTH_RPC_LISTEN", "PIPE2_AUTH_REDIS_URL",
                          "PIPE2_AUTH_WORKERS",    "PIPE2_AUTH_TLS_CERT",
                          "PIPE2_AUTH_TLS_KEY",    "PIPE2_AUTH_LAST_USED_FLUSH_INTERVAL"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    setenv("PIPE2_AUTH_KEYS_DIR", "/k", 1);
    setenv("PIPE2_AUTH_SERVICE_KEYS_FILE", "/s", 1);
    return 0;
}

static p2a_err load(struct p2a_config *cfg, char *err, int argc, char **argv)
{
    return config_load(cfg, argc, argv, err, 512);
}

static void config__defaults(void **state)
{
    (void)state;
    struct p2a_config cfg;
    char err[512];
    char *argv[] = {"pipe2-authd"};
    assert_int_equal(load(&cfg, err, 1, argv), P2A_OK);
    assert_string_equal(cfg.issuer, "http://127.0.0.1:8080");
    assert_int_equal(cfg.nresources, 1);
    assert_string_equal(cfg.resources[0], "http://127.0.0.1:3000/mcp");
    assert_string_equal(cfg.rpc_host, "127.0.0.1");
    assert_int_equal(cfg.rpc_port, 50051);
    assert_string_equal(cfg.redis_host, "127.0.0.1");
    assert_int_equal(cfg.redis_port, 6379);
    assert_int_equal(cfg.redis_db, 0);
    assert_null(cfg.redis_password);
    assert_true(cfg.workers >= 1);
    assert_int_equal(cfg.last_used_flush_s, 30);
    assert_int_equal(cfg.max_token_lifetime_s, 365 * 86400);
    assert_int_equal(cfg.revocation_poll_s, 5);
    assert_int_equal(cfg.revocation_staleness_s, 20);
    assert_int_equal(cfg.fwd_allow_options, 0); /* an OPTIONS needs a token unless allowed */
    config_deinit(&cfg);
}

static void config__flag_wins_over_environment(void **state)
{
    (void)state;
    setenv("PIPE2_AUTH_WORKERS", "3", 1);
    setenv("PIPE2_AUTH_ISSUER", "https://env.example/", 1);
    struct p2a_config cfg;
    char err[512];
    char *argv[] = {"pipe2-authd", "--workers=5", "--rpc-listen", "[::1]:7000"};
    assert_int_equal(load(&cfg, err, 4, argv), P2A_OK);
    assert_int_equal(cfg.workers, 5);
    assert_string_equal(cfg.issuer, "https://env.example"); /* trailing slash dropped */
    assert_string_equal(cfg.rpc_host, "::1");
    assert_int_equal(cfg.rpc_port, 7000);
    config_deinit(&cfg);
}

static void config__redis_url_with_password(void **state)
{
    (void)state;
    setenv("PIPE2_AUTH_REDIS_URL", "redis://user:s3cret@redis.internal:6380/2", 1);
    struct p2a_config cfg;
    char err[512];
    char *argv[] = {"pipe2-authd"};
    assert_int_equal(load(&cfg, err, 1, argv), P2A_OK);
    assert_string_equal(cfg.redis_host, "redis.internal");
    assert_int_equal(cfg.redis_port, 6380);
    assert_int_equal(cfg.redis_db, 2);
    assert_string_equal(cfg.redis_user, "user");
    assert_string_equal(cfg.redis_password, "s3cret");
    json_t *js = config_json(&cfg);
    char *buf = json_dumps(js, JSON_COMPACT);
    json_decref(js);
    assert_null(strstr(buf, "s3cret"));
    assert_non_null(strstr(buf, "\"redis://user:***@redis.internal:6380/2\""));
    free(buf);
    config_deinit(&cfg);
}

static void expect_refused(const char *var, const char *value, const char *flag, const char *needle)
{
    struct p2a_config cfg;
    char err[512] = "";
    if (var != NULL)
        setenv(var, value, 1);
    char *argv[] = {"pipe2-authd", (char *)flag};
    assert_int_equal(load(&cfg, err, flag ? 2 : 1, argv), P2A_ERR_INVALID);
    if (strstr(err, needle) == NULL)
        fail_msg("error '%s' does not name '%s'", err, needle);
    if (var != NULL)
        unsetenv(var);
}

static void config__invalid_values_are_refused_by_name(void **state)
{
    (void)state;
    expect_refused("PIPE2_AUTH_WORKERS", "0", NULL, "PIPE2_AUTH_WORKERS");
    expect_refused("PIPE2_AUTH_WORKERS", "two", NULL, "PIPE2_AUTH_WORKERS");
    expect_refused("PIPE2_AUTH_RPC_LISTEN", "127.0.0.1", NULL, "PIPE2_AUTH_RPC_LISTEN");
    expect_refused("PIPE2_AUTH_RPC_LISTEN", "127.0.0.1:99999", NULL, "PIPE2_AUTH_RPC_LISTEN");
    expect_refused("PIPE2_AUTH_REDIS_URL", "http://x", NULL, "PIPE2_AUTH_REDIS_URL");
    expect_refused("PIPE2_AUTH_ISSUER", "ftp://x", NULL, "PIPE2_AUTH_ISSUER");
    expect_refused("PIPE2_AUTH_RESOURCE", "http://a/mcp,,http://b", NULL, "PIPE2_AUTH_RESOURCE");
    expect_refused("PIPE2_AUTH_TLS_CERT", "/cert.pem", NULL, "TLS_KEY");
    expect_refused(NULL, NULL, "--no-such-thing=1", "unknown setting");
    expect_refused(NULL, NULL, "--last-used-flush-interval=0", "--last-used-flush-interval");
    expect_refused(NULL, NULL, "--revocation-staleness=30", "--revocation-staleness");
    expect_refused("PIPE2_AUTH_REVOCATION_POLL_INTERVAL", "20", NULL,
                   "PIPE2_AUTH_REVOCATION_STALENESS"); /* 20 s staleness, not above 20 s poll */
    /* codes, tokens and passwords never cross a network in clear, unless a test says so */
    expect_refused("PIPE2_AUTH_ISSUER", "http://auth.example", NULL, "loopback");
    expect_refused(NULL, NULL, "--resource-scopes=mcp admin", "PIPE2_AUTH_SCOPES");
    expect_refused(NULL, NULL, "--resource-scopes=mcp offline_access", "offline_access");
    expect_refused(NULL, NULL, "--resource-scopes=", "PIPE2_AUTH_RESOURCE_SCOPES");
    expect_refused(NULL, NULL, "--forward-auth-resources=gw.example/x=https://not.served/mcp",
                   "not one of PIPE2_AUTH_RESOURCE");
    expect_refused(NULL, NULL, "--forward-auth-resources=gw.example=http://127.0.0.1:3000/mcp",
                   "host/path-prefix=resource");
    unsetenv("PIPE2_AUTH_KEYS_DIR");
    expect_refused(NULL, NULL, NULL, "PIPE2_AUTH_KEYS_DIR");
}

static void config__scopes_and_issuers_that_are_allowed(void **state)
{
    (void)state;
    struct p2a_config cfg;
    char err[512];
    char *argv[] = {"pipe2-authd"};
    assert_int_equal(load(&cfg, err, 1, argv), P2A_OK);
    assert_string_equal(cfg.scopes, "mcp offline_access"); /* the AS offers refresh */
    assert_string_equal(cfg.resource_scopes, "mcp");       /* resources never do */
    config_deinit(&cfg);
    static const char *const ok[] = {"http://localhost:8080", "http://[::1]:8080",
                                     "https://auth.example"};
    for (size_t i = 0; i < 3; i++) {
        setenv("PIPE2_AUTH_ISSUER", ok[i], 1);
        assert_int_equal(load(&cfg, err, 1, argv), P2A_OK);
        config_deinit(&cfg);
    }
    setenv("PIPE2_AUTH_ISSUER", "http://auth.example", 1);
    char *unsafe[] = {"pipe2-authd", "--insecure-http-issuer=1"};
    assert_int_equal(load(&cfg, err, 2, unsafe), P2A_OK);
    config_deinit(&cfg);
    unsetenv("PIPE2_AUTH_ISSUER");
}

static void config__several_resources(void **state)
{
    (void)state;
    setenv("PIPE2_AUTH_RESOURCE", "https://a.test/mcp, https://b.test/mcp", 1);
    struct p2a_config cfg;
    char err[512];
    char *argv[] = {"pipe2-authd"};
    assert_int_equal(load(&cfg, err, 1, argv), P2A_OK);
    assert_int_equal(cfg.nresources, 2);
    assert_string_equal(cfg.resources[1], "https://b.test/mcp");
    config_deinit(&cfg);
    unsetenv("PIPE2_AUTH_RESOURCE");
}

static void config__id_jag_issuers(void **state)
{
    (void)state;
    struct p2a_config cfg;
    char err[512];
    char *argv[] = {"pipe2-authd"};
    assert_int_equal(load(&cfg, err, 1, argv), P2A_OK);
    assert_int_equal(cfg.nid_jag_issuers, 0); /* unset: the grant is off */
    config_deinit(&cfg);
    setenv("PIPE2_AUTH_ID_JAG_ISSUERS", "https://acme.okta.com, http://127.0.0.1:9000/,", 1);
    assert_int_equal(load(&cfg, err, 1, argv), P2A_OK);
    assert_int_equal(cfg.nid_jag_issuers, 2);
    assert_string_equal(cfg.id_jag_issuers[1], "http://127.0.0.1:9000/"); /* as written */
    config_deinit(&cfg);
    unsetenv("PIPE2_AUTH_ID_JAG_ISSUERS");
    expect_refused(NULL, NULL, "--id-jag-issuers=http://idp.example", "loopback");
    expect_refused(NULL, NULL, "--id-jag-issuers=https://idp.example/?t=1", "no query");
    expect_refused(NULL, NULL,
                   "--id-jag-issuers=https://a,https://b,https://c,https://d,https://e,https://f,"
                   "https://g,https://h,https://i",
                   "at most 8");
}

static void config__sign_in_settings(void **state)
{
    (void)state;
    struct p2a_config cfg;
    char err[512] = "";
    char *argv[] = {"pipe2-authd",
                    "--local-accounts=off",
                    "--account-pages=on",
                    "--upstream-issuer=https://login.example/",
                    "--upstream-client-id=p2a",
                    "--upstream-required-claim=groups=mcp"};
    assert_int_equal(load(&cfg, err, 6, argv), P2A_OK);
    assert_int_equal(cfg.local_accounts, 0);
    assert_int_equal(cfg.account_pages, 1);
    assert_string_equal(cfg.upstream_issuer, "https://login.example"); /* trailing / gone */
    assert_null(cfg.upstream_client_secret);                           /* then private_key_jwt */
    json_t *shown = config_json(&cfg);
    assert_string_equal(json_string_value(json_object_get(shown, "PIPE2_AUTH_LOCAL_ACCOUNTS")),
                        "off");
    json_decref(shown);
    config_deinit(&cfg);
    expect_refused(NULL, NULL, "--local-accounts=maybe", "on or off");
    expect_refused(NULL, NULL, "--forward-auth-allow-options=maybe", "on or off");
    char *opt[] = {"pipe2-authd", "--forward-auth-allow-options=on"};
    assert_int_equal(load(&cfg, err, 2, opt), P2A_OK);
    assert_int_equal(cfg.fwd_allow_options, 1);
    config_deinit(&cfg);
    expect_refused(NULL, NULL, "--local-accounts=off", "PIPE2_AUTH_UPSTREAM_ISSUER");
    expect_refused(NULL, NULL, "--upstream-issuer=http://login.example", "loopback");
    expect_refused(NULL, NULL, "--upstream-issuer=https://login.example",
                   "PIPE2_AUTH_UPSTREAM_CLIENT_ID");
    setenv("PIPE2_AUTH_UPSTREAM_CLIENT_ID", "p2a", 1);
    setenv("PIPE2_AUTH_UPSTREAM_ISSUER", "http://127.0.0.1:9000", 1); /* loopback: allowed */
    expect_refused(NULL, NULL, "--upstream-scopes=email profile", "openid");
    expect_refused(NULL, NULL, "--upstream-required-claim=groups", "name=value");
    unsetenv("PIPE2_AUTH_UPSTREAM_CLIENT_ID");
    unsetenv("PIPE2_AUTH_UPSTREAM_ISSUER");
}

static void config__unknown_variables_are_named(void **state)
{
    (void)state;
    assert_string_equal(config_closest("REVOCATION_STALENES", 19), "REVOCATION_STALENESS");
    assert_string_equal(config_closest("RESOUCRE", 8), "RESOURCE");
    assert_null(config_closest("SOMETHING_ELSE_ENTIRELY", 23));
    char *env[] = {"PATH=/bin",
                   "PIPE2_AUTH_RESOURCE=http://127.0.0.1:3000/mcp",
                   "PIPE2_AUTH_REVOCATION_STALENES=5",
                   "PIPE2_AUTH_NOTHING_LIKE_IT=1",
                   "PIPE2_AUTH_=",
                   NULL};
    assert_int_equal(config_warn_unknown(env), 3);
    char *none[] = {"PIPE2_AUTH_ISSUER=http://127.0.0.1:8080", NULL};
    assert_int_equal(config_warn_unknown(none), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(config__defaults, clear_env),
        cmocka_unit_test_setup(config__flag_wins_over_environment, clear_env),
        cmocka_unit_test_setup(config__redis_url_with_password, clear_env),
        cmocka_unit_test_setup(config__invalid_values_are_refused_by_name, clear_env),
        cmocka_unit_test_setup(config__several_resources, clear_env),
        cmocka_unit_test_setup(config__scopes_and_issuers_that_are_allowed, clear_env),
        cmocka_unit_test_setup(config__sign_in_settings, clear_env),
        cmocka_unit_test_setup(config__id_jag_issuers, clear_env),
        cmocka_unit_test(config__unknown_variables_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
