/* test_jtitab.c -- the jti table of the last-used marks: keep the maximum, grow, bound. */
#include "cm.h"

#include "jtitab.h"

static void jtitab__put_max_grow_and_limit(void **state)
{
    (void)state;
    struct jtitab t;
    jtitab_init(&t, 4);
    assert_true(jtitab_put_max(&t, "a", 10, 100));
    assert_false(jtitab_put_max(&t, "a", 5, 100)); /* there: never lowered */
    assert_false(jtitab_put_max(&t, "a", 20, 100)); /* raised */
    char jti[JTI_MAX_LEN + 2];
    for (int i = 0; i < 200; i++) { /* grows past its first size, stays at most half full */
        snprintf(jti, sizeof(jti), "j%d", i);
        bool added = jtitab_put_max(&t, jti, i, 150);
        assert_int_equal(added, i < 149); /* "a" is the 150th */
    }
    assert_int_equal(t.n, 150);
    assert_true(t.n * 2 <= t.cap);
    size_t found = 0;
    for (size_t i = 0; i < t.cap; i++)
        if (strcmp(t.v[i].jti, "a") == 0) {
            assert_int_equal(t.v[i].val, 20);
            found++;
        }
    assert_int_equal(found, 1);
    memset(jti, 'x', JTI_MAX_LEN + 1);
    jti[JTI_MAX_LEN + 1] = '\0';
    assert_false(jtitab_put_max(&t, jti, 1, 1000)); /* longer than any of ours */
    assert_false(jtitab_put_max(&t, "", 1, 1000));
    jtitab_clear(&t);
    assert_int_equal(t.n, 0);
    assert_true(jtitab_put_max(&t, "a", 1, 1));
    jtitab_deinit(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jtitab__put_max_grow_and_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
