/* oauth_grant_cc.c -- the client credentials grant (RFC 6749 4.4). */
#include "oauth_internal.h"

void oauth_grant_client_credentials(struct oreq *r)
{
    oreq_error(r, 400, "unsupported_grant_type", "client_credentials is not served yet");
}
