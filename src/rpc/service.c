/* service.c -- the bodies of the RPC methods (see service.h).
 *
 * Introspect is the hot path and never leaves the worker: digest the token, look in the
 * worker's cache, verify on a miss, then check revocation, time, kind and resource on
 * every call. An inactive token is an OK answer with a reason and the WWW-Authenticate
 * value the MCP server should send. IssueToken, RevokeToken and ListTokens wait on Redis:
 * they hand the store a small op holding the call, and answer from the store's callback.
 *
 * Every field a caller sends is checked here, and the message names the field.
 * Threading: a worker's loop; the service_shared parts are read-only or thread-safe.
 */
#include "service.h"
#include "service_internal.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "arena.h"
#include "clients.h"
#include "clock.h"
#include "digest.h"
#include "introspect.h"
#include "config.h"
#include "grpc/health/v1/health.pb-c.h"
#include "keys.h"
#include "lastused.h"
#include "log.h"
#include "metrics.h"
#include "pat.h"
#include "oauth.h"
#include "oauth_store.h"
#include "pipe2/auth/v1/token_service.pb-c.h"
#include "revoke.h"
#include "scope.h"
#include "url.h"
#include "rpc_frame.h"
#include "rpc_status.h"
#include "slab.h"
#include "store.h"
#include "tcache.h"
#include "token.h"
#include "validate.h"
#include "xalloc.h"

uint8_t *svc_msg_begin(size_t n)
{
    uint8_t *buf = slab_alloc(RPC_FRAME_PREFIX + n);
    rpc_frame_prefix(buf, n);
    return buf;
}

void svc_msg_finish(struct service_call *call, uint8_t *buf, size_t n)
{
    call->complete(call, RPC_OK, NULL, buf, RPC_FRAME_PREFIX + n);
}

void svc_finish_msg(struct service_call *call, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = svc_msg_begin(n);
    protobuf_c_message_pack(m, buf + RPC_FRAME_PREFIX);
    svc_msg_finish(call, buf, n);
}

void svc_finish_err(struct service_call *call, enum rpc_code code, const char *msg)
{
    call->complete(call, (int)code, msg, NULL, 0);
}

void *svc_unpack(struct service_call *call, const ProtobufCMessageDescriptor *desc,
                 ProtobufCAllocator *alloc, const uint8_t *msg, size_t len)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, alloc, len, msg);
    if (m == NULL) {
        char why[96];
        snprintf(why, sizeof(why), "malformed %s", desc->short_name);
        svc_finish_err(call, RPC_INVALID_ARGUMENT, why);
    }
    return m;
}

/* RFC 6750 3 and RFC 9728 5.1: what the MCP server sends with its 401, so that a client
 * finds us (resource_metadata) and asks for the right scope; for TV_INSUFFICIENT_SCOPE the
 * 403 of step-up, scope naming every scope the call needs. */
void svc_www_authenticate(enum token_verdict v, const char *resource, const char *scope, char *out,
                          size_t outlen)
{
    char meta[RESOURCE_MAX + 64];
    url_well_known(resource, "oauth-protected-resource", meta, sizeof(meta)); /* RFC 9728 3.1 */
    if (v == TV_INSUFFICIENT_SCOPE)
        snprintf(out, outlen,
                 "Bearer error=\"insufficient_scope\", error_description=\"%s\", "
                 "resource_metadata=\"%s\", scope=\"%s\"",
                 token_verdict_text(v), meta, scope);
    else if (v == TV_MISSING)
        snprintf(out, outlen, "Bearer resource_metadata=\"%s\", scope=\"%s\"", meta, scope);
    else
        snprintf(out, outlen,
                 "Bearer error=\"invalid_token\", error_description=\"%s\", "
                 "resource_metadata=\"%s\", scope=\"%s\"",
                 token_verdict_text(v), meta, scope);
}

/* ---- Introspect ------------------------------------------------------------------------ */

struct introspector svc_introspector(const struct service_ctx *ctx)
{
    const struct service_shared *sh = ctx->shared;
    return (struct introspector){.cfg = sh->cfg,
                                 .keys = ctx->keys,
                                 .revoked = sh->revoked,
                                 .cache = ctx->cache,
                                 .mx = ctx->mx};
}

static void *pb_alloc(void *data, size_t size)
{
    return arena_alloc(data, size);
}

static void pb_free(void *data, void *p)
{
    arena_free(data, p);
}

void svc_pb_arena_init(struct svc_pb_arena *a)
{
    arena_init(&a->arena, a->buf, sizeof(a->buf));
    a->alloc = (ProtobufCAllocator){pb_alloc, pb_free, &a->arena};
}

static void do_introspect(struct service_ctx *ctx, const uint8_t *msg, size_t len,
                          struct service_call *call)
{
    const struct service_shared *sh = ctx->shared;
    struct svc_pb_arena pa;
    svc_pb_arena_init(&pa);
    Pipe2__Auth__V1__IntrospectRequest *req =
        svc_unpack(call, &pipe2__auth__v1__introspect_request__descriptor, &pa.alloc, msg, len);
    if (req == NULL)
        return;
    const char *why = NULL;
    size_t rlen = strlen(req->resource);
    if (rlen > RESOURCE_MAX)
        why = "resource must be at most 2048 bytes";
    else if (rlen > 0 && !url_is_http(req->resource))
        why = "resource must be an http(s) URL without spaces, quotes or a fragment";
    else if ((int)req->expected_kind < 0 || (int)req->expected_kind > TOKEN_KIND_LAST)
        why = "expected_kind is not a TokenKind";
    else if (scope_check(req->required_scope) != NULL)
        why = "required_scope must be scope tokens separated by single spaces";
    if (why != NULL) {
        pipe2__auth__v1__introspect_request__free_unpacked(req, &pa.alloc);
        svc_finish_err(call, RPC_INVALID_ARGUMENT, why);
        return;
    }
    int64_t now = clock_now();
    struct introspector x = svc_introspector(ctx);
    const struct svc_key *caller = call->caller;
    struct introspect_query q = {.token = req->token,
                                 .len = strlen(req->token),
                                 .expected = (enum token_kind)req->expected_kind,
                                 .resource = req->resource,
                                 .required_scope = req->required_scope,
                                 .bound = caller ? caller->resources : NULL,
                                 .nbound = caller ? caller->nresources : 0};
    struct introspection r;
    if (introspect(&x, &q, now, &r) != P2A_OK) {
        char stale[160];
        if (r.view == REVOKE_STALE)
            snprintf(stale, sizeof(stale),
                     "revocation list is stale: no successful sync with Redis for %lld s; "
                     "refusing to answer rather than accept a revoked token",
                     (long long)(r.view_age_ms / 1000));
        introspection_deinit(&r);
        pipe2__auth__v1__introspect_request__free_unpacked(req, &pa.alloc);
        svc_finish_err(call, RPC_UNAVAILABLE,
                       r.view == REVOKE_STALE ? stale
                                              : "revocation list not loaded yet; retry shortly");
        return;
    }
    enum token_verdict v = r.verdict;
    const struct token_claims *c = r.claims;
    Pipe2__Auth__V1__IntrospectResponse resp = PIPE2__AUTH__V1__INTROSPECT_RESPONSE__INIT;
    char www[WWW_AUTH_MAX];
    char *aud[TOKEN_MAX_AUD];
    if (v == TV_ACTIVE) {
        resp.active = true;
        resp.kind = (Pipe2__Auth__V1__TokenKind)c->kind;
        resp.sub = (char *)c->sub;
        resp.client_id = (char *)c->client_id;
        resp.scope = (char *)c->scope;
        resp.exp = c->exp;
        resp.iat = c->iat;
        resp.jti = (char *)c->jti;
        resp.name = (char *)c->name;
        const char *a = c->aud;
        for (size_t i = 0; i < c->naud; i++, a = token_next_aud(a))
            aud[i] = (char *)a;
        resp.n_aud = c->naud;
        resp.aud = aud;
        if (c->kind == TOKEN_KIND_PAT)
            lastused_mark(ctx->marks, c->jti, now);
    } else {
        resp.reason = (Pipe2__Auth__V1__InactiveReason)v;
        char up[2 * SCOPE_MAX_LEN + 2];
        if (v == TV_INSUFFICIENT_SCOPE)
            scope_step_up(c->scope, req->required_scope, up, sizeof(up));
        /* the resource asked about, else the caller's own, else the first we serve */
        const char *res = rlen > 0                               ? req->resource
                          : caller != NULL && caller->nresources ? caller->resources[0]
                                                                 : sh->cfg->resources[0];
        svc_www_authenticate(v, res, v == TV_INSUFFICIENT_SCOPE ? up : sh->cfg->resource_scopes,
                             www, sizeof(www));
        resp.www_authenticate = www;
    }
    svc_finish_msg(call, &resp.base);
    introspection_deinit(&r);
    pipe2__auth__v1__introspect_request__free_unpacked(req, &pa.alloc);
}

/* ---- IssueToken --------------------------------------------------------------------------- */

struct issue_op {
    struct service_call *call;
    char *token;
    char jti[TOKEN_JTI_LEN + 1];
    char *user_id, *name, *scope;
    int64_t created_at, expires_at;
};

static void fill_info(Pipe2__Auth__V1__TokenInfo *info, const struct pat_record *r)
{
    info->jti = (char *)r->jti;
    info->user_id = (char *)r->user_id;
    info->name = (char *)r->name;
    info->scope = (char *)r->scope;
    info->created_at = r->created_at;
    info->expires_at = r->expires_at;
    info->last_used_at = r->last_used_at;
    info->revoked_at = r->revoked_at;
}

/* A user id nobody made: how users come to exist (issue 14: one subject per person). */
#define NO_SUCH_USER                                                                               \
    "no such user: a user exists once they sign in, once CreateUser makes their account, or "      \
    "once a dashboard registers its own user id with PutUser"

/* Whether user_id may name a user; false after answering INVALID_ARGUMENT. */
static bool user_id_ok(struct service_call *call, const char *user_id)
{
    const char *why = validate_user_id(user_id);
    if (why != NULL)
        svc_finish_err(call, RPC_INVALID_ARGUMENT, why);
    return why == NULL;
}

static void on_issued(void *arg, p2a_err err)
{
    struct issue_op *op = arg;
    if (err == P2A_ERR_NOT_FOUND) {
        svc_finish_err(op->call, RPC_NOT_FOUND, NO_SUCH_USER);
    } else if (err == P2A_ERR_REFUSED) {
        svc_finish_err(op->call, RPC_FAILED_PRECONDITION,
                       "this user is disabled (SetUserDisabled): no token was issued");
    } else if (err != P2A_OK) {
        svc_finish_err(op->call, RPC_UNAVAILABLE, "token store unavailable; no token was issued");
    } else {
        struct pat_record r = {.jti = op->jti,
                               .user_id = op->user_id,
                               .name = op->name,
                               .scope = op->scope,
                               .created_at = op->created_at,
                               .expires_at = op->expires_at};
        Pipe2__Auth__V1__TokenInfo info = PIPE2__AUTH__V1__TOKEN_INFO__INIT;
        fill_info(&info, &r);
        Pipe2__Auth__V1__IssueTokenResponse resp = PIPE2__AUTH__V1__ISSUE_TOKEN_RESPONSE__INIT;
        resp.token = op->token;
        resp.info = &info;
        svc_finish_msg(op->call, &resp.base);
        char ref[13];
        log_token_ref(op->token, strlen(op->token), ref);
        log_info("pat.issued", "issued PAT jti=%s ref=%s expires_at=%lld", op->jti, ref,
                 (long long)op->expires_at);
    }
    OPENSSL_cleanse(op->token, strlen(op->token));
    free(op->token);
    free(op->user_id);
    free(op->name);
    free(op->scope);
    free(op);
}

static void do_issue(struct service_ctx *ctx, const uint8_t *msg, size_t len,
                     struct service_call *call)
{
    const struct p2a_config *cfg = ctx->shared->cfg;
    Pipe2__Auth__V1__IssueTokenRequest *req =
        svc_unpack(call, &pipe2__auth__v1__issue_token_request__descriptor, NULL, msg, len);
    if (req == NULL)
        return;
    struct pat_request rq = {.user_id = req->user_id,
                             .name = req->name,
                             .scope = req->scope,
                             .expires_in_s = req->expires_in_seconds};
    const char *why = pat_request_check(cfg, &rq);
    if (why != NULL) {
        pipe2__auth__v1__issue_token_request__free_unpacked(req, NULL);
        svc_finish_err(call, RPC_INVALID_ARGUMENT, why);
        return;
    }
    int64_t now_ms = clock_now_ms();
    struct pat_signed ps;
    if (pat_sign(ctx->keys, cfg, &rq, now_ms / 1000, &ps) != P2A_OK) {
        pipe2__auth__v1__issue_token_request__free_unpacked(req, NULL);
        svc_finish_err(call, RPC_INTERNAL, "could not sign the token");
        return;
    }
    struct issue_op *op = xcalloc(1, sizeof(*op));
    op->call = call;
    op->token = ps.token;
    memcpy(op->jti, ps.jti, sizeof(op->jti));
    op->created_at = ps.created_at;
    op->expires_at = ps.expires_at;
    op->user_id = xstrdup(req->user_id);
    op->name = xstrdup(req->name);
    op->scope = xstrdup(ps.scope);
    pipe2__auth__v1__issue_token_request__free_unpacked(req, NULL);
    struct pat_record r = {.jti = op->jti,
                           .user_id = op->user_id,
                           .name = op->name,
                           .scope = op->scope,
                           .created_at = op->created_at,
                           .expires_at = op->expires_at,
                           .created_ms = now_ms};
    store_pat_create(ctx->store, &r, on_issued, op);
}

/* ---- RevokeToken -------------------------------------------------------------------------- */

struct revoke_op {
    struct service_call *call;
    struct revoke_set *revoked;
    char jti[JTI_MAX_LEN + 1];
};

static void on_revoked(void *arg, p2a_err err, bool already, int64_t revoked_at, int64_t exp)
{
    struct revoke_op *op = arg;
    if (err == P2A_OK) {
        /* effective in this process at once; other replicas follow the published message */
        revoke_add(op->revoked, op->jti, exp, REVOKE_PATH_LOCAL);
        Pipe2__Auth__V1__RevokeTokenResponse resp = PIPE2__AUTH__V1__REVOKE_TOKEN_RESPONSE__INIT;
        resp.already_revoked = already;
        resp.revoked_at = revoked_at;
        svc_finish_msg(op->call, &resp.base);
        if (!already)
            log_info("pat.revoked", "revoked PAT jti=%s", op->jti);
    } else if (err == P2A_ERR_NOT_FOUND) {
        svc_finish_err(op->call, RPC_NOT_FOUND, "no such token");
    } else {
        svc_finish_err(op->call, RPC_UNAVAILABLE,
                       "token store unavailable; the token was not revoked");
    }
    free(op);
}

static void do_revoke(struct service_ctx *ctx, const uint8_t *msg, size_t len,
                      struct service_call *call)
{
    Pipe2__Auth__V1__RevokeTokenRequest *req =
        svc_unpack(call, &pipe2__auth__v1__revoke_token_request__descriptor, NULL, msg, len);
    if (req == NULL)
        return;
    const char *why = NULL;
    enum rpc_code code = RPC_INVALID_ARGUMENT;
    if (req->jti[0] == '\0')
        why = "jti is required";
    else if (req->user_id[0] != '\0' && (why = validate_user_id(req->user_id)) != NULL)
        ;
    else if (!validate_jti(req->jti))
        why = "no such token", code = RPC_NOT_FOUND;
    if (why != NULL) {
        pipe2__auth__v1__revoke_token_request__free_unpacked(req, NULL);
        svc_finish_err(call, code, why);
        return;
    }
    struct revoke_op *op = xcalloc(1, sizeof(*op));
    op->call = call;
    op->revoked = ctx->shared->revoked;
    snprintf(op->jti, sizeof(op->jti), "%s", req->jti);
    store_pat_revoke(ctx->store, req->jti, req->user_id, clock_now_ms(), on_revoked, op);
    pipe2__auth__v1__revoke_token_request__free_unpacked(req, NULL);
}

/* ---- ListTokens --------------------------------------------------------------------------- */

static void on_listed(void *arg, p2a_err err, const struct pat_record *recs, size_t n)
{
    struct service_call *call = arg;
    if (err == P2A_ERR_NOT_FOUND) {
        svc_finish_err(call, RPC_NOT_FOUND, NO_SUCH_USER);
        return;
    }
    if (err != P2A_OK) {
        svc_finish_err(call, RPC_UNAVAILABLE, "token store unavailable; try again");
        return;
    }
    Pipe2__Auth__V1__TokenInfo *infos = xcalloc(n ? n : 1, sizeof(*infos));
    Pipe2__Auth__V1__TokenInfo **ptrs =
        xcalloc(n ? n : 1, sizeof(*ptrs)); // NOLINT(bugprone-sizeof-expression): pointers
    for (size_t i = 0; i < n; i++) {
        pipe2__auth__v1__token_info__init(&infos[i]);
        fill_info(&infos[i], &recs[i]);
        ptrs[i] = &infos[i];
    }
    Pipe2__Auth__V1__ListTokensResponse resp = PIPE2__AUTH__V1__LIST_TOKENS_RESPONSE__INIT;
    resp.n_tokens = n;
    resp.tokens = ptrs;
    svc_finish_msg(call, &resp.base);
    free(ptrs);
    free(infos);
}

static void do_list(struct service_ctx *ctx, const uint8_t *msg, size_t len,
                    struct service_call *call)
{
    Pipe2__Auth__V1__ListTokensRequest *req =
        svc_unpack(call, &pipe2__auth__v1__list_tokens_request__descriptor, NULL, msg, len);
    if (req == NULL)
        return;
    if (user_id_ok(call, req->user_id))
        store_pat_list(ctx->store, req->user_id, req->include_revoked, on_listed, call);
    pipe2__auth__v1__list_tokens_request__free_unpacked(req, NULL);
}

/* ---- CreateUser --------------------------------------------------------------------------- */

struct user_op {
    struct service_call *call;
    struct store *store;
    char user_id[32];
    char username[OAUTH_MAX_USERNAME + 1];
};

static void on_user_recorded(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                             size_t n)
{
    (void)v, (void)lens;
    struct user_op *op = arg;
    if (err != P2A_OK || n < 1) { /* the account stands: a sign-in makes the record */
        svc_finish_err(op->call, RPC_UNAVAILABLE,
                       "user store unavailable; the account was created, its user record not "
                       "yet (it will be at the first sign-in)");
    } else {
        Pipe2__Auth__V1__CreateUserResponse resp = PIPE2__AUTH__V1__CREATE_USER_RESPONSE__INIT;
        resp.user_id = op->user_id;
        svc_finish_msg(op->call, &resp.base);
        log_info("user.created", "created user %s (%s)", op->user_id, op->username);
    }
    free(op);
}

static void on_user_created(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                            size_t n)
{
    (void)lens;
    struct user_op *op = arg;
    if (err != P2A_OK || n < 1) {
        svc_finish_err(op->call, RPC_UNAVAILABLE, "user store unavailable; no user was created");
    } else if (strcmp(v[0], "1") != 0) {
        svc_finish_err(op->call, RPC_ALREADY_EXISTS, "username is taken");
    } else { /* the account is made; its user record next (a PAT needs it) */
        oauth_store_user_put(op->store, op->user_id, op->username, "local", clock_now(), false,
                             on_user_recorded, op);
        return;
    }
    free(op);
}

static void do_create_user(struct service_ctx *ctx, const uint8_t *msg, size_t len,
                           struct service_call *call)
{
    Pipe2__Auth__V1__CreateUserRequest *req =
        svc_unpack(call, &pipe2__auth__v1__create_user_request__descriptor, NULL, msg, len);
    if (req == NULL)
        return;
    const char *why = oauth_username_check(req->username);
    if (why == NULL)
        why = oauth_password_check(req->username, req->password);
    char hash[OAUTH_PASSWORD_HASH_MAX], rnd[OAUTH_SECRET_LEN + 1];
    if (why != NULL) {
        svc_finish_err(call, RPC_INVALID_ARGUMENT, why);
    } else if (oauth_password_hash(req->password, hash, sizeof(hash)) != P2A_OK ||
               oauth_random_secret(rnd) != P2A_OK) {
        svc_finish_err(call, RPC_INTERNAL, "could not hash the password");
    } else {
        struct user_op *op = xcalloc(1, sizeof(*op));
        op->call = call;
        op->store = ctx->store;
        snprintf(op->user_id, sizeof(op->user_id), "u_%.22s", rnd);
        snprintf(op->username, sizeof(op->username), "%s", req->username);
        oauth_store_user_create(ctx->store, op->username, op->user_id, hash, clock_now(),
                                on_user_created, op);
    }
    OPENSSL_cleanse(req->password, strlen(req->password));
    pipe2__auth__v1__create_user_request__free_unpacked(req, NULL);
}

/* ---- PutUser ------------------------------------------------------------------------------ */

static void on_user_put(void *arg, p2a_err err, const char *const *v, const size_t *lens, size_t n)
{
    (void)lens;
    struct service_call *call = arg;
    if (err != P2A_OK || n < 1) {
        svc_finish_err(call, RPC_UNAVAILABLE, "user store unavailable; nothing was written");
        return;
    }
    Pipe2__Auth__V1__PutUserResponse resp = PIPE2__AUTH__V1__PUT_USER_RESPONSE__INIT;
    resp.created = strcmp(v[0], "1") == 0;
    svc_finish_msg(call, &resp.base);
}

static void do_put_user(struct service_ctx *ctx, const uint8_t *msg, size_t len,
                        struct service_call *call)
{
    Pipe2__Auth__V1__PutUserRequest *req =
        svc_unpack(call, &pipe2__auth__v1__put_user_request__descriptor, NULL, msg, len);
    if (req == NULL)
        return;
    const char *name_why = req->display_name[0] ? validate_name(req->display_name) : NULL;
    char bad[160];
    if (!user_id_ok(call, req->user_id)) {
        ; /* answered */
    } else if (name_why != NULL) {
        snprintf(bad, sizeof(bad), "display_name: %s", name_why);
        svc_finish_err(call, RPC_INVALID_ARGUMENT, bad);
    } else {
        oauth_store_user_put(ctx->store, req->user_id,
                             req->display_name[0] ? req->display_name : req->user_id, "dashboard",
                             clock_now(), false, on_user_put, call);
    }
    pipe2__auth__v1__put_user_request__free_unpacked(req, NULL);
}

/* ---- GetUser, SetUserDisabled --------------------------------------------------------------- */

struct user_rec_op {
    struct service_call *call;
    char user_id[VALIDATE_USER_ID_MAX + 1];
};

static void on_user_got(void *arg, p2a_err err, const char *const *v, const size_t *lens, size_t n)
{
    (void)lens;
    struct user_rec_op *op = arg;
    if (err != P2A_OK) {
        svc_finish_err(op->call, RPC_UNAVAILABLE, "user store unavailable; nothing was read");
    } else if (n < 5) {
        svc_finish_err(op->call, RPC_NOT_FOUND, NO_SUCH_USER);
    } else {
        Pipe2__Auth__V1__User resp = PIPE2__AUTH__V1__USER__INIT;
        resp.user_id = op->user_id;
        resp.display_name = (char *)v[0];
        resp.source = (char *)v[1];
        resp.created_at = strtoll(v[2], NULL, 10);
        resp.last_sign_in_at = strtoll(v[3], NULL, 10);
        resp.disabled_at = strtoll(v[4], NULL, 10);
        resp.disabled = v[4][0] != '\0';
        svc_finish_msg(op->call, &resp.base);
    }
    free(op);
}

static void on_user_disabled(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                             size_t n)
{
    (void)lens;
    struct user_rec_op *op = arg;
    if (err != P2A_OK || n < 1) {
        svc_finish_err(op->call, RPC_UNAVAILABLE,
                       "the token store is unavailable or no replica confirmed; retry (it is "
                       "harmless)");
    } else if (strcmp(v[0], "-1") == 0) {
        svc_finish_err(op->call, RPC_NOT_FOUND, NO_SUCH_USER);
    } else {
        log_info("users.disabled_changed", "a user was disabled or enabled over the RPC");
        Pipe2__Auth__V1__SetUserDisabledResponse resp =
            PIPE2__AUTH__V1__SET_USER_DISABLED_RESPONSE__INIT;
        svc_finish_msg(op->call, &resp.base);
    }
    free(op);
}

/* The user id of a request whose first field it is, checked; NULL after answering. */
static struct user_rec_op *user_rec_op_new(struct service_call *call, const char *user_id)
{
    if (!user_id_ok(call, user_id))
        return NULL;
    struct user_rec_op *op = xcalloc(1, sizeof(*op));
    op->call = call;
    snprintf(op->user_id, sizeof(op->user_id), "%s", user_id);
    return op;
}

static void do_get_user(struct service_ctx *ctx, const uint8_t *msg, size_t len,
                        struct service_call *call)
{
    Pipe2__Auth__V1__GetUserRequest *req =
        svc_unpack(call, &pipe2__auth__v1__get_user_request__descriptor, NULL, msg, len);
    if (req == NULL)
        return;
    struct user_rec_op *op = user_rec_op_new(call, req->user_id);
    if (op != NULL)
        oauth_store_user_get(ctx->store, op->user_id, on_user_got, op);
    pipe2__auth__v1__get_user_request__free_unpacked(req, NULL);
}

static void do_set_user_disabled(struct service_ctx *ctx, const uint8_t *msg, size_t len,
                                 struct service_call *call)
{
    Pipe2__Auth__V1__SetUserDisabledRequest *req =
        svc_unpack(call, &pipe2__auth__v1__set_user_disabled_request__descriptor, NULL, msg, len);
    if (req == NULL)
        return;
    struct user_rec_op *op = user_rec_op_new(call, req->user_id);
    if (op != NULL) {
        char marker[REVOKE_SUBJECT_MARKER_LEN + 1];
        revoke_subject_marker(op->user_id, marker);
        int64_t now_ms = clock_now_ms();
        oauth_store_user_disable(ctx->store, op->user_id, req->disabled, marker, now_ms,
                                 now_ms / 1000 + REVOKE_SUBJECT_HORIZON_S, on_user_disabled, op);
    }
    pipe2__auth__v1__set_user_disabled_request__free_unpacked(req, NULL);
}

/* ---- ListGrants, RevokeGrant ---------------------------------------------------------------- */

static void on_grants(void *arg, p2a_err err, const char *const *v, const size_t *lens, size_t n)
{
    (void)lens;
    struct service_call *call = arg;
    struct oauth_grant gr[OAUTH_GRANTS_MAX];
    size_t count = err == P2A_OK ? oauth_store_grants_read(v, n, gr) : 0;
    if (err != P2A_OK || (n > 0 && count == 0)) {
        svc_finish_err(call, RPC_UNAVAILABLE, "the token store is unavailable; nothing was read");
        return;
    }
    Pipe2__Auth__V1__Grant g[OAUTH_GRANTS_MAX], *ptrs[OAUTH_GRANTS_MAX];
    for (size_t i = 0; i < count; i++) {
        pipe2__auth__v1__grant__init(&g[i]);
        g[i].grant_id = (char *)gr[i].grant_id;
        g[i].client_id = (char *)gr[i].client_id;
        g[i].client_name = (char *)gr[i].client_name;
        g[i].scope = (char *)gr[i].scope;
        g[i].resource = (char *)gr[i].resource;
        g[i].approved_at = gr[i].approved_at;
        g[i].last_used_at = gr[i].last_used_at;
        ptrs[i] = &g[i];
    }
    Pipe2__Auth__V1__ListGrantsResponse resp = PIPE2__AUTH__V1__LIST_GRANTS_RESPONSE__INIT;
    resp.n_grants = count;
    resp.grants = ptrs;
    svc_finish_msg(call, &resp.base);
}

static void do_list_grants(struct service_ctx *ctx, const uint8_t *msg, size_t len,
                           struct service_call *call)
{
    Pipe2__Auth__V1__ListGrantsRequest *req =
        svc_unpack(call, &pipe2__auth__v1__list_grants_request__descriptor, NULL, msg, len);
    if (req == NULL)
        return;
    if (user_id_ok(call, req->user_id))
        oauth_store_grants_list(ctx->store, req->user_id, on_grants, call);
    pipe2__auth__v1__list_grants_request__free_unpacked(req, NULL);
}

static void on_grant_revoked(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                             size_t n)
{
    (void)lens;
    struct service_call *call = arg;
    if (err != P2A_OK || n < 1) {
        svc_finish_err(call, RPC_UNAVAILABLE,
                       "the token store is unavailable or no replica confirmed the revocation; "
                       "retry (revoking a grant again is harmless)");
        return;
    }
    if (strcmp(v[0], "-1") == 0) {
        svc_finish_err(call, RPC_NOT_FOUND, "no such grant for this user");
        return;
    }
    log_info("oauth.grant_revoked", "a grant was revoked over the RPC");
    Pipe2__Auth__V1__RevokeGrantResponse resp = PIPE2__AUTH__V1__REVOKE_GRANT_RESPONSE__INIT;
    svc_finish_msg(call, &resp.base);
}

static void do_revoke_grant(struct service_ctx *ctx, const uint8_t *msg, size_t len,
                            struct service_call *call)
{
    Pipe2__Auth__V1__RevokeGrantRequest *req =
        svc_unpack(call, &pipe2__auth__v1__revoke_grant_request__descriptor, NULL, msg, len);
    if (req == NULL)
        return;
    if (!user_id_ok(call, req->user_id))
        ; /* answered */
    else if (!oauth_grant_id_valid(req->grant_id))
        svc_finish_err(call, RPC_INVALID_ARGUMENT, "grant_id: 64 hex digits, as ListGrants gives");
    else
        oauth_store_grant_revoke(ctx->store, req->user_id, req->grant_id, clock_now_ms(),
                                 on_grant_revoked, call);
    pipe2__auth__v1__revoke_grant_request__free_unpacked(req, NULL);
}

/* ---- grpc.health.v1 ----------------------------------------------------------------------- */

static void do_health(struct service_ctx *ctx, const uint8_t *msg, size_t len,
                      struct service_call *call)
{
    Grpc__Health__V1__HealthCheckRequest *req =
        svc_unpack(call, &grpc__health__v1__health_check_request__descriptor, NULL, msg, len);
    if (req == NULL)
        return;
    /* "" and the service name: ready to take traffic (the readiness probe). "liveness": the
     * process and this worker's loop answer at all (the liveness probe), whatever Redis does */
    bool liveness = strcmp(req->service, "liveness") == 0;
    bool known = liveness || req->service[0] == '\0' ||
                 strcmp(req->service, "pipe2.auth.v1.TokenService") == 0;
    grpc__health__v1__health_check_request__free_unpacked(req, NULL);
    if (!known) {
        svc_finish_err(call, RPC_NOT_FOUND, "unknown service");
        return;
    }
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    if (liveness) {
        resp.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
        svc_finish_msg(call, &resp.base);
        return;
    }
    int64_t age_ms;
    resp.status =
        !atomic_load(&ctx->shared->draining) &&
                revoke_usable(ctx->shared->revoked, clock_mono_ms(), &age_ms) == REVOKE_USABLE
            ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
            : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    svc_finish_msg(call, &resp.base);
}

/* ---- routing ------------------------------------------------------------------------------ */

/* The one list of RPCs: routing, the role each needs, metric labels and access logs. */
#define SVC "/pipe2.auth.v1.TokenService/"
static const struct service_method methods[] = {
    {SVC "Introspect", "Introspect", SVC_ROLE_INTROSPECT, do_introspect, true},
    {SVC "IssueToken", "IssueToken", SVC_ROLE_ADMIN, do_issue, false},
    {SVC "RevokeToken", "RevokeToken", SVC_ROLE_ADMIN, do_revoke, false},
    {SVC "ListTokens", "ListTokens", SVC_ROLE_ADMIN, do_list, false},
    {"/grpc.health.v1.Health/Check", "Health.Check", SVC_ROLE_NONE, do_health, true},
    {SVC "CreateUser", "CreateUser", SVC_ROLE_ADMIN, do_create_user, false},
    {SVC "RegisterClient", "RegisterClient", SVC_ROLE_ADMIN, svc_register_client, false},
    {SVC "PutUser", "PutUser", SVC_ROLE_ADMIN, do_put_user, false},
    {SVC "GetUser", "GetUser", SVC_ROLE_ADMIN, do_get_user, false},
    {SVC "SetUserDisabled", "SetUserDisabled", SVC_ROLE_ADMIN, do_set_user_disabled, false},
    {SVC "ListGrants", "ListGrants", SVC_ROLE_ADMIN, do_list_grants, false},
    {SVC "RevokeGrant", "RevokeGrant", SVC_ROLE_ADMIN, do_revoke_grant, false},
    {SVC "RevokeClient", "RevokeClient", SVC_ROLE_ADMIN, svc_revoke_client, false},
    /* Envoy's ext_authz: the same introspect keys, the same flow as Introspect */
    {"/envoy.service.auth.v3.Authorization/Check", "ext_authz.Check", SVC_ROLE_INTROSPECT,
     ext_authz_check, true},
};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))
_Static_assert(NMETHODS + 1 == METRICS_METHODS, "metrics count every method and unknown paths");

int service_method_index(const struct service_method *m)
{
    if (m == NULL)
        return METRICS_METHODS - 1;
    return (int)(m - methods);
}

const char *service_method_name(int index)
{
    return index >= 0 && (size_t)index < NMETHODS ? methods[index].name : "unknown";
}

const struct service_method *service_method_find(const char *path, size_t len)
{
    for (size_t i = 0; i < NMETHODS; i++)
        if (strlen(methods[i].path) == len && memcmp(methods[i].path, path, len) == 0)
            return &methods[i];
    return NULL;
}

bool service_role_allows(enum svc_role have, const struct service_method *m)
{
    return m->role == SVC_ROLE_NONE || have == SVC_ROLE_ADMIN || have == m->role;
}
