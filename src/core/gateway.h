/* gateway.h -- what a gateway's request is judged on, read once for forward-auth over
 * HTTP/1.1 (rpc/authz_http.c) and Envoy's gRPC Check (rpc/ext_authz.c).
 *
 * A gateway (nginx auth_request, ingress-nginx auth-url, Traefik ForwardAuth, Caddy
 * forward_auth, Envoy ext_authz) asks about a request it has routed: its method, host and
 * path. Over HTTP each comes in a header, and gateways name them differently; a gateway also
 * passes the client's own headers after its own. So the rule: each attribute is read from one
 * known set of names, and a request that carries two of them, or one of them twice, or two
 * values in one, is refused (400), never resolved by order (nginx's "the last wins" let a
 * client's X-Forwarded-Method overrule nginx's X-Original-Method).
 *
 *   method  X-Forwarded-Method (Traefik, Caddy) | X-Original-Method (nginx, ingress-nginx);
 *           none: the method of the request itself (Envoy's HTTP ext_authz, Check's field)
 *   host    X-Forwarded-Host (Traefik, Caddy; nginx and ingress-nginx set it to $host);
 *           none: Host (Envoy), itself once
 *   uri     X-Forwarded-Uri (Traefik, Caddy) | X-Original-URI (nginx) | X-Original-URL
 *           (ingress-nginx: a whole URL, of which the path is read, never the host); none:
 *           the path after /forward-auth (Envoy's HTTP ext_authz), Check's path
 *
 * Then gateway_judge: the method must be a token, the host one value, and the path is
 * normalised (url_path_normalize: dot segments removed; encoded '/', '.', '\', "//" and the
 * like refused) before config_resource_at chooses the resource on segment boundaries. An
 * OPTIONS (a CORS preflight, which carries no token) passes unjudged only where
 * PIPE2_AUTH_FORWARD_AUTH_ALLOW_OPTIONS says so. Pure and allocation-free: fixed buffers,
 * one per attribute, owned by the caller.
 */
#ifndef P2A_GATEWAY_H
#define P2A_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define GATEWAY_METHOD_MAX 16
#define GATEWAY_HOST_MAX 256
#define GATEWAY_URI_MAX 2048

/* What the headers of one forward-auth request named; reset before each request. Strings
 * NUL-terminated, "" when absent. */
struct gateway_attrs {
    char method[GATEWAY_METHOD_MAX];
    char host[GATEWAY_HOST_MAX];     /* X-Forwarded-Host */
    char host_hdr[GATEWAY_HOST_MAX]; /* Host */
    char uri[GATEWAY_URI_MAX];       /* the path and query (of X-Original-URL: its path) */
    unsigned char seen_method, seen_host, seen_host_hdr, seen_uri; /* lines that named each */
    const char *why; /* the first refusal (400), a constant sentence; NULL: none */
    bool too_long;   /* a value did not fit its buffer (431) */
};

void gateway_attrs_reset(struct gateway_attrs *a);

/* Takes one header line if its name (any case) is one the rule reads, and returns true;
 * false for any other name. Sets a->why on a second name or value for one attribute, an empty
 * value, or an X-Original-URL that is not an absolute URL. */
bool gateway_header(struct gateway_attrs *a, const char *name, size_t nlen, const char *v,
                    size_t vlen);

enum gateway_verdict {
    GW_REFUSE,    /* 400: *why says what */
    GW_PREFLIGHT, /* an OPTIONS the configuration lets through: answer yes, no identity */
    GW_JUDGE,     /* judge the token for *resource (NULL: no MCP server is at this address) */
};

/* The verdict on a request for method, host (NULL or "": none) and target ("/path?query";
 * NULL or "": "/"), each already taken from the one place the rule says. */
enum gateway_verdict gateway_judge(const struct p2a_config *cfg, const char *method,
                                   const char *host, const char *target, const char **resource,
                                   const char **why);

/* gateway_judge on what a forward-auth request's headers named (a), with what its own request
 * line said as the fallbacks: line_method, and line_path (the path after /forward-auth, ""
 * when none). A path after the prefix is Envoy's HTTP ext_authz, which names the request by
 * its own method, Host and path and never sends the other names: any of them beside it came
 * from the client, and the request is refused. */
enum gateway_verdict gateway_judge_headers(const struct p2a_config *cfg,
                                           const struct gateway_attrs *a, const char *line_method,
                                           const char *line_path, const char **resource,
                                           const char **why);

#endif
