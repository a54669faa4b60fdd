/* pages.h -- the HTML a person sees: the login page, the consent page, the account pages and
 * error pages.
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

struct mbuf;

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

/* The account pages (/account/): a person's PATs and connected clients. */
struct page_pat {
    const char *jti, *name;
    int64_t created_at, expires_at, last_used_at, revoked_at;
};
struct page_grant {
    const char *grant_id, *client_id, *client_name, *scope, *resource;
    int64_t approved_at, last_used_at;
};
struct page_account {
    const char *csrf;
    const char *username;
    const struct page_pat *pats;
    size_t npats;
    const struct page_grant *grants;
    size_t ngrants;
    const int *lifetimes_days; /* the choices offered for a new token, 0-terminated */
    int64_t now;
    const char *message; /* a note above the lists (what was just done), may be NULL */
};
/* A new token, shown once: its value, the MCP client configuration, a copy button (the one
 * script, pinned by page_copy_script_hash()). */
struct page_token {
    const char *name, *token;
    int64_t expires_at;
};

void page_login(struct mbuf *out, const struct page_login *p);
void page_account(struct mbuf *out, const struct page_account *p);
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
