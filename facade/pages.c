/* pages.c -- the HTML of every page a person sees: login, consent, sign-out, account, a new
 * token, errors; and the HTML escaping they all use (see pages.h). */
#include "pages.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "audit.h"
#include "clients.h"
#include "digest.h"
#include "oauth.h"
#include "store_grants.h"
#include "metrics.h"

static const char head[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<meta name=\"referrer\" content=\"no-referrer\">\n"
    "<title>";

static const char head2[] =
    " - Pipe2.ai</title>\n<style>\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "background:#f4f5f7;color:#1d2330}\n"
    "main{max-width:26rem;margin:8vh auto;padding:2rem 1.5rem;background:#fff;"
    "border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.12)}\n"
    "h1{font-size:1.35rem;margin:0 0 .25rem}\n"
    ".brand{font-weight:700;color:#4b3fd8;letter-spacing:.02em;margin-bottom:1.25rem}\n"
    "p{margin:.5rem 0}\n.muted{color:#5b6475;font-size:.9rem}\n"
    "label{display:block;font-weight:600;margin:1rem 0 .25rem}\n"
    "input[type=text],input[type=password]{width:100%;padding:.65rem .75rem;font-size:1rem;"
    "border:1px solid #c4c9d4;border-radius:8px}\n"
    "button{width:100%;padding:.75rem;font-size:1rem;font-weight:600;border-radius:8px;"
    "border:1px solid #4b3fd8;background:#4b3fd8;color:#fff;margin-top:1.25rem;"
    "cursor:pointer}\n"
    "button.secondary{background:#fff;color:#1d2330;border-color:#c4c9d4;margin-top:.6rem}\n"
    ".error{background:#fdecec;color:#8a1c1c;border-radius:8px;padding:.6rem .8rem}\n"
    ".warn{background:#fff6e0;color:#6b4a00;border-radius:8px;padding:.6rem .8rem}\n"
    ".host{font-size:1.05rem}\n.host strong{font-size:1.2rem}\n"
    "dl{margin:1rem 0;padding:0}\ndt{font-weight:600;margin-top:.6rem}\n"
    "dd{margin:0;word-break:break-all}\ncode{font-size:.9rem}\n"
    "main.wide{max-width:56rem}\nh2{font-size:1.1rem;margin:1.75rem 0 .5rem}\n"
    "table{width:100%;border-collapse:collapse;font-size:.9rem}\n"
    "th,td{text-align:left;padding:.45rem .4rem;border-bottom:1px solid #e3e6ec;"
    "vertical-align:top}\nth{color:#5b6475;font-weight:600}\n"
    "td form{margin:0}\nbutton.small{width:auto;margin:0;padding:.3rem .7rem;"
    "font-size:.85rem;background:#fff;color:#8a1c1c;border-color:#e0b4b4}\n"
    ".row{display:flex;gap:.75rem;align-items:flex-end;flex-wrap:wrap}\n"
    ".row label{margin-top:0}\n.row button{width:auto;margin-top:0}\n"
    "select{padding:.6rem;font-size:1rem;border:1px solid #c4c9d4;border-radius:8px}\n"
    "pre{background:#f4f5f7;padding:.75rem;border-radius:8px;white-space:pre-wrap;"
    "word-break:break-all;font-size:.85rem}\n.ok{background:#e9f7ef;color:#1d5e37;"
    "border-radius:8px;padding:.6rem .8rem}\n"
    "</style></head><body>";

static const char brand[] = "\n<div class=\"brand\">Pipe2.ai</div>\n";

static const char tail[] = "</main></body></html>\n";

void html_escape(struct mbuf *out, const char *s)
{
    const char *run = s;
    for (const char *p = s;; p++) {
        const char *rep = NULL;
        switch (*p) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            break;
        }
        if (rep != NULL || *p == '\0') {
            if (p > run)
                mbuf_printf(out, "%.*s", (int)(p - run), run);
            if (*p == '\0')
                return;
            mbuf_printf(out, "%s", rep);
            run = p + 1;
        }
    }
}

static void start_as(struct mbuf *out, const char *title, const char *main_class)
{
    mbuf_printf(out, "%s", head);
    html_escape(out, title);
    mbuf_printf(out, "%s<main%s%s%s>%s", head2, main_class ? " class=\"" : "",
                main_class ? main_class : "", main_class ? "\"" : "", brand);
}

static void start(struct mbuf *out, const char *title)
{
    start_as(out, title, NULL);
}

static void hidden(struct mbuf *out, const char *name, const char *value)
{
    mbuf_printf(out, "<input type=\"hidden\" name=\"%s\" value=\"", name);
    html_escape(out, value);
    mbuf_printf(out, "\">\n");
}

void page_login(struct mbuf *out, const struct page_login *p)
{
    start(out, "Sign in");
    mbuf_printf(out, "<h1>Sign in</h1>\n<p class=\"muted\">to continue to <strong>");
    html_escape(out, p->client_name);
    mbuf_printf(out, "</strong></p>\n");
    if (p->message != NULL) {
        mbuf_printf(out, "<p class=\"error\" role=\"alert\">");
        html_escape(out, p->message);
        mbuf_printf(out, "</p>\n");
    }
    if (p->provider != NULL) {
        mbuf_printf(out, "<form method=\"post\" action=\"/login/upstream\">\n");
        hidden(out, "csrf", p->csrf);
        hidden(out, "q", p->query);
        mbuf_printf(out, "<button type=\"submit\" id=\"upstream\">Continue with ");
        html_escape(out, p->provider);
        mbuf_printf(out, "</button>\n</form>\n");
        if (p->local)
            mbuf_printf(out, "<p class=\"muted\">or with a Pipe2.ai password:</p>\n");
    }
    if (!p->local) {
        mbuf_printf(out, "%s", tail);
        return;
    }
    mbuf_printf(out, "<form method=\"post\" action=\"/login\">\n");
    hidden(out, "csrf", p->csrf);
    hidden(out, "q", p->query);
    mbuf_printf(out, "<label for=\"username\">Username</label>\n"
                     "<input type=\"text\" id=\"username\" name=\"username\" required "
                     "autocomplete=\"username\" autocapitalize=\"none\" maxlength=\"64\" "
                     "value=\"");
    html_escape(out, p->username ? p->username : "");
    mbuf_printf(out, "\">\n<label for=\"password\">Password</label>\n"
                     "<input type=\"password\" id=\"password\" name=\"password\" required "
                     "autocomplete=\"current-password\" maxlength=\"256\">\n"
                     "<button type=\"submit\">Sign in</button>\n</form>\n");
    mbuf_printf(out, "%s", tail);
}

void page_consent(struct mbuf *out, const struct page_consent *p)
{
    start(out, "Allow access");
    mbuf_printf(out, "<h1>Allow <strong>");
    html_escape(out, p->client_name ? p->client_name : "an unnamed application");
    mbuf_printf(out, "</strong> to use your Pipe2.ai account?</h1>\n");
    if (p->client_host != NULL) {
        mbuf_printf(out, "<p class=\"host\">Published by <strong>");
        html_escape(out, p->client_host);
        mbuf_printf(out, "</strong>. The name above is the application's own claim; the "
                         "address is who vouches for it.</p>\n");
    }
    mbuf_printf(out, "<p class=\"muted\">Signed in as <strong>");
    html_escape(out, p->username);
    mbuf_printf(out, "</strong></p>\n<dl>\n<dt>It will act on</dt><dd><code>");
    html_escape(out, p->resource);
    mbuf_printf(out, "</code></dd>\n<dt>With the permissions</dt><dd><code>");
    html_escape(out, p->scope);
    mbuf_printf(out, "</code></dd>\n<dt>Your approval is sent to</dt><dd><code>");
    html_escape(out, p->redirect_uri);
    mbuf_printf(out, "</code></dd>\n<dt>Application id</dt><dd><code>");
    html_escape(out, p->client_id);
    mbuf_printf(out, "</code></dd>\n</dl>\n");
    if (strncmp(p->redirect_uri, "http://", 7) == 0)
        mbuf_printf(out, "<p class=\"warn\">This application runs on your own computer. "
                         "Allow it only if you just started it yourself.</p>\n");
    else if (strncmp(p->redirect_uri, "https://", 8) != 0)
        mbuf_printf(out, "<p class=\"warn\">This approval goes to an app installed on your "
                         "device. Allow it only if you just started it yourself.</p>\n");
    mbuf_printf(out, "<p class=\"muted\">Only allow applications you trust. You can revoke "
                     "access at any time.</p>\n<form method=\"post\" action=\"/consent\">\n");
    hidden(out, "csrf", p->csrf);
    hidden(out, "q", p->query);
    mbuf_printf(out,
                "<button type=\"submit\" name=\"decision\" value=\"approve\">Allow"
                "</button>\n<button type=\"submit\" name=\"decision\" value=\"deny\" "
                "class=\"secondary\">Deny</button>\n</form>\n%s",
                tail);
}

void page_logout(struct mbuf *out, const char *csrf, const char *username)
{
    start(out, "Sign out");
    if (csrf == NULL) {
        mbuf_printf(out,
                    "<h1>You are signed out</h1>\n<p class=\"muted\">The next application "
                    "that asks for your Pipe2.ai account will ask you to sign in again. "
                    "Applications you connected keep their access until you disconnect "
                    "them.</p>\n%s",
                    tail);
        return;
    }
    mbuf_printf(out, "<h1>Sign out of Pipe2.ai?</h1>\n<p class=\"muted\">Signed in as <strong>");
    html_escape(out, username);
    mbuf_printf(out, "</strong></p>\n<form method=\"post\" action=\"/logout\">\n");
    hidden(out, "csrf", csrf);
    mbuf_printf(out, "<button type=\"submit\">Sign out</button>\n</form>\n%s", tail);
}

void page_error(struct mbuf *out, const char *title, const char *text)
{
    start(out, "Error");
    mbuf_printf(out, "<h1>");
    html_escape(out, title);
    mbuf_printf(out, "</h1>\n<p class=\"error\" role=\"alert\">");
    html_escape(out, text);
    mbuf_printf(out,
                "</p>\n<p class=\"muted\">Go back to the application and start again. "
                "If this keeps happening, contact its developer.</p>\n%s",
                tail);
}

/* ---- the account pages ----------------------------------------------------------------------- */

/* Markup, then a value escaped. */
static void put(struct mbuf *out, const char *html, const char *text)
{
    mbuf_printf(out, "%s", html);
    html_escape(out, text);
}

/* A date for people: "2026-11-30 14:05 UTC", or "never" for 0. */
static void when(struct mbuf *out, int64_t t)
{
    if (t <= 0) {
        mbuf_printf(out, "never");
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    char buf[32];
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(buf, sizeof(buf), "%lld", (long long)t);
    mbuf_printf(out, "%s", buf);
}

/* Markup, then a date (when()). */
static void put_when(struct mbuf *out, const char *html, int64_t t)
{
    mbuf_printf(out, "%s", html);
    when(out, t);
}

/* A small form posting one hidden value and the CSRF token to action. */
static void button_form(struct mbuf *out, const char *action, const char *csrf, const char *name,
                        const char *value, const char *label, const char *title)
{
    mbuf_printf(out, "<form method=\"post\" action=\"%s\">\n", action);
    hidden(out, "csrf", csrf);
    hidden(out, name, value);
    put(out, "<button type=\"submit\" class=\"small\" title=\"", title);
    mbuf_printf(out, "\">%s</button>\n</form>", label);
}

void page_account_tokens(struct mbuf *out, const struct page_account *p,
                         const struct pat_record *pats, size_t n)
{
    start_as(out, "Your account", "wide");
    put(out, "<h1>Your account</h1>\n<p class=\"muted\">Signed in as <strong>", p->username);
    mbuf_printf(out, "</strong> &middot; <a href=\"/logout\">Sign out</a></p>\n"
                     "<h2>Personal access tokens</h2>\n<p class=\"muted\">For MCP clients "
                     "configured by hand: the token goes in their <code>Authorization</code> "
                     "header.</p>\n");
    if (n == 0) {
        mbuf_printf(out, "<p class=\"muted\" id=\"no-tokens\">You have no tokens.</p>\n");
    } else {
        mbuf_printf(out, "<table id=\"tokens\">\n<tr><th>Name</th><th>Created</th><th>Expires</th>"
                         "<th>Last used</th><th>Status</th><th></th></tr>\n");
        for (size_t i = 0; i < n; i++) {
            const struct pat_record *t = &pats[i];
            bool revoked = t->revoked_at > 0, expired = !revoked && t->expires_at <= p->now;
            put(out, "<tr data-jti=\"", t->jti);
            put(out, "\"><td>", t->name);
            put_when(out, "</td><td>", t->created_at);
            put_when(out, "</td><td>", t->expires_at);
            put_when(out, "</td><td class=\"last-used\">", t->last_used_at);
            mbuf_printf(out, "</td><td class=\"status\">%s</td><td>",
                        revoked   ? "revoked"
                        : expired ? "expired"
                                  : "active");
            if (!revoked && !expired)
                button_form(out, "/account/tokens/revoke", p->csrf, "jti", t->jti, "Revoke",
                            "Revoke this token: MCP clients using it stop within 30 seconds");
            mbuf_printf(out, "</td></tr>\n");
        }
        mbuf_printf(out, "</table>\n");
    }
    mbuf_printf(out, "<form method=\"post\" action=\"/account/tokens\" id=\"create\">\n");
    hidden(out, "csrf", p->csrf);
    mbuf_printf(out, "<div class=\"row\"><div><label for=\"name\">New token's name</label>\n"
                     "<input type=\"text\" id=\"name\" name=\"name\" required maxlength=\"100\" "
                     "placeholder=\"laptop\"></div>\n<div><label for=\"days\">Expires in</label>\n"
                     "<select id=\"days\" name=\"days\">");
    for (const int *d = p->lifetimes_days; *d != 0; d++)
        mbuf_printf(out, "<option value=\"%d\"%s>%d days</option>", *d,
                    d[1] == 0 ? " selected" : "", *d);
    if (p->lifetimes_days[0] == 0)
        mbuf_printf(out, "<option value=\"0\">the longest allowed</option>");
    mbuf_printf(out, "</select></div>\n<button type=\"submit\">Create token</button></div>\n"
                     "</form>\n");
}

void page_account_clients(struct mbuf *out, const struct page_account *p,
                          const struct store_grant *grants, size_t n)
{
    mbuf_printf(out, "<h2>Connected applications</h2>\n<p class=\"muted\">MCP clients you "
                     "approved. Disconnecting one stops its access within 30 seconds; it asks "
                     "you again next time.</p>\n");
    if (n == 0)
        mbuf_printf(out, "<p class=\"muted\" id=\"no-clients\">No application is connected."
                         "</p>\n");
    else
        mbuf_printf(out, "<table id=\"clients\">\n<tr><th>Application</th><th>Permissions</th>"
                         "<th>Server</th><th>Approved</th><th>Last used</th><th></th></tr>\n");
    for (size_t i = 0; i < n; i++) {
        const struct store_grant *g = &grants[i];
        char host[OAUTH_MAX_CLIENT_ID + 1];
        put(out, "<tr><td><strong>", g->client_name[0] ? g->client_name : "an unnamed application");
        /* a metadata document's host is who vouches for the client, as on the consent page */
        put(out, "</strong><br><span class=\"muted\">",
            oauth_cimd_host(g->client_id, host, sizeof(host)) ? host : g->client_id);
        put(out, "</span></td><td><code>", g->scope);
        put(out, "</code></td><td><code>", g->resource);
        put_when(out, "</code></td><td>", g->approved_at);
        put_when(out, "</td><td>", g->last_used_at);
        mbuf_printf(out, "</td><td>");
        button_form(out, "/account/clients/disconnect", p->csrf, "grant_id", g->grant_id,
                    "Disconnect", "Disconnect this application");
        mbuf_printf(out, "</td></tr>\n");
    }
    mbuf_printf(out, "%s", n > 0 ? "</table>\n" : "");
}

/* What each event type means to the person whose log it is. */
static const struct {
    const char *type, *words;
} event_words[] = {
    {"pat.issued", "Personal access token created"},
    {"pat.revoked", "Personal access token revoked"},
    {"token.refused", "An expired or revoked token was presented"},
    {"signin.succeeded", "Signed in"},
    {"signin.failed", "Failed sign-in"},
    {"signout", "Signed out"},
    {"consent.granted", "Application approved"},
    {"grant.revoked", "Application disconnected"},
    {"client.registered", "Application registered"},
    {"client.revoked", "Application revoked"},
    {"refresh.reuse_detected", "A used refresh token came back: the application's tokens were "
                               "revoked"},
    {"user.created", "Account created"},
    {"user.registered", "Account registered by a dashboard"},
    {"user.disabled", "Account disabled"},
    {"user.enabled", "Account enabled"},
};

void page_account_security_log(struct mbuf *out, const struct audit_event *evs, size_t n)
{
    mbuf_printf(out, "<h2>Security log</h2>\n<p class=\"muted\">What happened to your account, "
                     "newest first: sign-ins, tokens, applications.</p>\n");
    if (n == 0)
        mbuf_printf(out, "<p class=\"muted\" id=\"no-events\">Nothing yet.</p>\n");
    else
        mbuf_printf(out, "<table id=\"security-log\">\n<tr><th>When</th><th>What</th>"
                         "<th>From</th><th>Application</th><th>By</th></tr>\n");
    for (size_t i = 0; i < n; i++) {
        const struct audit_event *e = &evs[i];
        const char *words = e->type;
        for (size_t k = 0; k < sizeof(event_words) / sizeof(event_words[0]); k++)
            if (strcmp(event_words[k].type, e->type) == 0)
                words = event_words[k].words;
        put(out, "<tr data-type=\"", e->type);
        put(out, "\" data-id=\"", e->id);
        put_when(out, "\"><td>", e->time_us / 1000000);
        put(out, "</td><td>", words);
        if (e->detail[0] != '\0')
            put(out, "<br><span class=\"muted\">", e->detail);
        if (e->detail[0] != '\0')
            mbuf_printf(out, "</span>");
        put(out, "</td><td>", e->address[0] ? e->address : "this service");
        if (e->user_agent[0] != '\0')
            put(out, "<br><span class=\"muted\">", e->user_agent);
        if (e->user_agent[0] != '\0')
            mbuf_printf(out, "</span>");
        char host[OAUTH_MAX_CLIENT_ID + 1];
        put(out, "</td><td>",
            e->client_id[0] == '\0'                             ? ""
            : oauth_cimd_host(e->client_id, host, sizeof(host)) ? host
                                                                : e->client_id);
        put(out, "</td><td>",
            strncmp(e->actor, "user:", 5) == 0  ? "you"
            : strncmp(e->actor, "key:", 4) == 0 ? "an administrator"
                                                : e->actor);
        mbuf_printf(out, "</td></tr>\n");
    }
    mbuf_printf(out, "%s%s", n > 0 ? "</table>\n" : "", tail);
}

/* The one script of any page: copies the token. Pinned by its hash in the page's CSP. */
static const char copy_script[] =
    "document.getElementById('copy').addEventListener('click',function(){"
    "navigator.clipboard.writeText(document.getElementById('token').textContent).then("
    "function(){document.getElementById('copy').textContent='Copied';});});";

const char *page_copy_script_hash(void)
{
    static char csp[80]; /* the facade's thread only */
    if (csp[0] == '\0') {
        unsigned char d[DIGEST_SHA256_LEN];
        digest_sha256(copy_script, sizeof(copy_script) - 1, d);
        memcpy(csp, "sha256-", 7);
        EVP_EncodeBlock((unsigned char *)csp + 7, d, (int)sizeof(d));
    }
    return csp;
}

void page_token_created(struct mbuf *out, const struct page_token *p)
{
    start_as(out, "Your new token", "wide");
    put_when(out,
             "<h1>Your new token</h1>\n<p class=\"warn\" role=\"alert\">Copy it now: it is "
             "shown only once. Whoever holds it can use your MCP servers until it expires (",
             p->expires_at);
    put(out, ") or you revoke it.</p>\n<p><strong>", p->name);
    put(out, "</strong></p>\n<pre id=\"token\">", p->token);
    mbuf_printf(out, "</pre>\n<button type=\"button\" id=\"copy\">Copy token</button>\n"
                     "<h2>MCP client configuration</h2>\n<pre id=\"snippet\">{\"headers\": "
                     "{\"Authorization\": \"Bearer ");
    html_escape(out, p->token);
    mbuf_printf(out,
                "\"}}</pre>\n<p><a href=\"/account/\">Done: back to your account</a></p>\n"
                "<script>%s</script>\n%s",
                copy_script, tail);
}
