/* oauth_signin.c -- a person's session in the browser: found, made and ended; the login page
 * and the ways in (see oauth_internal.h).
 *
 * Every page that needs the person asks here: oauth_session_find() reads the session cookie
 * and looks the session up (one place, for /authorize, /consent, /logout and the account
 * pages), oauth_csrf_check() checks a posted form's CSRF token (one place, for every form),
 * and oauth_signin_ask() sends someone who is not signed in the one way in there is: the
 * login page, or the upstream provider when local accounts are off.
 *
 * The ways in:
 *   POST /login           a local account's password: admitted in process (as many sign-ins as
 *                         the hash pool can queue, SIGNIN_PER_ADDR an address and
 *                         SIGNIN_PER_USER an account at once), the attempt reserved in Redis
 *                         (the rate limits and the device cookie, oauth_store_login_reserve),
 *                         the password checked on the hash pool (an unknown user costs the
 *                         same), then a session.
 *   POST /login/upstream  the login page's "Continue with <provider>": oauth_upstream_begin().
 *   GET  /callback/upstream  the provider's answer, checked by oauth_upstream_finish(); then a
 *                         session.
 *   GET/POST /logout      the sign-out page, and the session ended.
 * A session made here sends the person back to what the sign-in was for (r->web.query: an
 * authorization request, or the account pages). Session ids, CSRF tokens and device cookies
 * are secrets: only their SHA-256 digests go to Redis, and none reaches a log.
 *
 * Runs on the facade's loop; a request's sign-in slot is released when the hash answers.
 */
#include "oauth_internal.h"

/* ---- the session, and the forms' CSRF tokens ------------------------------------------------ */

bool oauth_session_cookie(struct oreq *r)
{
    return oreq_cookie(r, r->o->session_cookie, r->web.sid);
}

static void on_session(void *arg, p2a_err err, const struct store_session *s)
{
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    if (s == NULL) { /* no session, or an expired one */
        r->web.after_session(r, false);
        return;
    }
    snprintf(r->web.user_id, sizeof(r->web.user_id), "%s", s->user_id);
    snprintf(r->web.username, sizeof(r->web.username), "%s", s->username);
    r->web.auth_time = s->auth_time;
    r->web.after_session(r, true);
}

void oauth_session_find(struct oreq *r, void (*next)(struct oreq *r, bool found))
{
    if (!oauth_session_cookie(r)) {
        next(r, false);
        return;
    }
    char digest[OAUTH_HEX_LEN + 1];
    oauth_digest_hex(r->web.sid, strlen(r->web.sid), digest);
    r->web.after_session = next;
    oauth_store_session_get(r->o->h.store, digest, on_session, r);
}

void oauth_session_csrf(const char *sid, const char *purpose, char out[OAUTH_HEX_LEN + 1])
{
    char qd[OAUTH_HEX_LEN + 1], buf[OAUTH_SECRET_LEN + OAUTH_HEX_LEN + 16];
    oauth_digest_hex(purpose, strlen(purpose), qd);
    int n = snprintf(buf, sizeof(buf), "csrf:%s:%s", sid, qd);
    oauth_digest_hex(buf, (size_t)n, out);
}

bool oauth_csrf_check(struct oreq *r, const char *purpose, const char *form, const char *text)
{
    const char *csrf = oauth_form_get(&r->web.post, "csrf");
    char want[OAUTH_HEX_LEN + 1] = "";
    if (purpose == NULL) /* the login page's: the CSRF cookie's value, sent back */
        oreq_cookie(r, r->o->csrf_cookie, want);
    else if (r->web.sid[0] != '\0')
        oauth_session_csrf(r->web.sid, purpose, want);
    if (csrf != NULL && want[0] != '\0' && oauth_secret_eq(csrf, want))
        return true;
    log_warn("oauth.csrf_refused", "%s form with a missing or wrong CSRF token from %s", form,
             r->addr);
    oreq_page_error(r, 403, "This form has expired", text);
    return false;
}

/* ---- the way in ------------------------------------------------------------------------------ */

bool oauth_query_ok(const char *q)
{
    if (q == NULL || strlen(q) > MAX_QUERY)
        return false;
    for (const unsigned char *p = (const unsigned char *)q; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

bool oauth_read_page_form(struct oreq *r)
{
    if (!oreq_read_post(r))
        return false;
    const char *q = oauth_form_get(&r->web.post, "q");
    if (!oauth_query_ok(q)) {
        oreq_page_error(r, 400, "Invalid request",
                        "The form lost the application's request. "
                        "Go back to the application and start again.");
        return false;
    }
    r->web.query = xstrdup(q);
    return true;
}

/* The login page for r->web.query (client_name: what the person signs in to, NULL for "the
 * application"; user and message after a failed attempt, else NULL). */
static void show_login(struct oreq *r, int status, const char *client_name, const char *user,
                       const char *message)
{
    char csrf[OAUTH_SECRET_LEN + 1];
    if (!oreq_cookie(r, r->o->csrf_cookie, csrf)) {
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
    struct page_login p = {.query = r->web.query,
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

void oauth_signin_ask(struct oreq *r, const char *client_name)
{
    if (r->o->cfg->local_accounts)
        show_login(r, 200, client_name, NULL, NULL);
    else /* the provider is the only way in: no page here */
        oauth_upstream_begin(r);
}

/* ---- a session made ------------------------------------------------------------------------- */

/* A person's record made by their first sign-in (through the provider: nobody made it
 * before) is in the audit trail. Outlives the request. */
struct user_made {
    char user_id[VALIDATE_USER_ID_MAX + 1];
    char addr[NETADDR_MAX];
};

static void on_user_made(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)value;
    struct user_made *um = arg;
    if (err == P2A_OK && code == 1)
        audit_emit(&(struct audit_in){.type = "user.created",
                                      .user_id = um->user_id,
                                      .address = um->addr,
                                      .detail = "at their first sign-in"});
    free(um);
}

static void on_session_created(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)code, (void)value;
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    struct oreq_signin *s = &r->web.signin;
    oreq_set_cookie(r, r->o->session_cookie, r->web.sid, r->o->cfg->session_lifetime_s);
    if (s->remember_device)
        oreq_set_cookie(r, r->o->device_cookie, s->device, OAUTH_DEVICE_TTL_S);
    /* the person's record: made at the first sign-in if nobody made it before, kept fresh */
    struct user_made *um = xcalloc(1, sizeof(*um));
    snprintf(um->user_id, sizeof(um->user_id), "%s", r->web.user_id);
    snprintf(um->addr, sizeof(um->addr), "%s", r->addr);
    oauth_store_user_put(r->o->h.store, r->web.user_id, r->web.username, s->source, clock_now(),
                         true, on_user_made, um);
    log_info("oauth.login", "user %s signed in (%s) from %s", r->web.user_id, s->source, r->addr);
    oreq_audit(r, (struct audit_in){.type = "signin.succeeded",
                                    .user_id = r->web.user_id,
                                    .detail = strcmp(s->source, "upstream") == 0
                                                  ? "through the organization's provider"
                                                  : "with a password"});
    /* back to what the sign-in was for: the authorization request, or the account pages */
    char loc[MAX_QUERY + 16];
    if (strcmp(r->web.query, OAUTH_ACCOUNT_QUERY) == 0)
        snprintf(loc, sizeof(loc), "/account/");
    else
        snprintf(loc, sizeof(loc), "/authorize?%s", r->web.query);
    oh_add_header(r->http, "Location", loc);
    oreq_finish(r, 303, NULL, "", 0);
}

/* Signs r->web.user_id in (r->web.username the name shown): a session and its cookie, the
 * person's record kept fresh, then 303 to what r->web.query was for. release_addr: a local
 * sign-in's reservation to release (oauth_store_session_create), NULL for none. With
 * remember_device, the browser's device cookie is remembered for the account and set. */
static void sign_in(struct oreq *r, const char *release_addr)
{
    struct oreq_signin *s = &r->web.signin;
    char digest[OAUTH_HEX_LEN + 1];
    if (oauth_random_secret(r->web.sid) != P2A_OK) {
        oreq_page_error(r, 500, "Something went wrong", "Try again.");
        return;
    }
    oauth_digest_hex(r->web.sid, strlen(r->web.sid), digest);
    char device[OAUTH_HEX_LEN + 1] = "";
    if (s->remember_device) {
        if (s->device[0] == '\0' && oauth_random_secret(s->device) != P2A_OK) {
            oreq_page_error(r, 500, "Something went wrong", "Try again.");
            return;
        }
        oauth_digest_hex(s->device, strlen(s->device), device);
    }
    oauth_store_session_create(r->o->h.store, digest, r->web.user_id, r->web.username, release_addr,
                               device, clock_now(), r->o->cfg->session_lifetime_s,
                               on_session_created, r);
}

/* ---- POST /login: a password --------------------------------------------------------------- */

/* Verified when the username is unknown, so that the answer takes as long as for a wrong
 * password: a well-formed hash, with our parameters, of nothing anyone can type. */
static const char unknown_user_hash[] =
    "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/* Which of the in-process slots r holds, or -1 (too many at its address or account), -2
 * (every slot taken). A slot lives from the reservation to the hash's answer, so the pool
 * never has more work than it can queue. */
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
        per_user += strcmp(o->slots[i].user, r->web.username) == 0;
    }
    if (free_slot < 0)
        return -2; /* every slot taken: the service is busy */
    if (per_addr >= SIGNIN_PER_ADDR || per_user >= SIGNIN_PER_USER)
        return -1;
    struct signin_slot *sl = &o->slots[free_slot];
    sl->used = true;
    snprintf(sl->addr, sizeof(sl->addr), "%s", r->limit);
    snprintf(sl->user, sizeof(sl->user), "%s", r->web.username);
    r->web.signin.slot = free_slot;
    return free_slot;
}

static void signin_release(struct oreq *r)
{
    if (r->o != NULL && r->web.signin.slot >= 0)
        r->o->slots[r->web.signin.slot].used = false;
    r->web.signin.slot = -1;
}

static void show_busy(struct oreq *r, int status, int retry_after_s, const char *message)
{
    char ra[16];
    snprintf(ra, sizeof(ra), "%d", retry_after_s > 0 ? retry_after_s : 1);
    oh_add_header(r->http, "Retry-After", ra);
    show_login(r, status, NULL, r->web.username, message);
}

/* A failed sign-in in the audit trail: the account's when the username is one, else an
 * anonymous event (aggregated per address and minute). Never the name typed: it may be a
 * password typed in the wrong field. */
static void signin_failed(const struct oreq *r, const char *why)
{
    oreq_audit(r, (struct audit_in){.type = "signin.failed",
                                    .user_id = r->web.user_id,
                                    .outcome = "failure",
                                    .detail = why});
}

static void on_hashed(void *arg, bool ok)
{
    struct oreq *r = arg;
    signin_release(r);
    if (oreq_orphaned(r))
        return;
    if (!ok || r->web.user_id[0] == '\0') { /* the failure was counted when it was reserved */
        log_info("oauth.login_failed", "failed sign-in from %s", r->addr);
        signin_failed(r, "wrong username or password");
        show_login(r, 401, NULL, r->web.username, "Wrong username or password.");
        return;
    }
    r->web.signin.remember_device = true;
    /* a browser's own failures reserved nothing at its address or the account */
    sign_in(r, r->web.signin.device_counted ? NULL : r->limit);
}

static void on_login_reserved(void *arg, p2a_err err, const struct store_login *l)
{
    struct oreq *r = arg;
    if (r->http == NULL || err != P2A_OK)
        signin_release(r);
    if (r->http != NULL && err != P2A_OK)
        signin_failed(r, "the service was unavailable"); /* a 503 below */
    if ((r = oreq_resume(arg, err)) == NULL)
        return;
    long long status = l->status, retry = l->retry_after_s;
    r->web.signin.device_counted = l->device_counted;
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
    snprintf(r->web.user_id, sizeof(r->web.user_id), "%s", l->user_id);
    const char *password = oauth_form_get(&r->web.post, "password");
    /* an unknown user costs the same hash as a known one, and gets the same answer */
    if (!hashpool_verify(r->o->h.hashpool, r->o->base, password ? password : "",
                         r->web.user_id[0] ? l->hash : unknown_user_hash, on_hashed, r)) {
        signin_release(r);
        signin_failed(r, "sign-in busy");
        show_busy(r, 503, 1, "Sign-in is busy right now. Try again in a moment.");
    }
}

/* The login page's form, read: its request and its CSRF token (the cookie's). false after
 * answering when either is missing or wrong. */
static bool login_form_ok(struct oreq *r)
{
    return oauth_read_page_form(r) &&
           oauth_csrf_check(r, NULL, "sign-in",
                            "The sign-in form was not sent from this page, or it is too old. "
                            "Go back to the application and start again.");
}

void oauth_do_login(struct oreq *r)
{
    r->web.signin.source = "local";
    if (!r->o->cfg->local_accounts) {
        oreq_page_error(r, 404, "Not found",
                        "Signing in with a password is turned off here: use your "
                        "organization's account.");
        return;
    }
    if (!login_form_ok(r))
        return;
    const char *user = oauth_form_get(&r->web.post, "username");
    const char *pw = oauth_form_get(&r->web.post, "password");
    if (user == NULL || pw == NULL || oauth_username_check(user) != NULL ||
        strlen(pw) > OAUTH_MAX_PASSWORD) {
        if (user != NULL && strlen(user) <= OAUTH_MAX_USERNAME &&
            oauth_username_check(user) == NULL)
            snprintf(r->web.username, sizeof(r->web.username), "%s", user);
        show_login(r, 401, NULL, r->web.username[0] ? r->web.username : NULL,
                   "Wrong username or password.");
        return;
    }
    snprintf(r->web.username, sizeof(r->web.username), "%s", user);
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
    if (oreq_cookie(r, r->o->device_cookie, r->web.signin.device))
        oauth_digest_hex(r->web.signin.device, strlen(r->web.signin.device), device);
    oauth_store_login_reserve(r->o->h.store, r->web.username, r->limit, device, &lim,
                              clock_now_ms(), on_login_reserved, r);
}

/* ---- through the upstream provider --------------------------------------------------------- */

/* POST /login/upstream: the login page's "Continue with <provider>". */
void oauth_do_login_upstream(struct oreq *r)
{
    if (r->o->cfg->upstream_issuer == NULL) {
        oreq_page_error(r, 404, "Not found", "This service does not sign in through another.");
        return;
    }
    if (login_form_ok(r))
        oauth_upstream_begin(r);
}

static void upstream_signed_in(struct oreq *r)
{
    sign_in(r, NULL);
}

void oauth_do_upstream_callback(struct oreq *r)
{
    r->web.signin.source = "upstream";
    oauth_upstream_finish(r, upstream_signed_in);
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

static void on_session_for_logout(struct oreq *r, bool found)
{
    if (!found) { /* nothing to end */
        show_signed_out(r);
        return;
    }
    char csrf[OAUTH_HEX_LEN + 1];
    oauth_session_csrf(r->web.sid, LOGOUT_CSRF_PURPOSE, csrf);
    struct mbuf page = {0};
    page_logout(&page, csrf, r->web.username);
    oreq_html(r, 200, &page);
}

static void on_session_deleted(void *arg, p2a_err err, const char *user_id)
{
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    log_info("oauth.signed_out", "a session ended from %s", r->addr);
    if (user_id[0] != '\0')
        oreq_audit(r, (struct audit_in){.type = "signout", .user_id = user_id});
    show_signed_out(r);
}

void oauth_do_logout(struct oreq *r)
{
    if (evhttp_request_get_command(r->http) != EVHTTP_REQ_POST) {
        oauth_session_find(r, on_session_for_logout);
        return;
    }
    if (!oreq_read_post(r))
        return;
    if (!oauth_session_cookie(r)) {
        show_signed_out(r);
        return;
    }
    if (!oauth_csrf_check(r, LOGOUT_CSRF_PURPOSE, "sign-out",
                          "The sign-out was not sent from this page. Open /logout and try "
                          "again."))
        return;
    char digest[OAUTH_HEX_LEN + 1];
    oauth_digest_hex(r->web.sid, strlen(r->web.sid), digest);
    oauth_store_session_delete(r->o->h.store, digest, on_session_deleted, r);
}
