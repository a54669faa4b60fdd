/* introspect.c -- see introspect.h. */
#include "introspect.h"

#include <string.h>

#include "clock.h"
#include "config.h"
#include "digest.h"
#include "metrics.h"
#include "scope.h"
#include "tcache.h"

/* Whether the token is for one of the caller's resources (any, for an unbound caller). */
static bool for_caller(const struct token_claims *c, const struct introspect_query *q)
{
    if (q->nbound == 0)
        return true;
    const char *a = c->aud;
    for (size_t i = 0; i < c->naud; i++, a = token_next_aud(a))
        if (token_resource_in(q->bound, q->nbound, a))
            return true;
    return false;
}

p2a_err introspect(const struct introspector *x, const struct introspect_query *q, int64_t now,
                   struct introspection *out)
{
    const char *token = q->token;
    size_t len = q->len;
    memset(out, 0, sizeof(*out));
    out->view = revoke_usable(x->revoked, clock_mono_ms(), &out->view_age_ms);
    if (out->view != REVOKE_USABLE)
        return P2A_ERR_UNAVAILABLE;
    const struct token_claims *c = NULL;
    enum token_verdict v;
    if (len == 0) {
        v = TV_MISSING;
    } else if (len > TOKEN_MAX_LEN) {
        v = TV_MALFORMED;
    } else {
        unsigned char key[TCACHE_KEY_LEN];
        if (x->cache != NULL) {
            digest_sha256(token, len, key);
            c = tcache_get(x->cache, key, now);
            if (x->mx != NULL)
                metrics_add(c != NULL ? &x->mx->cache_hits : &x->mx->cache_misses, 1);
        }
        v = TV_ACTIVE;
        if (c == NULL) {
            v = token_decode(x->keys, x->cfg->issuer, token, len, &out->owned);
            if (v == TV_ACTIVE) {
                if (x->cache != NULL)
                    tcache_put(x->cache, key, &out->owned);
                c = &out->owned;
            }
        }
    }
    if (v == TV_ACTIVE && revoke_contains(x->revoked, c->jti))
        v = TV_REVOKED;
    if (v == TV_ACTIVE)
        v = token_check(c, now, x->cfg->clock_skew_s, q->expected, q->resource);
    if (v == TV_ACTIVE && !for_caller(c, q))
        v = TV_WRONG_AUDIENCE;
    if (v == TV_ACTIVE && q->required_scope != NULL && !scope_covers(c->scope, q->required_scope))
        v = TV_INSUFFICIENT_SCOPE;
    if (x->mx != NULL)
        metrics_add(&x->mx->introspections[v], 1);
    out->verdict = v;
    out->claims = v == TV_ACTIVE || v == TV_INSUFFICIENT_SCOPE ? c : NULL;
    return P2A_OK;
}

void introspection_deinit(struct introspection *r)
{
    token_claims_deinit(&r->owned);
    r->claims = NULL;
}
