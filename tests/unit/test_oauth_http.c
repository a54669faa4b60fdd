/* test_oauth_http.c -- the facade's OAuth handlers over a scripted store (fake_store.h):
 * what each endpoint answers when Redis says yes, no, fails or answers short, without a
 * Redis. The handlers are reached the way the facade reaches them: an evhttp server on a
 * loopback port of this process, asked by an evhttp client on the same loop; the store's
 * answers are given between turns of the loop, as a Redis connection would give them. */
#include "cm.h"

#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <jansson.h>
#include <openssl/sha.h>

#include "clients.h"
#include "clock.h"
#include "codec.h"
#include "config.h"
#include "facade_http.h"
#include "fake_store.h"
#include "hashpool.h"
#include "helpers.h"
#include "keys.h"
#include "mbuf.h"
#include "oauth.h"
#include "oauth_http.h"
#include "revoke.h"
#include "svckeys.h"
#include "token.h"

#define CLIENT_ID "c_AAAAAAAAAAAAAAAAAAAAAA"
#define VERIFIER "dBjftJeZ4CVP-mJ92e1ILx7bUbhCBdVYcU6dnvFkaXE-abc"
#define SVC_KEY "introspect-key-for-the-facade-test"
#define CHALLENGE "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

struct fx {
    char *dir;
    struct p2a_config cfg;
    struct keyring *keys;
    struct svckeys *svckeys;
    struct revoke_set *revoked;
    struct hashpool *pool;
    struct event_base *base;
    struct evhttp *http;
    struct oauth_http *o;
    int port;
};

/* One answer as the client saw it. */
struct resp {
    bool done;
    int status; /* -1: the connection closed without an answer */
    char ctype[128], location[2048], retry_after[16], challenge[128], allow[64], origin[8];
    char *body;
    json_t *json; /* the body, when it is JSON */
};

static const struct keyring *fx_keys(void *arg)
{
    return ((struct fx *)arg)->keys;
}

static void serve(struct evhttp_request *req, void *arg)
{
    struct fx *f = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (f->o == NULL || path == NULL || !oauth_http_handle(f->o, req, path))
        evhttp_send_error(req, 404, NULL);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->dir = th_tmpdir();
    EVP_PKEY_free(th_write_key(f->dir, "k1"));
    char hex[OAUTH_HEX_LEN + 1], line[160];
    oauth_digest_hex(SVC_KEY, strlen(SVC_KEY), hex);
    snprintf(line, sizeof(line), "introspect %s gateway\n", hex);
    char *svc = th_write_file(f->dir, "service-keys", line);
    setenv("PIPE2_AUTH_KEYS_DIR", f->dir, 1);
    setenv("PIPE2_AUTH_SERVICE_KEYS_FILE", svc, 1);
    setenv("PIPE2_AUTH_SCOPES", "mcp files offline_access", 1);
    free(svc);
    char err[512], *argv[] = {"test"};
    assert_int_equal(config_load(&f->cfg, 1, argv, err, sizeof(err)), P2A_OK);
    assert_int_equal(keys_load(f->cfg.keys_dir, &f->keys, err, sizeof(err)), P2A_OK);
    assert_int_equal(svckeys_load(f->cfg.service_keys_file, &f->svckeys, err, sizeof(err)), P2A_OK);
    f->revoked = revoke_new(20000);
    revoke_synced(f->revoked, clock_mono_ms(), 1);
    assert_int_equal(hashpool_new(1, 4, &f->pool), P2A_OK);
    f->base = event_base_new();
    assert_non_null(f->base);
    struct facade_hooks h = {.keys = fx_keys,
                             .arg = f,
                             .store = store_new(f->base, &f->cfg, "fake"),
                             .revoked = f->revoked,
                             .svckeys = f->svckeys,
                             .hashpool = f->pool};
    f->o = oauth_http_new(f->base, &f->cfg, &h);
    assert_non_null(f->o);
    f->http = evhttp_new(f->base);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
    assert_non_null(bs);
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &slen),
                     0);
    f->port = ntohs(sin.sin_port);
    evhttp_set_gencb(f->http, serve, f);
    fake_store_reset();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    evhttp_free(f->http);
    oauth_http_free(f->o);
    fake_store_run(); /* the budget's reading in flight, orphaned */
    event_base_free(f->base);
    hashpool_free(f->pool);
    revoke_free(f->revoked);
    svckeys_free(f->svckeys);
    keys_free(f->keys);
    config_deinit(&f->cfg);
    token_thread_cleanup();
    th_rmtree(f->dir);
    free(f);
    return 0;
}

static void resp_deinit(struct resp *a)
{
    free(a->body);
    json_decref(a->json);
    memset(a, 0, sizeof(*a));
}

static void copy_header(struct evhttp_request *req, const char *name, char *out, size_t outlen)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);
    snprintf(out, outlen, "%s", v ? v : "");
}

static void on_response(struct evhttp_request *req, void *arg)
{
    struct resp *a = arg;
    a->done = true;
    a->status = -1;
    if (req == NULL || evhttp_request_get_response_code(req) == 0)
        return;
    a->status = evhttp_request_get_response_code(req);
    copy_header(req, "Content-Type", a->ctype, sizeof(a->ctype));
    copy_header(req, "Location", a->location, sizeof(a->location));
    copy_header(req, "Retry-After", a->retry_after, sizeof(a->retry_after));
    copy_header(req, "WWW-Authenticate", a->challenge, sizeof(a->challenge));
    copy_header(req, "Allow", a->allow, sizeof(a->allow));
    copy_header(req, "Access-Control-Allow-Origin", a->origin, sizeof(a->origin));
    struct evbuffer *b = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(b);
    a->body = calloc(1, len + 1);
    evbuffer_copyout(b, a->body, len);
    a->json = json_loads(a->body, 0, NULL);
}

/* Turns the loop until done() holds, answering the store's calls between turns when
 * answer_store; fails the test past a 10 s deadline. */
static void pump(struct fx *f, bool (*done)(void *), void *arg, bool answer_store)
{
    int64_t deadline = clock_mono_ms() + 10000;
    while (!done(arg)) {
        assert_true(clock_mono_ms() < deadline);
        struct timeval tv = {0, 2000};
        event_base_loopexit(f->base, &tv);
        event_base_dispatch(f->base);
        if (answer_store)
            fake_store_run();
    }
}

static bool resp_done(void *arg)
{
    return ((struct resp *)arg)->done;
}

static struct evhttp_connection *send_request(struct fx *f, enum evhttp_cmd_type cmd,
                                              const char *uri, const char *ctype, const char *body,
                                              const char *authz, struct resp *a)
{
    memset(a, 0, sizeof(*a));
    struct evhttp_connection *c =
        evhttp_connection_base_new(f->base, NULL, "127.0.0.1", (ev_uint16_t)f->port);
    assert_non_null(c);
    struct evhttp_request *req = evhttp_request_new(on_response, a);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", "127.0.0.1");
    if (ctype != NULL)
        evhttp_add_header(h, "Content-Type", ctype);
    if (authz != NULL)
        evhttp_add_header(h, "Authorization", authz);
    if (body != NULL)
        evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    assert_int_equal(evhttp_make_request(c, req, cmd, uri), 0);
    return c;
}

/* Asks and waits for the answer, the store answering each call with the replies queued. */
static void ask(struct fx *f, enum evhttp_cmd_type cmd, const char *uri, const char *ctype,
                const char *body, const char *authz, struct resp *a)
{
    struct evhttp_connection *c = send_request(f, cmd, uri, ctype, body, authz, a);
    pump(f, resp_done, a, true);
    evhttp_connection_free(c);
}

static void post_form(struct fx *f, const char *uri, const char *body, const char *authz,
                      struct resp *a)
{
    ask(f, EVHTTP_REQ_POST, uri, "application/x-www-form-urlencoded", body, authz, a);
}

static size_t store_calls(void)
{
    size_t n = 0;
    while (fake_store_call(n, NULL) != NULL)
        n++;
    return n;
}

static bool store_called(void *arg)
{
    (void)arg;
    return store_calls() > 0;
}

/* The OAuth error code of a JSON answer. */
static const char *oauth_error(const struct resp *a)
{
    return json_string_value(json_object_get(a->json, "error"));
}

static struct fake_reply items1(const char *v)
{
    return (struct fake_reply){.items = {v}, .n = 1};
}

/* ---- metadata ---- */

static void metadata__served_without_the_store(void **state)
{
    struct fx *f = *state;
    struct resp a;
    ask(f, EVHTTP_REQ_GET, "/.well-known/oauth-authorization-server", NULL, NULL, NULL, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(json_string_value(json_object_get(a.json, "issuer")), f->cfg.issuer);
    /* scopes_supported: PIPE2_AUTH_SCOPES, one member a scope */
    json_t *scopes = json_object_get(a.json, "scopes_supported");
    struct mbuf joined = {0};
    for (size_t i = 0; i < json_array_size(scopes); i++)
        mbuf_printf(&joined, "%s%s", i ? " " : "", json_string_value(json_array_get(scopes, i)));
    assert_string_equal(joined.s, f->cfg.scopes);
    mbuf_free(&joined);
    assert_int_equal(store_calls(), 0);
    resp_deinit(&a);

    /* a resource advertises its own scopes, never offline_access (SEP-2207) */
    ask(f, EVHTTP_REQ_GET, "/.well-known/oauth-protected-resource/mcp", NULL, NULL, NULL, &a);
    assert_int_equal(a.status, 200);
    json_t *rs = json_object_get(a.json, "scopes_supported");
    assert_int_equal(json_array_size(rs), 1);
    assert_string_equal(json_string_value(json_array_get(rs, 0)), f->cfg.resource_scopes);
    resp_deinit(&a);

    ask(f, EVHTTP_REQ_POST, "/.well-known/oauth-authorization-server", NULL, NULL, NULL, &a);
    assert_int_equal(a.status, 405);
    assert_string_equal(oauth_error(&a), "invalid_request");
    resp_deinit(&a);
}

/* ---- the endpoint table ---- */

/* How each row matches, which methods it takes (Allow on a 405), which are CORS, and that
 * every answer counts under its row's name. */
static void route__paths_methods_and_counts(void **state)
{
    struct fx *f = *state;
    static const struct {
        enum evhttp_cmd_type cmd;
        const char *path;
        int status;
        const char *allow;  /* on a 405 */
        const char *origin; /* Access-Control-Allow-Origin */
    } cases[] = {
        {EVHTTP_REQ_GET, "/.well-known/oauth-protected-resource", 200, "", "*"},
        {EVHTTP_REQ_GET, "/.well-known/oauth-authorization-server/elsewhere", 404, "", "*"},
        {EVHTTP_REQ_GET, "/.well-known/openid-configuration", 404, "", "*"},
        {EVHTTP_REQ_GET, "/.well-known/oauth-protected-resourcex", 404, "", "*"},
        {EVHTTP_REQ_POST, "/jwks.json", 405, "GET, HEAD, OPTIONS", "*"},
        {EVHTTP_REQ_GET, "/token", 405, "POST", "*"},
        {EVHTTP_REQ_PUT, "/authorize", 405, "GET, POST", ""},
        {EVHTTP_REQ_GET, "/account/tokens", 405, "POST", ""},
        {EVHTTP_REQ_GET, "/account", 404, "", ""}, /* PIPE2_AUTH_ACCOUNT_PAGES is off */
        {EVHTTP_REQ_GET, "/account/", 404, "", ""},
        {EVHTTP_REQ_GET, "/account/other", 404, "", ""}, /* not ours: the server's 404 */
        {EVHTTP_REQ_GET, "/token/", 404, "", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct resp a;
        ask(f, cases[i].cmd, cases[i].path, NULL, NULL, NULL, &a);
        assert_int_equal(a.status, cases[i].status);
        assert_string_equal(a.allow, cases[i].allow);
        assert_string_equal(a.origin, cases[i].origin);
        resp_deinit(&a);
    }
    assert_int_equal(store_calls(), 0);
    struct mbuf m = {0};
    oauth_http_metrics(f->o, &m);
    static const char *const want[] = {
        "{endpoint=\"protected_resource_metadata\",code=\"200\"} 1\n",
        "{endpoint=\"well_known_other\",code=\"404\"} 3\n",
        "{endpoint=\"jwks\",code=\"405\"} 1\n",
        "{endpoint=\"token\",code=\"405\"} 1\n",
        "{endpoint=\"authorize\",code=\"405\"} 1\n",
        "{endpoint=\"account_tokens\",code=\"405\"} 1\n",
        "{endpoint=\"account\",code=\"404\"} 2\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_non_null(strstr(m.s, want[i]));
    mbuf_free(&m);
}

/* ---- /register ---- */

static const struct fake_reply counted = {.items = {"0", "0"}, .n = 2};

static const char reg_body[] = "{\"redirect_uris\":[\"http://127.0.0.1:9999/cb\"],"
                               "\"token_endpoint_auth_method\":\"none\","
                               "\"client_name\":\"Unit\"}";

static void register__stores_the_client(void **state)
{
    struct fx *f = *state;
    fake_store_reply(counted);     /* the rate counters */
    fake_store_reply(items1("1")); /* stored */
    struct resp a;
    ask(f, EVHTTP_REQ_POST, "/register", "application/json", reg_body, NULL, &a);
    assert_int_equal(a.status, 201);
    const char *id = json_string_value(json_object_get(a.json, "client_id"));
    assert_non_null(id);
    assert_true(oauth_client_id_valid(id));
    assert_string_equal(a.location, id);
    assert_int_equal(store_calls(), 2);
    const char *first;
    fake_store_call(0, &first);
    assert_string_equal(first, "p2a:rl:{register}:127.0.0.1");
    fake_store_call(1, &first);
    assert_non_null(strstr(first, id));
    resp_deinit(&a);
}

/* Over its address's limit, or over everyone's: 429 with the window's rest as Retry-After,
 * and nothing stored. */
static void register__rate_limited(void **state)
{
    struct fx *f = *state;
    static const char *const over[] = {"1", "2"};
    for (size_t i = 0; i < 2; i++) {
        fake_store_reset();
        fake_store_reply((struct fake_reply){.items = {over[i], "1800"}, .n = 2});
        struct resp a;
        ask(f, EVHTTP_REQ_POST, "/register", "application/json", reg_body, NULL, &a);
        assert_int_equal(a.status, 429);
        assert_string_equal(oauth_error(&a), "too_many_requests");
        assert_string_equal(a.retry_after, "1800");
        assert_int_equal(store_calls(), 1); /* nothing stored */
        resp_deinit(&a);
    }
}

static void register__bad_metadata_is_400_and_stores_nothing(void **state)
{
    struct fx *f = *state;
    fake_store_reply(counted);
    struct resp a;
    ask(f, EVHTTP_REQ_POST, "/register", "application/json",
        "{\"redirect_uris\":[\"http://evil.example/cb\"],\"token_endpoint_auth_method\":\"none\"}",
        NULL, &a);
    assert_int_equal(a.status, 400);
    assert_string_equal(oauth_error(&a), "invalid_redirect_uri");
    assert_int_equal(store_calls(), 1);
    resp_deinit(&a);
}

static void register__redis_down_is_503(void **state)
{
    struct fx *f = *state;
    fake_store_reply((struct fake_reply){.err = P2A_ERR_UNAVAILABLE});
    struct resp a;
    ask(f, EVHTTP_REQ_POST, "/register", "application/json", reg_body, NULL, &a);
    assert_int_equal(a.status, 503);
    assert_string_equal(oauth_error(&a), "temporarily_unavailable");
    assert_string_equal(a.retry_after, "1");
    resp_deinit(&a);
}

static void register__short_reply_is_503(void **state)
{
    struct fx *f = *state;
    fake_store_reply(counted);
    fake_store_reply((struct fake_reply){.n = 0}); /* an empty reply where one item is due */
    struct resp a;
    ask(f, EVHTTP_REQ_POST, "/register", "application/json", reg_body, NULL, &a);
    assert_int_equal(a.status, 503);
    assert_string_equal(oauth_error(&a), "temporarily_unavailable");
    resp_deinit(&a);
}

static void register__id_taken_is_500(void **state)
{
    struct fx *f = *state;
    fake_store_reply(counted);
    fake_store_reply(items1("0"));
    struct resp a;
    ask(f, EVHTTP_REQ_POST, "/register", "application/json", reg_body, NULL, &a);
    assert_int_equal(a.status, 500);
    assert_string_equal(oauth_error(&a), "server_error");
    resp_deinit(&a);
}

/* ---- /token ---- */

static const char public_client[] = "{\"client_id\":\"" CLIENT_ID "\","
                                    "\"redirect_uris\":[\"http://127.0.0.1:9999/cb\"],"
                                    "\"token_endpoint_auth_method\":\"none\"}";

/* The code's binding as /authorize stores it, for VERIFIER. */
static char *code_binding(struct fx *f, const char *client_id)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)VERIFIER, strlen(VERIFIER), d);
    char *chal = th_b64url(d, sizeof(d));
    json_t *b = json_pack("{s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:I}", "client_id", client_id,
                          "redirect_uri", "http://127.0.0.1:9999/cb", "redirect_given", 1,
                          "challenge", chal, "resource", f->cfg.resources[0], "scope", "mcp",
                          "user_id", "u_unit", "auth_time", (json_int_t)clock_now());
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    free(chal);
    return s;
}

static const char code_form[] = "grant_type=authorization_code&code=thecode&client_id=" CLIENT_ID
                                "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9999%2Fcb"
                                "&code_verifier=" VERIFIER;

static void token__code_grant_then_introspect(void **state)
{
    struct fx *f = *state;
    char *binding = code_binding(f, CLIENT_ID);
    fake_store_reply(items1(public_client));
    fake_store_reply((struct fake_reply){.items = {"0", binding}, .n = 2});
    fake_store_reply(items1("1")); /* family created */
    struct resp a;
    post_form(f, "/token", code_form, NULL, &a);
    free(binding);
    assert_int_equal(a.status, 200);
    const char *at = json_string_value(json_object_get(a.json, "access_token"));
    assert_non_null(at);
    assert_non_null(json_string_value(json_object_get(a.json, "refresh_token")));
    assert_string_equal(json_string_value(json_object_get(a.json, "scope")), "mcp");
    assert_int_equal(store_calls(), 4); /* and the client, used, kept alive */

    /* RFC 7662 with a service key: answered from the process, no store call */
    fake_store_reset();
    char form[4096];
    snprintf(form, sizeof(form), "token=%s", at);
    struct resp b;
    post_form(f, "/introspect", form, "Bearer " SVC_KEY, &b);
    assert_int_equal(b.status, 200);
    assert_true(json_is_true(json_object_get(b.json, "active")));
    assert_string_equal(json_string_value(json_object_get(b.json, "client_id")), CLIENT_ID);
    assert_string_equal(json_string_value(json_object_get(b.json, "sub")), "u_unit");
    assert_int_equal(store_calls(), 0);
    resp_deinit(&b);

    /* a wrong service key learns nothing */
    post_form(f, "/introspect", form, "Bearer not-a-key", &b);
    assert_int_equal(b.status, 401);
    assert_string_equal(oauth_error(&b), "invalid_client");
    assert_null(json_object_get(b.json, "active"));
    resp_deinit(&b);
    resp_deinit(&a);
}

/* invalid_client is in the body for every client to read: a challenge only echoes the
 * scheme the client used (Basic), never one after credentials in the form. */
static void token__unknown_client_is_401(void **state)
{
    struct fx *f = *state;
    fake_store_reply(items1("")); /* no record */
    struct resp a;
    post_form(f, "/token", code_form, NULL, &a);
    assert_int_equal(a.status, 401);
    assert_string_equal(oauth_error(&a), "invalid_client");
    assert_string_equal(a.challenge, "");
    assert_int_equal(store_calls(), 1);
    resp_deinit(&a);

    fake_store_reply(items1(""));
    post_form(f, "/token", "grant_type=refresh_token&refresh_token=rt",
              "Basic Y19BQUFBQUFBQUFBQUFBQUFBQUFBQUFBOnNlY3JldA==", &a); /* c_AAA...:secret */
    assert_int_equal(a.status, 401);
    assert_string_equal(oauth_error(&a), "invalid_client");
    assert_string_equal(a.challenge, "Basic realm=\"pipe2-auth\"");
    resp_deinit(&a);
}

static void token__wrong_verifier_is_invalid_grant(void **state)
{
    struct fx *f = *state;
    char *binding = code_binding(f, CLIENT_ID);
    fake_store_reply(items1(public_client));
    fake_store_reply((struct fake_reply){.items = {"0", binding}, .n = 2});
    struct resp a;
    char form[1024];
    snprintf(form, sizeof(form), "%.*s%s", (int)(sizeof(code_form) - 1 - 3), code_form, "xyz");
    post_form(f, "/token", form, NULL, &a);
    free(binding);
    assert_int_equal(a.status, 400);
    assert_string_equal(oauth_error(&a), "invalid_grant");
    assert_non_null(
        strstr(json_string_value(json_object_get(a.json, "error_description")), "code_verifier"));
    assert_int_equal(store_calls(), 2); /* no family created */
    resp_deinit(&a);
}

static void token__code_of_another_client_is_invalid_grant(void **state)
{
    struct fx *f = *state;
    char *binding = code_binding(f, "c_BBBBBBBBBBBBBBBBBBBBBB");
    fake_store_reply(items1(public_client));
    fake_store_reply((struct fake_reply){.items = {"0", binding}, .n = 2});
    struct resp a;
    post_form(f, "/token", code_form, NULL, &a);
    free(binding);
    assert_int_equal(a.status, 400);
    assert_string_equal(oauth_error(&a), "invalid_grant");
    resp_deinit(&a);
}

static void token__reused_code_revokes_its_tokens(void **state)
{
    struct fx *f = *state;
    fake_store_reply(items1(public_client));
    fake_store_reply((struct fake_reply){.items = {"1", "fam1"}, .n = 2});
    char exp[24];
    snprintf(exp, sizeof(exp), "%lld", (long long)clock_now() + 600);
    fake_store_reply((struct fake_reply){.items = {"jti-issued-for-the-code", exp}, .n = 2});
    struct resp a;
    post_form(f, "/token", code_form, NULL, &a);
    assert_int_equal(a.status, 400);
    assert_string_equal(oauth_error(&a), "invalid_grant");
    assert_int_equal(store_calls(), 3);
    const char *first;
    fake_store_call(2, &first);
    assert_string_equal(first, "p2a:{t}:fam:fam1"); /* the family the code named, by key */
    /* revoked in this process at once, before the view hears it from Redis */
    assert_true(revoke_contains(f->revoked, "jti-issued-for-the-code"));
    resp_deinit(&a);
}

static void token__redis_error_mid_flow_is_503(void **state)
{
    struct fx *f = *state;
    fake_store_reply(items1(public_client));
    fake_store_reply((struct fake_reply){.err = P2A_ERR_INTERNAL});
    struct resp a;
    post_form(f, "/token", code_form, NULL, &a);
    assert_int_equal(a.status, 503);
    assert_string_equal(oauth_error(&a), "temporarily_unavailable");
    resp_deinit(&a);
}

static void token__refresh_codes_map_to_errors(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *code, *error;
    } cases[] = {{"-1", "invalid_grant"},
                 {"-2", "invalid_grant"},
                 {"-4", "invalid_grant"},
                 {"-5", "invalid_scope"},
                 {"-6", "invalid_target"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_store_reset();
        fake_store_reply(items1(public_client));
        fake_store_reply(items1("fam")); /* the token's family, then the script */
        fake_store_reply(items1(cases[i].code));
        struct resp a;
        post_form(f, "/token", "grant_type=refresh_token&refresh_token=rt&client_id=" CLIENT_ID,
                  NULL, &a);
        assert_int_equal(a.status, 400);
        assert_string_equal(oauth_error(&a), cases[i].error);
        resp_deinit(&a);
    }
    /* a replayed old member: the grant's access tokens are revoked here too */
    fake_store_reset();
    fake_store_reply(items1(public_client));
    fake_store_reply(items1("fam"));
    char exp[24];
    snprintf(exp, sizeof(exp), "%lld", (long long)clock_now() + 600);
    fake_store_reply((struct fake_reply){.items = {"-3", "jti-of-the-grant", exp}, .n = 3});
    struct resp a;
    post_form(f, "/token", "grant_type=refresh_token&refresh_token=rt&client_id=" CLIENT_ID, NULL,
              &a);
    assert_int_equal(a.status, 400);
    assert_true(revoke_contains(f->revoked, "jti-of-the-grant"));
    resp_deinit(&a);
}

static void token__refresh_short_success_is_not_trusted(void **state)
{
    struct fx *f = *state;
    fake_store_reply(items1(public_client));
    fake_store_reply(items1("fam"));
    fake_store_reply((struct fake_reply){.items = {"0", "fam"}, .n = 2}); /* 5 are due */
    struct resp a;
    post_form(f, "/token", "grant_type=refresh_token&refresh_token=rt&client_id=" CLIENT_ID, NULL,
              &a);
    assert_int_equal(a.status, 400);
    assert_null(json_object_get(a.json, "access_token"));
    assert_int_equal(store_calls(), 3);
    resp_deinit(&a);
}

/* Refresh tokens follow the client's registered grant_types. */
static void token__no_refresh_token_without_its_grant_type(void **state)
{
    struct fx *f = *state;
    static const char code_only[] = "{\"client_id\":\"" CLIENT_ID "\","
                                    "\"redirect_uris\":[\"http://127.0.0.1:9999/cb\"],"
                                    "\"grant_types\":[\"authorization_code\"],"
                                    "\"token_endpoint_auth_method\":\"none\"}";
    char *binding = code_binding(f, CLIENT_ID);
    fake_store_reply(items1(code_only));
    fake_store_reply((struct fake_reply){.items = {"0", binding}, .n = 2});
    fake_store_reply(items1("1"));
    struct resp a;
    post_form(f, "/token", code_form, NULL, &a);
    free(binding);
    assert_int_equal(a.status, 200);
    assert_non_null(json_object_get(a.json, "access_token"));
    assert_null(json_object_get(a.json, "refresh_token"));
    resp_deinit(&a);

    fake_store_reset();
    fake_store_reply(items1(code_only));
    post_form(f, "/token", "grant_type=refresh_token&refresh_token=rt&client_id=" CLIENT_ID, NULL,
              &a);
    assert_int_equal(a.status, 400);
    assert_string_equal(oauth_error(&a), "unauthorized_client");
    assert_int_equal(store_calls(), 1);
    resp_deinit(&a);
}

/* RFC 7662 2.1: a refresh token is introspectable while it is its grant's current one. */
static void introspect__refresh_tokens(void **state)
{
    struct fx *f = *state;
    fake_store_reply(items1("fam")); /* the token's family, its user, then what it says */
    fake_store_reply(items1("u_unit"));
    fake_store_reply((struct fake_reply){
        .items = {CLIENT_ID, "u_unit", "mcp offline_access", "http://127.0.0.1:3000/mcp", "600"},
        .n = 5});
    struct resp a;
    post_form(f, "/introspect", "token=a-refresh-token", "Bearer " SVC_KEY, &a);
    assert_int_equal(a.status, 200);
    assert_true(json_is_true(json_object_get(a.json, "active")));
    assert_string_equal(json_string_value(json_object_get(a.json, "token_use")), "refresh");
    assert_string_equal(json_string_value(json_object_get(a.json, "client_id")), CLIENT_ID);
    assert_string_equal(json_string_value(json_object_get(a.json, "scope")), "mcp offline_access");
    json_int_t exp = json_integer_value(json_object_get(a.json, "exp"));
    assert_true(exp >= clock_now() + 590 && exp <= clock_now() + 600);
    const char *first;
    fake_store_call(0, &first);
    char want[128];
    oauth_digest_hex("a-refresh-token", 15, want + snprintf(want, 14, "p2a:{t}:rt:"));
    assert_string_equal(first, want); /* looked up by its digest, never the token */
    resp_deinit(&a);

    fake_store_reset();
    fake_store_reply(items1("")); /* unknown: the first step ends it */
    post_form(f, "/introspect", "token=a-refresh-token", "Bearer " SVC_KEY, &a);
    assert_int_equal(a.status, 200);
    assert_false(json_is_true(json_object_get(a.json, "active")));
    assert_int_equal(json_object_size(a.json), 1);
    resp_deinit(&a);

    fake_store_reset();
    fake_store_reply(items1("fam"));
    fake_store_reply(items1("")); /* the family went in between: unknown */
    post_form(f, "/introspect", "token=a-refresh-token", "Bearer " SVC_KEY, &a);
    assert_int_equal(a.status, 200);
    assert_int_equal(json_object_size(a.json), 1);
    const char *key;
    fake_store_call(1, &key);
    assert_string_equal(key, "p2a:{t}:fam:fam"); /* the step between: the family's user */
    assert_null(fake_store_call(2, &key));       /* and no third step */
    resp_deinit(&a);
}

/* ---- /authorize ---- */

static void authorize__redis_down_is_a_page(void **state)
{
    struct fx *f = *state;
    fake_store_reply((struct fake_reply){.err = P2A_ERR_UNAVAILABLE});
    struct resp a;
    ask(f, EVHTTP_REQ_GET,
        "/authorize?response_type=code&client_id=" CLIENT_ID
        "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9999%2Fcb&code_challenge=" CHALLENGE
        "&code_challenge_method=S256&state=s",
        NULL, NULL, NULL, &a);
    assert_int_equal(a.status, 503);
    assert_non_null(strstr(a.ctype, "text/html"));
    assert_non_null(strstr(a.body, "Service unavailable"));
    assert_string_equal(a.location, ""); /* never a redirect to an unchecked client */
    resp_deinit(&a);
}

static void authorize__unknown_client_is_a_page(void **state)
{
    struct fx *f = *state;
    fake_store_reply(items1(""));
    struct resp a;
    ask(f, EVHTTP_REQ_GET,
        "/authorize?response_type=code&client_id=" CLIENT_ID
        "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9999%2Fcb&code_challenge=" CHALLENGE
        "&code_challenge_method=S256",
        NULL, NULL, NULL, &a);
    assert_int_equal(a.status, 400);
    assert_non_null(strstr(a.ctype, "text/html"));
    assert_string_equal(a.location, "");
    resp_deinit(&a);
}

/* The scope a client registered is no ceiling: a step-up asks for more than the first
 * challenge's scope, which the SDKs registered with; the sign-in page follows, not
 * invalid_scope. */
static void authorize__registered_scope_is_no_ceiling(void **state)
{
    struct fx *f = *state;
    fake_store_reply(items1("{\"client_id\":\"" CLIENT_ID "\",\"scope\":\"mcp\","
                            "\"redirect_uris\":[\"http://127.0.0.1:9999/cb\"],"
                            "\"token_endpoint_auth_method\":\"none\"}"));
    struct resp a;
    ask(f, EVHTTP_REQ_GET,
        "/authorize?response_type=code&client_id=" CLIENT_ID
        "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9999%2Fcb&code_challenge=" CHALLENGE
        "&code_challenge_method=S256&state=s&scope=mcp%20files",
        NULL, NULL, NULL, &a);
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(a.ctype, "text/html"));
    assert_string_equal(a.location, "");
    assert_int_equal(store_calls(), 1);
    resp_deinit(&a);
}

/* ---- life ---- */

/* A request still waiting on Redis when the module goes away is dropped without an answer,
 * and its late store answer frees it (ASan sees the rest). */
static void life__request_orphaned_by_shutdown(void **state)
{
    struct fx *f = *state;
    struct resp a;
    struct evhttp_connection *c =
        send_request(f, EVHTTP_REQ_POST, "/register", "application/json", reg_body, NULL, &a);
    pump(f, store_called, NULL, false);
    oauth_http_free(f->o);
    f->o = NULL;
    fake_store_reply(counted);
    assert_int_equal(fake_store_run(), 1);
    assert_false(a.done);
    evhttp_connection_free(c); /* before the server: its request is never answered */
    assert_int_equal(store_calls(), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(metadata__served_without_the_store, setup, teardown),
        cmocka_unit_test_setup_teardown(route__paths_methods_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(register__stores_the_client, setup, teardown),
        cmocka_unit_test_setup_teardown(register__rate_limited, setup, teardown),
        cmocka_unit_test_setup_teardown(register__bad_metadata_is_400_and_stores_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(register__redis_down_is_503, setup, teardown),
        cmocka_unit_test_setup_teardown(register__short_reply_is_503, setup, teardown),
        cmocka_unit_test_setup_teardown(register__id_taken_is_500, setup, teardown),
        cmocka_unit_test_setup_teardown(token__code_grant_then_introspect, setup, teardown),
        cmocka_unit_test_setup_teardown(token__unknown_client_is_401, setup, teardown),
        cmocka_unit_test_setup_teardown(token__wrong_verifier_is_invalid_grant, setup, teardown),
        cmocka_unit_test_setup_teardown(token__code_of_another_client_is_invalid_grant, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(token__reused_code_revokes_its_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(token__redis_error_mid_flow_is_503, setup, teardown),
        cmocka_unit_test_setup_teardown(token__refresh_codes_map_to_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(token__refresh_short_success_is_not_trusted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(token__no_refresh_token_without_its_grant_type, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(introspect__refresh_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(authorize__redis_down_is_a_page, setup, teardown),
        cmocka_unit_test_setup_teardown(authorize__registered_scope_is_no_ceiling, setup, teardown),
        cmocka_unit_test_setup_teardown(authorize__unknown_client_is_a_page, setup, teardown),
        cmocka_unit_test_setup_teardown(life__request_orphaned_by_shutdown, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
