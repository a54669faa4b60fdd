/* clock.h -- the one source of time. */
#ifndef P2A_CLOCK_H
#define P2A_CLOCK_H

#include <stdint.h>

/* Wall-clock time in Unix seconds / milliseconds (what tokens carry). */
int64_t clock_now(void);
int64_t clock_now_ms(void);

/* Monotonic milliseconds and nanoseconds, for timeouts, ages and latencies. */
int64_t clock_mono_ms(void);
int64_t clock_mono_ns(void);

#endif
