/* oauth_account.c -- the account pages (PIPE2_AUTH_ACCOUNT_PAGES), for deployments without a
 * dashboard of their own: a signed-in person's personal access tokens (create, shown once;
 * revoke) and the MCP clients they approved (disconnect).
 *
 * Behind the same sign-in as /authorize (a local account or the upstream provider; the sign-in
 * comes back here instead of to an authorization request), with the pages' protections: no
 * framing, nothing loaded from elsewhere, no script but the copy button's (pinned by its
 * hash), and every form carrying a CSRF token derived from the session (the session found and
 * the token checked by oauth_signin.c, as for every page). The rules are the ones the RPCs
 * use: core/pat.c to issue, the store's scripts to record and revoke (a revoked PAT applied to
 * this process's view at once, like RevokeToken), RevokeGrant's script to disconnect.
 *   GET  /account/                   the page
 *   POST /account/tokens             name, days: a new PAT, shown once (at most
 *                                    ACCOUNT_MAX_ACTIVE_PATS active ones a person, and
 *                                    PIPE2_AUTH_ACCOUNT_PAT_RATE_LIMIT made an hour)
 *   POST /account/tokens/revoke      jti
 *   POST /account/clients/disconnect grant_id
 */
#include "oauth_internal.h"

#include "store_pat_issue.h"
#include "store_audit.h"

#define ACCOUNT_CSRF_PURPOSE "account"
#define ACCOUNT_MAX_PATS 200       /* shown on the page (the newest) */
#define ACCOUNT_MAX_ACTIVE_PATS 50 /* a person may hold made here; past it, revoke one first */
#define ACCOUNT_LOG_EVENTS 50      /* the security log shows the newest this many */

static void account_error(struct oreq *r, int status, const char *text)
{
    oreq_page_error(r, status, "Your account", text);
}

static void back_to_account(struct oreq *r)
{
    oh_add_header(r->http, "Location", "/account/");
    oreq_finish(r, 303, NULL, "", 0);
}

/* ---- the page ------------------------------------------------------------------------------ */

/* What both parts of the page show besides the lists; days: room for the offered lifetimes
 * and their 0. */
static struct page_account account_view(const struct oreq *r, char csrf[OAUTH_HEX_LEN + 1],
                                        int days[5])
{
    static const int offered[] = {7, 30, 90, 365};
    int nd = 0;
    for (size_t i = 0; i < sizeof(offered) / sizeof(offered[0]); i++)
        if ((int64_t)offered[i] * 86400 <= r->o->cfg->max_token_lifetime_s)
            days[nd++] = offered[i];
    days[nd] = 0;
    oauth_session_csrf(r->web.sid, ACCOUNT_CSRF_PURPOSE, csrf);
    return (struct page_account){
        .csrf = csrf, .username = r->web.username, .lifetimes_days = days, .now = clock_now()};
}

static void on_security_log(void *arg, p2a_err err, const struct audit_event *evs, size_t n,
                            const char *next)
{
    (void)next;
    struct oreq *r = oreq_resume(arg, P2A_OK); /* the page shows without the log */
    if (r == NULL)
        return;
    struct mbuf page = r->web.account.page; /* the page outlives r, which answering frees */
    r->web.account.page = (struct mbuf){0};
    page_account_security_log(&page, evs, err == P2A_OK ? n : 0);
    oreq_html(r, 200, &page);
}

static void on_grants(void *arg, p2a_err err, const struct store_grant *grants, size_t ng)
{
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    char csrf[OAUTH_HEX_LEN + 1];
    int days[5];
    struct page_account p = account_view(r, csrf, days);
    page_account_clients(&r->web.account.page, &p, grants, ng);
    if (!r->o->cfg->audit) {
        on_security_log(r, P2A_OK, NULL, 0, "");
        return;
    }
    struct audit_query q = {.user_id = r->web.user_id, .page_size = ACCOUNT_LOG_EVENTS};
    store_audit_list(r->o->h.store, &q, on_security_log, r);
}

static void on_pats(void *arg, p2a_err err, const struct pat_record *recs, size_t n)
{
    struct oreq *r = oreq_resume(arg, err == P2A_ERR_NOT_FOUND ? P2A_OK : err);
    if (r == NULL)
        return;
    char csrf[OAUTH_HEX_LEN + 1];
    int days[5];
    struct page_account p = account_view(r, csrf, days);
    size_t shown = err != P2A_OK ? 0 : n < ACCOUNT_MAX_PATS ? n : ACCOUNT_MAX_PATS;
    page_account_tokens(&r->web.account.page, &p, recs, shown);
    oauth_store_grants_list(r->o->h.store, r->web.user_id, on_grants, r);
}

/* ---- the forms ----------------------------------------------------------------------------- */

static void on_pat_created(void *arg, p2a_err err, int64_t code, int64_t value)
{
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    long long more = value;
    char text[200];
    switch (code) {
    case 1:
        break;
    case -1:
        account_error(r, 404, "The token could not be stored, so it was not created. Try again.");
        return;
    case -2:
        account_error(r, 403, "Your account is disabled: no token was created.");
        return;
    case -3:
        snprintf(text, sizeof(text),
                 "You have %lld active tokens, the most this page makes. Revoke one you no "
                 "longer use, then create the new one.",
                 more);
        account_error(r, 409, text);
        return;
    case -4:
        snprintf(text, sizeof(text), "%lld", more > 0 ? more : 1);
        oh_add_header(r->http, "Retry-After", text);
        snprintf(text, sizeof(text),
                 "You have made %d tokens in the last hour, the most this page makes. Try again "
                 "in %lld minutes.",
                 r->o->cfg->account_pat_rate_limit, (more + 59) / 60);
        account_error(r, 429, text);
        return;
    default:
        account_error(r, 503, "The token could not be stored, so it was not created. Try again.");
        return;
    }
    log_info("pat.issued", "issued PAT jti=%s on the account page", r->web.account.jti);
    oreq_audit(r, (struct audit_in){.type = "pat.issued",
                                    .user_id = r->web.user_id,
                                    .token_id = r->web.account.jti,
                                    .detail = oauth_form_get(&r->web.post, "name")});
    struct page_token p = {.name = oauth_form_get(&r->web.post, "name"),
                           .token = r->web.account.token,
                           .expires_at = r->web.account.exp};
    struct mbuf page = {0};
    page_token_created(&page, &p);
    oreq_html_script(r, 200, &page, page_copy_script_hash());
}

static void create_pat(struct oreq *r)
{
    const struct p2a_config *cfg = r->o->cfg;
    const char *days = oauth_form_get(&r->web.post, "days");
    char *end = NULL;
    long d = days ? strtol(days, &end, 10) : -1;
    struct pat_request rq = {.user_id = r->web.user_id,
                             .name = oauth_form_get(&r->web.post, "name"),
                             .expires_in_s = d < 0 || d > 3660 || !end || *end ? -1 : d * 86400};
    const char *why = rq.name == NULL ? "name is required" : NULL;
    struct pat_signed ps;
    /* the cap and the hour's count are checked by the script that writes the record */
    p2a_err e = why != NULL
                    ? P2A_ERR_INVALID
                    : store_pat_issue(r->o->h.store, r->o->h.keys(r->o->h.arg), cfg, &rq,
                                      clock_now_ms(), ACCOUNT_MAX_ACTIVE_PATS,
                                      cfg->account_pat_rate_limit, &ps, &why, on_pat_created, r);
    if (e == P2A_ERR_INVALID) {
        char text[200];
        snprintf(text, sizeof(text), "The token was not created: %s.", why);
        account_error(r, 400, text);
        return;
    }
    if (e != P2A_OK) {
        account_error(r, 500, "The token could not be signed. Try again.");
        return;
    }
    r->web.account.token = ps.token; /* cleansed with the request */
    snprintf(r->web.account.jti, sizeof(r->web.account.jti), "%s", ps.jti);
    r->web.account.exp = ps.expires_at;
}

static void on_pat_revoked(void *arg, p2a_err err, bool already, int64_t revoked_at, int64_t exp,
                           const char *owner)
{
    (void)revoked_at, (void)owner;
    struct oreq *r = arg;
    if (oreq_orphaned(r))
        return;
    if (err == P2A_ERR_NOT_FOUND) {
        account_error(r, 404, "You have no such token.");
        return;
    }
    if (err != P2A_OK) {
        account_error(r, 503, "The token could not be revoked right now. Try again.");
        return;
    }
    revoke_local(r->o->h.revoked, r->web.account.jti, exp);
    log_info("pat.revoked", "revoked PAT jti=%s on the account page", r->web.account.jti);
    if (!already)
        oreq_audit(r, (struct audit_in){.type = "pat.revoked",
                                        .user_id = r->web.user_id,
                                        .token_id = r->web.account.jti});
    back_to_account(r);
}

static void revoke_pat(struct oreq *r)
{
    const char *jti = oauth_form_get(&r->web.post, "jti");
    if (jti == NULL || strlen(jti) > JTI_MAX_LEN) {
        account_error(r, 400, "The form is incomplete.");
        return;
    }
    snprintf(r->web.account.jti, sizeof(r->web.account.jti), "%s", jti);
    store_pat_revoke(r->o->h.store, r->web.account.jti, r->web.user_id, clock_now_ms(),
                     on_pat_revoked, r);
}

static void on_disconnected(void *arg, p2a_err err, int64_t code, int64_t value)
{
    (void)value;
    struct oreq *r = oreq_resume(arg, err);
    if (r == NULL)
        return;
    if (code == -1) {
        account_error(r, 404, "That application is not connected (any more).");
        return;
    }
    log_info("oauth.grant_revoked", "a grant was revoked on the account page");
    oreq_audit(r, (struct audit_in){.type = "grant.revoked",
                                    .user_id = r->web.user_id,
                                    .token_id = oauth_form_get(&r->web.post, "grant_id")});
    back_to_account(r);
}

static void disconnect(struct oreq *r)
{
    const char *gid = oauth_form_get(&r->web.post, "grant_id");
    if (gid == NULL || !oauth_grant_id_valid(gid)) {
        account_error(r, 400, "The form is incomplete.");
        return;
    }
    oauth_store_grant_revoke(r->o->h.store, r->web.user_id, gid, clock_now_ms(), on_disconnected,
                             r);
}

/* ---- every request: the session first -------------------------------------------------------- */

static void on_session_for_page(struct oreq *r, bool found)
{
    if (!found) {
        r->web.query = xstrdup(OAUTH_ACCOUNT_QUERY); /* the sign-in comes back to /account/ */
        oauth_signin_ask(r, "your Pipe2.ai account");
        return;
    }
    store_pat_list(r->o->h.store, r->web.user_id, true, on_pats, r);
}

static void on_session_for_form(struct oreq *r, bool found)
{
    if (!found) {
        account_error(r, 401, "You are signed out. Open your account page and sign in again.");
        return;
    }
    if (oauth_csrf_check(r, ACCOUNT_CSRF_PURPOSE, "account",
                         "The form was not sent from your account page. Open it and try again."))
        r->web.account.action(r);
}

static bool pages_on(struct oreq *r)
{
    if (r->o->cfg->account_pages)
        return true;
    oreq_page_error(r, 404, "Not found", "This service has no account pages.");
    return false;
}

/* GET /account/ */
void oauth_do_account(struct oreq *r)
{
    if (!pages_on(r))
        return;
    if (evhttp_request_get_command(r->http) == EVHTTP_REQ_POST) {
        oh_add_header(r->http, "Allow", "GET");
        oreq_page_error(r, 405, "Not allowed", "This page does not take that method.");
        return;
    }
    oauth_session_find(r, on_session_for_page);
}

/* A form of the account page: its session and CSRF token checked, then action(r). */
static void account_form(struct oreq *r, void (*action)(struct oreq *r))
{
    if (!pages_on(r) || !oreq_read_post(r))
        return;
    r->web.account.action = action;
    oauth_session_find(r, on_session_for_form);
}

void oauth_do_account_tokens(struct oreq *r)
{
    account_form(r, create_pat);
}

void oauth_do_account_revoke(struct oreq *r)
{
    account_form(r, revoke_pat);
}

void oauth_do_account_disconnect(struct oreq *r)
{
    account_form(r, disconnect);
}
