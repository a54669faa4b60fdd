/* test_log.c -- every line is one JSON object with time, level, event and msg. */
#include "cm.h"

#include <fcntl.h>
#include <jansson.h>
#include <unistd.h>

#include "log.h"

/* Runs fn with stderr going to a file; returns what was written (caller frees). */
static char *capture(void (*fn)(void))
{
    char path[] = "/tmp/p2a-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *buf = calloc(1, (size_t)n + 1);
    assert_int_equal(pread(fd, buf, (size_t)n, 0), n);
    close(fd);
    unlink(path);
    return buf;
}

static void write_lines(void)
{
    log_set_level(LOG_INFO);
    log_info("test.first", "a \"quoted\" word,\nnew line and a tab\t");
    log_debug("test.hidden", "below the level");
    log_warn("test.bytes", "not UTF-8: \xff\xfe end");
}

static void log__json_lines(void **state)
{
    (void)state;
    char *out = capture(write_lines);
    char *second = strchr(out, '\n');
    assert_non_null(second);
    *second++ = '\0';
    assert_non_null(strchr(second, '\n'));
    assert_null(strchr(strchr(second, '\n') + 1, '\n')); /* exactly two lines */

    json_error_t err;
    json_t *a = json_loads(out, 0, &err);
    json_t *b = json_loads(second, 0, &err);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(a, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(a, "event")), "test.first");
    assert_string_equal(json_string_value(json_object_get(a, "msg")),
                        "a \"quoted\" word,\nnew line and a tab\t");
    const char *t = json_string_value(json_object_get(a, "time"));
    assert_non_null(t);
    assert_int_equal(strlen(t), 24); /* 2026-11-26T04:12:00.123Z */
    assert_string_equal(json_string_value(json_object_get(b, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(b, "msg")), "not UTF-8: ?? end");
    json_decref(a);
    json_decref(b);
    free(out);
}

static void fields_line(void)
{
    log_fields(LOG_INFO, "test.fields", json_pack("{s:s,s:i}", "who", "me", "n", 3));
}

static void log__fields(void **state)
{
    (void)state;
    char *out = capture(fields_line);
    json_t *a = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(a);
    assert_string_equal(json_string_value(json_object_get(a, "event")), "test.fields");
    assert_string_equal(json_string_value(json_object_get(a, "who")), "me");
    assert_int_equal(json_integer_value(json_object_get(a, "n")), 3);
    json_decref(a);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log__json_lines),
        cmocka_unit_test(log__fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
