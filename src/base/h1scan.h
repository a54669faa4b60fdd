/* h1scan.h -- a strict reader of HTTP/1.1 request framing: in front of the facade's parser,
 * and the only parser of the workers' forward-auth listener (rpc/authz_http.c).
 *
 * libevent's evhttp parses the facade's requests; it is lenient where a server behind or in front
 * of a proxy must not be (request smuggling, header injection): it takes the first of two differing
 * Content-Length headers, "+5" as a length, a space before the colon, an unknown Transfer-Encoding,
 * a NUL inside a value. This scanner sees every byte first and refuses, per RFC 9112:
 *   - a control character (NUL, CR not before LF, ...) in the request line or a header line
 *     (HTAB allowed in values);
 *   - a field name that is not a token (so no whitespace before the colon), obs-fold lines;
 *   - Content-Length that is not 1*DIGIT, or given twice;
 *   - any Transfer-Encoding: chunked is answered 411 (send a Content-Length: every client
 *     of ours does), anything else 400;
 *   - a head line longer than H1_MAX_LINE, or more than H1_MAX_FIELDS fields.
 * It also follows the framing (head, Content-Length body, next head), so that pipelined and
 * keep-alive requests are each checked, and tells its caller where each head and body ends
 * (the facade's deadlines hang on those). A reader that wants the fields themselves sets
 * on_line: each accepted line of a head (the request line, then each field) is handed over
 * once judged, the value trimmed of its optional whitespace.
 */
#ifndef P2A_H1SCAN_H
#define P2A_H1SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H1_MAX_LINE 8192
#define H1_MAX_FIELDS 100

enum h1_state { H1_IDLE, H1_HEAD, H1_BODY, H1_BAD };

enum h1_event {
    H1_MORE,      /* everything given was consumed; nothing ended */
    H1_HEAD_DONE, /* a head ended after *used bytes (body_left says what follows) */
    H1_BODY_DONE, /* a body ended after *used bytes */
    H1_REFUSED,   /* the request is refused: status and why */
};

/* name is NULL for the request line (then value is the whole line). The pointers are into
 * the scanner's line buffer: copy what you keep. */
typedef void (*h1_line_cb)(void *arg, const char *name, size_t nlen, const char *value,
                           size_t vlen);

struct h1scan {
    h1_line_cb on_line; /* optional; set after h1scan_init() */
    void *arg;
    enum h1_state state;
    size_t line_len;
    bool line_cr; /* the line so far ends with CR */
    int lines;    /* of this head, the request line included */
    int cl_count;
    bool cl_bad, te_chunked, te_other;
    uint64_t cl;
    uint64_t body_left;
    int status;      /* with H1_REFUSED: 400, 411 or 431 */
    const char *why; /* with H1_REFUSED: a constant sentence */
    char line[H1_MAX_LINE];
};

void h1scan_init(struct h1scan *s);
/* Reads up to n bytes of p; *used says how many were read before the event returned. */
enum h1_event h1scan_feed(struct h1scan *s, const unsigned char *p, size_t n, size_t *used);

/* Whether s is an RFC 9110 token (a method, a field name): one or more tchar. */
bool h1scan_token(const char *s);

#endif
