/* revsync.c -- the three paths of revocations into this process (see revsync.h).
 *
 * State: last_seq is the highest sequence number a poll or load has covered. Only polls and
 * loads advance it: a message may arrive out of order with a gap before it, and skipping to
 * its number would hide the gap from the repair path. A poll in flight is never doubled; a
 * poll that fails leaves the view to age, and the set's staleness bound does the rest.
 *
 * Threading: the revocation view's loop only (its thread does nothing else).
 */
#include "revsync.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "loop_thread.h"
#include "mbuf.h"
#include "revoke.h"
#include "store.h"
#include "xalloc.h"

#define POLL_BATCH 10000
#define LOAD_RETRY_MS 500
#define STATS_LOG_S 60

struct revsync {
    const struct p2a_config *cfg;
    struct event_base *base;
    struct store *store;      /* borrowed: the view thread's command connection */
    struct store *subscriber; /* owned */
    struct revoke_set *set;
    struct event *load_ev, *poll_ev, *sweep_ev, *stats_ev;
    bool loaded;
    bool load_in_flight, poll_in_flight, purge_in_flight;
    bool poll_failing;
    uint64_t last_seq;
    int64_t sent_ms;
    int64_t load_started_ms;
    struct revoke_stats logged;
};

static void start_load(struct revsync *rs);

/* ---- start-up and reload ----------------------------------------------------------------- */

static void on_loaded(void *arg, p2a_err err, const struct revocation *v, size_t n, uint64_t seq)
{
    struct revsync *rs = arg;
    rs->load_in_flight = false;
    if (err != P2A_OK) {
        struct timeval tv = {0, LOAD_RETRY_MS * 1000};
        evtimer_add(rs->load_ev, &tv);
        return;
    }
    for (size_t i = 0; i < n; i++)
        revoke_add(rs->set, v[i].jti, v[i].exp, REVOKE_PATH_STARTUP);
    rs->last_seq = seq;
    size_t bytes = revoke_memory(rs->set), count = revoke_count(rs->set);
    log_info("revocations.loaded",
             "ready: %zu revocations loaded in %lld ms (sequence %" PRIu64
             "); the set holds %zu bytes, %zu per entry",
             n, (long long)(clock_mono_ms() - rs->load_started_ms), seq, bytes,
             count ? bytes / count : 0);
    revoke_synced(rs->set, rs->sent_ms, seq); /* after the log line: SERVING implies it */
    rs->loaded = true;
}

static void start_load(struct revsync *rs)
{
    if (rs->load_in_flight)
        return;
    rs->load_in_flight = true;
    rs->sent_ms = clock_mono_ms();
    if (!rs->loaded)
        rs->load_started_ms = rs->sent_ms;
    store_revocations_load(rs->store, clock_now(), on_loaded, rs);
}

static void on_load_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    start_load(arg);
}

/* ---- repair path --------------------------------------------------------------------------- */

static void poll_now(struct revsync *rs);

static void on_polled(void *arg, p2a_err err, const struct revocation *v, size_t n, uint64_t seq)
{
    struct revsync *rs = arg;
    rs->poll_in_flight = false;
    if (err != P2A_OK) {
        if (!rs->poll_failing)
            log_warn("revocations.poll_failed",
                     "revocation poll failed; the view ages until Redis answers again");
        rs->poll_failing = true;
        return;
    }
    if (rs->poll_failing)
        log_info("revocations.poll_recovered", "revocation poll works again");
    rs->poll_failing = false;
    if (seq < rs->last_seq) {
        log_warn("revocations.reload",
                 "Redis revocation sequence went back from %" PRIu64 " to %" PRIu64
                 "; reloading the whole set",
                 rs->last_seq, seq);
        start_load(rs);
        return;
    }
    int64_t now = clock_now();
    uint64_t covered = seq;
    for (size_t i = 0; i < n; i++) {
        if (v[i].exp > now)
            revoke_add(rs->set, v[i].jti, v[i].exp, REVOKE_PATH_POLL);
    }
    if (n == POLL_BATCH) /* more to come: resume after the last one seen */
        covered = v[n - 1].seq;
    rs->last_seq = covered;
    revoke_synced(rs->set, rs->sent_ms, covered);
    if (n == POLL_BATCH)
        poll_now(rs);
}

static void poll_now(struct revsync *rs)
{
    if (!rs->loaded || rs->poll_in_flight || rs->load_in_flight)
        return;
    rs->poll_in_flight = true;
    rs->sent_ms = clock_mono_ms();
    store_revocations_since(rs->store, rs->last_seq, POLL_BATCH, on_polled, rs);
}

static void on_poll_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    poll_now(arg);
}

/* ---- fast path ------------------------------------------------------------------------------- */

/* "<seq> <jti> <exp> <revoked at, ms>" */
static void on_message(void *arg, const char *payload, size_t len)
{
    struct revsync *rs = arg;
    char buf[128];
    if (len >= sizeof(buf))
        return;
    memcpy(buf, payload, len);
    buf[len] = '\0';
    char *save = NULL, *end;
    const char *seq = strtok_r(buf, " ", &save), *jti = strtok_r(NULL, " ", &save);
    const char *exp_s = strtok_r(NULL, " ", &save), *at_s = strtok_r(NULL, " ", &save);
    long long exp = 0, at_ms = 0;
    bool ok =
        seq != NULL && jti != NULL && exp_s != NULL && at_s != NULL && strlen(jti) <= JTI_MAX_LEN;
    if (ok) {
        errno = 0;
        exp = strtoll(exp_s, &end, 10);
        ok = errno == 0 && *end == '\0';
        at_ms = strtoll(at_s, &end, 10);
        ok = ok && errno == 0 && *end == '\0';
    }
    if (!ok) {
        log_warn("revocations.bad_message", "ignoring a malformed revocation message");
        return;
    }
    revoke_add(rs->set, jti, exp, REVOKE_PATH_MESSAGE);
    revoke_note_lag(rs->set, clock_now_ms() - at_ms);
}

static void on_sub_state(void *arg, bool subscribed)
{
    struct revsync *rs = arg;
    if (subscribed) {
        log_info("revocations.subscribed", "subscribed to %s", STORE_CHANNEL);
        poll_now(rs); /* messages may have been lost while we were away */
    } else {
        log_warn("revocations.subscriber_lost",
                 "revocation subscriber lost its connection; polling covers the gap");
    }
}

/* ---- sweeping and statistics ---------------------------------------------------------------- */

static void on_purged(void *arg, p2a_err err, const struct revocation *v, size_t n, uint64_t seq)
{
    (void)v, (void)seq;
    struct revsync *rs = arg;
    rs->purge_in_flight = false;
    if (err == P2A_OK && n > 0)
        log_info("revocations.purged", "revocations of expired tokens: %zu deleted from Redis", n);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct revsync *rs = arg;
    int64_t now = clock_now();
    size_t dropped = revoke_sweep(rs->set, now);
    if (dropped > 0)
        log_info("revocations.swept",
                 "revocations of expired tokens: %zu dropped from memory, %zu remain", dropped,
                 revoke_count(rs->set));
    if (!rs->purge_in_flight) {
        rs->purge_in_flight = true;
        store_revocations_purge(rs->store, now, on_purged, rs);
    }
}

static void on_stats(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct revsync *rs = arg;
    struct revoke_stats st;
    revoke_get_stats(rs->set, clock_mono_ms(), &st);
    if (memcmp(st.applied, rs->logged.applied, sizeof(st.applied)) == 0)
        return;
    log_info("revocations.stats",
             "revocation view: age %lld ms, %zu entries (%zu bytes), applied by message %" PRIu64
             ", by poll %" PRIu64 ", at start-up %" PRIu64 ", here %" PRIu64
             "; last propagation lag %lld ms",
             (long long)st.view_age_ms, st.entries, st.bytes, st.applied[REVOKE_PATH_MESSAGE],
             st.applied[REVOKE_PATH_POLL], st.applied[REVOKE_PATH_STARTUP],
             st.applied[REVOKE_PATH_LOCAL], (long long)st.last_lag_ms);
    rs->logged = st;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

struct revsync *revsync_new(struct event_base *base, const struct p2a_config *cfg,
                            struct store *store, struct revoke_set *set)
{
    struct revsync *rs = xcalloc(1, sizeof(*rs));
    rs->cfg = cfg;
    rs->base = base;
    rs->store = store;
    rs->set = set;
    rs->load_ev = evtimer_new(base, on_load_timer, rs);
    P2A_ASSERT(rs->load_ev != NULL);
    rs->poll_ev = loop_timer(base, cfg->revocation_poll_s, true, on_poll_timer, rs);
    rs->sweep_ev = loop_timer(base, cfg->sweep_interval_s, true, on_sweep, rs);
    rs->stats_ev = loop_timer(base, STATS_LOG_S, true, on_stats, rs);
    rs->subscriber =
        store_new_subscriber(base, cfg, "subscriber", STORE_CHANNEL, on_message, on_sub_state, rs);
    start_load(rs);
    return rs;
}

void revsync_free(struct revsync *rs)
{
    if (rs == NULL)
        return;
    store_free(rs->subscriber);
    event_free(rs->load_ev);
    event_free(rs->poll_ev);
    event_free(rs->sweep_ev);
    event_free(rs->stats_ev);
    free(rs);
}

bool revsync_subscriber_connected(const struct revsync *rs)
{
    return store_connected(rs->subscriber);
}

void revsync_metrics(const struct revsync *rs, struct mbuf *out)
{
    struct revoke_stats st;
    revoke_get_stats(rs->set, clock_mono_ms(), &st);
    static const char *const paths[REVOKE_PATH_COUNT] = {"local", "message", "poll", "startup"};
    mbuf_printf(out,
                "# HELP p2a_revocation_view_age_seconds Time since the last successful sync of "
                "the revocation list with Redis (-1 before the first).\n"
                "# TYPE p2a_revocation_view_age_seconds gauge\n"
                "p2a_revocation_view_age_seconds %.3f\n"
                "# HELP p2a_revocation_propagation_lag_seconds From a revocation to its "
                "application here, for the last one that came by message (-1: none yet).\n"
                "# TYPE p2a_revocation_propagation_lag_seconds gauge\n"
                "p2a_revocation_propagation_lag_seconds %.3f\n"
                "# HELP p2a_revocations Revoked tokens held in memory (until they expire).\n"
                "# TYPE p2a_revocations gauge\n"
                "p2a_revocations %zu\n"
                "# HELP p2a_revocation_set_bytes Memory held by the revocation set.\n"
                "# TYPE p2a_revocation_set_bytes gauge\n"
                "p2a_revocation_set_bytes %zu\n"
                "# HELP p2a_revocations_applied_total Revocations new to this process, by the "
                "path that brought them.\n"
                "# TYPE p2a_revocations_applied_total counter\n",
                st.view_age_ms < 0 ? -1.0 : (double)st.view_age_ms / 1000,
                st.last_lag_ms < 0 ? -1.0 : (double)st.last_lag_ms / 1000, st.entries, st.bytes);
    for (int p = 0; p < REVOKE_PATH_COUNT; p++)
        mbuf_printf(out, "p2a_revocations_applied_total{path=\"%s\"} %llu\n", paths[p],
                    (unsigned long long)st.applied[p]);
}
