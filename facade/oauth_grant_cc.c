/* oauth_grant_cc.c -- the client credentials grant (RFC 6749 4.4; the MCP extension
 * io.modelcontextprotocol/oauth-client-credentials, SEP-1046).
 *
 * An agent, a CI job or a back-end service asks for a token for itself: a confidential
 * client registered for the grant by an administrator (RegisterClient with grant_types
 * client_credentials and its resources), authenticated by oauth_client_auth like every
 * client at /token (client_secret_basic, client_secret_post or private_key_jwt). The token:
 * kind TOKEN_KIND_CLIENT, sub and client_id the client's id, aud the resources asked for
 * (RFC 8707; each one the client registered), scope within what it registered, no refresh
 * token (the client asks again). RevokeClient ends the client and every such token.
 *
 * Bounds: a client gets at most PIPE2_AUTH_CLIENT_CREDENTIALS_RATE_LIMIT tokens from one
 * address and PIPE2_AUTH_CLIENT_CREDENTIALS_CLIENT_RATE_LIMIT from all of them per window,
 * counted in Redis only once it has authenticated (a failed authentication costs a look-up
 * and a hash, or the assertion limits of oauth_client.c).
 *
 * Threading: the facade's loop.
 */
#include "oauth_internal.h"

#define CC_WINDOW_S 300

/* The audiences r asks for, canonical, space-separated, into out: each one the client
 * registered. The resource parameter may be absent when the client registered one only.
 * NULL, or why not (invalid_target). */
static const char *cc_resources(struct oreq *r, char *out, size_t outlen)
{
    const char *given = oauth_form_get(&r->form, "resource");
    json_t *mine = json_object_get(r->client, "resources");
    if (given == NULL) {
        if (json_array_size(mine) != 1)
            return "resource is required: name the server the token is for (RFC 8707)";
        snprintf(out, outlen, "%s", json_string_value(json_array_get(mine, 0)));
        return NULL;
    }
    if (!oauth_resources_canon(r->o->cfg, given, out, outlen))
        return "resource is not a server this issuer serves";
    const char *t;
    size_t n;
    for (const char *p = out; scope_next(&p, &t, &n);) {
        char one[OAUTH_MAX_URI + 1];
        snprintf(one, sizeof(one), "%.*s", (int)n, t);
        if (oauth_client_resource(r->client, one) == NULL)
            return "resource is not one this client was registered for";
    }
    return NULL;
}

/* The scope r asks for into r->tok.granted_scope: within what the client registered (or, when
 * it registered none, what the resources offer), that whole when none is asked. NULL, or
 * why not (invalid_scope). */
static const char *cc_scope(struct oreq *r)
{
    const char *asked = oauth_form_get(&r->form, "scope");
    const char *mine = json_string_value(json_object_get(r->client, "scope"));
    const char *allowed = mine != NULL ? mine : r->o->cfg->resource_scopes;
    if (asked != NULL && scope_check(asked) != NULL)
        return "scope is malformed";
    if (asked != NULL && asked[0] != '\0' && !scope_covers(allowed, asked))
        return "scope is beyond what this client was registered for";
    const char *s = asked != NULL && asked[0] != '\0' ? asked : allowed;
    if (strlen(s) >= sizeof(r->tok.granted_scope))
        return "scope is too long";
    snprintf(r->tok.granted_scope, sizeof(r->tok.granted_scope), "%s", s);
    return NULL;
}

static void on_cc_rate(void *arg, p2a_err err, int64_t over, int64_t retry_after)
{
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL ||
        !oreq_within_limits(r, over, retry_after, "tokens for this client", "this address"))
        return;
    if (!oauth_token_sign(r, TOKEN_KIND_CLIENT, r->client_id, r->tok.resources))
        return;
    log_info("oauth.client_token_issued", "issued a client_credentials token to client %s jti=%s",
             r->client_id, r->tok.jti);
    oauth_token_reply(r);
}

void oauth_grant_client_credentials(struct oreq *r)
{
    const char *why = cc_resources(r, r->tok.resources, sizeof(r->tok.resources));
    if (why != NULL) {
        oreq_error(r, 400, "invalid_target", why);
        return;
    }
    why = cc_scope(r);
    if (why != NULL) {
        oreq_error(r, 400, "invalid_scope", why);
        return;
    }
    const struct p2a_config *cfg = r->o->cfg;
    char what[16 + OAUTH_MAX_CLIENT_ID];
    snprintf(what, sizeof(what), "cc:%s", r->client_id); /* a registered id: 64 bytes at most */
    oauth_store_limit_hit(r->o->h.store, what, r->limit, cfg->cc_rate_limit,
                          cfg->cc_client_rate_limit, CC_WINDOW_S, on_cc_rate, r);
}
