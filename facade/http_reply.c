/* http_reply.c -- sending, counting and JSON errors for both HTTP routers (see http_reply.h). */
#include "http_reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "mbuf.h"
#include "oauth.h"
#include "xalloc.h"

static const int statuses[HTTP_STATUS_SLOTS] = {200, 201, 204, 302, 303, 400, 401,
                                                403, 404, 405, 429, 503, 0};

void http_count(uint64_t counts[HTTP_STATUS_SLOTS], int status)
{
    int i = 0;
    while (i < HTTP_STATUS_SLOTS - 1 && statuses[i] != status)
        i++;
    counts[i]++;
}

void http_counts_render(struct mbuf *out, const char *metric, const char *label, const char *value,
                        const uint64_t counts[HTTP_STATUS_SLOTS])
{
    for (int i = 0; i < HTTP_STATUS_SLOTS; i++) {
        if (counts[i] == 0)
            continue;
        char code[8];
        snprintf(code, sizeof(code), "%d", statuses[i]);
        mbuf_printf(out, "%s{%s=\"%s\",code=\"%s\"} %llu\n", metric, label, value,
                    statuses[i] ? code : "other", (unsigned long long)counts[i]);
    }
}

void http_send(struct evhttp_request *req, int status, const char *ctype, const char *body,
               size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (ctype != NULL)
        evhttp_add_header(h, "Content-Type", ctype);
    if (evhttp_find_header(h, "Cache-Control") == NULL) {
        evhttp_add_header(h, "Cache-Control", "no-store");
        evhttp_add_header(h, "Pragma", "no-cache");
    }
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    struct evbuffer *b = evbuffer_new();
    if (b != NULL && len > 0)
        evbuffer_add(b, body, len);
    evhttp_send_reply(req, status, NULL, b);
    if (b != NULL)
        evbuffer_free(b);
}

char *http_error_json(const char *error, const char *desc)
{
    char out[OAUTH_ERROR_JSON_MAX];
    oauth_error_json(error, desc, out);
    return xstrdup(out);
}

void http_send_error(struct evhttp_request *req, int status, const char *error, const char *desc)
{
    char *s = http_error_json(error, desc);
    http_send(req, status, "application/json", s, strlen(s));
    free(s);
}
