/* hashpool.c -- see hashpool.h.
 *
 * Every job accepted is on the pool's list until its answer has been delivered; the queue is
 * the part of that list not yet taken by a thread (taken jobs have running or done set). A
 * thread takes the oldest queued job, hashes without the lock, and activates the job's
 * event on the caller's base (thread-safe: libevent is set up for pthreads); the event's
 * callback, on the caller's loop, unlinks the job, calls done and frees it.
 *
 * The threads run at the lowest priority (nice 19): when the CPUs are contended, Introspect
 * on the workers and the revocation view come first, and sign-ins wait (the queue bounds
 * how many).
 */
#include "hashpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "log.h"
#include "oauth.h"
#include "xalloc.h"

#define HASH_NICE 19

struct job {
    TAILQ_ENTRY(job) link;
    struct hashpool *pool;
    struct event *ev;
    char *password, *hash;
    hashpool_done_cb done;
    void *arg;
    bool running, ok;
};

struct hashpool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    TAILQ_HEAD(, job) jobs; /* every job not yet delivered, oldest first */
    size_t queued, cap_queue;
    atomic_size_t pending;
    bool stopping;
    int nthreads;
    pthread_t *threads;
};

static void job_free(struct job *j)
{
    if (j->password != NULL) {
        OPENSSL_cleanse(j->password, strlen(j->password));
        free(j->password);
    }
    free(j->hash);
    if (j->ev != NULL)
        event_free(j->ev);
    free(j);
}

/* On the caller's loop. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct job *j = arg;
    struct hashpool *p = j->pool;
    pthread_mutex_lock(&p->lock);
    TAILQ_REMOVE(&p->jobs, j, link);
    pthread_mutex_unlock(&p->lock);
    atomic_fetch_sub(&p->pending, 1);
    hashpool_done_cb done = j->done;
    void *darg = j->arg;
    bool ok = j->ok;
    job_free(j);
    done(darg, ok);
}

static void *run(void *arg)
{
    struct hashpool *p = arg;
    /* Linux: a thread's nice value is its own; failing to lower it changes nothing else */
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), HASH_NICE) != 0)
        log_debug("hashpool.nice_failed", "could not lower the hashing threads' priority");
    pthread_mutex_lock(&p->lock);
    for (;;) {
        struct job *j = TAILQ_FIRST(&p->jobs);
        while (j != NULL && j->running)
            j = TAILQ_NEXT(j, link);
        if (j == NULL) {
            if (p->stopping)
                break;
            pthread_cond_wait(&p->wake, &p->lock);
            continue;
        }
        j->running = true;
        p->queued--;
        pthread_mutex_unlock(&p->lock);
        j->ok = oauth_password_verify(j->password, j->hash);
        OPENSSL_cleanse(j->password, strlen(j->password));
        event_active(j->ev, EV_TIMEOUT, 0);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

p2a_err hashpool_new(int threads, int queue, struct hashpool **out)
{
    struct hashpool *p = xcalloc(1, sizeof(*p));
    TAILQ_INIT(&p->jobs);
    P2A_ASSERT(pthread_mutex_init(&p->lock, NULL) == 0);
    P2A_ASSERT(pthread_cond_init(&p->wake, NULL) == 0);
    p->cap_queue = (size_t)queue;
    p->threads = xcalloc((size_t)threads, sizeof(pthread_t));
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, run, p) != 0) {
            hashpool_free(p);
            return P2A_ERR_INTERNAL;
        }
        p->nthreads = i + 1;
    }
    *out = p;
    return P2A_OK;
}

void hashpool_free(struct hashpool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    /* queued jobs are not started any more: mark them taken */
    struct job *j;
    TAILQ_FOREACH(j, &p->jobs, link)
        j->running = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    /* the callers' loops have stopped: answer what was never delivered, here */
    j = TAILQ_FIRST(&p->jobs);
    TAILQ_INIT(&p->jobs); /* detached: walked below */
    while (j != NULL) {
        struct job *next = TAILQ_NEXT(j, link);
        hashpool_done_cb done = j->done;
        void *darg = j->arg;
        job_free(j);
        done(darg, false);
        j = next;
    }
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}

bool hashpool_verify(struct hashpool *p, struct event_base *base, const char *password,
                     const char *hash, hashpool_done_cb done, void *arg)
{
    struct job *j = xcalloc(1, sizeof(*j));
    j->pool = p;
    j->done = done;
    j->arg = arg;
    j->ev = event_new(base, -1, 0, on_done, j);
    P2A_ASSERT(j->ev != NULL);
    pthread_mutex_lock(&p->lock);
    if (p->queued >= p->cap_queue || p->stopping) {
        pthread_mutex_unlock(&p->lock);
        job_free(j);
        return false;
    }
    j->password = xstrdup(password);
    j->hash = xstrdup(hash);
    TAILQ_INSERT_TAIL(&p->jobs, j, link);
    p->queued++;
    atomic_fetch_add(&p->pending, 1);
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    return true;
}

size_t hashpool_pending(const struct hashpool *p)
{
    return atomic_load(&p->pending);
}

size_t hashpool_capacity(const struct hashpool *p)
{
    return p->cap_queue + (size_t)p->nthreads;
}
