/* token.h -- issuing and verifying our JWTs (PATs and OAuth access tokens).
 *
 * Verification is split in two so a cache can sit between them:
 *   token_decode()  -- everything that depends only on the token's bytes: shape, header,
 *                      key and algorithm, signature, issuer, claim types. Its result may be
 *                      cached by a digest of the token.
 *   token_check()   -- everything that depends on the moment and the caller: exp, nbf, iat,
 *                      the kind of token expected and the resource. Run on every request.
 * Revocation sits between the two and belongs to the caller (revoke.h).
 *
 * This is the only module that includes <jwt.h>.
 */
#ifndef P2A_TOKEN_H
#define P2A_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "err.h"
#include "jtitab.h"

struct keyring;

#define TOKEN_MAX_LEN 8192 /* longest token we look at */
#define TOKEN_MAX_AUD 16
#define TOKEN_JTI_LEN 22 /* ours: 128 random bits, base64url */
/* Exchanges (RFC 8693) a token may be the end of: a chain longer is never minted, and a
 * token that claims one is malformed. */
#define TOKEN_MAX_CHAIN 4

/* Numbers match pipe2.auth.v1.TokenKind. TOKEN_KIND_CLIENT: a client acting for itself
 * (client credentials): its sub and client_id are both the client's id. */
enum token_kind {
    TOKEN_KIND_NONE = 0,
    TOKEN_KIND_PAT = 1,
    TOKEN_KIND_OAUTH = 2,
    TOKEN_KIND_CLIENT = 3,
};
#define TOKEN_KIND_LAST TOKEN_KIND_CLIENT

/* Numbers match pipe2.auth.v1.InactiveReason; TV_ACTIVE is 0. */
enum token_verdict {
    TV_ACTIVE = 0,
    TV_MISSING = 1,
    TV_MALFORMED = 2,
    TV_BAD_SIGNATURE = 3,
    TV_UNKNOWN_KEY = 4,
    TV_EXPIRED = 5,
    TV_NOT_YET_VALID = 6,
    TV_REVOKED = 7,
    TV_WRONG_ISSUER = 8,
    TV_WRONG_AUDIENCE = 9,
    TV_INSUFFICIENT_SCOPE = 10, /* good, but the call needs a scope it lacks (403) */
};

/* The verified content of a token. Strings point into one heap block owned by the struct;
 * release with token_claims_deinit(). A copy of it is what each cached token costs (tcache.h),
 * so the counts are 32-bit and the chain's strings are found by walking (token_chain()). */
struct token_claims {
    enum token_kind kind;
    uint32_t naud;
    /* An exchanged token (RFC 8693): how many exchanges it is the end of (its actors, and the
     * tokens it came from); 0 for a token not exchanged. */
    uint32_t nchain;
    uint32_t blob_len;
    int64_t iat, exp, nbf; /* nbf 0 when absent */
    int64_t origin_iat;    /* iat of the first token of the chain (iat when there is none) */
    char jti[JTI_MAX_LEN + 1];
    char sub_marker[JTI_MAX_LEN + 1];    /* revoke_subject_marker(sub), made once at decode */
    char client_marker[JTI_MAX_LEN + 1]; /* revoke_client_marker(client_id); "" for none */
    const char *sub;
    const char *scope;     /* "" when absent */
    const char *name;      /* PAT name, "" when absent */
    const char *client_id; /* OAuth client, "" when absent */
    const char *aud;       /* the first audience; the others follow it: token_next_aud() */
    /* The actors, outermost (act.sub, the client that exchanged) first, the earlier ones
     * following it (token_next_aud()); "" for none. After them in the blob: token_chain(),
     * then revoke_client_marker() of each earlier actor (the clients of the chain's tokens
     * but the first), nchain - 1 of them, made once at decode (exchange.c reads them). */
    const char *actor;
    char *blob; /* owns the strings above */
};

/* The audience after a (the strings sit one after another in the claims' blob). */
static inline const char *token_next_aud(const char *a)
{
    return a + strlen(a) + 1;
}

/* The jtis an exchanged token was exchanged from, the subject token's first, one after
 * another (token_next_aud()), nchain of them; "" for a token not exchanged. */
static inline const char *token_chain(const struct token_claims *c)
{
    const char *s = c->actor;
    for (uint32_t i = 0; i < c->nchain; i++)
        s = token_next_aud(s);
    return s;
}

struct token_issue {
    enum token_kind kind;
    const char *issuer;
    const char *sub;
    const char *const *aud;
    size_t naud;
    const char *scope;     /* may be NULL */
    const char *name;      /* may be NULL */
    const char *client_id; /* may be NULL */
    int64_t iat, exp;
    /* An exchanged token: nchain actors (outermost first: act, its act, ...), the jtis it
     * derives from (the subject token's first) and the first one's iat. nchain 0: none. */
    const char *const *actors;
    const char *const *chain;
    size_t nchain;
    int64_t origin_iat;
};

/* Signs a new token with the keyring's signer. Fills jti (TOKEN_JTI_LEN + 1 bytes) with a
 * fresh 128-bit id. *out is a NUL-terminated token the caller frees with free(). */
p2a_err token_sign(const struct keyring *ring, const struct token_issue *in, char **out,
                   char jti[TOKEN_JTI_LEN + 1]);

/* Checks shape, header, key, algorithm, signature and issuer of tok (len bytes, need not be
 * NUL-terminated). Returns TV_ACTIVE and fills *out (caller deinits) when all hold; any
 * other verdict leaves *out empty. Never fails otherwise: every input gets a verdict. */
enum token_verdict token_decode(const struct keyring *ring, const char *issuer, const char *tok,
                                size_t len, struct token_claims *out);

/* Checks time, kind and resource for claims already decoded. expected may be
 * TOKEN_KIND_NONE (any kind); resource may be NULL or "" (no audience check). */
enum token_verdict token_check(const struct token_claims *c, int64_t now, int skew_s,
                               enum token_kind expected, const char *resource);

/* A compact ES256 JWS of the JSON object claims, typ in its header, signed with the
 * keyring's signer (its kid named): an assertion of ours, such as the client assertion
 * (RFC 7523) we present to an upstream provider. NULL on failure. */
char *token_sign_jws(const struct keyring *ring, const char *typ, const char *claims);

/* Frees what token_decode() keeps per thread (verify contexts). Call before a thread that
 * verified tokens exits. */
void token_thread_cleanup(void);

void token_claims_deinit(struct token_claims *c);
/* A copy in one allocation, the strings right after the struct: free it with free(), never
 * with token_claims_deinit(). */
struct token_claims *token_claims_pack(const struct token_claims *src);

/* Whether resource is one of the token's audiences, or of list[0..n) (token_resource_eq). */
bool token_has_aud(const struct token_claims *c, const char *resource);
bool token_resource_in(const char *const *list, size_t n, const char *resource);
/* URL equality for audiences: scheme and host compare case-insensitively, and one trailing
 * slash is ignored. */
bool token_resource_eq(const char *a, const char *b);

/* A short English description of a verdict ("Token expired"), for error_description. */
const char *token_verdict_text(enum token_verdict v);
/* What a person should do about it ("create a new token"), for a body a person reads. */
const char *token_verdict_hint(enum token_verdict v);

#endif
