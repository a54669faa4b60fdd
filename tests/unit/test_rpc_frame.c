/* test_rpc_frame.c -- gRPC message framing. */
#include "cm.h"

#include "rpc_frame.h"

static void rpc_frame__one_message(void **state)
{
    (void)state;
    uint8_t buf[16];
    rpc_frame_prefix(buf, 3);
    memcpy(buf + 5, "abc", 3);
    const uint8_t *m;
    size_t n;
    assert_int_equal(rpc_frame_decode(buf, 8, 100, &m, &n), RPC_FRAME_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(m, "abc", 3);
    rpc_frame_prefix(buf, 0);
    assert_int_equal(rpc_frame_decode(buf, 5, 100, &m, &n), RPC_FRAME_OK);
    assert_int_equal(n, 0);
}

static void rpc_frame__partial_and_extra(void **state)
{
    (void)state;
    uint8_t buf[16];
    rpc_frame_prefix(buf, 10);
    const uint8_t *m;
    size_t n;
    assert_int_equal(rpc_frame_decode(buf, 0, 100, &m, &n), RPC_FRAME_INCOMPLETE);
    assert_int_equal(rpc_frame_decode(buf, 4, 100, &m, &n), RPC_FRAME_INCOMPLETE);
    assert_int_equal(rpc_frame_decode(buf, 14, 100, &m, &n), RPC_FRAME_INCOMPLETE);
    rpc_frame_prefix(buf, 2);
    assert_int_equal(rpc_frame_decode(buf, 9, 100, &m, &n), RPC_FRAME_EXTRA);
}

static void rpc_frame__bounds_and_flags(void **state)
{
    (void)state;
    uint8_t buf[8];
    const uint8_t *m;
    size_t n;
    rpc_frame_prefix(buf, 0xffffffffu);
    assert_int_equal(rpc_frame_decode(buf, 5, RPC_MAX_MSG_LEN, &m, &n), RPC_FRAME_TOO_LARGE);
    rpc_frame_prefix(buf, RPC_MAX_MSG_LEN + 1);
    assert_int_equal(rpc_frame_decode(buf, 5, RPC_MAX_MSG_LEN, &m, &n), RPC_FRAME_TOO_LARGE);
    buf[0] = 1;
    assert_int_equal(rpc_frame_decode(buf, 1, 100, &m, &n), RPC_FRAME_COMPRESSED);
    buf[0] = 7;
    assert_int_equal(rpc_frame_decode(buf, 5, 100, &m, &n), RPC_FRAME_BAD_FLAG);
    assert_string_equal(rpc_frame_why(RPC_FRAME_INCOMPLETE), "truncated gRPC message");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rpc_frame__one_message),
        cmocka_unit_test(rpc_frame__partial_and_extra),
        cmocka_unit_test(rpc_frame__bounds_and_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
