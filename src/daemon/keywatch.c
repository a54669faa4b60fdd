/* keywatch.c -- reloading the signing keys when their files change (see keywatch.h).
 * Threading: the main loop; keywatch_ack() from the threads that follow the ring. */
#include "keywatch.h"

#include <dirent.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "audit.h"
#include "digest.h"
#include "keys.h"
#include "log.h"
#include "loop_thread.h"
#include "mbuf.h"
#include "xalloc.h"

#define KEYWATCH_MAX_THREADS 264 /* the workers (at most 256) and the facade */

struct keywatch {
    struct event_base *base;
    const char *dir;
    /* the current ring, and the previous one until every thread has let go */
    struct keyring *keys, *keys_old;
    atomic_int acks;
    unsigned char fp[DIGEST_SHA256_LEN];
    struct loop_thread *threads[KEYWATCH_MAX_THREADS];
    int nthreads;
    bool stopped;
    struct event *watch_ev, *ack_ev;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A digest of the names, sizes and modification times of the *.pem files in dir (following
 * symlinks, as a Kubernetes Secret volume has them): it changes when a key is added,
 * replaced or removed. */
static void fingerprint(const char *dir, unsigned char out[DIGEST_SHA256_LEN])
{
    char *names[KEYS_MAX * 4];
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL && n < sizeof(names) / sizeof(names[0])) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".pem") == 0)
            names[n++] = xstrdup(de->d_name);
    }
    if (d != NULL)
        closedir(d);
    qsort(names, n, sizeof(names[0]), cmp_str);
    struct mbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0)
            mbuf_printf(&b, "%s %lld %lld.%09ld\n", names[i], (long long)st.st_size,
                        (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        free(names[i]);
    }
    digest_sha256(b.s ? b.s : "", b.len, out);
    mbuf_free(&b);
}

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct keywatch *kw = arg;
    if (kw->keys_old != NULL || kw->stopped)
        return; /* a rotation is still in progress */
    unsigned char fp[DIGEST_SHA256_LEN];
    fingerprint(kw->dir, fp);
    if (memcmp(fp, kw->fp, sizeof(fp)) == 0)
        return;
    memcpy(kw->fp, fp, sizeof(fp)); /* a broken change is reported once, not every tick */
    char err[512];
    struct keyring *ring;
    if (keys_load(kw->dir, &ring, err, sizeof(err)) != P2A_OK) {
        log_error("keys.reload_failed",
                  "signing keys changed but cannot be used (%s); "
                  "keeping the %zu keys loaded before",
                  err, keys_count(kw->keys));
        return;
    }
    kw->keys_old = kw->keys;
    kw->keys = ring;
    atomic_store(&kw->acks, 0);
    for (int i = 0; i < kw->nthreads; i++)
        loop_thread_set_keys(kw->threads[i], ring);
    log_info("keys.reloaded", "%zu signing keys, signing with kid %s", keys_count(ring),
             keys_signer(ring)->kid);
    char detail[128];
    snprintf(detail, sizeof(detail), "%zu signing keys, signing with kid %s", keys_count(ring),
             keys_signer(ring)->kid);
    audit_emit(&(struct audit_in){.type = "key.rotated", .actor = "system", .detail = detail});
}

static void on_ack(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct keywatch *kw = arg;
    if (kw->keys_old != NULL && atomic_load(&kw->acks) == kw->nthreads) {
        keys_free(kw->keys_old); /* no thread can be using it any more */
        kw->keys_old = NULL;
    }
}

struct keywatch *keywatch_new(struct event_base *base, const char *dir, struct keyring *keys)
{
    struct keywatch *kw = xcalloc(1, sizeof(*kw));
    kw->base = base;
    kw->dir = dir;
    kw->keys = keys;
    fingerprint(dir, kw->fp);
    kw->ack_ev = event_new(base, -1, 0, on_ack, kw);
    P2A_ASSERT(kw->ack_ev != NULL);
    return kw;
}

void keywatch_follow(struct keywatch *kw, struct loop_thread *lt)
{
    P2A_ASSERT(kw->nthreads < KEYWATCH_MAX_THREADS);
    kw->threads[kw->nthreads++] = lt;
}

void keywatch_start(struct keywatch *kw, int interval_s)
{
    kw->watch_ev = loop_timer(kw->base, interval_s, true, on_watch, kw);
}

void keywatch_ack(struct keywatch *kw)
{
    atomic_fetch_add(&kw->acks, 1);
    event_active(kw->ack_ev, EV_TIMEOUT, 0);
}

void keywatch_stop(struct keywatch *kw)
{
    kw->stopped = true;
}

void keywatch_free(struct keywatch *kw)
{
    if (kw == NULL)
        return;
    if (kw->watch_ev != NULL)
        event_free(kw->watch_ev);
    event_free(kw->ack_ev);
    keys_free(kw->keys_old);
    keys_free(kw->keys);
    free(kw);
}
