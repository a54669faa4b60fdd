/* store_internal.h -- what the store's files that speak hiredis share: the connection
 * (struct store: store_redis.c, and store_sentinel.c for Sentinel mode), one command in
 * flight (struct op) and how it is sent and read back (store_pat.c, the scripts of PAT
 * records, revocations and last-used marks, and store_audit.c, the audit trail's, read their
 * own replies). Not for other layers. */
#ifndef P2A_STORE_INTERNAL_H
#define P2A_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <stdatomic.h>

#include <event2/util.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "store.h"

struct event;
struct event_base;

struct store {
    struct event_base *base;
    const struct p2a_config *cfg;
    redisAsyncContext *ac;
    char host[256]; /* the Redis we use: the configured one, or the primary named */
    int port;
    atomic_bool ready; /* commands may go: at once for one Redis; after ROLE for Sentinel */
    /* Sentinel mode */
    redisAsyncContext *sac;   /* asking a sentinel for the primary */
    redisAsyncContext *watch; /* subscribed to +switch-master */
    size_t next_sentinel;     /* asked in the configured order, round after round */
    size_t next_watch;        /* the watch starts at the last one */
    size_t asked;             /* sentinels asked in this round */
    int64_t asked_at_ms;      /* when the current question went out */
    bool moved;               /* the primary moved: reconnect on the next watchdog turn */
    struct event *watch_ev;   /* reconnects the watch */
    struct event *reconnect_ev;
    struct event *watchdog_ev;
    int backoff_ms;
    size_t pending;
    int64_t last_progress_ms;
    atomic_bool connected; /* read by the metrics scraper on another thread */
    bool freeing;
    bool logged_down;
    char name[32];
    /* subscriber mode */
    char *channel; /* NULL for a command connection */
    store_message_cb on_message;
    store_sub_state_cb on_sub_state;
    void *sub_arg;
};

/* ---- the connection (store_redis.c) ------------------------------------------------------ */

/* Connects to st->host:st->port (AUTH, SELECT, and in Sentinel mode ROLE queued first). */
void store_connect_redis(struct store *st);
/* Arms the reconnect timer, backing off. */
void store_schedule_reconnect(struct store *st);
/* Queues AUTH with the configured user and password on ac (Redis and sentinels alike). */
void store_queue_auth(struct store *st, redisAsyncContext *ac);
/* TCP keepalive on a connection that only listens. */
void store_keepalive(int fd);
/* Closes a helper connection (to a sentinel) without its callbacks acting on st. */
void store_drop_helper(redisAsyncContext **slot);

/* ---- Sentinel mode (store_sentinel.c) ---------------------------------------------------- */

/* Asks the next sentinel for the primary; store_connect_redis() once one names it. */
void store_sentinel_ask(struct store *st);
/* The reply to ROLE, the first command on a connection in Sentinel mode: only a primary
 * gets commands (st->ready); anything else moves us back to the sentinels. */
void store_sentinel_on_role(redisAsyncContext *ac, void *reply, void *privdata);
/* (Re)starts the connection that listens for +switch-master (an event callback, arg st). */
void store_sentinel_watch(evutil_socket_t fd, short what, void *arg);
/* From the watchdog: true when the sentinel asked has not answered in time (it was dropped
 * and the next one asked). */
bool store_sentinel_overdue(struct store *st);

/* ---- commands ------------------------------------------------------------------------------ */

struct op;
typedef void (*store_op_fn)(struct op *op, redisReply *r);

struct op {
    struct store *st;
    store_op_fn fn;
    union {
        store_done_cb done;
        store_revoke_cb revoke;
        store_list_cb list;
        store_revocations_cb revocations;
        store_eval_cb eval;
        store_memory_cb memory;
    } cb;
    void *arg;
    void *ctx;   /* a step's own data (freed with the op): a script in two steps */
    bool flag;   /* the same */
    int64_t num; /* the same */
};

/* Sends argv (lens NULL: NUL-terminated strings); op->fn gets the reply, or NULL when the
 * connection is down or fails. Frees op after. */
void store_send_op(struct store *st, struct op *op, int argc, const char **argv,
                   const size_t *lens);
/* The same for a write that must survive a failover: op->fn gets the reply only once WAIT
 * has seen it on the configured replicas, else NULL (see store_eval_durable). */
void store_send_durable(struct store *st, struct op *op, int argc, const char **argv,
                        const size_t *lens);
struct op *store_op_new(store_op_fn fn, void *arg);
bool store_reply_ok(const redisReply *r);
int64_t store_reply_int(const redisReply *r);
long long store_write_deadline_ms(const struct store *st);

#endif
