/* authz_http.h -- the workers' internal HTTP/1.1 listener (PIPE2_AUTH_FORWARD_AUTH_LISTEN):
 * forward-auth for gateways and RFC 7662 introspection, at the speed of Introspect.
 *
 * Each worker accepts on its own SO_REUSEPORT listener of that port and serves its
 * connections on its own loop, with its own token cache and the shared revocation view:
 * the same flow as Introspect (core/introspect.c), never the facade's thread. Requests are
 * read by the strict HTTP/1.1 reader (base/h1scan.c) into a fixed buffer per connection and
 * answered from it: a cached token costs no allocation, no lock and no Redis.
 *
 *   ANY  /forward-auth[/<path>]  nginx auth_request, Traefik ForwardAuth, Caddy
 *        forward_auth, Envoy's HTTP ext_authz (the original path after the prefix). The
 *        original method, host and URI are each read from one header by the rule of
 *        core/gateway.h (two names or values for one: 400), the path normalised; its
 *        resource comes from configuration (config_resource_at), never from the client. 200
 *        with the identity headers (introspect_identity), 401/403 with WWW-Authenticate and a
 *        JSON body that says what to do (repeated in X-Auth-Denial, for gateways that keep
 *        only headers), 503 when the revocation view cannot be trusted (gateways fail
 *        closed). An original OPTIONS (a CORS preflight, which never carries a token) is let
 *        through only with PIPE2_AUTH_FORWARD_AUTH_ALLOW_OPTIONS.
 *   POST /introspect  RFC 7662 for resource servers, with an introspect service key as
 *        Bearer; the form and the answer are the public /introspect's.
 *
 * Bounds: PIPE2_AUTH_FORWARD_AUTH_MAX_CONNECTIONS connections, _PER_ADDRESS of them from one
 * address (a connguard, its bounds from the descriptor limit: server.c; each holds one
 * fixed buffer set), a request of at most AUTHZ_IN_MAX bytes, the header timeout for a
 * request once it has begun, the idle timeout between requests. Responses are written in
 * order; a connection whose peer stops reading stops being read.
 */
#ifndef P2A_AUTHZ_HTTP_H
#define P2A_AUTHZ_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

#include <event2/util.h>

#define AUTHZ_IN_MAX (16 * 1024) /* one request: head and body */

struct event_base;
struct connguard;
struct service_ctx;
struct authz_conn;

/* What every forward-auth connection of one worker shares. Owned by the worker. */
struct authz_env {
    struct event_base *base;
    struct service_ctx *svc;
    struct connguard *guard;
    int idle_timeout_s, header_timeout_s;
    LIST_HEAD(, authz_conn) conns;
    size_t nconns;
    bool draining;
    void (*on_drained)(void *arg); /* once draining and the last connection has closed */
    void *drained_arg;
};

/* Takes ownership of fd, accepted from addr (canonical text); closes it at once when the
 * port's bounds say so or the worker is draining. */
void authz_http_accept(struct authz_env *env, evutil_socket_t fd, const char *addr);
/* Graceful end: idle connections close now, the others after their current answer (with
 * Connection: close); env->on_drained runs when none is left (at once when none is open). */
void authz_http_drain(struct authz_env *env);
/* Frees every connection at once. */
void authz_http_close_all(struct authz_env *env);

#endif
