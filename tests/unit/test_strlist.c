/* test_strlist.c -- the one list reader: items trimmed, empties skipped and counted, the
 * separators of settings (",") and of claims and scopes (" " or " ,"). */
#include "cm.h"

#include "strlist.h"

/* The items of s joined by '|', and the count of empty items. */
static void items(const char *s, const char *seps, char *out, size_t *empty)
{
    size_t o = 0;
    struct strlist it = strlist_of(s, seps);
    while (strlist_next(&it)) {
        assert_true(it.len > 0);
        assert_true(it.item[0] != ' ' && it.item[it.len - 1] != ' ');
        o += (size_t)sprintf(out + o, "%s%.*s", o ? "|" : "", (int)it.len, it.item);
    }
    out[o] = '\0';
    *empty = it.empty;
}

static void strlist__items_and_empties(void **state)
{
    (void)state;
    char out[256];
    size_t empty;
    items("a, b ,c", ",", out, &empty);
    assert_string_equal(out, "a|b|c");
    assert_int_equal(empty, 0);
    items(" http://a/mcp , http://b ,", ",", out, &empty);
    assert_string_equal(out, "http://a/mcp|http://b");
    assert_int_equal(empty, 0);
    items("a,,b, ,c", ",", out, &empty);
    assert_string_equal(out, "a|b|c");
    assert_int_equal(empty, 2);
    items("", ",", out, &empty);
    assert_string_equal(out, "");
    items(NULL, ",", out, &empty);
    assert_string_equal(out, "");
    items("  ", ",", out, &empty);
    assert_string_equal(out, "");
    items("one two  three", " ", out, &empty);
    assert_string_equal(out, "one|two|three");
    assert_int_equal(empty, 0);
    items("x.example, y.example z.example", " ,", out, &empty);
    assert_string_equal(out, "x.example|y.example|z.example");
    items("a b, c", ",", out, &empty); /* a space inside an item stays when it is no separator */
    assert_string_equal(out, "a b|c");
}

static void strlist__has(void **state)
{
    (void)state;
    assert_true(strlist_has("mcp files", " ", "files", 5, false));
    assert_false(strlist_has("mcp files", " ", "file", 4, false));
    assert_false(strlist_has("mcp filesx", " ", "files", 5, false));
    assert_true(strlist_has("Corp.Example, b.example", " ,", "corp.example", 12, true));
    assert_false(strlist_has("Corp.Example", " ,", "corp.example", 12, false));
    assert_false(strlist_has("", " ", "a", 1, false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strlist__items_and_empties),
        cmocka_unit_test(strlist__has),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
