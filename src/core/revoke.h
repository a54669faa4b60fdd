/* revoke.h -- the process's view of revoked tokens, read on every Introspect.
 *
 * A set of jti -> the time the token would expire anyway, shared by every thread: readers
 * take no lock (published slots, an atomic table swap, epochs before a table is freed);
 * writers (the revocation view's thread; a worker or the facade applying a revocation of its
 * own, revoke_local) take one mutex. An entry is dropped by revoke_sweep() once its token has
 * expired, so the set stays as small as the revoked tokens that could still be presented.
 *
 * The set also knows how far it can be trusted. It is usable once loaded whole from Redis
 * at start (the first revoke_synced) and while the last successful sync with Redis is younger than
 * the staleness bound given to revoke_new(); past that, revoke_usable() says STALE and
 * callers must fail closed rather than accept a token that may have been revoked elsewhere.
 */
#ifndef P2A_REVOKE_H
#define P2A_REVOKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jtitab.h"

/* How a revocation reached this process. */
enum revoke_path {
    REVOKE_PATH_LOCAL = 0,   /* made by this process (revoke_local) */
    REVOKE_PATH_MESSAGE = 1, /* pub/sub message: the fast path */
    REVOKE_PATH_POLL = 2,    /* the repair poll */
    REVOKE_PATH_STARTUP = 3, /* the full load at start or after a reset */
    REVOKE_PATH_COUNT = 4,
};

enum revoke_state { REVOKE_USABLE = 0, REVOKE_NOT_LOADED = 1, REVOKE_STALE = 2 };

struct revoke_stats {
    size_t entries;
    size_t bytes;
    uint64_t applied[REVOKE_PATH_COUNT]; /* revocations new to this process, by path */
    int64_t view_age_ms;                 /* -1 before the first sync */
    int64_t last_lag_ms;                 /* revocation to application, last message */
    uint64_t seq;                        /* highest sequence number synced */
};

struct revoke_set;

/* staleness_ms: how old the view may get before revoke_usable() says STALE. */
struct revoke_set *revoke_new(int64_t staleness_ms);
void revoke_free(struct revoke_set *set);

/* Records jti as revoked until exp. Returns true when it was not in the set before (and
 * counts it under path). A jti longer than JTI_MAX_LEN cannot be one of ours and is
 * refused (returns false). */
bool revoke_add(struct revoke_set *set, const char *jti, int64_t exp, enum revoke_path path);
/* A revocation this process made and Redis acknowledged (RevokeToken, /revoke, the account
 * page, a refresh token's reuse, a grant's end, a person disabled, a client revoked): in this
 * replica's view at once, before its published message comes back; the other replicas follow
 * that message (revsync.h). */
void revoke_local(struct revoke_set *set, const char *jti, int64_t exp);
bool revoke_contains(struct revoke_set *set, const char *jti);
/* jti's exp in the set (the largest given to revoke_add), 0 when it is not there. */
int64_t revoke_get(struct revoke_set *set, const char *jti);

/* ---- subjects: every token of a person at once (a disabled user) ----------------------------
 * A subject's entry is its marker (revoke_subject_marker) with exp = the cutoff (the moment
 * the person was disabled) + REVOKE_SUBJECT_HORIZON_S: every token of that sub issued at or
 * before the cutoff is revoked, and the entry is swept once all of them have expired (no
 * token lives longer than the horizon: a PAT a year at most, an access token a day). A
 * second disable moves the cutoff later (revoke_add keeps the larger exp). The horizon is a
 * constant so that every replica reads the cutoff alike. */
#define REVOKE_SUBJECT_HORIZON_S (366LL * 86400)
#define REVOKE_SUBJECT_MARKER_LEN 31 /* never 22, the length of the jtis we mint */
_Static_assert(REVOKE_SUBJECT_MARKER_LEN <= JTI_MAX_LEN, "a marker is kept as a jti");
/* "S" and 30 base64url characters of SHA-256("subject:" sub). */
void revoke_subject_marker(const char *sub, char out[REVOKE_SUBJECT_MARKER_LEN + 1]);
/* A client's entry (RevokeClient): the same rule for every token whose client_id is the
 * client (its own client-credentials tokens, the OAuth tokens issued to it). "C" and 30
 * base64url characters of SHA-256("client:" client_id). */
void revoke_client_marker(const char *client_id, char out[REVOKE_SUBJECT_MARKER_LEN + 1]);
/* Whether a token of marker's subject (or client) issued at iat is revoked by its entry. */
bool revoke_subject_covers(struct revoke_set *set, const char *marker, int64_t iat);
/* Drops every entry whose exp <= now; returns how many. */
size_t revoke_sweep(struct revoke_set *set, int64_t now);
size_t revoke_count(struct revoke_set *set);
/* Bytes the set holds (table and bookkeeping), for the memory figure per entry. */
size_t revoke_memory(struct revoke_set *set);

/* The view matches Redis as of mono_ms (the moment the successful query was sent), up to
 * sequence number seq. The first call also marks the set loaded. */
void revoke_synced(struct revoke_set *set, int64_t mono_ms, uint64_t seq);
/* Whether Introspect may trust the set at now_mono_ms; *age_ms gets the view's age. */
enum revoke_state revoke_usable(struct revoke_set *set, int64_t now_mono_ms, int64_t *age_ms);
void revoke_note_lag(struct revoke_set *set, int64_t lag_ms);
void revoke_get_stats(struct revoke_set *set, int64_t now_mono_ms, struct revoke_stats *out);

#endif
