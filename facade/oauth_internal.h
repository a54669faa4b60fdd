/* oauth_internal.h -- what the files of the OAuth facade share (facade/oauth_*.c).
 *
 * oauth_http.c routes and owns the module; oauth_reply.c holds the request bookkeeping and
 * every way of answering (oreq_*: JSON, RFC 6749 errors, pages, redirects; oh_*: the HTTP
 * helpers); the endpoints live by group: oauth_meta.c (RFC 8414 / 9728 metadata, JWKS),
 * oauth_client.c (client authentication, /register), oauth_authorize.c (/authorize, sign-in,
 * consent), oauth_token.c (/token), oauth_revoke.c (/revoke, /introspect). Not for other
 * modules: they use oauth_http.h.
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
#include "oauth_store.h"
#include "pages.h"
#include "revoke.h"
#include "svckeys.h"
#include "token.h"
#include "url.h"
#include "validate.h"
#include "xalloc.h"

#define MAX_QUERY 8192

enum ep {
    EP_AS_META,
    EP_PRM,
    EP_JWKS,
    EP_REGISTER,
    EP_AUTHORIZE,
    EP_LOGIN,
    EP_CONSENT,
    EP_LOGOUT,
    EP_LOGIN_UPSTREAM,
    EP_UPSTREAM_CALLBACK,
    EP_ACCOUNT,
    EP_ACCOUNT_TOKENS,
    EP_ACCOUNT_REVOKE,
    EP_ACCOUNT_DISCONNECT,
    EP_TOKEN,
    EP_REVOKE,
    EP_INTROSPECT,
    EP_WELL_KNOWN_OTHER,
    EP_COUNT
};
extern const char *const ep_names[EP_COUNT];
extern const bool ep_cors[EP_COUNT];

struct oreq;

struct oauth_http {
    const struct p2a_config *cfg;
    struct facade_hooks h;
    char *as_meta;           /* the RFC 8414 document */
    const char *issuer_path; /* the issuer's path ("" for none), stripped from request paths */
    bool secure;             /* https issuer: Secure, __Host- cookies */
    const char *session_cookie, *csrf_cookie;
    const char *device_cookie; /* a browser the account signed in from (OWASP device cookie) */
    LIST_HEAD(, oreq) pending; /* every request in flight, to orphan at the end */
    uint64_t counts[EP_COUNT][HTTP_STATUS_SLOTS];
    struct event_base *base;
    struct signin_slot
        *slots; /* sign-ins between reservation and hash; as many as the pool holds */
    size_t nslots;
    struct log_limit busy_log, limited_log; /* refused sign-ins: a line a second at most */
    struct oauth_docs *docs;     /* client metadata documents and keys, fetched and cached */
    char *provider_meta_url;     /* the upstream provider's discovery document; NULL: none */
    struct oauth_budget *budget; /* Redis's memory, read on a timer (oauth_budget.c) */
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
    LIST_ENTRY(oreq) link;
    enum ep ep;
    char addr[NETADDR_MAX];  /* the client's (netaddr.h) */
    char limit[NETADDR_MAX]; /* what limits per address count it as: its /64 for IPv6 */
    struct oauth_form form;  /* the request's parameters (authorization ones for consent) */
    struct oauth_form post;  /* a form posted to /login or /consent */
    json_t *client;          /* the client's record, once looked up */
    char client_why[192];    /* a metadata document that could not be used: why */
    void (*after_lookup)(struct oreq *r);
    const char *assertion;            /* a client assertion (private_key_jwt), into form */
    struct oauth_assertion signed_by; /* its jti and exp, once verified */
    /* authorization request */
    enum authz_mode mode;
    bool approve;
    const char *redirect_uri; /* into form or client */
    bool redirect_given;
    char resources[OAUTH_MAX_RESOURCES]; /* configured ones, space-separated (RFC 8707) */
    char scope[SCOPE_MAX_LEN + 1];
    char *query; /* the authorization request as a query string */
    /* the signed-in user */
    char user_id[VALIDATE_USER_ID_MAX + 1], username[OAUTH_MAX_USERNAME + 1];
    int64_t auth_time;
    char sid[OAUTH_SECRET_LEN + 1];
    char up_digest[OAUTH_HEX_LEN + 1]; /* an upstream sign-in's state, digested */
    char device[OAUTH_SECRET_LEN + 1]; /* /login: the browser's device cookie, or a new one */
    bool device_counted;               /* its own failures counted this attempt */
    bool remember_device;              /* a local sign-in: the cookie is set with the session */
    /* token endpoint */
    char client_id[OAUTH_MAX_CLIENT_ID + 1];
    char secret[OAUTH_SECRET_LEN * 2 + 1];
    bool has_secret;
    char fid[OAUTH_SECRET_LEN + 1];
    char new_rt[OAUTH_SECRET_LEN + 1];
    char *access_token;
    char jti[JTI_MAX_LEN + 1];
    int64_t at_exp;
    char granted_scope[SCOPE_MAX_LEN + 1];
    void (*after_client)(struct oreq *r); /* next step once the client is authenticated */
    char *response;                       /* a body kept until a store step confirms */
    struct oauth_client_reg reg;          /* /register: the client being stored */
    const struct svc_key *caller;         /* /introspect with a service key: its entry */
    /* upstream sign-in */
    json_t *provider; /* the provider's (or an ID-JAG issuer's) discovery document */
    json_t *pending;  /* the sign-in in progress (q, nonce, verifier), or an ID-JAG's claims */
    bool refetched;   /* the provider's keys were fetched again for this ID token */
    struct mbuf page; /* the account page, written part by part as its replies come */
};

struct oreq *oreq_new(struct oauth_http *o, struct evhttp_request *http, enum ep ep);
bool oreq_orphaned(struct oreq *r);
void oh_add_header(struct evhttp_request *http, const char *k, const char *v);
void oh_send_raw(struct oauth_http *o, struct evhttp_request *http, enum ep ep, int status,
                 const char *ctype, const char *body, size_t len);
void oreq_finish(struct oreq *r, int status, const char *ctype, const char *body, size_t len);
void oreq_json(struct oreq *r, int status, const char *json);
/* An RFC 6749 5.2 error; a /token one is logged (oreq_log_refusal). */
void oreq_error(struct oreq *r, int status, const char *error, const char *desc);
/* Logs why r's client was refused: at most a line a second per client, whatever is sent. */
void oreq_log_refusal(const struct oreq *r, int status, const char *error, const char *desc);
struct oreq *oreq_resume(void *arg, p2a_err err, size_t n, size_t need);
void oreq_html(struct oreq *r, int status, struct mbuf *page);
/* A page with the one script its CSP pins by script_hash ("sha256-..."). */
void oreq_html_script(struct oreq *r, int status, struct mbuf *page, const char *script_hash);
void oreq_page_error(struct oreq *r, int status, const char *title, const char *text);

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
void oreq_set_cookie(struct oreq *r, const char *name, const char *value, int max_age);
const char *oh_req_header(struct evhttp_request *http, const char *name);
/* An audit event from r's client: its address and user agent added (oauth_audit.c). */
void oreq_audit(const struct oreq *r, struct audit_in in);
bool oh_content_type_is(struct evhttp_request *http, const char *want);
char *oh_body(struct evhttp_request *http, size_t *len);
bool oreq_parse_body_form(struct oreq *r, struct oauth_form *f);
/* The body as a form into r->form; false after answering 400 when it is none. */
bool oreq_read_form(struct oreq *r);
/* The reply of oauth_store_limit_hit(): true to go on; else 429 answered ("too many <what>
 * from <whose>" when the one counted is over, "too many <what>" when everyone is),
 * Retry-After the rest of the window. */
bool oreq_within_limits(struct oreq *r, const char *const *v, const char *what, const char *whose);
/* Looks r->client_id up -- a registered client in Redis, or a metadata document -- then
 * next(r) with r->client set, or NULL when there is none (r->client_why says why for a
 * document). Answers 503 itself when Redis is down. */
void oreq_client_lookup(struct oreq *r, void (*next)(struct oreq *r));
char *oauth_meta_as(const struct p2a_config *cfg);
void oauth_serve_prm(struct oauth_http *o, struct evhttp_request *http, const char *suffix);
void oauth_client_auth(struct oreq *r);
void oauth_do_register(struct oreq *r);
void oauth_do_authorize(struct oreq *r);
void oauth_do_login(struct oreq *r);
void oauth_do_consent(struct oreq *r);
void oauth_do_logout(struct oreq *r);
/* The "authorization request" of a sign-in for the account pages: it comes back to /account/. */
#define OAUTH_ACCOUNT_QUERY "p2a_return=account"
/* Signs r->user_id in (r->username the name shown): a session and its cookie, the person's
 * record kept fresh (source local, or upstream for /callback/upstream), then 303 to what
 * r->query was for: /authorize?<query>, or /account/. release_addr: a local sign-in's
 * reservation to release (oauth_store_session_create), NULL for none. With
 * r->remember_device, the browser's device cookie (r->device) is remembered for the account
 * and set. */
void oauth_sign_in(struct oreq *r, const char *release_addr);
/* The login page for r->query (client_name: what the person signs in to, NULL for "the
 * application"; user and message after a failed attempt, else NULL). */
void oauth_show_login(struct oreq *r, int status, const char *client_name, const char *user,
                      const char *message);
/* A form's CSRF token bound to the session sid and to purpose (the authorization request a
 * consent approves, "logout", "account"): lifted from one form, it serves no other. */
void oauth_session_csrf(const char *sid, const char *purpose, char out[OAUTH_HEX_LEN + 1]);
void oauth_do_account(struct oreq *r);
/* A token r checks names a key its identity provider's set lacks (unknown_key; the set at
 * r->provider's jwks_uri): fetches the set again, once a request (r->refetched) and at most
 * every OAUTH_PROVIDER_REFETCH_S (oauth_docs_keys_again), and calls cb with it. false when it
 * is not fetched again: the token is then refused. */
bool oreq_provider_keys_again(struct oreq *r, bool unknown_key, oauth_doc_cb cb);
/* Sends the person to the upstream provider to sign in for the request in r->query. */
void oauth_upstream_begin(struct oreq *r);
void oauth_do_login_upstream(struct oreq *r);
void oauth_do_upstream_callback(struct oreq *r);
void oauth_revoke_locally(struct oreq *r, const char *const *v, size_t from, size_t n);
void oauth_do_token(struct oreq *r);

/* ---- /token's grants (oauth_token.c holds the table; a grant each in oauth_grant_*.c) ----- */

/* The grant types /token serves with cfg, appended to list (grant_types_supported). */
void oauth_token_grants_json(const struct p2a_config *cfg, json_t *list);
/* Signs r's access token: kind, sub, r->granted_scope, r->client_id, the audiences (the
 * resources, space-separated); sets r->access_token, r->jti, r->at_exp. false after
 * answering an error. */
bool oauth_token_sign(struct oreq *r, enum token_kind kind, const char *sub, const char *resources);
/* Answers 200 with r's tokens: the access token, its scope, and r->new_rt as the refresh
 * token when there is one and the client registered the refresh grant. */
void oauth_token_reply(struct oreq *r);
/* The steps of the grants, once r->client is authenticated and has registered the grant
 * (and, for one that needs it, is confidential). Each answers r. */
void oauth_grant_client_credentials(struct oreq *r); /* oauth_grant_cc.c */
void oauth_grant_jwt_bearer(struct oreq *r);         /* oauth_grant_jag.c: ID-JAG */
bool oauth_grant_jwt_bearer_enabled(const struct p2a_config *cfg);
void oauth_grant_token_exchange(struct oreq *r); /* oauth_grant_tx.c: RFC 8693 */
bool oauth_grant_token_exchange_enabled(const struct p2a_config *cfg);
void oauth_do_revoke(struct oreq *r);
void oauth_do_introspect(struct oreq *r);

#endif
