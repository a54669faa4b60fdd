/* facade_http.c -- the facade's two HTTP/1.1 listeners and its operational endpoints (see
 * facade_http.h).
 *
 * evhttp on the facade thread's loop, with bounds on everything a client sends: headers
 * 8 KiB, bodies 64 KiB, and the gate's (http_gate.h) on the public port. The public port asks
 * the OAuth module (oauth_http.c) first, then serves /healthz and /readyz; the metrics port
 * serves those and /metrics. Unknown paths get 404, other methods 405, each as a short JSON
 * error. Responses are never cached.
 */
#include "facade_http.h"

#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "config.h"
#include "http_gate.h"
#include "http_reply.h"
#include "log.h"
#include "metrics.h"
#include "oauth_http.h"
#include "xalloc.h"

#define MAX_HEADERS (8 * 1024)
#define MAX_BODY (64 * 1024)

enum route { R_HEALTHZ, R_READYZ, R_METRICS, R_OTHER, R_COUNT };
static const char *const route_names[R_COUNT] = {"/healthz", "/readyz", "/metrics", "other"};
struct facade {
    struct evhttp *http, *ops; /* the public port; the metrics port */
    struct http_gate *gate;
    struct oauth_http *oauth;
    struct facade_hooks hooks;
    uint64_t requests[R_COUNT][HTTP_STATUS_SLOTS];
};

/* The operational endpoints; /metrics only on the metrics port. */
static void serve_ops(struct facade *f, struct evhttp_request *req, const char *path,
                      bool metrics_port)
{
    enum route r = R_OTHER;
    if (path != NULL && strcmp(path, "/healthz") == 0)
        r = R_HEALTHZ;
    else if (path != NULL && strcmp(path, "/readyz") == 0)
        r = R_READYZ;
    else if (path != NULL && metrics_port && strcmp(path, "/metrics") == 0)
        r = R_METRICS;
    if (r == R_OTHER) {
        http_count(f->requests[r], 404);
        http_send_error(req, 404, "not_found", "no such endpoint");
        return;
    }
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        http_count(f->requests[r], 405);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        http_send_error(req, 405, "invalid_request", "use GET");
        return;
    }
    if (r == R_HEALTHZ) {
        http_count(f->requests[r], 200);
        http_send(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
    } else if (r == R_READYZ) {
        const char *why = "not ready";
        if (f->hooks.ready(f->hooks.arg, &why)) {
            http_count(f->requests[r], 200);
            http_send(req, 200, "text/plain; charset=utf-8", "ready\n", 6);
        } else {
            http_count(f->requests[r], 503);
            char body[256];
            int n = snprintf(body, sizeof(body), "not ready: %s\n", why);
            http_send(req, 503, "text/plain; charset=utf-8", body, (size_t)n);
        }
    } else {
        http_count(f->requests[r],
                   200); /* counted before rendering, so the scrape includes itself */
        struct mbuf out = {0};
        f->hooks.metrics(f->hooks.arg, &out);
        http_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.s ? out.s : "",
                  out.len);
        mbuf_free(&out);
    }
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct facade *f = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (path != NULL && oauth_http_handle(f->oauth, req, path))
        return;
    serve_ops(f, req, path, false);
}

static void on_ops_request(struct evhttp_request *req, void *arg)
{
    serve_ops(arg, req, evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req)), true);
}

static void set_bounds(struct evhttp *http, const struct p2a_config *cfg)
{
    evhttp_set_max_headers_size(http, MAX_HEADERS);
    evhttp_set_max_body_size(http, MAX_BODY);
    /* per read; the gate's deadlines are the absolute ones */
    evhttp_set_timeout(http, cfg->header_timeout_s + cfg->request_timeout_s);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                         EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                         EVHTTP_REQ_PATCH);
}

p2a_err facade_new(struct event_base *base, const struct p2a_config *cfg,
                   const struct facade_hooks *hooks, struct facade **out, char *err, size_t errlen)
{
    struct facade *f = xcalloc(1, sizeof(*f));
    f->hooks = *hooks;
    f->oauth = oauth_http_new(base, cfg, hooks);
    f->http = f->oauth ? evhttp_new(base) : NULL;
    f->ops = f->http ? evhttp_new(base) : NULL;
    if (f->ops == NULL) {
        facade_free(f);
        snprintf(err, errlen, "cannot create the HTTP listener");
        return P2A_ERR_INTERNAL;
    }
    set_bounds(f->http, cfg);
    set_bounds(f->ops, cfg);
    evhttp_set_gencb(f->http, on_request, f);
    evhttp_set_gencb(f->ops, on_ops_request, f);
    p2a_err rc = http_gate_new(base, f->http, cfg, &f->gate, err, errlen);
    if (rc == P2A_OK && evhttp_bind_socket_with_handle(f->ops, cfg->metrics_host,
                                                       (ev_uint16_t)cfg->metrics_port) == NULL) {
        snprintf(err, errlen, "cannot listen on PIPE2_AUTH_METRICS_LISTEN %s", cfg->metrics_listen);
        rc = P2A_ERR_INVALID;
    }
    if (rc != P2A_OK) {
        facade_free(f);
        return rc;
    }
    *out = f;
    return P2A_OK;
}

void facade_free(struct facade *f)
{
    if (f == NULL)
        return;
    if (f->http != NULL)
        evhttp_free(f->http); /* its connections first: they point into the gate */
    http_gate_free(f->gate);
    if (f->ops != NULL)
        evhttp_free(f->ops);
    oauth_http_free(f->oauth);
    free(f);
}

void facade_metrics(const struct facade *f, struct mbuf *out)
{
    mbuf_printf(out, "# HELP p2a_http_requests_total HTTP requests answered by the facade, by "
                     "path and status.\n"
                     "# TYPE p2a_http_requests_total counter\n");
    for (int r = 0; r < R_COUNT; r++)
        http_counts_render(out, "p2a_http_requests_total", "path", route_names[r], f->requests[r]);
    oauth_http_metrics(f->oauth, out);
    if (f->gate != NULL)
        http_gate_metrics(f->gate, out);
}
