/* store_script.h -- what the scripts of store_clients.c, store_oauth.c, store_users.c and
 * store_grants.c share: a script's arguments written as a list (STR, NUM, KEY), the answer that
 * parses a reply's strings into a caller's struct, and the job of a script over keys only Redis
 * knows (read them first, then run). The texts of the scripts are src/store/lua/ (store_lua.h,
 * generated). Not for other layers. */
#ifndef P2A_STORE_SCRIPT_H
#define P2A_STORE_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "oauth.h"
#include "store.h"
#include "store_clients.h"
#include "store_grants.h"
#include "store_keys.h"
#include "store_lua.h"
#include "store_oauth.h"
#include "store_users.h"
#include "validate.h"

/* The longest argument a script is given: a grant's families (grant:<user>:<id>:fams). */
#define ARG_MAX (sizeof(STORE_KEY_GRANT "::fams") + VALIDATE_USER_ID_MAX + OAUTH_HEX_LEN)
#define ARGS_MAX 20

/* One argument of a script: a string, a number, or a key: a prefix (STORE_KEY_*), an id and
 * a suffix. Ids are bounded by their callers' checks, well within ARG_MAX. */
struct arg {
    enum { A_STR, A_NUM, A_KEY } kind;
    const char *prefix, *s, *suffix;
    int64_t num;
};
/* clang-format off */
#define STR(x) {A_STR, NULL, (x), NULL, 0}
#define NUM(x) {A_NUM, NULL, NULL, NULL, (x)}
#define KEY(p, id) {A_KEY, (p), (id), "", 0}
#define KEYX(p, id, sfx) {A_KEY, (p), (id), (sfx), 0}
/* an account, by username: its tag is the username (store_keys.h) */
#define ACCOUNT(u) KEYX(STORE_KEY_ACCOUNT, (u), "}")
/* a family and the sorted set of its access tokens */
#define FAMILY(fid) KEY(STORE_KEY_FAMILY, (fid)), KEYX(STORE_KEY_FAMILY, (fid), ":at")
/* a grant (a person's approval of a client, by store_grant_key()) and its families' set */
#define GRANT(gid) KEY(STORE_KEY_GRANT, (gid)), KEYX(STORE_KEY_GRANT, (gid), ":fams")
/* the three keys lua/lib/revoke.lua uses, last in KEYS */
#define REVOCATION KEY(STORE_KEY_REVOKED, ""), KEY(STORE_KEY_REVSEQ, ""), KEY(STORE_KEY_REVLOG, "")
/* clang-format on */

void store_eval_args(struct store *st, const char *lua, int nkeys, const struct arg *a, size_t n,
                     bool durable, store_eval_cb cb, void *arg);

#define ARGS(...)                                                                                  \
    (const struct arg[]){__VA_ARGS__},                                                             \
        sizeof((const struct arg[]){__VA_ARGS__}) / sizeof(struct arg)
/* Runs lua with the arguments listed (STR, NUM, KEY), the first nkeys its KEYS; its reply goes
 * to `to`: ANSWER(...) for a caller, or TO(a step's store_eval_cb, its argument). REVOKING for
 * a script that revokes (acknowledged once the replicas have it: store_eval_durable). */
#define TO(cb, arg) cb, arg
#define EVAL(st, lua, nkeys, to, ...) store_eval_args(st, lua, nkeys, ARGS(__VA_ARGS__), false, to)
#define REVOKING(st, lua, nkeys, to, ...)                                                          \
    store_eval_args(st, lua, nkeys, ARGS(__VA_ARGS__), true, to)

/* ---- answers: a reply's strings parsed once, into the caller's struct --------------------- */

/* The caller's callback, of the type its function declares. */
union store_answer_cb {
    store_status_cb status;
    store_revoked_cb revoked;
    oauth_client_cb client;
    oauth_code_cb code;
    oauth_refresh_cb refresh;
    oauth_refresh_info_cb refresh_info;
    oauth_login_cb login;
    oauth_session_cb session;
    oauth_session_end_cb session_end;
    oauth_user_cb user;
    oauth_grant_cb grant;
    oauth_grants_cb grants;
};
/* Reads the reply (err, v[0..n)) and calls cb with what it says; a reply of another shape is
 * P2A_ERR_UNAVAILABLE. */
typedef void (*store_parse_fn)(union store_answer_cb cb, void *arg, p2a_err err,
                               const char *const *v, const size_t *lens, size_t n);
void *store_answer_new(store_parse_fn parse, union store_answer_cb cb, void *arg);
void store_answer(void *answer, p2a_err err, const char *const *v, const size_t *lens, size_t n);
/* The `to` of EVAL for a caller's cb (its union member `member`) */
#define ANSWER(parse, member, cb, arg)                                                             \
    store_answer, store_answer_new((parse), (union store_answer_cb){.member = (cb)}, (arg))
/* err, or P2A_ERR_UNAVAILABLE for a reply of fewer than need items: a parser's first line */
p2a_err store_answer_err(p2a_err err, size_t n, size_t need);
/* {code[, value]}: store_status_cb */
void store_parse_status(union store_answer_cb cb, void *arg, p2a_err err, const char *const *v,
                        const size_t *lens, size_t n);
#define STATUS(cb, arg) ANSWER(store_parse_status, status, (cb), (arg))
/* {jti, exp, ...} from item `from` on, at most STORE_REVOKED_MAX, into out; how many */
size_t store_read_revoked(const char *const *v, size_t from, size_t n,
                          struct revocation out[STORE_REVOKED_MAX]);
void store_parse_revoked(union store_answer_cb cb, void *arg, p2a_err err, const char *const *v,
                         const size_t *lens, size_t n);

/* ---- jobs: a script over keys only Redis can name ----------------------------------------- */

/* Some keys are known only to Redis (a refresh token's family, a set's members): a job reads
 * them with a first script, then runs the script that declares them all. A step gets the
 * reply of the read (never an error: that goes to the caller's `to` at once) and answers
 * whether the job is done (freed then) or has sent another read (store_job_read). */
struct store_job;
typedef bool (*store_job_step)(struct store_job *j, const char *const *v, size_t n);
struct store_job {
    struct store *st;
    store_eval_cb to; /* the caller's answer, with to_arg */
    void *to_arg;
    store_job_step step;
    char *client_id, *new_digest, *scope, *resource, *user_id, *gid; /* owned; NULL when unused */
    char digest[OAUTH_HEX_LEN + 1];                                  /* the refresh token's */
    char fid[OAUTH_HEX_LEN + 1];
    int64_t now_ms;
    int grace_s, ttl_s;
};
struct store_job *store_job_new(struct store *st, store_job_step step, store_eval_cb to,
                                void *to_arg);
/* Runs lua (a read) over key, with num as ARGV[1] unless it is negative; its reply goes to
 * j->step. */
void store_job_read(struct store_job *j, const char *lua, const char *key, int64_t num);
void store_job_free(struct store_job *j);
/* s, or "" for NULL, as a fresh string */
char *store_dup_or_empty(const char *s);

/* "<user_id>:<digest of client_id>": a grant's key after STORE_KEY_GRANT (a client id may be
 * a 1 KiB URL; the digest is also the grant_id the RPCs show). */
void store_grant_key(const char *user_id, const char *client_id, char out[ARG_MAX]);

#endif
