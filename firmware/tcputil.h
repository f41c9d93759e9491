/* tcputil.h — small altcp/pbuf chores shared by the inbound and outbound
 * SMTP transports. */
#ifndef TCPUTIL_H
#define TCPUTIL_H

#include "lwip/altcp.h"
#include "lwip/pbuf.h"

/* Remove every callback and the arg from a pcb we are letting go of. */
void tcputil_detach(struct altcp_pcb *pcb);
/* Acknowledge and free received data nobody will read. */
void tcputil_drop(struct altcp_pcb *pcb, struct pbuf *p);
/* Free the first segment of a chain we hold, keeping the rest; returns the
 * new head (NULL when it was the last). */
struct pbuf *tcputil_pop(struct pbuf *head);
/* Close `pcb` (detach it first), or abort it when lwIP cannot close it now.
 * Returns ERR_ABRT when it was aborted, else ERR_OK. A recv, sent or poll
 * callback that closed its own pcb must return what this returned: lwIP
 * requires ERR_ABRT after altcp_abort(), and anything else makes it go on
 * using the freed pcb. */
err_t tcputil_close(struct altcp_pcb *pcb);

#endif
