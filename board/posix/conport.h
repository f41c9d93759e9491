/* conport.h — the board's console port: the UART as the host sees it.
 *
 * pty mode: the board opens a pseudo-terminal, opens its slave side itself
 * and keeps it open in raw mode, so the master never echoes and never reads
 * EIO while no terminal program is attached; users attach with tio, picocom
 * or screen to the printed path. stdio mode: the invoking terminal in raw
 * mode, with the Ctrl-A escape (conesc.h). Output never blocks the board:
 * when nobody reads, bytes are dropped as on a real serial line. */
#ifndef CONPORT_H
#define CONPORT_H

#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include "conesc.h"

enum conport_mode { CONPORT_STDIO, CONPORT_PTY };

struct conport {
    enum conport_mode mode;
    int in_fd;  /* read typed bytes here; -1 after EOF */
    int out_fd; /* device output goes here */
    int slave_fd;
    char path[64];
    struct termios saved; /* stdio mode: the terminal's settings to restore */
    int restore;
    int stdin_flags; /* stdio mode: file status flags to restore */
    struct conesc esc;
};

int conport_open(struct conport *cp, enum conport_mode mode, char *err, size_t errlen);
/* Read typed bytes for the device. Returns the count (0 if none), -1 at EOF;
 * sets *quit when the user asked to leave (stdio Ctrl-A x). */
int conport_read(struct conport *cp, uint8_t *buf, size_t cap, int *quit);
void conport_write(struct conport *cp, const uint8_t *data, size_t len);
/* Restore the terminal; safe to call twice. */
void conport_close(struct conport *cp);
/* 1 when stdio mode put the terminal in raw mode (messages need "\r\n"). */
int conport_raw_stdio(const struct conport *cp);

#endif
