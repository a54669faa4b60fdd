/* pat.h -- the rules of issuing a personal access token, whoever asks (the IssueToken RPC of
 * a dashboard, the account pages of the facade): what a request may hold, and the token it
 * gives. Storing the record is the store's (store_pat_create); answering, each adapter's.
 */
#ifndef P2A_PAT_H
#define P2A_PAT_H

#include <stdint.h>

#include "err.h"
#include "token.h"

struct p2a_config;
struct keyring;

struct pat_request {
    const char *user_id;
    const char *name;
    const char *scope;    /* "" or NULL: PIPE2_AUTH_RESOURCE_SCOPES */
    int64_t expires_in_s; /* 0: the maximum lifetime */
};

struct pat_signed {
    char *token; /* the JWT, shown once (the caller cleanses and frees it) */
    char jti[TOKEN_JTI_LEN + 1];
    const char *scope; /* the request's, or the configured default's */
    int64_t created_at, expires_at;
};

/* NULL when rq may be issued under cfg; else why, naming the field. */
const char *pat_request_check(const struct p2a_config *cfg, const struct pat_request *rq);
/* Signs the PAT of a checked request at now (Unix seconds). */
p2a_err pat_sign(const struct keyring *keys, const struct p2a_config *cfg,
                 const struct pat_request *rq, int64_t now, struct pat_signed *out);

#endif
