/* idjag.c -- see idjag.h. */
#include "idjag.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "clients.h"
#include "config.h"
#include "jws.h"
#include "oauth.h"
#include "scope.h"

bool idjag_enabled(const struct p2a_config *cfg)
{
    return cfg->nid_jag_issuers > 0;
}

/* The header and payload of a compact JWS, unverified (new references), or false. */
static bool split(const char *tok, json_t **h, json_t **c)
{
    const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    *h = *c = NULL;
    if (strlen(tok) > JWS_MAX_LEN || d2 == NULL || strchr(d2 + 1, '.') != NULL)
        return false;
    *h = jws_segment_json(tok, (size_t)(d1 - tok));
    *c = jws_segment_json(d1 + 1, (size_t)(d2 - d1 - 1));
    return *h != NULL && *c != NULL;
}

const char *idjag_issuer(const struct p2a_config *cfg, const char *tok, const char **why)
{
    json_t *h, *c;
    const char *found = NULL;
    *why = "the assertion is not a JWT";
    if (split(tok, &h, &c)) {
        const char *iss = json_string_value(json_object_get(c, "iss"));
        *why = "the assertion was issued by an identity provider this service does not trust";
        for (size_t i = 0; iss != NULL && i < cfg->nid_jag_issuers && found == NULL; i++)
            if (strcmp(iss, cfg->id_jag_issuers[i]) == 0)
                found = cfg->id_jag_issuers[i];
    }
    json_decref(h);
    json_decref(c);
    return found;
}

bool idjag_discovery_url(const char *issuer, char *out, size_t n)
{
    size_t len = strlen(issuer);
    while (len > 0 && issuer[len - 1] == '/')
        len--;
    int w = snprintf(out, n, "%.*s/.well-known/openid-configuration", (int)len, issuer);
    return w > 0 && (size_t)w < n;
}

const char *idjag_issuer_of_discovery(const struct p2a_config *cfg, const char *url)
{
    char mine[IDJAG_DISCOVERY_MAX];
    for (size_t i = 0; i < cfg->nid_jag_issuers; i++)
        if (idjag_discovery_url(cfg->id_jag_issuers[i], mine, sizeof(mine)) &&
            strcmp(mine, url) == 0)
            return cfg->id_jag_issuers[i];
    return NULL;
}

/* ---- the checks -------------------------------------------------------------------------- */

/* RFC 7515 4.1.9: typ compares case-insensitively, "application/" may be left out. */
static bool typ_ok(const char *typ)
{
    if (typ != NULL && strncasecmp(typ, "application/", 12) == 0)
        typ += 12;
    return typ != NULL && strcasecmp(typ, IDJAG_TYP) == 0;
}

static enum oidc_result header_check(json_t *h, json_t *jwks, char *why, size_t whylen)
{
    const char *alg = json_string_value(json_object_get(h, "alg"));
    const char *kid = json_string_value(json_object_get(h, "kid"));
    if (!typ_ok(json_string_value(json_object_get(h, "typ")))) {
        snprintf(why, whylen, "the assertion is not an ID-JAG (its typ must be %s)", IDJAG_TYP);
        return OIDC_REFUSED;
    }
    if (alg == NULL ||
        (strcmp(alg, "RS256") != 0 && strcmp(alg, "ES256") != 0 && strcmp(alg, "PS256") != 0)) {
        snprintf(why, whylen,
                 "the assertion is signed with %.16s; only RS256, ES256 and PS256 are accepted",
                 alg ? alg : "no algorithm");
        return OIDC_REFUSED;
    }
    if (kid != NULL && !oidc_jwks_has(jwks, kid)) {
        snprintf(why, whylen, "the assertion is signed with a key its issuer does not publish");
        return OIDC_UNKNOWN_KEY;
    }
    return OIDC_OK;
}

/* aud: our issuer, with or without one trailing slash, alone (a string or a one-element
 * array): an ID-JAG is for one authorization server. */
static bool aud_ok(json_t *aud, const char *issuer)
{
    if (json_is_array(aud) && json_array_size(aud) == 1)
        aud = json_array_get(aud, 0);
    const char *a = json_string_value(aud);
    size_t n = strlen(issuer), an = a ? strlen(a) : 0;
    while (n > 0 && issuer[n - 1] == '/')
        n--;
    if (an > 0 && a[an - 1] == '/')
        an--;
    return a != NULL && an == n && strncmp(a, issuer, n) == 0;
}

static bool number(json_t *v)
{
    return json_is_integer(v) || json_is_real(v);
}

static bool jti_ok(const char *jti)
{
    size_t n = jti ? strlen(jti) : 0;
    if (n == 0 || n > IDJAG_MAX_JTI)
        return false;
    for (; *jti; jti++)
        if ((unsigned char)*jti < 0x21 || (unsigned char)*jti > 0x7e)
            return false;
    return true;
}

/* The claims' checks: NULL when they pass. */
static const char *claims_check(const struct p2a_config *cfg, json_t *c,
                                const struct idjag_expect *x)
{
    json_t *exp = json_object_get(c, "exp"), *iat = json_object_get(c, "iat"),
           *nbf = json_object_get(c, "nbf"), *scope = json_object_get(c, "scope");
    const char *iss = json_string_value(json_object_get(c, "iss"));
    const char *cid = json_string_value(json_object_get(c, "client_id"));
    const char *res = json_string_value(json_object_get(c, "resource"));
    if (iss == NULL || strcmp(iss, x->issuer) != 0)
        return "the assertion was issued by another identity provider";
    if (!aud_ok(json_object_get(c, "aud"), cfg->issuer))
        return "the assertion is not for this authorization server (aud)";
    if (cid == NULL || strcmp(cid, x->client_id) != 0)
        return "the assertion was issued to another client (client_id)";
    if (res == NULL || oauth_resource_find(cfg, res) == NULL)
        return "the assertion is for a resource this authorization server does not serve";
    if (!number(exp) || !number(iat))
        return "the assertion has no exp or no iat";
    if ((int64_t)json_number_value(exp) + x->skew_s <= x->now)
        return "the assertion has expired";
    if ((int64_t)json_number_value(iat) > x->now + x->skew_s)
        return "the assertion was issued in the future";
    if (json_number_value(exp) - json_number_value(iat) > IDJAG_MAX_LIFETIME_S)
        return "the assertion lives longer than 10 minutes";
    if (nbf != NULL && (!number(nbf) || (int64_t)json_number_value(nbf) > x->now + x->skew_s))
        return "the assertion is not valid yet (nbf)";
    if (!jti_ok(json_string_value(json_object_get(c, "jti"))))
        return "the assertion has no jti, or a malformed one";
    if (!oidc_sub_valid(json_string_value(json_object_get(c, "sub"))))
        return "the assertion's subject is missing or malformed";
    if (scope != NULL &&
        (!json_is_string(scope) || strlen(json_string_value(scope)) > SCOPE_MAX_LEN ||
         scope_check(json_string_value(scope)) != NULL))
        return "the assertion's scope is malformed";
    return NULL;
}

enum oidc_result idjag_check(const struct p2a_config *cfg, const char *tok, json_t *jwks,
                             const struct idjag_expect *x, json_t **claims, char *why,
                             size_t whylen)
{
    json_t *h, *c;
    *claims = NULL;
    bool parsed = split(tok, &h, &c);
    json_decref(c);
    enum oidc_result rc = OIDC_REFUSED;
    if (!parsed)
        snprintf(why, whylen, "the assertion is not a JWT");
    else
        rc = header_check(h, jwks, why, whylen);
    json_decref(h);
    if (rc != OIDC_OK)
        return rc;
    const char *jwhy;
    c = jws_verify(tok, jwks, &jwhy);
    if (c == NULL) {
        snprintf(why, whylen, "the assertion's signature does not verify with its issuer's keys");
        return OIDC_REFUSED;
    }
    const char *bad = claims_check(cfg, c, x);
    if (bad != NULL) {
        snprintf(why, whylen, "%s", bad);
        json_decref(c);
        return OIDC_REFUSED;
    }
    *claims = c;
    return OIDC_OK;
}

const char *idjag_resource(const struct p2a_config *cfg, json_t *claims)
{
    return oauth_resource_find(cfg, json_string_value(json_object_get(claims, "resource")));
}

/* ---- the scope ----------------------------------------------------------------------------- */

const char *idjag_scope(const struct p2a_config *cfg, json_t *claims, const char *requested,
                        char *out, size_t outlen, bool *invalid_scope)
{
    const char *asserted = json_string_value(json_object_get(claims, "scope"));
    out[0] = '\0';
    *invalid_scope = false;
    if (requested != NULL && scope_check(requested) != NULL) {
        *invalid_scope = true;
        return "scope is malformed";
    }
    /* no person consents here: an assertion that names no scope grants the resources'
     * defaults, never more (a client asking for admin gets it only where the identity provider
     * said so) */
    const char *ceiling = asserted != NULL ? asserted : cfg->resource_scopes;
    if (requested != NULL && !scope_covers(ceiling, requested))
        return asserted != NULL
                   ? "scope asks for more than the identity provider granted in the assertion"
                   : "scope asks for more than the resource's default scopes, and the assertion "
                     "grants no scope";
    const char *want = requested ? requested : ceiling;
    size_t o = 0;
    const char *t;
    size_t m;
    for (const char *p = cfg->scopes; scope_next(&p, &t, &m);) {
        bool offline =
            m == strlen(SCOPE_OFFLINE_ACCESS) && strncmp(t, SCOPE_OFFLINE_ACCESS, m) == 0;
        if (offline || !scope_has(want, t, m) || o + m + 2 > outlen)
            continue;
        o += (size_t)snprintf(out + o, outlen - o, "%s%.*s", o ? " " : "", (int)m, t);
    }
    if (o == 0) {
        *invalid_scope = true;
        return "none of the scopes asked for is offered here";
    }
    return NULL;
}
