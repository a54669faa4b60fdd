/* test_seal.c -- texts sealed for a browser to carry: they open with the keyring that sealed
 * them, for the purpose they were sealed for, and not once anything about them changed. */
#include <stdlib.h>
#include <string.h>

#include "cm.h"
#include "helpers.h"
#include "seal.h"

struct fx {
    char *dir;
    struct keyring *ring;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->dir = th_tmpdir();
    EVP_PKEY_free(th_write_key(f->dir, "k1"));
    char err[256];
    assert_int_equal(keys_load(f->dir, &f->ring, err, sizeof(err)), P2A_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    keys_free(f->ring);
    th_rmtree(f->dir);
    free(f);
    return 0;
}

static void seal__round_trip(void **state)
{
    struct fx *f = *state;
    const char *text = "{\"state\":\"s\",\"q\":\"response_type=code\"}";
    char *v = seal_text(f->ring, "p1", text, 100);
    assert_non_null(v);
    assert_true(strncmp(v, "k1.", 3) == 0); /* the key is named */
    assert_true(strlen(v) <= SEAL_LEN(strlen(text)));
    assert_null(strstr(v, "response_type")); /* nothing of the text shows */
    size_t n = 0;
    char *t = seal_open(f->ring, "p1", v, 100, &n);
    assert_non_null(t);
    assert_int_equal(n, strlen(text));
    assert_string_equal(t, text);
    free(t);
    char *w = seal_text(f->ring, "p1", text, 100); /* a fresh IV each time */
    assert_string_not_equal(v, w);
    free(w);
    free(v);
    assert_null(seal_text(f->ring, "p1", text, 10)); /* over max_text */
}

static void seal__refusals(void **state)
{
    struct fx *f = *state;
    size_t n;
    char *v = seal_text(f->ring, "p1", "hello, sealed world", 100);
    assert_non_null(v);
    assert_null(seal_open(f->ring, "p2", v, 100, &n)); /* another purpose */
    assert_null(seal_open(f->ring, "p1", v, 5, &n));   /* longer than the caller takes */
    size_t len = strlen(v);
    for (size_t i = 3; i < len; i += 7) { /* any byte of IV, text or tag changed */
        char *t = strdup(v);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        assert_null(seal_open(f->ring, "p1", t, 100, &n));
        free(t);
    }
    char *other = strdup(v);
    other[1] = '2'; /* a key the keyring does not hold */
    assert_null(seal_open(f->ring, "p1", other, 100, &n));
    free(other);
    assert_null(seal_open(f->ring, "p1", "k1.", 100, &n));
    assert_null(seal_open(f->ring, "p1", "no dot at all", 100, &n));
    assert_null(seal_open(f->ring, "p1", "k1.!!!", 100, &n));
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(seal__round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(seal__refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
