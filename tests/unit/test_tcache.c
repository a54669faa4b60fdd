/* test_tcache.c -- the verified-token cache: hits, expiry, bound. */
#include "cm.h"

#include "tcache.h"

static void make_claims(struct token_claims *c, int64_t exp)
{
    memset(c, 0, sizeof(*c));
    c->kind = TOKEN_KIND_PAT;
    c->exp = exp;
    snprintf(c->jti, sizeof(c->jti), "j");
    c->blob = malloc(16);
    memcpy(c->blob, "alice\0\0\0n\0", 10);
    c->blob_len = 10;
    c->sub = c->blob;
    c->scope = c->blob + 6;
    c->name = c->blob + 8;
    c->client_id = c->blob + 7;
    c->aud = c->actor = c->blob + 7;
    c->naud = 0;
}

static void key_of(unsigned char k[TCACHE_KEY_LEN], int i)
{
    memset(k, 0, TCACHE_KEY_LEN);
    memcpy(k, &i, sizeof(i));
    k[TCACHE_KEY_LEN - 1] = (unsigned char)i;
}

static void tcache__hit_returns_a_copy(void **state)
{
    (void)state;
    struct tcache *tc = tcache_new(64, 1 << 20);
    struct token_claims c;
    make_claims(&c, 1000);
    unsigned char k[TCACHE_KEY_LEN];
    key_of(k, 1);
    assert_null(tcache_get(tc, k, 10));
    tcache_put(tc, k, &c);
    token_claims_deinit(&c);
    const struct token_claims *hit = tcache_get(tc, k, 10);
    assert_non_null(hit);
    assert_string_equal(hit->sub, "alice");
    assert_string_equal(hit->name, "n");
    key_of(k, 2);
    assert_null(tcache_get(tc, k, 10));
    tcache_free(tc);
}

static void tcache__expired_entries_are_never_returned(void **state)
{
    (void)state;
    struct tcache *tc = tcache_new(64, 1 << 20);
    struct token_claims c;
    make_claims(&c, 1000);
    unsigned char k[TCACHE_KEY_LEN];
    key_of(k, 1);
    tcache_put(tc, k, &c);
    token_claims_deinit(&c);
    assert_non_null(tcache_get(tc, k, 999));
    assert_null(tcache_get(tc, k, 1000));
    assert_int_equal(tcache_count(tc), 0);
    tcache_free(tc);
}

static void tcache__bounded_by_entries(void **state)
{
    (void)state;
    struct tcache *tc = tcache_new(256, 1 << 20);
    unsigned char k[TCACHE_KEY_LEN];
    for (int i = 0; i < 10000; i++) {
        struct token_claims c;
        make_claims(&c, 1000);
        key_of(k, i);
        tcache_put(tc, k, &c);
        token_claims_deinit(&c);
    }
    assert_true(tcache_count(tc) <= 256);
    key_of(k, 9999); /* the most recent one is still there */
    assert_non_null(tcache_get(tc, k, 1));
    tcache_free(tc);
}

static void tcache__bounded_by_bytes(void **state)
{
    (void)state;
    size_t block = sizeof(struct token_claims) + 10 + 16;
    struct tcache *tc = tcache_new(1024, 10 * block); /* room for ten entries */
    unsigned char k[TCACHE_KEY_LEN];
    for (int i = 0; i < 100; i++) {
        struct token_claims c;
        make_claims(&c, 1000);
        key_of(k, i);
        tcache_put(tc, k, &c);
        token_claims_deinit(&c);
    }
    assert_int_equal(tcache_count(tc), 10);
    assert_int_equal(tcache_bytes(tc), 10 * block);
    tcache_free(tc);
}

/* The key is the cache's own: the same token meets itself, one byte changed does not, and
 * another cache (another secret) keys it otherwise. */
static void tcache__keys_are_keyed_by_the_cache_secret(void **state)
{
    (void)state;
    struct tcache *a = tcache_new(64, 1 << 20), *b = tcache_new(64, 1 << 20);
    char tok[] = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
    unsigned char k1[TCACHE_KEY_LEN], k2[TCACHE_KEY_LEN], k3[TCACHE_KEY_LEN];
    tcache_key(a, tok, strlen(tok), k1);
    tcache_key(a, tok, strlen(tok), k2);
    assert_memory_equal(k1, k2, TCACHE_KEY_LEN);
    tcache_key(b, tok, strlen(tok), k3);
    assert_memory_not_equal(k1, k3, TCACHE_KEY_LEN);
    tok[sizeof(tok) - 2] ^= 1;
    tcache_key(a, tok, strlen(tok), k2);
    assert_memory_not_equal(k1, k2, TCACHE_KEY_LEN);
    tcache_key(a, tok, strlen(tok) - 1, k2); /* a prefix is another token */
    assert_memory_not_equal(k1, k2, TCACHE_KEY_LEN);
    tcache_free(a);
    tcache_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tcache__hit_returns_a_copy),
        cmocka_unit_test(tcache__expired_entries_are_never_returned),
        cmocka_unit_test(tcache__bounded_by_entries),
        cmocka_unit_test(tcache__bounded_by_bytes),
        cmocka_unit_test(tcache__keys_are_keyed_by_the_cache_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
