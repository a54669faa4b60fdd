/* h1scan.c -- see h1scan.h. A line at a time: bytes are copied into the line buffer up to
 * LF, and each complete line is judged on its own. */
#include "h1scan.h"

#include <string.h>
#include <strings.h>

void h1scan_init(struct h1scan *s)
{
    memset(s, 0, sizeof(*s));
    s->state = H1_IDLE;
}

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

bool h1scan_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!is_tchar((unsigned char)*s))
            return false;
    return true;
}

static enum h1_event refuse(struct h1scan *s, int status, const char *why)
{
    s->state = H1_BAD;
    s->status = status;
    s->why = why;
    return H1_REFUSED;
}

static bool name_is(const char *line, size_t nlen, const char *want)
{
    return strlen(want) == nlen && strncasecmp(line, want, nlen) == 0;
}

/* One field line (without CRLF): name ":" OWS value OWS. */
static enum h1_event field(struct h1scan *s, const char *line, size_t len)
{
    if (line[0] == ' ' || line[0] == '\t')
        return refuse(s, 400, "folded header lines are not accepted");
    size_t n = 0;
    while (n < len && line[n] != ':') {
        if (!is_tchar((unsigned char)line[n]))
            return refuse(s, 400,
                          "a header name has a character that is not allowed "
                          "(whitespace before the colon?)");
        n++;
    }
    if (n == len || n == 0)
        return refuse(s, 400, "a header line has no name or no colon");
    for (size_t i = n + 1; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return refuse(s, 400, "a header value has a control character");
    }
    const char *v = line + n + 1;
    size_t vlen = len - n - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    if (name_is(line, n, "content-length")) {
        s->cl_count++;
        uint64_t x = 0;
        bool ok = vlen > 0 && vlen <= 15;
        for (size_t i = 0; ok && i < vlen; i++) {
            ok = v[i] >= '0' && v[i] <= '9';
            x = x * 10 + (uint64_t)(v[i] - '0');
        }
        s->cl_bad = s->cl_bad || !ok;
        s->cl = x;
    } else if (name_is(line, n, "transfer-encoding")) {
        if (vlen == 7 && strncasecmp(v, "chunked", 7) == 0)
            s->te_chunked = true;
        else
            s->te_other = true;
    }
    if (s->on_line != NULL)
        s->on_line(s->arg, line, n, v, vlen);
    return H1_MORE;
}

/* A whole line (CR LF stripped). */
static enum h1_event line_done(struct h1scan *s)
{
    const char *line = s->line;
    size_t len = s->line_len;
    if (s->lines == 0 && len == 0)
        return H1_MORE; /* an empty line before a request: RFC 9112 2.2 lets us skip it */
    if (len == 0) {     /* end of the head */
        if (s->cl_count > 1)
            return refuse(s, 400, "Content-Length is given more than once");
        if (s->cl_bad)
            return refuse(s, 400, "Content-Length is not a number");
        if (s->te_other)
            return refuse(s, 400, "unknown Transfer-Encoding");
        if (s->te_chunked)
            return refuse(s, 411, "send the body with a Content-Length, not chunked");
        s->body_left = s->cl_count == 1 ? s->cl : 0;
        s->state = s->body_left > 0 ? H1_BODY : H1_IDLE;
        s->lines = 0;
        s->cl_count = 0;
        s->cl = 0;
        return H1_HEAD_DONE;
    }
    if (++s->lines > H1_MAX_FIELDS + 1)
        return refuse(s, 431, "too many header fields");
    if (s->lines == 1) {
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)line[i];
            if (c < 0x20 || c == 0x7f)
                return refuse(s, 400, "the request line has a control character");
        }
        if (s->on_line != NULL)
            s->on_line(s->arg, NULL, 0, line, len);
        return H1_MORE;
    }
    return field(s, line, len);
}

enum h1_event h1scan_feed(struct h1scan *s, const unsigned char *p, size_t n, size_t *used)
{
    size_t i = 0;
    enum h1_event ev = H1_MORE;
    while (i < n && ev == H1_MORE) {
        if (s->state == H1_BAD) {
            ev = H1_REFUSED;
            break;
        }
        if (s->state == H1_BODY) {
            size_t take = n - i < s->body_left ? n - i : (size_t)s->body_left;
            i += take;
            s->body_left -= take;
            if (s->body_left == 0) {
                s->state = H1_IDLE;
                ev = H1_BODY_DONE;
            }
            continue;
        }
        s->state = H1_HEAD;
        unsigned char c = p[i++];
        if (c == '\n') {
            if (s->line_cr)
                s->line_len--;
            ev = line_done(s);
            s->line_len = 0;
            s->line_cr = false;
            if (ev == H1_MORE && s->lines == 0 && s->state == H1_HEAD)
                s->state = H1_IDLE; /* only skipped empty lines so far */
            continue;
        }
        if (s->line_cr) /* a CR not followed by LF */
            return *used = i, refuse(s, 400, "a bare CR in the request head");
        if (s->line_len == H1_MAX_LINE)
            return *used = i, refuse(s, 431, "a request head line is too long");
        s->line[s->line_len++] = (char)c;
        s->line_cr = c == '\r';
    }
    *used = i;
    return ev;
}
