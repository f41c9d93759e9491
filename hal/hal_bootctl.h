/* hal_bootctl.h — what the boot stage started: which slot, whether as a
 * trial, and the image's version and security counter.
 *
 * Only the board knows how its boot stage hands this over (on the posix
 * board, the environment of the exec'd image). The boot state itself —
 * which slot is active, confirm, mark for test, the slot states — is
 * portable: firmware/bootstate.h over the boot-control flash partition,
 * the same code the boot stage runs (firmware/bootflow.h). */
#ifndef HAL_BOOTCTL_H
#define HAL_BOOTCTL_H

#include <stddef.h>
#include <stdint.h>

#include "hal_flash.h"

struct hal_boot_state {
    enum hal_flash_part running; /* HAL_FLASH_SLOT_A or HAL_FLASH_SLOT_B */
    int trial;                   /* 1 when started once as a trial, not yet confirmed */
    uint32_t boot_count;         /* boots since the board was powered on */
    uint32_t sec_cnt;            /* the running image's security counter */
    char version[24];            /* the running image's version, "1.2.3+4" */
};

int hal_bootctl_state(struct hal_boot_state *state);
/* The public key (SubjectPublicKeyInfo DER) the boot stage trusts: an
 * upload is checked against it before it is marked for a test boot. */
void hal_bootctl_pubkey(const uint8_t **der, size_t *len);

#endif
