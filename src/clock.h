/* clock.h -- the one source of time, so tests can move it instead of sleeping. */
#ifndef P2A_CLOCK_H
#define P2A_CLOCK_H

#include <stdint.h>

/* Wall-clock time in Unix seconds / milliseconds (what tokens carry). */
int64_t clock_now(void);
int64_t clock_now_ms(void);

/* Monotonic milliseconds, for timeouts and ages. Never affected by clock_set_offset. */
int64_t clock_mono_ms(void);
int64_t clock_mono_ns(void);

/* Tests only: shift clock_now()/clock_now_ms() by this many seconds. Not thread-safe. */
void clock_set_offset(int64_t seconds);

#endif
