/* store_keys.h -- the Redis names every script shares.
 *
 * Keys a cluster-aware proxy (or Redis Cluster) can route. Every script names every key it
 * touches in KEYS, never one built inside it, and the keys of one script share a slot:
 *   - {t}: everything a revocation touches in one script, hence everything about tokens:
 *     the revoked set, its sequence number and log, PAT records and each user's index of
 *     them, refresh families with their access tokens, refresh token digests, grants (a
 *     person's approval of a client) with their families. One slot, by
 *     design: a revocation must be atomic with the log the replicas follow.
 *   - {<username>}: an account and its sign-in counters (the username is the tag).
 *   - {<what>}: a rate limit's per-address and global counters (register, assertion); for
 *     upstream, the sign-ins in progress too (one script counts and records them).
 *   - one key each, anywhere: clients, sessions, codes, client assertion ids.
 * tests/integration/test_cluster.py replays every script our flows send against
 * redis-server in cluster mode and fails on a cross-slot or undeclared key.
 *
 * Revoking a token is the same five steps whoever asks (RevokeToken for a PAT; /revoke, code
 * reuse, refresh reuse for OAuth tokens): add the jti to the revoked set scored by the
 * token's expiry, bump the sequence number, log the jti under it, publish
 * "<seq> <jti> <exp> <revoked at, ms>" on STORE_CHANNEL for the subscribers. One Lua function
 * does it, revoke(jti, exp, ms[, again]) in src/store/lua/lib/revoke.lua: it answers the
 * sequence number, or false when the jti was revoked already (with again, it is logged and
 * published once more with the new exp: a subject's entry, revoke.h, whose cutoff moves).
 * Scripts that use it include it and pass the three revocation keys last in KEYS
 * (STORE_KEY_REVOKED, STORE_KEY_REVSEQ, STORE_KEY_REVLOG, in that order).
 */
#ifndef P2A_STORE_KEYS_H
#define P2A_STORE_KEYS_H

#define STORE_KEY_REVOKED "p2a:{t}:revoked" /* sorted set: jti by exp */
#define STORE_KEY_REVSEQ "p2a:{t}:revseq"   /* the revocation sequence number */
#define STORE_KEY_REVLOG "p2a:{t}:revlog"   /* sorted set: jti by sequence number */
#define STORE_CHANNEL "p2a:revocations"     /* a channel, not a key */
/* prefixes, followed by an id (store.h, store_oauth.h, store_users.h and store_grants.h say what
 * each holds) */
#define STORE_KEY_PAT "p2a:{t}:pat:"            /* <jti> */
#define STORE_KEY_USER "p2a:{t}:user:"          /* <user_id>:pats */
#define STORE_KEY_FAMILY "p2a:{t}:fam:"         /* <fid>, and <fid>:at */
#define STORE_KEY_REFRESH "p2a:{t}:rt:"         /* <digest> */
#define STORE_KEY_GRANT "p2a:{t}:grant:"        /* <user_id>:<grant id>, and ...:fams */
#define STORE_KEY_CLIENT "p2a:client:"          /* <client_id> */
#define STORE_KEY_ACCOUNT "p2a:account:{"       /* <username>} */
#define STORE_KEY_SESSION "p2a:session:"        /* <digest> */
#define STORE_KEY_CODE "p2a:code:"              /* <digest> */
#define STORE_KEY_RATE "p2a:rl:{"               /* <username>}:pair:<addr>, <what>}:<addr>, ... */
#define STORE_KEY_ASSERTION "p2a:aj:"           /* <digest of client_id and jti> */
#define STORE_KEY_UPSTREAM "p2a:up:{upstream}:" /* <digest of state>, with its rate limit */
/* A key of the layout before hash tags: its presence means a Redis not yet migrated
 * (scripts/migrate-redis-keys.sh), whose revocations this version would not see. */
#define STORE_KEY_LEGACY_REVSEQ "p2a:revseq"

#endif
