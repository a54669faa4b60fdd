/* pages.c -- the login, consent and error pages (see pages.h). */
#include "pages.h"

#include <string.h>

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
    "</style></head><body><main>\n<div class=\"brand\">Pipe2.ai</div>\n";

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

static void start(struct mbuf *out, const char *title)
{
    mbuf_printf(out, "%s", head);
    html_escape(out, title);
    mbuf_printf(out, "%s", head2);
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
