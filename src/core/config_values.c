/* config_values.c -- the settings whose values have a grammar of their own: host:port,
 * the Redis URL, the resource list, the gateway routes (and the lookup of a gateway's
 * request among them), the sentinels. Each reader fills the fields derived from its
 * setting, or says why not; config.c names the setting in the error. Main thread, once.
 */
#include "config_values.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strlist.h"
#include "token.h"
#include "url.h"
#include "xalloc.h"

p2a_err config_parse_hostport(const char *s, char **host, int *port, const char **why)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':') {
            *why = "expected [ipv6]:port";
            return P2A_ERR_INVALID;
        }
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            *why = "expected host:port";
            return P2A_ERR_INVALID;
        }
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen > 255) {
        *why = "missing or overlong host";
        return P2A_ERR_INVALID;
    }
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end != '\0' || p < 0 || p > 65535) {
        *why = "port must be a number from 0 to 65535";
        return P2A_ERR_INVALID;
    }
    *host = xstrndup(h, hlen);
    *port = (int)p;
    return P2A_OK;
}

/* redis://[[user]:password@]host[:port][/db] */
p2a_err config_parse_redis_url(struct p2a_config *cfg, const char **why)
{
    const char *s = cfg->redis_url;
    if (strncmp(s, "redis://", 8) != 0) {
        *why = "must start with redis://";
        return P2A_ERR_INVALID;
    }
    s += 8;
    const char *slash = strchr(s, '/');
    const char *at = strrchr(s, '@');
    if (at != NULL && slash != NULL && at > slash)
        at = NULL; /* an @ after the path is not userinfo */
    if (at != NULL) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        if (colon == NULL) {
            cfg->redis_password = xstrndup(s, (size_t)(at - s));
        } else {
            if (colon > s)
                cfg->redis_user = xstrndup(s, (size_t)(colon - s));
            cfg->redis_password = xstrndup(colon + 1, (size_t)(at - colon - 1));
        }
        s = at + 1;
    }
    size_t hplen = slash ? (size_t)(slash - s) : strlen(s);
    char *hp = xstrndup(s, hplen);
    if (strchr(hp, ':') == NULL) {
        cfg->redis_host = hp;
        cfg->redis_port = 6379;
    } else {
        p2a_err e = config_parse_hostport(hp, &cfg->redis_host, &cfg->redis_port, why);
        free(hp);
        if (e != P2A_OK)
            return e;
    }
    if (cfg->redis_host[0] == '\0') {
        *why = "missing host";
        return P2A_ERR_INVALID;
    }
    cfg->redis_db = 0;
    if (slash != NULL && slash[1] != '\0') {
        char *end;
        errno = 0;
        long db = strtol(slash + 1, &end, 10);
        if (errno || *end != '\0' || db < 0 || db > 1000) {
            *why = "database must be a number from 0 to 1000";
            return P2A_ERR_INVALID;
        }
        cfg->redis_db = (int)db;
    }
    return P2A_OK;
}

p2a_err config_parse_resources(struct p2a_config *cfg, const char **why)
{
    struct strlist it = strlist_of(cfg->resource_list, ",");
    while (strlist_next(&it)) {
        if (it.len > 2048) {
            *why = "overlong entry";
            return P2A_ERR_INVALID;
        }
        if (cfg->nresources == CONFIG_MAX_RESOURCES) {
            *why = "at most 16 resources";
            return P2A_ERR_INVALID;
        }
        char *r = xstrndup(it.item, it.len);
        cfg->resources[cfg->nresources++] = r;
        if (!url_is_http(r)) {
            *why = "each resource must be an http(s) URL without a fragment";
            return P2A_ERR_INVALID;
        }
    }
    if (it.empty > 0) {
        *why = "an empty entry";
        return P2A_ERR_INVALID;
    }
    if (cfg->nresources == 0) {
        *why = "at least one resource URL is required";
        return P2A_ERR_INVALID;
    }
    return P2A_OK;
}

const char *config_issuer_url_check(const char *url)
{
    struct url_parts u;
    if (strlen(url) > 512 || !url_is_http(url) || strpbrk(url, "?#") != NULL || !url_split(url, &u))
        return "must be an http(s) URL of at most 512 bytes, with no query or fragment";
    if (!url_scheme_is(&u, "https") && !url_host_is_loopback(&u))
        return "an http:// identity provider is accepted only on a loopback host; use https";
    return NULL;
}

p2a_err config_parse_id_jag_issuers(struct p2a_config *cfg, const char **why)
{
    struct strlist it = strlist_of(cfg->id_jag_issuer_list, ",");
    while (strlist_next(&it)) {
        if (cfg->nid_jag_issuers == CONFIG_MAX_ID_JAG_ISSUERS) {
            *why = "at most 8 issuers";
            return P2A_ERR_INVALID;
        }
        char *iss = xstrndup(it.item, it.len);
        cfg->id_jag_issuers[cfg->nid_jag_issuers++] = iss;
        if ((*why = config_issuer_url_check(iss)) != NULL)
            return P2A_ERR_INVALID;
    }
    return P2A_OK;
}

/* Without PIPE2_AUTH_FORWARD_AUTH_RESOURCES, each resource is its own route: its host and
 * its path (trailing slashes trimmed). Derived once here, not on every gateway request. */
static void routes_of_resources(struct p2a_config *cfg)
{
    for (size_t i = 0; i < cfg->nresources && cfg->nroutes < CONFIG_MAX_ROUTES; i++) {
        const char *r = cfg->resources[i], *authority = strstr(r, "://");
        size_t end = url_authority_end(r);
        if (authority == NULL || end == 0)
            continue;
        authority += 3;
        const char *path = url_path(r);
        size_t plen = strlen(path);
        while (plen > 0 && path[plen - 1] == '/')
            plen--;
        struct config_route *route = &cfg->routes[cfg->nroutes++];
        route->host = xstrndup(authority, (size_t)(r + end - authority));
        route->prefix = xstrndup(path, plen);
        route->resource = r;
    }
}

/* "host/path-prefix=resource, ..." into cfg->routes; each resource one that is configured. */
p2a_err config_parse_routes(struct p2a_config *cfg, const char **why)
{
    if (cfg->forward_auth_resources == NULL || cfg->forward_auth_resources[0] == '\0') {
        routes_of_resources(cfg);
        return P2A_OK;
    }
    cfg->routes_given = true;
    p2a_err rc = P2A_OK;
    for (struct strlist it = strlist_of(cfg->forward_auth_resources, ",");
         rc == P2A_OK && strlist_next(&it);) {
        char *t = xstrndup(it.item, it.len);
        char *eq = strchr(t, '='), *slash = strchr(t, '/');
        const char *res = NULL;
        for (size_t i = 0; eq != NULL && i < cfg->nresources && res == NULL; i++)
            if (token_resource_eq(cfg->resources[i], eq + 1))
                res = cfg->resources[i];
        if (cfg->nroutes == CONFIG_MAX_ROUTES) {
            *why = "at most 64 routes";
            rc = P2A_ERR_INVALID;
        } else if (eq == NULL || slash == NULL || slash > eq || slash == t) {
            *why = "expected host/path-prefix=resource pairs, comma-separated";
            rc = P2A_ERR_INVALID;
        } else if (res == NULL) {
            *why = "a route names a resource that is not one of PIPE2_AUTH_RESOURCE";
            rc = P2A_ERR_INVALID;
        } else {
            struct config_route *r = &cfg->routes[cfg->nroutes++];
            r->host = xstrndup(t, (size_t)(slash - t));
            r->prefix = xstrndup(slash, (size_t)(eq - slash));
            r->resource = res;
        }
        free(t);
    }
    return rc;
}

/* "host:port, host:port" into cfg->sentinels. */
p2a_err config_parse_sentinels(struct p2a_config *cfg, const char **why)
{
    if (cfg->redis_sentinel_list == NULL || cfg->redis_sentinel_list[0] == '\0')
        return P2A_OK;
    p2a_err rc = P2A_OK;
    for (struct strlist it = strlist_of(cfg->redis_sentinel_list, ",");
         rc == P2A_OK && strlist_next(&it);) {
        if (cfg->nsentinels == CONFIG_MAX_SENTINELS) {
            *why = "at most 16 sentinels";
            rc = P2A_ERR_INVALID;
        } else {
            struct config_hostport *h = &cfg->sentinels[cfg->nsentinels];
            char *t = xstrndup(it.item, it.len);
            rc = config_parse_hostport(t, &h->host, &h->port, why);
            cfg->nsentinels += rc == P2A_OK;
            free(t);
        }
    }
    return rc;
}

/* Whether path is prefix itself or below it ("/mcp" covers "/mcp", "/mcp/x", "/mcp?a"). */
static bool under(const char *path, const char *prefix, size_t plen)
{
    return strncmp(path, prefix, plen) == 0 &&
           (path[plen] == '\0' || path[plen] == '/' || path[plen] == '?' ||
            (plen > 0 && prefix[plen - 1] == '/'));
}

const char *config_resource_at(const struct p2a_config *cfg, const char *host, const char *path)
{
    const char *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; host != NULL && path != NULL && i < cfg->nroutes; i++) {
        const struct config_route *r = &cfg->routes[i];
        size_t plen = strlen(r->prefix);
        if (strcasecmp(r->host, host) == 0 && under(path, r->prefix, plen) &&
            (best == NULL || plen > best_len))
            best = r->resource, best_len = plen;
    }
    if (best != NULL || cfg->routes_given)
        return best;
    return cfg->nresources == 1 ? cfg->resources[0] : NULL;
}
