/* dev_start.c — the firmware image's startup code on the posix board: bring
 * up the HAL, then hand over to the firmware (as a Cortex-M reset handler
 * would after setting up clocks and RAM). */
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dev_hal.h"
#include "dev_link.h"
#include "devproto.h"
#include "fw.h"
#include "hal_uart.h"

int main(void)
{
    char err[256];
    /* glibc gave the top of the heap back to the kernel whenever 128 KiB
     * were free there, and took it again for the next message: a brk and a
     * TLB shootdown each time, 8% of the device's CPU under load. A part's
     * heap is fixed RAM; hold on to it here as well. */
    mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
    dev_link_init();
    if (dev_hal_init(err, sizeof err) != 0) {
        /* The UART is the only place a human would see this. */
        char line[320];
        int n = snprintf(line, sizeof line, "\r\nboard: device start failed: %s\r\n", err);
        hal_uart_write(line, (size_t)n < sizeof line ? (size_t)n : strlen(line));
        dev_link_flush();
        return DEV_EXIT_HALT;
    }
    fw_main();
}
