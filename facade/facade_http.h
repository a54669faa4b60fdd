/* facade_http.h -- the HTTP/1.1 face of pipe2-authd (libevent's evhttp).
 *
 * It serves the OAuth endpoints and pages (oauth_http.c) and the operational ones: GET
 * /healthz (the process is alive), GET /readyz (ready to take traffic: 200, or 503 with the
 * reason) and, on its own listener that no Ingress exposes, GET /metrics (Prometheus
 * text). Readiness and the metrics text come from the server through the callbacks below.
 * Every connection of the public listener passes the gate (http_gate.h): bounds, deadlines,
 * strict request heads.
 */
#ifndef P2A_FACADE_HTTP_H
#define P2A_FACADE_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct event_base;
struct p2a_config;
struct mbuf;
struct facade;

struct hashpool;
struct keyring;
struct store;
struct revoke_set;
struct svckeys;

struct facade_hooks {
    /* Ready to serve? When not, *why is a short constant sentence. */
    bool (*ready)(void *arg, const char **why);
    /* Appends the Prometheus exposition text. */
    void (*metrics)(void *arg, struct mbuf *out);
    /* The current keyring (it changes on rotation). */
    const struct keyring *(*keys)(void *arg);
    void *arg;
    struct store *store;        /* the facade thread's Redis connection */
    struct revoke_set *revoked; /* the process's revocation view */
    const struct svckeys *svckeys;
    struct hashpool *hashpool; /* password checks */
};

/* Listens on PIPE2_AUTH_HTTP_LISTEN (the public face) and PIPE2_AUTH_METRICS_LISTEN
 * (/metrics, /healthz, /readyz only) on base, the facade thread's loop. Every hook is called
 * on that thread. On error a message goes to err. */
p2a_err facade_new(struct event_base *base, const struct p2a_config *cfg,
                   const struct facade_hooks *hooks, struct facade **out, char *err, size_t errlen);
void facade_free(struct facade *f);
/* Appends the facade's own series (requests by path and status). */
void facade_metrics(const struct facade *f, struct mbuf *out);

#endif
