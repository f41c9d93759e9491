/* ymodem.h — the YMODEM batch receiver (firmware upload over the console),
 * sans-I/O.
 *
 * Bytes from the sender go in through ymodem_feed(); the bytes to send back
 * (ACK, NAK, 'C', CANs) and the file data come out through the callbacks in
 * struct ymodem_ops. Time comes in as an argument (ymodem_feed(),
 * ymodem_poll()): no UART, flash, clock or lwIP call happens in here, which
 * is what lets cmocka drive it with scripted sender transcripts.
 *
 * Life of a transfer, as the caller sees it:
 *
 *   fw update starts        ymodem_init(): sends the first 'C'
 *   bytes from the UART     ymodem_feed(rx, now, bytes, n)
 *   every loop turn         ymodem_poll(rx, now): retries, timeouts
 *   ops->begin(name, size)  block 0 accepted (size fits): get the slot ready
 *   ops->sink(off, data, n) file data in order: offsets start at 0 and
 *                           increase with no gap, n <= 1024, `size` bytes in
 *                           all, never the sender's padding
 *   status != RUNNING       finished: DONE (name and size in the struct) or
 *                           a failure with rx->reason for the `error:` line
 *   ymodem_settled()        the line has been quiet since the end: give the
 *                           UART back to the console
 *
 * The protocol, as spoken (what lrzsz's `sz --ymodem` and terminal
 * programs send):
 * - CRC-16 only (CRC-16/XMODEM: poly 0x1021, init 0, sent big-endian). The
 *   receiver asks with 'C' every YMODEM_START_INTERVAL_MS until the sender
 *   starts; a sender that only knows checksums never starts (timeout).
 * - Blocks: SOH (128 bytes of data) or STX (1024), then the sequence number
 *   and its complement, the data, the CRC. Both sizes are accepted anywhere,
 *   mixed freely (sz sends 128-byte blocks unless given -k, and with -k
 *   still ends the file in 128-byte blocks).
 * - Block 0 is the file header: "name\0size[ mtime mode ...]\0...". The
 *   size (decimal) is required: it is checked against the slot before any
 *   data is accepted, and the data is cut to it (the sender pads the last
 *   block with 0x1A). Only the name's first byte being NUL marks the
 *   end-of-batch header: sz fills bytes 126-127 of every header, the empty
 *   one too, so "all zeros" cannot be required.
 * - Answers: ACK then 'C' to a file header; ACK to each data block; NAK to
 *   the first EOT and ACK then 'C' to the second (the YMODEM exchange: a
 *   lone EOT may be line noise; sz repeats EOT until it sees ACK); ACK to
 *   the end-of-batch header, which ends the transfer.
 * - A duplicate of the previous block (the sender missed our ACK) is
 *   acknowledged again and not written again.
 * - A block with a bad CRC or a sequence byte that does not match its
 *   complement (a garbled sequence number) is refused with NAK; the NAK
 *   goes out once the line has been quiet for YMODEM_PURGE_MS, so the rest
 *   of a misframed block (an STX read as SOH, a lost byte) is discarded
 *   rather than parsed as new blocks (XMODEM's "wait for the line to
 *   clear"; lrzsz's rz does the same). YMODEM_RETRY_MAX refusals or
 *   timeouts for one block cancel the transfer.
 * - A well-formed block whose sequence number is neither the expected one
 *   nor the previous one means sender and receiver disagree on what was
 *   acknowledged; a retry cannot mend that (the sender would resend the
 *   same block), so the transfer is cancelled, as lrzsz's rz does ("Sync
 *   Error").
 * - CAN CAN where a block header is expected: cancelled by the sender (the
 *   operator's Ctrl-X Ctrl-X). A lone CAN followed by anything else is
 *   forgotten, as in lrzsz's rz: one CAN may be noise. CAN bytes inside a
 *   block are data. Other bytes where a header is expected are ignored.
 * - Only one file per transfer (one image): a second file header is
 *   refused by cancelling, with a PROTOCOL status, even though the first
 *   file arrived whole: which one was meant is not ours to guess.
 * - A header giving more bytes than the slot holds is cancelled at once
 *   (YMODEM_TOO_LARGE), before anything is written; exactly the slot size
 *   is fine. EOT before `size` bytes arrived is a protocol error (the file
 *   shrank while being sent); data blocks past `size` are acknowledged and
 *   dropped (YMODEM lets the receiver cut at the size).
 * - Timeouts: the sender must start within YMODEM_IDLE_TIMEOUT_MS, and
 *   afterwards a block (or EOT, or header) must be accepted at least that
 *   often; otherwise YMODEM_TIMEOUT. When the line is quiet for
 *   YMODEM_BLOCK_TIMEOUT_MS mid-transfer, the partial block is dropped and
 *   the receiver asks again (NAK, or 'C' before the first block of a
 *   file), as often as YMODEM_RETRY_MAX allows.
 * - Whenever the receiver gives up (any failure but a cancel by the sender
 *   or a batch with no file, whose end-of-batch header is ACKed) it sends
 *   YMODEM_CAN_COUNT CAN bytes: sz needs two while it waits for an ACK but
 *   up to four while it waits for 'C' (its getnak() only counts a CAN pair
 *   after an earlier CAN).
 *
 * Callbacks run inside ymodem_feed()/ymodem_poll(). The sender waits about
 * 10 s for each answer (sz's default), so begin() and sink() must return
 * well within that: erase the slot ahead in sink(), not all of it in
 * begin() if that takes long. Memory is this struct: one block buffer, no
 * malloc; a sender cannot grow it. */
#ifndef YMODEM_H
#define YMODEM_H

#include <stddef.h>
#include <stdint.h>

#define YMODEM_DATA_MAX 1024                 /* data bytes of an STX block */
#define YMODEM_BLOCK_MAX (3 + YMODEM_DATA_MAX + 2) /* header, seq, ~seq, data, CRC */
#define YMODEM_NAME_MAX 64     /* file name kept for messages (longer: cut) */
#define YMODEM_REASON_MAX 96   /* the text for the `error:` line */

/* Defaults for struct ymodem_config (a 0 there takes these). */
/* 'C' while waiting for the sender to start: often enough that sz, started
 * by hand in the terminal program, begins within a few seconds. */
#define YMODEM_START_INTERVAL_MS 3000
/* Line quiet this long mid-transfer: drop the partial block, ask again. sz
 * waits 10 s for an answer, then resends on its own. */
#define YMODEM_BLOCK_TIMEOUT_MS 10000
/* No sender within this long, or no block accepted for this long: give up.
 * Long enough for an operator to start the upload in the terminal program. */
#define YMODEM_IDLE_TIMEOUT_MS 60000
/* After a bad block, the line must be quiet this long before the NAK: the
 * rest of a misframed block is discarded, not parsed (lrzsz's rz: 100 ms). */
#define YMODEM_PURGE_MS 200
/* After the end, the line must be quiet this long before the caller hands
 * the UART back to the console: a sender that is cancelled mid-block still
 * sends the rest of it, which must not reach the command line. */
#define YMODEM_SETTLE_MS 1000
/* NAKs (bad blocks and timeouts) for one block before giving up. */
#define YMODEM_RETRY_MAX 10
/* CAN bytes sent when the receiver gives up (see above). */
#define YMODEM_CAN_COUNT 8

enum ymodem_status {
    YMODEM_RUNNING = 0,
    YMODEM_DONE,         /* one file received whole, batch ended */
    YMODEM_CANCELLED,    /* CAN CAN from the sender */
    YMODEM_TIMEOUT,      /* the sender did not start, or stalled */
    YMODEM_TOO_LARGE,    /* the header's size exceeds max_size */
    YMODEM_WRITE_FAILED, /* begin() or sink() failed */
    YMODEM_PROTOCOL,     /* no size, lost sync, too many errors, 2nd file... */
    YMODEM_ABORTED,      /* ymodem_abort() by the caller */
};

struct ymodem_config {
    uint32_t max_size; /* largest file accepted, bytes (the slot size) */
    /* Timing and retries; 0 takes the YMODEM_* default. */
    uint32_t start_interval_ms;
    uint32_t block_timeout_ms;
    uint32_t idle_timeout_ms;
    uint32_t purge_ms;
    uint32_t settle_ms;
    unsigned retry_max;
};

struct ymodem_ops {
    /* Bytes for the sender (a few at a time); queue them for the UART. */
    void (*send)(void *ctx, const uint8_t *data, size_t len);
    /* The file header was accepted (size <= max_size): prepare to receive
     * `size` bytes. `name` is printable ASCII, possibly cut. 0, or -1 to
     * cancel (YMODEM_WRITE_FAILED). May be NULL. */
    int (*begin)(void *ctx, const char *name, uint32_t size);
    /* File data, in order: `offset` is the number of bytes handed over
     * before, len is 1..1024. 0, or -1 to cancel (YMODEM_WRITE_FAILED; the
     * block is not acknowledged). */
    int (*sink)(void *ctx, uint32_t offset, const uint8_t *data, size_t len);
};

/* Where the receiver is; internal (see ymodem.c). */
enum ymodem_state {
    YMODEM_S_START, /* waiting for the first file header */
    YMODEM_S_DATA,  /* receiving data blocks of the file */
    YMODEM_S_EOT,   /* one EOT NAKed: waiting for the second */
    YMODEM_S_NEXT,  /* file complete: waiting for the end-of-batch header */
    YMODEM_S_END,   /* finished: status says how */
};

/* The caller owns this; fields are read-only outside ymodem.c. */
struct ymodem_rx {
    struct ymodem_config cfg;
    const struct ymodem_ops *ops;
    void *ctx;
    enum ymodem_state state;
    enum ymodem_status status;
    char reason[YMODEM_REASON_MAX]; /* "" unless status is a failure */
    /* the file */
    char name[YMODEM_NAME_MAX + 1];
    uint32_t size;     /* from the header */
    uint32_t received; /* bytes handed to sink() so far */
    /* block assembly */
    uint8_t block[YMODEM_BLOCK_MAX];
    size_t block_len;  /* bytes in block[] */
    size_t block_need; /* size of the block being read; 0: expecting a header */
    uint8_t expect_seq;    /* sequence number of the next data block */
    uint32_t data_blocks;  /* data blocks of the file accepted */
    unsigned errors;       /* NAKs for the block now expected */
    int can_seen;   /* the previous header-position byte was CAN */
    int purging;    /* a bad block: NAK once the line is quiet */
    /* time, ms (wrapping) */
    uint32_t t_rx;       /* last byte received */
    uint32_t t_activity; /* last byte received or sent */
    uint32_t t_progress; /* start, or last block/EOT accepted */
};

/* Start receiving: sends the first 'C'. `cfg` is copied. */
void ymodem_init(struct ymodem_rx *rx, const struct ymodem_config *cfg,
                 const struct ymodem_ops *ops, void *ctx, uint32_t now_ms);
/* Bytes from the sender, received at `now_ms`. Runs the timers first (as
 * ymodem_poll), then takes every byte; once finished, bytes are read and
 * dropped (they only move ymodem_settled()). Returns the status. */
enum ymodem_status ymodem_feed(struct ymodem_rx *rx, uint32_t now_ms, const uint8_t *data,
                               size_t len);
/* Let time pass: the NAK after a bad block, 'C'/NAK retries, timeouts.
 * Call it every loop turn (the NAK after a bad block waits for it).
 * Returns the status. */
enum ymodem_status ymodem_poll(struct ymodem_rx *rx, uint32_t now_ms);
/* Give up from the caller's side (e.g. the slot could not be erased): sends
 * the CANs; status YMODEM_ABORTED with `reason`. No-op once finished. */
void ymodem_abort(struct ymodem_rx *rx, uint32_t now_ms, const char *reason);
/* 1 once finished and nothing arrived for settle_ms (since the end or the
 * last byte after it). */
int ymodem_settled(const struct ymodem_rx *rx, uint32_t now_ms);
const char *ymodem_status_name(enum ymodem_status status);
/* CRC-16/XMODEM of `len` bytes, continuing from `crc` (0 to start). */
uint16_t ymodem_crc16(uint16_t crc, const uint8_t *data, size_t len);

#endif
