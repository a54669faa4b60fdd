/* seal.c -- see seal.h. Pure but for OpenSSL; any thread. */
#include "seal.h"

#include <stdbool.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "xalloc.h"

/* The sealing key of signing key k for purpose: HKDF-SHA256 of its private key. */
static bool seal_key(const struct signing_key *k, const char *purpose, unsigned char key[32])
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    size_t len = 32;
    bool ok =
        c != NULL && EVP_PKEY_derive_init(c) > 0 && EVP_PKEY_CTX_set_hkdf_md(c, EVP_sha256()) > 0 &&
        EVP_PKEY_CTX_set1_hkdf_key(c, (const unsigned char *)k->priv_pem, (int)k->priv_pem_len) >
            0 &&
        EVP_PKEY_CTX_add1_hkdf_info(c, (const unsigned char *)purpose, (int)strlen(purpose)) > 0 &&
        EVP_PKEY_derive(c, key, &len) > 0 && len == 32;
    EVP_PKEY_CTX_free(c);
    return ok;
}

char *seal_text(const struct keyring *ring, const char *purpose, const char *text, size_t max_text)
{
    const struct signing_key *k = keys_signer(ring);
    size_t n = strlen(text), klen = strlen(k->kid), total = SEAL_IV + n + SEAL_TAG;
    if (n > max_text)
        return NULL;
    unsigned char key[32], *buf = xmalloc(total);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0;
    bool ok = c != NULL && seal_key(k, purpose, key) && RAND_bytes(buf, SEAL_IV) == 1 &&
              EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, buf) == 1 &&
              EVP_EncryptUpdate(c, NULL, &len, (const unsigned char *)k->kid, (int)klen) == 1 &&
              EVP_EncryptUpdate(c, buf + SEAL_IV, &len, (const unsigned char *)text, (int)n) == 1 &&
              EVP_EncryptFinal_ex(c, buf + SEAL_IV + len, &fin) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, buf + SEAL_IV + n) == 1;
    EVP_CIPHER_CTX_free(c);
    OPENSSL_cleanse(key, sizeof(key));
    char *out = NULL;
    if (ok) {
        out = xmalloc(klen + 2 + CODEC_B64URL_LEN(total));
        memcpy(out, k->kid, klen);
        out[klen] = '.';
        codec_b64url_encode(buf, total, out + klen + 1);
    }
    OPENSSL_cleanse(buf, total);
    free(buf);
    return out;
}

char *seal_open(const struct keyring *ring, const char *purpose, const char *value, size_t max_text,
                size_t *len)
{
    const char *dot = strrchr(value, '.');
    const struct signing_key *k = dot ? keys_find(ring, value, (size_t)(dot - value)) : NULL;
    if (k == NULL)
        return NULL;
    size_t klen = (size_t)(dot - value), cap = SEAL_IV + max_text + SEAL_TAG + 3;
    unsigned char *raw = xmalloc(cap);
    long total = codec_b64url_decode(dot + 1, strlen(dot + 1), raw, cap);
    char *text = NULL;
    if (total >= SEAL_IV + SEAL_TAG && (size_t)total <= SEAL_IV + max_text + SEAL_TAG) {
        size_t n = (size_t)total - SEAL_IV - SEAL_TAG;
        unsigned char key[32];
        text = xmalloc(n + 1);
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        int got = 0, fin = 0;
        bool ok = c != NULL && seal_key(k, purpose, key) &&
                  EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, raw) == 1 &&
                  EVP_DecryptUpdate(c, NULL, &got, (const unsigned char *)value, (int)klen) == 1 &&
                  EVP_DecryptUpdate(c, (unsigned char *)text, &got, raw + SEAL_IV, (int)n) == 1 &&
                  EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SEAL_TAG, raw + SEAL_IV + n) == 1 &&
                  EVP_DecryptFinal_ex(c, (unsigned char *)text + got, &fin) == 1;
        EVP_CIPHER_CTX_free(c);
        OPENSSL_cleanse(key, sizeof(key));
        if (ok) {
            text[n] = '\0';
            *len = n;
        } else {
            OPENSSL_cleanse(text, n);
            free(text);
            text = NULL;
        }
    }
    OPENSSL_cleanse(raw, cap);
    free(raw);
    return text;
}
