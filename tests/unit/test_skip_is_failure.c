/* A cmocka binary whose only test calls skip(). cmocka exits 0 for it;
 * ctest must still count it as a failure (FAIL_REGULAR_EXPRESSION in
 * CMakeLists.txt), and this test is registered with WILL_FAIL so that the
 * rule itself is checked on every run: if skips ever pass again, this
 * test fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void test_skips(void **state)
{
    (void)state;
    skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
