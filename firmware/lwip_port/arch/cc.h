/* arch/cc.h — lwIP compiler/platform glue for the firmware.
 *
 * lwIP reports through these hooks; they go to the firmware's RAM log (never
 * the console) and an assertion resets the device, as on hardware. */
#ifndef LWIP_ARCH_CC_H
#define LWIP_ARCH_CC_H

#include <stdint.h>

void fwnet_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fwnet_assert(const char *msg, const char *file, int line) __attribute__((noreturn));
uint32_t fwnet_rand(void);
void fwnet_sntp_set_time(uint32_t sec);

#define LWIP_PLATFORM_DIAG(x) do { fwnet_diag x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) fwnet_assert((x), __FILE__, __LINE__)
#define LWIP_RAND() fwnet_rand()

#endif
