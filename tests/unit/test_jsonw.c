/* test_jsonw.c -- JSON into a fixed buffer: escaping, arrays, and running out of room. */
#include "cm.h"

#include <string.h>

#include <jansson.h>

#include "jsonw.h"

static void jsonw__escapes_and_parses_back(void **state)
{
    (void)state;
    char buf[256];
    struct jsonw w;
    jsonw_begin(&w, buf, sizeof(buf));
    jsonw_str(&w, "name", "a \"quoted\" \\ name\n\x01 é");
    jsonw_int(&w, "exp", -42);
    jsonw_bool(&w, "active", true);
    jsonw_array(&w, "aud");
    jsonw_item(&w, "https://a/mcp");
    jsonw_item(&w, "https://b/mcp");
    jsonw_array_end(&w);
    jsonw_array(&w, "none");
    jsonw_array_end(&w);
    jsonw_object(&w, "act");
    jsonw_str(&w, "sub", "b");
    jsonw_object(&w, "act");
    jsonw_str(&w, "sub", "a");
    jsonw_object_end(&w);
    jsonw_object_end(&w);
    long n = jsonw_end(&w);
    assert_int_equal(n, (long)strlen(buf));
    assert_string_equal(buf, "{\"name\":\"a \\\"quoted\\\" \\\\ name\\u000a\\u0001 é\","
                             "\"exp\":-42,\"active\":true,"
                             "\"aud\":[\"https://a/mcp\",\"https://b/mcp\"],\"none\":[],"
                             "\"act\":{\"sub\":\"b\",\"act\":{\"sub\":\"a\"}}}");
    json_error_t e;
    json_t *j = json_loads(buf, 0, &e); /* a real parser reads back what was written */
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "name")),
                        "a \"quoted\" \\ name\n\x01 é");
    assert_int_equal(json_array_size(json_object_get(j, "aud")), 2);
    json_decref(j);
}

static void jsonw__overflow_is_refused_not_truncated(void **state)
{
    (void)state;
    char buf[16];
    struct jsonw w;
    jsonw_begin(&w, buf, sizeof(buf));
    jsonw_str(&w, "k", "0123456789");
    assert_int_equal(jsonw_end(&w), -1);
    assert_string_equal(buf, "");
    jsonw_begin(&w, buf, sizeof(buf)); /* exactly full: 15 characters and the NUL */
    jsonw_str(&w, "k", "0123456");     /* {"k":"0123456"} */
    assert_int_equal(jsonw_end(&w), 15);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jsonw__escapes_and_parses_back),
        cmocka_unit_test(jsonw__overflow_is_refused_not_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
