/* lastused.h -- "last used" marks gathered in memory, written to Redis in batches.
 *
 * Each worker marks the PATs it sees active in its own table (a mutex it shares with no
 * one but the flusher, so it is uncontended on the request path). On each flush interval
 * the main thread drains every worker's table into one, keeping the latest time per jti,
 * and writes that in one round trip: at most one write per token per interval, however
 * many requests and workers saw it.
 */
#ifndef P2A_LASTUSED_H
#define P2A_LASTUSED_H

#include <stddef.h>
#include <stdint.h>

#define LASTUSED_MAX 1000000 /* marks held between flushes; further new tokens wait */

struct lastused;

struct lastused *lastused_new(void);
void lastused_free(struct lastused *lu);

/* Records that jti was used at ts (keeps the latest). Thread-safe. */
void lastused_mark(struct lastused *lu, const char *jti, int64_t ts);
/* Moves every mark of src into dst, leaving src empty. Thread-safe. */
void lastused_drain(struct lastused *src, struct lastused *dst);
size_t lastused_count(struct lastused *lu);

/* Calls fn for each mark in lu (not thread-safe against marks: use on a drained table). */
void lastused_each(struct lastused *lu, void (*fn)(void *arg, const char *jti, int64_t ts),
                   void *arg);
/* Empties lu. */
void lastused_clear(struct lastused *lu);

#endif
