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
#include "pbwire.h"
#include "revoke.h"
#include "rpc_frame.h"
#include "url.h"
#include "xalloc.h"

/* ---- Introspect ------------------------------------------------------------------------ */

/* IntrospectResponse written by hand, as protobuf-c packs it (fields in number order, proto3:
 * one at its default is left out), without protobuf-c's walk to size the message and its
 * pack: the answer of the hot path, as Check's (ext_authz.c). The field numbers are
 * token_service.proto's; test_service decodes what this writes. */
struct answer {
    size_t n;
    struct answer_field {
        uint32_t num;
        const char *s; /* NULL: a varint, v */
        size_t len;
        uint64_t v;
    } f[12 + TOKEN_MAX_AUD];
};

static void answer_field(struct answer *a, uint32_t num, const char *s, size_t len)
{
    P2A_ASSERT(a->n < sizeof(a->f) / sizeof(a->f[0]));
    a->f[a->n++] = (struct answer_field){.num = num, .s = s, .len = len};
}

static void answer_str(struct answer *a, uint32_t num, const char *s)
{
    size_t len = s != NULL ? strlen(s) : 0;
    if (len > 0)
        answer_field(a, num, s, len);
}

static void answer_int(struct answer *a, uint32_t num, uint64_t v)
{
    P2A_ASSERT(a->n < sizeof(a->f) / sizeof(a->f[0]));
    if (v != 0)
        a->f[a->n++] = (struct answer_field){.num = num, .v = v};
}

static void answer_finish(struct service_call *call, const struct answer *a)
{
    size_t n = 0;
    for (size_t i = 0; i < a->n; i++)
        n += a->f[i].s != NULL ? pbw_len_field_size(a->f[i].num, a->f[i].len)
                               : pbw_varint_field_size(a->f[i].num, a->f[i].v);
    uint8_t *buf = svc_msg_begin(n), *p = buf + RPC_FRAME_PREFIX;
    for (size_t i = 0; i < a->n; i++)
        p = a->f[i].s != NULL ? pbw_put_len_field(p, a->f[i].num, a->f[i].s, a->f[i].len)
                              : pbw_put_varint_field(p, a->f[i].num, a->f[i].v);
    P2A_ASSERT(p == buf + RPC_FRAME_PREFIX + n);
    svc_msg_finish(call, buf, n);
}

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
    int64_t now = call->now;
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
    struct answer ans = {0};
    char www[WWW_AUTH_MAX];
    if (v == TV_ACTIVE) {
        answer_int(&ans, 1, 1); /* active */
        answer_int(&ans, 3, (uint64_t)c->kind);
        answer_str(&ans, 4, c->sub);
        answer_str(&ans, 5, c->client_id);
        answer_str(&ans, 6, c->scope);
        answer_int(&ans, 7, (uint64_t)c->exp);
        answer_int(&ans, 8, (uint64_t)c->iat);
        answer_str(&ans, 9, c->jti);
        const char *a = c->aud;
        for (size_t i = 0; i < c->naud; i++, a = token_next_aud(a))
            answer_field(&ans, 10, a, strlen(a)); /* repeated: each, even "" */
        answer_str(&ans, 11, c->name);
        answer_str(&ans, 13, c->actor); /* an exchanged token's act.sub (RFC 8693) */
        if (c->kind == TOKEN_KIND_PAT)
            lastused_mark(ctx->marks, c->jti, now);
    } else {
        answer_int(&ans, 2, (uint64_t)v); /* reason */
        char up[2 * SCOPE_MAX_LEN + 2];
        if (v == TV_INSUFFICIENT_SCOPE)
            scope_step_up(c->scope, req->required_scope, up, sizeof(up));
        /* the resource asked about, else the caller's own, else the first we serve */
        const char *res = rlen > 0                               ? req->resource
                          : caller != NULL && caller->nresources ? caller->resources[0]
                                                                 : sh->cfg->resources[0];
        svc_www_authenticate(v, res, v == TV_INSUFFICIENT_SCOPE ? up : sh->cfg->resource_scopes,
                             www, sizeof(www));
        answer_str(&ans, 12, www);
    }
    answer_finish(call, &ans);
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
