/* oauth_http.h -- the OAuth 2.1 endpoints of the facade (RFC 8414, 9728, 7591, 6749 with
 * PKCE, 7009, 7662, 9207), JWKS, and a person's pages: sign-in (local, or through the upstream
 * provider), consent, sign-out, the account pages.
 *
 * The module parses requests, calls the rules in src/core and the Redis scripts in src/store,
 * and renders JSON or HTML. It runs on the facade thread's loop, with that thread's Redis
 * connection; passwords are checked on the hash pool. A request waiting on Redis or the
 * pool is a 'struct oreq' until it is answered.
 */
#ifndef P2A_OAUTH_HTTP_H
#define P2A_OAUTH_HTTP_H

#include <stdbool.h>

struct event_base;
struct evhttp_request;
struct p2a_config;
struct facade_hooks;
struct oauth_http;
struct mbuf;

/* On base, the facade thread's loop (hash answers come back there). */
struct oauth_http *oauth_http_new(struct event_base *base, const struct p2a_config *cfg,
                                  const struct facade_hooks *h);
/* Requests still waiting on Redis are dropped without an answer (the connections are going
 * away with the listener). */
void oauth_http_free(struct oauth_http *o);
/* Answers req when path is one of ours (now or once Redis has answered): true; false when
 * it is not an OAuth path. */
bool oauth_http_handle(struct oauth_http *o, struct evhttp_request *req, const char *path);
void oauth_http_metrics(const struct oauth_http *o, struct mbuf *out);

#endif
