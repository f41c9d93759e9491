/* NOR flash model: the contract in hal/hal_flash.h and the power-cut countdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hal_err.h"
#include "nor.h"

#define SIZE (4 * 4096)
#define SECTOR 4096
#define WBLOCK 8

static uint8_t mem[SIZE];
static uint8_t bitmap[SIZE / WBLOCK / 8];
static struct nor nor;

static int setup(void **state)
{
    (void)state;
    memset(mem, 0x5A, sizeof mem); /* a chip arrives with unknown contents */
    assert_int_equal(nor_init(&nor, mem, SIZE, SECTOR, WBLOCK, bitmap), HAL_OK);
    return 0;
}

static void test_init_rejects_bad_geometry(void **state)
{
    (void)state;
    struct nor n;
    assert_int_equal(nor_init(&n, mem, SIZE, SECTOR, 6, NULL), HAL_EINVAL);      /* not 2^k */
    assert_int_equal(nor_init(&n, mem, SIZE, 4100, 8, NULL), HAL_EINVAL);        /* sector % wb */
    assert_int_equal(nor_init(&n, mem, SIZE + 8, SECTOR, 8, NULL), HAL_EINVAL);  /* size % sector */
    assert_int_equal(nor_init(&n, NULL, SIZE, SECTOR, 8, NULL), HAL_EINVAL);
    assert_int_equal(nor_bitmap_size(SIZE, WBLOCK), sizeof bitmap);
}

static void test_erase_sets_ff(void **state)
{
    (void)state;
    assert_int_equal(nor_erase(&nor, SECTOR), HAL_OK);
    for (int i = 0; i < SECTOR; i++)
        assert_int_equal(mem[SECTOR + i], 0xFF);
    assert_int_equal(mem[SECTOR - 1], 0x5A); /* neighbours untouched */
    assert_int_equal(mem[2 * SECTOR], 0x5A);
}

static void test_erase_alignment_and_range(void **state)
{
    (void)state;
    assert_int_equal(nor_erase(&nor, 100), HAL_EINVAL);
    assert_int_equal(nor_erase(&nor, SIZE), HAL_EINVAL);
    assert_int_equal(nor_erase(&nor, 0xFFFFF000u), HAL_EINVAL);
}

static void test_program_and_read_back(void **state)
{
    (void)state;
    assert_int_equal(nor_erase(&nor, 0), HAL_OK);
    const uint8_t data[16] = "0123456789abcdef";
    assert_int_equal(nor_program(&nor, 8, data, sizeof data), HAL_OK);
    uint8_t back[16];
    assert_int_equal(nor_read(&nor, 8, back, sizeof back), HAL_OK);
    assert_memory_equal(back, data, sizeof data);
    assert_int_equal(mem[7], 0xFF);
    assert_int_equal(mem[24], 0xFF);
}

static void test_program_alignment(void **state)
{
    (void)state;
    assert_int_equal(nor_erase(&nor, 0), HAL_OK);
    const uint8_t data[16] = {0};
    assert_int_equal(nor_program(&nor, 4, data, 8), HAL_EINVAL);
    assert_int_equal(nor_program(&nor, 0, data, 12), HAL_EINVAL);
    assert_int_equal(nor_program(&nor, SIZE - 8, data, 16), HAL_EINVAL);
}

static void test_program_needs_erase(void **state)
{
    (void)state;
    const uint8_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    /* Sector 3 was never erased: it holds 0x5A. */
    assert_int_equal(nor_program(&nor, 3 * SECTOR, data, 8), HAL_ENOTERASED);
    assert_int_equal(mem[3 * SECTOR], 0x5A);
}

static void test_program_once_between_erases(void **state)
{
    (void)state;
    assert_int_equal(nor_erase(&nor, 0), HAL_OK);
    const uint8_t ones[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    const uint8_t data[8] = {0xF0, 0, 0, 0, 0, 0, 0, 0};
    /* Programming all-ones leaves the bytes erased, but the block is used. */
    assert_int_equal(nor_program(&nor, 0, ones, 8), HAL_OK);
    assert_int_equal(nor_program(&nor, 0, data, 8), HAL_ENOTERASED);
    assert_int_equal(nor_erase(&nor, 0), HAL_OK);
    assert_int_equal(nor_program(&nor, 0, data, 8), HAL_OK);
    assert_int_equal(nor_program(&nor, 0, data, 8), HAL_ENOTERASED);
}

static void test_read_range(void **state)
{
    (void)state;
    uint8_t b[4];
    assert_int_equal(nor_read(&nor, SIZE - 4, b, 4), HAL_OK);
    assert_int_equal(nor_read(&nor, SIZE - 3, b, 4), HAL_EINVAL);
    assert_int_equal(nor_read(&nor, SIZE + 1, b, 0), HAL_EINVAL);
}

static void test_power_cut_during_program(void **state)
{
    (void)state;
    assert_int_equal(nor_erase(&nor, 0), HAL_OK);
    uint8_t data[32];
    memset(data, 0x11, sizeof data);
    nor.fault_countdown = 1; /* one more operation succeeds */
    assert_int_equal(nor_program(&nor, 0, data, 8), HAL_OK);
    assert_int_equal(nor_program(&nor, 32, data, 32), HAL_EPOWER);
    /* Half of the interrupted write landed, the rest stayed erased. */
    assert_int_equal(mem[32], 0x11);
    assert_int_equal(mem[47], 0x11);
    assert_int_equal(mem[48], 0xFF);
    /* The power is off: nothing else happens until the model is re-initialised. */
    assert_int_equal(nor_erase(&nor, SECTOR), HAL_EPOWER);
    assert_int_equal(nor_program(&nor, 64, data, 8), HAL_EPOWER);
    assert_int_equal(mem[64], 0xFF);
}

static void test_power_cut_during_erase(void **state)
{
    (void)state;
    assert_int_equal(nor_erase(&nor, 0), HAL_OK);
    nor.fault_countdown = 0;
    assert_int_equal(nor_erase(&nor, SECTOR), HAL_EPOWER);
    assert_int_equal(mem[SECTOR], 0xFF);
    assert_int_equal(mem[SECTOR + SECTOR - 1], 0x5A); /* second half not erased */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_init_rejects_bad_geometry, setup),
        cmocka_unit_test_setup(test_erase_sets_ff, setup),
        cmocka_unit_test_setup(test_erase_alignment_and_range, setup),
        cmocka_unit_test_setup(test_program_and_read_back, setup),
        cmocka_unit_test_setup(test_program_alignment, setup),
        cmocka_unit_test_setup(test_program_needs_erase, setup),
        cmocka_unit_test_setup(test_program_once_between_erases, setup),
        cmocka_unit_test_setup(test_read_range, setup),
        cmocka_unit_test_setup(test_power_cut_during_program, setup),
        cmocka_unit_test_setup(test_power_cut_during_erase, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
