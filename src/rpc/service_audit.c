/* service_audit.c -- ListAuditEvents: the audit trail for dashboards and security teams
 * (store_audit.h holds the events; the filters and the page token are checked there). */
#include "service_internal.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "pipe2/auth/v1/token_service.pb-c.h"
#include "store.h"
#include "store_audit.h"
#include "xalloc.h"

static char *field(const char *s)
{
    return (char *)s; /* protobuf-c's strings are not const; packing only reads them */
}

static void on_audit_listed(void *arg, p2a_err err, const struct audit_event *evs, size_t n,
                            const char *next)
{
    struct service_call *call = arg;
    if (err != P2A_OK) {
        svc_finish_err(call, RPC_UNAVAILABLE, "audit store unavailable; try again");
        return;
    }
    Pipe2__Auth__V1__AuditEvent *out = xcalloc(n ? n : 1, sizeof(*out));
    Pipe2__Auth__V1__AuditEvent **ptrs =
        xcalloc(n ? n : 1, sizeof(*ptrs)); // NOLINT(bugprone-sizeof-expression): pointers
    for (size_t i = 0; i < n; i++) {
        const struct audit_event *e = &evs[i];
        Pipe2__Auth__V1__AuditEvent *o = &out[i];
        pipe2__auth__v1__audit_event__init(o);
        o->id = field(e->id);
        o->time_ms = e->time_us / 1000;
        o->type = field(e->type);
        o->actor = field(e->actor);
        o->user_id = field(e->user_id);
        o->client_id = field(e->client_id);
        o->token_id = field(e->token_id);
        o->address = field(e->address);
        o->user_agent = field(e->user_agent);
        o->outcome = field(e->outcome);
        o->detail = field(e->detail);
        ptrs[i] = o;
    }
    Pipe2__Auth__V1__ListAuditEventsResponse resp =
        PIPE2__AUTH__V1__LIST_AUDIT_EVENTS_RESPONSE__INIT;
    resp.n_events = n;
    resp.events = ptrs;
    resp.next_page_token = field(next);
    svc_finish_msg(call, &resp.base);
    free(ptrs);
    free(out);
}

void svc_list_audit_events(struct service_ctx *ctx, Pipe2__Auth__V1__ListAuditEventsRequest *req,
                           struct service_call *call)
{
    if (!ctx->shared->cfg->audit) {
        svc_finish_err(call, RPC_FAILED_PRECONDITION,
                       "the audit trail is off (PIPE2_AUTH_AUDIT=off)");
        return;
    }
    struct audit_query q = {.user_id = req->user_id,
                            .client_id = req->client_id,
                            .types = (const char *const *)req->types,
                            .ntypes = req->n_types,
                            .since_ms = req->since,
                            .until_ms = req->until,
                            .page_size = req->page_size,
                            .page_token = req->page_token};
    const char *why = audit_query_check(&q);
    if (why != NULL)
        svc_finish_err(call, RPC_INVALID_ARGUMENT, why);
    else
        store_audit_list(ctx->store, &q, on_audit_listed, call);
}

void service_audit(const struct svc_key *caller, struct audit_in in)
{
    char actor[AUDIT_ACTOR_LEN];
    if (caller != NULL) {
        snprintf(actor, sizeof(actor), "key:%s", caller->label[0] ? caller->label : "(unlabelled)");
        in.actor = actor;
    }
    audit_emit(&in);
}

void svc_audit(const struct service_call *call, struct audit_in in)
{
    service_audit(call->caller, in);
}
