/* oauth_audit.c -- the facade's audit events (audit.h): oreq_audit() adds what every one of
 * them names, the client's address and user agent, to what the site says happened. */
#include "oauth_internal.h"

void oreq_audit(const struct oreq *r, struct audit_in in)
{
    if (in.address == NULL)
        in.address = r->addr;
    if (in.user_agent == NULL && r->http != NULL)
        in.user_agent = oh_req_header(r->http, "User-Agent");
    audit_emit(&in);
}
