/* oidc.c -- see oidc.h. */
#include "oidc.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "clients.h"
#include "codec.h"
#include "config.h"
#include "jws.h"
#include "oauth.h"
#include "strlist.h"
#include "url.h"

static void say(char *why, size_t n, const char *s)
{
    snprintf(why, n, "%s", s);
}

/* ---- discovery and keys ------------------------------------------------------------------ */

/* https, or http on a loopback host when the issuer itself is http (a provider beside us). */
static bool endpoint_ok(const char *url, bool issuer_http)
{
    struct url_parts u;
    if (url == NULL || !url_is_http(url) || !url_split(url, &u))
        return false;
    return url_scheme_is(&u, "https") || (issuer_http && url_host_is_loopback(&u));
}

static bool listed(json_t *arr, const char *want)
{
    if (arr == NULL)
        return true; /* the document does not say: the defaults of Discovery 1.0 3 */
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (s != NULL && strcmp(s, want) == 0)
            return true;
    }
    return false;
}

/* The document's issuer and jwks_uri (and with signin the sign-in endpoints): NULL when they
 * hold, else why. */
static const char *discovery_check(json_t *d, const char *issuer, bool signin)
{
    const char *iss = json_string_value(json_object_get(d, "issuer"));
    bool http = strncmp(issuer, "http://", 7) == 0;
    if (iss == NULL || strcmp(iss, issuer) != 0)
        return "the provider's discovery document names another issuer";
    if (!endpoint_ok(json_string_value(json_object_get(d, "jwks_uri")), http))
        return "the provider's jwks_uri is missing or not https";
    if (!signin)
        return NULL;
    if (!endpoint_ok(json_string_value(json_object_get(d, "authorization_endpoint")), http))
        return "the provider's authorization_endpoint is missing or not https";
    if (!endpoint_ok(json_string_value(json_object_get(d, "token_endpoint")), http))
        return "the provider's token_endpoint is missing or not https";
    if (!listed(json_object_get(d, "response_types_supported"), "code"))
        return "the provider does not offer the authorization code flow";
    if (json_object_get(d, "code_challenge_methods_supported") != NULL &&
        !listed(json_object_get(d, "code_challenge_methods_supported"), "S256"))
        return "the provider does not offer PKCE with S256";
    return NULL;
}

static json_t *discovery(const char *body, size_t len, const char *issuer, bool signin, char *why,
                         size_t whylen)
{
    json_t *d = oauth_json_object(body, len);
    const char *bad = d == NULL ? "the provider's discovery document is not a JSON object"
                                : discovery_check(d, issuer, signin);
    if (bad != NULL) {
        say(why, whylen, bad);
        json_decref(d);
        return NULL;
    }
    return d;
}

json_t *oidc_discovery(const char *body, size_t len, const struct p2a_config *cfg, char *why,
                       size_t whylen)
{
    return discovery(body, len, cfg->upstream_issuer, true, why, whylen);
}

json_t *oidc_keys_discovery(const char *body, size_t len, const char *issuer, char *why,
                            size_t whylen)
{
    return discovery(body, len, issuer, false, why, whylen);
}

json_t *oidc_jwks(const char *body, size_t len, char *why, size_t whylen)
{
    json_t *set = oauth_json_object(body, len);
    json_t *keys = json_object_get(set, "keys");
    json_t *out = json_array();
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        const char *use = json_string_value(json_object_get(k, "use"));
        const char *kwhy;
        if (json_array_size(out) == OIDC_MAX_KEYS || (use != NULL && strcmp(use, "sig") != 0))
            continue;
        EVP_PKEY *key = jws_key_from_jwk(k, &kwhy);
        if (key != NULL)
            json_array_append(out, k);
        EVP_PKEY_free(key);
    }
    json_decref(set);
    if (json_array_size(out) == 0) {
        json_decref(out);
        say(why, whylen, "the provider's key set holds no EC P-256 or RSA signing key");
        return NULL;
    }
    return json_pack("{s:o}", "keys", out);
}

/* ---- the ID token ------------------------------------------------------------------------ */

bool oidc_jwks_has(json_t *jwks, const char *kid)
{
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(jwks, "keys"), i, k)
    {
        const char *kk = json_string_value(json_object_get(k, "kid"));
        if (kk != NULL && strcmp(kk, kid) == 0)
            return true;
    }
    return false;
}

/* The checks of the header, before any key: the algorithm allow-list and the kid. */
static enum oidc_result header_check(const char *tok, json_t *jwks, char *why, size_t whylen)
{
    const char *dot = strchr(tok, '.');
    json_t *h = dot ? jws_segment_json(tok, (size_t)(dot - tok)) : NULL;
    const char *alg = json_string_value(json_object_get(h, "alg"));
    const char *kid = json_string_value(json_object_get(h, "kid"));
    enum oidc_result rc = OIDC_OK;
    if (h == NULL) {
        say(why, whylen, "the ID token is not a signed JWT");
        rc = OIDC_REFUSED;
    } else if (alg == NULL || (strcmp(alg, "RS256") != 0 && strcmp(alg, "ES256") != 0)) {
        snprintf(why, whylen,
                 "the ID token is signed with %.16s; only RS256 and ES256 are accepted",
                 alg ? alg : "no algorithm");
        rc = OIDC_REFUSED;
    } else if (kid != NULL && !oidc_jwks_has(jwks, kid)) {
        say(why, whylen, "the ID token is signed with a key the provider does not publish");
        rc = OIDC_UNKNOWN_KEY;
    }
    json_decref(h);
    return rc;
}

bool oidc_sub_valid(const char *sub)
{
    if (sub == NULL || sub[0] == '\0' || strlen(sub) > OIDC_MAX_SUB)
        return false;
    for (; *sub; sub++)
        if ((unsigned char)*sub <= 0x20 || (unsigned char)*sub >= 0x7f)
            return false;
    return true;
}

/* The claims' checks, in the order of OpenID Connect Core 3.1.3.7. NULL when they pass. */
static const char *claims_check(json_t *c, const struct oidc_expect *x)
{
    json_t *aud = json_object_get(c, "aud"), *exp = json_object_get(c, "exp"),
           *iat = json_object_get(c, "iat");
    const char *iss = json_string_value(json_object_get(c, "iss"));
    const char *azp = json_string_value(json_object_get(c, "azp"));
    const char *nonce = json_string_value(json_object_get(c, "nonce"));
    const char *sub = json_string_value(json_object_get(c, "sub"));
    if (iss == NULL || strcmp(iss, x->issuer) != 0)
        return "the ID token was issued by another issuer";
    if (!oauth_json_names(aud, x->client_id))
        return "the ID token is not for this service (aud)";
    if (json_is_array(aud) && json_array_size(aud) > 1 && azp == NULL)
        return "the ID token has several audiences and no azp";
    if (json_object_get(c, "azp") != NULL && (azp == NULL || strcmp(azp, x->client_id) != 0))
        return "the ID token was issued to another client (azp)";
    if (!json_is_integer(exp) && !json_is_real(exp))
        return "the ID token has no expiry";
    if ((int64_t)json_number_value(exp) + x->skew_s <= x->now)
        return "the ID token has expired";
    if (!json_is_integer(iat) && !json_is_real(iat))
        return "the ID token has no issue time";
    if ((int64_t)json_number_value(iat) > x->now + x->skew_s)
        return "the ID token was issued in the future";
    if ((int64_t)json_number_value(iat) < x->now - OIDC_MAX_IAT_AGE_S - x->skew_s)
        return "the ID token was issued too long ago";
    if (nonce == NULL || !oauth_secret_eq(nonce, x->nonce))
        return "the ID token was not issued for this sign-in (nonce)";
    if (!oidc_sub_valid(sub))
        return "the ID token's subject is missing or malformed";
    return NULL;
}

enum oidc_result oidc_id_token_check(const char *tok, json_t *jwks, const struct oidc_expect *x,
                                     json_t **claims, char *why, size_t whylen)
{
    *claims = NULL;
    enum oidc_result rc = header_check(tok, jwks, why, whylen);
    if (rc != OIDC_OK)
        return rc;
    const char *jwhy;
    json_t *c = jws_verify(tok, jwks, &jwhy);
    if (c == NULL) {
        say(why, whylen, "the ID token's signature does not verify with the provider's keys");
        return OIDC_REFUSED;
    }
    const char *bad = claims_check(c, x);
    if (bad != NULL) {
        say(why, whylen, bad);
        json_decref(c);
        return OIDC_REFUSED;
    }
    *claims = c;
    return OIDC_OK;
}

/* ---- who may sign in, and as whom ------------------------------------------------------------ */

const char *oidc_allowed(const struct p2a_config *cfg, json_t *claims)
{
    const char *domains = cfg->upstream_allowed_domains;
    if (domains != NULL && domains[0] != '\0') {
        const char *email = json_string_value(json_object_get(claims, "email"));
        const char *at = email ? strrchr(email, '@') : NULL;
        if (at == NULL || !json_is_true(json_object_get(claims, "email_verified")))
            return "Your account has no verified email address, which this service requires.";
        if (!strlist_has(domains, " ,", at + 1, strlen(at + 1), true))
            return "Your email address is not in a domain this service admits.";
    }
    const char *req = cfg->upstream_required_claim;
    if (req != NULL && req[0] != '\0') {
        const char *eq = strchr(req, '=');
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - req), req);
        json_t *v = json_object_get(claims, name);
        bool ok = json_is_string(v) && strcmp(json_string_value(v), eq + 1) == 0;
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            ok = ok || (json_is_string(e) && strcmp(json_string_value(e), eq + 1) == 0);
        }
        if (!ok)
            return "Your account is not in the group this service admits.";
    }
    return NULL;
}

bool oidc_user_id(const struct p2a_config *cfg, json_t *claims, char *out, size_t n)
{
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    const char *prefix = cfg->upstream_subject_prefix ? cfg->upstream_subject_prefix : "";
    int w = snprintf(out, n, "%s%s", prefix, sub ? sub : "");
    return sub != NULL && w > 0 && (size_t)w < n;
}

void oidc_display_name(const struct p2a_config *cfg, json_t *claims, char *out, size_t n)
{
    const char *order[] = {cfg->upstream_name_claim, "name", "email", "preferred_username", "sub"};
    const char *v = NULL;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]) && (v == NULL || v[0] == '\0'); i++)
        if (order[i] != NULL)
            v = json_string_value(json_object_get(claims, order[i]));
    size_t cap = n - 1 < OIDC_MAX_NAME ? n - 1 : OIDC_MAX_NAME, o = 0;
    for (const unsigned char *p = (const unsigned char *)(v ? v : ""); *p && o < cap;) {
        size_t clen = *p < 0x80 ? 1 : (*p >= 0xf0 ? 4 : (*p >= 0xe0 ? 3 : 2));
        if (o + clen > cap || strnlen((const char *)p, clen) < clen ||
            codec_utf8_chars((const char *)p, clen) != 1)
            break;
        if (clen > 1 || (*p >= 0x20 && *p != 0x7f))
            memcpy(out + o, p, clen), o += clen;
        p += clen;
    }
    out[o] = '\0';
}
