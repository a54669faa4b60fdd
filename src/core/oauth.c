/* oauth.c -- OAuth 2.1 rules without I/O (see oauth.h). */
#include "oauth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "codec.h"
#include "jsonw.h"
#include "scope.h"
#include "url.h"
#include "config.h"
#include "digest.h"
#include "token.h"
#include "validate.h"
#include "xalloc.h"

/* ---- small codecs ------------------------------------------------------------------------- */

/* Percent-decodes s[0..n) into out (at least n + 1 bytes); plus: '+' is a space. Returns the
 * length, or -1 on a bad escape or a NUL. */
static long pct_decode(const char *s, size_t n, char *out, bool plus)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = codec_hexval((unsigned char)s[i + 1]);
            int l = codec_hexval((unsigned char)s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = (char)(h << 4 | l);
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (c == '\0')
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

/* ---- forms -------------------------------------------------------------------------------- */

p2a_err oauth_form_parse(const char *s, size_t len, struct oauth_form *f)
{
    memset(f, 0, sizeof(*f));
    size_t i = 0;
    while (i < len) {
        const char *seg = s + i;
        const char *amp = memchr(seg, '&', len - i);
        size_t n = amp ? (size_t)(amp - seg) : len - i;
        i += n + 1;
        if (n == 0)
            continue;
        const char *eq = memchr(seg, '=', n);
        size_t kn = eq ? (size_t)(eq - seg) : n;
        size_t vn = eq ? n - kn - 1 : 0;
        if (f->n == OAUTH_MAX_PARAMS) {
            snprintf(f->why, sizeof(f->why), "more than %d parameters", OAUTH_MAX_PARAMS);
            return P2A_ERR_INVALID;
        }
        if (kn == 0 || kn > 64 || vn > OAUTH_MAX_VALUE * 3) {
            snprintf(f->why, sizeof(f->why), "a parameter name is empty or a value too long");
            return P2A_ERR_INVALID;
        }
        char *k = xmalloc(kn + 1), *v = xmalloc(vn + 1);
        long kl = pct_decode(seg, kn, k, true);
        long vl = eq ? pct_decode(eq + 1, vn, v, true) : 0;
        if (!eq)
            v[0] = '\0';
        if (kl < 0 || vl < 0 || vl > OAUTH_MAX_VALUE) {
            free(k), free(v);
            snprintf(f->why, sizeof(f->why), "a parameter is badly percent-encoded or too long");
            return P2A_ERR_INVALID;
        }
        bool joined = false;
        for (size_t j = 0; j < f->n && !joined; j++) {
            if (strcmp(f->names[j], k) != 0)
                continue;
            if (strcmp(k, "resource") != 0 ||
                strlen(f->values[j]) + 1 + (size_t)vl > OAUTH_MAX_VALUE) {
                snprintf(f->why, sizeof(f->why), "parameter %.40s given more than once", k);
                free(k), free(v);
                return P2A_ERR_INVALID;
            }
            size_t have = strlen(f->values[j]); /* RFC 8707 2: several resources */
            f->values[j] = xrealloc(f->values[j], have + 2 + (size_t)vl);
            f->values[j][have] = ' ';
            memcpy(f->values[j] + have + 1, v, (size_t)vl + 1);
            free(k), free(v);
            joined = true;
        }
        if (joined)
            continue;
        f->names[f->n] = k;
        f->values[f->n++] = v;
    }
    return P2A_OK;
}

const char *oauth_form_get(const struct oauth_form *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0)
            return f->values[i][0] ? f->values[i] : NULL;
    return NULL;
}

void oauth_form_free(struct oauth_form *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->names[i]);
        OPENSSL_cleanse(f->values[i], strlen(f->values[i]));
        free(f->values[i]);
    }
    f->n = 0;
}

/* ---- headers ------------------------------------------------------------------------------ */

static const char *skip_scheme(const char *header, const char *scheme)
{
    size_t n = strlen(scheme);
    if (header == NULL || strncasecmp(header, scheme, n) != 0 || header[n] != ' ')
        return NULL;
    header += n;
    while (*header == ' ')
        header++;
    return header;
}

static bool copy_decoded(const char *s, size_t n, char *out, size_t outlen)
{
    if (n >= outlen)
        return false;
    char tmp[512];
    if (n < sizeof(tmp) && memchr(s, '%', n) != NULL && pct_decode(s, n, tmp, true) >= 0) {
        snprintf(out, outlen, "%s", tmp);
        OPENSSL_cleanse(tmp, sizeof(tmp));
        return true;
    }
    if (memchr(s, '\0', n) != NULL)
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

bool oauth_basic_parse(const char *header, char *id, size_t idlen, char *secret, size_t secretlen)
{
    const char *b = skip_scheme(header, "Basic");
    if (b == NULL)
        return false;
    size_t n = strlen(b);
    while (n > 0 && b[n - 1] == ' ')
        n--;
    unsigned char raw[768];
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > sizeof(raw) - 1)
        return false;
    int len = EVP_DecodeBlock(raw, (const unsigned char *)b, (int)n);
    if (len < 0)
        return false;
    if (n >= 1 && b[n - 1] == '=')
        len--;
    if (n >= 2 && b[n - 2] == '=')
        len--;
    raw[len] = '\0';
    char *colon = memchr(raw, ':', (size_t)len);
    bool ok =
        colon != NULL && colon != (char *)raw &&
        copy_decoded((char *)raw, (size_t)(colon - (char *)raw), id, idlen) &&
        copy_decoded(colon + 1, (size_t)len - (size_t)(colon + 1 - (char *)raw), secret, secretlen);
    OPENSSL_cleanse(raw, sizeof(raw));
    return ok;
}

void oauth_error_json(const char *error, const char *desc, char out[OAUTH_ERROR_JSON_MAX])
{
    struct jsonw w;
    jsonw_begin(&w, out, OAUTH_ERROR_JSON_MAX);
    jsonw_str(&w, "error", error);
    jsonw_str(&w, "error_description", desc);
    if (jsonw_end(&w) < 0) {
        jsonw_begin(&w, out, OAUTH_ERROR_JSON_MAX);
        jsonw_str(&w, "error", error);
        jsonw_end(&w);
    }
}

const char *oauth_bearer(const char *header, size_t *len)
{
    const char *t = skip_scheme(header, "Bearer");
    if (t == NULL)
        return NULL;
    size_t n = strlen(t);
    while (n > 0 && t[n - 1] == ' ')
        n--;
    if (n == 0)
        return NULL;
    *len = n;
    return t;
}

bool oauth_cookie_get(const char *header, const char *name, char *out, size_t outlen)
{
    if (header == NULL)
        return false;
    size_t nl = strlen(name);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t vn = n - nl - 1;
            while (vn > 0 && p[nl + 1 + vn - 1] == ' ')
                vn--;
            if (vn == 0 || vn >= outlen)
                return false;
            memcpy(out, p + nl + 1, vn);
            out[vn] = '\0';
            return true;
        }
        p += n;
    }
    return false;
}

/* ---- URIs --------------------------------------------------------------------------------- */

const char *oauth_redirect_uri_check(const char *uri)
{
    static const char *const refused[] = {"javascript", "data",  "vbscript",   "file",
                                          "blob",       "about", "filesystem", "mailto",
                                          "ftp",        "ws",    "wss",        "tel"};
    size_t n = strlen(uri);
    if (n == 0 || n > OAUTH_MAX_URI)
        return "a redirect URI must be 1 to 2000 bytes";
    for (const unsigned char *p = (const unsigned char *)uri; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '<' || *p == '>' || *p == '\\')
            return "a redirect URI must not contain spaces, quotes or control characters";
    if (strchr(uri, '#') != NULL)
        return "a redirect URI must not have a fragment";
    struct url_parts u;
    if (!url_split(uri, &u))
        return "a redirect URI must be an absolute URI without userinfo";
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (url_scheme_is(&u, refused[i]))
            return "this redirect URI scheme is not allowed";
    if (url_scheme_is(&u, "https")) {
        if (!u.has_authority || u.host_len == 0)
            return "an https redirect URI needs a host";
        return NULL;
    }
    if (url_scheme_is(&u, "http")) {
        if (!u.has_authority || !url_host_is_loopback(&u))
            return "http redirect URIs are allowed only on localhost, 127.0.0.1 or [::1]; "
                   "use https";
        return NULL;
    }
    /* a private-use scheme (RFC 8252 7.1): reaches a native app on the user's device */
    if (u.scheme_len < 2 || (u.rest[0] == '\0' && !u.has_authority))
        return "a private-use redirect URI needs a path";
    return NULL;
}

/* Whether a and b, split, name the same path and query: an empty path is "/" (RFC 3986
 * 6.2.3), so "http://127.0.0.1:33418" (VS Code's) and the "http://127.0.0.1:33418/" a
 * browser lands on are one URI. */
static bool same_rest(const struct url_parts *a, const struct url_parts *b)
{
    const char *ar = a->rest[0] ? a->rest : "/", *br = b->rest[0] ? b->rest : "/";
    return strcmp(ar, br) == 0;
}

bool oauth_redirect_uri_match(const char *registered, const char *given)
{
    if (strcmp(registered, given) == 0)
        return true;
    struct url_parts r, g;
    if (!url_split(registered, &r) || !url_split(given, &g))
        return false;
    if (!url_scheme_is(&r, "http") || !url_scheme_is(&g, "http") || !url_host_is_loopback(&r) ||
        !url_host_is_loopback(&g))
        return false;
    if (r.host_len != g.host_len || strncasecmp(r.host, g.host, r.host_len) != 0)
        return false; /* localhost and 127.0.0.1 are not the same */
    return same_rest(&r, &g);
}

bool oauth_redirect_uri_same(const char *asked, const char *given)
{
    if (strcmp(asked, given) == 0)
        return true;
    struct url_parts a, g;
    /* the same scheme, host and port, written alike, up to the path */
    return url_split(asked, &a) && url_split(given, &g) && a.rest - asked == g.rest - given &&
           strncmp(asked, given, (size_t)(a.rest - asked)) == 0 && same_rest(&a, &g);
}

const char *oauth_resource_find(const struct p2a_config *cfg, const char *s)
{
    if (s == NULL || strlen(s) > OAUTH_MAX_URI || strchr(s, '#') != NULL)
        return NULL;
    for (size_t i = 0; i < cfg->nresources; i++)
        if (token_resource_eq(cfg->resources[i], s))
            return cfg->resources[i];
    return NULL;
}

bool oauth_resources_canon(const struct p2a_config *cfg, const char *list, char *out, size_t outlen)
{
    size_t o = 0;
    const char *t;
    size_t n;
    out[0] = '\0';
    for (const char *p = list; scope_next(&p, &t, &n);) {
        char one[OAUTH_MAX_URI + 1];
        if (n > OAUTH_MAX_URI)
            return false;
        memcpy(one, t, n);
        one[n] = '\0';
        const char *c = oauth_resource_find(cfg, one);
        size_t cl = c ? strlen(c) : 0;
        if (c == NULL || o + cl + 2 > outlen)
            return false;
        if (scope_has(out, c, cl))
            continue; /* named twice */
        if (o > 0)
            out[o++] = ' ';
        memcpy(out + o, c, cl + 1);
        o += cl;
    }
    return o > 0;
}

bool oauth_resources_within(const char *have, const char *want)
{
    return scope_covers(have, want);
}

/* ---- PKCE and secrets --------------------------------------------------------------------- */

bool oauth_pkce_verifier_valid(const char *v)
{
    size_t n = strlen(v);
    if (n < 43 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)v[i]) && strchr("-._~", v[i]) == NULL)
            return false;
    return true;
}

bool oauth_pkce_challenge_valid(const char *c)
{
    if (strlen(c) != 43)
        return false;
    for (size_t i = 0; i < 43; i++)
        if (!codec_b64url_char((unsigned char)c[i]))
            return false;
    return true;
}

bool oauth_pkce_s256_ok(const char *verifier, const char *challenge)
{
    if (!oauth_pkce_verifier_valid(verifier) || !oauth_pkce_challenge_valid(challenge))
        return false;
    char enc[OAUTH_SECRET_LEN + 1];
    oauth_pkce_s256(verifier, enc);
    return CRYPTO_memcmp(enc, challenge, 43) == 0;
}

void oauth_pkce_s256(const char *verifier, char out[OAUTH_SECRET_LEN + 1])
{
    unsigned char d[DIGEST_SHA256_LEN];
    digest_sha256(verifier, strlen(verifier), d);
    codec_b64url_encode(d, sizeof(d), out);
}

p2a_err oauth_random_secret(char out[OAUTH_SECRET_LEN + 1])
{
    unsigned char r[OAUTH_SECRET_BYTES];
    if (RAND_bytes(r, sizeof(r)) != 1)
        return P2A_ERR_INTERNAL;
    codec_b64url_encode(r, sizeof(r), out);
    OPENSSL_cleanse(r, sizeof(r));
    return P2A_OK;
}

void oauth_digest_hex(const char *s, size_t len, char out[OAUTH_HEX_LEN + 1])
{
    unsigned char d[DIGEST_SHA256_LEN];
    digest_sha256(s, len, d);
    codec_hex(d, sizeof(d), out);
}

bool oauth_secret_eq(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

/* ---- users -------------------------------------------------------------------------------- */

const char *oauth_username_check(const char *username)
{
    size_t n = strlen(username);
    if (n == 0 || n > OAUTH_MAX_USERNAME)
        return "username must be 1 to 64 characters";
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)username[i]) && strchr("._@-", username[i]) == NULL)
            return "username may hold only letters, digits and . _ @ -";
    return NULL;
}

const char *oauth_password_check(const char *username, const char *password)
{
    static const char *const common[] = {
        "password123", "password1234", "1234567890",  "12345678910", "qwertyuiop",
        "0123456789",  "iloveyou123",  "passw0rd123", "abcdefghij",  "letmein1234"};
    size_t n = strlen(password);
    if (n > OAUTH_MAX_PASSWORD)
        return "password must be at most 256 bytes";
    long chars = codec_utf8_chars(password, n);
    if (chars < 0)
        return "password must be valid UTF-8";
    if (chars < OAUTH_MIN_PASSWORD)
        return "password must be at least 10 characters";
    if (strcasecmp(password, username) == 0)
        return "password must not be the username";
    bool same = true;
    for (size_t i = 1; i < n; i++)
        same = same && password[i] == password[0];
    if (same)
        return "password must not be one character repeated";
    for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
        if (strcasecmp(password, common[i]) == 0)
            return "password is too common";
    return NULL;
}

#define SCRYPT_LOG_N 15
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SCRYPT_MAXMEM (64u * 1024 * 1024)

static bool scrypt_derive(const char *pw, const unsigned char *salt, size_t saltlen, int log_n,
                          int r, int p, unsigned char *out, size_t outlen)
{
    return EVP_PBE_scrypt(pw, strlen(pw), salt, saltlen, (uint64_t)1 << log_n, (uint64_t)r,
                          (uint64_t)p, SCRYPT_MAXMEM, out, outlen) == 1;
}

p2a_err oauth_password_hash(const char *password, char *out, size_t outlen)
{
    unsigned char salt[16], dk[32];
    if (RAND_bytes(salt, sizeof(salt)) != 1 ||
        !scrypt_derive(password, salt, sizeof(salt), SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P, dk,
                       sizeof(dk)))
        return P2A_ERR_INTERNAL;
    char s64[32], d64[48];
    codec_b64url_encode(salt, sizeof(salt), s64);
    codec_b64url_encode(dk, sizeof(dk), d64);
    OPENSSL_cleanse(dk, sizeof(dk));
    int k = snprintf(out, outlen, "$scrypt$ln=%d,r=%d,p=%d$%s$%s", SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P,
                     s64, d64);
    return k > 0 && (size_t)k < outlen ? P2A_OK : P2A_ERR_INTERNAL;
}

bool oauth_password_verify(const char *password, const char *stored)
{
    static const char *const names[3] = {"$scrypt$ln=", ",r=", ",p="};
    long v[3];
    const char *s = stored;
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(names[i]);
        char *end;
        if (strncmp(s, names[i], n) != 0 || !isdigit((unsigned char)s[n]))
            return false;
        v[i] = strtol(s + n, &end, 10);
        s = end;
    }
    int log_n = (int)v[0], r = (int)v[1], p = (int)v[2];
    if (*s != '$' || log_n < 10 || log_n > 20 || r < 1 || r > 16 || p < 1 || p > 4)
        return false;
    const char *salt = s + 1;
    const char *dollar = strchr(salt, '$');
    if (dollar == NULL)
        return false;
    unsigned char sraw[64], want[64], got[64];
    long sl = codec_b64url_decode(salt, (size_t)(dollar - salt), sraw, sizeof(sraw));
    long wl = codec_b64url_decode(dollar + 1, strlen(dollar + 1), want, sizeof(want));
    if (sl < 8 || wl < 16)
        return false;
    bool ok = scrypt_derive(password, sraw, (size_t)sl, log_n, r, p, got, (size_t)wl) &&
              CRYPTO_memcmp(got, want, (size_t)wl) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return ok;
}
