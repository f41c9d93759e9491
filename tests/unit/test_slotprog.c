/* The board's slot programmer: the image lands whole, an unchanged one is
 * not rewritten, and a power cut at any flash operation leaves a slot whose
 * first block (the image header) is incomplete — the boot stage then
 * refuses it — or the whole new image. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hal_err.h"
#include "nor.h"
#include "slotprog.h"

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

static void test_written_whole(void **state)
{
    (void)state;
    assert_int_equal(slotprog_write(&slot, img, sizeof img), 1);
    assert_memory_equal(mem, img, sizeof img);
    assert_int_equal(mem[sizeof img], 0xFF); /* the padding of the last block */
}

static void test_same_image_not_rewritten(void **state)
{
    (void)state;
    assert_int_equal(slotprog_write(&slot, img, sizeof img), 1);
    slot.fault_countdown = 0; /* any flash operation would now fail */
    assert_int_equal(slotprog_write(&slot, img, sizeof img), 0);
}

static void test_changed_image_rewritten(void **state)
{
    (void)state;
    assert_int_equal(slotprog_write(&slot, img, sizeof img), 1);
    img[5000] ^= 1;
    assert_int_equal(slotprog_write(&slot, img, sizeof img), 1);
    assert_memory_equal(mem, img, sizeof img);
}

static void test_too_big_refused(void **state)
{
    (void)state;
    static uint8_t big[SIZE + 1];
    assert_int_equal(slotprog_write(&slot, big, sizeof big), HAL_EINVAL);
}

/* Cut the power at every flash operation of a rewrite: the slot holds
 * either no header (first block erased) or the whole new image. */
static void test_power_cut_never_leaves_a_header_on_a_torn_image(void **state)
{
    (void)state;
    for (int32_t cut = 0;; cut++) {
        setup(NULL);
        assert_int_equal(slotprog_write(&slot, img, sizeof img), 1);
        img[0] ^= 0x55; /* a different image: its header differs too */
        slot.fault_countdown = cut;
        int rc = slotprog_write(&slot, img, sizeof img);
        slot.fault_countdown = -1;
        slot.powered_off = 0;
        if (rc == 1) {
            assert_memory_equal(mem, img, sizeof img);
            assert_true(cut > 16); /* erases and programs were counted */
            break;
        }
        assert_int_equal(rc, HAL_EPOWER);
        /* The first block is never whole before everything else is: at
         * most half of it (a cut during that last program), so the header
         * is incomplete and the boot stage refuses the slot. */
        assert_memory_not_equal(mem, img, 8);
        img[0] ^= 0x55;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_written_whole, setup),
        cmocka_unit_test_setup(test_same_image_not_rewritten, setup),
        cmocka_unit_test_setup(test_changed_image_rewritten, setup),
        cmocka_unit_test_setup(test_too_big_refused, setup),
        cmocka_unit_test_setup(test_power_cut_never_leaves_a_header_on_a_torn_image, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
