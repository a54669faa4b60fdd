/* store_clients.c -- a registered client's end in Redis (see store_clients.h). */
#include "store_clients.h"

#include <stdio.h>
#include <string.h>

#include "clients.h"
#include "store_keys.h"

#define TOMBSTONE "{\"revoked_at\":"

void store_client_revoke(struct store *st, const char *client_id, int64_t now_s, int64_t ttl_s,
                         store_eval_cb cb, void *arg)
{
    static const char lua[] =
        "local v = redis.call('GET', KEYS[1])\n"
        "if not v then return {-1} end\n"
        "if string.sub(v, 1, "
        "14"
        ") == '" TOMBSTONE "' then return {0} end\n"
        "redis.call('SET', KEYS[1], '" TOMBSTONE "' .. ARGV[1] .. '}', 'EX', ARGV[2])\n"
        "return {1}\n";
    _Static_assert(sizeof(TOMBSTONE) - 1 == 14, "the script compares 14 bytes");
    char key[sizeof(STORE_KEY_CLIENT) + OAUTH_MAX_CLIENT_ID], now[24], ttl[24];
    snprintf(key, sizeof(key), "%s%s", STORE_KEY_CLIENT, client_id);
    snprintf(now, sizeof(now), "%lld", (long long)now_s);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_s);
    const char *args[] = {key, now, ttl};
    store_eval(st, lua, 1, args, 3, cb, arg);
}

bool store_client_revoked(const char *record, size_t len)
{
    return len >= sizeof(TOMBSTONE) - 1 && memcmp(record, TOMBSTONE, sizeof(TOMBSTONE) - 1) == 0;
}
