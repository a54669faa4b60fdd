/* test_store_lua.c -- the store's scripts as embedded (src/store/lua/ through
 * cmake/embed_lua.cmake): every library a script includes is in it once, ahead of the
 * script, the revocation publishes on the channel the subscribers listen to, and a client's
 * tombstone is what its look-up recognises. */
#include <string.h>

#include "cm.h"
#include "store_clients.h"
#include "store_keys.h"
#include "store_lua.h"

static size_t count(const char *text, const char *what)
{
    size_t n = 0;
    for (const char *p = strstr(text, what); p != NULL; p = strstr(p + 1, what))
        n++;
    return n;
}

/* lib/revoke.lua names the channel as text: it must be STORE_CHANNEL */
static void store_lua__revoke_publishes_on_the_channel(void **state)
{
    (void)state;
    const char *revoking[] = {store_lua_jti_revoke, store_lua_pat_revoke,   store_lua_family_revoke,
                              store_lua_refresh,    store_lua_user_disable, store_lua_grant_revoke};
    for (size_t i = 0; i < sizeof(revoking) / sizeof(revoking[0]); i++) {
        assert_int_equal(count(revoking[i], "PUBLISH', '" STORE_CHANNEL "'"), 1);
        assert_int_equal(count(revoking[i], "local function revoke("), 1);
    }
}

/* a library included twice (refresh_info: family_stale, which includes user_gen) is there once,
 * before the script's own code; no include line or comment is left */
static void store_lua__includes_expanded_once(void **state)
{
    (void)state;
    assert_int_equal(count(store_lua_family_add_at, "local function user_gen("), 1);
    assert_int_equal(count(store_lua_family_add_at, "local function revoke_family("), 1);
    assert_int_equal(count(store_lua_family_create, "local function user_disabled("), 1);
    const char *body = strstr(store_lua_refresh_info, "if redis.call('GET', KEYS[1])");
    assert_non_null(body);
    assert_true(strstr(store_lua_refresh_info, "local function family_stale(") < body);
    assert_null(strstr(store_lua_refresh_info, "--"));
    assert_null(strstr(store_lua_refresh, "--"));
}

/* lua/client_revoke.lua writes the tombstone a look-up recognises */
static void store_lua__client_tombstone(void **state)
{
    (void)state;
    assert_non_null(strstr(store_lua_client_revoke, "'" STORE_CLIENT_TOMBSTONE "'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(store_lua__revoke_publishes_on_the_channel),
        cmocka_unit_test(store_lua__includes_expanded_once),
        cmocka_unit_test(store_lua__client_tombstone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
