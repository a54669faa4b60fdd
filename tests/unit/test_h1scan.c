/* test_h1scan.c -- the strict reader of HTTP/1.1 framing: what it refuses, and that it
 * follows heads and bodies across any split of the bytes. */
#include "cm.h"

#include "h1scan.h"

/* Feeds text in pieces of step bytes; the events in order as letters (H head, B body,
 * R refused), and the status of a refusal. */
static void run(const char *text, size_t step, char *events, int *status)
{
    struct h1scan s;
    h1scan_init(&s);
    size_t len = strlen(text), off = 0, ne = 0;
    *status = 0;
    while (off < len) {
        size_t n = len - off < step ? len - off : step, used = 0;
        enum h1_event ev = h1scan_feed(&s, (const unsigned char *)text + off, n, &used);
        assert_true(used <= n);
        off += used;
        if (ev == H1_HEAD_DONE)
            events[ne++] = 'H';
        else if (ev == H1_BODY_DONE)
            events[ne++] = 'B';
        else if (ev == H1_REFUSED) {
            events[ne++] = 'R';
            *status = s.status;
            break;
        } else {
            assert_int_equal(used, n);
        }
    }
    events[ne] = '\0';
}

static void check(const char *text, const char *want_events, int want_status)
{
    for (size_t step = 1; step <= strlen(text); step++) {
        char ev[64];
        int st;
        run(text, step, ev, &st);
        assert_string_equal(ev, want_events);
        assert_int_equal(st, want_status);
    }
}

static void h1scan__good_requests(void **state)
{
    (void)state;
    check("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "H", 0);
    check("POST /t HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", "HB", 0);
    /* keep-alive and pipelining: each request is followed */
    check("POST /t HTTP/1.1\r\ncontent-length:  2 \r\n\r\nab"
          "GET / HTTP/1.1\r\nX-Tab: a\tb\r\n\r\n",
          "HBH", 0);
    /* bare LF line ends, and an empty line before a request */
    check("\r\nGET / HTTP/1.1\nHost: a\n\n", "H", 0);
    check("POST /t HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "H", 0);
}

static void h1scan__refusals(void **state)
{
    (void)state;
    check("POST /t HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello", "R", 400);
    check("POST /t HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", "R", 400);
    check("POST /t HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello", "R", 400);
    check("POST /t HTTP/1.1\r\nContent-Length: 5x\r\n\r\nhello", "R", 400);
    check("POST /t HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", "R", 400);
    check("GET / HTTP/1.1\r\nHost : a\r\n\r\n", "R", 400);
    check("GET / HTTP/1.1\r\nHo st: a\r\n\r\n", "R", 400);
    check("GET / HTTP/1.1\r\n: a\r\n\r\n", "R", 400);
    check("GET / HTTP/1.1\r\nHost a\r\n\r\n", "R", 400);
    check("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "R", 400);
    check("POST /t HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "R", 400);
    check("POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "R", 411);
    check("POST /t HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "R", 400);
    check("GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", "R", 400);
    check("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", "R", 400);
    check("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", "R", 400);
    check("GET /\x01 HTTP/1.1\r\n\r\n", "R", 400);
    /* the second request of a pipeline is checked too */
    check("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost : a\r\n\r\n", "HR", 400);
}

static void h1scan__nul_and_sizes(void **state)
{
    (void)state;
    struct h1scan s;
    h1scan_init(&s);
    static const unsigned char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    size_t used;
    assert_int_equal(h1scan_feed(&s, nul, sizeof(nul) - 1, &used), H1_REFUSED);
    assert_int_equal(s.status, 400);
    /* refused stays refused */
    assert_int_equal(h1scan_feed(&s, (const unsigned char *)"x", 1, &used), H1_REFUSED);

    size_t big = H1_MAX_LINE + 100;
    char *line = malloc(big + 32);
    memcpy(line, "GET / HTTP/1.1\r\nX: ", 19);
    memset(line + 19, 'a', big);
    memcpy(line + 19 + big, "\r\n\r\n", 5);
    int st;
    char ev[8];
    run(line, 4096, ev, &st);
    assert_string_equal(ev, "R");
    assert_int_equal(st, 431);
    free(line);

    struct mbuf_like {
        char s[8192];
        size_t n;
    } m = {{0}, 0};
    m.n = (size_t)snprintf(m.s, sizeof(m.s), "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= H1_MAX_FIELDS; i++)
        m.n += (size_t)snprintf(m.s + m.n, sizeof(m.s) - m.n, "X%d: y\r\n", i);
    m.n += (size_t)snprintf(m.s + m.n, sizeof(m.s) - m.n, "\r\n");
    run(m.s, 512, ev, &st);
    assert_string_equal(ev, "R");
    assert_int_equal(st, 431);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(h1scan__good_requests),
        cmocka_unit_test(h1scan__refusals),
        cmocka_unit_test(h1scan__nul_and_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
