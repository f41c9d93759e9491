/* test_hoststats.c — firmware/hoststats.c: per-smart-host counters in a
 * bounded table, least recently counted host replaced when full. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hoststats.h"

static struct hoststats t;
static struct hoststats_entry out[HOSTSTATS_MAX + 4];

static int setup(void **state)
{
    (void)state;
    hoststats_init(&t);
    memset(out, 0, sizeof out);
    return 0;
}

static const struct hoststats_entry *find(int n, int64_t id)
{
    for (int i = 0; i < n; i++)
        if (out[i].id == id)
            return &out[i];
    return NULL;
}

static void test_empty(void **state)
{
    (void)state;
    assert_int_equal(hoststats_list(&t, out, HOSTSTATS_MAX), 0);
    assert_int_equal(t.dropped, 0);
}

static void test_counts_per_host_and_name(void **state)
{
    (void)state;
    hoststats_add(&t, 7, "mx.example.com", 25, HOSTSTATS_CONNECTIONS, 1);
    hoststats_add(&t, 7, "mx.example.com", 25, HOSTSTATS_TLS, 1);
    hoststats_add(&t, 7, "mx.example.com", 25, HOSTSTATS_DELIVERED, 3);
    hoststats_add(&t, 7, "mx.example.com", 25, HOSTSTATS_DEFERRED, 2);
    hoststats_add(&t, 3, "10.0.2.2", 2526, HOSTSTATS_CONNECTIONS, 2);
    hoststats_add(&t, 3, "10.0.2.2", 2526, HOSTSTATS_DOWNGRADES, 1);
    hoststats_add(&t, 3, "10.0.2.2", 2526, HOSTSTATS_REFUSED, 1);
    int n = hoststats_list(&t, out, HOSTSTATS_MAX);
    assert_int_equal(n, 2);
    /* By ascending id, whatever order they were first counted in. */
    assert_int_equal(out[0].id, 3);
    assert_int_equal(out[1].id, 7);
    assert_string_equal(out[0].name, "10.0.2.2:2526");
    assert_string_equal(out[1].name, "mx.example.com:25");
    const uint64_t want7[HOSTSTATS_COUNTERS] = {1, 3, 2, 0, 1, 0};
    const uint64_t want3[HOSTSTATS_COUNTERS] = {2, 0, 0, 1, 0, 1};
    assert_memory_equal(out[1].count, want7, sizeof want7);
    assert_memory_equal(out[0].count, want3, sizeof want3);
    /* `smarthost set` changed the port: the name follows, counts stay. */
    hoststats_add(&t, 7, "mx.example.com", 587, HOSTSTATS_CONNECTIONS, 1);
    n = hoststats_list(&t, out, HOSTSTATS_MAX);
    assert_string_equal(find(n, 7)->name, "mx.example.com:587");
    assert_int_equal(find(n, 7)->count[HOSTSTATS_CONNECTIONS], 2);
    assert_int_equal(t.dropped, 0);
}

static void test_invalid_ignored(void **state)
{
    (void)state;
    hoststats_add(&t, 0, "x", 25, HOSTSTATS_CONNECTIONS, 1);
    hoststats_add(&t, -4, "x", 25, HOSTSTATS_CONNECTIONS, 1);
    hoststats_add(&t, 1, "x", 25, HOSTSTATS_COUNTERS, 1);
    hoststats_add(&t, 1, "x", 25, (enum hoststats_counter)-1, 1);
    assert_int_equal(hoststats_list(&t, out, HOSTSTATS_MAX), 0);
}

static void test_long_name_truncated(void **state)
{
    (void)state;
    char host[400];
    memset(host, 'a', sizeof host - 1);
    host[sizeof host - 1] = '\0';
    hoststats_add(&t, 1, host, 25, HOSTSTATS_CONNECTIONS, 1);
    assert_int_equal(hoststats_list(&t, out, HOSTSTATS_MAX), 1);
    assert_int_equal(strlen(out[0].name), HOSTSTATS_NAME_MAX - 1);
}

/* Full: the host counted least recently gives way, not the oldest added. */
static void test_lru_replacement(void **state)
{
    (void)state;
    for (int64_t id = 1; id <= HOSTSTATS_MAX; id++)
        hoststats_add(&t, id, "h", 25, HOSTSTATS_CONNECTIONS, (uint64_t)id);
    /* Host 1 is counted again: host 2 is now the least recent. */
    hoststats_add(&t, 1, "h", 25, HOSTSTATS_DELIVERED, 1);
    hoststats_add(&t, 100, "new", 25, HOSTSTATS_CONNECTIONS, 1);
    int n = hoststats_list(&t, out, HOSTSTATS_MAX + 4);
    assert_int_equal(n, HOSTSTATS_MAX);
    assert_int_equal(t.dropped, 1);
    assert_null(find(n, 2));
    assert_non_null(find(n, 1));
    assert_int_equal(find(n, 1)->count[HOSTSTATS_CONNECTIONS], 1);
    assert_int_equal(find(n, 1)->count[HOSTSTATS_DELIVERED], 1);
    assert_int_equal(find(n, 100)->count[HOSTSTATS_CONNECTIONS], 1);
    assert_string_equal(find(n, 100)->name, "new:25");
    /* Host 2 comes back: it starts from zero, and host 3 gives way. */
    hoststats_add(&t, 2, "h", 25, HOSTSTATS_TLS, 1);
    n = hoststats_list(&t, out, HOSTSTATS_MAX);
    assert_int_equal(t.dropped, 2);
    assert_null(find(n, 3));
    assert_int_equal(find(n, 2)->count[HOSTSTATS_CONNECTIONS], 0);
    assert_int_equal(find(n, 2)->count[HOSTSTATS_TLS], 1);
    /* Sorted by id throughout. */
    for (int i = 1; i < n; i++)
        assert_true(out[i - 1].id < out[i].id);
}

/* A short output array gets the lowest ids, in order. */
static void test_list_limit_keeps_lowest_ids(void **state)
{
    (void)state;
    const int64_t ids[] = {40, 5, 30, 10, 20, 1};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        hoststats_add(&t, ids[i], "h", 25, HOSTSTATS_CONNECTIONS, 1);
    assert_int_equal(hoststats_list(&t, out, 3), 3);
    assert_int_equal(out[0].id, 1);
    assert_int_equal(out[1].id, 5);
    assert_int_equal(out[2].id, 10);
    assert_int_equal(hoststats_list(&t, out, 0), 0);
}

#define T(fn) cmocka_unit_test_setup(fn, setup)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_empty),
        T(test_counts_per_host_and_name),
        T(test_invalid_ignored),
        T(test_long_name_truncated),
        T(test_lru_replacement),
        T(test_list_limit_keeps_lowest_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
