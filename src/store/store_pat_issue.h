/* store_pat_issue.h -- the one path of issuing a personal access token, whoever asks (the
 * IssueToken RPC of a dashboard, the account page of the facade): the request checked and
 * the token signed by the rules of core/pat.h, then its record written within the caller's
 * limits (store_pat_create_capped). Answering is each adapter's. */
#ifndef P2A_STORE_PAT_ISSUE_H
#define P2A_STORE_PAT_ISSUE_H

#include <stdint.h>

#include "err.h"
#include "pat.h"
#include "store.h"

struct keyring;
struct p2a_config;

/* Issues rq at now_ms (Unix milliseconds), at most max_active of the user's PATs live and
 * per_hour made in an hour (0: no limit). P2A_OK: the record is being written, cb answers
 * as store_pat_create_capped() says, and out holds the token (shown once: the caller
 * cleanses and frees out->token), its jti, scope and times. Else nothing was written and cb
 * is not called: P2A_ERR_INVALID with *why naming the field, or P2A_ERR_INTERNAL when the
 * token could not be signed. */
p2a_err store_pat_issue(struct store *st, const struct keyring *keys, const struct p2a_config *cfg,
                        const struct pat_request *rq, int64_t now_ms, int max_active, int per_hour,
                        struct pat_signed *out, const char **why, store_status_cb cb, void *arg);

#endif
