/* oauth_docs.c -- the cache of fetched documents (see oauth_docs.h): an entry per kind and URL,
 * its waiters while one fetch runs, expiry by the document's max-age (clamped) or the negative
 * time, and eviction of the oldest when full. Facade thread only. */
#include "oauth_docs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients.h"
#include "clock.h"
#include "config.h"
#include "fetch.h"
#include "idjag.h"
#include "jws.h"
#include "log.h"
#include "oidc.h"
#include "xalloc.h"

#define DOC_DEFAULT_TTL_S 300 /* a document that says nothing of caching */

struct waiter {
    oauth_doc_cb cb;
    void *arg;
    struct waiter *next;
};

struct entry {
    enum oauth_doc_kind kind;
    char *url;
    json_t *value; /* NULL: the last fetch failed, or none has ended yet */
    char why[160];
    int64_t expires_ms; /* monotonic */
    int64_t forgot_ms;  /* monotonic: when oauth_docs_forget() last forgot it */
    bool fetching;
    struct waiter *waiters; /* while fetching */
    struct oauth_docs *d;
};

struct oauth_docs {
    const struct p2a_config *cfg;
    struct fetcher *fetcher;
    struct fetcher *provider; /* the operator's, for the upstream provider; NULL: none */
    struct entry *v[OAUTH_DOCS_MAX];
    size_t n;
};

struct oauth_docs *oauth_docs_new(struct event_base *base, const struct p2a_config *cfg)
{
    struct fetch_limits lim = {.connect_ms = 2000,
                               .total_ms = cfg->fetch_timeout_ms,
                               .max_bytes = OAUTH_DOC_MAX_BYTES,
                               .ca_file = cfg->fetch_ca_file,
                               .allow_loopback = cfg->fetch_allow_loopback};
    struct oauth_docs *d = xcalloc(1, sizeof(*d));
    d->cfg = cfg;
    d->fetcher = fetcher_new(base, &lim);
    bool operator_docs = cfg->upstream_issuer != NULL || idjag_enabled(cfg);
    if (operator_docs) {
        struct fetch_limits plim = {.connect_ms = 2000,
                                    .total_ms = cfg->fetch_timeout_ms,
                                    .max_bytes = OAUTH_PROVIDER_DOC_MAX_BYTES,
                                    .operator_trusted = true};
        d->provider = fetcher_new(base, &plim);
    }
    if (d->fetcher == NULL || (operator_docs && d->provider == NULL)) {
        oauth_docs_free(d);
        return NULL;
    }
    return d;
}

static void entry_free(struct entry *e)
{
    json_decref(e->value);
    free(e->url);
    free(e);
}

void oauth_docs_free(struct oauth_docs *d)
{
    if (d == NULL)
        return;
    fetcher_free(d->fetcher); /* the waiters of running fetches hear "shutting down" */
    fetcher_free(d->provider);
    for (size_t i = 0; i < d->n; i++)
        entry_free(d->v[i]);
    free(d);
}

static struct entry *find(struct oauth_docs *d, enum oauth_doc_kind kind, const char *url)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i]->kind == kind && strcmp(d->v[i]->url, url) == 0)
            return d->v[i];
    return NULL;
}

/* The identity providers' documents are the operator's: never pushed out by documents
 * anonymous requests name. */
static bool evictable(const struct entry *e)
{
    return !e->fetching && (e->kind == DOC_CLIENT || e->kind == DOC_JWKS);
}

/* A slot for a new entry: a free one, else the one that expires first among the evictable;
 * NULL when none is. */
static struct entry **slot(struct oauth_docs *d)
{
    if (d->n < OAUTH_DOCS_MAX)
        return &d->v[d->n++];
    struct entry **old = NULL;
    for (size_t i = 0; i < d->n; i++)
        if (evictable(d->v[i]) && (old == NULL || d->v[i]->expires_ms < (*old)->expires_ms))
            old = &d->v[i];
    if (old != NULL) {
        entry_free(*old);
        *old = NULL;
    }
    return old;
}

/* The checked value of a fetched body, or NULL with e->why. */
static json_t *check(struct entry *e, const char *body, size_t len)
{
    if (e->kind == DOC_CLIENT)
        return oauth_cimd_client(body, len, e->url, e->why, sizeof(e->why));
    if (e->kind == DOC_PROVIDER)
        return oidc_discovery(body, len, e->d->cfg, e->why, sizeof(e->why));
    if (e->kind == DOC_PROVIDER_JWKS)
        return oidc_jwks(body, len, e->why, sizeof(e->why));
    if (e->kind == DOC_IDJAG_ISSUER) {
        const char *iss = idjag_issuer_of_discovery(e->d->cfg, e->url);
        if (iss != NULL)
            return oidc_keys_discovery(body, len, iss, e->why, sizeof(e->why));
        snprintf(e->why, sizeof(e->why), "not the discovery document of a trusted issuer");
        return NULL;
    }
    json_t *jwks = oauth_json_object(body, len);
    const char *bad = jwks ? jws_keys_check(jwks) : "the jwks_uri document is not a JSON object";
    if (bad != NULL) {
        snprintf(e->why, sizeof(e->why), "%s", bad);
        json_decref(jwks);
        return NULL;
    }
    return jwks;
}

static void on_fetched(void *arg, const struct fetch_result *r)
{
    struct entry *e = arg;
    const struct p2a_config *cfg = e->d->cfg;
    e->fetching = false;
    json_decref(e->value);
    e->value = NULL;
    int64_t ttl = OAUTH_DOC_NEGATIVE_S;
    if (r->why != NULL) {
        snprintf(e->why, sizeof(e->why), "%s", r->why);
    } else if ((e->value = check(e, r->body, r->len)) != NULL) {
        ttl = r->max_age_s < 0 ? DOC_DEFAULT_TTL_S : r->max_age_s;
        ttl = ttl < cfg->doc_cache_min_s ? cfg->doc_cache_min_s : ttl;
        ttl = ttl > cfg->doc_cache_max_s ? cfg->doc_cache_max_s : ttl;
    } else {
        log_info("oauth.document_refused", "%s refused: %s", e->url, e->why);
    }
    e->expires_ms = clock_mono_ms() + ttl * 1000;
    /* a waiter may ask for other documents, which may evict this entry: answer the rest
     * from copies */
    struct waiter *w = e->waiters;
    json_t *value = json_incref(e->value);
    char why[sizeof(e->why)];
    snprintf(why, sizeof(why), "%s", e->why);
    e->waiters = NULL;
    while (w != NULL) {
        struct waiter *next = w->next;
        w->cb(w->arg, value, value ? NULL : why);
        free(w);
        w = next;
    }
    json_decref(value);
}

void oauth_docs_get(struct oauth_docs *d, enum oauth_doc_kind kind, const char *url,
                    const char *requester, oauth_doc_cb cb, void *arg)
{
    struct entry *e = find(d, kind, url);
    if (e != NULL && !e->fetching && clock_mono_ms() < e->expires_ms) {
        cb(arg, e->value, e->value ? NULL : e->why);
        return;
    }
    if (e == NULL) {
        struct entry **s = slot(d);
        if (s == NULL) {
            cb(arg, NULL, "too many documents are being fetched; try again in a moment");
            return;
        }
        e = *s = xcalloc(1, sizeof(*e));
        e->kind = kind;
        e->url = xstrdup(url);
        e->d = d;
    }
    struct waiter *w = xcalloc(1, sizeof(*w));
    w->cb = cb;
    w->arg = arg;
    w->next = e->waiters;
    e->waiters = w;
    if (e->fetching)
        return;
    bool provider = kind == DOC_PROVIDER || kind == DOC_PROVIDER_JWKS || kind == DOC_IDJAG_ISSUER;
    const char *why = "too many documents are being fetched; try again in a moment";
    p2a_err rc = provider && d->provider == NULL ? P2A_ERR_INVALID
                                                 : fetch_get(provider ? d->provider : d->fetcher,
                                                             url, requester, on_fetched, e, &why);
    if (rc == P2A_OK) {
        e->fetching = true;
        return;
    }
    e->waiters = w->next;
    free(w);
    cb(arg, NULL, rc == P2A_ERR_INVALID ? "only https documents are fetched" : why);
}

bool oauth_docs_forget(struct oauth_docs *d, enum oauth_doc_kind kind, const char *url, int every_s)
{
    struct entry *e = find(d, kind, url);
    int64_t now = clock_mono_ms();
    if (e == NULL || e->fetching ||
        (e->forgot_ms != 0 && now - e->forgot_ms < (int64_t)every_s * 1000))
        return false;
    e->forgot_ms = now;
    e->expires_ms = 0;
    return true;
}

bool oauth_docs_keys_again(struct oauth_docs *d, const char *uri, oauth_doc_cb cb, void *arg)
{
    if (!oauth_docs_forget(d, DOC_PROVIDER_JWKS, uri, OAUTH_PROVIDER_REFETCH_S))
        return false;
    log_info("oauth.provider_keys", "a token names a key the set at %s lacks: fetching it again",
             uri);
    oauth_docs_get(d, DOC_PROVIDER_JWKS, uri, NULL, cb, arg);
    return true;
}

struct fetcher *oauth_docs_provider_fetcher(struct oauth_docs *d)
{
    return d->provider;
}
