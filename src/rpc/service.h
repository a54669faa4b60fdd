/* service.h -- the RPC methods over protobuf messages: the one table of them, and how the
 * transport calls one.
 *
 * The transport (rpc_conn.c) decodes the gRPC framing, finds the method with
 * service_method_find(), checks the caller's role, and runs it with service_call_method(),
 * which decodes the message and calls its handler. The handler answers exactly once through
 * call->complete, either before it returns (Introspect, Health, Check) or later, from the
 * worker's loop, when Redis has answered (the admin methods). Generated protobuf-c types stay
 * in the service files (service_internal.h).
 */
#ifndef P2A_SERVICE_H
#define P2A_SERVICE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "svckeys.h"

struct p2a_config;
struct keyring;
struct revoke_set;
struct tcache;
struct store;
struct lastused;
struct lastused_inbox;
struct metrics;
struct audit_refusals;

/* What every worker shares: immutable after start, or safe across threads. */
struct service_shared {
    const struct p2a_config *cfg;
    const struct keyring *keys; /* the keyring at start; each worker then follows its own */
    const struct svckeys *svckeys;
    struct revoke_set *revoked;
    struct lastused_inbox *marks_inbox; /* where workers hand their marks to the flusher */
    atomic_bool draining;               /* shutting down: health says NOT_SERVING */
};

/* One worker's view: the shared part plus what only this worker touches. */
struct service_ctx {
    const struct service_shared *shared;
    const struct keyring *keys; /* this worker's current keyring (swapped on rotation) */
    struct tcache *cache;
    struct store *store;
    struct lastused *marks;         /* this worker's, unlocked; moved to the inbox each interval */
    struct metrics *mx;             /* this worker's counters; it is their only writer */
    struct audit_refusals *refused; /* tokens refused as expired or revoked, this interval */
};

/* One call in flight. The transport embeds it first in its own call object and frees it
 * in complete(). body (the framed response, RPC_FRAME_PREFIX bytes and the message, from
 * slab_alloc()) is handed over to complete(), which frees it with slab_free(); NULL with a
 * non-OK status (Trailers-Only).
 * msg is a constant or lives until complete() returns. caller is the service key's entry
 * (NULL for a method that needs none). */
struct service_call {
    void (*complete)(struct service_call *call, int status, const char *msg, uint8_t *body,
                     size_t len);
    const struct svc_key *caller;
    int64_t now; /* Unix seconds when the call came (the transport's clock of that loop turn) */
};

struct ProtobufCMessageDescriptor;

/* One row of the method table (service.c); the transport reads path to role. */
struct service_method {
    const char *path;    /* ":path", e.g. "/pipe2.auth.v1.TokenService/Introspect" */
    const char *name;    /* its label in metrics and logs */
    enum svc_role role;  /* least role that may call it; SVC_ROLE_NONE: no key needed */
    bool answers_inline; /* always completes before the handler returns */
    /* how service_call_method() runs it: the request decoded with desc, given to run; or,
     * desc NULL, the message bytes given to raw */
    const struct ProtobufCMessageDescriptor *desc;
    void (*run)(struct service_ctx *ctx, void *req, struct service_call *call);
    void (*raw)(struct service_ctx *ctx, const uint8_t *msg, size_t len, struct service_call *call);
};

/* Runs m on the message of len bytes: decodes it (answering INVALID_ARGUMENT "malformed
 * <message>" when it is not one), calls its handler and frees the message. */
void service_call_method(struct service_ctx *ctx, const struct service_method *m,
                         const uint8_t *msg, size_t len, struct service_call *call);

/* The method for this :path, or NULL (UNIMPLEMENTED). */
const struct service_method *service_method_find(const char *path, size_t len);

/* m's index for metrics (0 .. METRICS_METHODS - 2); NULL (an unknown path) gets the last. */
int service_method_index(const struct service_method *m);
/* The label of index ("unknown" for the last). */
const char *service_method_name(int index);

/* An audit event whose actor is the service key that called (service_audit.c). */
struct audit_in;
void service_audit(const struct svc_key *caller, struct audit_in in);

/* Is a caller with this role allowed to call m? */
bool service_role_allows(enum svc_role have, const struct service_method *m);

#endif
