/* log.c -- JSON lines on stderr (see log.h).
 *
 * Each line is built with jansson and written with one write(2), so lines from different
 * threads never interleave. Called from every thread; the level is set once at start-up
 * before any thread exists. Not on the request path: nothing there logs per request.
 */
#include "log.h"
#include "clock.h"

#include <stdatomic.h>

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "codec.h"

static enum log_level min_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

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

bool log_enabled(enum log_level level)
{
    return level >= min_level;
}

static void emit(enum log_level level, const char *event, json_t *fields, const char *msg)
{
    char when[64];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    json_t *o = json_object();
    json_object_set_new(o, "time", json_string(when));
    json_object_set_new(o, "level", json_string(level_names[level]));
    json_object_set_new(o, "event", json_string(event));
    if (msg != NULL)
        json_object_set_new(o, "msg", json_string(msg));
    if (fields != NULL)
        json_object_update(o, fields);
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (line == NULL)
        return;
    size_t n = strlen(line);
    line[n] = '\n'; /* replaces the NUL: written by length below */
    ssize_t w = write(STDERR_FILENO, line, n + 1);
    (void)w; /* nowhere left to report a failed log write */
    line[n] = '\0';
    free(line);
}

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
    va_end(ap);
    if (m < 0)
        msg[0] = '\0';
    /* JSON strings are UTF-8: keep the message printable whatever a library handed us */
    if (codec_utf8_chars(msg, strlen(msg)) < 0)
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
    emit(level, event, NULL, msg);
}

void log_fields(enum log_level level, const char *event, void *fields)
{
    if (level >= min_level)
        emit(level, event, fields, NULL);
    json_decref(fields);
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

bool log_every_second(struct log_limit *l, unsigned long long *passed)
{
    long long now = clock_mono_ms(), next = atomic_load(&l->next_ms);
    if (now < next || !atomic_compare_exchange_strong(&l->next_ms, &next, now + 1000)) {
        atomic_fetch_add(&l->passed, 1);
        return false;
    }
    *passed = atomic_exchange(&l->passed, 0);
    return true;
}
