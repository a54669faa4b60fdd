/* store_clients.c -- registered clients and their end as Lua scripts (see store_clients.h;
 * the scripts are lua/). */
#include "store_clients.h"

#include <string.h>

#include "store_script.h"

void oauth_store_client_put(struct store *st, const char *client_id, const char *record, int ttl_s,
                            store_status_cb cb, void *arg)
{
    EVAL(st, store_lua_client_put, 1, STATUS(cb, arg), KEY(STORE_KEY_CLIENT, client_id),
         STR(record), NUM(ttl_s));
}

/* {record}, "" when unknown */
static void parse_client(union store_answer_cb cb, void *arg, p2a_err err, const char *const *v,
                         const size_t *lens, size_t n)
{
    if ((err = store_answer_err(err, n, 1)) != P2A_OK || lens[0] == 0) {
        cb.client(arg, err, NULL);
        return;
    }
    size_t tl = sizeof(STORE_CLIENT_TOMBSTONE) - 1;
    struct store_client c = {.record = v[0],
                             .len = lens[0],
                             .revoked =
                                 lens[0] >= tl && memcmp(v[0], STORE_CLIENT_TOMBSTONE, tl) == 0};
    cb.client(arg, P2A_OK, &c);
}

void oauth_store_client_get(struct store *st, const char *client_id, oauth_client_cb cb, void *arg)
{
    EVAL(st, store_lua_get, 1, ANSWER(parse_client, client, cb, arg),
         KEY(STORE_KEY_CLIENT, client_id));
}

void oauth_store_client_touch(struct store *st, const char *client_id, int idle_s,
                              store_status_cb cb, void *arg)
{
    EVAL(st, store_lua_client_touch, 1, STATUS(cb, arg), KEY(STORE_KEY_CLIENT, client_id),
         NUM(idle_s));
}

void store_client_revoke(struct store *st, const char *client_id, int64_t now_s, int64_t ttl_s,
                         store_status_cb cb, void *arg)
{
    EVAL(st, store_lua_client_revoke, 1, STATUS(cb, arg), KEY(STORE_KEY_CLIENT, client_id),
         NUM(now_s), NUM(ttl_s));
}
