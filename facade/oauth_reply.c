/* oauth_reply.c -- requests in flight (made, orphaned, freed with the part their endpoint
 * keeps) and every way of answering them: JSON, RFC 6749 errors, pages, redirects' headers,
 * cookies; the request's own headers, body and forms read (see oauth_internal.h). */
#include "oauth_internal.h"

/* ---- bookkeeping --------------------------------------------------------------------------- */

/* Every value of a header, in order, joined with ','; NULL when there is none. */
static char *joined_header(struct evhttp_request *http, const char *name)
{
    struct mbuf b = {0};
    for (struct evkeyval *kv = evhttp_request_get_input_headers(http)->tqh_first; kv != NULL;
         kv = kv->next.tqe_next)
        if (strcasecmp(kv->key, name) == 0)
            mbuf_printf(&b, "%s%s", b.len > 0 ? "," : "", kv->value);
    return b.s;
}

struct oreq *oreq_new(struct oauth_http *o, struct evhttp_request *http,
                      const struct oauth_endpoint *ep)
{
    struct oreq *r = xcalloc(1, sizeof(*r));
    r->o = o;
    r->http = http;
    r->ep = ep;
    if (ep->state == OREQ_SIGNIN)
        r->web.signin.slot = -1;
    LIST_INSERT_HEAD(&o->pending, r, link);
    char *host = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(http), &host, &port);
    char *xff = joined_header(http, "X-Forwarded-For");
    char *fwd = joined_header(http, "Forwarded");
    netaddr_client(o->cfg->proxies, o->cfg->nproxies, host ? host : "unknown", xff, fwd, r->addr);
    netaddr_limit_key(r->addr, r->limit);
    free(xff);
    free(fwd);
    return r;
}

static void cleanse_free(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* Releases the part of r its endpoint kept (oauth_internal.h's union). */
static void oreq_state_free(struct oreq *r)
{
    enum oreq_state st = r->ep->state;
    if (st == OREQ_REGISTER) {
        oauth_client_reg_deinit(&r->reg);
    } else if (st == OREQ_TOKENS) {
        cleanse_free(r->tok.access_token);
        json_decref(r->tok.issuer.doc);
        json_decref(r->tok.claims);
        OPENSSL_cleanse(r->tok.secret, sizeof(r->tok.secret));
        OPENSSL_cleanse(r->tok.new_rt, sizeof(r->tok.new_rt));
    } else if (st >= OREQ_PAGE) {
        struct oreq_web *w = &r->web;
        oauth_form_free(&w->post);
        free(w->query);
        OPENSSL_cleanse(w->sid, sizeof(w->sid));
        if (st == OREQ_AUTHZ) {
            cleanse_free(w->authz.code);
        } else if (st == OREQ_SIGNIN) {
            json_decref(w->signin.provider.doc);
            json_decref(w->signin.pending);
            cleanse_free(w->signin.id_token);
        } else if (st == OREQ_ACCOUNT) {
            mbuf_free(&w->account.page);
            cleanse_free(w->account.token);
        }
    }
}

static void oreq_free(struct oreq *r)
{
    if (r->o != NULL) {
        LIST_REMOVE(r, link);
    }
    oauth_form_free(&r->form);
    json_decref(r->client);
    oreq_state_free(r);
    free(r);
}

bool oreq_orphaned(struct oreq *r)
{
    if (r->http != NULL)
        return false;
    oreq_free(r);
    return true;
}

/* ---- answers ------------------------------------------------------------------------------- */

void oh_add_header(struct evhttp_request *http, const char *k, const char *v)
{
    evhttp_add_header(evhttp_request_get_output_headers(http), k, v);
}

void oh_send_raw(struct oauth_http *o, struct evhttp_request *http, const struct oauth_endpoint *ep,
                 int status, const char *ctype, const char *body, size_t len)
{
    if (ep->flags & EP_CORS) {
        oh_add_header(http, "Access-Control-Allow-Origin", "*");
        oh_add_header(http, "Access-Control-Expose-Headers", "WWW-Authenticate");
    }
    http_count(o->counts[ep - oauth_endpoints], status);
    http_send(http, status, ctype, body, len);
}

void oreq_finish(struct oreq *r, int status, const char *ctype, const char *body, size_t len)
{
    oh_send_raw(r->o, r->http, r->ep, status, ctype, body, len);
    oreq_free(r);
}

void oreq_json(struct oreq *r, int status, const char *json)
{
    oreq_finish(r, status, "application/json", json, strlen(json));
}

/* Refusals are logged at most once a second per client: a limiter per hash of the client id
 * (two clients may share one; what matters is the bound, REFUSAL_SLOTS lines a second
 * whatever anonymous clients send). Any facade thread: the limiters are atomic. */
#define REFUSAL_SLOTS 64
static struct log_limit refusal_limits[REFUSAL_SLOTS];

void oreq_log_refusal(const struct oreq *r, int status, const char *error, const char *desc)
{
    unsigned long long passed = 0;
    if (!log_every_second(&refusal_limits[digest_fnv1a(r->client_id) % REFUSAL_SLOTS], &passed))
        return;
    log_warn("oauth.refused", "%s refused client %.200s from %s: %d %s: %s (%llu passed over)",
             r->ep->name, r->client_id[0] ? r->client_id : "(none)", r->addr, status, error, desc,
             passed);
}

/* An RFC 6749 5.2 error; description is a constant or made of checked values. A 401
 * challenges only with the scheme the client used (RFC 6749 5.2: Basic after Basic; a
 * service key's Bearer at /introspect), and not at all after credentials in the form:
 * strict clients read a challenge first and would never see invalid_client (and so never
 * register again). */
void oreq_error(struct oreq *r, int status, const char *error, const char *desc)
{
    char *s = http_error_json(error, desc);
    if (r->ep->flags & EP_LOGGED) /* what operators see of a client that cannot get its token */
        oreq_log_refusal(r, status, error, desc);
    const char *authz = oh_req_header(r->http, "Authorization");
    if (status == 401 && authz != NULL) {
        if (strncasecmp(authz, "Basic ", 6) == 0)
            oh_add_header(r->http, "WWW-Authenticate", "Basic realm=\"pipe2-auth\"");
        else if (strncasecmp(authz, "Bearer ", 7) == 0) /* RFC 6750 3.1: a key we refuse */
            oh_add_header(r->http, "WWW-Authenticate",
                          "Bearer realm=\"pipe2-auth\", error=\"invalid_token\"");
    }
    oreq_json(r, status, s);
    free(s);
}

/* Redis is not there: a page for a person, JSON for a program. */
static void finish_unavailable(struct oreq *r)
{
    oh_add_header(r->http, "Retry-After", "1");
    if (r->ep->flags & EP_PAGE)
        oreq_page_error(r, 503, "Service unavailable", "Try again in a moment.");
    else
        oreq_error(r, 503, "temporarily_unavailable",
                   "the token store is unavailable; try again shortly");
}

struct oreq *oreq_resume(void *arg, p2a_err err)
{
    struct oreq *r = arg;
    if (oreq_orphaned(r))
        return NULL;
    if (err != P2A_OK) {
        finish_unavailable(r);
        return NULL;
    }
    return r;
}

/* Every page: no framing, nothing loaded from anywhere, no script but one pinned by its hash
 * (script_hash, or NULL for none); http_send() adds no-store. (No form-action: browsers apply it to
 * the redirect that follows a form, which for consent is the client's redirect URI.) */
static void html_headers(struct evhttp_request *http, const char *script_hash)
{
    char csp[256];
    snprintf(csp, sizeof(csp),
             "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
             "base-uri 'none'%s%s%s",
             script_hash ? "; script-src '" : "", script_hash ? script_hash : "",
             script_hash ? "'" : "");
    oh_add_header(http, "Content-Security-Policy", csp);
    oh_add_header(http, "X-Frame-Options", "DENY");
    oh_add_header(http, "Referrer-Policy", "no-referrer");
}

void oreq_html_script(struct oreq *r, int status, struct mbuf *page, const char *script_hash)
{
    html_headers(r->http, script_hash);
    oreq_finish(r, status, "text/html; charset=utf-8", page->s ? page->s : "", page->len);
    mbuf_free(page);
}

void oreq_html(struct oreq *r, int status, struct mbuf *page)
{
    oreq_html_script(r, status, page, NULL);
}

void oreq_page_error(struct oreq *r, int status, const char *title, const char *text)
{
    struct mbuf page = {0};
    page_error(&page, title, text);
    oreq_html(r, status, &page);
}

void oreq_set_cookie(struct oreq *r, const char *name, const char *value, int max_age)
{
    struct mbuf c = {0};
    mbuf_printf(&c, "%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax%s", name, value, max_age,
                r->o->secure ? "; Secure" : "");
    oh_add_header(r->http, "Set-Cookie", c.s);
    OPENSSL_cleanse(c.s, c.len);
    mbuf_free(&c);
}

const char *oh_req_header(struct evhttp_request *http, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(http), name);
}

bool oh_content_type_is(struct evhttp_request *http, const char *want)
{
    const char *ct = oh_req_header(http, "Content-Type");
    size_t n = strlen(want);
    return ct != NULL && strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';');
}

/* evhttp bounds the body. */
char *oh_body(struct evhttp_request *http, size_t *len)
{
    struct evbuffer *b = evhttp_request_get_input_buffer(http);
    *len = evbuffer_get_length(b);
    char *s = xmalloc(*len + 1);
    evbuffer_copyout(b, s, *len);
    s[*len] = '\0';
    return s;
}

static bool parse_body_form(struct oreq *r, struct oauth_form *f)
{
    size_t len;
    char *body = oh_body(r->http, &len);
    bool ok = oauth_form_parse(body, len, f) == P2A_OK;
    OPENSSL_cleanse(body, len);
    free(body);
    return ok;
}

bool oreq_read_form(struct oreq *r)
{
    if (oh_content_type_is(r->http, "application/x-www-form-urlencoded") &&
        parse_body_form(r, &r->form))
        return true;
    oreq_error(r, 400, "invalid_request",
               r->form.why[0] ? r->form.why
                              : "send the parameters as application/x-www-form-urlencoded");
    return false;
}

bool oreq_read_post(struct oreq *r)
{
    if (oh_content_type_is(r->http, "application/x-www-form-urlencoded") &&
        parse_body_form(r, &r->web.post))
        return true;
    oreq_page_error(r, 400, "Invalid request", "The form could not be read.");
    return false;
}

bool oreq_cookie(struct oreq *r, const char *name, char out[OAUTH_SECRET_LEN + 1])
{
    if (oauth_cookie_get(oh_req_header(r->http, "Cookie"), name, out, OAUTH_SECRET_LEN + 1) &&
        strlen(out) == OAUTH_SECRET_LEN)
        return true;
    out[0] = '\0';
    return false;
}
