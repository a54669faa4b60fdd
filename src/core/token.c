/* token.c -- our JWTs: ES256, kid in the header, a marker for the kind of token.
 *
 * Claims: iss, sub, aud (array), jti (128 random bits), iat, exp, scope, and token_use
 * ("pat", "access" or "client") so that no kind of token can pass for another; PATs carry
 * their name in pat_name, OAuth tokens their client in client_id, and a client's own token
 * (client credentials) its id in both sub and client_id.
 *
 * Signing: PATs through libjwt (its signature then normalised to the low s), OAuth access
 * tokens by our own ES256 code (libjwt 1.10 cannot write typ at+jwt). Verifying never goes
 * through libjwt: libjwt 1.10 takes the algorithm from the
 * token's own header (it would verify an HS256 token keyed with our public key's PEM) and
 * re-parses the PEM key on every call, which costs six times the signature check itself.
 * So we parse the header ourselves, demand the one algorithm bound to the kid (ES256; none,
 * HMAC and everything else are refused before any key is touched), and check the ECDSA
 * signature with OpenSSL against the key parsed once at start. Header and payload are
 * decoded with OpenSSL's base64 and parsed with jansson (duplicate members rejected).
 *
 * Pure functions of their inputs; safe on any thread.
 */
#include "token.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "arena.h"
#include "codec.h"
#include "jws.h"
#include "digest.h"
#include "keys.h"
#include "revoke.h"
#include "url.h"
#include "xalloc.h"

#define HEADER_MAX 1024                /* encoded header bytes we parse */
#define PAT_MAX_LIFETIME (366 * 86400) /* a year, plus a day of slack for skew */
#define MAX_STR_CLAIM 2048

/* Every token one key signs has the same header bytes, so each thread remembers the last
 * few headers it accepted, by their exact encoded bytes, and skips decoding and parsing
 * them again. Only accepted headers are remembered. */
#define HEADER_MEMO 4
struct header_memo {
    unsigned long long ring; /* keys_serial() */
    const struct signing_key *key;
    size_t len;
    char seg[HEADER_MAX];
};
static _Thread_local struct header_memo header_memo[HEADER_MEMO];
static _Thread_local unsigned header_memo_next;

static const char *const use_names[] = {
    [TOKEN_KIND_PAT] = "pat", [TOKEN_KIND_OAUTH] = "access", [TOKEN_KIND_CLIENT] = "client"};

const char *token_verdict_text(enum token_verdict v)
{
    switch (v) {
    case TV_ACTIVE:
        return "Token active";
    case TV_MISSING:
        return "No token was presented";
    case TV_MALFORMED:
        return "Token is malformed";
    case TV_BAD_SIGNATURE:
        return "Token signature is invalid";
    case TV_UNKNOWN_KEY:
        return "Token was signed by an unknown key";
    case TV_EXPIRED:
        return "Token expired";
    case TV_NOT_YET_VALID:
        return "Token is not valid yet";
    case TV_REVOKED:
        return "Token revoked";
    case TV_WRONG_ISSUER:
        return "Token was issued by another issuer";
    case TV_WRONG_AUDIENCE:
        return "Token is not meant for this resource";
    case TV_INSUFFICIENT_SCOPE:
        return "Token lacks a scope this request needs";
    }
    return "Token is invalid";
}

const char *token_verdict_hint(enum token_verdict v)
{
    switch (v) {
    case TV_ACTIVE:
        return "";
    case TV_MISSING:
        return "send the token in the Authorization header: Authorization: Bearer <token>";
    case TV_EXPIRED:
        return "the token has expired: create a new one (or let your MCP client sign in again)";
    case TV_REVOKED:
        return "the token was revoked: create a new one";
    case TV_WRONG_AUDIENCE:
        return "the token is for another server, or of another kind: use one made for this one";
    case TV_INSUFFICIENT_SCOPE:
        return "the token lacks a permission this call needs: sign in again to grant it";
    case TV_NOT_YET_VALID:
        return "the token is not valid yet: check the clock of the machine that made it";
    default:
        return "the token is not one this service issued, or it was altered: create a new one";
    }
}

/* Parsing a payload makes a score of small jansson allocations that all die before
 * token_decode() returns. While a thread decodes, they come from a bump arena of its own
 * (malloc beyond it); elsewhere, and for every other thread, jansson uses plain malloc. */
struct json_arena {
    bool on;
    struct arena a;
    _Alignas(16) unsigned char buf[16 * 1024];
};
static _Thread_local struct json_arena jarena;
static pthread_once_t jarena_once = PTHREAD_ONCE_INIT;

static void *jarena_alloc(size_t n)
{
    return jarena.on ? arena_alloc(&jarena.a, n) : malloc(n);
}

static void jarena_free(void *p)
{
    arena_free(&jarena.a, p); /* the arena's are reclaimed all at once when the decode ends */
}

static void jarena_install(void)
{
    json_set_alloc_funcs(jarena_alloc, jarena_free);
}

static void jarena_begin(void)
{
    pthread_once(&jarena_once, jarena_install);
    arena_init(&jarena.a, jarena.buf, sizeof(jarena.buf));
    jarena.on = true;
}

static void jarena_end(void)
{
    jarena.on = false;
    arena_reset(&jarena.a);
}

/* ---- claims ---------------------------------------------------------------------------- */

void token_claims_deinit(struct token_claims *c)
{
    free(c->blob);
    memset(c, 0, sizeof(*c));
}

struct blob_builder {
    char *buf;
    size_t len, cap;
};

static size_t blob_add(struct blob_builder *b, const char *s)
{
    size_t n = strlen(s) + 1;
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->buf = xrealloc(b->buf, b->cap);
    }
    memcpy(b->buf + b->len, s, n);
    size_t off = b->len;
    b->len += n;
    return off;
}

/* Fill the string pointers of c from offsets once the blob no longer moves. */
struct claim_offsets {
    size_t sub, scope, name, client_id, aud, actor;
};

static void claims_bind(struct token_claims *c, const struct claim_offsets *o)
{
    c->sub = c->blob + o->sub;
    c->scope = c->blob + o->scope;
    c->name = c->blob + o->name;
    c->client_id = c->blob + o->client_id;
    c->aud = c->blob + o->aud;
    c->actor = c->blob + o->actor;
}

/* Points dst's strings into dst->blob at the offsets src's have in src->blob. */
static void rebase(struct token_claims *dst, const struct token_claims *src)
{
    struct claim_offsets o;
    o.sub = (size_t)(src->sub - src->blob);
    o.scope = (size_t)(src->scope - src->blob);
    o.name = (size_t)(src->name - src->blob);
    o.client_id = (size_t)(src->client_id - src->blob);
    o.aud = (size_t)(src->aud - src->blob);
    o.actor = (size_t)(src->actor - src->blob);
    claims_bind(dst, &o);
}

struct token_claims *token_claims_pack(const struct token_claims *src)
{
    struct token_claims *p = xmalloc(sizeof(*p) + src->blob_len);
    *p = *src;
    p->blob = (char *)(p + 1);
    memcpy(p->blob, src->blob, src->blob_len);
    rebase(p, src);
    return p;
}

static const char *get_str(json_t *obj, const char *key, size_t maxlen, bool *bad)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return NULL;
    if (!json_is_string(v) || json_string_length(v) > maxlen ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        *bad = true;
        return NULL;
    }
    return json_string_value(v);
}

static bool get_int(json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || !json_is_integer(v))
        return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

/* An exchanged token's act (RFC 8693 4.1: {"sub": ..., "act": {the earlier actor}}) and
 * chain (the jtis it derives from, as many as actors) into the blob, actors first, then the
 * chain, then the client markers of the earlier actors (the clients of the chain's tokens
 * but the first): their count, or -1 when they are malformed. A token with neither says 0
 * and adds "" for the actor. */
static long read_chain(json_t *p, struct blob_builder *b, struct claim_offsets *o,
                       int64_t *origin_iat)
{
    json_t *act = json_object_get(p, "act");
    json_t *chain = json_object_get(p, "chain");
    o->actor = b->len;
    if (act == NULL && chain == NULL && json_object_get(p, "chain_iat") == NULL) {
        blob_add(b, "");
        return 0;
    }
    size_t n = 0;
    const char *earlier[TOKEN_MAX_CHAIN];
    for (json_t *a = act; a != NULL; a = json_object_get(a, "act")) {
        json_t *sub = json_object_get(a, "sub");
        if (!json_is_object(a) || n == TOKEN_MAX_CHAIN || !json_is_string(sub) ||
            json_string_length(sub) == 0 || json_string_length(sub) > 255 ||
            strlen(json_string_value(sub)) != json_string_length(sub))
            return -1;
        blob_add(b, json_string_value(sub));
        earlier[n++] = json_string_value(sub);
    }
    if (n == 0 || !json_is_array(chain) || json_array_size(chain) != n ||
        !get_int(p, "chain_iat", origin_iat))
        return -1;
    size_t i;
    json_t *v;
    json_array_foreach(chain, i, v)
    {
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) > JTI_MAX_LEN ||
            strlen(json_string_value(v)) != json_string_length(v))
            return -1;
        blob_add(b, json_string_value(v));
    }
    for (size_t k = 1; k < n; k++) {
        char marker[REVOKE_SUBJECT_MARKER_LEN + 1];
        revoke_client_marker(earlier[k], marker);
        blob_add(b, marker);
    }
    if (n == 1)
        blob_add(b, "");
    return (long)n;
}

static enum token_verdict read_claims(json_t *p, const char *issuer, struct token_claims *out)
{
    bool bad = false;
    const char *iss = get_str(p, "iss", MAX_STR_CLAIM, &bad);
    if (iss == NULL || strcmp(iss, issuer) != 0)
        return bad || iss == NULL ? TV_MALFORMED : TV_WRONG_ISSUER;

    const char *use = get_str(p, "token_use", 16, &bad);
    enum token_kind kind = TOKEN_KIND_NONE;
    for (int k = TOKEN_KIND_PAT; use != NULL && k <= TOKEN_KIND_LAST; k++)
        if (strcmp(use, use_names[k]) == 0)
            kind = (enum token_kind)k;
    const char *sub = get_str(p, "sub", 255, &bad);
    const char *jti = get_str(p, "jti", JTI_MAX_LEN, &bad);
    const char *scope = get_str(p, "scope", 1000, &bad);
    const char *name = get_str(p, "pat_name", 400, &bad);
    const char *client_id = get_str(p, "client_id", 255, &bad);
    int64_t iat, exp, nbf = 0;
    if (bad || kind == TOKEN_KIND_NONE || sub == NULL || sub[0] == '\0' || jti == NULL ||
        jti[0] == '\0' || !get_int(p, "iat", &iat) || !get_int(p, "exp", &exp) || exp <= iat)
        return TV_MALFORMED;
    if (json_object_get(p, "nbf") != NULL && !get_int(p, "nbf", &nbf))
        return TV_MALFORMED;
    if (kind == TOKEN_KIND_PAT && exp - iat > PAT_MAX_LIFETIME)
        return TV_MALFORMED;
    if (kind == TOKEN_KIND_CLIENT && (client_id == NULL || strcmp(client_id, sub) != 0))
        return TV_MALFORMED;

    struct blob_builder b = {0};
    struct claim_offsets o = {0}; /* audiences go first, one after another, from offset 0 */
    json_t *aud = json_object_get(p, "aud");
    size_t naud = 0;
    if (json_is_string(aud)) {
        if (json_string_length(aud) > MAX_STR_CLAIM)
            goto malformed;
        blob_add(&b, json_string_value(aud));
        naud = 1;
    } else if (json_is_array(aud) && json_array_size(aud) > 0 &&
               json_array_size(aud) <= TOKEN_MAX_AUD) {
        size_t i;
        json_t *v;
        json_array_foreach(aud, i, v)
        {
            if (!json_is_string(v) || json_string_length(v) > MAX_STR_CLAIM)
                goto malformed;
            blob_add(&b, json_string_value(v));
            naud++;
        }
    } else {
        goto malformed;
    }
    o.sub = blob_add(&b, sub);
    o.scope = blob_add(&b, scope ? scope : "");
    o.name = blob_add(&b, name ? name : "");
    o.client_id = blob_add(&b, client_id ? client_id : "");
    int64_t origin_iat = iat;
    long nchain = read_chain(p, &b, &o, &origin_iat);
    /* only an access token is exchanged for, and never before the token it came from */
    if (nchain < 0 || (nchain > 0 && (kind != TOKEN_KIND_OAUTH || origin_iat > iat)))
        goto malformed;

    out->kind = kind;
    out->iat = iat;
    out->exp = exp;
    out->nbf = nbf;
    snprintf(out->jti, sizeof(out->jti), "%s", jti);
    revoke_subject_marker(sub, out->sub_marker);
    out->client_marker[0] = '\0';
    if (client_id != NULL && client_id[0] != '\0')
        revoke_client_marker(client_id, out->client_marker);
    out->naud = naud;
    out->nchain = (uint32_t)nchain;
    out->origin_iat = origin_iat;
    out->blob = b.buf;
    out->blob_len = (uint32_t)b.len;
    claims_bind(out, &o);
    return TV_ACTIVE;
malformed:
    free(b.buf);
    return TV_MALFORMED;
}

/* ---- verify ------------------------------------------------------------------------------ */

/* Each thread keeps one verify context per key, initialised once: making a fresh one per
 * call (provider look-ups included) costs about 4% of a verification. */
struct verifier {
    const void *pub;
    EVP_PKEY_CTX *ctx;
};
static _Thread_local struct verifier verifiers[KEYS_MAX];

static EVP_PKEY_CTX *verifier_for(const struct signing_key *k)
{
    struct verifier *free_slot = NULL;
    for (size_t i = 0; i < KEYS_MAX; i++) {
        if (verifiers[i].pub == k->pub)
            return verifiers[i].ctx;
        if (verifiers[i].pub == NULL && free_slot == NULL)
            free_slot = &verifiers[i];
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pub, NULL);
    if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    if (free_slot == NULL) { /* more keys seen than slots: start over */
        token_thread_cleanup();
        free_slot = &verifiers[0];
    }
    free_slot->pub = k->pub;
    free_slot->ctx = ctx;
    return ctx;
}

void token_thread_cleanup(void)
{
    memset(header_memo, 0, sizeof(header_memo));
    for (size_t i = 0; i < KEYS_MAX; i++) {
        EVP_PKEY_CTX_free(verifiers[i].ctx);
        verifiers[i].ctx = NULL;
        verifiers[i].pub = NULL;
    }
}

/* n / 2 for P-256's group order n: an ECDSA signature (r, s) verifies as (r, n - s) too, so
 * each token would have two spellings (a second string for the same token, a different
 * cache key and digest). We accept only the low one, s <= n / 2, and sign only that. */
static const unsigned char half_order[32] = {
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8};

/* Replaces a high s of r || s by n - s. */
static bool low_s(unsigned char raw[64])
{
    if (memcmp(raw + 32, half_order, 32) <= 0)
        return true;
    BIGNUM *n = BN_new(), *sv = BN_bin2bn(raw + 32, 32, NULL);
    bool ok = n != NULL && sv != NULL && BN_bin2bn(half_order, 32, n) != NULL && BN_lshift1(n, n) &&
              BN_add_word(n, 1) && BN_sub(sv, n, sv) && BN_bn2binpad(sv, raw + 32, 32) == 32;
    BN_free(n);
    BN_free(sv);
    return ok;
}

/* ES256 (RFC 7518 3.4): the signature is r || s, 32 bytes each, over SHA-256 of the
 * signing input "<header>.<payload>". OpenSSL wants ECDSA-Sig-Value, a DER SEQUENCE of the
 * two INTEGERs: at most 72 bytes, so every length fits one byte and we write it directly
 * rather than through BIGNUMs and an ECDSA_SIG (three allocations a verification). */
static enum token_verdict check_signature(const struct signing_key *k, const char *tok,
                                          size_t input_len, const char *sig, size_t siglen)
{
    unsigned char raw[66];
    if (siglen != 86 || codec_b64url_decode(sig, siglen, raw, sizeof(raw)) != 64 ||
        memcmp(raw + 32, half_order, 32) > 0)
        return TV_BAD_SIGNATURE;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    digest_sha256(tok, input_len, digest);
    unsigned char der[72];
    size_t dlen = jws_es256_der(raw, der);
    enum token_verdict v = TV_BAD_SIGNATURE;
    EVP_PKEY_CTX *ctx = verifier_for(k);
    if (ctx != NULL && EVP_PKEY_verify(ctx, der, dlen, digest, sizeof(digest)) == 1)
        v = TV_ACTIVE;
    ERR_clear_error();
    return v;
}

/* The key a header names, if the header is acceptable: ES256 and a kid we hold. */
static enum token_verdict parse_header(const struct keyring *ring, const char *seg, size_t n,
                                       const struct signing_key **key)
{
    json_t *h = jws_segment_json(seg, n);
    if (h == NULL)
        return TV_MALFORMED;
    bool bad = false;
    const char *alg = get_str(h, "alg", 32, &bad);
    const char *kid = get_str(h, "kid", KEYS_MAX_KID, &bad);
    enum token_verdict v = TV_ACTIVE;
    const struct signing_key *k = NULL;
    /* the order matters: an algorithm we never accept is refused whatever the kid says */
    // NOLINTBEGIN(bugprone-branch-clone)
    if (bad || alg == NULL || json_object_get(h, "crit") != NULL)
        v = TV_MALFORMED;
    else if (strcmp(alg, "ES256") != 0) /* none, HMAC, RSA, ...: never */
        v = TV_BAD_SIGNATURE;
    else if (kid == NULL || (k = keys_find(ring, kid, strlen(kid))) == NULL)
        v = TV_UNKNOWN_KEY;
    else if (strcmp(k->alg, alg) != 0)
        v = TV_BAD_SIGNATURE;
    // NOLINTEND(bugprone-branch-clone)
    json_decref(h);
    *key = k;
    return v;
}

static enum token_verdict resolve_header(const struct keyring *ring, const char *seg, size_t n,
                                         const struct signing_key **key)
{
    for (int i = 0; i < HEADER_MEMO; i++) {
        const struct header_memo *m = &header_memo[i];
        if (m->ring == keys_serial(ring) && m->len == n && memcmp(m->seg, seg, n) == 0) {
            *key = m->key;
            return TV_ACTIVE;
        }
    }
    enum token_verdict v = parse_header(ring, seg, n, key);
    if (v == TV_ACTIVE) {
        struct header_memo *m = &header_memo[header_memo_next++ % HEADER_MEMO];
        m->ring = keys_serial(ring);
        m->key = *key;
        m->len = n;
        memcpy(m->seg, seg, n);
    }
    return v;
}

enum token_verdict token_decode(const struct keyring *ring, const char *issuer, const char *tok,
                                size_t len, struct token_claims *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return TV_MISSING;
    if (len > TOKEN_MAX_LEN)
        return TV_MALFORMED;
    size_t dots[2] = {0, 0}, ndots = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)tok[i];
        if (c == '.') {
            if (ndots == 2)
                return TV_MALFORMED;
            dots[ndots++] = i;
        } else if (!codec_b64url_char(c)) {
            return TV_MALFORMED;
        }
    }
    if (ndots != 2 || dots[0] == 0 || dots[1] == dots[0] + 1 || dots[0] > HEADER_MAX)
        return TV_MALFORMED;

    const struct signing_key *k = NULL;
    enum token_verdict v = resolve_header(ring, tok, dots[0], &k);
    if (v != TV_ACTIVE)
        return v;

    jarena_begin();
    json_t *p = jws_segment_json(tok + dots[0] + 1, dots[1] - dots[0] - 1);
    if (p == NULL) {
        v = TV_MALFORMED;
    } else {
        v = check_signature(k, tok, dots[1], tok + dots[1] + 1, len - dots[1] - 1);
        if (v == TV_ACTIVE)
            v = read_claims(p, issuer, out);
        json_decref(p);
    }
    jarena_end();
    return v;
}

/* ---- per-request checks ------------------------------------------------------------------ */

bool token_resource_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 0 && a[la - 1] == '/')
        la--;
    if (lb > 0 && b[lb - 1] == '/')
        lb--;
    size_t pa = url_authority_end(a), pb = url_authority_end(b);
    if (pa > la)
        pa = la;
    if (pb > lb)
        pb = lb;
    if (pa != pb || la != lb)
        return false;
    return strncasecmp(a, b, pa) == 0 && memcmp(a + pa, b + pb, la - pa) == 0;
}

enum token_verdict token_check(const struct token_claims *c, int64_t now, int skew_s,
                               enum token_kind expected, const char *resource)
{
    if (expected != TOKEN_KIND_NONE && c->kind != expected)
        return TV_WRONG_AUDIENCE;
    if (now >= c->exp)
        return TV_EXPIRED;
    if (c->nbf > now + skew_s || c->iat > now + skew_s)
        return TV_NOT_YET_VALID;
    if (resource != NULL && resource[0] != '\0' && !token_has_aud(c, resource))
        return TV_WRONG_AUDIENCE;
    return TV_ACTIVE;
}

bool token_resource_in(const char *const *list, size_t n, const char *resource)
{
    for (size_t i = 0; i < n; i++)
        if (token_resource_eq(list[i], resource))
            return true;
    return false;
}

bool token_has_aud(const struct token_claims *c, const char *resource)
{
    const char *a = c->aud;
    for (size_t i = 0; i < c->naud; i++, a = token_next_aud(a))
        if (token_resource_eq(a, resource))
            return true;
    return false;
}

/* ---- sign ---------------------------------------------------------------------------------- */

/* OAuth access tokens carry typ "at+jwt" (RFC 9068 2.1), which libjwt 1.10 overwrites with
 * "JWT": they are signed here, with the same key, as header.payload.r||s (RFC 7518 3.4); so
 * are the assertions we make (token_sign_jws). */
static char *sign_es256(const struct signing_key *k, const char *typ, const char *claims)
{
    char header[KEYS_MAX_KID + 64];
    snprintf(header, sizeof(header), "{\"alg\":\"ES256\",\"kid\":\"%s\",\"typ\":\"%s\"}", k->kid,
             typ);
    size_t hl = strlen(header), cl = strlen(claims);
    size_t cap = (hl + cl) * 4 / 3 + 128;
    char *tok = xmalloc(cap);
    size_t n = codec_b64url_encode(header, hl, tok);
    tok[n++] = '.';
    n += codec_b64url_encode(claims, cl, tok + n);
    BIO *bio = BIO_new_mem_buf(k->priv_pem, (int)k->priv_pem_len);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[80], raw[64];
    size_t dl = sizeof(der);
    ECDSA_SIG *sig = NULL;
    const unsigned char *p = der;
    bool ok = pkey != NULL && md != NULL &&
              EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
              EVP_DigestSign(md, der, &dl, (const unsigned char *)tok, n) == 1 &&
              (sig = d2i_ECDSA_SIG(NULL, &p, (long)dl)) != NULL &&
              BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) == 32 &&
              BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) == 32 && low_s(raw);
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    if (!ok) {
        free(tok);
        return NULL;
    }
    tok[n++] = '.';
    codec_b64url_encode(raw, sizeof(raw), tok + n);
    return tok;
}

p2a_err token_sign(const struct keyring *ring, const struct token_issue *in, char **out,
                   char jti[TOKEN_JTI_LEN + 1])
{
    unsigned char rnd[16];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return P2A_ERR_INTERNAL;
    char enc[32];
    codec_b64url_encode(rnd, sizeof(rnd), enc);
    memcpy(jti, enc, TOKEN_JTI_LEN);
    jti[TOKEN_JTI_LEN] = '\0';

    json_t *c = json_object();
    json_t *aud = json_array();
    for (size_t i = 0; i < in->naud; i++)
        json_array_append_new(aud, json_string(in->aud[i]));
    json_object_set_new(c, "iss", json_string(in->issuer));
    json_object_set_new(c, "sub", json_string(in->sub));
    json_object_set_new(c, "aud", aud);
    json_object_set_new(c, "jti", json_string(jti));
    json_object_set_new(c, "iat", json_integer(in->iat));
    json_object_set_new(c, "exp", json_integer(in->exp));
    json_object_set_new(c, "token_use", json_string(use_names[in->kind]));
    if (in->scope != NULL && in->scope[0] != '\0')
        json_object_set_new(c, "scope", json_string(in->scope));
    if (in->name != NULL && in->name[0] != '\0')
        json_object_set_new(c, "pat_name", json_string(in->name));
    if (in->client_id != NULL && in->client_id[0] != '\0')
        json_object_set_new(c, "client_id", json_string(in->client_id));
    P2A_ASSERT(in->nchain <= TOKEN_MAX_CHAIN);
    if (in->nchain > 0) { /* RFC 8693 4.1: the current actor outermost, the earlier nested */
        json_t *act = NULL, *chain = json_array();
        for (size_t i = in->nchain; i-- > 0;) {
            json_t *a = json_pack("{s:s}", "sub", in->actors[i]);
            if (a == NULL) { /* not UTF-8 */
                json_decref(act);
                json_decref(chain);
                json_decref(c);
                return P2A_ERR_INVALID;
            }
            if (act != NULL)
                json_object_set_new(a, "act", act);
            act = a;
        }
        for (size_t i = 0; i < in->nchain; i++)
            json_array_append_new(chain, json_string(in->chain[i]));
        json_object_set_new(c, "act", act);
        json_object_set_new(c, "chain", chain);
        json_object_set_new(c, "chain_iat", json_integer(in->origin_iat));
    }
    char *claims = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    if (claims == NULL) /* a string that is not valid UTF-8 */
        return P2A_ERR_INVALID;

    const struct signing_key *k = keys_signer(ring);
    if (in->kind != TOKEN_KIND_PAT) {
        char *t = sign_es256(k, "at+jwt", claims);
        free(claims);
        if (t == NULL)
            return P2A_ERR_INTERNAL;
        *out = t;
        return P2A_OK;
    }
    jwt_t *jwt = NULL;
    char *tok = NULL;
    if (jwt_new(&jwt) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_ES256, (const unsigned char *)k->priv_pem, (int)k->priv_pem_len) ==
            0 &&
        jwt_add_header(jwt, "kid", k->kid) == 0 && jwt_add_grants_json(jwt, claims) == 0)
        tok = jwt_encode_str(jwt);
    jwt_free(jwt); /* libjwt cleanses its copy of the key */
    free(claims);
    /* libjwt signs with either s: make it the low one (same length, rewritten in place) */
    char *sig = tok != NULL ? strrchr(tok, '.') : NULL;
    unsigned char raw[66];
    if (sig == NULL || strlen(sig + 1) != 86 ||
        codec_b64url_decode(sig + 1, 86, raw, sizeof(raw)) != 64 || !low_s(raw)) {
        free(tok);
        return P2A_ERR_INTERNAL;
    }
    codec_b64url_encode(raw, 64, sig + 1);
    *out = tok;
    return P2A_OK;
}

char *token_sign_jws(const struct keyring *ring, const char *typ, const char *claims)
{
    return sign_es256(keys_signer(ring), typ, claims);
}
