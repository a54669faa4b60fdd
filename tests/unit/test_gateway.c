/* test_gateway.c -- the rule a gateway's request is judged by (core/gateway.c): one name and
 * one value per attribute, normalised paths on segment boundaries, OPTIONS only when allowed. */
#include "cm.h"

#include <string.h>

#include "gateway.h"

#define MCP "https://gw.example/mcp"
#define OTHER "https://gw.example/other"

static struct p2a_config two_servers(void)
{
    static char mcp[] = MCP, other[] = OTHER;
    struct p2a_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.resources[0] = mcp;
    cfg.resources[1] = other;
    cfg.nresources = 2;
    cfg.routes[0] = (struct config_route){.host = "gw.example", .prefix = "/mcp", .resource = MCP};
    cfg.routes[1] =
        (struct config_route){.host = "gw.example", .prefix = "/other", .resource = OTHER};
    cfg.nroutes = 2;
    return cfg;
}

static void line(struct gateway_attrs *a, const char *name, const char *value)
{
    (void)gateway_header(a, name, strlen(name), value, strlen(value));
}

static enum gateway_verdict judge(const struct p2a_config *cfg, const struct gateway_attrs *a,
                                  const char **resource, const char **why)
{
    return gateway_judge_headers(cfg, a, "GET", "", resource, why);
}

static void gateway__one_name_per_attribute(void **state)
{
    (void)state;
    struct p2a_config cfg = two_servers();
    struct gateway_attrs a;
    const char *res, *why;
    /* nginx's own headers: judged */
    gateway_attrs_reset(&a);
    line(&a, "Host", "p2a-forward-auth");
    line(&a, "X-Forwarded-Host", "gw.example");
    line(&a, "X-Original-URI", "/mcp?x=1");
    line(&a, "X-Original-Method", "POST");
    assert_int_equal(judge(&cfg, &a, &res, &why), GW_JUDGE);
    assert_string_equal(res, MCP);
    /* each second name, second line or second value a client could add: refused */
    static const char *const added[][2] = {
        {"X-Forwarded-Method", "OPTIONS"},  {"x-forwarded-method", "POST"},
        {"X-ORIGINAL-METHOD", "POST"},      {"X-Forwarded-Uri", "/mcp"},
        {"x-original-uri", "/mcp"},         {"X-Original-URL", "https://gw.example/mcp"},
        {"X-Forwarded-Host", "gw.example"}, {"host", "gw.example"},
    };
    for (size_t i = 0; i < sizeof(added) / sizeof(added[0]); i++) {
        struct gateway_attrs b = a;
        assert_true(
            gateway_header(&b, added[i][0], strlen(added[i][0]), added[i][1], strlen(added[i][1])));
        why = NULL;
        assert_int_equal(judge(&cfg, &b, &res, &why), GW_REFUSE);
        assert_non_null(why);
        assert_null(res);
    }
    /* two values in one line, an empty one, a method that is no token */
    static const char *const bad[][2] = {
        {"X-Forwarded-Host", "gw.example, evil.example"},
        {"X-Forwarded-Host", "gw.example evil"},
        {"X-Forwarded-Method", "GET, OPTIONS"},
        {"X-Forwarded-Method", ""},
        {"X-Forwarded-Uri", ""},
        {"X-Original-URL", "/mcp"},
        {"X-Forwarded-Host", "gw.example/other"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct gateway_attrs b;
        gateway_attrs_reset(&b);
        line(&b, bad[i][0], bad[i][1]);
        assert_int_equal(judge(&cfg, &b, &res, &why), GW_REFUSE);
    }
    /* names the rule does not read change nothing */
    gateway_attrs_reset(&a);
    assert_false(gateway_header(&a, "X-Forwarded-Path", 16, "/mcp", 4));
    assert_false(gateway_header(&a, "X_Forwarded_Method", 18, "OPTIONS", 7));
    /* X-Original-URL (ingress-nginx): its path is read, never its host */
    gateway_attrs_reset(&a);
    line(&a, "X-Forwarded-Host", "gw.example");
    line(&a, "X-Original-URL", "https://elsewhere.example/other/x?y");
    assert_int_equal(judge(&cfg, &a, &res, &why), GW_JUDGE);
    assert_string_equal(res, OTHER);
    /* Envoy's shape (the path after /forward-auth) with a URI header beside it: refused */
    gateway_attrs_reset(&a);
    line(&a, "Host", "gw.example");
    assert_int_equal(gateway_judge_headers(&cfg, &a, "GET", "/other", &res, &why), GW_JUDGE);
    assert_string_equal(res, OTHER);
    static const char *const beside[] = {"X-Forwarded-Uri", "X-Forwarded-Method",
                                         "X-Original-Method", "X-Forwarded-Host"};
    for (size_t i = 0; i < sizeof(beside) / sizeof(beside[0]); i++) {
        struct gateway_attrs b = a;
        line(&b, beside[i], beside[i][2] == 'F' && beside[i][12] == 'H' ? "gw.example" : "/mcp");
        assert_int_equal(gateway_judge_headers(&cfg, &b, "GET", "/other", &res, &why), GW_REFUSE);
        assert_int_equal(gateway_judge_headers(&cfg, &b, "GET", "/", &res, &why), GW_REFUSE);
    }
    /* a value longer than its buffer */
    gateway_attrs_reset(&a);
    line(&a, "X-Forwarded-Method", "AVERYLONGMETHODNAME");
    assert_true(a.too_long);
}

static void gateway__paths_and_hosts(void **state)
{
    (void)state;
    struct p2a_config cfg = two_servers();
    const char *res, *why;
    static const char *const at_other[] = {"/mcp/../other", "/mcp/./../other", "/other",
                                           "/other/x?a=/mcp"};
    for (size_t i = 0; i < sizeof(at_other) / sizeof(at_other[0]); i++) {
        assert_int_equal(gateway_judge(&cfg, "POST", "gw.example", at_other[i], &res, &why),
                         GW_JUDGE);
        assert_string_equal(res, OTHER);
    }
    static const char *const refused[] = {"/mcp/%2e%2e/other", "/mcp/..%2fother", "/mcp//../other",
                                          "/mcp/..\\other", "mcp"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        assert_int_equal(gateway_judge(&cfg, "POST", "gw.example", refused[i], &res, &why),
                         GW_REFUSE);
    /* an escaped unreserved character is the character: "/%6Fther" is routed as nginx
     * routes it (to /other), and a longer route is never missed for a shorter one */
    assert_int_equal(gateway_judge(&cfg, "POST", "gw.example", "/%6Fther", &res, &why), GW_JUDGE);
    assert_string_equal(res, OTHER);
    static char admin[] = "https://gw.example/mcp/admin";
    struct p2a_config nested = two_servers();
    nested.resources[2] = admin;
    nested.nresources = 3;
    nested.routes[2] =
        (struct config_route){.host = "gw.example", .prefix = "/mcp/admin", .resource = admin};
    nested.nroutes = 3;
    nested.routes_given = true;
    static const char *const at_admin[] = {"/mcp/admin", "/mcp/%61dmin",
                                           "/m%63p/%61%64%6D%69%6E/x"};
    for (size_t i = 0; i < sizeof(at_admin) / sizeof(at_admin[0]); i++) {
        assert_int_equal(gateway_judge(&nested, "POST", "gw.example", at_admin[i], &res, &why),
                         GW_JUDGE);
        assert_string_equal(res, admin);
    }
    /* segment boundaries: /mcpx is not /mcp */
    assert_int_equal(gateway_judge(&cfg, "POST", "gw.example", "/mcpx", &res, &why), GW_JUDGE);
    assert_null(res);
    /* the host is compared, any case; another host is no route */
    assert_int_equal(gateway_judge(&cfg, "POST", "GW.example", "/mcp", &res, &why), GW_JUDGE);
    assert_string_equal(res, MCP);
    assert_int_equal(gateway_judge(&cfg, "POST", "evil.example", "/mcp", &res, &why), GW_JUDGE);
    assert_null(res);
    assert_int_equal(gateway_judge(&cfg, "GET, POST", "gw.example", "/mcp", &res, &why), GW_REFUSE);
    assert_int_equal(gateway_judge(&cfg, "", "gw.example", "/mcp", &res, &why), GW_REFUSE);
}

static void gateway__options_only_when_allowed(void **state)
{
    (void)state;
    struct p2a_config cfg = two_servers();
    const char *res, *why;
    assert_int_equal(gateway_judge(&cfg, "OPTIONS", "gw.example", "/mcp", &res, &why), GW_JUDGE);
    assert_string_equal(res, MCP); /* judged like any request: it needs a token */
    cfg.fwd_allow_options = 1;
    assert_int_equal(gateway_judge(&cfg, "OPTIONS", "gw.example", "/mcp", &res, &why),
                     GW_PREFLIGHT);
    assert_int_equal(gateway_judge(&cfg, "options", "gw.example", "/mcp", &res, &why), GW_JUDGE);
    /* a client's X-Forwarded-Method beside nginx's X-Original-Method: refused, not OPTIONS */
    struct gateway_attrs a;
    gateway_attrs_reset(&a);
    line(&a, "X-Original-Method", "POST");
    line(&a, "X-Forwarded-Method", "OPTIONS");
    assert_int_equal(judge(&cfg, &a, &res, &why), GW_REFUSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gateway__one_name_per_attribute),
        cmocka_unit_test(gateway__paths_and_hosts),
        cmocka_unit_test(gateway__options_only_when_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
