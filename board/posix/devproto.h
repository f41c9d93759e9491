/* devproto.h — how the board process starts the device process.
 *
 * The device inherits one end of the link socketpair as a fixed descriptor
 * (like a peripheral at a fixed address) and learns the rest from its
 * environment, which the boot stage passes on to the firmware. */
#ifndef DEVPROTO_H
#define DEVPROTO_H

#define DEV_LINK_FD 3            /* the link socket in the device process */
#define DEV_EXIT_RESET 100       /* exit status of hal_reset(): a software reset */
#define DEV_EXIT_HALT 101        /* the boot stage found nothing to run */
#define DEV_EXIT_POWER_CUT 102   /* a power cut injected into flash (--flash-cut-after) */
/* Typed bytes the device's UART buffer holds: the board sends no more
 * than this ahead of what the device has taken (LINK_UART_RX_CREDIT), so
 * input never blocks the link's Ethernet frames; the rest waits in the
 * board, then in the pty (flow control to whoever types or pastes). */
#define DEV_UART_RX_WINDOW 16384
/* The boot stage starts the watchdog before it hands over (boot_main.c);
 * the firmware must kick it within this time. */
#define DEV_BOOT_WATCHDOG_MS 10000
#define DEV_ENV_STATE "SHR_STATE"             /* the state directory (flash files) */
#define DEV_ENV_RESET_CAUSE "SHR_RESET_CAUSE" /* enum hal_reset_cause, decimal */
#define DEV_ENV_BOOT_COUNT "SHR_BOOT_COUNT"   /* starts since power-on, decimal */
#define DEV_ENV_SLOT "SHR_BOOT_SLOT"          /* set by the boot stage: "A" or "B" */
#define DEV_ENV_TRIAL "SHR_BOOT_TRIAL"        /* set by the boot stage: "0" or "1" */
#define DEV_ENV_IMAGE_VERSION "SHR_IMAGE_VERSION" /* set by the boot stage: "1.2.3+4" */
#define DEV_ENV_SEC_CNT "SHR_IMAGE_SEC_CNT"       /* set by the boot stage: its counter */
#define DEV_ENV_CLOCK_UNSET "SHR_CLOCK_UNSET" /* "1": no RTC, the wall clock starts at 1970 */
#define DEV_ENV_RECOVERY "SHR_RECOVERY"     /* "1": recovery requested at this power-on */
#define DEV_ENV_FLASH_CUT "SHR_FLASH_CUT_AFTER" /* tests: power fails at this flash op */
#define DEV_SECRET_FILE "device-secret"      /* the unit's OTP secret, made at first power-on */
#define DEV_PID_FILE "device.pid"            /* pid of the running device, for tests */

#endif
