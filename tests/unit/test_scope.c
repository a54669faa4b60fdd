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
    scope_grant("mcp files", "files claudeai", out, sizeof(out));
    assert_string_equal(out, "files");
    scope_grant("mcp files", "claudeai", out, sizeof(out)); /* none of ours: all of ours */
    assert_string_equal(out, "mcp files");
    scope_grant("mcp", NULL, out, sizeof(out));
    assert_string_equal(out, "mcp");
    scope_grant("mcp files admin", "admin mcp", out, sizeof(out)); /* our order */
    assert_string_equal(out, "mcp admin");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scope__grammar),
        cmocka_unit_test(scope__walk_and_has),
        cmocka_unit_test(scope__grant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
