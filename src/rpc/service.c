/* service.c -- the method table (every RPC: its path, role, request and handler), the
 * dispatcher that decodes each request and frees it, and the answering helpers the handlers
 * share (service_internal.h). The handlers live by subject in service_*.c and ext_authz.c.
 * Threading: a worker's loop; the service_shared parts are read-only or thread-safe.
 */
#include "service.h"
#include "service_internal.h"

#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "metrics.h"
#include "rpc_frame.h"
#include "slab.h"
#include "url.h"
#include "validate.h"

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

struct introspector svc_introspector(const struct service_ctx *ctx)
{
    const struct service_shared *sh = ctx->shared;
    return (struct introspector){.cfg = sh->cfg,
                                 .keys = ctx->keys,
                                 .revoked = sh->revoked,
                                 .cache = ctx->cache,
                                 .mx = ctx->mx,
                                 .refused = ctx->refused};
}

bool svc_user_id_ok(struct service_call *call, const char *user_id)
{
    const char *why = validate_user_id(user_id);
    if (why != NULL)
        svc_finish_err(call, RPC_INVALID_ARGUMENT, why);
    return why == NULL;
}

/* ---- decoding ------------------------------------------------------------------------------ */

/* A request decoded on the stack: the message and its strings come from a bump arena, with
 * malloc only for what overflows it (a token near the 8 KiB bound or longer, a long list of
 * redirect URIs); spilled says whether anything did (else there is nothing to free). */
struct svc_pb_arena {
    struct arena arena;
    ProtobufCAllocator alloc;
    bool spilled;
    _Alignas(16) unsigned char buf[12 * 1024];
};

static void *pb_alloc(void *data, size_t size)
{
    struct svc_pb_arena *a = data;
    unsigned char *p = arena_alloc(&a->arena, size);
    if (p != NULL && (p < a->buf || p >= a->buf + sizeof(a->buf)))
        a->spilled = true; /* from malloc: pb_free frees it */
    return p;
}

static void pb_free(void *data, void *p)
{
    struct svc_pb_arena *a = data;
    arena_free(&a->arena, p);
}

static void svc_pb_arena_init(struct svc_pb_arena *a)
{
    arena_init(&a->arena, a->buf, sizeof(a->buf));
    a->alloc = (ProtobufCAllocator){pb_alloc, pb_free, a};
    a->spilled = false;
}

void service_call_method(struct service_ctx *ctx, const struct service_method *m,
                         const uint8_t *msg, size_t len, struct service_call *call)
{
    if (m->desc == NULL) {
        m->raw(ctx, msg, len, call);
        return;
    }
    struct svc_pb_arena pa;
    svc_pb_arena_init(&pa);
    ProtobufCMessage *req = protobuf_c_message_unpack(m->desc, &pa.alloc, len, msg);
    if (req == NULL) {
        char why[96];
        snprintf(why, sizeof(why), "malformed %s", m->desc->short_name);
        svc_finish_err(call, RPC_INVALID_ARGUMENT, why);
        return;
    }
    m->run(ctx, req, call);
    if (pa.spilled) /* else all of it is in pa.buf, which goes with this frame */
        protobuf_c_message_free_unpacked(req, &pa.alloc);
}

/* ---- the table ----------------------------------------------------------------------------- */

/* The one list of RPCs: routing, the role each needs, its request, metric labels and access
 * logs. A row is
 *   PB(path, label, least role, answers inline, handler, request type, request descriptor):
 *      the request decoded for the handler, which takes it typed (checked by the compiler);
 *   RAW(path, label, least role, answers inline, handler): the handler reads the bytes.
 * Adding an RPC: a row here, its handler in the file of its subject (declared in
 * service_internal.h; a new service_*.c file is listed in CMakeLists.txt's p2a_rpc), and
 * METRICS_METHODS one more (checked below). */
#define SVC "/pipe2.auth.v1.TokenService/"
#define PB1(x) Pipe2__Auth__V1__##x
#define METHODS(PB, RAW)                                                                           \
    PB(SVC "Introspect", "Introspect", SVC_ROLE_INTROSPECT, true, svc_introspect,                  \
       PB1(IntrospectRequest), pipe2__auth__v1__introspect_request__descriptor)                    \
    PB(SVC "IssueToken", "IssueToken", SVC_ROLE_ADMIN, false, svc_issue_token,                     \
       PB1(IssueTokenRequest), pipe2__auth__v1__issue_token_request__descriptor)                   \
    PB(SVC "RevokeToken", "RevokeToken", SVC_ROLE_ADMIN, false, svc_revoke_token,                  \
       PB1(RevokeTokenRequest), pipe2__auth__v1__revoke_token_request__descriptor)                 \
    PB(SVC "ListTokens", "ListTokens", SVC_ROLE_ADMIN, false, svc_list_tokens,                     \
       PB1(ListTokensRequest), pipe2__auth__v1__list_tokens_request__descriptor)                   \
    PB("/grpc.health.v1.Health/Check", "Health.Check", SVC_ROLE_NONE, true, svc_health,            \
       Grpc__Health__V1__HealthCheckRequest, grpc__health__v1__health_check_request__descriptor)   \
    PB(SVC "CreateUser", "CreateUser", SVC_ROLE_ADMIN, false, svc_create_user,                     \
       PB1(CreateUserRequest), pipe2__auth__v1__create_user_request__descriptor)                   \
    PB(SVC "RegisterClient", "RegisterClient", SVC_ROLE_ADMIN, false, svc_register_client,         \
       PB1(RegisterClientRequest), pipe2__auth__v1__register_client_request__descriptor)           \
    PB(SVC "PutUser", "PutUser", SVC_ROLE_ADMIN, false, svc_put_user, PB1(PutUserRequest),         \
       pipe2__auth__v1__put_user_request__descriptor)                                              \
    PB(SVC "GetUser", "GetUser", SVC_ROLE_ADMIN, false, svc_get_user, PB1(GetUserRequest),         \
       pipe2__auth__v1__get_user_request__descriptor)                                              \
    PB(SVC "SetUserDisabled", "SetUserDisabled", SVC_ROLE_ADMIN, false, svc_set_user_disabled,     \
       PB1(SetUserDisabledRequest), pipe2__auth__v1__set_user_disabled_request__descriptor)        \
    PB(SVC "ListGrants", "ListGrants", SVC_ROLE_ADMIN, false, svc_list_grants,                     \
       PB1(ListGrantsRequest), pipe2__auth__v1__list_grants_request__descriptor)                   \
    PB(SVC "RevokeGrant", "RevokeGrant", SVC_ROLE_ADMIN, false, svc_revoke_grant,                  \
       PB1(RevokeGrantRequest), pipe2__auth__v1__revoke_grant_request__descriptor)                 \
    PB(SVC "RevokeClient", "RevokeClient", SVC_ROLE_ADMIN, false, svc_revoke_client,               \
       PB1(RevokeClientRequest), pipe2__auth__v1__revoke_client_request__descriptor)               \
    PB(SVC "ListAuditEvents", "ListAuditEvents", SVC_ROLE_ADMIN, false, svc_list_audit_events,     \
       PB1(ListAuditEventsRequest), pipe2__auth__v1__list_audit_events_request__descriptor)        \
    /* Envoy's ext_authz: the same introspect keys, the same flow as Introspect */                 \
    RAW("/envoy.service.auth.v3.Authorization/Check", "ext_authz.Check", SVC_ROLE_INTROSPECT,      \
        true, ext_authz_check)

/* Each PB row's entry point: the decoded request passed on as its handler's type. */
#define ENTRY(path, label, role, inl, fn, Type, desc)                                              \
    static void fn##_entry(struct service_ctx *ctx, void *req, struct service_call *call)          \
    {                                                                                              \
        fn(ctx, (Type *)req, call);                                                                \
    }
#define NO_ENTRY(path, label, role, inl, fn)
METHODS(ENTRY, NO_ENTRY)

#define PB_ROW(path, label, role, inl, fn, Type, desc)                                             \
    {path, label, role, inl, &(desc), fn##_entry, NULL},
#define RAW_ROW(path, label, role, inl, fn) {path, label, role, inl, NULL, NULL, fn},
static const struct service_method methods[] = {METHODS(PB_ROW, RAW_ROW)};
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
