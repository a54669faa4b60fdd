/* test_scope.c -- the scope grammar, walking a list, what is granted. */
#include "cm.h"

#include "scope.h"

static void scope__grammar(void **state)
{
    (void)state;
    assert_null(scope_check(""));
    assert_null(scope_check("mcp"));
    assert_null(scope_check("mcp:read mcp:write a!#[]~"));
    assert_non_null(scope_check("a  b"));
    assert_non_null(scope_check(" a"));
    assert_non_null(scope_check("a "));
    assert_non_null(scope_check("quote\"d"));
    assert_non_null(scope_check("back\\slash"));
    assert_non_null(scope_check("tab\tx"));
    assert_non_null(scope_check("caf\xc3\xa9"));
    char big[SCOPE_MAX_LEN + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_non_null(scope_check(big)); /* one byte over */
    big[SCOPE_MAX_LEN] = '\0';
    assert_null(scope_check(big));
}

static void scope__walk_and_has(void **state)
{
    (void)state;
    const char *p = "mcp files:read x", *t;
    size_t n, count = 0;
    const char *want[] = {"mcp", "files:read", "x"};
    while (scope_next(&p, &t, &n)) {
        assert_int_equal(n, strlen(want[count]));
        assert_memory_equal(t, want[count], n);
        count++;
    }
    assert_int_equal(count, 3);
    p = "";
    assert_false(scope_next(&p, &t, &n));
    assert_true(scope_has("mcp files", "files", 5));
    assert_false(scope_has("mcp files", "file", 4)); /* a prefix is not the token */
    assert_false(scope_has("mcp filesx", "files", 5));
    assert_false(scope_has("", "mcp", 3));
}

static void scope__grant(void **state)
{
    (void)state;
    char out[100];
    const char *offered = "mcp files admin offline_access", *defaults = "mcp";
    /* what was asked for and is offered, in the offered order */
    assert_true(scope_grant(offered, defaults, NULL, "files claudeai", out, sizeof(out)));
    assert_string_equal(out, "files");
    assert_true(scope_grant(offered, defaults, NULL, "admin mcp", out, sizeof(out)));
    assert_string_equal(out, "mcp admin");
    /* nothing we know, or nothing at all: the defaults, never everything */
    assert_true(scope_grant(offered, defaults, NULL, "claudeai", out, sizeof(out)));
    assert_string_equal(out, "mcp");
    assert_true(scope_grant(offered, defaults, "", NULL, out, sizeof(out)));
    assert_string_equal(out, "mcp");
    /* offline_access alone is no grant: the defaults come with it */
    assert_true(scope_grant(offered, defaults, NULL, "offline_access", out, sizeof(out)));
    assert_string_equal(out, "offline_access mcp");
    assert_true(scope_grant(offered, defaults, NULL, "mcp offline_access", out, sizeof(out)));
    assert_string_equal(out, "mcp offline_access");
    /* the client's registered scope is no ceiling: step-up widens it */
    assert_true(scope_grant(offered, defaults, "files", "mcp files", out, sizeof(out)));
    assert_string_equal(out, "mcp files");
    assert_true(scope_grant(offered, defaults, "mcp", "admin", out, sizeof(out)));
    assert_string_equal(out, "admin");
    /* asking for nothing, a client gets what it registered, else the defaults */
    assert_true(scope_grant(offered, defaults, "files admin", NULL, out, sizeof(out)));
    assert_string_equal(out, "files admin");
    assert_true(scope_grant(offered, defaults, "unknown", NULL, out, sizeof(out)));
    assert_string_equal(out, "mcp");
    assert_true(
        scope_grant(offered, defaults, "offline_access", "offline_access", out, sizeof(out)));
    assert_string_equal(out, "offline_access mcp");
    /* nothing offered left to grant */
    assert_false(scope_grant("offline_access", "", NULL, "offline_access", out, sizeof(out)));
    assert_string_equal(out, "");
    assert_false(scope_grant(offered, "", "", "claudeai", out, sizeof(out)));
    assert_string_equal(out, "");
}

static void scope__union_and_covers(void **state)
{
    (void)state;
    char out[64] = "mcp";
    scope_union(out, sizeof(out), "files mcp admin");
    assert_string_equal(out, "mcp files admin");
    assert_true(scope_covers(out, "admin mcp"));
    assert_true(scope_covers(out, ""));
    assert_false(scope_covers("mcp", "mcp files"));
    char up[64];
    scope_step_up("mcp offline_access files", "admin mcp", up, sizeof(up));
    assert_string_equal(up, "mcp files admin");
    scope_step_up("", "offline_access admin", up, sizeof(up));
    assert_string_equal(up, "admin");
    char small[8] = "mcp";
    scope_union(small, sizeof(small), "files"); /* does not fit: left as it was */
    assert_string_equal(small, "mcp");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scope__grammar),
        cmocka_unit_test(scope__walk_and_has),
        cmocka_unit_test(scope__grant),
        cmocka_unit_test(scope__union_and_covers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
