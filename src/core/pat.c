/* pat.c -- see pat.h. */
#include "pat.h"

#include <string.h>

#include "config.h"
#include "scope.h"
#include "validate.h"

const char *pat_request_check(const struct p2a_config *cfg, const struct pat_request *rq)
{
    const char *why = validate_user_id(rq->user_id);
    if (why == NULL)
        why = validate_name(rq->name);
    if (why == NULL && rq->scope != NULL && rq->scope[0] != '\0')
        why = scope_check(rq->scope);
    if (why == NULL && rq->expires_in_s < 0)
        why = "expires_in_seconds must not be negative";
    if (why == NULL && rq->expires_in_s > cfg->max_token_lifetime_s)
        why = "expires_in_seconds is over the maximum lifetime (365 days unless configured "
              "lower)";
    return why;
}

p2a_err pat_sign(const struct keyring *keys, const struct p2a_config *cfg,
                 const struct pat_request *rq, int64_t now, struct pat_signed *out)
{
    memset(out, 0, sizeof(*out));
    out->created_at = now;
    out->expires_at = now + (rq->expires_in_s ? rq->expires_in_s : cfg->max_token_lifetime_s);
    out->scope = rq->scope != NULL && rq->scope[0] != '\0' ? rq->scope : cfg->resource_scopes;
    struct token_issue in = {.kind = TOKEN_KIND_PAT,
                             .issuer = cfg->issuer,
                             .sub = rq->user_id,
                             .aud = (const char *const *)cfg->resources,
                             .naud = cfg->nresources,
                             .scope = out->scope,
                             .name = rq->name,
                             .iat = now,
                             .exp = out->expires_at};
    return token_sign(keys, &in, &out->token, out->jti);
}
