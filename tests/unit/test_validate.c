/* test_validate.c -- names, user ids, jtis (UTF-8 is test_codec.c's). */
#include "cm.h"

#include "validate.h"

static void validate__name_counts_characters(void **state)
{
    (void)state;
    char name[512];
    assert_non_null(validate_name(""));
    memset(name, 'a', 100);
    name[100] = '\0';
    assert_null(validate_name(name));
    name[100] = 'a';
    name[101] = '\0';
    assert_non_null(validate_name(name));
    /* 100 four-byte characters are 100 characters */
    for (int i = 0; i < 100; i++)
        memcpy(name + 4 * i, "\xf0\x9f\x94\x91", 4);
    name[400] = '\0';
    assert_null(validate_name(name));
    assert_non_null(validate_name("bad\xff"));
    assert_non_null(validate_name("tab\there"));
}

static void validate__user_id(void **state)
{
    (void)state;
    assert_null(validate_user_id("alice"));
    assert_non_null(validate_user_id(""));
    char big[300];
    memset(big, 'u', 201);
    big[201] = '\0';
    assert_non_null(validate_user_id(big));
}

static void validate__jti(void **state)
{
    (void)state;
    assert_true(validate_jti("OEHSlq0KDVZji9DchqEPdg"));
    assert_false(validate_jti(""));
    assert_false(validate_jti("has space"));
    assert_false(validate_jti("0123456789012345678901234567890123"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(validate__name_counts_characters),
        cmocka_unit_test(validate__user_id),
        cmocka_unit_test(validate__jti),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
