/* fetch.c -- see fetch.h.
 *
 * DESIGN
 * ------
 * The pattern of libcurl's multi socket API on libevent: curl tells us which sockets to
 * watch (on_socket: one persistent event per socket, remade when the interest changes) and
 * when to wake it (on_timer: one timer); we hand readiness and timeouts back with
 * curl_multi_socket_action() and collect finished transfers with curl_multi_info_read().
 * Name resolution is libcurl's threaded resolver: a lookup never blocks the loop.
 *
 * The guards live in the transfer's options and callbacks: the socket is opened by
 * on_open(), which sees the address curl is about to connect to and refuses it unless it is
 * public; on_body() stops a body past max_bytes; on_header() reads Cache-Control.
 */
#include "fetch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/crypto.h>

#include "log.h"
#include "netaddr.h"
#include "url.h"
#include "xalloc.h"

#define HOST_MAX 256

struct fetch_job {
    LIST_ENTRY(fetch_job) link;
    struct fetcher *f;
    CURL *easy;
    struct curl_slist *headers;
    fetch_cb cb;
    void *arg;
    char *body;
    size_t len;
    bool too_big;
    const char *refused; /* why on_open() refused the address */
    bool http;           /* an http:// URL (operator_trusted only): loopback or nothing */
    bool post;
    int64_t max_age_s;
    char host[HOST_MAX];         /* the URL's host, lower case: FETCH_MAX_PER_HOST */
    char requester[NETADDR_MAX]; /* "" for none: FETCH_MAX_PER_REQUESTER */
};

struct fetcher {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct fetch_limits lim;
    char *ca_file;
    int running;
    bool closing;
    size_t njobs;
    LIST_HEAD(, fetch_job) jobs;
};

void fetch_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- guards -------------------------------------------------------------------------------- */

static curl_socket_t on_open(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct fetch_job *j = clientp;
    char ip[NETADDR_MAX] = "";
    if (a->family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)&a->addr)->sin_addr, ip,
                  sizeof(ip));
    else if (a->family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)&a->addr)->sin6_addr, ip,
                  sizeof(ip));
    if (purpose != CURLSOCKTYPE_IPCXN) {
        j->refused = "the document's host could not be reached";
        return CURL_SOCKET_BAD;
    }
    if (j->f->lim.operator_trusted && j->http && !netaddr_is_loopback(ip)) {
        j->refused = "an http:// URL is fetched only from a loopback address";
        return CURL_SOCKET_BAD;
    }
    if (!j->f->lim.operator_trusted && !netaddr_is_public(ip, j->f->lim.allow_loopback)) {
        j->refused = "the document's host is a private, loopback, link-local or reserved "
                     "address";
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
    struct fetch_job *j = userp;
    size_t len = size * n;
    if (j->len + len > j->f->lim.max_bytes) {
        j->too_big = true;
        return 0; /* stops the transfer (CURLE_WRITE_ERROR) */
    }
    if (j->body == NULL)
        j->body = xmalloc(j->f->lim.max_bytes + 1);
    memcpy(j->body + j->len, data, len);
    j->len += len;
    j->body[j->len] = '\0';
    return len;
}

/* Cache-Control: max-age, and no-store / no-cache (nothing to keep). */
static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
    struct fetch_job *j = userp;
    size_t len = size * n;
    static const char name[] = "cache-control:";
    if (len <= sizeof(name) - 1 || strncasecmp(data, name, sizeof(name) - 1) != 0)
        return len;
    char v[256];
    size_t vl = len - (sizeof(name) - 1) < sizeof(v) - 1 ? len - (sizeof(name) - 1) : sizeof(v) - 1;
    memcpy(v, data + sizeof(name) - 1, vl);
    v[vl] = '\0';
    for (char *p = v; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    if (strstr(v, "no-store") != NULL || strstr(v, "no-cache") != NULL) {
        j->max_age_s = 0;
        return len;
    }
    const char *m = strstr(v, "max-age=");
    if (m != NULL && j->max_age_s != 0)
        j->max_age_s = strtoll(m + 8, NULL, 10);
    return len;
}

static bool json_type(const char *ctype)
{
    if (ctype == NULL)
        return false;
    size_t n = strcspn(ctype, ";");
    while (n > 0 && ctype[n - 1] == ' ')
        n--;
    return (n == 16 && strncasecmp(ctype, "application/json", 16) == 0) ||
           (n > 17 && strncasecmp(ctype, "application/", 12) == 0 &&
            strncasecmp(ctype + n - 5, "+json", 5) == 0);
}

/* ---- transfers ---------------------------------------------------------------------------- */

static void job_free(struct fetch_job *j)
{
    LIST_REMOVE(j, link);
    j->f->njobs--;
    curl_multi_remove_handle(j->f->multi, j->easy);
    curl_easy_cleanup(j->easy);
    curl_slist_free_all(j->headers);
    free(j->body);
    free(j);
}

static const char *why_failed(struct fetch_job *j, CURLcode rc)
{
    if (j->refused != NULL)
        return j->refused;
    if (j->too_big)
        return "the document is larger than the limit";
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return "the document's host did not answer in time";
    case CURLE_UNSUPPORTED_PROTOCOL:
        return "only https documents are fetched";
    case CURLE_COULDNT_RESOLVE_HOST:
        return "the document's host name does not resolve";
    case CURLE_COULDNT_CONNECT:
        return "the document's host refused the connection";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CACERT_BADFILE:
        return "the document's host has no valid TLS certificate";
    case CURLE_FILESIZE_EXCEEDED:
        return "the document is larger than the limit";
    default:
        return "the document could not be fetched";
    }
}

static void job_done(struct fetch_job *j, CURLcode rc)
{
    struct fetch_result r = {.max_age_s = j->max_age_s};
    long status = 0;
    char *ctype = NULL;
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(j->easy, CURLINFO_CONTENT_TYPE, &ctype);
    r.status = status;
    if (rc != CURLE_OK)
        r.why = why_failed(j, rc);
    else if (status >= 300 && status < 400)
        r.why = "the document's URL redirects (redirects are not followed)";
    else if (!json_type(ctype))
        r.why = status != 200 ? "the document's URL did not answer 200"
                              : "the document is not served as application/json";
    else if (status != 200)
        r.why = "the document's URL did not answer 200";
    if ((r.why == NULL || (rc == CURLE_OK && status != 200)) && json_type(ctype))
        r.body = j->body ? j->body : "", r.len = j->len;
    fetch_cb cb = j->cb;
    void *arg = j->arg;
    if (r.why != NULL) {
        char *url = NULL;
        curl_easy_getinfo(j->easy, CURLINFO_EFFECTIVE_URL, &url);
        log_info("fetch.failed", "%s %s: %s (curl %d, HTTP %ld)", j->post ? "POST" : "GET",
                 url ? url : "?", r.why, (int)rc, status);
    }
    cb(arg, &r);
    job_free(j);
}

static void check_done(struct fetcher *f)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(f->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct fetch_job *j = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        job_done(j, m->data.result);
    }
}

/* ---- curl on libevent --------------------------------------------------------------------- */

static void on_event(evutil_socket_t fd, short kind, void *arg)
{
    struct fetcher *f = arg;
    int action = (kind & EV_READ ? CURL_CSELECT_IN : 0) | (kind & EV_WRITE ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(f->multi, fd, action, &f->running);
    check_done(f);
    /* no transfer left: no timer -- unless a callback in check_done() started one, whose
     * first timer libcurl has just set */
    if (f->running <= 0 && f->njobs == 0)
        evtimer_del(f->timer);
}

static void on_timeout(evutil_socket_t fd, short kind, void *arg)
{
    (void)fd, (void)kind;
    struct fetcher *f = arg;
    curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &f->running);
    check_done(f);
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    struct fetcher *f = userp;
    struct event *ev = socketp;
    if (ev != NULL) {
        event_free(ev);
        curl_multi_assign(f->multi, s, NULL);
    }
    if (what == CURL_POLL_REMOVE)
        return 0;
    short kind = (short)(EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) |
                         (what & CURL_POLL_OUT ? EV_WRITE : 0));
    ev = event_new(f->base, s, kind, on_event, f);
    if (ev == NULL || event_add(ev, NULL) != 0) {
        if (ev != NULL)
            event_free(ev);
        return -1;
    }
    curl_multi_assign(f->multi, s, ev);
    return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    struct fetcher *f = userp;
    if (timeout_ms < 0) {
        evtimer_del(f->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    return evtimer_add(f->timer, &tv);
}

/* ---- life --------------------------------------------------------------------------------- */

struct fetcher *fetcher_new(struct event_base *base, const struct fetch_limits *lim)
{
    struct fetcher *f = xcalloc(1, sizeof(*f));
    f->base = base;
    f->lim = *lim;
    f->ca_file = lim->ca_file ? xstrdup(lim->ca_file) : NULL;
    f->lim.ca_file = f->ca_file;
    LIST_INIT(&f->jobs);
    f->multi = curl_multi_init();
    f->timer = evtimer_new(base, on_timeout, f);
    if (f->multi == NULL || f->timer == NULL) {
        fetcher_free(f);
        return NULL;
    }
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
    return f;
}

void fetcher_free(struct fetcher *f)
{
    if (f == NULL)
        return;
    f->closing = true; /* a callback below cannot start another fetch */
    struct fetch_job *next;
    for (struct fetch_job *j = LIST_FIRST(&f->jobs); j != NULL; j = next) {
        next = LIST_NEXT(j, link);
        struct fetch_result r = {.why = "shutting down", .max_age_s = -1};
        j->cb(j->arg, &r);
        job_free(j);
    }
    if (f->multi != NULL)
        curl_multi_cleanup(f->multi); /* removes the sockets' events through on_socket */
    if (f->timer != NULL)
        event_free(f->timer);
    free(f->ca_file);
    free(f);
}

p2a_err fetch_get(struct fetcher *f, const char *url, const char *requester, fetch_cb cb, void *arg,
                  const char **why)
{
    struct fetch_request rq = {.url = url, .requester = requester};
    return fetch_start(f, &rq, cb, arg, why);
}

/* Why a fetch of host for requester may not start now, or NULL: the bounds on transfers in
 * flight. At most FETCH_MAX_IN_FLIGHT jobs to look through. */
static const char *busy(const struct fetcher *f, const char *host, const char *requester)
{
    if (f->njobs >= FETCH_MAX_IN_FLIGHT || f->closing)
        return "too many documents are being fetched; try again in a moment";
    if (f->lim.operator_trusted)
        return NULL;
    size_t same_host = 0, same_requester = 0;
    const struct fetch_job *j;
    LIST_FOREACH(j, &f->jobs, link)
    {
        same_host += strcmp(j->host, host) == 0;
        same_requester += requester[0] != '\0' && strcmp(j->requester, requester) == 0;
    }
    if (same_host >= FETCH_MAX_PER_HOST)
        return "too many documents are being fetched from this host; try again in a moment";
    if (same_requester >= FETCH_MAX_PER_REQUESTER)
        return "too many documents are being fetched for this address; try again in a moment";
    return NULL;
}

p2a_err fetch_start(struct fetcher *f, const struct fetch_request *rq, fetch_cb cb, void *arg,
                    const char **why)
{
    const char *url = rq->url;
    bool http = f->lim.operator_trusted && strncasecmp(url, "http://", 7) == 0;
    if (strncasecmp(url, "https://", 8) != 0 && !http)
        return P2A_ERR_INVALID;
    struct url_parts u;
    if (!url_split(url, &u) || !u.has_authority || u.host_len == 0 || u.host_len >= HOST_MAX)
        return P2A_ERR_INVALID;
    char host[HOST_MAX], requester[NETADDR_MAX] = "";
    for (size_t i = 0; i < u.host_len; i++)
        host[i] = (char)(u.host[i] >= 'A' && u.host[i] <= 'Z' ? u.host[i] + 32 : u.host[i]);
    host[u.host_len] = '\0';
    if (rq->requester != NULL)
        snprintf(requester, sizeof(requester), "%s", rq->requester);
    const char *no = busy(f, host, requester);
    if (no != NULL) {
        if (why != NULL)
            *why = no;
        return P2A_ERR_UNAVAILABLE;
    }
    struct fetch_job *j = xcalloc(1, sizeof(*j));
    memcpy(j->host, host, sizeof(host));
    memcpy(j->requester, requester, sizeof(requester));
    j->f = f;
    j->cb = cb;
    j->arg = arg;
    j->max_age_s = -1;
    j->http = http;
    j->post = rq->form != NULL;
    j->easy = curl_easy_init();
    if (j->easy == NULL) {
        free(j);
        if (why != NULL)
            *why = "the document could not be fetched; try again in a moment";
        return P2A_ERR_UNAVAILABLE;
    }
    j->headers = curl_slist_append(NULL, "Accept: application/json");
    if (rq->authorization != NULL) {
        char h[1024];
        snprintf(h, sizeof(h), "Authorization: %s", rq->authorization);
        j->headers = curl_slist_append(j->headers, h);
        OPENSSL_cleanse(h, sizeof(h));
    }
    CURL *e = j->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, http ? "http" : "https");
    if (rq->form != NULL)
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, rq->form);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, f->lim.connect_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, f->lim.total_ms);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)f->lim.max_bytes);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, j);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "pipe2-auth");
    curl_easy_setopt(e, CURLOPT_PRIVATE, j);
    if (f->lim.ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, f->lim.ca_file);
    LIST_INSERT_HEAD(&f->jobs, j, link);
    f->njobs++;
    if (curl_multi_add_handle(f->multi, e) != CURLM_OK) {
        job_free(j);
        if (why != NULL)
            *why = "the document could not be fetched; try again in a moment";
        return P2A_ERR_UNAVAILABLE;
    }
    return P2A_OK;
}
