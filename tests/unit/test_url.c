/* test_url.c -- URLs read once: split, shapes, paths, well-known locations, parameters. */
#include "cm.h"

#include "mbuf.h"
#include "url.h"

static void url__split(void **state)
{
    (void)state;
    struct url_parts u;
    assert_true(url_split("https://Example.COM:8443/a/b?c=d", &u));
    assert_true(u.has_authority);
    assert_true(url_scheme_is(&u, "HTTPS"));
    assert_int_equal(u.host_len, 11);
    assert_memory_equal(u.host, "Example.COM", 11);
    assert_string_equal(u.rest, "/a/b?c=d");
    assert_true(url_split("http://[::1]:3000/cb", &u));
    assert_true(url_host_is_loopback(&u));
    assert_true(url_split("http://LOCALHOST/cb", &u));
    assert_true(url_host_is_loopback(&u));
    assert_true(url_split("http://127.0.0.2/cb", &u));
    assert_false(url_host_is_loopback(&u)); /* only the three names */
    assert_true(url_split("com.example.app:/callback", &u));
    assert_false(u.has_authority);
    assert_string_equal(u.rest, "/callback");
    assert_false(url_split("https://user@host/", &u)); /* userinfo */
    assert_false(url_split("https://[::1/", &u));      /* unclosed bracket */
    assert_false(url_split("https://host:80a/", &u));  /* port not digits */
    assert_false(url_split("https://host:/", &u));
    assert_false(url_split("no scheme", &u));
    assert_false(url_split("1http://x", &u));
}

static void url__http_shapes(void **state)
{
    (void)state;
    assert_true(url_is_http("https://mcp.example.com/mcp"));
    assert_true(url_is_http("http://127.0.0.1:3000/mcp?x=1"));
    assert_false(url_is_http("https://"));
    assert_false(url_is_http("https:///path"));
    assert_false(url_is_http("ftp://host/"));
    assert_false(url_is_http("https://host/a b"));
    assert_false(url_is_http("https://host/a\"b"));
    assert_false(url_is_http("https://host/a\\b"));
    assert_false(url_is_http("https://host/#frag"));
    assert_false(url_is_http("https://host/caf\xc3\xa9"));
}

static void url__paths_and_well_known(void **state)
{
    (void)state;
    assert_int_equal(url_authority_end("https://h:1/p?q"), 11);
    assert_int_equal(url_authority_end("no-authority"), 0);
    assert_string_equal(url_path("https://h"), "");
    assert_string_equal(url_path("https://h/"), "");
    assert_string_equal(url_path("https://h/mcp/v1"), "/mcp/v1");
    char out[128];
    url_well_known("https://mcp.example.com/mcp", "oauth-protected-resource", out, sizeof(out));
    assert_string_equal(out, "https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
    url_well_known("https://auth.example.com/", "oauth-authorization-server", out, sizeof(out));
    assert_string_equal(out, "https://auth.example.com/.well-known/oauth-authorization-server");
}

static void url__params(void **state)
{
    (void)state;
    struct mbuf u = {0};
    mbuf_printf(&u, "http://127.0.0.1:4567/cb");
    url_add_param(&u, "code", "a-b_c.d~e");
    url_add_param(&u, "state", "x y&z=/\xc3\xa9");
    assert_string_equal(u.s, "http://127.0.0.1:4567/cb?code=a-b_c.d~e&state=x%20y%26z%3D%2F%C3%A9");
    mbuf_free(&u);
}

/* The path a route is chosen on: RFC 3986 5.2.4, and the shapes gateways read differently
 * refused. */
static void url__path_normalize(void **state)
{
    (void)state;
    char out[64];
    const char *why = NULL;
    static const char *const same[][2] = {
        {"/mcp", "/mcp"},
        {"/mcp/../other", "/other"},
        {"/mcp/./../other", "/other"},
        {"/mcp/a/b/../../x?y=/../z", "/mcp/x?y=/../z"}, /* the query is not a path */
        {"/mcp/.", "/mcp/"},
        {"/mcp/..", "/"},
        {"/./mcp", "/mcp"},
        {"/", "/"},
        {"/mcp/", "/mcp/"},
        {"/mcp/...", "/mcp/..."},
        {"/mcp/%41b", "/mcp/Ab"}, /* unreserved escapes decoded, as a gateway routes them */
        {"/%6Dcp/%61dmin%7e%2d%5F", "/mcp/admin~-_"},
        {"/mcp/%3A%25%20?q=%61", "/mcp/%3A%25%20?q=%61"}, /* others, and the query, kept */
        {"/mcp?", "/mcp?"},
    };
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        assert_true(url_path_normalize(same[i][0], out, sizeof(out), &why));
        assert_string_equal(out, same[i][1]);
    }
    static const char *const refused[] = {
        "mcp",
        "",
        "http://h/mcp",
        "/mcp/%2e%2e/other",
        "/mcp/%2E%2E/other",
        "/mcp/..%2fother",
        "/mcp/..%2Fother",
        "/mcp%5c..%5cother",
        "/mcp\\..\\other",
        "//mcp",
        "/mcp//../other",
        "/..",
        "/mcp/../../other",
        "/mcp#x",
        "/mcp/%",
        "/mcp/%4",
        "/mcp/%zz",
        "/mcp\r\nX: y",
        "/mcp\x7f",
        "/mcp?a=\n",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        why = NULL;
        assert_false(url_path_normalize(refused[i], out, sizeof(out), &why));
        assert_non_null(why);
    }
    /* what does not fit is refused, never cut */
    assert_false(url_path_normalize("/0123456789", out, 8, &why));
    assert_true(url_path_normalize("/012345", out, 8, &why));
    assert_false(url_path_normalize("/0123456", out, 8, &why));
    assert_false(url_path_normalize("/0?123456", out, 8, &why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url__split),
        cmocka_unit_test(url__http_shapes),
        cmocka_unit_test(url__paths_and_well_known),
        cmocka_unit_test(url__params),
        cmocka_unit_test(url__path_normalize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
