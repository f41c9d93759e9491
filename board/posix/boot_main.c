/* boot_main.c — the device's boot stage (relay-boot): the first code the
 * CPU runs after a reset. It picks a slot whose image checks out and jumps
 * to it; on the posix board "jumping" is exec'ing the ELF held in the flash
 * slot from an anonymous memory file, so what runs is exactly what the
 * flash holds, never a file on the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devproto.h"
#include "flashparts.h"
#include "link.h"
#include "slotimg.h"

extern char **environ;

/* Say something on the UART: the boot stage has no console of its own. */
static void uart_say(const char *text)
{
    uint8_t msg[LINK_MSG_MAX];
    size_t n = link_encode(msg, sizeof msg, LINK_UART, text, strlen(text));
    if (n)
        (void)!send(DEV_LINK_FD, msg, n, MSG_NOSIGNAL);
}

/* A bricked CPU waits for someone to power-cycle it. */
static int halt(const char *why) __attribute__((noreturn));
static int halt(const char *why)
{
    char line[512];
    snprintf(line, sizeof line, "\r\nboot: %s; halted\r\n", why);
    uart_say(line);
    for (;;)
        pause();
}

static void run_slot(struct nor *slot, const char *name, uint32_t off, uint32_t len)
{
    int fd = memfd_create("relay-fw", MFD_CLOEXEC);
    if (fd < 0)
        return;
    const uint8_t *p = slot->mem + off;
    uint32_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w <= 0) {
            close(fd);
            return;
        }
        p += w;
        left -= (uint32_t)w;
    }
    setenv(DEV_ENV_SLOT, name, 1);
    setenv(DEV_ENV_TRIAL, "0", 1);
    char *argv[] = {"relay-fw", NULL};
    fexecve(fd, argv, environ);
    close(fd); /* only reached when exec failed */
}

int main(void)
{
    char err[256];
    const char *state = getenv(DEV_ENV_STATE);
    struct flashparts flash;
    if (!state || flashparts_open(&flash, state, err, sizeof err) != 0)
        return halt(state ? err : "no state directory");
    /* Slot A is primary; B is what an update or a revert leaves behind. */
    static const struct {
        enum hal_flash_part part;
        const char *name;
    } order[] = {{HAL_FLASH_SLOT_A, "A"}, {HAL_FLASH_SLOT_B, "B"}};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        uint32_t off, len;
        struct nor *slot = &flash.part[order[i].part];
        if (slotimg_check(slot, &off, &len) == 0)
            run_slot(slot, order[i].name, off, len);
    }
    return halt("no valid image in slot A or B");
}
