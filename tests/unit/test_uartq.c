/* uartq: console output goes out as the line takes it, in order, and is
 * never lost. The UART HAL is faked here: the test sets the room and
 * keeps what was written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hal_uart.h"
#include "uartq.h"

static uint8_t line[4 * UARTQ_BYTES];
static size_t line_len, room;
static int line_down;

int hal_uart_write(const void *buf, size_t len)
{
    if (line_down)
        return -1;
    assert_true(line_len + len <= sizeof line);
    memcpy(line + line_len, buf, len);
    line_len += len;
    room = len < room ? room - len : 0;
    return 0;
}

size_t hal_uart_tx_room(void) { return room; }

int hal_uart_read(void *buf, size_t cap)
{
    (void)buf;
    (void)cap;
    return 0;
}

/* The queue keeps state across tests: drain it first. */
static int setup(void **state)
{
    (void)state;
    room = SIZE_MAX / 2;
    line_down = 0;
    uartq_flush();
    line_len = 0;
    room = 0;
    return 0;
}

static void fill(uint8_t *buf, size_t len, size_t from)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)((from + i) * 7 + 3);
}

static void test_paced_by_room(void **state)
{
    (void)state;
    uint8_t data[3000];
    fill(data, sizeof data, 0);
    room = 1000;
    uartq_write(data, sizeof data);
    assert_int_equal(line_len, 1000); /* what the line took at once */
    assert_int_equal(uartq_room(), UARTQ_BYTES - 2000);
    assert_int_equal(uartq_flush(), 2000); /* no room: nothing moves */
    room = 1500;
    assert_int_equal(uartq_flush(), 500);
    room = 5000;
    assert_int_equal(uartq_flush(), 0);
    assert_int_equal(line_len, sizeof data);
    assert_memory_equal(line, data, sizeof data);
    assert_int_equal(uartq_room(), UARTQ_BYTES);
}

/* Output written while older bytes wait goes behind them, across the
 * ring's wrap. */
static void test_order_kept_across_wrap(void **state)
{
    (void)state;
    static uint8_t data[3 * UARTQ_BYTES];
    fill(data, sizeof data, 11);
    size_t written = 0, step = 3001;
    while (written < sizeof data) {
        size_t n = sizeof data - written < step ? sizeof data - written : step;
        if (n > uartq_room())
            n = uartq_room();
        uartq_write(data + written, n);
        written += n;
        room = 2500; /* the line drains a little between writes */
        uartq_flush();
    }
    room = SIZE_MAX / 2;
    uartq_flush();
    assert_int_equal(line_len, sizeof data);
    assert_memory_equal(line, data, sizeof data);
}

/* More than the queue holds: nothing is dropped, order is kept, and the
 * bytes sent beyond the line's room are counted. */
static void test_overflow_spills_in_order(void **state)
{
    (void)state;
    static uint8_t data[UARTQ_BYTES + 100];
    fill(data, sizeof data, 5);
    size_t spilled = uartq_spilled();
    uartq_write(data, 200); /* waits: no room */
    uartq_write(data + 200, sizeof data - 200);
    assert_int_equal(line_len, 200 + 0); /* the 200 waiting went out first... */
    assert_int_equal(uartq_spilled() - spilled, 200);
    room = SIZE_MAX / 2;
    uartq_flush(); /* ...and the rest was queued behind them */
    assert_int_equal(line_len, sizeof data);
    assert_memory_equal(line, data, sizeof data);
}

static void test_line_down_keeps_bytes(void **state)
{
    (void)state;
    room = 100;
    line_down = 1;
    uartq_write("hello", 5);
    assert_int_equal(uartq_flush(), 5);
    line_down = 0;
    assert_int_equal(uartq_flush(), 0);
    assert_int_equal(line_len, 5);
    assert_memory_equal(line, "hello", 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_paced_by_room, setup),
        cmocka_unit_test_setup(test_order_kept_across_wrap, setup),
        cmocka_unit_test_setup(test_overflow_spills_in_order, setup),
        cmocka_unit_test_setup(test_line_down_keeps_bytes, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
