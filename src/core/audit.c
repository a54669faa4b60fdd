/* audit.c -- the event, its JSON forms, the queue, aggregation (see audit.h). */
#include "audit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "codec.h"
#include "netaddr.h"
#include "xalloc.h"

/* ---- the event ------------------------------------------------------------------------------ */

/* Copies src into dst (cap bytes), cut at a UTF-8 character boundary; bytes that are not
 * UTF-8 (a user agent may send any) become '?', so that every field is a JSON string, and so
 * do control characters (a client's name may hold a newline or an escape), so that a field
 * printed as it is stays on its line and leaves a terminal alone. */
__attribute__((noinline)) static void copy_field(char *dst, size_t cap, const char *src)
{
    if (src == NULL) {
        dst[0] = '\0';
        return;
    }
    size_t n = strnlen(src, cap - 1);
    if (n == cap - 1 && src[n] != '\0') /* cut: not in the middle of a character */
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    memcpy(dst, src, n);
    dst[n] = '\0';
    bool utf8 = codec_utf8_chars(dst, n) >= 0;
    for (char *p = dst; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || (!utf8 && (unsigned char)*p >= 0x80))
            *p = '?';
}

/* token.refused is not among them: a worker reports it once per token and interval already,
 * at most AUDIT_REFUSALS_MAX tokens (and only for tokens we signed); it is anonymous
 * (audit_anonymous()). admin.refused: a service key calling what its role may not, as often
 * as it likes. */
static const char *const aggregated_types[] = {"signin.failed", "client.refused", "admin.refused"};

bool audit_aggregated(const char *type)
{
    for (size_t i = 0; i < sizeof(aggregated_types) / sizeof(aggregated_types[0]); i++)
        if (strcmp(type, aggregated_types[i]) == 0)
            return true;
    return false;
}

bool audit_anonymous(const struct audit_event *ev)
{
    if (audit_aggregated(ev->type) || strcmp(ev->actor, "anonymous") == 0)
        return true;
    return ev->user_id[0] == '\0' && strncmp(ev->actor, "key:", 4) != 0;
}

static char replica_tag[8] = "0";
static atomic_uint_fast64_t id_counter;

void audit_event_fill(struct audit_event *ev, const struct audit_in *in, int64_t time_us)
{
    memset(ev, 0, sizeof(*ev));
    ev->time_us = time_us;
    ev->count = 1;
    /* fixed width: ids of one microsecond sort in the order they were made */
    snprintf(ev->id, sizeof(ev->id), "%016lld-%s-%08llx", (long long)time_us, replica_tag,
             (unsigned long long)(atomic_fetch_add(&id_counter, 1) & 0xffffffffu));
    copy_field(ev->type, sizeof(ev->type), in->type);
    copy_field(ev->user_id, sizeof(ev->user_id), in->user_id);
    copy_field(ev->client_id, sizeof(ev->client_id), in->client_id);
    copy_field(ev->token_id, sizeof(ev->token_id), in->token_id);
    copy_field(ev->address, sizeof(ev->address), in->address);
    copy_field(ev->user_agent, sizeof(ev->user_agent), in->user_agent);
    copy_field(ev->detail, sizeof(ev->detail), in->detail);
    copy_field(ev->outcome, sizeof(ev->outcome),
               in->outcome != NULL && in->outcome[0] ? in->outcome : "success");
    if (in->actor != NULL && in->actor[0] != '\0') {
        copy_field(ev->actor, sizeof(ev->actor), in->actor);
    } else if (ev->user_id[0] != '\0') {
        char a[AUDIT_USER_LEN + 8];
        snprintf(a, sizeof(a), "user:%s", ev->user_id);
        copy_field(ev->actor, sizeof(ev->actor), a);
    } else {
        copy_field(ev->actor, sizeof(ev->actor), "anonymous");
    }
}

/* The schema's members, in order; empty strings are left out. */
static json_t *event_object(const struct audit_event *ev)
{
    json_t *o = json_object();
    json_object_set_new(o, "v", json_integer(AUDIT_SCHEMA_VERSION));
    json_object_set_new(o, "id", json_string(ev->id));
    json_object_set_new(o, "time_ms", json_integer(ev->time_us / 1000));
    struct {
        const char *name, *value;
    } f[] = {{"type", ev->type},
             {"actor", ev->actor},
             {"user_id", ev->user_id},
             {"client_id", ev->client_id},
             {"token_id", ev->token_id},
             {"address", ev->address},
             {"user_agent", ev->user_agent},
             {"outcome", ev->outcome},
             {"detail", ev->detail}};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (f[i].value[0] != '\0')
            json_object_set_new(o, f[i].name, json_string(f[i].value));
    if (ev->count > 1)
        json_object_set_new(o, "count", json_integer(ev->count));
    return o;
}

char *audit_event_json(const struct audit_event *ev)
{
    json_t *o = event_object(ev);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    P2A_ASSERT(s != NULL);
    return s;
}

char *audit_cloudevent(const struct audit_event *ev, const char *source)
{
    char when[64], type[64];
    time_t sec = (time_t)(ev->time_us / 1000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ev->time_us % 1000000));
    snprintf(type, sizeof(type), "pipe2.auth.audit.%s", ev->type);
    json_t *o = json_object();
    json_object_set_new(o, "specversion", json_string("1.0"));
    json_object_set_new(o, "id", json_string(ev->id));
    json_object_set_new(o, "source", json_string(source));
    json_object_set_new(o, "type", json_string(type));
    json_object_set_new(o, "time", json_string(when));
    if (ev->user_id[0] != '\0')
        json_object_set_new(o, "subject", json_string(ev->user_id));
    json_object_set_new(o, "datacontenttype", json_string("application/json"));
    json_object_set_new(o, "dataschema", json_string("urn:pipe2:auth:audit:v1"));
    json_object_set_new(o, "data", event_object(ev));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    P2A_ASSERT(s != NULL);
    return s;
}

bool audit_event_parse(const char *json, size_t len, struct audit_event *ev)
{
    json_t *o = json_loadb(json, len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return false;
    }
    memset(ev, 0, sizeof(*ev));
    struct {
        const char *name;
        char *dst;
        size_t cap;
    } f[] = {{"id", ev->id, sizeof(ev->id)},
             {"type", ev->type, sizeof(ev->type)},
             {"actor", ev->actor, sizeof(ev->actor)},
             {"user_id", ev->user_id, sizeof(ev->user_id)},
             {"client_id", ev->client_id, sizeof(ev->client_id)},
             {"token_id", ev->token_id, sizeof(ev->token_id)},
             {"address", ev->address, sizeof(ev->address)},
             {"user_agent", ev->user_agent, sizeof(ev->user_agent)},
             {"outcome", ev->outcome, sizeof(ev->outcome)},
             {"detail", ev->detail, sizeof(ev->detail)}};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        copy_field(f[i].dst, f[i].cap, json_string_value(json_object_get(o, f[i].name)));
    json_t *t = json_object_get(o, "time_ms"), *c = json_object_get(o, "count");
    ev->time_us = json_is_integer(t) ? json_integer_value(t) * 1000 : 0;
    ev->count = json_is_integer(c) ? (uint32_t)json_integer_value(c) : 1;
    bool ok = ev->id[0] != '\0' && ev->type[0] != '\0';
    json_decref(o);
    return ok;
}

/* ---- the queue ------------------------------------------------------------------------------ */

static struct {
    pthread_mutex_t lock;
    struct audit_event *ring; /* AUDIT_QUEUE_MAX; NULL before audit_start() */
    size_t head, n;
    struct audit_agg *agg; /* the aggregated types: folded here, never queued */
} queue = {.lock = PTHREAD_MUTEX_INITIALIZER};
static atomic_uint_fast64_t dropped;
static atomic_bool started;

void audit_start(const char *replica)
{
    copy_field(replica_tag, sizeof(replica_tag), replica);
    pthread_mutex_lock(&queue.lock);
    if (queue.ring == NULL)
        queue.ring = xcalloc(AUDIT_QUEUE_MAX, sizeof(*queue.ring));
    if (queue.agg == NULL)
        queue.agg = audit_agg_new();
    queue.head = queue.n = 0;
    pthread_mutex_unlock(&queue.lock);
    atomic_store(&started, true);
}

void audit_stop(void)
{
    atomic_store(&started, false);
    pthread_mutex_lock(&queue.lock);
    free(queue.ring);
    queue.ring = NULL;
    audit_agg_free(queue.agg);
    queue.agg = NULL;
    queue.head = queue.n = 0;
    pthread_mutex_unlock(&queue.lock);
}

int64_t audit_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void audit_emit(const struct audit_in *in)
{
    if (!atomic_load_explicit(&started, memory_order_relaxed))
        return;
    struct audit_event ev;
    audit_event_fill(&ev, in, audit_now_us());
    pthread_mutex_lock(&queue.lock);
    /* a flood of anonymous events folds into at most AUDIT_AGG_MAX + 1: it cannot fill the
     * queue and push a person's events out */
    if (queue.agg != NULL && audit_agg_add(queue.agg, &ev)) {
        pthread_mutex_unlock(&queue.lock);
        return;
    }
    bool ok = queue.ring != NULL && queue.n < AUDIT_QUEUE_MAX;
    if (ok) {
        queue.ring[(queue.head + queue.n) % AUDIT_QUEUE_MAX] = ev;
        queue.n++;
    }
    pthread_mutex_unlock(&queue.lock);
    if (!ok)
        atomic_fetch_add(&dropped, 1);
}

size_t audit_take(struct audit_event *out, size_t max)
{
    pthread_mutex_lock(&queue.lock);
    size_t n = queue.n < max ? queue.n : max;
    for (size_t i = 0; i < n; i++)
        out[i] = queue.ring[(queue.head + i) % AUDIT_QUEUE_MAX];
    if (n > 0) {
        queue.head = (queue.head + n) % AUDIT_QUEUE_MAX;
        queue.n -= n;
    }
    pthread_mutex_unlock(&queue.lock);
    return n;
}

struct agg_copy {
    struct audit_event *out;
    size_t n;
};

static void copy_out(void *arg, const struct audit_event *ev)
{
    struct agg_copy *c = arg;
    c->out[c->n++] = *ev;
}

size_t audit_take_aggregates(struct audit_event *out, int64_t now_us, bool all)
{
    struct agg_copy c = {out, 0};
    pthread_mutex_lock(&queue.lock);
    if (queue.agg != NULL)
        audit_agg_flush(queue.agg, now_us, all, copy_out, &c);
    pthread_mutex_unlock(&queue.lock);
    return c.n;
}

uint64_t audit_dropped(void)
{
    return atomic_load(&dropped);
}

void audit_count_lost(uint64_t n)
{
    atomic_fetch_add(&dropped, n);
}

/* ---- a query -------------------------------------------------------------------------------- */

static bool token_ok(const char *t)
{
    size_t n = strlen(t);
    if (n < 18 || n >= AUDIT_ID_LEN || t[16] != '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'z') || t[i] == '-'))
            return false;
    return true;
}

static bool type_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n >= AUDIT_TYPE_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || t[i] == '.' || t[i] == '_'))
            return false;
    return true;
}

const char *audit_query_check(const struct audit_query *q)
{
    if (q->page_size < 0 || q->page_size > AUDIT_PAGE_MAX)
        return "page_size must be 0 (50) to 200";
    if (q->page_token != NULL && q->page_token[0] != '\0' && !token_ok(q->page_token))
        return "page_token is not one this service gave";
    if (q->ntypes > AUDIT_TYPES_MAX)
        return "types: at most 16";
    for (size_t i = 0; i < q->ntypes; i++)
        if (!type_ok(q->types[i]))
            return "types must be event types such as pat.issued";
    if (q->since_ms < 0 || q->until_ms < 0 || (q->until_ms > 0 && q->since_ms > q->until_ms))
        return "since and until must be Unix milliseconds, since not after until";
    if (q->since_ms > 9999999999999LL || q->until_ms > 9999999999999LL)
        return "since and until must be Unix milliseconds";
    if (q->user_id != NULL && strlen(q->user_id) >= AUDIT_USER_LEN)
        return "user_id is too long";
    if (q->client_id != NULL && strlen(q->client_id) >= AUDIT_CLIENT_LEN)
        return "client_id is too long";
    return NULL;
}

/* ---- aggregation ---------------------------------------------------------------------------- */

struct audit_agg {
    size_t n;
    struct audit_event v[AUDIT_AGG_MAX + 1]; /* the last: "(other addresses)" */
    bool other_used;
    int64_t minute; /* of the buckets held */
};

struct audit_agg *audit_agg_new(void)
{
    return xcalloc(1, sizeof(struct audit_agg));
}

void audit_agg_free(struct audit_agg *a)
{
    free(a);
}

/* addr: ev's address as a limit counts it (an IPv6 address: its /64, which anyone given one
 * address has whole), so that one subnet takes one bucket, not all of them. */
static bool same_bucket(const struct audit_event *b, const struct audit_event *ev, const char *addr)
{
    return strcmp(b->type, ev->type) == 0 && strcmp(b->actor, ev->actor) == 0 &&
           strcmp(b->user_id, ev->user_id) == 0 && strcmp(b->address, addr) == 0 &&
           strcmp(b->token_id, ev->token_id) == 0;
}

static void bump(struct audit_event *b, const struct audit_event *ev)
{
    b->count = b->count + ev->count < b->count ? UINT32_MAX : b->count + ev->count;
}

bool audit_agg_add(struct audit_agg *a, const struct audit_event *ev)
{
    if (!audit_aggregated(ev->type))
        return false;
    int64_t minute = ev->time_us / 60000000;
    if (minute > a->minute && (a->n > 0 || a->other_used))
        minute = a->minute; /* flushed by the next audit_agg_flush(): kept with its minute */
    a->minute = minute;
    char addr[NETADDR_MAX];
    netaddr_limit_key(ev->address, addr);
    for (size_t i = 0; i < a->n; i++) {
        if (same_bucket(&a->v[i], ev, addr)) {
            bump(&a->v[i], ev);
            return true;
        }
    }
    if (a->n < AUDIT_AGG_MAX) {
        a->v[a->n] = *ev;
        copy_field(a->v[a->n].address, sizeof(a->v[a->n].address), addr);
        a->n++;
        return true;
    }
    struct audit_event *o = &a->v[AUDIT_AGG_MAX];
    if (!a->other_used) {
        *o = *ev;
        copy_field(o->address, sizeof(o->address), AUDIT_OTHER_ADDRESSES);
        o->user_id[0] = o->token_id[0] = o->user_agent[0] = o->client_id[0] = '\0';
        copy_field(o->actor, sizeof(o->actor), "anonymous");
        a->other_used = true;
    } else {
        bump(o, ev);
    }
    return true;
}

size_t audit_agg_flush(struct audit_agg *a, int64_t now_us, bool flush_all,
                       void (*fn)(void *arg, const struct audit_event *ev), void *arg)
{
    if (a->n == 0 && !a->other_used)
        return 0;
    if (!flush_all && now_us / 60000000 <= a->minute)
        return 0;
    size_t n = a->n;
    for (size_t i = 0; i < a->n; i++) {
        if (a->v[i].count > 1)
            snprintf(a->v[i].detail, sizeof(a->v[i].detail), "%u in this minute",
                     (unsigned)a->v[i].count);
        fn(arg, &a->v[i]);
    }
    if (a->other_used) {
        struct audit_event *o = &a->v[AUDIT_AGG_MAX];
        snprintf(o->detail, sizeof(o->detail), "%u in this minute", (unsigned)o->count);
        fn(arg, o);
        n++;
    }
    a->n = 0;
    a->other_used = false;
    return n;
}

/* ---- refused tokens ------------------------------------------------------------------------- */

void audit_refusal_note(struct audit_refusals *r, const char *jti, const char *user_id,
                        const char *client_id, bool revoked)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->v[i].jti, jti) == 0) {
            r->v[i].count++;
            r->v[i].revoked = revoked;
            return;
        }
    }
    if (r->n == AUDIT_REFUSALS_MAX) {
        r->passed++;
        return;
    }
    copy_field(r->v[r->n].jti, sizeof(r->v[r->n].jti), jti);
    copy_field(r->v[r->n].user_id, sizeof(r->v[r->n].user_id), user_id);
    copy_field(r->v[r->n].client_id, sizeof(r->v[r->n].client_id), client_id);
    r->v[r->n].revoked = revoked;
    r->v[r->n].count = 1;
    r->n++;
}

void audit_refusals_emit(struct audit_refusals *r)
{
    for (size_t i = 0; i < r->n; i++) {
        char detail[96];
        snprintf(detail, sizeof(detail), "%s token presented %u times",
                 r->v[i].revoked ? "revoked" : "expired", (unsigned)r->v[i].count);
        audit_emit(&(struct audit_in){.type = "token.refused",
                                      .actor = "anonymous",
                                      .user_id = r->v[i].user_id,
                                      .client_id = r->v[i].client_id,
                                      .token_id = r->v[i].jti,
                                      .outcome = "failure",
                                      .detail = detail});
    }
    r->n = 0;
    r->passed = 0;
}
