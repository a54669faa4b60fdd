/* exchange.h -- token exchange (RFC 8693): what a client may get for a person's token, and
 * whether a token exchanged from others still stands.
 *
 * An MCP server that must call another server for the person it serves may not pass the
 * person's token on; it exchanges it at /token for a token of its own. The rules, once:
 *   - the exchanging client is a confidential client registered with the grant and with
 *     resources: the first is the resource it serves (the subject token must be for it: only
 *     a token's audience may exchange it), and every one of them is an audience it may get;
 *   - the subject token is one of ours (a PAT or an OAuth access token for a person), active;
 *   - the new token: the person's sub, the audience asked for, scopes within the subject
 *     token's, an expiry no later than its, client_id and act.sub the exchanging client,
 *     nesting the subject token's act (RFC 8693 4.1);
 *   - a chain is at most TOKEN_MAX_CHAIN exchanges long.
 *
 * Revocation follows the chain without a look at Redis: the new token carries the jtis of
 * the tokens it derives from (chain) and the first one's iat (chain_iat). Revoking a token
 * of the chain (RevokeToken, /revoke), its grant (which revokes the grant's access tokens by
 * jti), its user (the subject's entry, from the first token's iat on) or the client an
 * exchanged token of the chain was issued to (RevokeClient: act names it) reaches every
 * replica's revocation set as it always does, and exchange_chain_revoked() reads it there.
 * Not followed: RevokeClient of the client the first token was issued to (the person's MCP
 * client); that token stops, and those exchanged from it live until they expire, no later
 * than it would have.
 *
 * Pure functions of their inputs; any thread.
 */
#ifndef P2A_EXCHANGE_H
#define P2A_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scope.h"
#include "token.h"

struct revoke_set;

#define EXCHANGE_GRANT_TYPE "urn:ietf:params:oauth:grant-type:token-exchange"
/* the one token type taken and issued: an access token of ours */
#define EXCHANGE_ACCESS_TOKEN_TYPE "urn:ietf:params:oauth:token-type:access_token"

/* The exchanging client, as registered. */
struct exchange_client {
    const char *client_id;
    const char *const *resources; /* [0]: the resource it serves; all: what it may get */
    size_t nresources;
};

/* What the new token will be. Strings point into the subject's claims and the client. */
struct exchange_result {
    const char *aud; /* the client's registered spelling of the audience asked for */
    char scope[SCOPE_MAX_LEN + 1];
    int64_t exp;
    const char *actors[TOKEN_MAX_CHAIN]; /* the client, then the subject token's actors */
    const char *chain[TOKEN_MAX_CHAIN];  /* the subject token's jti, then its chain */
    size_t nchain;
    int64_t origin_iat;
};

/* Decides an exchange of subject (claims of a token introspection found active) by cl for
 * audience (the resource or audience asked for) and scope (NULL or "": the subject token's),
 * at now, the new token living at most lifetime_s. NULL when it may go ahead (out filled),
 * else the OAuth error code ("invalid_grant", "invalid_target", "invalid_scope",
 * "unauthorized_client") with *why a constant sentence for error_description. */
const char *exchange_decide(const struct token_claims *subject, const struct exchange_client *cl,
                            const char *audience, const char *scope, int64_t now,
                            int64_t lifetime_s, struct exchange_result *out, const char **why);

/* The token to sign for r (an OAuth access token of subject's sub, r's audience, scope,
 * expiry and chain, client_id the exchanging client). Pointers into r and subject. */
void exchange_issue(const struct exchange_result *r, const struct token_claims *subject,
                    const char *issuer, const char *client_id, int64_t now, const char *aud[1],
                    struct token_issue *out);

/* Whether a token c was exchanged from was revoked: a jti of its chain is in set, or the
 * client one of them was issued to (an earlier actor) was revoked (RevokeClient). (Its own
 * jti, its client and its person's entry, at c->origin_iat, are the caller's to check, as
 * for every token.) False at once for a token not exchanged. */
bool exchange_chain_revoked(struct revoke_set *set, const struct token_claims *c);

#endif
