/* jsonw: the streaming JSON writer behind the console's `output json`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "jsonw.h"

static char out[4096];
static size_t out_len;
static int sink_calls;

static void sink(void *ctx, const char *data, size_t len)
{
    (void)ctx;
    assert_true(out_len + len < sizeof out);
    memcpy(out + out_len, data, len);
    out_len += len;
    out[out_len] = '\0';
    sink_calls++;
}

static struct jsonw w;

static int setup(void **state)
{
    (void)state;
    out_len = 0;
    out[0] = '\0';
    sink_calls = 0;
    jsonw_init(&w, sink, NULL);
    return 0;
}

static void test_nested_object_and_array(void **state)
{
    (void)state;
    jsonw_object(&w, NULL);
    jsonw_string(&w, "name", "relay");
    jsonw_int(&w, "neg", -42);
    jsonw_uint(&w, "big", UINT64_MAX);
    jsonw_bool(&w, "yes", 1);
    jsonw_bool(&w, "no", 0);
    jsonw_null(&w, "none");
    jsonw_array(&w, "rows");
    jsonw_object(&w, NULL);
    jsonw_int(&w, "id", 1);
    jsonw_end(&w);
    jsonw_object(&w, NULL);
    jsonw_end(&w);
    jsonw_end(&w);
    jsonw_array(&w, "empty");
    jsonw_end(&w);
    jsonw_end(&w);
    assert_string_equal(out, "{\"name\":\"relay\",\"neg\":-42,\"big\":18446744073709551615,"
                             "\"yes\":true,\"no\":false,\"none\":null,"
                             "\"rows\":[{\"id\":1},{}],\"empty\":[]}");
}

static void test_escapes(void **state)
{
    (void)state;
    jsonw_array(&w, NULL);
    jsonw_string(&w, NULL, "a\"b\\c");
    jsonw_string(&w, NULL, "tab\there\r\n\x01\x7f");
    jsonw_string(&w, NULL, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7"); /* valid UTF-8 kept */
    jsonw_string(&w, NULL, "bad \xff \xc3 \xc0\xaf \xed\xa0\x80 end"); /* invalid: U+FFFD */
    jsonw_string_len(&w, NULL, "nul\0inside", 10);
    jsonw_string(&w, "ignored-in-array?", NULL);
    jsonw_end(&w);
    assert_string_equal(out,
                        "[\"a\\\"b\\\\c\","
                        "\"tab\\u0009here\\u000d\\u000a\\u0001\\u007f\","
                        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7\","
                        "\"bad \\ufffd \\ufffd \\ufffd\\ufffd \\ufffd\\ufffd\\ufffd end\","
                        "\"nul\\u0000inside\","
                        "\"ignored-in-array?\":\"\"]");
}

/* A truncated UTF-8 sequence at the very end is replaced, not read past. */
static void test_cut_sequence_at_end(void **state)
{
    (void)state;
    jsonw_string_len(&w, NULL, "x\xe2\x82", 3);
    assert_string_equal(out, "\"x\\ufffd\\ufffd\"");
}

/* Long lists are written across loop turns: the writer keeps its place. */
static void test_written_in_steps(void **state)
{
    (void)state;
    jsonw_object(&w, NULL);
    jsonw_array(&w, "messages");
    for (int step = 0; step < 3; step++)
        for (int i = 0; i < 2; i++) {
            jsonw_object(&w, NULL);
            jsonw_int(&w, "id", step * 2 + i);
            jsonw_end(&w);
        }
    jsonw_finish(&w); /* closes the array and the object */
    assert_string_equal(out, "{\"messages\":[{\"id\":0},{\"id\":1},{\"id\":2},{\"id\":3},"
                             "{\"id\":4},{\"id\":5}]}");
    jsonw_finish(&w); /* nothing left open: no output */
    jsonw_end(&w);
    assert_int_equal(out[out_len - 1], '}');
}

/* Nesting deeper than the writer tracks stops the output instead of
 * writing brackets that would not match. */
static void test_too_deep_stops(void **state)
{
    (void)state;
    for (int i = 0; i < JSONW_DEPTH_MAX; i++)
        jsonw_array(&w, NULL);
    size_t before = out_len;
    jsonw_array(&w, NULL);
    jsonw_int(&w, NULL, 1);
    jsonw_finish(&w);
    assert_int_equal(out_len, before);
    assert_true(w.failed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_nested_object_and_array, setup),
        cmocka_unit_test_setup(test_escapes, setup),
        cmocka_unit_test_setup(test_cut_sequence_at_end, setup),
        cmocka_unit_test_setup(test_written_in_steps, setup),
        cmocka_unit_test_setup(test_too_deep_stops, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
