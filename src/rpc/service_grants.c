/* service_grants.c -- a user's grants to OAuth clients, for a dashboard: ListGrants and
 * RevokeGrant. Each waits on Redis and answers from the store's callback.
 * Threading: a worker's loop.
 */
#include "service_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "clients.h"
#include "clock.h"
#include "log.h"
#include "oauth.h"
#include "store_grants.h"
#include "validate.h"
#include "xalloc.h"

/* ---- ListGrants, RevokeGrant ---------------------------------------------------------------- */

static void on_grants(void *arg, p2a_err err, const struct store_grant *gr, size_t count)
{
    struct service_call *call = arg;
    if (err != P2A_OK) {
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

void svc_list_grants(struct service_ctx *ctx, Pipe2__Auth__V1__ListGrantsRequest *req,
                     struct service_call *call)
{
    if (svc_user_id_ok(call, req->user_id))
        oauth_store_grants_list(ctx->store, req->user_id, on_grants, call);
}

/* A RevokeGrant in flight, with what its audit event names. */
struct grant_op {
    struct service_call *call;
    char user_id[VALIDATE_USER_ID_MAX + 1];
    char grant_id[OAUTH_HEX_LEN + 1];
};

static void on_grant_revoked(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)value;
    struct grant_op *op = arg;
    if (err != P2A_OK) {
        svc_finish_err(op->call, RPC_UNAVAILABLE,
                       "the token store is unavailable or no replica confirmed the revocation; "
                       "retry (revoking a grant again is harmless)");
    } else if (code == -1) {
        svc_finish_err(op->call, RPC_NOT_FOUND, "no such grant for this user");
    } else {
        log_info("oauth.grant_revoked", "a grant was revoked over the RPC");
        svc_audit(op->call, (struct audit_in){.type = "grant.revoked",
                                              .user_id = op->user_id,
                                              .token_id = op->grant_id});
        Pipe2__Auth__V1__RevokeGrantResponse resp = PIPE2__AUTH__V1__REVOKE_GRANT_RESPONSE__INIT;
        svc_finish_msg(op->call, &resp.base);
    }
    free(op);
}

void svc_revoke_grant(struct service_ctx *ctx, Pipe2__Auth__V1__RevokeGrantRequest *req,
                      struct service_call *call)
{
    if (!svc_user_id_ok(call, req->user_id)) {
        ; /* answered */
    } else if (!oauth_grant_id_valid(req->grant_id)) {
        svc_finish_err(call, RPC_INVALID_ARGUMENT, "grant_id: 64 hex digits, as ListGrants gives");
    } else {
        struct grant_op *op = xcalloc(1, sizeof(*op));
        op->call = call;
        snprintf(op->user_id, sizeof(op->user_id), "%s", req->user_id);
        snprintf(op->grant_id, sizeof(op->grant_id), "%s", req->grant_id);
        oauth_store_grant_revoke(ctx->store, req->user_id, req->grant_id, clock_now_ms(),
                                 on_grant_revoked, op);
    }
}
