/* authz_http.c -- see authz_http.h.
 *
 * A connection reads into in[], hands the bytes to its h1scan (which keeps the fields we
 * need through on_line), and when a request has ended (head, and body if any, all in in[])
 * answers it into out[] and moves what follows to the front of in[]. Answers are written
 * at once; what the socket does not take waits in out[] with reading paused, so a client
 * that sends without reading holds one buffer set, never more.
 */
#include "authz_http.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "config.h"
#include "connguard.h"
#include "gateway.h"
#include "h1scan.h"
#include "introspect.h"
#include "oauth.h"
#include "service_internal.h"
#include "svckeys.h"
#include "xalloc.h"

#define OUT_MAX (INTROSPECT_JSON_MAX + WWW_AUTH_MAX + 1024)
#define ANSWER_MAX (OUT_MAX / 2) /* room kept free before answering the next request */
#define AUTH_MAX (TOKEN_MAX_LEN + 16)
#define URI_MAX GATEWAY_URI_MAX
#define PREFIX "/forward-auth"
#define LINGER_S 2

/* The fields of the request being read; strings NUL-terminated, "" when absent. */
struct authz_req {
    char method[16];
    char target[URI_MAX];
    char authz[AUTH_MAX];
    struct gateway_attrs gw; /* the original method, host and URI (core/gateway.h) */
    bool http10, conn_close, conn_keep_alive;
    bool too_long; /* a field we need did not fit: 431 */
    bool bad;      /* a request line we cannot read, a second Authorization: 400 */
};

struct authz_conn {
    LIST_ENTRY(authz_conn) link;
    struct authz_env *env;
    evutil_socket_t fd;
    struct event *rd, *wr, *timer;
    char addr[NETADDR_MAX];
    bool closing;   /* close once out[] is written */
    bool lingering; /* written and shut for writing: reading what the client still sends */
    bool timer_req; /* the timer is a request's deadline (else the idle one) */
    size_t in_len, scanned, head_end;
    size_t out_len, out_off;
    /* the last Authorization that named a known service key (RFC 7662 callers): the next
     * request with the same bytes does not hash it again (longer ones are no key) */
    char known_auth[SVCKEYS_MAX_KEY_LEN + 16];
    const struct svc_key *known_key;
    struct h1scan scan;
    struct authz_req req;
    unsigned char in[AUTHZ_IN_MAX];
    char out[OUT_MAX];
};

/* PIPE2_AUTH_FORWARD_AUTH_MAX_CONNECTIONS's help says "about 60 KiB each" */
_Static_assert(sizeof(struct authz_conn) < 64 * 1024, "a forward-auth connection grew");

static void conn_free(struct authz_conn *c)
{
    struct authz_env *env = c->env;
    LIST_REMOVE(c, link);
    env->nconns--;
    event_free(c->rd);
    event_free(c->wr);
    event_free(c->timer);
    evutil_closesocket(c->fd);
    connguard_release(env->guard, c->addr);
    free(c);
    if (env->draining && env->nconns == 0 && env->on_drained != NULL)
        env->on_drained(env->drained_arg);
}

/* ---- reading the fields ---------------------------------------------------------------- */

static void keep(char *dst, size_t cap, const char *v, size_t n, bool *too_long)
{
    if (n >= cap) {
        *too_long = true;
        n = 0;
    }
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static bool name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

static void request_line(struct authz_req *q, const char *line, size_t len)
{
    const char *sp1 = memchr(line, ' ', len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line)) : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == line || sp2 == sp1 + 1) {
        q->bad = true;
        return;
    }
    const char *ver = sp2 + 1;
    size_t vlen = len - (size_t)(ver - line);
    if (vlen == 8 && memcmp(ver, "HTTP/1.0", 8) == 0)
        q->http10 = true;
    else if (!(vlen == 8 && memcmp(ver, "HTTP/1.1", 8) == 0))
        q->bad = true;
    keep(q->method, sizeof(q->method), line, (size_t)(sp1 - line), &q->too_long);
    keep(q->target, sizeof(q->target), sp1 + 1, (size_t)(sp2 - sp1 - 1), &q->too_long);
}

static void on_line(void *arg, const char *name, size_t n, const char *v, size_t vlen)
{
    struct authz_req *q = arg;
    if (name == NULL)
        request_line(q, v, vlen);
    else if (name_is(name, n, "authorization")) {
        q->bad = q->bad || q->authz[0] != '\0';
        keep(q->authz, sizeof(q->authz), v, vlen, &q->too_long);
    } else if (gateway_header(&q->gw, name, n, v, vlen)) {
        q->too_long = q->too_long || q->gw.too_long;
    } else if (name_is(name, n, "connection")) {
        q->conn_close = q->conn_close || (vlen == 5 && strncasecmp(v, "close", 5) == 0);
        q->conn_keep_alive =
            q->conn_keep_alive || (vlen == 10 && strncasecmp(v, "keep-alive", 10) == 0);
    }
}

static void request_reset(struct authz_conn *c)
{
    struct authz_req *q = &c->req;
    q->method[0] = q->target[0] = q->authz[0] = '\0';
    gateway_attrs_reset(&q->gw);
    q->http10 = q->conn_close = q->conn_keep_alive = q->too_long = q->bad = false;
}

/* ---- writing answers ------------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

/* A header value goes out only when it cannot end the line (our own values always pass). */
static bool header_safe(const char *v)
{
    for (; *v != '\0'; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return false;
    return true;
}

struct answer {
    int status;
    const struct id_header *headers;
    size_t nheaders;
    const char *type; /* NULL: no body */
    const char *body;
};

static void put(struct authz_conn *c, const struct answer *a)
{
    struct authz_req *q = &c->req;
    bool keep_alive = !c->closing && !c->env->draining && !q->conn_close &&
                      (!q->http10 || q->conn_keep_alive) && a->status != 400 && a->status != 413 &&
                      a->status != 431;
    if (!keep_alive)
        c->closing = true;
    size_t blen = a->body != NULL ? strlen(a->body) : 0;
    char *o = c->out + c->out_len;
    size_t room = OUT_MAX - c->out_len;
    int n =
        snprintf(o, room, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n%s",
                 a->status, reason(a->status), blen, keep_alive ? "" : "Connection: close\r\n");
    for (size_t i = 0; i < a->nheaders && n > 0 && (size_t)n < room; i++)
        if (header_safe(a->headers[i].value))
            n += snprintf(o + n, room - (size_t)n, "%s: %s\r\n", a->headers[i].name,
                          a->headers[i].value);
    if (n > 0 && (size_t)n < room && a->type != NULL)
        n += snprintf(o + n, room - (size_t)n, "Content-Type: %s\r\n", a->type);
    if (n > 0 && (size_t)n < room)
        n += snprintf(o + n, room - (size_t)n, "\r\n");
    bool head = strcmp(q->method, "HEAD") == 0;
    if (n < 0 || (size_t)n + (head ? 0 : blen) >= room) { /* cannot happen: ANSWER_MAX kept */
        n = snprintf(o, room,
                     "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n");
        c->closing = true;
    } else if (!head && blen > 0) {
        memcpy(o + n, a->body, blen);
        n += (int)blen;
    }
    c->out_len += (size_t)n;
}

/* An RFC 6749-shaped error: {"error", "error_description"} (desc may quote the client). */
static void put_error(struct authz_conn *c, int status, const char *error, const char *desc)
{
    char body[OAUTH_ERROR_JSON_MAX];
    oauth_error_json(error, desc, body);
    struct answer a = {.status = status, .type = "application/json", .body = body};
    put(c, &a);
}

/* ---- the endpoints --------------------------------------------------------------------- */

static void forward_auth(struct authz_conn *c, const char *rest)
{
    struct authz_req *q = &c->req;
    const struct p2a_config *cfg = c->env->svc->shared->cfg;
    const char *resource = NULL, *why = NULL;
    enum gateway_verdict gv = gateway_judge_headers(cfg, &q->gw, q->method, rest, &resource, &why);
    if (gv == GW_REFUSE) { /* X-Auth-Denial: the body, for gateways that keep only headers */
        char err[OAUTH_ERROR_JSON_MAX];
        oauth_error_json("invalid_request", why, err);
        struct id_header h[1] = {{"X-Auth-Denial", err}};
        struct answer a = {
            .status = 400, .headers = h, .nheaders = 1, .type = "application/json", .body = err};
        put(c, &a);
        return;
    }
    if (gv == GW_PREFLIGHT) { /* PIPE2_AUTH_FORWARD_AUTH_ALLOW_OPTIONS: the MCP server answers */
        struct answer a = {.status = 200};
        put(c, &a);
        return;
    }
    char body[SVC_DENIAL_MAX];
    if (resource == NULL) {
        introspect_denial_json(TV_WRONG_AUDIENCE, false, body, sizeof(body));
        struct id_header h[1] = {{"X-Auth-Denial", body}};
        struct answer a = {
            .status = 403, .headers = h, .nheaders = 1, .type = "application/json", .body = body};
        put(c, &a);
        return;
    }
    size_t tlen = 0;
    const char *token = oauth_bearer(q->authz[0] ? q->authz : NULL, &tlen);
    struct introspector x = svc_introspector(c->env->svc);
    struct introspect_query iq = {
        .token = token ? token : "", .len = token ? tlen : 0, .resource = resource};
    struct introspection r;
    if (introspect(&x, &iq, clock_now(), &r) != P2A_OK) {
        put_error(c, 503, "temporarily_unavailable",
                  "revocation list is not in sync with Redis; refusing to answer");
    } else if (r.verdict == TV_ACTIVE) {
        char exp[24];
        struct id_header id[INTROSPECT_ID_HEADERS];
        introspect_identity(r.claims, exp, id);
        struct answer a = {.status = 200, .headers = id, .nheaders = INTROSPECT_ID_HEADERS};
        put(c, &a);
    } else {
        char www[WWW_AUTH_MAX];
        svc_www_authenticate(r.verdict, resource, cfg->resource_scopes, www, sizeof(www));
        introspect_denial_json(r.verdict, true, body, sizeof(body));
        /* X-Auth-Denial repeats the body for gateways that drop it (nginx auth_request) */
        struct id_header h[3] = {{"WWW-Authenticate", www},
                                 {"Access-Control-Expose-Headers", "WWW-Authenticate"},
                                 {"X-Auth-Denial", body}};
        struct answer a = {.status = introspect_denial_status(r.verdict, true),
                           .headers = h,
                           .nheaders = 3,
                           .type = "application/json",
                           .body = body};
        put(c, &a);
    }
    introspection_deinit(&r);
}

/* The caller's service key, or NULL after answering 401. */
static const struct svc_key *service_caller(struct authz_conn *c)
{
    struct authz_req *q = &c->req;
    if (c->known_key != NULL && strcmp(q->authz, c->known_auth) == 0)
        return c->known_key;
    size_t klen = 0;
    const char *key = oauth_bearer(q->authz[0] ? q->authz : NULL, &klen);
    const struct svc_key *k = NULL;
    if (key == NULL ||
        svckeys_check(c->env->svc->shared->svckeys, key, klen, &k) == SVC_ROLE_NONE) {
        put_error(c, 401, "invalid_client",
                  key == NULL ? "send an introspect service key as Authorization: Bearer"
                              : "unknown service key");
        return NULL;
    }
    size_t alen = strlen(q->authz);
    if (alen < sizeof(c->known_auth)) {
        memcpy(c->known_auth, q->authz, alen + 1);
        c->known_key = k;
    }
    return k;
}

static void rfc7662(struct authz_conn *c, const char *body, size_t len)
{
    if (strcmp(c->req.method, "POST") != 0) {
        struct id_header h[1] = {{"Allow", "POST"}};
        struct answer a = {.status = 405,
                           .headers = h,
                           .nheaders = 1,
                           .type = "application/json",
                           .body = "{\"error\":\"invalid_request\",\"error_description\":"
                                   "\"use POST with a form: token=...\"}"};
        put(c, &a);
        return;
    }
    const struct svc_key *caller = service_caller(c);
    if (caller == NULL)
        return;
    struct oauth_form f;
    if (oauth_form_parse(body, len, &f) != P2A_OK) {
        put_error(c, 400, "invalid_request", f.why);
        oauth_form_free(&f);
        return;
    }
    const char *tok = oauth_form_get(&f, "token");
    if (tok == NULL) {
        put_error(c, 400, "invalid_request", "token is required");
        oauth_form_free(&f);
        return;
    }
    struct introspector x = svc_introspector(c->env->svc);
    struct introspect_query iq = {.token = tok,
                                  .len = strlen(tok),
                                  .resource = oauth_form_get(&f, "resource"),
                                  .bound = caller->resources,
                                  .nbound = caller->nresources};
    char json[INTROSPECT_JSON_MAX];
    if (introspect_rfc7662(&x, &iq, NULL, clock_now(), json, sizeof(json)) != P2A_OK) {
        put_error(c, 503, "temporarily_unavailable",
                  "revocation list is not in sync with Redis; refusing to answer");
    } else {
        struct answer a = {.status = 200, .type = "application/json", .body = json};
        put(c, &a);
    }
    oauth_form_free(&f);
}

static void answer(struct authz_conn *c, const char *body, size_t len)
{
    struct authz_req *q = &c->req;
    if (q->bad) {
        c->closing = true;
        put_error(c, 400, "invalid_request", "malformed request line or a repeated Authorization");
        return;
    }
    if (q->too_long) {
        c->closing = true;
        put_error(c, 431, "invalid_request", "a header is longer than this listener keeps");
        return;
    }
    const char *t = q->target;
    size_t plen = strlen(PREFIX);
    if (strncmp(t, PREFIX, plen) == 0 && (t[plen] == '\0' || t[plen] == '/' || t[plen] == '?'))
        forward_auth(c, t[plen] == '/' ? t + plen : "");
    else if (strcmp(t, "/introspect") == 0)
        rfc7662(c, body, len);
    else
        put_error(c, 404, "not_found", "this listener serves /forward-auth and /introspect");
}

/* ---- the connection -------------------------------------------------------------------- */

static void arm_timer(struct authz_conn *c)
{
    bool mid_request = c->in_len > 0 || c->scan.state != H1_IDLE;
    if (mid_request && c->timer_req)
        return; /* a request's deadline runs from its first byte */
    struct timeval tv = {mid_request ? c->env->header_timeout_s : c->env->idle_timeout_s, 0};
    c->timer_req = mid_request;
    evtimer_add(c->timer, &tv);
}

/* The last answer is written: shut our side and read (and drop) what the client still sends
 * until it closes, for at most LINGER_S, so that unread bytes do not make the kernel reset
 * the connection before the client has read the answer. */
static void linger(struct authz_conn *c)
{
    c->lingering = true;
    shutdown(c->fd, SHUT_WR);
    event_del(c->wr);
    event_add(c->rd, NULL);
    struct timeval tv = {LINGER_S, 0};
    evtimer_add(c->timer, &tv);
}

/* Writes what out[] holds; false when the connection is gone or lingering. */
static bool flush(struct authz_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_del(c->rd);
            event_add(c->wr, NULL);
            return true;
        }
        if (n <= 0) {
            conn_free(c);
            return false;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    if (c->closing) {
        linger(c);
        return false;
    }
    event_del(c->wr);
    event_add(c->rd, NULL);
    return true;
}

/* Answers every request in[] holds whole, while out[] has room. */
static void serve(struct authz_conn *c)
{
    while (!c->closing && c->out_len <= OUT_MAX - ANSWER_MAX && c->scanned < c->in_len) {
        size_t used = 0;
        enum h1_event ev = h1scan_feed(&c->scan, c->in + c->scanned, c->in_len - c->scanned, &used);
        c->scanned += used;
        if (ev == H1_REFUSED) { /* the framing is lost: answer, then close */
            c->closing = true;
            put_error(c, c->scan.status, "invalid_request", c->scan.why);
            break;
        }
        if (ev == H1_HEAD_DONE) {
            c->head_end = c->scanned;
            if (c->scan.state == H1_BODY && c->scan.body_left > AUTHZ_IN_MAX - c->scanned) {
                c->closing = true;
                put_error(c, 413, "invalid_request", "the request is too large");
                break;
            }
            if (c->scan.state == H1_BODY)
                continue;
        }
        if (ev == H1_HEAD_DONE || ev == H1_BODY_DONE) {
            answer(c, (const char *)c->in + c->head_end, c->scanned - c->head_end);
            memmove(c->in, c->in + c->scanned, c->in_len - c->scanned);
            c->in_len -= c->scanned;
            c->scanned = c->head_end = 0;
            request_reset(c);
            c->timer_req = false;
        }
    }
    if (!c->closing && c->in_len == AUTHZ_IN_MAX && c->scanned == c->in_len) {
        c->closing = true;
        put_error(c, 431, "invalid_request", "the request is larger than 16 KiB");
    }
}

/* Answers, writes, and answers again what was held back while out[] was full. */
static void pump(struct authz_conn *c)
{
    for (;;) {
        serve(c);
        if (!flush(c))
            return;
        if (c->out_len > 0 || c->closing || c->in_len <= c->scanned)
            break;
    }
    arm_timer(c);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct authz_conn *c = arg;
    if (c->lingering) {
        char drop[4096];
        ssize_t n = recv(fd, drop, sizeof(drop), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            conn_free(c);
        return;
    }
    if (c->in_len == AUTHZ_IN_MAX) { /* cannot happen: serve() answers or refuses a full in[] */
        event_del(c->rd);
        return;
    }
    ssize_t n = recv(fd, c->in + c->in_len, AUTHZ_IN_MAX - c->in_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_free(c);
        return;
    }
    c->in_len += (size_t)n;
    pump(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct authz_conn *c = arg;
    if (flush(c) && c->out_len == 0)
        pump(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    conn_free(arg);
}

void authz_http_accept(struct authz_env *env, evutil_socket_t fd, const char *addr)
{
    if (env->draining || !connguard_admit(env->guard, addr)) {
        evutil_closesocket(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* nonblocking: the listener's */
    struct authz_conn *c = xmalloc(sizeof(*c));
    c->env = env;
    c->fd = fd;
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    c->closing = c->lingering = c->timer_req = false;
    c->in_len = c->scanned = c->head_end = c->out_len = c->out_off = 0;
    c->known_auth[0] = '\0';
    c->known_key = NULL;
    h1scan_init(&c->scan);
    c->scan.on_line = on_line;
    c->scan.arg = &c->req;
    request_reset(c);
    c->rd = event_new(env->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->wr = event_new(env->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
    c->timer = evtimer_new(env->base, on_timer, c);
    P2A_ASSERT(c->rd != NULL && c->wr != NULL && c->timer != NULL);
    LIST_INSERT_HEAD(&env->conns, c, link);
    env->nconns++;
    event_add(c->rd, NULL);
    arm_timer(c);
}

void authz_http_drain(struct authz_env *env)
{
    struct authz_conn *c = LIST_FIRST(&env->conns), *next;
    for (; c != NULL; c = next) { /* answers still to come go out with Connection: close */
        next = LIST_NEXT(c, link);
        if (c->lingering || (c->in_len == 0 && c->out_len == 0 && c->scan.state == H1_IDLE))
            conn_free(c);
    }
    env->draining = true;
    if (env->nconns == 0 && env->on_drained != NULL)
        env->on_drained(env->drained_arg);
}

void authz_http_close_all(struct authz_env *env)
{
    env->on_drained = NULL;
    while (!LIST_EMPTY(&env->conns))
        conn_free(LIST_FIRST(&env->conns)); // NOLINT(clang-analyzer-unix.Malloc): it unlinks itself
}
