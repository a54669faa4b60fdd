/* test_lastused.c -- marks keep the latest time; draining merges and empties. */
#include "cm.h"

#include "lastused.h"

static void collect(void *arg, const char *jti, int64_t ts)
{
    int64_t *sum = arg;
    *sum += ts;
    assert_true(strncmp(jti, "t", 1) == 0);
}

static void lastused__one_entry_per_token_latest_time(void **state)
{
    (void)state;
    struct lastused *w1 = lastused_new(), *w2 = lastused_new(), *all = lastused_new();
    struct lastused_inbox *in = lastused_inbox_new();
    for (int i = 0; i < 1000; i++)
        lastused_mark(w1, "t1", i);
    lastused_mark(w2, "t1", 5000);
    lastused_mark(w2, "t2", 7);
    assert_int_equal(lastused_count(w1), 1);
    lastused_inbox_put(in, w1); /* two workers hand over */
    lastused_inbox_put(in, w2);
    assert_int_equal(lastused_count(w1), 0);
    assert_int_equal(lastused_count(w2), 0);
    lastused_inbox_take(in, all); /* the flusher takes one table, one entry per token */
    assert_int_equal(lastused_count(all), 2);
    int64_t sum = 0;
    lastused_each(all, collect, &sum);
    assert_int_equal(sum, 5007);
    struct lastused *empty = lastused_new();
    lastused_inbox_take(in, empty);
    assert_int_equal(lastused_count(empty), 0);
    lastused_free(empty);
    lastused_inbox_free(in);
    lastused_free(w1);
    lastused_free(w2);
    lastused_free(all);
}

static void lastused__grows(void **state)
{
    (void)state;
    struct lastused *lu = lastused_new();
    char jti[32];
    for (int i = 0; i < 50000; i++) {
        snprintf(jti, sizeof(jti), "t%d", i);
        lastused_mark(lu, jti, i);
    }
    assert_int_equal(lastused_count(lu), 50000);
    lastused_free(lu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lastused__one_entry_per_token_latest_time),
        cmocka_unit_test(lastused__grows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
