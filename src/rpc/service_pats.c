/* service_pats.c -- the personal access token methods: IssueToken, RevokeToken, ListTokens.
 * Each waits on Redis: it hands the store a small op holding the call, and answers from the
 * store's callback. The rules of a PAT are core/pat.c's.
 * Threading: a worker's loop.
 */
#include "service_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "clock.h"
#include "log.h"
#include "pat.h"
#include "revoke.h"
#include "store.h"
#include "store_pat_issue.h"
#include "validate.h"
#include "xalloc.h"

/* ---- IssueToken --------------------------------------------------------------------------- */

struct issue_op {
    struct service_call *call;
    struct pat_signed ps; /* ps.scope: a copy, owned */
    char *user_id, *name;
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

static void on_issued(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)value;
    struct issue_op *op = arg;
    if (err == P2A_OK && code == -1) {
        svc_finish_err(op->call, RPC_NOT_FOUND, SVC_NO_SUCH_USER);
    } else if (err == P2A_OK && code == -2) {
        svc_finish_err(op->call, RPC_FAILED_PRECONDITION,
                       "this user is disabled (SetUserDisabled): no token was issued");
    } else if (err != P2A_OK || code != 1) {
        svc_finish_err(op->call, RPC_UNAVAILABLE, "token store unavailable; no token was issued");
    } else {
        struct pat_record r = {.jti = op->ps.jti,
                               .user_id = op->user_id,
                               .name = op->name,
                               .scope = op->ps.scope,
                               .created_at = op->ps.created_at,
                               .expires_at = op->ps.expires_at};
        Pipe2__Auth__V1__TokenInfo info = PIPE2__AUTH__V1__TOKEN_INFO__INIT;
        fill_info(&info, &r);
        Pipe2__Auth__V1__IssueTokenResponse resp = PIPE2__AUTH__V1__ISSUE_TOKEN_RESPONSE__INIT;
        resp.token = op->ps.token;
        resp.info = &info;
        svc_audit(op->call, (struct audit_in){.type = "pat.issued",
                                              .user_id = op->user_id,
                                              .token_id = op->ps.jti,
                                              .detail = op->name});
        svc_finish_msg(op->call, &resp.base);
        char ref[13];
        log_token_ref(op->ps.token, strlen(op->ps.token), ref);
        log_info("pat.issued", "issued PAT jti=%s ref=%s expires_at=%lld", op->ps.jti, ref,
                 (long long)op->ps.expires_at);
    }
    OPENSSL_cleanse(op->ps.token, strlen(op->ps.token));
    free(op->ps.token);
    free((char *)op->ps.scope);
    free(op->user_id);
    free(op->name);
    free(op);
}

void svc_issue_token(struct service_ctx *ctx, Pipe2__Auth__V1__IssueTokenRequest *req,
                     struct service_call *call)
{
    struct pat_request rq = {.user_id = req->user_id,
                             .name = req->name,
                             .scope = req->scope,
                             .expires_in_s = req->expires_in_seconds};
    struct issue_op *op = xcalloc(1, sizeof(*op));
    op->call = call;
    const char *why;
    /* no limits here: a dashboard's admin key may issue as many as it needs */
    p2a_err e = store_pat_issue(ctx->store, ctx->keys, ctx->shared->cfg, &rq, clock_now_ms(), 0, 0,
                                &op->ps, &why, on_issued, op);
    if (e != P2A_OK) { /* nothing was written */
        free(op);
        svc_finish_err(call, e == P2A_ERR_INVALID ? RPC_INVALID_ARGUMENT : RPC_INTERNAL, why);
        return;
    }
    /* the store answers from the loop, never before this returns (store.h) */
    op->ps.scope = xstrdup(op->ps.scope);
    op->user_id = xstrdup(req->user_id);
    op->name = xstrdup(req->name);
}

/* ---- RevokeToken -------------------------------------------------------------------------- */

struct revoke_op {
    struct service_call *call;
    struct revoke_set *revoked;
    char jti[JTI_MAX_LEN + 1];
};

static void on_revoked(void *arg, p2a_err err, bool already, int64_t revoked_at, int64_t exp,
                       const char *user_id)
{
    struct revoke_op *op = arg;
    if (err == P2A_OK && !already)
        svc_audit(op->call, (struct audit_in){
                                .type = "pat.revoked", .user_id = user_id, .token_id = op->jti});
    if (err == P2A_OK) {
        revoke_local(op->revoked, op->jti, exp);
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

void svc_revoke_token(struct service_ctx *ctx, Pipe2__Auth__V1__RevokeTokenRequest *req,
                      struct service_call *call)
{
    const char *why = NULL;
    enum rpc_code code = RPC_INVALID_ARGUMENT;
    if (req->jti[0] == '\0')
        why = "jti is required";
    else if (req->user_id[0] != '\0' && (why = validate_user_id(req->user_id)) != NULL)
        ;
    else if (!validate_jti(req->jti))
        why = "no such token", code = RPC_NOT_FOUND;
    if (why != NULL) {
        svc_finish_err(call, code, why);
        return;
    }
    struct revoke_op *op = xcalloc(1, sizeof(*op));
    op->call = call;
    op->revoked = ctx->shared->revoked;
    snprintf(op->jti, sizeof(op->jti), "%s", req->jti);
    store_pat_revoke(ctx->store, req->jti, req->user_id, clock_now_ms(), on_revoked, op);
}

/* ---- ListTokens --------------------------------------------------------------------------- */

static void on_listed(void *arg, p2a_err err, const struct pat_record *recs, size_t n)
{
    struct service_call *call = arg;
    if (err == P2A_ERR_NOT_FOUND) {
        svc_finish_err(call, RPC_NOT_FOUND, SVC_NO_SUCH_USER);
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

void svc_list_tokens(struct service_ctx *ctx, Pipe2__Auth__V1__ListTokensRequest *req,
                     struct service_call *call)
{
    if (svc_user_id_ok(call, req->user_id))
        store_pat_list(ctx->store, req->user_id, req->include_revoked, on_listed, call);
}
