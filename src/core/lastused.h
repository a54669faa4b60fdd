/* lastused.h -- "last used" marks gathered in memory, written to Redis in batches.
 *
 * Each worker marks the PATs it sees active in a table of its own, with no lock: only that
 * worker touches it. Every flush interval the worker moves its marks into the shared inbox
 * (one mutex, taken once per interval), keeping the latest time per jti; every flush
 * interval the main thread takes the inbox and writes it in one round trip per 1000 tokens:
 * at most one write per token per interval, however many requests and workers saw it, and a
 * mark reaches Redis within two intervals.
 */
#ifndef P2A_LASTUSED_H
#define P2A_LASTUSED_H

#include <stddef.h>
#include <stdint.h>

#define LASTUSED_MAX 1000000 /* marks held between flushes; further new tokens wait */

struct lastused;
struct lastused_inbox;

/* A table of marks. Not thread-safe: one owner. */
struct lastused *lastused_new(void);
void lastused_free(struct lastused *lu);
/* Records that jti was used at ts (keeps the latest). */
void lastused_mark(struct lastused *lu, const char *jti, int64_t ts);
size_t lastused_count(const struct lastused *lu);
/* Calls fn for each mark. */
void lastused_each(const struct lastused *lu,
                   void (*fn)(void *arg, const char *jti, int64_t ts), void *arg);
/* Moves every mark of src into dst, leaving src empty (its allocation kept). */
void lastused_merge(struct lastused *dst, struct lastused *src);

/* The hand-over point between workers and the flusher. Thread-safe. */
struct lastused_inbox *lastused_inbox_new(void);
void lastused_inbox_free(struct lastused_inbox *in);
/* A worker: moves its marks into the inbox. */
void lastused_inbox_put(struct lastused_inbox *in, struct lastused *marks);
/* The flusher: moves everything in the inbox into dst. */
void lastused_inbox_take(struct lastused_inbox *in, struct lastused *dst);

#endif
