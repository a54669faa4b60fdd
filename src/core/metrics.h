/* metrics.h -- counters and histograms for Prometheus, written on the request path.
 *
 * Each worker owns one struct metrics and is its only writer, so a counter is bumped with a
 * relaxed load and store (no locked instruction, no shared cache line); the scraper reads
 * them with relaxed loads from another thread and sums the workers. Rendering writes the
 * Prometheus text exposition format into a growable string.
 */
#ifndef P2A_METRICS_H
#define P2A_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "mbuf.h"

#define METRICS_METHODS 16 /* service methods, plus one for unknown paths */
#define METRICS_CODES 17   /* gRPC status codes 0..16 */
#define METRICS_REASONS 11 /* InactiveReason 0..10; 0 counts active tokens */
#define METRICS_BUCKETS 14

struct metrics {
    atomic_uint_least64_t rpc[METRICS_METHODS][METRICS_CODES];
    atomic_uint_least64_t duration_bucket[METRICS_METHODS][METRICS_BUCKETS]; /* not cumulative */
    atomic_uint_least64_t duration_count[METRICS_METHODS];
    atomic_uint_least64_t duration_sum_ns[METRICS_METHODS];
    atomic_uint_least64_t introspections[METRICS_REASONS];
    atomic_uint_least64_t cache_hits, cache_misses;
};

/* Single-writer increment. */
static inline void metrics_add(atomic_uint_least64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Records one call of method index m (see service_method_index) that ended with code after
 * ns nanoseconds. */
void metrics_rpc(struct metrics *mx, int m, int code, int64_t ns);

/* Upper bounds of the latency buckets, in seconds. */
extern const double metrics_bucket_le[METRICS_BUCKETS];

/* Appends the per-worker series, summed over n workers. name(m) labels method m. */
void metrics_render(struct mbuf *out, struct metrics *const *workers, size_t n,
                    const char *(*name)(int m));

#endif
