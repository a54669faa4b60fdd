/* log.h -- one JSON object per line on stderr; never a token, code, secret or password.
 *
 *   {"time":"2026-11-26T04:12:00.123Z","level":"info","event":"pat.revoked","msg":"..."}
 *
 * event is a short constant name ("area.what_happened") to filter on; msg is the sentence.
 * Lines from different threads never interleave (one write each).
 *
 * A token may be named in a log only through log_token_ref(), a short fingerprint of its
 * SHA-256 digest that cannot be turned back into the token.
 */
#ifndef P2A_LOG_H
#define P2A_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

void log_set_level(enum log_level level);
/* Parses "debug", "info", "warn" or "error". */
p2a_err log_level_parse(const char *s, enum log_level *out);

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* One line with the given JSON object's members added after time, level and event. Takes a
 * reference to fields (a jansson json_t *; NULL for none). */
void log_fields(enum log_level level, const char *event, void *fields);
bool log_enabled(enum log_level level);

#define log_debug(event, ...) log_msg(LOG_DEBUG, event, __VA_ARGS__)
#define log_info(event, ...) log_msg(LOG_INFO, event, __VA_ARGS__)
#define log_warn(event, ...) log_msg(LOG_WARN, event, __VA_ARGS__)
#define log_error(event, ...) log_msg(LOG_ERROR, event, __VA_ARGS__)

/* At most one line a second for a thing that can happen a million times a second (refused
 * connections, a full descriptor table): log_every_second() says whether to write now, and
 * how many were passed over since the last line. Any thread; one struct per thing. */
struct log_limit {
    _Atomic long long next_ms;
    _Atomic unsigned long long passed;
};
bool log_every_second(struct log_limit *l, unsigned long long *passed);

/* Writes a 12-hex-digit fingerprint of a secret into out (at least 13 bytes). */
void log_token_ref(const char *token, size_t len, char out[13]);

#endif
