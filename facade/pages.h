/* pages.h -- the HTML a person sees: the login page, the consent page and error pages.
 *
 * Self-contained documents (inline CSS, no script, no external asset), readable on a phone.
 * Every value that comes from a request or a client's registration is HTML-escaped here.
 */
#ifndef P2A_PAGES_H
#define P2A_PAGES_H

#include <stdbool.h>

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

void page_login(struct mbuf *out, const struct page_login *p);
void page_consent(struct mbuf *out, const struct page_consent *p);
/* Sign-out: with a CSRF token, the button (signed in as username); without, "signed out". */
void page_logout(struct mbuf *out, const char *csrf, const char *username);
/* title and text are constants or escaped here. */
void page_error(struct mbuf *out, const char *title, const char *text);

/* Appends s HTML-escaped. */
void html_escape(struct mbuf *out, const char *s);

#endif
