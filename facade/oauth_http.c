/* oauth_http.c -- the OAuth module's endpoint table, its router and its life (see
 * oauth_http.h).
 *
 * DESIGN
 * ------
 * One table names every endpoint: its path and how it matches, its name in metrics and logs,
 * its methods, whether scripts of any origin may call it (CORS), what its requests keep and
 * its handler. A document is answered at once (serve); anything else becomes a request record
 * (start), whose union holds only the part its endpoint uses.
 *
 * Each endpoint is a short chain: parse and check what needs no state, then one Redis
 * script per step (src/store), each step's callback deciding the next. A request in
 * flight is a struct oreq on the module's list, so that freeing the module can orphan it:
 * its callback then frees it without touching the HTTP request. A client that hangs up
 * meanwhile is libevent's business: evhttp keeps the request until we answer it.
 *
 * Errors go where the client can use them (OAuth 2.1 4.1.2.1): problems with client_id or
 * redirect_uri show a page and never redirect; other authorization errors go back to the
 * client's redirect URI with error, state and iss; the token, revocation, registration and
 * introspection endpoints answer RFC 6749 JSON.
 *
 * Secrets never reach a log: codes, refresh tokens, sessions and client secrets are kept as
 * SHA-256 digests and named in logs only by client_id, user_id and jti.
 */
#include "oauth_http.h"
#include "oauth_internal.h"

/* ---- the endpoint table -------------------------------------------------------------------- */

#define WK_AS "/.well-known/oauth-authorization-server"
#define WK_PRM "/.well-known/oauth-protected-resource"

/* Matched in order, the first row wins; a row's index is its metrics slot. */
const struct oauth_endpoint oauth_endpoints[] = {
    {WK_AS, EP_ISSUER, "as_metadata", EP_GET | EP_CORS, OREQ_NONE, oauth_serve_as_meta, NULL},
    {WK_PRM, EP_BELOW, "protected_resource_metadata", EP_GET | EP_CORS, OREQ_NONE, oauth_serve_prm,
     NULL},
    {"/jwks.json", EP_EXACT, "jwks", EP_GET | EP_CORS, OREQ_NONE, oauth_serve_jwks, NULL},
    {"/register", EP_EXACT, "register", EP_POST | EP_CORS, OREQ_REGISTER, NULL, oauth_do_register},
    {"/authorize", EP_EXACT, "authorize", EP_GET | EP_POST | EP_PAGE, OREQ_AUTHZ, NULL,
     oauth_do_authorize},
    {"/login", EP_EXACT, "login", EP_POST | EP_PAGE, OREQ_SIGNIN, NULL, oauth_do_login},
    {"/consent", EP_EXACT, "consent", EP_POST | EP_PAGE, OREQ_AUTHZ, NULL, oauth_do_consent},
    {"/logout", EP_EXACT, "logout", EP_GET | EP_POST | EP_PAGE, OREQ_PAGE, NULL, oauth_do_logout},
    {"/login/upstream", EP_EXACT, "login_upstream", EP_POST | EP_PAGE, OREQ_PAGE, NULL,
     oauth_do_login_upstream},
    {"/callback/upstream", EP_EXACT, "upstream_callback", EP_GET | EP_POST | EP_PAGE, OREQ_SIGNIN,
     NULL, oauth_do_upstream_callback},
    {"/account", EP_DIR, "account", EP_GET | EP_POST | EP_PAGE, OREQ_ACCOUNT, NULL,
     oauth_do_account},
    {"/account/tokens", EP_EXACT, "account_tokens", EP_POST | EP_PAGE, OREQ_ACCOUNT, NULL,
     oauth_do_account_tokens},
    {"/account/tokens/revoke", EP_EXACT, "account_revoke", EP_POST | EP_PAGE, OREQ_ACCOUNT, NULL,
     oauth_do_account_revoke},
    {"/account/clients/disconnect", EP_EXACT, "account_disconnect", EP_POST | EP_PAGE, OREQ_ACCOUNT,
     NULL, oauth_do_account_disconnect},
    {"/token", EP_EXACT, "token", EP_POST | EP_CORS | EP_LOGGED, OREQ_TOKENS, NULL, oauth_do_token},
    {"/revoke", EP_EXACT, "revoke", EP_POST | EP_CORS, OREQ_TOKENS, NULL, oauth_do_revoke},
    {"/introspect", EP_EXACT, "introspect", EP_POST, OREQ_TOKENS, NULL, oauth_do_introspect},
    {"/.well-known/", EP_PREFIX, "well_known_other", EP_GET | EP_CORS, OREQ_NONE, oauth_serve_other,
     NULL},
};
#define NENDPOINTS (sizeof(oauth_endpoints) / sizeof(oauth_endpoints[0]))
_Static_assert(NENDPOINTS == OAUTH_ENDPOINTS, "the metrics count every endpoint");

/* The row for path, with *rest what follows its path; NULL for none. */
static const struct oauth_endpoint *endpoint_find(const struct oauth_http *o, const char *path,
                                                  const char **rest)
{
    for (size_t i = 0; i < NENDPOINTS; i++) {
        const struct oauth_endpoint *ep = &oauth_endpoints[i];
        size_t n = strlen(ep->path);
        if (strncmp(path, ep->path, n) != 0)
            continue;
        const char *r = path + n;
        bool hit = false;
        switch (ep->match) {
        case EP_EXACT:
            hit = r[0] == '\0';
            break;
        case EP_DIR:
            hit = r[0] == '\0' || strcmp(r, "/") == 0;
            break;
        case EP_BELOW:
            hit = r[0] == '\0' || r[0] == '/';
            break;
        case EP_ISSUER:
            hit = r[0] == '\0' || strcmp(r, o->issuer_path) == 0;
            break;
        case EP_PREFIX:
            hit = true;
            break;
        }
        if (hit) {
            *rest = r;
            return ep;
        }
    }
    return NULL;
}

/* ---- routing ------------------------------------------------------------------------------ */

static void preflight(struct oauth_http *o, struct evhttp_request *http,
                      const struct oauth_endpoint *ep)
{
    oh_add_header(http, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    oh_add_header(http, "Access-Control-Allow-Headers",
                  "Authorization, Content-Type, MCP-Protocol-Version, Accept");
    oh_add_header(http, "Access-Control-Max-Age", "86400");
    oh_send_raw(o, http, ep, 204, NULL, "", 0);
}

static void method_not_allowed(struct oauth_http *o, struct evhttp_request *http,
                               const struct oauth_endpoint *ep)
{
    /* the documents (GET only) name their preflight too */
    oh_add_header(http, "Allow",
                  !(ep->flags & EP_POST) ? "GET, HEAD, OPTIONS"
                  : ep->flags & EP_GET   ? "GET, POST"
                                         : "POST");
    const char *e = "{\"error\":\"invalid_request\",\"error_description\":\"method not allowed\"}";
    oh_send_raw(o, http, ep, 405, "application/json", e, strlen(e));
}

bool oauth_http_handle(struct oauth_http *o, struct evhttp_request *http, const char *path)
{
    /* an issuer with a path: its endpoints arrive under that path */
    size_t iplen = strlen(o->issuer_path);
    if (iplen > 0 && strncmp(path, o->issuer_path, iplen) == 0 && path[iplen] == '/')
        path += iplen;
    const char *rest = NULL;
    const struct oauth_endpoint *ep = endpoint_find(o, path, &rest);
    if (ep == NULL)
        return false;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(http);
    bool get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;
    if (cmd == EVHTTP_REQ_OPTIONS && (ep->flags & EP_CORS))
        preflight(o, http, ep);
    else if (!((get && (ep->flags & EP_GET)) || (cmd == EVHTTP_REQ_POST && (ep->flags & EP_POST))))
        method_not_allowed(o, http, ep);
    else if (ep->serve != NULL)
        ep->serve(o, http, ep, rest);
    else
        ep->start(oreq_new(o, http, ep));
    return true;
}

/* ---- life ---------------------------------------------------------------------------------- */

struct oauth_http *oauth_http_new(struct event_base *base, const struct p2a_config *cfg,
                                  const struct facade_hooks *h)
{
    for (size_t i = 0; i < NENDPOINTS; i++) /* answered at once, or through a request record */
        P2A_ASSERT((oauth_endpoints[i].serve != NULL) == (oauth_endpoints[i].state == OREQ_NONE) &&
                   (oauth_endpoints[i].serve == NULL) == (oauth_endpoints[i].start != NULL));
    struct oauth_http *o = xcalloc(1, sizeof(*o));
    o->cfg = cfg;
    o->h = *h;
    o->base = base;
    o->nslots = hashpool_capacity(h->hashpool);
    o->slots = xcalloc(o->nslots, sizeof(*o->slots));
    o->as_meta = oauth_meta_as(cfg);
    o->issuer_path = url_path(cfg->issuer);
    o->secure = strncmp(cfg->issuer, "https://", 8) == 0;
    o->session_cookie = o->secure ? "__Host-p2a_session" : "p2a_session";
    o->csrf_cookie = o->secure ? "__Host-p2a_csrf" : "p2a_csrf";
    o->device_cookie = o->secure ? "__Host-p2a_device" : "p2a_device";
    o->docs = oauth_docs_new(base, cfg);
    if (cfg->upstream_issuer != NULL) {
        struct mbuf u = {0};
        mbuf_printf(&u, "%s/.well-known/openid-configuration", cfg->upstream_issuer);
        o->provider_meta_url = u.s;
    }
    if (cfg->fetch_ca_file != NULL || cfg->fetch_allow_loopback)
        log_warn("config.unsafe",
                 "fetches of client documents trust %s and %s loopback addresses: settings "
                 "for tests, never for production",
                 cfg->fetch_ca_file ? cfg->fetch_ca_file : "the system's CAs",
                 cfg->fetch_allow_loopback ? "may reach" : "never reach");
    if (o->as_meta == NULL || o->docs == NULL) {
        oauth_http_free(o);
        return NULL;
    }
    oauth_budget_start(o);
    return o;
}

void oauth_http_free(struct oauth_http *o)
{
    if (o == NULL)
        return;
    oauth_budget_stop(o);
    struct oreq *r;
    LIST_FOREACH(r, &o->pending, link)
    {
        r->http = NULL; /* its store or document callback frees it */
        r->o = NULL;
    }
    oauth_docs_free(o->docs); /* the requests waiting on a fetch are freed now */
    free(o->as_meta);
    free(o->provider_meta_url);
    free(o->slots);
    free(o);
}

void oauth_http_metrics(const struct oauth_http *o, struct mbuf *out)
{
    mbuf_printf(out, "# HELP p2a_oauth_requests_total OAuth endpoint answers, by endpoint and "
                     "status.\n# TYPE p2a_oauth_requests_total counter\n");
    for (size_t e = 0; e < NENDPOINTS; e++)
        http_counts_render(out, "p2a_oauth_requests_total", "endpoint", oauth_endpoints[e].name,
                           o->counts[e]);
    oauth_budget_metrics(o, out);
}
