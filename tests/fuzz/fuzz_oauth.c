/* fuzz_oauth.c -- the OAuth edges of the facade: form bodies and query strings (/token,
 * /revoke, /introspect, /authorize, /login, /consent), the Authorization header (Basic and
 * Bearer), cookies and the CSRF comparison, redirect URI registration and matching,
 * resource and scope parsing, PKCE, and RFC 7591 registration bodies: the functions
 * production calls, in src/oauth.c.
 *
 * The first byte picks the parser; the rest is its input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "clients.h"
#include "config.h"
#include "oauth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t pick = data[0] % 6;
    size_t n = size - 1;
    char *s = malloc(n + 1);
    memcpy(s, data + 1, n);
    s[n] = '\0';
    switch (pick) {
    case 0: {
        struct oauth_form f;
        if (oauth_form_parse(s, n, &f) == P2A_OK) {
            const char *names[] = {"grant_type", "code", "code_verifier", "redirect_uri",
                                   "client_id", "resource", "scope", "token", "csrf", "q"};
            for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                const char *v = oauth_form_get(&f, names[i]);
                if (v != NULL) {
                    (void)oauth_pkce_verifier_valid(v);
                    (void)scope_check(v);
                    (void)oauth_client_id_valid(v);
                }
            }
        }
        oauth_form_free(&f);
        break;
    }
    case 1: {
        char id[80], secret[100], c[64];
        size_t len;
        (void)oauth_basic_parse(s, id, sizeof(id), secret, sizeof(secret));
        (void)oauth_bearer(s, &len);
        (void)oauth_cookie_get(s, "p2a_session", c, sizeof(c));
        /* the double-submit check of the sign-in form: cookie against field */
        if (oauth_cookie_get(s, "__Host-p2a_csrf", c, sizeof(c)))
            (void)oauth_secret_eq(c, "a0OmJBe51eHHi1zO1v2ZmJGpJVrhYFy_cFfEtZ-1jBU");
        break;
    }
    case 2: {
        /* two URIs split at the first newline: registered, given */
        char *nl = strchr(s, '\n');
        const char *given = "http://127.0.0.1:5000/cb";
        if (nl != NULL) {
            *nl = '\0';
            given = nl + 1;
        }
        (void)oauth_redirect_uri_check(s);
        (void)oauth_redirect_uri_check(given);
        (void)oauth_redirect_uri_match(s, given);
        break;
    }
    case 3: {
        const char *err;
        char desc[200];
        json_t *body = oauth_json_object(s, n);
        struct oauth_client_reg reg;
        if (body != NULL && oauth_client_register(body, 1, &reg, &err, desc, sizeof(desc)) == P2A_OK)
            oauth_client_reg_deinit(&reg);
        json_decref(body);
        break;
    }
    case 4: {
        struct p2a_config cfg = {0};
        char r0[] = "https://mcp.example.com/mcp", r1[] = "http://127.0.0.1:3000";
        cfg.resources[0] = r0, cfg.resources[1] = r1, cfg.nresources = 2;
        (void)oauth_resource_find(&cfg, s);
        char out[SCOPE_MAX_LEN + 1];
        if (scope_check(s) == NULL)
            (void)scope_grant("mcp files:read offline_access", "mcp", s, s, out, sizeof(out));
        break;
    }
    default:
        (void)oauth_pkce_s256_ok(s, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        (void)oauth_username_check(s);
        (void)oauth_password_check("ana", s);
        break;
    }
    free(s);
    return 0;
}
