/* fwboot.h — the firmware's side of the boot state: confirm the running
 * image once a local self-test passes.
 *
 * The self-test asks only what this unit decides on its own: the database
 * opened, the network interface is configured up, the SMTP listener is bound, and the
 * event loop keeps turning. It never waits for a DHCP lease, a reachable
 * smart host or someone at the console: a good image at a site without
 * DHCP must not revert. A trial image that has not passed within
 * FWBOOT_TRIAL_MS marks itself bad with what it waited for (kept in the
 * boot state for `fw status`) and resets into the confirmed slot; one that
 * hangs or crashes first is reverted by the boot stage (bootflow.h). */
#ifndef FWBOOT_H
#define FWBOOT_H

#include <stdint.h>

/* How long a trial image has to pass its self-test. */
#define FWBOOT_TRIAL_MS 120000u
/* Loop turns the self-test wants to see before it passes. */
#define FWBOOT_TURNS 20

struct fwboot_check {
    int db_open;        /* the database opened (and migrated) */
    int netif_up;       /* the interface is up (neither a cable nor an address needed) */
    int smtp_listening; /* port 25 is bound and listening */
};

enum fwboot_status {
    FWBOOT_TESTING,   /* self-test not passed yet */
    FWBOOT_CONFIRMED, /* passed; the image is confirmed in the boot state */
    FWBOOT_FAILED,    /* confirming failed (flash): a trial will revert */
};

/* At boot, after hal_bootctl_state() is known. */
void fwboot_init(void);
/* Once per loop turn. Returns ms until it needs another turn (it may not
 * return: a trial past its deadline resets). */
uint32_t fwboot_poll(const struct fwboot_check *check);
enum fwboot_status fwboot_status(void);
/* `fw confirm`: confirm the running image now, self-test or not (the
 * operator checked it); from then on the trial deadline no longer applies.
 * 0, or -1 when the boot state could not be written. */
int fwboot_confirm_by_hand(void);
/* Log the newest revert the boot state holds if its count is above
 * `*seen` (kept by the caller across resets: the failed image's own log
 * died with it), and raise `*seen`. Returns 1 when *seen changed. */
int fwboot_report_reverts(uint32_t *seen);
/* What the self-test still waits for ("" once passed), for `fw status`. */
const char *fwboot_waiting_for(void);

#endif
