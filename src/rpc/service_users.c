/* service_users.c -- the user methods: CreateUser (a local account and its user record),
 * PutUser (a dashboard's own user), GetUser, SetUserDisabled. Each waits on Redis and
 * answers from the store's callback.
 * Threading: a worker's loop.
 */
#include "service_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "clock.h"
#include "log.h"
#include "oauth.h"
#include "revoke.h"
#include "store_users.h"
#include "validate.h"
#include "xalloc.h"

/* ---- CreateUser --------------------------------------------------------------------------- */

struct user_op {
    struct service_call *call;
    struct store *store;
    char user_id[32];
    char username[OAUTH_MAX_USERNAME + 1];
};

static void on_user_recorded(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)code, (void)value;
    struct user_op *op = arg;
    if (err != P2A_OK) { /* the account stands: a sign-in makes the record */
        svc_finish_err(op->call, RPC_UNAVAILABLE,
                       "user store unavailable; the account was created, its user record not "
                       "yet (it will be at the first sign-in)");
    } else {
        Pipe2__Auth__V1__CreateUserResponse resp = PIPE2__AUTH__V1__CREATE_USER_RESPONSE__INIT;
        resp.user_id = op->user_id;
        svc_audit(op->call, (struct audit_in){.type = "user.created",
                                              .user_id = op->user_id,
                                              .detail = "a local account"});
        svc_finish_msg(op->call, &resp.base);
        log_info("user.created", "created user %s (%s)", op->user_id, op->username);
    }
    free(op);
}

static void on_user_created(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)value;
    struct user_op *op = arg;
    if (err != P2A_OK) {
        svc_finish_err(op->call, RPC_UNAVAILABLE, "user store unavailable; no user was created");
    } else if (code != 1) {
        svc_finish_err(op->call, RPC_ALREADY_EXISTS, "username is taken");
    } else { /* the account is made; its user record next (a PAT needs it) */
        oauth_store_user_put(op->store, op->user_id, op->username, "local", clock_now(), false,
                             on_user_recorded, op);
        return;
    }
    free(op);
}

void svc_create_user(struct service_ctx *ctx, Pipe2__Auth__V1__CreateUserRequest *req,
                     struct service_call *call)
{
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
}

/* ---- PutUser ------------------------------------------------------------------------------ */

/* A call about one user (PutUser, GetUser, SetUserDisabled). */
struct user_rec_op {
    struct service_call *call;
    bool disabled; /* SetUserDisabled: which way, for the audit trail */
    char user_id[VALIDATE_USER_ID_MAX + 1];
    /* SetUserDisabled: the person's entry, applied to this replica's view once Redis has it */
    struct revoke_set *revoked;
    char marker[REVOKE_SUBJECT_MARKER_LEN + 1];
    int64_t marker_exp;
};

/* The user id of a request whose first field it is, checked; NULL after answering. */
static struct user_rec_op *user_rec_op_new(struct service_call *call, const char *user_id)
{
    if (!svc_user_id_ok(call, user_id))
        return NULL;
    struct user_rec_op *op = xcalloc(1, sizeof(*op));
    op->call = call;
    snprintf(op->user_id, sizeof(op->user_id), "%s", user_id);
    return op;
}

static void on_user_put(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)value;
    struct user_rec_op *op = arg;
    if (err != P2A_OK) {
        svc_finish_err(op->call, RPC_UNAVAILABLE, "user store unavailable; nothing was written");
        free(op);
        return;
    }
    Pipe2__Auth__V1__PutUserResponse resp = PIPE2__AUTH__V1__PUT_USER_RESPONSE__INIT;
    resp.created = code == 1;
    if (resp.created)
        svc_audit(op->call, (struct audit_in){.type = "user.registered", .user_id = op->user_id});
    svc_finish_msg(op->call, &resp.base);
    free(op);
}

void svc_put_user(struct service_ctx *ctx, Pipe2__Auth__V1__PutUserRequest *req,
                  struct service_call *call)
{
    const char *name_why = req->display_name[0] ? validate_name(req->display_name) : NULL;
    char bad[160];
    struct user_rec_op *op = NULL;
    if (!svc_user_id_ok(call, req->user_id)) {
        ; /* answered */
    } else if (name_why != NULL) {
        snprintf(bad, sizeof(bad), "display_name: %s", name_why);
        svc_finish_err(call, RPC_INVALID_ARGUMENT, bad);
    } else if ((op = user_rec_op_new(call, req->user_id)) != NULL) {
        oauth_store_user_put(ctx->store, req->user_id,
                             req->display_name[0] ? req->display_name : req->user_id, "dashboard",
                             clock_now(), false, on_user_put, op);
    }
}

/* ---- GetUser, SetUserDisabled --------------------------------------------------------------- */

static void on_user_got(void *arg, p2a_err err, const struct store_user *u)
{
    struct user_rec_op *op = arg;
    if (err != P2A_OK) {
        svc_finish_err(op->call, RPC_UNAVAILABLE, "user store unavailable; nothing was read");
    } else if (u == NULL) {
        svc_finish_err(op->call, RPC_NOT_FOUND, SVC_NO_SUCH_USER);
    } else {
        Pipe2__Auth__V1__User resp = PIPE2__AUTH__V1__USER__INIT;
        resp.user_id = op->user_id;
        resp.display_name = (char *)u->display_name;
        resp.source = (char *)u->source;
        resp.created_at = u->created_at;
        resp.last_sign_in_at = u->last_sign_in_at;
        resp.disabled_at = u->disabled_at;
        resp.disabled = u->disabled;
        svc_finish_msg(op->call, &resp.base);
    }
    free(op);
}

static void on_user_disabled(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)value;
    struct user_rec_op *op = arg;
    if (err != P2A_OK) {
        svc_finish_err(op->call, RPC_UNAVAILABLE,
                       "the token store is unavailable or no replica confirmed; retry (it is "
                       "harmless)");
    } else if (code == -1) {
        svc_finish_err(op->call, RPC_NOT_FOUND, SVC_NO_SUCH_USER);
    } else {
        if (op->disabled)
            revoke_local(op->revoked, op->marker, op->marker_exp);
        log_info("users.disabled_changed", "a user was disabled or enabled over the RPC");
        svc_audit(op->call,
                  (struct audit_in){.type = op->disabled ? "user.disabled" : "user.enabled",
                                    .user_id = op->user_id});
        Pipe2__Auth__V1__SetUserDisabledResponse resp =
            PIPE2__AUTH__V1__SET_USER_DISABLED_RESPONSE__INIT;
        svc_finish_msg(op->call, &resp.base);
    }
    free(op);
}

void svc_get_user(struct service_ctx *ctx, Pipe2__Auth__V1__GetUserRequest *req,
                  struct service_call *call)
{
    struct user_rec_op *op = user_rec_op_new(call, req->user_id);
    if (op != NULL)
        oauth_store_user_get(ctx->store, op->user_id, on_user_got, op);
}

void svc_set_user_disabled(struct service_ctx *ctx, Pipe2__Auth__V1__SetUserDisabledRequest *req,
                           struct service_call *call)
{
    struct user_rec_op *op = user_rec_op_new(call, req->user_id);
    if (op != NULL) {
        op->disabled = req->disabled;
        op->revoked = ctx->shared->revoked;
        revoke_subject_marker(op->user_id, op->marker);
        int64_t now_ms = clock_now_ms();
        op->marker_exp = now_ms / 1000 + REVOKE_SUBJECT_HORIZON_S;
        oauth_store_user_disable(ctx->store, op->user_id, req->disabled, op->marker, now_ms,
                                 op->marker_exp, on_user_disabled, op);
    }
}
