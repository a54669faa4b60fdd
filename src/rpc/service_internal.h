/* service_internal.h -- what the files of the service methods share (service.c holds the
 * method table and the pipe2 methods; ext_authz.c Envoy's Check). Not for other modules. */
#ifndef P2A_SERVICE_INTERNAL_H
#define P2A_SERVICE_INTERNAL_H

#include <protobuf-c/protobuf-c.h>

#include "arena.h"
#include "introspect.h"
#include "rpc_status.h"
#include "scope.h"
#include "service.h"
#include "token.h"

#define RESOURCE_MAX 2048
#define WWW_AUTH_MAX (RESOURCE_MAX * 2 + 2 * SCOPE_MAX_LEN + 400)
#define SVC_DENIAL_MAX 512 /* introspect_denial_json()'s body */

/* Unpacking a request on the hot path (Introspect, Check) allocates the message and its
 * strings: they come from a bump arena on the stack instead, with malloc only for what
 * overflows it (a token near the 8 KiB bound or longer, many headers). */
struct svc_pb_arena {
    struct arena arena;
    ProtobufCAllocator alloc;
    _Alignas(16) unsigned char buf[12 * 1024];
};
void svc_pb_arena_init(struct svc_pb_arena *a);

/* A message of n bytes written by hand: svc_msg_begin() gives the slab buffer, framed, its
 * message to be written from buf + RPC_FRAME_PREFIX; svc_msg_finish() answers with it. */
uint8_t *svc_msg_begin(size_t n);
void svc_msg_finish(struct service_call *call, uint8_t *buf, size_t n);
/* Answers call with m (packed into a slab buffer), or with an error status and message. */
void svc_finish_msg(struct service_call *call, const ProtobufCMessage *m);
void svc_finish_err(struct service_call *call, enum rpc_code code, const char *msg);
/* The request, or NULL after answering INVALID_ARGUMENT ("malformed IssueTokenRequest"). */
void *svc_unpack(struct service_call *call, const ProtobufCMessageDescriptor *desc,
                 ProtobufCAllocator *alloc, const uint8_t *msg, size_t len);
/* The WWW-Authenticate value for a token that is not good for resource (RFC 6750 3, RFC
 * 9728 5.1): a 401 challenge, or for TV_INSUFFICIENT_SCOPE the 403 of step-up. */
void svc_www_authenticate(enum token_verdict v, const char *resource, const char *scope, char *out,
                          size_t outlen);

/* What a worker introspects with: its keyring, cache and counters, the shared view. */
struct introspector svc_introspector(const struct service_ctx *ctx);

/* RegisterClient and RevokeClient (service_clients.c). */
void svc_register_client(struct service_ctx *ctx, const uint8_t *msg, size_t len,
                         struct service_call *call);
void svc_revoke_client(struct service_ctx *ctx, const uint8_t *msg, size_t len,
                       struct service_call *call);

/* envoy.service.auth.v3.Authorization/Check (ext_authz.c). */
void ext_authz_check(struct service_ctx *ctx, const uint8_t *msg, size_t len,
                     struct service_call *call);

#endif
