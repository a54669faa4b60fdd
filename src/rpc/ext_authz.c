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

#include "config.h"
#include "envoy/service/auth/v3/external_auth.pb-c.h"
#include "gateway.h"
#include "introspect.h"
#include "oauth.h"
#include "pbwire.h"
#include "rpc_frame.h"
#include "xalloc.h"

typedef Envoy__Config__Core__V3__HeaderValueOption HeaderOption;
typedef Envoy__Config__Core__V3__HeaderValue HeaderValue;

#define MAX_HEADERS 8

/* What Check reads of a CheckRequest: attributes (1) . request (4) . http (2) . method (2),
 * headers (3, map entries: key 1, value 2), path (4), host (5). Read in place (pbwire.h):
 * a method, host or path given twice is malformed (the rule of core/gateway.h).
 * Envoy sends every header of the request, and unpacking them all cost more than the rest
 * of the call. Strings are copied out NUL-terminated; a method, host or path too long for its
 * buffer makes the request malformed, but a long authorization value is kept by reference (the
 * token is then refused as too long). */
struct check_view {
    char method[GATEWAY_METHOD_MAX];
    char host[GATEWAY_HOST_MAX];
    char path[GATEWAY_URI_MAX];
    char auth[TOKEN_MAX_LEN + 16];
    const char *token; /* within auth, or the wire bytes of one too long */
    size_t token_len;
};

static void copy_str(char *dst, size_t cap, const struct pbw_field *f)
{
    size_t n = f->data != NULL && f->len < cap ? f->len : 0;
    if (n > 0)
        memcpy(dst, f->data, n);
    dst[n] = '\0';
}

/* The submessage number num of the message in r, or false (bad set when malformed). */
static bool sub(const uint8_t *p, size_t len, uint32_t num, struct pbw *out, bool *bad)
{
    struct pbw r;
    struct pbw_field f;
    bool found = false;
    pbw_init(&r, p, len);
    while (pbw_next(&r, &f)) {
        if (f.num != num)
            continue;
        if (f.type != PBW_LEN)
            return *bad = true, false;
        pbw_init(out, f.data, f.len); /* of several, the last is read */
        found = true;
    }
    *bad = *bad || r.bad;
    return found && !*bad;
}

static void header_entry(struct check_view *v, const struct pbw_field *entry, bool *bad)
{
    struct pbw r;
    struct pbw_field f, key = {0}, val = {0};
    pbw_init(&r, entry->data, entry->len);
    while (pbw_next(&r, &f)) {
        if ((f.num == 1 || f.num == 2) && f.type != PBW_LEN)
            *bad = true;
        else if (f.num == 1)
            key = f;
        else if (f.num == 2)
            val = f;
    }
    *bad = *bad || r.bad;
    if (*bad || key.len != 13 || strncasecmp((const char *)key.data, "authorization", 13) != 0)
        return;
    if (val.len < sizeof(v->auth)) {
        copy_str(v->auth, sizeof(v->auth), &val);
        v->token = oauth_bearer(v->auth, &v->token_len);
    } else if (val.len > 7 && strncasecmp((const char *)val.data, "Bearer ", 7) == 0) {
        v->token = (const char *)val.data + 7;
        v->token_len = val.len - 7;
    }
}

/* false when the request is malformed. A request without the http part reads as empty. */
static bool check_read(const uint8_t *msg, size_t len, struct check_view *v)
{
    v->method[0] = v->host[0] = v->path[0] = v->auth[0] = '\0';
    v->token = NULL;
    v->token_len = 0;
    bool bad = false;
    struct pbw attrs, req, http;
    if (!sub(msg, len, 1, &attrs, &bad) ||
        !sub(attrs.p, (size_t)(attrs.end - attrs.p), 4, &req, &bad) ||
        !sub(req.p, (size_t)(req.end - req.p), 2, &http, &bad))
        return !bad;
    struct pbw_field f;
    bool seen[6] = {false};
    while (pbw_next(&http, &f)) {
        if (f.num >= 2 && f.num <= 5 && f.type != PBW_LEN)
            return false;
        if (f.num == 2 || f.num == 4 || f.num == 5) { /* once each, and whole */
            if (seen[f.num] || f.len >= sizeof(v->path) ||
                (f.num != 4 && f.len >= sizeof(v->host)) ||
                (f.num == 2 && f.len >= sizeof(v->method)))
                return false;
            seen[f.num] = true;
        }
        if (f.num == 2)
            copy_str(v->method, sizeof(v->method), &f);
        else if (f.num == 3)
            header_entry(v, &f, &bad);
        else if (f.num == 4)
            copy_str(v->path, sizeof(v->path), &f);
        else if (f.num == 5)
            copy_str(v->host, sizeof(v->host), &f);
        if (bad)
            return false;
    }
    return !http.bad;
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

/* CheckResponse { status (1): {} (code OK), ok_response (3): OkHttpResponse { headers (2):
 * HeaderValueOption { header (1): HeaderValue { key (1), value (2) } } ... } }, written by
 * hand: packing it with protobuf-c walked the nested sizes again at every level, on the
 * path every allowed request takes. Empty values are left out, as protobuf-c does. */
static void allow(struct service_call *call, const struct token_claims *c)
{
    char exp[24];
    struct id_header id[INTROSPECT_ID_HEADERS];
    size_t klen[INTROSPECT_ID_HEADERS], vlen[INTROSPECT_ID_HEADERS];
    size_t hv[INTROSPECT_ID_HEADERS], hvo[INTROSPECT_ID_HEADERS], ok = 0;
    introspect_identity(c, exp, id);
    for (size_t i = 0; i < INTROSPECT_ID_HEADERS; i++) {
        klen[i] = strlen(id[i].name);
        vlen[i] = strlen(id[i].value);
        hv[i] = pbw_len_field_size(1, klen[i]) + (vlen[i] ? pbw_len_field_size(2, vlen[i]) : 0);
        hvo[i] = pbw_len_field_size(1, hv[i]);
        ok += pbw_len_field_size(2, hvo[i]);
    }
    size_t n = pbw_len_field_size(1, 0) + pbw_len_field_size(3, ok);
    uint8_t *buf = svc_msg_begin(n), *p = buf + RPC_FRAME_PREFIX;
    p = pbw_put_len_field(p, 1, NULL, 0);
    p = pbw_put_len_field(p, 3, NULL, ok);
    for (size_t i = 0; i < INTROSPECT_ID_HEADERS; i++) {
        p = pbw_put_len_field(p, 2, NULL, hvo[i]);
        p = pbw_put_len_field(p, 1, NULL, hv[i]);
        p = pbw_put_len_field(p, 1, id[i].name, klen[i]);
        if (vlen[i] > 0)
            p = pbw_put_len_field(p, 2, id[i].value, vlen[i]);
    }
    P2A_ASSERT(p == buf + RPC_FRAME_PREFIX + n);
    svc_msg_finish(call, buf, n);
}

/* CheckResponse { status (1): {}, ok_response (3): {} }: let an OPTIONS through unjudged,
 * with no identity (PIPE2_AUTH_FORWARD_AUTH_ALLOW_OPTIONS). */
static void allow_preflight(struct service_call *call)
{
    size_t n = 2 * pbw_len_field_size(1, 0);
    uint8_t *buf = svc_msg_begin(n), *p = buf + RPC_FRAME_PREFIX;
    p = pbw_put_len_field(p, 1, NULL, 0);
    p = pbw_put_len_field(p, 3, NULL, 0);
    P2A_ASSERT(p == buf + RPC_FRAME_PREFIX + n);
    svc_msg_finish(call, buf, n);
}

/* 401 (403: a missing scope, an address no resource is served at) with the challenge and
 * a body a person can act on. resource NULL: no MCP server is configured for the address. */
static void deny(struct service_call *call, const struct p2a_config *cfg, enum token_verdict v,
                 const char *resource, const char *bad)
{
    bool served = resource != NULL;
    int code = bad != NULL ? 400 : introspect_denial_status(v, served);
    char www[WWW_AUTH_MAX] = "", body[OAUTH_ERROR_JSON_MAX];
    _Static_assert(OAUTH_ERROR_JSON_MAX >= SVC_DENIAL_MAX, "a denial fits the body");
    if (served)
        svc_www_authenticate(v, resource, cfg->resource_scopes, www, sizeof(www));
    if (bad != NULL)
        oauth_error_json("invalid_request", bad, body);
    else if (introspect_denial_json(v, served, body, sizeof(body)) < 0)
        body[0] = '\0';
    HeaderOption opts[MAX_HEADERS], *ptrs[MAX_HEADERS];
    HeaderValue vals[MAX_HEADERS];
    size_t n = 0;
    if (www[0] != '\0')
        add_header(opts, vals, ptrs, &n, "www-authenticate", www);
    add_header(opts, vals, ptrs, &n, "access-control-expose-headers", "WWW-Authenticate");
    add_header(opts, vals, ptrs, &n, "content-type", "application/json");
    Envoy__Type__V3__HttpStatus hs = ENVOY__TYPE__V3__HTTP_STATUS__INIT;
    hs.code = code == 400   ? ENVOY__TYPE__V3__STATUS_CODE__BadRequest
              : code == 403 ? ENVOY__TYPE__V3__STATUS_CODE__Forbidden
                            : ENVOY__TYPE__V3__STATUS_CODE__Unauthorized;
    Envoy__Service__Auth__V3__DeniedHttpResponse d =
        ENVOY__SERVICE__AUTH__V3__DENIED_HTTP_RESPONSE__INIT;
    d.status = &hs;
    d.n_headers = n;
    d.headers = ptrs;
    d.body = body;
    Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
    status.code = code == 400   ? RPC_INVALID_ARGUMENT
                  : code == 403 ? RPC_PERMISSION_DENIED
                                : RPC_UNAUTHENTICATED;
    status.message = (char *)(bad != NULL ? bad
                              : served    ? token_verdict_text(v)
                                          : "no MCP server is served at this address");
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
    struct check_view v;
    if (!check_read(msg, len, &v)) {
        svc_finish_err(call, RPC_INVALID_ARGUMENT, "malformed CheckRequest");
        return;
    }
    const char *resource = NULL, *why = NULL;
    /* a CheckRequest without the http part has no method: judged as a GET of "/" */
    enum gateway_verdict gv =
        gateway_judge(sh->cfg, v.method[0] ? v.method : "GET", v.host, v.path, &resource, &why);
    if (gv == GW_REFUSE) {
        deny(call, sh->cfg, TV_WRONG_AUDIENCE, NULL, why);
        return;
    }
    if (gv == GW_PREFLIGHT) {
        allow_preflight(call);
        return;
    }
    if (resource == NULL) {
        deny(call, sh->cfg, TV_WRONG_AUDIENCE, NULL, NULL);
        return;
    }
    const struct svc_key *caller = call->caller;
    struct introspector x = svc_introspector(ctx);
    struct introspect_query q = {.token = v.token ? v.token : "",
                                 .len = v.token ? v.token_len : 0,
                                 .resource = resource,
                                 .bound = caller ? caller->resources : NULL,
                                 .nbound = caller ? caller->nresources : 0};
    struct introspection r;
    if (introspect(&x, &q, call->now, &r) != P2A_OK)
        svc_finish_err(call, RPC_UNAVAILABLE,
                       "revocation list is not in sync with Redis; refusing to answer");
    else if (r.verdict == TV_ACTIVE)
        allow(call, r.claims);
    else
        deny(call, sh->cfg, r.verdict, resource, NULL);
    introspection_deinit(&r);
}
