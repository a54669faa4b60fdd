/* audit.h -- the audit trail: who did what, when, from where; never a secret.
 *
 * An event (struct audit_event) is one thing that changed who can do what, or that a
 * security review asks about: a PAT issued or revoked, a sign-in, a consent, an admin call.
 * Its one JSON form (schema version AUDIT_SCHEMA_VERSION, README "Audit trail") is what
 * Redis keeps, what ListAuditEvents and the account page read back, and the "data" of the
 * CloudEvents 1.0 line written on stdout for log shippers (the operational log is on
 * stderr; the line's "type" is "pipe2.auth.audit.<event type>").
 *
 * DESIGN
 * - Emitting never waits: audit_emit() copies the event into a bounded process-wide queue
 *   under one mutex and returns; any thread may call it. A full queue drops the event and
 *   counts it (audit_dropped()); the writer (store_audit.h, on main's loop) takes the queue,
 *   writes the stdout lines and then Redis, off every hot path.
 * - The hot path never emits: an Introspect that refuses an expired or revoked PAT notes its
 *   jti in its worker's struct audit_refusals (no lock, fixed size), which the worker turns
 *   into events on its timer, one per token per interval.
 * - Anonymous and repeatable events (audit_aggregated(): failed sign-ins, refused
 *   registrations, admin calls refused for the key's role) are folded as they are emitted, per
 * (type, actor, person, address, token) and per minute, an IPv6 address counted as its /64
 * (netaddr_limit_key()), at most AUDIT_AGG_MAX of them a minute; the rest into one "(other
 * addresses)" event: an attacker cannot grow the trail faster than that, whatever they send. Before
 * audit_start() (unit tests, tools) audit_emit() does nothing.
 */
#ifndef P2A_AUDIT_H
#define P2A_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIT_SCHEMA_VERSION 1
#define AUDIT_QUEUE_MAX 8192 /* events emitted and not yet taken by the writer */
#define AUDIT_AGG_MAX 256    /* aggregated events a minute, per replica */
#define AUDIT_ID_LEN 48
#define AUDIT_TYPE_LEN 32
#define AUDIT_ACTOR_LEN 96
#define AUDIT_USER_LEN 256
#define AUDIT_CLIENT_LEN 512
#define AUDIT_TOKEN_LEN 64
#define AUDIT_ADDR_LEN 64
#define AUDIT_UA_LEN 256
#define AUDIT_OUTCOME_LEN 16
#define AUDIT_DETAIL_LEN 256
#define AUDIT_OTHER_ADDRESSES "(other addresses)"

/* One event, fixed size: copied whole into the queue. Strings are NUL-terminated UTF-8,
 * cut at a character boundary when longer than their field. */
struct audit_event {
    char id[AUDIT_ID_LEN];        /* "<time, µs, 16 digits>-<replica>-<counter>": sorts by time */
    int64_t time_us;              /* wall clock */
    char type[AUDIT_TYPE_LEN];    /* "pat.issued", ... */
    char actor[AUDIT_ACTOR_LEN];  /* "user:<id>", "key:<label>", "anonymous", "system" */
    char user_id[AUDIT_USER_LEN]; /* the person it concerns ("" when none) */
    char client_id[AUDIT_CLIENT_LEN];
    char token_id[AUDIT_TOKEN_LEN]; /* a jti or a grant id, never a token */
    char address[AUDIT_ADDR_LEN];
    char user_agent[AUDIT_UA_LEN];
    char outcome[AUDIT_OUTCOME_LEN]; /* "success" or "failure" */
    char detail[AUDIT_DETAIL_LEN];
    uint32_t count; /* how many this event stands for (aggregated); 1 otherwise */
};

/* What a site hands to audit_emit(): every field optional (NULL), type required. */
struct audit_in {
    const char *type, *actor, *user_id, *client_id, *token_id, *address, *user_agent, *outcome,
        *detail;
};

/* Starts the queue; replica names this process in event ids (a few characters). */
void audit_start(const char *replica);
/* Copies the event into the queue (any thread). Empty actor: "user:<user_id>" when there
 * is a person, else "anonymous"; empty outcome: "success". */
void audit_emit(const struct audit_in *in);
/* The writer: takes up to max events, oldest first. */
size_t audit_take(struct audit_event *out, size_t max);
/* The writer: takes the aggregates of every minute before now_us's (all: every one) into out
 * (room for AUDIT_AGG_MAX + 1). */
size_t audit_take_aggregates(struct audit_event *out, int64_t now_us, bool all);
/* Events lost (queue full, or the writer's backlog full: audit_count_lost()). */
uint64_t audit_dropped(void);
void audit_count_lost(uint64_t n);
/* Frees the queue (after every thread that emits has stopped). */
void audit_stop(void);

/* The wall clock in microseconds: an event's time. */
int64_t audit_now_us(void);
/* Builds an event from in at time_us (no queue): what audit_emit() queues. */
void audit_event_fill(struct audit_event *ev, const struct audit_in *in, int64_t time_us);
/* Whether events of this type are aggregated (anonymous or repeatable). */
bool audit_aggregated(const char *type);
/* Whether ev is one that anyone may cause as often as they like (aggregated, or done by
 * nobody signed in: a token presented, a sign-in failed): such events have a budget of their
 * own in Redis, so that they never push out what people and service keys did. */
bool audit_anonymous(const struct audit_event *ev);
/* The event in the schema (a JSON object, compact, malloc'd). */
char *audit_event_json(const struct audit_event *ev);
/* The CloudEvents 1.0 structured-mode line (no newline), source naming the issuer. */
char *audit_cloudevent(const struct audit_event *ev, const char *source);
/* Parses audit_event_json()'s output; false when it is not one. */
bool audit_event_parse(const char *json, size_t len, struct audit_event *ev);

/* ---- a query (ListAuditEvents, the account page) ------------------------------------------ */

#define AUDIT_PAGE_MAX 200     /* events in one page of ListAuditEvents */
#define AUDIT_TYPES_MAX 16     /* types named in one query */
#define AUDIT_SCAN_BUDGET 5000 /* ids one query looks at; a page may end short, with a token */

struct audit_query {
    const char *user_id, *client_id; /* "" or NULL: any */
    const char *const *types;        /* ntypes 0: any */
    size_t ntypes;
    int64_t since_ms, until_ms; /* 0: no bound */
    int page_size;              /* 1 .. AUDIT_PAGE_MAX */
    const char *page_token;     /* "" or NULL: the newest first */
};

/* NULL when q is acceptable, else what is wrong with it (a sentence naming the field). */
const char *audit_query_check(const struct audit_query *q);

/* ---- aggregation (the writer's) ----------------------------------------------------------- */

struct audit_agg;
struct audit_agg *audit_agg_new(void);
void audit_agg_free(struct audit_agg *a);
/* Folds ev into its minute's bucket; false when ev's type is not aggregated. */
bool audit_agg_add(struct audit_agg *a, const struct audit_event *ev);
/* Hands every bucket of a minute before now_us's (all with flush_all) to fn and forgets
 * them; returns how many. */
size_t audit_agg_flush(struct audit_agg *a, int64_t now_us, bool flush_all,
                       void (*fn)(void *arg, const struct audit_event *ev), void *arg);

/* ---- refused tokens seen by a worker (the hot path's side) -------------------------------- */

#define AUDIT_REFUSALS_MAX 64 /* distinct tokens a worker reports per interval; more counted */

struct audit_refusals {
    size_t n;
    uint64_t passed; /* refusals of further tokens this interval, not reported */
    struct {
        char jti[AUDIT_TOKEN_LEN];
        char user_id[AUDIT_USER_LEN];
        char client_id[AUDIT_CLIENT_LEN];
        bool revoked; /* else expired */
        uint32_t count;
    } v[AUDIT_REFUSALS_MAX];
};

/* Notes that a verified token was refused as expired or revoked (one owner, no lock). */
void audit_refusal_note(struct audit_refusals *r, const char *jti, const char *user_id,
                        const char *client_id, bool revoked);
/* Emits one "token.refused" event per noted token, and empties the table. */
void audit_refusals_emit(struct audit_refusals *r);

#endif
