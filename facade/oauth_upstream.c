/* oauth_upstream.c -- the upstream OpenID Connect provider's side of a sign-in
 * (PIPE2_AUTH_UPSTREAM_ISSUER), instead of, or beside, local accounts. oauth_signin.c decides
 * when a person goes there and makes the session once they are back; this file talks to the
 * provider and checks what it says.
 *
 * 1. oauth_upstream_begin(r), r->web.query the authorization request a person is signing in
 *    for (at most UPSTREAM_QUERY_MAX bytes): the provider's discovery document (cached,
 *    oauth_docs.c), then a fresh state, nonce and PKCE verifier. They and the request go into
 *    a sealed cookie (core/seal.c: AES-256-GCM under a key derived with HKDF from the signing
 *    key that signs now, named by its kid; it expires in 10 minutes): starting a sign-in writes
 *    nothing to Redis, so anonymous starts can neither fill it nor be rate limited into locking
 *    others out. 302 to the provider.
 * 2. oauth_upstream_finish(r, signed_in), for GET /callback/upstream?code&state[&iss]: the
 *    cookie must open and be within its 10 minutes, and the state must be the cookie's (a state
 *    from another browser is refused); the code is exchanged at the token endpoint
 *    (client_secret_basic, or private_key_jwt with our signing key when no secret is set; the
 *    PKCE verifier) by the operator's fetcher (libcurl on this loop, bounded in time and size);
 *    the ID token is checked completely (core/oidc.c) against the provider's key set, fetched
 *    once more when it names a key the set lacks (rotation); the configured limits (email
 *    domain, required claim); the sign-in marked as finished in Redis (a replayed callback
 *    finds the mark: written only once the provider's ID token was good, never by an anonymous
 *    client); then signed_in(r) with the person and the request they signed in for. Every
 *    refusal is a page that says why; nothing is issued, and no secret is logged.
 */
#include "oauth_internal.h"

#include <openssl/evp.h>

#include "fetch.h"
#include "jws.h"
#include "oidc.h"
#include "seal.h"

static void upstream_error(struct oreq *r, int status, const char *why)
{
    char text[320];
    snprintf(text, sizeof(text), "Signing in with your organization's account did not work: %s",
             why);
    log_info("oauth.upstream_refused", "upstream sign-in from %s refused: %s", r->addr, why);
    oreq_page_error(r, status, "Sign-in failed", text);
}

static const char *cookie_name(const struct oauth_http *o)
{
    return o->secure ? "__Host-p2a_upstream" : "p2a_upstream";
}

/* ---- the sealed cookie (core/seal.h) --------------------------------------------------------- */

#define UPSTREAM_QUERY_MAX 2560                  /* the authorization request a sign-in carries */
#define SEAL_TEXT_MAX (UPSTREAM_QUERY_MAX + 512) /* the JSON sealed */
/* within the 4096 bytes a browser keeps of a cookie for any query up to UPSTREAM_QUERY_MAX */
#define SEAL_COOKIE_MAX SEAL_LEN(SEAL_TEXT_MAX)
static const char seal_purpose[] = "pipe2-auth upstream sign-in cookie v1";

/* The JSON object a cookie's value seals (new reference), or NULL: malformed, another key's,
 * tampered with. */
static json_t *unseal(const struct keyring *ring, const char *value)
{
    size_t n = 0;
    char *text = seal_open(ring, seal_purpose, value, SEAL_TEXT_MAX, &n);
    if (text == NULL)
        return NULL;
    json_t *obj = oauth_json_object(text, n);
    OPENSSL_cleanse(text, n);
    free(text);
    return obj;
}

/* ---- 1. off to the provider ---------------------------------------------------------------- */

static void on_discovery_for_begin(void *arg, json_t *doc, const char *why)
{
    struct oreq *r = arg;
    if (oreq_orphaned(r))
        return;
    if (doc == NULL) {
        log_warn("oauth.upstream_unavailable", "the upstream provider's discovery: %s", why);
        oreq_page_error(r, 503, "Sign-in is unavailable",
                        "Your organization's sign-in service cannot be reached right now. Try "
                        "again in a moment.");
        return;
    }
    const struct p2a_config *cfg = r->o->cfg;
    char state[OAUTH_SECRET_LEN + 1], nonce[OAUTH_SECRET_LEN + 1], verifier[OAUTH_SECRET_LEN + 1];
    char challenge[OAUTH_SECRET_LEN + 1], cb[MAX_QUERY];
    if (oauth_random_secret(state) != P2A_OK || oauth_random_secret(nonce) != P2A_OK ||
        oauth_random_secret(verifier) != P2A_OK) {
        oreq_page_error(r, 500, "Something went wrong", "Try again.");
        return;
    }
    oauth_pkce_s256(verifier, challenge);
    snprintf(cb, sizeof(cb), "%s/callback/upstream", cfg->issuer);
    struct mbuf u = {0};
    mbuf_printf(&u, "%s", json_string_value(json_object_get(doc, "authorization_endpoint")));
    url_add_param(&u, "response_type", "code");
    url_add_param(&u, "client_id", cfg->upstream_client_id);
    url_add_param(&u, "redirect_uri", cb);
    url_add_param(&u, "scope", cfg->upstream_scopes);
    url_add_param(&u, "state", state);
    url_add_param(&u, "nonce", nonce);
    url_add_param(&u, "code_challenge", challenge);
    url_add_param(&u, "code_challenge_method", "S256");
    json_t *rec =
        json_pack("{s:s, s:s, s:s, s:s, s:I}", "state", state, "q", r->web.query, "nonce", nonce,
                  "verifier", verifier, "exp", (json_int_t)clock_now() + OAUTH_UPSTREAM_TTL_S);
    char *value = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    char *sealed =
        value ? seal_text(r->o->h.keys(r->o->h.arg), seal_purpose, value, SEAL_TEXT_MAX) : NULL;
    OPENSSL_cleanse(verifier, sizeof(verifier));
    OPENSSL_cleanse(nonce, sizeof(nonce));
    if (value != NULL) {
        OPENSSL_cleanse(value, strlen(value));
        free(value);
    }
    if (sealed == NULL) {
        OPENSSL_cleanse(u.s, u.len);
        mbuf_free(&u);
        oreq_page_error(r, 500, "Something went wrong", "Try again.");
        return;
    }
    oreq_set_cookie(r, cookie_name(r->o), sealed, OAUTH_UPSTREAM_TTL_S);
    free(sealed);
    oh_add_header(r->http, "Location", u.s);
    OPENSSL_cleanse(u.s, u.len); /* its state */
    mbuf_free(&u);
    oreq_finish(r, 302, NULL, "", 0);
}

static void discovery(struct oreq *r, oauth_doc_cb cb)
{
    oauth_docs_get(r->o->docs, DOC_PROVIDER, r->o->provider_meta_url, NULL, cb, r);
}

void oauth_upstream_begin(struct oreq *r)
{
    if (strlen(r->web.query) > UPSTREAM_QUERY_MAX) {
        oreq_page_error(r, 400, "Invalid request",
                        "The application's request is too long to sign in with your "
                        "organization's account. Go back to the application and start again.");
        return;
    }
    discovery(r, on_discovery_for_begin);
}

/* ---- 2. back from the provider ------------------------------------------------------------- */

static void on_marked(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)value;
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    if (code != 1) {
        upstream_error(r, 400,
                       "this sign-in link was used already. Go back to the application and "
                       "start again.");
        return;
    }
    r->web.signin.signed_in(r);
}

static void person_known(struct oreq *r, json_t *claims)
{
    const struct p2a_config *cfg = r->o->cfg;
    const char *refused = oidc_allowed(cfg, claims);
    if (refused != NULL) {
        log_info("oauth.upstream_refused", "upstream sign-in from %s refused by the limits",
                 r->addr);
        oreq_page_error(r, 403, "You cannot sign in here", refused);
        return;
    }
    if (!oidc_user_id(cfg, claims, r->web.user_id, sizeof(r->web.user_id)) ||
        validate_user_id(r->web.user_id) != NULL) {
        upstream_error(r, 502, "your account's identifier at the provider is too long");
        return;
    }
    oidc_display_name(cfg, claims, r->web.username, sizeof(r->web.username));
    const char *q = json_string_value(json_object_get(r->web.signin.pending, "q"));
    r->web.query = xstrdup(q ? q : ""); /* what the sign-in was for */
    oauth_store_upstream_once(r->o->h.store, r->web.signin.state_digest, OAUTH_UPSTREAM_TTL_S,
                              on_marked, r);
}

bool oreq_provider_keys_again(struct oreq *r, struct oreq_provider *p, bool unknown_key,
                              oauth_doc_cb cb)
{
    if (!unknown_key || p->refetched)
        return false;
    p->refetched = true;
    const char *uri = json_string_value(json_object_get(p->doc, "jwks_uri"));
    return oauth_docs_keys_again(r->o->docs, uri, cb, r);
}

static void on_keys(void *arg, json_t *jwks, const char *why);

static void check_id_token(struct oreq *r, json_t *jwks)
{
    const struct p2a_config *cfg = r->o->cfg;
    struct oidc_expect x = {.issuer = cfg->upstream_issuer,
                            .client_id = cfg->upstream_client_id,
                            .nonce =
                                json_string_value(json_object_get(r->web.signin.pending, "nonce")),
                            .now = clock_now(),
                            .skew_s = cfg->clock_skew_s};
    char why[160];
    json_t *claims = NULL;
    enum oidc_result rc =
        oidc_id_token_check(r->web.signin.id_token, jwks, &x, &claims, why, sizeof(why));
    if (oreq_provider_keys_again(r, &r->web.signin.provider, rc == OIDC_UNKNOWN_KEY, on_keys))
        return;
    if (rc != OIDC_OK) {
        upstream_error(r, 400, why);
        return;
    }
    person_known(r, claims);
    json_decref(claims);
}

static void on_keys(void *arg, json_t *jwks, const char *why)
{
    struct oreq *r = arg;
    if (oreq_orphaned(r))
        return;
    if (jwks == NULL) {
        log_warn("oauth.upstream_unavailable", "the upstream provider's keys: %s", why);
        upstream_error(r, 502, "the provider's keys could not be read");
        return;
    }
    check_id_token(r, jwks);
}

static void on_token(void *arg, const struct fetch_result *res)
{
    struct oreq *r = arg;
    if (oreq_orphaned(r))
        return;
    json_t *body = res->body ? oauth_json_object(res->body, res->len) : NULL;
    const char *err = json_string_value(json_object_get(body, "error"));
    const char *idt = json_string_value(json_object_get(body, "id_token"));
    if (res->why != NULL || idt == NULL || strlen(idt) > JWS_MAX_LEN) {
        char why[160];
        snprintf(why, sizeof(why), "the provider did not exchange the code (%.40s)",
                 err ? err : (res->why ? res->why : "its answer has no ID token"));
        json_decref(body);
        upstream_error(r, 502, why);
        return;
    }
    r->web.signin.id_token = xstrdup(idt);
    json_decref(body);
    const char *uri = json_string_value(json_object_get(r->web.signin.provider.doc, "jwks_uri"));
    oauth_docs_get(r->o->docs, DOC_PROVIDER_JWKS, uri, NULL, on_keys, r);
}

/* Our client authentication at the provider: client_secret_basic (RFC 6749 2.3.1: id and
 * secret each form-encoded first) into *authorization, or without a secret private_key_jwt
 * (RFC 7523 2.2: an assertion signed with our signing key, whose public half the provider
 * reads at <issuer>/jwks.json) added to form. false when the assertion cannot be signed. */
static bool client_auth(struct oreq *r, const char *token_endpoint, struct mbuf *form,
                        char **authorization)
{
    const struct p2a_config *cfg = r->o->cfg;
    *authorization = NULL;
    if (cfg->upstream_client_secret == NULL || cfg->upstream_client_secret[0] == '\0') {
        char jti[OAUTH_SECRET_LEN + 1];
        if (oauth_random_secret(jti) != P2A_OK)
            return false;
        int64_t now = clock_now();
        json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss", cfg->upstream_client_id,
                              "sub", cfg->upstream_client_id, "aud", token_endpoint, "jti", jti,
                              "iat", (json_int_t)now, "exp", (json_int_t)now + 60);
        char *claims = json_dumps(c, JSON_COMPACT);
        json_decref(c);
        char *jws = claims ? token_sign_jws(r->o->h.keys(r->o->h.arg), "JWT", claims) : NULL;
        free(claims);
        if (jws == NULL)
            return false;
        url_add_param(form, "client_assertion_type",
                      "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
        url_add_param(form, "client_assertion", jws);
        free(jws);
        return true;
    }
    struct mbuf cred = {0};
    url_encode(&cred, cfg->upstream_client_id);
    mbuf_printf(&cred, ":");
    url_encode(&cred, cfg->upstream_client_secret);
    size_t enc_len = 4 * ((cred.len + 2) / 3);
    char *enc = xmalloc(enc_len + 1);
    *authorization = xmalloc(enc_len + 7);
    EVP_EncodeBlock((unsigned char *)enc, (const unsigned char *)cred.s, (int)cred.len);
    snprintf(*authorization, enc_len + 7, "Basic %s", enc);
    OPENSSL_cleanse(enc, enc_len);
    OPENSSL_cleanse(cred.s, cred.len);
    free(enc);
    mbuf_free(&cred);
    return true;
}

/* The token request: the code with the verifier, and our client authentication. */
static void exchange(struct oreq *r, const char *code)
{
    const struct p2a_config *cfg = r->o->cfg;
    const char *endpoint =
        json_string_value(json_object_get(r->web.signin.provider.doc, "token_endpoint"));
    struct mbuf form = {0};
    char cb[MAX_QUERY], *authorization = NULL;
    snprintf(cb, sizeof(cb), "%s/callback/upstream", cfg->issuer);
    url_add_param(&form, "grant_type", "authorization_code");
    url_add_param(&form, "code", code);
    url_add_param(&form, "redirect_uri", cb);
    url_add_param(&form, "code_verifier",
                  json_string_value(json_object_get(r->web.signin.pending, "verifier")));
    p2a_err rc = P2A_ERR_INTERNAL;
    if (client_auth(r, endpoint, &form, &authorization)) {
        struct fetch_request rq = {.url = endpoint,
                                   .form = form.s + 1, /* past url_add_param's '?' */
                                   .authorization = authorization};
        rc = fetch_start(oauth_docs_provider_fetcher(r->o->docs), &rq, on_token, r, NULL);
    }
    OPENSSL_cleanse(form.s, form.len);
    mbuf_free(&form);
    if (authorization != NULL) {
        OPENSSL_cleanse(authorization, strlen(authorization));
        free(authorization);
    }
    if (rc == P2A_ERR_INTERNAL)
        oreq_page_error(r, 500, "Something went wrong", "Try again.");
    else if (rc != P2A_OK)
        oreq_page_error(r, 503, "Sign-in is busy",
                        "Too many sign-ins are in progress. Try again in a moment.");
}

static void on_discovery_for_callback(void *arg, json_t *doc, const char *why)
{
    struct oreq *r = arg;
    if (oreq_orphaned(r))
        return;
    if (doc == NULL) {
        log_warn("oauth.upstream_unavailable", "the upstream provider's discovery: %s", why);
        upstream_error(r, 503, "the provider cannot be reached right now");
        return;
    }
    r->web.signin.provider.doc = json_incref(doc);
    exchange(r, oauth_form_get(&r->form, "code"));
}

void oauth_upstream_finish(struct oreq *r, void (*signed_in)(struct oreq *r))
{
    r->web.signin.signed_in = signed_in;
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->http));
    if (q == NULL || strlen(q) > MAX_QUERY || oauth_form_parse(q, strlen(q), &r->form) != P2A_OK) {
        upstream_error(r, 400, "the provider's answer is malformed");
        return;
    }
    const char *state = oauth_form_get(&r->form, "state");
    const char *code = oauth_form_get(&r->form, "code");
    const char *error = oauth_form_get(&r->form, "error");
    const char *iss = oauth_form_get(&r->form, "iss");
    if (r->o->cfg->upstream_issuer == NULL) {
        oreq_page_error(r, 404, "Not found", "This service does not sign in through another.");
        return;
    }
    char *sealed = xmalloc(SEAL_COOKIE_MAX + 1);
    if (oauth_cookie_get(oh_req_header(r->http, "Cookie"), cookie_name(r->o), sealed,
                         SEAL_COOKIE_MAX + 1))
        r->web.signin.pending = unseal(r->o->h.keys(r->o->h.arg), sealed);
    free(sealed);
    const char *mine = json_string_value(json_object_get(r->web.signin.pending, "state"));
    if (state == NULL || mine == NULL || strlen(mine) != OAUTH_SECRET_LEN ||
        !oauth_secret_eq(state, mine)) {
        upstream_error(r, 400,
                       "the answer belongs to a sign-in started elsewhere (another browser, or "
                       "another tab that finished first). Go back to the application and start "
                       "again.");
        return;
    }
    if (iss != NULL && strcmp(iss, r->o->cfg->upstream_issuer) != 0) { /* RFC 9207 */
        upstream_error(r, 400, "the answer came from another provider (iss)");
        return;
    }
    if (error != NULL || code == NULL) {
        char why[160]; /* an RFC 6749 error code is [a-z_]; anything else is not repeated */
        bool plain = error != NULL && strlen(error) <= 48 &&
                     strspn(error, "abcdefghijklmnopqrstuvwxyz_") == strlen(error);
        snprintf(why, sizeof(why), "the provider answered %s",
                 plain ? error : (error ? "with an error" : "without a code"));
        upstream_error(r, 400, why);
        return;
    }
    if (json_integer_value(json_object_get(r->web.signin.pending, "exp")) < clock_now()) {
        upstream_error(r, 400,
                       "this sign-in link is more than 10 minutes old. Go back to the "
                       "application and start again.");
        return;
    }
    oreq_set_cookie(r, cookie_name(r->o), "", 0);
    oauth_digest_hex(state, strlen(state), r->web.signin.state_digest);
    discovery(r, on_discovery_for_callback);
}
