/* Slot image header: written image checks out, torn or corrupt ones do not,
 * and an unchanged image is not rewritten. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hal_err.h"
#include "nor.h"
#include "slotimg.h"

#define SIZE (16 * 4096)

static uint8_t mem[SIZE];
static uint8_t bitmap[SIZE / 8 / 8];
static struct nor slot;
static uint8_t img[10003]; /* not a multiple of the write block */

static int setup(void **state)
{
    (void)state;
    memset(mem, 0xFF, sizeof mem);
    assert_int_equal(nor_init(&slot, mem, SIZE, 4096, 8, bitmap), HAL_OK);
    for (size_t i = 0; i < sizeof img; i++)
        img[i] = (uint8_t)(i * 31 + 7);
    return 0;
}

static void test_install_then_check(void **state)
{
    (void)state;
    assert_int_equal(slotimg_install(&slot, img, sizeof img), 1);
    uint32_t off, len;
    assert_int_equal(slotimg_check(&slot, &off, &len), 0);
    assert_int_equal(off, SLOTIMG_HDR_LEN);
    assert_int_equal(len, sizeof img);
    assert_memory_equal(mem + off, img, sizeof img);
}

static void test_same_image_not_rewritten(void **state)
{
    (void)state;
    assert_int_equal(slotimg_install(&slot, img, sizeof img), 1);
    slot.fault_countdown = 0; /* any flash operation would now fail */
    assert_int_equal(slotimg_install(&slot, img, sizeof img), 0);
}

static void test_changed_image_rewritten(void **state)
{
    (void)state;
    assert_int_equal(slotimg_install(&slot, img, sizeof img), 1);
    img[5000] ^= 1;
    assert_int_equal(slotimg_install(&slot, img, sizeof img), 1);
    uint32_t off, len;
    assert_int_equal(slotimg_check(&slot, &off, &len), 0);
    assert_int_equal(mem[off + 5000], img[5000]);
}

static void test_corrupt_byte_fails_check(void **state)
{
    (void)state;
    assert_int_equal(slotimg_install(&slot, img, sizeof img), 1);
    mem[SLOTIMG_HDR_LEN + 1234] ^= 0x40;
    uint32_t off, len;
    assert_int_equal(slotimg_check(&slot, &off, &len), -1);
}

static void test_erased_slot_fails_check(void **state)
{
    (void)state;
    uint32_t off, len;
    assert_int_equal(slotimg_check(&slot, &off, &len), -1);
}

/* Cut the power at every flash operation of an install: the slot either
 * holds no valid image or the whole new one, never a torn one. */
static void test_power_cut_anywhere_leaves_no_torn_image(void **state)
{
    (void)state;
    for (int32_t cut = 0;; cut++) {
        setup(NULL);
        slot.fault_countdown = cut;
        int rc = slotimg_install(&slot, img, sizeof img);
        uint32_t off, len;
        if (rc == 1) {
            assert_int_equal(slotimg_check(&slot, &off, &len), 0);
            break; /* every cut point before this one was exercised */
        }
        assert_int_equal(rc, HAL_EPOWER);
        assert_int_equal(slotimg_check(&slot, &off, &len), -1);
    }
}

static void test_too_big_refused(void **state)
{
    (void)state;
    uint8_t *huge = calloc(1, SIZE);
    assert_non_null(huge);
    assert_int_equal(slotimg_install(&slot, huge, SIZE - SLOTIMG_HDR_LEN + 1), HAL_EINVAL);
    free(huge);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_install_then_check, setup),
        cmocka_unit_test_setup(test_same_image_not_rewritten, setup),
        cmocka_unit_test_setup(test_changed_image_rewritten, setup),
        cmocka_unit_test_setup(test_corrupt_byte_fails_check, setup),
        cmocka_unit_test_setup(test_erased_slot_fails_check, setup),
        cmocka_unit_test_setup(test_power_cut_anywhere_leaves_no_torn_image, setup),
        cmocka_unit_test_setup(test_too_big_refused, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
