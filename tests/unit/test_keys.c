/* test_keys.c -- loading the keyring: kids, formats, the signer, refusals. */
#include "cm.h"

#include <time.h>
#include <utime.h>

#include "helpers.h"
#include "keys.h"

static void keys__newest_file_signs_and_all_verify(void **state)
{
    (void)state;
    char *dir = th_tmpdir();
    EVP_PKEY *a = th_write_key(dir, "old"), *b = th_write_key(dir, "new");
    char path[512];
    snprintf(path, sizeof(path), "%s/old.pem", dir);
    struct utimbuf past = {time(NULL) - 3600, time(NULL) - 3600};
    utime(path, &past);
    struct keyring *ring;
    char err[256];
    assert_int_equal(keys_load(dir, &ring, err, sizeof(err)), P2A_OK);
    assert_int_equal(keys_count(ring), 2);
    assert_string_equal(keys_signer(ring)->kid, "new");
    assert_non_null(keys_find(ring, "old", 3));
    assert_null(keys_find(ring, "ol", 2));
    assert_string_equal(keys_find(ring, "old", 3)->alg, "ES256");
    keys_free(ring);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    th_rmtree(dir);
}

static void keys__sec1_and_pkcs8_both_load(void **state)
{
    (void)state;
    char *dir = th_tmpdir();
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl ecparam -name prime256v1 -genkey -noout -out %s/sec1.pem 2>/dev/null && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s/p8.pem "
             "2>/dev/null",
             dir, dir);
    assert_int_equal(system(cmd), 0);
    struct keyring *ring;
    char err[256];
    assert_int_equal(keys_load(dir, &ring, err, sizeof(err)), P2A_OK);
    assert_int_equal(keys_count(ring), 2);
    keys_free(ring);
    th_rmtree(dir);
}

static void keys__refusals_name_the_problem(void **state)
{
    (void)state;
    struct keyring *ring = NULL;
    char err[512];
    char *dir = th_tmpdir();
    assert_int_equal(keys_load(dir, &ring, err, sizeof(err)), P2A_ERR_INVALID);
    assert_non_null(strstr(err, "no signing keys"));
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out %s/p384.pem "
             "2>/dev/null",
             dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(keys_load(dir, &ring, err, sizeof(err)), P2A_ERR_INVALID);
    assert_non_null(strstr(err, "p384.pem"));
    th_rmtree(dir);

    dir = th_tmpdir();
    free(th_write_file(dir, "junk.pem", "not a key\n"));
    assert_int_equal(keys_load(dir, &ring, err, sizeof(err)), P2A_ERR_INVALID);
    assert_non_null(strstr(err, "junk.pem"));
    th_rmtree(dir);

    dir = th_tmpdir();
    EVP_PKEY *k = th_write_key(dir, "bad kid");
    assert_int_equal(keys_load(dir, &ring, err, sizeof(err)), P2A_ERR_INVALID);
    assert_non_null(strstr(err, "kid"));
    EVP_PKEY_free(k);
    th_rmtree(dir);
    assert_int_equal(keys_load("/nonexistent/p2a", &ring, err, sizeof(err)), P2A_ERR_INVALID);
    assert_null(ring);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys__newest_file_signs_and_all_verify),
        cmocka_unit_test(keys__sec1_and_pkcs8_both_load),
        cmocka_unit_test(keys__refusals_name_the_problem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
