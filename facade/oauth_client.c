/* oauth_client.c -- client authentication for /token, /revoke and /introspect, and RFC 7591
 * registration (see oauth_internal.h). */
#include "oauth_internal.h"

/* ---- client authentication (token, revoke, introspect) ------------------------------------- */

static void on_client_for_auth(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                               size_t n);

/* Reads the client's credentials (Basic, or client_id and client_secret in the body),
 * looks the client up and calls r->after_client once it is authenticated. */
void oauth_client_auth(struct oreq *r)
{
    const char *authz = oh_req_header(r->http, "Authorization");
    const char *body_id = oauth_form_get(&r->form, "client_id");
    const char *body_secret = oauth_form_get(&r->form, "client_secret");
    if (authz != NULL && strncasecmp(authz, "Basic ", 6) == 0) {
        if (body_secret != NULL) {
            oreq_error(r, 400, "invalid_request", "use one client authentication method");
            return;
        }
        if (!oauth_basic_parse(authz, r->client_id, sizeof(r->client_id), r->secret,
                               sizeof(r->secret))) {
            oreq_error(r, 401, "invalid_client", "malformed Basic credentials");
            return;
        }
        if (body_id != NULL && strcmp(body_id, r->client_id) != 0) {
            oreq_error(r, 400, "invalid_request", "client_id differs from the credentials");
            return;
        }
        r->has_secret = true;
    } else {
        if (body_id == NULL) {
            oreq_error(r, 401, "invalid_client", "client authentication is required");
            return;
        }
        snprintf(r->client_id, sizeof(r->client_id), "%s", body_id);
        if (body_secret != NULL) {
            snprintf(r->secret, sizeof(r->secret), "%s", body_secret);
            r->has_secret = true;
        }
    }
    if (!oauth_client_id_valid(r->client_id)) {
        oreq_error(r, 401, "invalid_client", "unknown client; register again");
        return;
    }
    oauth_store_client_get(r->o->h.store, r->client_id, r->o->cfg->client_idle_expiry_s,
                           on_client_for_auth, r);
}

static void on_client_for_auth(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                               size_t n)
{
    struct oreq *r = oreq_resume_client(arg, err, v, lens, n);
    if (r == NULL)
        return;
    if (r->client == NULL) {
        oreq_error(r, 401, "invalid_client", "unknown client; register again");
        return;
    }
    const char *method =
        json_string_value(json_object_get(r->client, "token_endpoint_auth_method"));
    const char *digest = json_string_value(json_object_get(r->client, "client_secret_sha256"));
    if (oauth_auth_method_parse(method) == OAUTH_AUTH_NONE) {
        if (r->has_secret) {
            oreq_error(r, 401, "invalid_client", "this client has no secret");
            return;
        }
    } else {
        char d[OAUTH_HEX_LEN + 1];
        oauth_digest_hex(r->secret, strlen(r->secret), d);
        if (!r->has_secret || digest == NULL || !oauth_secret_eq(d, digest)) {
            oreq_error(r, 401, "invalid_client", "client authentication failed");
            return;
        }
    }
    r->after_client(r);
}

/* ---- /register ------------------------------------------------------------------------------ */

static void on_registered(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                          size_t n)
{
    (void)lens;
    struct oreq *r = oreq_resume(arg, err, n, 1);
    if (r == NULL)
        return;
    if (strcmp(v[0], "1") != 0) { /* a 128-bit id already taken: not worth a retry */
        oreq_error(r, 500, "server_error", "could not store the client");
        return;
    }
    log_info("oauth.client_registered", "registered client %s from %s", r->reg.client_id, r->addr);
    oh_add_header(r->http, "Location", r->reg.client_id);
    oreq_json(r, 201, r->reg.response);
}

static void on_register_rate(void *arg, p2a_err err, const char *const *v, const size_t *lens,
                             size_t n)
{
    (void)lens;
    struct oreq *r = oreq_resume(arg, err, n, 2);
    if (r == NULL)
        return;
    if (strcmp(v[0], "0") != 0) {
        oh_add_header(r->http, "Retry-After", v[1]);
        oreq_error(r, 429, "too_many_requests",
                   strcmp(v[0], "1") == 0
                       ? "too many registrations from this address; try again later"
                       : "too many registrations; try again later");
        return;
    }
    size_t len;
    char *text = oh_body(r->http, &len);
    json_t *body = oauth_json_object(text, len);
    free(text);
    if (body == NULL) {
        oreq_error(r, 400, "invalid_client_metadata", "the body must be a JSON object");
        return;
    }
    const char *code;
    char desc[200];
    p2a_err e = oauth_client_register(body, clock_now(), &r->reg, &code, desc, sizeof(desc));
    json_decref(body);
    if (e != P2A_OK) {
        oreq_error(r, e == P2A_ERR_INVALID ? 400 : 500, code, desc);
        return;
    }
    oauth_store_client_put(r->o->h.store, r->reg.client_id, r->reg.record,
                           r->o->cfg->client_unused_expiry_s, on_registered, r);
}

void oauth_do_register(struct oreq *r)
{
    if (!oh_content_type_is(r->http, "application/json")) {
        oreq_error(r, 400, "invalid_client_metadata", "send the metadata as application/json");
        return;
    }
    const struct p2a_config *cfg = r->o->cfg;
    oauth_store_register_hit(r->o->h.store, r->addr, cfg->register_rate_limit,
                             cfg->register_global_rate_limit, on_register_rate, r);
}
