/* hal_reset.h — reset the CPU. */
#ifndef HAL_RESET_H
#define HAL_RESET_H

enum hal_reset_cause {
    HAL_RESET_POWER_ON = 0, /* first start after power was applied */
    HAL_RESET_SOFTWARE,     /* hal_reset() was called */
    HAL_RESET_WATCHDOG,     /* the watchdog expired */
    HAL_RESET_FAULT,        /* the CPU stopped for any other reason (crash, kill) */
};

/* Restart the device now; does not return. */
void hal_reset(void) __attribute__((noreturn));
/* Why the device started this time. */
enum hal_reset_cause hal_reset_cause(void);
const char *hal_reset_cause_name(enum hal_reset_cause cause);

#endif
