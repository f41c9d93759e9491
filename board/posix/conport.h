/* conport.h — the board's console port: the UART as the host sees it.
 *
 * pty mode: the board opens a pseudo-terminal, opens its slave side itself
 * and keeps it open in raw mode, so the master never echoes and never reads
 * EIO while no terminal program is attached; users attach with tio, picocom
 * or screen to the printed path. stdio mode: the invoking terminal in raw
 * mode, with the Ctrl-A escape (conesc.h). Output never blocks the board.
 *
 * pty mode paces output by the reader, as a UART's flow control would:
 * device output waits in a queue (CONPORT_TXQ_MAX) and goes to the master
 * only while the slave holds fewer than CONPORT_SLAVE_HIGH unread bytes.
 * Filling the slave's line discipline to the brim is what wedged the
 * console (after ~19 KB unread, nothing more arrived until a reboot), and
 * a reader that is merely slow loses nothing. Only when nobody reads for
 * a whole queue are bytes dropped (counted in tx_dropped). */
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
    uint8_t *tx; /* pty mode: output not yet given to the pty */
    size_t tx_len;
    uint64_t tx_dropped;
    uint64_t tx_gone; /* bytes that left: written out, or dropped (the UART's credit) */
};

#define CONPORT_TXQ_MAX (1u << 20)
#define CONPORT_SLAVE_HIGH 2048 /* half the line discipline's 4 KiB read buffer */

int conport_open(struct conport *cp, enum conport_mode mode, char *err, size_t errlen);
/* Read typed bytes for the device. Returns the count (0 if none), -1 at EOF;
 * sets *quit when the user asked to leave (stdio Ctrl-A x). */
int conport_read(struct conport *cp, uint8_t *buf, size_t cap, int *quit);
void conport_write(struct conport *cp, const uint8_t *data, size_t len);
/* pty mode: hand queued output to the pty as far as the reader made room;
 * call every loop turn. Returns the bytes still queued (poll again soon). */
size_t conport_flush(struct conport *cp);
/* Restore the terminal; safe to call twice. */
void conport_close(struct conport *cp);
/* 1 when stdio mode put the terminal in raw mode (messages need "\r\n"). */
int conport_raw_stdio(const struct conport *cp);

#endif
