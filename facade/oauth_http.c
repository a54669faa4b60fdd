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

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "clock.h"
#include "config.h"
#include "facade_http.h"
#include "keys.h"
#include "log.h"
#include "hashpool.h"
#include "introspect.h"
#include "metrics.h"
#include "netaddr.h"
#include "oauth.h"
#include "oauth_store.h"
#include "pages.h"
#include "revoke.h"
#include "svckeys.h"
#include "token.h"
#include "url.h"
#include "xalloc.h"

#define MAX_QUERY 8192

enum ep {
    EP_AS_META, EP_PRM, EP_JWKS, EP_REGISTER, EP_AUTHORIZE, EP_LOGIN, EP_CONSENT, EP_TOKEN,
    EP_REVOKE, EP_INTROSPECT, EP_WELL_KNOWN_OTHER, EP_COUNT
};
static const char *const ep_names[EP_COUNT] = {
    "as_metadata", "protected_resource_metadata", "jwks", "register", "authorize", "login",
    "consent", "token", "revoke", "introspect", "well_known_other"};
static const bool ep_cors[EP_COUNT] = {
    [EP_AS_META] = true, [EP_PRM] = true, [EP_JWKS] = true, [EP_REGISTER] = true,
    [EP_TOKEN] = true, [EP_REVOKE] = true, [EP_WELL_KNOWN_OTHER] = true};
#define STATUS_SLOTS 10
static const int statuses[STATUS_SLOTS] = {200, 201, 204, 302, 303, 400, 401, 403, 429, 0};

struct oreq;

struct oauth_http {
    const struct p2a_config *cfg;
    struct facade_hooks h;
    char *as_meta;           /* the RFC 8414 document */
    const char *issuer_path; /* the issuer's path ("" for none), stripped from request paths */
    bool secure;             /* https issuer: Secure, __Host- cookies */
    const char *session_cookie, *csrf_cookie;
    struct oreq *pending;
    uint64_t counts[EP_COUNT][STATUS_SLOTS];
    struct event_base *base;
    struct signin_slot *slots; /* sign-ins between reservation and hash; as many as the pool holds */
    size_t nslots;
};

enum authz_mode { AUTHZ_SHOW, AUTHZ_CONSENT };

/* Sign-ins one address, and one account, may have in progress at once. */
#define SIGNIN_PER_ADDR 4
#define SIGNIN_PER_USER 2

struct signin_slot {
    bool used;
    char addr[NETADDR_MAX];
    char user[OAUTH_MAX_USERNAME + 1];
};

struct oreq {
    struct oauth_http *o;
    int slot;                    /* the sign-in slot held, or -1 */
    struct evhttp_request *http; /* NULL once orphaned */
    struct oreq *prev, *next;
    enum ep ep;
    char addr[NETADDR_MAX];     /* the client's (netaddr.h) */
    struct oauth_form form;     /* the request's parameters (authorization ones for consent) */
    struct oauth_form post;     /* a form posted to /login or /consent */
    json_t *client;             /* the client's record, once looked up */
    /* authorization request */
    enum authz_mode mode;
    bool approve;
    const char *redirect_uri;   /* into form or client */
    bool redirect_given;
    const char *resource;       /* a configured resource */
    char scope[SCOPE_MAX_LEN + 1];
    char *query;                /* the authorization request as a query string */
    /* the signed-in user */
    char user_id[128], username[OAUTH_MAX_USERNAME + 1];
    int64_t auth_time;
    char sid[OAUTH_SECRET_LEN + 1];
    /* token endpoint */
    char client_id[OAUTH_MAX_CLIENT_ID + 1];
    char secret[OAUTH_SECRET_LEN * 2 + 1];
    bool has_secret, basic;
    char fid[OAUTH_SECRET_LEN + 1];
    char new_rt[OAUTH_SECRET_LEN + 1];
    char *access_token;
    char jti[JTI_MAX_LEN + 1];
    int64_t at_exp;
    char granted_scope[SCOPE_MAX_LEN + 1];
    void (*after_client)(struct oreq *r); /* next step once the client is authenticated */
    char *response;             /* a body kept until a store step confirms */
    struct oauth_client_reg reg; /* /register: the client being stored */
};

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

static struct oreq *oreq_new(struct oauth_http *o, struct evhttp_request *http, enum ep ep)
{
    struct oreq *r = xcalloc(1, sizeof(*r));
    r->o = o;
    r->http = http;
    r->ep = ep;
    r->slot = -1;
    r->next = o->pending;
    if (o->pending != NULL)
        o->pending->prev = r;
    o->pending = r;
    char *host = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(http), &host, &port);
    char *xff = joined_header(http, "X-Forwarded-For");
    char *fwd = joined_header(http, "Forwarded");
    netaddr_client(o->cfg->proxies, o->cfg->nproxies, host ? host : "unknown", xff, fwd, r->addr);
    free(xff);
    free(fwd);
    return r;
}

static void oreq_free(struct oreq *r)
{
    if (r->o != NULL) {
        if (r->prev != NULL)
            r->prev->next = r->next;
        else
            r->o->pending = r->next;
        if (r->next != NULL)
            r->next->prev = r->prev;
    }
    oauth_form_free(&r->form);
    oauth_form_free(&r->post);
    json_decref(r->client);
    free(r->query);
    if (r->access_token != NULL) {
        OPENSSL_cleanse(r->access_token, strlen(r->access_token));
        free(r->access_token);
    }
    if (r->response != NULL) {
        OPENSSL_cleanse(r->response, strlen(r->response));
        free(r->response);
    }
    oauth_client_reg_deinit(&r->reg);
    OPENSSL_cleanse(r->secret, sizeof(r->secret));
    OPENSSL_cleanse(r->new_rt, sizeof(r->new_rt));
    OPENSSL_cleanse(r->sid, sizeof(r->sid));
    free(r);
}

/* At the top of every store callback: a request orphaned by oauth_http_free() is dropped. */
static bool orphaned(struct oreq *r)
{
    if (r->http != NULL)
        return false;
    oreq_free(r);
    return true;
}

static void count(struct oauth_http *o, enum ep ep, int status)
{
    int i = 0;
    while (i < STATUS_SLOTS - 1 && statuses[i] != status)
        i++;
    o->counts[ep][i]++;
}

/* ---- answers ------------------------------------------------------------------------------- */

static void add_header(struct evhttp_request *http, const char *k, const char *v)
{
    evhttp_add_header(evhttp_request_get_output_headers(http), k, v);
}

static void send_raw(struct oauth_http *o, struct evhttp_request *http, enum ep ep, int status,
                     const char *ctype, const char *body, size_t len)
{
    if (ctype != NULL)
        add_header(http, "Content-Type", ctype);
    if (evhttp_find_header(evhttp_request_get_output_headers(http), "Cache-Control") == NULL) {
        add_header(http, "Cache-Control", "no-store");
        add_header(http, "Pragma", "no-cache");
    }
    add_header(http, "X-Content-Type-Options", "nosniff");
    if (ep_cors[ep]) {
        add_header(http, "Access-Control-Allow-Origin", "*");
        add_header(http, "Access-Control-Expose-Headers", "WWW-Authenticate");
    }
    struct evbuffer *b = evbuffer_new();
    if (b != NULL && len > 0)
        evbuffer_add(b, body, len);
    count(o, ep, status);
    evhttp_send_reply(http, status, NULL, b);
    if (b != NULL)
        evbuffer_free(b);
}

/* Answers and frees r. */
static void finish(struct oreq *r, int status, const char *ctype, const char *body, size_t len)
{
    send_raw(r->o, r->http, r->ep, status, ctype, body, len);
    oreq_free(r);
}

static void finish_json(struct oreq *r, int status, const char *json)
{
    finish(r, status, "application/json", json, strlen(json));
}

/* An RFC 6749 5.2 error; description is a constant or made of checked values. */
static void finish_error(struct oreq *r, int status, const char *error, const char *desc)
{
    json_t *j = json_pack("{s:s, s:s}", "error", error, "error_description", desc);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (status == 401)
        add_header(r->http, "WWW-Authenticate",
                   r->basic ? "Basic realm=\"pipe2-auth\"" : "Bearer realm=\"pipe2-auth\"");
    if (status == 429)
        add_header(r->http, "Retry-After", "60");
    finish_json(r, status, s ? s : "{\"error\":\"server_error\"}");
    free(s);
}

static void finish_page_error(struct oreq *r, int status, const char *title, const char *text);

/* Redis is not there: a page for a person, JSON for a program. */
static void finish_unavailable(struct oreq *r)
{
    add_header(r->http, "Retry-After", "1");
    if (r->ep == EP_AUTHORIZE || r->ep == EP_LOGIN || r->ep == EP_CONSENT)
        finish_page_error(r, 503, "Service unavailable", "Try again in a moment.");
    else
        finish_error(r, 503, "temporarily_unavailable",
                     "the token store is unavailable; try again shortly");
}

/* The start of every store callback: NULL when the request was orphaned (and is freed now)
 * or when Redis failed or answered fewer than need items (and the client was told);
 * otherwise the request to go on with. */
static struct oreq *resume(void *arg, p2a_err err, size_t n, size_t need)
{
    struct oreq *r = arg;
    if (orphaned(r))
        return NULL;
    if (err != P2A_OK || n < need) {
        finish_unavailable(r);
        return NULL;
    }
    return r;
}

static void html_headers(struct evhttp_request *http)
{
    add_header(http, "Content-Security-Policy",
               "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
               "base-uri 'none'");
    add_header(http, "X-Frame-Options", "DENY");
    add_header(http, "Referrer-Policy", "no-referrer");
}

static void finish_html(struct oreq *r, int status, struct mbuf *page)
{
    html_headers(r->http);
    finish(r, status, "text/html; charset=utf-8", page->s ? page->s : "", page->len);
    mbuf_free(page);
}

static void finish_page_error(struct oreq *r, int status, const char *title, const char *text)
{
    struct mbuf page = {0};
    page_error(&page, title, text);
    finish_html(r, status, &page);
}

static void set_cookie(struct oreq *r, const char *name, const char *value, int max_age)
{
    char c[256];
    snprintf(c, sizeof(c), "%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax%s", name, value,
             max_age, r->o->secure ? "; Secure" : "");
    add_header(r->http, "Set-Cookie", c);
}

static const char *req_header(struct evhttp_request *http, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(http), name);
}

static bool content_type_is(struct evhttp_request *http, const char *want)
{
    const char *ct = req_header(http, "Content-Type");
    size_t n = strlen(want);
    return ct != NULL && strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';');
}

/* The request body as a NUL-terminated string (evhttp bounds it). */
static char *body_of(struct evhttp_request *http, size_t *len)
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
    char *body = body_of(r->http, &len);
    bool ok = oauth_form_parse(body, len, f) == P2A_OK;
    OPENSSL_cleanse(body, len);
    free(body);
    return ok;
}

/* ---- metadata ------------------------------------------------------------------------------ */

/* PIPE2_AUTH_SCOPES as a JSON array (scopes_supported). */
static json_t *scopes_json(const struct p2a_config *cfg)
{
    json_t *scopes = json_array();
    for (const char *p = cfg->scopes; *p;) {
        size_t n = strcspn(p, " ");
        json_array_append_new(scopes, json_stringn(p, n));
        p += n;
        while (*p == ' ')
            p++;
    }
    return scopes;
}

static char *build_as_meta(const struct p2a_config *cfg)
{
    const char *iss = cfg->issuer;
    json_t *scopes = scopes_json(cfg);
    char ep[6][2200];
    static const char *const names[6] = {"/authorize", "/token", "/register", "/revoke",
                                         "/introspect", "/jwks.json"};
    for (int i = 0; i < 6; i++)
        snprintf(ep[i], sizeof(ep[i]), "%s%s", iss, names[i]);
    json_t *m = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:[s], s:[s], s:[ss], s:[s],"
        " s:[sss], s:[sss], s:[ss], s:b}",
        "issuer", iss, "authorization_endpoint", ep[0], "token_endpoint", ep[1],
        "registration_endpoint", ep[2], "revocation_endpoint", ep[3], "introspection_endpoint",
        ep[4], "jwks_uri", ep[5], "scopes_supported", scopes, "response_types_supported",
        "code", "response_modes_supported", "query", "grant_types_supported",
        "authorization_code", "refresh_token", "code_challenge_methods_supported", "S256",
        "token_endpoint_auth_methods_supported", "none", "client_secret_post",
        "client_secret_basic", "revocation_endpoint_auth_methods_supported", "none",
        "client_secret_post", "client_secret_basic",
        "introspection_endpoint_auth_methods_supported", "client_secret_basic",
        "client_secret_post", "authorization_response_iss_parameter_supported", 1);
    char *s = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    return s;
}

static void serve_prm(struct oauth_http *o, struct evhttp_request *http, const char *suffix)
{
    const struct p2a_config *cfg = o->cfg;
    const char *found = NULL;
    for (size_t i = 0; i < cfg->nresources && found == NULL; i++) {
        const char *p = url_path(cfg->resources[i]);
        size_t n = strlen(p);
        while (n > 0 && p[n - 1] == '/')
            n--;
        size_t sn = strlen(suffix);
        while (sn > 0 && suffix[sn - 1] == '/')
            sn--;
        if (n == sn && strncmp(p, suffix, n) == 0)
            found = cfg->resources[i];
    }
    if (found == NULL && suffix[0] == '\0')
        found = cfg->resources[0]; /* the root form names the first resource */
    if (found == NULL) {
        const char *e = "{\"error\":\"not_found\",\"error_description\":\"no protected "
                        "resource at this path\"}";
        send_raw(o, http, EP_PRM, 404, "application/json", e, strlen(e));
        return;
    }
    json_t *scopes = scopes_json(cfg);
    json_t *m = json_pack("{s:s, s:[s], s:o, s:[s], s:s}", "resource", found,
                          "authorization_servers", cfg->issuer, "scopes_supported", scopes,
                          "bearer_methods_supported", "header", "resource_name",
                          "Pipe2.ai MCP");
    char *s = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    send_raw(o, http, EP_PRM, 200, "application/json", s, strlen(s));
    free(s);
}

/* ---- client authentication (token, revoke, introspect) ------------------------------------- */

static void on_client_for_auth(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                               size_t n);

/* Reads the client's credentials (Basic, or client_id and client_secret in the body),
 * looks the client up and calls r->after_client once it is authenticated. */
static void client_auth(struct oreq *r)
{
    const char *authz = req_header(r->http, "Authorization");
    const char *body_id = oauth_form_get(&r->form, "client_id");
    const char *body_secret = oauth_form_get(&r->form, "client_secret");
    if (authz != NULL && strncasecmp(authz, "Basic ", 6) == 0) {
        r->basic = true;
        if (body_secret != NULL) {
            finish_error(r, 400, "invalid_request", "use one client authentication method");
            return;
        }
        if (!oauth_basic_parse(authz, r->client_id, sizeof(r->client_id), r->secret,
                               sizeof(r->secret))) {
            finish_error(r, 401, "invalid_client", "malformed Basic credentials");
            return;
        }
        if (body_id != NULL && strcmp(body_id, r->client_id) != 0) {
            finish_error(r, 400, "invalid_request", "client_id differs from the credentials");
            return;
        }
        r->has_secret = true;
    } else {
        if (body_id == NULL) {
            finish_error(r, 401, "invalid_client", "client authentication is required");
            return;
        }
        snprintf(r->client_id, sizeof(r->client_id), "%s", body_id);
        if (body_secret != NULL) {
            snprintf(r->secret, sizeof(r->secret), "%s", body_secret);
            r->has_secret = true;
        }
    }
    if (!oauth_client_id_valid(r->client_id)) {
        finish_error(r, 401, "invalid_client", "unknown client; register again");
        return;
    }
    oauth_store_client_get(r->o->h.store, r->client_id, on_client_for_auth, r);
}

static void on_client_for_auth(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                               size_t n)
{
    struct oreq *r = resume(arg, err, n, 1);
    if (r == NULL)
        return;
    r->client = lens[0] > 0 ? json_loadb(v[0], lens[0], 0, NULL) : NULL;
    if (r->client == NULL) {
        finish_error(r, 401, "invalid_client", "unknown client; register again");
        return;
    }
    const char *method =
        json_string_value(json_object_get(r->client, "token_endpoint_auth_method"));
    const char *digest = json_string_value(json_object_get(r->client, "client_secret_sha256"));
    if (oauth_auth_method_parse(method) == OAUTH_AUTH_NONE) {
        if (r->has_secret) {
            finish_error(r, 401, "invalid_client", "this client has no secret");
            return;
        }
    } else {
        char d[OAUTH_HEX_LEN + 1];
        oauth_digest_hex(r->secret, strlen(r->secret), d);
        if (!r->has_secret || digest == NULL || !oauth_secret_eq(d, digest)) {
            finish_error(r, 401, "invalid_client", "client authentication failed");
            return;
        }
    }
    r->after_client(r);
}

/* ---- /register ------------------------------------------------------------------------------ */

static void on_registered(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                          size_t n)
{
    (void)lens;
    struct oreq *r = resume(arg, err, n, 1);
    if (r == NULL)
        return;
    if (strcmp(v[0], "1") != 0) { /* a 128-bit id already taken: not worth a retry */
        finish_error(r, 500, "server_error", "could not store the client");
        return;
    }
    log_info("oauth.client_registered", "registered client %s from %s", r->reg.client_id,
             r->addr);
    add_header(r->http, "Location", r->reg.client_id);
    finish_json(r, 201, r->reg.response);
}

static void on_register_rate(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                             size_t n)
{
    (void)lens;
    struct oreq *r = resume(arg, err, n, 1);
    if (r == NULL)
        return;
    if (strtoll(v[0], NULL, 10) > r->o->cfg->register_rate_limit) {
        finish_error(r, 429, "too_many_requests",
                     "too many registrations from this address; try again later");
        return;
    }
    size_t len;
    char *text = body_of(r->http, &len);
    json_t *body = oauth_json_object(text, len);
    free(text);
    if (body == NULL) {
        finish_error(r, 400, "invalid_client_metadata", "the body must be a JSON object");
        return;
    }
    const char *code;
    char desc[200];
    p2a_err e = oauth_client_register(body, clock_now(), &r->reg, &code, desc, sizeof(desc));
    json_decref(body);
    if (e != P2A_OK) {
        finish_error(r, e == P2A_ERR_INVALID ? 400 : 500, code, desc);
        return;
    }
    oauth_store_client_put(r->o->h.store, r->reg.client_id, r->reg.record, on_registered, r);
}

static void do_register(struct oreq *r)
{
    if (!content_type_is(r->http, "application/json")) {
        finish_error(r, 400, "invalid_client_metadata", "send the metadata as application/json");
        return;
    }
    char key[128];
    snprintf(key, sizeof(key), "register:%s", r->addr);
    oauth_store_rate_hit(r->o->h.store, key, 3600, on_register_rate, r);
}

/* ---- /authorize, /login, /consent ------------------------------------------------------------ */

static void authz_redirect(struct oreq *r, const char *error, const char *desc, const char *code)
{
    struct mbuf u = {0};
    mbuf_printf(&u, "%s", r->redirect_uri);
    if (code != NULL) {
        url_add_param(&u, "code", code);
    } else {
        url_add_param(&u, "error", error);
        url_add_param(&u, "error_description", desc);
    }
    const char *state = oauth_form_get(&r->form, "state");
    if (state != NULL)
        url_add_param(&u, "state", state);
    url_add_param(&u, "iss", r->o->cfg->issuer);
    add_header(r->http, "Location", u.s);
    if (code == NULL)
        log_info("oauth.authorize_error", "authorization for client %s refused: %s",
                 r->client_id, error);
    OPENSSL_cleanse(u.s, u.len);
    mbuf_free(&u);
    finish(r, r->ep == EP_AUTHORIZE ? 302 : 303, NULL, "", 0);
}

/* The consent form's CSRF token: bound to the session and to the authorization request
 * being approved, so that a token lifted from one consent page approves nothing else. */
static void csrf_for_consent(const char *sid, const char *query, char out[OAUTH_HEX_LEN + 1])
{
    char qd[OAUTH_HEX_LEN + 1], buf[OAUTH_SECRET_LEN + OAUTH_HEX_LEN + 16];
    oauth_digest_hex(query, strlen(query), qd);
    int n = snprintf(buf, sizeof(buf), "csrf:%s:%s", sid, qd);
    oauth_digest_hex(buf, (size_t)n, out);
}

static bool cookie(struct oreq *r, const char *name, char *out, size_t outlen)
{
    return oauth_cookie_get(req_header(r->http, "Cookie"), name, out, outlen) &&
           strlen(out) == OAUTH_SECRET_LEN;
}

static void show_login(struct oreq *r, int status, const char *client_name, const char *user,
                       const char *message)
{
    char csrf[OAUTH_SECRET_LEN + 1];
    if (!cookie(r, r->o->csrf_cookie, csrf, sizeof(csrf))) {
        if (oauth_random_secret(csrf) != P2A_OK) {
            finish_page_error(r, 500, "Something went wrong", "Try again.");
            return;
        }
        set_cookie(r, r->o->csrf_cookie, csrf, 3600);
    }
    struct page_login p = {.query = r->query,
                           .csrf = csrf,
                           .client_name = client_name ? client_name : "the application",
                           .username = user,
                           .message = message};
    struct mbuf page = {0};
    page_login(&page, &p);
    finish_html(r, status, &page);
}

static void on_code_created(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                            size_t n)
{
    (void)v, (void)lens;
    struct oreq *r = resume(arg, err, n, 0);
    if (r == NULL)
        return;
    log_info("oauth.authorized", "user %s authorized client %s", r->user_id, r->client_id);
    authz_redirect(r, NULL, NULL, r->response);
}

static void authz_approved(struct oreq *r)
{
    char code[OAUTH_SECRET_LEN + 1], digest[OAUTH_HEX_LEN + 1];
    if (oauth_random_secret(code) != P2A_OK) {
        finish_page_error(r, 500, "Something went wrong", "Try again.");
        return;
    }
    oauth_digest_hex(code, strlen(code), digest);
    json_t *b = json_pack("{s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:I}", "client_id", r->client_id,
                          "redirect_uri", r->redirect_uri, "redirect_given", r->redirect_given,
                          "challenge", oauth_form_get(&r->form, "code_challenge"), "resource",
                          r->resource, "scope", r->scope, "user_id", r->user_id, "auth_time",
                          (json_int_t)r->auth_time);
    char *binding = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    r->response = xstrdup(code);
    OPENSSL_cleanse(code, sizeof(code));
    oauth_store_code_create(r->o->h.store, digest, binding ? binding : "{}", on_code_created, r);
    free(binding);
}

static void on_session_for_page(void *arg, p2a_err err, const char *const *v,
                                const size_t *lens, size_t n)
{
    (void)lens;
    struct oreq *r = resume(arg, err, n, 0);
    if (r == NULL)
        return;
    const char *name = json_string_value(json_object_get(r->client, "client_name"));
    if (n < 3) { /* no session (or an expired one): sign in first */
        const char *prompt = oauth_form_get(&r->form, "prompt");
        if (prompt != NULL && strcmp(prompt, "none") == 0) {
            authz_redirect(r, "login_required", "the user is not signed in", NULL);
            return;
        }
        show_login(r, 200, name, NULL, NULL);
        return;
    }
    const char *prompt = oauth_form_get(&r->form, "prompt");
    if (prompt != NULL && strcmp(prompt, "none") == 0) {
        authz_redirect(r, "consent_required", "the user must approve this application", NULL);
        return;
    }
    char csrf[OAUTH_HEX_LEN + 1];
    csrf_for_consent(r->sid, r->query, csrf);
    struct page_consent p = {.query = r->query,
                             .csrf = csrf,
                             .client_name = name,
                             .client_id = r->client_id,
                             .redirect_uri = r->redirect_uri,
                             .scope = r->scope,
                             .resource = r->resource,
                             .username = v[1]};
    struct mbuf page = {0};
    page_consent(&page, &p);
    finish_html(r, 200, &page);
}

/* The client is known and the redirect URI settled: the checks that redirect. */
static void authz_checks(struct oreq *r)
{
    const struct p2a_config *cfg = r->o->cfg;
    const char *rt = oauth_form_get(&r->form, "response_type");
    const char *cc = oauth_form_get(&r->form, "code_challenge");
    const char *ccm = oauth_form_get(&r->form, "code_challenge_method");
    const char *res = oauth_form_get(&r->form, "resource");
    const char *scope = oauth_form_get(&r->form, "scope");
    if (rt == NULL || strcmp(rt, "code") != 0) {
        authz_redirect(r, "unsupported_response_type", "response_type must be code", NULL);
        return;
    }
    if (cc == NULL) {
        authz_redirect(r, "invalid_request", "code_challenge is required (PKCE)", NULL);
        return;
    }
    if (ccm == NULL || strcmp(ccm, "S256") != 0) {
        authz_redirect(r, "invalid_request", "code_challenge_method must be S256", NULL);
        return;
    }
    if (!oauth_pkce_challenge_valid(cc)) {
        authz_redirect(r, "invalid_request", "code_challenge must be 43 base64url characters",
                       NULL);
        return;
    }
    r->resource = res ? oauth_resource_find(cfg, res) : cfg->resources[0];
    if (r->resource == NULL) {
        authz_redirect(r, "invalid_target", "resource is not a server this issuer serves", NULL);
        return;
    }
    if (scope != NULL && scope_check(scope) != NULL) {
        authz_redirect(r, "invalid_scope", "scope is malformed", NULL);
        return;
    }
    scope_grant(cfg->scopes, scope, r->scope, sizeof(r->scope));
    if (r->mode == AUTHZ_CONSENT) {
        if (r->approve)
            authz_approved(r);
        else
            authz_redirect(r, "access_denied", "the user denied the request", NULL);
        return;
    }
    char sid[OAUTH_SECRET_LEN + 1], digest[OAUTH_HEX_LEN + 1];
    if (!cookie(r, r->o->session_cookie, sid, sizeof(sid))) {
        on_session_for_page(r, P2A_OK, NULL, NULL, 0);
        return;
    }
    snprintf(r->sid, sizeof(r->sid), "%s", sid);
    oauth_digest_hex(sid, strlen(sid), digest);
    oauth_store_session_get(r->o->h.store, digest, on_session_for_page, r);
}

static void on_client_for_authz(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                                size_t n)
{
    struct oreq *r = resume(arg, err, n, 1);
    if (r == NULL)
        return;
    r->client = lens[0] > 0 ? json_loadb(v[0], lens[0], 0, NULL) : NULL;
    if (r->client == NULL) {
        finish_page_error(r, 400, "Unknown application",
                          "This application is not registered with Pipe2.ai (any more). "
                          "Remove it from your MCP client and add the server again.");
        return;
    }
    json_t *uris = json_object_get(r->client, "redirect_uris");
    const char *given = oauth_form_get(&r->form, "redirect_uri");
    size_t i;
    json_t *e;
    if (given == NULL) {
        if (json_array_size(uris) != 1) {
            finish_page_error(r, 400, "Invalid request",
                              "The application did not say where to send your approval "
                              "(redirect_uri is missing).");
            return;
        }
        r->redirect_uri = json_string_value(json_array_get(uris, 0));
    } else {
        json_array_foreach(uris, i, e) {
            const char *u = json_string_value(e);
            if (u != NULL && oauth_redirect_uri_match(u, given))
                r->redirect_uri = given;
        }
        if (r->redirect_uri == NULL) {
            log_info("oauth.redirect_uri_mismatch", "client %s sent an unregistered redirect_uri",
                     r->client_id);
            finish_page_error(r, 400, "Invalid request",
                              "The address this application asked to send your approval to "
                              "is not one it registered. Nothing was sent.");
            return;
        }
        r->redirect_given = true;
    }
    if (r->redirect_uri == NULL) {
        finish_page_error(r, 400, "Invalid request", "The application's registration is broken.");
        return;
    }
    authz_checks(r);
}

/* Starts checking the authorization request in r->form. */
static void authz_start(struct oreq *r)
{
    const char *cid = oauth_form_get(&r->form, "client_id");
    if (cid == NULL || !oauth_client_id_valid(cid)) {
        finish_page_error(r, 400, "Unknown application",
                          cid == NULL ? "The request does not name an application (client_id)."
                                      : "This application is not registered with Pipe2.ai.");
        return;
    }
    snprintf(r->client_id, sizeof(r->client_id), "%s", cid);
    oauth_store_client_get(r->o->h.store, r->client_id, on_client_for_authz, r);
}

static bool query_ok(const char *q)
{
    if (q == NULL || strlen(q) > MAX_QUERY)
        return false;
    for (const unsigned char *p = (const unsigned char *)q; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

static void do_authorize(struct oreq *r)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(r->http);
    p2a_err e;
    if (cmd == EVHTTP_REQ_POST) {
        if (!content_type_is(r->http, "application/x-www-form-urlencoded")) {
            finish_page_error(r, 400, "Invalid request", "The request is not a form.");
            return;
        }
        size_t len;
        char *body = body_of(r->http, &len);
        r->query = body;
        e = query_ok(body) ? oauth_form_parse(body, len, &r->form) : P2A_ERR_INVALID;
    } else {
        const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->http));
        r->query = xstrdup(q ? q : "");
        e = query_ok(r->query) ? oauth_form_parse(r->query, strlen(r->query), &r->form)
                               : P2A_ERR_INVALID;
    }
    if (e != P2A_OK) {
        finish_page_error(r, 400, "Invalid request",
                          r->form.why[0] ? r->form.why : "The authorization request is malformed.");
        return;
    }
    r->mode = AUTHZ_SHOW;
    authz_start(r);
}

/* POST /login */

/* Verified when the username is unknown, so that the answer takes as long as for a wrong
 * password: a well-formed hash, with our parameters, of nothing anyone can type. */
static const char unknown_user_hash[] =
    "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

static void on_session_created(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                               size_t n)
{
    (void)v, (void)lens;
    struct oreq *r = resume(arg, err, n, 0);
    if (r == NULL)
        return;
    set_cookie(r, r->o->session_cookie, r->sid, r->o->cfg->session_lifetime_s);
    char loc[MAX_QUERY + 16];
    snprintf(loc, sizeof(loc), "/authorize?%s", r->query);
    add_header(r->http, "Location", loc);
    log_info("oauth.login", "user %s signed in from %s", r->user_id, r->addr);
    finish(r, 303, NULL, "", 0);
}

/* ---- sign-in admission: bounded in process before anything is reserved or hashed ---- */

/* Which of the in-process slots r holds, or -1. A slot lives from the reservation to the
 * hash's answer, so the pool never has more work than it can queue. */
static int signin_admit(struct oreq *r)
{
    struct oauth_http *o = r->o;
    size_t per_addr = 0, per_user = 0;
    int free_slot = -1;
    for (size_t i = 0; i < o->nslots; i++) {
        if (!o->slots[i].used) {
            if (free_slot < 0)
                free_slot = (int)i;
            continue;
        }
        per_addr += strcmp(o->slots[i].addr, r->addr) == 0;
        per_user += strcmp(o->slots[i].user, r->username) == 0;
    }
    if (free_slot < 0)
        return -2; /* every slot taken: the service is busy */
    if (per_addr >= SIGNIN_PER_ADDR || per_user >= SIGNIN_PER_USER)
        return -1;
    struct signin_slot *sl = &o->slots[free_slot];
    sl->used = true;
    snprintf(sl->addr, sizeof(sl->addr), "%s", r->addr);
    snprintf(sl->user, sizeof(sl->user), "%s", r->username);
    r->slot = free_slot;
    return free_slot;
}

static void signin_release(struct oreq *r)
{
    if (r->o != NULL && r->slot >= 0)
        r->o->slots[r->slot].used = false;
    r->slot = -1;
}

static void show_busy(struct oreq *r, int status, int retry_after_s, const char *message)
{
    char ra[16];
    snprintf(ra, sizeof(ra), "%d", retry_after_s > 0 ? retry_after_s : 1);
    add_header(r->http, "Retry-After", ra);
    show_login(r, status, NULL, r->username, message);
}

static void on_hashed(void *arg, bool ok)
{
    struct oreq *r = arg;
    signin_release(r);
    if (orphaned(r))
        return;
    if (!ok || r->user_id[0] == '\0') { /* the failure was counted when it was reserved */
        log_info("oauth.login_failed", "failed sign-in from %s", r->addr);
        show_login(r, 401, NULL, r->username, "Wrong username or password.");
        return;
    }
    char digest[OAUTH_HEX_LEN + 1];
    if (oauth_random_secret(r->sid) != P2A_OK) {
        finish_page_error(r, 500, "Something went wrong", "Try again.");
        return;
    }
    oauth_digest_hex(r->sid, strlen(r->sid), digest);
    oauth_store_session_create(r->o->h.store, digest, r->user_id, r->username, r->addr,
                               clock_now(), r->o->cfg->session_lifetime_s, on_session_created,
                               r);
}

static void on_login_reserved(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                              size_t n)
{
    (void)lens;
    struct oreq *r = arg;
    if (r->http == NULL || err != P2A_OK || n < 4)
        signin_release(r);
    if ((r = resume(arg, err, n, 4)) == NULL)
        return;
    long long status = strtoll(v[0], NULL, 10), retry = strtoll(v[3], NULL, 10);
    if (status != 0) {
        signin_release(r);
        log_warn("oauth.login_rate_limited", "sign-in refused: too many attempts at one account "
                 "(%s, from %s)", status == 1 ? "this address" : "any address", r->addr);
        char msg[160];
        snprintf(msg, sizeof(msg), "Too many failed sign-in attempts. Try again in %lld seconds.",
                 retry);
        show_busy(r, 429, (int)retry, msg);
        return;
    }
    snprintf(r->user_id, sizeof(r->user_id), "%s", v[1]);
    const char *password = oauth_form_get(&r->post, "password");
    /* an unknown user costs the same hash as a known one, and gets the same answer */
    if (!hashpool_verify(r->o->h.hashpool, r->o->base, password ? password : "",
                         r->user_id[0] ? v[2] : unknown_user_hash, on_hashed, r)) {
        signin_release(r);
        show_busy(r, 503, 1, "Sign-in is busy right now. Try again in a moment.");
    }
}

static bool post_form(struct oreq *r)
{
    if (!content_type_is(r->http, "application/x-www-form-urlencoded") ||
        !parse_body_form(r, &r->post)) {
        finish_page_error(r, 400, "Invalid request", "The form could not be read.");
        return false;
    }
    const char *q = oauth_form_get(&r->post, "q");
    if (!query_ok(q)) {
        finish_page_error(r, 400, "Invalid request", "The form lost the application's request. "
                                                     "Go back to the application and start again.");
        return false;
    }
    r->query = xstrdup(q);
    return true;
}

static void do_login(struct oreq *r)
{
    if (!post_form(r))
        return;
    char cookie_csrf[OAUTH_SECRET_LEN + 1];
    const char *csrf = oauth_form_get(&r->post, "csrf");
    if (csrf == NULL || !cookie(r, r->o->csrf_cookie, cookie_csrf, sizeof(cookie_csrf)) ||
        !oauth_secret_eq(csrf, cookie_csrf)) {
        log_warn("oauth.csrf_refused", "sign-in form with a missing or wrong CSRF token from %s",
                 r->addr);
        finish_page_error(r, 403, "This form has expired",
                          "The sign-in form was not sent from this page, or it is too old. "
                          "Go back to the application and start again.");
        return;
    }
    const char *user = oauth_form_get(&r->post, "username");
    const char *pw = oauth_form_get(&r->post, "password");
    if (user == NULL || pw == NULL || oauth_username_check(user) != NULL ||
        strlen(pw) > OAUTH_MAX_PASSWORD) {
        if (user != NULL && strlen(user) <= OAUTH_MAX_USERNAME &&
            oauth_username_check(user) == NULL)
            snprintf(r->username, sizeof(r->username), "%s", user);
        show_login(r, 401, NULL, r->username[0] ? r->username : NULL,
                   "Wrong username or password.");
        return;
    }
    snprintf(r->username, sizeof(r->username), "%s", user);
    int slot = signin_admit(r);
    if (slot == -2) {
        log_warn("oauth.login_busy", "sign-in refused: every hashing slot is taken");
        show_busy(r, 503, 1, "Sign-in is busy right now. Try again in a moment.");
        return;
    }
    if (slot < 0) {
        show_busy(r, 429, 1, "Too many sign-ins at once. Try again in a moment.");
        return;
    }
    struct oauth_login_limits lim = {.per_pair = r->o->cfg->login_rate_limit,
                                     .throttle_after = r->o->cfg->login_throttle_after};
    oauth_store_login_reserve(r->o->h.store, r->username, r->addr, &lim, clock_now_ms(),
                              on_login_reserved, r);
}

/* POST /consent */

static void on_session_for_consent(void *arg, p2a_err err, const char *const *v,
                                   const size_t *lens, size_t n)
{
    (void)lens;
    struct oreq *r = resume(arg, err, n, 0);
    if (r == NULL)
        return;
    if (n < 3) {
        finish_page_error(r, 401, "You are signed out",
                          "Your sign-in has expired. Go back to the application and start again.");
        return;
    }
    snprintf(r->user_id, sizeof(r->user_id), "%s", v[0]);
    snprintf(r->username, sizeof(r->username), "%s", v[1]);
    r->auth_time = strtoll(v[2], NULL, 10);
    if (oauth_form_parse(r->query, strlen(r->query), &r->form) != P2A_OK) {
        finish_page_error(r, 400, "Invalid request", "The authorization request is malformed.");
        return;
    }
    authz_start(r);
}

static void do_consent(struct oreq *r)
{
    if (!post_form(r))
        return;
    const char *csrf = oauth_form_get(&r->post, "csrf");
    const char *decision = oauth_form_get(&r->post, "decision");
    char want[OAUTH_HEX_LEN + 1], digest[OAUTH_HEX_LEN + 1];
    bool have_session = cookie(r, r->o->session_cookie, r->sid, sizeof(r->sid));
    if (have_session)
        csrf_for_consent(r->sid, r->query, want);
    if (!have_session || csrf == NULL || !oauth_secret_eq(csrf, want)) {
        log_warn("oauth.csrf_refused", "consent form with a missing or wrong CSRF token from %s",
                 r->addr);
        finish_page_error(r, 403, "This form has expired",
                          "The approval was not sent from this page, or it is too old. "
                          "Go back to the application and start again.");
        return;
    }
    if (decision == NULL || (strcmp(decision, "approve") != 0 && strcmp(decision, "deny") != 0)) {
        finish_page_error(r, 400, "Invalid request", "Choose Allow or Deny.");
        return;
    }
    r->mode = AUTHZ_CONSENT;
    r->approve = strcmp(decision, "approve") == 0;
    oauth_digest_hex(r->sid, strlen(r->sid), digest);
    oauth_store_session_get(r->o->h.store, digest, on_session_for_consent, r);
}

/* ---- /token -------------------------------------------------------------------------------- */

static void revoke_locally(struct oreq *r, const char *const *v, size_t from, size_t n)
{
    for (size_t i = from; i + 1 < n; i += 2)
        revoke_add(r->o->h.revoked, v[i], strtoll(v[i + 1], NULL, 10), REVOKE_PATH_LOCAL);
}

static void finish_tokens(struct oreq *r)
{
    json_t *j = json_pack("{s:s, s:s, s:I, s:s, s:s}", "access_token", r->access_token,
                          "token_type", "Bearer", "expires_in",
                          (json_int_t)r->o->cfg->access_token_lifetime_s, "scope",
                          r->granted_scope, "refresh_token", r->new_rt);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s == NULL) {
        finish_error(r, 500, "server_error", "could not encode the tokens");
        return;
    }
    finish_json(r, 200, s);
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

/* Signs the access token for r (sub, scope, resource); false after answering an error. */
static bool sign_access(struct oreq *r, const char *user_id, const char *resource)
{
    const struct p2a_config *cfg = r->o->cfg;
    int64_t now = clock_now();
    r->at_exp = now + cfg->access_token_lifetime_s;
    const char *aud[1] = {resource};
    struct token_issue in = {.kind = TOKEN_KIND_OAUTH,
                             .issuer = cfg->issuer,
                             .sub = user_id,
                             .aud = aud,
                             .naud = 1,
                             .scope = r->granted_scope,
                             .client_id = r->client_id,
                             .iat = now,
                             .exp = r->at_exp};
    if (token_sign(r->o->h.keys(r->o->h.arg), &in, &r->access_token, r->jti) != P2A_OK) {
        finish_error(r, 500, "server_error", "could not sign the token");
        return false;
    }
    return true;
}

/* The store has recorded the new tokens ({1}), or found their grant revoked meanwhile. */
static void on_tokens_recorded(void *arg, p2a_err err, const char *const *v,
                               const size_t *lens, size_t n)
{
    (void)lens;
    struct oreq *r = resume(arg, err, n, 1);
    if (r == NULL)
        return;
    bool refresh = strcmp(oauth_form_get(&r->form, "grant_type"), "refresh_token") == 0;
    if (strcmp(v[0], "1") != 0) {
        finish_error(r, 400, "invalid_grant",
                     refresh ? "refresh token was revoked" : "authorization code was already used");
        return;
    }
    log_info(refresh ? "oauth.token_refreshed" : "oauth.token_issued",
             "issued tokens to client %s (%s) jti=%s", r->client_id, refresh ? "refresh" : "code",
             r->jti);
    finish_tokens(r);
}

static void on_code_reuse_revoked(void *arg, p2a_err err, const char *const *v,
                                  const size_t *lens, size_t n)
{
    (void)lens;
    struct oreq *r = arg;
    if (orphaned(r))
        return;
    if (err == P2A_OK)
        revoke_locally(r, v, 0, n);
    finish_error(r, 400, "invalid_grant",
                 "authorization code was already used; the tokens issued for it are revoked");
}

static void on_code_redeemed(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                             size_t n)
{
    struct oreq *r = resume(arg, err, n, 1);
    if (r == NULL)
        return;
    if (strcmp(v[0], "-1") == 0 || n < 2) {
        finish_error(r, 400, "invalid_grant", "authorization code is invalid or expired");
        return;
    }
    if (strcmp(v[0], "1") == 0) {
        log_warn("oauth.code_reuse", "authorization code presented again by client %s; "
                                     "revoking its tokens", r->client_id);
        oauth_store_family_revoke(r->o->h.store, v[1], clock_now_ms(), on_code_reuse_revoked, r);
        return;
    }
    json_t *b = json_loadb(v[1], lens[1], 0, NULL);
    const char *cid = json_string_value(json_object_get(b, "client_id"));
    const char *ruri = json_string_value(json_object_get(b, "redirect_uri"));
    bool rgiven = json_is_true(json_object_get(b, "redirect_given"));
    const char *chal = json_string_value(json_object_get(b, "challenge"));
    const char *res = json_string_value(json_object_get(b, "resource"));
    const char *scope = json_string_value(json_object_get(b, "scope"));
    const char *user = json_string_value(json_object_get(b, "user_id"));
    const char *given_uri = oauth_form_get(&r->form, "redirect_uri");
    const char *verifier = oauth_form_get(&r->form, "code_verifier");
    const char *given_res = oauth_form_get(&r->form, "resource");
    const char *why = NULL, *error = "invalid_grant";
    if (cid == NULL || ruri == NULL || chal == NULL || res == NULL || scope == NULL || user == NULL)
        why = "authorization code is invalid or expired";
    else if (strcmp(cid, r->client_id) != 0)
        why = "authorization code was issued to another client";
    else if ((rgiven && given_uri == NULL) || (given_uri != NULL && strcmp(given_uri, ruri) != 0))
        why = "redirect_uri does not match the authorization request";
    else if (!oauth_pkce_s256_ok(verifier, chal))
        why = "code_verifier does not match the code_challenge";
    else if (given_res != NULL && oauth_resource_find(r->o->cfg, given_res) != NULL &&
             !token_resource_eq(given_res, res))
        why = "resource differs from the authorization request", error = "invalid_target";
    else if (given_res != NULL && oauth_resource_find(r->o->cfg, given_res) == NULL)
        why = "resource is not a server this issuer serves", error = "invalid_target";
    if (why != NULL) {
        json_decref(b);
        finish_error(r, 400, error, why);
        return;
    }
    snprintf(r->granted_scope, sizeof(r->granted_scope), "%s", scope);
    if (!sign_access(r, user, res)) {
        json_decref(b);
        return;
    }
    if (oauth_random_secret(r->new_rt) != P2A_OK) {
        json_decref(b);
        finish_error(r, 500, "server_error", "no randomness");
        return;
    }
    char rt_digest[OAUTH_HEX_LEN + 1];
    oauth_digest_hex(r->new_rt, strlen(r->new_rt), rt_digest);
    oauth_store_family_create(r->o->h.store, r->fid, r->client_id, user, scope, res, rt_digest,
                              r->jti, r->at_exp, r->o->cfg->refresh_token_lifetime_s,
                              clock_now_ms(), on_tokens_recorded, r);
    json_decref(b);
}

static void grant_code(struct oreq *r)
{
    const char *code = oauth_form_get(&r->form, "code");
    const char *verifier = oauth_form_get(&r->form, "code_verifier");
    if (code == NULL || verifier == NULL) {
        finish_error(r, 400, "invalid_request", "code and code_verifier are required");
        return;
    }
    if (!oauth_pkce_verifier_valid(verifier)) {
        finish_error(r, 400, "invalid_request",
                     "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]");
        return;
    }
    char digest[OAUTH_HEX_LEN + 1];
    oauth_digest_hex(code, strlen(code), digest);
    if (oauth_random_secret(r->fid) != P2A_OK) {
        finish_error(r, 500, "server_error", "no randomness");
        return;
    }
    r->fid[22] = '\0'; /* 128 bits name a family */
    oauth_store_code_redeem(r->o->h.store, digest, r->fid, on_code_redeemed, r);
}

static void on_refreshed(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                         size_t n)
{
    (void)lens;
    struct oreq *r = resume(arg, err, n, 1);
    if (r == NULL)
        return;
    long code = strtol(v[0], NULL, 10);
    if (code == 0 && n >= 5) {
        snprintf(r->fid, sizeof(r->fid), "%s", v[1]);
        snprintf(r->granted_scope, sizeof(r->granted_scope), "%s", v[3]);
        if (!sign_access(r, v[2], v[4]))
            return;
        oauth_store_family_add_at(r->o->h.store, r->fid, r->jti, r->at_exp, clock_now_ms(),
                                  on_tokens_recorded, r);
        return;
    }
    switch (code) {
    case -2:
        finish_error(r, 400, "invalid_grant", "refresh token was revoked");
        break;
    case -3:
        revoke_locally(r, v, 1, n);
        log_warn("oauth.refresh_reuse", "an old refresh token of client %s was replayed; "
                                        "revoked the grant", r->client_id);
        finish_error(r, 400, "invalid_grant",
                     "refresh token was already used; every token of this grant is revoked");
        break;
    case -4:
        finish_error(r, 400, "invalid_grant", "refresh token was issued to another client");
        break;
    case -5:
        finish_error(r, 400, "invalid_scope", "scope may only narrow the granted scope");
        break;
    case -6:
        finish_error(r, 400, "invalid_target", "resource differs from the granted one");
        break;
    default:
        finish_error(r, 400, "invalid_grant", "refresh token is invalid or expired");
        break;
    }
}

static void grant_refresh(struct oreq *r)
{
    const char *rt = oauth_form_get(&r->form, "refresh_token");
    const char *scope = oauth_form_get(&r->form, "scope");
    const char *res = oauth_form_get(&r->form, "resource");
    if (rt == NULL) {
        finish_error(r, 400, "invalid_request", "refresh_token is required");
        return;
    }
    if (scope != NULL && scope_check(scope) != NULL) {
        finish_error(r, 400, "invalid_scope", "scope is malformed");
        return;
    }
    const char *canon = res ? oauth_resource_find(r->o->cfg, res) : "";
    if (canon == NULL) {
        finish_error(r, 400, "invalid_target", "resource is not a server this issuer serves");
        return;
    }
    char digest[OAUTH_HEX_LEN + 1], new_digest[OAUTH_HEX_LEN + 1];
    if (oauth_random_secret(r->new_rt) != P2A_OK) {
        finish_error(r, 500, "server_error", "no randomness");
        return;
    }
    oauth_digest_hex(rt, strlen(rt), digest);
    oauth_digest_hex(r->new_rt, strlen(r->new_rt), new_digest);
    const struct p2a_config *cfg = r->o->cfg;
    oauth_store_refresh(r->o->h.store, digest, r->client_id, new_digest, scope ? scope : "",
                        canon, clock_now_ms(), cfg->refresh_grace_s,
                        cfg->refresh_token_lifetime_s, on_refreshed, r);
}

static void token_after_client(struct oreq *r)
{
    const char *gt = oauth_form_get(&r->form, "grant_type");
    if (strcmp(gt, "authorization_code") == 0)
        grant_code(r);
    else
        grant_refresh(r);
}

static void do_token(struct oreq *r)
{
    if (!content_type_is(r->http, "application/x-www-form-urlencoded")) {
        finish_error(r, 400, "invalid_request",
                     "send the parameters as application/x-www-form-urlencoded");
        return;
    }
    if (!parse_body_form(r, &r->form)) {
        finish_error(r, 400, "invalid_request", r->form.why);
        return;
    }
    const char *gt = oauth_form_get(&r->form, "grant_type");
    if (gt == NULL) {
        finish_error(r, 400, "invalid_request", "grant_type is required");
        return;
    }
    if (strcmp(gt, "authorization_code") != 0 && strcmp(gt, "refresh_token") != 0) {
        finish_error(r, 400, "unsupported_grant_type",
                     "grant_type must be authorization_code or refresh_token");
        return;
    }
    r->after_client = token_after_client;
    client_auth(r);
}

/* ---- /revoke ------------------------------------------------------------------------------- */

static void on_revoked(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                       size_t n)
{
    (void)lens;
    struct oreq *r = resume(arg, err, n, 0);
    if (r == NULL)
        return;
    revoke_locally(r, v, 0, n);
    log_info("oauth.revoked", "client %s revoked a token", r->client_id);
    finish(r, 200, "application/json", "{}", 2);
}

static void on_at_revoked(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                          size_t n)
{
    (void)v, (void)lens;
    struct oreq *r = resume(arg, err, n, 0);
    if (r == NULL)
        return;
    revoke_add(r->o->h.revoked, r->jti, r->at_exp, REVOKE_PATH_LOCAL);
    log_info("oauth.revoked", "client %s revoked access token jti=%s", r->client_id, r->jti);
    finish(r, 200, "application/json", "{}", 2);
}

static void revoke_after_client(struct oreq *r)
{
    const char *tok = oauth_form_get(&r->form, "token");
    if (strchr(tok, '.') != NULL) {
        struct token_claims c = {0};
        enum token_verdict v = token_decode(r->o->h.keys(r->o->h.arg), r->o->cfg->issuer, tok,
                                            strlen(tok), &c);
        /* only a client's own access tokens; anything else is "already invalid" (RFC 7009) */
        if (v != TV_ACTIVE || c.kind != TOKEN_KIND_OAUTH || strcmp(c.client_id, r->client_id) != 0) {
            token_claims_deinit(&c);
            finish(r, 200, "application/json", "{}", 2);
            return;
        }
        snprintf(r->jti, sizeof(r->jti), "%s", c.jti);
        r->at_exp = c.exp;
        token_claims_deinit(&c);
        oauth_store_jti_revoke(r->o->h.store, r->jti, r->at_exp, clock_now_ms(), on_at_revoked, r);
        return;
    }
    char digest[OAUTH_HEX_LEN + 1];
    oauth_digest_hex(tok, strlen(tok), digest);
    oauth_store_refresh_revoke(r->o->h.store, digest, r->client_id, clock_now_ms(), on_revoked, r);
}

static void do_revoke(struct oreq *r)
{
    if (!content_type_is(r->http, "application/x-www-form-urlencoded") ||
        !parse_body_form(r, &r->form)) {
        finish_error(r, 400, "invalid_request",
                     r->form.why[0] ? r->form.why
                                    : "send the parameters as application/x-www-form-urlencoded");
        return;
    }
    if (oauth_form_get(&r->form, "token") == NULL) {
        finish_error(r, 400, "invalid_request", "token is required");
        return;
    }
    r->after_client = revoke_after_client;
    client_auth(r);
}

/* ---- /introspect ---------------------------------------------------------------------------- */

static void introspect_after_auth(struct oreq *r)
{
    const struct p2a_config *cfg = r->o->cfg;
    const char *tok = oauth_form_get(&r->form, "token");
    const char *res = oauth_form_get(&r->form, "resource");
    struct introspector x = {.cfg = cfg, .keys = r->o->h.keys(r->o->h.arg),
                             .revoked = r->o->h.revoked};
    struct introspection in;
    if (introspect(&x, tok ? tok : "", tok ? strlen(tok) : 0, TOKEN_KIND_NONE, res, clock_now(),
                   &in) != P2A_OK) {
        introspection_deinit(&in);
        finish_error(r, 503, "temporarily_unavailable",
                     "revocation list is not in sync with Redis; refusing to answer");
        return;
    }
    /* RFC 7662 4: a client learns only about tokens issued to it */
    const struct token_claims *cl = in.claims;
    if (cl == NULL || (r->client != NULL && strcmp(cl->client_id, r->client_id) != 0)) {
        introspection_deinit(&in);
        finish_json(r, 200, "{\"active\":false}");
        return;
    }
    const struct token_claims *c = cl;
    json_t *aud = json_array();
    const char *a = c->aud;
    for (size_t i = 0; i < c->naud; i++, a = token_next_aud(a))
        json_array_append_new(aud, json_string(a));
    json_t *j = json_pack("{s:b, s:s, s:s, s:s, s:I, s:I, s:s, s:o, s:s, s:s}", "active", 1,
                          "token_type", "Bearer", "sub", c->sub, "iss", cfg->issuer, "exp",
                          (json_int_t)c->exp, "iat", (json_int_t)c->iat, "jti", c->jti, "aud", aud,
                          "scope", c->scope, "token_use",
                          c->kind == TOKEN_KIND_PAT ? "pat" : "access");
    if (c->client_id[0])
        json_object_set_new(j, "client_id", json_string(c->client_id));
    if (c->name[0])
        json_object_set_new(j, "pat_name", json_string(c->name));
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    introspection_deinit(&in);
    finish_json(r, 200, s ? s : "{\"active\":false}");
    free(s);
}

/* After client_auth: a public client has no credentials to introspect with. */
static void introspect_confidential(struct oreq *r)
{
    const char *method =
        json_string_value(json_object_get(r->client, "token_endpoint_auth_method"));
    if (oauth_auth_method_parse(method) == OAUTH_AUTH_NONE) {
        finish_error(r, 401, "invalid_client", "a public client may not introspect tokens");
        return;
    }
    introspect_after_auth(r);
}

static void do_introspect(struct oreq *r)
{
    if (!content_type_is(r->http, "application/x-www-form-urlencoded") ||
        !parse_body_form(r, &r->form)) {
        finish_error(r, 400, "invalid_request",
                     r->form.why[0] ? r->form.why
                                    : "send the parameters as application/x-www-form-urlencoded");
        return;
    }
    size_t klen;
    const char *key = oauth_bearer(req_header(r->http, "Authorization"), &klen);
    if (key != NULL) {
        if (svckeys_check(r->o->h.svckeys, key, klen, NULL) == SVC_ROLE_NONE) {
            finish_error(r, 401, "invalid_client", "unknown service key");
            return;
        }
        introspect_after_auth(r);
        return;
    }
    /* otherwise only a confidential client, with its secret (Basic or in the form) */
    const char *authz = req_header(r->http, "Authorization");
    bool basic = authz != NULL && strncasecmp(authz, "Basic ", 6) == 0;
    if (authz != NULL ? !basic : oauth_form_get(&r->form, "client_secret") == NULL) {
        finish_error(r, 401, "invalid_client",
                     "authenticate with a service key (Bearer) or a confidential client's "
                     "credentials");
        return;
    }
    r->after_client = introspect_confidential;
    client_auth(r);
}

/* ---- routing ------------------------------------------------------------------------------ */

static void preflight(struct oauth_http *o, struct evhttp_request *http, enum ep ep)
{
    add_header(http, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    add_header(http, "Access-Control-Allow-Headers",
               "Authorization, Content-Type, MCP-Protocol-Version, Accept");
    add_header(http, "Access-Control-Max-Age", "86400");
    send_raw(o, http, ep, 204, NULL, "", 0);
}

static void method_not_allowed(struct oauth_http *o, struct evhttp_request *http, enum ep ep,
                               const char *allow)
{
    add_header(http, "Allow", allow);
    const char *e = "{\"error\":\"invalid_request\",\"error_description\":\"method not allowed\"}";
    send_raw(o, http, ep, 405, "application/json", e, strlen(e));
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
        {"/register", EP_REGISTER, false, do_register},
        {"/authorize", EP_AUTHORIZE, true, do_authorize},
        {"/login", EP_LOGIN, false, do_login},
        {"/consent", EP_CONSENT, false, do_consent},
        {"/token", EP_TOKEN, false, do_token},
        {"/revoke", EP_REVOKE, false, do_revoke},
        {"/introspect", EP_INTROSPECT, false, do_introspect},
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
            send_raw(o, http, ep, 200, "application/json", o->as_meta, strlen(o->as_meta));
        } else if (ep == EP_PRM) {
            serve_prm(o, http, suffix);
        } else if (ep == EP_JWKS) {
            char *j = keys_jwks(o->h.keys(o->h.arg));
            add_header(http, "Cache-Control", "public, max-age=60");
            send_raw(o, http, ep, 200, "application/json", j, strlen(j));
            free(j);
        } else {
            const char *e = "{\"error\":\"not_found\",\"error_description\":\"this server "
                            "publishes only RFC 8414 and RFC 9728 metadata\"}";
            send_raw(o, http, ep, 404, "application/json", e, strlen(e));
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
    o->as_meta = build_as_meta(cfg);
    o->issuer_path = url_path(cfg->issuer);
    o->secure = strncmp(cfg->issuer, "https://", 8) == 0;
    o->session_cookie = o->secure ? "__Host-p2a_session" : "p2a_session";
    o->csrf_cookie = o->secure ? "__Host-p2a_csrf" : "p2a_csrf";
    if (o->as_meta == NULL) {
        oauth_http_free(o);
        return NULL;
    }
    return o;
}

void oauth_http_free(struct oauth_http *o)
{
    if (o == NULL)
        return;
    for (struct oreq *r = o->pending; r != NULL; r = r->next) {
        r->http = NULL; /* its store callback frees it */
        r->o = NULL;
    }
    free(o->as_meta);
    free(o->slots);
    free(o);
}

void oauth_http_metrics(const struct oauth_http *o, struct mbuf *out)
{
    mbuf_printf(out, "# HELP p2a_oauth_requests_total OAuth endpoint answers, by endpoint and "
                     "status.\n# TYPE p2a_oauth_requests_total counter\n");
    for (int e = 0; e < EP_COUNT; e++)
        for (int i = 0; i < STATUS_SLOTS; i++)
            if (o->counts[e][i] > 0) {
                char code[8];
                snprintf(code, sizeof(code), "%d", statuses[i]);
                mbuf_printf(out, "p2a_oauth_requests_total{endpoint=\"%s\",code=\"%s\"} %llu\n",
                            ep_names[e], statuses[i] ? code : "other",
                            (unsigned long long)o->counts[e][i]);
            }
}
