/* pages.h -- the HTML a person sees: the login page, the consent page, the sign-out page, the
 * account pages (a new token's page among them) and error pages.
 *
 * Self-contained documents (inline CSS, no external asset, no script but the copy button of a
 * new token's page, pinned by its hash), readable on a phone.
 * Every value that comes from a request or a client's registration is HTML-escaped here.
 */
#ifndef P2A_PAGES_H
#define P2A_PAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct audit_event;
struct mbuf;
struct store_grant;
struct pat_record;

struct page_login {
    const char *query; /* the authorization request, carried to the form */
    const char *csrf;
    const char *client_name;
    const char *username; /* to fill in again after a failed attempt, may be NULL */
    const char *message;  /* an error to show above the form, may be NULL */
    bool local;           /* the username and password form */
    const char *provider; /* the upstream provider's host: its button; NULL for none */
};

struct page_consent {
    const char *query;
    const char *csrf;
    const char *client_name; /* NULL when the client gave none */
    const char *client_host; /* a metadata document's host, NULL for a registered client */
    const char *client_id;
    const char *redirect_uri;
    const char *scope;
    const char *resource;
    const char *username;
};

/* The account page (/account/), in two parts, each written while its store reply lives: the
 * person's PATs (store_pat_list) and their connected clients (oauth_store_grants_list). */
struct page_account {
    const char *csrf;
    const char *username;
    const int *lifetimes_days; /* the choices offered for a new token, 0-terminated */
    int64_t now;
};
/* A new token, shown once: its value, the MCP client configuration, a copy button (the one
 * script, pinned by page_copy_script_hash()). */
struct page_token {
    const char *name, *token;
    int64_t expires_at;
};

void page_login(struct mbuf *out, const struct page_login *p);
void page_account_tokens(struct mbuf *out, const struct page_account *p,
                         const struct pat_record *pats, size_t n);
/* The rest of the page, after page_account_tokens(). */
void page_account_clients(struct mbuf *out, const struct page_account *p,
                          const struct store_grant *grants, size_t n);
/* The last part of the page: the person's own audit events, newest first. */
void page_account_security_log(struct mbuf *out, const struct audit_event *evs, size_t n);
void page_token_created(struct mbuf *out, const struct page_token *p);
/* "sha256-<base64>" of the copy button's script, for the page's Content-Security-Policy. */
const char *page_copy_script_hash(void);
void page_consent(struct mbuf *out, const struct page_consent *p);
/* Sign-out: with a CSRF token, the button (signed in as username); without, "signed out". */
void page_logout(struct mbuf *out, const char *csrf, const char *username);
/* title and text are constants or escaped here. */
void page_error(struct mbuf *out, const char *title, const char *text);

/* Appends s HTML-escaped. */
void html_escape(struct mbuf *out, const char *s);

#endif
