/* store_users.c -- accounts, sign-in counters, sessions and user records as Lua scripts (see
 * store_users.h; the scripts are lua/). */
#include "store_users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_script.h"

/* ---- accounts and signing in ---------------------------------------------------------------- */

void oauth_store_user_create(struct store *st, const char *username, const char *user_id,
                             const char *hash, int64_t now, store_status_cb cb, void *arg)
{
    EVAL(st, store_lua_account_create, 1, STATUS(cb, arg), ACCOUNT(username), STR(user_id),
         STR(hash), NUM(now));
}

/* The counters of sign-in attempts: one account from one address (a hard limit per window),
 * one account from anywhere (failures beyond a number space attempts out), and the browsers
 * the account signed in from: the ids to follow STORE_KEY_RATE, tagged by the username as
 * the account is. */
struct login_keys {
    char pair[ARG_MAX], acct[ARG_MAX], devices[ARG_MAX];
};

static void login_keys(const char *username, const char *addr, struct login_keys *k)
{
    snprintf(k->pair, ARG_MAX, "%s}:pair:%s", username, addr);
    snprintf(k->acct, ARG_MAX, "%s}:account", username);
    snprintf(k->devices, ARG_MAX, "%s}:devices", username);
}

static const char *device_or_none(const char *device)
{
    return device != NULL && device[0] ? device : "-";
}

/* {status, user_id, hash, retry_after_s, device counted} */
static void parse_login(union store_answer_cb cb, void *arg, p2a_err err, const char *const *v,
                        const size_t *lens, size_t n)
{
    (void)lens;
    if ((err = store_answer_err(err, n, 4)) != P2A_OK) {
        cb.login(arg, err, NULL);
        return;
    }
    struct store_login l = {.status = strtoll(v[0], NULL, 10),
                            .user_id = v[1],
                            .hash = v[2],
                            .retry_after_s = strtoll(v[3], NULL, 10),
                            .device_counted = n >= 5 && strcmp(v[4], "1") == 0};
    cb.login(arg, P2A_OK, &l);
}

void oauth_store_login_reserve(struct store *st, const char *username, const char *addr,
                               const char *device, const struct oauth_login_limits *lim,
                               int64_t now_ms, oauth_login_cb cb, void *arg)
{
    struct login_keys k = {0};
    login_keys(username, addr, &k);
    EVAL(st, store_lua_login_reserve, 4, ANSWER(parse_login, login, cb, arg), ACCOUNT(username),
         KEY(STORE_KEY_RATE, k.pair), KEY(STORE_KEY_RATE, k.acct), KEY(STORE_KEY_RATE, k.devices),
         NUM(lim->per_pair), NUM(OAUTH_LOGIN_WINDOW_S), NUM(now_ms), NUM(lim->throttle_after),
         NUM(OAUTH_LOGIN_MAX_DELAY_S), NUM(lim->device_failures), STR(device_or_none(device)));
}

/* ---- sessions ------------------------------------------------------------------------------- */

void oauth_store_session_create(struct store *st, const char *sid_digest, const char *user_id,
                                const char *username, const char *addr, const char *device,
                                int64_t auth_time, int ttl_s, store_status_cb cb, void *arg)
{
    EVAL(st, store_lua_session_create, 1, STATUS(cb, arg), KEY(STORE_KEY_SESSION, sid_digest),
         STR(user_id), STR(username), NUM(auth_time), NUM(ttl_s));
    /* the session and the account's counters live in different slots: two scripts, sent
     * together */
    bool remember = device != NULL && device[0] != '\0';
    if (addr == NULL && !remember)
        return;
    struct login_keys k = {0};
    login_keys(username, addr != NULL ? addr : "-", &k);
    EVAL(st, store_lua_session_release, 3, STATUS(store_status_ignore, NULL),
         KEY(STORE_KEY_RATE, k.pair), KEY(STORE_KEY_RATE, k.acct), KEY(STORE_KEY_RATE, k.devices),
         NUM(remember ? OAUTH_DEVICE_TTL_S : 0), STR(addr != NULL ? "1" : "0"),
         STR(device_or_none(device)), NUM(OAUTH_DEVICES_MAX));
}

/* {1, user_id} */
static void parse_session_end(union store_answer_cb cb, void *arg, p2a_err err,
                              const char *const *v, const size_t *lens, size_t n)
{
    (void)lens;
    err = store_answer_err(err, n, 1);
    cb.session_end(arg, err, err == P2A_OK && n >= 2 ? v[1] : "");
}

void oauth_store_session_delete(struct store *st, const char *sid_digest, oauth_session_end_cb cb,
                                void *arg)
{
    EVAL(st, store_lua_session_delete, 1, ANSWER(parse_session_end, session_end, cb, arg),
         KEY(STORE_KEY_SESSION, sid_digest));
}

/* {user_id, username, auth_time}, or {} */
static void parse_session(union store_answer_cb cb, void *arg, p2a_err err, const char *const *v,
                          const size_t *lens, size_t n)
{
    (void)lens;
    if (err != P2A_OK || n < 3) {
        cb.session(arg, err, NULL);
        return;
    }
    struct store_session s = {
        .user_id = v[0], .username = v[1], .auth_time = strtoll(v[2], NULL, 10)};
    cb.session(arg, P2A_OK, &s);
}

void oauth_store_session_get(struct store *st, const char *sid_digest, oauth_session_cb cb,
                             void *arg)
{
    EVAL(st, store_lua_session_get, 1, ANSWER(parse_session, session, cb, arg),
         KEY(STORE_KEY_SESSION, sid_digest));
}

/* ---- user records --------------------------------------------------------------------------- */

void oauth_store_user_put(struct store *st, const char *user_id, const char *display_name,
                          const char *source, int64_t now, bool signed_in, store_status_cb cb,
                          void *arg)
{
    EVAL(st, store_lua_user_put, 1, STATUS(cb, arg), KEY(STORE_KEY_USER, user_id),
         STR(display_name), STR(source), NUM(now), STR(signed_in ? "1" : "0"));
}

/* {display_name, source, created_at, last_sign_in_at, disabled_at ("" when enabled)}, or {} */
static void parse_user(union store_answer_cb cb, void *arg, p2a_err err, const char *const *v,
                       const size_t *lens, size_t n)
{
    (void)lens;
    if (err != P2A_OK || n < 5) {
        cb.user(arg, err, NULL);
        return;
    }
    struct store_user u = {.display_name = v[0],
                           .source = v[1],
                           .created_at = strtoll(v[2], NULL, 10),
                           .last_sign_in_at = strtoll(v[3], NULL, 10),
                           .disabled_at = strtoll(v[4], NULL, 10),
                           .disabled = v[4][0] != '\0'};
    cb.user(arg, P2A_OK, &u);
}

void oauth_store_user_get(struct store *st, const char *user_id, oauth_user_cb cb, void *arg)
{
    EVAL(st, store_lua_user_get, 1, ANSWER(parse_user, user, cb, arg),
         KEY(STORE_KEY_USER, user_id));
}

void oauth_store_user_disable(struct store *st, const char *user_id, bool disable,
                              const char *marker, int64_t now_ms, int64_t marker_exp,
                              store_status_cb cb, void *arg)
{
    REVOKING(st, store_lua_user_disable, 5, STATUS(cb, arg), KEY(STORE_KEY_USER, user_id),
             KEYX(STORE_KEY_USER, user_id, ":live"), REVOCATION, NUM(disable ? 1 : 0), STR(marker),
             NUM(now_ms), NUM(marker_exp));
}
