/* nettrace.h — what the simulated wire says in board.log, whichever
 * backend carries it (slirp, tap): frames the egress filter dropped, and
 * with SHR_BOARD_TRACE=1 one line per Ethernet frame crossing the wire.
 *
 * The trace is for debugging the network, and for tests that read TCP
 * sequence numbers off the wire (the appliance's ISNs). Off unless the
 * variable is set, so a busy wire costs nothing. */
#ifndef NETTRACE_H
#define NETTRACE_H

#include <stddef.h>
#include <stdint.h>

/* Whether SHR_BOARD_TRACE=1 (read once). */
int nettrace_enabled(void);
/* One line for a frame going `dir` ("to device  ", "from device"): what it
 * is (egress_describe), its length and, for IPv4 TCP, its ports, sequence
 * numbers and flags. Nothing when tracing is off. */
void nettrace_frame(const char *dir, const uint8_t *frame, size_t len);
/* The egress filter dropped its `count`th frame: say what it was, without
 * flooding (the first few, then every 1000th). */
void nettrace_dropped(uint64_t count, const uint8_t *frame, size_t len);

#endif
