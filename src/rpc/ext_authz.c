/* ext_authz.c -- Envoy's external authorization over gRPC (envoy.service.auth.v3
 * Authorization/Check): a gateway in front of MCP servers asks about each request, and the
 * MCP servers carry no auth code of their own.
 *
 * The same flow as Introspect (core/introspect.c), on the same worker, with the same cache
 * and revocation view; the caller authenticates with an introspect service key, as for
 * Introspect (Envoy's grpc_service sends it as initial metadata), so that a key bound to its
 * resources binds here too. The resource is never the client's to say: it is the configured
 * resource whose host and path the request's match (the longest path), or the only one
 * configured. Answers:
 *   - a good token: status OK and ok_response with the identity for the upstream
 *     (X-Auth-Subject, X-Auth-Client-Id, X-Auth-Scope, X-Auth-Token-Kind, X-Auth-Token-Id,
 *     X-Auth-Expires);
 *   - otherwise denied_response: 401 (403 for a missing scope or an unserved address) with
 *     the WWW-Authenticate Introspect would give and a short JSON body that says what to do;
 *   - a revocation view that cannot be trusted: gRPC UNAVAILABLE (Envoy denies by default:
 *     fail closed).
 */
#include "service_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "config.h"
#include "envoy/service/auth/v3/external_auth.pb-c.h"
#include "introspect.h"
#include "oauth.h"

typedef Envoy__Service__Auth__V3__AttributeContext__HttpRequest HttpRequest;
typedef Envoy__Config__Core__V3__HeaderValueOption HeaderOption;
typedef Envoy__Config__Core__V3__HeaderValue HeaderValue;

#define MAX_HEADERS 8

static const char *header(const HttpRequest *http, const char *name)
{
    for (size_t i = 0; http != NULL && i < http->n_headers; i++)
        if (strcasecmp(http->headers[i]->key, name) == 0)
            return http->headers[i]->value;
    return NULL;
}

static void add_header(HeaderOption *opts, HeaderValue *vals, HeaderOption **ptrs, size_t *n,
                       const char *key, const char *value)
{
    if (*n == MAX_HEADERS)
        return;
    envoy__config__core__v3__header_value_option__init(&opts[*n]);
    envoy__config__core__v3__header_value__init(&vals[*n]);
    vals[*n].key = (char *)key;
    vals[*n].value = (char *)value;
    opts[*n].header = &vals[*n];
    ptrs[*n] = &opts[*n];
    (*n)++;
}

static void allow(struct service_call *call, const struct token_claims *c)
{
    HeaderOption opts[MAX_HEADERS], *ptrs[MAX_HEADERS];
    HeaderValue vals[MAX_HEADERS];
    size_t n = 0;
    char exp[24];
    struct id_header id[INTROSPECT_ID_HEADERS];
    introspect_identity(c, exp, id);
    for (size_t i = 0; i < INTROSPECT_ID_HEADERS; i++)
        add_header(opts, vals, ptrs, &n, id[i].name, id[i].value);
    Envoy__Service__Auth__V3__OkHttpResponse ok = ENVOY__SERVICE__AUTH__V3__OK_HTTP_RESPONSE__INIT;
    ok.n_headers = n;
    ok.headers = ptrs;
    Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
    Envoy__Service__Auth__V3__CheckResponse resp = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__INIT;
    resp.status = &status;
    resp.http_response_case = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_OK_RESPONSE;
    resp.ok_response = &ok;
    svc_finish_msg(call, &resp.base);
}

/* 401 (403: a missing scope, an address no resource is served at) with the challenge and
 * a body a person can act on. resource NULL: no MCP server is configured for the address. */
static void deny(struct service_call *call, const struct p2a_config *cfg, enum token_verdict v,
                 const char *resource)
{
    bool served = resource != NULL;
    int code = introspect_denial_status(v, served);
    char www[WWW_AUTH_MAX] = "", body[SVC_DENIAL_MAX];
    if (served)
        svc_www_authenticate(v, resource, cfg->resource_scopes, www, sizeof(www));
    if (introspect_denial_json(v, served, body, sizeof(body)) < 0)
        body[0] = '\0';
    HeaderOption opts[MAX_HEADERS], *ptrs[MAX_HEADERS];
    HeaderValue vals[MAX_HEADERS];
    size_t n = 0;
    if (www[0] != '\0')
        add_header(opts, vals, ptrs, &n, "www-authenticate", www);
    add_header(opts, vals, ptrs, &n, "access-control-expose-headers", "WWW-Authenticate");
    add_header(opts, vals, ptrs, &n, "content-type", "application/json");
    Envoy__Type__V3__HttpStatus hs = ENVOY__TYPE__V3__HTTP_STATUS__INIT;
    hs.code = code == 403 ? ENVOY__TYPE__V3__STATUS_CODE__Forbidden
                          : ENVOY__TYPE__V3__STATUS_CODE__Unauthorized;
    Envoy__Service__Auth__V3__DeniedHttpResponse d =
        ENVOY__SERVICE__AUTH__V3__DENIED_HTTP_RESPONSE__INIT;
    d.status = &hs;
    d.n_headers = n;
    d.headers = ptrs;
    d.body = body;
    Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
    status.code = code == 403 ? RPC_PERMISSION_DENIED : RPC_UNAUTHENTICATED;
    status.message =
        (char *)(served ? token_verdict_text(v) : "no MCP server is served at this address");
    Envoy__Service__Auth__V3__CheckResponse resp = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__INIT;
    resp.status = &status;
    resp.http_response_case =
        ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_DENIED_RESPONSE;
    resp.denied_response = &d;
    svc_finish_msg(call, &resp.base);
}

void ext_authz_check(struct service_ctx *ctx, const uint8_t *msg, size_t len,
                     struct service_call *call)
{
    const struct service_shared *sh = ctx->shared;
    struct svc_pb_arena pa;
    svc_pb_arena_init(&pa);
    Envoy__Service__Auth__V3__CheckRequest *req =
        svc_unpack(call, &envoy__service__auth__v3__check_request__descriptor, &pa.alloc, msg, len);
    if (req == NULL)
        return;
    const HttpRequest *http = req->attributes != NULL && req->attributes->request != NULL
                                  ? req->attributes->request->http
                                  : NULL;
    const char *resource =
        config_resource_at(sh->cfg, http ? http->host : NULL, http ? http->path : NULL);
    if (resource == NULL) {
        deny(call, sh->cfg, TV_WRONG_AUDIENCE, NULL);
        envoy__service__auth__v3__check_request__free_unpacked(req, &pa.alloc);
        return;
    }
    size_t tlen = 0;
    const char *token = oauth_bearer(header(http, "authorization"), &tlen);
    const struct svc_key *caller = call->caller;
    struct introspector x = {.cfg = sh->cfg,
                             .keys = ctx->keys,
                             .revoked = sh->revoked,
                             .cache = ctx->cache,
                             .mx = ctx->mx};
    struct introspect_query q = {.token = token ? token : "",
                                 .len = token ? tlen : 0,
                                 .resource = resource,
                                 .bound = caller ? caller->resources : NULL,
                                 .nbound = caller ? caller->nresources : 0};
    struct introspection r;
    if (introspect(&x, &q, clock_now(), &r) != P2A_OK)
        svc_finish_err(call, RPC_UNAVAILABLE,
                       "revocation list is not in sync with Redis; refusing to answer");
    else if (r.verdict == TV_ACTIVE)
        allow(call, r.claims);
    else
        deny(call, sh->cfg, r.verdict, resource);
    introspection_deinit(&r);
    envoy__service__auth__v3__check_request__free_unpacked(req, &pa.alloc);
}
