/* test_connguard.c -- the connection bounds of every port: in total, per address, and an IPv6
 * client counted by its /64 (an address of its own is one of 2^64 it holds). */
#include "cm.h"

#include "connguard.h"

static void connguard__bounds_per_address_and_in_total(void **state)
{
    (void)state;
    struct connguard *g = connguard_new("test", 6, 2, NULL, 0);
    assert_true(connguard_admit(g, "192.0.2.1"));
    assert_true(connguard_admit(g, "192.0.2.1"));
    assert_false(connguard_admit(g, "192.0.2.1")); /* per address */
    assert_true(connguard_admit(g, "192.0.2.2"));
    /* one /64: its addresses share one count */
    assert_true(connguard_admit(g, "2001:db8:1:2::1"));
    assert_true(connguard_admit(g, "2001:db8:1:2:ffff::9"));
    assert_false(connguard_admit(g, "2001:db8:1:2::3"));
    assert_int_equal(connguard_open(g), 5);
    assert_true(connguard_admit(g, "2001:db8:1:3::1")); /* another /64 */
    assert_false(connguard_admit(g, "192.0.2.3"));      /* in total */
    assert_int_equal(connguard_refused(g), 3);
    connguard_release(g, "2001:db8:1:2::1");
    assert_true(connguard_admit(g, "2001:db8:1:2::3")); /* the /64's place, freed */
    connguard_release(g, "2001:db8:1:2::3");
    connguard_release(g, "2001:db8:1:2:ffff::9");
    connguard_release(g, "2001:db8:1:3::1");
    connguard_release(g, "192.0.2.1");
    connguard_release(g, "192.0.2.1");
    connguard_release(g, "192.0.2.2");
    assert_int_equal(connguard_open(g), 0);
    connguard_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(connguard__bounds_per_address_and_in_total),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
