/* oauth_authorize.c -- the authorization endpoint (see oauth_internal.h): /authorize checks the
 * request (the client and its redirect URI first: a problem there is a page, never a redirect;
 * then PKCE S256, resources, scope: redirected back with the error), finds the person's session
 * (oauth_signin.c signs them in first), skips consent the person gave before when it covers
 * the request, or shows the consent page; POST /consent approves or denies; an approval makes
 * a code bound to the client, redirect URI, challenge, resources, scope and person, and
 * redirects to the client with it, state and iss (RFC 9207). */
#include "oauth_internal.h"

/* ---- /authorize, /login, /consent ------------------------------------------------------------ */

static void authz_redirect(struct oreq *r, const char *error, const char *desc, const char *code)
{
    struct mbuf u = {0};
    mbuf_printf(&u, "%s", r->web.authz.redirect_uri);
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
    oreq_finish(r, r->web.authz.mode == AUTHZ_CONSENT ? 303 : 302, NULL, "",
                0); /* after a form: 303 */
}

static void on_code_created(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)code, (void)value;
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    log_info("oauth.authorized", "user %s authorized client %s", r->web.user_id, r->client_id);
    authz_redirect(r, NULL, NULL, r->web.authz.code);
}

static void authz_approved(struct oreq *r)
{
    char code[OAUTH_SECRET_LEN + 1], digest[OAUTH_HEX_LEN + 1];
    if (r->web.authz.mode ==
        AUTHZ_CONSENT) { /* remembered for next time; if the write fails, we ask */
        const char *name = json_string_value(json_object_get(r->client, "client_name"));
        char detail[AUDIT_DETAIL_LEN];
        snprintf(detail, sizeof(detail), "%.60s: scope %.70s; resource %.100s",
                 name && name[0] ? name : "an unnamed application", r->web.authz.scope,
                 r->web.authz.resources);
        oreq_audit(r, (struct audit_in){.type = "consent.granted",
                                        .user_id = r->web.user_id,
                                        .client_id = r->client_id,
                                        .detail = detail});
        oauth_store_grant_approve(r->o->h.store, r->web.user_id, r->client_id, name ? name : "",
                                  r->web.authz.scope, r->web.authz.resources, clock_now(),
                                  r->o->cfg->refresh_token_lifetime_s, store_status_ignore, NULL);
    }
    if (oauth_random_secret(code) != P2A_OK) {
        oreq_page_error(r, 500, "Something went wrong", "Try again.");
        return;
    }
    oauth_digest_hex(code, strlen(code), digest);
    json_t *b = json_pack(
        "{s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:I}", "client_id", r->client_id, "redirect_uri",
        r->web.authz.redirect_uri, "redirect_given", r->web.authz.redirect_given, "challenge",
        oauth_form_get(&r->form, "code_challenge"), "resource", r->web.authz.resources, "scope",
        r->web.authz.scope, "user_id", r->web.user_id, "auth_time", (json_int_t)r->web.auth_time);
    char *binding = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    r->web.authz.code = xstrdup(code);
    OPENSSL_cleanse(code, sizeof(code));
    oauth_store_code_create(r->o->h.store, digest, binding ? binding : "{}", on_code_created, r);
    free(binding);
}

static void show_consent(struct oreq *r);

/* The grant the person approved before: when it covers this request, no consent page. */
static void on_grant(void *arg, p2a_err err, const struct store_grant_approval *g)
{
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    if (g->user_disabled) {
        log_info("oauth.user_disabled", "user %s is disabled: no authorization", r->web.user_id);
        oreq_page_error(r, 403, "Your account is disabled",
                        "An administrator disabled your account: no application can be "
                        "connected to it. Ask them if this is a mistake.");
        return;
    }
    const char *prompt = oauth_form_get(&r->form, "prompt");
    bool ask = !r->o->cfg->remember_consent || (prompt != NULL && strcmp(prompt, "consent") == 0);
    if (!ask && g->scope[0] != '\0' && scope_covers(g->scope, r->web.authz.scope) &&
        scope_covers(g->resource, r->web.authz.resources)) {
        log_info("oauth.consent_remembered", "user %s approved client %s before", r->web.user_id,
                 r->client_id);
        authz_approved(r);
        return;
    }
    show_consent(r);
}

static void on_session_for_page(struct oreq *r, bool found)
{
    if (!found) { /* sign in first */
        const char *prompt = oauth_form_get(&r->form, "prompt");
        if (prompt != NULL && strcmp(prompt, "none") == 0) {
            authz_redirect(r, "login_required", "the user is not signed in", NULL);
            return;
        }
        oauth_signin_ask(r, json_string_value(json_object_get(r->client, "client_name")));
        return;
    }
    /* what the person approved before (remembered consent; prompt=consent, as in OIDC,
     * always asks), and whether they may authorize anything at all */
    oauth_store_grant_get(r->o->h.store, r->web.user_id, r->client_id, on_grant, r);
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
    oauth_session_csrf(r->web.sid, r->web.query, csrf);
    /* a metadata document's host is who vouches for the client: shown beside its name */
    char host[OAUTH_MAX_CLIENT_ID + 1] = "";
    oauth_cimd_host(r->client_id, host, sizeof(host));
    struct page_consent p = {.query = r->web.query,
                             .csrf = csrf,
                             .client_name = name,
                             .client_host = host[0] ? host : NULL,
                             .client_id = r->client_id,
                             .redirect_uri = r->web.authz.redirect_uri,
                             .scope = r->web.authz.scope,
                             .resource = r->web.authz.resources,
                             .username = r->web.username};
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
    if (!oauth_resources_canon(cfg, res ? res : cfg->resources[0], r->web.authz.resources,
                               sizeof(r->web.authz.resources))) {
        authz_redirect(r, "invalid_target", "resource is not a server this issuer serves", NULL);
        return;
    }
    if (scope != NULL && scope_check(scope) != NULL) {
        authz_redirect(r, "invalid_scope", "scope is malformed", NULL);
        return;
    }
    const char *registered = json_string_value(json_object_get(r->client, "scope"));
    if (!scope_grant(cfg->scopes, cfg->resource_scopes, registered, scope, r->web.authz.scope,
                     sizeof(r->web.authz.scope))) {
        authz_redirect(r, "invalid_scope", "none of the requested scopes is offered here", NULL);
        return;
    }
    if (r->web.authz.mode == AUTHZ_CONSENT) {
        if (r->web.authz.approve)
            authz_approved(r);
        else
            authz_redirect(r, "access_denied", "the user denied the request", NULL);
        return;
    }
    oauth_session_find(r, on_session_for_page);
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
        r->web.authz.redirect_uri = json_string_value(json_array_get(uris, 0));
    } else {
        json_array_foreach(uris, i, e)
        {
            const char *u = json_string_value(e);
            if (u != NULL && oauth_redirect_uri_match(u, given))
                r->web.authz.redirect_uri = given;
        }
        if (r->web.authz.redirect_uri == NULL) {
            oreq_log_refusal(r, 400, "invalid_request", "an unregistered redirect_uri");
            oreq_page_error(r, 400, "Invalid request",
                            "The address this application asked to send your approval to "
                            "is not one it registered. Nothing was sent.");
            return;
        }
        r->web.authz.redirect_given = true;
    }
    if (r->web.authz.redirect_uri == NULL) {
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
        r->web.query = body;
        e = oauth_query_ok(body) ? oauth_form_parse(body, len, &r->form) : P2A_ERR_INVALID;
    } else {
        const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->http));
        r->web.query = xstrdup(q ? q : "");
        e = oauth_query_ok(r->web.query)
                ? oauth_form_parse(r->web.query, strlen(r->web.query), &r->form)
                : P2A_ERR_INVALID;
    }
    if (e != P2A_OK) {
        oreq_page_error(r, 400, "Invalid request",
                        r->form.why[0] ? r->form.why : "The authorization request is malformed.");
        return;
    }
    r->web.authz.mode = AUTHZ_SHOW;
    authz_start(r);
}

/* POST /consent */

static void on_session_for_consent(struct oreq *r, bool found)
{
    if (!found) {
        oreq_page_error(r, 401, "You are signed out",
                        "Your sign-in has expired. Go back to the application and start again.");
        return;
    }
    if (oauth_form_parse(r->web.query, strlen(r->web.query), &r->form) != P2A_OK) {
        oreq_page_error(r, 400, "Invalid request", "The authorization request is malformed.");
        return;
    }
    authz_start(r);
}

void oauth_do_consent(struct oreq *r)
{
    if (!oauth_read_page_form(r))
        return;
    oauth_session_cookie(r); /* none: the token cannot match */
    if (!oauth_csrf_check(r, r->web.query, "consent",
                          "The approval was not sent from this page, or it is too old. "
                          "Go back to the application and start again."))
        return;
    const char *decision = oauth_form_get(&r->web.post, "decision");
    if (decision == NULL || (strcmp(decision, "approve") != 0 && strcmp(decision, "deny") != 0)) {
        oreq_page_error(r, 400, "Invalid request", "Choose Allow or Deny.");
        return;
    }
    r->web.authz.mode = AUTHZ_CONSENT;
    r->web.authz.approve = strcmp(decision, "approve") == 0;
    oauth_session_find(r, on_session_for_consent);
}
