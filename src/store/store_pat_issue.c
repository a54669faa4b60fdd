/* store_pat_issue.c -- issuing a PAT: check, sign, write (see store_pat_issue.h). */
#include "store_pat_issue.h"

p2a_err store_pat_issue(struct store *st, const struct keyring *keys, const struct p2a_config *cfg,
                        const struct pat_request *rq, int64_t now_ms, int max_active, int per_hour,
                        struct pat_signed *out, const char **why, store_status_cb cb, void *arg)
{
    *why = pat_request_check(cfg, rq);
    if (*why != NULL)
        return P2A_ERR_INVALID;
    if (pat_sign(keys, cfg, rq, now_ms / 1000, out) != P2A_OK) {
        *why = "could not sign the token";
        return P2A_ERR_INTERNAL;
    }
    struct pat_record rec = {.jti = out->jti,
                             .user_id = rq->user_id,
                             .name = rq->name,
                             .scope = out->scope,
                             .created_at = out->created_at,
                             .expires_at = out->expires_at,
                             .created_ms = now_ms};
    /* the limits are checked by the script that writes the record */
    store_pat_create_capped(st, &rec, max_active, per_hour, cb, arg);
    return P2A_OK;
}
