/* store_internal.h -- what the store's own files share: one command in flight (struct op)
 * and how it is sent and read back. store_redis.c owns the connection; store_pat.c holds
 * the scripts of PAT records, revocations and last-used marks. Not for other layers. */
#ifndef P2A_STORE_INTERNAL_H
#define P2A_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "store.h"

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
