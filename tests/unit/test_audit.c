/* test_audit.c -- the audit event: its fields, its JSON and CloudEvents forms, the bounded
 * queue, aggregation per address and minute, the refused-token table, query checks. */
#include "cm.h"

#include <jansson.h>

#include "audit.h"

#define MINUTE_US 60000000LL

static void audit__fill_defaults_and_bounds(void **state)
{
    (void)state;
    struct audit_event ev;
    audit_event_fill(&ev, &(struct audit_in){.type = "pat.issued", .user_id = "u1"}, 1234567);
    assert_string_equal(ev.actor, "user:u1"); /* a person acting on their own account */
    assert_string_equal(ev.outcome, "success");
    assert_int_equal(ev.count, 1);
    assert_true(strncmp(ev.id, "0000000001234567-", 17) == 0); /* sorts by time */
    audit_event_fill(&ev, &(struct audit_in){.type = "signin.failed", .outcome = "failure"}, 1);
    assert_string_equal(ev.actor, "anonymous");
    /* a long value is cut at a character boundary; bytes that are not UTF-8 become '?' */
    char ua[600];
    memset(ua, 'a', sizeof(ua));
    memcpy(ua + AUDIT_UA_LEN - 3, "\xc3\xa9\xc3\xa9", 4);
    ua[sizeof(ua) - 1] = '\0';
    audit_event_fill(&ev, &(struct audit_in){.type = "x", .user_agent = ua, .address = "\xff\x01"},
                     1);
    assert_int_equal(strlen(ev.user_agent), AUDIT_UA_LEN - 1);
    assert_string_equal(ev.address, "??");
    /* a control character is '?' too, in a field that is UTF-8 otherwise */
    audit_event_fill(&ev, &(struct audit_in){.type = "x", .detail = "a\nb\x1b[31m\xc3\xa9\x7f"}, 1);
    assert_string_equal(ev.detail, "a?b?[31m\xc3\xa9?");
    audit_event_fill(&ev, &(struct audit_in){.type = "x", .user_agent = ua + 1}, 1);
    assert_int_equal(strlen(ev.user_agent), AUDIT_UA_LEN - 2); /* not half of a character */
    char *j = audit_event_json(&ev);
    json_t *o = json_loads(j, 0, NULL);
    assert_non_null(o); /* valid JSON, hence valid UTF-8 */
    json_decref(o);
    free(j);
}

static void audit__json_round_trip_and_cloudevent(void **state)
{
    (void)state;
    struct audit_event ev, back;
    audit_event_fill(&ev,
                     &(struct audit_in){.type = "consent.granted",
                                        .user_id = "u\"1",
                                        .client_id = "https://app.example/client.json",
                                        .token_id = "g1",
                                        .address = "203.0.113.7",
                                        .user_agent = "Mozilla/5.0",
                                        .detail = "scope mcp"},
                     1700000000123456LL);
    char *j = audit_event_json(&ev);
    assert_non_null(strstr(j, "\"v\":1"));
    assert_null(strstr(j, "\"count\"")); /* only for aggregates */
    assert_true(audit_event_parse(j, strlen(j), &back));
    assert_string_equal(back.id, ev.id);
    assert_int_equal(back.time_us, 1700000000123000LL); /* kept in ms */
    assert_string_equal(back.user_id, "u\"1");
    assert_string_equal(back.client_id, ev.client_id);
    assert_string_equal(back.detail, "scope mcp");
    free(j);
    assert_false(audit_event_parse("[1]", 3, &back));
    assert_false(audit_event_parse("{\"id\":\"x\"}", 10, &back)); /* no type */

    char *ce = audit_cloudevent(&ev, "https://auth.example");
    json_t *o = json_loads(ce, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "specversion")), "1.0");
    assert_string_equal(json_string_value(json_object_get(o, "type")),
                        "pipe2.auth.audit.consent.granted");
    assert_string_equal(json_string_value(json_object_get(o, "source")), "https://auth.example");
    assert_string_equal(json_string_value(json_object_get(o, "time")),
                        "2023-11-14T22:13:20.123456Z");
    assert_string_equal(json_string_value(json_object_get(o, "subject")), "u\"1");
    json_t *data = json_object_get(o, "data");
    assert_string_equal(json_string_value(json_object_get(data, "id")), ev.id);
    assert_null(json_object_get(o, "level")); /* not an operational log line */
    json_decref(o);
    free(ce);
}

/* A flood of anonymous events never reaches the queue: a person's event still gets in. */
static void audit__flood_cannot_fill_the_queue(void **state)
{
    (void)state;
    audit_start("r3");
    uint64_t lost = audit_dropped();
    for (int i = 0; i < 3 * AUDIT_QUEUE_MAX; i++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "10.0.%d.%d", i / 256 % 256, i % 256);
        audit_emit(&(struct audit_in){.type = "signin.failed", .address = addr});
    }
    audit_emit(&(struct audit_in){.type = "pat.issued", .user_id = "u"});
    assert_int_equal(audit_dropped(), lost);
    struct audit_event *out = calloc(AUDIT_AGG_MAX + 1, sizeof(*out));
    assert_int_equal(audit_take(out, AUDIT_AGG_MAX), 1);
    assert_string_equal(out[0].type, "pat.issued");
    assert_int_equal(audit_take_aggregates(out, audit_now_us(), true), AUDIT_AGG_MAX + 1);
    uint64_t total = 0;
    for (int i = 0; i <= AUDIT_AGG_MAX; i++)
        total += out[i].count;
    assert_int_equal(total, 3 * AUDIT_QUEUE_MAX);
    assert_string_equal(out[AUDIT_AGG_MAX].address, AUDIT_OTHER_ADDRESSES);
    audit_stop();
    free(out);
}

static void audit__queue_is_bounded_and_counts_loss(void **state)
{
    (void)state;
    audit_emit(&(struct audit_in){.type = "pat.issued"}); /* before start: nothing */
    struct audit_event *out = test_malloc(AUDIT_QUEUE_MAX * sizeof(*out));
    assert_int_equal(audit_take(out, AUDIT_QUEUE_MAX), 0);
    audit_start("r1");
    uint64_t lost = audit_dropped();
    for (int i = 0; i < AUDIT_QUEUE_MAX + 10; i++)
        audit_emit(&(struct audit_in){.type = "pat.issued", .user_id = "u"});
    assert_int_equal(audit_dropped() - lost, 10);
    assert_int_equal(audit_take(out, 5), 5);
    size_t n = audit_take(out, AUDIT_QUEUE_MAX);
    assert_int_equal(n, AUDIT_QUEUE_MAX - 5);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(out[i - 1].id, out[i].id) < 0); /* oldest first, unique */
    assert_non_null(strstr(out[0].id, "-r1-"));
    audit_count_lost(3);
    assert_int_equal(audit_dropped() - lost, 13);
    audit_stop();
    test_free(out);
}

static size_t flushed;
static uint64_t flushed_count;

static void on_flush(void *arg, const struct audit_event *ev)
{
    (void)arg;
    flushed++;
    flushed_count += ev->count;
}

/* 10,000 failed sign-ins from 300 addresses in one minute: at most AUDIT_AGG_MAX + 1 events,
 * standing for all of them; a person's own events are never folded. */
static void audit__aggregation_is_bounded(void **state)
{
    (void)state;
    struct audit_agg *a = audit_agg_new();
    int64_t t0 = 100 * MINUTE_US;
    struct audit_event ev;
    for (int i = 0; i < 10000; i++) {
        char addr[32], user[32];
        snprintf(addr, sizeof(addr), "198.51.100.%d", i % 300);
        snprintf(user, sizeof(user), "guess%d", i);
        audit_event_fill(
            &ev,
            &(struct audit_in){
                .type = "signin.failed", .address = addr, .outcome = "failure", .detail = user},
            t0 + i);
        assert_true(audit_agg_add(a, &ev));
    }
    audit_event_fill(&ev, &(struct audit_in){.type = "pat.issued", .user_id = "u"}, t0);
    assert_false(audit_agg_add(a, &ev));
    flushed = flushed_count = 0;
    assert_int_equal(audit_agg_flush(a, t0 + 1000, false, on_flush, NULL), 0); /* same minute */
    assert_int_equal(audit_agg_flush(a, t0 + MINUTE_US, false, on_flush, NULL), AUDIT_AGG_MAX + 1);
    assert_int_equal(flushed, AUDIT_AGG_MAX + 1);
    assert_int_equal(flushed_count, 10000);
    assert_int_equal(audit_agg_flush(a, t0 + 2 * MINUTE_US, true, on_flush, NULL), 0);
    /* one address, one minute: one event with the count */
    for (int i = 0; i < 50; i++) {
        audit_event_fill(&ev, &(struct audit_in){.type = "signin.failed", .address = "a"}, t0);
        audit_agg_add(a, &ev);
    }
    flushed = flushed_count = 0;
    assert_int_equal(audit_agg_flush(a, t0, true, on_flush, NULL), 1);
    assert_int_equal(flushed_count, 50);
    audit_agg_free(a);
}

static void audit__refusals_one_per_token(void **state)
{
    (void)state;
    struct audit_refusals *r = calloc(1, sizeof(*r));
    for (int i = 0; i < 1000; i++)
        audit_refusal_note(r, "j1", "u1", "", i % 2 == 0);
    assert_int_equal(r->n, 1);
    assert_int_equal(r->v[0].count, 1000);
    for (int i = 0; i < AUDIT_REFUSALS_MAX + 5; i++) {
        char jti[16];
        snprintf(jti, sizeof(jti), "k%d", i);
        audit_refusal_note(r, jti, "u1", "", true);
    }
    assert_int_equal(r->n, AUDIT_REFUSALS_MAX);
    assert_int_equal(r->passed, 6);
    audit_start("r2");
    audit_refusals_emit(r);
    assert_int_equal(r->n, 0);
    struct audit_event *out = calloc(AUDIT_REFUSALS_MAX, sizeof(*out));
    assert_int_equal(audit_take(out, AUDIT_REFUSALS_MAX), AUDIT_REFUSALS_MAX);
    assert_string_equal(out[0].type, "token.refused");
    assert_string_equal(out[0].token_id, "j1");
    assert_string_equal(out[0].actor, "anonymous");
    assert_non_null(strstr(out[0].detail, "1000 times"));
    audit_stop();
    free(out);
    free(r);
}

static void audit__query_checks(void **state)
{
    (void)state;
    const char *good[] = {"pat.issued", "signin.failed"};
    const char *bad[] = {"PAT ISSUED"};
    assert_null(audit_query_check(&(struct audit_query){.types = good, .ntypes = 2}));
    assert_non_null(audit_query_check(&(struct audit_query){.types = bad, .ntypes = 1}));
    assert_non_null(audit_query_check(&(struct audit_query){.page_size = AUDIT_PAGE_MAX + 1}));
    assert_non_null(audit_query_check(&(struct audit_query){.page_token = "nope"}));
    assert_non_null(
        audit_query_check(&(struct audit_query){.page_token = "0000000001234567-a-1'"}));
    assert_null(audit_query_check(&(struct audit_query){.page_token = "0000000001234567-a1-1f"}));
    assert_non_null(audit_query_check(&(struct audit_query){.since_ms = 10, .until_ms = 5}));
    assert_non_null(audit_query_check(&(struct audit_query){.since_ms = -1}));
}

/* What anyone may repeat has the anonymous budget in Redis, even when it names a person; two
 * keys refused from one address are two aggregates, each named by its key. */
static void audit__anonymous_class_and_actor_buckets(void **state)
{
    (void)state;
    struct audit_event ev;
    audit_event_fill(&ev, &(struct audit_in){.type = "pat.issued", .user_id = "u1"}, 1);
    assert_false(audit_anonymous(&ev));
    audit_event_fill(&ev, &(struct audit_in){.type = "user.disabled", .actor = "key:dash"}, 1);
    assert_false(audit_anonymous(&ev));
    audit_event_fill(&ev, &(struct audit_in){.type = "signin.failed", .user_id = "u1"}, 1);
    assert_true(audit_anonymous(&ev));
    audit_event_fill(
        &ev,
        &(struct audit_in){
            .type = "token.refused", .actor = "anonymous", .user_id = "u1", .token_id = "j1"},
        1);
    assert_true(audit_anonymous(&ev));
    audit_event_fill(&ev, &(struct audit_in){.type = "admin.refused", .actor = "key:mcp"}, 1);
    assert_true(audit_anonymous(&ev));
    assert_true(audit_aggregated("admin.refused"));

    struct audit_agg *a = audit_agg_new();
    struct audit_event e1, e2;
    audit_event_fill(
        &e1, &(struct audit_in){.type = "admin.refused", .actor = "key:a", .address = "10.0.0.1"},
        MINUTE_US);
    audit_event_fill(
        &e2, &(struct audit_in){.type = "admin.refused", .actor = "key:b", .address = "10.0.0.1"},
        MINUTE_US);
    assert_true(audit_agg_add(a, &e1));
    assert_true(audit_agg_add(a, &e2));
    assert_true(audit_agg_add(a, &e2));
    /* one IPv6 subnet is one bucket, named by its /64 */
    audit_event_fill(&e1, &(struct audit_in){.type = "signin.failed", .address = "2001:db8::1"},
                     MINUTE_US);
    audit_event_fill(&e2,
                     &(struct audit_in){.type = "signin.failed", .address = "2001:db8::ffff:1:2"},
                     MINUTE_US);
    assert_true(audit_agg_add(a, &e1));
    assert_true(audit_agg_add(a, &e2));
    flushed = flushed_count = 0;
    assert_int_equal(audit_agg_flush(a, 0, true, on_flush, NULL), 3);
    assert_int_equal(flushed_count, 5);
    audit_agg_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(audit__fill_defaults_and_bounds),
        cmocka_unit_test(audit__json_round_trip_and_cloudevent),
        cmocka_unit_test(audit__queue_is_bounded_and_counts_loss),
        cmocka_unit_test(audit__flood_cannot_fill_the_queue),
        cmocka_unit_test(audit__aggregation_is_bounded),
        cmocka_unit_test(audit__refusals_one_per_token),
        cmocka_unit_test(audit__query_checks),
        cmocka_unit_test(audit__anonymous_class_and_actor_buckets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
