/* oauth_docs.h -- documents a client names and we fetch: Client ID Metadata Documents (the
 * client's record) and jwks_uri documents (its keys), checked and cached.
 *
 * The cache is per replica, in memory, bounded (OAUTH_DOCS_MAX entries, of which the
 * upstream provider's two are never evicted for the others; the documents
 * themselves at most OAUTH_DOC_MAX_BYTES each): a client_id URL is anyone's to choose, so
 * a shared cache in Redis would let anonymous requests create keys there; per replica the
 * cost of a miss is one guarded fetch per replica per URL per max-age. A good document is
 * kept for its Cache-Control max-age clamped to PIPE2_AUTH_DOC_CACHE_MIN .. _MAX (5 minutes
 * without one); a failure for OAUTH_DOC_NEGATIVE_S, so that asking again does not fetch
 * again. Requests for a URL being fetched wait for that one fetch. Runs on the facade's loop.
 */
#ifndef P2A_OAUTH_DOCS_H
#define P2A_OAUTH_DOCS_H

#include <stdbool.h>

#include <jansson.h>

#define OAUTH_DOCS_MAX 1024
#define OAUTH_DOC_MAX_BYTES 5120
#define OAUTH_DOC_NEGATIVE_S 10

struct event_base;
struct p2a_config;
struct oauth_docs;
struct fetcher;

/* DOC_PROVIDER and DOC_PROVIDER_JWKS are the upstream identity provider's discovery
 * document and key set, DOC_IDJAG_ISSUER the discovery document of an issuer of
 * PIPE2_AUTH_ID_JAG_ISSUERS (its keys are a DOC_PROVIDER_JWKS too): fetched by the operator's
 * fetcher (fetch.h, operator_trusted; at most OAUTH_PROVIDER_DOC_MAX_BYTES), checked by
 * core/oidc.c, never evicted (there are at most 2 + 2 x CONFIG_MAX_ID_JAG_ISSUERS). */
enum oauth_doc_kind { DOC_CLIENT, DOC_JWKS, DOC_PROVIDER, DOC_PROVIDER_JWKS, DOC_IDJAG_ISSUER };

#define OAUTH_PROVIDER_DOC_MAX_BYTES 65536
#define OAUTH_PROVIDER_REFETCH_S 10 /* a key set is fetched again this soon at most */

/* value: the client record or the JWK set (borrowed: json_incref() it to keep it), NULL with
 * why (a sentence for a page or an error_description) when there is none. */
typedef void (*oauth_doc_cb)(void *arg, json_t *value, const char *why);

struct oauth_docs *oauth_docs_new(struct event_base *base, const struct p2a_config *cfg);
/* Fetches still running end: their waiters are called with why "shutting down". */
void oauth_docs_free(struct oauth_docs *d);
/* Calls cb once: now, from the cache, or when the fetch ends. url is checked by the caller
 * (oauth_cimd_id_check for a client; https for keys). requester is the client address the
 * document is fetched for (NULL for the provider's documents): a fetch counts against its
 * host and its requester (fetch.h); past either bound cb hears why at once. Requests that
 * find the document already being fetched wait for that fetch and count for nothing. */
void oauth_docs_get(struct oauth_docs *d, enum oauth_doc_kind kind, const char *url,
                    const char *requester, oauth_doc_cb cb, void *arg);
/* Forgets the cached document, so that the next get fetches it again (a key set that lacks
 * the key a token names: rotation), unless it was forgotten less than every_s ago (tokens
 * naming unknown keys cost one fetch per every_s at most). Whether it was forgotten. */
bool oauth_docs_forget(struct oauth_docs *d, enum oauth_doc_kind kind, const char *url,
                       int every_s);
/* An identity provider's key set at uri (DOC_PROVIDER_JWKS) lacks the key a token names: the
 * provider may have rotated its keys. Fetches the set again and calls cb with it, unless it
 * was fetched again less than OAUTH_PROVIDER_REFETCH_S ago (then false, and cb is not called:
 * tokens naming unknown keys cost one fetch per that time at most). */
bool oauth_docs_keys_again(struct oauth_docs *d, const char *uri, oauth_doc_cb cb, void *arg);
/* The operator's fetcher (for the upstream provider's token endpoint), NULL when no upstream
 * provider is configured. */
struct fetcher *oauth_docs_provider_fetcher(struct oauth_docs *d);

#endif
