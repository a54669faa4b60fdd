/* gateway.c -- see gateway.h. */
#include "gateway.h"

#include <string.h>
#include <strings.h>

#include "h1scan.h"
#include "url.h"

enum attr { A_METHOD, A_HOST, A_HOST_HDR, A_URI, A_URL };

/* The names the rule reads, and what each names. */
static const struct {
    const char *name;
    enum attr attr;
} names[] = {
    {"x-forwarded-method", A_METHOD}, {"x-original-method", A_METHOD},
    {"x-forwarded-host", A_HOST},     {"host", A_HOST_HDR},
    {"x-forwarded-uri", A_URI},       {"x-original-uri", A_URI},
    {"x-original-url", A_URL},
};

void gateway_attrs_reset(struct gateway_attrs *a)
{
    a->method[0] = a->host[0] = a->host_hdr[0] = a->uri[0] = '\0';
    a->seen_method = a->seen_host = a->seen_host_hdr = a->seen_uri = 0;
    a->why = NULL;
    a->too_long = false;
}

static void keep(struct gateway_attrs *a, char *dst, size_t cap, const char *v, size_t n)
{
    if (n >= cap) {
        a->too_long = true;
        n = 0;
    }
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static void refuse(struct gateway_attrs *a, const char *why)
{
    if (a->why == NULL)
        a->why = why;
}

bool gateway_header(struct gateway_attrs *a, const char *name, size_t nlen, const char *v,
                    size_t vlen)
{
    size_t i = 0;
    while (i < sizeof(names) / sizeof(names[0]) &&
           !(strlen(names[i].name) == nlen && strncasecmp(name, names[i].name, nlen) == 0))
        i++;
    if (i == sizeof(names) / sizeof(names[0]))
        return false;
    enum attr at = names[i].attr;
    unsigned char *seen = at == A_METHOD     ? &a->seen_method
                          : at == A_HOST     ? &a->seen_host
                          : at == A_HOST_HDR ? &a->seen_host_hdr
                                             : &a->seen_uri;
    if (*seen > 0)
        refuse(a, at == A_METHOD     ? "the method is named twice (X-Forwarded-Method, "
                                       "X-Original-Method: send one, once)"
                  : at == A_HOST     ? "X-Forwarded-Host is sent twice"
                  : at == A_HOST_HDR ? "Host is sent twice"
                                     : "the URI is named twice (X-Forwarded-Uri, X-Original-URI, "
                                       "X-Original-URL: send one, once)");
    *seen = 1;
    if (vlen == 0 && at != A_HOST_HDR)
        refuse(a, "a forwarded method, host or URI header is empty");
    if (at == A_METHOD) {
        keep(a, a->method, sizeof(a->method), v, vlen);
    } else if (at == A_HOST) {
        keep(a, a->host, sizeof(a->host), v, vlen);
    } else if (at == A_HOST_HDR) {
        keep(a, a->host_hdr, sizeof(a->host_hdr), v, vlen);
    } else if (at == A_URI) {
        keep(a, a->uri, sizeof(a->uri), v, vlen);
    } else { /* X-Original-URL: scheme://authority/path?query; only the path is read */
        keep(a, a->uri, sizeof(a->uri), v, vlen);
        struct url_parts u;
        if (!url_split(a->uri, &u) || !u.has_authority)
            refuse(a, "X-Original-URL must be an absolute URL");
        else
            memmove(a->uri, u.rest, strlen(u.rest) + 1);
    }
    return true;
}

/* One host: no list ("a, b" is what a proxy appending to the header makes), no whitespace,
 * no control byte. */
static bool one_host(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= 0x20 || *s == ',' || *s == 0x7f || *s == '/')
            return false;
    return true;
}

enum gateway_verdict gateway_judge(const struct p2a_config *cfg, const char *method,
                                   const char *host, const char *target, const char **resource,
                                   const char **why)
{
    *resource = NULL;
    if (method == NULL || !h1scan_token(method))
        return *why = "the method is not an HTTP method", GW_REFUSE;
    if (host != NULL && host[0] != '\0' && !one_host(host))
        return *why = "the host must be one host[:port]", GW_REFUSE;
    if (strcmp(method, "OPTIONS") == 0 && cfg->fwd_allow_options)
        return GW_PREFLIGHT;
    char path[GATEWAY_URI_MAX];
    if (!url_path_normalize(target != NULL && target[0] != '\0' ? target : "/", path, sizeof(path),
                            why))
        return GW_REFUSE;
    *resource = config_resource_at(cfg, host != NULL && host[0] != '\0' ? host : NULL, path);
    return GW_JUDGE;
}

enum gateway_verdict gateway_judge_headers(const struct p2a_config *cfg,
                                           const struct gateway_attrs *a, const char *line_method,
                                           const char *line_path, const char **resource,
                                           const char **why)
{
    *resource = NULL;
    if (a->why != NULL)
        return *why = a->why, GW_REFUSE;
    if ((a->seen_method || a->seen_host || a->seen_uri) && line_path != NULL &&
        line_path[0] != '\0')
        return *why = "a path after /forward-auth (Envoy's shape) names the request itself: "
                      "X-Forwarded-* and X-Original-* are refused beside it (gateways that "
                      "send them ask /forward-auth itself)",
               GW_REFUSE;
    return gateway_judge(cfg, a->seen_method ? a->method : line_method,
                         a->seen_host ? a->host : a->host_hdr, a->seen_uri ? a->uri : line_path,
                         resource, why);
}
