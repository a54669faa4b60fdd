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
    assert_false(url_split("https://user@host/", &u));  /* userinfo */
    assert_false(url_split("https://[::1/", &u));       /* unclosed bracket */
    assert_false(url_split("https://host:80a/", &u));   /* port not digits */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url__split),
        cmocka_unit_test(url__http_shapes),
        cmocka_unit_test(url__paths_and_well_known),
        cmocka_unit_test(url__params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
