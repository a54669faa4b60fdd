/* loop_thread.c -- see loop_thread.h. */
#include "loop_thread.h"

#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"

#include "slab.h"
#include "token.h"
#include "xalloc.h"

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct loop_thread *lt = arg;
    event_base_loopbreak(lt->base);
}

static void on_keys_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct loop_thread *lt = arg;
    const struct keyring *ring = atomic_exchange(&lt->next_keys, NULL);
    if (ring == NULL)
        return;
    lt->keys = ring;
    token_thread_cleanup(); /* verify contexts and header memos of the old ring */
    if (lt->on_keys != NULL)
        lt->on_keys(lt->arg);
    if (lt->ack != NULL)
        lt->ack(lt->owner);
}

p2a_err loop_thread_init(struct loop_thread *lt, const char *name, const struct keyring *keys)
{
    lt->name = name;
    lt->keys = keys;
    atomic_store(&lt->next_keys, NULL);
    lt->base = event_base_new();
    if (lt->base == NULL)
        return P2A_ERR_INTERNAL;
    lt->stop_ev = event_new(lt->base, -1, 0, on_stop, lt);
    lt->keys_ev = event_new(lt->base, -1, 0, on_keys_event, lt);
    if (lt->stop_ev == NULL || lt->keys_ev == NULL)
        return P2A_ERR_INTERNAL;
    return P2A_OK;
}

static void *run(void *arg)
{
    struct loop_thread *lt = arg;
    if (lt->nice != 0 && setpriority(PRIO_PROCESS, (id_t)gettid(), lt->nice) != 0)
        log_warn("thread.nice_failed", "%s: could not set nice %d", lt->name, lt->nice);
    event_base_loop(lt->base, EVLOOP_NO_EXIT_ON_EMPTY);
    token_thread_cleanup();
    slab_thread_cleanup();
    if (lt->on_exit != NULL)
        lt->on_exit(lt->owner);
    return NULL;
}

p2a_err loop_thread_start(struct loop_thread *lt)
{
    if (pthread_create(&lt->thread, NULL, run, lt) != 0)
        return P2A_ERR_INTERNAL;
    lt->started = true;
    return P2A_OK;
}

void loop_thread_stop(struct loop_thread *lt)
{
    if (lt->stop_ev != NULL)
        event_active(lt->stop_ev, EV_TIMEOUT, 0);
}

void loop_thread_set_keys(struct loop_thread *lt, const struct keyring *ring)
{
    atomic_store(&lt->next_keys, ring);
    event_active(lt->keys_ev, EV_TIMEOUT, 0);
}

void loop_thread_join(struct loop_thread *lt)
{
    if (lt->started)
        pthread_join(lt->thread, NULL);
    lt->started = false;
}

void loop_thread_deinit(struct loop_thread *lt)
{
    if (lt->stop_ev != NULL)
        event_free(lt->stop_ev);
    if (lt->keys_ev != NULL)
        event_free(lt->keys_ev);
    if (lt->base != NULL)
        event_base_free(lt->base);
    lt->stop_ev = lt->keys_ev = NULL;
    lt->base = NULL;
}

struct event *loop_timer(struct event_base *base, int seconds, bool persist,
                         void (*fn)(evutil_socket_t, short, void *), void *arg)
{
    struct event *ev = event_new(base, -1, persist ? EV_PERSIST : 0, fn, arg);
    P2A_ASSERT(ev != NULL);
    struct timeval tv = {seconds, 0};
    event_add(ev, &tv);
    return ev;
}
