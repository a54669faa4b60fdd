/* oauth_grant_jag.c -- the jwt-bearer grant with an Identity Assertion JWT Authorization
 * Grant (ID-JAG, Enterprise-Managed Authorization). Not served yet: off, so /token answers
 * unsupported_grant_type and the metadata does not list it. */
#include "oauth_internal.h"

bool oauth_grant_jwt_bearer_enabled(const struct p2a_config *cfg)
{
    (void)cfg;
    return false;
}

void oauth_grant_jwt_bearer(struct oreq *r)
{
    oreq_error(r, 400, "unsupported_grant_type", "this server does not redeem ID-JAGs");
}
