/* service_introspect.c -- the methods that answer from the worker's memory, never waiting
 * on Redis: Introspect and grpc.health.v1 Health/Check.
 *
 * Introspect is the hot path: digest the token, look in the worker's cache, verify on a
 * miss, then check revocation, time, kind and resource on every call (core/introspect.c).
 * An inactive token is an OK answer with a reason and the WWW-Authenticate value the MCP
 * server should send. Every field a caller sends is checked, and the message names it.
 * Threading: a worker's loop.
 */
#include "service_internal.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "lastused.h"
#include "revoke.h"
#include "url.h"

/* ---- Introspect ------------------------------------------------------------------------ */

void svc_introspect(struct service_ctx *ctx, Pipe2__Auth__V1__IntrospectRequest *req,
                    struct service_call *call)
{
    const struct service_shared *sh = ctx->shared;
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
}

/* ---- grpc.health.v1 ----------------------------------------------------------------------- */

void svc_health(struct service_ctx *ctx, Grpc__Health__V1__HealthCheckRequest *req,
                struct service_call *call)
{
    /* "" and the service name: ready to take traffic (the readiness probe). "liveness": the
     * process and this worker's loop answer at all (the liveness probe), whatever Redis does */
    bool liveness = strcmp(req->service, "liveness") == 0;
    bool known = liveness || req->service[0] == '\0' ||
                 strcmp(req->service, "pipe2.auth.v1.TokenService") == 0;
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
