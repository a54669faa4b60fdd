/* test_rpc_status.c -- status mapping, grpc-message encoding, grpc-timeout parsing. */
#include "cm.h"

#include "rpc_status.h"

static void rpc_status__message_is_percent_encoded(void **state)
{
    (void)state;
    char out[64];
    rpc_status_encode_message("100% sure\n\xc3\xa9", out, sizeof(out));
    assert_string_equal(out, "100%25 sure%0A%C3%A9");
    rpc_status_encode_message("abcdef", out, 4); /* truncated, still terminated */
    assert_string_equal(out, "abc");
}

static void rpc_status__timeouts(void **state)
{
    (void)state;
    assert_int_equal(rpc_status_parse_timeout("100m", 4), 100);
    assert_int_equal(rpc_status_parse_timeout("2S", 2), 2000);
    assert_int_equal(rpc_status_parse_timeout("1M", 2), 60000);
    assert_int_equal(rpc_status_parse_timeout("1H", 2), 3600000);
    assert_int_equal(rpc_status_parse_timeout("1500u", 5), 2);
    assert_int_equal(rpc_status_parse_timeout("1n", 2), 1);
    assert_int_equal(rpc_status_parse_timeout("0m", 2), 0);
    assert_int_equal(rpc_status_parse_timeout("m", 1), -1);
    assert_int_equal(rpc_status_parse_timeout("123456789S", 10), -1);
    assert_int_equal(rpc_status_parse_timeout("10x", 3), -1);
    assert_int_equal(rpc_status_parse_timeout("1-S", 3), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rpc_status__message_is_percent_encoded),
        cmocka_unit_test(rpc_status__timeouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
