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

#endif
