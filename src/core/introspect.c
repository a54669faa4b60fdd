/* introspect.c -- see introspect.h. */
#include "introspect.h"

#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "clock.h"
#include "config.h"
#include "exchange.h"
#include "jsonw.h"
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
            tcache_key(x->cache, token, len, key);
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
    /* an exchanged token falls with any token of its chain and with its person's tokens
     * from the first of the chain on (exchange.h) */
    if (v == TV_ACTIVE && (revoke_contains(x->revoked, c->jti) ||
                           revoke_subject_covers(x->revoked, c->sub_marker, c->origin_iat) ||
                           (c->client_marker[0] != '\0' &&
                            revoke_subject_covers(x->revoked, c->client_marker, c->iat)) ||
                           exchange_chain_revoked(x->revoked, c)))
        v = TV_REVOKED;
    if (v == TV_ACTIVE)
        v = token_check(c, now, x->cfg->clock_skew_s, q->expected, q->resource);
    if (v == TV_ACTIVE && !for_caller(c, q))
        v = TV_WRONG_AUDIENCE;
    if (v == TV_ACTIVE && q->required_scope != NULL && !scope_covers(c->scope, q->required_scope))
        v = TV_INSUFFICIENT_SCOPE;
    if (x->mx != NULL)
        metrics_add(&x->mx->introspections[v], 1);
    if (x->refused != NULL && c != NULL && (v == TV_REVOKED || v == TV_EXPIRED))
        audit_refusal_note(x->refused, c->jti, c->sub, c->client_id, v == TV_REVOKED);
    out->verdict = v;
    out->claims = v == TV_ACTIVE || v == TV_INSUFFICIENT_SCOPE ? c : NULL;
    return P2A_OK;
}

void introspection_deinit(struct introspection *r)
{
    token_claims_deinit(&r->owned);
    r->claims = NULL;
}

const char *introspect_kind_name(enum token_kind k)
{
    return k == TOKEN_KIND_PAT ? "pat" : k == TOKEN_KIND_CLIENT ? "client" : "oauth";
}

void introspect_identity(const struct token_claims *c, char exp[24],
                         struct id_header out[INTROSPECT_ID_HEADERS])
{
    snprintf(exp, 24, "%lld", (long long)c->exp);
    out[0] = (struct id_header){"x-auth-subject", c->sub};
    out[1] = (struct id_header){"x-auth-client-id", c->client_id};
    out[2] = (struct id_header){"x-auth-scope", c->scope};
    out[3] = (struct id_header){"x-auth-token-kind", introspect_kind_name(c->kind)};
    out[4] = (struct id_header){"x-auth-token-id", c->jti};
    out[5] = (struct id_header){"x-auth-expires", exp};
    out[6] = (struct id_header){"x-auth-actor", c->actor};
}

int introspect_denial_status(enum token_verdict v, bool served)
{
    return !served || v == TV_INSUFFICIENT_SCOPE ? 403 : 401;
}

long introspect_denial_json(enum token_verdict v, bool served, char *out, size_t cap)
{
    struct jsonw w;
    jsonw_begin(&w, out, cap);
    jsonw_str(&w, "error",
              !served                      ? "unknown_resource"
              : v == TV_INSUFFICIENT_SCOPE ? "insufficient_scope"
                                           : "invalid_token");
    jsonw_str(&w, "error_description",
              served ? token_verdict_text(v) : "no MCP server is served at this address");
    jsonw_str(&w, "hint", served ? token_verdict_hint(v) : "");
    return jsonw_end(&w);
}

static long rfc7662_json(const struct token_claims *c, const char *issuer, char *out, size_t cap)
{
    struct jsonw w;
    jsonw_begin(&w, out, cap);
    jsonw_bool(&w, "active", true);
    jsonw_str(&w, "token_type", "Bearer");
    jsonw_str(&w, "sub", c->sub);
    jsonw_str(&w, "iss", issuer);
    jsonw_int(&w, "exp", c->exp);
    jsonw_int(&w, "iat", c->iat);
    jsonw_str(&w, "jti", c->jti);
    jsonw_array(&w, "aud");
    const char *a = c->aud;
    for (size_t i = 0; i < c->naud; i++, a = token_next_aud(a))
        jsonw_item(&w, a);
    jsonw_array_end(&w);
    jsonw_str(&w, "scope", c->scope);
    jsonw_str(&w, "token_use",
              c->kind == TOKEN_KIND_PAT      ? "pat"
              : c->kind == TOKEN_KIND_CLIENT ? "client"
                                             : "access");
    if (c->client_id[0] != '\0')
        jsonw_str(&w, "client_id", c->client_id);
    if (c->name[0] != '\0')
        jsonw_str(&w, "pat_name", c->name);
    const char *act = c->actor; /* RFC 8693 4.1: the current actor outermost */
    for (size_t i = 0; i < c->nchain; i++, act = token_next_aud(act)) {
        jsonw_object(&w, "act");
        jsonw_str(&w, "sub", act);
    }
    for (size_t i = 0; i < c->nchain; i++)
        jsonw_object_end(&w);
    return jsonw_end(&w);
}

p2a_err introspect_rfc7662(const struct introspector *x, const struct introspect_query *q,
                           const char *client_id, int64_t now, char *out, size_t cap)
{
    struct introspection in;
    p2a_err e = introspect(x, q, now, &in);
    const struct token_claims *c = e == P2A_OK && in.verdict == TV_ACTIVE ? in.claims : NULL;
    if (c != NULL && client_id != NULL && strcmp(c->client_id, client_id) != 0)
        c = NULL;
    if (c == NULL || rfc7662_json(c, x->cfg->issuer, out, cap) < 0)
        snprintf(out, cap, "%s", INTROSPECT_INACTIVE_JSON);
    introspection_deinit(&in);
    return e;
}
