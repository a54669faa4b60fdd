/* log.h -- one line per event on stderr; never a token, code, secret or password.
 *
 * A token may be named in a log only through log_token_ref(), a short fingerprint of its
 * SHA-256 digest that cannot be turned back into the token.
 */
#ifndef P2A_LOG_H
#define P2A_LOG_H

#include <stddef.h>

#include "err.h"

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

void log_set_level(enum log_level level);
/* Parses "debug", "info", "warn" or "error". */
p2a_err log_level_parse(const char *s, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Writes a 12-hex-digit fingerprint of a secret into out (at least 13 bytes). */
void log_token_ref(const char *token, size_t len, char out[13]);

#endif
