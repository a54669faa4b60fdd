/* test_introspect.c -- the one introspection flow, in the order that is its rule: the view
 * first, then the cache or a verification, then revocation, then the claims; expiry and
 * revocation checked on cache hits too. Links the core alone. */
#include "cm.h"

#include <openssl/evp.h>

#include "clock.h"
#include "config.h"
#include "helpers.h"
#include "introspect.h"
#include "keys.h"
#include "metrics.h"
#include "revoke.h"
#include "tcache.h"
#include "token.h"

#define ISS "https://auth.example.test"
#define AUD "https://mcp.example.test/mcp"

struct fx {
    struct th_introspector *t;
    struct metrics mx;
    int64_t now;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->t = th_introspector_new(ISS);
    f->t->x.mx = &f->mx;
    f->now = clock_now();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    th_introspector_free(f->t);
    free(f);
    return 0;
}

static char *token(struct fx *f, const char *jti, int64_t exp)
{
    char p[512];
    snprintf(p, sizeof(p),
             "{\"iss\":\"" ISS "\",\"sub\":\"alice\",\"aud\":[\"" AUD "\"],\"jti\":\"%s\","
             "\"iat\":%lld,\"exp\":%lld,\"token_use\":\"pat\",\"scope\":\"mcp files\"}",
             jti, (long long)f->now - 10, (long long)exp);
    return th_jwt_es256(f->t->key, "{\"alg\":\"ES256\",\"kid\":\"k1\",\"typ\":\"JWT\"}", p);
}

static enum token_verdict run(struct fx *f, const char *tok, const char *resource, int64_t now)
{
    struct introspection r;
    struct introspect_query q = {.token = tok, .len = strlen(tok), .resource = resource};
    assert_int_equal(introspect(&f->t->x, &q, now, &r), P2A_OK);
    enum token_verdict v = r.verdict;
    if (v == TV_ACTIVE)
        assert_string_equal(r.claims->sub, "alice");
    else
        assert_null(r.claims);
    introspection_deinit(&r);
    return v;
}

static void introspect__the_view_comes_first(void **state)
{
    struct fx *f = *state;
    char *tok = token(f, "jti-view", f->now + 600);
    struct introspection r;
    /* not loaded: nothing is said about any token, however good */
    struct introspect_query q = {.token = tok, .len = strlen(tok)};
    assert_int_equal(introspect(&f->t->x, &q, f->now, &r), P2A_ERR_UNAVAILABLE);
    assert_int_equal(r.view, REVOKE_NOT_LOADED);
    introspection_deinit(&r);
    /* loaded and fresh: usable */
    revoke_synced(f->t->revoked, clock_mono_ms(), 1);
    assert_int_equal(run(f, tok, NULL, f->now), TV_ACTIVE);
    /* synced too long ago (a view whose last sync was 30 s back): stale, unavailable */
    struct revoke_set *old = revoke_new(20000);
    revoke_synced(old, clock_mono_ms() - 30000, 2);
    f->t->x.revoked = old;
    assert_int_equal(introspect(&f->t->x, &q, f->now, &r), P2A_ERR_UNAVAILABLE);
    assert_int_equal(r.view, REVOKE_STALE);
    assert_true(r.view_age_ms >= 30000);
    introspection_deinit(&r);
    f->t->x.revoked = f->t->revoked;
    revoke_free(old);
    free(tok);
}

static void introspect__cache_hits_still_check_revocation_and_expiry(void **state)
{
    struct fx *f = *state;
    revoke_synced(f->t->revoked, clock_mono_ms(), 1);
    char *tok = token(f, "jti-cached", f->now + 100);
    assert_int_equal(run(f, tok, AUD, f->now), TV_ACTIVE); /* verified, then cached */
    uint64_t misses = f->mx.cache_misses;
    assert_int_equal(run(f, tok, AUD, f->now), TV_ACTIVE); /* from the cache */
    assert_int_equal(f->mx.cache_misses, misses);
    assert_true(f->mx.cache_hits >= 1);
    assert_int_equal(run(f, tok, "https://other.example.test/mcp", f->now), TV_WRONG_AUDIENCE);
    assert_int_equal(run(f, tok, NULL, f->now + 100), TV_EXPIRED); /* a hit, expired now */
    revoke_add(f->t->revoked, "jti-cached", f->now + 100, REVOKE_PATH_MESSAGE);
    assert_int_equal(run(f, tok, AUD, f->now), TV_REVOKED); /* a hit, revoked now */
    assert_int_equal(f->mx.introspections[TV_REVOKED], 1);
    free(tok);
}

/* A client's token (client credentials) and an OAuth token issued to the client: both end
 * with the client's entry (RevokeClient), cached or not; another client's tokens do not. A
 * client token must name its client as its subject. */
static void introspect__a_client_entry_ends_its_tokens(void **state)
{
    struct fx *f = *state;
    revoke_synced(f->t->revoked, clock_mono_ms(), 1);
    const char *aud[] = {AUD};
    struct token_issue own = {.kind = TOKEN_KIND_CLIENT,
                              .issuer = ISS,
                              .sub = "c_agent",
                              .aud = aud,
                              .naud = 1,
                              .scope = "mcp",
                              .client_id = "c_agent",
                              .iat = f->now - 10,
                              .exp = f->now + 600};
    struct token_issue issued = own, other = own;
    issued.kind = TOKEN_KIND_OAUTH, issued.sub = "alice";
    other.sub = other.client_id = "c_other";
    char *t1, *t2, *t3, jti[TOKEN_JTI_LEN + 1];
    assert_int_equal(token_sign(f->t->ring, &own, &t1, jti), P2A_OK);
    assert_int_equal(token_sign(f->t->ring, &issued, &t2, jti), P2A_OK);
    assert_int_equal(token_sign(f->t->ring, &other, &t3, jti), P2A_OK);
    struct introspection r;
    struct introspect_query q = {.token = t1, .len = strlen(t1), .expected = TOKEN_KIND_CLIENT};
    assert_int_equal(introspect(&f->t->x, &q, f->now, &r), P2A_OK);
    assert_int_equal(r.verdict, TV_ACTIVE);
    assert_int_equal(r.claims->kind, TOKEN_KIND_CLIENT);
    assert_string_equal(r.claims->sub, "c_agent");
    assert_string_equal(introspect_kind_name(r.claims->kind), "client");
    introspection_deinit(&r);
    q.expected = TOKEN_KIND_OAUTH; /* a client token is no person's token */
    assert_int_equal(introspect(&f->t->x, &q, f->now, &r), P2A_OK);
    assert_int_equal(r.verdict, TV_WRONG_AUDIENCE);
    introspection_deinit(&r);
    char m[REVOKE_SUBJECT_MARKER_LEN + 1], s[REVOKE_SUBJECT_MARKER_LEN + 1];
    revoke_client_marker("c_agent", m);
    revoke_subject_marker("c_agent", s);
    assert_int_equal(m[0], 'C');
    assert_string_not_equal(m, s);
    revoke_add(f->t->revoked, m, f->now + REVOKE_SUBJECT_HORIZON_S, REVOKE_PATH_MESSAGE);
    assert_int_equal(run(f, t2, AUD, f->now), TV_REVOKED);
    q = (struct introspect_query){.token = t1, .len = strlen(t1)};
    assert_int_equal(introspect(&f->t->x, &q, f->now, &r), P2A_OK); /* a cache hit */
    assert_int_equal(r.verdict, TV_REVOKED);
    introspection_deinit(&r);
    q = (struct introspect_query){.token = t3, .len = strlen(t3)};
    assert_int_equal(introspect(&f->t->x, &q, f->now, &r), P2A_OK);
    assert_int_equal(r.verdict, TV_ACTIVE);
    introspection_deinit(&r);
    free(t1), free(t2), free(t3);
    /* token_use client with a sub that is not its client_id: malformed */
    char p[512];
    snprintf(p, sizeof(p),
             "{\"iss\":\"" ISS "\",\"sub\":\"alice\",\"aud\":[\"" AUD "\"],\"jti\":\"j\","
             "\"iat\":%lld,\"exp\":%lld,\"token_use\":\"client\",\"client_id\":\"c_x\"}",
             (long long)f->now - 10, (long long)f->now + 60);
    char *forged = th_jwt_es256(f->t->key, "{\"alg\":\"ES256\",\"kid\":\"k1\"}", p);
    q = (struct introspect_query){.token = forged, .len = strlen(forged)};
    assert_int_equal(introspect(&f->t->x, &q, f->now, &r), P2A_OK);
    assert_int_equal(r.verdict, TV_MALFORMED);
    introspection_deinit(&r);
    free(forged);
}

static void introspect__bad_tokens(void **state)
{
    struct fx *f = *state;
    revoke_synced(f->t->revoked, clock_mono_ms(), 1);
    assert_int_equal(run(f, "", NULL, f->now), TV_MISSING);
    assert_int_equal(run(f, "not.a.token", NULL, f->now), TV_MALFORMED);
    char *big = malloc(TOKEN_MAX_LEN + 2);
    memset(big, 'a', TOKEN_MAX_LEN + 1);
    big[TOKEN_MAX_LEN + 1] = '\0';
    assert_int_equal(run(f, big, NULL, f->now), TV_MALFORMED);
    free(big);
    char *tok = token(f, "jti-tampered", f->now + 600);
    char *c = &tok[strlen(tok) - 3]; /* another base64url character: another signature */
    *c = *c == 'A' ? 'B' : 'A';
    assert_int_equal(run(f, tok, NULL, f->now), TV_BAD_SIGNATURE);
    free(tok);
    /* without a cache (the facade's way) the answers are the same */
    f->t->x.cache = NULL;
    tok = token(f, "jti-nocache", f->now + 600);
    assert_int_equal(run(f, tok, AUD, f->now), TV_ACTIVE);
    revoke_add(f->t->revoked, "jti-nocache", f->now + 600, REVOKE_PATH_LOCAL);
    assert_int_equal(run(f, tok, AUD, f->now), TV_REVOKED);
    free(tok);
}

/* Step-up: a good token without a scope the call needs is refused, last, with its claims
 * kept for the challenge; a token that is bad for another reason says that reason. */
static void introspect__required_scope_is_checked_last(void **state)
{
    struct fx *f = *state;
    revoke_synced(f->t->revoked, clock_mono_ms(), 1);
    char *tok = token(f, "jti-scope", f->now + 600);
    static const struct {
        const char *need;
        enum token_verdict v;
    } cases[] = {{NULL, TV_ACTIVE},
                 {"", TV_ACTIVE},
                 {"mcp", TV_ACTIVE},
                 {"files mcp", TV_ACTIVE},
                 {"admin", TV_INSUFFICIENT_SCOPE},
                 {"mcp admin", TV_INSUFFICIENT_SCOPE},
                 {"mc", TV_INSUFFICIENT_SCOPE}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct introspection r;
        struct introspect_query q = {
            .token = tok, .len = strlen(tok), .resource = AUD, .required_scope = cases[i].need};
        assert_int_equal(introspect(&f->t->x, &q, f->now, &r), P2A_OK);
        assert_int_equal(r.verdict, cases[i].v);
        assert_non_null(r.claims);
        assert_string_equal(r.claims->scope, "mcp files");
        introspection_deinit(&r);
    }
    struct introspection r;
    struct introspect_query q = {.token = tok,
                                 .len = strlen(tok),
                                 .resource = "https://other.example.test/mcp",
                                 .required_scope = "admin"};
    assert_int_equal(introspect(&f->t->x, &q, f->now, &r), P2A_OK);
    assert_int_equal(r.verdict, TV_WRONG_AUDIENCE);
    assert_null(r.claims);
    introspection_deinit(&r);
    /* a caller bound to other resources learns nothing of this token, asked or not */
    const char *mine[] = {"https://other.example.test/mcp"}, *ours[] = {"x", AUD};
    q = (struct introspect_query){.token = tok, .len = strlen(tok), .bound = mine, .nbound = 1};
    assert_int_equal(introspect(&f->t->x, &q, f->now, &r), P2A_OK);
    assert_int_equal(r.verdict, TV_WRONG_AUDIENCE);
    introspection_deinit(&r);
    q.bound = ours, q.nbound = 2;
    assert_int_equal(introspect(&f->t->x, &q, f->now, &r), P2A_OK);
    assert_int_equal(r.verdict, TV_ACTIVE);
    introspection_deinit(&r);
    assert_int_equal(f->mx.introspections[TV_INSUFFICIENT_SCOPE], 3);
    free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(introspect__required_scope_is_checked_last, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(introspect__the_view_comes_first, setup, teardown),
        cmocka_unit_test_setup_teardown(introspect__cache_hits_still_check_revocation_and_expiry,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(introspect__bad_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(introspect__a_client_entry_ends_its_tokens, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
