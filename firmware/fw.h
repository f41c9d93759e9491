/* fw.h — the firmware's entry point, called by the board's startup code
 * once the HAL is ready. */
#ifndef FW_H
#define FW_H

/* Watchdog timeout: far above the longest legitimate loop turn (a bounded
 * SQLite transaction or one PBKDF2 slice), far below what a stuck
 * appliance may cost in lost mail. */
#define FW_WATCHDOG_MS 10000

/* Runs the appliance; never returns. */
void fw_main(void) __attribute__((noreturn));
/* Version and build text, e.g. "0.1.0 (build 1a2b3c)". */
const char *fw_version_text(void);
/* The two parts alone: "0.1.0", "1a2b3c". */
const char *fw_version(void);
const char *fw_build_id(void);

#endif
