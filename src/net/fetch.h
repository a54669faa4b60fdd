/* fetch.h -- guarded HTTPS GETs of small JSON documents, on an event loop (libcurl's multi
 * socket interface driven by libevent; no thread that serves requests ever blocks).
 *
 * For what a client names and we fetch (Client ID Metadata Documents, a client's jwks_uri),
 * so every fetch is hostile ground, guarded as the CIMD draft's security section asks:
 *   - https only, redirects never followed, no proxy from the environment, no cookies, no
 *     compression (no decompression bomb);
 *   - the address actually connected is checked as the socket opens (netaddr_is_public):
 *     private, loopback, link-local, cloud metadata, multicast and reserved addresses are
 *     refused, so that a name that resolves (or rebinds) there reaches nothing;
 *   - at most max_bytes of body; connect and total timeouts; 200 only; a JSON media type;
 *   - at most FETCH_MAX_IN_FLIGHT transfers at once per fetcher, and of them at most
 *     FETCH_MAX_PER_HOST to one host and FETCH_MAX_PER_REQUESTER for one requesting address
 *     (fetch_request.requester): a host that never answers, or one address naming slow
 *     documents, holds a few slots and never all of them. Hosts are compared by name
 *     (case-insensitive), as the URL gives them. The operator's fetcher has the total only.
 * Two settings exist for tests only, and say so when set: a CA file to trust instead of the
 * system's, and loopback addresses allowed.
 *
 * A fetcher can instead be the operator's (`operator_trusted`): for the upstream identity
 * provider the configuration names, whose addresses the operator chose, private ones
 * included. Its URLs may be http:// only when the address connected is loopback (a provider
 * on the same host or a test's); everything else above holds. It also POSTs forms (an OAuth
 * token request).
 */
#ifndef P2A_FETCH_H
#define P2A_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define FETCH_MAX_IN_FLIGHT 32
#define FETCH_MAX_PER_HOST 4
#define FETCH_MAX_PER_REQUESTER 4

struct event_base;
struct fetcher;

struct fetch_limits {
    long connect_ms, total_ms;
    size_t max_bytes;
    const char *ca_file;   /* NULL: the system's trust store (tests only otherwise) */
    bool allow_loopback;   /* tests only */
    bool operator_trusted; /* any address; http:// to loopback (see above) */
};

struct fetch_request {
    const char *url;
    const char *form;          /* NULL: GET; else POSTed as application/x-www-form-urlencoded */
    const char *authorization; /* an Authorization header's value, or NULL */
    const char *requester;     /* the address the fetch is for (netaddr.h), or NULL: none */
};

struct fetch_result {
    const char *why;  /* NULL: a 200 with a JSON body; else a constant-ish sentence */
    const char *body; /* with why: a JSON body of another status (an OAuth error), or NULL */
    size_t len;
    long status;       /* the HTTP status, 0 when none came */
    int64_t max_age_s; /* Cache-Control max-age, -1 when none; 0 for no-store / no-cache */
};

/* Called once per fetch_get() that returned P2A_OK, on the fetcher's loop; r and what it
 * points at live until the callback returns. */
typedef void (*fetch_cb)(void *arg, const struct fetch_result *r);

/* Call once, before any thread starts (libcurl's global state). */
void fetch_global_init(void);

struct fetcher *fetcher_new(struct event_base *base, const struct fetch_limits *lim);
/* Transfers still running end now: their callbacks are called with why "shutting down". */
void fetcher_free(struct fetcher *f);
/* Starts the request. P2A_ERR_UNAVAILABLE when a bound on transfers in flight (in all, to
 * the URL's host, for the requester) is reached, with *why (when why is not NULL) a sentence
 * that says which (cb is not called); P2A_ERR_INVALID when the URL is not https (nor http
 * for an operator_trusted fetcher) or has no host (nor called). */
p2a_err fetch_start(struct fetcher *f, const struct fetch_request *rq, fetch_cb cb, void *arg,
                    const char **why);
/* fetch_start of a GET of url for requester (NULL: none). */
p2a_err fetch_get(struct fetcher *f, const char *url, const char *requester, fetch_cb cb, void *arg,
                  const char **why);

#endif
