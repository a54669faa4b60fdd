/* oauth_internal.h -- what the files of the OAuth facade share (facade/oauth_*.c): the
 * module, the endpoint table's row, the request in flight, and each file's entry points.
 *
 * oauth_http.c holds the endpoint table, routes and owns the module; oauth_reply.c the request
 * bookkeeping and every way of answering (oreq_*: JSON, RFC 6749 errors, pages, redirects,
 * cookies; oh_*: the HTTP helpers); oauth_budget.c the reserve of Redis memory; oauth_audit.c
 * the audit events a request emits (oreq_audit). The endpoints live by group: oauth_meta.c (RFC
 * 8414 / 9728 metadata), oauth_client.c (client lookup and authentication, /register),
 * oauth_signin.c (sessions, the login page, /login, /login/upstream, /callback/upstream,
 * /logout), oauth_upstream.c (the upstream provider's side of a sign-in), oauth_authorize.c
 * (/authorize, /consent), oauth_account.c (/account/), oauth_token.c (/token and its table of
 * grants; the other grants in oauth_grant_cc.c, oauth_grant_jag.c, oauth_grant_tx.c),
 * oauth_revoke.c (/revoke, /introspect). Not for other modules: they use oauth_http.h.
 */
#ifndef P2A_OAUTH_INTERNAL_H
#define P2A_OAUTH_INTERNAL_H

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "audit.h"
#include "clients.h"
#include "digest.h"
#include "clock.h"
#include "config.h"
#include "facade_http.h"
#include "keys.h"
#include "log.h"
#include "hashpool.h"
#include "http_reply.h"
#include "introspect.h"
#include "metrics.h"
#include "netaddr.h"
#include "oauth.h"
#include "oauth_docs.h"
#include "pages.h"
#include "revoke.h"
#include "store_clients.h"
#include "store_grants.h"
#include "store_oauth.h"
#include "store_users.h"
#include "svckeys.h"
#include "token.h"
#include "url.h"
#include "validate.h"
#include "xalloc.h"

#define MAX_QUERY 8192

struct oreq;
struct oauth_http;

/* ---- the endpoint table (oauth_http.c) ------------------------------------------------------ */

/* What a request of an endpoint keeps besides the common part: the arm of struct oreq's union
 * it uses (oreq_new initialises it, the request's end releases it). The kinds from OREQ_PAGE
 * on are a person's browser: they all have r->web. */
enum oreq_state {
    OREQ_NONE,     /* answered at once: no request record */
    OREQ_REGISTER, /* r->reg: /register */
    OREQ_TOKENS,   /* r->tok: the client's credentials and its tokens */
    OREQ_PAGE,     /* r->web: a person's browser, no more */
    OREQ_AUTHZ,    /* r->web and r->web.authz: an authorization request */
    OREQ_SIGNIN,   /* r->web and r->web.signin: a sign-in in progress */
    OREQ_ACCOUNT,  /* r->web and r->web.account: the account pages */
};

/* How a row's path matches a request's path. */
enum ep_match {
    EP_EXACT,  /* the path itself */
    EP_DIR,    /* the path, or the path and a '/' */
    EP_BELOW,  /* the path, or anything under it ("/...") */
    EP_ISSUER, /* the path, or the path and the issuer's path (RFC 8414 3.1) */
    EP_PREFIX, /* anything that starts with the path */
};

/* A row's flags. */
#define EP_GET 0x1     /* GET (and HEAD) */
#define EP_POST 0x2    /* POST */
#define EP_CORS 0x4    /* for scripts of any origin: CORS headers and OPTIONS preflight */
#define EP_PAGE 0x8    /* a person's page: a missing Redis is a page too, not JSON */
#define EP_LOGGED 0x10 /* every RFC 6749 error it answers is logged (oreq_log_refusal) */

/* One row: an endpoint, answered either at once by serve (documents) or through a request
 * record by start. Its index in the table is its metrics slot. */
struct oauth_endpoint {
    const char *path;
    enum ep_match match;
    const char *name; /* the label of p2a_oauth_requests_total, and the name in logs */
    unsigned flags;
    enum oreq_state state;
    /* at once: rest is what follows the row's path */
    void (*serve)(struct oauth_http *o, struct evhttp_request *http,
                  const struct oauth_endpoint *ep, const char *rest);
    void (*start)(struct oreq *r); /* answers, now or from a callback, and frees r */
};

#define OAUTH_ENDPOINTS 18 /* the rows of the table (checked at compile time) */
extern const struct oauth_endpoint oauth_endpoints[OAUTH_ENDPOINTS];

/* ---- the module ------------------------------------------------------------------------------ */

struct oauth_http {
    const struct p2a_config *cfg;
    struct facade_hooks h;
    char *as_meta;           /* the RFC 8414 document */
    const char *issuer_path; /* the issuer's path ("" for none), stripped from request paths */
    bool secure;             /* https issuer: Secure, __Host- cookies */
    const char *session_cookie, *csrf_cookie;
    const char *device_cookie; /* a browser the account signed in from (OWASP device cookie) */
    LIST_HEAD(, oreq) pending; /* every request in flight, to orphan at the end */
    uint64_t counts[OAUTH_ENDPOINTS][HTTP_STATUS_SLOTS];
    struct event_base *base;
    struct signin_slot *slots; /* sign-ins between reservation and hash; as many as the pool */
    size_t nslots;
    struct log_limit busy_log, limited_log; /* refused sign-ins: a line a second at most */
    struct oauth_docs *docs;     /* client metadata documents and keys, fetched and cached */
    char *provider_meta_url;     /* the upstream provider's discovery document; NULL: none */
    struct oauth_budget *budget; /* Redis's memory, read on a timer (oauth_budget.c) */
};

/* Sign-ins one address, and one account, may have in progress at once. */
#define SIGNIN_PER_ADDR 4
#define SIGNIN_PER_USER 2

struct signin_slot {
    bool used;
    char addr[NETADDR_MAX];
    char user[OAUTH_MAX_USERNAME + 1];
};

/* ---- a request in flight --------------------------------------------------------------------- */

/* An identity provider's discovery document, and whether its keys were fetched again for the
 * token in hand (oreq_provider_keys_again). */
struct oreq_provider {
    json_t *doc;
    bool refetched;
};

/* The token endpoints' part (OREQ_TOKENS): /token, /revoke, /introspect. */
struct oreq_tokens {
    /* the client's credentials (oauth_client_auth) */
    const char *assertion;            /* a client assertion (private_key_jwt), into r->form */
    struct oauth_assertion signed_by; /* its jti and exp, once verified */
    char secret[OAUTH_SECRET_LEN * 2 + 1];
    bool has_secret;
    void (*after_client)(struct oreq *r); /* next step once the client is authenticated */
    const struct svc_key *caller;         /* /introspect with a service key: its entry */
    /* what is issued, or revoked */
    char fid[OAUTH_SECRET_LEN + 1]; /* the grant's family */
    char new_rt[OAUTH_SECRET_LEN + 1];
    char *access_token;
    char jti[JTI_MAX_LEN + 1];
    int64_t at_exp;
    char granted_scope[SCOPE_MAX_LEN + 1];
    /* what a grant works out (oauth_grant_*.c) */
    char resources[OAUTH_MAX_RESOURCES]; /* client credentials: the audiences */
    char user_id[VALIDATE_USER_ID_MAX + 1], username[OAUTH_MAX_USERNAME + 1]; /* ID-JAG: who */
    struct oreq_provider issuer; /* ID-JAG: the assertion's issuer */
    json_t *claims;              /* ID-JAG: the assertion's claims, once verified */
};

enum authz_mode { AUTHZ_SHOW, AUTHZ_CONSENT };

/* An authorization request being checked (OREQ_AUTHZ): /authorize, /consent. */
struct oreq_authz {
    enum authz_mode mode;
    bool approve;
    const char *redirect_uri; /* into r->form or r->client */
    bool redirect_given;
    char resources[OAUTH_MAX_RESOURCES]; /* configured ones, space-separated (RFC 8707) */
    char scope[SCOPE_MAX_LEN + 1];
    char *code; /* the code, kept until the store has recorded it */
};

/* A sign-in in progress (OREQ_SIGNIN): /login, /callback/upstream. */
struct oreq_signin {
    const char *source;                /* "local" or "upstream": the person's record says */
    int slot;                          /* the sign-in slot held (oauth_signin.c), or -1 */
    char device[OAUTH_SECRET_LEN + 1]; /* /login: the browser's device cookie, or a new one */
    bool device_counted;               /* its own failures counted this attempt */
    bool remember_device;              /* a local sign-in: the cookie is set with the session */
    /* through the upstream provider (oauth_upstream.c) */
    char state_digest[OAUTH_HEX_LEN + 1]; /* the sign-in's state, digested */
    struct oreq_provider provider;        /* its discovery document, its keys fetched again */
    json_t *pending; /* the sign-in in progress, from its sealed cookie: q, nonce, verifier */
    char *id_token;
    void (*signed_in)(struct oreq *r); /* once the provider vouched for the person */
};

/* The account pages' part (OREQ_ACCOUNT). */
struct oreq_account {
    struct mbuf page; /* the page, written part by part as its replies come */
    char jti[JTI_MAX_LEN + 1];
    int64_t exp;
    char *token;                    /* a new PAT, shown once */
    void (*action)(struct oreq *r); /* a form's, once its session and CSRF token are checked */
};

/* A person's browser (OREQ_PAGE and the kinds after it). */
struct oreq_web {
    struct oauth_form post; /* the form posted */
    char *query; /* the authorization request the pages carry (OAUTH_ACCOUNT_QUERY: none) */
    /* the session (oauth_session_find), or the one being made */
    char sid[OAUTH_SECRET_LEN + 1];
    char user_id[VALIDATE_USER_ID_MAX + 1], username[OAUTH_MAX_USERNAME + 1];
    int64_t auth_time;
    void (*after_session)(struct oreq *r, bool found); /* oauth_session_find's next step */
    union {
        struct oreq_authz authz;
        struct oreq_signin signin;
        struct oreq_account account;
    };
};

struct oreq {
    struct oauth_http *o;
    struct evhttp_request *http; /* NULL once orphaned */
    LIST_ENTRY(oreq) link;
    const struct oauth_endpoint *ep;
    char addr[NETADDR_MAX];  /* the client's (netaddr.h) */
    char limit[NETADDR_MAX]; /* what limits per address count it as: its /64 for IPv6 */
    struct oauth_form form;  /* the request's OAuth parameters */
    /* the client it names, once looked up (oreq_client_lookup) */
    char client_id[OAUTH_MAX_CLIENT_ID + 1];
    json_t *client;       /* its record; NULL: none */
    char client_why[192]; /* a metadata document that could not be used: why */
    void (*after_lookup)(struct oreq *r);
    union { /* by r->ep->state */
        struct oauth_client_reg reg;
        struct oreq_tokens tok;
        struct oreq_web web;
    };
};

/* ---- requests and answers (oauth_reply.c) ---------------------------------------------------- */

/* A request record for http at ep (ep->state's part initialised), on o's list. */
struct oreq *oreq_new(struct oauth_http *o, struct evhttp_request *http,
                      const struct oauth_endpoint *ep);
/* At the top of every callback that is not a store one: true when r was orphaned by
 * oauth_http_free() (and is freed now). */
bool oreq_orphaned(struct oreq *r);
/* The start of every store callback: NULL when the request was orphaned (and is freed now) or
 * when Redis failed or answered fewer than need items (and the client was told: a page for an
 * EP_PAGE endpoint, JSON otherwise); otherwise the request to go on with. */
struct oreq *oreq_resume(void *arg, p2a_err err);
void oh_add_header(struct evhttp_request *http, const char *k, const char *v);
const char *oh_req_header(struct evhttp_request *http, const char *name);
bool oh_content_type_is(struct evhttp_request *http, const char *want);
/* The request body, NUL-terminated; the caller frees it. */
char *oh_body(struct evhttp_request *http, size_t *len);
/* Answers http for ep (counted; CORS headers for an EP_CORS one) without a request record. */
void oh_send_raw(struct oauth_http *o, struct evhttp_request *http, const struct oauth_endpoint *ep,
                 int status, const char *ctype, const char *body, size_t len);
/* Answers and frees r. */
void oreq_finish(struct oreq *r, int status, const char *ctype, const char *body, size_t len);
void oreq_json(struct oreq *r, int status, const char *json);
/* An RFC 6749 5.2 error; an EP_LOGGED endpoint's is logged (oreq_log_refusal). */
void oreq_error(struct oreq *r, int status, const char *error, const char *desc);
/* Logs why r's client was refused: at most a line a second per client, whatever is sent. */
void oreq_log_refusal(const struct oreq *r, int status, const char *error, const char *desc);
void oreq_html(struct oreq *r, int status, struct mbuf *page);
/* A page with the one script its CSP pins by script_hash ("sha256-..."). */
void oreq_html_script(struct oreq *r, int status, struct mbuf *page, const char *script_hash);
void oreq_page_error(struct oreq *r, int status, const char *title, const char *text);
void oreq_set_cookie(struct oreq *r, const char *name, const char *value, int max_age);
/* A cookie holding a secret (OAUTH_SECRET_LEN characters) into out; false, out "", when the
 * request has none or another value. */
bool oreq_cookie(struct oreq *r, const char *name, char out[OAUTH_SECRET_LEN + 1]);
/* The body as a form into r->form; false after answering 400 (RFC 6749 JSON) when it is none. */
bool oreq_read_form(struct oreq *r);
/* A page's posted form into r->web.post; false after answering 400 (a page) when it is none. */
bool oreq_read_post(struct oreq *r);

/* ---- the reserve of Redis memory (oauth_budget.c) ------------------------------------------ */

/* About what an anonymous request leaves in Redis, for oauth_budget_allows: a rate limit's
 * two counters; a sign-in attempt's (the account's and the address's); a registered client
 * (its record is refused past OAUTH_CLIENT_RECORD_MAX); a client assertion's jti. */
#define OAUTH_COUNTERS_BYTES 256
#define OAUTH_LOGIN_RECORD_BYTES 512
#define OAUTH_CLIENT_RECORD_MAX 3072
#define OAUTH_ASSERTION_BYTES 128

/* Reads Redis's memory now and then on o->base; stop before the store goes. */
void oauth_budget_start(struct oauth_http *o);
void oauth_budget_stop(struct oauth_http *o);
/* Whether an anonymous request may write about bytes to Redis: false when that would eat into
 * PIPE2_AUTH_REDIS_RESERVE_MB (then answer with oauth_budget_refuse). */
bool oauth_budget_allows(struct oauth_http *o, size_t bytes);
/* 503 with Retry-After: an HTML page (page) or RFC 6749 JSON temporarily_unavailable. */
void oauth_budget_refuse(struct oreq *r, bool page);
void oauth_budget_metrics(const struct oauth_http *o, struct mbuf *out);
/* An audit event from r's client: its address and user agent added (oauth_audit.c). */
void oreq_audit(const struct oreq *r, struct audit_in in);

/* ---- metadata (oauth_meta.c) ----------------------------------------------------------------- */

char *oauth_meta_as(const struct p2a_config *cfg);
void oauth_serve_as_meta(struct oauth_http *o, struct evhttp_request *http,
                         const struct oauth_endpoint *ep, const char *rest);
void oauth_serve_prm(struct oauth_http *o, struct evhttp_request *http,
                     const struct oauth_endpoint *ep, const char *rest);
void oauth_serve_jwks(struct oauth_http *o, struct evhttp_request *http,
                      const struct oauth_endpoint *ep, const char *rest);
void oauth_serve_other(struct oauth_http *o, struct evhttp_request *http,
                       const struct oauth_endpoint *ep, const char *rest);

/* ---- clients (oauth_client.c) ---------------------------------------------------------------- */

/* Looks r->client_id up -- a registered client in Redis, or a metadata document -- then
 * next(r) with r->client set, or NULL when there is none (r->client_why says why for a
 * document). Answers 503 itself when Redis is down. */
void oreq_client_lookup(struct oreq *r, void (*next)(struct oreq *r));
/* The reply of oauth_store_limit_hit(): true to go on; else 429 answered ("too many <what>
 * from <whose>" when the one counted is over, "too many <what>" when everyone is),
 * Retry-After the rest of the window. */
bool oreq_within_limits(struct oreq *r, int64_t over, int64_t retry_after, const char *what,
                        const char *whose);
/* Reads the client's credentials (Basic; client_id and client_secret in the body; or a client
 * assertion) from r->form, looks the client up and calls r->tok.after_client once it is
 * authenticated (OREQ_TOKENS). */
void oauth_client_auth(struct oreq *r);
void oauth_do_register(struct oreq *r);

/* ---- sessions and sign-in (oauth_signin.c) ----------------------------------------------------
 */

/* The "authorization request" of a sign-in for the account pages: it comes back to /account/. */
#define OAUTH_ACCOUNT_QUERY "p2a_return=account"
/* Whether q can be an authorization request carried by the pages: at most MAX_QUERY printable
 * ASCII bytes. */
bool oauth_query_ok(const char *q);
/* A page's form that carries the authorization request (q) into r->web.post and r->web.query;
 * false after answering 400. */
bool oauth_read_page_form(struct oreq *r);
/* The browser's session cookie into r->web.sid ("" and false when it has none). */
bool oauth_session_cookie(struct oreq *r);
/* Looks the browser's session up (its cookie first), then next(r, found): when found,
 * r->web.sid, user_id, username and auth_time are the session's. Answers 503 itself when Redis
 * is down. */
void oauth_session_find(struct oreq *r, void (*next)(struct oreq *r, bool found));
/* A form's CSRF token bound to the session sid and to purpose (the authorization request a
 * consent approves, "logout", "account"): lifted from one form, it serves no other. */
void oauth_session_csrf(const char *sid, const char *purpose, char out[OAUTH_HEX_LEN + 1]);
/* Whether r->web.post's csrf is the token of purpose for r->web.sid (purpose NULL: the login
 * page's, the CSRF cookie's value). Otherwise logs the refusal of this form (a word: "consent"),
 * answers 403 "This form has expired" with text and returns false. */
bool oauth_csrf_check(struct oreq *r, const char *purpose, const char *form, const char *text);
/* A person who must sign in for r->web.query: the login page (client_name: what they sign in
 * to, NULL for "the application"), or the upstream provider when it is the only way in. */
void oauth_signin_ask(struct oreq *r, const char *client_name);
void oauth_do_login(struct oreq *r);
void oauth_do_login_upstream(struct oreq *r);
void oauth_do_upstream_callback(struct oreq *r);
void oauth_do_logout(struct oreq *r);

/* ---- the upstream provider (oauth_upstream.c) ------------------------------------------------ */

/* A token r checks names a key its identity provider's set lacks (unknown_key; the set at p's
 * jwks_uri): fetches the set again, once a request (p->refetched) and at most every
 * OAUTH_PROVIDER_REFETCH_S (oauth_docs_keys_again), and calls cb with it. false when it is not
 * fetched again: the token is then refused. */
bool oreq_provider_keys_again(struct oreq *r, struct oreq_provider *p, bool unknown_key,
                              oauth_doc_cb cb);
/* Sends the person to the upstream provider to sign in for the request in r->web.query. */
void oauth_upstream_begin(struct oreq *r);
/* /callback/upstream (OREQ_SIGNIN): the provider's answer checked, its code exchanged, the ID
 * token checked and the sign-in marked finished; then signed_in(r) with r->web.user_id,
 * username and query set. Every refusal is answered here. */
void oauth_upstream_finish(struct oreq *r, void (*signed_in)(struct oreq *r));

/* ---- the endpoints of a person's browser ---------------------------------------------------- */

void oauth_do_authorize(struct oreq *r); /* oauth_authorize.c */
void oauth_do_consent(struct oreq *r);
void oauth_do_account(struct oreq *r); /* oauth_account.c */
void oauth_do_account_tokens(struct oreq *r);
void oauth_do_account_revoke(struct oreq *r);
void oauth_do_account_disconnect(struct oreq *r);

/* ---- the token endpoints --------------------------------------------------------------------- */

/* Applies the revocations a store script answered (jti, exp pairs from v[from]) to this
 * process's view at once. */
void oauth_revoke_locally(struct oreq *r, const struct revocation *v, size_t n);
void oauth_do_token(struct oreq *r);  /* oauth_token.c */
void oauth_do_revoke(struct oreq *r); /* oauth_revoke.c */
void oauth_do_introspect(struct oreq *r);

/* ---- /token's grants (oauth_token.c holds the table; a grant each in oauth_grant_*.c) ----- */

/* The grant types /token serves with cfg, appended to list (grant_types_supported). */
void oauth_token_grants_json(const struct p2a_config *cfg, json_t *list);
/* Signs r's access token: kind, sub, r->tok.granted_scope, r->client_id, the audiences (the
 * resources, space-separated); sets r->tok.access_token, jti, at_exp. false after answering
 * an error. */
bool oauth_token_sign(struct oreq *r, enum token_kind kind, const char *sub, const char *resources);
/* Answers 200 with r's tokens: the access token, its scope, and r->tok.new_rt as the refresh
 * token when there is one and the client registered the refresh grant. */
void oauth_token_reply(struct oreq *r);
/* The steps of the grants, once r->client is authenticated and has registered the grant
 * (and, for one that needs it, is confidential). Each answers r. */
void oauth_grant_client_credentials(struct oreq *r); /* oauth_grant_cc.c */
void oauth_grant_jwt_bearer(struct oreq *r);         /* oauth_grant_jag.c: ID-JAG */
bool oauth_grant_jwt_bearer_enabled(const struct p2a_config *cfg);
void oauth_grant_token_exchange(struct oreq *r); /* oauth_grant_tx.c: RFC 8693 */
bool oauth_grant_token_exchange_enabled(const struct p2a_config *cfg);

#endif
