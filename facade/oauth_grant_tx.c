/* oauth_grant_tx.c -- token exchange (RFC 8693). Not served yet: off, so /token answers
 * unsupported_grant_type and the metadata does not list it. */
#include "oauth_internal.h"

bool oauth_grant_token_exchange_enabled(const struct p2a_config *cfg)
{
    (void)cfg;
    return false;
}

void oauth_grant_token_exchange(struct oreq *r)
{
    oreq_error(r, 400, "unsupported_grant_type", "this server does not exchange tokens");
}
