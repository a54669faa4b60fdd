/* oauth_http.c -- the OAuth endpoints, login and consent (see oauth_http.h).
 *
 * DESIGN
 * ------
 * Each endpoint is a short chain: parse and check what needs no state, then one Redis
 * script per step (oauth_store.c), each step's callback deciding the next. A request in
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

/* ---- routing ------------------------------------------------------------------------------ */

static void preflight(struct oauth_http *o, struct evhttp_request *http, enum ep ep)
{
    oh_add_header(http, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    oh_add_header(http, "Access-Control-Allow-Headers",
                  "Authorization, Content-Type, MCP-Protocol-Version, Accept");
    oh_add_header(http, "Access-Control-Max-Age", "86400");
    oh_send_raw(o, http, ep, 204, NULL, "", 0);
}

static void method_not_allowed(struct oauth_http *o, struct evhttp_request *http, enum ep ep,
                               const char *allow)
{
    oh_add_header(http, "Allow", allow);
    const char *e = "{\"error\":\"invalid_request\",\"error_description\":\"method not allowed\"}";
    oh_send_raw(o, http, ep, 405, "application/json", e, strlen(e));
}

#define WK_AS "/.well-known/oauth-authorization-server"
#define WK_PRM "/.well-known/oauth-protected-resource"

bool oauth_http_handle(struct oauth_http *o, struct evhttp_request *http, const char *path)
{
    static const struct {
        const char *path;
        enum ep ep;
        bool get_too; /* GET as well as POST */
        void (*fn)(struct oreq *r);
    } routes[] = {
        {"/register", EP_REGISTER, false, oauth_do_register},
        {"/authorize", EP_AUTHORIZE, true, oauth_do_authorize},
        {"/login", EP_LOGIN, false, oauth_do_login},
        {"/consent", EP_CONSENT, false, oauth_do_consent},
        {"/logout", EP_LOGOUT, true, oauth_do_logout},
        {"/login/upstream", EP_LOGIN_UPSTREAM, false, oauth_do_login_upstream},
        {"/callback/upstream", EP_UPSTREAM_CALLBACK, true, oauth_do_upstream_callback},
        {"/account/", EP_ACCOUNT, true, oauth_do_account},
        {"/account", EP_ACCOUNT, true, oauth_do_account},
        {"/account/tokens", EP_ACCOUNT_TOKENS, false, oauth_do_account},
        {"/account/tokens/revoke", EP_ACCOUNT_REVOKE, false, oauth_do_account},
        {"/account/clients/disconnect", EP_ACCOUNT_DISCONNECT, false, oauth_do_account},
        {"/token", EP_TOKEN, false, oauth_do_token},
        {"/revoke", EP_REVOKE, false, oauth_do_revoke},
        {"/introspect", EP_INTROSPECT, false, oauth_do_introspect},
    };
    enum evhttp_cmd_type cmd = evhttp_request_get_command(http);
    /* an issuer with a path: its endpoints arrive under that path */
    const char *ipath = o->issuer_path;
    size_t iplen = strlen(ipath);
    if (iplen > 0 && strncmp(path, ipath, iplen) == 0 && path[iplen] == '/')
        path += iplen;

    enum ep ep = EP_COUNT;
    const char *suffix = NULL;
    if (strncmp(path, WK_AS, strlen(WK_AS)) == 0) {
        suffix = path + strlen(WK_AS);
        ep = (suffix[0] == '\0' || strcmp(suffix, ipath) == 0) ? EP_AS_META : EP_WELL_KNOWN_OTHER;
    } else if (strncmp(path, WK_PRM, strlen(WK_PRM)) == 0 &&
               (path[strlen(WK_PRM)] == '\0' || path[strlen(WK_PRM)] == '/')) {
        suffix = path + strlen(WK_PRM);
        ep = EP_PRM;
    } else if (strncmp(path, "/.well-known/", 13) == 0) {
        ep = EP_WELL_KNOWN_OTHER;
    } else if (strcmp(path, "/jwks.json") == 0) {
        ep = EP_JWKS;
    }
    if (ep != EP_COUNT) {
        if (cmd == EVHTTP_REQ_OPTIONS) {
            preflight(o, http, ep);
        } else if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
            method_not_allowed(o, http, ep, "GET, HEAD, OPTIONS");
        } else if (ep == EP_AS_META) {
            oh_send_raw(o, http, ep, 200, "application/json", o->as_meta, strlen(o->as_meta));
        } else if (ep == EP_PRM) {
            oauth_serve_prm(o, http, suffix);
        } else if (ep == EP_JWKS) {
            char *j = keys_jwks(o->h.keys(o->h.arg));
            oh_add_header(http, "Cache-Control", "public, max-age=60");
            oh_send_raw(o, http, ep, 200, "application/json", j, strlen(j));
            free(j);
        } else {
            const char *e = "{\"error\":\"not_found\",\"error_description\":\"this server "
                            "publishes only RFC 8414 and RFC 9728 metadata\"}";
            oh_send_raw(o, http, ep, 404, "application/json", e, strlen(e));
        }
        return true;
    }
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(path, routes[i].path) != 0)
            continue;
        ep = routes[i].ep;
        if (cmd == EVHTTP_REQ_OPTIONS && ep_cors[ep]) {
            preflight(o, http, ep);
        } else if (cmd == EVHTTP_REQ_POST ||
                   (routes[i].get_too && (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD))) {
            routes[i].fn(oreq_new(o, http, ep));
        } else {
            method_not_allowed(o, http, ep, routes[i].get_too ? "GET, POST" : "POST");
        }
        return true;
    }
    return false;
}

/* ---- life ---------------------------------------------------------------------------------- */

struct oauth_http *oauth_http_new(struct event_base *base, const struct p2a_config *cfg,
                                  const struct facade_hooks *h)
{
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
    for (int e = 0; e < EP_COUNT; e++)
        http_counts_render(out, "p2a_oauth_requests_total", "endpoint", ep_names[e], o->counts[e]);
    oauth_budget_metrics(o, out);
}
