/* dev_hal.c — the posix board's HAL for everything but the link:
 * flash, clock, rng, reset, watchdog, device secret, boot control. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "dev_hal.h"
#include "dev_link.h"
#include "devproto.h"
#include "boot_pubkey.h"
#include "flashhal.h"
#include "hal_board.h"
#include "hal_bootctl.h"
#include "hal_clock.h"
#include "hal_err.h"
#include "hal_flash.h"
#include "hal_heap.h"
#include "hal_reset.h"
#include "hal_rng.h"
#include "hal_secret.h"
#include "hal_storage.h"
#include "hal_watchdog.h"

static struct flashparts flash;
static int flash_ready;
static char state_dir[4096];
static char db_path[4096 + 16];
static enum hal_reset_cause reset_cause = HAL_RESET_POWER_ON;
static struct hal_boot_state boot_state = {HAL_FLASH_SLOT_A, 0, 0, 0, ""};
/* --clock-unset: no battery-backed RTC, the wall clock starts at 1970. */
static int clock_unset;
static int recovery; /* --recovery: the button was held at this power-on */
static int64_t wall_offset;

static unsigned long env_number(const char *name, unsigned long fallback)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return fallback;
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    return *end ? fallback : n;
}

int dev_hal_init(char *err, size_t errlen)
{
    const char *dir = getenv(DEV_ENV_STATE);
    if (!dir || !*dir) {
        snprintf(err, errlen, "%s is not set", DEV_ENV_STATE);
        return -1;
    }
    snprintf(state_dir, sizeof state_dir, "%s", dir);
    snprintf(db_path, sizeof db_path, "%s/relay.db", state_dir);
    if (flashparts_open(&flash, state_dir, err, errlen) != 0)
        return -1;
    flashhal_attach(&flash);
    flashhal_cut_from_env();
    flash_ready = 1;
    unsigned long cause = env_number(DEV_ENV_RESET_CAUSE, HAL_RESET_POWER_ON);
    reset_cause = cause <= HAL_RESET_FAULT ? (enum hal_reset_cause)cause : HAL_RESET_FAULT;
    const char *slot = getenv(DEV_ENV_SLOT);
    boot_state.running = (slot && strcmp(slot, "B") == 0) ? HAL_FLASH_SLOT_B : HAL_FLASH_SLOT_A;
    boot_state.trial = env_number(DEV_ENV_TRIAL, 0) == 1;
    boot_state.boot_count = (uint32_t)env_number(DEV_ENV_BOOT_COUNT, 0);
    boot_state.sec_cnt = (uint32_t)env_number(DEV_ENV_SEC_CNT, 0);
    const char *version = getenv(DEV_ENV_IMAGE_VERSION);
    snprintf(boot_state.version, sizeof boot_state.version, "%s", version ? version : "");
    clock_unset = env_number(DEV_ENV_CLOCK_UNSET, 0) == 1;
    recovery = env_number(DEV_ENV_RECOVERY, 0) == 1;
    return 0;
}

const char *hal_board_name(void) { return "posix"; }

int hal_board_recovery_requested(void) { return recovery; }

const char *hal_storage_db_path(void) { return db_path; }

/* The data partition is relay.db and SQLite's companions next to it. The
 * directory is synced so a power cut after a factory reset cannot bring
 * the old database back. */
int hal_storage_wipe(void)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    int rc = HAL_OK;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char path[sizeof db_path + 16];
        snprintf(path, sizeof path, "%s%s", db_path, suffixes[i]);
        if (unlink(path) != 0 && errno != ENOENT)
            rc = HAL_EIO;
    }
    int dir = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0 || fsync(dir) != 0)
        rc = HAL_EIO;
    if (dir >= 0)
        close(dir);
    return rc;
}

/* --- clock --- */

/* Microseconds since the first call (at reset), like a hardware tick
 * counter; both clocks below count from that one base. */
static uint64_t since_reset_us(void)
{
    static uint64_t base_us;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    if (!base_us)
        base_us = now;
    return now - base_us;
}

uint32_t hal_clock_ms(void) { return (uint32_t)(since_reset_us() / 1000u); }

uint64_t hal_clock_us(void) { return since_reset_us(); }

/* The wall clock is the host's (or, with the board's --clock-unset, the
 * seconds since reset) plus what hal_clock_set_wall() stepped it by. */

static int64_t wall_base(void)
{
    return clock_unset ? (int64_t)(since_reset_us() / 1000000u) : (int64_t)time(NULL);
}

int64_t hal_clock_wall(void) { return wall_base() + wall_offset; }

/* The host's clock is NTP-disciplined: as good as a set RTC. */
int hal_clock_wall_valid(void) { return !clock_unset; }

void hal_clock_set_wall(int64_t t) { wall_offset = t - wall_base(); }

/* The last known time: "<seconds>\n" in <state>/clock-saved, replaced
 * whole (write, fsync, rename) so a power cut leaves the old or the new
 * record, never half of one. */
#define CLOCK_SAVED_FILE "clock-saved"

int hal_clock_save_wall(int64_t t)
{
    char path[4200], tmp[4210], text[32];
    snprintf(path, sizeof path, "%s/%s", state_dir, CLOCK_SAVED_FILE);
    snprintf(tmp, sizeof tmp, "%s.new", path);
    int n = snprintf(text, sizeof text, "%lld\n", (long long)t);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return HAL_EIO;
    int ok = write(fd, text, (size_t)n) == n && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return HAL_EIO;
    }
    return HAL_OK;
}

int hal_clock_saved_wall(int64_t *t)
{
    char path[4200], text[32];
    snprintf(path, sizeof path, "%s/%s", state_dir, CLOCK_SAVED_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return HAL_EIO;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n < 2 || text[n - 1] != '\n')
        return HAL_EIO;
    text[n - 1] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || end == text)
        return HAL_EIO;
    *t = (int64_t)v;
    return HAL_OK;
}


/* --- reset --- */

void hal_reset(void)
{
    dev_link_flush(); /* what the firmware said last, e.g. "rebooting" */
    if (flash_ready)
        flashparts_close(&flash);
    _exit(DEV_EXIT_RESET);
}

enum hal_reset_cause hal_reset_cause(void) { return reset_cause; }

/* --- watchdog: SIGALRM's default action ends the process, which the board
 * reads as a watchdog reset --- */

static uint32_t watchdog_ms;

static void arm(uint32_t ms)
{
    struct itimerval it = {{0, 0}, {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

int hal_watchdog_start(uint32_t timeout_ms)
{
    if (timeout_ms == 0)
        return HAL_EINVAL;
    signal(SIGALRM, SIG_DFL);
    watchdog_ms = timeout_ms;
    arm(timeout_ms);
    return HAL_OK;
}

void hal_watchdog_kick(void)
{
    if (watchdog_ms)
        arm(watchdog_ms);
}

/* --- device secret: made by the board at first power-on --- */

int hal_secret_get(uint8_t out[HAL_SECRET_LEN])
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", state_dir, DEV_SECRET_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return HAL_EIO;
    ssize_t n = read(fd, out, HAL_SECRET_LEN);
    close(fd);
    return n == HAL_SECRET_LEN ? HAL_OK : HAL_EIO;
}

/* --- boot control: what the boot stage chose (its environment) --- */

int hal_bootctl_state(struct hal_boot_state *state)
{
    *state = boot_state;
    return HAL_OK;
}

void hal_bootctl_pubkey(const uint8_t **der, size_t *len)
{
    *der = fwsign_pubkey; /* the build's, as in the boot stage (boot_pubkey.h) */
    *len = fwsign_pubkey_len;
}

/* --- heap: glibc's accounting of the device process ---
 * mallinfo2() walks the allocator's free lists (tens of microseconds), fine
 * once a second and for `stats`. glibc keeps no high-water mark, so the
 * peak is the highest value sampled. */

static size_t heap_peak;

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd; /* arena chunks in use + mmapped chunks */
}

void hal_heap_sample(void)
{
    size_t now = heap_in_use();
    if (now > heap_peak)
        heap_peak = now;
}

int hal_heap_stats(size_t *in_use, size_t *peak)
{
    *in_use = heap_in_use();
    if (*in_use > heap_peak)
        heap_peak = *in_use;
    *peak = heap_peak;
    return HAL_OK;
}

int hal_heap_peak_exact(void) { return 0; }
