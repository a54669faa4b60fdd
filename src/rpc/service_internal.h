/* service_internal.h -- what the files of the service methods share: the answering helpers
 * (service.c) and every handler the method table names, one file per subject:
 * service_introspect.c (Introspect, Health), service_pats.c (IssueToken, RevokeToken,
 * ListTokens), service_users.c (CreateUser, PutUser, GetUser, SetUserDisabled),
 * service_clients.c (RegisterClient, RevokeClient), service_grants.c (ListGrants,
 * RevokeGrant), ext_authz.c (Envoy's Check).
 * Not for other modules.
 *
 * Adding an RPC: one row in service.c's METHODS, and its handler declared here. The table
 * decodes the request (from a stack arena) and frees it once the handler returns; a handler
 * gets the typed message, may change it (to cleanse a secret), and copies whatever outlives
 * it. */
#ifndef P2A_SERVICE_INTERNAL_H
#define P2A_SERVICE_INTERNAL_H

#include <protobuf-c/protobuf-c.h>

#include "audit.h"
#include "grpc/health/v1/health.pb-c.h"
#include "introspect.h"
#include "pipe2/auth/v1/token_service.pb-c.h"
#include "rpc_status.h"
#include "scope.h"
#include "service.h"
#include "token.h"

#define RESOURCE_MAX 2048
#define WWW_AUTH_MAX (RESOURCE_MAX * 2 + 2 * SCOPE_MAX_LEN + 400)
#define SVC_DENIAL_MAX 512 /* introspect_denial_json()'s body */

/* A message of n bytes written by hand: svc_msg_begin() gives the slab buffer, framed, its
 * message to be written from buf + RPC_FRAME_PREFIX; svc_msg_finish() answers with it. */
uint8_t *svc_msg_begin(size_t n);
void svc_msg_finish(struct service_call *call, uint8_t *buf, size_t n);
/* Answers call with m (packed into a slab buffer), or with an error status and message. */
void svc_finish_msg(struct service_call *call, const ProtobufCMessage *m);
void svc_finish_err(struct service_call *call, enum rpc_code code, const char *msg);
/* The WWW-Authenticate value for a token that is not good for resource (RFC 6750 3, RFC
 * 9728 5.1): a 401 challenge, or for TV_INSUFFICIENT_SCOPE the 403 of step-up. */
void svc_www_authenticate(enum token_verdict v, const char *resource, const char *scope, char *out,
                          size_t outlen);

/* What a worker introspects with: its keyring, cache and counters, the shared view. */
struct introspector svc_introspector(const struct service_ctx *ctx);

/* A user id nobody made: how users come to exist (issue 14: one subject per person). */
#define SVC_NO_SUCH_USER                                                                           \
    "no such user: a user exists once they sign in, once CreateUser makes their account, or "      \
    "once a dashboard registers its own user id with PutUser"
/* Whether user_id may name a user; false after answering INVALID_ARGUMENT. */
bool svc_user_id_ok(struct service_call *call, const char *user_id);

/* ---- the handlers (the table in service.c names each) ------------------------------------ */

/* service_introspect.c */
void svc_introspect(struct service_ctx *ctx, Pipe2__Auth__V1__IntrospectRequest *req,
                    struct service_call *call);
void svc_health(struct service_ctx *ctx, Grpc__Health__V1__HealthCheckRequest *req,
                struct service_call *call);
/* service_pats.c */
void svc_issue_token(struct service_ctx *ctx, Pipe2__Auth__V1__IssueTokenRequest *req,
                     struct service_call *call);
void svc_revoke_token(struct service_ctx *ctx, Pipe2__Auth__V1__RevokeTokenRequest *req,
                      struct service_call *call);
void svc_list_tokens(struct service_ctx *ctx, Pipe2__Auth__V1__ListTokensRequest *req,
                     struct service_call *call);
/* service_users.c */
void svc_create_user(struct service_ctx *ctx, Pipe2__Auth__V1__CreateUserRequest *req,
                     struct service_call *call);
void svc_put_user(struct service_ctx *ctx, Pipe2__Auth__V1__PutUserRequest *req,
                  struct service_call *call);
void svc_get_user(struct service_ctx *ctx, Pipe2__Auth__V1__GetUserRequest *req,
                  struct service_call *call);
void svc_set_user_disabled(struct service_ctx *ctx, Pipe2__Auth__V1__SetUserDisabledRequest *req,
                           struct service_call *call);
/* service_clients.c */
void svc_register_client(struct service_ctx *ctx, Pipe2__Auth__V1__RegisterClientRequest *req,
                         struct service_call *call);
void svc_revoke_client(struct service_ctx *ctx, Pipe2__Auth__V1__RevokeClientRequest *req,
                       struct service_call *call);
/* service_grants.c */
void svc_list_grants(struct service_ctx *ctx, Pipe2__Auth__V1__ListGrantsRequest *req,
                     struct service_call *call);
void svc_revoke_grant(struct service_ctx *ctx, Pipe2__Auth__V1__RevokeGrantRequest *req,
                      struct service_call *call);
/* service_audit.c */
void svc_list_audit_events(struct service_ctx *ctx, Pipe2__Auth__V1__ListAuditEventsRequest *req,
                           struct service_call *call);
/* An audit event of the call, its actor the caller's service key (before answering: the
 * answer frees the call). */
void svc_audit(const struct service_call *call, struct audit_in in);
/* ext_authz.c: envoy.service.auth.v3.Authorization/Check reads its bytes in place */
void ext_authz_check(struct service_ctx *ctx, const uint8_t *msg, size_t len,
                     struct service_call *call);

#endif
