/* test_service.c -- the RPC methods over a scripted store (fake_store.h): what each answers
 * when Redis says yes, no, fails or answers short, without a Redis. */
#include "cm.h"

#include <stdlib.h>

#include "clock.h"
#include "config.h"
#include "fake_store.h"
#include "helpers.h"
#include "keys.h"
#include "lastused.h"
#include "metrics.h"
#include "pipe2/auth/v1/token_service.pb-c.h"
#include "revoke.h"
#include "rpc_frame.h"
#include "rpc_status.h"
#include "service.h"
#include "slab.h"
#include "svckeys.h"
#include "tcache.h"
#include "token.h"
#include "xalloc.h"

#define SVC "/pipe2.auth.v1.TokenService/"

struct fx {
    char *dir;
    struct p2a_config cfg;
    struct keyring *keys;
    struct svckeys *svckeys;
    struct service_shared shared;
    struct service_ctx ctx;
};

/* One call's answer. */
struct answer {
    struct service_call base;
    bool done;
    int status;
    char msg[256];
    uint8_t *body;
    size_t len;
};

static void complete(struct service_call *call, int status, const char *msg, uint8_t *body,
                     size_t len)
{
    struct answer *a = (struct answer *)call;
    a->done = true;
    a->status = status;
    snprintf(a->msg, sizeof(a->msg), "%s", msg ? msg : "");
    a->body = body;
    a->len = len;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->dir = th_tmpdir();
    EVP_PKEY_free(th_write_key(f->dir, "k1"));
    /* sha256("admin-key"): service keys are not this test's subject, but the file needs one */
    char *svc =
        th_write_file(f->dir, "service-keys",
                      "admin 1d2b33d7f74c70b28d12f7b2d9c4df0ae4d0b3a5acd8c9e0c0d9b5aa0f1e2d3c t\n");
    setenv("PIPE2_AUTH_KEYS_DIR", f->dir, 1);
    setenv("PIPE2_AUTH_SERVICE_KEYS_FILE", svc, 1);
    free(svc);
    char err[512], *argv[] = {"test"};
    assert_int_equal(config_load(&f->cfg, 1, argv, err, sizeof(err)), P2A_OK);
    assert_int_equal(keys_load(f->cfg.keys_dir, &f->keys, err, sizeof(err)), P2A_OK);
    assert_int_equal(svckeys_load(f->cfg.service_keys_file, &f->svckeys, err, sizeof(err)), P2A_OK);
    f->shared.cfg = &f->cfg;
    f->shared.keys = f->keys;
    f->shared.svckeys = f->svckeys;
    f->shared.revoked = revoke_new(20000);
    revoke_synced(f->shared.revoked, clock_mono_ms(), 1);
    f->shared.marks_inbox = lastused_inbox_new();
    f->ctx.shared = &f->shared;
    f->ctx.keys = f->keys;
    f->ctx.cache = tcache_new(64, 1 << 20);
    f->ctx.store = store_new(NULL, &f->cfg, "fake");
    f->ctx.marks = lastused_new();
    f->ctx.mx = xcalloc(1, sizeof(struct metrics));
    fake_store_reset();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    token_thread_cleanup();
    free(f->ctx.mx);
    lastused_free(f->ctx.marks);
    tcache_free(f->ctx.cache);
    lastused_inbox_free(f->shared.marks_inbox);
    revoke_free(f->shared.revoked);
    svckeys_free(f->svckeys);
    keys_free(f->keys);
    config_deinit(&f->cfg);
    th_rmtree(f->dir);
    slab_thread_cleanup();
    free(f);
    return 0;
}

/* Calls method with the packed message m; the answer may come later (fake_store_run). */
static void call(struct fx *f, const char *method, const ProtobufCMessage *m, struct answer *a)
{
    memset(a, 0, sizeof(*a));
    a->base.complete = complete;
    a->base.now = clock_now();
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n + 1);
    protobuf_c_message_pack(m, buf);
    const struct service_method *sm = service_method_find(method, strlen(method));
    assert_non_null(sm);
    service_call_method(&f->ctx, sm, buf, n, &a->base);
    free(buf);
}

/* The answer's message, unpacked with d (the caller frees it with
 * protobuf_c_message_free_unpacked). */
static ProtobufCMessage *reply_of(struct answer *a, const ProtobufCMessageDescriptor *d)
{
    assert_true(a->done);
    assert_int_equal(a->status, RPC_OK);
    const uint8_t *msg;
    size_t mlen;
    assert_int_equal(rpc_frame_decode(a->body, a->len, 1 << 20, &msg, &mlen), RPC_FRAME_OK);
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, mlen, msg);
    assert_non_null(m);
    /* the bytes protobuf-c would write, whether it wrote them or a hand (Introspect, Check) */
    assert_int_equal(protobuf_c_message_get_packed_size(m), mlen);
    uint8_t *again = malloc(mlen + 1);
    protobuf_c_message_pack(m, again);
    assert_memory_equal(again, msg, mlen);
    free(again);
    slab_free(a->body);
    a->body = NULL;
    return m;
}

static void service__issue_token(void **state)
{
    struct fx *f = *state;
    Pipe2__Auth__V1__IssueTokenRequest req = PIPE2__AUTH__V1__ISSUE_TOKEN_REQUEST__INIT;
    req.user_id = "alice";
    req.name = "laptop";
    struct answer a;
    /* Redis wrote the record: the token, which introspects active */
    fake_store_reply((struct fake_reply){.err = P2A_OK, .items = {"1"}, .n = 1});
    call(f, SVC "IssueToken", &req.base, &a);
    assert_false(a.done); /* answered only once Redis has */
    const char *first;
    assert_string_equal(fake_store_call(0, &first), "pat_create_capped");
    assert_int_equal(fake_store_run(), 1);
    Pipe2__Auth__V1__IssueTokenResponse *resp = (Pipe2__Auth__V1__IssueTokenResponse *)reply_of(
        &a, &pipe2__auth__v1__issue_token_response__descriptor);
    assert_string_equal(resp->info->jti, first);
    Pipe2__Auth__V1__IntrospectRequest ir = PIPE2__AUTH__V1__INTROSPECT_REQUEST__INIT;
    ir.token = resp->token;
    struct answer b;
    call(f, SVC "Introspect", &ir.base, &b); /* from memory: answered at once */
    Pipe2__Auth__V1__IntrospectResponse *in = (Pipe2__Auth__V1__IntrospectResponse *)reply_of(
        &b, &pipe2__auth__v1__introspect_response__descriptor);
    assert_true(in->active);
    assert_string_equal(in->sub, "alice");
    protobuf_c_message_free_unpacked(&in->base, NULL);
    /* an inactive answer: its reason and the challenge to send (written by hand too) */
    ir.token = "not-a-token";
    call(f, SVC "Introspect", &ir.base, &b);
    in = (Pipe2__Auth__V1__IntrospectResponse *)reply_of(
        &b, &pipe2__auth__v1__introspect_response__descriptor);
    assert_false(in->active);
    assert_int_not_equal(in->reason, 0);
    assert_non_null(strstr(in->www_authenticate, "Bearer error=\"invalid_token\""));
    protobuf_c_message_free_unpacked(&in->base, NULL);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    /* Redis failed: no token, and the caller is told so */
    fake_store_reply((struct fake_reply){.err = P2A_ERR_UNAVAILABLE});
    call(f, SVC "IssueToken", &req.base, &a);
    fake_store_run();
    assert_int_equal(a.status, RPC_UNAVAILABLE);
    assert_non_null(strstr(a.msg, "no token was issued"));
    assert_null(a.body);
}

static void service__revoke_token(void **state)
{
    struct fx *f = *state;
    Pipe2__Auth__V1__RevokeTokenRequest req = PIPE2__AUTH__V1__REVOKE_TOKEN_REQUEST__INIT;
    req.jti = "jti-1";
    struct answer a;
    fake_store_reply((struct fake_reply){.err = P2A_ERR_NOT_FOUND});
    call(f, SVC "RevokeToken", &req.base, &a);
    fake_store_run();
    assert_int_equal(a.status, RPC_NOT_FOUND);
    assert_false(revoke_contains(f->shared.revoked, "jti-1"));
    fake_store_reply((struct fake_reply){.err = P2A_ERR_UNAVAILABLE});
    call(f, SVC "RevokeToken", &req.base, &a);
    fake_store_run();
    assert_int_equal(a.status, RPC_UNAVAILABLE);
    assert_false(revoke_contains(f->shared.revoked, "jti-1"));
    /* revoked in Redis: effective in this process at once */
    fake_store_reply((struct fake_reply){.err = P2A_OK, .revoked_at = 5, .exp = clock_now() + 60});
    call(f, SVC "RevokeToken", &req.base, &a);
    fake_store_run();
    Pipe2__Auth__V1__RevokeTokenResponse *resp = (Pipe2__Auth__V1__RevokeTokenResponse *)reply_of(
        &a, &pipe2__auth__v1__revoke_token_response__descriptor);
    assert_false(resp->already_revoked);
    assert_int_equal(resp->revoked_at, 5);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    assert_true(revoke_contains(f->shared.revoked, "jti-1"));
}

/* A person disabled, a client revoked: their entry is in this replica's view as soon as Redis
 * has it, as a revoked token's is, not only when its published message comes back. */
static void service__disable_and_client_revocation_apply_here_at_once(void **state)
{
    struct fx *f = *state;
    int64_t iat = clock_now() - 1; /* a token issued before */
    char marker[REVOKE_SUBJECT_MARKER_LEN + 1];
    struct answer a;
    Pipe2__Auth__V1__SetUserDisabledRequest dis = PIPE2__AUTH__V1__SET_USER_DISABLED_REQUEST__INIT;
    dis.user_id = "alice";
    dis.disabled = true;
    revoke_subject_marker("alice", marker);
    fake_store_reply((struct fake_reply){.err = P2A_OK, .items = {"1"}, .n = 1});
    call(f, SVC "SetUserDisabled", &dis.base, &a);
    assert_false(revoke_subject_covers(f->shared.revoked, marker, iat)); /* not before Redis */
    fake_store_run();
    protobuf_c_message_free_unpacked(
        reply_of(&a, &pipe2__auth__v1__set_user_disabled_response__descriptor), NULL);
    assert_true(revoke_subject_covers(f->shared.revoked, marker, iat));

    Pipe2__Auth__V1__RevokeClientRequest rc = PIPE2__AUTH__V1__REVOKE_CLIENT_REQUEST__INIT;
    rc.client_id = "c_nQkRiQIT0z375strFAkcjg";
    revoke_client_marker(rc.client_id, marker);
    fake_store_reply((struct fake_reply){.err = P2A_OK, .items = {"1"}, .n = 1}); /* tombstone */
    fake_store_reply((struct fake_reply){.err = P2A_OK, .items = {"1"}, .n = 1}); /* its entry */
    call(f, SVC "RevokeClient", &rc.base, &a);
    while (fake_store_run() > 0)
        ;
    protobuf_c_message_free_unpacked(
        reply_of(&a, &pipe2__auth__v1__revoke_client_response__descriptor), NULL);
    assert_true(revoke_subject_covers(f->shared.revoked, marker, iat));
}

static void service__register_client_and_create_user(void **state)
{
    struct fx *f = *state;
    Pipe2__Auth__V1__RegisterClientRequest req = PIPE2__AUTH__V1__REGISTER_CLIENT_REQUEST__INIT;
    char *uris[] = {"http://127.0.0.1/cb"};
    req.redirect_uris = uris;
    req.n_redirect_uris = 1;
    struct answer a;
    /* stored ({1}): the client id, and the registration for the caller */
    fake_store_reply((struct fake_reply){.err = P2A_OK, .items = {"1"}, .n = 1});
    call(f, SVC "RegisterClient", &req.base, &a);
    const char *key;
    assert_string_equal(fake_store_call(0, &key), "eval");
    assert_non_null(strstr(key, "p2a:client:c_"));
    fake_store_run();
    Pipe2__Auth__V1__RegisterClientResponse *resp =
        (Pipe2__Auth__V1__RegisterClientResponse *)reply_of(
            &a, &pipe2__auth__v1__register_client_response__descriptor);
    assert_string_equal(key + strlen("p2a:client:"), resp->client_id);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    /* the id taken ({0}), a short reply ({}), a Redis error: nothing registered */
    struct fake_reply bad[] = {{.err = P2A_OK, .items = {"0"}, .n = 1},
                               {.err = P2A_OK, .n = 0},
                               {.err = P2A_ERR_UNAVAILABLE}};
    for (size_t i = 0; i < 3; i++) {
        fake_store_reply(bad[i]);
        call(f, SVC "RegisterClient", &req.base, &a);
        fake_store_run();
        assert_int_equal(a.status, RPC_UNAVAILABLE);
        assert_non_null(strstr(a.msg, "nothing registered"));
    }
    /* an invalid redirect URI is refused before any store call */
    char *bad_uris[] = {"javascript:alert(1)"};
    req.redirect_uris = bad_uris;
    fake_store_reset();
    call(f, SVC "RegisterClient", &req.base, &a);
    assert_true(a.done);
    assert_int_equal(a.status, RPC_INVALID_ARGUMENT);
    assert_null(fake_store_call(0, NULL));

    Pipe2__Auth__V1__CreateUserRequest cu = PIPE2__AUTH__V1__CREATE_USER_REQUEST__INIT;
    cu.username = "dana";
    cu.password = "a long enough passphrase";
    fake_store_reply((struct fake_reply){.err = P2A_OK, .items = {"0"}, .n = 1});
    call(f, SVC "CreateUser", &cu.base, &a);
    fake_store_run();
    assert_int_equal(a.status, RPC_ALREADY_EXISTS);
    fake_store_reply((struct fake_reply){.err = P2A_OK, .items = {"1"}, .n = 1});
    fake_store_reply((struct fake_reply){.err = P2A_OK, .items = {"1"}, .n = 1}); /* its record */
    call(f, SVC "CreateUser", &cu.base, &a);
    fake_store_run();
    const char *first = NULL, *k; /* the last call: the user record, where a PAT looks */
    for (size_t i = 0; fake_store_call(i, &k) != NULL; i++)
        first = k;
    assert_non_null(first);
    assert_non_null(strstr(first, "p2a:{t}:user:u_"));
    Pipe2__Auth__V1__CreateUserResponse *cr = (Pipe2__Auth__V1__CreateUserResponse *)reply_of(
        &a, &pipe2__auth__v1__create_user_response__descriptor);
    protobuf_c_message_free_unpacked(&cr->base, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(service__issue_token, setup, teardown),
        cmocka_unit_test_setup_teardown(service__revoke_token, setup, teardown),
        cmocka_unit_test_setup_teardown(service__disable_and_client_revocation_apply_here_at_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(service__register_client_and_create_user, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
