/* oauth_authorize.c -- /authorize, the sign-in and consent pages (see oauth_internal.h). */
#include "oauth_internal.h"

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
    oh_add_header(r->http, "Location", u.s);
    if (code == NULL)
        log_info("oauth.authorize_error", "authorization for client %s refused: %s", r->client_id,
                 error);
    OPENSSL_cleanse(u.s, u.len);
    mbuf_free(&u);
    oreq_finish(r, r->ep == EP_AUTHORIZE ? 302 : 303, NULL, "", 0);
}

/* The consent form's CSRF token: bound to the session and to the authorization request
 * being approved, so that a token lifted from one consent page approves nothing else. */
void oauth_session_csrf(const char *sid, const char *query, char out[OAUTH_HEX_LEN + 1])
{
    char qd[OAUTH_HEX_LEN + 1], buf[OAUTH_SECRET_LEN + OAUTH_HEX_LEN + 16];
    oauth_digest_hex(query, strlen(query), qd);
    int n = snprintf(buf, sizeof(buf), "csrf:%s:%s", sid, qd);
    oauth_digest_hex(buf, (size_t)n, out);
}

static bool cookie(struct oreq *r, const char *name, char *out, size_t outlen)
{
    return oauth_cookie_get(oh_req_header(r->http, "Cookie"), name, out, outlen) &&
           strlen(out) == OAUTH_SECRET_LEN;
}

void oauth_show_login(struct oreq *r, int status, const char *client_name, const char *user,
                      const char *message)
{
    char csrf[OAUTH_SECRET_LEN + 1];
    if (!cookie(r, r->o->csrf_cookie, csrf, sizeof(csrf))) {
        if (oauth_random_secret(csrf) != P2A_OK) {
            oreq_page_error(r, 500, "Something went wrong", "Try again.");
            return;
        }
        oreq_set_cookie(r, r->o->csrf_cookie, csrf, 3600);
    }
    const struct p2a_config *cfg = r->o->cfg;
    char provider[256] = "";
    struct url_parts u;
    if (cfg->upstream_issuer != NULL && url_split(cfg->upstream_issuer, &u))
        snprintf(provider, sizeof(provider), "%.*s", (int)u.host_len, u.host);
    struct page_login p = {.query = r->query,
                           .csrf = csrf,
                           .client_name = client_name ? client_name : "the application",
                           .username = user,
                           .message = message,
                           .local = cfg->local_accounts,
                           .provider = provider[0] ? provider : NULL};
    struct mbuf page = {0};
    page_login(&page, &p);
    oreq_html(r, status, &page);
}

static void on_code_created(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                            size_t n)
{
    (void)v, (void)lens;
    struct oreq *r = oreq_resume(arg, err, n, 0);
    if (r == NULL)
        return;
    log_info("oauth.authorized", "user %s authorized client %s", r->user_id, r->client_id);
    authz_redirect(r, NULL, NULL, r->response);
}

static void authz_approved(struct oreq *r)
{
    char code[OAUTH_SECRET_LEN + 1], digest[OAUTH_HEX_LEN + 1];
    if (r->mode == AUTHZ_CONSENT) { /* remembered for next time; if the write fails, we ask */
        const char *name = json_string_value(json_object_get(r->client, "client_name"));
        char detail[AUDIT_DETAIL_LEN];
        snprintf(detail, sizeof(detail), "%.60s: scope %.70s; resource %.100s",
                 name && name[0] ? name : "an unnamed application", r->scope, r->resources);
        oreq_audit(r, (struct audit_in){.type = "consent.granted",
                                        .user_id = r->user_id,
                                        .client_id = r->client_id,
                                        .detail = detail});
        oauth_store_grant_approve(r->o->h.store, r->user_id, r->client_id, name ? name : "",
                                  r->scope, r->resources, clock_now(),
                                  r->o->cfg->refresh_token_lifetime_s, oauth_store_ignore, NULL);
    }
    if (oauth_random_secret(code) != P2A_OK) {
        oreq_page_error(r, 500, "Something went wrong", "Try again.");
        return;
    }
    oauth_digest_hex(code, strlen(code), digest);
    json_t *b =
        json_pack("{s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:I}", "client_id", r->client_id,
                  "redirect_uri", r->redirect_uri, "redirect_given", r->redirect_given, "challenge",
                  oauth_form_get(&r->form, "code_challenge"), "resource", r->resources, "scope",
                  r->scope, "user_id", r->user_id, "auth_time", (json_int_t)r->auth_time);
    char *binding = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    r->response = xstrdup(code);
    OPENSSL_cleanse(code, sizeof(code));
    oauth_store_code_create(r->o->h.store, digest, binding ? binding : "{}", on_code_created, r);
    free(binding);
}

static void show_consent(struct oreq *r);

/* The grant the person approved before: when it covers this request, no consent page. */
static void on_grant(void *arg, p2a_err err, const char *const *v, const size_t *lens, size_t n)
{
    (void)lens;
    struct oreq *r = oreq_resume(arg, err, n, 3);
    if (r == NULL)
        return;
    if (strcmp(v[2], "1") == 0) {
        log_info("oauth.user_disabled", "user %s is disabled: no authorization", r->user_id);
        oreq_page_error(r, 403, "Your account is disabled",
                        "An administrator disabled your account: no application can be "
                        "connected to it. Ask them if this is a mistake.");
        return;
    }
    const char *prompt = oauth_form_get(&r->form, "prompt");
    bool ask = !r->o->cfg->remember_consent || (prompt != NULL && strcmp(prompt, "consent") == 0);
    if (!ask && v[0][0] != '\0' && scope_covers(v[0], r->scope) &&
        scope_covers(v[1], r->resources)) {
        log_info("oauth.consent_remembered", "user %s approved client %s before", r->user_id,
                 r->client_id);
        authz_approved(r);
        return;
    }
    show_consent(r);
}

static void on_session_for_page(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                                size_t n)
{
    (void)lens;
    struct oreq *r = oreq_resume(arg, err, n, 0);
    if (r == NULL)
        return;
    const char *name = json_string_value(json_object_get(r->client, "client_name"));
    if (n < 3) { /* no session (or an expired one): sign in first */
        const char *prompt = oauth_form_get(&r->form, "prompt");
        if (prompt != NULL && strcmp(prompt, "none") == 0) {
            authz_redirect(r, "login_required", "the user is not signed in", NULL);
            return;
        }
        if (!r->o->cfg->local_accounts) { /* the provider is the only way in: no page here */
            oauth_upstream_begin(r);
            return;
        }
        oauth_show_login(r, 200, name, NULL, NULL);
        return;
    }
    snprintf(r->user_id, sizeof(r->user_id), "%s", v[0]);
    snprintf(r->username, sizeof(r->username), "%s", v[1]);
    r->auth_time = strtoll(v[2], NULL, 10);
    /* what the person approved before (remembered consent; prompt=consent, as in OIDC,
     * always asks), and whether they may authorize anything at all */
    oauth_store_grant_get(r->o->h.store, r->user_id, r->client_id, on_grant, r);
}

static void show_consent(struct oreq *r)
{
    const char *name = json_string_value(json_object_get(r->client, "client_name"));
    const char *prompt = oauth_form_get(&r->form, "prompt");
    if (prompt != NULL && strcmp(prompt, "none") == 0) {
        authz_redirect(r, "consent_required", "the user must approve this application", NULL);
        return;
    }
    char csrf[OAUTH_HEX_LEN + 1];
    oauth_session_csrf(r->sid, r->query, csrf);
    /* a metadata document's host is who vouches for the client: shown beside its name */
    char host[OAUTH_MAX_CLIENT_ID + 1] = "";
    oauth_cimd_host(r->client_id, host, sizeof(host));
    struct page_consent p = {.query = r->query,
                             .csrf = csrf,
                             .client_name = name,
                             .client_host = host[0] ? host : NULL,
                             .client_id = r->client_id,
                             .redirect_uri = r->redirect_uri,
                             .scope = r->scope,
                             .resource = r->resources,
                             .username = r->username};
    struct mbuf page = {0};
    page_consent(&page, &p);
    oreq_html(r, 200, &page);
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
    if (!oauth_resources_canon(cfg, res ? res : cfg->resources[0], r->resources,
                               sizeof(r->resources))) {
        authz_redirect(r, "invalid_target", "resource is not a server this issuer serves", NULL);
        return;
    }
    if (scope != NULL && scope_check(scope) != NULL) {
        authz_redirect(r, "invalid_scope", "scope is malformed", NULL);
        return;
    }
    const char *registered = json_string_value(json_object_get(r->client, "scope"));
    if (!scope_grant(cfg->scopes, cfg->resource_scopes, registered, scope, r->scope,
                     sizeof(r->scope))) {
        authz_redirect(r, "invalid_scope", "none of the requested scopes is offered here", NULL);
        return;
    }
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

static void client_for_authz(struct oreq *r)
{
    if (r->client == NULL && r->client_why[0] != '\0' &&
        strncmp(r->client_id, "https://", 8) == 0) {
        char text[320];
        snprintf(text, sizeof(text),
                 "This application's metadata document could not be used: %s. Nothing was "
                 "sent to the application.",
                 r->client_why);
        oreq_log_refusal(r, 400, "invalid_client", r->client_why);
        oreq_page_error(r, 400, "Unknown application", text);
        return;
    }
    if (r->client == NULL) {
        oreq_log_refusal(r, 400, "invalid_client", "unknown client");
        oreq_page_error(r, 400, "Unknown application",
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
            oreq_page_error(r, 400, "Invalid request",
                            "The application did not say where to send your approval "
                            "(redirect_uri is missing).");
            return;
        }
        r->redirect_uri = json_string_value(json_array_get(uris, 0));
    } else {
        json_array_foreach(uris, i, e)
        {
            const char *u = json_string_value(e);
            if (u != NULL && oauth_redirect_uri_match(u, given))
                r->redirect_uri = given;
        }
        if (r->redirect_uri == NULL) {
            oreq_log_refusal(r, 400, "invalid_request", "an unregistered redirect_uri");
            oreq_page_error(r, 400, "Invalid request",
                            "The address this application asked to send your approval to "
                            "is not one it registered. Nothing was sent.");
            return;
        }
        r->redirect_given = true;
    }
    if (r->redirect_uri == NULL) {
        oreq_page_error(r, 400, "Invalid request", "The application's registration is broken.");
        return;
    }
    authz_checks(r);
}

/* Starts checking the authorization request in r->form. */
static void authz_start(struct oreq *r)
{
    const char *cid = oauth_form_get(&r->form, "client_id");
    if (cid == NULL || !oauth_client_id_usable(cid)) {
        oreq_page_error(r, 400, "Unknown application",
                        cid == NULL ? "The request does not name an application (client_id)."
                                    : "This application is not registered with Pipe2.ai.");
        return;
    }
    snprintf(r->client_id, sizeof(r->client_id), "%s", cid);
    oreq_client_lookup(r, client_for_authz);
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

void oauth_do_authorize(struct oreq *r)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(r->http);
    p2a_err e;
    if (cmd == EVHTTP_REQ_POST) {
        if (!oh_content_type_is(r->http, "application/x-www-form-urlencoded")) {
            oreq_page_error(r, 400, "Invalid request", "The request is not a form.");
            return;
        }
        size_t len;
        char *body = oh_body(r->http, &len);
        r->query = body;
        e = query_ok(body) ? oauth_form_parse(body, len, &r->form) : P2A_ERR_INVALID;
    } else {
        const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->http));
        r->query = xstrdup(q ? q : "");
        e = query_ok(r->query) ? oauth_form_parse(r->query, strlen(r->query), &r->form)
                               : P2A_ERR_INVALID;
    }
    if (e != P2A_OK) {
        oreq_page_error(r, 400, "Invalid request",
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

/* A person's record made by their first sign-in (through the provider: nobody made it
 * before) is in the audit trail. Outlives the request. */
struct user_made {
    char user_id[VALIDATE_USER_ID_MAX + 1];
    char addr[NETADDR_MAX];
};

static void on_user_made(void *arg, p2a_err err, const char *const *v, const size_t *lens, size_t n)
{
    (void)lens;
    struct user_made *um = arg;
    if (err == P2A_OK && n >= 1 && strcmp(v[0], "1") == 0)
        audit_emit(&(struct audit_in){.type = "user.created",
                                      .user_id = um->user_id,
                                      .address = um->addr,
                                      .detail = "at their first sign-in"});
    free(um);
}

static void on_session_created(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                               size_t n)
{
    (void)v, (void)lens;
    struct oreq *r = oreq_resume(arg, err, n, 0);
    if (r == NULL)
        return;
    const char *source = r->ep == EP_UPSTREAM_CALLBACK ? "upstream" : "local";
    oreq_set_cookie(r, r->o->session_cookie, r->sid, r->o->cfg->session_lifetime_s);
    if (r->remember_device)
        oreq_set_cookie(r, r->o->device_cookie, r->device, OAUTH_DEVICE_TTL_S);
    /* the person's record: made at the first sign-in if nobody made it before, kept fresh */
    struct user_made *um = xcalloc(1, sizeof(*um));
    snprintf(um->user_id, sizeof(um->user_id), "%s", r->user_id);
    snprintf(um->addr, sizeof(um->addr), "%s", r->addr);
    oauth_store_user_put(r->o->h.store, r->user_id, r->username, source, clock_now(), true,
                         on_user_made, um);
    log_info("oauth.login", "user %s signed in (%s) from %s", r->user_id, source, r->addr);
    oreq_audit(r, (struct audit_in){.type = "signin.succeeded",
                                    .user_id = r->user_id,
                                    .detail = r->ep == EP_UPSTREAM_CALLBACK
                                                  ? "through the organization's provider"
                                                  : "with a password"});
    /* back to what the sign-in was for: the authorization request, or the account pages */
    char loc[MAX_QUERY + 16];
    if (strcmp(r->query, OAUTH_ACCOUNT_QUERY) == 0)
        snprintf(loc, sizeof(loc), "/account/");
    else
        snprintf(loc, sizeof(loc), "/authorize?%s", r->query);
    oh_add_header(r->http, "Location", loc);
    oreq_finish(r, 303, NULL, "", 0);
}

void oauth_sign_in(struct oreq *r, const char *release_addr)
{
    char digest[OAUTH_HEX_LEN + 1];
    if (oauth_random_secret(r->sid) != P2A_OK) {
        oreq_page_error(r, 500, "Something went wrong", "Try again.");
        return;
    }
    oauth_digest_hex(r->sid, strlen(r->sid), digest);
    char device[OAUTH_HEX_LEN + 1] = "";
    if (r->remember_device) {
        if (r->device[0] == '\0' && oauth_random_secret(r->device) != P2A_OK) {
            oreq_page_error(r, 500, "Something went wrong", "Try again.");
            return;
        }
        oauth_digest_hex(r->device, strlen(r->device), device);
    }
    oauth_store_session_create(r->o->h.store, digest, r->user_id, r->username, release_addr, device,
                               clock_now(), r->o->cfg->session_lifetime_s, on_session_created, r);
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
        per_addr += strcmp(o->slots[i].addr, r->limit) == 0;
        per_user += strcmp(o->slots[i].user, r->username) == 0;
    }
    if (free_slot < 0)
        return -2; /* every slot taken: the service is busy */
    if (per_addr >= SIGNIN_PER_ADDR || per_user >= SIGNIN_PER_USER)
        return -1;
    struct signin_slot *sl = &o->slots[free_slot];
    sl->used = true;
    snprintf(sl->addr, sizeof(sl->addr), "%s", r->limit);
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
    oh_add_header(r->http, "Retry-After", ra);
    oauth_show_login(r, status, NULL, r->username, message);
}

/* A failed sign-in in the audit trail: the account's when the username is one, else an
 * anonymous event (aggregated per address and minute). Never the name typed: it may be a
 * password typed in the wrong field. */
static void signin_failed(const struct oreq *r, const char *why)
{
    oreq_audit(r, (struct audit_in){.type = "signin.failed",
                                    .user_id = r->user_id,
                                    .outcome = "failure",
                                    .detail = why});
}

static void on_hashed(void *arg, bool ok)
{
    struct oreq *r = arg;
    signin_release(r);
    if (oreq_orphaned(r))
        return;
    if (!ok || r->user_id[0] == '\0') { /* the failure was counted when it was reserved */
        log_info("oauth.login_failed", "failed sign-in from %s", r->addr);
        signin_failed(r, "wrong username or password");
        oauth_show_login(r, 401, NULL, r->username, "Wrong username or password.");
        return;
    }
    r->remember_device = true;
    /* a browser's own failures reserved nothing at its address or the account */
    oauth_sign_in(r, r->device_counted ? NULL : r->limit);
}

static void on_login_reserved(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                              size_t n)
{
    (void)lens;
    struct oreq *r = arg;
    if (r->http == NULL || err != P2A_OK || n < 4)
        signin_release(r);
    if (r->http != NULL && (err != P2A_OK || n < 4))
        signin_failed(r, "the service was unavailable"); /* a 503 below */
    if ((r = oreq_resume(arg, err, n, 4)) == NULL)
        return;
    long long status = strtoll(v[0], NULL, 10), retry = strtoll(v[3], NULL, 10);
    r->device_counted = n >= 5 && strcmp(v[4], "1") == 0;
    if (status != 0) {
        signin_release(r);
        unsigned long long passed;
        if (log_every_second(&r->o->limited_log, &passed))
            log_warn("oauth.login_rate_limited",
                     "sign-in refused: too many attempts at one account "
                     "(%s, from %s; %llu more since the last line)",
                     status == 1 ? "this address" : "any address", r->addr, passed);
        signin_failed(r, "too many attempts");
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
        signin_failed(r, "sign-in busy");
        show_busy(r, 503, 1, "Sign-in is busy right now. Try again in a moment.");
    }
}

static bool post_form(struct oreq *r)
{
    if (!oh_content_type_is(r->http, "application/x-www-form-urlencoded") ||
        !oreq_parse_body_form(r, &r->post)) {
        oreq_page_error(r, 400, "Invalid request", "The form could not be read.");
        return false;
    }
    const char *q = oauth_form_get(&r->post, "q");
    if (!query_ok(q)) {
        oreq_page_error(r, 400, "Invalid request",
                        "The form lost the application's request. "
                        "Go back to the application and start again.");
        return false;
    }
    r->query = xstrdup(q);
    return true;
}

/* The login page's form, read: its request and its CSRF token (the cookie's). false after
 * answering when either is missing or wrong. */
static bool login_form_ok(struct oreq *r)
{
    if (!post_form(r))
        return false;
    char cookie_csrf[OAUTH_SECRET_LEN + 1];
    const char *csrf = oauth_form_get(&r->post, "csrf");
    if (csrf == NULL || !cookie(r, r->o->csrf_cookie, cookie_csrf, sizeof(cookie_csrf)) ||
        !oauth_secret_eq(csrf, cookie_csrf)) {
        log_warn("oauth.csrf_refused", "sign-in form with a missing or wrong CSRF token from %s",
                 r->addr);
        oreq_page_error(r, 403, "This form has expired",
                        "The sign-in form was not sent from this page, or it is too old. "
                        "Go back to the application and start again.");
        return false;
    }
    return true;
}

/* POST /login/upstream: the login page's "Continue with <provider>". */
void oauth_do_login_upstream(struct oreq *r)
{
    const struct p2a_config *cfg = r->o->cfg;
    if (cfg->upstream_issuer == NULL) {
        oreq_page_error(r, 404, "Not found", "This service does not sign in through another.");
        return;
    }
    if (login_form_ok(r))
        oauth_upstream_begin(r);
}

void oauth_do_login(struct oreq *r)
{
    if (!r->o->cfg->local_accounts) {
        oreq_page_error(r, 404, "Not found",
                        "Signing in with a password is turned off here: use your "
                        "organization's account.");
        return;
    }
    if (!login_form_ok(r))
        return;
    const char *user = oauth_form_get(&r->post, "username");
    const char *pw = oauth_form_get(&r->post, "password");
    if (user == NULL || pw == NULL || oauth_username_check(user) != NULL ||
        strlen(pw) > OAUTH_MAX_PASSWORD) {
        if (user != NULL && strlen(user) <= OAUTH_MAX_USERNAME &&
            oauth_username_check(user) == NULL)
            snprintf(r->username, sizeof(r->username), "%s", user);
        oauth_show_login(r, 401, NULL, r->username[0] ? r->username : NULL,
                         "Wrong username or password.");
        return;
    }
    snprintf(r->username, sizeof(r->username), "%s", user);
    /* the attempt's counters are written before the password is known (unknown usernames
     * too): an anonymous write */
    if (!oauth_budget_allows(r->o, OAUTH_LOGIN_RECORD_BYTES)) {
        oauth_budget_refuse(r, true);
        return;
    }
    int slot = signin_admit(r);
    if (slot == -2) {
        unsigned long long passed;
        if (log_every_second(&r->o->busy_log, &passed))
            log_warn("oauth.login_busy",
                     "sign-in refused: every hashing slot is taken (%llu more since the last "
                     "line)",
                     passed);
        signin_failed(r, "sign-in busy");
        show_busy(r, 503, 1, "Sign-in is busy right now. Try again in a moment.");
        return;
    }
    if (slot < 0) {
        signin_failed(r, "too many sign-ins at once");
        show_busy(r, 429, 1, "Too many sign-ins at once. Try again in a moment.");
        return;
    }
    struct oauth_login_limits lim = {.per_pair = r->o->cfg->login_rate_limit,
                                     .throttle_after = r->o->cfg->login_throttle_after,
                                     .device_failures = r->o->cfg->login_device_failures};
    /* a browser that signed in to this account before is known by its device cookie: only
     * the digest goes to Redis, under the username (another account's cookie is unknown) */
    char device[OAUTH_HEX_LEN + 1] = "";
    if (cookie(r, r->o->device_cookie, r->device, sizeof(r->device)))
        oauth_digest_hex(r->device, strlen(r->device), device);
    else
        r->device[0] = '\0';
    oauth_store_login_reserve(r->o->h.store, r->username, r->limit, device, &lim, clock_now_ms(),
                              on_login_reserved, r);
}

/* POST /consent */

static void on_session_for_consent(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                                   size_t n)
{
    (void)lens;
    struct oreq *r = oreq_resume(arg, err, n, 0);
    if (r == NULL)
        return;
    if (n < 3) {
        oreq_page_error(r, 401, "You are signed out",
                        "Your sign-in has expired. Go back to the application and start again.");
        return;
    }
    snprintf(r->user_id, sizeof(r->user_id), "%s", v[0]);
    snprintf(r->username, sizeof(r->username), "%s", v[1]);
    r->auth_time = strtoll(v[2], NULL, 10);
    if (oauth_form_parse(r->query, strlen(r->query), &r->form) != P2A_OK) {
        oreq_page_error(r, 400, "Invalid request", "The authorization request is malformed.");
        return;
    }
    authz_start(r);
}

void oauth_do_consent(struct oreq *r)
{
    if (!post_form(r))
        return;
    const char *csrf = oauth_form_get(&r->post, "csrf");
    const char *decision = oauth_form_get(&r->post, "decision");
    char want[OAUTH_HEX_LEN + 1], digest[OAUTH_HEX_LEN + 1];
    bool have_session = cookie(r, r->o->session_cookie, r->sid, sizeof(r->sid));
    if (have_session)
        oauth_session_csrf(r->sid, r->query, want);
    if (!have_session || csrf == NULL || !oauth_secret_eq(csrf, want)) {
        log_warn("oauth.csrf_refused", "consent form with a missing or wrong CSRF token from %s",
                 r->addr);
        oreq_page_error(r, 403, "This form has expired",
                        "The approval was not sent from this page, or it is too old. "
                        "Go back to the application and start again.");
        return;
    }
    if (decision == NULL || (strcmp(decision, "approve") != 0 && strcmp(decision, "deny") != 0)) {
        oreq_page_error(r, 400, "Invalid request", "Choose Allow or Deny.");
        return;
    }
    r->mode = AUTHZ_CONSENT;
    r->approve = strcmp(decision, "approve") == 0;
    oauth_digest_hex(r->sid, strlen(r->sid), digest);
    oauth_store_session_get(r->o->h.store, digest, on_session_for_consent, r);
}

/* ---- /logout: ends the browser's session ----------------------------------------------------- */

/* The sign-out form's CSRF token: bound to the session (a page on another site cannot sign a
 * person out, nor keep them signed in). */
#define LOGOUT_CSRF_PURPOSE "logout"

static void show_signed_out(struct oreq *r)
{
    oreq_set_cookie(r, r->o->session_cookie, "", 0);
    struct mbuf page = {0};
    page_logout(&page, NULL, NULL);
    oreq_html(r, 200, &page);
}

static void on_session_for_logout(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                                  size_t n)
{
    (void)lens;
    struct oreq *r = oreq_resume(arg, err, n, 0);
    if (r == NULL)
        return;
    if (n < 3) { /* no session, or an expired one: nothing to end */
        show_signed_out(r);
        return;
    }
    char csrf[OAUTH_HEX_LEN + 1];
    oauth_session_csrf(r->sid, LOGOUT_CSRF_PURPOSE, csrf);
    struct mbuf page = {0};
    page_logout(&page, csrf, v[1]);
    oreq_html(r, 200, &page);
}

static void on_session_deleted(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                               size_t n)
{
    (void)lens;
    struct oreq *r = oreq_resume(arg, err, n, 0);
    if (r == NULL)
        return;
    log_info("oauth.signed_out", "a session ended from %s", r->addr);
    if (n >= 2 && v[1][0] != '\0')
        oreq_audit(r, (struct audit_in){.type = "signout", .user_id = v[1]});
    show_signed_out(r);
}

void oauth_do_logout(struct oreq *r)
{
    char digest[OAUTH_HEX_LEN + 1];
    bool have_session = cookie(r, r->o->session_cookie, r->sid, sizeof(r->sid));
    if (evhttp_request_get_command(r->http) != EVHTTP_REQ_POST) {
        if (!have_session) {
            show_signed_out(r);
            return;
        }
        oauth_digest_hex(r->sid, strlen(r->sid), digest);
        oauth_store_session_get(r->o->h.store, digest, on_session_for_logout, r);
        return;
    }
    if (!oh_content_type_is(r->http, "application/x-www-form-urlencoded") ||
        !oreq_parse_body_form(r, &r->post)) {
        oreq_page_error(r, 400, "Invalid request", "The form could not be read.");
        return;
    }
    if (!have_session) {
        show_signed_out(r);
        return;
    }
    const char *csrf = oauth_form_get(&r->post, "csrf");
    char want[OAUTH_HEX_LEN + 1];
    oauth_session_csrf(r->sid, LOGOUT_CSRF_PURPOSE, want);
    if (csrf == NULL || !oauth_secret_eq(csrf, want)) {
        log_warn("oauth.csrf_refused", "sign-out form with a missing or wrong CSRF token from %s",
                 r->addr);
        oreq_page_error(r, 403, "This form has expired",
                        "The sign-out was not sent from this page. Open /logout and try again.");
        return;
    }
    oauth_digest_hex(r->sid, strlen(r->sid), digest);
    oauth_store_session_delete(r->o->h.store, digest, on_session_deleted, r);
}
