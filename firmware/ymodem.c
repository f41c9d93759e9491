/* ymodem.c — YMODEM batch receiver; see ymodem.h. */
#include "ymodem.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SOH 0x01
#define STX 0x02
#define EOT 0x04
#define ACK 0x06
#define NAK 0x15
#define CAN 0x18
#define WANTCRC 'C'

/* --- CRC --- */

uint16_t ymodem_crc16(uint16_t crc, const uint8_t *data, size_t len)
{
    /* Bitwise: a 1 KiB block costs 8 Ki shifts, nothing next to the UART
     * time of the block; a table would cost 512 bytes of flash. */
    while (len--) {
        crc ^= (uint16_t)(*data++ << 8);
        for (int i = 0; i < 8; i++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

/* --- small helpers --- */

/* Time since `then`; correct across the wrap of a 32-bit ms clock. */
static uint32_t since(uint32_t now, uint32_t then)
{
    return (uint32_t)(now - then);
}

const char *ymodem_status_name(enum ymodem_status status)
{
    static const char *const names[] = {"running", "done", "cancelled", "timeout",
                                        "too-large", "write-failed", "protocol", "aborted"};
    return (unsigned)status < sizeof names / sizeof names[0] ? names[status] : "?";
}

static void send_bytes(struct ymodem_rx *rx, const uint8_t *data, size_t len, uint32_t now)
{
    rx->ops->send(rx->ctx, data, len);
    rx->t_activity = now;
}

static void send_byte(struct ymodem_rx *rx, uint8_t b, uint32_t now)
{
    send_bytes(rx, &b, 1, now);
}

/* ACK then 'C': a file header was taken (ask for its data) or a file ended
 * (ask for the next header). */
static void send_ack_c(struct ymodem_rx *rx, uint32_t now)
{
    static const uint8_t ack_c[2] = {ACK, WANTCRC};
    send_bytes(rx, ack_c, sizeof ack_c, now);
}

/* The answer that asks for the expected block again: 'C' while no block of
 * the current phase arrived yet (the sender may still be waiting for a 'C'
 * to start, lrzsz's rz does the same), NAK otherwise. */
static uint8_t retry_byte(const struct ymodem_rx *rx)
{
    if (rx->state == YMODEM_S_START || rx->state == YMODEM_S_NEXT ||
        (rx->state == YMODEM_S_DATA && rx->data_blocks == 0))
        return WANTCRC;
    return NAK;
}

static void set_reason(struct ymodem_rx *rx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_reason(struct ymodem_rx *rx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rx->reason, sizeof rx->reason, fmt, ap);
    va_end(ap);
}

/* The end; the reason is already set. `now` starts ymodem_settled(). */
static void stop(struct ymodem_rx *rx, enum ymodem_status status, uint32_t now)
{
    rx->status = status;
    rx->state = YMODEM_S_END;
    rx->block_need = rx->block_len = 0;
    rx->purging = 0;
    rx->t_rx = now;
}

/* The end, telling the sender to stop: it would otherwise retry for a
 * minute, or keep sending blocks nobody takes. */
static void give_up(struct ymodem_rx *rx, enum ymodem_status status, uint32_t now)
{
    uint8_t cans[YMODEM_CAN_COUNT];
    memset(cans, CAN, sizeof cans);
    send_bytes(rx, cans, sizeof cans, now);
    stop(rx, status, now);
}

/* One more refusal or timeout for the expected block; 0 when the retry
 * budget is spent (the transfer is finished then). */
static int count_error(struct ymodem_rx *rx, int timed_out, uint32_t now)
{
    if (++rx->errors <= rx->cfg.retry_max)
        return 1;
    if (timed_out) {
        set_reason(rx, "no answer from the sender");
        give_up(rx, YMODEM_TIMEOUT, now);
    } else {
        set_reason(rx, "too many bad blocks from the sender (at byte %" PRIu32 ")", rx->received);
        give_up(rx, YMODEM_PROTOCOL, now);
    }
    return 0;
}

/* A block, header or EOT moved the transfer forward. */
static void progress(struct ymodem_rx *rx, uint32_t now)
{
    rx->errors = 0;
    rx->t_progress = now;
}

/* --- blocks --- */

/* Block 0: "name\0size[ ...]\0" and padding. `n` is 128 or 1024. */
static void take_header(struct ymodem_rx *rx, const uint8_t *p, size_t n, uint32_t now)
{
    if (p[0] == 0) {
        /* The end-of-batch header. ACKed either way, so that the sender
         * ends cleanly; without a file before it there is nothing to keep. */
        send_byte(rx, ACK, now);
        if (rx->state == YMODEM_S_NEXT) {
            stop(rx, YMODEM_DONE, now);
        } else {
            set_reason(rx, "the sender sent no file");
            stop(rx, YMODEM_PROTOCOL, now);
        }
        return;
    }
    if (rx->state == YMODEM_S_NEXT) {
        set_reason(rx, "more than one file sent: send the image alone");
        give_up(rx, YMODEM_PROTOCOL, now);
        return;
    }
    const uint8_t *nul = memchr(p, 0, n);
    if (!nul) {
        set_reason(rx, "bad file header from the sender");
        give_up(rx, YMODEM_PROTOCOL, now);
        return;
    }
    /* The name goes to the operator's terminal in messages (also when the
     * file is refused, to say which one): only printable ASCII, so that a
     * name cannot carry escape sequences. */
    size_t len = (size_t)(nul - p);
    if (len > YMODEM_NAME_MAX)
        len = YMODEM_NAME_MAX;
    for (size_t i = 0; i < len; i++)
        rx->name[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    rx->name[len] = '\0';
    /* The size: decimal digits ended by a space or NUL (sz sends the
     * modification time and mode after a space). Without it the slot check
     * could not happen before the data arrives, so it is required. */
    const uint8_t *s = nul + 1, *end = p + n;
    uint64_t size = 0;
    size_t digits = 0;
    for (; s < end && *s >= '0' && *s <= '9'; s++, digits++)
        size = size > UINT64_MAX / 10 - 9 ? UINT64_MAX : size * 10 + (uint64_t)(*s - '0');
    if (digits == 0) {
        set_reason(rx, "the sender did not give the file size");
        give_up(rx, YMODEM_PROTOCOL, now);
        return;
    }
    if (s < end && *s != ' ' && *s != 0) {
        set_reason(rx, "bad file size from the sender");
        give_up(rx, YMODEM_PROTOCOL, now);
        return;
    }
    if (size > rx->cfg.max_size) {
        set_reason(rx, "image of %" PRIu64 " bytes is larger than the slot (%" PRIu32 ")", size,
                   rx->cfg.max_size);
        give_up(rx, YMODEM_TOO_LARGE, now);
        return;
    }
    rx->size = (uint32_t)size;
    rx->received = 0;
    if (rx->ops->begin && rx->ops->begin(rx->ctx, rx->name, rx->size) != 0) {
        set_reason(rx, "could not prepare the slot for the image");
        give_up(rx, YMODEM_WRITE_FAILED, now);
        return;
    }
    rx->state = YMODEM_S_DATA;
    rx->expect_seq = 1;
    rx->data_blocks = 0;
    progress(rx, now);
    send_ack_c(rx, now);
}

static void take_data(struct ymodem_rx *rx, const uint8_t *p, size_t n, uint32_t now)
{
    /* Cut to the header's size: the padding of the last block (and any
     * block past the size) never reaches the sink. */
    uint32_t left = rx->size - rx->received;
    size_t take = n < left ? n : left;
    if (take > 0) {
        if (rx->ops->sink(rx->ctx, rx->received, p, take) != 0) {
            set_reason(rx, "writing the image failed at byte %" PRIu32, rx->received);
            give_up(rx, YMODEM_WRITE_FAILED, now);
            return;
        }
        rx->received += (uint32_t)take;
    }
    rx->expect_seq++;
    rx->data_blocks++;
    progress(rx, now);
    send_byte(rx, ACK, now);
}

/* A complete block is in rx->block. */
static void take_block(struct ymodem_rx *rx, uint32_t now)
{
    const uint8_t *b = rx->block;
    size_t n = rx->block_need - 5;
    uint8_t seq = b[1];
    uint16_t crc = (uint16_t)(b[3 + n] << 8 | b[4 + n]);
    rx->block_need = rx->block_len = 0;

    if ((uint8_t)(seq + b[2]) != 0xff || ymodem_crc16(0, b + 3, n) != crc) {
        /* NAK from ymodem_poll() once the line is quiet: see YMODEM_PURGE_MS. */
        if (count_error(rx, 0, now))
            rx->purging = 1;
        return;
    }
    switch (rx->state) {
    case YMODEM_S_START:
        if (seq != 0) {
            set_reason(rx, "the sender did not start with a YMODEM file header");
            give_up(rx, YMODEM_PROTOCOL, now);
            return;
        }
        take_header(rx, b + 3, n, now);
        return;
    case YMODEM_S_NEXT:
        if (seq != 0) {
            set_reason(rx, "unexpected block (sequence number %u) after the file", seq);
            give_up(rx, YMODEM_PROTOCOL, now);
            return;
        }
        take_header(rx, b + 3, n, now);
        return;
    case YMODEM_S_EOT:
        /* A block after one EOT: that EOT was noise. */
        rx->state = YMODEM_S_DATA;
        /* fall through */
    case YMODEM_S_DATA:
        if (seq == rx->expect_seq) {
            take_data(rx, b + 3, n, now);
        } else if (seq == (uint8_t)(rx->expect_seq - 1)) {
            /* Our ACK was lost: acknowledge again, write nothing. Before
             * the first data block this is the header again, and the
             * sender waits for its 'C' as well. */
            if (rx->data_blocks == 0)
                send_ack_c(rx, now);
            else
                send_byte(rx, ACK, now);
        } else {
            set_reason(rx, "lost sync with the sender (sequence number %u, expected %u)", seq,
                       rx->expect_seq);
            give_up(rx, YMODEM_PROTOCOL, now);
        }
        return;
    case YMODEM_S_END:
        return;
    }
}

static void take_eot(struct ymodem_rx *rx, uint32_t now)
{
    switch (rx->state) {
    case YMODEM_S_DATA:
        /* The first EOT is refused: a lone EOT may be noise, and a real one
         * comes again. */
        rx->state = YMODEM_S_EOT;
        send_byte(rx, NAK, now);
        return;
    case YMODEM_S_EOT:
        if (rx->received < rx->size) {
            set_reason(rx, "the sender ended the file after %" PRIu32 " of %" PRIu32 " bytes",
                       rx->received, rx->size);
            give_up(rx, YMODEM_PROTOCOL, now);
            return;
        }
        rx->state = YMODEM_S_NEXT;
        progress(rx, now);
        send_ack_c(rx, now);
        return;
    case YMODEM_S_NEXT:
        /* Our ACK to the second EOT was lost. */
        send_ack_c(rx, now);
        return;
    case YMODEM_S_START:
        /* Left over from an earlier transfer: noise here. */
    case YMODEM_S_END:
        return;
    }
}

/* A byte where a block header is expected. */
static void take_header_byte(struct ymodem_rx *rx, uint8_t c, uint32_t now)
{
    if (c == CAN) {
        if (rx->can_seen) {
            set_reason(rx, "transfer cancelled by the sender");
            stop(rx, YMODEM_CANCELLED, now);
            return;
        }
        rx->can_seen = 1;
        return;
    }
    rx->can_seen = 0;
    if (c == SOH || c == STX) {
        rx->block[0] = c;
        rx->block_len = 1;
        rx->block_need = 3 + (c == STX ? 1024u : 128u) + 2;
    } else if (c == EOT) {
        take_eot(rx, now);
    }
    /* Anything else: noise between blocks, ignored. */
}

/* --- the interface --- */

void ymodem_init(struct ymodem_rx *rx, const struct ymodem_config *cfg,
                 const struct ymodem_ops *ops, void *ctx, uint32_t now_ms)
{
    memset(rx, 0, sizeof *rx);
    rx->cfg = *cfg;
    if (!rx->cfg.start_interval_ms)
        rx->cfg.start_interval_ms = YMODEM_START_INTERVAL_MS;
    if (!rx->cfg.block_timeout_ms)
        rx->cfg.block_timeout_ms = YMODEM_BLOCK_TIMEOUT_MS;
    if (!rx->cfg.idle_timeout_ms)
        rx->cfg.idle_timeout_ms = YMODEM_IDLE_TIMEOUT_MS;
    if (!rx->cfg.purge_ms)
        rx->cfg.purge_ms = YMODEM_PURGE_MS;
    if (!rx->cfg.settle_ms)
        rx->cfg.settle_ms = YMODEM_SETTLE_MS;
    if (!rx->cfg.retry_max)
        rx->cfg.retry_max = YMODEM_RETRY_MAX;
    rx->ops = ops;
    rx->ctx = ctx;
    rx->state = YMODEM_S_START;
    rx->status = YMODEM_RUNNING;
    rx->t_rx = rx->t_progress = now_ms;
    send_byte(rx, WANTCRC, now_ms);
}

enum ymodem_status ymodem_poll(struct ymodem_rx *rx, uint32_t now)
{
    if (rx->status != YMODEM_RUNNING)
        return rx->status;
    if (rx->purging) {
        if (since(now, rx->t_rx) >= rx->cfg.purge_ms) {
            rx->purging = 0;
            send_byte(rx, retry_byte(rx), now);
        }
    }
    if (since(now, rx->t_progress) >= rx->cfg.idle_timeout_ms) {
        if (rx->state == YMODEM_S_START)
            set_reason(rx, "no YMODEM sender started within %" PRIu32 " s",
                       rx->cfg.idle_timeout_ms / 1000);
        else
            set_reason(rx, "the transfer stalled: no block for %" PRIu32 " s",
                       rx->cfg.idle_timeout_ms / 1000);
        give_up(rx, YMODEM_TIMEOUT, now);
        return rx->status;
    }
    if (rx->purging)
        return rx->status;
    uint32_t interval =
        rx->state == YMODEM_S_START ? rx->cfg.start_interval_ms : rx->cfg.block_timeout_ms;
    if (since(now, rx->t_activity) >= interval) {
        /* Whatever part of a block arrived will not be completed: the
         * sender resends the whole block after our answer. */
        rx->block_need = rx->block_len = 0;
        rx->can_seen = 0;
        /* Waiting for the sender to start is bounded by the idle timeout
         * alone: the operator may take a while to start it. */
        if (rx->state != YMODEM_S_START && !count_error(rx, 1, now))
            return rx->status;
        send_byte(rx, retry_byte(rx), now);
    }
    return rx->status;
}

enum ymodem_status ymodem_feed(struct ymodem_rx *rx, uint32_t now, const uint8_t *data,
                               size_t len)
{
    /* Timers first: these bytes arrived after any deadline that passed
     * since the last call. */
    ymodem_poll(rx, now);
    if (len)
        rx->t_rx = rx->t_activity = now;
    size_t i = 0;
    while (i < len && rx->status == YMODEM_RUNNING) {
        if (rx->purging) {
            /* The rest of a bad block, or whatever follows it: dropped
             * until the line is quiet (ymodem_poll() then NAKs). */
            return rx->status;
        }
        if (rx->block_need == 0) {
            take_header_byte(rx, data[i++], now);
            continue;
        }
        size_t want = rx->block_need - rx->block_len;
        size_t n = len - i < want ? len - i : want;
        memcpy(rx->block + rx->block_len, data + i, n);
        rx->block_len += n;
        i += n;
        if (rx->block_len == rx->block_need)
            take_block(rx, now);
    }
    return rx->status;
}

void ymodem_abort(struct ymodem_rx *rx, uint32_t now_ms, const char *reason)
{
    if (rx->status != YMODEM_RUNNING)
        return;
    set_reason(rx, "%s", reason);
    give_up(rx, YMODEM_ABORTED, now_ms);
}

int ymodem_settled(const struct ymodem_rx *rx, uint32_t now_ms)
{
    return rx->status != YMODEM_RUNNING && since(now_ms, rx->t_rx) >= rx->cfg.settle_ms;
}
