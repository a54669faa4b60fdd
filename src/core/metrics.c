/* metrics.c -- see metrics.h. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "xalloc.h"

const double metrics_bucket_le[METRICS_BUCKETS] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5};

static const char *const code_names[METRICS_CODES] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

static const char *const reason_names[METRICS_REASONS] = {
    "active",        "missing", "malformed",    "bad_signature",  "unknown_key",       "expired",
    "not_yet_valid", "revoked", "wrong_issuer", "wrong_audience", "insufficient_scope"};

void metrics_rpc(struct metrics *mx, int m, int code, int64_t ns)
{
    if (m < 0 || m >= METRICS_METHODS || code < 0 || code >= METRICS_CODES)
        return;
    metrics_add(&mx->rpc[m][code], 1);
    double s = (double)ns / 1e9;
    int b = 0;
    while (b < METRICS_BUCKETS && s > metrics_bucket_le[b])
        b++;
    if (b < METRICS_BUCKETS)
        metrics_add(&mx->duration_bucket[m][b], 1);
    metrics_add(&mx->duration_count[m], 1);
    metrics_add(&mx->duration_sum_ns[m], ns > 0 ? (uint64_t)ns : 0);
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

void metrics_render(struct mbuf *out, struct metrics *const *w, size_t n,
                    const char *(*name)(int m))
{
    mbuf_printf(out, "# HELP p2a_rpc_requests_total gRPC calls answered, by method and status.\n"
                     "# TYPE p2a_rpc_requests_total counter\n");
    for (int m = 0; m < METRICS_METHODS; m++) {
        for (int c = 0; c < METRICS_CODES; c++) {
            uint64_t v = 0;
            for (size_t i = 0; i < n; i++)
                v += LOAD(w[i]->rpc[m][c]);
            if (v > 0 || c == 0)
                mbuf_printf(out, "p2a_rpc_requests_total{method=\"%s\",code=\"%s\"} %llu\n",
                            name(m), code_names[c], (unsigned long long)v);
        }
    }
    mbuf_printf(out, "# HELP p2a_rpc_request_duration_seconds Time from a call's last byte in "
                     "to its answer.\n"
                     "# TYPE p2a_rpc_request_duration_seconds histogram\n");
    for (int m = 0; m < METRICS_METHODS; m++) {
        uint64_t cum = 0, count = 0, sum_ns = 0;
        for (int b = 0; b < METRICS_BUCKETS; b++) {
            for (size_t i = 0; i < n; i++)
                cum += LOAD(w[i]->duration_bucket[m][b]);
            mbuf_printf(out,
                        "p2a_rpc_request_duration_seconds_bucket{method=\"%s\",le=\"%g\"} "
                        "%llu\n",
                        name(m), metrics_bucket_le[b], (unsigned long long)cum);
        }
        for (size_t i = 0; i < n; i++) {
            count += LOAD(w[i]->duration_count[m]);
            sum_ns += LOAD(w[i]->duration_sum_ns[m]);
        }
        mbuf_printf(out,
                    "p2a_rpc_request_duration_seconds_bucket{method=\"%s\",le=\"+Inf\"} %llu\n"
                    "p2a_rpc_request_duration_seconds_sum{method=\"%s\"} %.9f\n"
                    "p2a_rpc_request_duration_seconds_count{method=\"%s\"} %llu\n",
                    name(m), (unsigned long long)count, name(m), (double)sum_ns / 1e9, name(m),
                    (unsigned long long)count);
    }
    mbuf_printf(out, "# HELP p2a_introspections_total Introspect answers, by result: active, "
                     "or the reason a token was refused.\n"
                     "# TYPE p2a_introspections_total counter\n");
    for (int r = 0; r < METRICS_REASONS; r++) {
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++)
            v += LOAD(w[i]->introspections[r]);
        mbuf_printf(out, "p2a_introspections_total{result=\"%s\"} %llu\n", reason_names[r],
                    (unsigned long long)v);
    }
    uint64_t hits = 0, misses = 0;
    for (size_t i = 0; i < n; i++) {
        hits += LOAD(w[i]->cache_hits);
        misses += LOAD(w[i]->cache_misses);
    }
    mbuf_printf(out,
                "# HELP p2a_token_cache_hits_total Introspections answered from the cache of "
                "verified tokens.\n"
                "# TYPE p2a_token_cache_hits_total counter\n"
                "p2a_token_cache_hits_total %llu\n"
                "# HELP p2a_token_cache_misses_total Introspections that had to verify the "
                "token.\n"
                "# TYPE p2a_token_cache_misses_total counter\n"
                "p2a_token_cache_misses_total %llu\n",
                (unsigned long long)hits, (unsigned long long)misses);
}
