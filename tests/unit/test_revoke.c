/* test_revoke.c -- the revocation set: membership, expiry sweep, memory, freshness, paths. */
#include "cm.h"

#include <pthread.h>
#include <stdatomic.h>

#include "revoke.h"

static void revoke__add_contains_and_idempotence(void **state)
{
    (void)state;
    struct revoke_set *s = revoke_new(20000);
    assert_false(revoke_contains(s, "abc"));
    assert_true(revoke_add(s, "abc", 100, REVOKE_PATH_MESSAGE));
    assert_false(revoke_add(s, "abc", 50, REVOKE_PATH_POLL)); /* already there */
    assert_true(revoke_contains(s, "abc"));
    assert_false(revoke_contains(s, "abd"));
    assert_int_equal(revoke_count(s), 1);
    assert_int_equal(revoke_sweep(s, 99), 0); /* exp stayed the later one, 100 */
    assert_true(revoke_contains(s, "abc"));
    struct revoke_stats st;
    revoke_get_stats(s, 0, &st);
    assert_int_equal(st.applied[REVOKE_PATH_MESSAGE], 1);
    assert_int_equal(st.applied[REVOKE_PATH_POLL], 0); /* a second delivery counts nowhere */
    revoke_free(s);
}

static void revoke__foreign_jti_lengths_are_refused(void **state)
{
    (void)state;
    struct revoke_set *s = revoke_new(20000);
    assert_false(revoke_add(s, "", 100, REVOKE_PATH_LOCAL));
    char long_jti[64];
    memset(long_jti, 'x', 40);
    long_jti[40] = '\0';
    assert_false(revoke_add(s, long_jti, 100, REVOKE_PATH_LOCAL));
    assert_false(revoke_contains(s, long_jti));
    revoke_free(s);
}

static void revoke__sweep_drops_expired_and_shrinks(void **state)
{
    (void)state;
    struct revoke_set *s = revoke_new(20000);
    char jti[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(jti, sizeof(jti), "jti-%d", i);
        assert_true(revoke_add(s, jti, i < 99000 ? 1000 : 5000, REVOKE_PATH_STARTUP));
    }
    assert_int_equal(revoke_count(s), 100000);
    size_t big = revoke_memory(s);
    /* 40-byte entries at most half full: under 160 bytes per entry with one doubling */
    assert_true(big / 100000 <= 160);
    assert_int_equal(revoke_sweep(s, 1000), 99000);
    assert_int_equal(revoke_count(s), 1000);
    assert_false(revoke_contains(s, "jti-5"));
    assert_true(revoke_contains(s, "jti-99999"));
    assert_true(revoke_memory(s) < big / 16);
    assert_int_equal(revoke_sweep(s, 5000), 1000);
    assert_int_equal(revoke_count(s), 0);
    revoke_free(s);
}

static void revoke__stale_view_fails_closed(void **state)
{
    (void)state;
    struct revoke_set *s = revoke_new(20000);
    int64_t age;
    assert_int_equal(revoke_usable(s, 5000, &age), REVOKE_NOT_LOADED);
    revoke_synced(s, 10000, 7);
    assert_int_equal(revoke_usable(s, 10000, &age), REVOKE_USABLE);
    assert_int_equal(revoke_usable(s, 30000, &age), REVOKE_USABLE); /* exactly the bound */
    assert_int_equal(age, 20000);
    assert_int_equal(revoke_usable(s, 30001, &age), REVOKE_STALE);
    revoke_synced(s, 29000, 8); /* a poll succeeds: trusted again, no restart */
    assert_int_equal(revoke_usable(s, 30001, &age), REVOKE_USABLE);
    revoke_synced(s, 1000, 8); /* an older answer never makes the view look older */
    assert_int_equal(revoke_usable(s, 30001, &age), REVOKE_USABLE);
    struct revoke_stats st;
    revoke_note_lag(s, 3);
    revoke_get_stats(s, 30001, &st);
    assert_int_equal(st.view_age_ms, 1001);
    assert_int_equal(st.last_lag_ms, 3);
    assert_int_equal(st.seq, 8);
    revoke_free(s);
}

struct hammer {
    struct revoke_set *set;
    atomic_bool stop;
    atomic_long lookups;
    atomic_bool wrong;
};

static void *reader(void *arg)
{
    struct hammer *h = arg;
    char jti[32];
    long n = 0;
    while (!atomic_load(&h->stop)) {
        for (int i = 0; i < 100; i++, n++) {
            snprintf(jti, sizeof(jti), "keep-%d", i);
            if (!revoke_contains(h->set, jti)) /* present from the start, never expires */
                atomic_store(&h->wrong, true);
            if (revoke_contains(h->set, "never-added"))
                atomic_store(&h->wrong, true);
        }
    }
    atomic_fetch_add(&h->lookups, n);
    return NULL;
}

/* Readers take no lock: while a writer grows the table many times over and sweeps it, they
 * must always find what is there, never what is not, and never touch a freed table (ASan). */
static void revoke__lock_free_readers_during_growth_and_sweeps(void **state)
{
    (void)state;
    struct hammer h = {.set = revoke_new(20000)};
    char jti[32];
    for (int i = 0; i < 100; i++) {
        snprintf(jti, sizeof(jti), "keep-%d", i);
        revoke_add(h.set, jti, 1000000, REVOKE_PATH_STARTUP);
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, &h), 0);
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 20000; i++) {
            snprintf(jti, sizeof(jti), "tmp-%d-%d", round, i);
            revoke_add(h.set, jti, 10, REVOKE_PATH_MESSAGE);
        }
        assert_int_equal(revoke_sweep(h.set, 10), 20000); /* the temporary ones go */
    }
    atomic_store(&h.stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_false(atomic_load(&h.wrong));
    assert_true(atomic_load(&h.lookups) > 0);
    assert_int_equal(revoke_count(h.set), 100);
    revoke_free(h.set);
}

static void revoke__a_subject_entry_covers_what_was_issued_before(void **state)
{
    (void)state;
    struct revoke_set *set = revoke_new(20000);
    char m[REVOKE_SUBJECT_MARKER_LEN + 1], other[REVOKE_SUBJECT_MARKER_LEN + 1];
    revoke_subject_marker("corp|ann", m);
    revoke_subject_marker("corp|bob", other);
    assert_int_equal(strlen(m), REVOKE_SUBJECT_MARKER_LEN);
    assert_int_equal(m[0], 'S');
    assert_string_not_equal(m, other);
    const int64_t cutoff = 1800000000;
    assert_false(revoke_subject_covers(set, m, cutoff - 10));
    assert_true(revoke_add(set, m, cutoff + REVOKE_SUBJECT_HORIZON_S, REVOKE_PATH_MESSAGE));
    assert_int_equal(revoke_get(set, m), cutoff + REVOKE_SUBJECT_HORIZON_S);
    assert_true(revoke_subject_covers(set, m, cutoff - 10));
    assert_true(revoke_subject_covers(set, m, cutoff)); /* the second of the disable */
    assert_false(revoke_subject_covers(set, m, cutoff + 1));
    assert_false(revoke_subject_covers(set, other, cutoff - 10));
    /* disabled again later: the cutoff moves; an older message does not move it back */
    assert_false(revoke_add(set, m, cutoff + 100 + REVOKE_SUBJECT_HORIZON_S, REVOKE_PATH_POLL));
    assert_true(revoke_subject_covers(set, m, cutoff + 50));
    revoke_add(set, m, cutoff + REVOKE_SUBJECT_HORIZON_S, REVOKE_PATH_POLL);
    assert_true(revoke_subject_covers(set, m, cutoff + 50));
    /* swept once every token it covers has expired */
    assert_int_equal(revoke_sweep(set, cutoff + 100 + REVOKE_SUBJECT_HORIZON_S), 1);
    assert_false(revoke_subject_covers(set, m, cutoff));
    revoke_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(revoke__add_contains_and_idempotence),
        cmocka_unit_test(revoke__foreign_jti_lengths_are_refused),
        cmocka_unit_test(revoke__sweep_drops_expired_and_shrinks),
        cmocka_unit_test(revoke__stale_view_fails_closed),
        cmocka_unit_test(revoke__lock_free_readers_during_growth_and_sweeps),
        cmocka_unit_test(revoke__a_subject_entry_covers_what_was_issued_before),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
