/* test_revoke.c -- the revocation set: membership, expiry sweep, growth, memory. */
#include "cm.h"

#include "revoke.h"

static void revoke__add_contains_and_idempotence(void **state)
{
    (void)state;
    struct revoke_set *s = revoke_new();
    assert_false(revoke_ready(s));
    assert_false(revoke_contains(s, "abc"));
    assert_true(revoke_add(s, "abc", 100));
    assert_false(revoke_add(s, "abc", 50)); /* already there; exp stays the later one */
    assert_true(revoke_contains(s, "abc"));
    assert_false(revoke_contains(s, "abd"));
    assert_int_equal(revoke_count(s), 1);
    assert_int_equal(revoke_sweep(s, 99), 0);
    assert_true(revoke_contains(s, "abc"));
    revoke_set_ready(s, true);
    assert_true(revoke_ready(s));
    revoke_free(s);
}

static void revoke__foreign_jti_lengths_are_refused(void **state)
{
    (void)state;
    struct revoke_set *s = revoke_new();
    assert_false(revoke_add(s, "", 100));
    char long_jti[64];
    memset(long_jti, 'x', 40);
    long_jti[40] = '\0';
    assert_false(revoke_add(s, long_jti, 100));
    assert_false(revoke_contains(s, long_jti));
    revoke_free(s);
}

static void revoke__sweep_drops_expired_and_shrinks(void **state)
{
    (void)state;
    struct revoke_set *s = revoke_new();
    char jti[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(jti, sizeof(jti), "jti-%d", i);
        assert_true(revoke_add(s, jti, i < 99000 ? 1000 : 5000));
    }
    assert_int_equal(revoke_count(s), 100000);
    size_t big = revoke_memory(s);
    /* 40-byte entries at most half full: at most 80 bytes per entry plus one doubling */
    assert_true(big / 100000 <= 2 * 80);
    assert_int_equal(revoke_sweep(s, 1000), 99000);
    assert_int_equal(revoke_count(s), 1000);
    assert_false(revoke_contains(s, "jti-5"));
    assert_true(revoke_contains(s, "jti-99999"));
    assert_true(revoke_memory(s) < big / 16);
    assert_int_equal(revoke_sweep(s, 5000), 1000);
    assert_int_equal(revoke_count(s), 0);
    revoke_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(revoke__add_contains_and_idempotence),
        cmocka_unit_test(revoke__foreign_jti_lengths_are_refused),
        cmocka_unit_test(revoke__sweep_drops_expired_and_shrinks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
