/* exchange.c -- see exchange.h. */
#include "exchange.h"

#include <stdio.h>
#include <string.h>

#include "revoke.h"

const char *exchange_decide(const struct token_claims *subject, const struct exchange_client *cl,
                            const char *audience, const char *scope, int64_t now,
                            int64_t lifetime_s, struct exchange_result *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    if (cl->nresources == 0) {
        *why = "this client registered no resources: it serves none and may get none";
        return "unauthorized_client";
    }
    if (subject->kind != TOKEN_KIND_PAT && subject->kind != TOKEN_KIND_OAUTH) {
        *why = "subject_token must be a person's token (a PAT or an OAuth access token)";
        return "invalid_grant";
    }
    if (!token_has_aud(subject, cl->resources[0])) {
        *why = "subject_token is not for the resource this client serves (its first "
               "registered resource)";
        return "invalid_grant";
    }
    if (subject->nchain >= TOKEN_MAX_CHAIN) {
        *why = "subject_token comes from as many exchanges as a chain may have (4)";
        return "invalid_grant";
    }
    for (size_t i = 0; i < cl->nresources && out->aud == NULL; i++)
        if (token_resource_eq(cl->resources[i], audience))
            out->aud = cl->resources[i];
    if (out->aud == NULL) {
        *why = "the resource (audience) asked for is not one this client may exchange for";
        return "invalid_target";
    }
    if (scope == NULL || scope[0] == '\0') {
        snprintf(out->scope, sizeof(out->scope), "%s", subject->scope);
    } else if (scope_check(scope) != NULL) {
        *why = "scope is malformed";
        return "invalid_scope";
    } else if (!scope_covers(subject->scope, scope)) {
        *why = "scope may only narrow the subject token's";
        return "invalid_scope";
    } else {
        snprintf(out->scope, sizeof(out->scope), "%s", scope);
    }
    out->exp = now + lifetime_s < subject->exp ? now + lifetime_s : subject->exp;
    if (out->exp <= now) {
        *why = "subject_token expired";
        return "invalid_grant";
    }
    out->actors[0] = cl->client_id;
    out->chain[0] = subject->jti;
    const char *a = subject->actor, *j = token_chain(subject);
    for (size_t i = 0; i < subject->nchain; i++, a = token_next_aud(a), j = token_next_aud(j)) {
        out->actors[i + 1] = a;
        out->chain[i + 1] = j;
    }
    out->nchain = subject->nchain + 1;
    /* never after the new token's own iat (a subject token from a replica whose clock runs a
     * little ahead, within the skew); earlier only covers more of a person's revocation */
    out->origin_iat = subject->origin_iat < now ? subject->origin_iat : now;
    return NULL;
}

void exchange_issue(const struct exchange_result *r, const struct token_claims *subject,
                    const char *issuer, const char *client_id, int64_t now, const char *aud[1],
                    struct token_issue *out)
{
    aud[0] = r->aud;
    *out = (struct token_issue){.kind = TOKEN_KIND_OAUTH,
                                .issuer = issuer,
                                .sub = subject->sub,
                                .aud = aud,
                                .naud = 1,
                                .scope = r->scope,
                                .client_id = client_id,
                                .iat = now,
                                .exp = r->exp,
                                .actors = r->actors,
                                .chain = r->chain,
                                .nchain = r->nchain,
                                .origin_iat = r->origin_iat};
}

bool exchange_chain_revoked(struct revoke_set *set, const struct token_claims *c)
{
    const char *j = token_chain(c);
    for (size_t i = 0; i < c->nchain; i++, j = token_next_aud(j))
        if (revoke_contains(set, j))
            return true;
    const char *m = j; /* the earlier actors' markers follow the chain (token.h) */
    /* a token of the chain issued to a client since revoked (RevokeClient): no such token was
     * issued after the client's cutoff, so the first token's iat stands for them all */
    for (size_t i = 1; i < c->nchain; i++, m = token_next_aud(m))
        if (revoke_subject_covers(set, m, c->origin_iat))
            return true;
    return false;
}
