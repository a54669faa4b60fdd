/* fuzz_token.c -- the JWT path with arbitrary strings: shape, base64, header (alg, kid),
 * signature, claims, then the per-request checks and the audience comparison. */
#include "fuzz_common.h"
#include "helpers.h"
#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An input that starts with '{' is "<header JSON>\0<payload JSON>": the target encodes and
 * signs it with the keyring's key, so the fuzzer reaches the claims behind the signature. */
static char *signed_token(const uint8_t *data, size_t size)
{
    static EVP_PKEY *key;
    if (key == NULL) {
        char path[300];
        snprintf(path, sizeof(path), "%s/fuzz-key.pem", fuzz_world()->cfg.keys_dir);
        FILE *f = fopen(path, "r");
        P2A_ASSERT(f != NULL);
        key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        P2A_ASSERT(key != NULL);
    }
    char *copy = xstrndup((const char *)data, size);
    const char *payload = strlen(copy) < size ? copy + strlen(copy) + 1 : "{}";
    char *tok = th_jwt_es256(key, copy, payload);
    free(copy);
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_world *w = fuzz_world();
    struct token_claims c;
    char *signed_tok = size > 0 && data[0] == '{' ? signed_token(data, size) : NULL;
    if (signed_tok != NULL) {
        data = (const uint8_t *)signed_tok;
        size = strlen(signed_tok);
    }
    enum token_verdict v = token_decode(w->keys, w->cfg.issuer, (const char *)data, size, &c);
    if (v == TV_ACTIVE) {
        static const char *const resources[] = {NULL, "", "http://127.0.0.1:3000/mcp",
                                                "HTTP://127.0.0.1:3000/mcp/", "https://x"};
        for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++)
            for (int kind = 0; kind <= 2; kind++)
                (void)token_check(&c, 1795662000, 60, (enum token_kind)kind, resources[i]);
        struct token_claims *packed = token_claims_pack(&c);
        free(packed);
        token_claims_deinit(&c);
    }
    /* audiences: split the input in two at its first NUL */
    char *a = xstrndup((const char *)data, size);
    const char *b = memchr(data, '\0', size) ? a + strlen(a) + 1 : "";
    if (b > a + size)
        b = "";
    (void)token_resource_eq(a, b);
    free(a);
    free(signed_tok);
    return 0;
}
