/* boot_main.c — the device's boot stage (relay-boot): the first code the
 * CPU runs after a reset. bootflow.c decides which slot starts (and
 * whether as a trial) from the boot state record; every slot it may start
 * is verified here first (imgverify.c: hash, key, signature, board,
 * security counter) on a private copy read out of flash, and what starts
 * is that verified copy: on the posix board its payload (the firmware ELF)
 * goes into a sealed anonymous memory file that is exec'd, so neither the
 * flash nor a file on the host can change between check and start. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "boot_pubkey.h"
#include "bootflow.h"
#include "devproto.h"
#include "flashhal.h"
#include "flashparts.h"
#include "hal_reset.h"
#include "imgverify.h"
#include "link.h"

extern char **environ;

static struct flashparts flash;

/* The verified private copy of each slot, kept for starting it. */
static struct {
    uint8_t *copy;
    struct mcuimg img;
} verified[BOOTSTATE_SLOTS];

/* Say something on the UART: the boot stage has no console of its own. */
static void uart_say(const char *text)
{
    uint8_t msg[LINK_MSG_MAX];
    size_t n = link_encode(msg, sizeof msg, LINK_UART, text, strlen(text));
    if (n)
        (void)!send(DEV_LINK_FD, msg, n, MSG_NOSIGNAL);
}

/* A device with nothing to run says why and waits for a power cycle: never
 * a boot loop that hides the reason. */
static int halt(const char *why) __attribute__((noreturn));
static int halt(const char *why)
{
    char line[600];
    snprintf(line, sizeof line, "\r\nboot: %s; halted\r\n", why);
    uart_say(line);
    for (;;)
        pause();
}

static int verify_slot(void *ctx, int slot, uint32_t min_sec_cnt, uint32_t *sec_cnt, char *err,
                       size_t errlen)
{
    (void)ctx;
    struct nor *n = &flash.part[slot ? HAL_FLASH_SLOT_B : HAL_FLASH_SLOT_A];
    free(verified[slot].copy);
    verified[slot].copy = malloc(n->size);
    if (!verified[slot].copy) {
        snprintf(err, errlen, "out of memory for the slot copy");
        return -1;
    }
    memcpy(verified[slot].copy, n->mem, n->size);
    struct imgverify_policy policy = {fwsign_pubkey, fwsign_pubkey_len, "posix", min_sec_cnt};
    if (imgverify_check(verified[slot].copy, n->size, &policy, &verified[slot].img, err,
                        errlen) != 0) {
        char line[300];
        snprintf(line, sizeof line, "\r\nboot: slot %c refused: %s\r\n",
                 bootstate_slot_letter(slot), err);
        uart_say(line);
        free(verified[slot].copy);
        verified[slot].copy = NULL;
        return -1;
    }
    *sec_cnt = verified[slot].img.has_sec_cnt ? verified[slot].img.sec_cnt : 0;
    return 0;
}

/* As on a part whose boot stage starts the independent watchdog, which
 * nothing can stop afterwards: the image must kick it in time, so one that
 * hangs before it could ever confirm itself is reset and reverted like one
 * that crashes. Here an interval timer survives the exec, and SIGALRM's
 * default action ends the process, which the board reads as a watchdog
 * reset; the firmware's hal_watchdog_start() takes it over. */
static void start_watchdog(void)
{
    struct itimerval it = {{0, 0}, {DEV_BOOT_WATCHDOG_MS / 1000, 0}};
    signal(SIGALRM, SIG_DFL);
    setitimer(ITIMER_REAL, &it, NULL);
}

/* How the last run ended, from the reset cause the board passes on: kept
 * in the note of a trial this boot reverts. */
static const char *last_reset(void)
{
    const char *v = getenv(DEV_ENV_RESET_CAUSE);
    switch (v && *v ? atoi(v) : -1) {
    case HAL_RESET_POWER_ON: return "the power failed";
    case HAL_RESET_SOFTWARE: return "a software reset";
    case HAL_RESET_WATCHDOG: return "the watchdog reset it";
    case HAL_RESET_FAULT: return "it crashed or exited";
    }
    return NULL;
}

static void run_verified(int slot, int trial)
{
    const struct mcuimg *m = &verified[slot].img;
    const uint8_t *p = verified[slot].copy + m->hdr_size;
    size_t left = m->img_size;
    int fd = memfd_create("relay-fw", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w <= 0) {
            close(fd);
            return;
        }
        p += w;
        left -= (size_t)w;
    }
    /* Nothing may change what was verified, not even through this fd. */
    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    char version[32], sec_cnt[16];
    mcuimg_version_format(&m->version, version, sizeof version);
    snprintf(sec_cnt, sizeof sec_cnt, "%lu", (unsigned long)(m->has_sec_cnt ? m->sec_cnt : 0));
    setenv(DEV_ENV_SLOT, slot ? "B" : "A", 1);
    setenv(DEV_ENV_TRIAL, trial ? "1" : "0", 1);
    setenv(DEV_ENV_IMAGE_VERSION, version, 1);
    setenv(DEV_ENV_SEC_CNT, sec_cnt, 1);
    flashhal_cut_to_env();
    char *argv[] = {"relay-fw", NULL};
    start_watchdog();
    fexecve(fd, argv, environ);
    /* Only reached when exec failed: the halt that follows waits with the
     * watchdog stopped, to show its reason rather than boot-loop. */
    setitimer(ITIMER_REAL, &(struct itimerval){{0, 0}, {0, 0}}, NULL);
    close(fd);
}

int main(void)
{
    char err[256];
    const char *state = getenv(DEV_ENV_STATE);
    if (!state || flashparts_open(&flash, state, err, sizeof err) != 0)
        return halt(state ? err : "no state directory");
    flashhal_attach(&flash);
    flashhal_cut_from_env();
    struct bootstate before, st;
    enum bootstate_load_rc record = bootstate_load(&before);
    struct bootflow_ops ops = {.verify = verify_slot, .last_reset = last_reset()};
    struct bootflow_choice choice;
    char why[BOOTFLOW_WHY_MAX];
    if (bootflow_choose(&ops, &st, &choice, why, sizeof why) != 0)
        return halt(why);
    if (record == BOOTSTATE_DAMAGED) {
        char line[200];
        snprintf(line, sizeof line, "\r\nboot: the boot state record was damaged; %s\r\n",
                 st.note);
        uart_say(line);
    }
    if (st.reverts != before.reverts) {
        char line[200];
        snprintf(line, sizeof line, "\r\nboot: %s; reverted to slot %c\r\n", st.note,
                 bootstate_slot_letter(choice.slot));
        uart_say(line);
    }
    run_verified(choice.slot, choice.trial);
    return halt("the verified image did not start");
}
