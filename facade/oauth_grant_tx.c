/* oauth_grant_tx.c -- /token with grant_type token-exchange (RFC 8693): an MCP server
 * exchanges a person's token for one of its own, for another resource (see core/exchange.h
 * for the rules and how revocation follows the chain).
 *
 * Reached once the client is authenticated as a confidential client that registered the
 * grant (oauth_token.c's table). A client's exchanges are counted per address and in all
 * (PIPE2_AUTH_TOKEN_EXCHANGE_RATE_LIMIT, _CLIENT_RATE_LIMIT, per 5 minutes: two Redis
 * counters); the rest is decided from memory: the subject token goes through the one
 * introspection flow (the revocation view, its signature, expiry, its person), the exchange
 * through exchange_decide(), and nothing else is written to Redis: the new token carries the
 * chain that revokes it. Runs on the facade's thread.
 *
 * Taken: subject_token with subject_token_type access_token; one resource or audience (the
 * new token's audience, a resource the client registered); scope (within the subject
 * token's); requested_token_type access_token, or none. Refused: actor_token (the
 * authenticated client is the actor, and no other token may name one), any other token type.
 * Answered: access_token, issued_token_type, token_type Bearer, expires_in, scope; never a
 * refresh token.
 */
#include "oauth_internal.h"

#include "exchange.h"

#define OAUTH_EXCHANGE_WINDOW_S 300

/* The client's registered resources (borrowed from its record), at most TOKEN_MAX_AUD. */
static size_t client_resources(json_t *client, const char *out[TOKEN_MAX_AUD])
{
    size_t i, n = 0;
    json_t *e;
    json_array_foreach(json_object_get(client, "resources"), i, e)
    {
        if (json_is_string(e) && n < TOKEN_MAX_AUD)
            out[n++] = json_string_value(e);
    }
    return n;
}

/* The request's shape; NULL when it will do, else why not (invalid_request). *audience: the
 * one resource or audience asked for. */
static const char *read_request(struct oreq *r, const char **audience)
{
    const struct oauth_form *f = &r->form;
    const char *stt = oauth_form_get(f, "subject_token_type");
    const char *rtt = oauth_form_get(f, "requested_token_type");
    const char *res = oauth_form_get(f, "resource"), *aud = oauth_form_get(f, "audience");
    if (oauth_form_get(f, "actor_token") != NULL || oauth_form_get(f, "actor_token_type") != NULL)
        return "actor_token is not supported: the authenticated client is the actor";
    if (oauth_form_get(f, "subject_token") == NULL || stt == NULL)
        return "subject_token and subject_token_type are required";
    if (strcmp(stt, EXCHANGE_ACCESS_TOKEN_TYPE) != 0)
        return "subject_token_type must be " EXCHANGE_ACCESS_TOKEN_TYPE;
    if (rtt != NULL && strcmp(rtt, EXCHANGE_ACCESS_TOKEN_TYPE) != 0)
        return "requested_token_type must be " EXCHANGE_ACCESS_TOKEN_TYPE;
    if ((res == NULL) == (aud == NULL))
        return "name the new token's audience: one resource (or audience), not both";
    *audience = res != NULL ? res : aud;
    if (strchr(*audience, ' ') != NULL) /* a repeated resource (oauth_form_parse) */
        return "name one resource: a token exchanged is for one audience";
    return NULL;
}

static void answer(struct oreq *r, const char *token, int64_t now, int64_t exp, const char *scope)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:s}", "access_token", token, "issued_token_type",
                          EXCHANGE_ACCESS_TOKEN_TYPE, "token_type", "Bearer", "expires_in",
                          (json_int_t)(exp - now), "scope", scope);
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (s == NULL) {
        oreq_error(r, 500, "server_error", "could not encode the token");
        return;
    }
    oreq_json(r, 200, s);
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

bool oauth_grant_token_exchange_enabled(const struct p2a_config *cfg)
{
    (void)cfg; /* always served: only a client an administrator registered for it may use it */
    return true;
}

/* The exchange itself, once the client is within its limits. */
static void on_tx_rate(void *arg, p2a_err err, int64_t over, int64_t retry_after)
{
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL || !oreq_within_limits(r, over, retry_after, "token exchanges for this client",
                                         "this address"))
        return;
    const struct p2a_config *cfg = r->o->cfg;
    const char *audience = NULL, *why = NULL;
    (void)read_request(r, &audience); /* checked before the limits */
    const char *st = oauth_form_get(&r->form, "subject_token");
    const struct keyring *keys = r->o->h.keys(r->o->h.arg);
    struct introspector x = {.cfg = cfg, .keys = keys, .revoked = r->o->h.revoked};
    struct introspect_query q = {.token = st, .len = strlen(st)};
    struct introspection in;
    int64_t now = clock_now();
    if (introspect(&x, &q, now, &in) != P2A_OK) {
        introspection_deinit(&in);
        oreq_error(r, 503, "temporarily_unavailable",
                   "revocation list is not in sync with Redis; try again shortly");
        return;
    }
    if (in.verdict != TV_ACTIVE) {
        char desc[96];
        snprintf(desc, sizeof(desc), "subject_token: %s", token_verdict_text(in.verdict));
        introspection_deinit(&in);
        oreq_error(r, 400, "invalid_grant", desc);
        return;
    }
    const char *resources[TOKEN_MAX_AUD];
    struct exchange_client cl = {.client_id = r->client_id, .resources = resources};
    cl.nresources = client_resources(r->client, resources);
    struct exchange_result res;
    const char *error = exchange_decide(in.claims, &cl, audience, oauth_form_get(&r->form, "scope"),
                                        now, cfg->access_token_lifetime_s, &res, &why);
    if (error != NULL) {
        introspection_deinit(&in);
        oreq_error(r, 400, error, why);
        return;
    }
    const char *aud[1];
    struct token_issue ti;
    exchange_issue(&res, in.claims, cfg->issuer, r->client_id, now, aud, &ti);
    char *token = NULL, jti[TOKEN_JTI_LEN + 1];
    if (token_sign(keys, &ti, &token, jti) != P2A_OK) {
        introspection_deinit(&in);
        oreq_error(r, 500, "server_error", "could not sign the token");
        return;
    }
    log_info("oauth.token_exchanged",
             "client %s exchanged token jti=%s of %s for %s: jti=%s, chain of %zu", r->client_id,
             in.claims->jti, in.claims->sub, res.aud, jti, res.nchain);
    answer(r, token, now, res.exp, res.scope);
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    introspection_deinit(&in);
}

void oauth_grant_token_exchange(struct oreq *r)
{
    const struct p2a_config *cfg = r->o->cfg;
    const char *audience = NULL;
    const char *why = read_request(r, &audience);
    if (why != NULL) {
        oreq_error(r, 400, "invalid_request", why);
        return;
    }
    /* no person is needed to exchange again and again (and to revoke each token, growing
     * every replica's revocation set): a client's exchanges are bounded as its client
     * credentials tokens are */
    if (!oauth_budget_allows(r->o, 2 * OAUTH_COUNTERS_BYTES)) {
        oauth_budget_refuse(r, false);
        return;
    }
    char what[16 + OAUTH_MAX_CLIENT_ID];
    snprintf(what, sizeof(what), "tx:%s", r->client_id);
    oauth_store_limit_hit(r->o->h.store, what, r->limit, cfg->tx_rate_limit,
                          cfg->tx_client_rate_limit, OAUTH_EXCHANGE_WINDOW_S, on_tx_rate, r);
}
