/* log.c -- timestamped lines on stderr.
 *
 * Each line is formatted into a stack buffer and written with one write(2), so lines from
 * different threads never interleave. Called from every thread; the level is set once at
 * start-up before any thread exists.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

static enum log_level min_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

const char *p2a_strerror(p2a_err err)
{
    switch (err) {
    case P2A_OK:
        return "OK";
    case P2A_ERR_INVALID:
        return "INVALID";
    case P2A_ERR_DENIED:
        return "DENIED";
    case P2A_ERR_FORBIDDEN:
        return "FORBIDDEN";
    case P2A_ERR_NOT_FOUND:
        return "NOT_FOUND";
    case P2A_ERR_CONFLICT:
        return "CONFLICT";
    case P2A_ERR_UNAVAILABLE:
        return "UNAVAILABLE";
    case P2A_ERR_TIMEOUT:
        return "TIMEOUT";
    case P2A_ERR_TOO_LARGE:
        return "TOO_LARGE";
    case P2A_ERR_INTERNAL:
        return "INTERNAL";
    }
    return "UNKNOWN";
}

void log_set_level(enum log_level level)
{
    min_level = level;
}

p2a_err log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return P2A_OK;
        }
    }
    return P2A_ERR_INVALID;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere left to report a failed log write */
}

void log_token_ref(const char *token, size_t len, char out[13])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    static const char hex[] = "0123456789abcdef";
    SHA256((const unsigned char *)token, len, d);
    for (int i = 0; i < 6; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[12] = '\0';
}
