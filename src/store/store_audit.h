/* store_audit.h -- the audit trail in Redis, and its writer (see audit.h for the events).
 *
 * Keys (all in the {audit} slot, named in KEYS by every script: lua/audit_write.lua,
 * lua/audit_list.lua):
 *   p2a:{audit}:ev            hash: event id -> the event's JSON (audit_event_json())
 *   p2a:{audit}:named         sorted set (score 0, by id, hence by time) of the events that
 *                             name a person or a service key
 *   p2a:{audit}:anon          the same for anonymous events, with a budget of its own
 *                             (a tenth of the count) so that they never push a person's out
 *   p2a:{audit}:u:<user_id>   a person's events (their security log)
 *   p2a:{audit}:c:<client_id> a client's events that name a person or a key (a client's
 *                             query merges it with the anonymous index)
 * Retention: each write removes up to 64 events older than PIPE2_AUTH_AUDIT_RETENTION_DAYS
 * or beyond PIPE2_AUTH_AUDIT_MAX_EVENTS from its index, the hash and the person's and
 * client's index it named, and trims the written event's person's and client's index alike
 * (an id whose event is gone, cut by an index's own cap, is skipped when read); a person's
 * or client's index expires with retention after its last write. Ids are unique
 * per replica and sort by time: replicas write without coordination, and a write retried
 * after a lost reply writes the same event again, not a second one.
 *
 * The writer runs on main's loop: each tick it takes the queue (audit_take()) and the last
 * minute's aggregates (audit_take_aggregates()), writes each event's CloudEvents line on
 * stdout, and sends the
 * backlog to Redis, one EVAL each, pipelined. A write that fails stays in the backlog for the
 * next tick; a backlog over AUDIT_BACKLOG_MAX loses its oldest, counted (audit_count_lost())
 * and logged at most once a second.
 */
#ifndef P2A_STORE_AUDIT_H
#define P2A_STORE_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "err.h"

struct store;
struct p2a_config;
struct mbuf;

#define AUDIT_BACKLOG_MAX 50000 /* events waiting for Redis */

/* evs newest first; next is "" when there is nothing after. Valid during the call. */
typedef void (*store_audit_list_cb)(void *arg, p2a_err err, const struct audit_event *evs, size_t n,
                                    const char *next);
void store_audit_list(struct store *st, const struct audit_query *q, store_audit_list_cb cb,
                      void *arg);

struct audit_writer;
struct audit_writer *audit_writer_new(struct store *st, const struct p2a_config *cfg);
/* One round: take, print, send. final: every aggregate now, for shutdown. */
void audit_writer_tick(struct audit_writer *w, bool final);
/* Writes still in flight. */
size_t audit_writer_in_flight(const struct audit_writer *w);
/* Called (from the loop) each time the writes in flight drop to none. */
void audit_writer_on_idle(struct audit_writer *w, void (*fn)(void *arg), void *arg);
/* The writer's /metrics lines. */
void audit_writer_metrics(const struct audit_writer *w, struct mbuf *out);
void audit_writer_free(struct audit_writer *w);

#endif
