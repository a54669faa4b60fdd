/* test_exchange.c -- token exchange (RFC 8693): what a client may get for a person's token,
 * the act and chain the new token carries, and revocation that follows the chain (a token
 * of the chain revoked, or its person disabled, revokes every token exchanged from it, on a
 * cache hit too). Links the core alone. */
#include "cm.h"

#include <openssl/evp.h>

#include "clock.h"
#include "config.h"
#include "exchange.h"
#include "helpers.h"
#include "introspect.h"
#include "keys.h"
#include "revoke.h"
#include "tcache.h"
#include "token.h"

#define ISS "https://auth.example.test"
#define MCP_A "https://a.example.test/mcp"
#define MCP_B "https://b.example.test/mcp"
#define MCP_C "https://c.example.test/mcp"
#define HDR "{\"alg\":\"ES256\",\"kid\":\"k1\",\"typ\":\"at+jwt\"}"

struct fx {
    struct th_introspector *t;
    int64_t now;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->t = th_introspector_new(ISS);
    revoke_synced(f->t->revoked, clock_mono_ms(), 0);
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

/* alice's OAuth access token for aud, issued iat, living an hour. */
static char *person_token(struct fx *f, const char *aud, int64_t iat, char jti[TOKEN_JTI_LEN + 1])
{
    const char *auds[1] = {aud};
    struct token_issue in = {.kind = TOKEN_KIND_OAUTH,
                             .issuer = ISS,
                             .sub = "alice",
                             .aud = auds,
                             .naud = 1,
                             .scope = "mcp files",
                             .client_id = "claude",
                             .iat = iat,
                             .exp = iat + 3600};
    char *tok = NULL;
    assert_int_equal(token_sign(f->t->ring, &in, &tok, jti), P2A_OK);
    return tok;
}

static void decode(struct fx *f, const char *tok, struct token_claims *c)
{
    assert_int_equal(token_decode(f->t->ring, ISS, tok, strlen(tok), c), TV_ACTIVE);
}

/* subject exchanged by client (serving resources[0]) for audience: the new token. */
static char *exchange(struct fx *f, const char *subject, const char *client,
                      const char *const *resources, size_t n, const char *audience,
                      const char *scope, int64_t now, char jti[TOKEN_JTI_LEN + 1])
{
    struct token_claims s;
    decode(f, subject, &s);
    struct exchange_client cl = {.client_id = client, .resources = resources, .nresources = n};
    struct exchange_result r;
    const char *why = NULL;
    assert_null(exchange_decide(&s, &cl, audience, scope, now, 900, &r, &why));
    const char *aud[1];
    struct token_issue in;
    exchange_issue(&r, &s, ISS, client, now, aud, &in);
    char *tok = NULL;
    assert_int_equal(token_sign(f->t->ring, &in, &tok, jti), P2A_OK);
    token_claims_deinit(&s);
    return tok;
}

static enum token_verdict verdict(struct fx *f, const char *tok, int64_t now)
{
    struct introspection r;
    struct introspect_query q = {.token = tok, .len = strlen(tok)};
    assert_int_equal(introspect(&f->t->x, &q, now, &r), P2A_OK);
    enum token_verdict v = r.verdict;
    introspection_deinit(&r);
    return v;
}

static void exchange__names_the_person_and_the_actor(void **state)
{
    struct fx *f = *state;
    char j0[TOKEN_JTI_LEN + 1], j1[TOKEN_JTI_LEN + 1];
    char *person = person_token(f, MCP_A, f->now - 100, j0);
    const char *ra[] = {MCP_A, MCP_B};
    char *t1 = exchange(f, person, "server-a", ra, 2, MCP_B "/", "files", f->now, j1);
    struct token_claims c;
    decode(f, t1, &c);
    assert_int_equal(c.kind, TOKEN_KIND_OAUTH);
    assert_string_equal(c.sub, "alice");
    assert_string_equal(c.client_id, "server-a");
    assert_string_equal(c.actor, "server-a");
    assert_string_equal(c.aud, MCP_B); /* the client's registered spelling */
    assert_int_equal(c.naud, 1);
    assert_string_equal(c.scope, "files");
    assert_int_equal(c.nchain, 1);
    assert_string_equal(token_chain(&c), j0);
    assert_int_equal(c.origin_iat, f->now - 100);
    assert_true(c.exp <= f->now - 100 + 3600 && c.exp <= f->now + 900);
    token_claims_deinit(&c);

    /* RFC 7662 shows act nested: the current actor outermost */
    const char *rb[] = {MCP_B, MCP_C};
    char j2[TOKEN_JTI_LEN + 1];
    char *t2 = exchange(f, t1, "server-b", rb, 2, MCP_C, NULL, f->now, j2);
    char out[INTROSPECT_JSON_MAX];
    struct introspect_query q = {.token = t2, .len = strlen(t2)};
    assert_int_equal(introspect_rfc7662(&f->t->x, &q, NULL, f->now, out, sizeof(out)), P2A_OK);
    assert_non_null(strstr(out, "\"act\":{\"sub\":\"server-b\",\"act\":{\"sub\":\"server-a\"}}"));
    decode(f, t2, &c);
    assert_string_equal(c.scope, "files"); /* no scope asked: the subject token's */
    assert_int_equal(c.nchain, 2);
    assert_string_equal(c.actor, "server-b");
    assert_string_equal(token_next_aud(c.actor), "server-a");
    assert_string_equal(token_chain(&c), j1);
    assert_string_equal(token_next_aud(token_chain(&c)), j0);
    assert_int_equal(c.origin_iat, f->now - 100);
    char exp[24];
    struct id_header h[INTROSPECT_ID_HEADERS];
    introspect_identity(&c, exp, h);
    assert_string_equal(h[INTROSPECT_ID_HEADERS - 1].name, "x-auth-actor");
    assert_string_equal(h[INTROSPECT_ID_HEADERS - 1].value, "server-b");
    token_claims_deinit(&c);
    free(person);
    free(t1);
    free(t2);
}

static const char *refusal(struct fx *f, const char *subject, const char *const *resources,
                           size_t n, const char *audience, const char *scope)
{
    struct token_claims s;
    decode(f, subject, &s);
    struct exchange_client cl = {.client_id = "server-a", .resources = resources, .nresources = n};
    struct exchange_result r;
    const char *why = NULL;
    const char *e = exchange_decide(&s, &cl, audience, scope, f->now, 900, &r, &why);
    if (e != NULL)
        assert_non_null(why);
    token_claims_deinit(&s);
    return e;
}

static void exchange__refuses_what_the_client_may_not_get(void **state)
{
    struct fx *f = *state;
    char j0[TOKEN_JTI_LEN + 1];
    char *person = person_token(f, MCP_A, f->now - 100, j0);
    const char *ra[] = {MCP_A, MCP_B}, *rb[] = {MCP_B, MCP_A};
    /* a token for another resource than the one the client serves */
    assert_string_equal(refusal(f, person, rb, 2, MCP_B, NULL), "invalid_grant");
    /* an audience beyond the client's */
    assert_string_equal(refusal(f, person, ra, 2, MCP_C, NULL), "invalid_target");
    /* wider scopes, malformed scopes */
    assert_string_equal(refusal(f, person, ra, 2, MCP_B, "files admin"), "invalid_scope");
    assert_string_equal(refusal(f, person, ra, 2, MCP_B, "files  mcp"), "invalid_scope");
    /* a client with no resources */
    assert_string_equal(refusal(f, person, ra, 0, MCP_B, NULL), "unauthorized_client");
    assert_null(refusal(f, person, ra, 2, MCP_A, "mcp"));
    /* a client's own token (client credentials) is no person's */
    const char *aud[1] = {MCP_A};
    struct token_issue in = {.kind = TOKEN_KIND_CLIENT,
                             .issuer = ISS,
                             .sub = "robot",
                             .aud = aud,
                             .naud = 1,
                             .client_id = "robot",
                             .iat = f->now,
                             .exp = f->now + 600};
    char *robot = NULL;
    assert_int_equal(token_sign(f->t->ring, &in, &robot, j0), P2A_OK);
    assert_string_equal(refusal(f, robot, ra, 2, MCP_B, NULL), "invalid_grant");
    free(robot);
    free(person);
}

/* A subject token issued a little in the future (another replica's clock, within the skew):
 * the exchanged token is still well-formed. */
static void exchange__a_subject_from_a_clock_ahead(void **state)
{
    struct fx *f = *state;
    char j0[TOKEN_JTI_LEN + 1], j1[TOKEN_JTI_LEN + 1];
    char *person = person_token(f, MCP_A, f->now + 30, j0);
    const char *ra[] = {MCP_A, MCP_B};
    assert_int_equal(verdict(f, person, f->now), TV_ACTIVE);
    char *t1 = exchange(f, person, "server-a", ra, 2, MCP_B, NULL, f->now, j1);
    struct token_claims c;
    decode(f, t1, &c);
    assert_int_equal(c.origin_iat, f->now);
    token_claims_deinit(&c);
    assert_int_equal(verdict(f, t1, f->now), TV_ACTIVE);
    free(person);
    free(t1);
}

static void exchange__refuses_a_chain_past_its_bound(void **state)
{
    struct fx *f = *state;
    char jti[TOKEN_JTI_LEN + 1];
    const char *ra[] = {MCP_A};
    char *tok = person_token(f, MCP_A, f->now - 100, jti);
    for (int i = 0; i < TOKEN_MAX_CHAIN; i++) {
        char *next = exchange(f, tok, "server-a", ra, 1, MCP_A, NULL, f->now, jti);
        free(tok);
        tok = next;
    }
    assert_int_equal(verdict(f, tok, f->now), TV_ACTIVE);
    assert_string_equal(refusal(f, tok, ra, 1, MCP_A, NULL), "invalid_grant");
    free(tok);
}

/* alice's token for A, exchanged by server-a for B (t[1]), that by server-b for C (t[2]):
 * all three active, and cached. */
struct chain {
    char *t[3];
    char jti[3][TOKEN_JTI_LEN + 1];
};

static void chain_of_two(struct fx *f, struct chain *ch)
{
    static const char *const ra[] = {MCP_A, MCP_B}, *const rb[] = {MCP_B, MCP_C};
    ch->t[0] = person_token(f, MCP_A, f->now - 100, ch->jti[0]);
    ch->t[1] = exchange(f, ch->t[0], "server-a", ra, 2, MCP_B, NULL, f->now, ch->jti[1]);
    ch->t[2] = exchange(f, ch->t[1], "server-b", rb, 2, MCP_C, NULL, f->now, ch->jti[2]);
    for (int i = 0; i < 3; i++)
        assert_int_equal(verdict(f, ch->t[i], f->now), TV_ACTIVE);
}

static void chain_free(struct chain *ch)
{
    for (int i = 0; i < 3; i++)
        free(ch->t[i]);
}

/* Revoking any token of a chain revokes the tokens exchanged from it, cached or not. */
static void exchange__revocation_follows_the_chain(void **state)
{
    struct fx *f = *state;
    struct chain ch;
    chain_of_two(f, &ch);
    struct token_claims c;
    decode(f, ch.t[2], &c);
    assert_false(exchange_chain_revoked(f->t->revoked, &c));
    revoke_add(f->t->revoked, ch.jti[1], f->now + 3600, REVOKE_PATH_LOCAL); /* the middle one */
    assert_true(exchange_chain_revoked(f->t->revoked, &c));
    assert_int_equal(verdict(f, ch.t[2], f->now), TV_REVOKED);
    assert_int_equal(verdict(f, ch.t[0], f->now), TV_ACTIVE);
    token_claims_deinit(&c);

    /* the person's own token: both exchanged ones fall (a chain of its own) */
    struct chain other;
    chain_of_two(f, &other);
    revoke_add(f->t->revoked, other.jti[0], f->now + 3600, REVOKE_PATH_MESSAGE);
    assert_int_equal(verdict(f, other.t[1], f->now), TV_REVOKED);
    assert_int_equal(verdict(f, other.t[2], f->now), TV_REVOKED);

    /* a plain token is no chain */
    decode(f, ch.t[0], &c);
    assert_int_equal(c.nchain, 0);
    assert_string_equal(c.actor, "");
    assert_false(exchange_chain_revoked(f->t->revoked, &c));
    token_claims_deinit(&c);
    chain_free(&ch);
    chain_free(&other);
}

/* A disabled person: tokens exchanged after the cutoff from a token of before it fall too
 * (a replica that exchanged before it heard of the disable). */
static void exchange__a_disabled_person_ends_the_chain_from_its_first_token(void **state)
{
    struct fx *f = *state;
    struct chain ch;
    chain_of_two(f, &ch);
    char marker[REVOKE_SUBJECT_MARKER_LEN + 1];
    revoke_subject_marker("alice", marker);
    /* disabled between the person's token and the exchanges */
    revoke_add(f->t->revoked, marker, f->now - 50 + REVOKE_SUBJECT_HORIZON_S, REVOKE_PATH_MESSAGE);
    for (int i = 0; i < 3; i++)
        assert_int_equal(verdict(f, ch.t[i], f->now), TV_REVOKED);
    chain_free(&ch);
}

/* A client revoked (RevokeClient): its own exchanged tokens, and those exchanged from them by
 * others, fall; the other clients' stand. */
static void exchange__a_revoked_client_ends_the_chain_through_it(void **state)
{
    struct fx *f = *state;
    struct chain ch;
    chain_of_two(f, &ch);
    char marker[REVOKE_SUBJECT_MARKER_LEN + 1];
    revoke_client_marker("server-a", marker);
    revoke_add(f->t->revoked, marker, f->now + REVOKE_SUBJECT_HORIZON_S, REVOKE_PATH_MESSAGE);
    assert_int_equal(verdict(f, ch.t[1], f->now), TV_REVOKED);
    assert_int_equal(verdict(f, ch.t[2], f->now), TV_REVOKED);
    assert_int_equal(verdict(f, ch.t[0], f->now), TV_ACTIVE);
    chain_free(&ch);
}

/* Act and chain are ours: a token that claims them otherwise is malformed. */
static void exchange__odd_chains_are_malformed(void **state)
{
    struct fx *f = *state;
    static const char *const extras[] = {
        ",\"act\":{\"sub\":\"a\"}",                                           /* no chain */
        ",\"chain\":[\"j0\"],\"chain_iat\":1",                                /* no act */
        ",\"act\":{\"sub\":\"a\"},\"chain\":[\"j0\",\"j1\"],\"chain_iat\":1", /* counts differ */
        ",\"act\":{\"sub\":\"a\"},\"chain\":[\"j0\"]",                        /* no chain_iat */
        ",\"act\":{\"sub\":\"\"},\"chain\":[\"j0\"],\"chain_iat\":1",         /* empty actor */
        ",\"act\":\"a\",\"chain\":[\"j0\"],\"chain_iat\":1",      /* act not an object */
        ",\"act\":{\"sub\":\"a\"},\"chain\":[7],\"chain_iat\":1", /* a jti not a string */
        ",\"act\":{\"sub\":\"a\"},\"chain\":[\"j0\"],\"chain_iat\":99999999999", /* after iat */
        ",\"act\":{\"sub\":\"a\",\"act\":{\"sub\":\"b\"}},"
        "\"chain\":[\"j0\"],\"chain_iat\":1", /* more actors than jtis */
        ",\"act\":{\"sub\":\"a\"},\"chain\":[\"j\\u00000\"],\"chain_iat\":1",  /* NUL in a jti */
        ",\"act\":{\"sub\":\"a\\u0000b\"},\"chain\":[\"j0\"],\"chain_iat\":1", /* NUL in an actor */
        ",\"act\":{\"sub\":\"a\"},\"chain\":[\"\"],\"chain_iat\":1",           /* an empty jti */
        ",\"act\":{\"sub\":\"a\"},\"chain\":\"j0\",\"chain_iat\":1", /* chain not a list */
        ",\"act\":{\"sub\":\"a\",\"act\":{\"sub\":\"b\",\"act\":{\"sub\":\"c\",\"act\":{\"sub\":"
        "\"d\",\"act\":{\"sub\":\"e\"}}}}},\"chain\":[\"1\",\"2\",\"3\",\"4\",\"5\"],"
        "\"chain_iat\":1", /* past the bound */
    };
    for (size_t i = 0; i < sizeof(extras) / sizeof(extras[0]); i++) {
        char p[1024];
        snprintf(p, sizeof(p),
                 "{\"iss\":\"" ISS "\",\"sub\":\"alice\",\"aud\":[\"" MCP_B "\"],\"jti\":\"x%zu\","
                 "\"iat\":%lld,\"exp\":%lld,\"token_use\":\"access\"%s}",
                 i, (long long)f->now - 10, (long long)f->now + 600, extras[i]);
        char *tok = th_jwt_es256(f->t->key, HDR, p);
        struct token_claims c;
        assert_int_equal(token_decode(f->t->ring, ISS, tok, strlen(tok), &c), TV_MALFORMED);
        free(tok);
    }
    /* a PAT is never an exchanged token */
    char p[1024];
    snprintf(p, sizeof(p),
             "{\"iss\":\"" ISS "\",\"sub\":\"alice\",\"aud\":[\"" MCP_B "\"],\"jti\":\"x\","
             "\"iat\":%lld,\"exp\":%lld,\"token_use\":\"pat\",\"act\":{\"sub\":\"a\"},"
             "\"chain\":[\"j0\"],\"chain_iat\":1}",
             (long long)f->now - 10, (long long)f->now + 600);
    char *tok = th_jwt_es256(f->t->key, HDR, p);
    struct token_claims c;
    assert_int_equal(token_decode(f->t->ring, ISS, tok, strlen(tok), &c), TV_MALFORMED);
    free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(exchange__names_the_person_and_the_actor, setup, teardown),
        cmocka_unit_test_setup_teardown(exchange__refuses_what_the_client_may_not_get, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(exchange__refuses_a_chain_past_its_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(exchange__a_subject_from_a_clock_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(exchange__revocation_follows_the_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(
            exchange__a_disabled_person_ends_the_chain_from_its_first_token, setup, teardown),
        cmocka_unit_test_setup_teardown(exchange__a_revoked_client_ends_the_chain_through_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(exchange__odd_chains_are_malformed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
