/* service_clients.c -- the RPCs about OAuth clients: RegisterClient and RevokeClient.
 *
 * RegisterClient reads its fields as the registration rule reads an RFC 7591 body, with an
 * administrator's rights (oauth_client_register_admin: more grant types, keys, resources),
 * and stores the record. RevokeClient ends a client in two steps, because the client's
 * record and the revocation set live under different Redis hash slots: first its record
 * becomes a tombstone (no more tokens by any grant), then the client's marker joins the
 * revocation set (every token issued to it inactive on every replica; revoke.h). A retry
 * after a failure in between finds the tombstone and writes the marker again.
 *
 * Threading: a worker's loop; answers from the store's callbacks.
 */
#include "service_internal.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "clients.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "revoke.h"
#include "store_clients.h"
#include "store_oauth.h"
#include "xalloc.h"

/* ---- RegisterClient ------------------------------------------------------------------------ */

struct client_op {
    struct service_call *call;
    struct oauth_client_reg reg;
    char client_id[OAUTH_MAX_CLIENT_ID + 1];
    char marker[REVOKE_SUBJECT_MARKER_LEN + 1];
    /* RevokeClient: the client's entry, applied to this replica's view once Redis has it */
    struct revoke_set *revoked;
    int64_t marker_exp;
};

static void on_client_put(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)value;
    struct client_op *op = arg;
    if (err != P2A_OK || code != 1) {
        svc_finish_err(op->call, RPC_UNAVAILABLE, "client store unavailable; nothing registered");
    } else {
        json_t *j = json_loads(op->reg.response, 0, NULL);
        Pipe2__Auth__V1__RegisterClientResponse resp =
            PIPE2__AUTH__V1__REGISTER_CLIENT_RESPONSE__INIT;
        resp.client_id = op->reg.client_id;
        const char *secret = json_string_value(json_object_get(j, "client_secret"));
        resp.client_secret = (char *)(secret ? secret : "");
        resp.registration_json = op->reg.response;
        svc_audit(op->call, (struct audit_in){.type = "client.registered",
                                              .client_id = op->reg.client_id,
                                              .detail = "registered by an administrator"});
        svc_finish_msg(op->call, &resp.base);
        json_decref(j);
        log_info("oauth.client_registered", "registered client %s over the RPC", op->reg.client_id);
    }
    oauth_client_reg_deinit(&op->reg);
    free(op);
}

/* A repeated string field as a JSON array, into body (nothing when empty); false when one is
 * not valid UTF-8. */
static bool put_list(json_t *body, const char *name, char **items, size_t n)
{
    if (n == 0)
        return true;
    json_t *list = json_array();
    bool utf8 = true;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_string(items[i]);
        utf8 = utf8 && s != NULL;
        json_array_append_new(list, s != NULL ? s : json_null());
    }
    json_object_set_new(body, name, list);
    return utf8;
}

/* The request as the registration rule reads an RFC 7591 body; NULL with *why. */
static json_t *register_body(const Pipe2__Auth__V1__RegisterClientRequest *req, const char **why)
{
    json_t *body = json_object();
    bool utf8 = put_list(body, "redirect_uris", req->redirect_uris, req->n_redirect_uris);
    utf8 = put_list(body, "grant_types", req->grant_types, req->n_grant_types) && utf8;
    utf8 = put_list(body, "resources", req->resources, req->n_resources) && utf8;
    const char *fields[][2] = {{"client_name", req->client_name},
                               {"token_endpoint_auth_method", req->token_endpoint_auth_method},
                               {"scope", req->scope},
                               {"jwks_uri", req->jwks_uri}};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (fields[i][1][0] == '\0')
            continue;
        json_t *v = json_string(fields[i][1]);
        utf8 = utf8 && v != NULL;
        if (v != NULL)
            json_object_set_new(body, fields[i][0], v);
    }
    *why = utf8 ? NULL : "a field is not valid UTF-8";
    size_t jl = strlen(req->jwks);
    if (*why == NULL && jl > OAUTH_CLIENT_JWKS_MAX) {
        *why = "jwks must be at most 16384 bytes";
    } else if (*why == NULL && jl > 0) {
        json_t *keys = oauth_json_object(req->jwks, jl);
        if (keys == NULL)
            *why = "jwks must be a JWK Set: a JSON object as text";
        else
            json_object_set_new(body, "jwks", keys);
    }
    if (*why != NULL) {
        json_decref(body);
        return NULL;
    }
    return body;
}

void svc_register_client(struct service_ctx *ctx, Pipe2__Auth__V1__RegisterClientRequest *req,
                         struct service_call *call)
{
    const char *why;
    json_t *body = register_body(req, &why);
    if (body == NULL) {
        svc_finish_err(call, RPC_INVALID_ARGUMENT, why);
        return;
    }
    struct client_op *op = xcalloc(1, sizeof(*op));
    op->call = call;
    const char *code;
    char desc[200];
    p2a_err e = oauth_client_register_admin(body, ctx->shared->cfg, clock_now(), &op->reg, &code,
                                            desc, sizeof(desc));
    json_decref(body);
    if (e != P2A_OK) {
        free(op);
        svc_finish_err(call, e == P2A_ERR_INVALID ? RPC_INVALID_ARGUMENT : RPC_INTERNAL, desc);
        return;
    }
    oauth_store_client_put(ctx->store, op->reg.client_id, op->reg.record, 0, on_client_put, op);
}

/* ---- RevokeClient -------------------------------------------------------------------------- */

/* The client's entry covers tokens issued up to this long after the revocation: a token
 * request that read the client's record just before the tombstone may still sign after the
 * entry is written (no token can be issued to the client later on: it has no record). */
#define CLIENT_CUTOFF_AHEAD_S 60

static void on_client_marker(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)code, (void)value;
    struct client_op *op = arg;
    if (err != P2A_OK) {
        svc_finish_err(op->call, RPC_UNAVAILABLE,
                       "the client gets no more tokens, but the revocation of its tokens was "
                       "not confirmed; retry (revoking a client again is harmless)");
    } else {
        revoke_local(op->revoked, op->marker, op->marker_exp);
        log_info("oauth.client_revoked", "client %s was revoked over the RPC", op->client_id);
        svc_audit(op->call, (struct audit_in){.type = "client.revoked",
                                              .client_id = op->client_id,
                                              .detail = "its tokens stop on every replica"});
        Pipe2__Auth__V1__RevokeClientResponse resp = PIPE2__AUTH__V1__REVOKE_CLIENT_RESPONSE__INIT;
        svc_finish_msg(op->call, &resp.base);
    }
    free(op);
}

struct client_revoke_step {
    struct client_op *op;
    struct store *store;
};

static void on_client_tombstone(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)value;
    struct client_revoke_step *s = arg;
    struct client_op *op = s->op;
    struct store *store = s->store;
    free(s);
    if (err != P2A_OK) {
        svc_finish_err(op->call, RPC_UNAVAILABLE, "client store unavailable; nothing revoked");
        free(op);
        return;
    }
    if (code == -1) {
        svc_finish_err(op->call, RPC_NOT_FOUND, "no such client");
        free(op);
        return;
    }
    int64_t now_ms = clock_now_ms();
    op->marker_exp = now_ms / 1000 + CLIENT_CUTOFF_AHEAD_S + REVOKE_SUBJECT_HORIZON_S;
    oauth_store_jti_revoke(store, op->marker, op->marker_exp, now_ms, on_client_marker, op);
}

void svc_revoke_client(struct service_ctx *ctx, Pipe2__Auth__V1__RevokeClientRequest *req,
                       struct service_call *call)
{
    if (!oauth_client_id_valid(req->client_id)) {
        svc_finish_err(call, RPC_INVALID_ARGUMENT,
                       "client_id: one of ours (c_ and base64url), as RegisterClient gives");
    } else {
        struct client_op *op = xcalloc(1, sizeof(*op));
        op->call = call;
        op->revoked = ctx->shared->revoked;
        snprintf(op->client_id, sizeof(op->client_id), "%s", req->client_id);
        revoke_client_marker(op->client_id, op->marker);
        struct client_revoke_step *s = xcalloc(1, sizeof(*s));
        s->op = op;
        s->store = ctx->store;
        store_client_revoke(ctx->store, op->client_id, clock_now(), REVOKE_SUBJECT_HORIZON_S,
                            on_client_tombstone, s);
    }
}
