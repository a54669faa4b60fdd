/* test_svckeys.c -- the service key file and role checks. */
#include "cm.h"

#include "helpers.h"
#include "svckeys.h"

/* sha256("admin-key") and sha256("mcp-key") */
#define ADMIN_HEX "75aa48bb1e8a5b0ff0ef51d5a5ff4bb2cdf16c6a1c0f8f3c1fc5f0bbd9d5f8e6"

static void digest_hex(const char *key, char out[65])
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "printf %%s '%s' | sha256sum", key);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, 65, p));
    pclose(p);
}

static void svckeys__roles(void **state)
{
    (void)state;
    char a[65], m[65], text[512];
    digest_hex("admin-key", a);
    digest_hex("mcp-key", m);
    snprintf(text, sizeof(text), "# comment\n\nadmin %s dashboard\n  introspect %s mcp server\n", a,
             m);
    char *dir = th_tmpdir();
    char *path = th_write_file(dir, "keys", text);
    struct svckeys *k;
    char err[256];
    assert_int_equal(svckeys_load(path, &k, err, sizeof(err)), P2A_OK);
    assert_int_equal(svckeys_count(k), 2);
    const struct svc_key *e = NULL;
    assert_int_equal(svckeys_check(k, "admin-key", 9, &e), SVC_ROLE_ADMIN);
    assert_string_equal(e->label, "dashboard");
    assert_int_equal(svckeys_check(k, "mcp-key", 7, &e), SVC_ROLE_INTROSPECT);
    assert_string_equal(e->label, "mcp server");
    assert_int_equal(e->nresources, 0);
    assert_int_equal(svckeys_check(k, "mcp-kez", 7, NULL), SVC_ROLE_NONE);
    assert_int_equal(svckeys_check(k, "", 0, NULL), SVC_ROLE_NONE);
    svckeys_free(k);
    free(path);
    th_rmtree(dir);
}

static void svckeys__malformed_lines_are_refused_with_line_number(void **state)
{
    (void)state;
    const char *bad[] = {"root " ADMIN_HEX "\n", "admin abc\n", "admin " ADMIN_HEX "\nadmin zz\n",
                         "# nothing\n"};
    const char *want[] = {":1: role", ":1: expected", ":2:", "no service keys"};
    for (size_t i = 0; i < 4; i++) {
        char *dir = th_tmpdir();
        char *path = th_write_file(dir, "keys", bad[i]);
        struct svckeys *k = NULL;
        char err[256] = "";
        assert_int_equal(svckeys_load(path, &k, err, sizeof(err)), P2A_ERR_INVALID);
        if (strstr(err, want[i]) == NULL)
            fail_msg("'%s' lacks '%s'", err, want[i]);
        free(path);
        th_rmtree(dir);
    }
}

/* The fourth field binds an introspect key to resources; the label keeps its spaces. */
static void svckeys__resource_binding(void **state)
{
    (void)state;
    char m[65], text[512];
    digest_hex("mcp-key", m);
    snprintf(
        text, sizeof(text),
        "introspect %s files server resource=https://files.example/mcp,http://127.0.0.1:3000/mcp\n",
        m);
    char *dir = th_tmpdir();
    char *path = th_write_file(dir, "keys", text);
    struct svckeys *k;
    char err[256];
    assert_int_equal(svckeys_load(path, &k, err, sizeof(err)), P2A_OK);
    const struct svc_key *e = NULL;
    assert_int_equal(svckeys_check(k, "mcp-key", 7, &e), SVC_ROLE_INTROSPECT);
    assert_string_equal(e->label, "files server");
    assert_int_equal(e->nresources, 2);
    assert_string_equal(e->resources[0], "https://files.example/mcp");
    assert_string_equal(e->resources[1], "http://127.0.0.1:3000/mcp");
    svckeys_free(k);
    free(path);

    const char *bad[] = {"admin " ADMIN_HEX " dash resource=https://a.example/mcp\n",
                         "introspect " ADMIN_HEX " resource=ftp://a.example\n",
                         "introspect " ADMIN_HEX " resource=\n"};
    const char *want[] = {"only an introspect key", "http(s) URLs", "names no resource"};
    for (size_t i = 0; i < 3; i++) {
        path = th_write_file(dir, "bad", bad[i]);
        struct svckeys *b = NULL;
        assert_int_equal(svckeys_load(path, &b, err, sizeof(err)), P2A_ERR_INVALID);
        if (strstr(err, want[i]) == NULL)
            fail_msg("'%s' lacks '%s'", err, want[i]);
        free(path);
    }
    th_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(svckeys__roles),
        cmocka_unit_test(svckeys__malformed_lines_are_refused_with_line_number),
        cmocka_unit_test(svckeys__resource_binding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
