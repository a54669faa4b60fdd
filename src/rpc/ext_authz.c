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

#include <jansson.h>

#include "clock.h"
#include "config.h"
#include "envoy/service/auth/v3/external_auth.pb-c.h"
#include "introspect.h"
#include "url.h"

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

/* Whether path is prefix itself or below it ("/mcp" covers "/mcp", "/mcp/x", "/mcp?a"). */
static bool under(const char *path, const char *prefix, size_t plen)
{
    return strncmp(path, prefix, plen) == 0 &&
           (path[plen] == '\0' || path[plen] == '/' || path[plen] == '?' ||
            (plen > 0 && prefix[plen - 1] == '/'));
}

/* The configured resource this request is for, or NULL: PIPE2_AUTH_FORWARD_AUTH_RESOURCES
 * first (the longest prefix), else the resource whose own host and path match, else the only
 * one. */
static const char *resource_for(const struct p2a_config *cfg, const HttpRequest *http)
{
    const char *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; http != NULL && i < cfg->nroutes; i++) {
        const struct config_route *r = &cfg->routes[i];
        size_t plen = strlen(r->prefix);
        if (strcasecmp(r->host, http->host) == 0 && under(http->path, r->prefix, plen) &&
            (best == NULL || plen > best_len))
            best = r->resource, best_len = plen;
    }
    if (best != NULL || cfg->nroutes > 0)
        return best;
    for (size_t i = 0; http != NULL && i < cfg->nresources; i++) {
        const char *r = cfg->resources[i];
        size_t auth_end = url_authority_end(r);
        const char *authority = strstr(r, "://");
        const char *path = url_path(r);
        size_t plen = strlen(path);
        while (plen > 0 && path[plen - 1] == '/')
            plen--;
        if (authority == NULL || auth_end == 0)
            continue;
        authority += 3;
        size_t alen = (size_t)(r + auth_end - authority);
        bool host_ok = strlen(http->host) == alen && strncasecmp(http->host, authority, alen) == 0;
        bool path_ok = under(http->path, path, plen);
        if (host_ok && path_ok && (best == NULL || plen > best_len))
            best = r, best_len = plen;
    }
    return best != NULL ? best : (cfg->nresources == 1 ? cfg->resources[0] : NULL);
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
    snprintf(exp, sizeof(exp), "%lld", (long long)c->exp);
    add_header(opts, vals, ptrs, &n, "x-auth-subject", c->sub);
    add_header(opts, vals, ptrs, &n, "x-auth-client-id", c->client_id);
    add_header(opts, vals, ptrs, &n, "x-auth-scope", c->scope);
    add_header(opts, vals, ptrs, &n, "x-auth-token-kind",
               c->kind == TOKEN_KIND_PAT ? "pat" : "oauth");
    add_header(opts, vals, ptrs, &n, "x-auth-token-id", c->jti);
    add_header(opts, vals, ptrs, &n, "x-auth-expires", exp);
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
                 const char *resource, const char *scope)
{
    bool forbidden = v == TV_INSUFFICIENT_SCOPE || resource == NULL;
    char www[WWW_AUTH_MAX] = "";
    if (resource != NULL)
        svc_www_authenticate(v, resource, scope ? scope : cfg->resource_scopes, www, sizeof(www));
    json_t *b = json_pack("{s:s, s:s, s:s}", "error",
                          resource == NULL             ? "unknown_resource"
                          : v == TV_INSUFFICIENT_SCOPE ? "insufficient_scope"
                                                       : "invalid_token",
                          "error_description",
                          resource == NULL ? "no MCP server is served at this address"
                                           : token_verdict_text(v),
                          "hint", resource == NULL ? "" : token_verdict_hint(v));
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    HeaderOption opts[MAX_HEADERS], *ptrs[MAX_HEADERS];
    HeaderValue vals[MAX_HEADERS];
    size_t n = 0;
    if (www[0] != '\0')
        add_header(opts, vals, ptrs, &n, "www-authenticate", www);
    add_header(opts, vals, ptrs, &n, "access-control-expose-headers", "WWW-Authenticate");
    add_header(opts, vals, ptrs, &n, "content-type", "application/json");
    Envoy__Type__V3__HttpStatus hs = ENVOY__TYPE__V3__HTTP_STATUS__INIT;
    hs.code = forbidden ? ENVOY__TYPE__V3__STATUS_CODE__Forbidden
                        : ENVOY__TYPE__V3__STATUS_CODE__Unauthorized;
    Envoy__Service__Auth__V3__DeniedHttpResponse d =
        ENVOY__SERVICE__AUTH__V3__DENIED_HTTP_RESPONSE__INIT;
    d.status = &hs;
    d.n_headers = n;
    d.headers = ptrs;
    d.body = body ? body : "";
    Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
    status.code = forbidden ? RPC_PERMISSION_DENIED : RPC_UNAUTHENTICATED;
    status.message = (char *)(resource == NULL ? "no MCP server is served at this address"
                                               : token_verdict_text(v));
    Envoy__Service__Auth__V3__CheckResponse resp = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__INIT;
    resp.status = &status;
    resp.http_response_case =
        ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_DENIED_RESPONSE;
    resp.denied_response = &d;
    svc_finish_msg(call, &resp.base);
    free(body);
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
    const char *resource = resource_for(sh->cfg, http);
    if (resource == NULL) {
        deny(call, sh->cfg, TV_WRONG_AUDIENCE, NULL, NULL);
        envoy__service__auth__v3__check_request__free_unpacked(req, &pa.alloc);
        return;
    }
    size_t tlen = 0;
    const char *authz = header(http, "authorization");
    const char *token = authz != NULL && strncasecmp(authz, "Bearer ", 7) == 0 ? authz + 7 : "";
    while (*token == ' ')
        token++;
    tlen = strlen(token);
    const struct svc_key *caller = call->caller;
    struct introspector x = {.cfg = sh->cfg,
                             .keys = ctx->keys,
                             .revoked = sh->revoked,
                             .cache = ctx->cache,
                             .mx = ctx->mx};
    struct introspect_query q = {.token = token,
                                 .len = tlen,
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
        deny(call, sh->cfg, r.verdict, resource, NULL);
    introspection_deinit(&r);
    envoy__service__auth__v3__check_request__free_unpacked(req, &pa.alloc);
}
