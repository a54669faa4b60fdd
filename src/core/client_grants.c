/* client_grants.c -- which grants a registered client may use, and for which audiences.
 *
 * Anyone may register a client for the code and refresh grants (/register, a metadata
 * document): such a client acts for the person who signs in. The other grants give tokens
 * without a person in the loop (client_credentials: the client for itself; jwt-bearer: an
 * identity provider's assertion; token-exchange: another of our tokens), so only an
 * administrator registers them (the RegisterClient RPC), for a confidential client, and
 * names the resources its own tokens may be for. This file holds those rules; clients.c
 * applies them while it checks a registration (see clients.h). No I/O; any thread.
 */
#include "clients.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "oauth.h"
#include "token.h"

const char *const oauth_grant_names[OAUTH_GRANTS] = {
    OAUTH_GRANT_CODE, OAUTH_GRANT_REFRESH, OAUTH_GRANT_CLIENT_CREDENTIALS, OAUTH_GRANT_JWT_BEARER,
    OAUTH_GRANT_TOKEN_EXCHANGE};

bool oauth_grant_confidential(const char *gt)
{
    for (size_t i = OAUTH_GRANTS_PUBLIC; i < OAUTH_GRANTS; i++)
        if (strcmp(gt, oauth_grant_names[i]) == 0)
            return true;
    return false;
}

bool oauth_client_has_grant(json_t *client, const char *gt)
{
    json_t *list = json_object_get(client, "grant_types");
    if (list == NULL)
        return strcmp(gt, OAUTH_GRANT_CODE) == 0 || strcmp(gt, OAUTH_GRANT_REFRESH) == 0;
    return oauth_json_names(list, gt);
}

const char *oauth_client_resource(json_t *client, const char *resource)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(client, "resources"), i, e)
    {
        const char *s = json_string_value(e);
        if (s != NULL && token_resource_eq(s, resource))
            return s;
    }
    return NULL;
}

void oauth_client_grants_known(json_t *v, char *why, size_t whylen)
{
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        const char *s = json_string_value(e);
        bool known = false;
        for (size_t k = 0; s != NULL && k < OAUTH_GRANTS; k++)
            known = known || strcmp(s, oauth_grant_names[k]) == 0;
        if (s != NULL && !known) {
            snprintf(why, whylen, "grant_types[%zu] is not a grant type this server serves (%s)", i,
                     "authorization_code, refresh_token, client_credentials, or the URNs of "
                     "jwt-bearer and token-exchange");
            return;
        }
    }
}

/* Whether the grant list holds a grant that needs a confidential client; *which names it. */
static bool any_confidential(json_t *grants, const char **which)
{
    size_t i;
    json_t *e;
    json_array_foreach(grants, i, e)
    {
        const char *s = json_string_value(e);
        if (s != NULL && oauth_grant_confidential(s)) {
            *which = s;
            return true;
        }
    }
    return false;
}

const char *oauth_client_default_method(json_t *in, json_t *grants)
{
    const char *which;
    if (json_object_get(in, "jwks") != NULL || json_object_get(in, "jwks_uri") != NULL)
        return "private_key_jwt";
    return any_confidential(grants, &which) ? "client_secret_basic" : "none";
}

/* resources: an array of configured resources, copied as configured. */
static void client_resources(json_t *v, json_t *out, const struct p2a_config *cfg, char *why,
                             size_t whylen)
{
    if (!json_is_array(v) || json_array_size(v) > CONFIG_MAX_RESOURCES) {
        snprintf(why, whylen, "resources must be an array of at most %d URLs",
                 CONFIG_MAX_RESOURCES);
        return;
    }
    json_t *list = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        const char *s = json_string_value(e);
        const char *c =
            s != NULL && strlen(s) <= OAUTH_MAX_URI ? oauth_resource_find(cfg, s) : NULL;
        if (c == NULL) {
            snprintf(why, whylen,
                     "resources[%zu] is not a resource this server serves (PIPE2_AUTH_RESOURCES)",
                     i);
            json_decref(list);
            return;
        }
        if (!oauth_json_names(list, c))
            json_array_append_new(list, json_string(c));
    }
    json_object_set_new(out, "resources", list);
}

void oauth_client_admin_rules(json_t *in, json_t *out, const struct p2a_config *cfg, char *why,
                              size_t whylen)
{
    json_t *grants = json_object_get(out, "grant_types");
    enum oauth_auth_method m = oauth_auth_method_parse(
        json_string_value(json_object_get(out, "token_endpoint_auth_method")));
    const char *which = NULL;
    bool confidential = any_confidential(grants, &which);
    if (confidential && m == OAUTH_AUTH_NONE) {
        snprintf(why, whylen,
                 "%s needs a confidential client: token_endpoint_auth_method "
                 "client_secret_basic, client_secret_post or private_key_jwt",
                 which);
        return;
    }
    if (m != OAUTH_AUTH_PRIVATE_KEY_JWT &&
        (json_object_get(in, "jwks") != NULL || json_object_get(in, "jwks_uri") != NULL)) {
        snprintf(why, whylen,
                 "jwks and jwks_uri are for token_endpoint_auth_method "
                 "private_key_jwt");
        return;
    }
    json_t *res = json_object_get(in, "resources");
    if (res != NULL)
        client_resources(res, out, cfg, why, whylen);
    bool needs = oauth_json_names(grants, OAUTH_GRANT_CLIENT_CREDENTIALS) ||
                 oauth_json_names(grants, OAUTH_GRANT_TOKEN_EXCHANGE);
    if (why[0] == '\0' && needs && json_array_size(json_object_get(out, "resources")) == 0)
        snprintf(why, whylen,
                 "%s needs resources: the audiences (of PIPE2_AUTH_RESOURCES) its tokens may have",
                 oauth_json_names(grants, OAUTH_GRANT_CLIENT_CREDENTIALS)
                     ? OAUTH_GRANT_CLIENT_CREDENTIALS
                     : OAUTH_GRANT_TOKEN_EXCHANGE);
}
